// The WebAssembly matrix product at run time: the module is generated and compiled once, on first
// use, with relaxed SIMD's fused multiply-add where the engine has it; its memory is the CPU's
// heap (heap.ts) where there is one, and operands that live there are read where they lie, others
// copied into its scratch (one memcpy each); B is packed there, and C is computed in chunks of rows, on this
// thread or split across workers, then copied out chunk by chunk, each chunk handed to the
// caller's epilogue while it is still in cache. A product of at most four rows or four columns is
// narrow: the narrow kernels read both operands as copied, unpacked. A product of depth at most
// four (a first layer over 2-D points) is shallow: the shallow kernels read A and B unpacked and
// write C where it lies in the heap.
//
// Copying costs O(mk + kn + mn) against the product's O(mnk) and lets the kernels read packed,
// aligned operands whatever the caller's arrays are. The memory is shared (a SharedArrayBuffer)
// wherever that is allowed, so workers can compute in place.

import { noteWasmRefusal, sharedMemorySupported, wasmRelaxedSimdSupported, wasmSimdSupported } from './features.js';
import { type MatmulKernelShape, type MatmulModuleLayout, NARROW_ROWS, SHALLOW_DEPTH, type WasmFloat, matmulLayout, matmulModule } from './matmulModule.js';
import { helpersSource } from '../jsCode.js';
import { type CpuHeap, HEAP_MAXIMUM_PAGES, type HeapRegion, cpuHeap } from './heap.js';
import { showValue } from '@scorch/options';
import { type MatmulExports, type MatmulJob, ThreadPool, WORKER_SPIN_MICROSECONDS, checkSpinMicroseconds, hardwareThreads, syncMessagesSupported, workerFactory } from './threadPool.js';

/**
 * Register tiles and blocks, measured (benchmarks/NOTES.md, "no unrolling over k" and "5 rows,
 * not 6"). V8 on x64 gives wasm 15 of the 16 xmm registers. With mul then add a step of k holds
 * mr·nv accumulators, nv B vectors, the A splat and the product: a 5×2-vector tile needs 14, a
 * 6×2 one 16, which spills (a third of the speed on an AMD EPYC; hidden on the Intel machine the
 * first sweep ran on). The fused multiply-add needs no product register, so it keeps 6 rows (15).
 * Unrolling over k by 4 cost about a quarter of the speed; one step per iteration runs at
 * 88–98% of the SIMD bound the suite measures (benchmarks/src/simdPeak.ts). mc = 120 is a
 * multiple of both row counts.
 */
const MUL_ADD_TILE: MatmulKernelShape = { mr: 5, nv: 2, unroll: 1, mc: 120, kc: 256 };
const FMA_TILE: MatmulKernelShape = { mr: 6, nv: 2, unroll: 1, mc: 120, kc: 256 };
/** The same tile for both element types (f32x4 or f64x2 lanes), chosen by whether the kernels fuse. */
function shapes(fma: boolean): Record<WasmFloat, MatmulKernelShape> {
  const tile = fma ? FMA_TILE : MUL_ADD_TILE;
  return { f32: tile, f64: tile };
}

/** 1 GiB: the memory's maximum (a shared memory must declare one; engines reserve it as address space): the heap's. */
const MAXIMUM_PAGES = HEAP_MAXIMUM_PAGES;
const PAGE = 65536;
/** The bytes a product may lay out: the memory's maximum (lowered by tests, so small products run in parts). */
let memoryLimit = MAXIMUM_PAGES * PAGE;

/** For tests: lay out at most `bytes` per call of the kernels (undefined: the memory's maximum, 1 GiB). */
export function setWasmMatmulMemoryLimitForTesting(bytes: number | undefined): void {
  memoryLimit = bytes ?? MAXIMUM_PAGES * PAGE;
}
/** Default cap on threads: beyond it a 2-D product gains little and memory bandwidth is shared. */
const MAX_DEFAULT_THREADS = 8;
/**
 * Multiply-adds below which a product stays on one thread: 2^24, about 1 ms on one core at
 * ~30 GFLOP/s. Waking the workers costs tens of µs on an idle machine, but on a busy one a worker
 * that has claimed a chunk and is then descheduled makes the caller wait a time slice: measured on
 * the 2-core development machine at load 10, 128³ (2^21) took 0.13 ms on one thread and a median
 * of 2.6 ms on two. Above about a millisecond of work the split pays even there.
 */
const THREAD_MIN_WORK = 1 << 24;
let threadMinWork = THREAD_MIN_WORK;

interface Runtime {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  shared: boolean;
  exports: MatmulExports;
  /** The exports a product calls, per element type (looked up once, not by name per call). */
  kernels: Record<WasmFloat, {
    packB: MatmulExports[string]; packBT: MatmulExports[string]; packBG: MatmulExports[string];
    /** packBTG_f32 (float32's 8-column panels only). */
    packBTG: MatmulExports[string] | undefined;
    gemm: MatmulExports[string]; compact: MatmulExports[string];
    /** narrow_T_r and narrowCols_T_r at index r − 1. */
    narrow: MatmulExports[string][];
    narrowCols: MatmulExports[string][];
    /** shallow_T_k at index k − 1. */
    shallow: MatmulExports[string][];
  }>;
  fma: boolean;
  layouts: Record<WasmFloat, MatmulModuleLayout>;
  /**
   * The CPU's heap when the memory is the heap's (heap.ts): the products' scratch is then a
   * region of it, from `base`, and operands that live in the heap are read where they lie.
   */
  heap: CpuHeap | null;
  scratch: HeapRegion | null;
  /** The scratch's address (0 without a heap: the memory is the products' own) and bytes. */
  base: number;
  bytes: number;
  f32: Float32Array;
  f64: Float64Array;
  /** The memory as i32 (a gathered B's offset tables are written through it). */
  i32: Int32Array;
}

let runtime: Runtime | null | undefined;
let threadSetting: number | undefined;
let pool: ThreadPool | null = null;
/**
 * Set when a pool could not start (a worker failed to start): one thread from then on, without
 * starting workers again for every product, until setCpuThreads is called again.
 */
let poolFailed = false;
/** Microseconds the workers spin between jobs (threadPool.ts; a test changes it). */
let workerSpin = WORKER_SPIN_MICROSECONDS;
/**
 * Set while a product uses the module's memory: an epilogue that itself multiplies matrices
 * would overwrite operands the rest of the product still reads, so such a nested call is
 * refused (and runs in TypeScript).
 */
let busy = false;

function newMemory(): { memory: WebAssembly.Memory; shared: boolean; heap: CpuHeap | null } {
  const heap = cpuHeap();
  if (heap) return { memory: heap.memory, shared: true, heap };
  if (sharedMemorySupported()) {
    try {
      return { memory: new WebAssembly.Memory({ initial: 1, maximum: MAXIMUM_PAGES, shared: true }), shared: true, heap: null };
    } catch {
      // A page that is not cross-origin isolated, or too little address space: unshared below.
    }
  }
  return { memory: new WebAssembly.Memory({ initial: 1, maximum: MAXIMUM_PAGES }), shared: false, heap: null };
}

