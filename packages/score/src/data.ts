// Toy data for score matching: d-dimensional Gaussian mixtures with their exact log-density and
// score (also after Gaussian noising or diffusion by a forward SDE, which is what a perfectly
// trained noise-conditional or time-conditional model would output), and the usual 2-D sets
// (two moons, swiss roll, 8 Gaussians, checkerboard, rings, two spirals). Every sample is drawn
// with tensor ops from an explicit key, so it runs on any device and repeats exactly.

import {
  type RandomKey, Tensor, add, cast, checkKey, checkNumber, checkOneOf, checkOptions, checkTensor, composite, concat, cos, deviceFor, full, getDefaultDevice, greaterEqual, keep, log, logsumexp,
  matmul, mul, rand, randn, reshape, sin, softmax, splitKey, sqrt, sub, sum, tensor, tidy, type FloatDType,
} from '@scorch/tensor';
import { type ScoreFunction, optionNames } from './conventions.js';
import type { Sde } from './sde.js';

export interface SampleOptions {
  /** The key every random draw of this call derives from. */
  key: RandomKey;
  /** Default float32. */
  dtype?: FloatDType;
  /** Default: the current default device. */
  device?: string;
}

/** A distribution one can sample: `sample(n, opts)` returns [n, dim]. */
export interface ToyDataset {
  /** The dataset's name in the registry (e.g. 'eightGaussians'). */
  readonly name: string;
  /** Dimension d of a sample. */
  readonly dim: number;
  /** n samples, [n, dim], drawn with `opts.key` (the same key gives the same samples). */
  sample(n: number, opts: SampleOptions): Tensor;
}

const SAMPLE_OPTIONS = optionNames<SampleOptions>()(['key', 'dtype', 'device']);

/**
 * Checks a `sample(n, opts)` call before any draw: a count, and options of known names with a
 * key. Returns the dtype (default float32).
 */
