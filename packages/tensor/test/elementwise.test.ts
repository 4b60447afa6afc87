// Elementwise operations: NumPy broadcasting (including numbers and rank-0 tensors), int32
// arithmetic, comparisons to bool, `where`, and the numerically careful composites (softplus,
// sigmoid, silu, elu, logsumexp at extreme inputs) plus relu/abs/rsqrt/square. References are
// computed in double precision in plain JS; float32 tolerances count the roundings involved
// (each correctly rounded float32 operation has relative error ≤ u = 2^-24).

import { describe, expect, it } from 'vitest';
import {
  type Tensor, abs, add, div, elu, isFinite, logSoftmax, logsumexp, maximum, minimum, mul, onesLike, pow, relu, rsqrt,
  sigmoid, silu, softmax, softplus, square, sub, tensor, traceProgram, where, zerosLike,
} from '@scorch/tensor';
import { F32_SUBNORMAL, U32, expectClose, f32, product, ravel, seededValues, unravel } from './reference.js';

const U64 = 2 ** -53;

/** NumPy broadcasting in plain JS: the output shape and f applied to the aligned elements. */
function broadcastReference(
  a: readonly number[], aShape: readonly number[], b: readonly number[], bShape: readonly number[],
  f: (x: number, y: number) => number,
): { shape: number[]; data: number[] } {
  const rank = Math.max(aShape.length, bShape.length);
  const pa = [...new Array<number>(rank - aShape.length).fill(1), ...aShape];
  const pb = [...new Array<number>(rank - bShape.length).fill(1), ...bShape];
  const shape = pa.map((d, i) => Math.max(d, pb[i]!));
  const data: number[] = [];
  for (let i = 0; i < product(shape); i++) {
    const idx = unravel(i, shape);
    const ia = ravel(idx.map((v, d) => (pa[d] === 1 ? 0 : v)), pa);
    const ib = ravel(idx.map((v, d) => (pb[d] === 1 ? 0 : v)), pb);
    data.push(f(a[ia]!, b[ib]!));
  }
  return { shape, data };
}

function values(t: Tensor): number[] {
  return Array.from(t.dataSync());
}

