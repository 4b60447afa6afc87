// JavaScript from the expression table (../expression.ts): what the CPU backend's generated
// kernels are made of. Expressions compute in doubles, as JavaScript does; `rounded` then takes
// a result to what its dtype holds (Math.fround for float32, a 32-bit wrap for int32), which is
// exactly what a store into a Float32Array or Int32Array does. So a fused chain that rounds every
// op's value gives bit for bit the values of the same ops run one by one through stored arrays.
//
// Generated functions are built once per source text with `new Function` and cached: callers
// compute a key from the structure they generate for (op, dtypes, layout) before building any
// source, so a cache hit costs a Map lookup.

import { type DType, storedValue } from '../dtype.js';
import { type ElementwiseOp, type Expr, castExpression, elementwiseExpression, expressionDType } from '../expression.js';
import { indexOutOfRange } from '../primitives.js';

/** The logistic function σ(x) = 1/(1 + e⁻ˣ) through e^(−|x|) ∈ (0, 1]: no overflow, full relative accuracy for x ≪ 0. */
function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/** What generated code may call besides Math: bound as constants at the top of every generated module. */
const HELPERS = { sigmoid, indexOutOfRange };
const PRELUDE = `"use strict";\nconst { ${Object.keys(HELPERS).join(', ')} } = H;\n`;

/** A number literal of `dtype` (the value that dtype holds) as JavaScript source. */
export function jsLiteral(value: number, dtype: DType): string {
  let v = storedValue(value, dtype);
  if (dtype === 'float32') v = Math.fround(v);
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '(-Infinity)';
  if (Object.is(v, -0)) return '(-0)';
  return v < 0 ? `(${v})` : String(v);
}

function render(e: Expr, args: readonly string[]): string {
  switch (e.kind) {
    case 'operand':
      return args[e.index]!;
    case 'literal':
      return jsLiteral(e.value, e.dtype);
    case 'negate':
      return `(-${render(e.arg, args)})`;
    case 'arithmetic': {
      const a = render(e.a, args);
      const b = render(e.b, args);
      // A 32-bit product: a double product of two large int32s loses the low bits.
      if (e.op === '*' && e.dtype === 'int32') return `Math.imul(${a}, ${b})`;
      return `(${a} ${e.op} ${b})`;
    }
    case 'call': {
      const a = e.args.map((x) => render(x, args));
      if (e.fn === 'sigmoid') return `sigmoid(${a[0]})`;
      return `Math.${e.fn}(${a.join(', ')})`;
    }
    case 'compare': {
      const op = e.op === '==' ? '===' : e.op === '!=' ? '!==' : e.op;
      return `(${render(e.a, args)} ${op} ${render(e.b, args)})`;
    }
    case 'isNaN': {
      const a = render(e.arg, args);
      return `(${a} !== ${a})`;
    }
    case 'or':
      return `(${render(e.a, args)} || ${render(e.b, args)})`;
    case 'select':
      return `(${render(e.cond, args)} ? ${render(e.ifTrue, args)} : ${render(e.ifFalse, args)})`;
    case 'condition':
      return `(${render(e.cond, args)} ? 1 : 0)`;
    case 'convert': {
      const from = expressionDType(e.arg);
      const a = render(e.arg, args);
      // Float to int32 (the cast rule has already handled NaN and the range): truncate.
      return e.dtype === 'int32' && (from === 'float32' || from === 'float64') ? `Math.trunc(${a})` : a;
    }
  }
}

/** True when `e`, on operands that hold values of their dtypes, computes a value its dtype holds. */
function exact(e: Expr): boolean {
  switch (e.kind) {
    case 'operand':
    case 'literal':
    case 'condition':
      return true;
    case 'negate':
      return e.dtype !== 'int32' && exact(e.arg);
    case 'select':
      return exact(e.ifTrue) && exact(e.ifFalse);
    case 'call':
      return e.fn === 'max' && e.args.every(exact);
    case 'convert': {
      const from = expressionDType(e.arg);
      if (e.dtype === 'float32') return from === 'bool' || from === 'float32';
      return true;
    }
    default:
      return false;
  }
}

/** `code`, a double, as the value `dtype` holds: what storing it into that dtype's array gives. */
export function rounded(code: string, dtype: DType): string {
  if (dtype === 'float32') return `Math.fround(${code})`;
  if (dtype === 'int32') return `(${code} | 0)`;
  return code;
}

/** `e` over operand sources `args` as JavaScript, rounded to its dtype unless the store will do it. */
export function renderJs(e: Expr, args: readonly string[], round = true): string {
  const code = render(e, args);
  const dtype = expressionDType(e) ?? 'bool';
  return round && !exact(e) ? rounded(code, dtype) : code;
}

/** An elementwise op over operands of `dtype` (for `where`, its value operands'), as JavaScript. */
export function jsElementwise(op: ElementwiseOp, dtype: DType, args: readonly string[], round = true): string {
  return renderJs(elementwiseExpression(op, dtype), args, round);
}

/** A cast by the one rule (`storedValue`), as JavaScript. */
export function jsCast(from: DType, to: DType, arg: string, round = true): string {
  return renderJs(castExpression(from, to), [arg], round);
}

const built = new Map<string, unknown>();
/** Sources kept; the oldest are dropped beyond (a program compiled again rebuilds them). */
const BUILT_LIMIT = 4096;

/**
 * The function that `source` (a function expression) evaluates to, with the helpers in scope;
 * built once per distinct source.
 */
export function buildFunction<F>(source: string): F {
  let f = built.get(source);
  if (f === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    f = new Function('H', `${PRELUDE}return ${source};`)(HELPERS) as unknown;
    built.set(source, f);
    if (built.size > BUILT_LIMIT) built.delete(built.keys().next().value!);
  }
  return f as F;
}

/** Generated functions built so far (for tests that check the caches work). */
export function builtFunctionCount(): number {
  return built.size;
}
