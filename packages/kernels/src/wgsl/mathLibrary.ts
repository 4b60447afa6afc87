// Float32 elementary functions in WGSL, written out rather than taken from the built-ins.
// Why: WGSL only promises loose bounds for its built-ins (log: 2^-21 absolute near 1; exp:
// 3 + 2|x| ULP; sin/cos: 2^-11 absolute, and nothing outside [-π, π]), has no log1p/expm1, and
// tanh is specified as sinh/cosh (NaN at large |x| on some drivers). NaN propagates explicitly,
// because a NaN argument would otherwise reach `i32()` (indeterminate in WGSL).
//
// Accuracy, as the distance in ULP to the float64 result rounded to float32, for every finite
// argument (asserted over dense samples and at the edges in test/mathLibrary.test.ts; sin and cos
// were also run over all 2^32 float32 inputs on llvmpipe: 2 ULP on about 15000 of them, else less):
// - exp, expm1, log, log1p, pow: ≤ 1 ULP; tanh, sin, cos: ≤ 2 ULP.
// - erf: ≤ 8 ULP for |x| < 0.5 and ≤ 2^-21 (4.8e-7) absolute beyond (measured on llvmpipe over
//   2·10⁵ points of [−10, 10]: 2.6 ULP and 1.5e-7), so relative accuracy is lost only where erf
//   is near ±1, and in 1 + erf(x) for x ≪ 0 (as in any float32 erf that is not an erfc).
// - Results below 2^-126 may be flushed to zero: WGSL lets implementations flush subnormals.
// exp, expm1 and log reduce their argument exactly (Cody–Waite constants with few significant
// bits, so k·C is exact) and evaluate short Taylor polynomials (truncation < 2^-30 relative).
// sin and cos reduce by π/2 accurately for every float32: five 12-bit pieces of π/2 for
// |x| ≤ 6434 (each j·Cₖ exact for the quadrant j ≤ 2^12), and for larger |x| a Payne–Hanek
// reduction in u32 arithmetic against 192 bits of 2/π. pow is 2^(y·log2|x|) with log2|x| and the
// product in double-float (hi + lo) arithmetic, as in fdlibm's powf, so its error does not grow
// with |y·log x|.
//
// Extended precision needs error-free transformations (a rounded sum and the exact error of that
// rounding), and drivers that reassociate (Mesa simplifies (a + b) − a to b) would fold those
// errors to zero. So the high parts here are made with integer masks (`sc_hi12`), which no
// algebraic rewrite sees through, and every other rounded value that a compensation subtracts
// again passes through `sc_fence`. The Cody–Waite chains depend on the order of their
// subtractions too, but they are on every call's path and are left unfenced: the tests show the
// order kept on Mesa, and a driver that broke it would fail them.
//
// Each function is one entry; `mathPrelude(code)` emits only what `code` calls, with what those
// call (found by name in their code), in dependency order.

import { customPrelude } from './custom.js';

