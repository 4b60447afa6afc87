// The data sets' checks, defaults and parameters that data.test.ts (moments, χ² fits, exact
// scores) does not pin down, and symmetricEigen at scales where squares overflow or underflow.
// CPU, fixed keys; one WebGPU case for the device check.

import { describe, expect, it } from 'vitest';
import { type RandomKey, randomKey, tensor } from '@scorch/tensor';
import { GaussianMixture, type ToyDataset, checkerboard, eightGaussians, rings, swissRoll, symmetricEigen, twoMoons, twoSpirals } from '../src/data.js';
import { openDevice } from './devices.js';

const f64 = { dtype: 'float64' as const };

describe('data sets: counts, keys and options objects', () => {
  it('sample(0) is an empty [0, dim] batch for every set, not an error', () => {
    const sets: ToyDataset[] = [eightGaussians(), twoMoons(), swissRoll(), checkerboard(), rings(), twoSpirals()];
    for (const set of sets) expect(set.sample(0, { key: randomKey(1) }).shape, set.name).toEqual([0, 2]);
  });

  it('a bad key is reported under the data set\'s own name', () => {
    expect(() => twoMoons().sample(4, { key: [1] as never })).toThrow(/^twoMoons\.sample: opts\.key: a key is two unsigned 32-bit integers/);
    expect(() => rings().sample(4, {} as never)).toThrow(/^rings\.sample: opts\.key: a key is two unsigned 32-bit integers/);
  });

  it('null options are refused by name', () => {
    expect(() => twoMoons(null as never)).toThrow(/^twoMoons: expected an options object, got null$/);
    expect(() => eightGaussians(null as never)).toThrow(/^eightGaussians: expected an options object, got null$/);
  });
});

describe('GaussianMixture: parameter checks', () => {
  it('symmetricEigen refuses an asymmetry of 1e-9 in a matrix of scale 1 (tolerance 1e-12·max|aᵢⱼ|)', () => {
    expect(() => symmetricEigen([[1, 1e-9], [0, 1]])).toThrow(/^symmetricEigen: the matrix is not symmetric \(\[0\]\[1\] = 1e-9, \[1\]\[0\] = 0\)$/);
  });

  it('refuses a non-finite mean coordinate', () => {
    expect(() => new GaussianMixture({ means: [[0, Number.NaN]] })).toThrow(/^GaussianMixture: mean 0 has a non-finite coordinate: \[0,null\]$/);
    expect(() => new GaussianMixture({ means: [[0, 0], [Infinity, 1]] })).toThrow(/^GaussianMixture: mean 1 has a non-finite coordinate/);
  });

  it('refuses more weights than components, and a zero weight', () => {
    expect(() => new GaussianMixture({ means: [[0, 0]], weights: [1, 1] })).toThrow(/^GaussianMixture: 2 weights for 1 components$/);
    expect(() => new GaussianMixture({ means: [[0, 0], [1, 1]], weights: [1, 0] })).toThrow(/^GaussianMixture: weights must be finite and positive, got \[1,0\]$/);
  });

  it('refuses an isotropic variance of 0 as such, and a negative-definite covariance with its eigenvalue', () => {
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [0] })).toThrow(/^GaussianMixture: covariance 0 is the number 0; an isotropic variance must be positive$/);
    // [[1, 2], [2, 1]] has eigenvalues 3 and −1: not 'singular to rounding', plainly indefinite.
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [[[1, 2], [2, 1]]] })).toThrow(/^GaussianMixture: covariance 0 is not positive definite \(smallest eigenvalue -/);
  });

  it('the rounding level scales with d: diag(1, 1, 2e-14) is singular to rounding in 3-D', () => {
    // Diagonal, so symmetricEigen returns exactly 1, 1, 2e-14; ‖Σ‖_F = √2 (to 1e-28), and the
    // level d·1e-14·‖Σ‖_F = 4.24e-14 > 2e-14 (without the factor d it would be 1.41e-14 < 2e-14).
    expect(() => new GaussianMixture({ means: [[0, 0, 0]], covariances: [[[1, 0, 0], [0, 1, 0], [0, 0, 2e-14]]] })).toThrow(/^GaussianMixture: covariance 0 is not positive definite: it is singular to rounding/);
  });

  it('x must be float32 or float64', () => {
    const g = eightGaussians();
    expect(() => g.score(tensor([[1, 2]], { dtype: 'int32' }))).toThrow(/^GaussianMixture: x must be float32 or float64, got int32$/);
  });

  it('an infinite noise std or mean scale given as a number is refused', () => {
    const g = eightGaussians();
    const x = tensor([[0.5, 0.5]], f64);
    expect(() => g.noisyScore(x, Infinity)).toThrow(/^GaussianMixture: the noise std must be finite, got Infinity$/);
    expect(() => g.perturbedLogProb(x, -Infinity, 1)).toThrow(/^GaussianMixture: the mean scale must be finite, got -Infinity$/);
  });

  it('names: default \'gaussianMixture\', and perturbed marks its name', () => {
    const g = new GaussianMixture({ means: [[0]] });
    expect(g.name).toBe('gaussianMixture');
    expect(g.perturbed(1, 0.5).name).toBe('gaussianMixture(perturbed)');
    expect(eightGaussians().perturbed(0.5, 0.5).name).toBe('eightGaussians(perturbed)');
  });

  it('after dispose() the mixture rebuilds its parameters and gives the same values', () => {
    const g = new GaussianMixture({ means: [[1, 2], [-1, 0]], weights: [0.3, 0.7], covariances: [0.5, [[1, 0.2], [0.2, 2]]] });
    const x = tensor([[0.3, -0.2], [2, 1]], f64);
    const before = Array.from(g.score(x).dataSync());
    g.dispose();
    expect(Array.from(g.score(x).dataSync())).toEqual(before);
    g.dispose();
  });
});

