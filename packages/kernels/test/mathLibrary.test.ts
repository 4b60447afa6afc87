// Accuracy of the WGSL math library (src/wgsl/mathLibrary.ts) against its stated bounds: each
// function runs on the GPU over dense, deterministic sample sets and at its edges, and its error
// is measured in ULP of the reference, the CPU's float64 result rounded to float32 (errors come
// out as whole ULP; n of them mean at most n + ½ ULP from the exact value). Results below 2^-126
// may be flushed to zero (WGSL allows it), so there the allowed error is 2^-126 instead.
// Non-finite results must match exactly.
//
// The sets: sin/cos on grids in the Cody–Waite range (|x| ≤ 6434) and across it, at 1e4, 1e6,
// 1e8, 3e38, log-uniform over every magnitude, and at the floats nearest to multiples of π/2,
// including the float32s closest to one over the whole range (found by enumerating every
// exponent and significand, see WORST_CASES). pow: large |y·log2 x| up to overflow and
// underflow, x near 1 with huge y, negative bases with integral exponents, subnormal results
// and bases, and every pair of special values. exp, expm1, log, log1p, tanh on their ranges.

import { beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, cos, erf, exp, expm1, full, log, log1p, pow, sin, tanh, tensor } from '@scorch/tensor';
import { mathPrelude } from '../src/wgsl/mathLibrary.js';
import { FLUSH_FLOOR, gpuDevice, hostRandom, ulp } from './helpers.js';

let gpu = 'webgpu';
beforeAll(async () => {
  gpu = (await gpuDevice()).device;
});

const bits = new Uint32Array(1);
const asFloat = new Float32Array(bits.buffer);

/** `count` consecutive float32 values from the float32 nearest `start`, away from zero. */
function consecutive(start: number, count: number): number[] {
  asFloat[0] = start;
  const first = bits[0]!;
  return Array.from({ length: count }, (_, i) => {
    bits[0] = first + i;
    return asFloat[0]!;
  });
}

/** Values as `toEqual` compares them exactly: NaN as 'NaN', −0 as '-0'. */
const show = (values: ArrayLike<number>) => Array.from(values, (v) => (Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : v));

/** `op` on the GPU (float32) and on the CPU (float32), element for element. */
async function both(op: (x: Tensor) => Tensor, xs: number[]): Promise<{ got: unknown[]; want: unknown[] }> {
  return { got: show(await op(tensor(xs, { device: gpu })).data()), want: show(op(tensor(xs)).dataSync()) };
}

/** `count` float32 values evenly spaced over [lo, hi]. */
const grid = (lo: number, hi: number, count: number): number[] =>
  Array.from({ length: count }, (_, i) => Math.fround(lo + ((hi - lo) * i) / (count - 1)));

/** `count` float32 values log-uniform over [lo, hi], each sign equally likely (fixed seed). */
function logUniform(lo: number, hi: number, count: number, seed: number, signed = true): number[] {
  const rnd = hostRandom(seed);
  return Array.from({ length: count }, () => {
    const v = Math.fround(Math.exp(Math.log(lo) + (Math.log(hi) - Math.log(lo)) * rnd()));
    return signed && rnd() < 0.5 ? -v : v;
  });
}

/** The float32 nearest to each value and its two neighbours on each side. */
const around = (values: number[]): number[] =>
  values.flatMap((v) => {
    asFloat[0] = v;
    const nearest = bits[0]!;
    return [-2, -1, 0, 1, 2].map((d) => {
      bits[0] = nearest + d;
      return asFloat[0]!;
    });
  });

interface Worst {
  ulps: number;
  at: string;
}

