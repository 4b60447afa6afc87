// WebGPU eager kernels at the edges where a slip gives a wrong value with no error, or holds a
// buffer: batched products past 65,535 batch entries (a second launch of batches), the first
// element of a later span of argmax/argmin, host-known indices equal to the extent, the last
// partial column group of a product, operands that are offset views, a tiled product's K bound,
// and the temporary buffers of two-pass reductions and host-index scatterAdd. Each result is
// compared with the CPU backend; products within k·2⁻²⁴·(|A||B|) + 1 ulp (a k-term float32 dot
// product, Higham §3.1), sums within 1e-5 relative (float32 sums of ≤ 10² terms of N(0,1)),
// gathers, pads and scatters of whole numbers exactly.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { apply, matmul, tensor } from '@scorch/tensor';
import type { WebGPUHandle } from '@scorch/kernels';
import { exact, firstMismatch, gpuDevice, normalPair, ulp } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});
afterEach(() => {
  gpu.backend.forceTiledMatmul = false;
});

const pair = (shape: readonly number[], seed: number) => normalPair(shape, seed, gpu.device);

describe('eager kernels at their edges', () => {
  for (const tiled of [false, true]) {
    it(`batched matmul past 65,535 batch entries (second launch of batches)${tiled ? ', tiled' : ''}`, async () => {
      gpu.backend.forceTiledMatmul = tiled;
      const a = pair([65537, 4, 4], 1);
      const b = pair([65537, 4, 4], 2);
      const ref = matmul(a.cpu, b.cpu).dataSync();
      const bound = matmul(a.cpu.abs(), b.cpu.abs()).dataSync();
      const out = await matmul(a.gpu, b.gpu).data();
      expect(firstMismatch(ref, out, (i, r) => 4 * 2 ** -24 * bound[i]! + ulp(r))).toBeNull();
    });
  }

  it('sum over 3 non-collapsible kept axes and 3 non-collapsible reduced axes (permuted view)', async () => {
    const x = pair([3, 4, 5, 6, 2, 7], 3);
    const perm = [5, 0, 3, 1, 4, 2];
    for (const axes of [[5], [0, 2, 4], [1, 3, 5]]) {
      const ref = x.cpu.permute(perm).sum(axes).dataSync();
      const out = await x.gpu.permute(perm).sum(axes).data();
      expect(firstMismatch(ref, out, (_i, r) => 1e-5 * (1 + Math.abs(r))), `axes ${axes}`).toBeNull();
    }
  });

  it('tiled matmul reads no element of A past K (an inf there must not turn into NaN)', async () => {
    gpu.backend.forceTiledMatmul = true;
    for (const m of [1, 3, 7]) {
      const k = 33;
      const full = new Float32Array(m * 40).fill(1);
      for (let r = 0; r < m; r++) for (let c = k; c < 40; c++) full[r * 40 + c] = Infinity;
      const aCpu = tensor(full, { shape: [m, 40] }).slice([0, 0], [m, k]);
      const aGpu = tensor(full, { shape: [m, 40], device: gpu.device }).slice([0, 0], [m, k]);
      const b = pair([k, 8], 4);
      const ref = matmul(aCpu, b.cpu).dataSync();
      const out = await matmul(aGpu, b.gpu).data();
      expect(firstMismatch(ref, out, (_i, r) => 1e-4 * (1 + Math.abs(r))), `m ${m}`).toBeNull();
    }
  });

  for (const prim of ['argmax', 'argmin'] as const) {
    it(`${prim}: the extreme at the first position of a later launch's span (16384, 32768) is found`, async () => {
      for (const at of [16384, 32768]) {
        const n = 40000;
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) data[i] = (i % 1000) / 1000; // in [0, 1)
        data[at] = prim === 'argmax' ? 5 : -5;
        const g = tensor(data, { shape: [n], device: gpu.device });
        const out = await apply(prim, [g], { axis: 0 }).data();
        expect(out[0], `extreme at ${at}`).toBe(at);
      }
    });
  }

  it('scatterAdd with host-known indices that are a sliced view (offset) equals the CPU', async () => {
    const idxData = Int32Array.from([4, 0, 1, 2, 3, 0, 1]);
    const upd = pair([6, 3], 5);
    const idxCpu = tensor(idxData, { shape: [7], dtype: 'int32' }).slice([1], [6]);
    const idxGpu = tensor(idxData, { shape: [7], dtype: 'int32', device: gpu.device }).slice([1], [6]);
    const ref = apply('scatterAdd', [upd.cpu, idxCpu], { axis: 0, size: 5 }).dataSync();
    const out = await apply('scatterAdd', [upd.gpu, idxGpu], { axis: 0, size: 5 }).data();
    expect(firstMismatch(ref, out, exact)).toBeNull();
  });

  it('pad of a sliced view (nonzero offset) equals the CPU', async () => {
    const x = pair([5, 9], 6);
    const params = { before: [1, 2], after: [2, 1] };
    const ref = apply('pad', [x.cpu.slice([1, 2], [3, 4])], params).dataSync();
    const out = await apply('pad', [x.gpu.slice([1, 2], [3, 4])], params).data();
    expect(firstMismatch(ref, out, exact)).toBeNull();
  });

  it('host-known indices equal to the extent are refused at once, with the CPU error (gather and scatterAdd)', async () => {
    const cpuError = (f: () => unknown): string => { try { f(); } catch (e) { return (e as Error).message; } throw new Error('CPU did not throw'); };
    const rows = [[1, 2], [3, 4], [5, 6]];
    const idx = (device?: string) => tensor([0, 3], { dtype: 'int32', ...(device ? { device } : {}) });
    const gatherErr = cpuError(() => apply('gather', [tensor(rows), idx()], { axis: 0 }));
    expect(() => apply('gather', [tensor(rows, { device: gpu.device }), idx(gpu.device)], { axis: 0 })).toThrow(gatherErr);
    const upd = [[1, 1], [2, 2]];
    const scatterErr = cpuError(() => apply('scatterAdd', [tensor(upd), idx()], { axis: 0, size: 3 }));
    expect(() => apply('scatterAdd', [tensor(upd, { device: gpu.device }), idx(gpu.device)], { axis: 0, size: 3 })).toThrow(scatterErr);
    await gpu.backend.sync().catch(() => undefined);
  });


  for (const tiled of [false, true]) {
    it(`matmul with N = 4q + 3 (last column group partial) stores nothing past a row${tiled ? ', tiled' : ', vec4 with B read along k'}`, async () => {
      gpu.backend.forceTiledMatmul = tiled;
      for (const [m, n, k] of [[70, 7, 8], [9, 3, 4], [65, 11, 12], [5, 67, 8]] as const) {
        const a = pair([m, k], 7);
        const bt = pair([n, k], 8); // B = btᵀ: stride 1 along k
        const ref = matmul(a.cpu, bt.cpu.transpose()).dataSync();
        const bound = matmul(a.cpu.abs(), bt.cpu.abs().transpose()).dataSync();
        const out = await matmul(a.gpu, bt.gpu.transpose()).data();
        expect(firstMismatch(ref, out, (i, r) => k * 2 ** -24 * bound[i]! + ulp(r)), `${m}x${n}x${k}`).toBeNull();
      }
    });
  }

  it('a two-pass sum and a host-index scatterAdd leave no buffer behind', async () => {
    const x = tensor(new Float32Array(100000).fill(1), { shape: [100000], device: gpu.device });
    const upd = tensor(new Float32Array(12).fill(1), { shape: [6, 2], device: gpu.device });
    const idx = tensor([0, 1, 0, 2, 1, 0], { dtype: 'int32', device: gpu.device });
    await gpu.backend.sync();
    const before = gpu.backend.memory().buffers;
    const s = x.sum();
    expect(await s.item()).toBe(100000);
    s.dispose();
    expect(gpu.backend.memory().buffers, 'after a two-pass sum').toBe(before);
    const r = apply('scatterAdd', [upd, idx], { axis: 0, size: 3 });
    expect(await r.toArray()).toEqual([[3, 3], [2, 2], [1, 1]]);
    r.dispose();
    expect(gpu.backend.memory().buffers, 'after a host-index scatterAdd').toBe(before);
    for (const t of [x, upd, idx]) t.dispose();
  });
});
