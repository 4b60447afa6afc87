// The CPU backend's expand is a broadcast view: no storage until a non-elementwise consumer
// needs it dense. These tests pin that (memory accounting) and that every read path — flat
// loops, strided loops, materialisation — gives the same values.

import { describe, expect, it } from 'vitest';
import { type CpuBackend, type DType, type Tensor, argmax, argmin, full, getBackend, max, mean, memory, min, permute, sum, tensor, tidy, where } from '@scorch/tensor';

describe('CPU broadcast views', () => {
  it('expanding a scalar to a large shape allocates nothing until it is materialised', () => {
    tidy(() => {
      const s = full([1, 1], 3); // same rank as the target, so expand is the only op
      const before = memory().bytes;
      const big = s.expand([1000, 1000]);
      expect(memory().bytes).toBe(before); // a view: no new storage
      big.reshape([1000000]); // reshape needs dense storage: 4 MB appear
      // The reshape's copy alone, made from the view: the view stays a view (materialised in
      // place first, it held a second 4 MB copy of the same values).
      expect(memory().bytes).toBe(before + 4 * 1000 * 1000);
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

/** Each value as text that tells NaN, −0 and every float apart (toEqual would take −0 for 0). */
const bits = (t: Tensor): string[] => Array.from(t.dataSync(), (v) => (Object.is(v, -0) ? '-0' : String(v)));

/** Every subset of 0 … rank − 1, as sorted axis lists. */
const subsets = (rank: number): number[][] =>
  Array.from({ length: 2 ** rank }, (_, m) => [...Array(rank).keys()].filter((a) => (m >> a) & 1));

describe('CPU reductions of broadcast views (read through their strides)', () => {
  // Values whose float sums round differently in another order (1e8 beside 0.1 and 1e-3), and
  // NaN, ±∞ and −0 (whose max, min and arg-reductions follow the first NaN); int32 values whose
  // sums wrap past 2³¹ − 1.
  const floats = [1e8, 0.1, -3.25, 1e-3, 7.5e7, -1e8, 0.3, 2.5, -0.7, 1 / 3, 12345.678, -9.99];
  const specials = [1.5, NaN, -2, Infinity, -0, -Infinity, 3, 0, NaN, -1e30, 1e30, 0.25];
  const ints = [2 ** 31 - 1, -(2 ** 31), 7, -3, 2 ** 30 + 5, 123456789, -987654321, 0, 1, -1, 2 ** 31 - 2, 42];
  // View shapes of rank 1–4; each axis is stretched from 1 (a broadcast axis) or not, every mask.
  const shapes = [[5], [3, 4], [2, 3, 4], [2, 3, 2, 3]];
  const cases: { dtype: DType; values: number[]; name: string }[] = [
    { dtype: 'float32', values: floats, name: 'float32' },
    { dtype: 'float32', values: specials, name: 'float32 with NaN/±∞' },
    { dtype: 'float64', values: floats, name: 'float64' },
    { dtype: 'float64', values: specials, name: 'float64 with NaN/±∞' },
    { dtype: 'int32', values: ints, name: 'int32' },
  ];
  for (const { dtype, values, name } of cases) {
    it(`${name}: sum, max, min, mean and argmax/argmin over every axis subset give the bits of the dense copy`, () => {
      for (const shape of shapes) {
        const rank = shape.length;
        for (let mask = 0; mask < 2 ** rank; mask++) {
          tidy(() => {
            const srcShape = shape.map((d, a) => ((mask >> a) & 1 ? 1 : d));
            const n = srcShape.reduce((a, b) => a * b, 1);
            const src = tensor(Array.from({ length: n }, (_, i) => values[(i * 7 + mask) % values.length]!), { shape: srcShape, dtype });
            // The dense copy: a separate view, read (materialised) and uploaded again.
            const dense = tensor(src.expand(shape).dataSync(), { shape, dtype });
            const view = (): Tensor => src.expand(shape);
            const where = `${name} view ${JSON.stringify(srcShape)} → ${JSON.stringify(shape)}`;
            for (const axes of subsets(rank)) {
              const reductions: [string, (x: Tensor) => Tensor][] = [['sum', (x) => sum(x, axes)], ['max', (x) => max(x, axes)], ['min', (x) => min(x, axes)]];
              if (dtype !== 'int32') reductions.push(['mean', (x) => mean(x, axes)]);
              for (const [op, f] of reductions) expect(bits(f(view())), `${op} over ${JSON.stringify(axes)} of ${where}`).toEqual(bits(f(dense)));
            }
            for (let a = 0; a < rank; a++) {
              expect(bits(argmax(view(), a)), `argmax along ${a} of ${where}`).toEqual(bits(argmax(dense, a)));
              expect(bits(argmin(view(), a)), `argmin along ${a} of ${where}`).toEqual(bits(argmin(dense, a)));
            }
            // Over all elements (flattened by a reshape, which copies the view).
            expect(bits(argmax(view())), `argmax of ${where}`).toEqual(bits(argmax(dense)));
            expect(bits(argmin(view())), `argmin of ${where}`).toEqual(bits(argmin(dense)));
          });
        }
      }
    });
  }

  it('a broadcast of a transposed array (strides neither row-major nor zero) reduces as its dense copy', () => {
    tidy(() => {
      // [1, 4, 3] permuted to [1, 3, 4] is a transpose view (strides [12, 1, 3]); expanded to
      // [2, 3, 4] it is a broadcast with strides [0, 1, 3].
      const src = permute(tensor(Array.from({ length: 12 }, (_, i) => floats[i]!), { shape: [1, 4, 3], dtype: 'float32' }), [0, 2, 1]);
      const dense = tensor(src.expand([2, 3, 4]).dataSync(), { shape: [2, 3, 4] });
      for (const axes of subsets(3)) {
        expect(bits(sum(src.expand([2, 3, 4]), axes)), `sum over ${JSON.stringify(axes)}`).toEqual(bits(sum(dense, axes)));
        expect(bits(max(src.expand([2, 3, 4]), axes)), `max over ${JSON.stringify(axes)}`).toEqual(bits(max(dense, axes)));
      }
      for (let a = 0; a < 3; a++) expect(bits(argmax(src.expand([2, 3, 4]), a))).toEqual(bits(argmax(dense, a)));
    });
  });

  it('argmax and argmin over all elements of a view: PyTorch\'s indices (first of ties, first NaN), and the view stays a view', () => {
    tidy(() => {
      // [source, view shape, torch.argmax, torch.argmin] (PyTorch 1.13 on the expanded tensor):
      // ties give the first index in row-major order; NaN counts as larger than every number
      // for argmax and smaller for argmin, so both give the first NaN.
      const cases: [number[][] | number[][][], number[], number, number][] = [
        [[[1, 5, 5]], [2, 3], 1, 0],
        [[[2], [7]], [2, 3], 3, 0],
        [[[1], [NaN]], [2, 3], 3, 3],
        [[[4, NaN, -1, NaN]], [3, 4], 1, 1],
        [[[[-1], [6], [6]]], [2, 3, 2], 2, 0],
      ];
      for (const [source, shape, wantMax, wantMin] of cases) {
        for (const dtype of ['float32', 'float64'] as const) {
          const view = tensor(source, { dtype }).expand(shape);
          expect([argmax(view).dataSync()[0], argmin(view).dataSync()[0]], `${JSON.stringify(source)} → ${JSON.stringify(shape)}`).toEqual([wantMax, wantMin]);
        }
      }
      // A [1000, 1000] view of 1000 values: the flattening copy (4 MB) lives only inside the call.
      const view = tensor(Array.from({ length: 1000 }, (_, i) => (i * 37) % 1000), { shape: [1, 1000] }).expand([1000, 1000]);
      const before = memory().bytes;
      const [i, j] = [argmax(view), argmin(view)];
      expect([i.dataSync()[0], j.dataSync()[0]]).toEqual([27, 0]); // 27·37 = 999 (mod 1000)
      // The two results (4 bytes each): the view was not materialised into a 4 MB copy it kept.
      expect(memory().bytes).toBe(before + 8);
    });
  });

  it('a 2^28-element view is reduced without allocating its dense copy (1 GiB before)', () => {
    tidy(() => {
      const cpu = getBackend('cpu') as CpuBackend;
      const big = full([1, 1], 0.5).expand([2 ** 14, 2 ** 14]);
      const before = memory().bytes;
      const made = cpu.memoryStats().allocations;
      const t0 = process.cpuUsage();
      const total = big.sum();
      const spent = process.cpuUsage(t0);
      const ms = (spent.user + spent.system) / 1000;
      // 2^28 halves: 2^27, exact in the double accumulator and in float32.
      expect(total.dataSync()[0]).toBe(2 ** 27);
      // Only the scalar result (4 bytes, one new array at most): the dense copy was 1 GiB.
      expect(memory().bytes).toBe(before + 4);
      expect(cpu.memoryStats().allocations - made).toBeLessThanOrEqual(1);
      // One pass of 2^28 additions: ~0.3 s on this machine (the old fill of 1 GiB then its sum:
      // ~0.75 s). Measured in CPU time (every thread of this process), not wall-clock time, which
      // other processes stretch: under a load average of 7-12 on 2 cores this sum took 0.8–1.7 s of
      // wall-clock time. The memory checks above are the ones that tell the two paths apart.
      expect(ms).toBeLessThan(1000);
    });
  });
});
