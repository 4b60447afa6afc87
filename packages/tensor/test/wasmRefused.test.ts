// Where WebAssembly SIMD exists but the engine refuses to compile a module, the CPU backend runs
// its TypeScript and JavaScript kernels, with the same values and no error. Two refusals are
// made here: every module (a CompileError, as where WebAssembly compilation is turned off), and
// Chrome's limit on synchronous compilation on a page's main thread, 4 KB in older versions (a
// RangeError; smaller modules, such as most elementwise kernels, still compile). (A page's
// Content-Security-Policy cannot refuse WebAssembly alone to the CPU backend: 'unsafe-eval',
// which its generated JavaScript needs, allows WebAssembly too.) Each is made by replacing
// WebAssembly.Module before the first kernel is built, in a fresh module graph (vi.resetModules:
// the matmul, random and elementwise modules are each built once, on first use, and kept), then
// the eager ops, a compiled program and its gradient are checked against references computed
// here, on one thread and on two.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { U32, gamma, referenceProduct } from './matmulReference.js';

const RealModule = WebAssembly.Module;

interface Refusal {
  name: string;
  /** The error the engine throws for these bytes, or null where it compiles them. */
  refuse: (bytes: BufferSource) => Error | null;
  /** Whether every module is refused (then no elementwise kernel may run in WebAssembly). */
  all: boolean;
}

const REFUSALS: Refusal[] = [
  {
    name: 'WebAssembly compilation turned off (every module refused)',
    refuse: () => new WebAssembly.CompileError('WebAssembly.Module(): Wasm code generation disallowed by embedder'),
    all: true,
  },
  {
    name: "Chrome's 4 KB limit on a page's main thread (modules over 4 KB refused)",
    refuse: (bytes) => (bytes.byteLength > 4096 ? new RangeError('WebAssembly.Module(): Sync compile is disallowed on the main thread, if the buffer size is larger than 4KB. Use WebAssembly.compile') : null),
    all: false,
  },
];

/** Replaces WebAssembly.Module by one that refuses as `refuse` says; returns how many it refused. */
function installRefusal(refuse: Refusal['refuse']): { refused: () => number } {
  let refused = 0;
  const Refusing = function (bytes: BufferSource) {
    const error = refuse(bytes);
    if (error) {
      refused++;
      throw error;
    }
    return new RealModule(bytes);
  } as unknown as typeof WebAssembly.Module;
  Object.assign(Refusing, { prototype: RealModule.prototype, exports: RealModule.exports, imports: RealModule.imports, customSections: RealModule.customSections });
  WebAssembly.Module = Refusing;
  return { refused: () => refused };
}

afterEach(() => {
  WebAssembly.Module = RealModule;
  // The next import (the check after the file that Node refused nothing else,
  // tests/setup/noWasmRefusals.ts) gets a fresh module graph, not the one these refusals were
  // counted in.
  vi.resetModules();
});

/** Float32 inputs: signed zeros, infinities, NaN, values beyond exp's range, and an even sweep of [−20, 20] (an odd count: a tail). */
function inputs(): Float32Array {
  const out = [0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-45, -104, -88, 88.7, 89, 3.4e38, -3.4e38];
  const n = 4099;
  for (let i = 0; i < n; i++) out.push(-20 + (40 * i) / (n - 1));
  return new Float32Array(out);
}

/** softplus as the ops compose it: max(x, 0) + log1p(exp(−|x|)), each step rounded to float32. */
function softplusReference(x: number): number {
  const e = Math.fround(Math.exp(-Math.abs(x)));
  return Math.fround((x >= 0 ? x : 0) + Math.fround(Math.log1p(e)));
}

/** An integer matrix (entries in [−8, 8]) that any order of summation multiplies exactly in float32. */
function integers(rows: number, cols: number, seed: number): number[][] {
  return Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => ((i * 7 + j * 13 + seed * 5) % 17) - 8));
}

/** a·b in float64 (exact for `integers`), flat. */
function product(a: number[][], b: number[][]): number[] {
  return Array.from(referenceProduct(new Float64Array(a.flat()), 0, new Float64Array(b.flat()), 0, a.length, b[0]!.length, b.length).value);
}

