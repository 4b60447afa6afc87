// The score-matching objectives the playground trains with, by the short names of the page's
// <select>: each maps a score function and a batch to the scalar loss of @scorch/score.

import {
  type ScoreFunction, denoisingScoreMatchingLoss, implicitScoreMatchingLoss, slicedScoreMatchingLoss,
} from '@scorch/score';
import type { RandomKey, Tensor } from '@scorch/tensor';

export type ObjectiveName = 'ssm-vr' | 'ssm' | 'dsm' | 'ism';

export interface ObjectiveSettings {
  /** Noise scale σ of denoising score matching (the other objectives ignore it). */
  dsmSigma: number;
}

interface ObjectiveEntry {
  label: string;
  loss: (score: ScoreFunction, x: Tensor, key: RandomKey, settings: ObjectiveSettings) => Tensor;
}

export const OBJECTIVES: { readonly [N in ObjectiveName]: ObjectiveEntry } = {
  'ssm-vr': {
    label: 'Sliced SM-VR',
    loss: (score, x, key) => slicedScoreMatchingLoss(score, x, { key, varianceReduced: true }),
  },
  ssm: {
    label: 'Sliced SM',
    loss: (score, x, key) => slicedScoreMatchingLoss(score, x, { key }),
  },
  dsm: {
    label: 'Denoising SM',
    loss: (score, x, key, { dsmSigma }) => denoisingScoreMatchingLoss(score, x, { key, sigma: dsmSigma }),
  },
  // In 2-D the exact Jacobian trace costs only two JVPs, so ISM needs no random projections.
  ism: {
    label: 'Implicit SM',
    loss: (score, x) => implicitScoreMatchingLoss(score, x),
  },
};

export function isObjectiveName(name: string): name is ObjectiveName {
  return Object.hasOwn(OBJECTIVES, name);
}
