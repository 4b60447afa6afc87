// The results file: its JSON layout (one object per run, `schema: 'scorch-bench/v1'`), where runs
// are written (benchmarks/results/<date>-<machine>.json, with `-quick` for quick runs, beside an
// SVG chart, and latest.json/latest.svg for the most recent complete run), and reading it back
// (the CLI, the README's tables and the tests read latest.json).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineId } from './engines.js';
import type { GpuPresence, MachineInfo } from './machine.js';
import type { SimdPeak } from './simdPeak.js';
import { type CaseSpec, type Mode, type Tolerance, type WorkloadInfo, planFor } from './workloads.js';

export const SCHEMA = 'scorch-bench/v1';

/** A value as recorded: the numbers themselves, or for a long vector (W6's 17,154) a summary. */
export type RecordedValue = number[] | { length: number; norm: number; head: number[] };

/** Values up to this length are recorded whole; longer ones as their length, L2 norm and first entries. */
const WHOLE_VALUE_LENGTH = 16;

export function recordedValue(value: readonly number[]): RecordedValue {
  if (value.length <= WHOLE_VALUE_LENGTH) return [...value];
  return { length: value.length, norm: Math.sqrt(value.reduce((s, v) => s + v * v, 0)), head: value.slice(0, 4) };
}

export type ReferenceSource = 'torch-float64' | 'scorch-float64';

/** How many numbers a recorded value has. */
export const valueLength = (value: RecordedValue): number => (Array.isArray(value) ? value.length : value.length);

export interface EngineRecord {
  id: EngineId;
  label: string;
  kind: 'cpu' | 'gpu';
  available: boolean;
  /** Why the engine did not run here (unavailable engines only). */
  reason?: string;
  version?: string;
  backend?: string;
  threads?: number | string;
  details?: Record<string, string | number | boolean>;
  /**
   * Node engines that ran: whether WebAssembly in the worker's process had relaxed SIMD (its
   * hello). Absent for the PyTorch workers, for engines that did not run, and in runs before it was
   * recorded.
   */
  relaxedSimd?: boolean;
  /**
   * Set (true) where the engine's worker failed to start or to answer its hello: a failure of the
   * set-up (a missing runtime, a broken install), not an engine that cannot run here (no GPU),
   * which answers so. A run with one is not the record (latestRefusal).
   */
  workerFailed?: boolean;
  note?: string;
}

export type RowStatus = 'timed' | 'mismatch' | 'skipped' | 'unavailable' | 'error';

export interface Row {
  engine: EngineId;
  status: RowStatus;
  /** Why the row is not timed (every status but 'timed'), in words. */
  reason?: string;
  /** The value computed before timing (see `recordedValue`: long vectors are summarised). */
  value?: RecordedValue;
  /** The value check (absent when the engine never computed a value). */
  check?: {
    ok: boolean;
    /**
     * The relative error against the reference; null where it is not a finite number (a value
     * that is not finite, or a value of the wrong length): JSON has no infinity, and would write
     * null anyway.
     */
    error: number | null;
    rtol: number;
  };
  valueMs?: number;
  /**
   * The first warm-up step's time, which decides whether the engine is timed within the limit
   * and whether its step is slow (for an engine with nothing to compile skipped without one, the
   * estimate from its value computation, which ran a step).
   */
  warmupMs?: number;
  /**
   * Untimed steps run back to back before each timed step (the median), until they added up to
   * the run's `method.leadInMs`; absent for an engine without a lead-in.
   */
  leadInSteps?: number;
  samplesMs?: number[];
  medianMs?: number;
  minMs?: number;
  maxMs?: number;
  /** The figure in the workload's unit at the median, and at the fastest and slowest repetitions. */
  figure?: number;
  figureBest?: number;
  figureWorst?: number;
  /** Speed relative to scorch: scorch's median time ÷ this engine's (above 1: faster than scorch). */
  vsScorchCpu?: number;
  vsScorchWebgpu?: number;
  /** Per-step counters (scorch WebGPU: dispatches, submits), medians over the repetitions. */
  counters?: Record<string, number>;
}

