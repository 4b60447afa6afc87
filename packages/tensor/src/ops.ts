// Public tensor operations. Each is a primitive call (through `apply`) or a composition of
// them; composites (softplus, logsumexp, variance, ...) get their derivatives from the
// primitives' rules, so only primitives carry differentiation rules.

import { type DType, isFloatDType, storedValue } from './dtype.js';
import { getBackend } from './backend.js';
import { checkBoolean, checkNumber, checkOneOf, checkOptions, everyEntry, showValue } from '@scorch/options';
import { type Primitive, type PrimitiveParams, type UnaryPrimitive } from './primitives.js';
import { assertAllocatable, assertShape, broadcastShapes, fmtShape, keepdimsShape, normalizeAxes, normalizeAxis, shapesEqual, sizeOf } from './shape.js';
import { MOVE_TO_DEVICE, Tensor, apply, checkTensor, composite, currentDynamicTrace, unchanged, withNumberOperand } from './tensor.js';

type Operand = Tensor | number;

/** A constant of `shape`, `dtype` and `device` (the value converted as `cast` converts it). */
export function constant(value: number, shape: readonly number[], dtype: DType, device: string): Tensor {
  return apply('full', [], { value: storedValue(value, dtype), shape: [...shape], dtype, device });
}

/** A scalar constant of `like`'s dtype and device (numbers adopt the tensor's dtype). */
export function scalarLike(value: number, like: Tensor): Tensor {
  return constant(value, [], like.dtype, like.device);
}

/** Broadcasts `x` to `shape` (NumPy rules): a reshape that adds leading 1s, then an expand. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  return broadcastAs('broadcastTo', x, shape);
}

/**
 * `x` broadcast to `shape` as PyTorch's `Tensor.expand`: `broadcastTo`, where a −1 keeps the size
 * of the axis of `x` it aligns with (axes align from the right; a new leading axis cannot be −1).
 */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('expand', x);
  if (!Array.isArray(shape)) throw new TypeError(`expand: shape must be an array of integers, got ${typeof shape}`);
  const lead = shape.length - x.rank;
  if (lead < 0) throw new Error(`expand: cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(shape)}, which has lower rank`);
  const sizes = shape.map((d, i) => {
    if (d !== -1) return d;
    if (i < lead) throw new Error(`expand: a −1 keeps an existing axis's size, but axis ${i} of ${fmtShape(shape)} is a new leading axis (x has shape ${fmtShape(x.shape)})`);
    return x.shape[i - lead]!;
  });
  return broadcastAs('expand', x, sizes);
}

/** broadcastTo's work; errors name `name`, the function the caller wrote. */
function broadcastAs(name: string, x: Tensor, shape: readonly number[]): Tensor {
  return composite(() => {
    checkTensor(name, x);
    if (shapesEqual(x.shape, shape)) return unchanged(x);
    assertShape(shape, name);
    if (shape.length < x.rank) {
      throw new Error(`${name}: cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(shape)}, which has lower rank`);
    }
    // Axes align from the right; each of x's axes must equal the target's or be 1.
    const lead = shape.length - x.rank;
    const bad = x.shape.findIndex((d, i) => d !== 1 && d !== shape[lead + i]);
    if (bad >= 0) {
      throw new Error(
        `${name}: cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(shape)} ` +
          `(axis ${bad} has size ${x.shape[bad]} but the target has ${shape[lead + bad]}; only size-1 axes stretch)`,
      );
    }
    const lifted = x.rank < shape.length ? reshape(x, [...new Array<number>(shape.length - x.rank).fill(1), ...x.shape]) : x;
    return shapesEqual(lifted.shape, shape) ? lifted : apply('expand', [lifted], { shape: [...shape] });
  });
}

/**
 * A number operand takes the tensor's dtype, so it must be a value of that dtype: an integer in
 * [−2³¹, 2³¹ − 1] beside an int32 tensor, 0 or 1 beside a bool one. Converted by the cast rule,
 * 2.5 became 2 and 3e9 became 2³¹ − 1, so int32 [2, 3] · 0.5 gave [0, 0] and [2, 3] < 2.5 gave
 * [false, false], where PyTorch, JAX and TF.js promote to float and give [1, 1.5] and [true,
 * false]. scorch does not promote implicitly (two tensors of different dtypes are refused too):
 * the caller casts.
 */
function checkNumberFits(op: string, value: number, other: Tensor): void {
  const fits = other.dtype === 'int32' ? Number.isInteger(value) && value >= -(2 ** 31) && value <= 2 ** 31 - 1
    : other.dtype === 'bool' ? value === 0 || value === 1
    : true;
  if (!fits) {
    const expected = other.dtype === 'int32' ? 'an integer from −2³¹ to 2³¹ − 1' : '0 or 1';
    throw new TypeError(`${op}: the number ${value} is not a value of the other operand's dtype ${other.dtype} (a number takes the tensor's dtype; expected ${expected}); cast the tensor first, e.g. x.cast('float32')`);
  }
}

function operands(op: string, a: Operand, b: Operand): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') {
    throw new TypeError(`${op}: at least one operand must be a Tensor (a number takes the other operand's dtype)`);
  }
  // Before a number is made a constant like the other operand, which reads its dtype and device:
  // add(undefined, 2) failed as "cannot read properties of undefined", add([1, 2], 2) as "unknown device".
  if (typeof a !== 'number') checkTensor(op, a, 'first operand');
  if (typeof b !== 'number') checkTensor(op, b, 'second operand');
  if (typeof a === 'number') checkNumberFits(op, a, b as Tensor);
  if (typeof b === 'number') checkNumberFits(op, b, a as Tensor);
  const ta = typeof a === 'number' ? scalarLike(a, b as Tensor) : a;
  const tb = typeof b === 'number' ? scalarLike(b, ta) : b;
  if (ta.dtype !== tb.dtype) {
    throw new TypeError(`${op}: dtype mismatch (${ta.dtype} vs ${tb.dtype}) for shapes ${fmtShape(ta.shape)} and ${fmtShape(tb.shape)}; cast one operand first`);
  }
  // Here, so the op named is the one called (maximum, not max; greater, not the less it calls).
  if (ta.device !== tb.device) throw new Error(`${op}: tensors are on different devices ('${ta.device}' and '${tb.device}'); ${MOVE_TO_DEVICE}`);
  if (shapesEqual(ta.shape, tb.shape)) return [ta, tb];
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  return [broadcastTo(ta, shape), broadcastTo(tb, shape)];
}

/**
 * `body` of a's and b's tensors (numbers made constants, shapes broadcast). Two tensors of one
 * shape need neither, so only the other calls pay for a composite scope that frees them.
 */
function withOperands(op: string, a: Operand, b: Operand, body: (ta: Tensor, tb: Tensor) => Tensor): Tensor {
  if (a instanceof Tensor && b instanceof Tensor && shapesEqual(a.shape, b.shape)) return body(...operands(op, a, b));
  // A number beside a live tensor, outside jit: the constant made by the backend at once (the
  // values, checks and errors of `operands`; a traced program records the full, reshape and expand).
  if (currentDynamicTrace() === null) {
    if (typeof a === 'number' && b instanceof Tensor && !b.isDisposed) {
      checkNumberFits(op, a, b);
      return withNumberOperand(a, b, true, body);
    }
    if (typeof b === 'number' && a instanceof Tensor && !a.isDisposed) {
      checkNumberFits(op, b, a);
      return withNumberOperand(b, a, false, body);
    }
  }
  return composite(() => body(...operands(op, a, b)));
}

