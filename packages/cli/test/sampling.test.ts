// Guards of the demo's sampling path (drawSamples with annealed Langevin dynamics), counted rather
// than timed: its one compiled step is traced once for every noise level, and the only reads to
// the host are the recorded chains' positions (every 1% of the run, and the end) and the
// non-finite count. A step traced per level, or a read per step, would multiply the demo's
// sampling time without changing a figure.

import { describe, expect, it } from 'vitest';
import { type Tensor, randomKey } from '@scorch/tensor';
import { geometricSigmas, mlpScore } from '@scorch/score';
import { countHostReads } from '../../score/test/devices.js';
import { drawSamples } from '../src/sampling.js';

describe('drawSamples (annealed Langevin, as the demo runs it)', () => {
  it('traces its step once for all levels and reads back only the recorded paths and the non-finite count', async () => {
    const model = mlpScore({ inputDim: 2, hidden: [8, 8], activation: 'silu', conditioning: 'sigma', outputScaling: 'divideBySigma', key: randomKey(1) });
    let scoreCalls = 0;
    const counted = { ...model, score: (x: Tensor, cond?: Tensor) => (scoreCalls++, model.score(x, cond)) };
    const sigmas = geometricSigmas(8, 0.01, 10);
    const stepsPerLevel = 20;
    let progress = 0;
    const { result: run, reads } = await countHostReads('cpu', () =>
      drawSamples(
        { model: counted, noise: { kind: 'levels', sigmas }, loss: 'ssm-vr', domain: 3, localStd: 0.4 },
        { sampler: 'ald', n: 50, stepsPerLevel },
        randomKey(2),
        { paths: 4, onStep: () => progress++ },
      ),
    );
    // One trace of the compiled step (σ, α/2 and √α are its inputs, not constants), and the eager
    // denoising step: 2 calls for 10 levels × 20 steps.
    expect(scoreCalls).toBe(2);
    // Paths are recorded from the first level with σ ≤ domain / 2 = 1.5 (σ = 8, 3.80, 1.80, 0.85,
    // …: level index 3, after 60 steps; see sampling.ts), every floor((200 − 60) / 100) = 1 step:
    // the states after steps 60 to 200, 141 reads. Then the denoising step's callback (step 201 >
    // 200: not recorded), the non-finite count, and the end point.
    const firstLevel = sigmas.findIndex((s) => s <= 1.5);
    expect(firstLevel).toBe(3);
    const recorded = sigmas.length * stepsPerLevel - firstLevel * stepsPerLevel + 1;
    expect(reads).toBe(recorded + 1 + 1);
    expect(run.paths).toHaveLength(4);
    expect(run.paths[0]).toHaveLength(2 * (recorded + 1));
    expect(progress).toBeGreaterThan(0);
    run.samples.dispose();
  });
});
