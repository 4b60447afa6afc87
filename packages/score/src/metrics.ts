// Sample-quality and score-quality measures for toy experiments: the Fisher divergence of a score
// to a reference score, kernel two-sample statistics (unbiased RBF MMD² and the energy distance,
// with their standard errors under "same distribution"), mode weights, and a 2-D histogram KL.
//
// Every metric computes on the device with tensor ops and reads its few result numbers back at the
// end (the two-sample statistics also read, once before, a subsample of their points and the
// non-finite counts: see pooledFrame), so each returns a Promise of plain numbers. Pairwise statistics build N × M
// matrices: meant for toy sample sizes (a few thousand points). Samples with NaN or ±Infinity
// (a diverged sampler) are refused with their count: a distance to them, a median of their
// distances or their nearest mode would be NaN, an error about the bandwidth, or all zeros.

import {
  composite,
  MOVE_TO_DEVICE, Tensor, add, cast, checkNumber, checkOptions, concat, exp, full, greaterEqual, isFinite, less, matmul, max, maximum, minimum, mul,
  everyEntry, narrow, reshape, showValue, sqrt, sub, sum, tensor, tidy, transpose,
} from '@scorch/tensor';
import { type ScoreFunction, checkBatch, checkCond, checkScoreFunction, evalScore, optionNames } from './conventions.js';
import { middlePair } from './select.js';

function checkPair(where: string, x: Tensor, y: Tensor): void {
  checkBatch(where, x, 'the first sample');
  checkBatch(where, y, 'the second sample');
  if (x.shape[1] !== y.shape[1]) throw new Error(`${where}: samples have different dimensions (${x.shape[1]} vs ${y.shape[1]})`);
  if (x.dtype !== y.dtype) throw new TypeError(`${where}: samples have different dtypes (${x.dtype} vs ${y.dtype})`);
  // Said by concat or sub otherwise, naming neither the metric nor the samples.
  if (x.device !== y.device) throw new Error(`${where}: samples are on different devices ('${x.device}' and '${y.device}'); ${MOVE_TO_DEVICE}`);
}

/**
 * After an await inside `where`: a sample the caller disposed meanwhile (a UI freeing samples
 * while a metric it started runs) was reported by the first op to use it ('sub: first operand').
 */
function checkStillLive(where: string, x: Tensor, y: Tensor): void {
  for (const [t, what] of [[x, 'the first sample'], [y, 'the second sample']] as const) {
    if (t.isDisposed) throw new Error(`${where}: ${what}, a ${t.dtype} [${t.shape.join(',')}] tensor, was disposed while ${where} was running; keep it until the promise settles`);
  }
}

/** A U-statistic's within-sample averages take pairs of distinct points: 2 or more in each sample. */
function checkTwoPoints(where: string, x: Tensor, y: Tensor): void {
  const [M, N] = [x.shape[0]!, y.shape[0]!];
  if (M < 2 || N < 2) throw new Error(`${where}: each sample needs at least 2 points (the statistic averages over pairs of distinct points), got ${M} and ${N}`);
}

/** The number of rows of x [N, d] with a NaN or ±Infinity entry, as a [1] tensor (not read). */
function nonFiniteRows(x: Tensor): Tensor {
  const finitePerRow = sum(cast(isFinite(x), x.dtype), 1); // d for a finite row
  return reshape(sum(cast(less(finitePerRow, x.shape[1]!), x.dtype)), [1]);
}

/** Throws when a count of non-finite rows is not 0, naming the count, the size and the argument. */
function refuseNonFinite(where: string, counts: readonly number[], samples: readonly (readonly [string, Tensor])[]): void {
  samples.forEach(([name, x], i) => {
    const k = counts[i]!;
    if (k > 0) throw new Error(`${where}: ${k} of ${x.shape[0]} samples are non-finite (NaN or ±Infinity) in ${name}; the measure needs finite points (did the sampler diverge?)`);
  });
}

