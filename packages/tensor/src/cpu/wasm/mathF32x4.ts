// exp, log1p, log, sigmoid, tanh, expm1, sin and cos of four float32 lanes, emitted as WebAssembly
// SIMD, giving per lane the bits of the JavaScript kernels' `Math.fround(Math.exp(x))` (and the
// others; for sigmoid, their formula): V8's fdlibm result rounded once to float32. (erf, at the
// end of this file, is the exception: it computes the CPU's float64 erf outright, lane by lane.)
// Only that float32 is observable, so instead of running fdlibm's algorithm each lane first takes
// a fast path:
//
//   1. d = a double approximation of f(x) with a proven relative error bound ε (below), from a
//      short reduction and a polynomial, at most one division and, for exp (and what calls it),
//      a table of 256 doubles in the memory (EXP_TABLE_ADDRESS);
//   2. if d lies farther than (ε·|d| + fdlibm's own error, a few ulps of double) from every float32
//      rounding boundary, then d and fdlibm's double round to the same float32, and that is the
//      answer;
//   3. otherwise (an ambiguous lane), and on lanes outside the fast path's domain (NaN, infinities,
//      zeros and negatives for the logarithms, float32 subnormal results of exp and sigmoid, sin and
//      cos beyond 4096, ...), the exact path runs on all four lanes, inside an `if` taken only when
//      some lane needs it, and its result replaces those lanes. For exp, log1p, log and sigmoid it is
//      a transcription of fdlibm's algorithm (mathF64x2.ts); for tanh, expm1, sin and cos, a call of
//      the host's own Math function on each lane, imported into the module (importHostMath).
//
// The boundary test. In the fast domain d is a normal double whose float32 rounding is a normal
// float32 or +∞ (exp's overflow; log1p's tiny inputs, whose d is x itself, are the one other case,
// below). The float32 rounding boundaries are the midpoints between adjacent float32 values; in
// d's bits those are the doubles whose low 29 mantissa bits are 2^28 (the float32 values
// themselves, powers of two included, have them 0, so no boundary sits at a binade edge). Let d
// be in [2^E, 2^(E+1)) with ulp u = 2^(E−52), and y = f(x) exactly. Then |d − y| ≤ ε·|y| ≤
// ε·2^53·u·(1 + 2ε), and fdlibm's F has |F − y| < 1 ulp(y) ≤ 2u (y may lie in the next binade;
// tanh's section assumes twice that). So |d − F| < (ε·2^53·(1 + 2ε) + 2)·u. If the low 29 bits of d are farther than that from 2^28,
// no midpoint lies between d and F (nor on either), and both round to the same float32 (the
// midpoint between the largest float32 and 2^128 is where rounding overflows to +∞). Lanes
// within the window W = 2^w ulps of a midpoint are ambiguous; each function's W is at least twice
// the bound it needs (the margin), and costs an ambiguity rate of 2W/2^29 per lane.
//
// Equal bits are checked in the tests against Math.fround(Math.fn(x)) on a dense sweep of float32
// inputs, the neighbourhoods of every domain threshold, and inputs found to be ambiguous; a run
// over all 2^32 float32 inputs (too slow for the test suite: `node scripts/run.mjs
// scripts/exhaustiveMath.ts`) found no difference either, for every function here.

import { F64, type FunctionBody, HIGH_HALF, JOIN_HIGH, JOIN_LOW, LOW_WORDS, type ModuleBuilder } from './assembler.js';
import { emitExpF64x2, emitLog1pF64x2, emitLogF64x2, emitSigmoidF64x2 } from './mathF64x2.js';
import { type Expr, INV_LN2, LN2_HI, LN2_LO, MANTISSA, SIGN, TWO, abs, add, and, assign, binary, div, eq, exponentField, ge, get, horner, int64, localPool, lt, mul, negAbs, num, or, select, sub } from './mathF64x2.js';
import { ERF_FIT } from '../erfFit.js';
import { KERNEL_CONSTANTS_BYTES } from './heap.js';

/** The bytes of a v128 whose four f32 lanes are `value` (rounded to float32). */
export function f32Splat(value: number): number[] {
  return Array.from(new Uint8Array(new Float32Array([value, value, value, value]).buffer));
}
/** Four f32 lanes = `value` (rounded to float32). */
function f32(value: number): Expr {
  const bytes = f32Splat(value);
  return (f) => void f.v128Const(bytes);
}
/** Four i32 lanes = `value`. */
function i32(value: number): Expr {
  const bytes = Array.from(new Uint8Array(new Int32Array([value, value, value, value]).buffer));
  return (f) => void f.v128Const(bytes);
}
export const lt32 = binary((f) => f.f32x4Lt());
const le32 = binary((f) => f.f32x4Le());
export const gt32 = binary((f) => f.f32x4Gt());
export const ge32 = binary((f) => f.f32x4Ge());
export const eq32 = binary((f) => f.f32x4Eq());
/** |a| of four f32 lanes (the sign bits cleared; NaN stays NaN). */
const abs32 = (a: Expr): Expr => and32(a, i32(0x7fffffff));
/** b < a ? b : a, and a < b ? b : a: NaN in `a` stays. */
export const pmin32 = binary((f) => f.f32x4Pmin());
export const pmax32 = binary((f) => f.f32x4Pmax());
const and32 = binary((f) => f.v128And());
const or32 = binary((f) => f.v128Or());
const addI64 = binary((f) => f.i64x2Add());
/** The bits of `a` (i64 lanes) shifted left by `bits`. */
const shl = (a: Expr, bits: number): Expr => (f) => {
  a(f);
  f.i32Const(bits).i64x2Shl();
};


/** How one function's fast path is built. */
interface FastPath {
  /** The float32 inputs the approximation runs on (exp clamps them); the identity if absent. */
  readonly input?: (x: Expr) => Expr;
  /** Leaves d ≈ f(x) on the stack for the two f64 lanes of V128 local `x` (promoted float32 values from `input`). */
  readonly approx: (f: FunctionBody, x: number) => void;
  /** The exact transcription (an f64x2 emitter of mathF64x2.ts), run on the original inputs. */
  readonly exact: (f: FunctionBody, x: number) => void;
  /** log2 of the ambiguity window W, in ulps of d. */
  readonly window: number;
  /** A mask over the four float32 lanes of `input`: lanes where the rounded d is the answer unless ambiguous. */
  readonly domain: (x: Expr) => Expr;
  /**
   * A shorter approximation for a common range: where `when` (a mask over the four float32 lanes
   * of `input`) holds on every lane, `approx` runs instead of the general one, with the same ε
   * bound or a tighter one (so the same window and exact path).
   */
  readonly special?: { readonly when: (x: Expr) => Expr; readonly approx: (f: FunctionBody, x: number) => void };
}

/*
 * The f32x4 emitters' v128 locals, one pool per level of nesting, so that no emitter can overwrite
 * a local of one that calls it (mathF64x2.ts's exact transcriptions have pools of their own):
 * emitFast's stay live across the approximation and the exact path it runs; a wrapper's (log1p's
 * 1 + x, sigmoid's −|x| and e, tanh's, expm1's and trigApprox's values) across the approximation it
 * calls; the approximations (expApprox, logCore) and the polynomials' powers call no emitter and
 * never run inside one another, so they share one pool. erf, which has no fast path and never runs
 * inside emitFast, takes its two halves from emitFast's pool and its values from one of its own
 * (erfLocals), live across the exp transcriptions it calls.
 */
const fastLocals = localPool();
const wrapperLocals = localPool();
const approxLocals = localPool();

/**
 * t², t⁴, t⁸, … of V128 local `t`, each the square of the one before, into the locals `powers`
 * (one per level of the estrin polynomials that read them), emitted now; returns `powers`, so that
 * two polynomials in the same t can share them (trigApprox's).
 */
function squares(f: FunctionBody, t: number, powers: readonly number[]): readonly number[] {
  let power = t;
  for (const next of powers) {
    assign(f, next, mul(get(power), get(power)));
    power = next;
  }
  return powers;
}

/**
 * Σ c_i·t^i by Estrin's scheme, t in V128 local `t`: pairs c_2j + c_2j+1·t, then pairs of those
 * with t², t⁴, …, read from the locals `powers` (filled by squares(), one per level, no more).
 * The dependency chain is about log2(n) products deep instead of Horner's n products and sums,
 * which is what bounds a kernel loop whose iterations the processor can overlap only a few at a
 * time. Every term c_i·t^i passes through at most 1 + Σ_ℓ (2^ℓ − 1 + 2) roundings over its levels
 * ℓ ≥ 1 (the power t^(2^ℓ) made by ℓ squarings carries 2^ℓ − 1, then a product and a sum), plus its
 * coefficient's.
 */
function estrin(t: number, coefficients: readonly number[], powers: readonly number[]): Expr {
  let terms: Expr[] = [];
  for (let i = 0; i < coefficients.length; i += 2) {
    const c0 = num(coefficients[i]!);
    const c1 = coefficients[i + 1];
    terms.push(c1 === undefined ? c0 : add(c0, c1 === 1 ? get(t) : mul(get(t), num(c1))));
  }
  let level = 0;
  while (terms.length > 1) {
    const power = powers[level++];
    if (power === undefined) throw new Error(`internal: estrin over ${coefficients.length} coefficients needs more than ${powers.length} powers`);
    const paired: Expr[] = [];
    for (let i = 0; i < terms.length; i += 2) paired.push(i + 1 < terms.length ? add(terms[i]!, mul(get(power), terms[i + 1]!)) : terms[i]!);
    terms = paired;
  }
  if (level !== powers.length) throw new Error(`internal: estrin over ${coefficients.length} coefficients reads ${level} powers, not ${powers.length}`);
  return terms[0]!;
}

/** The four float32 lanes of `x` as doubles: lanes 0, 1 into V128 local `lo`, lanes 2, 3 into `hi`. */
function promoteHalves(f: FunctionBody, x: Expr, lo: number, hi: number): void {
  x(f);
  f.f64x2PromoteLowF32x4().set(lo);
  x(f);
  x(f);
  f.i8x16Shuffle(HIGH_HALF).f64x2PromoteLowF32x4().set(hi);
}

/**
 * Runs the f64x2 emitter `each` (it leaves its two results on the stack) on the two halves of the
 * four float32 lanes of V128 local `x`, promoted to doubles in `lo` and `hi` (promoteHalves), and
 * leaves the four results rounded to float32, in lane order (an f32x4): how emitFast's exact path
 * and erf run a double computation on float32 lanes.
 */
