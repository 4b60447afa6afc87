// The CPU backend's array pool past its limit: the size classes used least recently make room.
// A burst of sizes that never come back (a server answering batches of varying sizes) used to
// fill the pool for good; the pool then refused every array of the work that runs now, so each
// step allocated new arrays while the pool held stale ones. Arrays are made by the pool itself
// (take), so they are of the kind it hands out (shared where threads want them).

import { describe, expect, it } from 'vitest';
import { type CpuBackend, exp, getBackend, matmulInto, memory, ones, releasePooledMemory, setCpuWasm, tensor, tidy } from '@scorch/tensor';
import { ArrayPool } from '../src/cpu/arrayPool.js';
import { transposeSpareBytes } from '../src/cpu/cpuMatmul.js';

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
