// floor, ceil, round, sign, erf, gelu and clamp on the CPU reference: exact values at the edge
// cases each op documents (ties, ±0, ±∞, NaN), erf against an independent float64 quadrature,
// gelu against its defining formulas, clamp's bounds, NaN and validation.

import { describe, expect, it } from 'vitest';
import { type Tensor, ceil, clamp, erf, floor, gelu, round, sign, tensor } from '@scorch/tensor';
import { seededValues } from './reference.js';

const f64 = (values: number[] | number[][]) => tensor(values, { dtype: 'float64' });
const values = (t: Tensor) => Array.from(t.dataSync() as Float64Array);
/** Object.is per element, so −0 and NaN are told apart from 0 and from each other's absence. */
const same = (actual: number[], expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Object.is(a, expected[i]), `element ${i}: expected ${expected[i]}, got ${a}`).toBe(true));
};

const EDGES = [-2.5, -1.5, -0.5, -0, 0, 0.5, 1.5, 2.5, 0.49999999999999994, -3.7, 3.2, Infinity, -Infinity, NaN, 2 ** 52 + 1, -(2 ** 53)];

describe('floor, ceil, round, sign', () => {
  it('floor and ceil keep ±0, ±∞ and NaN and are exact on huge integers', () => {
    same(values(floor(f64(EDGES))), [-3, -2, -1, -0, 0, 0, 1, 2, 0, -4, 3, Infinity, -Infinity, NaN, 2 ** 52 + 1, -(2 ** 53)]);
    same(values(ceil(f64(EDGES))), [-2, -1, -0, -0, 0, 1, 2, 3, 1, -3, 4, Infinity, -Infinity, NaN, 2 ** 52 + 1, -(2 ** 53)]);
  });

  it('round takes halves to the even neighbour (as NumPy and PyTorch), not up as Math.round', () => {
    // −0.5 rounds to −0 and 0.49999999999999994 (the largest double below ½) to 0.
    same(values(round(f64(EDGES))), [-2, -2, -0, -0, 0, 0, 2, 2, 0, -4, 3, Infinity, -Infinity, NaN, 2 ** 52 + 1, -(2 ** 53)]);
    // float32: every k + ½ for k in [−20, 20).
    const halves = Array.from({ length: 40 }, (_, i) => i - 20 + 0.5);
    const expected = halves.map((h) => (Math.floor(h) % 2 === 0 ? Math.floor(h) : Math.ceil(h)));
    expect(Array.from(round(tensor(halves)).dataSync(), (v) => v + 0)).toEqual(expected.map((v) => v + 0));
  });

  it('sign is ±1 off zero and keeps ±0 and NaN', () => {
    same(values(sign(f64([-3, -1e-300, -0, 0, 1e-300, 7, -Infinity, Infinity, NaN]))), [-1, -1, -0, 0, 1, 1, -1, 1, NaN]);
  });

  it('reject non-float tensors with the op named', () => {
    expect(() => floor(tensor([1, 2], { dtype: 'int32' }))).toThrow('floor: expected a float tensor, got int32');
    expect(() => sign(tensor([true]))).toThrow('sign: expected a float tensor, got bool');
  });
});

/**
 * erf by composite Simpson quadrature of (2/√π)e^(−t²) on [0, x] with 2·10⁴ panels, summed with
 * Kahan's compensation. Truncation ≤ (2/√π)·|x|·h⁴/180·max|f⁗| = 1.13·6·(3e-4)⁴/180·12 ≈ 3.7e-15
 * at |x| = 6 (h = |x|/2e4), far less for smaller |x|; the compensated sum keeps rounding to a few ulps.
 */
function erfBySimpson(x: number): number {
  const n = 20000;
  const h = x / n;
  const f = (t: number) => Math.exp(-t * t);
  let s = f(0) + f(x);
  let c = 0;
  for (let i = 1; i < n; i++) {
    const y = (i % 2 === 1 ? 4 : 2) * f(i * h) - c;
    const t = s + y;
    c = t - s - y;
    s = t;
  }
  return (s * h) / 3 * (2 / Math.sqrt(Math.PI));
}

