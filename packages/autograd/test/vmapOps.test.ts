// vmap of the public ops against a loop over the examples: the composites and nn ops built on the
// primitives (reductions with axis lists, keepdims and negative axes, argmax, scans, logsumexp,
// softmax, matmul with 1-D and broadcast operands, every movement op, indexSelect, conv2d,
// convTranspose2d, the pools, upsample, layerNorm, groupNorm, softmaxCrossEntropy), with float64,
// float32, int32 and bool inputs; batch axes first, inner and last; outputs at 0 and −1; batch
// sizes 3, 1 and 0; inputs that are views (sliced, transposed, flipped, a stride-0 batch); two
// operands batched, shared (inAxes null) or mixed; and vmap(grad), vmap(jit), nested vmap.
//
// Tolerances: the batched program does each example's arithmetic in the same order as the loop,
// so results are equal bit for bit in float64 and float32 (the same CPU kernels), except for the
// products (matmul, conv2d and convTranspose2d, which are im2col matmuls): a batched product may
// block its k-term sums differently, so those are held to the bound of a k-term dot product in the
// dtype, k·ε·Σ|a||b| (Higham, Accuracy and Stability, §3.1; ε = 2⁻⁵³ or 2⁻²⁴), Σ|a||b| being the
// same function of |a| and |b|. A batch of size 0 has no example to compare: its result must have
// the shape and dtype of one example's with the batch axis (0 long) inserted.

import { describe, expect, it } from 'vitest';
import { grad, jit, vmap } from '@scorch/autograd';
import * as T from '@scorch/tensor';

type Fn = (...xs: T.Tensor[]) => T.Tensor | T.Tensor[];
type FloatDType = 'float32' | 'float64';

const asList = (r: T.Tensor | T.Tensor[]): T.Tensor[] => (Array.isArray(r) ? r : [r]);
/** Example `b` of x batched at `axis`. */
const example = (x: T.Tensor, axis: number, b: number) => T.narrow(x, axis, b, 1).squeeze(axis);
/** Moves axis 0 of x to `axis` (a view). */
function placeBatch(x: T.Tensor, axis: number): T.Tensor {
  if (axis === 0) return x;
  const perm = [...Array(x.rank).keys()].slice(1);
  perm.splice(axis, 0, 0);
  return x.permute(perm);
}

let seed = 1;
const draw = (shape: number[], dtype: FloatDType) => T.randn(shape, { key: T.randomKey(seed++), dtype });

/**
 * vmap(f, { inAxes, outAxes })(...args) against f of each example, stacked at outAxes. `k`: the
 * contraction length of a product (null: exact); its bound needs `magnitude`, f of |args|.
 */
function expectLoop(label: string, f: Fn, args: T.Tensor[], inAxes: (number | null)[], outAxes: number, k: number | null = null): void {
  T.tidy(() => {
    const axes = inAxes.map((a, i) => (a === null ? null : a < 0 ? a + args[i]!.rank : a));
    const j = axes.findIndex((a) => a !== null);
    const size = args[j]!.shape[axes[j]!]!;
    const got = asList(vmap(f, { inAxes, outAxes })(...args) as T.Tensor | T.Tensor[]);
    const one = (b: number) => asList(f(...args.map((x, i) => (axes[i] === null ? x : example(x, axes[i]!, b)))));
    if (size === 0) {
      // One example's shapes and dtypes, from zeros of the per-example shapes.
      const shapes = asList(f(...args.map((x, i) => (axes[i] === null ? x : T.zeros(x.shape.filter((_, d) => d !== axes[i]), { dtype: x.dtype })))));
      expect(got.length, label).toBe(shapes.length);
      got.forEach((g, o) => {
        const want = [...shapes[o]!.shape];
        want.splice(outAxes < 0 ? outAxes + want.length + 1 : outAxes, 0, 0);
        expect([g.shape, g.dtype], `${label}, output ${o}`).toEqual([want, shapes[o]!.dtype]);
      });
      return;
    }
    const each = Array.from({ length: size }, (_, b) => one(b));
    const magnitude = k === null ? null : asList(vmap(f, { inAxes, outAxes })(...args.map((x) => x.abs())) as T.Tensor | T.Tensor[]);
    got.forEach((g, o) => {
      const want = T.stack(each.map((e) => e[o]!), outAxes < 0 ? outAxes + g.rank : outAxes);
      expect([g.shape, g.dtype], `${label}, output ${o}`).toEqual([want.shape, want.dtype]);
      const [a, w] = [g.dataSync(), want.dataSync()];
      const m = magnitude ? magnitude[o]!.dataSync() : null;
      const eps = g.dtype === 'float32' ? 2 ** -24 : 2 ** -53;
      const bad = Array.from(a).findIndex((v, i) => {
        const ref = Number(w[i]);
        if (Object.is(Number(v), ref) || (Number.isNaN(Number(v)) && Number.isNaN(ref))) return false;
        return !(m && Math.abs(Number(v) - ref) <= k! * eps * Number(m[i]));
      });
      expect(bad, `${label}, output ${o}, element ${bad}: ${a[bad]} batched, ${w[bad]} example by example`).toBe(-1);
    });
  });
}

