// Movement and type operations: reshape (with −1), transpose and permute, broadcastTo, slice
// (negative begin, size −1), narrow, pad, concat along each axis, stack, squeeze/unsqueeze,
// indexSelect (repeats, axis 1) and cast between every pair of dtypes. Values are integers, so
// every result is exact; references are index arithmetic in plain JS or written out by hand.

import { describe, expect, it } from 'vitest';
import {
  type DType, type Tensor, arange, broadcastTo, cast, concat, indexSelect, narrow, pad, permute, slice,
  squeeze, stack, tensor, unsqueeze,
} from '@scorch/tensor';
import { product, ravel, unravel } from './reference.js';

/** 0, 1, 2, ... laid out in `shape` (so every element names its own flat position). */
const iota = (shape: number[]): Tensor => arange(product(shape)).reshape(shape);

/** Plain-JS permutation of row-major data: out[i₀..] = in[idx with axes permuted]. */
function permuteReference(shape: number[], perm: number[]): number[] {
  const outShape = perm.map((p) => shape[p]!);
  return Array.from({ length: product(shape) }, (_, i) => {
    const o = unravel(i, outShape);
    const src = new Array<number>(shape.length);
    perm.forEach((p, k) => (src[p] = o[k]!));
    return ravel(src, shape);
  });
}

describe('reshape', () => {
  it('keeps row-major order and infers one −1', async () => {
    const x = iota([2, 3, 2]);
    expect(await x.reshape([3, 4]).toArray()).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
    expect(x.reshape([-1]).shape).toEqual([12]);
    expect(x.reshape([2, -1]).shape).toEqual([2, 6]);
    expect(x.reshape([-1, 1, 4]).shape).toEqual([3, 1, 4]);
    expect(await tensor([5]).reshape([]).toArray()).toBe(5);
    expect(x.flatten().shape).toEqual([12]);
  });
});

describe('transpose and permute', () => {
  it('default transpose swaps the last two axes', async () => {
    expect(await iota([2, 3]).transpose().toArray()).toEqual([[0, 3], [1, 4], [2, 5]]);
    const b = iota([2, 2, 3]).transpose();
    expect(b.shape).toEqual([2, 3, 2]);
    expect(Array.from(b.dataSync())).toEqual(permuteReference([2, 2, 3], [0, 2, 1]));
    expect(await tensor([1, 2]).transpose().toArray()).toEqual([1, 2]); // rank 1: unchanged
  });

  for (const perm of [[1, 0, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0], [0, 2, 1]]) {
    it(`permute ${JSON.stringify(perm)} of [2,3,4]`, () => {
      const out = permute(iota([2, 3, 4]), perm);
      expect(out.shape).toEqual(perm.map((p) => [2, 3, 4][p]!));
      expect(Array.from(out.dataSync())).toEqual(permuteReference([2, 3, 4], perm));
      // transpose(perm) is the same operation.
      expect(Array.from(iota([2, 3, 4]).transpose(perm).dataSync())).toEqual(permuteReference([2, 3, 4], perm));
    });
  }

  it('permute accepts negative axes', () => {
    expect(Array.from(iota([2, 3, 4]).permute([-1, 0, -2]).dataSync())).toEqual(permuteReference([2, 3, 4], [2, 0, 1]));
  });
});

describe('permutes of large axes (the CPU copies them in tiles)', () => {
  // Extents from 32 up, not multiples of the 32 × 32 tiles, with every permutation of four axes:
  // the tiled copy (cpuBackend.ts, tiledCopy) takes those whose last axis strides far through the
  // source, the plain loop the rest. Values are their own flat positions, so equality is exact.
  const shape = [2, 40, 33, 35];
  const perms: number[][] = [];
  const grow = (prefix: number[]) => {
    if (prefix.length === 4) perms.push(prefix);
    else for (let a = 0; a < 4; a++) if (!prefix.includes(a)) grow([...prefix, a]);
  };
  grow([]);
  for (const dtype of ['float32', 'float64', 'int32'] as DType[]) {
    it(`all 24 permutations of [2, 40, 33, 35] (${dtype})`, () => {
      const x = cast(iota(shape), dtype);
      for (const perm of perms) {
        expect(Array.from(permute(x, perm).dataSync()), `${dtype} ${perm}`).toEqual(permuteReference(shape, perm));
      }
    });
  }

  it('a transpose view of a 64 × 70 matrix, materialised by an elementwise op', () => {
    const x = iota([64, 70]);
    expect(Array.from(permute(x, [1, 0]).add(0).dataSync())).toEqual(permuteReference([64, 70], [1, 0]));
  });
});

