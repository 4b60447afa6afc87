// Reads, disposal and memory figures under the async patterns real programs produce: a tensor
// disposed while its read is pending, many reads in flight at once, buffers recycled while a
// copy out of them is still queued.

import { beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, memory, tensor } from '@scorch/tensor';
import { jit } from '@scorch/autograd';
import { type WebGPUHandle } from '@scorch/kernels';
import { gpuDevice } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});

describe('a tensor disposed while its read is pending', () => {
  it('holds no buffer in memory() from the dispose on, and the read still returns its values', async () => {
    const { device } = gpu;
    await gpu.runtime.sync();
    const base = memory();
    const a = tensor([1, 2, 3], { device });
    const x = a.mul(2);
    a.dispose();
    const pending = x.data();
    x.dispose();
    // The copy out of x's buffer is already submitted: nothing holds the buffer any more.
    expect(memory()).toEqual(base);
    // Recycling the buffer at once (same size class) must not change what the read returns.
    const b = tensor([9, 9, 9], { device });
    const y = b.add(0);
    b.dispose();
    expect(Array.from(await pending)).toEqual([2, 4, 6]);
    expect(Array.from(await y.data())).toEqual([9, 9, 9]);
    y.dispose();
    expect(memory()).toEqual(base);
  });

  it('many reads in flight wait on the error checks in linear, not quadratic, work', async () => {
    // Each read's settle awaited Promise.all over every check still pending: N reads in flight
    // passed ~N²/2 promises (3,200 reads in Promise.all took 29 s against 1.3 s one by one).
    // Counted, not timed: the elements of every array the runtime hands Promise.all meanwhile.
    const { device } = gpu;
    const n = 400;
    const xs = Array.from({ length: n }, (_, i) => tensor([i, i + 1], { device }).mul(2));
    const all = Promise.all.bind(Promise);
    let handed = 0;
    Promise.all = ((values: Iterable<unknown>) => {
      const list = [...values];
      handed += list.length;
      return all(list);
    }) as typeof Promise.all;
    let read: Float32Array[];
    try {
      read = (await all(xs.map((x) => x.data()))) as Float32Array[];
    } finally {
      Promise.all = all;
    }
    read.forEach((v, i) => expect(Array.from(v)).toEqual([2 * i, 2 * i + 2]));
    expect(handed).toBeLessThan(10 * n);
    for (const x of xs) x.dispose();
  });

  it('many reads in flight, each disposed at once, return their own values', async () => {
    const { device } = gpu;
    const base = memory();
    const xs = Array.from({ length: 40 }, (_, i) => {
      const a = tensor([i, -i, 2 * i], { device });
      const x = a.mul(3);
      a.dispose();
      return x;
    });
    const reads = xs.map((x) => x.data());
    for (const x of xs) x.dispose();
    expect(memory()).toEqual(base);
    // Small integers times 3: exact in float32.
    (await Promise.all(reads)).forEach((r, i) => expect(Array.from(r)).toEqual([3 * i, -3 * i, 6 * i]));
  });
});

describe('a donated input used after the call', () => {
  it('is an error that says the jitted call consumed it, not that dispose() or tidy() did', async () => {
    const { device } = gpu;
    const f = jit((x: Tensor) => x.mul(2), { donate: [0] });
    const a = tensor([1, 2], { device });
    const x = a.add(0);
    a.dispose();
    const y = f(x) as Tensor;
    expect(Array.from(await y.data())).toEqual([2, 4]);
    y.dispose();
    const consumed = /was disposed \(donated to a call of a jitted function, which consumed it: jit\(f, \{ donate \}\)\) and cannot be used/;
    await expect(x.data()).rejects.toThrow(consumed);
    expect(() => x.add(1)).toThrow(consumed);
  });
});
