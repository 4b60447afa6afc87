// The sampler's case of sinkBroadcasts (simplifyProgram): a sampler calls the score with one noise
// level broadcast to every row, so the jitted step computes the noise-level embedding (log σ,
// the angles, sin and cos, their concat) on one row and broadcasts it, with the same bits as
// eager and as the unjitted sampler.

import { describe, expect, it } from 'vitest';
import { jit, makeProgram } from '@scorch/autograd';
import { type Tensor, broadcastTo, randn, randomKey, splitKey, tensor } from '@scorch/tensor';
import { annealedLangevinDynamics, mlpScore } from '../src/index.js';

const [kModel, kx, kSample] = splitKey(randomKey(67), 3);

/** Bytes of a tensor's values: equal exactly when every element has the same bits. */
const bytes = async (t: Tensor) => {
  const d = await t.data();
  return Array.from(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
};

describe('the noise-level embedding of a broadcast σ in a jitted score call', () => {
  const cases = [
    { conditioning: 'sigma', embedding: 'fourier' },
    { conditioning: 'sigma', embedding: 'sinusoidal' },
    { conditioning: 'time', embedding: 'sinusoidal' },
  ] as const;
  for (const { conditioning, embedding } of cases) {
    for (const dtype of ['float32', 'float64'] as const) {
      it(`computes sin and cos on one row (${conditioning}, ${embedding}, ${dtype})`, async () => {
        const model = mlpScore({ inputDim: 2, hidden: [16], conditioning, embedding, embeddingDim: 8, key: kModel, dtype });
        const n = 50;
        const step = (x: Tensor, s: Tensor) => model.score(x, broadcastTo(s.reshape([1]), [n]));
        const x = randn([n, 2], { key: kx, dtype });
        const s = tensor(0.3, { dtype });
        const program = makeProgram(step)(x, s);
        const trig = program.equations.filter((e) => e.prim === 'sin' || e.prim === 'cos');
        expect(trig.map((e) => `${e.prim}${JSON.stringify(e.out.shape)}`)).toEqual(['sin[1,4]', 'cos[1,4]']);
        expect(program.equations.find((e) => e.prim === 'concat')!.out.shape).toEqual([1, 8]);
        expect(await bytes(jit(step)(x, s))).toEqual(await bytes(step(x, s)));
      });
    }
  }

  it('annealed Langevin dynamics draws the same samples jitted and not', async () => {
    const model = mlpScore({ inputDim: 2, hidden: [16], conditioning: 'sigma', key: kModel });
    const init = randn([40, 2], { key: kx });
    const run = (jit: boolean) => annealedLangevinDynamics(model.score, init, { key: kSample, sigmas: [1, 0.3], stepsPerLevel: 3, jit });
    expect(await bytes(await run(true))).toEqual(await bytes(await run(false)));
  });
});
