// The run itself. For each case: make the inputs once, get the float64 reference, have every
// engine compute the value from those inputs and check it, then time the engines that agree,
// interleaved: each timed round runs one step of every engine in turn (the order shuffled from
// round to round), so that drift and other load hit every engine alike; a fast engine's timed
// step follows 100 ms of untimed steps of its own, back to back, as in a training loop. An engine
// whose step would overrun the plan's limit is not timed, and its row says so.

import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkScale, compareValues } from './agreement.js';
import { ENGINES, type EngineId, type EngineSpec } from './engines.js';
import { referenceEngine } from './engines/scorch.js';
import { type Inputs, encodeInputs, makeInputs } from './inputs.js';
import { loadAverage, machineInfo, nvidiaGpu } from './machine.js';
import { RELAXED_SIMD_FLAG, measureSimdPeak, simdPeakLine } from './simdPeak.js';
import { affinity, chooseCore, pinThread } from './pinning.js';
import type { HelloResult, PrepareResult, RequestBody, StepResult } from './protocol.js';
import { type CaseResult, type EngineRecord, type GrowthRecord, type ReferenceSource, type Row, SCHEMA, type SuiteResults, recordedValue } from './results.js';
import { growthExponent, summarize } from './stats.js';
import { type EngineWorker, bundleWorker, scratchDir, startWorker } from './workerHost.js';
import { type CaseSpec, MIN_REPS, type Plan, TOLERANCES, WORKLOADS, type WorkloadId, figureFor } from './workloads.js';

export interface SuiteOptions {
  plan: Plan;
  engines: readonly EngineId[];
  workloads: readonly WorkloadId[];
  /** Whether every engine and workload was asked for. */
  complete: boolean;
  command: string;
  repoRoot: string;
  /** Where inputs and worker logs go; default benchmarks/.tmp. */
  scratch?: string;
  /** Progress lines (stderr in the CLI). */
  log: (line: string) => void;
  /** Run the Node engines with relaxed SIMD on (`--relaxed-simd`): with these flags (see relaxedSimdNodeFlags). */
  relaxedSimd?: { nodeFlags: string[] };
}

const HELLO_TIMEOUT_MS = 180_000;

/** The worker whose float64 values are the reference when it runs (see referenceValue). */
const REFERENCE_ENGINE: EngineId = 'torch-cpu-1t';

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

/** The code measured: uncommitted changes here make a run's commit '-dirty' (tests, results and READMEs do not). */
const MEASURED_PATHS = [':(glob)packages/*/src/**', 'benchmarks/src', 'benchmarks/bench.ts', 'benchmarks/package.json', 'pnpm-lock.yaml'];

/** The checkout's commit, with '-dirty' when the code measured has uncommitted changes. */
function commitOf(repoRoot: string): string {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: repoRoot, encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return 'unknown';
  const dirty = git('status', '--porcelain', '--untracked-files=no', '--', ...MEASURED_PATHS).stdout.trim() !== '';
  return `${head.stdout.trim()}${dirty ? '-dirty' : ''}`;
}

/** A step's cost estimated from the value computation (which does a step's work and a bit more). */
function stepCostFromValue(spec: CaseSpec, valueMs: number): number {
  switch (spec.workload) {
    case 'langevin':
      return (valueMs * spec.stepsPerRep) / (spec.checkSigmas.length * spec.checkStepsPerLevel);
    case 'ssmvr':
    case 'dsm':
    case 'ism':
      return valueMs / 1.5; // a step, plus a loss evaluation without the backward pass
    default:
      return valueMs;
  }
}

/**
 * Sizes of a sweep (matmul's n, ISM's d) and each engine's timed cost along it: predicts whether
 * the next size would overrun the limit, and remembers where an engine went over it, so that a
 * slow engine is not run on sizes it cannot finish in time.
 */