function perHalf(f: FunctionBody, x: number, lo: number, hi: number, each: (f: FunctionBody, v: number) => void): void {
  promoteHalves(f, get(x), lo, hi);
  each(f, lo);
  f.f32x4DemoteF64x2Zero();
  each(f, hi);
  f.f32x4DemoteF64x2Zero().i8x16Shuffle(JOIN_LOW);
}

/** Emitted inside the exact path's `if` block, once per entry (tests count entries with it). */
export type OnExact = (f: FunctionBody) => void;

/**
 * Leaves an i32x4 that is nonzero in each lane whose double (lanes 0, 1 of V128 local `lo`, 2, 3 of
 * `hi`) lies at least 2^window ulps from every float32 rounding boundary (the boundary test above),
 * zero in the ambiguous ones: the low 29 bits of d at least W from 2^28, i.e. (low − (2^28 − W))
 * mod 2^29 ≥ 2W, shifted right by log2(2W).
 */
export function unambiguous(f: FunctionBody, lo: number, hi: number, window: number): void {
  f.get(lo).get(hi).i8x16Shuffle(LOW_WORDS);
  i32(2 ** 28 - 2 ** window)(f);
  f.i32x4Sub();
  i32(2 ** 29 - 1)(f);
  f.v128And().i32Const(window + 1).i32x4ShrU();
}

function emitFast(f: FunctionBody, x: number, path: FastPath, onExact?: OnExact): void {
  const [xs, lo, hi, res, need] = fastLocals(f, 5) as [number, number, number, number, number];
  let X = get(x);
  if (path.input) {
    assign(f, xs, path.input(X));
    X = get(xs);
  }
  promoteHalves(f, X, lo, hi);
  if (path.special) {
    path.special.when(X)(f);
    f.i32x4AllTrue().if();
    path.special.approx(f, lo);
    f.set(lo);
    path.special.approx(f, hi);
    f.set(hi);
    f.else();
  }
  path.approx(f, lo);
  f.set(lo);
  path.approx(f, hi);
  f.set(hi);
  if (path.special) f.end();
  // The four doubles rounded to float32.
  f.get(lo).f32x4DemoteF64x2Zero().get(hi).f32x4DemoteF64x2Zero().i8x16Shuffle(JOIN_LOW).set(res);
  unambiguous(f, lo, hi, path.window);
  // Needs the exact path: outside the domain, or ambiguous.
  path.domain(X)(f);
  f.v128And();
  i32(0)(f);
  f.i32x4Eq().tee(need).v128AnyTrue().if();
  onExact?.(f);
  perHalf(f, x, lo, hi, path.exact);
  f.get(res).get(need).v128Bitselect().set(res);
  f.end();
  f.get(res);
}

// ---------------------------------------------------------------------------------------------
// exp. x is first clamped to [−104, 89]; then y = x·(256/ln2) (one product), n = 256e + j =
// nearest(y), j in [0, 256), v = y − n, and e^x ≈ 2^e·T[j]·p(v): T[j] = 2^(j/256) from a table of
// 256 doubles in the memory (EXP_TABLE_ADDRESS), e added to T[j]'s exponent field, p(v) the Taylor
// polynomial of e^r of degree 3 in r = v·ln2/256, written in v (coefficients (ln2/256)^i/i!). (The
// table replaced a reduction by whole multiples of ln2 and a polynomial of degree 10: a tighter
// bound, about a quarter less time an exp; benchmarks/NOTES.md, "exp by a table". Reducing in y's
// units replaced r = (x − n·C_HI) − n·C_LO, two dependent products and sums more on the chain:
// ~10% less an exp; "Shorter chains". 256 entries instead of 64 took the polynomial from degree 4
// to 3, one squaring and one level of Estrin's scheme fewer: ~9% less; "exp by a table of 256".)
//
// Error bound, for float32 x in [−104, 89] (|n| ≤ 38,406 < 2^16):
// - y: 256·INV_LN2 is 256/ln2 within 2^−53 relative, and the product rounds once: y =
//   (256x/ln2)·(1 + δ), |δ| ≤ 2.0001·2^−53. n = nearest(y) (y + 1.5·2^52 rounds to an integer,
//   exactly as |y| < 2^16), so |v| ≤ 1/2, and v = y − n is exact (n = 0, or y/2 ≤ n ≤ 2y: Sterbenz).
// - e^x = 2^(n/256)·e^(x − n·ln2/256), and x − n·ln2/256 = v·ln2/256 − (x·δ)/(1 + δ): p is evaluated
//   at an r that misses by ≤ 104·2.0002·2^−53 < 2^−45.3, a relative error of e^r of 2.31e−14.
//   |r| ≤ ln2/512 = 0.0013538.
// - T[j]: 2^(j/256) correctly rounded (the bits below were computed with 300-bit integers): ≤ 2^−53.
// - Truncation: |e^r − p| ≤ e^|r|·|r|^4/4!, relative to e^r at most e^(2|r|)·|r|^4/4! ≤ 1.404e−13.
// - Evaluation: Estrin's scheme over 4 coefficients (1 level): each term passes through at most
//   1 + (1 + 2) = 4 roundings (estrin above), ≤ 4·2^−53·1.0014 of e^r; the coefficients
//   (ln2/256)^i/i!, made in doubles within 4·2^−53 each, weigh ≤ 0.0014 of the sum: < 2^−60.
//   p is in [0.9986, 1.0014] and T[j] in [1, 2); adding e to T[j]'s exponent field (2^e·T[j], e in
//   [−151, 128]) is exact and normal, and the product 2^e·T[j]·p rounds once more (2^−53).
// Total ε ≤ 1.404e−13 + 2.31e−14 + 4.45e−16 + 2·1.12e−16 < 1.65e−13 < 2^−42.4 (1.71e−13), inside
// the 2^−41 that sigmoid, tanh and expm1 (which call expApprox, on inputs within [−104, 89]) assume.
// The bound needed is 2^53·2^−42.4·(1 + 2^−41) + 2 < 1,555 ulps; the window stays W = 2^13 (over
// five times that), so 2^−15 of lanes are ambiguous.
//
// Domain. The boundary test describes the rounding of d to a normal float32 or to +∞: the
// midpoint between the largest float32 and 2^128 (the overflow threshold) is a boundary like any
// other. So the rounded d is the answer from x = −87.33 (e^−87.33 > 2^−126, the least normal;
// e^−87.3365 = 2^−126) up, and past 88.7229 it is +∞ unless ambiguous. Clamping at 89 keeps that
// (e^89 > 2^128) and sends +∞ there too. Clamping at −104 gives +0 for x ≤ −104 (and −∞), since
// e^−104 < 0.98·2^−150 (half the least float32 subnormal; e^−103.972 = 2^−150), far from the
// boundary. Left to the exact path: −104 < x < −87.33 (float32 subnormal results) and NaN.

const MAGIC = 1.5 * 2 ** 52;
/** log2 of the table's length: T[j] = 2^(j/256). */
const EXP_TABLE_BITS = 8;
/** e^r's Taylor coefficients to r³, in v = r·256/ln2: (ln2/256)^i/i!. */
const EXP_TAYLOR = [1, 1, 1 / 2, 1 / 6].map((c, i) => c * (Math.LN2 / 2 ** EXP_TABLE_BITS) ** i);
/**
 * The bits of 2^(j/256), j = 0…255, each correctly rounded to double (computed with 300-bit
 * integers; fixed here rather than computed at startup, so that no engine's Math.pow enters the bound).
 */
