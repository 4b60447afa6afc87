// The NCHW layers and normalisations against independent float64 loops (nnReference.ts) over
// many configurations (stride 2, padding 1/2, dilation 2, groups 1/2/C, odd sizes, 1×1 and 3×3
// kernels, batch 1 and 3), known small hand values, the adjoint identity of convTranspose2d, and
// argument errors. Everything runs in float64 on the CPU.
//
// Tolerance: the composition and the loops add the same products in different orders. Each
// output sums at most K = C/G·kh·kw ≤ 200 products of O(1) values (|Σ|terms|| ≲ 1e2), so the two
// differ by at most ~K·u·Σ|terms| ≈ 200 · 1.1e-16 · 1e2 ≈ 2e-12; 1e-10 leaves a margin of 50
// while a wrong index is off by O(1).

import { describe, expect, it } from 'vitest';
import { grad } from '@scorch/autograd';
import {
  CpuBackend, Tensor, avgPool2d, conv2d, convTranspose2d, groupNorm, layerNorm, maxPool2d, memory, ones, registerBackend, softmaxCrossEntropy, sum, mul,
  tensor, tidy, upsample, zeros,
} from '@scorch/tensor';
import {
  type ConvParams, type Image, conv2dReference, convTranspose2dReference, crossEntropyReference, normaliseBlocks, normals,
  pool2dReference, upsampleReference,
} from './nnReference.js';
import { expectClose } from './reference.js';

const ATOL = 1e-10;
const f64 = { dtype: 'float64' as const };

/** The values of t as nested arrays (synchronously, for literal comparisons). */
function nested(t: Tensor): unknown {
  const flat = Array.from(t.dataSync(), Number);
  const build = (dim: number, offset: number): unknown =>
    dim === t.rank ? flat[offset] : Array.from({ length: t.shape[dim]! }, (_, i) => build(dim + 1, offset * t.shape[dim]! + i));
  return build(0, 0);
}

function image(shape: Image['shape'], seed: number): Image {
  return { data: normals(shape[0] * shape[1] * shape[2] * shape[3], seed), shape };
}
const t64 = (im: Image | { data: Float64Array; shape: readonly number[] }): Tensor => tensor(im.data, { dtype: 'float64', shape: im.shape });

/** The error thrown by f (undefined when none). */
function thrown(f: () => unknown): Error | undefined {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  return undefined;
}

/** The shape, then every element within atol·(1 + |reference|). */
function expectNear(got: Tensor, want: { data: ArrayLike<number>; shape: readonly number[] }, atol = ATOL): void {
  expect(got.shape).toEqual([...want.shape]);
  expectClose(got.dataSync(), want.data, { abs: atol, rel: atol });
}

interface ConvCase {
  x: Image['shape'];
  o: number;
  k: [number, number];
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  groups?: number;
  bias?: boolean;
}

const CONV_CASES: ConvCase[] = [
  { x: [1, 1, 5, 5], o: 1, k: [3, 3] },
  { x: [3, 2, 7, 6], o: 4, k: [3, 3], padding: [1, 1], bias: true },
  { x: [1, 3, 9, 8], o: 2, k: [3, 3], stride: [2, 2], padding: [1, 1] },
  { x: [3, 4, 7, 9], o: 6, k: [3, 3], stride: [2, 2], padding: [2, 2], groups: 2, bias: true },
  { x: [1, 4, 11, 10], o: 4, k: [3, 3], dilation: [2, 2], padding: [2, 2], groups: 4 },
  { x: [3, 6, 5, 7], o: 12, k: [1, 1], groups: 3 },
  { x: [3, 5, 6, 6], o: 3, k: [1, 1], stride: [2, 2] },
  { x: [1, 3, 8, 7], o: 6, k: [3, 3], stride: [2, 1], padding: [0, 1], dilation: [1, 2], groups: 3, bias: true },
  { x: [3, 2, 6, 5], o: 2, k: [2, 3], stride: [3, 2], padding: [1, 0], dilation: [2, 1] },
  { x: [1, 1, 3, 3], o: 1, k: [3, 3], stride: [2, 2] },
  { x: [3, 4, 5, 5], o: 8, k: [5, 5], padding: [2, 2], groups: 2 },
  // A decoder's upsampling (convTranspose2d k 4, s 2, p 1), and strides that do not divide the
  // kernel, per axis: convTranspose2d's sub-pixel path (dilation 1, a stride above 1).
  { x: [2, 3, 8, 8], o: 4, k: [4, 4], stride: [2, 2], padding: [1, 1], bias: true },
  { x: [1, 2, 9, 6], o: 3, k: [5, 2], stride: [3, 2], padding: [2, 0] },
  { x: [2, 4, 7, 9], o: 6, k: [3, 4], stride: [1, 3], padding: [1, 2], groups: 2 },
  // Padding past the kernel: the transposed output's phases need fewer rows than the input has.
  { x: [1, 2, 4, 6], o: 3, k: [2, 2], stride: [2, 2], padding: [2, 2] },
];

const name = (c: ConvCase): string =>
  `x ${JSON.stringify(c.x)} o ${c.o} k ${c.k} s ${c.stride ?? [1, 1]} p ${c.padding ?? [0, 0]} d ${c.dilation ?? [1, 1]} g ${c.groups ?? 1}${c.bias ? ' bias' : ''}`;

function convParams(c: ConvCase): ConvParams {
  return { stride: c.stride ?? [1, 1], padding: c.padding ?? [0, 0], dilation: c.dilation ?? [1, 1], groups: c.groups ?? 1 };
}

describe('conv2d against loops', () => {
  CONV_CASES.forEach((c, idx) => {
    it(name(c), () => {
      const g = c.groups ?? 1;
      const x = image(c.x, 11 + idx);
      const w = image([c.o, c.x[1] / g, c.k[0], c.k[1]], 101 + idx);
      const b = c.bias ? normals(c.o, 7 + idx) : null;
      const p = convParams(c);
      tidy(() => {
        const y = conv2d(t64(x), t64(w), { ...p, bias: b ? tensor(b, { dtype: 'float64' }) : undefined });
        expectNear(y, conv2dReference(x, w, b, p));
      });
    });
  });

  it('known small values: a 2×2 box filter over 0..8 with padding 1', () => {
    const x = tensor([[[[0, 1, 2], [3, 4, 5], [6, 7, 8]]]], { dtype: 'float64' });
    const w = tensor([[[[1, 1], [1, 1]]]], { dtype: 'float64' });
    expect(nested(conv2d(x, w, { padding: 1, stride: 2 }))).toEqual([[[[0, 3], [9, 24]]]]);
    expect(nested(conv2d(x, w))).toEqual([[[[8, 12], [20, 24]]]]);
  });
});

