// Typed arrays of the CPU backend, recycled by size class. A training step or a sampler step
// makes the same shapes every call, so arrays freed by one call (disposed tensors, the previous
// values of updated parameters) are exactly the ones the next call needs: after its first call a
// step allocates nothing, and the garbage collector has nothing to collect.
//
// A size class is a dtype and an exact element count. Rounding sizes up (powers of two) would
// serve more requests from fewer arrays, but the backend then holds more than its tensors use
// (memory() would report capacity, not tensors), and every consumer would need a subarray view
// of the right length: a typed-array object made per use, which is the allocation this avoids.
// Free arrays are not live memory: memory() counts only arrays held by handles and compiled
// programs. Past `maxFreeBytes` of free arrays, the size classes used least recently (given or
// taken) are dropped to the garbage collector to make room: a burst of sizes that never come back
// (a server's batch sizes) used to fill the pool for good, after which the pool refused the arrays
// of the work that runs now, and every step allocated anew. An array larger than the limit itself
// is left to the garbage collector.
//
// Float arrays of at least HEAP_ARRAY_MIN_BYTES live in the CPU's heap (wasm/heap.ts) where there is
// one: the WebAssembly kernels then read and write them where they lie, without copies. Dropping
// such an array frees its region. Other new arrays are made on SharedArrayBuffers where compiled
// elementwise kernels may split across threads (rangeThreads.ts), which workers read and write in
// place. The bytes are the same either way, so memory() counts them the same.

import { type DType, type TypedArray, allocTyped, bytesPerElement } from '../dtype.js';
import { forgetSharedArray, sharedArraysWanted } from './wasm/wasmMatmul.js';
import { removeLeastRecentClass } from '../sizeClasses.js';
import { HEAP_ARRAY_MIN_BYTES, cpuHeap } from './wasm/heap.js';

/** Whether arrays of `dtype` and `length` belong in the CPU's heap (float arrays of HEAP_ARRAY_MIN_BYTES or more, where there is one). */
function heapKind(dtype: DType, length: number): boolean {
  return (dtype === 'float32' || dtype === 'float64') && length * bytesPerElement(dtype) >= HEAP_ARRAY_MIN_BYTES && cpuHeap() !== null;
}

/**
 * A new array of `length` elements of `dtype`: in the CPU's heap where it belongs there and the
 * heap grows for it, else on the engine's heap (shared or not).
 */
function newArray(dtype: DType, length: number, shared: boolean): TypedArray {
  return (heapKind(dtype, length) ? heapArray(dtype, length, false) : null) ?? allocTyped(dtype, length, shared);
}

/** A new array of the CPU's heap (of a heapKind), or null when the heap will not grow for it (heap.ts). */
function heapArray(dtype: DType, length: number, held: boolean): TypedArray | null {
  const heap = cpuHeap()!;
  return dtype === 'float32' ? heap.array(Float32Array, length, held) : heap.array(Float64Array, length, held);
}

/** Lets an array go: its region of the CPU's heap is freed; workers forget a shared one. */
function release(a: TypedArray): void {
  if (!isShared(a)) return;
  forgetSharedArray(a);
  cpuHeap()?.freeArray(a);
}

/** Whether `a` lives on a SharedArrayBuffer. */
export function isShared(a: TypedArray): boolean {
  return typeof SharedArrayBuffer === 'function' && a.buffer instanceof SharedArrayBuffer;
}

export interface ArrayPoolStats {
  /** Free arrays waiting to be reused, and their bytes. */
  freeArrays: number;
  freeBytes: number;
  /** Typed arrays made since the pool was created (requests the pool could not serve). */
  allocations: number;
  /** Requests served from the pool. */
  reuses: number;
}

const DTYPE_INDEX: Record<DType, number> = { float32: 0, float64: 1, int32: 2, bool: 3 };
const DTYPE_OF = ['float32', 'float64', 'int32', 'bool'] as const;

function dtypeIndexOf(a: TypedArray): number {
  return a instanceof Float32Array ? 0 : a instanceof Float64Array ? 1 : a instanceof Int32Array ? 2 : 3;
}

/** The free arrays of one dtype and length, and the tick of the class's last use (a give or a take). */
interface FreeClass {
  readonly arrays: TypedArray[];
  used: number;
}

