// Gaussian kernel density estimates as score targets: p̂(x) = (1/n) Σᵢ N(x; xᵢ, H), H = diag(h²),
// whose score ∇log p̂(x) = Σᵢ wᵢ(x)(xᵢ − x)/h² (wᵢ the softmax of the kernels' log-densities)
// gives explicit score matching a target when the true ∇log p is unknown. Everything stays on
// the device: the bandwidth is a tensor, and no value is read back.
//
// The bandwidth is per dimension (a diagonal H): h_k = factor · σ̂_k with σ̂_k the sample
// standard deviation (Bessel-corrected) of dimension k and Scott's factor n^(−1/(d+4))
// (Scott 1992, "Multivariate Density Estimation") by default.

import { Tensor, checkOneOf, checkOptions, composite, fmtShape, logsumexp, matmul, mul, softmax, sqrt, sub, sum, tensor, tidy, transpose, variance } from '@scorch/tensor';
import { type ScoreFunction, checkBatch, optionNames } from './conventions.js';

export type BandwidthRule = 'scott' | 'silverman';

export interface KdeOptions {
  /**
   * Per-dimension bandwidth h: 'scott' (default, h_k = n^(−1/(d+4)) σ̂_k), 'silverman'
   * (h_k = (4/(d+2))^(1/(d+4)) n^(−1/(d+4)) σ̂_k, Silverman 1986), one number for every
   * dimension, d numbers, or a [d] tensor. A rule gives h_k = 0 in a dimension where every data
   * point has the same value, and then the scores and log-densities are NaN (the density is not
   * a function there; scipy's gaussian_kde refuses such data): give a bandwidth for such data.
   * The rule is computed on the device, where no value is read back to check it.
   */
  bandwidth?: BandwidthRule | number | readonly number[] | Tensor;
}
const KDE_OPTIONS = optionNames<KdeOptions>()(['bandwidth']);

function checkKdeOptions(where: string, opts: unknown): void {
  if (opts === null) throw new TypeError(`${where}: expected an options object, got null`);
  checkOptions(where, opts, KDE_OPTIONS);
}

/** The rule-of-thumb bandwidth per dimension, shape [d]. */
export function ruleOfThumbBandwidth(data: Tensor, rule: BandwidthRule = 'scott'): Tensor {
  return composite(() => {
    checkBatch('ruleOfThumbBandwidth', data, 'data');
    const [n, d] = data.shape as [number, number];
    if (n < 2) throw new Error(`ruleOfThumbBandwidth: need at least 2 data points to estimate a spread, got ${n}`);
    checkOneOf('ruleOfThumbBandwidth', 'rule', rule, ['scott', 'silverman'] as const);
    const scott = n ** (-1 / (d + 4));
    const factor = rule === 'scott' ? scott : (4 / (d + 2)) ** (1 / (d + 4)) * scott;
    return sqrt(variance(data, 0, { correction: 1 })).mul(factor);
  });
}

/** What a bandwidth that is none of the accepted kinds is, for a message. */
function describeBandwidth(v: unknown): string {
  return v === null ? 'null' : typeof v === 'object' ? `an object (${Object.prototype.toString.call(v).slice(8, -1)})` : `${typeof v} ${String(v)}`;
}

/** Numbers as String writes them (NaN, Infinity), where JSON.stringify would write null. */
function formatBandwidth(bw: number | readonly unknown[]): string {
  const one = (v: unknown) => (typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v));
  return Array.isArray(bw) ? `[${bw.map(one).join(', ')}]` : one(bw);
}

function resolveBandwidth(where: string, data: Tensor, bandwidth: KdeOptions['bandwidth']): Tensor {
  const d = data.shape[1]!;
  const bw = bandwidth ?? 'scott';
  if (bw === 'scott' || bw === 'silverman') return ruleOfThumbBandwidth(data, bw);
  if (typeof bw === 'string') throw new Error(`${where}: unknown bandwidth rule ${JSON.stringify(bw)}; expected 'scott', 'silverman', a number, d numbers or a [d] tensor`);
  if (typeof bw === 'number' || Array.isArray(bw)) {
    const values = typeof bw === 'number' ? new Array<number>(d).fill(bw) : [...(bw as readonly number[])];
    if (values.length !== d) throw new RangeError(`${where}: bandwidth needs one number or ${d} numbers (one per dimension), got ${values.length} numbers`);
    if (!values.every((h) => typeof h === 'number' && h > 0 && Number.isFinite(h))) {
      throw new RangeError(`${where}: bandwidth must be positive and finite, got ${formatBandwidth(bw)}`);
    }
    return tensor(Float64Array.from(values), { dtype: data.dtype, device: data.device });
  }
  if (!(bw instanceof Tensor)) throw new TypeError(`${where}: bandwidth must be 'scott', 'silverman', a number, ${d} numbers or a [${d}] tensor, got ${describeBandwidth(bw)}`);
  const t = bw;
  if (t.rank !== 1 || t.shape[0] !== d || t.dtype !== data.dtype) throw new Error(`${where}: a bandwidth tensor must have shape [${d}] and the data's dtype, got ${t.dtype} ${fmtShape(t.shape)}`);
  if (t.device !== data.device) throw new Error(`${where}: the bandwidth tensor is on '${t.device}' but the KDE data on '${data.device}'`);
  return t;
}

