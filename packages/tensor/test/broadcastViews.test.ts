// The CPU backend's expand is a broadcast view: no storage until a non-elementwise consumer
// needs it dense. These tests pin that (memory accounting) and that every read path — flat
// loops, strided loops, materialisation — gives the same values.

import { describe, expect, it } from 'vitest';
import { full, memory, tensor, tidy, where } from '@scorch/tensor';

describe('CPU broadcast views', () => {
  it('expanding a scalar to a large shape allocates nothing until it is materialised', () => {
    tidy(() => {
      const s = full([1, 1], 3); // same rank as the target, so expand is the only op
      const before = memory().bytes;
      const big = s.expand([1000, 1000]);
      expect(memory().bytes).toBe(before); // a view: no new storage
      big.reshape([1000000]); // reshape needs dense storage: 4 MB appear
      expect(memory().bytes).toBe(before + 4 * 1000 * 1000 * 2); // the view materialised + the reshape's copy
    });
  });

  it('elementwise ops read views through zero strides and agree with dense inputs', async () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const row = tensor([[10, 20, 30]]);
    const col = tensor([[100], [200]]);
    const viaViews = x.add(row).mul(col).sub(2).div(tensor(4));
    const dense = tensor([[11, 22, 33], [14, 25, 36]]).mul(tensor([[100, 100, 100], [200, 200, 200]])).sub(tensor([[2, 2, 2], [2, 2, 2]])).div(tensor([[4, 4, 4], [4, 4, 4]]));
    expect(await viaViews.toArray()).toEqual(await dense.toArray());
    // view op view (both operands strided), and where with a broadcast condition and branches
    expect(await row.add(col).toArray()).toEqual([[110, 120, 130], [210, 220, 230]]);
    const cond = tensor([[true], [false]]);
    expect(await where(cond, row, -1).toArray()).toEqual([[10, 20, 30], [-1, -1, -1]]);
  });

  it('a view of a view composes strides; comparisons and max read views too', async () => {
    const v = tensor([[1], [2]]).expand([2, 3]).reshape([2, 1, 3]).expand([2, 2, 3]);
    expect(await v.toArray()).toEqual([[[1, 1, 1], [1, 1, 1]], [[2, 2, 2], [2, 2, 2]]]);
    const s = tensor([[5, -1, 7]]);
    expect(await tensor([[4], [6]]).maximum(s).toArray()).toEqual([[5, 4, 7], [6, 6, 7]]);
    expect(await tensor([[4], [6]]).less(s).toArray()).toEqual([[true, false, true], [false, false, true]]);
    expect(await s.expand([2, 3]).sum(0).toArray()).toEqual([10, -2, 14]);
  });
});
