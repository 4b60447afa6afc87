// Convolution, transposed convolution, pooling and upsampling on NCHW tensors, as PyTorch lays
// them out, composed from the primitives so grad, jvp, vmap and jit reach them through the
// primitives' rules:
// - conv2d is im2col: zero padding, then each of the kh·kw kernel taps is a strided window of
//   the padded input (a stride s is a contiguous slice reshaped to [n, s] keeping column 0, so no
//   index tensors), the windows concatenated into columns [N, G, C/G·kh·kw, Ho·Wo] and one
//   batched matmul with the weights [G, O/G, C/G·kh·kw] gives [N, O, Ho, Wo];
// - convTranspose2d is conv2d's adjoint: with dilation 1 and a stride above 1, one stride-1
//   convolution of the input whose output channels are the stride's sub-pixel phases, then
//   depth-to-space (subPixelTranspose); otherwise a stride-1 convolution of the input dilated by
//   the stride (zeros between entries) with the flipped, channel-transposed kernel;
// - pools reduce the same windows; upsampling gathers rows and columns at computed indices and
//   blends them with computed weights.

import { checkBoolean, checkOneOf, checkOptions, everyEntry, showValue } from '@scorch/options';
import { assertAllocatable, fmtShape } from '../shape.js';
import { arange, tensor } from '../creation.js';
import {
  add, concat, constant, equal, greater, indexSelect, matmul, max, mean, min, mul, narrow, notEqual, pad, permute,
  reshape, sum, unsqueeze, where,
} from '../ops.js';
import { MOVE_TO_DEVICE, Tensor, checkTensor, composite } from '../tensor.js';

/** A size per spatial axis: one number for both (height, width), or [height, width]. */
export type Size2 = number | readonly [number, number];

function checkImage(op: string, x: unknown, what = 'input'): asserts x is Tensor {
  checkTensor(op, x, what);
  if (x.rank !== 4) throw new Error(`${op}: ${what} must be [N, C, H, W] (rank 4), got ${fmtShape(x.shape)}`);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new TypeError(`${op}: ${what} must be float32 or float64, got ${x.dtype}`);
}

/** Errors when x [N, C, H, W] has no rows or no columns: `what` (the input's, the kernel's) extents must be at least 1. */
function checkSpatial(op: string, x: Tensor, what: string): void {
  if (x.shape[2]! < 1 || x.shape[3]! < 1) throw new Error(`${op}: ${what} ${fmtShape(x.shape)} has an empty height or width; both must be at least 1`);
}

/** [height, width] from a Size2, each an integer >= min. */
function pair(op: string, name: string, v: unknown, min: number): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !everyEntry(p, (n) => Number.isInteger(n) && (n as number) >= min)) {
    throw new RangeError(`${op}: ${name} must be an integer >= ${min} or a [height, width] pair of them, got ${showValue(v)}`);
  }
  return [p[0] as number, p[1] as number];
}

/**
 * Output extent of a window sweep: floor((n + 2p − d(k − 1) − 1) / s) + 1, checked >= 1. d is
 * null for the pools, which take no dilation (their error does not mention one).
 */
function outExtent(op: string, axis: string, n: number, k: number, s: number, p: number, d: number | null): number {
  const out = Math.floor((n + 2 * p - (d ?? 1) * (k - 1) - 1) / s) + 1;
  if (out < 1) {
    const kernel = d === null ? `kernel ${k}` : `dilated kernel ${d * (k - 1) + 1}`;
    throw new Error(`${op}: output ${axis} would be ${out} (input ${n}, padding ${p}, kernel ${k}${d === null ? '' : `, dilation ${d}`}, stride ${s}); the padded input ${n + 2 * p} must be at least the ${kernel}`);
  }
  return out;
}

