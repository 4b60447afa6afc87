// Toy data proved against known answers on the CPU backend (float64, fixed keys).
//
// - The mixture's exact score against central finite differences of its log-density, and against
//   reverse-mode autodiff of it.
// - Sample moments of every set within Monte-Carlo error of closed-form (or quadrature) values.
//   Raw moments E[x], E[y], E[x²], E[y²], E[xy] are each a mean of n i.i.d. terms g(x), so the
//   estimate has SE sd(g)/√n; sd(g) is taken from the same sample (plug-in; at n = 20000 its own
//   relative error is ~1%). Tolerance 4 SE: a false alarm has probability 6e-5 per check.

import { afterAll, describe, expect, it } from 'vitest';
import { Tensor, full, randomKey, tensor } from '@scorch/tensor';
import { gradOf } from '@scorch/autograd';
import {
  GaussianMixture, type ToyDataset, checkerboard, eightGaussians, rings, swissRoll, symmetricEigen,
  twoMoons, twoSpirals,
} from '../src/data.js';
import { vpSde } from '../src/sde.js';
import { unknownOption } from './options.js';

const f64 = { dtype: 'float64' as const };

const mixture = new GaussianMixture({
  weights: [0.5, 0.3, 0.2],
  means: [
    [1, 2],
    [-2, 0.5],
    [0.5, -3],
  ],
  covariances: [
    [
      [1, 0.5],
      [0.5, 2],
    ],
    0.5,
    [
      [0.3, -0.1],
      [-0.1, 0.2],
    ],
  ],
});

const points = [
  [0.3, -0.2],
  [2, 1],
  [-1.5, 0.4],
  [0.5, -2.5],
  [40, -35], // far from every component: log p ≈ −3000, responsibilities from logsumexp
];

/** Central differences of log p; truncation h²/6·|∂³log p| and rounding ε|log p|/h. */
function finiteDifferenceScore(logp: (x: number[][]) => Float64Array | ArrayLike<number>, x: number[], h: number): number[] {
  return x.map((_, j) => {
    const plus = x.map((v, k) => (k === j ? v + h : v));
    const minus = x.map((v, k) => (k === j ? v - h : v));
    return (logp([plus])[0]! - logp([minus])[0]!) / (2 * h);
  });
}

