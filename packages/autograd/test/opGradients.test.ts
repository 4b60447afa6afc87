// Every primitive and every composite tensor op passes checkGrads to order 2 in both modes
// (forward: JVP vs central differences; reverse: VJP vs JVP), in float64 on fresh random inputs.
// One table row per case: what is differentiated, the argument shapes, and the domain the
// arguments are drawn from. A coverage test proves that the rows together exercise the jvp and
// vjp rule of every differentiable primitive (the primitives of the programs checkGrads
// differentiates: f and its first-order maps), so a new primitive without a row fails here (cast
// is checked on exact values instead: a float32 round trip defeats finite differences). Further
// down: checkGrads' own sanity, derivatives at kinks and ties, and softplus at large |x|.
//
// Tolerances: checkGrads' defaults (rtol 1e-5, atol 1e-6, ε = 1e-6; see checkGrads.ts). With
// ε = 1e-6 the central difference has truncation error ε²|f'''|/6 and rounding error about
// u·|f|/ε (u = 1.1e-16). The order-2 check differentiates x, v ↦ f'(x)v, so derivatives up to
// the fourth enter; the domains below keep |f| ≲ 1e2 and those derivatives ≲ 1e4 (the worst is
// x^−1.5 at x = 0.5: 59·2^5.5 ≈ 2.7e3), so both errors are ≲ 1e-8, three orders of magnitude
// under the tolerance, while a wrong rule is off by O(1).

import { describe, expect, it } from 'vitest';
import {
  type Primitive, type Shape, PRIMITIVES, Tensor, apply, argmax, argmin, clamp, concat, cos, cumprod, cumsum, definePrimitive,
  flip, floor, gelu, isArgReduce, isCompare, isSource, less, logSoftmax, memory, mul, narrow, pad, rand, randn, randomKey, sin,
  softmax, split, stack, tensor, tidy, tile, where,
} from '@scorch/tensor';
import { type TensorFn, checkGrads, grad, jvp, makeProgram, vjp } from '@scorch/autograd';

/**
 * Where an argument's values come from:
 * - real: standard normal;
 * - positive: uniform on [0.5, 2) (log, sqrt, pow bases, reciprocals stay well conditioned);
 * - awayFromZero: ±(0.25 + |z|), so kinks at 0 (relu, abs, elu) lie ≥ 0.25 away, far beyond
 *   the ε·|direction| ≈ 1e-5 that finite differences and nested perturbations move an input.
 * - offGrid: k + 0.2 + 0.1·u (k an integer, u uniform): ≥ 0.2 from every integer and every
 *   half-integer, where floor, ceil, round and clamp's bounds (at integers or halves) jump.
 */
type Domain = 'real' | 'positive' | 'awayFromZero' | 'offGrid';

interface GradCase {
  name: string;
  fn: TensorFn;
  shapes: Shape[];
  /** One domain for all arguments, or one per argument. Default 'real'. */
  domain?: Domain | Domain[];
}

function draw(shape: Shape, domain: Domain, seed: number): Tensor {
  const key = randomKey(seed);
  switch (domain) {
    case 'real':
      return randn(shape, { dtype: 'float64', key });
    case 'positive':
      return rand(shape, { dtype: 'float64', key }).mul(1.5).add(0.5);
    case 'awayFromZero': {
      const z = randn(shape, { dtype: 'float64', key });
      return where(less(z, 0), z.sub(0.25), z.add(0.25));
    }
    case 'offGrid':
      return floor(randn(shape, { dtype: 'float64', key }).mul(2)).add(rand(shape, { dtype: 'float64', key: randomKey(seed + 7919) }).mul(0.1).add(0.2));
  }
}

// A fixed condition for `where`, independent of the differentiated arguments.
const mask3x4 = tensor([[true, false, true, false], [false, false, true, true], [true, true, false, true]]);
const maskRow4 = tensor([true, false, false, true]);
const repeatedIndices = tensor([2, 0, 2, 1, 2], { dtype: 'int32' });
// Zeros at the start, in the middle (twice) and at the end of rows of 6.
const zeroMask = tensor([[0, 1, 1, 0, 1, 1], [1, 1, 0, 0, 1, 0]], { dtype: 'float64' });

const elementwiseUnary: GradCase[] = [
  { name: 'neg', fn: (x) => x.neg(), shapes: [[3, 4]] },
  { name: 'exp', fn: (x) => x.exp(), shapes: [[3, 4]] },
  { name: 'log', fn: (x) => x.log(), shapes: [[3, 4]], domain: 'positive' },
  { name: 'log1p', fn: (x) => x.log1p(), shapes: [[3, 4]], domain: 'positive' },
  { name: 'expm1', fn: (x) => x.expm1(), shapes: [[3, 4]] },
  { name: 'sin', fn: (x) => x.sin(), shapes: [[3, 4]] },
  { name: 'cos', fn: (x) => x.cos(), shapes: [[3, 4]] },
  { name: 'tanh', fn: (x) => x.tanh(), shapes: [[3, 4]] },
  { name: 'sigmoid', fn: (x) => x.sigmoid(), shapes: [[3, 4]] },
  { name: 'softplus', fn: (x) => x.softplus(), shapes: [[3, 4]] },
  { name: 'softplus at ±30 (large |x|)', fn: (x) => x.mul(30).softplus(), shapes: [[2, 3]], domain: 'awayFromZero' },
  { name: 'silu', fn: (x) => x.silu(), shapes: [[3, 4]] },
  { name: 'relu', fn: (x) => x.relu(), shapes: [[3, 4]], domain: 'awayFromZero' },
  { name: 'elu', fn: (x) => x.elu(), shapes: [[3, 4]], domain: 'awayFromZero' },
  { name: 'elu alpha 0.5', fn: (x) => x.elu(0.5), shapes: [[3, 4]], domain: 'awayFromZero' },
  { name: 'sqrt', fn: (x) => x.sqrt(), shapes: [[3, 4]], domain: 'positive' },
  { name: 'rsqrt', fn: (x) => x.rsqrt(), shapes: [[3, 4]], domain: 'positive' },
  { name: 'abs', fn: (x) => x.abs(), shapes: [[3, 4]], domain: 'awayFromZero' },
  { name: 'square', fn: (x) => x.square(), shapes: [[3, 4]] },
  { name: 'reciprocal', fn: (x) => x.reciprocal(), shapes: [[3, 4]], domain: 'positive' },
  { name: 'cast float64 → float64 (no-op)', fn: (x) => x.cast('float64').mul(x), shapes: [[3]] },
  // Piecewise constant: zero derivative, so each is multiplied by a smooth factor to be seen.
  { name: 'floor (times sin x)', fn: (x) => x.floor().mul(x.sin()), shapes: [[3, 4]], domain: 'offGrid' },
  { name: 'ceil (times sin x)', fn: (x) => x.ceil().mul(x.sin()), shapes: [[3, 4]], domain: 'offGrid' },
  { name: 'round (times sin x)', fn: (x) => x.round().mul(x.sin()), shapes: [[3, 4]], domain: 'offGrid' },
  { name: 'sign (times exp x)', fn: (x) => x.sign().mul(x.exp()), shapes: [[3, 4]], domain: 'awayFromZero' },
  { name: 'erf', fn: (x) => x.erf(), shapes: [[3, 4]] },
  { name: 'gelu (exact)', fn: (x) => gelu(x), shapes: [[3, 4]] },
  { name: "gelu approximate 'tanh'", fn: (x) => gelu(x, { approximate: 'tanh' }), shapes: [[3, 4]] },
  { name: 'clamp with number bounds', fn: (x) => clamp(x, -1.5, 1.5).mul(x), shapes: [[3, 4]], domain: 'offGrid' },
  { name: 'clamp min only', fn: (x) => clamp(x, 0.5).square(), shapes: [[3, 4]], domain: 'offGrid' },
  // Bounds at k − 0.3…−0.2 and k + 0.7…0.8: ≥ 0.4 from every x, so no tie.
  { name: 'clamp with broadcast tensor bounds', fn: (x, lo, hi) => clamp(x, lo.sub(0.5), hi.add(0.5)), shapes: [[3, 4], [4], [3, 1]], domain: 'offGrid' },
];