export interface CaseResult {
  spec: CaseSpec;
  /** The 1-minute load average when the case started. */
  loadAverage: number;
  /** The float64 reference: PyTorch's when its worker runs here, else scorch's CPU backend's. */
  reference: { by: ReferenceSource; value: RecordedValue; valueMs: number; scale: number };
  rows: Row[];
}

/** A workload as a results file records it: what it reports, and the tolerance its check used. */
export interface WorkloadRecord extends WorkloadInfo {
  tolerance: Tolerance;
}

export interface GrowthRecord {
  engine: EngineId;
  /** The fitted exponent b of ms ≈ a·d^b over `dims`. */
  exponent: number;
  dims: number[];
}

export interface SuiteResults {
  schema: typeof SCHEMA;
  date: string;
  mode: Mode;
  /** Whether every workload and engine was asked for (only such runs update latest.json). */
  complete: boolean;
  /** The scorch commit measured ('-dirty': with uncommitted changes). */
  commit: string;
  command: string;
  durationS: number;
  /** wasmSimdPeak: the SIMD bound of one core, operands loaded from L1 (simdPeak.ts); absent in runs before it. */
  machine: MachineInfo & { loadAverageStart: number[]; loadAverageEnd: number[]; wasmSimdPeak?: SimdPeak | null };
  gpu: GpuPresence;
  method: {
    warmup: number;
    /** Warm-up by time (Plan.warmupMs, warmupMax); absent in runs before it (a fixed `warmup`). */
    warmupMs?: number;
    warmupMax?: number;
    reps: number;
    /** The lead-in before each timed step (Plan.leadInMs, leadInMaxMs); absent in runs before it. */
    leadInMs?: number;
    leadInMaxMs?: number;
    slowStepMs: number;
    maxStepMs: number;
    maxScorchStepMs: number;
    statistic: string;
    interleaved: string;
    reference: string;
    /** Which engines' main threads were pinned to which core, or why none (pinning.ts); absent in runs before it. */
    pinning?: string;
    /**
     * Set on runs made with `--relaxed-simd`: every Node engine had relaxed SIMD (the default in
     * Chrome 114+ and Node 22+), with these flags. Such runs never become latest.json.
     */
    relaxedSimd?: { nodeFlags: string[] };
  };
  engines: EngineRecord[];
  workloads: WorkloadRecord[];
  cases: CaseResult[];
  growth: GrowthRecord[];
}

export const resultsDir = (repoRoot: string): string => join(repoRoot, 'benchmarks', 'results');
export const latestJsonPath = (repoRoot: string): string => join(resultsDir(repoRoot), 'latest.json');
export const latestSvgPath = (repoRoot: string): string => join(resultsDir(repoRoot), 'latest.svg');

/** `<date>-<machine>[-quick][-relaxed-simd]`, the stem of a run's files. */
export function runStem(results: SuiteResults): string {
  return `${results.date.slice(0, 10)}-${results.machine.name}${results.mode === 'quick' ? '-quick' : ''}${results.method.relaxedSimd ? '-relaxed-simd' : ''}`;
}

/**
 * Why a run may not become latest.json, the suite's record (the READMEs' tables and `scorch bench`
 * read it), or undefined when it may: a complete full run (every workload and engine, the plan's
 * repetitions) made without `--relaxed-simd`. A file's shape (`complete` a boolean, `method` an object) is readResults' check.
 */
export function latestRefusal(results: SuiteResults): string | undefined {
  if (!results.complete) return 'a partial run (--workloads or --engines)';
  if (results.method.relaxedSimd) return 'relaxed SIMD was forced on (--relaxed-simd)';
  // A try-out's smaller sizes and fewer steps would replace the full run's figures in the READMEs.
  if (results.mode === 'quick') return 'a quick run (--quick): smaller sizes and fewer steps than a full run';
  // The READMEs say 'the median of 7' and show no count: another --reps would change that unseen.
  const reps = planFor(results.mode).reps;
  if (results.method.reps !== reps) return `a run with --reps ${results.method.reps}: the record's figures are medians of ${reps}`;
  // The record shows every engine that can run here: one whose worker failed would be missing
  // from it for a reason of this machine's set-up, and a failed row has no figure.
  const { workers, rows } = runFailures(results);
  if (workers.length > 0) return `the worker of ${workers.map((e) => e.id).join(', ')} failed to start or to answer (see its row)`;
  if (rows.length > 0) return `${rows.length} row(s) failed (${rows.slice(0, 4).map((r) => r.at).join(', ')}${rows.length > 4 ? ', ...' : ''})`;
  return undefined;
}

