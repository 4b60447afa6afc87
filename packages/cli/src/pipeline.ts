// What a run trains: the loss names of the command line mapped onto @scorch/score's objectives,
// the noise each one needs (a σ grid, one σ, a KDE bandwidth or a forward SDE), the score model
// that goes with it, and the per-step objective handed to `train`. A checkpoint stores the same
// descriptions (ModelSpec and NoiseSpec), so `scorch sample` rebuilds exactly this.

import {
  type RandomKey, type Tensor, add, cast, full, indexSelect, keep, minimum, mul, rand, randn, reshape, splitKey, tensor, tidy,
} from '@scorch/tensor';
import {
  type Params, SDE_EPSILON, type ScoreModel, type Sde, type ToyDataset, denoisingScoreMatchingLoss, explicitScoreMatchingLoss,
  geometricSigmas, implicitScoreMatchingLoss, kdeScore, mlpScore, ncsnLoss, sdeScoreLoss, slicedScoreMatchingLoss, subVpSde,
  veSde, vpSde,
} from '@scorch/score';

export const LOSS_NAMES = ['ssm-vr', 'ssm', 'ssm-fd', 'ism', 'dsm', 'ncsn', 've', 'vp', 'subvp', 'esm-kde'] as const;
export type LossName = (typeof LOSS_NAMES)[number];

export const SAMPLER_NAMES = ['langevin', 'ald', 'em', 'pc', 'ode'] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

/**
 * How a loss handles noise, which fixes the model's conditioning and the samplers that fit:
 * - 'levels': a σ-conditional model trained on the data perturbed at every level of a geometric
 *   σ grid (NCSN, Song & Ermon 2019), sampled by annealed Langevin dynamics.
 * - 'single': an unconditional model of the data noised at one σ (DSM, Vincent 2011).
 * - 'kde': an unconditional model fitted to a kernel density estimate's score.
 * - 'sde': a time-conditional model of a forward SDE's marginals (Song et al. 2021), sampled by
 *   reversing the SDE or integrating its probability-flow ODE.
 */
export type LossFamily = 'levels' | 'single' | 'kde' | 'sde';

export interface LossEntry {
  readonly name: LossName;
  readonly family: LossFamily;
  readonly description: string;
}

export const LOSSES: { readonly [L in LossName]: LossEntry } = {
  'ssm-vr': { name: 'ssm-vr', family: 'levels', description: 'sliced score matching, variance-reduced (Song, Garg, Shi & Ermon 2019), at every noise level' },
  ssm: { name: 'ssm', family: 'levels', description: 'sliced score matching (Song et al. 2019), at every noise level' },
  'ssm-fd': { name: 'ssm-fd', family: 'levels', description: 'SSM-VR with a finite-difference directional derivative (Pang et al. 2020), at every noise level' },
  ism: { name: 'ism', family: 'levels', description: 'implicit score matching with the exact Jacobian trace (Hyvärinen 2005), at every noise level' },
  ncsn: { name: 'ncsn', family: 'levels', description: 'multi-scale denoising score matching, λ(σ) = σ² (Song & Ermon 2019)' },
  dsm: { name: 'dsm', family: 'single', description: 'denoising score matching at one noise level σ (Vincent 2011)' },
  'esm-kde': { name: 'esm-kde', family: 'kde', description: "explicit score matching against a Gaussian KDE's score (Scott's bandwidth)" },
  ve: { name: 've', family: 'sde', description: 'continuous-time DSM under the variance-exploding SDE (Song et al. 2021)' },
  vp: { name: 'vp', family: 'sde', description: 'continuous-time DSM under the variance-preserving SDE (Song et al. 2021)' },
  subvp: { name: 'subvp', family: 'sde', description: 'continuous-time DSM under the sub-VP SDE (Song et al. 2021)' },
};

/** Samplers that fit each family; the first is the default. */
export const SAMPLERS_FOR: { readonly [F in LossFamily]: readonly SamplerName[] } = {
  levels: ['ald', 'langevin'],
  single: ['langevin'],
  kde: ['langevin'],
  sde: ['pc', 'em', 'ode', 'langevin'],
};

