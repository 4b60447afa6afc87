// Normalisation layers and the classification loss, composed from the primitives (their
// derivatives, batching and compilation come from the primitives' rules): layerNorm, groupNorm,
// softmaxCrossEntropy. Mean and variance are computed in two passes (the mean first, then the
// mean of squared deviations), never as E[x²] − E[x]², which cancels catastrophically when
// |mean| ≫ std.

import { checkNumber, checkOneOf, checkOptions, showValue } from '@scorch/options';
import { fmtShape, keepdimsShape, normalizeAxes, normalizeAxis, shapesEqual } from '../shape.js';
import { arange } from '../creation.js';
import { add, equal, logSoftmax, mean, mul, neg, reshape, rsqrt, sub, sum, unsqueeze, where } from '../ops.js';
import { MOVE_TO_DEVICE, Tensor, checkTensor, composite } from '../tensor.js';
import { checkSameDevice } from './conv.js';

/** Default ε added to the variance: 1e-5, as torch.nn.LayerNorm and torch.nn.GroupNorm. */
export const NORM_EPS_DEFAULT = 1e-5;

export interface NormOptions {
  /** Scale γ, multiplied after normalising. Default none (γ = 1). */
  weight?: Tensor;
  /** Shift β, added after scaling. Default none (β = 0). */
  bias?: Tensor;
  /** Added to the variance before the square root. Default 1e-5 (PyTorch's LayerNorm/GroupNorm). */
  eps?: number;
}

const NORM_OPTIONS = ['weight', 'bias', 'eps'] as const satisfies readonly (keyof NormOptions)[];

function checkFloat(op: string, x: Tensor, what: string): void {
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new TypeError(`${op}: ${what} must be float32 or float64, got ${x.dtype}`);
}

/** (x − mean) / sqrt(var + eps) over `axes` (sorted), the variance biased (divided by n). */
function standardise(x: Tensor, axes: readonly number[], eps: number): Tensor {
  const centred = sub(x, mean(x, axes, true));
  const variance = mean(mul(centred, centred), axes, true);
  return mul(centred, rsqrt(add(variance, eps)));
}

/** Reads and checks the affine parameters: each must have `shape` and x's dtype and device. */
function affine(op: string, x: Tensor, opts: NormOptions, shape: readonly number[]): { weight?: Tensor; bias?: Tensor; eps: number } {
  checkOptions(op, opts, NORM_OPTIONS);
  const { weight, bias, eps = NORM_EPS_DEFAULT } = opts;
  checkNumber(op, 'eps', eps, { min: 0 });
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const) {
    if (p === undefined) continue;
    checkTensor(op, p, name);
    if (!shapesEqual(p.shape, shape)) throw new Error(`${op}: ${name} has shape ${fmtShape(p.shape)}, expected ${fmtShape(shape)} for input ${fmtShape(x.shape)}`);
    if (p.dtype !== x.dtype) throw new TypeError(`${op}: ${name} is ${p.dtype} but the input is ${x.dtype}`);
    checkSameDevice(op, name, p, x);
  }
  return { weight, bias, eps };
}

/** Which axes layerNorm normalises over: PyTorch's trailing `normalizedShape`, or explicit axes. */
export type LayerNormAxes = number | readonly number[] | { axes: number | readonly number[] };

/**
 * Layer normalisation (Ba et al. 2016), as torch.nn.functional.layer_norm:
 * y = (x − E[x]) / sqrt(Var[x] + eps) · weight + bias, mean and biased variance over the
 * normalised axes.
 *
 * `normalized` is either PyTorch's `normalizedShape` (a number or a list equal to x's trailing
 * dimensions) or `{ axes }` (any axes, negative counting from the end). `weight` and `bias` have
 * the normalised axes' sizes in axis order (for trailing axes: `normalizedShape`).
 * An axis of size 1 normalises to 0 (then y = bias) when eps > 0; with eps = 0, equal values are
 * 0 · 1/√0 = NaN (as PyTorch). eps defaults to 1e-5 (PyTorch).
 */
export function layerNorm(x: Tensor, normalized: LayerNormAxes, opts: NormOptions = {}): Tensor {
  return composite(() => {
    checkTensor('layerNorm', x, 'input');
    checkFloat('layerNorm', x, 'input');
    let axes: number[];
    if (typeof normalized === 'object' && normalized !== null && !Array.isArray(normalized)) {
      checkOptions('layerNorm', normalized, ['axes']);
      const given = (normalized as { axes: number | readonly number[] }).axes;
      // normalizeAxes reads undefined as every axis: here that would normalise across the batch.
      if (given === undefined) throw new TypeError('layerNorm: { axes } must name the axes to normalise (an axis or a list of them), got none');
      axes = normalizeAxes('layerNorm', given, x.rank);
      if (axes.length === 0) throw new Error('layerNorm: axes must name at least one axis');
    } else {
      if (typeof normalized !== 'number' && !Array.isArray(normalized)) {
        throw new TypeError(`layerNorm: normalized must be a normalizedShape (a number or a list of them) or { axes }, got ${showValue(normalized)}`);
      }
      const shape = typeof normalized === 'number' ? [normalized] : [...(normalized as readonly number[])];
      const trailing = x.shape.slice(x.rank - shape.length);
      if (shape.length === 0 || shape.length > x.rank || !shapesEqual(trailing, shape)) {
        throw new Error(`layerNorm: normalizedShape ${fmtShape(shape)} must be a non-empty list equal to the trailing dimensions of the input ${fmtShape(x.shape)}`);
      }
      axes = shape.map((_, i) => x.rank - shape.length + i);
    }
    const paramShape = axes.map((a) => x.shape[a]!);
    const { weight, bias, eps } = affine('layerNorm', x, opts, paramShape);
    let y = standardise(x, axes, eps);
    // The parameters carry the normalised axes in order; size-1 axes elsewhere broadcast them.
    const lifted = keepdimsShape(x.shape, x.shape.map((_, i) => i).filter((i) => !axes.includes(i)));
    if (weight) y = mul(y, reshape(weight, lifted));
    if (bias) y = add(y, reshape(bias, lifted));
    return y;
  });
}

