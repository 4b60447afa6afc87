// Batched matrix product C[b] = A[b]·B[b] with A [..., M, K] and B [..., K, N] read through
// their strides: a transposed or permuted operand is just other strides, never a copy. Each
// workgroup computes a TM×TN tile of C; per step of TK along K it stages the matching A and B
// panels in workgroup memory (zero-filled past the matrix edges, so any M, N, K work), and each
// thread accumulates an RM×RN block of C in registers from them, so a value loaded from
// workgroup memory feeds RM or RN multiply-adds.

import { collapseAxes } from '../layout.js';
import type { Layout } from '../layout.js';
import { type InputOffsetSource, type KernelSpec, UniformBlock, declareStorage, grid1d, linearWorkgroup } from './common.js';

/**
 * WGSL filling `v` (a vec4<f32>) with four consecutive elements `first`..`first + 3` of `buffer`
 * along an axis of stride `stride` from `base`; lanes at or past `bound` stay 0 (edge tiles).
 */
function guardedVec4Load(buffer: string, base: string, first: string, stride: string, bound: string): string {
  return ['x', 'y', 'z', 'w']
    .map((lane, i) => `if (${first} + ${i}u < ${bound}) { v.${lane} = ${buffer}[${base} + (${first} + ${i}u) * ${stride}]; }`)
    .join('\n          ');
}

/**
 * WGSL lines that set `aBase` and `bBase`, the element offsets of batch entry `batchIndex` in A
 * and B, from the collapsed batch axes and each operand's strides along them.
 */
function batchOffsetLines(u: UniformBlock, batch: { shape: readonly number[]; strides: readonly (readonly number[])[] }, p: OperandSources & { a: Layout; b: Layout }): string[] {
  const lines = ['var brem = batchIndex;', `var aBase = ${u.inputOffset(p.a.offset, p.aSource)};`, `var bBase = ${u.inputOffset(p.b.offset, p.bSource)};`];
  for (let d = batch.shape.length - 1; d >= 0; d--) {
    const e = u.u32(batch.shape[d]!);
    const coord = d === 0 ? 'brem' : `(brem % ${e})`;
    lines.push(`aBase = aBase + ${coord} * ${u.u32(batch.strides[0]![d]!)}; bBase = bBase + ${coord} * ${u.u32(batch.strides[1]![d]!)};`);
    if (d > 0) lines.push(`brem = brem / ${e};`);
  }
  return lines;
}

/**
 * Staging loop of a k-major panel of vec4 groups: thread `lid` fills entries lid, lid + threads,
 * … of `tile`; entry e holds 4 consecutive rows (A) or columns (B) starting at `first` + 4·(e mod
 * lineVecs) of panel line k0 + e / lineVecs, zero past the matrix edges.
 */
function vec4PanelLoad(o: {
  tile: string; buffer: string; perThread: number; threads: number; panelVecs: number; lineVecs: number;
  lineBase: string; kStride: string; first: string; stride: string; bound: string; uK: string;
}): string {
  return `
    for (var l = 0u; l < ${o.perThread}u; l = l + 1u) {
      let e = lid + l * ${o.threads}u;
      if (e < ${o.panelVecs}u) {
        let kk = e / ${o.lineVecs}u;
        let i4 = (e % ${o.lineVecs}u) * 4u;
        let gk = k0 + kk;
        var v = vec4<f32>(0.0);
        if (gk < ${o.uK}) {
          let line = ${o.lineBase} + gk * ${o.kStride};
          let gi = ${o.first} + i4;
          ${guardedVec4Load(o.buffer, 'line', 'gi', o.stride, o.bound)}
        }
        ${o.tile}[e] = v;
      }
    }`;
}

/**
 * What a compiled program puts after a matmul instead of the plain store of C: bindings of its
 * own (from binding 2 on; the uniform block follows them), a WGSL function
 * `fn matmul_store(batch: u32, row: u32, col: u32, value: f32)` called for every element of C
 * (batch is the linear batch index) where the plain store would be, and, when `perElement`,
 * `fn matmul_epilogue(batch: u32, row: u32, col: u32)`, called for every element of the
 * invocation's tile after all its stores, from one loop. An epilogue of several operations is
 * that second function (reading back what matmul_store wrote): called at the hundreds of store
 * sites of a register-blocked kernel, it would be inlined at each, and shader compilers on
 * software adapters then take minutes.
 */
