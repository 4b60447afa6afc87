// Differentiation rules, one table per transformation, keyed by primitive. The mapped types make
// a missing entry a compile error. Rules are written with the public (differentiable) tensor
// ops, never with raw buffers: that is what lets every transformation compose with every other
// (grad of grad, jvp of grad, grad of jvp) with no extra code. Elementwise derivatives are
// written once (UNARY_DERIVATIVES, BINARY_PARTIALS) and both tables are made from them.

import {
  type Primitive, type PrimitiveParams, type UnaryPrimitive, Tensor, add, apply, broadcastTo, cast, concat, constant, cos, div,
  equal, exp, less, notEqual, fmtShape, greater, greaterEqual, isFinite, isFloatDType, keepdimsShape, log, matmul, mul, narrow, neg, pow,
  primitiveDefinition, reciprocal, reshape, shapesEqual, sin, slice, sub, sum, transpose, where, zerosLike,
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

/** Cotangent of a reduction output, spread back over the reduced axes. */
function unreduce(ct: Tensor, x: Tensor, axes: readonly number[]): Tensor {
  return broadcastTo(reshape(ct, keepdimsShape(x.shape, axes)), x.shape);
}

/** For reduceMax: 1/k on each of the k maximal entries along the reduced axes, 0 elsewhere. */
function maxSelector(x: Tensor, out: Tensor, axes: readonly number[]): Tensor {
  const mask = cast(equal(x, unreduce(out, x, axes)), x.dtype);
  return div(mask, broadcastTo(sum(mask, axes, true), x.shape));
}

/**
 * A derivative as the factor a tangent or cotangent g is scaled by: a tensor or number it is
 * multiplied by, or `{ over: d }` for 1/d, by which it is divided instead (as PyTorch's and JAX's
 * rules for log and div divide): g/d is finite where d is subnormal and 1/d overflows to ∞ (for
 * small g, and 0 for g = 0, as the branch a `where` did not take gets), where g·(1/d) was ±∞ or NaN.
 */
type Factor = Tensor | number | { readonly over: Tensor } | { readonly zeroWhere: Tensor; readonly times: Tensor | number };

/**
 * g scaled by f. A `zeroWhere` factor is `times`, which is 0 where `zeroWhere` holds: there g is
 * taken as 0 when it is ±∞ or NaN (as PyTorch's masked_fill / where), so the product is 0 (with
 * g's sign, as g·0 for finite g), never ∞·0 = NaN.
 */
const scaleBy = (g: Tensor, f: Factor): Tensor => {
  if (typeof f === 'number' || f instanceof Tensor) return mul(g, f);
  if ('over' in f) return div(g, f.over);
  return mul(where(f.zeroWhere, where(isFinite(g), g, 0), g), f.times);
};

/**
 * f'(x) of each elementwise unary primitive, from its input x and/or its output y. Both the jvp
 * (dy = f'(x) dx) and the vjp (x̄ = f'(x) ȳ) rule are made from this one entry.
 */
type Derivative = (x: Tensor, y: Tensor) => Factor;

const UNARY_DERIVATIVES: { readonly [P in UnaryPrimitive]: Derivative } = {
  neg: () => -1, // d(−x) = −dx
  exp: (_x, y) => y, // d eˣ = eˣ dx
  log: (x) => ({ over: x }), // d log x = dx / x
  sin: (x) => cos(x), // d sin x = cos x dx
  cos: (x) => neg(sin(x)), // d cos x = −sin x dx
  sqrt: (_x, y) => reciprocal(mul(y, 2)), // d √x = dx / (2√x)
  reciprocal: (_x, y) => neg(mul(y, y)), // d(1/x) = −dx / x²
  tanh: (_x, y) => sub(1, mul(y, y)), // d tanh x = (1 − tanh² x) dx
  log1p: (x) => reciprocal(add(x, 1)), // d log(1 + x) = dx / (1 + x)
  // d(eˣ − 1) = eˣ dx, as exp(x): y + 1 cancels for x ≪ 0 (all of eˣ is lost below x ≈ −37)
  expm1: (x) => exp(x),
  sigmoid: (_x, y) => mul(y, sub(1, y)), // d σ(x) = σ(x)(1 − σ(x)) dx
  // Piecewise constant: derivative 0, at the jumps too (as PyTorch and JAX).
  floor: () => 0,
  ceil: () => 0,
  round: () => 0,
  sign: () => 0,
  erf: (x) => mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)), // d erf x = (2/√π) e^(−x²) dx
};

