// What a run reports: sample-quality metrics (MMD², energy distance, mode weights) and the Fisher
// divergence where the true score is known, the SVG plots (data vs samples, learned vs true score
// field, loss curve, sampler trajectories) made with @scorch/report, the
// index.html that shows them, and the metrics table printed on the terminal.

import { type Tensor, tensor, tidy } from '@scorch/tensor';
import {
  type ScoreModel, type TrainProgress, energyDistance, fisherDivergence, kdeScore, mmd2, modeWeights,
} from '@scorch/score';
import { gridPoints, htmlReport, linePlot, plural, quiverComparison, scatterPlot, trajectoryPlot } from '@scorch/report';
import {
  type DatasetEntry, type NoiseSpec, OBJECTIVES, type ObjectiveName, SAMPLERS, type SamplerName, type ScoreFunction,
  cleanScore, cleanestCondition,
} from '@scorch/score';
import type { Io } from './io.js';
import { type BackendSegment, type OutputDirectory } from './output.js';
import { formatDuration } from './progress.js';
import type { SampleRun } from './sampling.js';

export interface Metrics {
  readonly format: 'scorch-metrics/v1';
  readonly data: string;
  readonly loss: ObjectiveName;
  readonly sampler: SamplerName;
  readonly backend: string;
  /** --seed of the command that wrote these metrics (train: of the whole run; sample: of its draws and the fresh data). */
  readonly seed: number;
  readonly samples: number;
  /** ½E‖s_θ − ∇log p‖² over data points (at the cleanest noise level for conditional models); null when ∇log p is unknown. */
  readonly fisherDivergence: { value: number; zeroScoreValue: number; relative: number; evaluatedAt: string; points: number } | null;
  readonly mmd2: { value: number; nullStandardError: number; bandwidth: number };
  readonly energyDistance: { value: number; nullStandardError: number };
  /** Fractions of samples nearest each mode, beside the true weights; null when the modes are unknown. */
  readonly modeWeights: { modes: number[][]; true: number[]; samples: number[]; largestError: number } | null;
  /**
   * The run's training: `steps` trained in all; a resumed run (--resume) trained only those after
   * `resumedAt` (the steps its checkpoint held), and its `seconds` and `stepsPerSecond` are of
   * those steps alone.
   */
  readonly training: {
    steps: number; resumedAt?: number; batch: number; seconds: number; stepsPerSecond: number; finalLoss: number | null;
    /** Only for a run trained on more than one backend (resumed on another): each one's steps, in order (as in the checkpoint). */
    backends?: readonly BackendSegment[];
  } | null;
  readonly sampling: Readonly<Record<string, string | number>> & { seconds: number; pathsFrom: string };
}

export interface ReportInput {
  readonly data: DatasetEntry;
  readonly loss: ObjectiveName;
  readonly model: ScoreModel;
  readonly noise: NoiseSpec;
  readonly run: SampleRun;
  /** Fresh data points (as many as samples), to compare the samples with. */
  readonly reference: Tensor;
  readonly backend: string;
  readonly seed: number;
  /** Half-width of the square shown in the 2-D plots. */
  readonly domain: number;
  readonly training: Metrics['training'];
  /** Losses read during training (empty for a run without training history). */
  readonly history: readonly TrainProgress[];
}

/** Where a conditional model is evaluated, in words: "σ = 0.01", "t = 1e-5", or "". */
function conditionLabel(noise: NoiseSpec): string {
  const c = cleanestCondition(noise);
  if (c === undefined) return '';
  return `${noise.kind === 'sde' ? 't' : 'σ'} = ${fmt(c)}`;
}