const elementwiseBinary: GradCase[] = [
  { name: 'add', fn: (a, b) => a.add(b), shapes: [[3, 4], [3, 4]] },
  { name: 'add broadcast [3,1] + [1,4]', fn: (a, b) => a.add(b), shapes: [[3, 1], [1, 4]] },
  { name: 'add scalar tensor + [3]', fn: (a, b) => a.add(b), shapes: [[], [3]] },
  { name: 'add number operand', fn: (a) => a.add(1.5), shapes: [[3]] },
  { name: 'sub', fn: (a, b) => a.sub(b), shapes: [[3, 4], [3, 4]] },
  { name: 'sub broadcast [2,3,4] − [3,1]', fn: (a, b) => a.sub(b), shapes: [[2, 3, 4], [3, 1]] },
  { name: 'mul', fn: (a, b) => a.mul(b), shapes: [[3, 4], [3, 4]] },
  { name: 'mul broadcast [2,3,4] * [4]', fn: (a, b) => a.mul(b), shapes: [[2, 3, 4], [4]] },
  { name: 'mul [3] * scalar tensor', fn: (a, b) => a.mul(b), shapes: [[3], []] },
  { name: 'mul by itself (x·x)', fn: (a) => a.mul(a), shapes: [[3]] },
  { name: 'div', fn: (a, b) => a.div(b), shapes: [[3, 4], [3, 4]], domain: ['real', 'positive'] },
  { name: 'div broadcast [3,1] / [1,4]', fn: (a, b) => a.div(b), shapes: [[3, 1], [1, 4]], domain: ['real', 'positive'] },
  { name: 'div number by tensor', fn: (b) => tensor(2, { dtype: 'float64' }).div(b), shapes: [[3]], domain: 'positive' },
  { name: 'pow number exponent 2 (computed as a·a)', fn: (a) => a.pow(2), shapes: [[3, 4]], domain: 'real' },
  { name: 'pow number exponent 3', fn: (a) => a.pow(3), shapes: [[3, 4]], domain: 'positive' },
  { name: 'pow number exponent −1.5', fn: (a) => a.pow(-1.5), shapes: [[3, 4]], domain: 'positive' },
  { name: 'pow tensor exponent', fn: (a, b) => a.pow(b), shapes: [[3, 4], [3, 4]], domain: ['positive', 'real'] },
  { name: 'pow broadcast base [3,1] ^ exponent [4]', fn: (a, b) => a.pow(b), shapes: [[3, 1], [4]], domain: ['positive', 'real'] },
  { name: 'maximum', fn: (a, b) => a.maximum(b), shapes: [[3, 4], [3, 4]] },
  { name: 'maximum broadcast [3,1] vs [4]', fn: (a, b) => a.maximum(b), shapes: [[3, 1], [4]] },
  { name: 'minimum', fn: (a, b) => a.minimum(b), shapes: [[3, 4], [3, 4]] },
  { name: 'minimum with number', fn: (a) => a.minimum(0), shapes: [[3, 4]], domain: 'awayFromZero' },
  { name: 'where', fn: (a, b) => where(mask3x4, a, b), shapes: [[3, 4], [3, 4]] },
  { name: 'where broadcast mask [4], a [3,4], b [3,1]', fn: (a, b) => where(maskRow4, a, b), shapes: [[3, 4], [3, 1]] },
  { name: 'where with a number branch', fn: (a) => where(mask3x4, a.exp(), 0), shapes: [[3, 4]] },
];

// [2,3,4] inputs reduced over: all axes, one axis, a negative axis, two axes, with keepdims.
const reductionAxes: { label: string; axes: number | number[] | undefined; keepdims: boolean }[] = [
  { label: 'all axes', axes: undefined, keepdims: false },
  { label: 'axis 1', axes: 1, keepdims: false },
  { label: 'axis −1 keepdims', axes: -1, keepdims: true },
  { label: 'axes [0,2]', axes: [0, 2], keepdims: false },
  { label: 'axes [0,1] keepdims', axes: [0, 1], keepdims: true },
  { label: 'all axes keepdims', axes: [0, 1, 2], keepdims: true },
];

const reductions: GradCase[] = reductionAxes.flatMap(({ label, axes, keepdims }) => [
  { name: `sum over ${label}`, fn: (x: Tensor) => x.sum(axes, keepdims), shapes: [[2, 3, 4]] },
  { name: `mean over ${label}`, fn: (x: Tensor) => x.mean(axes, keepdims), shapes: [[2, 3, 4]] },
  { name: `max over ${label}`, fn: (x: Tensor) => x.max(axes, keepdims), shapes: [[2, 3, 4]] },
  { name: `min over ${label}`, fn: (x: Tensor) => x.min(axes, keepdims), shapes: [[2, 3, 4]] },
  { name: `logsumexp over ${label}`, fn: (x: Tensor) => x.logsumexp(axes, keepdims), shapes: [[2, 3, 4]] },
  { name: `variance over ${label}`, fn: (x: Tensor) => x.variance(axes, { keepdims }), shapes: [[2, 3, 4]] },
]);
reductions.push(
  { name: 'variance with Bessel correction', fn: (x) => x.variance(1, { correction: 1 }), shapes: [[3, 5]] },
  { name: 'softmax last axis', fn: (x) => softmax(x), shapes: [[3, 5]] },
  { name: 'softmax axis 0', fn: (x) => softmax(x, 0), shapes: [[3, 5]] },
  { name: 'logSoftmax last axis', fn: (x) => logSoftmax(x), shapes: [[3, 5]] },
  { name: 'logSoftmax axis 1 of rank 3', fn: (x) => logSoftmax(x, 1), shapes: [[2, 3, 4]] },
  // argmax/argmin give int32 indices: no derivative through them, x's own factor carries it.
  { name: 'x times its argmax (int32, no gradient)', fn: (x) => x.mul(argmax(x, 1, { keepdims: true }).cast('float64')), shapes: [[3, 4]] },
  { name: 'x times its argmin (int32, no gradient)', fn: (x) => x.mul(argmin(x, 0).cast('float64')), shapes: [[3, 4]] },
  { name: 'cumsum axis 1', fn: (x) => cumsum(x, 1).mul(x), shapes: [[3, 4]] },
  { name: 'cumsum axis 0 reverse', fn: (x) => cumsum(x, 0, { reverse: true }).square(), shapes: [[3, 4]] },
  { name: 'cumprod axis 1', fn: (x) => cumprod(x, 1), shapes: [[3, 5]] },
  { name: 'cumprod axis 0 reverse, length 7 (three scan levels)', fn: (x) => cumprod(x, 0, { reverse: true }), shapes: [[7, 2]] },
  // Exact zeros inside the scan (the mask), where a formula dividing by x would give 0/0.
  { name: 'cumprod with zeros in the input', fn: (x) => cumprod(x.mul(zeroMask), 1), shapes: [[2, 6]] },
);

