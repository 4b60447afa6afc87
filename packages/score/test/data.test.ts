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
import { veSde, vpSde } from '../src/sde.js';
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

  it('refuses a negative noise std and the point mass m = s = 0 given as numbers, as perturbed does', () => {
    // A negative σ was squared away (noisyScore(x, −0.5) returned the score at σ = 0.5) and
    // m = s = 0 returned NaN; perturbed(1, −0.5) and perturbed(0, 0) were already refused.
    const x = tensor([[0.3, -0.2]], f64);
    expect(() => mixture.noisyScore(x, -0.5)).toThrow(/^GaussianMixture: the noise std must be >= 0, got -0.5$/);
    expect(() => mixture.perturbedLogProb(x, 1, -0.5)).toThrow(/^GaussianMixture: the noise std must be >= 0, got -0.5$/);
    expect(() => mixture.perturbedScore(x, 0, 0)).toThrow(/^GaussianMixture: the mean scale and the noise std are both 0/);
    expect(() => mixture.perturbedLogProb(x, 0, 0)).toThrow(/^GaussianMixture: the mean scale and the noise std are both 0/);
    // A negative mean scale is a law like any other (that of −X): the mixture with means −μₖ.
    const flipped = new GaussianMixture({ weights: mixture.weights, means: mixture.means.map((m) => m.map((v) => -v)), covariances: mixture.covariances });
    const a = mixture.perturbedScore(x, -1, 0).dataSync();
    const b = flipped.score(x).dataSync();
    // Identical arithmetic up to the sign of the means: equal to a few ulps of the score.
    expect(Math.abs(a[0]! - b[0]!)).toBeLessThan(1e-14);
    expect(Math.abs(a[1]! - b[1]!)).toBeLessThan(1e-14);
  });

  it('the conditional scores name a σ or t of the wrong shape or dtype', () => {
    // A float32 σ or t beside float64 x failed as 'add: dtype mismatch (float64 vs float32) for
    // shapes [3,1,2] and [1,2,1]', and a t of shape [N, 1] was reported as 'the mean scale'.
    const x = tensor(points.slice(0, 2), f64);
    expect(() => mixture.noiseConditionalScore()(x, tensor([0.5, 1]))).toThrow(/^noiseConditionalScore: σ must be in x's dtype and on its device \(float64 on 'cpu'\), got float32 on 'cpu'$/);
    expect(() => mixture.diffusedScore(vpSde())(x, tensor([0.5, 1]))).toThrow(/^diffusedScore: t must be in x's dtype and on its device \(float64 on 'cpu'\), got float32 on 'cpu'$/);
    expect(() => mixture.diffusedScore(vpSde())(x, tensor([[0.5], [1]], f64))).toThrow(/^diffusedScore: t must be a \[2\] tensor \(one value per row of x\), got \[2,1\]$/);
    expect(() => mixture.noisyScore(x, tensor([0.5, 1]))).toThrow(/^GaussianMixture: the noise std must be in x's dtype and on its device \(float64 on 'cpu'\), got float32 on 'cpu'$/);
    expect(() => mixture.perturbedScore(x, tensor([1], f64), 0)).toThrow(/^GaussianMixture: the mean scale must be a number or a \[2\] tensor \(one value per row of x\), got \[1\]$/);
  });

  it('diffused(sde, t) takes t in [0, T] only', () => {
    // t = −1 on the VE SDE used to give the mixture noised at s = σ(−1) = 2e-6, t = 2 on VP an
    // extrapolated kernel, and t = −1e-3 on VP 'perturbed: need … got 1.00005…, NaN'.
    expect(() => mixture.diffused(veSde(), -1)).toThrow(/^diffused: t must be a finite number >= 0 and <= 1, got -1$/);
    expect(() => mixture.diffused(vpSde(), -1e-3)).toThrow(/^diffused: t must be a finite number >= 0 and <= 1, got -0.001$/);
    expect(() => mixture.diffused(vpSde(), 2)).toThrow(/^diffused: t must be a finite number >= 0 and <= 1, got 2$/);
    expect(() => mixture.diffused(vpSde(), Number.NaN)).toThrow(/^diffused: t must be a finite number >= 0 and <= 1, got NaN$/);
    expect(() => mixture.diffused(vpSde(), undefined as never)).toThrow(/^diffused: t must be a finite number >= 0 and <= 1, got undefined$/);
    // The ends are the data (VP at 0: m = 1, s = 0) and the last marginal.
    expect(mixture.diffused(vpSde(), 0).covariances).toEqual(mixture.covariances);
    expect(mixture.diffused(vpSde(), 1).dim).toBe(2);
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

  it('symmetricEigen refuses a matrix that is not square, finite and symmetric', () => {
    // Each returned an answer for another matrix: [[1, 2]] gave values [1], [[1, 2], [0, 1]] those of a symmetrised one.
    expect(() => symmetricEigen([[1, 2]])).toThrow(/^symmetricEigen: expected a square matrix; row 0 has 2 entries, not 1$/);
    expect(() => symmetricEigen([[1, 2], [0, 1]])).toThrow(/^symmetricEigen: the matrix is not symmetric \(\[0\]\[1\] = 2, \[1\]\[0\] = 0\)$/);
    expect(() => symmetricEigen([[1, NaN], [NaN, 1]])).toThrow(/^symmetricEigen: entry \[0\]\[1\] must be a finite number, got NaN$/);
    expect(() => symmetricEigen(null as never)).toThrow(/^symmetricEigen: expected a square matrix as an array of rows, got null$/);
    expect(() => symmetricEigen([1, 2] as never)).toThrow(/^symmetricEigen: expected a square matrix as an array of rows, got \[1,2\]$/);
    expect(symmetricEigen([])).toEqual({ values: [], vectors: [] });
  });

  it('rejects malformed parameters with messages that say what was expected', () => {
    expect(() => new GaussianMixture({ means: [] })).toThrow(/at least one component/);
    expect(() => new GaussianMixture({ means: [[0, 0], [1]] })).toThrow(/mean 1 has 1 coordinates, expected 2/);
    expect(() => new GaussianMixture({ means: [[0, 0]], weights: [-1] })).toThrow(/finite and positive/);
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [[[1, 2], [2, 1]]] })).toThrow(/not positive definite/);
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [[[1, 0.1], [0, 1]]] })).toThrow(/not symmetric/);
    expect(() => mixture.score(tensor([[1, 2, 3]], f64))).toThrow(/expected x of shape \[N, 2\]/);
  });

  it('refuses spec fields of the wrong type by name, before reading them', () => {
    // These failed inside the checks ('m.every is not a function', 'undefined weights for 2
    // components', 'covariance 0 must be 2×2, got 1×1' for a string) or, for the name, passed.
    expect(() => new GaussianMixture({ means: [1, 2] as never })).toThrow(/^GaussianMixture: mean 0 must be an array of coordinates \(means are K rows of length d\), got 1$/);
    expect(() => new GaussianMixture({ means: [[0, 0], 3] as never })).toThrow(/^GaussianMixture: mean 1 must be an array of coordinates/);
    expect(() => new GaussianMixture({ means: [[0], [1]], weights: 3 as never })).toThrow(/^GaussianMixture: weights must be an array with one entry per component, got 3$/);
    expect(() => new GaussianMixture({ means: [[0], [1]], covariances: 0.5 as never })).toThrow(/^GaussianMixture: covariances must be an array with one entry per component, got 0.5$/);
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: ['ab' as never] })).toThrow(/^GaussianMixture: covariance 0 must be a number or a 2×2 array of rows, got "ab"$/);
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [[1, 1] as never] })).toThrow(/^GaussianMixture: covariance 0 must be a number or a 2×2 array of rows, got \[1,1\]$/);
    expect(() => new GaussianMixture({ means: [[0, 0]], name: 3 as never })).toThrow(/^GaussianMixture: name must be a string, got 3$/);
  });

  it('refuses a covariance with an infinite or NaN entry, and an infinite noise level, by name', () => {
    // An infinite variance used to be accepted (log p = −∞ everywhere, score 0), and a NaN one was
    // reported as 'not positive definite (smallest eigenvalue NaN)'.
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [[[Infinity, 0], [0, 1]]] })).toThrow(/^GaussianMixture: covariance 0 has a non-finite entry: \[0\]\[0\] = Infinity$/);
    expect(() => new GaussianMixture({ means: [[0, 0], [1, 1]], covariances: [1, [[1, NaN], [NaN, 1]]] })).toThrow(/^GaussianMixture: covariance 1 has a non-finite entry: \[0\]\[1\] = NaN$/);
    expect(() => mixture.perturbed(1, Infinity)).toThrow(/^perturbed: need a finite scale and a finite noiseStd >= 0, got 1, Infinity$/);
  });

  it('tests symmetry relative to the covariance\'s own scale, whatever its units', () => {
    // The tolerance was 1e-12·max(1, |Σᵢⱼ|): at a scale of 1e-13 an off-diagonal pair 4e-14 and
    // −4e-14 passed as symmetric, while at a scale of 1e6 a rounding-level asymmetry of 1e-10
    // (1e-16 of the matrix) in an off-diagonal entry of 1 was refused.
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [[[1e-13, 4e-14], [-4e-14, 1e-13]]] })).toThrow(/^GaussianMixture: covariance 0 is not symmetric \(\[0\]\[1\] = 4e-14, \[1\]\[0\] = -4e-14\)$/);
    const wide = new GaussianMixture({ means: [[0, 0]], covariances: [[[1e6, 1], [1 + 1e-10, 1e6]]] });
    // Accepted, with the determinant 1e12 − 1 of either triangle: log p(0) = −½ log det − log 2π.
    expect(wide.logProb(tensor([[0, 0]], f64)).dataSync()[0]!).toBeCloseTo(-0.5 * Math.log(1e12 - 1) - Math.log(2 * Math.PI), 12);
  });

  it('refuses a covariance that is singular to rounding, whatever the sign its rounding takes', () => {
    // Each is exactly singular (rank d − 1): [0.1, 0.3; 0.3, 0.9] = v·vᵀ with v = (√0.1)(1, 3), and
    // v·vᵀ + w·wᵀ in 3-D. symmetricEigen returns their zero eigenvalue as ±1e-17 or so; taken as
    // positive it made the score ~1e16 at x = 1 (this first matrix passed as 2.6e-17).
    const v = [1.2, -0.7, 0.4];
    const w = [0.3, 0.9, -1.1];
    const rank2 = v.map((vi, i) => v.map((vj, j) => vi * vj + w[i]! * w[j]!));
    const rank1 = [
      [0.1, 0.3],
      [0.3, 0.9],
    ];
    expect(symmetricEigen(rank1).values.some((l) => l > 0 && l < 1e-15)).toBe(true); // the case that got through
    expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [rank1] })).toThrow(/^GaussianMixture: covariance 0 is not positive definite: it is singular to rounding/);
    expect(() => new GaussianMixture({ means: [[0, 0, 0], [1, 1, 1]], covariances: [1, rank2] })).toThrow(/^GaussianMixture: covariance 1 is not positive definite: it is singular to rounding/);
    // Singular matrices from 40 directions (2-D v·vᵀ, 3-D rank 2): every one refused.
    for (let i = 1; i <= 40; i++) {
      const a = [Math.sin(i * 1.3) * 1.7, Math.cos(i * 0.7) * 0.9, (i % 5) * 0.31 - 0.5];
      const b = [Math.cos(i * 2.1), 0.4 * Math.sin(i), 0.77];
      const c2 = [0, 1].map((p) => [0, 1].map((q) => a[p]! * a[q]!));
      const c3 = [0, 1, 2].map((p) => [0, 1, 2].map((q) => a[p]! * a[q]! + b[p]! * b[q]!));
      expect(() => new GaussianMixture({ means: [[0, 0]], covariances: [c2] }), `2-D direction ${i}`).toThrow(/not positive definite/);
      expect(() => new GaussianMixture({ means: [[0, 0, 0]], covariances: [c3] }), `3-D direction ${i}`).toThrow(/not positive definite/);
    }
    // Ill-conditioned but regular (condition number 1e10) is kept, with the Gaussian's exact log density.
    const c = Math.cos(0.3);
    const s = Math.sin(0.3);
    const thin = [
      [c * c + 1e-10 * s * s, (1 - 1e-10) * c * s],
      [(1 - 1e-10) * c * s, s * s + 1e-10 * c * c],
    ];
    const g = new GaussianMixture({ means: [[0, 0]], covariances: [thin] });
    // At x = 1e-5·(−sin, cos), along the thin direction: log p = −½·(1e-10/1e-10) − ½ log(1e-10) − log 2π.
    const at = tensor([[-1e-5 * s, 1e-5 * c]], f64);
    expect(g.logProb(at).dataSync()[0]!).toBeCloseTo(-0.5 - 0.5 * Math.log(1e-10) - Math.log(2 * Math.PI), 5);
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

