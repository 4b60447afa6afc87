// The runtime under the backend: errors that name the kernel, batching without host round
// trips, the queue-ordering hazards of writeBuffer (uploads into recycled buffers, per-dispatch
// uniforms), pooled and reference-counted buffers, poisoning, and device loss (which replaces the
// file's device, so the tests pass in any order: vitest --sequence.shuffle).

import { beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, full, memory, tensor, tidy } from '@scorch/tensor';
import { GpuRuntime, type KernelSpec, type WebGPUHandle, fillKernel, initWebGPU, sizeClass } from '@scorch/kernels';
import { jit } from '@scorch/autograd';
import { countingCreatedBuffers, gpuDevice } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});

const range = (n: number, from = 0) => Float32Array.from({ length: n }, (_, i) => from + i);

describe('errors name the kernel', () => {
  it('a WGSL compilation error surfaces as a thrown error with the kernel label', async () => {
    const bad: KernelSpec = {
      label: 'deliberately_broken_kernel',
      code: '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name; }',
      workgroupSize: [1, 1, 1],
      dispatch: [1, 1, 1],
      uniforms: new Uint32Array(4),
    };
    gpu.runtime.dispatch(bad, []);
    await expect(gpu.runtime.sync()).rejects.toThrow(/deliberately_broken_kernel/);
    // The device stays usable afterwards.
    expect(await tensor([1, 2], { device: gpu.device }).add(1).toArray()).toEqual([2, 3]);
  });

  it('a binding validation error names the kernel too', async () => {
    // The fill kernel declares one storage buffer; binding none is a validation error.
    gpu.runtime.dispatch({ ...fillKernel(4, 0), label: 'fill_with_missing_binding' }, []);
    await expect(gpu.runtime.sync()).rejects.toThrow(/fill_with_missing_binding/);
  });
});

describe('a failed batch', () => {
  // None of a failed batch's commands run, so each buffer it was to write keeps the bytes it held
  // (zeros, or a freed tensor's values). Those must never be read as values: the results of the
  // batch, and everything computed from them, throw on reading and as kernel inputs.
  const breakTheBatch = () => gpu.runtime.dispatch({ ...fillKernel(4, 0), label: 'fill_with_missing_binding' }, []);

  it('its results and what was computed from them have no value; other tensors keep theirs', async () => {
    const dev = gpu.device;
    const x = tensor([1, 2, 3], { device: dev });
    await x.data();
    const before = memory().buffers;
    const a = x.mul(2);
    breakTheBatch();
    gpu.runtime.flush();
    // Recorded into the next batch before the failure is known: it reads a's stale bytes.
    const b = a.add(1);
    await expect(gpu.runtime.settle()).rejects.toThrow(/fill_with_missing_binding/);
    await expect(a.data()).rejects.toThrow(/this tensor has no value: the batch of kernels that computes it \(or one of its inputs\) failed.*fill_with_missing_binding/s);
    await expect(b.data()).rejects.toThrow(/this tensor has no value/);
    // Once the failure is known, a kernel refuses such an input, leaving no buffer behind.
    const held = memory().buffers;
    expect(() => a.mul(3)).toThrow(/webgpu: 'mul' has an input with no value: the batch of kernels that computes it failed.*fill_with_missing_binding/s);
    expect(memory().buffers).toBe(held);
    // The tensor computed before the failure, and new work, are untouched.
    expect(await x.toArray()).toEqual([1, 2, 3]);
    const again = x.mul(2);
    expect(await again.toArray()).toEqual([2, 4, 6]);
    for (const t of [a, b, again]) t.dispose();
    expect(memory().buffers).toBe(before);
    // A failed result's buffer, back from the pool, holds the next value.
    const next = x.add(10);
    expect(await next.toArray()).toEqual([11, 12, 13]);
    next.dispose();
    x.dispose();
  });

  it('a compiled call refuses an input with no value, and its next call runs', async () => {
    const dev = gpu.device;
    const f = jit((t: Tensor) => t.mul(t).sum().add(t).exp().sum());
    const x = tensor([0.5, -1, 2], { device: dev });
    const expected = await f(x).toArray();
    const a = x.mul(1);
    breakTheBatch();
    // Joins the open batch, which fails: its result has no value.
    const y = f(x);
    await expect(gpu.runtime.settle()).rejects.toThrow(/fill_with_missing_binding/);
    await expect(y.data()).rejects.toThrow(/this tensor has no value/);
    expect(() => f(a)).toThrow(/a compiled program has an input with no value/);
    // Its intermediate blocks held the failed batch's stale bytes; the next call writes them first.
    expect(await f(x).toArray()).toEqual(expected);
    for (const t of [x, a, y]) t.dispose();
    // Freed now, not when the garbage collector finalizes f (during a later test's exact memory() check).
    f.clearCache();
  });
});