function checkSampleCall(where: string, n: unknown, opts: unknown): FloatDType {
  if (!Number.isInteger(n) || (n as number) < 0) throw new RangeError(`${where}: sample count must be a non-negative integer, got ${n}`);
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object { key, dtype?, device? }, got ${opts === null ? 'null' : typeof opts}`);
  checkOptions(where, opts, SAMPLE_OPTIONS);
  const { key, dtype = 'float32' } = opts as SampleOptions;
  checkKey(key, `${where}: opts.key`);
  checkOneOf(where, 'dtype', dtype, ['float32', 'float64'] as const);
  // Under the data set's name: the first op to make a tensor named itself (tensor:, rand:).
  deviceFor(where, (opts as SampleOptions).device, dtype);
  return dtype;
}

/** Options of a data set's constructor: an object of known names, or undefined. */
function checkDatasetOptions(where: string, opts: unknown, known: readonly string[]): void {
  if (opts === null) throw new TypeError(`${where}: expected an options object, got null`);
  checkOptions(where, opts, known);
}

/** Independent keys for the separate draws of one sampling call (splitKey also validates `key`). */
function drawKeys(key: RandomKey, count: number): RandomKey[] {
  return splitKey(key, count);
}

// ------------------------------------------------------------------------------------------------
// Small dense linear algebra on the host (d × d parameters only; never per sample)

type Matrix = number[][];

/**
 * Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: A = U diag(λ) Uᵀ, with
 * the eigenvectors in U's columns. Parameters are tiny (d × d), so the simple method is enough.
 * `a` is d rows of d finite numbers, symmetric up to 1e-12 of its largest entry (as
 * GaussianMixture's covariances); anything else is refused, since the rotations would return
 * values for a matrix that was not given.
 */
export function symmetricEigen(a: readonly (readonly number[])[]): { values: number[]; vectors: Matrix } {
  const where = 'symmetricEigen';
  if (!Array.isArray(a) || !a.every((row) => Array.isArray(row))) throw new TypeError(`${where}: expected a square matrix as an array of rows, got ${JSON.stringify(a) ?? typeof a}`);
  const d = a.length;
  a.forEach((row, i) => {
    if (row.length !== d) throw new Error(`${where}: expected a square matrix; row ${i} has ${row.length} entries, not ${d}`);
    row.forEach((v, j) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: entry [${i}][${j}] must be a finite number, got ${v}`);
    });
  });
  const largest = Math.max(0, ...a.map((row) => Math.max(0, ...row.map(Math.abs))));
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      if (Math.abs(a[i]![j]! - a[j]![i]!) > 1e-12 * largest) throw new Error(`${where}: the matrix is not symmetric ([${i}][${j}] = ${a[i]![j]}, [${j}][${i}] = ${a[j]![i]})`);
    }
  }
  // Rotated at a power-of-two scale that brings the largest entry near 1, an exact scaling: the
  // sums of squares below would overflow from entries of ~1e154 (and the loop stop before its first
  // rotation, returning the diagonal) or underflow below ~1e-162. The eigenvalues are scaled back.
  const unit = largest > 0 ? 2 ** Math.floor(Math.log2(largest)) : 1;
  const m = a.map((row) => row.map((entry) => entry / unit));
  const v: Matrix = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));
  let scale = 0;
  for (const row of m) for (const entry of row) scale += entry * entry;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += m[p]![q]! ** 2;
    // Converged when the off-diagonal part is at rounding level relative to the whole matrix.
    if (off <= 1e-30 * scale) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = m[p]![q]!;
        if (Math.abs(apq) < 1e-300) continue;
        // Rotation angle that zeroes m[p][q] (Golub & Van Loan, §8.5.2).
        const theta = (m[q]![q]! - m[p]![p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const mkp = m[k]![p]!;
          const mkq = m[k]![q]!;
          m[k]![p] = c * mkp - s * mkq;
          m[k]![q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < d; k++) {
          const mpk = m[p]![k]!;
          const mqk = m[q]![k]!;
          m[p]![k] = c * mpk - s * mqk;
          m[q]![k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k]![p]!;
          const vkq = v[k]![q]!;
          v[k]![p] = c * vkp - s * vkq;
          v[k]![q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: m.map((row, i) => row[i]! * unit), vectors: v };
}

// ------------------------------------------------------------------------------------------------
// Gaussian mixtures

export interface GaussianMixtureSpec {
  /** Component means, K rows of length d. */
  means: readonly (readonly number[])[];
  /** Mixing weights (normalised here); default uniform. */
  weights?: readonly number[];
  /**
   * Per component: a d × d symmetric positive-definite covariance, or a number v meaning v·I.
   * Default: the identity for every component. One whose smallest eigenvalue is at rounding level
   * (at most d·10⁻¹⁴ times its Frobenius norm: singular, to working precision) is refused.
   */
  covariances?: ReadonlyArray<number | readonly (readonly number[])[]>;
  /** Name reported by `name`; default 'gaussianMixture'. */
  name?: string;
}
const MIXTURE_SPEC = optionNames<GaussianMixtureSpec>()(['means', 'weights', 'covariances', 'name']);

/** Tensors of the mixture's parameters for one dtype and device, built once and kept. */
interface MixtureTensors {
  /** Eigenvectors per component, [K, d, d] (columns), and their transposes. */
  vectors: Tensor;
  vectorsT: Tensor;
  /** Eigenvalues per component, [K, 1, d]. */
  eigenvalues: Tensor;
  /** Means, [K, 1, d] and [K, d]. */
  means3: Tensor;
  means: Tensor;
  /** log wₖ − (d/2) log 2π, [K, 1]. */
  logNormalisers: Tensor;
  /** Row-vector sampling maps A_k = diag(√λ_k) U_kᵀ side by side, [d, K·d]: x = μ_k + z A_k. */
  samplingMaps: Tensor;
  /** Cumulative-weight bin edges for choosing a component from a uniform draw, [K] each. */
  lowerEdges: Tensor;
  upperEdges: Tensor;
}

/** One value of m (the mean scale) and s (the added noise std) per row, or shared numbers. */
type Coefficient = Tensor | number;

/**
 * p(x) = Σₖ wₖ N(x; μₖ, Σₖ) in d dimensions, with its exact log-density and score.
 *
 * The score is ∇log p(x) = Σₖ rₖ(x) (−Σₖ⁻¹(x − μₖ)) with responsibilities rₖ = softmaxₖ(log wₖ +
 * log N(x; μₖ, Σₖ)), evaluated in log space (logsumexp/softmax) so that points far from every
 * component do not underflow. Covariances are used through their eigen-decompositions, computed
 * once on the host, so the noised/diffused versions (covariance m²Σₖ + s²I) need no inversions
 * per call.
 */
export class GaussianMixture implements ToyDataset {
  readonly name: string;
  readonly dim: number;
  /** Normalised mixing weights. */
  readonly weights: readonly number[];
  readonly means: readonly (readonly number[])[];
  readonly covariances: readonly (readonly (readonly number[])[])[];
  private readonly eigen: { values: number[]; vectors: Matrix }[];
  private readonly cache = new Map<string, MixtureTensors>();

  constructor(spec: GaussianMixtureSpec) {
    if (spec === null || typeof spec !== 'object') throw new TypeError(`GaussianMixture: expected a spec { means, weights?, covariances?, name? }`);
    checkOptions('GaussianMixture', spec, MIXTURE_SPEC);
    if (!Array.isArray(spec.means)) throw new TypeError(`GaussianMixture: means must be an array of component means (K rows of length d), got ${JSON.stringify(spec.means)}`);
    if (spec.name !== undefined && typeof spec.name !== 'string') throw new TypeError(`GaussianMixture: name must be a string, got ${JSON.stringify(spec.name)}`);
    this.name = spec.name ?? 'gaussianMixture';
    const K = spec.means.length;
    if (K === 0) throw new Error('GaussianMixture: expected at least one component mean, got none');
    // Each container is checked to be an array before its length or entries are read: a flat
    // mean [1, 2] or weights given as a number otherwise failed inside the checks themselves.
    spec.means.forEach((m, k) => {
      if (!Array.isArray(m)) throw new TypeError(`GaussianMixture: mean ${k} must be an array of coordinates (means are K rows of length d), got ${JSON.stringify(m)}`);
    });
    for (const field of ['weights', 'covariances'] as const) {
      const value = spec[field];
      if (value !== undefined && !Array.isArray(value)) throw new TypeError(`GaussianMixture: ${field} must be an array with one entry per component, got ${JSON.stringify(value)}`);
    }
    const d = spec.means[0]!.length;
    if (d === 0) throw new Error('GaussianMixture: means must have at least one coordinate');
    spec.means.forEach((m, k) => {
      if (m.length !== d) throw new Error(`GaussianMixture: mean ${k} has ${m.length} coordinates, expected ${d} (as mean 0)`);
      if (!m.every(Number.isFinite)) throw new Error(`GaussianMixture: mean ${k} has a non-finite coordinate: ${JSON.stringify(m)}`);
    });
    const rawWeights = spec.weights ?? new Array<number>(K).fill(1);
    if (rawWeights.length !== K) throw new Error(`GaussianMixture: ${rawWeights.length} weights for ${K} components`);
    if (!rawWeights.every((w) => Number.isFinite(w) && w > 0)) {
      throw new Error(`GaussianMixture: weights must be finite and positive, got ${JSON.stringify(rawWeights)}`);
    }
    const total = rawWeights.reduce((a, b) => a + b, 0);
    this.weights = rawWeights.map((w) => w / total);
    const rawCov = spec.covariances ?? new Array<number>(K).fill(1);
    if (rawCov.length !== K) throw new Error(`GaussianMixture: ${rawCov.length} covariances for ${K} components`);
    this.covariances = rawCov.map((c, k) => {
      if (typeof c === 'number') {
        if (!(c > 0 && Number.isFinite(c))) throw new Error(`GaussianMixture: covariance ${k} is the number ${c}; an isotropic variance must be positive`);
        return Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? c : 0)));
      }
      if (!Array.isArray(c) || !c.every((row) => Array.isArray(row))) {
        throw new TypeError(`GaussianMixture: covariance ${k} must be a number or a ${d}×${d} array of rows, got ${JSON.stringify(c)}`);
      }
      if (c.length !== d || !c.every((row) => row.length === d)) {
        throw new Error(`GaussianMixture: covariance ${k} must be ${d}×${d}, got ${c.length}×${c[0]?.length ?? 0}`);
      }
      // Before the symmetry test, where NaN compares as symmetric and ∞ − ∞ is NaN: an infinite
      // variance made a mixture whose log density was −∞ everywhere and whose score was 0.
      c.forEach((row, i) => row.forEach((v, j) => {
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`GaussianMixture: covariance ${k} has a non-finite entry: [${i}][${j}] = ${v}`);
      }));
      // Symmetric up to rounding relative to the matrix's own scale (its largest entry): a
      // covariance formed in floating point is off by a few u·max|Σᵢⱼ| (|Σᵢⱼ|² ≤ ΣᵢᵢΣⱼⱼ), whatever
      // the units, so neither an absolute floor nor the entry's own size is the measure.
      const largest = Math.max(...c.map((row) => Math.max(...row.map(Math.abs))));
      for (let i = 0; i < d; i++) {
        for (let j = 0; j < d; j++) {
          const a = c[i]![j]!;
          const b = c[j]![i]!;
          if (Math.abs(a - b) > 1e-12 * largest) {
            throw new Error(`GaussianMixture: covariance ${k} is not symmetric ([${i}][${j}] = ${a}, [${j}][${i}] = ${b})`);
          }
        }
      }
      return c.map((row) => [...row]);
    });
    this.means = spec.means.map((m) => [...m]);
    this.dim = d;
    this.eigen = this.covariances.map((c, k) => {
      const e = symmetricEigen(c);
      const smallest = Math.min(...e.values);
      if (!(smallest > 0)) throw new Error(`GaussianMixture: covariance ${k} is not positive definite (smallest eigenvalue ${smallest})`);
      // A singular covariance (rank-deficient, such as v·vᵀ) comes out of symmetricEigen with a
      // smallest eigenvalue at rounding level, of either sign: the eigenvalues it returns are
      // exact for a matrix within √2·10⁻¹⁵‖Σ‖_F (its stopping rule) plus the rotations' rounding,
      // a few u·‖Σ‖_F per sweep, of Σ. Below d·10⁻¹⁴‖Σ‖_F, above both bounds, an eigenvalue cannot
      // be told from 0, and taken as positive it would make the density and score ~1/(it) ≈ 10¹⁶.
      // By hypot, entry by entry: plain squares of entries of ~1e154 overflow, and Math.hypot(...all)
      // passes d² arguments, past the engine's limit from d ≈ 400 (a stack overflow).
      const norm = c.reduce((acc, row) => row.reduce((a, v) => Math.hypot(a, v), acc), 0);
      const roundingLevel = d * 1e-14 * norm;
      if (smallest <= roundingLevel) {
        throw new Error(
          `GaussianMixture: covariance ${k} is not positive definite: it is singular to rounding (smallest eigenvalue ${smallest}, ` +
            `not above the rounding level d·1e-14·‖Σ‖_F = ${roundingLevel} of a matrix of Frobenius norm ${norm})`,
        );
      }
      return e;
    });
  }

  /** Number of components K. */
  get components(): number {
    return this.means.length;
  }

  /** E[x] = Σₖ wₖ μₖ. */
  mean(): number[] {
    const out = new Array<number>(this.dim).fill(0);
    this.means.forEach((m, k) => m.forEach((v, i) => (out[i]! += this.weights[k]! * v)));
    return out;
  }

  /** Cov[x] = Σₖ wₖ (Σₖ + μₖμₖᵀ) − μμᵀ (law of total covariance). */
  covariance(): number[][] {
    const mu = this.mean();
    return Array.from({ length: this.dim }, (_, i) =>
      Array.from({ length: this.dim }, (_, j) => {
        let s = 0;
        for (let k = 0; k < this.components; k++) {
          const mk = this.means[k]!;
          s += this.weights[k]! * (this.covariances[k]![i]![j]! + mk[i]! * mk[j]!);
        }
        return s - mu[i]! * mu[j]!;
      }),
    );
  }

  /**
   * The law of m·X + s·Z for X from this mixture and Z ~ N(0, I) independent: the mixture with
   * means m·μₖ and covariances m²Σₖ + s²I. With m = 1 it is the data noised at level s (NCSN);
   * with m = m(t), s = s(t) of a forward SDE it is the time-t marginal.
   */
  perturbed(scale: number, noiseStd: number): GaussianMixture {
    if (!Number.isFinite(scale) || !(Number.isFinite(noiseStd) && noiseStd >= 0)) throw new RangeError(`perturbed: need a finite scale and a finite noiseStd >= 0, got ${scale}, ${noiseStd}`);
    return new GaussianMixture({
      name: `${this.name}(perturbed)`,
      weights: this.weights,
      means: this.means.map((m) => m.map((v) => v * scale)),
      covariances: this.covariances.map((c) => c.map((row, i) => row.map((v, j) => v * scale * scale + (i === j ? noiseStd * noiseStd : 0)))),
    });
  }

  /** The marginal at time t ∈ [0, sde.T] of the forward SDE started from this mixture (t a number). */
  diffused(sde: Sde, t: number): GaussianMixture {
    // The SDE is defined on [0, T]: outside it the kernel formulas extrapolate silently (VE at
    // t = −1 gives s = 2e-6) or give NaN (VP's s² = 1 − m² < 0 for t < 0).
    if (t === undefined) throw new TypeError(`diffused: t must be a finite number >= 0 and <= ${sde.T}, got undefined`);
    checkNumber('diffused', 't', t, { min: 0, max: sde.T });
    // Two host numbers, computed through the SDE's own (tensor) formulas on the CPU.
    const [m, s] = tidy(() => {
      const tt = full([1], t, { dtype: 'float64', device: 'cpu' });
      return [sde.meanCoefficient(tt).dataSync()[0]!, sde.std(tt).dataSync()[0]!];
    });
    return this.perturbed(m!, s!);
  }

  /** x ~ p: a component k with probability wₖ, then μₖ + Σₖ^{1/2} z. Returns [n, d]. */
  sample(n: number, opts: SampleOptions): Tensor {
    const dtype = checkSampleCall('GaussianMixture.sample', n, opts);
    const device = opts.device;
    const p = this.tensors(dtype, device ?? getDefaultDevice());
    const [componentKey, noiseKey] = drawKeys(opts.key, 2);
    const K = this.components;
    const d = this.dim;
    return tidy(() => {
      const u = reshape(rand([n], { key: componentKey!, dtype, device }), [n, 1]);
      // One-hot of the chosen component: u falls in [c_{k−1}, c_k) of the cumulative weights.
      const oneHot = sub(cast(greaterEqual(u, p.lowerEdges), dtype), cast(greaterEqual(u, p.upperEdges), dtype)); // [n, K]
      const z = randn([n, d], { key: noiseKey!, dtype, device });
      const allComponents = reshape(matmul(z, p.samplingMaps), [n, K, d]); // z A_k for every k
      const chosen = sum(mul(allComponents, reshape(oneHot, [n, K, 1])), 1);
      return add(chosen, matmul(oneHot, p.means));
    });
  }

  /** log p(x) for x [N, d]; returns [N]. */
  logProb(x: Tensor): Tensor {
    return this.perturbedLogProb(x, 1, 0);
  }

  /** ∇ₓ log p(x) for x [N, d]; returns [N, d]. */
  score(x: Tensor): Tensor {
    return this.perturbedScore(x, 1, 0);
  }

  /**
   * Score of the law of m·X + s·Z (see `perturbed`) at x, with m and s numbers or per-row [N]
   * tensors: Σₖ rₖ (−(m²Σₖ + s²I)⁻¹(x − mμₖ)), responsibilities from the same log densities.
   * As numbers, s must be >= 0 and m and s not both 0 (a point mass).
   */
  perturbedScore(x: Tensor, scale: Coefficient, noiseStd: Coefficient): Tensor {
    return composite(() => {
      const parts = this.residuals(x, scale, noiseStd);
      const N = x.shape[0]!;
      const d = this.dim;
      const K = this.components;
      const componentScores = matmul(parts.whitened, parts.tensors.vectorsT); // U_k diag(1/v) U_kᵀ (x − mμ_k), [K, N, d]
      if (K === 1) return reshape(componentScores, [N, d]).neg();
      const responsibilities = reshape(softmax(this.logJoint(parts), 0), [K, N, 1]);
      return sum(mul(responsibilities, componentScores), 0).neg();
    });
  }

  /** log density of the law of m·X + s·Z (see `perturbed`) at x; returns [N]. */
  perturbedLogProb(x: Tensor, scale: Coefficient, noiseStd: Coefficient): Tensor {
    return composite(() => {
      const logJoint = this.logJoint(this.residuals(x, scale, noiseStd));
      return this.components === 1 ? reshape(logJoint, [x.shape[0]!]) : logsumexp(logJoint, 0);
    });
  }

  /** Score of the data noised at level σ (p ∗ N(0, σ²I)); σ a number or per-row [N] tensor. */
  noisyScore(x: Tensor, sigma: Coefficient): Tensor {
    return this.perturbedScore(x, 1, sigma);
  }

  /**
   * The exact noise-conditional score s(x, σ) = ∇log (p ∗ N(0, σ²I))(x), the target of NCSN/DSM
   * training; `cond` is σ, shape [N].
   */
  noiseConditionalScore(): ScoreFunction {
    return (x, sigma) => {
      if (!sigma) throw new Error('noiseConditionalScore: the score needs σ as its second argument (shape [N])');
      checkTensor('noiseConditionalScore', x, 'x');
      checkPerRow('noiseConditionalScore', 'σ', x, sigma);
      return this.noisyScore(x, sigma);
    };
  }

  /**
   * The exact time-conditional score of the SDE's marginal p_t: the mixture with means m(t)μₖ and
   * covariances m(t)²Σₖ + s(t)²I (m, s from `sde.meanCoefficient`/`sde.std`); `cond` is t, [N].
   */
  diffusedScore(sde: Sde): ScoreFunction {
    return (x, t) => {
      if (!t) throw new Error('diffusedScore: the score needs t as its second argument (shape [N])');
      checkTensor('diffusedScore', x, 'x');
      // Checked here, where it is t: past the SDE's formulas a wrong t is reported as 'the mean scale'.
      checkPerRow('diffusedScore', 't', x, t);
      return composite(() => this.perturbedScore(x, sde.meanCoefficient(t), sde.std(t)));
    };
  }

  /** Frees the parameter tensors cached per dtype and device. */
  dispose(): void {
    for (const p of this.cache.values()) for (const t of Object.values(p)) (t as Tensor).dispose();
    this.cache.clear();
  }

  /**
   * Per component, the residual x − mμₖ in its eigenbasis (`rotated`, [K, N, d]), the variances
   * v = m²λ + s² along those directions ([K, 1 or N, d]) and rotated/v (`whitened`). Numbers equal
   * to 1 or 0 skip their operations: on the CPU every pass over the batch counts.
   */
  private residuals(x: Tensor, scale: Coefficient, noiseStd: Coefficient) {
    // A nested array (score([[0, 0]])) failed as "cannot read properties of undefined (reading 'join')".
    checkTensor('GaussianMixture', x, 'x');
    if (x.rank !== 2 || x.shape[1] !== this.dim) {
      throw new Error(`GaussianMixture: expected x of shape [N, ${this.dim}], got [${x.shape.join(',')}]`);
    }
    if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new TypeError(`GaussianMixture: x must be float32 or float64, got ${x.dtype}`);
    const p = this.tensors(x.dtype, x.device);
    const N = x.shape[0]!;
    const d = this.dim;
    const perRow = (c: Coefficient, what: string): Coefficient => {
      if (typeof c === 'number') {
        if (!Number.isFinite(c)) throw new RangeError(`GaussianMixture: ${what} must be finite, got ${c}`);
        return c;
      }
      checkPerRow('GaussianMixture', what, x, c, 'a number or ');
      return reshape(c, [1, N, 1]);
    };
    const m = perRow(scale, 'the mean scale');
    const s = perRow(noiseStd, 'the noise std');
    // Number coefficients are checked as perturbed() checks them (per-row tensors are not read
    // back): s is a standard deviation, and m = s = 0 is a point mass at 0, which has no density.
    if (typeof s === 'number' && s < 0) throw new RangeError(`GaussianMixture: the noise std must be >= 0, got ${s}`);
    if (m === 0 && s === 0) throw new RangeError('GaussianMixture: the mean scale and the noise std are both 0: the law of 0·X + 0·Z is a point mass, with no density or score');
    const scaledMeans = m === 1 ? p.means3 : mul(p.means3, m);
    const rotated = matmul(sub(reshape(x, [1, N, d]), scaledMeans), p.vectors); // [K, N, d]
    const m2 = typeof m === 'number' ? m * m : mul(m, m);
    const s2 = typeof s === 'number' ? s * s : mul(s, s);
    const scaledEigen = m2 === 1 ? p.eigenvalues : mul(p.eigenvalues, m2);
    const variances = s2 === 0 ? scaledEigen : add(scaledEigen, s2);
    return { rotated, variances, whitened: rotated.div(variances), tensors: p };
  }

  /** log wₖ + log N(x; mμₖ, m²Σₖ + s²I) per component, [K, N]. */
  private logJoint(parts: ReturnType<GaussianMixture['residuals']>): Tensor {
    const quadratic = sum(mul(parts.whitened, parts.rotated), 2); // [K, N]
    const logDet = sum(log(parts.variances), 2); // [K, 1 or N]
    return sub(parts.tensors.logNormalisers, add(quadratic, logDet).mul(0.5));
  }

  private tensors(dtype: FloatDType, device: string): MixtureTensors {
    const id = `${dtype}|${device}`;
    const hit = this.cache.get(id);
    if (hit) return hit;
    const K = this.components;
    const d = this.dim;
    const opts = { dtype, device };
    const flat = (rows: number[][]) => rows.flat();
    const vectors = this.eigen.map((e) => e.vectors);
    const cumulative: number[] = [];
    let acc = 0;
    for (const w of this.weights) cumulative.push((acc += w));
    const samplingColumns: number[][] = Array.from({ length: d }, () => []);
    this.eigen.forEach(({ values, vectors: u }) => {
      // A = diag(√λ) Uᵀ: row i of A is √λ_i times eigenvector i.
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) samplingColumns[i]!.push(Math.sqrt(values[i]!) * u[j]![i]!);
    });
    // Kept: these are built lazily, possibly inside a caller's tidy(), and must outlive it.
    const made: MixtureTensors = {
      vectors: keep(tensor(vectors.flatMap(flat), { ...opts, shape: [K, d, d] })),
      vectorsT: keep(tensor(vectors.flatMap((u) => flat(u[0]!.map((_, j) => u.map((row) => row[j]!)))), { ...opts, shape: [K, d, d] })),
      eigenvalues: keep(tensor(this.eigen.flatMap((e) => e.values), { ...opts, shape: [K, 1, d] })),
      means3: keep(tensor(this.means.flat(), { ...opts, shape: [K, 1, d] })),
      means: keep(tensor(this.means.flat(), { ...opts, shape: [K, d] })),
      logNormalisers: keep(tensor(this.weights.map((w) => Math.log(w) - 0.5 * d * Math.log(2 * Math.PI)), { ...opts, shape: [K, 1] })),
      samplingMaps: keep(tensor(samplingColumns.flat(), { ...opts, shape: [d, K * d] })),
      lowerEdges: keep(tensor([0, ...cumulative.slice(0, -1)], { ...opts, shape: [K] })),
      // The last edge is +∞ so rounding in the cumulative sum can never leave u unassigned.
      upperEdges: keep(tensor([...cumulative.slice(0, -1), Infinity], { ...opts, shape: [K] })),
    };
    this.cache.set(id, made);
    return made;
  }
}