function binary(prim: Primitive & ('add' | 'sub' | 'mul' | 'div' | 'pow' | 'less' | 'lessEqual' | 'equal' | 'notEqual'), op: string, a: Operand, b: Operand): Tensor {
  return withOperands(op, a, b, (ta, tb) => apply(prim, [ta, tb], {} as PrimitiveParams[typeof prim]));
}

function unary(prim: UnaryPrimitive, x: Tensor): Tensor {
  checkTensor(prim, x);
  return apply(prim, [x], {});
}

/**
 * The dtype checks of ops built from others, under the op's own name: an int32 mean was refused
 * as 'div: expected float tensors', a bool max as 'reduceMax: ...' and a bool min or abs as
 * 'neg: ...', naming ops the caller never wrote.
 */
function checkFloat(op: string, x: Tensor): void {
  checkTensor(op, x);
  if (!isFloatDType(x.dtype)) throw new TypeError(`${op}: expected a float tensor, got ${x.dtype}`);
}
function checkNumeric(op: string, x: Tensor): void {
  checkTensor(op, x);
  if (x.dtype === 'bool') throw new TypeError(`${op}: expected a numeric tensor, got bool; cast it first`);
}

// Elementwise arithmetic -----------------------------------------------------------------------

/** a + b elementwise; operands broadcast together (NumPy rules), a number takes the tensor's dtype. */
export const add = (a: Operand, b: Operand): Tensor => binary('add', 'add', a, b);
/** a − b elementwise, broadcast as `add`. */
export const sub = (a: Operand, b: Operand): Tensor => binary('sub', 'sub', a, b);
/** a · b elementwise, broadcast as `add`. */
export const mul = (a: Operand, b: Operand): Tensor => binary('mul', 'mul', a, b);
/** a / b elementwise, broadcast as `add` (IEEE division for floats). */
export const div = (a: Operand, b: Operand): Tensor => binary('div', 'div', a, b);
/**
 * a^b elementwise, with Math.pow's special values. A float tensor to the number 2 is computed as
 * a·a, as JAX's integer_pow and PyTorch's pow with exponent 2 are: the same bits as Math.pow(a, 2)
 * (fdlibm's pow returns x·x for y = 2), and a cheaper kernel on every backend (the CPU's
 * WebAssembly kernels have no pow; WebGPU's is within 1 ULP where the product is correctly
 * rounded). Its derivative, g·a + g·a, equals pow's 2a·g (2·(a·g), doubling being exact) wherever
 * 2a stays finite and a·g is not below the normal range: where 2a overflows pow's gives ±∞ and the
 * product's the finite 2·(a·g); among subnormals g·a is rounded before it is doubled.
 */
export const pow = (a: Operand, b: Operand): Tensor => {
  if (b === 2 && a instanceof Tensor && !a.isDisposed && (a.dtype === 'float32' || a.dtype === 'float64')) return mul(a, a);
  return binary('pow', 'pow', a, b);
};
/**
 * max(a, b) elementwise, broadcast as `add`; NaN in either operand gives NaN (as PyTorch). At a
 * tie the gradient is split equally between the operands.
 */
export const maximum = (a: Operand, b: Operand): Tensor => withOperands('maximum', a, b, (ta, tb) => {
  // Checked here so that the error names maximum, not the primitive max.
  if (ta.dtype === 'bool') throw new TypeError('maximum: expected numeric tensors, got bool; cast them first');
  return apply('max', [ta, tb], {});
});
/**
 * The order-reversing involution that `minimum` and `min` are computed through: −x for floats
 * (so NaN propagates as in max, and the derivative is max's); for int32 −1 − x (two's complement
 * ~x), which never overflows, where −x wraps −2³¹ to itself and would make min(−2³¹, 1) = 1.
 */
const reverseOrder = (x: Tensor): Tensor => (x.dtype === 'int32' ? sub(-1, x) : neg(x));

/** min(a, b) = −max(−a, −b) (for int32 through ~x = −1 − x, which cannot overflow). */
export const minimum = (a: Operand, b: Operand): Tensor => composite(() => {
  const [ta, tb] = operands('minimum', a, b);
  if (ta.dtype === 'bool') throw new TypeError('minimum: expected numeric tensors, got bool; cast them first');
  return reverseOrder(apply('max', [reverseOrder(ta), reverseOrder(tb)], {}));
});
/** −x elementwise. */
export const neg = (x: Tensor): Tensor => unary('neg', x);
/** eˣ elementwise. */
export const exp = (x: Tensor): Tensor => unary('exp', x);
/** Natural logarithm elementwise (−∞ at 0, NaN below). */
export const log = (x: Tensor): Tensor => unary('log', x);
/** log(1 + x) elementwise, accurate for |x| ≪ 1. */
export const log1p = (x: Tensor): Tensor => unary('log1p', x);
/** eˣ − 1 elementwise, accurate for |x| ≪ 1. */
export const expm1 = (x: Tensor): Tensor => unary('expm1', x);
/** sin x elementwise (radians). */
export const sin = (x: Tensor): Tensor => unary('sin', x);
/** cos x elementwise (radians). */
export const cos = (x: Tensor): Tensor => unary('cos', x);
/** tanh x elementwise. */
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
/** √x elementwise (NaN below 0). */
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
/** 1/x elementwise. */
export const reciprocal = (x: Tensor): Tensor => unary('reciprocal', x);
/** 1/√x elementwise, as `reciprocal(sqrt(x))`. */
export const rsqrt = (x: Tensor): Tensor => composite(() => {
  checkFloat('rsqrt', x);
  return reciprocal(sqrt(x));
});
/** x² elementwise, as x · x. */
export const square = (x: Tensor): Tensor => {
  checkNumeric('square', x); // under its own name: a bool x was refused as 'mul: ...'
  return mul(x, x);
};
/**
 * |x| elementwise, with abs(−0) = +0 (IEEE 754, as torch.abs and jnp.abs): as
 * where(x < 0, −x, x + 0), the x branch adding 0, which turns −0 into +0 and leaves every other
 * value (NaN, ±∞, int32) as it is. Its derivative at ±0 is 1, the x ≥ 0 branch (as JAX's;
 * PyTorch's is 0).
 */
export const abs = (x: Tensor): Tensor => composite(() => {
  checkNumeric('abs', x);
  return where(less(x, 0), neg(x), add(x, 0));
});
/** σ(x) = 1/(1 + e⁻ˣ), a primitive computed through e^(−|x|): no overflow, accurate for x ≪ 0. */
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
/**
 * softplus(x) = max(x, 0) + log1p(exp(−|x|)): no overflow for large |x| in either direction.
 * Both pieces take the x ≥ 0 branch at 0, so the derivative there is 1 − ½ = ½ = σ(0).
 */
