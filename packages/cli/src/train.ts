// `scorch train` and `scorch demo`: train a score model on a 2-D toy set, save a checkpoint, draw
// samples with the loss's natural sampler, and write metrics, plots and an HTML report. The demo
// is the same run with the defaults (SSM-VR on the two-mode mixture, annealed Langevin sampling)
// and a few words about what it shows.

import { join, relative, resolve } from 'node:path';
import type { Tensor } from '@scorch/tensor';
import {
  DATASETS, DATASET_NAMES, type DatasetName, DEFAULT_TRAINING_STEPS, KNOWN_HARD_PAIRS, NOISE_DEFAULTS, OBJECTIVES, OBJECTIVE_NAMES, type ObjectiveName, SAMPLERS, SAMPLERS_FOR,
  type SamplerName, type ScoreModel, type TrainProgress, adam, buildModel, datasetEntry, defaultSigmaMax, describeNoise, makeObjective, modelSpecFor, noiseFor,
  knownHardReason, ruleOfThumbBandwidth, train, trainingStep,
} from '@scorch/score';
import { type CommandSpec, type FlagSpec, type FlagValue, UsageError } from './args.js';
import { type BackendChoice, type SelectedBackend, selectBackend } from './backend.js';
import { backendFlag, batchFlag, forceFlag, lrFlag, samplerFlags, seedFlag } from './flags.js';
import { checkDsmSigma, checkSampleSteps } from './limits.js';
import {
  type BackendSegment, CHECKPOINT_FILE, type Checkpoint, type SavedOptimizerState, backendSegments, checkpointJson, checkpointRef, describeBackends, isWithin, metricsJson, prepareOutputDirectory,
  DirectoryTakenError, readCheckpoint, removeAbandonedWrites, restoreModel, restoreOptimizer, signalExitStatus,
} from './output.js';
import { Progress } from './progress.js';
import { type Metrics, computeMetrics, fmt, makeHtml, makePlots, writeResults } from './report.js';
import { Held, type SamplerChoices, checkSamplerFits, drawSamples, lossesOf, runKeys } from './sampling.js';
import type { Io } from './io.js';
import { plural } from '@scorch/report';

/** Points the KDE target of esm-kde is built on. */
const KDE_POINTS = 1000;
/** Chains whose paths the trajectory plot shows. */
export const RECORDED_PATHS = 10;

/** Each objective's default training steps (OBJECTIVES[o].steps), grouped: '3000 for ncsn; 1000 for the others'. */
function stepsByObjective(): string {
  const byCount = new Map<number, ObjectiveName[]>();
  for (const o of OBJECTIVE_NAMES) byCount.set(OBJECTIVES[o].steps, [...(byCount.get(OBJECTIVES[o].steps) ?? []), o]);
  const names = (losses: ObjectiveName[]) => (losses.length === 1 ? losses[0]! : `${losses.slice(0, -1).join(', ')} and ${losses.at(-1)}`);
  const special = [...byCount].filter(([count]) => count !== DEFAULT_TRAINING_STEPS).sort(([a], [b]) => a - b).map(([count, losses]) => `${count} for ${names(losses)}`);
  return [...special, ...(byCount.has(DEFAULT_TRAINING_STEPS) ? [`${DEFAULT_TRAINING_STEPS} for the others`] : [])].join('; ');
}

/** KNOWN_HARD_PAIRS in words, pairs of the same reason together: 'dsm on mixture, moons; … — why'. */
function hardPairsText(): string {
  const byReason = new Map<string, string[]>();
  for (const h of KNOWN_HARD_PAIRS) byReason.set(h.reason, [...(byReason.get(h.reason) ?? []), `${h.objectives.join(', ')} on ${h.data.join(', ')}`]);
  return [...byReason].map(([reason, groups]) => `${groups.join('; and ')} — ${reason}`).join('. Also ');
}

const trainFlags: readonly FlagSpec[] = [
  {
    name: 'data', kind: 'choice', valueName: 'NAME', choices: DATASET_NAMES, default: 'mixture',
    description: `the 2-D data set — ${DATASET_NAMES.map((d) => `${d}: ${DATASETS[d].description}`).join('; ')}`,
  },
  {
    name: 'loss', kind: 'choice', valueName: 'NAME', choices: OBJECTIVE_NAMES, default: 'ssm-vr',
    description: `the training objective — ${OBJECTIVE_NAMES.map((l) => `${l}: ${OBJECTIVES[l].description}`).join('; ')}`,
  },
  {
    name: 'steps', kind: 'integer', valueName: 'N', min: 1,
    defaultText: `the objective's: ${stepsByObjective()}`,
    description: 'optimisation steps (Adam)',
  },
  batchFlag,
  backendFlag,
  seedFlag,
  {
    name: 'out', kind: 'string', valueName: 'DIR', defaultText: 'scorch-runs/<data>-<loss>-<date>-<time>, a new directory',
    description: 'where the checkpoint, metrics.json, the SVG plots and index.html are written; must be new or empty unless --force',
  },
  forceFlag,
  // At most 16384 wide: two such layers already hold 2.7·10⁸ weights (1 GiB in float32); a wider
  // one failed only when allocated, with the runtime's "Array buffer allocation failed".
  { name: 'hidden', kind: 'list', valueName: 'W,W', min: 1, max: 16384, default: [64, 64], description: 'hidden layer widths of the MLP score network (SiLU activations)' },
  lrFlag,
  {
    // At most 10000: annealed Langevin runs --steps-per-level steps at every level, and the
    // checkpoint lists every σ (10⁸ levels ran for good).
    name: 'levels', kind: 'integer', valueName: 'L', min: 1, max: 10000, default: NOISE_DEFAULTS.levels, source: 'Song & Ermon 2019',
    description: `noise levels σ₁ > … > σ_L (geometric) of the noise-conditional losses ${lossesOf('levels')}`,
  },
  {
    name: 'sigma-min', kind: 'number', valueName: 'S', min: 0, exclusiveMin: true, default: NOISE_DEFAULTS.sigmaMin, source: 'Song & Ermon 2019; Song et al. 2021 (VE)',
    description: 'smallest noise level σ_L (and σ_min of the VE SDE)',
  },
  {
    name: 'sigma-max', kind: 'number', valueName: 'S', min: 0, exclusiveMin: true,
    defaultText: 'the largest distance between two data points — Song & Ermon 2020, technique 1',
    description: 'largest noise level σ₁ (and σ_max of the VE SDE)',
  },
  { name: 'sigma', kind: 'number', valueName: 'S', min: 0, exclusiveMin: true, default: NOISE_DEFAULTS.sigma, description: "noise level of --loss dsm (a tenth of the data's unit scale)" },
  ...samplerFlags,
  { name: 'log-every', kind: 'integer', valueName: 'K', min: 1, defaultText: "steps/100 (with --resume, the resumed run's)", description: 'read the loss every K steps (each read waits for the device) for the progress display and the loss curve' },
];

