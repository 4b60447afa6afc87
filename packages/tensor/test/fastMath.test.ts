// setCpuFastMath: float32 exp, log1p, log and sigmoid in float32 arithmetic (cpu/wasm/mathF32x4Fast.ts).
// Each result must lie within FAST_MATH_ULPS of the default value (Math.fround(Math.fn(x)): correctly rounded but at a few inputs), counted in float32
// steps (the distance between the two bit patterns ordered as integers); NaN must give NaN, and
// infinities and signed zeros must come out exactly. The bound is the largest distance found over
// every float32 input (scripts/exhaustiveMath.ts --fast); here, a sample of every exponent and
// dense sweeps of the ranges the losses use, through eager ops and through a compiled program, on
// one thread and on two. The JavaScript kernels compute the same forms (fastMathJsSource), so the
// mode has one set of bits wherever a value is computed: the WebAssembly kernels' bits from the
// JavaScript ones, small arrays and large, eager and jit, with WebAssembly off and on. The
// default (exact) kernels must be untouched by the mode having been on.

import { afterEach, describe, expect, it } from 'vitest';
import { FAST_MATH_ULPS, type Tensor, broadcastTo, cast, cpuKernelInfo, exp, log, log1p, setCpuFastMath, setCpuThreads, setCpuWasm, sigmoid, softplus, tensor } from '../src/index.js';
import { jit } from '@scorch/autograd';
import { fastMathJs, helpersSource, sigmoid as jsSigmoid } from '../src/cpu/jsCode.js';
import { wasmSimdSupported } from '../src/cpu/wasm/features.js';
import { elementwiseKernelCalls } from '../src/cpu/wasm/elementwiseModule.js';

type Name = keyof typeof FAST_MATH_ULPS;
const FUNCTIONS: Record<Name, { op: (x: Tensor) => Tensor; ref: (x: number) => number; specials: number[] }> = {
  exp: { op: exp, ref: Math.exp, specials: [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, -104, -103.972, -103.9, -87.3365, -87.33, -50, 88.7228, 88.7229, 89, 100, 3.4e38, -3.4e38] },
  log1p: { op: log1p, ref: Math.log1p, specials: [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, -1, -0.99999994, -2, -0.5, -0.29289323, 0.41421357, 1, 2 ** 24, 3.4e38] },
  log: { op: log, ref: Math.log, specials: [NaN, Infinity, -Infinity, 0, -0, 1e-45, 1e-40, 2 ** -126, -1, 0.70710677, 0.7071068, 1, 1.4142135, 1.4142137, 3.4e38] },
  sigmoid: { op: sigmoid, ref: jsSigmoid, specials: [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, 16.6, -16.6, 88.8, -88.8, 104, -104, 200, -200] },
};

/** A float32's bits as an integer ordered as the values are (−0 and +0 adjacent). */
function ordered(x: number): number {
  const b = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  return b >= 0x80000000 ? 0x80000000 - b : b;
}

/** Float32 inputs: every 8191st bit pattern (every exponent, both signs, NaNs), the specials, and 2^17 evenly spaced over [lo, hi]. */
function inputs(specials: number[], lo: number, hi: number): Float32Array {
  const out: number[] = [...specials];
  const bits = new Uint32Array(1);
  const view = new Float32Array(bits.buffer);
  for (let b = 0; b < 2 ** 32; b += 8191) {
    bits[0] = b;
    out.push(view[0]!);
  }
  const n = 2 ** 17;
  for (let i = 0; i < n; i++) out.push(lo + ((hi - lo) * i) / (n - 1));
  // A multiple of 4 beyond the kernels' minimum, so every lane position sees every kind.
  while (out.length % 4 !== 0) out.push(0.5);
  return new Float32Array(out);
}

const RANGES: Record<Name, [number, number]> = { exp: [-105, 90], log1p: [-1, 4], log: [0, 8], sigmoid: [-110, 110] };

