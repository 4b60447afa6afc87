// JavaScript from the expression table (../expression.ts): what the CPU backend's generated
// kernels are made of. Expressions compute in doubles, as JavaScript does; `rounded` then takes
// a result to what its dtype holds (Math.fround for float32, a 32-bit wrap for int32), which is
// exactly what a store into a Float32Array or Int32Array does. So a fused chain that rounds every
// op's value gives bit for bit the values of the same ops run one by one through stored arrays.
//
// Generated functions (erf's too) are built once per source text with `new Function`, in
// buildFunction alone, and cached: callers compute a key from the structure they generate for
// (op, dtypes, layout) before building any source, so a cache hit costs a Map lookup.

import { type DType, storedValue } from '../dtype.js';
import { type ElementwiseOp, type Expr, castExpression, containsExpr, elementwiseExpression, expressionDType } from '../expression.js';
import { indexOutOfRange } from '../primitives.js';
import { primitiveDefinition } from '../primitiveRegistry.js';
import { wasmElementwiseInstance } from './wasm/elementwiseModule.js';
import { FAST_MATH_ULPS, fastMathJsSource } from './wasm/mathF32x4Fast.js';
import { ERF_FIT } from './erfFit.js';

/** The logistic function σ(x) = 1/(1 + e⁻ˣ) through e^(−|x|) ∈ (0, 1]: no overflow, full relative accuracy for x ≪ 0. */
export function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/** x rounded to the nearest integer, halves to the even one (IEEE roundTiesToEven; Math.round takes halves up). */
export function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** c₀ + t·(c₁ + t·(…)) as JavaScript, the numbers written exactly. */
function hornerJs(t: string, coefficients: readonly number[]): string {
  let text = String(coefficients[coefficients.length - 1]);
  for (let i = coefficients.length - 2; i >= 0; i--) text = `${coefficients[i]} + ${t} * (${text})`;
  return text;
}

/**
 * The source of the CPU's float64 erf, generated from ERF_FIT so that it holds the numbers
 * themselves (worker threads copy it): within an ulp; beyond 6, ±1 (1 − erf(6) ≈ 2e−17 is below
 * half an ulp of 1).
 */
const ERF_SOURCE = `function erf(x) {
  if (x !== x || x === 0) return x; // NaN, and ±0 with their sign
  const ax = Math.abs(x);
  if (ax < ${ERF_FIT.small}) {
    if (ax < ${ERF_FIT.tiny}) return ax < ${ERF_FIT.scaled} ? 0.125 * (8 * x + ${ERF_FIT.efx8} * x) : x + ${ERF_FIT.efx} * x;
    const z = x * x;
    return x + x * ((${hornerJs('z', ERF_FIT.pp)}) / (${hornerJs('z', ERF_FIT.qq)}));
  }
  if (ax < ${ERF_FIT.mid}) {
    const s = ax - 1;
    const y = ${ERF_FIT.erx} + (${hornerJs('s', ERF_FIT.pa)}) / (${hornerJs('s', ERF_FIT.qa)});
    return x < 0 ? -y : y;
  }
  if (ax >= ${ERF_FIT.large}) return x < 0 ? -1 : 1;
  const s = 1 / (ax * ax);
  const first = ax < ${ERF_FIT.split};
  const r = first ? ${hornerJs('s', ERF_FIT.ra)} : ${hornerJs('s', ERF_FIT.rb)};
  const q = first ? ${hornerJs('s', ERF_FIT.sa)} : ${hornerJs('s', ERF_FIT.sb)};
  const z = Math.fround(ax);
  const y = 1 - (Math.exp(-z * z - 0.5625) * Math.exp((z - ax) * (z + ax) + r / q)) / ax;
  return x < 0 ? -y : y;
}`;
let erfBuilt: ((x: number) => number) | undefined;

/**
 * The error function in float64 (ERF_SOURCE), built by buildFunction on its first call: building
 * it evaluates code, which a page whose content security policy forbids that allows only for the
 * CPU's generated kernels, not at import.
 */
export function erf(x: number): number {
  erfBuilt ??= buildFunction<(x: number) => number>(ERF_SOURCE);
  return erfBuilt(x);
}

/**
 * The fast forms' JavaScript transcription (mathF32x4Fast.ts), by function: float32 exp, log1p, log
 * and sigmoid with the bits setCpuFastMath(true) gives in WebAssembly.
 */