const EXP_TABLE_BITS64 = [
  0x3ff0000000000000n, 0x3ff00b1afa5abcbfn, 0x3ff0163da9fb3335n, 0x3ff02168143b0281n, 0x3ff02c9a3e778061n, 0x3ff037d42e11bbccn,
  0x3ff04315e86e7f85n, 0x3ff04e5f72f654b1n, 0x3ff059b0d3158574n, 0x3ff0650a0e3c1f89n, 0x3ff0706b29ddf6den, 0x3ff07bd42b72a836n,
  0x3ff0874518759bc8n, 0x3ff092bdf66607e0n, 0x3ff09e3ecac6f383n, 0x3ff0a9c79b1f3919n, 0x3ff0b5586cf9890fn, 0x3ff0c0f145e46c85n,
  0x3ff0cc922b7247f7n, 0x3ff0d83b23395decn, 0x3ff0e3ec32d3d1a2n, 0x3ff0efa55fdfa9c5n, 0x3ff0fb66affed31bn, 0x3ff1073028d7233en,
  0x3ff11301d0125b51n, 0x3ff11edbab5e2ab6n, 0x3ff12abdc06c31ccn, 0x3ff136a814f204abn, 0x3ff1429aaea92de0n, 0x3ff14e95934f312en,
  0x3ff15a98c8a58e51n, 0x3ff166a45471c3c2n, 0x3ff172b83c7d517bn, 0x3ff17ed48695bbc0n, 0x3ff18af9388c8dean, 0x3ff1972658375d2fn,
  0x3ff1a35beb6fcb75n, 0x3ff1af99f8138a1cn, 0x3ff1bbe084045cd4n, 0x3ff1c82f95281c6bn, 0x3ff1d4873168b9aan, 0x3ff1e0e75eb44027n,
  0x3ff1ed5022fcd91dn, 0x3ff1f9c18438ce4dn, 0x3ff2063b88628cd6n, 0x3ff212be3578a819n, 0x3ff21f49917ddc96n, 0x3ff22bdda27912d1n,
  0x3ff2387a6e756238n, 0x3ff2451ffb82140an, 0x3ff251ce4fb2a63fn, 0x3ff25e85711ece75n, 0x3ff26b4565e27cddn, 0x3ff2780e341ddf29n,
  0x3ff284dfe1f56381n, 0x3ff291ba7591bb70n, 0x3ff29e9df51fdee1n, 0x3ff2ab8a66d10f13n, 0x3ff2b87fd0dad990n, 0x3ff2c57e39771b2fn,
  0x3ff2d285a6e4030bn, 0x3ff2df961f641589n, 0x3ff2ecafa93e2f56n, 0x3ff2f9d24abd886bn, 0x3ff306fe0a31b715n, 0x3ff31432edeeb2fdn,
  0x3ff32170fc4cd831n, 0x3ff32eb83ba8ea32n, 0x3ff33c08b26416ffn, 0x3ff3496266e3fa2dn, 0x3ff356c55f929ff1n, 0x3ff36431a2de883bn,
  0x3ff371a7373aa9cbn, 0x3ff37f26231e754an, 0x3ff38cae6d05d866n, 0x3ff39a401b7140efn, 0x3ff3a7db34e59ff7n, 0x3ff3b57fbfec6cf4n,
  0x3ff3c32dc313a8e5n, 0x3ff3d0e544ede173n, 0x3ff3dea64c123422n, 0x3ff3ec70df1c5175n, 0x3ff3fa4504ac801cn, 0x3ff40822c367a024n,
  0x3ff4160a21f72e2an, 0x3ff423fb2709468an, 0x3ff431f5d950a897n, 0x3ff43ffa3f84b9d4n, 0x3ff44e086061892dn, 0x3ff45c2042a7d232n,
  0x3ff46a41ed1d0057n, 0x3ff4786d668b3237n, 0x3ff486a2b5c13cd0n, 0x3ff494e1e192aed2n, 0x3ff4a32af0d7d3den, 0x3ff4b17dea6db7d7n,
  0x3ff4bfdad5362a27n, 0x3ff4ce41b817c114n, 0x3ff4dcb299fddd0dn, 0x3ff4eb2d81d8abffn, 0x3ff4f9b2769d2ca7n, 0x3ff508417f4531een,
  0x3ff516daa2cf6642n, 0x3ff5257de83f4eefn, 0x3ff5342b569d4f82n, 0x3ff542e2f4f6ad27n, 0x3ff551a4ca5d920fn, 0x3ff56070dde910d2n,
  0x3ff56f4736b527dan, 0x3ff57e27dbe2c4cfn, 0x3ff58d12d497c7fdn, 0x3ff59c0827ff07ccn, 0x3ff5ab07dd485429n, 0x3ff5ba11fba87a03n,
  0x3ff5c9268a5946b7n, 0x3ff5d84590998b93n, 0x3ff5e76f15ad2148n, 0x3ff5f6a320dceb71n, 0x3ff605e1b976dc09n, 0x3ff6152ae6cdf6f4n,
  0x3ff6247eb03a5585n, 0x3ff633dd1d1929fdn, 0x3ff6434634ccc320n, 0x3ff652b9febc8fb7n, 0x3ff6623882552225n, 0x3ff671c1c70833f6n,
  0x3ff68155d44ca973n, 0x3ff690f4b19e9538n, 0x3ff6a09e667f3bcdn, 0x3ff6b052fa75173en, 0x3ff6c012750bdabfn, 0x3ff6cfdcddd47645n,
  0x3ff6dfb23c651a2fn, 0x3ff6ef9298593ae5n, 0x3ff6ff7df9519484n, 0x3ff70f7466f42e87n, 0x3ff71f75e8ec5f74n, 0x3ff72f8286ead08an,
  0x3ff73f9a48a58174n, 0x3ff74fbd35d7cbfdn, 0x3ff75feb564267c9n, 0x3ff77024b1ab6e09n, 0x3ff780694fde5d3fn, 0x3ff790b938ac1cf6n,
  0x3ff7a11473eb0187n, 0x3ff7b17b0976cfdbn, 0x3ff7c1ed0130c132n, 0x3ff7d26a62ff86f0n, 0x3ff7e2f336cf4e62n, 0x3ff7f3878491c491n,
  0x3ff80427543e1a12n, 0x3ff814d2add106d9n, 0x3ff82589994cce13n, 0x3ff8364c1eb941f7n, 0x3ff8471a4623c7adn, 0x3ff857f4179f5b21n,
  0x3ff868d99b4492edn, 0x3ff879cad931a436n, 0x3ff88ac7d98a6699n, 0x3ff89bd0a478580fn, 0x3ff8ace5422aa0dbn, 0x3ff8be05bad61778n,
  0x3ff8cf3216b5448cn, 0x3ff8e06a5e0866d9n, 0x3ff8f1ae99157736n, 0x3ff902fed0282c8an, 0x3ff9145b0b91ffc6n, 0x3ff925c353aa2fe2n,
  0x3ff93737b0cdc5e5n, 0x3ff948b82b5f98e5n, 0x3ff95a44cbc8520fn, 0x3ff96bdd9a7670b3n, 0x3ff97d829fde4e50n, 0x3ff98f33e47a22a2n,
  0x3ff9a0f170ca07ban, 0x3ff9b2bb4d53fe0dn, 0x3ff9c49182a3f090n, 0x3ff9d674194bb8d5n, 0x3ff9e86319e32323n, 0x3ff9fa5e8d07f29en,
  0x3ffa0c667b5de565n, 0x3ffa1e7aed8eb8bbn, 0x3ffa309bec4a2d33n, 0x3ffa42c980460ad8n, 0x3ffa5503b23e255dn, 0x3ffa674a8af46052n,
  0x3ffa799e1330b358n, 0x3ffa8bfe53c12e59n, 0x3ffa9e6b5579fdbfn, 0x3ffab0e521356eban, 0x3ffac36bbfd3f37an, 0x3ffad5ff3a3c2774n,
  0x3ffae89f995ad3adn, 0x3ffafb4ce622f2ffn, 0x3ffb0e07298db666n, 0x3ffb20ce6c9a8952n, 0x3ffb33a2b84f15fbn, 0x3ffb468415b749b1n,
  0x3ffb59728de5593an, 0x3ffb6c6e29f1c52an, 0x3ffb7f76f2fb5e47n, 0x3ffb928cf22749e4n, 0x3ffba5b030a1064an, 0x3ffbb8e0b79a6f1fn,
  0x3ffbcc1e904bc1d2n, 0x3ffbdf69c3f3a207n, 0x3ffbf2c25bd71e09n, 0x3ffc06286141b33dn, 0x3ffc199bdd85529cn, 0x3ffc2d1cd9fa652cn,
  0x3ffc40ab5fffd07an, 0x3ffc544778fafb22n, 0x3ffc67f12e57d14bn, 0x3ffc7ba88988c933n, 0x3ffc8f6d9406e7b5n, 0x3ffca3405751c4dbn,
  0x3ffcb720dcef9069n, 0x3ffccb0f2e6d1675n, 0x3ffcdf0b555dc3fan, 0x3ffcf3155b5bab74n, 0x3ffd072d4a07897cn, 0x3ffd1b532b08c968n,
  0x3ffd2f87080d89f2n, 0x3ffd43c8eacaa1d6n, 0x3ffd5818dcfba487n, 0x3ffd6c76e862e6d3n, 0x3ffd80e316c98398n, 0x3ffd955d71ff6075n,
  0x3ffda9e603db3285n, 0x3ffdbe7cd63a8315n, 0x3ffdd321f301b460n, 0x3ffde7d5641c0658n, 0x3ffdfc97337b9b5fn, 0x3ffe11676b197d17n,
  0x3ffe264614f5a129n, 0x3ffe3b333b16ee12n, 0x3ffe502ee78b3ff6n, 0x3ffe653924676d76n, 0x3ffe7a51fbc74c83n, 0x3ffe8f7977cdb740n,
  0x3ffea4afa2a490dan, 0x3ffeb9f4867cca6en, 0x3ffecf482d8e67f1n, 0x3ffee4aaa2188510n, 0x3ffefa1bee615a27n, 0x3fff0f9c1cb6412an,
  0x3fff252b376bba97n, 0x3fff3ac948dd7274n, 0x3fff50765b6e4540n, 0x3fff6632798844f8n, 0x3fff7bfdad9cbe14n, 0x3fff91d802243c89n,
  0x3fffa7c1819e90d8n, 0x3fffbdba3692d514n, 0x3fffd3c22b8f71f1n, 0x3fffe9d96b2a23d9n,
];
/** The byte address of exp's table in every memory the elementwise kernels import (inside KERNEL_CONSTANTS_BYTES, heap.ts). */
export const EXP_TABLE_ADDRESS = 0;
/** The table's bytes, little-endian doubles: the data segment of every module that calls expApprox. */
export const EXP_TABLE: readonly number[] = Array.from(new Uint8Array(new BigUint64Array(EXP_TABLE_BITS64).buffer));
if (EXP_TABLE_ADDRESS + EXP_TABLE.length > KERNEL_CONSTANTS_BYTES) throw new Error('internal: exp\'s table does not fit the kernels\' constants');

/** d ≈ e^x on two f64 lanes (float32 values in [−104, 89]; relative error < 2^−42.4). */
function expApprox(f: FunctionBody, x: number): void {
  const [t, k, r, r2, tj] = approxLocals(f, 5) as [number, number, number, number, number];
  const X = get(x);
  const N = 2 ** EXP_TABLE_BITS;
  f.requireData(EXP_TABLE_ADDRESS, EXP_TABLE);
  assign(f, r, mul(X, num(N * INV_LN2))); // y
  assign(f, t, add(get(r), num(MAGIC)));
  assign(f, r, sub(get(r), sub(get(t), num(MAGIC)))); // v = y − n
  // t's bits are those of 1.5·2^52 plus n: j = n mod 256 is the low 8 bits (j·8, the table's byte
  // offset, in i32 lanes 0 and 2), and shifting right by 8 then left by 52 puts e = floor(n/256)
  // in the exponent field (mod 2^12; 1.5·2^52's own bits shift out).
  assign(f, tj, shl(and(get(t), int64(BigInt(N - 1))), 3));
  f.get(tj).i32x4ExtractLane(0).v128Load64Zero(EXP_TABLE_ADDRESS).set(k);
  f.get(tj).i32x4ExtractLane(2).get(k).v128Load64Lane(EXP_TABLE_ADDRESS, 1);
  f.get(t).i32Const(EXP_TABLE_BITS).i64x2ShrU();
  f.i32Const(52).i64x2Shl().i64x2Add().set(tj);
  mul(get(tj), estrin(r, EXP_TAYLOR, squares(f, r, [r2])))(f);
}

const EXP: FastPath = {
  input: (x) => pmin32(pmax32(x, f32(-104)), f32(89)), // a NaN stays NaN
  approx: expApprox,
  exact: emitExpF64x2,
  window: 13,
  domain: (x) => or32(le32(x, f32(-104)), ge32(x, f32(-87.33))),
};

