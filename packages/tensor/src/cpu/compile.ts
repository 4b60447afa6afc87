// A program compiled for the CPU: its fusion plan (fusion.ts, shared with WebGPU) lowered to
// generated JavaScript, one function per fused kernel, with a static buffer plan.
//
// - Elementwise groups: one loop per segment computing every root in locals and storing the
//   materialised ones (no intermediate arrays, no per-element calls).
// - Reductions: their input computed inline (the prologue), accumulated in doubles in the order
//   the eager kernels use (row-major over the input), so jit on the CPU gives eager's bits; the
//   epilogue runs on the rounded result.
// - Matmuls: every one through `matmulBatchedInto` or `matmulInto` (the CPU's fusion options make
//   none inline and none a dot product), so a compiled product is the eager product bit for bit
//   whatever those routines do inside; an operand that is not a row-major view of a stored value
//   or a transpose of one (read in place) is gathered into scratch first, by a generated loop; the epilogue
//   is a generated function over a range of rows of C, run once the products are done, split
//   across threads when large (rangeThreads.ts).
// - Threads: an elementwise segment is a generated function over a range of its elements (or of
//   its outermost axis' rows), so a large one splits across the worker pool like an epilogue.
// - Random draws through `fillRandomCpu` (wasm/wasmRandom.ts: fillRandom's bits); scatter-adds a generated loop with the CPU's range errors.
//
// Buffers: inputs are the argument arrays; results and updates take fresh arrays from the pool
// each call (handed out as handles); intermediates live in arrays the compiled program holds,
// shared by values whose lifetimes do not overlap (same dtype and length), allocated on the first
// call and reused by every later one. The lowering (plan, buffer plan, generated functions) is
// cached per backend under the program's structural key, computed before any source is built.

import { type TypedArray, bytesPerElement } from '../dtype.js';
import { type FusedKernel, type FusionOptions, type FusionPlan, isContiguous, kernelCost, kernelNamer, lastReaders, storedReaders, matrixLayout, planFusion, regroupsAxes, regroupsRows, slotReuser, storedView } from '../fusion.js';
import type { Equation, KernelInfo, Program, ProgramVar, CompiledProgram } from '../program.js';
import { type PrimitiveParams, type RandomKey, type ReducePrimitive, isArgReduce, isScan } from '../primitives.js';
import { primitiveDefinition } from '../primitiveRegistry.js';
import { type ProfileSession, profilerSession } from '../profiler.js';
import { fillRandomCpu } from './wasm/wasmRandom.js';
import { shapesEqual, sizeOf, stridesOf } from '../shape.js';
import { type CpuBackend, type CpuHandle, concatInto, gatherInto, padInto, stridedCopy, stridedCopyInto, stridedCopyWasm } from './cpuBackend.js';
import { cpuFastMathEnabled, matmulBatchedInto, matmulGatheredBFits, matmulGatheredBInto, matmulInto } from './cpuMatmul.js';
import { wasmThreads } from './wasm/wasmMatmul.js';
import { argReduceInto, combineJs, identityJs, scanInto } from './eagerKernels.js';
import { buildFunction, rounded } from './jsCode.js';
import { type JsCoords, type JsLocation, type JsWriterContext, JsWriter, UNROLL_MAX, refinement } from './jsWriter.js';
import { type RangeKernel, runRange } from './rangeThreads.js';
import { WASM_ELEMENTWISE_MIN, type WasmGather, type WasmSegment, type WasmSum, planWasmSegment, planWasmRowSum, planWasmSum, wasmElementwiseEnabled } from './wasmPlan.js';

/**
 * The most equations one elementwise kernel of a compiled CPU program computes (planFusion's
 * kernelEquationsMax): 64. Without a bound a long chain became one kernel of thousands of
 * equations, whose WebAssembly module V8 refuses past 1,000 operands and results (the function's
 * parameters) and whose JavaScript kernel V8 leaves unoptimised (its bytecode limit): a 400-step
 * vmap(grad) ran 150 ms a call instead of ~3. Smaller WebAssembly kernels are also faster per
 * equation and to compile (measured at 256, 128, 64 and 32: benchmarks/NOTES.md, "Elementwise
 * kernels of at most 64 equations on the CPU"). The training steps' kernels compute at most 32.
 */
export const CPU_KERNEL_EQUATIONS_MAX = 64;

/**
 * Fusion on the CPU. Matmuls always go through the eager routines (no inline K ≤ 4 sums, no
 * dot-product kernels): jit then stays bit-identical to eager however they accumulate, and the
 * cost is one pass over a skinny operand. A value read by several kernels is stored rather than
 * recomputed once it costs more than `recomputeCostMax` (a transcendental counts 8): a CPU
 * reads a stored [1024,128] array faster than it recomputes an exp per element. A computed value
 * broadcast to WASM_ELEMENTWISE_MIN elements or more is stored too (a softmax's per-row log-sum-exp):
 * the WebAssembly kernels then take its consumers, and it is computed once per row. A pad that
 * several windows read (a convolution's nine) is stored: the windows are then plain copies. A
 * concat of WASM_ELEMENTWISE_MIN elements or more is stored with its computed pieces: the pieces
 * qualify for WebAssembly, and the concat is a copy of blocks when they are contiguous
 * (movementCopy); so is a large gather, whose readers then qualify too. An epilogue also takes
 * values that read the product (or reduction) through a reshape splitting its rows
 * (splitRowEpilogues: a batch of activations [b, s, d] @ [d, h], folded by matmul into one
 * [b·s, d] product): the epilogue computes them at the element's row-major index (epilogueCoords),
 * and the WebAssembly epilogue reads every operand at that index already. An elementwise kernel
 * computes at most CPU_KERNEL_EQUATIONS_MAX equations (below).
 */
export const CPU_FUSION_OPTIONS: FusionOptions = {
  inlineContractionMax: 0, skinnyMatmulMax: 0, recomputeCostMax: 4, matmulEpilogues: true, splitRowEpilogues: true, broadcastStoreMin: WASM_ELEMENTWISE_MIN, padStoreReaders: 2,
  concatStoreMin: WASM_ELEMENTWISE_MIN, movementStoreMin: WASM_ELEMENTWISE_MIN, matmulOperandSources: true,
  kernelEquationsMax: CPU_KERNEL_EQUATIONS_MAX,
};

/** Where a slot's array comes from when the program runs. */
type SlotSource =
  | { readonly kind: 'input'; readonly index: number }
  | { readonly kind: 'result'; readonly value: ProgramVar }
  | {
    readonly kind: 'temp'; readonly dtype: ProgramVar['dtype']; readonly length: number;
    /** Allocated when a step first needs it (Step.run's `need`), not with the others: a convolution's columns that its product packs from the pad. */
    readonly lazy?: boolean;
  };

type Generated = (arrays: readonly TypedArray[]) => void;

/** One step of a call: a generated kernel, a matmul, or a random draw. */
interface Step {
  readonly name: string;
  readonly equations: readonly number[];
  readonly source: string;
  /**
   * `keys`: this call's key values by canonical index (`program.canonicalKeys()`), or null.
   * `need(slot)` allocates a lazy slot's array (SlotSource) before the step writes it there.
   */
  run(slots: readonly TypedArray[], keys: readonly RandomKey[] | null, need: (slot: number) => void): void;
  /** A step that copies one value whose leading axis it can copy a range of (a convolution's columns). */
  readonly entries?: EntryCopy;
  /** A batched product that can run a range of its batch entries, then its epilogue. */
  readonly entryProduct?: EntryProduct;
  /**
   * A value's slot that this step writes or reads only where it falls back (gatheredProduct: a
   * convolution's columns), its value, and for the profiler the product's own equations and the
   * source it reads instead.
   */
  readonly rarelyWritten?: { readonly slot: number; readonly value: number; readonly productEquations: readonly number[]; readonly source: ProgramVar };
}

/** Entries [e0, e1) of the leading axis of a value in `slot` from `offset`, `entryElements` each. */
interface EntryCopy {
  /** The value copied (its id). */
  readonly value: number;
  readonly slot: number;
  readonly offset: number;
  readonly count: number;
  readonly entryElements: number;
  /**
   * Copies entries [e0, e1). Where the first entries (e0 = 0) cannot be copied in WebAssembly,
   * returns false having copied nothing (the step's own run copies the value whole instead).
   */
  tryCopy(slots: readonly TypedArray[], e0: number, e1: number): boolean;
  /**
   * Each entry seen as a rows × cols matrix (row-major), where its element (p, j) is one read of
   * the pieces' common source at rows[p] + cols[j] + e·entryStride (element offsets into the
   * source's slot): a product then packs it from there (GatheredB); null where the pieces do not
   * allow it (several sources, the split between rows and columns not at an axis the concat
   * axis precedes, columns that differ between pieces).
   */
  gathered(rows: number, cols: number): GatheredB | null;
}

/** A piece of a concat copied from where it lies: a strided view of the stored `source`, in `slot` from `offset`, into its box at `to`. */
interface ConcatPiece {
  readonly slot: number;
  readonly offset: number;
  readonly strides: readonly number[];
  readonly shape: readonly number[];
  readonly to: number;
  /** The movements from the piece down to its source (the copy computes them too). */
  readonly equations: readonly number[];
  readonly source: ProgramVar;
}

/** An entry copy's matrices read from their source (EntryCopy.gathered). */
interface GatheredB {
  readonly slot: number;
  /** The value in that slot the products read. */
  readonly source: ProgramVar;
  readonly entryStride: number;
  readonly rows: Int32Array;
  readonly cols: Int32Array;
}

/** A product's batch entries [e0, e1), B read in place from `bSlot` from `bOffset`, `bStep` apart. */
interface EntryProduct {
  /** The product (its id), and whether it reads B stored transposed. */
  readonly value: number;
  readonly transB: boolean;
  readonly aSlot: number;
  readonly bSlot: number;
  readonly cSlot: number;
  readonly bOffset: number;
  readonly bStep: number;
  readonly count: number;
  multiply(slots: readonly TypedArray[], e0: number, e1: number): void;
  /**
   * Entries [e0, e1) with B packed from where `g` reads it (matmulGatheredBInto; g's tables
   * oriented as B, whether or not the product reads its B array transposed), B's own array left
   * unwritten; false, having written nothing, where that product does not run.
   */
  multiplyGathered(slots: readonly TypedArray[], e0: number, e1: number, g: GatheredB): boolean;
  /** The epilogue over all of C, once every entry's product is done. */
  finish(slots: readonly TypedArray[]): void;
}