const linearAlgebra: GradCase[] = [
  { name: 'matmul 2-D', fn: (a, b) => a.matmul(b), shapes: [[3, 4], [4, 2]] },
  { name: 'matmul batched', fn: (a, b) => a.matmul(b), shapes: [[2, 3, 4], [2, 4, 5]] },
  { name: 'matmul batched @ 2-D (folded batch)', fn: (a, b) => a.matmul(b), shapes: [[2, 3, 4], [4, 5]] },
  { name: 'matmul broadcast batch [2,1,3,4] @ [3,4,2]', fn: (a, b) => a.matmul(b), shapes: [[2, 1, 3, 4], [3, 4, 2]] },
  { name: 'matmul vector @ matrix', fn: (a, b) => a.matmul(b), shapes: [[4], [4, 3]] },
  { name: 'matmul matrix @ vector', fn: (a, b) => a.matmul(b), shapes: [[3, 4], [4]] },
  { name: 'matmul vector @ vector', fn: (a, b) => a.matmul(b), shapes: [[4], [4]] },
  { name: 'matmul vector @ batched', fn: (a, b) => a.matmul(b), shapes: [[4], [2, 4, 3]] },
];

const movement: GradCase[] = [
  { name: 'reshape', fn: (x) => x.reshape([4, 3]).mul(x.reshape([4, 3]).sin()), shapes: [[3, 4]] },
  { name: 'reshape with −1', fn: (x) => x.reshape([2, -1]), shapes: [[2, 3, 2]] },
  { name: 'flatten', fn: (x) => x.flatten(), shapes: [[2, 3]] },
  { name: 'transpose (last two axes)', fn: (x) => x.transpose(), shapes: [[2, 3, 4]] },
  { name: 'transpose of a matrix times itself', fn: (x) => x.transpose().matmul(x), shapes: [[3, 2]] },
  { name: 'permute', fn: (x) => x.permute([2, 0, 1]), shapes: [[2, 3, 4]] },
  { name: 'broadcastTo/expand rank-raising', fn: (x) => x.expand([2, 3, 4]), shapes: [[3, 1]] },
  { name: 'broadcastTo/expand same rank', fn: (x) => x.expand([3, 4]).mul(x.expand([3, 4])), shapes: [[1, 4]] },
  { name: 'slice', fn: (x) => x.slice([1, 0], [2, 3]), shapes: [[4, 5]] },
  { name: 'slice negative begin, size −1', fn: (x) => x.slice([-2, 1], [-1, -1]), shapes: [[4, 5]] },
  { name: 'narrow', fn: (x) => narrow(x, 1, 1, 2), shapes: [[3, 4]] },
  { name: 'pad', fn: (x) => pad(x, [[1, 2], [0, 1]]), shapes: [[2, 3]] },
  { name: 'pad then square (zeros carry no gradient)', fn: (x) => pad(x, [[1, 0], [2, 1]]).square(), shapes: [[2, 3]] },
  { name: 'concat axis 0', fn: (a, b, c) => concat([a, b, c], 0), shapes: [[1, 3], [2, 3], [3, 3]] },
  { name: 'concat axis 1 with one argument twice', fn: (a, b) => concat([a, b, a], 1), shapes: [[2, 2], [2, 3]] },
  { name: 'stack axis 0', fn: (a, b) => stack([a, b], 0), shapes: [[2, 3], [2, 3]] },
  { name: 'stack axis −1', fn: (a, b) => stack([a, b.exp()], -1), shapes: [[2, 3], [2, 3]] },
  { name: 'unsqueeze', fn: (x) => x.unsqueeze(1), shapes: [[2, 3]] },
  { name: 'squeeze all size-1 axes', fn: (x) => x.squeeze(), shapes: [[2, 1, 3, 1]] },
  { name: 'squeeze one axis', fn: (x) => x.squeeze(3), shapes: [[2, 1, 3, 1]] },
  { name: 'indexSelect with repeated indices', fn: (x) => x.indexSelect(0, [2, 0, 2, 1, 2]), shapes: [[3, 4]] },
  { name: 'indexSelect axis 1, int32 tensor indices', fn: (x) => x.indexSelect(1, repeatedIndices), shapes: [[2, 3]] },
  { name: 'split into sizes, pieces recombined', fn: (x) => { const [a, b, c] = split(x, [1, 3, 1], 1); return concat([c!.mul(a!), b!.sin()], 1); }, shapes: [[2, 5]] },
  { name: 'split into equal pieces', fn: (x) => { const [a, b] = split(x, 2, 0); return a!.mul(b!.exp()); }, shapes: [[4, 3]] },
  { name: 'flip two axes', fn: (x) => flip(x, [0, 1]).mul(x), shapes: [[3, 4]] },
  { name: 'tile with more reps than axes', fn: (x) => tile(x, [2, 1, 3]).square(), shapes: [[2, 3]] },
  // scatterAdd has no public op (it is gather's transpose); call the primitive itself.
  { name: 'scatterAdd primitive (repeated indices)', fn: (u) => apply('scatterAdd', [u, repeatedIndices], { axis: 0, size: 4 }), shapes: [[5, 2]] },
];

const compositions: GradCase[] = [
  { name: 'exp·sin, two uses of one input', fn: (x) => x.exp().mul(x.sin()), shapes: [[5]] },
  { name: 'tanh MLP layer', fn: (w, x) => w.matmul(x).tanh(), shapes: [[3, 4], [4, 2]] },
  { name: 'pow of a softplus', fn: (x, y) => x.softplus().pow(y.sigmoid()), shapes: [[4], [4]] },
];

const table: { group: string; rows: GradCase[] }[] = [
  { group: 'elementwise unary', rows: elementwiseUnary },
  { group: 'elementwise binary (with broadcasting)', rows: elementwiseBinary },
  { group: 'reductions and normalisers', rows: reductions },
  { group: 'matmul', rows: linearAlgebra },
  { group: 'movement', rows: movement },
  { group: 'compositions', rows: compositions },
];