/**
 * A per-row coefficient `c` (σ, t, a mean scale) for a batch x [N, d]: shape [N], in x's dtype
 * and on x's device, else an error naming `what` (mixed dtypes otherwise failed deep inside as
 * 'mul: dtype mismatch', naming neither the function nor the argument).
 */
function checkPerRow(where: string, what: string, x: Tensor, c: Tensor, alternative = ''): void {
  const N = x.shape[0]!;
  if (c.rank !== 1 || c.shape[0] !== N) throw new Error(`${where}: ${what} must be ${alternative}a [${N}] tensor (one value per row of x), got [${c.shape.join(',')}]`);
  if (c.dtype !== x.dtype || c.device !== x.device) {
    throw new TypeError(`${where}: ${what} must be in x's dtype and on its device (${x.dtype} on '${x.device}'), got ${c.dtype} on '${c.device}'`);
  }
}

/** Shorthand for `new GaussianMixture(spec)`. */
export function gaussianMixture(spec: GaussianMixtureSpec): GaussianMixture {
  return new GaussianMixture(spec);
}

// ------------------------------------------------------------------------------------------------
// 2-D toy sets

function twoColumns(a: Tensor, b: Tensor): Tensor {
  const n = a.shape[0]!;
  return concat([reshape(a, [n, 1]), reshape(b, [n, 1])], 1);
}

