// The playground's session (playground/src/session.ts) in Node on the CPU: what the page's Reset
// and every setting that makes a new model rely on. The page itself is driven in
// playground.e2e.test.ts; these are the session's own promises, cheaper to check here.

import { describe, expect, it } from 'vitest';
import { DATASET_NAMES, NOISE_DEFAULTS } from '@scorch/score';
import { memory, setDefaultDevice } from '@scorch/tensor';
import { PlaygroundSession, type SessionSettings } from '../playground/src/session.js';
import { describeBackend } from '../playground/src/backendSelection.js';
import { drawLossCurve } from '../playground/src/renderer.js';

setDefaultDevice('cpu');

const settings = (changes: Partial<SessionSettings>): SessionSettings => ({
  dataset: 'moons',
  objective: 'ssm-vr-clean',
  seed: 0,
  learningRate: 3e-3,
  batchSize: 64,
  hidden: [16, 16],
  dsmSigma: NOISE_DEFAULTS.sigma,
  particleCount: 50,
  ...changes,
});

describe('PlaygroundSession', () => {
  it.each(DATASET_NAMES)('frees every tensor it made when disposed (%s): Reset leaves memory flat', async (dataset) => {
    const before = memory();
    // Three train/reset cycles, each using everything the page uses: data, field, training, Langevin.
    for (let cycle = 0; cycle < 3; cycle++) {
      const session = new PlaygroundSession(settings({ dataset, seed: cycle }));
      await session.dataPoints(100);
      await session.trainChunk(2);
      await session.scoreField();
      await session.langevinFrame(2, 0.01);
      session.dispose();
    }
    const after = memory();
    expect({ tensors: after.tensors, bytes: after.bytes }).toEqual({ tensors: before.tensors, bytes: before.bytes });
  });

  it('frees the model it made when a setting is refused after it (a batch size, a learning rate)', () => {
    const before = memory().tensors;
    expect(() => new PlaygroundSession(settings({ learningRate: 0 }))).toThrow(/^adam: lr/);
    expect(() => new PlaygroundSession(settings({ batchSize: 0 }))).toThrow(/batch/);
    expect(() => new PlaygroundSession(settings({ dataset: 'mixture', batchSize: 0 }))).toThrow(/batch/);
    expect(memory().tensors).toBe(before);
  });

  it('stops Langevin dynamics with a message when particles become NaN or infinite, rather than drawing fewer', async () => {
    const session = new PlaygroundSession(settings({}));
    try {
      // A step that keeps every particle finite returns their positions.
      expect((await session.langevinFrame(5, 0.01)).every(Number.isFinite)).toBe(true);
      // ε = 1e20: the first step's √ε z moves a particle ~1e10, where the network's score grows
      // about linearly, so the second step's (ε/2)s_θ(x) is ~1e30 and the third's passes
      // float32's 3.4e38 within the frame's five steps.
      await expect(session.langevinFrame(5, 1e20)).rejects.toThrow(/^\d+ of 50 particles became NaN or infinite; lower the Langevin step ε \(now 100000000000000000000\)$/);
      // Fresh particles with a sound step move again.
      session.resetParticles();
      expect((await session.langevinFrame(5, 0.01)).every(Number.isFinite)).toBe(true);
    } finally {
      session.dispose();
    }
  });

  it('blames the settings, not the learning rate, for a loss already non-finite at step 1', async () => {
    // The first loss is computed before any update: σ = 1e30 overflows float32 in the DSM loss.
    const session = new PlaygroundSession(settings({ objective: 'dsm', dsmSigma: 1e30 }));
    try {
      await expect(session.trainChunk(1)).rejects.toThrow(/^the loss is (-?Infinity|NaN) at step 1, before any update; the objective's noise σ or the data set is the cause$/);
    } finally {
      session.dispose();
    }
  });

  it('blames a diverged model, not ε, for particles that become NaN after training failed', async () => {
    const session = new PlaygroundSession(settings({ learningRate: 1e9 }));
    try {
      await expect(session.trainChunk(10)).rejects.toThrow(/^the loss became/);
      // Training it again runs no steps and names the step where it diverged (it ran ten more and
      // named the first NaN of those, with the advice to lower the learning rate).
      const diverged = session.losses.findIndex((v) => !Number.isFinite(v));
      await expect(session.trainChunk(10)).rejects.toThrow(`training diverged at step ${diverged + 1} (loss ${session.losses[diverged]}); Reset the model, with a lower learning rate or another objective`);
      expect(session.stepsDone).toBe(10);
      session.resetParticles();
      await expect(session.langevinFrame(1, 0.01)).rejects.toThrow(/^50 of 50 particles became NaN or infinite; the model is broken \(its training diverged\): Reset it$/);
    } finally {
      session.dispose();
    }
  });

  it('a new particle count keeps the model: the next frame scatters that many for the same steps', async () => {
    const session = new PlaygroundSession(settings({}));
    try {
      await session.trainChunk(3);
      expect((await session.langevinFrame(1, 0.01)).length).toBe(100);
      const before = memory().tensors;
      session.setParticleCount(20);
      expect(memory().tensors).toBe(before - 1); // the 50 particles, freed
      expect((await session.langevinFrame(1, 0.01)).length).toBe(40);
      expect(session.stepsDone).toBe(3);
      expect(() => session.setParticleCount(0)).toThrow(/^setParticleCount: count must be a positive whole number, got 0$/);
    } finally {
      session.dispose();
    }
  });
});

describe('the page\'s backend line', () => {
  it('keeps the whole reason when WebGPU is missing (it was cut at the dot of navigator.gpu)', () => {
    expect(describeBackend({ device: 'cpu', cpuThreads: 1, fallbackReason: 'navigator.gpu is missing' })).toBe('cpu (1 thread; WebGPU unavailable: navigator.gpu is missing)');
    expect(describeBackend({ device: 'cpu', cpuThreads: 2, fallbackReason: 'navigator.gpu is missing (not a secure context: use https or localhost)' })).toBe(
      'cpu (2 threads; WebGPU unavailable: navigator.gpu is missing (not a secure context: use https or localhost))',
    );
    // initWebGPU's long text: its first sentence.
    expect(describeBackend({ device: 'cpu', cpuThreads: 1, fallbackReason: 'initWebGPU: requestDevice failed. Tried: a, b. Install Mesa.' })).toBe('cpu (1 thread; WebGPU unavailable: requestDevice failed.)');
  });
});

describe('the loss chart', () => {
  /** A canvas of 300 × 100 pixels whose context counts the points drawn. */
  const countingCanvas = () => {
    const counts = { points: 0 };
    const context = new Proxy({} as Record<string, unknown>, {
      get: (target, key) => (key === 'moveTo' || key === 'lineTo' ? () => counts.points++ : typeof key === 'string' && key in target ? target[key] : () => undefined),
      set: (target, key, value) => ((target[key as string] = value), true),
    });
    const canvas = { clientWidth: 300, clientHeight: 100, width: 0, height: 0, getContext: () => context };
    return { canvas: canvas as unknown as HTMLCanvasElement, counts };
  };

  it('draws at most two points per pixel column however long the history (a million steps took ~1 s a redraw)', () => {
    (globalThis as { window?: unknown }).window = { devicePixelRatio: 1 };
    try {
      const { canvas, counts } = countingCanvas();
      drawLossCurve(canvas, Array.from({ length: 100 }, (_, i) => 1 / (i + 1)));
      expect(counts.points).toBe(100); // a short history: every step
      counts.points = 0;
      const long = Array.from({ length: 1_000_000 }, (_, i) => (i % 1000 === 7 ? NaN : Math.exp(-i / 1e5)));
      drawLossCurve(canvas, long);
      expect(counts.points).toBeGreaterThan(0);
      expect(counts.points).toBeLessThanOrEqual(2 * 300);
    } finally {
      delete (globalThis as { window?: unknown }).window;
    }
  });
});

describe('a lost WebGPU device on the page', () => {
  it("is reported with the page's remedy, a reload, instead of the failed op's message and the backend's advice for code", async () => {
    const { failureText } = await import('../playground/src/app.js');
    const failed = new Error('webgpu mul: this tensor belongs to a WebGPU device that was lost; recreate it on a new device (initWebGPU() opens one). Tensor: float32 [4]; loss: destroyed');
    expect(failureText(failed, 'destroyed: Device was destroyed.')).toBe('the GPU device was lost (destroyed: Device was destroyed.); reload the page to start again on a new device');
    // A device alive (or none: the CPU): the error's own message.
    expect(failureText(new Error('the loss became NaN at step 3'), null)).toBe('the loss became NaN at step 3');
    expect(failureText(new Error('the loss became NaN at step 3'))).toBe('the loss became NaN at step 3');
  });
});
