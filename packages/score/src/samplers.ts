// Samplers that turn a score function into samples: Langevin dynamics, annealed Langevin dynamics
// (NCSN), and for a forward SDE the reverse-time SDE (Euler–Maruyama), predictor–corrector, and
// the probability-flow ODE (Euler, RK4, adaptive Dormand–Prince).
//
// All of them run batched on the tensor's device and never read device memory per step: random
// numbers come from keys derived on the host (foldIn(key, step)), step sizes and times are host
// numbers. Only an optional `callback(step, x)` (every `callbackEvery` steps) may read `x`, and the
// adaptive ODE solver reads one error norm per attempted step (its step-size control needs it).
// Each step runs inside tidy(), so the intermediate tensors of a step are freed at its end; when the
// score function or the callback throws, the sampler frees the state it holds before rethrowing.
// Steps are compiled with `jit` (unless `jit: false`): a step function takes the step's key and
// its time or noise level as arguments, so one program serves every step of a run.

import { jit, noGrad } from '@scorch/autograd';
import {
  type RandomKey, Tensor, abs, add, broadcastTo, checkKey, checkNumber, checkOneOf, checkOptions, foldIn, full, maximum, mean, tensor,
  mul, randn, splitKey, sqrt, sub, sum, tidy, type FloatDType,
  showValue, deviceFor, checkNumberList,
} from '@scorch/tensor';
import { type ScoreFunction, checkBatch, checkBoolean, checkScoreFunction, checkedScore, optionNames } from './conventions.js';
import { type Sde, perRow, samplingEpsilon } from './sde.js';

/** Called with the number of completed steps and the current samples (valid during the call; the sampler's, not to dispose). */
export type SamplerCallback = (step: number, x: Tensor) => void | Promise<void>;

export interface CallbackOptions {
  /** Called every `callbackEvery` steps; it may read x (the only host reads of a sampler). */
  callback?: SamplerCallback;
  /** Default 1. */
  callbackEvery?: number;
  /**
   * Compile the step once (`jit`) and replay it for every step; default true. false runs each
   * step eagerly, op by op (for debugging: a score function may then read values).
   */
  jit?: boolean;
}

/**
 * The samplers' defaults, in one place with their sources: the samplers read them, and so do
 * front ends that print or record the settings a run used.
 */
export const SAMPLER_DEFAULTS = {
  /** ε = 0.1 and 1000 steps: Song & Ermon 2019's toy experiment (§3.2, Fig. 3). */
  langevin: { stepSize: 0.1, steps: 1000 },
  /** ε = 2e-5, T = 100 steps per level (Song & Ermon 2019, §4.2, Alg. 1). */
  annealedLangevin: { stepSize: 2e-5, stepsPerLevel: 100 },
  /** N = 1000 time steps from T down to ε (Song et al. 2021, §4.2 / App. D). */
  reverseSde: { steps: 1000 },
  /** r = 0.16, M = 1 corrector step per time step (Song et al. 2021, VE settings; Alg. 2/3). */
  predictorCorrector: { snr: 0.16, correctorSteps: 1 },
  /** RK45 tolerances 1e-5 (Song et al. 2021's ODE sampler, scipy RK45) and an attempt limit. */
  probabilityFlow: { rtol: 1e-5, atol: 1e-5, maxSteps: 10000 },
} as const;

const POSITIVE = { min: 0, exclusiveMin: true } as const;
const COUNT = { integer: true, min: 0 } as const;
const POSITIVE_COUNT = { integer: true, min: 1 } as const;

/**
 * The checks every sampler makes before any work: the score is a function, the options an object
 * of known names with a key, and the callback settings make sense. Returns the score to call, which
 * checks the shape of what it returns. `known` undefined: the caller has already checked that
 * the options are an object of known names (a sampler that must, before it reads its own).
 */
function checkSamplerCall(where: string, score: unknown, opts: unknown, known: readonly string[] | undefined): ScoreFunction {
  checkScoreFunction(where, score);
  if (known !== undefined) {
    checkOptionsObject(where, opts);
    checkOptions(where, opts, known);
  }
  const { key, callback, callbackEvery, jit: compile } = opts as LangevinOptions;
  checkBoolean(where, 'jit', compile);
  checkKey(key, `${where}: opts.key`);
  if (callback !== undefined && typeof callback !== 'function') throw new TypeError(`${where}: callback must be a function (step, x) => void, got ${typeof callback}`);
  checkNumber(where, 'callbackEvery', callbackEvery, POSITIVE_COUNT);
  return checkedScore(where, score);
}