function withNoise(x: Tensor, noise: number, key: RandomKey): Tensor {
  if (noise === 0) return x;
  return add(x, randn(x.shape, { key, dtype: x.dtype as FloatDType, device: x.device }).mul(noise));
}

function checkNoise(where: string, noise: number): void {
  checkNumber(where, 'noise', noise, { min: 0 });
}

export interface NoiseOption {
  /** Standard deviation of the isotropic Gaussian noise added to each point. */
  noise?: number;
}
const NOISE_OPTIONS = optionNames<NoiseOption>()(['noise']);

/**
 * Two interleaved half-circles (scikit-learn's make_moons): the upper moon (cos θ, sin θ) and the
 * lower (1 − cos θ, ½ − sin θ), θ ~ U[0, π], each with probability ½; then centred and doubled,
 * 2·(x − (½, ¼)), so the exact mean is 0 and the points lie in about [−3, 3] × [−1.5, 1.5].
 * Noise: default 0.1, the std added after the ×2 (in these coordinates), so `noise: s` is
 * make_moons(noise = s/2): the default is make_moons(noise=0.05), half the relative noise of
 * FFJORD's moons (make_moons(noise=0.1)·2, i.e. 0.2 here; pass noise: 0.2 for that).
 */
export function twoMoons(opts: NoiseOption = {}): ToyDataset {
  checkDatasetOptions('twoMoons', opts, NOISE_OPTIONS);
  const noise = opts.noise ?? 0.1;
  checkNoise('twoMoons', noise);
  return {
    name: 'twoMoons',
    dim: 2,
    sample: (n, opts) => {
      const dtype = checkSampleCall('twoMoons.sample', n, opts);
      const { key, device } = opts;
      return tidy(() => {
        const [labelKey, angleKey, noiseKey] = drawKeys(key, 3);
        const upper = cast(greaterEqual(rand([n], { key: labelKey!, dtype, device }), 0.5), dtype); // 1 or 0
        const theta = rand([n], { key: angleKey!, dtype, device }).mul(Math.PI);
        const c = cos(theta);
        const s = sin(theta);
        const lower = sub(1, upper);
        const x = add(mul(upper, c), mul(lower, sub(1, c)));
        const y = add(mul(upper, s), mul(lower, sub(0.5, s)));
        return withNoise(twoColumns(sub(x, 0.5).mul(2), sub(y, 0.25).mul(2)), noise, noiseKey!);
      });
    },
  };
}

