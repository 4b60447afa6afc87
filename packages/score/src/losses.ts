// Score-matching objectives. Each is `lossName(score, x, opts) → Tensor`: a scalar, the mean over
// the batch x [N, d] (or, with `reduction: 'none'`, the [N] per-example values that mean would
// average — useful for Monte-Carlo standard errors). Losses that draw noise, projections or
// noise levels take an explicit `opts.key`; the same key gives the same loss.
//
// All objectives use the ½ convention, so that ESM = ISM + ½E‖∇log p‖² (the constant does not
// depend on the model) and DSM → ESM as σ → 0:
//   ESM    = ½E‖s(x) − ∇log p(x)‖²
//   ISM    = E[½‖s(x)‖² + tr ∂s/∂x]
//   SSM    = E[vᵀ(∂s/∂x)v + ½(vᵀs)²]          (E[vvᵀ] = I, so E_v of it is ISM)
//   SSM-VR = E[vᵀ(∂s/∂x)v + ½‖s‖²]
//   DSM    = ½E‖s(x̃) + (x̃ − x)/σ²‖²,  x̃ = x + σz
// The noise-conditional losses (NCSN, SDE) are weighted mixtures of DSM over noise levels.
//
// Derivatives in x (the Jacobian trace, the projections vᵀ(∂s/∂x)v) use forward mode (`jvp`),
// so differentiating a loss in θ is reverse-over-forward; an energy model's score (−∇E, a
// `grad` inside the model) makes ∂s/∂x its Hessian (forward-over-reverse) with no extra code.

import { jvp, vmap } from '@scorch/autograd';
import {
  composite,
  type RandomKey, Tensor, add, broadcastTo, cast, checkKey, checkNumber, checkOneOf, checkOptions, concat, eye, fmtShape,
  greater, indexSelect, minimum, mul, pow, rademacher, rand, randn, reshape, splitKey, sqrt, sub, sum, tensor, where as select, type FloatDType,
  showValue, checkNumberList,
} from '@scorch/tensor';
import { type EnergyFunction, type ScoreFunction, checkBatch, checkBoolean, checkCond, checkScoreFunction, evalScore, optionNames } from './conventions.js';
import { energyScore } from './models.js';
import { type Sde, SDE_EPSILON, perRow } from './sde.js';
// The σ grid is shared with annealed Langevin sampling, so training and sampling use one grid.
import { geometricSigmas } from './samplers.js';

export type Reduction = 'mean' | 'none';
const REDUCTIONS: readonly Reduction[] = ['mean', 'none'];

export interface LossOptions {
  /** Noise level passed to the score as its second argument (σ or t, shape [N], in x's dtype). */
  cond?: Tensor;
  /** 'mean' (default): the batch mean, a scalar. 'none': the [N] per-example values. */
  reduction?: Reduction;
}

// ------------------------------------------------------------------------------------------------
// Shared checks


function reduce(where: string, perExample: Tensor, reduction: unknown): Tensor {
  const r = reduction ?? 'mean';
  checkOneOf(where, 'reduction', r, REDUCTIONS);
  return r === 'mean' ? perExample.mean() : perExample;
}

/**
 * Options must be an object (even where every option is optional: `undefined` means none) whose
 * keys are all `known`; a `reduction` is validated here, before any work is done.
 */
function checkLossOptions(where: string, opts: unknown, known: readonly string[]): void {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object, got ${opts === null ? 'null' : typeof opts}`);
  checkOptions(where, opts, known);
  const reduction = (opts as { reduction?: unknown }).reduction;
  if (reduction !== undefined) checkOneOf(where, 'reduction', reduction, REDUCTIONS);
}

/**
 * A noise level σ > 0 as the loss computes with it: rounded to x's dtype. One that float32 holds
 * only as 0 or ∞ (below ~7e-46, above ~3.4e38) would give an infinite or NaN loss without a word.
 */
function checkSigmaInDType(where: string, what: string, sigma: number, dtype: string): void {
  const rounded = dtype === 'float32' ? Math.fround(sigma) : sigma;
  if (!(rounded > 0 && Number.isFinite(rounded))) throw new RangeError(`${where}: ${what} ${sigma} rounds to ${rounded} in ${dtype}, x's dtype; it must be a positive finite ${dtype} value`);
}