/** A generated function with its slots; the argument array is refilled every call (no allocation). */
class Bound<F = Generated> {
  private readonly args: TypedArray[];
  constructor(readonly fn: F, readonly bindings: readonly number[]) {
    this.args = new Array<TypedArray>(bindings.length);
  }
  arrays(slots: readonly TypedArray[]): TypedArray[] {
    for (let i = 0; i < this.bindings.length; i++) this.args[i] = slots[this.bindings[i]!]!;
    return this.args;
  }
}

/** What depends only on the program's structure: cached and shared by every program of that structure. */
interface Lowering {
  readonly plan: FusionPlan;
  readonly slots: readonly SlotSource[];
  /** Slot of each output, then of each update value (one slot per distinct value). */
  readonly resultSlots: readonly number[];
  /**
   * Per entry of resultSlots, whether it is handed out as a copy: each result is its own handle,
   * so a value returned twice (or returned and assigned), or an input returned as it is, is copied.
   */
  readonly copyResult: readonly boolean[];
  /** Slots of kind 'result': a fresh pool array each call. */
  readonly freshSlots: readonly number[];
  readonly steps: readonly Step[];
  /** Per step, for the profiler: bytes of stored values it reads and writes, and its product flops. */
  readonly costs: readonly { bytes: number; flops?: number }[];
  readonly usesKeys: boolean;
}

/** Per backend, lowerings by structural key, least recently used first (as WebGPU's cache). */
const loweringCaches = new WeakMap<CpuBackend, Map<string, Lowering>>();
const LOWERING_CACHE_LIMIT = 256;

/**
 * What a lowering depends on besides the program's structure: which float32 math its WebAssembly
 * kernels use (setCpuFastMath; 1 for the fast forms). Part of the cache key, and checked at each
 * call, so that a program compiled before a change follows it. (Whether the WebAssembly kernels
 * run at all, setCpuWasm, is decided at each call: a lowering holds both loops.)
 */
function loweringMode(): number {
  return cpuFastMathEnabled() ? 1 : 0;
}

/** The lowering of `program` under the current mode, from `backend`'s cache or made now. */
function loweringOf(backend: CpuBackend, program: Program, mode: number): Lowering {
  let cache = loweringCaches.get(backend);
  if (!cache) loweringCaches.set(backend, (cache = new Map()));
  const key = `${program.structuralKey()}|mode ${mode}`;
  let lowering = cache.get(key);
  if (lowering) {
    // Moved to the end (a Map iterates in insertion order), so the first key is always the
    // least recently used: a program compiled again and again outlives a burst of others.
    cache.delete(key);
  } else {
    lowering = lower(program, mode === 1);
  }
  cache.set(key, lowering);
  if (cache.size > LOWERING_CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  return lowering;
}

export class CpuCompiledProgram implements CompiledProgram<CpuHandle> {
  private lowering: Lowering;
  /** loweringMode() when `lowering` was made. */
  private mode: number;
  /** Arrays by slot for the current call (inputs and results change; temps stay). */
  private slotArrays: TypedArray[];
  /** The outputs, then the update values: what each call hands out, in that order. */
  private readonly resultValues: readonly ProgramVar[];
  private tempsHeld = false;
  private disposed = false;

  constructor(private readonly backend: CpuBackend, readonly program: Program) {
    this.mode = loweringMode();
    this.lowering = loweringOf(backend, program, this.mode);
    this.slotArrays = new Array<TypedArray>(this.lowering.slots.length);
    this.resultValues = [...program.outputs, ...program.updates.map((u) => u.value)];
  }

  /** Lowers the program again after a change of mode: its intermediates go back to the pool, the new lowering's are made on the call. */
  private relower(mode: number): void {
    this.releaseTemps();
    this.mode = mode;
    this.lowering = loweringOf(this.backend, this.program, mode);
    this.slotArrays = new Array<TypedArray>(this.lowering.slots.length);
  }

  get plan(): FusionPlan {
    return this.lowering.plan;
  }

  run(inputs: readonly CpuHandle[], keyValues: readonly RandomKey[], _donated?: readonly boolean[]): CpuHandle[] {
    if (this.disposed) throw new Error('jit: this compiled program was disposed');
    const mode = loweringMode();
    if (mode !== this.mode) this.relower(mode);
    const { slots, steps, resultSlots, copyResult, freshSlots } = this.lowering;
    const arrays = this.slotArrays;
    if (!this.tempsHeld) this.allocateTemps();
    const session = profilerSession();
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (s.kind === 'input') arrays[i] = session ? this.denseProfiled(session, inputs[s.index]!, s.index) : this.backend.dense(inputs[s.index]!, 'jit');
      else if (s.kind === 'result') arrays[i] = this.backend.allocate(s.value.dtype, sizeOf(s.value.shape), 'jit');
    }
    // Keys by canonical index: the lowering is shared by programs of one structure, whose key
    // variables are different objects in the same canonical order.
    let keys: RandomKey[] | null = null;
    if (this.lowering.usesKeys) {
      const resolved = this.program.resolveKeys(keyValues);
      keys = this.program.canonicalKeys().map((k) => resolved.get(k)!);
    }
    try {
      if (session) this.runProfiled(session, arrays, keys);
      else for (const step of steps) step.run(arrays, keys, this.need);
    } catch (e) {
      for (const i of freshSlots) this.backend.pool.give(arrays[i]!);
      throw e;
    }
    return this.resultValues.map((v, i) => {
      let data = arrays[resultSlots[i]!]!;
      if (copyResult[i]) {
        const copy = this.backend.allocate(v.dtype, data.length);
        copy.set(data);
        data = copy;
      }
      return this.backend.wrap(data, v.shape, v.dtype);
    });
  }

  /**
   * An input's array, as `dense` gives it; an input that is a broadcast, transpose or window
   * view is copied densely first (once: the handle keeps the copy), which is reported to the
   * profiler as `dense_input<i>` with the distinct elements it reads and the elements it writes.
   */
  private denseProfiled(session: ProfileSession, h: CpuHandle, index: number): TypedArray {
    const view = h.view;
    if (!view || view.kind === 'alias') return this.backend.dense(h, 'jit');
    const start = performance.now();
    const data = this.backend.dense(h, 'jit');
    const duration = performance.now() - start;
    const read = h.shape.reduce((n, d, i) => (view.strides[i] === 0 ? n : n * d), 1);
    session.record({ name: `dense_input${index}`, device: this.backend.name, start, duration, bytes: (read + data.length) * bytesPerElement(h.dtype), timing: 'host' });
    return data;
  }

  /** Runs the steps with each timed on the host and reported to the profiler under its name. */
  private runProfiled(session: ProfileSession, arrays: readonly TypedArray[], keys: readonly RandomKey[] | null): void {
    const { steps, costs } = this.lowering;
    steps.forEach((step, i) => {
      const start = performance.now();
      step.run(arrays, keys, this.need);
      const duration = performance.now() - start;
      session.record({ name: step.name, device: this.backend.name, start, duration, ...costs[i]!, timing: 'host' });
    });
  }

  /** A lazy slot's array, allocated and held (counted as live) from its first use until disposed. */
  private readonly need = (slot: number): void => {
    if (this.slotArrays[slot] !== undefined) return;
    const s = this.lowering.slots[slot]!;
    if (s.kind !== 'temp') throw new Error(`internal: slot ${slot} is not an intermediate`);
    const a = this.backend.allocate(s.dtype, s.length, 'jit', true);
    this.slotArrays[slot] = a;
    this.backend.hold(a.byteLength, 1);
  };

  /** Intermediates: allocated on the first call (lazy ones when first needed), held (and counted as live) until disposed. */
  private allocateTemps(): void {
    let bytes = 0;
    let count = 0;
    this.lowering.slots.forEach((s, i) => {
      if (s.kind !== 'temp' || s.lazy) return;
      const a = this.backend.allocate(s.dtype, s.length, 'jit', true);
      this.slotArrays[i] = a;
      bytes += a.byteLength;
      count++;
    });
    this.backend.hold(bytes, count);
    this.tempsHeld = true;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseTemps();
  }

  /** The intermediates back to the pool (no longer counted as held). */
  private releaseTemps(): void {
    if (!this.tempsHeld) return;
    this.tempsHeld = false;
    let bytes = 0;
    let count = 0;
    this.lowering.slots.forEach((s, i) => {
      const a = this.slotArrays[i];
      if (s.kind !== 'temp' || a === undefined) return;
      bytes += a.byteLength;
      count++;
      this.backend.pool.give(a);
    });
    this.backend.hold(-bytes, -count);
    this.slotArrays.fill(undefined as unknown as TypedArray);
  }

  kernels(): readonly KernelInfo[] {
    return this.lowering.steps.map((s) => ({ name: s.name, equations: s.equations, source: s.source }));
  }
}

// ---------------------------------------------------------------------------------------------
// Lowering

interface LoweringContext {
  readonly program: Program;
  readonly plan: FusionPlan;
  /** Per stored value, the stored values whose equations read it (storedReaders). */
  readonly readers: ReadonlyMap<number, readonly number[]>;
  /** Stored values kept alive as long as the columns that view them (sourcesLiveWithConcats). */
  readonly longLived: ReadonlySet<number>;
  readonly slots: SlotSource[];
  readonly locations: Map<number, JsLocation>;
  /** What every kernel writer (and wasmPlan) of this lowering reads of the program: built once. */
  readonly writer: JsWriterContext;
  /** A static scratch array (a temp no other value shares) of `length` elements of `dtype`. */
  scratch(dtype: ProgramVar['dtype'], length: number): number;
  /**
   * A scratch array that only the step being lowered uses while it runs (a dense copy of a view,
   * a row of sums): distinct from the others this step takes, shared with other steps' of the
   * same dtype and length, since steps run one after another.
   */
  stepScratch(dtype: ProgramVar['dtype'], length: number): number;
  /** The kernel's name from the one its shape suggests: unique in the program (kernelNamer). */
  kernelName(base: string): string;
}