/**
 * `y` moved `d` places along `axis` in the scan's direction (towards higher indices, or lower
 * when `reverse`), the vacated places holding `fill`: S(y)_i = y_{i−d} (y_{i+d} reversed).
 */
function shiftAlong(y: Tensor, axis: number, d: number, reverse: boolean, fill: number): Tensor {
  const n = y.shape[axis]!;
  const pad = constant(fill, y.shape.map((e, i) => (i === axis ? d : e)), y.dtype, y.device);
  return reverse ? concat([narrow(y, axis, d, n - d), pad], axis) : concat([pad, narrow(y, axis, 0, n - d)], axis);
}

/**
 * The levels of the Hillis–Steele scan of products: y₀ = x, y_{k+1} = y_k ⊙ S_{2ᵏ}(y_k) (fill 1),
 * the last being cumprod(x). The derivative rules of cumprod differentiate these levels: only
 * products, no division, so they are exact with zeros in x and differentiable again (JAX
 * differentiates cumprod through its associative scan in the same way). O(n log n) work.
 */
function productScanLevels(x: Tensor, axis: number, reverse: boolean): { levels: Tensor[]; shifts: number[] } {
  const n = x.shape[axis]!;
  const levels = [x];
  const shifts: number[] = [];
  for (let d = 1; d < n; d *= 2) {
    const y = levels[levels.length - 1]!;
    levels.push(mul(y, shiftAlong(y, axis, d, reverse, 1)));
    shifts.push(d);
  }
  return { levels, shifts };
}

/**
 * y ⊙ S(t) with S(t)'s vacated places 0 in the result, the product taken only where S(t) holds
 * an entry of t: multiplying by a fill of 0 would give ∞·0 = NaN where y is ±∞ or NaN.
 */
function timesShifted(y: Tensor, t: Tensor, axis: number, d: number, reverse: boolean): Tensor {
  const n = y.shape[axis]!;
  const zeros = constant(0, y.shape.map((e, i) => (i === axis ? d : e)), y.dtype, y.device);
  return reverse
    ? concat([mul(narrow(y, axis, 0, n - d), narrow(t, axis, d, n - d)), zeros], axis)
    : concat([zeros, mul(narrow(y, axis, d, n - d), narrow(t, axis, 0, n - d))], axis);
}

/** d cumprod(x) from dx: each level y' = y ⊙ S(y) gives dy' = dy ⊙ S(y) + y ⊙ S(dy) (fill 0). */
function cumprodJvp(x: Tensor, t: Tensor, { axis, reverse }: PrimitiveParams['cumprod']): Tensor {
  const { levels, shifts } = productScanLevels(x, axis, reverse);
  let dy = t;
  shifts.forEach((d, k) => {
    const y = levels[k]!;
    dy = add(mul(dy, shiftAlong(y, axis, d, reverse, 1)), timesShifted(y, dy, axis, d, reverse));
  });
  return dy;
}

/**
 * x̄ from ȳ = cumprod's cotangent: the jvp's levels transposed, last first. The transpose of the
 * shift S (fill 0) is the shift the other way (fill 0): ȳ_k = ȳ' ⊙ S(y_k) + Sᵀ(ȳ' ⊙ y_k).
 */
function cumprodVjp(ct: Tensor, x: Tensor, { axis, reverse }: PrimitiveParams['cumprod']): Tensor {
  const { levels, shifts } = productScanLevels(x, axis, reverse);
  let g = ct;
  for (let k = shifts.length - 1; k >= 0; k--) {
    const d = shifts[k]!;
    const y = levels[k]!;
    g = add(mul(g, shiftAlong(y, axis, d, reverse, 1)), shiftAlong(mul(g, y), axis, d, !reverse, 0));
  }
  return g;
}

/** One rule per primitive of a derivative table (UNARY_DERIVATIVES, BINARY_PARTIALS), made from its entry. */
function rulesFrom<K extends Primitive, E, R>(table: { readonly [P in K]: E }, make: (entry: E) => R): { [P in K]: R } {
  const rules = {} as { [P in K]: R };
  for (const p of Object.keys(table) as K[]) rules[p] = make(table[p]);
  return rules;
}

/**
 * ∂y/∂a and ∂y/∂b of the binary primitives whose partials are not constant, from the inputs a, b
 * and the output y; only the flagged ones are built. Both the jvp (dy = ∂y/∂a da + ∂y/∂b db)
 * and the vjp (ā = ∂y/∂a ȳ, b̄ = ∂y/∂b ȳ) rule are made from this one entry.
 */
