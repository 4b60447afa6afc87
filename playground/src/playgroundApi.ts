// The page's automation hook, `window.scorchPlayground`: what the end-to-end test (and anyone at
// the browser console) uses to drive the playground deterministically instead of clicking.

import type { DatasetName, ObjectiveName } from '@scorch/score';
import type { BackendChoice } from './backendSelection.js';

export interface PlaygroundSettings {
  dataset: DatasetName;
  /** One of PLAYGROUND_OBJECTIVES (objectives.ts). */
  objective: ObjectiveName;
  seed: number;
  learningRate: number;
  batchSize: number;
  dsmSigma: number;
  /** Steps the Train button runs. */
  trainingSteps: number;
  /** Training steps per animation frame (one loss read-back each). */
  chunkSize: number;
  /** Langevin step size ε. */
  stepSize: number;
  /** Langevin steps per animation frame. */
  langevinStepsPerFrame: number;
  particleCount: number;
}

export interface TrainReport {
  /** The loss of every step run by this call, in order. */
  losses: number[];
  /** Steps done by the session so far (this call's included). */
  stepsDone: number;
  millis: number;
}

export interface SampleReport {
  frames: number;
  /** Particle positions after the last frame, [x0, y0, x1, y1, …]. */
  positions: number[];
  millis: number;
}

export interface PlaygroundApi {
  backend: BackendChoice & { description: string };
  settings(): PlaygroundSettings;
  /**
   * Changes settings; changing the data set, objective, seed, learning rate, batch or σ starts a
   * fresh model (if it cannot be made, the old one and its settings stay); a new particleCount
   * scatters that many particles for the same model. A key given as undefined changes nothing.
   */
  configure(changes: Partial<PlaygroundSettings>): Promise<void>;
  /**
   * Trains `steps` more steps (in chunks of `chunkSize`, one per animation frame). Stopped by the
   * Train button, it resolves with the steps run; it rejects when the model is replaced (a
   * setting changed, or Reset) before it ends.
   */
  train(steps: number): Promise<TrainReport>;
  /** Runs `frames` animation frames of Langevin dynamics from freshly scattered particles. */
  sample(frames: number): Promise<SampleReport>;
}

declare global {
  interface Window {
    scorchPlayground?: PlaygroundApi;
  }
}
