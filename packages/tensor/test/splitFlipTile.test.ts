// split, flip and tile on the CPU reference, against plain index arithmetic on flat data
// (NumPy's definitions), and their argument validation.

import { describe, expect, it } from 'vitest';
import { type Tensor, arange, argmax, clamp, cumprod, cumsum, flip, gelu, memory, split, tensor, tidy, tile } from '@scorch/tensor';
import { product, ravel, unravel } from './reference.js';

/** 0, 1, 2, ... laid out in `shape`: every element names its own flat position. */
const iota = (shape: number[]): Tensor => arange(product(shape)).reshape(shape);
const flat = (t: Tensor) => Array.from(t.dataSync());

describe('split', () => {
  it('into sizes along an axis (torch.split with a list), including an empty piece', () => {
    const pieces = split(iota([2, 6]), [1, 0, 3, 2], 1);
    expect(pieces.map((p) => p.shape)).toEqual([[2, 1], [2, 0], [2, 3], [2, 2]]);
    expect(pieces.map(flat)).toEqual([[0, 6], [], [1, 2, 3, 7, 8, 9], [4, 5, 10, 11]]);
  });

  it('into a count of equal pieces (numpy.split), default axis 0, negative axes', () => {
    expect(split(iota([6, 2]), 3).map(flat)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
    expect(split(iota([2, 4]), 2, -1).map(flat)).toEqual([[0, 1, 4, 5], [2, 3, 6, 7]]);
  });

  it('validates: sizes that do not sum to the extent, uneven counts, bad sizes, bad axes', () => {
    expect(() => split(iota([2, 6]), [1, 2], 1)).toThrow('split: sizes [1,2] sum to 3, but axis 1 of [2,6] has extent 6');
    expect(() => split(iota([5]), 2)).toThrow('split: axis 0 of [5] has extent 5, which does not divide into 2 equal pieces; pass the sizes instead');
    expect(() => split(iota([5]), 0)).toThrow('split: the number of pieces must be a positive integer, got 0');
    expect(() => split(iota([5]), [2, -1, 4])).toThrow('split: size -1 at position 1 is invalid; expected a non-negative integer');
    expect(() => split(iota([5]), [5], 1)).toThrow('split: axis 1 is out of range');
  });
});

describe('flip', () => {
  const shape = [2, 3, 4];
  const reference = (axes: number[]) =>
    Array.from({ length: product(shape) }, (_, i) => ravel(unravel(i, shape).map((c, d) => (axes.includes(d) ? shape[d]! - 1 - c : c)), shape));

  for (const axes of [[0], [1], [2], [0, 2], [0, 1, 2]]) {
    it(`axes ${JSON.stringify(axes)} of [2,3,4] (numpy.flip)`, () => {
      const y = flip(iota(shape), axes);
      expect(y.shape).toEqual(shape);
      expect(flat(y)).toEqual(reference(axes));
    });
  }

  it('all axes by default, a single (negative) axis, int32 and bool keep their dtype', () => {
    expect(flat(flip(iota(shape)))).toEqual(reference([0, 1, 2]));
    expect(flat(flip(iota(shape), -1))).toEqual(reference([2]));
    expect(flat(flip(tensor([1, 2, 3], { dtype: 'int32' })))).toEqual([3, 2, 1]);
    const b = flip(tensor([true, false, false]));
    expect(b.dtype).toBe('bool');
    expect(flat(b)).toEqual([0, 0, 1]);
  });

  it('validates its axes', () => {
    expect(() => flip(iota([2, 3]), [0, 0])).toThrow('flip: axes [0,0] name an axis twice');
    expect(() => flip(iota([2, 3]), 2)).toThrow('flip: axis 2 is out of range');
  });
});

describe('tile', () => {
  /** numpy.tile by index arithmetic: out[i] = x[i mod shape] with x and reps padded to one rank. */
  function tileReference(shape: number[], reps: number[]): { shape: number[]; data: number[] } {
    const rank = Math.max(shape.length, reps.length);
    const s = [...new Array<number>(rank - shape.length).fill(1), ...shape];
    const r = [...new Array<number>(rank - reps.length).fill(1), ...reps];
    const out = s.map((d, i) => d * r[i]!);
    return { shape: out, data: Array.from({ length: product(out) }, (_, i) => ravel(unravel(i, out).map((c, d) => c % s[d]!), s)) };
  }

  for (const [shape, reps] of [[[2, 3], [2, 2]], [[2, 3], [3]], [[3], [2, 1, 2]], [[2, 1, 3], [1, 4, 1]], [[2, 3], [0, 2]], [[], [3]]] as [number[], number[]][]) {
    it(`${JSON.stringify(shape)} by reps ${JSON.stringify(reps)} (numpy.tile)`, () => {
      const y = tile(iota(shape), reps);
      const ref = tileReference(shape, reps);
      expect(y.shape).toEqual(ref.shape);
      expect(flat(y)).toEqual(ref.data);
    });
  }

  it('validates reps', () => {
    expect(() => tile(iota([2]), [-1])).toThrow('tile: reps[0] = -1 is invalid; expected a non-negative integer');
    expect(() => tile(iota([2]), [1.5])).toThrow('tile: reps[0] = 1.5 is invalid; expected a non-negative integer');
    expect(() => tile(iota([2]), 2 as never)).toThrow('tile: reps must be an array of non-negative integers, got number');
  });
});

describe('memory', () => {
  it('the new ops free every intermediate under tidy (flip\'s index tensors too)', () => {
    const x = iota([3, 4]).cast('float64').mul(0.25);
    const before = memory();
    tidy(() => {
      const [a, b] = split(x, [1, 3], 1);
      tile(flip(gelu(a!)), [1, 3]).mul(clamp(b!, 0.3, 1.5)).add(cumprod(x, 1).sum()).add(cumsum(x, 0).sum()).add(argmax(x, 0).cast('float64').sum());
    });
    expect(memory()).toEqual(before);
  });
});