describe('convTranspose2d', () => {
  CONV_CASES.forEach((c, idx) => {
    it(`is conv2d's adjoint and matches loops: ${name(c)}`, () => {
      const g = c.groups ?? 1;
      const p = convParams(c);
      const x = image(c.x, 21 + idx);
      const w = image([c.o, c.x[1] / g, c.k[0], c.k[1]], 201 + idx);
      const yShape = conv2dReference(x, w, null, p).shape;
      const y = image(yShape, 31 + idx);
      // The outputPadding that maps back onto x's size: what floor() dropped, when it fits.
      const outputPadding = [0, 1].map((a) => {
        const made = (yShape[2 + a]! - 1) * p.stride[a]! - 2 * p.padding[a]! + p.dilation[a]! * (c.k[a]! - 1) + 1;
        return c.x[2 + a]! - made;
      }) as [number, number];
      const fits = outputPadding.every((v, a) => v < Math.max(p.stride[a]!, p.dilation[a]!));
      const bias = c.bias ? normals(c.x[1], 5 + idx) : null;
      tidy(() => {
        const op = fits ? outputPadding : ([0, 0] as [number, number]);
        const got = convTranspose2d(t64(y), t64(w), { ...p, outputPadding: op, bias: bias ? tensor(bias, { dtype: 'float64' }) : undefined });
        expectNear(got, convTranspose2dReference(y, w, bias, { ...p, outputPadding: op }));
        if (fits && !bias) {
          // ⟨conv(x), y⟩ = ⟨x, convT(y)⟩, both sides in float64.
          const lhs = sum(mul(conv2d(t64(x), t64(w), p), t64(y))).dataSync()[0]!;
          const rhs = sum(mul(t64(x), got)).dataSync()[0]!;
          expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(ATOL * (1 + Math.abs(lhs)));
        }
      });
    });
  });

  it('known small values: stride 2 spreads a 2×2 input with a 2×2 kernel of ones', () => {
    const y = tensor([[[[1, 2], [3, 4]]]], { dtype: 'float64' });
    const w = tensor([[[[1, 1], [1, 1]]]], { dtype: 'float64' });
    expect(nested(convTranspose2d(y, w, { stride: 2 }))).toEqual([[[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]]]);
    expect(nested(convTranspose2d(y, w, { stride: 2, padding: 1, outputPadding: 1 }))).toEqual([[[[1, 2, 2], [3, 4, 4], [3, 4, 4]]]]);
  });
});

const POOL_CASES: { x: Image['shape']; k: [number, number]; stride?: [number, number]; padding?: [number, number] }[] = [
  { x: [1, 1, 4, 4], k: [2, 2] },
  { x: [3, 2, 7, 5], k: [3, 3], stride: [2, 2], padding: [1, 1] },
  { x: [1, 3, 6, 9], k: [3, 2], stride: [1, 2], padding: [1, 1] },
  { x: [3, 1, 5, 5], k: [1, 1], stride: [2, 2] },
  { x: [1, 2, 8, 7], k: [4, 4], stride: [3, 3], padding: [2, 2] },
];

describe('pooling against loops', () => {
  POOL_CASES.forEach((c, idx) => {
    const p = { kernel: c.k, stride: c.stride ?? c.k, padding: c.padding ?? ([0, 0] as [number, number]) };
    it(`avgPool2d and maxPool2d: x ${JSON.stringify(c.x)} k ${c.k} s ${p.stride} p ${p.padding}`, () => {
      const x = image(c.x, 41 + idx);
      tidy(() => {
        expectNear(avgPool2d(t64(x), c.k, { stride: c.stride, padding: c.padding }), pool2dReference(x, p, 'avg'));
        expectNear(maxPool2d(t64(x), c.k, { stride: c.stride, padding: c.padding }), pool2dReference(x, p, 'max'));
      });
    });
  });

  it('maxPool2d sends the gradient to the first maximum of each window (ties included)', async () => {
    const { grad } = await import('@scorch/autograd');
    // Window rows [1 3; 3 0] and [2 2; 2 2]: the first 3 (row-major) and the first 2 take it all.
    const x = tensor([[[[1, 3, 2, 2], [3, 0, 2, 2]]]], { dtype: 'float64' });
    const g = grad((v: Tensor) => sum(maxPool2d(v, 2)))(x) as Tensor;
    expect(nested(g)).toEqual([[[[0, 1, 1, 0], [0, 0, 0, 0]]]]);
    // Overlapping windows (stride 1): an entry that is the first maximum of two windows gets 2.
    const x2 = tensor([[[[0, 5, 1], [2, 1, 0]]]], { dtype: 'float64' });
    expect(nested(grad((v: Tensor) => sum(maxPool2d(v, 2, { stride: 1 })))(x2) as Tensor)).toEqual([[[[0, 2, 0], [0, 0, 0]]]]);
    const ref = pool2dReference({ data: Float64Array.from([1, 3, 2, 2, 3, 0, 2, 2]), shape: [1, 1, 2, 4] }, { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }, 'max');
    expect([...ref.argmax]).toEqual([1, 2]);
  });

  it('maxPool2d never sends the gradient into padding, even when a window holds only −∞', async () => {
    const { grad, jit } = await import('@scorch/autograd');
    // 2×2 windows at stride 1 over [−∞ 1; −∞ −∞] padded by 1: nine windows, each with a maximum
    // that is an entry of x. Windows (0,0) and (1,0) hold only −∞ besides padding: their first
    // entry is x[0,0]; window (2,0) gives x[1,0], (2,1) x[1,0], (2,2) x[1,1], the other four x[0,1].
    const x = tensor([[[[-Infinity, 1], [-Infinity, -Infinity]]]], { dtype: 'float64' });
    const f = (v: Tensor) => sum(maxPool2d(v, 2, { stride: 1, padding: 1 }));
    expect(nested(grad(f)(x) as Tensor)).toEqual([[[[2, 4], [2, 1]]]]);
    expect(nested(jit(grad(f))(x) as Tensor)).toEqual([[[[2, 4], [2, 1]]]]);
    const ref = pool2dReference({ data: x.dataSync() as Float64Array, shape: [1, 1, 2, 2] }, { kernel: [2, 2], stride: [1, 1], padding: [1, 1] }, 'max');
    expect([...ref.argmax]).toEqual([0, 1, 1, 0, 1, 1, 2, 2, 3]);
  });

  it('maxPool2d propagates NaN and pads with −∞', () => {
    const x = tensor([[[[NaN, 1], [2, 3]]]], { dtype: 'float64' });
    expect(maxPool2d(x, 2).dataSync()[0]).toBeNaN();
    const neg = tensor([[[[-5, -6], [-7, -8]]]], { dtype: 'float64' });
    expect(nested(maxPool2d(neg, 2, { stride: 1, padding: 1 }))).toEqual([[[[-5, -5, -6], [-5, -5, -6], [-7, -7, -8]]]]);
    expect(nested(avgPool2d(neg, 2, { stride: 1, padding: 1 }))).toEqual([[[[-1.25, -2.75, -1.5], [-3, -6.5, -3.5], [-1.75, -3.75, -2]]]]);
  });
});