const rowSquaredNorm = (t: Tensor): Tensor => sum(mul(t, t), 1);
const rowDot = (a: Tensor, b: Tensor): Tensor => sum(mul(a, b), 1);

/** `copies` copies of x stacked along rows: [copies·N, …]. */
function replicateRows(x: Tensor, copies: number): Tensor {
  return copies === 1 ? x : concat(new Array<Tensor>(copies).fill(x), 0);
}

/** Per-block means: values [blocks·N] → [N], averaging the blocks. */
function meanOverBlocks(values: Tensor, blocks: number, n: number): Tensor {
  return blocks === 1 ? values : reshape(values, [blocks, n]).mean(0);
}

// ------------------------------------------------------------------------------------------------
// Explicit score matching

export interface ExplicitScoreMatchingOptions extends LossOptions {
  /** The target ∇log p: an analytic score, or an estimate such as `kdeScore(data)`. */
  targetScore: ScoreFunction;
}
const ESM_OPTIONS = optionNames<ExplicitScoreMatchingOptions>()(['targetScore', 'cond', 'reduction']);

/** ESM = ½E‖s(x) − ∇log p(x)‖², with ∇log p given by `targetScore` (Hyvärinen 2005's J(θ)). */
export function explicitScoreMatchingLoss(score: ScoreFunction, x: Tensor, opts: ExplicitScoreMatchingOptions): Tensor {
  return composite(() => {
    const where = 'explicitScoreMatchingLoss';
    checkScoreFunction(where, score);
    checkBatch(where, x);
    checkLossOptions(where, opts, ESM_OPTIONS);
    if (typeof opts.targetScore !== 'function') throw new TypeError(`${where}: opts.targetScore must be a function x ↦ ∇log p(x) (e.g. kdeScore(data))`);
    checkCond(where, opts.cond, x);
    const s = evalScore(where, score, x, opts.cond);
    const target = opts.targetScore(x);
    if (!(target instanceof Tensor) || target.shape.length !== 2 || target.shape[0] !== x.shape[0] || target.shape[1] !== x.shape[1]) {
      throw new Error(`${where}: targetScore returned ${target instanceof Tensor ? `shape ${fmtShape(target.shape)}` : typeof target} for x of shape ${fmtShape(x.shape)}`);
    }
    if (target.dtype !== x.dtype) throw new TypeError(`${where}: targetScore returned ${target.dtype} for a ${x.dtype} x; it must return x's dtype`);
    return reduce(where, rowSquaredNorm(sub(s, target)).mul(0.5), opts.reduction);
  });
}

// ------------------------------------------------------------------------------------------------
// Implicit score matching: the exact Jacobian trace

export type TraceMethod = 'batched' | 'loop';

export interface JacobianTraceOptions {
  /** Noise level passed to the score as its second argument (σ or t, shape [N], in x's dtype). */
  cond?: Tensor;
  /**
   * 'batched' (default): `vmap` of `jvp` over the d basis tangents e_j (each broadcast over the
   * rows), then the diagonal entries summed — d forward passes' work in a single batched pass,
   * the primal computed once. 'loop': d separate `jvp` calls (the reference the batched route is
   * tested against).
   */
  method?: TraceMethod;
}
const JACOBIAN_TRACE_OPTIONS = optionNames<JacobianTraceOptions>()(['cond', 'method']);

/** s(x) and tr ∂s/∂x per example (both from the same forward-mode pass when batched). */
function scoreAndTrace(where: string, score: ScoreFunction, x: Tensor, cond: Tensor | undefined, method: unknown): { s: Tensor; trace: Tensor } {
  const m = method ?? 'batched';
  checkOneOf(where, 'method', m, ['batched', 'loop'] as const);
  const [n, d] = x.shape as [number, number];
  const basis = eye(d, d, { dtype: x.dtype, device: x.device });
  if (m === 'batched') {
    // Per basis vector e_j (the batch): row i of J·e_j is column j of ∂s/∂x at xᵢ, and its j-th
    // entry the diagonal one. s itself does not depend on the tangent: it comes out unbatched.
    const [s, diagonal] = vmap(
      (e: Tensor) => {
        const tangent = broadcastTo(reshape(e, [1, d]), [n, d]);
        const [sx, jv] = jvp((xx: Tensor) => evalScore(where, score, xx, cond), [x], [tangent]);
        return [sx, rowDot(jv, tangent)];
      },
      { outAxes: [null, 0] },
    )(basis) as [Tensor, Tensor];
    return { s, trace: sum(diagonal, 0) };
  }
  let trace: Tensor | null = null;
  let s: Tensor | null = null;
  for (let j = 0; j < d; j++) {
    const ej = broadcastTo(basis.slice([j, 0], [1, d]), [n, d]);
    const [sj, jv] = jvp((xx: Tensor) => evalScore(where, score, xx, cond), [x], [ej]);
    s ??= sj;
    const diag = rowDot(jv, ej);
    trace = trace === null ? diag : add(trace, diag);
  }
  return { s: s!, trace: trace! };
}