describe('broadcasting', () => {
  // Inputs are multiples of 1/4 in [-2, 2]: sums, differences and products are exact in float32,
  // so the library must agree with the double reference exactly.
  const cases: [number[], number[]][] = [
    [[2, 3], [3]],
    [[2, 1], [1, 3]],
    [[3, 1, 2], [2, 1]],
    [[1], [2, 2]],
    [[4, 1, 3], [4, 2, 1]],
    [[], [2, 3]],
  ];
  const opsUnderTest: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number][] = [
    ['add', add, (x, y) => x + y],
    ['sub', sub, (x, y) => x - y],
    ['mul', mul, (x, y) => x * y],
    ['maximum', maximum, Math.max],
    ['minimum', minimum, Math.min],
  ];
  for (const [aShape, bShape] of cases) {
    for (const [name, op, ref] of opsUnderTest) {
      it(`${name} of ${JSON.stringify(aShape)} and ${JSON.stringify(bShape)}`, () => {
        const a = seededValues(product(aShape), 11 + aShape.length, -8, 8, 4);
        const b = seededValues(product(bShape), 29 + bShape.length, -8, 8, 4);
        const expected = broadcastReference(a, aShape, b, bShape, ref);
        const out = op(tensor(a, { shape: aShape }), tensor(b, { shape: bShape }));
        expect(out.shape).toEqual(expected.shape);
        expect(values(out)).toEqual(expected.data);
        // Broadcasting is symmetric in the shapes.
        const swapped = op(tensor(b, { shape: bShape }), tensor(a, { shape: aShape }));
        expect(swapped.shape).toEqual(expected.shape);
      });
    }
  }

  it('division broadcasts and rounds once per element', () => {
    const a = [1, 2, 3, 4, 5, 6];
    const b = [3, 7, 9];
    const out = div(tensor(a, { shape: [2, 3] }), tensor(b));
    // One float32 rounding of the exact quotient of float32 inputs.
    expect(values(out)).toEqual(f32(broadcastReference(a, [2, 3], b, [3], (x, y) => x / y).data));
  });

  it('pow to the number 2 is the product a·a: Math.pow(a, 2) bit for bit, specials included, in both float dtypes', () => {
    // Mantissas from seededValues, scaled over ±2^40 so that squares overflow and underflow float32.
    const mantissas = seededValues(500, 71, -8, 8, 1 << 20);
    const scales = seededValues(500, 72, -40, 40, 1);
    const specials = [0, -0, 1, -1, Infinity, -Infinity, NaN, 1e-30, -3e-39, 1.5e19, -1.9e19, 3.4e38, 1e-200, 1e200];
    for (const dtype of ['float32', 'float64'] as const) {
      const raw = [...specials, ...mantissas.map((m, i) => m * 2 ** scales[i]!)];
      const x = tensor(raw, { dtype });
      const stored = Array.from(x.dataSync());
      const round = dtype === 'float32' ? Math.fround : (v: number) => v;
      expect(Array.from(x.pow(2).dataSync()), dtype).toEqual(stored.map((v) => round(Math.pow(v, 2))));
      expect(Array.from(pow(x, 2).dataSync()), dtype).toEqual(stored.map((v) => round(v * v)));
    }
    // The program records the product; another exponent, an int tensor or a tensor exponent keep pow.
    const x = tensor([1.5, -2]);
    expect(traceProgram(([t]) => [t!.pow(2)], [x], []).program.equations.map((e) => e.prim)).toEqual(['mul']);
    expect(traceProgram(([t]) => [t!.pow(3)], [x], []).program.equations.map((e) => e.prim)).toContain('pow');
    expect(traceProgram(([t]) => [t!.pow(tensor(2))], [x], []).program.equations.map((e) => e.prim)).toContain('pow');
    expect(() => tensor([2], { dtype: 'int32' }).pow(2)).toThrow(/pow: expected float tensors, got int32/);
  });

  it('numbers adopt the tensor dtype on either side', async () => {
    const x = tensor([1, 2, 4]);
    expect(await x.add(1).toArray()).toEqual([2, 3, 5]);
    expect(await sub(10, x).toArray()).toEqual([9, 8, 6]);
    expect(await div(1, x).toArray()).toEqual([1, 0.5, 0.25]);
    expect(await x.pow(2).toArray()).toEqual([1, 4, 16]);
    expect(x.mul(0.1).dtype).toBe('float32');
    expect(values(x.mul(0.1))).toEqual(f32([1, 2, 4].map((v) => v * Math.fround(0.1))));
    const d = tensor([1, 2], { dtype: 'float64' });
    expect(values(d.mul(0.1))).toEqual([0.1, 0.2]);
  });

  it('rank-0 tensors broadcast against any shape', async () => {
    const s = tensor(3);
    const m = tensor([[1, 2], [3, 4]]);
    expect(await s.mul(m).toArray()).toEqual([[3, 6], [9, 12]]);
    expect(await m.sub(s).toArray()).toEqual([[-2, -1], [0, 1]]);
    const r = s.add(tensor(4));
    expect(r.shape).toEqual([]);
    expect(await r.item()).toBe(7);
  });
});

