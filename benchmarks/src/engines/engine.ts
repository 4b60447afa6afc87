// The shape every JavaScript engine's workloads take, so the harness can time any of them (and
// scorch can later swap an eager step for a compiled one without the harness changing):
// `prepare` builds the case's state from the shared inputs and returns the value to check and a
// `step` to time. Also the value computations shared by all engines (a checksum, sample
// statistics), done in float64 on the host so they add no rounding of their own.

import type { HelloResult } from '../protocol.js';
import type { Inputs } from '../inputs.js';
import type { CaseSpec, ConvCase, HvpCase, LangevinCase, MatmulCase, TrainingCase } from '../workloads.js';

export interface PreparedCase {
  /** The workload's value from the initial state; called once, before any step. */
  value(): Promise<number[]>;
  /**
   * One timed unit of work, returning once its result has been computed (read back, or jax-js's
   * blockUntilReady). The worker times it, unless it returns a number: the milliseconds it
   * measured itself, where it ran (a browser page times its step inside the page, so that the
   * round trip to the page is not in the figure).
   */
  step(): Promise<void | number>;
  /** Counters of the last step (scorch on WebGPU: dispatches and submits). */
  counters?(): Record<string, number>;
  dispose(): void;
}

export interface Engine {
  hello(): Promise<HelloResult>;
  prepare(spec: CaseSpec, inputs: Inputs): Promise<PreparedCase>;
  /** Frees what the engine started outside its process (a browser), when the worker exits. */
  close?(): Promise<void>;
}

/** One handler per kind of case (a missing one is a compile error); the training objectives share one. */
export interface WorkloadHandlers<R> {
  matmul(spec: MatmulCase): R;
  langevin(spec: LangevinCase): R;
  hvp(spec: HvpCase): R;
  conv(spec: ConvCase): R;
  training(spec: TrainingCase): R;
}

/** The handler of `spec`'s workload, called with it: every engine dispatches its cases through this. */
export function byWorkload<R>(spec: CaseSpec, handlers: WorkloadHandlers<R>): R {
  switch (spec.workload) {
    case 'matmul':
      return handlers.matmul(spec);
    case 'langevin':
      return handlers.langevin(spec);
    case 'hvp':
      return handlers.hvp(spec);
    case 'conv':
      return handlers.conv(spec);
    default:
      return handlers.training(spec);
  }
}

/** uᵀCw in float64 for a row-major [n, n] product C read back from an engine. */
export function matmulChecksum(c: ArrayLike<number>, u: ArrayLike<number>, w: ArrayLike<number>, n: number): number {
  if (c.length !== n * n) throw new Error(`matmulChecksum: expected ${n}×${n} = ${n * n} values, got ${c.length}`);
  let total = 0;
  for (let i = 0; i < n; i++) {
    let row = 0;
    for (let j = 0; j < n; j++) row += c[i * n + j]! * w[j]!;
    total += u[i]! * row;
  }
  return total;
}

/** Langevin's check statistics of particles [N, 2]: mean x₁, mean x₂, mean ‖x‖², mean of weights·x. */
export function particleStatistics(x: ArrayLike<number>, weights: ArrayLike<number>): number[] {
  if (x.length !== weights.length || x.length % 2 !== 0) throw new Error(`particleStatistics: expected [N, 2] particles and weights of one shape, got ${x.length} and ${weights.length} values`);
  const n = x.length / 2;
  let m1 = 0;
  let m2 = 0;
  let sq = 0;
  let weighted = 0;
  for (let i = 0; i < n; i++) {
    const a = x[2 * i]!;
    const b = x[2 * i + 1]!;
    m1 += a;
    m2 += b;
    sq += a * a + b * b;
    weighted += weights[2 * i]! * a + weights[2 * i + 1]! * b;
  }
  return [m1 / n, m2 / n, sq / n, weighted / n];
}

/** uᵀA and Bw in float64 for row-major [n, n] A and B: uᵀ(AB)w = (uᵀA)(Bw) without the product. */
export function matmulProjections(a: ArrayLike<number>, b: ArrayLike<number>, u: ArrayLike<number>, w: ArrayLike<number>, n: number): { uA: Float64Array; bw: Float64Array } {
  const uA = new Float64Array(n);
  const bw = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      uA[k]! += u[i]! * a[i * n + k]!;
      bw[i]! += b[i * n + k]! * w[k]!;
    }
  }
  return { uA, bw };
}

/** ⟨a, b⟩ in float64 over two arrays of one length (the conv workload's checksums). */
export function innerProduct(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`innerProduct: ${a.length} values against ${b.length}`);
  let total = 0;
  for (let i = 0; i < a.length; i++) total += a[i]! * b[i]!;
  return total;
}
