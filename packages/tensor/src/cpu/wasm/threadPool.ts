// Workers that share the matmul module's memory and split a product's rows between them, so that
// a synchronous call (the CPU backend's execute) can use every core: Node's worker_threads, or
// Web Workers in a cross-origin-isolated page.
//
// Protocol, all through one small SharedArrayBuffer (never messages, so a job needs no event
// loop turn): the caller writes a job's parameters, publishes it under a new epoch, wakes the
// workers, then claims chunks of rows itself like any worker. A chunk is claimed by a
// compare-and-swap on a 64-bit counter whose high half is the job's epoch: a worker that wakes
// late, or reads the parameters of a job that has since ended, cannot claim anything, because the
// caller retags the counter before it rewrites the parameters. The caller then waits only for
// chunks that running workers have claimed, so a worker that has not started yet (a browser
// starts workers asynchronously) or is descheduled delays nothing: the caller does the work.
// (One exception: a product whose B the job packs first. Its chunks wait for every block of B,
// so a worker descheduled while it packs a block holds them up for that block, tens of
// microseconds of work.)
//
// Between jobs a worker first spins, watching the epoch, for a bounded time (the pool's spin, 1 ms by
// default: WORKER_SPIN_MICROSECONDS), and only then blocks in Atomics.wait. A training step
// publishes a few dozen jobs with short gaps between them, and a worker blocked in Atomics.wait
// must be woken by the system, which is slow where a virtual CPU sits halted (benchmarks/NOTES.md,
// "Workers spin briefly before they wait"): spinning catches the next job at once. OpenMP runtimes
// do the same (GOMP's spin count, Intel's KMP_BLOCKTIME), and so do the threads of PyTorch. The
// caller, waiting for the workers' last chunks, spins for the same time before it blocks.
//
// Every chunk runs the same wasm code on the same data whoever claims it, and each element of C
// is computed by one lane from its row of A and column of B alone, so results are bit-identical
// to a single thread's.
//
// Range jobs use the same claiming for a generated JavaScript function over a range of units
// (../rangeThreads.ts). The job names its function and arrays in a second shared block (the job
// block), so that a steady-state job posts nothing:
// - an array of the CPU's heap by its type, address and length: each worker makes a view of the
//   shared memory there once. An array outside the heap is staged: the caller copies it into a
//   staging region of the heap for the job, and back after it. Where workers read messages
//   synchronously (Node's receiveMessageOnPort), one of 1 KiB or more on a SharedArrayBuffer goes
//   by id instead, once, in a message the worker reads when it wakes; in a browser a Web Worker
//   blocked in Atomics.wait never sees messages, so there every such array is staged;
// - the function by an id. Its source text is written once into a region of the heap, listed in a
//   shared table by id; a worker that meets the id builds the function from there, then records
//   the id in its row of a second table, and the region is freed once every worker has. Without a
//   heap (Node only) the source goes in the message.
// A worker may read the job block while the caller rewrites it for the next job: it claims nothing
// then, since the caller retags the counter before it rewrites the block. A source is read only
// while the table lists it, before and after the read (the caller unlists a source before it frees
// it), so a function built from the table is always its id's, whenever it was read.

import { elementwiseScratchBytes } from './elementwiseModule.js';
import { type CpuHeap, HEAP_ARRAY_MIN_BYTES, type HeapRegion } from './heap.js';

/** Layout of the control block (Int32 indices; the counter is a BigUint64 at byte 128). */
const EPOCH = 0;
const DONE = 1;
const STOP = 2;
const FAILED = 3;
/** Chunks computed by workers (not the caller) since the pool started: how tests know threads ran. */
const WORKER_CHUNKS = 4;
/** The kind of the published job: 0 a matmul, 1 a range job (a generated function over ranges). */
const KIND = 5;
/** Arrays worker 1 holds for range jobs (after its last message): how tests know it forgets. */
const HELD_ARRAYS = 6;
const PARAMS = 8;
/** A range job's parameters: chunks, units per chunk, units in all, participants. */
const RANGE_PARAMS = 27;
/** Microseconds a worker spins after a job before it blocks (set by the pool: spinMicroseconds). */
const SPIN = 31;
const COUNTER_BYTE = 128;
/**
 * Jobs the workers found published before they blocked (while spinning, or at once), since the
 * pool started: how tests know spinning catches jobs. After the counter (bytes 136…).
 */
const JOBS_SEEN_SPINNING = 34;
/** A matmul job's packing parameters (PACK_FIELDS, in order), then the blocks packed so far. */
const PACK_PARAMS = 35;
const PACKED = 44;
/** A matmul job's columns per chunk (MatmulJob.colsPerChunk). */
const COLS_PER_CHUNK = 45;
const CONTROL_BYTES = 192;

/** One product (or a batch of them) to split: byte addresses in the shared memory, sizes in elements. */
export interface MatmulJob {
  f64: boolean;
  /**
   * A for batch entry 0, rows of stride lda, or stored transposed (element (i, p) at p·lda + i)
   * when transA; entry b starts aBatch bytes further.
   */
  a: number;
  aBatch: number;
  lda: number;
  /** Packed B for entry 0; entry b's is bpBatch bytes further (0 when B is shared). */
  bp: number;
  bpBatch: number;
  /** C for entry 0, row stride ldc before compaction; entry b starts cBatch bytes further. */
  c: number;
  cBatch: number;
  ldc: number;
  m: number;
  n: number;
  k: number;
  /**
   * Rows per chunk (a multiple of the kernel's tile height, except for the last rows of each
   * entry, under a tile, which run as a job of one chunk per entry) and chunks per batch entry.
   */
  rowsPerChunk: number;
  chunksPerBatch: number;
  nChunks: number;
  /**
   * Columns per chunk, a whole number of panels (C written where it lies, ldc = n), or 0 for
   * chunks of whole rows. An entry's chunks are then its blocks of rows times its blocks of
   * columns, row-block major: each chunk reads only its columns' panels of B, so a product of
   * few rows and a large B reads each panel once instead of once per block of rows (which
   * packs A again per chunk, the smaller operand there). With one block of rows per entry,
   * `packs` 0 and `packCols` above 0, each chunk packs its own columns' panels of B (from `b`, as
   * the blocks below would), just before it computes them: the panels are then in the cache of
   * the thread that reads them, and no chunk waits for the others' packing.
   */
  colsPerChunk: number;
  /** Scratch for packing A: participant id i uses apBase + i·apStride. */
  apBase: number;
  apStride: number;
  /** Participants (the caller is id 0) that take part; workers with a higher id sit this job out. */
  participants: number;
  transA: boolean;
  /**
   * Blocks of B to pack before any product chunk (0: B is packed already). The first `packs`
   * chunks claimed pack them: block q packs columns [j0, j0 + packCols) of entry ⌊q/packsPerEntry⌋
   * (j0 = (q mod packsPerEntry)·packCols, a whole number of panels; the last block of an entry
   * takes the rest and the zero padding) from B at `b` (entry e at b + e·bBatch bytes; row stride
   * ldb elements, or Bᵀ stored when transB) into the panels at bp, the slots the one call packing
   * all of B writes. The products' chunks start once every block is packed.
   */
  packs: number;
  packsPerEntry: number;
  packCols: number;
  b: number;
  bBatch: number;
  ldb: number;
  transB: boolean;
  /**
   * A B gathered from `b` (matmulModule.ts: a convolution's columns read from its padded image),
   * through the byte-offset tables at bTables: 0 for none, 1 packed by packBG, 2 by packBTG_f32;
   * ldb is then the packer's step (1 or 2) and transB unused.
   */
  bGather: number;
  bTables: number;
}

