// Elementwise semantics, once for every backend (DESIGN.md: "one expression table per op that
// every backend generates from"). Each elementwise op, each cast and each reduction's combining
// step is a small expression tree over its operands and a few named math functions; a backend
// renders the trees into its own language: WGSL in @scorch/kernels, JavaScript in the CPU
// backend. What an op means (NaN propagation of max, the cast rule of docs/conventions.md, what
// a comparison stores) is therefore written here and nowhere else; how a math function is
// computed (Math.exp, or a float32 routine in WGSL) is the renderer's business.
//
// Values are typed by DType. Conditions (comparisons, NaN tests, `or`) are not values: they feed
// `select`, or become a stored bool through `condition`. Renderers compute in the backend's
// arithmetic; rounding each result to its dtype (float32 on the CPU, whose numbers are doubles)
// is the renderer's job too, so a chain of ops rounds exactly as the ops run one by one do.

import type { DType } from './dtype.js';
import {
  type ArgReducePrimitive, BINARY_PRIMITIVES, type BinaryPrimitive, COMPARE_PRIMITIVES, type ComparePrimitive, type ReducePrimitive,
  type ScanPrimitive, UNARY_PRIMITIVES, type UnaryPrimitive,
} from './primitives.js';

/** Every op an elementwise kernel applies: the elementwise primitives, and a plain copy. */
export type ElementwiseOp = UnaryPrimitive | BinaryPrimitive | ComparePrimitive | 'where' | 'copy';

/** Every `ElementwiseOp`, as a list. */
export const ELEMENTWISE_OPS: readonly ElementwiseOp[] = [...UNARY_PRIMITIVES, ...BINARY_PRIMITIVES, ...COMPARE_PRIMITIVES, 'where', 'copy'];

/**
 * Named math functions, each with its float meaning (`max` only for integers: floats spell out
 * NaN). `roundEven` rounds halves to the even neighbour (IEEE roundTiesToEven); `erf` is the
 * error function.
 */
export type MathFunction =
  | 'exp' | 'log' | 'sin' | 'cos' | 'sqrt' | 'tanh' | 'log1p' | 'expm1' | 'sigmoid' | 'pow' | 'max'
  | 'floor' | 'ceil' | 'roundEven' | 'erf';

export type ArithmeticOp = '+' | '-' | '*' | '/';
export type CompareOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

export type Expr =
  /** The value of operand `index`, of dtype `dtype`. */
  | { readonly kind: 'operand'; readonly index: number; readonly dtype: DType }
  /** A constant of `dtype` (already a value that dtype holds, e.g. by `storedValue`). */
  | { readonly kind: 'literal'; readonly value: number; readonly dtype: DType }
  | { readonly kind: 'negate'; readonly arg: Expr; readonly dtype: DType }
  /** Integer arithmetic wraps modulo 2³² (int32 `*` is a 32-bit multiply, not a rounded double). */
  | { readonly kind: 'arithmetic'; readonly op: ArithmeticOp; readonly a: Expr; readonly b: Expr; readonly dtype: DType }
  | { readonly kind: 'call'; readonly fn: MathFunction; readonly args: readonly Expr[]; readonly dtype: DType }
  /** A condition: a comparison of two values. */
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly a: Expr; readonly b: Expr }
  /** A condition: the value is NaN. */
  | { readonly kind: 'isNaN'; readonly arg: Expr }
  /** A condition: either condition holds. */
  | { readonly kind: 'or'; readonly a: Expr; readonly b: Expr }
  /** `ifTrue` where the condition holds, else `ifFalse` (both of `dtype`). */
  | { readonly kind: 'select'; readonly cond: Expr; readonly ifTrue: Expr; readonly ifFalse: Expr; readonly dtype: DType }
  /** A condition as a stored bool: 1 or 0. */
  | { readonly kind: 'condition'; readonly cond: Expr }
  /**
   * An in-range value converted to `dtype`: float to int32 truncates toward zero (the cast rule
   * handles the rest), int32 to float32 rounds to nearest, bool to a number is 0 or 1.
   */
  | { readonly kind: 'convert'; readonly arg: Expr; readonly dtype: DType };

