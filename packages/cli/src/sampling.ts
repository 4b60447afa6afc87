// Drawing samples from a trained model with the sampler the user names: the step size plain
// Langevin takes here, the starting points, and a record of a few chains' positions for the
// trajectory plot. Recording reads only those few rows, every 1% of the run, so the sampler
// stays on the device between reads. Samples that came out non-finite are refused here, with
// their count and what to change, before any metric or file is made of them.

import { type RandomKey, type Tensor, rand, randomKey, splitKey, tidy } from '@scorch/tensor';
import {
  type NoiseFamily, type NoiseSpec, OBJECTIVES, OBJECTIVE_NAMES, type ObjectiveName, SAMPLERS, SAMPLERS_FOR, SAMPLER_DEFAULTS, SDE_EVALUATION_STD,
  type SamplerName, type ScoreModel, annealedLangevinDynamics, cleanestCondition, countNonFinite, langevinDynamics,
  predictorCorrector, probabilityFlowOde, reverseSdeEulerMaruyama, samplingEpsilon, sdeOf, turnEventLoop,
} from '@scorch/score';
import { UsageError } from './args.js';

export interface SamplerChoices {
  readonly sampler: SamplerName;
  /** Samples to draw. */
  readonly n: number;
  /** Langevin steps, or time steps of em/pc; undefined: the sampler's default. */
  readonly sampleSteps?: number;
  /** Annealed Langevin steps per noise level. */
  readonly stepsPerLevel: number;
  /** Langevin / annealed Langevin step size; undefined: the sampler's default. */
  readonly stepSize?: number;
}

/**
 * Plain Langevin's step size per unit of variance: Song & Ermon 2019's toy uses ε = 0.1 for
 * unit-variance modes (SAMPLER_DEFAULTS.langevin); ε scales with the variance v of the density's
 * finest structure (ULA needs ε well below 2v to be stable and unbiased).
 */
export const LANGEVIN_STEP_PER_VARIANCE = SAMPLER_DEFAULTS.langevin.stepSize;

export interface SampleRun {
  readonly samples: Tensor;
  /** Positions of the recorded chains, each interleaved x0, y0, x1, y1, … */
  readonly paths: Float64Array[];
  /** Where the recorded paths begin, in words: "their starting points", "where σ = 1.76 begins". */
  readonly pathsFrom: string;
  readonly seconds: number;
  /** The settings used (defaults resolved), for the report. */
  readonly settings: Readonly<Record<string, string | number>>;
}

export interface SampleContext {
  readonly model: ScoreModel;
  readonly noise: NoiseSpec;
  readonly loss: ObjectiveName;
  /** Half-width of the square the data lives in: Langevin chains start uniformly inside it. */
  readonly domain: number;
  /** The data's finest length scale (DatasetEntry.localStd). */
  readonly localStd: number;
}

/** The losses of the given noise families, comma-separated in the registry's order, for help texts. */
export function lossesOf(...families: NoiseFamily[]): string {
  return OBJECTIVE_NAMES.filter((o) => families.includes(OBJECTIVES[o].family)).join(', ');
}

/**
 * The losses grouped by a text derived from their family (its default sampler, or the list of
 * samplers that fit it), as 'text for losses; …', for help texts.
 */