describe('storage past the binding limit', () => {
  it('is refused before any allocation, naming what it was for', () => {
    const limit = gpu.runtime.device.limits.maxStorageBufferBindingSize;
    expect(() => gpu.runtime.allocate(limit + 4)).toThrow(`webgpu: a ${limit + 4}-byte tensor exceeds this device's maxStorageBufferBindingSize (${limit} bytes)`);
    expect(() => gpu.runtime.allocate(limit + 4, "block of a compiled program's results")).toThrow(
      `webgpu: a ${limit + 4}-byte block of a compiled program's results exceeds this device's maxStorageBufferBindingSize`,
    );
  });
});

describe('storage up to a binding limit that is not a pool size class', () => {
  // A device may report a limit between two of the pool's size classes (2^31 − 4 is common); the
  // same device seen with a limit of 100 MiB + 4 bytes, between the classes 96 and 112 MiB.
  function runtimeWithLimit(limit: number): GpuRuntime {
    const device = gpu.runtime.device;
    const limits = new Proxy(device.limits, { get: (l, k) => (k === 'maxStorageBufferBindingSize' ? limit : Reflect.get(l, k)) });
    const proxy = new Proxy(device, {
      get: (d, k) => {
        if (k === 'limits') return limits;
        const v = Reflect.get(d, k);
        return typeof v === 'function' ? v.bind(d) : v;
      },
    });
    return new GpuRuntime({ ...gpu.runtime.acquired, device: proxy });
  }

  it('allocates a tensor of exactly the limit and refuses one past it', async () => {
    const limit = 100 * 2 ** 20 + 4;
    const runtime = runtimeWithLimit(limit);
    const storage = runtime.allocate(limit);
    expect(storage.bytes).toBeGreaterThanOrEqual(limit);
    expect(storage.bytes).toBeLessThanOrEqual(limit);
    runtime.release(storage);
    expect(() => runtime.allocate(limit + 4)).toThrow(`webgpu: a ${limit + 4}-byte tensor exceeds this device's maxStorageBufferBindingSize (${limit} bytes)`);
    // Its batch (the error scopes it pushed on the shared device) is submitted and its buffer destroyed.
    await runtime.sync();
    runtime.trimPool();
  });

  it('stops a buffer past a limit that is not a whole number of words at the last whole word under it', async () => {
    // 5000 bytes: class 6144, past the limit 5002; the buffer stops at 5000 (5002 rounded down to 4).
    const runtime = runtimeWithLimit(5002);
    const storage = runtime.allocate(5000);
    expect(storage.bytes).toBe(5000);
    expect(runtime.memory).toEqual({ buffers: 1, bytes: 5000 });
    runtime.release(storage);
    expect(runtime.memory).toEqual({ buffers: 0, bytes: 0 });
    await runtime.sync();
    runtime.trimPool();
  });
});