export interface MatmulEpilogue {
  declarations: string;
  bindingCount: number;
  /** `matmul_store`, `matmul_epilogue` (when perElement) and what they call. */
  functions: string;
  perElement: boolean;
  /** Statements that start `main`, which has `nwg` (num_workgroups) in scope: the opaque flag's assignment (compiler/writer.ts). */
  entry: string;
  /**
   * The uniform block `U` as the functions read it (the offsets of the inputs they read in
   * place, compiler/writer.ts): its words come first, the template's own follow them.
   */
  uniforms?: UniformBlock;
}

/**
 * Elements of K one launch walks at most. llvmpipe ends an invocation after 65,535 loop
 * iterations in all, silently, which cut the vec4 kernel's walk (4 elements a step) at K =
 * 262,140 and the tiled kernel's (16 or 32 a step; its inner loops, of constant length, cost
 * nothing measurable) at about a million; a longer K is summed over several launches, each after
 * the first adding its partial products to C. 2^15 leaves room even if the inner loops counted
 * (the tiled kernels take at most 43 iterations per 32 elements of K), and is a multiple of
 * every kernel's step.
 */
export const MATMUL_K_SPAN = 1 << 15;

/** The spans of K the launches of an M×N×K product cover, in order (at least one). */
export function matmulKSpans(k: number): { start: number; count: number }[] {
  const spans: { start: number; count: number }[] = [];
  for (let start = 0; start === 0 || start < k; start += MATMUL_K_SPAN) spans.push({ start, count: Math.min(MATMUL_K_SPAN, k - start) });
  return spans;
}

/** The part of K a launch covers; a span after the first adds to C rather than storing it. */
export interface MatmulKSpan {
  /** First element of K this launch sums over (default 0) and how many (default all of K). */
  kStart?: number;
  kCount?: number;
  /**
   * Add the partial products to what C holds instead of storing them. With an epilogue, its
   * `matmul_store` is the caller's to make add.
   */
  accumulate?: boolean;
}

export interface MatmulTiling {
  /** Rows and columns of C per workgroup. */
  tileM: number;
  tileN: number;
  /** Depth of the staged K panel. */
  tileK: number;
  /** Rows and columns of C per thread (the register block; RN must be 4: one vec4 per row). */
  perThreadM: number;
  perThreadN: number;
}

/** 64×64 tiles, 4×4 per thread: 256 threads, 16 multiply-adds per pair of vec4 loads. */
export const LARGE_TILING: MatmulTiling = { tileM: 64, tileN: 64, tileK: 16, perThreadM: 4, perThreadN: 4 };
/** 32×32 tiles for products too small to fill many 64×64 workgroups. */
export const SMALL_TILING: MatmulTiling = { tileM: 32, tileN: 32, tileK: 16, perThreadM: 4, perThreadN: 4 };
/** Few rows (vector-matrix): 4×64 tiles, one row per thread. */
export const SKINNY_TILING: MatmulTiling = { tileM: 4, tileN: 64, tileK: 32, perThreadM: 1, perThreadN: 4 };

/** Picks a tiling for an M×N×K product: big tiles when there are enough of them to share out. */
export function chooseTiling(m: number, n: number, batch: number): MatmulTiling {
  if (m <= 4) return SKINNY_TILING;
  const largeTiles = Math.ceil(m / 64) * Math.ceil(n / 64) * batch;
  return largeTiles >= 8 ? LARGE_TILING : SMALL_TILING;
}

/**
 * For a compiled program: which of its inputs A and B are views of (their offsets then are that
 * input's offset plus a constant, recorded as KernelSpec.inputOffsets).
 */
export interface OperandSources {
  aSource?: InputOffsetSource;
  bSource?: InputOffsetSource;
}

export interface MatmulParams extends MatmulKSpan, OperandSources {
  a: Layout;
  b: Layout;
  /** Contiguous output of shape [...batch, M, N], starting at element `outOffset`. */
  outShape: readonly number[];
  tiling: MatmulTiling;
  /** First batch entry and how many this launch covers (batches beyond 65535 need several). */
  batchStart: number;
  batchCount: number;
  /** Element offset of C in its buffer (default 0). */
  outOffset?: number;
  epilogue?: MatmulEpilogue;
}