/** The options argument is an object (checked before a sampler reads any of its options). */
function checkOptionsObject(where: string, opts: unknown): asserts opts is object {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object with at least a key, got ${opts === null ? 'null' : typeof opts}`);
}

/** A per-row condition [N] holding one value (σ or t) for every sample. */
function conditionFor(x: Tensor, value: number | Tensor): Tensor {
  return typeof value === 'number' ? full([x.shape[0]!], value, { dtype: x.dtype, device: x.device }) : broadcastTo(value.reshape([1]), [x.shape[0]!]);
}

/**
 * The compiled steps of one sampler run. `make(fn)` turns a step `fn(x, key, ...scalars)` into a
 * function taking the step's scalars (times, noise levels, step sizes) as numbers, handed to `fn`
 * as scalar tensors of x's dtype and device: one program (jit) serves every step. `dispose` frees
 * the programs (kernels, buffers, constants) when the run ends.
 */
class CompiledSteps {
  private readonly compiled: { clearCache(): void }[] = [];
  constructor(private readonly compile: boolean | undefined) {}

  make(fn: (x: Tensor, key: RandomKey, ...scalars: Tensor[]) => Tensor): (x: Tensor, key: RandomKey, ...scalars: number[]) => Tensor {
    let run = fn;
    if (this.compile !== false) {
      const compiled = jit(fn);
      this.compiled.push(compiled);
      run = compiled;
    }
    // Sampling needs no ambient gradient graph: a model whose parameters require grad (trained
    // with backward()) is not recorded, and its steps stay compiled.
    return (x, key, ...scalars) => noGrad(() => run(x, key, ...scalars.map((v) => full([], v, { dtype: x.dtype, device: x.device }))));
  }

  /** Runs the sampler's loop, freeing the programs however it ends. */
  async run<T>(loop: () => Promise<T>): Promise<T> {
    try {
      return await loop();
    } finally {
      for (const c of this.compiled) c.clearCache();
    }
  }
}

function noiseLike(x: Tensor, key: RandomKey): Tensor {
  return randn(x.shape, { key, dtype: x.dtype as FloatDType, device: x.device });
}

/**
 * Drives a step loop: each step runs in tidy(); the previous state is freed once replaced (never
 * the caller's `init`); the callback sees every `callbackEvery`-th state. Run it with `runLoop`.
 */
class StepLoop {
  private x: Tensor;
  private count = 0;
  constructor(
    private readonly where: string,
    private readonly init: Tensor,
    private readonly opts: CallbackOptions,
  ) {
    this.x = init;
  }
  get current(): Tensor {
    return this.x;
  }
  async step(update: (x: Tensor) => Tensor): Promise<void> {
    const next = tidy(() => update(this.x));
    this.replace(next);
    this.count++;
    const every = this.opts.callbackEvery ?? 1;
    if (this.opts.callback && this.count % every === 0) {
      await this.opts.callback(this.count, this.x);
      checkShownSamples(this.where, this.x, this.count);
    }
  }
  replace(next: Tensor): void {
    if (this.x !== this.init) this.x.dispose();
    this.x = next;
  }
  result(): Tensor {
    return this.x === this.init ? this.init.detach() : this.x;
  }
  /** Frees the current state (unless it is `init`): the run failed and nothing will use it. */
  abandon(): void {
    this.replace(this.init);
  }
}

/**
 * Throws when the callback disposed the samples it was shown (they stay the sampler's): the next
 * step would fail on them with an error naming the compiled step, and after the last step the
 * sampler would return a disposed tensor without a word.
 */
function checkShownSamples(where: string, x: Tensor, step: number): void {
  if (x.isDisposed) {
    throw new Error(`${where}: the callback disposed the samples it was given at step ${step}; they are the sampler's state (valid during the call): read them, or keep a copy (x.detach()), and leave them undisposed`);
  }
}

/**
 * Runs `body` on a StepLoop from `init` and returns the final state, which the caller owns (a
 * copy of `init` when there were no steps). `init` is freed at the end when the sampler made it
 * itself (`ownsInit`). When the score function or the callback throws, the loop's state (and an
 * owned `init`) is freed before the error goes on, so a failed run leaves no tensor behind.
 */
async function runLoop(where: string, init: Tensor, ownsInit: boolean, opts: CallbackOptions, body: (loop: StepLoop) => Promise<void>): Promise<Tensor> {
  const loop = new StepLoop(where, init, opts);
  let out: Tensor;
  try {
    await body(loop);
    out = loop.result();
  } catch (error) {
    loop.abandon();
    if (ownsInit) init.dispose();
    throw error;
  }
  if (ownsInit && out !== init) init.dispose();
  return out;
}

// ------------------------------------------------------------------------------------------------
// Langevin dynamics

export interface LangevinOptions extends CallbackOptions {
  /** Key of the noise: step k draws with foldIn(key, k), so a run is reproducible. */
  key: RandomKey;
  /** Step size ε; default 0.1 (Song & Ermon 2019's toy experiment, §3.2 / Fig. 3). */
  stepSize?: number;
  /** Number of steps; default 1000 (same experiment). */
  steps?: number;
  /** Condition passed to the score on every step (a noise level: a fixed σ or t, ≥ 0), as a number broadcast to [N]. */
  cond?: number;
}
const LANGEVIN_OPTIONS = optionNames<LangevinOptions>()(['key', 'stepSize', 'steps', 'cond', 'callback', 'callbackEvery', 'jit']);

/**
 * Unadjusted Langevin dynamics from `init` [N, d]:
 *   x ← x + (ε/2)·s(x) + √ε·z,  z ~ N(0, I),
 * which samples p as ε → 0 and steps → ∞. In a multimodal p it mixes between modes very slowly,
 * so the mode proportions stay those of `init` (Song & Ermon 2019, §3.2.2).
 */
export async function langevinDynamics(score: ScoreFunction, init: Tensor, opts: LangevinOptions): Promise<Tensor> {
  const where = 'langevinDynamics';
  score = checkSamplerCall(where, score, opts, LANGEVIN_OPTIONS);
  checkBatch(where, init, 'init');
  const stepSize = opts.stepSize ?? SAMPLER_DEFAULTS.langevin.stepSize;
  const steps = opts.steps ?? SAMPLER_DEFAULTS.langevin.steps;
  checkNumber(where, 'stepSize', stepSize, POSITIVE);
  checkNumber(where, 'steps', steps, COUNT);
  checkNumber(where, 'cond', opts.cond, { min: 0 });
  const compiled = new CompiledSteps(opts.jit);
  const step = compiled.make((x, key) => {
    const cond = opts.cond === undefined ? undefined : conditionFor(x, opts.cond);
    const drift = score(x, cond).mul(stepSize / 2);
    return add(add(x, drift), noiseLike(x, key).mul(Math.sqrt(stepSize)));
  });
  return compiled.run(() =>
    runLoop(where, init, false, opts, async (loop) => {
      for (let i = 0; i < steps; i++) await loop.step((x) => step(x, foldIn(opts.key, i)));
    }),
  );
}