// ------------------------------------------------------------------------------------------------
// Goodness of fit of the samplers' discrete and latent structure: Pearson's χ² on the counts of
// n = 20000 draws in cells of known probability (the component of a mixture, the square of the
// checkerboard, the ring, the moon, an angle or arc-length bin), with the cells' latent variable
// read back exactly from a noise-free draw. Under a correct sampler the statistic is χ² with
// (cells − 1) degrees of freedom to O(1/n); each check fails at the 1 − 1e-4 quantile, so a false
// alarm has probability 1e-4 per check (the keys are fixed: a pass is a pass on every run).

/** Γ(a) for a a positive multiple of ½ (exact recurrences from Γ(½) = √π and Γ(1) = 1). */
function halfIntegerGamma(a: number): number {
  let g = Number.isInteger(a) ? 1 : Math.sqrt(Math.PI);
  for (let b = Number.isInteger(a) ? 1 : 0.5; b < a; b++) g *= b;
  return g;
}

/** P(χ²_k ≤ x): the regularised lower incomplete gamma P(k/2, x/2) by its power series. */
function chiSquareCdf(x: number, k: number): number {
  if (x <= 0) return 0;
  const a = k / 2;
  const y = x / 2;
  let term = Math.exp(a * Math.log(y) - y) / halfIntegerGamma(a + 1);
  let sum = term;
  for (let j = 1; j < 1000 && term > 1e-17 * sum; j++) sum += term *= y / (a + j);
  return sum;
}