/**
 * −½‖(x − xᵢ)/h‖² for every query row and data row: [m, n], from the centred, scaled rows
 * a = (x − c)/h and b = (xᵢ − c)/h. The squares are expanded (2a·b − ‖a‖² − ‖b‖², one matmul
 * and no [m, n, d] temporary), and each entry then carries a rounding error of a few units of
 * roundoff times ‖a‖² + ‖b‖², not of the (much smaller) result. Centring at c = the data mean
 * keeps that error to the data's spread: without it, data at a distance D from the origin loses
 * ~u(D/h)² of the exponent, which in float32 is the whole weight once D/h reaches ~10³ (data
 * offset by 100 with a Scott bandwidth already gives 1% errors in the score).
 */
function kernelExponents(x: Tensor, centredData: Tensor, centre: Tensor, h: Tensor): Tensor {
  const a = sub(x, centre).div(h);
  const b = centredData.div(h);
  const cross = matmul(a, transpose(b));
  const sq = sub(sub(mul(cross, 2), sum(mul(a, a), 1, true)), sum(mul(b, b), 1).reshape([1, b.shape[0]!]));
  return mul(sq, 0.5);
}

/** The data's column means [1, d] and the data centred at them: shifts that leave the KDE unchanged. */
function centred(data: Tensor): { centre: Tensor; centredData: Tensor } {
  const centre = data.mean(0, true);
  return { centre, centredData: sub(data, centre) };
}

function checkQuery(where: string, x: Tensor, data: Tensor): void {
  checkBatch(where, x);
  if (x.shape[1] !== data.shape[1]) throw new Error(`${where}: x has ${x.shape[1]} columns but the KDE data has ${data.shape[1]} (shape ${fmtShape(data.shape)})`);
  if (x.dtype !== data.dtype) throw new TypeError(`${where}: x is ${x.dtype} but the KDE data is ${data.dtype}`);
  if (x.device !== data.device) throw new Error(`${where}: x is on '${x.device}' but the KDE data on '${data.device}'`);
}

/**
 * A KDE's function with the tensors it holds (the centred data, the bandwidth and what is made
 * from them, not the caller's own `data` or bandwidth tensor): `dispose()` frees them, as a
 * module's does; calling it afterwards is refused.
 */
export type KdeFunction<F> = F & { dispose(): void };

/** `fn`, refusing calls once dispose() has freed `held`. */
function holding<F extends (x: Tensor) => Tensor>(where: string, fn: F, held: readonly Tensor[]): KdeFunction<F> {
  let disposed = false;
  const call = ((x: Tensor) => {
    if (disposed) throw new Error(`${where}: this KDE was disposed (its dispose() freed the centred data and bandwidth it holds); build a new one to evaluate it again`);
    return fn(x);
  }) as KdeFunction<F>;
  call.dispose = () => {
    if (disposed) return;
    disposed = true;
    for (const t of held) t.dispose();
  };
  return call;
}

/**
 * The score of a Gaussian KDE of `data` [n, d]: x [m, d] ↦ ∇log p̂(x) = (Σᵢ wᵢ(x) xᵢ − x)/h²,
 * w(x) = softmax over i of −½‖(x − xᵢ)/h‖². The function holds a centred copy of the data and
 * the bandwidth: free them with its `dispose()` (or build and use it inside one `tidy`). It reads
 * `data` only while being built.
 */
export function kdeScore(data: Tensor, opts: KdeOptions = {}): KdeFunction<ScoreFunction> {
  checkBatch('kdeScore', data, 'data');
  checkKdeOptions('kdeScore', opts);
  // Made in a tidy so that nothing but the held tensors outlives the call.
  const { h, h2, centre, centredData } = tidy(() => {
    const h = resolveBandwidth('kdeScore', data, opts.bandwidth);
    return { h, h2: mul(h, h), ...centred(data) };
  });
  const score = (x: Tensor) =>
    composite(() => {
      checkQuery('kdeScore', x, data);
      const weights = softmax(kernelExponents(x, centredData, centre, h), 1);
      // Σᵢ wᵢxᵢ − x in centred coordinates too: the difference is small beside an offset.
      return sub(matmul(weights, centredData), sub(x, centre)).div(h2);
    });
  return holding('kdeScore', score, [h2, centre, centredData, ...(h === opts.bandwidth ? [] : [h])]);
}

/** log p̂(x) of the same KDE, shape [m]; like kdeScore's, the function has a `dispose()`. */
export function kdeLogDensity(data: Tensor, opts: KdeOptions = {}): KdeFunction<(x: Tensor) => Tensor> {
  checkBatch('kdeLogDensity', data, 'data');
  checkKdeOptions('kdeLogDensity', opts);
  const [n, d] = data.shape as [number, number];
  const { h, logNormaliser, centre, centredData } = tidy(() => {
    const h = resolveBandwidth('kdeLogDensity', data, opts.bandwidth);
    // log N(0; 0, diag h²) = −(d/2) log 2π − Σ log h_k, and the 1/n of the mixture.
    const logNormaliser = sum(h.log()).neg().sub(0.5 * d * Math.log(2 * Math.PI) + Math.log(n));
    return { h, logNormaliser, ...centred(data) };
  });
  const logDensity = (x: Tensor) =>
    composite(() => {
      checkQuery('kdeLogDensity', x, data);
      return logsumexp(kernelExponents(x, centredData, centre, h), 1).add(logNormaliser);
    });
  return holding('kdeLogDensity', logDensity, [logNormaliser, centre, centredData, ...(h === opts.bandwidth ? [] : [h])]);
}