/** The number of rows of x [N, d] (samples) that hold a NaN or ±Infinity. */
export async function countNonFinite(x: Tensor): Promise<number> {
  checkBatch('countNonFinite', x);
  return (await readNumbers(tidy(() => nonFiniteRows(x))))[0]!;
}

async function readNumbers(t: Tensor): Promise<number[]> {
  const values = Array.from(await t.data());
  t.dispose();
  return values;
}

/**
 * Fisher divergence ½ E‖s(x) − s*(x)‖² of `score` to `referenceScore`, averaged over the rows of
 * `x` (samples of the distribution the expectation is under). Both scores receive `cond` if given.
 * Zero exactly when the two agree on every sample.
 */
export async function fisherDivergence(score: ScoreFunction, referenceScore: ScoreFunction, x: Tensor, cond?: Tensor): Promise<number> {
  const where = 'fisherDivergence';
  checkScoreFunction(where, score);
  checkScoreFunction(where, referenceScore, 'referenceScore');
  checkBatch(where, x, 'x');
  checkCond(where, cond, x);
  const value = tidy(() => {
    const s = evalScore(where, score, x, cond);
    const ref = evalScore(where, referenceScore, x, cond, 'referenceScore');
    const diff = sub(s, ref);
    return sum(mul(diff, diff)).mul(0.5 / x.shape[0]!);
  });
  return (await readNumbers(value))[0]!;
}

/**
 * ‖aᵢ − bⱼ‖² for a [M, d], b [N, d], as [M, N], from differences one coordinate at a time
 * (M·N·d work, as a product's). The expansion |a|² + |b|² − 2abᵀ kept nothing of the distances
 * between ordinary points once one far point moved a common centre (a float32 point at 1e7 among
 * a thousand: a distance of 5.31 came out 0, mode weights summed to 5.7).
 */
export function pairwiseSquaredDistances(a: Tensor, b: Tensor): Tensor {
  return composite(() => {
    checkPair('pairwiseSquaredDistances', a, b);
    let sq: Tensor | undefined;
    for (let k = 0; k < a.shape[1]!; k++) {
      const diff = sub(narrow(a, 1, k, 1), reshape(narrow(b, 1, k, 1), [1, b.shape[0]!]));
      const term = mul(diff, diff);
      sq = sq === undefined ? term : add(sq, term);
    }
    return sq!;
  });
}

export interface TwoSampleStatistic {
  /** The unbiased estimate (may be slightly negative when the distributions agree). */
  value: number;
  /**
   * Its standard error when both samples come from one distribution: the statistic is then
   * degenerate, and with k̃ the kernel centred under that law, E[k̃²] = E[h²]/4 and
   * Var = (E[h²]/2)·(1/(M(M−1)) + 1/(N(N−1)) + 2/(MN)) (for M = N = n, ≈ 2E[h²]/(n(n−1)),
   * Gretton et al. 2012, App. B), where h(zᵢ, zⱼ) = k(xᵢ,xⱼ) + k(yᵢ,yⱼ) − k(xᵢ,yⱼ) −
   * k(xⱼ,yᵢ); E[h²] is estimated over the pairs i ≠ j of the first
   * min(M, N, 500) points of each sample. A value many of these above 0 means the samples differ.
   */
  nullStandardError: number;
}

export interface MmdResult extends TwoSampleStatistic {
  /** The RBF bandwidth h used, k(a, b) = exp(−‖a − b‖²/(2h²)). */
  bandwidth: number;
}

export interface MmdOptions {
  /** RBF bandwidth h; default: the median heuristic (`medianBandwidth`). */
  bandwidth?: number;
  /** Points of the pooled sample used for the median heuristic; default 1000 (half from each). */
  medianPoints?: number;
}
const MMD_OPTIONS = optionNames<MmdOptions>()(['bandwidth', 'medianPoints']);

/**
 * Median heuristic (Gretton et al. 2012, §8): h = the median distance between distinct points of
 * the pooled sample. Uses up to `points` points (half from each sample) to bound the host work.
 */
