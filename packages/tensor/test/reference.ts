// Shared helpers for the @scorch/tensor tests: a seeded data generator, plain-JS reference
// reductions over flat row-major data, element-wise comparison with stated tolerances and the
// bytes of an array for bit-for-bit comparison (as stored, or with every NaN read as one). They
// use nothing from the package, so a test compares the library with an independent computation.

import { expect } from 'vitest';

/** Unit roundoff of float32: one correctly rounded operation has relative error at most this. */
export const U32 = 2 ** -24;
/** Smallest positive float32 subnormal: the spacing of float32 values below 2^-126. */
export const F32_SUBNORMAL = 2 ** -149;

/**
 * A small deterministic generator (xorshift32 mapped to integers) for test data, independent of
 * the library's Philox. Values are integers in [lo, hi] divided by `denominator`, so with a
 * power-of-two denominator they are exact in float32 and sums of a few of them stay exact.
 */
export function seededValues(count: number, seed: number, lo = -8, hi = 8, denominator = 4): number[] {
  let state = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out.push((lo + (state % (hi - lo + 1))) / denominator);
  }
  return out;
}

/** Row-major multi-index of flat position `flat` in `shape`. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return idx;
}

/** Flat row-major position of a multi-index. */
export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let flat = 0;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d]! + idx[d]!;
  return flat;
}

export function product(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/**
 * Reduces flat row-major `data` of `shape` over `axes` (any order, negative allowed) by calling
 * `reducer` on the list of values that land in each output cell. Returns the output with the
 * reduced axes removed (or kept as 1 with `keepdims`).
 */
export function reduceReference(
  data: ArrayLike<number>,
  shape: readonly number[],
  axes: readonly number[],
  reducer: (values: number[]) => number,
  keepdims = false,
): { shape: number[]; data: number[] } {
  const rank = shape.length;
  const reduced = new Set(axes.map((a) => ((a % rank) + rank) % rank));
  const keptShape = shape.map((d, i) => (reduced.has(i) ? 1 : d));
  const groups: number[][] = Array.from({ length: product(keptShape) }, () => []);
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape).map((v, d) => (reduced.has(d) ? 0 : v));
    groups[ravel(idx, keptShape)]!.push(data[i]!);
  }
  const outShape = keepdims ? keptShape : shape.filter((_, i) => !reduced.has(i));
  return { shape: outShape, data: groups.map(reducer) };
}

export interface Tolerance {
  /** Allowed |actual − expected| / |expected|. */
  rel?: number;
  /** Allowed |actual − expected| regardless of magnitude. */
  abs?: number;
}

/**
 * Asserts element-wise |actual − expected| ≤ abs + rel·|expected| (per-element tolerances may be
 * given as arrays). Non-finite expected values must match exactly (same infinity, or NaN).
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { rel?: number | readonly number[]; abs?: number | readonly number[] } = {},
): void {
  expect(actual.length, 'element count').toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!Number.isFinite(e)) {
      if (Number.isNaN(e)) expect(Number.isNaN(a), `element ${i}: expected NaN, got ${a}`).toBe(true);
      else expect(a, `element ${i}`).toBe(e);
      continue;
    }
    const rel = typeof tol.rel === 'number' ? tol.rel : (tol.rel?.[i] ?? 0);
    const abs = typeof tol.abs === 'number' ? tol.abs : (tol.abs?.[i] ?? 0);
    const err = Math.abs(a - e);
    if (!(err <= abs + rel * Math.abs(e))) {
      expect.fail(`element ${i}: got ${a}, expected ${e} (error ${err} > abs ${abs} + rel ${rel}·|expected|)`);
    }
  }
}

/** Float32 values of a list of doubles (what the library stores for float32 data). */
export function f32(values: readonly number[]): number[] {
  return values.map(Math.fround);
}

/** The bytes of a typed array, so that bit-identity checks compare NaN payloads, −0 and +0 exactly. */
export function bitsOf(a: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }): number[] {
  return Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

/**
 * The bytes of a typed array with every NaN first written as the canonical NaN (`Number.NaN`
 * stored in the array's type), for bit-identity checks where which NaN a result holds is left
 * open (docs/conventions.md, "Which NaN"); −0, +0 and all other values must still agree exactly.
 */
export function canonicalNaNBits(a: Float32Array | Float64Array | Int32Array | Uint8Array): number[] {
  return bitsOf(a.map((v: number) => (Number.isNaN(v) ? Number.NaN : v)));
}
