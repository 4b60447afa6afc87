// The parity table: for every primitive, cases (shapes, views, value kinds) and the error each
// element may have against the CPU reference. Shared by the eager parity test (parity.test.ts)
// and the compiled one (jitParity.test.ts); only the reduction depth differs between them.
//
// Tolerances, stated per op (u = 2^-24; ULP of the float32 reference; the CPU reference is the
// correctly rounded float64 result, so each bound adds its 0.5 ULP):
// - neg, add, sub, mul, max, comparisons, where, movement, cast, gather, scatterAdd: exact
//   (IEEE +, −, × are correctly rounded in WGSL; scatterAdd sums in the CPU's order).
// - div, reciprocal: 2.5 ULP (WGSL spec bound for x/y) + 0.5 → 3 ULP.
// - sqrt: the spec inherits 1/inverseSqrt: 2 ULP + 2.5 ULP, + 0.5 → 5 ULP.
// - exp, expm1, log, log1p, pow: 1 ULP; sin, cos, tanh: 2 ULP. Our WGSL implementations
//   (mathLibrary.ts) state these bounds against the correctly rounded result, and
//   mathLibrary.test.ts asserts them on dense samples and at the edges; sin and cos hold them
//   for every finite argument, and their inputs here include huge ones (up to e^88).
// - sigmoid = 1/(1 + e) or e/(1 + e), e = exp(−|x|): exp's 1 ULP (its relative error passes at
//   most halved through 1 + e, wholly into e·s), 1 + e 0.5, the division 2.5 (spec), e·s 0.5,
//   the reference's 0.5 → 5 ULP.
// - every float bound also allows 2^-126 absolute: WGSL may flush subnormal results to zero.
// - sum: recursive summation error ≤ depth·u·Σ|x| (Higham), depth = longest chain of additions
//   in the kernels' reduction plan (eager: `reductionPlan`; compiled: `compiledReductionDepth`),
//   + 1 ULP.
// - reduceMax: exact, including NaN propagation.
// - floor, ceil, round, sign: exact (WGSL's floor, ceil and round are exact; round takes ties to
//   even, as the CPU's roundEven). argmax, argmin: exact indices (ties and NaN included).
// - erf: |x| < 0.5, the series: its truncation (< 1e-9 relative) and about ten float32 roundings
//   on values of size ≤ x → 8 ULP of the result. |x| ≥ 0.5: 1 − t·e^q: the fit's 1.2e-7 relative
//   on erfc ≤ 0.48 (≈ 5.8e-8), e^q's 1 ULP and q's rounding (|q| < 20: ≈ 12 roundings of u·|q|,
//   a relative error of ≤ 12·20·u ≈ 1.4e-5 on erfc, which only matters where erfc is small:
//   |x| ≥ 2 makes erfc ≤ 4.7e-3, so ≤ 6.6e-8), t's and the subtraction's roundings (≤ 3 ULP of
//   1 = 1.8e-7) → 2^-21 (4.8e-7) absolute, with the flush floor.
// - cumsum: one invocation walks each line in its scan order (reversed for reverse scans), a
//   float32 running sum ŝ_k = fl(ŝ_{k−1} + x_k), against the CPU's double one rounded once (r_k).
//   A running-error bound (Higham §4.2, kept along the walk rather than summed up front): with
//   fl(a + b) = (a + b)/(1 + η), |η| ≤ u, the error e_k = ŝ_k − s_k (s_k the exact prefix) is
//   e_{k−1} − η·ŝ_k, so |e_k| ≤ |e_{k−1}| + u·(|s_k| + |e_k|), and |s_k| ≤ |r_k|·(1 + u)
//   (r_k is s_k rounded to nearest: |s_k − r_k| ≤ u·|r_k|). Hence |e_k| ≤ B_k with B_0 = 0,
//   B_k = (B_{k−1} + u·|r_k|·(1 + u))/(1 − u), computed along each line in walk order; + the
//   CPU's own double walk, ≤ k·2^-53·Σ_{j ≤ k}|x_j| (~1e-7 here) + 1 ULP (the reference's
//   rounding, ½ ULP) + the flush floor. It grows with the running sums' sizes, not with
//   k·Σ|x| (the worst case k·u·Σ_{j ≤ k}|x_j|, which at k = 20,000 allowed ~57 on sums of ~200,
//   far above one dropped or repeated element, and so could not see a wrong carry between
//   launches; the meta-check in parity.test.ts shows this bound does).
//   cumprod: k float32 products: ≤ k·u·|y_k| relative + 1 ULP, on inputs that keep long
//   products away from 0 (helpers.ts logNearOne). int32: exact (both wrap modulo 2^32).
// - matmul: each output sums K products in float32: ≤ K·u·Σ|a||b| (the CPU sums in float64) + 1 ULP.
// - random: uniform bits identical; normals see random.test.ts.