/** The C binding and uniform block declarations, or an epilogue's in their place. */
function outputDeclarations(u: UniformBlock, epilogue: MatmulEpilogue | undefined): string {
  if (!epilogue) return `@group(0) @binding(2) var<storage, read_write> C: array<f32>;\n${u.declare(3)}`;
  return `${epilogue.declarations}${u.declare(2 + epilogue.bindingCount)}${epilogue.functions}\n`;
}

/**
 * The launch grid of a product's tiles (or blocks): `columns`×`rows` of them per batch entry,
 * numbered row by row and folded into x and y as `grid1d` folds a 1-D launch, so a side of more
 * than 65,535 tiles (a thin C of millions of rows or columns) still fits the per-dimension limit;
 * z is the batch entry. `tileLines` recovers a workgroup's tile.
 */
function foldTiles(u: UniformBlock, columns: number, rows: number, batchCount: number): { dispatch: [number, number, number]; columns: string; count: string } {
  const [x, y] = grid1d(columns * rows);
  return { dispatch: [x, y, batchCount], columns: u.u32(columns), count: u.u32(columns * rows) };
}

/**
 * WGSL that starts `main`: the workgroup's tile from its folded index (see foldTiles), the
 * workgroups past the last tile returning (a whole workgroup: its barriers stay in uniform
 * control flow), and `rowBase`/`colBase`, the tile's first row and column (or column group).
 */
function tileLines(grid: { columns: string; count: string }, rowsPerTile: string, columnsPerTile: string, rowBase: string, colBase: string): string {
  return `let tile = ${linearWorkgroup};
  if (tile >= ${grid.count}) { return; }
  let ${rowBase} = (tile / ${grid.columns}) * ${rowsPerTile};
  let ${colBase} = (tile % ${grid.columns}) * ${columnsPerTile};`;
}