describe('erf (float64)', () => {
  it('matches tabulated values (Abramowitz & Stegun, Table 7.1) to 1e-15', () => {
    const table: [number, number][] = [[0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3, 0.9999779095030014]];
    const got = values(erf(f64(table.map(([x]) => x))));
    table.forEach(([, e], i) => expect(Math.abs(got[i]! - e)).toBeLessThan(1e-15));
  });

  it('is within an ulp of the correctly rounded value in every piece of its approximation, at both signs', () => {
    // erf of each double x (its exact value) from mpmath 1.2.1 at 40 digits, printed to 25: the
    // pieces below 0.84375, below 1.25, below 1/0.35 and below 6, and near their boundaries.
    const table: [number, string][] = [
      [1e-5, '0.00001128379167057900027298965'], [0.1, '0.1124629160182848984047123'], [0.3, '0.328626759459127416189618'],
      [0.6174, '0.6174107484113940743376623'], [0.84, '0.765142711454994517342059'], [0.85, '0.7706680576083525202149312'],
      [1.0, '0.8427007929497148693412206'], [1.1, '0.8802050695740817296572595'], [1.24, '0.9205051842990296677102551'],
      [1.26, '0.9252359418101294865593932'], [2.0, '0.9953222650189527341620693'], [2.85, '0.9999443437200386010422853'],
      [2.86, '0.9999475988269556021974208'], [3.5, '0.9999992569016276585872545'], [4.5, '0.9999999998033839558457113'],
      [5.9, '0.9999999999999999280959022'],
    ];
    const xs = table.flatMap(([x]) => [x, -x]);
    const got = values(erf(f64(xs)));
    table.forEach(([x, text], i) => {
      const e = Number(text); // the double nearest the exact value
      const ulp = 2 ** (Math.floor(Math.log2(e)) - 52);
      expect(Math.abs(got[2 * i]! - e), `erf(${x})`).toBeLessThanOrEqual(ulp);
      expect(got[2 * i + 1], `erf(${-x})`).toBe(-got[2 * i]!);
    });
  });

  it('matches an independent quadrature at 400 points in [−6, 6] to 5e-15', () => {
    // The quadrature's own error (≤ 3.7e-15 at |x| = 6, see erfBySimpson) plus erf's (within an ulp: ≤ 1.2e-16).
    const xs = Array.from({ length: 400 }, (_, i) => -6 + (12 * (i + 0.5)) / 400);
    const got = values(erf(f64(xs)));
    xs.forEach((x, i) => expect(Math.abs(got[i]! - erfBySimpson(x)), `erf(${x})`).toBeLessThan(5e-15));
  });

  it('is odd, saturates to ±1 exactly beyond 6, keeps NaN and keeps relative accuracy near 0', () => {
    same(values(erf(f64([-0, 0, 6, -6, 30, -Infinity, Infinity, NaN]))), [-0, 0, 1, -1, 1, -1, 1, NaN]);
    // erf(x) = (2/√π)(x − x³/3 + …): for x = 1e-10 the cubic term is below one ulp.
    expect(Math.abs(values(erf(f64([1e-10])))[0]! / (1e-10 * 2 / Math.sqrt(Math.PI)) - 1)).toBeLessThan(4e-16);
  });
});

