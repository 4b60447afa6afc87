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
import { primitiveDefinition } from '../primitiveRegistry.js';
import { wasmElementwiseInstance } from './wasm/elementwiseModule.js';

/** The logistic function σ(x) = 1/(1 + e⁻ˣ) through e^(−|x|) ∈ (0, 1]: no overflow, full relative accuracy for x ≪ 0. */
function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/** x rounded to the nearest integer, halves to the even one (IEEE roundTiesToEven; Math.round takes halves up). */
export function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The error function in float64, within an ulp: the piecewise rational approximations of Sun's
 * fdlibm (1993), with that method's coefficients, each fit's error below 2^−57:
 * - |x| < 0.84375: x + x·P(x²)/Q(x²) (below 2^−28, x + x·(2/√π − 1));
 * - |x| < 1.25: ±(c + P(s)/Q(s)) in s = |x| − 1, c = 0.84506291151 rounded to 24 bits (P/Q fits
 *   erf(1 + s) − c);
 * - |x| < 6: ±(1 − e^(−z² − 0.5625)·e^((z − |x|)(z + |x|) + R/S)/|x|), R/S a rational function of
 *   1/x² (one fit below 1/0.35, another above), z = |x| rounded to float32 so that z² is exact;
 * - beyond: ±1 (1 − erf(6) ≈ 2e−17 is below half an ulp of 1).
 * Self-contained (worker threads run a copy of its source).
 */
export function erf(x: number): number {
  if (Number.isNaN(x) || x === 0) return x; // ±0 keep their sign
  const ax = Math.abs(x);
  if (ax < 0.84375) {
    if (ax < 3.725290298461914e-9) {
      // 2^−28: erf(x) = x·2/√π to within an ulp; below 2^−1015 scaled by 8 first, where x·0.128…
      // would lose bits as a subnormal (fdlibm's threshold).
      return ax < 2.848094538889218e-306 ? 0.125 * (8 * x + 1.02703333676410069053 * x) : x + 1.28379167095512586316e-1 * x;
    }
    const z = x * x;
    const p = 1.28379167095512558561e-1 + z * (-3.25042107247001499370e-1 + z * (-2.84817495755985104766e-2 + z * (-5.77027029648944159157e-3 + z * -2.37630166566501626084e-5)));
    const q = 1 + z * (3.97917223959155352819e-1 + z * (6.50222499887672944485e-2 + z * (5.08130628187576562776e-3 + z * (1.32494738004321644526e-4 + z * -3.96022827877536812320e-6))));
    return x + x * (p / q);
  }
  if (ax < 1.25) {
    const s = ax - 1;
    const p = -2.36211856075265944077e-3 + s * (4.14856118683748331666e-1 + s * (-3.72207876035701323847e-1 + s * (3.18346619901161753674e-1 + s * (-1.10894694282396677476e-1 + s * (3.54783043256182359371e-2 + s * -2.16637559486879084300e-3)))));
    const q = 1 + s * (1.06420880400844228286e-1 + s * (5.40397917702171048937e-1 + s * (7.18286544141962662868e-2 + s * (1.26171219808761642112e-1 + s * (1.36370839120290507362e-2 + s * 1.19844998467991074170e-2)))));
    const y = 8.45062911510467529297e-1 + p / q;
    return x < 0 ? -y : y;
  }
  if (ax >= 6) return x < 0 ? -1 : 1;
  const s = 1 / (ax * ax);
  let r: number;
  let q: number;
  if (ax < 2.857142857142857) {
    // 1/0.35
    r = -9.86494403484714822705e-3 + s * (-6.93858572707181764372e-1 + s * (-1.05586262253232909814e1 + s * (-6.23753324503260060396e1 + s * (-1.62396669462573470355e2 + s * (-1.84605092906711035994e2 + s * (-8.12874355063065934246e1 + s * -9.81432934416914548592))))));
    q = 1 + s * (1.96512716674392571292e1 + s * (1.37657754143519042600e2 + s * (4.34565877475229228821e2 + s * (6.45387271733267880336e2 + s * (4.29008140027567833386e2 + s * (1.08635005541779435134e2 + s * (6.57024977031928170135 + s * -6.04244152148580987438e-2)))))));
  } else {
    r = -9.86494292470009928597e-3 + s * (-7.99283237680523006574e-1 + s * (-1.77579549177547519889e1 + s * (-1.60636384855821916062e2 + s * (-6.37566443368389627722e2 + s * (-1.02509513161107724954e3 + s * -4.83519191608651397019e2)))));
    q = 1 + s * (3.03380607434824582924e1 + s * (3.25792512996573918826e2 + s * (1.53672958608443695994e3 + s * (3.19985821950859553908e3 + s * (2.55305040643316442583e3 + s * (4.74528541206955367215e2 + s * -2.24409524465858183362e1))))));
  }
  const z = Math.fround(ax);
  const y = 1 - (Math.exp(-z * z - 0.5625) * Math.exp((z - ax) * (z + ax) + r / q)) / ax;
  return x < 0 ? -y : y;
}

