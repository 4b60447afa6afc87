// exp, log1p and log on f64x2 lanes (cpu/wasm/mathF64x2.ts) against the engine's own Math.exp,
// Math.log1p and Math.log, bit for bit: the WebAssembly elementwise kernels must give the JavaScript
// kernels' bits. No tolerance: both sides run fdlibm's algorithm in IEEE double arithmetic, so any
// difference is a transcription error. Inputs: every special value and every threshold fdlibm
// branches on, with the doubles either side of it; float32 values (what the kernels feed in) as
// random bit patterns over all exponents and as sweeps of the useful range; random doubles.

import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';
import { type FunctionBody, I32, ModuleBuilder, V128 } from '../src/cpu/wasm/assembler.js';
import { wasmSimdSupported } from '../src/cpu/wasm/features.js';
import { LOG1P_UNIT_TABLE, LOG1P_UNIT_TABLE_ADDRESS, LOG_TABLE, LOG_TABLE_ADDRESS, emitCosF32x4, emitErfF32x4, emitExpF32x4, emitExpm1F32x4, emitLog1pF32x4, emitLogF32x4, emitSigmoidF32x4, emitSinF32x4, emitTanhF32x4, importHostMath } from '../src/cpu/wasm/mathF32x4.js';
import { erf, sigmoid as jsSigmoid } from '../src/cpu/jsCode.js';
import { ERF_FIT } from '../src/cpu/erfFit.js';
import { KERNEL_CONSTANTS_BYTES } from '../src/cpu/wasm/heap.js';
import { emitExpF64x2, emitLog1pF64x2, emitLogF64x2 } from '../src/cpu/wasm/mathF64x2.js';

type Name = 'exp' | 'log1p' | 'log';
/** One f64x2 function: its emitter, the reference it must match bit for bit, and its inputs. */
interface F64x2Function {
  emit: (f: FunctionBody, x: number) => void;
  ref: (x: number) => number;
  /** Every special value and branch threshold of its fdlibm source, and the doubles either side. */
  boundaries: () => number[];
  /** Float32 values: random bit patterns over every exponent, and sweeps of the useful range. */
  float32: () => number[];
  /** Random doubles over wide exponent ranges. */
  doubles: () => number[];
}

const CHUNK = 1 << 15; // doubles per call: 256 KiB in, 256 KiB out
const PAGES = (2 * CHUNK * 8) / 65536;

/** `body` once per vector: src and dst (byte addresses) advance by 16 after it, n vectors in all. */
function vectorLoop(f: FunctionBody, src: number, dst: number, n: number, body: () => void): void {
  f.block().loop();
  f.get(n).i32Eqz().brIf(1);
  body();
  f.get(src).i32Const(16).i32Add().set(src);
  f.get(dst).i32Const(16).i32Add().set(dst);
  f.get(n).i32Const(1).i32Sub().set(n);
  f.br(0).end().end();
}

/**
 * One exported function per emitter, (src, dst, pairs): dst[i] = fn(src[i]) over pairs of doubles;
 * and one kernel-shaped function per emitter on four float32 lanes (promote each half, apply,
 * demote, recombine), the way the elementwise kernels will call them.
 */
function buildModule() {
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: PAGES, maximum: PAGES });
  for (const [name, { emit }] of Object.entries(FUNCTIONS)) {
    m.func(name, [I32, I32, I32], [], (f, [src, dst, n]) => {
      const x = f.local(V128);
      vectorLoop(f, src, dst, n, () => {
        f.get(src).v128Load(0).set(x);
        f.get(dst).emit((g) => emit(g, x)).v128Store(0);
      });
    });
    m.func(`${name}F32`, [I32, I32, I32], [], (f, [src, dst, n]) => {
      const v = f.local(V128);
      const lo = f.local(V128);
      const hi = f.local(V128);
      vectorLoop(f, src, dst, n, () => {
        f.get(src).v128Load(0).tee(v).f64x2PromoteLowF32x4().set(lo);
        f.get(v).get(v).i8x16Shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]).f64x2PromoteLowF32x4().set(hi);
        f.get(dst);
        emit(f, lo);
        f.f32x4DemoteF64x2Zero();
        emit(f, hi);
        f.f32x4DemoteF64x2Zero();
        f.i8x16Shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]).v128Store(0);
      });
    });
  }
  const bytes = m.encode();
  expect(WebAssembly.validate(bytes)).toBe(true);
  const memory = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES });
  const ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as Record<string, (src: number, dst: number, n: number) => void>;
  return { ex, memory };
}

let built: ReturnType<typeof buildModule> | undefined;

/** fn over every double of `xs` through the module. */
function run(name: Name, xs: Float64Array): Float64Array {
  built ??= buildModule();
  const { ex, memory } = built;
  const src = new Float64Array(memory.buffer, 0, CHUNK);
  const dst = new Float64Array(memory.buffer, CHUNK * 8, CHUNK);
  const out = new Float64Array(xs.length);
  for (let start = 0; start < xs.length; start += CHUNK) {
    const part = xs.subarray(start, Math.min(start + CHUNK, xs.length));
    src.set(part);
    if (part.length % 2) src[part.length] = 0; // the odd lane of the last pair
    ex[name]!(0, CHUNK * 8, Math.ceil(part.length / 2));
    out.set(dst.subarray(0, part.length), start);
  }
  return out;
}

