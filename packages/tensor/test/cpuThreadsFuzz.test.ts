// Random CPU programs on 1, 2, 3 and 5 threads (5: more than a 2-core machine has, and splits that
// do not divide the work evenly), bit for bit (NaNs as one value, docs/conventions.md): every run
// on several threads gives the bits of the same run on one thread, eagerly and under jit, values
// and gradients, float32 and float64. The programs:
// - random chains of ops with products (tests/fixtures/randomChains.ts) and the gradient of their
//   kept values: transposes, pads, concats, gathers, tiles, softmax, logsumexp, cumsum, rows and
//   columns reduced, over shapes whose rows straddle the chunks' boundaries;
// - two-operand steps (tests/fixtures/pairSteps.ts) with the gradients of both operands;
// - matrix products of odd shapes, batched (B shared or batched), with operands stored transposed
//   or computed, fused epilogues (a bias, softplus, tanh, softmax, logsumexp over rows) and a
//   cumsum, pad, gather or column sum after, with the gradients (products of transposes);
// - a training step that updates its parameters and optimiser state by assign, with both donated,
//   four steps from one start.
// Each jitted program is run twice per thread count by a function traced at that count (the second
// call reuses the held intermediates, with the first call's results back in the pool), and once per
// count by one function traced at 5 threads and then switched between counts. Live memory must
// stay flat over a program's later calls. A failure names the seed, what differs and the program.
// Products are split from 2^12 multiply-adds and elementwise kernels from 2^9 elements here (the
// defaults, 2^24 and 2^16, would make the programs too slow to fuzz), so most kernels split; the
// workers are started first and must take part, and no split kernel may be rerun on the calling
// thread (which would hide a chunk that threw on a worker).

import { afterAll, describe, expect, it } from 'vitest';
import {
  type Tensor, concat, cumsum, flip, indexSelect, logsumexp, matmul, memory, narrow, pad, permute, randn, randomKey, setCpuThreads, shutdownCpuThreads, softmax,
  softplus, sum, tanh, tidy, zeros,
} from '../src/index.js';
import { grad, jit, valueAndGrad } from '@scorch/autograd';
import { rangeRerunsForTesting, setRangeThreadMinElementsForTesting } from '../src/cpu/rangeThreads.js';
import { setWasmThreadMinWorkForTesting, wasmThreadStats } from '../src/cpu/wasm/wasmMatmul.js';
import { untilWorkerChunk } from './workerChunks.js';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';
import { pick, randomChain } from '../../../tests/fixtures/randomChains.js';
import { PAIR_STEPS, SPECIAL_PAIR_STEPS } from '../../../tests/fixtures/pairSteps.js';

const THREADS = [1, 2, 3, 5];
const MAX = Math.max(...THREADS);
const ALL_PAIR_STEPS = [...PAIR_STEPS, ...SPECIAL_PAIR_STEPS];

afterAll(() => {
  setRangeThreadMinElementsForTesting(undefined);
  setWasmThreadMinWorkForTesting(undefined);
  setCpuThreads(undefined);
  shutdownCpuThreads();
});

/** A program of two inputs, its inputs' shapes and dtype, and a description for failure messages. */
interface Case {
  f: (x: Tensor, w: Tensor) => Tensor[];
  dtype: 'float32' | 'float64';
  xShape: number[];
  wShape: number[];
  describe: () => string;
}

const dtypeOf = (seed: number) => (seed % 3 === 0 ? 'float64' : 'float32');

/** The sum of `outs` scaled by 0.01: a scalar whose gradient reaches every output. */
const total = (outs: readonly Tensor[], dtype: Tensor['dtype']) => outs.reduce((acc, t) => acc.add(sum(t.mul(0.01))), zeros([], { dtype }));

