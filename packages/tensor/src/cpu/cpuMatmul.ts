// Matrix product kernels of the CPU backend: C[m×n] = A[m×k]·B[k×n], row-major, at offsets, one
// product or a batch of them, with an optional epilogue that sees each finished block of rows.
//
// Two implementations. Where WebAssembly SIMD exists (Node 16.4+, every current browser), the
// products run in a SIMD kernel that scorch generates at startup (./wasm/): packed panels, a
// register tile of f32x4 or f64x2 accumulators, relaxed SIMD's fused multiply-add where the
// engine offers it, and rows split across workers where SharedArrayBuffer and workers exist.
// There each element of C is accumulated in its own type (float32 in float32, as BLAS does),
// term by term in order of k: |error| ≤ γ_k·Σ|a||b| with γ_k = k·u/(1 − k·u), u the type's unit
// roundoff, whatever the tiling or the thread count (results are bit-identical across both).
//
// The TypeScript kernels below are the fallback (and take the tiny products, where copying into
// the module costs more than it saves; see WASM_MIN_WORK). They accumulate in double precision,
// term by term in order of k on every path (a later k block carries on from the sums so far),
// and round once, so a float32 result there is the correctly rounded value of a double dot
// product, and a float64 result has the WebAssembly kernel's bits wherever that kernel does not
// fuse (cpuKernelInfo().fma false; a fused multiply-add rounds once where JavaScript rounds
// twice). `setCpuWasm(false)` forces them.
//
// An operand may be stored transposed (options transA / transB: the array holds Aᵀ or Bᵀ,
// row-major). The WebAssembly kernel packs it from there; the TypeScript kernels read a
// transposed copy. Either way each element of C is the same sum in the same order as for the
// operand's row-major copy, so the bits are those of the same call on that copy.
//
// TypeScript kernels. Plain scalar JavaScript cannot use SIMD, so speed comes from doing as few
// non-arithmetic instructions per multiply-add as possible: an 8×8 tile of C lives in 64 local
// variables while the kernel walks k, reading 8 values of A and 8 of B per step (64 multiply-adds
// per 16 loads). Both operands are first copied ("packed") into Float64Array scratch laid out in
// exactly the order the tile loop reads them, zero-padded to whole tiles, so the hot loop is
// branch-free, reads memory sequentially and only ever sees one array type whatever the dtype.
// Blocking over k, m and n bounds the scratch whatever the problem size, and keeps the B panel of
// the current tile in L1 while the packed A block is reread from L2.
//
// V8 specialises element accesses on the typed-array class, so float32 and float64 could need
// two monomorphic copies. Measured (float32 and float64 calls interleaved in one process, versus
// one dtype per process): no difference on the tiled, row and narrow paths, because the hot loop
// reads only Float64Array scratch and the dtype-dependent copies are O(mk + kn + mn). Only the
// tiny direct path slows (float64 4×4×4: 0.88 → 0.62 GFLOP/s), where per-call overhead dominates
// anyway. So there is one copy of each function.

import {
  defaultThreads, setWasmThreads, shutdownWasmThreads, wasmMatmul, wasmMatmulAvailable, wasmGatheredBKind, wasmMatmulGatheredB, wasmMatmulUsesFma, wasmThreads,
} from './wasm/wasmMatmul.js';
import { wasmRefusals, wasmRelaxedSimdSupported, wasmSimdSupported } from './wasm/features.js';
import { type CpuHeapKind, cpuHeapKind } from './wasm/heap.js';
import { checkBoolean, checkOptions, showValue } from '@scorch/options';

type FloatArray = Float32Array | Float64Array;

export interface MatmulOptions {
  /**
   * Called with the range [start, end) of `c` each time a run of whole rows of C is final: the
   * runs come in order and cover C once (for a batch, rows of the [batch·m, n] result). Meant
   * for fused elementwise work on the fresh rows while they are still in cache.
   */
  epilogue?: (start: number, end: number) => void;
  /**
   * A is stored transposed: at its offset the array holds Aᵀ, the k×m row-major matrix (element
   * (i, p) of A at i + p·m). Default false (A is m×k row-major).
   */
  transA?: boolean;
  /** B is stored transposed: Bᵀ, n×k row-major (element (p, j) of B at p + j·k). Default false. */
  transB?: boolean;
}

/** The keys MatmulOptions accepts (one array, not one per call: compiled programs call per replay). */
const MATMUL_OPTION_KEYS: readonly string[] = ['epilogue', 'transA', 'transB'];