/**
 * The primitives whose jvp and vjp rules checkGrads to order 2 reaches for f at `args`: those of
 * f's program and of its first-order maps (x, v ↦ Jv and x, u ↦ Jᵀu), which order 2
 * differentiates again. Traced with makeProgram, so no rule table is touched.
 */
function rulesReached(f: TensorFn, args: readonly Tensor[]): Set<Primitive> {
  const n = args.length;
  const out = f(...args);
  const forward = (...xs: Tensor[]) => jvp(f, xs.slice(0, n), xs.slice(n))[1];
  const reverse = (...xs: Tensor[]) => vjp(f, ...xs.slice(0, n))[1](xs[n]!);
  const programs = [
    makeProgram(f)(...args),
    makeProgram(forward)(...args, ...args),
    makeProgram(reverse)(...args, out.mul(0).add(1)),
  ];
  return new Set(programs.flatMap((p) => p.equations.map((eq) => eq.prim)));
}

// Which primitives' rules the table reaches, to prove coverage at the end.
const rulesSeen = new Set<Primitive>();

describe('checkGrads to order 2, forward and reverse, float64', () => {
  let seed = 1000;
  for (const { group, rows } of table) {
    describe(group, () => {
      for (const row of rows) {
        const firstSeed = seed;
        seed += row.shapes.length;
        it(row.name, async () => {
          const args = row.shapes.map((shape, i) => {
            const domain = Array.isArray(row.domain) ? row.domain[i]! : row.domain ?? 'real';
            return draw(shape, domain, firstSeed + i);
          });
          await checkGrads(row.fn, args, { order: 2, modes: ['fwd', 'rev'] });
          for (const p of rulesReached(row.fn, args)) rulesSeen.add(p);
        });
      }
    });
  }

  // A float32 round trip cannot pass central differences at float64 tolerances (its rounding,
  // ~6e-8 relative, divided by 2ε is O(0.1)), so the cast rules are checked on exact values:
  // cast is linear, its tangent and cotangent are cast the same way, so a value that float32
  // cannot hold (1 + 2⁻⁴⁰) must come back rounded to 1, and dyadic inputs keep every product exact.
  it('cast float64 → float32 → float64 casts tangents and cotangents (exact values)', async () => {
    const x = tensor([0.5, -1.25, 3], { dtype: 'float64' });
    const unrepresentable = tensor([1 + 2 ** -40, 1 + 2 ** -40, 1 + 2 ** -40], { dtype: 'float64' });
    const roundTrip = (t: Tensor) => t.cast('float32').cast('float64');
    const [value, tangent] = jvp(roundTrip, [x], [unrepresentable]);
    expect(await value.toArray()).toEqual([0.5, -1.25, 3]);
    expect(await tangent.toArray()).toEqual([1, 1, 1]);
    const [, pullback] = vjp(roundTrip, x);
    expect(await pullback(unrepresentable)[0]!.toArray()).toEqual([1, 1, 1]);
    // Second order through the casts: Σ roundTrip(x)² has gradient 2x and Hessian diagonal 2.
    const sumOfSquares = (t: Tensor) => roundTrip(t).square().sum();
    expect(await (grad(sumOfSquares)(x) as Tensor).toArray()).toEqual([1, -2.5, 6]);
    expect(await (grad((t: Tensor) => (grad(sumOfSquares)(t) as Tensor).sum())(x) as Tensor).toArray()).toEqual([2, 2, 2]);
    const [, hessianDiagonal] = jvp((t: Tensor) => grad(sumOfSquares)(t) as Tensor, [x], [tensor([1, 1, 1], { dtype: 'float64' })]);
    expect(await hessianDiagonal.toArray()).toEqual([2, 2, 2]);
  });

  it('the rows reach the jvp and vjp rule of every differentiable primitive', () => {
    // Sources (random, full) take no inputs, so there is nothing to differentiate; comparisons
    // and arg-reductions give bool and int32 values, which the transformations never track.
    const differentiable = PRIMITIVES.filter((p) => !isCompare(p) && !isArgReduce(p) && !isSource(p));
    expect(differentiable.filter((p) => !rulesSeen.has(p))).toEqual([]);
  });
});

describe('checkGrads itself', () => {
  const x = () => randn([4], { dtype: 'float64', key: randomKey(7) });
  // Sine defined again as a primitive of its own with a wrong rule: the built-in rule tables
  // are frozen, and checkGrads must catch a defined primitive's mistakes as it does a built-in's.
  const sineWith = (name: string, rules: { jvp?: (p: readonly Tensor[], t: readonly (Tensor | null)[]) => Tensor | null; vjp?: (ct: Tensor, p: readonly Tensor[]) => (Tensor | null)[] }) =>
    definePrimitive({
      name, kind: 'elementwise', inputs: ['x'], cpu: Math.sin, wgsl: { expression: 'sin(x)' },
      jvp: rules.jvp ?? (([x], [t]) => (t ? mul(t, cos(x!)) : null)), // d sin x = cos x dx
      vjp: rules.vjp ?? ((ct, [x]) => [mul(ct, cos(x!))]),
    });
  const sine = (t: Tensor) => sin(t);

  it('passes a right rule of a defined primitive', async () => {
    const right = sineWith('sineRight', {});
    await checkGrads((t) => right(t), [x()], { order: 2, modes: ['fwd', 'rev'] });
    await checkGrads(sine, [x()], { order: 2, modes: ['fwd', 'rev'] });
  });

  it('rejects a wrong jvp rule (forward mode)', async () => {
    const wrong = sineWith('sineWrongJvp', { jvp: (p, t) => t[0]!.mul(p[0]!.cos()).neg() });
    await expect(checkGrads((t) => wrong(t), [x()], { order: 1, modes: ['fwd'] })).rejects.toThrow(/JVP vs central difference differs/);
  });

  it('rejects a wrong vjp rule (reverse mode)', async () => {
    const wrong = sineWith('sineWrongVjp', { vjp: (ct, p) => [ct.mul(p[0]!.cos()).neg()] });
    await expect(checkGrads((t) => wrong(t), [x()], { order: 1, modes: ['rev'] })).rejects.toThrow(/⟨VJP, v⟩ vs ⟨u, JVP⟩ differs/);
  });

  it('leaves the caller\'s tensors alive when f returns an argument or a captured constant', async () => {
    // Regression: checkGrads disposed f's output after reading its shape, which destroyed the
    // argument itself for x ↦ x (and the tangent argument of the order-2 map of x ↦ x + 1).
    const a = x();
    const constant = tensor([5], { dtype: 'float64' });
    await checkGrads((t) => t, [a]);
    await checkGrads((t) => t.add(1), [a]);
    await checkGrads((_t) => constant, [a]);
    expect(a.isDisposed).toBe(false);
    expect(constant.isDisposed).toBe(false);
  });

  it('order 2 rejects a rule that is right to first order only (its derivative is cut)', async () => {
    // cos(x) detached: the first derivative is right, the second misses −sin(x).
    const firstOrderOnly = sineWith('sineFirstOrderOnly', { vjp: (ct, p) => [ct.mul(p[0]!.cos().detach())] });
    await checkGrads((t) => firstOrderOnly(t), [x()], { order: 1 });
    await expect(checkGrads((t) => firstOrderOnly(t), [x()], { order: 2 })).rejects.toThrow(/\(vjp\)/);
  });
});