export async function medianBandwidth(x: Tensor, y: Tensor, points = 1000): Promise<number> {
  checkPair('medianBandwidth', x, y);
  checkNumber('medianBandwidth', 'points', points, { integer: true, min: 2 });
  return medianOfFrame('medianBandwidth', await pooledFrame('medianBandwidth', x, y, points));
}

/** Where the two-sample statistics work: see pooledFrame. */
interface Frame {
  /** The pooled subsample's points, float64, row-major [n, d]. */
  readonly pooled: Float64Array;
  readonly n: number;
  readonly d: number;
  /** The subsample's coordinate-wise median: where the rows are centred. */
  readonly centre: number[];
  /** The largest |coordinate − centre| over every row of both samples. */
  readonly largest: number;
}

/**
 * One read for a two-sample statistic's host work, before its matrices: the pooled sample's first
 * points (up to `points`, half from each sample: the median heuristic's subsample), both samples'
 * non-finite row counts (refused here) and their column extremes. The rows are centred at the
 * subsample's coordinate-wise median: a few far points (a sampler starting to diverge) move a
 * median by little and a mean by their distance over the count; centred at the mean, one finite
 * float32 point at 1e7 among a thousand moved every other point to ~1e4, where |a|² + |b|² − 2ab
 * kept nothing of their distances (MMD² of ~1000 standard errors).
 */
async function pooledFrame(where: string, x: Tensor, y: Tensor, points: number): Promise<Frame> {
  const fromX = Math.min(x.shape[0]!, Math.ceil(points / 2));
  const fromY = Math.min(y.shape[0]!, points - fromX);
  const n = fromX + fromY;
  const d = x.shape[1]!;
  const values = await readNumbers(tidy(() => {
    const both = concat([x, y], 0);
    const pooled = concat([narrow(x, 0, 0, fromX), narrow(y, 0, 0, fromY)], 0);
    return concat([reshape(pooled, [n * d]), nonFiniteRows(x), nonFiniteRows(y), reshape(max(both, 0), [d]), reshape(max(both.neg(), 0), [d])], 0);
  }));
  refuseNonFinite(where, values.slice(n * d, n * d + 2), [['x', x], ['y', y]]);
  const pooled = Float64Array.from(values.slice(0, n * d));
  const column = new Float64Array(n);
  const centre = Array.from({ length: d }, (_, k) => {
    for (let i = 0; i < n; i++) column[i] = pooled[i * d + k]!;
    const [below, at] = middlePair(column);
    return 0.5 * (below + at);
  });
  const extremes = values.slice(n * d + 2);
  let largest = 0;
  for (let k = 0; k < d; k++) largest = Math.max(largest, extremes[k]! - centre[k]!, extremes[d + k]! + centre[k]!);
  return { pooled, n, d, centre, largest };
}

/**
 * The median heuristic on a frame's points: their pairwise distances in float64 on the host,
 * from differences (no |a|² + |b|² − 2ab to cancel, overflow or underflow in float32: samples at a
 * scale of 1e-25 or 1e20 have a median distance like any other). Errors name `where`, the
 * function called (medianBandwidth, or mmd2 choosing its bandwidth).
 */
function medianOfFrame(where: string, { pooled, n, d }: Frame): number {
  if (n < 2) throw new Error(`${where}: need at least two points in total`);
  // Only the middle one or two of the n(n − 1)/2 values (499,500 for 1,000 points) are needed, so
  // they are selected (O(n)) rather than all sorted.
  const upper = new Float64Array((n * (n - 1)) / 2);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let sq = 0;
      for (let c = 0; c < d; c++) {
        const diff = pooled[i * d + c]! - pooled[j * d + c]!;
        sq += diff * diff;
      }
      upper[k++] = sq;
    }
  }
  // Ordered squared distances are ordered distances; for an even count the median is the mean of
  // the middle two distances (not the root of the mean of their squares, which is larger).
  const [below, at] = middlePair(upper);
  const h = 0.5 * (Math.sqrt(below) + Math.sqrt(at));
  if (!(h > 0)) throw new Error(`${where}: the median pairwise distance is 0 (more than half the points coincide); pass a bandwidth`);
  return h;
}