/** C = A·B for float32, one launch of `batchCount` batch entries. */
export function matmulKernel(p: MatmulParams): KernelSpec {
  const { tileM: TM, tileN: TN, tileK: TK, perThreadM: RM, perThreadN: RN } = p.tiling;
  if (RN !== 4 || TN % RN !== 0 || TM % RM !== 0) throw new Error(`internal: unsupported matmul tiling ${JSON.stringify(p.tiling)}`);
  const rank = p.outShape.length;
  const M = p.outShape[rank - 2]!;
  const N = p.outShape[rank - 1]!;
  const K = p.a.shape[rank - 1]!;
  const threadsX = TN / RN;
  const threadsY = TM / RM;
  const threads = threadsX * threadsY;
  const batchShape = p.outShape.slice(0, -2);
  const batch = collapseAxes(batchShape, [p.a.strides.slice(0, -2), p.b.strides.slice(0, -2)]);
  const u = new UniformBlock(p.epilogue?.uniforms);
  const uM = u.u32(M);
  const uN = u.u32(N);
  const kStart = p.kStart ?? 0;
  // Panel loads stop at the span's end (zero past it), as at the matrix's edge.
  const uK = u.u32(kStart + (p.kCount ?? K - kStart));
  const uKStart = u.u32(kStart);
  const tileGrid = foldTiles(u, Math.ceil(N / TN), Math.ceil(M / TM), p.batchCount);
  const batchStart = u.u32(p.batchStart);
  // Batch coordinates → operand offsets (C is contiguous: batch index · M·N).
  const batchLines = batchOffsetLines(u, batch, p);
  const sAm = u.u32(p.a.strides[rank - 2]!);
  const sAk = u.u32(p.a.strides[rank - 1]!);
  const sBk = u.u32(p.b.strides[rank - 2]!);
  const sBn = u.u32(p.b.strides[rank - 1]!);

  // Staging loads: the A panel is TM×TK, stored k-major as vec4 groups of 4 rows (or scalars when
  // RM = 1); the B panel is TK×TN, stored k-major as vec4 groups of 4 columns.
  const aVec = RM === 4;
  const aPanelVecs = aVec ? (TM / 4) * TK : TM * TK;
  const bPanelVecs = (TN / 4) * TK;
  const aLoadsPerThread = Math.ceil(aPanelVecs / threads);
  const bLoadsPerThread = Math.ceil(bPanelVecs / threads);
  const loadA = aVec
    ? vec4PanelLoad({ tile: 'tileA', buffer: 'A', perThread: aLoadsPerThread, threads, panelVecs: aPanelVecs, lineVecs: TM / 4, lineBase: 'aBase', kStride: sAk, first: 'rowBase', stride: sAm, bound: uM, uK })
    : `
    for (var l = 0u; l < ${aLoadsPerThread}u; l = l + 1u) {
      let e = lid + l * ${threads}u;
      if (e < ${aPanelVecs}u) {
        let kk = e / ${TM}u;
        let m = e % ${TM}u;
        let gk = k0 + kk;
        let gm = rowBase + m;
        var v = 0.0;
        if (gk < ${uK} && gm < ${uM}) { v = A[aBase + gk * ${sAk} + gm * ${sAm}]; }
        tileA[e] = v;
      }
    }`;
  const loadB = vec4PanelLoad({ tile: 'tileB', buffer: 'B', perThread: bLoadsPerThread, threads, panelVecs: bPanelVecs, lineVecs: TN / 4, lineBase: 'bBase', kStride: sBk, first: 'colBase', stride: sBn, bound: uN, uK });
  const accs = Array.from({ length: RM }, (_, i) => `acc${i}`);
  const aRead = aVec ? `let a = tileA[kk * ${TM / 4}u + ty];` : `let a = tileA[kk * ${TM}u + ty];`;
  const fma = aVec
    ? ['x', 'y', 'z', 'w'].slice(0, RM).map((c, i) => `acc${i} = acc${i} + a.${c} * b;`).join(' ')
    : 'acc0 = acc0 + a * b;';
  const rowOf = (i: number) => (aVec ? `ty * 4u + ${i}u` : 'ty');
  const store = (at: string, value: string) => (p.accumulate ? `${at} = ${at} + ${value};` : `${at} = ${value};`);
  const stores = accs
    .map((acc, i) => {
      const put = (j: number, lane: string) =>
        p.epilogue ? `matmul_store(batchIndex, gm, gn${j ? ` + ${j}u` : ''}, ${acc}.${lane});` : store(`C[rowStart + gn${j ? ` + ${j}u` : ''}]`, `${acc}.${lane}`);
      return `
  {
    let gm = rowBase + ${rowOf(i)};
    if (gm < ${uM}) {
      let rowStart = cBase + gm * ${uN};
      if (gn < ${uN}) { ${put(0, 'x')} }
      if (gn + 1u < ${uN}) { ${put(1, 'y')} }
      if (gn + 2u < ${uN}) { ${put(2, 'z')} }
      if (gn + 3u < ${uN}) { ${put(3, 'w')} }
    }
  }`;
    })
    .join('');
  const body = `
var<workgroup> tileA: array<${aVec ? 'vec4<f32>' : 'f32'}, ${aPanelVecs}>;
var<workgroup> tileB: array<vec4<f32>, ${bPanelVecs}>;

@compute @workgroup_size(${threadsX}, ${threadsY}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${p.epilogue?.entry ?? ''}
  let tx = lid3.x;
  let ty = lid3.y;
  ${tileLines(tileGrid, `${TM}u`, `${TN}u`, 'rowBase', 'colBase')}
  let batchIndex = ${batchStart} + wid.z;
  ${batchLines.join('\n  ')}
  let cBase = ${u.u32(p.outOffset ?? 0)} + batchIndex * ${uM} * ${uN};
  ${accs.map((a) => `var ${a} = vec4<f32>(0.0);`).join('\n  ')}
  for (var k0 = ${uKStart}; k0 < ${uK}; k0 = k0 + ${TK}u) {
    ${loadA}
    ${loadB}
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk = kk + 1u) {
      ${aRead}
      let b = tileB[kk * ${TN / 4}u + tx];
      ${fma}
    }
    workgroupBarrier();
  }
  let gn = colBase + tx * 4u;
  ${stores}
  ${p.epilogue?.perElement ? `for (var i = 0u; i < ${RM}u; i = i + 1u) {
    let gm = rowBase + ${aVec ? 'ty * 4u + i' : 'ty'};
    if (gm < ${uM}) {
      for (var j = 0u; j < 4u; j = j + 1u) { if (gn + j < ${uN}) { matmul_epilogue(batchIndex, gm, gn + j); } }
    }
  }` : ''}
}`;
  const bindings = [
    { name: 'A', type: 'f32' as const, access: 'read' as const },
    { name: 'B', type: 'f32' as const, access: 'read' as const },
  ];
  return {
    label: `matmul_${TM}x${TN}x${TK}_batchrank${batch.shape.length}${p.accumulate ? '_accumulate' : ''}${p.epilogue ? '_epilogue' : ''}`,
    code: `${declareStorage(bindings)}${outputDeclarations(u, p.epilogue)}${body}`,
    workgroupSize: [threadsX, threadsY, 1],
    dispatch: M === 0 || N === 0 || p.batchCount === 0 ? [0, 0, 0] : tileGrid.dispatch,
    uniforms: u.data(),
    inputOffsets: u.inputOffsets,
  };
}

