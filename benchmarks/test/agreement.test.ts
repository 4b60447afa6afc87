// The suite end to end on tiny versions of every workload: each engine's worker starts, computes
// the value from the shared inputs, agrees with the float64 reference within the workload's
// tolerance, and is timed interleaved; engines that cannot run here say why. The pure-JavaScript
// and WebAssembly engines must be available wherever `pnpm install` ran, and so must PyTorch
// wherever scripts/setup-peers.sh could install it. PyTorch at its default threads runs the same
// worker code as the single-threaded row, so it is left out here to save a Python start-up.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, ENGINE_IDS, type EngineId } from '../src/engines.js';
import { textReport } from '../src/report.js';
import { makeInputs } from '../src/inputs.js';
import { type SuiteResults, readResults, recordedValue, valueLength, writeResults } from '../src/results.js';
import { runSuite, scorchReference } from '../src/suite.js';
import { DSM_CASE, HVP_CASE, type Plan, SSMVR_CASE, convCase, figureFor, ismCase, langevinCase, matmulCase } from '../src/workloads.js';
import { tinyNet, torchInstalled } from './adapterSteps.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

const tinyPlan: Plan = {
  mode: 'quick',
  cases: [
    { ...matmulCase(24), id: 'tiny-matmul' },
    { ...SSMVR_CASE, id: 'tiny-ssmvr', size: 'tiny: MLP 2→8→8→2, batch 16', net: tinyNet, batch: 16 },
    { ...DSM_CASE, id: 'tiny-dsm', size: 'tiny: MLP 2→8→8→2, batch 16', net: tinyNet, batch: 16 },
    { ...ismCase(3), id: 'tiny-ism-d3', size: 'tiny: d=3, hidden 8, batch 8', net: { dim: 3, hidden: 8 }, batch: 8 },
    { ...ismCase(5), id: 'tiny-ism-d5', size: 'tiny: d=5, hidden 8, batch 8', net: { dim: 5, hidden: 8 }, batch: 8 },
    { ...langevinCase(1, 1), id: 'tiny-langevin', size: 'tiny: 32 particles', net: tinyNet, particles: 32 },
    { ...HVP_CASE, id: 'tiny-hvp', size: 'tiny: batch 16', net: tinyNet, batch: 16 },
    { ...convCase(false), id: 'tiny-conv', size: 'tiny: 2×3×5×5, forward', batch: 2, channels: 3, extent: 5 },
    { ...convCase(true), id: 'tiny-conv-bwd', size: 'tiny: 2×3×5×5, forward + backward', batch: 2, channels: 3, extent: 5 },
  ],
  warmup: 1,
  warmupMs: 0,
  warmupMax: 1,
  reps: 5,
  // The lead-in on (as in the full run), so that every engine's worker runs it on real steps.
  leadInMs: 1,
  leadInMaxMs: 20_000,
  slowStepMs: 20_000,
  maxStepMs: 20_000,
  maxScorchStepMs: 20_000,
};