describe('GaussianMixture: exact score and density', () => {
  it('score = ∇ log p by central differences (h = 1e-4)', () => {
    // Truncation ≤ h²/6·max|∂³ log p| ≈ 1e-8·O(10) and rounding ≤ 2⁻⁵²·|log p|/h ≤ 1e-8 for
    // |log p| ≤ 3000: a tolerance of 1e-6·(1 + |s|) covers both with two orders to spare.
    const logp = (a: number[][]) => mixture.logProb(tensor(a, f64)).dataSync();
    for (const p of points) {
      const exact = mixture.score(tensor([p], f64)).dataSync();
      const fd = finiteDifferenceScore(logp, p, 1e-4);
      fd.forEach((v, j) => expect(Math.abs(exact[j]! - v), `point ${p} coordinate ${j}`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(v))));
    }
  });

  it('score = reverse-mode gradient of logProb, and stays finite far away', async () => {
    const x = tensor(points, f64);
    const exact = mixture.score(x).dataSync();
    const viaAutodiff = gradOf((y: Tensor) => mixture.logProb(y).sum())(x).dataSync();
    for (let i = 0; i < exact.length; i++) expect(exact[i]!).toBeCloseTo(viaAutodiff[i]!, 9);
    expect([...exact].every(Number.isFinite)).toBe(true);
    // At (40, −35) one component dominates entirely (the next is e^-500 or less behind): the score
    // is that component's own −Σₖ⁻¹(x − μₖ).
    const far = tensor([[40, -35]], f64);
    const single = (k: number) => new GaussianMixture({ means: [mixture.means[k]!], covariances: [mixture.covariances[k]!] });
    const logJoint = [0, 1, 2].map((k) => Math.log(mixture.weights[k]!) + single(k).logProb(far).dataSync()[0]!);
    const best = logJoint.indexOf(Math.max(...logJoint));
    const sorted = [...logJoint].sort((p, q) => q - p);
    expect(sorted[0]! - sorted[1]!).toBeGreaterThan(100);
    const direct = single(best).score(far).dataSync();
    expect(exact[8]!).toBeCloseTo(direct[0]!, 8);
    expect(exact[9]!).toBeCloseTo(direct[1]!, 8);
  });

  it('logProb integrates the right normaliser: one component equals the Gaussian formula', () => {
    const cov = [
      [1, 0.5],
      [0.5, 2],
    ];
    const single = new GaussianMixture({ means: [[1, 2]], covariances: [cov] });
    const x = [0.3, -0.2];
    const det = 1 * 2 - 0.25;
    const d = [x[0]! - 1, x[1]! - 2];
    const quad = (2 * d[0]! * d[0]! - 2 * 0.5 * d[0]! * d[1]! + 1 * d[1]! * d[1]!) / det; // dᵀΣ⁻¹d with Σ⁻¹ = adj/det
    const expected = -0.5 * quad - 0.5 * Math.log(det) - Math.log(2 * Math.PI);
    expect(single.logProb(tensor([x], f64)).dataSync()[0]!).toBeCloseTo(expected, 12);
  });

  it('noisy and diffused scores are the scores of the perturbed mixtures, per row', () => {
    const x = tensor(points.slice(0, 4), f64);
    const sigmas = [0.1, 0.5, 1, 3];
    const s = mixture.noisyScore(x, tensor(sigmas, f64)).dataSync();
    sigmas.forEach((sigma, i) => {
      const logp = (a: number[][]) => mixture.perturbed(1, sigma).logProb(tensor(a, f64)).dataSync();
      const fd = finiteDifferenceScore(logp, points[i]!, 1e-4);
      fd.forEach((v, j) => expect(Math.abs(s[2 * i + j]! - v)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(v))));
    });
    const sde = vpSde();
    const times = [0.05, 0.3, 0.6, 0.95];
    const diffused = mixture.diffusedScore(sde)(x, tensor(times, f64)).dataSync();
    times.forEach((t, i) => {
      const one = mixture.diffused(sde, t).score(tensor([points[i]!], f64)).dataSync();
      expect(diffused[2 * i]!).toBeCloseTo(one[0]!, 10);
      expect(diffused[2 * i + 1]!).toBeCloseTo(one[1]!, 10);
    });
  });

  it('symmetricEigen reconstructs its input', () => {
    const a = [
      [4, 1, -2],
      [1, 3, 0.5],
      [-2, 0.5, 5],
    ];
    const { values, vectors } = symmetricEigen(a);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let s = 0;
        for (let k = 0; k < 3; k++) s += vectors[i]![k]! * values[k]! * vectors[j]![k]!;
        expect(s).toBeCloseTo(a[i]![j]!, 12);
      }
    }
  });

  it('rejects malformed parameters with messages that say what was expected', () => {
    expect(() => new GaussianMixture({ means: [] })).toThrow(/at least one component/);
    expect(() => new GaussianMixture({ means: [[0, 0], [1]] })).toThrow(/mean 1 has 1 coordinates, expected 2/);
    expect(() => new GaussianMixture({ means: [[0, 0]], weights: [-1] })).toThrow(/finite and positive/);
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [[[1, 2], [2, 1]]] })).toThrow(/not positive definite/);
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [[[1, 0.1], [0, 1]]] })).toThrow(/not symmetric/);
    expect(() => mixture.score(tensor([[1, 2, 3]], f64))).toThrow(/expected x of shape \[N, 2\]/);
  });
});

// ------------------------------------------------------------------------------------------------
// Moments