/** The flags of train alone (not demo): continuing a run, stopping one to continue later, and saving it as it goes. */
const continuationFlags: readonly FlagSpec[] = [
  {
    name: 'resume', kind: 'string', valueName: 'DIR',
    description:
      "continue the run whose directory (or checkpoint.json) this is, written by 'scorch train' (at its end, at --stop-after, or when stopped by Ctrl-C): the same data, loss, model, batch, seed, --lr and noise as its checkpoint records (a flag that says otherwise is refused), from its parameters and Adam's state, with the random draws of the steps it had not taken, so a run stopped after N steps and resumed gives the parameters of one run of its --steps. --steps is the new total (default: the total the run was started for; another total changes the learning rate's decay, which follows the total, from the step resumed on); --out is a new directory as for any run (the resumed run's own is moved aside, kept, only with --out that directory and --force); without --backend it continues on the backend it last trained on (cpu or webgpu), and on another chosen with --backend its checkpoint, metrics and report record each backend's steps",
  },
  {
    name: 'stop-after', kind: 'integer', valueName: 'K', min: 1,
    description: 'stop once K of the --steps steps are done (e.g. to fit a time limit), with the learning-rate schedule of all --steps, and write the checkpoint, samples and report as at the end; --resume then continues the run to --steps',
  },
  {
    name: 'checkpoint-every', kind: 'integer', valueName: 'K', min: 1, defaultText: 'only when training ends (or is stopped)',
    description: 'also write checkpoint.json every K steps while training (each write whole: under a temporary name, then renamed), so that a run killed without the chance to save (SIGKILL, a power loss) can be continued with --resume from the last one; each write reads the parameters and Adam\'s state from the device. The run\'s results are the same with it as without',
  },
];

/** What Ctrl-C does while training, for train's and demo's help. */
const INTERRUPT_TEXT =
  "Ctrl-C (or SIGTERM, SIGHUP) while training stops the run after the step in progress: it writes checkpoint.json of the steps done (and nothing else: no samples, metrics or report), prints the 'scorch train --resume' command that continues it to --steps, and then ends by that signal, as a shell expects (status 130, 143, 129). A second signal quits at once, without saving. Stopped while sampling, the run ends at once and keeps its checkpoint.";

export const TRAIN_SPEC: CommandSpec = {
  name: 'train',
  summary: 'train a score model on a 2-D toy data set, then sample from it and write a report',
  details:
    'Trains an MLP score network with the chosen score-matching loss, saves checkpoint.json, draws samples with the sampler that fits the loss, and writes metrics.json (Fisher divergence where the true score is known, MMD², energy distance, mode weights), SVG plots and index.html into --out.\n\n' +
    `Noise-conditional losses (${lossesOf('levels')}) train s(x, σ) on the data perturbed at L noise levels, as NCSN does (Song & Ermon 2019, who note that sliced score matching can replace denoising there); SDE losses (${lossesOf('sde')}) train s(x, t); ${lossesOf('single', 'kde')} train an unconditional s(x) of noised or smoothed data, and ${lossesOf('none')} one of the data itself.\n\n` +
    `At its defaults every pair of --data and --loss draws samples within 3 standard errors of MMD² of the data (the report's MMD² and s.e.), except these known hard pairs: ${hardPairsText()}.\n\n` +
    INTERRUPT_TEXT,
  flags: trainFlags.flatMap((f) => (f.name === 'steps'
    ? [{ ...f, description: 'optimisation steps (Adam); with --resume, the total to train to, above the steps the checkpoint has trained' }, ...continuationFlags]
    : [f])),
  examples: [
    'scorch train --data moons --loss ncsn',
    'scorch train --loss vp --sampler ode --out runs/vp-ode',
    'scorch train --backend cpu --steps 200 --out /tmp/quick --force',
    'scorch train --steps 20000 --stop-after 5000 --out runs/a && scorch train --resume runs/a --out runs/a-done',
  ],
};

