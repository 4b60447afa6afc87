// The SIMD bound the suite reports beside W1: the timed loop must do the arithmetic it is credited
// with (every accumulator, every step), or its GFLOP/s would be fiction.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type SuiteResults, runStem } from '../src/results.js';
import { RELAXED_SIMD_FLAG, expectedPeakResult, measureSimdPeak, peakModule, relaxedSimdNodeFlags } from '../src/simdPeak.js';

const run = (fused: boolean, x: number, y: number) =>
  (new WebAssembly.Instance(new WebAssembly.Module(peakModule(fused, x, y))).exports as { run: (n: number) => number }).run;

describe('the WebAssembly SIMD peak', () => {
  it('multiply then add: n steps on ten accumulators, bit for bit', () => {
    expect(WebAssembly.validate(peakModule(false, 1, 1))).toBe(true);
    for (const n of [0, 1, 7, 1000]) expect(run(false, 1.25, 0.3)(n)).toBe(expectedPeakResult(1.25, 0.3, n));
  });

  it('fused multiply-add (relaxed SIMD; Node 20 needs its flag): the same sum within its rounding', () => {
    // In a child process with relaxed SIMD on, so the check runs on every Node this suite supports.
    const bytes = JSON.stringify(Array.from(peakModule(true, 1.25, 0.3)));
    const script = `const b = new Uint8Array(${bytes}); if (!WebAssembly.validate(b)) { console.log('invalid'); } else { console.log(new WebAssembly.Instance(new WebAssembly.Module(b)).exports.run(1000)); }`;
    const child = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(child.status, child.stderr).toBe(0);
    // Fused or not, each step adds x·y once: 1000 float32 additions stay within 1000·2^-24 relative.
    const got = Number(child.stdout.trim());
    expect(Math.abs(got - expectedPeakResult(1.25, 0.3, 1000)) / got).toBeLessThan(1000 * 2 ** -24);
  });

  it('measures a positive rate for each kind the engine has', () => {
    const peak = measureSimdPeak(100_000, 2)!;
    expect(peak.mulAdd).toBeGreaterThan(0);
    const fusedAvailable = WebAssembly.validate(peakModule(true, 1, 1));
    expect(peak.fusedMultiplyAdd === null).toBe(!fusedAvailable);
    if (fusedAvailable) expect(peak.fusedMultiplyAdd).toBeGreaterThan(0);
  });
});

describe('--relaxed-simd', () => {
  it('finds the flags that give a Node worker relaxed SIMD, and they do', () => {
    const flags = relaxedSimdNodeFlags();
    // Node 20 needs V8's flag; a Node with relaxed SIMD by default needs none.
    expect(flags).toEqual(WebAssembly.validate(peakModule(true, 1, 1)) ? [] : [RELAXED_SIMD_FLAG]);
    const bytes = JSON.stringify(Array.from(peakModule(true, 1, 1)));
    const child = spawnSync(process.execPath, [...flags, '-e', `process.exit(WebAssembly.validate(new Uint8Array(${bytes})) ? 0 : 3)`], { timeout: 30_000 });
    expect(child.status).toBe(0);
  });

  it('names a run made with it apart from the record', () => {
    const results = { date: '2026-12-02T00:00:00Z', mode: 'full', machine: { name: 'm' }, method: { relaxedSimd: { nodeFlags: [RELAXED_SIMD_FLAG] } } } as unknown as SuiteResults;
    expect(runStem(results)).toBe('2026-12-02-m-relaxed-simd');
    expect(runStem({ ...results, method: {} } as unknown as SuiteResults)).toBe('2026-12-02-m');
  });
});