/** A defined elementwise primitive's CPU function (compiled kernels look it up once per call). */
function customFunction(name: string): (...args: number[]) => number {
  const def = primitiveDefinition(name);
  if (def.kind !== 'elementwise') throw new Error(`internal: '${name}' is not an elementwise primitive`);
  return def.cpu;
}

/** What generated code may call besides Math: bound as constants at the top of every generated module. */
const HELPERS = { sigmoid, roundEven, erf, indexOutOfRange, customFunction, wasmElementwiseInstance };
const PRELUDE = `"use strict";\nconst { ${Object.keys(HELPERS).join(', ')} } = H;\n`;

/**
 * HELPERS that need this thread's state (the error a kernel reports, the primitive registry): in a
 * worker they throw. A chunk that throws is rerun on the calling thread, which reports the real
 * error, and kernels calling defined primitives are not sent to workers.
 */
const THREAD_ONLY: ReadonlySet<keyof typeof HELPERS> = new Set(['indexOutOfRange', 'customFunction']);

/**
 * For a worker that builds generated functions (it shares no code with this thread): source text
 * of the body of a function returning `build(source)`, buildFunction's counterpart there (the
 * same prelude, over the worker's own copies of every entry of HELPERS, each from its source
 * text, except THREAD_ONLY's, which throw there).
 */
export function helpersSource(): string {
  const fail = "() => { throw new Error('not available in a worker'); }";
  const names = Object.keys(HELPERS) as (keyof typeof HELPERS)[];
  const definitions = names.map((name) => `const ${name} = ${THREAD_ONLY.has(name) ? fail : `(${HELPERS[name].toString()})`};\n`).join('');
  return `${definitions}const H = { ${names.join(', ')} };\n` + `return (source) => new Function('H', ${JSON.stringify(PRELUDE)} + 'return ' + source + ';')(H);`;
}

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
      if (e.fn === 'sigmoid' || e.fn === 'roundEven' || e.fn === 'erf') return `${e.fn}(${a[0]})`;
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

/** The literal value `e` stands for (a literal node, or an operand whose source is a literal), else null. */
function literalValue(e: Expr, args: readonly string[]): number | null {
  if (e.kind === 'literal') return e.value;
  if (e.kind !== 'operand') return null;
  const source = args[e.index]!.replace(/^\((.*)\)$/, '$1');
  return /^-?\d+$/.test(source) ? Number(source) : null;
}

/**
 * True when `e`, on operands that hold values of their dtypes (`args`: their sources, where a
 * literal operand shows its value), computes a value its dtype holds, so rounding it changes
 * nothing: a sign change, a selection, a maximum, x·(±1), x/(±1) and x ± 0 in a float dtype
 * (every float32 x gives a float32, −0 and NaN included), and any int32 product (Math.imul).
 */
function exact(e: Expr, args: readonly string[]): boolean {
  switch (e.kind) {
    case 'operand':
    case 'literal':
    case 'condition':
      return true;
    case 'negate':
      return e.dtype !== 'int32' && exact(e.arg, args);
    case 'select':
      return exact(e.ifTrue, args) && exact(e.ifFalse, args);
    case 'call':
      return e.fn === 'max' && e.args.every((x) => exact(x, args));
    case 'arithmetic': {
      if (e.dtype === 'int32') return e.op === '*';
      if (e.dtype !== 'float32' && e.dtype !== 'float64') return false;
      const a = literalValue(e.a, args);
      const b = literalValue(e.b, args);
      const unit = (v: number | null) => v === 1 || v === -1;
      const zero = (v: number | null) => v === 0;
      switch (e.op) {
        case '*':
          return (unit(b) && exact(e.a, args)) || (unit(a) && exact(e.b, args));
        case '/':
          return unit(b) && exact(e.a, args);
        case '+':
          return (zero(b) && exact(e.a, args)) || (zero(a) && exact(e.b, args));
        case '-':
          return zero(b) && exact(e.a, args);
        default:
          return false;
      }
    }
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
  return round && !exact(e, args) ? rounded(code, dtype) : code;
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