describe('maxPool2d with padding on one axis only', () => {
  it('pads the padded axis with −∞, not 0 (PyTorch: max_pool2d(x, 2, stride=1, padding=(1, 0)))', () => {
    // Windows over the rows [−∞; −5 −6; −7 −8; −∞]: max(−5, −6), max(−5, −6, −7, −8), max(−7, −8).
    const neg = tensor([[[[-5, -6], [-7, -8]]]], f64);
    expect(nested(maxPool2d(neg, 2, { stride: 1, padding: [1, 0] }))).toEqual([[[[-5], [-5], [-7]]]]);
    expect(nested(maxPool2d(neg, 2, { stride: 1, padding: [0, 1] }))).toEqual([[[[-5, -5, -6]]]]);
  });

  it('never sends the gradient into the padding of that axis', () => {
    // Rows [pad; −∞ −∞; −∞ 1; pad], 2×2 windows at stride 1: the first window holds only −∞ (two
    // padding taps first), its gradient goes to x[0,0], the first entry of x; the other two
    // windows' maximum is x[1,1] = 1.
    const x = tensor([[[[-Infinity, -Infinity], [-Infinity, 1]]]], f64);
    const g = grad((v: Tensor) => sum(maxPool2d(v, 2, { stride: 1, padding: [1, 0] })))(x) as Tensor;
    expect(nested(g)).toEqual([[[[1, 0], [0, 2]]]]);
  });

  it('checks the padding limit on the width too', () => {
    const x = t64(image([1, 1, 5, 5], 1));
    expect(() => maxPool2d(x, [4, 2], { padding: [1, 2] })).toThrow(/^maxPool2d: padding 2 must be at most half the kernel size 2$/);
  });
});

describe('upsample against loops', () => {
  const cases: { x: Image['shape']; size?: [number, number]; factor?: [number, number]; mode: 'nearest' | 'bilinear'; align?: boolean }[] = [
    { x: [1, 1, 3, 3], factor: [2, 2], mode: 'nearest' },
    { x: [3, 2, 5, 4], size: [7, 9], mode: 'nearest' },
    { x: [1, 2, 6, 5], size: [4, 3], mode: 'nearest' },
    { x: [1, 1, 3, 3], factor: [2, 2], mode: 'bilinear' },
    { x: [3, 2, 5, 4], size: [7, 9], mode: 'bilinear' },
    { x: [1, 3, 4, 7], factor: [1.5, 2.5], mode: 'bilinear' },
    { x: [1, 2, 6, 5], size: [4, 3], mode: 'bilinear' },
    { x: [3, 1, 4, 5], size: [7, 8], mode: 'bilinear', align: true },
    { x: [1, 1, 1, 3], size: [2, 1], mode: 'bilinear', align: true },
  ];
  cases.forEach((c, idx) => {
    it(`${c.mode}${c.align ? ' (alignCorners)' : ''}: ${JSON.stringify(c.x)} → ${c.size ? `size ${c.size}` : `factor ${c.factor}`}`, () => {
      const x = image(c.x, 61 + idx);
      const out = c.size ?? ([Math.floor(c.x[2] * c.factor![0]), Math.floor(c.x[3] * c.factor![1])] as [number, number]);
      tidy(() => {
        const got = upsample(t64(x), { size: c.size, scaleFactor: c.factor, mode: c.mode, alignCorners: c.align });
        expectNear(got, upsampleReference(x, out, c.mode, c.align ?? false, c.factor));
      });
    });
  });

  it("nearest picks the source indices of PyTorch's float32 NCHW kernel: float32 ⌊i·scale⌋ at every size", () => {
    // Values of torch.nn.functional.interpolate(arange(w).reshape(1, 1, 1, w).repeat(1, 2, 1, 1),
    // mode='nearest') in float32 (PyTorch 1.13; two channels, so not its channels-last path, which
    // copies an axis of the input's size and halves the index at twice it). ⌊i·scale⌋ in float32
    // differs from float64 where i·scale is just below an integer.
    const row = (w: number, opts: { size?: [number, number]; scaleFactor?: [number, number] }): number[] => {
      const x = tensor(Float64Array.from({ length: 2 * w }, (_, i) => i % w), { dtype: 'float64', shape: [1, 2, 1, w] });
      const out = Array.from(upsample(x, opts).dataSync(), Number);
      const first = out.slice(0, out.length / 2);
      expect(out.slice(out.length / 2)).toEqual(first);
      return first;
    };
    expect(row(3, { scaleFactor: [1, 1.2] })).toEqual([0, 0, 1]);
    expect(row(4, { scaleFactor: [1, 1.2] })).toEqual([0, 0, 1, 2]);
    expect(row(3, { scaleFactor: [1, 2.2] })).toEqual([0, 0, 0, 1, 1, 2]);
    expect(row(5, { scaleFactor: [1, 2.1] })).toEqual([0, 0, 0, 1, 1, 2, 2, 3, 3, 4]);
    expect(row(4, { scaleFactor: [1, 2] })).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(row(4, { scaleFactor: [1, 1] })).toEqual([0, 1, 2, 3]);
    // float32: 37·float32(1/3.7) rounds to 10, while 37/3.7 = 9.999… in float64.
    expect(row(11, { scaleFactor: [1, 3.7] })).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 10, 10, 10]);
    expect(row(6, { size: [1, 74] })).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
      3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    ]);
    expect(row(26, { size: [1, 22] })).toEqual([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24]);
    // Both axes: 3 rows × 1.2 stay 3 rows, read as 0, 0, 1; 4 columns × 2.2 are 8, read as 0, 0, 0, 1, 1, 2, 2, 3.
    const grid = tensor(Float64Array.from({ length: 24 }, (_, i) => i % 12), { dtype: 'float64', shape: [1, 2, 3, 4] });
    const plane = [[0, 0, 0, 1, 1, 2, 2, 3], [0, 0, 0, 1, 1, 2, 2, 3], [4, 4, 4, 5, 5, 6, 6, 7]];
    expect(nested(upsample(grid, { scaleFactor: [1.2, 2.2] }))).toEqual([[plane, plane]]);
  });

  it('bilinear copies an axis whose output size is the input size, whatever the factor (PyTorch)', () => {
    // torch.nn.functional.interpolate(x, scale_factor=(1.2, 2), mode='bilinear') on 3 rows × 2
    // columns (PyTorch 1.13): ⌊3 · 1.2⌋ = 3 rows are the input rows, not a blend at scale 1/1.2;
    // the columns are blended at scale 1/2. Likewise 2 columns × 1.3 and 3 columns × 1.2.
    const x = tensor([[[[0, 10], [20, 30], [40, 50]]]], { dtype: 'float64' });
    expect(nested(upsample(x, { scaleFactor: [1.2, 2], mode: 'bilinear' }))).toEqual([[[[0, 2.5, 7.5, 10], [20, 22.5, 27.5, 30], [40, 42.5, 47.5, 50]]]]);
    expect(nested(upsample(x, { scaleFactor: [1.2, 1.3], mode: 'bilinear' }))).toEqual([[[[0, 10], [20, 30], [40, 50]]]]);
    const row = tensor([[[[0, 1, 2]]]], { dtype: 'float64' });
    expect(nested(upsample(row, { scaleFactor: [1, 1.2], mode: 'bilinear' }))).toEqual([[[[0, 1, 2]]]]);
  });

  it('known small values (PyTorch: interpolate([[0, 1]], scale_factor=2))', () => {
    const x = tensor([[[[0, 1]]]], { dtype: 'float64' });
    expect(nested(upsample(x, { scaleFactor: [1, 2] }))).toEqual([[[[0, 0, 1, 1]]]]);
    expect(nested(upsample(x, { scaleFactor: [1, 2], mode: 'bilinear' }))).toEqual([[[[0, 0.25, 0.75, 1]]]]);
    expect(nested(upsample(x, { size: [1, 3], mode: 'bilinear', alignCorners: true }))).toEqual([[[[0, 0.5, 1]]]]);
  });
});

