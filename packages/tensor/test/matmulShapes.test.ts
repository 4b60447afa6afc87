// matmul's NumPy shape semantics as implemented in ops.ts: 1-D operands promoted to a row (left)
// or a column (right) and removed from the result, batch dimensions broadcast, and the path that
// folds a batched left operand into one 2-D product. The CPU kernel itself is tested in
// cpuMatmul.test.ts. Entries are small integers, so every product is exact in float32.

import { describe, expect, it } from 'vitest';
import { type Tensor, matmul, tensor } from '@scorch/tensor';
import { product, ravel, seededValues, unravel } from './reference.js';

/** Batched matrix product in plain JS with NumPy broadcasting of the batch dimensions. */
function matmulReference(a: number[], aShape: number[], b: number[], bShape: number[]): { shape: number[]; data: number[] } {
  const [m, k] = aShape.slice(-2) as [number, number];
  const n = bShape[bShape.length - 1]!;
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const pa = [...new Array<number>(rank - aBatch.length).fill(1), ...aBatch];
  const pb = [...new Array<number>(rank - bBatch.length).fill(1), ...bBatch];
  const batch = pa.map((d, i) => Math.max(d, pb[i]!));
  const data: number[] = [];
  for (let bi = 0; bi < product(batch); bi++) {
    const idx = unravel(bi, batch);
    const ao = ravel(idx.map((v, d) => (pa[d] === 1 ? 0 : v)), pa) * m * k;
    const bo = ravel(idx.map((v, d) => (pb[d] === 1 ? 0 : v)), pb) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ao + i * k + p]! * b[bo + p * n + j]!;
        data.push(s);
      }
    }
  }
  return { shape: [...batch, m, n], data };
}

function values(t: Tensor): number[] {
  return Array.from(t.dataSync());
}

describe('matmul shapes', () => {
  const cases: [number[], number[]][] = [
    [[2, 3], [3, 4]],
    [[4, 2, 3], [3, 5]], // batched left, 2-D right: folded into one [8,3]·[3,5] product
    [[2, 3], [4, 3, 2]], // 2-D left broadcast over the right's batch
    [[2, 1, 2, 3], [3, 3, 2]], // batch [2,1] with [3] broadcasts to [2,3]
    [[1, 2, 2], [5, 2, 1]],
  ];
  for (const [aShape, bShape] of cases) {
    it(`${JSON.stringify(aShape)} · ${JSON.stringify(bShape)}`, () => {
      const a = seededValues(product(aShape), 3 + aShape.length, -3, 3, 1);
      const b = seededValues(product(bShape), 17 + bShape.length, -3, 3, 1);
      const expected = matmulReference(a, aShape, b, bShape);
      const out = matmul(tensor(a, { shape: aShape }), tensor(b, { shape: bShape }));
      expect(out.shape).toEqual(expected.shape);
      expect(values(out)).toEqual(expected.data);
    });
  }

  it('vector operands: row on the left, column on the right, both removed from the result', async () => {
    const m = tensor([[1, 2], [3, 4], [5, 6]]); // [3,2]
    const v2 = tensor([1, -1]);
    const v3 = tensor([1, 0, 2]);
    const mv = m.matmul(v2);
    expect(mv.shape).toEqual([3]);
    expect(await mv.toArray()).toEqual([-1, -1, -1]);
    const vm = v3.matmul(m);
    expect(vm.shape).toEqual([2]);
    expect(await vm.toArray()).toEqual([11, 14]);
    const dot = v3.matmul(v3);
    expect(dot.shape).toEqual([]);
    expect(await dot.item()).toBe(5);
    // A vector against a batch of matrices keeps the batch.
    const batch = tensor([[[1, 0], [0, 1]], [[2, 0], [0, 2]]]); // [2,2,2]
    expect(await v2.matmul(batch).toArray()).toEqual([[1, -1], [2, -2]]);
    expect(await batch.matmul(v2).toArray()).toEqual([[1, -1], [2, -2]]);
  });

  it('float64 operands give float64 results', () => {
    const out = matmul(tensor([[0.1, 0.2]], { dtype: 'float64' }), tensor([[1], [1]], { dtype: 'float64' }));
    expect(out.dtype).toBe('float64');
    expect(values(out)).toEqual([0.1 + 0.2]);
  });
});
