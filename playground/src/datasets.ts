// The data sets the playground offers: the 2-D toy distributions of @scorch/score, each under a
// short name used by the page's <select>, its URL parameter and the test hook.

import { type ToyDataset, checkerboard, eightGaussians, gaussianMixture, rings, swissRoll, twoMoons, twoSpirals } from '@scorch/score';

export type DatasetName = 'mixture' | 'moons' | 'swissRoll' | 'eightGaussians' | 'checkerboard' | 'rings' | 'spirals';

interface DatasetEntry {
  label: string;
  make: () => ToyDataset;
}

/**
 * An uneven three-component mixture: unequal weights and one elongated, tilted component, so the
 * learned field visibly differs from a symmetric pattern (and Langevin's slow mixing between
 * modes of different mass shows in the particles).
 */
function unevenMixture(): ToyDataset {
  return gaussianMixture({
    name: 'mixture',
    means: [[-1.4, -1.0], [1.5, -0.6], [0.0, 1.5]],
    weights: [0.5, 0.3, 0.2],
    covariances: [0.12, [[0.35, 0.2], [0.2, 0.2]], 0.08],
  });
}

export const DATASETS: { readonly [N in DatasetName]: DatasetEntry } = {
  mixture: { label: 'Gaussian mixture', make: unevenMixture },
  moons: { label: 'Two moons', make: () => twoMoons() },
  swissRoll: { label: 'Swiss roll', make: () => swissRoll() },
  eightGaussians: { label: '8 Gaussians', make: () => eightGaussians() },
  checkerboard: { label: 'Checkerboard', make: () => checkerboard() },
  rings: { label: 'Rings', make: () => rings() },
  spirals: { label: 'Two spirals', make: () => twoSpirals() },
};

export function isDatasetName(name: string): name is DatasetName {
  return Object.hasOwn(DATASETS, name);
}