/**
 * c·‖aᵢ − bⱼ‖² as [M, N] in one matmul, [−2c·a, c|a|², c]·[b, 1, |b|²]ᵀ, of the rows moved to
 * the frame's centre and multiplied by `scale` (the kernel's 1/h, or a power of two: distances
 * of points at 1e19 or 1e-20 neither overflow nor underflow in float32). Unclamped: rounding can
 * leave values of either sign near 0 (the CPU backend copies scalar operands to full size, so
 * every elementwise pass over an N × N matrix counts; this form needs none).
 */
function scaledSquaredDistances(a: Tensor, b: Tensor, centre: Tensor, scale: number, c: number): Tensor {
  const framed = (t: Tensor) => sub(t, centre).mul(scale);
  a = framed(a);
  b = framed(b);
  const column = (t: Tensor) => reshape(sum(mul(t, t), 1), [t.shape[0]!, 1]);
  const onesFor = (t: Tensor) => full([t.shape[0]!, 1], 1, { dtype: t.dtype, device: t.device });
  const left = concat([a.mul(-2 * c), column(a).mul(c), onesFor(a).mul(c)], 1);
  const right = concat([b, onesFor(b), column(b)], 1);
  return matmul(left, transpose(right));
}

/** The kernel as the two-sample statistics use it: a matrix function of the samples. */
interface Kernel {
  /** Kernel values k(aᵢ, bⱼ) times `sign`, divided by `unit`, [M, N]. */
  matrix(a: Tensor, b: Tensor): Tensor;
  /** +1, or −1 when `matrix` returns −k (saves an N × N negation pass). */
  sign: number;
  /** What the matrix's values are in: the statistic and its error are multiplied by it at the end. */
  unit: number;
}

/**
 * The kernel two-sample U-statistic shared by MMD² and the energy distance:
 * (1/(M(M−1)))Σ_{i≠j} k(xᵢ,xⱼ) + (1/(N(N−1)))Σ_{i≠j} k(yᵢ,yⱼ) − (2/(MN))Σ_{i,j} k(xᵢ,yⱼ)
 * (Gretton et al. 2012, eq. 3), with the null standard error described in TwoSampleStatistic.
 * The i = j terms are the matrix's own diagonal, subtracted (read through views: no N × N mask),
 * not M·k(0): a far point's own entry rounds by ulp(|a|²), which exp turned into +∞ and the root
 * into a bias of standard errors.
 */
async function kernelTwoSample(x: Tensor, y: Tensor, kernel: Kernel): Promise<TwoSampleStatistic> {
  const M = x.shape[0]!;
  const N = y.shape[0]!;
  const out = tidy(() => {
    const within = (a: Tensor) => {
      const n = a.shape[0]!;
      const k = kernel.matrix(a, a);
      return sub(sum(k), traceOf(k)).mul(kernel.sign / (n * (n - 1)));
    };
    const between = sum(kernel.matrix(x, y)).mul((2 * kernel.sign) / (M * N));
    const value = sub(add(within(x), within(y)), between);
    // h on the first n points of each sample: h_ij = k(xi,xj) + k(yi,yj) − k(xi,yj) − k(xj,yi).
    const n = Math.min(M, N, 500);
    const xs = narrow(x, 0, 0, n);
    const ys = narrow(y, 0, 0, n);
    const kxy = kernel.matrix(xs, ys);
    const h = sub(add(kernel.matrix(xs, xs), kernel.matrix(ys, ys)), add(kxy, transpose(kxy))); // sign² = 1 in h²
    const h2 = mul(h, h);
    const meanH2 = sub(sum(h2), traceOf(h2)).mul(1 / (n * (n - 1)));
    // Exact under H0 for eq. 3 with any M, N (min(M, N) in 2/(n(n−1)) overstated it up to 2×).
    const nullSe = sqrt(meanH2.mul(0.5 * (1 / (M * (M - 1)) + 1 / (N * (N - 1)) + 2 / (M * N))));
    return concat([reshape(value, [1]), reshape(nullSe, [1])], 0);
  });
  const [value, nullStandardError] = await readNumbers(out);
  return { value: value! * kernel.unit, nullStandardError: nullStandardError! * kernel.unit };
}