describe('index checks', () => {
  it('out-of-range indices known on the host throw the CPU backend\'s error', () => {
    const x = tensor([[1, 2], [3, 4]], { device: gpu.device });
    const indices = tensor([0, 2], { dtype: 'int32', device: gpu.device });
    expect(() => x.indexSelect(0, indices)).toThrow('gather: index 2 is out of range for axis 0 of extent 2');
    expect(() => tensor([[1, 2], [3, 4]]).indexSelect(0, tensor([0, 2], { dtype: 'int32' }))).toThrow('gather: index 2 is out of range for axis 0 of extent 2');
  });
});

describe('batching', () => {
  it('records dispatches without submitting until a value is read', async () => {
    const x = tensor(range(64), { device: gpu.device });
    await x.data();
    const before = gpu.runtime.stats.submits;
    let y: Tensor = x;
    // 20 kernels plus 20 poisoning fills: below the 64 dispatches that fill a batch.
    for (let i = 0; i < 10; i++) y = y.mul(1.5).add(1);
    expect(gpu.runtime.stats.submits).toBe(before);
    const values = await y.data();
    expect(gpu.runtime.stats.submits).toBeGreaterThan(before);
    let expected = 0;
    for (let i = 0; i < 10; i++) expected = Math.fround(Math.fround(expected * 1.5) + 1);
    expect(values[0]).toBe(expected);
  });

  it('gives every dispatch of a batch its own uniforms (200 slices in one batch)', async () => {
    const base = tensor(range(400), { device: gpu.device });
    const parts = Array.from({ length: 200 }, (_, i) => base.slice([i], [2]).add(0));
    const all = await Promise.all(parts.map((p) => p.data()));
    all.forEach((v, i) => expect([...v]).toEqual([i, i + 1]));
  });
});