// ---------------------------------------------------------------------------------------------
// log and log1p: log(u) for a positive normal double u = 2^k·m, m in [OFF, 2·OFF) (OFF =
// 0.689453125), as k·LN2_HI + ((k·LN2_LO + (log(c) + r)) + r²·Q(r)): c from a table of 128
// (LOG_TABLE_ADDRESS), r = m/c − 1 = f·(1/c) − (1 − 1/c) with f = m − 1 (exact: Sterbenz), and
// log1p(r) ≈ r + r²·Q(r), Q = −1/2 + r/3 + r²·(−1/4 + r/5). k, m and the entry come from the bits
// without a branch: adding bits(1) − bits(OFF) in the exponent field's units carries into the
// exponent exactly when the mantissa is at or past 2·OFF's (k = exponent − 1023 there); the mantissa
// bits plus bits(OFF) give m, and their top 7 bits the entry j. The 128 intervals of m they split
// evenly have c at their middle, except interval 79, [1 − 2^−9, 1 + 2^−8), which has c = 1: there
// r = f exactly (log1p passes x itself as f where k = 0) and log(c) = −0, so that log(c) + r keeps
// r's signed zero. The table holds 1/c (rounded once) and log(c) (correctly rounded: computed at
// 300 bits). Whatever u's bits are, j is 7 bits: lanes outside the domain (NaN, zeros, negatives)
// read an entry like any other and are replaced by the exact path. (Table and order of sums
// replaced s = f/(2 + f) and a polynomial of degree 7 in s²: a division less and a shorter chain,
// exact log1p ~15% faster an element; benchmarks/NOTES.md, "log by a table".)
//
// Error bound (ε relative):
// - r: |r| ≤ 2^−8 (intervals above 1 are 2^−7 wide, c > 1; below, 2^−8 wide, c ≥ OFF; interval 79
//   reaches 1 ± 2^−9…2^−8 around c = 1). For c = 1, r is exact. Else 1/c rounds once, 1 − 1/c is
//   exact (Sterbenz), the product and the difference round once each: |Δr| ≤ (1.004 + 0.55 +
//   2^−8)·2^−53 < 2^−52 absolute, moving log1p(r) by ≤ 1.004·2^−52.
// - Truncation after r⁵ (the series alternates with falling terms for r > 0, and is geometric for
//   r < 0): |log1p(r) − P(r)| ≤ |r|⁶/(6(1 − |r|)), relative to |log1p(r)| ≥ |r|(1 − |r|/2): ≤ 2^−40/
//   (6·0.994) < 1.68e−13. Q's roundings, scaled by |r²·Q| ≤ 2^−9·|r|, add < 2^−60.
// - log(m) = log(c) + log1p(r). c ≠ 1: m lies outside interval 79, so |log(m)| ≥ 0.001955 > 2^−9,
//   while |log1p(r)| ≤ 1.004·2^−8 ≤ 2.01·|log(m)| and |log(c)| ≤ 3·|log(m)|; log(c) + r = log(m) +
//   O(r²) is within 1.004·|log(m)|. So r's error is ≤ 1.004·2^−52/2^−9 < 2^−42.99 of log(m), the
//   truncation ≤ 2.01·1.68e−13 = 3.38e−13, and the roundings of log(c), log(c) + r and of adding
//   r²·Q (3 + 1.004 + 1.01)·2^−53. c = 1: only the truncation and those last roundings.
//   log(m): ≤ 1.14e−13 + 3.38e−13 + 5.02·2^−53 < 4.53e−13.
// - k = 0: the result is log(m): k is made −0 there (below), and (−0) + v = v, signed zeros
//   included. k ≠ 0: |log(m)| ≤ 0.3718 and |result| ≥ ln2 − 0.3718 > 0.321, so log(m)'s error
//   counts 1.16 times; adding k·LN2_LO and k·LN2_HI rounds twice more (≤ 1.16·2^−53 each), k·LN2_HI
//   is exact (|k| ≤ 1075) and LN2_HI + LN2_LO misses ln2 by ≤ 2^−86 (≤ 2^−75 with k).
// Total ε ≤ 1.16·4.53e−13 + 4·2^−53 < 5.3e−13 < 2^−40.7. Needed: 2^53·ε·(1 + 2ε) + 2 < 4,776 ulps;
// the window is W = 2^14 (over three times that), so 2^−14 of lanes are ambiguous.

/** The bits of m's least value, 0.689453125: m = 2^−k·u lies in [OFF, 2·OFF). */
const OFF_BITS = 0x3fe6100000000000n;
const TWO52_BITS = 0x4330000000000000n; // 2^52: a small integer n in its mantissa reads 2^52 + n
/** log(c_j) for j = 0…127 (logC), correctly rounded (computed with 300-bit integers), −0 for c = 1. */
const LOG_LOG_C_BITS64 = [
  0xbfd79e26687cfb3en, 0xbfd741d876c67bb1n, 0xbfd6e60ee6af1972n, 0xbfd68ac83e9c6a14n, 0xbfd630030b3aac49n, 0xbfd5d5bddf595f30n,
  0xbfd57bf753c8d1fbn, 0xbfd522ae0738a3d8n, 0xbfd4c9e09e172c3cn, 0xbfd4718dc271c41bn, 0xbfd419b423d5e8c7n, 0xbfd3c25277333184n,
  0xbfd36b6776be1117n, 0xbfd314f1e1d35ce4n, 0xbfd2bef07cdc9354n, 0xbfd269621134db92n, 0xbfd214456d0eb8d4n, 0xbfd1bf99635a6b95n,
  0xbfd16b5ccbacfb73n, 0xbfd1178e8227e47cn, 0xbfd0c42d676162e3n, 0xbfd07138604d5862n, 0xbfd01eae5626c691n, 0xbfcf991c6cb3b379n,
  0xbfcef5ade4dcffe6n, 0xbfce530effe71012n, 0xbfcdb13db0d48940n, 0xbfcd1037f2655e7bn, 0xbfcc6ffbc6f00f71n, 0xbfcbd087383bd8adn,
  0xbfcb31d8575bce3dn, 0xbfca93ed3c8ad9e3n, 0xbfc9f6c407089664n, 0xbfc95a5adcf7017fn, 0xbfc8beafeb38fe8cn, 0xbfc823c16551a3c2n,
  0xbfc7898d85444c73n, 0xbfc6f0128b756abcn, 0xbfc6574ebe8c133an, 0xbfc5bf406b543db2n, 0xbfc527e5e4a1b58dn, 0xbfc4913d8333b561n,
  0xbfc3fb45a59928ccn, 0xbfc365fcb0159016n, 0xbfc2d1610c86813an, 0xbfc23d712a49c202n, 0xbfc1aa2b7e23f72an, 0xbfc1178e8227e47cn,
  0xbfc08598b59e3a07n, 0xbfbfe89139dbd566n, 0xbfbec739830a1120n, 0xbfbda727638446a2n, 0xbfbc885801bc4b23n, 0xbfbb6ac88dad5b1cn,
  0xbfba4e7640b1bc38n, 0xbfb9335e5d594989n, 0xbfb8197e2f40e3f0n, 0xbfb700d30aeac0e1n, 0xbfb5e95a4d9791cbn, 0xbfb4d3115d207eacn,
  0xbfb3bdf5a7d1ee64n, 0xbfb2aa04a44717a5n, 0xbfb1973bd1465567n, 0xbfb08598b59e3a07n, 0xbfaeea31c006b87cn, 0xbfaccb73cdddb2ccn,
  0xbfaaaef2d0fb10fcn, 0xbfa894aa149fb343n, 0xbfa67c94f2d4bb58n, 0xbfa466aed42de3ean, 0xbfa252f32f8d183fn, 0xbfa0415d89e74444n,
  0xbf9c63d2ec14aaf2n, 0xbf98492528c8cabfn, 0xbf9432a925980cc1n, 0xbf90205658935847n, 0xbf882448a388a2aan, 0xbf8010157588de71n,
  0xbf70080559588b35n, 0x8000000000000000n, 0x3f7fe02a6b106789n, 0x3f8fc0a8b0fc03e4n, 0x3f97b91b07d5b11bn, 0x3f9f829b0e783300n,
  0x3fa39e87b9febd60n, 0x3fa77458f632dcfcn, 0x3fab42dd711971bfn, 0x3faf0a30c01162a6n, 0x3fb16536eea37ae1n, 0x3fb341d7961bd1d1n,
  0x3fb51b073f06183fn, 0x3fb6f0d28ae56b4cn, 0x3fb8c345d6319b21n, 0x3fba926d3a4ad563n, 0x3fbc5e548f5bc743n, 0x3fbe27076e2af2e6n,
  0x3fbfec9131dbeabbn, 0x3fc0d77e7cd08e59n, 0x3fc1b72ad52f67a0n, 0x3fc29552f81ff523n, 0x3fc371fc201e8f74n, 0x3fc44d2b6ccb7d1en,
  0x3fc526e5e3a1b438n, 0x3fc5ff3070a793d4n, 0x3fc6d60fe719d21dn, 0x3fc7ab890210d909n, 0x3fc87fa06520c911n, 0x3fc9525a9cf456b4n,
  0x3fca23bc1fe2b563n, 0x3fcaf3c94e80bff3n, 0x3fcbc286742d8cd6n, 0x3fcc8ff7c79a9a22n, 0x3fcd5c216b4fbb91n, 0x3fce27076e2af2e6n,
  0x3fcef0adcbdc5936n, 0x3fcfb9186d5e3e2bn, 0x3fd0402594b4d041n, 0x3fd0a324e27390e3n, 0x3fd1058bf9ae4ad5n, 0x3fd1675cababa60en,
  0x3fd1c898c16999fbn, 0x3fd22941fbcf7966n, 0x3fd2895a13de86a3n, 0x3fd2e8e2bae11d31n, 0x3fd347dd9a987d55n, 0x3fd3a64c556945ean,
  0x3fd404308686a7e4n, 0x3fd4618bc21c5ec2n,
];
const fromBits = (bits: bigint): number => new Float64Array(new BigUint64Array([bits]).buffer)[0]!;
/** The interval of m that holds 1: [1 − 2^−9, 1 + 2^−8), j = 79. */
const ONE_INTERVAL = Number((0x3ff0000000000000n - OFF_BITS) >> 45n);
/** c_j: the middle of interval j (bits(OFF) + (2j + 1)·2^44: its edges share the exponent), or 1 for ONE_INTERVAL. */
const logC = (j: number): number => (j === ONE_INTERVAL ? 1 : fromBits(OFF_BITS + (BigInt(2 * j + 1) << 44n)));
/** The byte address of log's table in every memory the elementwise kernels import (inside KERNEL_CONSTANTS_BYTES, heap.ts). */
export const LOG_TABLE_ADDRESS = 3072;
/** The table's bytes: for each j, the doubles 1/c_j (rounded once) and log(c_j), little-endian. */
export const LOG_TABLE: readonly number[] = Array.from(
  new Uint8Array(new Float64Array(LOG_LOG_C_BITS64.flatMap((bits, j) => [1 / logC(j), fromBits(bits)])).buffer),
);
if (LOG_TABLE_ADDRESS < EXP_TABLE_ADDRESS + EXP_TABLE.length || LOG_TABLE_ADDRESS + LOG_TABLE.length > KERNEL_CONSTANTS_BYTES) throw new Error('internal: log\'s table does not fit the kernels\' constants');

