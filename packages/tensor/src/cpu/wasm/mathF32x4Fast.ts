// exp, log1p, log and sigmoid of four float32 lanes computed in float32 arithmetic throughout:
// the WebAssembly kernels' math under setCpuFastMath(true). The default kernels (mathF32x4.ts)
// give the float32 rounding of the engine's double result (Math.fround(Math.fn(x)): correctly
// rounded but at a few inputs, docs/conventions.md) by computing in
// double lanes, two at a time, and checking each result against the float32 rounding
// boundaries; these work on all four lanes at once, in the manner of Cephes' and fdlibm's float
// routines (SLEEF's u10 functions, which PyTorch's vectorised CPU kernels call, make the same
// trade), and are within 1 ulp of that value instead (sigmoid 2): the bounds of
// FAST_MATH_ULPS, checked in the tests on a sample of every exponent and dense sweeps, and by
// `node scripts/run.mjs scripts/exhaustiveMath.ts --fast` over every float32 input (2026-12-05:
// none outside; 0.28–0.42% of inputs 1 ulp off for exp, log1p and log). About twice as fast.
//
// Only those four have fast forms: they are what softplus, sigmoid, logsumexp and the
// score-matching losses spend their time in. tanh, expm1, sin, cos and erf keep their exact
// kernels in either mode (exact is within any bound). The JavaScript kernels compute the same
// forms under the mode (fastMathJsSource, at the end), with the same bits.

import { type FunctionBody } from './assembler.js';
import { type Expr, and, assign, binary, get, localPool, or, select } from './mathF64x2.js';
import { EXP_TABLE, EXP_TABLE_ADDRESS, LOG_TABLE_ADDRESS, eq32, ge32, gt32, lt32, pmax32, pmin32 } from './mathF32x4.js';

/**
 * The largest distance of each fast function's result from the default one (Math.fround(Math.fn(x))),
 * in float32 ulps (the unit in the last place of that value), over every float32 input.
 */
export const FAST_MATH_ULPS = { exp: 1, log1p: 1, log: 1, sigmoid: 2 } as const;

// Constants. V8 builds each v128.const of a loop body again on every iteration (about three
// instructions); these functions use ~30, so they read them from a table in the memory instead
// (one load, often folded into the instruction that uses it). The table lies at a fixed address
// in the region every kernel memory keeps for constants (KERNEL_CONSTANTS_BYTES, heap.ts), after
// exp's table and before log's (LOG_TABLE_ADDRESS), and each module that reads it writes it there
// (a data segment): the same bytes from every module, so all the constants are declared below, at
// load, in a fixed order.

/** The byte address of the fast functions' constants in every memory the elementwise kernels import. */
export const FAST_CONSTANTS_ADDRESS = EXP_TABLE_ADDRESS + EXP_TABLE.length;
const constantBytes: number[] = [];
const constantAt = new Map<string, number>();
let sealed = false;

/** A v128 constant of the table (declared at load): an Expr that loads it. */
function constant(bytes: readonly number[]): Expr {
  if (sealed) throw new Error('internal: a fast-math constant declared after the table was written');
  const key = bytes.join(',');
  let at = constantAt.get(key);
  if (at === undefined) {
    at = constantBytes.length;
    constantAt.set(key, at);
    constantBytes.push(...bytes);
  }
  const address = FAST_CONSTANTS_ADDRESS + at;
  return (f) => {
    sealed = true;
    f.requireData(FAST_CONSTANTS_ADDRESS, constantBytes);
    f.i32Const(0).v128Load(address);
  };
}
/** Four f32 lanes = `value` (rounded to float32). */
const f32 = (value: number): Expr => constant(Array.from(new Uint8Array(new Float32Array([value, value, value, value]).buffer)));
/** Four i32 lanes = `value`. */
const i32 = (value: number): Expr => constant(Array.from(new Uint8Array(new Int32Array([value, value, value, value]).buffer)));

const add = binary((f) => f.f32x4Add());
const sub = binary((f) => f.f32x4Sub());
const mul = binary((f) => f.f32x4Mul());
const div = binary((f) => f.f32x4Div());
const ne = binary((f) => f.f32x4Ne());
const [lt, gt, ge, eq, pmin, pmax] = [lt32, gt32, ge32, eq32, pmin32, pmax32];
const addI = binary((f) => f.i32x4Add());
const subI = binary((f) => f.i32x4Sub());
const shlI = (a: Expr, bits: number): Expr => (f) => {
  a(f);
  f.i32Const(bits).i32x4Shl();
};
const shrI = (a: Expr, bits: number): Expr => (f) => {
  a(f);
  f.i32Const(bits).i32x4ShrS();
};
const toFloat = (a: Expr): Expr => (f) => {
  a(f);
  f.f32x4ConvertI32x4S();
};