export class SweepLimits {
  private readonly timed = new Map<string, { size: number; ms: number }[]>();
  /** Per engine/workload, the size found over the limit, and whether a step there was timed or only predicted. */
  private readonly overAt = new Map<string, { size: string; predicted: boolean }>();

  static sizeOf(spec: CaseSpec): number | undefined {
    if (spec.workload === 'matmul') return spec.n;
    if (spec.workload === 'ism') return spec.net.dim;
    return undefined;
  }

  /** Why `engine` should not run `spec` within `limit`, or undefined when it may. */
  reasonToSkip(engine: EngineId, spec: CaseSpec, limit: number): string | undefined {
    const size = SweepLimits.sizeOf(spec);
    if (size === undefined) return undefined;
    const key = `${engine}/${spec.workload}`;
    const earlier = this.overAt.get(key);
    // A size skipped on a prediction was never run: saying 'already over' there claimed a measurement.
    if (earlier) return earlier.predicted ? `predicted over the ${seconds(limit)} step limit at ${earlier.size} (not run there)` : `already over the ${seconds(limit)} step limit at ${earlier.size}`;
    const history = this.timed.get(key) ?? [];
    const last = history[history.length - 1];
    if (!last) return undefined;
    // Matmul grows as n³; ISM by the exponent seen so far (from a single point, 1.2: at small d
    // the d-fold replicated batch through the 256-wide layers dominates, which is linear in d).
    const exponent = spec.workload === 'matmul' ? 3 : history.length >= 2 ? growthExponent(history.slice(-2).map((h) => ({ size: h.size, cost: h.ms }))) : 1.2;
    const predicted = last.ms * (size / last.size) ** exponent;
    if (predicted <= limit) return undefined;
    this.overAt.set(key, { size: spec.size, predicted: true });
    return `a step would take about ${seconds(predicted)} (from ${seconds(last.ms)} at ${last.size}), over this mode's ${seconds(limit)} limit`;
  }

  overLimit(engine: EngineId, spec: CaseSpec): void {
    if (SweepLimits.sizeOf(spec) !== undefined) this.overAt.set(`${engine}/${spec.workload}`, { size: spec.size, predicted: false });
  }

  record(engine: EngineId, spec: CaseSpec, ms: number): void {
    const size = SweepLimits.sizeOf(spec);
    if (size === undefined) return;
    const key = `${engine}/${spec.workload}`;
    this.timed.set(key, [...(this.timed.get(key) ?? []), { size, ms }]);
  }
}

/** A `--relaxed-simd` run whose Node worker failed to start or lacks relaxed SIMD: the run stops (bench.ts reports it). */
export class RelaxedSimdError extends Error {
  override readonly name = 'RelaxedSimdError';
}

/** What the suite needs of an engine's worker (an EngineWorker; tests pass stand-ins). */
export type SuiteWorker = StepWorker & Pick<EngineWorker, 'close'> & { readonly pid?: number };

export interface Engines {
  records: EngineRecord[];
  workers: Map<EngineId, SuiteWorker>;
}

/**
 * An engine's hello with its worker: one that answered available has a worker; one whose worker
 * could not start has none (and is unavailable, saying so). `failure` says how a worker failed to
 * start or to answer its hello (the reason reads 'its worker ' and it), where it did not answer
 * that its engine cannot run here.
 */
type Started = { id: EngineId } & (
  | (Extract<HelloResult, { available: true }> & { worker: SuiteWorker })
  | (Extract<HelloResult, { available: false }> & { worker: SuiteWorker | null; failure?: string })
);

/**
 * Starts every engine's worker at once (their imports and warm-ups overlap; nothing is timed yet),
 * each by `start`, and asks each for its hello. With `relaxedSimd`, every Node worker must start
 * and answer its hello, and every one that runs must say it has relaxed SIMD in its process; where
 * one does not, every worker is closed and a RelaxedSimdError names the engine and why. (A Node
 * worker that answers that its engine cannot run here, no WebGPU adapter say, is recorded as not
 * run as usual: it ran nothing with or without relaxed SIMD.)
 */