/** Entries start, start + step, …, start + (count − 1)·step of `axis`; x must extend to start + count·step. */
function everyNth(x: Tensor, axis: number, start: number, count: number, step: number): Tensor {
  const window = narrow(x, axis, start, count * step);
  if (step === 1) return window;
  const split = [...window.shape];
  split.splice(axis, 1, count, step);
  const kept = [...window.shape];
  kept[axis] = count;
  return reshape(narrow(reshape(window, split), axis + 1, 0, 1), kept);
}

interface Sweep {
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  out: [number, number];
}

/**
 * The kh·kw tap windows of xp [N, C, Hp, Wp] (already padded, with room for the last stride) as
 * [N, C, kh·kw, Ho, Wo], taps in row-major (i, j) order as a weight's [kh, kw] flattens.
 */
function windows(xp: Tensor, { kernel: [kh, kw], stride: [sh, sw], dilation: [dh, dw], out: [ho, wo] }: Sweep): Tensor {
  const taps: Tensor[] = [];
  for (let i = 0; i < kh; i++) {
    const rows = everyNth(xp, 2, i * dh, ho, sh);
    for (let j = 0; j < kw; j++) taps.push(unsqueeze(everyNth(rows, 3, j * dw, wo, sw), 2));
  }
  return concat(taps, 2);
}

/** Pads x [N, C, H, W] by `padding` on both sides, plus the tail a strided sweep reads past its last window. */
function padForSweep(x: Tensor, padding: [number, number], sweep: Sweep, value = 0): Tensor {
  const tail = [0, 1].map((a) => {
    const reach = (sweep.kernel[a]! - 1) * sweep.dilation[a]! + sweep.out[a]! * sweep.stride[a]!;
    return Math.max(0, reach - (x.shape[2 + a]! + 2 * padding[a]!));
  });
  const widths: [number, number][] = [[0, 0], [0, 0], [padding[0], padding[0] + tail[0]!], [padding[1], padding[1] + tail[1]!]];
  const padded = pad(x, widths);
  if (value === 0 || (padding[0] === 0 && padding[1] === 0)) return padded;
  // Positions outside x read `value` (−∞ for max pooling): a 0/value mask added to the padded input.
  const inside = pad(constant(1, x.shape.slice(2), x.dtype, x.device), widths.slice(2));
  return add(padded, where(greater(inside, 0.5), constant(0, [], x.dtype, x.device), value));
}

/** The convolution of an already padded input: [N, C, Hp, Wp] ⋆ [O, C/G, kh, kw] → [N, O, Ho, Wo]. */
function convolvePadded(xp: Tensor, w: Tensor, sweep: Sweep, groups: number): Tensor {
  const [n, c] = xp.shape as [number, number];
  const o = w.shape[0]!;
  const [ho, wo] = sweep.out;
  const taps = sweep.kernel[0] * sweep.kernel[1];
  const cols = reshape(windows(xp, sweep), [n, groups, (c / groups) * taps, ho * wo]);
  const weights = reshape(w, groups === 1 ? [o, (c / groups) * taps] : [groups, o / groups, (c / groups) * taps]);
  // G = 1: [O, K] · [N, K, P]; otherwise [G, O/G, K] · [N, G, K, P] (the weight broadcasts over N).
  const product = matmul(weights, groups === 1 ? reshape(cols, [n, (c / groups) * taps, ho * wo]) : cols);
  return reshape(product, [n, o, ho, wo]);
}

/** Errors unless t (`what`: the weight, the bias) is on x's device, before any work (also normalization.ts's). */
export function checkSameDevice(op: string, what: string, t: Tensor, x: Tensor): void {
  if (t.device !== x.device) throw new Error(`${op}: ${what} is on '${t.device}' but the input is on '${x.device}'; ${MOVE_TO_DEVICE}`);
}

/** Checks an optional bias against the output channels o and the input x's dtype and device (before any work). */
function checkBias(op: string, bias: Tensor | undefined, o: number, x: Tensor): void {
  if (bias === undefined) return;
  checkTensor(op, bias, 'bias');
  if (bias.rank !== 1 || bias.shape[0] !== o) throw new Error(`${op}: bias has shape ${fmtShape(bias.shape)}, expected [${o}] (one per output channel)`);
  if (bias.dtype !== x.dtype) throw new TypeError(`${op}: bias is ${bias.dtype} but the input is ${x.dtype}`);
  checkSameDevice(op, 'bias', bias, x);
}