describe('derivatives at kinks and ties take the documented values (exact)', () => {
  const at = (values: number[] | number[][]) => tensor(values, { dtype: 'float64' });
  const gradientOf = async (f: (t: Tensor) => Tensor, x: Tensor) => (grad((t: Tensor) => f(t).sum())(x) as Tensor).toArray();

  // elu'(0) = α is the left derivative (as PyTorch); for α = 1 elu is C¹ and that is the derivative.
  it('relu\'(0) = 0, abs\'(0) = 1 (the x ≥ 0 branch), softplus\'(0) = ½, elu\'(0) = α', async () => {
    const x = at([-1, 0, 2]);
    expect(await gradientOf((t) => t.relu(), x)).toEqual([0, 0, 1]);
    expect(await gradientOf((t) => t.abs(), x)).toEqual([-1, 1, 1]);
    expect(await gradientOf((t) => t.softplus(), at([0]))).toEqual([0.5]);
    expect(await gradientOf((t) => t.elu(0.5), x)).toEqual([0.5 * Math.exp(-1), 0.5, 1]);
    expect(await gradientOf((t) => t.elu(), x)).toEqual([Math.exp(-1), 1, 1]);
    // The unused branch never overflows: elu(1000) = 1000 with derivative 1, not NaN.
    expect(await gradientOf((t) => t.elu(), at([1000]))).toEqual([1]);
  });

  it('expm1\'(x) = eˣ and elu\'(x) = αeˣ keep their relative accuracy for x ≪ 0 (as PyTorch\'s elu)', async () => {
    // As expm1(x) + 1 the derivative cancels: expm1(−30) + 1 is off by 1.7e-4 relative, and from
    // x ≈ −37 on, expm1(x) rounds to −1 and the derivative to 0. As eˣ it is one correctly rounded
    // exp (within an ulp or two of Math.exp): 4 ulps (4·2^-52 relative).
    const xs = [-30, -40, -700];
    const want = xs.map((v) => Math.exp(v));
    for (const f of [(t: Tensor) => t.expm1(), (t: Tensor) => t.elu(), (t: Tensor) => t.elu(2).mul(0.5)]) {
      const got = (await gradientOf(f, at(xs))) as number[];
      got.forEach((v, i) => expect(Math.abs(v - want[i]!), `at ${xs[i]}: ${v} vs ${want[i]}`).toBeLessThanOrEqual(4 * Number.EPSILON * want[i]!));
      const tangent = Array.from(jvp(f, [at(xs)], [at([1, 1, 1])])[1].dataSync());
      expect(tangent).toEqual(got);
    }
  });

  // Points (x, y): (0, 0), (0, 2), (2, 0), (0, ½), (0, 3). −0 is read as 0 (`+ 0`).
  const powX = at([0, 0, 2, 0, 0]);
  const powY = at([0, 2, 0, 0.5, 3]);
  const ones = at([1, 1, 1, 1, 1]);
  const values = async (t: Tensor) => ((await t.toArray()) as number[]).map((v) => v + 0);

  it('pow at a zero base: ∂xʸ/∂x = 0 at (0, 0) and ∂0ʸ/∂y = 0 for y ≥ 0 (as PyTorch and JAX), both modes', async () => {
    // ∂/∂x = y·x^(y−1): 0 at (0, 0) by convention, ∞ at (0, ½); ∂/∂y = xʸ log x: 0 where x = 0.
    const dx = [0, 0, 0, Infinity, 0];
    const dy = [0, 0, Math.LN2, 0, 0];
    const [gx, gy] = grad((a: Tensor, b: Tensor) => a.pow(b).sum(), { argnums: [0, 1] })(powX, powY) as Tensor[];
    expect(await values(gx!)).toEqual(dx);
    expect(await values(gy!)).toEqual(dy);
    expect(await values(jvp((a: Tensor) => a.pow(powY), [powX], [ones])[1])).toEqual(dx);
    expect(await values(jvp((b: Tensor) => powX.pow(b), [powY], [ones])[1])).toEqual(dy);
  });

  it('pow off the positive base: ∂/∂x = y·x^(y−1) at a negative base, ∂/∂y NaN there (log of a negative), not masked to 0', async () => {
    // (−2)², (−2)³, 0⁻¹, 0⁻², as PyTorch: only x = 0 with y ≥ 0 is masked; a mask taking every
    // x ≤ 0 returned 0 for d(−2)ʸ/dy, and no other test differentiated the exponent there.
    const x = at([-2, -2, 0, 0]);
    const y = at([2, 3, -1, -2]);
    const four = at([1, 1, 1, 1]);
    const dx = [-4, 12, -Infinity, -Infinity];
    const dy = [NaN, NaN, -Infinity, -Infinity];
    const [gx, gy] = grad((a: Tensor, b: Tensor) => a.pow(b).sum(), { argnums: [0, 1] })(x, y) as Tensor[];
    expect(await values(gx!)).toEqual(dx);
    expect(await values(gy!)).toEqual(dy);
    expect(await values(jvp((a: Tensor) => a.pow(y), [x], [four])[1])).toEqual(dx);
    expect(await values(jvp((b: Tensor) => x.pow(b), [y], [four])[1])).toEqual(dy);
  });

  it('pow at a zero base: second derivatives are finite where the convention makes pow flat, in every mode', async () => {
    // ∂²/∂x² = y(y−1)x^(y−2): 0 along y = 0 (xʸ = 1 there), 2 at (0, 2), −∞ at (0, ½) (a true
    // infinity), 0 at (0, 3). ∂²/∂y² = xʸ log² x: 0 wherever x = 0, y ≥ 0.
    const d2x = [0, 2, 0, -Infinity, 0];
    const d2y = [0, 0, Math.LN2 * Math.LN2, 0, 0];
    const gradX = (a: Tensor) => grad((t: Tensor) => t.pow(powY).sum())(a) as Tensor;
    const gradY = (b: Tensor) => grad((t: Tensor) => powX.pow(t).sum())(b) as Tensor;
    const tangentX = (a: Tensor) => jvp((t: Tensor) => t.pow(powY), [a], [ones])[1];
    const tangentY = (b: Tensor) => jvp((t: Tensor) => powX.pow(t), [b], [ones])[1];
    expect(await values(grad((a: Tensor) => gradX(a).sum())(powX) as Tensor)).toEqual(d2x);
    expect(await values(jvp(gradX, [powX], [ones])[1])).toEqual(d2x);
    expect(await values(jvp(tangentX, [powX], [ones])[1])).toEqual(d2x);
    expect(await values(grad((b: Tensor) => gradY(b).sum())(powY) as Tensor)).toEqual(d2y);
    expect(await values(jvp(gradY, [powY], [ones])[1])).toEqual(d2y);
    expect(await values(jvp(tangentY, [powY], [ones])[1])).toEqual(d2y);
    // Only (0, 0) is masked: at y = 0 with x ≠ 0, ∂²xʸ/∂x∂y = x^(y−1)(1 + y log x) = 1/x.
    const mixed = grad((b: Tensor) => (grad((t: Tensor) => t.pow(b).sum())(at([2, 0.5])) as Tensor).sum())(at([0, 0])) as Tensor;
    expect(await mixed.toArray()).toEqual([0.5, 2]);
  });

  it('pow to the exponent 0: ∂aᵇ/∂a = 0 at every a, a subnormal or NaN too (as PyTorch and JAX), both modes', async () => {
    // aᵇ = 1 for every a at b = 0; the formula b·aᵇ⁻¹ is 0·a⁻¹, which is 0·∞ = NaN where a⁻¹
    // overflows (|a| below 1/MAX_VALUE ≈ 5.6e-309) or a is NaN, as it is at a = 0.
    const a = at([5e-324, -5e-324, 1e-310, NaN, 0, 2, Infinity]);
    const zero = at([0, 0, 0, 0, 0, 0, 0]);
    const ones7 = at([1, 1, 1, 1, 1, 1, 1]);
    const want = [0, 0, 0, 0, 0, 0, 0];
    expect(await values(grad((t: Tensor) => t.pow(zero).sum())(a) as Tensor)).toEqual(want);
    expect(await values(jvp((t: Tensor) => t.pow(zero), [a], [ones7])[1])).toEqual(want);
    // ∂²a¹/∂a² = 1·0·a⁻¹: the inner pow has exponent 0, so it is 0 at subnormal a too.
    const first = (t: Tensor) => grad((u: Tensor) => u.pow(ones7).sum())(t) as Tensor;
    expect(await values(grad((t: Tensor) => first(t).sum())(at([5e-324, -5e-324, 1e-310, NaN, 0, 2, Infinity])) as Tensor)).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it('log and div divide by a subnormal instead of multiplying by its overflowed reciprocal (as PyTorch and JAX)', async () => {
    // 1/1e-310 overflows to ∞, but g/1e-310 is finite for small g and 0 for g = 0: a cotangent or
    // tangent of 1e-10 gives 1e300, not ∞; the branch a `where` does not take (g = 0) gives 0, not
    // 0·∞ = NaN, so the taken branch's gradient survives (3 at x = −5e-324 and −1e-310 here).
    const x = at([1e-310, 5e-324]);
    const g = at([1e-10, 0]);
    const want = [1e-10 / 1e-310, 0];
    expect(await values(vjp((t: Tensor) => t.log(), x)[1](g)[0]!)).toEqual(want);
    expect(await values(jvp((t: Tensor) => t.log(), [x], [g])[1])).toEqual(want);
    expect(await values(vjp((t: Tensor) => t.div(x), at([1, 1]))[1](g)[0]!)).toEqual(want);
    expect(await values(jvp((t: Tensor) => t.div(x), [at([1, 1])], [g])[1])).toEqual(want);
    const guarded = (t: Tensor) => where(less(0, t), t.log(), t.mul(3));
    expect(await gradientOf(guarded, at([-5e-324, -1e-310, 2]))).toEqual([3, 3, 0.5]);
  });

  it('maximum and minimum split a tie ½/½; max and min reductions share it among the k maxima', async () => {
    const [ga, gb] = grad((a: Tensor, b: Tensor) => a.maximum(b).sum(), { argnums: [0, 1] })(at([1, 2, 3]), at([1, 5, 0])) as Tensor[];
    expect(await ga!.toArray()).toEqual([0.5, 0, 1]);
    expect(await gb!.toArray()).toEqual([0.5, 1, 0]);
    const [ha, hb] = grad((a: Tensor, b: Tensor) => a.minimum(b).sum(), { argnums: [0, 1] })(at([1, 2, 3]), at([1, 5, 0])) as Tensor[];
    expect(await ha!.toArray()).toEqual([0.5, 1, 0]);
    expect(await hb!.toArray()).toEqual([0.5, 0, 1]);
    expect(await gradientOf((t) => t.max(), at([3, 1, 3, 3]))).toEqual([1 / 3, 0, 1 / 3, 1 / 3]);
    expect(await gradientOf((t) => t.min(1), at([[0, 0], [2, 1]]))).toEqual([[0.5, 0.5], [0, 1]]);
    // Forward mode agrees: the tangent of a tied max is the mean of the tied tangents.
    const [, tangent] = jvp((t: Tensor) => t.max(), [at([3, 1, 3])], [at([1, 100, 2])]);
    expect(await tangent.item()).toBe(1.5);
  });

  it('maximum and minimum at a NaN give both operands the whole cotangent, whichever is NaN (as PyTorch)', async () => {
    // Before, the second operand took it all: maximum(a, b) and maximum(b, a) differed, and
    // maximum(x, 0) at NaN had gradient 0 where relu has 1.
    for (const op of ['maximum', 'minimum'] as const) {
      const [ga, gb] = grad((a: Tensor, b: Tensor) => a[op](b).sum(), { argnums: [0, 1] })(at([Number.NaN, 1]), at([2, Number.NaN])) as Tensor[];
      expect(await ga!.toArray()).toEqual([1, 1]);
      expect(await gb!.toArray()).toEqual([1, 1]);
    }
    expect(await gradientOf((t) => t.maximum(0), at([Number.NaN]))).toEqual(await gradientOf((t) => t.relu(), at([Number.NaN])));
  });

  it('masked derivatives with infinite or NaN cotangents (as PyTorch): maximum and minimum send nothing to the operand not selected, even for an infinite cotangent', async () => {
    const f = (x: Tensor) => logSoftmax(x).mul(x.maximum(-5)).sum();
    const g = (x: Tensor) => logSoftmax(x).mul(clamp(x, -5)).sum();
    expect(await values(grad(f)(at([-Infinity, 0, 1])) as Tensor)).toEqual(await values(grad(g)(at([-Infinity, 0, 1])) as Tensor)); // [-5, …] in both
    const [, pb] = vjp((x: Tensor) => x.minimum(5), at([10, 0, 5]));
    expect(await values(pb(at([-Infinity, 1, 1]))[0]!)).toEqual([0, 1, 0.5]);
  });

  it('floor, ceil, round and sign have derivative 0 for infinite and NaN cotangents and tangents', async () => {
    for (const f of [(t: Tensor) => t.floor(), (t: Tensor) => t.ceil(), (t: Tensor) => t.round(), (t: Tensor) => t.sign()]) {
      const [, pb] = vjp(f, at([0.5, 1]));
      expect(await values(pb(at([Infinity, NaN]))[0]!)).toEqual([0, 0]);
      expect(await values(jvp(f, [at([0.5, 1])], [at([Infinity, NaN])])[1])).toEqual([0, 0]);
    }
  });

  it('pow: ∂aᵇ/∂a = 0 at b = 0 even for an infinite cotangent', async () => {
    const [, pb] = vjp((a: Tensor) => a.pow(at([0, 0])), at([0, 2]));
    expect(await values(pb(at([Infinity, -Infinity]))[0]!)).toEqual([0, 0]);
  });
});

describe('derivatives of the rounding ops, clamp and cumprod at their special points (exact)', () => {
  const at = (values: number[] | number[][]) => tensor(values, { dtype: 'float64' });
  const gradientOf = async (f: (t: Tensor) => Tensor, x: Tensor) => (grad((t: Tensor) => f(t).sum())(x) as Tensor).toArray();
  const tangentOf = async (f: (t: Tensor) => Tensor, x: Tensor) => jvp(f, [x], [tensor(x.shape.length ? Array(x.shape[0]).fill(1) : 1, { dtype: 'float64' })])[1].toArray();

  it('floor, ceil, round and sign have derivative 0 everywhere, at their jumps too (as PyTorch and JAX)', async () => {
    const x = at([-1, -0.5, 0, 0.5, 1, 2.5, 0.3]);
    for (const f of [(t: Tensor) => t.floor(), (t: Tensor) => t.ceil(), (t: Tensor) => t.round(), (t: Tensor) => t.sign()]) {
      expect(await gradientOf(f, x)).toEqual([0, 0, 0, 0, 0, 0, 0]);
      expect(await tangentOf(f, x)).toEqual([0, 0, 0, 0, 0, 0, 0]);
    }
  });

  it('clamp: ∂y/∂x = 1 on [min, max] including the bounds, 0 outside; the bound that is selected gets 1', async () => {
    const x = at([-2, -1, 0, 1, 2]);
    expect(await gradientOf((t) => clamp(t, -1, 1), x)).toEqual([0, 1, 1, 1, 0]);
    expect(await tangentOf((t) => clamp(t, -1, 1), x)).toEqual([0, 1, 1, 1, 0]);
    const lo = at([-1, -1, -1, -1, -1]);
    const hi = at([1, 1, 1, 1, 1]);
    const [gx, glo, ghi] = grad((a: Tensor, b: Tensor, c: Tensor) => clamp(a, b, c).sum(), { argnums: [0, 1, 2] })(x, lo, hi) as Tensor[];
    expect(await gx!.toArray()).toEqual([0, 1, 1, 1, 0]);
    expect(await glo!.toArray()).toEqual([1, 0, 0, 0, 0]);
    expect(await ghi!.toArray()).toEqual([0, 0, 0, 0, 1]);
    // NaN fails min ≤ x ≤ max: derivative 0, as torch.clamp (NaN took x's branch, with 1); a NaN
    // bound gives NaN and no derivative to x or to it (the bound got 1).
    const xn = at([NaN, 0.5, 2]);
    expect(await gradientOf((t) => clamp(t, -1, 1), xn)).toEqual([0, 1, 0]);
    expect(await tangentOf((t) => clamp(t, -1, 1), xn)).toEqual([0, 1, 0]);
    const [gxn, glon] = grad((a: Tensor, b: Tensor) => clamp(a, b).sum(), { argnums: [0, 1] })(at([0.5, 0.5, -3]), at([NaN, 0, 0])) as Tensor[];
    expect(await gxn!.toArray()).toEqual([0, 1, 0]);
    expect(await glon!.toArray()).toEqual([0, 0, 1]);
    expect(await clamp(xn, at([NaN, 0, 0])).toArray()).toEqual([NaN, 0.5, 2]);
  });

  it('cumprod with zeros: ∂(Σ cumprod x)/∂x_k = Σ_{i ≥ k} Π_{j ≤ i, j ≠ k} x_j, no 0/0', async () => {
    const x = at([2, 0, 3, 0, 5]);
    // Only products avoiding both zeros survive: k = 1 → 2 + 2·3 = 8; k = 3 → 0 (x₁ = 0 is in every product).
    const expected = [1, 8, 0, 0, 0];
    expect(await gradientOf((t) => cumprod(t, 0), x)).toEqual(expected);
    // Row 1 of the Hessian: g₁ = x₀ + x₀x₂ + x₀x₂x₃ + x₀x₂x₃x₄, so ∂g₁/∂x = (1 + x₂ + x₂x₃ + x₂x₃x₄,
    // 0, x₀ + x₀x₃ + x₀x₃x₄, x₀x₂ + x₀x₂x₄, x₀x₂x₃) = (4, 0, 2, 36, 0): nonzero across the zeros.
    const h = grad((t: Tensor) => (grad((u: Tensor) => cumprod(u, 0).sum())(t) as Tensor).mul(at([0, 1, 0, 0, 0])).sum())(x) as Tensor;
    expect(await h.toArray()).toEqual([4, 0, 2, 36, 0]);
  });

  it('cumprod\'s tangent is not NaN where the scan\'s shift vacates a place next to an infinite entry', async () => {
    // x = (∞, 2, 3): ∂y/∂x₁ = (0, x₀, x₀x₂) = (0, ∞, ∞), and y₀ = x₀ has derivative 1 in x₀. The
    // scan's levels multiply y by the shifted tangent; a vacated place filled with 0 gave
    // y·0 = ∞·0 = NaN there, and the next level spread it (all NaN). Mirrored for reverse: true.
    // (Where the chain rule itself meets ∞·0, d(x₀x₁) = x₁dx₀ + x₀dx₁ with dx₁ = 0, the tangent
    // is NaN in every mode and every engine; those entries are not checked.)
    for (const reverse of [false, true]) {
      const order = (v: number[]) => (reverse ? [...v].reverse() : v);
      const x = at(order([Infinity, 2, 3]));
      const f = (t: Tensor) => cumprod(t, 0, { reverse });
      expect(await jvp(f, [x], [at(order([0, 1, 0]))])[1].toArray(), `reverse ${reverse}`).toEqual(order([0, Infinity, Infinity]));
      const first = order(Array.from(jvp(f, [x], [at(order([1, 0, 0]))])[1].dataSync()))[0];
      expect(first, `reverse ${reverse}`).toBe(1);
    }
  });

  it('gradients through the new ops free every intermediate under tidy', () => {
    const x = tensor([[0.5, -1, 2, 0], [1.5, 0.25, -0.75, 3]], { dtype: 'float64' });
    const f = (t: Tensor) => {
      const [a, b] = split(t, [1, 3], 1);
      return tile(flip(gelu(a!)), [1, 3]).mul(clamp(b!, 0.3, 1.5)).sum().add(cumprod(t, 1).sum()).add(cumsum(t, 0).mul(argmax(t, 0).cast('float64')).sum());
    };
    const before = memory();
    tidy(() => {
      grad(f)(x);
      jvp(f, [x], [x])[1].sum();
    });
    expect(memory()).toEqual(before);
  });
});

describe('softplus at large |x|', () => {
  // Reference: softplus(x) = log(1 + eˣ), written without overflow as max(x, 0) + log1p(e^−|x|);
  // softplus' = σ(x) = 1 / (1 + e^−x); softplus'' = σ(x)·σ(−x).
  const xs = [-30, 30, -50, 50, -700, 700];
  const sigma = (x: number) => 1 / (1 + Math.exp(-x));
  const reference = xs.map((x) => ({
    value: Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))),
    first: sigma(x),
    second: sigma(x) * sigma(-x),
  }));
  // Each quantity is a chain of at most ~8 float64 operations on an exact input, each rounding
  // by ≤ 1 ulp relative (exp and log1p in V8 are within 1 ulp; no subtraction of near-equal
  // values happens: the formula is chosen for that), so 16 ulps relative is a safe bound. The
  // reference has the same kind of error, so the bound is 32 ulps ≈ 7e-15 relative.
  const rtol = 32 * Number.EPSILON;
  const close = (got: number, want: number) => Math.abs(got - want) <= rtol * Math.abs(want);

  it('values, first and second derivatives are finite and right', async () => {
    const x = tensor(xs, { dtype: 'float64' });
    const f = (t: Tensor) => t.softplus().sum();
    const value = await x.softplus().data();
    const first = await (grad(f)(x) as Tensor).data();
    // d/dx of Σ softplus'(x) is the diagonal of the Hessian: softplus'' elementwise.
    const second = await (grad((t: Tensor) => (grad(f)(t) as Tensor).sum())(x) as Tensor).data();
    xs.forEach((x0, i) => {
      const want = reference[i]!;
      for (const [what, got, w] of [['value', value[i]!, want.value], ['first', first[i]!, want.first], ['second', second[i]!, want.second]] as const) {
        expect(Number.isFinite(got), `softplus ${what} at ${x0} is ${got}`).toBe(true);
        expect(close(got, w), `softplus ${what} at ${x0}: ${got} vs ${w}`).toBe(true);
      }
    });
  });

  it('passes checkGrads at ±30 with relative tolerance only (atol 0)', async () => {
    // With atol 0 the tiny values at −30 (σ ≈ 9.4e-14) are checked relatively: the central
    // difference's relative error there is u/ε ≈ 1e-10 (rounding) + ε² (truncation), far below 1e-5.
    await checkGrads((t) => t.softplus(), [tensor([-30, 30], { dtype: 'float64' })], { order: 2, atol: 0 });
  });
});