export const DEMO_SPEC: CommandSpec = {
  name: 'demo',
  summary: 'the main job: SSM-VR on the two-mode mixture, annealed Langevin sampling, a report',
  details:
    "Runs 'scorch train' with its defaults: sliced score matching (variance-reduced) trains a noise-conditional score network on Song & Ermon 2019's two-mode Gaussian mixture (weights 1/5 and 4/5), annealed Langevin dynamics draws samples, and the metrics table and the report's path are printed. " +
    "It uses WebGPU when an adapter exists and the CPU otherwise. Any 'scorch train' flag but --resume, --stop-after and --checkpoint-every may be given to change it.\n\n" + INTERRUPT_TEXT,
  // The same flags as train; only the default output directory's name differs.
  flags: trainFlags.map((f) => (f.name === 'out' ? { ...f, defaultText: 'scorch-runs/demo-<date>-<time>, a new directory' } : f.name === 'log-every' ? { ...f, defaultText: 'steps/100' } : f)),
  examples: ['scorch demo', 'scorch demo --backend cpu', 'scorch demo --out my-demo --force'],
};

type Values = Readonly<Record<string, FlagValue>>;

/** Checks that flags specific to some losses or samplers are only given where they apply. */
function checkApplicable(where: string, given: ReadonlySet<string>, loss: ObjectiveName, sampler: SamplerName): void {
  const family = OBJECTIVES[loss].family;
  const rules: [string, boolean, string][] = [
    ['levels', family === 'levels', `the noise-conditional losses (${lossesOf('levels')})`],
    ['sigma-max', family === 'levels' || loss === 've', 'the noise-conditional losses and ve'],
    ['sigma-min', family === 'levels' || loss === 've', 'the noise-conditional losses and ve'],
    ['sigma', loss === 'dsm', '--loss dsm'],
  ];
  for (const [flag, applies, where_] of rules) {
    if (given.has(flag) && !applies) throw new UsageError(`${where}: --${flag} applies to ${where_} only, not to --loss ${loss}`);
  }
  checkSamplerFlags(where, given, sampler);
}

/** Sampler-specific flags must match the sampler. */
export function checkSamplerFlags(where: string, given: ReadonlySet<string>, sampler: SamplerName): void {
  if (given.has('steps-per-level') && sampler !== 'ald') throw new UsageError(`${where}: --steps-per-level applies to --sampler ald only, not to ${sampler}`);
  if (given.has('step-size') && sampler !== 'ald' && sampler !== 'langevin') throw new UsageError(`${where}: --step-size applies to --sampler langevin or ald only, not to ${sampler}`);
  if (given.has('sample-steps') && (sampler === 'ald' || sampler === 'ode')) {
    throw new UsageError(`${where}: --sample-steps does not apply to --sampler ${sampler} (${sampler === 'ald' ? 'use --steps-per-level' : 'the ODE solver chooses its own steps'})`);
  }
}

/** Half-width of a square holding the data (rounded up to 0.5), for plots and Langevin starts. */
function plotHalfWidth(points: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < points.length; i++) largest = Math.max(largest, Math.abs(points[i]!));
  return Math.max(1, Math.ceil(largest * 1.15 * 2) / 2);
}

export function samplerChoicesFrom(values: Values, sampler: SamplerName): SamplerChoices {
  return {
    sampler,
    n: values.n as number,
    sampleSteps: values['sample-steps'] as number | undefined,
    stepsPerLevel: values['steps-per-level'] as number,
    stepSize: values['step-size'] as number | undefined,
  };
}

/** A run being continued (--resume): its checkpoint, where it is, and the steps it has trained. */
interface Resumed {
  readonly checkpoint: Checkpoint & { readonly optimizer: SavedOptimizerState };
  readonly path: string;
  readonly dir: string;
  readonly done: number;
}

/**
 * The flags of a run continued from `checkpoint`: the values it records in place of the flags'
 * (data, loss, batch, seed, hidden widths, lr, and the noise, which the checkpoint holds whole),
 * --steps the new total. A flag given with another value than the checkpoint's is refused.
 */
function resumeValues(where: string, path: string, read: { checkpoint: Checkpoint; dir: string }, values: Values, given: ReadonlySet<string>): { values: Values; resumed: Resumed } {
  const { checkpoint, dir } = read;
  if (!checkpoint.optimizer) {
    throw new UsageError(`${where}: --resume ${path}: its checkpoint is of format '${checkpoint.format}', written before checkpoints held Adam's state; it can be sampled (scorch sample), not resumed`);
  }
  const { training, noise } = checkpoint;
  const sigmas = noise.kind === 'levels' ? noise.sigmas : undefined;
  // What the run's flags were, where the checkpoint says (a flag it cannot say is not recorded:
  // one that does not apply to the loss is refused as for any run, by checkApplicable).
  const recorded: Record<string, FlagValue | undefined> = {
    data: checkpoint.data,
    loss: checkpoint.loss,
    batch: training.batch,
    seed: training.seed,
    hidden: [...checkpoint.model.hidden],
    lr: training.learningRate,
    levels: sigmas?.length,
    'sigma-max': sigmas ? sigmas[0] : noise.kind === 'sde' && noise.sde === 've' ? noise.sigmaMax : undefined,
    'sigma-min': sigmas && sigmas.length > 1 ? sigmas.at(-1) : noise.kind === 'sde' && noise.sde === 've' ? noise.sigmaMin : undefined,
    sigma: noise.kind === 'single' ? noise.sigma : undefined,
  };
  const text = (v: FlagValue | undefined) => (Array.isArray(v) ? v.join(',') : String(v));
  const contradicting = Object.entries(recorded)
    .filter(([flag, value]) => given.has(flag) && value !== undefined && text(values[flag]) !== text(value))
    .map(([flag, value]) => `--${flag} ${text(values[flag])} (the run's: ${text(value)})`);
  if (contradicting.length > 0) {
    throw new UsageError(`${where}: --resume continues the run as its checkpoint records it, and ${contradicting.length === 1 ? 'this flag contradicts' : 'these flags contradict'} it: ${contradicting.join(', ')}; leave ${contradicting.length === 1 ? 'it' : 'them'} out, or train a new run`);
  }
  const done = training.steps;
  if (checkpoint.optimizer.step !== done) {
    throw new UsageError(`${where}: --resume ${path}: its optimiser's state is of step ${checkpoint.optimizer.step}, but the run trained ${plural(done, 'step')}; expected a checkpoint written by 'scorch train'`);
  }
  const planned = training.totalSteps ?? done;
  const total = given.has('steps') ? (values.steps as number) : planned;
  if (!(total > done)) {
    throw new UsageError(given.has('steps')
      ? `${where}: --steps ${total} is not above the ${plural(done, 'step')} the run has trained; with --resume, --steps is the total to train to`
      : `${where}: the run has trained all its ${plural(done, 'step')}; give --steps with a total above ${done} to train further`);
  }
  return {
    values: { ...values, ...Object.fromEntries(Object.entries(recorded).filter(([, v]) => v !== undefined)), steps: total },
    resumed: { checkpoint: checkpoint as Resumed['checkpoint'], path, dir, done },
  };
}