const JOB_FIELDS: readonly (keyof MatmulJob)[] = [
  'f64', 'a', 'aBatch', 'lda', 'bp', 'bpBatch', 'c', 'cBatch', 'ldc', 'm', 'n', 'k', 'rowsPerChunk', 'chunksPerBatch', 'nChunks', 'apBase', 'apStride', 'participants', 'transA',
];
/** Where a product's participant count lies in the control block (the job's fields from PARAMS on). */
const MATMUL_PARTICIPANTS = PARAMS + JOB_FIELDS.indexOf('participants');
/** Where a range job's participant count lies (its parameters from RANGE_PARAMS on). */
const RANGE_PARTICIPANTS = RANGE_PARAMS + 3;
const PACK_FIELDS: readonly (keyof MatmulJob)[] = ['packs', 'packsPerEntry', 'packCols', 'b', 'bBatch', 'ldb', 'transB', 'bGather', 'bTables'];

/** The exports of an instance of the matmul module that a chunk needs. */
export type MatmulExports = Record<string, (...args: number[]) => void>;

/**
 * Claims and computes chunks of the job published under `epoch` until none is left, as
 * participant `id`. Self-contained (it reads nothing outside its arguments): the workers run its
 * source text, so the caller and the workers share one definition.
 */
export function runChunks(ex: MatmulExports, ctl: Int32Array, counter: BigUint64Array, epoch: number, id: number): void {
  // Parameters at ctl[8…26], in the order of JOB_FIELDS.
  if (id >= ctl[25]!) return;
  const f64 = ctl[8] === 1;
  const gemm = f64 ? ex.gemm_f64! : ex.gemm_f32!;
  const compact = f64 ? ex.compact_f64! : ex.compact_f32!;
  const E = f64 ? 8 : 4;
  const a = ctl[9]!, aBatch = ctl[10]!, lda = ctl[11]!, bp = ctl[12]!, bpBatch = ctl[13]!, c = ctl[14]!, cBatch = ctl[15]!;
  const ldc = ctl[16]!, m = ctl[17]!, n = ctl[18]!, k = ctl[19]!, rowsPerChunk = ctl[20]!, chunksPerBatch = ctl[21]!, nChunks = ctl[22]!;
  const ap = ctl[23]! + id * ctl[24]!;
  const transA = ctl[26]!;
  // Packing, at ctl[35…43] in the order of PACK_FIELDS; blocks packed so far at ctl[44].
  const packs = ctl[35]!, packsPerEntry = ctl[36]!, packCols = ctl[37]!, b = ctl[38]!, bBatch = ctl[39]!, ldb = ctl[40]!, transB = ctl[41]!;
  const bGather = ctl[42]!, bTables = ctl[43]!;
  // Columns per chunk (0: whole rows) at ctl[45], and the column blocks of each block of rows;
  // B to pack but no blocks of it: each chunk packs its own columns (MatmulJob.colsPerChunk).
  const colsPerChunk = ctl[45]!;
  const colBlocks = colsPerChunk > 0 ? Math.ceil(ldc / colsPerChunk) : 1;
  const packInChunks = colsPerChunk > 0 && packs === 0 && packCols > 0;
  const pack = f64 ? (transB === 1 ? ex.packBT_f64! : ex.packB_f64!) : (transB === 1 ? ex.packBT_f32! : ex.packB_f32!);
  const packGathered = bGather === 2 ? ex.packBTG_f32! : f64 ? ex.packBG_f64! : ex.packBG_f32!;
  // Bytes from one row of A to the next: a row of lda elements, or one element of a stored row of Aᵀ.
  const aRow = transA === 1 ? E : lda * E;
  /** Columns [j0, j0 + cols) of entry `entry`'s B into their panels (packB(src, ld, cols, k, dst), packBT(src, ld, rows, k, dst), packBG(src, tables, j0, cols, k, dst), packBTG_f32 likewise). */
  const packColumns = (entry: number, j0: number, cols: number) => {
    const panels = bp + entry * bpBatch + j0 * k * E;
    if (bGather !== 0) packGathered(b + entry * bBatch, bTables, j0, cols, k, panels, ldb);
    else pack(b + entry * bBatch + (transB === 1 ? j0 * ldb : j0) * E, ldb, cols, k, panels);
  };
  const tag = BigInt(epoch >>> 0);
  for (;;) {
    const v = Atomics.load(counter, 0);
    // Another job's counter (or this one closed): these parameters may be stale, so stop.
    if (v >> 32n !== tag) return;
    const claimed = Number(v & 0xffffffffn);
    if (claimed >= packs + nChunks) return;
    if (Atomics.compareExchange(counter, 0, v, v + 1n) !== v) continue;
    if (claimed < packs) {
      // A block of B's columns into its panels.
      const entry = Math.floor(claimed / packsPerEntry);
      const j0 = (claimed - entry * packsPerEntry) * packCols;
      try {
        packColumns(entry, j0, Math.min(packCols, n - j0));
      } catch {
        Atomics.store(ctl, 3, 1);
      }
      // Counted as done, not as a worker's chunk (WORKER_CHUNKS counts products computed).
      Atomics.add(ctl, 44, 1);
      if (Atomics.add(ctl, 1, 1) + 1 === packs + nChunks) Atomics.notify(ctl, 1);
      continue;
    }
    // Every block claimed before this chunk: wait for the last ones to be packed. A spin, not
    // Atomics.wait (which a browser's main thread may not call): what is left is at most one
    // block per other participant.
    while (Atomics.load(ctl, 44) < packs);
    const index = claimed - packs;
    const batch = Math.floor(index / chunksPerBatch);
    const within = index - batch * chunksPerBatch;
    const rowBlock = Math.floor(within / colBlocks);
    const r0 = rowBlock * rowsPerChunk;
    const rows = Math.min(rowsPerChunk, m - r0);
    // Columns [j0, j0 + cols): their panels of B (k·nr elements each) and their part of C's rows.
    const j0 = (within - rowBlock * colBlocks) * colsPerChunk;
    const cols = colsPerChunk > 0 ? Math.min(colsPerChunk, ldc - j0) : ldc;
    const cChunk = c + batch * cBatch + (r0 * ldc + j0) * E;
    try {
      if (packInChunks) packColumns(batch, j0, cols);
      gemm(a + batch * aBatch + r0 * aRow, lda, bp + batch * bpBatch + j0 * k * E, cChunk, ldc, rows, cols, k, ap, transA);
      // Rows of the chunk to stride n, in place, so the caller copies each chunk out in one go
      // (whole rows only: column chunks write C where it lies, ldc = n).
      if (ldc !== n) compact(cChunk, ldc, n, rows);
    } catch {
      Atomics.store(ctl, 3, 1);
    }
    if (id !== 0) Atomics.add(ctl, 4, 1);
    if (Atomics.add(ctl, 1, 1) + 1 === packs + nChunks) Atomics.notify(ctl, 1);
  }
}

