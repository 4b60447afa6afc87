// The CPU backend's array pool past its limit: the size classes used least recently make room.
// A burst of sizes that never come back (a server answering batches of varying sizes) used to
// fill the pool for good; the pool then refused every array of the work that runs now, so each
// step allocated new arrays while the pool held stale ones. Arrays are made by the pool itself
// (take), so they are of the kind it hands out (shared where threads want them).

import { describe, expect, it } from 'vitest';
import { type CpuBackend, cpuKernelInfo, exp, getBackend, matmulInto, memory, ones, releasePooledMemory, setCpuWasm, tensor, tidy } from '@scorch/tensor';
import { ArrayPool } from '../src/cpu/arrayPool.js';
import { transposeSpareBytes } from '../src/cpu/cpuMatmul.js';
import { cpuHeap } from '../src/cpu/wasm/heap.js';

/** The CPU heap (WebAssembly memory over a SharedArrayBuffer) is there: the heap tests below run. */
const HEAP = cpuKernelInfo().wasmSimd && typeof SharedArrayBuffer === 'function';

describe('ArrayPool past maxFreeBytes', () => {
  it('drops the least recently used size classes, so the steady work after a burst of stale sizes is served from the pool', () => {
    const pool = new ArrayPool(4000);
    // Nine classes of 400 to 432 bytes: 3744 bytes, too full for an 800-byte array.
    for (let i = 0; i < 9; i++) pool.give(pool.take('float32', 100 + i));
    expect(pool.stats()).toEqual({ freeArrays: 9, freeBytes: 3744, allocations: 9, reuses: 0 });
    for (let step = 0; step < 10; step++) pool.give(pool.take('float32', 200));
    // One allocation (the first step), then nine reuses: the steady array stayed in the pool.
    expect(pool.stats().allocations).toBe(10);
    expect(pool.stats().reuses).toBe(9);
    // Room was made by dropping the oldest classes: 100 and 101 floats (400 + 404 bytes); 102 on are kept.
    expect(pool.stats()).toMatchObject({ freeArrays: 8, freeBytes: 3744 - 804 + 800 });
    pool.take('float32', 101);
    expect(pool.stats().allocations).toBe(11);
    pool.take('float32', 102);
    expect(pool.stats()).toMatchObject({ allocations: 11, reuses: 10 });
  });

  it('a class just taken from counts as used: the classes of the running work outlast older ones', () => {
    const pool = new ArrayPool(2000);
    const a = pool.take('float64', 100); // 800 bytes
    const b = pool.take('float32', 200); // 800 bytes
    const c = pool.take('int32', 101); // 404 bytes: the three together are past the limit
    pool.give(a);
    pool.give(b);
    pool.give(pool.take('float64', 100)); // the float64 class is used again, after the float32 one
    pool.give(c); // needs room: the float32 class goes, not the float64 one given before it
    expect(pool.stats()).toMatchObject({ freeArrays: 2, freeBytes: 1204, allocations: 3, reuses: 1 });
    pool.take('float64', 100);
    pool.take('int32', 101);
    expect(pool.stats()).toMatchObject({ freeArrays: 0, allocations: 3, reuses: 3 });
  });

  it('an array larger than the limit is left to the garbage collector, and drops nothing', () => {
    const pool = new ArrayPool(1000);
    pool.give(pool.take('float32', 100));
    pool.give(pool.take('float32', 300)); // 1200 bytes: more than the whole pool
    expect(pool.stats()).toMatchObject({ freeArrays: 1, freeBytes: 400 });
  });
});

describe('releasePooledMemory', () => {
  it("frees the CPU backend's free arrays and transposition spares, leaves live tensors and memory() alone, and later work allocates anew", () => {
    const cpu = getBackend('cpu') as CpuBackend;
    releasePooledMemory();
    const kept = tensor([[1, 2], [3, 4]]);
    // Freed arrays of two sizes go to the pool; a product of a transposed operand on the
    // TypeScript path keeps its transposed copy as a spare.
    tidy(() => {
      exp(ones([64, 32]));
      exp(ones([1000]));
    });
    setCpuWasm(false);
    try {
      matmulInto(new Float32Array(6), 0, new Float32Array(6), 0, new Float32Array(4), 0, 2, 2, 3, { transA: true });
    } finally {
      setCpuWasm(true);
    }
    const free = cpu.memoryStats().freeBytes;
    expect(free).toBeGreaterThanOrEqual(4 * (2 * 64 * 32 + 2 * 1000));
    const spares = transposeSpareBytes();
    expect(spares).toBeGreaterThan(0);
    const live = memory();
    expect(releasePooledMemory()).toBe(free + spares);
    expect(cpu.memoryStats()).toMatchObject({ freeArrays: 0, freeBytes: 0 });
    expect(transposeSpareBytes()).toBe(0);
    expect(memory()).toEqual(live);
    expect(releasePooledMemory()).toBe(0);
    // The kept tensor is intact, and the next op of a freed size is served by a new array.
    expect(Array.from(kept.dataSync())).toEqual([1, 2, 3, 4]);
    const made = cpu.memoryStats().allocations;
    const y = exp(ones([1000]));
    expect(cpu.memoryStats().allocations).toBeGreaterThan(made);
    expect(y.dataSync()[0]).toBeCloseTo(Math.E, 6);
    y.dispose();
    kept.dispose();
  });
});