describe.each(REFUSALS)('the CPU backend where WebAssembly is refused: $name', ({ refuse, all }) => {
  it('runs matmul, elementwise ops, draws and a compiled program and its gradient in TypeScript, with the same values', async () => {
    const refusal = installRefusal(refuse);
    vi.resetModules();
    const T = await import('../src/index.js');
    const { jit, grad } = await import('@scorch/autograd');
    const { fillRandom } = await import('../src/random.js');
    const { wasmSimdSupported } = await import('../src/cpu/wasm/features.js');
    const { elementwiseKernelCalls } = await import('../src/cpu/wasm/elementwiseModule.js');
    expect(wasmSimdSupported()).toBe(true); // SIMD validates; only compilation is refused

    for (const threads of [1, 2]) {
      T.setCpuThreads(threads);
      try {
        // Products, the tiled and the narrow ones, batched too: integer entries, so every order of
        // summation gives the exact product.
        for (const [m, k, n] of [[37, 19, 23], [128, 128, 128], [3, 300, 2]] as const) {
          const a = integers(m, k, 1), b = integers(k, n, 2);
          T.tidy(() => expect(Array.from(T.matmul(T.tensor(a), T.tensor(b)).dataSync())).toEqual(product(a, b)));
        }
        const batchA = [integers(5, 7, 3), integers(5, 7, 4)], batchB = [integers(7, 4, 5), integers(7, 4, 6)];
        T.tidy(() => expect(Array.from(T.matmul(T.tensor(batchA), T.tensor(batchB)).dataSync())).toEqual(batchA.flatMap((a, i) => product(a, batchB[i]!))));
        expect(T.cpuKernelInfo().matmul).toBe('typescript');

        // Elementwise ops, eager: the float32 rounding of Math's double results, bit for bit.
        const x = inputs();
        const eager = T.tidy(() => {
          const t = T.tensor(x);
          return { exp: T.exp(t).dataSync(), log1p: T.log1p(T.abs(t)).dataSync(), softplus: T.softplus(t).dataSync() };
        });
        expect(Array.from(eager.exp)).toEqual(Array.from(x, (v) => Math.fround(Math.exp(v))));
        expect(Array.from(eager.log1p)).toEqual(Array.from(x, (v) => Math.fround(Math.log1p(Math.abs(v)))));
        expect(Array.from(eager.softplus)).toEqual(Array.from(x, softplusReference));

        // Normal draws: fillRandom's values (the reference every backend's stream follows).
        const key = T.randomKey(11);
        const drawn = T.tidy(() => T.randn([1000, 7], { key }).dataSync());
        const expected = new Float32Array(7000);
        fillRandom(expected, key, 'normal');
        expect(Array.from(drawn)).toEqual(Array.from(expected));

        // A compiled program (a product with a softplus epilogue) large enough to split across
        // threads, and its gradient: the values as above, the gradient within its bound.
        const rows = 600, depth = 9, cols = 130;
        const xs = integers(rows, depth, 7), ws = integers(depth, cols, 8);
        const s = product(xs, ws);
        const layer = jit((xt: InstanceType<typeof T.Tensor>, wt: InstanceType<typeof T.Tensor>) => T.softplus(T.matmul(xt, wt)));
        T.tidy(() => {
          const out = Array.from(layer(T.tensor(xs), T.tensor(ws)).dataSync());
          expect(out).toEqual(s.map(softplusReference));
        });
        // d/dw Σ softplus(x·w) = xᵀ·σ(x·w), σ as the program forms it from e = e^−|s|: at most 6
        // float32 roundings (exp, 1 + e, its reciprocal, two products, and 1 − e/(1 + e) for s ≥ 0,
        // which does not enlarge the relative error: e/(1 + e) ≤ 1/2 ≤ the result), then one in the
        // product x·σ, and a sum of `rows` terms at most rows − 1 relative to Σ|terms|: within
        // γ_{rows+6}(2^−24)·Σ|x·σ| (Higham §3.1, as matmulReference.ts's bounds).
        const gradient = jit(grad((wt: InstanceType<typeof T.Tensor>, xt: InstanceType<typeof T.Tensor>) => T.sum(T.softplus(T.matmul(xt, wt)))));
        const got = T.tidy(() => gradient(T.tensor(ws), T.tensor(xs)).dataSync());
        const xT = new Float64Array(depth * rows);
        xs.forEach((row, r) => row.forEach((v, i) => (xT[i * rows + r] = v)));
        const sigma = new Float64Array(s.map((v) => 1 / (1 + Math.exp(-v))));
        const want = referenceProduct(xT, 0, sigma, 0, depth, cols, rows);
        for (let e = 0; e < depth * cols; e++) {
          const bound = gamma(rows + 6, U32) * want.absSum[e]!;
          if (!(Math.abs(got[e]! - want.value[e]!) <= bound)) expect.fail(`gradient [${Math.floor(e / cols)}, ${e % cols}] on ${threads} thread(s): ${got[e]} against ${want.value[e]}, beyond ${bound}`);
        }
      } finally {
        T.setCpuThreads(undefined);
      }
    }

    expect(refusal.refused()).toBeGreaterThan(0); // the refusal was met, not bypassed
    // cpuKernelInfo reports each refusal, with the engine's message.
    const info = T.cpuKernelInfo();
    expect(info.wasmRefusals).toBe(refusal.refused());
    expect(info.lastWasmRefusal).toMatch(all ? /CompileError: .*disallowed by embedder/ : /RangeError: .*larger than 4KB/);
    // Every module refused: no kernel ran in WebAssembly. Only large ones: the small elementwise
    // kernels did (the mixed case, each group on whichever path it got).
    if (all) expect(elementwiseKernelCalls()).toBe(0);
    else expect(elementwiseKernelCalls()).toBeGreaterThan(0);
    T.shutdownCpuThreads();
  });
});
