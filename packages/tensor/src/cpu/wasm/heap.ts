// The CPU's heap: one shared WebAssembly.Memory that the kernels' modules import and that the
// CPU's float arrays live in, so that a kernel reads its operands and writes its results where
// they lie instead of copying them into a memory of its own and back (about a quarter of a
// two-thread step's main thread was such copies: benchmarks/NOTES.md, "The CPU's arrays in the
// kernels' memory").
//
// Only a shared memory will do. A WebAssembly memory grows, and growing an unshared one detaches
// its ArrayBuffer, which empties every typed array on it; a shared memory's SharedArrayBuffer
// never detaches, so arrays made before a growth stay valid. Where shared memory is missing (a
// page that is not cross-origin isolated) there is no heap: arrays are ordinary and the kernels
// copy, as before. (An unshared memory whose buffer is made resizable, `toResizableBuffer`, would
// keep its arrays valid too, and was tried: it spared the copies, −10% on the MLP training steps,
// but V8's JavaScript reads typed arrays on a resizable buffer 3–4× slower, so every JavaScript
// loop over the CPU's arrays slowed down: a convolution's gathers took 4× as long, its step 1.5×.
// benchmarks/NOTES.md, "The heap on pages that are not cross-origin isolated".)
//
// The heap hands out regions of 64-byte units (a cache line; every region is also a whole number
// of 16-byte vectors, so a kernel may read or write a last vector past an array's end inside its
// own region). Free regions are kept sorted and merged with their neighbours; a region is taken
// first-fit, or from the top, growing the memory. The CPU's array pool recycles arrays by size,
// so regions are taken and freed only when the pool misses or drops an array. An array the pool
// never gets back (a tensor left to the garbage collector) frees its region when it is collected.
// The kernels' own scratch (packed panels, a pass's copies of broadcast operands) is a region too.

import { sharedMemorySupported } from './features.js';

/** 1 GiB: the memory's maximum (a shared memory must declare one; engines reserve it as address space). */
export const HEAP_MAXIMUM_PAGES = 16384;
const PAGE = 65536;
const UNIT = 64;
/** The bytes of the region that holds `bytes`: whole units, at least one. */
const regionBytes = (bytes: number): number => Math.max(UNIT, Math.ceil(bytes / UNIT) * UNIT);

/**
 * 64 MiB: the array bytes up to which arrays grow the heap; past them an array takes a free region
 * or is an ordinary one (which the kernels copy). A WebAssembly memory cannot shrink, and an array
 * left to the garbage collector frees its region only when its finalizer runs, which is between
 * tasks: a synchronous loop of eager ops that disposes nothing (4,000 steps of x = x·c + d on
 * 1024×128 float32) filled the whole 1 GiB, held 1.45 GiB of resident memory against 0.43 before
 * the heap, and ran 2.5× slower (touching a gigabyte of fresh pages). With this limit it held
 * 0.49 GiB and ran 14% slower (2.06 s against 1.81; 128 MiB: 0.56 GiB and 2.27 s). The steps of
 * the benchmarks hold a few MiB of arrays; a 2048² product's operands and result, 48 MiB. The
 * kernels' scratch is not limited.
 */
export const ARRAY_GROWTH_LIMIT = 64 * 2 ** 20;

/**
 * 512 MiB: the array bytes up to which arrays asked for as held grow the heap: those whose regions
 * come back deterministically, not through the garbage collector (whose finalizers run only
 * between tasks, which the 64 MiB guards against). A compiled program's intermediates (made on
 * its first call and reused by every call until it is disposed): a compiled convolution of batch
 * 32 whose 75 MB of columns stayed outside ran 2.6× slower than batch 16 (benchmarks/NOTES.md, "A
 * compiled program's intermediates grow the heap past 64 MiB"). And arrays made inside `tidy`,
 * freed when it ends unless it returns them (tidyDepth.ts): an eager convolution's training step
 * (W7's shapes, ~150 MB of arrays) ran 20% slower with most of them outside ("Eager arrays made
 * inside tidy grow the heap").
 */
export const HELD_ARRAY_GROWTH_LIMIT = 512 * 2 ** 20;

/**
 * Bytes from which a float array lives in the heap (arrayPool.ts): 1 KiB, 256 float32 elements,
 * the size from which elementwise work runs in WebAssembly (wasmPlan.ts, WASM_ELEMENTWISE_MIN).
 * Smaller arrays (scalars, short rows) are left to the engine's allocator, and staged when a
 * range job sends them to the workers (threadPool.ts).
 */
