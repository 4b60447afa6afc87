// Generates the WebAssembly module of the CPU matrix product: packing routines, a register-tiled
// SIMD micro-kernel and the blocked loop nest around it (the structure of GotoBLAS/BLIS), for
// float32 (f32x4 lanes) or float64 (f64x2 lanes), with or without relaxed SIMD's fused
// multiply-add.
//
// Layout, all in the module's one imported memory (byte addresses, row-major inputs):
// - B is packed once per product into column panels NR wide: panel q (columns q·NR…) holds all k
//   rows, row p at q·NR·k + p·NR elements, zero-padded past column n. A micro-kernel then reads
//   its B operand sequentially whatever n is.
// - A is packed one MC×KC block at a time into row panels MR tall, stored column by column (MR
//   values per step of k), zero-padded past the last row, so one pointer plus constant offsets
//   addresses a whole column of the tile.
// - C has a row stride ldc ≥ n rounded up to NR and rows rounded up to MR: every tile the kernel
//   writes is whole, and the host copies out the valid part.
//
// Arithmetic: each element of C is one lane of one accumulator, which starts at zero and adds
// a·b for p = 0, 1, …, k−1 in order (KC blocks reload the accumulator from C and carry on). So an
// element's value depends only on its row of A and column of B, never on the tiling, the
// blocking or which thread computed it: the same as a scalar loop `c = c + a·b` in the element
// type (mul then add, each rounded; with relaxed madd, one fused rounding where the engine fuses).

import { FunctionBody, I32, JOIN_LOW, ModuleBuilder, V128, interleaveRows, lanes32, storeTransposed, transposedColumn } from './assembler.js';

export type WasmFloat = 'f32' | 'f64';

/** The most rows (narrow_T_r) or columns (narrowCols_T_n) of a product the narrow kernels take. */
export const NARROW_ROWS = 4;
/** The deepest product (k) the shallow kernels (shallow_T_k) take. */
export const SHALLOW_DEPTH = 4;

export interface MatmulKernelShape {
  /** Rows of the register tile. */
  mr: number;
  /** v128 vectors per tile row: the tile is mr × nv·lanes. */
  nv: number;
  /** Steps of k unrolled in the micro-kernel. */
  unroll: number;
  /** Rows of A packed per block (a multiple of mr). */
  mc: number;
  /** Depth of a packed block of A. */
  kc: number;
  /**
   * Operand order within a step of k: 'bRegs' loads the nv B vectors once and each A value once
   * (mr·nv + nv + 2 registers), 'reloadB' reloads B per row (mr·nv + 2), 'reloadA' re-splats A
   * per vector (mr·nv + 2).
   */
  order?: 'bRegs' | 'reloadB' | 'reloadA';
}

export interface MatmulModuleOptions {
  /** Use relaxed SIMD's fused multiply-add (f32x4/f64x2.relaxed_madd) instead of mul then add. */
  fma: boolean;
  /** Register tiles and blocking per element type. */
  shapes: Record<WasmFloat, MatmulKernelShape>;
  /** Whether the imported memory is shared (for threads), and its maximum size in pages. */
  sharedMemory: boolean;
  maximumPages: number;
}

export interface MatmulModuleLayout {
  /** Lanes per v128 and bytes per element. */
  lanes: number;
  bytes: number;
  /** Columns of a tile (the B panel width) and rows. */
  nr: number;
  mr: number;
  mc: number;
  kc: number;
}

export function matmulLayout(dtype: WasmFloat, shape: MatmulKernelShape): MatmulModuleLayout {
  const lanes = dtype === 'f32' ? 4 : 2;
  return { lanes, bytes: dtype === 'f32' ? 4 : 8, nr: shape.nv * lanes, mr: shape.mr, mc: shape.mc, kc: shape.kc };
}

/**
 * The module: for each element type T in f32, f64, these exports (addresses in bytes, sizes in
 * elements):
 * - packB_T(b, n, n, k, bp): all of B (k×n, row stride n) into panels at bp.
 * - packBT_T(b, k, n, k, bp): the same panels from B stored transposed (Bᵀ, n×k, row stride k:
 *   element (p, j) at j·k + p).
 * - packBG_T(src, tables, j0, cols, k, bp, step): the same panels (columns j0 … j0 + cols − 1)
 *   from a B gathered through tables of row and column byte offsets into src, each vector's
 *   columns in a panel `step` (1 or 2) elements apart (a convolution's columns read from its padded image;
 *   below, where it is made).
 * - packBTG_f32(src, tables, j0, cols, k, bp, step), with 8-column panels: the same from a
 *   gathered B whose rows come in fours `step` apart instead (the transposed columns a weight
 *   gradient reads).
 * - gemm_T(a, lda, bp, c, ldc, rows, npad, k, ap, transA): C[0:rows, 0:npad] = A[0:rows, 0:k]·B
 *   for the packed B, with ap as scratch for one packed block of A. A is row-major (element
 *   (i, p) at i·lda + p) when transA is 0, stored transposed (at p·lda + i) when it is 1. rows may
 *   be any count; C must have room for rows rounded up to mr.
 *
 * Packing from a transposed operand writes the same values to the same panel slots as packing
 * from its row-major copy, so the kernel's arithmetic, and every bit of C, is the same.
 * - compact_T(c, ldc, n, rows): moves rows of stride ldc to stride n, in place.
 * - narrow_T_r(l, lsr, lsp, rm, ldr, d, dsr, dsc, cols, k) for r = 1 … NARROW_ROWS: D = L·R for
 *   an L of r rows and a row-major R, read in place (strides in bytes; below, where it is made).
 * - shallow_T_k(a, lda, b, ldb, c, ldc, rows, n) for k = 1 … SHALLOW_DEPTH: C = A·B for a
 *   row-major A of depth k and a row-major B, read in place, C rows ldc bytes apart (below).
 * - narrowCols_T_n(a, lda, b, bsp, bsj, c, rows, k) for n = 1 … NARROW_ROWS: C = A·B for a
 *   row-major A and a B of n columns, read in place, C dense; it may read up to a vector past
 *   A's last row.
 * - copyRuns(dst, src, run, n1, n2, n3, d1, d2, d3, s1, s2, s3): for every (i1, i2, i3) below
 *   (n1, n2, n3), the `run` bytes (a multiple of 4) at src + i1·s1 + i2·s2 + i3·s3 copied to
 *   dst + i1·d1 + i2·d2 + i3·d3 (byte addresses and strides): the strided copies of the CPU's
 *   arrays in the heap whose rows are contiguous on both sides (heapCopy, wasmMatmul.ts), such as
 *   a convolution's columns. Bits are moved as they are (no float loads: NaN payloads stay).
 */