/**
 * The 2-D swiss roll (scikit-learn's make_swiss_roll, coordinates x and z): t = 1.5π(1 + 2u),
 * u ~ U[0, 1], point t·(cos t, sin t), scaled by 2/(4.5π) so the outer end has radius 2.
 * Noise: default 0.1 (FFJORD's noise 1.0 on the unscaled roll is 0.14 at this scale).
 */
export function swissRoll(opts: NoiseOption = {}): ToyDataset {
  checkDatasetOptions('swissRoll', opts, NOISE_OPTIONS);
  const noise = opts.noise ?? 0.1;
  checkNoise('swissRoll', noise);
  const scale = 2 / (4.5 * Math.PI);
  return {
    name: 'swissRoll',
    dim: 2,
    sample: (n, opts) => {
      const dtype = checkSampleCall('swissRoll.sample', n, opts);
      const { key, device } = opts;
      return tidy(() => {
        const [angleKey, noiseKey] = drawKeys(key, 2);
        const t = rand([n], { key: angleKey!, dtype, device }).mul(2).add(1).mul(1.5 * Math.PI);
        const r = t.mul(scale);
        return withNoise(twoColumns(mul(r, cos(t)), mul(r, sin(t))), noise, noiseKey!);
      });
    },
  };
}

export interface EightGaussiansOptions {
  /** Radius of the circle of means; default 2. */
  radius?: number;
  /** Standard deviation of each component; default 0.25 (FFJORD's 0.5 at radius 4, same ratio). */
  std?: number;
}
const EIGHT_GAUSSIANS_OPTIONS = optionNames<EightGaussiansOptions>()(['radius', 'std']);