/** One-operand cases: name, per-example shape, function. */
const UNARY: [string, number[], Fn][] = [
  ['gelu, softplus, silu, elu, clamp', [3, 4], (x) => [T.gelu(x), T.softplus(x), T.silu(x), T.elu(x), T.clamp(x, -0.5, 0.5)]],
  ['comparisons, where, casts, isFinite', [3, 4], (x) => [T.greaterEqual(x, 0.1), T.where(T.greater(x, 0), x, 0), T.cast(x.mul(3), 'int32'), T.cast(T.round(x), 'bool'), T.isFinite(T.log(x))]],
  ['sum over all, an axis, a list with keepdims, negative axes', [3, 4, 5], (x) => [T.sum(x), T.sum(x, -1), T.sum(x, [0, 2], true), T.sum(x, [-1, -3])]],
  ['max, min, mean, variance', [3, 4, 5], (x) => [T.max(x, 1, true), T.min(x, -1), T.mean(x, [1, 2]), T.variance(x, [1]), T.variance(x)]],
  ['logsumexp, softmax, logSoftmax', [3, 4, 5], (x) => [T.logsumexp(x, -1), T.logsumexp(x, undefined, true), T.softmax(x, 1), T.logSoftmax(x)]],
  ['argmax, argmin', [3, 4, 5], (x) => [T.argmax(x, 1), T.argmax(x), T.argmin(x, -1, { keepdims: true })]],
  ['cumsum, cumprod', [3, 4, 5], (x) => [T.cumsum(x, -1), T.cumprod(x, 0, { reverse: true }), T.cumsum(x, 1)]],
  ['reshape, transpose, permute, squeeze, unsqueeze', [3, 1, 5], (x) => [T.reshape(x, [5, -1]), T.transpose(x), T.permute(x, [2, 0, 1]), T.squeeze(x), T.unsqueeze(x, -1)]],
  ['expand, broadcastTo', [3, 1, 5], (x) => [T.expand(x, [2, 3, 4, 5]), T.broadcastTo(x, [2, 3, 2, 5])]],
  ['slice, narrow, flip, tile, pad', [3, 4, 5], (x) => [T.slice(x, [1, 0, 2], [2, 3, 2]), T.narrow(x, -1, 1, 3), T.flip(x, [0, -1]), T.tile(x, [2, 1, 1, 2]), T.pad(x, [[1, 2], [0, 0], [0, 3]])]],
  ['split, concat, stack, indexSelect', [3, 4, 5], (x) => [...T.split(x, [1, 3], 1), T.concat([x, x.mul(2)], 2), T.stack([x, x.neg()], -1), T.indexSelect(x, 1, [3, 0, 0, 2])]],
  ['matmul of an example with itself', [3, 3], (x) => [T.matmul(x, T.transpose(x)), T.matmul(x, x)]],
  ['layerNorm, groupNorm', [2, 4, 3, 3], (x) => [T.layerNorm(x, [3, 3]), T.layerNorm(x, { axes: [1, -1] }), T.groupNorm(x, 2)]],
  ['maxPool2d, avgPool2d, upsample', [2, 3, 6, 6], (x) => [
    T.maxPool2d(x, 3, { stride: 2, padding: 1 }), T.avgPool2d(x, 2, { stride: 2 }), T.upsample(x, { scaleFactor: 2 }),
    T.upsample(x, { size: [7, 5], mode: 'bilinear' }), T.upsample(x, { size: [7, 5], mode: 'bilinear', alignCorners: true }),
  ]],
];