const words = new DataView(new ArrayBuffer(8));
const bitsOf = (x: number): bigint => (words.setFloat64(0, x), words.getBigUint64(0));
const fromBits = (b: bigint): number => (words.setBigUint64(0, BigInt.asUintN(64, b)), words.getFloat64(0));
const fromWords = (hi: number, lo: number): number => fromBits((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
const hex = (x: number): string => `0x${bitsOf(x).toString(16).padStart(16, '0')}`;
/** The next double towards +∞ / −∞ (nextafter). */
function nextUp(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE;
  return fromBits(bitsOf(x) + (x > 0 ? 1n : -1n));
}
const nextDown = (x: number): number => -nextUp(-x);

/** Each value, its neighbours either side and the negatives of all three. */
function around(values: readonly number[]): number[] {
  return values.flatMap((v) => [nextDown(v), v, nextUp(v)]).flatMap((v) => [v, -v]);
}

/** Inputs whose result differs from the reference in any bit (NaN matches any NaN). */
function mismatches(name: Name, xs: Float64Array): { count: number; first: string[] } {
  const { ref } = FUNCTIONS[name];
  const got = run(name, xs);
  let count = 0;
  const first: string[] = [];
  for (let i = 0; i < xs.length; i++) {
    const want = ref(xs[i]!);
    const same = Number.isNaN(want) ? Number.isNaN(got[i]!) : bitsOf(want) === bitsOf(got[i]!);
    if (!same) {
      count++;
      if (first.length < 8) first.push(`${name}(${xs[i]} ${hex(xs[i]!)}) = ${want} ${hex(want)}, got ${got[i]} ${hex(got[i]!)}`);
    }
  }
  return { count, first };
}

const ZERO_MISMATCHES = { count: 0, first: [] };
const SPECIALS = [0, Infinity, NaN, Number.MIN_VALUE, Number.MAX_VALUE, 2 ** -1022, 1, 2, 0.5, Math.E, 10];
const LN2 = Math.LN2;

/** Every threshold of e_exp.c (as the doubles its high-word tests separate), and k's steps. */
function expBoundaries(): number[] {
  const v = [
    ...SPECIALS,
    fromWords(0x3fd62e42, 0), fromWords(0x3fd62e42, 0xffffffff), fromWords(0x3fd62e43, 0), LN2 / 2, // |x| > ln2/2
    fromWords(0x3ff0a2b2, 0), 1.5 * LN2, // |x| < 1.5·ln2
    2 ** -28, 2 ** -54, fromWords(0x3e300000, 0), // |x| < 2^-28
    7.09782712893383973096e+02, -7.45133219101941108420e+02, fromWords(0x40862e42, 0), 709.78, 745.13, // overflow, underflow
    1023.5 * LN2, 1024 * LN2, 708.39, 708.4, 709, 709.5, 709.7, 1000, 1e300,
  ];
  // k changes where x/ln2 crosses a half-integer (k = trunc(x/ln2 ± 1/2)); the scaling changes at
  // k = −1021, −1022 and 1024, all inside this range.
  for (let j = -1080; j <= 1030; j++) v.push((j + 0.5) * LN2, j * LN2);
  // Between ln2/2 and D(0x3fd62e43:0) fdlibm takes k = 0 though x/ln2 + 1/2 truncates to 1.
  const next = mulberry32(14);
  for (let i = 0; i < 2000; i++) v.push(fromWords(0x3fd62e42, 0xfefa39ef + Math.floor(next() * (0xffffffff - 0xfefa39ef))));
  return around(v);
}

/** Every threshold of s_log1p.c: the tiny cases, −1, the k = 0 interval, 2^53, and where 1 + x meets the normalisation thresholds. */
function log1pBoundaries(): number[] {
  const v = [
    ...SPECIALS, 2 ** -29, 2 ** -54, fromWords(0x3e200000, 0), fromWords(0x3c900000, 0),
    fromWords(0x3fda827a, 0), fromWords(0x3fd2bec5, 0), fromWords(0x3fd2bec4, 0xffffffff), fromWords(0x3fd2bec4, 0),
    Math.SQRT2 - 1, 1 - Math.SQRT1_2, 2 ** 53, 2 ** 53 + 2, 2 ** 52, 0.999999, 0.99999999999,
  ];
  // u = 1 + x (or x from 2^53) at powers of two (f = 0), at the √2 split (hu = 0x6a09e) and at the
  // edges of |f| < 2^−20 (hu = 0 or ≥ 0xffffd), for k from −60 to 1023.
  const mantissas = [1, fromWords(0x3ff6a09e, 0), fromWords(0x3ff00001, 0), fromWords(0x3ffffffd, 0), fromWords(0x3ff00000, 1), Math.SQRT2];
  for (let e = -60; e <= 1023; e++) for (const m of mantissas) v.push(m * 2 ** e - 1, m * 2 ** e);
  // Inside the bands where fdlibm's choice of formula turns on the top 20 mantissa bits of u alone
  // (hu = 0, 1, 0x6a09d…0x6a09f, 0xffffc…0xfffff), with random low words: u − 1 is exact for
  // u ≥ 1/2, so 1 + x gives back u.
  v.push(...inMantissaBands(15, [0, 1, 0x6a09d, 0x6a09e, 0x6a09f, 0xffffc, 0xffffd, 0xfffff], 1022, 1083).map((u) => u - 1));
  // Either side of the k = 0 interval's ends, where both formulas are accurate and so agree on
  // most inputs: many draws with random low words.
  v.push(...inMantissaBands(19, [0x2bec3, 0x2bec4, 0x2bec5, 0x2bec6], 0x3fd, 0x3fe, 1000).map((a) => -a));
  v.push(...inMantissaBands(20, [0xa8278, 0xa8279, 0xa827a, 0xa827b], 0x3fd, 0x3fe, 1000));
  return around(v);
}

/** Every threshold of e_log.c: zeros, subnormals, and each mantissa split, at every exponent. */
function logBoundaries(): number[] {
  const v = [...SPECIALS];
  const m20s = [0, 1, 2, 0x6147a, 0x6a09c, 0x6b851, 0x6b852, 0xffffd, 0xffffe, 0xfffff];
  for (let e = 1; e <= 2046; e++) for (const m20 of m20s) for (const lo of [0, 0xffffffff]) v.push(fromWords((e << 20) | m20, lo));
  // The same mantissa splits in subnormals (scaled by 2^54 before the split).
  for (let shift = 0; shift < 52; shift++) for (const m20 of m20s) v.push(fromBits(((BigInt(0x100000 | m20) << 32n) >> BigInt(shift)) & 0x000fffffffffffffn));
  // Inside the bands where the formula turns on the top 20 mantissa bits alone, random low words.
  v.push(...inMantissaBands(16, [0, 1, 2, 0x61479, 0x6147a, 0x6a09b, 0x6a09c, 0x6b851, 0x6b852, 0xffffd, 0xffffe, 0xfffff], 1, 2047));
  // Near 1 (k = 0) the short series for |f| < 2^−20 and the general formula differ by about a
  // thousandth of an ulp, so only many draws on either side of the band edge tell them apart.
  v.push(...inMantissaBands(17, [0, 1, 2], 0x3ff, 0x400, 5000), ...inMantissaBands(18, [0xffffc, 0xffffd, 0xffffe], 0x3fe, 0x3ff, 5000));
  return around(v);
}

/**
 * `count` doubles per entry of `m20s`: that top-20-bit mantissa, a random low word and a random
 * exponent field in [e0, e1).
 */
function inMantissaBands(seed: number, m20s: readonly number[], e0: number, e1: number, count = 300): number[] {
  const next = mulberry32(seed);
  return m20s.flatMap((m20) => Array.from({ length: count }, () => fromWords(((e0 + Math.floor(next() * (e1 - e0))) << 20) | m20, Math.floor(next() * 2 ** 32))));
}

/** `count` random finite float32 values over every exponent, from random bit patterns. */
function randomFloat32(seed: number, count: number): number[] {
  const next = mulberry32(seed);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const out: number[] = [];
  while (out.length < count) {
    u32[0] = Math.floor(next() * 2 ** 32);
    if ((u32[0] >>> 23 & 0xff) !== 0xff) out.push(f32[0]!);
  }
  return out;
}

/** `count` float32 values evenly spaced over [lo, hi]. */
function sweep32(lo: number, hi: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.fround(lo + ((hi - lo) * i) / (count - 1)));
}

/** `count` float32 values spaced evenly in log scale over [lo, hi] (both positive). */
function logSweep32(lo: number, hi: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.fround(lo * (hi / lo) ** (i / (count - 1))));
}