/** tr ∂s/∂x at each row of x, shape [N], computed exactly with d JVPs (see `method`). */
export function scoreJacobianTrace(score: ScoreFunction, x: Tensor, opts: JacobianTraceOptions = {}): Tensor {
  return composite(() => jacobianTrace('scoreJacobianTrace', score, x, opts));
}

/** scoreJacobianTrace's body, its errors under `where` (energyHessianTrace's said scoreJacobianTrace). */
function jacobianTrace(where: string, score: ScoreFunction, x: Tensor, opts: JacobianTraceOptions): Tensor {
  checkScoreFunction(where, score);
  checkBatch(where, x);
  checkLossOptions(where, opts, JACOBIAN_TRACE_OPTIONS);
  checkCond(where, opts.cond, x);
  return scoreAndTrace(where, score, x, opts.cond, opts.method).trace;
}

/**
 * tr ∇²ₓE per row for an energy E: [N, d] → [N] (e.g. `model.applyEnergy` bound to params), by
 * the same batched forward-mode route applied to s = −∇ₓE (forward over reverse).
 */
export function energyHessianTrace(energy: EnergyFunction, x: Tensor, opts: JacobianTraceOptions = {}): Tensor {
  return composite(() => {
    if (typeof energy !== 'function') throw new TypeError(`energyHessianTrace: energy must be a function (x [N, d], cond?) => [N], got ${typeof energy}`);
    checkLossOptions('energyHessianTrace', opts, JACOBIAN_TRACE_OPTIONS);
    return jacobianTrace('energyHessianTrace', energyScore(energy), x, opts).neg();
  });
}

export interface ImplicitScoreMatchingOptions extends LossOptions {
  /** How the exact trace is computed; default 'batched' (see `JacobianTraceOptions`). */
  method?: TraceMethod;
}
const ISM_OPTIONS = optionNames<ImplicitScoreMatchingOptions>()(['cond', 'reduction', 'method']);

/**
 * ISM = E[½‖s(x)‖² + tr ∂s/∂x] (Hyvärinen 2005, Theorem 1; equals ESM − ½E‖∇log p‖²). The trace
 * is exact: d JVPs with basis tangents batched into one pass. For an energy model (s = −∇E) the
 * trace is −tr ∇²E, the Hessian trace, by the same route.
 */
export function implicitScoreMatchingLoss(score: ScoreFunction, x: Tensor, opts: ImplicitScoreMatchingOptions = {}): Tensor {
  return composite(() => {
    const where = 'implicitScoreMatchingLoss';
    checkScoreFunction(where, score);
    checkBatch(where, x);
    checkLossOptions(where, opts, ISM_OPTIONS);
    checkCond(where, opts.cond, x);
    const { s, trace } = scoreAndTrace(where, score, x, opts.cond, opts.method);
    return reduce(where, add(rowSquaredNorm(s).mul(0.5), trace), opts.reduction);
  });
}

// ------------------------------------------------------------------------------------------------
// Sliced score matching

export type ProjectionDistribution = 'gaussian' | 'rademacher' | 'sphere';
const PROJECTIONS: readonly ProjectionDistribution[] = ['gaussian', 'rademacher', 'sphere'];

export interface DrawProjectionsOptions {
  /** Key of the draw. */
  key: RandomKey;
  /** dtype of the projections (the data's). */
  dtype: FloatDType;
  /** Device of the projections (the data's); default the default device. */
  device?: string;
}
const DRAW_PROJECTIONS_OPTIONS = optionNames<DrawProjectionsOptions>()(['key', 'dtype', 'device']);

/**
 * Random projection directions, shape [rows, d], all normalised so E[vvᵀ] = I: standard normal,
 * Rademacher ±1, or √d times a uniform unit vector.
 */