/** y [N, O, Ho, Wo] + bias[o] (checked by checkBias). */
function addChannelBias(y: Tensor, bias: Tensor | undefined): Tensor {
  return bias === undefined ? y : add(y, reshape(bias, [1, y.shape[1]!, 1, 1]));
}

export interface Conv2dOptions {
  /** Added per output channel, shape [O]. Default none. */
  bias?: Tensor;
  /** Step between windows. Default 1 (PyTorch). */
  stride?: Size2;
  /** Zeros added on both sides of each spatial axis. Default 0 (PyTorch). */
  padding?: Size2;
  /** Spacing between kernel taps. Default 1 (PyTorch). */
  dilation?: Size2;
  /** Channel groups: input and output channels split into `groups` independent convolutions. Default 1. */
  groups?: number;
}

const CONV_OPTIONS = ['bias', 'stride', 'padding', 'dilation', 'groups'] as const satisfies readonly (keyof Conv2dOptions)[];

function checkGroups(op: string, groups: unknown, channels: Record<string, number>): number {
  if (!(typeof groups === 'number' && Number.isInteger(groups) && groups >= 1)) throw new RangeError(`${op}: groups must be a positive integer, got ${showValue(groups)}`);
  for (const [what, n] of Object.entries(channels)) {
    if (n % groups !== 0) throw new Error(`${op}: ${what} (${n}) are not divisible by groups (${groups})`);
  }
  return groups;
}

/**
 * 2-D convolution (cross-correlation, as torch.nn.functional.conv2d) of x [N, C, H, W] with
 * weights w [O, C/groups, kh, kw]:
 * y[n, o, i, j] = bias[o] + Σ_{c ∈ group(o), a, b} w[o, c, a, b] · x_pad[n, c, i·sh + a·dh, j·sw + b·dw],
 * with Ho = ⌊(H + 2ph − dh(kh − 1) − 1) / sh⌋ + 1 (likewise Wo); windows that do not fit are
 * dropped (PyTorch's floor). Zero padding. Errors for mismatched channels, channels not divisible
 * by groups, negative padding, stride or dilation < 1, and an output extent < 1.
 */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  return composite(() => {
    const op = 'conv2d';
    checkImage(op, x);
    checkImage(op, w, 'weight');
    checkOptions(op, opts, CONV_OPTIONS);
    if (w.dtype !== x.dtype) throw new TypeError(`${op}: weight is ${w.dtype} but the input is ${x.dtype}`);
    checkSameDevice(op, 'weight', w, x);
    const stride = pair(op, 'stride', opts.stride ?? 1, 1);
    const padding = pair(op, 'padding', opts.padding ?? 0, 0);
    const dilation = pair(op, 'dilation', opts.dilation ?? 1, 1);
    const [, c, h, wd] = x.shape as [number, number, number, number];
    const [o, cg, kh, kw] = w.shape as [number, number, number, number];
    checkSpatial(op, w, 'the kernel of weight');
    const groups = checkGroups(op, opts.groups ?? 1, { 'input channels': c, 'output channels': o });
    if (cg * groups !== c) {
      throw new Error(`${op}: weight ${fmtShape(w.shape)} expects ${cg * groups} input channels (${cg} per group × ${groups} groups) but the input ${fmtShape(x.shape)} has ${c}`);
    }
    const out: [number, number] = [
      outExtent(op, 'height', h, kh, stride[0], padding[0], dilation[0]),
      outExtent(op, 'width', wd, kw, stride[1], padding[1], dilation[1]),
    ];
    checkBias(op, opts.bias, o, x);
    const sweep: Sweep = { kernel: [kh, kw], stride, dilation, out };
    return addChannelBias(convolvePadded(padForSweep(x, padding, sweep), w, sweep, groups), opts.bias);
  });
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows/columns added at the bottom/right of the output (< stride or < dilation). Default 0. */
  outputPadding?: Size2;
}

