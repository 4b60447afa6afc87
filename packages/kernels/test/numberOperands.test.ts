// A number operand on WebGPU outside jit (`x.mul(2)`): the constant is a backend `full` of shape
// [1, …, 1] (a host write, no kernel) broadcast by a view, the op one kernel; its storage is freed
// with the constant. The values are those of the three-primitive path (full of shape [],
// reshape, expand), which this file runs as the oracle under a pass-through dynamic trace.

import { beforeAll, describe, expect, it } from 'vitest';
import {
  type Tensor, add, div, greater, maximum, memory, minimum, mul, pow, sub, tensor, tidy, withDynamicTrace,
} from '@scorch/tensor';
import type { WebGPUHandle } from '@scorch/kernels';
import { gpuDevice } from './helpers.js';
import { passThroughTrace } from '../../../tests/fixtures/passThroughTrace.js';

let gpu: WebGPUHandle;
let dev = 'webgpu';
beforeAll(async () => {
  gpu = await gpuDevice();
  dev = gpu.device;
});

const oracle = passThroughTrace;

async function bits(t: Tensor): Promise<number[]> {
  const d = await t.data();
  t.dispose();
  return Array.from(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
}

type Op = (a: Tensor | number, b: Tensor | number) => Tensor;
const OPS: [string, Op][] = [['add', add], ['sub', sub], ['mul', mul], ['div', div], ['pow', pow], ['maximum', maximum], ['minimum', minimum], ['greater', greater]];

describe('a number operand on WebGPU', () => {
  it('gives the bits of the three-primitive path, for each op, dtype and side', async () => {
    const start = memory();
    const xs = [
      tensor([[0, -0, 1.5, -2], [NaN, Infinity, -Infinity, 3e38]], { device: dev }),
      tensor([[0, 1, -7, 2 ** 31 - 1], [-(2 ** 31), 5, 3, -1]], { dtype: 'int32', device: dev }),
      tensor(2.5, { device: dev }),
    ];
    for (const x of xs) {
      for (const [name, op] of OPS) {
        for (const v of x.dtype === 'int32' ? [0, 3, -2] : [0, -0, 2, 0.1, NaN, -Infinity]) {
          if (x.dtype === 'int32' && (name === 'div' || name === 'pow')) continue; // float-only ops
          for (const left of [false, true]) {
            const f = () => (left ? op(v, x) : op(x, v));
            const what = `${name} ${x.dtype} ${JSON.stringify(x.shape)} ${left ? 'left' : 'right'} ${v}`;
            expect(await bits(f()), what).toEqual(await bits(tidy(() => withDynamicTrace(oracle, f))));
          }
        }
      }
      x.dispose();
    }
    expect(memory()).toEqual(start);
  });

  it('runs one kernel per x.mul(2) and leaves no buffer behind', async () => {
    const x = tensor([1, 2, 3, 4], { device: dev });
    await x.mul(2).data(); // warm: the kernel compiled, the pool holding what the loop reuses
    const start = memory();
    // The test device fills each freshly created buffer with NaN bits, by a kernel: not the op's.
    const runtime = gpu.runtime as unknown as { poisonFill(storage: unknown): void };
    const poisonFill = runtime.poisonFill;
    let fills = 0;
    runtime.poisonFill = function (storage) {
      fills++;
      poisonFill.call(this, storage);
    };
    const d0 = gpu.runtime.stats.dispatches;
    let y: Tensor;
    try {
      for (let i = 0; i < 100; i++) x.mul(2).dispose();
      y = x.mul(2);
    } finally {
      runtime.poisonFill = poisonFill;
    }
    expect(gpu.runtime.stats.dispatches - d0 - fills).toBe(101);
    // The result's buffer only: the constant's went with it.
    expect(memory()).toEqual({ tensors: start.tensors + 1, buffers: start.buffers + 1, bytes: start.bytes + 16 });
    expect(Array.from(await y.data())).toEqual([2, 4, 6, 8]);
    // The test device poisons a freshly created buffer with a fill kernel: count the op's own.
    y.dispose();
    expect(memory()).toEqual(start);
    x.dispose();
  });
});