// Locals: exp's and the logarithms' from one pool (they never run inside one another), sigmoid's
// (live across the exp it calls) and log1p's mask of ordinary lanes from another.
const coreLocals = localPool();
const wrapperLocals = localPool();

// Constants shared by several functions.
const ZERO = f32(0);
const ONE = f32(1);
const INFINITY = f32(Infinity);
const NAN = f32(NaN);
/** The four sign bits (−0): OR sets them, giving −|x|. */
const SIGN_BITS = f32(-0);

// ---------------------------------------------------------------------------------------------
// exp. x is clamped to [−104, 89] (below, e^x rounds to +0; above, to +∞; a NaN stays NaN), then
// x = n·ln2 + r with n = nearest(x·log2 e) (rounded by adding 1.5·2^23: the sum's low bits are n),
// r = (x − n·C1) − n·C2, C1 = 0.693359375 (9 significant bits: n·C1 is exact for |n| ≤ 150, and
// x − n·C1 is exact, both being multiples of 2^−24 below 2^−1 in magnitude where n ≠ 0), C2 the
// float32 nearest ln2 − C1. e^r = 1 + r + r²·Q(r), Q a degree-4 fit of (e^r − 1 − r)/r² on
// |r| ≤ 0.3467 (relative error 1.3e−7 in Q, 1.1e−8 in e^r; fitted by Lawson's iteration over
// Chebyshev nodes against 40-digit values), by Estrin's scheme. e^x = (e^r·2^n1)·2^n2 with n1 =
// ⌊n/2⌋, n2 = n − n1, each power built in the exponent field: the first product is exact and
// normal, the second rounds once, so float32 subnormal results (x < −87.34) round correctly and
// x > 88.72 overflows to +∞. The error: r's rounding (≤ 2^−26 absolute), Q's fit, and the four
// roundings after r² (the last two dominate): within 1 ulp on the tests' sweeps and over every
// float32 input (FAST_MATH_ULPS.exp).

/**
 * The numbers of the fast forms, once for their two renderings: the WebAssembly emitters below
 * (as float32 lanes, f32 and i32) and the JavaScript transcription (fastMathJsSource, each value
 * rounded to float32 as here).
 */
const FAST = {
  expLow: -104,
  expHigh: 89,
  magic: 1.5 * 2 ** 23,
  magicBits: 0x4b400000,
  log2e: 1.4426950408889634,
  ln2C1: 0.693359375,
  ln2C2: Math.LN2 - 0.693359375,
  expQ: [0.5, 0.16666577756404877, 0.04166685417294502, 0.00836316216737032, 0.0013901294441893697],
  sqrt1_2Bits: 0x3f3504f3, // √2/2 in float32
  logP: [0.6666668653488159, 0.3998876214027405, 0.29580608010292053],
} as const;

const EXP_LOW = f32(FAST.expLow);
const EXP_HIGH = f32(FAST.expHigh);
const MAGIC = f32(FAST.magic);
const MAGIC_BITS = i32(FAST.magicBits);
const LOG2E = f32(FAST.log2e);
const LN2_C1 = f32(FAST.ln2C1);
const LN2_C2 = f32(FAST.ln2C2);
const EXP_Q = FAST.expQ.map(f32) as [Expr, Expr, Expr, Expr, Expr];
const BIAS = i32(127);

/** 2^k for i32 lanes k in [−126, 127], built in the exponent field. */
const pow2 = (k: Expr): Expr => shlI(addI(k, BIAS), 23);

/** e^x of the four float32 lanes of V128 local `x`, left on the stack. */
function expCore(f: FunctionBody, x: number): void {
  const [xc, t, n, r, r2] = coreLocals(f, 5) as [number, number, number, number, number];
  assign(f, xc, pmin(pmax(get(x), EXP_LOW), EXP_HIGH));
  assign(f, t, add(mul(get(xc), LOG2E), MAGIC));
  assign(f, n, sub(get(t), MAGIC)); // n as a float
  assign(f, r, sub(sub(get(xc), mul(get(n), LN2_C1)), mul(get(n), LN2_C2)));
  assign(f, r2, mul(get(r), get(r)));
  const [q0, q1, q2, q3, q4] = EXP_Q;
  const q = add(add(q0, mul(get(r), q1)), mul(get(r2), add(add(q2, mul(get(r), q3)), mul(get(r2), q4))));
  const p = add(ONE, add(get(r), mul(get(r2), q)));
  // n as an integer (t's bits less 1.5·2^23's), halved: n1 = n >> 1, n2 = n − n1.
  assign(f, t, subI(get(t), MAGIC_BITS));
  assign(f, n, shrI(get(t), 1));
  assign(f, t, subI(get(t), get(n)));
  mul(mul(p, pow2(get(n))), pow2(get(t)))(f);
}