export const softplus = (x: Tensor): Tensor => composite(() => {
  checkFloat('softplus', x);
  const nonNegative = greaterEqual(x, 0);
  return add(where(nonNegative, x, 0), log1p(exp(neg(where(nonNegative, x, neg(x))))));
});
/** SiLU (swish): x·σ(x). */
export const silu = (x: Tensor): Tensor => composite(() => {
  checkFloat('silu', x);
  return mul(x, sigmoid(x));
});
/**
 * max(x, 0), with derivative 0 at 0 and relu(NaN) = NaN (as PyTorch and JAX): the test is x ≤ 0,
 * which NaN fails, so NaN takes the x branch.
 */
export const relu = (x: Tensor): Tensor => composite(() => {
  // Built from a comparison and `where`, which take bool: without the check a bool x went through.
  checkNumeric('relu', x);
  return where(lessEqual(x, 0), 0, x);
});
/** ELU: x for x > 0, α(eᕽ − 1) otherwise; α = 1 as in Clevert et al. (2016). */
export const elu = (x: Tensor, alpha = 1): Tensor => composite(() => {
  checkFloat('elu', x);
  checkNumber('elu', 'alpha', alpha);
  // The inner `where` keeps expm1 from overflowing on the unused branch; minimum(x, 0) did too,
  // but its ½/½ tie split at 0 made elu'(0) = α/2 instead of α (for α = 1 elu is C¹ there).
  const positive = greater(x, 0);
  return where(positive, x, mul(expm1(where(positive, 0, x)), alpha));
});

/**
 * ⌊x⌋, the largest integer ≤ x; ±0, ±∞ and NaN are kept. Float tensors only. The derivative is
 * 0 everywhere, at the integers too (as PyTorch and JAX: the jumps are not differentiated).
 */
export const floor = (x: Tensor): Tensor => unary('floor', x);
/** ⌈x⌉, the smallest integer ≥ x; ±0, ±∞ and NaN are kept. Derivative 0 everywhere (as floor). */
export const ceil = (x: Tensor): Tensor => unary('ceil', x);
/**
 * x rounded to the nearest integer, halves to the even neighbour (round(0.5) = 0, round(1.5) = 2,
 * round(−2.5) = −2: IEEE roundTiesToEven, as torch.round and numpy.round). Derivative 0 everywhere.
 */
export const round = (x: Tensor): Tensor => unary('round', x);
/**
 * sign(x): 1 for x > 0, −1 for x < 0, and x itself for ±0 and NaN (so sign(−0) = −0 and
 * sign(NaN) = NaN, as numpy.sign). Derivative 0 everywhere, at 0 too (as PyTorch and JAX).
 */
export const sign = (x: Tensor): Tensor => unary('sign', x);
/**
 * The error function erf(x) = (2/√π) ∫₀ˣ e^(−t²) dt; d erf(x) = (2/√π) e^(−x²) dx. float64 on
 * the CPU to about 1e-15 absolute; float32 on WebGPU (see the kernels' math library for its bound).
 */
export const erf = (x: Tensor): Tensor => unary('erf', x);

export interface GeluOptions {
  /**
   * 'none' (default, as PyTorch): x·Φ(x) = ½x(1 + erf(x/√2)) exactly. 'tanh': the approximation
   * ½x(1 + tanh(√(2/π)(x + 0.044715x³))) of Hendrycks & Gimpel (2016), as torch's approximate='tanh'.
   */
  approximate?: 'none' | 'tanh';
}

/**
 * GELU, the Gaussian error linear unit x·Φ(x), Φ the standard normal CDF (Hendrycks & Gimpel,
 * 2016). Composed of erf (or tanh) and products, so its derivatives of every order come from
 * theirs: d/dx x·Φ(x) = Φ(x) + x·φ(x). For x ≪ 0 the exact form subtracts nearly equal numbers
 * (1 + erf(x/√2)), so its relative error there grows like that of 1 + erf (as in PyTorch).
 */
export function gelu(x: Tensor, opts: GeluOptions = {}): Tensor {
  return composite(() => {
    checkFloat('gelu', x);
    checkOptions('gelu', opts, ['approximate']);
    const approximate = opts.approximate ?? 'none';
    checkOneOf('gelu', 'approximate', approximate, ['none', 'tanh'] as const);
    const half = mul(x, 0.5);
    if (approximate === 'none') return mul(half, add(erf(mul(x, Math.SQRT1_2)), 1));
    // √(2/π)(x + 0.044715x³) = √(2/π)·x·(1 + 0.044715x²)
    const inner = mul(mul(x, Math.sqrt(2 / Math.PI)), add(mul(mul(x, x), 0.044715), 1));
    return mul(half, add(tanh(inner), 1));
  });
}

/**
 * x limited to [min, max] (either bound may be omitted; bounds are numbers or tensors that
 * broadcast with x): y = max where y > max after y = min where x < min, as torch.clamp.
 * - NaN in x stays NaN; a NaN bound gives NaN (as PyTorch).
 * - Number bounds with min > max are an error; tensor bounds with min > max give max there (as
 *   torch.clamp).
 * - Derivative (PyTorch's convention): ∂y/∂x = 1 where min ≤ x ≤ max (the bounds included), 0
 *   outside; ∂y/∂min = 1 where x < min, ∂y/∂max = 1 where the value exceeds max; all 0 at a NaN
 *   x or bound.
 */
export function clamp(x: Tensor, min?: Operand | null, max?: Operand | null): Tensor {
  return composite(() => {
    // Built from comparisons and `where`, which take bool: without the check a bool x went through.
    checkNumeric('clamp', x);
    const lo = min ?? undefined;
    const hi = max ?? undefined;
    if (lo === undefined && hi === undefined) throw new Error('clamp: expected at least one of min and max, got neither');
    for (const [name, b] of [['min', lo], ['max', hi]] as const) {
      if (b !== undefined && typeof b !== 'number') {
        checkTensor('clamp', b, name);
        // Checked under clamp's name (the less, greater and where it is built from named themselves).
        if (b.dtype !== x.dtype) throw new TypeError(`clamp: ${name} is ${b.dtype} but x is ${x.dtype}; cast one first`);
        if (b.device !== x.device) throw new Error(`clamp: ${name} is on '${b.device}' but x on '${x.device}'; ${MOVE_TO_DEVICE}`);
        broadcastShapes('clamp', x.shape, b.shape);
      }
      // A number bound takes x's dtype (an int32 x and −0.5 were refused as 'less: the number ...').
      if (typeof b === 'number') checkNumberFits('clamp', b, x);
    }
    if (typeof lo === 'number' && typeof hi === 'number' && lo > hi) {
      throw new RangeError(`clamp: min (${lo}) is greater than max (${hi}); expected min <= max`);
    }
    const bounded = (y: Tensor, b: Operand, beyond: (y: Tensor, b: Operand) => Tensor): Tensor => {
      let r = where(beyond(y, b), b, y);
      // A NaN bound propagates: comparisons with NaN are false, so `where` alone would keep y.
      // As a constant NaN, so that neither x nor the bound gets a derivative there (torch.clamp:
      // x < NaN and x ≥ NaN are both false); selecting b sent the bound a derivative of 1.
      if (typeof b !== 'number') r = where(isNaNTensor(b), NaN, r);
      else if (Number.isNaN(b)) r = where(isNaNTensor(r), r, b);
      return r;
    };
    // A NaN x stays NaN as a constant: it failed both bounds' tests and took x's branch, with a
    // derivative of 1 where the documented rule (min ≤ x ≤ max, false for NaN) and torch give 0.
    let y = isFloatDType(x.dtype) ? where(isNaNTensor(x), NaN, x) : x;
    if (lo !== undefined) y = bounded(y, lo, less);
    if (hi !== undefined) y = bounded(y, hi, greater);
    return y;
  });
}

