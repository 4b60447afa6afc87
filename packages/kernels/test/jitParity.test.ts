// Every primitive compiled by jit on WebGPU, against the CPU reference: the same cases and the
// same per-op tolerances as the eager parity test (parityCases.ts), with sums held to the depth
// of the compiled reduction kernels. A one-primitive program still goes through the fusion
// planner and the WGSL writer (an elementwise op is computed inline by the kernel that stores
// its result; movement ops are index arithmetic; views given as arguments are copied first).

import { beforeAll, describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { PRIMITIVES, type Primitive, type Tensor, apply } from '@scorch/tensor';
import { compiledReductionDepth } from '@scorch/kernels';
import { RUN_SEED, firstMismatch, gpuDevice, hashSeed, hostRandom, makeInput } from './helpers.js';
import { type Context, parityCases } from './parityCases.js';

const CASES = parityCases(compiledReductionDepth);

let gpu = 'webgpu';
beforeAll(async () => {
  gpu = (await gpuDevice()).device;
});

describe('parity of compiled programs with the CPU reference, per primitive', () => {
  for (const prim of PRIMITIVES) {
    describe(prim, () => {
      for (const c of CASES[prim as Primitive]) {
        it(c.name, async () => {
          const rnd = hostRandom(hashSeed('jit', prim, c.name));
          const built = c.inputs.map((spec) => makeInput(spec, gpu, rnd));
          const cpuInputs = built.map((b) => b.cpu);
          const cpuOut = apply(prim, cpuInputs, c.params('cpu') as never);
          const compiled = jit((...xs: Tensor[]) => apply(prim, xs, c.params(gpu) as never));
          const gpuOut = compiled(...built.map((b) => b.gpu));
          expect(gpuOut.device).toBe(gpu);
          expect(gpuOut.shape).toEqual(cpuOut.shape);
          expect(gpuOut.dtype).toBe(cpuOut.dtype);
          const reference = cpuOut.dataSync();
          const actual = await gpuOut.data();
          const ctx: Context = { inputs: cpuInputs.map((t) => t.dataSync()), cpuInputs, params: c.params('cpu'), outShape: cpuOut.shape };
          expect(firstMismatch(reference, actual, c.tolerance(ctx)), `${prim} ${c.name} under jit (seed ${RUN_SEED})`).toBeNull();
          compiled.clearCache();
          for (const t of [...built.flatMap((b) => [b.cpu, b.gpu]), cpuOut, gpuOut]) t.dispose();
        });
      }
    });
  }
});