export async function startEngines(
  opts: Pick<SuiteOptions, 'engines' | 'relaxedSimd'>, start: (spec: EngineSpec) => SuiteWorker, commit: string, log: (line: string) => void,
): Promise<Engines> {
  const started = await Promise.all(
    opts.engines.map(async (id): Promise<Started> => {
      const failed = (worker: SuiteWorker | null, failure: string): Started => ({ id, worker, available: false, reason: `its worker ${failure}`, failure });
      let worker: SuiteWorker;
      try {
        worker = start(ENGINES[id]);
      } catch (e) {
        // Not started: nothing to close. The other workers go on (and are closed as usual).
        return failed(null, `could not start: ${(e as Error).message}`);
      }
      try {
        return { ...(await worker.request<HelloResult>({ op: 'hello' }, HELLO_TIMEOUT_MS)), id, worker };
      } catch (e) {
        return failed(worker, `failed: ${(e as Error).message}`);
      }
    }),
  );
  if (opts.relaxedSimd) {
    // Only the Node workers get the flags. A Node worker that failed to start would drop the very
    // engine whose relaxed SIMD the run is for; one that lacks it would record figures without it.
    // The PyTorch worker never says (protocol.ts), so only the Node workers are asked for it.
    const node = started.filter((engine) => ENGINES[engine.id].worker.runtime === 'node');
    const name = (id: EngineId) => `${ENGINES[id].label} (${id})`;
    const flags = opts.relaxedSimd.nodeFlags.length > 0 ? opts.relaxedSimd.nodeFlags.join(' ') : 'no flags';
    const problems = node.flatMap((engine) =>
      !engine.available && engine.failure !== undefined
        ? [`the worker of ${name(engine.id)} ${engine.failure} (started with ${flags}); the run stops rather than go on without an engine whose relaxed-SIMD figures it is for`]
        : [],
    );
    const lacking = node.filter((engine) => engine.available && engine.relaxedSimd !== true);
    if (lacking.length > 0) {
      problems.push(
        `the worker of ${lacking.map(({ id }) => name(id)).join(', the worker of ')} has no relaxed SIMD in its process (started with ${flags}); the run stops rather than record its rows as relaxed-SIMD figures`,
      );
    }
    if (problems.length > 0) {
      await Promise.all(started.map(({ worker }) => worker?.close()));
      throw new RelaxedSimdError(`--relaxed-simd: ${problems.join('; ')}`);
    }
  }
  const engines: Engines = { records: [], workers: new Map() };
  for (const engine of started) {
    const spec = ENGINES[engine.id];
    const base = { id: engine.id, label: spec.label, kind: spec.kind, note: spec.note };
    if (engine.available) {
      // scorch's own workers cannot know which commit they were built from; the suite does.
      const version = engine.id.startsWith('scorch-') ? `scorch ${commit}` : engine.version;
      // What a Node worker said of relaxed SIMD, as it said it (the PyTorch worker, and a Node
      // worker that did not say, leave it out).
      const relaxedSimd = engine.relaxedSimd !== undefined ? { relaxedSimd: engine.relaxedSimd } : {};
      engines.records.push({ ...base, available: true, version, backend: engine.backend, threads: engine.threads, details: engine.details, ...relaxedSimd });
      engines.workers.set(engine.id, engine.worker);
      log(`  ${spec.label}: ${engine.version}, ${engine.backend}, threads ${engine.threads}`);
    } else {
      engines.records.push({ ...base, available: false, reason: engine.reason, ...(engine.failure !== undefined ? { workerFailed: true } : {}) });
      await engine.worker?.close();
      log(`  ${spec.label}: not run: ${engine.reason}`);
    }
  }
  return engines;
}

