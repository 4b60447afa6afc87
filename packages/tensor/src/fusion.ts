// Fusion: groups a program's equations into kernels, the step between a traced program and the
// code a backend generates (tinygrad's scheduler, XLA's loop fusion). Backend-neutral: it decides
// which values are written to memory ("materialised") and which kernel writes each; a backend
// then generates one kernel per group, computing every other value inline from its definition.
//
// - Elementwise ops (and constants, casts, stop-gradients) never need memory of their own: a
//   consumer computes them at the coordinates it needs. Movement ops (reshape, expand, permute,
//   slice, pad, concat, gather) are index arithmetic on the way to a value. A matmul with a tiny
//   inner dimension is a short sum of products, also inline.
// - Anchors write their result: reductions (with their input computed inline: a prologue),
//   matmuls (a skinny one as dot products, a reduction with a prologue too; a large one as a
//   tiled kernel reading its operands through strides), random draws and scatter-adds.
// - A value is also materialised when it is a result of the program, when a tiled matmul or a
//   scatter-add must read it from memory, or when several kernels would each recompute it and it
//   is not cheap (its inline cost passes a threshold).
// - Materialised elementwise values are grouped: into an anchor's kernel as its epilogue when
//   they read the anchor's result at the same coordinates (bias + activation after a matmul,
//   the mean after a sum), or, where the backend computes them so (splitRowEpilogues), at the
//   same row-major index through a reshape that regroups its rows (a batched product; any
//   regrouping of a reduction's outputs, as a keepdims [b, s, 1]), else into the earliest
//   elementwise kernel whose inputs are ready (several results per kernel, several shapes as
//   segments of one launch); a small value read through a broadcast goes before the anchor whose
//   epilogue reads it.

import type { Equation, Program, ProgramVar } from './program.js';
import type { Primitive } from './primitives.js';
import type { DType } from './dtype.js';
import { type PrimitiveParams, isArgReduce, isBinary, isCompare, isScan, isUnary } from './primitives.js';
import { primitiveDefinition } from './primitiveRegistry.js';
import { reshapeGroups, shapesEqual, sizeOf, stridesOf } from './shape.js';

export interface FusionOptions {
  /** Matmuls whose inner dimension K is at most this are computed inline (K products). Default 4. */
  inlineContractionMax?: number;
  /** Matmuls with M or N at most this become dot-product (reduction) kernels. Default 4. */
  skinnyMatmulMax?: number;
  /** A value read by several kernels is recomputed in each while its inline cost is at most this. Default 4. */
  recomputeCostMax?: number;
  /**
   * Most stored values (buffers) one value's computation may read: a device binds a limited
   * number of buffers per kernel. A value reading more stores part of its computation first.
   * Default unlimited.
   */
  maxReadsPerValue?: number;
  /**
   * Whether elementwise values computed from a large matmul's result join its kernel as an
   * epilogue (default true). A backend whose shader compiles are slow (a software adapter)
   * turns it off: the tiled matmul kernel is then the same code for every program, compiled once.
   */
  matmulEpilogues?: boolean;
  /**
   * Whether an anchor's epilogue also takes elementwise values that read its result through a
   * reshape regrouping its rows (regroupsRows): [b·s, h] to [b, s, h], how `matmul` returns the
   * product of a batch of activations [b, s, d] and a weight [d, h], folded into one [b·s, d]
   * product; [b, m, n] to [b·m, n], a batched product's rows merged; and values that read such
   * epilogue values back at the anchor's shape (the next product's operand, folded again).
   * Default false. The reshape is a view of the same memory
   * in the same order, so each value's element is the anchor's of the same row-major index: a
   * backend that computes its epilogue at the coordinates that index decodes to over each
   * value's shape sets it (WebGPU; the CPU's epilogues run over the product's own rows and shape).
   */
  splitRowEpilogues?: boolean;
  /**
   * A computed value that a kernel reads through a broadcast (an expand to a larger shape, like
   * a row's log-sum-exp subtracted in a softmax) is stored by its own small kernel, instead of
   * recomputed for every element of the broadcast, when the broadcast has at least this many
   * elements. Default Infinity (never). The CPU sets the size from which its WebAssembly kernels
   * run: they read only stored operands, and a value per row then costs a row's work once
   * instead of once per element.
   */
  broadcastStoreMin?: number;
  /**
   * A `pad` read by at least this many equations (a convolution's or a pool's windows, each a
   * slice of it) is stored by its own kernel, so that the windows read it without a range test
   * per element. Default Infinity (never). The CPU sets 2: a padded copy costs one pass.
   */
  padStoreReaders?: number;
  /**
   * A `concat` of at least this many elements is stored by a kernel of its own, and so is each
   * of its pieces that is not a view of a stored value: the concat is then a copy of blocks
   * where its pieces are contiguous runs of their arrays (the backend's choice).
   * Default Infinity (never). The CPU sets the size from which its WebAssembly kernels run: the
   * pieces are computed by them and copied by blocks, where a fused loop picks a piece per element
   * in JavaScript.
   */
  concatStoreMin?: number;
  /**
   * Where a matmul's operand is a chain of movements (a transpose, a reshape, an expand over batch
   * axes) of a computed value, and storing that value would make the operand a view whose
   * matrices are row-major or transposed, store the value rather than the operand (default
   * false: the operand itself is stored). For a backend whose products read a transposed operand
   * in place (the CPU's transA / transB): the value is then computed in its own layout by an
   * elementwise kernel that reads its inputs densely, where storing a transpose reads them down
   * their columns (W6's [128, 1024] kernel: benchmarks/NOTES.md, "A transposed matmul operand's
   * computed source stored").
   */
  matmulOperandSources?: boolean;
  /**
   * From this many elements, a `gather` is stored by a kernel of its own, whose work is then a
   * copy of blocks, and the kernels reading it read memory; and a `pad`'s computed input that
   * calls a transcendental is stored, so that it is computed once by an elementwise kernel
   * rather than inside the pad's. Default Infinity (never). The CPU sets the size from which its
   * WebAssembly kernels run: those read stored operands only, and the copies are the eager
   * routines'. (Pads themselves are not stored so: the gradient of a slice is a pad, and a sum of
   * such pads, a pool's gradient, is one fused loop.)
   */
  movementStoreMin?: number;
  /**
   * Most transcendental operations (exp, log, tanh, sigmoid, pow, …) among the inline equations
   * one value's computation includes, the value's own counted: past it the value stores the
   * inline input whose computation has most of them, as INLINE_OPS_MAX caps all inline
   * equations. Default Infinity. A software adapter (llvmpipe) sets it: its compiler's time grows
   * faster than linearly in the branchy inlined functions of one kernel (a chain of 120 mul, add
   * and tanh, 40 tanh: 7.6 s; the same length of mul and add: 0.2 s; benchmarks/NOTES.md, "Time
   * to first step").
   */
  inlineTranscendentalsMax?: number;
  /**
   * Most equations one elementwise kernel computes, its roots' inline equations summed: a value
   * that would pass it in every kernel it could join starts a kernel of its own. Default
   * Infinity. A software adapter sets it: kernels of many roots (the sibling values a gradient
   * sums, the pieces of a wide concat) grew to thousands of equations, and llvmpipe's compile
   * time grows faster than linearly in a kernel's size (benchmarks/NOTES.md, "Kernels of
   * thousands of equations").
   */
  kernelEquationsMax?: number;
}

/** Elementwise results of one shape computed by one kernel launch. */
export interface FusedSegment {
  readonly shape: readonly number[];
  readonly roots: ProgramVar[];
}

interface AnchorKernel<K extends string> {
  readonly kind: K;
  /** Index of the anchor equation in `program.equations`. */
  readonly equation: number;
  /** Elementwise results computed from the anchor's result at its output coordinates. */
  readonly epilogue: ProgramVar[];
  /** Whether the anchor's own result is written (false when only the epilogue reads it). */
  writesResult: boolean;
}

export type FusedKernel =
  | { readonly kind: 'elementwise'; readonly segments: FusedSegment[] }
  | AnchorKernel<'reduce'>
  | AnchorKernel<'dot'>
  | AnchorKernel<'matmul'>
  | { readonly kind: 'random'; readonly equation: number }
  | { readonly kind: 'scatterAdd'; readonly equation: number }
  /** cumsum or cumprod: one walk along the axis per line, its input computed inline. */
  | { readonly kind: 'scan'; readonly equation: number }
  /** argmax or argmin: one walk along the axis per output, its input computed inline. */
  | { readonly kind: 'argReduce'; readonly equation: number }
  /** A defined primitive's own compute shader (its operands read from memory, dense). */
  | { readonly kind: 'custom'; readonly equation: number };