describe('buffer reuse and queue ordering', () => {
  it('a buffer freed while its reader is still unsubmitted is not handed to an upload', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const x = tensor(range(1024, 1), { device: gpu.device }).mul(1); // computed: a fresh pooled buffer
      const y = x.mul(2); // recorded, not yet submitted; reads x
      x.dispose(); // x's buffer is released during the open batch
      // Same size class: were x's buffer reused now, writeBuffer would land before y's kernel runs.
      const z = tensor(new Float32Array(1024).fill(-7), { device: gpu.device });
      const yv = await y.data();
      expect(yv[0]).toBe(2);
      expect(yv[1023]).toBe(2048);
      expect((await z.data())[5]).toBe(-7);
    }
  });

  it('recycles freed buffers through the pool once their batch is submitted', async () => {
    const x = tensor(range(5000), { device: gpu.device });
    await x.data();
    const pooled = gpu.runtime.stats.pooledBytes;
    x.dispose();
    await gpu.runtime.sync();
    expect(gpu.runtime.stats.pooledBytes).toBeGreaterThan(pooled);
    const afterRelease = gpu.runtime.stats.pooledBytes;
    const y = tensor(range(5000), { device: gpu.device });
    expect(gpu.runtime.stats.pooledBytes).toBeLessThan(afterRelease);
    expect((await y.data())[4999]).toBe(4999);
  });

  it('readback staging buffers are pooled under poolLimitBytes with the rest, and trimPool frees them', async () => {
    const limit = 1 << 20;
    const small = await initWebGPU({ name: 'webgpu-small-pool', poolLimitBytes: limit, poisonAllocations: true });
    // Staging buffers are the mappable ones: follow how many bytes of them exist.
    const device = small.gpu;
    const create = device.createBuffer;
    const staging = new Map<GPUBuffer, number>();
    device.createBuffer = (desc: GPUBufferDescriptor) => {
      const b = create.call(device, desc);
      if (desc.usage & 0x1 /* MAP_READ */) {
        staging.set(b, desc.size);
        const destroy = b.destroy;
        b.destroy = () => {
          staging.delete(b);
          destroy.call(b);
        };
      }
      return b;
    };
    const stagingBytes = () => [...staging.values()].reduce((a, b) => a + b, 0);
    try {
      // Reads of 24 sizes, one after another, then 8 at once.
      for (let i = 1; i <= 24; i++) {
        const t = full([i * 8192], i, { device: small.device });
        expect((await t.data())[i * 8192 - 1]).toBe(i);
        t.dispose();
      }
      const many = Array.from({ length: 8 }, (_, i) => full([65536], i, { device: small.device }));
      expect((await Promise.all(many.map((t) => t.data()))).map((d) => d[65535])).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      many.forEach((t) => t.dispose());
      await small.runtime.sync();
      expect(small.runtime.stats.pooledBytes).toBeLessThanOrEqual(limit);
      expect(stagingBytes()).toBeLessThanOrEqual(limit);
      small.runtime.trimPool();
      expect(small.runtime.stats.pooledBytes).toBe(0);
      expect(stagingBytes()).toBe(0);
    } finally {
      device.createBuffer = create;
      small.gpu.destroy();
    }
  });

  it('past poolLimitBytes the size classes used least recently are destroyed, so steady work after a burst of stale sizes reuses its buffers', async () => {
    const limit = 256 * 1024;
    const own = await initWebGPU({ name: 'webgpu-stale-pool', poolLimitBytes: limit });
    const device = own.gpu;
    const create = device.createBuffer;
    let storageCreates = 0;
    device.createBuffer = (desc: GPUBufferDescriptor) => {
      if (desc.usage & 0x80 /* STORAGE */) storageCreates++;
      return create.call(device, desc);
    };
    try {
      // A burst of sizes that never come back, freed: eight buffers of 28 KiB and one of 20 KiB
      // (size classes both), 244 KiB of the 256: no room for a 32 KiB buffer.
      const burst = [...Array.from({ length: 8 }, () => own.runtime.allocate(28672)), own.runtime.allocate(20480)];
      for (const b of burst) own.runtime.release(b);
      await own.runtime.sync();
      expect(own.runtime.stats.pooledBytes).toBe(8 * 28672 + 20480);
      // The steady work: a 32 KiB tensor made and freed every step.
      const before = storageCreates;
      for (let step = 0; step < 10; step++) {
        const t = full([8192], step, { device: own.device });
        expect((await t.data())[8191]).toBe(step);
        t.dispose();
        await own.runtime.sync();
      }
      // Created once, then taken from the pool (it was created and destroyed every step before).
      expect(storageCreates - before).toBe(1);
      expect(own.runtime.stats.pooledBytes).toBeLessThanOrEqual(limit);
    } finally {
      device.createBuffer = create;
      own.gpu.destroy();
    }
  });

  it('a staging buffer whose mapping fails is destroyed, not left behind or pooled', async () => {
    const own = await initWebGPU({ name: 'webgpu-failed-map', poisonAllocations: true });
    const device = own.gpu;
    const create = device.createBuffer;
    const staging: { buffer: GPUBuffer; destroyed: boolean }[] = [];
    device.createBuffer = (desc: GPUBufferDescriptor) => {
      const b = create.call(device, desc);
      if (desc.usage & 0x1 /* MAP_READ */) {
        const entry = { buffer: b, destroyed: false };
        staging.push(entry);
        // The first staging buffer's mapping is refused, as a map of a destroyed or
        // already-mapped buffer would be.
        if (staging.length === 1) b.mapAsync = () => Promise.reject(new Error('map refused for this test'));
        const destroy = b.destroy;
        b.destroy = () => {
          entry.destroyed = true;
          destroy.call(b);
        };
      }
      return b;
    };
    try {
      const t = full([1000], 3, { device: own.device });
      await expect(t.data()).rejects.toThrow(/reading a result back failed: map refused for this test/);
      expect(staging).toHaveLength(1);
      expect(staging[0]?.destroyed).toBe(true);
      expect(own.runtime.stats.pooledBytes).toBe(0);
      // The next read takes a new staging buffer and works.
      expect((await t.data())[999]).toBe(3);
      expect(staging).toHaveLength(2);
      t.dispose();
    } finally {
      device.createBuffer = create;
      own.gpu.destroy();
    }
  });

  it('views share a reference-counted buffer: memory() counts it once and keeps it for the last view', async () => {
    await gpu.runtime.sync();
    const start = memory();
    const x = tensor(range(12), { shape: [3, 4], device: gpu.device });
    const t = x.transpose();
    const s = x.slice([1, 1], [2, 2]);
    const e = tidy(() => x.reshape([12]).slice([0], [1]).reshape([1, 1]).expand([5, 5]));
    expect(memory().buffers - start.buffers).toBe(1);
    x.dispose();
    expect(await t.toArray()).toEqual([[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]);
    expect(await s.toArray()).toEqual([[5, 6], [9, 10]]);
    expect((await e.data()).every((v) => v === 0)).toBe(true);
    t.dispose();
    s.dispose();
    expect(memory().buffers - start.buffers).toBe(1);
    e.dispose();
    expect(memory().buffers - start.buffers).toBe(0);
    expect(memory().bytes - start.bytes).toBe(0);
  });

  it('reshape of a non-contiguous view materialises it', async () => {
    const x = tensor(range(6), { shape: [2, 3], device: gpu.device });
    expect(await x.transpose().reshape([6]).toArray()).toEqual([0, 3, 1, 4, 2, 5]);
  });
});