const LIBRARY: Record<string, string> = {
  // Infinities and NaN read from a private variable: WGSL rejects them as constant expressions.
  sc_special_bits: `var<private> sc_special_bits: vec3<u32> = vec3<u32>(0x7f800000u, 0xff800000u, 0x7fc00000u);`,
  sc_pos_inf: `fn sc_pos_inf() -> f32 { return bitcast<f32>(sc_special_bits.x); }`,
  sc_neg_inf: `fn sc_neg_inf() -> f32 { return bitcast<f32>(sc_special_bits.y); }`,
  sc_nan: `fn sc_nan() -> f32 { return bitcast<f32>(sc_special_bits.z); }`,
  // Bit tests: comparisons against NaN may be folded away by drivers that assume finite math.
  sc_isnan: `fn sc_isnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }`,
  sc_isinf: `fn sc_isinf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }`,
  // x itself for finite x, in a form no algebraic simplification looks through (the select on a
  // bit test cannot be resolved at compile time). Only for finite values: NaN comes out as 0.
  sc_fence: `fn sc_fence(x: f32) -> f32 { return select(x, 0.0, sc_isnan(x)); }`,
  // x with its 12 leading significant bits kept: products of two such values are exact.
  sc_hi12: `fn sc_hi12(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) & 0xfffff000u); }`,

  // e^r - 1 for |r| <= ln2/2: Taylor series to r^8/8! (truncation < 2^-31 relative).
  sc_expm1_reduced: `fn sc_expm1_reduced(r: f32) -> f32 {
  let p = 1.0 / 2.0 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0 + r * (1.0 / 40320.0))))));
  return r + r * r * p;
}`,
  // x = k ln2 + r with ln2 = 0.693359375 (9 bits, so k·hi is exact) - 2.12194440e-4. The 2^k
  // scaling is ldexp, not a product with constants: drivers that reassociate constant factors
  // (Mesa folds (m·2^127)·2 into m·inf) would overflow near the top of the range.
  // Without branches: the special cases (NaN, overflow, underflow) are selected after the general
  // path, which runs on a clamped argument. Software rasterisers run every lane through every
  // branch a group of lanes takes, so early returns cost more than they save.
  sc_exp: `fn sc_exp(x: f32) -> f32 {
  let xc = min(max(x, -104.0), 89.0);
  let k = round(xc * 1.44269504088896341);
  let r = (xc - k * 0.693359375) + k * 2.12194440e-4;
  let y = ldexp(1.0 + sc_expm1_reduced(r), i32(k));
  let special = select(y, sc_pos_inf(), x > 88.72283935546875);
  return select(select(special, 0.0, x < -103.972084), x, sc_isnan(x));
}`,
  // e^x - 1 = 2^k (e^r - 1) + (2^k - 1): both parts exact or small, no cancellation near 0.
  sc_expm1: `fn sc_expm1(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  if (x > 88.72283935546875) { return sc_pos_inf(); }
  if (x < -17.3286795) { return -1.0; }
  // x + x²p would turn −0 into −0 + 0 = +0: ±0 are returned as they are (expm1(−0) = −0).
  if (abs(x) <= 0.34657359) { return select(sc_expm1_reduced(x), x, x == 0.0); }
  let k = round(x * 1.44269504088896341);
  let r = (x - k * 0.693359375) + k * 2.12194440e-4;
  let p = sc_expm1_reduced(r);
  let ki = i32(k);
  if (ki > 126) { return ldexp(1.0 + p, ki); }
  let t = ldexp(1.0, ki);
  return t * p + (t - 1.0);
}`,
  // log(1+f) for 1+f in [sqrt(1/2), sqrt(2)]: with s = f/(2+f), log(1+f) = 2 atanh(s)
  // = f - s (f - T), T = 2s²/3 + 2s⁴/5 + ... (|s| <= 0.1716, truncation < 2^-30). The leading
  // f is exact, so the rounding errors only touch the small correction.
  sc_log1p_reduced: `fn sc_log1p_reduced(f: f32) -> f32 {
  let s = f / (2.0 + f);
  let z = s * s;
  let t = z * (2.0 / 3.0 + z * (2.0 / 5.0 + z * (2.0 / 7.0 + z * (2.0 / 9.0 + z * (2.0 / 11.0)))));
  return f - s * (f - t);
}`,
  // x = m 2^e with m in [sqrt(1/2), sqrt(2)); log x = e ln2 + log(1 + (m - 1)), m - 1 exact.
  sc_log: `fn sc_log(x_in: f32) -> f32 {
  if (sc_isnan(x_in)) { return x_in; }
  if (x_in < 0.0) { return sc_nan(); }
  if (x_in == 0.0) { return sc_neg_inf(); }
  if (x_in == sc_pos_inf()) { return x_in; }
  var x = x_in;
  var e = 0;
  if (x < 1.17549435e-38) { x = x * 8388608.0; e = -23; }
  let bits = bitcast<u32>(x);
  e = e + i32((bits >> 23u) & 0xffu) - 127;
  var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
  if (m > 1.41421356) { m = m * 0.5; e = e + 1; }
  let ef = f32(e);
  return ef * 0.693359375 + (sc_log1p_reduced(m - 1.0) - ef * 2.12194440e-4);
}`,
  // Near 0 the series takes x itself (no rounding of 1 + x); elsewhere u = 1 + x is split as
  // in sc_log and the rounding error of u is added back as c/u (fdlibm's correction; u is fenced,
  // or (1 + x) - x would be simplified to 1 and the correction to 0).
  sc_log1p: `fn sc_log1p(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  if (x < -1.0) { return sc_nan(); }
  if (x == -1.0) { return sc_neg_inf(); }
  if (x == sc_pos_inf()) { return x; }
  if (x > -0.29289321 && x < 0.41421356) { return sc_log1p_reduced(x); }
  let u = sc_fence(1.0 + x);
  var c = 0.0;
  if (u < 16777216.0) {
    // u - x is exact once u >= 2 (Sterbenz), u - 1 is exact below 2.
    if (u >= 2.0) { c = (1.0 - (u - x)) / u; } else { c = (x - (u - 1.0)) / u; }
  }
  let bits = bitcast<u32>(u);
  var e = i32((bits >> 23u) & 0xffu) - 127;
  var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
  if (m > 1.41421356) { m = m * 0.5; e = e + 1; }
  let ef = f32(e);
  return ef * 0.693359375 + ((sc_log1p_reduced(m - 1.0) + c) - ef * 2.12194440e-4);
}`,
  // σ(x) from e = exp(−|x|) ∈ (0, 1]: 1/(1 + e) for x ≥ 0, e/(1 + e) for x < 0 (no overflow,
  // and full relative accuracy far into the negative tail, as on the CPU).
  sc_sigmoid: `fn sc_sigmoid(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  let e = sc_exp(-abs(x));
  let s = 1.0 / (1.0 + e);
  return select(s, e * s, x < 0.0);
}`,
  // tanh|x| = -t/(t + 2) with t = expm1(-2|x|): accurate near 0 and saturating cleanly.
  sc_tanh: `fn sc_tanh(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  let a = abs(x);
  var y = 1.0;
  if (a < 9.1) {
    let t = sc_expm1(-2.0 * a);
    y = -t / (t + 2.0);
  }
  // y ≥ +0; x's sign bit goes onto it, so tanh(−0) = −0 (x < 0 is false there).
  return bitcast<f32>(bitcast<u32>(y) | (bitcast<u32>(x) & 0x80000000u));
}`,
  // erf. |x| < 0.5: the Maclaurin series to x^13 (truncation < 1e-9 relative), so tiny arguments
  // keep full relative accuracy. |x| >= 0.5: 1 - erfc(|x|), erfc from the Chebyshev fit of
  // Numerical Recipes (erfcc: t·exp(−x² + P(t)), t = 1/(1 + x/2), relative error < 1.2e-7 in
  // exact arithmetic; 1.05e-7 measured against float64). Its error in erf is then at most
  // 1.2e-7·erfc(0.5) ≈ 6e-8 absolute, plus float32 rounding; see the header's bound for erf.
  sc_erf: `fn sc_erf(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  let a = abs(x);
  if (a < 0.5) {
    let x2 = x * x;
    let p = 1.0 + x2 * (-1.0 / 3.0 + x2 * (1.0 / 10.0 + x2 * (-1.0 / 42.0 + x2 * (1.0 / 216.0 + x2 * (-1.0 / 1320.0 + x2 * (1.0 / 9360.0))))));
    return x * (1.1283791670955126 * p);
  }
  let t = 1.0 / (1.0 + 0.5 * a);
  let q = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let e = 1.0 - t * sc_exp(q - a * a);
  return select(e, -e, x < 0.0);
}`,

  // sin and cos of r in [-π/4, π/4] (Taylor to r^9 and r^10; truncation < 2^-28 relative).
  sc_sin_reduced: `fn sc_sin_reduced(r: f32) -> f32 {
  let z = r * r;
  return r + r * z * (-1.0 / 6.0 + z * (1.0 / 120.0 + z * (-1.0 / 5040.0 + z * (1.0 / 362880.0))));
}`,
  sc_cos_reduced: `fn sc_cos_reduced(r: f32) -> f32 {
  let z = r * r;
  return 1.0 - 0.5 * z + z * z * (1.0 / 24.0 + z * (-1.0 / 720.0 + z * (1.0 / 40320.0 + z * (-1.0 / 3628800.0))));
}`,
  // x = j π/2 + r, |r| <= π/4, as vec2(r, j mod 4), for |x| <= 6434 (Cody–Waite): the quadrant
  // j is at most 2^12 there, and π/2 is split into 12-bit pieces at fixed bit positions
  // (2^0..2^-11, 2^-12..2^-23, ...), so every j·Cₖ is exact and so are the subtractions while r
  // is small (Sterbenz, then by their common grain); what is left of π/2 after the pieces is
  // below 2^-60, so j·2^-60 stays far below the smallest |r| of any float32 there (2^-27.8, at
  // x = 252.898). Callers whose argument is known to be that small (Box–Muller angles) use this
  // directly; sc_rem_pio2 adds the Payne–Hanek reduction for larger |x|.
  sc_rem_pio2_medium: `fn sc_rem_pio2_medium(x: f32) -> vec2<f32> {
  let j = round(x * 0x1.45f306p-1);
  let r = ((((x - j * 0x1.92p+0) - j * 0x1.fb4p-12) - j * 0x1.444p-24) - j * 0x1.68p-39) - j * 0x1.84698ap-48;
  return vec2<f32>(r, f32(i32(j) & 3));
}`,
  // The same for every finite x. On GPUs a group of lanes that all have |x| <= 6434 skips the
  // Payne–Hanek branch; software adapters that run both sides of a branch (Mesa's llvmpipe)
  // pay for it on every element.
  sc_rem_pio2: `fn sc_rem_pio2(x: f32) -> vec2<f32> {
  if (abs(x) > 6434.0) {
    let q = sc_rem_pio2_large(abs(x));
    if (x < 0.0) { return vec2<f32>(-q.x, f32((4u - u32(q.y)) & 3u)); }
    return q;
  }
  return sc_rem_pio2_medium(x);
}`,
  // The high word of the 64-bit product a·b, from 16-bit halves (WGSL has no u64).
  sc_mul_hi: `fn sc_mul_hi(a: u32, b: u32) -> u32 {
  let a_hi = a >> 16u;
  let a_lo = a & 0xffffu;
  let b_hi = b >> 16u;
  let b_lo = b & 0xffffu;
  let lolo = a_lo * b_lo;
  let hilo = a_hi * b_lo;
  let lohi = a_lo * b_hi;
  let cross = (lolo >> 16u) + (hilo & 0xffffu) + (lohi & 0xffffu);
  return a_hi * b_hi + (hilo >> 16u) + (lohi >> 16u) + (cross >> 16u);
}`,
  // Payne–Hanek for finite ax >= 2^-7 (used from 6434 on): ax = M·2^(e-23) with M < 2^24, and
  // ax·2/π mod 4 only needs the bits of 2/π from position e-24 on (earlier ones give multiples
  // of 4), so with W = the 96 bits from there, ax·2/π ≡ M·W / 2^94 (mod 4): bits 95..94 of M·W
  // are the quadrant, bits 93..0 the fraction (bits of 2/π past the window, and the low word of
  // M·W, change it by less than 2^-61, against a fraction of at least 2^-30 for any float32).
  // 2/π's bits are picked by selects rather than an array index, which software adapters
  // gather lane by lane. The fraction, rounded to the nearest quadrant and normalised, becomes
  // 48 bits (a + b·2^-24) times π/2 = P1 + P2 + P3, with a in 12-bit halves so the leading
  // products are exact and r carries one final rounding.
  sc_rem_pio2_large: `fn sc_rem_pio2_large(ax: f32) -> vec2<f32> {
  let bits = bitcast<u32>(ax);
  let m = (bits & 0x007fffffu) | 0x00800000u;
  // 2/π = 0.A2F9836E 4E441529 FC2757D1 F534DDC0 DB629599 3C439041 FE5163AB..., after one zero
  // word (a window may start up to 32 bits before the binary point, where the bits are 0).
  let p = (bits >> 23u) - 120u;
  let k = p >> 5u;
  var t = vec4<u32>(0x00000000u, 0xa2f9836eu, 0x4e441529u, 0xfc2757d1u);
  t = select(t, vec4<u32>(0xa2f9836eu, 0x4e441529u, 0xfc2757d1u, 0xf534ddc0u), k == 1u);
  t = select(t, vec4<u32>(0x4e441529u, 0xfc2757d1u, 0xf534ddc0u, 0xdb629599u), k == 2u);
  t = select(t, vec4<u32>(0xfc2757d1u, 0xf534ddc0u, 0xdb629599u, 0x3c439041u), k == 3u);
  t = select(t, vec4<u32>(0xf534ddc0u, 0xdb629599u, 0x3c439041u, 0xfe5163abu), k >= 4u);
  // Shift the window left by p mod 32 (the double shift is 0, not the word, when that is 0).
  let sh = vec3<u32>(p & 31u);
  let w = (t.xyz << sh) | ((t.yzw >> vec3<u32>(1u)) >> (vec3<u32>(31u) - sh));
  // Words 2 (high) and 1 of M·W mod 2^96, without the low word.
  let md = sc_mul_hi(m, w.y);
  let f1 = m * w.y + sc_mul_hi(m, w.z);
  let f0 = m * w.x + md + select(0u, 1u, f1 < m * w.y);
  // A fraction of 1/2 or more belongs to the next quadrant: r = -(1 - fraction), where
  // 1 - fraction is the complement of the fraction bits (off by 2^-62, far below r's grain).
  let negative = (f0 & 0x20000000u) != 0u;
  var h = select(f0, ~f0, negative) & 0x3fffffffu;
  var l = select(f1, ~f1, negative);
  // Left-align the 62 fraction bits, then normalise.
  h = (h << 2u) | (l >> 30u);
  l = l << 2u;
  let wordShift = h == 0u;
  h = select(h, l, wordShift);
  l = select(l, 0u, wordShift);
  let z = countLeadingZeros(h);
  h = (h << z) | ((l >> 1u) >> (31u - z));
  l = l << z;
  // fraction = (a + b·2^-24)·2^-(24 + z) (z + 32 after a word shift), a and b 24-bit integers.
  let a = h >> 8u;
  let ah = f32(a & 0xfff000u);
  let al = f32(a & 0xfffu);
  let b = f32(((h & 0xffu) << 16u) | (l >> 16u));
  let v = ah * 0x1.92p+0 + ((ah * 0x1.fb4p-12 + al * 0x1.92p+0) + ((al * 0x1.fb4p-12 + (ah + al) * 0x1.4442d2p-24) + b * 0x1.921fb6p-24));
  let r = ldexp(v, -24 - i32(z) - select(0, 32, wordShift));
  return vec2<f32>(select(r, -r, negative), f32(((f0 >> 30u) + select(0u, 1u, negative)) & 3u));
}`,
  // sin and cos of j π/2 + r from q = vec2(r, j mod 4).
  sc_sin_of_quadrant: `fn sc_sin_of_quadrant(q: vec2<f32>) -> f32 {
  let n = u32(q.y);
  let v = select(sc_sin_reduced(q.x), sc_cos_reduced(q.x), (n & 1u) != 0u);
  return select(v, -v, n >= 2u);
}`,
  sc_cos_of_quadrant: `fn sc_cos_of_quadrant(q: vec2<f32>) -> f32 {
  let n = u32(q.y);
  let v = select(sc_cos_reduced(q.x), sc_sin_reduced(q.x), (n & 1u) != 0u);
  return select(v, -v, n == 1u || n == 2u);
}`,
  sc_sin: `fn sc_sin(x: f32) -> f32 {
  if (sc_isnan(x) || sc_isinf(x)) { return sc_nan(); }
  // The reduction gives r = −0 − (−0·C) = +0 for x = −0: ±0 are returned as they are.
  return select(sc_sin_of_quadrant(sc_rem_pio2(x)), x, x == 0.0);
}`,
  sc_cos: `fn sc_cos(x: f32) -> f32 {
  if (sc_isnan(x) || sc_isinf(x)) { return sc_nan(); }
  return sc_cos_of_quadrant(sc_rem_pio2(x));
}`,

  // log2(ax) as vec2(hi, lo) for finite ax > 0, hi with 12 significant bits, relative error
  // about 2^-33 (fdlibm's powf scheme). ax = m·2^e with m in [√3/2, √3); b = 1.5 for
  // m in [√1.5, √3), else 1, so that s = (m - b)/(m + b) has |s| < 0.1011, and
  // log2(m/b) = 2/(3 ln2) · s·Q, Q = 3 + s² + 3s⁴(1/5 + s²/7 + s⁴/9 + s⁶/11) (truncation < 2^-41).
  // s, Q and s·Q are each carried as a 12-bit high part plus a rounded low part.
  sc_log2_extended: `fn sc_log2_extended(ax: f32) -> vec2<f32> {
  let bits = bitcast<u32>(ax);
  var e = i32(bits >> 23u) - 127;
  var frac = bits & 0x007fffffu;
  if (e == -127) {
    // Subnormal: normalise with integer shifts (a multiply could meet a flushed input).
    let z = countLeadingZeros(frac) - 8u;
    frac = (frac << z) & 0x007fffffu;
    e = -126 - i32(z);
  }
  var m = bitcast<f32>(frac | 0x3f800000u);
  if (frac > 0x5db3d7u) {
    m = bitcast<f32>(frac | 0x3f000000u);
    e = e + 1;
  }
  let wide = frac > 0x1cc471u && frac <= 0x5db3d7u;
  let b = select(1.0, 1.5, wide);
  let u = m - b;
  let v = m + b;
  let s = u / v;
  // s = s_h + s_l: m + b = t_h + t_l exactly, and u - s_h·t_h is exact (Sterbenz).
  let s_h = sc_hi12(s);
  let t_h = sc_hi12(v);
  let t_l = m - (t_h - b);
  let s_l = ((u - s_h * t_h) - s_h * t_l) / v;
  let z = s * s;
  // r = 3s⁴(...) + (s² - s_h²), so that Q = 3 + s_h² + r.
  let r = z * z * (0x1.333334p-1 + z * (0x1.b6db6ep-2 + z * (0x1.555556p-2 + z * 0x1.1745d2p-2))) + s_l * (s_h + s);
  let s_h2 = s_h * s_h;
  let q_h = sc_hi12(3.0 + s_h2 + r);
  let q_l = r - sc_fence(sc_fence(q_h - 3.0) - s_h2);
  // s·Q = p_h + p_l, then times 2/(3 ln2) = 0x1.ec6p-1 + 0x1.09dc3ap-13.
  let pu = s_h * q_h;
  let pv = s_l * q_h + q_l * s;
  let p_h = sc_hi12(pu + pv);
  let p_l = pv - sc_fence(p_h - pu);
  let log2b_h = select(0.0, 0x1.2b8p-1, wide);
  let log2b_l = select(0.0, 0x1.a39fbep-20, wide);
  let z_h = 0x1.ec6p-1 * p_h;
  let z_l = 0x1.09dc3ap-13 * p_h + p_l * 0x1.ec709ep-1 + log2b_l;
  let ef = f32(e);
  let hi = sc_hi12(((z_h + z_l) + log2b_h) + ef);
  return vec2<f32>(hi, z_l - sc_fence(sc_fence(sc_fence(hi - ef) - log2b_h) - z_h));
}`,
  // 2^(h + l) for |l| <= 2^-10 |h| + 2^-20: n = round(h), f = (h - n) + l (h - n exact by
  // Sterbenz; |f| < 0.6), f ln2 = g_h + g_l with g_h = f_h·ln2_h exact, and 2^f = e^g_h (1 + g_l)
  // to first order. Results that overflow are +inf explicitly; below 2^-125 the scaling is split
  // in two so that a subnormal result is rounded once (or flushed, as WGSL allows).
  sc_exp2_extended: `fn sc_exp2_extended(h: f32, l: f32) -> f32 {
  let t = h + l;
  if (t >= 129.0) { return sc_pos_inf(); }
  if (t <= -151.0) { return 0.0; }
  let n = round(h);
  let d = h - n;
  let f_h = sc_hi12(d + l);
  let f_l = sc_fence(d - f_h) + l;
  let g_h = f_h * 0x1.62ep-1;
  let g_l = f_h * 0x1.0bfbe8p-15 + f_l * 0x1.62e43p-1;
  let e = sc_expm1_reduced(g_h);
  let v = 1.0 + sc_fence(e + g_l * (1.0 + e));
  if (n > 128.0 || (n == 128.0 && v >= 1.0)) { return sc_pos_inf(); }
  if (n > -125.0) { return ldexp(v, i32(n)); }
  return ldexp(v, -125) * ldexp(1.0, i32(n) + 125);
}`,
  // JavaScript's Math.pow: x^0 = 1 (even NaN^0); 1^±inf and (-1)^±inf are NaN; a negative base
  // (including -0 and -inf) takes its sign from the parity of an integral exponent; a finite
  // negative base with a non-integral exponent is NaN; otherwise 2^(y·log2|x|), with y·log2|x|
  // formed as y_h·hi (exact: 12 by 12 bits) + (y_l·hi + y·lo).
  sc_pow: `fn sc_pow(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (sc_isnan(x) || sc_isnan(y)) { return sc_nan(); }
  let ax = abs(x);
  let integral = floor(y) == y;
  let odd = integral && abs(y) < 16777216.0 && (i32(y) & 1) == 1;
  let negative = (bitcast<u32>(x) >> 31u) != 0u;
  var magnitude: f32;
  if (sc_isinf(y)) {
    if (ax == 1.0) { return sc_nan(); }
    magnitude = select(0.0, sc_pos_inf(), (ax > 1.0) == (y > 0.0));
  } else if (ax == 0.0 || sc_isinf(ax)) {
    magnitude = select(0.0, sc_pos_inf(), (ax == 0.0) == (y < 0.0));
  } else {
    if (negative && !integral) { return sc_nan(); }
    let lg = sc_log2_extended(ax);
    let y_h = sc_hi12(y);
    magnitude = sc_exp2_extended(y_h * lg.x, (y - y_h) * lg.x + y * lg.y);
  }
  return select(magnitude, -magnitude, negative && odd);
}`,
};