describe('eightGaussians and rings: parameters', () => {
  it('means at angles kπ/4 on the circle of the radius, variance std²', () => {
    const g = eightGaussians({ radius: 3, std: 0.5 });
    g.means.forEach((m, k) => {
      // One cos/sin of kπ/4 and a product: within 2 ulps of 3.
      expect(Math.abs(m[0]! - 3 * Math.cos((k * Math.PI) / 4))).toBeLessThan(1e-15);
      expect(Math.abs(m[1]! - 3 * Math.sin((k * Math.PI) / 4))).toBeLessThan(1e-15);
    });
    expect(g.means[0]).toEqual([3, 0]);
    expect(g.covariances[5]).toEqual([[0.25, 0], [0, 0.25]]);
  });

  it('refuses a radius of 0 and empty radii', () => {
    expect(() => eightGaussians({ radius: 0 })).toThrow(/^eightGaussians: radius must be a finite number > 0, got 0$/);
    expect(() => rings({ radii: [] })).toThrow(/^rings: radii must be positive numbers, got \[\]$/);
  });
});

describe('noise levels: a set\'s sample minus its noise-free sample for the same key is N(0, noise²·I)', () => {
  // The latent draws (label, angle, ring, …) come from keys split off before the noise, so for one
  // key, sample(noise: s) − sample(noise: 0) = s·z, z ~ N(0, I) i.i.d. over the 2n coordinates.
  // The mean of the 2n squares estimates s² with standard error s²·√2/√(2n) = s²/√n: at n = 4000,
  // 4 SE is 6.3% of s² (a false alarm 6e-5 per check, keys fixed). Squaring the std instead, or a
  // default changed to 0.15 / 0.08, moves it by 125% or more.
  const n = 4000;
  function meanSquareDifference(make: (noise?: number) => ToyDataset, noise: number | undefined, key: RandomKey): number {
    const noisy = make(noise).sample(n, { key, dtype: 'float64' }).dataSync();
    const clean = make(0).sample(n, { key, dtype: 'float64' }).dataSync();
    let s = 0;
    for (let i = 0; i < 2 * n; i++) s += (noisy[i]! - clean[i]!) ** 2;
    return s / (2 * n);
  }
  const sets: [string, (noise?: number) => ToyDataset, number][] = [
    ['twoMoons', (noise) => twoMoons(noise === undefined ? {} : { noise }), 0.1],
    ['swissRoll', (noise) => swissRoll(noise === undefined ? {} : { noise }), 0.1],
    ['rings', (noise) => rings(noise === undefined ? {} : { noise }), 0.05],
    ['twoSpirals', (noise) => twoSpirals(noise === undefined ? {} : { noise }), 0.1],
  ];
  for (const [name, make, defaultNoise] of sets) {
    it(`${name}: noise 0.5 as given, and the documented default ${defaultNoise}`, () => {
      for (const [noise, s] of [[0.5, 0.5], [undefined, defaultNoise]] as const) {
        const ms = meanSquareDifference(make, noise, randomKey(40));
        expect(Math.abs(ms - s * s), `${name} noise ${noise}: mean square ${ms} vs ${s * s}`).toBeLessThanOrEqual((4 * s * s) / Math.sqrt(n));
      }
    });
  }
});

