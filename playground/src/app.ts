// The playground's controller: wires the page's controls to a PlaygroundSession, runs training
// in chunks and Langevin dynamics frame by frame (one requestAnimationFrame each, so the page
// stays responsive), and redraws after every chunk or frame. Session work is serialised through
// one queue, so a training chunk and a Langevin frame never interleave their device work.

import { DATASETS, DATASET_NAMES, type DatasetName, NOISE_DEFAULTS, OBJECTIVES, type ObjectiveName, isDatasetName } from '@scorch/score';
import { type BackendChoice, describeBackend, deviceLossReason } from './backendSelection.js';
import { PLAYGROUND_OBJECTIVES, isPlaygroundObjective } from './objectives.js';
import type { PlaygroundApi, PlaygroundSettings, SampleReport, TrainReport } from './playgroundApi.js';
import { drawLossCurve, drawScene, formatLoss } from './renderer.js';
import { type ScoreField, PlaygroundSession } from './session.js';

const HIDDEN_LAYERS = [64, 64] as const;
const DATA_POINTS_SHOWN = 1500;

/**
 * Settings whose change means a new model (the rest apply to the running one; a new particle
 * count scatters that many particles for the same model).
 */
const MODEL_SETTINGS = ['dataset', 'objective', 'seed', 'learningRate', 'batchSize', 'dsmSigma'] as const;

export const DEFAULT_SETTINGS: PlaygroundSettings = {
  dataset: 'moons',
  objective: 'ssm-vr-clean',
  seed: 0,
  learningRate: 3e-3,
  batchSize: 256,
  dsmSigma: NOISE_DEFAULTS.sigma,
  trainingSteps: 500,
  chunkSize: 10,
  stepSize: 0.01,
  langevinStepsPerFrame: 5,
  particleCount: 500,
};

interface Elements {
  dataset: HTMLSelectElement;
  objective: HTMLSelectElement;
  trainingSteps: HTMLInputElement;
  learningRate: HTMLInputElement;
  dsmSigma: HTMLInputElement;
  stepSize: HTMLInputElement;
  langevinStepsPerFrame: HTMLInputElement;
  train: HTMLButtonElement;
  sample: HTMLButtonElement;
  reset: HTMLButtonElement;
  backend: HTMLElement;
  step: HTMLElement;
  loss: HTMLElement;
  speed: HTMLElement;
  message: HTMLElement;
  field: HTMLCanvasElement;
  lossChart: HTMLCanvasElement;
}

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`playground: the page has no <${type.name}> with id '${id}'`);
  return found;
}

function findElements(): Elements {
  return {
    dataset: element('dataset', HTMLSelectElement),
    objective: element('objective', HTMLSelectElement),
    trainingSteps: element('training-steps', HTMLInputElement),
    learningRate: element('learning-rate', HTMLInputElement),
    dsmSigma: element('dsm-sigma', HTMLInputElement),
    stepSize: element('step-size', HTMLInputElement),
    langevinStepsPerFrame: element('langevin-steps', HTMLInputElement),
    train: element('train', HTMLButtonElement),
    sample: element('sample', HTMLButtonElement),
    reset: element('reset', HTMLButtonElement),
    backend: element('backend', HTMLElement),
    step: element('step', HTMLElement),
    loss: element('loss', HTMLElement),
    speed: element('speed', HTMLElement),
    message: element('message', HTMLElement),
    field: element('field', HTMLCanvasElement),
    lossChart: element('loss-chart', HTMLCanvasElement),
  };
}

/**
 * An error as the page shows it. A lost WebGPU device (a driver reset, the GPU process crashed)
 * takes every tensor of the model with it, whatever op then failed, and the backend's advice (call
 * initWebGPU) is for code: on the page the remedy is a reload.
 */
export function failureText(e: unknown, lossReason: string | null = deviceLossReason()): string {
  if (lossReason !== null) return `the GPU device was lost (${lossReason}); reload the page to start again on a new device`;
  return e instanceof Error ? e.message : String(e);
}

/** Resolves at the next animation frame; by timer when the tab is hidden (frames stop there). */
function nextFrame(): Promise<void> {
  return new Promise((resolve) => {
    if (document.hidden) setTimeout(resolve, 0);
    else requestAnimationFrame(() => resolve());
  });
}