const isNaNTensor = (x: Tensor): Tensor => notEqual(x, x);

// Comparisons and selection ---------------------------------------------------------------------

/** a < b elementwise, broadcast as `add`: a bool tensor (false where either is NaN). */
export const less = (a: Operand, b: Operand): Tensor => binary('less', 'less', a, b);
/** a ≤ b elementwise: a bool tensor (false where either is NaN). */
export const lessEqual = (a: Operand, b: Operand): Tensor => binary('lessEqual', 'lessEqual', a, b);
// a > b is b < a; the operands are checked in the caller's order so errors list them that way.
/** a > b elementwise: a bool tensor (false where either is NaN). */
export const greater = (a: Operand, b: Operand): Tensor => withOperands('greater', a, b, (ta, tb) => apply('less', [tb, ta], {}));
/** a ≥ b elementwise: a bool tensor (false where either is NaN). */
export const greaterEqual = (a: Operand, b: Operand): Tensor => withOperands('greaterEqual', a, b, (ta, tb) => apply('lessEqual', [tb, ta], {}));
/** a = b elementwise: a bool tensor (false where either is NaN). */
export const equal = (a: Operand, b: Operand): Tensor => binary('equal', 'equal', a, b);
/** a ≠ b elementwise: a bool tensor (true where either is NaN). */
export const notEqual = (a: Operand, b: Operand): Tensor => binary('notEqual', 'notEqual', a, b);

/** Elementwise select: `cond ? a : b`, all three broadcast together. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  return composite(() => {
    checkTensor('where', cond, 'condition');
    if (cond.dtype !== 'bool') throw new TypeError(`where: condition must be a bool tensor, got ${cond.dtype}`);
    const [ta, tb] = operands('where', a, b);
    const shape = broadcastShapes('where', cond.shape, ta.shape);
    return apply('where', [broadcastTo(cond, shape), broadcastTo(ta, shape), broadcastTo(tb, shape)], {});
  });
}

// Reductions ------------------------------------------------------------------------------------

/**
 * The reductions take keepdims positionally; an options object in its place (`{ keepdims: false }`,
 * as variance and argmax take it) is truthy and would keep the axes, so anything but a boolean is refused.
 */
function checkKeepdims(op: string, keepdims: unknown): void {
  if (typeof keepdims !== 'boolean') {
    const got = keepdims === null ? 'null' : typeof keepdims === 'object' ? 'an object' : typeof keepdims === 'string' ? JSON.stringify(keepdims) : String(keepdims);
    throw new TypeError(`${op}: keepdims must be true or false, got ${got}; it is the third argument: ${op}(x, axes, true)`);
  }
}

/** max and min have no identity: an empty axis among `axes` has no extreme to give. */
function checkNoEmptyAxis(op: string, x: Tensor, axes: readonly number[]): void {
  const empty = axes.find((a) => x.shape[a] === 0);
  if (empty !== undefined) {
    throw new Error(`${op}: cannot reduce the empty axis ${empty} of ${fmtShape(x.shape)}; expected the reduced axes to have at least one element`);
  }
}

function reduce(prim: 'sum' | 'reduceMax', op: string, x: Tensor, axes: number | readonly number[] | undefined, keepdims: boolean): Tensor {
  checkNumeric(op, x);
  checkKeepdims(op, keepdims);
  const ax = normalizeAxes(op, axes, x.rank);
  if (prim === 'reduceMax') checkNoEmptyAxis(op, x, ax);
  const reduced = () => (ax.length === 0 ? unchanged(x) : apply(prim, [x], { axes: ax }));
  // Only keepdims makes an intermediate (the reduction before its reshape).
  return keepdims ? composite(() => reshape(reduced(), keepdimsShape(x.shape, ax))) : reduced();
}

/**
 * Sum over `axes` (a number or a list; negative from the end; default all), removing them, or
 * keeping them with extent 1 when `keepdims` (default false). An empty axis sums to 0.
 */
export const sum = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => reduce('sum', 'sum', x, axes, keepdims);
/**
 * Largest entry over `axes` (default all), as `sum`; NaN propagates. Ties share the gradient
 * equally. Reducing an empty axis is an error.
 */
export const max = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => reduce('reduceMax', 'max', x, axes, keepdims);
/** Smallest entry over `axes` (default all), as `max`: −max(−x) (for int32 −1 − max(−1 − x), which cannot overflow). */
export const min = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => composite(() => {
  checkNumeric('min', x);
  checkKeepdims('min', keepdims);
  checkNoEmptyAxis('min', x, normalizeAxes('min', axes, x.rank));
  return reverseOrder(max(reverseOrder(x), axes, keepdims));
});

/** Mean over `axes` (default all): `sum(x, axes, keepdims)` divided by the number of entries reduced. */
export function mean(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  return composite(() => {
    // int32 is refused, as torch.mean does (jnp.mean promotes to float; scorch does not promote).
    checkFloat('mean', x);
    checkKeepdims('mean', keepdims);
    const ax = normalizeAxes('mean', axes, x.rank);
    const n = sizeOf(ax.map((a) => x.shape[a]!));
    return div(sum(x, ax, keepdims), n);
  });
}

/** log Σ exp(x), shifted by the (gradient-free) maximum so large inputs do not overflow. */
export function logsumexp(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  return composite(() => {
    checkFloat('logsumexp', x);
    checkKeepdims('logsumexp', keepdims);
    const ax = normalizeAxes('logsumexp', axes, x.rank);
    if (ax.some((a) => x.shape[a] === 0)) {
      // A sum of no terms is 0, so the result is the constant log 0 = −∞ (as torch.logsumexp),
      // with derivative 0, and a softmax along the axis is empty; there is no maximum to shift by.
      return constant(-Infinity, keepdims ? keepdimsShape(x.shape, ax) : x.shape.filter((_, i) => !ax.includes(i)), x.dtype, x.device);
    }
    const m = max(x, ax, true).detach();
    // A non-finite maximum is not subtracted: all −∞ along an axis gives log 0 = −∞, and a +∞ entry
    // gives log ∞ = ∞, where x − m would be −∞ − (−∞) or ∞ − ∞ = NaN. (logSoftmax shifts by m
    // itself: there those NaNs are the answer.)
    const shift = where(isFinite(m), m, 0);
    const r = add(log(sum(exp(sub(x, shift)), ax, true)), shift);
    return keepdims ? r : reshape(r, x.shape.filter((_, i) => !ax.includes(i)));
  });
}

export interface VarianceOptions {
  /** Keep the reduced axes as size 1 (as `sum`'s keepdims); default false. */
  keepdims?: boolean;
  /** Subtracted from the count in the denominator: 0 (default, as NumPy and JAX) or 1 (Bessel). */
  correction?: number;
}