/** The compiled module and its memory, or null where WebAssembly SIMD is missing. */
function getRuntime(): Runtime | null {
  if (runtime !== undefined) return runtime;
  runtime = null;
  if (!wasmSimdSupported()) return null;
  const fma = wasmRelaxedSimdSupported();
  try {
    const { memory, shared, heap } = newMemory();
    const tiles = shapes(fma);
    const module = new WebAssembly.Module(matmulModule({ fma, shapes: tiles, sharedMemory: shared, maximumPages: MAXIMUM_PAGES }));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as MatmulExports;
    runtime = {
      module, memory, shared, exports, fma, heap, scratch: null, base: 0, bytes: heap ? 0 : memory.buffer.byteLength,
      kernels: {
        f32: { packB: exports.packB_f32!, packBT: exports.packBT_f32!, packBG: exports.packBG_f32!, packBTG: exports.packBTG_f32, gemm: exports.gemm_f32!, compact: exports.compact_f32!, narrow: narrowKernels(exports, 'narrow_f32'), narrowCols: narrowKernels(exports, 'narrowCols_f32'), shallow: kernelsUpTo(exports, 'shallow_f32', SHALLOW_DEPTH) },
        f64: { packB: exports.packB_f64!, packBT: exports.packBT_f64!, packBG: exports.packBG_f64!, packBTG: undefined, gemm: exports.gemm_f64!, compact: exports.compact_f64!, narrow: narrowKernels(exports, 'narrow_f64'), narrowCols: narrowKernels(exports, 'narrowCols_f64'), shallow: kernelsUpTo(exports, 'shallow_f64', SHALLOW_DEPTH) },
      },
      layouts: { f32: matmulLayout('f32', tiles.f32), f64: matmulLayout('f64', tiles.f64) },
      f32: new Float32Array(memory.buffer), f64: new Float64Array(memory.buffer), i32: new Int32Array(memory.buffer),
    };
  } catch (e) {
    // Compilation refused (turned off, or an older Chrome's 4 KB limit on synchronous compilation
    // on a page's main thread; this module is about 27 KB) or no memory: the TypeScript kernels.
    noteWasmRefusal('the matrix product\'s module', e);
    runtime = null;
  }
  return runtime;
}

function narrowKernels(exports: MatmulExports, prefix: string): MatmulExports[string][] {
  return kernelsUpTo(exports, prefix, NARROW_ROWS);
}

/** The exports `${prefix}_1` … `${prefix}_${count}`, in order. */
function kernelsUpTo(exports: MatmulExports, prefix: string, count: number): MatmulExports[string][] {
  return Array.from({ length: count }, (_, i) => exports[`${prefix}_${i + 1}`]!);
}

/**
 * Grows the memory to at least `bytes` before a product writes anything, or says it cannot: a
 * grow the engine refuses (no memory or address space to commit) is a RangeError, which reached
 * the caller of matmul as the engine's 'WebAssembly.Memory.grow()' message; the product then
 * runs in TypeScript, which copies nothing into the memory.
 */
function grown(rt: Runtime, bytes: number): boolean {
  try {
    ensureBytes(rt, bytes);
    return true;
  } catch (e) {
    if (e instanceof RangeError) return false;
    throw e;
  }
}

/**
 * Makes the scratch at least `bytes` long: the memory grown (no heap), or a larger region of the
 * heap in place of the old one (nothing in it is kept between products). A RangeError where the
 * memory cannot grow.
 */
function ensureBytes(rt: Runtime, bytes: number): void {
  if (rt.bytes >= bytes) return;
  if (rt.heap) {
    if (rt.scratch) rt.heap.release(rt.scratch);
    rt.scratch = rt.heap.scratch(bytes);
    rt.base = rt.scratch?.start ?? 0;
    rt.bytes = rt.scratch?.bytes ?? 0;
    if (!rt.scratch) throw new RangeError(`cpu: the heap cannot grow by ${bytes} bytes for a matrix product`);
  } else {
    rt.memory.grow(Math.ceil((bytes - rt.bytes) / PAGE));
    rt.bytes = rt.memory.buffer.byteLength;
  }
  if (rt.f32.byteLength < rt.base + rt.bytes) {
    rt.f32 = new Float32Array(rt.memory.buffer);
    rt.f64 = new Float64Array(rt.memory.buffer);
    rt.i32 = new Int32Array(rt.memory.buffer);
  }
}

let heapCopies = 0;

/** Copies heapCopy has made so far (for tests: which path a copy took). */
export function heapCopiesMade(): number {
  return heapCopies;
}

/**
 * Copies over `shape`: dst[dstOff + Σ iₖ·dstStrides[k]] = src[srcOff + Σ iₖ·srcStrides[k]], by the
 * module's copyRuns, when both arrays live in the heap (two arrays, one element type) and the
 * last axis is contiguous on both sides (its rows: a slice's, a pad's, a convolution's windows;
 * the caller merges axes first, stridedCopyWasm in cpuBackend.ts). Returns false, having copied
 * nothing, otherwise, and where an index would fall outside either array: the caller then copies
 * in JavaScript. A row of 32 float32 values is eight vector loads and stores here against 32
 * element copies in a JavaScript loop (benchmarks/NOTES.md, "A convolution's columns copied by
 * WebAssembly").
 */
export function heapCopy(
  src: Float32Array | Float64Array, srcOff: number, srcStrides: readonly number[], shape: readonly number[],
  dst: Float32Array | Float64Array, dstOff: number, dstStrides: readonly number[],
): boolean {
  if (src === dst || src.constructor !== dst.constructor) return false;
  const rank = shape.length;
  if (rank === 0 || srcStrides[rank - 1] !== 1 || dstStrides[rank - 1] !== 1) return false;
  if (shape.some((e) => e === 0)) return true;
  const rt = getRuntime();
  if (!rt?.heap || !rt.heap.holds(src) || !rt.heap.holds(dst)) return false;
  // The least and greatest index each side reads or writes.
  let srcLo = srcOff, srcHi = srcOff, dstLo = dstOff, dstHi = dstOff;
  for (let k = 0; k < rank; k++) {
    const e = shape[k]! - 1;
    srcLo += Math.min(0, e * srcStrides[k]!);
    srcHi += Math.max(0, e * srcStrides[k]!);
    dstLo += Math.min(0, e * dstStrides[k]!);
    dstHi += Math.max(0, e * dstStrides[k]!);
  }
  if (srcLo < 0 || dstLo < 0 || srcHi >= src.length || dstHi >= dst.length) return false;
  const E = src.BYTES_PER_ELEMENT;
  const run = shape[rank - 1]! * E;
  // Up to three outer axes in one call (the innermost ones); more, one call per index of the rest.
  const inner = Math.min(3, rank - 1);
  const outer = rank - 1 - inner;
  const axis = (j: number) => outer + j - (3 - inner); // call axis j (0–2) → view axis, below `outer` when padded
  const cn = [0, 1, 2].map((j) => (axis(j) < outer ? 1 : shape[axis(j)]!));
  const cs = [0, 1, 2].map((j) => (axis(j) < outer ? 0 : srcStrides[axis(j)]! * E));
  const cd = [0, 1, 2].map((j) => (axis(j) < outer ? 0 : dstStrides[axis(j)]! * E));
  const copyRuns = rt.exports.copyRuns!;
  heapCopies++;
  const idx = new Array<number>(outer).fill(0);
  const count = shape.slice(0, outer).reduce((p, e) => p * e, 1);
  let s = src.byteOffset + srcOff * E;
  let d = dst.byteOffset + dstOff * E;
  for (let c = 0; c < count; c++) {
    copyRuns(d, s, run, cn[0]!, cn[1]!, cn[2]!, cd[0]!, cd[1]!, cd[2]!, cs[0]!, cs[1]!, cs[2]!);
    for (let k = outer - 1; k >= 0; k--) {
      idx[k]!++;
      s += srcStrides[k]! * E;
      d += dstStrides[k]! * E;
      if (idx[k]! < shape[k]!) break;
      s -= srcStrides[k]! * shape[k]! * E;
      d -= dstStrides[k]! * shape[k]! * E;
      idx[k] = 0;
    }
  }
  return true;
}