// ------------------------------------------------------------------------------------------------
// Annealed Langevin dynamics (NCSN)

/** σ₁ > … > σ_L geometric: σᵢ = σ_max (σ_min/σ_max)^((i−1)/(L−1)). */
export function geometricSigmas(sigmaMax: number, sigmaMin: number, levels: number): number[] {
  // Positional, with no defaults: a forgotten levels gave [] (no noise level at all).
  checkNumber('geometricSigmas', 'sigmaMax', sigmaMax, { ...POSITIVE, required: true });
  checkNumber('geometricSigmas', 'sigmaMin', sigmaMin, { ...POSITIVE, required: true });
  checkNumber('geometricSigmas', 'levels', levels, { ...POSITIVE_COUNT, required: true });
  if (levels === 1) return [sigmaMax];
  if (!(sigmaMax > sigmaMin)) throw new RangeError(`geometricSigmas: need sigmaMax > sigmaMin, got ${sigmaMax} and ${sigmaMin}`);
  const ratio = Math.log(sigmaMin / sigmaMax) / (levels - 1);
  return Array.from({ length: levels }, (_, i) => (i === levels - 1 ? sigmaMin : sigmaMax * Math.exp(ratio * i)));
}

export interface AnnealedLangevinOptions extends CallbackOptions {
  /** Key of the noise: every step's draw derives from it, so a run is reproducible. */
  key: RandomKey;
  /**
   * Noise levels σ₁ > … > σ_L; default geometricSigmas(1, 0.01, 10), Song & Ermon 2019's image
   * setting (their 2-D toy uses geometricSigmas(20, 1, 10)).
   */
  sigmas?: readonly number[];
  /** ε; default 2e-5 (Song & Ermon 2019, §4.2, Alg. 1). */
  stepSize?: number;
  /** T, steps per noise level; default 100 (Song & Ermon 2019). */
  stepsPerLevel?: number;
  /**
   * Finish with one noise-free step x ← x + σ_L² s(x, σ_L) (Tweedie's denoising: the posterior
   * mean E[x₀ | x] under the smallest noise), as Jolicoeur-Martineau et al. 2020 and Song & Ermon
   * 2020 recommend; default true.
   */
  denoise?: boolean;
}
const ANNEALED_LANGEVIN_OPTIONS = optionNames<AnnealedLangevinOptions>()(['key', 'sigmas', 'stepSize', 'stepsPerLevel', 'denoise', 'callback', 'callbackEvery', 'jit']);

/**
 * Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1) from `init` [N, d], with a
 * noise-conditional score s(x, σ) (`cond` is σ, [N]):
 *   for i = 1..L: αᵢ = ε·σᵢ²/σ_L²; repeat T times: x ← x + (αᵢ/2)·s(x, σᵢ) + √αᵢ·z,
 * then (if `denoise`) x ← x + σ_L²·s(x, σ_L). Large σ first lets samples move between modes, so
 * the mode proportions come out right where plain Langevin keeps those of `init`.
 */
export async function annealedLangevinDynamics(score: ScoreFunction, init: Tensor, opts: AnnealedLangevinOptions): Promise<Tensor> {
  const where = 'annealedLangevinDynamics';
  score = checkSamplerCall(where, score, opts, ANNEALED_LANGEVIN_OPTIONS);
  checkBatch(where, init, 'init');
  const sigmas = opts.sigmas ?? geometricSigmas(1, 0.01, 10);
  const stepSize = opts.stepSize ?? SAMPLER_DEFAULTS.annealedLangevin.stepSize;
  const stepsPerLevel = opts.stepsPerLevel ?? SAMPLER_DEFAULTS.annealedLangevin.stepsPerLevel;
  const denoise = opts.denoise ?? true;
  checkNumber(where, 'stepSize', stepSize, POSITIVE);
  checkNumber(where, 'stepsPerLevel', stepsPerLevel, COUNT);
  checkBoolean(where, 'denoise', denoise);
  // showValue, not JSON: a tensor printed its internals (or threw on a cycle), a Float64Array as {"0":1}.
  if (!Array.isArray(sigmas)) throw new TypeError(`${where}: sigmas must be an array of numbers (σ₁ > … > σ_L), got ${showValue(sigmas)}`);
  if (sigmas.length === 0) throw new Error(`${where}: sigmas must list at least one noise level, got []`);
  sigmas.forEach((s, i) => {
    checkNumber(where, `sigmas[${i}]`, s, POSITIVE);
    if (i > 0 && !(s < sigmas[i - 1]!)) throw new RangeError(`${where}: sigmas must decrease, got ${sigmas[i - 1]} then ${s} at index ${i}`);
  });
  const sigmaLast = sigmas[sigmas.length - 1]!;
  // One program for every level: σ, α/2 and √α are the step's scalars.
  const compiled = new CompiledSteps(opts.jit);
  const langevinStep = compiled.make((x, key, sigma, halfAlpha, rootAlpha) => {
    const drift = score(x, conditionFor(x, sigma!)).mul(halfAlpha!);
    return add(add(x, drift), noiseLike(x, key).mul(rootAlpha!));
  });
  return compiled.run(() => runLoop(where, init, false, opts, async (loop) => {
    let step = 0;
    for (const sigma of sigmas) {
      const alpha = (stepSize * sigma * sigma) / (sigmaLast * sigmaLast);
      for (let t = 0; t < stepsPerLevel; t++) {
        const key = foldIn(opts.key, step++);
        await loop.step((x) => langevinStep(x, key, sigma, alpha / 2, Math.sqrt(alpha)));
      }
    }
    if (denoise) {
      // A step of its own, L·T + 1, shown to the callback as the others are (the reference code
      // appends the denoised samples to its trajectory), so the last state a callback sees is
      // the result. Eager, so outside the compiled steps' noGrad: it records nothing into the
      // ambient graph either.
      await loop.step((x) => noGrad(() => add(x, score(x, conditionFor(x, sigmaLast)).mul(sigmaLast * sigmaLast))));
    }
  }));
}