/** Two-operand cases: name, the per-example shapes, function, the products' contraction length (null: exact). */
const BINARY: [string, number[], number[], Fn, number | null][] = [
  ['broadcasting arithmetic and comparisons', [3, 4], [4], (x, y) => [T.add(x, y), T.sub(x, y), T.div(y, x), T.pow(T.abs(x), y), T.maximum(x, y), T.minimum(x, y), T.less(x, y), T.where(T.less(x, y), x, y)], null],
  ['concat, stack', [3, 4], [3, 4], (x, y) => [T.concat([x, y], 0), T.stack([x, y], 1)], null],
  ['layerNorm with a weight and bias', [3, 4, 5], [5], (x, y) => T.layerNorm(x, [5], { weight: y, bias: y.mul(2) }), null],
  ['matmul', [3, 4], [4, 5], (x, y) => T.matmul(x, y), 4],
  ['matmul, a 1-D left operand', [4], [4, 5], (x, y) => T.matmul(x, y), 4],
  ['matmul, a 1-D right operand', [3, 4], [4], (x, y) => T.matmul(x, y), 4],
  ['matmul, 1-D by 1-D', [4], [4], (x, y) => T.matmul(x, y), 4],
  ['matmul, a batched left by a matrix', [2, 3, 4], [4, 5], (x, y) => T.matmul(x, y), 4],
  ['matmul, a matrix by a batched right', [3, 4], [2, 4, 5], (x, y) => T.matmul(x, y), 4],
  ['matmul, broadcast batch dimensions', [2, 1, 3, 4], [3, 4, 2], (x, y) => T.matmul(x, y), 4],
  ['conv2d', [2, 3, 5, 5], [4, 3, 3, 3], (x, w) => T.conv2d(x, w, { padding: 1, stride: 2 }), 3 * 3 * 3],
  ['conv2d, groups and dilation', [2, 4, 5, 5], [4, 2, 2, 2], (x, w) => T.conv2d(x, w, { groups: 2, dilation: 2 }), 2 * 2 * 2],
  // The adjoint as a stride-1 convolution of the dilated input with the flipped kernel: k = C·kh·kw.
  ['convTranspose2d', [2, 3, 4, 4], [3, 2, 3, 3], (x, w) => T.convTranspose2d(x, w, { stride: 2, padding: 1 }), 3 * 3 * 3],
];

const BATCH_SIZES = [3, 1, 0];