export const HEAP_ARRAY_MIN_BYTES = 1024;

/**
 * The bytes at the start of every memory the elementwise kernels import (the heap, or a memory of
 * their own) that hold their constant tables, not arrays or scratch: exp's table of 2^(j/256)
 * (mathF32x4.ts, EXP_TABLE_ADDRESS = 0, 2,048 bytes), then the fast functions' constants
 * (mathF32x4Fast.ts, FAST_CONSTANTS_ADDRESS, below 3072), then log's table of 1/c and log(c)
 * (mathF32x4.ts, LOG_TABLE_ADDRESS = 3072, 2,048 bytes), then log1p's over [1, 2)
 * (LOG1P_UNIT_TABLE_ADDRESS = 5120, 4,096 bytes): 9,216 bytes. A kernel module that reads a table
 * writes it there when it is instantiated (a data segment; every instance writes the same bytes).
 * A multiple of 64, so the heap's regions stay aligned to its units.
 */
export const KERNEL_CONSTANTS_BYTES = 9216;

/** A region of the heap: its byte address and bytes (a multiple of 64). */
export interface HeapRegion {
  start: number;
  bytes: number;
}

export class CpuHeap {
  /** Free regions, sorted by address, none adjacent to another. */
  private readonly free: HeapRegion[] = [];
  /** Bytes below which every region has been handed out or is free (the kernels' constants first). */
  private top = KERNEL_CONSTANTS_BYTES;
  /** Arrays handed out, by array: their region (to free it when the pool drops the array). */
  private readonly regions = new WeakMap<object, HeapRegion>();
  /** An array collected without `freeArray` (a tensor left to the garbage collector): its region is freed now. */
  private readonly registry = new FinalizationRegistry<HeapRegion>((r) => {
    this.arrayBytes -= r.bytes;
    this.release(r);
  });
  /** Bytes of the regions arrays hold now. */
  private arrayBytes = 0;
  /** Bytes of the free regions below the top (holes between regions in use). */
  private holeBytes = 0;

  /**
   * `arrayGrowthLimit`: the bytes of arrays and holes past which arrays only take free regions
   * (ARRAY_GROWTH_LIMIT); `heldGrowthLimit`: the same for arrays asked for as held (HELD_ARRAY_GROWTH_LIMIT).
   */
  constructor(readonly memory: WebAssembly.Memory, readonly arrayGrowthLimit = ARRAY_GROWTH_LIMIT, readonly heldGrowthLimit = HELD_ARRAY_GROWTH_LIMIT) {}

  /**
   * Whether `a` is an array made by `array` and not freed: it starts its region, which is a
   * whole number of 16-byte vectors, so a kernel may write a last whole vector past its end.
   */
  holds(a: object): boolean {
    return this.regions.has(a);
  }