export const SAMPLER_DESCRIPTIONS: { readonly [S in SamplerName]: string } = {
  langevin: 'Langevin dynamics',
  ald: 'annealed Langevin dynamics',
  em: 'reverse-time SDE, Euler–Maruyama',
  pc: 'predictor–corrector (reverse diffusion + Langevin)',
  ode: 'probability-flow ODE (adaptive RK45)',
};

/** The noise a trained model knows about; stored in the checkpoint. */
export type NoiseSpec =
  | { readonly kind: 'levels'; readonly sigmas: readonly number[] }
  | { readonly kind: 'single'; readonly sigma: number }
  | { readonly kind: 'kde'; readonly bandwidth: readonly number[]; readonly points: number }
  | { readonly kind: 'sde'; readonly sde: 've'; readonly sigmaMin: number; readonly sigmaMax: number }
  | { readonly kind: 'sde'; readonly sde: 'vp' | 'subvp'; readonly betaMin: number; readonly betaMax: number };

/** The score network's architecture; stored in the checkpoint. */
export interface ModelSpec {
  readonly kind: 'mlpScore';
  readonly inputDim: number;
  readonly hidden: readonly number[];
  readonly activation: 'silu';
  readonly conditioning: 'none' | 'sigma' | 'time';
  readonly outputScaling: 'none' | 'divideBySigma' | 'noisePrediction';
}

/** The forward SDE of an 'sde' noise spec. */
export function sdeOf(noise: NoiseSpec): Sde | undefined {
  if (noise.kind !== 'sde') return undefined;
  if (noise.sde === 've') return veSde({ sigmaMin: noise.sigmaMin, sigmaMax: noise.sigmaMax });
  return noise.sde === 'vp' ? vpSde({ betaMin: noise.betaMin, betaMax: noise.betaMax }) : subVpSde({ betaMin: noise.betaMin, betaMax: noise.betaMax });
}

/**
 * The largest distance between two of `points` (interleaved x, y): Song & Ermon 2020's first
 * technique sets σ_max to it, so the largest noise level connects every pair of modes.
 */
export function largestPairwiseDistance(points: ArrayLike<number>): number {
  const n = points.length / 2;
  let largest = 0;
  for (let i = 0; i < n; i++) {
    const xi = points[2 * i]!;
    const yi = points[2 * i + 1]!;
    for (let j = i + 1; j < n; j++) {
      const dx = xi - points[2 * j]!;
      const dy = yi - points[2 * j + 1]!;
      largest = Math.max(largest, dx * dx + dy * dy);
    }
  }
  return Math.sqrt(largest);
}

export interface NoiseChoices {
  /** Noise levels L of the 'levels' family. */
  levels: number;
  /** σ_L, the smallest level (and the VE SDE's σ_min). */
  sigmaMin: number;
  /** σ₁ (and the VE SDE's σ_max); undefined: the data's largest pairwise distance. */
  sigmaMax: number | undefined;
  /** σ of 'dsm'. */
  sigma: number;
}

/** The noise spec of `loss` from the user's choices and a data sample (interleaved x, y). */
export async function noiseFor(loss: LossName, choices: NoiseChoices, dataPoints: ArrayLike<number>, kdeBandwidth: () => Promise<number[]>, kdePoints: number): Promise<NoiseSpec> {
  const family = LOSSES[loss].family;
  const sigmaMax = () => choices.sigmaMax ?? Number(largestPairwiseDistance(dataPoints).toPrecision(3));
  switch (family) {
    case 'levels':
      return { kind: 'levels', sigmas: geometricSigmas(sigmaMax(), choices.sigmaMin, choices.levels) };
    case 'single':
      return { kind: 'single', sigma: choices.sigma };
    case 'kde':
      return { kind: 'kde', bandwidth: await kdeBandwidth(), points: kdePoints };
    case 'sde':
      if (loss === 've') return { kind: 'sde', sde: 've', sigmaMin: choices.sigmaMin, sigmaMax: sigmaMax() };
      // β_min = 0.1, β_max = 20: Song et al. 2021 (Ho et al. 2020's β schedule scaled by N = 1000).
      return { kind: 'sde', sde: loss === 'vp' ? 'vp' : 'subvp', betaMin: 0.1, betaMax: 20 };
  }
}