/** The largest error in ULP of the reference (see the header for flushed and non-finite results). */
function worstError(inputs: readonly (readonly number[])[], reference: ArrayLike<number>, actual: ArrayLike<number>): Worst {
  let worst: Worst = { ulps: 0, at: 'nowhere' };
  for (let i = 0; i < reference.length; i++) {
    const r = Math.fround(reference[i]!);
    const a = actual[i]!;
    let error: number;
    if (Number.isNaN(r) || Number.isNaN(a) || !Number.isFinite(r) || !Number.isFinite(a)) {
      error = Object.is(r, a) || (Number.isNaN(r) && Number.isNaN(a)) ? 0 : Infinity;
    } else if (Math.abs(r) < 2 ** -126 && Math.abs(a - r) <= FLUSH_FLOOR) {
      error = 0;
    } else {
      error = Math.abs(a - r) / ulp(r);
    }
    if (error > worst.ulps) worst = { ulps: error, at: `(${inputs.map((x) => x[i]).join(', ')}): expected ${r}, got ${a}` };
  }
  return worst;
}

/** Runs `op` on float32 GPU tensors and on float64 CPU tensors, and returns the worst error. */
async function measure(op: (...args: Tensor[]) => Tensor, inputs: readonly (readonly number[])[]): Promise<Worst> {
  const reference = op(...inputs.map((x) => tensor(x as number[], { dtype: 'float64' }))).dataSync();
  const actual = await op(...inputs.map((x) => tensor(x as number[], { device: gpu }))).data();
  return worstError(inputs, reference, actual);
}

// The float32s closest to a multiple of π/2 (distance to the
// nearest multiple in units of π/2): found by enumerating every significand of every exponent
// from 2^0 up; the first is the worst case over all float32 ≥ 1 (16367173·2^72, at 2^-29.86).
const WORST_CASES = [
  16367173 * 2 ** 72, 16367173 * 2 ** 73, 16367173 * 2 ** 74, 10741887 * 2 ** 11, 10741887 * 2 ** 12, 10057457 * 2 ** 62,
  11617958 * 2 ** 17, 252.89820861816406, 52516.43359375, 2709675.5, 105032.8671875, 267058.9375, 5419351, 10838702,
];

describe('sin and cos: within 2 ULP for every finite argument', () => {
  const multiples = (ks: number[]) => around(ks.map((k) => (k * Math.PI) / 2));
  const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
  const sets: Record<string, number[]> = {
    'grid on [-8, 8]': grid(-8, 8, 1 << 16),
    'tiny and small, log-uniform on [2^-30, 4]': logUniform(2 ** -30, 4, 1 << 14, 1),
    'grid on the Cody–Waite range [-6434, 6434]': grid(-6434, 6434, 1 << 18),
    'around the switch to Payne–Hanek at 6434': [...consecutive(6434, 2048), ...consecutive(-6434, 2048), ...consecutive(6433.5, 2048)],
    'at 1e4, 1e6, 1e8 and 3e38': [1e4, 1e6, 1e8, 3e38, -1e4, -1e6, -1e8, -3e38].flatMap((x) => consecutive(x, 4096)),
    'log-uniform over [2^-20, 3.4e38]': logUniform(2 ** -20, 3.4e38, 1 << 16, 2),
    'nearest the multiples kπ/2, k ≤ 4096': multiples(range(1, 4096)),
    'nearest kπ/2 around 1e4, 1e6, 1e8 and 1e9': multiples([1e4, 1e6, 1e8, 1e9].flatMap((x) => range(Math.round(x / (Math.PI / 2)) - 256, 512))),
    'the float32s closest to a multiple of π/2': around(WORST_CASES),
  };
  for (const [name, xs] of Object.entries(sets)) {
    it(name, async () => {
      for (const op of [sin, cos]) {
        const worst = await measure(op, [xs]);
        expect(worst.ulps, `${op === sin ? 'sin' : 'cos'} ${worst.at}`).toBeLessThanOrEqual(2);
      }
    });
  }

  it('NaN and ±inf give NaN; ±0 and the largest floats are finite and in [-1, 1]', async () => {
    const xs = [NaN, Infinity, -Infinity, 0, -0, 3.4028234663852886e38, -3.4028234663852886e38, 2 ** -149];
    for (const op of [sin, cos]) {
      const worst = await measure(op, [xs]);
      expect(worst.ulps, worst.at).toBeLessThanOrEqual(2);
    }
  });
});