export function drawProjections(shape: readonly [number, number], distribution: ProjectionDistribution, opts: DrawProjectionsOptions): Tensor {
  return composite(() => {
    const where = 'drawProjections';
    checkOneOf(where, 'distribution', distribution, PROJECTIONS);
    if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object { key, dtype, device? }`);
    checkOptions(where, opts, DRAW_PROJECTIONS_OPTIONS);
    const { key, dtype, device } = opts;
    checkKey(key, `${where}: opts.key`);
    checkOneOf(where, 'dtype', dtype, ['float32', 'float64'] as const);
    if (!Array.isArray(shape) || shape.length !== 2) throw new Error(`${where}: shape must be [rows, d], got ${showValue(shape)}`);
    checkNumberList(where, 'shape', shape, { integer: true, min: 1 });
    if (distribution === 'rademacher') return rademacher(shape, { key, dtype, device });
    const g = randn(shape, { key, dtype, device });
    if (distribution === 'gaussian') return g;
    // u/‖u‖ is uniform on the sphere (the Gaussian is rotation invariant); E[uuᵀ] = I/d. A row
    // of g is exactly zero when each of its Box–Muller pairs has u₁ = 0: at d = 2 that is one
    // pair, probability 2⁻²⁴ per row in float32. Such a row takes the direction e₁, not 0/0.
    const norm = sqrt(sum(mul(g, g), 1, true));
    const e1 = tensor(Array.from({ length: shape[1] }, (_, j) => (j === 0 ? 1 : 0)), { dtype, device: g.device, shape: [1, shape[1]] });
    return select(greater(norm, 0), g.div(norm), e1).mul(Math.sqrt(shape[1]));
  });
}

export type SlicedMethod = 'jvp' | 'finiteDifference';

export interface SlicedScoreMatchingOptions extends LossOptions {
  /** Key of the projections v (a fresh key each step: the training loop's per-step key). */
  key: RandomKey;
  /** Projections per example, M; default 1 (Song, Garg, Shi & Ermon 2019 use M = 1). */
  projections?: number;
  /** Distribution of v; default 'gaussian' (as in Song et al. 2019's experiments). */
  distribution?: ProjectionDistribution;
  /** SSM-VR: replace ½(vᵀs)² by its expectation ½‖s‖² (Song et al. 2019). Default false. */
  varianceReduced?: boolean;
  /**
   * 'jvp' (default): vᵀ(∂s/∂x)v by forward mode. 'finiteDifference': the central difference
   * vᵀ(s(x+εv) − s(x−εv))/(2ε), which needs no second-order autodiff for ∇_θ (error O(ε²)).
   */
  method?: SlicedMethod;
  /**
   * ε of the finite difference; default ∛(3u) for the dtype's unit roundoff u (≈ 5.6e-3 in
   * float32, 6.9e-6 in float64): the step that balances O(ε²) truncation against O(u/ε)
   * cancellation for unit-scale data and scores.
   */
  fdEps?: number;
}
const SSM_OPTIONS = optionNames<SlicedScoreMatchingOptions>()(['key', 'cond', 'reduction', 'projections', 'distribution', 'varianceReduced', 'method', 'fdEps']);

/** The options of `projectedJacobianTrace`: those of SSM that bear on the trace term. */
export type ProjectedJacobianTraceOptions = Omit<SlicedScoreMatchingOptions, 'varianceReduced' | 'reduction'>;
const PROJECTED_TRACE_OPTIONS = optionNames<ProjectedJacobianTraceOptions>()(['key', 'cond', 'projections', 'distribution', 'method', 'fdEps']);

/** Per-example estimates of tr ∂s/∂x from random projections, with s(x) evaluated alongside. */
function projectedTrace(where: string, score: ScoreFunction, x: Tensor, opts: ProjectedJacobianTraceOptions, needScoreAt: 'replicated' | 'original'): {
  vJv: Tensor; v: Tensor; s: Tensor;
} {
  const [n, d] = x.shape as [number, number];
  const m = opts.projections ?? 1;
  checkNumber(where, 'projections', m, { integer: true, min: 1 });
  const distribution = opts.distribution ?? 'gaussian';
  checkOneOf(where, 'distribution', distribution, PROJECTIONS);
  const method = opts.method ?? 'jvp';
  checkOneOf(where, 'method', method, ['jvp', 'finiteDifference'] as const);
  checkNumber(where, 'fdEps', opts.fdEps, { min: 0, exclusiveMin: true });
  if (opts.fdEps !== undefined && method !== 'finiteDifference') throw new Error(`${where}: fdEps applies to method 'finiteDifference' only, not to '${method}'`);
  checkKey(opts.key, `${where}: opts.key`);
  const dtype = x.dtype as FloatDType;
  // A step that rounds to 0 (or ∞) in x's dtype divided by 2ε = 0 and gave NaN without a word.
  if (opts.fdEps !== undefined) checkSigmaInDType(where, 'fdEps', opts.fdEps, dtype);
  const xs = replicateRows(x, m);
  const condRep = opts.cond === undefined ? undefined : replicateRows(opts.cond, m);
  const v = drawProjections([m * n, d], distribution, { key: opts.key, dtype, device: x.device });
  if (method === 'jvp') {
    const [s, jv] = jvp((xx: Tensor) => evalScore(where, score, xx, condRep), [xs], [v]);
    return { vJv: rowDot(v, jv), v, s: needScoreAt === 'replicated' ? s : s.slice([0, 0], [n, d]) };
  }
  const eps = opts.fdEps ?? Math.cbrt(3 * (dtype === 'float64' ? 2 ** -53 : 2 ** -24));
  // One score call on [x+εv; x−εv; x]: the last block gives s(x) for the second term.
  const step = mul(v, eps);
  const all = concat([add(xs, step), sub(xs, step), x], 0);
  const condAll = opts.cond === undefined ? undefined : concat([condRep!, condRep!, opts.cond], 0);
  const sAll = evalScore(where, score, all, condAll);
  const plus = sAll.slice([0, 0], [m * n, d]);
  const minus = sAll.slice([m * n, 0], [m * n, d]);
  const s0 = sAll.slice([2 * m * n, 0], [n, d]);
  const vJv = rowDot(v, sub(plus, minus)).div(2 * eps);
  return { vJv, v, s: needScoreAt === 'replicated' ? replicateRows(s0, m) : s0 };
}

/**
 * Sliced score matching (Song, Garg, Shi & Ermon 2019):
 *   SSM    = E_x E_v[vᵀ(∂s/∂x)v + ½(vᵀs)²]
 *   SSM-VR = E_x E_v[vᵀ(∂s/∂x)v] + ½E_x‖s‖²       (`varianceReduced: true`)
 * with M projections per example (averaged). Both are unbiased for ISM because E[vvᵀ] = I for
 * every supported distribution.
 */
export function slicedScoreMatchingLoss(score: ScoreFunction, x: Tensor, opts: SlicedScoreMatchingOptions): Tensor {
  return composite(() => {
    const where = 'slicedScoreMatchingLoss';
    checkScoreFunction(where, score);
    checkBatch(where, x);
    checkLossOptions(where, opts, SSM_OPTIONS);
    checkCond(where, opts.cond, x);
    const n = x.shape[0]!;
    const m = opts.projections ?? 1;
    const varianceReduced = opts.varianceReduced ?? false;
    checkBoolean(where, 'varianceReduced', varianceReduced);
    const { vJv, v, s } = projectedTrace(where, score, x, opts, varianceReduced ? 'original' : 'replicated');
    const trace = meanOverBlocks(vJv, m, n);
    const second = varianceReduced ? rowSquaredNorm(s).mul(0.5) : meanOverBlocks(rowDot(v, s).square().mul(0.5), m, n);
    return reduce(where, add(trace, second), opts.reduction);
  });
}

/**
 * Hutchinson estimates of tr ∂s/∂x, shape [N] (the mean of M projections per example): the
 * first term of SSM alone, exposed to measure the estimator's variance per distribution.
 */
export function projectedJacobianTrace(score: ScoreFunction, x: Tensor, opts: ProjectedJacobianTraceOptions): Tensor {
  return composite(() => {
    const where = 'projectedJacobianTrace';
    checkScoreFunction(where, score);
    checkBatch(where, x);
    checkLossOptions(where, opts, PROJECTED_TRACE_OPTIONS);
    checkCond(where, opts.cond, x);
    const { vJv } = projectedTrace(where, score, x, opts, 'original');
    return meanOverBlocks(vJv, opts.projections ?? 1, x.shape[0]!);
  });
}

// ------------------------------------------------------------------------------------------------
// Denoising score matching

export interface DenoisingScoreMatchingOptions extends LossOptions {
  /** Noise scale σ > 0: a number, or a [N] tensor (one σ per example). */
  sigma: number | Tensor;
  /** Key of the noise z (a fresh key each step: the training loop's per-step key). */
  key: RandomKey;
}
const DSM_OPTIONS = optionNames<DenoisingScoreMatchingOptions>()(['sigma', 'key', 'cond', 'reduction']);

/** ½‖s(x̃) + z/σ‖² per example for x̃ = x + σz (σ a [N, 1] column); returns [N]. */
function denoisingTerms(where: string, score: ScoreFunction, x: Tensor, sigmaColumn: Tensor, z: Tensor, cond: Tensor | undefined): Tensor {
  const noisy = add(x, mul(sigmaColumn, z));
  const s = evalScore(where, score, noisy, cond);
  return rowSquaredNorm(add(s, z.div(sigmaColumn))).mul(0.5);
}

/**
 * DSM = ½E‖s(x̃) + (x̃ − x)/σ²‖², x̃ = x + σz, z ~ N(0, I) (Vincent 2011, with a Gaussian
 * corruption kernel; (x̃ − x)/σ² = z/σ). Its minimiser is the score of the noised data p_σ = p ∗ N(0, σ²I),
 * and DSM − ESM(p_σ) does not depend on s. The noise is z = randn(x.shape, {key, dtype of x}),
 * so a caller can rebuild x̃ (e.g. to evaluate a reference score at the same points).
 */
export function denoisingScoreMatchingLoss(score: ScoreFunction, x: Tensor, opts: DenoisingScoreMatchingOptions): Tensor {
  return composite(() => {
    const where = 'denoisingScoreMatchingLoss';
    checkScoreFunction(where, score);
    checkBatch(where, x);
    checkLossOptions(where, opts, DSM_OPTIONS);
    checkKey(opts.key, `${where}: opts.key`);
    const n = x.shape[0]!;
    checkCond(where, opts.cond, x);
    let sigmaColumn: Tensor;
    if (typeof opts.sigma === 'number') {
      if (!(opts.sigma > 0 && Number.isFinite(opts.sigma))) throw new RangeError(`${where}: sigma must be a positive finite number, got ${opts.sigma}`);
      checkSigmaInDType(where, 'sigma', opts.sigma, x.dtype);
      sigmaColumn = tensor(opts.sigma, { dtype: x.dtype, device: x.device }).reshape([1, 1]);
    } else if (opts.sigma instanceof Tensor && opts.sigma.rank === 1 && opts.sigma.shape[0] === n) {
      // Checked here: a σ of another dtype (int32, or float32 beside float64 data) would fail
      // inside the noise's product with a message that does not name sigma.
      if (opts.sigma.dtype !== x.dtype) throw new TypeError(`${where}: a sigma tensor must have x's dtype (${x.dtype}), got ${opts.sigma.dtype}`);
      sigmaColumn = perRow(opts.sigma);
    } else {
      throw new Error(`${where}: sigma must be a positive number or a Tensor of shape [${n}], got ${opts.sigma instanceof Tensor ? fmtShape(opts.sigma.shape) : showValue(opts.sigma)}`);
    }
    const z = randn(x.shape, { key: opts.key, dtype: x.dtype as FloatDType, device: x.device });
    return reduce(where, denoisingTerms(where, score, x, sigmaColumn, z, opts.cond), opts.reduction);
  });
}