import { type DType, type Primitive, type Tensor, apply, randomKey, sizeOf, tidy } from '@scorch/tensor';
import { expect } from 'vitest';
import { type ElementTolerance, type InputSpec, FLUSH_FLOOR, RUN_SEED, exact, firstMismatch, hashSeed, hostRandom, makeInput, ulp, ulps } from './helpers.js';

export interface Context {
  /** Inputs as contiguous host arrays (CPU copies), for per-element tolerances. */
  inputs: ArrayLike<number>[];
  cpuInputs: Tensor[];
  /** The CPU reference output, row-major. */
  reference: ArrayLike<number>;
  params: unknown;
  outShape: readonly number[];
}

export interface ParityCase {
  name: string;
  inputs: InputSpec[];
  params: (device: string) => unknown;
  /** The allowed error per element, possibly computed from the inputs. */
  tolerance: (ctx: Context) => ElementTolerance;
}

/** A tolerance that does not depend on the inputs. */
const always = (t: ElementTolerance) => (): ElementTolerance => t;

/** Values suited to a dtype: the float kind for float32, small ints for int32, 0/1 for bool. */
function valuesFor(dtype: DType, floatKind: InputSpec['values']): InputSpec['values'] {
  return dtype === 'int32' ? 'int' : dtype === 'bool' ? 'bool' : floatKind;
}

const noParams = () => ({});
const f32 = 'float32' as const;

function unaryCases(kind: InputSpec['values'], element: ElementTolerance, dtypes: DType[] = [f32]): ParityCase[] {
  const tolerance = always(element);
  return dtypes.flatMap((dtype) => {
    const values = valuesFor(dtype, kind);
    return [
    { name: `${dtype} [1023]`, inputs: [{ shape: [1023], dtype, values }], params: noParams, tolerance },
    { name: `${dtype} [1]`, inputs: [{ shape: [1], dtype, values }], params: noParams, tolerance },
    { name: `${dtype} [33,7] permuted`, inputs: [{ shape: [33, 7], dtype, values, view: 'permuted' }], params: noParams, tolerance },
    { name: `${dtype} [7,33] sliced`, inputs: [{ shape: [7, 33], dtype, values, view: 'sliced' }], params: noParams, tolerance },
    { name: `${dtype} [257] broadcast`, inputs: [{ shape: [257], dtype, values, view: 'broadcast' }], params: noParams, tolerance },
    ];
  });
}

function binaryCases(aKind: InputSpec['values'], bKind: InputSpec['values'], tolerance: ParityCase['tolerance'], dtypes: DType[] = [f32]): ParityCase[] {
  return dtypes.flatMap((dtype) => {
    const a = valuesFor(dtype, aKind);
    const b = valuesFor(dtype, bKind);
    return [
    { name: `${dtype} [1023]`, inputs: [{ shape: [1023], dtype, values: a }, { shape: [1023], dtype, values: b }], params: noParams, tolerance },
    { name: `${dtype} [1]`, inputs: [{ shape: [1], dtype, values: a }, { shape: [1], dtype, values: b }], params: noParams, tolerance },
    {
      name: `${dtype} [7,33] broadcast x permuted`,
      inputs: [{ shape: [7, 33], dtype, values: a, view: 'broadcast' }, { shape: [7, 33], dtype, values: b, view: 'permuted' }],
      params: noParams,
      tolerance,
    },
    {
      name: `${dtype} [33,7,3] sliced x contiguous`,
      inputs: [{ shape: [33, 7, 3], dtype, values: a, view: 'sliced' }, { shape: [33, 7, 3], dtype, values: b }],
      params: noParams,
      tolerance,
    },
    {
      name: `${dtype} [2,257] contiguous x broadcast`,
      inputs: [{ shape: [2, 257], dtype, values: a }, { shape: [2, 257], dtype, values: b, view: 'broadcast' }],
      params: noParams,
      tolerance,
    },
    ];
  });
}

