// The suite's timed rounds (suite.ts, timeInterleaved) with stand-in workers: engines take turns
// in an order shuffled per round (roundOrder), and after a step of an engine with `settleMs` (PyTorch with its default
// threads, whose idle OpenBLAS threads busy-wait after a call) the next engine's step starts only
// that long after, while other engines' steps follow each other at once. The same holds for the
// value check (checkEngine): its value computation and its first warm-up step.

import { describe, expect, it } from 'vitest';
import { ENGINES, type EngineId } from '../src/engines.js';
import type { Row } from '../src/results.js';
import { LEAD_IN_STEPS_MAX, type StepWorker, SweepLimits, checkEngine, roundOrder, timeInterleaved, warmupSteps } from '../src/suite.js';
import { DSM_CASE, figureFor, ismCase, matmulCase, planFor } from '../src/workloads.js';

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
    // Rounds of the three engines in roundOrder's orders: 2 reps (the first warm-up step is the check's).
    expect(log.map((e) => e.id)).toEqual([0, 1].flatMap((round) => roundOrder(live, DSM_CASE.id, round)));
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

  it('run the warm-up step after a slow value computation too, waiting settleMs after each', async () => {
    // A value that took longer than a slow step, within the limit: the warm-up step still follows.
    const { worker, requests } = recordingWorker(4 * plan.slowStepMs);
    const { timed } = await checkEngine('torch-cpu-default', worker, DSM_CASE, 'inputs.bin', { value, scale: 1 }, 100 * plan.slowStepMs, plan, new SweepLimits());
    expect(timed).toBe(true);
    expect(requests.map((r) => r.op)).toEqual(['prepare', 'step']);
    expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(settle - 2);
    expect(performance.now() - requests[1]!.at).toBeGreaterThanOrEqual(settle - 2);
  });

  it("judge a step slow by the warm-up step, not by the value computation's estimate", async () => {
    // Two engines with the same 1 ms step, one of whose value computations took far longer (a
    // first step at a new size, a compilation): both get the plan's warm-up rounds and repetitions.
    const live: EngineId[] = ['scorch-cpu', 'torch-cpu-1t'];
    const rows = new Map<EngineId, Row>();
    const workers = new Map<EngineId, StepWorker>();
    for (const [id, valueMs] of [['scorch-cpu', 1], ['torch-cpu-1t', 6 * plan.slowStepMs]] as const) {
      const { worker, requests } = recordingWorker(valueMs);
      const { row, timed } = await checkEngine(id, worker, DSM_CASE, 'inputs.bin', { value, scale: 1 }, 100 * plan.slowStepMs, plan, new SweepLimits());
      expect(timed).toBe(true);
      expect(requests.map((r) => r.op)).toEqual(['prepare', 'step']);
      expect(row.warmupMs).toBe(1);
      rows.set(id, row);
      workers.set(id, worker);
    }
    const full = planFor('full');
    await timeInterleaved(DSM_CASE, full, live, workers, rows);
    for (const id of live) expect(rows.get(id)!.samplesMs).toHaveLength(full.reps);
  });

  it('shuffle the order each round, so that every engine follows every other', () => {
    const live = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    const rounds = Array.from({ length: 26 }, (_, r) => roundOrder(live, 'ssmvr', r));
    for (const order of rounds) expect([...order].sort()).toEqual(live);
    expect(roundOrder(live, 'ssmvr', 3)).toEqual(rounds[3]); // the same in every run
    expect(roundOrder(live, 'dsm', 3)).not.toEqual(rounds[3]);
    // Whom each engine follows, across rounds (the previous round's last engine for a round's first).
    const sequence = rounds.flat();
    const predecessors = new Map<string, Set<string>>(live.map((id) => [id, new Set()]));
    for (let i = 1; i < sequence.length; i++) predecessors.get(sequence[i]!)!.add(sequence[i - 1]!);
    // A rotation gave each engine one predecessor; 26 shuffled rounds give each most of the nine others.
    for (const id of live) expect(predecessors.get(id)!.size, id).toBeGreaterThanOrEqual(6);
  });

  it('warm up by time: steps adding up to warmupMs at the first step\'s time, between warmup and warmupMax', async () => {
    const full = planFor('full');
    expect([full.warmup, full.warmupMs, full.warmupMax]).toEqual([2, 1000, 20]);
    expect([1, 10, 50, 100, 400, 999, 1500].map((ms) => warmupSteps(full, ms))).toEqual([20, 20, 20, 10, 3, 2, 2]);
    expect(warmupSteps(plan, 1)).toBe(1); // quick: a fixed one
    // Three engines whose first warm-up steps took 1 ms, 400 ms and more than a slow step: their
    // steps in the rounds are the rest of their warm-up, then the repetitions (the stand-in step
    // itself takes no time).
    const live: EngineId[] = ['scorch-cpu', 'jaxjs-wasm', 'tfjs-cpu'];
    const first: Record<string, number> = { 'scorch-cpu': 1, 'jaxjs-wasm': 400, 'tfjs-cpu': 2 * full.slowStepMs };
    const steps = new Map<EngineId, number>(live.map((id) => [id, 0]));
    const workers = new Map(live.map((id) => [id, {
      alive: true,
      request: (async (message: { op: string }) => {
        if (message.op === 'step') steps.set(id, steps.get(id)! + 1);
        return { ms: 1 };
      }) as StepWorker['request'],
    } as StepWorker]));
    const rows = new Map(live.map((id) => [id, { engine: id, status: 'timed', warmupMs: first[id] } as Row]));
    await timeInterleaved(DSM_CASE, full, live, workers, rows);
    // scorch's 1 ms step also gets a lead-in of 100 such steps before each timed one
    // (full.leadInMs; jax-js's 400 ms step is over leadInMaxMs).
    expect(Object.fromEntries(steps)).toEqual({ 'scorch-cpu': 19 + full.reps * (100 + 1), 'jaxjs-wasm': 2 + full.reps, 'tfjs-cpu': 5 });
    for (const id of live) expect(rows.get(id)!.samplesMs).toHaveLength(id === 'tfjs-cpu' ? 5 : full.reps);
  });

  it('run untimed lead-in steps right before each timed step of a fast engine, until they add up to leadInMs, and time only the timed one', async () => {
    const full = planFor('full');
    expect([full.leadInMs, full.leadInMaxMs]).toEqual([100, 250]);
    expect(planFor('quick').leadInMs).toBe(0);
    // Two warm-up steps in all (the check's and one in the rounds), then two timed repetitions.
    const short = { ...full, warmupMax: 2, reps: 2 };
    const live: EngineId[] = ['scorch-cpu', 'torch-cpu-default', 'tfjs-wasm'];
    const first: Record<string, number> = { 'scorch-cpu': 1, 'torch-cpu-default': full.leadInMaxMs, 'tfjs-wasm': full.leadInMaxMs + 1 };
    // Each step reports 40 ms and a thousandth per step before it, so the samples say which steps
    // were timed; a lead-in of 100 ms is three such steps (80 < 100 ≤ 120).
    const log: { id: EngineId; n: number; start: number }[] = [];
    const workers = new Map(live.map((id) => [id, {
      alive: true,
      request: (async (message: { op: string }) => {
        if (message.op !== 'step') return null;
        log.push({ id, n: log.length, start: performance.now() });
        return { ms: 40 + (log.length - 1) / 1000 };
      }) as StepWorker['request'],
    } as StepWorker]));
    const rows = new Map(live.map((id) => [id, { engine: id, status: 'timed', warmupMs: first[id] } as Row]));
    await timeInterleaved(DSM_CASE, short, live, workers, rows);
    // Round 0: one warm-up step each, no lead-in. Rounds 1 and 2: the two engines within
    // leadInMaxMs run three lead-in steps, then at once their timed step; TF.js wasm only a timed one.
    const expected = [0, 1, 2].flatMap((round) => roundOrder(live, DSM_CASE.id, round).flatMap((id) => (round > 0 && id !== 'tfjs-wasm' ? [id, id, id, id] : [id])));
    expect(log.map((e) => e.id)).toEqual(expected);
    for (const id of live) {
      const mine = log.filter((e) => e.id === id);
      // The timed steps are the last of each round's four (or the single step), never a lead-in.
      const timed = id === 'tfjs-wasm' ? [mine[1]!, mine[2]!] : [mine[4]!, mine[8]!];
      expect(rows.get(id)!.samplesMs!.map((ms) => Math.round((ms - 40) * 1000)), id).toEqual(timed.map((e) => e.n));
      expect(rows.get(id)!.leadInSteps, id).toBe(id === 'tfjs-wasm' ? undefined : 3);
      if (id !== 'tfjs-wasm') {
        // No settle between lead-in steps and their timed step, even for PyTorch's default threads.
        for (const k of [1, 2, 3, 5, 6, 7]) expect(mine[k + 1]!.start - mine[k]!.start, id).toBeLessThan(100);
      }
    }
    // After PyTorch default threads' timed step, the next engine still waits its settle time.
    for (let i = 1; i < log.length; i++) {
      if (log[i - 1]!.id === 'torch-cpu-default' && log[i]!.id !== 'torch-cpu-default') expect(log[i]!.start - log[i - 1]!.start).toBeGreaterThanOrEqual(ENGINES['torch-cpu-default'].settleMs! - 2);
    }
  });

  it('stop a lead-in of steps that report no time at LEAD_IN_STEPS_MAX', async () => {
    const full = planFor('full');
    let steps = 0;
    const worker: StepWorker = { alive: true, request: (async (message: { op: string }) => {
      if (message.op !== 'step') return null;
      steps++;
      return { ms: 0 };
    }) as StepWorker['request'] };
    const rows = new Map([['scorch-cpu' as EngineId, { engine: 'scorch-cpu', status: 'timed', warmupMs: 1 } as Row]]);
    await timeInterleaved(DSM_CASE, { ...full, warmup: 1, warmupMax: 1, reps: 1 }, ['scorch-cpu'], new Map([['scorch-cpu' as EngineId, worker]]), rows);
    expect(LEAD_IN_STEPS_MAX).toBe(1000);
    expect(steps).toBe(LEAD_IN_STEPS_MAX + 1);
    expect(rows.get('scorch-cpu')!.leadInSteps).toBe(LEAD_IN_STEPS_MAX);
  });

  it('skip an engine with nothing to compile whose value computation puts a step over the limit, without a warm-up step', async () => {
    const { worker, requests } = recordingWorker(3 * plan.maxStepMs);
    const { row, timed } = await checkEngine('torch-cpu-1t', worker, DSM_CASE, 'inputs.bin', { value, scale: 1 }, plan.maxStepMs, plan, new SweepLimits());
    expect(timed).toBe(false);
    expect(requests.map((r) => r.op)).toEqual(['prepare', 'release']);
    expect(row).toMatchObject({ status: 'skipped', warmupMs: 2 * plan.maxStepMs, reason: expect.stringMatching(/from its value computation/) });
  });

  it('say a size skipped on a prediction was predicted over the limit, not measured over it, at the sizes after it', () => {
    // latest.json had TF.js's W4 d=128 'already over the 5.0 s step limit at d=32', where d=32
    // was never run (a step predicted at 5.3 s from d=8's 0.84 s).
    const predictedOnly = new SweepLimits();
    predictedOnly.record('tfjs-wasm', ismCase(2), 132.7);
    predictedOnly.record('tfjs-wasm', ismCase(8), 841.9);
    expect(predictedOnly.reasonToSkip('tfjs-wasm', ismCase(32), 5000)).toMatch(/^a step would take about 5\.\d s \(from 0\.8 s at 8\), over this mode's 5\.0 s limit$/);
    expect(predictedOnly.reasonToSkip('tfjs-wasm', ismCase(128), 5000)).toBe('predicted over the 5.0 s step limit at d=32 (not run there)');
    const measured = new SweepLimits();
    measured.overLimit('tfjs-wasm', ismCase(32));
    expect(measured.reasonToSkip('tfjs-wasm', ismCase(128), 5000)).toBe('already over the 5.0 s step limit at d=32');
  });

  /** A stand-in worker whose steps take the times in `ms`, in order, with `counters[i]` on the i-th. */
  function scriptedWorker(ms: number[], counters?: Record<string, number>[]): StepWorker {
    let i = 0;
    return {
      alive: true,
      request: (async (message: { op: string }) => {
        if (message.op !== 'step') return null;
        const k = i++;
        return { ms: ms[k]!, ...(counters ? { counters: counters[k]! } : {}) };
      }) as StepWorker['request'],
    };
  }
  const matmul = matmulCase(256);
  const timeOne = async (engine: EngineId, worker: StepWorker, timing = plan): Promise<Row> => {
    const rows = new Map<EngineId, Row>([[engine, { engine, status: 'timed', warmupMs: 1 }]]);
    await timeInterleaved(matmul, timing, [engine], new Map([[engine, worker]]), rows);
    return rows.get(engine)!;
  };

  it('record the figure at the median repetition, figureBest at the fastest and figureWorst at the slowest', async () => {
    const row = await timeOne('scorch-cpu', scriptedWorker([5, 1, 3, 2, 4]));
    expect(row.samplesMs).toEqual([5, 1, 3, 2, 4]);
    expect([row.figure, row.figureBest, row.figureWorst]).toEqual([figureFor(matmul, 3), figureFor(matmul, 1), figureFor(matmul, 5)]);
  });

  it('record per-step counters as the median over the repetitions', async () => {
    const counters = [10, 50, 20, 30, 40].map((dispatches) => ({ dispatches, submits: 1 }));
    const row = await timeOne('scorch-webgpu', scriptedWorker([1, 1, 1, 1, 1], counters));
    expect(row.counters).toEqual({ dispatches: 30, submits: 1 });
  });

  it('record leadInSteps as the median of the rounds\' lead-in step counts', async () => {
    // Rounds 0–3: one 10 ms lead-in step, then the timed step; round 4: five 2 ms lead-in steps.
    const ms = [10, 1, 10, 1, 10, 1, 10, 1, 2, 2, 2, 2, 2, 1];
    const row = await timeOne('scorch-cpu', scriptedWorker(ms), { ...plan, leadInMs: 10, leadInMaxMs: 1000 });
    expect(row.samplesMs).toEqual([1, 1, 1, 1, 1]);
    expect(row.leadInSteps).toBe(1);
  });
});