/** The x with P(χ²_k > x) = alpha, by bisection. */
function chiSquareQuantileAbove(alpha: number, k: number): number {
  let lo = 0;
  let hi = 10 * k + 100;
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (1 - chiSquareCdf(mid, k) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}

const FALSE_ALARM = 1e-4;

/** Pearson's statistic of cell counts against cell probabilities (summing to 1), checked at FALSE_ALARM. */
function expectChiSquareFit(label: string, counts: readonly number[], probabilities: readonly number[]): void {
  const total = counts.reduce((a, b) => a + b, 0);
  expect(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1), `${label}: cell probabilities`).toBeLessThan(1e-12);
  const statistic = counts.reduce((acc, c, i) => acc + (c - total * probabilities[i]!) ** 2 / (total * probabilities[i]!), 0);
  const critical = chiSquareQuantileAbove(FALSE_ALARM, counts.length - 1);
  measured.push(`${label}: χ² = ${statistic.toFixed(2)} on ${counts.length - 1} df (critical ${critical.toFixed(2)})`);
  expect(statistic, `${label}: χ² on ${counts.length - 1} df`).toBeLessThanOrEqual(critical);
}

/** Counts of values in the cells [edges[i], edges[i+1]). */
function binCounts(values: readonly number[], edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length - 1).fill(0);
  for (const v of values) {
    const i = edges.findIndex((e, j) => j < edges.length - 1 && v >= e && v < edges[j + 1]!);
    expect(i, `value ${v} outside [${edges[0]}, ${edges[edges.length - 1]})`).toBeGreaterThanOrEqual(0);
    counts[i]!++;
  }
  return counts;
}

