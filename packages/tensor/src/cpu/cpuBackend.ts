// The CPU backend: TypeScript over typed arrays, float32 and float64 (and int32/bool). It is the
// reference every other backend is tested against: storage is contiguous row-major, pads and
// most permutes copy, reductions accumulate in float64. Views are there for speed, and values
// never change in place, so a view may share its source's array. Expand (how every scalar and
// bias operand reaches a binary op) makes a broadcast view that elementwise kernels read through
// zero strides; a permute swapping the last two axes makes a transpose view; a slice makes a
// window (its source's array at an offset, through strides); a reshape of a dense array is an
// alias that every kernel reads as dense storage, and of a window a window where strides allow.
// A matmul reads a view in place where its strides allow (a transposed matrix, a batch
// broadcast, whole rows of a window), elementwise kernels read a window that is one row-major
// run in place, a reduction (sum, max, argmax...) reads a broadcast view through its strides, a
// concat or a pad copies windows straight from their source, a reshape copies a view it cannot
// alias into its result (the view stays one), and any other consumer materialises them.
// Elementwise ops, casts and reductions run generated loops (eagerKernels.ts), the same
// JavaScript from the same expression table that compiled programs (compile.ts) fuse; arrays come
// from a pool by size class.

import type { Backend, BackendMemory } from '../backend.js';
import { type DType, type TypedArray, bytesPerElement } from '../dtype.js';
import type { OutputInfo, Primitive, PrimitiveParams } from '../primitives.js';
import { indexOutOfRange, isArgReduce, isBinary, isCompare, isReduce, isScan, isUnary } from '../primitives.js';
import { primitiveDefinition } from '../primitiveRegistry.js';
import type { Program } from '../program.js';
import { fillRandomCpu, randomMemoryBytes } from './wasm/wasmRandom.js';
import { insideTidy } from '../tidyDepth.js';
import { isContiguous, reshapedStrides } from '../fusion.js';
import { MAX_TENSOR_ELEMENTS, type Shape, assertAllocatable, sizeOf, stridesOf } from '../shape.js';
import { ArrayPool, type ArrayPoolStats } from './arrayPool.js';
import { CpuCompiledProgram } from './compile.js';
import { clearTransposeSpares, cpuWasmEnabled, matmulBatchedInto, transposeSpareBytes } from './cpuMatmul.js';
import { type EagerOperand, argReduceInto, elementwiseInto, reduceInto, scanInto } from './eagerKernels.js';
import { elementwiseMemoryBytes } from './wasm/elementwiseModule.js';
import { heapCopy, matmulMemoryBytes } from './wasm/wasmMatmul.js';
import { heapMemoryBytes } from './wasm/heap.js';

/** A CPU tensor's storage. */
export interface CpuHandle {
  /** Contiguous row-major values; null for a view until something needs it dense. */
  data: TypedArray | null;
  /**
   * A view: element i₀…iₙ is base[offset + Σ iₖ·strides[k]]. A `broadcast` (from expand) has stride 0 on
   * stretched axes; a `transpose` (an eager permute swapping the last two axes of a dense float
   * array) is materialised for anything but a matmul. A matmul reads either kind in place where
   * its strides allow (CpuBackend.inPlace), else materialises it. An `alias` (a reshape of a
   * dense array or of an alias) is `base` itself in row-major order: every kernel reads it as
   * dense storage, and it is never copied. A `window` (an eager slice of a dense array, of an
   * alias or of another window, and a reshape of a window where its strides allow) starts at
   * `offset` of `base`; a concat or a pad copies it from there, a matmul reads it in place where
   * its strides allow, an elementwise kernel where it is one row-major run, anything else
   * materialises it. A broadcast of a window starts at its offset too; other views at 0. `source`
   * owns `base`, which goes back to the pool only once no view reads it; a view that is
   * materialised (`dense`) drops it and becomes a plain handle.
   */
  view: { kind: 'broadcast' | 'transpose' | 'alias' | 'window'; base: TypedArray; offset: number; strides: readonly number[]; source: CpuHandle } | null;
  shape: readonly number[];
  dtype: DType;
  freed: boolean;
  /** Bytes this handle holds (a view holds none until materialised). */
  bytes: number;
  /** Live views reading `data` as their base. */
  readers: number;
}

/** Live storage, the pool's counters, and the WebAssembly kernels' memories. */
export interface CpuMemoryStats extends ArrayPoolStats {
  liveBuffers: number;
  liveBytes: number;
  /**
   * Bytes the kernels keep on this thread for scratch and copies of their operands: the matrix
   * product's and the elementwise kernels' regions of the CPU's heap (the WebAssembly memory the
   * float arrays live in, wasm/heap.ts), or their own WebAssembly memories where there is no heap,
   * the float32 random draws' memory (wasm/wasmRandom.ts, 128 KiB once used), and the TypeScript
   * matrix product's kept arrays for transposed operands. They hold data only
   * while a kernel runs; the regions and memories grow to the largest call so far and are kept,
   * and at most four arrays of each float type are kept. So they are not live storage and
   * `memory()` leaves them out. Each worker thread has elementwise scratch of its own besides, not
   * counted here.
   */
  kernelMemoryBytes: number;
  /**
   * Bytes of the CPU's heap (wasm/heap.ts), the shared WebAssembly memory the float arrays of
   * 1 KiB or more and the kernels' scratch live in: its size, the most it has held at once. A
   * WebAssembly memory cannot shrink, so freed arrays' regions are reused by later arrays, not
   * given back to the system. 0 where there is no heap.
   */
  heapBytes: number;
}