export async function computeMetrics(input: ReportInput): Promise<Metrics> {
  const { data, run, reference, noise } = input;
  const samples = run.samples;
  const mmd = await mmd2(samples, reference);
  const energy = await energyDistance(samples, reference);
  let fisher: Metrics['fisherDivergence'] = null;
  let modes: Metrics['modeWeights'] = null;
  const mixture = data.mixture;
  if (mixture) {
    const trueScore = (x: Tensor) => mixture.score(x);
    const value = await fisherDivergence(cleanScore(input.model, noise), trueScore, reference);
    const zeroScoreValue = await fisherDivergence((x) => x.mul(0), trueScore, reference);
    fisher = { value, zeroScoreValue, relative: value / zeroScoreValue, evaluatedAt: conditionLabel(noise) || 'the model as trained', points: reference.shape[0]! };
    const weights = await modeWeights(samples, mixture.means);
    modes = {
      modes: mixture.means.map((m) => [...m]),
      true: [...mixture.weights],
      samples: weights,
      largestError: Math.max(...weights.map((w, k) => Math.abs(w - mixture.weights[k]!))),
    };
  }
  return {
    format: 'scorch-metrics/v1',
    data: data.name,
    loss: input.loss,
    sampler: run.settings.sampler as SamplerName,
    backend: input.backend,
    seed: input.seed,
    samples: samples.shape[0]!,
    fisherDivergence: fisher,
    mmd2: { value: mmd.value, nullStandardError: mmd.nullStandardError, bandwidth: mmd.bandwidth },
    energyDistance: { value: energy.value, nullStandardError: energy.nullStandardError },
    modeWeights: modes,
    training: input.training,
    sampling: { ...run.settings, seconds: run.seconds, pathsFrom: run.pathsFrom },
  };
}

/**
 * A number to 4 significant digits (trailing zeros dropped), in exponent form when very small or
 * large: below 1e-3 or from 1e6 in magnitude, judged after rounding, so a value that rounds to
 * 1e6 is written like 1e6 itself.
 */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const rounded = Number(v.toPrecision(4));
  const a = Math.abs(rounded);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return rounded.toExponential(3).replace(/\.?0+e/, 'e');
  return String(rounded);
}

/** The metric rows shared by the terminal table and the HTML report: [metric, value, reference]. */
export function metricRows(m: Metrics): [string, string, string][] {
  const rows: [string, string, string][] = [];
  if (m.fisherDivergence) {
    const f = m.fisherDivergence;
    rows.push([`Fisher divergence${f.evaluatedAt.includes('=') ? ` (${f.evaluatedAt})` : ''}`, fmt(f.value), `${fmt(100 * f.relative)}% of the zero score's ${fmt(f.zeroScoreValue)}`]);
  }
  rows.push([`MMD² (RBF, h = ${fmt(m.mmd2.bandwidth)})`, fmt(m.mmd2.value), `±${fmt(m.mmd2.nullStandardError)} s.e. if same law`]);
  rows.push(['energy distance', fmt(m.energyDistance.value), `±${fmt(m.energyDistance.nullStandardError)} s.e. if same law`]);
  if (m.modeWeights) {
    const w = m.modeWeights;
    rows.push(['mode weights', w.samples.map((x) => x.toFixed(3)).join(' '), `true ${w.true.map((x) => x.toFixed(3)).join(' ')}`]);
  }
  if (m.training) {
    const t = m.training;
    // A resumed run's time and rate are of the steps it trained, not of the whole run's.
    const timed = t.resumedAt === undefined ? '' : `${plural(t.steps - t.resumedAt, 'step')} from step ${t.resumedAt}: `;
    rows.push(['training', plural(t.steps, 'step'), `${timed}${fmt(t.seconds)} s, ${fmt(t.stepsPerSecond)} steps/s, final loss ${t.finalLoss === null ? '—' : fmt(t.finalLoss)}`]);
  }
  rows.push(['sampling', `${m.samples} samples`, `${fmt(m.sampling.seconds)} s, ${SAMPLERS[m.sampler].description}`]);
  return rows;
}

/** The metrics as an aligned plain-text table for the terminal. */
export function metricsTable(m: Metrics): string {
  const rows: [string, string, string][] = [['metric', 'value', 'reference'], ...metricRows(m)];
  const widths = [0, 1].map((c) => Math.max(...rows.map((r) => [...r[c]!].length)));
  const pad = (s: string, w: number) => s + ' '.repeat(Math.max(0, w - [...s].length));
  return rows.map((r) => `  ${pad(r[0], widths[0]!)}  ${pad(r[1], widths[1]!)}  ${r[2]}`.trimEnd()).join('\n');
}

