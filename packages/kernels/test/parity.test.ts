// Backend parity, generated from the primitive table: every primitive in PRIMITIVES has cases
// (parityCases.ts: its typed table fails to compile without them, and the loop fails at run
// time), each run on the CPU reference and on the GPU from the same fresh random inputs, in
// awkward shapes (1, 7, 33, 257, 1023), as broadcast, permuted and sliced views, with GPU outputs
// poisoned with NaN so an unwritten element fails. The tolerances are derived in parityCases.ts.

import { beforeAll, describe, expect, it } from 'vitest';
import { PRIMITIVES, type Primitive, apply } from '@scorch/tensor';
import { AXIS_SPAN, reductionPlan } from '@scorch/kernels';
import { firstMismatch, gpuDevice, hostRandom, makeInput } from './helpers.js';
import { type Context, type ParityCase, checkParity, parityCases, scanLines } from './parityCases.js';

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

// Meta-check: the scan tolerances can fail. A wrong carry between launches (the previous launch's
// last output read one position off) makes the walk drop, or repeat, the element at step
// AXIS_SPAN (2^14) of every line. Simulated on the real WebGPU output of the table's long cases
// (which must itself pass), the comparison must reject both. The inputs come from fixed seeds, not
// the run's: an element of the table's kind is rarely small enough to hide (cumsum: |x| below the
// bound's ~0.1-0.2 at that step; cumprod: x ≈ +1 within k·u ≈ 1e-3), and fixed seeds keep that
// chance out of the run.
describe('the scan tolerances reject a dropped or repeated element at a launch edge', () => {
  for (const prim of ['cumsum', 'cumprod'] as const) {
    for (const name of ['[2,20000] axis 1', '[20000,2] axis 0 reverse']) {
      it(`${prim} ${name}`, async () => {
        const c = CASES[prim].find((k) => k.name === name)!;
        for (const seed of [1, 2, 3]) {
          const input = makeInput(c.inputs[0]!, gpu, hostRandom(seed));
          const params = c.params('cpu') as { axis: number; reverse: boolean };
          const cpuOut = apply(prim, [input.cpu], params);
          const reference = cpuOut.dataSync();
          const gpuOut = apply(prim, [input.gpu], c.params(gpu) as never);
          const actual = await gpuOut.data();
          const x = input.cpu.dataSync();
          const ctx: Context = { inputs: [x], cpuInputs: [input.cpu], reference, params, outShape: cpuOut.shape };
          const tolerance = c.tolerance(ctx);
          expect(firstMismatch(reference, actual, tolerance), `${prim} ${name}, seed ${seed}: the real output`).toBeNull();
          const combine = (a: number, b: number) => Math.fround(prim === 'cumsum' ? a + b : a * b);
          const dropped = Float32Array.from(actual);
          const repeated = Float32Array.from(actual);
          for (const line of scanLines(cpuOut.shape, params.axis, params.reverse)) {
            let skip = actual[line[AXIS_SPAN - 1]!]!;
            let twice = combine(actual[line[AXIS_SPAN]!]!, x[line[AXIS_SPAN]!]!);
            dropped[line[AXIS_SPAN]!] = skip;
            repeated[line[AXIS_SPAN]!] = twice;
            for (let s = AXIS_SPAN + 1; s < line.length; s++) {
              skip = combine(skip, x[line[s]!]!);
              twice = combine(twice, x[line[s]!]!);
              dropped[line[s]!] = skip;
              repeated[line[s]!] = twice;
            }
          }
          expect(firstMismatch(reference, dropped, tolerance), `${prim} ${name}, seed ${seed}: element ${AXIS_SPAN} dropped`).not.toBeNull();
          expect(firstMismatch(reference, repeated, tolerance), `${prim} ${name}, seed ${seed}: element ${AXIS_SPAN} repeated`).not.toBeNull();
          for (const t of [input.cpu, input.gpu, cpuOut, gpuOut]) t.dispose();
        }
      });
    }
  }
});
