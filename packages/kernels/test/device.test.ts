// The device: found on this machine (llvmpipe through Dawn's OpenGL backend when there is no
// GPU), registered as a tensor device, idempotent, and running in a mode all kernels support.

import { describe, expect, it } from 'vitest';
import { listDevices, rand, randomKey, tensor } from '@scorch/tensor';
import { acquireDevice, initWebGPU } from '@scorch/kernels';
import { gpuDevice } from './helpers.js';

describe('initWebGPU', () => {
  it('finds an adapter and registers the webgpu device', async () => {
    const h = await gpuDevice();
    expect(h.device).toBe('webgpu');
    expect(listDevices()).toContain('webgpu');
    expect(['core', 'compatibility']).toContain(h.info.featureLevel);
    expect(h.info.backend.length).toBeGreaterThan(0);
    console.log(`adapter: ${JSON.stringify(h.info)}`);
    const x = tensor([1, 2, 3], { device: 'webgpu' });
    expect(await x.toArray()).toEqual([1, 2, 3]);
  });

  it('without an adapter, fails saying what was tried', async () => {
    const noAdapters = { requestAdapter: async () => null } as unknown as GPU;
    await expect(acquireDevice({ gpu: noAdapters })).rejects.toThrow(
      /no WebGPU adapter found\. Tried: the given GPU object, core features: no adapter; the given GPU object, compatibility mode: no adapter/,
    );
  });

  it('is idempotent', async () => {
    const a = await initWebGPU();
    const b = await initWebGPU({ poisonAllocations: false });
    expect(b).toBe(a);
  });
});

describe('a device with only the default limits of its feature level', () => {
  it('runs every kind of kernel (compatibility defaults: 128 invocations, 4 storage buffers, 16 KiB uniforms)', async () => {
    const h = await initWebGPU({ name: 'webgpu-default-limits', limits: 'defaults', poisonAllocations: true });
    const d = h.device;
    expect(h.gpu.limits.maxComputeInvocationsPerWorkgroup).toBeLessThanOrEqual(256);
    const x = tensor([[1, -2, 3], [4, 5, -6]], { device: d });
    const w = tensor([[1, 0], [0, 1], [1, 1]], { device: d });
    expect(await x.matmul(w).toArray()).toEqual([[4, 1], [-2, -1]]);
    // 129×129: not vec4-aligned, so the tiled kernel runs; big enough for 256-thread tiles, which
    // the 128-invocation limit rules out.
    const big = tensor(Float32Array.from({ length: 129 * 129 }, (_, i) => (i % 7) - 3), { shape: [129, 129], device: d });
    const cpuBig = tensor(await big.data(), { shape: [129, 129] });
    expect(await big.matmul(big).toArray()).toEqual(await cpuBig.matmul(cpuBig).toArray());
    expect(await x.sum(1).toArray()).toEqual([2, 3]);
    expect(await x.max(0).toArray()).toEqual([4, 5, 3]);
    expect(await x.less(0).toArray()).toEqual([[false, true, false], [false, false, true]]);
    expect(await x.relu().toArray()).toEqual([[1, 0, 3], [4, 5, 0]]);
    expect(await x.indexSelect(1, [2, 0]).toArray()).toEqual([[3, 1], [-6, 4]]);
    expect((await rand([5], { key: randomKey(3), device: d }).data()).every((v) => v >= 0 && v < 1)).toBe(true);
  });
});