type Partials = (a: Tensor, b: Tensor, y: Tensor, needs: readonly [boolean, boolean]) => [Factor | null, Factor | null];
type ProductLikePrimitive = 'mul' | 'div' | 'max' | 'pow';

/**
 * The partials of aᵇ, with the values PyTorch and JAX give where the formulas are 0·∞ or 0·NaN:
 * ∂/∂a = b aᵇ⁻¹ is 0 at b = 0 where a⁻¹ is not finite (a = ±0, a subnormal whose reciprocal
 * overflows, or NaN: aᵇ = 1 for every a there), and ∂/∂b = aᵇ log a is 0 at a = 0, b ≥ 0. Only
 * those points are masked (elsewhere the formulas are right, and so are their derivatives, e.g.
 * ∂²aᵇ/∂a∂b = a⁻¹ at b = 0). Inside the formula the masked entries also take a = 1 (a `where`
 * on the input, not only on the result), so that its derivatives there, which the mask
 * multiplies by 0, are finite: higher-order derivatives stay 0 instead of 0·∞ = NaN.
 */
function powPartials(a: Tensor, b: Tensor, y: Tensor, [na, nb]: readonly [boolean, boolean]): [Factor | null, Factor | null] {
  let da: Factor | null = null;
  let db: Tensor | null = null;
  if (na) {
    const masked = where(equal(b, 0), equal(isFinite(reciprocal(a)), 0), 0);
    da = { zeroWhere: equal(b, 0), times: where(masked, 0, mul(b, pow(where(masked, 1, a), sub(b, 1)))) };
  }
  if (nb) {
    const masked = where(equal(a, 0), greaterEqual(b, 0), 0);
    db = where(masked, 0, mul(log(where(masked, 1, a)), y));
  }
  return [da, db];
}

const BINARY_PARTIALS: { readonly [P in ProductLikePrimitive]: Partials } = {
  mul: (a, b, _y, [na, nb]) => [na ? b : null, nb ? a : null], // d(ab) = b da + a db
  div: (_a, b, y, [na, nb]) => [na ? { over: b } : null, nb ? neg(div(y, b)) : null], // d(a/b) = da/b − (a/b) db/b
  // d max(a, b) = m da + (1 − m) db, m = [a > b] (+ ½ on ties); where a or b is NaN (so is y)
  // both partials are 1, as PyTorch's: m is 0 there, so a's gets [y ≠ y] added.
  max: (a, b, y, [na, nb]) => {
    const m = maxMask(a, b);
    // The smaller operand's factor is 0: a cotangent of ±∞ or NaN there gives 0 (PyTorch's masked_fill), not NaN.
    return [na ? { zeroWhere: less(a, b), times: add(m, cast(notEqual(y, y), a.dtype)) } : null, nb ? { zeroWhere: less(b, a), times: sub(1, m) } : null];
  },
  pow: powPartials, // d aᵇ = b aᵇ⁻¹ da + log(a) aᵇ db
};

/** A defined primitive's tangent, checked against its output (a rule's mistake named, not a later shape error). */
const customJvp: JvpRule<'custom'> = (primals, tangents, out, { name }) => {
  const t = primitiveDefinition(name).jvp(primals, tangents, out);
  if (t !== null && !(t instanceof Tensor)) throw new TypeError(`${name}: its jvp rule must return a Tensor or null, got ${typeof t}`);
  if (t && (!shapesEqual(t.shape, out.shape) || t.dtype !== out.dtype)) {
    throw new Error(`${name}: its jvp rule returned a ${t.dtype} ${fmtShape(t.shape)} tangent for a ${out.dtype} ${fmtShape(out.shape)} output`);
  }
  return t;
};

/** A defined primitive's cotangents, one per input, checked against the inputs. */
const customVjp: VjpRule<'custom'> = (ct, primals, out, { name }, needs) => {
  const cts = primitiveDefinition(name).vjp(ct, primals, out);
  if (!Array.isArray(cts) || cts.length !== primals.length) {
    throw new Error(`${name}: its vjp rule must return an array of ${primals.length} cotangent(s) (null for none), got ${Array.isArray(cts) ? `${cts.length}` : typeof cts}`);
  }
  return cts.map((g, i) => {
    if (!needs[i] || g === null || g === undefined) return null;
    const x = primals[i]!;
    if (!(g instanceof Tensor) || !shapesEqual(g.shape, x.shape) || g.dtype !== x.dtype) {
      const got = g instanceof Tensor ? `a ${g.dtype} ${fmtShape(g.shape)} tensor` : typeof g;
      throw new Error(`${name}: its vjp rule returned ${got} as the cotangent of input ${i}, a ${x.dtype} ${fmtShape(x.shape)} tensor`);
    }
    return g;
  });
};