/** Zero-pads (positive) or crops (negative) `axis` of x by lo before and hi after. */
function padOrCrop(x: Tensor, axis: number, lo: number, hi: number): Tensor {
  const widths = x.shape.map((): [number, number] => [0, 0]);
  widths[axis] = [Math.max(0, lo), Math.max(0, hi)];
  const padded = pad(x, widths);
  const start = Math.max(0, -lo);
  return narrow(padded, axis, start, padded.shape[axis]! - start - Math.max(0, -hi));
}

/** Reverses `axis` (a small kernel axis) by slices. */
function reverseAxis(x: Tensor, axis: number): Tensor {
  const n = x.shape[axis]!;
  if (n <= 1) return x;
  return concat(Array.from({ length: n }, (_, i) => narrow(x, axis, n - 1 - i, 1)), axis);
}

/**
 * Transposed convolution (torch.nn.functional.conv_transpose2d): the adjoint of conv2d in its
 * input, ⟨conv2d(x, w), y⟩ = ⟨x, convTranspose2d(y, w)⟩ for equal stride, padding, dilation and
 * groups. y is [N, Cin, H, W], w is [Cin, Cout/groups, kh, kw] (conv2d's weight read with its
 * channel axes swapped), the output [N, Cout, Ho, Wo] with
 * Ho = (H − 1)·sh − 2ph + dh(kh − 1) + outputPadding_h + 1 (likewise Wo). outputPadding resolves
 * which of the input sizes that a strided conv2d maps to one output size is meant; it must be
 * smaller than the stride or the dilation (as PyTorch).
 */
export function convTranspose2d(y: Tensor, w: Tensor, opts: ConvTranspose2dOptions = {}): Tensor {
  return composite(() => {
    const op = 'convTranspose2d';
    checkImage(op, y);
    checkImage(op, w, 'weight');
    checkOptions(op, opts, [...CONV_OPTIONS, 'outputPadding']);
    if (w.dtype !== y.dtype) throw new TypeError(`${op}: weight is ${w.dtype} but the input is ${y.dtype}`);
    checkSameDevice(op, 'weight', w, y);
    const stride = pair(op, 'stride', opts.stride ?? 1, 1);
    const padding = pair(op, 'padding', opts.padding ?? 0, 0);
    const dilation = pair(op, 'dilation', opts.dilation ?? 1, 1);
    const outputPadding = pair(op, 'outputPadding', opts.outputPadding ?? 0, 0);
    const [n, cin, h, wd] = y.shape as [number, number, number, number];
    const [wcin, cog, kh, kw] = w.shape as [number, number, number, number];
    checkSpatial(op, y, 'input');
    checkSpatial(op, w, 'the kernel of weight');
    if (wcin !== cin) throw new Error(`${op}: weight ${fmtShape(w.shape)} expects ${wcin} input channels but the input ${fmtShape(y.shape)} has ${cin}`);
    const groups = checkGroups(op, opts.groups ?? 1, { 'input channels': cin });
    const cout = cog * groups;
    const kernel = [kh, kw];
    const extents = [h, wd];
    const out = [0, 1].map((a) => {
      const op_ = outputPadding[a]!;
      if (op_ >= stride[a]! && op_ >= dilation[a]!) {
        throw new RangeError(`${op}: outputPadding ${op_} must be smaller than the stride (${stride[a]}) or the dilation (${dilation[a]})`);
      }
      const size = (extents[a]! - 1) * stride[a]! - 2 * padding[a]! + dilation[a]! * (kernel[a]! - 1) + op_ + 1;
      if (size < 1) throw new Error(`${op}: output ${a === 0 ? 'height' : 'width'} would be ${size} (input ${extents[a]}, stride ${stride[a]}, padding ${padding[a]}, kernel ${kernel[a]}, dilation ${dilation[a]}, outputPadding ${op_})`);
      return size;
    }) as [number, number];
    checkBias(op, opts.bias, cout, y);
    if ((stride[0] > 1 || stride[1] > 1) && dilation[0] === 1 && dilation[1] === 1) {
      return addChannelBias(subPixelTranspose(y, w, stride, padding, out, groups), opts.bias);
    }
    // Dilate by the stride: [.., H, 1, W, 1] padded to [.., H, sh, W, sw] is H·sh rows, of which the
    // last sh − 1 (zeros) are cropped below together with the convolution's padding.
    let z = y;
    if (stride[0] > 1 || stride[1] > 1) {
      const spread = pad(reshape(y, [n, cin, h, 1, wd, 1]), [[0, 0], [0, 0], [0, 0], [0, stride[0] - 1], [0, 0], [0, stride[1] - 1]]);
      z = reshape(spread, [n, cin, h * stride[0], wd * stride[1]]);
    }
    for (const a of [0, 1]) {
      const reach = dilation[a]! * (kernel[a]! - 1);
      z = padOrCrop(z, 2 + a, reach - padding[a]!, reach - padding[a]! + outputPadding[a]! - (stride[a]! - 1));
    }
    // [Cin, Cout/G, kh, kw] → [Cout, Cin/G, kh, kw] per group, taps reversed.
    const perGroup = permute(reshape(w, [groups, cin / groups, cog, kh, kw]), [0, 2, 1, 3, 4]);
    const flipped = reverseAxis(reverseAxis(reshape(perGroup, [cout, cin / groups, kh, kw]), 2), 3);
    const sweep: Sweep = { kernel: [kh, kw], stride: [1, 1], dilation, out };
    return addChannelBias(convolvePadded(z, flipped, sweep, groups), opts.bias);
  });
}