describe('pow to the number 2 is recorded as a·a: its derivative', () => {
  it("is pow's 2a·g bit for bit in the normal range, and 2·(a·g) where 2a overflows or a·g is subnormal", () => {
    tidy(() => {
      // Normal range: 2a and the product are exact doublings, so g·a + g·a = 2·round(a·g) =
      // round(2a·g), the pow rule's value; reference: host doubles rounded as the dtype stores.
      for (const dtype of ['float32', 'float64'] as const) {
        const round = dtype === 'float32' ? Math.fround : (v: number) => v;
        const a = [1.5, -3.25, 0.1, 1e10, -7e-20, 0];
        const g = [3, 0.7, -1e-3, 2.5e-8, 11, 5];
        const [, pullback] = vjp((x: Tensor) => x.pow(2), tensor(a, { dtype }));
        const got = Array.from(pullback(tensor(g, { dtype }))[0]!.dataSync());
        expect(got, dtype).toEqual(a.map((v, i) => round(round(2 * round(v)) * round(g[i]!))));
      }
      // float32 extremes: 2·3e38 overflows (the pow rule's ∞·1e-10 = ∞), while a·g = 3e28 doubles to
      // a finite value; a·g = 2^-150 rounds to 0 (a tie, to even) before doubling, where 2a·g = 2^-149.
      const a = [3e38, 2 ** -75];
      const g = [1e-10, 2 ** -75];
      const [, pullback] = vjp((x: Tensor) => x.pow(2), tensor(a, { dtype: 'float32' }));
      const got = Array.from(pullback(tensor(g, { dtype: 'float32' }))[0]!.dataSync());
      expect(got).toEqual([Math.fround(2 * Math.fround(Math.fround(3e38) * Math.fround(1e-10))), 0]);
      expect(Number.isFinite(got[0])).toBe(true);
    });
  });
});

