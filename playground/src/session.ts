// One training-and-sampling session of the playground: a score network for one data set and one
// objective (both from @scorch/score's registry, which also builds the model and the per-step
// loss), its Adam state, and the Langevin particles. Everything random derives from the seed,
// step by step (foldIn of the absolute step number), so `train(100)` twice equals `train(200)`
// and a run repeats exactly on the same backend.
//
// Values come back to the host only where the page shows them: the losses once per training
// chunk, the score field on its grid, and the particle positions once per animation frame.

import { jit } from '@scorch/autograd';
import {
  type DatasetName, type GaussianMixture, type ObjectiveName, type Optimizer, type Params, type ScoreModel, type ToyDataset, type TrainingStep, adam,
  buildModel, datasetEntry, makeObjective, modelSpecFor, noiseFor, trainingStep,
} from '@scorch/score';
import {
  type RandomKey, type Tensor, concat, foldIn, full, keep, rand, randn, randomKey, reshape, splitKey, tensor, tidy,
} from '@scorch/tensor';
import { isPlaygroundObjective } from './objectives.js';

export interface SessionSettings {
  dataset: DatasetName;
  objective: ObjectiveName;
  seed: number;
  /** Adam's step size. */
  learningRate: number;
  batchSize: number;
  /** Widths of the score network's hidden layers. */
  hidden: readonly number[];
  /** σ of denoising score matching. */
  dsmSigma: number;
  /** Number of Langevin particles. */
  particleCount: number;
}

/** The square [−extent, extent]² the page shows; every toy set lies inside [−3, 3]². */
export const VIEW_EXTENT = 3;

export interface ScoreField {
  /** Points per side of the grid. */
  size: number;
  /** Grid point coordinates, [x0, y0, x1, y1, …], row-major from the top-left. */
  points: Float32Array;
  /** Score vectors at those points, same layout. */
  scores: Float32Array;
}

export class PlaygroundSession {
  readonly settings: SessionSettings;
  readonly dataset: ToyDataset;
  /** The data set when it is a mixture, which caches its parameters' tensors: freed by `dispose`. */
  private readonly mixture: GaussianMixture | undefined;
  readonly model: ScoreModel;
  private readonly optimizer: Optimizer;
  /** One training step (loss, gradient, Adam), compiled once with jit and replayed. */
  private readonly trainingStep: TrainingStep;
  /** One Langevin step, x ← x + (ε/2)s_θ(x) + √ε z, compiled once; ε/2 and √ε are arguments. */
  private readonly langevinStep = jit((x: Tensor, key: RandomKey, halfStep: Tensor, rootStep: Tensor) =>
    x.add(this.model.score(x).mul(halfStep)).add(randn(x.shape, { key, dtype: x.dtype, device: x.device }).mul(rootStep)),
  );
  /** The per-step loss: a fresh batch, the objective's noise and its loss, from one key. */
  private readonly objective: (params: Params, key: RandomKey) => Tensor;
  private readonly keys: Record<'init' | 'loss' | 'display' | 'particles' | 'langevin', RandomKey>;
  private readonly fieldGrid: { size: number; points: Float32Array; tensor: Tensor };
  private particleTensor: Tensor | null = null;
  private langevinFrames = 0;
  private particleResets = 0;
  stepsDone = 0;
  readonly losses: number[] = [];

  constructor(settings: SessionSettings, fieldGridSize = 21) {
    if (!isPlaygroundObjective(settings.objective)) throw new Error(`PlaygroundSession: objective '${settings.objective}' needs a noise-conditional model, which the playground does not draw`);
    this.settings = { ...settings, hidden: [...settings.hidden] };
    const entry = datasetEntry(settings.dataset);
    this.dataset = entry.dataset;
    this.mixture = entry.mixture;
    const [init, loss, display, particles, langevin] = splitKey(randomKey(settings.seed), 5);
    this.keys = { init, loss, display, particles, langevin };
    const noise = noiseFor(settings.objective, { sigma: settings.dsmSigma });
    this.model = buildModel(modelSpecFor(settings.objective, settings.hidden), noise, init);
    try {
      this.objective = makeObjective({ objective: settings.objective, noise, model: this.model, dataset: this.dataset, batch: settings.batchSize });
      this.optimizer = adam({ lr: settings.learningRate });
    } catch (e) {
      // A batch size or learning rate refused after the model (and a mixture's tensors) were made.
      this.freeModel();
      throw e;
    }
    this.fieldGrid = makeGrid(fieldGridSize);
    // The training step `train` runs: fused kernels, one submit per step.
    this.trainingStep = trainingStep({ params: this.model.params, loss: (params, key) => this.objective(params, key), optimizer: this.optimizer });
  }

  /** Frees the model's parameters and buffers and a mixture's cached tensors. */
  private freeModel(): void {
    this.model.dispose();
    this.mixture?.dispose();
  }

