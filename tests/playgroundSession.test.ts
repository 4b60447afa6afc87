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
});