/** Checks `got` against the default values (Math.fround(Math.fn(x))) of `name`; returns the largest distance and how many results differ. */
function check(name: Name, xs: Float32Array, got: Float32Array): { worst: number; differ: number } {
  const { ref } = FUNCTIONS[name];
  let worst = 0;
  let differ = 0;
  for (let i = 0; i < xs.length; i++) {
    const want = Math.fround(ref(xs[i]!));
    const y = got[i]!;
    if (Number.isNaN(want)) {
      if (!Number.isNaN(y)) expect.fail(`${name}(${xs[i]}) = ${y}, expected NaN`);
      continue;
    }
    if (!Number.isFinite(want) || want === 0) {
      if (!Object.is(y, want)) expect.fail(`${name}(${xs[i]}) = ${y}, expected exactly ${Object.is(want, -0) ? '-0' : want}`);
      continue;
    }
    const d = Math.abs(ordered(y) - ordered(want));
    if (!(d <= FAST_MATH_ULPS[name])) expect.fail(`${name}(${xs[i]}) = ${y}, ${d} float32 steps from ${want} (bound ${FAST_MATH_ULPS[name]})`);
    if (d > 0) differ++;
    worst = Math.max(worst, d);
  }
  return { worst, differ };
}

afterEach(() => {
  setCpuFastMath(false);
  setCpuThreads(1);
});