/** Trailing mean over up to `window` values: one batch's loss is noisy, the trend is not. */
function movingAverage(values: readonly number[], window: number): number[] {
  let sum = 0;
  return values.map((v, i) => {
    sum += v - (i >= window ? values[i - window]! : 0);
    return sum / Math.min(i + 1, window);
  });
}

/** The standalone SVG files of a run, by file name. */
export async function makePlots(input: ReportInput): Promise<Record<string, string>> {
  const { data, run, reference, domain, noise, model } = input;
  const range = [-domain, domain] as const;
  const referenceXy = await reference.data();
  const sampleXy = await run.samples.data();
  const plots: Record<string, string> = {};

  plots['samples.svg'] = scatterPlot({
    title: `${data.name}: data and ${SAMPLERS[run.settings.sampler as SamplerName].description} samples`,
    series: [
      { points: { xy: referenceXy }, label: 'data', color: '#9a9a9a', opacity: 0.5 },
      { points: { xy: sampleXy }, label: 'samples', color: '#d9480f', opacity: 0.6 },
    ],
    xDomain: range,
    yDomain: range,
    equalAspect: true,
  });

  // The score field on a 21 × 21 grid: learned (at the cleanest noise level) beside the truth, or
  // beside a KDE estimate where the true score is unknown.
  const grid = gridPoints(range, range, 21, 21);
  const fieldOf = async (score: ScoreFunction) => {
    const out = tidy(() => score(tensor(grid.xy, { shape: [grid.x.length, 2], dtype: 'float32' })));
    const values = await out.data();
    out.dispose();
    return { x: grid.x, y: grid.y, u: values.filter((_, i) => i % 2 === 0), v: values.filter((_, i) => i % 2 === 1) };
  };
  const learned = await fieldOf(cleanScore(model, noise));
  const mixture = data.mixture;
  let truth;
  if (mixture) truth = await fieldOf((x) => mixture.score(x));
  else {
    const kde = kdeScore(reference);
    try {
      truth = await fieldOf(kde);
    } finally {
      kde.dispose();
    }
  }
  const condition = conditionLabel(noise);
  plots['score.svg'] = quiverComparison({
    title: `score field${condition ? ` (model at ${condition})` : ''}`,
    learned,
    truth,
    labels: ['learned score', mixture ? 'true score ∇log p' : 'KDE estimate of ∇log p'],
    normalize: 'log',
    background: { xy: referenceXy.subarray(0, 2 * Math.min(400, referenceXy.length / 2)) },
    xDomain: range,
    yDomain: range,
  });

  if (input.history.length > 0) {
    plots['loss.svg'] = linePlot({
      title: `training loss (${input.loss})`,
      series: [
        { x: input.history.map((h) => h.step), y: input.history.map((h) => h.loss), label: `${input.loss} (one batch)`, color: '#a9c4e4', strokeWidth: 1.2 },
        { x: input.history.map((h) => h.step), y: movingAverage(input.history.map((h) => h.loss), 10), label: 'moving average', color: '#1f3b73', strokeWidth: 2 },
      ],
      xLabel: 'step',
      yLabel: 'loss',
    });
  }

  // The paths share the data's square only while they stay inside it: trajectoryPlot does not
  // clip, so a position beyond the square would be drawn over the margins or off the canvas.
  // Samplers that start from the SDE prior range far beyond the data, and annealed Langevin's
  // paths are recorded from a noise level that still scatters chains past the square: the axes
  // then fit the paths.
  const startsInDomain = run.paths.every((xy) => xy.every((v) => Math.abs(v) <= domain));
  plots['trajectories.svg'] = trajectoryPlot({
    title: `${SAMPLERS[run.settings.sampler as SamplerName].description}, ${run.paths.length} chains`,
    paths: run.paths.map((xy) => ({ xy })),
    background: { xy: referenceXy },
    backgroundLabel: 'data',
    ...(startsInDomain ? { xDomain: range, yDomain: range } : {}),
    equalAspect: true,
  });
  return plots;
}