describe('the pipeline cache', () => {
  /** A one-line kernel whose source differs per `i` (as kernels with literal shapes differ per shape). */
  const kernelCode = (i: number) => `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < ${i + 1}u) { out[g.x] = f32(${i}); }
}`;

  it('keeps at most pipelineCacheLimit (512 by default) pipelines: a program run at many shapes no longer keeps one per shape', async () => {
    const own = await initWebGPU({ name: 'webgpu-pipeline-default' });
    try {
      const limit = 512;
      const before = own.runtime.stats;
      for (let i = 0; i < limit + 100; i++) own.runtime.pipeline(kernelCode(i), `shape_${i}`);
      await own.runtime.settle();
      const after = own.runtime.stats;
      expect(after.compiles - before.compiles).toBe(limit + 100);
      expect(after.pipelines).toBe(limit);
    } finally {
      own.gpu.destroy();
    }
  });

  it('drops the least recently used pipeline, compiles a dropped one again, and compiled programs keep running', async () => {
    const own = await initWebGPU({ name: 'webgpu-few-pipelines', pipelineCacheLimit: 4 });
    try {
      const { runtime } = own;
      const compiles = () => runtime.stats.compiles - base;
      const base = runtime.stats.compiles;
      const first = Array.from({ length: 4 }, (_, i) => runtime.pipeline(kernelCode(i), `k${i}`));
      expect(compiles()).toBe(4);
      // A hit compiles nothing and returns the same pipeline; kernel 0 becomes the most recently used.
      expect(runtime.pipeline(kernelCode(0), 'k0')).toBe(first[0]);
      expect(compiles()).toBe(4);
      runtime.pipeline(kernelCode(4), 'k4'); // drops kernel 1, the least recently used
      expect(runtime.stats.pipelines).toBe(4);
      expect(runtime.pipeline(kernelCode(0), 'k0')).toBe(first[0]);
      expect(compiles()).toBe(5);
      expect(runtime.pipeline(kernelCode(1), 'k1')).not.toBe(first[1]);
      expect(compiles()).toBe(6);
      await runtime.settle();

      // A jitted function at 8 batch sizes (its kernels have literal shapes): every result right,
      // also when its programs' pipelines have left the runtime's cache.
      const x = (b: number) => tensor(Array.from({ length: b * 3 }, (_, i) => i - 4), { device: own.device }).reshape([b, 3]);
      const f = jit((t: Tensor) => t.mul(2).add(1).relu().sum(1));
      const expected = (b: number) => Array.from({ length: b }, (_, r) => [0, 1, 2].reduce((s, c) => s + Math.max(0, 2 * (r * 3 + c - 4) + 1), 0));
      for (let round = 0; round < 2; round++) {
        for (let b = 1; b <= 8; b++) {
          const input = x(b);
          const y = f(input);
          expect(await y.toArray()).toEqual(expected(b));
          y.dispose();
          input.dispose();
        }
      }
      expect(runtime.stats.pipelines).toBeLessThanOrEqual(4);
      f.clearCache();
    } finally {
      own.gpu.destroy();
    }
  });

  it('pipelineCacheLimit must be an integer >= 1', async () => {
    await expect(initWebGPU({ name: 'webgpu-no-pipelines', pipelineCacheLimit: 0 })).rejects.toThrow('initWebGPU: pipelineCacheLimit must be an integer >= 1, got 0');
  });
});