describe('samplers fit their distributions (Pearson χ², false alarm 1e-4 per check)', () => {
  const gofN = 20000;

  it('the χ² helpers reproduce known quantiles', () => {
    // P(χ²₂ > x) = e^{−x/2} exactly; χ²₁ is Z²: P(χ²₁ ≤ 1.959964²) = 0.95; the 0.999 quantile of χ²₃ is 16.266.
    expect(chiSquareQuantileAbove(1e-4, 2)).toBeCloseTo(-2 * Math.log(1e-4), 9);
    expect(chiSquareCdf(1.959963984540054 ** 2, 1)).toBeCloseTo(0.95, 9);
    expect(chiSquareQuantileAbove(1e-3, 3)).toBeCloseTo(16.266, 3);
  });

  it('a 3-D mixture: component frequencies are the weights, and each component is N(μₖ, Σₖ) (Mahalanobis² ~ χ²₃)', () => {
    // Means 20 apart and standard deviations ≤ 1.5: a draw is nearer another component's mean
    // than its own with probability below 1e-20, so the nearest mean names the component drawn.
    const means = [[0, 0, 0], [20, 0, 0], [0, -20, 10]];
    const covariances = [[[1, 0.5, 0.2], [0.5, 2, -0.3], [0.2, -0.3, 0.5]], [[0.3, 0, 0], [0, 0.3, 0], [0, 0, 0.3]], [[0.4, 0, 0.1], [0, 0.4, 0], [0.1, 0, 0.9]]];
    const weights = [0.5, 0.3, 0.2];
    const g = new GaussianMixture({ means, weights, covariances });
    const v = g.sample(gofN, { key: randomKey(70), dtype: 'float64' }).dataSync();
    // Σₖ⁻¹ on the host from the eigen-decomposition: U diag(1/λ) Uᵀ.
    const inverses = covariances.map((c) => {
      const { values, vectors: u } = symmetricEigen(c);
      return [0, 1, 2].map((i) => [0, 1, 2].map((j) => values.reduce((acc, l, k) => acc + (u[i]![k]! * u[j]![k]!) / l, 0)));
    });
    const counts = [0, 0, 0];
    const mahalanobis: number[][] = [[], [], []];
    for (let i = 0; i < gofN; i++) {
      const p = [v[3 * i]!, v[3 * i + 1]!, v[3 * i + 2]!];
      const sq = means.map((m) => m.reduce((acc, mj, j) => acc + (p[j]! - mj) ** 2, 0));
      const k = sq.indexOf(Math.min(...sq));
      counts[k]!++;
      const r = p.map((pj, j) => pj - means[k]![j]!);
      mahalanobis[k]!.push(r.reduce((acc, ri, a) => acc + ri * r.reduce((b, rj, c) => b + inverses[k]![a]![c]! * rj, 0), 0));
    }
    expectChiSquareFit('mixture weights', counts, weights);
    const edges = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 8, Infinity];
    const probabilities = edges.slice(0, -1).map((e, i) => (edges[i + 1] === Infinity ? 1 : chiSquareCdf(edges[i + 1]!, 3)) - chiSquareCdf(e, 3));
    mahalanobis.forEach((values, k) => expectChiSquareFit(`mixture component ${k} (Mahalanobis²)`, binCounts(values, edges), probabilities));
  });

  it('checkerboard: the 8 occupied unit squares equally often', () => {
    const v = checkerboard().sample(gofN, { key: randomKey(71), dtype: 'float64' }).dataSync();
    // Squares [i, i+1) × [j, j+1), i + j even, numbered by column i and row pair ⌊(j + 2)/2⌋.
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < gofN; i++) counts[2 * (Math.floor(v[2 * i]!) + 2) + Math.floor((Math.floor(v[2 * i + 1]!) + 2) / 2)]!++;
    expectChiSquareFit('checkerboard squares', counts, new Array<number>(8).fill(1 / 8));
  });

  it('rings (noise 0): each ring with probability ¼, the angle uniform', () => {
    const v = rings({ noise: 0 }).sample(gofN, { key: randomKey(72), dtype: 'float64' }).dataSync();
    const ring = new Array<number>(4).fill(0);
    const angles: number[] = [];
    for (let i = 0; i < gofN; i++) {
      ring[Math.round(Math.hypot(v[2 * i]!, v[2 * i + 1]!) / 0.5) - 1]!++;
      angles.push(Math.atan2(v[2 * i + 1]!, v[2 * i]!) + Math.PI);
    }
    expectChiSquareFit('rings: ring chosen', ring, [0.25, 0.25, 0.25, 0.25]);
    const edges = Array.from({ length: 13 }, (_, i) => (i === 12 ? 2 * Math.PI + 1e-12 : (i * Math.PI) / 6));
    expectChiSquareFit('rings: angle', binCounts(angles, edges), new Array<number>(12).fill(1 / 12));
  });

  it('two moons (noise 0): each moon with probability ½, θ ~ U[0, π] on each', () => {
    const v = twoMoons({ noise: 0 }).sample(gofN, { key: randomKey(73), dtype: 'float64' }).dataSync();
    const upper: number[] = [];
    const lower: number[] = [];
    for (let i = 0; i < gofN; i++) {
      // Undo the centring and doubling: (x, y) = p/2 + (½, ¼); upper (cos θ, sin θ), lower (1 − cos θ, ½ − sin θ).
      const x = v[2 * i]! / 2 + 0.5;
      const y = v[2 * i + 1]! / 2 + 0.25;
      if (Math.abs(Math.hypot(x, y) - 1) < 1e-9) upper.push(Math.atan2(y, x));
      else {
        expect(Math.abs(Math.hypot(1 - x, 0.5 - y) - 1)).toBeLessThan(1e-9);
        lower.push(Math.atan2(0.5 - y, 1 - x));
      }
    }
    expectChiSquareFit('two moons: moon chosen', [upper.length, lower.length], [0.5, 0.5]);
    const edges = Array.from({ length: 11 }, (_, i) => (i === 10 ? Math.PI + 1e-9 : (i * Math.PI) / 10 - (i === 0 ? 1e-9 : 0)));
    expectChiSquareFit('two moons: θ on the upper moon', binCounts(upper, edges), new Array<number>(10).fill(0.1));
    expectChiSquareFit('two moons: θ on the lower moon', binCounts(lower, edges), new Array<number>(10).fill(0.1));
  });

  it('swiss roll (noise 0): t ~ U[1.5π, 4.5π]', () => {
    const v = swissRoll({ noise: 0 }).sample(gofN, { key: randomKey(74), dtype: 'float64' }).dataSync();
    const scale = 2 / (4.5 * Math.PI);
    const t = Array.from({ length: gofN }, (_, i) => Math.hypot(v[2 * i]!, v[2 * i + 1]!) / scale);
    const edges = Array.from({ length: 13 }, (_, i) => 1.5 * Math.PI + (i * 3 * Math.PI) / 12 + (i === 0 ? -1e-9 : i === 12 ? 1e-9 : 0));
    expectChiSquareFit('swiss roll: t', binCounts(t, edges), new Array<number>(12).fill(1 / 12));
  });

  it('two spirals (noise 0): each spiral with probability ½, P(θ ≤ a) = (a/3π)²', () => {
    const v = twoSpirals({ noise: 0 }).sample(gofN, { key: randomKey(75), dtype: 'float64' }).dataSync();
    const thetas: number[] = [];
    let positive = 0;
    for (let i = 0; i < gofN; i++) {
      // The point is ±(θ/(1.5π))·(−cos θ, sin θ): θ from the radius, the sign from the direction.
      const theta = Math.hypot(v[2 * i]!, v[2 * i + 1]!) * 1.5 * Math.PI;
      thetas.push(theta);
      const dot = -Math.cos(theta) * v[2 * i]! + Math.sin(theta) * v[2 * i + 1]!;
      if (dot > 0) positive++;
    }
    expectChiSquareFit('two spirals: spiral chosen', [positive, gofN - positive], [0.5, 0.5]);
    const top = 3 * Math.PI;
    const edges = Array.from({ length: 11 }, (_, i) => (i === 10 ? top + 1e-9 : (i * top) / 10));
    const probabilities = edges.slice(0, -1).map((e, i) => (Math.min(edges[i + 1]!, top) / top) ** 2 - (e / top) ** 2);
    expectChiSquareFit('two spirals: θ', binCounts(thetas, edges), probabilities);
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

  it('bad counts, noise levels and radii are reported', () => {
    expect(() => twoMoons().sample(-1, { key: randomKey(1) })).toThrow(/non-negative integer, got -1/);
    expect(() => rings({ noise: -1 })).toThrow(/noise must be a finite number >= 0/);
    // A number for the radii failed in the spread ('(opts.radii ?? …) is not iterable').
    expect(() => rings({ radii: 1.5 as never })).toThrow(/^rings: radii must be an array of positive numbers, got 1.5$/);
    expect(() => rings({ radii: [1, -1] })).toThrow(/^rings: radii must be positive numbers, got \[1,-1\]$/);
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

describe('rows are independent draws', () => {
  it('a mixture sample\'s component choices are independent of its noise', async () => {
    // One key for both the component choice and the noise made row 2j's component a function
    // of row j's noise (correlation 0.85 on eightGaussians). Independent rows: the sample
    // correlation is about N(0, 1/m); 4 standard errors.
    const n = 20000;
    const data = eightGaussians();
    const x = Array.from(await data.sample(n, { key: randomKey(5), dtype: 'float64' }).data());
    const comp: number[] = [];
    const noise2: number[] = [];
    for (let i = 0; i < n; i++) {
      const [a, b] = [x[2 * i]!, x[2 * i + 1]!];
      let best = 0;
      let bestD = Infinity;
      data.means.forEach((m, k) => {
        const d = (a - m[0]!) ** 2 + (b - m[1]!) ** 2;
        if (d < bestD) [best, bestD] = [k, d];
      });
      comp.push(best);
      noise2.push(bestD);
    }
    const corr = (p: number[], q: number[]) => {
      const m = p.length;
      const mp = p.reduce((s, v) => s + v, 0) / m;
      const mq = q.reduce((s, v) => s + v, 0) / m;
      let sp = 0;
      let sq = 0;
      let spq = 0;
      for (let i = 0; i < m; i++) {
        sp += (p[i]! - mp) ** 2;
        sq += (q[i]! - mq) ** 2;
        spq += (p[i]! - mp) * (q[i]! - mq);
      }
      return spq / Math.sqrt(sp * sq);
    };
    const half = n / 2;
    expect(Math.abs(corr(Array.from({ length: half }, (_, j) => comp[2 * j]!), noise2.slice(0, half)))).toBeLessThan(4 / Math.sqrt(half));
    expect(Math.abs(corr(comp, noise2))).toBeLessThan(4 / Math.sqrt(n));
  });
});
