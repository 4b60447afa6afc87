// argmax/argmin and cumsum/cumprod on the CPU reference, against plain loops over the flat data:
// every axis of a rank-3 tensor, keepdims, reverse scans, ties (first index), NaN (counts as
// the extreme, the first one wins), int32 inputs, and argument validation.

import { describe, expect, it } from 'vitest';
import { type Tensor, argmax, argmin, cumprod, cumsum, tensor, traceProgram } from '@scorch/tensor';
import { product, ravel, seededValues, unravel } from './reference.js';

const shape = [3, 4, 5];
// Multiples of ½ in [−2, 2]: many ties along every axis.
const data = seededValues(product(shape), 77, -4, 4, 2);
const x = tensor(data, { shape, dtype: 'float64' });

/** The lines of `shape` along `axis`: for each, the flat positions in axis order. */
function linesAlong(s: readonly number[], axis: number): number[][] {
  const lineShape = s.filter((_, d) => d !== axis);
  return Array.from({ length: product(lineShape) }, (_, l) => {
    const c = unravel(l, lineShape);
    return Array.from({ length: s[axis]! }, (_, k) => ravel([...c.slice(0, axis), k, ...c.slice(axis)], s));
  });
}

/** First index of the extreme, NaN counting as the extreme (the loop the docs describe). */
function argReference(values: number[], better: (a: number, b: number) => boolean): number {
  const nan = values.findIndex(Number.isNaN);
  if (nan >= 0) return nan;
  let at = 0;
  values.forEach((v, k) => {
    if (better(v, values[at]!)) at = k;
  });
  return at;
}

const ints = (t: Tensor) => Array.from(t.dataSync());

describe('argmax and argmin', () => {
  for (const axis of [0, 1, 2, -1]) {
    it(`along axis ${axis} of [3,4,5]: the first index of the extreme (ties)`, () => {
      const a = (axis + 3) % 3;
      const lines = linesAlong(shape, a).map((line) => line.map((p) => data[p]!));
      const maxes = argmax(x, axis);
      expect(maxes.dtype).toBe('int32');
      expect(maxes.shape).toEqual(shape.filter((_, d) => d !== a));
      expect(ints(maxes)).toEqual(lines.map((v) => argReference(v, (p, q) => p > q)));
      expect(ints(argmin(x, axis))).toEqual(lines.map((v) => argReference(v, (p, q) => p < q)));
    });
  }

  it('keepdims keeps the axis as 1; no axis means the flattened tensor', async () => {
    expect(argmax(x, 1, { keepdims: true }).shape).toEqual([3, 1, 5]);
    expect(argmax(x).shape).toEqual([]);
    expect(argmax(x, undefined, { keepdims: true }).shape).toEqual([1, 1, 1]);
    expect(await argmax(x).item()).toBe(argReference(data, (p, q) => p > q));
    expect(await argmin(x).item()).toBe(argReference(data, (p, q) => p < q));
  });

  it('NaN counts as the maximum and as the minimum (the first NaN wins); ±∞ are ordinary', () => {
    const t = tensor([[1, NaN, 3, NaN], [-Infinity, -Infinity, 0, Infinity], [2, 2, 2, 2]]);
    expect(ints(argmax(t, 1))).toEqual([1, 3, 0]);
    expect(ints(argmin(t, 1))).toEqual([1, 0, 0]);
    expect(ints(argmax(tensor([-Infinity, -Infinity]), 0))).toEqual([0]);
  });

  it('int32 inputs, including the extremes of the range', () => {
    const t = tensor([[5, -(2 ** 31), 2 ** 31 - 1, 2 ** 31 - 1], [0, 0, -1, -(2 ** 31)]], { dtype: 'int32' });
    expect(ints(argmax(t, 1))).toEqual([2, 0]);
    expect(ints(argmin(t, 1))).toEqual([1, 3]);
  });

  it('validates its arguments', () => {
    expect(() => argmax(x, 3)).toThrow('argmax: axis 3 is out of range');
    expect(() => argmin(tensor([[]]), 1)).toThrow('argmin: cannot reduce the empty axis 1 of [1,0]');
    expect(() => argmax(tensor([true]), 0)).toThrow('argmax: expected a numeric tensor, got bool; cast it first');
    expect(() => argmax(x, 0, { keepDims: true } as never)).toThrow("argmax: unknown option 'keepDims' (did you mean 'keepdims'?)");
  });

  it('refuses a reduction whose indices do not fit the int32 result, before copying anything', () => {
    // Past 2^31 - 1 the kernel's store into the Int32Array result wrapped an index to a negative
    // number (2^31 became -2^31); PyTorch returns int64. Broadcast views hold no elements, so
    // these shapes cost nothing; the flattened case was refused before reshape copied the view.
    const fit = 'do not fit the int32 result (at most 2147483647 = 2^31 - 1); reduce over fewer elements';
    const line = tensor([1.5]).expand([2 ** 31 + 1]);
    expect(() => argmax(line)).toThrow(`argmax: reducing all 2147483649 elements of [2147483649], indices up to 2147483648 ${fit}`);
    expect(() => argmin(line, 0)).toThrow(`argmin: reducing axis 0 of [2147483649] (extent 2147483649), indices up to 2147483648 ${fit}`);
    const plane = tensor([[1.5]]).expand([2 ** 16, 2 ** 15 + 1]);
    expect(() => argmax(plane)).toThrow(`argmax: reducing all 2147549184 elements of [65536,32769], indices up to 2147549183 ${fit}`);
    // Along an axis of a fitting extent it is allowed: 2^15 + 1 columns, the first of equal values.
    expect(ints(argmax(tensor([[1.5]]).expand([3, 2 ** 15 + 1]), 1))).toEqual([0, 0, 0]);
    // Exactly 2^31 entries fit (the largest index is 2^31 − 1): traced, not run, as the check is on
    // the shape and a 2^31-element kernel would take seconds.
    const edge = tensor([1.5]).expand([2 ** 31]);
    expect(traceProgram(([t]: readonly Tensor[]) => [argmax(t!, 0), argmin(t!)], [edge], []).program.outputs).toHaveLength(2);
  });
});