/**
 * Group normalisation (Wu & He 2018), as torch.nn.functional.group_norm: x is [N, C, ...]; the C
 * channels split into `groups` consecutive groups and each (example, group) is standardised over
 * its channels and all spatial positions; then y·weight[c] + bias[c] per channel (shape [C]).
 * groups = 1 is layer norm over [C, ...]; groups = C is instance norm. eps defaults to 1e-5.
 */
export function groupNorm(x: Tensor, groups: number, opts: NormOptions = {}): Tensor {
  return composite(() => {
    checkTensor('groupNorm', x, 'input');
    checkFloat('groupNorm', x, 'input');
    if (x.rank < 2) throw new Error(`groupNorm: input must be [N, C, ...] (rank >= 2), got ${fmtShape(x.shape)}`);
    const [n, c] = x.shape as [number, number];
    if (!Number.isInteger(groups) || groups < 1) throw new RangeError(`groupNorm: groups must be a positive integer, got ${showValue(groups)}`);
    if (c % groups !== 0) throw new Error(`groupNorm: ${c} channels of ${fmtShape(x.shape)} are not divisible by ${groups} groups`);
    const { weight, bias, eps } = affine('groupNorm', x, opts, [c]);
    const grouped = reshape(x, [n, groups, x.size === 0 ? 0 : -1]);
    let y = reshape(standardise(grouped, [2], eps), x.shape);
    const perChannel = [1, c, ...x.shape.slice(2).map(() => 1)];
    if (weight) y = mul(y, reshape(weight, perChannel));
    if (bias) y = add(y, reshape(bias, perChannel));
    return y;
  });
}

export type Reduction = 'mean' | 'sum' | 'none';
const REDUCTIONS: readonly Reduction[] = ['mean', 'sum', 'none'];

export interface SoftmaxCrossEntropyOptions {
  /** 'mean' (default, as PyTorch: over the examples), 'sum', or 'none' (one loss per example). */
  reduction?: Reduction;
  /** The class axis of the logits. Default −1 (last; optax and TF convention — PyTorch uses 1). */
  axis?: number;
}

/**
 * Cross-entropy of softmax(logits) against targets, computed as logsumexp(z) − z_y through
 * logSoftmax (stable for large logits):
 * - integer labels (int32, the logits' shape without the class axis): loss = −log softmax(z)[y];
 * - probability targets (the logits' shape and dtype): loss = −Σ_k p_k log softmax(z)_k.
 *
 * A label outside [0, C) is an error on the CPU when the labels are a concrete tensor (they are
 * read to check); on WebGPU and under jit they are not read, and such a label contributes 0.
 * Probability targets are not checked to sum to 1. The loss is differentiable in the logits
 * (and in probability targets).
 */
export function softmaxCrossEntropy(logits: Tensor, targets: Tensor, opts: SoftmaxCrossEntropyOptions = {}): Tensor {
  return composite(() => {
    const op = 'softmaxCrossEntropy';
    checkTensor(op, logits, 'logits');
    checkTensor(op, targets, 'targets');
    checkFloat(op, logits, 'logits');
    if (targets.device !== logits.device) throw new Error(`${op}: targets are on '${targets.device}' but the logits are on '${logits.device}'; ${MOVE_TO_DEVICE}`);
    checkOptions(op, opts, ['reduction', 'axis']);
    const { reduction = 'mean', axis = -1 } = opts;
    checkOneOf(op, 'reduction', reduction, REDUCTIONS);
    if (logits.rank === 0) throw new Error(`${op}: logits must have a class axis, got a scalar`);
    const a = normalizeAxis(op, axis, logits.rank);
    const classes = logits.shape[a]!;
    const logp = logSoftmax(logits, a);
    let losses: Tensor;
    if (targets.dtype === 'int32') {
      const want = logits.shape.filter((_, i) => i !== a);
      if (!shapesEqual(targets.shape, want)) {
        throw new Error(`${op}: integer labels have shape ${fmtShape(targets.shape)}, expected ${fmtShape(want)} (the logits ${fmtShape(logits.shape)} without class axis ${a})`);
      }
      if (targets._trace === null && targets.device === 'cpu') {
        const labels = targets.dataSync();
        for (let i = 0; i < labels.length; i++) {
          const y = labels[i]!;
          if (y < 0 || y >= classes) throw new RangeError(`${op}: label ${y} at position ${i} is out of range for ${classes} classes (expected 0 <= label < ${classes})`);
        }
      }
      const ids = reshape(arange(0, classes, 1, { dtype: 'int32', device: logits.device }), logits.shape.map((d, i) => (i === a ? d : 1)));
      const oneHot = equal(unsqueeze(targets, a), ids);
      losses = neg(sum(where(oneHot, logp, 0), a));
    } else {
      if (targets.dtype !== logits.dtype) throw new TypeError(`${op}: targets must be int32 labels or probabilities of the logits' dtype (${logits.dtype}), got ${targets.dtype}`);
      if (!shapesEqual(targets.shape, logits.shape)) {
        throw new Error(`${op}: probability targets have shape ${fmtShape(targets.shape)}, expected the logits' shape ${fmtShape(logits.shape)}`);
      }
      losses = neg(sum(mul(targets, logp), a));
    }
    if (reduction === 'none') return losses;
    if (reduction === 'sum') return sum(losses);
    return mean(losses);
  });
}