export async function runTrain(mode: 'train' | 'demo', flagValues: Values, given: ReadonlySet<string>, io: Io): Promise<number> {
  const where = `scorch ${mode}`;
  const wallStart = performance.now();
  let values = flagValues;
  let resumed: Resumed | undefined;
  if (values.resume !== undefined) {
    const path = values.resume as string;
    ({ values, resumed } = resumeValues(where, path, readCheckpoint(where, path, 'resume'), values, given));
  }
  const data = values.data as DatasetName;
  const loss = values.loss as ObjectiveName;
  const family = OBJECTIVES[loss].family;
  const sampler = (values.sampler as SamplerName | undefined) ?? SAMPLERS_FOR[family][0]!;
  checkSamplerFits(where, sampler, loss);
  checkApplicable(where, given, loss, sampler);
  // One noise level is σ_max alone (geometricSigmas(σ_max, σ_min, 1) = [σ_max]): σ_min plays no part.
  const oneLevel = family === 'levels' && values.levels === 1;
  if (oneLevel && given.has('sigma-min')) {
    throw new UsageError(`${where}: --sigma-min does not apply with --levels 1: the one noise level is σ_max (set it with --sigma-max)`);
  }
  const sigmaMin = values['sigma-min'] as number;
  const sigmaMaxGiven = values['sigma-max'] as number | undefined;
  if (!oneLevel && sigmaMaxGiven !== undefined && !(sigmaMaxGiven > sigmaMin)) {
    throw new UsageError(`${where}: --sigma-max (${sigmaMaxGiven}) must be larger than --sigma-min (${sigmaMin})`);
  }
  // A resumed run's σ is its checkpoint's (checked when read, noiseProblem), not a flag.
  if (loss === 'dsm' && !resumed) await checkDsmSigma(where, values.sigma as number);
  const steps = (values.steps as number | undefined) ?? OBJECTIVES[loss].steps;
  const batch = values.batch as number;
  const seed = values.seed as number;
  const hidden = values.hidden as number[];
  const lr = values.lr as number;
  const n = values.n as number;
  // A resumed run reads the loss when the run it continues did (its history goes on alike).
  const logEvery = (values['log-every'] as number | undefined) ?? resumed?.checkpoint.training.logEvery ?? Math.max(1, Math.round(steps / 100));
  // Steps already trained (a resumed run's), and the step this run stops at.
  const done = resumed?.done ?? 0;
  const stopAt = (values['stop-after'] as number | undefined) ?? steps;
  if (!(stopAt < steps) && given.has('stop-after')) throw new UsageError(`${where}: --stop-after ${stopAt} is not below --steps ${steps}; it stops a run before its end, to continue it later with --resume`);
  if (!(stopAt > done)) throw new UsageError(`${where}: --stop-after ${stopAt} is not above the ${plural(done, 'step')} the resumed run has trained`);
  // Every check that can refuse the flags (a usage error) comes before the output directory is
  // claimed: a refused command must leave --out as it was, not moved aside by --force (nor, with
  // --resume X --out X --force, the run to resume moved from under its name).
  const backend = resumed && !given.has('backend') ? await resumedBackend(where, resumed) : await selectBackend(values.backend as BackendChoice);
  const entry = datasetEntry(data);
  // Freed when the run ends, however it ends (a tiny run kept 24 tensors).
  const held = new Held();
  if (entry.mixture) held.add(entry.mixture);
  const { model: modelKey, training: trainKey, reference: referenceKey, samples: sampleKey, kde: kdeKey, scale: scaleKey } = runKeys(seed);
  // The data's extent (for σ_max and the plots) from a sample of its own, so --n changes the
  // evaluation only, never the training.
  const scalePoints = await readAndDispose(entry.dataset.sample(1000, { key: scaleKey }));
  // σ_max defaults to the data's extent, known only now: a --sigma-min at or above it is the
  // user's value out of range, as when both are given (checked above).
  if (!resumed && ((family === 'levels' && !oneLevel) || loss === 've') && sigmaMaxGiven === undefined) {
    const sigmaMax = defaultSigmaMax(scalePoints);
    if (!(sigmaMax > sigmaMin)) {
      held.free();
      throw new UsageError(`${where}: --sigma-min (${sigmaMin}) must be smaller than σ_max, which defaults to the largest distance between two points of --data ${data} (${sigmaMax}); give a smaller --sigma-min, or a larger --sigma-max`);
    }
  }
  // Sampler settings the sampler would refuse after training: refused now.
  if (family === 'sde') {
    const sdeNoise = resumed ? resumed.checkpoint.noise : noiseFor(loss, { sigmaMin, sigmaMax: sigmaMaxGiven, dataPoints: scalePoints });
    await checkSampleSteps(where, sdeNoise, sampler, values['sample-steps'] as number | undefined).catch((e: unknown) => {
      held.free();
      throw e;
    });
  }
  const modelSpec = resumed ? resumed.checkpoint.model : modelSpecFor(loss, hidden);
  // Held for the first half, then linearly down to 2%: late steps refine instead of jitter.
  const optimizer = adam({ lr: (t) => lr * Math.max(0.02, Math.min(1, 2 * (1 - t / steps))) });
  held.add(optimizer);
  // A resumed run's model and optimiser state, restored from the checkpoint (read into memory
  // already, so --force moving its directory aside below does not touch them).
  let restored: ScoreModel | undefined;
  if (resumed) {
    try {
      restored = held.add(restoreModel(resumed.checkpoint, modelKey));
      restoreOptimizer(resumed.checkpoint.optimizer, optimizer, restored.params);
    } catch (e) {
      held.free();
      // An edited checkpoint: parameters or moments of another size, layout or dtype.
      throw new UsageError(`${where}: --resume ${resumed.path}: its parameters or optimiser state do not fit its model description (${(e as Error).message}); expected a checkpoint written by 'scorch train'`);
    }
  }

  let out: ReturnType<typeof prepareOutputDirectory>;
  try {
    out = prepareOutputDirectory(where, (values.out as string | undefined) ?? { parent: 'scorch-runs', stem: mode === 'demo' ? 'demo' : `${data}-${loss}` }, values.force as boolean);
  } catch (e) {
    held.free();
    throw e;
  }
  try {
    const outDir = out.path;
    if (out.movedAside) io.out(`--force: moved the previous contents of ${outDir} to ${out.movedAside}`);
    // --force may have moved the resumed run's directory aside (--out that directory, or one
    // holding it): its checkpoint, read already, now lies there, and is named there.
    if (resumed && out.movedAside) resumed = { ...resumed, path: movedWith(resumed.path, outDir, out.movedAside), dir: movedWith(resumed.dir, outDir, out.movedAside) };
    // The resumed run may have been killed while writing its checkpoint: its temporary file stays.
    if (resumed) removeAbandonedWrites(resumed.dir);

    if (mode === 'demo') {
      io.out(`scorch demo: ${OBJECTIVES[loss].description}, trained on ${entry.description}; then ${SAMPLERS[sampler].description}.`);
    }
    if (backend.fallbackReason) io.out(`note: no WebGPU adapter (${backend.fallbackReason}); running on the CPU`);
    const hard = knownHardReason(data, loss);
    if (hard) io.out(`note: ${loss} on ${data} is a known hard pair — its samples stay more than 3 s.e. of MMD² from the data at the defaults: ${hard}.`);
    io.out(`${mode}: ${loss} on ${data} · backend ${backend.description} · ${plural(steps, 'step')} × batch ${batch} · MLP ${hidden.join('×')} · seed ${seed}`);
    if (resumed) io.out(`resuming ${resumed.dir} at step ${done}${stopAt < steps ? `, stopping after step ${stopAt}` : ''}`);
    else if (stopAt < steps) io.out(`stopping after step ${stopAt} (continue with --resume)`);
    // The backends the run trained on before, each with its steps; this run's steps are added.
    const earlierBackends = resumed ? backendSegments(resumed.checkpoint.training) : [];
    if (resumed && earlierBackends.at(-1)!.backend !== backend.description) {
      io.out(`note: the resumed run trained on ${describeBackends(earlierBackends, true)}; it continues on ${backend.description} from step ${done + 1}, and its checkpoint, metrics and report record each backend's steps`);
    }
    /** The backends of the run trained `trained` steps: the resumed run's, then this one's. */
    const backendsAt = (trained: number): BackendSegment[] => {
      const last = earlierBackends.at(-1);
      if (last?.backend === backend.description) return [...earlierBackends.slice(0, -1), { ...last, lastStep: trained }];
      return [...earlierBackends, { backend: backend.description, firstStep: done + 1, lastStep: trained }];
    };

    const domain = plotHalfWidth(scalePoints);
    // Fresh data for the metrics and plots.
    const reference = entry.dataset.sample(n, { key: referenceKey });
    held.add(reference);
    const kdeData = family === 'kde' ? entry.dataset.sample(KDE_POINTS, { key: kdeKey }) : undefined;
    if (kdeData) held.add(kdeData);
    const kdeBandwidth = kdeData ? Array.from(await readAndDispose(ruleOfThumbBandwidth(kdeData)), (h) => Number(h.toPrecision(6))) : undefined;
    // A resumed run's noise is its checkpoint's, as recorded (the flags it came from are not).
    const noise = resumed ? resumed.checkpoint.noise : noiseFor(loss, {
      levels: values.levels as number, sigmaMin, sigmaMax: sigmaMaxGiven, sigma: values.sigma as number,
      dataPoints: scalePoints, kdeBandwidth, kdePoints: kdeData ? KDE_POINTS : undefined,
    });
    if (noise.kind === 'levels') io.out(`noise levels: ${noise.sigmas.length}, σ from ${fmt(noise.sigmas[0]!)} down to ${fmt(noise.sigmas[noise.sigmas.length - 1]!)}`);
    const model: ScoreModel = restored ?? held.add(buildModel(modelSpec, noise, modelKey));
    const objective = makeObjective({ objective: loss, noise, model, dataset: entry.dataset, batch, kdeData });

    // This run's steps: a resumed run's bar and rate count from where it resumed.
    const progress = new Progress('train', stopAt - done, io.stdout);
    const trainStart = performance.now();
    // This run's loss reads; `trained` the steps the model has trained.
    let history: TrainProgress[] = [];
    let trained = done;
    let lastFiniteStep: number | undefined;
    const checkpointEvery = values['checkpoint-every'] as number | undefined;
    /** Writes the checkpoint of the model trained `trained` steps; returns its text. */
    const saveCheckpoint = async (): Promise<string> => {
      // A resumed run's history continues the checkpoint's: the loss curve is the whole run's.
      const wholeHistory = [...(resumed?.checkpoint.training.history ?? []), ...history];
      const backends = backendsAt(trained);
      const text = await checkpointJson({
        data, loss, model: modelSpec, noise, domain,
        training: {
          steps: trained, totalSteps: steps, batch, seed, learningRate: lr, logEvery,
          // One backend throughout: its description alone, as a run never resumed writes it.
          backend: describeBackends(backends), backends: backends.length > 1 ? backends : undefined, history: wholeHistory,
        },
      }, model, optimizer);
      try {
        out.write({ [CHECKPOINT_FILE]: text });
      } catch (e) {
        if (!(e instanceof DirectoryTakenError)) throw e;
        throw orphanedRun(e, out.rescue({ [CHECKPOINT_FILE]: text }), trained, steps, values, given);
      }
      return text;
    };
    // One step for every stretch (below): made by each train() call, it would be traced and
    // compiled again for every stretch between checkpoints.
    const step = trainingStep({ params: model.params, loss: objective, optimizer });
    // The first Ctrl-C (SIGTERM, SIGHUP) from here until the checkpoint is written stops training
    // after the step in progress; the checkpoint of the steps done is then written and the run
    // ends (see interruptedRun). A second signal ends the process at once (output.ts claim): the
    // checkpoint is written whole or not at all (writeFiles renames a complete file into place).
    let interrupted: NodeJS.Signals | undefined;
    const stopping = new AbortController();
    const stopCatching = out.catchSignals((signal) => {
      interrupted = signal;
      stopping.abort();
      io.out(`${io.stdout.isTTY ? '\n' : ''}${signal}: finishing the step in progress, then saving the checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'a signal'} again quits without saving)`);
    });
    try {
      // In stretches ending at the multiples of --checkpoint-every (one stretch without it), each
      // followed by its checkpoint (written as at --stop-after; the last is written below).
      let extraRead = false;
      while (trained < stopAt && !stopping.signal.aborted) {
        // A stretch's last step is read (as a run's last): a read the whole run would not make
        // is kept in the checkpoint just written (as --stop-after keeps it), then dropped.
        if (extraRead) history.pop();
        const to = checkpointEvery === undefined ? stopAt : Math.min(stopAt, (Math.floor(trained / checkpointEvery) + 1) * checkpointEvery);
        const stretch = await train({
          params: model.params,
          loss: objective,
          optimizer,
          step,
          // Steps trained + 1, …, to of the whole run: its keys foldIn(trainKey, n) and schedule.
          startStep: trained,
          steps: to - trained,
          key: trainKey,
          every: logEvery,
          // Checked here rather than by train, whose advice names its options (clipNorm, every):
          // this names the flags.
          stopOnNonFinite: false,
          signal: stopping.signal,
          onProgress: async (p) => {
            progress.update(p.step - done, p.loss);
            if (!Number.isFinite(p.loss)) throw new Error(nonFiniteLossAdvice(p.loss, p.step, lastFiniteStep, lr));
            // (No turn of the event loop here: with a signal, train turns it every 20 ms.)
            lastFiniteStep = p.step;
          },
        });
        trained += stretch.steps;
        history.push(...stretch.history);
        if (trained === to && to < stopAt) {
          extraRead = to % logEvery !== 0;
          await saveCheckpoint();
        }
      }
    } catch (e) {
      stopCatching();
      throw e;
    } finally {
      step.dispose();
      progress.finish();
    }
    // The model has trained stopAt steps, unless a signal stopped training sooner.
    if (trained === done) {
      // Stopped before this run's first step: nothing new to save.
      stopCatching();
      io.out(`${where}: stopped by ${interrupted} before its first step; nothing written${resumed ? ` (the run to resume is still ${resumed.path})` : ''}`);
      return signalExitStatus(interrupted!);
    }
    const trainSeconds = (performance.now() - trainStart) / 1000;
    // Saved before sampling, so a failure later still leaves the trained model.
    let checkpointText: string;
    try {
      checkpointText = await saveCheckpoint();
    } finally {
      // From here a signal ends the run at once, leaving its claim beside the checkpoint.
      stopCatching();
    }
    if (interrupted) {
      interruptedRun(io, where, interrupted, outDir, trained, steps, values, given);
      return signalExitStatus(interrupted);
    }
    // A resumed run's history continues the checkpoint's: the loss curve is the whole run's.
    history = [...(resumed?.checkpoint.training.history ?? []), ...history];
    const backends = backendsAt(trained);
    const training: Metrics['training'] = {
      steps: trained, ...(resumed ? { resumedAt: done } : {}), batch, seconds: trainSeconds, stepsPerSecond: (trained - done) / trainSeconds,
      finalLoss: history.length ? history[history.length - 1]!.loss : null, ...(backends.length > 1 ? { backends } : {}),
    };
    // Where the run trained (and, on the last of them, sampled).
    const trainedOn = describeBackends(backends);
    // From here a failure leaves the trained model's checkpoint: the message says so (below).
    try {
      const choices = samplerChoicesFrom(values, sampler);
      const sampleProgress = { bar: undefined as Progress | undefined };
      const run = await drawSamples({ model, noise, loss, domain, localStd: entry.localStd }, choices, sampleKey, {
        paths: RECORDED_PATHS,
        onStep: (done, total) => {
          sampleProgress.bar ??= new Progress('sample', total, io.stdout);
          sampleProgress.bar.update(done);
        },
      });
      sampleProgress.bar?.finish();
      held.add(run.samples);

      const reportInput = { data: entry, loss, model, noise, run, reference, backend: trainedOn, seed, domain, training, history };
      const metrics = await computeMetrics(reportInput);
      const plots = await makePlots(reportInput);
      const settings: [string, string | number][] = [
        ['data', `${data} (${entry.description})`],
        ['loss', `${loss}: ${OBJECTIVES[loss].description}`],
        ['model', `MLP ${modelSpec.hidden.join('×')}, SiLU, conditioning ${modelSpec.conditioning}, output scaling ${modelSpec.outputScaling}`],
        ['noise', describeNoise(noise)],
        ['training', `${plural(stopAt, 'step')}${stopAt < steps ? ` of ${steps}` : ''} × batch ${batch}, Adam lr ${lr} (decayed over the second half), seed ${seed}${resumed ? `; resumed at step ${done} from ${resumed.dir}` : ''}`],
        ['sampler', `${SAMPLERS[sampler].description}: ${Object.entries(run.settings).map(([k, v]) => `${k} ${v}`).join(', ')}`],
        ['backend', trainedOn],
      ];
      const html = makeHtml({
        title: `scorch ${mode}: ${loss} on ${data}`,
        intro: `A score network trained with ${OBJECTIVES[loss].description} on ${entry.description}, sampled with ${SAMPLERS[sampler].description}.`,
        settings,
        metrics,
        plots,
      });
      const samplePoints = Array.from(await run.samples.data());
      const samples = `${JSON.stringify({ format: 'scorch-samples/v1', sampler, n, points: pairs(samplePoints) })}\n`;
      const metricsText = metricsJson(metrics, checkpointRef(join(outDir, CHECKPOINT_FILE), checkpointText));
      try {
        writeResults(io, out, { samples, metrics: metricsText, plots, html }, metrics, 1, backend.description, wallStart); // and the checkpoint
      } catch (e) {
        if (!(e instanceof DirectoryTakenError)) throw e;
        // Its checkpoint there may be gone or another run's: saved again, beside.
        throw orphanedRun(e, out.rescue({ [CHECKPOINT_FILE]: checkpointText }), trained, steps, values, given);
      }
    } catch (e) {
      // The trained model is saved: say where, and how to sample it with other settings.
      if (e instanceof UsageError || e instanceof OrphanedRunError) throw e;
      const message = ((e as Error)?.message ?? String(e)).split('\n')[0];
      throw new Error(`${message}. The trained model is kept in ${join(outDir, CHECKPOINT_FILE)}; to sample it with other settings: ${sampleCommand(outDir, values, given)}`, { cause: e });
    }
    if (mode === 'demo' && sampler === 'ald') {
      io.out(`To compare, plain Langevin dynamics from the same model keeps the starting points' mode proportions (Song & Ermon 2019, §3.2.2):`);
      io.out(`  scorch sample --checkpoint ${shellWord(outDir)} --sampler langevin`);
    }
    return 0;
  } finally {
    out.release();
    held.free();
  }
}

