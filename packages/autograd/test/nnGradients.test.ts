// The NCHW layers, normalisations and cross-entropy of @scorch/tensor under the transformations:
// checkGrads to order 2 in both modes (float64, CPU), jit against eager evaluation, and vmap
// against a loop over the batch. The layers are compositions of primitives, so these tests check
// that the compositions are differentiable and batchable as written (no value-dependent host
// logic, no indices that break under a batch axis).
//
// Tolerances: checkGrads' defaults (rtol 1e-5, atol 1e-6, ε = 1e-6; see checkGrads.ts): the
// layers are polynomial (conv, pools, upsampling) or smooth with derivatives ≲ 1e2 on these
// O(1) inputs (norms with eps = 1e-5 and variance ~1, logSoftmax), so the central difference's
// error is ≲ 1e-8. jit and vmap run the same float64 operations; only sums and products may be
// blocked differently, bounded by K·2⁻⁵³·Σ|terms| ≲ 1e-13 for K ≤ 100 O(1) terms: 1e-12 below.

import { describe, expect, it } from 'vitest';
import { type TensorFn, checkGrads, jit, vmap } from '@scorch/autograd';
import {
  type Tensor, avgPool2d, conv2d, convTranspose2d, groupNorm, layerNorm, maxPool2d, memory, randn, randomKey,
  softmax, softmaxCrossEntropy, stack, tensor, tidy, upsample,
} from '@scorch/tensor';

const f64 = { dtype: 'float64' as const };
const draw = (shape: number[], seed: number): Tensor => randn(shape, { ...f64, key: randomKey(seed) });
const labels = tensor([2, 0, 1], { dtype: 'int32' });

interface LayerCase {
  name: string;
  fn: TensorFn;
  shapes: number[][];
}

const CASES: LayerCase[] = [
  { name: 'conv2d 3×3, padding 1, bias', fn: (x, w, b) => conv2d(x, w, { padding: 1, bias: b }), shapes: [[2, 2, 4, 4], [3, 2, 3, 3], [3]] },
  { name: 'conv2d stride 2, dilation 2, groups 2', fn: (x, w) => conv2d(x, w, { stride: 2, dilation: 2, padding: 2, groups: 2 }), shapes: [[1, 4, 5, 5], [2, 2, 3, 3]] },
  { name: 'conv2d 1×1, groups = C', fn: (x, w) => conv2d(x, w, { groups: 3 }), shapes: [[2, 3, 3, 2], [3, 1, 1, 1]] },
  {
    name: 'convTranspose2d stride 2, padding 1, outputPadding 1, groups 2, bias',
    fn: (y, w, b) => convTranspose2d(y, w, { stride: 2, padding: 1, outputPadding: 1, groups: 2, bias: b }),
    shapes: [[1, 4, 3, 3], [4, 1, 3, 3], [2]],
  },
  { name: 'avgPool2d 3×3 stride 2 padding 1', fn: (x) => avgPool2d(x, 3, { stride: 2, padding: 1 }), shapes: [[2, 2, 5, 5]] },
  { name: 'maxPool2d 2×2 stride 1 padding 1', fn: (x) => maxPool2d(x, 2, { stride: 1, padding: 1 }), shapes: [[1, 2, 4, 3]] },
  { name: 'upsample nearest ×2', fn: (x) => upsample(x, { scaleFactor: 2 }), shapes: [[1, 2, 3, 3]] },
  { name: 'upsample bilinear to [5, 7]', fn: (x) => upsample(x, { size: [5, 7], mode: 'bilinear' }), shapes: [[2, 1, 3, 4]] },
  { name: 'upsample bilinear alignCorners', fn: (x) => upsample(x, { size: [4, 5], mode: 'bilinear', alignCorners: true }), shapes: [[1, 2, 3, 3]] },
  { name: 'layerNorm [4, 3] with weight and bias', fn: (x, w, b) => layerNorm(x, [4, 3], { weight: w, bias: b }), shapes: [[2, 4, 3], [4, 3], [4, 3]] },
  { name: 'layerNorm over axis 0', fn: (x) => layerNorm(x, { axes: 0 }), shapes: [[5, 2]] },
  { name: 'groupNorm 2 groups with weight and bias', fn: (x, w, b) => groupNorm(x, 2, { weight: w, bias: b }), shapes: [[2, 4, 3, 2], [4], [4]] },
  { name: 'softmaxCrossEntropy, integer labels, mean', fn: (z) => softmaxCrossEntropy(z, labels), shapes: [[3, 4]] },
  { name: 'softmaxCrossEntropy, probability targets, none', fn: (z, p) => softmaxCrossEntropy(z, softmax(p), { reduction: 'none' }), shapes: [[3, 4], [3, 4]] },
];