/**
 * The numeric settings: which are counts, and the largest value each takes. A Langevin frame runs
 * all its steps before the page can draw or take a click, so its count is bounded (100000 froze
 * the tab; the default is 5) and so is the particle count; training runs in chunks of
 * `chunkSize` steps between frames, so its step count needs no bound.
 */
const NUMERIC_SETTINGS = {
  learningRate: { count: false, max: Infinity },
  dsmSigma: { count: false, max: Infinity },
  stepSize: { count: false, max: Infinity },
  trainingSteps: { count: true, max: Infinity },
  chunkSize: { count: true, max: 1000 },
  langevinStepsPerFrame: { count: true, max: 500 },
  batchSize: { count: true, max: Infinity },
  particleCount: { count: true, max: 100000 },
} as const satisfies Partial<Record<keyof PlaygroundSettings, { count: boolean; max: number }>>;
export type NumericSetting = keyof typeof NUMERIC_SETTINGS;

/** Why `value` cannot be the setting `key` (not a positive number, not whole, too large), or null. */
export function numericSettingProblem(key: NumericSetting, value: unknown): string | null {
  const { count, max } = NUMERIC_SETTINGS[key];
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (count && !Number.isInteger(value))) {
    return `is not a positive ${count ? 'whole number' : 'number'}`;
  }
  return value > max ? `is more than ${max}` : null;
}

/** Why `value` cannot be the seed (randomKey takes a non-negative safe integer), or null. */
export function seedProblem(value: unknown): string | null {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? null : 'is not a whole number from 0 to 2^53 − 1';
}

export class PlaygroundApp {
  private readonly ui: Elements;
  private settings: PlaygroundSettings;
  private session: PlaygroundSession;
  private queue: Promise<unknown> = Promise.resolve();
  private dataPoints: Float32Array | null = null;
  private field: ScoreField | null = null;
  private particles: Float32Array | null = null;
  private training: Promise<TrainReport> | null = null;
  private stopTrainingRequested = false;
  private animating = false;
  /** Bumped by every start of a Langevin loop (the Sample button's, sample()'s), so an older loop ends, even one stopped and restarted within one frame. */
  private animationRun = 0;
  /** Bumped whenever the session is replaced, so loops of the old one stop. */
  private generation = 0;

  constructor(readonly backend: BackendChoice, initial: PlaygroundSettings) {
    this.ui = findElements();
    this.settings = { ...initial };
    this.session = this.newSession();
    this.populateControls();
    this.bindControls();
    this.ui.backend.textContent = describeBackend(backend);
    this.ui.backend.dataset.device = backend.device;
    window.addEventListener('resize', () => this.redraw(true));
  }

  /** Draws the data and the untrained field: the page shows something before any training. */
  async start(): Promise<void> {
    await this.refreshView();
  }

  api(): PlaygroundApi {
    return {
      backend: { ...this.backend, description: describeBackend(this.backend) },
      settings: () => ({ ...this.settings }),
      configure: (changes) => this.configure(changes),
      train: (steps) => this.train(steps),
      sample: (frames) => this.sample(frames),
    };
  }

  // --------------------------------------------------------------------------------------------
  // Settings and session

  private newSession(s: PlaygroundSettings = this.settings): PlaygroundSession {
    return new PlaygroundSession({
      dataset: s.dataset,
      objective: s.objective,
      seed: s.seed,
      learningRate: s.learningRate,
      batchSize: s.batchSize,
      hidden: HIDDEN_LAYERS,
      dsmSigma: s.dsmSigma,
      particleCount: s.particleCount,
    });
  }