  /**
   * Runs `steps` optimisation steps, each in its own tidy, and reads their losses back in one
   * transfer at the end (a read waits for the device, so once per chunk rather than per step).
   */
  async trainChunk(steps: number): Promise<number[]> {
    // A model whose loss went non-finite has non-finite parameters, which more steps cannot mend:
    // it ran them anyway and named this chunk's first NaN as where training diverged.
    const diverged = this.losses.findIndex((v) => !Number.isFinite(v));
    if (diverged >= 0) throw new Error(`training diverged at step ${diverged + 1} (loss ${this.losses[diverged]}); Reset the model, with a lower learning rate or another objective`);
    const stepLosses: Tensor[] = [];
    try {
      for (let i = 0; i < steps; i++) {
        const step = this.stepsDone + i;
        stepLosses.push(this.trainingStep(foldIn(this.keys.loss, step), step));
      }
      const joined = tidy(() => concat(stepLosses.map((l) => reshape(l, [1])), 0));
      const values = Array.from(await joined.data());
      joined.dispose();
      this.stepsDone += steps;
      this.losses.push(...values);
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) {
        const step = this.stepsDone - steps + bad + 1;
        // The first step's loss is computed before any update: the learning rate is not the cause.
        throw new Error(
          step === 1
            ? `the loss is ${values[bad]} at step 1, before any update; the objective's noise σ or the data set is the cause`
            : `the loss became ${values[bad]} at step ${step}; lower the learning rate or pick another objective`,
        );
      }
      return values;
    } finally {
      for (const l of stepLosses) l.dispose();
    }
  }

  /** s_θ on the page's grid. */
  async scoreField(): Promise<ScoreField> {
    const scores = tidy(() => this.model.score(this.fieldGrid.tensor));
    const values = new Float32Array(await scores.data());
    scores.dispose();
    return { size: this.fieldGrid.size, points: this.fieldGrid.points, scores: values };
  }

  /** A fixed sample of the data set for display: [x0, y0, x1, y1, …]. */
  async dataPoints(count: number): Promise<Float32Array> {
    const points = this.dataset.sample(count, { key: this.keys.display });
    const values = new Float32Array(await points.data());
    points.dispose();
    return values;
  }

  /**
   * Sets the number of Langevin particles: the model is kept, and the next frame scatters that
   * many afresh (the particles of a running loop are dropped).
   */
  setParticleCount(count: number): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`setParticleCount: count must be a positive whole number, got ${count}`);
    this.settings.particleCount = count;
    this.particleTensor?.dispose();
    this.particleTensor = null;
  }

  /** Scatters the particles uniformly over the view again (a new draw each time). */
  resetParticles(): void {
    this.particleTensor?.dispose();
    const key = foldIn(this.keys.particles, this.particleResets++);
    this.particleTensor = keep(tidy(() => rand([this.settings.particleCount, 2], { key }).mul(2 * VIEW_EXTENT).sub(VIEW_EXTENT)));
  }

  /**
   * Moves the particles `steps` Langevin steps, x ← x + (ε/2)s_θ(x) + √ε z, and returns their
   * positions for drawing. Throws when a position became NaN or infinite (too large an ε): the
   * page draws only finite points, so such particles would vanish without a word.
   */
  async langevinFrame(steps: number, stepSize: number): Promise<Float32Array> {
    if (!this.particleTensor) this.resetParticles();
    const current = this.particleTensor!;
    const key = foldIn(this.keys.langevin, this.langevinFrames++);
    // The session's own compiled step (a sampler run would compile and free one every frame).
    let x = current;
    for (let i = 0; i < steps; i++) {
      const previous = x;
      x = tidy(() => this.langevinStep(previous, foldIn(key, i), full([], stepSize / 2, { device: previous.device }), full([], Math.sqrt(stepSize), { device: previous.device })));
      if (previous !== current) previous.dispose();
    }
    const next = keep(x === current ? current.detach() : x);
    current.dispose();
    this.particleTensor = next;
    const positions = new Float32Array(await next.data());
    let lost = 0;
    for (let i = 0; i < positions.length; i += 2) if (!Number.isFinite(positions[i]!) || !Number.isFinite(positions[i + 1]!)) lost++;
    if (lost > 0) {
      // A model whose training diverged has a NaN score everywhere, whatever ε.
      const advice = this.losses.every(Number.isFinite) ? `lower the Langevin step ε (now ${stepSize})` : 'the model is broken (its training diverged): Reset it';
      throw new Error(`${lost} of ${positions.length / 2} particles became NaN or infinite; ${advice}`);
    }
    return positions;
  }

  async particlePositions(): Promise<Float32Array | null> {
    return this.particleTensor ? new Float32Array(await this.particleTensor.data()) : null;
  }

  dispose(): void {
    this.trainingStep.dispose();
    this.langevinStep.clearCache();
    this.particleTensor?.dispose();
    this.particleTensor = null;
    this.fieldGrid.tensor.dispose();
    this.optimizer.dispose();
    this.freeModel();
  }
}

/** A size × size grid over the view, cell centres, row-major from the top-left (y decreasing). */
function makeGrid(size: number): { size: number; points: Float32Array; tensor: Tensor } {
  const points = new Float32Array(size * size * 2);
  const cell = (2 * VIEW_EXTENT) / size;
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      const i = (row * size + col) * 2;
      points[i] = -VIEW_EXTENT + (col + 0.5) * cell;
      points[i + 1] = VIEW_EXTENT - (row + 0.5) * cell;
    }
  }
  return { size, points, tensor: keep(tensor(points, { shape: [size * size, 2], dtype: 'float32' })) };
}