const operand = (index: number, dtype: DType): Expr => ({ kind: 'operand', index, dtype });
const literal = (value: number, dtype: DType): Expr => ({ kind: 'literal', value, dtype });
const call = (fn: MathFunction, args: readonly Expr[], dtype: DType): Expr => ({ kind: 'call', fn, args, dtype });
const arithmetic = (op: ArithmeticOp, a: Expr, b: Expr, dtype: DType): Expr => ({ kind: 'arithmetic', op, a, b, dtype });
const compare = (op: CompareOp, a: Expr, b: Expr): Expr => ({ kind: 'compare', op, a, b });
const select = (cond: Expr, ifTrue: Expr, ifFalse: Expr, dtype: DType): Expr => ({ kind: 'select', cond, ifTrue, ifFalse, dtype });

const isFloat = (d: DType) => d === 'float32' || d === 'float64';

/**
 * max(a, b) as the primitive defines it: for floats NaN from either side propagates (a NaN `a`
 * is chosen by the test, a NaN `b` because `a > NaN` is false); integers take the plain maximum.
 */
function maxExpr(a: Expr, b: Expr, dtype: DType): Expr {
  if (!isFloat(dtype)) return call('max', [a, b], dtype);
  return select({ kind: 'or', a: compare('>', a, b), b: { kind: 'isNaN', arg: a } }, a, b, dtype);
}

const UNARY_FUNCTIONS: Partial<Record<ElementwiseOp, MathFunction>> = {
  exp: 'exp', log: 'log', sin: 'sin', cos: 'cos', sqrt: 'sqrt', tanh: 'tanh', log1p: 'log1p', expm1: 'expm1', sigmoid: 'sigmoid',
  floor: 'floor', ceil: 'ceil', round: 'roundEven', erf: 'erf',
};
const ARITHMETIC: Partial<Record<ElementwiseOp, ArithmeticOp>> = { add: '+', sub: '-', mul: '*', div: '/' };
const COMPARISONS: Partial<Record<ElementwiseOp, CompareOp>> = { less: '<', lessEqual: '<=', equal: '==', notEqual: '!=' };

/**
 * The expression of `op` over operands of dtype `dtype` (for `where`, the dtype of its two value
 * operands; its condition, operand 0, is bool). Comparisons give a bool, every other op `dtype`.
 */