/** A random chain (products included) and the gradient of its kept values. */
function chainCase(seed: number): Case {
  const r = mulberry32(seed);
  const xShape = pick(r, [[130, 67], [67, 130], [12, 33, 21], [5, 9, 11, 13], [4099], [97, 101], [3, 257, 9]]);
  const log: string[] = [];
  const chain = randomChain(Array.from({ length: 48 }, () => r()), { length: 8, maxSize: 400_000, log });
  return {
    f: (x) => [...chain(x), grad((z: Tensor) => total(chain(z), z.dtype))(x) as Tensor],
    dtype: dtypeOf(seed), xShape, wShape: [1],
    describe: () => `a chain from [${xShape}]:\n  ${log.join('\n  ')}`,
  };
}

/** Six two-operand steps and the gradients of both operands. */
function pairCase(seed: number): Case {
  const r = mulberry32(seed);
  const xShape = pick(r, [[130, 67], [256, 40], [21, 513], [1031, 3]]);
  const wShape = pick(r, [xShape, [1, xShape[1]!], [xShape[0]!, 1], [xShape[1]!], []]);
  const scale = pick(r, [1, 3, 30]);
  const steps = Array.from({ length: 6 }, () => pick(r, ALL_PAIR_STEPS));
  const g = (x: Tensor, w: Tensor) => {
    let v = x.mul(scale);
    return steps.map((step) => (v = step(v, w)));
  };
  return {
    f: (x, w) => [...g(x, w), ...(grad((a: Tensor, b: Tensor) => total(g(a, b), a.dtype), { argnums: [0, 1] })(x, w) as Tensor[])],
    dtype: dtypeOf(seed), xShape, wShape,
    describe: () => `steps from x [${xShape}], w [${wShape}], x scaled by ${scale}:\n  ${steps.map((s) => s.toString().replace(/\s+/g, ' ')).join('\n  ')}`,
  };
}

/** The last two axes of `t` swapped. */
const swapLast = (t: Tensor) => permute(t, [...t.shape.keys()].map((i) => (i < t.rank - 2 ? i : 2 * t.rank - 3 - i)));

/** A product a·b of odd shapes, an epilogue, a movement or scan after, and the gradients. */
function productCase(seed: number): Case {
  const r = mulberry32(seed);
  const [m, k, n] = [pick(r, [1, 5, 37, 130, 257]), pick(r, [1, 3, 64, 129, 257, 600]), pick(r, [1, 6, 33, 96, 130])];
  const batch = pick(r, [[], [], [3], [2, 3]]);
  const bBatched = batch.length > 0 && r() < 0.5;
  const [aT, bT, aComputed] = [r() < 0.4, r() < 0.4, r() < 0.3];
  const epilogue = Math.floor(r() * 6);
  const after = Math.floor(r() * 6);
  const xShape = aT ? [...batch, k, m] : [...batch, m, k];
  const wShape = [...(bBatched ? batch : []), ...(bT ? [n, k] : [k, n])];
  const g = (x: Tensor, w: Tensor): Tensor[] => {
    let a = aT ? swapLast(x) : x;
    if (aComputed) a = tanh(a);
    let y = matmul(a, bT ? swapLast(w) : w);
    // A bias of n values computed from w (so it has a gradient too).
    const flat = w.reshape([w.size]).exp().mul(0.1);
    const bias = narrow(concat(Array.from({ length: Math.ceil(n / w.size) }, () => flat), 0), 0, 0, n);
    if (epilogue === 1) y = softplus(y.add(bias));
    else if (epilogue === 2) y = tanh(y).mul(y);
    else if (epilogue === 3) y = y.mul(0.5).add(bias).exp().mul(0.01);
    else if (epilogue === 4) y = softmax(y, -1);
    else if (epilogue === 5) y = y.sub(logsumexp(y, -2, true));
    if (after === 1) return [y, cumsum(y, -1)];
    if (after === 2) return [y, cumsum(y, -2).mul(y)];
    if (after === 3) return [y, pad(y, y.shape.map(() => [1, 2] as [number, number])).exp()];
    if (after === 4) return [y, indexSelect(y, y.rank - 2, Array.from({ length: m + 2 }, (_, i) => (i * 7) % m)).mul(2)];
    if (after === 5) return [y, sum(y, 0, true).add(y)];
    return [y];
  };
  return {
    f: (x, w) => [...g(x, w), ...(grad((a: Tensor, b: Tensor) => total(g(a, b), a.dtype), { argnums: [0, 1] })(x, w) as Tensor[])],
    dtype: dtypeOf(seed), xShape, wShape,
    describe: () =>
      `batch [${batch}] (B ${bBatched ? 'batched' : 'shared'}) ${m}×${k}·${k}×${n}, A ${aT ? 'stored transposed' : 'row-major'}${aComputed ? ' under tanh' : ''}, ` +
      `B ${bT ? 'stored transposed' : 'row-major'}, epilogue ${['none', 'softplus of a bias', 'tanh·y', 'exp of a bias', 'softmax over columns', 'logsumexp over rows'][epilogue]}, ` +
      `then ${['nothing', 'cumsum along columns', 'cumsum along rows', 'a pad', 'a gather of rows', 'a sum over the batch'][after]}`,
  };
}