/** The sum of the diagonal of a square matrix, read through views: row i of the [n − 1, n + 1] view starts at entry (i, i). */
function traceOf(k: Tensor): Tensor {
  const n = k.shape[0]!;
  const flat = reshape(k, [n * n]);
  const last = sum(narrow(flat, 0, n * n - 1, 1));
  if (n === 1) return last;
  const rows = reshape(narrow(flat, 0, 0, (n - 1) * (n + 1)), [n - 1, n + 1]);
  return add(sum(narrow(rows, 1, 0, 1)), last);
}

/** The frame's centre as a [1, d] tensor of the samples' dtype and device. */
const centreTensor = (centre: readonly number[], like: Tensor): Tensor => tensor([centre as number[]], { dtype: like.dtype, device: like.device });

/**
 * Unbiased MMD² with the RBF kernel k(a, b) = exp(−‖a − b‖²/(2h²)) (Gretton et al. 2012, eq. 3;
 * bandwidth h by the median heuristic unless given). Samples x [M, d] and y [N, d].
 */
export async function mmd2(x: Tensor, y: Tensor, opts: MmdOptions = {}): Promise<MmdResult> {
  checkPair('mmd2', x, y);
  checkTwoPoints('mmd2', x, y);
  if (opts === null) throw new TypeError('mmd2: expected an options object, got null');
  checkOptions('mmd2', opts, MMD_OPTIONS);
  checkNumber('mmd2', 'bandwidth', opts.bandwidth, { min: 0, exclusiveMin: true });
  checkNumber('mmd2', 'medianPoints', opts.medianPoints, { integer: true, min: 2 });
  if (opts.bandwidth !== undefined && opts.medianPoints !== undefined) throw new Error('mmd2: medianPoints applies to the median heuristic only; it has no effect with a bandwidth given');
  const frame = await pooledFrame('mmd2', x, y, opts.medianPoints ?? 1000);
  checkStillLive('mmd2', x, y);
  const bandwidth = opts.bandwidth ?? medianOfFrame('mmd2', frame);
  const centre = centreTensor(frame.centre, x);
  try {
    // In units of h, exp(−½‖a/h − b/h‖²); the exponent clamped at 0, where rounding near a
    // distance of 0 may put it above (by ulp(|a/h|²), large for a far point).
    const matrix = (a: Tensor, b: Tensor) => exp(minimum(scaledSquaredDistances(a, b, centre, 1 / bandwidth, -0.5), 0));
    const stat = await kernelTwoSample(x, y, { matrix, sign: 1, unit: 1 });
    return { ...stat, bandwidth };
  } finally {
    centre.dispose();
  }
}

/**
 * Energy distance 2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (Székely & Rizzo 2013), estimated with
 * U-statistics (pairs i ≠ j within a sample): the kernel statistic above with k(a, b) = −‖a − b‖.
 * Zero in expectation exactly when the two distributions agree.
 */
export async function energyDistance(x: Tensor, y: Tensor): Promise<TwoSampleStatistic> {
  checkPair('energyDistance', x, y);
  checkTwoPoints('energyDistance', x, y);
  const frame = await pooledFrame('energyDistance', x, y, 1000);
  checkStillLive('energyDistance', x, y);
  // Distances in a unit of a power of two (exact) at or above the largest coordinate of either
  // sample, from the centre, so that no square overflows or underflows in float32.
  const unit = frame.largest > 0 ? 2 ** Math.ceil(Math.log2(frame.largest)) : 1;
  const centre = centreTensor(frame.centre, x);
  try {
    // matrix() returns +‖aᵢ − bⱼ‖ (clamped before the root) and sign −1 turns it into k = −‖·‖.
    const matrix = (a: Tensor, b: Tensor) => sqrt(maximum(scaledSquaredDistances(a, b, centre, 1 / unit, 1), 0));
    return await kernelTwoSample(x, y, { matrix, sign: -1, unit });
  } finally {
    centre.dispose();
  }
}