export interface FusionPlan {
  readonly program: Program;
  readonly kernels: readonly FusedKernel[];
  /** Values written to memory (program inputs excluded). */
  readonly materialized: ReadonlySet<number>;
  /** The equation defining each value, by id. */
  readonly definitions: ReadonlyMap<number, Equation>;
  /** The kernel that writes each materialised value. */
  readonly producer: ReadonlyMap<number, number>;
  readonly options: Required<FusionOptions>;
}

const DEFAULTS: Required<FusionOptions> = { inlineContractionMax: 4, skinnyMatmulMax: 4, recomputeCostMax: 4, maxReadsPerValue: Infinity, matmulEpilogues: true, splitRowEpilogues: false, broadcastStoreMin: Infinity, padStoreReaders: Infinity, concatStoreMin: Infinity, matmulOperandSources: false, movementStoreMin: Infinity, inlineTranscendentalsMax: Infinity, kernelEquationsMax: Infinity };

/** Most inline operations one stored value's kernel may need, copies for each way a value is read counted (planFusion). */
const INLINE_EXPANSION_MAX = 1024;
/**
 * Most inline equations one value's computation may include (each counted once however it is
 * read). A kernel computes its stored values' inline inputs from their definitions, recursively
 * (the CPU and WGSL writers walk the definitions depth first) and as one function: a chain of
 * thousands of elementwise ops left inline overflowed the call stack of the writers (and of the
 * plan's own walks) and made one kernel too long for a compiler. Longer chains are cut by storing
 * values on the way (planFusion).
 */
export const INLINE_OPS_MAX = 256;
/** Ways of reading one value counted, at most (enough to pass INLINE_EXPANSION_MAX with any costly value). */
const EXPANSION_WAYS_MAX = 256;

const MOVEMENT = new Set<Primitive>(['reshape', 'expand', 'permute', 'slice', 'stopGradient']);
const INDEXING = new Set<Primitive>(['pad', 'concat', 'gather']);
/**
 * With inlineTranscendentalsMax: how many more transcendentals a cut at a value several equations
 * read may leave than the best cut and still be taken (two: a softplus's exp and log1p).
 */
const SHARED_CUT_SLACK = 2;
/** With inlineTranscendentalsMax: at most this many candidate cuts are priced by a walk each (more, by their dominators). */
const CUT_WALKS_MAX = 4;

const TRANSCENDENTAL = new Set<Primitive>(['exp', 'log', 'sin', 'cos', 'tanh', 'log1p', 'expm1', 'sigmoid', 'pow', 'erf']);

/** How a matmul equation is computed, by its sizes. */
export function matmulLowering(eq: Equation, opts: Required<FusionOptions>): 'inline' | 'dot' | 'matmul' {
  const a = eq.inputs[0]!.shape;
  const r = a.length;
  const k = a[r - 1]!;
  const m = eq.out.shape[r - 2]!;
  const n = eq.out.shape[r - 1]!;
  if (k <= opts.inlineContractionMax) return 'inline';
  if (m <= opts.skinnyMatmulMax || n <= opts.skinnyMatmulMax) return 'dot';
  return 'matmul';
}

/** True for an equation of a primitive defined as elementwise (definePrimitive): fused like a built-in op. */
export function isElementwiseCustom(eq: Equation): boolean {
  return eq.prim === 'custom' && primitiveDefinition((eq.params as PrimitiveParams['custom']).name).kind === 'elementwise';
}

/** True for equations computed inline by their consumers. */
function isInline(eq: Equation, opts: Required<FusionOptions>): boolean {
  const p = eq.prim;
  if (isUnary(p) || isBinary(p) || isCompare(p) || p === 'where' || p === 'cast' || p === 'full') return true;
  if (p === 'custom') return isElementwiseCustom(eq);
  if (MOVEMENT.has(p) || INDEXING.has(p)) return true;
  return p === 'matmul' && matmulLowering(eq, opts) === 'inline';
}

/** Arithmetic cost of computing `eq` once, inputs excluded (a rough count of operations). */
function ownCost(eq: Equation): number {
  const p = eq.prim;
  if (MOVEMENT.has(p) || p === 'full') return 0;
  if (TRANSCENDENTAL.has(p) || p === 'custom') return 8;
  if (p === 'div' || p === 'sqrt' || p === 'reciprocal') return 2;
  if (p === 'matmul') return 2 * eq.inputs[0]!.shape[eq.inputs[0]!.shape.length - 1]!;
  return 1;
}

/**
 * A materialised value a kernel reads, its shape, whether it is read at the reader's own
 * coordinates, and whether at the reader's own row-major index (through elementwise ops and
 * reshapes alone: the same element when the shapes are equal).
 */
interface Leaf {
  readonly id: number;
  readonly shape: readonly number[];
  readonly identity: boolean;
  readonly linear: boolean;
}

/**
 * True when `to` is `from` with its leading (row) axes split into more axes, the last axis kept:
 * each leading axis of `from` the product of consecutive leading axes of `to` (size-1 axes of
 * either aside), as [b·s, h] to [b, s, h], or [b, m, n] to [b, m₁, m₂, n]. Not a reshape that
 * merges rows or changes the last axis (a row joined to the columns, columns split). A value of
 * `to`'s shape then holds the element of `from` of the same row-major index at the same row
 * index and column. False for equal shapes and for empty ones.
 */
export function splitsRows(from: readonly number[], to: readonly number[]): boolean {
  if (from.length === 0 || to.length === 0 || shapesEqual(from, to) || sizeOf(from) === 0) return false;
  if (from[from.length - 1] !== to[to.length - 1] || sizeOf(from) !== sizeOf(to)) return false;
  const rows = from.slice(0, -1).filter((d) => d !== 1);
  const split = to.slice(0, -1).filter((d) => d !== 1);
  let j = 0;
  for (const d of rows) {
    let product = 1;
    while (product < d && j < split.length) product *= split[j++]!;
    if (product !== d) return false;
  }
  return j === split.length;
}

/**
 * True when `to` is `from` with its leading (row) axes regrouped, the last axis kept: split
 * (splitsRows: [b·s, h] to [b, s, h]), merged ([b, m, n] to [b·m, n], a batched product's rows
 * joined), or both, each shape's rows consecutive groups of axes of one finer shape (size-1 axes
 * of either aside): the suffix products of both shapes' rows divide one another in a chain. A
 * value of `to`'s shape then holds the element of `from` of the same row-major index at the same
 * row index and column, and a loop over `from`'s rows names `to`'s coordinates by grouping those
 * of the finer shape. Not a reshape that joins a row to the columns or splits them; false for
 * equal shapes and for empty ones.
 */
export function regroupsRows(from: readonly number[], to: readonly number[]): boolean {
  if (from.length === 0 || to.length === 0 || shapesEqual(from, to) || sizeOf(from) === 0) return false;
  if (from[from.length - 1] !== to[to.length - 1] || sizeOf(from) !== sizeOf(to)) return false;
  return nests(from.slice(0, -1), to.slice(0, -1));
}

/**
 * True when `to` is `from` with its axes regrouped, the last included: both shapes consecutive
 * groups of axes of one finer shape (size-1 axes of either aside), as a keepdims reduction's
 * [b, s] read as [b, s, 1], or a row sum of [b·s, h] read as [b, s, 1]. A value of `to`'s shape
 * then holds the element of `from` of the same row-major index; a reduction's outputs have no
 * columns that a loop over rows keeps, so its epilogue takes any such reshape. False for equal
 * shapes and empty ones.
 */
export function regroupsAxes(from: readonly number[], to: readonly number[]): boolean {
  if (shapesEqual(from, to) || sizeOf(from) === 0 || sizeOf(from) !== sizeOf(to)) return false;
  return nests(from, to);
}

/**
 * Whether two shapes of one size group consecutive axes of one finer shape: their suffix
 * products (the strides of their axes, size-1 axes aside) taken together form a chain, each
 * dividing the next.
 */
function nests(a: readonly number[], b: readonly number[]): boolean {
  const cuts = new Set<number>();
  for (const s of [a, b]) {
    let p = 1;
    for (let k = s.length - 1; k >= 0; k--) {
      p *= s[k]!;
      if (p > 1) cuts.add(p);
    }
  }
  const sorted = [...cuts].sort((x, y) => x - y);
  return sorted.every((c, i) => i === 0 || c % sorted[i - 1]! === 0);
}