/** Bytes of the matrix product's scratch: its WebAssembly memory (shared with its workers), or its region of the heap; 0 until its first product. */
export function matmulMemoryBytes(): number {
  return runtime ? (runtime.heap ? runtime.bytes : runtime.memory.buffer.byteLength) : 0;
}

/** Whether the WebAssembly kernels can run here. */
export function wasmMatmulAvailable(): boolean {
  return getRuntime() !== null;
}

/** Whether the kernels use fused multiply-add (relaxed SIMD). */
export function wasmMatmulUsesFma(): boolean {
  return getRuntime()?.fma ?? false;
}

/** For tests: split products from `work` multiply-adds on (undefined: the default, 2^24). */
export function setWasmThreadMinWorkForTesting(work: number | undefined): void {
  threadMinWork = work ?? THREAD_MIN_WORK;
}

let possible: boolean | undefined;
let defaultCount: number | undefined;

/**
 * Whether this platform can run workers on a shared memory at all: SharedArrayBuffer and workers
 * exist, and the module's memory really is shared (the engine may refuse a shared memory, e.g.
 * for want of address space for its maximum, and the pool needs the module; range jobs use the
 * same pool). Fixed for the process, and asked on every product: worked out once (asking the
 * platform each time cost ~0.2 µs a call).
 */
function threadsPossible(): boolean {
  return (possible ??= sharedMemorySupported() && workerFactory() !== null && getRuntime()?.shared === true);
}

/** The default: one per logical core, capped; one where workers or shared memory are missing. */
export function defaultThreads(): number {
  return (defaultCount ??= threadsPossible() ? Math.max(1, Math.min(MAX_DEFAULT_THREADS, hardwareThreads())) : 1);
}

/** Threads a large product uses now (the setting, or the default; 1 where threads cannot run). */
export function wasmThreads(): number {
  if (pool?.workerDied) {
    // A worker died: one thread from now on, as when one cannot start, until setCpuThreads asks again.
    closePool();
    poolFailed = true;
  }
  if (!threadsPossible() || poolFailed) return 1;
  return threadSetting ?? defaultThreads();
}

export function setWasmThreads(n: number | undefined): void {
  if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 256)) {
    // showValue: a string '4' (a count read from the environment) must not read as the number 4.
    const message = `setCpuThreads: expected an integer from 1 to 256 (or undefined for the default), got ${showValue(n)}`;
    throw typeof n === 'number' ? new RangeError(message) : new TypeError(message);
  }
  threadSetting = n;
  poolFailed = false;
  // A smaller count uses part of the pool; only a larger one needs new workers.
  if (pool && pool.participants < wasmThreads()) closePool();
}

function closePool(): void {
  pool?.close();
  pool = null;
}

/** A pool of at least `threads` participants, started on first need; null where it cannot start. */
function getPool(rt: Runtime, threads: number): ThreadPool | null {
  if (pool && pool.participants >= threads) return pool;
  closePool();
  const factory = workerFactory();
  if (!rt.shared || !factory) return null;
  try {
    pool = new ThreadPool(threads, rt.module, rt.memory, factory, helpersSource(), workerSpin, rt.heap);
  } catch {
    // The pool stopped the workers it had started; run on one thread (wasmThreads() says 1).
    pool = null;
    poolFailed = true;
  }
  return pool;
}

/**
 * Whether workers here can take range jobs: they get the job's arrays and function through the
 * CPU's heap (any platform with threads: Node, a cross-origin-isolated page), or by message where
 * they read messages synchronously (Node, even without a heap).
 */
function rangeJobsSupported(): boolean {
  return getRuntime()?.heap != null || syncMessagesSupported();
}

/** Threads a large elementwise kernel uses now: wasmThreads() where workers take range jobs, else 1. */
export function rangeThreads(): number {
  return rangeJobsSupported() ? wasmThreads() : 1;
}

/**
 * Whether the CPU's arrays outside the heap should live in SharedArrayBuffers, so that range jobs
 * can send them to the workers: where they split across threads and workers read messages (Node).
 */
export function sharedArraysWanted(): boolean {
  return syncMessagesSupported() && rangeThreads() > 1;
}

/** The pool for a range job on `threads` participants, started on first need; null where it cannot start. */
export function rangePool(threads: number): ThreadPool | null {
  const rt = getRuntime();
  if (!rt || !rangeJobsSupported()) return null;
  // Workers may free the arrays they were told to forget only when they stop (ThreadPool.restartDue).
  if (pool?.restartDue) closePool();
  return getPool(rt, threads);
}

/** The CPU's array pool drops `array` (a shared array range jobs may have sent to the workers): they forget it. */
export function forgetSharedArray(array: object): void {
  pool?.forget(array);
}

/**
 * Workers running now, the chunks they have computed, the arrays worker 1 holds, the jobs they
 * found before blocking, the blocks of B packed inside jobs, the groups of batch entries run for
 * their large Bs (for tests: did threads take part, do they forget, does spinning catch jobs, did
 * the threads pack B, did a batch run in groups?).
 */
export function wasmThreadStats(): { workers: number; workerChunks: number; workerArrays: number; jobsSeenSpinning: number; packBlocks: number; packGroups: number; columnJobs: number } {
  return pool
    ? { workers: pool.participants - 1, workerChunks: pool.workerChunks, workerArrays: pool.workerArrays, jobsSeenSpinning: pool.jobsSeenSpinning, packBlocks, packGroups, columnJobs }
    : { workers: 0, workerChunks: 0, workerArrays: 0, jobsSeenSpinning: 0, packBlocks, packGroups, columnJobs };
}

/** For tests: the workers' spin between jobs, in microseconds (undefined: the default), for the pool running now and later ones. */
export function setWorkerSpinForTesting(us: number | undefined): void {
  // Checked first: a refused time changes nothing.
  workerSpin = checkSpinMicroseconds(us ?? WORKER_SPIN_MICROSECONDS);
  if (pool) pool.spinMicroseconds = workerSpin;
}

