// The NCHW layers, normalisations and cross-entropy on WebGPU against the CPU reference, eagerly,
// under jit, and their gradients (reverse mode), on awkward shapes: odd and prime extents,
// batch 1 and 3, stride 2, padding 1/2, dilation 2, groups 1/2/C. The layers are compositions
// of primitives, so this exercises the GPU's slice/pad/concat/matmul/gather/reduction kernels in
// the patterns the layers produce (strided windows through reshapes, index-gathered rows).
//
// Tolerance: both devices compute in float32; an output that sums K products (a conv tap sum, a
// window mean, a normalisation's moments) differs by at most ~K·2⁻²⁴·Σ|terms| on each device.
// `scale` bounds Σ|terms| by the largest |value| of a float64 computation of the same layer on
// |inputs| (the CPU in float64), and the case states K (its longest sum, forward and backward),
// plus 8 ULP for the elementwise chain around it (normalisation's rsqrt, softmax's exp/log).

import { beforeAll, describe, expect, it } from 'vitest';
import { grad, jit } from '@scorch/autograd';
import {
  type Tensor, abs, avgPool2d, conv2d, convTranspose2d, groupNorm, layerNorm, maxPool2d, randn, randomKey, softmax, softmaxCrossEntropy,
  sum, tensor, tidy, upsample, cast, mul, narrow, unsqueeze, profile,
} from '@scorch/tensor';
import { FLUSH_FLOOR, RUN_SEED, firstMismatch, gpuDevice, hashSeed } from './helpers.js';

let gpu = 'webgpu';
beforeAll(async () => {
  gpu = (await gpuDevice()).device;
});

interface Case {
  name: string;
  shapes: number[][];
  fn: (...xs: Tensor[]) => Tensor;
  /** Longest float32 sum along the forward and backward computation. */
  terms: number;
}

const int = tensor([0, 4, 6], { dtype: 'int32' });
const intGpu = (): Tensor => tensor([0, 4, 6], { dtype: 'int32', device: gpu });