describe('vmap of the public ops equals a loop over the examples', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    it(`one operand (${dtype}): batch axis first, inner and last, outputs at 0 and -1, batches of 3, 1 and 0`, () => {
      for (const [name, shape, f] of UNARY) {
        for (const size of BATCH_SIZES) {
          for (const axis of [0, 1, shape.length]) {
            const x = placeBatch(draw([size, ...shape], dtype), axis);
            for (const out of [0, -1]) expectLoop(`${name}, ${size} at ${axis}, out ${out}`, f, [x], [axis], out);
          }
          // A negative inAxes: the last axis.
          expectLoop(`${name}, ${size} at -1`, f, [placeBatch(draw([size, ...shape], dtype), shape.length)], [-1], 0);
        }
      }
    });

    it(`two operands (${dtype}): each batched first, last or shared`, () => {
      const choices: [number | null, number | null][] = [[0, 0], [0, null], [null, 0], [-1, -1], [-1, null], [null, -1], [0, -1]];
      for (const [name, s1, s2, f, k] of BINARY) {
        for (const size of BATCH_SIZES) {
          for (const [a1, a2] of choices) {
            const make = (s: number[], a: number | null) => (a === null ? draw(s, dtype) : placeBatch(draw([size, ...s], dtype), a === -1 ? s.length : 0));
            expectLoop(`${name}, ${size} examples, inAxes [${a1}, ${a2}]`, f, [make(s1, a1), make(s2, a2)], [a1, a2], 0, k);
          }
        }
      }
    });
  }

  it('int32 and bool inputs', () => {
    const ints = (shape: number[]) => T.cast(draw(shape, 'float64').mul(20), 'int32');
    const bools = (shape: number[]) => T.greater(draw(shape, 'float64'), 0);
    const onInts: Fn = (x) => [
      T.sum(x, [1]), T.sum(x), T.max(x, -1, true), T.min(x, 0), T.cumsum(x, 1), T.cumprod(x, -1, { reverse: true }), T.argmax(x, 2), T.argmin(x),
      T.abs(x), T.mul(x, x), T.maximum(x, 1), T.cast(x, 'float32'), T.equal(x, 2), T.indexSelect(x, 1, [2, 2, 0]), T.pad(x, [[1, 0], [0, 2], [0, 0]]),
    ];
    const onBools: Fn = (x) => [T.cast(x, 'int32'), T.where(x, T.ones([3, 4, 5], { dtype: 'float64' }), -2), T.notEqual(x, T.flip(x, 1)), T.concat([x, x], 0), T.transpose(x)];
    for (const [f, make] of [[onInts, ints], [onBools, bools]] as const) {
      for (const size of BATCH_SIZES) {
        for (const axis of [0, 1, 3]) expectLoop(`${make === ints ? 'int32' : 'bool'}, ${size} at ${axis}`, f, [placeBatch(make([size, 3, 4, 5]), axis)], [axis], 0);
      }
    }
  });

  it('batched indices: indexSelect and softmaxCrossEntropy labels, batched or shared', () => {
    const cases: [string, number[], Fn][] = [
      ['indexSelect, axis 0', [5, 4], (x, i) => T.indexSelect(x, 0, i)],
      ['indexSelect, axis 1', [3, 5], (x, i) => T.indexSelect(x, 1, i)],
      ['softmaxCrossEntropy', [4, 5], (x, i) => [T.softmaxCrossEntropy(x, i), T.softmaxCrossEntropy(x, i, { reduction: 'none' })]],
    ];
    for (const [name, shape, f] of cases) {
      for (const size of BATCH_SIZES) {
        for (const [a1, a2] of [[0, 0], [null, 0], [0, null], [-1, -1]] as const) {
          const x = a1 === null ? draw(shape, 'float64') : placeBatch(draw([size, ...shape], 'float64'), a1 === -1 ? shape.length : 0);
          const n = a2 === null ? 1 : size;
          const labels = T.tensor(Array.from({ length: n * 4 }, (_, i) => (i * 7 + 1) % 3), { dtype: 'int32', shape: a2 === null ? [4] : [n, 4] });
          expectLoop(`${name}, ${size} examples, inAxes [${a1}, ${a2}]`, f, [x, a2 === -1 ? placeBatch(labels, 1) : labels], [a1, a2], 0);
        }
      }
    }
  });

  it('inputs that are views: sliced, transposed, flipped, and a stride-0 batch', () => {
    for (const dtype of ['float64', 'float32'] as const) {
      for (const [name, shape, f] of UNARY) {
        for (const axis of [0, shape.length]) {
          const big = draw([5, ...shape.map((d) => d + 3)], dtype);
          const sliced = T.slice(big, [1, ...shape.map(() => 2)], [3, ...shape]);
          const transposed = T.transpose(draw([3, ...shape.slice(0, -2), shape.at(-1)!, shape.at(-2)!], dtype));
          const flipped = T.flip(draw([3, ...shape], dtype));
          const repeated = T.broadcastTo(draw([1, ...shape], dtype), [3, ...shape]);
          for (const [view, x] of [['sliced', sliced], ['transposed', transposed], ['flipped', flipped], ['stride 0', repeated]] as const) {
            expectLoop(`${dtype} ${name}, a ${view} view batched at ${axis}`, f, [placeBatch(x, axis)], [axis], 0);
          }
        }
      }
    }
  });

  it('compositions: vmap(grad), vmap(jit), jit(vmap) and vmap of vmap over other axes', () => {
    for (const [name, shape, f] of UNARY.filter(([n]) => !/comparisons|argmax/.test(n))) {
      const scalar = (x: T.Tensor) => asList(f(x)).reduce((acc, t) => acc.add(T.sum(T.sin(t))), T.zeros([], { dtype: 'float64' }));
      for (const axis of [0, shape.length]) {
        const x = placeBatch(draw([3, ...shape], 'float64'), axis);
        expectLoop(`vmap(grad) ${name} at ${axis}`, grad(scalar) as Fn, [x], [axis], 0);
        expectLoop(`vmap(jit) ${name} at ${axis}`, jit(f), [x], [axis], -1);
        const [a, b] = [asList(vmap(f, { inAxes: axis })(x) as T.Tensor | T.Tensor[]), asList(jit(vmap(f, { inAxes: axis }))(x) as T.Tensor | T.Tensor[])];
        a.forEach((t, o) => expect(b[o]!.dataSync(), `jit(vmap) ${name} at ${axis}, output ${o}`).toEqual(t.dataSync()));
      }
      // The inner vmap over the last axis of the outer example, its batch out at 0; the outer over axis 0, out at 1.
      const grid = draw([2, ...shape, 3], 'float64');
      const nested = asList(vmap(vmap(f, { inAxes: -1, outAxes: 0 }), { inAxes: 0, outAxes: 1 })(grid) as T.Tensor | T.Tensor[]);
      const rows = Array.from({ length: 2 }, (_, i) => Array.from({ length: 3 }, (_, j) => asList(f(example(example(grid, 0, i), shape.length, j)))));
      nested.forEach((t, o) => {
        const want = T.stack(rows.map((row) => T.stack(row.map((r) => r[o]!), 0)), 1);
        expect(t.shape, `nested ${name}, output ${o}`).toEqual(want.shape);
        expect(t.dataSync(), `nested ${name}, output ${o}`).toEqual(want.dataSync());
      });
    }
  });
});
