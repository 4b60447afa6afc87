// Forward diffusion SDEs dx = f(x, t) dt + g(t) dw on t ∈ [0, 1], as in Song et al., "Score-Based
// Generative Modeling through Stochastic Differential Equations" (ICLR 2021), with their
// perturbation kernels p₀ₜ(xₜ | x₀) = N(m(t)·x₀, s(t)²I) in closed form. Losses sample from the
// kernel; samplers integrate the reverse-time SDE or the probability-flow ODE. Each SDE also
// knows its own discretisation (the discrete chain it is the limit of), so the samplers hold no
// per-SDE cases.

import {
  composite,
  type RandomKey, Tensor, checkKey, checkNumber, checkOneOf, checkOptions, checkTensor, deviceFor, exp, expm1, fmtShape, full, mul, randn, sqrt, sub, tidy, type FloatDType,
} from '@scorch/tensor';
import { optionNames } from './conventions.js';

export type SdeKind = 've' | 'vp' | 'subvp';

/** A forward SDE and its perturbation kernel. `t` is a [N] tensor (one time per batch row). */
export interface Sde {
  readonly kind: SdeKind;
  /** Largest time (1). */
  readonly T: number;
  /** Coefficient m(t) of the kernel's mean m(t)·x₀, shape [N]. */
  meanCoefficient(t: Tensor): Tensor;
  /** Standard deviation s(t) of the kernel, shape [N]. */
  std(t: Tensor): Tensor;
  /** Drift f(x, t) for x [N, d], t [N]. */
  drift(x: Tensor, t: Tensor): Tensor;
  /** Diffusion coefficient g(t), shape [N]. */
  diffusion(t: Tensor): Tensor;
  /** A sample of the prior p_T the reverse process starts from. */
  priorSample(shape: readonly number[], opts: PriorSampleOptions): Tensor;
  /**
   * The forward step from t − Δt to t of the discrete chain this SDE is the limit of, as
   * x_t = x_{t−Δt} + f + G·z (Song et al. 2021, App. E, eq. 46's fᵢ and Gᵢ): VE, SMLD's chain,
   * f = 0 and G² = s(t)² − s(t − Δt)²; VP, DDPM's chain with βᵢ = β(t)Δt, f = (√(1 − βᵢ) − 1)x
   * and G = √βᵢ; sub-VP, which has no discrete original, Euler–Maruyama's f(x, t)Δt and g(t)√Δt.
   * x [N, d], t [N]; f is [N, d], G a [N, 1] column. The reverse-diffusion predictor inverts it.
   */
  discretize(x: Tensor, t: Tensor, dt: number): { f: Tensor; G: Tensor };
  /**
   * αᵢ of that chain at t, which scales the Langevin corrector's step (Song et al. 2021, Alg. 4
   * and 5): 1 − β(t)Δt for VP and sub-VP (DDPM's αᵢ), 1 for VE. A [N, 1] column.
   */
  discreteAlpha(t: Tensor, dt: number): Tensor;
}

export interface PriorSampleOptions {
  /** Key of the draw. */
  key: RandomKey;
  /** Device of the samples; default the default device. */
  device?: string;
  /** Default float32. */
  dtype?: FloatDType;
}
const PRIOR_SAMPLE_OPTIONS = optionNames<PriorSampleOptions>()(['key', 'device', 'dtype']);

/** A draw of N(0, scale²I) of `shape`: the prior of every SDE here, after its options are checked. */
function gaussianPrior(where: string, shape: readonly number[], opts: PriorSampleOptions, scale: number): Tensor {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object { key, device?, dtype? }`);
  checkOptions(where, opts, PRIOR_SAMPLE_OPTIONS);
  const { key, device, dtype = 'float32' } = opts;
  checkKey(key, `${where}: opts.key`);
  checkOneOf(where, 'dtype', dtype, ['float32', 'float64'] as const);
  // Under this function's name (float64 on WebGPU, an unknown device): randn named itself.
  deviceFor(where, device, dtype);
  // In a tidy: the scaling's temporaries (and the unscaled draw) must not outlive the call.
  return tidy(() => {
    const z = randn(shape, { key, device, dtype });
    return scale === 1 ? z : z.mul(scale);
  });
}

/** The options object of an SDE constructor: known names, each a finite positive number. */
function checkSdeOptions(where: string, opts: unknown, known: readonly string[]): void {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object, got ${opts === null ? 'null' : typeof opts}`);
  checkOptions(where, opts, known);
  for (const k of known) checkNumber(where, k, (opts as Record<string, unknown>)[k], { min: 0, exclusiveMin: true });
}

