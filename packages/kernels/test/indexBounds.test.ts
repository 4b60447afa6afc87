// Out-of-range indices the host cannot see: computed on the device (a cast of a computed float
// tensor) or uploaded without a host copy (more than 65,536 of them). The gather and scatterAdd
// kernels report them, and the next read (or sync) throws the CPU backend's error, once; in-range
// indices of the same kinds still give the CPU's results exactly.

import { beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, apply, tensor, tidy } from '@scorch/tensor';
import { vjp } from '@scorch/autograd';
import type { WebGPUHandle } from '@scorch/kernels';
import { computedIndices, gpuDevice } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});

const ROWS = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]];
const outOfRange = (prim: string, index: number, axis: number, extent: number) =>
  `${prim}: index ${index} is out of range for axis ${axis} of extent ${extent} (expected 0 <= index < ${extent})`;

/** The error message `fn` throws on the CPU. */
function cpuError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the CPU reference to throw');
}

describe('indices computed on the device', () => {
  it('gather: an index past the end fails the next read with the CPU error, once', async () => {
    const x = tensor(ROWS, { device: gpu.device });
    const idx = computedIndices([0.5, 7.2, 2.9], gpu.device); // [0, 7, 2]
    expect(idx.dtype).toBe('int32');
    const expected = outOfRange('gather', 7, 0, 5);
    expect(cpuError(() => tensor(ROWS).indexSelect(0, computedIndices([0.5, 7.2, 2.9], 'cpu')))).toBe(expected);
    await expect(x.indexSelect(0, idx).data()).rejects.toThrow(expected);
    // Reported once: the record is cleared, and in-range indices work again.
    const good = computedIndices([4.5, 0, 2.9], gpu.device);
    expect(await x.indexSelect(0, good).toArray()).toEqual([[9, 10], [1, 2], [5, 6]]);
  });

  it('gather: a negative index on another axis, reported by the read of an unrelated tensor', async () => {
    const x = tensor(ROWS, { device: gpu.device });
    const idx = computedIndices([1, -3.5], gpu.device); // [1, -3]
    const bad = x.indexSelect(1, idx);
    const unrelated = x.sum();
    await expect(unrelated.data()).rejects.toThrow(outOfRange('gather', -3, 1, 2));
    bad.dispose();
    expect(await unrelated.item()).toBe(55);
  });

  it('sync reports a bad index when nothing is read', async () => {
    const x = tensor(ROWS, { device: gpu.device });
    x.indexSelect(0, computedIndices([5], gpu.device));
    await expect(gpu.backend.sync()).rejects.toThrow(outOfRange('gather', 5, 0, 5));
    await gpu.backend.sync();
  });

  it('scatterAdd through the gradient of indexSelect: the forward and the backward each report', async () => {
    const x = tensor(ROWS, { device: gpu.device });
    const idx = computedIndices([2, 9.9, 0], gpu.device); // [2, 9, 0]
    const [y, pullback] = vjp((v: Tensor) => v.indexSelect(0, idx), x);
    await expect(y.data()).rejects.toThrow(outOfRange('gather', 9, 0, 5));
    const ct = tensor([[1, 1], [1, 1], [1, 1]], { device: gpu.device });
    const dx = pullback(ct)[0]!;
    await expect(dx.data()).rejects.toThrow(outOfRange('scatterAdd', 9, 0, 5));
  });

  it('scatterAdd on an inner axis with a negative index, as the CPU reports it', async () => {
    const updates = [[1, 2, 3], [4, 5, 6]];
    const run = (device: string) => apply('scatterAdd', [tensor(updates, { device }), computedIndices([1, -1.5, 0], device)], { axis: 1, size: 4 });
    const expected = outOfRange('scatterAdd', -1, 1, 4);
    expect(cpuError(() => run('cpu'))).toBe(expected);
    await expect(run(gpu.device).data()).rejects.toThrow(expected);
  });

  it('in-range computed indices: gather and its gradient equal the CPU', async () => {
    const values = [4.9, 0, 3.2, 3.7, 1.1, 4];
    const onDevice = (device: string) => {
      const x = tensor(ROWS, { device });
      const [y, pullback] = vjp((v: Tensor) => v.indexSelect(0, computedIndices(values, device)).mul(tensor([1, 10], { device })), x);
      return { y, dx: pullback(tensor(Array.from({ length: values.length }, (_, i) => [i, i]), { device }))[0]! };
    };
    const cpu = onDevice('cpu');
    const gpuResult = onDevice(gpu.device);
    expect(await gpuResult.y.toArray()).toEqual(await cpu.y.toArray());
    expect(await gpuResult.dx.toArray()).toEqual(await cpu.dx.toArray());
  });
});

describe('long uploaded index tensors (no host copy)', () => {
  const n = 70_000; // above the 65,536 indices whose host copy is kept for checking
  const longIndices = (bad: number | null) => {
    const data = Int32Array.from({ length: n }, (_, i) => (i * 7) % 5);
    if (bad !== null) data[n - 3] = bad;
    return data;
  };

  it('one bad entry fails the gather and its gradient with the CPU error', async () => {
    const x = tensor(ROWS, { device: gpu.device });
    const idx = tensor(longIndices(5), { dtype: 'int32', device: gpu.device });
    const expected = outOfRange('gather', 5, 0, 5);
    expect(cpuError(() => tensor(ROWS).indexSelect(0, tensor(longIndices(5), { dtype: 'int32' })))).toBe(expected);
    const [y, pullback] = vjp((v: Tensor) => v.indexSelect(0, idx), x);
    await expect(y.data()).rejects.toThrow(expected);
    const dx = pullback(tensor(new Float32Array(n * 2).fill(1), { shape: [n, 2], device: gpu.device }))[0]!;
    await expect(dx.data()).rejects.toThrow(outOfRange('scatterAdd', 5, 0, 5));
  });

  it('all in range: the gather and its gradient (row counts) equal the CPU', async () => {
    const onDevice = (device: string) => {
      const x = tensor(ROWS, { device });
      const [y, pullback] = vjp((v: Tensor) => v.indexSelect(0, tensor(longIndices(null), { dtype: 'int32', device })), x);
      return { y, dx: pullback(tensor(new Float32Array(n * 2).fill(1), { shape: [n, 2], device }))[0]! };
    };
    const cpu = onDevice('cpu');
    const gpuResult = onDevice(gpu.device);
    expect([...(await gpuResult.y.data())]).toEqual([...(await cpu.y.data())]);
    // Each row is picked 14,000 times: integer sums, exact in float32.
    expect(await gpuResult.dx.toArray()).toEqual(await cpu.dx.toArray());
    expect(await cpu.dx.toArray()).toEqual(Array.from({ length: 5 }, () => [14_000, 14_000]));
  });
});

describe('the check rides on reads that happen anyway', () => {
  it('a read after a gather takes one submit, as a plain read does', async () => {
    const x = tensor(ROWS, { device: gpu.device });
    const idx = computedIndices([3, 1], gpu.device);
    await gpu.runtime.sync();
    const submitsOf = async (make: () => Tensor): Promise<[number, number[][]]> => {
      const before = gpu.runtime.stats.submits;
      const values = (await tidy(make).toArray()) as number[][];
      return [gpu.runtime.stats.submits - before, values];
    };
    expect(await submitsOf(() => x.add(x))).toEqual([1, [[2, 4], [6, 8], [10, 12], [14, 16], [18, 20]]]);
    expect(await submitsOf(() => x.indexSelect(0, idx))).toEqual([1, [[7, 8], [3, 4]]]);
  });
});