/** Stops the workers, if any (they are unref'd, so this is only needed to free them early). */
export function shutdownWasmThreads(): void {
  closePool();
}

function align64(x: number): number {
  return Math.ceil(x / 64) * 64;
}

function roundUp(x: number, multiple: number): number {
  return Math.ceil(x / multiple) * multiple;
}

/**
 * c[cOff + i·m·n …] = a[aOff + i·aStride …] · b[bOff + i·bStride …] for i < batch (a stride of
 * 0 shares one operand across the batch); m, n, k ≥ 1. `epilogue(start, end)` is called for each
 * finished run of whole rows of C, in order. A product whose operands do not fit the memory at
 * once runs in parts that do: groups of the batch, and blocks of rows of an entry too large by
 * itself (each element of C is the same sum, so the bits are those of one call). Returns false,
 * having written nothing, when the kernels cannot run here, a part cannot fit (B alone, or the
 * rows of an A stored transposed), the engine refuses to grow the memory for the largest part,
 * or another product is using the memory (a product started from an epilogue).
 *
 * `transA`: each A_i is stored transposed, as the k×m row-major matrix Aᵀ (element (i, p) at
 * p·m + i); `transB` likewise for B (Bᵀ, n×k). Such an operand is copied as stored and packed
 * from there: the packed panels, and so every bit of C, are those of its row-major copy.
 */
export function wasmMatmul(
  dtype: WasmFloat, batch: number,
  a: Float32Array | Float64Array, aOff: number, aStride: number,
  b: Float32Array | Float64Array, bOff: number, bStride: number,
  c: Float32Array | Float64Array, cOff: number,
  m: number, n: number, k: number,
  epilogue?: (start: number, end: number) => void,
  transA = false, transB = false,
): boolean {
  if (busy) return false;
  const rt = getRuntime();
  if (!rt) return false;
  busy = true;
  try {
    return runInParts(rt, { dtype, batch, a, aOff, aStride, b, bOff, bStride, c, cOff, m, n, k, epilogue, transA, transB });
  } finally {
    busy = false;
  }
}

/**
 * C = A·B for a B that is not stored but gathered from `src` (a Float32Array or Float64Array):
 * entry i's element (p, j) is src[srcOff + i·srcStride + rows[p] + cols[j]], where each
 * vector of the kernel's panels (4 float32 or 2 float64 columns, from column 0) is contiguous
 * (cols[j + t] = cols[j] + t) and n is a multiple of the panel (8 or 4 columns). That is a
 * stride-1 convolution's columns seen in its padded image: B's row p a (channel, tap) at rows[p],
 * column j an output (y, x) at y·(padded width) + x, each vector in one output row when the
 * output width is a multiple of its lanes (28: a panel's two vectors may lie in two rows). B is packed straight from `src`
 * into the panels a row-major B is packed into, so C is that product's, bit for bit, without
 * the columns in memory. The columns of a panel may also be 2 apart (a stride-2 convolution);
 * or, float32 only, B's rows may come in fours 1 or 2 apart instead (the transposed columns, as a
 * weight gradient reads them: rows[p] an output (y, x), cols[j] a (channel, tap); an output width
 * that is a multiple of 4). A src in the heap is read where it lies; another (a page with no
 * heap, an array past the heap's growth) has the elements the entries read copied into the
 * product's memory first, one copy of the image where the columns would be kh·kw copies. Returns
 * false, having written nothing, where wasmMatmul would, and where the gather does not apply
 * (wasmGatheredBKind): src is C's array, n not a multiple of the panel width, neither contiguity, m
 * or n at most NARROW_ROWS (the narrow kernels read B as stored). Throws a RangeError for offsets
 * outside src.
 */
export function wasmMatmulGatheredB(
  dtype: WasmFloat, batch: number,
  a: Float32Array | Float64Array, aOff: number, aStride: number,
  src: Float32Array | Float64Array, srcOff: number, srcStride: number, rows: Int32Array, cols: Int32Array,
  c: Float32Array | Float64Array, cOff: number,
  m: number, n: number, k: number,
  transA = false,
): boolean {
  if (rows.length !== k || cols.length !== n) throw new RangeError(`wasmMatmulGatheredB: ${rows.length} row offsets and ${cols.length} column offsets for a ${k}×${n} B; expected ${k} and ${n}`);
  let lo = Infinity;
  let hi = -Infinity;
  for (let p = 0; p < k; p++) {
    lo = Math.min(lo, rows[p]!);
    hi = Math.max(hi, rows[p]!);
  }
  let colLo = Infinity;
  let colHi = -Infinity;
  for (let j = 0; j < n; j++) {
    colLo = Math.min(colLo, cols[j]!);
    colHi = Math.max(colHi, cols[j]!);
  }
  const first = srcOff + lo + colLo;
  const last = srcOff + (batch - 1) * srcStride + hi + colHi;
  if (!(first >= 0 && last < src.length)) throw new RangeError(`wasmMatmulGatheredB: the gathered B reads elements ${first} to ${last} of an array of ${src.length}`);
  const packing = busy || src === c ? null : wasmGatheredBKind(dtype, m, n, rows, cols);
  const rt = getRuntime();
  // A source outside the heap is copied from entry 0's element on (gatheredImageElements): offsets
  // below it (never a convolution's) are read in place only.
  if (!packing || !rt || (lo + colLo < 0 && rt.heap?.holds(src) !== true)) return false;
  busy = true;
  try {
    const gather = { rows, cols, packing, reach: hi + colHi };
    const done = runInParts(rt, { dtype, batch, a, aOff, aStride, b: src, bOff: srcOff, bStride: srcStride, c, cOff, m, n, k, epilogue: undefined, transA, transB: false, gather });
    if (done) gatheredProducts++;
    return done;
  } finally {
    busy = false;
  }
}

let gatheredProducts = 0;

/** Calls of wasmMatmulGatheredB that computed their product so far (for tests: which path a convolution took). */
export function gatheredProductsMade(): number {
  return gatheredProducts;
}

/** How wasmMatmulGatheredB packs a gathered B (wasmGatheredBKind). */
export interface GatheredBPacking {
  /** 'panels': each vector's columns in a panel evenly spaced (packBG); 'quads': B's rows in evenly spaced fours (packBTG_f32). */
  readonly kind: 'panels' | 'quads';
  /** Elements between those neighbours: 1 or 2 (a convolution's stride). */
  readonly step: number;
}

/**
 * How wasmMatmulGatheredB packs an m×n product of `dtype` whose B's element (p, j) lies at
 * rows[p] + cols[j], from its shape and tables alone (whether it runs still depends on where the
 * arrays lie): 'panels' where each vector's columns in a panel (4 float32, 2 float64) are evenly
 * spaced, 1 or 2 elements apart (packBG), 'quads' where B's rows come in fours spaced so (packBTG_f32: float32's 8-column
 * panels only), null where neither.
 */
