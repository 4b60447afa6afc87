// exp, log1p and log on the two f64 lanes of a v128, emitted as WebAssembly SIMD, giving per lane
// the same bits as V8's Math.exp, Math.log1p and Math.log (and, through exp, the JavaScript
// kernels' sigmoid). V8 computes those with its port of
// fdlibm (FreeBSD msun's e_exp.c, s_log1p.c and e_log.c), so the JavaScript kernels' float32 math
// (`Math.fround(Math.exp(x))`) is fdlibm's double result rounded once; the WebAssembly kernels
// reproduce it by running the same algorithm on f64x2 lanes.
//
// Why the bits agree: every step of fdlibm is an IEEE double +, −, ×, ÷ (each exactly rounded, in
// the same order here as in the C source, and WebAssembly never contracts a·b + c into a fused
// multiply-add), a truncation to an integer, or a rewrite of exponent bits. What is not
// transcribed one to one is the control flow: fdlibm branches on the high 32 bits of the double
// (`hx`), a lane machine cannot, so each emitter computes every path on both lanes and picks per
// lane with v128.bitselect on comparison masks. Each of fdlibm's tests on `hx` becomes a
// comparison of the double itself against the double whose high word is the threshold and whose
// low word is zero: for non-negative doubles the order of values is the order of their bit
// patterns, so `hx < H` is `|x| < D(H:0)` and `hx > H` (any low word) is `|x| ≥ D(H+1:0)`. Tests
// on the top 20 mantissa bits after the exponent is replaced (`hu`, `hx & 0xfffff`) become
// comparisons of the mantissa placed in [1, 2) against D(0x3ff00000 | m:0).
//
// Lanes that fdlibm sends down an early return still run the rest of the arithmetic here (on
// values it never sees, such as an infinite reduced argument); that garbage is discarded by the
// selects, and nothing in WebAssembly traps on it (the float-to-int conversion saturates).

import type { FunctionBody } from './assembler.js';
import { V128 } from './assembler.js';

// The combinators and constants exported below are shared with the float32 fast paths
// (mathF32x4.ts).

/** Pushes one v128 onto the stack. */
export type Expr = (f: FunctionBody) => void;

/** The double with the given high and low 32-bit words (how fdlibm writes its thresholds). */
function fromWords(hi: number, lo: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setUint32(0, lo >>> 0, true); // little-endian: the low word comes first
  view.setUint32(4, hi >>> 0, true);
  return view.getFloat64(0, true);
}

/** Both f64 lanes = `value`. */
export function num(value: number): Expr {
  const view = new DataView(new ArrayBuffer(16));
  view.setFloat64(0, value, true);
  view.setFloat64(8, value, true);
  const bytes = Array.from(new Uint8Array(view.buffer));
  return (f) => void f.v128Const(bytes);
}

/** Both i64 lanes = the 64-bit pattern `value` (as a bigint, to keep all 64 bits). */
export function int64(value: bigint): Expr {
  const view = new DataView(new ArrayBuffer(16));
  view.setBigUint64(0, BigInt.asUintN(64, value), true);
  view.setBigUint64(8, BigInt.asUintN(64, value), true);
  const bytes = Array.from(new Uint8Array(view.buffer));
  return (f) => void f.v128Const(bytes);
}