/**
 * Variance over `axes`: Σ(x − mean)² / (n − correction). NaN where n − correction ≤ 0 (no degrees
 * of freedom left: an empty axis, or correction ≥ n), as jnp.var; torch.var divides by
 * max(n − correction, 0) there, giving ∞ for a nonzero sum (and NaN for a zero one).
 */
export function variance(x: Tensor, axes?: number | readonly number[], opts: VarianceOptions = {}): Tensor {
  return composite(() => {
    checkFloat('variance', x);
    checkOptions('variance', opts, ['keepdims', 'correction']);
    const { keepdims = false, correction = 0 } = opts;
    checkBoolean('variance', 'keepdims', keepdims);
    // A negative or NaN correction has no meaning as a count of degrees of freedom.
    checkNumber('variance', 'correction', correction, { min: 0 });
    const ax = normalizeAxes('variance', axes, x.rank);
    const n = sizeOf(ax.map((a) => x.shape[a]!));
    // Dividing by n − correction ≤ 0 would give −0 or a negative variance; the result is a NaN
    // constant, so its derivative is 0 (as jnp.var's `where`).
    if (!(n - correction > 0)) {
      return constant(NaN, keepdims ? keepdimsShape(x.shape, ax) : x.shape.filter((_, i) => !ax.includes(i)), x.dtype, x.device);
    }
    const centred = sub(x, mean(x, ax, true));
    return div(sum(mul(centred, centred), ax, keepdims), n - correction);
  });
}

/** Softmax along `axis` (default last). */
export function softmax(x: Tensor, axis = -1): Tensor {
  checkTensor('softmax', x);
  normalizeAxis('softmax', axis, x.rank); // the error names the op the caller wrote
  checkFloat('softmax', x);
  return composite(() => {
    return exp(logSoftmax(x, axis));
  });
}
/**
 * log softmax(x) along `axis` (default last), computed as (x − m) − log Σ exp(x − m), m the
 * maximum (as PyTorch and JAX): not as x − logsumexp(x), which rounds log Σ into logsumexp's
 * magnitude, so that for |m| ≫ 1 the result lost up to half an ulp of m (all of log 2 for two
 * equal logits of 1e17 in float64, or 1e8 in float32: a softmax of [1, 1]). A row whose maximum
 * is ±∞ is NaN throughout, as PyTorch's and JAX's (logsumexp alone gives ±∞ there).
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkTensor('logSoftmax', x);
  const a = normalizeAxis('logSoftmax', axis, x.rank);
  checkFloat('logSoftmax', x);
  return composite(() => {
    // An empty axis has no maximum to shift by, and the result is empty.
    if (x.shape[a] === 0) return sub(x, logsumexp(x, a, true));
    // Shifted by the maximum itself, infinite or not: ∞ − ∞ and −∞ − (−∞) are NaN, and the NaN
    // reaches the whole row through the sum (logsumexp's shift leaves out an infinite maximum,
    // which gave [NaN, 0, 0] for the softmax of [∞, 0, 0]).
    const shifted = sub(x, max(x, [a], true).detach());
    return sub(shifted, log(sum(exp(shifted), [a], true)));
  });
}

export interface ArgReduceOptions {
  /** Keep the reduced axis with extent 1 (default false, as NumPy and PyTorch). */
  keepdims?: boolean;
}

/**
 * Throws unless every index into `extent` entries fits the int32 result (at most 2^31 - 1):
 * past it the result's store wrapped an index to a negative number (PyTorch returns int64).
 */
function checkIndexable(prim: string, extent: number, what: string): void {
  if (extent - 1 > 2 ** 31 - 1) {
    throw new RangeError(`${prim}: reducing ${what}, indices up to ${extent - 1} do not fit the int32 result (at most 2147483647 = 2^31 - 1); reduce over fewer elements (split the axis by reshape, reduce each part, then combine)`);
  }
}

function argReduce(prim: 'argmax' | 'argmin', x: Tensor, axis: number | undefined, opts: ArgReduceOptions): Tensor {
  return composite(() => {
    checkTensor(prim, x);
    checkOptions(prim, opts, ['keepdims']);
    checkBoolean(prim, 'keepdims', opts.keepdims);
    checkNumeric(prim, x);
    if (axis === undefined) {
      // Over all elements, as torch.argmax(x) and numpy.argmax(x): the index into the flattened x.
      if (x.size === 0) throw new Error(`${prim}: cannot reduce the empty tensor ${fmtShape(x.shape)}`);
      checkIndexable(prim, x.size, `all ${x.size} elements of ${fmtShape(x.shape)}`);
      const r = apply(prim, [reshape(x, [x.size])], { axis: 0 });
      return opts.keepdims ? reshape(r, x.shape.map(() => 1)) : r;
    }
    const a = normalizeAxis(prim, axis, x.rank);
    if (x.shape[a] === 0) throw new Error(`${prim}: cannot reduce the empty axis ${a} of ${fmtShape(x.shape)}`);
    checkIndexable(prim, x.shape[a]!, `axis ${a} of ${fmtShape(x.shape)} (extent ${x.shape[a]})`);
    const r = apply(prim, [x], { axis: a });
    return opts.keepdims ? reshape(r, keepdimsShape(x.shape, [a])) : r;
  });
}

/**
 * The index (int32) of the largest entry along `axis` (all elements, flattened, when omitted).
 * Ties give the first index; NaN counts as larger than every number, so the first NaN's index
 * is returned (as torch.argmax and numpy.argmax). Not differentiable: an int32 result carries no
 * gradient, and anything computed from it gets none through it. An axis (or, flattened, a tensor)
 * of more than 2^31 entries is refused: its indices would not fit the int32 result.
 */
export const argmax = (x: Tensor, axis?: number, opts: ArgReduceOptions = {}): Tensor => argReduce('argmax', x, axis, opts);
/**
 * The index (int32) of the smallest entry along `axis` (all elements, flattened, when omitted);
 * ties give the first index, NaN counts as the smallest (the first NaN wins). As argmax, an axis
 * of more than 2^31 entries is refused.
 */
export const argmin = (x: Tensor, axis?: number, opts: ArgReduceOptions = {}): Tensor => argReduce('argmin', x, axis, opts);

export interface ScanOptions {
  /** Accumulate from the end of the axis: y_i = Σ_{j ≥ i} x_j (default false). */
  reverse?: boolean;
}

function scan(prim: 'cumsum' | 'cumprod', x: Tensor, axis: number, opts: ScanOptions): Tensor {
  checkTensor(prim, x);
  checkOptions(prim, opts, ['reverse']);
  checkBoolean(prim, 'reverse', opts.reverse);
  checkNumeric(prim, x);
  if (typeof axis !== 'number') throw new TypeError(`${prim}: expected an axis (an integer), got ${axis === undefined ? 'none' : typeof axis}`);
  const a = normalizeAxis(prim, axis, x.rank);
  return apply(prim, [x], { axis: a, reverse: opts.reverse ?? false });
}

/**
 * Running sums along `axis`: y_i = Σ_{j ≤ i} x_j (Σ_{j ≥ i} with `reverse`), the shape kept.
 * Its transpose is the running sum in the other direction, so x̄ = reverse-cumsum(ȳ).
 */