describe('upsample nearest clamps its source index', () => {
  it('to the last row, where float32 ⌊i·scale⌋ rounds up to the input size (a 16777167-wide output of one column)', () => {
    // scale = float32(1/16777167) = (1 + 6e-8)/16777167, so for the last i = 16777166 the float32
    // product i·scale is within half an ulp (3e-8) of 1 and rounds to 1 = W: the kernel clamps it to
    // W − 1 = 0, as PyTorch's does (interpolate to this size gives 7 everywhere), or it reads past the input.
    const x = tensor([[[[7]]]], { dtype: 'float32' });
    const y = upsample(x, { size: [1, 16777167] }).dataSync();
    expect(y.length).toBe(16777167);
    expect([y[0], y[16777165], y[16777166]]).toEqual([7, 7, 7]);
  });
});

describe('layerNorm and groupNorm against loops', () => {
  it('layerNorm over trailing dimensions, with weight and bias', () => {
    const x = normals(3 * 4 * 5, 3);
    const w = normals(20, 4);
    const b = normals(20, 5);
    const z = normaliseBlocks(x, 20, 1e-5);
    const want = z.map((v, i) => v * w[i % 20]! + b[i % 20]!);
    tidy(() => {
      const got = layerNorm(tensor(x, { dtype: 'float64', shape: [3, 4, 5] }), [4, 5], {
        weight: tensor(w, { dtype: 'float64', shape: [4, 5] }), bias: tensor(b, { dtype: 'float64', shape: [4, 5] }),
      });
      expectNear(got, { data: want, shape: [3, 4, 5] });
    });
  });

  it('layerNorm over explicit axes equals the permuted trailing case', () => {
    tidy(() => {
      const x = tensor(normals(2 * 3 * 4, 8), { dtype: 'float64', shape: [2, 3, 4] });
      const w = tensor(normals(2, 9), { dtype: 'float64' });
      const got = layerNorm(x, { axes: [0] }, { weight: w, eps: 1e-3 });
      const want = layerNorm(x.permute([1, 2, 0]), 2, { weight: w, eps: 1e-3 }).permute([2, 0, 1]);
      expectNear(got, { data: want.dataSync(), shape: [2, 3, 4] });
    });
  });

  it('axes given out of order are sorted: { axes: [2, 0] } takes its parameters in axis order, as [0, 2]', () => {
    tidy(() => {
      // x[i,j,k] = 12i + 4j + k. Over i in {0,1} and k in {0..3}, for each j: the mean is 4j + 7.5,
      // the deviations ±6 (from i) plus −1.5, −0.5, 0.5, 1.5 (from k), uncorrelated, so the variance
      // is 36 + 1.25 = 37.25 and y[0,j,0] = (−6 − 1.5)/√37.25. float64, eps 0: the mean, variance and
      // square root each round a few times, so 1e-12 absolute is ample.
      const x = tensor(Array.from({ length: 24 }, (_, i) => i), { dtype: 'float64', shape: [2, 3, 4] });
      const bias = zeros([2, 4], { dtype: 'float64' });
      const y = layerNorm(x, { axes: [2, 0] }, { bias, eps: 0 });
      const v = y.dataSync();
      for (const j of [0, 1, 2]) expect(Math.abs(v[j * 4]! - -7.5 / Math.sqrt(37.25))).toBeLessThan(1e-12);
      expect(Array.from(v)).toEqual(Array.from(layerNorm(x, { axes: [0, 2] }, { bias, eps: 0 }).dataSync()));
    });
  });

  it('a one-element axis set gives the bias when eps > 0, and NaN when eps = 0 (0 · 1/√0)', () => {
    const x = tensor([[1], [-7]], { dtype: 'float64' });
    expect(nested(layerNorm(x, 1, { bias: tensor([5], { dtype: 'float64' }) }))).toEqual([[5], [5]]);
    expect(nested(layerNorm(x, 1, { eps: 0 }))).toEqual([[NaN], [NaN]]);
  });

  it('is numerically sound when |mean| ≫ std (two-pass variance)', () => {
    // Values 1e8 + {−1, 0, 1} in float64: E[x²] − E[x]² would lose every digit (E[x²] ≈ 1e16, whose
    // ulp is 2, against a variance of 2/3); the two-pass variance keeps them.
    const x = tensor([[1e8 - 1, 1e8, 1e8 + 1]], { dtype: 'float64' });
    expectNear(layerNorm(x, 3, { eps: 0 }), { data: [-Math.sqrt(1.5), 0, Math.sqrt(1.5)], shape: [1, 3] }, 1e-9);
  });

  for (const groups of [1, 2, 6]) {
    it(`groupNorm with ${groups} group(s) of [3, 6, 5, 4]`, () => {
      const shape = [3, 6, 5, 4];
      const x = normals(360, 10 + groups);
      const w = normals(6, 20);
      const b = normals(6, 21);
      const z = normaliseBlocks(x, 360 / 3 / groups, 1e-5);
      const want = z.map((v, i) => {
        const ch = Math.floor(i / 20) % 6;
        return v * w[ch]! + b[ch]!;
      });
      tidy(() => {
        const got = groupNorm(tensor(x, { dtype: 'float64', shape }), groups, { weight: tensor(w, { dtype: 'float64' }), bias: tensor(b, { dtype: 'float64' }) });
        expectNear(got, { data: want, shape });
      });
    });
  }
});