export function matmulModule(opts: MatmulModuleOptions): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: 1, maximum: opts.maximumPages, shared: opts.sharedMemory });
  for (const dtype of ['f32', 'f64'] as const) addMatmulFunctions(m, dtype, opts.fma, opts.shapes[dtype]);
  addCopyRuns(m);
  return m.encode();
}

/**
 * rowPanels' function for float32 panels `width` rows wide, 5 ≤ width ≤ 8 (row i's element p at
 * slot p·width + i of its panel), made by shuffles instead of one element at a time: packA for
 * tiles of 5–7 rows (benchmarks/NOTES.md, "A product's A packed by shuffles") and packBT_f32, B's
 * 8-column panels from Bᵀ. For each whole panel, 4 elements of each of its rows are loaded
 * (columns p … p + 3); each whole group of 4 rows is transposed by a 4 × 4 block (eight shuffles)
 * into columns, and the 4·width values of panel rows p … p + 3, which lie contiguous in the
 * panel, are written as `width` whole vectors: vector v's lane l is slot s = 4v + l, column
 * ⌊s/width⌋ of row s mod width, taken from a transposed column (rows of whole groups) or from a
 * row's own vector (the 1–3 rows past them): as it stands where it is one whole column (width
 * 8), else by one shuffle where its lanes come from at most two vectors, else by two shuffles and
 * a join. The last kc mod 4 columns go element by element, and a last partial panel through
 * `scalar` (rowPanels' function for the same arguments). Bits are moved as they are: every slot
 * holds what rowPanels puts there.
 */
function packRowsByShuffles(m: ModuleBuilder, name: string | undefined, width: number, scalar: number): number {
  const E = 4;
  if (width < 5 || width > 8) throw new Error(`internal: packRowsByShuffles takes 5 to 8 rows, not ${width}`);
  const groups = Math.floor(width / 4);
  return m.func(name, [I32, I32, I32, I32, I32], [], (f, [a, lda, rows, kc, ap]) => {
    const i0 = f.local(I32), p = f.local(I32), src = f.local(I32), dst = f.local(I32), k4 = f.local(I32), rowBytes = f.local(I32), panel = f.local(I32);
    const vectors = (count: number) => Array.from({ length: count }, () => f.local(V128));
    const r = vectors(width);
    const t = vectors(4);
    // col[g][c]: column p + c of rows 4g … 4g + 3.
    const col = Array.from({ length: groups }, () => vectors(4));
    const halves = vectors(2);
    // Where each output lane comes from: a V128 local and its lane.
    const source = (s: number) => {
      const c = Math.floor(s / width), i = s % width;
      return i < 4 * groups ? { local: col[i >> 2]![c]!, lane: i & 3 } : { local: r[i]!, lane: c };
    };
    // One shuffle of at most two sources into the lanes `want` (two or four of them; the rest 0).
    const shuffle = (want: { local: number; lane: number }[]) => {
      const x = want[0]!.local;
      const y = want.find((q) => q.local !== x)?.local ?? x;
      if (want.some((q) => q.local !== x && q.local !== y)) throw new Error('internal: a shuffle of more than two vectors');
      const lanes = want.map((q) => q.lane + (q.local === x ? 0 : 4));
      while (lanes.length < 4) lanes.push(0);
      if (lanes.every((l, i) => l === i)) f.get(x);
      else f.get(x).get(y).i8x16Shuffle(lanes32(lanes));
    };
    f.get(lda).i32Const(E).i32Mul().set(rowBytes);
    f.get(kc).i32Const(-4).i32And().set(k4);
    f.i32Const(0).set(i0);
    f.block().loop();
    f.get(i0).i32Const(width).i32Add().get(rows).i32GtS().brIf(1);
    {
      f.get(ap).get(i0).get(kc).i32Mul().i32Const(E).i32Mul().i32Add().set(panel);
      f.get(a).get(i0).get(rowBytes).i32Mul().i32Add().set(src);
      f.get(panel).set(dst);
      f.i32Const(0).set(p);
      f.block().loop();
      f.get(p).get(k4).i32GeS().brIf(1);
      for (let i = 0; i < width; i++) {
        f.get(src);
        if (i > 0) f.get(rowBytes).i32Const(i).i32Mul().i32Add();
        f.v128Load().set(r[i]!);
      }
      for (let g = 0; g < groups; g++) {
        interleaveRows(f, r.slice(4 * g, 4 * g + 4), t);
        for (let c = 0; c < 4; c++) {
          transposedColumn(f, t, c);
          f.set(col[g]![c]!);
        }
      }
      for (let v = 0; v < width; v++) {
        const want = [0, 1, 2, 3].map((l) => source(4 * v + l));
        f.get(dst);
        if (new Set(want.map((q) => q.local)).size <= 2) shuffle(want);
        else {
          shuffle(want.slice(0, 2));
          f.set(halves[0]!);
          shuffle(want.slice(2));
          f.set(halves[1]!);
          f.get(halves[0]!).get(halves[1]!).i8x16Shuffle(JOIN_LOW);
        }
        f.v128Store(16 * v);
      }
      f.get(src).i32Const(16).i32Add().set(src);
      f.get(dst).i32Const(16 * width).i32Add().set(dst);
      f.get(p).i32Const(4).i32Add().set(p);
      f.br(0).end().end();
      // The panel's last kc mod 4 columns, element by element.
      f.get(k4).get(kc).i32LtS().if();
      for (let i = 0; i < width; i++) {
        f.get(a).get(i0).i32Const(i).i32Add().get(rowBytes).i32Mul().i32Add().get(k4).i32Const(E).i32Mul().i32Add().set(src);
        f.get(panel).get(k4).i32Const(width * E).i32Mul().i32Add().i32Const(i * E).i32Add().set(dst);
        f.get(k4).set(p);
        f.block().loop();
        f.get(p).get(kc).i32GeS().brIf(1);
        f.get(dst).get(src).i32Load().i32Store();
        f.get(src).i32Const(E).i32Add().set(src);
        f.get(dst).i32Const(width * E).i32Add().set(dst);
        f.get(p).i32Const(1).i32Add().set(p);
        f.br(0).end().end();
      }
      f.end();
    }
    f.get(i0).i32Const(width).i32Add().set(i0);
    f.br(0).end().end();
    // A last partial panel: rows i0 … rows − 1, padded with zeros, as rowPanels packs it.
    f.get(i0).get(rows).i32LtS().if();
    f.get(a).get(i0).get(rowBytes).i32Mul().i32Add();
    f.get(lda);
    f.get(rows).get(i0).i32Sub();
    f.get(kc);
    f.get(ap).get(i0).get(kc).i32Mul().i32Const(E).i32Mul().i32Add();
    f.call(scalar);
    f.end();
  });
}

