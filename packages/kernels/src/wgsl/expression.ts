// WGSL from @scorch/tensor's expression trees: the one table of elementwise semantics rendered
// as WGSL over the math prelude (sc_exp, sc_isnan, ...: float32 routines with stated accuracy).
// Operand strings are `let` names, loads or literals, used as they are; everything the renderer
// builds itself is parenthesised where WGSL's precedence would otherwise regroup it.

import type { DType, Expr, MathFunction } from '@scorch/tensor';
import { F32_NAN, F32_NEG_INF, F32_POS_INF, I32_MIN, type WgslScalar, wgslType } from './common.js';

/** The dtype whose WGSL storage type is `type` (the inverse of `wgslType`). */
export function dtypeOfWgsl(type: WgslScalar): DType {
  return type === 'f32' ? 'float32' : type === 'i32' ? 'int32' : 'bool';
}

const FUNCTIONS: Record<MathFunction, string> = {
  exp: 'sc_exp', log: 'sc_log', sin: 'sc_sin', cos: 'sc_cos', sqrt: 'sqrt', tanh: 'sc_tanh', log1p: 'sc_log1p', expm1: 'sc_expm1',
  sigmoid: 'sc_sigmoid', pow: 'sc_pow', max: 'max',
  // WGSL's round takes halves to the even neighbour, as roundEven means.
  floor: 'floor', ceil: 'ceil', roundEven: 'round', erf: 'sc_erf',
};

/** A constant of `dtype` as WGSL writes it (non-finite floats through the prelude's helpers). */
export function wgslLiteral(value: number, dtype: DType): string {
  switch (dtype) {
    case 'bool':
      return value ? '1u' : '0u';
    case 'int32':
      return value === -(2 ** 31) ? I32_MIN : `${value}i`;
    default: {
      const f = Math.fround(value);
      if (Number.isNaN(f)) return F32_NAN;
      if (f === Infinity) return F32_POS_INF;
      if (f === -Infinity) return F32_NEG_INF;
      if (Number.isInteger(f) && !Object.is(f, -0) && Math.abs(f) < 2 ** 53) return `${f}.0`;
      const bits = new Uint32Array(new Float32Array([f]).buffer)[0]!;
      return `bitcast<f32>(0x${bits.toString(16)}u)`;
    }
  }
}

/** Binding strength of what `render` returns: operands and calls bind tightest. */
const ATOM = 10;
const PRECEDENCE = { negate: 9, '*': 8, '/': 8, '+': 7, '-': 7, compare: 5, or: 3 } as const;

/** How a renderer writes a constant (`wgslLiteral`, or a generator's own, e.g. opaque). */
export type WgslLiteralWriter = (value: number, dtype: DType) => string;

function render(e: Expr, args: readonly string[], literal: WgslLiteralWriter): { code: string; prec: number } {
  const render_ = (x: Expr) => render(x, args, literal);
  const sub = (x: Expr, min: number) => {
    const r = render_(x);
    return r.prec > min ? r.code : `(${r.code})`;
  };
  switch (e.kind) {
    case 'operand':
      return { code: args[e.index]!, prec: ATOM };
    case 'literal':
      return { code: literal(e.value, e.dtype), prec: ATOM };
    case 'negate':
      return { code: `-${sub(e.arg, PRECEDENCE.negate)}`, prec: PRECEDENCE.negate };
    case 'arithmetic': {
      const p = PRECEDENCE[e.op];
      return { code: `${sub(e.a, p - 1)} ${e.op} ${sub(e.b, p)}`, prec: p };
    }
    case 'call':
      return { code: `${FUNCTIONS[e.fn]}(${e.args.map((x) => render_(x).code).join(', ')})`, prec: ATOM };
    case 'compare': {
      const code = `${sub(e.a, PRECEDENCE.compare)} ${e.op} ${sub(e.b, PRECEDENCE.compare)}`;
      if (e.op === '!=' || !isFloatExpr(e.a)) return { code, prec: PRECEDENCE.compare };
      // An ordered comparison is false when an operand is NaN, so these tests change no value;
      // they stop the shader compiler from rewriting select(y, b, y < b) as max(y, b) (WGSL lets
      // implementations assume no NaN; Mesa's NIR does this rewrite), which would turn a NaN y
      // into b in a fused where-of-a-comparison (clamp) though the eager kernels keep it.
      return { code: `(${code} && !sc_isnan(${render_(e.a).code}) && !sc_isnan(${render_(e.b).code}))`, prec: ATOM };
    }
    case 'isNaN':
      return { code: `sc_isnan(${render_(e.arg).code})`, prec: ATOM };
    case 'or':
      return { code: `${sub(e.a, PRECEDENCE.or - 1)} || ${sub(e.b, PRECEDENCE.or)}`, prec: PRECEDENCE.or };
    case 'select':
      return { code: `select(${render_(e.ifFalse).code}, ${render_(e.ifTrue).code}, ${render_(e.cond).code})`, prec: ATOM };
    case 'condition':
      return { code: `select(0u, 1u, ${render_(e.cond).code})`, prec: ATOM };
    case 'convert':
      return { code: `${wgslType(e.dtype)}(${render_(e.arg).code})`, prec: ATOM };
  }
}

/** Whether `e` is a float value (compared operands have the same dtype). */
function isFloatExpr(e: Expr): boolean {
  switch (e.kind) {
    case 'compare': case 'isNaN': case 'or': case 'condition':
      return false;
    default:
      return e.dtype === 'float32' || e.dtype === 'float64';
  }
}

/**
 * `e` as a WGSL expression, operand i being `args[i]`; its constants written by `literal` (the
 * jit's writer passes opaque ones, so the shader compiler cannot fold them with what they meet).
 */
export function renderWgsl(e: Expr, args: readonly string[], literal: WgslLiteralWriter = wgslLiteral): string {
  return render(e, args, literal).code;
}