describe('softmaxCrossEntropy against loops', () => {
  it('integer labels, every reduction', () => {
    const z = normals(5 * 7, 30).map((v) => 10 * v);
    const labels = Int32Array.from([0, 6, 3, 3, 1]);
    const want = crossEntropyReference(z, 7, labels, null);
    tidy(() => {
      const logits = tensor(z, { dtype: 'float64', shape: [5, 7] });
      const y = tensor(labels, { dtype: 'int32' });
      expectNear(softmaxCrossEntropy(logits, y, { reduction: 'none' }), { data: want, shape: [5] });
      expectNear(softmaxCrossEntropy(logits, y, { reduction: 'sum' }), { data: [want.reduce((a, b) => a + b)], shape: [] });
      expectNear(softmaxCrossEntropy(logits, y), { data: [want.reduce((a, b) => a + b) / 5], shape: [] });
    });
  });

  it('probability targets, and a class axis other than the last', () => {
    const z = normals(4 * 3, 31);
    const raw = normals(4 * 3, 32).map(Math.exp);
    const p = raw.map((v, i) => v / (raw[3 * Math.floor(i / 3)]! + raw[3 * Math.floor(i / 3) + 1]! + raw[3 * Math.floor(i / 3) + 2]!));
    const want = crossEntropyReference(z, 3, null, p);
    tidy(() => {
      const logits = tensor(z, { dtype: 'float64', shape: [4, 3] });
      const targets = tensor(p, { dtype: 'float64', shape: [4, 3] });
      expectNear(softmaxCrossEntropy(logits, targets, { reduction: 'none' }), { data: want, shape: [4] });
      expectNear(softmaxCrossEntropy(logits.transpose(), targets.transpose(), { axis: 0, reduction: 'none' }), { data: want, shape: [4] });
    });
  });

  it('is stable for huge logits (logsumexp) and knows small values', () => {
    const logits = tensor([[1000, 0], [0, 0]], { dtype: 'float64' });
    const got = softmaxCrossEntropy(logits, tensor([1, 0], { dtype: 'int32' }), { reduction: 'none' }).dataSync();
    expect(got[0]).toBeCloseTo(1000, 10);
    expect(got[1]).toBeCloseTo(Math.LN2, 14);
  });

  it('rejects a label out of range on the CPU', () => {
    const logits = tensor([[1, 2, 3]], { dtype: 'float64' });
    expect(() => softmaxCrossEntropy(logits, tensor([3], { dtype: 'int32' }))).toThrow(/label 3 at position 0 is out of range for 3 classes/);
    expect(() => softmaxCrossEntropy(logits, tensor([-1], { dtype: 'int32' }))).toThrow(/label -1/);
  });
});