export const get = (local: number): Expr => (f) => void f.get(local);
/** The binary combinator of instruction `op`: pushes a, then b, then applies `op`. */
export const binary = (op: (f: FunctionBody) => unknown) => (a: Expr, b: Expr): Expr => (f) => {
  a(f);
  b(f);
  op(f);
};
export const add = binary((f) => f.f64x2Add());
export const sub = binary((f) => f.f64x2Sub());
export const mul = binary((f) => f.f64x2Mul());
export const div = binary((f) => f.f64x2Div());
export const lt = binary((f) => f.f64x2Lt());
const le = binary((f) => f.f64x2Le());
const gt = binary((f) => f.f64x2Gt());
export const ge = binary((f) => f.f64x2Ge());
export const eq = binary((f) => f.f64x2Eq());
const ne = binary((f) => f.f64x2Ne());
export const and = binary((f) => f.v128And());
export const or = binary((f) => f.v128Or());
/** a & ~b. */
const andNot = binary((f) => f.v128AndNot());
export const abs = (a: Expr): Expr => (f) => {
  a(f);
  f.f64x2Abs();
};
/** Per lane: mask ? ifTrue : ifFalse (masks are comparison results: all ones or all zeros). */
export const select = (mask: Expr, ifTrue: Expr, ifFalse: Expr): Expr => (f) => {
  ifTrue(f);
  ifFalse(f);
  mask(f);
  f.v128Bitselect();
};
/** The biased exponent field of each (non-negative) lane, as a 64-bit integer. */
export const exponentField = (a: Expr): Expr => (f) => {
  a(f);
  f.i32Const(52).i64x2ShrU();
};
/**
 * A small non-negative 64-bit integer lane (< 2^52) as a double, exactly: placed in the mantissa
 * of 2^52 it reads as 2^52 + n, and subtracting 2^52 is exact.
 */
const intToF64 = (a: Expr): Expr => sub(or(a, int64(0x4330000000000000n)), num(2 ** 52));
/** 2^k for integral double lanes k in [−1022, 1023], built in the exponent field. */
const pow2 = (k: Expr): Expr => (f) => {
  k(f);
  f.i32x4TruncSatF64x2SZero().i64x2ExtendLowI32x4S();
  int64(1023n)(f);
  f.i64x2Add().i32Const(52).i64x2Shl();
};

export const SIGN = int64(0x8000000000000000n);
/**
 * −|a| of two f64 lanes: the sign bits set, one OR (abs then neg would build two masks); the same
 * bits as −|a|, a NaN keeping its payload.
 */
export const negAbs = (a: Expr): Expr => or(a, SIGN);
export const MANTISSA = int64(0x000fffffffffffffn);
const ONE_BITS = int64(0x3ff0000000000000n);
const ZERO = num(0);
const ONE = num(1);
export const TWO = num(2);
const HALF = num(0.5);

/**
 * A new pool of scratch v128 locals: called as `pool(f, count)`, it gives `count` locals of
 * function body `f`, the same ones on every call for that body (declared on first need). An
 * emitter takes its intermediates from a pool and leaves only its result on the stack, so they are
 * dead once it returns and the next call (on the other half of a vector, or another function of
 * the kernel) reuses them instead of growing the function's frame. Emitters whose locals are live
 * while another emitter runs (a caller's across its callee's) take them from different pools.
 */
export function localPool(): (f: FunctionBody, count: number) => number[] {
  const pools = new WeakMap<FunctionBody, number[]>();
  return (f, count) => {
    let pool = pools.get(f);
    if (!pool) pools.set(f, (pool = []));
    while (pool.length < count) pool.push(f.local(V128));
    return pool.slice(0, count);
  };
}

/** The transcriptions' intermediates (exp, log1p and log never run inside one another). */
const scratch = localPool();

/** Local `local` = `value`. */
export function assign(f: FunctionBody, local: number, value: Expr): void {
  value(f);
  f.set(local);
}

// fdlibm's constants (the same doubles as in e_exp.c, s_log1p.c and e_log.c; each decimal literal
// below rounds to the hex pattern the C source documents, which the tests check through results).
export const LN2_HI = 6.93147180369123816490e-01; // 0x3fe62e42 fee00000: k·LN2_HI is exact for |k| < 2000
export const LN2_LO = 1.90821492927058770002e-10; // 0x3dea39ef 35793c76
export const INV_LN2 = 1.44269504088896338700e+00; // 0x3ff71547 652b82fe
const EXP_P = [1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05, -1.65339022054652515390e-06, 4.13813679705723846039e-08];
const EXP_OVERFLOW = 7.09782712893383973096e+02; // 0x40862e42 fefa39ef
const EXP_UNDERFLOW = -7.45133219101941108420e+02; // 0xc0874910 d52d3051
// Shared by log and log1p (Lg1…Lg7 and Lp1…Lp7 are the same numbers).
const LOG_L = [6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01];

