// The playground's session (playground/src/session.ts) in Node on the CPU: what the page's Reset
// and every setting that makes a new model rely on. The page itself is driven in
// playground.e2e.test.ts; these are the session's own promises, cheaper to check here.

import { describe, expect, it } from 'vitest';
import { DATASET_NAMES, NOISE_DEFAULTS } from '@scorch/score';
import { memory, setDefaultDevice } from '@scorch/tensor';
import { PlaygroundSession, type SessionSettings } from '../playground/src/session.js';

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
      session.resetParticles();
      await expect(session.langevinFrame(1, 0.01)).rejects.toThrow(/^50 of 50 particles became NaN or infinite; the model is broken \(its training diverged\): Reset it$/);
    } finally {
      session.dispose();
    }
  });
});