describe('int32 arithmetic', () => {
  const a = tensor([7, -7, 100000, 2147483647], { dtype: 'int32' });
  const b = tensor([2, 3, 100000, 1], { dtype: 'int32' });

  it('stays int32 and computes exactly', async () => {
    expect(a.add(b).dtype).toBe('int32');
    expect(await a.sub(b).toArray()).toEqual([5, -10, 0, 2147483646]);
    expect(await maximum(a, b).toArray()).toEqual([7, 3, 100000, 2147483647]);
    expect(await minimum(a, b).toArray()).toEqual([2, -7, 100000, 1]);
    expect(await a.neg().toArray()).toEqual([-7, 7, -100000, -2147483647]);
    expect(await abs(a.neg()).toArray()).toEqual([7, 7, 100000, 2147483647]);
    expect(await relu(tensor([-3, 0, 5], { dtype: 'int32' })).toArray()).toEqual([0, 0, 5]);
  });

  it('wraps on overflow (two’s complement, as WGSL i32)', async () => {
    // 2^31 − 1 + 1 wraps to −2^31; 100000² = 10^10 ≡ 1410065408 (mod 2^32).
    expect(await a.add(b).toArray()).toEqual([9, -4, 200000, -2147483648]);
    expect(await a.mul(b).toArray()).toEqual([14, -21, 1410065408, 2147483647]);
  });

  it('minimum holds at the int32 extremes (no overflow in the order reversal)', async () => {
    // minimum is −max(−a, −b) for floats; −(−2³¹) wraps to −2³¹ in int32, so it goes through
    // ~x = −1 − x there, which maps [−2³¹, 2³¹ − 1] onto itself.
    const lo = -2147483648;
    const hi = 2147483647;
    const p = tensor([lo, hi, lo, 1, lo, -1, 0], { dtype: 'int32' });
    const q = tensor([hi, lo, 1, lo, lo, 0, hi], { dtype: 'int32' });
    expect(await minimum(p, q).toArray()).toEqual([lo, lo, lo, lo, lo, -1, 0]);
    expect(await maximum(p, q).toArray()).toEqual([hi, hi, 1, 1, lo, 0, hi]);
    expect(await minimum(p, 5).toArray()).toEqual([lo, 5, lo, 1, lo, -1, 0]);
  });

  it('a number must be an int32 value: integers take part, a fraction or one out of range is refused', async () => {
    const i = tensor([2, 3], { dtype: 'int32' });
    expect(await i.add(2).toArray()).toEqual([4, 5]);
    expect(await i.less(3).toArray()).toEqual([true, false]);
    expect(await i.mul(-(2 ** 31)).toArray()).toEqual([0, -(2 ** 31)]); // wraps, as int32 products do
    // Converted by the cast rule these were [0, 0], [false, false] and [2³¹ + 1, …] wrapped:
    // PyTorch, JAX and TF.js promote to float instead. scorch refuses and names the cast.
    const message = (v: number) => `the number ${v} is not a value of the other operand's dtype int32 (a number takes the tensor's dtype; expected an integer from −2³¹ to 2³¹ − 1); cast the tensor first, e.g. x.cast('float32')`;
    expect(() => i.mul(0.5)).toThrow(`mul: ${message(0.5)}`);
    expect(() => i.less(2.5)).toThrow(`less: ${message(2.5)}`);
    expect(() => i.add(3e9)).toThrow(`add: ${message(3000000000)}`);
    // The range's edges: 2³¹ − 1 and −2³¹ are int32 values, one past either is not (saturated to
    // 2³¹ − 1, less(2³¹ − 1, 2³¹) would read false).
    expect(await i.less(2 ** 31 - 1).toArray()).toEqual([true, true]);
    expect(await i.greater(-(2 ** 31)).toArray()).toEqual([true, true]);
    expect(() => i.less(2 ** 31)).toThrow(`less: ${message(2 ** 31)}`);
    expect(() => i.add(-(2 ** 31) - 1)).toThrow(`add: ${message(-(2 ** 31) - 1)}`);
    expect(() => i.add(NaN)).toThrow(`add: ${message(NaN)}`);
    expect(() => i.equal(Infinity)).toThrow(`equal: ${message(Infinity)}`);
    expect(() => where(i.less(3), 2.5, i)).toThrow(`where: ${message(2.5)}`);
    expect(await i.cast('float32').mul(0.5).toArray()).toEqual([1, 1.5]);
    const b = tensor([true, false]);
    expect(await b.equal(1).toArray()).toEqual([true, false]);
    expect(() => b.equal(2)).toThrow("equal: the number 2 is not a value of the other operand's dtype bool (a number takes the tensor's dtype; expected 0 or 1); cast the tensor first, e.g. x.cast('float32')");
    // Between 0 and 1 is not 0 or 1: 0.5 would be stored as true.
    expect(() => b.notEqual(0.5)).toThrow("notEqual: the number 0.5 is not a value of the other operand's dtype bool (a number takes the tensor's dtype; expected 0 or 1)");
  });
});

