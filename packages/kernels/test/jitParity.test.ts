// Every primitive compiled by jit on WebGPU, against the CPU reference: the same cases and the
// same per-op tolerances as the eager parity test (parityCases.ts), with sums held to the depth
// of the compiled reduction kernels. A one-primitive program still goes through the fusion
// planner and the WGSL writer (an elementwise op is computed inline by the kernel that stores
// its result; movement ops are index arithmetic; views given as arguments are copied first).

import { beforeAll, describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { PRIMITIVES, type Primitive, type Tensor, apply, broadcastTo } from '@scorch/tensor';
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

describe('compiled float32 sums as accurate as the eager kernels', () => {
  // Each serial thread (many outputs) and pass 2 (a long extent's chunk partials) once added
  // every term to one running sum: within the n·u bound, but 10–250× less accurate than the
  // eager tree on the same device. Summed in blocks, the chain is BLOCK + n/BLOCK long.
  const u = 2 ** -24;
  it('a row sum of [1024, 16384] float32 0.1s (one thread per row)', async () => {
    const x = apply('full', [], { shape: [1024, 16384], value: 0.1, dtype: 'float32', device: gpu } as never) as Tensor;
    const rows = jit((v: Tensor) => v.sum(1));
    const got = Array.from(await rows(x).data());
    const exact = 16384 * Math.fround(0.1);
    const depth = compiledReductionDepth(1024, 16384);
    expect(depth).toBeLessThanOrEqual(64 + 256);
    const worst = Math.max(...got.map((g) => Math.abs(g - exact)));
    expect(worst).toBeLessThanOrEqual(depth * u * exact);
    x.dispose();
  });
  it('the sum of 3·2²³ + 1 ones (chunks combined in pass 2)', async () => {
    const n = 3 * 2 ** 23 + 1;
    const one = apply('full', [], { shape: [1], value: 1, dtype: 'float32', device: gpu } as never) as Tensor;
    const total = jit((v: Tensor) => broadcastTo(v, [n]).sum());
    const got = (await total(one).data())[0]!;
    // Within the compiled depth's bound, which is now below eager's 322 here (it was 1,223).
    const depth = compiledReductionDepth(1, n);
    expect(depth).toBeLessThan(322);
    expect(Math.abs(got - n)).toBeLessThanOrEqual(depth * u * n);
    one.dispose();
  });
});