describe('pow: within 1 ULP', () => {
  const rnd = hostRandom(3);
  const count = 1 << 14;
  /** Bases from `base()` and exponents y = t / log2(x) for t uniform on [tLo, tHi] (so xʸ = 2^t). */
  const towards = (base: () => number, tLo: number, tHi: number): [number[], number[]] => {
    const xs = Array.from({ length: count }, () => Math.fround(base()));
    return [xs, xs.map((x) => Math.fround((tLo + (tHi - tLo) * rnd()) / Math.log2(x)))];
  };
  const sets: Record<string, () => [number[], number[]]> = {
    'x log-uniform on [2^-30, 2^30], y on [-10, 10]': () => [logUniform(2 ** -30, 2 ** 30, count, 4, false), grid(-10, 10, count)],
    'y·log2 x up to overflow and underflow (2^-151 to 2^129)': () => towards(() => Math.exp((rnd() * 2 - 1) * 80), -151, 129),
    'x within 2^-23..2^-10 of 1, huge y': () => towards(() => 1 + (rnd() < 0.5 ? -1 : 1) * 2 ** (-10 - 13 * rnd()), -151, 129),
    'subnormal results (2^-150 to 2^-126)': () => towards(() => Math.exp(rnd() * 10 - 5), -150, -126),
    'subnormal bases': () => [logUniform(2 ** -149, 2 ** -126, count, 5, false), grid(-1, 1, count)],
    'negative bases with integral exponents': () => [
      logUniform(2 ** -8, 2 ** 8, count, 6, false).map((x) => -x),
      Array.from({ length: count }, (_, i) => (i % 33) - 16),
    ],
  };
  for (const [name, make] of Object.entries(sets)) {
    it(name, async () => {
      const worst = await measure(pow, make());
      expect(worst.ulps, worst.at).toBeLessThanOrEqual(1);
    });
  }

  it('every pair of special values, signed zeros included, as Math.pow', async () => {
    const specials = [0, -0, Infinity, -Infinity, NaN, 1, -1, 0.5, -0.5, 2, -2, 3, -3, 1e-30, 1e30, 2.5, -2.5, 16777216, 16777218, -16777215, 0.3].map(Math.fround);
    const xs = specials.flatMap((x) => specials.map(() => x));
    const ys = specials.flatMap(() => specials);
    const actual = await pow(tensor(xs, { device: gpu }), tensor(ys, { device: gpu })).data();
    const wrong = xs.flatMap((x, i) => {
      const want = Math.fround(Math.pow(x, ys[i]!));
      const got = actual[i]!;
      // Zeros, infinities and NaN exactly (signs included); subnormals may be flushed.
      const ok = want === 0 || !Number.isFinite(want) ? Object.is(want, got) : Math.abs(want - got) <= (Math.abs(want) < 2 ** -126 ? FLUSH_FLOOR : ulp(want));
      return ok ? [] : [`pow(${x}, ${ys[i]}) = ${actual[i]}, expected ${want}`];
    });
    expect(wrong).toEqual([]);
  });
});