export type FastMathJs = Readonly<Record<keyof typeof FAST_MATH_ULPS, (x: number) => number>>;
/** The names a float32 math call renders as under setCpuFastMath(true), by the function it replaces. */
const FAST_NAMES: Readonly<Record<keyof typeof FAST_MATH_ULPS, string>> = { exp: 'expFast', log1p: 'log1pFast', log: 'logFast', sigmoid: 'sigmoidFast' };
let fastBuilt: FastMathJs | undefined;
/**
 * The fast forms in JavaScript, built on first use, as erf is (evaluating code: not at import),
 * without the helpers' prelude: the source is self-contained, and the prelude reads these functions.
 */
export function fastMathJs(): FastMathJs {
  return (fastBuilt ??= evaluate<FastMathJs>(`"use strict";\nreturn ${fastMathJsSource()};`));
}

/** A defined elementwise primitive's CPU function (compiled kernels look it up once per call). */
function customFunction(name: string): (...args: number[]) => number {
  const def = primitiveDefinition(name);
  if (def.kind !== 'elementwise') throw new Error(`internal: '${name}' is not an elementwise primitive`);
  return def.cpu;
}

/** What generated code may call besides Math: bound as constants at the top of every generated module. */
const HELPERS = {
  sigmoid, roundEven, erf,
  // The fast forms, built when the first generated function is (reading them is part of its prelude).
  get expFast() {
    return fastMathJs().exp;
  },
  get log1pFast() {
    return fastMathJs().log1p;
  },
  get logFast() {
    return fastMathJs().log;
  },
  get sigmoidFast() {
    return fastMathJs().sigmoid;
  },
  indexOutOfRange, customFunction, wasmElementwiseInstance,
};
/**
 * HELPERS whose source a worker copies is not their own function's (erf's builds from ERF_SOURCE
 * on this thread, the fast forms from fastMathJsSource).
 */
const SOURCES: Partial<Record<keyof typeof HELPERS, () => string>> = {
  erf: () => ERF_SOURCE,
  ...Object.fromEntries(Object.entries(FAST_NAMES).map(([fn, name]) => [name, () => `${fastMathJsSource()}.${fn}`])),
};
// SEL: a generated function's own two slots for selects without a branch (render's 'select').
const PRELUDE = `"use strict";\nconst { ${Object.keys(HELPERS).join(', ')} } = H;\nconst SEL = new Float64Array(2);\n`;

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
 * text, except THREAD_ONLY's, which throw there), with those copies as `build.H` (a worker gives
 * its wasmElementwiseInstance the CPU heap's hooks there).
 */