describe.runIf(wasmSimdSupported())('setCpuFastMath: float32 exp, log1p, log and sigmoid within FAST_MATH_ULPS', () => {
  for (const name of Object.keys(FUNCTIONS) as Name[]) {
    it(`${name}: eager, every exponent and a dense sweep, within ${FAST_MATH_ULPS[name]} ulps; exact again once turned off`, () => {
      const { op, ref, specials } = FUNCTIONS[name];
      const xs = inputs(specials, ...RANGES[name]);
      const x = tensor(xs, { shape: [xs.length] });
      setCpuFastMath(true);
      expect(cpuKernelInfo().fastMath).toBe(true);
      const before = elementwiseKernelCalls();
      const fast = op(x).dataSync() as Float32Array;
      expect(elementwiseKernelCalls()).toBeGreaterThan(before); // the WebAssembly kernel ran
      const { worst, differ } = check(name, xs, fast);
      // The fast form ran: some results are not the default ones; the bound is tight.
      expect(differ).toBeGreaterThan(xs.length / 100);
      expect(worst).toBe(FAST_MATH_ULPS[name]);
      setCpuFastMath(false);
      expect(cpuKernelInfo().fastMath).toBe(false);
      const exact = op(x).dataSync() as Float32Array;
      for (let i = 0; i < xs.length; i++) {
        const want = Math.fround(ref(xs[i]!));
        if (!Object.is(exact[i], want) && !(Number.isNaN(want) && Number.isNaN(exact[i]!))) expect.fail(`exact ${name}(${xs[i]}) = ${exact[i]}, expected ${want}`);
      }
    });
  }

  it('a compiled softplus follows the mode from its next call, within the bounds, and comes back to the exact bits', () => {
    // softplus = max(x, 0) + log1p(exp(−|x|)): two fast functions in one kernel.
    const n = 1 << 17;
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = -30 + (60 * i) / (n - 1);
    const x = tensor(xs, { shape: [n] });
    const f = jit((t: Tensor) => softplus(t));
    const exact1 = f(x).dataSync() as Float32Array;
    setCpuFastMath(true);
    const fast = f(x).dataSync() as Float32Array;
    setCpuFastMath(false);
    const exact2 = f(x).dataSync() as Float32Array;
    expect(Array.from(exact2)).toEqual(Array.from(exact1));
    let differ = 0;
    for (let i = 0; i < n; i++) {
      const want = exact1[i]!;
      // Two fast steps and a sum: exp's 1 ulp moves log1p(e) by at most e/(1 + e) of an ulp of e,
      // under one ulp of the result; log1p adds 1, the sum half (both the same sign).
      const d = Math.abs(ordered(fast[i]!) - ordered(want));
      if (d > 3) expect.fail(`fast softplus(${xs[i]}) = ${fast[i]}, ${d} steps from ${want}`);
      if (d > 0) differ++;
    }
    expect(differ).toBeGreaterThan(n / 100);
  });

  it('two threads give the one-thread bits in fast mode, and float64 is untouched', () => {
    const n = 1 << 18; // past the size from which compiled elementwise kernels split across threads
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = Math.sin(i) * 20;
    const x = tensor(xs, { shape: [n] });
    const f = jit((t: Tensor) => [softplus(t), sigmoid(t), log(exp(t))]);
    setCpuFastMath(true);
    setCpuThreads(1);
    const one = (f(x) as Tensor[]).map((t) => Array.from(t.dataSync()));
    setCpuThreads(2);
    const two = (f(x) as Tensor[]).map((t) => Array.from(t.dataSync()));
    expect(two).toEqual(one);
    const d = [0.5, -3, 40, 1e-300];
    const y = exp(tensor(d, { dtype: 'float64' })).dataSync();
    expect(Array.from(y)).toEqual(d.map(Math.exp));
  });

  it('a compiled program under fast math gives its fast bits from its JavaScript loops too (setCpuWasm(false)), and the exact ones once the mode is off', () => {
    const n = 1 << 16;
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = -80 + (160 * i) / n;
    const x = tensor(xs, { shape: [n] });
    const exact = Array.from(xs, (v) => Math.fround(Math.exp(v)));
    const f = jit((t: Tensor) => exp(t));
    setCpuFastMath(true);
    const fast = Array.from(f(x).dataSync());
    expect(fast).not.toEqual(exact);
    expect(f.lower(x).kernels()[0]!.source).toMatch(/^\/\/ WebAssembly SIMD.*exp\/log\/log1p\/sigmoid in f32 lanes/);
    setCpuWasm(false);
    try {
      expect(f.lower(x).kernels()[0]!.source).toMatch(/expFast\(/);
      expect(Array.from(f(x).dataSync())).toEqual(fast);
      setCpuFastMath(false);
      expect(Array.from(f(x).dataSync())).toEqual(exact);
    } finally {
      setCpuWasm(true);
    }
    expect(Array.from(f(x).dataSync())).toEqual(exact);
  });

  for (const name of Object.keys(FUNCTIONS) as Name[]) {
    it(`${name}: the JavaScript kernels' fast form gives the WebAssembly kernel's bits, and small arrays those of large ones`, () => {
      const { op, specials } = FUNCTIONS[name];
      const xs = inputs(specials, ...RANGES[name]);
      const x = tensor(xs, { shape: [xs.length] });
      setCpuFastMath(true);
      const wasm = op(x).dataSync() as Float32Array;
      setCpuWasm(false);
      let js: Float32Array;
      const before = elementwiseKernelCalls();
      try {
        js = op(x).dataSync() as Float32Array;
      } finally {
        setCpuWasm(true);
      }
      expect(elementwiseKernelCalls()).toBe(before); // the JavaScript kernel ran
      const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
      const [w, j] = [bits(wasm), bits(js)];
      for (let i = 0; i < xs.length; i++) {
        if (w[i] !== j[i] && !(Number.isNaN(wasm[i]!) && Number.isNaN(js[i]!))) expect.fail(`${name}(${xs[i]}): JavaScript ${js[i]}, WebAssembly ${wasm[i]}`);
      }
      // Arrays under the WebAssembly kernels' minimum (256 elements) run the JavaScript kernel.
      const small = xs.subarray(0, 200);
      expect(Array.from(op(tensor(small, { shape: [200] })).dataSync())).toEqual(Array.from(wasm.subarray(0, 200)));
    });
  }

  it("a worker's copies of the fast forms (built from their source) give this thread's bits", () => {
    const build = new Function(helpersSource())() as { H: Record<'expFast' | 'log1pFast' | 'logFast' | 'sigmoidFast', (x: number) => number> };
    const xs = inputs([], -110, 110);
    const mine = fastMathJs();
    for (const name of Object.keys(FUNCTIONS) as Name[]) {
      const fn = mine[name];
      const theirs = build.H[`${name}Fast`];
      expect(theirs).not.toBe(fn);
      for (const v of xs) {
        const [a, b] = [theirs(v), fn(v)];
        if (!Object.is(a, b) && !(Number.isNaN(a) && Number.isNaN(b))) expect.fail(`${name}(${v}): worker ${a}, here ${b}`);
      }
    }
  });

  it('jit equals eager bit for bit in fast mode, with WebAssembly on and off, on one thread and on two', () => {
    // softplus (exp and log1p in one kernel), sigmoid, a logsumexp (exp in a sum's prologue), and
    // pieces small enough for the JavaScript loops.
    const n = 1 << 18;
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = Math.sin(i) * 30;
    const x = tensor(xs, { shape: [512, 512] });
    const head = tensor(xs.subarray(0, 100), { shape: [100] });
    const program = (t: Tensor, h: Tensor) => [softplus(t), sigmoid(t), log(exp(t).sum(1)), softplus(h), log1p(exp(h.neg()))];
    const f = jit(program);
    setCpuFastMath(true);
    const eager = program(x, head).map((t) => Array.from(t.dataSync()));
    for (const wasm of [true, false]) {
      for (const threads of [1, 2]) {
        setCpuWasm(wasm);
        setCpuThreads(threads);
        try {
          expect((f(x, head) as Tensor[]).map((t) => Array.from(t.dataSync())), `WebAssembly ${wasm ? 'on' : 'off'}, ${threads} thread(s)`).toEqual(eager);
        } finally {
          setCpuWasm(true);
        }
      }
    }
  });

  // The bound above holds over every float32 input because scripts/exhaustiveMath.ts --fast checked
  // these forms' exact constants: a coefficient changed in its last float32 digit stays within the
  // bound on the sweeps but changes thousands of results unchecked. So the bits are pinned here:
  // a deliberate change to a fast form re-runs that script, then records the new bits.
  it('gives the recorded bits: a fingerprint of a 2^16-point sweep of each function, and inputs where a last-digit change of a coefficient shows', () => {
    const sweep = (lo: number, hi: number) => Float32Array.from({ length: 1 << 16 }, (_, i) => lo + ((hi - lo) * i) / ((1 << 16) - 1));
    /** FNV-1a over the results' bits. */
    const fingerprint = (y: Float32Array) => {
      let h = 0x811c9dc5;
      for (const b of new Uint32Array(y.buffer, y.byteOffset, y.length)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
      return h.toString(16);
    };
    const bitsOf = (y: Float32Array) => Array.from(new Uint32Array(y.buffer, y.byteOffset, y.length), (b) => b.toString(16));
    const sweeps = { exp: [exp, -105, 90], log1p: [log1p, -1, 4], log: [log, 0, 8], sigmoid: [sigmoid, -110, 110] } as const;
    // Input bits and the fast result's bits (at 0xbf8008f0, 0xbf800a26 and 0x014be658 the fast forms are 1 ulp from the exact result).
    const pins = [
      [exp, [0x3daf69a4, 0xc0e761a3, 0xbf8008f0, 0xbf800a26, 0xc0c007fb], ['3f8b724d', '3a3dcd47', '3ebc4d8c', '3ebc4bc4', '3b224a11']],
      [log, [0x014be658, 0x06280e7c], ['c2ac5b08', 'c29ee11b']],
    ] as const;
    setCpuFastMath(true);
    const got = Object.fromEntries(Object.entries(sweeps).map(([name, [op, lo, hi]]) => [name, fingerprint(op(tensor(sweep(lo, hi))).dataSync() as Float32Array)]));
    expect(got).toEqual({ exp: 'c88b8ea9', log: 'c2d1bea8', log1p: '7d831705', sigmoid: 'ee145a48' });
    for (const [op, xs, want] of pins) {
      expect(bitsOf(op(tensor(new Float32Array(Uint32Array.from(xs).buffer))).dataSync() as Float32Array)).toEqual(want);
    }
  });

  it('rejects what is not a boolean', () => {
    expect(() => setCpuFastMath('yes' as unknown as boolean)).toThrow(/setCpuFastMath: expected true or false, got/);
    expect(() => setCpuFastMath(undefined as unknown as boolean)).toThrow(TypeError);
    expect(cpuKernelInfo().fastMath).toBe(false);
  });
});

describe('eager kernel cache keys tell the kernels apart (JavaScript kernels, under the WebAssembly minimum)', () => {
  /** exp(x) exact, then under setCpuFastMath, then exact again: each from its own kernel. */
  function expectExpKernelsApart(x: Tensor, exact: number[], fast: number[]): void {
    // The two forms differ somewhere in the sweep, else the test could not tell them apart.
    expect(fast.some((v, i) => v !== exact[i])).toBe(true);
    const run = (on: boolean) => {
      setCpuFastMath(on);
      try {
        return Array.from(exp(x).dataSync());
      } finally {
        setCpuFastMath(false);
      }
    };
    expect(run(false), 'exact first').toEqual(exact);
    expect(run(true), 'fast after exact').toEqual(fast);
    expect(run(false), 'exact after fast').toEqual(exact);
  }

  it('a float32 cast to int32 and to bool are two kernels, whichever runs first', () => {
    const x = tensor([2.5, -3, 0, 0.25], { dtype: 'float32' });
    // Both orders: one of them runs on a cold cache in this file; each result must be its own.
    for (let round = 0; round < 2; round++) {
      const b = cast(x, 'bool');
      const i = cast(x, 'int32');
      expect(Array.from(b.dataSync()), `bool, round ${round}`).toEqual([1, 1, 0, 1]);
      expect(Array.from(i.dataSync()), `int32, round ${round}`).toEqual([2, -3, 0, 0]);
      const i2 = cast(x, 'int32');
      const b2 = cast(x, 'bool');
      expect(Array.from(i2.dataSync()), `int32 first, round ${round}`).toEqual([2, -3, 0, 0]);
      expect(Array.from(b2.dataSync()), `bool second, round ${round}`).toEqual([1, 1, 0, 1]);
    }
  });

  it('a small float32 exp under setCpuFastMath is the fast kernel and without it the exact one, whichever is built first', () => {
    // 200 elements: under the WebAssembly kernels' minimum (256), so the JavaScript kernels run.
    const xs = new Float32Array(200).map((_, i) => Math.fround(-10 + 0.1 * i + 0.013));
    const x = tensor(xs, { shape: [200] });
    const exact = Array.from(xs, (v) => Math.fround(Math.exp(v)));
    const fast = Array.from(xs, (v) => fastMathJs().exp(v));
    expectExpKernelsApart(x, exact, fast);
  });

  it('a small float32 exp of a broadcast view under setCpuFastMath is the fast kernel, and the exact one without it', () => {
    // A [50, 1] column broadcast to [50, 4] (strides [1, 0]): the strided kernel, 200 < 256 elements.
    const col = Float32Array.from({ length: 50 }, (_, i) => Math.fround(-10 + 0.4 * i + 0.013));
    const x = broadcastTo(tensor(col, { shape: [50, 1] }), [50, 4]);
    const expand = (f: (v: number) => number) => Array.from({ length: 200 }, (_, i) => f(col[Math.floor(i / 4)]!));
    const exact = expand((v) => Math.fround(Math.exp(v)));
    const fast = expand((v) => fastMathJs().exp(v));
    expectExpKernelsApart(x, exact, fast);
  });

  it('setCpuFastMath leaves a compiled float64 exp exact (the fast forms are float32 only)', () => {
    const d = [0.5, -3, 40, 1e-300, 1.2345678901234567];
    const x = tensor(d, { dtype: 'float64' });
    const f = jit((t: Tensor) => exp(t));
    setCpuFastMath(true);
    // Math.exp's double: the fast form (a float32 approximation) would be off by ~1e-8 relative.
    expect(Array.from(f(x).dataSync())).toEqual(d.map(Math.exp));
  });
});
