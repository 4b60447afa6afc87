// References for the CPU matrix-product tests: seeded operands, the product in float64 with
// S = Σ|a||b| per element, the kernels' error bounds, and an emulation of the WebAssembly
// kernel's arithmetic (each element summed term by term in order of k, in its own type), which
// that kernel must match bit for bit.
//
// Bounds (u64 = 2^-53, u32 = 2^-24, exact value e = Σ_p a_ip·b_pj, S = Σ_p |a_ip·b_pj|,
// γ_k(u) = k·u/(1 − k·u); Higham, Accuracy and Stability of Numerical Algorithms, §3.1):
// - The float64 reference, a dot product of length k evaluated in order, is within γ_k(u64)·S of e.
// - TypeScript kernels (double accumulation in order of k, one rounding to the output type):
//   float64 within γ_k(u64)·S of e, so |kernel − ref| ≤ 2·γ_k(u64)·S; float32 inputs are exact
//   in double, the double dot product d is within γ_k(u64)·S of e and rounding to float32 adds at
//   most u32·|d| ≤ u32·(|ref| + 2·γ_k(u64)·S), or 2^-150 in the subnormal range: half an ulp of
//   the result plus a far smaller term.
// - WebAssembly kernels (each element accumulated in its own type, s ← fl(s + fl(a·b)), or one
//   rounding with fused multiply-add): within γ_k(u)·S of e for the type's u (the same bound for
//   both forms), plus in float32 at most 2^-150 per product that underflows (k·2^-150 in all).
//   So |kernel − ref| ≤ (γ_k(u) + γ_k(u64))·S (+ k·2^-150 in float32). For float32 this is
//   about k·u32·S: what BLAS guarantees, and k/2 times the TypeScript kernels' bound.

import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';

export type Float = Float32Array | Float64Array;
export type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;

export const U64 = 2 ** -53;
export const U32 = 2 ** -24;
const HALF_MIN_SUBNORMAL_F32 = 2 ** -150;

/** Deterministic values in [-1, 1) (mulberry32), so a failure reproduces. */
export function seededUniform(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() * 2 - 1;
}

/** Reference product in float64, with S = Σ|a||b| per element for the error bounds. */
export function referenceProduct(
  a: Float, aOff: number, b: Float, bOff: number, m: number, n: number, k: number,
): { value: Float64Array; absSum: Float64Array } {
  const value = new Float64Array(m * n);
  const absSum = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let abs = 0;
      for (let p = 0; p < k; p++) {
        const prod = a[aOff + i * k + p]! * b[bOff + p * n + j]!;
        s += prod;
        abs += Math.abs(prod);
      }
      value[i * n + j] = s;
      absSum[i * n + j] = abs;
    }
  }
  return { value, absSum };
}

export function gamma(k: number, u: number): number {
  return (k * u) / (1 - k * u);
}

/** |kernel − ref| allowed for the TypeScript kernels (double accumulation, one rounding). */
export function typescriptTolerance(ref: number, absSum: number, k: number, isFloat32: boolean): number {
  const doubleError = 2 * gamma(k, U64) * absSum;
  return isFloat32 ? U32 * (Math.abs(ref) + doubleError) + doubleError + HALF_MIN_SUBNORMAL_F32 : doubleError;
}

/** |kernel − ref| allowed for the WebAssembly kernels (accumulation in the element type). */
export function wasmTolerance(absSum: number, k: number, isFloat32: boolean): number {
  return isFloat32 ? (gamma(k, U32) + gamma(k, U64)) * absSum + k * HALF_MIN_SUBNORMAL_F32 : 2 * gamma(k, U64) * absSum;
}

const f32Bits = new Float32Array(1);
const i32Bits = new Int32Array(f32Bits.buffer);

/** The float32 next to x (a float32) in the direction of `toward`. */
function nextFloat32(x: number, toward: number): number {
  if (x === toward) return x;
  if (x === 0) return toward > 0 ? 2 ** -149 : -(2 ** -149);
  f32Bits[0] = x;
  i32Bits[0]! += (toward > x) === (x > 0) ? 1 : -1;
  return f32Bits[0]!;
}

/** s + p (doubles) rounded once to float32: a fused multiply-add's result when p = a·b is exact. */
export function roundSumToFloat32(s: number, p: number): number {
  const hi = s + p;
  // TwoSum: lo is hi's rounding error, so hi + lo = s + p exactly.
  const bb = hi - s;
  const lo = s - (hi - bb) + (p - bb);
  const r = Math.fround(hi);
  if (lo === 0 || r === hi) return r;
  // hi may sit exactly halfway between two floats while s + p does not: then lo decides.
  const other = nextFloat32(r, hi);
  if (hi - r !== other - hi) return r;
  const above = lo > 0;
  return above === other > r ? other : r;
}

/**
 * The WebAssembly kernel's arithmetic, one element at a time: s = 0, then s ← s + a·b for
 * p = 0…k−1, rounded to the element type after the product and after the sum (fused: once).
 * Inputs float32 make every product exact in double, so `fused` float32 is exact here; fused
 * float64 is not emulated.
 */
export function sequentialProduct(
  a: Float, aOff: number, b: Float, bOff: number, m: number, n: number, k: number, isFloat32: boolean, fused: boolean,
): Float64Array {
  if (fused && !isFloat32) throw new Error('sequentialProduct: fused float64 is not emulated');
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const x = a[aOff + i * k + p]!;
        const y = b[bOff + p * n + j]!;
        if (!isFloat32) s = s + x * y;
        else if (fused) s = roundSumToFloat32(s, x * y);
        else s = Math.fround(s + Math.fround(x * y));
      }
      out[i * n + j] = s;
    }
  }
  return out;
}

/** The index of the first element of `got` (from `offset`) that differs from `want` bitwise, or -1 (NaN equals NaN). */
export function firstDifference(got: ArrayLike<number>, offset: number, want: ArrayLike<number>): number {
  for (let e = 0; e < want.length; e++) if (!Object.is(got[offset + e], want[e])) return e;
  return -1;
}

/** An array of `length` values drawn from `next`. */
export function randomArray(Ctor: FloatCtor, length: number, next: () => number): Float {
  const out = new Ctor(length);
  for (let i = 0; i < length; i++) out[i] = next();
  return out;
}
