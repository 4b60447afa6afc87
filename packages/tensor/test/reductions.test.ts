// Reductions (sum, mean, max, min, logsumexp, variance) over one axis, several axes (adjacent,
// non-adjacent, middle), negative axes, all axes and with keepdims, compared with a plain-JS
// reference (reference.ts) that groups the values of each output cell by index arithmetic.

import { describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { type Tensor, logSoftmax, logsumexp, softmax, sum, tensor } from '@scorch/tensor';
import { U32, expectClose, product, reduceReference, seededValues } from './reference.js';

const shape = [2, 3, 4, 5];
// Multiples of 1/4 in [-4, 4]: float32-exact, and any sum of up to 120 of them is exact in
// float32 (|sum| ≤ 480 with 2 fractional bits needs 11 significant bits), so sum, max and min
// must match the reference exactly. A mean is that exact sum with one division: ≤ u relative.
const data = seededValues(product(shape), 2024, -16, 16, 4);
const x = tensor(data, { shape });

// Axis lists as the library receives them (including negative axes); the reference normalises
// them with its own modular arithmetic.
const axisCases: (number | number[] | undefined)[] = [
  0, 1, 2, 3, -1, -3, [0, 1], [1, 2], [0, 2], [1, 3], [0, 3], [-1, 1], [0, 1, 3], [2, -4, 3], [0, 1, 2, 3], undefined,
];

function refAxes(axes: number | number[] | undefined): number[] {
  if (axes === undefined) return shape.map((_, i) => i);
  return typeof axes === 'number' ? [axes] : axes;
}

const sumOf = (v: number[]) => v.reduce((s, a) => s + a, 0);
const meanOf = (v: number[]) => sumOf(v) / v.length;

function check(
  name: string,
  run: (axes: number | number[] | undefined, keepdims: boolean) => Tensor,
  reducer: (v: number[]) => number,
  tol: (expected: { data: number[] }) => { rel?: number; abs?: number | number[] } | 'exact',
): void {
  describe(name, () => {
    for (const axes of axisCases) {
      for (const keepdims of [false, true]) {
        it(`axes ${JSON.stringify(axes) ?? 'all'}${keepdims ? ', keepdims' : ''}`, () => {
          const expected = reduceReference(data, shape, refAxes(axes), reducer, keepdims);
          const out = run(axes, keepdims);
          expect(out.shape).toEqual(expected.shape);
          const t = tol(expected);
          if (t === 'exact') expect(Array.from(out.dataSync())).toEqual(expected.data);
          else expectClose(out.dataSync(), expected.data, t);
        });
      }
    }
  });
}

check('sum', (a, k) => x.sum(a, k), sumOf, () => 'exact');
check('max', (a, k) => x.max(a, k), (v) => Math.max(...v), () => 'exact');
check('min', (a, k) => x.min(a, k), (v) => Math.min(...v), () => 'exact');
check('mean', (a, k) => x.mean(a, k), meanOf, () => ({ rel: U32 }));
check(
  'logsumexp',
  (a, k) => x.logsumexp(a, k),
  (v) => {
    const m = Math.max(...v);
    return m + Math.log(sumOf(v.map((e) => Math.exp(e - m))));
  },
  // x − m is exact (multiples of 1/4); each exp rounds (u relative) and the float64-accumulated
  // sum S rounds once, so S is off by ≤ 2u relative; log turns that into ≤ 2u absolute and
  // rounds (u·|log S|); adding m back rounds (u·|r|). With |log S| = |r − m| ≤ |r| + 4 here:
  // |error| ≤ u·(6 + 2|r|) to first order; 8 leaves room for the second-order terms.
  (expected) => ({ abs: expected.data.map((r) => U32 * (8 + 2 * Math.abs(r))) }),
);

describe('variance', () => {
  /**
   * Forward error bound of variance in float32 for one output cell (u = 2^-24, m the mean, cᵢ the
   * centred values, n the count): the mean rounds once (|δm| ≤ u|m|, the sum being exact); each
   * centred value rounds (ĉᵢ = (cᵢ − δm)(1 + δ)), so |ĉᵢ − cᵢ| ≤ u(|m| + |cᵢ|); squaring doubles that
   * relative error and rounds: |ŝᵢ − cᵢ²| ≤ u(3cᵢ² + 2|m||cᵢ|); the sum (float64 accumulation)
   * and the division round once each (2u relative). Second-order terms are below u² and are
   * covered by the factor 1.01.
   */
  function bound(v: number[], correction: number): number {
    const m = meanOf(v);
    const c = v.map((e) => e - m);
    const s2 = sumOf(c.map((e) => e * e));
    const s1 = sumOf(c.map(Math.abs));
    return (1.01 * U32 * (5 * s2 + 2 * Math.abs(m) * s1)) / (v.length - correction);
  }

  for (const correction of [0, 1]) {
    for (const axes of axisCases) {
      it(`correction ${correction}, axes ${JSON.stringify(axes) ?? 'all'}`, () => {
        const ax = refAxes(axes);
        const varOf = (v: number[]) => {
          const m = meanOf(v);
          return sumOf(v.map((e) => (e - m) ** 2)) / (v.length - correction);
        };
        const expected = reduceReference(data, shape, ax, varOf);
        const bounds = reduceReference(data, shape, ax, (v) => bound(v, correction));
        const out = x.variance(axes, { correction });
        expect(out.shape).toEqual(expected.shape);
        expectClose(out.dataSync(), expected.data, { abs: bounds.data });
      });
    }
  }

  it('keepdims keeps reduced axes as size 1', () => {
    const out = x.variance([1, 3], { keepdims: true, correction: 1 });
    expect(out.shape).toEqual([2, 1, 4, 1]);
  });

  it('is NaN where no degrees of freedom are left (n − correction ≤ 0), never negative or −0', async () => {
    // Σ(x − mean)²/(n − correction) gave −0 over an empty axis with correction 1 and −1 for
    // [1, 3] (Σ = 2) with correction 4; jnp.var gives NaN for both.
    const v = tensor([1, 3]);
    expect(await v.variance(0, { correction: 2 }).item()).toBeNaN();
    expect(await v.variance(0, { correction: 4 }).item()).toBeNaN();
    expect(await v.variance(0, { correction: 1 }).item()).toBe(2);
    expect(await v.variance(0, { correction: 1.5 }).item()).toBe(4);
    const e = tensor([], { shape: [2, 0], dtype: 'float64' });
    expect(await e.variance(1, { correction: 1 }).toArray()).toEqual([NaN, NaN]);
    expect(await e.variance(1).toArray()).toEqual([NaN, NaN]);
    const k = e.variance([0, 1], { correction: 1, keepdims: true });
    expect([k.shape, k.dtype]).toEqual([[1, 1], 'float64']);
    expect(await k.toArray()).toEqual([[NaN]]);
    // A size-1 axis: one value has no sample variance.
    expect(await tensor([[7], [8]]).variance(1, { correction: 1 }).toArray()).toEqual([NaN, NaN]);
  });

  it('hand-computed: [1, 2, 3, 4] has population variance 1.25 and sample variance 5/3', async () => {
    const v = tensor([1, 2, 3, 4]);
    expect(await v.variance().item()).toBe(1.25);
    expect(await v.variance(0, { correction: 1 }).item()).toBe(Math.fround(5 / 3));
  });
});

describe('hand-computed reductions', () => {
  const m = tensor([[1, 5, 2], [-3, 4, 0]]);

  it('sum, mean, max and min over each axis', async () => {
    expect(await m.sum(0).toArray()).toEqual([-2, 9, 2]);
    expect(await m.sum(1).toArray()).toEqual([8, 1]);
    expect(await m.sum().item()).toBe(9);
    expect(await m.mean(-1).toArray()).toEqual([Math.fround(8 / 3), Math.fround(1 / 3)]);
    expect(await m.max(0).toArray()).toEqual([1, 5, 2]);
    expect(await m.min(1, true).toArray()).toEqual([[1], [-3]]);
    expect(await m.max().item()).toBe(5);
  });

  it('int32 sums stay int32', async () => {
    const i = tensor([[1, 2], [3, 4]], { dtype: 'int32' });
    const s = i.sum(0);
    expect(s.dtype).toBe('int32');
    expect(await s.toArray()).toEqual([4, 6]);
    expect(await i.max(1).toArray()).toEqual([2, 4]);
  });

  it('int32 sums wrap modulo 2³² however many elements they add (as on WebGPU)', async () => {
    // 2²² + 1 copies of −2³¹ take a running double to −2⁵³ − 2³¹, past which doubles are 2 apart,
    // so each +1 after them was rounded away; modulo 2³² the copies sum to −2³¹ (2⁵³ ≡ 0), and
    // the ones then count: −2³¹ + 1000. (float64 sums are unaffected: this is int32's wrap.)
    const big = 2 ** 22 + 1;
    const n = big + 1000;
    const expected = -(2 ** 31) + 1000;
    const rows = new Int32Array(n).fill(1, big);
    rows.fill(-(2 ** 31), 0, big);
    const x = tensor(rows);
    expect(await x.sum().item()).toBe(expected); // the one-run-per-output kernel
    expect(await jit((t: Tensor) => sum(t))(x).item()).toBe(expected);
    // A column sum (reduced axes before kept ones) walks the input into a row of accumulators.
    const cols = new Int32Array(2 * n);
    for (let i = 0; i < n; i++) cols[2 * i] = cols[2 * i + 1] = rows[i]!;
    const y = tensor(cols, { shape: [n, 2] });
    expect(await y.sum(0).toArray()).toEqual([expected, expected]);
    expect(await jit((t: Tensor) => sum(t, 0))(y).toArray()).toEqual([expected, expected]);
  });

  it('int32 min reaches −2³¹ (the order reversal does not overflow)', async () => {
    // min is −max(−x) for floats; in int32 −(−2³¹) wraps to −2³¹ and hid it behind 1.
    const i = tensor([[2147483647, 1, -2147483648], [5, -2147483648, 2147483647]], { dtype: 'int32' });
    expect(await i.min(1).toArray()).toEqual([-2147483648, -2147483648]);
    expect(await i.min(0).toArray()).toEqual([5, -2147483648, -2147483648]);
    expect(await i.min().item()).toBe(-2147483648);
    expect(await i.min(-1, true).toArray()).toEqual([[-2147483648], [-2147483648]]);
    expect(await tensor([2147483647, 3], { dtype: 'int32' }).min().item()).toBe(3);
  });

  it('a few elements between kept axes (a pool\'s taps): the sum adds them in row-major order; max and min pass NaN', () => {
    // float64 values whose partial sums round (float32 ones would add exactly in doubles, in any
    // order): another order changes bits. [4, 7, 9] over axis 1: 7 terms for each of 36 outputs.
    const n = 4 * 7 * 9;
    const values = Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 5) - 2));
    const t = tensor(values, { shape: [4, 7, 9], dtype: 'float64' });
    const sums = t.sum(1).dataSync();
    const withNaN = values.slice();
    withNaN[2 * 63 + 3 * 9 + 5] = NaN;
    const u = tensor(withNaN, { shape: [4, 7, 9], dtype: 'float64' });
    const [maxima, minima] = [u.max(1).dataSync(), u.min(1).dataSync()];
    for (let o = 0; o < 4; o++) {
      for (let j = 0; j < 9; j++) {
        let acc = 0;
        for (let r = 0; r < 7; r++) acc += values[o * 63 + r * 9 + j]!;
        expect(sums[o * 9 + j], `sum (${o}, ${j})`).toBe(acc);
        const col = Array.from({ length: 7 }, (_, r) => withNaN[o * 63 + r * 9 + j]!);
        expect([maxima[o * 9 + j], minima[o * 9 + j]], `max, min (${o}, ${j})`).toEqual([Math.max(...col), Math.min(...col)]);
      }
    }
    expect(Number.isNaN(maxima[2 * 9 + 5]!) && Number.isNaN(minima[2 * 9 + 5]!)).toBe(true);
  });

  it('max propagates NaN', async () => {
    expect(await tensor([[1, NaN], [2, 3]]).max(1).toArray()).toEqual([NaN, 3]);
  });

  it('an empty axis list is the identity; a rank-0 tensor reduces to itself', async () => {
    expect(await m.sum([]).toArray()).toEqual([[1, 5, 2], [-3, 4, 0]]);
    expect(await tensor(7).sum().item()).toBe(7);
  });

  it('summing a zero-size axis gives zeros', async () => {
    const e = tensor([], { shape: [2, 0] });
    expect(await e.sum(1).toArray()).toEqual([0, 0]);
  });

  it('logsumexp over a zero-size axis is −∞ (log of an empty sum), and softmax along it is empty', async () => {
    const e = tensor([], { shape: [2, 0] });
    expect(await logsumexp(e, 1).toArray()).toEqual([-Infinity, -Infinity]);
    expect(await logsumexp(e, [0, 1], true).toArray()).toEqual([[-Infinity]]);
    expect(await logsumexp(e, 0).toArray()).toEqual([]);
    for (const y of [softmax(e, 1), logSoftmax(e, -1), softmax(e, 0)]) {
      expect(y.shape).toEqual([2, 0]);
      expect(await y.toArray()).toEqual([[], []]);
    }
  });

  it('max and min over a zero-size axis are errors that name the call and the axis', () => {
    const e = tensor([], { shape: [2, 0] });
    expect(() => e.max(1)).toThrow('max: cannot reduce the empty axis 1 of [2,0]; expected the reduced axes to have at least one element');
    expect(() => e.min(-1, true)).toThrow('min: cannot reduce the empty axis 1 of [2,0]; expected the reduced axes to have at least one element');
    // Over the other axis there is nothing to reduce and nothing to return.
    expect(e.min(0).shape).toEqual([0]);
  });
});
