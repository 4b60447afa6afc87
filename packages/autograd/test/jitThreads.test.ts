// A training step under jit on the CPU with its large elementwise kernels split across worker
// threads: an MLP 2 → 128 → 128 → 2 (softplus), batch 1024 (so the hidden activations and their
// gradients, [1024,128] = 2^17 elements, are above the 2^16 threshold), mean squared error, Adam.
// Two steps on 1, 2 and 3 threads give the same bits as the same step run eagerly on one thread
// (compiled CPU programs reproduce the eager kernels' bits, and every element of a split kernel is
// computed by the same code from the same inputs whichever thread runs it).

import { afterAll, describe, expect, it } from 'vitest';
import { jit, valueAndGrad } from '@scorch/autograd';
import { type Tensor, cpuKernelInfo, matmul, randn, randomKey, setCpuThreads, shutdownCpuThreads, softplus, splitKey, tidy, zeros } from '@scorch/tensor';
import { setWasmThreadMinWorkForTesting } from '../../tensor/src/cpu/wasm/wasmMatmul.js';
import { bitsOf } from '../../tensor/test/reference.js';
import { untilWorkerChunk } from '../../tensor/test/workerChunks.js';

// Products stay on one thread here (the [1024,128]·[128,128] ones are 2^24 multiply-adds, the
// default split point), so every chunk a worker computes is an elementwise kernel's.
setWasmThreadMinWorkForTesting(2 ** 40);

afterAll(() => {
  setWasmThreadMinWorkForTesting(undefined);
  setCpuThreads(undefined);
  shutdownCpuThreads();
});

const THREADS = cpuKernelInfo().wasmSimd && typeof SharedArrayBuffer === 'function';
const keys = splitKey(randomKey(7), 8);
const SHAPES = [[2, 128], [128], [128, 128], [128], [128, 2]];
const [LR, B1, B2, EPS] = [1e-2, 0.9, 0.999, 1e-8];

const forward = (p: readonly Tensor[], x: Tensor) => {
  const h1 = softplus(matmul(x, p[0]!).add(p[1]!));
  const h2 = softplus(matmul(h1, p[2]!).add(p[3]!));
  return matmul(h2, p[4]!);
};

/** One Adam step (step count 1 bias correction folded into the constants): [loss, params', m', v']. */
const step = (params: Tensor[], m: Tensor[], v: Tensor[], x: Tensor, y: Tensor): Tensor[] => {
  const [loss, grads] = valueAndGrad((...p: Tensor[]) => forward(p, x).sub(y).square().mean(), { argnums: [0, 1, 2, 3, 4] })(...params) as [Tensor, Tensor[]];
  const m2 = grads.map((g, i) => m[i]!.mul(B1).add(g.mul(1 - B1)));
  const v2 = grads.map((g, i) => v[i]!.mul(B2).add(g.square().mul(1 - B2)));
  const p2 = params.map((p, i) => p.sub(m2[i]!.div(1 - B1).mul(LR).div(v2[i]!.div(1 - B2).sqrt().add(EPS))));
  return [loss, ...p2, ...m2, ...v2];
};

/** Two steps from the same start on `threads` threads with `run` (the step, or its jit); every result's bytes. */
function twoSteps(threads: number, run: typeof step): number[][] {
  setCpuThreads(threads);
  // Made after the count is set, so on shared arrays where threads are on.
  const x = randn([1024, 2], { key: keys[0]! });
  const y = randn([1024, 2], { key: keys[1]! });
  let params = tidy(() => SHAPES.map((s, i) => randn(s, { key: keys[2 + i]! }).mul(0.3)));
  let m = SHAPES.map((s) => zeros(s));
  let v = SHAPES.map((s) => zeros(s));
  let out: Tensor[] = [];
  for (let s = 0; s < 2; s++) {
    const previous = [...params, ...m, ...v, ...out.slice(0, 1)];
    out = run(params, m, v, x, y);
    for (const t of previous) t.dispose();
    [params, m, v] = [out.slice(1, 6), out.slice(6, 11), out.slice(11, 16)];
  }
  const bytes = out.map((t) => bitsOf(t.dataSync()));
  for (const t of [...out, x, y]) t.dispose();
  return bytes;
}

describe.runIf(THREADS)('an MLP training step under jit on several CPU threads', () => {
  it('the same bits on 1, 2 and 3 threads as the eager step, and the workers take part', () => {
    const eager = twoSteps(1, step);
    for (const threads of [1, 2, 3]) {
      // A new thread count replaces the pool (and its counters): count from the new pool's start.
      setCpuThreads(threads);
      let tries = 0;
      // Traced once for this count (after it is set); later tries rerun the compiled program.
      const compiled = jit(step);
      const once = () => {
        const got = twoSteps(threads, compiled);
        got.forEach((b, i) => expect(b, `result ${i} on ${threads} threads, try ${tries}`).toEqual(eager[i]));
        tries++;
      };
      if (threads === 1) once();
      else {
        // Workers start asynchronously: repeat (bounded) until one has computed a chunk.
        const { chunks, reruns } = untilWorkerChunk(once);
        expect(chunks, `no worker chunk after ${tries} tries`).toBeGreaterThan(0);
        // No chunk threw on a worker (the rerun on this thread would hide it).
        expect(reruns).toBe(0);
      }
      compiled.clearCache();
    }
  });
});