export const cumsum = (x: Tensor, axis: number, opts: ScanOptions = {}): Tensor => scan('cumsum', x, axis, opts);
/**
 * Running products along `axis`: y_i = Π_{j ≤ i} x_j. Its derivatives are exact with zeros in x
 * (no division): ∂y_i/∂x_k = Π_{j ≤ i, j ≠ k} x_j, computed through the Hillis–Steele scan.
 */
export const cumprod = (x: Tensor, axis: number, opts: ScanOptions = {}): Tensor => scan('cumprod', x, axis, opts);

// Linear algebra --------------------------------------------------------------------------------

/**
 * Matrix product with NumPy semantics: batch dimensions broadcast; a 1-D operand is a vector
 * (a row on the left, a column on the right) whose axis is removed from the result.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return composite(() => {
    checkTensor('matmul', a, 'first operand');
    checkTensor('matmul', b, 'second operand');
    if (a.rank === 0 || b.rank === 0) throw new Error(`matmul: operands must have rank >= 1, got shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
    if (a.dtype !== b.dtype) throw new TypeError(`matmul: dtype mismatch (${a.dtype} vs ${b.dtype}); cast one operand first`);
    const k1 = a.shape[a.rank - 1]!;
    const k2 = b.rank === 1 ? b.shape[0]! : b.shape[b.rank - 2]!;
    if (k1 !== k2) throw new Error(`matmul: inner dimensions differ (${k1} vs ${k2}) for shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
    const a2 = a.rank === 1 ? reshape(a, [1, k1]) : a;
    const b2 = b.rank === 1 ? reshape(b, [k2, 1]) : b;
    const m = a2.shape[a2.rank - 2]!;
    const n = b2.shape[b2.rank - 1]!;
    let out: Tensor;
    if (b2.rank === 2 && a2.rank > 2) {
      // Fold a's batch into its rows: one large product, and no copies of b per batch entry.
      const batch = a2.shape.slice(0, -2);
      const flat = apply('matmul', [reshape(a2, [sizeOf(batch) * m, k1]), b2], {});
      out = reshape(flat, [...batch, m, n]);
    } else {
      // The label names the operands' full shapes: the batch shapes alone would not say which call failed.
      const what = `matmul (batch dimensions of ${fmtShape(a.shape)} and ${fmtShape(b.shape)})`;
      const batch = broadcastShapes(what, a2.shape.slice(0, -2), b2.shape.slice(0, -2));
      const ax = broadcastTo(a2, [...batch, m, k1]);
      const bx = broadcastTo(b2, [...batch, k1, n]);
      out = apply('matmul', [ax, bx], {});
    }
    if (a.rank === 1 && b.rank === 1) return reshape(out, out.shape.slice(0, -2));
    if (a.rank === 1) return reshape(out, [...out.shape.slice(0, -2), n]);
    if (b.rank === 1) return reshape(out, out.shape.slice(0, -1));
    return out;
  });
}

// Movement --------------------------------------------------------------------------------------

/** Reshape; one entry may be −1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('reshape', x);
  if (!Array.isArray(shape)) throw new TypeError(`reshape: expected the new shape as an array of integers, got ${typeof shape === 'number' ? shape : typeof shape}`);
  if (!everyEntry(shape, (d) => Number.isInteger(d) && (d as number) >= -1)) {
    throw new Error(`reshape: invalid shape ${fmtShape(shape)}; expected non-negative integers and at most one -1`);
  }
  const inferred = shape.indexOf(-1);
  if (shape.lastIndexOf(-1) !== inferred) throw new Error(`reshape: at most one -1 is allowed, got ${fmtShape(shape)}`);
  const target = [...shape];
  if (inferred >= 0) {
    const known = sizeOf(shape.filter((_, i) => i !== inferred));
    if (known === 0) {
      throw new Error(`reshape: cannot infer the -1 in ${fmtShape(shape)}: the other extents multiply to 0, so any extent would fit; give it explicitly`);
    }
    if (x.size % known !== 0) {
      throw new Error(`reshape: cannot infer the -1 in ${fmtShape(shape)}: ${x.size} elements of ${fmtShape(x.shape)} are not a multiple of ${known}`);
    }
    target[inferred] = x.size / known;
  }
  if (shapesEqual(target, x.shape)) return unchanged(x);
  return apply('reshape', [x], { shape: target });
}

/** The axes of x reordered: output axis i is input axis `perm[i]` (negative axes count from the end). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkTensor('permute', x);
  // A number or string failed as 'perm.map is not a function'.
  if (!Array.isArray(perm)) throw new TypeError(`permute: perm must be an array of axes (output axis i is input axis perm[i]), got ${showValue(perm)}`);
  const p = perm.map((a) => normalizeAxis('permute', a, x.rank));
  if (p.every((v, i) => v === i) && p.length === x.rank) return unchanged(x);
  return apply('permute', [x], { perm: p });
}

/** Permutes axes; with no `perm`, swaps the last two (the matrix transpose of a batch). */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  checkTensor('transpose', x);
  if (perm !== undefined && !Array.isArray(perm)) throw new TypeError(`transpose: perm must be an array of axes (output axis i is input axis perm[i]), got ${showValue(perm)}`);
  if (perm) return permute(x, perm);
  if (x.rank < 2) return unchanged(x);
  const p = Array.from({ length: x.rank }, (_, i) => i);
  p[x.rank - 2] = x.rank - 1;
  p[x.rank - 1] = x.rank - 2;
  return permute(x, p);
}

/**
 * A window starting at `begin` of extent `size` per axis (−1: to the end), as tf.slice. `begin`
 * and `size` are arrays of integers of one length, which may cover only the leading axes (the
 * rest are taken whole); a negative begin counts from the end of its axis.
 */
export function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Tensor {
  checkTensor('slice', x);
  // A number (tf.slice's shorthand for the first axis) has no length, so every check below
  // passed and x came back whole: slice(x, 1) and slice(x, 1, 1) returned x unchanged.
  if (!Array.isArray(begin)) throw new TypeError(`slice: begin must be an array of integers (one per leading axis), got ${showValue(begin)}`);
  if (size !== undefined && !Array.isArray(size)) throw new TypeError(`slice: size must be an array of integers (one per entry of begin), got ${showValue(size)}`);
  // Two faults, each named: [0] and [1,1] on a matrix were said not to 'match rank 2', which
  // both lengths do; it is their difference that is wrong.
  if (begin.length > x.rank) throw new Error(`slice: begin ${JSON.stringify(begin)} has ${begin.length} entries, more than the rank ${x.rank} of ${fmtShape(x.shape)}`);
  if (size && size.length !== begin.length) {
    throw new Error(`slice: begin ${JSON.stringify(begin)} and size ${JSON.stringify(size)} differ in length; give one size per entry of begin`);
  }
  const starts = x.shape.map((d, i) => {
    const b = begin[i] ?? 0;
    if (!Number.isInteger(b)) throw new RangeError(`slice: begin ${b} on axis ${i} is invalid; expected an integer (negative counts from the end)`);
    return b < 0 ? b + d : b;
  });
  const ends = x.shape.map((d, i) => {
    const s = size?.[i] ?? -1;
    if (!(Number.isInteger(s) && s >= -1)) {
      throw new RangeError(`slice: size ${s} on axis ${i} is invalid; expected a non-negative extent or -1 (to the end)`);
    }
    return s === -1 ? d : starts[i]! + s;
  });
  starts.forEach((s, i) => {
    if (!(Number.isInteger(s) && s >= 0 && ends[i]! <= x.shape[i]! && s <= ends[i]!)) {
      throw new RangeError(
        `slice: begin ${begin[i] ?? 0} with size ${size?.[i] ?? -1} on axis ${i} selects [${s}, ${ends[i]}), ` +
          `which does not fit extent ${x.shape[i]} of ${fmtShape(x.shape)}`,
      );
    }
  });
  if (starts.every((s) => s === 0) && ends.every((e, i) => e === x.shape[i])) return unchanged(x);
  return apply('slice', [x], { starts, ends });
}