/**
 * What failed in a run: engines whose worker failed to start or to answer its hello, and rows
 * that are a mismatch or an error (`at`: case/engine). Such a run is not the record
 * (latestRefusal), and bench.ts exits with status 1.
 */
export function runFailures(results: SuiteResults): { workers: EngineRecord[]; rows: { at: string; row: Row }[] } {
  return {
    workers: results.engines.filter((e) => e.workerFailed),
    rows: results.cases.flatMap((c) => c.rows.filter((r) => r.status === 'mismatch' || r.status === 'error').map((row) => ({ at: `${c.spec.id}/${row.engine}`, row }))),
  };
}

/**
 * The files a run was written to: its own JSON and SVG, and latest.json/latest.svg too when it is
 * the record, or else why it is not (latestRefusal).
 */
export type WrittenFiles = { json: string; svg: string } & (
  | { latest: { json: string; svg: string }; refusal?: undefined }
  | { latest?: undefined; refusal: string }
);

/**
 * Writes the run's JSON and SVG into `dir`, and as latest.json/latest.svg too when latestRefusal
 * accepts it as the record; returns the files, or the refusal when latest.json was left alone.
 */
export function writeResults(results: SuiteResults, svg: string, dir: string): WrittenFiles {
  mkdirSync(dir, { recursive: true });
  // A second run of the day on the same machine and mode is written beside the first (-2, -3, ...),
  // not over it: an earlier run is never lost.
  const base = runStem(results);
  let stem = base;
  for (let n = 2; existsSync(join(dir, `${stem}.json`)); n++) stem = `${base}-${n}`;
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const own = { json: join(dir, `${stem}.json`), svg: join(dir, `${stem}.svg`) };
  writeFileSync(own.json, json);
  writeFileSync(own.svg, svg);
  const refusal = latestRefusal(results);
  if (refusal) return { ...own, refusal };
  const latest = { json: join(dir, 'latest.json'), svg: join(dir, 'latest.svg') };
  writeFileSync(latest.json, json);
  writeFileSync(latest.svg, svg);
  return { ...own, latest };
}

/** What a value is, in words, for readResults' errors. */
const kindOf = (value: unknown): string => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value);

/** The keys every results file has, and what each is (a kindOf). */
const REQUIRED_KEYS = {
  date: 'string',
  mode: 'string',
  complete: 'boolean',
  machine: 'object',
  method: 'object',
  engines: 'array',
  cases: 'array',
  workloads: 'array',
} as const satisfies Partial<Record<keyof SuiteResults, string>>;

/** Reads and checks a results file (e.g. latest.json); throws saying what is wrong. */
export function readResults(path: string): SuiteResults {
  if (!existsSync(path)) throw new Error(`no results at ${path}: run pnpm bench first (a full run: a quick one is not the record)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not a results file: ${(e as Error).message}`);
  }
  if (kindOf(parsed) !== 'object') throw new Error(`${path}: expected a results object, got ${kindOf(parsed)}`);
  const file = parsed as Record<string, unknown>;
  if (file.schema !== SCHEMA) throw new Error(`${path}: expected schema '${SCHEMA}', got ${JSON.stringify(file.schema)}`);
  for (const [key, kind] of Object.entries(REQUIRED_KEYS)) {
    if (file[key] === undefined) throw new Error(`${path}: the results have no '${key}'`);
    if (kindOf(file[key]) !== kind) throw new Error(`${path}: '${key}' is ${kindOf(file[key])}, expected ${kind}`);
  }
  // Absent, or { nodeFlags } (a run with --relaxed-simd): anything else would say neither.
  const { relaxedSimd } = file.method as { relaxedSimd?: unknown };
  if (relaxedSimd !== undefined && !(kindOf(relaxedSimd) === 'object' && Array.isArray((relaxedSimd as { nodeFlags?: unknown }).nodeFlags))) {
    throw new Error(`${path}: 'method.relaxedSimd' is ${JSON.stringify(relaxedSimd)}, neither absent nor { nodeFlags }`);
  }
  return parsed as SuiteResults;
}