describe('the suite on tiny workloads', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'scorch-bench-agreement-'));
  let results: SuiteResults;
  const log: string[] = [];

  beforeAll(async () => {
    results = await runSuite({
      plan: tinyPlan,
      engines: ENGINE_IDS.filter((id) => id !== 'torch-cpu-default'),
      workloads: ['matmul', 'ssmvr', 'dsm', 'ism', 'langevin', 'hvp', 'conv'],
      complete: false,
      command: 'vitest',
      repoRoot,
      scratch,
      log: (line) => log.push(line),
    });
  }, 240_000);
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('starts every engine that can run here, and says why the others cannot', () => {
    const available = new Set(results.engines.filter((e) => e.available).map((e) => e.id));
    // Chromium too: scripts/setup.sh installs it, as for the e2e tests.
    const required: EngineId[] = [
      'scorch-cpu', 'scorch-cpu-threads', 'scorch-cpu-fastmath', 'scorch-cpu-chromium', 'scorch-cpu-chromium-threads', 'tfjs-cpu', 'tfjs-wasm', 'jaxjs-wasm',
      'jaxjs-wasm-chromium', 'jaxjs-wasm-chromium-threads',
    ];
    if (torchInstalled()) required.push('torch-cpu-1t');
    for (const id of required) expect(available.has(id), `${id}: ${results.engines.find((e) => e.id === id)?.reason}\n${log.join('\n')}`).toBe(true);
    for (const e of results.engines.filter((r) => !r.available)) expect(e.reason).toMatch(/\w/);
    if (!results.gpu.nvidia) {
      expect(results.engines.find((e) => e.id === 'torch-cuda')).toMatchObject({ available: false, reason: expect.stringMatching(/cuda|torch/i) });
    }
  });

  it('runs the single-threaded CPU rows on one thread, PyTorch inter-op and OpenBLAS included', () => {
    const oneThread: EngineId[] = ['scorch-cpu', 'scorch-cpu-fastmath', 'scorch-cpu-chromium', 'tfjs-cpu', 'tfjs-wasm', 'jaxjs-wasm', 'jaxjs-wasm-chromium'];
    for (const id of oneThread) {
      const engine = results.engines.find((e) => e.id === id)!;
      if (engine.available) expect(engine.threads, id).toBe(1);
    }
    const torch = results.engines.find((e) => e.id === 'torch-cpu-1t')!;
    if (!torch.available) return;
    expect(torch.threads).toMatch(/^torch 1(, OpenBLAS 1)?$/);
    expect(torch.details).toMatchObject({ interopThreads: 1 });
    if (torch.details!.openblasThreads !== 'n/a') expect(torch.details!.openblasThreads).toBe(1);
  });

  it('runs the fast-math row with setCpuFastMath on and the others with it off', () => {
    const engine = (id: EngineId) => results.engines.find((e) => e.id === id)!;
    expect(engine('scorch-cpu-fastmath')).toMatchObject({ details: { fastMath: true }, backend: expect.stringMatching(/fast float32 math/) });
    for (const id of ['scorch-cpu', 'scorch-cpu-threads'] as const) expect(engine(id).details, id).toMatchObject({ fastMath: false });
  });

  it('runs scorch CPU and jax-js wasm in Chromium on cross-origin-isolated pages, on one thread and on their default threads', () => {
    const engine = (id: EngineId) => results.engines.find((e) => e.id === id)!;
    const chromiumRows: EngineId[] = ['scorch-cpu-chromium', 'scorch-cpu-chromium-threads', 'jaxjs-wasm-chromium', 'jaxjs-wasm-chromium-threads'];
    for (const id of chromiumRows) {
      expect(engine(id).details, id).toMatchObject({ crossOriginIsolated: true, chromium: expect.stringMatching(/^\d+\./) });
      expect(engine(id).relaxedSimd, id).toBe(true);
      expect(engine(id).backend, id).toMatch(/ in Chromium \d+\./);
    }
    for (const id of ['scorch-cpu-chromium', 'scorch-cpu-chromium-threads'] as const) expect(engine(id).details).toMatchObject({ matmul: 'wasm-simd', fma: true });
    // One thread as on a page without COOP/COEP (SharedArrayBuffer hidden): scorch without its
    // heap (ordinary arrays, which the kernels copy), jax-js without workers; the default threads
    // with the heap.
    expect(engine('scorch-cpu-chromium').details).toMatchObject({ heap: 'none' });
    expect(engine('scorch-cpu-chromium-threads').details).toMatchObject({ heap: 'shared' });
    // scorch's default in a page is one thread per core (navigator.hardwareConcurrency), at most 8,
    // as in Node (os.availableParallelism); jax-js's pool has navigator.hardwareConcurrency workers.
    const cores = engine('scorch-cpu-chromium-threads').details!.hardwareConcurrency as number;
    expect(engine('scorch-cpu-chromium-threads').threads).toBe(Math.min(8, cores));
    expect(engine('scorch-cpu-chromium-threads').threads).toBe(engine('scorch-cpu-threads').threads);
    expect(engine('jaxjs-wasm-chromium').details).toMatchObject({ webWorkers: 0 });
    expect(engine('jaxjs-wasm-chromium-threads')).toMatchObject({ threads: cores, details: { webWorkers: cores } });
    expect(engine('jaxjs-wasm-chromium').version).toBe(engine('jaxjs-wasm').version);
  });

  it("agrees with the float64 reference on every workload, then times each engine at least 5 times", () => {
    const available = results.engines.filter((e) => e.available).map((e) => e.id);
    for (const c of results.cases) {
      for (const id of available) {
        const row = c.rows.find((r) => r.engine === id)!;
        // A case the engine cannot run (a kernel it lacks) is skipped with the reason its spec gives.
        const cannot = ENGINES[id].cannot?.(c.spec);
        if (cannot) {
          expect(row).toMatchObject({ status: 'skipped', reason: cannot });
          continue;
        }
        expect(row.status, `${c.spec.id}/${id}: ${row.reason}`).toBe('timed');
        expect(row.check!.ok).toBe(true);
        expect(row.check!.error).toBeLessThan(row.check!.rtol);
        expect(valueLength(row.value!)).toBe(valueLength(c.reference.value));
        expect(row.samplesMs).toHaveLength(5);
        expect(row.figure).toBeCloseTo(figureFor(c.spec, row.medianMs!), 9);
        expect(row.vsScorchCpu).toBeCloseTo(c.rows.find((r) => r.engine === 'scorch-cpu')!.medianMs! / row.medianMs!, 9);
      }
      for (const row of c.rows.filter((r) => !available.includes(r.engine))) expect(row).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/\w/) });
    }
    // The values are not trivial: losses move after one Adam step, the HVP is not zero.
    const ssmvr = results.cases.find((c) => c.spec.workload === 'ssmvr')!.reference.value as number[];
    expect(Math.abs(ssmvr[1]! - ssmvr[0]!)).toBeGreaterThan(1e-5);
    // The tiny HVP has 2·8 + 8 + 8·8 + 8 + 8·2 + 2 = 114 entries: recorded as a summary.
    expect(results.cases.find((c) => c.spec.workload === 'hvp')!.reference.value).toMatchObject({ length: 114, norm: expect.any(Number) });
    expect((results.cases.find((c) => c.spec.workload === 'hvp')!.reference.value as { norm: number }).norm).toBeGreaterThan(1e-3);
  });

  it("takes PyTorch's float64 values as the reference where it runs, and they are scorch's to 1e-9", async () => {
    for (const c of results.cases) {
      expect(c.reference.by).toBe(torchInstalled() ? 'torch-float64' : 'scorch-float64');
      const scorch = recordedValue((await scorchReference(c.spec, makeInputs(c.spec))).value);
      const [ours, theirs] = [scorch, c.reference.value].map((v) => (Array.isArray(v) ? v : [v.length, v.norm, ...v.head]));
      const scale = Math.max(1, Math.sqrt(theirs!.reduce((s, v) => s + v * v, 0)));
      const error = Math.sqrt(ours!.reduce((s, v, i) => s + (v - theirs![i]!) ** 2, 0)) / scale;
      expect(error, `${c.spec.id}: ${JSON.stringify(ours)} vs ${JSON.stringify(theirs)}`).toBeLessThan(1e-9);
    }
  });

  it('counts scorch WebGPU dispatches per step, when it ran', () => {
    const webgpu = results.engines.find((e) => e.id === 'scorch-webgpu')!;
    if (!webgpu.available) return;
    const ssmvr = results.cases.find((c) => c.spec.workload === 'ssmvr')!.rows.find((r) => r.engine === 'scorch-webgpu')!;
    expect(ssmvr.counters!.dispatches).toBeGreaterThan(10);
    expect(ssmvr.counters!.submits).toBeGreaterThanOrEqual(1);
  });

  it('fits a growth exponent in d and writes a results file that reads back', () => {
    expect(results.growth.find((g) => g.engine === 'scorch-cpu')).toMatchObject({ dims: [3, 5], exponent: expect.any(Number) });
    const files = writeResults(results, '<svg/>', scratch);
    expect(readResults(files.json)).toEqual(results);
    const report = textReport(results);
    for (const e of results.engines) expect(report.some((line) => line.includes(e.label))).toBe(true);
  });
});