// ------------------------------------------------------------------------------------------------
// Multi-scale DSM (NCSN)

export interface NcsnLossOptions {
  /** Key of each example's noise level and of the noise z (a fresh key each step). */
  key: RandomKey;
  /** The noise levels (any order, all > 0). Default: `geometricSigmas(sigmaMax, sigmaMin, numScales)` (samplers.ts). */
  sigmas?: readonly number[];
  /** σ₁ = 1 (Song & Ermon 2019's experimental setup). */
  sigmaMax?: number;
  /** σ_L = 0.01 (Song & Ermon 2019's experimental setup). */
  sigmaMin?: number;
  /** L = 10 (Song & Ermon 2019's experimental setup). */
  numScales?: number;
  /** λ(σ) = σ^power; power 2 (Song & Ermon 2019, eq. 6: makes every level's term O(1)). */
  power?: number;
  /** 'mean' (default): the batch mean, a scalar. 'none': the [N] per-example values. */
  reduction?: Reduction;
}
const NCSN_OPTIONS = optionNames<NcsnLossOptions>()(['key', 'sigmas', 'sigmaMax', 'sigmaMin', 'numScales', 'power', 'reduction']);

/**
 * The default levels of `ncsnLoss`: geometricSigmas over its grid options, checked here so that a
 * bad grid is named as ncsnLoss's options (one level is σ_max alone, as in geometricSigmas, so
 * a sigmaMin given with numScales 1 would be dropped: refused instead).
 */