/** The noise spec in words, for the report. */
export function describeNoise(noise: NoiseSpec): string {
  const n = (v: number) => String(Number(v.toPrecision(4)));
  switch (noise.kind) {
    case 'levels':
      return `${noise.sigmas.length} levels, geometric from σ = ${n(noise.sigmas[0]!)} down to ${n(noise.sigmas[noise.sigmas.length - 1]!)}`;
    case 'single':
      return `σ = ${n(noise.sigma)}`;
    case 'kde':
      return `Gaussian KDE on ${noise.points} data points, bandwidth ${noise.bandwidth.map(n).join(', ')}`;
    case 'sde':
      return noise.sde === 've' ? `VE SDE, σ_min = ${n(noise.sigmaMin)}, σ_max = ${n(noise.sigmaMax)}` : `${noise.sde === 'vp' ? 'VP' : 'sub-VP'} SDE, β_min = ${n(noise.betaMin)}, β_max = ${n(noise.betaMax)}`;
  }
}

/** The architecture for a loss: conditioning from its family, output scaling where it helps. */
export function modelSpecFor(loss: LossName, hidden: readonly number[]): ModelSpec {
  const family = LOSSES[loss].family;
  const conditioning = family === 'levels' ? 'sigma' : family === 'sde' ? 'time' : 'none';
  // DSM-type targets z/σ grow as 1/σ: dividing the network's output by σ (Song & Ermon 2020,
  // technique 3) lets it predict a unit-scale quantity. The sliced and implicit objectives fit
  // scores of the perturbed data, which stay bounded at small σ, so they need no rescaling.
  const outputScaling = loss === 'ncsn' || loss === 've' ? 'divideBySigma' : loss === 'vp' || loss === 'subvp' ? 'noisePrediction' : 'none';
  return { kind: 'mlpScore', inputDim: 2, hidden: [...hidden], activation: 'silu', conditioning, outputScaling };
}

export function buildModel(spec: ModelSpec, noise: NoiseSpec, key: RandomKey): ScoreModel {
  return mlpScore({
    inputDim: spec.inputDim,
    hidden: spec.hidden,
    activation: spec.activation,
    conditioning: spec.conditioning,
    outputScaling: spec.outputScaling,
    sde: sdeOf(noise),
    key,
  });
}

/**
 * Perturbation std at which SDE models are evaluated (Fisher divergence, score field, Langevin):
 * the noise-conditional losses' σ_L. At the last time t = ε = 1e-5 itself the VP kernel's std is
 * 1e-3 and sub-VP's 1e-6, and a score parametrised as −ε̂/std magnifies any error of ε̂ by that
 * much, though samplers never evaluate it there without a step of noise around it.
 */
export const SDE_EVALUATION_STD = 0.01;

/** The time at which the SDE's kernel std reaches `std` (bisection; at least ε = 1e-5). */
function timeOfStd(sde: Sde, std: number): number {
  const stdAt = (t: number) => tidy(() => sde.std(full([1], t, { dtype: 'float64', device: 'cpu' })).dataSync()[0]!);
  let lo = SDE_EPSILON;
  let hi = sde.T;
  if (stdAt(lo) >= std) return lo;
  for (let i = 0; i < 60; i++) {
    const mid = 0.5 * (lo + hi);
    if (stdAt(mid) < std) lo = mid;
    else hi = mid;
  }
  return Number(hi.toPrecision(3));
}

/**
 * The noise level at which a conditional model is closest to the data, where it is evaluated and
 * plain Langevin dynamics runs: σ_L for noise levels, for an SDE the time its std is 0.01.
 */
