// Shapes at the WebGPU backend's limits, against the CPU reference: at most 65,535 workgroups
// along one dispatch dimension, so a grid of more tiles than that along one side must be folded.
//
// Matmul tolerance per output (as in matmul.test.ts): the GPU sums K products in float32,
// |error| ≤ K·2^-24·Σ|a||b|; the CPU rounds once (≤ 1/2 ULP), so K·2^-24·Σ|a||b| + 1 ULP.

import { beforeAll, describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { type Tensor, matmul, sizeOf, tensor } from '@scorch/tensor';
import { type WebGPUHandle, VEC4_BLOCKING, chooseTiling, initWebGPU } from '@scorch/kernels';
import { FLUSH_FLOOR, RUN_SEED, firstMismatch, gpuDevice, hashSeed, hostRandom, ulp } from './helpers.js';

/** Workgroups along one dispatch dimension at most (WebGPU's default limit). */
const MAX_WORKGROUPS_PER_DIM = 65535;

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});

/** Uniform values in [-1, 1) (cheap to make by the million), on the CPU and on the GPU. */
function pair(shape: readonly number[], seed: number): { cpu: Tensor; gpu: Tensor } {
  const rnd = hostRandom(seed);
  const data = new Float32Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = Math.fround(2 * rnd() - 1);
  return { cpu: tensor(data, { shape }), gpu: tensor(data, { shape, device: gpu.device }) };
}

async function expectProduct(a: { cpu: Tensor; gpu: Tensor }, b: { cpu: Tensor; gpu: Tensor }, compiled: boolean, what: string): Promise<void> {
  const reference = matmul(a.cpu, b.cpu).dataSync();
  const bound = matmul(a.cpu.abs(), b.cpu.abs()).dataSync();
  const k = a.cpu.shape[a.cpu.rank - 1]!;
  const out = compiled ? (jit((x: Tensor, y: Tensor) => matmul(x, y))(a.gpu, b.gpu) as Tensor) : matmul(a.gpu, b.gpu);
  const mismatch = firstMismatch(reference, await out.data(), (i, r) => k * 2 ** -24 * bound[i]! + ulp(r) + FLUSH_FLOOR);
  expect(mismatch, `${what}${compiled ? ' (jit)' : ''} (seed ${RUN_SEED})`).toBeNull();
}

describe('matmul with more than 65,535 tiles along one side', () => {
  // The register-blocked kernel: 32 rows of C per workgroup, so one more row than 32·65,535.
  const rows = VEC4_BLOCKING.rows * MAX_WORKGROUPS_PER_DIM + 1;
  for (const compiled of [false, true]) {
    it(`[${rows},8]·[8,8] (vec4 kernel)${compiled ? ', compiled' : ''}`, async () => {
      await expectProduct(pair([rows, 8], hashSeed('tall', compiled)), pair([8, 8], hashSeed('tall b', compiled)), compiled, `[${rows},8]·[8,8]`);
    });
  }

  it('[1,2]·[2,N] with one more column than 64·65,535 (tiled kernel)', async () => {
    // One row takes the 4×64 skinny tiles; K = 2 is not a multiple of 4, so not the vec4 kernel.
    const tiling = chooseTiling(1, 1, 1);
    const cols = tiling.tileN * MAX_WORKGROUPS_PER_DIM + 1;
    await expectProduct(pair([1, 2], hashSeed('wide a')), pair([2, cols], hashSeed('wide b')), false, `[1,2]·[2,${cols}]`);
  });
});

describe('reductions over an extent near 2^32 (a broadcast view)', () => {
  // 2^32 − 256 ones: every partial sum is a multiple of 256 below 2^32, so exact in float32 (its
  // ULP there is 256), and the sum is exactly the extent, as on the CPU (float64, rounded once).
  // The cooperative pass splits the extent into 2048 chunks of 2^21, the last one ending at 2^32.
  const extent = 2 ** 32 - 256;
  for (const compiled of [false, true]) {
    it(`sums [${extent}] ones exactly${compiled ? ', compiled' : ''}`, async () => {
      const one = tensor([1], { device: gpu.device });
      const sum = (x: Tensor) => x.expand([extent]).sum();
      const out = compiled ? (jit(sum)(one) as Tensor) : sum(one);
      expect([...(await out.data())]).toEqual([extent]);
    });
  }
});

describe('an extent of 2^32 or more', () => {
  // Index arithmetic is u32: a view of 2^32 elements (a broadcast) is refused, eagerly and compiled, by the same clear error.
  it('is refused by name, eagerly and compiled', async () => {
    const one = tensor([1], { device: gpu.device });
    const sum = (x: Tensor) => x.expand([2 ** 32]).sum();
    expect(() => sum(one)).toThrow('webgpu: uniform value 4294967296 does not fit an unsigned 32-bit word (is a tensor larger than 2^32 elements?)');
    expect(() => jit(sum)(one)).toThrow('webgpu: constant 4294967296 of a compiled kernel does not fit an unsigned 32-bit word (is a tensor larger than 2^32 elements?)');
    // The device is still usable afterwards.
    expect([...(await (jit((x: Tensor) => x.mul(3))(one) as Tensor).data())]).toEqual([3]);
  });
});

describe('a compiled kernel\'s uniform block', () => {
  // Each value a kernel stores has its offset in a word of the kernel's uniform block. On a
  // hardware adapter an elementwise kernel takes every stored value of one shape, so a program
  // returning thousands of them (Adam over a large parameter tree) made a block past the device's
  // maxUniformBufferBindingSize, which failed only when bound, in Dawn's words. Lowered on the
  // hardware path; pipelines are not compiled (llvmpipe takes minutes over kernels this long):
  // what is checked is the lowering, whose uniform block each kernel's source declares.
  it('fits maxUniformBufferBindingSize: a kernel storing more values than it holds is split', async () => {
    const h = await initWebGPU({ name: 'webgpu-uniform-limits', limits: 'defaults' });
    const backend = h.backend as unknown as { softwareAdapter: boolean };
    const runtime = h.runtime as unknown as { pipeline: (code: string, label: string) => unknown };
    const saved = { softwareAdapter: backend.softwareAdapter, pipeline: runtime.pipeline };
    backend.softwareAdapter = false;
    runtime.pipeline = (code, label) => ({ pipeline: null, layout: null, written: new Set(), code, label });
    try {
      const limit = h.gpu.limits.maxUniformBufferBindingSize;
      const n = Math.ceil(limit / 4) + 8; // one word per result: past the limit in one kernel
      const x = tensor(new Float32Array(4 * n), { shape: [4 * n], device: h.device });
      const lowered = jit((v: Tensor) => Array.from({ length: n }, (_, i) => v.slice([4 * i], [4]).mul(2))).lower(x);
      const kernels = lowered.kernels();
      const blockBytes = kernels.map((k) => 16 * Number(/array<vec4<u32>, (\d+)>/.exec(k.source)?.[1] ?? 0));
      expect(kernels.length).toBeGreaterThanOrEqual(2);
      expect(Math.max(...blockBytes)).toBeLessThanOrEqual(limit);
      expect(new Set(kernels.flatMap((k) => k.equations)).size).toBe(lowered.program.equations.length); // all of the program
    } finally {
      Object.assign(backend, { softwareAdapter: saved.softwareAdapter });
      runtime.pipeline = saved.pipeline;
    }
  });
});