describe('argument errors', () => {
  const x = tensor(normals(2 * 4 * 5 * 5, 1), { dtype: 'float64', shape: [2, 4, 5, 5] });
  const w = tensor(normals(6 * 2 * 3 * 3, 2), { dtype: 'float64', shape: [6, 2, 3, 3] });
  it('conv2d', () => {
    expect(() => conv2d(x, w)).toThrow(/expects 2 input channels \(2 per group × 1 groups\) but the input \[2,4,5,5\] has 4/);
    expect(() => conv2d(x, w, { groups: 3 })).toThrow(/input channels \(4\) are not divisible by groups \(3\)/);
    expect(() => conv2d(x, w, { groups: 2, padding: -1 })).toThrow(/padding must be an integer >= 0/);
    expect(() => conv2d(x, w, { groups: 2, stride: 0 })).toThrow(/stride must be an integer >= 1/);
    expect(() => conv2d(x, w, { groups: 2, dilation: 3 })).toThrow(/output height would be -1/);
    expect(() => conv2d(x, w, { groups: 2, bias: tensor([1, 2], { dtype: 'float64' }) })).toThrow(/bias has shape \[2\], expected \[6\]/);
    expect(() => conv2d(x, w, { groups: 2, strides: 2 } as never)).toThrow(/unknown option 'strides'/);
    expect(() => conv2d(x.reshape([8, 5, 5]), w)).toThrow(/input must be \[N, C, H, W\]/);
    // The value given is shown as written: NaN and Infinity (not JSON's null), a bigint (which JSON.stringify throws on).
    expect(() => conv2d(x, w, { groups: 2, stride: NaN })).toThrow(/conv2d: stride must be an integer >= 1 or a \[height, width\] pair of them, got NaN$/);
    expect(() => conv2d(x, w, { groups: 2, dilation: [1, Infinity] })).toThrow(/conv2d: dilation must be .*, got \[1,Infinity\]$/);
    expect(() => conv2d(x, w, { groups: 2, padding: 1n as never })).toThrow(/conv2d: padding must be .*, got 1n$/);
    expect(() => conv2d(x, w, { groups: NaN })).toThrow(/conv2d: groups must be a positive integer, got NaN$/);
    const empty = (shape: number[]): Tensor => tensor(new Float64Array(0), { dtype: 'float64', shape });
    expect(() => conv2d(x, empty([6, 4, 0, 3]))).toThrow(/the kernel of weight \[6,4,0,3\] has an empty height or width/);
    expect(() => conv2d(x, empty([6, 4, 3, 0]), { padding: 1 })).toThrow(/the kernel of weight \[6,4,3,0\] has an empty height or width/);
  });
  it('convTranspose2d, pools, upsample, norms', () => {
    expect(() => convTranspose2d(x, w)).toThrow(/expects 6 input channels/);
    expect(() => convTranspose2d(x, w.reshape([4, 3, 3, 3]), { stride: 2, outputPadding: 2 })).toThrow(/outputPadding 2 must be smaller than the stride \(2\) or the dilation \(1\)/);
    expect(() => maxPool2d(x, 2, { padding: 2 })).toThrow(/padding 2 must be at most half the kernel size 2/);
    // The pools take no dilation: their message names the kernel, not a dilated one.
    expect(() => avgPool2d(x, 6)).toThrow(/^avgPool2d: output height would be 0 \(input 5, padding 0, kernel 6, stride 6\); the padded input 5 must be at least the kernel 6$/);
    expect(() => maxPool2d(x, [2, 8], { padding: [1, 1], stride: 1 })).toThrow(/^maxPool2d: output width would be 0 \(input 5, padding 1, kernel 8, stride 1\); the padded input 7 must be at least the kernel 8$/);
    const empty = (shape: number[]): Tensor => tensor(new Float64Array(0), { dtype: 'float64', shape });
    expect(() => convTranspose2d(x, empty([4, 3, 3, 0]))).toThrow(/the kernel of weight \[4,3,3,0\] has an empty height or width/);
    // An empty input: (H − 1)·stride would be negative; pools would have windows of padding only.
    expect(() => convTranspose2d(empty([1, 4, 0, 5]), w.reshape([4, 3, 3, 3]), { stride: 2 })).toThrow(/input \[1,4,0,5\] has an empty height or width/);
    expect(() => maxPool2d(empty([1, 4, 0, 5]), 2, { padding: 1 })).toThrow(/input \[1,4,0,5\] has an empty height or width/);
    expect(() => avgPool2d(empty([1, 4, 5, 0]), 2, { padding: 1 })).toThrow(/input \[1,4,5,0\] has an empty height or width/);
    expect(() => upsample(empty([1, 4, 0, 5]), { size: 3, mode: 'bilinear' })).toThrow(/input \[1,4,0,5\] has an empty height or width/);
    expect(() => upsample(x, { size: [3, 3], scaleFactor: 2 })).toThrow(/exactly one of size and scaleFactor/);
    expect(() => upsample(x)).toThrow(/exactly one of size and scaleFactor/);
    expect(() => upsample(x, { scaleFactor: 0.1 })).toThrow(/makes the output height 0 from 5/);
    expect(() => upsample(x, { scaleFactor: 2, alignCorners: true })).toThrow(/alignCorners applies to bilinear/);
    // An output too large for a tensor is refused before the host builds its index arrays (a
    // JavaScript array of ~10⁸ entries or more aborts the process instead of throwing).
    expect(() => upsample(x, { size: [70000, 70000] })).toThrow(/upsample: shape \[2,4,70000,70000\] has 39200000000 elements, more than a tensor can hold/);
    expect(() => upsample(x, { scaleFactor: 1e300, mode: 'bilinear' })).toThrow(/upsample: shape \[2,4,5e\+300,5e\+300\] has .* elements, more than a tensor can hold/);
    expect(() => groupNorm(x, 3)).toThrow(/4 channels of \[2,4,5,5\] are not divisible by 3 groups/);
    expect(() => groupNorm(x, '2' as never)).toThrow(/groupNorm: groups must be a positive integer, got "2"$/);
    expect(() => upsample(x, { scaleFactor: [2, NaN] })).toThrow(/upsample: scaleFactor must be a positive number or a \[height, width\] pair of them, got \[2,NaN\]$/);
    // The argument is kernelSize (the parameter's and the docs' name).
    expect(() => maxPool2d(x, Infinity)).toThrow(/maxPool2d: kernelSize must be an integer >= 1 or a \[height, width\] pair of them, got Infinity$/);
    expect(() => avgPool2d(x, [2, 0])).toThrow(/avgPool2d: kernelSize must be an integer >= 1 or a \[height, width\] pair of them, got \[2,0\]$/);
    expect(() => layerNorm(x, null as never)).toThrow(/layerNorm: normalized must be a normalizedShape \(a number or a list of them\) or \{ axes \}, got null$/);
    expect(() => layerNorm(x, undefined as never)).toThrow(/layerNorm: normalized must be .*, got undefined$/);
    expect(() => layerNorm(x, '5' as never)).toThrow(/layerNorm: normalized must be .*, got "5"$/);
    // A missing axes would otherwise read as every axis and mix the batch's examples.
    expect(() => layerNorm(x, {} as never)).toThrow(/layerNorm: \{ axes \} must name the axes to normalise \(an axis or a list of them\), got none/);
    expect(() => layerNorm(x, { axes: undefined } as never)).toThrow(/\{ axes \} must name the axes to normalise/);
    expect(() => layerNorm(x, { axes: [] })).toThrow(/axes must name at least one axis/);
    expect(() => layerNorm(x, [4, 5])).toThrow(/normalizedShape \[4,5\] must be a non-empty list equal to the trailing dimensions/);
    expect(() => layerNorm(x, 5, { weight: tensor([1, 2], { dtype: 'float64' }) })).toThrow(/weight has shape \[2\], expected \[5\]/);
    expect(() => softmaxCrossEntropy(x.reshape([10, 20]), tensor([1], { dtype: 'int32' }))).toThrow(/integer labels have shape \[1\], expected \[10\]/);
  });
});