function ncsnGrid(where: string, opts: NcsnLossOptions): number[] {
  const sigmaMax = opts.sigmaMax ?? 1;
  const sigmaMin = opts.sigmaMin ?? 0.01;
  const numScales = opts.numScales ?? 10;
  checkNumber(where, 'sigmaMax', sigmaMax, { min: 0, exclusiveMin: true });
  checkNumber(where, 'sigmaMin', sigmaMin, { min: 0, exclusiveMin: true });
  checkNumber(where, 'numScales', numScales, { integer: true, min: 1 });
  if (numScales === 1) {
    if (opts.sigmaMin !== undefined) throw new Error(`${where}: sigmaMin does not apply with numScales 1: the one level is sigmaMax (${sigmaMax}); leave sigmaMin out, or give sigmas`);
  } else if (!(sigmaMax > sigmaMin)) {
    throw new RangeError(`${where}: sigmaMax (${sigmaMax}${opts.sigmaMax === undefined ? ', the default' : ''}) must be larger than sigmaMin (${sigmaMin}${opts.sigmaMin === undefined ? ', the default' : ''}) for numScales ${numScales}`);
  }
  return geometricSigmas(sigmaMax, sigmaMin, numScales);
}

/**
 * NCSN loss (Song & Ermon 2019, eqs. 5–6): the model is conditioned on σ (cond = σ, shape [N]);
 * each example draws a level σ uniformly from the L levels, so the batch mean is an unbiased
 * estimate of (1/L) Σ_l λ(σ_l) DSM_σ_l:
 *   ℓ = E_σ E_x E_z[½ λ(σ) ‖s(x + σz, σ) + z/σ‖²],  λ(σ) = σ^power.
 */