  async configure(given: Partial<PlaygroundSettings>): Promise<void> {
    if (given === null || typeof given !== 'object' || Array.isArray(given)) throw new TypeError(`configure: expected an object of settings, got ${given === null ? 'null' : Array.isArray(given) ? 'an array' : typeof given}`);
    // A key given as undefined changes nothing (as an option left out): merged, it replaced the
    // setting with undefined, which the next model then failed on.
    const changes = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<PlaygroundSettings>;
    const unknown = Object.keys(changes).filter((k) => !Object.hasOwn(DEFAULT_SETTINGS, k));
    if (unknown.length > 0) throw new Error(`configure: unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}; expected ${Object.keys(DEFAULT_SETTINGS).join(', ')}`);
    if (changes.dataset !== undefined && !isDatasetName(changes.dataset)) throw new Error(`configure: unknown data set '${changes.dataset}'; expected one of ${DATASET_NAMES.join(', ')}`);
    if (changes.objective !== undefined && !isPlaygroundObjective(changes.objective)) throw new Error(`configure: unknown objective '${changes.objective}'; expected one of ${PLAYGROUND_OBJECTIVES.join(', ')}`);
    // Checked before anything changes: a seed randomKey refuses would fail only once the old
    // model is disposed, and leave the page on it.
    if (changes.seed !== undefined && seedProblem(changes.seed)) throw new RangeError(`configure: seed ${seedProblem(changes.seed)}, got ${changes.seed}`);
    for (const key of Object.keys(NUMERIC_SETTINGS) as NumericSetting[]) {
      if (changes[key] === undefined) continue;
      const problem = numericSettingProblem(key, changes[key]);
      if (problem) throw new RangeError(`configure: ${key} ${problem}, got ${changes[key]}`);
    }
    const next = { ...this.settings, ...changes };
    const needsNewModel = MODEL_SETTINGS.some((k) => next[k] !== this.settings[k]);
    if (needsNewModel) {
      await this.replaceSession(next);
      return;
    }
    const particles = next.particleCount !== this.settings.particleCount;
    this.settings = next;
    this.populateControls();
    if (particles) await this.exclusive(async () => this.session.setParticleCount(next.particleCount));
  }

  /**
   * Replaces the session at once in the queue: loops of the old generation queue no more work once
   * the generation is bumped, what they queued before runs first on the old session, and work
   * queued after (a Train click right after a setting's change) finds the new one. The new
   * session is made before the old one goes: one that cannot be made (a device lost) leaves the
   * old model and its settings in place, and the error is the caller's.
   */
  private async replaceSession(settings: PlaygroundSettings = this.settings): Promise<void> {
    // The settings change at once, not when the queued work runs: a second change (or Reset)
    // made meanwhile builds on this one. (It built on the old settings, and the first change was
    // lost: a data set picked, then Reset at once, came back as the old data set.)
    this.settings = settings;
    const generation = ++this.generation;
    this.stopTrainingRequested = true;
    this.animating = false;
    try {
      await this.exclusive(async () => {
        const fresh = this.newSession(settings);
        this.session.dispose();
        this.session = fresh;
      });
    } catch (e) {
      // The model in place stays, and the settings that made it, unless a later change is queued
      // (it builds on this one and makes its own model).
      if (this.generation === generation) {
        const made = this.session.settings; // what the model in place was made with, its particle count kept current
        const kept = Object.fromEntries([...MODEL_SETTINGS, 'particleCount'].map((k) => [k, made[k as keyof typeof made]]));
        this.settings = { ...this.settings, ...kept } as PlaygroundSettings;
      }
      this.populateControls();
      throw e;
    }
    this.populateControls();
    this.dataPoints = null;
    this.particles = null;
    this.field = null;
    this.showMessage('');
    this.updateStatus([]);
    await this.refreshView();
  }