// ---------------------------------------------------------------------------------------------
// Register-blocked vec4 matmul
//
// On software adapters (llvmpipe) every storage or workgroup-memory load is executed lane by
// lane (~1 cycle per element plus overhead), while arithmetic runs 8 lanes wide, so speed comes
// from the number of multiply-adds per loaded element. Here each invocation keeps an R×4C block
// of C and, per four steps of k, loads R vec4s of A and 4C vec4s of B for 16·R·C multiply-adds;
// no workgroup memory and no barriers. It needs 16-byte aligned rows along the vectorised axes,
// which `vec4Layout` checks; other products use the tiled kernel above.

/** Which axis of an operand is read four elements at a time. */
export type Vec4Axis = 'k' | 'm' | 'n';

export interface Vec4Blocking {
  /** Rows of C per invocation (a multiple of 4). */
  rows: number;
  /** vec4 column groups of C per invocation. */
  columnGroups: number;
  /** Invocations per workgroup (along N). */
  lanes: number;
}

/**
 * 32×16 blocks per invocation, 8 invocations (one llvmpipe SIMD group) per workgroup: per four
 * steps of k, 48 vec4 loads feed 512 vec4 multiply-adds. Measured on llvmpipe (2 cores, AVX2) at
 * 1024³: 32 GFLOP/s, against 27 for 16×16 blocks, 19 for 8×32 and 25 for 48×16 (the
 * accumulators spill either way; past this size the spills cost more than the loads saved).
 * Compiled cold (no Mesa shader cache), each such kernel took llvmpipe 4–9 s while its stores
 * were written out element by element, 1.2–1.7 s since the block is stored by a loop (AMD EPYC,
 * load 4; benchmarks/NOTES.md, "Register-blocked matmuls compiled in a second on llvmpipe").
 */
export const VEC4_BLOCKING: Vec4Blocking = { rows: 32, columnGroups: 4, lanes: 8 };

/**
 * Workgroups wanted at least before blocks shrink, on adapters other than software ones: 16 (not
 * measured on a hardware GPU).
 */
export const MIN_WORKGROUPS = 16;

/**
 * On a software adapter: two workgroups per core its threads run on, so each thread gets work
 * and large blocks stay large. Measured on llvmpipe (2 cores, LP_NUM_THREADS=1): the compiled DSM
 * step's hᵀ·g (M = N = 128, K = 1024) keeps 32×16 blocks in 4 workgroups instead of 8×16 in 16,
 * 2.6 → 1.8 ms; the DSM step 14.2 → 13.5 ms, SSM-VR 25.5 → 23.5 ms (benchmarks/NOTES.md).
 */
export function softwareAdapterMinWorkgroups(cores: number): number {
  return 2 * Math.max(1, cores);
}

/**
 * Register blocks no larger than the matrix, shrunk while there are fewer than `minWorkgroups`
 * workgroups.
 */
export function chooseVec4Blocking(m: number, n: number, batch: number, minWorkgroups = MIN_WORKGROUPS): Vec4Blocking {
  const { lanes } = VEC4_BLOCKING;
  const groups4 = Math.ceil(n / 4);
  let columnGroups = Math.max(1, Math.min(VEC4_BLOCKING.columnGroups, Math.ceil(groups4 / lanes)));
  let rows = Math.min(VEC4_BLOCKING.rows, Math.ceil(m / 4) * 4);
  const workgroups = () => Math.ceil(groups4 / (lanes * columnGroups)) * Math.ceil(m / rows) * batch;
  while (workgroups() < minWorkgroups && (rows > 8 || columnGroups > 1)) {
    if (rows > 8) rows = Math.max(8, rows / 2);
    else columnGroups = Math.max(1, columnGroups / 2);
  }
  return { rows: Math.ceil(rows / 4) * 4, columnGroups: Math.ceil(columnGroups), lanes };
}