export function wasmGatheredBKind(dtype: WasmFloat, m: number, n: number, rows: Int32Array, cols: Int32Array): GatheredBPacking | null {
  const rt = getRuntime();
  if (!rt || m <= NARROW_ROWS || n <= NARROW_ROWS || cols.length !== n) return null;
  const nr = rt.layouts[dtype].nr;
  if (n % nr !== 0) return null;
  // The step between neighbours within runs of `run` (1 or 2, the same in every run), or 0.
  const evenRuns = (t: Int32Array, length: number, run: number): number => {
    if (length < run) return 0;
    const step = t[1]! - t[0]!;
    if (step !== 1 && step !== 2) return 0;
    for (let j = 0; j + run <= length; j += run) {
      for (let i = 1; i < run; i++) if (t[j + i] !== t[j]! + i * step) return 0;
    }
    return step;
  };
  // Each vector of a panel (4 float32 or 2 float64 columns) evenly spaced: a convolution whose
  // output width is a multiple of the vector's, its panels' vectors perhaps in two output rows.
  const panelStep = evenRuns(cols, n, rt.layouts[dtype].lanes);
  if (panelStep > 0) return { kind: 'panels', step: panelStep };
  const rowStep = dtype === 'f32' && nr === 8 && rt.kernels.f32.packBTG ? evenRuns(rows, rows.length, 4) : 0;
  return rowStep > 0 ? { kind: 'quads', step: rowStep } : null;
}

/** One product's operands and shape, as wasmMatmul takes them (runInParts splits it into parts). */
interface Product {
  readonly dtype: WasmFloat;
  readonly batch: number;
  readonly a: Float32Array | Float64Array;
  readonly aOff: number;
  readonly aStride: number;
  readonly b: Float32Array | Float64Array;
  readonly bOff: number;
  readonly bStride: number;
  readonly c: Float32Array | Float64Array;
  readonly cOff: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly epilogue: ((start: number, end: number) => void) | undefined;
  readonly transA: boolean;
  readonly transB: boolean;
  /**
   * B gathered from b (wasmMatmulGatheredB): element (p, j) of entry i at bOff + i·bStride +
   * rows[p] + cols[j], `reach` the largest rows[p] + cols[j]. Where b is not in the heap, the
   * elements the entries read are copied into the product's memory first (from entry 0's element
   * on: wasmMatmulGatheredB declines negative offsets there).
   */
  readonly gather?: { readonly rows: Int32Array; readonly cols: Int32Array; readonly packing: GatheredBPacking; readonly reach: number };
}

/**
 * Where a product's regions lie in the memory, 64-byte aligned: A copies, one raw B (or a
 * gathered B's offset tables, k + n i32s), packed Bs, C (rows padded to mr, stride npad), the
 * `imageElements` a gathered B reads when its source is not in the heap, and A-pack scratch per
 * participant; `total` bytes in all. runProduct lays them out, and runInParts
 * sizes its calls by `total`: the same for a stored and a gathered B read in place, and more for
 * one copied in (imageElements), so that a gathered product runs in WebAssembly only where the
 * product on the stored columns would (the TypeScript product accumulates float32 in doubles:
 * other bits); where only the stored one fits, the caller copies the columns and runs it.
 */
function productLayout(L: MatmulModuleLayout, batch: number, m: number, n: number, k: number, aShared: boolean, bShared: boolean, participants: number, imageElements = 0) {
  const E = L.bytes;
  const npad = roundUp(n, L.nr);
  const aRegion = 0;
  const aBatch = aShared ? 0 : align64(m * k * E);
  const bRaw = align64(aRegion + (aShared ? align64(m * k * E) : aBatch * batch));
  const bpRegion = align64(bRaw + Math.max(k * n * E, (k + n) * 4));
  const bpBatch = bShared ? 0 : align64(npad * k * E);
  const cRegion = align64(bpRegion + (bShared ? align64(npad * k * E) : bpBatch * batch));
  const cBatch = align64(roundUp(m, L.mr) * npad * E);
  const imageRegion = cRegion + cBatch * batch;
  const apRegion = align64(imageRegion + imageElements * E);
  const apStride = align64(L.mc * L.kc * E);
  return { aRegion, aBatch, bRaw, bpRegion, bpBatch, cRegion, cBatch, imageRegion, apRegion, apStride, total: apRegion + apStride * participants };
}

/**
 * Bytes of packed B (all entries) from which a batch whose entries each have a B of their own
 * runs in groups of entries (runInParts): 8 MiB, beyond which the packed Bs of the whole batch no
 * longer stay in the caches between their packing and their tiles (benchmarks/NOTES.md, "A
 * batch's B packed entry by entry").
 */
const GROUP_PACKED_BYTES = 1 << 23;

/** Whether a product of `entries` batch entries of m×n×k runs on `threads` threads (runProduct's rule). */
function threadedProduct(L: MatmulModuleLayout, threads: number, entries: number, m: number, n: number, k: number): boolean {
  return threads > 1 && entries * m * n * k >= threadMinWork && entries * Math.ceil(m / L.mr) >= 2;
}

/**
 * The elements of a gathered B's source that `entries` entries read, copied into the product's
 * memory (from bOff on) where the source is not in the heap; 0 for a stored B or a source in the
 * heap, which the packers read in place.
 */
function gatheredImageElements(rt: Runtime, p: Product, entries: number): number {
  const { gather, b, c, bStride } = p;
  if (!gather || (b !== c && rt.heap?.holds(b) === true)) return 0;
  return (entries - 1) * bStride + gather.reach + 1;
}

/**
 * The product in calls of runProduct that each fit the memory: all at once where it fits (a
 * batch of large Bs in groups of entries, GROUP_PACKED_BYTES), else the batch in groups (halved
 * until a group fits), else, entry by entry, A's rows in blocks (a
 * block of rows of C reads only those rows of A). Before, a product too large at once ran wholly
 * in TypeScript: several times slower, and with other bits than the same product in a smaller
 * batch (double accumulation there, the element type's here).
 */
