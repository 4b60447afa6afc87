// Differentiation rules, one table per transformation, keyed by primitive. The mapped types make
// a missing entry a compile error. Rules are written with the public (differentiable) tensor
// ops, never with raw buffers: that is what lets every transformation compose with every other
// (grad of grad, jvp of grad, grad of jvp) with no extra code.

import {
  type Primitive, type PrimitiveParams, Tensor, add, apply, broadcastTo, cast, cos, div,
  equal, greater, isFloatDType, log, matmul, mul, neg, pow, reshape, sin, slice, sub, sum,
  transpose, where, zerosLike,
} from '@scorch/tensor';

/** Forward rule: the output tangent from input tangents (null = zero); null if it is zero. */
export type JvpRule<P extends Primitive> = (
  primals: readonly Tensor[], tangents: readonly (Tensor | null)[], out: Tensor, params: PrimitiveParams[P],
) => Tensor | null;

/** Reverse rule: input cotangents from the output cotangent, for the inputs flagged in `needs`. */
export type VjpRule<P extends Primitive> = (
  ct: Tensor, primals: readonly Tensor[], out: Tensor, params: PrimitiveParams[P], needs: readonly boolean[],
) => (Tensor | null)[];

const orZeros = (t: Tensor | null, like: Tensor): Tensor => t ?? zerosLike(like);

/** Adds two optional tangents. */
const addT = (a: Tensor | null, b: Tensor | null): Tensor | null => (a && b ? add(a, b) : a ?? b);

/** Float mask of `a > b` with ties split ½/½ (as PyTorch's maximum). */
function maxMask(a: Tensor, b: Tensor): Tensor {
  return add(cast(greater(a, b), a.dtype), mul(cast(equal(a, b), a.dtype), 0.5));
}

function keepdimsShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Cotangent of a reduction output, spread back over the reduced axes. */
function unreduce(ct: Tensor, x: Tensor, axes: readonly number[]): Tensor {
  return broadcastTo(reshape(ct, keepdimsShape(x.shape, axes)), x.shape);
}

/** For reduceMax: 1/k on each of the k maximal entries along the reduced axes, 0 elsewhere. */
function maxSelector(x: Tensor, out: Tensor, axes: readonly number[]): Tensor {
  const mask = cast(equal(x, unreduce(out, x, axes)), x.dtype);
  return div(mask, broadcastTo(sum(mask, axes, true), x.shape));
}

const unaryJvp = (f: (x: Tensor, t: Tensor, out: Tensor) => Tensor): JvpRule<Primitive> =>
  (p, t, out) => (t[0] ? f(p[0]!, t[0], out) : null);
const unaryVjp = (f: (x: Tensor, ct: Tensor, out: Tensor) => Tensor): VjpRule<Primitive> =>
  (ct, p, out) => [f(p[0]!, ct, out)];