/** One engine's value check and first warm-up step: its row, and whether it goes on to be timed. */
export async function checkEngine(
  id: EngineId, worker: StepWorker, spec: CaseSpec, inputPath: string, reference: { value: number[]; scale: number }, limit: number, plan: Plan, sweeps: SweepLimits,
): Promise<{ row: Row; timed: boolean }> {
  // The value computation runs a whole step: it settles too.
  const prepared = await runStep(id, worker, { op: 'prepare', spec, inputs: inputPath }, Math.max(10 * limit, 120_000));
  const check = compareValues(spec, prepared.value, reference.value, reference.scale);
  const row: Row = { engine: id, status: 'timed', value: recordedValue(prepared.value), valueMs: prepared.valueMs, check: { ok: check.ok, error: Number.isFinite(check.error) ? check.error : null, rtol: check.rtol } };
  const skip = async (reason: string) => {
    sweeps.overLimit(id, spec);
    await worker.request({ op: 'release' }, 60_000);
    return { row: { ...row, status: 'skipped' as const, reason }, timed: false };
  };
  if (!check.ok) {
    await worker.request({ op: 'release' }, 60_000);
    return { row: { ...row, status: 'mismatch', reason: `value ${check.reason}; not timed` }, timed: false };
  }
  const estimate = stepCostFromValue(spec, prepared.valueMs);
  if (estimate > limit && !ENGINES[id].compiles) {
    // Far over the limit already: not worth another step. An engine that compiles gets one to be
    // judged by, since compiling inflates the estimate.
    row.warmupMs = estimate;
    return skip(`a step takes about ${seconds(estimate)} (from its value computation), over this mode's ${seconds(limit)} limit`);
  }
  // The first warm-up step, on its own, for every engine that may be timed: what a step costs once
  // compilation and first allocations are done (the value computation includes them, and its
  // estimate can be twice a step: PyTorch's first step at a new size faults in fresh memory, a
  // jit engine compiles). Its time, not the estimate, says whether the step is slow (5 timed
  // repetitions, no further warm-up: timeInterleaved), so engines with the same step time get the
  // same warm-up and repetitions.
  const probe = await runStep(id, worker, { op: 'step' }, Math.max(4 * Math.min(estimate, limit * 10), 4 * limit, 60_000));
  row.warmupMs = probe.ms;
  if (probe.ms > limit) return skip(`a warm-up step took ${seconds(probe.ms)}, over this mode's ${seconds(limit)} limit`);
  return { row, timed: true };
}

/** What the value check and the timed rounds need of a worker (an EngineWorker; tests pass stand-ins). */
export type StepWorker = Pick<EngineWorker, 'request' | 'alive'>;

/**
 * A request that runs a step of engine `id` (a step, or the value computation, which runs one and
 * a bit more), then the engine's `settleMs` wait (engines.ts), if it has one, before anything else
 * runs. Every request of the suite that runs a step goes through here (the value computation, the
 * value check's warm-up step, the timed rounds' steps), so no engine's step starts beside such an
 * engine's spinning threads; only a lead-in step does not (Plan.leadInMs), since its own steps
 * follow it at once. A request that fails is not waited for: it throws at once.
 */
async function runStep<M extends Extract<RequestBody, { op: 'prepare' | 'step' }>>(id: EngineId, worker: StepWorker, message: M, timeoutMs: number): Promise<M extends { op: 'prepare' } ? PrepareResult : StepResult> {
  const result = await worker.request<M extends { op: 'prepare' } ? PrepareResult : StepResult>(message, timeoutMs);
  const ms = ENGINES[id].settleMs;
  if (ms) await new Promise((resolve) => setTimeout(resolve, ms));
  return result;
}

/**
 * The engines' order in round `round` of case `caseId`: a shuffle seeded by both (the same in every
 * run). A rotation (the order turned by one each round) kept every engine's predecessor the same
 * in every round, so whatever one engine's step leaves behind (PyTorch's spinning threads past its
 * settle time, caches, another process's late work) always fell on the same next engine; a
 * shuffle spreads it over all of them.
 */