/** The math library's bounds (see the header). */
const MATH_1 = ulps(1);
const MATH_2 = ulps(2);
const EXACT = always(exact);

/**
 * The longest chain of additions a kernel summing `extent` elements for each of `outputs` makes
 * (`columns`: the reduced axes all come before the kept ones).
 */
export type ReductionDepth = (outputs: number, extent: number, columns: boolean) => number;

/** depth·u·Σ|x| + 1 ULP for sum, with Σ|x| per output from the CPU. */
const sumToleranceFor = (reductionDepth: ReductionDepth) => (ctx: Context): ElementTolerance => {
  const { axes } = ctx.params as { axes: number[] };
  const x = ctx.cpuInputs[0]!;
  const outputs = sizeOf(ctx.outShape);
  const extent = sizeOf(axes.map((i) => x.shape[i]!));
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const columns = kept.length > 0 && Math.max(...axes) < Math.min(...kept);
  const depth = reductionDepth(outputs, extent, columns);
  const absSum = tidy(() => apply('sum', [x.abs()], { axes }).dataSync());
  return (i, r) => (x.dtype === 'int32' ? 0 : depth * 2 ** -24 * absSum[i]! + ulp(r) + FLUSH_FLOOR);
};

/** K·u·Σ|a||b| + 1 ULP for matmul. */
const matmulTolerance = (ctx: Context): ElementTolerance => {
  const [a, b] = ctx.cpuInputs as [Tensor, Tensor];
  const k = a.shape[a.rank - 1]!;
  const bound = tidy(() => apply('matmul', [a.abs(), b.abs()], {}).dataSync());
  return (i, r) => k * 2 ** -24 * bound[i]! + ulp(r) + FLUSH_FLOOR;
};

/** 8 ULP for |erf| < erf(½), else 2^-21 absolute (see the header). */
const erfTolerance: ElementTolerance = (_i, r) => (Math.abs(r) < 0.5204998778130465 ? 8 * ulp(r) : 2 ** -21) + FLUSH_FLOOR;

/** Position along the axis (1-based count of steps) of each element of a scan's output. */
function scanSteps(ctx: Context, i: number): number {
  const { axis, reverse } = ctx.params as { axis: number; reverse: boolean };
  const inner = sizeOf(ctx.outShape.slice(axis + 1));
  const extent = ctx.outShape[axis]!;
  const pos = Math.floor(i / inner) % extent;
  return (reverse ? extent - 1 - pos : pos) + 1;
}

/**
 * The row-major output indices of every line of a scan, each in the order the walk visits them
 * (from the end of the axis for a reverse scan).
 */
export function scanLines(outShape: readonly number[], axis: number, reverse: boolean): number[][] {
  const inner = sizeOf(outShape.slice(axis + 1));
  const extent = outShape[axis]!;
  const outer = extent === 0 ? 0 : sizeOf(outShape) / (extent * inner);
  const lines: number[][] = [];
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < inner; c++) {
      lines.push(Array.from({ length: extent }, (_, s) => (o * extent + (reverse ? extent - 1 - s : s)) * inner + c));
    }
  }
  return lines;
}

/** The running-error bound B_k + 1 ULP + the flush floor for cumsum (derived in the header). */
const cumsumTolerance = (ctx: Context): ElementTolerance => {
  if (ctx.cpuInputs[0]!.dtype === 'int32') return exact;
  const u = 2 ** -24;
  const { axis, reverse } = ctx.params as { axis: number; reverse: boolean };
  const x = ctx.inputs[0]!;
  const bound = new Float64Array(ctx.reference.length);
  for (const line of scanLines(ctx.outShape, axis, reverse)) {
    let b = 0;
    let absPrefix = 0;
    line.forEach((i, s) => {
      b = (b + u * Math.abs(ctx.reference[i]!) * (1 + u)) / (1 - u);
      absPrefix += Math.abs(x[i]!);
      bound[i] = b + (s + 1) * 2 ** -53 * absPrefix;
    });
  }
  return (i, r) => bound[i]! + ulp(r) + FLUSH_FLOOR;
};