/** Forward rules by primitive: frozen (a defined primitive brings its rule through 'custom'). */
export const jvpRules: { readonly [P in Primitive]: JvpRule<P> } = Object.freeze({
  ...rulesFrom(UNARY_DERIVATIVES, (derivative): JvpRule<UnaryPrimitive> => ([x], [t], y) => {
    const f = t ? derivative(x!, y) : 0;
    return t && f !== 0 ? scaleBy(t, f) : null; // a zero derivative gives a zero tangent, not t·0 (NaN for t = ±∞)
  }),
  ...rulesFrom(BINARY_PARTIALS, (partials): JvpRule<ProductLikePrimitive> => ([a, b], [ta, tb], y) => {
    const [da, db] = partials(a!, b!, y, [Boolean(ta), Boolean(tb)]);
    return addT(ta && da ? scaleBy(ta, da) : null, tb && db ? scaleBy(tb, db) : null);
  }),
  add: (_p, [ta, tb]) => addT(ta!, tb!), // d(a + b) = da + db
  sub: (_p, [ta, tb]) => (tb ? (ta ? sub(ta, tb) : neg(tb)) : ta!), // d(a − b) = da − db
  less: () => null,
  lessEqual: () => null,
  equal: () => null,
  notEqual: () => null,
  // d where(c, a, b) = where(c, da, db)
  where: ([c, a, b], [, ta, tb]) => (ta || tb ? where(c!, orZeros(ta!, a!), orZeros(tb!, b!)) : null),
  sum: (_p, [t], _y, { axes }) => apply('sum', [t!], { axes }), // d Σx = Σ dx
  // d max x = mean of dx over the maximal entries
  reduceMax: ([x], [t], y, { axes }) => apply('sum', [mul(t!, maxSelector(x!, y, axes))], { axes }),
  argmax: () => null, // an int32 index: no tangent
  argmin: () => null,
  cumsum: (_p, [t], _y, params) => apply('cumsum', [t!], params), // linear: d cumsum(x) = cumsum(dx)
  cumprod: ([x], [t], _y, params) => cumprodJvp(x!, t!, params),
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
  custom: customJvp, // the definition's own rule
});

/** Reverse rules by primitive: frozen (a defined primitive brings its rule through 'custom'). */
export const vjpRules: { readonly [P in Primitive]: VjpRule<P> } = Object.freeze({
  ...rulesFrom(UNARY_DERIVATIVES, (derivative): VjpRule<UnaryPrimitive> => (ct, [x], y) => {
    const f = derivative(x!, y);
    return [f === 0 ? zerosLike(x!) : scaleBy(ct, f)];
  }),
  ...rulesFrom(BINARY_PARTIALS, (partials): VjpRule<ProductLikePrimitive> => (ct, [a, b], y, _q, [na, nb]) => {
    const [da, db] = partials(a!, b!, y, [na!, nb!]);
    return [da ? scaleBy(ct, da) : null, db ? scaleBy(ct, db) : null];
  }),
  add: (ct, _p, _y, _q, [na, nb]) => [na ? ct : null, nb ? ct : null],
  sub: (ct, _p, _y, _q, [na, nb]) => [na ? ct : null, nb ? neg(ct) : null],
  less: () => [null, null],
  lessEqual: () => [null, null],
  equal: () => [null, null],
  notEqual: () => [null, null],
  where: (ct, [c], _y, _q, [, na, nb]) => [null, na ? where(c!, ct, 0) : null, nb ? where(c!, 0, ct) : null],
  sum: (ct, [x], _y, { axes }) => [unreduce(ct, x!, axes)], // Σ spreads the cotangent back
  reduceMax: (ct, [x], y, { axes }) => [mul(unreduce(ct, x!, axes), maxSelector(x!, y, axes))],
  argmax: () => [null],
  argmin: () => [null],
  // cumsum's transpose is the running sum the other way: x̄_j = Σ_{i ≥ j} ȳ_i
  cumsum: (ct, _p, _y, { axis, reverse }) => [apply('cumsum', [ct], { axis, reverse: !reverse })],
  cumprod: (ct, [x], _y, params) => [cumprodVjp(ct, x!, params)],
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
  custom: customVjp, // the definition's own rule
});
