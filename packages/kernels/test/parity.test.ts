// Backend parity, generated from the primitive table: every primitive in PRIMITIVES has cases
// (parityCases.ts: its typed table fails to compile without them, and the loop fails at run
// time), each run on the CPU reference and on the GPU from the same fresh random inputs, in
// awkward shapes (1, 7, 33, 257, 1023), as broadcast, permuted and sliced views, with GPU outputs
// poisoned with NaN so an unwritten element fails. The tolerances are derived in parityCases.ts.

import { beforeAll, describe, expect, it } from 'vitest';
import { PRIMITIVES, type Primitive, apply } from '@scorch/tensor';
import { reductionPlan } from '@scorch/kernels';
import { gpuDevice } from './helpers.js';
import { type ParityCase, checkParity, parityCases } from './parityCases.js';

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
        it(c.name, () => checkParity(prim, c, gpu, (inputs, params) => apply(prim, inputs, params as never), 'eager'));
      }
    });
  }
});