/** `program`'s lowering; `fastMath`: setCpuFastMath(true) is in force (loweringMode), and its JavaScript loops take the fast forms too. */
function lower(program: Program, fastMath: boolean): Lowering {
  const plan = planFusion(program, CPU_FUSION_OPTIONS);
  const slots: SlotSource[] = [];
  const locations = new Map<number, JsLocation>();
  const rowMajor = (v: ProgramVar, slot: number): JsLocation => ({ slot, offset: 0, strides: stridesOf(v.shape) });
  program.inputs.forEach((v, index) => locations.set(v.id, rowMajor(v, slots.push({ kind: 'input', index }) - 1)));
  const resultSlots = [...program.outputs, ...program.updates.map((u) => u.value)].map((v) => {
    const known = locations.get(v.id);
    if (known) return known.slot;
    const slot = slots.push({ kind: 'result', value: v }) - 1;
    locations.set(v.id, rowMajor(v, slot));
    return slot;
  });
  // Intermediates: one array per (dtype, length) and lifetime, by the kernels that make and read them.
  const readers = storedReaders(plan);
  const lastRead = lastReaders(plan, readers);
  const longLived = sourcesLiveWithConcats(plan, readers, lastRead);
  const reuse = slotReuser();
  // A reduction's result that only its epilogue reads lives in a local, not an array.
  const unstored = new Set(plan.kernels.flatMap((k) => (k.kind === 'reduce' && !k.writesResult ? [program.equations[k.equation]!.out.id] : [])));
  const order = [...plan.materialized].filter((id) => !locations.has(id) && !unstored.has(id)).sort((a, b) => plan.producer.get(a)! - plan.producer.get(b)!);
  for (const id of order) {
    const v = plan.definitions.get(id)!.out;
    const born = plan.producer.get(id)!;
    const length = sizeOf(v.shape);
    const key = `${v.dtype} ${length}`;
    let slot = reuse.take(key, born);
    if (slot < 0) slot = slots.push({ kind: 'temp', dtype: v.dtype, length }) - 1;
    reuse.hold(key, slot, Math.max(lastRead.get(id) ?? born, born));
    locations.set(id, rowMajor(v, slot));
  }
  const ctx: LoweringContext = {
    program, plan, slots, locations, readers, longLived,
    writer: { definitions: plan.definitions, locate: (v) => locations.get(v.id) ?? null, equationIndex: JsWriter.equationIndex(program), fastMath },
    scratch: (dtype, length) => slots.push({ kind: 'temp', dtype, length }) - 1,
    stepScratch: (dtype, length) => {
      const key = `${dtype} ${length}`;
      const k = takenThisStep.get(key) ?? 0;
      takenThisStep.set(key, k + 1);
      let list = stepScratchSlots.get(key);
      if (!list) stepScratchSlots.set(key, (list = []));
      if (k === list.length) list.push(slots.push({ kind: 'temp', dtype, length }) - 1);
      return list[k]!;
    },
    kernelName: kernelNamer(),
  };
  // Step scratch by dtype and length, and how many of each the step being lowered has taken.
  const stepScratchSlots = new Map<string, number[]>();
  const takenThisStep = new Map<string, number>();
  const steps = interleaved(ctx, plan.kernels.flatMap((k) => {
    takenThisStep.clear();
    return lowerKernel(ctx, k);
  }));
  // A slot that only fallbacks write (every value placed in it is columns that their products
  // pack from their source: in a stack of equal convolutions, each layer's in turn): allocated
  // when one runs, if ever.
  const rarely = new Set(steps.flatMap((step) => (step.rarelyWritten ? [step.rarelyWritten.value] : [])));
  const lazy = new Set(steps.flatMap((step) => (step.rarelyWritten ? [step.rarelyWritten.slot] : [])));
  for (const [id, loc] of locations) if (!rarely.has(id)) lazy.delete(loc.slot);
  for (const slot of lazy) slots[slot] = { ...(slots[slot] as SlotSource & { kind: 'temp' }), lazy: true };
  const costs = steps.map((s) => {
    const r = s.rarelyWritten;
    if (!r) return kernelCost(plan, s.equations, bytesPerElement);
    // A gathered product moves its source, not the columns: the product's own cost (which reads
    // the columns, as many elements) with the source read in their place.
    const cost = kernelCost(plan, r.productEquations, bytesPerElement);
    const bytes = (v: ProgramVar) => sizeOf(v.shape) * bytesPerElement(v.dtype);
    return { ...cost, bytes: cost.bytes - bytes(plan.definitions.get(r.value)!.out) + bytes(r.source) };
  });
  const copyResult = resultSlots.map((slot, i) => slots[slot]!.kind === 'input' || resultSlots.indexOf(slot) < i);
  const freshSlots = slots.flatMap((s, i) => (s.kind === 'result' ? [i] : []));
  return { plan, slots, resultSlots, copyResult, freshSlots, steps, costs, usesKeys: plan.kernels.some((k) => k.kind === 'random') };
}

function newWriter(ctx: LoweringContext): JsWriter {
  return new JsWriter(ctx.writer);
}

function covered(w: JsWriter, extra: readonly number[]): number[] {
  return [...new Set([...extra, ...w.covered])].sort((a, b) => a - b);
}

/** A step running one generated function over the kernel's arrays. */
function generatedStep(w: JsWriter, name: string, lines: readonly string[], equations: readonly number[]): Step {
  const source = w.functionSource(name, lines);
  const bound = new Bound(buildFunction<Generated>(source), w.bindings);
  return { name, equations, source, run: (slots) => bound.fn(bound.arrays(slots)) };
}

function lowerKernel(ctx: LoweringContext, kernel: FusedKernel): Step[] {
  switch (kernel.kind) {
    case 'elementwise':
      return [lowerElementwise(ctx, kernel.segments)];
    case 'reduce':
      return [lowerReduction(ctx, kernel)];
    case 'dot':
    case 'matmul':
      return [lowerMatmul(ctx, kernel)];
    case 'random':
      return [lowerRandom(ctx, kernel.equation)];
    case 'scatterAdd':
      return [lowerScatterAdd(ctx, kernel.equation)];
    case 'scan':
    case 'argReduce':
    case 'custom':
      return [lowerEagerKernel(ctx, kernel.equation)];
  }
}

/** A range function (rangeThreads.ts) and its arguments' slots. */
interface BoundRange {
  readonly kernel: RangeKernel;
  readonly bound: Bound<RangeKernel['fn']>;
}

/**
 * `code`: the range function and its source (read only when a job goes to the workers: a getter,
 * for the WebAssembly kernels, whose source is long to write); a string is generated JavaScript,
 * built here.
 */
function boundRange(code: string | { readonly fn: RangeKernel['fn']; readonly source: string }, bindings: readonly number[], units: number, elementsPerUnit: number, portable: boolean): BoundRange {
  const range = typeof code === 'string' ? { source: code, fn: buildFunction<RangeKernel['fn']>(code) } : code;
  const kernel: RangeKernel = {
    get source() {
      return range.source;
    },
    fn: range.fn, units, elementsPerUnit, portable,
  };
  return { kernel, bound: new Bound(kernel.fn, bindings) };
}

/**
 * Elementwise work over a range of units: the generated JavaScript range function, and the
 * WebAssembly SIMD kernel wasmPlan made of the same work when it made one (the same bits), which
 * runs instead while enabled. Each run covers every unit, split across threads when large.
 */
class RangeRun {
  readonly source: string;
  private readonly js: BoundRange;
  private readonly wasm: BoundRange | null;
  /** The views the WebAssembly kernel reads as dense copies, made before it runs. */
  private readonly gathers: readonly WasmGather[];

  /**
   * `lines`: written by `w` over the units [start, end) of `range` (the names they read);
   * `units` of `elementsPerUnit` elements each.
   */
  constructor(
    w: JsWriter, name: string, lines: readonly string[], range: readonly [string, string],
    { units, elementsPerUnit, wasm }: { units: number; elementsPerUnit: number; wasm: WasmSegment | null },
  ) {
    this.js = boundRange(w.functionSource(name, lines, range), w.bindings, units, elementsPerUnit, !w.callsCustomFunction);
    this.wasm = wasm && boundRange(wasm.code, wasm.bindings, wasm.units, wasm.elementsPerUnit, true);
    this.gathers = wasm?.gathers ?? [];
    this.source = wasm ? `${wasm.listing}\n// without WebAssembly SIMD:\n${this.js.kernel.source}` : this.js.kernel.source;
  }

  run(slots: readonly TypedArray[]): void {
    const r = this.wasm && wasmElementwiseEnabled() ? this.wasm : this.js;
    if (r === this.wasm) for (const g of this.gathers) stridedCopy(slots[g.from]!, g.offset, g.strides, g.shape, slots[g.to]!);
    runRange(r.kernel, r.bound.arrays(slots));
  }
}

/**
 * One generated function per segment, over a range [start, end) of its units (JsWriter.forRange), so
 * a large segment can split across threads (rangeThreads.ts); segments run one after another.
 */