describe('softmax and logSoftmax of logits of large magnitude', () => {
  it('have the derivatives of the same logits shifted to 0, in both modes (exact)', () => {
    // Softmax is shift invariant and x − max is exact, so rows of equal logits at 1e17 must give
    // what rows of zeros give, bit for bit; x − logsumexp(x) rounded log 3 away (a softmax of 1s,
    // whose derivative is 0).
    const x = tensor([[1e17, 1e17, 1e17], [0, 0, 0]], { dtype: 'float64' });
    const w = tensor([[1, 0, 0], [1, 0, 0]], { dtype: 'float64' });
    for (const f of [(t: Tensor) => softmax(t, 1), (t: Tensor) => logSoftmax(t, 1).mul(logSoftmax(t, 1))]) {
      const g = Array.from((grad((t: Tensor) => f(t).mul(w).sum())(x) as Tensor).dataSync());
      const dy = Array.from(jvp(f, [x], [w])[1].dataSync());
      expect(g.slice(0, 3)).toEqual(g.slice(3));
      expect(dy.slice(0, 3)).toEqual(dy.slice(3));
    }
    // softmax: ∂(s·w)/∂x = s ⊙ (w − s·w) = (2/9, −1/9, −1/9) for s = 1/3, w = e₀; each entry is a
    // handful of roundings of values below 1 (s within 4u, then a product and a difference): well
    // within 8u ≈ 8.9e-16, so below 1e-15, where the old 0s are off by 1/9.
    const g = Array.from((grad((t: Tensor) => softmax(t, 1).mul(w).sum())(x) as Tensor).dataSync());
    g.forEach((v, i) => expect(Math.abs(v - [2 / 9, -1 / 9, -1 / 9][i % 3]!)).toBeLessThan(1e-15));
  });
});