function runInParts(rt: Runtime, p: Product): boolean {
  const { dtype, batch, aOff, aStride, bOff, bStride, cOff, m, n, k, transA } = p;
  const L = rt.layouts[dtype];
  const limit = memoryLimit;
  // Participants at most the thread count: an upper bound on what runProduct lays out.
  const threads = wasmThreads();
  const image = (entries: number) => gatheredImageElements(rt, p, entries);
  const bytes = (entries: number, rows: number) =>
    productLayout(L, entries, rows, n, k, aStride === 0 || entries === 1, bStride === 0 || entries === 1, threads, image(entries)).total;
  const fits = (entries: number, rows: number) => bytes(entries, rows) <= limit;
  // A batch whose entries each have a large B of their own runs in groups of entries (one per
  // participant, or one on a single thread), each group's B packed just before its tiles, which
  // then read it from the caches: packing the whole batch first left them reading it back from
  // memory, both threads at once on two. The scratch is then sized for one group.
  let group = batch;
  if (bStride !== 0 && batch > 1 && batch * k * roundUp(n, L.nr) * L.bytes > GROUP_PACKED_BYTES) {
    // On threads, the fewest entries that still run on them, a whole number per participant.
    const least = roundUp(Math.max(threads, Math.ceil(threadMinWork / (m * n * k))), threads);
    group = threads === 1 ? 1 : threadedProduct(L, threads, least, m, n, k) ? least : threadedProduct(L, threads, batch, m, n, k) ? batch : 1;
  }
  const grouped = group < batch;
  if (!grouped && fits(batch, m)) {
    if (!grown(rt, bytes(batch, m))) return false;
    runProduct(rt, p);
    return true;
  }
  group = Math.min(group, batch);
  while (group > 1 && !fits(group, m)) group = Math.ceil(group / 2);
  if (fits(group, m)) {
    if (!grown(rt, bytes(group, m))) return false;
    if (grouped) packGroups += Math.ceil(batch / group);
    for (let i = 0; i < batch; i += group) {
      const g = Math.min(group, batch - i);
      runProduct(rt, { ...p, batch: g, aOff: aOff + i * aStride, bOff: bOff + i * bStride, cOff: cOff + i * m * n });
    }
    return true;
  }
  // One entry is too large: blocks of rows, where A's rows are contiguous (not stored as Aᵀ).
  if (transA) return false;
  let rows = m;
  while (rows > 1 && !fits(1, rows)) rows = Math.ceil(rows / 2);
  if (!fits(1, rows) || !grown(rt, bytes(1, rows))) return false;
  for (let i = 0; i < batch; i++) {
    for (let r0 = 0; r0 < m; r0 += rows) {
      const r = Math.min(rows, m - r0);
      runProduct(rt, { ...p, batch: 1, aOff: aOff + i * aStride + r0 * k, aStride: 0, bOff: bOff + i * bStride, bStride: 0, cOff: cOff + i * m * n + r0 * n, m: r });
    }
  }
  return true;
}

/**
 * Where the unpacked kernels (narrow, shallow) find their operands, as runProduct laid them out:
 * the memory's view of the element type and its bytes an element; byte addresses of A's region
 * (and its entries' stride), B's copy and C's region (and its entries' stride); whether A and B
 * are one matrix for every batch entry, and whether B is read where it lies in the heap.
 */
interface UnpackedOperands {
  readonly view: Float32Array | Float64Array;
  readonly E: number;
  readonly aRegion: number;
  readonly aBatch: number;
  readonly aShared: boolean;
  readonly bRaw: number;
  readonly bShared: boolean;
  readonly bInHeap: boolean;
  readonly cRegion: number;
  readonly cBatch: number;
}

/**
 * The rest of runProduct for a product of at most NARROW_ROWS rows (C = A·B, B not stored
 * transposed), or of at most that many columns (with A stored transposed, as Cᵀ = Bᵀ·Aᵀ, the
 * stored Aᵀ row-major; with A row-major, by narrowCols), A already copied in: on one thread by the
 * narrow kernels (matmulModule.ts), B copied as stored, nothing packed, C written dense. Each
 * element of C is the same sum in the same order as gemm's, so the same bits.
 */
function runNarrow(rt: Runtime, p: Product, o: UnpackedOperands): void {
  const { dtype, batch, b, bOff, bStride, c, cOff, m, n, k, epilogue, transA, transB } = p;
  const { view, E, aRegion, aBatch, aShared, bRaw, bShared, bInHeap, cRegion, cBatch } = o;
  const rowsLeft = m <= NARROW_ROWS && !transB;
  const kernels = rt.kernels[dtype];
  const kernel = rowsLeft ? kernels.narrow[m - 1]! : transA ? kernels.narrow[n - 1]! : kernels.narrowCols[n - 1]!;
  for (let i = 0; i < batch; i++) {
    const from = bOff + i * bStride;
    // B where it lies in the heap, else copied in.
    const bAt = bInHeap ? b.byteOffset + from * E : bRaw;
    if (!bInHeap && (i === 0 || !bShared)) view.set(b.subarray(from, from + k * n), bRaw / E);
    const aAt = aRegion + (aShared ? 0 : i * aBatch);
    const cAt = cRegion + i * cBatch;
    // L = A (element (i, p) at i·k + p, or p·m + i stored transposed), R = B, D = C.
    if (rowsLeft) kernel(aAt, (transA ? 1 : k) * E, (transA ? m : 1) * E, bAt, n * E, cAt, n * E, E, n, k);
    // L = Bᵀ (element (j, p) at p·n + j, or j·k + p stored transposed), R = Aᵀ as stored, D = Cᵀ.
    else if (transA) kernel(bAt, (transB ? k : 1) * E, (transB ? 1 : n) * E, aAt, m * E, cAt, E, n * E, m, k);
    // A row-major; B's element (p, j) at p·n + j, or j·k + p stored transposed.
    else kernel(aAt, k * E, bAt, (transB ? 1 : n) * E, (transB ? k : 1) * E, cAt, m, k);
    const to = cOff + i * m * n;
    c.set(view.subarray(cAt / E, cAt / E + m * n), to);
    epilogue?.(to, to + m * n);
  }
}

/**
 * The rest of runProduct for a product of depth k ≤ SHALLOW_DEPTH (A row-major), A already copied
 * in: on one thread by shallow_T_k (matmulModule.ts), nothing packed; B as stored, or, stored
 * transposed (k·n values: a weight's transpose in a gradient), copied row-major first. C is
 * written where it lies when it lives in the heap (and is neither operand), else in the scratch
 * and copied out: a product of depth 2 writes as many bytes as it computes multiply-adds, so a
 * copy of C would cost about what the kernel saves over gemm (benchmarks/NOTES.md, "Products of
 * depth k ≤ 4"). Each element of C is the same sum in the same order as gemm's, so the same bits.
 */
function runShallow(rt: Runtime, p: Product, o: UnpackedOperands): void {
  const { dtype, batch, a, b, bOff, bStride, c, cOff, m, n, k, epilogue, transB } = p;
  const { view, E, aRegion, aBatch, aShared, bRaw, bShared, bInHeap, cRegion, cBatch } = o;
  const cInHeap = c !== a && c !== b && rt.heap?.holds(c) === true;
  const kernel = rt.kernels[dtype].shallow[k - 1]!;
  // A transposed B is copied as 32-bit words, so that every bit moves as it is (a NaN's payload
  // too), as packing does: `words` to an element, read through the runtime's word view where B
  // lies in the buffer it was made on (a compiled step's weights: no view made per call). Not
  // merely in the memory: that view is remade only as the scratch needs, so after the heap grew
  // it may end before B (a new buffer object for a shared memory, a detached one otherwise).
  // Elsewhere, a view of B's own bytes (whatever the length of the buffer it lies in).
  const words = E / 4;
  const ownView = transB && b.buffer === rt.i32.buffer;
  const bWords = !transB ? null : ownView ? rt.i32 : new Int32Array(b.buffer, b.byteOffset, b.length * words);
  const bWord0 = ownView ? b.byteOffset / 4 : 0;
  const raw = bRaw / 4;
  for (let i = 0; i < batch; i++) {
    const from = bOff + i * bStride;
    // B where it lies in the heap, else copied in (row-major: element (p, j) at p·n + j).
    const bAt = bInHeap && !transB ? b.byteOffset + from * E : bRaw;
    if ((!bInHeap || transB) && (i === 0 || !bShared)) {
      if (!bWords) view.set(b.subarray(from, from + k * n), bRaw / E);
      else {
        const t = rt.i32;
        for (let j = 0; j < n; j++) {
          for (let q = 0; q < k; q++) for (let w = 0; w < words; w++) t[raw + (q * n + j) * words + w] = bWords[bWord0 + (from + j * k + q) * words + w]!;
        }
      }
    }
    const to = cOff + i * m * n;
    const cAt = cInHeap ? c.byteOffset + to * E : cRegion + i * cBatch;
    kernel(aRegion + (aShared ? 0 : i * aBatch), k * E, bAt, n * E, cAt, n * E, m, n);
    if (!cInHeap) c.set(view.subarray(cAt / E, cAt / E + m * n), to);
    epilogue?.(to, to + m * n);
  }
}