/**
 * Eight equally weighted isotropic Gaussians with means on a circle at angles kπ/4 (FFJORD's
 * "8gaussians", rescaled). A GaussianMixture, so its exact score and density are available.
 */
export function eightGaussians(opts: EightGaussiansOptions = {}): GaussianMixture {
  checkDatasetOptions('eightGaussians', opts, EIGHT_GAUSSIANS_OPTIONS);
  const radius = opts.radius ?? 2;
  const std = opts.std ?? 0.25;
  checkNumber('eightGaussians', 'radius', radius, { min: 0, exclusiveMin: true });
  checkNumber('eightGaussians', 'std', std, { min: 0, exclusiveMin: true });
  return new GaussianMixture({
    name: 'eightGaussians',
    means: Array.from({ length: 8 }, (_, k) => [radius * Math.cos((k * Math.PI) / 4), radius * Math.sin((k * Math.PI) / 4)]),
    covariances: new Array<number>(8).fill(std * std),
  });
}

/**
 * A 4 × 4 checkerboard on [−2, 2]²: uniform on the 8 unit squares [i, i+1) × [j, j+1) with i + j
 * even (i, j ∈ {−2, …, 1}), FFJORD's "checkerboard" at half its scale. Both marginals are
 * U[−2, 2]; Cov(x, y) = ¼ (the occupied squares lie along the diagonal).
 */