/** `count` random doubles from random 64-bit patterns (every exponent, both signs, some NaNs). */
function randomBits64(seed: number, count: number): number[] {
  const next = mulberry32(seed);
  return Array.from({ length: count }, () => fromWords(Math.floor(next() * 2 ** 32), Math.floor(next() * 2 ** 32)));
}

/** `count` random doubles with random mantissas and exponents uniform in [e0, e1), sign as given. */
function randomLogUniform(seed: number, count: number, e0: number, e1: number, sign: () => number): number[] {
  const next = mulberry32(seed);
  return Array.from({ length: count }, () => sign() * (1 + next()) * 2 ** Math.floor(e0 + next() * (e1 - e0)));
}

const FUNCTIONS: Record<Name, F64x2Function> = {
  exp: {
    emit: emitExpF64x2,
    ref: Math.exp,
    boundaries: expBoundaries,
    float32: () => [...randomFloat32(1, 200_000), ...sweep32(-104, 89, 200_000)],
    doubles: () => {
      const next = mulberry32(3);
      return [...randomBits64(2, 200_000), ...Array.from({ length: 200_000 }, () => (next() * 2 - 1) * 750), ...randomLogUniform(4, 100_000, -60, 11, () => (next() < 0.5 ? -1 : 1))];
    },
  },
  log1p: {
    emit: emitLog1pF64x2,
    ref: Math.log1p,
    boundaries: log1pBoundaries,
    float32: () => [...randomFloat32(5, 200_000), ...sweep32(Math.fround(-1 + 2 ** -24), 1e4, 100_000), ...logSweep32(1e-45, 1, 50_000).map((x) => -x), ...logSweep32(1e-45, 1e4, 50_000)],
    doubles: () => {
      const next = mulberry32(7);
      return [
        ...randomBits64(6, 200_000),
        ...randomLogUniform(8, 100_000, -60, 1024, () => 1),
        ...randomLogUniform(9, 100_000, -60, 0, () => -1).map((x) => Math.max(x, -1 + 2 ** -53)),
        ...Array.from({ length: 100_000 }, () => next() * 4 - 1),
      ];
    },
  },
  log: {
    emit: emitLogF64x2,
    ref: Math.log,
    boundaries: logBoundaries,
    float32: () => [...randomFloat32(10, 200_000), ...sweep32(Math.fround(1e-6), 1e6, 100_000), ...logSweep32(1e-45, 1e6, 100_000)],
    doubles: () => {
      const next = mulberry32(12);
      return [...randomBits64(11, 200_000), ...randomLogUniform(13, 200_000, -1074, 1024, () => 1), ...Array.from({ length: 100_000 }, () => next() * 4)];
    },
  },
};