  /** Runs session work after everything queued before it. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // --------------------------------------------------------------------------------------------
  // Training and sampling

  /** Trains `steps` more steps; a second call while one runs waits for it, then runs its own. */
  async train(steps: number): Promise<TrainReport> {
    if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`train: steps must be a positive integer, got ${steps}`);
    // The model this call was made for: one replaced while the call waited is not trained instead.
    const generation = this.generation;
    while (this.training) await this.training.catch(() => undefined);
    if (generation !== this.generation) throw new Error(`train: the model was replaced (a setting changed, or Reset) before this call's ${steps} steps began`);
    const run = this.trainLoop(steps);
    this.training = run;
    this.ui.train.textContent = 'Stop';
    try {
      return await run;
    } finally {
      this.training = null;
      this.ui.train.textContent = 'Train';
    }
  }

  private async trainLoop(steps: number): Promise<TrainReport> {
    const generation = this.generation;
    const losses: number[] = [];
    let stepsDone = 0;
    const started = performance.now();
    this.stopTrainingRequested = false;
    while (losses.length < steps && !this.stopTrainingRequested && generation === this.generation) {
      const chunk = Math.min(this.settings.chunkSize, steps - losses.length);
      const chunkStarted = performance.now();
      try {
        // One queued item per chunk, taking the session when it runs (see replaceSession).
        const done = await this.exclusive(async () => {
          const session = this.session;
          const chunkLosses = await session.trainChunk(chunk);
          return { chunkLosses, field: await session.scoreField(), stepsDone: session.stepsDone };
        });
        losses.push(...done.chunkLosses);
        this.field = done.field;
        stepsDone = done.stepsDone;
      } catch (e) {
        // The failed chunk's steps ran (a non-finite loss is found after them): show their count and curve.
        this.updateStatus([]);
        this.redraw();
        this.showMessage(`Training stopped: ${failureText(e)}`);
        throw e;
      }
      this.updateStatus(losses.slice(-chunk), (performance.now() - chunkStarted) / chunk);
      this.redraw();
      await nextFrame();
    }
    // As sample() does: a report of the old model's steps (its stepsDone counted them) would read
    // as the new model's.
    if (generation !== this.generation) throw new Error(`train: the model was replaced (a setting changed, or Reset) while training, after ${losses.length} of ${steps} steps`);
    return { losses, stepsDone, millis: performance.now() - started };
  }

  /** `frames` frames of Langevin dynamics from freshly scattered particles. */
  async sample(frames: number): Promise<SampleReport> {
    if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`sample: frames must be a positive integer, got ${frames}`);
    // One Langevin loop at a time: this one ends the Sample button's, and a later one (the button
    // pressed, another sample call) ends this one.
    this.animating = false;
    this.ui.sample.textContent = 'Sample';
    const run = ++this.animationRun;
    const started = performance.now();
    const generation = this.generation;
    const session = await this.exclusive(async () => {
      this.session.resetParticles();
      return this.session;
    });
    let positions: Float32Array | null = null;
    for (let f = 0; f < frames; f++) {
      if (generation !== this.generation) throw new Error('sample: the model was replaced (a setting changed, or Reset) while sampling');
      if (run !== this.animationRun) throw new Error('sample: stopped by a newer Langevin loop (the Sample button, or another sample call)');
      positions = await this.exclusive(() => session.langevinFrame(this.settings.langevinStepsPerFrame, this.settings.stepSize));
      this.particles = positions;
      this.redraw();
      await nextFrame();
    }
    return { frames, positions: Array.from(positions ?? []), millis: performance.now() - started };
  }

  /** The Sample button: Langevin dynamics until pressed again (or the model is replaced). */
  private async animate(): Promise<void> {
    const generation = this.generation;
    const run = ++this.animationRun;
    this.animating = true;
    this.ui.sample.textContent = 'Stop';
    try {
      const session = await this.exclusive(async () => {
        this.session.resetParticles();
        return this.session;
      });
      while (this.animating && run === this.animationRun && generation === this.generation) {
        this.particles = await this.exclusive(() => session.langevinFrame(this.settings.langevinStepsPerFrame, this.settings.stepSize));
        this.redraw();
        await nextFrame();
      }
    } catch (e) {
      this.showMessage(`Sampling stopped: ${failureText(e)}`);
    } finally {
      if (run === this.animationRun) {
        this.animating = false;
        this.ui.sample.textContent = 'Sample';
      }
    }
  }

  // --------------------------------------------------------------------------------------------
  // Page

  private async refreshView(): Promise<void> {
    const generation = this.generation;
    const view = await this.exclusive(async () => ({ data: await this.session.dataPoints(DATA_POINTS_SHOWN), field: await this.session.scoreField() }));
    // A newer replacement has its own refresh coming; this one's session may be gone already.
    if (generation !== this.generation) return;
    this.dataPoints = view.data;
    this.field = view.field;
    this.redraw();
  }

  /** The session and loss count the loss chart shows: a Langevin frame leaves both, and the chart, as they were. */
  private lossChartShows: { session: PlaygroundSession; losses: number } | null = null;

  private redraw(resized = false): void {
    drawScene(this.ui.field, { data: this.dataPoints, field: this.field, particles: this.particles });
    const shown = this.lossChartShows;
    if (resized || shown?.session !== this.session || shown.losses !== this.session.losses.length) {
      drawLossCurve(this.ui.lossChart, this.session.losses);
      this.lossChartShows = { session: this.session, losses: this.session.losses.length };
    }
  }

  private updateStatus(recentLosses: readonly number[], millisPerStep?: number): void {
    this.ui.step.textContent = String(this.session.stepsDone);
    const mean = recentLosses.length ? recentLosses.reduce((a, b) => a + b, 0) / recentLosses.length : NaN;
    this.ui.loss.textContent = recentLosses.length ? formatLoss(mean) : '–';
    this.ui.speed.textContent = millisPerStep === undefined ? '–' : `${millisPerStep.toFixed(1)} ms/step`;
  }

  private showMessage(text: string): void {
    this.ui.message.textContent = text;
    if (text) console.error(`playground: ${text}`);
  }

  private populateControls(): void {
    const ui = this.ui;
    if (ui.dataset.options.length === 0) {
      for (const name of DATASET_NAMES) ui.dataset.add(new Option(DATASETS[name].label, name));
      for (const name of PLAYGROUND_OBJECTIVES) ui.objective.add(new Option(OBJECTIVES[name].label, name));
    }
    const s = this.settings;
    ui.dataset.value = s.dataset;
    ui.objective.value = s.objective;
    ui.trainingSteps.value = String(s.trainingSteps);
    ui.learningRate.value = String(s.learningRate);
    ui.dsmSigma.value = String(s.dsmSigma);
    ui.dsmSigma.disabled = OBJECTIVES[s.objective].family !== 'single';
    ui.stepSize.value = String(s.stepSize);
    ui.langevinStepsPerFrame.value = String(s.langevinStepsPerFrame);
  }

  private bindControls(): void {
    const ui = this.ui;
    const reportFailure = (e: unknown) => this.showMessage(failureText(e));
    ui.dataset.addEventListener('change', () => this.configure({ dataset: ui.dataset.value as DatasetName }).catch(reportFailure));
    ui.objective.addEventListener('change', () => this.configure({ objective: ui.objective.value as ObjectiveName }).catch(reportFailure));
    // A value the setting cannot take (not a positive number, a count that is not whole, too
    // large) is refused with a message, and the field shows the value still in use again.
    const bindNumber = (input: HTMLInputElement, key: 'learningRate' | 'dsmSigma' | 'trainingSteps' | 'stepSize' | 'langevinStepsPerFrame', label: string) => {
      input.addEventListener('change', () => {
        // A number field reads as '' both when it is empty and when what was typed does not
        // parse ('1e', '--1', '1e400'); validity.badInput tells the two apart.
        const unreadable = input.validity.badInput;
        const text = input.value.trim();
        const value = text === '' ? NaN : Number(text);
        const problem = unreadable ? 'is not a number the field can read' : numericSettingProblem(key, value);
        if (problem) {
          const entered = unreadable ? 'what was typed' : text === '' ? 'an empty field' : `'${input.value}'`;
          this.showMessage(`${label}: ${entered} ${problem}; keeping ${this.settings[key]}`);
          input.value = String(this.settings[key]);
          return;
        }
        this.showMessage('');
        this.configure({ [key]: value }).catch(reportFailure);
      });
    };
    bindNumber(ui.trainingSteps, 'trainingSteps', 'Training steps');
    bindNumber(ui.learningRate, 'learningRate', 'Learning rate');
    bindNumber(ui.dsmSigma, 'dsmSigma', 'DSM noise σ');
    bindNumber(ui.stepSize, 'stepSize', 'Langevin step ε');
    bindNumber(ui.langevinStepsPerFrame, 'langevinStepsPerFrame', 'Langevin steps / frame');
    ui.train.addEventListener('click', () => {
      if (this.training) {
        this.stopTrainingRequested = true;
        return;
      }
      this.showMessage('');
      this.train(this.settings.trainingSteps).catch(() => undefined); // the message is already shown
    });
    ui.sample.addEventListener('click', () => {
      if (this.animating) this.animating = false;
      else void this.animate();
    });
    ui.reset.addEventListener('click', () => {
      this.replaceSession().catch(reportFailure);
    });
  }
}