export function cleanestCondition(noise: NoiseSpec): number | undefined {
  if (noise.kind === 'levels') return noise.sigmas[noise.sigmas.length - 1]!;
  if (noise.kind === 'sde') return timeOfStd(sdeOf(noise)!, SDE_EVALUATION_STD);
  return undefined;
}

export interface ObjectiveContext {
  readonly loss: LossName;
  readonly noise: NoiseSpec;
  readonly model: ScoreModel;
  readonly dataset: ToyDataset;
  readonly batch: number;
  /** Data the KDE target is built on ('kde' family only). */
  readonly kdeData?: Tensor;
}

/**
 * The per-step objective for `train`: a fresh batch from the data set, the loss's noise, and the
 * loss itself, all from the step's key. Tensors shared by every step (the σ table, the KDE) are
 * made here, once, and kept out of the steps' tidy scopes.
 */
export function makeObjective(ctx: ObjectiveContext): (params: Params, key: RandomKey) => Tensor {
  const { loss, noise, model, dataset, batch } = ctx;
  if (noise.kind === 'levels') {
    const sigmas = noise.sigmas;
    const table = keep(tensor(Float64Array.from(sigmas), { dtype: 'float32' }));
    return (params, key) => {
      const [dataKey, levelKey, noiseKey, lossKey] = splitKey(key, 4) as [RandomKey, RandomKey, RandomKey, RandomKey];
      const score = model.bind(params);
      const x = dataset.sample(batch, { key: dataKey });
      if (loss === 'ncsn') return ncsnLoss(score, x, { key: lossKey, sigmas });
      // One level per example, uniformly, as ncsnLoss draws them: ⌊uL⌋ clamped against rounding.
      const index = cast(minimum(rand([batch], { key: levelKey }).mul(sigmas.length), sigmas.length - 1), 'int32');
      const sigma = indexSelect(table, 0, index);
      const noisy = add(x, mul(reshape(sigma, [batch, 1]), randn([batch, 2], { key: noiseKey })));
      // Unweighted (λ = 1) across levels: unlike DSM's z/σ target, these objectives fit the
      // perturbed data's score, whose size stays bounded as σ → 0, so σ² weighting (right for
      // DSM) would leave the smallest levels — the ones samples end at — all but untrained.
      switch (loss) {
        case 'ssm-vr':
          return slicedScoreMatchingLoss(score, noisy, { key: lossKey, cond: sigma, varianceReduced: true });
        case 'ssm':
          return slicedScoreMatchingLoss(score, noisy, { key: lossKey, cond: sigma });
        case 'ssm-fd':
          return slicedScoreMatchingLoss(score, noisy, { key: lossKey, cond: sigma, varianceReduced: true, method: 'finiteDifference' });
        case 'ism':
          return implicitScoreMatchingLoss(score, noisy, { cond: sigma });
        default:
          throw new Error(`internal: loss ${loss} is not a noise-level loss`);
      }
    };
  }
  if (noise.kind === 'single') {
    return (params, key) => {
      const [dataKey, noiseKey] = splitKey(key, 2) as [RandomKey, RandomKey];
      return denoisingScoreMatchingLoss(model.bind(params), dataset.sample(batch, { key: dataKey }), { key: noiseKey, sigma: noise.sigma });
    };
  }
  if (noise.kind === 'kde') {
    if (!ctx.kdeData) throw new Error('internal: esm-kde needs the KDE data');
    const targetScore = kdeScore(ctx.kdeData, { bandwidth: [...noise.bandwidth] });
    return (params, key) => explicitScoreMatchingLoss(model.bind(params), dataset.sample(batch, { key }), { targetScore });
  }
  const sde = sdeOf(noise)!;
  return (params, key) => {
    const [dataKey, lossKey] = splitKey(key, 2) as [RandomKey, RandomKey];
    return sdeScoreLoss(model.bind(params), dataset.sample(batch, { key: dataKey }), { sde, key: lossKey });
  };
}