describe('creation', () => {
  it('full: small constants by upload, large ones by a fill kernel, for every dtype', async () => {
    for (const n of [1, 1023, 5000]) {
      expect([...(await full([n], -2.5, { device: gpu.device }).data())].every((v) => v === -2.5)).toBe(true);
      expect([...(await full([n], 7.9, { device: gpu.device, dtype: 'int32' }).data())].every((v) => v === 7)).toBe(true);
      expect([...(await full([n], 3, { device: gpu.device, dtype: 'bool' }).data())].every((v) => v === 1)).toBe(true);
    }
  });

  it('zero-size tensors flow through kernels and read back empty', async () => {
    const e = tensor(new Float32Array(0), { shape: [0, 3], device: gpu.device });
    expect((await e.exp().data()).length).toBe(0);
    expect(await e.sum(0).toArray()).toEqual([0, 0, 0]);
    expect((await e.transpose().reshape([0]).data()).length).toBe(0);
  });
});

describe('poisoned allocations', () => {
  it('fills fresh output buffers with NaN, so an element no kernel wrote is visible', async () => {
    expect(gpu.runtime.poison).toBe(true);
    // An output handle whose kernel is never run: every element must read as NaN.
    const backend = gpu.backend as unknown as { output(shape: number[], dtype: string): object };
    const handle = backend.output([7], 'float32');
    const values = await gpu.backend.read(handle as never);
    expect([...values].every((v) => Number.isNaN(v))).toBe(true);
    gpu.backend.dispose(handle as never);
  });
});

describe('device loss', () => {
  it('turns into thrown errors naming the loss', async () => {
    const x = tensor([1, 2, 3], { device: gpu.device });
    gpu.gpu.destroy();
    const info = await gpu.gpu.lost;
    expect(info.reason).toBe('destroyed');
    expect(() => x.add(1)).toThrow(/device was lost/);
    await expect(x.data()).rejects.toThrow('this tensor belongs to a WebGPU device that was lost; recreate it');
    // initWebGPU replaces a lost device (with the file's options: gpuDevice poisons allocations).
    const again = await gpuDevice();
    expect(again).not.toBe(gpu);
    expect(await tensor([1, 2], { device: again.device }).mul(3).toArray()).toEqual([3, 6]);
    // The tests after this one (in a shuffled order) run on the new device, not the lost one.
    gpu = again;
  });
});

describe('sizeClass', () => {
  it('rounds up to 16 bytes at least, powers of two to 4 KiB, then quarter steps', () => {
    expect([1, 4, 5, 16].map(sizeClass)).toEqual([16, 16, 16, 16]);
    expect([17, 33, 4095, 4096].map(sizeClass)).toEqual([32, 64, 4096, 4096]);
    // Past 4 KiB: steps of a quarter of the power of two below (1 KiB between 4 and 8 KiB).
    expect([4097, 5120, 5121, 8193].map(sizeClass)).toEqual([5120, 5120, 6144, 10240]);
  });

  it('a one-element tensor holds (and memory() reports) one 16-byte class', async () => {
    await gpu.runtime.sync();
    const before = gpu.runtime.memory;
    const x = tensor([3], { device: gpu.device });
    expect(gpu.runtime.memory).toEqual({ buffers: before.buffers + 1, bytes: before.bytes + 16 });
    expect(await x.toArray()).toEqual([3]);
    x.dispose();
    expect(gpu.runtime.memory).toEqual(before);
  });
});