/**
 * Multiply-adds below which a product stays in TypeScript: copying the operands into the
 * module's memory and padding to whole tiles costs more than SIMD saves there. Measured per call,
 * one thread (TypeScript / WebAssembly): 4×4×4 0.15 / 1.8 µs, 8×8×8 0.59 / 0.50 µs (float64
 * 0.58 / 0.61), 16×16×16 2.9 / 1.2 µs, 2×64×64 24 / 3.6 µs; so the crossover is near 8³.
 */
export const WASM_MIN_WORK = 512;

let wasmEnabled = true;

/**
 * Writes A·B into `c` (overwriting). All three arrays must have the same element type; `c` must
 * not overlap `a` or `b`. A (m×k) and B (k×n) are row-major unless options.transA / transB say
 * they are stored transposed.
 */
export function matmulInto<T extends FloatArray>(
  a: T, aOff: number, b: T, bOff: number, c: T, cOff: number, m: number, n: number, k: number, options?: MatmulOptions,
): void {
  product('matmulInto', 1, a, aOff, 0, b, bOff, 0, c, cOff, m, n, k, options);
}

/**
 * For i < batch: C_i = A_i·B_i, with A_i at aOff + i·aStride, B_i at bOff + i·bStride (a stride
 * of 0 shares one operand across the batch: it is packed once) and C_i at cOff + i·m·n.
 */
export function matmulBatchedInto<T extends FloatArray>(
  batch: number, a: T, aOff: number, aStride: number, b: T, bOff: number, bStride: number, c: T, cOff: number,
  m: number, n: number, k: number, options?: MatmulOptions,
): void {
  product('matmulBatchedInto', batch, a, aOff, aStride, b, bOff, bStride, c, cOff, m, n, k, options);
}

/**
 * matmulBatchedInto for a B gathered from `src` (entry i's element (p, j) at src[srcOff +
 * i·srcStride + rows[p] + cols[j]]: a convolution's columns in its padded image), where
 * the WebAssembly product takes it (wasmMatmulGatheredB: B packed from `src` into the panels of
 * the row-major B, so the same bits as matmulBatchedInto on the columns); false, having written
 * nothing, where it does not (the caller then stores the columns and calls matmulBatchedInto).
 * Only where matmulBatchedInto would run WebAssembly too (the same switch and size; the product
 * sizes its parts and grows the memory as for a stored B), so both give the same bits.
 */
export function matmulGatheredBInto<T extends FloatArray>(
  batch: number, a: T, aOff: number, aStride: number, src: T, srcOff: number, srcStride: number, rows: Int32Array, cols: Int32Array,
  c: T, cOff: number, m: number, n: number, k: number, transA = false,
): boolean {
  const where = 'matmulGatheredBInto';
  for (const [name, v] of [['batch', batch], ['m', m], ['n', n], ['k', k], ['aOff', aOff], ['aStride', aStride], ['srcOff', srcOff], ['srcStride', srcStride], ['cOff', cOff]] as const) checkCount(where, name, v);
  if (!(a instanceof c.constructor && src instanceof c.constructor)) throw new TypeError(`${where}: a, src and c must all be Float32Array or all Float64Array`);
  checkWithin(where, 'a', a, batch, aOff, aStride, m * k);
  checkWithin(where, 'c', c, batch, cOff, m * n, m * n);
  if (!wasmEnabled || m * n * k < WASM_MIN_WORK || batch === 0) return false;
  const dtype = c instanceof Float32Array ? 'f32' : 'f64';
  return wasmMatmulGatheredB(dtype, batch, a, aOff, aStride, src, srcOff, srcStride, rows, cols, c, cOff, m, n, k, transA);
}

/** Whether matmulGatheredBInto can take such a product at all (its shape and B's tables), before it runs. */
export function matmulGatheredBFits(dtype: 'float32' | 'float64', m: number, n: number, k: number, rows: Int32Array, cols: Int32Array): boolean {
  return m * n * k >= WASM_MIN_WORK && wasmGatheredBKind(dtype === 'float32' ? 'f32' : 'f64', m, n, rows, cols) !== null;
}