describe('signed zeros', () => {
  // ULP errors do not see the sign of a zero, so it is compared here: odd functions keep it
  // (sin, tanh, expm1, log1p, erf, sqrt), as the CPU's and IEEE 754's. expm1 and sin lost it
  // (−0 + 0 in the polynomial, and in the π/2 reduction) and tanh gave −0 for +0.
  const zeros = [0, -0];
  const ops: [string, (x: Tensor) => Tensor][] = [
    ['sin', sin], ['tanh', tanh], ['expm1', expm1], ['log1p', log1p], ['erf', erf],
    ['sqrt', (x) => x.sqrt()], ['elu', (x) => x.elu()], ['neg', (x) => x.neg()], ['abs', (x) => x.abs()],
  ];
  for (const [name, op] of ops) {
    it(`${name}(±0) has the CPU's sign`, async () => {
      const { got, want } = await both(op, zeros);
      expect(got).toEqual(want);
    });
  }
  it('the expected signs', () => {
    const signs = (op: (x: Tensor) => Tensor) => Array.from(op(tensor(zeros)).dataSync(), (v) => Object.is(v, -0));
    for (const op of [sin, tanh, expm1, log1p, erf]) expect(signs(op)).toEqual([false, true]);
  });
});

describe('exp, expm1, log, log1p and tanh: within their bounds', () => {
  const cases: { name: string; op: (x: Tensor) => Tensor; bound: number; xs: number[] }[] = [
    { name: 'exp on [-104, 89]', op: exp, bound: 1, xs: grid(-104, 89, 1 << 17) },
    { name: 'exp near 0', op: exp, bound: 1, xs: logUniform(2 ** -30, 1, 1 << 14, 7) },
    { name: 'expm1 on [-20, 89]', op: expm1, bound: 1, xs: grid(-20, 89, 1 << 17) },
    { name: 'expm1 near 0', op: expm1, bound: 1, xs: logUniform(2 ** -30, 1, 1 << 14, 8) },
    { name: 'log over every positive float32', op: log, bound: 1, xs: logUniform(2 ** -149, 3.4e38, 1 << 17, 9, false) },
    { name: 'log near 1', op: log, bound: 1, xs: grid(0.5, 2, 1 << 17) },
    // log1p adds back the rounding error of 1 + x (a fenced compensation): without it 2 ULP here.
    { name: 'log1p on [0.4142, 8)', op: log1p, bound: 1, xs: grid(0.4142, 8, 1 << 18) },
    { name: 'log1p near 0 and towards -1', op: log1p, bound: 1, xs: [...logUniform(2 ** -30, 0.999, 1 << 15, 10), ...grid(-0.9999, -0.25, 1 << 14)] },
    { name: 'log1p up to 3.4e38', op: log1p, bound: 1, xs: logUniform(8, 3.4e38, 1 << 14, 11, false) },
    { name: 'tanh on [-10, 10] and near 0', op: tanh, bound: 2, xs: [...grid(-10, 10, 1 << 17), ...logUniform(2 ** -30, 1, 1 << 14, 12)] },
  ];
  for (const c of cases) {
    it(`${c.name}: ≤ ${c.bound} ULP`, async () => {
      const worst = await measure(c.op, [c.xs]);
      expect(worst.ulps, worst.at).toBeLessThanOrEqual(c.bound);
    });
  }
});

// erf's bound is stated in two parts (mathLibrary.ts, and the derivation in parityCases.ts): the
// series for |x| < 0.5 keeps relative accuracy (8 ULP), the erfc fit beyond is held to an
// absolute 2^-21 (the fit's 1.2e-7·erfc(0.5) plus float32 rounding). The reference is the CPU's
// float64 erf (absolute error < 1e-15, checked against a quadrature in the tensor tests).
describe('erf: 8 ULP for |x| < 0.5, 2^-21 absolute beyond', () => {
  const sets: Record<string, number[]> = {
    'grid on [-10, 10]': grid(-10, 10, 1 << 17),
    'tiny and small, log-uniform on [2^-30, 0.5]': logUniform(2 ** -30, 0.5, 1 << 14, 13),
    'around the switch at 0.5': [...consecutive(0.5, 1024), ...consecutive(-0.5, 1024), ...consecutive(0.4999, 1024)],
    'large |x|, log-uniform on [4, 3.4e38]': logUniform(4, 3.4e38, 1 << 14, 14),
  };
  for (const [name, xs] of Object.entries(sets)) {
    it(name, async () => {
      const reference = erf(tensor(xs, { dtype: 'float64' })).dataSync();
      const actual = await erf(tensor(xs, { device: gpu })).data();
      let worst = { excess: 0, at: 'nowhere' };
      xs.forEach((x, i) => {
        const r = reference[i]!;
        const allowed = (Math.abs(x) < 0.5 ? 8 * ulp(r) : 2 ** -21) + FLUSH_FLOOR;
        const excess = Math.abs(actual[i]! - r) / allowed;
        if (!(excess <= worst.excess)) worst = { excess, at: `erf(${x}): expected ${r}, got ${actual[i]}` };
      });
      expect(worst.excess, worst.at).toBeLessThanOrEqual(1);
    });
  }

  it('NaN stays NaN, ±0 keep their sign, ±inf give ±1', async () => {
    expect(show(await erf(tensor([NaN, 0, -0, Infinity, -Infinity], { device: gpu })).data())).toEqual(['NaN', 0, '-0', 1, -1]);
  });
});