/** Column view [N, 1] of a per-row [N] coefficient, to scale [N, d] batches. */
export function perRow(c: Tensor): Tensor {
  checkTensor('perRow', c, 'c');
  if (c.rank !== 1) throw new Error(`perRow: c must be a [N] tensor of per-row coefficients, got shape ${fmtShape(c.shape)}`);
  return c.reshape([c.shape[0]!, 1]);
}

/**
 * Checks the times of a coefficient function that works per row: `t` must be a [N] tensor, with
 * one time per row of `x` where there is an `x`. Without it a scalar t failed inside a reshape or
 * `full` with an internal shape, and VE's drift, which does not read t, took a t of any length.
 */
function checkRowTimes(where: string, t: unknown, x?: unknown): void {
  const perRowOfX = x === undefined ? '' : ' (one time per row of x)';
  if (!(t instanceof Tensor)) throw new TypeError(`${where}: t must be a [N] tensor${perRowOfX}, got ${t === null ? 'null' : typeof t}`);
  if (t.rank !== 1) throw new Error(`${where}: t must be a [N] tensor${perRowOfX}, got shape ${fmtShape(t.shape)}`);
  if (x instanceof Tensor && x.shape[0] !== t.shape[0]) {
    throw new Error(`${where}: t must be a [N] tensor (one time per row of x), got shape ${fmtShape(t.shape)} for x of shape ${fmtShape(x.shape)}`);
  }
}

/**
 * Refuses an x of drift or discretize that is not [N, d]: a [N] x times VP's [N, 1] column of
 * coefficients broadcast to an [N, N] outer product without a word (VE's drift gave [N]), and
 * a missing x failed inside an op, as "mul: first operand must be a Tensor".
 */
function checkSampleRows(where: string, x: unknown): void {
  if (!(x instanceof Tensor)) throw new TypeError(`${where}: x must be a [N, d] tensor, got ${x === null ? 'null' : typeof x}`);
  if (x.rank !== 2) throw new Error(`${where}: x must be a [N, d] tensor (one sample per row), got shape ${fmtShape(x.shape)}`);
}

/**
 * `sde` with each coefficient function run as a composite op: it leaves only its result (see
 * `composite`). The per-row functions (drift, discretize, discreteAlpha) check their t first,
 * then drift and discretize their x; the elementwise ones (meanCoefficient, std, diffusion) that
 * t is a tensor, and the steps their Δt: std(undefined) failed inside an op, and a Δt of −0.1,
 * NaN or none gave NaN coefficients.
 */
function freeingTemporaries(name: string, sde: Sde): Sde {
  const scoped = <A extends unknown[], R>(fn: (...args: A) => R) => (...args: A): R => composite(() => fn(...args));
  const elementwise = (method: 'meanCoefficient' | 'std' | 'diffusion') =>
    scoped((t: Tensor) => {
      checkTensor(`${name}.${method}`, t, 't');
      return sde[method](t);
    });
  const checkStep = (where: string, dt: unknown) => checkNumber(where, 'dt', dt, { min: 0, exclusiveMin: true, required: true });
  return {
    ...sde,
    meanCoefficient: elementwise('meanCoefficient'),
    std: elementwise('std'),
    drift: scoped((x: Tensor, t: Tensor) => {
      checkRowTimes(`${name}.drift`, t, x);
      checkSampleRows(`${name}.drift`, x);
      return sde.drift(x, t);
    }),
    diffusion: elementwise('diffusion'),
    discretize: scoped((x: Tensor, t: Tensor, dt: number) => {
      checkRowTimes(`${name}.discretize`, t, x);
      checkSampleRows(`${name}.discretize`, x);
      checkStep(`${name}.discretize`, dt);
      return sde.discretize(x, t, dt);
    }),
    discreteAlpha: scoped((t: Tensor, dt: number) => {
      checkRowTimes(`${name}.discreteAlpha`, t);
      checkStep(`${name}.discreteAlpha`, dt);
      return sde.discreteAlpha(t, dt);
    }),
  };
}