export function ncsnLoss(score: ScoreFunction, x: Tensor, opts: NcsnLossOptions): Tensor {
  return composite(() => {
    const where = 'ncsnLoss';
    checkScoreFunction(where, score);
    checkBatch(where, x);
    checkLossOptions(where, opts, NCSN_OPTIONS);
    checkKey(opts.key, `${where}: opts.key`);
    const gridOptions = (['sigmaMax', 'sigmaMin', 'numScales'] as const).filter((k) => opts[k] !== undefined);
    if (opts.sigmas !== undefined && gridOptions.length > 0) {
      throw new Error(`${where}: give either sigmas or the grid (sigmaMax, sigmaMin, numScales), not both; got sigmas and ${gridOptions.join(', ')}`);
    }
    const sigmas = opts.sigmas ?? ncsnGrid(where, opts);
    if (!Array.isArray(sigmas) || sigmas.length === 0 || !sigmas.every((s) => typeof s === 'number' && s > 0 && Number.isFinite(s))) {
      throw new RangeError(`${where}: sigmas must be a non-empty array of positive numbers, got ${showValue(sigmas)}`);
    }
    sigmas.forEach((s, i) => checkSigmaInDType(where, `sigmas[${i}] =`, s, x.dtype));
    const power = opts.power ?? 2;
    checkNumber(where, 'power', power);
    const [n] = x.shape as [number, number];
    const dtype = x.dtype as FloatDType;
    const [levelKey, noiseKey] = splitKey(opts.key, 2);
    const levels = sigmas.length;
    // Level index ⌊uL⌋, clamped because float rounding can lift u·L to L when u is just below 1.
    const index = cast(minimum(rand([n], { key: levelKey, dtype, device: x.device }).mul(levels), levels - 1), 'int32');
    const sigma = indexSelect(tensor(Float64Array.from(sigmas), { dtype, device: x.device }), 0, index);
    const z = randn(x.shape, { key: noiseKey, dtype, device: x.device });
    const terms = denoisingTerms(where, score, x, perRow(sigma), z, sigma);
    return reduce(where, mul(terms, pow(sigma, power)), opts.reduction);
  });
}