describe('comparisons', () => {
  it('give bool tensors and broadcast', async () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const y = tensor([2, 2, 7]);
    const lt = x.less(y);
    expect(lt.dtype).toBe('bool');
    expect(await lt.toArray()).toEqual([[true, false, true], [false, false, true]]);
    expect(await x.lessEqual(y).toArray()).toEqual([[true, true, true], [false, false, true]]);
    expect(await x.greater(y).toArray()).toEqual([[false, false, false], [true, true, false]]);
    expect(await x.greaterEqual(y).toArray()).toEqual([[false, true, false], [true, true, false]]);
    expect(await x.equal(y).toArray()).toEqual([[false, true, false], [false, false, false]]);
    expect(await x.notEqual(y).toArray()).toEqual([[true, false, true], [true, true, true]]);
    expect(await x.greater(3).toArray()).toEqual([[false, false, false], [true, true, true]]);
  });

  it('treat NaN as unordered and unequal to itself', async () => {
    const n = tensor([NaN, 1]);
    expect(await n.equal(n).toArray()).toEqual([false, true]);
    expect(await n.notEqual(n).toArray()).toEqual([true, false]);
    expect(await n.less(2).toArray()).toEqual([false, true]);
    expect(await n.greaterEqual(0).toArray()).toEqual([false, true]);
  });

  it('work on int32 and bool tensors', async () => {
    const i = tensor([1, 5, -3], { dtype: 'int32' });
    expect(await i.less(0).toArray()).toEqual([false, false, true]);
    const b = tensor([true, false]);
    expect(await b.equal(tensor([true, true])).toArray()).toEqual([true, false]);
  });
});

describe('where', () => {
  it('selects elementwise with all three operands broadcast', async () => {
    const cond = tensor([[true], [false]]); // [2,1]
    const a = tensor([[1, 2, 3]]); // [1,3]
    const out = where(cond, a, -1);
    expect(out.shape).toEqual([2, 3]);
    expect(await out.toArray()).toEqual([[1, 2, 3], [-1, -1, -1]]);
    const out2 = where(tensor([true, false, true]), tensor([[10], [20]]), tensor([[0], [5]]));
    expect(await out2.toArray()).toEqual([[10, 0, 10], [20, 5, 20]]);
  });

  it('a condition of higher rank than the values sets the output shape', async () => {
    const cond = tensor([[[true, false]], [[false, true]]]); // [2,1,2]
    expect(await where(cond, tensor([1, 2]), tensor(0)).toArray()).toEqual([[[1, 0]], [[0, 2]]]);
  });
});

describe('unary primitives round once', () => {
  // The CPU reference computes each primitive in double on the float32 input and rounds once,
  // so its float32 result equals the correctly rounded double result exactly.
  const xs = seededValues(24, 5, 1, 40, 8); // positive: valid for log and sqrt
  const table: [keyof Tensor & string, (x: number) => number][] = [
    ['exp', Math.exp], ['log', Math.log], ['sin', Math.sin], ['cos', Math.cos], ['sqrt', Math.sqrt],
    ['reciprocal', (x) => 1 / x], ['tanh', Math.tanh], ['log1p', Math.log1p], ['expm1', Math.expm1], ['neg', (x) => -x],
  ];
  for (const [name, ref] of table) {
    it(name, () => {
      const x = tensor(xs);
      const out = (x[name] as () => Tensor).call(x);
      expect(values(out)).toEqual(f32(xs.map(ref)));
    });
  }
});