/** Horner's rule in fdlibm's nesting: c0 + t·(c1 + t·(c2 + …)), innermost product last. */
export function horner(t: Expr, coefficients: readonly number[]): Expr {
  let acc: Expr = num(coefficients[coefficients.length - 1]!);
  for (let i = coefficients.length - 2; i >= 0; i--) acc = add(num(coefficients[i]!), mul(t, acc));
  return acc;
}

/**
 * Leaves exp of the two f64 lanes of V128 local `x` on the stack (an f64x2), bit-identical to
 * Math.exp per lane (fdlibm's e_exp.c as ported in V8, including its exp(1) = Math.E).
 */
export function emitExpF64x2(f: FunctionBody, x: number): void {
  const [kf, r, lo, hi, c, y, sc, t] = scratch(f, 8) as [number, number, number, number, number, number, number, number];
  const X = get(x);
  // Reduction x = k·ln2 + r for |x| > ln2/2 (hx > 0x3fd62e42); k = 0 below. fdlibm takes k = ±1
  // without the product for |x| < 1.5·ln2, but there trunc(x/ln2 ± 1/2) is ±1 too and
  // x − (±1)·ln2HI, (±1)·ln2LO are the same doubles, so one formula serves both.
  const reduce = ge(abs(X), num(fromWords(0x3fd62e43, 0)));
  assign(f, kf, (g) => {
    // trunc(invln2·x ± 0.5): the ±0.5 carries x's sign (fdlibm's halF[xsb]).
    add(mul(num(INV_LN2), X), or(and(X, SIGN), HALF))(g);
    g.f64x2Trunc();
    reduce(g);
    g.v128And(); // k = 0 where there is no reduction (+0: x − 0·ln2HI is then x itself)
  });
  const K = get(kf);
  assign(f, hi, sub(X, mul(K, num(LN2_HI))));
  assign(f, lo, mul(K, num(LN2_LO)));
  assign(f, r, sub(get(hi), get(lo)));
  const R = get(r);
  assign(f, t, mul(R, R));
  assign(f, c, sub(R, mul(get(t), horner(get(t), EXP_P))));
  const C = get(c);
  // y = 1 − ((lo − r·c/(2 − c)) − hi), then scaled by 2^k. fdlibm writes k = 0 (no reduction) as
  // 1 − (x·c/(c − 2) − x); with lo = +0 and hi = r = x that is the same double: negating a divisor
  // negates the rounded quotient exactly, 0 − q = −q, and a − b = a + (−b) in IEEE arithmetic (the
  // sign of a zero q cannot reach the result, since x ≠ 0 there). One division serves both.
  assign(f, y, sub(ONE, sub(sub(get(lo), div(mul(R, C), sub(TWO, C))), get(hi))));
  // fdlibm scales in two steps where 2^k is not a normal double's power: k = 1024 as y·2·2^1023,
  // k < −1021 as y·2^(k+1000)·2^−1000 (the second product rounds once, to the subnormal result).
  // Elsewhere the second factor is 1, an exact product.
  const low = lt(K, num(-1021));
  const top = eq(K, num(1024));
  assign(f, sc, select(low, num(2 ** -1000), select(top, num(2 ** 1023), ONE)));
  assign(f, t, mul(mul(get(y), pow2(select(low, add(K, num(1000)), select(top, ONE, K)))), get(sc)));
  const result = [
    // |x| < 2^−28 (hx < 0x3e300000): 1 + x.
    (prev: Expr) => select(lt(abs(X), num(2 ** -28)), add(ONE, X), prev),
    // V8 returns Math.E for exactly 1 (the reduction would round it one ulp off).
    (prev: Expr) => select(eq(X, ONE), num(2.718281828459045), prev),
    // Past the thresholds: overflow to +∞ (also exp(+∞)), underflow to +0 (also exp(−∞)).
    (prev: Expr) => select(gt(X, num(EXP_OVERFLOW)), num(Infinity), prev),
    (prev: Expr) => select(lt(X, num(EXP_UNDERFLOW)), ZERO, prev),
    // NaN in, NaN out (fdlibm's x + x).
    (prev: Expr) => select(ne(X, X), add(X, X), prev),
  ].reduce<Expr>((prev, wrap) => wrap(prev), get(t));
  result(f);
}

