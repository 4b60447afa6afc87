// The device: found on this machine (llvmpipe through Dawn's OpenGL backend when there is no
// GPU), registered as a tensor device, idempotent, strict about its options, and running in a
// mode all kernels support.

import { describe, expect, it } from 'vitest';
import { CpuBackend, arange, eye, full, getBackend, linspace, listDevices, ones, rand, randomKey, tensor, zeros } from '@scorch/tensor';
import { GpuRuntime, acquireDevice, initWebGPU } from '@scorch/kernels';
import { create } from 'webgpu';
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

  it('is idempotent: later calls share the open device when their options agree with it', async () => {
    const a = await gpuDevice(); // opened with poisonAllocations: true
    expect(await initWebGPU()).toBe(a);
    // Given options equal to the open device's, defaults included, are fine.
    expect(await initWebGPU({ poisonAllocations: true, maxDispatchesPerBatch: 64, limits: 'adapter', forceCompatibility: false })).toBe(a);
  });

  it('refuses, rather than ignores, options that differ from the open device\'s', async () => {
    const a = await gpuDevice();
    await expect(initWebGPU({ poisonAllocations: false })).rejects.toThrow(
      "initWebGPU: device 'webgpu' is already open with poisonAllocations = true; this call asks for poisonAllocations = false. " +
        'Options take effect when a device opens: omit them to share the open device, or pass another name to open a second one.',
    );
    await expect(initWebGPU({ maxDispatchesPerBatch: 8 })).rejects.toThrow('already open with maxDispatchesPerBatch = 64; this call asks for maxDispatchesPerBatch = 8');
    await expect(initWebGPU({ limits: 'defaults' })).rejects.toThrow('already open with limits = "adapter"; this call asks for limits = "defaults"');
    await expect(initWebGPU({ gpu: { requestAdapter: async () => null } as unknown as GPU })).rejects.toThrow('already open with gpu = unset; this call asks for gpu = an object');
    expect(a.runtime.poison).toBe(true);
    expect(await initWebGPU()).toBe(a);
  });

  it('compares functions and objects by identity', async () => {
    const named = await initWebGPU({ name: 'webgpu-own-dawn', dawnCreate: create });
    expect(await initWebGPU({ name: 'webgpu-own-dawn', dawnCreate: create })).toBe(named);
    await expect(initWebGPU({ name: 'webgpu-own-dawn', dawnCreate: (flags) => create(flags) })).rejects.toThrow(
      "initWebGPU: device 'webgpu-own-dawn' is already open with dawnCreate = a function; this call asks for dawnCreate = a different function.",
    );
  });
});