describe('numerically stable composites', () => {
  const extremes = [-1e4, -100, -20, -5, -1, 0, 1, 5, 20, 100, 1e4];

  it('softplus is finite and accurate at ±100 and ±1e4', () => {
    const ref = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    const out = values(softplus(tensor(extremes)));
    expect(out.every(Number.isFinite)).toBe(true);
    expect(out[0]).toBe(0); // log(1 + e^−10000) underflows to 0
    expect(out[10]).toBe(1e4);
    expect(out[9]).toBe(100);
    // Roundings: exp, log1p and the final add, each ≤ u relative, and log1p(z)/z ≤ 1 does not
    // amplify exp's error: 3u, allow 4u. softplus(−100) ≈ 3.7e−44 is subnormal in float32,
    // where spacing is absolute (2^-149); its two roundings add at most 2·2^-150.
    expectClose(out, extremes.map(ref), { rel: 4 * U32, abs: F32_SUBNORMAL });
    expect(out[1]).toBeGreaterThan(0);
  });

  it('softplus in float64', () => {
    const ref = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    const out = values(softplus(tensor(extremes, { dtype: 'float64' })));
    expectClose(out, extremes.map(ref), { rel: 4 * U64 });
    expect(out[1]).toBeCloseTo(3.720075976020836e-44, 58);
  });

  it('sigmoid saturates to exactly 0 and 1 and keeps relative accuracy for x ≪ 0', () => {
    const ref = (x: number) => 1 / (1 + Math.exp(-x));
    const out = values(sigmoid(tensor(extremes)));
    expect(out[0]).toBe(0);
    expect(out[10]).toBe(1);
    expect(out[9]).toBe(1);
    expect(out[5]).toBe(0.5);
    // e^−|x| (1 rounding), 1 + z (1), the quotient (1); the error of z reaches the result scaled
    // by at most 1: 4u relative. σ(−100) ≈ 3.7e−44 is subnormal: two roundings of 2^-150.
    expectClose(out, extremes.map(ref), { rel: 4 * U32, abs: F32_SUBNORMAL });
    expect(out[2]).toBeGreaterThan(0); // σ(−20) ≈ 2.06e−9: representable, must not flush to 0
  });

  it('silu = x·σ(x) at extremes', () => {
    const ref = (x: number) => x / (1 + Math.exp(-x));
    const out = values(silu(tensor(extremes)));
    expect(out.every(Number.isFinite)).toBe(true);
    // σ's error (4u relative, or 2^-149 absolute when subnormal) scaled by |x|, plus the
    // product's rounding (u relative, or 2^-150 absolute when the product is subnormal).
    expectClose(out, extremes.map(ref), { rel: 5 * U32, abs: extremes.map((x) => (Math.abs(x) + 1) * F32_SUBNORMAL) });
  });

  it('elu with α = 1 and α = 2', () => {
    const xs = [-30, -3, -1, -0.25, 0, 0.5, 2];
    const ref = (alpha: number) => (x: number) => (x > 0 ? x : alpha * Math.expm1(x));
    // expm1 rounds once; multiplying by a power of two is exact.
    expectClose(values(elu(tensor(xs))), xs.map(ref(1)), { rel: U32 });
    expectClose(values(tensor(xs).elu(2)), xs.map(ref(2)), { rel: U32 });
    expect(values(elu(tensor(xs)))[0]).toBe(Math.fround(Math.expm1(-30)));
  });

  it('relu, abs and square are exact', async () => {
    expect(await relu(tensor([-2, -0.5, 0, 0.5, 3])).toArray()).toEqual([0, 0, 0, 0.5, 3]);
    expect(await abs(tensor([-2, -0.5, 0.5, 3, -Infinity])).toArray()).toEqual([2, 0.5, 0.5, 3, Infinity]);
    expect(await square(tensor([3, -1.5, 0.25])).toArray()).toEqual([9, 2.25, 0.0625]);
    // 1e20² = 1e40 exceeds float32's largest finite value (≈ 3.4e38).
    expect(await square(tensor([1e20])).toArray()).toEqual([Infinity]);
  });

  it('relu passes NaN through (as PyTorch) and clamps −∞ to 0', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      expect(await relu(tensor([NaN, -Infinity, Infinity, -0], { dtype })).toArray()).toEqual([NaN, 0, Infinity, 0]);
    }
  });

  it('rsqrt = 1/√x', () => {
    const xs = [0.25, 1, 2, 3, 1e-6, 4e4, 0];
    // sqrt rounds (u), the reciprocal rounds (u) and inherits sqrt's relative error (u): 2u.
    expectClose(values(rsqrt(tensor(xs))), xs.map((x) => 1 / Math.sqrt(x)), { rel: 2 * U32 });
    expect(values(rsqrt(tensor([4, 0.0625])))).toEqual([0.5, 4]);
  });
});