/**
 * Fraction of the samples x [N, d] nearest (Euclidean) to each mode; `modes` is [K, d] or K rows
 * of numbers. Returns K fractions summing to 1 (ties, of probability 0 for distinct modes, count
 * for each tied mode; repeated modes share their points, and the fractions then sum to more than 1).
 */
export async function modeWeights(x: Tensor, modes: Tensor | readonly (readonly number[])[]): Promise<number[]> {
  checkBatch('modeWeights', x, 'x');
  if (!(modes instanceof Tensor) && !Array.isArray(modes)) {
    throw new TypeError(`modeWeights: modes must be a Tensor [K, ${x.shape[1]}] or K rows of ${x.shape[1]} numbers, got ${modes === null ? 'null' : typeof modes}`);
  }
  if (Array.isArray(modes)) {
    // A ragged or non-numeric row failed in tensor(), naming neither modeWeights nor modes.
    // By index (holes included): forEach and every skip a missing row or number.
    for (let k = 0; k < modes.length; k++) {
      const m: unknown = modes[k];
      if (!Array.isArray(m) || m.length !== x.shape[1] || !everyEntry(m, (v) => typeof v === 'number')) {
        throw new TypeError(`modeWeights: modes[${k}] must be ${x.shape[1]} numbers (a row of the [K, ${x.shape[1]}] modes), got ${showValue(m)}`);
      }
    }
  }
  const result = tidy(() => {
    const centres = modes instanceof Tensor ? modes : tensor(modes.map((m) => [...m]), { dtype: x.dtype, device: x.device });
    if (centres.rank !== 2 || centres.shape[1] !== x.shape[1]) {
      throw new Error(`modeWeights: modes must be [K, ${x.shape[1]}], got [${centres.shape.join(',')}]`);
    }
    // Nearest by the linear score x·μₖ − ½‖μₖ‖² (= ½‖x‖² − ½‖x − μₖ‖², the same order): without
    // ‖x‖², a far point's squared distances to two modes no longer round to one float32 (from
    // |x| ≈ 1e8) or overflow together (from ~1e19), which counted it once for every mode.
    const modesOfX = cast(centres, x.dtype);
    const score = sub(matmul(x, transpose(modesOfX, [1, 0])), reshape(sum(mul(modesOfX, modesOfX), 1), [1, -1]).mul(0.5));
    const nearest = cast(greaterEqual(score, max(score, 1, true)), x.dtype); // 1 where the distance is smallest
    // The non-finite count rides along in the same read: a NaN row is nearest to no mode.
    return concat([sum(nearest, 0).mul(1 / x.shape[0]!), nonFiniteRows(x)], 0);
  });
  const values = await readNumbers(result);
  refuseNonFinite('modeWeights', values.slice(-1), [['x', x]]);
  return values.slice(0, -1);
}

export interface HistogramGrid {
  /** [lo, hi] of the first coordinate. */
  xRange: readonly [number, number];
  /** [lo, hi] of the second coordinate. */
  yRange: readonly [number, number];
  /** Bins per axis: one number for both, or [x bins, y bins]. */
  bins: number | readonly [number, number];
}
const HISTOGRAM_GRID = optionNames<HistogramGrid>()(['xRange', 'yRange', 'bins']);

export interface HistogramKlOptions {
  /**
   * Pseudo-count added to every cell of both histograms before normalising, so that empty cells
   * of q do not give log 0. Default ½ (the Krichevsky–Trofimov / Jeffreys estimator). It biases
   * the estimate towards 0 by about cells·pseudocount/n: use n well above the number of cells.
   */
  pseudocount?: number;
}
const HISTOGRAM_KL_OPTIONS = optionNames<HistogramKlOptions>()(['pseudocount']);

/** Cell counts of 2-D samples on a grid, [nx, ny]: one-hot bin rows per axis, then X̂ᵀŶ. */
export function histogram2d(x: Tensor, grid: HistogramGrid): Tensor {
  return composite(() => histogramCells('histogram2d', x, grid));
}