/** Groups `program`'s equations into kernels. */
export function planFusion(program: Program, options: FusionOptions = {}): FusionPlan {
  const opts = { ...DEFAULTS, ...options };
  const defs = new Map<number, Equation>();
  program.equations.forEach((eq) => defs.set(eq.out.id, eq));
  const inputIds = new Set(program.inputs.map((v) => v.id));
  const equationIndex = new Map<number, number>();
  program.equations.forEach((eq, i) => equationIndex.set(eq.out.id, i));
  // Values kernels store (an output or update that is an input is stored already).
  const mat = new Set<number>();
  for (const v of program.outputs) if (!inputIds.has(v.id)) mat.add(v.id);
  for (const u of program.updates) if (!inputIds.has(u.value.id)) mat.add(u.value.id);
  for (const eq of program.equations) if (!isInline(eq, opts)) mat.add(eq.out.id);

  // Operands that a kernel reads from memory through strides must be views of stored values
  // (stored values and inputs are row-major: compiled programs make inputs contiguous).
  const isStoredView = (v: ProgramVar): boolean => storedView(v, defs, (id) => inputIds.has(id) || mat.has(id)) !== null;
  for (const eq of program.equations) {
    const needsViews = eq.prim === 'scatterAdd' || (eq.prim === 'matmul' && matmulLowering(eq, opts) === 'matmul');
    if (needsViews) {
      for (const x of eq.inputs) {
        if (isStoredView(x)) continue;
        const source = eq.prim === 'matmul' && opts.matmulOperandSources ? matrixViewSource(x, defs, (id) => inputIds.has(id) || mat.has(id)) : null;
        mat.add((source ?? x).id);
      }
    }
    // A custom shader reads its operands dense: each is a stored value (or a program input).
    if (eq.prim === 'custom' && !isElementwiseCustom(eq)) for (const x of eq.inputs) if (!inputIds.has(x.id)) mat.add(x.id);
  }

  // No value's computation includes more than INLINE_OPS_MAX inline equations: in program order
  // (inputs before their readers), while the inline equations a value needs, shared ones counted
  // once, pass the limit, store the inline input that needs most. Linear in the program's size
  // (each set holds at most the limit), and every later walk of inline definitions is bounded.
  // With inlineTranscendentalsMax, the same for the transcendental operations a value's
  // computation includes (its own counted): `transcendentals` holds each inline value's count.
  // A value whose largest inline input is read by no other equation takes over that input's set
  // and adds the others to it, rather than copying it (a chain of thousands of ops copied up to
  // 256 ids per op, here and in the recompute rule's `needs` below).
  const inlineRegion = new Map<number, Set<number>>();
  const capTranscendentals = Number.isFinite(opts.inlineTranscendentalsMax);
  const transcendentals = new Map<number, number>();
  // With inlineTranscendentalsMax: the transcendental equations in each inline value's set (its
  // own not counted), by equation index; and the equation during whose planning each value this
  // loop stores was stored (a value's set was made from its inputs not stored before it).
  const regionTranscendentals = new Int32Array(program.equations.length);
  const storedWhile = new Map<number, number>();
  const readerCount = new Map<number, number>();
  program.equations.forEach((eq) => eq.inputs.forEach((x, k) => {
    if (eq.inputs.findIndex((y) => y.id === x.id) === k) readerCount.set(x.id, (readerCount.get(x.id) ?? 0) + 1);
  }));
  /** The inline input of `eq` with the most inline equations in `sets` (the first of equals), when `eq` alone reads it; else null. */
  const handedOn = (eq: Equation, sets: ReadonlyMap<number, Set<number>>): ProgramVar | null => {
    let best: ProgramVar | null = null;
    for (const x of eq.inputs) {
      if (mat.has(x.id) || inputIds.has(x.id)) continue;
      if (best === null || sets.get(x.id)!.size > sets.get(best.id)!.size) best = x;
    }
    return best !== null && readerCount.get(best.id) === 1 ? best : null;
  };
  // The walks below mark the values they have seen with the walk's number, rather than make a
  // Set per walk (planning the 3,000-op chain's gradient under the cap walks ~5,000 times).
  const seenIn = new Map<number, number>();
  let walk = 0;
  /**
   * The transcendental operations `eq`'s computation includes now (its own counted), walking its
   * inline definitions up to stored values and inputs, `stored` taken as stored too. With
   * `reached`, the inline values the walk passes are added to it.
   */
  const inlineTranscendentals = (eq: Equation, stored: number | null, reached?: Set<number>): number => {
    let count = TRANSCENDENTAL.has(eq.prim) ? 1 : 0;
    const mark = ++walk;
    const stack = eq.inputs.slice();
    for (let x = stack.pop(); x !== undefined; x = stack.pop()) {
      if (seenIn.get(x.id) === mark || x.id === stored || mat.has(x.id) || inputIds.has(x.id)) continue;
      seenIn.set(x.id, mark);
      reached?.add(x.id);
      const def = defs.get(x.id)!;
      if (TRANSCENDENTAL.has(def.prim)) count++;
      for (const y of def.inputs) stack.push(y);
    }
    return count;
  };
  /**
   * For each inline value in `reached` (all those `eq`'s computation includes now, walking its
   * inline definitions), the transcendentals `eq`'s computation would include with that value
   * stored: `count` (all of them, `eq`'s own counted) less those of the values that only that
   * value's computation includes (the values it dominates, itself among them). What
   * `inlineTranscendentals(eq, id)` counts for each id, in one pass over the values rather than
   * a walk per value (the cut below tries tens of values, each walk up to INLINE_OPS_MAX).
   * Program order is a topological order of the values (readers after their inputs), so each
   * value's immediate dominator is the meeting point of its readers' dominators (Cooper, Harvey
   * and Kennedy), its readers all placed before it, latest equation first.
   */
  const transcendentalsLeft = (eq: Equation, count: number, reached: ReadonlySet<number>): Map<number, number> => {
    const nodes = [...reached].sort((a, b) => equationIndex.get(b)! - equationIndex.get(a)!);
    // Position in that order (the root, `eq`, first) and immediate dominator, by id.
    const root = eq.out.id;
    const position = new Map<number, number>([[root, 0]]);
    nodes.forEach((id, k) => position.set(id, k + 1));
    const idom = new Map<number, number>();
    const meet = (a: number, b: number): number => {
      while (a !== b) {
        while (position.get(a)! > position.get(b)!) a = idom.get(a)!;
        while (position.get(b)! > position.get(a)!) b = idom.get(b)!;
      }
      return a;
    };
    const reach = (from: number, inputs: readonly ProgramVar[]): void => {
      for (const y of inputs) {
        if (!reached.has(y.id)) continue;
        const known = idom.get(y.id);
        idom.set(y.id, known === undefined ? from : meet(known, from));
      }
    };
    reach(root, eq.inputs);
    for (const id of nodes) reach(id, defs.get(id)!.inputs);
    const dominated = new Map<number, number>();
    for (let k = nodes.length - 1; k >= 0; k--) {
      const id = nodes[k]!;
      const own = (dominated.get(id) ?? 0) + (TRANSCENDENTAL.has(defs.get(id)!.prim) ? 1 : 0);
      dominated.set(id, own);
      const up = idom.get(id)!;
      if (up !== root) dominated.set(up, (dominated.get(up) ?? 0) + own);
    }
    const left = new Map<number, number>();
    for (const id of nodes) left.set(id, count - dominated.get(id)!);
    return left;
  };
  /**
   * The ids of `eq`'s set in the order the set was first built by copying: each input (not
   * stored), then its own set in that order, each id where it first comes: a walk, depth first,
   * of the inputs each set was made from (those not stored before its value was planned; values
   * are only ever added to `mat`). Sets taken over, or copied whole, hold the same ids in another
   * order; the cut below tries candidates in this one (the first of equals wins).
   */
  const regionOrder = (eq: Equation): number[] => {
    const order: number[] = [];
    const mark = ++walk;
    const stack: number[] = [];
    const push = (inputs: readonly ProgramVar[], index: number): void => {
      for (let k = inputs.length - 1; k >= 0; k--) {
        const y = inputs[k]!.id;
        if (!inputIds.has(y) && !(mat.has(y) && (storedWhile.get(y) ?? -1) <= index)) stack.push(y);
      }
    };
    push(eq.inputs, Infinity);
    for (let id = stack.pop(); id !== undefined; id = stack.pop()) {
      if (seenIn.get(id) === mark) continue;
      seenIn.set(id, mark);
      order.push(id);
      push(defs.get(id)!.inputs, equationIndex.get(id)!);
    }
    return order;
  };
  const added: number[] = [];
  for (const eq of program.equations) {
    for (;;) {
      // An input read by this value alone hands its set on (taken over, not copied). Every set
      // holds the sets of the values in it (a value's set is its inputs' and theirs), so an
      // input already in the set brings nothing new. With inlineTranscendentalsMax a cut may
      // store another value and retry: the ids added to the input's set are then taken out
      // again (appended last, so the set is as it was, in its order). Without the cap, a retry
      // stores the largest input, which is the one taken over (handedOn takes the first largest;
      // what is added only makes it larger), so its set is not read again.
      const taken = handedOn(eq, inlineRegion);
      let region = taken === null ? new Set<number>() : inlineRegion.get(taken.id)!;
      // With the cap: the ids added to a set taken over (to take out again), and its transcendentals.
      const track = capTranscendentals && taken !== null;
      added.length = 0;
      let regionCount = track ? regionTranscendentals[equationIndex.get(taken.id)!]! : 0;
      let largest: number | null = null;
      let largestSize = -1;
      let richest: number | null = null;
      let richestCount = -1;
      for (const x of eq.inputs) {
        if (mat.has(x.id) || inputIds.has(x.id)) continue;
        const theirs = inlineRegion.get(x.id)!;
        if (taken === null && region.size === 0) {
          // The first input of a new set: a copy of its set made whole (and its count).
          region = new Set(theirs);
          region.add(x.id);
          if (capTranscendentals) regionCount = regionTranscendentals[equationIndex.get(x.id)!]! + (TRANSCENDENTAL.has(defs.get(x.id)!.prim) ? 1 : 0);
        } else if (!region.has(x.id)) {
          if (!capTranscendentals) {
            region.add(x.id);
            if (x !== taken) for (const y of theirs) region.add(y);
          } else {
            region.add(x.id);
            if (track) added.push(x.id);
            if (TRANSCENDENTAL.has(defs.get(x.id)!.prim)) regionCount++;
            if (x !== taken) {
              for (const y of theirs) {
                if (region.has(y)) continue;
                region.add(y);
                if (track) added.push(y);
                if (TRANSCENDENTAL.has(defs.get(y)!.prim)) regionCount++;
              }
            }
          }
        }
        if (theirs.size > largestSize) {
          largest = x.id;
          largestSize = theirs.size;
        }
        if (capTranscendentals && transcendentals.get(x.id)! > richestCount) {
          richest = x.id;
          richestCount = transcendentals.get(x.id)!;
        }
      }
      const undo = (): void => {
        for (const id of added) region.delete(id);
      };
      if (largest !== null && region.size >= INLINE_OPS_MAX) {
        undo();
        mat.add(largest);
        storedWhile.set(largest, equationIndex.get(eq.out.id)!);
        continue;
      }
      if (capTranscendentals) {
        let count = (TRANSCENDENTAL.has(eq.prim) ? 1 : 0) + regionCount;
        if (count > opts.inlineTranscendentalsMax) {
          // An input's set is as it was planned: a value this cap stored since (for another
          // reader) still counts there with all it needs, so the count is made afresh.
          const reached = new Set<number>();
          count = inlineTranscendentals(eq, null, reached);
          if (richest !== null && richestCount > 0 && count > opts.inlineTranscendentalsMax) {
            // Store the value that leaves the fewest (an inline input, or a value several
            // equations read), unless a value several equations read leaves at most
            // SHARED_CUT_SLACK more: that one. softplus(x) = max(x, 0) + log1p(exp(−|x|)) reads x
            // on four paths; storing exp(−|x|) leaves one fewer than storing x, but x's chain then
            // stays in max(x, 0)'s path, read by two kernels, and is stored by the recompute rule
            // below as well (or passes the cap again one op later). Measured on 3,600 random
            // chains of 6–11 steps (jit.test.ts's): 45 pass 16 transcendentals; they planned 190
            // kernels with the richest input stored, 180 (four each) so.
            let best = richest;
            let fewest = Infinity;
            let shared: number | null = null;
            let sharedLeft = Infinity;
            const candidates = eq.inputs.map((x) => x.id);
            for (const y of regionOrder(eq)) if ((readerCount.get(y) ?? 0) > 1) candidates.push(y);
            const open = candidates.filter((id) => !mat.has(id) && !inputIds.has(id));
            // A few candidates are priced by a walk each, more by one pass over the dominators.
            const leftWith = open.length > CUT_WALKS_MAX ? transcendentalsLeft(eq, count, reached) : null;
            for (const id of open) {
              // A value the walk did not reach (behind a stored one) leaves all of them.
              const left = !reached.has(id) ? count : leftWith !== null ? leftWith.get(id)! : inlineTranscendentals(eq, id);
              if (left < fewest) [best, fewest] = [id, left];
              if ((readerCount.get(id) ?? 0) > 1 && left < sharedLeft) [shared, sharedLeft] = [id, left];
            }
            if (shared !== null && sharedLeft <= fewest + SHARED_CUT_SLACK) best = shared;
            undo();
            mat.add(best);
            storedWhile.set(best, equationIndex.get(eq.out.id)!);
            continue;
          }
        }
        transcendentals.set(eq.out.id, count);
        regionTranscendentals[equationIndex.get(eq.out.id)!] = regionCount;
      }
      inlineRegion.set(eq.out.id, region);
      break;
    }
  }

  // A computed value broadcast to a larger shape of at least broadcastStoreMin elements is
  // stored: the value the broadcast moves, past the movement ops between (a keepdims reshape),
  // unless a literal.
  for (const eq of program.equations) {
    if (eq.prim !== 'expand' || sizeOf(eq.out.shape) < opts.broadcastStoreMin || sizeOf(eq.out.shape) <= sizeOf(eq.inputs[0]!.shape)) continue;
    let v = eq.inputs[0]!;
    while (!mat.has(v.id) && !inputIds.has(v.id) && MOVEMENT.has(defs.get(v.id)!.prim)) v = defs.get(v.id)!.inputs[0]!;
    if (mat.has(v.id) || inputIds.has(v.id) || defs.get(v.id)!.prim === 'full') continue;
    mat.add(v.id);
  }

  // The equations that read each value.
  const consumers = new Map<number, Equation[]>();
  for (const eq of program.equations) for (const x of new Set(eq.inputs)) (consumers.get(x.id) ?? consumers.set(x.id, []).get(x.id)!).push(eq);

  // A pad that many windows read (padStoreReaders) is stored: each window then reads memory.
  for (const eq of program.equations) {
    if (eq.prim === 'pad' && (consumers.get(eq.out.id)?.length ?? 0) >= opts.padStoreReaders) mat.add(eq.out.id);
  }

  // A large gather (movementStoreMin) is stored: a copy of blocks.
  for (const eq of program.equations) {
    if (eq.prim === 'gather' && sizeOf(eq.out.shape) >= opts.movementStoreMin) mat.add(eq.out.id);
  }
  // A pad's computed input that calls a transcendental (a convolution after a softplus) is stored
  // from the same size on, so that the CPU computes it once in WebAssembly rather than in the pad's
  // loop. Not cheaper inputs: the gradient of a pool is a sum of pads of cheap products, which
  // one fused loop computes best.
  const transcendentalInline = (v: ProgramVar, seen = new Set<number>()): boolean => {
    if (mat.has(v.id) || inputIds.has(v.id) || seen.has(v.id)) return false;
    seen.add(v.id);
    const d = defs.get(v.id)!;
    return TRANSCENDENTAL.has(d.prim) || d.inputs.some((x) => transcendentalInline(x, seen));
  };
  for (const eq of program.equations) {
    if (eq.prim === 'pad' && sizeOf(eq.out.shape) >= opts.movementStoreMin && transcendentalInline(eq.inputs[0]!)) mat.add(eq.inputs[0]!.id);
  }

  // A large concat (concatStoreMin) is stored, with its computed pieces: a copy of blocks. Not
  // one whose pieces are all views of stored values, some strided (a convolution's windows):
  // copying those is the work of the kernel that reads them, as before.
  for (const eq of program.equations) {
    if (eq.prim !== 'concat' || sizeOf(eq.out.shape) < opts.concatStoreMin) continue;
    const views = eq.inputs.map((x) => storedView(x, defs, (id) => inputIds.has(id) || mat.has(id)));
    if (views.every((v) => v !== null) && views.some((v) => !isContiguous(v.view))) continue;
    mat.add(eq.out.id);
    eq.inputs.forEach((x, k) => {
      if (views[k] === null) mat.add(x.id);
    });
  }

  // Several kernels reading one costly inline value each recompute it: store it instead. One
  // value at a time, the latest first: storing a value leaves its own inputs with one reader
  // (that value's kernel), so whole chains are not stored for the sake of their last link.
  // One pass from the last equation back: storing a value changes the cost only of later values
  // (they no longer compute it) and the readers only of earlier ones (it is now their reader),
  // so a value's cost, computed up front, and its readers, computed from its consumers' just
  // before its turn, are those it would have were the plan recomputed after each value stored.
  // (Recomputing everything after each store was quadratic in the program's length.)
  {
    // The inline values each value's computation needs (shared ones counted once, as a kernel
    // computes a value once), and its cost.
    const needs = new Map<number, Set<number>>();
    const cost = new Map<number, number>();
    for (const eq of program.equations) {
      // A set taken over (as the regions above) brings its cost: its input's, which counts the
      // input's needs; the ids added to it bring theirs.
      const taken = handedOn(eq, needs);
      let set = taken === null ? new Set<number>() : needs.get(taken.id)!;
      let c = ownCost(eq) + (taken === null ? 0 : cost.get(taken.id)! - ownCost(defs.get(taken.id)!));
      const add = (id: number) => {
        if (set.has(id)) return;
        set.add(id);
        c += ownCost(defs.get(id)!);
      };
      for (const x of eq.inputs) {
        // An input already in the set brought its own set with it.
        if (mat.has(x.id) || inputIds.has(x.id) || set.has(x.id)) continue;
        if (taken === null && set.size === 0) {
          // The first input of a new set: a copy of its set made whole; its cost counts them all.
          set = new Set(needs.get(x.id)!);
          set.add(x.id);
          c += cost.get(x.id)!;
          continue;
        }
        add(x.id);
        if (x !== taken) for (const y of needs.get(x.id)!) add(y);
      }
      needs.set(eq.out.id, set);
      cost.set(eq.out.id, c);
    }
    // The kernels (stored values or anchors) that read each value, inline or directly: two
    // tell all the rule needs.
    const readers = new Map<number, Set<number>>();
    const broadcasts: [number, number][] = [];
    for (let i = program.equations.length - 1; i >= 0; i--) {
      const eq = program.equations[i]!;
      const id = eq.out.id;
      const set = new Set<number>();
      for (const c of consumers.get(id) ?? []) {
        if (set.size >= 2) break;
        if (mat.has(c.out.id) || !isInline(c, opts)) set.add(c.out.id);
        else for (const r of readers.get(c.out.id) ?? []) set.add(r);
      }
      readers.set(id, set);
      if (mat.has(id) || !isInline(eq, opts)) continue;
      if (set.size >= 2 && cost.get(id)! > opts.recomputeCostMax) {
        mat.add(id);
        // A broadcast (an expand, past reshapes) of a costly value: the value it moves is stored
        // instead, once the pass is done (the pass's costs and readers are those of the stored
        // broadcast: the value under it has the same single reader, and movements cost nothing).
        let base = eq;
        let broadcast = false;
        while ((base.prim === 'expand' || base.prim === 'reshape') && !mat.has(base.inputs[0]!.id) && !inputIds.has(base.inputs[0]!.id)) {
          broadcast ||= base.prim === 'expand' && sizeOf(base.out.shape) > sizeOf(base.inputs[0]!.shape);
          base = defs.get(base.inputs[0]!.id)!;
        }
        if (broadcast && isInline(base, opts)) broadcasts.push([id, base.out.id]);
      }
    }
    // Not the copy at every element of the broadcast: a bias's exp read by two products'
    // epilogues was stored as an [m, n] array, by a pass of its own after the first product.
    for (const [copy, base] of broadcasts) {
      mat.delete(copy);
      mat.add(base);
    }
  }

  // A kernel computes an inline value once for each distinct way it reads it: through movements
  // (slices at other offsets, pads, concat pieces, gathers, broadcasts) the same value is needed at
  // other coordinates, and the values those copies read are copied again. Nested, that
  // multiplies: the levels of a Hillis–Steele scan (cumprod's derivatives) each read the level
  // below at two offsets, so its inline code grows as 4^levels (a 173-long cumprod's gradient
  // made a kernel the compilers could not finish). While the inline work of some stored value's
  // kernel passes INLINE_EXPANSION_MAX operations, store the inline value whose copies cost most.
  const stored = (id: number) => mat.has(id) || inputIds.has(id);
  for (;;) {
    const unique = new Map<number, number>();
    const uniqueCost = (v: ProgramVar): number => {
      const known = unique.get(v.id);
      if (known !== undefined) return known;
      const seen = new Set<number>();
      const walk = (x: ProgramVar): number => {
        if (stored(x.id) || seen.has(x.id)) return 0;
        seen.add(x.id);
        const eq = defs.get(x.id)!;
        return Math.max(1, ownCost(eq)) + eq.inputs.reduce((c, y) => c + walk(y), 0);
      };
      const c = walk(v);
      unique.set(v.id, c);
      return c;
    };
    let chosen: number | null = null;
    for (const rootId of mat) {
      const start = equationIndex.get(rootId);
      if (start === undefined) continue;
      const ways = new Map<number, Set<string>>([[rootId, new Set([''])]]);
      let size = 0;
      // The root's kernel computes the inline values it reads: only their equations, latest first
      // (not every equation before the root: that was quadratic in the program's length).
      const region = [start];
      const inRegion = new Set<number>([rootId]);
      for (let r = 0; r < region.length; r++) {
        for (const x of program.equations[region[r]!]!.inputs) {
          if (stored(x.id) || inRegion.has(x.id)) continue;
          inRegion.add(x.id);
          region.push(equationIndex.get(x.id)!);
        }
      }
      region.sort((a, b) => b - a);
      for (const i of region) {
        const eq = program.equations[i]!;
        const mine = ways.get(eq.out.id);
        if (!mine || (i !== start && stored(eq.out.id))) continue;
        if (i !== start) size += mine.size * Math.max(1, ownCost(eq));
        const moves = MOVEMENT.has(eq.prim) || INDEXING.has(eq.prim);
        eq.inputs.forEach((x, k) => {
          if (stored(x.id)) return;
          const theirs = ways.get(x.id) ?? ways.set(x.id, new Set()).get(x.id)!;
          for (const w of mine) {
            if (theirs.size >= EXPANSION_WAYS_MAX) break;
            theirs.add(moves ? `${w}/${eq.out.id}.${k}` : w);
          }
        });
      }
      if (size <= INLINE_EXPANSION_MAX) continue;
      let best = 0;
      for (const [id, w] of ways) {
        if (id === rootId || w.size < 2) continue;
        const saved = (w.size - 1) * uniqueCost(defs.get(id)!.out);
        if (saved > best) {
          best = saved;
          chosen = id;
        }
      }
      if (chosen !== null) break;
    }
    if (chosen === null) break;
    mat.add(chosen);
  }

  // The stored values a root (or an anchor's operands) reads, walking inline definitions, and
  // whether each is read only at the root's own coordinates: through elementwise ops, or through
  // reshapes (which keep the row-major order) to a value of the root's own shape.
  type Access = 'same' | 'linear' | 'other';
  // Also whether each is read only at the root's row-major index, through reshapes of any shape.
  // An inline value reached again by the same access adds nothing (`walked`: its id and access),
  // so each is walked at most once per access, not once per path (see leafSet).
  const collect = (v: ProgramVar, root: ProgramVar, access: Access, into: Map<number, Leaf>, walked: Set<string>): void => {
    if (inputIds.has(v.id) || mat.has(v.id)) {
      const identity = access === 'same' || (access === 'linear' && shapesEqual(v.shape, root.shape));
      const seen = into.get(v.id);
      into.set(v.id, { id: v.id, shape: v.shape, identity: (seen?.identity ?? true) && identity, linear: (seen?.linear ?? true) && access !== 'other' });
      return;
    }
    const key = `${v.id}|${access}`;
    if (walked.has(key)) return;
    walked.add(key);
    const eq = defs.get(v.id)!;
    for (const x of eq.inputs) collect(x, root, through(eq, access), into, walked);
  };
  const rootLeaves = (v: ProgramVar): Leaf[] => {
    const eq = defs.get(v.id)!;
    const map = new Map<number, Leaf>();
    const walked = new Set<string>();
    for (const x of eq.inputs) collect(x, v, isInline(eq, opts) ? through(eq, 'same') : 'other', map, walked);
    return [...map.values()];
  };

  // A value (or an anchor's operands) reading more stored values than a kernel may bind stores
  // part of its computation first: the inline value, among those it computes, that reads the
  // most while staying within the limit (it then counts as one read).
  // Each inline value is walked once (`seen`): walked per path, a chain of values each read twice
  // (softplus reads its input on four paths, gelu on two) took time exponential in its length
  // (planning the gradient of 200 such steps under the transcendental cap: 7.4 s, not 0.1).
  const leafSet = (v: ProgramVar, into = new Set<number>(), seen = new Set<number>()): Set<number> => {
    if (inputIds.has(v.id) || mat.has(v.id)) return into.add(v.id);
    if (seen.has(v.id)) return into;
    seen.add(v.id);
    for (const x of defs.get(v.id)!.inputs) leafSet(x, into, seen);
    return into;
  };
  const inlineNodes = (v: ProgramVar, into = new Set<number>()): Set<number> => {
    for (const x of defs.get(v.id)!.inputs) {
      if (inputIds.has(x.id) || mat.has(x.id) || into.has(x.id)) continue;
      into.add(x.id);
      inlineNodes(x, into);
    }
    return into;
  };
  if (Number.isFinite(opts.maxReadsPerValue)) {
    for (const eq of program.equations) {
      if (!mat.has(eq.out.id)) continue;
      for (;;) {
        const reads = new Set<number>();
        for (const x of eq.inputs) leafSet(x, reads);
        if (reads.size <= opts.maxReadsPerValue) break;
        let best: number | null = null;
        let bestReads = 1;
        for (const id of inlineNodes(eq.out)) {
          const n = leafSet(defs.get(id)!.out).size;
          if (n > bestReads && n <= opts.maxReadsPerValue) {
            best = id;
            bestReads = n;
          }
        }
        if (best === null) break; // a single op reading too many: nothing to split (WebGPU splits wide concats first)
        mat.add(best);
      }
    }
  }

  const kernels: FusedKernel[] = [];
  const producer = new Map<number, number>();
  /** With inlineTranscendentalsMax: the transcendentals of each elementwise kernel's roots, summed. */
  const kernelTranscendentals = new Map<number, number>();
  /** With kernelEquationsMax: the equations each elementwise kernel computes (its roots' inline ones, summed). */
  const capEquations = Number.isFinite(opts.kernelEquationsMax);
  const kernelEquations = new Map<number, number>();
  // The buffers each anchor kernel binds so far (its operands' stored values, its result, and
  // each epilogue value's reads and store), when the device limits them (maxReadsPerValue is the
  // limit less two): an epilogue value that would take the kernel past the limit less one (one
  // kept for an index-error record) goes to an elementwise kernel instead, which splits itself.
  const anchorBindings = new Map<number, Set<number>>();
  const readyAfter = (leaves: readonly Leaf[], except?: number): number =>
    leaves.reduce((m, l) => (l.id === except ? m : Math.max(m, producer.get(l.id) ?? -1)), -1);

  // A stored elementwise value read through a broadcast (a bias's function b², b·2, stored when
  // broadcastStoreMin or two costly readers say so) is small, and often reads only inputs while
  // coming after a product in program order: its kernel then came after the product's, and a
  // value reading both, the product's epilogue, could not be in the product's kernel (bias and
  // activation a pass of their own). Such a value is placed just before the first anchor that
  // takes an epilogue, is read with it by some stored value, and comes after everything the
  // value reads (defined by earlier equations, so placed by then). Only these: hoisting every
  // value that reads inputs alone would keep large ones alive longer, and make kernels of their
  // own of values that an elementwise kernel after the anchor takes anyway.
  const epilogueAnchor = (eq: Equation): boolean =>
    !isInline(eq, opts) && (eq.prim === 'matmul' || !(eq.prim === 'random' || eq.prim === 'scatterAdd' || eq.prim === 'custom' || isScan(eq.prim) || isArgReduce(eq.prim)));
  const hoistBefore = new Map<number, number[]>();
  {
    const ready = new Map<number, number>();
    for (const eq of program.equations) {
      if (eq.prim !== 'expand' || sizeOf(eq.out.shape) <= sizeOf(eq.inputs[0]!.shape)) continue;
      let x = eq.inputs[0]!;
      while (!mat.has(x.id) && !inputIds.has(x.id) && MOVEMENT.has(defs.get(x.id)!.prim)) x = defs.get(x.id)!.inputs[0]!;
      if (!mat.has(x.id) || ready.has(x.id) || !isInline(defs.get(x.id)!, opts)) continue;
      const reads = new Set<number>();
      for (const y of defs.get(x.id)!.inputs) leafSet(y, reads);
      let r = -1;
      for (const id of reads) r = Math.max(r, equationIndex.get(id) ?? -1);
      ready.set(x.id, r);
    }
    if (ready.size > 0) {
      // For each such value, the earliest anchor read beside it that it could precede.
      const before = new Map<number, number>();
      for (const id of mat) {
        const eq = defs.get(id);
        if (!eq || !isInline(eq, opts)) continue;
        const reads = new Set<number>();
        for (const y of eq.inputs) leafSet(y, reads);
        const small = [...reads].filter((l) => ready.has(l));
        if (small.length === 0) continue;
        for (const l of reads) {
          const a = equationIndex.get(l);
          if (a === undefined || !epilogueAnchor(defs.get(l)!)) continue;
          for (const h of small) {
            if (ready.get(h)! < a && a < equationIndex.get(h)! && a < (before.get(h) ?? Infinity)) before.set(h, a);
          }
        }
      }
      for (const [h, a] of before) (hoistBefore.get(a) ?? hoistBefore.set(a, []).get(a)!).push(h);
      for (const list of hoistBefore.values()) list.sort((p, q) => equationIndex.get(p)! - equationIndex.get(q)!);
    }
  }
  const placedEarly = new Set<number>();

  const place = (eq: Equation, index: number): void => {
    const v = eq.out;
    if (!mat.has(v.id) || placedEarly.has(v.id)) return;
    if (!isInline(eq, opts)) {
      const kind = eq.prim === 'matmul' ? matmulLowering(eq, opts)
        : eq.prim === 'random' ? 'random' : eq.prim === 'scatterAdd' ? 'scatterAdd' : eq.prim === 'custom' ? 'custom'
        : isScan(eq.prim) ? 'scan' : isArgReduce(eq.prim) ? 'argReduce' : 'reduce';
      if (kind === 'random' || kind === 'scatterAdd' || kind === 'scan' || kind === 'argReduce' || kind === 'custom') kernels.push({ kind, equation: index });
      else {
        kernels.push({ kind: kind as 'reduce' | 'dot' | 'matmul', equation: index, epilogue: [], writesResult: true });
        if (Number.isFinite(opts.maxReadsPerValue)) {
          const bound = new Set<number>([v.id]);
          for (const x of eq.inputs) leafSet(x, bound);
          anchorBindings.set(kernels.length - 1, bound);
        }
      }
      producer.set(v.id, kernels.length - 1);
      return;
    }
    const leaves = rootLeaves(v);
    // An epilogue: the root reads an anchor's result at its own coordinates, the rest is ready.
    // With splitRowEpilogues, also a root that reads the anchor's result, or values already in
    // its epilogue, at its own row-major index, when its shape and theirs are the anchor's or
    // regroup its rows (regroupsRows), one at least differing: [b·s, h] read as [b, s, h]
    // (matmul's batch folded into rows), a [b, s, h] epilogue value read as [b·s, h] by the next
    // product, a batched product's [b, m, n] read as [b·m, n]; for a reduction, any regrouping
    // of its outputs' axes (regroupsAxes: a keepdims row sum [b, s] read as [b, s, 1]).
    for (const leaf of leaves) {
      if (!leaf.linear) continue;
      const k = producer.get(leaf.id);
      if (k === undefined) continue;
      const kernel = kernels[k]!;
      if (kernel.kind !== 'reduce' && kernel.kind !== 'dot' && kernel.kind !== 'matmul') continue;
      if (kernel.kind === 'matmul' && !opts.matmulEpilogues) continue;
      const anchor = program.equations[kernel.equation]!.out;
      const inKernel = leaves.filter((l) => producer.get(l.id) === k);
      const shapes = [v.shape, ...inKernel.map((l) => l.shape)];
      // A reduction's outputs may be regrouped whole (no columns: [b, s] read as [b, s, 1]).
      const regroups = kernel.kind === 'reduce' ? regroupsAxes : regroupsRows;
      const split = opts.splitRowEpilogues && inKernel.every((l) => l.linear) && shapes.some((s) => regroups(anchor.shape, s))
        && shapes.every((s) => shapesEqual(s, anchor.shape) || regroups(anchor.shape, s));
      if (!split && !(leaf.identity && anchor.id === leaf.id && shapesEqual(anchor.shape, v.shape))) continue;
      // Everything else it reads is ready before this kernel, or is a value of this kernel's
      // epilogue read at the same coordinates (computed just before it, element by element).
      if (leaves.some((l) => l.id !== leaf.id && (producer.get(l.id) ?? -1) >= k && !(producer.get(l.id) === k && (split || l.identity)))) continue;
      const bound = anchorBindings.get(k);
      if (bound) {
        // Values of this kernel (the anchor, earlier epilogue values) are read in the kernel.
        const reads = leaves.filter((l) => producer.get(l.id) !== k && !bound.has(l.id)).map((l) => l.id);
        // With its own store, at most the limit less one: (size + reads + 1) ≤ (maxReadsPerValue + 2) − 1.
        if (bound.size + reads.length > opts.maxReadsPerValue) continue;
        for (const id of [...reads, v.id]) bound.add(id);
      }
      kernel.epilogue.push(v);
      producer.set(v.id, k);
      return;
    }
    // Else the earliest elementwise kernel after everything it reads: none before `ready` can be
    // (starting the search at the first kernel made it quadratic in the number of kernels).
    // With inlineTranscendentalsMax, not one whose roots' transcendentals would pass it together.
    const ready = readyAfter(leaves);
    const mine = capTranscendentals ? transcendentals.get(v.id) ?? 0 : 0;
    const mineEquations = capEquations ? inlineNodes(v).size + 1 : 0;
    for (let k = Math.max(ready, 0); k < kernels.length; k++) {
      const kernel = kernels[k]!;
      if (kernel.kind !== 'elementwise') continue;
      const inKernel = leaves.filter((l) => producer.get(l.id) === k);
      if (ready > k || (ready === k && inKernel.some((l) => !l.identity))) continue;
      if (inKernel.length > 0 && !kernel.segments.some((s) => shapesEqual(s.shape, v.shape) && inKernel.every((l) => s.roots.some((r) => r.id === l.id)))) continue;
      if (capTranscendentals && (kernelTranscendentals.get(k) ?? 0) + mine > opts.inlineTranscendentalsMax) continue;
      if (capEquations && (kernelEquations.get(k) ?? 0) + mineEquations > opts.kernelEquationsMax) continue;
      const segment = kernel.segments.find((s) => shapesEqual(s.shape, v.shape));
      if (segment) segment.roots.push(v);
      else kernel.segments.push({ shape: v.shape, roots: [v] });
      producer.set(v.id, k);
      if (capTranscendentals) kernelTranscendentals.set(k, (kernelTranscendentals.get(k) ?? 0) + mine);
      if (capEquations) kernelEquations.set(k, (kernelEquations.get(k) ?? 0) + mineEquations);
      return;
    }
    kernels.push({ kind: 'elementwise', segments: [{ shape: v.shape, roots: [v] }] });
    producer.set(v.id, kernels.length - 1);
    if (capTranscendentals) kernelTranscendentals.set(kernels.length - 1, mine);
    if (capEquations) kernelEquations.set(kernels.length - 1, mineEquations);
  };
  program.equations.forEach((eq, index) => {
    for (const id of hoistBefore.get(index) ?? []) {
      const i = equationIndex.get(id)!;
      place(program.equations[i]!, i);
      placedEarly.add(id);
    }
    place(eq, index);
  });

  // An anchor's result is written unless its epilogue is all that reads it. The stored values
  // that read each anchor are found in one pass over the stored values (walking every stored
  // value's inline inputs again for each anchor was quadratic: a chain of 1,000 small matmuls,
  // each with a tanh epilogue, spent ~1 s here).
  const epilogueAnchors = new Set<number>();
  for (const kernel of kernels) {
    if ((kernel.kind === 'reduce' || kernel.kind === 'dot' || kernel.kind === 'matmul') && kernel.epilogue.length > 0) {
      epilogueAnchors.add(program.equations[kernel.equation]!.out.id);
    }
  }
  const anchorReaders = new Map<number, number[]>();
  if (epilogueAnchors.size > 0) {
    for (const id of mat) {
      for (const l of rootLeaves(defs.get(id)!.out)) {
        if (epilogueAnchors.has(l.id)) (anchorReaders.get(l.id) ?? anchorReaders.set(l.id, []).get(l.id)!).push(id);
      }
    }
  }
  for (const kernel of kernels) {
    if (kernel.kind !== 'reduce' && kernel.kind !== 'dot' && kernel.kind !== 'matmul') continue;
    const anchor = program.equations[kernel.equation]!.out.id;
    if (kernel.epilogue.length === 0) continue;
    const isResult = program.outputs.some((o) => o.id === anchor) || program.updates.some((u) => u.value.id === anchor);
    const epilogueIds = new Set(kernel.epilogue.map((e) => e.id));
    const readElsewhere = (anchorReaders.get(anchor) ?? []).some((id) => id !== anchor && !epilogueIds.has(id));
    kernel.writesResult = isResult || readElsewhere;
  }

  return { program, kernels, materialized: mat, definitions: defs, producer, options: opts };
}

