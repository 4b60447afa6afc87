// Random compiled CPU programs against the same programs run op by op (interpretProgram), bit for
// bit (NaNs as one value, docs/conventions.md), through expectCompiledMatches. The programs are
// random chains of ops (tests/fixtures/randomChains.ts) over inputs of rank 1 to 4 (at least 256
// elements, so that the WebAssembly kernels and the CPU's store rules, concatStoreMin and
// movementStoreMin, take part), a third of them float64:
// - the chain's kept values, each program run twice (the second call reuses the held
//   intermediates), every fourth also with WebAssembly off (the reference too: it picks the
//   matmul routine, which accumulates differently);
// - the same with the gradient of the chain: the backward pass brings pads, scatter-adds and
//   sums of broadcasts;
// - a Hessian-vector product (forward over reverse), a JVP, and vmap of a chain and of its
//   gradient over a batch of 4;
// - a second operand that broadcasts against the input (full, a row, a column, a vector, a
//   scalar) through selects, extrema, casts to int32 and bool and back, argmax, clamp, erf, GELU,
//   powers, rounding, sign, softmax and layer norm, sines, expm1 and log1p, softplus, overflowing
//   exps, logsumexp, cumsum and variance, on one thread and, with the split threshold lowered, on
//   two;
// - small convolutional networks (1 to 3 convolutions, stride 1 or 2, SiLU between some), their
//   output or their gradients in the weights and the input: the products that pack their B from
//   the padded image (gatheredProduct in compile.ts) in a good share of them.
//
// The same chains and two-operand steps, run op by op with WebAssembly on and off, also give the
// same bits, gradients included (products aside: the two matmuls accumulate in different types).
//
// They found two bugs, each also pinned by a test of its own in cpuCompile.test.ts: a reduction's
// compound linear index (out · extent + r) divided and reduced modulo without parentheses when
// its input was a reshape of a transpose or of a computed value; and a float cast to int32 and
// back in one kernel keeping −0 for values in (−1, −0] (Math.trunc), where a stored int32 is 0.

import { afterAll, describe, expect, it } from 'vitest';
import { type CpuBackend, type Tensor, conv2d, getBackend, randn, randomKey, setCpuThreads, setCpuWasm, silu, sum, tidy, zeros } from '../src/index.js';
import { gatheredProductsMade } from '../src/cpu/wasm/wasmMatmul.js';
import { setRangeThreadMinElementsForTesting } from '../src/cpu/rangeThreads.js';
import { grad, hvp, jvp, vmap } from '@scorch/autograd';
import { expectCompiledMatches } from './programReference.js';
import { canonicalNaNBits } from './reference.js';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';
import { pick, randomChain } from '../../../tests/fixtures/randomChains.js';
import { PAIR_STEPS, SPECIAL_PAIR_STEPS } from '../../../tests/fixtures/pairSteps.js';

const ALL_PAIR_STEPS = [...PAIR_STEPS, ...SPECIAL_PAIR_STEPS];

const cpu = getBackend('cpu') as CpuBackend;
const SHAPES = [[20, 33], [33, 20], [6, 7, 9], [4, 5, 6, 3], [300], [16, 17]];

/** Seed's input and chain (float64 for every third seed). */
function seeded(seed: number, length: number, batch: readonly number[] = []): { x: Tensor; chain: (x: Tensor) => Tensor[]; r: () => number } {
  const r = mulberry32(seed);
  const dtype = seed % 3 === 0 ? 'float64' : 'float32';
  const x = randn([...batch, ...pick(r, SHAPES)], { key: randomKey(seed), dtype });
  return { x, chain: randomChain(Array.from({ length: 48 }, () => r()), { length, maxSize: 60_000 }), r };
}

/** The kept values of seed's chain; every fourth seed also with WebAssembly off (reference and compiled alike). */
function checkChain(seed: number): void {
  const { x, chain } = seeded(seed, 8);
  for (const wasm of seed % 4 === 0 ? [true, false] : [true]) {
    setCpuWasm(wasm);
    try {
      expectCompiledMatches(cpu, ([x0]) => chain(x0!), [x], { bits: canonicalNaNBits, label: `seed ${seed}, WebAssembly ${wasm ? 'on' : 'off'}, ` });
    } finally {
      setCpuWasm(true);
    }
  }
  x.dispose();
}