const CASES: Case[] = [
  { name: 'conv2d 3×3 padding 1 on [3,3,7,33], bias', shapes: [[3, 3, 7, 33], [5, 3, 3, 3], [5]], fn: (x, w, b) => conv2d(x, w, { padding: 1, bias: b }), terms: 3 * 33 * 9 },
  { name: 'conv2d stride 2 padding 2 groups 2 on [1,4,9,11]', shapes: [[1, 4, 9, 11], [6, 2, 3, 3]], fn: (x, w) => conv2d(x, w, { stride: 2, padding: 2, groups: 2 }), terms: 2 * 9 * 30 },
  { name: 'conv2d dilation 2 groups = C on [3,5,8,7]', shapes: [[3, 5, 8, 7], [5, 1, 3, 3]], fn: (x, w) => conv2d(x, w, { dilation: 2, padding: 1, groups: 5 }), terms: 9 * 56 * 3 },
  { name: 'conv2d 1×1 on [1,7,1,1023]', shapes: [[1, 7, 1, 1023], [3, 7, 1, 1]], fn: (x, w) => conv2d(x, w), terms: 1023 },
  { name: 'convTranspose2d stride 2 padding 1 outputPadding 1 on [3,4,5,6]', shapes: [[3, 4, 5, 6], [4, 3, 3, 3]], fn: (y, w) => convTranspose2d(y, w, { stride: 2, padding: 1, outputPadding: 1 }), terms: 4 * 9 * 90 },
  { name: 'convTranspose2d groups 2 dilation 2 on [1,2,7,3]', shapes: [[1, 2, 7, 3], [2, 3, 2, 2]], fn: (y, w) => convTranspose2d(y, w, { dilation: 2, groups: 2 }), terms: 4 * 21 },
  // More than 79 taps: the windows are one concat of kh·kw pieces (81 and 100 here), which a
  // chain of 80 or more else-ifs in a fused WebGPU kernel computed wrongly under jit.
  { name: 'conv2d 9×9 padding 4 on [1,2,11,10] (81 taps)', shapes: [[1, 2, 11, 10], [3, 2, 9, 9]], fn: (x, w) => conv2d(x, w, { padding: 4 }), terms: 3 * 81 },
  { name: 'avgPool2d 10 (global) on [2,3,10,10] (100 taps)', shapes: [[2, 3, 10, 10]], fn: (x) => avgPool2d(x, 10), terms: 100 },
  { name: 'avgPool2d 3 stride 2 padding 1 on [3,2,33,7]', shapes: [[3, 2, 33, 7]], fn: (x) => avgPool2d(x, 3, { stride: 2, padding: 1 }), terms: 9 },
  { name: 'maxPool2d 2 on [1,3,7,9]', shapes: [[1, 3, 7, 9]], fn: (x) => maxPool2d(x, 2), terms: 4 },
  { name: 'maxPool2d 3 stride 1 padding 1 on [3,1,5,33]', shapes: [[3, 1, 5, 33]], fn: (x) => maxPool2d(x, 3, { stride: 1, padding: 1 }), terms: 9 },
  { name: 'upsample nearest to [13, 5] from [3,2,7,3]', shapes: [[3, 2, 7, 3]], fn: (x) => upsample(x, { size: [13, 5] }), terms: 4 },
  { name: 'upsample bilinear ×2 from [1,3,7,5]', shapes: [[1, 3, 7, 5]], fn: (x) => upsample(x, { scaleFactor: 2, mode: 'bilinear' }), terms: 4 },
  { name: 'upsample bilinear alignCorners to [9, 4] from [3,1,5,7]', shapes: [[3, 1, 5, 7]], fn: (x) => upsample(x, { size: [9, 4], mode: 'bilinear', alignCorners: true }), terms: 4 },
  { name: 'layerNorm [33] with weight and bias on [7,33]', shapes: [[7, 33], [33], [33]], fn: (x, w, b) => layerNorm(x, 33, { weight: w, bias: b }), terms: 33 * 7 },
  { name: 'groupNorm 3 groups on [3,9,5,7]', shapes: [[3, 9, 5, 7], [9], [9]], fn: (x, w, b) => groupNorm(x, 3, { weight: w, bias: b }), terms: 105 * 3 * 3 },
];

/** The CPU (float32) and GPU values of one case's inputs: the same float32 numbers. */
function inputs(c: Case): { cpu: Tensor[]; gpu: Tensor[] } {
  const cpu = c.shapes.map((s, i) => randn(s, { key: randomKey(hashSeed(c.name, i)) }));
  return { cpu, gpu: cpu.map((t) => tensor(t.dataSync(), { shape: t.shape, device: gpu })) };
}

/** max |f| over the float64 evaluation of f on |inputs|: a bound on Σ|terms| of every output. */
function magnitude(f: (...xs: Tensor[]) => Tensor, xs: Tensor[]): number {
  return tidy(() => {
    const out = f(...xs.map((x) => cast(abs(x), 'float64'))).dataSync();
    return Array.from(out).reduce((m, v) => Math.max(m, Math.abs(v)), 1);
  });
}

async function expectParity(cpu: Tensor, g: Tensor, terms: number, scale: number, what: string): Promise<void> {
  expect(g.device).toBe(gpu);
  expect(g.shape).toEqual(cpu.shape);
  const allowed = (terms + 8) * 2 ** -24 * scale + FLUSH_FLOOR;
  const mismatch = firstMismatch(cpu.dataSync(), await g.data(), () => allowed);
  expect(mismatch, `${what} (seed ${RUN_SEED})`).toBeNull();
}

