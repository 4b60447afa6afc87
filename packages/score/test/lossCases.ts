// The cases of the PyTorch cross-check (torchReference.test.ts): each builds a float64 model, a
// batch and a loss from fixed keys, and names the random draws the loss makes (noise z,
// projections v, levels u), so an independent implementation can be fed the same numbers. The
// PyTorch values they were checked against are in fixtures/torchReference.ts, and the script
// that computed them is quoted at the top of that file.

import { type RandomKey, type Tensor, rand, randn, randomKey, splitKey, tensor } from '@scorch/tensor';
import {
  type Activation, type ProjectionDistribution, type ScoreFunction, type ScoreModel, type SlicedMethod,
  denoisingScoreMatchingLoss, drawProjections, energyHessianTrace, explicitScoreMatchingLoss, implicitScoreMatchingLoss,
  mlpEnergy, mlpScore, ncsnLoss, scoreJacobianTrace, sdeScoreLoss, slicedScoreMatchingLoss,
} from '../src/index.js';
import { type Sde, subVpSde, veSde, vpSde } from '../src/sde.js';

const f64 = { dtype: 'float64' as const };
type Reduction = 'mean' | 'none';

/** What the reference needs to rebuild the model: its kind and options. */
export interface ModelInfo {
  type: 'score' | 'energy';
  activation: Activation;
  conditioning: 'none' | 'sigma' | 'time';
  embedding?: 'sinusoidal' | 'fourier';
  outputScaling?: 'none' | 'divideBySigma' | 'noisePrediction';
  sde?: string;
}

export interface LossCase {
  name: string;
  kind: 'dsm' | 'esm' | 'ism' | 'ssm' | 'ncsn' | 'sde' | 'trace';
  model: ScoreModel;
  info: ModelInfo;
  x: Tensor;
  /** The loss (or, for kind 'trace', the per-row trace: no reduction, no gradient). */
  loss(score: ScoreFunction, x: Tensor, reduction: Reduction): Tensor;
  /** The draws and settings the loss used, by name (exported for the reference). */
  extra(): Record<string, Tensor | number | string | readonly number[]>;
}

function scoreModel(d: number, hidden: number[], activation: Activation, seed: number, more: Omit<Partial<ModelInfo>, 'sde'> & { sde?: Sde; sdeName?: string; embeddingDim?: number } = {}) {
  const { sdeName, sde, embeddingDim, ...rest } = more;
  const conditioning = rest.conditioning ?? 'none';
  const embedding = rest.embedding ?? (conditioning === 'time' ? 'sinusoidal' : 'fourier');
  const outputScaling = rest.outputScaling ?? 'none';
  const model = mlpScore({ inputDim: d, hidden, activation, key: randomKey(seed), ...f64, conditioning, ...(conditioning === 'none' ? {} : { embedding }), outputScaling, sde, ...(embeddingDim ? { embeddingDim } : {}) });
  return { model, info: { type: 'score' as const, activation, conditioning, embedding, outputScaling, sde: sdeName } };
}
function energyModel(d: number, hidden: number[], activation: Activation, seed: number) {
  return { model: mlpEnergy({ inputDim: d, hidden, activation, key: randomKey(seed), ...f64 }), info: { type: 'energy' as const, activation, conditioning: 'none' as const } };
}
/** N(shift, 1.3²) data, [n, d]. */
const data = (n: number, d: number, seed: number, shift = 0) => randn([n, d], { key: randomKey(seed), ...f64 }).mul(1.3).add(shift);