export function elementwiseExpression(op: ElementwiseOp, dtype: DType): Expr {
  const a = operand(op === 'where' ? 1 : 0, dtype);
  const b = operand(op === 'where' ? 2 : 1, dtype);
  const fn = UNARY_FUNCTIONS[op];
  if (fn) return call(fn, [a], dtype);
  const arith = ARITHMETIC[op];
  if (arith) return arithmetic(arith, a, b, dtype);
  const cmp = COMPARISONS[op];
  if (cmp) return { kind: 'condition', cond: compare(cmp, a, b) };
  switch (op) {
    case 'neg':
      return { kind: 'negate', arg: a, dtype };
    case 'reciprocal':
      return arithmetic('/', literal(1, dtype), a, dtype);
    case 'max':
      return maxExpr(a, b, dtype);
    case 'pow':
      return call('pow', [a, b], dtype);
    case 'sign':
      // ±0 and NaN fail both tests and come out as themselves.
      return select(compare('>', a, literal(0, dtype)), literal(1, dtype), select(compare('<', a, literal(0, dtype)), literal(-1, dtype), a, dtype), dtype);
    case 'where':
      return select(compare('!=', operand(0, 'bool'), literal(0, 'bool')), a, b, dtype);
    case 'copy':
      return a;
  }
  throw new Error(`internal: no expression for elementwise op '${op}'`);
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * The conversion of operand 0 from `from` to `to` by the one cast rule (docs/conventions.md, and
 * `storedValue` in dtype.ts for host numbers): to bool is x ≠ 0 (NaN is nonzero); a float to
 * int32 truncates toward zero, saturates to [−2³¹, 2³¹ − 1] and takes NaN to 0; int32 to float32
 * and float64 to float32 round to nearest; bool to a number is 0 or 1.
 */
export function castExpression(from: DType, to: DType): Expr {
  const a = operand(0, from);
  if (from === to) return a;
  if (to === 'bool') {
    const nonzero = compare('!=', a, literal(0, from));
    return { kind: 'condition', cond: isFloat(from) ? { kind: 'or', a: nonzero, b: { kind: 'isNaN', arg: a } } : nonzero };
  }
  if (isFloat(from) && to === 'int32') {
    const inRange = select(compare('>=', a, literal(2 ** 31, from)), literal(INT32_MAX, to), { kind: 'convert', arg: a, dtype: to }, to);
    const saturated = select(compare('<', a, literal(-(2 ** 31), from)), literal(INT32_MIN, to), inRange, to);
    return select({ kind: 'isNaN', arg: a }, literal(0, to), saturated, to);
  }
  return { kind: 'convert', arg: a, dtype: to };
}

/**
 * One step of a reduction: the accumulator (operand 0) combined with the next element (operand
 * 1). max keeps the running value unless the element is larger or NaN, so NaN propagates and,
 * once in, stays (max(element, accumulator) of the elementwise table).
 */
export function reduceCombineExpression(op: ReducePrimitive, dtype: DType): Expr {
  const acc = operand(0, dtype);
  const x = operand(1, dtype);
  if (op === 'sum') return arithmetic('+', acc, x, dtype);
  return isFloat(dtype) ? maxExpr(x, acc, dtype) : call('max', [acc, x], dtype);
}

/** The value a reduction starts from: 0 for a sum, the smallest value of the dtype for max. */
export function reduceIdentity(op: ReducePrimitive, dtype: DType): number {
  if (op === 'sum') return 0;
  return isFloat(dtype) ? -Infinity : dtype === 'int32' ? INT32_MIN : 0;
}

/**
 * One step of a scan: the running value (operand 0) combined with the next element (operand 1).
 * The identity the scan starts from is 0 for cumsum and 1 for cumprod (`scanIdentity`).
 */
export function scanCombineExpression(op: ScanPrimitive, dtype: DType): Expr {
  return arithmetic(op === 'cumsum' ? '+' : '*', operand(0, dtype), operand(1, dtype), dtype);
}

/** The value a scan starts from: 0 for cumsum, 1 for cumprod. */
export function scanIdentity(op: ScanPrimitive): number {
  return op === 'cumsum' ? 0 : 1;
}

/**
 * The condition under which an arg-reduction replaces its best value so far (operand 0) by the
 * next element (operand 1), walking the axis in increasing index from element 0: a strictly
 * better element (so ties keep the first index), or a NaN, which counts as the extreme (as
 * PyTorch and NumPy). Kernels stop at the first NaN they take, so the first NaN wins.
 */
export function argReplaceCondition(op: ArgReducePrimitive, dtype: DType): Expr {
  const best = operand(0, dtype);
  const x = operand(1, dtype);
  const better = compare(op === 'argmax' ? '>' : '<', x, best);
  return isFloat(dtype) ? { kind: 'or', a: better, b: { kind: 'isNaN', arg: x } } : better;
}

/** The expressions `e` is made of, directly (none for an operand or a literal). */
export function subexpressions(e: Expr): readonly Expr[] {
  switch (e.kind) {
    case 'operand':
    case 'literal':
      return [];
    case 'negate':
    case 'isNaN':
    case 'convert':
      return [e.arg];
    case 'condition':
      return [e.cond];
    case 'call':
      return e.args;
    case 'select':
      return [e.cond, e.ifTrue, e.ifFalse];
    case 'arithmetic':
    case 'compare':
    case 'or':
      return [e.a, e.b];
  }
}

/** Whether `e` or one of the expressions it is made of, at any depth, satisfies `test`. */
export function containsExpr(e: Expr, test: (x: Expr) => boolean): boolean {
  return test(e) || subexpressions(e).some((x) => containsExpr(x, test));
}

/** The dtype of an expression's value; null for a condition. */
export function expressionDType(e: Expr): DType | null {
  switch (e.kind) {
    case 'compare':
    case 'isNaN':
    case 'or':
      return null;
    case 'condition':
      return 'bool';
    default:
      return e.dtype;
  }
}
