// The suite's timed rounds (suite.ts, timeInterleaved) with stand-in workers: engines take turns
// in a rotating order, and after a step of an engine with `settleMs` (PyTorch with its default
// threads, whose idle OpenBLAS threads busy-wait after a call) the next engine's step starts only
// that long after, while other engines' steps follow each other at once. The same holds for the
// value check (checkEngine): its value computation and its first warm-up step.

import { describe, expect, it } from 'vitest';
import { ENGINES, type EngineId } from '../src/engines.js';
import type { Row } from '../src/results.js';
import { type StepWorker, SweepLimits, checkEngine, timeInterleaved } from '../src/suite.js';
import { DSM_CASE, planFor } from '../src/workloads.js';

describe('timed rounds', () => {
  const settle = ENGINES['torch-cpu-default'].settleMs!;
  const plan = planFor('quick');
  const value = [1.5, -2.25];

  /**
   * A stand-in worker for checkEngine, recording each request and when it came: its value equals
   * the reference (`value`), computed in `valueMs`, and a step takes 1 ms.
   */
  function recordingWorker(valueMs: number) {
    const requests: { op: string; at: number }[] = [];
    const worker: StepWorker = {
      alive: true,
      request: (async (message: { op: string }) => {
        requests.push({ op: message.op, at: performance.now() });
        if (message.op === 'prepare') return { value, valueMs };
        if (message.op === 'step') return { ms: 1 };
        return null;
      }) as StepWorker['request'],
    };
    return { worker, requests };
  }

  it('wait settleMs after a step of an engine that has it, and only then', async () => {
    const live: EngineId[] = ['scorch-cpu', 'torch-cpu-default', 'scorch-webgpu'];
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
    const twoReps = { ...plan, reps: 2 }; // quick's one warm-up step (the check's)
    await timeInterleaved(DSM_CASE, twoReps, live, workers, rows);
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

  it('wait settleMs after the value check\'s warm-up step too, before the next engine runs', async () => {
    for (const id of ['torch-cpu-default', 'scorch-cpu'] as const) {
      // A value computed in 1 ms: cheap enough that the check runs its own warm-up step.
      const { worker, requests } = recordingWorker(1);
      const { row, timed } = await checkEngine(id, worker, DSM_CASE, 'inputs.bin', { value, scale: 1 }, plan.maxStepMs, plan, new SweepLimits());
      // What the next engine's first step would see: the time since this engine's warm-up step (which takes no time here).
      const sinceStep = performance.now() - requests[requests.length - 1]!.at;
      // The value computation runs a step as well: the warm-up step waits for it to settle too.
      const betweenThem = requests[1]!.at - requests[0]!.at;
      expect(requests.map((r) => r.op)).toEqual(['prepare', 'step']);
      expect(timed).toBe(true);
      expect(row.warmupMs).toBe(1);
      if (id === 'torch-cpu-default') {
        expect(sinceStep).toBeGreaterThanOrEqual(settle - 2);
        expect(betweenThem).toBeGreaterThanOrEqual(settle - 2);
      } else {
        expect(sinceStep).toBeLessThan(settle / 2);
        expect(betweenThem).toBeLessThan(settle / 2);
      }
    }
  });

  it('wait settleMs after the value computation where it is the warm-up (a slow step)', async () => {
    // A value that took longer than a slow step: no separate warm-up step follows.
    const { worker, requests } = recordingWorker(4 * plan.slowStepMs);
    const { timed } = await checkEngine('torch-cpu-default', worker, DSM_CASE, 'inputs.bin', { value, scale: 1 }, 100 * plan.slowStepMs, plan, new SweepLimits());
    expect(timed).toBe(true);
    expect(requests.map((r) => r.op)).toEqual(['prepare']);
    expect(performance.now() - requests[0]!.at).toBeGreaterThanOrEqual(settle - 2);
  });
});