// ------------------------------------------------------------------------------------------------
// Reverse-time SDE samplers

export interface SdeSamplerOptions extends CallbackOptions {
  /** Key of the prior draw and of every step's noise, so a run is reproducible. */
  key: RandomKey;
  /** Samples to draw, [N, d]; with `init`, it must be init's shape if given. */
  shape?: readonly [number, number];
  /** Starting samples at time T; default a draw of `sde.priorSample(shape)`. Not disposed. */
  init?: Tensor;
  /** Default float32 (with `init`, it must be init's dtype if given). */
  dtype?: FloatDType;
  /** Default: the default device (with `init`, it must be init's device if given). */
  device?: string;
  /** Number of time steps N from T down to ε; default 1000 (Song et al. 2021, §4.2 / App. D). */
  steps?: number;
  /** Final time ε; default samplingEpsilon(sde): 1e-5 for VE, 1e-3 for VP and sub-VP (see sde.ts). */
  eps?: number;
  /**
   * Leave the noise out of the last step, returning its mean (Song et al. 2021's reference code,
   * `denoise=True`): the last noise term has scale g(ε)√Δt and only blurs the result. Default true.
   * probabilityFlowOde refuses it: the flow adds no noise.
   */
  denoiseFinalStep?: boolean;
}
const SDE_SAMPLER_OPTIONS = optionNames<SdeSamplerOptions>()(['key', 'shape', 'init', 'dtype', 'device', 'steps', 'eps', 'denoiseFinalStep', 'callback', 'callbackEvery', 'jit']);

/**
 * Checks a reverse-time sampler's call (every option before any work), then makes its start
 * samples, time grid and keys. `known` as in checkSamplerCall.
 */
function reverseSetup(where: string, rawScore: ScoreFunction, sde: Sde, opts: SdeSamplerOptions, known: readonly string[] | undefined) {
  const score = checkSamplerCall(where, rawScore, opts, known);
  if (!sde || typeof sde.drift !== 'function' || typeof sde.discretize !== 'function') throw new TypeError(`${where}: sde must be an Sde (veSde(), vpSde() or subVpSde())`);
  const steps = opts.steps ?? SAMPLER_DEFAULTS.reverseSde.steps;
  const eps = opts.eps ?? samplingEpsilon(sde);
  checkNumber(where, 'steps', steps, POSITIVE_COUNT);
  checkNumber(where, 'eps', eps, { min: 0, exclusiveMin: true, max: sde.T, exclusiveMax: true });
  checkBoolean(where, 'denoiseFinalStep', opts.denoiseFinalStep);
  if (opts.dtype !== undefined) checkOneOf(where, 'dtype', opts.dtype, ['float32', 'float64'] as const);
  const [priorKey, stepKey] = splitKey(opts.key, 2);
  let init = opts.init;
  if (init !== undefined) {
    checkBatch(where, init, 'init');
    // The samples come from init: a shape, dtype or device that says otherwise was a mistake.
    const given = init;
    const conflicts = [
      opts.shape !== undefined && (!Array.isArray(opts.shape) || opts.shape.length !== given.rank || opts.shape.some((n, i) => n !== given.shape[i])) ? `shape ${showValue(opts.shape)} (init's is ${showValue(given.shape)})` : null,
      opts.dtype !== undefined && opts.dtype !== given.dtype ? `dtype '${opts.dtype}' (init's is '${given.dtype}')` : null,
      opts.device !== undefined && opts.device !== given.device ? `device '${opts.device}' (init's is '${given.device}')` : null,
    ].filter((c) => c !== null);
    if (conflicts.length > 0) throw new Error(`${where}: init gives the samples, but ${conflicts.join(', ')} was given too; leave it out or make it init's`);
  } else {
    const shape: unknown = opts.shape;
    if (!Array.isArray(shape) || shape.length !== 2) throw new Error(`${where}: give either init (a [N, d] tensor) or shape [N, d], got shape ${showValue(shape)}`);
    checkNumberList(where, 'shape', shape, POSITIVE_COUNT);
    deviceFor(where, opts.device, opts.dtype ?? 'float32'); // under the sampler's name, not the prior's draw
    init = sde.priorSample(opts.shape!, { key: priorKey, dtype: opts.dtype ?? 'float32', device: opts.device });
  }
  const dt = (sde.T - eps) / steps;
  // Step i goes from tᵢ = T − i·Δt down to tᵢ₊₁ (the last one lands on ε exactly).
  const timeAt = (i: number) => (i === steps ? eps : sde.T - i * dt);
  return { score, init, ownsInit: !opts.init, steps, dt, timeAt, stepKey };
}

/**
 * Euler–Maruyama on the reverse-time SDE (Song et al. 2021, eq. 6), time conditional score
 * s(x, t) (`cond` is t, [N]), from tᵢ to tᵢ₊₁ = tᵢ − Δt:
 *   x ← x − [f(x, tᵢ) − g(tᵢ)²·s(x, tᵢ)]·Δt + g(tᵢ)·√Δt·z.
 */