/** A run whose --out was taken from it while it worked (see orphanedRun): it fails (exit status 1) with one line saying so. */
class OrphanedRunError extends Error {}

/**
 * The failure of a run whose output directory was removed, or taken by another run, while it
 * worked (`taken`): its checkpoint of `trained` of its `steps` steps was saved to `orphan`
 * instead, and the message says so, with the command that continues or samples it from there.
 */
function orphanedRun(taken: DirectoryTakenError, orphan: string, trained: number, steps: number, values: Values, given: ReadonlySet<string>): OrphanedRunError {
  return new OrphanedRunError(`${taken.message}, and saved the checkpoint of its ${plural(trained, 'step')} to ${join(orphan, CHECKPOINT_FILE)} instead; ${continuationCommand(orphan, trained, steps, values, given)}`, { cause: taken });
}

/** Flags a resumed run does not take from the checkpoint, which its continuation must repeat (the first two train's alone). */
const CONTINUATION_FLAGS = ['stop-after', 'checkpoint-every', 'backend', 'sampler', 'n', 'sample-steps', 'steps-per-level', 'step-size'] as const;

/**
 * Tells the user that the run was stopped by `signal` after `trained` of its `steps` steps, with
 * its checkpoint written into `outDir` (which holds nothing else: the run skipped sampling and
 * the report), and the command that continues it (continuationCommand).
 */
