// The CPU's reuse of memory, at the places where a slip gives wrong values or holds memory:
// kernels that must write zeros into a pooled array another tensor left dirty (pad, scatterAdd, a
// product of depth 0), spare and scratch arrays exactly one element too short, the WebAssembly
// heap's top, holes and tail margin, and the pool's counts of arrays it drops or cannot keep.
// Every expected value is exact (small integers, or sums of them in float64).
import { describe, expect, it } from 'vitest';
import { apply, arange, cpuKernelInfo, cumsum, full, sum, matmul, matmulInto, pad, setCpuThreads, setCpuWasm, tensor, zeros } from '@scorch/tensor';
import { clearTransposeSpares } from '../src/cpu/cpuMatmul.js';
import { ArrayPool } from '../src/cpu/arrayPool.js';
import { CpuHeap, KERNEL_CONSTANTS_BYTES, cpuHeap } from '../src/cpu/wasm/heap.js';

const HEAP = cpuKernelInfo().wasmSimd && typeof SharedArrayBuffer === 'function';

describe('reused CPU memory', () => {
  it('pad writes zeros outside the window even into a reused (dirty) pool array', () => {
    for (const dtype of ['float32', 'float64', 'int32'] as const) {
      // 5·4 = 20 elements of 7s, disposed: their array goes back to the pool for the next 20-element request.
      full([5, 4], 7, { dtype }).dispose();
      const y = pad(tensor([[1, 2], [3, 4]], { dtype }), [[1, 2], [1, 1]]);
      expect(Array.from(y.dataSync())).toEqual([0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
  });

  it('eager scatterAdd adds onto zeros even in a reused (dirty) pool array, with outer > 1 and size != indices', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      // Output [2, 4] (8 elements): a disposed 8-element tensor of 9s is the array the pool hands back.
      full([8], 9, { dtype }).dispose();
      const x = tensor([[1, 2, 3], [4, 5, 6]], { dtype });
      const y = apply('scatterAdd', [x, tensor([3, 0, 3], { dtype: 'int32' })], { axis: 1, size: 4 });
      expect(Array.from(y.dataSync())).toEqual([2, 0, 0, 4, 5, 0, 0, 10]);
    }
  });

  it.runIf(HEAP)('freeing the region at the top lowers the top: a larger array then starts where the freed one did', () => {
    const heap = new CpuHeap(new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true }));
    const a = heap.array(Float32Array, 1000)!; // 4032 bytes at the top
    expect(a.byteOffset).toBe(KERNEL_CONSTANTS_BYTES);
    heap.freeArray(a);
    // 8000 bytes do not fit a 4032-byte hole: with the top lowered they start at the same place.
    expect(heap.array(Float32Array, 2000)!.byteOffset).toBe(KERNEL_CONSTANTS_BYTES);
  });

  it.runIf(HEAP)('a hole taken again stops counting against the growth limit', () => {
    const heap = new CpuHeap(new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true }), 100_000);
    let x = heap.array(Float32Array, 5000)!; // 20,032 bytes
    heap.array(Float32Array, 256); // kept above x, so x's region is a hole when freed
    for (let i = 0; i < 10; i++) {
      heap.freeArray(x);
      x = heap.array(Float32Array, 5000)!;
      expect(x.byteOffset).toBe(KERNEL_CONSTANTS_BYTES);
    }
    // 21,056 bytes held, no holes: 40,000 more stay under the 100,000 limit (growing the memory).
    expect(heap.array(Float32Array, 10_000)).not.toBeNull();
  });

  it.runIf(HEAP)('a unit past the top stays inside the memory (a kernel may read one vector past the last region)', () => {
    const heap = new CpuHeap(new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true }));
    // Exactly up to the end of the first page.
    const a = heap.array(Float32Array, (65536 - KERNEL_CONSTANTS_BYTES) / 4)!;
    expect(a.byteOffset + a.byteLength).toBe(65536);
    expect(heap.stats().memoryBytes).toBeGreaterThanOrEqual(a.byteOffset + a.byteLength + 64);
  });

  it('arrays the pool drops for not being shared (threads turned on) leave its counts', () => {
    const pool = new ArrayPool();
    setCpuThreads(1);
    pool.give(pool.take('int32', 100));
    expect(pool.stats()).toMatchObject({ freeArrays: 1, freeBytes: 400 });
    setCpuThreads(2);
    try {
      pool.take('int32', 100);
      expect(pool.stats()).toMatchObject({ freeArrays: 0, freeBytes: 0 });
    } finally {
      setCpuThreads(undefined);
    }
  });

  it.runIf(HEAP)('an array too large for the pool frees its heap region at once (not when the collector gets to it)', () => {
    const pool = new ArrayPool(1000);
    const a = pool.take('float32', 300); // 1200 bytes: in the heap, more than the pool keeps
    expect(cpuHeap()!.holds(a)).toBe(true);
    pool.give(a);
    expect(cpuHeap()!.holds(a)).toBe(false);
    expect(pool.stats()).toMatchObject({ freeArrays: 0, freeBytes: 0 });
  });

  it('a batched product of depth 0 is zeros in every batch entry, also in a reused (dirty) pool array', () => {
    for (const wasm of [true, false]) {
      setCpuWasm(wasm);
      try {
        full([12], 7).dispose(); // the result's 3·2·2 elements: a dirty array of 7s in the pool
        const y = matmul(zeros([3, 2, 0]), zeros([3, 0, 2]));
        expect(Array.from(y.dataSync())).toEqual(new Array(12).fill(0));
      } finally {
        setCpuWasm(true);
      }
    }
  });

  it('the TypeScript product never takes a spare array shorter than a transposed operand', () => {
    setCpuWasm(false);
    try {
      clearTransposeSpares();
      // Aᵀ of 5 elements (m = 5, k = 1): its spare of length 5 is kept afterwards.
      const c1 = new Float64Array(5);
      matmulInto(new Float64Array([1, 2, 3, 4, 5]), 0, new Float64Array([2]), 0, c1, 0, 5, 1, 1, { transA: true });
      expect(Array.from(c1)).toEqual([2, 4, 6, 8, 10]);
      // Aᵀ of 6 elements (k = 2 rows of m = 3): A = [[1, 4], [2, 5], [3, 6]], B = I.
      const c2 = new Float64Array(6);
      matmulInto(new Float64Array([1, 2, 3, 4, 5, 6]), 0, new Float64Array([1, 0, 0, 1]), 0, c2, 0, 3, 2, 2, { transA: true });
      expect(Array.from(c2)).toEqual([1, 4, 2, 5, 3, 6]);
    } finally {
      setCpuWasm(true);
    }
  });

  it('an eager reduction with far more outputs than the scratch row holds (R·K·R, 50001 outputs) is right in every output', () => {
    // Before the next test, which grows the row step by step: here it jumps from its start (1024
    // doubles, or what earlier tests left, all far smaller) past twice its size. The row
    // must grow to the output count, not merely double.
    const n = 50001;
    const got = sum(arange(2 * n * 3, undefined, 1, { dtype: 'float64' }).reshape([2, n, 3]), [0, 2]).dataSync();
    // out[j] = Σ over a ∈ {0, 1}, c ∈ {0, 1, 2} of a·3n + 3j + c = 18j + 9n + 6, exact in doubles (< 2⁵³).
    const bad = Array.from(got).findIndex((v, j) => v !== 18 * j + 9 * n + 6);
    expect(bad).toBe(-1);
  });

  // The eager kernels' scratch row of doubles (one, shared by reductions and scans) starts at 1024 and
  // doubles when outgrown: n = 1024·2^i + 1 is one more than its length at step i, where an off-by-one
  // growth check leaves it one short. Reductions and scans take turns, so each meets such a step
  // (whatever length earlier work left: the sequence runs past it).
  it('reductions (R·K·R) and cumsums are right in every output when their row just outgrows the kernels\' scratch', () => {
    for (let i = 0; i < 8; i++) {
      const n = 1024 * 2 ** i + 1;
      if (i % 2 === 0) {
        const got = sum(arange(2 * n * 3, undefined, 1, { dtype: 'float64' }).reshape([2, n, 3]), [0, 2]).dataSync();
        // out[j] = Σ over a ∈ {0, 1}, c ∈ {0, 1, 2} of a·3n + 3j + c = 18j + 9n + 6
        expect(Array.from(got).every((v, j) => v === 18 * j + 9 * n + 6), `sum, n = ${n}`).toBe(true);
      } else {
        const got = cumsum(arange(3 * n, undefined, 1, { dtype: 'float64' }).reshape([3, n]), 0).dataSync();
        // rows: j, 2j + n, 3j + 3n
        expect(Array.from(got).every((v, p) => v === [(j: number) => j, (j: number) => 2 * j + n, (j: number) => 3 * j + 3 * n][Math.floor(p / n)]!(p % n)), `cumsum, n = ${n}`).toBe(true);
      }
    }
  });
});