export const jvpRules: { [P in Primitive]: JvpRule<P> } = {
  neg: unaryJvp((_x, t) => neg(t)), // d(−x) = −dx
  exp: unaryJvp((_x, t, y) => mul(t, y)), // d eˣ = eˣ dx
  log: unaryJvp((x, t) => div(t, x)), // d log x = dx / x
  sin: unaryJvp((x, t) => mul(t, cos(x))), // d sin x = cos x dx
  cos: unaryJvp((x, t) => neg(mul(t, sin(x)))), // d cos x = −sin x dx
  sqrt: unaryJvp((_x, t, y) => div(t, mul(y, 2))), // d √x = dx / (2√x)
  reciprocal: unaryJvp((_x, t, y) => neg(mul(t, mul(y, y)))), // d(1/x) = −dx / x²
  tanh: unaryJvp((_x, t, y) => mul(t, sub(1, mul(y, y)))), // d tanh x = (1 − tanh² x) dx
  log1p: unaryJvp((x, t) => div(t, add(x, 1))), // d log(1 + x) = dx / (1 + x)
  expm1: unaryJvp((_x, t, y) => mul(t, add(y, 1))), // d(eˣ − 1) = eˣ dx
  sigmoid: unaryJvp((_x, t, y) => mul(t, mul(y, sub(1, y)))), // d σ(x) = σ(x)(1 − σ(x)) dx
  add: (_p, [ta, tb]) => addT(ta!, tb!), // d(a + b) = da + db
  sub: (_p, [ta, tb]) => (tb ? (ta ? sub(ta, tb) : neg(tb)) : ta!), // d(a − b) = da − db
  mul: ([a, b], [ta, tb]) => addT(ta ? mul(ta, b!) : null, tb ? mul(a!, tb) : null), // d(ab) = b da + a db
  // d(a/b) = (da − (a/b) db) / b
  div: ([_a, b], [ta, tb], y) => div(tb ? sub(orZeros(ta!, y), mul(tb, y)) : ta!, b!),
  // d max(a, b) = m da + (1 − m) db, m = [a > b] (+ ½ on ties)
  max: ([a, b], [ta, tb]) => {
    const m = maxMask(a!, b!);
    return addT(ta ? mul(ta, m) : null, tb ? mul(tb, sub(1, m)) : null);
  },
  // d aᵇ = b aᵇ⁻¹ da + log(a) aᵇ db
  pow: ([a, b], [ta, tb], y) => addT(ta ? mul(ta, mul(b!, pow(a!, sub(b!, 1)))) : null, tb ? mul(tb, mul(log(a!), y)) : null),
  less: () => null,
  lessEqual: () => null,
  equal: () => null,
  notEqual: () => null,
  // d where(c, a, b) = where(c, da, db)
  where: ([c, a, b], [, ta, tb]) => (ta || tb ? where(c!, orZeros(ta!, a!), orZeros(tb!, b!)) : null),
  sum: (_p, [t], _y, { axes }) => apply('sum', [t!], { axes }), // d Σx = Σ dx
  // d max x = mean of dx over the maximal entries
  reduceMax: ([x], [t], y, { axes }) => apply('sum', [mul(t!, maxSelector(x!, y, axes))], { axes }),
  reshape: (_p, [t], _y, params) => apply('reshape', [t!], params), // linear: same op on the tangent
  expand: (_p, [t], _y, params) => apply('expand', [t!], params),
  permute: (_p, [t], _y, params) => apply('permute', [t!], params),
  slice: (_p, [t], _y, params) => apply('slice', [t!], params),
  pad: (_p, [t], _y, params) => apply('pad', [t!], params),
  concat: (p, t, _y, params) => apply('concat', p.map((x, i) => orZeros(t[i]!, x)), params),
  gather: ([, idx], [t], _y, params) => (t ? apply('gather', [t, idx!], params) : null),
  scatterAdd: ([, idx], [t], _y, params) => (t ? apply('scatterAdd', [t, idx!], params) : null),
  // d(AB) = dA B + A dB
  matmul: ([a, b], [ta, tb]) => addT(ta ? apply('matmul', [ta, b!], {}) : null, tb ? apply('matmul', [a!, tb], {}) : null),
  cast: ([x], [t], _y, { dtype }) => (t && isFloatDType(x!.dtype) && isFloatDType(dtype) ? apply('cast', [t], { dtype }) : null),
  random: () => null,
  full: () => null, // a constant
  stopGradient: () => null, // by definition
};

