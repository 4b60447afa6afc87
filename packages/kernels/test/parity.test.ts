// Backend parity, generated from the primitive table: every primitive in PRIMITIVES has cases
// (parityCases.ts: its typed table fails to compile without them, and the loop fails at run
// time), each run on the CPU reference and on the GPU from the same fresh random inputs, in
// awkward shapes (1, 7, 33, 257, 1023), as broadcast, permuted and sliced views, with GPU outputs
// poisoned with NaN so an unwritten element fails. The tolerances are derived in parityCases.ts.

import { beforeAll, describe, expect, it } from 'vitest';
import { PRIMITIVES, type Primitive, apply } from '@scorch/tensor';
import { reductionPlan } from '@scorch/kernels';
import { RUN_SEED, firstMismatch, gpuDevice, hashSeed, hostRandom, makeInput } from './helpers.js';
import { type Context, type ParityCase, parityCases } from './parityCases.js';

const CASES = parityCases((outputs, extent) => reductionPlan(outputs, extent).depth);

let gpu = 'webgpu';
beforeAll(async () => {
  gpu = (await gpuDevice()).device;
});

describe('parity with the CPU reference, per primitive', () => {
  for (const prim of PRIMITIVES) {
    const cases = (CASES as Partial<Record<Primitive, readonly ParityCase[]>>)[prim];
    describe(prim, () => {
      it('has parity cases', () => {
        expect(cases?.length ?? 0, `primitive '${prim}' has no parity case in packages/kernels/test/parityCases.ts`).toBeGreaterThan(0);
      });
      for (const c of cases ?? []) {
        it(c.name, async () => {
          const rnd = hostRandom(hashSeed(prim, c.name));
          const built = c.inputs.map((spec) => makeInput(spec, gpu, rnd));
          const cpuInputs = built.map((b) => b.cpu);
          const cpuOut = apply(prim, cpuInputs, c.params('cpu') as never);
          const gpuOut = apply(prim, built.map((b) => b.gpu), c.params(gpu) as never);
          expect(gpuOut.device).toBe(gpu);
          expect(gpuOut.shape).toEqual(cpuOut.shape);
          expect(gpuOut.dtype).toBe(cpuOut.dtype);
          const reference = cpuOut.dataSync();
          const actual = await gpuOut.data();
          const ctx: Context = { inputs: cpuInputs.map((t) => t.dataSync()), cpuInputs, params: c.params('cpu'), outShape: cpuOut.shape };
          const mismatch = firstMismatch(reference, actual, c.tolerance(ctx));
          expect(mismatch, `${prim} ${c.name} (seed ${RUN_SEED})`).toBeNull();
          for (const t of [...built.flatMap((b) => [b.cpu, b.gpu]), cpuOut, gpuOut]) t.dispose();
        });
      }
    });
  }
});