/**
 * `v` as a strided view of the stored value it is a movement of (row-major, offset 0), with that
 * value's id; null when `v` is computed, or a reshape on the way cannot be a view.
 */
export function storedView(v: ProgramVar, definitions: ReadonlyMap<number, Equation>, isStored: (id: number) => boolean): { base: ProgramVar; view: StridedView } | null {
  const chain: Equation[] = [];
  let cur = v;
  while (!isStored(cur.id)) {
    const eq = definitions.get(cur.id);
    if (!eq || !MOVEMENT.has(eq.prim)) return null;
    chain.push(eq);
    cur = eq.inputs[0]!;
  }
  let view: StridedView | null = { shape: cur.shape, strides: stridesOf(cur.shape), offset: 0 };
  for (let k = chain.length - 1; k >= 0 && view; k--) view = viewAfter(chain[k]!, view);
  return view ? { base: cur, view } : null;
}

/** The movements matrixViewSource looks through: none drops elements (a slice would store more than the operand reads). */
const SOURCE_MOVEMENTS = new Set<Primitive>(['reshape', 'expand', 'permute', 'stopGradient']);

/**
 * The computed value under `x`'s chain of movements (reshapes, expands, permutes) whose storing
 * would make `x` a view with row-major or transposed matrices (its last two axes), as a product
 * reads in place; null when there is none (`x` is computed itself, the chain reaches a stored
 * value or another kind of equation, or the view would have other strides in its matrices).
 */