/**
 * The vectorised axes for A and B when both can be read as aligned vec4s: the axis has stride 1
 * and an extent divisible by 4, and every other stride and the offset are multiples of 4
 * elements. Null when the tiled kernel must be used.
 */
export function vec4Layout(a: Layout, b: Layout): { a: 'k' | 'm'; b: 'n' | 'k' } | null {
  const r = a.shape.length;
  const [M, K] = [a.shape[r - 2]!, a.shape[r - 1]!];
  const N = b.shape[r - 1]!;
  if (K % 4 !== 0 || K === 0 || M === 0 || N === 0) return null;
  const aligned = (x: Layout, except: number): boolean =>
    x.offset % 4 === 0 && x.strides.every((s, i) => i === except || s % 4 === 0 || x.shape[i] === 1);
  let av: 'k' | 'm' | null = null;
  if (a.strides[r - 1] === 1 && aligned(a, r - 1)) av = 'k';
  else if (a.strides[r - 2] === 1 && M % 4 === 0 && aligned(a, r - 2)) av = 'm';
  let bv: 'n' | 'k' | null = null;
  if (b.strides[r - 1] === 1 && N % 4 === 0 && aligned(b, r - 1)) bv = 'n';
  else if (b.strides[r - 2] === 1 && aligned(b, r - 2)) bv = 'k';
  return av && bv ? { a: av, b: bv } : null;
}

export interface Vec4MatmulParams extends MatmulKSpan, OperandSources {
  a: Layout;
  b: Layout;
  outShape: readonly number[];
  axes: { a: 'k' | 'm'; b: 'n' | 'k' };
  blocking: Vec4Blocking;
  batchStart: number;
  batchCount: number;
  /** Element offset of C in its buffer (default 0). */
  outOffset?: number;
  epilogue?: MatmulEpilogue;
}

/** Rows of a register block the vec4 kernel's store loop stores per iteration (blocks' rows are multiples of it). */
const STORE_ROWS = 4;