function interruptedRun(io: Io, where: string, signal: NodeJS.Signals, outDir: string, trained: number, steps: number, values: Values, given: ReadonlySet<string>): void {
  const path = join(outDir, CHECKPOINT_FILE);
  const what = trained < steps ? `after step ${trained} of ${steps}` : `after training (${plural(steps, 'step')})`;
  io.out(`${where}: stopped by ${signal} ${what}; saved its checkpoint to ${path} (the directory holds only the checkpoint: sampling, metrics and the report were skipped)`);
  io.out(continuationCommand(outDir, trained, steps, values, given));
}

/**
 * The line that tells how to continue a run stopped after `trained` of its `steps` steps, its
 * checkpoint in `outDir`: train --resume with the flags the checkpoint does not record
 * (--stop-after, --checkpoint-every, the backend, the sampler's), or, when training had ended,
 * the command that samples it (sampleCommand).
 */
export function continuationCommand(outDir: string, trained: number, steps: number, values: Values, given: ReadonlySet<string>): string {
  return trained < steps
    ? `continue the run with: scorch train --resume ${shellWord(outDir)}${givenFlags(CONTINUATION_FLAGS, trained, values, given)}`
    : `sample it with: ${sampleCommand(outDir, values, given)}`;
}

/** ` --flag value` for each of `flags` given (a --stop-after at or below the `trained` steps, which a continuation is past, left out). */
function givenFlags(flags: readonly string[], trained: number, values: Values, given: ReadonlySet<string>): string {
  return flags
    .filter((flag) => given.has(flag) && !(flag === 'stop-after' && (values[flag] as number) <= trained))
    .map((flag) => ` --${flag} ${shellWord(String(values[flag]))}`).join('');
}