describe('reference counts', () => {
  it('a storage released once too often changes no count and is pooled once', async () => {
    const own = await initWebGPU({ name: 'webgpu-double-release' });
    try {
      const { runtime } = own;
      const s = runtime.allocate(256);
      runtime.release(s);
      expect(runtime.memory).toEqual({ buffers: 0, bytes: 0 });
      expect(runtime.stats.pooledBytes).toBe(256);
      runtime.release(s); // a second release of the same storage: ignored
      expect(runtime.memory).toEqual({ buffers: 0, bytes: 0 });
      expect(runtime.stats.pooledBytes).toBe(256);
      // The buffer is handed out once: two live storages never share it.
      const a = runtime.allocate(256);
      const b = runtime.allocate(256);
      expect(a.buffer).not.toBe(b.buffer);
      runtime.release(a);
      runtime.release(b);
    } finally {
      own.gpu.destroy();
    }
  });
});

describe('a lost device', () => {
  it('pools nothing that is released after the loss, and reports no memory', async () => {
    const own = await initWebGPU({ name: 'webgpu-lost-release' });
    const { runtime } = own;
    const kept = [runtime.allocate(1024), runtime.allocate(4096)];
    const pooled = runtime.stats.pooledBytes;
    own.gpu.destroy();
    const info = await own.gpu.lost;
    expect(info.reason).toBe('destroyed');
    expect(runtime.isLost).toBe(true);
    // The reason and the device's message, in the property and in the error.
    expect(runtime.lossReason).toBe(`destroyed: ${info.message}`);
    expect(() => runtime.allocate(4)).toThrow(`webgpu: the device was lost (destroyed: ${info.message}); create a new one with initWebGPU`);
    for (const s of kept) runtime.release(s);
    expect(runtime.stats.pooledBytes).toBe(pooled);
    expect(runtime.memory).toEqual({ buffers: 0, bytes: 0 });
  });
});

describe('the pool past its limit', () => {
  it('forgets every byte of a size class it destroys', async () => {
    const own = await initWebGPU({ name: 'webgpu-pool-eviction', poolLimitBytes: 4096 });
    try {
      const { runtime } = own;
      // No kernel recorded: each release pools at once.
      const small = [runtime.allocate(1024), runtime.allocate(1024)];
      for (const s of small) runtime.release(s);
      expect(runtime.stats.pooledBytes).toBe(2048);
      // 2048 + 4096 > 4096: the 1024 class (two buffers) goes, the 4096 buffer is kept.
      const big = runtime.allocate(4096);
      runtime.release(big);
      expect(runtime.stats.pooledBytes).toBe(4096);
      expect(runtime.allocate(4096).buffer).toBe(big.buffer);
      expect(runtime.stats.pooledBytes).toBe(0);
    } finally {
      own.gpu.destroy();
    }
  });
});

describe('kernels and batches', () => {
  it('a kernel that does not compile is refused at once on its next use, with the same error', async () => {
    const own = await initWebGPU({ name: 'webgpu-invalid-kernel' });
    try {
      const bad: KernelSpec = {
        label: 'broken_kernel',
        code: '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name_here; }',
        workgroupSize: [1, 1, 1],
        dispatch: [1, 1, 1],
        uniforms: new Uint32Array(4),
      };
      own.runtime.dispatch(bad, []);
      await expect(own.runtime.sync()).rejects.toThrow(/broken_kernel/);
      const dispatches = own.runtime.stats.dispatches;
      expect(() => own.runtime.dispatch(bad, [])).toThrow(/kernel 'broken_kernel' is invalid:[\s\S]*undefined_name_here/);
      expect(own.runtime.stats.dispatches).toBe(dispatches);
      await own.runtime.sync(); // nothing else was recorded: no error left
    } finally {
      own.gpu.destroy();
    }
  });

  it('submits a batch when it holds maxDispatchesPerBatch dispatches and another comes', async () => {
    const own = await initWebGPU({ name: 'webgpu-two-per-batch', maxDispatchesPerBatch: 2 });
    try {
      const { runtime } = own;
      const s = runtime.allocate(16);
      const submits = runtime.stats.submits;
      runtime.dispatch(fillKernel(4, 1), [s.buffer]);
      runtime.dispatch(fillKernel(4, 2), [s.buffer]);
      expect(runtime.stats.submits).toBe(submits);
      runtime.dispatch(fillKernel(4, 3), [s.buffer]); // the third: the first two are submitted
      expect(runtime.stats.submits).toBe(submits + 1);
      // fillKernel stores a word: read the bits back.
      expect([...new Uint32Array(await runtime.read(s.buffer, 0, 16))]).toEqual([3, 3, 3, 3]);
      runtime.release(s);
    } finally {
      own.gpu.destroy();
    }
  });
});