// ---------------------------------------------------------------------------------------------
// log1p and log, fdlibm's way in float32: u = 2^k·m with m in [√2/2, √2) read from the bits (adding
// 1 − bits(√2/2) in the exponent field's units carries into the exponent exactly when the mantissa
// is at or past √2), f = m − 1 (exact), s = f/(2 + f), z = s², R = z·P(z) with P a degree-2 fit of
// (2·atanh(s) − 2s)/(s·z) on z ≤ 0.02944 (relative error 2.8e−7, 2.7e−9 of the result; fitted as
// exp's Q), and log(1 + f) = f − (hfsq − s·(hfsq + R)), hfsq = f²/2: an identity (f = s·(2 + f)),
// in which the leading term f is exact and the rest a correction below a third of it. k·ln2 as
// k·C1 + k·C2 (exp's split: k·C1 is exact for |k| ≤ 150).
// log1p(x): u = 1 + x rounded, and the rounding put back as c = (x − (u − 1))/u (u − 1 is exact),
// added with k·C2: log1p(x) = log(u) + log(1 + c) and log(1 + c) rounds to c. (fdlibm takes f = x
// itself where k = 0 instead, and c = 0; the two selects that costs took 0.5 ns an element of
// softplus, 3.75 → 3.2, and the bound is the same.) Lanes outside the path's domain are fixed
// after: x < −1 and NaN give NaN, −1 gives −∞, +∞ gives +∞, ±0 gives itself.
// log(x): subnormal inputs are scaled by 2^23 first (k lowered by 23); c = 0; x < 0 and NaN give
// NaN, ±0 gives −∞, +∞ gives +∞. Both within 1 ulp on the tests' sweeps and over every float32
// input (FAST_MATH_ULPS).

const MANTISSA_OFFSET = i32(0x3f800000 - FAST.sqrt1_2Bits);
const MANTISSA = i32(0x007fffff);
const SQRT1_2 = i32(FAST.sqrt1_2Bits);
const TWO = f32(2);
const HALF = f32(0.5);
const LOG_P = FAST.logP.map(f32) as [Expr, Expr, Expr];
const MINUS_ONE = f32(-1);
const MINUS_INFINITY = f32(-Infinity);
const LEAST_NORMAL = f32(2 ** -126);
const TWO_23 = f32(2 ** 23);
const MINUS_23 = i32(-23);

/**
 * log(2^k·m) + c from V128 locals `k` (i32 lanes, the exponent), `fm` (m − 1) and `c` (the
 * correction; null: 0), left on the stack.
 */
function logTail(f: FunctionBody, k: number, fm: number, c: number | null): void {
  const [s, z, hfsq, kf] = coreLocals(f, 9).slice(5) as [number, number, number, number];
  assign(f, kf, toFloat(get(k)));
  assign(f, hfsq, mul(mul(get(fm), get(fm)), HALF));
  assign(f, s, div(get(fm), add(TWO, get(fm))));
  assign(f, z, mul(get(s), get(s)));
  const [p0, p1, p2] = LOG_P;
  const R = mul(get(z), add(p0, mul(get(z), add(p1, mul(get(z), p2)))));
  const low = c === null ? mul(get(kf), LN2_C2) : add(mul(get(kf), LN2_C2), get(c));
  const tail = sub(sub(get(hfsq), add(mul(get(s), add(get(hfsq), R)), low)), get(fm));
  sub(mul(get(kf), LN2_C1), tail)(f);
}

/** k (i32 lanes) and m − 1 (f32 lanes) of the positive normal float32 lanes of `u`, into locals `k` and `fm`. */
function splitExponent(f: FunctionBody, u: Expr, k: number, fm: number): void {
  assign(f, k, addI(u, MANTISSA_OFFSET));
  assign(f, fm, sub(addI(and(get(k), MANTISSA), SQRT1_2), ONE));
  assign(f, k, subI(shrI(get(k), 23), BIAS));
}