/** k·u·|y_k| + 1 ULP for cumprod. */
const cumprodTolerance = (ctx: Context): ElementTolerance => {
  if (ctx.cpuInputs[0]!.dtype === 'int32') return exact;
  return (i, r) => scanSteps(ctx, i) * 2 ** -24 * Math.abs(r) + ulp(r) + FLUSH_FLOOR;
};

/**
 * A scan's cases: `values` for the short ones, `longValues` for [1023] and the lines longer than
 * one launch's span (cumprod: values whose running products stay away from 0 and from overflow).
 */
function scanCases(values: InputSpec['values'], tolerance: ParityCase['tolerance'], longValues: InputSpec['values'] = values): ParityCase[] {
  const c = (name: string, shape: readonly number[], axis: number, reverse: boolean, dtype: DType = f32, view?: InputSpec['view'], kind = values): ParityCase => ({
    name, inputs: [{ shape, dtype, values: kind, ...(view ? { view } : {}) }], params: () => ({ axis, reverse }), tolerance,
  });
  return [
    c('[1023] axis 0', [1023], 0, false, f32, undefined, longValues),
    c('[1] axis 0', [1], 0, false),
    c('[7,33] axis 1 reverse', [7, 33], 1, true),
    c('[33,7,3] axis 1, permuted', [33, 7, 3], 1, false, f32, 'permuted'),
    c('[7,257] axis 0 reverse, sliced', [7, 257], 0, true, f32, 'sliced'),
    c('[5,33] axis 1, broadcast', [5, 33], 1, false, f32, 'broadcast'),
    c('int32 [33,7] axis 0', [33, 7], 0, false, 'int32', undefined, 'int'),
    // Longer than one launch's span (2^14): the walk continues across launches.
    c('[2,20000] axis 1', [2, 20000], 1, false, f32, undefined, longValues),
    c('[20000,2] axis 0 reverse', [20000, 2], 0, true, f32, undefined, longValues),
  ];
}

function argCases(): ParityCase[] {
  const c = (name: string, shape: readonly number[], axis: number, values: InputSpec['values'], dtype: DType = f32, view?: InputSpec['view']): ParityCase => ({
    name, inputs: [{ shape, dtype, values, ...(view ? { view } : {}) }], params: () => ({ axis }), tolerance: EXACT,
  });
  return [
    c('[1023] axis 0 (with NaN, ±inf)', [1023], 0, 'wide'),
    c('[1] axis 0', [1], 0, 'normal'),
    c('[33,7] axis 1, many ties', [33, 7], 1, 'halves'),
    c('[7,33] axis 0 (with NaN), permuted', [7, 33], 0, 'wide', f32, 'permuted'),
    c('[5,33,3] axis 1, sliced', [5, 33, 3], 1, 'halves', f32, 'sliced'),
    c('[7,33] axis 1, broadcast', [7, 33], 1, 'normal', f32, 'broadcast'),
    c('int32 [33,257] axis 1', [33, 257], 1, 'int', 'int32'),
    c('[2,40000] axis 1 (spans)', [2, 40000], 1, 'normal'),
  ];
}

/**
 * The parity table: one entry per primitive (the mapped type makes a missing one a compile
 * error), with sums held to the given kernels' reduction depth.
 */