/**
 * convTranspose2d for dilation 1 and a stride s > 1 as one stride-1 convolution of y with
 * sh·sw times the output channels, then depth-to-space: output row s·q + r (before the padding is
 * cropped) sums y[q − j]·w[r + s·j] over j < L = ⌈k/s⌉, so phase r of the output is a convolution
 * of y (padded by L − 1) with the flipped sub-kernel w[r], w[r + s], … (zero past k). Every
 * product term is a real one: the dilated input the general path convolves is (s − 1)/s zeros
 * per axis, so this computes s² times fewer (4× for stride 2, k = 4), the same sums otherwise.
 */
function subPixelTranspose(y: Tensor, w: Tensor, stride: [number, number], padding: [number, number], out: [number, number], groups: number): Tensor {
  const [n, cin, h, wd] = y.shape as [number, number, number, number];
  const [, cog, kh, kw] = w.shape as [number, number, number, number];
  const [sh, sw] = stride;
  const [lh, lw] = [Math.ceil(kh / sh), Math.ceil(kw / sw)];
  // Phase rows q of the uncropped output, enough to cover padding + out (its rows from `padding`).
  const [qh, qw] = [Math.ceil((padding[0] + out[0]) / sh), Math.ceil((padding[1] + out[1]) / sw)];
  // [Cin, Cout/G, kh, kw] → zero taps to [.., L·s] → [G, Cin/G, Cout/G, Lh, sh, Lw, sw] (tap r + s·j at
  // (j, r)), j reversed, → [G, Cout/G, sh, sw, Cin/G, Lh, Lw]: output channel (g, co, ry, rx).
  const taps = pad(w, [[0, 0], [0, 0], [0, lh * sh - kh], [0, lw * sw - kw]]);
  const split = reshape(taps, [groups, cin / groups, cog, lh, sh, lw, sw]);
  const flipped = reverseAxis(reverseAxis(split, 3), 5);
  const phases = reshape(permute(flipped, [0, 2, 4, 6, 1, 3, 5]), [groups * cog * sh * sw, cin / groups, lh, lw]);
  // y padded by L − 1 before and to qh + L − 1 rows in all (cropped where the phases need fewer).
  const rows = padOrCrop(padOrCrop(y, 2, lh - 1, qh - h), 3, lw - 1, qw - wd);
  const sweep: Sweep = { kernel: [lh, lw], stride: [1, 1], dilation: [1, 1], out: [qh, qw] };
  const conv = convolvePadded(rows, phases, sweep, groups);
  // [N, Cout·sh·sw, Qh, Qw] → [N, Cout, Qh, sh, Qw, sw] → [N, Cout, Qh·sh, Qw·sw], then the padding cropped.
  const cout = groups * cog;
  const spread = reshape(permute(reshape(conv, [n, cout, sh, sw, qh, qw]), [0, 1, 4, 2, 5, 3]), [n, cout, qh * sh, qw * sw]);
  return narrow(narrow(spread, 2, padding[0], out[0]), 3, padding[1], out[1]);
}