function lowerElementwise(ctx: LoweringContext, segments: readonly { shape: readonly number[]; roots: readonly ProgramVar[] }[]): Step {
  const name = ctx.kernelName(`fused_elementwise_${segments.map((s) => `[${s.shape.join(',')}]x${s.roots.length}`).join('+')}`);
  const equations = new Set<number>();
  // The step's one copy, where it is all the step does and can copy entries at a time.
  let entries: EntryCopy | undefined;
  const parts = segments.flatMap((s, k) => {
    // Roots that only move data stored before this segment first, copied as eager copies them;
    // the other roots after (they read a copied root from its array, written by then). A root
    // moving another root of this segment is computed with the others.
    const own = new Set(s.roots.map((r) => r.id));
    const copies = s.roots.flatMap((r) => {
      const c = movementCopy(ctx, r, own);
      return c ? [c] : [];
    });
    if (copies.length === 0) return [segmentRun(ctx, s, segments.length > 1 ? `${name}_${k}` : name, equations)];
    for (const c of copies) for (const i of c.equations) equations.add(i);
    const rest = s.roots.filter((r) => !copies.some((c) => c.root === r));
    const tried = copies.map((c, j): MovementCopy => {
      if (!('tryRun' in c)) return c;
      const loop = segmentRun(ctx, { shape: s.shape, roots: [c.root] }, `${name}_${k}_${j}`, equations);
      return { ...c, source: `${c.source}\n// where it cannot:\n${loop.source}`, run: (slots) => { if (!c.tryRun(slots)) loop.run(slots); } };
    });
    if (segments.length === 1 && copies.length === 1 && rest.length === 0 && 'entries' in copies[0]! && copies[0].entries) entries = copies[0].entries;
    return [...tried, ...(rest.length ? [segmentRun(ctx, { shape: s.shape, roots: rest }, `${name}_${k}`, equations)] : [])];
  });
  return {
    name, equations: [...equations].sort((a, b) => a - b),
    source: parts.map((p) => p.source).join('\n'),
    run(slots) {
      for (const p of parts) p.run(slots);
    },
    ...(entries ? { entries } : {}),
  };
}

/** A root of a segment copied by an eager routine (movementCopy). */
interface MovementCopy {
  readonly root: ProgramVar;
  readonly equations: readonly number[];
  readonly source: string;
  run(slots: readonly TypedArray[]): void;
}

/**
 * A root copied only where the copy runs in WebAssembly (pieces of short rows, which a generic
 * JavaScript copy moves more slowly than the generated loop): `tryRun` returns false, having
 * copied nothing, where it cannot, and lowerElementwise runs the segment's generated loop for the
 * root instead.
 */
interface WasmCopy {
  readonly root: ProgramVar;
  readonly equations: readonly number[];
  readonly source: string;
  tryRun(slots: readonly TypedArray[]): boolean;
  /** The same copy, entries of the leading axis at a time (a concat along another axis). */
  readonly entries?: EntryCopy;
}

/**
 * A segment root that is pure data movement of stored values, copied as eager mode copies it:
 * a view of a stored value (a transpose, a slice, a broadcast: `stridedCopy`, by rows or tiles),
 * a pad or a gather of a contiguous stored value (`padInto`, `gatherInto`, by rows or blocks),
 * or a concat of contiguous ones (`concatInto`). The generated loop would move one element at a
 * time. Null for anything else, and for a movement of a value in `own` (its segment's roots, not
 * yet stored when the copies run) or of nothing (an empty root).
 */
function movementCopy(ctx: LoweringContext, root: ProgramVar, own: ReadonlySet<number>): MovementCopy | WasmCopy | null {
  const eq = ctx.plan.definitions.get(root.id);
  if (!eq || sizeOf(root.shape) === 0) return null;
  // Stored before this segment runs: not the root itself, nor the other roots of its segment.
  const isStored = (id: number) => !own.has(id) && ctx.locations.has(id);
  const out = ctx.locations.get(root.id)!;
  const rootIndex = ctx.writer.equationIndex.get(root.id)!;
  // The movements from `x` down to the stored value it views (this copy computes them too).
  const movements = (x: ProgramVar): number[] => {
    const equations: number[] = [];
    for (let v = x; !isStored(v.id); v = ctx.plan.definitions.get(v.id)!.inputs[0]!) equations.push(ctx.writer.equationIndex.get(v.id)!);
    return equations;
  };
  // The location of a stored value, when it is row-major (every stored value's is).
  const denseBase = (base: ProgramVar): JsLocation | null => {
    const loc = ctx.locations.get(base.id)!;
    return isContiguous({ shape: base.shape, strides: loc.strides, offset: 0 }) ? loc : null;
  };
  // A value as a contiguous run of a stored array: its slot and offset, and the movements on the
  // way; null when it is not one.
  const contiguous = (x: ProgramVar): { slot: number; offset: number; equations: number[] } | null => {
    const sv = storedView(x, ctx.plan.definitions, isStored);
    const loc = sv && isContiguous(sv.view) ? denseBase(sv.base) : null;
    return loc ? { slot: loc.slot, offset: loc.offset + sv!.view.offset, equations: movements(x) } : null;
  };
  const step = (what: string, reads: readonly { slot: number; offset: number; equations: readonly number[] }[], run: (slots: readonly TypedArray[]) => void): MovementCopy => ({
    root,
    equations: [rootIndex, ...reads.flatMap((r) => r.equations)],
    source: `// ${what}: ${reads.map((r) => `slot${r.slot}${r.offset ? ` from ${r.offset}` : ''}`).join(', ')} into slot${out.slot}, copied as eager copies it`,
    run,
  });
  // A concat under reshapes (a convolution's columns: nine windows stacked, then merged): the
  // reshapes keep its row-major order, so the root is the concat's copy. Its pieces, each a
  // strided view of a stored value, are copied one by one into their boxes of the output.
  const { value: cat, eq: catEq, above: reshapes } = underReshapes(ctx.plan.definitions, root, isStored);
  const above = reshapes.map((v) => ctx.writer.equationIndex.get(v.id)!);
  if (catEq.prim === 'concat' && (cat !== root || !eq.inputs.every((x) => contiguous(x) !== null))) {
    const { axis } = catEq.params as PrimitiveParams['concat'];
    if (!isContiguous({ shape: root.shape, strides: out.strides, offset: 0 })) return null;
    const outStrides = stridesOf(cat.shape);
    let at = 0;
    const pieces: ConcatPiece[] = [];
    for (const x of catEq.inputs) {
      const sv = storedView(x, ctx.plan.definitions, isStored);
      const base = sv && denseBase(sv.base);
      if (!sv || !base) return null;
      pieces.push({
        slot: base.slot, offset: base.offset + sv.view.offset, strides: sv.view.strides, shape: x.shape, to: out.offset + at * outStrides[axis]!, equations: movements(x),
        source: sv.base,
      });
      at += x.shape[axis]!;
    }
    // All of it (e1 < 0: each piece's own box), or entries [e0, e1) of the leading axis (a
    // convolution's images) when the concat is along another: each piece's box restricted to them
    // (copyPieces' shapes are refilled, not made).
    const count = cat.shape[0] ?? 0;
    const entryShapes = pieces.map((p) => [...p.shape]);
    const copyPieces = (slots: readonly TypedArray[], e0: number, e1: number, firstMayFail: boolean): boolean => {
      const o = slots[out.slot]!;
      for (let k = 0; k < pieces.length; k++) {
        const p = pieces[k]!;
        const src = slots[p.slot]!;
        let shape = p.shape;
        if (e1 >= 0) {
          shape = entryShapes[k]!;
          entryShapes[k]![0] = e1 - e0;
        }
        const from = p.offset + e0 * p.strides[0]!;
        const to = p.to + e0 * outStrides[0]!;
        if (stridedCopyWasm(src, from, p.strides, shape, o, to, outStrides)) continue;
        // Nothing copied yet: the generated loop copies it all. Else this piece in JavaScript.
        if (k === 0 && firstMayFail) return false;
        stridedCopyInto(src, from, p.strides, shape, o, to, outStrides);
      }
      return true;
    };
    return {
      root,
      equations: [...above, ctx.writer.equationIndex.get(cat.id)!, ...pieces.flatMap((p) => p.equations)],
      source: `// stridedCopyInto, piece by piece (concat along axis ${axis}): ${pieces.map((p) => `slot${p.slot}${p.offset ? ` from ${p.offset}` : ''} strides [${p.strides.join(', ')}]`).join('; ')} into slot${out.slot}, each into its box, in WebAssembly`,
      tryRun: (slots) => copyPieces(slots, 0, -1, true),
      ...(axis > 0 && count >= 1 ? {
        entries: {
          value: root.id, slot: out.slot, offset: out.offset, count, entryElements: sizeOf(cat.shape) / count,
          tryCopy: (slots: readonly TypedArray[], e0: number, e1: number) => copyPieces(slots, e0, e1, e0 === 0),
          gathered: (rows: number, cols: number) => gatheredPieces(cat.shape, axis, pieces, rows, cols),
        },
      } : {}),
    };
  }
  if (eq.prim === 'concat') {
    const { axis } = eq.params as PrimitiveParams['concat'];
    const pieces = eq.inputs.map(contiguous);
    if (pieces.some((p) => p === null)) return null;
    const reads = pieces as { slot: number; offset: number; equations: number[] }[];
    const extents = eq.inputs.map((x) => x.shape[axis]!);
    const offsets = reads.map((p) => p.offset);
    const arrays = new Array<TypedArray>(reads.length);
    return step(`concatInto along axis ${axis}`, reads, (slots) => {
      for (let k = 0; k < reads.length; k++) arrays[k] = slots[reads[k]!.slot]!;
      concatInto(slots[out.slot]!, root.shape, axis, arrays, offsets, extents);
    });
  }
  if (eq.prim === 'pad') {
    const x = eq.inputs[0]!;
    const src = contiguous(x);
    if (!src) return null;
    const { before } = eq.params as PrimitiveParams['pad'];
    return step('padInto, zeros first', [src], (slots) => {
      const o = slots[out.slot]!;
      o.fill(0);
      padInto(o, root.shape, before, slots[src.slot]!, src.offset, x.shape);
    });
  }
  if (eq.prim === 'gather') {
    const [x, idx] = eq.inputs as [ProgramVar, ProgramVar];
    const src = contiguous(x);
    const at = contiguous(idx);
    if (!src || !at) return null;
    const { axis } = eq.params as PrimitiveParams['gather'];
    const count = sizeOf(idx.shape);
    return step(`gatherInto along axis ${axis}`, [src, at], (slots) => {
      gatherInto(slots[out.slot]!, slots[src.slot]!, src.offset, x.shape, axis, slots[at.slot]!, at.offset, count);
    });
  }
  // A view of a stored value: the root's chain of movements from it; or, where reshapes on top
  // make it no view (a tile: a broadcast, then its axes merged), the view under them, copied in
  // row-major order, which is the root's.
  let top = root;
  let sv = storedView(top, ctx.plan.definitions, isStored);
  while (!sv) {
    const d = ctx.plan.definitions.get(top.id);
    if (!d || (d.prim !== 'reshape' && d.prim !== 'stopGradient') || isStored(d.inputs[0]!.id)) return null;
    top = d.inputs[0]!;
    sv = storedView(top, ctx.plan.definitions, isStored);
  }
  const base = denseBase(sv.base);
  if (!base) return null;
  const equations = movements(root);
  const { shape, strides, offset } = sv.view;
  const from = base.offset + offset;
  return {
    root, equations,
    source: `// stridedCopy: slot${base.slot}${from ? ` from ${from}` : ''}, shape [${shape.join(', ')}], strides [${strides.join(', ')}] into slot${out.slot}, copied as eager copies it`,
    run(slots) {
      stridedCopy(slots[base.slot]!, from, strides, shape, slots[out.slot]!);
    },
  };
}