/** C = A·B (float32) with register blocks and vec4 loads; see the section comment. */
export function vec4MatmulKernel(p: Vec4MatmulParams): KernelSpec {
  const { rows: R, columnGroups: CG, lanes: L } = p.blocking;
  if (R % 4 !== 0) throw new Error(`internal: vec4 matmul rows per invocation must be a multiple of 4, got ${R}`);
  const rank = p.outShape.length;
  const M = p.outShape[rank - 2]!;
  const N = p.outShape[rank - 1]!;
  const K = p.a.shape[rank - 1]!;
  const batch = collapseAxes(p.outShape.slice(0, -2), [p.a.strides.slice(0, -2), p.b.strides.slice(0, -2)]);
  const u = new UniformBlock(p.epilogue?.uniforms);
  const uM = u.u32(M);
  const uN = u.u32(N);
  const kStart = p.kStart ?? 0;
  const uK4Start = u.u32(kStart / 4);
  const uK4 = u.u32((kStart + (p.kCount ?? K - kStart)) / 4);
  const lastGroup = u.u32(Math.ceil(N / 4) - 1);
  const tileGrid = foldTiles(u, Math.ceil(Math.ceil(N / 4) / (L * CG)), Math.ceil(M / R), p.batchCount);
  const batchStart = u.u32(p.batchStart);
  // Element offsets of this batch entry (multiples of 4, so /4 gives vec4 indices).
  const batchLines = batchOffsetLines(u, batch, p);
  // Strides in vec4 units along the non-vectorised axis of each operand.
  const aOuter4 = u.u32(p.axes.a === 'k' ? p.a.strides[rank - 2]! / 4 : p.a.strides[rank - 1]! / 4);
  const bOuter4 = u.u32(p.axes.b === 'n' ? p.b.strides[rank - 2]! / 4 : p.b.strides[rank - 1]! / 4);

  const setup: string[] = [];
  // Row indices clamped into the matrix: loads stay in bounds, stores are guarded instead.
  for (let r = 0; r < R; r++) setup.push(`let row${r} = min(rowBase + ${r}u, ${uM} - 1u);`);
  for (let c = 0; c < CG; c++) setup.push(`let g${c} = min(groupBase + ${c * L}u + lid, ${lastGroup});`);
  if (p.axes.a === 'k') {
    for (let r = 0; r < R; r++) setup.push(`let aRow${r} = aBase4 + row${r} * ${aOuter4};`);
  } else {
    for (let q = 0; q < R / 4; q++) setup.push(`let aQuad${q} = aBase4 + min(rowBase + ${4 * q}u, ${uM} - 4u) / 4u;`);
  }
  if (p.axes.b === 'n') {
    for (let c = 0; c < CG; c++) setup.push(`let bCol${c} = bBase4 + g${c};`);
  } else {
    for (let c = 0; c < CG; c++) for (let j = 0; j < 4; j++) setup.push(`let bCol${c}_${j} = bBase4 + min(g${c} * 4u + ${j}u, ${uN} - 1u) * ${bOuter4};`);
  }

  const step: string[] = [];
  // a${r}_${kk}: A[row r, k0 + kk] as scalars (names of vec4 components).
  const aScalar: string[][] = [];
  if (p.axes.a === 'k') {
    for (let r = 0; r < R; r++) {
      step.push(`let a${r} = A[aRow${r} + k4];`);
      aScalar.push(['x', 'y', 'z', 'w'].map((c) => `a${r}.${c}`));
    }
  } else {
    for (let kk = 0; kk < 4; kk++) for (let q = 0; q < R / 4; q++) step.push(`let aq${q}_${kk} = A[aQuad${q} + (k4 * 4u + ${kk}u) * ${aOuter4}];`);
    for (let r = 0; r < R; r++) aScalar.push([0, 1, 2, 3].map((kk) => `aq${r >> 2}_${kk}.${'xyzw'[r & 3]}`));
  }
  // b${c}_${kk}: B[k0 + kk, columns of group c] as a vec4.
  const bVec: string[][] = [];
  if (p.axes.b === 'n') {
    for (let c = 0; c < CG; c++) {
      bVec.push([]);
      for (let kk = 0; kk < 4; kk++) {
        step.push(`let b${c}_${kk} = B[bCol${c} + (k4 * 4u + ${kk}u) * ${bOuter4}];`);
        bVec[c]!.push(`b${c}_${kk}`);
      }
    }
  } else {
    for (let c = 0; c < CG; c++) {
      for (let j = 0; j < 4; j++) step.push(`let bt${c}_${j} = B[bCol${c}_${j} + k4];`);
      bVec.push([0, 1, 2, 3].map((kk) => `vec4<f32>(${[0, 1, 2, 3].map((j) => `bt${c}_${j}.${'xyzw'[kk]}`).join(', ')})`));
    }
  }
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < CG; c++) {
      const terms = [0, 1, 2, 3].map((kk) => `${aScalar[r]![kk]} * ${bVec[c]![kk]}`);
      step.push(`acc${r}_${c} = acc${r}_${c} + ${terms.join(' + ')};`);
    }
  }
  // The block is stored STORE_ROWS rows at a time by a loop: it stores rows 0…3, then moves
  // every accumulator up by four rows (acc4_c into acc0_c, …). Written out for all R rows, the
  // stores were most of the kernel's code (R·4C·4 guarded scalar stores, 512 for 32×16 blocks)
  // and most of llvmpipe's compile time (4.5 of 5.6 s measured); the loop's bound is a uniform
  // so that no compiler unrolls it back. The moves cost far less than the k loop (see
  // benchmarks/NOTES.md, "Register-blocked matmuls compiled in a second on llvmpipe").
  const storeLines: string[] = [];
  const put = (at: string, value: string) => (p.accumulate ? `${at} = ${at} + ${value};` : `${at} = ${value};`);
  for (let c = 0; c < CG; c++) {
    storeLines.push(`{
      let col = (groupBase + ${c * L}u + lid) * 4u;
      if (col < ${uN}) {`);
    for (let i = 0; i < STORE_ROWS; i++) {
      const acc = `acc${i}_${c}`;
      const row = `r0 + ${i}u`;
      // Each column is guarded: when B is read along k, N need not be a multiple of 4, and a
      // whole-vec4 store would spill into the next row (racing with that row's own store).
      if (p.epilogue) {
        storeLines.push(`        if (${row} < ${uM}) { matmul_store(batchIndex, ${row}, col, ${acc}.x); if (col + 1u < ${uN}) { matmul_store(batchIndex, ${row}, col + 1u, ${acc}.y); } if (col + 2u < ${uN}) { matmul_store(batchIndex, ${row}, col + 2u, ${acc}.z); } if (col + 3u < ${uN}) { matmul_store(batchIndex, ${row}, col + 3u, ${acc}.w); } }`);
      } else {
        storeLines.push(`        if (${row} < ${uM}) { let at = cBase + (${row}) * ${uN} + col; ${put('C[at]', `${acc}.x`)} if (col + 1u < ${uN}) { ${put('C[at + 1u]', `${acc}.y`)} } if (col + 2u < ${uN}) { ${put('C[at + 2u]', `${acc}.z`)} } if (col + 3u < ${uN}) { ${put('C[at + 3u]', `${acc}.w`)} } }`);
      }
    }
    storeLines.push('      }\n    }');
  }
  for (let r = 0; r + STORE_ROWS < R; r++) for (let c = 0; c < CG; c++) storeLines.push(`acc${r}_${c} = acc${r + STORE_ROWS}_${c};`);
  const stores = `for (var q = 0u; q < ${u.u32(R / STORE_ROWS)}; q = q + 1u) {
    let r0 = rowBase + q * ${STORE_ROWS}u;
    ${storeLines.join('\n    ')}
  }`;
  const accs: string[] = [];
  for (let r = 0; r < R; r++) for (let c = 0; c < CG; c++) accs.push(`var acc${r}_${c} = vec4<f32>(0.0);`);
  const body = `
@compute @workgroup_size(${L})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${p.epilogue?.entry ?? ''}
  ${tileLines(tileGrid, `${R}u`, `${L * CG}u`, 'rowBase', 'groupBase')}
  let batchIndex = ${batchStart} + wid.z;
  ${batchLines.join('\n  ')}
  let aBase4 = aBase / 4u;
  let bBase4 = bBase / 4u;
  let cBase = ${u.u32(p.outOffset ?? 0)} + batchIndex * ${uM} * ${uN};
  ${setup.join('\n  ')}
  ${accs.join('\n  ')}
  for (var k4 = ${uK4Start}; k4 < ${uK4}; k4 = k4 + 1u) {
    ${step.join('\n    ')}
  }
  ${stores}
  ${p.epilogue?.perElement ? `for (var r = 0u; r < ${R}u; r = r + 1u) {
    let row = rowBase + r;
    if (row < ${uM}) {
      for (var c = 0u; c < ${CG}u; c = c + 1u) {
        let col0 = (groupBase + c * ${L}u + lid) * 4u;
        for (var j = 0u; j < 4u; j = j + 1u) { if (col0 + j < ${uN}) { matmul_epilogue(batchIndex, row, col0 + j); } }
      }
    }
  }` : ''}
}`;
  // N need not be a multiple of 4 when B is read along k: the last group's columns past N are
  // computed from clamped loads and not stored.
  const bindings = [
    { name: 'A', type: 'vec4<f32>', access: 'read' },
    { name: 'B', type: 'vec4<f32>', access: 'read' },
  ];
  const decl = `${bindings.map((b, i) => `@group(0) @binding(${i}) var<storage, read> ${b.name}: array<${b.type}>;`).join('\n')}\n`;
  return {
    label: `matmul_vec4_a${p.axes.a}_b${p.axes.b}_${R}x${4 * CG}_batchrank${batch.shape.length}${p.accumulate ? '_accumulate' : ''}${p.epilogue ? '_epilogue' : ''}`,
    code: `${decl}${outputDeclarations(u, p.epilogue)}${body}`,
    workgroupSize: [L, 1, 1],
    dispatch: M === 0 || N === 0 || p.batchCount === 0 ? [0, 0, 0] : tileGrid.dispatch,
    uniforms: u.data(),
    inputOffsets: u.inputOffsets,
  };
}