/** A generated range function: computes units [start, end) of its output over `arrays`. */
export type RangeFunction = (arrays: readonly unknown[], start: number, end: number) => void;

/**
 * Claims and runs chunks of the range job published under `epoch` until none is left. `fn`
 * null: this participant has not got the job's function or arrays (a worker that woke before
 * its message could be read), so it claims nothing. Self-contained, like runChunks.
 */
export function runRangeChunks(fn: RangeFunction | null, arrays: readonly unknown[], ctl: Int32Array, counter: BigUint64Array, epoch: number, id: number): void {
  // Parameters at ctl[27…30]: chunks, units per chunk, units, participants. The counts are read
  // as unsigned: a range of 2^31 units or more (a tensor holds up to 2^32 - 1 elements) is stored
  // in the Int32Array modulo 2^32, and read as signed it was negative, so every chunk was empty.
  if (fn === null || id >= ctl[30]!) return;
  const nChunks = ctl[27]! >>> 0, per = ctl[28]! >>> 0, units = ctl[29]! >>> 0;
  const tag = BigInt(epoch >>> 0);
  for (;;) {
    const v = Atomics.load(counter, 0);
    if (v >> 32n !== tag) return;
    const index = Number(v & 0xffffffffn);
    if (index >= nChunks) return;
    if (Atomics.compareExchange(counter, 0, v, v + 1n) !== v) continue;
    try {
      fn(arrays, index * per, Math.min(units, (index + 1) * per));
    } catch {
      Atomics.store(ctl, 3, 1);
    }
    if (id !== 0) Atomics.add(ctl, 4, 1);
    if (Atomics.add(ctl, 1, 1) + 1 === nChunks) Atomics.notify(ctl, 1);
  }
}

/**
 * A worker's program: instantiate the module on the shared memory, then serve jobs until STOP.
 * A range job names its function and arrays in the job block (see the protocol at the top of this
 * file): arrays by address, views made once; functions by id, built from their source in the heap
 * on first use. Where messages reach it (Node), arrays sent by id, sources where there is no heap,
 * and ids to forget come in a message posted before the job is published, read synchronously when
 * the worker wakes.
 */
function workerSource(helpers: string): string {
  // runChunks, runRangeChunks and the helpers reach the workers as their source text
  // (Function.prototype.toString): a bundler's keepNames (esbuild's option; Vite and other builds
  // set it) rewrites their inner functions to call a __name helper of the bundle's own, which a
  // worker lacks, and every worker died at start. The shim is what that helper does for a worker.
  return `'use strict';
var __name = (target) => target;
const runChunks = ${runChunks.toString()};
const runRangeChunks = ${runRangeChunks.toString()};
function start(data) {
  const ex = new WebAssembly.Instance(data.module, { env: { memory: data.memory } }).exports;
  const ctl = new Int32Array(data.control);
  const counter = new BigUint64Array(data.control, ${COUNTER_BYTE}, 1);
  const block = new Int32Array(data.jobBlock);
  const sources = data.sources ? new Int32Array(data.sources) : null;
  const acks = data.sourceAcks ? new Int32Array(data.sourceAcks) : null;
  const ackRow = (data.id - 1) * ${RANGE_FUNCTION_LIMIT};
  const wt = typeof require === 'function' ? require('node:worker_threads') : null;
  const build = (() => { ${helpers} })();
  const built = new Map();
  let newestBuilt = -1;
  const arrays = new Map();
  const VIEW_TYPES = ${JSON.stringify(VIEW_TYPES)}.map((name) => globalThis[name]);
  // Views of the shared memory by address (a view stays valid: a shared memory never detaches).
  const views = new Map();
  // The CPU's heap (the shared memory, where the caller's float arrays live): the elementwise
  // kernels run on it, with this worker's scratch where the caller's table says, and read or
  // write the arrays named by address where they lie.
  const heapArrays = new WeakSet();
  if (data.scratchTable) {
    const table = new Int32Array(data.scratchTable);
    build.H.wasmElementwiseInstance.heap = {
      memory: data.memory,
      scratch(bytes) {
        if (table[2 * data.id + 1] < bytes) throw new Error('cpu threads: a worker scratch of ' + table[2 * data.id + 1] + ' bytes for a pass of ' + bytes);
        return table[2 * data.id];
      },
      holds: (a) => heapArrays.has(a),
    };
  }
  // A source that does not build here (an engine that refuses new Function) is kept as null: this
  // worker then sits out that function's jobs, and does not try again each job.
  const tryBuild = (source) => {
    try {
      return build(source);
    } catch {
      return null;
    }
  };
  // Keeps a built function. Ids only grow and the caller keeps the last ${RANGE_FUNCTION_LIMIT}, so an id
  // ${RANGE_FUNCTION_LIMIT} or more below the newest one built is one no job will name again.
  const keep = (id, fn) => {
    built.set(id, fn);
    if (id > newestBuilt) newestBuilt = id;
    if (built.size > ${RANGE_FUNCTION_LIMIT}) for (const old of built.keys()) if (old <= newestBuilt - ${RANGE_FUNCTION_LIMIT}) built.delete(old);
  };
  const view = (kind, address, length) => {
    let v = views.get(address);
    if (v === undefined || v.length !== length || v.constructor !== VIEW_TYPES[kind - 1]) {
      if (views.size >= 4096) views.clear();
      v = new VIEW_TYPES[kind - 1](data.memory.buffer, address, length);
      views.set(address, v);
      heapArrays.add(v);
    }
    return v;
  };
  // Function id, built on first use from its source in the heap while the table lists it (null: not available).
  const rangeFunction = (id) => {
    const fn = built.get(id);
    if (fn !== undefined) return fn;
    if (sources === null) return null;
    const row = 3 * (id % ${RANGE_FUNCTION_LIMIT});
    if (Atomics.load(sources, row) !== id + 1) return null;
    const at = sources[row + 1], length = sources[row + 2];
    const units = new Uint16Array(data.memory.buffer, at, length);
    let source = '';
    for (let i = 0; i < length; i += 8192) source += String.fromCharCode.apply(null, units.subarray(i, Math.min(length, i + 8192)));
    // Still listed: the region was not freed (nor rewritten) while it was read.
    if (Atomics.load(sources, row) !== id + 1) return null;
    const made = tryBuild(source);
    keep(id, made);
    Atomics.store(acks, ackRow + (id % ${RANGE_FUNCTION_LIMIT}), id + 1);
    return made;
  };
  const args = [];
  for (;;) {
    const epoch = Atomics.load(ctl, ${EPOCH});
    if (Atomics.load(ctl, ${STOP}) !== 0) break;
    if (wt) {
      for (let m; (m = wt.receiveMessageOnPort(wt.parentPort)) !== undefined; ) {
        const j = m.message;
        for (const id of j.forget) arrays.delete(id);
        for (const [id, a] of j.arrays) arrays.set(id, a);
        if (j.source !== undefined) keep(j.id, tryBuild(j.source));
        if (data.id === 1) Atomics.store(ctl, ${HELD_ARRAYS}, arrays.size);
      }
    }
    if (Atomics.load(ctl, ${KIND}) === 1) {
      // A stale or torn read of the block claims nothing (see runRangeChunks); one that names
      // memory past the end throws here, and claims nothing either.
      let fn = null;
      try {
        fn = rangeFunction(block[${BLOCK_FUNCTION}]);
        const count = block[${BLOCK_COUNT}];
        args.length = count;
        for (let i = 0, e = ${BLOCK_ARRAYS}; i < count && fn !== null; i++, e += 3) {
          const kind = block[e];
          const a = kind === 0 ? arrays.get(block[e + 1]) : view(kind, block[e + 1], block[e + 2]);
          if (a === undefined) fn = null;
          else args[i] = a;
        }
      } catch {
        fn = null;
      }
      runRangeChunks(fn, args, ctl, counter, epoch, data.id);
      args.length = 0;
    } else runChunks(ex, ctl, counter, epoch, data.id);
    // Spin until the next job (or STOP, which also moves the epoch) or the spin time is over, then
    // block. A worker past the job's participants (setCpuThreads lowered below the pool's size)
    // sat it out: it blocks at once rather than take a core for the spin time after every job.
    const participants = Atomics.load(ctl, Atomics.load(ctl, ${KIND}) === 1 ? ${RANGE_PARTICIPANTS} : ${MATMUL_PARTICIPANTS});
    const spinEnd = data.id >= participants ? 0 : performance.now() + Atomics.load(ctl, ${SPIN}) / 1000;
    let seen = false;
    for (;;) {
      if (Atomics.load(ctl, ${EPOCH}) !== epoch) {
        seen = true;
        break;
      }
      if (performance.now() >= spinEnd) {
        Atomics.wait(ctl, ${EPOCH}, epoch);
        break;
      }
    }
    if (seen && Atomics.load(ctl, ${STOP}) === 0) Atomics.add(ctl, ${JOBS_SEEN_SPINNING}, 1);
  }
  if (typeof close === 'function') close();
}
if (typeof require === 'function') start(require('node:worker_threads').workerData);
else self.onmessage = (event) => start(event.data);
`;
}