/**
 * The entries of a concat along `axis` > 0 of strided pieces (shape [count, …]) seen as rows ×
 * cols matrices, when each element (p, j) of entry e is at rows[p] + cols[j] + e·entryStride of
 * one source: every piece reads the same slot with the same leading stride, the columns are
 * the trailing axes after the concat axis (their product is `cols`) and every piece steps
 * through them alike. For a convolution's columns, rows[p] is where channel c's window of tap t
 * starts in the padded image and cols[j] where output (y, x) sits in it. Null otherwise, or
 * where an offset would not fit the WebAssembly product's byte offsets.
 */
function gatheredPieces(shape: readonly number[], axis: number, pieces: readonly ConcatPiece[], rows: number, cols: number): GatheredB | null {
  const r = shape.length;
  const first = pieces[0]!;
  if (pieces.some((q) => q.source.id !== first.source.id || q.slot !== first.slot || q.strides[0] !== first.strides[0] || q.strides[0]! < 0)) return null;
  // The first axis of the columns: the trailing axes after `axis` whose extents multiply to cols.
  let split = r;
  for (let tail = 1; tail !== cols; ) {
    if (split <= axis + 1) return null;
    tail *= shape[--split]!;
    if (tail > cols) return null;
  }
  if (sizeOf(shape.slice(1, split)) !== rows) return null;
  for (let a = split; a < r; a++) {
    if (shape[a]! > 1 && pieces.some((q) => q.strides[a] !== first.strides[a])) return null;
  }
  // Columns: the trailing axes as the first piece steps through them. Rows: each piece's rows
  // (its box of the axes before the split) at its offset, concatenated along the concat axis.
  const colOffsets = viewOffsets(shape.slice(split), first.strides.slice(split), 0);
  const rowOffsets = new Float64Array(rows);
  const tables = pieces.map((q) => viewOffsets(q.shape.slice(1, split), q.strides.slice(1, split), q.offset));
  concatInto(rowOffsets, shape.slice(1, split), axis - 1, tables, tables.map(() => 0), pieces.map((q) => q.shape[axis]!));
  // Element offsets whose float64 byte offsets fit the WebAssembly product's i32 addresses.
  const LIMIT = 2 ** 27;
  if ([rowOffsets, colOffsets].some((t) => t.some((o) => o < 0 || o >= LIMIT))) return null;
  return { slot: first.slot, source: first.source, entryStride: first.strides[0]!, rows: Int32Array.from(rowOffsets), cols: Int32Array.from(colOffsets) };
}

/** The element offsets, in row-major order over `shape`, of a view stepping by `strides` from `offset`. */
function viewOffsets(shape: readonly number[], strides: readonly number[], offset: number): Float64Array {
  const out = new Float64Array(sizeOf(shape));
  const st = stridesOf(shape);
  for (let e = 0; e < out.length; e++) {
    let off = offset;
    for (let d = 0; d < shape.length; d++) off += (Math.floor(e / st[d]!) % shape[d]!) * strides[d]!;
    out[e] = off;
  }
  return out;
}

/** One segment's generated range function (and its WebAssembly kernel, where one qualifies). */
function segmentRun(ctx: LoweringContext, s: { shape: readonly number[]; roots: readonly ProgramVar[] }, name: string, equations: Set<number>): RangeRun {
  const w = newWriter(ctx);
  const { lines, units } = w.forRange(s.shape, (coords) => {
    for (const root of s.roots) w.writeRoot(root, coords);
  });
  for (const i of w.covered) equations.add(i);
  return new RangeRun(w, name, lines, ['start', 'end'], {
    units, elementsPerUnit: units > 0 ? sizeOf(s.shape) / units : 0, wasm: planWasmSegment(ctx.writer, s.shape, s.roots, ctx.stepScratch),
  });
}

// ---------------------------------------------------------------------------------------------
// Reductions

/**
 * A reduction with its prologue and epilogue. Each output's elements are combined in row-major
 * order of the input, in doubles, as the eager kernel does: when the reduced axes all come after
 * the kept ones, one loop per output with a local accumulator; so too, the reduced elements
 * unrolled, when at most UNROLL_MAX of them lie between kept axes; otherwise the input is walked
 * in row-major order into a scratch row of accumulators, then the outputs are finished.
 */
function lowerReduction(ctx: LoweringContext, kernel: { equation: number; epilogue: ProgramVar[]; writesResult: boolean }): Step {
  const eq = ctx.program.equations[kernel.equation]! as Equation<ReducePrimitive>;
  const { axes } = eq.params as PrimitiveParams['sum'];
  const x = eq.inputs[0]!;
  const op = eq.prim;
  const dtype = eq.out.dtype;
  const outShape = eq.out.shape;
  const w = newWriter(ctx);
  const lines: string[] = [];
  const finishWith = (w: JsWriter, out: JsCoords, acc: string) => {
    const value = w.fresh('r');
    w.emit(`const ${value} = ${rounded(acc, dtype)};`);
    w.define(eq.out, out, value);
    if (kernel.writesResult) w.store(eq.out, out, value);
    for (const root of kernel.epilogue) w.writeRoot(root, epilogueCoords(w, out, outShape, root, true));
  };
  const finish = (out: JsCoords, acc: string) => finishWith(w, out, acc);
  /**
   * The step for a sum whose accumulation `wasm` does into doubles in scratch (the same order and
   * bits), finished from them by generated JavaScript; the full JavaScript kernel where
   * WebAssembly is off.
   */
  const wasmSumStep = (wasm: WasmSum, accSlot: number, full: Step, finishing: JsWriter, finishLines: readonly string[]): Step => {
    const finishSource = finishing.functionSource(`${name}_finish`, finishLines);
    const bound = new Bound(buildFunction<Generated>(finishSource), finishing.bindings);
    return {
      ...full,
      source: `${wasm.listing}\n// acc = slot${accSlot}, doubles (scratch of this step)\n${finishSource}\n// without WebAssembly SIMD:\n${full.source}`,
      run(slots, keys, need) {
        if (!wasmElementwiseEnabled()) return full.run(slots, keys, need);
        wasm.run(slots, slots[accSlot] as Float64Array);
        bound.fn(bound.arrays(slots));
      },
    };
  };
  // The input's coordinates from output and reduced coordinates.
  const inputCoords = (out: readonly string[], red: readonly string[]): JsCoords => {
    let ko = 0;
    let kr = 0;
    return { axes: x.shape.map((_, i) => (axes.includes(i) ? red[kr++]! : out[ko++]!)) };
  };
  const significant = x.shape.map((d, i) => ({ d, reduced: axes.includes(i) })).filter((a) => a.d !== 1);
  const lastKept = significant.map((a) => !a.reduced).lastIndexOf(true);
  const firstReduced = significant.findIndex((a) => a.reduced);
  const reducedShape = axes.map((a) => x.shape[a]!);
  const name = ctx.kernelName(`fused_${op}_${sizeOf(outShape)}x${sizeOf(reducedShape)}${kernel.epilogue.length ? `_epilogue${kernel.epilogue.length}` : ''}`);
  const firstKept = significant.findIndex((a) => !a.reduced);
  const leading = firstKept > 0 && significant.slice(firstKept).every((a) => !a.reduced);
  const reducedCount = sizeOf(reducedShape);
  if (firstReduced >= 0 && lastKept > firstReduced && !leading && reducedCount <= UNROLL_MAX) {
    // Few reduced elements between kept axes (a pool's window taps, [N, C, taps, Ho, Wo]): one
    // loop per output, its reduced elements unrolled, each coordinate a literal, into a local
    // accumulator. The same order (row-major over the reduced axes) and doubles as the walk over
    // the input below, without a scratch row read and written per element, and a concat's
    // branches on a tap axis decided (benchmarks/NOTES.md, "Pools' reductions unrolled").
    const reducedStrides = stridesOf(reducedShape);
    lines.push(...w.forEach(outShape, (out) => {
      w.emit(`let acc = ${identityJs(op, dtype)};`);
      for (let r = 0; r < reducedCount; r++) {
        const red = reducedShape.map((d, i) => String(Math.floor(r / reducedStrides[i]!) % d));
        const v = w.value(x, inputCoords(out.axes, red));
        // Few elements an output, each reduction's its own: their selects without branches.
        w.emit(`acc = ${combineJs(op, dtype, 'acc', v, true)};`);
      }
      finish(out, 'acc');
    }));
    return generatedStep(w, name, lines, covered(w, [kernel.equation]));
  }
  if (firstReduced < 0 || lastKept < firstReduced) {
    lines.push(...w.forEach(outShape, (out) => {
      w.emit(`let acc = ${identityJs(op, dtype)};`);
      const inner = w.forEach(reducedShape, (red) => {
        // The input's row-major index, when the reduced axes are its trailing run: out · extent + r.
        const full = inputCoords(out.axes, red.axes);
        const v = w.value(x, { ...full, linear: `${out.linear} * ${sizeOf(reducedShape)} + ${red.linear}`, shape: x.shape });
        w.emit(`acc = ${combineJs(op, dtype, 'acc', v)};`);
      });
      for (const l of inner) w.emit(l);
      finish(out, 'acc');
    }));
    // A sum over trailing axes with a prologue (a softmax's sum of exps): the prologue computed in
    // WebAssembly, each row accumulated in the same order and doubles, then finished.
    const rowLength = sizeOf(reducedShape);
    const wasm = op === 'sum' && rowLength > 1 ? planWasmRowSum(ctx.writer, x, rowLength) : null;
    if (wasm) {
      const full = generatedStep(w, name, lines, covered(w, [kernel.equation]));
      const accSlot = ctx.stepScratch('float64', sizeOf(outShape));
      const f = newWriter(ctx);
      const acc = f.array(accSlot);
      const finishLines = f.forEach(outShape, (out) => finishWith(f, out, `${acc}[${out.linear}]`));
      return wasmSumStep(wasm, accSlot, { ...full, equations: covered(f, full.equations) }, f, finishLines);
    }
  } else {
    const nOut = sizeOf(outShape);
    const accSlot = ctx.stepScratch('float64', nOut);
    const acc = w.array(accSlot);
    lines.push(`${acc}.fill(${identityJs(op, dtype)});`);
    // Row-major over the input: one loop per axis, the output offset advanced by kept axes.
    const outStrides = stridesOf(outShape);
    const outOffset = (coords: readonly string[]) => {
      let k = 0;
      const terms: string[] = [];
      coords.forEach((c, i) => {
        if (axes.includes(i)) return;
        const s = outStrides[k++]!;
        if (c !== '0') terms.push(s === 1 ? c : `${c} * ${s}`);
      });
      return terms.join(' + ') || '0';
    };
    // The input's trailing reduced axes (a bias gradient's pixels, [N, C, H, W] over N, H and W):
    // their run added into a local, then stored once, rather than the scratch row read and written
    // per element. The same terms in the same order: the same bits.
    let split = x.shape.length;
    while (split > 0 && (axes.includes(split - 1) || x.shape[split - 1] === 1)) split--;
    const runShape = x.shape.slice(split);
    if (split > 0 && sizeOf(runShape) > 1) {
      const outer = x.shape.slice(0, split);
      const runLength = sizeOf(runShape);
      lines.push(...w.forEach(outer, (lead) => {
        const o = outOffset([...lead.axes, ...runShape.map(() => '0')]);
        w.emit(`let acc = ${acc}[${o}];`);
        const run = w.forEach(runShape, (r) => {
          const v = w.value(x, { axes: [...lead.axes, ...r.axes], linear: `${lead.linear} * ${runLength} + ${r.linear}`, shape: x.shape });
          w.emit(`acc = ${combineJs(op, dtype, 'acc', v)};`);
        });
        for (const l of run) w.emit(l);
        w.emit(`${acc}[${o}] = acc;`);
      }));
    } else {
      lines.push(...w.forEach(x.shape, (full) => {
        const o = outOffset(full.axes);
        const v = w.value(x, full);
        const a = w.fresh('a');
        w.emit(`const ${a} = ${acc}[${o}];`);
        w.emit(`${acc}[${o}] = ${combineJs(op, dtype, a, v)};`);
      }));
    }
    const finishLines = w.forEach(outShape, (out) => finish(out, `${acc}[${out.linear}]`));
    lines.push(...finishLines);
    // A sum over leading axes (a column sum, like a bias gradient): accumulated in WebAssembly, in
    // the same order and the same doubles, then finished by the generated JavaScript.
    const wasm = op === 'sum' && leading ? planWasmSum(ctx.writer, x, nOut) : null;
    if (wasm) return wasmSumStep(wasm, accSlot, generatedStep(w, name, lines, covered(w, [kernel.equation])), w, finishLines);
  }
  return generatedStep(w, name, lines, covered(w, [kernel.equation]));
}