describe.skipIf(!wasmSimdSupported())('f64x2 exp, log1p and log, bit for bit against Math', () => {
  for (const name of Object.keys(FUNCTIONS) as Name[]) {
    describe(name, () => {
      it('every special value and branch threshold, and the doubles either side', () => {
        const xs = new Float64Array(FUNCTIONS[name].boundaries());
        expect(xs.length).toBeGreaterThan(1000);
        expect(mismatches(name, xs)).toEqual(ZERO_MISMATCHES);
      });

      it('float32 inputs: random bit patterns over every exponent, and sweeps of the useful range', () => {
        const xs = new Float64Array(FUNCTIONS[name].float32());
        expect(xs.length).toBeGreaterThanOrEqual(400_000);
        expect(mismatches(name, xs)).toEqual(ZERO_MISMATCHES);
      });

      it('random doubles over wide exponent ranges', () => {
        const xs = new Float64Array(FUNCTIONS[name].doubles());
        expect(xs.length).toBeGreaterThanOrEqual(400_000);
        expect(mismatches(name, xs)).toEqual(ZERO_MISMATCHES);
      });

      it('four float32 lanes promoted, mapped and demoted give Math.fround(Math.' + name + '(x))', () => {
        // Every 12th of the float32 inputs: one chunk's worth (4 bytes each, below the output's offset).
        const xs = new Float32Array(FUNCTIONS[name].float32().filter((_, i) => i % 12 === 0).slice(0, CHUNK));
        built ??= buildModule();
        const { ex, memory } = built;
        const src = new Float32Array(memory.buffer, 0, xs.length);
        const dst = new Float32Array(memory.buffer, CHUNK * 8, xs.length);
        src.set(xs);
        ex[`${name}F32`]!(0, CHUNK * 8, xs.length / 4);
        const ref = FUNCTIONS[name].ref;
        const wrong: string[] = [];
        for (let i = 0; i < xs.length; i++) {
          const want = Math.fround(ref(xs[i]!));
          if (!(Object.is(want, dst[i]) || (Number.isNaN(want) && Number.isNaN(dst[i]!)))) wrong.push(`${name}(${xs[i]}) = ${want}, got ${dst[i]}`);
        }
        expect(wrong.slice(0, 8)).toEqual([]);
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Four float32 lanes through the fast paths (cpu/wasm/mathF32x4.ts): each lane must equal
// Math.fround(Math.fn(x)) (for sigmoid, the JavaScript kernels' formula) for every float32 x. No tolerance: the fast path answers only where its
// double cannot round to a different float32 than fdlibm's, and the exact transcription (for
// tanh, expm1, sin and cos, the host's Math function itself, imported) answers the rest. Inputs: every 97th float32 bit pattern (all exponents, both signs, NaNs, infinities),
// the 8192 patterns around every threshold where the fast path's domain or reduction changes,
// inputs whose fdlibm result lies near a float32 rounding boundary (found by search), and each of
// those in each of the four lanes.

type Name32 = 'exp' | 'log1p' | 'log' | 'sigmoid' | 'tanh' | 'expm1' | 'sin' | 'cos';

const CHUNK32 = 1 << 18; // float32 values per call
// Bytes [0, KERNEL_CONSTANTS_BYTES) hold exp's table (the module's data segment), then the count of
// entries into the exact path, then the inputs.
const COUNTER32 = KERNEL_CONSTANTS_BYTES;
const SRC32 = COUNTER32 + 16;
const DST32 = SRC32 + CHUNK32 * 4;
const PAGES32 = Math.ceil((DST32 + CHUNK32 * 4) / 65536);

/**
 * One function per fast path, (src, dst, vectors), each entry into its exact path adding 1 at
 * address 0; and `erf` (no fast path).
 */
function buildModule32() {
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: PAGES32, maximum: PAGES32 });
  importHostMath(m);
  const emitters: [string, FastPath['emit']][] = [...Object.entries(FAST).map(([name, { emit }]): [string, FastPath['emit']] => [name, emit]), ['erf', emitErfF32x4]];
  for (const [name, emit] of emitters) {
    m.func(name, [I32, I32, I32], [], (f, [src, dst, n]) => {
      const x = f.local(V128);
      vectorLoop(f, src, dst, n, () => {
        f.get(src).v128Load(0).set(x);
        f.get(dst);
        emit(f, x, (g) => void g.i32Const(COUNTER32).i32Const(COUNTER32).i32Load(0).i32Const(1).i32Add().i32Store(0));
        f.v128Store(0);
      });
    });
  }
  const bytes = m.encode();
  expect(WebAssembly.validate(bytes)).toBe(true);
  const memory = new WebAssembly.Memory({ initial: PAGES32, maximum: PAGES32 });
  const ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory }, Math: Math as unknown as WebAssembly.ModuleImports }).exports as Record<string, (src: number, dst: number, n: number) => void>;
  return { ex, counter: new Int32Array(memory.buffer, COUNTER32, 1), src: new Uint32Array(memory.buffer, SRC32, CHUNK32), dst: new Uint32Array(memory.buffer, DST32, CHUNK32) };
}
let built32: ReturnType<typeof buildModule32> | undefined;

const f32Cell = new Float32Array(1);
const u32Cell = new Uint32Array(f32Cell.buffer);
const f32FromBits = (b: number): number => ((u32Cell[0] = b), f32Cell[0]!);
const bitsOfF32 = (x: number): number => ((f32Cell[0] = x), u32Cell[0]!);
const isNaN32 = (b: number): boolean => (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;

/**
 * Bit patterns, in order: a list, or a function handing each to `add` (which a loop calls at the
 * cost of a plain call; a generator's resume per pattern took over half of a 2^32/97 sweep).
 */
type Patterns = Iterable<number> | ((add: (p: number) => void) => void);

/**
 * Runs the float32 bit patterns of `patterns` (in order, CHUNK32 at a time, padded to whole vectors
 * with +0) through `run(vectors)` over `src` and `dst`, and counts the lanes that differ from
 * Math.fround(ref(x)) (a NaN matches any NaN), describing the first few with `name`.
 */
function compareLanes(
  name: string, ref: (x: number) => number, patterns: Patterns, src: Uint32Array, dst: Uint32Array, run: (vectors: number) => void,
): { inputs: number; mismatches: number; first: string[] } {
  let inputs = 0;
  let mismatches = 0;
  const first: string[] = [];
  let n = 0;
  const flush = () => {
    while (n % 4) src[n++] = 0;
    run(n / 4);
    for (let i = 0; i < n; i++) {
      const x = f32FromBits(src[i]!);
      const want = bitsOfF32(Math.fround(ref(x)));
      const got = dst[i]!;
      if (got !== want && !(isNaN32(want) && isNaN32(got))) {
        mismatches++;
        if (first.length < 8) first.push(`${name}(${x} 0x${src[i]!.toString(16)}) = 0x${want.toString(16)}, got 0x${got.toString(16)}`);
      }
    }
    n = 0;
  };
  const add = (p: number) => {
    src[n++] = p;
    inputs++;
    if (n === CHUNK32) flush();
  };
  if (typeof patterns === 'function') patterns(add);
  else for (const p of patterns) add(p);
  if (n) flush();
  return { inputs, mismatches, first };
}

/**
 * Each of `values` (bit patterns) in each of the four lanes of a vector of its own, lane j of the
 * rest `other(j)`: 16 patterns a value.
 */
function inEachLane(values: Iterable<number>, other: (j: number) => number): number[] {
  const patterns: number[] = [];
  for (const p of values) for (let lane = 0; lane < 4; lane++) for (let j = 0; j < 4; j++) patterns.push(j === lane ? p : other(j));
  return patterns;
}

/** compareLanes through function `name`'s fast path, with the entries into its exact path counted. */
function check32(name: Name32, patterns: Patterns): { inputs: number; exactEntries: number; mismatches: number; first: string[] } {
  built32 ??= buildModule32();
  const { ex, counter, src, dst } = built32;
  counter[0] = 0;
  const r = compareLanes(name, FAST[name].ref, patterns, src, dst, (vectors) => ex[name]!(SRC32, DST32, vectors));
  return { ...r, exactEntries: counter[0]! };
}

/** Every `stride`-th bit pattern from 0. */
function strided(stride: number): Patterns {
  return (add) => {
    for (let p = 0; p < 2 ** 32; p += stride) add(p);
  };
}

/** The 8192 bit patterns around each float32 value of `values` (4096 either side), for both signs. */
function neighbourhoods(values: readonly number[]): Patterns {
  return (add) => {
    for (const v of values) {
      for (const sign of [0, 0x80000000]) {
        const centre = (bitsOfF32(Math.abs(v)) | sign) >>> 0;
        for (let d = -4096; d < 4096; d++) {
          const p = centre + d;
          if (p >= 0 && p < 2 ** 32) add(p);
        }
      }
    }
  };
}

/** Thresholds every fast path shares (as float32 values): zero, the subnormal and normal edges, 1, 2, ∞, the largest float32. */
const COMMON_THRESHOLDS = [0, 2 ** -149, 2 ** -126, 1, 2, Infinity, 3.4028234663852886e38];

/**
 * sin and cos: the end of the fast domain, and for the first 64 quadrants either side of 0 the
 * points where k changes ((j + ½)·π/2) and the zeros and extremes of sin and cos (j·π/2).
 */
function sinCosThresholds(): number[] {
  const v = [...COMMON_THRESHOLDS, 4096];
  for (let j = 0; j <= 64; j++) v.push(((j + 0.5) * Math.PI) / 2, (j * Math.PI) / 2);
  return v;
}

/**
 * tanh: the branch point 1/16, the clamp at 10, where tanh first rounds to 1 (≈ 9.01), and the
 * steps of exp's reduction of 2|x| (k changes where 2|x|/ln2 crosses a half-integer).
 */
function tanhThresholds(): number[] {
  const v = [...COMMON_THRESHOLDS, 1 / 16, 10, 9.0109, 2 ** -28];
  for (let j = 0; j <= 29; j++) v.push(((j + 0.5) * Math.LN2) / 2);
  return v;
}

/** exp, sigmoid and expm1: the ends of the domain, the branch points, and the steps of exp's reduction. */
function expThresholds(): number[] {
  const v = [...COMMON_THRESHOLDS, 104, 1 / 16, 17.33, -87.33, 88.72, 88.73, 89, -104, 88.7228, -87.3365, -103.972, Math.LN2 / 2, 2 ** -28];
  // e (the power of two) steps where x/ln2 crosses a half-integer, and for one turn of the table
  // either side of 0 every step of its index j, where 256x/ln2 crosses a half-integer (the
  // neighbourhoods take both signs of each).
  for (let j = -151; j <= 128; j++) v.push((j + 0.5) * Math.LN2);
  for (let m = 0; m <= 256; m++) v.push(((m + 0.5) * Math.LN2) / 256);
  return v;
}

/** log1p (shift −1) and log (shift 0): where u = 1 + x or x crosses a power of two or the √2 split of the mantissa. */
function logThresholds(shift: number): number[] {
  const v = [...COMMON_THRESHOLDS, -1, 2 ** -29, 2 ** -54, 2 ** 53];
  // Where k steps (u = 2·OFF·2^e, OFF = 0.689453125: mathF32x4.ts), and the edges of the table's
  // 128 intervals of m (OFF + j·2^−8 below 1, then 2^−7 apart), in the binades around 1.
  for (let e = -150; e <= 128; e++) v.push(2 ** e + shift, 1.37890625 * 2 ** e + shift);
  for (const e of [-1, 0, 1]) for (let j = 0; j < 128; j++) v.push(mantissaEdge(j) * 2 ** e + shift);
  // log1p on [0, 1) (every lane there) indexes 1 + x by its top 8 mantissa bits: x = j/256.
  if (shift === -1) for (let j = 1; j < 256; j++) v.push(j / 256);
  return v;
}

/** The value of m where the log table's interval j starts: bits(OFF) + j·2^45. */
function mantissaEdge(j: number): number {
  return new Float64Array(new BigUint64Array([0x3fe6100000000000n + (BigInt(j) << 45n)]).buffer)[0]!;
}

/**
 * Float32 inputs (from a seeded search over `draws` random bit patterns in [lo, hi)) whose fdlibm
 * result has its low 29 bits within half the ambiguity window of 2^28: since the fast double is
 * within half the window of fdlibm's (the window is twice the bound), these are ambiguous lanes.
 */
function nearBoundary(name: Name32, seed: number, lo: number, hi: number, draws: number): number[] {
  const { ref, window } = FAST[name];
  const next = mulberry32(seed);
  const half = 2 ** (window - 1);
  const out: number[] = [];
  for (let i = 0; i < draws; i++) {
    const x = f32FromBits(Math.floor(lo + next() * (hi - lo)) >>> 0);
    const y = ref(x);
    if (!Number.isFinite(y) || y === 0) continue;
    words.setFloat64(0, y);
    const low29 = words.getUint32(4) & 0x1fffffff;
    if (Math.abs(low29 - 2 ** 28) < half) out.push(bitsOfF32(x));
  }
  return out;
}

/** One float32 fast path and every parameter its tests use. */
interface FastPath {
  emit: (f: FunctionBody, x: number, onExact?: (f: FunctionBody) => void) => void;
  /** The double function Math.fround must round to each lane's result. */
  ref: (x: number) => number;
  /** log2 of the ambiguity window in ulps of the double, as in mathF32x4.ts. */
  window: number;
  /** Where the fast path's domain, special cases or reduction change (as float32 values). */
  thresholds: () => number[];
  /**
   * Fewer patterns than this around `thresholds` means thresholds went missing: tanh has fewer
   * thresholds (its reduction covers 2|x| ≤ 20 only), sin and cos 64 quadrants each side.
   */
  minThresholdPatterns: number;
  /** Bit-pattern ranges inside the fast domain, [lo, hi), for nearBoundary. */
  domain: readonly (readonly [number, number])[];
  /** Random bit patterns nearBoundary draws, split evenly over `domain`. */
  boundaryDraws: number;
  /** An ordinary fast-path input for the other lanes of a vector. */
  ordinary: number;
  /** Special lanes: NaN, ±∞ and the ends of the domain. */
  specials: readonly number[];
  /** A random input inside the fast domain, from `next` (uniform in [0, 1)), for the exact path's rate. */
  sample: (next: () => number) => number;
  /** Reduces by multiples of π/2 up to 4096: also checked on the float32 values nearest each. */
  quadrants?: true;
}

/** sin and cos share every parameter but the function. */
const SIN_COS: Omit<FastPath, 'emit' | 'ref'> = {
  window: 13, thresholds: sinCosThresholds, minThresholdPatterns: 2_000_000,
  domain: [[bitsOfF32(2 ** -10), bitsOfF32(4096)], [bitsOfF32(-(2 ** -10)), bitsOfF32(-4096)]],
  boundaryDraws: 4_000_000, ordinary: 0.75,
  specials: [NaN, Infinity, -Infinity, 4096, -4096, 4096.0005, 0, -0, 1e-45, Math.PI, -Math.PI / 2, 1e-30],
  sample: (next) => (next() * 2 - 1) * 1000,
  quadrants: true,
};

const FAST: Record<Name32, FastPath> = {
  exp: {
    emit: emitExpF32x4, ref: Math.exp, window: 13, thresholds: expThresholds, minThresholdPatterns: 4_000_000,
    domain: [[0, bitsOfF32(88.72)], [0x80000000, bitsOfF32(-87.33)]],
    boundaryDraws: 4_000_000, ordinary: 0.75,
    specials: [NaN, Infinity, -Infinity, 89, -105, -90, 88.725, 0, -0, 1],
    sample: (next) => (next() * 2 - 1) * 87,
  },
  log1p: {
    emit: emitLog1pF32x4, ref: Math.log1p, window: 14, thresholds: () => logThresholds(-1), minThresholdPatterns: 4_000_000,
    // From 2^−20 in magnitude: below that log1p(x) is x less a part in 2^20 or less, whose low 29
    // bits stay near 0 (x's own), so the search would find little there.
    domain: [[bitsOfF32(2 ** -20), 0x7f800000], [bitsOfF32(-(2 ** -20)), bitsOfF32(-0.99)]],
    boundaryDraws: 8_000_000, ordinary: 3,
    specials: [NaN, Infinity, -Infinity, -1, -2, -0, 0, 1e-40, 2 ** -60, 1e30],
    sample: (next) => next() * 4 - 0.99,
  },
  log: {
    emit: emitLogF32x4, ref: Math.log, window: 14, thresholds: () => logThresholds(0), minThresholdPatterns: 4_000_000,
    domain: [[0, 0x7f800000]],
    boundaryDraws: 8_000_000, ordinary: 3,
    specials: [NaN, Infinity, -Infinity, -1, -0, 0, 1e-45, 1, 1e-40, 3e38],
    sample: (next) => next() * 100,
  },
  sigmoid: {
    emit: emitSigmoidF32x4, ref: jsSigmoid, window: 13, thresholds: expThresholds, minThresholdPatterns: 4_000_000,
    domain: [[0, bitsOfF32(40)], [0x80000000, bitsOfF32(-87.33)]],
    boundaryDraws: 4_000_000, ordinary: 0.75,
    specials: [NaN, Infinity, -Infinity, 105, -105, -90, 20, -20, 0, -0],
    sample: (next) => (next() * 2 - 1) * 87,
  },
  tanh: {
    emit: emitTanhF32x4, ref: Math.tanh, window: 18, thresholds: tanhThresholds, minThresholdPatterns: 600_000,
    // From 2^−12 in magnitude (below, tanh(x) is x less a part in 2^24 or less, near x's own bits)
    // to 9, past which it rounds to ±1; both branches of the fast path.
    domain: [[bitsOfF32(2 ** -12), bitsOfF32(9)], [bitsOfF32(-(2 ** -12)), bitsOfF32(-9)]],
    boundaryDraws: 1_000_000, ordinary: 0.75,
    specials: [NaN, Infinity, -Infinity, 10, -10, 11, -9.5, 0, -0, 1e-45, -(2 ** -126), 1 / 16, -0.0624999925],
    sample: (next) => (next() * 2 - 1) * 9,
  },
  expm1: {
    emit: emitExpm1F32x4, ref: Math.expm1, window: 18, thresholds: expThresholds, minThresholdPatterns: 4_000_000,
    // From 2^−12 in magnitude (as tanh) to exp's overflow, and to −17.4, past which it rounds to −1.
    domain: [[bitsOfF32(2 ** -12), bitsOfF32(88.72)], [bitsOfF32(-(2 ** -12)), bitsOfF32(-17.4)]],
    boundaryDraws: 1_000_000, ordinary: 0.75,
    specials: [NaN, Infinity, -Infinity, 89, -105, 88.725, -17.34, 0, -0, 1e-45, 1 / 16, -0.0625],
    sample: (next) => (next() * 2 - 1) * 20,
  },
  sin: { emit: emitSinF32x4, ref: Math.sin, ...SIN_COS },
  cos: { emit: emitCosF32x4, ref: Math.cos, ...SIN_COS },
};

describe('log\'s table (mathF32x4.ts, logCore)', () => {
  it('has, for each of the 128 intervals of m, 1/c with c inside it, and log(c) within an ulp; c = 1 and log(c) = −0 around 1', () => {
    const table = new Float64Array(new Uint8Array(LOG_TABLE).buffer);
    expect(table.length).toBe(256);
    expect(LOG_TABLE_ADDRESS + LOG_TABLE.length).toBeLessThanOrEqual(KERNEL_CONSTANTS_BYTES);
    for (let j = 0; j < 128; j++) {
      const [inverse, logC] = [table[2 * j]!, table[2 * j + 1]!];
      const c = 1 / inverse; // within an ulp of c: 1/c was rounded once
      const [lo, hi] = [mantissaEdge(j), j < 127 ? mantissaEdge(j + 1) : 2 * mantissaEdge(0)];
      expect(c > lo && c < hi, `c_${j} = ${c} in [${lo}, ${hi})`).toBe(true);
      if (lo <= 1 && 1 < hi) {
        expect([inverse, Object.is(logC, -0)], `interval ${j} holds 1`).toEqual([1, true]);
        continue;
      }
      // log(c) moves by at most 2^−52 between c and 1/(1/c): an ulp of log(c) and that.
      expect(Math.abs(logC - Math.log(c)), `log(c_${j})`).toBeLessThanOrEqual(2 ** -52 * Math.abs(logC) + 2 ** -52);
    }
  });
});

describe('log1p\'s table over [1, 2) (mathF32x4.ts, log1pUnit)', () => {
  it('has, for each of the 256 intervals [1 + j/256, 1 + (j + 1)/256), 1/c with c inside it, and log(c) within an ulp; c = 1 and log(c) = −0 on the first', () => {
    const table = new Float64Array(new Uint8Array(LOG1P_UNIT_TABLE).buffer);
    expect(table.length).toBe(512);
    expect(LOG1P_UNIT_TABLE_ADDRESS).toBeGreaterThanOrEqual(LOG_TABLE_ADDRESS + LOG_TABLE.length);
    expect(LOG1P_UNIT_TABLE_ADDRESS + LOG1P_UNIT_TABLE.length).toBeLessThanOrEqual(KERNEL_CONSTANTS_BYTES);
    expect([table[0], Object.is(table[1], -0)]).toEqual([1, true]);
    for (let j = 1; j < 256; j++) {
      const [inverse, logC] = [table[2 * j]!, table[2 * j + 1]!];
      const c = 1 / inverse;
      expect(c > 1 + j / 256 && c < 1 + (j + 1) / 256, `c_${j} = ${c}`).toBe(true);
      expect(Math.abs(logC - Math.log(c)), `log(c_${j})`).toBeLessThanOrEqual(2 ** -52 * Math.abs(logC) + 2 ** -52);
    }
  });
});

describe.skipIf(!wasmSimdSupported())('float32 fast paths: four lanes, bit for bit against Math.fround(Math.fn(x))', () => {
  for (const name of Object.keys(FAST) as Name32[]) {
    const fast = FAST[name];
    describe(name, () => {
      it('every 97th float32 bit pattern (all exponents, both signs, NaNs and infinities)', () => {
        const r = check32(name, strided(97));
        expect(r.inputs).toBe(Math.ceil(2 ** 32 / 97));
        expect({ mismatches: r.mismatches, first: r.first }).toEqual({ mismatches: 0, first: [] });
      });

      it('the 8192 patterns around every threshold of the fast domain, the specials and the reduction', () => {
        const r = check32(name, neighbourhoods(fast.thresholds()));
        expect(r.inputs).toBeGreaterThan(fast.minThresholdPatterns);
        expect({ mismatches: r.mismatches, first: r.first }).toEqual({ mismatches: 0, first: [] });
      });

      if (fast.quadrants) {
        it('the float32 values nearest every multiple of π/2 up to 4096, where r is smallest and its reduction error counts most', () => {
          const patterns: number[] = [];
          for (let j = 1; j * (Math.PI / 2) <= 4096; j++) {
            const centre = bitsOfF32(Math.fround((j * Math.PI) / 2));
            for (let d = -2; d <= 2; d++) patterns.push(centre + d, (centre + d + 0x80000000) >>> 0);
          }
          const r = check32(name, patterns);
          expect(r.inputs).toBe(2607 * 10);
          expect({ mismatches: r.mismatches, first: r.first }).toEqual({ mismatches: 0, first: [] });
        });
      }

      it('inputs near a float32 rounding boundary take the exact path, in each of the four lanes, and give its bits', () => {
        const ranges = fast.domain;
        const found = ranges.flatMap(([lo, hi], i) => nearBoundary(name, 31 + i, lo, hi, fast.boundaryDraws / ranges.length));
        expect(found.length).toBeGreaterThanOrEqual(8);
        // Each found input in lane j of its own vector, the other lanes ordinary fast-path inputs.
        const ordinary = bitsOfF32(fast.ordinary);
        const r = check32(name, inEachLane(found, () => ordinary));
        expect({ mismatches: r.mismatches, first: r.first }).toEqual({ mismatches: 0, first: [] });
        // Checked against the same inputs: every vector (and only those) entered the exact path.
        expect(r.exactEntries).toBe(found.length * 4);
        expect(check32(name, Array.from({ length: 4096 }, () => ordinary)).exactEntries).toBe(0);
      });

      it('special lanes (NaN, ±∞, the ends of the domain) in each of the four lanes, next to ordinary ones', () => {
        const r = check32(name, inEachLane(fast.specials.map(bitsOfF32), (j) => bitsOfF32(0.5 + j)));
        expect({ mismatches: r.mismatches, first: r.first }).toEqual({ mismatches: 0, first: [] });
      });

      it('the exact path is rare on ordinary inputs: at most twice the rate the window predicts', () => {
        // Random float32 values inside the fast domain: a lane is ambiguous with probability
        // 2W/2^29 (W the window), a vector enters the exact path with at most 4 times that.
        const next = mulberry32(40);
        const count = 1 << 20;
        const xs = Array.from({ length: count }, () => bitsOfF32(fast.sample(next)));
        const r = check32(name, xs);
        expect(r.mismatches).toBe(0);
        const expected = (count / 4) * 4 * 2 ** (fast.window + 1 - 29);
        expect(r.exactEntries).toBeLessThanOrEqual(2 * expected + 8);
      });
    });
  }
});

// log1p where all four lanes lie in [0, 1) takes a core of its own (log1pUnit): the sweeps above
// reach it through runs of consecutive inputs; here its specials and its ambiguous lanes, with
// the other lanes inside [0, 1) too, and the same inputs beside a lane outside it (the general
// core), must give the same bits.
describe.skipIf(!wasmSimdSupported())('log1p on [0, 1): the core for vectors wholly inside, bit for bit', () => {
  const inside = [0.25, 0.5, 0.75, 0.125];
  const outside = [-0.5, 2, 3, 0.25];
  const vectors = (lanes: readonly number[], others: readonly number[]) => inEachLane(lanes, (j) => bitsOfF32(others[j]!));
  const specials = [0, -0, 1e-45, 2 ** -149, 2 ** -126, 1e-40, 2 ** -60, 2 ** -29, Math.fround(2 ** -29 * (1 + 2 ** -23)), Math.fround(2 ** -8 * (1 - 2 ** -24)), 2 ** -8, 0.99999994, 0.5, 1 / 3].map(bitsOfF32);

  it('specials (±0, subnormals, tiny inputs where 1 + x rounds, the ends of the intervals) in each lane', () => {
    for (const others of [inside, outside]) {
      const r = check32('log1p', vectors(specials, others));
      expect({ mismatches: r.mismatches, first: r.first }).toEqual({ mismatches: 0, first: [] });
      expect(r.inputs).toBe(specials.length * 16);
    }
  });

  it('inputs near a float32 rounding boundary take the exact path in each lane, from either core', () => {
    const found = nearBoundary('log1p', 77, bitsOfF32(2 ** -20), bitsOfF32(1), 4_000_000);
    expect(found.length).toBeGreaterThanOrEqual(8);
    for (const others of [inside, outside]) {
      const r = check32('log1p', vectors(found, others));
      expect({ mismatches: r.mismatches, first: r.first }).toEqual({ mismatches: 0, first: [] });
      expect(r.exactEntries).toBe(found.length * 4);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// erf in four float32 lanes (mathF32x4.ts, emitErfF32x4): the CPU's float64 erf (jsCode.ts) run on
// each lane by the same double operations, rounded to float32: Math.fround(erf(x)) bit for bit,
// with no fast path, so no lane is exempt. Inputs: every 97th float32 bit pattern, the 8192
// patterns around each piece's boundary (2^−28, 0.84375, 1.25, 1/0.35, 6), and vectors mixing a
// lane of the piece beyond 1.25 (which runs only where some lane needs it) with lanes of the others.

describe.runIf(wasmSimdSupported())('erf in WebAssembly SIMD: the JavaScript function\'s bits', () => {
  const check = (patterns: Patterns) => {
    built32 ??= buildModule32();
    const { ex, src, dst } = built32;
    const r = compareLanes('erf', erf, patterns, src, dst, (vectors) => ex.erf!(SRC32, DST32, vectors));
    return { inputs: r.inputs, wrong: r.first };
  };

  it('every 97th float32 bit pattern (all exponents, both signs, NaNs and infinities)', () => {
    const r = check(strided(97));
    expect(r.inputs).toBeGreaterThan(44_000_000);
    expect(r.wrong).toEqual([]);
  });

  it('around every boundary between the pieces, and specials', () => {
    const r = check(neighbourhoods([ERF_FIT.tiny, ERF_FIT.small, ERF_FIT.mid, ERF_FIT.split, ERF_FIT.large, 1]));
    expect(r.inputs).toBe(6 * 2 * 8192);
    expect(r.wrong).toEqual([]);
    const specials = [0, -0, NaN, Infinity, -Infinity, 1e-45, -1e-45, 3.4028234663852886e38, -3.4028234663852886e38].map(bitsOfF32);
    expect(check(specials).wrong).toEqual([]);
  });

  it('vectors mixing a lane beyond 1.25 with lanes below it, in every lane', () => {
    // The piece beyond 1.25 runs for a half-vector when one of its lanes needs it; the others
    // must keep their own piece's value.
    expect(check(inEachLane([1.3, -2.9, 5.99, 3].map(bitsOfF32), (j) => bitsOfF32([0.1, -0.9, 1e-9, 1.1][j]!))).wrong).toEqual([]);
  });
});
