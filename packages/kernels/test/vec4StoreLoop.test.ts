// The register-blocked vec4 matmul stores its block four rows at a time by a loop, moving the
// accumulators up by four rows after each store (wgsl/matmul.ts vec4MatmulKernel, STORE_ROWS).
// Products whose last block of rows is cut anywhere (M = 1…70), with N past the last whole vec4
// group (B read along k), batches, all four operand layouts, plain and accumulated over K spans,
// on the software adapter's path and the forced hardware path (other block sizes, epilogues
// fused), are exact here: operands are integers in [−3, 3] and K ≤ 64 (or, for the K spans, K just
// past 2^15 with operands in [−1, 1]), so every partial sum is an integer below 2^24 and float32
// sums it exactly in any order.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { type Tensor, matmul, tensor } from '@scorch/tensor';
import { type WebGPUHandle, vec4Layout } from '@scorch/kernels';
import { RUN_SEED, gpuDevice, hardwarePathDevice, hashSeed, hostRandom } from './helpers.js';

let gpu: WebGPUHandle;
let hardware: { gpu: WebGPUHandle; restore: () => void } | null = null;
beforeAll(async () => {
  gpu = await gpuDevice();
});
afterAll(() => hardware?.restore());

interface Case { m: number; n: number; k: number; batch: number[]; ta: boolean; tb: boolean }

/** Cases drawn around the block edges; each meets vec4Layout's conditions (K, and M or N where read as vec4s). */
function cases(seed: number, count: number): Case[] {
  const rnd = hostRandom(seed);
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const ta = i % 2 === 1;
    const tb = (i >> 1) % 2 === 1;
    // A read along m needs M a multiple of 4; B read along n needs N one.
    let m = 1 + Math.floor(rnd() * 70);
    if (ta) m = 4 * Math.ceil(m / 4);
    let n = 1 + Math.floor(rnd() * 40);
    if (!tb) n = 4 * Math.ceil(n / 4);
    out.push({ m, n, k: 4 * (1 + Math.floor(rnd() * 16)), batch: rnd() < 0.3 ? [1 + Math.floor(rnd() * 3)] : [], ta, tb });
  }
  return out;
}

/** An operand of logical shape [...batch, rows, cols] of integers in [−3, 3], stored transposed when asked. */
function operand(c: Case, rows: number, cols: number, transposed: boolean, rnd: () => number): { cpu: Tensor; gpu: Tensor } {
  const stored = transposed ? [...c.batch, cols, rows] : [...c.batch, rows, cols];
  const width = c.k > 64 ? 1 : 3;
  const data = Float32Array.from({ length: stored.reduce((a, b) => a * b, 1) }, () => Math.floor(rnd() * (2 * width + 1)) - width);
  const [x, y] = [tensor(data, { shape: stored }), tensor(data, { shape: stored, device: gpu.device })];
  return transposed ? { cpu: x.transpose(), gpu: y.transpose() } : { cpu: x, gpu: y };
}

async function expectExact(c: Case, label: string, f: (a: Tensor, b: Tensor) => Tensor): Promise<void> {
  const rnd = hostRandom(hashSeed(label));
  const a = operand(c, c.m, c.k, c.ta, rnd);
  const b = operand(c, c.k, c.n, c.tb, rnd);
  const want = Array.from(f(a.cpu, b.cpu).dataSync());
  const got = Array.from(await f(a.gpu, b.gpu).data());
  const bad = want.findIndex((w, i) => !Object.is(w, got[i]));
  expect(bad < 0 ? null : `element ${bad}: ${got[bad]}, expected ${want[bad]}`, `${label} (seed ${RUN_SEED})`).toBeNull();
}

for (const path of ['software', 'hardware'] as const) {
  describe(`vec4 matmul store loop (${path} path)`, () => {
    beforeAll(async () => {
      if (path === 'hardware') hardware = await hardwarePathDevice();
    });
    afterAll(() => {
      hardware?.restore();
      hardware = null;
    });

    it('K past one launch: the spans after the first add to C through the same store loop', async () => {
      // MATMUL_K_SPAN = 2^15: K = 2^15 + 12 is two launches, the second accumulating.
      for (const c of cases(hashSeed('vec4-store-spans', path), 4)) {
        const spans = { ...c, k: 2 ** 15 + 12, m: Math.min(c.m, 9) };
        await expectExact(spans, `${path} ${spans.m}×${spans.k}×${spans.n}${c.ta ? ' Aᵀ' : ''}${c.tb ? ' Bᵀ' : ''}`, (a, b) => matmul(a, b));
      }
    });

    it('eager and jitted products with an epilogue, M = 1…70, every layout, exact', async () => {
      const drawn = cases(hashSeed('vec4-store', path), 24);
      // Every case is one the vec4 kernel takes (its layout conditions; K, M and N nonzero).
      for (const c of drawn) {
        const strides = (shape: number[]) => shape.map((_, d) => shape.slice(d + 1).reduce((x, y) => x * y, 1));
        const view = (rows: number, cols: number, t: boolean) => {
          const stored = t ? [...c.batch, cols, rows] : [...c.batch, rows, cols];
          const s = strides(stored);
          const r = stored.length;
          return t ? { shape: [...c.batch, rows, cols], strides: [...s.slice(0, r - 2), s[r - 1]!, s[r - 2]!], offset: 0 } : { shape: stored, strides: s, offset: 0 };
        };
        expect(vec4Layout(view(c.m, c.k, c.ta), view(c.k, c.n, c.tb)), JSON.stringify(c)).not.toBeNull();
      }
      for (const c of drawn) {
        const label = `${path} ${c.batch.length ? `${c.batch}×` : ''}${c.m}×${c.k}×${c.n}${c.ta ? ' Aᵀ' : ''}${c.tb ? ' Bᵀ' : ''}`;
        await expectExact(c, label, (a, b) => matmul(a, b));
        await expectExact(c, `${label} jit`, (a, b) => jit((x: Tensor, y: Tensor) => matmul(x, y).mul(2).sub(1))(a, b) as Tensor);
      }
    });
  });
}
