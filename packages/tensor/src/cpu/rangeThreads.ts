// Large elementwise kernels of compiled CPU programs split across the matmul's worker pool: a
// generated function of (arrays, start, end) computes units [start, end) of its output (elements,
// or rows of its outermost axis), so the caller and the workers each run it over chunks of the
// range on arrays backed by SharedArrayBuffer. Every element is computed by the same code from
// the same inputs whoever runs its chunk, and no element reads another's result, so the results
// are bit-identical to one thread's whatever the thread count.
//
// WebAssembly elementwise kernels (wasmPlan.ts) are range functions too: their source carries
// the module, which each worker compiles once onto the CPU's heap (wasm/heap.ts), reading and
// writing its chunk of the heap's arrays where they lie; where there is no heap, onto a memory of
// its own, copying its chunk's operands in and results out.
//
// The workers get the job's arrays and function through the CPU's heap (wasm/threadPool.ts): so
// in Node and in cross-origin-isolated pages alike. One thread where there are no workers (no
// SharedArrayBuffer), where setCpuThreads(1), below the threshold, when the job's arrays that
// must be staged (those outside the heap; in Node only those under 1 KiB or not shared: made
// before threads were on, or handed in by the user) come to more than 16 MiB, or when the kernel
// calls a defined primitive (its CPU function lives on this thread only).

import type { TypedArray } from '../dtype.js';
import { rangePool, rangeThreads } from './wasm/wasmMatmul.js';

/**
 * Elements below which a kernel stays on one thread: 2^16. Measured on the 2-core development
 * machine: a range job costs 1–3 µs when the worker is already awake (8 trivial chunks, back to
 * back), 10–20 µs to the worker's first claim when it must be woken from Atomics.wait (medians,
 * 1 ms idle between jobs); a simple elementwise kernel (a multiply-add) takes ~2 ns an element on
 * one thread, so from 2^16 elements (~120 µs) half the work outweighs the cost on a free core.
 * Kernels with transcendentals (~10–30 ns an element) would gain from less, but the threshold is
 * per element count, not per cost. No speedup could be measured on that machine (other work left
 * the process about one core; benchmarks/NOTES.md).
 */
export const RANGE_THREAD_MIN_ELEMENTS = 2 ** 16;
let minElements = RANGE_THREAD_MIN_ELEMENTS;

/** For tests: split kernels from `elements` elements on (undefined: the default, 2^16). */
export function setRangeThreadMinElementsForTesting(elements: number | undefined): void {
  minElements = elements ?? RANGE_THREAD_MIN_ELEMENTS;
}

/** Chunks per participant: small enough to balance a descheduled thread, large enough to amortise a claim. */
const CHUNKS_PER_THREAD = 4;

/** A generated function over a range of units, with what it takes to send it to a worker. */
export interface RangeKernel {
  readonly source: string;
  readonly fn: (arrays: readonly TypedArray[], start: number, end: number) => void;
  /** Units of the range, and elements per unit (for the threshold). */
  readonly units: number;
  readonly elementsPerUnit: number;
  /** Whether workers can run it (it calls nothing that lives only on this thread). */
  readonly portable: boolean;
}

let reruns = 0;

/**
 * Split jobs run again on the calling thread because a chunk threw, so far. A chunk throws for an
 * index out of range (the rerun reports it) or, on a worker, for a defect that the rerun hides (a
 * helper its copy of the generated code lacks): tests expect none where no index is out of range.
 */
export function rangeRerunsForTesting(): number {
  return reruns;
}

/** Runs `k` over all its units on `arrays`, split across threads when it is large enough. */
export function runRange(k: RangeKernel, arrays: readonly TypedArray[]): void {
  const threads = k.portable && k.units >= 2 && k.units * k.elementsPerUnit >= minElements ? rangeThreads() : 1;
  if (threads > 1) {
    const pool = rangePool(threads);
    if (pool) {
      const unitsPerChunk = Math.ceil(k.units / (CHUNKS_PER_THREAD * threads));
      try {
        // False: an array cannot reach the workers here (see ThreadPool.runRanges); one thread.
        if (pool.runRanges({ source: k.source, fn: k.fn as never, arrays, units: k.units, unitsPerChunk, participants: threads })) return;
      } catch {
        // A chunk threw (an index out of range): run it all here, which throws the real error.
        reruns++;
      }
    }
  }
  k.fn(arrays, 0, k.units);
}
