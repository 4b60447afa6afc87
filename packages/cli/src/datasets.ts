// The 2-D data sets the CLI trains on, by their command-line names, with what the report needs to
// know about each: the exact mixture (when the true score, modes and weights are known) and the
// scale of its finest structure (which sets a stable default Langevin step size).

import {
  type GaussianMixture, type ToyDataset, checkerboard, eightGaussians, gaussianMixture, rings, swissRoll, twoMoons,
  twoSpirals,
} from '@scorch/score';

export const DATA_NAMES = ['mixture', 'moons', 'swissroll', '8gaussians', 'checkerboard', 'rings', 'spirals'] as const;
export type DataName = (typeof DATA_NAMES)[number];

export interface DataEntry {
  readonly name: DataName;
  /** One line for --help and the report. */
  readonly description: string;
  readonly dataset: ToyDataset;
  /** The exact mixture when the data is one: true score, modes and mode weights are then known. */
  readonly mixture?: GaussianMixture;
  /**
   * Standard deviation of the data's finest structure (a component's or the added noise's): the
   * density varies on this length scale, so Langevin steps must be small against its square.
   */
  readonly localStd: number;
}

/**
 * The default data: Song & Ermon 2019's §3.2.2 mixture ⅕N((−5,−5), I) + ⅘N((5,5), I), scaled by
 * 0.4 so the points are of unit scale for the network. Its well-separated modes with unequal
 * weights are what annealed Langevin dynamics recovers and plain Langevin does not.
 */
function songErmonMixture(): GaussianMixture {
  return gaussianMixture({ name: 'mixture', means: [[-2, -2], [2, 2]], covariances: [0.16, 0.16], weights: [0.2, 0.8] });
}

const makers: { [N in DataName]: () => Omit<DataEntry, 'name'> } = {
  mixture: () => {
    const mixture = songErmonMixture();
    return {
      description: "Song & Ermon 2019 (§3.2.2)'s two Gaussians, weights 1/5 and 4/5, scaled by 0.4",
      dataset: mixture,
      mixture,
      localStd: 0.4,
    };
  },
  moons: () => ({ description: 'two interleaved half-circles, noise 0.1', dataset: twoMoons(), localStd: 0.1 }),
  swissroll: () => ({ description: 'the 2-D swiss roll, noise 0.1', dataset: swissRoll(), localStd: 0.1 }),
  '8gaussians': () => {
    const mixture = eightGaussians();
    return { description: 'eight Gaussians (std 0.25) on a circle of radius 2', dataset: mixture, mixture, localStd: 0.25 };
  },
  // Uniform squares: the density is flat inside and jumps at the edges; 0.1 is a tenth of a square.
  checkerboard: () => ({ description: 'uniform on the 8 dark squares of a 4 × 4 board', dataset: checkerboard(), localStd: 0.1 }),
  rings: () => ({ description: 'four concentric rings, noise 0.05', dataset: rings(), localStd: 0.05 }),
  spirals: () => ({ description: 'two interleaved spirals, noise 0.1', dataset: twoSpirals(), localStd: 0.1 }),
};

export function dataEntry(name: DataName): DataEntry {
  return { name, ...makers[name]() };
}

/** The one-line descriptions of every data set, for --help. */
export function dataDescriptions(): string {
  return DATA_NAMES.map((n) => `${n}: ${makers[n]().description}`).join('; ');
}