/**
 * Each lane's entry of a table of `count` pairs of doubles (16 bytes each) at `address`, the index
 * in bits `at`… of the i64 lanes of `bits`: lane 0's entry into V128 local e0, lane 1's into e1.
 * firstOfPairs and secondOfPairs then gather the two lanes' first doubles and their second.
 */
function loadPairs(f: FunctionBody, bits: Expr, at: number, count: number, address: number, e0: number, e1: number): void {
  bits(f);
  f.i32Const(at - 4).i64x2ShrU(); // the byte offset 16·j in each lane's low word
  int64(BigInt(count - 1) << 4n)(f);
  f.v128And().set(e0);
  f.get(e0).i32x4ExtractLane(2).v128Load(address).set(e1);
  f.get(e0).i32x4ExtractLane(0).v128Load(address).set(e0);
}
const firstOfPairs = (e0: number, e1: number): Expr => (f) => void f.get(e0).get(e1).i8x16Shuffle(JOIN_LOW);
const secondOfPairs = (e0: number, e1: number): Expr => (f) => void f.get(e0).get(e1).i8x16Shuffle(JOIN_HIGH);

/** Q(r) = −1/2 + r/3 + r²·(−1/4 + r/5): log1p(r) ≈ r + r²·Q(r), the two logarithm cores' polynomial. */
const logSeriesQ = (R: Expr, R2: Expr): Expr => add(add(num(-1 / 2), mul(R, num(1 / 3))), mul(R2, add(num(-1 / 4), mul(R, num(1 / 5)))));

/**
 * log of the two lanes of V128 local `u` (positive normal doubles); `f0`, where given, is what f
 * becomes on lanes with k = 0 (log1p passes x itself, exact where 1 + x rounded).
 */
export function logCore(f: FunctionBody, u: number, f0?: Expr): void {
  const [t, nk, fm, e0, e1, r, r2] = approxLocals(f, 7) as [number, number, number, number, number, number, number];
  f.requireData(LOG_TABLE_ADDRESS, LOG_TABLE);
  assign(f, t, addI64(get(u), int64(0x3ff0000000000000n - OFF_BITS)));
  // −k = (2^52 + 1023) − (2^52 + exponent of t), exact, and +0 (not −0) where k = 0; multiplying
  // by −LN2_HI and −LN2_LO then gives the −0 that leaves log(m) (and its sign) alone.
  assign(f, nk, sub(num(2 ** 52 + 1023), or(exponentField(get(t)), int64(TWO52_BITS))));
  const NK = get(nk);
  // Each lane's entry: j = bits 45…51 of t.
  loadPairs(f, get(t), 45, 128, LOG_TABLE_ADDRESS, e0, e1);
  assign(f, fm, sub(addI64(and(get(t), MANTISSA), int64(OFF_BITS)), num(1))); // f = m − 1
  if (f0) assign(f, fm, select(eq(NK, num(0)), f0, get(fm)));
  // r = f·(1/c) − (1 − 1/c): m/c − 1 (1 − 1/c is exact; for c = 1, r = f − 0 = f, signed zeros
  // included).
  assign(f, t, firstOfPairs(e0, e1)); // 1/c
  assign(f, r, sub(mul(get(fm), get(t)), sub(num(1), get(t))));
  assign(f, r2, mul(get(r), get(r)));
  const R = get(r);
  const q = logSeriesQ(R, get(r2));
  // The sums off the polynomial's path first: a = k·LN2_LO + (log(c) + r), then k·LN2_HI + (a + r²·Q).
  assign(f, e0, add(mul(NK, num(-LN2_LO)), add(secondOfPairs(e0, e1), R)));
  add(mul(NK, num(-LN2_HI)), add(get(e0), mul(get(r2), q)))(f);
}

const LOG: FastPath = {
  approx: (f, x) => logCore(f, x),
  exact: emitLogF64x2,
  window: 14,
  // Positive and finite: float32 subnormals are normal doubles. NaN, ±0, negatives and +∞ go exact.
  domain: (x) => and32(gt32(x, f32(0)), lt32(x, f32(Infinity))),
};

// log1p(x) = log(1 + x). For float32 x with 2^−29 ≤ |x| < 2^53, u = 1 + x is exact in double (x
// is a multiple of 2^−52 there, and the sum has at most 53 bits); from 2^53 up it rounds by ≤
// 2^−53 relative, which moves the log by ≤ 2^−53 against a result ≥ 36: ≤ 2^−58 relative. Where
// k = 0 (u in [OFF, 2·OFF)), f is x itself, exact even when 1 + x rounded (|x| < 2^−29, in
// interval 79); there log1p(x) = log(c) + log1p(r) with r from f = x, to the same ε, and for
// float32 subnormals (and ±0) the chain gives x exactly (c = 1, r = x, r²·Q far below half an ulp
// of x, log(c) = −0): fdlibm's value, whose float32 rounding the boundary test would not describe
// but which is x's own. Same ε (2^−40.7, with 2^−58 more from 2^53 up) and W = 2^14 as log.
//
// log1p on [0, 1), the range of softplus's and log-sigmoid's log1p(e^−|s|): where every lane of a
// vector lies there, u = 1 + x is in [1, 2) and has no exponent to take out. Its top 8 mantissa
// bits index 256 intervals of width 2^−8; c_j = 1 + (2j + 1)/512, their middle, except c_0 = 1
// (interval [1, 1 + 2^−8)); r = m/c − 1 = x·(1/c) − (1 − 1/c), and log1p(x) ≈ (log(c) + r) + r²·Q(r),
// Q as in logCore. The table LOG1P_UNIT_TABLE holds 1/c (rounded once) and log(c) (correctly
// rounded, 300-bit integers; −0 for c_0). For x < 2^−29, 1 + x rounds, but stays in interval 0,
// where r = x·1 − 0 = x exactly whatever u is: tiny results, subnormals and ±0 come out as logCore's
// interval 79 gives them (x itself; −0 + r keeps r's signed zero). Skipped: the exponent, the two
// products by ln2, f = m − 1 and its select (~13 operations a half of ~35; benchmarks/NOTES.md,
// "log1p on [0, 1)").
//
// Error bound (ε relative to log1p(x) = log(m), m = 1 + x):
// - j = 0: c = 1, r = x exactly, x < 2^−8, log1p(x) ≥ x(1 − x/2). Truncation after r⁵ (alternating,
//   falling terms): ≤ x⁶/6, relative ≤ 2^−40/(6·0.998) < 2^−42.58; Q's and r²'s roundings, scaled
//   by |r²·Q| ≤ 2^−9·x, < 2^−60; (−0 + r) is exact, adding r²·Q rounds once (2^−53).
// - j ≥ 1: m ≥ 1 + 2^−8, so log(m) ≥ 0.0039 > 2^−8, and |r| ≤ 2^−9/c < 2^−9. 1/c rounds once (≤ 2^−54
//   absolute: it lies in [1/2, 1)), times m ≤ 2: ≤ 2^−53; 1 − 1/c is exact (Sterbenz); the product
//   x·(1/c) ≤ 1 rounds by ≤ 2^−54, the difference by ≤ 2^−63: |Δr| < 1.51·2^−53, ≤ 2^−44.4 of log(m).
//   Truncation ≤ |r|⁶/(6(1 − |r|)) < 2^−56.5 absolute, < 2^−48.5 of log(m). log(c) ≤ log(m) + 2^−9 ≤
//   1.5·log(m): its rounding and that of log(c) + r are ≤ 1.5·2^−53 each, the last sum's 1.01·2^−53.
// Total ε < 2^−44.4 + 2^−48.5 + 4.1·2^−53 < 2^−42.5 (both cases), inside the general path's 2^−40.7:
// log1p's window is unchanged.