/** histogram2d's counts, its checks' errors naming `where` (histogram2d, or histogramKL for its samples). */
function histogramCells(where: string, x: Tensor, grid: HistogramGrid): Tensor {
  checkBatch(where, x, 'the sample');
  if (x.shape[1] !== 2) throw new Error(`${where}: expected 2-D points [N, 2], got [${x.shape.join(',')}]`);
  if (grid === null || typeof grid !== 'object') throw new TypeError(`${where}: expected a grid { xRange, yRange, bins }`);
  checkOptions(where, grid, HISTOGRAM_GRID);
  // Each field is required: a missing one failed as "... is not iterable" or reading its entries.
  const { bins } = grid;
  if (typeof bins !== 'number' && !(Array.isArray(bins) && bins.length === 2)) {
    throw new TypeError(`${where}: bins must be a number or [x bins, y bins], got ${showValue(bins)}`);
  }
  const [nx, ny] = typeof bins === 'number' ? [bins, bins] : bins;
  for (const [name, range, bins] of [['xRange', grid.xRange, nx], ['yRange', grid.yRange, ny]] as const) {
    if (!Array.isArray(range) || range.length !== 2) throw new TypeError(`${where}: ${name} must be [lo, hi], got ${showValue(range)}`);
    if (!(range[1] > range[0]) || !Number.isFinite(range[0]) || !Number.isFinite(range[1])) throw new RangeError(`${where}: ${name} must have lo < hi, both finite, got [${range[0]}, ${range[1]}]`);
    if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`${where}: bins must be positive integers, got ${bins}`);
  }
  return tidy(() => {
    // Half-open bins [e_i, e_{i+1}); a point outside [lo, hi) falls in no bin and is not counted.
    const oneHot = (column: Tensor, [lo, hi]: readonly [number, number], bins: number) => {
      const edges = Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
      const lower = tensor(edges.slice(0, bins), { dtype: x.dtype, device: x.device });
      const upper = tensor(edges.slice(1), { dtype: x.dtype, device: x.device });
      return sub(cast(greaterEqual(column, lower), x.dtype), cast(greaterEqual(column, upper), x.dtype)); // [N, bins]
    };
    const ox = oneHot(narrow(x, 1, 0, 1), grid.xRange, nx);
    const oy = oneHot(narrow(x, 1, 1, 1), grid.yRange, ny);
    return matmul(transpose(ox), oy);
  });
}

/**
 * KL(p ‖ q) = Σ_c p̂_c log(p̂_c / q̂_c) between the 2-D histograms of samples p [N, 2] and q [M, 2]
 * on `grid`, with p̂_c = (count_c + α)/(in-grid count + α·cells) (α = `pseudocount`). Points
 * outside the grid are left out of both histograms.
 */
export async function histogramKL(p: Tensor, q: Tensor, grid: HistogramGrid, opts: HistogramKlOptions = {}): Promise<number> {
  checkPair('histogramKL', p, q);
  if (opts === null) throw new TypeError('histogramKL: expected an options object, got null');
  checkOptions('histogramKL', opts, HISTOGRAM_KL_OPTIONS);
  const alpha = opts.pseudocount ?? 0.5;
  checkNumber('histogramKL', 'pseudocount', alpha, { min: 0, exclusiveMin: true });
  const kl = tidy(() => {
    const normalised = (counts: Tensor) => {
      const smoothed = add(counts, alpha);
      return smoothed.div(sum(smoothed));
    };
    const ph = normalised(histogramCells('histogramKL', p, grid));
    const qh = normalised(histogramCells('histogramKL', q, grid));
    // The non-finite counts ride along in the same read: a NaN row falls in no bin, so a sampler
    // that diverged everywhere still got a finite KL (the pseudocount's alone).
    return concat([reshape(sum(mul(ph, sub(ph.log(), qh.log()))), [1]), nonFiniteRows(p), nonFiniteRows(q)], 0);
  });
  const [value, ...counts] = await readNumbers(kl);
  refuseNonFinite('histogramKL', counts, [['p', p], ['q', q]]);
  return value!;
}