/** The bytes of `t`'s values, every NaN written as the canonical one (canonicalNaNBits, as a byte array). */
function bitsOf(t: Tensor): Uint8Array {
  // dataSync gives a fresh copy: its NaNs rewritten in place (a loop, not map's call per element).
  const values = t.dataSync() as Float32Array;
  for (let i = 0; i < values.length; i++) if (Number.isNaN(values[i])) values[i] = Number.NaN;
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Every output's bytes (NaNs as one value). */
const bitsOfAll = (outs: readonly Tensor[]) => outs.map(bitsOf);

/** The first output that differs from `want`, and its first differing element, or null. */
function firstDifference(got: readonly Uint8Array[], want: readonly Uint8Array[]): string | null {
  if (got.length !== want.length) return `${got.length} outputs, not ${want.length}`;
  for (let o = 0; o < got.length; o++) {
    const [g, e] = [got[o]!, want[o]!];
    if (g.length !== e.length) return `output ${o} of ${got.length}: ${g.length} bytes, not ${e.length}`;
    // Equal bytes compared at once (memcmp); the loop below finds the first difference.
    if (Buffer.from(g.buffer, g.byteOffset, g.byteLength).equals(Buffer.from(e.buffer, e.byteOffset, e.byteLength))) continue;
    for (let i = 0; i < g.length; i++) if (g[i] !== e[i]) return `output ${o} of ${got.length}, byte ${i} (of ${g.length})`;
  }
  return null;
}

/**
 * Runs `c` eagerly and jitted on every count of THREADS and by one jitted function switching
 * between them; returns what differs from one thread's bits (eager from eager, jit from jit and
 * from eager), and any growth of live memory over a jitted program's second call.
 */
function checkCase(label: string, c: Case): string[] {
  const problems: string[] = [];
  setCpuThreads(MAX);
  // On shared arrays (made while threads are on), as the results of a threaded program are.
  const x = randn(c.xShape, { key: randomKey(1), dtype: c.dtype });
  const w = randn(c.wShape, { key: randomKey(2), dtype: c.dtype });
  const call = (f: (x: Tensor, w: Tensor) => Tensor[]) => {
    const outs = f(x, w);
    const bits = bitsOfAll(outs);
    for (const t of outs) t.dispose();
    return bits;
  };
  const expectSame = (what: string, got: Uint8Array[], want: Uint8Array[]) => {
    const d = firstDifference(got, want);
    if (d) problems.push(`${label}, ${what}: ${d}`);
  };
  let eager1: Uint8Array[] = [];
  let jit1: Uint8Array[] = [];
  for (const threads of THREADS) {
    setCpuThreads(threads);
    const eager = tidy(() => bitsOfAll(c.f(x, w)));
    const jf = jit(c.f);
    const first = call(jf);
    const before = memory();
    const second = call(jf);
    const after = memory();
    if (after.bytes !== before.bytes || after.tensors !== before.tensors) problems.push(`${label}: live memory ${JSON.stringify(before)} → ${JSON.stringify(after)} over a call on ${threads} threads`);
    jf.clearCache();
    if (threads === 1) [eager1, jit1] = [eager, first];
    expectSame(`eager on ${threads} threads against 1`, eager, eager1);
    expectSame(`jit on ${threads} threads against 1`, first, jit1);
    expectSame(`jit on ${threads} threads, second call, against 1`, second, jit1);
    expectSame(`jit against eager on ${threads} threads`, first, eager);
  }
  // One jitted function traced at 5 threads (its intermediates on shared arrays), then switched.
  const js = jit(c.f);
  for (const threads of [MAX, 1, 3, 2, MAX]) {
    setCpuThreads(threads);
    expectSame(`one jitted function switched to ${threads} threads`, call(js), jit1);
  }
  js.clearCache();
  x.dispose();
  w.dispose();
  return problems.length ? [`${problems.join('\n')}\nprogram: ${c.describe()}`] : [];
}

type Params = { w1: Tensor; b1: Tensor; w2: Tensor };

/**
 * Four steps of a small MLP's training (a product, softplus, a product; then a softmax and cumsum,
 * or a concat of a flip and a pad, or nothing) whose parameters and RMSProp state are updated by
 * assign and donated, from one start: the losses' and final state's bits, on the counts given
 * per step, eagerly (under tidy) or by one jitted function. Also whether live memory grew after
 * the second step.
 */
function trainingSteps(seed: number, counts: readonly number[], jitted: boolean): { bits: Uint8Array[]; memoryGrew: boolean } {
  const r = mulberry32(seed);
  const dtype = dtypeOf(seed);
  const [rows, hidden, dim, variant] = [Math.floor(50 + r() * 300), Math.floor(3 + r() * 90), Math.floor(2 + r() * 9), seed % 3];
  const step = (p: Params, s: Params, x: Tensor) => {
    const [loss, grads] = valueAndGrad((w1: Tensor, b1: Tensor, w2: Tensor) => {
      let y = matmul(softplus(matmul(x, w1).add(b1)), w2);
      if (variant === 1) y = softmax(y, -1).add(cumsum(y, 0).mul(0.01));
      if (variant === 2) y = concat([y, flip(y, [0])], 1).add(pad(y, [[0, 0], [0, dim]]));
      return y.square().mean();
    }, { argnums: [0, 1, 2] })(p.w1, p.b1, p.w2) as [Tensor, Tensor[]];
    (['w1', 'b1', 'w2'] as const).forEach((name, i) => {
      s[name].assign(s[name].mul(0.9).add(grads[i]!.square().mul(0.1)));
      p[name].assign(p[name].sub(grads[i]!.mul(0.05).div(s[name].sqrt().add(1e-3))));
    });
    return loss;
  };
  setCpuThreads(MAX);
  const x = randn([rows, dim], { key: randomKey(seed), dtype });
  const init = (shape: number[], i: number) => randn(shape, { key: randomKey(seed * 10 + i), dtype }).mul(0.3);
  const { p, s } = tidy(() => ({
    p: { w1: init([dim, hidden], 1), b1: init([hidden], 2), w2: init([hidden, dim], 3) },
    s: { w1: init([dim, hidden], 4).abs(), b1: init([hidden], 5).abs(), w2: init([hidden, dim], 6).abs() },
  }));
  const run = jitted ? jit(step, { donate: [0, 1] }) : (a: Params, b: Params, c: Tensor) => tidy(() => step(a, b, c));
  const bits: Uint8Array[] = [];
  let memoryGrew = false;
  let held = 0;
  counts.forEach((threads, i) => {
    setCpuThreads(threads);
    const loss = run(p, s, x);
    bits.push(bitsOf(loss));
    loss.dispose();
    if (i === 1) held = memory().bytes;
    if (i > 1 && memory().bytes !== held) memoryGrew = true;
  });
  const state = [...Object.values(p), ...Object.values(s)];
  bits.push(...bitsOfAll(state));
  if (jitted) (run as ReturnType<typeof jit>).clearCache();
  for (const t of [...state, x]) t.dispose();
  return { bits, memoryGrew };
}

describe('CPU threads: random programs give one thread\'s bits on 2, 3 and 5', () => {
  // Workers start asynchronously: start the pool (5 participants; fewer threads use part of it)
  // and wait until a worker has computed a chunk, so that the programs below really split.
  const started = () => {
    setRangeThreadMinElementsForTesting(1 << 9);
    setWasmThreadMinWorkForTesting(1 << 12);
    setCpuThreads(MAX);
    const a = randn([64, 64], { key: randomKey(3) });
    const { chunks } = untilWorkerChunk(() => matmul(a, a).dispose());
    a.dispose();
    expect(chunks, 'a worker computed a chunk of a product').toBeGreaterThan(0);
  };

  /** Runs the cases of `seeds`, expecting no difference, chunks computed by workers, and no chunk rerun. */
  const fuzz = (seeds: readonly number[], make: (seed: number) => Case, name: string) => {
    started();
    const reruns = rangeRerunsForTesting();
    const chunks = wasmThreadStats().workerChunks;
    const failures: string[] = [];
    for (const seed of seeds) failures.push(...checkCase(`${name} seed ${seed}`, make(seed)));
    expect(failures.join('\n\n')).toBe('');
    expect(wasmThreadStats().workerChunks - chunks, 'chunks computed by workers').toBeGreaterThan(0);
    // A chunk that threw on a worker would be rerun here, hiding it.
    expect(rangeRerunsForTesting() - reruns, 'split kernels rerun on the calling thread').toBe(0);
  };

  it('random chains with products, and their gradients: 16 seeds', () => {
    fuzz(Array.from({ length: 16 }, (_, i) => 101 + i), chainCase, 'chain');
  });

  it('two operands that broadcast, and the gradients of both: 12 seeds', () => {
    fuzz(Array.from({ length: 12 }, (_, i) => 201 + i), pairCase, 'pair');
  });

  it('products of odd shapes, batched, transposed, with epilogues, and their gradients: 20 seeds', () => {
    fuzz(Array.from({ length: 20 }, (_, i) => 301 + i), productCase, 'product');
  });

  it('training steps updating donated parameters by assign: 6 seeds, eager and jitted, counts fixed and switched', () => {
    started();
    const failures: string[] = [];
    for (let seed = 401; seed <= 406; seed++) {
      const want = trainingSteps(seed, [1, 1, 1, 1], false).bits;
      const runs: [string, number[], boolean][] = [
        ['eager on 3 threads', [3, 3, 3, 3], false], ['jit on 1 thread', [1, 1, 1, 1], true], ['jit on 2 threads', [2, 2, 2, 2], true],
        ['jit on 5 threads', [5, 5, 5, 5], true], ['jit switched 3, 1, 5, 2', [3, 1, 5, 2], true],
      ];
      for (const [what, counts, jitted] of runs) {
        const { bits, memoryGrew } = trainingSteps(seed, counts, jitted);
        const d = firstDifference(bits, want);
        if (d) failures.push(`training seed ${seed}, ${what} against eager on 1 thread: ${d} (outputs: 4 losses, then w1, b1, w2 and their state)`);
        if (memoryGrew) failures.push(`training seed ${seed}, ${what}: live memory grew after the second step`);
      }
    }
    expect(failures.join('\n')).toBe('');
  });
});
