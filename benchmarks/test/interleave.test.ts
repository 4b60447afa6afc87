// The suite's timed rounds (suite.ts, timeInterleaved) with stand-in workers: engines take turns
// in a rotating order, and after a step of an engine with `settleMs` (PyTorch with its default
// threads, whose idle OpenBLAS threads busy-wait after a call) the next engine's step starts only
// that long after, while other engines' steps follow each other at once.

import { describe, expect, it } from 'vitest';
import { ENGINES, type EngineId } from '../src/engines.js';
import type { Row } from '../src/results.js';
import { type StepWorker, timeInterleaved } from '../src/suite.js';
import { DSM_CASE, planFor } from '../src/workloads.js';

describe('timed rounds', () => {
  it('wait settleMs after a step of an engine that has it, and only then', async () => {
    const live: EngineId[] = ['scorch-cpu', 'torch-cpu-default', 'scorch-webgpu'];
    const settle = ENGINES['torch-cpu-default'].settleMs!;
    expect(settle).toBeGreaterThanOrEqual(200);
    const log: { id: EngineId; start: number }[] = [];
    const worker = (id: EngineId): StepWorker => ({
      alive: true,
      request: (async (message: { op: string }) => {
        if (message.op !== 'step') return {};
        log.push({ id, start: performance.now() });
        return { ms: 1 };
      }) as StepWorker['request'],
    });
    const workers = new Map(live.map((id) => [id, worker(id)]));
    const rows = new Map(live.map((id) => [id, { engine: id, status: 'timed', warmupMs: 1 } as Row]));
    const plan = { ...planFor('quick'), reps: 2 }; // quick's one warm-up step (the check's)
    await timeInterleaved(DSM_CASE, plan, live, workers, rows);
    // Rounds of the three engines, the order rotating by one: 2 reps (the first warm-up step is the check's).
    expect(log.map((e) => e.id)).toEqual(['scorch-cpu', 'torch-cpu-default', 'scorch-webgpu', 'torch-cpu-default', 'scorch-webgpu', 'scorch-cpu']);
    for (let i = 1; i < log.length; i++) {
      // The stand-in step takes no time, so the gap between starts is the wait after the previous step.
      const gap = log[i]!.start - log[i - 1]!.start;
      if (log[i - 1]!.id === 'torch-cpu-default') expect(gap).toBeGreaterThanOrEqual(settle - 2);
      else expect(gap).toBeLessThan(settle / 2);
    }
    for (const id of live) expect(rows.get(id)!.samplesMs).toEqual([1, 1]);
  });
});
