// WebGPU eager kernels at the edges where a slip gives a wrong value with no error, or holds a
// buffer: batched products past 65,535 batch entries (a second launch of batches), the first
// element of a later span of argmax/argmin, host-known indices equal to the extent, the last
// partial column group of a product, operands that are offset views, a tiled product's K bound,
// and the temporary buffers of two-pass reductions and host-index scatterAdd; an empty scatterAdd,
// a gather's NaN for a bad computed index, argmax/argmin from a NaN first element and carried
// across launches along a strided axis, and a cooperative sum on a two-row grid. Each result is
// compared with the CPU backend or with values known exactly; products within k·2⁻²⁴·(|A||B|) + 1
// ulp (a k-term float32 dot product, Higham §3.1), sums within 1e-5 relative (float32 sums of
// ≤ 10² terms of N(0,1)), gathers, pads and scatters of whole numbers exactly, and sums of at most
// 64 integers below 2^10 exactly (float32 holds every partial sum).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, apply, matmul, tensor } from '@scorch/tensor';
import type { WebGPUHandle } from '@scorch/kernels';
import { computedIndices, exact, firstMismatch, gpuDevice, normalPair, ulp } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});
afterEach(() => {
  gpu.backend.forceTiledMatmul = false;
});

const pair = (shape: readonly number[], seed: number) => normalPair(shape, seed, gpu.device);
/** Rows 1..3 of [[0, 0], [1, 2], [3, 4], [5, 6]]: a view at offset 2 in its buffer. */
const offsetRows = (): Tensor => tensor([[0, 0], [1, 2], [3, 4], [5, 6]], { device: gpu.device }).slice([1, 0], [3, 2]);

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

    it(`${prim}: along a strided axis, the extreme a first launch found is re-read through the stride by the later ones`, async () => {
      // [40000, 2] along axis 0 (stride 2): launches over [0, 16384), [16384, 32768), [32768, 40000).
      // The extreme sits at position 100 of both columns, every other value in [0, 1): a later
      // launch replaces it only if it re-reads position 100 at the wrong place.
      const n = 40000;
      const data = new Float32Array(2 * n);
      for (let i = 0; i < n; i++) data[2 * i] = data[2 * i + 1] = (i % 1000) / 1000;
      data[200] = data[201] = prim === 'argmax' ? 5 : -5;
      const g = tensor(data, { shape: [n, 2], device: gpu.device });
      expect(await apply(prim, [g], { axis: 0 }).toArray()).toEqual([100, 100]);
    });
  }

  it('argmax and argmin of a line that starts with NaN give index 0, even with a later NaN', async () => {
    const g = tensor([[NaN, 1, NaN, 5], [2, NaN, 9, NaN]], { device: gpu.device });
    expect(await apply('argmax', [g], { axis: 1 }).toArray()).toEqual([0, 1]);
    expect(await apply('argmin', [g], { axis: 1 }).toArray()).toEqual([0, 1]);
  });

  it('scatterAdd with no indices writes zeros (one empty launch still runs)', async () => {
    const upd = tensor(new Float32Array(0), { shape: [0, 2], device: gpu.device });
    const idx = tensor(new Int32Array(0), { shape: [0], dtype: 'int32', device: gpu.device });
    expect(await apply('scatterAdd', [upd, idx], { axis: 0, size: 3 }).toArray()).toEqual([[0, 0], [0, 0], [0, 0]]);
  });

  it('scatterAdd of updates that are an offset view, with host-known and with computed indices', async () => {
    const upd = offsetRows();
    const expected = [[8, 10], [0, 0], [1, 2]]; // indices [2, 0, 0]: row 0 = [3, 4] + [5, 6], row 2 = [1, 2]
    const host = tensor([2, 0, 0], { dtype: 'int32', device: gpu.device });
    expect(await apply('scatterAdd', [upd, host], { axis: 0, size: 3 }).toArray()).toEqual(expected);
    expect(await apply('scatterAdd', [upd, computedIndices([2, 0, 0], gpu.device)], { axis: 0, size: 3 }).toArray()).toEqual(expected);
  });

  it('gather of an input that is an offset view, along either axis', async () => {
    const x = offsetRows();
    expect(await x.indexSelect(0, tensor([2, 0], { dtype: 'int32', device: gpu.device })).toArray()).toEqual([[5, 6], [1, 2]]);
    expect(await x.indexSelect(1, tensor([1], { dtype: 'int32', device: gpu.device })).toArray()).toEqual([[2], [4], [6]]);
  });

  it('an out-of-range computed gather index gives NaN in its row once the error is reported', async () => {
    const bad = tensor([[1, 2], [3, 4]], { device: gpu.device }).indexSelect(0, computedIndices([1, 7], gpu.device));
    await expect(gpu.backend.sync()).rejects.toThrow('gather: index 7 is out of range for axis 0 of extent 2');
    expect(await bad.toArray()).toEqual([[3, 4], [NaN, NaN]]);
  });

  it('a cooperative sum on a two-row grid: the idle workgroups past the last output write nothing', async () => {
    // [81920, 64] over axis 1, one workgroup an output, on a [65535, 2] grid whose last 49,150
    // workgroups have none. 81,920 float32 outputs fill their buffer's size class exactly, so a
    // store past the end (clamped by the robustness transform) would land on the last output.
    // Column c (c[r] = r % 7) is broadcast along 64 columns and followed in its buffer by 1000.
    const rows = 81920;
    const column = Float32Array.from({ length: rows + 1 }, (_, r) => (r < rows ? r % 7 : 1000));
    const x = tensor(column, { shape: [rows + 1, 1], device: gpu.device }).slice([0, 0], [rows, 1]).expand([rows, 64]);
    const out = await x.sum(1).data();
    const expected = Float32Array.from({ length: rows }, (_, r) => 64 * (r % 7));
    expect(firstMismatch(expected, out, exact)).toBeNull();
  });

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