export interface Pool2dOptions {
  /** Step between windows. Default the kernel size (PyTorch). */
  stride?: Size2;
  /** Padding on both sides of each spatial axis, at most half the kernel (PyTorch's limit). Default 0. */
  padding?: Size2;
}

/**
 * The pooling windows of x as [N, C, kh·kw, Ho, Wo], padding read as `padValue`; with padding, also
 * `inside` [1, 1, kh·kw, Ho, Wo]: 1 where a tap reads an entry of x, 0 where it reads padding.
 */
function poolWindows(op: string, x: Tensor, kernelSize: Size2, opts: Pool2dOptions, padValue: number): { win: Tensor; inside?: Tensor } {
  checkImage(op, x);
  checkSpatial(op, x, 'input');
  checkOptions(op, opts, ['stride', 'padding']);
  const kernel = pair(op, 'kernelSize', kernelSize, 1);
  const stride = pair(op, 'stride', opts.stride ?? kernel, 1);
  const padding = pair(op, 'padding', opts.padding ?? 0, 0);
  for (const a of [0, 1]) {
    if (2 * padding[a]! > kernel[a]!) throw new RangeError(`${op}: padding ${padding[a]} must be at most half the kernel size ${kernel[a]}`);
  }
  const out: [number, number] = [
    outExtent(op, 'height', x.shape[2]!, kernel[0], stride[0], padding[0], null),
    outExtent(op, 'width', x.shape[3]!, kernel[1], stride[1], padding[1], null),
  ];
  const sweep: Sweep = { kernel, stride, dilation: [1, 1], out };
  const win = windows(padForSweep(x, padding, sweep, padValue), sweep);
  if (padding[0] === 0 && padding[1] === 0) return { win };
  const ones = constant(1, [1, 1, x.shape[2]!, x.shape[3]!], x.dtype, x.device);
  return { win, inside: windows(padForSweep(ones, padding, sweep), sweep) };
}

/**
 * Average pooling (torch.nn.functional.avg_pool2d with its defaults): the mean of each
 * kernel window of x [N, C, H, W], zero padding counted in the divisor (count_include_pad),
 * windows that do not fit dropped (ceil_mode false). Output [N, C, Ho, Wo], Ho as conv2d's.
 */
export function avgPool2d(x: Tensor, kernelSize: Size2, opts: Pool2dOptions = {}): Tensor {
  return composite(() => {
    return mean(poolWindows('avgPool2d', x, kernelSize, opts, 0).win, 2);
  });
}

/**
 * Max pooling (torch.nn.functional.max_pool2d): the maximum of each kernel window of
 * x [N, C, H, W]; padding reads −∞. A window holding NaN gives NaN. The gradient goes to one
 * entry per window: the first maximum in row-major window order (PyTorch's CPU kernel picks the
 * same; a tie is not split as `max` splits it).
 */