describe('gelu', () => {
  const xs = seededValues(64, 11, -40, 40, 8); // multiples of ⅛ in [−5, 5]
  const phi = (x: number) => 0.5 * (1 + erfBySimpson(x / Math.SQRT2));

  it('exact: x·Φ(x), within what erf\'s absolute error allows', () => {
    // ½x(1 + erf(x/√2)) carries erf's absolute error (within an ulp, ≤ 1.2e-16, and the quadrature's ≤ 3.7e-15 in
    // the reference) times ½|x|, plus a few roundings relative to the result: 2.5e-15·|x| + 4u·|y|.
    // For x ≪ 0 that is a large relative error of a tiny result (the cancellation in 1 + erf).
    const got = values(gelu(f64(xs)));
    xs.forEach((x, i) => {
      const e = x * phi(x);
      expect(Math.abs(got[i]! - e), `gelu(${x})`).toBeLessThanOrEqual(2.5e-15 * Math.abs(x) + 4 * 2 ** -53 * Math.abs(e));
    });
  });

  it("approximate: 'tanh' is ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (Hendrycks & Gimpel 2016)", () => {
    const got = values(gelu(f64(xs), { approximate: 'tanh' }));
    xs.forEach((x, i) => {
      const e = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
      expect(Math.abs(got[i]! - e)).toBeLessThanOrEqual(4e-16 * Math.max(1, Math.abs(e)));
    });
  });

  it('rejects unknown options and approximations', () => {
    expect(() => gelu(f64([1]), { approximation: 'tanh' } as never)).toThrow("gelu: unknown option 'approximation' (did you mean 'approximate'?)");
    expect(() => gelu(f64([1]), { approximate: 'erf' as never })).toThrow("gelu: unknown approximate \"erf\"; expected one of 'none', 'tanh'");
  });
});

describe('clamp', () => {
  it('limits to [min, max] with either bound optional; NaN stays NaN', () => {
    const x = f64([-2, -1, 0, 0.5, 1, 3, NaN, -Infinity, Infinity]);
    same(values(clamp(x, -1, 1)), [-1, -1, 0, 0.5, 1, 1, NaN, -1, 1]);
    same(values(clamp(x, 0)), [0, 0, 0, 0.5, 1, 3, NaN, 0, Infinity]);
    same(values(clamp(x, undefined, 0.5)), [-2, -1, 0, 0.5, 0.5, 0.5, NaN, -Infinity, 0.5]);
    same(values(clamp(x, null, 0.5)), [-2, -1, 0, 0.5, 0.5, 0.5, NaN, -Infinity, 0.5]);
  });

  it('tensor bounds broadcast; min > max gives max (as torch.clamp); a NaN bound gives NaN', () => {
    const x = f64([[-2, 0, 2], [5, 5, 5]]);
    const lo = f64([-1, 1, NaN]);
    const hi = f64([[0], [3]]);
    // Row 0: bounds (−1, 0), (1, 0) (min > max → 0), (NaN, 0) → NaN. Row 1: (−1, 3), (1, 3), (NaN, 3).
    same(values(clamp(x, lo, hi)), [-1, 0, NaN, 3, 3, NaN]);
    same(values(clamp(f64([1, 2]), NaN)), [NaN, NaN]);
  });

  it('works on int32 with number bounds', () => {
    expect(Array.from(clamp(tensor([-5, 0, 5], { dtype: 'int32' }), -1, 2).dataSync())).toEqual([-1, 0, 2]);
  });

  it('refuses a number bound that is not a value of x\'s dtype under its own name', () => {
    // Was 'less: the number -0.5 ...' and 'greater: the number 2.5 ...', the ops clamp is built from.
    const ints = tensor([-5, 0, 5], { dtype: 'int32' });
    const int32 = "of the other operand's dtype int32 (a number takes the tensor's dtype; expected an integer from −2³¹ to 2³¹ − 1)";
    expect(() => clamp(ints, -0.5, 3)).toThrow(`clamp: the number -0.5 is not a value ${int32}`);
    expect(() => clamp(ints, null, 2.5)).toThrow(`clamp: the number 2.5 is not a value ${int32}`);
    expect(() => clamp(ints, NaN)).toThrow(`clamp: the number NaN is not a value ${int32}`);
    // A bool x is refused before its bounds are looked at: clamp is arithmetic, which bool does not
    // take (docs/conventions.md); this was the number 2's refusal, and clamp(bool, 0, 1) ran.
    expect(() => clamp(tensor([true]), 0, 2)).toThrow('clamp: expected a numeric tensor, got bool; cast it first');
  });

  it('rejects min > max, missing bounds and non-tensor bounds', () => {
    expect(() => clamp(f64([1]), 2, 1)).toThrow('clamp: min (2) is greater than max (1); expected min <= max');
    expect(() => clamp(f64([1]))).toThrow('clamp: expected at least one of min and max, got neither');
    expect(() => clamp(f64([1]), 'a' as never)).toThrow('clamp: min must be a Tensor, got string');
  });
});