function matrixViewSource(x: ProgramVar, definitions: ReadonlyMap<number, Equation>, isStored: (id: number) => boolean): ProgramVar | null {
  let source = x;
  for (let eq = definitions.get(x.id); eq && SOURCE_MOVEMENTS.has(eq.prim); eq = definitions.get(source.id)) {
    source = eq.inputs[0]!;
    if (isStored(source.id)) return null;
  }
  const def = definitions.get(source.id);
  if (source === x || !def || MOVEMENT.has(def.prim)) return null;
  const sv = storedView(x, definitions, (id) => id === source.id || isStored(id));
  return sv && matrixLayout(sv.view) ? source : null;
}

/**
 * How a strided view's matrices (its last two axes) lie: 'rowMajor', 'transposed' (the
 * transpose of row-major matrices: strides [.., 1, rows]), or null for any other strides. The
 * CPU's products read the first two in place (matmulInto's transA / transB).
 */
export function matrixLayout(view: StridedView): 'rowMajor' | 'transposed' | null {
  const r = view.shape.length;
  const [rows, cols] = [view.shape[r - 2]!, view.shape[r - 1]!];
  const st = view.strides;
  if ((rows === 1 || st[r - 2] === cols) && (cols === 1 || st[r - 1] === 1)) return 'rowMajor';
  return st[r - 2] === 1 && st[r - 1] === rows ? 'transposed' : null;
}