describe('logsumexp at extreme inputs', () => {
  /** log Σ exp(x) in double with the max shift; −∞ when every entry is −∞. */
  function lseRef(xs: number[]): number {
    const m = Math.max(...xs);
    if (!Number.isFinite(m)) return m === -Infinity ? -Infinity : m;
    return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
  }

  it('does not overflow for inputs near 1e4 (or underflow near −1e4)', () => {
    const rows = [[1e4, 1e4, 1e4 - 1], [-1e4, -1e4, -1e4], [1e4, -1e4, 0]];
    const out = values(logsumexp(tensor(rows), 1));
    // x − m (exact here: small integers), exp (u each), the sum (u), log (u, absolute ≤ u·|log S|
    // plus S's relative error), adding m back (u·|result|): below 4u·(|result| + 1).
    const expected = rows.map(lseRef);
    expectClose(out, expected, { abs: expected.map((r) => 4 * U32 * (Math.abs(r) + 1)) });
    expect(out[1]).toBe(Math.fround(-1e4 + Math.log(3)));
  });

  it('is −∞ (not NaN) along an axis of all −∞', async () => {
    const x = tensor([[-Infinity, -Infinity], [0, -Infinity]]);
    expect(await logsumexp(x, 1).toArray()).toEqual([-Infinity, 0]);
    expect(await logsumexp(x, 0).toArray()).toEqual([0, -Infinity]);
    expect(await logsumexp(x).item()).toBe(0);
    expect(await logsumexp(x, 1, true).toArray()).toEqual([[-Infinity], [0]]);
  });

  it('is +∞ (not NaN) when an entry is +∞', async () => {
    expect(await logsumexp(tensor([[Infinity, 0], [1, 1]]), 1).toArray()).toEqual([Infinity, Math.fround(1 + Math.log(2))]);
  });
});

