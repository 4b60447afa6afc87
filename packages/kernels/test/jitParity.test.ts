// Every primitive compiled by jit on WebGPU, against the CPU reference: the same cases and the
// same per-op tolerances as the eager parity test (parityCases.ts), with sums held to the depth
// of the compiled reduction kernels. A one-primitive program still goes through the fusion
// planner and the WGSL writer (an elementwise op is computed inline by the kernel that stores
// its result; movement ops are index arithmetic; views given as arguments are copied first).

import { beforeAll, describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { PRIMITIVES, type Primitive, type Tensor, apply } from '@scorch/tensor';
import { compiledReductionDepth } from '@scorch/kernels';
import { gpuDevice } from './helpers.js';
import { checkParity, parityCases } from './parityCases.js';

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
          const compiled = jit((...xs: Tensor[]) => apply(prim, xs, c.params(gpu) as never));
          await checkParity(prim, c, gpu, (inputs) => compiled(...inputs), 'under jit');
          compiled.clearCache();
        });
      }
    });
  }
});