/** Checks the arguments (O(1): types, integers, ranges), then computes. */
function product(
  where: string, batch: number, a: FloatArray, aOff: number, aStride: number, b: FloatArray, bOff: number, bStride: number,
  c: FloatArray, cOff: number, m: number, n: number, k: number, options: MatmulOptions | undefined,
): void {
  // Written without arrays or closures: compiled programs call this on every replay.
  checkOptions(where, options, MATMUL_OPTION_KEYS);
  const epilogue = options?.epilogue;
  if (epilogue !== undefined && typeof epilogue !== 'function') throw new TypeError(`${where}: epilogue must be a function, got ${typeof epilogue}`);
  const transA = options?.transA ?? false;
  const transB = options?.transB ?? false;
  checkBoolean(where, 'transA', transA);
  checkBoolean(where, 'transB', transB);
  const kindA = arrayKind(a);
  if (kindA === null || arrayKind(b) !== kindA || arrayKind(c) !== kindA) {
    const got = [a, b, c].map((x) => arrayKind(x) ?? (x as object | null)?.constructor?.name ?? String(x)).join(', ');
    throw new TypeError(`${where}: a, b and c must all be Float32Array or all Float64Array, got ${got}`);
  }
  checkCount(where, 'batch', batch);
  checkCount(where, 'm', m);
  checkCount(where, 'n', n);
  checkCount(where, 'k', k);
  checkCount(where, 'aOff', aOff);
  checkCount(where, 'bOff', bOff);
  checkCount(where, 'cOff', cOff);
  checkCount(where, 'aStride', aStride);
  checkCount(where, 'bStride', bStride);
  checkWithin(where, 'a', a, batch, aOff, aStride, m * k);
  checkWithin(where, 'b', b, batch, bOff, bStride, k * n);
  checkWithin(where, 'c', c, batch, cOff, m * n, m * n);
  if (batch === 0 || m === 0 || n === 0) return;
  if (k === 0) {
    c.fill(0, cOff, cOff + batch * m * n);
    epilogue?.(cOff, cOff + batch * m * n);
    return;
  }
  if (wasmEnabled && m * n * k >= WASM_MIN_WORK) {
    const dtype = c instanceof Float32Array ? 'f32' : 'f64';
    if (wasmMatmul(dtype, batch, a, aOff, aStride, b, bOff, bStride, c, cOff, m, n, k, epilogue, transA, transB)) return;
  }
  const aCopy = transA ? transposedCopy(a, aOff, aStride, batch, k, m) : null;
  const bCopy = transB ? transposedCopy(b, bOff, bStride, batch, n, k) : null;
  try {
    if (aCopy) {
      a = aCopy;
      aOff = 0;
      aStride = aStride === 0 ? 0 : m * k;
    }
    if (bCopy) {
      b = bCopy;
      bOff = 0;
      bStride = bStride === 0 ? 0 : k * n;
    }
    for (let i = 0; i < batch; i++) matmulTypeScript(a, aOff + i * aStride, b, bOff + i * bStride, c, cOff + i * m * n, m, n, k, epilogue);
  } finally {
    if (aCopy) giveSpare(aCopy);
    if (bCopy) giveSpare(bCopy);
  }
}

/**
 * Arrays for transposed copies, reused so that a compiled step's small products allocate nothing
 * after the first call. Taken for the length of one product (an epilogue that itself multiplies
 * takes others), then given back. Up to four of each kind are kept; one given back to a full set
 * replaces the smallest kept if it is larger, else it is dropped, so the largest stay. A taker gets
 * the smallest that fits, so the set settles on what the step's products need.
 */
const spares: { f32: Float32Array[]; f64: Float64Array[] } = { f32: [], f64: [] };
const SPARES_KEPT = 4;
let sparesMade = 0;

/** Spare arrays allocated so far (for tests: a repeated sequence of products allocates none). */
export function transposeSparesMade(): number {
  return sparesMade;
}

/** Bytes of the spare arrays kept now (CpuBackend.memoryStats().kernelMemoryBytes counts them). */
export function transposeSpareBytes(): number {
  let bytes = 0;
  for (const x of spares.f32) bytes += x.byteLength;
  for (const x of spares.f64) bytes += x.byteLength;
  return bytes;
}

/**
 * Drops every kept spare and returns their bytes (CpuBackend.trimPool; and tests of the reuse,
 * which start from none, not from what earlier products left).
 */
export function clearTransposeSpares(): number {
  const bytes = transposeSpareBytes();
  spares.f32.length = 0;
  spares.f64.length = 0;
  return bytes;
}

function takeSpare(f32: boolean, n: number): FloatArray {
  const list: FloatArray[] = f32 ? spares.f32 : spares.f64;
  let best = -1;
  for (let i = 0; i < list.length; i++) {
    const length = list[i]!.length;
    if (length >= n && (best < 0 || length < list[best]!.length)) best = i;
  }
  if (best >= 0) {
    const x = list[best]!;
    list[best] = list[list.length - 1]!;
    list.pop();
    return x;
  }
  sparesMade++;
  return f32 ? new Float32Array(n) : new Float64Array(n);
}

function giveSpare(x: FloatArray): void {
  const list: FloatArray[] = x instanceof Float32Array ? spares.f32 : spares.f64;
  if (list.length < SPARES_KEPT) {
    list.push(x);
    return;
  }
  // Full: x replaces the smallest kept, if it is larger.
  let smallest = 0;
  for (let i = 1; i < list.length; i++) if (list[i]!.length < list[smallest]!.length) smallest = i;
  if (list[smallest]!.length < x.length) list[smallest] = x;
}