/**
 * Elements of B (all entries) from which a threaded product packs B across its threads, where
 * each entry's B has PACK_BLOCK elements or more (the participants each pack blocks of about
 * PACK_BLOCK elements, whole panels of one entry): below, one thread packs it sooner than the
 * others would take their share, or the blocks would be too small to be worth claiming.
 * (benchmarks/NOTES.md, "B packed by every thread".)
 */
const PACK_SPLIT_MIN = 1 << 16;
const PACK_BLOCK = 1 << 15;
/** Blocks of B packed inside threaded jobs since the process started (for tests: wasmThreadStats). */
let packBlocks = 0;
/** Groups of batch entries run one after another for their large Bs (runInParts), since the process started (for tests). */
let packGroups = 0;
/** Threaded jobs split into chunks of columns (runProduct), since the process started (for tests). */
let columnJobs = 0;

function runProduct(rt: Runtime, p: Product): void {
  const { dtype, batch, a, aOff, aStride, b, bOff, bStride, c, cOff, m, n, k, epilogue, transA, transB, gather } = p;
  const L = rt.layouts[dtype];
  const E = L.bytes;
  const npad = roundUp(n, L.nr);
  const aShared = aStride === 0 || batch === 1;
  const bShared = bStride === 0 || batch === 1;
  const aCount = aShared ? 1 : batch;
  const bCount = bShared ? 1 : batch;

  const threads = wasmThreads();
  const threaded = threadedProduct(L, threads, batch, m, n, k);
  // One thread: blocks of mc rows (the A block the kernel keeps in L2; the epilogue sees each
  // block while it is in cache). Threads: about four chunks per participant, for balance.
  const rowsPerChunk = threaded ? Math.min(roundUp(m, L.mr), Math.max(L.mr, roundUp(Math.ceil((batch * m) / (4 * threads)), L.mr))) : L.mc;
  const chunksPerBatch = Math.ceil(m / rowsPerChunk);
  const participants = threaded ? threads : 1;

  const imageElements = gatheredImageElements(rt, p, batch);
  const layout = productLayout(L, batch, m, n, k, aShared, bShared, participants, imageElements);
  const { apStride, bpBatch, cBatch, total } = layout;
  // runInParts sized the call to fit (the same layout, with at least these participants).
  if (total > memoryLimit) throw new Error(`internal: a matmul part of ${total} bytes does not fit the WebAssembly memory`);
  ensureBytes(rt, total);
  // The regions' addresses: the scratch's, from its base; A's, where A lies when it lives in the heap.
  const base = rt.base;
  // A product into its own operand copies that operand first, as where there is no heap: C's rows
  // would overwrite rows of A that later tiles, blocks of k or batch entries still read, and rows
  // of a B shared across a batch that the narrow kernels read again for the next entry (the tiled
  // kernels pack every B before writing C). A read in place may read a vector past A's last row
  // (narrowCols): A's region or the next, in the memory (heap.ts keeps a unit past the top).
  const aInHeap = a !== c && rt.heap?.holds(a) === true;
  // A gathered B whose source is not in the heap packs from a copy of what it reads (imageRegion).
  const bInHeap = (b !== c && rt.heap?.holds(b) === true) || imageElements > 0;
  // The byte address of b's element 0 in the memory (for the copy, as if it lay there whole).
  const bBase = imageElements > 0 ? base + layout.imageRegion - bOff * E : b.byteOffset;
  const aRegion = aInHeap ? a.byteOffset + aOff * E : base + layout.aRegion;
  const aBatch = aInHeap ? (aShared ? 0 : aStride * E) : layout.aBatch;
  const bRaw = base + layout.bRaw;
  const bpRegion = base + layout.bpRegion;
  const cRegion = base + layout.cRegion;
  const apRegion = base + layout.apRegion;

  const view = dtype === 'f32' ? rt.f32 : rt.f64;
  const ex = rt.exports;
  for (let i = 0; i < aCount && !aInHeap; i++) {
    const from = aOff + i * aStride;
    view.set(a.subarray(from, from + m * k), (aRegion + i * aBatch) / E);
  }
  const narrow = !threaded && !gather && ((m <= NARROW_ROWS && !transB) || n <= NARROW_ROWS);
  const shallow = !threaded && !gather && !narrow && k <= SHALLOW_DEPTH && !transA;
  if (narrow || shallow) {
    const operands: UnpackedOperands = { view, E, aRegion, aBatch, aShared, bRaw, bShared, bInHeap, cRegion, cBatch };
    if (narrow) runNarrow(rt, p, operands);
    else runShallow(rt, p, operands);
    return;
  }
  const { packB, packBT, packBG, packBTG, gemm, compact } = rt.kernels[dtype];
  const packGathered = gather?.packing.kind === 'quads' ? packBTG! : packBG;
  const gatherStep = gather?.packing.step ?? 0;
  // A gathered B's tables (byte offsets), where a raw B would be copied (productLayout).
  const tables = gather ? bRaw : -1;
  if (gather) {
    if (imageElements > 0) view.set(b.subarray(bOff, bOff + imageElements), (base + layout.imageRegion) / E);
    const t = rt.i32;
    const t0 = bRaw >> 2;
    for (let q = 0; q < k; q++) t[t0 + q] = gather.rows[q]! * E;
    for (let j = 0; j < n; j++) t[t0 + k + j] = gather.cols[j]! * E;
  }
  const threadPool = threaded ? getPool(rt, threads) : null;
  // A threaded product packs a B of the heap inside its job, blocks of columns at a time across
  // the participants; otherwise B is packed here first.
  const packCols = threadPool && bInHeap && k * n >= PACK_BLOCK && bCount * k * n >= PACK_SPLIT_MIN ? Math.min(npad, roundUp(Math.ceil(PACK_BLOCK / k), L.nr)) : 0;
  const packsPerEntry = packCols > 0 ? Math.ceil(n / packCols) : 0;
  for (let i = 0; i < bCount && packCols === 0; i++) {
    const from = bOff + i * bStride;
    // Packed from where B lies in the heap, else from a copy.
    const bAt = bInHeap ? bBase + from * E : bRaw;
    if (!bInHeap) view.set(b.subarray(from, from + k * n), bRaw / E);
    if (gather) packGathered(bAt, tables, 0, n, k, bpRegion + i * bpBatch, gatherStep);
    else if (transB) packBT(bAt, k, n, k, bpRegion + i * bpBatch);
    else packB(bAt, n, n, k, bpRegion + i * bpBatch);
  }
  // A's row stride as stored (m for Aᵀ), and the bytes from one row of A to the next.
  const lda = transA ? m : k;
  const aRowBytes = transA ? E : k * E;

  const job: MatmulJob = {
    f64: dtype === 'f64', a: aRegion, aBatch, lda, bp: bpRegion, bpBatch, c: cRegion, cBatch, ldc: npad,
    m, n, k, rowsPerChunk, chunksPerBatch, nChunks: batch * chunksPerBatch, colsPerChunk: 0, apBase: apRegion, apStride, participants,
    transA,
    packs: bCount * packsPerEntry, packsPerEntry, packCols,
    b: packCols > 0 ? bBase + bOff * E : 0, bBatch: bShared ? 0 : bStride * E, ldb: gather ? gatherStep : transB ? k : n, transB: transB === true,
    bGather: gather ? (gather.packing.kind === 'quads' ? 2 : 1) : 0, bTables: tables,
  };
  // Chunk i: batch entry bi, rows r0…r0+rows, at cChunk in the memory (the same rule as runChunks).
  const chunk = (i: number) => {
    const bi = Math.floor(i / chunksPerBatch);
    const r0 = (i - bi * chunksPerBatch) * rowsPerChunk;
    return { bi, r0, rows: Math.min(rowsPerChunk, m - r0), cChunk: cRegion + bi * cBatch + r0 * npad * E };
  };
  /** Rows [r0, r0 + rows) of entry bi of C, at byte address `at` of the memory (row stride n), into c; returns where they start there. */
  const rowsOut = (at: number, bi: number, r0: number, rows: number): number => {
    const to = cOff + bi * m * n + r0 * n;
    c.set(view.subarray(at / E, at / E + rows * n), to);
    return to;
  };
  const copyOut = (i: number) => {
    const { bi, r0, rows, cChunk } = chunk(i);
    const to = rowsOut(cChunk, bi, r0, rows);
    epilogue?.(to, to + rows * n);
  };

  packBlocks += job.packs;
  // C where it lies in the heap, when its rows need no compaction: the kernels write whole tiles
  // of mr rows there, and the rows of a last partial tile (which would write past them) go
  // through the scratch. Each element of C is the same sum whichever tile computes it. Not when C
  // is A's array (a product into its own operand): past kc steps of k, A's rows would be read
  // again after C's were written there (B is packed before any tile is written).
  const mWhole = m - (m % L.mr);
  const cInPlace = npad === n && mWhole > 0 && c !== a && rt.heap?.holds(c) === true;
  const cAt = c.byteOffset + cOff * E;
  /** Rows [r0, r0 + rows) of entry bi, fewer than mr, through the scratch into C. */
  const tail = (bi: number, r0: number, rows: number) => {
    gemm(aRegion + bi * aBatch + r0 * aRowBytes, lda, bpRegion + bi * bpBatch, cRegion, npad, rows, npad, k, apRegion, transA ? 1 : 0);
    rowsOut(cRegion, bi, r0, rows);
  };
  if (threadPool) {
    if (cInPlace) {
      // The whole tiles of every entry across the threads, then the entries' last rows (below).
      // Where A is the smaller operand (fewer rows than columns: a convolution's output channels
      // against its pixels), chunks of columns, all of the rows each: a chunk of rows reads all of
      // B's panels, so row chunks read a large B from memory once per chunk
      // (benchmarks/NOTES.md, "Threaded products of few rows split by columns").
      const byCols = m < n && mWhole > 0;
      const colsPerChunk = byCols ? roundUp(Math.ceil(n / Math.max(1, Math.ceil((4 * threads) / batch))), L.nr) : 0;
      const rowsPer = byCols ? mWhole : rowsPerChunk;
      const perBatch = Math.ceil(mWhole / rowsPer) * (byCols ? Math.ceil(n / colsPerChunk) : 1);
      // By columns, a B packed in the job is packed by the chunks, each its own panels (the only
      // chunk that reads them, unless the entries share B), where it computes them.
      const packInChunks = byCols && job.packs > 0 && (!bShared || batch === 1);
      if (byCols) columnJobs++;
      if (packInChunks) packBlocks += batch * perBatch - job.packs;
      threadPool.run({
        ...job, c: cAt, cBatch: m * n * E, ldc: n, m: mWhole, rowsPerChunk: rowsPer, chunksPerBatch: perBatch, nChunks: batch * perBatch, colsPerChunk,
        packs: packInChunks ? 0 : job.packs,
      }, ex);
      if (mWhole < m && batch > 1) {
        // The entries' last rows (fewer than a tile) across the threads too, one chunk per entry,
        // each into its entry's scratch (B is packed), then copied out (npad = n: no compaction).
        const rows = m - mWhole;
        threadPool.run({ ...job, a: aRegion + mWhole * aRowBytes, m: rows, rowsPerChunk: rows, chunksPerBatch: 1, nChunks: batch, colsPerChunk: 0, packs: 0, packsPerEntry: 0, packCols: 0 }, ex);
        for (let bi = 0; bi < batch; bi++) rowsOut(cRegion + bi * cBatch, bi, mWhole, rows);
      } else if (mWhole < m) tail(0, mWhole, m - mWhole);
      epilogue?.(cOff, cOff + batch * m * n);
      return;
    }
    threadPool.run(job, ex);
    for (let i = 0; i < job.nChunks; i++) copyOut(i);
    return;
  }
  if (cInPlace) {
    for (let i = 0; i < job.nChunks; i++) {
      const { bi, r0, rows } = chunk(i);
      const whole = rows - (rows % L.mr);
      if (whole > 0) gemm(aRegion + bi * aBatch + r0 * aRowBytes, lda, bpRegion + bi * bpBatch, cAt + (bi * m * n + r0 * n) * E, n, whole, npad, k, apRegion, transA ? 1 : 0);
      if (whole < rows) tail(bi, r0 + whole, rows - whole);
      const to = cOff + bi * m * n + r0 * n;
      epilogue?.(to, to + rows * n);
    }
    return;
  }
  for (let i = 0; i < job.nChunks; i++) {
    const { bi, r0, rows, cChunk } = chunk(i);
    gemm(aRegion + bi * aBatch + r0 * aRowBytes, lda, bpRegion + bi * bpBatch, cChunk, npad, rows, npad, k, apRegion, transA ? 1 : 0);
    if (npad !== n) compact(cChunk, npad, n, rows);
    copyOut(i);
  }
}