describe('uploads and readback staging', () => {
  it('uploads a typed array view from its own offset', async () => {
    const host = Float32Array.from({ length: 8 }, (_, i) => i);
    // Through the tensor API, and straight into a storage at a byte offset.
    const x = tensor(host.subarray(4), { device: gpu.device });
    expect(await x.toArray()).toEqual([4, 5, 6, 7]);
    x.dispose();
    // The backend's upload hands the view to the runtime as it is.
    const backend = gpu.backend as unknown as { upload(d: Float32Array, shape: number[], dtype: string): object };
    const h = backend.upload(host.subarray(5), [3], 'float32');
    expect([...(await gpu.backend.read(h as never))]).toEqual([5, 6, 7]);
    gpu.backend.dispose(h as never);
    const s = gpu.runtime.allocate(16);
    gpu.runtime.write(s, new Int32Array([10, 11, 12, 13, 14, 15]).subarray(3, 5), 8);
    expect([...new Int32Array(await gpu.runtime.read(s.buffer, 8, 8))]).toEqual([13, 14]);
    gpu.runtime.release(s);
  });

  it('trimPool destroys pooled staging buffers: the next read maps a new one', async () => {
    const own = await initWebGPU({ name: 'webgpu-staging-trim' });
    try {
      const x = tensor([1, 2, 3], { device: own.device });
      expect(await x.toArray()).toEqual([1, 2, 3]);
      const isStaging = (d: GPUBufferDescriptor) => (d.usage & 0x1) /* MAP_READ */ !== 0;
      // A second read of the same size reuses the pooled staging buffer.
      expect(await countingCreatedBuffers(own.gpu, async (created) => {
        await x.toArray();
        return created();
      }, isStaging)).toBe(0);
      own.runtime.trimPool();
      expect(own.runtime.stats.pooledBytes).toBe(0);
      expect(await countingCreatedBuffers(own.gpu, async (created) => {
        expect(await x.toArray()).toEqual([1, 2, 3]);
        return created();
      }, isStaging)).toBe(1);
      x.dispose();
    } finally {
      own.gpu.destroy();
    }
  });
});

describe('a read that carries the index-error record', () => {
  it('returns exactly the bytes asked for', async () => {
    const s = gpu.runtime.allocate(16);
    gpu.runtime.write(s, new Int32Array([1, 2, 3, 4]));
    // A call that may have written the record (none launched): the next read copies it out too.
    gpu.runtime.runCompiled([], true);
    const bytes = await gpu.runtime.read(s.buffer, 4, 8);
    expect(bytes.byteLength).toBe(8);
    expect([...new Int32Array(bytes)]).toEqual([2, 3]);
    gpu.runtime.release(s);
  });

  it('a gather by computed indices reads back its own elements only', async () => {
    const x = tensor([10, 20, 30], { device: gpu.device });
    // Computed on the device: no host copy, so the gather reports bad indices through the record.
    const idx = tensor([2, 0], { dtype: 'int32', device: gpu.device }).add(0);
    const y = x.indexSelect(0, idx);
    expect([...(await y.data())]).toEqual([30, 10]);
    for (const t of [x, idx, y]) t.dispose();
  });
});
