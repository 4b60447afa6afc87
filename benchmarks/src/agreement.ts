// The value check: an engine's value against the float64 reference, as a relative L2 error with
// the workload's tolerance and floor (workloads.ts says how each was chosen).

import { matmulProjections } from './engines/engine.js';
import { type Inputs, input } from './inputs.js';
import { type CaseSpec, TOLERANCES } from './workloads.js';

export interface Agreement {
  ok: boolean;
  /** ‖value − reference‖₂ / scale. */
  error: number;
  /** The scale the error is relative to. */
  scale: number;
  rtol: number;
  /** Why not ok, in words (a length mismatch, a NaN). */
  reason?: string;
}

const norm = (v: readonly number[]): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

/**
 * The scale errors are measured against: max(‖reference‖, floor), except for the matmul checksum,
 * whose typical size ‖uᵀA‖‖Bw‖/√n comes from the inputs (the checksum itself can be near zero).
 */
export function checkScale(spec: CaseSpec, inputs: Inputs, reference: readonly number[]): number {
  if (spec.workload === 'matmul') {
    const [a, b, u, w] = ['a', 'b', 'u', 'w'].map((name) => input(inputs, name).data) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const { uA, bw } = matmulProjections(a, b, u, w, spec.n);
    return (norm(Array.from(uA)) * norm(Array.from(bw))) / Math.sqrt(spec.n);
  }
  return Math.max(norm(reference), TOLERANCES[spec.workload].floor);
}

export function compareValues(spec: CaseSpec, value: readonly number[], reference: readonly number[], scale: number): Agreement {
  const { rtol } = TOLERANCES[spec.workload];
  if (value.length !== reference.length) {
    return { ok: false, error: Infinity, scale, rtol, reason: `${value.length} values where the reference has ${reference.length}` };
  }
  if (!value.every(Number.isFinite)) return { ok: false, error: Infinity, scale, rtol, reason: 'a value is not finite' };
  const error = norm(value.map((v, i) => v - reference[i]!)) / scale;
  return error <= rtol ? { ok: true, error, scale, rtol } : { ok: false, error, scale, rtol, reason: `relative error ${error.toExponential(2)} > ${rtol}` };
}