describe('softmax and logSoftmax', () => {
  it('rows sum to 1 and large logits do not overflow', () => {
    const logits = [[1e4, 1e4 - 1, 1e4 - 2], [-1e4, 0, 1e4], [0, 0, 0]];
    const ref = logits.map((row) => {
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const s = e.reduce((p, q) => p + q, 0);
      return e.map((v) => v / s);
    });
    const out = values(softmax(tensor(logits)));
    // softmax = exp(x − r), r = logsumexp. r ≈ 1e4 + 0.41 is rounded to float32 spacing 2^-10 in
    // [8192, 16384): absolute error ≤ 2^-11, plus ≤ 3u from log S and S itself. x − r is exact
    // (Sterbenz) where it matters, and exp turns r's absolute error into a relative one and
    // rounds (u): ≤ 2^-11 + 4u relative; allow 2^-11 + 5u. Underflowed entries: subnormal floor.
    expectClose(out, ref.flat(), { rel: 2 ** -11 + 5 * U32, abs: F32_SUBNORMAL });
    expect(values(softmax(tensor([[0, 0, 0, 0]])))).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('logits of large magnitude give the same values as the same logits shifted to 0 (shift invariance)', () => {
    // x − max is exact (0 here), so a row of equal logits at 1e17 (float64) or 1e8 (float32) must
    // give what a row of zeros gives, bit for bit: −log 3 and 1/3. Computed as x − logsumexp(x),
    // log 3 was lost in rounding logsumexp to the spacing of 1e17 (16) or 1e8 (8): 0 and 1.
    for (const [dtype, big] of [['float64', 1e17], ['float32', 1e8]] as const) {
      const x = tensor([[big, big, big], [0, 0, 0]], { dtype });
      const logp = logSoftmax(x, 1).dataSync();
      const p = softmax(x, 1).dataSync();
      expect(Array.from(logp.slice(0, 3)), dtype).toEqual(Array.from(logp.slice(3)));
      expect(Array.from(p.slice(0, 3)), dtype).toEqual(Array.from(p.slice(3)));
      // exp(−log 3): log 3 rounded (absolute u·ln 3, relative ≈ 1.1u after exp), exp's rounding
      // (≤ 2u): within 4u of 1/3.
      expectClose(Array.from(p.slice(0, 3)), [1 / 3, 1 / 3, 1 / 3], { rel: 4 * (dtype === 'float32' ? U32 : U64) });
    }
  });

  it('a row whose maximum is ±∞ is NaN throughout, as PyTorch and JAX give it; other rows are unaffected', () => {
    // torch.softmax / log_softmax (1.13, float64): [∞, 0, 0] → [nan, nan, nan], [∞, ∞, 0] → nan
    // throughout, [−∞, −∞] → nan throughout; a −∞ entry beside finite ones is an exact 0 (−∞ in
    // log space). Shifted by a finite stand-in for the infinite maximum, the first row was [NaN, 0, 0].
    for (const dtype of ['float32', 'float64'] as const) {
      const x = tensor([[Infinity, 0, 0], [Infinity, Infinity, 0], [-Infinity, -Infinity, -Infinity], [-Infinity, 0, 0]], { dtype });
      const p = Array.from(softmax(x, 1).dataSync());
      const logp = Array.from(logSoftmax(x, 1).dataSync());
      expect(p.slice(0, 9).every(Number.isNaN), dtype).toBe(true);
      expect(logp.slice(0, 9).every(Number.isNaN), dtype).toBe(true);
      expect(p.slice(9), dtype).toEqual([0, 0.5, 0.5]);
      // 0 − log(1 + 1): ln 2 rounded to the dtype.
      const ln2 = dtype === 'float32' ? Math.fround(Math.LN2) : Math.LN2;
      expect(logp.slice(9), dtype).toEqual([-Infinity, -ln2, -ln2]);
    }
  });

  it('logSoftmax along axis 0', async () => {
    const x = tensor([[0, 1], [0, 1]], { dtype: 'float64' });
    // Column 1 computes 1 − ((ln 2 rounded) + 1 rounded): errors ≤ u·0.7 and u·1.7 (u = 2^-53),
    // the final subtraction exact (Sterbenz): within 3u of −ln 2.
    expectClose(logSoftmax(x, 0).dataSync(), new Array(4).fill(-Math.LN2), { abs: 3 * U64 });
  });
});

describe('abs', () => {
  it('clears the sign of zero and keeps ±∞ and NaN', () => {
    // abs was where(x < 0, −x, x), which returned −0 itself; |−0| = +0 (IEEE 754 abs).
    for (const dtype of ['float32', 'float64'] as const) {
      const out = values(abs(tensor([-0, 0, -Infinity, Infinity, NaN, -2.5, 3e38], { dtype })));
      expect(out).toEqual([0, 0, Infinity, Infinity, NaN, 2.5, dtype === 'float32' ? Math.fround(3e38) : 3e38]);
      expect(Object.is(out[0], 0), 'abs(−0) is +0').toBe(true);
    }
  });
});

describe('small helpers', () => {
  it('isFinite is false for ±∞ and NaN', async () => {
    expect(await isFinite(tensor([1, Infinity, -Infinity, NaN, -3e38])).toArray()).toEqual([true, false, false, false, true]);
  });

  it('isFinite is true for every int32 and bool element, the int32 extremes included', async () => {
    // |x| < ∞ with ∞ converted to int32 (2³¹ − 1) said 2³¹ − 1 was not finite; bool failed in neg.
    const i = isFinite(tensor([[2147483647, -2147483648], [0, -5]], { dtype: 'int32' }));
    expect([i.shape, i.dtype]).toEqual([[2, 2], 'bool']);
    expect(await i.toArray()).toEqual([[true, true], [true, true]]);
    expect(await isFinite(tensor([true, false])).toArray()).toEqual([true, true]);
  });

  it('zerosLike and onesLike copy shape, dtype and device', async () => {
    const x = tensor([[1, 2, 3]], { dtype: 'int32' });
    const z = zerosLike(x);
    expect([z.shape, z.dtype, z.device]).toEqual([[1, 3], 'int32', 'cpu']);
    expect(await z.toArray()).toEqual([[0, 0, 0]]);
    expect(await onesLike(x).toArray()).toEqual([[1, 1, 1]]);
  });

  it('detach returns a separate copy with the same values', async () => {
    const x = tensor([1, 2]);
    const d = x.detach();
    expect(d).not.toBe(x);
    x.dispose();
    expect(await d.toArray()).toEqual([1, 2]);
  });
});