export async function reverseSdeEulerMaruyama(score: ScoreFunction, sde: Sde, opts: SdeSamplerOptions): Promise<Tensor> {
  const { score: checked, init, ownsInit, steps, dt, timeAt, stepKey } = reverseSetup('reverseSdeEulerMaruyama', score, sde, opts, SDE_SAMPLER_OPTIONS);
  score = checked;
  const denoiseFinal = opts.denoiseFinalStep ?? true;
  // The noise-free last step is a second program (it is traced once, for one step).
  const compiled = new CompiledSteps(opts.jit);
  const makeStep = (addNoise: boolean) =>
    compiled.make((x, key, time) => {
      const t = conditionFor(x, time!);
      const g = perRow(sde.diffusion(t));
      const reverseDrift = sub(sde.drift(x, t), mul(mul(g, g), score(x, t)));
      const xMean = sub(x, reverseDrift.mul(dt));
      return addNoise ? add(xMean, mul(g, noiseLike(x, key)).mul(Math.sqrt(dt))) : xMean;
    });
  return runReverseTime('reverseSdeEulerMaruyama', compiled, makeStep, denoiseFinal, init, ownsInit, opts, steps, stepKey, timeAt);
}

/**
 * The loop of the reverse-time samplers: step i from tᵢ with key foldIn(stepKey, i), the last
 * step noise-free when `denoiseFinal` (a second compiled program, traced once).
 */
function runReverseTime(
  where: string, compiled: CompiledSteps, makeStep: (addNoise: boolean) => (x: Tensor, key: RandomKey, time: number) => Tensor, denoiseFinal: boolean,
  init: Tensor, ownsInit: boolean, opts: CallbackOptions, steps: number, stepKey: RandomKey, timeAt: (i: number) => number,
): Promise<Tensor> {
  const noisyStep = makeStep(true);
  const lastStep = denoiseFinal ? makeStep(false) : noisyStep;
  return compiled.run(() =>
    runLoop(where, init, ownsInit, opts, async (loop) => {
      for (let i = 0; i < steps; i++) {
        const step = i === steps - 1 ? lastStep : noisyStep;
        await loop.step((x) => step(x, foldIn(stepKey, i), timeAt(i)));
      }
    }),
  );
}

export interface PredictorCorrectorOptions extends SdeSamplerOptions {
  /** Signal-to-noise ratio r of the Langevin corrector; default 0.16 (Song et al. 2021, VE settings). */
  snr?: number;
  /** Corrector steps M per time step; default 1 (Song et al. 2021, Alg. 2/3). */
  correctorSteps?: number;
  /**
   * 'reverseDiffusion' (default; Song et al. 2021's PC samplers) or 'eulerMaruyama'.
   */
  predictor?: 'reverseDiffusion' | 'eulerMaruyama';
}
const PC_OPTIONS = optionNames<PredictorCorrectorOptions>()([...SDE_SAMPLER_OPTIONS, 'snr', 'correctorSteps', 'predictor']);

/**
 * The discrete chain's αᵢ = 1 − β(tᵢ)Δt over the time grid must be positive for the corrector
 * (ε ∝ α, then √(2ε)) and non-negative for VP's reverse-diffusion step (√(1 − βᵢ)): with VP's
 * default β_max = 20, fewer than 20 steps make it negative at t = T, and every sample NaN.
 * Refused before any work, with the number of steps that would do.
 */
function checkChainAlpha(
  where: string, sde: Sde, init: Tensor, steps: number, dt: number, timeAt: (i: number) => number,
  corrector: boolean, reverseDiffusionVp: boolean, ownsInit: boolean,
): void {
  if (!corrector && !reverseDiffusionVp) return;
  // Host numbers: evaluated on the CPU in float64, so a GPU run waits on nothing.
  const values = tidy(() => sde.discreteAlpha(tensor(Array.from({ length: steps }, (_, i) => timeAt(i)), { device: 'cpu', dtype: 'float64' }), dt).dataSync());
  let worst = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! < values[worst]!) worst = i;
  const alpha = values[worst]!;
  if (corrector ? alpha > 0 : alpha >= 0) return;
  if (ownsInit) init.dispose();
  // α = 1 − β(t)Δt with Δt = (T − ε)/steps: the smallest count with β(t)(T − ε)/steps below 1.
  const betaDt = 1 - alpha;
  const needed = Math.floor((betaDt * steps) + 1e-9) + 1;
  const what = corrector ? 'the corrector (correctorSteps > 0) needs αᵢ > 0' : 'the reverse-diffusion step needs βᵢ ≤ 1';
  throw new RangeError(
    `${where}: with ${steps} steps the discrete chain's αᵢ = 1 − β(t)Δt is ${alpha.toPrecision(4)} at t = ${timeAt(worst).toPrecision(4)}; ` +
      `${what}, or every sample is NaN; use at least ${needed} steps`,
  );
}

/**
 * Predictor–corrector sampling (Song et al. 2021, Alg. 1–3; ordered as in their reference code):
 * at each tᵢ, M Langevin corrector steps targeting p_{tᵢ}, then one predictor step to tᵢ₊₁.
 *
 * Corrector (Alg. 4/5): g = s(x, tᵢ), z ~ N(0, I), ε = 2α(r‖z‖/‖g‖)² (norms per sample, averaged
 * over the batch, so ε is one number per step), x ← x + ε·g + √(2ε)·z, with α = `sde.discreteAlpha`
 * (1 − β(tᵢ)Δt for VP and sub-VP, 1 for VE).
 *
 * Reverse-diffusion predictor (eq. 46): x ← x − fᵢ + Gᵢ²·s(x, tᵢ) + Gᵢ·z with the SDE's own
 * discretisation fᵢ, Gᵢ (`sde.discretize`: SMLD's chain for VE, DDPM's for VP).
 * With `predictor: 'eulerMaruyama'` the predictor is the step of reverseSdeEulerMaruyama.
 */