  /**
   * A new array of `length` elements of `Type` in the heap (contents arbitrary), or null when the
   * memory cannot grow to hold it, or when no free region fits and the arrays with the free holes
   * between them would pass `arrayGrowthLimit` bytes (`heldGrowthLimit` for an array a compiled
   * program holds: `held`).
   * Its region is freed by `freeArray`, or when it is collected.
   */
  array<T extends Float32Array | Float64Array>(Type: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number }, length: number, held = false): T | null {
    const bytes = length * Type.BYTES_PER_ELEMENT;
    // The free holes between regions in use count against the limit with the arrays: a run of ever
    // larger requests, each freed region pinned between others, would otherwise push the top to
    // the 1 GiB maximum with almost nothing held. (The kernels' scratch is not limited.)
    const mayGrow = this.arrayBytes + this.holeBytes + regionBytes(bytes) <= (held ? this.heldGrowthLimit : this.arrayGrowthLimit);
    const r = this.take(bytes, mayGrow);
    if (r === null) return null;
    const a = new Type(this.memory.buffer, r.start, length);
    this.regions.set(a, r);
    this.registry.register(a, r, a);
    this.arrayBytes += r.bytes;
    return a;
  }

  /** Frees the region of `a` (made by `array`); nothing may read `a` afterwards. */
  freeArray(a: object): void {
    const r = this.regions.get(a);
    if (!r) return;
    this.regions.delete(a);
    this.registry.unregister(a);
    this.arrayBytes -= r.bytes;
    this.release(r);
  }

  /** A scratch region of at least `bytes` (its address), or null when the memory cannot grow; freed by `release`. */
  scratch(bytes: number): HeapRegion | null {
    return this.take(bytes);
  }

  /**
   * Whether a region of `bytes` could be taken now (`scratch`) without a failure of the memory's
   * growth: a free region fits, or the top has room below the heap's maximum. Takes nothing.
   */
  fits(bytes: number): boolean {
    const size = regionBytes(bytes);
    return this.free.some((f) => f.bytes >= size) || this.top + size + UNIT <= HEAP_MAXIMUM_PAGES * PAGE;
  }

  /** Bytes the arrays' regions hold now, and the memory's size. */
  stats(): { arrayBytes: number; memoryBytes: number } {
    return { arrayBytes: this.arrayBytes, memoryBytes: this.memory.buffer.byteLength };
  }

  private take(bytes: number, mayGrow = true): HeapRegion | null {
    const size = regionBytes(bytes);
    const { free } = this;
    for (let i = 0; i < free.length; i++) {
      const f = free[i]!;
      if (f.bytes < size) continue;
      const r = { start: f.start, bytes: size };
      this.holeBytes -= size;
      if (f.bytes === size) free.splice(i, 1);
      else {
        f.start += size;
        f.bytes -= size;
      }
      return r;
    }
    // From the top, growing the memory (by at least an eighth, so that a run of growing requests
    // grows it a few times, not once each). A unit past the top stays in the memory, so that a
    // vector read just past the last region's end reads bytes of the memory, not beyond it.
    const end = this.top + size;
    const have = this.memory.buffer.byteLength;
    if (end + UNIT > HEAP_MAXIMUM_PAGES * PAGE || (!mayGrow && end + UNIT > have)) return null;
    if (end + UNIT > have) {
      const pages = Math.ceil((end + UNIT - have) / PAGE);
      const generous = Math.min(HEAP_MAXIMUM_PAGES - have / PAGE, Math.max(pages, Math.ceil(have / PAGE / 8)));
      try {
        this.memory.grow(generous);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        try {
          this.memory.grow(pages);
        } catch (e2) {
          if (!(e2 instanceof RangeError)) throw e2;
          return null;
        }
      }
    }
    const r = { start: this.top, bytes: size };
    this.top = end;
    return r;
  }

  /** Returns region `r` to the free regions, merged with its neighbours (the top one lowers the top). */
  release(r: HeapRegion): void {
    const { free } = this;
    // The first free region after r.
    let lo = 0;
    let hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (free[mid]!.start < r.start) lo = mid + 1;
      else hi = mid;
    }
    let start = r.start;
    let bytes = r.bytes;
    const before = free[lo - 1];
    if (before && before.start + before.bytes === start) {
      start = before.start;
      bytes += before.bytes;
      free.splice(--lo, 1);
    }
    const after = free[lo];
    if (after && start + bytes === after.start) {
      bytes += after.bytes;
      free.splice(lo, 1);
    }
    // The neighbours merged in were holes already; r's own bytes become one now.
    this.holeBytes += r.bytes;
    if (start + bytes === this.top) {
      this.top = start;
      this.holeBytes -= bytes;
    } else free.splice(lo, 0, { start, bytes });
  }
}

let heap: CpuHeap | null | undefined;

/**
 * The heap, made on first use, or null where a shared WebAssembly memory cannot be made (no
 * SharedArrayBuffer, or the engine refuses the address space for its maximum).
 */
export function cpuHeap(): CpuHeap | null {
  if (heap !== undefined) return heap;
  heap = null;
  if (!sharedMemorySupported()) return null;
  try {
    heap = new CpuHeap(new WebAssembly.Memory({ initial: 1, maximum: HEAP_MAXIMUM_PAGES, shared: true }));
  } catch {
    heap = null;
  }
  return heap;
}

/** Which memory the CPU's arrays live in here: 'shared', the heap; 'none', ordinary arrays, which the kernels copy. */
export type CpuHeapKind = 'shared' | 'none';

/** Whether there is a heap here (making it if it is not made yet). */
export function cpuHeapKind(): CpuHeapKind {
  return cpuHeap() === null ? 'none' : 'shared';
}

/** The heap's size in bytes, 0 where there is none or none has been made yet (without making it). */
export function heapMemoryBytes(): number {
  return heap ? heap.memory.buffer.byteLength : 0;
}