/** Seed's chain and the gradient of its kept values' sum. */
function checkWithGradient(seed: number): void {
  const { x, chain } = seeded(seed, 6);
  const total = (z: Tensor) => chain(z).reduce((acc, t) => acc.add(sum(t.mul(0.01))), zeros([], { dtype: z.dtype }));
  expectCompiledMatches(cpu, ([x0]) => [...chain(x0!), grad(total)(x0!) as Tensor], [x], { bits: canonicalNaNBits, calls: 1, label: `seed ${seed}, ` });
  x.dispose();
}

/** Seed's chain (its last value) under `mode`. */
function checkTransformed(seed: number, mode: 'hvp' | 'jvp' | 'vmap'): void {
  const { x, chain } = seeded(seed, 5, mode === 'vmap' ? [4] : []);
  const last = (z: Tensor) => chain(z).at(-1)!;
  const total = (z: Tensor) => sum(last(z).mul(0.01));
  const t = randn(x.shape, { key: randomKey(seed + 1), dtype: x.dtype });
  const program = ([x0, t0]: readonly Tensor[]): Tensor[] => {
    if (mode === 'hvp') return [hvp(total, [x0!], [t0!]) as Tensor];
    if (mode === 'jvp') return jvp(last, [x0!], [t0!]);
    return [vmap(last)(x0!), vmap((z: Tensor) => grad(total)(z) as Tensor)(x0!)];
  };
  expectCompiledMatches(cpu, program, [x, t], { bits: canonicalNaNBits, calls: 1, label: `${mode}, seed ${seed}, ` });
  for (const q of [x, t]) q.dispose();
}


/** Six ALL_PAIR_STEPS from a [rows, cols] input and a second operand broadcasting against it. */
function checkPair(seed: number): void {
  const r = mulberry32(seed);
  const shape = pick(r, [[40, 32], [64, 24], [12, 130], [256, 4]]);
  const x = randn(shape, { key: randomKey(seed) });
  const w = randn(pick(r, [shape, [1, shape[1]!], [shape[0]!, 1], [shape[1]!], []]), { key: randomKey(seed + 7) });
  const steps = Array.from({ length: 6 }, () => pick(r, ALL_PAIR_STEPS));
  const keep = steps.map(() => r() < 0.4);
  const program = ([x0, w0]: readonly Tensor[]): Tensor[] => {
    const outputs: Tensor[] = [];
    let v = x0!;
    steps.forEach((step, k) => {
      v = step(v, w0!);
      if (keep[k]) outputs.push(v);
    });
    return [...outputs, v];
  };
  expectCompiledMatches(cpu, program, [x, w], { bits: canonicalNaNBits, label: `seed ${seed}, ` });
  for (const t of [x, w]) t.dispose();
}

/** Seed's values and gradient, run op by op with WebAssembly on and then off: the same bits. */
function checkWasmAgainstJs(label: string, f: (x: Tensor) => Tensor[], x: Tensor): void {
  const total = (z: Tensor) => f(z).reduce((acc, t) => acc.add(sum(t.mul(0.01))), zeros([], { dtype: z.dtype }));
  // dataSync gives a fresh copy: no list of numbers made from it.
  const run = () => tidy(() => [...f(x), grad(total)(x) as Tensor].map((t) => t.dataSync()));
  const wasm = run();
  setCpuWasm(false);
  try {
    const js = run();
    wasm.forEach((a, o) => {
      const k = a.findIndex((v, i) => !Object.is(v, js[o]![i]) && !(Number.isNaN(v) && Number.isNaN(js[o]![i])));
      expect(k, `${label}, output ${o} of ${wasm.length}, element ${k}: ${a[k]} in WebAssembly, ${js[o]![k]} in JavaScript`).toBe(-1);
    });
  } finally {
    setCpuWasm(true);
  }
}

afterAll(() => {
  setCpuThreads(undefined);
  setRangeThreadMinElementsForTesting(undefined);
});

