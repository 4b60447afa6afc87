// Bad input at the score layer's public functions: each is refused under the name of the function
// called, saying what was wrong, before any op reads it. Each case here once failed otherwise: a
// forgotten argument gave a wrong value, an internal op named itself, or JavaScript's own
// "cannot read properties of undefined" came out of the library.

import { describe, expect, it } from 'vitest';
import { randn, randomKey, tensor } from '@scorch/tensor';
import {
  annealedLangevinDynamics, buildModel, cleanestCondition, describeNoise, eightGaussians, energyHessianTrace, knownHardReason, modelSpecFor, ncsnLoss, noiseFor, geometricSigmas, implicitScoreMatchingLoss, langevinDynamics, mmd2, perRow, subVpSde, veSde, vpSde,
} from '../src/index.js';

const x = randn([4, 2], { key: randomKey(1), dtype: 'float64' });
const t = tensor([0.5, 0.5, 0.5, 0.5], { dtype: 'float64' });

describe('bad input to the score layer', () => {
  it('geometricSigmas refuses a missing argument (a forgotten levels gave no noise level at all)', () => {
    expect(() => (geometricSigmas as (a: number, b: number) => number[])(1, 0.01)).toThrow(/^geometricSigmas: levels must be an integer >= 1, got undefined$/);
    expect(() => (geometricSigmas as (a?: number) => number[])()).toThrow(/^geometricSigmas: sigmaMax must be /);
    expect(geometricSigmas(1, 0.01, 3)).toHaveLength(3);
  });

  it('an SDE\'s elementwise coefficients need a tensor t, and its steps a finite Δt > 0', () => {
    for (const [name, sde] of [['veSde', veSde()], ['vpSde', vpSde()], ['subVpSde', subVpSde()]] as const) {
      for (const method of ['std', 'meanCoefficient', 'diffusion'] as const) {
        expect(() => sde[method](undefined as never)).toThrow(new RegExp(`^${name}\\.${method}: t must be a Tensor, got undefined$`));
        expect(() => sde[method]([0.5] as never)).toThrow(new RegExp(`^${name}\\.${method}: t must be a Tensor, got object$`));
      }
      // A Δt of −0.1, NaN or none gave NaN coefficients without a word.
      for (const dt of [-0.1, 0, Number.NaN, undefined]) {
        expect(() => sde.discretize(x, t, dt as never)).toThrow(new RegExp(`^${name}\\.discretize: dt must be a finite number > 0, got `));
        expect(() => sde.discreteAlpha(t, dt as never)).toThrow(new RegExp(`^${name}\\.discreteAlpha: dt must be a finite number > 0, got `));
      }
      const { f, G } = sde.discretize(x, t, 0.01);
      expect([...f.dataSync(), ...G.dataSync()].every(Number.isFinite)).toBe(true);
      f.dispose();
      G.dispose();
    }
  });

  it('perRow needs a [N] tensor', () => {
    expect(() => perRow(undefined as never)).toThrow(/^perRow: c must be a Tensor, got undefined$/);
    expect(() => perRow(x)).toThrow(/^perRow: c must be a \[N\] tensor of per-row coefficients, got shape \[4,2\]$/);
    expect(perRow(t).shape).toEqual([4, 1]);
  });

  it('energyHessianTrace reports a bad x under its own name (it said scoreJacobianTrace)', () => {
    const energy = (z: typeof x) => z.mul(z).sum(1);
    expect(() => energyHessianTrace(energy, [[1, 2]] as never)).toThrow(/^energyHessianTrace: x must be a Tensor of shape \[N, d\], got object$/);
    expect(() => energyHessianTrace(energy, x, { method: 'exact' as never })).toThrow(/^energyHessianTrace: /);
    expect(Array.from(energyHessianTrace(energy, x).dataSync())).toEqual([4, 4, 4, 4]);
  });

  it('a disposed batch is named by the function called, not by the first op that reads it', async () => {
    const gone = randn([4, 2], { key: randomKey(2) });
    gone.dispose();
    const score = (z: typeof x) => z.neg();
    await expect(langevinDynamics(score, gone, { key: randomKey(3), steps: 2 })).rejects.toThrow(/^langevinDynamics: init, a float32 \[4,2\] tensor, was disposed/);
    expect(() => implicitScoreMatchingLoss(score, gone)).toThrow(/^implicitScoreMatchingLoss: x, a float32 \[4,2\] tensor, was disposed/);
    await expect(mmd2(gone, x)).rejects.toThrow(/^mmd2: the first sample, a float32 \[4,2\] tensor, was disposed/);
  });

  it('a mixture\'s density functions refuse a nested array (they failed reading .join of undefined)', () => {
    const mixture = eightGaussians();
    expect(() => mixture.score([[0, 0]] as never)).toThrow(/^GaussianMixture: x must be a Tensor, got object$/);
    expect(() => mixture.logProb(undefined as never)).toThrow(/^GaussianMixture: x must be a Tensor, got undefined$/);
    expect(() => mixture.noiseConditionalScore()([[0, 0]] as never, t)).toThrow(/^noiseConditionalScore: x must be a Tensor, got object$/);
    expect(() => mixture.diffusedScore(vpSde())([[0, 0]] as never, t)).toThrow(/^diffusedScore: x must be a Tensor, got object$/);
  });

  it('a tensor or typed array where an array of numbers goes is shown as such, never as JSON of its internals', async () => {
    // JSON.stringify printed a tensor's handle (390 characters), a Float64Array as {"0":1,"1":0.5},
    // and threw "Converting circular structure to JSON" for a tensor in a gradient graph.
    const leaf = tensor([1, 0.5]);
    leaf.requiresGrad = true;
    const inGraph = leaf.mul(2);
    const score = (z: typeof x, sigma?: typeof x) => z.neg().div(perRow(sigma!));
    const key = randomKey(4);
    await expect(annealedLangevinDynamics(score, x, { key, sigmas: inGraph as never })).rejects.toThrow(/^annealedLangevinDynamics: sigmas must be an array of numbers \(σ₁ > … > σ_L\), got a tensor \(float32 \[2\] on cpu\)$/);
    await expect(annealedLangevinDynamics(score, x, { key, sigmas: new Float64Array([1, 0.5]) as never })).rejects.toThrow(/got a Float64Array \[1,0.5\]$/);
    await expect(annealedLangevinDynamics(score, x, { key, sigmas: [] })).rejects.toThrow(/^annealedLangevinDynamics: sigmas must list at least one noise level, got \[\]$/);
    await expect(annealedLangevinDynamics(score, x, { key, denoise: Number.NaN as never })).rejects.toThrow(/^annealedLangevinDynamics: denoise must be true or false, got NaN$/);
    expect(() => ncsnLoss(score, x, { key, sigmas: inGraph as never })).toThrow(/^ncsnLoss: sigmas must be a non-empty array of positive numbers, got a tensor \(float32 \[2\] on cpu\)$/);
  });

  it('the registry\'s helpers refuse unknown names and malformed descriptions', () => {
    // A misspelt data set read as "not known to be hard"; the others read fields of undefined.
    expect(() => knownHardReason('moon' as never, 'dsm')).toThrow(/^knownHardReason: unknown data set "moon" \(did you mean 'moons'\?\); expected one of /);
    expect(() => knownHardReason('moons', 'dsn' as never)).toThrow(/^knownHardReason: unknown objective "dsn"/);
    expect(knownHardReason('moons', 'dsm')).toMatch(/./);
    expect(() => modelSpecFor('dsm', 64 as never)).toThrow(/^modelSpecFor: hidden must be an array of layer widths \(positive integers\), got 64$/);
    expect(() => modelSpecFor('dsm', [[64]] as never)).toThrow(/^modelSpecFor: hidden must be an array of layer widths/);
    for (const [where, call] of [
      ['describeNoise', (n: unknown) => describeNoise(n as never)],
      ['cleanestCondition', (n: unknown) => cleanestCondition(n as never)],
      ['buildModel', (n: unknown) => buildModel(modelSpecFor('dsm', [4]), n as never, randomKey(5))],
    ] as const) {
      expect(() => call(undefined)).toThrow(new RegExp(`^${where}: noise must be a noise description \\(as noiseFor returns\\), got undefined$`));
      expect(() => call({ kind: 'level' })).toThrow(new RegExp(`^${where}: unknown noise kind "level"`));
    }
    expect(describeNoise(noiseFor('dsm'))).toMatch(/^σ = /);
    expect(() => buildModel(undefined as never, noiseFor('dsm'), randomKey(5))).toThrow(/^buildModel: spec must be a model description/);
  });
});
