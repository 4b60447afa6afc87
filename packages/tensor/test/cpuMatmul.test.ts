// The CPU backend's matrix-product kernel (matmulInto) against a plain triple loop computed in
// float64, on shapes chosen to hit every path of the kernel and every edge of its tiling: empty
// and unit dimensions, sizes that are not multiples of the 8×8 tile or of the 64/256/256 blocks,
// and nonzero offsets into larger arrays. Then once through the public matmul with broadcasting.
//
// Error bounds (u64 = 2^-53, u32 = 2^-24, exact value e = Σ_p a_ip·b_pj, S = Σ_p |a_ip·b_pj|):
// - A float64 dot product of length k, evaluated in any order, is within γ_k·S of e, where
//   γ_k = k·u64/(1 − k·u64) (Higham, Accuracy and Stability of Numerical Algorithms, §3.1).
//   The kernel and the reference each satisfy this, so |kernel − ref| ≤ 2·γ_k·S.
// - float32: the inputs are float32 values, exact in double; the kernel forms the dot product
//   in double (value d, |d − e| ≤ γ_k·S) and rounds once to float32, adding at most
//   u32·|d| ≤ u32·(|ref| + 2·γ_k·S), or half the smallest subnormal (2^-150) in the subnormal
//   range. So |kernel − ref| ≤ u32·(|ref| + 2·γ_k·S) + 2·γ_k·S + 2^-150: half an ulp of the
//   result plus a double-rounding term far below it. A kernel that rounded partial sums to
//   float32 would be off by up to ~k·u32·S and fail at the larger k below.

import { describe, expect, it } from 'vitest';
import { matmul, matmulInto, tensor } from '@scorch/tensor';

type Float = Float32Array | Float64Array;
type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;

const U64 = 2 ** -53;
const U32 = 2 ** -24;
const HALF_MIN_SUBNORMAL_F32 = 2 ** -150;

/** Deterministic values in [-1, 1) (mulberry32), so a failure reproduces. */
function seededUniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  };
}

/** Reference product in float64, with S = Σ|a||b| per element for the error bound. */
function referenceProduct(
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

function gamma(k: number): number {
  return (k * U64) / (1 - k * U64);
}

function tolerance(ref: number, absSum: number, k: number, isFloat32: boolean): number {
  const doubleError = 2 * gamma(k) * absSum;
  return isFloat32 ? U32 * (Math.abs(ref) + doubleError) + doubleError + HALF_MIN_SUBNORMAL_F32 : doubleError;
}

interface Case {
  m: number;
  k: number;
  n: number;
  aOff?: number;
  bOff?: number;
  cOff?: number;
}

// [m, k, n]. Paths in matmulInto: tiny products and n ≤ 2 take the direct loop, m ≤ 3 the row
// loop, everything else the tiled kernel (8×8 tiles, blocks of 64 rows, 256 of k, 256 columns).
const CASES: Case[] = [
  { m: 0, k: 0, n: 0 },
  { m: 0, k: 5, n: 3 },
  { m: 4, k: 5, n: 0 },
  { m: 4, k: 0, n: 3 }, // k = 0: C must be overwritten with zeros
  { m: 9, k: 0, n: 10, cOff: 3 },
  { m: 1, k: 1, n: 1 },
  { m: 1, k: 1023, n: 1 },
  { m: 1, k: 1, n: 1023 },
  { m: 1023, k: 1, n: 1 },
  { m: 7, k: 33, n: 5 },
  { m: 3, k: 3, n: 3 },
  { m: 2, k: 300, n: 2100 }, // row loop, more columns than one accumulator chunk
  { m: 300, k: 40, n: 2 }, // direct loop, narrow
  { m: 4, k: 1, n: 9 },
  { m: 8, k: 8, n: 8 }, // exactly one tile
  { m: 9, k: 17, n: 9 }, // one full tile plus one-wide edges
  { m: 127, k: 255, n: 63 },
  { m: 65, k: 64, n: 66 },
  { m: 70, k: 600, n: 270 }, // several blocks in every dimension, k split three ways
  { m: 127, k: 255, n: 63, aOff: 5, bOff: 11, cOff: 7 },
  { m: 65, k: 64, n: 66, aOff: 1, bOff: 2, cOff: 3 },
  { m: 7, k: 33, n: 5, aOff: 13, bOff: 1, cOff: 4 },
  { m: 2, k: 50, n: 30, aOff: 3, bOff: 3, cOff: 3 },
  { m: 40, k: 20, n: 1, aOff: 9, bOff: 2, cOff: 6 },
];

const GUARD = 4;

/**
 * Runs one case in `Ctor`: A and B sit inside larger arrays whose other cells are NaN (reading
 * them would poison the result), C's region starts as NaN (it must be overwritten) and the
 * cells around it hold a sentinel (they must not be written).
 */
function runCase(Ctor: FloatCtor, c: Case, seed: number): void {
  const { m, k, n } = c;
  const aOff = c.aOff ?? 0;
  const bOff = c.bOff ?? 0;
  const cOff = c.cOff ?? 0;
  const next = seededUniform(seed);
  const a = new Ctor(aOff + m * k + GUARD).fill(NaN);
  const b = new Ctor(bOff + k * n + GUARD).fill(NaN);
  for (let i = 0; i < m * k; i++) a[aOff + i] = next();
  for (let i = 0; i < k * n; i++) b[bOff + i] = next();
  const out = new Ctor(cOff + m * n + GUARD).fill(-7.5);
  out.fill(NaN, cOff, cOff + m * n);

  matmulInto(a, aOff, b, bOff, out, cOff, m, n, k);

  const { value, absSum } = referenceProduct(a, aOff, b, bOff, m, n, k);
  const isFloat32 = Ctor === Float32Array;
  // The first element outside its bound; NaN fails the comparison, so unwritten cells are caught.
  let firstBad = -1;
  for (let e = 0; e < m * n && firstBad < 0; e++) {
    if (!(Math.abs(out[cOff + e]! - value[e]!) <= tolerance(value[e]!, absSum[e]!, k, isFloat32))) firstBad = e;
  }
  expect(firstBad, `element ${firstBad}: got ${out[cOff + firstBad]}, reference ${value[firstBad]}`).toBe(-1);
  for (let i = 0; i < cOff; i++) expect(out[i]).toBe(-7.5);
  for (let i = cOff + m * n; i < out.length; i++) expect(out[i]).toBe(-7.5);
}

describe('matmulInto against a float64 triple loop', () => {
  for (const [name, Ctor] of [['float32', Float32Array], ['float64', Float64Array]] as const) {
    describe(name, () => {
      CASES.forEach((c, idx) => {
        const offsets = [c.aOff ?? 0, c.bOff ?? 0, c.cOff ?? 0];
        const label = `${c.m}×${c.k}×${c.n}` + (offsets.some((o) => o > 0) ? ` at offsets ${offsets.join(', ')}` : '');
        it(label, () => runCase(Ctor, c, 1000 + idx));
      });

      it('is exact on small integers (every sum representable), so any misplaced term shows', () => {
        // Entries in [-8, 8], k = 300: |sums| ≤ 64·300 < 2^24, exact in float32 and float64.
        const m = 37;
        const k = 300;
        const n = 45;
        const next = seededUniform(7);
        const a = new Ctor(m * k).map(() => Math.round(next() * 8));
        const b = new Ctor(k * n).map(() => Math.round(next() * 8));
        const out = new Ctor(m * n);
        matmulInto(a, 0, b, 0, out, 0, m, n, k);
        expect(Array.from(out)).toEqual(Array.from(referenceProduct(a, 0, b, 0, m, n, k).value));
      });

      it('keeps an infinity in its own row and column (zero padding must not leak NaN)', () => {
        // 9×9 output: tiles are padded to 16×16, where padded zeros meet the infinity.
        const m = 9;
        const k = 12;
        const n = 9;
        const a = new Ctor(m * k).fill(1);
        const b = new Ctor(k * n).fill(1);
        a[8 * k + 3] = Infinity; // row 8 of A
        b[5 * n + 8] = -Infinity; // column 8 of B
        const out = new Ctor(m * n);
        matmulInto(a, 0, b, 0, out, 0, m, n, k);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            const expected = i === 8 && j === 8 ? NaN : i === 8 ? Infinity : j === 8 ? -Infinity : k;
            expect(out[i * n + j], `(${i}, ${j})`).toBe(expected);
          }
        }
      });
    });
  }
});