/**
 * `length` entries of `axis` from `start` (negative counts from the end), as torch.narrow:
 * `length` is a count, never slice's −1 for "to the end".
 */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  checkTensor('narrow', x);
  const a = normalizeAxis('narrow', axis, x.rank);
  const extent = x.shape[a]!;
  // Checked here, not left to slice: slice read a length of −1 as "to the end" (narrow(x, 1, 1, -1)
  // returned the rest of the axis, where torch.narrow refuses it), and its errors named slice.
  if (!(Number.isInteger(start) && start >= -extent && start <= extent)) {
    throw new RangeError(`narrow: start ${start} is out of range for axis ${a} of ${fmtShape(x.shape)} (expected an integer in [${-extent}, ${extent}]; negative counts from the end)`);
  }
  const first = start < 0 ? start + extent : start;
  if (!(Number.isInteger(length) && length >= 0 && first + length <= extent)) {
    throw new RangeError(
      `narrow: length ${length} from start ${start} does not fit axis ${a} of ${fmtShape(x.shape)} (expected an integer in [0, ${extent - first}])`,
    );
  }
  const begin = x.shape.map((_, i) => (i === a ? first : 0));
  const size = x.shape.map((d, i) => (i === a ? length : d));
  return slice(x, begin, size);
}

/** Zero padding: `widths[i] = [before, after]` for each axis, non-negative integers. */
export function pad(x: Tensor, widths: ReadonlyArray<readonly [number, number]>): Tensor {
  checkTensor('pad', x);
  // A number said 'expected 2 pairs, got undefined'; a pair with an entry missing showed it as null.
  if (!Array.isArray(widths)) throw new TypeError(`pad: widths must be an array of [before, after] pairs, one per axis, got ${showValue(widths)}`);
  if (widths.length !== x.rank) throw new Error(`pad: expected ${x.rank} [before, after] pairs for ${fmtShape(x.shape)}, got ${widths.length}`);
  widths.forEach((w, i) => {
    if (!Array.isArray(w) || w.length !== 2) throw new TypeError(`pad: widths[${i}] is ${showValue(w)}; expected a [before, after] pair for axis ${i}`);
  });
  const before = widths.map((w) => w[0]);
  const after = widths.map((w) => w[1]);
  if ([...before, ...after].every((w) => w === 0)) return unchanged(x);
  return apply('pad', [x], { before, after });
}

/** Tensors of one dtype and device joined along `axis` (default 0); every other extent must match. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new Error('concat: expected a non-empty array of tensors');
  tensors.forEach((t, i) => checkTensor('concat', t, `tensor ${i}`));
  const first = tensors[0]!;
  const a = normalizeAxis('concat', axis, first.rank);
  for (const t of tensors) {
    if (t.rank !== first.rank) throw new Error(`concat: ranks differ (${tensors.map((v) => fmtShape(v.shape)).join(', ')})`);
  }
  if (tensors.length === 1) return unchanged(first);
  return apply('concat', tensors, { axis: a });
}

/**
 * The pieces of `split(x, sections)`: a tuple with one Tensor per size for a list literal of
 * sizes, or with n Tensors for a literal count n from 1 to 8; `Tensor[]` otherwise.
 */
export type SplitPieces<S extends number | readonly number[]> =
  S extends readonly number[] ? { -readonly [K in keyof S]: Tensor } :
  number extends S ? Tensor[] :
  S extends 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 ? TensorTuple<S> : Tensor[];

/** A tuple of N Tensors (N a small literal). */
type TensorTuple<N extends number, T extends Tensor[] = []> = T['length'] extends N ? T : TensorTuple<N, [...T, Tensor]>;

/**
 * Splits `x` along `axis` (default 0) into consecutive pieces: a number is how many pieces of
 * equal extent (which must divide the axis, as numpy.split), an array the extent of each piece
 * (which must sum to the axis, as torch.split with a list). Each piece is a slice, so gradients
 * and batching come from slice's. Typed as a tuple of the pieces for literal sections
 * (`const [a, b] = split(x, [2, 4])`), see SplitPieces.
 */
export function split<const S extends number | readonly number[]>(x: Tensor, sections: S, axis?: number): SplitPieces<S>;
export function split(x: Tensor, sections: number | readonly number[], axis = 0): Tensor[] {
  checkTensor('split', x);
  const a = normalizeAxis('split', axis, x.rank);
  const extent = x.shape[a]!;
  let sizes: number[];
  if (typeof sections === 'number') {
    if (!(Number.isInteger(sections) && sections >= 1)) throw new RangeError(`split: the number of pieces must be a positive integer, got ${sections}`);
    if (extent % sections !== 0) {
      throw new RangeError(`split: axis ${a} of ${fmtShape(x.shape)} has extent ${extent}, which does not divide into ${sections} equal pieces; pass the sizes instead`);
    }
    sizes = new Array<number>(sections).fill(extent / sections);
  } else {
    if (!Array.isArray(sections) || sections.length === 0) throw new TypeError('split: expected a number of pieces or a non-empty array of sizes');
    sections.forEach((n, i) => {
      if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`split: size ${n} at position ${i} is invalid; expected a non-negative integer`);
    });
    const total = sections.reduce((p, n) => p + n, 0);
    if (total !== extent) {
      throw new RangeError(`split: sizes ${JSON.stringify(sections)} sum to ${total}, but axis ${a} of ${fmtShape(x.shape)} has extent ${extent}`);
    }
    sizes = [...sections];
  }
  let start = 0;
  return sizes.map((n) => {
    const piece = narrow(x, a, start, n);
    start += n;
    return piece;
  });
}

/**
 * Reverses the order of entries along each of `axes` (all axes when omitted), as torch.flip and
 * numpy.flip. A gather with reversed indices per axis: its transpose is the same reversal.
 */
export function flip(x: Tensor, axes?: number | readonly number[]): Tensor {
  return composite(() => {
    checkTensor('flip', x);
    if (axes !== undefined && typeof axes !== 'number' && !Array.isArray(axes)) throw new TypeError(`flip: axes must be an axis or an array of axes, got ${showValue(axes)}`);
    const ax = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [normalizeAxis('flip', axes, x.rank)] : axes.map((a) => normalizeAxis('flip', a, x.rank));
    if (new Set(ax).size !== ax.length) throw new Error(`flip: axes ${JSON.stringify(axes)} name an axis twice`);
    // A broadcast view too large to copy is refused under flip's name (not the gather it runs).
    if (ax.some((a) => x.shape[a]! > 1)) assertAllocatable(x.shape, 'flip');
    let y = x;
    for (const a of ax) {
      const n = x.shape[a]!;
      if (n <= 1) continue;
      y = indexSelect(y, a, Array.from({ length: n }, (_, i) => n - 1 - i));
    }
    return y;
  });
}