describe('logsumexp and softmax along an empty axis', () => {
  it('logsumexp is the constant −∞: zero tangent, a gradient of x\'s empty shape; softmax\'s gradient is empty', async () => {
    const x = tensor([], { shape: [3, 0], dtype: 'float64' });
    const [y, dy] = jvp((v: Tensor) => v.logsumexp(1), [x], [tensor([], { shape: [3, 0], dtype: 'float64' })]);
    expect(await y.toArray()).toEqual([-Infinity, -Infinity, -Infinity]);
    expect(await dy.toArray()).toEqual([0, 0, 0]);
    const g = grad((v: Tensor) => v.logsumexp([0, 1], true).sum())(x) as Tensor;
    expect(g.shape).toEqual([3, 0]);
    const gs = grad((v: Tensor) => softmax(v, 1).mul(2).sum().add(logSoftmax(v, 1).sum()))(x) as Tensor;
    expect(gs.shape).toEqual([3, 0]);
  });
});

describe('maximum under an infinite cotangent', () => {
  it('the smaller operand gets 0 (not ∞·0 = NaN); the larger gets the cotangent whole', () => {
    const [sa, sb] = grad((a: Tensor, b: Tensor) => a.maximum(b).mul(Infinity).sum(), { argnums: [0, 1] })(
      tensor([1], { dtype: 'float64' }), tensor([2], { dtype: 'float64' }),
    ) as Tensor[];
    expect(Array.from(sa!.dataSync())).toEqual([0]);
    expect(Array.from(sb!.dataSync())).toEqual([Infinity]);
  });
});