export function maxPool2d(x: Tensor, kernelSize: Size2, opts: Pool2dOptions = {}): Tensor {
  return composite(() => {
    const { win, inside } = poolWindows('maxPool2d', x, kernelSize, opts, -Infinity);
    const taps = win.shape[2]!;
    // The position of the first maximum (or first NaN) is computed without gradient, then the
    // window's entry there is selected: its value is the maximum, and only it receives gradient.
    // A padding tap (−∞) is never picked: in a window whose entries are all −∞ it would tie with
    // them and take the gradient away from the input; every window holds an entry of x.
    const top = max(win, 2, true).detach();
    const tap = reshape(arange(0, taps, 1, { dtype: x.dtype, device: x.device }), [1, 1, taps, 1, 1]);
    const isNaN = notEqual(win, win);
    const atTop = where(equal(win, top), tap, taps);
    const candidate = where(isNaN, tap, inside === undefined ? atTop : where(greater(inside, 0.5), atTop, taps));
    const first = min(candidate.detach(), 2, true);
    return sum(where(equal(tap, first), win, 0), 2);
  });
}

export type UpsampleMode = 'nearest' | 'bilinear';

export interface UpsampleOptions {
  /** Output [height, width] (or one number for both). Give this or scaleFactor. */
  size?: Size2;
  /** Output extent = ⌊input · scaleFactor⌋ per axis. Give this or size. */
  scaleFactor?: number | readonly [number, number];
  /** 'nearest' (default, as torch.nn.functional.interpolate) or 'bilinear'. */
  mode?: UpsampleMode;
  /** Bilinear only: corner pixels' centres aligned (true) or pixel areas (false, PyTorch's default). */
  alignCorners?: boolean;
}

/** Source indices and blend weights along one axis (host arithmetic: float32 for nearest, as PyTorch; float64 for bilinear). */
function sourcePositions(mode: UpsampleMode, alignCorners: boolean, inSize: number, outSize: number, factor: number | undefined): { i0: Int32Array; i1: Int32Array; l1: Float64Array } {
  // PyTorch's scale: 1/scaleFactor when a factor is given, else in/out; (in−1)/(out−1) with aligned corners.
  const scale = alignCorners ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : factor !== undefined ? 1 / factor : inSize / outSize;
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(mode === 'nearest' ? 0 : outSize);
  const l1 = new Float64Array(mode === 'nearest' ? 0 : outSize);
  // Nearest is ⌊i·scale⌋ in float32 (a float scale times float(i), floorf(i * scale)), as
  // PyTorch's kernel for a float32 [N, C, H, W] image (checked against PyTorch 1.13 over every
  // input width below 40, a dozen factors and output widths below 80); float64 differs where
  // i·scale is just below an integer. No shortcut for an output of the input's size or twice it:
  // PyTorch's channels-last path (which a contiguous one-channel image also takes) has them, its
  // ordinary path does not, so a factor of 1.2 on 4 rows reads rows 0, 0, 1, 2 as it does there.
  const scale32 = Math.fround(scale);
  for (let d = 0; d < outSize; d++) {
    if (mode === 'nearest') {
      const src = Math.floor(Math.fround(Math.fround(d) * scale32));
      i0[d] = Math.min(src, inSize - 1);
      continue;
    }
    const src = alignCorners ? d * scale : Math.max(0, (d + 0.5) * scale - 0.5);
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[d] = lo;
    i1[d] = lo < inSize - 1 ? lo + 1 : lo;
    l1[d] = src - lo;
  }
  return { i0, i1, l1 };
}

/**
 * Upsampling (torch.nn.functional.interpolate) of x [N, C, H, W] to `size` or by `scaleFactor`:
 * - nearest: out[i] = x[min(⌊i·scale⌋, H − 1)] per axis, ⌊i·scale⌋ in float32 as PyTorch's kernel
 *   for a float32 NCHW image (its channels-last path, which a one-channel image also takes, instead
 *   copies when Ho = H and halves the index when Ho = 2H: a factor of 1.2 differs there);
 * - bilinear: with alignCorners false (default), src = max(0, (i + ½)·scale − ½); with true,
 *   src = i·(H − 1)/(Ho − 1); out = (1 − λ)·x[⌊src⌋] + λ·x[⌊src⌋ + 1], λ = src − ⌊src⌋, the
 *   upper index clamped to H − 1; applied to rows, then columns. An axis whose output size is
 *   its input size is copied, whatever the factor (as PyTorch).
 * scale is 1/scaleFactor when a factor is given, else H/Ho, as PyTorch's; indices and weights
 * are computed on the host (nearest's indices exactly as PyTorch's, bilinear's in float64).
 * Also downsamples when the size is smaller. Differentiable in x.
 */