export function lossesBySampler(text: (fits: readonly SamplerName[]) => string): string {
  const groups = new Map<string, ObjectiveName[]>();
  for (const o of OBJECTIVE_NAMES) {
    const key = text(SAMPLERS_FOR[OBJECTIVES[o].family]);
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  return [...groups].map(([key, losses]) => `${key} for ${losses.join(', ')}`).join('; ');
}

/** Throws a UsageError when `sampler` does not fit a model trained with `loss`. */
export function checkSamplerFits(where: string, sampler: SamplerName, loss: ObjectiveName): void {
  const fits = SAMPLERS_FOR[OBJECTIVES[loss].family];
  if (fits.includes(sampler)) return;
  const losses = OBJECTIVE_NAMES.filter((o) => SAMPLERS_FOR[OBJECTIVES[o].family].includes(sampler));
  const list = `--loss ${losses.slice(0, -1).join(', ')} or ${losses.at(-1)}`;
  const needs = sampler === 'ald' ? `a noise-conditional model (${list})` : `a model trained with an SDE loss (${list})`;
  throw new UsageError(`${where}: --sampler ${sampler} needs ${needs}, but this model was trained with ${loss}; use --sampler ${fits.join(' or ')}`);
}

/** The variance of the modelled density's finest structure: the data's, plus the model's own noise. */
function finestVariance(ctx: SampleContext): number {
  const { noise } = ctx;
  const modelNoise =
    noise.kind === 'levels' ? noise.sigmas[noise.sigmas.length - 1]! ** 2
    : noise.kind === 'single' ? noise.sigma ** 2
    : noise.kind === 'kde' ? Math.min(...noise.bandwidth) ** 2
    : noise.kind === 'sde' ? SDE_EVALUATION_STD ** 2
    : 0;
  return ctx.localStd ** 2 + modelNoise;
}

/** A run's random streams, each for one use, all from its --seed (see `runKeys`). */
export interface RunKeys {
  /** The model's initial parameters (a restored model draws nothing from it). */
  readonly model: RandomKey;
  /** Training: step n draws from foldIn(training, n). */
  readonly training: RandomKey;
  /** The fresh data the samples are compared with (metrics and plots). */
  readonly reference: RandomKey;
  /** The sampler's start and noise. */
  readonly samples: RandomKey;
  /** The KDE's points (esm-kde). */
  readonly kde: RandomKey;
  /** The points that set the data's scale (σ_max, the plots' extent). */
  readonly scale: RandomKey;
}

/**
 * The random streams of a run with seed `seed`. `scorch train` and `scorch sample` derive them
 * alike, so `scorch sample --seed S` with a training run's seed S, sampler and sampler flags draws
 * the samples and reference data that run drew (the trained model being the checkpoint's).
 */
export function runKeys(seed: number): RunKeys {
  const [model, training, reference, samples, kde, scale] = splitKey(randomKey(seed), 6);
  return { model, training, reference, samples, kde, scale };
}

/**
 * What a command holds (a data set's cached parameters, a model, an optimiser's state, data,
 * samples), freed by `free()` when the command ends, however it ends: a CLI process exits anyway,
 * but a program calling main() kept every run's tensors.
 */
export class Held {
  private readonly items: { dispose(): void }[] = [];

  /** Holds `item` (a tensor, a model, an optimiser, a data set); returns it. */
  add<T extends { dispose(): void }>(item: T): T {
    this.items.push(item);
    return item;
  }

  /** Frees everything held so far. */
  free(): void {
    for (const item of this.items.splice(0)) item.dispose();
  }
}

/**
 * Runs the chosen sampler for `choices.n` samples, recording the first `paths` chains. `onStep`
 * hears of progress (steps done, and the total when known in advance).
 */
export async function drawSamples(
  ctx: SampleContext, choices: SamplerChoices, key: RandomKey, opts: { paths: number; onStep?: (done: number, total: number | undefined) => void },
): Promise<SampleRun> {
  const { model, noise } = ctx;
  const { sampler, n } = choices;
  const [initKey, runKey] = splitKey(key, 2);
  const recorded = Math.min(opts.paths, n);
  const positions: number[][] = Array.from({ length: recorded }, () => []);
  const record = async (x: Tensor) => {
    if (recorded === 0) return;
    // A view of x's first rows (all of x when every chain is recorded: still a tensor of its own).
    const head = x.slice([0, 0], [recorded, 2]);
    const values = await head.data();
    head.dispose();
    for (let c = 0; c < recorded; c++) positions[c]!.push(values[2 * c]!, values[2 * c + 1]!);
  };
  /** Callback options: progress every 1% of `total`, recording from step `recordFrom` on. */
  const callbackFor = (total: number | undefined, recordFrom = 0) => {
    const every = total === undefined ? 1 : Math.max(1, Math.floor((total - recordFrom) / 100));
    opts.onStep?.(0, total); // the clock of the progress display starts with the sampler
    return {
      callbackEvery: every,
      callback: async (step: number, x: Tensor) => {
        // Annealed Langevin's denoising step (L·T + 1) is the result, which the paths end with.
        if (total !== undefined && step > total) return;
        if (step >= recordFrom) await record(x);
        opts.onStep?.(step, total);
        await turnEventLoop(); // lets Ctrl-C's listener run (see output.ts claim)
      },
    };
  };
  // In a tidy: the uniform draw and its scaling are intermediates (they were left behind, 2 tensors a call).
  const boxStart = () => tidy(() => rand([n, 2], { key: initKey }).mul(2 * ctx.domain).sub(ctx.domain));
  const settings: Record<string, string | number> = { sampler, n };
  const started = performance.now();
  let samples: Tensor;
  let init: Tensor;

  let pathsFrom = 'their starting points';
  if (sampler === 'langevin' || sampler === 'ald') {
    init = boxStart();
    if (sampler === 'langevin') {
      await record(init);
      const steps = choices.sampleSteps ?? SAMPLER_DEFAULTS.langevin.steps;
      const stepSize = choices.stepSize ?? Number((LANGEVIN_STEP_PER_VARIANCE * finestVariance(ctx)).toPrecision(2));
      const cond = cleanestCondition(noise);
      Object.assign(settings, { steps, stepSize, ...(cond === undefined ? {} : { [noise.kind === 'sde' ? 't' : 'sigma']: cond }) });
      samples = await langevinDynamics(model.score, init, { key: runKey, steps, stepSize, cond, ...callbackFor(steps) });
    } else {
      if (noise.kind !== 'levels') throw new Error('internal: annealed Langevin needs noise levels');
      const stepsPerLevel = choices.stepsPerLevel;
      const stepSize = choices.stepSize ?? SAMPLER_DEFAULTS.annealedLangevin.stepSize;
      Object.assign(settings, { levels: noise.sigmas.length, stepsPerLevel, stepSize, sigmaMax: noise.sigmas[0]!, sigmaMin: noise.sigmas[noise.sigmas.length - 1]! });
      // At noise levels wider than the data the chains jump across the whole plot; their paths
      // are recorded from the first level below half the plot's width, where they pick a mode.
      const firstLevel = Math.max(0, noise.sigmas.findIndex((sigma) => sigma <= ctx.domain / 2));
      if (firstLevel === 0) await record(init);
      else pathsFrom = `where σ = ${Number(noise.sigmas[firstLevel]!.toPrecision(3))} begins`;
      samples = await annealedLangevinDynamics(model.score, init, {
        key: runKey, sigmas: noise.sigmas, stepsPerLevel, stepSize, ...callbackFor(noise.sigmas.length * stepsPerLevel, firstLevel * stepsPerLevel),
      });
    }
  } else {
    const sde = sdeOf(noise);
    if (!sde) throw new Error(`internal: sampler ${sampler} needs an SDE`);
    init = sde.priorSample([n, 2], { key: initKey, dtype: 'float32' });
    await record(init);
    const steps = choices.sampleSteps ?? SAMPLER_DEFAULTS.reverseSde.steps;
    if (sampler === 'em') {
      Object.assign(settings, { steps, eps: samplingEpsilon(sde) });
      samples = await reverseSdeEulerMaruyama(model.score, sde, { key: runKey, init, steps, ...callbackFor(steps) });
    } else if (sampler === 'pc') {
      Object.assign(settings, { steps, eps: samplingEpsilon(sde), ...SAMPLER_DEFAULTS.predictorCorrector });
      samples = await predictorCorrector(model.score, sde, { key: runKey, init, steps, ...callbackFor(steps) });
    } else {
      const solution = await probabilityFlowOde(model.score, sde, { key: runKey, init, method: 'rk45', ...callbackFor(undefined) });
      const { rtol, atol } = SAMPLER_DEFAULTS.probabilityFlow;
      Object.assign(settings, { method: 'rk45', eps: samplingEpsilon(sde), rtol, atol, nfe: solution.nfe, acceptedSteps: solution.acceptedSteps, rejectedSteps: solution.rejectedSteps });
      samples = solution.x;
    }
  }
  if (samples !== init) init.dispose();
  const nonFinite = await countNonFinite(samples);
  if (nonFinite > 0) {
    samples.dispose();
    const remedy =
      sampler === 'langevin' || sampler === 'ald' ? 'try a smaller --step-size'
      : sampler === 'ode' ? 'the learned score is not finite along the flow: train longer or with a smaller --lr'
      : 'try more --sample-steps';
    throw new Error(`${nonFinite} of ${n} samples are non-finite (NaN or ±Infinity): ${SAMPLERS[sampler].description} diverged; ${remedy}`);
  }
  // The end point of every recorded chain, whatever the callback cadence was.
  await record(samples);
  return { samples, paths: positions.map((p) => Float64Array.from(p)), pathsFrom, seconds: (performance.now() - started) / 1000, settings };
}