export function roundOrder<T>(live: readonly T[], caseId: string, round: number): T[] {
  let seed = 2166136261;
  for (const ch of `${caseId}#${round}`) seed = Math.imul(seed ^ ch.charCodeAt(0), 16777619) >>> 0;
  // mulberry32: a small deterministic generator, plenty for a shuffle of a dozen engines.
  const next = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const order = [...live];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * Warm-up steps (the value check's included) for an engine whose first warm-up step took
 * `firstMs`: enough to add up to plan.warmupMs at that time, at least plan.warmup, at most
 * plan.warmupMax.
 */
export function warmupSteps(plan: Plan, firstMs: number): number {
  const byTime = plan.warmupMs > 0 ? Math.ceil(plan.warmupMs / Math.max(firstMs, 0.001)) : 0;
  return Math.max(plan.warmup, Math.min(plan.warmupMax, byTime));
}

/** The most lead-in steps before one timed step: a bound for steps that report no time. */
export const LEAD_IN_STEPS_MAX = 1000;

/**
 * Timed rounds over the engines in `live` (after their remaining warm-up rounds); fills their
 * rows. Before each timed step of an engine whose first warm-up step took at most
 * plan.leadInMaxMs, untimed steps of it, back to back, until their times add up to
 * plan.leadInMs (at least one). After a step of an engine with `settleMs`, waits that long
 * before the next engine's step (runStep).
 */
export async function timeInterleaved(spec: CaseSpec, plan: Plan, live: readonly EngineId[], workers: ReadonlyMap<EngineId, StepWorker>, rows: Map<EngineId, Row>): Promise<void> {
  const samples = new Map<EngineId, number[]>(live.map((id) => [id, []]));
  const counters = new Map<EngineId, Record<string, number>[]>(live.map((id) => [id, []]));
  const stepTimeout = Math.max(4 * plan.maxScorchStepMs, 60_000);
  // checkEngine's warm-up step was the first; a slow engine needs no more, and gets the minimum
  // number of timed repetitions.
  const schedule = new Map(
    live.map((id) => {
      const first = rows.get(id)!.warmupMs!;
      const slow = first > plan.slowStepMs;
      return [id, { warmup: slow ? 0 : warmupSteps(plan, first) - 1, reps: slow ? Math.min(plan.reps, MIN_REPS) : plan.reps }];
    }),
  );
  // Lead-in step counts of the engines that get one (plan.leadInMs, up to plan.leadInMaxMs).
  const leadInSteps = new Map<EngineId, number[]>(live.filter((id) => plan.leadInMs > 0 && rows.get(id)!.warmupMs! <= plan.leadInMaxMs).map((id) => [id, []]));
  const rounds = Math.max(0, ...[...schedule.values()].map((s) => s.warmup + s.reps));
  for (let round = 0; round < rounds; round++) {
    const order = roundOrder(live, spec.id, round);
    for (const id of order) {
      const { warmup, reps } = schedule.get(id)!;
      if (!samples.has(id) || round >= warmup + reps) continue; // done, or dropped after an error
      try {
        const worker = workers.get(id)!;
        // The lead-in: untimed steps back to back before a timed one, until the engine's own
        // step times add up to Plan.leadInMs, with no settle between them (the engine's own busy
        // threads are what the next step of its loop meets).
        const counts = leadInSteps.get(id);
        if (round >= warmup && counts) {
          let steps = 0;
          for (let ms = 0; ms < plan.leadInMs && steps < LEAD_IN_STEPS_MAX; steps++) ms += (await worker.request<StepResult>({ op: 'step' }, stepTimeout)).ms;
          counts.push(steps);
        }
        const result = await runStep(id, worker, { op: 'step' }, stepTimeout);
        if (round < warmup) continue;
        samples.get(id)!.push(result.ms);
        if (result.counters) counters.get(id)!.push(result.counters);
      } catch (e) {
        samples.delete(id);
        rows.set(id, { ...rows.get(id)!, status: 'error', reason: `a step failed: ${(e as Error).message}` });
      }
    }
  }
  for (const id of live) {
    const worker = workers.get(id)!;
    if (worker.alive) await worker.request({ op: 'release' }, 60_000).catch(() => undefined);
    const timed = samples.get(id);
    if (!timed) continue;
    const s = summarize(timed);
    const row = rows.get(id)!;
    Object.assign(row, {
      samplesMs: timed,
      medianMs: s.median,
      minMs: s.min,
      maxMs: s.max,
      figure: figureFor(spec, s.median),
      figureBest: figureFor(spec, s.min),
      figureWorst: figureFor(spec, s.max),
    });
    const counts = leadInSteps.get(id);
    if (counts?.length) row.leadInSteps = summarize(counts).median;
    const perStep = counters.get(id)!;
    if (perStep.length > 0) row.counters = Object.fromEntries(Object.keys(perStep[0]!).map((k) => [k, summarize(perStep.map((c) => c[k] ?? 0)).median]));
  }
}

/**
 * The case's float64 reference (never timed). PyTorch's worker computes it when it runs here: it
 * is independent of scorch and takes seconds where scorch's float64 CPU backend takes minutes
 * (W4 at d = 128). Otherwise scorch's CPU backend does, in this process, from the formulas. The
 * suite's tests check that the two agree to 1e-9 on every workload.
 */
async function referenceValue(spec: CaseSpec, inputs: Inputs, inputPath: string, engines: Engines, log: (line: string) => void): Promise<{ by: ReferenceSource; value: number[]; valueMs: number }> {
  const torch = engines.workers.get(REFERENCE_ENGINE);
  if (torch?.alive) {
    try {
      return { by: 'torch-float64', ...(await torch.request<PrepareResult>({ op: 'reference', spec, inputs: inputPath }, 30 * 60_000)) };
    } catch (e) {
      log(`  the PyTorch reference failed (${(e as Error).message}); scorch's float64 CPU backend computes it`);
    }
  }
  return scorchReference(spec, inputs);
}

/** scorch's float64 reference, computed in this process. */
export async function scorchReference(spec: CaseSpec, inputs: Inputs): Promise<{ by: ReferenceSource; value: number[]; valueMs: number }> {
  const start = performance.now();
  const value = await (await referenceEngine().prepare(spec, inputs)).value();
  return { by: 'scorch-float64', value, valueMs: performance.now() - start };
}

/**
 * Pins the main thread of each started single-threaded CPU engine's worker (EngineSpec.oneThread)
 * to `core` (pinning.ts), all of them or none: where one cannot be pinned, those done are given
 * back `ownCores`. Returns what was done, for the results (method.pinning) and the log.
 */
export function pinOneThreadEngines(engines: Engines, core: number | null, ownCores: readonly number[] | null, pin: (tid: number, cores: readonly number[]) => string | undefined = pinThread): string {
  const ids = engines.records.filter((r) => r.available && ENGINES[r.id].oneThread).map((r) => r.id);
  if (ids.length === 0) return 'nothing pinned: no single-threaded CPU engine in the run';
  if (core === null) return `nothing pinned: ${process.platform !== 'linux' ? `pinning needs Linux's taskset (this is ${process.platform})` : ownCores === null ? 'taskset could not tell this process\'s cores' : ownCores.length < 2 ? 'one core' : 'taskset could not pin the suite\'s own thread'}`;
  const done: number[] = [];
  for (const id of ids) {
    const pid = engines.workers.get(id)?.pid;
    const failure = pid === undefined ? 'its worker has no process id' : pin(pid, [core]);
    if (failure !== undefined) {
      for (const p of done) if (ownCores) pin(p, ownCores);
      return `nothing pinned: the worker of ${ENGINES[id].label}: ${failure}`;
    }
    done.push(pid!);
  }
  return `the main thread of each single-threaded CPU engine's worker (${ids.map((id) => ENGINES[id].label).join(', ')}) pinned to core ${core} with taskset, as was the WebAssembly SIMD bound's measurement; their runtimes' other threads (garbage collector, compiler) left free: the cores of a virtual machine need not be equal (benchmarks/src/pinning.ts)`;
}

/** One case from inputs to rows: reference, value checks, interleaved timing, ratios. */
async function runCase(spec: CaseSpec, opts: SuiteOptions, engines: Engines, inputDir: string, sweeps: SweepLimits, log: (line: string) => void): Promise<CaseResult> {
  const { plan } = opts;
  const info = WORKLOADS[spec.workload];
  log(`${info.code} ${info.title}, ${spec.size}`);
  const caseLoad = loadAverage()[0];
  const inputs = makeInputs(spec);
  const inputPath = join(inputDir, `${spec.id}.bin`);
  writeFileSync(inputPath, encodeInputs(inputs));
  const computed = await referenceValue(spec, inputs, inputPath, engines, log);
  const reference = { ...computed, scale: checkScale(spec, inputs, computed.value) };

  const rows = new Map<EngineId, Row>();
  const live: EngineId[] = [];
  for (const record of engines.records) {
    const id = record.id;
    const worker = engines.workers.get(id);
    const limit = id.startsWith('scorch-') ? plan.maxScorchStepMs : plan.maxStepMs;
    const skip = record.available ? (ENGINES[id].cannot?.(spec) ?? sweeps.reasonToSkip(id, spec, limit)) : undefined;
    if (!record.available || !worker) rows.set(id, { engine: id, status: 'unavailable', reason: record.reason });
    else if (!worker.alive) rows.set(id, { engine: id, status: 'error', reason: 'its worker died earlier in the run' });
    else if (skip) rows.set(id, { engine: id, status: 'skipped', reason: skip });
    else {
      try {
        const { row, timed } = await checkEngine(id, worker, spec, inputPath, reference, limit, plan, sweeps);
        rows.set(id, row);
        if (timed) live.push(id);
      } catch (e) {
        rows.set(id, { engine: id, status: 'error', reason: (e as Error).message });
      }
    }
    const row = rows.get(id)!;
    if (record.available) log(`  ${record.label}: ${row.status === 'timed' ? `value ok (error ${row.check!.error!.toExponential(1)}) in ${seconds(row.valueMs!)}` : `${row.status}: ${row.reason}`}`);
  }

  await timeInterleaved(spec, plan, live, engines.workers, rows);
  for (const id of live) {
    const median = rows.get(id)!.medianMs;
    if (median !== undefined) sweeps.record(id, spec, median);
  }
  const scorchCpu = rows.get('scorch-cpu')?.medianMs;
  const scorchGpu = rows.get('scorch-webgpu')?.medianMs;
  for (const row of rows.values()) {
    if (row.medianMs === undefined) continue;
    if (scorchCpu !== undefined) row.vsScorchCpu = scorchCpu / row.medianMs;
    if (scorchGpu !== undefined) row.vsScorchWebgpu = scorchGpu / row.medianMs;
  }
  return { spec, loadAverage: caseLoad, reference: { ...reference, value: recordedValue(reference.value) }, rows: opts.engines.map((id) => rows.get(id)!) };
}

/** W4's growth exponent per engine timed at two or more d. */
function growthOf(cases: readonly CaseResult[], engines: readonly EngineId[]): GrowthRecord[] {
  const growth: GrowthRecord[] = [];
  for (const id of engines) {
    const points = cases.flatMap((c) => {
      const row = c.rows.find((r) => r.engine === id);
      return c.spec.workload === 'ism' && row?.medianMs !== undefined ? [{ size: c.spec.net.dim, cost: row.medianMs }] : [];
    });
    if (new Set(points.map((p) => p.size)).size >= 2) growth.push({ engine: id, exponent: growthExponent(points), dims: points.map((p) => p.size) });
  }
  return growth;
}

export async function runSuite(opts: SuiteOptions): Promise<SuiteResults> {
  const { plan, repoRoot } = opts;
  const started = Date.now();
  const log = (line: string) => opts.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const loadStart = loadAverage();
  const machine = machineInfo();
  const gpu = nvidiaGpu();
  log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; load average ${loadStart.join(' ')}; ${gpu.detail}`);
  // Before any engine starts, so nothing else of the suite's runs beside it; on the core the
  // single-threaded engines will compute on (pinning.ts), this thread pinned there meanwhile.
  const ownCores = affinity();
  const core = chooseCore(ownCores);
  const pinnedHere = core !== null && pinThread(process.pid, [core]) === undefined;
  const wasmSimdPeak = measureSimdPeak({ fusedChildFlags: opts.relaxedSimd?.nodeFlags ?? [RELAXED_SIMD_FLAG] });
  if (pinnedHere) pinThread(process.pid, ownCores!);
  log(simdPeakLine(wasmSimdPeak));
  if (opts.relaxedSimd) log(`relaxed SIMD on in every Node engine (${opts.relaxedSimd.nodeFlags.length > 0 ? opts.relaxedSimd.nodeFlags.join(' ') : 'this Node\'s default'})`);

  const scratch = opts.scratch ?? scratchDir(repoRoot);
  const inputDir = join(scratch, 'inputs');
  mkdirSync(inputDir, { recursive: true });
  const commit = commitOf(repoRoot);
  const bundle = await bundleWorker(repoRoot);
  let engines: Engines = { records: [], workers: new Map() };
  let pinning = 'nothing pinned: no engine started';
  const cases: CaseResult[] = [];
  try {
    engines = await startEngines(opts, (spec) => startWorker(spec, repoRoot, bundle, scratch, opts.relaxedSimd?.nodeFlags), commit, log);
    pinning = pinOneThreadEngines(engines, pinnedHere ? core : null, ownCores);
    log(pinning);
    const sweeps = new SweepLimits();
    for (const spec of plan.cases.filter((c) => opts.workloads.includes(c.workload))) {
      cases.push(await runCase(spec, opts, engines, inputDir, sweeps, log));
    }
  } finally {
    await Promise.all([...engines.workers.values()].map((w) => w.close()));
    rmSync(bundle, { force: true });
  }

  return {
    schema: SCHEMA,
    date: new Date(started).toISOString(),
    mode: plan.mode,
    complete: opts.complete,
    commit,
    command: opts.command,
    durationS: Math.round((Date.now() - started) / 100) / 10,
    machine: { ...machine, loadAverageStart: loadStart, loadAverageEnd: loadAverage(), wasmSimdPeak },
    gpu,
    method: {
      warmup: plan.warmup,
      warmupMs: plan.warmupMs,
      warmupMax: plan.warmupMax,
      reps: plan.reps,
      leadInMs: plan.leadInMs,
      leadInMaxMs: plan.leadInMaxMs,
      slowStepMs: plan.slowStepMs,
      maxStepMs: plan.maxStepMs,
      maxScorchStepMs: plan.maxScorchStepMs,
      statistic: 'median of the timed repetitions, with min–max; times measured inside each engine’s worker around one step (ending in a read back, or jax-js’s blockUntilReady)',
      interleaved: 'one worker process per engine; each round runs one timed step of every engine in turn, in an order shuffled per round (seeded by the case and the round); before each timed step, untimed steps of the same engine back to back until their times add up to leadInMs, at least one (engines whose warm-up step took at most leadInMaxMs)',
      reference: 'float64 from the same float32 inputs: PyTorch (CPU) when its worker runs, else scorch’s CPU backend written from the formulas; per case in reference.by',
      pinning,
      ...(opts.relaxedSimd ? { relaxedSimd: opts.relaxedSimd } : {}),
    },
    engines: engines.records,
    workloads: [...new Set(cases.map((c) => c.spec.workload))].map((id) => ({ ...WORKLOADS[id], tolerance: TOLERANCES[id] })),
    cases,
    growth: growthOf(cases, opts.engines),
  };
}