/**
 * `x` repeated `reps[i]` times along each axis, as torch.tile and numpy.tile: with fewer reps
 * than axes, the leading axes get 1; with more, x gains leading axes of extent 1. A reshape,
 * an expand and a reshape, so the gradient sums over the copies (expand's transpose).
 */
export function tile(x: Tensor, reps: readonly number[]): Tensor {
  return composite(() => {
    checkTensor('tile', x);
    if (!Array.isArray(reps)) throw new TypeError(`tile: reps must be an array of non-negative integers, got ${typeof reps}`);
    reps.forEach((r, i) => {
      if (!(Number.isInteger(r) && r >= 0)) throw new RangeError(`tile: reps[${i}] = ${r} is invalid; expected a non-negative integer`);
    });
    const rank = Math.max(x.rank, reps.length);
    const shape = [...new Array<number>(rank - x.rank).fill(1), ...x.shape];
    const r = [...new Array<number>(rank - reps.length).fill(1), ...reps];
    // Refused under tile's name before the reshapes (whose own check named reshape).
    assertAllocatable(shape.map((d, i) => d * r[i]!), 'tile');
    const lifted = reshape(x, shape.flatMap((d) => [1, d]));
    const expanded = broadcastTo(lifted, shape.flatMap((d, i) => [r[i]!, d]));
    return reshape(expanded, shape.map((d, i) => d * r[i]!));
  });
}

/** Tensors of one shape, dtype and device stacked along a new axis `axis` (default 0). */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  return composite(() => {
    if (!Array.isArray(tensors) || tensors.length === 0) throw new Error('stack: expected a non-empty array of tensors');
    const first = tensors[0]!;
    for (const t of tensors) {
      checkTensor('stack', t);
      if (!shapesEqual(t.shape, first.shape)) throw new Error(`stack: shapes differ (${tensors.map((v) => fmtShape(v.shape)).join(', ')})`);
      // Checked here so that the errors name stack, not the concat it is built from.
      if (t.dtype !== first.dtype) throw new TypeError(`stack: dtype mismatch (${tensors.map((v) => v.dtype).join(' vs ')}); cast one operand first`);
      if (t.device !== first.device) throw new Error(`stack: tensors are on different devices ('${first.device}' and '${t.device}'); move one first`);
    }
    const a = insertionAxis('stack', axis, first.rank);
    // Before the unsqueezes, which copy a broadcast view densely: the size check came after them.
    const stacked = [...first.shape];
    stacked.splice(a, 0, tensors.length);
    assertAllocatable(stacked, 'stack');
    return concat(tensors.map((t) => unsqueeze(t, a)), a);
  });
}

/** Position of a new axis inserted into a tensor of `rank` (negative counts from rank + 1). */
function insertionAxis(op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -(rank + 1) || axis > rank) {
    throw new RangeError(`${op}: axis ${showValue(axis)} is out of range for inserting an axis into a tensor of rank ${rank} (expected an integer in [${-(rank + 1)}, ${rank}])`);
  }
  return axis < 0 ? axis + rank + 1 : axis;
}

/** x with a new axis of extent 1 inserted at `axis` (negative: counted from the end of the result). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  checkTensor('unsqueeze', x);
  const a = insertionAxis('unsqueeze', axis, x.rank);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

/** Removes size-1 axes (all of them, or those named). */
export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  checkTensor('squeeze', x);
  const ax = axes === undefined ? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : normalizeAxes('squeeze', axes, x.rank);
  for (const a of ax) if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${a} of ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => !ax.includes(i)));
}

/** Rows (entries of `axis`) at the given int32 indices, in order; repeats allowed. */
export function indexSelect(x: Tensor, axis: number, indices: Tensor | readonly number[]): Tensor {
  return composite(() => {
    checkTensor('indexSelect', x);
    const a = normalizeAxis('indexSelect', axis, x.rank);
    let idx: Tensor;
    if (indices instanceof Tensor) {
      // Under its own name: a disposed index tensor said 'gather: tensor [1] int32 was disposed'.
      checkTensor('indexSelect', indices, 'indices');
      idx = indices;
    } else {
      // A number failed as 'indices.forEach is not a function'.
      if (!Array.isArray(indices) && !(ArrayBuffer.isView(indices) && !(indices instanceof DataView))) {
        throw new TypeError(`indexSelect: indices must be an int32 tensor or an array of integers, got ${showValue(indices)}`);
      }
      // Host indices are checked here, where the error can name the call; indices already on a
      // device are checked by the backend.
      const extent = x.shape[a]!;
      indices.forEach((i, pos) => {
        if (!Number.isInteger(i)) throw new TypeError(`indexSelect: indices must be integers, got ${i} at position ${pos}`);
        if (i < 0 || i >= extent) {
          throw new RangeError(`indexSelect: index ${i} at position ${pos} is out of range for axis ${a} of ${fmtShape(x.shape)} (expected 0 <= index < ${extent})`);
        }
      });
      const backend = getBackend(x.device);
      idx = Tensor._fromHandle(backend.upload(Int32Array.from(indices), [indices.length], 'int32'), [indices.length], 'int32', backend);
    }
    if (idx.dtype !== 'int32' || idx.rank !== 1) throw new TypeError(`indexSelect: indices must be a 1-D int32 tensor, got ${idx.dtype} ${fmtShape(idx.shape)}`);
    // Under its own name: the primitive's check said 'gather: tensors are on different devices'.
    if (idx.device !== x.device) throw new Error(`indexSelect: the indices are on '${idx.device}' and x on '${x.device}'; move the indices to x's device first`);
    return apply('gather', [x, idx], { axis: a });
  });
}

/**
 * x converted to `dtype` by the rules of docs/conventions.md ("Casts between dtypes"); when it has
 * that dtype already, a new tensor of its values (a view, as an unchanged reshape gives: `unchanged`).
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkTensor('cast', x);
  if (x.dtype === dtype) return unchanged(x);
  return apply('cast', [x], { dtype });
}

/** Zeros of `x`'s shape, dtype and device. */
export function zerosLike(x: Tensor): Tensor {
  checkTensor('zerosLike', x);
  return constant(0, x.shape, x.dtype, x.device);
}

/** Ones of `x`'s shape, dtype and device. */
export function onesLike(x: Tensor): Tensor {
  checkTensor('onesLike', x);
  return constant(1, x.shape, x.dtype, x.device);
}

/**
 * True where floats are neither infinite nor NaN; every int32 and bool element is finite (as
 * torch.isfinite and jnp.isfinite). The float test is |x| < ∞, which NaN fails.
 */
export function isFinite(x: Tensor): Tensor {
  return composite(() => {
    checkTensor('isFinite', x);
    // Not |x| < ∞ for int32: ∞ converts to 2³¹ − 1, so 2³¹ − 1 itself came out not finite.
    if (!isFloatDType(x.dtype)) return constant(1, x.shape, 'bool', x.device);
    return less(abs(x), Infinity);
  });
}