// The WebAssembly kernels give the JavaScript kernels' bits (docs/jit.md, "On the CPU"); products
// are left out, since the WebAssembly matmul accumulates float32 in float32 and the TypeScript one
// in doubles. Shapes include runs that end in partial vectors and rows longer than a pass.
describe('eager CPU kernels in WebAssembly equal the JavaScript kernels bit for bit', () => {
  it('random chains and their gradients, float32: 1,000 seeds', () => {
    for (let seed = 1; seed <= 1000; seed++) {
      const r = mulberry32(seed);
      const x = randn(pick(r, [[20, 33], [6, 7, 9], [4, 5, 6, 3], [300], [64, 130], [1030]]), { key: randomKey(seed) });
      checkWasmAgainstJs(`chain seed ${seed}`, randomChain(Array.from({ length: 48 }, () => r()), { length: 7, maxSize: 60_000, products: false }), x);
      x.dispose();
    }
  });

  it('two operands that broadcast, casts, selects, transcendentals and norms, and their gradients: 1,000 seeds', () => {
    for (let seed = 1; seed <= 1000; seed++) {
      const r = mulberry32(seed);
      const shape = pick(r, [[40, 32], [64, 24], [12, 130], [256, 4], [3, 1031]]);
      const x = randn(shape, { key: randomKey(seed) });
      const w = randn(pick(r, [shape, [1, shape[1]!], [shape[0]!, 1], [shape[1]!], []]), { key: randomKey(seed + 7) });
      const scale = pick(r, [1, 3, 30]);
      const steps = Array.from({ length: 6 }, () => pick(r, ALL_PAIR_STEPS));
      const f = (x0: Tensor) => {
        let v = x0.mul(scale);
        return steps.map((step) => (v = step(v, w)));
      };
      checkWasmAgainstJs(`pair seed ${seed}`, f, x);
      for (const t of [x, w]) t.dispose();
    }
  });
});

describe('random compiled CPU programs equal their op-by-op runs bit for bit', () => {
  it('random chains: 400 seeds', () => {
    for (let seed = 1; seed <= 400; seed++) checkChain(seed);
  });

  it('random chains with their gradient: 300 seeds', () => {
    for (let seed = 1000; seed < 1300; seed++) checkWithGradient(seed);
  });

  it('Hessian-vector products, JVPs and vmap of random chains and their gradients: 150 seeds each', () => {
    for (const mode of ['hvp', 'jvp', 'vmap'] as const) for (let seed = 1; seed <= 150; seed++) checkTransformed(seed, mode);
  });

  it('convolutional networks and their gradients: 60 seeds, on one thread and on two, about half packing from the padded image', () => {
    let gathered = 0;
    try {
    for (let seed = 1; seed <= 60; seed++) {
      const r = mulberry32(seed);
      const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
      setCpuThreads(int(1, 2));
      const dtype = r() < 0.7 ? 'float32' : 'float64';
      const c = pick(r, [8, 16, int(1, 6)]);
      const layers = Array.from({ length: int(1, 3) }, () => ({ o: pick(r, [8, 16, int(5, 12)]), k: r() < 0.8 ? 3 : int(1, 2), stride: r() < 0.3 ? 2 : 1, act: r() < 0.5 }));
      const x = randn([int(1, 3), c, int(4, 12), pick(r, [8, 16, 24, 32, int(4, 20)])], { key: randomKey(seed), dtype });
      let channels = c;
      const ws = layers.map((l, i) => {
        const w = randn([l.o, channels, l.k, l.k], { key: randomKey(seed * 10 + i), dtype });
        channels = l.o;
        return w;
      });
      const net = (v: Tensor, weights: readonly Tensor[]) => layers.reduce((y, l, i) => {
        const z = conv2d(y, weights[i]!, { padding: Math.floor(l.k / 2), stride: l.stride });
        return l.act ? silu(z) : z;
      }, v);
      const mode = int(0, 2);
      const argnums = mode === 1 ? ws.map((_, i) => i + 1) : [0, ...ws.map((_, i) => i + 1)];
      const f = ([v, ...weights]: readonly Tensor[]): Tensor[] => (mode === 0
        ? [net(v!, weights)]
        : grad((...a: Tensor[]) => sum(net(a[0]!, a.slice(1)).mul(net(a[0]!, a.slice(1)))), { argnums })(v!, ...weights) as Tensor[]);
      const before = gatheredProductsMade();
      expectCompiledMatches(cpu, f, [x, ...ws], { bits: canonicalNaNBits, label: `conv seed ${seed}` });
      if (gatheredProductsMade() > before) gathered++;
      for (const t of [x, ...ws]) t.dispose();
    }
    } finally {
      setCpuThreads(undefined);
    }
    expect(gathered).toBeGreaterThan(20);
  });

  it('two operands that broadcast, casts, selects and norms: 300 seeds on one thread, 200 on two', () => {
    setCpuThreads(1);
    for (let seed = 1; seed <= 300; seed++) checkPair(seed);
    // Kernels of 512 elements and more split across the workers.
    setCpuThreads(2);
    setRangeThreadMinElementsForTesting(1 << 9);
    for (let seed = 600; seed < 800; seed++) checkPair(seed);
  });
});