describe('initWebGPU options', () => {
  it('rejects unknown keys, listing the valid ones', async () => {
    await expect(initWebGPU({ poisonAllocation: true } as never)).rejects.toThrow(
      "initWebGPU: unknown option 'poisonAllocation' (did you mean 'poisonAllocations'?); valid options: " +
        'name, gpu, dawnCreate, forceCompatibility, limits, maxDispatchesPerBatch, poolLimitBytes, poisonAllocations, pipelineCacheLimit',
    );
    await expect(initWebGPU('webgpu' as never)).rejects.toThrow('initWebGPU: expected an options object, got string');
  });

  it('acquireDevice and GpuRuntime reject unknown keys too, each listing its own', async () => {
    await expect(acquireDevice({ forceCompatability: true } as never)).rejects.toThrow(
      "acquireDevice: unknown option 'forceCompatability' (did you mean 'forceCompatibility'?); valid options: gpu, dawnCreate, forceCompatibility, limits",
    );
    // A runtime option is not a device request: it takes effect only through initWebGPU or GpuRuntime.
    await expect(acquireDevice({ poolLimitBytes: 0 } as never)).rejects.toThrow("acquireDevice: unknown option 'poolLimitBytes'");
    expect(() => new GpuRuntime({} as never, { poolLimit: 0 } as never)).toThrow(
      "GpuRuntime: unknown option 'poolLimit' (did you mean 'poolLimitBytes'?); valid options: maxDispatchesPerBatch, poolLimitBytes, poisonAllocations, pipelineCacheLimit",
    );
  });

  it('rejects values out of their range or set', async () => {
    for (const bad of [-5, 0, 1.5, Number.NaN]) {
      await expect(initWebGPU({ maxDispatchesPerBatch: bad })).rejects.toThrow(`initWebGPU: maxDispatchesPerBatch must be an integer >= 1, got ${bad}`);
    }
    await expect(initWebGPU({ poolLimitBytes: -1 })).rejects.toThrow('initWebGPU: poolLimitBytes must be an integer >= 0, got -1');
    await expect(initWebGPU({ limits: 'max' as never })).rejects.toThrow(`initWebGPU: unknown limits "max"; expected one of 'adapter', 'defaults'`);
    await expect(initWebGPU({ poisonAllocations: 'yes' as never })).rejects.toThrow('initWebGPU: poisonAllocations must be true or false, got "yes"');
    await expect(initWebGPU({ forceCompatibility: 1 as never })).rejects.toThrow('initWebGPU: forceCompatibility must be true or false, got 1');
    await expect(initWebGPU({ dawnCreate: 'webgpu' as never })).rejects.toThrow("initWebGPU: dawnCreate must be Dawn's create(flags) function");
    await expect(initWebGPU({ gpu: {} as never })).rejects.toThrow('initWebGPU: gpu must be a GPU object (with requestAdapter)');
    await expect(initWebGPU({ name: '' })).rejects.toThrow('initWebGPU: name must be a non-empty string (the tensor device name), got an empty string');
    await expect(initWebGPU({ name: 3 as never })).rejects.toThrow('initWebGPU: name must be a non-empty string (the tensor device name), got 3');
    // Nothing was opened or registered under a bad name.
    expect(listDevices().filter((d) => d === '' || d === '3')).toEqual([]);
  });

  it('will not replace a backend that is not WebGPU', async () => {
    const cpu = getBackend('cpu');
    await expect(initWebGPU({ name: 'cpu' })).rejects.toThrow(
      "initWebGPU: the device name 'cpu' belongs to a registered backend that is not WebGPU; pass another name (the default is 'webgpu')",
    );
    expect(getBackend('cpu')).toBe(cpu);
    expect(cpu).toBeInstanceOf(CpuBackend);
    expect(await tensor([1, 2]).mul(2).toArray()).toEqual([2, 4]);
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

describe('creation of a dtype the device lacks', () => {
  it('is refused by the function called, saying what the device supports', async () => {
    const { device } = await gpuDevice();
    const opts = { dtype: 'float64', device } as const;
    // The backend's upload named itself ('webgpu upload'), and arange, linspace and eye, which
    // build their values on the host, said it too.
    const cases: [string, () => unknown][] = [
      ['tensor', () => tensor([1.5], opts)],
      ['tensor', () => tensor(new Float64Array(3), { device })],
      ['zeros', () => zeros([2], opts)],
      ['ones', () => ones([2], opts)],
      ['full', () => full([3], 2, opts)],
      ['arange', () => arange(0, 3, 1, opts)],
      ['linspace', () => linspace(0, 1, 3, opts)],
      ['eye', () => eye(3, opts)],
    ];
    for (const [name, make] of cases) {
      expect(make).toThrow(`${name}: device '${device}' does not support dtype float64 (it supports float32, int32, bool)`);
    }
  });
});

// acquireDevice against a stand-in GPU: an adapter that records what was asked of it.
const WANTED = {
  maxStorageBuffersPerShaderStage: 10,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
  maxComputeWorkgroupSizeY: 512,
  maxComputeWorkgroupStorageSize: 32768,
  maxStorageBufferBindingSize: 2 ** 30,
  maxBufferSize: 2 ** 31,
  maxUniformBufferBindingSize: 65536,
};
function fakeAdapter(features: string[]) {
  const deviceRequests: GPUDeviceDescriptor[] = [];
  const adapter = {
    features: new Set(features),
    // maxBindGroups is one the kernels do not ask to raise.
    limits: { ...WANTED, maxBindGroups: 8 },
    info: { vendor: 'stand-in vendor', architecture: 'none', device: 'stand-in', description: 'stand-in adapter' },
    requestDevice: async (d: GPUDeviceDescriptor) => {
      deviceRequests.push(d);
      return { label: 'stand-in device' };
    },
  } as unknown as GPUAdapter;
  return { adapter, deviceRequests };
}
function fakeGpu(answer: (opts: GPURequestAdapterOptions) => GPUAdapter | null) {
  const adapterRequests: GPURequestAdapterOptions[] = [];
  const gpu = {
    requestAdapter: async (opts: GPURequestAdapterOptions) => {
      adapterRequests.push(opts);
      return answer(opts);
    },
  } as unknown as GPU;
  return { gpu, adapterRequests };
}

describe('acquireDevice', () => {
  it('forceCompatibility asks only for a compatibility adapter; one with core-features-and-limits is core', async () => {
    for (const [features, level] of [[['core-features-and-limits'], 'core'], [[], 'compatibility']] as const) {
      const { adapter } = fakeAdapter([...features]);
      const { gpu, adapterRequests } = fakeGpu(() => adapter);
      const got = await acquireDevice({ gpu, forceCompatibility: true });
      expect(adapterRequests).toEqual([{ featureLevel: 'compatibility' }]);
      expect(got.adapter).toBe(adapter);
      expect(got.info.featureLevel).toBe(level);
    }
  });

  it("limits 'adapter' raises exactly the wanted limits to the adapter's; 'defaults' asks for none; timestamp queries when offered", async () => {
    const raised = fakeAdapter(['timestamp-query']);
    await acquireDevice({ gpu: fakeGpu(() => raised.adapter).gpu });
    expect(raised.deviceRequests).toHaveLength(1);
    expect(raised.deviceRequests[0]?.requiredLimits).toEqual(WANTED);
    expect(raised.deviceRequests[0]?.requiredFeatures).toEqual(['timestamp-query']);
    const plain = fakeAdapter([]);
    await acquireDevice({ gpu: fakeGpu(() => plain.adapter).gpu, limits: 'defaults' });
    expect(plain.deviceRequests[0]?.requiredLimits).toEqual({});
    expect(plain.deviceRequests[0]?.requiredFeatures).toEqual([]);
  });

  it('names what requestAdapter threw in the error', async () => {
    const { gpu } = fakeGpu(() => {
      throw new Error('driver said no');
    });
    await expect(acquireDevice({ gpu })).rejects.toThrow(
      'Tried: the given GPU object, core features: requestAdapter threw driver said no; the given GPU object, compatibility mode: requestAdapter threw driver said no.',
    );
  });

  it("reports Dawn's OpenGL fallback as backend 'opengl'", async () => {
    const { adapter } = fakeAdapter([]);
    const flagsSeen: string[][] = [];
    const dawnCreate = (flags: string[]) => {
      flagsSeen.push(flags);
      // No core adapter: only the OpenGL backend answers.
      return fakeGpu(() => (flags.includes('backend=opengl') ? adapter : null)).gpu;
    };
    const got = await acquireDevice({ dawnCreate });
    expect(flagsSeen.map((f) => f.includes('backend=opengl'))).toEqual([false, true]);
    expect(got.info).toEqual({
      vendor: 'stand-in vendor', architecture: 'none', device: 'stand-in', description: 'stand-in adapter', backend: 'opengl', featureLevel: 'compatibility',
    });
  });

  it('goes on to the next attempt when an adapter cannot make its device, and names why if none can', async () => {
    // A core adapter whose requestDevice rejects (a broken driver): the error came straight out,
    // and the OpenGL attempt that would have worked was never made.
    const broken = fakeAdapter([]);
    (broken.adapter as unknown as { requestDevice: () => Promise<never> }).requestDevice = async () => {
      throw new Error('driver refused the device');
    };
    const working = fakeAdapter([]);
    const dawnCreate = (flags: string[]) => fakeGpu(() => (flags.includes('backend=opengl') ? working.adapter : broken.adapter)).gpu;
    const got = await acquireDevice({ dawnCreate });
    expect(got.adapter).toBe(working.adapter);
    expect(got.info.backend).toBe('opengl');
    // Every attempt's device refused: the error lists each with the reason.
    await expect(acquireDevice({ gpu: fakeGpu(() => broken.adapter).gpu })).rejects.toThrow(
      'Tried: the given GPU object, core features: requestDevice threw driver refused the device; the given GPU object, compatibility mode: requestDevice threw driver refused the device.',
    );
  });
});