export function helpersSource(): string {
  const fail = "() => { throw new Error('not available in a worker'); }";
  const names = Object.keys(HELPERS) as (keyof typeof HELPERS)[];
  const definitions = names.map((name) => `const ${name} = ${THREAD_ONLY.has(name) ? fail : `(${SOURCES[name]?.() ?? HELPERS[name].toString()})`};\n`).join('');
  return `${definitions}const H = { ${names.join(', ')} };\n` + `return Object.assign((source) => new Function('H', ${JSON.stringify(PRELUDE)} + 'return ' + source + ';')(H), { H });`;
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

function render(e: Expr, args: readonly string[], branchless: boolean, fast: boolean): string {
  switch (e.kind) {
    case 'operand':
      return args[e.index]!;
    case 'literal':
      return jsLiteral(e.value, e.dtype);
    case 'negate':
      return `(-${render(e.arg, args, branchless, fast)})`;
    case 'arithmetic': {
      const a = render(e.a, args, branchless, fast);
      const b = render(e.b, args, branchless, fast);
      // A 32-bit product: a double product of two large int32s loses the low bits.
      if (e.op === '*' && e.dtype === 'int32') return `Math.imul(${a}, ${b})`;
      return `(${a} ${e.op} ${b})`;
    }
    case 'call': {
      const a = e.args.map((x) => render(x, args, branchless, fast));
      // setCpuFastMath(true): float32 exp, log1p, log and sigmoid by the fast forms' transcription.
      const fastName = fast && e.dtype === 'float32' ? FAST_NAMES[e.fn as keyof typeof FAST_NAMES] : undefined;
      if (fastName !== undefined) return `${fastName}(${a[0]})`;
      if (e.fn === 'sigmoid' || e.fn === 'roundEven' || e.fn === 'erf') return `${e.fn}(${a[0]})`;
      return `Math.${e.fn}(${a.join(', ')})`;
    }
    case 'compare': {
      const op = e.op === '==' ? '===' : e.op === '!=' ? '!==' : e.op;
      return `(${render(e.a, args, branchless, fast)} ${op} ${render(e.b, args, branchless, fast)})`;
    }
    case 'isNaN': {
      const a = render(e.arg, args, branchless, fast);
      return `(${a} !== ${a})`;
    }
    case 'or':
      // Both sides are comparisons (no effects): branchless, a bitwise or of their bits.
      return `(${render(e.a, args, branchless, fast)} ${branchless ? '|' : '||'} ${render(e.b, args, branchless, fast)})`;
    case 'select': {
      const [c, t, f] = [render(e.cond, args, branchless, fast), render(e.ifTrue, args, branchless, fast), render(e.ifFalse, args, branchless, fast)];
      // Between two values already computed (operands, literals): both written to SEL and the one
      // the condition's bit indexes read back, with no branch. A condition that varies from element
      // to element (relu's x ≤ 0 on a layer's outputs) made V8's branch mispredict half the time: a
      // relu's padded copy took 7.2 ms where this takes 2.7 (benchmarks/NOTES.md, "Selects without
      // branches"). A Float64Array holds every value of every dtype as it is (−0, NaN's bits).
      // Otherwise a conditional, which computes only the branch taken.
      // Not where the condition selects too: it would overwrite SEL's slots before they are read.
      if (branchless && plainValue(e.ifTrue) && plainValue(e.ifFalse) && !selects(e.cond)) return `(SEL[0] = ${f}, SEL[1] = ${t}, SEL[+${c}])`;
      return `(${c} ? ${t} : ${f})`;
    }
    case 'condition':
      return `(+${render(e.cond, args, branchless, fast)})`;
    case 'convert': {
      const from = expressionDType(e.arg);
      const a = render(e.arg, args, branchless, fast);
      // Float to int32 (the cast rule has already handled NaN and the range): truncate, as
      // ToInt32 does in range. Not Math.trunc: it gives −0 for (−1, −0], which an int32 never
      // holds, and a fused kernel that converts the value back to a float would keep it.
      return e.dtype === 'int32' && (from === 'float32' || from === 'float64') ? `(${a} | 0)` : a;
    }
  }
}

/** Whether `e` contains a select. */
function selects(e: Expr): boolean {
  return containsExpr(e, (x) => x.kind === 'select');
}

/** Whether `e` is an operand or a literal: a value with nothing left to compute. */
function plainValue(e: Expr): boolean {
  return e.kind === 'operand' || e.kind === 'literal';
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

/**
 * `e` over operand sources `args` as JavaScript, rounded to its dtype unless the store will do it.
 * `branchless`: selects between plain values without a branch (render's 'select'); false for a
 * reduction's or scan's combine over a long run, whose accumulator would then pass through memory
 * on every element (a row's maximum 1.3–1.8 → 4.2–4.4 ms on [1024, 1024]), where the branch is
 * predicted once the running value settles. `fastMath`: float32 exp, log1p, log and sigmoid calls by
 * the fast forms' transcription (setCpuFastMath(true)), the bits of the WebAssembly kernels' fast
 * lanes; else the engine's Math functions, whose double results the rounding takes to float32.
 */
export function renderJs(e: Expr, args: readonly string[], round = true, branchless = true, fastMath = false): string {
  const code = render(e, args, branchless, fastMath);
  const dtype = expressionDType(e) ?? 'bool';
  return round && !exact(e, args) ? rounded(code, dtype) : code;
}

/**
 * An elementwise op over operands of `dtype` (for `where`, its value operands'), as JavaScript;
 * `fastMath`: float32 exp, log1p, log and sigmoid by their fast forms (setCpuFastMath).
 */
export function jsElementwise(op: ElementwiseOp, dtype: DType, args: readonly string[], round = true, fastMath = false): string {
  return renderJs(elementwiseExpression(op, dtype), args, round, true, fastMath);
}

/** A cast by the one rule (`storedValue`), as JavaScript. */
export function jsCast(from: DType, to: DType, arg: string, round = true): string {
  return renderJs(castExpression(from, to), [arg], round);
}

/** The value `body` (a function body) returns, with `H` in scope: the one place code is evaluated on this thread. */
function evaluate<T>(body: string, H?: object): T {
  return new Function('H', body)(H) as T;
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
    f = evaluate(`${PRELUDE}return ${source};`, HELPERS);
    built.set(source, f);
    if (built.size > BUILT_LIMIT) built.delete(built.keys().next().value!);
  }
  return f as F;
}