/**
 * Microseconds a worker spins after a job before blocking: 1 ms. Measured on the 2-core
 * development machine, steps alternated between spin times in one process: two-thread SSM-VR
 * steps 8.20 ms with no spin, 7.99 with 300 µs, 7.83 with 1 ms, 7.94 with 3 ms; DSM 6.35, 6.20,
 * 6.07, 5.87 (benchmarks/NOTES.md). A worker then burns at most 1 ms of a core after the last job
 * of a burst; GOMP's default spin is of the same order.
 */
export const WORKER_SPIN_MICROSECONDS = 1000;

/** `us` as a spin time (a whole number of microseconds the control block holds), or a RangeError. */
export function checkSpinMicroseconds(us: number): number {
  if (!(Number.isInteger(us) && us >= 0 && us < 2 ** 31)) throw new RangeError(`cpu threads: a spin time is a whole number of microseconds below 2^31, got ${us}`);
  return us;
}

/** Arrays one range job may use (the job block's size). */
const RANGE_ARRAYS_MAX = 1022;
/**
 * The job block (Int32): the function's id, the array count, then per array three entries: its
 * kind (0: by id, sent by message; k ≥ 1: a view of type VIEW_TYPES[k − 1] of the shared memory),
 * its address (or id), its length.
 */
const BLOCK_FUNCTION = 0;
const BLOCK_COUNT = 1;
const BLOCK_ARRAYS = 2;
const BLOCK_INTS = BLOCK_ARRAYS + 3 * RANGE_ARRAYS_MAX;
/** The typed arrays a job names by address: the heap's (float32, float64) and any it stages. */
const VIEW_TYPES = ['Float32Array', 'Float64Array', 'Int32Array', 'Uint8Array', 'Uint32Array', 'Int8Array', 'Int16Array', 'Uint16Array', 'BigInt64Array', 'BigUint64Array'] as const;
/**
 * The bytes one job may stage: 16 MiB. Where workers read no messages (a browser), every array
 * outside the heap is staged: bool and int32 arrays (the heap holds float arrays only), and float
 * arrays made past the heap's growth limit. A copy in and out costs about a tenth of a job on a
 * bool array (a byte an element, against ≥ 2 ns of work); past the limit the job stays on one
 * thread rather than grow the heap, which never shrinks, by as much.
 */
const STAGE_LIMIT_BYTES = 16 * 2 ** 20;

/** Bytes of forgotten arrays after which the workers are replaced (ThreadPool.restartDue): the CPU array pool's own limit on free arrays. */
const RESTART_FORGOTTEN_BYTES = 256 * 2 ** 20;

/** Range functions each worker keeps built (the caller numbers sources with the same limit). */
const RANGE_FUNCTION_LIMIT = 1024;

/** A range job: `units` units of work split in chunks, run by a generated function on shared arrays. */
export interface RangeJob {
  /** The function's source (a function expression of (B, start, end)), built by the workers' `build`. */
  readonly source: string;
  /** The function built on this thread from the same source. */
  readonly fn: RangeFunction;
  /** The function's B: arrays of the CPU's heap, or any others (ThreadPool.runRanges says which can reach the workers). */
  readonly arrays: readonly unknown[];
  readonly units: number;
  readonly unitsPerChunk: number;
  readonly participants: number;
}

interface WorkerHandle {
  terminate(): unknown;
  postMessage?(message: unknown): void;
}