// ---------------------------------------------------------------------------------------------
// Matmuls

/** How a matmul reads an operand: an array and the offset of each batch's matrix in it. */
interface OperandPlan {
  readonly slot: number;
  readonly offsets: readonly number[];
  /** A generated loop that gathers the operand into `slot` first (null: read in place). */
  readonly gather: Bound | null;
  readonly source: string;
  /** Read in place as the transpose of a row-major matrix (matmulInto's transA / transB). */
  readonly transposed: boolean;
}

/**
 * An operand of `matmulInto`, which reads row-major matrices at offsets: a view of a stored value
 * whose matrices are row-major, or are transposes of row-major ones (strides [.., 1, rows]: the
 * routine packs them in place), is read in place (batch axes may broadcast: each batch has its
 * own offset); anything else (another permutation, a computed value) is gathered into scratch.
 */
function matmulOperand(ctx: LoweringContext, x: ProgramVar, batchShape: readonly number[], name: string, equations: Set<number>): OperandPlan {
  const r = x.shape.length;
  const [rows, cols] = [x.shape[r - 2]!, x.shape[r - 1]!];
  const batches = sizeOf(batchShape);
  const sv = storedView(x, ctx.plan.definitions, (id) => ctx.locations.has(id));
  const layout = sv && matrixLayout(sv.view);
  if (sv && layout) {
    const st = sv.view.strides;
    const loc = ctx.locations.get(sv.base.id)!;
    // An empty matrix reads nothing, so its offset is 0: a view's own offset can lie past the
    // end of an empty stored value (rows 1.. of a [0, 4, 16] slice), which the routine's
    // bounds check refuses.
    const offsets = rows * cols === 0 ? new Array<number>(batches).fill(0) : [...viewOffsets(batchShape, st, loc.offset + sv.view.offset)];
    return { slot: loc.slot, offsets, gather: null, source: '', transposed: layout === 'transposed' };
  }
  const { slot, bound, source } = gatherOperand(ctx, x, `gather_${name}`, equations);
  return { slot, offsets: Array.from({ length: batches }, (_, b) => b * rows * cols), gather: bound, source, transposed: false };
}

/**
 * For a kernel that reads dense row-major operands: a generated loop that computes `x` from its
 * definition (a view, a prologue) into a scratch array. The equations it computes join `equations`.
 */
function gatherOperand(ctx: LoweringContext, x: ProgramVar, name: string, equations: Set<number>): { slot: number; bound: Bound; source: string } {
  const slot = ctx.scratch(x.dtype, sizeOf(x.shape));
  const w = newWriter(ctx);
  const target = w.array(slot);
  const lines = w.forEach(x.shape, (coords) => w.emit(`${target}[${coords.linear}] = ${w.value(x, coords)};`));
  for (const i of w.covered) equations.add(i);
  const source = w.functionSource(name, lines);
  return { slot, bound: new Bound(buildFunction<Generated>(source), w.bindings), source };
}

/** The common step of `offsets` (0 for one offset), or null when none is (or it is negative). */
function evenStep(offsets: readonly number[]): number | null {
  if (offsets.length === 0) return null;
  const first = offsets[0]!;
  const step = offsets.length > 1 ? offsets[1]! - first : 0;
  return step >= 0 && offsets.every((o, i) => o === first + i * step) ? step : null;
}

/**
 * The coordinates of epilogue value `root` at the element of its anchor (of `anchorShape`) at
 * `coords`, which carry the element's row-major index: the same coordinates for a value of the
 * anchor's shape; for one whose shape regroups the anchor's rows (planFusion's splitRowEpilogues),
 * those of the same row-major index over its own shape (the reshape is a view of the same
 * memory in the same order, so the values read there are the unfused kernel's); for a
 * `reduction`'s, one whose shape regroups any of its axes (planFusion's regroupsAxes).
 */
function epilogueCoords(w: JsWriter, coords: JsCoords, anchorShape: readonly number[], root: ProgramVar, reduction = false): JsCoords {
  if (shapesEqual(root.shape, anchorShape)) return coords;
  if (!(reduction ? regroupsAxes : regroupsRows)(anchorShape, root.shape)) {
    throw new Error(`internal: an epilogue value of shape [${root.shape.join(', ')}] does not regroup the rows of its anchor's [${anchorShape.join(', ')}]`);
  }
  return w.reshapeCoords(coords, anchorShape, root.shape);
}