/**
 * Leaves log1p of the two f64 lanes of V128 local `x` on the stack (an f64x2), bit-identical to
 * Math.log1p per lane (fdlibm's s_log1p.c as ported in V8): log1p(±0) = ±0, log1p(−1) = −∞,
 * log1p(x < −1) = NaN.
 */
export function emitLog1pF64x2(f: FunctionBody, x: number): void {
  const [u, kf, c, u1, fr, huZero, hfsq, s, z, klo, khi, k0] = scratch(f, 12) as [number, number, number, number, number, number, number, number, number, number, number, number];
  const X = get(x);
  // k = 0 path: 1 + x in [√2/2, √2), i.e. −D(0x3fd2bec5:0) < x < D(0x3fda827a:0) (hx > 0 or
  // hx ≤ 0xbfd2bec4 as signed, below 0x3fda827a); there f = x, k = 0 and hu = 1.
  assign(f, k0, and(gt(X, num(-fromWords(0x3fd2bec5, 0))), lt(X, num(fromWords(0x3fda827a, 0)))));
  const K0 = get(k0);
  // k ≠ 0 path: u = 1 + x, or x itself from 2^53 up (hx ≥ 0x43400000), where 1 + x would add
  // nothing and the correction term is 0.
  const big = ge(X, num(2 ** 53));
  assign(f, u, select(big, X, add(ONE, X)));
  const U = get(u);
  assign(f, kf, sub(intToF64(exponentField(U)), num(1023)));
  const K = get(kf);
  // Correction c = ((1 + x) − u)/u, computed as fdlibm does on either side of u = 2; 0 from 2^53,
  // and 0 on the k = 0 path too (where fdlibm has no c; see below).
  assign(f, c, andNot(div(select(gt(K, ZERO), sub(ONE, sub(U, X)), sub(X, sub(U, ONE))), U), or(big, K0)));
  // Normalise u to [√2/2, √2): the mantissa in [1, 2) (u1), halved with k + 1 from hu ≥ 0x6a09e.
  assign(f, u1, or(and(U, MANTISSA), ONE_BITS));
  const U1 = get(u1);
  const below = lt(U1, num(fromWords(0x3ff6a09e, 0)));
  // fdlibm's hu == 0 (|f| < 2^−20): the top 20 mantissa bits are 0 when u1 stays, or hu ≥ 0xffffd
  // when halved ((0x100000 − hu) >> 2 == 0); never on the k = 0 path.
  assign(f, huZero, andNot(select(below, lt(U1, num(fromWords(0x3ff00001, 0))), ge(U1, num(fromWords(0x3ffffffd, 0)))), K0));
  assign(f, fr, select(K0, X, sub(select(below, U1, mul(U1, HALF)), ONE)));
  assign(f, kf, andNot(select(below, K, add(K, ONE)), K0));
  const F = get(fr);
  // fdlibm returns different expressions for k = 0 and k ≠ 0 (and for f = 0), but this path never
  // reaches k = 0 (its thresholds put u = 1 + x below D(0x3fe6a09e:0) or at or above
  // D(0x3ff6a09e:0)), and with k = 0 and c = 0 the k ≠ 0 expression is the k = 0 one exactly:
  // 0·ln2_hi − (A − f) is f − A (a − b = −(b − a) in IEEE arithmetic, and a zero there is +0 on
  // both sides), and adding 0·ln2_lo + 0 = +0 changes nothing. Likewise at f = 0 the short series
  // gives k·ln2_hi + (k·ln2_lo + c), fdlibm's f = 0 value. So one expression serves all lanes.
  assign(f, khi, mul(K, num(LN2_HI)));
  assign(f, klo, add(mul(K, num(LN2_LO)), get(c)));
  const KHI = get(khi);
  const KLO = get(klo);
  assign(f, hfsq, mul(mul(HALF, F), F));
  const H = get(hfsq);
  // |f| < 2^−20: a short series R.
  const rShort = mul(H, sub(ONE, mul(num(0.66666666666666666), F)));
  const short = sub(KHI, sub(sub(rShort, KLO), F));
  // General: s = f/(2 + f), R = z·(Lp1 + z·(… + z·Lp7)) with z = s².
  assign(f, s, div(F, add(TWO, F)));
  const S = get(s);
  assign(f, z, mul(S, S));
  assign(f, z, mul(get(z), horner(get(z), LOG_L))); // R (z is dead once R is formed)
  const general = sub(KHI, sub(sub(H, add(mul(S, add(H, get(z))), KLO)), F));
  const result = [
    // |x| < 2^−29 (ax < 0x3e200000): x − x²/2, or x itself below 2^−54 (ax < 0x3c900000; keeps −0).
    (prev: Expr) => select(lt(abs(X), num(2 ** -29)), select(lt(abs(X), num(2 ** -54)), X, sub(X, mul(mul(X, X), HALF))), prev),
    // x ≤ −1: −∞ at −1, NaN below (also for −∞).
    (prev: Expr) => select(le(X, num(-1)), select(eq(X, num(-1)), num(-Infinity), num(NaN)), prev),
    // +∞ and NaN: x + x.
    (prev: Expr) => select(or(eq(X, num(Infinity)), ne(X, X)), add(X, X), prev),
  ].reduce<Expr>((prev, wrap) => wrap(prev), select(get(huZero), short, general));
  result(f);
}