// ------------------------------------------------------------------------------------------------
// Continuous-time (SDE) DSM

export type SdeWeighting = 'sigma2' | 'likelihood' | 'noisePrediction';
const SDE_WEIGHTINGS: readonly SdeWeighting[] = ['sigma2', 'likelihood', 'noisePrediction'];

export interface SdeScoreLossOptions {
  /** The forward SDE (veSde(), vpSde(), subVpSde() from ./sde.js). */
  sde: Sde;
  /** Key of the times t and the noise z (a fresh key each step). */
  key: RandomKey;
  /**
   * λ(t) of Song et al. 2021, eq. 7: 'sigma2' (default), λ = s(t)², the kernel variance;
   * 'likelihood', λ = g(t)² (Song, Durkan, Murray & Ermon 2021: bounds the negative
   * log-likelihood); 'noisePrediction', Ho et al. 2020's L_simple = mean over dimensions of
   * (ε̂ − z)² with ε̂ = −s(t)·s_θ: the σ² weighting times 2/d (same minimiser).
   */
  weighting?: SdeWeighting;
  /** Smallest time: t ~ U(ε, T), ε = 1e-5 (Song et al. 2021, to avoid s(0) = 0). */
  eps?: number;
  /** 'mean' (default): the batch mean, a scalar. 'none': the [N] per-example values. */
  reduction?: Reduction;
}
const SDE_LOSS_OPTIONS = optionNames<SdeScoreLossOptions>()(['sde', 'key', 'weighting', 'eps', 'reduction']);

/**
 * Continuous-time DSM (Song et al. 2021, eq. 7): t ~ U(ε, T), x_t = m(t)x + s(t)z,
 *   ℓ = E_t E_x E_z[½ λ(t) ‖s_θ(x_t, t) + z/s(t)‖²]
 * (z/s(t) = −∇log p₀ₜ(x_t | x)). The model is conditioned on t (cond = t, shape [N]).
 */
export function sdeScoreLoss(score: ScoreFunction, x: Tensor, opts: SdeScoreLossOptions): Tensor {
  return composite(() => {
    const where = 'sdeScoreLoss';
    checkScoreFunction(where, score);
    checkBatch(where, x);
    checkLossOptions(where, opts, SDE_LOSS_OPTIONS);
    checkKey(opts.key, `${where}: opts.key`);
    const { sde } = opts;
    if (!sde || typeof sde.std !== 'function' || typeof sde.meanCoefficient !== 'function') throw new TypeError(`${where}: opts.sde must be an Sde (veSde(), vpSde() or subVpSde())`);
    const weighting = opts.weighting ?? 'sigma2';
    checkOneOf(where, 'weighting', weighting, SDE_WEIGHTINGS);
    const eps = opts.eps ?? SDE_EPSILON;
    checkNumber(where, 'eps', eps, { min: 0, exclusiveMin: true, max: sde.T, exclusiveMax: true });
    const [n, d] = x.shape as [number, number];
    const dtype = x.dtype as FloatDType;
    const [timeKey, noiseKey] = splitKey(opts.key, 2);
    const t = rand([n], { key: timeKey, dtype, device: x.device }).mul(sde.T - eps).add(eps);
    const z = randn(x.shape, { key: noiseKey, dtype, device: x.device });
    const std = perRow(sde.std(t));
    const noisy = add(mul(x, perRow(sde.meanCoefficient(t))), mul(z, std));
    const s = evalScore(where, score, noisy, t);
    let terms: Tensor;
    if (weighting === 'likelihood') {
      const g = sde.diffusion(t);
      terms = rowSquaredNorm(add(s, z.div(std))).mul(mul(g, g)).mul(0.5);
    } else {
      // s(t)²·½‖s_θ + z/s(t)‖² = ½‖s(t)s_θ + z‖²: no division by a tiny s(t) near t = ε.
      const scaled = rowSquaredNorm(add(mul(s, std), z));
      terms = weighting === 'sigma2' ? scaled.mul(0.5) : scaled.div(d);
    }
    return reduce(where, terms, opts.reduction);
  });
}