/**
 * packBTG_f32(src, tables, j0, cols, k, bp, step) for 8-column panels: the panels packBG fills
 * (B's element (p, j) at src + row[p] + col[j], the tables as packBG's), for a B whose rows come
 * in fours `step` (1 or 2) elements apart instead (row[p + t] = row[p] + 4·step·t for p a multiple
 * of 4; the columns anywhere): the transpose of a convolution's columns, as a weight gradient
 * reads them. Each panel's 8 columns are 8 pointers; 4 rows at a time, 4 elements from each (with
 * step 2, the even lanes of two vectors, reading one element past the fourth), transposed by
 * 4 × 4 blocks as packBT_f32 does; the last k mod 4 rows element by element. Bits are moved as
 * they are.
 */
function packBTransposedGathered(m: ModuleBuilder): void {
  const E = 4;
  const width = 8;
  m.func('packBTG_f32', [I32, I32, I32, I32, I32, I32, I32], [], (f, [src0, tables, j0, cols, depth, dst0, step]) => {
    const q = f.local(I32), p = f.local(I32), k4 = f.local(I32), off = f.local(I32), panel = f.local(I32), dst = f.local(I32), at = f.local(I32);
    const ptr = Array.from({ length: width }, () => f.local(I32));
    const r = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
    const t = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
    f.get(depth).i32Const(-4).i32And().set(k4);
    f.i32Const(0).set(q);
    f.block().loop();
    f.get(q).get(cols).i32GeS().brIf(1);
    {
      // ptr[i] = src + col[j0 + q + i]; the panel at dst0 + q·k·E (q counts columns here).
      for (let i = 0; i < width; i++) f.get(src0).get(tables).get(depth).get(j0).i32Add().get(q).i32Add().i32Const(i).i32Add().i32Const(2).i32Shl().i32Add().i32Load().i32Add().set(ptr[i]!);
      f.get(dst0).get(q).get(depth).i32Mul().i32Const(E).i32Mul().i32Add().set(panel);
      f.i32Const(0).set(p);
      f.block().loop();
      f.get(p).get(k4).i32GeS().brIf(1);
      f.get(tables).get(p).i32Const(2).i32Shl().i32Add().i32Load().set(off);
      f.get(panel).get(p).i32Const(width * E).i32Mul().i32Add().set(dst);
      for (const half of [0, 1]) {
        // Columns 4·half … + 3, rows p … p + 3.
        for (let j = 0; j < 4; j++) {
          f.get(ptr[4 * half + j]!).get(off).i32Add().set(at);
          f.get(step).i32Const(1).i32Eq().if();
          f.get(at).v128Load().set(r[j]!);
          f.else();
          f.get(at).v128Load().get(at).v128Load(16).i8x16Shuffle(EVEN_LANES.f32).set(r[j]!);
          f.end();
        }
        storeTransposed(f, r, t, dst, 16 * half, width * E);
      }
      f.get(p).i32Const(4).i32Add().set(p);
      f.br(0).end().end();
      // The last k mod 4 rows, element by element.
      f.block().loop();
      f.get(p).get(depth).i32GeS().brIf(1);
      f.get(tables).get(p).i32Const(2).i32Shl().i32Add().i32Load().set(off);
      f.get(panel).get(p).i32Const(width * E).i32Mul().i32Add().set(dst);
      for (let i = 0; i < width; i++) f.get(dst).get(ptr[i]!).get(off).i32Add().i32Load().i32Store(i * E);
      f.get(p).i32Const(1).i32Add().set(p);
      f.br(0).end().end();
    }
    f.get(q).i32Const(width).i32Add().set(q);
    f.br(0).end().end();
  });
}

/** copyRuns (above): whole 16-byte vectors of each run, then its last 4-byte words. */
function addCopyRuns(m: ModuleBuilder): void {
  m.func('copyRuns', [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32], [], (f, [dst, src, run, n1, n2, n3, d1, d2, d3, s1, s2, s3]) => {
    const i1 = f.local(I32), i2 = f.local(I32), i3 = f.local(I32), o = f.local(I32), vec = f.local(I32), s = f.local(I32), d = f.local(I32);
    // `for (i = 0; i < n; i++) body()`.
    const times = (i: number, n: number, body: () => void) => {
      f.i32Const(0).set(i);
      f.block().loop();
      f.get(i).get(n).i32GeS().brIf(1);
      body();
      f.get(i).i32Const(1).i32Add().set(i);
      f.br(0).end().end();
    };
    // The bytes of the run's whole vectors.
    f.get(run).i32Const(-16).i32And().set(vec);
    times(i1, n1, () => times(i2, n2, () => {
      f.get(src).get(i1).get(s1).i32Mul().i32Add().get(i2).get(s2).i32Mul().i32Add().set(s);
      f.get(dst).get(i1).get(d1).i32Mul().i32Add().get(i2).get(d2).i32Mul().i32Add().set(d);
      times(i3, n3, () => {
        f.i32Const(0).set(o);
        f.block().loop();
        f.get(o).get(vec).i32GeS().brIf(1);
        f.get(d).get(o).i32Add().get(s).get(o).i32Add().v128Load().v128Store();
        f.get(o).i32Const(16).i32Add().set(o);
        f.br(0).end().end();
        f.block().loop();
        f.get(o).get(run).i32GeS().brIf(1);
        f.get(d).get(o).i32Add().get(s).get(o).i32Add().i32Load().i32Store();
        f.get(o).i32Const(4).i32Add().set(o);
        f.br(0).end().end();
        f.get(s).get(s3).i32Add().set(s);
        f.get(d).get(d3).i32Add().set(d);
      });
    }));
  });
}

/** i8x16.shuffle's bytes taking the even lanes of two vectors (0, 2 of the first, then of the second). */
const EVEN_LANES: Record<WasmFloat, readonly number[]> = {
  f32: lanes32([0, 2, 4, 6]),
  f64: [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23],
};

/** Stored rows of B per block in packB (benchmarks/NOTES.md, "B packed in blocks of rows"). */
const PACK_ROWS = 32;