/**
 * Leaves log of the two f64 lanes of V128 local `x` on the stack (an f64x2), bit-identical to
 * Math.log per lane (fdlibm's e_log.c as ported in V8): log(±0) = −∞, log(x < 0) = NaN.
 */
export function emitLogF64x2(f: FunctionBody, x: number): void {
  const [xs, kf, u1, up, fr, s, z, w, r, hfsq, khi, klo] = scratch(f, 12) as [number, number, number, number, number, number, number, number, number, number, number, number];
  const X = get(x);
  // Subnormals (hx < 0x00100000 for positive x) are scaled by 2^54 first, k starting at −54.
  assign(f, up, lt(X, num(2 ** -1022)));
  assign(f, xs, select(get(up), mul(X, num(2 ** 54)), X));
  assign(f, kf, add(sub(intToF64(exponentField(get(xs))), num(1023)), and(get(up), num(-54))));
  // x = 2^k·(1 + f) with 1 + f in [√2/2, √2): the mantissa in [1, 2) (u1), halved with k + 1 from
  // hx & 0xfffff ≥ 0x6a09c (where fdlibm's (hx + 0x95f64) & 0x100000 sets).
  assign(f, u1, or(and(get(xs), MANTISSA), ONE_BITS));
  const U1 = get(u1);
  assign(f, up, ge(U1, num(fromWords(0x3ff6a09c, 0))));
  const UP = get(up);
  assign(f, fr, sub(select(UP, mul(U1, HALF), U1), ONE));
  assign(f, kf, add(get(kf), and(UP, ONE)));
  const K = get(kf);
  const F = get(fr);
  // fdlibm returns different expressions for k = 0 and k ≠ 0, and for f = 0; they are the same
  // doubles, so one expression serves all lanes: with k = 0, 0·ln2_hi − (A − f) is f − A (a − b =
  // −(b − a) in IEEE arithmetic, and a zero there is +0 on both sides) and ± 0·ln2_lo = ±(+0)
  // changes nothing; with f = 0 the short series is k·ln2_hi + k·ln2_lo.
  assign(f, khi, mul(K, num(LN2_HI)));
  assign(f, klo, mul(K, num(LN2_LO)));
  const KHI = get(khi);
  const KLO = get(klo);
  // |f| < 2^−20 (fdlibm: (0xfffff & (2 + hx)) < 3, i.e. the top mantissa bits are 0, 0xffffe or
  // 0xfffff): a short series R.
  const rShort = mul(mul(F, F), sub(HALF, mul(num(0.33333333333333333), F)));
  const short = sub(KHI, sub(sub(rShort, KLO), F));
  // General: s = f/(2 + f), R from z = s², w = z² in fdlibm's split into odd and even terms.
  assign(f, s, div(F, add(TWO, F)));
  const S = get(s);
  assign(f, z, mul(S, S));
  const Z = get(z);
  assign(f, w, mul(Z, Z));
  const W = get(w);
  const [l1, l2, l3, l4, l5, l6, l7] = LOG_L as [number, number, number, number, number, number, number];
  const t1 = mul(W, add(num(l2), mul(W, add(num(l4), mul(W, num(l6))))));
  const t2 = mul(Z, add(num(l1), mul(W, add(num(l3), mul(W, add(num(l5), mul(W, num(l7))))))));
  assign(f, r, add(t2, t1));
  const R = get(r);
  assign(f, hfsq, mul(mul(HALF, F), F));
  const H = get(hfsq);
  // 0x6147a ≤ hx & 0xfffff ≤ 0x6b851 (fdlibm's i | j > 0): the more accurate form with hfsq.
  const nearSqrt2 = and(ge(U1, num(fromWords(0x3ff6147a, 0))), lt(U1, num(fromWords(0x3ff6b852, 0))));
  const withHfsq = sub(KHI, sub(sub(H, add(mul(S, add(H, R)), KLO)), F));
  const plain = sub(KHI, sub(sub(mul(S, sub(F, R)), KLO), F));
  const small = or(lt(U1, num(fromWords(0x3ff00001, 0))), ge(U1, num(fromWords(0x3ffffffe, 0))));
  const result = [
    // x < 0 (and −∞): NaN; ±0: −∞.
    (prev: Expr) => select(lt(X, ZERO), num(NaN), prev),
    (prev: Expr) => select(eq(X, ZERO), num(-Infinity), prev),
    // +∞ and NaN: x + x.
    (prev: Expr) => select(or(eq(X, num(Infinity)), ne(X, X)), add(X, X), prev),
  ].reduce<Expr>((prev, wrap) => wrap(prev), select(small, short, select(nearSqrt2, withHfsq, plain)));
  result(f);
}

/** sigmoid's locals: its own pool, since e is exp's argument, live while exp takes scratch locals. */
const sigmoidLocals = localPool();

/**
 * The logistic function as the JavaScript kernels' helper computes it (jsCode.ts): e = e^(−|x|),
 * then 1/(1 + e) for x ≥ 0 and e/(1 + e) below, in doubles, so the same bits.
 */
export function emitSigmoidF64x2(f: FunctionBody, x: number): void {
  const [e, d] = sigmoidLocals(f, 2) as [number, number];
  assign(f, e, negAbs(get(x)));
  emitExpF64x2(f, e);
  f.set(e);
  f.f64Const(1).f64x2Splat().get(e).f64x2Add().set(d);
  f.f64Const(1).f64x2Splat().get(d).f64x2Div();
  f.get(e).get(d).f64x2Div();
  f.get(x).f64Const(0).f64x2Splat().f64x2Ge();
  f.v128Bitselect();
}