export async function predictorCorrector(score: ScoreFunction, sde: Sde, opts: PredictorCorrectorOptions): Promise<Tensor> {
  const where = 'predictorCorrector';
  checkOptionsObject(where, opts);
  // Before any option is read: a null snr read through ?? as the default then met the
  // correctorSteps-0 check ('snr sets the Langevin corrector's step size ...'), not its own.
  checkOptions(where, opts, PC_OPTIONS);
  const snr = opts.snr ?? SAMPLER_DEFAULTS.predictorCorrector.snr;
  const correctorSteps = opts.correctorSteps ?? SAMPLER_DEFAULTS.predictorCorrector.correctorSteps;
  const predictor = opts.predictor ?? 'reverseDiffusion';
  checkNumber(where, 'snr', snr, POSITIVE);
  checkNumber(where, 'correctorSteps', correctorSteps, COUNT);
  checkOneOf(where, 'predictor', predictor, ['reverseDiffusion', 'eulerMaruyama'] as const);
  // snr sets the corrector's step: with no corrector steps it would be dropped silently.
  if (correctorSteps === 0 && opts.snr !== undefined) throw new Error(`${where}: snr sets the Langevin corrector's step size; with correctorSteps 0 there is no corrector (leave snr out, or set correctorSteps >= 1)`);
  const { score: checked, init, ownsInit, steps, dt, timeAt, stepKey } = reverseSetup(where, score, sde, opts, undefined); // options checked above
  score = checked;
  checkChainAlpha(where, sde, init, steps, dt, timeAt, correctorSteps > 0, predictor === 'reverseDiffusion' && sde.kind === 'vp', ownsInit);
  const denoiseFinal = opts.denoiseFinalStep ?? true;
  const compiled = new CompiledSteps(opts.jit);
  const makeStep = (addNoise: boolean) =>
    compiled.make((x0, stepKeys, time) => {
      const t = conditionFor(x0, time!);
      let x = x0;
      for (let j = 0; j < correctorSteps; j++) {
        const g = score(x, t);
        const z = noiseLike(x, foldIn(stepKeys, j + 1));
        const gradNorm = mean(sqrt(sum(mul(g, g), 1)));
        const noiseNorm = mean(sqrt(sum(mul(z, z), 1)));
        const ratio = noiseNorm.div(gradNorm).mul(snr);
        const step = mul(mul(ratio, ratio).mul(2), sde.discreteAlpha(t, dt)); // [N, 1], equal rows: one ε per step
        x = add(add(x, mul(step, g)), mul(sqrt(step.mul(2)), z));
      }
      const z = noiseLike(x, foldIn(stepKeys, 0));
      const s = score(x, t);
      let xMean: Tensor;
      let noiseScale: Tensor;
      if (predictor === 'eulerMaruyama') {
        const g = perRow(sde.diffusion(t));
        xMean = sub(x, sub(sde.drift(x, t), mul(mul(g, g), s)).mul(dt));
        noiseScale = g.mul(Math.sqrt(dt));
      } else {
        const { f, G } = sde.discretize(x, t, dt);
        xMean = add(sub(x, f), mul(mul(G, G), s));
        noiseScale = G;
      }
      return addNoise ? add(xMean, mul(noiseScale, z)) : xMean;
    });
  return runReverseTime(where, compiled, makeStep, denoiseFinal, init, ownsInit, opts, steps, stepKey, timeAt);
}

// ------------------------------------------------------------------------------------------------
// Probability-flow ODE

export type OdeMethod = 'euler' | 'rk4' | 'rk45';

export interface ProbabilityFlowOptions extends SdeSamplerOptions {
  /** 'euler', 'rk4' (fixed `steps`), or 'rk45' (adaptive Dormand–Prince); default 'rk45'. */
  method?: OdeMethod;
  /** RK45 relative tolerance; default 1e-5 (Song et al. 2021's ODE sampler, scipy RK45). */
  rtol?: number;
  /** RK45 absolute tolerance; default 1e-5 (same). */
  atol?: number;
  /** RK45 attempted-step limit before giving up; default 10000. */
  maxSteps?: number;
  /** RK45 first step size |h|; default chosen from the problem (Hairer et al. 1993, §II.4). */
  initialStep?: number;
}
const ODE_OPTIONS = optionNames<ProbabilityFlowOptions>()([...SDE_SAMPLER_OPTIONS, 'method', 'rtol', 'atol', 'maxSteps', 'initialStep']);
const RK45_ONLY_OPTIONS = ['rtol', 'atol', 'maxSteps', 'initialStep'] as const;

export interface OdeSolution {
  /** Samples at t = ε, [N, d]; owned by the caller. */
  x: Tensor;
  /** Score (network) evaluations. */
  nfe: number;
  /** Steps taken (all steps for the fixed-step methods). */
  acceptedSteps: number;
  /** Steps rejected by the RK45 error control (0 for fixed-step methods). */
  rejectedSteps: number;
}