export interface VeSdeOptions {
  /** σ_min = 0.01 (Song et al. 2021, §C; NCSN++ on 2-D/CIFAR-10 settings). */
  sigmaMin?: number;
  /** σ_max = 50 (Song et al. 2021: the largest pairwise data distance; 50 for CIFAR-10). */
  sigmaMax?: number;
}
const VE_OPTIONS = optionNames<VeSdeOptions>()(['sigmaMin', 'sigmaMax']);

/** Variance exploding: σ(t) = σ_min (σ_max/σ_min)ᵗ, dx = σ(t)√(2 log(σ_max/σ_min)) dw. */
export function veSde(opts: VeSdeOptions = {}): Sde {
  checkSdeOptions('veSde', opts, VE_OPTIONS);
  const sigmaMin = opts.sigmaMin ?? 0.01;
  const sigmaMax = opts.sigmaMax ?? 50;
  if (!(sigmaMin > 0 && sigmaMax > sigmaMin)) throw new RangeError(`veSde: need 0 < sigmaMin < sigmaMax, got ${sigmaMin}, ${sigmaMax}`);
  const logRatio = Math.log(sigmaMax / sigmaMin);
  const sigma = (t: Tensor): Tensor => exp(mul(t, logRatio)).mul(sigmaMin);
  return freeingTemporaries('veSde', {
    kind: 've',
    T: 1,
    meanCoefficient: (t) => full(t.shape, 1, { dtype: t.dtype, device: t.device }),
    // As in Song et al.'s code, s(t) = σ(t) (the σ_min² offset of the exact variance is dropped).
    std: sigma,
    drift: (x) => mul(x, 0),
    diffusion: (t) => sigma(t).mul(Math.sqrt(2 * logRatio)),
    priorSample: (shape, o) => gaussianPrior('veSde.priorSample', shape, o, sigmaMax),
    // σ(t − Δt)² = σ(t)² e^{−2Δt log(σ_max/σ_min)}, so G = σ(t)·√(−expm1(−2Δt log(σ_max/σ_min))):
    // the difference of the two squares, which cancels to ~2Δt·log(σ_max/σ_min) of each, is
    // taken in closed form on the host rather than between rounded values of σ.
    discretize: (x, t, dt) => ({ f: mul(x, 0), G: perRow(sigma(t)).mul(Math.sqrt(-Math.expm1(-2 * dt * logRatio))) }),
    discreteAlpha: (t) => full([t.shape[0]!, 1], 1, { dtype: t.dtype, device: t.device }),
  });
}

export interface VpSdeOptions {
  /** β_min = 0.1 (Song et al. 2021; Ho et al. 2020's β₁ = 1e-4 scaled by N = 1000). */
  betaMin?: number;
  /** β_max = 20 (Song et al. 2021; Ho et al. 2020's β_N = 0.02 scaled by N = 1000). */
  betaMax?: number;
}
const VP_OPTIONS = optionNames<VpSdeOptions>()(['betaMin', 'betaMax']);

function vpParts(where: string, opts: VpSdeOptions) {
  checkSdeOptions(where, opts, VP_OPTIONS);
  const betaMin = opts.betaMin ?? 0.1;
  const betaMax = opts.betaMax ?? 20;
  if (!(betaMin > 0 && betaMax > betaMin)) throw new RangeError(`${where}: need 0 < betaMin < betaMax, got ${betaMin}, ${betaMax}`);
  const beta = (t: Tensor): Tensor => mul(t, betaMax - betaMin).add(betaMin);
  // log m(t) = −¼t²(β_max − β_min) − ½tβ_min
  const logMean = (t: Tensor): Tensor => mul(mul(t, t), -0.25 * (betaMax - betaMin)).sub(mul(t, 0.5 * betaMin));
  // 1 − m(t)^k = −expm1(k log m(t)): near t = 0, m(t) is within ~βₘᵢₙt/2 of 1 and forming m^k
  // first and subtracting it from 1 would leave only the last few bits of m^k (in float32, a
  // relative error of ~u/(βₘᵢₙ t): 6e-3 in VP's s(ε) at ε = 1e-5); expm1 keeps full precision.
  const oneMinusMeanPower = (t: Tensor, k: number): Tensor => expm1(logMean(t).mul(k)).neg();
  const drift = (x: Tensor, t: Tensor): Tensor => mul(x, perRow(beta(t).mul(-0.5)));
  const discreteAlpha = (t: Tensor, dt: number): Tensor => sub(1, perRow(beta(t)).mul(dt));
  return { betaMin, betaMax, beta, logMean, oneMinusMeanPower, drift, discreteAlpha };
}