export function parityCases(reductionDepth: ReductionDepth): { readonly [P in Primitive]: readonly ParityCase[] } {
  const sumTolerance = sumToleranceFor(reductionDepth);
  return {
  neg: unaryCases('wide', exact, [f32, 'int32']),
  exp: unaryCases('expDomain', MATH_1),
  log: unaryCases('positive', MATH_1),
  sin: unaryCases('angles', MATH_2),
  cos: unaryCases('angles', MATH_2),
  sqrt: unaryCases('positive', ulps(5)),
  reciprocal: unaryCases('wide', ulps(3)),
  tanh: unaryCases('normal', MATH_2),
  log1p: unaryCases('log1pDomain', MATH_1),
  expm1: unaryCases('expm1Domain', MATH_1),
  sigmoid: unaryCases('wide', ulps(5)),
  floor: unaryCases('wide', exact),
  ceil: unaryCases('wide', exact),
  round: [...unaryCases('halves', exact), ...unaryCases('wide', exact).slice(0, 1).map((c) => ({ ...c, name: `${c.name} wide` }))],
  sign: unaryCases('wide', exact),
  erf: [...unaryCases('normal', erfTolerance), ...unaryCases('wide', erfTolerance).slice(0, 1).map((c) => ({ ...c, name: `${c.name} wide` }))],
  add: binaryCases('wide', 'wide', EXACT, [f32, 'int32']),
  sub: binaryCases('wide', 'wide', EXACT, [f32, 'int32']),
  mul: binaryCases('wide', 'wide', EXACT, [f32, 'int32']),
  div: binaryCases('wide', 'wide', always(ulps(3))),
  max: binaryCases('wide', 'wide', EXACT, [f32, 'int32']),
  pow: binaryCases('powBase', 'powExponent', always(MATH_1)),
  less: binaryCases('int', 'int', EXACT, [f32, 'int32', 'bool']),
  lessEqual: binaryCases('int', 'int', EXACT, [f32, 'int32', 'bool']),
  equal: binaryCases('int', 'int', EXACT, [f32, 'int32', 'bool']),
  notEqual: binaryCases('int', 'int', EXACT, [f32, 'int32', 'bool']),
  where: (['float32', 'int32', 'bool'] as const).flatMap((dtype) => [
    {
      name: `${dtype} [1023]`,
      inputs: [{ shape: [1023], dtype: 'bool', values: 'bool' }, { shape: [1023], dtype, values: dtype === 'bool' ? 'bool' : 'int' }, { shape: [1023], dtype, values: dtype === 'bool' ? 'bool' : 'int' }],
      params: noParams,
      tolerance: EXACT,
    },
    {
      name: `${dtype} [7,33] permuted cond, broadcast a, sliced b`,
      inputs: [
        { shape: [7, 33], dtype: 'bool', values: 'bool', view: 'permuted' },
        { shape: [7, 33], dtype, values: dtype === 'bool' ? 'bool' : 'normal', view: 'broadcast' },
        { shape: [7, 33], dtype, values: dtype === 'bool' ? 'bool' : 'normal', view: 'sliced' },
      ],
      params: noParams,
      tolerance: EXACT,
    },
  ]),
  sum: [
    ...([[[1023], [0]], [[7, 33], [1]], [[7, 33], [0]], [[33, 7, 5], [1]], [[257, 7], [0, 1]], [[4, 20000], [1]], [[3, 5, 7, 2], [0, 2]]] as const).map(
      ([shape, axes]): ParityCase => ({ name: `[${shape}] axes ${axes}`, inputs: [{ shape, dtype: f32, values: 'normal' }], params: () => ({ axes }), tolerance: sumTolerance }),
    ),
    { name: '[33,7] permuted axes 0', inputs: [{ shape: [33, 7], dtype: f32, values: 'normal', view: 'permuted' }], params: () => ({ axes: [0] }), tolerance: sumTolerance },
    { name: '[7,257] sliced axes 1', inputs: [{ shape: [7, 257], dtype: f32, values: 'normal', view: 'sliced' }], params: () => ({ axes: [1] }), tolerance: sumTolerance },
    { name: '[7,257] broadcast axes 0', inputs: [{ shape: [7, 257], dtype: f32, values: 'normal', view: 'broadcast' }], params: () => ({ axes: [0] }), tolerance: sumTolerance },
    { name: 'int32 [33,257] axes 1', inputs: [{ shape: [33, 257], dtype: 'int32', values: 'int' }], params: () => ({ axes: [1] }), tolerance: EXACT },
    { name: '[1] axes 0', inputs: [{ shape: [1], dtype: f32, values: 'normal' }], params: () => ({ axes: [0] }), tolerance: sumTolerance },
  ],
  reduceMax: [
    ...([[[1023], [0]], [[7, 33], [1]], [[33, 7], [0]], [[257, 7, 3], [0, 2]], [[2, 70000], [1]]] as const).map(
      ([shape, axes]): ParityCase => ({ name: `[${shape}] axes ${axes} (with NaN, ±inf)`, inputs: [{ shape, dtype: f32, values: 'wide' }], params: () => ({ axes }), tolerance: EXACT }),
    ),
    { name: '[33,7] permuted axes 1', inputs: [{ shape: [33, 7], dtype: f32, values: 'normal', view: 'permuted' }], params: () => ({ axes: [1] }), tolerance: EXACT },
    { name: 'int32 [7,257] sliced axes 1', inputs: [{ shape: [7, 257], dtype: 'int32', values: 'int', view: 'sliced' }], params: () => ({ axes: [1] }), tolerance: EXACT },
  ],
  argmax: argCases(),
  argmin: argCases(),
  cumsum: scanCases('normal', cumsumTolerance),
  // Zeros in the short cases; no zeros in the long ones, whose products would otherwise all be
  // ±0 after about 20 elements (helpers.ts nearOne), leaving the carry between launches unchecked.
  cumprod: scanCases('nearOne', cumprodTolerance, 'logNearOne'),
  reshape: [
    { name: 'contiguous [7,33] to [33,7]', inputs: [{ shape: [7, 33], dtype: f32, values: 'normal' }], params: () => ({ shape: [33, 7] }), tolerance: EXACT },
    { name: 'permuted [7,33] to [231]', inputs: [{ shape: [7, 33], dtype: f32, values: 'normal', view: 'permuted' }], params: () => ({ shape: [231] }), tolerance: EXACT },
    { name: 'sliced int32 [3,5,7] to [15,7]', inputs: [{ shape: [3, 5, 7], dtype: 'int32', values: 'int', view: 'sliced' }], params: () => ({ shape: [15, 7] }), tolerance: EXACT },
    { name: 'broadcast bool [4,257] to [1028]', inputs: [{ shape: [4, 257], dtype: 'bool', values: 'bool', view: 'broadcast' }], params: () => ({ shape: [1028] }), tolerance: EXACT },
  ],
  expand: [
    { name: '[1,33] to [7,33]', inputs: [{ shape: [1, 33], dtype: f32, values: 'normal' }], params: () => ({ shape: [7, 33] }), tolerance: EXACT },
    { name: 'permuted [33,1,7] to [33,5,7]', inputs: [{ shape: [33, 1, 7], dtype: 'int32', values: 'int', view: 'permuted' }], params: () => ({ shape: [33, 5, 7] }), tolerance: EXACT },
  ],
  permute: [
    { name: '[7,33,3] (2,0,1)', inputs: [{ shape: [7, 33, 3], dtype: f32, values: 'normal' }], params: () => ({ perm: [2, 0, 1] }), tolerance: EXACT },
    { name: 'sliced bool [5,9] (1,0)', inputs: [{ shape: [5, 9], dtype: 'bool', values: 'bool', view: 'sliced' }], params: () => ({ perm: [1, 0] }), tolerance: EXACT },
  ],
  slice: [
    { name: '[33,7] rows 3..30, cols 1..6', inputs: [{ shape: [33, 7], dtype: f32, values: 'normal' }], params: () => ({ starts: [3, 1], ends: [30, 6] }), tolerance: EXACT },
    { name: 'permuted int32 [7,33]', inputs: [{ shape: [7, 33], dtype: 'int32', values: 'int', view: 'permuted' }], params: () => ({ starts: [2, 5], ends: [7, 6] }), tolerance: EXACT },
  ],
  pad: [
    { name: '[7,33] (1,2)x(0,3)', inputs: [{ shape: [7, 33], dtype: f32, values: 'normal' }], params: () => ({ before: [1, 0], after: [2, 3] }), tolerance: EXACT },
    { name: 'permuted int32 [5,3,2]', inputs: [{ shape: [5, 3, 2], dtype: 'int32', values: 'int', view: 'permuted' }], params: () => ({ before: [0, 2, 1], after: [1, 0, 1] }), tolerance: EXACT },
    { name: 'broadcast bool [1023]', inputs: [{ shape: [1023], dtype: 'bool', values: 'bool', view: 'broadcast' }], params: () => ({ before: [1], after: [0] }), tolerance: EXACT },
  ],
  concat: [
    {
      name: 'float32 axis 1: [7,1] [7,33] permuted, [7,2] sliced',
      inputs: [{ shape: [7, 1], dtype: f32, values: 'normal' }, { shape: [7, 33], dtype: f32, values: 'normal', view: 'permuted' }, { shape: [7, 2], dtype: f32, values: 'normal', view: 'sliced' }],
      params: () => ({ axis: 1 }),
      tolerance: EXACT,
    },
    {
      name: 'int32 axis 0: [257] [1] [7]',
      inputs: [{ shape: [257], dtype: 'int32', values: 'int' }, { shape: [1], dtype: 'int32', values: 'int' }, { shape: [7], dtype: 'int32', values: 'int', view: 'broadcast' }],
      params: () => ({ axis: 0 }),
      tolerance: EXACT,
    },
    {
      name: 'bool axis 0: [2,3] [5,3]',
      inputs: [{ shape: [2, 3], dtype: 'bool', values: 'bool' }, { shape: [5, 3], dtype: 'bool', values: 'bool' }],
      params: () => ({ axis: 0 }),
      tolerance: EXACT,
    },
  ],
  gather: [
    {
      name: '[33,7] axis 0, 257 indices',
      inputs: [{ shape: [33, 7], dtype: f32, values: 'normal' }, { shape: [257], dtype: 'int32', values: { indices: 33 } }],
      params: () => ({ axis: 0 }),
      tolerance: EXACT,
    },
    {
      name: 'permuted int32 [5,33,3] axis 1, sliced indices',
      inputs: [{ shape: [5, 33, 3], dtype: 'int32', values: 'int', view: 'permuted' }, { shape: [7], dtype: 'int32', values: { indices: 33 }, view: 'sliced' }],
      params: () => ({ axis: 1 }),
      tolerance: EXACT,
    },
  ],
  scatterAdd: [
    {
      name: '[257,7] axis 0 into 33 rows',
      inputs: [{ shape: [257, 7], dtype: f32, values: 'normal' }, { shape: [257], dtype: 'int32', values: { indices: 33 } }],
      params: () => ({ axis: 0, size: 33 }),
      tolerance: EXACT,
    },
    {
      name: 'permuted int32 [3,7,2] axis 1 into 5',
      inputs: [{ shape: [3, 7, 2], dtype: 'int32', values: 'int', view: 'permuted' }, { shape: [7], dtype: 'int32', values: { indices: 5 } }],
      params: () => ({ axis: 1, size: 5 }),
      tolerance: EXACT,
    },
    {
      // Indices with a host copy take the bucket kernel: 40,000 into 2 rows makes buckets of
      // ~20,000, longer than one launch's 16,384 positions, so two launches continue each sum.
      name: '[40000,2] axis 0 into 2 rows, from the host: buckets over two launches',
      inputs: [{ shape: [40000, 2], dtype: f32, values: 'normal' }, { shape: [40000], dtype: 'int32', values: { indices: 2 } }],
      params: () => ({ axis: 0, size: 2 }),
      tolerance: EXACT,
    },
    {
      // More indices than llvmpipe runs loop iterations in one invocation (65,535): several launches.
      name: '[70000,3] axis 0 into 5 rows',
      inputs: [{ shape: [70000, 3], dtype: f32, values: 'normal' }, { shape: [70000], dtype: 'int32', values: { indices: 5 } }],
      params: () => ({ axis: 0, size: 5 }),
      tolerance: EXACT,
    },
  ],
  matmul: [
    { name: '[7,33]x[33,1]', inputs: [{ shape: [7, 33], dtype: f32, values: 'normal' }, { shape: [33, 1], dtype: f32, values: 'normal' }], params: noParams, tolerance: matmulTolerance },
    {
      name: 'permuted [33,7] x sliced [7,257]',
      inputs: [{ shape: [33, 7], dtype: f32, values: 'normal', view: 'permuted' }, { shape: [7, 257], dtype: f32, values: 'normal', view: 'sliced' }],
      params: noParams,
      tolerance: matmulTolerance,
    },
    {
      name: 'batched [3,8,12] x broadcast [3,12,16]',
      inputs: [{ shape: [3, 8, 12], dtype: f32, values: 'normal' }, { shape: [3, 12, 16], dtype: f32, values: 'normal', view: 'broadcast' }],
      params: noParams,
      tolerance: matmulTolerance,
    },
  ],
  cast: (
    [
      ['float32', 'int32', 'normal'], ['float32', 'bool', 'wide'], ['int32', 'float32', 'int'], ['int32', 'bool', 'int'],
      ['bool', 'float32', 'bool'], ['bool', 'int32', 'bool'], ['float32', 'float32', 'normal'],
    ] as const
  ).flatMap(([from, to, values]): ParityCase[] => [
    { name: `${from} to ${to} [1023]`, inputs: [{ shape: [1023], dtype: from, values }], params: () => ({ dtype: to }), tolerance: EXACT },
    { name: `${from} to ${to} [7,33] permuted`, inputs: [{ shape: [7, 33], dtype: from, values, view: 'permuted' }], params: () => ({ dtype: to }), tolerance: EXACT },
  ]),
  random: ([1, 7, 1023, 4097] as const).map(
    (n): ParityCase => ({
      name: `uniform [${n}] (bit-identical)`,
      inputs: [],
      params: (device) => ({ key: randomKey(hashSeed('random', n)), distribution: 'uniform', shape: [n], dtype: f32, device }),
      tolerance: EXACT,
    }),
  ),
  full: (['float32', 'int32', 'bool'] as const).flatMap((dtype) =>
    ([[], [1023], [7, 33]] as const).map(
      (shape): ParityCase => ({
        name: `${dtype} ${JSON.stringify(shape)}`,
        inputs: [],
        params: (device) => ({ value: dtype === 'float32' ? -2.75 : 1, shape: [...shape], dtype, device }),
        tolerance: EXACT,
      }),
    ),
  ),
  stopGradient: (['float32', 'int32', 'bool'] as const).flatMap((dtype): ParityCase[] => [
    { name: `${dtype} [1023]`, inputs: [{ shape: [1023], dtype, values: dtype === 'float32' ? 'wide' : dtype === 'int32' ? 'int' : 'bool' }], params: () => ({}), tolerance: EXACT },
    { name: `${dtype} [7,33] permuted`, inputs: [{ shape: [7, 33], dtype, values: dtype === 'float32' ? 'wide' : dtype === 'int32' ? 'int' : 'bool', view: 'permuted' }], params: () => ({}), tolerance: EXACT },
  ]),
  // Defined primitives bring their own kernels; customPrimitive.test.ts checks them against their CPU implementations.
  custom: [],
  };
}