/** What a worker needs to start: the compiled module, the shared memory, the control block, its id. */
interface WorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** With a heap: per participant id, the byte address and bytes of its scratch (Int32 pairs). */
  scratchTable: SharedArrayBuffer | null;
  control: SharedArrayBuffer;
  /** A range job's function and arrays (BLOCK_*). */
  jobBlock: SharedArrayBuffer;
  /**
   * With a heap: the sources of range functions, a row of three Int32 per id mod
   * RANGE_FUNCTION_LIMIT (id + 1 while listed, its byte address, its UTF-16 length), and per worker
   * (id − 1) a row of RANGE_FUNCTION_LIMIT entries, id + 1 at id mod the limit once it built id.
   */
  sources: SharedArrayBuffer | null;
  sourceAcks: SharedArrayBuffer | null;
  id: number;
}

/** How workers are made here, or null where they cannot be (no Worker, no shared memory). */
export type WorkerFactory = (source: string, data: WorkerData, died: () => void) => WorkerHandle;

type NodeWorkerThreads = {
  Worker: new (source: string, options: { eval: boolean; workerData: unknown }) => WorkerHandle & { unref(): void; on(event: string, f: (e: unknown) => void): void };
};

let nodeWorkerThreads: NodeWorkerThreads | null | undefined;

/** Node's worker_threads, loaded synchronously where Node allows it (20.16+), else null. */
function loadNodeWorkerThreads(): NodeWorkerThreads | null {
  if (nodeWorkerThreads !== undefined) return nodeWorkerThreads;
  const proc = (globalThis as { process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown } }).process;
  nodeWorkerThreads = proc?.versions?.node && typeof proc.getBuiltinModule === 'function' ? (proc.getBuiltinModule('node:worker_threads') as NodeWorkerThreads) : null;
  return nodeWorkerThreads;
}

/**
 * Whether workers here read messages synchronously (Node's receiveMessageOnPort), so that a range
 * job can send them arrays outside the heap, and sources where there is no heap. A Web Worker
 * blocked in Atomics.wait never sees messages: in a browser range jobs go through the heap.
 */
export function syncMessagesSupported(): boolean {
  return !syncMessagesOff && loadNodeWorkerThreads() !== null;
}

let syncMessagesOff = false;

/** For tests: `false` makes pools started from now on work as in a browser (no message reaches a worker); undefined restores. */
export function setSyncMessagesForTesting(on: false | undefined): void {
  syncMessagesOff = on === false;
}

/** The platform's way to start a worker on `source`, or null. */
export function workerFactory(): WorkerFactory | null {
  const node = loadNodeWorkerThreads();
  if (node) {
    return (source, data, died) => {
      const worker = new node.Worker(source, { eval: true, workerData: data });
      // A pool must never keep the process alive once the user's work is done.
      worker.unref();
      worker.on('error', died);
      return worker;
    };
  }
  const g = globalThis as { Worker?: new (url: string) => WorkerHandle & { postMessage(d: unknown): void; onerror: unknown }; process?: unknown };
  if (g.process === undefined && typeof g.Worker === 'function' && typeof Blob === 'function' && typeof URL === 'function') {
    const Worker = g.Worker;
    let url: string | undefined;
    return (source, data, died) => {
      url ??= URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
      const worker = new Worker(url);
      worker.onerror = died;
      worker.postMessage(data);
      return worker;
    };
  }
  return null;
}

/**
 * Logical cores this process may use, for the default thread count: in Node the cores it may run
 * on (availableParallelism), at most its control group's CPU quota where one is set (a container's
 * CPU limit: docker --cpus, a Kubernetes limit), which Node does not count. More threads than that
 * take turns on the cores the quota allows, and the pool's spinning workers then hold up the
 * thread whose chunk is left (4 threads on one core: a product 4 times slower than on one).
 */