type RawMoments = { ex: number; ey: number; exx: number; eyy: number; exy: number };

/** Each raw moment's estimate and its plug-in standard error sd(g)/√n. */
function rawMomentsWithSe(x: Tensor): { est: RawMoments; se: RawMoments } {
  const v = x.dataSync();
  const n = x.shape[0]!;
  const g = {
    ex: (a: number) => a,
    ey: (_: number, b: number) => b,
    exx: (a: number) => a * a,
    eyy: (_: number, b: number) => b * b,
    exy: (a: number, b: number) => a * b,
  };
  const est = {} as RawMoments;
  const se = {} as RawMoments;
  for (const [name, fn] of Object.entries(g) as [keyof RawMoments, (a: number, b: number) => number][]) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const val = fn(v[2 * i]!, v[2 * i + 1]!);
      s += val;
      s2 += val * val;
    }
    const mean = s / n;
    est[name] = mean;
    se[name] = Math.sqrt(Math.max(s2 / n - mean * mean, 0) / n);
  }
  return { est, se };
}

const measured: string[] = [];

function expectRawMoments(label: string, x: Tensor, known: RawMoments): void {
  const { est, se } = rawMomentsWithSe(x);
  for (const k of Object.keys(known) as (keyof RawMoments)[]) {
    expect(Math.abs(est[k] - known[k]), `${label} ${k}: ${est[k]} vs ${known[k]} (SE ${se[k]})`).toBeLessThanOrEqual(4 * se[k]);
  }
  measured.push(`${label}: ${(Object.keys(known) as (keyof RawMoments)[]).map((k) => `${k} ${est[k].toFixed(4)}/${known[k].toFixed(4)}`).join(' ')}`);
}