export const vjpRules: { [P in Primitive]: VjpRule<P> } = {
  neg: unaryVjp((_x, ct) => neg(ct)),
  exp: unaryVjp((_x, ct, y) => mul(ct, y)),
  log: unaryVjp((x, ct) => div(ct, x)),
  sin: unaryVjp((x, ct) => mul(ct, cos(x))),
  cos: unaryVjp((x, ct) => neg(mul(ct, sin(x)))),
  sqrt: unaryVjp((_x, ct, y) => div(ct, mul(y, 2))),
  reciprocal: unaryVjp((_x, ct, y) => neg(mul(ct, mul(y, y)))),
  tanh: unaryVjp((_x, ct, y) => mul(ct, sub(1, mul(y, y)))),
  log1p: unaryVjp((x, ct) => div(ct, add(x, 1))),
  expm1: unaryVjp((_x, ct, y) => mul(ct, add(y, 1))),
  sigmoid: unaryVjp((_x, ct, y) => mul(ct, mul(y, sub(1, y)))),
  add: (ct, _p, _y, _q, [na, nb]) => [na ? ct : null, nb ? ct : null],
  sub: (ct, _p, _y, _q, [na, nb]) => [na ? ct : null, nb ? neg(ct) : null],
  mul: (ct, [a, b], _y, _q, [na, nb]) => [na ? mul(ct, b!) : null, nb ? mul(ct, a!) : null],
  div: (ct, [_a, b], y, _q, [na, nb]) => [na ? div(ct, b!) : null, nb ? neg(div(mul(ct, y), b!)) : null],
  max: (ct, [a, b], _y, _q, [na, nb]) => {
    const m = maxMask(a!, b!);
    return [na ? mul(ct, m) : null, nb ? mul(ct, sub(1, m)) : null];
  },
  pow: (ct, [a, b], y, _q, [na, nb]) => [
    na ? mul(ct, mul(b!, pow(a!, sub(b!, 1)))) : null,
    nb ? mul(ct, mul(log(a!), y)) : null,
  ],
  less: () => [null, null],
  lessEqual: () => [null, null],
  equal: () => [null, null],
  notEqual: () => [null, null],
  where: (ct, [c], _y, _q, [, na, nb]) => [null, na ? where(c!, ct, 0) : null, nb ? where(c!, 0, ct) : null],
  sum: (ct, [x], _y, { axes }) => [unreduce(ct, x!, axes)], // Σ spreads the cotangent back
  reduceMax: (ct, [x], y, { axes }) => [mul(unreduce(ct, x!, axes), maxSelector(x!, y, axes))],
  reshape: (ct, [x]) => [reshape(ct, x!.shape)],
  // expand's transpose sums over the stretched axes
  expand: (ct, [x]) => {
    const axes = x!.shape.flatMap((d, i) => (d === 1 && ct.shape[i] !== 1 ? [i] : []));
    return [axes.length ? reshape(sum(ct, axes, true), x!.shape) : ct];
  },
  permute: (ct, _p, _y, { perm }) => {
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => (inverse[p] = i));
    return [apply('permute', [ct], { perm: inverse })];
  },
  // slice's transpose pads with zeros, pad's transpose slices
  slice: (ct, [x], _y, { starts, ends }) => [apply('pad', [ct], { before: starts, after: x!.shape.map((d, i) => d - ends[i]!) })],
  pad: (ct, [x], _y, { before }) => [apply('slice', [ct], { starts: before, ends: before.map((b, i) => b + x!.shape[i]!) })],
  concat: (ct, p, _y, { axis }, needs) => {
    let start = 0;
    return p.map((x, i) => {
      const begin = ct.shape.map((_, a) => (a === axis ? start : 0));
      const size = ct.shape.map((d, a) => (a === axis ? x.shape[axis]! : d));
      start += x.shape[axis]!;
      return needs[i] ? slice(ct, begin, size) : null;
    });
  },
  // gather and scatterAdd are each other's transpose
  gather: (ct, [x, idx], _y, { axis }) => [apply('scatterAdd', [ct, idx!], { axis, size: x!.shape[axis]! }), null],
  scatterAdd: (ct, [, idx], _y, { axis }) => [apply('gather', [ct, idx!], { axis }), null],
  // C = AB: dA = dC Bᵀ, dB = Aᵀ dC
  matmul: (ct, [a, b], _y, _q, [na, nb]) => [
    na ? matmul(ct, transpose(b!)) : null,
    nb ? matmul(transpose(a!), ct) : null,
  ],
  cast: (ct, [x]) => [isFloatDType(x!.dtype) ? cast(ct, x!.dtype) : null],
  random: () => [],
  full: () => [],
  stopGradient: () => [null],
};