describe('cumsum and cumprod', () => {
  for (const axis of [0, 1, 2]) {
    for (const reverse of [false, true]) {
      it(`along axis ${axis}${reverse ? ', reverse' : ''}: running sums and products (exact on these values)`, () => {
        // Multiples of ½ with at most 5 factors or 20 terms: every partial result is exact in float64.
        const sums = new Array<number>(data.length);
        const prods = new Array<number>(data.length);
        for (const line of linesAlong(shape, axis)) {
          const order = reverse ? [...line].reverse() : line;
          let s = 0;
          let p = 1;
          for (const pos of order) {
            s += data[pos]!;
            p *= data[pos]!;
            sums[pos] = s;
            prods[pos] = p;
          }
        }
        const opts = { reverse };
        expect(Array.from(cumsum(x, axis, opts).dataSync())).toEqual(sums);
        expect(Array.from(cumprod(x, axis, opts).dataSync())).toEqual(prods);
        expect(cumsum(x, axis, opts).shape).toEqual(shape);
      });
    }
  }

  it('along a leading axis (a row of running doubles), float32 is rounded only when stored and int32 wraps per step', () => {
    // Column k holds 1 then eleven 2^-26 (below float32's half ulp of 1): a float32 running sum
    // would stay at 1, the double one reaches 1 + 11·2^-26, rounded when stored.
    const rows = 12;
    const cols = 3;
    const values = Array.from({ length: rows * cols }, (_, i) => (i < cols ? 1 + i : 2 ** -26));
    const want = values.map((_, i) => {
      let sum = 0;
      for (let r = 0; r <= Math.floor(i / cols); r++) sum += values[r * cols + (i % cols)]!;
      return Math.fround(sum);
    });
    expect(Array.from(cumsum(tensor(values, { shape: [rows, cols] }), 0).dataSync())).toEqual(want);
    expect(want[want.length - 3]).toBe(Math.fround(1 + 11 * 2 ** -26));
    expect(Array.from(cumsum(tensor([[2 ** 31 - 1, 5], [1, 6]], { dtype: 'int32' }), 0).dataSync())).toEqual([2 ** 31 - 1, 5, -(2 ** 31), 11]);
    expect(Array.from(cumprod(tensor([[65536, 2], [65536, 3]], { dtype: 'int32' }), 0, { reverse: true }).dataSync())).toEqual([0, 6, 65536, 3]);
  });

  it('negative axes, int32 (wrapping as on a GPU), NaN from the first NaN on', () => {
    expect(Array.from(cumsum(tensor([[1, 2], [3, 4]]), -2).dataSync())).toEqual([1, 2, 4, 6]);
    expect(Array.from(cumprod(tensor([65536, 65536, 3], { dtype: 'int32' }), 0).dataSync())).toEqual([65536, 0, 0]);
    expect(Array.from(cumsum(tensor([2 ** 31 - 1, 1], { dtype: 'int32' }), 0).dataSync())).toEqual([2 ** 31 - 1, -(2 ** 31)]);
    expect(Array.from(cumsum(tensor([1, NaN, 2]), 0).dataSync())).toEqual([1, NaN, NaN]);
    expect(Array.from(cumprod(tensor([0, Infinity, 2]), 0).dataSync())).toEqual([0, NaN, NaN]);
  });

  it('validates its arguments', () => {
    expect(() => cumsum(x, 5)).toThrow('cumsum: axis 5 is out of range');
    expect(() => cumprod(x, undefined as never)).toThrow('cumprod: expected an axis (an integer), got none');
    expect(() => cumsum(tensor([true]), 0)).toThrow('cumsum: expected a numeric tensor, got bool; cast it first');
    expect(() => cumsum(x, 0, { reversed: true } as never)).toThrow("cumsum: unknown option 'reversed' (did you mean 'reverse'?)");
  });
});
