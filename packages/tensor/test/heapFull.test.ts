// The CPU's heap full (every byte of its 1 GiB taken, here by scratch regions that touch no page):
// a WebAssembly elementwise kernel made then, whose pass needs more scratch than this thread has,
// is not made, and its JavaScript kernel computes the same bits, where it used to throw "the heap
// cannot grow" to the caller of the op; this thread's scratch is kept, so the kernels made before
// still run; once memory is freed, such a kernel is made. Its own file: it fills the heap of this
// test file's process.

import { describe, expect, it } from 'vitest';
import { type Tensor, cpuKernelInfo, exp, greater, mul, setCpuThreads, setCpuWasm, tanh, tensor, where } from '@scorch/tensor';
import { jit } from '@scorch/autograd';
import { type HeapRegion, cpuHeap } from '../src/cpu/wasm/heap.js';
import { elementwiseKernelCalls, elementwiseScratchBytes } from '../src/cpu/wasm/elementwiseModule.js';
import { bitsOf } from './reference.js';

const HEAP = cpuKernelInfo().wasmSimd && typeof SharedArrayBuffer === 'function';

describe.runIf(HEAP)('a full heap', () => {
  it('sends an elementwise kernel that needs more scratch to its JavaScript kernel, with the same bits, and makes it once memory is freed', () => {
    setCpuThreads(1);
    const m = 3000;
    const v = tensor(Float32Array.from({ length: m }, (_, i) => (i - 1500) / 700));
    // Twelve bool operands and a float one: a pass lays out ~0.8 MB of copies, more than any
    // kernel before it on this thread.
    const conditions = Array.from({ length: 12 }, (_, k) => greater(v, (k - 6) / 4));
    const programOf = (scale: number) => (a: Tensor, ...c: Tensor[]) => c.reduce((acc, ci) => where(ci, mul(acc, scale), tanh(acc)), a);
    const program = programOf(1.5);
    // Another kernel of the same layout, for after: a program compiled while the heap was full
    // keeps its JavaScript kernel.
    const later = programOf(1.25);
    const small = tensor(Float32Array.from({ length: 300 }, (_, i) => i / 300 - 0.5));
    // The kernels' bits, from the eager JavaScript kernels (a compiled program would make its
    // WebAssembly kernel even with WebAssembly off, to choose at each call); and exp's kernel
    // made while memory is free.
    setCpuWasm(false);
    const expected = bitsOf(program(v, ...conditions).dataSync());
    const expectedLater = bitsOf(later(v, ...conditions).dataSync());
    setCpuWasm(true);
    const passBytes = elementwiseScratchBytes();
    const expExpected = bitsOf(exp(small).dataSync());

    const heap = cpuHeap()!;
    const taken: HeapRegion[] = [];
    for (const bytes of [2 ** 26, 2 ** 20, 2 ** 14, 64]) {
      for (let r = heap.scratch(bytes); r !== null; r = heap.scratch(bytes)) taken.push(r);
    }
    try {
      expect(heap.scratch(64)).toBeNull();
      const calls = elementwiseKernelCalls();
      const full = jit(program);
      expect(bitsOf(full(v, ...conditions).dataSync())).toEqual(expected);
      expect(elementwiseKernelCalls()).toBe(calls);
      expect(elementwiseScratchBytes()).toBe(passBytes);
      // The thread's scratch was kept: a kernel made before runs in WebAssembly still.
      expect(bitsOf(exp(small).dataSync())).toEqual(expExpected);
      expect(elementwiseKernelCalls()).toBe(calls + 1);
      full.clearCache();
    } finally {
      for (const r of taken) heap.release(r);
    }
    // Made now: this thread's scratch (and the workers', sized from it) holds its larger passes.
    expect(bitsOf(jit(later)(v, ...conditions).dataSync())).toEqual(expectedLater);
    expect(elementwiseScratchBytes()).toBeGreaterThan(passBytes);
    // Not counted as a module the engine refused: the memory was in use.
    expect(cpuKernelInfo().wasmRefusals).toBe(0);
  });
});