/**
 * Runs one case: the same fresh inputs on the CPU reference and on `gpu`, the CPU through `apply`,
 * the GPU through `run` (eager `apply`, or a compiled program), then compares every element.
 */
export async function checkParity(prim: Primitive, c: ParityCase, gpu: string, run: (inputs: Tensor[], params: unknown) => Tensor, what: string): Promise<void> {
  const rnd = hostRandom(hashSeed(what, prim, c.name));
  const built = c.inputs.map((spec) => makeInput(spec, gpu, rnd));
  const cpuInputs = built.map((b) => b.cpu);
  const cpuOut = apply(prim, cpuInputs, c.params('cpu') as never);
  const gpuOut = run(built.map((b) => b.gpu), c.params(gpu));
  expect(gpuOut.device).toBe(gpu);
  expect(gpuOut.shape).toEqual(cpuOut.shape);
  expect(gpuOut.dtype).toBe(cpuOut.dtype);
  const reference = cpuOut.dataSync();
  const actual = await gpuOut.data();
  const ctx: Context = { inputs: cpuInputs.map((t) => t.dataSync()), cpuInputs, reference, params: c.params('cpu'), outShape: cpuOut.shape };
  expect(firstMismatch(reference, actual, c.tolerance(ctx)), `${prim} ${c.name} ${what} (seed ${RUN_SEED})`).toBeNull();
  for (const t of [...built.flatMap((b) => [b.cpu, b.gpu]), cpuOut, gpuOut]) t.dispose();
}
