// Starting the engines (suite.ts, startEngines) with stand-in workers: each Node worker says in its
// hello whether relaxed SIMD is there in its own process, the engine records keep it, and a
// `--relaxed-simd` run stops, naming the engine, when a Node worker that would run lacks it (its
// rows would otherwise be recorded as relaxed-SIMD figures that are not). Every worker is closed
// when it stops.

import { describe, expect, it } from 'vitest';
import { ENGINES, type EngineId, type EngineSpec } from '../src/engines.js';
import type { HelloResult } from '../src/protocol.js';
import { RELAXED_SIMD_FLAG } from '../src/simdPeak.js';
import { type SuiteWorker, startEngines } from '../src/suite.js';

/** Stand-in workers answering hello with `hellos[id]`, remembering which were closed. */
function standIns(hellos: Partial<Record<EngineId, HelloResult>>) {
  const closed = new Set<EngineId>();
  const start = (spec: EngineSpec): SuiteWorker => ({
    alive: true,
    request: (async (message: { op: string }) => {
      if (message.op !== 'hello') throw new Error(`unexpected '${message.op}'`);
      return hellos[spec.id];
    }) as SuiteWorker['request'],
    close: async () => {
      closed.add(spec.id);
    },
  });
  return { start, closed };
}

const available = (relaxedSimd?: boolean): HelloResult => ({ available: true, version: 'v', backend: 'b', threads: 1, details: {}, ...(relaxedSimd === undefined ? {} : { relaxedSimd }) });

describe('starting the engines', () => {
  const engines: EngineId[] = ['scorch-cpu', 'tfjs-wasm', 'jaxjs-webgpu', 'torch-cpu-1t'];
  const relaxedSimd = { nodeFlags: [RELAXED_SIMD_FLAG] };
  const log = () => undefined;

  it('records whether each Node worker has relaxed SIMD (absent for the PyTorch worker and engines that do not run)', async () => {
    const { start, closed } = standIns({
      'scorch-cpu': available(true),
      'tfjs-wasm': available(false),
      'jaxjs-webgpu': { available: false, reason: 'no adapter' },
      'torch-cpu-1t': available(),
    });
    const started = await startEngines({ engines }, start, 'abc1234', log);
    expect(started.records.map((r) => [r.id, r.relaxedSimd])).toEqual([
      ['scorch-cpu', true],
      ['tfjs-wasm', false],
      ['jaxjs-webgpu', undefined],
      ['torch-cpu-1t', undefined],
    ]);
    // Only the unavailable engine's worker is closed; the others go on to run.
    expect([...closed]).toEqual(['jaxjs-webgpu']);
    expect([...started.workers.keys()]).toEqual(['scorch-cpu', 'tfjs-wasm', 'torch-cpu-1t']);
  });

  it('leaves relaxedSimd out for a Node worker that does not say, and records an engine whose worker cannot start as not run', async () => {
    const { start: startStandIn, closed } = standIns({ 'scorch-cpu': available(), 'tfjs-wasm': available(true), 'torch-cpu-1t': available() });
    const start = (spec: EngineSpec) => {
      if (spec.id === 'jaxjs-webgpu') throw new Error('no bundle');
      return startStandIn(spec);
    };
    const started = await startEngines({ engines }, start, 'abc1234', log);
    expect(started.records.map((r) => [r.id, r.available, r.relaxedSimd, r.reason])).toEqual([
      ['scorch-cpu', true, undefined, undefined],
      ['tfjs-wasm', true, true, undefined],
      ['jaxjs-webgpu', false, undefined, 'its worker could not start: no bundle'],
      ['torch-cpu-1t', true, undefined, undefined],
    ]);
    // The others were started and go on to run: none closed, none lost.
    expect(closed.size).toBe(0);
    expect([...started.workers.keys()]).toEqual(['scorch-cpu', 'tfjs-wasm', 'torch-cpu-1t']);
  });

  it('runs with --relaxed-simd when every Node worker that runs has it', async () => {
    const { start } = standIns({
      'scorch-cpu': available(true),
      'tfjs-wasm': available(true),
      // An engine that does not run has nothing to check; the Python worker gets no Node flags.
      'jaxjs-webgpu': { available: false, reason: 'no adapter' },
      'torch-cpu-1t': available(),
    });
    const started = await startEngines({ engines, relaxedSimd }, start, 'abc1234', log);
    expect(started.records.filter((r) => r.available)).toHaveLength(3);
  });

  it('stops a --relaxed-simd run, naming the engine, when a Node worker lacks relaxed SIMD, and closes every worker', async () => {
    for (const lacking of [available(false), available()]) {
      // available(): a worker that does not say (an older worker) counts as lacking it.
      const { start, closed } = standIns({
        'scorch-cpu': available(true),
        'tfjs-wasm': lacking,
        'jaxjs-webgpu': { available: false, reason: 'no adapter' },
        'torch-cpu-1t': available(),
      });
      await expect(startEngines({ engines, relaxedSimd }, start, 'abc1234', log)).rejects.toThrow(
        `--relaxed-simd: the worker of ${ENGINES['tfjs-wasm'].label} (tfjs-wasm) has no relaxed SIMD in its process (started with ${RELAXED_SIMD_FLAG})`,
      );
      expect(new Set(closed)).toEqual(new Set(engines));
    }
  });
});