export function upsample(x: Tensor, opts: UpsampleOptions = {}): Tensor {
  return composite(() => {
    const op = 'upsample';
    checkImage(op, x);
    checkOptions(op, opts, ['size', 'scaleFactor', 'mode', 'alignCorners']);
    const { mode = 'nearest', alignCorners } = opts;
    checkOneOf(op, 'mode', mode, ['nearest', 'bilinear']);
    checkBoolean(op, 'alignCorners', alignCorners);
    if (alignCorners !== undefined && mode === 'nearest') throw new Error(`${op}: alignCorners applies to bilinear mode only (as PyTorch), not to 'nearest'`);
    if ((opts.size === undefined) === (opts.scaleFactor === undefined)) throw new Error(`${op}: give exactly one of size and scaleFactor`);
    checkSpatial(op, x, 'input');
    const inSize = [x.shape[2]!, x.shape[3]!];
    let outSize: number[];
    let factors: (number | undefined)[] = [undefined, undefined];
    if (opts.size !== undefined) outSize = pair(op, 'size', opts.size, 1);
    else {
      const f = typeof opts.scaleFactor === 'number' ? [opts.scaleFactor, opts.scaleFactor] : opts.scaleFactor;
      if (!Array.isArray(f) || f.length !== 2 || !f.every((v) => typeof v === 'number' && Number.isFinite(v) && v > 0)) {
        throw new RangeError(`${op}: scaleFactor must be a positive number or a [height, width] pair of them, got ${showValue(opts.scaleFactor)}`);
      }
      factors = f as number[];
      outSize = inSize.map((n, a) => Math.floor(n * f[a]!));
      outSize.forEach((n, a) => {
        if (n < 1) throw new Error(`${op}: scaleFactor ${f[a]} makes the output ${a === 0 ? 'height' : 'width'} ${n} from ${inSize[a]}; it must be at least 1`);
      });
    }
    // Refused before the host index arrays are built: an output no tensor can hold would fail
    // later (or, with arrays of ~10⁸ entries or more, abort the process).
    assertAllocatable([x.shape[0]!, x.shape[1]!, outSize[0]!, outSize[1]!], op);
    let out = x;
    for (const a of [0, 1]) {
      const axis = 2 + a;
      // An axis whose output size is its input size is copied: bilinear whatever the factor (as
      // PyTorch's kernel), nearest only at scale 1 (a factor of 1.2 on 4 rows reads 0, 0, 1, 2).
      if (outSize[a] === inSize[a] && (mode === 'bilinear' || factors[a] === undefined || factors[a] === 1)) continue;
      const { i0, i1, l1 } = sourcePositions(mode, alignCorners ?? false, inSize[a]!, outSize[a]!, factors[a]);
      // The indices are in [0, H) by construction: int32 tensors, not checked again by indexSelect.
      const rows = (i: Int32Array): Tensor => indexSelect(out, axis, tensor(i, { dtype: 'int32', device: x.device }));
      if (mode === 'nearest') {
        out = rows(i0);
        continue;
      }
      const weightShape = a === 0 ? [outSize[a]!, 1] : [outSize[a]!];
      const upper = tensor(l1, { dtype: x.dtype, device: x.device, shape: weightShape });
      const lower = tensor(l1.map((l) => 1 - l), { dtype: x.dtype, device: x.device, shape: weightShape });
      out = add(mul(rows(i0), lower), mul(rows(i1), upper));
    }
    return out;
  });
}