export class ArrayPool {
  /** Per dtype: free arrays by length. */
  private readonly free: Map<number, FreeClass>[] = DTYPE_OF.map(() => new Map());
  private tick = 0;
  private freeArrays = 0;
  private freeBytes = 0;
  private allocations = 0;
  private reuses = 0;

  constructor(readonly maxFreeBytes = 256 * 2 ** 20) {}

  /**
   * An array of `length` elements of `dtype`, with arbitrary contents. `held`: an array that comes
   * back deterministically (a compiled program's intermediate, an array made inside `tidy`): a
   * free one of the heap if there is one, else a new one under the heap's larger limit for such
   * arrays (heap.ts, HELD_ARRAY_GROWTH_LIMIT), else whatever serves any other request.
   */
  take(dtype: DType, length: number, held = false): TypedArray {
    const cls = this.free[DTYPE_INDEX[dtype]]!.get(length);
    if (cls) cls.used = ++this.tick;
    const list = cls?.arrays;
    const shared = sharedArraysWanted();
    const heapFirst = held && heapKind(dtype, length);
    if (heapFirst) {
      // A free array of the heap first, then a new region; arrays outside the heap stay in the
      // pool, and serve below only when the heap will not grow.
      const heap = cpuHeap()!;
      const i = list ? list.findIndex((a) => heap.holds(a)) : -1;
      if (i >= 0) return this.reused(list!.splice(i, 1)[0]!);
      const a = heapArray(dtype, length, true);
      if (a) {
        this.allocations++;
        return a;
      }
    }
    for (let a = list?.pop(); a; a = list!.pop()) {
      // Made before threads were on: left to the garbage collector, so threaded kernels get shared arrays.
      if (!shared || isShared(a)) return this.reused(a);
      this.taken(a);
    }
    this.allocations++;
    return heapFirst ? allocTyped(dtype, length, shared) : newArray(dtype, length, shared);
  }

  /** `a`, just taken off its free list, counted out of the free arrays. */
  private taken(a: TypedArray): void {
    this.freeArrays--;
    this.freeBytes -= a.byteLength;
  }

  /** `a`, just taken off its free list, handed out again. */
  private reused(a: TypedArray): TypedArray {
    this.taken(a);
    this.reuses++;
    return a;
  }

  /** Returns an array nobody reads any more. */
  give(array: TypedArray): void {
    const d = dtypeIndexOf(array);
    const bytes = array.byteLength;
    if (bytes > this.maxFreeBytes) {
      // Left to the garbage collector; the workers that hold it (range jobs) forget it now.
      release(array);
      return;
    }
    const byLength = this.free[d]!;
    let cls = byLength.get(array.length);
    if (!cls) byLength.set(array.length, (cls = { arrays: [], used: 0 }));
    cls.used = ++this.tick;
    // Room is always found: the array fits the limit, and every other class can be dropped.
    while (this.freeBytes + bytes > this.maxFreeBytes && this.dropLeastRecent(cls));
    if (this.freeBytes + bytes > this.maxFreeBytes) {
      // Only its own class is left, full: the array is left to the garbage collector.
      release(array);
      return;
    }
    cls.arrays.push(array);
    this.freeArrays++;
    this.freeBytes += bytes;
  }

  /**
   * Drops the free arrays of the size class used least recently, other than `keep` (to the
   * garbage collector; the workers forget shared ones), and the empty classes it passes. Returns
   * false when there was none to drop. A scan of the classes: it runs only when the pool is full.
   */
  private dropLeastRecent(keep: FreeClass): boolean {
    const oldest = removeLeastRecentClass(this.free, keep, (cls) => cls.arrays.length === 0);
    if (oldest === undefined) return false;
    for (const a of oldest[1].arrays) {
      release(a);
      this.freeArrays--;
      this.freeBytes -= a.byteLength;
    }
    return true;
  }

  stats(): ArrayPoolStats {
    return { freeArrays: this.freeArrays, freeBytes: this.freeBytes, allocations: this.allocations, reuses: this.reuses };
  }

  /** Drops every free array (to the garbage collector). */
  clear(): void {
    for (const m of this.free) for (const cls of m.values()) for (const a of cls.arrays) release(a);
    for (const m of this.free) m.clear();
    this.freeArrays = 0;
    this.freeBytes = 0;
  }
}