/** log1p of the four float32 lanes of V128 local `x`, left on the stack. */
function log1pCore(f: FunctionBody, x: number): void {
  const [u, k, fm, c] = coreLocals(f, 4) as [number, number, number, number];
  assign(f, u, add(ONE, get(x)));
  splitExponent(f, get(u), k, fm);
  assign(f, c, div(sub(get(x), sub(get(u), ONE)), get(u)));
  logTail(f, k, fm, c);
  f.set(u);
  // Lanes outside (−1, +∞) less ±0 are fixed only where some lane is one (a branch the usual
  // inputs never take: a select per case on every vector cost ~1 ns an element of softplus).
  const [ordinary] = wrapperLocals(f, 1) as [number];
  const X = get(x);
  assign(f, ordinary, and(and(gt(X, MINUS_ONE), lt(X, INFINITY)), ne(X, ZERO)));
  f.get(ordinary).v128Not().v128AnyTrue().if();
  assign(f, u, select(get(ordinary), get(u), select(eq(X, ZERO), X, select(eq(X, MINUS_ONE), MINUS_INFINITY, select(eq(X, INFINITY), INFINITY, NAN)))));
  f.end();
  f.get(u);
}

/** log of the four float32 lanes of V128 local `x`, left on the stack. */
function logCore(f: FunctionBody, x: number): void {
  const [u, k, fm, tiny] = coreLocals(f, 4) as [number, number, number, number];
  const X = get(x);
  assign(f, tiny, lt(X, LEAST_NORMAL));
  assign(f, u, select(get(tiny), mul(X, TWO_23), X));
  splitExponent(f, get(u), k, fm);
  assign(f, k, addI(get(k), and(get(tiny), MINUS_23)));
  logTail(f, k, fm, null);
  f.set(u);
  // Lanes that are not positive and finite, fixed only where some lane is one (as log1p's).
  const [ordinary] = wrapperLocals(f, 1) as [number];
  assign(f, ordinary, and(gt(X, ZERO), lt(X, INFINITY)));
  f.get(ordinary).v128Not().v128AnyTrue().if();
  assign(f, u, select(get(ordinary), get(u), select(eq(X, ZERO), MINUS_INFINITY, select(eq(X, INFINITY), INFINITY, NAN))));
  f.end();
  f.get(u);
}

// ---------------------------------------------------------------------------------------------
// sigmoid: the JavaScript kernels' formula (e = e^(−|x|), then 1/(1 + e) for x ≥ 0 and e/(1 + e)
// below) on exp's fast form, as one quotient whose numerator is selected: e within an ulp, then
// a sum and a quotient, each rounding by half an ulp: within 2 ulps over every float32 input
// (FAST_MATH_ULPS.sigmoid). Computing e/(1 + e) as e·(1/(1 + e)) instead, one more rounding, gave
// 3 ulps at 514 inputs (x ≈ −1.0988, results just under 1/4, where the ulp halves).

function sigmoidCore(f: FunctionBody, x: number): void {
  const [a] = wrapperLocals(f, 1) as [number];
  assign(f, a, or(get(x), SIGN_BITS)); // −|x|: the sign bit set, one OR where abs then neg build two masks
  expCore(f, a);
  f.set(a); // e
  div(select(ge(get(x), ZERO), ONE, get(a)), add(ONE, get(a)))(f);
}

if (FAST_CONSTANTS_ADDRESS + constantBytes.length > LOG_TABLE_ADDRESS) {
  throw new Error(`internal: the fast functions' ${constantBytes.length} bytes of constants do not fit between exp's table and log's`);
}

/** The fast forms, by function: each leaves its f32x4 of the lanes of V128 local `x` on the stack. */
export const FAST_MATH_F32X4 = {
  exp: expCore,
  log1p: log1pCore,
  log: logCore,
  sigmoid: sigmoidCore,
} as const satisfies Record<keyof typeof FAST_MATH_ULPS, (f: FunctionBody, x: number) => void>;

// ---------------------------------------------------------------------------------------------
// The same four functions in JavaScript, for the kernels that compute in JavaScript under
// setCpuFastMath(true) (jsCode.ts: arrays under the WebAssembly kernels' minimum, setCpuWasm(false),
// engines without WebAssembly SIMD), so that the mode gives one set of bits wherever a value is
// computed: eager or `jit`, any array size, WebAssembly or not, any thread count, any JavaScript
// engine (the default kernels' bits are the engine's Math functions rounded, which engines need not
// share). Each lane operation of the emitters above is one operation on float32 values held in
// doubles and rounded by Math.fround: a sum, difference, product or quotient of two float32 values
// computed in double and rounded once to float32 is the float32 operation's result (double has more
// than 2·24 + 2 bits, so the double rounding is innocuous), and the selects, clamps and integer steps
// are the lanes' own. The exponent field's bits are read and written through a Float32Array and an
// Int32Array over one buffer; 2^k comes from a table built from those bits. Checked bit for bit
// against the WebAssembly forms over every float32 input (`scripts/exhaustiveMath.ts --fast`) and on
// samples in the tests.

