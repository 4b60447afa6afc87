// Starting the engines (suite.ts, startEngines) with stand-in workers: each Node worker says in its
// hello whether relaxed SIMD is there in its own process, the engine records keep it, and a
// `--relaxed-simd` run stops, naming the engine, when a Node worker that would run lacks it (its
// rows would otherwise be recorded as relaxed-SIMD figures that are not) or when a Node worker
// fails to start (the run would silently go on without it). Every worker is closed when it stops.

import { describe, expect, it } from 'vitest';
import { ENGINES, type EngineId, type EngineSpec } from '../src/engines.js';
import type { HelloResult } from '../src/protocol.js';
import { RELAXED_SIMD_FLAG } from '../src/simdPeak.js';
import { RelaxedSimdError, type SuiteWorker, startEngines } from '../src/suite.js';

/**
 * Stand-in workers answering hello with `hellos[id]` (failing with it where it is an Error, as a
 * worker that exits before its reply does), remembering which were closed. Starting engine `id`
 * throws `cannotStart[id]` where one is given (a worker that cannot be started at all).
 */
function standIns(hellos: Partial<Record<EngineId, HelloResult | Error>>, cannotStart: Partial<Record<EngineId, string>> = {}) {
  const closed = new Set<EngineId>();
  const start = (spec: EngineSpec): SuiteWorker => {
    const failure = cannotStart[spec.id];
    if (failure !== undefined) throw new Error(failure);
    return {
      alive: true,
      request: (async (message: { op: string }) => {
        if (message.op !== 'hello') throw new Error(`unexpected '${message.op}'`);
        const hello = hellos[spec.id];
        if (hello instanceof Error) throw hello;
        return hello;
      }) as SuiteWorker['request'],
      close: async () => {
        closed.add(spec.id);
      },
    };
  };
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
    const { start, closed } = standIns({ 'scorch-cpu': available(), 'tfjs-wasm': available(true), 'torch-cpu-1t': available() }, { 'jaxjs-webgpu': 'no bundle' });
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

  it('stops a --relaxed-simd run, naming the engine and why, when a Node worker fails to start or to answer its hello, and closes every worker', async () => {
    const hellos = { 'scorch-cpu': available(true), 'tfjs-wasm': available(true), 'jaxjs-webgpu': available(true), 'torch-cpu-1t': available() };
    const tfjs = `${ENGINES['tfjs-wasm'].label} (tfjs-wasm)`;
    const stops = `(started with ${RELAXED_SIMD_FLAG}); the run stops rather than go on without an engine whose relaxed-SIMD figures it is for`;

    // Its worker cannot be started at all: there is nothing of it to close.
    const { start, closed } = standIns(hellos, { 'tfjs-wasm': 'no bundle' });
    const notStarted = await startEngines({ engines, relaxedSimd }, start, 'abc1234', log).catch((e: unknown) => e);
    expect(notStarted).toBeInstanceOf(RelaxedSimdError);
    expect((notStarted as Error).message).toBe(`--relaxed-simd: the worker of ${tfjs} could not start: no bundle ${stops}`);
    expect(new Set(closed)).toEqual(new Set(engines.filter((id) => id !== 'tfjs-wasm')));

    // Its worker started but exited before answering its hello; with another lacking relaxed SIMD, both are named.
    const exited = standIns({ ...hellos, 'tfjs-wasm': new Error('the worker exited (status 1)'), 'scorch-cpu': available(false) });
    const noHello = await startEngines({ engines, relaxedSimd }, exited.start, 'abc1234', log).catch((e: unknown) => e);
    expect(noHello).toBeInstanceOf(RelaxedSimdError);
    expect((noHello as Error).message).toBe(
      `--relaxed-simd: the worker of ${tfjs} failed: the worker exited (status 1) ${stops}; ` +
        `the worker of ${ENGINES['scorch-cpu'].label} (scorch-cpu) has no relaxed SIMD in its process (started with ${RELAXED_SIMD_FLAG}); the run stops rather than record its rows as relaxed-SIMD figures`,
    );
    expect(new Set(exited.closed)).toEqual(new Set(engines));
  });

  it('goes on with a --relaxed-simd run whose PyTorch worker fails to start (it gets no Node flags), recording it as not run', async () => {
    const { start, closed } = standIns({ 'scorch-cpu': available(true), 'tfjs-wasm': available(true), 'jaxjs-webgpu': available(true) }, { 'torch-cpu-1t': 'no python3' });
    const started = await startEngines({ engines, relaxedSimd }, start, 'abc1234', log);
    expect(started.records.map((r) => [r.id, r.available, r.reason])).toEqual([
      ['scorch-cpu', true, undefined],
      ['tfjs-wasm', true, undefined],
      ['jaxjs-webgpu', true, undefined],
      ['torch-cpu-1t', false, 'its worker could not start: no python3'],
    ]);
    expect(closed.size).toBe(0);
  });
});
