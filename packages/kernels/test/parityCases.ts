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
// - matmul: each output sums K products in float32: ≤ K·u·Σ|a||b| (the CPU sums in float64) + 1 ULP.
// - random: uniform bits identical; normals see random.test.ts.

import { type DType, type Primitive, type Tensor, apply, randomKey, sizeOf, tidy } from '@scorch/tensor';
import { expect } from 'vitest';
import { type ElementTolerance, type InputSpec, FLUSH_FLOOR, RUN_SEED, exact, firstMismatch, hashSeed, hostRandom, makeInput, ulp, ulps } from './helpers.js';

export interface Context {
  /** Inputs as contiguous host arrays (CPU copies), for per-element tolerances. */
  inputs: ArrayLike<number>[];
  cpuInputs: Tensor[];
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
  const ctx: Context = { inputs: cpuInputs.map((t) => t.dataSync()), cpuInputs, params: c.params('cpu'), outShape: cpuOut.shape };
  expect(firstMismatch(reference, actual, c.tolerance(ctx)), `${prim} ${c.name} ${what} (seed ${RUN_SEED})`).toBeNull();
  for (const t of [...built.flatMap((b) => [b.cpu, b.gpu]), cpuOut, gpuOut]) t.dispose();
}