/** How `eq`'s inputs are read, given how its output is: elementwise ops keep it, reshapes keep the order. */
function through(eq: Equation, access: 'same' | 'linear' | 'other'): 'same' | 'linear' | 'other' {
  if (access === 'other') return 'other';
  if (eq.prim === 'reshape') return 'linear';
  if (eq.prim === 'stopGradient' || !(MOVEMENT.has(eq.prim) || INDEXING.has(eq.prim) || eq.prim === 'matmul')) return access;
  return 'other';
}

/** A strided view of a stored buffer: element (i₀, …) is at offset + Σ iₖ·strides[k]. */
export interface StridedView {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

/** Whether `view` reads a contiguous run of its array, in row-major order (any offset). */
export function isContiguous(view: StridedView): boolean {
  const rowMajor = stridesOf(view.shape);
  return view.shape.every((d, i) => d === 1 || view.strides[i] === rowMajor[i]);
}

/**
 * The strides through which a view of `shape` (elements at Σ iₖ·`strides`ₖ from its offset) reads
 * the same elements in row-major order of `out`, or null where no strides can: a reshape that
 * regroups axes the view does not step through contiguously (a window's columns, then its rows).
 * Axes of extent 1 read nothing and get stride 0. For the fusion's views of stored values and the
 * CPU backend's eager windows alike (PyTorch's `view` follows the same rule).
 */
export function reshapedStrides(shape: readonly number[], strides: readonly number[], out: readonly number[]): number[] | null {
  // An empty reshape reads nothing: any strides serve (the grouping below needs nonzero extents).
  if (sizeOf(out) === 0) return stridesOf(out);
  // Within each group of axes (reshapeGroups) the old axes must step contiguously relative to
  // each other, and the new axes then split the group's span.
  const result = out.map(() => 0);
  for (const [ig, og] of reshapeGroups(shape, out)) {
    for (let k = 0; k + 1 < ig.length; k++) {
      if (strides[ig[k]!] !== strides[ig[k + 1]!]! * shape[ig[k + 1]!]!) return null;
    }
    let stride = strides[ig[ig.length - 1]!]!;
    for (let k = og.length - 1; k >= 0; k--) {
      result[og[k]!] = stride;
      stride *= out[og[k]!]!;
    }
  }
  return result;
}

/**
 * The view a movement equation (reshape, expand, permute, slice, stopGradient) makes of a strided
 * view of its input, or null when a reshape regroups axes that are not laid out contiguously
 * relative to each other (then the input must be stored afresh first).
 */
export function viewAfter(eq: Equation, input: StridedView): StridedView | null {
  const out = eq.out.shape;
  switch (eq.prim) {
    case 'stopGradient':
      return input;
    case 'expand':
      return { shape: out, strides: input.strides.map((st, i) => (input.shape[i] === 1 && out[i] !== 1 ? 0 : st)), offset: input.offset };
    case 'permute': {
      const { perm } = eq.params as { perm: readonly number[] };
      return { shape: out, strides: perm.map((p) => input.strides[p]!), offset: input.offset };
    }
    case 'slice': {
      const { starts } = eq.params as { starts: readonly number[] };
      return { shape: out, strides: input.strides, offset: input.offset + starts.reduce((a, st, i) => a + st * input.strides[i]!, 0) };
    }
    case 'reshape': {
      const strides = reshapedStrides(input.shape, input.strides, out);
      return strides && { shape: out, strides, offset: input.offset };
    }
  }
  return null;
}

/**
 * For each stored value (or input), the stored values whose equations read it, directly or
 * through values computed inline in their kernels: who reads each buffer.
 */
export function storedReaders(plan: FusionPlan): Map<number, number[]> {
  const readers = new Map<number, number[]>();
  for (const id of plan.materialized) {
    const seen = new Set<number>();
    const visit = (v: ProgramVar): void => {
      if (seen.has(v.id)) return;
      seen.add(v.id);
      if (plan.materialized.has(v.id) || !plan.definitions.has(v.id)) {
        let list = readers.get(v.id);
        if (!list) readers.set(v.id, (list = []));
        list.push(id);
        return;
      }
      for (const x of plan.definitions.get(v.id)!.inputs) visit(x);
    };
    for (const x of plan.definitions.get(id)!.inputs) visit(x);
  }
  return readers;
}

/**
 * For each stored value, the index of the last kernel that reads it: how long a buffer that holds
 * it must live (backends share one buffer among values whose lifetimes do not overlap). From
 * `readers` (storedReaders) where the caller has them.
 */
export function lastReaders(plan: FusionPlan, readers: ReadonlyMap<number, readonly number[]> = storedReaders(plan)): Map<number, number> {
  const last = new Map<number, number>();
  for (const [id, list] of readers) {
    let k = -1;
    for (const r of list) k = Math.max(k, plan.producer.get(r)!);
    last.set(id, k);
  }
  return last;
}

/** Shares storage among values whose lifetimes do not overlap: see `slotReuser`. */
export interface SlotReuser {
  /**
   * The lowest-numbered slot of `key` that is free before kernel `born` (its last reader ran
   * earlier), taken from the free ones, or -1 when none is. `born` must not decrease from one
   * call to the next (values are placed in the order of the kernels that make them).
   */
  take(key: string, born: number): number;
  /** Marks `slot` of `key` (taken, or new) as busy until kernel `until` (its last reader) runs. */
  hold(key: string, slot: number, until: number): void;
}

/**
 * First-fit reuse of storage slots by lifetime, as a scan of every slot in order for the first
 * one of the value's key that is free, in O(log slots) per value rather than O(slots): while a
 * gradient keeps its forward values live the scan made placing them quadratic. Per key, a heap
 * of busy slots by the kernel after which they are free, and a heap of free slots by number;
 * since `born` never decreases, a slot once free stays free until taken.
 */
export function slotReuser(): SlotReuser {
  // Min-heaps of [order, slot] pairs compared by order, then slot.
  type Heap = [number, number][];
  const less = (a: [number, number], b: [number, number]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  const push = (h: Heap, e: [number, number]): void => {
    let i = h.push(e) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  };
  const pop = (h: Heap): [number, number] => {
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  };
  const busy = new Map<string, Heap>();
  const free = new Map<string, Heap>();
  return {
    take(key, born) {
      const b = busy.get(key);
      if (!b) return -1;
      const f = free.get(key) ?? free.set(key, []).get(key)!;
      while (b.length > 0 && b[0]![0] < born) push(f, [pop(b)[1], 0]);
      return f.length > 0 ? pop(f)[0] : -1;
    },
    hold(key, slot, until) {
      push(busy.get(key) ?? busy.set(key, []).get(key)!, [until, slot]);
    },
  };
}

/**
 * Names a program's kernels uniquely: a namer for one program's lowering, called once per kernel
 * in launch order with the name its shape suggests. The first kernel of a name keeps it; a later
 * one gets `_2`, `_3`, ... (the first free), so two kernels of one shape (two products of the
 * same sizes, two reductions with the same epilogue count) are two rows of a profile and two
 * names in `kernels()`. Deterministic: the same program always gets the same names.
 */
export function kernelNamer(): (base: string) => string {
  const given = new Set<string>();
  // The suffix each base tries next: the ones below it were taken when passed, and names are
  // never released, so the first free one is at or after it. (Trying from _2 every time was
  // quadratic in the number of kernels of one name: a program of thousands of small reductions.)
  const next = new Map<string, number>();
  return (base) => {
    let name = base;
    if (given.has(name)) {
      let n = next.get(base) ?? 2;
      while (given.has(`${base}_${n}`)) n++;
      name = `${base}_${n}`;
      next.set(base, n + 1);
    }
    given.add(name);
    return name;
  };
}

/**
 * What a kernel of a plan moves and computes, for the profiler: the stored values its equations
 * read from outside it and the stored values it writes (`bytesOf` bytes per element of a dtype, as
 * the backend stores it), and 2·m·n·k per product it computes.
 */
export function kernelCost(plan: FusionPlan, equations: readonly number[], bytesOf: (dtype: DType) => number): { bytes: number; flops?: number } {
  const eqs = equations.map((i) => plan.program.equations[i]!);
  const inside = new Set(eqs.map((eq) => eq.out.id));
  const read = new Map<number, ProgramVar>();
  for (const eq of eqs) for (const x of eq.inputs) if (!inside.has(x.id)) read.set(x.id, x);
  const { outputs, unwritten } = planResults(plan);
  let bytes = 0;
  for (const v of read.values()) bytes += sizeOf(v.shape) * bytesOf(v.dtype);
  for (const eq of eqs) if ((plan.materialized.has(eq.out.id) && !unwritten.has(eq.out.id)) || outputs.has(eq.out.id)) bytes += sizeOf(eq.out.shape) * bytesOf(eq.out.dtype);
  let flops = 0;
  for (const eq of eqs) if (eq.prim === 'matmul') flops += 2 * sizeOf(eq.out.shape) * eq.inputs[0]!.shape[eq.inputs[0]!.shape.length - 1]!;
  return flops > 0 ? { bytes, flops } : { bytes };
}

const planResultsCache = new WeakMap<FusionPlan, { outputs: Set<number>; unwritten: Set<number> }>();

/**
 * A plan's results (outputs and updates) and the anchors whose result is never stored (only
 * their epilogue reads it), computed once per plan: kernelCost is called once per kernel, and
 * computing them per call was quadratic in the number of kernels.
 */
function planResults(plan: FusionPlan): { outputs: Set<number>; unwritten: Set<number> } {
  let known = planResultsCache.get(plan);
  if (!known) {
    const outputs = new Set([...plan.program.outputs.map((v) => v.id), ...plan.program.updates.map((u) => u.value.id)]);
    const unwritten = new Set<number>();
    for (const k of plan.kernels) if (k.kind !== 'elementwise' && 'writesResult' in k && !k.writesResult) unwritten.add(plan.program.equations[k.equation]!.out.id);
    known = { outputs, unwritten };
    planResultsCache.set(plan, known);
  }
  return known;
}

/** A one-line summary of each kernel of a plan (for printing and tests). */
export function describePlan(plan: FusionPlan): string[] {
  return plan.kernels.map((k) => {
    if (k.kind === 'elementwise') return `elementwise ${k.segments.map((s) => `[${s.shape.join(',')}]×${s.roots.length}`).join(' + ')}`;
    const eq = plan.program.equations[k.equation]!;
    const shape = `[${eq.out.shape.join(',')}]`;
    if (k.kind === 'random' || k.kind === 'scatterAdd') return `${k.kind} ${shape}`;
    if (k.kind === 'scan' || k.kind === 'argReduce') return `${k.kind} ${eq.prim} ${shape}`;
    if (k.kind === 'custom') return `custom ${(eq.params as PrimitiveParams['custom']).name} ${shape}`;
    return `${k.kind} ${eq.prim} ${shape}${k.epilogue.length ? ` + epilogue ×${k.epilogue.length}` : ''}${k.writesResult ? '' : ' (result not stored)'}`;
  });
}