/** log(c_j) for c_0 = 1 (−0) and c_j = 1 + (2j + 1)/512, j = 1…255, correctly rounded (computed with 300-bit integers). */
const LOG1P_UNIT_LOG_C_BITS64 = [
  0x8000000000000000n, 0x3f77ee11ebd82e94n, 0x3f83e7295d25a7d9n, 0x3f8bcf712c74384cn, 0x3f91d7f7eb9eebe7n, 0x3f95c45a51b8d389n,
  0x3f99ace7551cc514n, 0x3f9d91a66c543cc4n, 0x3fa0b94f7c196176n, 0x3fa2a7ec2214e873n, 0x3fa494acc34d911cn, 0x3fa67f94f094bd98n,
  0x3fa868a83083f6cfn, 0x3faa4fe9ffa3d235n, 0x3fac355dd0921f2dn, 0x3fae19070c276016n, 0x3faffae9119b9303n, 0x3fb0ed839b5526fen,
  0x3fb1dcb263db1944n, 0x3fb2cb0283f5de1fn, 0x3fb3b87598b1b6een, 0x3fb4a50d3aa1b040n, 0x3fb590cafdf01c28n, 0x3fb67bb0726ec0fcn,
  0x3fb765bf23a6be13n, 0x3fb84ef898e8282an, 0x3fb9375e55595eden, 0x3fba1ef1d8061cd4n, 0x3fbb05b49bee43fen, 0x3fbbeba818146765n,
  0x3fbcd0cdbf8c13e1n, 0x3fbdb5270187d927n, 0x3fbe98b549671467n, 0x3fbf7b79fec37ddfn, 0x3fc02ebb42bf3d4bn, 0x3fc09f561ee719c3n,
  0x3fc10f8e422539b1n, 0x3fc17f6458fca611n, 0x3fc1eed90e2dc2c3n, 0x3fc25ded0abc6ad2n, 0x3fc2cca0f5f5f251n, 0x3fc33af575770e4fn,
  0x3fc3a8eb2d31a376n, 0x3fc41682bf727bc0n, 0x3fc483bccce6e3ddn, 0x3fc4f099f4a230b2n, 0x3fc55d1ad4232d6fn, 0x3fc5c940075972b9n,
  0x3fc6350a28aaa758n, 0x3fc6a079d0f7aad2n, 0x3fc70b8f97a1aa75n, 0x3fc7764c128f2127n, 0x3fc7e0afd630c274n, 0x3fc84abb75865139n,
  0x3fc8b46f8223625bn, 0x3fc91dcc8c340bden, 0x3fc986d3228180can, 0x3fc9ef83d2769a34n, 0x3fca57df28244dcdn, 0x3fcabfe5ae46124cn,
  0x3fcb2797ee46320cn, 0x3fcb8ef670420c3bn, 0x3fcbf601bb0e44e2n, 0x3fcc5cba543ae425n, 0x3fccc320c0176502n, 0x3fcd293581b6b3e7n,
  0x3fcd8ef91af31d5en, 0x3fcdf46c0c722d2fn, 0x3fce598ed5a87e2fn, 0x3fcebe61f4dd7b0bn, 0x3fcf22e5e72f105dn, 0x3fcf871b28955045n,
  0x3fcfeb0233e607ccn, 0x3fd0274dc16c232fn, 0x3fd058f3c703ebc6n, 0x3fd08a73667c57afn, 0x3fd0bbccdb0d24bdn, 0x3fd0ed005f657da4n,
  0x3fd11e0e2dad9cb7n, 0x3fd14ef67f88685an, 0x3fd17fb98e15095dn, 0x3fd1b05791f07b49n, 0x3fd1e0d0c33716ben, 0x3fd211255986160cn,
  0x3fd241558bfd1404n, 0x3fd27161913f853dn, 0x3fd2a1499f762bc9n, 0x3fd2d10dec508583n, 0x3fd300aead06350cn, 0x3fd3302c16586588n,
  0x3fd35f865c93293en, 0x3fd38ebdb38ed321n, 0x3fd3bdd24eb14b6an, 0x3fd3ecc460ef5f50n, 0x3fd41b941cce0been, 0x3fd44a41b463c47cn,
  0x3fd478cd5959b3d9n, 0x3fd4a7373cecf997n, 0x3fd4d57f8fefe27fn, 0x3fd503a682cb1cb3n, 0x3fd531ac457ee77en, 0x3fd55f9107a43ee2n,
  0x3fd58d54f86e02f2n, 0x3fd5baf846aa1b19n, 0x3fd5e87b20c2954an, 0x3fd615ddb4bec13cn, 0x3fd64320304447c0n, 0x3fd67042c0983e31n,
  0x3fd69d4592a0362cn, 0x3fd6ca28d2e34985n, 0x3fd6f6ecad8b2292n, 0x3fd723914e6500e1n, 0x3fd75016e0e2ba62n, 0x3fd77c7d901bb914n,
  0x3fd7a8c586cdf544n, 0x3fd7d4eeef5eec6en, 0x3fd800f9f3dc94cbn, 0x3fd82ce6bdfe4d9dn, 0x3fd858b57725cc43n, 0x3fd8846648600624n,
  0x3fd8aff95a661780n, 0x3fd8db6ed59e272dn, 0x3fd906c6e21c4754n, 0x3fd93201a7a35337n, 0x3fd95d1f4da5ca0an, 0x3fd9881ffb46a6f0n,
  0x3fd9b303d75a361fn, 0x3fd9ddcb0866e742n, 0x3fda0875b4a61d17n, 0x3fda33040204fa63n, 0x3fda5d7616252c37n, 0x3fda87cc165db199n,
  0x3fdab20627bba0a0n, 0x3fdadc246f02e8ffn, 0x3fdb062710af141bn, 0x3fdb300e30f402a3n, 0x3fdb59d9f3bea7c2n, 0x3fdb838a7cb5c1f0n,
  0x3fdbad1fef3a9165n, 0x3fdbd69a6e698c47n, 0x3fdbfffa1d1b1084n, 0x3fdc293f1de4137cn, 0x3fdc52699316cf6bn, 0x3fdc7b799ec36eb0n,
  0x3fdca46f62b8b4e7n, 0x3fdccd4b0084a5efn, 0x3fdcf60c99752adan, 0x3fdd1eb44e98b4c9n, 0x3fdd474240beddd6n, 0x3fdd6fb6907907ean,
  0x3fdd98115e1af9b6n, 0x3fddc052c9bb79acn, 0x3fdde87af334e71bn, 0x3fde1089fa25d168n, 0x3fde387ffdf18d76n, 0x3fde605d1dc0c92fn,
  0x3fde882178821d52n, 0x3fdeafcd2cea9d71n, 0x3fded7605976663bn, 0x3fdefedb1c692a08n, 0x3fdf263d93cebbb7n, 0x3fdf4d87dd7b97e6n,
  0x3fdf74ba170d6c7dn, 0x3fdf9bd45deb9ea4n, 0x3fdfc2d6cf47cf1an, 0x3fdfe9c1881e5cffn, 0x3fe0084a529b7386n, 0x3fe01ba8219265a4n,
  0x3fe02efa3f23d29cn, 0x3fe04240b965e54cn, 0x3fe0557b9e55634en, 0x3fe068aafbd5e9dan, 0x3fe07bcedfb229fdn, 0x3fe08ee7579c2413n,
  0x3fe0a1f4712d6292n, 0x3fe0b4f639e73429n, 0x3fe0c7ecbf32e533n, 0x3fe0dad80e61f87bn, 0x3fe0edb834ae5f5en, 0x3fe1008d3f3ab146n,
  0x3fe113573b126282n, 0x3fe126163529fa7an, 0x3fe138ca3a5f494fn, 0x3fe14b7357799cd1n, 0x3fe15e119929f4e4n, 0x3fe170a50c0b374an,
  0x3fe1832dbca262d9n, 0x3fe195abb75ec21an, 0x3fe1a81f089a1d56n, 0x3fe1ba87bc98ec1bn, 0x3fe1cce5df8a8622n, 0x3fe1df397d8953bfn,
  0x3fe1f182a29afdb0n, 0x3fe203c15ab09c7an, 0x3fe215f5b1a6e729n, 0x3fe2281fb346619fn, 0x3fe23a3f6b438a53n, 0x3fe24c54e53f0793n,
  0x3fe25e602cc5d447n, 0x3fe270614d516c38n, 0x3fe282585247f7d3n, 0x3fe2944546fc777an, 0x3fe2a62836aeee59n, 0x3fe2b8012c8c8cc1n,
  0x3fe2c9d033afda0fn, 0x3fe2db955720de23n, 0x3fe2ed50a1d54a5an, 0x3fe2ff021eb0a221n, 0x3fe310a9d8846312n, 0x3fe32247da102ca6n,
  0x3fe333dc2e01e776n, 0x3fe34566def5ec14n, 0x3fe356e7f7772978n, 0x3fe3685f81ff4b07n, 0x3fe379cd88f6de2bn, 0x3fe38b3216b5778en,
  0x3fe39c8d3581d7ecn, 0x3fe3addeef92107fn, 0x3fe3bf274f0ba70dn, 0x3fe3d0665e03b98fn, 0x3fe3e19c267f2182n, 0x3fe3f2c8b27296cen,
  0x3fe403ec0bc2d256n, 0x3fe415063c44b02cn, 0x3fe426174dbd5167n, 0x3fe4371f49e23d9dn, 0x3fe4481e3a59840en, 0x3fe4591428b9dc68n,
  0x3fe46a011e8ac745n, 0x3fe47ae52544ae44n, 0x3fe48bc0465103d8n, 0x3fe49c928b0a62ben, 0x3fe4ad5bfcbcad23n, 0x3fe4be1ca4a52b78n,
  0x3fe4ced48bf2aaf4n, 0x3fe4df83bbc59bc8n, 0x3fe4f02a3d302f06n, 0x3fe500c819367434n, 0x3fe5115d58ce769cn, 0x3fe521ea04e05a45n,
  0x3fe5326e264678adn, 0x3fe542e9c5cd7d2fn, 0x3fe5535cec348128n, 0x3fe563c7a22d27ccn, 0x3fe57429f05bb9b9n, 0x3fe58483df574044n,
  0x3fe594d577a9a07en, 0x3fe5a51ec1cfb5f4n, 0x3fe5b55fc6396d2bn, 0x3fe5c5988d49ddden, 0x3fe5d5c91f5764f0n, 0x3fe5e5f184abbe28n,
  0x3fe5f611c5841d9fn, 0x3fe60629ea1148fdn, 0x3fe61639fa77b069n, 0x3fe62641fecf8743n,
];
/** The byte address of log1p's table over [1, 2) (after log's, inside KERNEL_CONSTANTS_BYTES, heap.ts). */
export const LOG1P_UNIT_TABLE_ADDRESS = LOG_TABLE_ADDRESS + LOG_TABLE.length;
/** The table's bytes: for each j, the doubles 1/c_j (rounded once) and log(c_j), little-endian. */
export const LOG1P_UNIT_TABLE: readonly number[] = Array.from(
  new Uint8Array(new Float64Array(LOG1P_UNIT_LOG_C_BITS64.flatMap((bits, j) => [j === 0 ? 1 : 1 / (1 + (2 * j + 1) / 512), fromBits(bits)])).buffer),
);
if (LOG1P_UNIT_TABLE_ADDRESS + LOG1P_UNIT_TABLE.length > KERNEL_CONSTANTS_BYTES) throw new Error('internal: log1p\'s table does not fit the kernels\' constants');

/** log1p of the two lanes of V128 local `x` (promoted float32 values in [0, 1)), left on the stack. */
function log1pUnit(f: FunctionBody, x: number): void {
  const [e0, e1, c, r, r2] = approxLocals(f, 5) as [number, number, number, number, number];
  f.requireData(LOG1P_UNIT_TABLE_ADDRESS, LOG1P_UNIT_TABLE);
  // j = bits 44…51 of 1 + x.
  loadPairs(f, add(num(1), get(x)), 44, 256, LOG1P_UNIT_TABLE_ADDRESS, e0, e1);
  assign(f, c, firstOfPairs(e0, e1)); // 1/c
  assign(f, r, sub(mul(get(x), get(c)), sub(num(1), get(c))));
  assign(f, r2, mul(get(r), get(r)));
  const R = get(r);
  const q = logSeriesQ(R, get(r2));
  add(add(secondOfPairs(e0, e1), R), mul(get(r2), q))(f);
}