describe('matmul through the public API', () => {
  it('broadcasts batch dimensions and agrees with the reference per batch entry', () => {
    // a: [2, 1, 13, 21], b: [3, 21, 10] → [2, 3, 13, 10]; b's batch of 3 is broadcast over a's
    // first axis and a's batch of 1 over b's, so every (i, j) pair uses a[i, 0] and b[j].
    const next = seededUniform(99);
    const [m, k, n] = [13, 21, 10];
    const aData = Float32Array.from({ length: 2 * m * k }, next);
    const bData = Float32Array.from({ length: 3 * k * n }, next);
    const result = matmul(tensor(aData, { shape: [2, 1, m, k] }), tensor(bData, { shape: [3, k, n] }));
    expect(result.shape).toEqual([2, 3, m, n]);
    expect(result.dtype).toBe('float32');
    const got = result.dataSync();
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) {
        const { value, absSum } = referenceProduct(aData, i * m * k, bData, j * k * n, m, n, k);
        const base = (i * 3 + j) * m * n;
        for (let e = 0; e < m * n; e++) {
          expect(Math.abs(got[base + e]! - value[e]!), `batch (${i}, ${j}) element ${e}`).toBeLessThanOrEqual(tolerance(value[e]!, absSum[e]!, k, true));
        }
      }
    }
    result.dispose();
  });

  it('folds a batched left operand into one product with a 2-D right operand (float64)', () => {
    const next = seededUniform(5);
    const [batch, m, k, n] = [3, 11, 70, 17];
    const aData = Float64Array.from({ length: batch * m * k }, next);
    const bData = Float64Array.from({ length: k * n }, next);
    const result = matmul(tensor(aData, { shape: [batch, m, k] }), tensor(bData, { shape: [k, n] }));
    expect(result.shape).toEqual([batch, m, n]);
    const got = result.dataSync();
    for (let t = 0; t < batch; t++) {
      const { value, absSum } = referenceProduct(aData, t * m * k, bData, 0, m, n, k);
      for (let e = 0; e < m * n; e++) {
        expect(Math.abs(got[t * m * n + e]! - value[e]!)).toBeLessThanOrEqual(tolerance(value[e]!, absSum[e]!, k, false));
      }
    }
    result.dispose();
  });
});