/**
 * The TypeScript kernels read row-major operands: entries of `x` (each a rows×cols row-major
 * matrix at off + i·stride; stride 0 is one shared entry) transposed into a dense spare array
 * (cols×rows each, `stride === 0 ? 0 : rows·cols` apart), which the caller gives back.
 */
function transposedCopy(x: FloatArray, off: number, stride: number, batch: number, rows: number, cols: number): FloatArray {
  const count = stride === 0 ? 1 : batch;
  const size = rows * cols;
  const out = takeSpare(x instanceof Float32Array, count * size);
  for (let e = 0; e < count; e++) {
    const from = off + e * stride;
    const to = e * size;
    for (let r = 0; r < rows; r++) {
      for (let c = 0, s = from + r * cols; c < cols; c++, s++) out[to + c * rows + r] = x[s]!;
    }
  }
  return out;
}

function arrayKind(x: unknown): 'Float32Array' | 'Float64Array' | null {
  return x instanceof Float32Array ? 'Float32Array' : x instanceof Float64Array ? 'Float64Array' : null;
}

function checkCount(where: string, name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${where}: ${name} must be a non-negative integer, got ${v}`);
}

/** Throws unless `arr` holds `batch` entries of `size` elements from `off`, `stride` apart. */
function checkWithin(where: string, name: string, arr: FloatArray, batch: number, off: number, stride: number, size: number): void {
  const end = batch === 0 || size === 0 ? off : off + (batch - 1) * stride + size;
  if (end > arr.length) throw new RangeError(`${where}: ${name} needs elements up to index ${end - 1}, but has length ${arr.length}`);
}

/**
 * Forces the TypeScript kernels (false) or allows the WebAssembly ones where the engine has
 * WebAssembly SIMD (true, the default). Both agree within the bound stated in the header, and
 * float64 products bit for bit where the WebAssembly kernels do not fuse (cpuKernelInfo().fma).
 * A compiled program follows a change from its next call.
 */
export function setCpuWasm(enabled: boolean): void {
  if (typeof enabled !== 'boolean') throw new TypeError(`setCpuWasm: expected true or false, got ${showValue(enabled)}`);
  wasmEnabled = enabled;
}

let fastMath = false;

/**
 * Lets the CPU compute float32 exp, log1p, log and sigmoid in float32 arithmetic (true): within
 * FAST_MATH_ULPS of the default value (1 ulp; sigmoid 2; checked over every float32 input), NaN,
 * infinities and signed zeros exact. The default (false) is the engine's double result rounded to
 * float32 (Math.fround(Math.fn(x))): correctly rounded but at a few inputs where the double sits
 * on a float32 midpoint (docs/conventions.md). In the WebAssembly
 * kernels (arrays of 256 elements or more where the engine has WebAssembly SIMD) about twice as
 * fast an element (a softplus layer's exp and log1p: ~7 → ~3.6 ns an element on one core), at the
 * accuracy of PyTorch's vectorised CPU kernels (SLEEF's 1-ulp functions); the JavaScript kernels
 * compute the same forms with the same bits (slower there than Math.exp), so results stay
 * identical between eager and jit, small and large arrays, WebAssembly on or off, any number of
 * threads and any JavaScript engine. Never float64's or the other functions' results. Eager ops
 * follow the setting at once; a compiled program follows it from its next call (lowered again,
 * once, on a change). Throws a TypeError for anything but true or false.
 */
export function setCpuFastMath(enabled: boolean): void {
  if (typeof enabled !== 'boolean') throw new TypeError(`setCpuFastMath: expected true or false, got ${showValue(enabled)}`);
  fastMath = enabled;
}

/** Whether setCpuFastMath(true) is in force. */
export function cpuFastMathEnabled(): boolean {
  return fastMath;
}

/** Whether setCpuWasm allows the WebAssembly kernels (they still need WebAssembly SIMD to run). */
export function cpuWasmEnabled(): boolean {
  return wasmEnabled;
}

/**
 * Threads the CPU matrix product may use: an integer ≥ 1, or undefined for the default (one per
 * logical core the process may use, a container's CPU quota counted; at most 8). Where workers, SharedArrayBuffer or a shared WebAssembly.Memory
 * (the engine may refuse one) are missing it is always 1; where a worker fails to start (the system
 * refuses a thread) or dies (its code would not run in a build that rewrote it) it is 1 until the
 * next call.
 * Compiled programs' large elementwise kernels and matmul epilogues (from 2^16 elements) split
 * across the same threads, in Node and in cross-origin-isolated pages. Float arrays of 1 KiB or
 * more live in the CPU's heap, a shared WebAssembly memory, whatever the count; in Node, while it
 * is above 1, the CPU's other arrays are made on SharedArrayBuffers too. Results are identical whatever the count. Workers start on the
 * first job large enough to split; after each job a worker watches for the next for 1 ms
 * (spinning, as OpenMP's threads do, so that the jobs of a training step follow one another
 * without waking a sleeping thread each time), then waits, idle and unref'd; a lower count
 * leaves the workers past it waiting (woken by each job, they sit it out without the spin),
 * shutdownCpuThreads() stops them.
 */
export function setCpuThreads(n: number | undefined): void {
  setWasmThreads(n);
}

/** Stops the CPU kernels' workers now (they never keep a process alive; this frees them early). */
export function shutdownCpuThreads(): void {
  shutdownWasmThreads();
}

export interface CpuKernelInfo {
  /** Which kernels a large product runs: 'wasm-simd' or 'typescript'. */
  matmul: 'wasm-simd' | 'typescript';
  /** The engine has WebAssembly SIMD / relaxed SIMD. */
  wasmSimd: boolean;
  relaxedSimd: boolean;
  /** The WebAssembly kernels use fused multiply-add (relaxed_madd) rather than mul then add. */
  fma: boolean;
  /** Threads a large product uses now, and the default on this machine. */
  threads: number;
  defaultThreads: number;
  /**
   * Where the CPU's float arrays of 1 KiB and more live: 'shared', the CPU's heap, a shared
   * WebAssembly memory that the kernels read and write in place (Node; a cross-origin-isolated
   * page); 'none', ordinary arrays that the kernels copy into a memory of their own.
   */
  heap: CpuHeapKind;
  /** Whether float32 exp, log1p, log and sigmoid take their fast forms (setCpuFastMath). */
  fastMath: boolean;
  /**
   * Kernel modules the engine would not compile (or instantiate) on this thread so far, each of
   * whose kernels runs the TypeScript path instead, with the same values, slower: every module
   * where WebAssembly compilation is turned off; on an older Chrome's main thread, those over
   * 4 KB (the product's, the large elementwise kernels); any whose memory the engine cannot
   * reserve. 0 in Node (the tests check it). `lastWasmRefusal` is the last one's module and
   * error, null while there is none.
   */
  wasmRefusals: number;
  lastWasmRefusal: string | null;
}

/** What the CPU matrix product runs on here (for logs and benchmarks). */
export function cpuKernelInfo(): CpuKernelInfo {
  const wasm = wasmEnabled && wasmMatmulAvailable();
  const refusals = wasmRefusals();
  return {
    matmul: wasm ? 'wasm-simd' : 'typescript',
    wasmSimd: wasmSimdSupported(),
    relaxedSimd: wasmRelaxedSimdSupported(),
    fma: wasm && wasmMatmulUsesFma(),
    threads: wasm ? wasmThreads() : 1,
    defaultThreads: defaultThreads(),
    heap: cpuHeapKind(),
    fastMath,
    wasmRefusals: refusals.count,
    lastWasmRefusal: refusals.last,
  };
}

// ------------------------------------------------------------------------------------------------
// TypeScript kernels

/** Rows and columns of the register tile of C (the micro-kernel below is written for 8×8). */
const MR = 8;
const NR = 8;
/** Rows of A packed at once (multiple of MR): an MC×KC block of doubles is 128 KiB (L2). */
const MC = 64;
/** Depth of one packed slab: a KC×NR panel of B is 16 KiB, so it stays in L1. */
const KC = 256;
/** Columns of B packed at once (multiple of NR): KC×NC doubles = 512 KiB. */
const NC = 256;
/**
 * Shapes the tiled path handles badly, where a simple loop wins (measured on float32; see
 * matmulTypeScript): tiny products, where packing costs more than it saves, and products with only a
 * few rows or columns, where most of each padded 8×8 tile would be zeros.
 */
const DIRECT_MAX_WORK = 216;
const ROWS_MAX_M = 3;
const DIRECT_MAX_N = 2;

const aPack = new Float64Array(MC * KC);
const bPack = new Float64Array(KC * NC);
const cBlock = new Float64Array(MC * NC);

/** One product in TypeScript, double accumulation; the epilogue sees each block of MC rows. */
function matmulTypeScript(
  a: FloatArray, aOff: number, b: FloatArray, bOff: number, c: FloatArray, cOff: number, m: number, n: number, k: number,
  epilogue: ((start: number, end: number) => void) | undefined,
): void {
  // Crossovers measured with 1024 in the other dimensions: at 6³ direct and tiled are equal
  // (0.9 GFLOP/s), at n = 2 direct does 0.8 and tiled 0.6, at m = 3 rows 1.15 and tiled 1.0.
  if (m * n * k <= DIRECT_MAX_WORK || n <= DIRECT_MAX_N) {
    matmulDirect(a, aOff, b, bOff, c, cOff, m, n, k);
    epilogue?.(cOff, cOff + m * n);
    return;
  }
  if (m <= ROWS_MAX_M) {
    matmulRows(a, aOff, b, bOff, c, cOff, m, n, k);
    epilogue?.(cOff, cOff + m * n);
    return;
  }
  // Row blocks outermost, so that a block of rows is final (every column, all of k) before the
  // next starts; B is repacked per (row block, column block, k slab) either way.
  for (let ic = 0; ic < m; ic += MC) {
    const mc = Math.min(MC, m - ic);
    const mcPadded = roundUp(mc, MR);
    for (let jc = 0; jc < n; jc += NC) {
      const nc = Math.min(NC, n - jc);
      const ncPadded = roundUp(nc, NR);
      for (let pc = 0; pc < k; pc += KC) {
        const kc = Math.min(KC, k - pc);
        // B is repacked for every row block (k·n copies per MC rows of C: 1/MC, under 2%, of the
        // m·n·k multiply-adds; A likewise once per NC columns), which keeps the scratch
        // independent of m, n and k.
        packB(b, bOff + pc * n + jc, n, kc, nc, bPack);
        packA(a, aOff + ic * k + pc, k, mc, kc, aPack);
        const overwrite = pc === 0;
        for (let jr = 0; jr < ncPadded; jr += NR) {
          for (let ir = 0; ir < mcPadded; ir += MR) {
            microKernel8x8(aPack, ir * kc, bPack, jr * kc, kc, cBlock, ir * ncPadded + jr, ncPadded, overwrite);
          }
        }
      }
      unpackC(cBlock, ncPadded, c, cOff + ic * n + jc, n, mc, nc);
    }
    epilogue?.(cOff + ic * n, cOff + (ic + mc) * n);
  }
}

function roundUp(x: number, multiple: number): number {
  return Math.ceil(x / multiple) * multiple;
}

/** Tiny or very narrow products: one double accumulator per element of C, B read down a column. */
function matmulDirect(
  a: FloatArray, aOff: number, b: FloatArray, bOff: number, c: FloatArray, cOff: number, m: number, n: number, k: number,
): void {
  for (let i = 0; i < m; i++) {
    const aRow = aOff + i * k;
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[aRow + p]! * b[bOff + p * n + j]!;
      c[cOff + i * n + j] = sum;
    }
  }
}

/** Columns of C accumulated at once by matmulRows: 16 KiB of doubles, L1-resident. */
const ROW_CHUNK = 2048;
const rowAccumulator = new Float64Array(ROW_CHUNK);

/**
 * Products with a few rows (vector·matrix): a chunk of a row of C accumulates in doubles while
 * B is read along its rows, sequentially.
 */
function matmulRows(
  a: FloatArray, aOff: number, b: FloatArray, bOff: number, c: FloatArray, cOff: number, m: number, n: number, k: number,
): void {
  const acc = rowAccumulator;
  for (let j0 = 0; j0 < n; j0 += ROW_CHUNK) {
    const width = Math.min(ROW_CHUNK, n - j0);
    for (let i = 0; i < m; i++) {
      acc.fill(0, 0, width);
      const aRow = aOff + i * k;
      for (let p = 0; p < k; p++) {
        const av = a[aRow + p]!;
        const bRow = bOff + p * n + j0;
        for (let j = 0; j < width; j++) acc[j] = acc[j]! + av * b[bRow + j]!;
      }
      const cRow = cOff + i * n + j0;
      for (let j = 0; j < width; j++) c[cRow + j] = acc[j]!;
    }
  }
}

/**
 * Copies the kc×nc block of B at `from` (row stride ldb) into `into` as NR-wide column panels,
 * each kc rows deep and contiguous; the last panel is zero-padded to NR columns.
 */
function packB(
  b: Float32Array | Float64Array, from: number, ldb: number, kc: number, nc: number, into: Float64Array,
): void {
  let o = 0;
  for (let j0 = 0; j0 < nc; j0 += NR) {
    const width = Math.min(NR, nc - j0);
    for (let p = 0, s = from + j0; p < kc; p++, s += ldb, o += NR) {
      let j = 0;
      for (; j < width; j++) into[o + j] = b[s + j]!;
      for (; j < NR; j++) into[o + j] = 0;
    }
  }
}

/**
 * Copies the mc×kc block of A at `from` (row stride lda) into `into` as MR-tall row panels,
 * each stored column by column (MR values per step of k); the last panel is zero-padded.
 */
function packA(
  a: Float32Array | Float64Array, from: number, lda: number, mc: number, kc: number, into: Float64Array,
): void {
  for (let i0 = 0; i0 < mc; i0 += MR) {
    const height = Math.min(MR, mc - i0);
    const panel = i0 * kc;
    // Row by row, so that reads of A are sequential; the writes stride by MR within the panel.
    let i = 0;
    for (; i < height; i++) {
      const row = from + (i0 + i) * lda;
      for (let p = 0, o = panel + i; p < kc; p++, o += MR) into[o] = a[row + p]!;
    }
    for (; i < MR; i++) {
      for (let p = 0, o = panel + i; p < kc; p++, o += MR) into[o] = 0;
    }
  }
}

/**
 * tile (8×8 at `ci` of `cb`, row stride ldc) = the product of one packed A panel and one packed
 * B panel over kc steps, or, unless `overwrite`, the sums in the tile carried on over those
 * steps: the accumulators start from the tile, so each element is one sum in order of k however
 * k is blocked (adding a block's own sum to the tile would round differently). V8 cannot keep 64 accumulators in x64's 16 float registers and
 * spills most of them to the stack, yet 8×8 measured ~15% faster than 4×4 (which nearly fits;
 * 4.5 against 3.9 GFLOP/s at 512³; 6×8 and 8×6 are level with 8×8, 8×12 and 12×8 no faster): a
 * typed-array load, with its bounds check, costs more than a spill, and 8×8 does 64
 * multiply-adds per 16 loads where 4×4 does 16 per 8.
 */
function microKernel8x8(
  ap: Float64Array, ai: number, bp: Float64Array, bi: number, kc: number,
  cb: Float64Array, ci: number, ldc: number, overwrite: boolean,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c04 = 0, c05 = 0, c06 = 0, c07 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0, c14 = 0, c15 = 0, c16 = 0, c17 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c24 = 0, c25 = 0, c26 = 0, c27 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0, c34 = 0, c35 = 0, c36 = 0, c37 = 0;
  let c40 = 0, c41 = 0, c42 = 0, c43 = 0, c44 = 0, c45 = 0, c46 = 0, c47 = 0;
  let c50 = 0, c51 = 0, c52 = 0, c53 = 0, c54 = 0, c55 = 0, c56 = 0, c57 = 0;
  let c60 = 0, c61 = 0, c62 = 0, c63 = 0, c64 = 0, c65 = 0, c66 = 0, c67 = 0;
  let c70 = 0, c71 = 0, c72 = 0, c73 = 0, c74 = 0, c75 = 0, c76 = 0, c77 = 0;
  if (!overwrite) {
    // A later KC slab carries on from the sums so far, as if the loop over k had not been cut.
    let r = ci;
    c00 = cb[r]!; c01 = cb[r + 1]!; c02 = cb[r + 2]!; c03 = cb[r + 3]!; c04 = cb[r + 4]!; c05 = cb[r + 5]!; c06 = cb[r + 6]!; c07 = cb[r + 7]!;
    r += ldc;
    c10 = cb[r]!; c11 = cb[r + 1]!; c12 = cb[r + 2]!; c13 = cb[r + 3]!; c14 = cb[r + 4]!; c15 = cb[r + 5]!; c16 = cb[r + 6]!; c17 = cb[r + 7]!;
    r += ldc;
    c20 = cb[r]!; c21 = cb[r + 1]!; c22 = cb[r + 2]!; c23 = cb[r + 3]!; c24 = cb[r + 4]!; c25 = cb[r + 5]!; c26 = cb[r + 6]!; c27 = cb[r + 7]!;
    r += ldc;
    c30 = cb[r]!; c31 = cb[r + 1]!; c32 = cb[r + 2]!; c33 = cb[r + 3]!; c34 = cb[r + 4]!; c35 = cb[r + 5]!; c36 = cb[r + 6]!; c37 = cb[r + 7]!;
    r += ldc;
    c40 = cb[r]!; c41 = cb[r + 1]!; c42 = cb[r + 2]!; c43 = cb[r + 3]!; c44 = cb[r + 4]!; c45 = cb[r + 5]!; c46 = cb[r + 6]!; c47 = cb[r + 7]!;
    r += ldc;
    c50 = cb[r]!; c51 = cb[r + 1]!; c52 = cb[r + 2]!; c53 = cb[r + 3]!; c54 = cb[r + 4]!; c55 = cb[r + 5]!; c56 = cb[r + 6]!; c57 = cb[r + 7]!;
    r += ldc;
    c60 = cb[r]!; c61 = cb[r + 1]!; c62 = cb[r + 2]!; c63 = cb[r + 3]!; c64 = cb[r + 4]!; c65 = cb[r + 5]!; c66 = cb[r + 6]!; c67 = cb[r + 7]!;
    r += ldc;
    c70 = cb[r]!; c71 = cb[r + 1]!; c72 = cb[r + 2]!; c73 = cb[r + 3]!; c74 = cb[r + 4]!; c75 = cb[r + 5]!; c76 = cb[r + 6]!; c77 = cb[r + 7]!;
  }
  for (let p = 0; p < kc; p++) {
    const b0 = bp[bi]!, b1 = bp[bi + 1]!, b2 = bp[bi + 2]!, b3 = bp[bi + 3]!, b4 = bp[bi + 4]!, b5 = bp[bi + 5]!, b6 = bp[bi + 6]!, b7 = bp[bi + 7]!;
    const a0 = ap[ai]!;
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3; c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
    const a1 = ap[ai + 1]!;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3; c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
    const a2 = ap[ai + 2]!;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3; c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
    const a3 = ap[ai + 3]!;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3; c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
    const a4 = ap[ai + 4]!;
    c40 += a4 * b0; c41 += a4 * b1; c42 += a4 * b2; c43 += a4 * b3; c44 += a4 * b4; c45 += a4 * b5; c46 += a4 * b6; c47 += a4 * b7;
    const a5 = ap[ai + 5]!;
    c50 += a5 * b0; c51 += a5 * b1; c52 += a5 * b2; c53 += a5 * b3; c54 += a5 * b4; c55 += a5 * b5; c56 += a5 * b6; c57 += a5 * b7;
    const a6 = ap[ai + 6]!;
    c60 += a6 * b0; c61 += a6 * b1; c62 += a6 * b2; c63 += a6 * b3; c64 += a6 * b4; c65 += a6 * b5; c66 += a6 * b6; c67 += a6 * b7;
    const a7 = ap[ai + 7]!;
    c70 += a7 * b0; c71 += a7 * b1; c72 += a7 * b2; c73 += a7 * b3; c74 += a7 * b4; c75 += a7 * b5; c76 += a7 * b6; c77 += a7 * b7;
    ai += MR;
    bi += NR;
  }
  let r = ci;
  cb[r] = c00; cb[r + 1] = c01; cb[r + 2] = c02; cb[r + 3] = c03; cb[r + 4] = c04; cb[r + 5] = c05; cb[r + 6] = c06; cb[r + 7] = c07;
  r += ldc;
  cb[r] = c10; cb[r + 1] = c11; cb[r + 2] = c12; cb[r + 3] = c13; cb[r + 4] = c14; cb[r + 5] = c15; cb[r + 6] = c16; cb[r + 7] = c17;
  r += ldc;
  cb[r] = c20; cb[r + 1] = c21; cb[r + 2] = c22; cb[r + 3] = c23; cb[r + 4] = c24; cb[r + 5] = c25; cb[r + 6] = c26; cb[r + 7] = c27;
  r += ldc;
  cb[r] = c30; cb[r + 1] = c31; cb[r + 2] = c32; cb[r + 3] = c33; cb[r + 4] = c34; cb[r + 5] = c35; cb[r + 6] = c36; cb[r + 7] = c37;
  r += ldc;
  cb[r] = c40; cb[r + 1] = c41; cb[r + 2] = c42; cb[r + 3] = c43; cb[r + 4] = c44; cb[r + 5] = c45; cb[r + 6] = c46; cb[r + 7] = c47;
  r += ldc;
  cb[r] = c50; cb[r + 1] = c51; cb[r + 2] = c52; cb[r + 3] = c53; cb[r + 4] = c54; cb[r + 5] = c55; cb[r + 6] = c56; cb[r + 7] = c57;
  r += ldc;
  cb[r] = c60; cb[r + 1] = c61; cb[r + 2] = c62; cb[r + 3] = c63; cb[r + 4] = c64; cb[r + 5] = c65; cb[r + 6] = c66; cb[r + 7] = c67;
  r += ldc;
  cb[r] = c70; cb[r + 1] = c71; cb[r + 2] = c72; cb[r + 3] = c73; cb[r + 4] = c74; cb[r + 5] = c75; cb[r + 6] = c76; cb[r + 7] = c77;
}

/** Copies the valid mc×nc corner of the padded double block into C (the one rounding step). */
function unpackC(
  block: Float64Array, ldBlock: number, c: Float32Array | Float64Array, to: number, ldc: number, mc: number, nc: number,
): void {
  for (let i = 0; i < mc; i++) {
    const src = i * ldBlock;
    const dst = to + i * ldc;
    for (let j = 0; j < nc; j++) c[dst + j] = block[src + j]!;
  }
}