describe('ArrayPool limits, exactly', () => {
  it('an array of exactly maxFreeBytes is kept, and two classes filling the limit exactly are both kept', () => {
    const one = new ArrayPool(400);
    one.give(one.take('float32', 100)); // 400 bytes: the whole limit, not more
    expect(one.stats()).toMatchObject({ freeArrays: 1, freeBytes: 400 });
    const two = new ArrayPool(804);
    two.give(two.take('float32', 100)); // 400 bytes
    two.give(two.take('float32', 101)); // 404 bytes: 804, the limit exactly
    expect(two.stats()).toMatchObject({ freeArrays: 2, freeBytes: 804 });
  });

  it('when only its own class is left and full, the array given is not kept (freeBytes never passes the limit)', () => {
    const pool = new ArrayPool(1000);
    const arrays = [pool.take('float32', 100), pool.take('float32', 100), pool.take('float32', 100)];
    for (const a of arrays) pool.give(a); // 3 · 400 bytes: the third does not fit
    expect(pool.stats()).toMatchObject({ freeArrays: 2, freeBytes: 800 });
  });

  it('a give stamps its class as used: the class given to last outlasts one given to before it', () => {
    const pool = new ArrayPool(1250);
    const a1 = pool.take('float32', 100);
    const a2 = pool.take('float32', 100);
    const b = pool.take('float32', 101);
    const c = pool.take('int32', 20); // 80 bytes
    pool.give(a1); // class 100 made first (400)
    pool.give(b); // class 101 (404)
    pool.give(a2); // class 100 used again, after 101 (800 + 404 = 1204)
    pool.give(c); // 1284 > 1250: class 101 goes (least recently used), not class 100
    expect(pool.stats()).toMatchObject({ freeArrays: 3, freeBytes: 800 + 80 });
  });

  it('a take from a class that keeps arrays stamps it as used: the other class goes first', () => {
    const pool = new ArrayPool(1250);
    const a1 = pool.take('float32', 100);
    const a2 = pool.take('float32', 100);
    const b = pool.take('float32', 101);
    pool.give(a1);
    pool.give(a2); // class 100: two arrays
    pool.give(b); // class 101, given after
    pool.take('float32', 100); // class 100 used now, after 101; one array (400) left in it
    expect(pool.stats()).toMatchObject({ freeArrays: 2, freeBytes: 804, allocations: 3, reuses: 1 });
    pool.give(pool.take('int32', 120)); // 480 bytes: 1284 > 1250, class 101 goes
    expect(pool.stats()).toMatchObject({ freeArrays: 2, freeBytes: 400 + 480 });
    pool.take('float32', 100);
    expect(pool.stats()).toMatchObject({ allocations: 4, reuses: 2 });
  });

  it('keeps up to 256 MiB of free arrays by default: a freed 100 MiB array is kept for reuse', () => {
    const pool = new ArrayPool();
    expect(pool.maxFreeBytes).toBe(256 * 2 ** 20);
    const big = pool.take('int32', 25 * 2 ** 20); // 100 MiB, outside the heap (int32)
    pool.give(big);
    expect(pool.stats()).toMatchObject({ freeArrays: 1, freeBytes: 100 * 2 ** 20 });
    expect(pool.take('int32', 25 * 2 ** 20)).toBe(big);
    pool.clear();
  });
});

describe.runIf(HEAP)('ArrayPool and the CPU heap', () => {
  it('float arrays of exactly 1 KiB (256 float32, 128 float64) live in the heap; one element fewer does not', () => {
    const pool = new ArrayPool();
    const heap = cpuHeap()!;
    const f32 = pool.take('float32', 256);
    const f64 = pool.take('float64', 128);
    const small = pool.take('float32', 255);
    expect(heap.holds(f32)).toBe(true);
    expect(heap.holds(f64)).toBe(true);
    expect(heap.holds(small)).toBe(false);
    for (const a of [f32, f64, small]) pool.give(a);
    pool.clear();
    expect(heap.holds(f32)).toBe(false);
  });

  it('a held take counts its new heap array as an allocation, and reuses a free heap array of its class', () => {
    const pool = new ArrayPool();
    const a = pool.take('float32', 300, true);
    expect(cpuHeap()!.holds(a)).toBe(true);
    expect(pool.stats()).toMatchObject({ allocations: 1, reuses: 0 });
    pool.give(a);
    expect(pool.take('float32', 300, true)).toBe(a);
    expect(pool.stats()).toMatchObject({ freeArrays: 0, allocations: 1, reuses: 1 });
    pool.give(a);
    pool.clear();
  });

  it('an array its own full class cannot keep frees its heap region at once', () => {
    const pool = new ArrayPool(2500);
    const heap = cpuHeap()!;
    const [a, b, c] = [pool.take('float32', 300), pool.take('float32', 300), pool.take('float32', 300)]; // 1200 bytes each
    pool.give(a);
    pool.give(b);
    pool.give(c); // 3600 > 2500, and no other class to drop
    expect(pool.stats()).toMatchObject({ freeArrays: 2, freeBytes: 2400 });
    expect(heap.holds(c)).toBe(false);
    expect(heap.holds(a) && heap.holds(b)).toBe(true);
    pool.clear();
  });

  it('a class dropped to make room frees its arrays\' heap regions at once', () => {
    const pool = new ArrayPool(2000);
    const heap = cpuHeap()!;
    const a = pool.take('float32', 300); // 1200 bytes
    const b = pool.take('float32', 301); // 1204 bytes
    pool.give(a);
    pool.give(b); // 2404 > 2000: class 300 goes
    expect(pool.stats()).toMatchObject({ freeArrays: 1, freeBytes: 1204 });
    expect(heap.holds(a)).toBe(false);
    expect(heap.holds(b)).toBe(true);
    pool.clear();
  });
});