describe('special arguments give exactly the CPU result on WebGPU', () => {
  it('exp: NaN stays NaN (the clamped general path would give a finite value), ±inf give +inf and 0', async () => {
    // Each result is exact (no rounding involved): NaN, 0, +inf, 1, 1, and the overflow/underflow cases.
    const { got, want } = await both(exp, [NaN, -Infinity, Infinity, 0, -0, 200, -200]);
    expect(want).toEqual(['NaN', 0, Infinity, 1, 1, Infinity, 0]);
    expect(got).toEqual(want);
  });

  it('exp of NaN inside a vector: only the NaN lane is NaN', async () => {
    // The vec4 kernel (4 elements, a fresh output) with NaN in one lane; e^0 = 1 and e^-inf = 0 exactly.
    const { got } = await both(exp, [0, NaN, -Infinity, 0]);
    expect(got).toEqual([1, 'NaN', 0, 1]);
  });

  it('log1p: -1 gives -inf, below -1 (and -inf) NaN, +inf stays +inf', async () => {
    const { got, want } = await both(log1p, [-1, -1.5, -Infinity, Infinity, NaN, 0, -0]);
    expect(want).toEqual([-Infinity, 'NaN', 'NaN', Infinity, 'NaN', 0, '-0']);
    expect(got).toEqual(want);
  });

  it('log: ±0 give -inf, negatives NaN, +inf stays +inf', async () => {
    const { got, want } = await both(log, [0, -0, -1, -Infinity, Infinity, NaN, 1]);
    expect(want).toEqual([-Infinity, -Infinity, 'NaN', 'NaN', Infinity, 'NaN', 0]);
    expect(got).toEqual(want);
  });
});

describe('mathPrelude', () => {
  it('names an unknown library function rather than emitting a shader that calls it', () => {
    expect(() => mathPrelude('let y = sc_exq(x);')).toThrow(/unknown WGSL math function sc_exq/);
    // A known one comes with what it calls.
    const code = mathPrelude('let y = sc_exp(x);');
    for (const name of ['fn sc_exp(', 'fn sc_expm1_reduced(', 'fn sc_pos_inf(', 'sc_special_bits']) expect(code).toContain(name);
  });
});

describe('fillKernel: full of more than 1024 elements (a fill kernel, not a host write)', () => {
  it('keeps the sign bit of the pattern: negative floats, -0 and negative int32', async () => {
    // 2048 elements: past the 1024 of the host-write path. Each value is stored exactly.
    for (const [value, dtype] of [[-1.5, 'float32'], [-0, 'float32'], [-7, 'int32'], [-(2 ** 31), 'int32']] as const) {
      const t = full([2048], value, { dtype, device: gpu });
      const got = new Set(show(await t.data()));
      t.dispose();
      expect([...got], `full(${Object.is(value, -0) ? '-0' : value}, ${dtype})`).toEqual(show([value]));
    }
  });
});