/**
 * Copies a strided view of `src` into contiguous `dst`: element (i₀, …, iₙ) of the output reads
 * src[offset + Σ iₖ·strides[k]]. Expand (stride 0), permute and slice are all this one copy: a
 * loop over output rows, or tiledCopy where the last output axis strides far through `src`.
 */
export function stridedCopy(src: TypedArray, offset: number, viewStrides: readonly number[], viewShape: readonly number[], dst: TypedArray): void {
  const n = sizeOf(viewShape);
  if (n === 0) return;
  const merged = coalesced(viewShape, [viewStrides]);
  const shape = merged.shape;
  const strides = merged.strides[0]!;
  const rank = shape.length;
  if (rank === 0) {
    dst[0] = src[offset]!;
    return;
  }
  const inner = shape[rank - 1]!;
  const innerStride = strides[rank - 1]!;
  if (innerStride === 1 && stridedCopyWasm(src, offset, strides, shape, dst, 0, stridesOf(shape))) return;
  const q = tileAxis(strides, shape);
  if (q >= 0) {
    tiledCopy(src, offset, strides, shape, dst, q);
    return;
  }
  const idx = new Array<number>(rank).fill(0);
  let srcPos = offset;
  for (let o = 0; o < n; o += inner) {
    if (innerStride === 1) copyBlock(dst, o, src, srcPos, inner);
    // A broadcast along the last axis (a column): one value over the run, by fill when long.
    else if (innerStride === 0 && inner >= 16) dst.fill(src[srcPos]!, o, o + inner);
    else for (let j = 0, p = srcPos; j < inner; j++, p += innerStride) dst[o + j] = src[p]!;
    // advance the outer counter (axes rank-2 .. 0)
    for (let k = rank - 2; k >= 0; k--) {
      idx[k]!++;
      srcPos += strides[k]!;
      if (idx[k]! < shape[k]!) break;
      srcPos -= strides[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
}

/**
 * Elements from which a strided copy between two arrays in the CPU's heap runs in WebAssembly
 * (heapCopy): below, the JavaScript loop's few microseconds cost less than the call's set-up.
 */
const WASM_COPY_MIN = 2048;

/**
 * The strided copy of stridedCopyInto by heapCopy, when it has WASM_COPY_MIN elements or more, the
 * CPU's WebAssembly kernels are on (setCpuWasm), and both arrays are float arrays in the heap with
 * rows contiguous on both sides: the copy done, or false (nothing copied) where the caller copies
 * in JavaScript.
 */
export function stridedCopyWasm(src: TypedArray, srcOff: number, srcStrides: readonly number[], shape: readonly number[], dst: TypedArray, dstOff: number, dstStrides: readonly number[]): boolean {
  if (sizeOf(shape) < WASM_COPY_MIN || !cpuWasmEnabled()) return false;
  if (!(src instanceof Float32Array || src instanceof Float64Array) || !(dst instanceof Float32Array || dst instanceof Float64Array)) return false;
  // Axes merged on both sides, so that the rows heapCopy copies are as long as they can be.
  const merged = coalesced(shape, [srcStrides, dstStrides]);
  return heapCopy(src, srcOff, merged.strides[0]!, merged.shape, dst, dstOff, merged.strides[1]!);
}

/**
 * Copies a strided view of `src` into a strided view of `dst`, both over `shape`: element
 * (i₀, …, iₙ) goes from src[srcOff + Σ iₖ·srcStrides[k]] to dst[dstOff + Σ iₖ·dstStrides[k]]
 * (the views must not overlap). In WebAssembly where stridedCopyWasm can, else a loop over the
 * rows, each copied as a block where both sides are contiguous.
 */
export function stridedCopyInto(src: TypedArray, srcOff: number, srcStrides: readonly number[], shape: readonly number[], dst: TypedArray, dstOff: number, dstStrides: readonly number[]): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  if (stridedCopyWasm(src, srcOff, srcStrides, shape, dst, dstOff, dstStrides)) return;
  const rank = shape.length;
  if (rank === 0) {
    dst[dstOff] = src[srcOff]!;
    return;
  }
  const inner = shape[rank - 1]!;
  const ss = srcStrides[rank - 1]!;
  const ds = dstStrides[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let s = srcOff;
  let d = dstOff;
  for (let o = 0; o < n; o += inner) {
    if (ss === 1 && ds === 1) copyBlock(dst, d, src, s, inner);
    else for (let j = 0, p = s, q = d; j < inner; j++, p += ss, q += ds) dst[q] = src[p]!;
    for (let k = rank - 2; k >= 0; k--) {
      idx[k]!++;
      s += srcStrides[k]!;
      d += dstStrides[k]!;
      if (idx[k]! < shape[k]!) break;
      s -= srcStrides[k]! * shape[k]!;
      d -= dstStrides[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
}

/**
 * The same walk over fewer axes: axes of extent 1 dropped, and each axis merged into the one
 * before it where that one steps exactly over it (stride = its stride × its extent) in every one
 * of `strideSets` (a view's strides; or a copy's source and destination strides, stridedCopyWasm),
 * so that the innermost loop runs as long as it can (a window sliced as [..., 16, 1, 16, 1] walks
 * rows of 16, not single elements).
 */
function coalesced(shape: readonly number[], strideSets: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strideSets.map(() => []);
  shape.forEach((d, i) => {
    if (d === 1) return;
    const last = outShape.length - 1;
    if (last >= 0 && strideSets.every((st, k) => outStrides[k]![last] === st[i]! * d)) {
      outShape[last] = outShape[last]! * d;
      strideSets.forEach((st, k) => (outStrides[k]![last] = st[i]!));
    } else {
      outShape.push(d);
      strideSets.forEach((st, k) => outStrides[k]!.push(st[i]!));
    }
  });
  return { shape: outShape, strides: outStrides };
}

/** The side of tiledCopy's square tiles: 32 rows of 32 floats read and 32 written stay in the first-level cache. */
const TILE = 32;

/**
 * The output axis (not the last) that tiledCopy pairs with the last: the one of least source
 * stride, when the last output axis strides far through the source (≥ TILE elements) and that one
 * near (< TILE), both of extent ≥ TILE; else -1 (the plain loop reads well enough).
 */
function tileAxis(strides: readonly number[], shape: readonly number[]): number {
  const rank = shape.length;
  if (rank < 2 || shape[rank - 1]! < TILE || Math.abs(strides[rank - 1]!) < TILE) return -1;
  let best = -1;
  for (let k = 0; k < rank - 1; k++) {
    if (shape[k]! >= TILE && Math.abs(strides[k]!) < TILE && (best < 0 || Math.abs(strides[k]!) < Math.abs(strides[best]!))) best = k;
  }
  return best;
}

/**
 * stridedCopy of a view whose last output axis strides far through `src` while output axis `q`
 * is near (a transpose; a permute such as NCHW → NHWC): each plane of axes q and the last is
 * copied in TILE × TILE tiles, so that the cache lines a tile's columns read are reused by its
 * next rows instead of evicted (a 1024 × 1024 float32 transpose read ~7 ns an element untiled).
 * The other axes are an outer counter over both positions.
 */
function tiledCopy(src: TypedArray, offset: number, strides: readonly number[], shape: readonly number[], dst: TypedArray, q: number): void {
  const rank = shape.length;
  const dstStrides = stridesOf(shape);
  const rows = shape[q]!;
  const cols = shape[rank - 1]!;
  const rowSrc = strides[q]!;
  const rowDst = dstStrides[q]!;
  const colSrc = strides[rank - 1]!;
  const outer = shape.map((_, k) => k).filter((k) => k !== q && k !== rank - 1);
  const planes = outer.reduce((p, k) => p * shape[k]!, 1);
  const idx = new Array<number>(outer.length).fill(0);
  let srcPos = offset;
  let dstPos = 0;
  for (let plane = 0; plane < planes; plane++) {
    for (let i0 = 0; i0 < rows; i0 += TILE) {
      const i1 = Math.min(rows, i0 + TILE);
      for (let j0 = 0; j0 < cols; j0 += TILE) {
        const j1 = Math.min(cols, j0 + TILE);
        for (let i = i0; i < i1; i++) {
          const o = dstPos + i * rowDst;
          for (let j = j0, p = srcPos + i * rowSrc + j0 * colSrc; j < j1; j++, p += colSrc) dst[o + j] = src[p]!;
        }
      }
    }
    // advance the counter over the other axes (innermost first)
    for (let t = outer.length - 1; t >= 0; t--) {
      const k = outer[t]!;
      idx[t]!++;
      srcPos += strides[k]!;
      dstPos += dstStrides[k]!;
      if (idx[t]! < shape[k]!) break;
      srcPos -= strides[k]! * shape[k]!;
      dstPos -= dstStrides[k]! * shape[k]!;
      idx[t] = 0;
    }
  }
}

/**
 * The strides through which a permute reads its contiguous row-major input of `shape`: output axis
 * k walks input axis perm[k]. The transpose view and the eager permute's copy both read by these.
 */
function permutedStrides(shape: readonly number[], perm: readonly number[]): number[] {
  const st = stridesOf(shape);
  return perm.map((p) => st[p]!);
}

/**
 * Below this many elements a block is copied element by element: `set` of a `subarray` makes a
 * view object per call (~30–40 ns), which dominated a gather or concat of short blocks (flip
 * along the last axis took ~42 ns an element; benchmarks/NOTES.md, "Short blocks").
 */
const SHORT_BLOCK = 64;

/** dst[at …] = src[from … from + length): one `set` for a long block, a loop for a short one. */
function copyBlock(dst: TypedArray, at: number, src: TypedArray, from: number, length: number): void {
  if (length >= SHORT_BLOCK) dst.set(src.subarray(from, from + length), at);
  else for (let e = 0; e < length; e++) dst[at + e] = src[from + e]!;
}

/**
 * `out` (dense, of `shape`) = the concatenation along `axis` of pieces: piece k of extent
 * `extents[k]` along the axis, read from `offsets[k]` of `pieces[k]`, row-major unless
 * `strides[k]` is given (an eager window). Each piece is one strided copy (stridedCopyInto: a
 * row-major piece's runs, one per row of the axes before `axis`, into theirs in `out`; in
 * WebAssembly where both arrays lie in the heap), for eager and compiled concats.
 */
export function concatInto(
  out: TypedArray, shape: Shape, axis: number, pieces: readonly TypedArray[], offsets: readonly number[], extents: readonly number[],
  strides?: readonly (readonly number[] | null)[],
): void {
  const { outer, inner } = blocks(shape, axis);
  const outRow = shape[axis]! * inner;
  const outStrides = strides?.some((st) => st) ? stridesOf(shape) : null;
  let col = 0;
  for (let k = 0; k < pieces.length; k++) {
    const w = extents[k]! * inner;
    const st = strides?.[k];
    if (st) stridedCopyInto(pieces[k]!, offsets[k]!, st, shape.map((d, i) => (i === axis ? extents[k]! : d)), out, col, outStrides!);
    else stridedCopyInto(pieces[k]!, offsets[k]!, [w, 1], [outer, w], out, col, [outRow, 1]);
    col += w;
  }
}

/**
 * `out` (dense, of `outShape`, already zero: pad writes only the window) = `x` (of `shape`, from
 * `xOffset`, row-major unless `xStrides` say otherwise: an eager window) placed `before` elements
 * into each axis, by one strided copy (eager and compiled pads).
 */
export function padInto(out: TypedArray, outShape: Shape, before: readonly number[], x: TypedArray, xOffset: number, shape: Shape, xStrides: readonly number[] = stridesOf(shape)): void {
  const st = stridesOf(outShape);
  stridedCopyInto(x, xOffset, xStrides, shape, out, before.reduce((acc, s, i) => acc + s * st[i]!, 0), st);
}

/**
 * `out` (dense) = dense `x` (of `shape`, from `xOffset`) gathered along `axis` at the `count`
 * indices of `indices` from `indicesOffset`, each checked first (the CPU's range error): blocks of
 * the axes after `axis` copied whole (eager and compiled gathers).
 */
export function gatherInto(out: TypedArray, x: TypedArray, xOffset: number, shape: Shape, axis: number, indices: TypedArray, indicesOffset: number, count: number): void {
  const { outer, inner } = blocks(shape, axis);
  const extent = shape[axis]!;
  for (let j = 0; j < count; j++) {
    const r = indices[indicesOffset + j]!;
    if (!(r >= 0 && r < extent)) throw indexOutOfRange('gather', r, axis, extent);
  }
  const m = count;
  for (let o = 0; o < outer; o++) {
    const base = xOffset + o * extent * inner;
    // Single elements (a gather along the last axis) without a call each.
    if (inner === 1) for (let j = 0; j < m; j++) out[o * m + j] = x[base + indices[indicesOffset + j]!]!;
    else for (let j = 0; j < m; j++) copyBlock(out, (o * m + j) * inner, x, base + indices[indicesOffset + j]! * inner, inner);
  }
}

/** Outer/inner block decomposition around `axis` for concat, gather and scatter. */
function blocks(shape: Shape, axis: number): { outer: number; inner: number } {
  return { outer: sizeOf(shape.slice(0, axis)), inner: sizeOf(shape.slice(axis + 1)) };
}

/**
 * A matmul operand as the product reads it: its array, where its first matrix starts, the
 * elements between batch entries (0: shared), stored transposed or not.
 */
interface MatmulOperand {
  readonly data: Float32Array | Float64Array;
  readonly offset: number;
  readonly stride: number;
  readonly transposed: boolean;
}

const TRANSPOSED_A = { transA: true };
const TRANSPOSED_B = { transB: true };
const TRANSPOSED_BOTH = { transA: true, transB: true };

/**
 * The CPU reference backend (float32, float64, int32, bool), registered as device `'cpu'`:
 * TypeScript kernels, WebAssembly SIMD for float32 elementwise work and matrix products, and
 * `compile` for jit programs (docs/jit.md, "On the CPU").
 */
export class CpuBackend implements Backend<CpuHandle> {
  readonly name: string;
  readonly dtypes: readonly DType[] = ['float32', 'float64', 'int32', 'bool'];
  private liveBuffers = 0;
  private liveBytes = 0;
  /** Arrays of freed handles, for the next handle of the same dtype and size. */
  readonly pool = new ArrayPool();

  constructor(name = 'cpu') {
    this.name = name;
  }

  /**
   * An array for new storage, contents arbitrary (every kernel that uses it writes all of it).
   * More than MAX_TENSOR_ELEMENTS elements is a RangeError naming `where` (the engine's own
   * failure, 'Array buffer allocation failed', names nothing). `held`: an array a compiled
   * program keeps across its calls; arrays made inside `tidy` are asked for as held too, since
   * they come back when it ends (ArrayPool.take).
   */
  allocate(dtype: DType, size: number, where = 'cpu', held = false): TypedArray {
    if (size > MAX_TENSOR_ELEMENTS) {
      throw new RangeError(`${where}: an array of ${size} ${dtype} elements is more than a tensor can hold (at most ${MAX_TENSOR_ELEMENTS} = 2^32 - 1)`);
    }
    return this.pool.take(dtype, size, held || insideTidy());
  }

  /** Wraps an array (from `allocate`) as a live handle. */
  wrap(data: TypedArray, shape: Shape, dtype: DType): CpuHandle {
    const bytes = data.length * bytesPerElement(dtype);
    this.liveBuffers++;
    this.liveBytes += bytes;
    return { data, view: null, shape: Object.isFrozen(shape) ? shape : [...shape], dtype, freed: false, bytes, readers: 0 };
  }

  /** Counts memory a compiled program holds between calls (its intermediates) as live. */
  hold(bytes: number, buffers: number): void {
    this.liveBuffers += buffers;
    this.liveBytes += bytes;
  }

  /**
   * The handle's values as a contiguous array, materialising (once) a broadcast, transpose or
   * window view; a materialised view no longer reads its source, which goes back to the pool if
   * nothing else holds it. An alias gives its source's array itself, which other handles read too: the
   * array is for reading only (no kernel writes into an input). A view of more elements than a
   * tensor holds (an expand to 2^33 elements, which holds none) is a RangeError naming `where`,
   * the op that needed the copy.
   */
  dense(h: CpuHandle, where = 'cpu'): TypedArray {
    if (h.data) return h.data;
    const view = h.view!;
    if (view.kind === 'alias') return view.base;
    assertAllocatable(h.shape, `${where} (copying its ${view.kind} view operand densely)`);
    const data = this.allocate(h.dtype, sizeOf(h.shape));
    stridedCopy(view.base, view.offset, view.strides, h.shape, data);
    h.data = data;
    h.bytes = data.length * bytesPerElement(h.dtype);
    this.liveBytes += h.bytes;
    this.liveBuffers++;
    h.view = null;
    view.source.readers--;
    this.recycle(view.source);
    return data;
  }

  /** True for an alias, or a broadcast, transpose or window view not yet materialised: `execute` copied nothing. */
  isView(h: CpuHandle): boolean {
    return h.view !== null;
  }

  private operand(h: CpuHandle, where: string): EagerOperand {
    // A transpose, and a window whose elements are not one row-major run, are read dense: the fast
    // elementwise kernels read row-major operands (and broadcasts through strides).
    const view = h.data ? null : h.view;
    if (view && (view.kind === 'transpose' || (view.kind === 'window' && !isContiguous({ shape: h.shape, strides: view.strides, offset: view.offset })))) this.dense(h, where);
    if (h.data || !h.view) return { arr: h.data!, strides: null, dtype: h.dtype };
    const { kind, base, offset, strides } = h.view;
    if (kind === 'alias') return { arr: base, strides: null, dtype: h.dtype };
    // A row-major window is its run of the source's array; a broadcast of a window reads from its start.
    if (kind === 'window') return { arr: base.subarray(offset, offset + sizeOf(h.shape)), strides: null, dtype: h.dtype };
    return { arr: offset === 0 ? base : base.subarray(offset), strides, dtype: h.dtype };
  }

  /**
   * A reshape (or stopGradient) of a dense array or of an alias, as an alias of the same array:
   * the same elements in the same row-major order, so nothing is copied. Null for a view (a
   * window may stay one, reshapedWindow; the others the copy materialises).
   */
  private aliasView(x: CpuHandle, shape: readonly number[], dtype: DType): CpuHandle | null {
    const source = CpuBackend.denseSource(x);
    return source && this.newView('alias', source, stridesOf(shape), shape, dtype);
  }

  /** The handle whose array `x` reads in row-major order as it is: x if dense, an alias's source; else null. */
  private static denseSource(x: CpuHandle): CpuHandle | null {
    return x.data ? x : x.view?.kind === 'alias' ? x.view.source : null;
  }

  /** A view of `source`'s array from `offset` (kept from the pool while the view lives), holding no bytes. */
  private newView(kind: NonNullable<CpuHandle['view']>['kind'], source: CpuHandle, strides: readonly number[], shape: readonly number[], dtype: DType, offset = 0): CpuHandle {
    source.readers++;
    return { data: null, view: { kind, base: source.data!, offset, strides, source }, shape: [...shape], dtype, freed: false, bytes: 0, readers: 0 };
  }

  /**
   * An eager slice as a window of its input's array (null where the input is a broadcast or
   * transpose view, which the slice copies as before): nothing is copied, as a slice in PyTorch or
   * NumPy. The window keeps the whole source array from the pool while it lives.
   */
  private sliceView(x: CpuHandle, starts: readonly number[], shape: readonly number[], dtype: DType): CpuHandle | null {
    const dense = CpuBackend.denseSource(x);
    const window = !dense && x.view?.kind === 'window' ? x.view : null;
    if (!dense && !window) return null;
    const strides = window ? window.strides : stridesOf(x.shape);
    let offset = window ? window.offset : 0;
    for (let i = 0; i < starts.length; i++) offset += starts[i]! * strides[i]!;
    // A window of no elements reads none: its offset may lie past the end of an empty source.
    if (sizeOf(shape) === 0) offset = 0;
    return this.newView('window', window ? window.source : dense!, strides, shape, dtype, offset);
  }

  /**
   * Where a copy reads `h` from: a window at its offset of its source's array, through its
   * strides; anything else as its dense array (materialising another view), row-major (strides null).
   */
  private copySource(h: CpuHandle, where: string): { arr: TypedArray; offset: number; strides: readonly number[] | null } {
    const view = h.data ? null : h.view;
    if (view?.kind === 'window') return { arr: view.base, offset: view.offset, strides: view.strides };
    return { arr: this.dense(h, where), offset: 0, strides: null };
  }

  /** A reshape (or stopGradient) of a window as a window, where its strides allow (fusion.ts, reshapedStrides); else null. */
  private reshapedWindow(x: CpuHandle, shape: readonly number[], dtype: DType): CpuHandle | null {
    const view = x.view;
    if (x.data || view?.kind !== 'window') return null;
    const strides = reshapedStrides(x.shape, view.strides, shape);
    return strides && this.newView('window', view.source, strides, shape, dtype, view.offset);
  }

  /**
   * An eager permute that swaps the last two axes of a dense float array, as a view (null for any
   * other permute): the matmul reads it in place, as Aᵀ or Bᵀ stored (its `transA`/`transB`).
   */
  private transposeView(x: CpuHandle, perm: readonly number[], shape: readonly number[], dtype: DType): CpuHandle | null {
    const r = perm.length;
    // A dense array, or an alias of one (read through its source's array, in its own shape).
    const source = CpuBackend.denseSource(x);
    if (!source || r < 2 || (dtype !== 'float32' && dtype !== 'float64') || perm[r - 2] !== r - 1 || perm[r - 1] !== r - 2) return null;
    for (let i = 0; i < r - 2; i++) if (perm[i] !== i) return null;
    return this.newView('transpose', source, permutedStrides(x.shape, perm), shape, dtype);
  }

  /**
   * How a matmul reads view `h` (a batch of rows × cols matrices) in place, from its strides: each
   * matrix stored row-major or transposed (a transpose view, or a broadcast of one), and the batch
   * one stride apart: 0 (a broadcast operand, shared: packed once), one matrix after another, or
   * any other (a window of some rows of each matrix). Null to read it dense (any other view, or a
   * dense handle).
   */
  private static inPlace(h: CpuHandle, rows: number, cols: number): MatmulOperand | null {
    if (h.data || !h.view) return null;
    const s = h.view.strides;
    const r = s.length;
    // A stride along an axis of extent 1 is never used: any value does.
    const rowStride = rows === 1 ? null : s[r - 2]!;
    const colStride = cols === 1 ? null : s[r - 1]!;
    let transposed: boolean;
    if ((colStride ?? 1) === 1 && (rowStride ?? cols) === cols) transposed = false;
    else if ((rowStride ?? 1) === 1 && (colStride ?? rows) === rows) transposed = true;
    else return null;
    // The batch axes (those of extent > 1) must step through one another as one axis does.
    let stride: number | null = null;
    let next = 0;
    for (let i = r - 3; i >= 0; i--) {
      const d = h.shape[i]!;
      if (d === 1) continue;
      if (stride === null) stride = next = s[i]!;
      else if (s[i] !== next) return null;
      next *= d;
    }
    return { data: h.view.base as Float32Array | Float64Array, offset: h.view.offset, stride: stride ?? rows * cols, transposed };
  }

  /** expand as a view: stretched axes get stride 0 (composing with an input that is a view, at its offset). */
  private expandView(x: CpuHandle, shape: readonly number[], dtype: DType): CpuHandle {
    const view = x.data ? null : x.view;
    const inStrides = view ? view.strides : stridesOf(x.shape);
    return this.newView('broadcast', view ? view.source : x, shape.map((d, i) => (x.shape[i] === 1 && d !== 1 ? 0 : inStrides[i]!)), shape, dtype, view ? view.offset : 0);
  }

  /**
   * out = a·b over the batch: a view whose strides the product can follow (CpuBackend.inPlace: a
   * transpose, a batch broadcast, whole rows of a window) is read in place, anything else dense.
   */
  private matmul(a: CpuHandle, b: CpuHandle, out: Float32Array | Float64Array): void {
    const r = a.shape.length;
    const m = a.shape[r - 2]!;
    const k = a.shape[r - 1]!;
    const n = b.shape[r - 1]!;
    const batch = sizeOf(a.shape.slice(0, -2));
    const A = CpuBackend.inPlace(a, m, k) ?? { data: this.dense(a, 'matmul') as Float32Array | Float64Array, offset: 0, stride: m * k, transposed: false };
    const B = CpuBackend.inPlace(b, k, n) ?? { data: this.dense(b, 'matmul') as Float32Array | Float64Array, offset: 0, stride: k * n, transposed: false };
    const options = A.transposed ? (B.transposed ? TRANSPOSED_BOTH : TRANSPOSED_A) : B.transposed ? TRANSPOSED_B : undefined;
    // One call for the whole batch: the kernels split it across threads as one job.
    matmulBatchedInto(batch, A.data, A.offset, A.stride, B.data, B.offset, B.stride, out, 0, m, n, k, options);
  }

  upload(data: TypedArray, shape: Shape, dtype: DType): CpuHandle {
    const copy = this.allocate(dtype, data.length);
    copy.set(data);
    return this.wrap(copy, shape, dtype);
  }

  full(shape: Shape, value: number, dtype: DType): CpuHandle {
    const data = this.allocate(dtype, sizeOf(shape));
    data.fill(value);
    return this.wrap(data, shape, dtype);
  }

  async read(h: CpuHandle): Promise<TypedArray> {
    return this.readSync(h);
  }

  readSync(h: CpuHandle): TypedArray {
    if (h.freed) throw new Error('cpu: read of a freed buffer');
    return this.dense(h, 'read').slice();
  }

  dispose(h: CpuHandle): void {
    if (h.freed) return;
    h.freed = true;
    if (h.view) {
      const source = h.view.source;
      source.readers--;
      this.recycle(source);
    }
    this.recycle(h);
  }

  /**
   * Returns a freed handle's array to the pool once no view reads it. Its bytes count as live
   * until then: a disposed tensor that a view still reads still holds its array.
   */
  private recycle(h: CpuHandle): void {
    if (!h.freed || h.readers > 0 || !h.data) return;
    this.liveBytes -= h.bytes;
    this.liveBuffers--;
    this.pool.give(h.data);
    h.data = null;
  }

  memory(): BackendMemory {
    return { buffers: this.liveBuffers, bytes: this.liveBytes };
  }

  /**
   * Frees the arrays kept for reuse (the pool's free arrays, to the garbage collector; worker
   * threads forget shared ones; an array of the heap gives its region back to the heap, for later
   * arrays) and the products' spare transposition arrays; returns their bytes. The WebAssembly
   * memories cannot shrink and stay (`memoryStats().kernelMemoryBytes`, `heapBytes`).
   */
  trimPool(): number {
    const bytes = this.pool.stats().freeBytes;
    this.pool.clear();
    return bytes + clearTransposeSpares();
  }

  /** Live storage and the pool's counters (allocations: typed arrays made, not reused). */
  memoryStats(): CpuMemoryStats {
    return { liveBuffers: this.liveBuffers, liveBytes: this.liveBytes, ...this.pool.stats(), kernelMemoryBytes: matmulMemoryBytes() + elementwiseMemoryBytes() + randomMemoryBytes() + transposeSpareBytes(), heapBytes: heapMemoryBytes() };
  }

  compile(program: Program): CpuCompiledProgram {
    return new CpuCompiledProgram(this, program);
  }

  execute<P extends Primitive>(prim: P, inputs: readonly CpuHandle[], params: PrimitiveParams[P], info: OutputInfo): CpuHandle {
    if (prim === 'expand') return this.expandView(inputs[0]!, info.shape, info.dtype);
    if (prim === 'reshape' || prim === 'stopGradient') {
      const alias = this.aliasView(inputs[0]!, info.shape, info.dtype) ?? this.reshapedWindow(inputs[0]!, info.shape, info.dtype);
      if (alias) return alias;
    }
    if (prim === 'slice') {
      const window = this.sliceView(inputs[0]!, (params as PrimitiveParams['slice']).starts, info.shape, info.dtype);
      if (window) return window;
    }
    if (prim === 'permute') {
      const view = this.transposeView(inputs[0]!, (params as PrimitiveParams['permute']).perm, info.shape, info.dtype);
      if (view) return view;
    }
    if (prim === 'full') return this.full(info.shape, (params as PrimitiveParams['full']).value, info.dtype);
    assertAllocatable(info.shape, prim);
    const n = sizeOf(info.shape);
    const out = this.allocate(info.dtype, n);
    // pad and scatterAdd write only part of their output, onto zeros.
    if (prim === 'pad' || prim === 'scatterAdd') out.fill(0);
    try {
      this.compute(prim, inputs, params, info, out);
    } catch (e) {
      this.pool.give(out);
      throw e;
    }
    return this.wrap(out, info.shape, info.dtype);
  }

  private compute<P extends Primitive>(prim: P, inputs: readonly CpuHandle[], params: PrimitiveParams[P], info: OutputInfo, out: TypedArray): void {
    const x = inputs[0]!;
    if (isUnary(prim) || isBinary(prim) || isCompare(prim) || prim === 'where') {
      elementwiseInto(prim, inputs.map((h) => this.operand(h, prim)), info.dtype, info.shape, out);
      return;
    }
    if (prim === 'cast') {
      elementwiseInto('cast', [this.operand(x, prim)], info.dtype, info.shape, out);
      return;
    }
    if (prim === 'matmul') {
      this.matmul(inputs[0]!, inputs[1]!, out as Float32Array | Float64Array);
      return;
    }
    // A reduction reads a broadcast view through its strides: its dense copy (as large as the
    // view, however small the source and the result) would only be read once, in the same order.
    if ((isReduce(prim) || isArgReduce(prim)) && !x.data && x.view?.kind === 'broadcast') {
      const { offset, strides } = x.view;
      const base = offset === 0 ? x.view.base : x.view.base.subarray(offset);
      if (isReduce(prim)) reduceInto(prim, base, x.dtype, x.shape, (params as PrimitiveParams['sum']).axes, out, strides);
      else argReduceInto(prim, base, x.dtype, x.shape, (params as PrimitiveParams['argmax']).axis, out, strides);
      return;
    }
    // A reshape of a view that is not an alias (argmax and argmin over all elements flatten
    // their input first) is its dense copy: made straight into the result, the view stays a view.
    // Materialised in place first, the view would hold a second copy of the same values for as
    // long as it lives (the view's size, however small its source).
    if ((prim === 'reshape' || prim === 'stopGradient') && !x.data && x.view && x.view.kind !== 'alias') {
      stridedCopy(x.view.base, x.view.offset, x.view.strides, x.shape, out);
      return;
    }
    // A pad and a concat copy each operand from where it lies: a window straight from its source
    // (an eager conv's taps from the padded image; in its backward pass, each tap's slice of the
    // columns' gradient), anything else from its dense array.
    if (prim === 'pad' || prim === 'concat') {
      const reads = inputs.map((h) => this.copySource(h, prim));
      if (prim === 'pad') {
        const r = reads[0]!;
        padInto(out, info.shape, (params as PrimitiveParams['pad']).before, r.arr, r.offset, x.shape, r.strides ?? undefined);
      } else {
        const { axis } = params as PrimitiveParams['concat'];
        concatInto(out, info.shape, axis, reads.map((r) => r.arr), reads.map((r) => r.offset), inputs.map((t) => t.shape[axis]!), reads.map((r) => r.strides));
      }
      return;
    }
    // Past elementwise ops, matmuls and reductions of broadcasts every kernel reads dense
    // storage: materialise any view (an alias is its source's array as it is).
    const data = inputs.map((h) => this.dense(h, prim));
    const xd = data[0]!;
    if (isReduce(prim)) {
      reduceInto(prim, xd, x.dtype, x.shape, (params as PrimitiveParams['sum']).axes, out);
      return;
    }
    if (isScan(prim)) {
      const { axis, reverse } = params as PrimitiveParams['cumsum'];
      scanInto(prim, xd, x.dtype, x.shape, axis, reverse, out);
      return;
    }
    if (isArgReduce(prim)) {
      argReduceInto(prim, xd, x.dtype, x.shape, (params as PrimitiveParams['argmax']).axis, out);
      return;
    }
    switch (prim) {
      case 'reshape':
      case 'stopGradient':
        out.set(xd);
        return;
      case 'permute': {
        stridedCopy(xd, 0, permutedStrides(x.shape, (params as PrimitiveParams['permute']).perm), info.shape, out);
        return;
      }
      case 'slice': {
        const { starts } = params as PrimitiveParams['slice'];
        const st = stridesOf(x.shape);
        const offset = starts.reduce((acc, s, i) => acc + s * st[i]!, 0);
        stridedCopy(xd, offset, st, info.shape, out);
        return;
      }
      case 'gather':
        gatherInto(out, xd, 0, x.shape, (params as PrimitiveParams['gather']).axis, data[1]!, 0, sizeOf(inputs[1]!.shape));
        return;
      case 'scatterAdd': {
        const { axis, size } = params as PrimitiveParams['scatterAdd'];
        const idx = data[1]!;
        const { outer, inner } = blocks(x.shape, axis);
        for (let j = 0; j < idx.length; j++) {
          const r = idx[j]!;
          if (!(r >= 0 && r < size)) throw indexOutOfRange('scatterAdd', r, axis, size);
        }
        for (let o = 0; o < outer; o++) {
          for (let j = 0; j < idx.length; j++) {
            const to = (o * size + idx[j]!) * inner;
            const from = (o * idx.length + j) * inner;
            for (let e = 0; e < inner; e++) out[to + e] = out[to + e]! + xd[from + e]!;
          }
        }
        return;
      }
      case 'random': {
        const p = params as PrimitiveParams['random'];
        fillRandomCpu(out as Float32Array | Float64Array, p.key, p.distribution);
        return;
      }
      case 'custom': {
        const def = primitiveDefinition((params as PrimitiveParams['custom']).name);
        if (def.kind === 'elementwise') {
          // Inputs share the output's shape (inference checks); the store rounds to the dtype.
          const arrays = data;
          const args = new Array<number>(arrays.length);
          for (let i = 0; i < out.length; i++) {
            for (let k = 0; k < arrays.length; k++) args[k] = arrays[k]![i]!;
            out[i] = def.cpu(...args);
          }
        } else {
          def.cpu(inputs.map((h, k) => ({ data: data[k]!, shape: h.shape, dtype: h.dtype })), { data: out, shape: info.shape, dtype: info.dtype });
        }
        return;
      }
    }
    throw new Error(`cpu: no implementation for primitive '${prim}'`);
  }
}