describe('NCHW layers and norms on WebGPU match the CPU', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const { cpu, gpu: g } = inputs(c);
      // Normalisation divides by a standard deviation ~1 and multiplies by the weights; its
      // magnitude is bounded by evaluating it, |x| alone would understate centring.
      const scale = magnitude(c.fn, cpu);
      await expectParity(c.fn(...cpu), c.fn(...g), c.terms, scale, 'eager');
      const compiled = jit(c.fn);
      await expectParity(c.fn(...cpu), compiled(...g), c.terms, scale, 'jit');
      compiled.clearCache();
      // Reverse mode: the gradient of Σ f·u in every input (u fixed, the same on both devices).
      const out = c.fn(...cpu);
      const u = randn(out.shape, { key: randomKey(hashSeed(c.name, 'u')) });
      const uGpu = tensor(u.dataSync(), { shape: u.shape, device: gpu });
      const argnums = c.shapes.map((_, i) => i);
      const gc = grad((...xs: Tensor[]) => sum(mul(c.fn(...xs), u)), { argnums })(...cpu) as Tensor[];
      const gg = grad((...xs: Tensor[]) => sum(mul(c.fn(...xs), uGpu)), { argnums })(...g) as Tensor[];
      // Σ|terms| of each gradient entry: the float64 gradient of Σ f(|x|)·|u| (for the layers
      // linear in each input, a sum of the same products made non-negative), or the gradient
      // itself where that is larger (the norms, whose centring is not monotone in |x|).
      const absGrad = tidy(() => {
        const ua = cast(abs(u), 'float64');
        const gs = grad((...xs: Tensor[]) => sum(mul(c.fn(...xs), ua)), { argnums })(...cpu.map((x) => cast(abs(x), 'float64'))) as Tensor[];
        return Math.max(...[...gs, ...gc].map((t) => Array.from(t.dataSync()).reduce((m, v) => Math.max(m, Math.abs(v)), 1)));
      });
      for (let i = 0; i < gc.length; i++) await expectParity(gc[i]!, gg[i]!, c.terms, Math.max(scale, absGrad), `gradient in input ${i}`);
    });
  }

  it('softmaxCrossEntropy with labels and with probabilities on [3,7]', async () => {
    const z = randn([3, 7], { key: randomKey(hashSeed('ce')) }).mul(5);
    const zg = tensor(z.dataSync(), { shape: [3, 7], device: gpu });
    const p = softmax(randn([3, 7], { key: randomKey(hashSeed('ce-p')) }));
    const pg = tensor(p.dataSync(), { shape: [3, 7], device: gpu });
    // logsumexp of 7 terms, each exp and log within a few ULP, relative to |logits| ≤ ~20.
    await expectParity(softmaxCrossEntropy(z, int, { reduction: 'none' }), softmaxCrossEntropy(zg, intGpu(), { reduction: 'none' }), 7, 40, 'labels');
    await expectParity(softmaxCrossEntropy(z, p, { reduction: 'sum' }), softmaxCrossEntropy(zg, pg, { reduction: 'sum' }), 21, 120, 'probabilities');
    const gc = grad((v: Tensor) => softmaxCrossEntropy(v, int))(z) as Tensor;
    const gg = grad((v: Tensor) => softmaxCrossEntropy(v, intGpu()))(zg) as Tensor;
    await expectParity(gc, gg, 7, 1, 'gradient');
  });
});

