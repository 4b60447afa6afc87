// Float32 elementary functions in WGSL, written out rather than taken from the built-ins.
// Why: WGSL only promises loose bounds for its built-ins (log: 2^-21 absolute near 1; exp:
// 3 + 2|x| ULP; sin/cos: 2^-11 absolute, and nothing outside [-π, π]), has no log1p/expm1, and
// tanh is specified as sinh/cosh (NaN at large |x| on some drivers). These versions reduce the
// argument exactly (Cody–Waite constants with few significant bits, so k·C is exact), evaluate
// short Taylor polynomials whose truncation error is below 2^-30 relative on the reduced range,
// and stay within about 2 ULP everywhere, matching the CPU reference closely. NaN propagates
// explicitly, because a NaN argument would otherwise reach `i32()` (indeterminate in WGSL).
//
// Each function lists its dependencies; `mathPrelude(code)` emits only what `code` calls.

interface MathFunction {
  deps: readonly string[];
  code: string;
}

const LIBRARY: Record<string, MathFunction> = {
  sc_special: {
    deps: [],
    // Infinities and NaN read from a private variable: WGSL rejects them as constant expressions.
    code: `var<private> sc_special_bits: vec3<u32> = vec3<u32>(0x7f800000u, 0xff800000u, 0x7fc00000u);`,
  },
  sc_pos_inf: { deps: ['sc_special'], code: `fn sc_pos_inf() -> f32 { return bitcast<f32>(sc_special_bits.x); }` },
  sc_neg_inf: { deps: ['sc_special'], code: `fn sc_neg_inf() -> f32 { return bitcast<f32>(sc_special_bits.y); }` },
  sc_nan: { deps: ['sc_special'], code: `fn sc_nan() -> f32 { return bitcast<f32>(sc_special_bits.z); }` },
  sc_isnan: {
    deps: [],
    // Bit test: comparisons against NaN may be folded away by drivers that assume finite math.
    code: `fn sc_isnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }`,
  },
  sc_isinf: {
    deps: [],
    code: `fn sc_isinf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }`,
  },
  sc_expm1_reduced: {
    deps: [],
    // e^r - 1 for |r| <= ln2/2: Taylor series to r^8/8! (truncation < 2^-31 relative).
    code: `fn sc_expm1_reduced(r: f32) -> f32 {
  let p = 1.0 / 2.0 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0 + r * (1.0 / 40320.0))))));
  return r + r * r * p;
}`,
  },
  sc_exp: {
    deps: ['sc_isnan', 'sc_expm1_reduced', 'sc_pos_inf'],
    // x = k ln2 + r with ln2 = 0.693359375 (9 bits, so k·hi is exact) - 2.12194440e-4. The 2^k
    // scaling is ldexp, not a product with constants: drivers that reassociate constant factors
    // (Mesa folds (m·2^127)·2 into m·inf) would overflow near the top of the range.
    code: `fn sc_exp(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  if (x > 88.72283935546875) { return sc_pos_inf(); }
  if (x < -103.972084) { return 0.0; }
  let k = round(x * 1.44269504088896341);
  let r = (x - k * 0.693359375) + k * 2.12194440e-4;
  return ldexp(1.0 + sc_expm1_reduced(r), i32(k));
}`,
  },
  sc_expm1: {
    deps: ['sc_isnan', 'sc_expm1_reduced', 'sc_pos_inf'],
    // e^x - 1 = 2^k (e^r - 1) + (2^k - 1): both parts exact or small, no cancellation near 0.
    code: `fn sc_expm1(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  if (x > 88.72283935546875) { return sc_pos_inf(); }
  if (x < -17.3286795) { return -1.0; }
  if (abs(x) <= 0.34657359) { return sc_expm1_reduced(x); }
  let k = round(x * 1.44269504088896341);
  let r = (x - k * 0.693359375) + k * 2.12194440e-4;
  let p = sc_expm1_reduced(r);
  let ki = i32(k);
  if (ki > 126) { return ldexp(1.0 + p, ki); }
  let t = ldexp(1.0, ki);
  return t * p + (t - 1.0);
}`,
  },
  sc_log1p_reduced: {
    deps: [],
    // log(1+f) for 1+f in [sqrt(1/2), sqrt(2)]: with s = f/(2+f), log(1+f) = 2 atanh(s)
    // = f - s (f - T), T = 2s²/3 + 2s⁴/5 + ... (|s| <= 0.1716, truncation < 2^-30). The leading
    // f is exact, so the rounding errors only touch the small correction.
    code: `fn sc_log1p_reduced(f: f32) -> f32 {
  let s = f / (2.0 + f);
  let z = s * s;
  let t = z * (2.0 / 3.0 + z * (2.0 / 5.0 + z * (2.0 / 7.0 + z * (2.0 / 9.0 + z * (2.0 / 11.0)))));
  return f - s * (f - t);
}`,
  },
  sc_log: {
    deps: ['sc_isnan', 'sc_log1p_reduced', 'sc_pos_inf', 'sc_neg_inf', 'sc_nan'],
    // x = m 2^e with m in [sqrt(1/2), sqrt(2)); log x = e ln2 + log(1 + (m - 1)), m - 1 exact.
    code: `fn sc_log(x_in: f32) -> f32 {
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
  },
  sc_log1p: {
    deps: ['sc_isnan', 'sc_log1p_reduced', 'sc_pos_inf', 'sc_neg_inf', 'sc_nan'],
    // Near 0 the series takes x itself (no rounding of 1 + x); elsewhere u = 1 + x is split as
    // in sc_log and the rounding error of u is added back as c/u (fdlibm's correction).
    code: `fn sc_log1p(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  if (x < -1.0) { return sc_nan(); }
  if (x == -1.0) { return sc_neg_inf(); }
  if (x == sc_pos_inf()) { return x; }
  if (x > -0.29289321 && x < 0.41421356) { return sc_log1p_reduced(x); }
  let u = 1.0 + x;
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
  },
  sc_sigmoid: {
    deps: ['sc_isnan', 'sc_exp'],
    // σ(x) from e = exp(−|x|) ∈ (0, 1]: 1/(1 + e) for x ≥ 0, e/(1 + e) for x < 0 (no overflow,
    // and full relative accuracy far into the negative tail, as on the CPU).
    code: `fn sc_sigmoid(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  let e = sc_exp(-abs(x));
  let s = 1.0 / (1.0 + e);
  return select(s, e * s, x < 0.0);
}`,
  },
  sc_tanh: {
    deps: ['sc_isnan', 'sc_expm1'],
    // tanh|x| = -t/(t + 2) with t = expm1(-2|x|): accurate near 0 and saturating cleanly.
    code: `fn sc_tanh(x: f32) -> f32 {
  if (sc_isnan(x)) { return x; }
  let a = abs(x);
  var y = 1.0;
  if (a < 9.1) {
    let t = sc_expm1(-2.0 * a);
    y = -t / (t + 2.0);
  }
  return select(y, -y, x < 0.0);
}`,
  },
  sc_sincos_reduced: {
    deps: [],
    // sin and cos of r in [-π/4, π/4] (Taylor to r^9 and r^10; truncation < 2^-30).
    code: `fn sc_sin_reduced(r: f32) -> f32 {
  let z = r * r;
  return r + r * z * (-1.0 / 6.0 + z * (1.0 / 120.0 + z * (-1.0 / 5040.0 + z * (1.0 / 362880.0))));
}
fn sc_cos_reduced(r: f32) -> f32 {
  let z = r * r;
  return 1.0 - 0.5 * z + z * z * (1.0 / 24.0 + z * (-1.0 / 720.0 + z * (1.0 / 40320.0 + z * (-1.0 / 3628800.0))));
}
// x = j π/2 + r with π/2 split in three (cephes' constants: j·part1 and j·part2 are exact for
// |j| < 2^12), so the reduction is accurate for |x| up to about 8192.
fn sc_quadrant(x: f32) -> vec2<f32> {
  let j = round(x * 0.636619772367581343);
  let r = ((x - j * 1.5703125) - j * 4.837512969970703125e-4) - j * 7.54978995489188216e-8;
  return vec2<f32>(r, j);
}`,
  },
  sc_sin: {
    deps: ['sc_isnan', 'sc_isinf', 'sc_sincos_reduced', 'sc_nan'],
    code: `fn sc_sin(x: f32) -> f32 {
  if (sc_isnan(x) || sc_isinf(x)) { return sc_nan(); }
  let q = sc_quadrant(x);
  let n = i32(q.y) & 3;
  let s = sc_sin_reduced(q.x);
  let c = sc_cos_reduced(q.x);
  if (n == 0) { return s; }
  if (n == 1) { return c; }
  if (n == 2) { return -s; }
  return -c;
}`,
  },
  sc_cos: {
    deps: ['sc_isnan', 'sc_isinf', 'sc_sincos_reduced', 'sc_nan'],
    code: `fn sc_cos(x: f32) -> f32 {
  if (sc_isnan(x) || sc_isinf(x)) { return sc_nan(); }
  let q = sc_quadrant(x);
  let n = i32(q.y) & 3;
  let s = sc_sin_reduced(q.x);
  let c = sc_cos_reduced(q.x);
  if (n == 0) { return c; }
  if (n == 1) { return -s; }
  if (n == 2) { return -c; }
  return s;
}`,
  },
  sc_pow: {
    deps: ['sc_isnan', 'sc_isinf', 'sc_exp', 'sc_log', 'sc_nan'],
    // JavaScript's Math.pow: x^0 = 1 (even NaN^0); a negative base (including -0 and -inf)
    // takes its sign from the parity of an integral exponent; a finite negative base with a
    // non-integral exponent is NaN; otherwise exp(y log|x|). The relative error grows like
    // |y log x|·2^-23, as for every pow built on exp and log.
    code: `fn sc_pow(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (sc_isnan(x) || sc_isnan(y)) { return sc_nan(); }
  let magnitude = sc_exp(y * sc_log(abs(x)));
  if ((bitcast<u32>(x) >> 31u) == 0u) { return magnitude; }
  if (floor(y) != y) { return select(sc_nan(), magnitude, x == 0.0 || sc_isinf(x)); }
  if (abs(y) >= 16777216.0) { return magnitude; }
  let odd = (i32(y) & 1) == 1;
  return select(magnitude, -magnitude, odd);
}`,
  },
};

/** WGSL source of the library functions `code` calls (and what they call), in dependency order. */
export function mathPrelude(code: string): string {
  const emitted = new Set<string>();
  const out: string[] = [];
  const visit = (name: string): void => {
    if (emitted.has(name)) return;
    emitted.add(name);
    const fn = LIBRARY[name];
    if (!fn) throw new Error(`internal: unknown WGSL math function ${name}`);
    for (const d of fn.deps) visit(d);
    out.push(fn.code);
  };
  for (const match of code.matchAll(/\b(sc_\w+)\(/g)) {
    const name = match[1]!;
    visit(name === 'sc_quadrant' || name === 'sc_sin_reduced' || name === 'sc_cos_reduced' ? 'sc_sincos_reduced' : name);
  }
  return out.join('\n');
}
