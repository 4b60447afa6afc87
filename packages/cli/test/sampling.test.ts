// Guards of the demo's sampling path (drawSamples with annealed Langevin dynamics), counted rather
// than timed: its one compiled step is traced once for every noise level, and the only reads to
// the host are the recorded chains' positions (every 1% of the run, and the end) and the
// non-finite count. A step traced per level, or a read per step, would multiply the demo's
// sampling time without changing a figure.

import { describe, expect, it } from 'vitest';
import { type Tensor, memory, rand, randomKey, splitKey, tidy } from '@scorch/tensor';
import { SAMPLER_DEFAULTS, geometricSigmas, mlpScore, noiseFor } from '@scorch/score';
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

/** The starting points drawSamples gives Langevin chains for `key`: uniform in the square (see sampling.ts boxStart). */
async function boxStart(key: ReturnType<typeof randomKey>, n: number, domain: number): Promise<Float32Array> {
  const [initKey] = splitKey(key, 2);
  const t = tidy(() => rand([n, 2], { key: initKey! }).mul(2 * domain).sub(domain));
  const values = Float32Array.from(await t.data());
  t.dispose();
  return values;
}

describe('drawSamples', () => {
  const model = mlpScore({ inputDim: 2, hidden: [4], activation: 'silu', conditioning: 'sigma', outputScaling: 'divideBySigma', key: randomKey(1) });
  const levels = { kind: 'levels', sigmas: [3, 1.5, 0.5] } as const;
  const ctx = { model, noise: levels, loss: 'ssm-vr', domain: 3, localStd: 0.4 } as const;

  it('records as many chains as there are samples when fewer than asked, and holds no tensor but the samples', async () => {
    const before = memory().tensors;
    const run = await drawSamples(ctx, { sampler: 'langevin', n: 3, sampleSteps: 4, stepsPerLevel: 1 }, randomKey(2), { paths: 10 });
    expect(run.paths).toHaveLength(3);
    // The start, the states after steps 1 to 4 (every floor(4 / 100) → 1 step), and the end point.
    for (const p of run.paths) expect(p).toHaveLength(2 * 6);
    run.samples.dispose();
    // The chains' start and its intermediates are disposed (the uniform draw and its scaling were
    // left behind, 2 tensors a call).
    expect(memory().tensors).toBe(before);
  });

  it("plain Langevin's default step size is 0.1 × the finest variance: the data's plus the cleanest level's", async () => {
    const run = await drawSamples(ctx, { sampler: 'langevin', n: 4, sampleSteps: 1, stepsPerLevel: 1 }, randomKey(2), { paths: 0 });
    run.samples.dispose();
    // 0.1 × (0.4² + 0.5²) = 0.041, to 2 significant digits.
    expect(run.settings).toMatchObject({ sampler: 'langevin', steps: 1, stepSize: 0.041, sigma: 0.5 });
  });

  it("annealed Langevin's default step size is Song & Ermon's 2e-5; paths start at the first level at most half the domain", async () => {
    const run = await drawSamples(ctx, { sampler: 'ald', n: 4, stepsPerLevel: 2 }, randomKey(2), { paths: 2 });
    run.samples.dispose();
    expect(SAMPLER_DEFAULTS.annealedLangevin.stepSize).toBe(2e-5);
    expect(run.settings).toMatchObject({ levels: 3, stepsPerLevel: 2, stepSize: 2e-5, sigmaMax: 3, sigmaMin: 0.5 });
    // σ = 1.5 is exactly domain / 2 = 1.5: recorded from there (level 1), not from σ = 0.5.
    expect(run.pathsFrom).toBe('where σ = 1.5 begins');
  });

  it('annealed Langevin paths whose first level is within the domain begin at the starting points', async () => {
    const key = randomKey(5);
    const run = await drawSamples({ ...ctx, noise: { kind: 'levels', sigmas: [1, 0.5] } }, { sampler: 'ald', n: 4, stepsPerLevel: 2 }, key, { paths: 2 });
    run.samples.dispose();
    expect(run.pathsFrom).toBe('their starting points');
    const start = await boxStart(key, 4, 3);
    expect(run.paths.map((p) => [p[0], p[1]])).toEqual([[start[0], start[1]], [start[2], start[3]]]);
    // The start, the 4 steps (every floor(4 / 100) → 1), the end point.
    expect(run.paths[0]).toHaveLength(2 * 6);
  });

  it('counts the non-finite samples among all, names the remedy of each sampler, and holds no tensor after', async () => {
    // √x is NaN where a coordinate is negative: the chains that start there are NaN after one
    // step; the others move by 1e-12 · 0 plus noise of s.d. √(2e-12) ≈ 1.4e-6 and stay finite.
    const nanWhereNegative = { ...model, score: (x: Tensor) => x.sqrt().mul(0) };
    const key = randomKey(3);
    const n = 40;
    const start = await boxStart(key, n, 3);
    const negative = Array.from({ length: n }, (_, i) => start[2 * i]! < 0 || start[2 * i + 1]! < 0).filter(Boolean).length;
    expect(negative).toBeGreaterThan(0);
    expect(negative).toBeLessThan(n);
    const before = memory().tensors;
    await expect(
      drawSamples({ ...ctx, model: nanWhereNegative, noise: { kind: 'single', sigma: 0.1 }, loss: 'dsm' }, { sampler: 'langevin', n, sampleSteps: 1, stepSize: 1e-12, stepsPerLevel: 1 }, key, { paths: 2 }),
    ).rejects.toThrow(`${negative} of ${n} samples are non-finite (NaN or ±Infinity): Langevin dynamics diverged; try a smaller --step-size`);
    // The refused samples are disposed.
    expect(memory().tensors).toBe(before);
    // The reverse-SDE samplers are told to take more steps; pc's settings are its corrector's too.
    const sde = { ...ctx, model: mlpScore({ inputDim: 2, hidden: [4], activation: 'silu', conditioning: 'time', key: randomKey(1) }), noise: noiseFor('vp'), loss: 'vp' } as const;
    const nan = { ...sde.model, score: (x: Tensor) => x.mul(Number.NaN) };
    await expect(drawSamples({ ...sde, model: nan }, { sampler: 'pc', n: 4, sampleSteps: 20, stepsPerLevel: 1 }, key, { paths: 0 })).rejects.toThrow(
      /^4 of 4 samples are non-finite \(NaN or ±Infinity\): .*; try more --sample-steps$/,
    );
    const pc = await drawSamples(sde, { sampler: 'pc', n: 4, sampleSteps: 20, stepsPerLevel: 1 }, key, { paths: 0 });
    pc.samples.dispose();
    expect(pc.settings).toMatchObject({ sampler: 'pc', steps: 20, snr: 0.16, correctorSteps: 1 });
  });
});