const LOG1P: FastPath = {
  approx: (f, x) => {
    const [u] = wrapperLocals(f, 1) as [number];
    assign(f, u, add(num(1), get(x)));
    logCore(f, u, get(x));
  },
  exact: emitLog1pF64x2,
  window: 14,
  domain: (x) => and32(gt32(x, f32(-1)), lt32(x, f32(Infinity))),
  special: { when: (x) => and32(ge32(x, f32(0)), lt32(x, f32(1))), approx: log1pUnit },
};

// ---------------------------------------------------------------------------------------------
// sigmoid as the JavaScript kernels compute it (jsCode.ts): e = Math.exp(−|x|), then 1/(1 + e) for
// x ≥ 0 and e/(1 + e) below, in doubles, rounded to float32. Here e ≈ e^−|x| from exp's fast path
// (ε_e < 2^−41; x clamped to [−104, 104] first: beyond, e^−|x| < 2^−150 and both formulas give
// exactly 1 or round to +0 either way), q = 1/(1 + e), and q or e·q.
//
// Error bound. σ = 1/(1 + e) moves by at most half e's relative error (|dσ/σ| = e/(1 + e)·|de/e|),
// e/(1 + e) by at most all of it. The JavaScript value: fdlibm's e (< 1 ulp: 2^−52 relative), then a
// sum and a quotient rounded (2·2^−53); this one: ε_e, then a sum, a quotient and a product rounded
// (3·2^−53). The two differ by at most (ε_e + 2^−52 + 5·2^−53)·σ·(1 + 2^−50) = (2^−41 + 7·2^−53)·σ
// (1.0000…), in ulps of d at most 2^12 + 7 + 2 (σ may sit in the next binade) < 4106: the window is
// W = 2^13, as for exp. Left to the exact path: NaN and −104 < x < −87.33 (float32 subnormal
// results), as for exp.

// ---------------------------------------------------------------------------------------------
// tanh. a = |x| (x clamped to [−10, 10] first: beyond, tanh rounds to ±1 in float32, as tanh(10)
// = 1 − 4.1e−9 already does, far above the midpoint 1 − 2^−25), and the result takes x's sign (V8's
// fdlibm tanh is odd, computed on |x|). Two branches, both computed, one selected per lane:
// - a ≥ 1/16: t = 1 − 2/(E + 1) with E ≈ e^(2a) from exp's fast path. 2a is a float32 value in
//   [1/8, 20], inside exp's proven domain, so ε_E < 2^−41. E + 1 and the quotient round once each:
//   q = 2/(E + 1) is within (2^−41 + 2^−52)·q. 1 − q then adds at most 2^−53·t (it is exact when
//   q ≥ 1/2). Relative to t, q's error is multiplied by q/t = 2/(E − 1) ≤ 16 (E − 1 ≥ 2a ≥ 1/8):
//   ε ≤ 16·(2^−41 + 2^−52) + 2^−53 < 2^−36.9.
// - a < 1/16: t = a·P(a²), P the Taylor series of tanh(a)/a to a^8 (1, −1/3, 2/15, −17/315,
//   62/2835). The series alternates with falling terms here, so the truncation is below the first
//   term left out, 1382/155925·a^10 < 2^−46.8 relative. Estrin's scheme over 5 coefficients puts
//   each term through at most 1 + (1 + 2) + (3 + 2) = 9 roundings (P ≥ 0.9987), and a·P adds one:
//   ε < 2^−46.8 + 10.1·2^−53 < 2^−46.
// V8's Math.tanh is fdlibm's, built on expm1. Its error is not documented, so the window assumes
// 4 ulps (twice the 2 of the other functions). The bound needed is 2^53·2^−36.9·(1 + 2^−35) + 4 <
// 2^16.2 ulps; the window is W = 2^18 (more than twice that), so 2^−10 of lanes are ambiguous.
// The exact path is Math.tanh itself, imported from the host and called on each lane of the
// `if`. A float32 call costs far more than a lane of the fast path, but the path is taken by one
// vector in ~250. Left to it: NaN and float32 subnormals (whose rounding the boundary test does
// not describe; tanh gives them back). ±0 take the series branch: ±0·P = ±0, tanh's value.

const TANH_SERIES = [1, -1 / 3, 2 / 15, -17 / 315, 62 / 2835];

/**
 * The host's own Math functions that exact paths call (f64 → f64), imported from the import
 * object's `Math` (the global Math object supplies them: `{ env: { memory }, Math }`) at these
 * function indices, by `importHostMath` before any function of the module is defined.
 */
const HOST_MATH = ['tanh', 'expm1', 'sin', 'cos'] as const;

/** Declares the HOST_MATH imports on `m` (first, so each lands at its index in HOST_MATH). */
export function importHostMath(m: ModuleBuilder): void {
  HOST_MATH.forEach((name, i) => {
    if (m.importFunction('Math', name, [F64], [F64]) !== i) throw new Error('internal: host Math functions are imported first');
  });
}

/** An exact path that calls the imported Math function `name` on each of the two lanes. */
const hostExact = (name: (typeof HOST_MATH)[number]) => (f: FunctionBody, v: number): void => {
  const fn = HOST_MATH.indexOf(name);
  f.get(v).f64x2ExtractLane(0).call(fn).f64x2Splat();
  f.get(v).f64x2ExtractLane(1).call(fn).f64x2ReplaceLane(1);
};

/**
 * Lanes whose float32 value is normal, infinite or zero (NaN fails both compares). A zero takes
 * the series branch, whose ±0·P is ±0 exactly, as tanh and expm1 give it: ELU computes expm1 of
 * min(x, 0), zero on every positive lane, which must not send those lanes to the host.
 */
const normalInfiniteOrZero = (v: Expr): Expr => or32(ge32(abs32(v), f32(2 ** -126)), eq32(v, f32(0)));

/**
 * Leaves Math.fround(Math.tanh(x)) of the four float32 lanes of V128 local `x` on the stack (an
 * f32x4), bit for bit; the module imports Math.tanh (importHostMath).
 */
export function emitTanhF32x4(f: FunctionBody, x: number, onExact?: OnExact): void {
  emitFast(f, x, {
    input: (v) => pmin32(pmax32(v, f32(-10)), f32(10)), // a NaN stays NaN
    approx: (g, v) => {
      const [a, twoA, z] = wrapperLocals(g, 3) as [number, number, number];
      g.get(v).f64x2Abs().set(a);
      assign(g, twoA, add(get(a), get(a)));
      expApprox(g, twoA);
      g.set(twoA); // E
      // The large branch: 1 − 2/(E + 1), into twoA.
      assign(g, twoA, sub(num(1), div(TWO, add(get(twoA), num(1)))));
      assign(g, z, mul(get(a), get(a)));
      const [p2, p4] = approxLocals(g, 2) as [number, number];
      const small = mul(get(a), estrin(z, TANH_SERIES, squares(g, z, [p2, p4])));
      // |tanh| with x's sign bit.
      or(select(ge(get(a), num(1 / 16)), get(twoA), small), and(get(v), SIGN))(g);
    },
    exact: hostExact('tanh'),
    window: 18,
    domain: normalInfiniteOrZero,
  }, onExact);
}

// ---------------------------------------------------------------------------------------------
// expm1, the same way (x clamped to [−104, 89] first, as for exp: below, expm1 rounds to −1, as it
// does from −17.33; above, to +∞). Two branches, both computed, one selected per lane:
// - |x| ≥ 1/16: E − 1 with E ≈ e^x from exp's fast path (ε_E < 2^−41). The subtraction is exact
//   for E in [1/2, 2] (Sterbenz) and rounds by at most 2^−53 of the result elsewhere. Relative to
//   the result, E's error is multiplied by E/|E − 1| ≤ 16.5 (|E − 1| ≥ 1 − e^(−1/16) > 0.0606):
//   ε ≤ 16.5·2^−41 + 2^−53 < 2^−36.9.
// - |x| < 1/16: x·P(x), P the Taylor series of expm1(x)/x to x^7 (1/(j + 1)!). The terms left out
//   sum to less than |x|^8/9!·1.007 < 2^−50.5 (P ≥ 0.968). Estrin's scheme over 8 coefficients: at
//   most 9 roundings per term, and x·P one more: ε < 2^−50.5 + 10.7·2^−53 < 2^−49.
// fdlibm's expm1 is within 1 ulp; the window assumes 2, as for the others. The bound needed is
// under 2^16.2 ulps, the window W = 2^18, and 2^−10 of lanes are ambiguous. The exact path is the
// engine's Math.expm1, imported as for tanh. Left to it: NaN and float32 subnormals; ±0 take the
// series branch, as for tanh.

const EXPM1_SERIES = [1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320];

/**
 * Leaves Math.fround(Math.expm1(x)) of the four float32 lanes of V128 local `x` on the stack (an
 * f32x4), bit for bit; the module imports Math.expm1 (importHostMath).
 */
export function emitExpm1F32x4(f: FunctionBody, x: number, onExact?: OnExact): void {
  emitFast(f, x, {
    input: EXP.input,
    approx: (g, v) => {
      const [big] = wrapperLocals(g, 1) as [number];
      expApprox(g, v);
      g.set(big);
      assign(g, big, sub(get(big), num(1)));
      const [p2, p4] = approxLocals(g, 2) as [number, number];
      const small = mul(get(v), estrin(v, EXPM1_SERIES, squares(g, v, [p2, p4])));
      select(ge(abs(get(v)), num(1 / 16)), get(big), small)(g);
    },
    exact: hostExact('expm1'),
    window: 18,
    domain: normalInfiniteOrZero,
  }, onExact);
}