export function checkerboard(opts: Record<string, never> = {}): ToyDataset {
  // It has no options; one passed all the same (a noise level, say) is refused, not ignored.
  checkDatasetOptions('checkerboard', opts, []);
  return {
    name: 'checkerboard',
    dim: 2,
    sample: (n, opts) => {
      const dtype = checkSampleCall('checkerboard.sample', n, opts);
      const { key, device } = opts;
      return tidy(() => {
        const [xKey, rowKey, yKey] = drawKeys(key, 3);
        const x = rand([n], { key: xKey!, dtype, device }).mul(4).sub(2);
        // Parity of ⌊x⌋ (1 on the columns [−1, 0) and [1, 2)) from threshold indicators: no floor op needed.
        const above = (at: number) => cast(greaterEqual(x, at), dtype);
        const oddColumn = add(sub(above(-1), above(0)), above(1));
        // An even row, [−2, −1) or [0, 1) with probability ½ each, moved up one row in odd columns.
        const evenRowStart = cast(greaterEqual(rand([n], { key: rowKey!, dtype, device }), 0.5), dtype).mul(2).sub(2);
        const y = add(add(rand([n], { key: yKey!, dtype, device }), evenRowStart), oddColumn);
        return twoColumns(x, y);
      });
    },
  };
}