describe('per-row coefficients must be on x\'s device', () => {
  it('a σ on WebGPU beside x on the CPU is named', async () => {
    await openDevice('webgpu');
    const g = eightGaussians();
    const x = tensor([[0.5, 0.5], [1, -1]]);
    const sigma = tensor([0.5, 1], { device: 'webgpu' });
    expect(() => g.noiseConditionalScore()(x, sigma)).toThrow(/^noiseConditionalScore: σ must be in x's dtype and on its device \(float32 on 'cpu'\), got float32 on 'webgpu'$/);
    expect(() => g.noisyScore(x, sigma)).toThrow(/^GaussianMixture: the noise std must be in x's dtype and on its device \(float32 on 'cpu'\), got float32 on 'webgpu'$/);
    sigma.dispose();
  });
});

describe('symmetricEigen and GaussianMixture at extreme scales', () => {
  it('finds the eigenvalues of matrices whose squared entries overflow or underflow', () => {
    // [[2, 1], [1, 2]]·s has eigenvalues s and 3s; the rotations at a power-of-two scale are exact
    // scalings of those at scale 1, which give them to a few ulps.
    for (const s of [1e200, 1e-170, 1]) {
      const { values } = symmetricEigen([[2 * s, s], [s, 2 * s]]);
      const sorted = [...values].sort((x, y) => x - y);
      expect(Math.abs(sorted[0]! / s - 1), `scale ${s}`).toBeLessThan(1e-15);
      expect(Math.abs(sorted[1]! / (3 * s) - 1), `scale ${s}`).toBeLessThan(1e-15);
    }
    expect(symmetricEigen([[1.7e308, 0], [0, 1e308]]).values).toEqual([1.7e308, 1e308]);
  });

  it('accepts an isotropic covariance of 1e160 and refuses a rank-one covariance of 1e-170', () => {
    const wide = new GaussianMixture({ means: [[0, 0]], covariances: [1e160] });
    expect(wide.covariances[0]).toEqual([[1e160, 0], [0, 1e160]]);
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [[[1e-170, 1e-170], [1e-170, 1e-170]]] })).toThrow(
      /^GaussianMixture: covariance 0 is not positive definite/,
    );
  });

  it('takes a covariance of many dimensions (710: half a million entries)', () => {
    // The norm that sets the rounding level once spread all d² entries into one call's arguments.
    const d = 710;
    const identity = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));
    const wide = new GaussianMixture({ means: [new Array<number>(d).fill(0)], covariances: [identity] });
    expect(wide.covariances[0]![d - 1]![d - 1]).toBe(1);
  });
});