export interface HtmlInput {
  readonly title: string;
  readonly intro: string;
  /** Settings of the run, shown as a two-column table. */
  readonly settings: ReadonlyArray<readonly [string, string | number]>;
  readonly metrics: Metrics;
  readonly plots: Readonly<Record<string, string>>;
}

/** index.html: the run's settings, its metrics and every plot, in one self-contained file. */
export function makeHtml(input: HtmlInput): string {
  const { plots, metrics } = input;
  // A plot the run could not make keeps its section, saying why, rather than vanishing unnoticed.
  const figure = (file: string, heading: string, text: string, missing?: string) =>
    plots[file] ? [{ heading, text: `${text}\n\nStandalone file: ${file}`, svg: plots[file] }] : missing ? [{ heading, text: missing }] : [];
  const loss = OBJECTIVES[metrics.loss];
  return htmlReport({
    title: input.title,
    intro: input.intro,
    sections: [
      { heading: 'Run', table: { columns: ['setting', 'value'], rows: input.settings.map(([k, v]) => [k, v]) } },
      {
        heading: 'Metrics',
        text:
          'MMD² and the energy distance compare the samples with fresh data points; both are near 0 when the two come from one distribution: within 3 of their null standard errors, the line scorch train --help draws. ' +
          'MMD²\'s RBF kernel has the width h of the median heuristic over this run\'s samples and the data together, so runs have their own h: compare two runs\' MMD² in standard errors, not as raw values. ' +
          'The Fisher divergence ½E‖s_θ − ∇log p‖² over data points needs the true score, so it is reported for the Gaussian mixtures only, beside the value of the zero score for scale.' +
          '\n\nFile: metrics.json',
        table: { columns: ['metric', 'value', 'reference'], rows: metricRows(metrics) },
      },
      ...figure('samples.svg', 'Data and samples', `Grey: fresh data. Orange: ${metrics.samples} samples from ${SAMPLERS[metrics.sampler].description}.`),
      ...figure('score.svg', 'Score field', 'The learned score beside the true one (or a kernel density estimate of it), on one arrow scale; arrow lengths grow logarithmically with the magnitude.'),
      ...figure('loss.svg', 'Training loss', `${loss.description[0]!.toUpperCase()}${loss.description.slice(1)}. The loss is read every few steps; score-matching losses are the Fisher divergence up to a constant, so they can be negative.`, 'No loss history was recorded for this run, so there is no loss chart.'),
      ...figure('trajectories.svg', 'Sampler trajectories', `A few chains of the sampler, from ${metrics.sampling.pathsFrom} (hollow circles) to the samples (filled).`),
    ],
  });
}

/**
 * Writes a run's results into its directory `out` (samples.json, metrics.json, the plots, index.html) and
 * prints what ends the run: the metrics table, the files the directory now holds (`alsoThere`
 * written before, such as train's checkpoint) and the total time.
 */
export function writeResults(
  io: Io, out: OutputDirectory, results: { samples: string; metrics: string; plots: Readonly<Record<string, string>>; html: string },
  metrics: Metrics, alsoThere: number, backend: string, wallStart: number,
): void {
  const files = { 'samples.json': results.samples, 'metrics.json': results.metrics, ...results.plots, 'index.html': results.html };
  // Refused (DirectoryTakenError) when the directory is no longer the run's.
  out.write(files);
  const outDir = out.path;
  io.out('');
  io.out(metricsTable(metrics));
  io.out('');
  io.out(`Wrote ${Object.keys(files).length + alsoThere} files to ${outDir}`);
  io.out(`Report: ${outDir}/index.html`);
  io.out(`Total time ${formatDuration((performance.now() - wallStart) / 1000)} on ${backend}.`);
}
