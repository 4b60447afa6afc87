// The path a hardware GPU takes, forced on the software adapter the tests run on: llvmpipe is
// detected as software (backend.softwareAdapter), and then a compiled program's large matmuls
// keep no epilogue (compiles there are slow) and register-blocked matmuls shrink their blocks at
// another workgroup count (vec4MinWorkgroups). Here both are set as on a hardware adapter, so
// the fused matmul epilogues and the tilings a real GPU runs are checked against eager WebGPU.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { type Tensor, matmul, tensor, tidy } from '@scorch/tensor';
import { type WebGPUHandle, MIN_WORKGROUPS } from '@scorch/kernels';
import { RUN_SEED, firstMismatch, gpuDevice, hashSeed, hostRandom, ulp } from './helpers.js';

let gpu: WebGPUHandle;
let dev = 'webgpu';
let saved: { softwareAdapter: boolean; vec4MinWorkgroups: number };
beforeAll(async () => {
  gpu = await gpuDevice();
  dev = gpu.device;
  const backend = gpu.backend as unknown as { softwareAdapter: boolean; vec4MinWorkgroups: number };
  saved = { softwareAdapter: backend.softwareAdapter, vec4MinWorkgroups: backend.vec4MinWorkgroups };
  backend.softwareAdapter = false;
  backend.vec4MinWorkgroups = MIN_WORKGROUPS;
});
afterAll(() => {
  Object.assign(gpu.backend, saved);
});

const read = async (t: Tensor) => Array.from(await t.data());
const u = 2 ** -24;

/** Host data in [lo, lo + width), float32. */
function data(n: number, rnd: () => number, lo = -2, width = 4): Float32Array {
  return Float32Array.from({ length: n }, () => Math.fround(lo + rnd() * width));
}

describe('an anchor kernel with an epilogue binds no more buffers than the device allows', () => {
  // Each consumer p + xᵢ of the product (or reduction) p joined its kernel as an epilogue, one
  // read and one store each, with no count of the buffers: past the device's limit the kernel
  // could not be made ("binds 24 buffers, more than the 16 this device allows").
  const anchors: [string, number, (a: Tensor, b: Tensor) => Tensor][] = [
    ['a tiled matmul', 64, (a, b) => matmul(a, b)],
    ['a dot-product kernel', 4, (a, b) => matmul(a, b)],
    ['a reduction', 8, (a, b) => a.reshape([a.shape[0]!, 32, 1]).mul(b.reshape([1, 32, 64])).sum(1)],
  ];
  for (const [name, m, product] of anchors) {
    it(`${name} with more consumers than bindings`, async () => {
      const limit = gpu.runtime.device.limits.maxStorageBuffersPerShaderStage;
      const rnd = hostRandom(hashSeed('hardware-path-bindings', name));
      const a = tensor(data(m * 32, rnd, -0.5, 1), { shape: [m, 32], device: dev });
      const b = tensor(data(32 * 64, rnd, -0.5, 1), { shape: [32, 64], device: dev });
      const xs = Array.from({ length: limit + 4 }, () => tensor(data(m * 64, rnd), { shape: [m, 64], device: dev }));
      const f = (a: Tensor, b: Tensor, ...xs: Tensor[]) => {
        const p = product(a, b);
        return xs.map((x) => p.add(x));
      };
      const got = jit(f)(a, b, ...xs);
      const want = tidy(() => f(a, b, ...xs));
      // p sums 32 terms of |aₖbₖ| ≤ ¼ in another order: each within 32·u·8 of the exact sum, and
      // p + x (|p + x| ≤ 10) one rounding more.
      const bound = 2 * 32 * u * 8 + ulp(10);
      for (let i = 0; i < want.length; i++) {
        expect(firstMismatch(await read(want[i]!), await read(got[i]!), () => bound), `consumer ${i} (seed ${RUN_SEED})`).toBeNull();
      }
    });
  }
});