/** The float32 literal of `v` as JavaScript source (every finite float32 prints exactly as a double). */
const lit = (v: number): string => {
  const r = Math.fround(v);
  return r < 0 ? `(${r})` : String(r);
};

/**
 * JavaScript source of an expression whose value is `{ exp, log1p, log, sigmoid }`: the fast forms
 * on one float32 value (a number that is a float32), each returning the float32 result the
 * WebAssembly lane gives (NaN for NaN, whatever its bits). Self-contained (worker threads build it
 * from this text).
 */
export function fastMathJsSource(): string {
  const [q0, q1, q2, q3, q4] = FAST.expQ.map(lit);
  const [p0, p1, p2] = FAST.logP.map(lit);
  const c1 = lit(FAST.ln2C1);
  const c2 = lit(FAST.ln2C2);
  return `(() => {
  const fround = Math.fround;
  const F = new Float32Array(1);
  const I = new Int32Array(F.buffer);
  // 2^k for k in [−126, 127], from its bits (exp's two scalings each lie in [−75, 64]).
  const P2 = new Float64Array(254);
  for (let k = -126; k <= 127; k++) { I[0] = (k + 127) << 23; P2[k + 126] = F[0]; }
  function exp(x) {
    let xc = x < ${lit(FAST.expLow)} ? ${lit(FAST.expLow)} : x;
    xc = ${lit(FAST.expHigh)} < xc ? ${lit(FAST.expHigh)} : xc;
    const t = fround(fround(xc * ${lit(FAST.log2e)}) + ${lit(FAST.magic)});
    const n = fround(t - ${lit(FAST.magic)});
    const r = fround(fround(xc - fround(n * ${c1})) - fround(n * ${c2}));
    const r2 = fround(r * r);
    const q = fround(fround(${q0} + fround(r * ${q1})) + fround(r2 * fround(fround(${q2} + fround(r * ${q3})) + fround(r2 * ${q4}))));
    const p = fround(1 + fround(r + fround(r2 * q)));
    // n is t's bits less 1.5·2^23's (an integer of [−150, 128]; 0 for NaN, whose p is NaN).
    const m = n | 0;
    const n1 = m >> 1;
    return fround(fround(p * P2[n1 + 126]) * P2[m - n1 + 126]);
  }
  // log(2^k·m) + (low − k·C1's companion), as logTail: fm = m − 1, low = k·C2 (+ c for log1p).
  function tail(k, fm, low) {
    const hfsq = fround(fround(fm * fm) * 0.5);
    const s = fround(fm / fround(2 + fm));
    const z = fround(s * s);
    const R = fround(z * fround(${p0} + fround(z * fround(${p1} + fround(z * ${p2})))));
    const t = fround(fround(hfsq - fround(fround(s * fround(hfsq + R)) + low)) - fm);
    return fround(fround(k * ${c1}) - t);
  }
  function log1p(x) {
    const u = fround(1 + x);
    F[0] = u;
    let k = (I[0] + ${0x3f800000 - FAST.sqrt1_2Bits}) | 0;
    I[0] = ((k & 0x7fffff) + ${FAST.sqrt1_2Bits}) | 0;
    const fm = fround(F[0] - 1);
    k = fround((k >> 23) - 127);
    const c = fround(fround(x - fround(u - 1)) / u);
    const y = tail(k, fm, fround(fround(k * ${c2}) + c));
    if (x > -1 && x < Infinity && x !== 0) return y;
    return x === 0 ? x : x === -1 ? -Infinity : x === Infinity ? Infinity : NaN;
  }
  function log(x) {
    const tiny = x < ${lit(2 ** -126)};
    F[0] = tiny ? fround(x * ${lit(2 ** 23)}) : x;
    let k = (I[0] + ${0x3f800000 - FAST.sqrt1_2Bits}) | 0;
    I[0] = ((k & 0x7fffff) + ${FAST.sqrt1_2Bits}) | 0;
    const fm = fround(F[0] - 1);
    k = fround(((k >> 23) - 127 + (tiny ? -23 : 0)) | 0);
    const y = tail(k, fm, fround(k * ${c2}));
    if (x > 0 && x < Infinity) return y;
    return x === 0 ? -Infinity : x === Infinity ? Infinity : NaN;
  }
  function sigmoid(x) {
    const e = exp(-Math.abs(x));
    return fround((x >= 0 ? 1 : e) / fround(1 + e));
  }
  return { exp, log1p, log, sigmoid };
})()`;
}