describe('broadcastTo', () => {
  it('copies of column broadcasts (runs of one value along the last axis, filled when 16 or longer), every dtype', () => {
    // A reshape of a broadcast view copies it (stridedCopy); runs of 3, 16 and 40 (with a
    // leading broadcast axis too), values their rows' positions.
    for (const dtype of ['float32', 'float64', 'int32', 'bool'] as DType[]) {
      for (const [rows, run] of [[5, 3], [7, 16], [6, 40]] as const) {
        const col = cast(iota([rows, 1]), dtype);
        const got = Array.from(broadcastTo(col, [2, rows, run]).reshape([2 * rows * run]).dataSync());
        const want = Array.from({ length: 2 * rows * run }, (_, i) => Math.floor(i / run) % rows);
        expect(got, `${dtype} runs of ${run}`).toEqual(dtype === 'bool' ? want.map((v) => (v !== 0 ? 1 : 0)) : want);
      }
    }
  });

  it('stretches size-1 axes and adds leading axes', async () => {
    expect(await broadcastTo(tensor([1, 2, 3]), [2, 3]).toArray()).toEqual([[1, 2, 3], [1, 2, 3]]);
    expect(await broadcastTo(tensor([[1], [2]]), [2, 2, 2]).toArray()).toEqual([[[1, 1], [2, 2]], [[1, 1], [2, 2]]]);
    expect(await tensor(7).expand([2]).toArray()).toEqual([7, 7]);
  });

  it('expand: −1 keeps an axis (as PyTorch); errors name expand', async () => {
    const col = tensor([[1], [2]]);
    expect(await col.expand([-1, 3]).toArray()).toEqual([[1, 1, 1], [2, 2, 2]]);
    expect(await col.expand([2, -1, -1]).toArray()).toEqual([[[1], [2]], [[1], [2]]]);
    expect(() => col.expand([-1, 2, 3])).toThrow("expand: a −1 keeps an existing axis's size, but axis 0 of [-1,2,3] is a new leading axis (x has shape [2,1])");
    expect(() => col.expand([-1])).toThrow('expand: cannot broadcast [2,1] to [-1], which has lower rank');
    expect(() => col.expand([3, 1])).toThrow('expand: cannot broadcast [2,1] to [3,1] (axis 0 has size 2');
    expect(() => col.expand([2, -2])).toThrow('expand: shape must be an array of non-negative integers, got [2,-2]');
  });
});

describe('slice and narrow', () => {
  const x = iota([3, 4]);

  it('takes a window from begin with size, −1 meaning to the end', async () => {
    expect(await slice(x, [1, 1], [2, 2]).toArray()).toEqual([[5, 6], [9, 10]]);
    expect(await slice(x, [1, 2], [-1, -1]).toArray()).toEqual([[6, 7], [10, 11]]);
    expect(await slice(x, [2]).toArray()).toEqual([[8, 9, 10, 11]]);
    expect(slice(x, [0, 1], [3, 0]).shape).toEqual([3, 0]);
  });

  it('counts a negative begin from the end', async () => {
    expect(await slice(x, [-1, -3], [1, 2]).toArray()).toEqual([[9, 10]]);
    expect(await x.slice([0, -1]).toArray()).toEqual([[3], [7], [11]]);
  });

  it('slices a middle axis of a rank-3 tensor', () => {
    const y = iota([2, 3, 4]);
    const out = slice(y, [0, 1, 1], [2, 2, 2]);
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 1; j < 3; j++) for (let k = 1; k < 3; k++) expected.push(ravel([i, j, k], [2, 3, 4]));
    expect(Array.from(out.dataSync())).toEqual(expected);
  });

  it('narrow takes `length` entries of one axis from `start`', async () => {
    expect(await narrow(x, 1, 1, 2).toArray()).toEqual([[1, 2], [5, 6], [9, 10]]);
    expect(await narrow(x, 0, 2, 1).toArray()).toEqual([[8, 9, 10, 11]]);
    expect(await narrow(x, -1, 3, 1).toArray()).toEqual([[3], [7], [11]]);
  });
});