function lowerMatmul(ctx: LoweringContext, kernel: { equation: number; epilogue: ProgramVar[]; writesResult: boolean }): Step {
  const eq = ctx.program.equations[kernel.equation]! as Equation<'matmul'>;
  const [a, b] = eq.inputs as [ProgramVar, ProgramVar];
  const outShape = eq.out.shape;
  const r = outShape.length;
  const batchShape = outShape.slice(0, -2);
  const batches = sizeOf(batchShape);
  const [m, n, k] = [outShape[r - 2]!, outShape[r - 1]!, a.shape[r - 1]!];
  const equations = new Set<number>([kernel.equation]);
  const pa = matmulOperand(ctx, a, batchShape, 'a', equations);
  const pb = matmulOperand(ctx, b, batchShape, 'b', equations);
  // C: the result's own array, or scratch that only the epilogue reads.
  let cLoc = ctx.locations.get(eq.out.id);
  if (!cLoc) {
    cLoc = { slot: ctx.scratch(eq.out.dtype, sizeOf(outShape)), offset: 0, strides: stridesOf(outShape) };
    ctx.locations.set(eq.out.id, cLoc);
  }
  const cSlot = cLoc.slot;
  let epilogue: RangeRun | null = null;
  if (kernel.epilogue.length > 0) {
    // Over rows [rowStart, rowEnd) of C seen as [batch·m, n]: the shape a per-block hook calls.
    const w = newWriter(ctx);
    // Values of shapes that split C's rows (planFusion's splitRowEpilogues: [b·s, h] read as
    // [b, s, h], how matmul folds a batch of activations into rows) hold C's element of the same
    // row-major index e: the row is decoded over the finest shape of rows refining them all, so
    // each value's coordinates are groups of those (no division per element).
    const split = kernel.epilogue.some((root) => !shapesEqual(root.shape, outShape));
    const fineRows = split && sizeOf(outShape) > 0 ? refinement([...batchShape, m], kernel.epilogue.map((root) => root.shape.slice(0, -1))) : null;
    const fine = fineRows && [...fineRows, n];
    const lines = w.scope(() => {
      // Batch coordinates and the row within the matrix, from the flat row index: once per row.
      const rowAxes = w.decode('row', fine ? fine.slice(0, -1) : [...batchShape, m]).axes;
      const inner = w.scope(() => {
        const fineCoords = fine ? { shape: fine, axes: [...rowAxes, 'col'] } : null;
        const coords: JsCoords = fineCoords
          ? { axes: w.groupFine(fineCoords, outShape)!, linear: 'e', shape: outShape, fine: fineCoords }
          : { axes: [...rowAxes, 'col'], linear: 'e', shape: outShape };
        for (const root of kernel.epilogue) w.writeRoot(root, split ? epilogueCoords(w, coords, outShape, root) : coords);
      });
      w.emit(`for (let col = 0, e = row * ${n}; col < ${n}; col++, e++) {\n  ${inner.join('\n  ')}\n}`);
    });
    const body = [`for (let row = rowStart; row < rowEnd; row++) {`, ...lines.map((l) => `  ${l}`), '}'];
    for (const i of w.covered) equations.add(i);
    // Over all rows of C once the products are done, split across threads when large (rangeThreads.ts).
    epilogue = new RangeRun(w, 'epilogue', body, ['rowStart', 'rowEnd'], {
      units: batches * m, elementsPerUnit: n, wasm: planWasmSegment(ctx.writer, outShape, kernel.epilogue, ctx.stepScratch),
    });
  }
  const ao = pa.offsets;
  const bo = pb.offsets;
  // Operands whose batch entries are evenly spaced (contiguous, or one shared by every entry)
  // go to the batched routine in one call, as eager's matmul does: a shared B is packed once and
  // the batch splits across threads as one job. Others (a broadcast over some batch axes only)
  // take one call per entry. Either way each entry is the same product, so the bits agree.
  const aStep = evenStep(ao);
  const bStep = evenStep(bo);
  const options = pa.transposed || pb.transposed ? { transA: pa.transposed, transB: pb.transposed } : undefined;
  const name = ctx.kernelName(`fused_matmul_${m}x${n}x${k}${batches > 1 ? `_batch${batches}` : ''}${kernel.epilogue.length ? `_epilogue${kernel.epilogue.length}` : ''}`);
  const source = [
    pa.gather ? pa.source : '', pb.gather ? pb.source : '',
    `// ${aStep !== null && bStep !== null ? 'matmulBatchedInto(a, b, c)' : 'matmulInto(a, b, c) per batch'}, ${m}x${k} · ${k}x${n}${pa.gather ? ', a gathered' : ''}${pb.gather ? ', b gathered' : ''}${pa.transposed ? ', a transposed in place' : ''}${pb.transposed ? ', b transposed in place' : ''}`,
    epilogue ? epilogue.source : '',
  ].filter(Boolean).join('\n');
  // Batch entries [e0, e1) in one call, where both operands' entries are evenly spaced.
  const batched = (slots: readonly TypedArray[], e0: number, e1: number, as: number, bs: number): void => {
    matmulBatchedInto(e1 - e0, slots[pa.slot] as Float32Array, ao[0]! + e0 * as, as, slots[pb.slot] as Float32Array, bo[0]! + e0 * bs, bs, slots[cSlot] as Float32Array, e0 * m * n, m, n, k, options);
  };
  const finish = (slots: readonly TypedArray[]): void => epilogue?.run(slots);
  return {
    name,
    equations: [...equations].sort((x, y) => x - y),
    source,
    run(slots) {
      if (pa.gather) pa.gather.fn(pa.gather.arrays(slots));
      if (pb.gather) pb.gather.fn(pb.gather.arrays(slots));
      if (aStep !== null && bStep !== null) batched(slots, 0, batches, aStep, bStep);
      else for (let i = 0; i < batches; i++) matmulInto(slots[pa.slot] as Float32Array, ao[i]!, slots[pb.slot] as Float32Array, bo[i]!, slots[cSlot] as Float32Array, i * m * n, m, n, k, options);
      finish(slots);
    },
    // Entries at a time, for interleaveEntries: evenly spaced operands read in place.
    ...(batches >= 1 && aStep !== null && bStep !== null && !pa.gather && !pb.gather ? {
      entryProduct: {
        value: eq.out.id, transB: pb.transposed, aSlot: pa.slot, bSlot: pb.slot, cSlot, bOffset: bo[0]!, bStep, count: batches,
        multiply: (slots: readonly TypedArray[], e0: number, e1: number) => batched(slots, e0, e1, aStep, bStep),
        multiplyGathered: (slots: readonly TypedArray[], e0: number, e1: number, g: GatheredB) => matmulGatheredBInto(
          e1 - e0, slots[pa.slot] as Float32Array, ao[0]! + e0 * aStep, aStep, slots[g.slot] as Float32Array, e0 * g.entryStride, g.entryStride, g.rows, g.cols,
          slots[cSlot] as Float32Array, e0 * m * n, m, n, k, pa.transposed,
        ),
        finish,
      },
    } : {}),
  };
}

/**
 * A copy of a value by entries of its leading axis (`copy`, a convolution's columns: one image's
 * windows stacked) followed by the batched product that reads it as B (`product`), run as one
 * step, a few entries at a time: an entry's columns are copied, then multiplied while they are
 * still in cache, instead of all the columns (tens of MB) going out to memory and back. As many
 * entries at a time as the product has threads, so that each call still splits its batch across
 * them. Each entry's copy and product are the ones the two steps run, so the same bits; where
 * the copy cannot start in WebAssembly, the two steps run whole, as before.
 * (benchmarks/NOTES.md, "A convolution's columns and product interleaved".)
 */
function interleaveEntries(copy: Step, product: Step, p: EntryCopy, q: EntryProduct): Step {
  return {
    ...pairNames(copy, product),
    source: `// entries of the leading axis at a time (as many as the product's threads): the copy, then the product of those entries\n${copy.source}\n${product.source}`,
    run(slots, keys, need) {
      const chunk = Math.max(1, wasmThreads());
      for (let e0 = 0; e0 < p.count; e0 += chunk) {
        const e1 = Math.min(p.count, e0 + chunk);
        if (!p.tryCopy(slots, e0, e1)) {
          copy.run(slots, keys, need);
          product.run(slots, keys, need);
          return;
        }
        q.multiply(slots, e0, e1);
      }
      q.finish(slots);
    },
  };
}

/** The name and equations of a copy and a product run as one step. */
function pairNames(copy: Step, product: Step): { name: string; equations: number[] } {
  return { name: `${copy.name}+${product.name.replace(/^fused_/, '')}`, equations: [...new Set([...copy.equations, ...product.equations])].sort((x, y) => x - y) };
}

/**
 * A product reading columns that every reader packs from their source instead (gathered,
 * below): entries a few at a time (as many as the product's threads), each entry's B packed
 * straight from the source through `b` (matmulGatheredBInto), the columns never written. The
 * first such product of the columns also carries their copy's name and equations (the copy is
 * dropped). Where the gathered product does not run (setCpuWasm(false), a memory that cannot
 * hold it), the columns are copied after all, into their array allocated then (`need`), and the
 * product reads them as it would have. The same bits either way: the panels hold the columns'
 * values. (benchmarks/NOTES.md, "A convolution's B packed from the padded image".)
 */
function gatheredProduct(copy: Step, product: Step, p: EntryCopy, q: EntryProduct, b: GatheredB, first: boolean): Step {
  return {
    ...(first ? pairNames(copy, product) : { name: product.name, equations: product.equations }),
    rarelyWritten: { slot: p.slot, value: p.value, productEquations: product.equations, source: b.source },
    source: `// entries of the leading axis at a time (as many as the product's threads): the product of those entries with B packed from slot${b.slot} (B's rows at ${describeOffsets(b.rows)}, its columns at ${describeOffsets(b.cols)}, entries ${b.entryStride} apart), the columns (slot${p.slot}) not stored; where that cannot run, the copy, then the product\n${copy.source}\n${product.source}`,
    run(slots, keys, need) {
      const chunk = Math.max(1, wasmThreads());
      for (let e0 = 0; e0 < p.count; e0 += chunk) {
        const e1 = Math.min(p.count, e0 + chunk);
        if (q.multiplyGathered(slots, e0, e1, b)) continue;
        need(p.slot);
        if (e0 === 0) {
          copy.run(slots, keys, need);
          product.run(slots, keys, need);
          return;
        }
        p.tryCopy(slots, e0, e1);
        q.multiply(slots, e0, e1);
      }
      q.finish(slots);
    },
  };
}

/** A table of offsets for a kernel's source: its first few entries and its length. */
function describeOffsets(t: Int32Array): string {
  return `[${[...t.subarray(0, 6)].join(', ')}${t.length > 6 ? `, … (${t.length})` : ''}]`;
}

/**
 * The value under `root`'s reshapes (and stopGradients) computed in the same kernel, its
 * equation, and the values passed on the way (root first): a convolution's columns are a concat
 * under the reshapes that merge its axes.
 */
function underReshapes(definitions: ReadonlyMap<number, Equation>, root: ProgramVar, isStored: (id: number) => boolean): { value: ProgramVar; eq: Equation; above: ProgramVar[] } {
  let value = root;
  let eq = definitions.get(root.id)!;
  const above: ProgramVar[] = [];
  while ((eq.prim === 'reshape' || eq.prim === 'stopGradient') && !isStored(eq.inputs[0]!.id)) {
    const d = definitions.get(eq.inputs[0]!.id);
    if (!d) break;
    above.push(value);
    value = eq.inputs[0]!;
    eq = d;
  }
  return { value, eq, above };
}

/**
 * Extends `lastRead` so that the stored value that a convolution's columns view (its padded
 * image) lives as long as the columns: the products reading the columns may pack them from that
 * value instead (gatheredProduct), as late as the last of them (a weight gradient's, in the
 * backward pass). Without it another value's array could take the image's after the columns'
 * copy, and those products would read that value. Decided before slots are assigned, so for
 * every stored concat that could be gathered (along an axis after the first, its pieces views of
 * one stored value, read by products only), whether or not it turns out to be: such an image
 * then stays while its columns do (s²/(kh·kw) of their size for stride s).
 */