export function hardwareThreads(): number {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const os = typeof proc?.getBuiltinModule === 'function' ? (proc.getBuiltinModule('node:os') as { availableParallelism?: () => number; cpus(): unknown[] }) : null;
  if (os) {
    const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    const fs = proc!.getBuiltinModule!('node:fs') as { readFileSync(path: string, encoding: 'utf8'): string };
    const quota = cgroupCpuQuota((path) => {
      try {
        return fs.readFileSync(path, 'utf8');
      } catch {
        return null;
      }
    });
    return quota === null ? cores : Math.min(cores, quota);
  }
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

/**
 * The CPU quota of this process's control group in whole cores (rounded up, at least 1), from
 * Linux's cgroup v2 file cpu.max ("quota period", or "max period" for none) or cgroup v1's
 * cpu.cfs_quota_us (−1 for none) over cpu.cfs_period_us, as a container sees its own group at
 * /sys/fs/cgroup; null where no quota is set or no file can be read (`read` returns null).
 */
export function cgroupCpuQuota(read: (path: string) => string | null): number | null {
  // Number() of a missing file (undefined), 'max' or garbage is NaN, and fails the test.
  const cores = (quota: string | undefined, period: string | undefined): number | null => {
    const q = Number(quota);
    const p = Number(period);
    return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? Math.max(1, Math.ceil(q / p)) : null;
  };
  const v2 = read('/sys/fs/cgroup/cpu.max');
  if (v2 !== null) {
    const [quota, period] = v2.trim().split(/\s+/);
    return cores(quota, period);
  }
  return cores(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim(), read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim());
}

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
function canBlock(): boolean {
  try {
    // A value mismatch returns at once; a thread that may not block throws before comparing.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/** The kind a job block gives a typed array named by address: 1 + its index in VIEW_TYPES, or 0. */
function viewKind(a: unknown): number {
  if (!ArrayBuffer.isView(a)) return 0;
  return VIEW_TYPES.indexOf(a.constructor.name as (typeof VIEW_TYPES)[number]) + 1;
}

/** How a job's array reaches the workers (ThreadPool.route). */
const ROUTE_NONE = 0;
const ROUTE_HEAP = 1;
const ROUTE_STAGE = 2;
const ROUTE_MESSAGE = 3;

/** Bytes a staged array takes in the staging region: whole 64-byte units, so a kernel's last vector stays in its own. */
function stagedBytes(a: ArrayBufferView): number {
  return Math.max(64, Math.ceil(a.byteLength / 64) * 64);
}

/** participants − 1 workers plus the calling thread. */
export class ThreadPool {
  private readonly control = new SharedArrayBuffer(CONTROL_BYTES);
  private readonly ctl = new Int32Array(this.control);
  private readonly counter = new BigUint64Array(this.control, COUNTER_BYTE, 1);
  private readonly workers: WorkerHandle[] = [];
  private readonly blocking = canBlock();
  private epoch = 0;
  private closed = false;
  /**
   * Set when a worker died (its source would not run in this build, say): the pool then gives way
   * to one thread (wasmMatmul.ts's wasmThreads), as when a worker cannot start, rather than keep
   * publishing every job to workers that never take part.
   */
  workerDied = false;

  /** Range function ids by source, first in first out (the workers keep the same ids). */
  private readonly rangeIds = new Map<string, number>();
  private nextRangeId = 0;
  private readonly jobBlock = new SharedArrayBuffer(4 * BLOCK_INTS);
  private readonly block = new Int32Array(this.jobBlock);
  /** Whether the workers read messages (syncMessagesSupported): arrays outside the heap can go by id. */
  private readonly messages = syncMessagesSupported();
  /** With a heap: the regions of the sources listed for the workers, by function id, the table listing them, and the workers' records of what they built. */
  private readonly sourceRegions = new Map<number, HeapRegion>();
  private readonly sourceTable: Int32Array | null;
  private readonly sourceAcks: Int32Array | null;
  /** With a heap: the region arrays are staged in for a job; the arrays staged for the running job and their copies there. */
  private staging: HeapRegion | null = null;
  private readonly staged: ArrayBufferView[] = [];
  private readonly stagedCopies: ArrayBufferView[] = [];
  /** Views of the staging region made for earlier jobs, by address (a step stages the same arrays each call: no new view). */
  private readonly stageViews = new Map<number, ArrayBufferView>();
  /** The arrays this thread's chunks run on (the job's, with the staged copies in place of the staged arrays). */
  private readonly callerArrays: unknown[] = [];
  /** Arrays of the running job the workers get by message, with their ids (a step's jobs have none: no new array each job). */
  private readonly fresh: [number, unknown][] = [];
  private posted = 0;
  /** How each array of the job being named reaches the workers (ROUTE_*), found by nameable for nameArrays. */
  private readonly routes: number[] = [];
  /** The function id the next job names (nameFunction), written into the block once it opens. */
  private nextFunction = 0;
  /**
   * Ids of the arrays the workers hold, by array: sent once, then named by id. When this thread
   * lets an array go (garbage collected, or dropped by the CPU's array pool: see forget), the
   * workers are told to forget it with the next message.
   */
  private readonly arrayIds = new WeakMap<object, number>();
  private nextArrayId = 0;
  private forgotten: number[] = [];
  private readonly registry = new FinalizationRegistry<{ id: number; bytes: number }>(({ id, bytes }) => this.forgetId(id, bytes));
  /** Bytes of the arrays the workers hold that this thread still has, and of those forgotten since the pool started. */
  private heldBytes = 0;
  private forgottenBytes = 0;

  /** With a heap: the workers' scratch regions (index: participant id), and the table they read them from. */
  private readonly scratchRegions: (HeapRegion | null)[] = [];
  private readonly scratchTable: Int32Array | null;

  /**
   * `helpers`: the body of a function returning how a worker builds a range function from its
   * source (jsCode.ts's helpersSource: a worker shares no code with this thread). `heap`: the
   * CPU's heap when `memory` is its memory; the workers' elementwise kernels then run on it (each
   * with a scratch region the pool sizes before a range job) and read and write the heap's arrays
   * where they lie.
   */
  constructor(readonly participants: number, module: WebAssembly.Module, memory: WebAssembly.Memory, makeWorker: WorkerFactory, helpers: string, spinMicroseconds = WORKER_SPIN_MICROSECONDS, private readonly heap: CpuHeap | null = null) {
    // Closed until the first job: a worker that starts now finds nothing to claim.
    Atomics.store(this.counter, 0, 0xffffffffn);
    this.spinMicroseconds = spinMicroseconds;
    const source = workerSource(helpers);
    const table = heap ? new SharedArrayBuffer(8 * participants) : null;
    this.scratchTable = table ? new Int32Array(table) : null;
    const sources = heap ? new SharedArrayBuffer(12 * RANGE_FUNCTION_LIMIT) : null;
    const acks = heap ? new SharedArrayBuffer(4 * RANGE_FUNCTION_LIMIT * Math.max(1, participants - 1)) : null;
    this.sourceTable = sources ? new Int32Array(sources) : null;
    this.sourceAcks = acks ? new Int32Array(acks) : null;
    try {
      for (let id = 1; id < participants; id++) {
        this.workers.push(makeWorker(source, { module, memory, scratchTable: table, control: this.control, jobBlock: this.jobBlock, sources, sourceAcks: acks, id }, () => (this.workerDied = true)));
      }
    } catch (e) {
      // A worker could not start (the system refused a thread): stop those already started, which
      // would otherwise wait for jobs for good, then report the failure.
      this.close();
      throw e;
    }
  }

  /** Runs `job` on the calling thread and the workers; returns when every chunk is done. */
  run(job: MatmulJob, exports: MatmulExports): void {
    const { ctl, counter } = this;
    const tag = this.open();
    ctl[KIND] = 0;
    for (const [fields, at] of [[JOB_FIELDS, PARAMS], [PACK_FIELDS, PACK_PARAMS]] as const) {
      fields.forEach((field, i) => {
        const value = job[field];
        ctl[at + i] = typeof value === 'boolean' ? (value ? 1 : 0) : value;
      });
    }
    ctl[PACKED] = 0;
    ctl[COLS_PER_CHUNK] = job.colsPerChunk;
    this.publish(tag);
    runChunks(exports, ctl, counter, this.epoch | 0, 0);
    this.finish(job.packs + job.nChunks, 'cpu threads: a matmul chunk failed in a worker');
  }

  /**
   * Starts a job: a new epoch, with the counter retagged before the caller rewrites the job's
   * parameters, so that from here no claim for an earlier job can succeed. Returns the epoch's tag.
   */
  private open(): bigint {
    if (this.closed) throw new Error('cpu threads: the pool was closed');
    this.epoch = (this.epoch + 1) >>> 0 || 1;
    const tag = BigInt(this.epoch) << 32n;
    Atomics.store(this.counter, 0, tag | 0xffffffffn);
    return tag;
  }

  /** Publishes the job whose parameters are written: opens its counter and wakes the workers. */
  private publish(tag: bigint): void {
    const { ctl } = this;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, FAILED, 0);
    Atomics.store(this.counter, 0, tag);
    Atomics.store(ctl, EPOCH, this.epoch | 0);
    Atomics.notify(ctl, EPOCH);
  }

  /**
   * Once the caller has claimed what it could: waits for all `nChunks`, throws `failure` if one
   * failed. It spins for the workers' spin time before it blocks, for the same reason they do (a
   * thread woken from Atomics.wait resumes late): the last chunks usually end within it. Measured
   * in one process, steps alternated with and without: two-thread SSM-VR 8.15 → 8.03 ms, DSM
   * 4.59 → 4.54.
   */
  private finish(nChunks: number, failure: string): void {
    const { ctl } = this;
    const spinEnd = performance.now() + Atomics.load(ctl, SPIN) / 1000;
    for (;;) {
      const done = Atomics.load(ctl, DONE);
      if (done >= nChunks) break;
      if (performance.now() < spinEnd) continue;
      if (this.blocking) Atomics.wait(ctl, DONE, done);
    }
    if (Atomics.load(ctl, FAILED) !== 0) throw new Error(failure);
  }

  /**
   * Runs a range job on the calling thread and the workers; returns true when every chunk is done,
   * false (having run nothing) when an array cannot reach the workers here (outside the heap, not
   * shared where workers read messages, and more than the staging limit to copy) or the heap has no
   * room for what the job needs there: the caller then runs the job itself. Throws when a chunk
   * threw (the caller may rerun the job on one thread to get the error). A steady-state job posts
   * no message: see the protocol at the top of this file.
   */
  runRanges(job: RangeJob): boolean {
    if (job.arrays.length > RANGE_ARRAYS_MAX) throw new Error(`cpu threads: a range job takes at most ${RANGE_ARRAYS_MAX} arrays, got ${job.arrays.length}`);
    if (!(Number.isInteger(job.units) && job.units >= 0 && job.units <= 0xffffffff)) throw new RangeError(`cpu threads: a range job covers at most 2^32 - 1 units (the control block holds 32-bit counts), got ${job.units}`);
    if (!this.nameable(job.arrays)) return false;
    const named = this.nameFunction(job.source);
    if (named === false) return false;
    const source = named === true ? undefined : named;
    const { ctl, counter } = this;
    const tag = this.open();
    // From here no worker claims anything of an earlier job: the block may be rewritten.
    this.sizeScratch();
    const { fresh } = this;
    const arrays = this.nameArrays(job.arrays, fresh);
    if (source !== undefined || fresh.length > 0 || this.forgotten.length > 0) {
      const message = { id: this.block[BLOCK_FUNCTION], source, arrays: fresh.splice(0), forget: this.forgotten };
      this.forgotten = [];
      for (const w of this.workers) w.postMessage!(message);
      this.posted++;
    }
    const nChunks = Math.ceil(job.units / job.unitsPerChunk);
    ctl[KIND] = 1;
    ctl[RANGE_PARAMS] = nChunks;
    ctl[RANGE_PARAMS + 1] = job.unitsPerChunk;
    ctl[RANGE_PARAMS + 2] = job.units;
    ctl[RANGE_PARTICIPANTS] = Math.min(job.participants, this.participants);
    this.publish(tag);
    try {
      runRangeChunks(job.fn, arrays, ctl, counter, this.epoch | 0, 0);
      this.finish(nChunks, 'cpu threads: a range chunk failed');
      // The staged arrays back (written ones change; the others get their own bytes again).
      const { staged, stagedCopies } = this;
      for (let i = 0; i < staged.length; i++) (staged[i] as Float32Array).set(stagedCopies[i] as Float32Array);
    } finally {
      this.staged.length = 0;
      this.stagedCopies.length = 0;
      arrays.length = 0;
    }
    return true;
  }

  /**
   * Whether every array can reach the workers (ThreadPool.route), each one's way kept in `routes`.
   * Makes the staging region large enough for those staged (false if the heap cannot, or they
   * exceed STAGE_LIMIT_BYTES).
   */
  private nameable(arrays: readonly unknown[]): boolean {
    const { routes } = this;
    routes.length = arrays.length;
    let stageBytes = 0;
    for (let i = 0; i < arrays.length; i++) {
      const a = arrays[i];
      const how = (routes[i] = this.route(a));
      if (how === ROUTE_NONE) return false;
      if (how === ROUTE_STAGE) stageBytes += stagedBytes(a as ArrayBufferView);
    }
    if (stageBytes > STAGE_LIMIT_BYTES) return false;
    if (stageBytes > (this.staging?.bytes ?? 0)) {
      if (this.staging) this.heap!.release(this.staging);
      this.stageViews.clear();
      // At least 4 KiB, so that a few small arrays more do not take a new region each time.
      this.staging = this.heap!.scratch(Math.max(stageBytes, 4096));
      if (this.staging === null) return false;
    }
    return true;
  }

  /** How the workers get array `a`: where it lies in the heap, staged, by message, or not at all. */
  private route(a: unknown): number {
    const { heap } = this;
    if (heap?.holds(a as object)) return ROUTE_HEAP;
    if (!ArrayBuffer.isView(a)) return ROUTE_NONE;
    const message = this.messages && a.buffer instanceof SharedArrayBuffer;
    // An array too small for the heap is staged even where it could go by message: a bias row or
    // a scalar then costs the workers no message and no memory, and its copy well under a
    // microsecond against a job of at least 2^16 elements.
    if (heap && viewKind(a) > 0 && (a.byteLength < HEAP_ARRAY_MIN_BYTES || !message)) return ROUTE_STAGE;
    return message ? ROUTE_MESSAGE : ROUTE_NONE;
  }

  /**
   * Writes the job's function id into the block; a new one's source goes into the heap and the
   * table. Returns true, or the source when the message must carry it (a new id, and no heap or no
   * room in it), or false when it can go neither way. Called before the job opens: the workers
   * read only the table's rows, and the caller changes only rows no job names now.
   */
  private nameFunction(source: string): boolean | string {
    const { heap } = this;
    let id = this.rangeIds.get(source);
    let carried: string | undefined;
    if (id === undefined) {
      const region = heap?.scratch(2 * source.length) ?? null;
      if (region === null && !this.messages) return false;
      id = this.nextRangeId++;
      this.rangeIds.set(source, id);
      if (this.rangeIds.size > RANGE_FUNCTION_LIMIT) {
        const [oldSource, oldId] = this.rangeIds.entries().next().value!;
        this.rangeIds.delete(oldSource);
        this.dropSource(oldId);
      }
      if (region !== null) {
        const units = new Uint16Array(heap!.memory.buffer, region.start, source.length);
        for (let i = 0; i < source.length; i++) units[i] = source.charCodeAt(i);
        const table = this.sourceTable!;
        const row = 3 * (id % RANGE_FUNCTION_LIMIT);
        table[row + 1] = region.start;
        table[row + 2] = source.length;
        Atomics.store(table, row, id + 1);
        this.sourceRegions.set(id, region);
      } else carried = source;
    } else if (this.sourceRegions.has(id) && this.builtByAll(id)) this.dropSource(id);
    this.nextFunction = id;
    return carried ?? true;
  }

  /** Whether every worker has built function `id` from its source in the heap. */
  private builtByAll(id: number): boolean {
    const acks = this.sourceAcks!;
    for (let w = 0; w < this.participants - 1; w++) if (Atomics.load(acks, w * RANGE_FUNCTION_LIMIT + (id % RANGE_FUNCTION_LIMIT)) !== id + 1) return false;
    return true;
  }

  /** Unlists function `id`'s source and frees its region, if it has one (a worker reading it then keeps nothing). */
  private dropSource(id: number): void {
    const region = this.sourceRegions.get(id);
    if (region === undefined) return;
    this.sourceRegions.delete(id);
    Atomics.store(this.sourceTable!, 3 * (id % RANGE_FUNCTION_LIMIT), 0);
    this.heap!.release(region);
  }

  /**
   * Writes the job's function and arrays into the block (the heap's by address; staged ones by
   * their copy's address; others by id, those the workers lack added to `fresh`), the ways
   * `nameable` found and kept in `routes`. Returns the arrays this thread's chunks run on.
   * `nameable` said yes, and sized the staging region.
   */
  private nameArrays(arrays: readonly unknown[], fresh: [number, unknown][]): unknown[] {
    const { block, heap, staged, stagedCopies } = this;
    block[BLOCK_FUNCTION] = this.nextFunction;
    block[BLOCK_COUNT] = arrays.length;
    const out = this.callerArrays;
    out.length = arrays.length;
    let stageAt = this.staging?.start ?? 0;
    for (let i = 0, e = BLOCK_ARRAYS; i < arrays.length; i++, e += 3) {
      const a = arrays[i] as ArrayBufferView & { length: number };
      out[i] = a;
      const how = this.routes[i];
      if (how === ROUTE_HEAP) {
        block[e] = viewKind(a);
        block[e + 1] = a.byteOffset;
        block[e + 2] = a.length;
        continue;
      }
      if (how === ROUTE_STAGE) {
        // The same array twice: one copy.
        let copy = stagedCopies[staged.indexOf(a)];
        if (copy === undefined) {
          copy = this.stageViews.get(stageAt);
          if (copy === undefined || copy.constructor !== a.constructor || (copy as Float32Array).length !== a.length) {
            const Type = a.constructor as new (buffer: ArrayBufferLike, offset: number, length: number) => Float32Array;
            copy = new Type(heap!.memory.buffer, stageAt, a.length);
            this.stageViews.set(stageAt, copy);
          }
          (copy as Float32Array).set(a as Float32Array);
          stageAt += stagedBytes(a);
          staged.push(a);
          stagedCopies.push(copy);
        }
        block[e] = viewKind(a);
        block[e + 1] = copy.byteOffset;
        block[e + 2] = a.length;
        out[i] = copy;
        continue;
      }
      let aid = this.arrayIds.get(a);
      if (aid === undefined) {
        aid = this.nextArrayId++;
        this.arrayIds.set(a, aid);
        this.registry.register(a, { id: aid, bytes: a.byteLength }, a);
        this.heldBytes += a.byteLength;
        fresh.push([aid, a]);
      }
      block[e] = 0;
      block[e + 1] = aid;
      block[e + 2] = a.length;
    }
    return out;
  }

  /**
   * This thread lets `array` go for good (the CPU's array pool drops it): the workers forget it
   * with the next message, as for an array garbage collected here, which in a loop that never
   * yields to the event loop would never be announced (finalizers run between tasks).
   */
  forget(array: object): void {
    const id = this.arrayIds.get(array);
    if (id === undefined) return;
    this.arrayIds.delete(array);
    this.registry.unregister(array);
    this.forgetId(id, (array as ArrayBufferView).byteLength);
  }

  /**
   * With a heap: makes every worker's scratch as large as the elementwise kernels' largest pass
   * (the workers are between jobs: none reads its scratch now). A region the heap cannot give
   * leaves the worker's scratch too small; its chunks then throw, and the job runs again here.
   */
  private sizeScratch(): void {
    const { heap, scratchTable: table } = this;
    if (!heap || !table) return;
    const need = elementwiseScratchBytes();
    for (let id = 1; id < this.participants; id++) {
      const r = this.scratchRegions[id];
      if (r && r.bytes >= need) continue;
      if (r) heap.release(r);
      const fresh = need > 0 ? heap.scratch(need) : null;
      this.scratchRegions[id] = fresh;
      table[2 * id] = fresh?.start ?? 0;
      table[2 * id + 1] = fresh?.bytes ?? 0;
    }
  }

  private forgetId(id: number, bytes: number): void {
    this.forgotten.push(id);
    this.heldBytes -= bytes;
    this.forgottenBytes += bytes;
  }

  /**
   * Whether the workers should be replaced to free memory: a worker allocates almost nothing, so
   * nothing need make its engine collect its heap, and the arrays it was told to forget can stay
   * in memory (their SharedArrayBuffers too) until it stops. (Node 20 collects them all the same:
   * cpuRangeThreads.test.ts's bounded-memory fixture peaked at 143 MiB with restarts turned off,
   * 127 with them; a browser need not.) Due once the forgotten bytes exceed both
   * RESTART_FORGOTTEN_BYTES and the bytes still held, so a restart (which sends the live arrays
   * again) costs at most as much as the garbage it frees.
   */
  get restartDue(): boolean {
    return this.forgottenBytes > Math.max(RESTART_FORGOTTEN_BYTES, this.heldBytes);
  }

  /** Range jobs so far that posted a message to the workers (a new array outside the heap, a source with no room in the heap, arrays to forget). */
  get messagesPosted(): number {
    return this.posted;
  }

  /** Sources of range functions listed in the heap for workers that have not built them yet. */
  get heapSources(): number {
    return this.sourceRegions.size;
  }

  /** Arrays the first worker holds for range jobs, as of the last message it read. */
  get workerArrays(): number {
    return Atomics.load(this.ctl, HELD_ARRAYS);
  }

  /** Microseconds each worker spins after a job before it blocks in Atomics.wait; read by a worker after each job. */
  set spinMicroseconds(us: number) {
    Atomics.store(this.ctl, SPIN, checkSpinMicroseconds(us));
  }

  /** Jobs the workers found published before they blocked, so far (JOBS_SEEN_SPINNING). */
  get jobsSeenSpinning(): number {
    return Atomics.load(this.ctl, JOBS_SEEN_SPINNING);
  }

  /** Chunks the workers (not the calling thread) have computed so far. */
  get workerChunks(): number {
    return Atomics.load(this.ctl, WORKER_CHUNKS);
  }

  /** Stops the workers (they leave their wait loop and exit) and releases them. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, EPOCH, 1);
    Atomics.notify(this.ctl, EPOCH);
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
    // Stopped workers run no chunk: their scratch, the staging region and the sources go back to the heap.
    for (const r of this.scratchRegions) if (r) this.heap!.release(r);
    this.scratchRegions.length = 0;
    if (this.staging) this.heap!.release(this.staging);
    this.staging = null;
    for (const id of [...this.sourceRegions.keys()]) this.dropSource(id);
  }
}