/** Composite Simpson's rule on [a, b] with 20000 intervals (error ~1e-12 for these integrands). */
function simpson(f: (t: number) => number, a: number, b: number, intervals = 20000): number {
  const h = (b - a) / intervals;
  let s = f(a) + f(b);
  for (let i = 1; i < intervals; i++) s += (i % 2 === 1 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3;
}

const n = 20000;

describe('sample moments match the known values within Monte-Carlo error', () => {
  it('Gaussian mixture: mean and covariance in closed form (law of total covariance)', () => {
    const x = mixture.sample(n, { key: randomKey(1), dtype: 'float64' });
    expect(x.shape).toEqual([n, 2]);
    const mu = mixture.mean();
    const cov = mixture.covariance();
    // Closed forms, written out: μ = Σ wₖμₖ; Σ = Σ wₖ(Σₖ + μₖμₖᵀ) − μμᵀ.
    expect(mu[0]!).toBeCloseTo(0.5 * 1 + 0.3 * -2 + 0.2 * 0.5, 14);
    expect(cov[0]![1]!).toBeCloseTo(0.5 * (0.5 + 2) + 0.3 * (0 + -1) + 0.2 * (-0.1 + -1.5) - mu[0]! * mu[1]!, 14);
    expectRawMoments('mixture', x, {
      ex: mu[0]!,
      ey: mu[1]!,
      exx: cov[0]![0]! + mu[0]! ** 2,
      eyy: cov[1]![1]! + mu[1]! ** 2,
      exy: cov[0]![1]! + mu[0]! * mu[1]!,
    });
  });

  it('two moons: mean 0, E[x²] = 3 + σ², E[y²] = 4(9/16 − 1/π) + σ², E[xy] = 4(1/8 − 1/π)', () => {
    // Unscaled moons: E = (½, ¼); Var x = ½(½) + ½(3/2) − ¼ = ¾; E[y²] = 5/8 − 1/π;
    // E[xy] = ½(½ − 2/π); then ×2 after centring, plus noise σ = 0.1 on the diagonal.
    const s2 = 0.01;
    expectRawMoments('twoMoons', twoMoons().sample(n, { key: randomKey(2), dtype: 'float64' }), {
      ex: 0,
      ey: 0,
      exx: 3 + s2,
      eyy: 4 * (9 / 16 - 1 / Math.PI) + s2,
      exy: 4 * (1 / 8 - 1 / Math.PI),
    });
  });

  it('swiss roll: moments by quadrature over t ~ U[1.5π, 4.5π]', () => {
    const a = 1.5 * Math.PI;
    const b = 4.5 * Math.PI;
    const scale = 2 / (4.5 * Math.PI);
    const E = (f: (t: number) => number) => simpson(f, a, b) / (b - a);
    const s2 = 0.01;
    expectRawMoments('swissRoll', swissRoll().sample(n, { key: randomKey(3), dtype: 'float64' }), {
      ex: scale * E((t) => t * Math.cos(t)),
      ey: scale * E((t) => t * Math.sin(t)),
      exx: scale ** 2 * E((t) => (t * Math.cos(t)) ** 2) + s2,
      eyy: scale ** 2 * E((t) => (t * Math.sin(t)) ** 2) + s2,
      exy: scale ** 2 * E((t) => t * t * Math.cos(t) * Math.sin(t)),
    });
  });

  it('8 Gaussians: mean 0, covariance (r²/2 + σ²)I = 2.0625·I', () => {
    const set = eightGaussians();
    const cov = set.covariance();
    expect(cov[0]![0]!).toBeCloseTo(2.0625, 12);
    expect(cov[0]![1]!).toBeCloseTo(0, 12);
    expectRawMoments('eightGaussians', set.sample(n, { key: randomKey(4), dtype: 'float64' }), { ex: 0, ey: 0, exx: 2.0625, eyy: 2.0625, exy: 0 });
  });

  it('checkerboard: U[−2, 2] marginals (E[x²] = 4/3) and E[xy] = 1/4', () => {
    // E[xy] = Σ over the 8 occupied unit squares (1/8)(i + ½)(j + ½) = (1/8)(1 + 1) … = ¼.
    const x = checkerboard().sample(n, { key: randomKey(5), dtype: 'float64' });
    expectRawMoments('checkerboard', x, { ex: 0, ey: 0, exx: 4 / 3, eyy: 4 / 3, exy: 0.25 });
    // Every point lies on an occupied square: ⌊x⌋ + ⌊y⌋ even.
    const v = x.dataSync();
    let offBoard = 0;
    for (let i = 0; i < n; i++) if ((Math.floor(v[2 * i]!) + Math.floor(v[2 * i + 1]!)) % 2 !== 0) offBoard++;
    expect(offBoard).toBe(0);
  });

  it('rings: mean 0, E[x²] = E[y²] = mean(r²)/2 + σ², E[xy] = 0', () => {
    const r2 = (0.25 + 1 + 2.25 + 4) / 4;
    expectRawMoments('rings', rings().sample(n, { key: randomKey(6), dtype: 'float64' }), { ex: 0, ey: 0, exx: r2 / 2 + 0.0025, eyy: r2 / 2 + 0.0025, exy: 0 });
  });

  it('two spirals: mean 0, second moments by quadrature over θ with density 2θ/(3π)²', () => {
    const top = 3 * Math.PI;
    const c = 1 / (1.5 * Math.PI);
    const E = (f: (t: number) => number) => simpson((t) => ((2 * t) / top ** 2) * f(t), 0, top);
    const s2 = 0.01;
    expectRawMoments('twoSpirals', twoSpirals().sample(n, { key: randomKey(7), dtype: 'float64' }), {
      ex: 0,
      ey: 0,
      exx: c * c * E((t) => (t * Math.cos(t)) ** 2) + s2,
      eyy: c * c * E((t) => (t * Math.sin(t)) ** 2) + s2,
      exy: -c * c * E((t) => t * t * Math.cos(t) * Math.sin(t)),
    });
  });
});

describe('sampling conventions', () => {
  const sets: ToyDataset[] = [mixture, twoMoons(), swissRoll(), eightGaussians(), checkerboard(), rings(), twoSpirals()];

  it('same key, same samples; another key, other samples; float32 by default', () => {
    for (const set of sets) {
      const a = set.sample(50, { key: randomKey(9) });
      const b = set.sample(50, { key: randomKey(9) });
      const c = set.sample(50, { key: randomKey(10) });
      expect(a.dtype, set.name).toBe('float32');
      expect(a.shape, set.name).toEqual([50, 2]);
      expect([...a.dataSync()], set.name).toEqual([...b.dataSync()]);
      expect([...a.dataSync()], set.name).not.toEqual([...c.dataSync()]);
    }
  });

  it('bad counts and noise levels are reported', () => {
    expect(() => twoMoons().sample(-1, { key: randomKey(1) })).toThrow(/non-negative integer, got -1/);
    expect(() => rings({ noise: -1 })).toThrow(/noise must be a finite number >= 0/);
  });

  it('rejects a misspelled option, naming the closest valid one and all of them, and nonsense values', () => {
    const key = randomKey(1);
    expect(() => twoMoons({ nosie: 0.2 } as never)).toThrow(unknownOption('twoMoons', 'nosie', 'noise', ['noise']));
    expect(() => swissRoll({ noize: 0.2 } as never)).toThrow(unknownOption('swissRoll', 'noize', 'noise', ['noise']));
    expect(() => twoSpirals({ std: 0.2 } as never)).toThrow(unknownOption('twoSpirals', 'std', null, ['noise']));
    expect(() => eightGaussians({ radious: 3 } as never)).toThrow(unknownOption('eightGaussians', 'radious', 'radius', ['radius', 'std']));
    expect(() => rings({ radius: [1, 2] } as never)).toThrow(unknownOption('rings', 'radius', 'radii', ['noise', 'radii']));
    expect(() => new GaussianMixture({ means: [[0, 0]], weight: [1] } as never)).toThrow(unknownOption('GaussianMixture', 'weight', 'weights', ['means', 'weights', 'covariances', 'name']));
    expect(() => twoMoons().sample(4, { key, dtyp: 'float64' } as never)).toThrow(unknownOption('twoMoons.sample', 'dtyp', 'dtype', ['key', 'dtype', 'device']));
    expect(() => eightGaussians().sample(4, { key, Device: 'cpu' } as never)).toThrow(unknownOption('GaussianMixture.sample', 'Device', 'device', ['key', 'dtype', 'device']));
    expect(() => checkerboard().sample(1.5, { key })).toThrow(/^checkerboard.sample: sample count must be a non-negative integer, got 1.5$/);
    expect(() => rings().sample(4, { key, dtype: 'int32' as never })).toThrow(/^rings.sample: unknown dtype "int32"; expected one of 'float32', 'float64'$/);
    expect(() => eightGaussians({ std: 0 })).toThrow(/^eightGaussians: std must be a finite number > 0, got 0$/);
    expect(() => checkerboard({ noise: 0.1 } as never)).toThrow(/^checkerboard: unknown option 'noise'; it takes no options$/);
  });

  it('samples of a d-dimensional mixture have the right shape (d = 3)', () => {
    const m3 = new GaussianMixture({ means: [[0, 0, 0], [1, 1, 1]], covariances: [1, 2] });
    const x = m3.sample(7, { key: randomKey(3), dtype: 'float64' });
    expect(x.shape).toEqual([7, 3]);
    expect(m3.score(x).shape).toEqual([7, 3]);
    expect(m3.logProb(x).shape).toEqual([7]);
    expect(m3.noisyScore(x, full([7], 0.5, f64)).shape).toEqual([7, 3]);
  });
});

// The measured figures, for the record (the lead's report quotes them).
afterAll(() => {
  console.log(measured.join('\n'));
});