const NAME = /\bsc_\w+/g;

/** Library names each entry refers to, other than itself. */
const DEPS: Record<string, readonly string[]> = Object.fromEntries(
  Object.entries(LIBRARY).map(([name, code]) => [name, [...new Set(code.match(NAME) ?? [])].filter((d) => d !== name && d in LIBRARY)]),
);

/**
 * WGSL source of the library functions `code` calls (and what they call), in dependency order,
 * followed by the functions of the defined (custom) primitives it calls (wgsl/custom.ts).
 */
export function mathPrelude(code: string): string {
  const custom = customPrelude(code);
  const emitted = new Set<string>();
  const out: string[] = [];
  const visit = (name: string): void => {
    if (emitted.has(name)) return;
    emitted.add(name);
    for (const d of DEPS[name]!) visit(d);
    out.push(LIBRARY[name]!);
  };
  for (const match of code.matchAll(/\b(sc_\w+)\(/g)) {
    const name = match[1]!;
    if (!(name in LIBRARY)) throw new Error(`internal: unknown WGSL math function ${name}`);
    visit(name);
  }
  // A defined primitive's code may call the library too (an unknown sc_ name is its own).
  for (const match of custom.matchAll(/\b(sc_\w+)\(/g)) if (match[1]! in LIBRARY) visit(match[1]!);
  if (custom) out.push(custom);
  return out.join('\n');
}