/**
 * The command that samples the run whose checkpoint is in `outDir` as it would have sampled it:
 * with its seed (`values.seed`: sample's own default differs) and the backend and sampler flags
 * given, which draws the samples the run would have drawn.
 */
export function sampleCommand(outDir: string, values: Values, given: ReadonlySet<string>): string {
  return `scorch sample --checkpoint ${shellWord(outDir)} --seed ${values.seed as number}${givenFlags(CONTINUATION_FLAGS.slice(2), 0, values, given)}`;
}

/**
 * `path` (a file or directory of the resumed run) where it lies after --force moved the
 * directory `outDir` (which held it) to `movedAside`; `path` itself when it was elsewhere.
 */
function movedWith(path: string, outDir: string, movedAside: string): string {
  const full = resolve(path);
  return isWithin(full, outDir) ? join(movedAside, relative(outDir, full)) : path;
}

/**
 * The backend a resumed run continues on without --backend: the kind (cpu or webgpu) of the one
 * its checkpoint last trained on, so that a run stopped and resumed stays where it was unless
 * told otherwise (another backend agrees to rounding only; see --seed). Refused when that kind
 * cannot be had here.
 */
async function resumedBackend(where: string, resumed: Resumed): Promise<SelectedBackend> {
  const last = backendSegments(resumed.checkpoint.training).at(-1)!.backend;
  const kind = /^(cpu|webgpu)\b/.exec(last)?.[1] as 'cpu' | 'webgpu' | undefined;
  if (!kind) {
    throw new UsageError(`${where}: --resume ${resumed.path}: its checkpoint says it trained on ${JSON.stringify(last)}, neither cpu nor webgpu; choose where to continue it with --backend cpu or --backend webgpu`);
  }
  try {
    return await selectBackend(kind);
  } catch (e) {
    const reason = (e as Error).message.replace(/^--backend webgpu: /, '');
    throw new UsageError(`${where}: --resume ${resumed.path}: the run trained on ${last}, but ${reason}; to continue it on another backend, choose it with --backend (e.g. --backend cpu)`);
  }
}