/** The probability-flow velocity h(x, t) = f(x, t) − ½ g(t)² s(x, t) (Song et al. 2021, eq. 13). */
function flowVelocity(score: ScoreFunction, sde: Sde, x: Tensor, time: number | Tensor): Tensor {
  const t = conditionFor(x, time);
  const g = perRow(sde.diffusion(t));
  return sub(sde.drift(x, t), mul(mul(g, g), score(x, t)).mul(0.5));
}

// Dormand–Prince 5(4) tableau (Dormand & Prince 1980): nodes c, stage weights a, 5th-order
// weights (= the last stage row, so the last stage is the next step's first: FSAL), and the
// differences between the 5th- and 4th-order weights for the error estimate.
const DP_C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1];
const DP_A: number[][] = [
  [],
  [1 / 5],
  [3 / 40, 9 / 40],
  [44 / 45, -56 / 15, 32 / 9],
  [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
  [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
];
const DP_ERROR = [71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40];

/** h Σⱼ wⱼ kⱼ over the non-zero weights. */
function weightedSum(h: number, weights: readonly number[], ks: readonly Tensor[]): Tensor {
  let out: Tensor | null = null;
  weights.forEach((w, j) => {
    if (w === 0) return;
    const term = ks[j]!.mul(h * w);
    out = out ? add(out, term) : term;
  });
  if (!out) throw new Error('internal: a Runge–Kutta row with no non-zero weight');
  return out;
}

/**
 * Samples by integrating the probability-flow ODE (Song et al. 2021, eq. 13)
 *   dx/dt = f(x, t) − ½ g(t)² s(x, t)
 * from t = T down to ε, deterministically from the prior samples:
 * - 'euler': x ← x − h(x, tᵢ)Δt;
 * - 'rk4': classical Runge–Kutta with step −Δt;
 * - 'rk45': Dormand–Prince 5(4) with local extrapolation and FSAL; a step is accepted when the
 *   RMS over all elements of (x₅ − x₄)/(atol + rtol·max(|x|, |x_new|)) is ≤ 1, and the next |Δt|
 *   is |Δt|·min(10, max(0.2, 0.9·err^(−1/5))) (no growth right after a rejection), as scipy's
 *   RK45, which Song et al. use. This error norm is read to the host once per attempted step
 *   (and three times to pick the first step): the only per-step reads of any sampler here.
 * `steps` sets the fixed-step methods' step count (default 1000); RK45 refuses it (it chooses
 * its own steps), and runs eagerly whatever `jit` says (its step sizes are read back).
 */
export async function probabilityFlowOde(score: ScoreFunction, sde: Sde, opts: ProbabilityFlowOptions): Promise<OdeSolution> {
  const where = 'probabilityFlowOde';
  checkOptionsObject(where, opts);
  // Before any option is read: a null method read through ?? as 'rk45', so with steps it was
  // refused as 'steps applies to the fixed-step methods', and a null rtol beside 'euler' as
  // applying to 'rk45' only, messages about options the caller did not set.
  checkOptions(where, opts, ODE_OPTIONS);
  const method = opts.method ?? 'rk45';
  checkOneOf(where, 'method', method, ['euler', 'rk4', 'rk45'] as const);
  // Options the chosen method would ignore are refused, so no setting is silently dropped.
  if (method === 'rk45' && opts.steps !== undefined) throw new Error(`${where}: steps applies to the fixed-step methods 'euler' and 'rk4'; 'rk45' chooses its own steps (set rtol/atol)`);
  const ignored = RK45_ONLY_OPTIONS.filter((k) => opts[k] !== undefined);
  if (method !== 'rk45' && ignored.length > 0) throw new Error(`${where}: ${ignored.join(', ')} applies to method 'rk45' only, not to '${method}'`);
  if (opts.denoiseFinalStep !== undefined) {
    throw new Error(`${where}: denoiseFinalStep applies to the stochastic samplers (reverseSdeEulerMaruyama, predictorCorrector); the probability-flow ODE adds no noise to leave out`);
  }
  for (const k of ['rtol', 'atol', 'initialStep'] as const) checkNumber(where, k, opts[k], POSITIVE);
  checkNumber(where, 'maxSteps', opts.maxSteps, POSITIVE_COUNT);
  const { score: checked, init, ownsInit, steps, dt, timeAt } = reverseSetup(where, score, sde, opts, undefined); // options checked above
  score = checked;
  // RK45 runs eagerly (its step sizes are read back); like the compiled steps, it records nothing
  // into the ambient gradient graph.
  const velocity = (x: Tensor, t: number) => noGrad(() => flowVelocity(score, sde, x, t));
  if (method === 'rk45') {
    let solution: OdeSolution;
    try {
      solution = await dormandPrince(velocity, init, sde.T, opts.eps ?? samplingEpsilon(sde), opts);
    } catch (error) {
      if (ownsInit) init.dispose();
      throw error;
    }
    if (ownsInit && solution.x !== init) init.dispose();
    return solution;
  }
  // One program for every step: the step's time and its midpoint and end are its scalars (the
  // key argument is unused: the flow is deterministic).
  const flow = (x: Tensor, t: number | Tensor) => flowVelocity(score, sde, x, t);
  const compiled = new CompiledSteps(opts.jit);
  const step = compiled.make((x, _key, t, tMid, tEnd) => {
    if (method === 'euler') return sub(x, flow(x, t!).mul(dt));
    const h = -dt;
    const k1 = flow(x, t!);
    const k2 = flow(add(x, k1.mul(h / 2)), tMid!);
    const k3 = flow(add(x, k2.mul(h / 2)), tMid!);
    const k4 = flow(add(x, k3.mul(h)), tEnd!);
    return add(x, add(add(k1, k4), add(k2, k3).mul(2)).mul(h / 6));
  });
  const x = await compiled.run(() =>
    runLoop(where, init, ownsInit, opts, async (loop) => {
      for (let i = 0; i < steps; i++) {
        const t = timeAt(i);
        await loop.step((x) => step(x, opts.key, t, t - dt / 2, t - dt));
      }
    }),
  );
  return { x, nfe: steps * (method === 'euler' ? 1 : 4), acceptedSteps: steps, rejectedSteps: 0 };
}

async function readScalar(t: Tensor): Promise<number> {
  const v = await t.item();
  t.dispose();
  return v;
}

async function dormandPrince(
  velocity: (x: Tensor, t: number) => Tensor,
  init: Tensor,
  tStart: number,
  tEnd: number,
  opts: ProbabilityFlowOptions,
): Promise<OdeSolution> {
  const where = 'probabilityFlowOde (rk45)';
  const rtol = opts.rtol ?? SAMPLER_DEFAULTS.probabilityFlow.rtol;
  const atol = opts.atol ?? SAMPLER_DEFAULTS.probabilityFlow.atol;
  const maxSteps = opts.maxSteps ?? SAMPLER_DEFAULTS.probabilityFlow.maxSteps;
  const direction = Math.sign(tEnd - tStart);
  const span = Math.abs(tEnd - tStart);
  // RMS of v measured in units of the mixed tolerance atol + rtol·max(|x|, |x_new|), elementwise.
  const rmsScaled = (v: Tensor, x: Tensor, xNew: Tensor) => sqrt(mean(v.div(maximum(abs(x), abs(xNew)).mul(rtol).add(atol)).square()));

  let nfe = 0;
  let k1 = tidy(() => velocity(init, tStart));
  nfe++;
  let x = init;
  // The state this run holds (x unless it is init, k1, an attempt's results): freed if the score
  // function or the callback throws, so a failed run leaves no tensor behind.
  let pending: Tensor[] = [];
  try {
    // First step size (Hairer, Nørsett & Wanner 1993, §II.4): from the sizes of x, x' and x''.
    let h: number;
    if (opts.initialStep !== undefined) {
      h = Math.min(opts.initialStep, span);
    } else {
      const d0 = await readScalar(tidy(() => rmsScaled(init, init, init)));
      const d1 = await readScalar(tidy(() => rmsScaled(k1, init, init)));
      let h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1;
      h0 = Math.min(h0, span);
      const d2 = await readScalar(
        tidy(() => {
          const x1 = add(init, k1.mul(direction * h0));
          const f1 = velocity(x1, tStart + direction * h0);
          return rmsScaled(sub(f1, k1), init, init).div(h0);
        }),
      );
      nfe++;
      const h1 = Math.max(d1, d2) <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : (0.01 / Math.max(d1, d2)) ** (1 / 5);
      h = Math.min(100 * h0, h1, span);
    }

    let t = tStart;
    let accepted = 0;
    let rejected = 0;
    let justRejected = false;
    const every = opts.callbackEvery ?? 1;
    while (direction * (tEnd - t) > 0) {
      if (accepted + rejected >= maxSteps) {
        throw new Error(`${where}: no solution after ${maxSteps} attempted steps (at t = ${t}, |Δt| = ${h}); raise maxSteps or loosen rtol/atol`);
      }
      if (h < 1e-14 * Math.max(1, Math.abs(t))) throw new Error(`${where}: step size underflow at t = ${t} (|Δt| = ${h}); the score may be non-finite or stiff there`);
      const last = h >= direction * (tEnd - t);
      const step = last ? tEnd - t : direction * h;
      const xNow = x;
      const kFirst = k1;
      const attempt = tidy(() => {
        const ks: Tensor[] = [kFirst];
        for (let s = 1; s < 7; s++) {
          const xs = add(xNow, weightedSum(step, DP_A[s]!, ks));
          ks.push(velocity(xs, t + DP_C[s]! * step));
        }
        const xNew = add(xNow, weightedSum(step, DP_A[6]!, ks)); // 5th-order solution; stage 7 was f(xNew)
        const errVector = weightedSum(step, DP_ERROR, ks); // x₅ − x₄
        return { xNew, kLast: ks[6]!, err: rmsScaled(errVector, xNow, xNew) };
      });
      pending = [attempt.xNew, attempt.kLast];
      nfe += 6;
      const err = await readScalar(attempt.err);
      if (!Number.isFinite(err)) throw new Error(`${where}: the error estimate is ${err} at t = ${t}; the score returned non-finite values`);
      pending = [];
      if (err <= 1) {
        if (x !== init) x.dispose();
        k1.dispose();
        x = attempt.xNew;
        k1 = attempt.kLast;
        t = last ? tEnd : t + step;
        accepted++;
        const growth = err === 0 ? 10 : Math.min(10, Math.max(0.2, 0.9 * err ** (-1 / 5)));
        h = Math.abs(step) * (justRejected ? Math.min(1, growth) : growth);
        justRejected = false;
        if (opts.callback && accepted % every === 0) {
          await opts.callback(accepted, x);
          checkShownSamples(where, x, accepted);
        }
      } else {
        attempt.xNew.dispose();
        attempt.kLast.dispose();
        rejected++;
        h = Math.abs(step) * Math.max(0.2, 0.9 * err ** (-1 / 5));
        justRejected = true;
      }
    }
    k1.dispose();
    return { x: x === init ? init.detach() : x, nfe, acceptedSteps: accepted, rejectedSteps: rejected };
  } catch (error) {
    for (const p of pending) p.dispose();
    k1.dispose();
    if (x !== init) x.dispose();
    throw error;
  }
}