describe('arguments on another device than the input', () => {
  it('are refused, naming the op, the argument and both devices', () => {
    const x = randn([1, 2, 5, 5], { key: randomKey(1), device: gpu });
    const wGpu = randn([3, 2, 3, 3], { key: randomKey(2), device: gpu });
    const onCpu = (shape: number[]): Tensor => randn(shape, { key: randomKey(3) });
    const attempts: [() => Tensor, RegExp][] = [
      [() => conv2d(x, onCpu([3, 2, 3, 3])), /^conv2d: weight is on 'cpu' but the input is on 'webgpu'; copy one to the other's device first: tensor\(await t\.data\(\), \{ shape: t\.shape, dtype: t\.dtype, device \}\)$/],
      [() => conv2d(x, wGpu, { bias: onCpu([3]) }), /^conv2d: bias is on 'cpu' but the input is on 'webgpu'; copy one to the other's device first: tensor\(await t\.data\(\), \{ shape: t\.shape, dtype: t\.dtype, device \}\)$/],
      [() => convTranspose2d(x, onCpu([2, 3, 3, 3])), /^convTranspose2d: weight is on 'cpu' but the input is on 'webgpu'; copy one to the other's device first: tensor\(await t\.data\(\), \{ shape: t\.shape, dtype: t\.dtype, device \}\)$/],
      [() => layerNorm(x, 5, { weight: onCpu([5]) }), /^layerNorm: weight is on 'cpu' but the input is on 'webgpu'; copy one to the other's device first: tensor\(await t\.data\(\), \{ shape: t\.shape, dtype: t\.dtype, device \}\)$/],
      [() => groupNorm(x, 2, { bias: onCpu([2]) }), /^groupNorm: bias is on 'cpu' but the input is on 'webgpu'; copy one to the other's device first: tensor\(await t\.data\(\), \{ shape: t\.shape, dtype: t\.dtype, device \}\)$/],
      [() => softmaxCrossEntropy(onCpu([3, 7]), intGpu()), /^softmaxCrossEntropy: targets are on 'webgpu' but the logits are on 'cpu'; copy one to the other's device first: tensor\(await t\.data\(\), \{ shape: t\.shape, dtype: t\.dtype, device \}\)$/],
    ];
    for (const [call, message] of attempts) expect(call).toThrow(message);
  });
});

describe('eager reshapes of strided views on WebGPU', () => {
  it('are views where the strides allow, as on the CPU: conv2d runs no reshape kernel', async () => {
    // Every tap window's unsqueeze in im2col (a narrow's reshape) was a copy kernel: 9 of a 3×3
    // conv's 20 eager dispatches, and 264 of an 11×11 stride-4 conv's 387.
    const x = randn([2, 8, 16, 16], { key: randomKey(11), device: gpu });
    const w = randn([8, 8, 3, 3], { key: randomKey(12), device: gpu });
    const reshapes = async (f: () => Tensor): Promise<number> => {
      const p = await profile(async () => {
        const y = f();
        await y.data();
        y.dispose();
      });
      return p.events.filter((e) => e.name === 'reshape').length;
    };
    expect(await reshapes(() => unsqueeze(narrow(x, 3, 0, 4), 1))).toBe(0);
    expect(await reshapes(() => conv2d(x, w, { padding: 1 }))).toBe(0);
    // Values unchanged: the same conv on the CPU, both float32 sums of K = 8·9 products, each
    // within K·2⁻²⁴·Σ|terms| of the exact sum; Σ|terms| ≤ (Σ|x|·|w| of the window) is bounded here
    // by the float32 conv of |x| and |w|.
    const toCpu = async (t: Tensor) => tensor(await t.data(), { shape: t.shape, device: 'cpu' });
    const [xc, wc] = [await toCpu(x), await toCpu(w)];
    const onGpu = conv2d(x, w, { padding: 1 });
    const onCpu = conv2d(xc, wc, { padding: 1 });
    const bound = conv2d(abs(xc), abs(wc), { padding: 1 });
    const [g, c, b] = [await onGpu.data(), await onCpu.data(), await bound.data()];
    expect(firstMismatch(c, g, (i) => 2 * 72 * 2 ** -24 * b[i]!)).toBeNull();
    for (const t of [xc, wc, bound]) t.dispose();
    // A regrouping the strides cannot express (a transposed view flattened) is still a copy.
    expect(await reshapes(() => x.permute([0, 1, 3, 2]).reshape([2, 8, 256]))).toBe(1);
    for (const t of [x, w, onGpu, onCpu]) t.dispose();
  });
});