describe('conv2d, convTranspose2d and upsample argument checks', () => {
  const x = t64(image([2, 4, 5, 5], 1));
  const w = t64(image([6, 2, 3, 3], 2));

  it('a size that is not a number or a pair is refused, showing it', () => {
    expect(() => conv2d(x, w, { groups: 2, stride: [1, 1, 1] as never })).toThrow(/^conv2d: stride must be an integer >= 1 or a \[height, width\] pair of them, got \[1,1,1\]$/);
    // A hole (every() skipped it: the stride reached pad as NaN).
    const holed = [1, 1];
    delete holed[1];
    expect(() => conv2d(x, w, { groups: 2, stride: holed as never })).toThrow(/^conv2d: stride must be an integer >= 1 or a \[height, width\] pair of them, got \[1,undefined\]$/);
    expect(() => conv2d(x, w, { groups: 2, padding: [1] as never })).toThrow(/^conv2d: padding must be an integer >= 0 or a \[height, width\] pair of them, got \[1\]$/);
  });

  it('names the dilated kernel extent d·(k − 1) + 1 when the output would be empty', () => {
    // Kernel 3 at dilation 3 spans 3·2 + 1 = 7 rows; 5 + 0 − 7 = −2, ⌊−2 / 1⌋ + 1 = −1.
    expect(() => conv2d(x, w, { groups: 2, dilation: 3 })).toThrow(
      /^conv2d: output height would be -1 \(input 5, padding 0, kernel 3, dilation 3, stride 1\); the padded input 5 must be at least the dilated kernel 7$/,
    );
  });

  it('a bias must be one-dimensional, [O] (an [O, 1] bias has the right size but not the right shape)', () => {
    expect(() => conv2d(x, w, { groups: 2, bias: t64(image([6, 1, 1, 1], 3)).reshape([6, 1]) })).toThrow(/^conv2d: bias has shape \[6,1\], expected \[6\] \(one per output channel\)$/);
  });

  it('groups 0 is refused as a RangeError naming the value', () => {
    const e = thrown(() => conv2d(x, w, { groups: 0 }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e?.message).toBe('conv2d: groups must be a positive integer, got 0');
  });

  it('output channels not divisible by groups are refused, naming them', () => {
    expect(() => conv2d(x, t64(image([5, 2, 3, 3], 4)), { groups: 2 })).toThrow(/^conv2d: output channels \(5\) are not divisible by groups \(2\)$/);
  });

  it('a weight expecting more input channels than the input has is refused, naming both', () => {
    const x2 = t64(image([1, 2, 5, 5], 5));
    expect(() => conv2d(x2, t64(image([3, 4, 3, 3], 6)))).toThrow(/^conv2d: weight \[3,4,3,3\] expects 4 input channels \(4 per group × 1 groups\) but the input \[1,2,5,5\] has 2$/);
  });

  it('an integer image or a weight of another dtype is refused as a TypeError', () => {
    const xi = tensor(new Int32Array(25), { dtype: 'int32', shape: [1, 1, 5, 5] });
    const wi = tensor(new Int32Array(9), { dtype: 'int32', shape: [1, 1, 3, 3] });
    const e = thrown(() => conv2d(xi, wi));
    expect(e).toBeInstanceOf(TypeError);
    expect(e?.message).toBe('conv2d: input must be float32 or float64, got int32');
    const e2 = thrown(() => conv2d(x, tensor(new Float32Array(6 * 2 * 9), { shape: [6, 2, 3, 3] }), { groups: 2 }));
    expect(e2).toBeInstanceOf(TypeError);
    expect(e2?.message).toBe('conv2d: weight is float32 but the input is float64');
  });

  it('convTranspose2d refuses an output extent of 0', () => {
    // (1 − 1)·1 − 2·1 + 1·(2 − 1) + 0 + 1 = 0 rows.
    const y = tensor([[[[1]]]], f64);
    expect(() => convTranspose2d(y, tensor([[[[1, 2], [3, 4]]]], f64), { padding: 1 })).toThrow(
      /^convTranspose2d: output height would be 0 \(input 1, stride 1, padding 1, kernel 2, dilation 1, outputPadding 0\)$/,
    );
  });

  it('convTranspose2d refuses input channels not divisible by groups, naming them', () => {
    expect(() => convTranspose2d(t64(image([1, 3, 4, 4], 7)), t64(image([3, 1, 3, 3], 8)), { groups: 2 })).toThrow(/^convTranspose2d: input channels \(3\) are not divisible by groups \(2\)$/);
  });

  it('upsample refuses a size of 0 (PyTorch: output sizes must be greater than 0)', () => {
    expect(() => upsample(x, { size: [0, 3] })).toThrow(/^upsample: size must be an integer >= 1 or a \[height, width\] pair of them, got \[0,3\]$/);
  });
});

describe('argument errors come before any work', () => {
  it('a bias of the wrong shape or dtype is rejected before the convolution runs', async () => {
    const { profile } = await import('@scorch/tensor');
    const x = tensor(normals(1 * 2 * 6 * 6, 3), { dtype: 'float64', shape: [1, 2, 6, 6] });
    const w = tensor(normals(4 * 2 * 3 * 3, 4), { dtype: 'float64', shape: [4, 2, 3, 3] });
    const wt = tensor(normals(2 * 4 * 3 * 3, 5), { dtype: 'float64', shape: [2, 4, 3, 3] });
    const attempts: [() => Tensor, RegExp][] = [
      [() => conv2d(x, w, { bias: tensor([1, 2], { dtype: 'float64' }) }), /conv2d: bias has shape \[2\], expected \[4\]/],
      [() => conv2d(x, w, { bias: tensor([1, 2, 3, 4], { dtype: 'float32' }) }), /conv2d: bias is float32 but the input is float64/],
      [() => convTranspose2d(x, wt, { stride: 2, bias: tensor([1, 2], { dtype: 'float64' }) }), /convTranspose2d: bias has shape \[2\], expected \[4\]/],
    ];
    for (const [call, message] of attempts) {
      const { value, events } = await profile(() => {
        try {
          call();
          return 'no error';
        } catch (e) {
          return (e as Error).message;
        }
      });
      expect(value).toMatch(message);
      expect(events).toEqual([]);
    }
  });
});

describe('memory', () => {
  it('frees every intermediate inside tidy', () => {
    const before = memory().tensors;
    tidy(() => {
      const a = tensor(normals(2 * 2 * 6 * 6, 1), { dtype: 'float64', shape: [2, 2, 6, 6] });
      const k = tensor(normals(4 * 2 * 3 * 3, 2), { dtype: 'float64', shape: [4, 2, 3, 3] });
      const y = conv2d(a, k, { stride: 2, padding: 1 });
      convTranspose2d(y, k, { stride: 2, padding: 1, outputPadding: 1 });
      maxPool2d(a, 3, { padding: 1 });
      upsample(a, { scaleFactor: 1.5, mode: 'bilinear' });
    });
    expect(memory().tensors).toBe(before);
  });
});

describe('argument rules at their edges', () => {
  it('layerNorm and groupNorm refuse a negative eps (it made the variance negative: NaN with no error)', () => {
    const x = tensor([[1, 2, 3]], { dtype: 'float64' });
    expect(() => layerNorm(x, 3, { eps: -1 })).toThrow(/layerNorm: eps must be .*>= 0/);
    expect(() => groupNorm(x.reshape([1, 3, 1]), 1, { eps: -1 })).toThrow(/groupNorm: eps must be .*>= 0/);
  });

  it('convTranspose2d takes an outputPadding below the dilation but not below the stride, as PyTorch', () => {
    // PyTorch requires output_padding smaller than the stride OR the dilation; every other case
    // here has outputPadding below the stride. Values: torch.nn.functional.conv_transpose2d(y, w,
    // stride=1, dilation=2, output_padding=1) in float64.
    const y = tensor([[[[1, 2], [3, 4]]]], { dtype: 'float64' });
    const got = convTranspose2d(y, y, { dilation: 2, outputPadding: 1 });
    expect(got.shape).toEqual([1, 1, 5, 5]);
    expect(Array.from(got.dataSync())).toEqual([1, 2, 2, 4, 0, 3, 4, 6, 8, 0, 3, 6, 4, 8, 0, 9, 12, 12, 16, 0, 0, 0, 0, 0, 0]);
  });
});

describe('normalisations and cross-entropy: parameters, devices and edge arguments', () => {
  const f64 = { dtype: 'float64' as const };
  const x = tensor([[1, 2, 3], [4, 6, 9]], f64);

  it('a weight or bias of another dtype is refused, naming it', () => {
    expect(() => layerNorm(x, 3, { weight: tensor([1, 2, 3]) })).toThrow(/^layerNorm: weight is float32 but the input is float64$/);
    expect(() => layerNorm(x, 3, { bias: tensor([1, 2, 3]) })).toThrow(/^layerNorm: bias is float32 but the input is float64$/);
    expect(() => groupNorm(x.reshape([1, 2, 3]), 1, { bias: tensor([1, 2]) })).toThrow(/^groupNorm: bias is float32 but the input is float64$/);
  });

  it('a bias of the wrong shape is refused, naming it and the shape expected', () => {
    expect(() => layerNorm(x, 3, { bias: tensor([1, 2], f64) })).toThrow(/^layerNorm: bias has shape \[2\], expected \[3\] for input \[2,3\]$/);
    expect(() => groupNorm(x.reshape([1, 2, 3]), 2, { bias: tensor([1, 2, 3, 4], f64) })).toThrow(/^groupNorm: bias has shape \[4\], expected \[2\] for input \[1,2,3\]$/);
  });

  it('a parameter or target on another device is refused, naming the devices', () => {
    // A second CPU backend stands in for another device (as in errors.test.ts).
    registerBackend(new CpuBackend('cpu-other'));
    const there = ones([3], { ...f64, device: 'cpu-other' });
    expect(() => layerNorm(x, 3, { weight: there })).toThrow(/^layerNorm: weight is on 'cpu-other' but the input is on 'cpu'; copy one to the other's device first/);
    expect(() => groupNorm(x.reshape([1, 3, 2]), 3, { bias: there })).toThrow(/^groupNorm: bias is on 'cpu-other' but the input is on 'cpu'; copy one to the other's device first/);
    const labels = tensor([0, 2], { dtype: 'int32', device: 'cpu-other' });
    expect(() => softmaxCrossEntropy(x, labels)).toThrow(/^softmaxCrossEntropy: targets are on 'cpu-other' but the logits are on 'cpu'; copy one to the other's device first/);
  });

  it('an empty normalizedShape is refused (it would normalise over no axis)', () => {
    expect(() => layerNorm(tensor([[1, 2]], f64), [])).toThrow(/^layerNorm: normalizedShape \[\] must be a non-empty list equal to the trailing dimensions of the input \[1,2\]$/);
  });

  it('groupNorm refuses an input without a channel axis and zero groups, saying so', () => {
    expect(() => groupNorm(tensor([1, 2, 3], f64), 1)).toThrow(/^groupNorm: input must be \[N, C, \.\.\.\] \(rank >= 2\), got \[3\]$/);
    let error: unknown;
    try {
      groupNorm(zeros([1, 2, 3], f64), 0);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toBe('groupNorm: groups must be a positive integer, got 0');
  });

  it('groupNorm of an empty batch is an empty result of the input shape', () => {
    const y = groupNorm(zeros([0, 4, 3], f64), 2, { weight: ones([4], f64), bias: zeros([4], f64) });
    expect(y.shape).toEqual([0, 4, 3]);
    expect(y.size).toBe(0);
  });

  it('softmaxCrossEntropy takes the last axis as the class axis by default, at any rank (not axis 1)', () => {
    // Logits [1, 2, 3]: two positions of three classes, labels [1, 2] ([N, T] without the class axis).
    // A logsumexp and a subtraction of O(1) values in float64: a few roundings, 1e-14 relative.
    const z = tensor([[[0, 1, 2], [2, 0, 1]]], f64);
    const lse = Math.log(1 + Math.E + Math.E ** 2); // logsumexp of {0, 1, 2}, the same for both rows
    const got = softmaxCrossEntropy(z, tensor([[2, 1]], { dtype: 'int32' }), { reduction: 'none' });
    expect(got.shape).toEqual([1, 2]);
    expectClose(got.dataSync(), [lse - 2, lse - 0], { abs: 0, rel: 1e-14 });
  });

  it('softmaxCrossEntropy refuses probability targets of another dtype than the logits', () => {
    const z = tensor([[1, 2, 3]], f64);
    expect(() => softmaxCrossEntropy(z, tensor([[0, 0, 1]]))).toThrow(/^softmaxCrossEntropy: targets must be int32 labels or probabilities of the logits' dtype \(float64\), got float32$/);
  });
});