describe('pad', () => {
  it('zero-pads each axis before and after', async () => {
    expect(await pad(tensor([[1, 2], [3, 4]]), [[1, 0], [0, 2]]).toArray()).toEqual([
      [0, 0, 0, 0],
      [1, 2, 0, 0],
      [3, 4, 0, 0],
    ]);
    expect(await pad(tensor([1, 2], { dtype: 'int32' }), [[2, 1]]).toArray()).toEqual([0, 0, 1, 2, 0]);
  });

  it('pads the middle axis of a rank-3 tensor', async () => {
    expect(await pad(iota([2, 1, 2]), [[0, 0], [1, 1], [0, 0]]).toArray()).toEqual([
      [[0, 0], [0, 1], [0, 0]],
      [[0, 0], [2, 3], [0, 0]],
    ]);
  });
});

describe('concat and stack', () => {
  const a = iota([2, 2, 2]);
  const b = iota([2, 2, 2]).add(100);

  it('concatenates along each axis', async () => {
    expect(await concat([a, b], 0).toArray()).toEqual([
      [[0, 1], [2, 3]], [[4, 5], [6, 7]], [[100, 101], [102, 103]], [[104, 105], [106, 107]],
    ]);
    expect(await concat([a, b], 1).toArray()).toEqual([
      [[0, 1], [2, 3], [100, 101], [102, 103]],
      [[4, 5], [6, 7], [104, 105], [106, 107]],
    ]);
    expect(await concat([a, b], 2).toArray()).toEqual([
      [[0, 1, 100, 101], [2, 3, 102, 103]],
      [[4, 5, 104, 105], [6, 7, 106, 107]],
    ]);
    expect(await concat([a, b], -1).toArray()).toEqual(await concat([a, b], 2).toArray());
  });

  it('concatenates three tensors of different extents on the axis', async () => {
    const out = concat([tensor([[1], [2]]), tensor([[3, 4], [5, 6]]), tensor([[7], [8]])], 1);
    expect(await out.toArray()).toEqual([[1, 3, 4, 7], [2, 5, 6, 8]]);
  });

  it('stack adds a new axis at the given position', async () => {
    const p = tensor([1, 2, 3]);
    const q = tensor([4, 5, 6]);
    expect(await stack([p, q]).toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(await stack([p, q], 1).toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(await stack([p, q], -1).toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(stack([tensor(1), tensor(2)]).shape).toEqual([2]);
  });
});

describe('squeeze and unsqueeze', () => {
  it('squeeze removes all or the named size-1 axes', () => {
    const x = iota([1, 3, 1, 2]);
    expect(squeeze(x).shape).toEqual([3, 2]);
    expect(squeeze(x, 0).shape).toEqual([3, 1, 2]);
    expect(squeeze(x, [-2]).shape).toEqual([1, 3, 2]);
    expect(Array.from(squeeze(x).dataSync())).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('unsqueeze inserts a size-1 axis, counting negative positions from the new rank', () => {
    const x = iota([2, 3]);
    expect(unsqueeze(x, 0).shape).toEqual([1, 2, 3]);
    expect(unsqueeze(x, 1).shape).toEqual([2, 1, 3]);
    expect(unsqueeze(x, -1).shape).toEqual([2, 3, 1]);
    expect(unsqueeze(tensor(4), 0).shape).toEqual([1]);
  });
});

describe('indexSelect', () => {
  const x = iota([3, 4]);

  it('selects rows in order, with repeats', async () => {
    expect(await indexSelect(x, 0, [2, 0, 2]).toArray()).toEqual([[8, 9, 10, 11], [0, 1, 2, 3], [8, 9, 10, 11]]);
  });

  it('selects along axis 1 (and −1)', async () => {
    expect(await x.indexSelect(1, [3, 3, 0]).toArray()).toEqual([[3, 3, 0], [7, 7, 4], [11, 11, 8]]);
    expect(await x.indexSelect(-1, [1]).toArray()).toEqual([[1], [5], [9]]);
  });

  it('takes an int32 index tensor and selects on a middle axis', () => {
    const y = iota([2, 3, 2]);
    const out = indexSelect(y, 1, tensor([1, 1], { dtype: 'int32' }));
    expect(out.shape).toEqual([2, 2, 2]);
    expect(Array.from(out.dataSync())).toEqual([2, 3, 2, 3, 8, 9, 8, 9]);
  });

  it('an empty index list gives an empty axis', () => {
    expect(indexSelect(x, 0, []).shape).toEqual([0, 4]);
  });
});

/** The value at flat position `flat` in the copy tests below: the position itself (bools: its parity), exact in every dtype. */
const valueOf = (flat: number, dtype: DType) => (dtype === 'bool' ? flat % 2 : flat);
/** A tensor of `shape` and `dtype` holding valueOf(base + i) at flat position i. */
const make = (shape: number[], dtype: DType, base = 0) =>
  cast(tensor(Array.from({ length: product(shape) }, (_, i) => valueOf(base + i, dtype)), { shape, dtype: 'float64' }), dtype);

describe('pad and slice copy rows of every length', () => {
  // The CPU copies a contiguous row shorter than 64 elements by a loop and a longer one by one
  // `set` (cpuBackend.ts, copyBlock): rows of 7 and 100 elements, in every dtype, against index
  // arithmetic. Values are small integers (bools: their parity).
  for (const dtype of ['float32', 'float64', 'int32', 'bool'] as DType[]) {
    it(`pads and slices [3, 5, 7] and [3, 5, 100] (${dtype})`, () => {
      for (const shape of [[3, 5, 7], [3, 5, 100]]) {
        const x = make(shape, dtype);
        const widths: [number, number][] = [[1, 0], [0, 2], [3, 1]];
        const padded = pad(x, widths);
        const outShape = shape.map((d, i) => d + widths[i]![0] + widths[i]![1]);
        const wantPad = Array.from({ length: product(outShape) }, (_, i) => {
          const c = unravel(i, outShape).map((v, k) => v - widths[k]![0]);
          return c.every((v, k) => v >= 0 && v < shape[k]!) ? valueOf(ravel(c, shape), dtype) : 0;
        });
        expect(Array.from(padded.dataSync(), Number), `pad ${dtype} [${shape}]`).toEqual(wantPad);
        const begin = [1, 2, 3];
        const size = [2, 3, shape[2]! - 4];
        const want = Array.from({ length: product(size) }, (_, i) => valueOf(ravel(unravel(i, size).map((v, k) => v + begin[k]!), shape), dtype));
        expect(Array.from(slice(x, begin, size).dataSync(), Number), `slice ${dtype} [${shape}]`).toEqual(want);
      }
    });
  }
});

describe('gather and concat blocks of every length', () => {
  // The CPU copies a block shorter than 64 elements by a loop and a longer one by one `set`
  // (cpuBackend.ts, copyBlock): blocks of 1, 5, 80 and 350 elements cover both, in every dtype.
  // Values are small integers (bools: their parity), exact in every dtype.
  const dtypes: DType[] = ['float32', 'float64', 'int32', 'bool'];

  for (const dtype of dtypes) {
    it(`indexSelect along each axis (${dtype})`, () => {
      for (const shape of [[3, 70, 5], [3, 70, 80]]) {
        const x = make(shape, dtype);
        for (let axis = 0; axis < 3; axis++) {
          const idx = [shape[axis]! - 1, 0, 1, shape[axis]! - 1];
          const out = indexSelect(x, axis, idx);
          const outShape = shape.map((d, i) => (i === axis ? idx.length : d));
          const want = Array.from({ length: product(outShape) }, (_, i) => {
            const c = unravel(i, outShape);
            c[axis] = idx[c[axis]!]!;
            return valueOf(ravel(c, shape), dtype);
          });
          expect(Array.from(out.dataSync(), Number), `${dtype} [${shape}] axis ${axis}`).toEqual(want);
        }
      }
    });

    it(`concat of blocks of 1 and 100 elements (${dtype})`, () => {
      const parts = [make([3, 70, 1], dtype), make([3, 70, 100], dtype, 1000), make([2, 70, 100], dtype, 30000)];
      const along2 = concat([parts[0]!, parts[1]!], 2);
      const want2 = Array.from({ length: 3 * 70 * 101 }, (_, i) => {
        const [a, b, c] = unravel(i, [3, 70, 101]) as [number, number, number];
        return c === 0 ? valueOf(a * 70 + b, dtype) : valueOf(1000 + (a * 70 + b) * 100 + c - 1, dtype);
      });
      expect(Array.from(along2.dataSync(), Number), `${dtype} axis 2`).toEqual(want2);
      const along0 = concat([parts[1]!, parts[2]!], 0);
      const want0 = [...Array.from({ length: 21000 }, (_, i) => valueOf(1000 + i, dtype)), ...Array.from({ length: 14000 }, (_, i) => valueOf(30000 + i, dtype))];
      expect(Array.from(along0.dataSync(), Number), `${dtype} axis 0`).toEqual(want0);
    });
  }
});

describe('cast between every pair of dtypes', () => {
  // Source values per dtype and what each target must hold: float → int32 truncates toward zero,
  // → bool is "nonzero", bool → numbers is 0/1, float64 → float32 rounds to nearest.
  const sources: Record<DType, number[]> = {
    float32: [-2.75, -0.5, 0, 1.5, 3],
    float64: [-2.75, -0.5, 0, 1.5, 1 / 3],
    int32: [-7, 0, 1, 2, 16777217],
    bool: [1, 0, 0, 1, 1],
  };
  const expectedFrom: Record<DType, Record<DType, number[]>> = {
    float32: {
      float32: [-2.75, -0.5, 0, 1.5, 3],
      float64: [-2.75, -0.5, 0, 1.5, 3],
      int32: [-2, 0, 0, 1, 3],
      bool: [1, 1, 0, 1, 1],
    },
    float64: {
      float32: [-2.75, -0.5, 0, 1.5, Math.fround(1 / 3)],
      float64: [-2.75, -0.5, 0, 1.5, 1 / 3],
      int32: [-2, 0, 0, 1, 0],
      bool: [1, 1, 0, 1, 1],
    },
    int32: {
      float32: [-7, 0, 1, 2, 16777216], // 2^24 + 1 rounds to 2^24 in float32
      float64: [-7, 0, 1, 2, 16777217],
      int32: [-7, 0, 1, 2, 16777217],
      bool: [1, 0, 1, 1, 1],
    },
    bool: {
      float32: [1, 0, 0, 1, 1],
      float64: [1, 0, 0, 1, 1],
      int32: [1, 0, 0, 1, 1],
      bool: [1, 0, 0, 1, 1],
    },
  };
  const dtypes: DType[] = ['float32', 'float64', 'int32', 'bool'];
  for (const from of dtypes) {
    for (const to of dtypes) {
      it(`${from} → ${to}`, () => {
        const src = tensor(sources[from], { dtype: from });
        const out = cast(src, to);
        expect(out.dtype).toBe(to);
        expect(out.shape).toEqual([5]);
        expect(Array.from(out.dataSync())).toEqual(expectedFrom[from][to]);
      });
    }
  }

  it('casts NaN to bool as true (it is nonzero) and −0 as false', async () => {
    expect(await cast(tensor([NaN, -0]), 'bool').toArray()).toEqual([true, false]);
  });

  it('float → int32 saturates out-of-range values and maps NaN to 0, never wraps (docs/conventions.md)', async () => {
    const wide = [3e9, -3e9, Infinity, -Infinity, NaN, 2147483647.9, -2147483648.5];
    const expected = [2147483647, -2147483648, 2147483647, -2147483648, 0, 2147483647, -2147483648];
    expect(await cast(tensor(wide, { dtype: 'float64' }), 'int32').toArray()).toEqual(expected);
    expect(await cast(tensor([3e9, -3e9]), 'int32').toArray()).toEqual([2147483647, -2147483648]);
    // Host data and constants follow the same rule.
    expect(await tensor(wide, { dtype: 'int32' }).toArray()).toEqual(expected);
  });
});