function sourcesLiveWithConcats(plan: FusionPlan, readers: ReadonlyMap<number, readonly number[]>, lastRead: Map<number, number>): Set<number> {
  const extended = new Set<number>();
  const isStored = (id: number) => plan.materialized.has(id) || !plan.definitions.has(id);
  for (const id of plan.materialized) {
    const until = lastRead.get(id);
    const byProducts = readers.get(id)?.every((r) => plan.definitions.get(r)?.prim === 'matmul') ?? false;
    if (until === undefined || !byProducts) continue;
    const { eq } = underReshapes(plan.definitions, plan.definitions.get(id)!.out, isStored);
    if (eq.prim !== 'concat' || (eq.params as PrimitiveParams['concat']).axis === 0) continue;
    const bases = new Set(eq.inputs.map((x) => storedView(x, plan.definitions, isStored)?.base.id ?? -1));
    if (bases.size !== 1) continue;
    const base = [...bases][0]!;
    if (!plan.materialized.has(base)) continue;
    lastRead.set(base, Math.max(lastRead.get(base) ?? -1, until));
    extended.add(base);
  }
  return extended;
}

/** Whether product q reads copy p's value in place as its B, entry by entry. */
function readsEntries(p: EntryCopy, q: EntryProduct): boolean {
  return q.bSlot === p.slot && q.bOffset === p.offset && (q.bStep === p.entryElements || q.count === 1) && q.count === p.count && q.aSlot !== p.slot && q.cSlot !== p.slot;
}

/**
 * For copy p (a convolution's columns), the products that read it and how each packs its B from
 * the columns' source (the B-oriented tables: a product reading the columns transposed, as a
 * weight gradient does, has B's rows at the columns' column offsets); null unless every reader
 * is such a product and can (matmulGatheredBFits), and the columns are an intermediate.
 */
function gatheredReaders(ctx: LoweringContext, steps: readonly Step[], at: number, p: EntryCopy): { step: number; q: EntryProduct; b: GatheredB }[] | null {
  if (ctx.slots[p.slot]!.kind !== 'temp') return null;
  const readers = ctx.readers.get(p.value) ?? [];
  if (readers.length === 0) return null;
  const plans: { step: number; q: EntryProduct; b: GatheredB }[] = [];
  for (const r of readers) {
    const step = steps.findIndex((s, i) => i > at && s.entryProduct?.value === r);
    const q = step < 0 ? undefined : steps[step]!.entryProduct!;
    if (!q || !readsEntries(p, q)) return null;
    // The product's m × k · k × n per entry, from its equation.
    const product = ctx.plan.definitions.get(r)!;
    const { dtype, shape } = product.out;
    const [m, n, k] = [shape[shape.length - 2]!, shape[shape.length - 1]!, product.inputs[0]!.shape[shape.length - 1]!];
    if (k * n !== p.entryElements || (dtype !== 'float32' && dtype !== 'float64')) return null;
    const g = q.transB ? p.gathered(n, k) : p.gathered(k, n);
    // The source must outlive the copy it replaces (sourcesLiveWithConcats), unless an input.
    if (!g || g.slot === q.cSlot || (ctx.plan.materialized.has(g.source.id) && !ctx.longLived.has(g.source.id))) return null;
    const b = q.transB ? { ...g, rows: g.cols, cols: g.rows } : g;
    if (!matmulGatheredBFits(dtype, m, n, k, b.rows, b.cols)) return null;
    plans.push({ step, q, b });
  }
  return plans.sort((x, y) => x.step - y.step);
}

/**
 * Steps with each conv-columns copy either dropped, where every reader packs its B from the
 * columns' source (gatheredProduct), or merged with the product right after it that reads them
 * (interleaveEntries).
 */
function interleaved(ctx: LoweringContext, steps: readonly Step[]): Step[] {
  const dropped = new Set<number>();
  const replaced = new Map<number, Step>();
  steps.forEach((s, i) => {
    const p = s.entries;
    const plans = p && gatheredReaders(ctx, steps, i, p);
    if (!plans) return;
    dropped.add(i);
    plans.forEach(({ step, q, b }, k) => replaced.set(step, gatheredProduct(s, steps[step]!, p, q, b, k === 0)));
  });
  const out: Step[] = [];
  for (let i = 0; i < steps.length; i++) {
    if (dropped.has(i)) continue;
    const r = replaced.get(i);
    if (r) {
      out.push(r);
      continue;
    }
    const p = steps[i]!.entries;
    const q = steps[i + 1]?.entryProduct;
    if (p && q && !replaced.has(i + 1) && readsEntries(p, q)) {
      out.push(interleaveEntries(steps[i]!, steps[i + 1]!, p, q));
      i++;
    } else out.push(steps[i]!);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scans, arg-reductions and defined shader primitives: the eager kernels on dense operands

/**
 * The kernel eager mode runs for `eq` (scanInto, argReduceInto, or a defined primitive's CPU
 * function), on dense operands: a stored value is read in place, anything else (its prologue,
 * a view) is first gathered into scratch by a generated loop. Same kernel, same bits as eager.
 */
function lowerEagerKernel(ctx: LoweringContext, index: number): Step {
  const eq = ctx.program.equations[index]!;
  const equations = new Set<number>([index]);
  const gathers: { bound: Bound; source: string }[] = [];
  const operandSlots = eq.inputs.map((x, k) => {
    const loc = ctx.locations.get(x.id);
    if (loc) return loc.slot;
    const { slot, bound, source } = gatherOperand(ctx, x, `gather_${k}`, equations);
    gathers.push({ bound, source });
    return slot;
  });
  const outSlot = ctx.locations.get(eq.out.id)!.slot;
  const p = eq.prim;
  let compute: (inputs: readonly TypedArray[], out: TypedArray) => void;
  let what: string;
  if (isScan(p)) {
    const { axis, reverse } = eq.params as PrimitiveParams['cumsum'];
    compute = (inputs, out) => scanInto(p, inputs[0]!, eq.inputs[0]!.dtype, eq.inputs[0]!.shape, axis, reverse, out);
    what = `scanInto('${p}', axis ${axis}${reverse ? ', reverse' : ''})`;
  } else if (isArgReduce(p)) {
    const { axis } = eq.params as PrimitiveParams['argmax'];
    compute = (inputs, out) => argReduceInto(p, inputs[0]!, eq.inputs[0]!.dtype, eq.inputs[0]!.shape, axis, out);
    what = `argReduceInto('${p}', axis ${axis})`;
  } else if (p === 'custom') {
    const { name } = eq.params as PrimitiveParams['custom'];
    compute = (inputs, out) => {
      const def = primitiveDefinition(name);
      if (def.kind !== 'shader') throw new Error(`internal: '${name}' planned as a kernel of its own but is elementwise`);
      def.cpu(eq.inputs.map((x, k) => ({ data: inputs[k]!, shape: x.shape, dtype: x.dtype })), { data: out, shape: eq.out.shape, dtype: eq.out.dtype });
    };
    what = `${name}'s CPU function`;
  } else throw new Error(`internal: no compiled CPU kernel for '${p}'`);
  const name = ctx.kernelName(`${p === 'custom' ? `custom_${(eq.params as PrimitiveParams['custom']).name}` : p}_${sizeOf(eq.out.shape)}`);
  const source = [...gathers.map((g) => g.source), `// ${what}, the eager kernel`].join('\n');
  const inputs = new Array<TypedArray>(operandSlots.length);
  return {
    name, equations: [...equations].sort((a, b) => a - b), source,
    run(slots) {
      for (const g of gathers) g.bound.fn(g.bound.arrays(slots));
      operandSlots.forEach((s, k) => (inputs[k] = slots[s]!));
      compute(inputs, slots[outSlot]!);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Random draws and scatter-adds

function lowerRandom(ctx: LoweringContext, index: number): Step {
  const eq = ctx.program.equations[index]! as Equation<'random'>;
  const p = eq.params;
  const slot = ctx.locations.get(eq.out.id)!.slot;
  const keyIndex = eq.key ? ctx.program.canonicalKeys().indexOf(eq.key) : -1;
  return {
    name: ctx.kernelName(`random_${p.distribution}_${sizeOf(p.shape)}`),
    equations: [index],
    source: `// fillRandomCpu(out, key, '${p.distribution}'): Philox 4x32-10, the stream layout of every backend (float32 in WebAssembly, the bits of fillRandom)`,
    run(slots, keys) {
      fillRandomCpu(slots[slot] as Float32Array | Float64Array, keyIndex >= 0 ? keys![keyIndex]! : p.key, p.distribution);
    },
  };
}

/**
 * Scatter-add as the eager kernel does it: every index checked first (the CPU's range error),
 * then the updates added in row-major order into zeros, each sum rounded by the store.
 */
function lowerScatterAdd(ctx: LoweringContext, index: number): Step {
  const eq = ctx.program.equations[index]! as Equation<'scatterAdd'>;
  const { axis, size } = eq.params;
  const [updates, indices] = eq.inputs as [ProgramVar, ProgramVar];
  const w = newWriter(ctx);
  const out = ctx.locations.get(eq.out.id)!;
  const outName = w.array(out.slot);
  const lines: string[] = [`${outName}.fill(0);`];
  lines.push(...w.forEach(indices.shape, (j) => {
    const r = w.value(indices, j);
    w.emit(`if (!(${r} >= 0 && ${r} < ${size})) throw indexOutOfRange('scatterAdd', ${r}, ${axis}, ${size});`);
  }));
  lines.push(...w.forEach(updates.shape, (coords) => {
    const r = w.value(indices, { axes: [coords.axes[axis]!] });
    const at = w.address(out, { axes: coords.axes.map((c, d) => (d === axis ? r : c)) }, eq.out.shape);
    const u = w.value(updates, coords);
    w.emit(`${outName}[${at}] = ${outName}[${at}] + ${u};`);
  }));
  return generatedStep(w, ctx.kernelName(`fused_scatterAdd_${sizeOf(eq.out.shape)}`), lines, covered(w, [index]));
}