/**
 * Why training stopped on a non-finite loss read at `step` (1-based), in the CLI's words. The
 * first step's loss comes before any update, so there the noise flags or the data are the cause,
 * not --lr. The loss is read every --log-every steps: `lastFinite` is the last step read finite.
 */
export function nonFiniteLossAdvice(loss: number, step: number, lastFinite: number | undefined, lr: number): string {
  if (step === 1) return `the loss is ${loss} at step 1, before any update; the noise flags (--sigma-min, --sigma-max, --sigma) or the data give no finite loss`;
  const when = lastFinite === step - 1
    ? `became ${loss} at step ${step}`
    : `is ${loss} at step ${step}, ${lastFinite === undefined ? 'the first step read' : `finite at step ${lastFinite}, the last step read`} (--log-every 1 reads every step)`;
  return `the loss ${when}; lower --lr (${lr})`;
}

/**
 * `text` as one word of a POSIX shell command line, for commands printed to be copied: as it is
 * when it holds only characters no shell treats specially, else in single quotes (a quote inside
 * written '\'').
 */
export function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

async function readAndDispose(t: Tensor): Promise<Float32Array | Float64Array> {
  const values = (await t.data()) as Float32Array | Float64Array;
  t.dispose();
  return values;
}

/**
 * Interleaved float32 x, y values as [[x, y], …] pairs, each written with the fewest significant
 * digits that read back as the same float32 (6 to 9: seven, as before, changed about one value in
 * ten, and metrics recomputed from samples.json differed from metrics.json's).
 */
export function pairs(xy: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < xy.length; i += 2) out.push([shortestFloat32(xy[i]!), shortestFloat32(xy[i + 1]!)]);
  return out;
}

function shortestFloat32(v: number): number {
  const f = Math.fround(v);
  for (let digits = 6; digits < 9; digits++) {
    const near = Number(f.toPrecision(digits));
    if (Math.fround(near) === f) return near;
  }
  return Number(f.toPrecision(9)); // nine significant digits always identify a float32
}
