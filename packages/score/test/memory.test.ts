// The score layer's functions leave only their results, as the tensor ops do (composite in
// @scorch/tensor): a model's forward pass, the losses, the Jacobian traces, the KDE's score and
// log density, the SDEs' coefficients, the metrics' tensor helpers, the gradient norms and the
// toy mixtures' exact scores dispose what they create on the way, so calling one outside a
// `tidy` and disposing its result frees everything.

import { describe, expect, it } from 'vitest';
import * as T from '@scorch/tensor';
import {
  clipGradNorm, denoisingScoreMatchingLoss, eightGaussians, energyScore, explicitScoreMatchingLoss, fourierEmbedding, globalNorm, implicitScoreMatchingLoss, kdeLogDensity, kdeScore, mlpEnergy, mlpScore,
  ncsnLoss, pairwiseSquaredDistances, projectedJacobianTrace, scoreJacobianTrace, sdeScoreLoss, sinusoidalEmbedding, slicedScoreMatchingLoss, subVpSde, veSde, vpSde,
} from '../src/index.js';

const x = T.randn([16, 2], { key: T.randomKey(1) });
const sigma = T.full([16], 0.5);
const time = T.full([16], 0.3);
const y = T.randn([16, 2], { key: T.randomKey(2) });
const sigmaColumn = T.full([16, 1], 0.5);
const frequencies = T.randn([1, 4], { key: T.randomKey(3) });
const model = mlpScore({ inputDim: 2, hidden: [8, 8], key: T.randomKey(4) });
const conditional = mlpScore({ inputDim: 2, hidden: [8], conditioning: 'sigma', outputScaling: 'divideBySigma', key: T.randomKey(5) });
const timed = mlpScore({ inputDim: 2, hidden: [8], conditioning: 'time', key: T.randomKey(6) });
const energy = mlpEnergy({ inputDim: 2, hidden: [8], key: T.randomKey(7) });
const kde = kdeScore(x);
const kdeDensity = kdeLogDensity(x);
const sdes = { ve: veSde(), vp: vpSde(), subVp: subVpSde() };
const mixture = eightGaussians();
// The mixture caches its parameters per dtype and device on first use (kept): make them first.
mixture.score(x).dispose();

const CALLS: Record<string, () => T.Tensor | T.Tensor[]> = {
  'mlpScore forward': () => model.score(x),
  'mlpScore, σ-conditioned and scaled': () => conditional.score(x, sigma),
  'mlpEnergy energy and score': () => [energy.energy(x), energy.score(x)],
  energyScore: () => energyScore((z) => T.sum(z.mul(z), 1))(x),
  sinusoidalEmbedding: () => sinusoidalEmbedding(sigma, 8),
  fourierEmbedding: () => fourierEmbedding(sigmaColumn, frequencies),
  'explicit score matching': () => explicitScoreMatchingLoss(model.score, x, { targetScore: (z) => z.neg() }),
  'implicit score matching': () => implicitScoreMatchingLoss(model.score, x),
  'sliced score matching': () => slicedScoreMatchingLoss(model.score, x, { key: T.randomKey(8) }),
  'denoising score matching': () => denoisingScoreMatchingLoss(model.score, x, { sigma: 0.5, key: T.randomKey(9) }),
  'NCSN loss': () => ncsnLoss(conditional.score, x, { sigmas: [1, 0.5, 0.1], key: T.randomKey(10) }),
  'SDE loss': () => sdeScoreLoss(timed.score, x, { sde: sdes.vp, key: T.randomKey(11) }),
  'Jacobian trace': () => scoreJacobianTrace(model.score, x),
  'projected Jacobian trace': () => projectedJacobianTrace(model.score, x, { projections: 2, key: T.randomKey(12) }),
  'KDE score and log density': () => [kde(x), kdeDensity(x)],
  pairwiseSquaredDistances: () => pairwiseSquaredDistances(x, y),
  'a Gaussian mixture\'s score, log density, noised and diffused scores': () => [
    mixture.score(x), mixture.logProb(x), mixture.noisyScore(x, 0.3), mixture.noiseConditionalScore()(x, sigma), mixture.diffusedScore(sdes.vp)(x, time),
  ],
  'globalNorm and clipGradNorm': () => {
    const { grads, norm } = clipGradNorm(model.params, 0.01);
    return [globalNorm(model.params), norm, ...Object.values(grads)];
  },
  ...Object.fromEntries(
    Object.entries(sdes).map(([name, sde]) => [
      `${name} SDE coefficients`,
      () => {
        const { f, G } = sde.discretize(x, time, 0.01);
        return [sde.meanCoefficient(time), sde.std(time), sde.drift(x, time), sde.diffusion(time), f, G, sde.discreteAlpha(time, 0.01)];
      },
    ]),
  ),
};

describe('the score layer leaves only its results', () => {
  it.each(Object.entries(CALLS))('%s', (_name, call) => {
    const before = T.memory().tensors;
    const out = call();
    for (const t of new Set(Array.isArray(out) ? out : [out])) t.dispose();
    expect(T.memory().tensors).toBe(before);
  });
});

// A KDE's function holds a centred copy of its data and its bandwidth, which nothing but the
// function can free: building one left four tensors (kdeLogDensity seven: the normaliser's
// intermediates too) that no caller could reach.
describe('a KDE function frees what it holds with dispose()', () => {
  it.each([
    ['kdeScore, Scott bandwidth', () => kdeScore(x)],
    ['kdeScore, given numbers', () => kdeScore(x, { bandwidth: [0.3, 0.4] })],
    ['kdeLogDensity, Silverman bandwidth', () => kdeLogDensity(x, { bandwidth: 'silverman' })],
  ] as const)('%s', (_name, build) => {
    const before = T.memory();
    const f = build();
    f(y).dispose();
    f.dispose();
    f.dispose(); // a second dispose is a no-op
    expect(T.memory()).toEqual(before);
    expect(() => f(y)).toThrow(/^kde(Score|LogDensity): this KDE was disposed \(its dispose\(\) freed the centred data and bandwidth it holds\); build a new one to evaluate it again$/);
  });

  it('leaves a bandwidth tensor of the caller\'s to the caller', () => {
    const h = T.tensor([0.3, 0.4]);
    const before = T.memory().tensors;
    for (const f of [kdeScore(x, { bandwidth: h }), kdeLogDensity(x, { bandwidth: h })]) {
      f(y).dispose();
      f.dispose();
    }
    expect(T.memory().tensors).toBe(before);
    expect(Array.from(h.dataSync())).toEqual([Math.fround(0.3), Math.fround(0.4)]);
    h.dispose();
  });
});