export function lossCases(): LossCase[] {
  const cases: LossCase[] = [];
  // DSM: batch 1, d = 1, σ very small and very large, data far from the origin, a σ per example.
  const dsm: [string, number, number, number, number][] = [
    ['dsm', 6, 3, 0.3, 0], ['dsm batch 1', 1, 3, 0.3, 0], ['dsm d = 1', 5, 1, 0.5, 0], ['dsm σ = 1e-4', 6, 3, 1e-4, 0],
    ['dsm σ = 1e4', 6, 3, 1e4, 0], ['dsm data at 1e3', 6, 3, 0.3, 1e3],
  ];
  for (const [name, n, d, sigma, shift] of dsm) {
    const key = randomKey(100 + n + d);
    const x = data(n, d, 1, shift);
    cases.push({ name, kind: 'dsm', ...scoreModel(d, [4, 3], 'silu', 2), x,
      loss: (s, xx, reduction) => denoisingScoreMatchingLoss(s, xx, { sigma, key, reduction }),
      extra: () => ({ sigma, z: randn(x.shape, { key, ...f64 }) }) });
  }
  {
    const key = randomKey(7);
    const x = data(5, 2, 3);
    const sigma = [0.1, 0.5, 1, 2, 0.05];
    cases.push({ name: 'dsm σ per example', kind: 'dsm', ...scoreModel(2, [6], 'tanh', 4), x,
      loss: (s, xx, reduction) => denoisingScoreMatchingLoss(s, xx, { sigma: tensor(sigma, f64), key, reduction }),
      extra: () => ({ sigmas: sigma, z: randn(x.shape, { key, ...f64 }) }) });
  }
  // ESM against the score of N(¼, ½I): −2x + ½.
  cases.push({ name: 'esm', kind: 'esm', ...scoreModel(3, [4], 'softplus', 10), x: data(5, 3, 9),
    loss: (s, xx, reduction) => explicitScoreMatchingLoss(s, xx, { targetScore: (z) => z.mul(-2).add(0.5), reduction }), extra: () => ({}) });
  // ISM: both trace routes, every smooth activation, energy models (the trace is −tr ∇²E).
  const ism: [string, number, number, Activation, 'batched' | 'loop', boolean, number][] = [
    ['ism', 6, 3, 'silu', 'batched', false, 0], ['ism loop', 6, 3, 'tanh', 'loop', false, 0], ['ism batch 1', 1, 3, 'softplus', 'batched', false, 0],
    ['ism d = 1', 5, 1, 'elu', 'batched', false, 0], ['ism energy', 5, 3, 'softplus', 'batched', true, 0], ['ism energy loop', 4, 2, 'silu', 'loop', true, 0],
    ['ism data at 1e3', 4, 3, 'tanh', 'batched', false, 1e3],
  ];
  for (const [name, n, d, activation, method, energy, shift] of ism) {
    cases.push({ name, kind: 'ism', ...(energy ? energyModel(d, [4, 3], activation, 12) : scoreModel(d, [4, 3], activation, 12)), x: data(n, d, 11, shift),
      loss: (s, xx, reduction) => implicitScoreMatchingLoss(s, xx, { method, reduction }), extra: () => ({}) });
  }
  // SSM and SSM-VR: every projection distribution, one and several projections, batch 1, d = 1,
  // and the finite-difference route.
  const ssm: [string, number, number, number, ProjectionDistribution, boolean, SlicedMethod][] = [
    ['ssm', 6, 3, 1, 'gaussian', false, 'jvp'], ['ssm M = 3', 4, 3, 3, 'gaussian', false, 'jvp'], ['ssm-vr M = 3', 4, 3, 3, 'gaussian', true, 'jvp'],
    ['ssm rademacher', 4, 3, 2, 'rademacher', false, 'jvp'], ['ssm sphere', 4, 3, 2, 'sphere', false, 'jvp'], ['ssm-vr sphere', 4, 3, 2, 'sphere', true, 'jvp'],
    ['ssm batch 1', 1, 3, 1, 'gaussian', false, 'jvp'], ['ssm d = 1', 5, 1, 2, 'gaussian', false, 'jvp'], ['ssm-vr d = 1 sphere', 5, 1, 2, 'sphere', true, 'jvp'],
    ['ssm finite difference', 4, 3, 2, 'gaussian', false, 'finiteDifference'], ['ssm-vr finite difference', 4, 3, 2, 'rademacher', true, 'finiteDifference'],
  ];
  for (const [name, n, d, projections, distribution, varianceReduced, method] of ssm) {
    const key = randomKey(200 + n * 10 + projections);
    const x = data(n, d, 13);
    cases.push({ name, kind: 'ssm', ...scoreModel(d, [4, 3], 'silu', 14), x,
      loss: (s, xx, reduction) => slicedScoreMatchingLoss(s, xx, { key, projections, distribution, varianceReduced, method, reduction }),
      extra: () => ({ projections, varianceReduced: varianceReduced ? 1 : 0, method, v: drawProjections([projections * n, d], distribution, { key, ...f64 }) }) });
  }
  // NCSN: the default grid, given levels with λ = σ, a short grid with an output scaled by 1/σ.
  // `grid` is [σ_max, σ_min, L] (the default grid is [1, 0.01, 10]), `levels` the levels given.
  const ncsn: [string, { power?: number; sigmas?: number[]; sigmaMax?: number; sigmaMin?: number; numScales?: number }, Omit<Partial<ModelInfo>, 'sde'>, Record<string, number[]>][] = [
    ['ncsn', {}, { conditioning: 'sigma' }, { grid: [1, 0.01, 10] }],
    ['ncsn power 1', { power: 1, sigmas: [3, 0.7, 0.2] }, { conditioning: 'sigma', embedding: 'sinusoidal' }, { levels: [3, 0.7, 0.2] }],
    ['ncsn divideBySigma', { sigmaMax: 5, sigmaMin: 0.1, numScales: 4 }, { conditioning: 'sigma', outputScaling: 'divideBySigma' }, { grid: [5, 0.1, 4] }],
  ];
  for (const [name, opts, conditioning, sigmas] of ncsn) {
    const key = randomKey(301);
    const x = data(8, 2, 15);
    const [levelKey, noiseKey] = splitKey(key, 2) as [RandomKey, RandomKey];
    cases.push({ name, kind: 'ncsn', ...scoreModel(2, [6, 5], 'silu', 16, { ...conditioning, embeddingDim: 4 }), x,
      loss: (s, xx, reduction) => ncsnLoss(s, xx, { key, ...opts, reduction }),
      extra: () => ({ u: rand([8], { key: levelKey, ...f64 }), z: randn(x.shape, { key: noiseKey, ...f64 }), power: opts.power ?? 2, ...sigmas }) });
  }
  // Continuous-time DSM: each SDE under each weighting (the noise-prediction one with a
  // noise-predicting model, s = −ε̂/s(t)).
  for (const [sdeName, sde] of [['ve', veSde({ sigmaMax: 5 })], ['vp', vpSde()], ['subvp', subVpSde()]] as const) {
    for (const weighting of ['sigma2', 'likelihood', 'noisePrediction'] as const) {
      const key = randomKey(401);
      const x = data(6, 2, 17);
      const [timeKey, noiseKey] = splitKey(key, 2) as [RandomKey, RandomKey];
      const scaling = weighting === 'noisePrediction' ? { outputScaling: 'noisePrediction' as const, sde } : {};
      cases.push({ name: `sde ${sdeName} ${weighting}`, kind: 'sde', ...scoreModel(2, [6], 'silu', 18, { conditioning: 'time', embeddingDim: 4, ...scaling, sdeName }), x,
        loss: (s, xx, reduction) => sdeScoreLoss(s, xx, { sde, key, weighting, reduction }),
        extra: () => ({ u: rand([6], { key: timeKey, ...f64 }), z: randn(x.shape, { key: noiseKey, ...f64 }), sde: sdeName, weighting }) });
    }
  }
  // The exact traces alone: tr ∂s/∂x (PyTorch: torch.autograd.functional.jacobian per row) and
  // tr ∇²E (torch.autograd.functional.hessian per row).
  for (const method of ['batched', 'loop'] as const) {
    const score = scoreModel(3, [5], 'tanh', 20);
    cases.push({ name: `score Jacobian trace ${method}`, kind: 'trace', ...score, x: data(4, 3, 21), loss: (s, xx) => scoreJacobianTrace(s, xx, { method }), extra: () => ({}) });
    const energy = energyModel(3, [5, 4], 'softplus', 22);
    cases.push({ name: `energy Hessian trace ${method}`, kind: 'trace', ...energy, x: data(4, 3, 23),
      loss: (_s, xx) => energyHessianTrace((z) => (energy.model as ReturnType<typeof mlpEnergy>).energy(z), xx, { method }), extra: () => ({}) });
  }
  return cases;
}