/** Variance preserving (DDPM's continuous limit): dx = −½β(t)x dt + √β(t) dw. */
export function vpSde(opts: VpSdeOptions = {}): Sde {
  const { beta, logMean, oneMinusMeanPower, drift, discreteAlpha } = vpParts('vpSde', opts);
  return freeingTemporaries('vpSde', {
    kind: 'vp',
    T: 1,
    meanCoefficient: (t) => exp(logMean(t)),
    std: (t) => sqrt(oneMinusMeanPower(t, 2)), // s² = 1 − m²
    drift,
    diffusion: (t) => sqrt(beta(t)),
    priorSample: (shape, o) => gaussianPrior('vpSde.priorSample', shape, o, 1),
    discretize: (x, t, dt) => {
      const betaStep = perRow(beta(t)).mul(dt);
      // √(1 − βᵢ) − 1 = −βᵢ/(1 + √(1 − βᵢ)): the left side cancels to ~βᵢ/2 ≪ 1.
      return { f: mul(betaStep.div(sqrt(sub(1, betaStep)).add(1)).neg(), x), G: sqrt(betaStep) };
    },
    discreteAlpha,
  });
}

/** Sub-VP: VP's drift with g(t)² = β(t)(1 − e^{−2∫β}); its variance stays below VP's. */
export function subVpSde(opts: VpSdeOptions = {}): Sde {
  const { beta, logMean, oneMinusMeanPower, drift, discreteAlpha } = vpParts('subVpSde', opts);
  // ∫₀ᵗβ = −2 log m(t), so 1 − e^{−2∫β} = 1 − m(t)⁴
  const diffusion = (t: Tensor): Tensor => sqrt(beta(t).mul(oneMinusMeanPower(t, 4)));
  return freeingTemporaries('subVpSde', {
    kind: 'subvp',
    T: 1,
    meanCoefficient: (t) => exp(logMean(t)),
    std: (t) => oneMinusMeanPower(t, 2), // s = 1 − m²
    drift,
    diffusion,
    priorSample: (shape, o) => gaussianPrior('subVpSde.priorSample', shape, o, 1),
    discretize: (x, t, dt) => ({ f: drift(x, t).mul(dt), G: perRow(diffusion(t)).mul(Math.sqrt(dt)) }),
    discreteAlpha,
  });
}

/**
 * Smallest time sampled in training, for every SDE, and the final time a sampler reaches on a VE
 * SDE: ε = 1e-5 (Song et al. 2021; their reference code, score_sde's losses.py and run_lib.py).
 */
export const SDE_EPSILON = 1e-5;

/**
 * The final time ε a sampler reaches by default on `sde` (an SDE, or its kind 've', 'vp' or
 * 'subvp'): 1e-5 for VE and 1e-3 for VP and sub-VP, as Song et al. 2021's reference code samples
 * (run_lib.py, `sampling_eps`). At t = 1e-5 the VP kernel's std is about 1e-3 and sub-VP's about
 * 1e-6, so the score there is of order 1/std and its errors with it; at 1e-3 the VP std is about
 * 0.01.
 */
export function samplingEpsilon(sde: Pick<Sde, 'kind'> | SdeKind): number {
  const kind = typeof sde === 'string' ? sde : (sde as { kind?: unknown } | null | undefined)?.kind;
  if (kind !== 've' && kind !== 'vp' && kind !== 'subvp') {
    const got = sde === null ? 'null' : typeof sde === 'string' ? `kind ${JSON.stringify(sde)}` : typeof sde !== 'object' ? typeof sde : `kind ${JSON.stringify(kind) ?? 'undefined'}`;
    throw new TypeError(`samplingEpsilon: expected an SDE (veSde(), vpSde(), subVpSde()) or its kind 've', 'vp' or 'subvp', got ${got}`);
  }
  return kind === 've' ? SDE_EPSILON : 1e-3;
}