function addMatmulFunctions(m: ModuleBuilder, dtype: WasmFloat, fma: boolean, shape: MatmulKernelShape): void {
  const L = matmulLayout(dtype, shape);
  const { mr, nr, bytes: E, lanes } = L;
  const nv = shape.nv;
  if (shape.mc % mr !== 0) throw new Error(`matmul module: mc (${shape.mc}) must be a multiple of mr (${mr})`);
  const load = (f: FunctionBody, off = 0) => (dtype === 'f32' ? f.f32Load(off) : f.f64Load(off));
  const store = (f: FunctionBody, off = 0) => (dtype === 'f32' ? f.f32Store(off) : f.f64Store(off));
  const zero = (f: FunctionBody) => (dtype === 'f32' ? f.f32Const(0) : f.f64Const(0));
  const splat = (f: FunctionBody, off: number) => (dtype === 'f32' ? f.v128Load32Splat(off) : f.v128Load64Splat(off));
  const vmul = (f: FunctionBody) => (dtype === 'f32' ? f.f32x4Mul() : f.f64x2Mul());
  const vadd = (f: FunctionBody) => (dtype === 'f32' ? f.f32x4Add() : f.f64x2Add());
  const vmadd = (f: FunctionBody) => (dtype === 'f32' ? f.f32x4RelaxedMadd() : f.f64x2RelaxedMadd());
  const extract = (lane: number) => (f: FunctionBody) => (dtype === 'f32' ? f.f32x4ExtractLane(lane) : f.f64x2ExtractLane(lane));
  /**
   * acc ← acc + a·b on the vectors `a()` and `b()` leave, into V128 local `acc`: mul then add, or
   * relaxed SIMD's multiply-add. The one update of every kernel here, so that each element of C
   * gets the same bits whichever kernel computes it.
   */
  const accumulate = (f: FunctionBody, acc: number, a: () => void, b: () => void) => {
    if (fma) { a(); b(); f.get(acc).emit(vmadd).set(acc); }
    else { f.get(acc); a(); b(); f.emit(vmul).emit(vadd).set(acc); }
  };

  // `for (i = from; i < to; i += step) body()`, as block { loop { br_if exit; body; i += step; br loop } }.
  const forRange = (f: FunctionBody, i: number, from: () => void, to: () => void, step: number, body: () => void) => {
    from();
    f.set(i);
    f.block().loop();
    f.get(i); to(); f.i32GeS().brIf(1);
    body();
    f.get(i).i32Const(step).i32Add().set(i);
    f.br(0).end().end();
  };
  // out = ⌊total / width⌋ (the assembler has no division), counted up.
  const wholeCount = (f: FunctionBody, out: number, total: number, width: number) => {
    f.i32Const(0).set(out);
    f.block().loop();
    f.get(out).i32Const(1).i32Add().i32Const(width).i32Mul().get(total).i32GtS().brIf(1);
    f.get(out).i32Const(1).i32Add().set(out);
    f.br(0).end().end();
  };
  // Blocks of PACK_ROWS stored rows [p0, pEnd) of `depth`, as packB and packBG take them.
  const forRowBlocks = (f: FunctionBody, p0: number, pEnd: number, depth: number, body: () => void) => {
    forRange(f, p0, () => f.i32Const(0), () => f.get(depth), PACK_ROWS, () => {
      f.get(p0).i32Const(PACK_ROWS).i32Add().set(pEnd);
      f.get(pEnd).get(depth).i32GtS().if();
      f.get(depth).set(pEnd);
      f.end();
      body();
    });
  };

  // Rows of a row-major matrix into panels `width` rows wide: row i's element p goes to panel
  // ⌊i/width⌋, slot p·width + i mod width, padding rows past `rows` with zeros. packA(a, lda,
  // rows, kc, ap) packs a block of A into mr-row panels; packBT(b, k, n, k, bp) packs B from Bᵀ
  // (its rows are B's columns) into the nr-column panels packB makes (float32 panels of 5–8 rows,
  // both of these: by shuffles, packRowsByShuffles, with this function for a last partial
  // panel). Row by row, so that reads are sequential; the writes stride by width within a panel.
  const rowPanels = (name: string | undefined, width: number) => m.func(name, [I32, I32, I32, I32, I32], [], (f, [a, lda, rows, kc, ap]) => {
    const i0 = f.local(I32), i = f.local(I32), p = f.local(I32), src = f.local(I32), dst = f.local(I32), panel = f.local(I32);
    forRange(f, i0, () => f.i32Const(0), () => f.get(rows), width, () => {
      f.get(ap).get(i0).get(kc).i32Mul().i32Const(E).i32Mul().i32Add().set(panel);
      forRange(f, i, () => f.i32Const(0), () => f.i32Const(width), 1, () => {
        f.get(panel).get(i).i32Const(E).i32Mul().i32Add().set(dst);
        f.get(i0).get(i).i32Add().get(rows).i32LtS().if();
        {
          f.get(a).get(i0).get(i).i32Add().get(lda).i32Mul().i32Const(E).i32Mul().i32Add().set(src);
          forRange(f, p, () => f.i32Const(0), () => f.get(kc), 1, () => {
            f.get(dst).get(src).emit(load).emit(store);
            f.get(src).i32Const(E).i32Add().set(src);
            f.get(dst).i32Const(width * E).i32Add().set(dst);
          });
        }
        f.else();
        forRange(f, p, () => f.i32Const(0), () => f.get(kc), 1, () => {
          f.get(dst).emit(zero).emit(store);
          f.get(dst).i32Const(width * E).i32Add().set(dst);
        });
        f.end();
      });
    });
  });
  // float32 panels of 5 to 8 rows by shuffles (packRowsByShuffles, with rowPanels' function for
  // a last partial panel); others element by element.
  const packRows = (name: string | undefined, width: number) =>
    dtype === 'f32' && width >= 5 && width <= 8 ? packRowsByShuffles(m, name, width, rowPanels(undefined, width)) : rowPanels(name, width);
  packRows(`packBT_${dtype}`, nr);
  if (dtype === 'f32' && nr === 8) packBTransposedGathered(m);
  const packA = packRows(undefined, mr);

  // Columns of a row-major matrix into panels `width` columns wide: stored row p's columns
  // q·width … go to panel q, slot p·width … (panel q at dst + q·width·depth elements), padding
  // columns past `cols` with zeros. colPanels(src, ld, cols, depth, dst) with ld the row stride:
  // packB(b, n, n, k, bp) packs all of B into the nr-column panels the kernel reads; packAT(a,
  // lda, rows, kc, ap) packs a block of A stored transposed (element (i, p) at p·lda + i) into
  // the mr-row panels packA makes. The whole panels first, width elements (whole vectors, then
  // single elements) at a time, in the order measured faster for each (`panelFirst`: B's panels
  // of a 128×1024 B 23 against 43 µs; A's block, a few short panels, row by row); then the last,
  // partial panel, padded with zeros.
  const colPanels = (name: string | undefined, width: number, panelFirst: boolean) => m.func(name, [I32, I32, I32, I32, I32], [], (f, [src0, ld, cols, depth, dst0]) => {
    const rowBytes = width * E;
    const q = f.local(I32), i = f.local(I32), p = f.local(I32), src = f.local(I32), dst = f.local(I32);
    const full = f.local(I32), rest = f.local(I32), panelBytes = f.local(I32);
    wholeCount(f, full, cols, width);
    f.get(depth).i32Const(rowBytes).i32Mul().set(panelBytes);
    const copyRow = () => {
      let o = 0;
      for (; o + 16 <= rowBytes; o += 16) f.get(dst).get(src).v128Load(o).v128Store(o);
      for (; o < rowBytes; o += E) {
        f.get(dst).get(src);
        load(f, o);
        store(f, o);
      }
    };
    if (panelFirst) {
      // Blocks of PACK_ROWS stored rows; in each, panel by panel: each panel's part written
      // sequentially, the block's rows read `width` at a time. Going down all rows per panel read
      // every cache line twice from far when rows are 4 KiB apart (benchmarks/NOTES.md, "B packed
      // in blocks of rows"); a block's rows stay in the second-level cache for all its panels.
      const p0 = f.local(I32), pEnd = f.local(I32);
      forRowBlocks(f, p0, pEnd, depth, () => {
        forRange(f, q, () => f.i32Const(0), () => f.get(full), 1, () => {
          f.get(src0).get(p0).get(ld).i32Mul().get(q).i32Const(width).i32Mul().i32Add().i32Const(E).i32Mul().i32Add().set(src);
          f.get(dst0).get(q).get(panelBytes).i32Mul().i32Add().get(p0).i32Const(rowBytes).i32Mul().i32Add().set(dst);
          forRange(f, p, () => f.get(p0), () => f.get(pEnd), 1, () => {
            copyRow();
            f.get(src).get(ld).i32Const(E).i32Mul().i32Add().set(src);
            f.get(dst).i32Const(rowBytes).i32Add().set(dst);
          });
        });
      });
    } else {
      // Stored row by stored row: each read once, left to right, its pieces to every panel.
      forRange(f, p, () => f.i32Const(0), () => f.get(depth), 1, () => {
        f.get(src0).get(p).get(ld).i32Mul().i32Const(E).i32Mul().i32Add().set(src);
        f.get(dst0).get(p).i32Const(rowBytes).i32Mul().i32Add().set(dst);
        forRange(f, q, () => f.i32Const(0), () => f.get(full), 1, () => {
          copyRow();
          f.get(src).i32Const(rowBytes).i32Add().set(src);
          f.get(dst).get(panelBytes).i32Add().set(dst);
        });
      });
    }
    // The partial panel: columns full·width … cols−1, then zeros to width.
    f.get(cols).get(full).i32Const(width).i32Mul().i32Sub().set(rest);
    f.get(rest).if();
    f.get(src0).get(full).i32Const(rowBytes).i32Mul().i32Add().set(src);
    f.get(dst0).get(full).get(panelBytes).i32Mul().i32Add().set(dst);
    forRange(f, p, () => f.i32Const(0), () => f.get(depth), 1, () => {
      forRange(f, i, () => f.i32Const(0), () => f.get(rest), 1, () => {
        f.get(dst).get(i).i32Const(E).i32Mul().i32Add();
        f.get(src).get(i).i32Const(E).i32Mul().i32Add();
        load(f);
        store(f);
      });
      forRange(f, i, () => f.get(rest), () => f.i32Const(width), 1, () => {
        f.get(dst).get(i).i32Const(E).i32Mul().i32Add();
        zero(f);
        store(f);
      });
      f.get(src).get(ld).i32Const(E).i32Mul().i32Add().set(src);
      f.get(dst).i32Const(rowBytes).i32Add().set(dst);
    });
    f.end();
  });
  colPanels(`packB_${dtype}`, nr, true);
  const packAT = colPanels(undefined, mr, false);

  // packBG(src, tables, j0, cols, k, dst, step): columns j0 … j0 + cols − 1 (whole panels) of a B
  // whose element (p, j) lies at src + row[p] + col[j], with i32 byte offsets row[] (k of them) at
  // `tables` and col[] (one per column of B) after them, where each vector's `lanes` columns of a
  // panel are evenly spaced in every row, `step` (1 or 2) elements apart (col[j + i] = col[j] +
  // i·step·E for j a multiple of lanes), as a convolution's columns are in its padded image: the
  // row a (channel, tap), a vector neighbouring outputs of one output row, the convolution's
  // stride apart (a panel's vectors may lie in different output rows: an output width that is a
  // multiple of 4 float32 or 2 float64 outputs, not of the panel's 8 or 4). Writes them at dst, in
  // the slots packB fills from the same B stored row-major (panel q at (q − j0/nr)·nr·k elements):
  // the same C, bit for bit. In blocks of PACK_ROWS rows, panel by panel, as packB. j0 and cols
  // are multiples of nr. With step 2, a vector's lanes are picked out of the 2·lanes elements from
  // its first (two vectors, even lanes), which reads one element past its last.
  m.func(`packBG_${dtype}`, [I32, I32, I32, I32, I32, I32, I32], [], (f, [src0, tables, j0, cols, depth, dst0, step]) => {
    const rowBytes = nr * E;
    const q = f.local(I32), p = f.local(I32), p0 = f.local(I32), pEnd = f.local(I32), panels = f.local(I32);
    const dst = f.local(I32), panelBytes = f.local(I32), row = f.local(I32), offset = f.local(I32), from = f.local(I32);
    const at = Array.from({ length: nv }, () => f.local(I32));
    f.get(depth).i32Const(rowBytes).i32Mul().set(panelBytes);
    wholeCount(f, panels, cols, nr);
    forRowBlocks(f, p0, pEnd, depth, () => {
      forRange(f, q, () => f.i32Const(0), () => f.get(panels), 1, () => {
        // at[v] = src + col[j0 + q·nr + v·lanes]; dst = dst0 + q·panelBytes + p0·rowBytes.
        for (let v = 0; v < nv; v++) {
          f.get(src0).get(tables).get(depth).get(j0).i32Add().get(q).i32Const(nr).i32Mul().i32Add().i32Const(v * lanes).i32Add().i32Const(2).i32Shl().i32Add().i32Load().i32Add().set(at[v]!);
        }
        f.get(dst0).get(q).get(panelBytes).i32Mul().i32Add().get(p0).i32Const(rowBytes).i32Mul().i32Add().set(dst);
        f.get(tables).get(p0).i32Const(2).i32Shl().i32Add().set(row);
        forRange(f, p, () => f.get(p0), () => f.get(pEnd), 1, () => {
          f.get(row).i32Load().set(offset);
          f.get(step).i32Const(1).i32Eq().if();
          for (let v = 0; v < nv; v++) f.get(dst).get(at[v]!).get(offset).i32Add().v128Load().v128Store(16 * v);
          f.else();
          // Every other element: the even lanes of two vectors from the vector's first.
          for (let v = 0; v < nv; v++) {
            f.get(at[v]!).get(offset).i32Add().set(from);
            f.get(dst).get(from).v128Load().get(from).v128Load(16).i8x16Shuffle(EVEN_LANES[dtype]).v128Store(16 * v);
          }
          f.end();
          f.get(row).i32Const(4).i32Add().set(row);
          f.get(dst).i32Const(rowBytes).i32Add().set(dst);
        });
      });
    });
  });

  // kernel(ap, bp, kc, c, ldcBytes, accumulate): the mr × nr tile at c (=, or += when accumulate)
  // the product of an A panel and a B panel over kc steps.
  const kernel = m.func(undefined, [I32, I32, I32, I32, I32, I32], [], (f, [ap, bp, kc, c, ldcB, acc]) => {
    const accs: number[] = [];
    for (let t = 0; t < mr * nv; t++) accs.push(f.local(V128));
    const bvec: number[] = [];
    for (let v = 0; v < nv; v++) bvec.push(f.local(V128));
    const av = f.local(V128);
    const p = f.local(I32), row = f.local(I32);
    // Accumulators: from C (a later KC block continues the sum) or zero.
    f.get(acc).if();
    f.get(c).set(row);
    for (let i = 0; i < mr; i++) {
      for (let v = 0; v < nv; v++) f.get(row).v128Load(v * 16).set(accs[i * nv + v]!);
      if (i < mr - 1) f.get(row).get(ldcB).i32Add().set(row);
    }
    f.else();
    for (let t = 0; t < mr * nv; t++) f.v128Const().set(accs[t]!);
    f.end();
    const order = shape.order ?? 'bRegs';
    const bOff = (u: number, v: number) => (u * nr + v * lanes) * E;
    const aOff = (u: number, i: number) => (u * mr + i) * E;
    const update = (t: number, a: () => void, b: () => void) => accumulate(f, t, a, b);
    const step = (u: number) => {
      if (order === 'bRegs') {
        for (let v = 0; v < nv; v++) f.get(bp).v128Load(bOff(u, v)).set(bvec[v]!);
        for (let i = 0; i < mr; i++) {
          f.get(ap);
          splat(f, aOff(u, i));
          f.set(av);
          for (let v = 0; v < nv; v++) update(accs[i * nv + v]!, () => f.get(av), () => f.get(bvec[v]!));
        }
      } else if (order === 'reloadB') {
        for (let i = 0; i < mr; i++) {
          f.get(ap);
          splat(f, aOff(u, i));
          f.set(av);
          for (let v = 0; v < nv; v++) update(accs[i * nv + v]!, () => f.get(av), () => f.get(bp).v128Load(bOff(u, v)));
        }
      } else {
        for (let v = 0; v < nv; v++) {
          f.get(bp).v128Load(bOff(u, v)).set(bvec[0]!);
          for (let i = 0; i < mr; i++) update(accs[i * nv + v]!, () => f.get(ap).emit((g) => splat(g, aOff(u, i))), () => f.get(bvec[0]!));
        }
      }
    };
    const U = shape.unroll;
    f.get(kc).set(p);
    // Unrolled steps while at least U remain, then single steps.
    f.block().loop();
    f.get(p).i32Const(U).i32LtS().brIf(1);
    for (let u = 0; u < U; u++) step(u);
    f.get(ap).i32Const(U * mr * E).i32Add().set(ap);
    f.get(bp).i32Const(U * nr * E).i32Add().set(bp);
    f.get(p).i32Const(U).i32Sub().set(p);
    f.br(0).end().end();
    if (U > 1) {
      f.block().loop();
      f.get(p).i32Eqz().brIf(1);
      step(0);
      f.get(ap).i32Const(mr * E).i32Add().set(ap);
      f.get(bp).i32Const(nr * E).i32Add().set(bp);
      f.get(p).i32Const(1).i32Sub().set(p);
      f.br(0).end().end();
    }
    f.get(c).set(row);
    for (let i = 0; i < mr; i++) {
      for (let v = 0; v < nv; v++) f.get(row).get(accs[i * nv + v]!).v128Store(v * 16);
      if (i < mr - 1) f.get(row).get(ldcB).i32Add().set(row);
    }
  });

  // gemm(a, lda, bp, c, ldc, rows, npad, k, ap, transA)
  m.func(`gemm_${dtype}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32], [], (f, [a, lda, bp, c, ldc, rows, npad, k, ap, transA]) => {
    const ic = f.local(I32), pc = f.local(I32), jr = f.local(I32), ir = f.local(I32);
    const mcur = f.local(I32), kcur = f.local(I32), ldcB = f.local(I32), crow = f.local(I32);
    f.get(ldc).i32Const(E).i32Mul().set(ldcB);
    forRange(f, ic, () => f.i32Const(0), () => f.get(rows), shape.mc, () => {
      // mcur = min(mc, rows − ic)
      f.get(rows).get(ic).i32Sub().set(mcur);
      f.i32Const(shape.mc).get(mcur).get(mcur).i32Const(shape.mc).i32GtS().select().set(mcur);
      forRange(f, pc, () => f.i32Const(0), () => f.get(k), shape.kc, () => {
        f.get(k).get(pc).i32Sub().set(kcur);
        f.i32Const(shape.kc).get(kcur).get(kcur).i32Const(shape.kc).i32GtS().select().set(kcur);
        f.get(transA).if();
        // packAT(a + (pc·lda + ic)·E, lda, mcur, kcur, ap)
        f.get(a).get(pc).get(lda).i32Mul().get(ic).i32Add().i32Const(E).i32Mul().i32Add();
        f.get(lda).get(mcur).get(kcur).get(ap).call(packAT);
        f.else();
        // packA(a + (ic·lda + pc)·E, lda, mcur, kcur, ap)
        f.get(a).get(ic).get(lda).i32Mul().get(pc).i32Add().i32Const(E).i32Mul().i32Add();
        f.get(lda).get(mcur).get(kcur).get(ap).call(packA);
        f.end();
        forRange(f, jr, () => f.i32Const(0), () => f.get(npad), nr, () => {
          // The C tile of row ic, column jr.
          f.get(c).get(ic).get(ldc).i32Mul().get(jr).i32Add().i32Const(E).i32Mul().i32Add().set(crow);
          forRange(f, ir, () => f.i32Const(0), () => f.get(mcur), mr, () => {
            f.get(ap).get(ir).get(kcur).i32Mul().i32Const(E).i32Mul().i32Add();
            f.get(bp).get(jr).get(k).i32Mul().get(pc).i32Const(nr).i32Mul().i32Add().i32Const(E).i32Mul().i32Add();
            f.get(kcur).get(crow).get(ldcB).get(pc).i32Const(0).i32GtS().call(kernel);
            f.get(crow).get(ldcB).i32Const(mr).i32Mul().i32Add().set(crow);
          });
        });
      });
    });
  });

  // narrow_T_r(l, lsr, lsp, rm, ldr, d, dsr, dsc, cols, k), r = 1 … NARROW_ROWS: the product of a
  // matrix of r rows and a row-major one, read where they lie, nothing packed: D[q, c] = Σ_p
  // L[q, p]·R[p, c] for q < r, c < cols, with L's element (q, p) at l + q·lsr + p·lsp, R's (p, c)
  // at rm + p·ldr + c·E and D's (q, c) at d + q·dsr + c·dsc (strides in bytes; D row-major when
  // dsc = E, else each lane stored alone). R's columns lie in the lanes, L's values are splats, and
  // each element of D is one lane of one accumulator that starts at zero and adds L·R for p = 0, 1,
  // … in order with the micro-kernel's own update: the same bits as gemm's. A product with at most
  // r rows (C = A·B), or at most r columns and A stored transposed (Cᵀ = Bᵀ·Aᵀ, Aᵀ row-major), is
  // all accumulators: the 5×8 tile would compute mostly padding, after packing all of A or B.
  for (let r = 1; r <= NARROW_ROWS; r++) {
    // Vectors of columns per block: r·W accumulators, r splats, R's vector and the product in
    // the 15 registers (see wasmMatmul.ts's tiles).
    const W = Math.min(4, Math.floor((15 - r - 2) / r));
    m.func(`narrow_${dtype}_${r}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32], [], (f, [l, lsr, lsp, rm, ldr, d, dsr, dsc, cols, k]) => {
      const c = f.local(I32), p = f.local(I32), rp = f.local(I32), at = f.local(I32);
      const lp: number[] = [];
      for (let q = 0; q < r; q++) lp.push(f.local(I32));
      const splats: number[] = [];
      for (let q = 0; q < r; q++) splats.push(f.local(V128));
      const accs: number[] = [];
      for (let t = 0; t < r * W; t++) accs.push(f.local(V128));
      const rv = f.local(V128);
      // Columns c … c + vecs·lanes − 1 (vecs vectors), or the one column c (vecs = 0: splats of
      // R's element, lane 0 stored), over all of k.
      const block = (vecs: number) => {
        const width = Math.max(vecs, 1);
        for (let t = 0; t < r * width; t++) f.v128Const().set(accs[t]!);
        for (let q = 0; q < r; q++) f.get(l).get(lsr).i32Const(q).i32Mul().i32Add().set(lp[q]!);
        f.get(rm).get(c).i32Const(E).i32Mul().i32Add().set(rp);
        f.get(k).set(p);
        f.block().loop();
        f.get(p).i32Eqz().brIf(1);
        for (let q = 0; q < r; q++) {
          f.get(lp[q]!);
          splat(f, 0);
          f.set(splats[q]!);
        }
        for (let w = 0; w < width; w++) {
          f.get(rp);
          if (vecs === 0) splat(f, 0);
          else f.v128Load(w * 16);
          f.set(rv);
          for (let q = 0; q < r; q++) accumulate(f, accs[q * width + w]!, () => f.get(splats[q]!), () => f.get(rv));
        }
        for (let q = 0; q < r; q++) f.get(lp[q]!).get(lsp).i32Add().set(lp[q]!);
        f.get(rp).get(ldr).i32Add().set(rp);
        f.get(p).i32Const(1).i32Sub().set(p);
        f.br(0).end().end();
        for (let q = 0; q < r; q++) {
          // at = d + q·dsr + c·dsc
          f.get(d).get(dsr).i32Const(q).i32Mul().i32Add().get(c).get(dsc).i32Mul().i32Add().set(at);
          if (vecs === 0) {
            f.get(at).get(accs[q]!).emit(extract(0)).emit(store);
            continue;
          }
          f.get(dsc).i32Const(E).i32Eq().if();
          for (let w = 0; w < vecs; w++) f.get(at).get(accs[q * width + w]!).v128Store(w * 16);
          f.else();
          for (let w = 0; w < vecs; w++) {
            for (let lane = 0; lane < lanes; lane++) {
              f.get(at).get(accs[q * width + w]!).emit(extract(lane)).emit(store);
              f.get(at).get(dsc).i32Add().set(at);
            }
          }
          f.end();
        }
      };
      f.i32Const(0).set(c);
      // Blocks of W vectors, then single vectors, then single columns.
      for (const vecs of [W, 1, 0]) {
        const step = Math.max(vecs, 1) * (vecs === 0 ? 1 : lanes);
        f.block().loop();
        f.get(c).i32Const(step).i32Add().get(cols).i32GtS().brIf(1);
        block(vecs);
        f.get(c).i32Const(step).i32Add().set(c);
        f.br(0).end().end();
      }
    });
  }

  // narrowCols_T_n(a, lda, b, bsp, bsj, c, rows, k), n = 1 … NARROW_ROWS: C = A·B for a row-major A
  // (row stride lda bytes) and a B of n columns (element (p, j) at b + p·bsp + j·bsj), C dense
  // (rows × n). A block of `lanes` rows of A, `lanes` steps of k at a time, is loaded as vectors
  // and transposed in registers, so that each lane holds a row: the accumulator of column j then
  // adds (A's column of the block)·B[p, j] for p = 0, 1, … in order, as gemm's would. The last,
  // partial block repeats the last row in its spare lanes (not stored); the last, partial steps of
  // k load whole vectors and use only the lanes before k (the layout has room past A's rows).
  const shuffleBytes = (indices: readonly number[]) => indices.flatMap((l) => Array.from({ length: E }, (_, b) => l * E + b));
  const transpose: (f: FunctionBody, rows: readonly number[], tmp: readonly number[], cols: readonly number[]) => void = lanes === 4
    ? (f, r, t, c) => {
      const sh = (x: number, y: number, idx: number[], to: number) => f.get(x).get(y).i8x16Shuffle(shuffleBytes(idx)).set(to);
      sh(r[0]!, r[1]!, [0, 4, 1, 5], t[0]!);
      sh(r[0]!, r[1]!, [2, 6, 3, 7], t[1]!);
      sh(r[2]!, r[3]!, [0, 4, 1, 5], t[2]!);
      sh(r[2]!, r[3]!, [2, 6, 3, 7], t[3]!);
      sh(t[0]!, t[2]!, [0, 1, 4, 5], c[0]!);
      sh(t[0]!, t[2]!, [2, 3, 6, 7], c[1]!);
      sh(t[1]!, t[3]!, [0, 1, 4, 5], c[2]!);
      sh(t[1]!, t[3]!, [2, 3, 6, 7], c[3]!);
    }
    : (f, r, _t, c) => {
      f.get(r[0]!).get(r[1]!).i8x16Shuffle(shuffleBytes([0, 2])).set(c[0]!);
      f.get(r[0]!).get(r[1]!).i8x16Shuffle(shuffleBytes([1, 3])).set(c[1]!);
    };
  for (let n = 1; n <= NARROW_ROWS; n++) {
    m.func(`narrowCols_${dtype}_${n}`, [I32, I32, I32, I32, I32, I32, I32, I32], [], (f, [a, lda, b, bsp, bsj, c, rows, k]) => {
      const i0 = f.local(I32), p = f.local(I32), bp = f.local(I32), last = f.local(I32), at = f.local(I32);
      const rowAt: number[] = [], rv: number[] = [], tmp: number[] = [], col: number[] = [], acc: number[] = [], bj: number[] = [];
      for (let q = 0; q < lanes; q++) rowAt.push(f.local(I32));
      for (let q = 0; q < lanes; q++) rv.push(f.local(V128));
      for (let q = 0; q < lanes; q++) tmp.push(f.local(V128));
      for (let q = 0; q < lanes; q++) col.push(f.local(V128));
      for (let j = 0; j < n; j++) acc.push(f.local(V128));
      for (let j = 0; j < n; j++) bj.push(f.local(I32));
      const bs = f.local(V128);
      for (let j = 0; j < n; j++) f.get(bsj).i32Const(j).i32Mul().set(bj[j]!);
      // The update of every column's accumulator by step pp of the block (bp at B's row p).
      const update = (pp: number) => {
        for (let j = 0; j < n; j++) {
          f.get(bp).get(bj[j]!).i32Add();
          splat(f, 0);
          f.set(bs);
          accumulate(f, acc[j]!, () => f.get(col[pp]!), () => f.get(bs));
        }
        f.get(bp).get(bsp).i32Add().set(bp);
      };
      const loadBlock = () => {
        for (let q = 0; q < lanes; q++) f.get(rowAt[q]!).v128Load(0).set(rv[q]!);
        transpose(f, rv, tmp, col);
      };
      f.get(rows).i32Const(1).i32Sub().set(last);
      forRange(f, i0, () => f.i32Const(0), () => f.get(rows), lanes, () => {
        // Row q of the block: i0 + q, or the last row past the end.
        for (let q = 0; q < lanes; q++) {
          f.get(i0).i32Const(q).i32Add().get(last).get(i0).i32Const(q).i32Add().get(last).i32LeS().select();
          f.get(lda).i32Mul().get(a).i32Add().set(rowAt[q]!);
        }
        for (let j = 0; j < n; j++) f.v128Const().set(acc[j]!);
        f.get(b).set(bp);
        f.i32Const(0).set(p);
        f.block().loop();
        f.get(p).i32Const(lanes).i32Add().get(k).i32GtS().brIf(1);
        loadBlock();
        for (let pp = 0; pp < lanes; pp++) update(pp);
        for (let q = 0; q < lanes; q++) f.get(rowAt[q]!).i32Const(lanes * E).i32Add().set(rowAt[q]!);
        f.get(p).i32Const(lanes).i32Add().set(p);
        f.br(0).end().end();
        // The last k mod lanes steps.
        f.get(p).get(k).i32LtS().if();
        loadBlock();
        for (let pp = 0; pp < lanes - 1; pp++) {
          f.get(p).i32Const(pp).i32Add().get(k).i32LtS().if();
          update(pp);
          f.end();
        }
        f.end();
        // Lane q to row i0 + q, where that row exists.
        for (let q = 0; q < lanes; q++) {
          f.get(i0).i32Const(q).i32Add().get(rows).i32LtS().if();
          f.get(i0).i32Const(q).i32Add().i32Const(n * E).i32Mul().get(c).i32Add().set(at);
          for (let j = 0; j < n; j++) {
            f.get(at).get(acc[j]!).emit(extract(q));
            store(f, j * E);
          }
          f.end();
        }
      });
    });
  }

  // shallow_T_k(a, lda, b, ldb, c, ldc, rows, n), k = 1 … SHALLOW_DEPTH: C = A·B for a product of
  // depth k (a first layer over 2-D points, its gradient's products), nothing packed: row by row,
  // A's k values of the row splatted once, then each vector of C's columns from k vectors of B
  // (B's rows in L1: k·n values), C written where it is asked (strides in bytes; A and B
  // row-major). gemm would pack A and B and run its tile on k steps, its accumulators loaded
  // and stored for two multiply-adds (benchmarks/NOTES.md, "Products of depth k ≤ 4").
  // Each element of C is one lane of an accumulator that starts at zero and adds a·b for p = 0 …
  // k − 1 in order with the micro-kernel's own update: the same bits as gemm's. The last n mod
  // lanes columns take the same lane arithmetic on splats of B's elements, lane 0 stored.
  for (let depth = 1; depth <= SHALLOW_DEPTH; depth++) {
    m.func(`shallow_${dtype}_${depth}`, [I32, I32, I32, I32, I32, I32, I32, I32], [], (f, [a, lda, b, ldb, c, ldc, rows, n]) => {
      const i = f.local(I32), j = f.local(I32), whole = f.local(I32), end = f.local(I32), arow = f.local(I32), crow = f.local(I32);
      const av: number[] = [];
      for (let p = 0; p < depth; p++) av.push(f.local(V128));
      const acc = f.local(V128);
      // Byte offsets: whole vectors of columns below `whole`, every column below `end`.
      f.get(n).i32Const(-lanes).i32And().i32Const(E).i32Mul().set(whole);
      f.get(n).i32Const(E).i32Mul().set(end);
      f.get(a).set(arow);
      f.get(c).set(crow);
      // B's element (p, column at byte offset j), on the stack: whole vectors or one splat.
      const bAt = (p: number) => {
        f.get(b).get(j).i32Add();
        if (p > 0) f.get(ldb).i32Const(p).i32Mul().i32Add();
      };
      forRange(f, i, () => f.i32Const(0), () => f.get(rows), 1, () => {
        for (let p = 0; p < depth; p++) {
          f.get(arow);
          splat(f, p * E);
          f.set(av[p]!);
        }
        forRange(f, j, () => f.i32Const(0), () => f.get(whole), 16, () => {
          f.v128Const().set(acc);
          for (let p = 0; p < depth; p++) accumulate(f, acc, () => f.get(av[p]!), () => { bAt(p); f.v128Load(0); });
          f.get(crow).get(j).i32Add().get(acc).v128Store(0);
        });
        forRange(f, j, () => f.get(whole), () => f.get(end), E, () => {
          f.v128Const().set(acc);
          for (let p = 0; p < depth; p++) accumulate(f, acc, () => f.get(av[p]!), () => { bAt(p); splat(f, 0); });
          f.get(crow).get(j).i32Add().get(acc).emit(extract(0));
          store(f);
        });
        f.get(arow).get(lda).i32Add().set(arow);
        f.get(crow).get(ldc).i32Add().set(crow);
      });
    });
  }

  // compact(c, ldc, n, rows): row r moves from c + r·ldc to c + r·n (memmove; rows go downwards).
  m.func(`compact_${dtype}`, [I32, I32, I32, I32], [], (f, [c, ldc, n, rows]) => {
    const r = f.local(I32);
    forRange(f, r, () => f.i32Const(1), () => f.get(rows), 1, () => {
      f.get(c).get(r).get(n).i32Mul().i32Const(E).i32Mul().i32Add();
      f.get(c).get(r).get(ldc).i32Mul().i32Const(E).i32Mul().i32Add();
      f.get(n).i32Const(E).i32Mul();
      f.memoryCopy();
    });
  });
}
