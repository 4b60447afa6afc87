// Device loss in the middle of a run: tensors of the lost device stay alive in user code while
// initWebGPU opens a new device under the same name ('webgpu'). Disposing them must not touch
// the new device's pool or counts, using them must say what happened, memory() must stop
// counting the lost device, and the new device must keep computing correct results. (A file of
// its own: it ends the first device of this process.)

import { describe, expect, it } from 'vitest';
import { type Tensor, memory, tensor, tidy } from '@scorch/tensor';
import { initWebGPU } from '@scorch/kernels';
import { jit } from '@scorch/autograd';
import { gpuDevice } from './helpers.js';

const LOST_TENSOR = 'this tensor belongs to a WebGPU device that was lost; recreate it';
const range = (n: number, from = 0) => Float32Array.from({ length: n }, (_, i) => from + i);

describe('device loss', () => {
  it('tensors of a lost device dispose as no-ops, refuse use, and leave the new device intact', async () => {
    const gpu = await gpuDevice();
    const baseline = memory();
    // Live tensors of several kinds: an upload, a computed result already read, a view, a result
    // still unsubmitted in the open batch, and freed buffers waiting in the pool.
    const a = tensor(range(1000), { device: gpu.device });
    const b = tidy(() => a.mul(2)); // tidy: the scalar 2 is a tensor too
    expect((await b.data())[999]).toBe(1998);
    for (let i = 0; i < 3; i++) a.exp().dispose();
    const view = a.slice([10], [100]);
    const queued = a.add(b);
    const old: Tensor[] = [a, b, view, queued];
    expect(memory().buffers - baseline.buffers).toBe(3); // a (shared by view), b, queued
    expect(gpu.runtime.stats.pooledBytes).toBeGreaterThan(0);

    gpu.gpu.destroy();
    expect((await gpu.gpu.lost).reason).toBe('destroyed');

    // Lost but not yet replaced: the device holds nothing any more, and its tensors say so.
    expect(memory().buffers).toBe(baseline.buffers);
    expect(memory().bytes).toBe(baseline.bytes);
    await expect(queued.data()).rejects.toThrow(LOST_TENSOR);

    const again = await initWebGPU({ poisonAllocations: true });
    expect(again).not.toBe(gpu);
    expect(again.device).toBe(gpu.device);
    expect(again.runtime.memory).toEqual({ buffers: 0, bytes: 0 });

    // Using a tensor of the lost device, as an op input or by reading it, says what happened.
    expect(() => a.exp()).toThrow(LOST_TENSOR);
    expect(() => view.reshape([10, 10])).toThrow(LOST_TENSOR);
    const fresh = tensor(range(1000), { device: again.device });
    expect(() => fresh.add(b)).toThrow(LOST_TENSOR);
    expect(() => tidy(() => a.mul(3))).toThrow(LOST_TENSOR);
    await expect(b.data()).rejects.toThrow(LOST_TENSOR);
    await expect(view.toArray()).rejects.toThrow(LOST_TENSOR);

    // Disposing them is a no-op for the new device: nothing joins its pool, no count goes negative.
    // (The new device's pool may hold the scalar 3 of the refused a.mul(3): an upload freed with
    // no kernel recorded is pooled at once. The old tensors must add nothing to it.)
    const tensorsBefore = memory().tensors;
    const pooledBefore = again.runtime.stats.pooledBytes;
    expect(pooledBefore).toBeLessThanOrEqual(16);
    for (const t of old) t.dispose();
    expect(memory().tensors).toBe(tensorsBefore - old.length);
    expect(again.runtime.stats.pooledBytes).toBe(pooledBefore);
    expect(again.runtime.memory).toEqual({ buffers: 1, bytes: 4096 }); // `fresh` only
    expect(memory().buffers).toBe(baseline.buffers + 1);

    // The new device computes correctly, reusing its own pooled buffers of the old sizes.
    for (let round = 0; round < 3; round++) {
      const y = tidy(() => fresh.mul(2).add(fresh.slice([0], [1000])).sub(1));
      const values = await y.data();
      y.dispose();
      // Small integers: every step is exact in float32.
      expect([...values]).toEqual(Array.from({ length: 1000 }, (_, i) => 3 * i - 1));
      expect(again.runtime.memory.buffers).toBe(1);
    }
    expect(again.runtime.stats.pooledBytes).toBeGreaterThan(0);
    fresh.dispose();
    await again.runtime.sync();
    expect(again.runtime.memory).toEqual({ buffers: 0, bytes: 0 });
    expect(memory()).toEqual(baseline);
  });

  it('a jitted function compiled before the loss compiles anew for the new device, and refuses a lost tensor before queueing anything', async () => {
    const gpu = await gpuDevice();
    const f = jit((x: Tensor) => x.mul(2).add(1));
    const before = tensor(range(4), { device: gpu.device });
    expect([...(await f(before).data())]).toEqual([1, 3, 5, 7]);
    expect(f.traceCount).toBe(1);

    gpu.gpu.destroy();
    await gpu.gpu.lost;
    const again = await initWebGPU({ poisonAllocations: true });
    expect(again).not.toBe(gpu);

    // Its program was the lost device's: it said "the device was lost; create a new one with
    // initWebGPU" on every call after initWebGPU had been called.
    const fresh = tensor(range(4), { device: again.device });
    expect([...(await f(fresh).data())]).toEqual([1, 3, 5, 7]);
    expect(f.traceCount).toBe(2);
    expect(f.cacheSize).toBe(1);

    // A lost tensor given to it, or closed over, is refused as eager mode refuses it. Its buffer was
    // bound into the new device's batch, which failed with Dawn's message and took with it work
    // queued beside it (here \`unrelated\`).
    const unrelated = fresh.mul(5);
    expect(() => f(before)).toThrow(`webgpu jit: ${LOST_TENSOR}`);
    expect(() => jit((x: Tensor) => x.add(before))(fresh)).toThrow(`webgpu jit: ${LOST_TENSOR}`);
    expect([...(await unrelated.data())]).toEqual([0, 5, 10, 15]);
    expect([...(await f(fresh).data())]).toEqual([1, 3, 5, 7]);
    f.clearCache();
    for (const t of [before, fresh, unrelated]) t.dispose();
  });
});