// ---------------------------------------------------------------------------------------------
// sin and cos, for |x| ≤ 4096: x = k·π/2 + r with k = nearest(x·2/π) (as exp finds its k; a near
// tie may give |r| up to π/4 + 2^−40), r = ((x − k·P1) − k·P2) − k·P3 (fdlibm's pio2_1, pio2_2 and
// pio2_2t: π/2 in 33 + 33 + 53 bits), then by the quadrant k mod 4 one of ±sin(r), ±cos(r), each
// a Taylor polynomial in z = r².
//
// Error bound:
// - r: k·P1 and k·P2 are exact (|k| ≤ 2608 has 12 bits; P1 and P2 have 33), and so is x − k·P1
//   (both are multiples of 2^−32 below 2^13 in magnitude: 45 bits). The two other subtractions
//   round by ≤ 2^−53 of their results. |k·P3| ≤ 2^−56.7 rounds by ≤ 2^−109, and P1 + P2 + P3 misses
//   π/2 by ≤ 2^−122 (times |k|: 2^−110). A float32 x ≤ 4096 in magnitude is never within 2^−40 of a
//   multiple of π/2 other than 0 (found by the exhaustive check below, which would fail otherwise;
//   k = 0 gives r = x exactly), so r is within 2.01·2^−53 of x − k·π/2, relatively.
// - Truncation, |r| ≤ 0.7854: sin(r)/r to z^7 leaves z^8/17! < 2^−55 (sin(r)/r ≥ 0.9); cos(r) to
//   z^7 leaves z^8/16! < 2^−50 (cos(r) ≥ 0.707).
// - Evaluation: Estrin's scheme over 8 coefficients, at most 9 roundings per term, over terms
//   summing to at most 1.11 (sin(r)/r) and 1.33 (cos): ≤ 11.1·2^−53 and 17·2^−53 relative, and r·P
//   one more rounding for sin. r's error moves sin(r) by ≤ 2.01·2^−53 relative (|r·cot r| ≤ 1)
//   and cos(r) by ≤ 2.01·2^−53·|r·tan r| ≤ 2.01·2^−53.
// Total ε < 2^−48. Needed: 2^53·2^−48·(1 + 2^−47) + 2 < 35 ulps. The window is W = 2^13, as
// for exp: far more than twice that, so that the tests can find ambiguous inputs by search, at a
// cost of 2^−15 of lanes. The exact path is the engine's Math.sin or Math.cos, imported as for
// tanh. Left to it: |x| > 4096, NaN, ±∞ and float32 subnormals.

const PIO2 = [1.57079632673412561417e+00, 6.07710050630396597660e-11, 2.02226624879595063154e-21];
const INV_PIO2 = 6.36619772367581382433e-01;
const SIN_SERIES = [1, -1 / 6, 1 / 120, -1 / 5040, 1 / 362880, -1 / 39916800, 1 / 6227020800, -1 / 1307674368000];
const COS_SERIES = [1, -1 / 2, 1 / 24, -1 / 720, 1 / 40320, -1 / 3628800, 1 / 479001600, -1 / 87178291200];

/** All ones where bit 63 of `a` is set (an arithmetic shift right by 63). */
const spreadSign = (a: Expr): Expr => (f) => {
  a(f);
  f.i32Const(63).i64x2ShrS();
};
const xor = binary((f) => f.v128Xor());

/** d ≈ sin(x) or cos(x) on two f64 lanes (float32 values, |x| ≤ 4096; relative error < 2^−48). */
export function trigApprox(f: FunctionBody, x: number, cosine: boolean): void {
  const [t, k, r, z] = wrapperLocals(f, 4) as [number, number, number, number];
  assign(f, t, add(mul(get(x), num(INV_PIO2)), num(MAGIC)));
  assign(f, k, sub(get(t), num(MAGIC)));
  const K = get(k);
  assign(f, r, sub(sub(sub(get(x), mul(K, num(PIO2[0]!))), mul(K, num(PIO2[1]!))), mul(K, num(PIO2[2]!))));
  assign(f, z, mul(get(r), get(r)));
  // z² and z⁴, read by both polynomials.
  const powers = squares(f, z, approxLocals(f, 2));
  const sine = mul(get(r), estrin(z, SIN_SERIES, powers));
  const cos = estrin(z, COS_SERIES, powers);
  // t's low two bits are k mod 4 (t = 1.5·2^52 + k), the quadrant: sin is S, C, −S, −C in
  // quadrants 0–3, and cos(x) is sin in quadrant k + 1. Bit 0 picks C, bit 1 negates.
  const q = cosine ? addI64(get(t), int64(1n)) : get(t);
  xor(select(spreadSign(shl(q, 63)), cos, sine), and(shl(q, 62), SIGN))(f);
}

/** Lanes with a normal float32 value of magnitude at most 4096, or zero. */
const trigDomain = (v: Expr): Expr => and32(normalInfiniteOrZero(v), le32(abs32(v), f32(4096)));

/** Leaves Math.fround(Math.sin(x)) of the four float32 lanes of V128 local `x` (an f32x4), bit for bit; the module imports Math.sin (importHostMath). */
export function emitSinF32x4(f: FunctionBody, x: number, onExact?: OnExact): void {
  emitFast(f, x, { approx: (g, v) => trigApprox(g, v, false), exact: hostExact('sin'), window: 13, domain: trigDomain }, onExact);
}

/** Leaves Math.fround(Math.cos(x)) of the four float32 lanes of V128 local `x` (an f32x4), bit for bit; the module imports Math.cos (importHostMath). */
export function emitCosF32x4(f: FunctionBody, x: number, onExact?: OnExact): void {
  emitFast(f, x, { approx: (g, v) => trigApprox(g, v, true), exact: hostExact('cos'), window: 13, domain: trigDomain }, onExact);
}

/**
 * Leaves the JavaScript kernels' float32 sigmoid of the four float32 lanes of V128 local `x` on the
 * stack (an f32x4), bit for bit; the exact path is the f64x2 transcription of their formula.
 */
export function emitSigmoidF32x4(f: FunctionBody, x: number, onExact?: OnExact): void {
  emitFast(f, x, {
    input: (v) => pmin32(pmax32(v, f32(-104)), f32(104)), // a NaN stays NaN
    approx: (g, v) => {
      const [a, e] = wrapperLocals(g, 2) as [number, number];
      assign(g, a, negAbs(get(v)));
      expApprox(g, a);
      g.set(e);
      assign(g, a, div(num(1), add(num(1), get(e)))); // q
      select(ge(get(v), num(0)), get(a), mul(get(e), get(a)))(g);
    },
    exact: emitSigmoidF64x2,
    window: 13,
    domain: EXP.domain,
  }, onExact);
}

/**
 * Leaves Math.fround(Math.exp(x)) of the four float32 lanes of V128 local `x` on the stack (an
 * f32x4), bit for bit (NaN lanes give a NaN).
 */
export function emitExpF32x4(f: FunctionBody, x: number, onExact?: OnExact): void {
  emitFast(f, x, EXP, onExact);
}

/** Leaves Math.fround(Math.log1p(x)) of the four float32 lanes of V128 local `x` on the stack (an f32x4), bit for bit. */
export function emitLog1pF32x4(f: FunctionBody, x: number, onExact?: OnExact): void {
  emitFast(f, x, LOG1P, onExact);
}

/** Leaves Math.fround(Math.log(x)) of the four float32 lanes of V128 local `x` on the stack (an f32x4), bit for bit. */
export function emitLogF32x4(f: FunctionBody, x: number, onExact?: OnExact): void {
  emitFast(f, x, LOG, onExact);
}

// ---------------------------------------------------------------------------------------------
// erf: the JavaScript kernels' float32 erf, Math.fround(erf(x)) with erf the CPU's float64 function
// (jsCode.ts, from ERF_FIT), by the same double operations on each lane in the same order (less
// those that are exact no-ops on a float32 input, said where), its two exps by emitExpF64x2
// (Math.exp's bits): the same bits without a fast path or a window.
// Every lane computes the two pieces below 1.25 and takes its own; the piece from 1.25 to 6, with
// its exps, runs only where some lane of the two needs it. Float32 inputs never reach the
// JavaScript function's subnormal branch (the least float32 is far above 2^−1015) and its zeros
// come out of the tiny branch as themselves (±0 + efx·±0 = ±0).

const erfLocals = localPool();

/** erf of the two f64 lanes of V128 local `x` (promoted float32 values), left on the stack. */
function erfF64x2(f: FunctionBody, x: number): void {
  const [ax, t, res, tail, e1, e2] = erfLocals(f, 6) as [number, number, number, number, number, number];
  const X = get(x);
  const AX = get(ax);
  const sign = and(X, SIGN);
  assign(f, ax, abs(X));
  // Below 0.84375: x + x·(P(x²)/Q(x²)); below 2^−28, x + efx·x.
  assign(f, t, mul(X, X));
  assign(f, res, add(X, mul(X, div(horner(get(t), ERF_FIT.pp), horner(get(t), ERF_FIT.qq)))));
  assign(f, res, select(lt(AX, num(ERF_FIT.tiny)), add(X, mul(num(ERF_FIT.efx), X)), get(res)));
  // Below 1.25: ±(erx + P(s)/Q(s)), s = |x| − 1 (the sign of a positive value set: −y exactly).
  assign(f, t, sub(AX, num(1)));
  assign(f, res, select(lt(AX, num(ERF_FIT.small)), get(res), or(sign, add(num(ERF_FIT.erx), div(horner(get(t), ERF_FIT.pa), horner(get(t), ERF_FIT.qa))))));
  // From 1.25 to 6 (±1 beyond, set last): only where a lane needs it.
  assign(f, tail, and(ge(AX, num(ERF_FIT.mid)), lt(AX, num(ERF_FIT.large))));
  f.get(tail).v128AnyTrue().if();
  {
    assign(f, t, div(num(1), mul(AX, AX))); // s
    const first = lt(AX, num(ERF_FIT.split));
    // r/q of the fit the lane's |x| picks.
    assign(f, e2, div(select(first, horner(get(t), ERF_FIT.ra), horner(get(t), ERF_FIT.rb)), select(first, horner(get(t), ERF_FIT.sa), horner(get(t), ERF_FIT.sb))));
    // The JavaScript function's z = fround(|x|) is |x| itself on a float32 lane, so its second
    // exponent (z − |x|)(z + |x|) + r/q is +0 + r/q = r/q exactly (r/q is never zero), and the
    // first is −|x|·|x| − 0.5625.
    assign(f, e1, sub(mul((g) => {
      AX(g);
      g.f64x2Neg();
    }, AX), num(0.5625)));
    emitExpF64x2(f, e1);
    f.set(e1);
    emitExpF64x2(f, e2);
    f.set(e2);
    assign(f, res, select(get(tail), or(sign, sub(num(1), div(mul(get(e1), get(e2)), AX))), get(res)));
  }
  f.end();
  select(ge(AX, num(ERF_FIT.large)), or(sign, num(1)), get(res))(f);
}

/**
 * Leaves the JavaScript kernels' float32 erf of the four float32 lanes of V128 local `x` on the
 * stack (an f32x4), bit for bit (NaN lanes give a NaN).
 */
export function emitErfF32x4(f: FunctionBody, x: number): void {
  const [lo, hi] = fastLocals(f, 2) as [number, number];
  perHalf(f, x, lo, hi, erfF64x2);
}