describe('checkGrads to order 2, forward and reverse', () => {
  CASES.forEach((c, idx) => {
    it(c.name, async () => {
      const args = c.shapes.map((s, i) => draw(s, 100 * idx + i));
      await checkGrads(c.fn, args, { order: 2, modes: ['fwd', 'rev'] });
    });
  });
});

function expectNear(got: Tensor, want: Tensor, atol = 1e-12): void {
  expect(got.shape).toEqual(want.shape);
  const g = got.dataSync();
  const w = want.dataSync();
  for (let i = 0; i < w.length; i++) if (!(Math.abs(g[i]! - w[i]!) <= atol * (1 + Math.abs(w[i]!)))) expect.fail(`element ${i}: ${g[i]} vs ${w[i]}`);
}

describe('jit equals eager evaluation', () => {
  CASES.forEach((c, idx) => {
    it(c.name, () => {
      const args = c.shapes.map((s, i) => draw(s, 100 * idx + i));
      const compiled = jit(c.fn);
      tidy(() => expectNear(compiled(...args), c.fn(...args)));
      compiled.clearCache();
    });
  });
});

describe('vmap equals a loop over the batch', () => {
  CASES.forEach((c, idx) => {
    it(c.name, () => {
      // The first argument gets a batch of 3; the others are shared (in_axes null).
      const batched = draw([3, ...c.shapes[0]!], 7 + idx);
      const rest = c.shapes.slice(1).map((s, i) => draw(s, 100 * idx + i + 1));
      tidy(() => {
        const got = vmap((x: Tensor, ...r: Tensor[]) => c.fn(x, ...r), { inAxes: [0, ...rest.map(() => null)] })(batched, ...rest);
        const want = stack([0, 1, 2].map((b) => c.fn(batched.slice([b], [1]).squeeze(0), ...rest)));
        expectNear(got, want);
      });
    });
  });

  it('softmaxCrossEntropy with a batch of integer labels', () => {
    const z = draw([3, 4, 5], 41);
    const y = tensor([[0, 4, 2, 1], [3, 3, 0, 4], [1, 2, 2, 0]], { dtype: 'int32' });
    tidy(() => {
      const got = vmap((a: Tensor, b: Tensor) => softmaxCrossEntropy(a, b, { reduction: 'none' }))(z, y);
      const want = stack([0, 1, 2].map((b) => softmaxCrossEntropy(z.slice([b], [1]).squeeze(0), y.slice([b], [1]).squeeze(0), { reduction: 'none' })));
      expectNear(got, want);
    });
  });

  it('a batch of weights too (per-example kernels)', () => {
    const xs = draw([3, 1, 2, 4, 4], 1);
    const ws = draw([3, 2, 2, 3, 3], 2);
    tidy(() => {
      const got = vmap((x: Tensor, w: Tensor) => conv2d(x, w, { padding: 1, stride: 2 }))(xs, ws);
      const want = stack([0, 1, 2].map((b) => conv2d(xs.slice([b], [1]).squeeze(0), ws.slice([b], [1]).squeeze(0), { padding: 1, stride: 2 })));
      expectNear(got, want);
    });
  });
});

describe('memory', () => {
  it('jit of a layer stack frees its temporaries', () => {
    const x = draw([1, 2, 6, 6], 3);
    const w = draw([2, 2, 3, 3], 4);
    const f = jit((a: Tensor, k: Tensor) => upsample(maxPool2d(conv2d(a, k, { padding: 1 }), 2), { scaleFactor: 2, mode: 'bilinear' }));
    tidy(() => {
      f(x, w);
    });
    const before = memory().tensors;
    tidy(() => {
      f(x, w);
    });
    expect(memory().tensors).toBe(before);
    f.clearCache();
  });
});