export interface RingsOptions extends NoiseOption {
  /** Ring radii; default [0.5, 1, 1.5, 2] (FFJORD's "rings" at 2/3 of its scale). */
  radii?: readonly number[];
}
const RINGS_OPTIONS = optionNames<RingsOptions>()(['noise', 'radii']);

/**
 * Concentric circles, each chosen with equal probability, angle uniform, plus isotropic Gaussian
 * noise (default 0.05; FFJORD's 0.08 for ring spacing 0.75 would be 0.053 at this spacing of 0.5).
 */
export function rings(opts: RingsOptions = {}): ToyDataset {
  checkDatasetOptions('rings', opts, RINGS_OPTIONS);
  if (opts.radii !== undefined && !Array.isArray(opts.radii)) throw new TypeError(`rings: radii must be an array of positive numbers, got ${JSON.stringify(opts.radii)}`);
  const radii = [...(opts.radii ?? [0.5, 1, 1.5, 2])];
  const noise = opts.noise ?? 0.05;
  checkNoise('rings', noise);
  if (radii.length === 0 || !radii.every((r) => r > 0 && Number.isFinite(r))) throw new RangeError(`rings: radii must be positive numbers, got ${JSON.stringify(radii)}`);
  const count = radii.length;
  return {
    name: 'rings',
    dim: 2,
    sample: (n, opts) => {
      const dtype = checkSampleCall('rings.sample', n, opts);
      const { key, device } = opts;
      return tidy(() => {
        const [ringKey, angleKey, noiseKey] = drawKeys(key, 3);
        // Ring i when u ∈ [i/R, (i+1)/R): a one-hot row from two threshold tests, then a matmul picks its radius.
        const u = reshape(rand([n], { key: ringKey!, dtype, device }), [n, 1]);
        const lower = tensor(radii.map((_, i) => i / count), { dtype, device });
        const upper = tensor(radii.map((_, i) => (i === count - 1 ? Infinity : (i + 1) / count)), { dtype, device });
        const oneHot = sub(cast(greaterEqual(u, lower), dtype), cast(greaterEqual(u, upper), dtype));
        const r = reshape(matmul(oneHot, tensor(radii, { dtype, device, shape: [count, 1] })), [n]);
        const theta = rand([n], { key: angleKey!, dtype, device }).mul(2 * Math.PI);
        return withNoise(twoColumns(mul(r, cos(theta)), mul(r, sin(theta))), noise, noiseKey!);
      });
    },
  };
}

/**
 * Two interleaved spirals (FFJORD's "2spirals", rescaled): θ = 3π√u, u ~ U[0, 1] (roughly uniform
 * density along the arc), point (−θ cos θ, θ sin θ)/(1.5π) (outer radius 2), negated for the
 * second spiral with probability ½; plus isotropic Gaussian noise, default 0.1 in these coordinates
 * (FFJORD adds 0.1 at its scale 1/3, which is 0.064 here, plus a uniform jitter U[0, ½]/3 per
 * coordinate that is left out, so the density is a clean noised curve; with both, FFJORD's rms
 * distance to the curve is 0.09 here against 0.10). Exact mean 0 by symmetry.
 */
export function twoSpirals(opts: NoiseOption = {}): ToyDataset {
  checkDatasetOptions('twoSpirals', opts, NOISE_OPTIONS);
  const noise = opts.noise ?? 0.1;
  checkNoise('twoSpirals', noise);
  return {
    name: 'twoSpirals',
    dim: 2,
    sample: (n, opts) => {
      const dtype = checkSampleCall('twoSpirals.sample', n, opts);
      const { key, device } = opts;
      return tidy(() => {
        const [angleKey, signKey, noiseKey] = drawKeys(key, 3);
        const theta = sqrt(rand([n], { key: angleKey!, dtype, device })).mul(3 * Math.PI);
        const sign = cast(greaterEqual(rand([n], { key: signKey!, dtype, device }), 0.5), dtype).mul(2).sub(1); // ±1
        const r = mul(theta, sign).mul(1 / (1.5 * Math.PI));
        return withNoise(twoColumns(mul(r, cos(theta)).neg(), mul(r, sin(theta))), noise, noiseKey!);
      });
    },
  };
}
