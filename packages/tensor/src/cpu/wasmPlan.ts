// Which elementwise work of a compiled CPU program runs as a WebAssembly SIMD kernel
// (wasm/elementwiseModule.ts), and how: a segment's roots (or a matmul's epilogue) become a list of
// values, each an operand read from a stored array or an expression of the table over earlier
// values. Only float32 and bool work whose every read is at the element's own index, at its index
// modulo a period (a broadcast of trailing axes) or at one element qualifies; the rest keeps its
// generated JavaScript, which computes the same bits.

import { type Expr, castExpression, elementwiseExpression } from '../expression.js';
import type { ElementwiseOp } from '../expression.js';
import { storedView, viewAfter } from '../fusion.js';
import { type PrimitiveParams, isBinary, isCompare, isUnary } from '../primitives.js';
import { type ProgramVar, exactNumbers } from '../program.js';
import type { TypedArray } from '../dtype.js';
import { sizeOf, stridesOf } from '../shape.js';
import { renderJs } from './jsCode.js';
import type { JsWriterContext } from './jsWriter.js';
import type { EagerOperand } from './eagerKernels.js';
import type { RangeKernel } from './rangeThreads.js';
import { cpuFastMathEnabled, cpuWasmEnabled } from './cpuMatmul.js';
import {
  type WasmArray, type WasmElementwiseKernel, type WasmKernelSpec, type WasmLeafPattern, type WasmNode, elementwiseKernel,
  cachedElementwiseKernel, callsFastMath, callsMath, elementwiseRangeFunction, elementwiseRangeSource, rangeUnit,
} from './wasm/elementwiseModule.js';

/**
 * Elements below which the JavaScript kernel runs: 256. Each call copies its operands in and its
 * results out and crosses into WebAssembly, which costs a few hundred nanoseconds; below this the
 * JavaScript loop is as fast.
 */
export const WASM_ELEMENTWISE_MIN = 256;

let elementwiseEnabled = true;

/** For tests: turns the WebAssembly elementwise kernels off (true: on, still subject to setCpuWasm). */
export function setWasmElementwiseForTesting(enabled: boolean): void {
  elementwiseEnabled = enabled;
}

/** Whether WebAssembly elementwise kernels run now (setCpuWasm allows them; tests may turn them off). */
export function wasmElementwiseEnabled(): boolean {
  return elementwiseEnabled && cpuWasmEnabled();
}

/**
 * The cache key of a kernel's spec: its JSON with NaN, ±Infinity and −0 kept apart (plain JSON
 * writes the first three as null and −0 as 0, so a kernel of one constant was reused for another).
 */
function specKey(spec: WasmKernelSpec): string {
  return JSON.stringify(spec, exactNumbers);
}

export interface WasmSegment {
  /**
   * A range function over the kernel's output (rangeThreads.ts), and its units: the function, and
   * its source for the workers (a getter: written at the first read).
   */
  readonly code: { readonly fn: RangeKernel['fn']; readonly source: string };
  readonly units: number;
  readonly elementsPerUnit: number;
  /** The slots it reads (in order), then the slots it writes: the function's arrays. */
  readonly bindings: readonly number[];
  /** The kernel's values as text, for `program.kernels()`. */
  readonly listing: string;
  /** Views copied densely (stridedCopy) into their slots before the kernel runs, in order. */
  readonly gathers: readonly WasmGather[];
}

/**
 * A view of a stored float32 or bool value that no operand pattern reads (a transpose, a slice of
 * columns): its elements in row-major order of `shape`, element (c₀, c₁, …) at `offset` + Σ cᵢ ·
 * `strides`ᵢ of slot `from`, copied into slot `to` (dense) before the kernel runs, which then
 * reads it as a full operand.
 */
export interface WasmGather {
  readonly from: number;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly to: number;
}

/**
 * What planning reads of the program: the definitions and locations of the CPU kernel writers'
 * context (a lowering passes its writers' context as it is).
 */
type PlanContext = Pick<JsWriterContext, 'definitions' | 'locate'>;

class Unsupported extends Error {}

/** The values of a kernel being planned: its operands, its nodes, and text for the listing. */
class KernelBuilder {
  readonly nodes: WasmNode[] = [];
  readonly names: string[] = [];
  readonly leaves: WasmLeafPattern[] = [];
  readonly boolLeaves: boolean[] = [];
  readonly leafSlots: number[] = [];
  readonly leafOffsets: number[] = [];
  /** Views to copy densely first (`gatherViews`), each read through leaf slot −1 − its index until placed. */
  readonly gathers: { readonly from: number; readonly offset: number; readonly shape: readonly number[]; readonly strides: readonly number[]; readonly dtype: 'float32' | 'bool' }[] = [];
  private readonly memo = new Map<number, number>();

  /**
   * `own`: the values this kernel stores (its roots). Operands are copied into the module's memory
   * before it runs, so an own value read back (through reshapes, by a later root) would be read
   * from its array before the kernel writes it: it is computed from its definition instead.
   * `gatherViews`: a view of a stored value that no pattern reads is copied densely first
   * (`gathers`) instead of making the kernel unsupported.
   */
  constructor(private readonly ctx: PlanContext, private readonly count: number, private readonly own: ReadonlySet<number> = new Set(), private readonly gatherViews = false) {}

  /** The node reading a dense copy of a strided view (one copy per distinct view). */
  private gatherNode(from: number, offset: number, shape: readonly number[], strides: readonly number[], dtype: 'float32' | 'bool'): number {
    const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    let k = this.gathers.findIndex((g) => g.from === from && g.offset === offset && same(g.shape, shape) && same(g.strides, strides));
    if (k < 0) k = this.gathers.push({ from, offset, shape, strides, dtype }) - 1;
    return this.leafNode(-1 - k, 0, FULL, dtype === 'bool', `gather${k}`);
  }

  private leafNode(slot: number, offset: number, p: WasmLeafPattern, bool: boolean, label = `slot${slot}`): number {
    const { leaves, leafSlots, leafOffsets, nodes } = this;
    let k = leaves.findIndex((l, i) => leafSlots[i] === slot && leafOffsets[i] === offset && JSON.stringify(l) === JSON.stringify(p));
    if (k < 0) {
      k = leaves.push(p) - 1;
      this.boolLeaves.push(bool);
      leafSlots.push(slot);
      leafOffsets.push(offset);
    }
    const existing = nodes.findIndex((n) => n.kind === 'leaf' && n.leaf === k);
    if (existing >= 0) return existing;
    const at = p.kind === 'full' ? 'i' : p.kind === 'row' ? `i % ${p.period}` : p.kind === 'col' ? `Math.floor(i / ${p.repeat}) % ${p.period}` : '0';
    this.names.push(`t${nodes.length} = ${label}[${offset ? `${offset} + ` : ''}${at}]`);
    return nodes.push({ kind: 'leaf', leaf: k }) - 1;
  }

  private exprNode(expr: Expr, args: readonly number[]): number {
    // Described as the JavaScript loop computes it, fast forms included (the spec's fastMath below).
    this.names.push(`t${this.nodes.length} = ${renderJs(expr, args.map((a) => `t${a}`), false, true, cpuFastMathEnabled())}`);
    return this.nodes.push({ kind: 'expr', expr, args }) - 1;
  }

  /** Program inputs have no definition and are always stored; this kernel's own roots are not yet. */
  private readonly isStored = (id: number) => {
    if (this.own.has(id)) return false;
    const def = this.ctx.definitions.get(id);
    return def ? this.ctx.locate(def.out) !== null : true;
  };

  /**
   * The node of `v` at the element's own index (from its definition when `fromDefinition`, even
   * if it is stored); throws Unsupported for what the kernels cannot read or compute.
   */
  visit(v: ProgramVar, fromDefinition: boolean): number {
    const { ctx, memo } = this;
    if (!fromDefinition) {
      const hit = memo.get(v.id);
      if (hit !== undefined) return hit;
    }
    // Every read is at the element's linear index: a reshape keeps it, so only sizes must agree.
    if (sizeOf(v.shape) !== this.count) throw new Unsupported('a value of another size');
    if (v.dtype !== 'float32' && v.dtype !== 'bool') throw new Unsupported(`${v.dtype} values`);
    const loc = fromDefinition || this.own.has(v.id) ? null : ctx.locate(v);
    let node: number;
    if (loc) {
      const p = pattern(v.shape, loc.strides);
      if (!p) throw new Unsupported('a strided read');
      node = this.leafNode(loc.slot, loc.offset, p, v.dtype === 'bool');
    } else {
      const eq = ctx.definitions.get(v.id);
      if (!eq) throw new Unsupported('a value with no definition');
      const p = eq.prim;
      if (isUnary(p) || isBinary(p) || isCompare(p) || p === 'where') {
        const args = eq.inputs.map((x) => this.visit(x, false));
        node = this.exprNode(elementwiseExpression(p as ElementwiseOp, eq.inputs[p === 'where' ? 1 : 0]!.dtype), args);
      } else if (p === 'cast') {
        node = this.exprNode(castExpression(eq.inputs[0]!.dtype, v.dtype), [this.visit(eq.inputs[0]!, false)]);
      } else if (p === 'full') {
        node = this.exprNode({ kind: 'literal', value: (eq.params as PrimitiveParams['full']).value, dtype: v.dtype }, []);
      } else if (p === 'stopGradient') {
        node = this.visit(eq.inputs[0]!, false);
      } else if (p === 'reshape' || p === 'expand' || p === 'permute' || p === 'slice') {
        // From the input on: `v` itself may be stored (a root computed from its definition).
        const input = storedView(eq.inputs[0]!, ctx.definitions, this.isStored);
        const view = input && viewAfter(eq, input.view);
        if (!input && p === 'reshape') {
          node = this.visit(eq.inputs[0]!, false);
          memo.set(v.id, node);
          return node;
        }
        if (!input || !view) throw new Unsupported('a view of a computed value');
        if (input.base.dtype !== 'float32' && input.base.dtype !== 'bool') throw new Unsupported(`a view of ${input.base.dtype}`);
        const base = ctx.locate(input.base);
        if (!base || !base.strides.every((st, i) => st === stridesOf(input.base.shape)[i] || input.base.shape[i] === 1)) throw new Unsupported('a view of a strided value');
        const pat = pattern(view.shape, view.strides);
        if (pat) node = this.leafNode(base.slot, base.offset + view.offset, pat, input.base.dtype === 'bool');
        else if (this.gatherViews) node = this.gatherNode(base.slot, base.offset + view.offset, view.shape, view.strides, input.base.dtype);
        else throw new Unsupported('a strided view');
      } else throw new Unsupported(`'${p}'`);
    }
    memo.set(v.id, node);
    return node;
  }

  /** The kernel's spec: its values, stored as `outputs` (or summed: `sums`, a spec's accumulate or sumRows). */
  spec(outputs: readonly number[], sums: Pick<WasmKernelSpec, 'accumulate' | 'sumRows'> = {}): WasmKernelSpec {
    const { leaves, nodes, boolLeaves } = this;
    const fast = cpuFastMathEnabled() && nodes.some((n) => n.kind === 'expr' && callsFastMath(n.expr));
    return { leaves, ...(boolLeaves.includes(true) ? { boolLeaves } : {}), nodes, outputs, ...sums, ...(fast ? { fastMath: true } : {}) };
  }

  /** The listing for `program.kernels()`: a header, the copies of views (into slots `copyTo`), the values, then `stores`. */
  listing(header: string, stores: readonly string[], copyTo: readonly number[] = []): string {
    const copies = this.gathers.map((g, k) => `gather${k} = slot${g.from} from ${g.offset}, shape [${g.shape.join(', ')}], strides [${g.strides.join(', ')}], copied densely first into slot${copyTo[k]} (stridedCopy)`);
    return [`// ${header}`, ...copies.map((l) => `//   ${l}`), ...this.names.map((l) => `//   ${l}`), ...stores.map((l) => `//   ${l}`)].join('\n');
  }
}

const HEADER = 'WebAssembly SIMD, 4 elements a step: f32 arithmetic, bools as masks; exp/log/log1p/sigmoid/tanh/expm1/sin/cos/erf in f64 lanes, rounded to f32';
const FAST_HEADER = 'WebAssembly SIMD, 4 elements a step: f32 arithmetic, bools as masks; exp/log/log1p/sigmoid in f32 lanes (setCpuFastMath: within FAST_MATH_ULPS), tanh/expm1/sin/cos/erf in f64 lanes, rounded to f32';
/** The listing's first line for `spec`. */
const header = (spec: WasmKernelSpec): string => (spec.fastMath === true ? FAST_HEADER : HEADER);

/**
 * A WebAssembly kernel computing `roots` (values of `shape`, each from its definition) and
 * storing them where `ctx` locates them, or null when some of the work does not qualify. With
 * `gatherSlot` (which makes a dense array of that dtype and length for the plan, and is called
 * only for a plan that is used), views of stored values that no operand pattern reads (a
 * transpose, a slice of columns) are copied densely first (the segment's `gathers`), as eager
 * ops read them, and the kernel reads the copies: the copy (a tiled one for a transpose) and the
 * SIMD kernel together are faster than the JavaScript kernel reading the view element by element
 * (benchmarks/NOTES.md, "Strided views in compiled WebAssembly segments").
 */
export function planWasmSegment(
  ctx: PlanContext, shape: readonly number[], roots: readonly ProgramVar[],
  gatherSlot?: (dtype: 'float32' | 'bool', length: number) => number,
): WasmSegment | null {
  const count = sizeOf(shape);
  if (count < WASM_ELEMENTWISE_MIN) return null;
  const b = new KernelBuilder(ctx, count, new Set(roots.map((r) => r.id)), gatherSlot !== undefined);
  let outputs: number[];
  try {
    outputs = roots.map((r) => {
      if (r.dtype !== 'float32' && r.dtype !== 'bool') throw new Unsupported(`a ${r.dtype} result`);
      return b.visit(r, true);
    });
  } catch (e) {
    if (e instanceof Unsupported) return null;
    throw e;
  }
  const outputSlots = roots.map((r) => {
    const loc = ctx.locate(r);
    if (!loc || loc.offset !== 0 || pattern(r.shape, loc.strides)?.kind !== 'full') throw new Error('internal: a compiled CPU kernel stores a value with no dense location');
    return loc.slot;
  });
  const spec = b.spec(outputs);
  const kernel = elementwiseKernel(specKey(spec), spec);
  if (!kernel) return null;
  const unit = rangeUnit(spec);
  const name = `wasm_${count}`;
  const offsets = b.leafOffsets;
  let source: string | undefined;
  const code = {
    fn: elementwiseRangeFunction(name, kernel.bytes, spec, count, offsets, kernel.shared) as RangeKernel['fn'],
    get source(): string {
      return (source ??= elementwiseRangeSource(name, kernel.bytes, spec, count, offsets, kernel.shared));
    },
  };
  // Each copied view's slot, made now that the plan is used; its leaf reads it.
  const gathers = b.gathers.map(({ from, offset, shape, strides, dtype }) => ({ from, offset, shape, strides, to: gatherSlot!(dtype, count) }));
  const listing = b.listing(`${header(spec)}, i over [0, ${count})`, outputs.map((n, j) => `slot${outputSlots[j]}[i] = t${n}`), gathers.map((g) => g.to));
  const leafSlots = b.leafSlots.map((s) => (s < 0 ? gathers[-1 - s]!.to : s));
  return { code, units: Math.ceil(count / unit), elementsPerUnit: unit, bindings: [...leafSlots, ...outputSlots], listing, gathers };
}

/** A sum in WebAssembly: `run(slots, acc)` sets acc (doubles) to the sums. */
export interface WasmSum {
  run(slots: readonly TypedArray[], acc: Float64Array): void;
  readonly listing: string;
}

/**
 * The sums of float32 `x` (its prologue computed inline, a WebAssembly kernel's values) into
 * doubles, in the JavaScript reduction kernel's order: over its leading axes into `period`
 * doubles (`{ accumulate: period }`, a multiple of 4: x's kept trailing axes), or over its
 * trailing axes into one double per row of `sumRows` elements. Null when x's computation does
 * not qualify, or (`needsLibraryCall`) calls none of the math functions (callsMath).
 */
function planWasmSums(ctx: PlanContext, x: ProgramVar, sums: { accumulate: number } | { sumRows: number }, needsLibraryCall: boolean): WasmSum | null {
  const count = sizeOf(x.shape);
  if (count < WASM_ELEMENTWISE_MIN || x.dtype !== 'float32') return null;
  if ('accumulate' in sums && sums.accumulate % 4 !== 0) return null;
  const b = new KernelBuilder(ctx, count);
  let output: number;
  try {
    output = b.visit(x, false);
  } catch (e) {
    if (e instanceof Unsupported) return null;
    throw e;
  }
  if (needsLibraryCall && !b.nodes.some((n) => n.kind === 'expr' && callsMath(n.expr))) return null;
  const spec = b.spec([output], sums);
  const kernel = elementwiseKernel(specKey(spec), spec);
  if (!kernel) return null;
  const leaves = new Array<WasmArray>(b.leafSlots.length);
  const { leafSlots, leafOffsets } = b;
  const into = 'accumulate' in sums ? `acc[i % ${sums.accumulate}]` : `acc[Math.floor(i / ${sums.sumRows})]`;
  return {
    listing: b.listing(`${header(spec)}, i over [0, ${count}), summed in f64 into ${into}`, [`${into} += t${output}`]),
    run(slots, acc) {
      for (let i = 0; i < leafSlots.length; i++) leaves[i] = slots[leafSlots[i]!] as WasmArray;
      kernel.sum(leaves, leafOffsets, acc, count);
    },
  };
}

/**
 * The accumulation of a sum of `x` over its leading axes into `period` doubles (the kept trailing
 * axes), in row-major order as the JavaScript reduction kernel adds, with x's prologue computed
 * inline; or null when x's computation does not qualify or `period` is not a multiple of 4.
 */
export function planWasmSum(ctx: PlanContext, x: ProgramVar, period: number): WasmSum | null {
  return planWasmSums(ctx, x, { accumulate: period }, false);
}

/**
 * The sums of `x` over its trailing axes, rows of `rowLength` elements, into one double per row:
 * x's prologue computed in WebAssembly a pass at a time, each pass's values added to their rows'
 * doubles in order, as the JavaScript reduction kernel adds. Null when x's computation does not
 * qualify or calls no math function (callsMath): the JavaScript kernel computes plain
 * arithmetic as fast as the WebAssembly kernel's copies and adds (benchmarks/NOTES.md, "Row sums
 * with a prologue").
 */
export function planWasmRowSum(ctx: PlanContext, x: ProgramVar, rowLength: number): WasmSum | null {
  return planWasmSums(ctx, x, { sumRows: rowLength }, true);
}

/** Per arity, the argument arrays and operand patterns of eager calls (refilled each call: no allocation). */
const eagerLeaves = [[], [new Float32Array(0)], [new Float32Array(0), new Float32Array(0)], [new Float32Array(0), new Float32Array(0), new Float32Array(0)]] as WasmArray[][];
const eagerPatterns: WasmLeafPattern[] = [];
const eagerBools: boolean[] = [];
const eagerOut: WasmArray[] = [new Float32Array(0)];
const ZEROS = [0, 0, 0];
const FULL: WasmLeafPattern = { kind: 'full' };
const SCALAR: WasmLeafPattern = { kind: 'scalar' };
const ROWS = new Map<number, WasmLeafPattern>();
/** Per run length, per period, the shared col pattern. */
const COLS = new Map<number, Map<number, WasmLeafPattern>>();

/**
 * The leaf pattern of a strided view over `shape`, or null when it is none of the four. Without
 * allocating (eager ops call it for every large float32 operand): shared pattern objects.
 */
function pattern(shape: readonly number[], strides: readonly number[]): WasmLeafPattern | null {
  // Trailing axes of stride 0 (a run of `repeat` equal elements), then a row-major run of
  // `period` values, then leading axes of stride 0 (axes of extent 1 skipped anywhere).
  let i = shape.length - 1;
  let repeat = 1;
  for (; i >= 0; i--) {
    if (shape[i] === 1) continue;
    if (strides[i] !== 0) break;
    repeat *= shape[i]!;
  }
  let expect = 1;
  for (; i >= 0; i--) {
    if (shape[i] === 1) continue;
    if (strides[i] === 0) break;
    if (strides[i] !== expect) return null;
    expect *= shape[i]!;
  }
  for (let j = i; j >= 0; j--) if (shape[j] !== 1 && strides[j] !== 0) return null;
  if (repeat === 1 && i < 0) return FULL;
  if (expect === 1) return SCALAR;
  if (repeat > 1) {
    let byPeriod = COLS.get(repeat);
    if (byPeriod === undefined) COLS.set(repeat, (byPeriod = new Map()));
    let col = byPeriod.get(expect);
    if (col === undefined) byPeriod.set(expect, (col = { kind: 'col', repeat, period: expect }));
    return col;
  }
  let row = ROWS.get(expect);
  if (row === undefined) ROWS.set(expect, (row = { kind: 'row', period: expect }));
  return row;
}

/**
 * Per eager op and operand dtype (as the expression is built below), whether its expression calls
 * a function setCpuFastMath changes: only those get a fast kernel of their own (WebAssembly here,
 * JavaScript in eagerKernels.ts).
 */
const FAST_OPS = { float32: new Map<ElementwiseOp, boolean>(), bool: new Map<ElementwiseOp, boolean>() };
function fastOp(op: ElementwiseOp, dtype: 'float32' | 'bool'): boolean {
  let fast = FAST_OPS[dtype].get(op);
  if (fast === undefined) FAST_OPS[dtype].set(op, (fast = callsFastMath(elementwiseExpression(op, dtype))));
  return fast;
}

/**
 * Whether an eager op over `inputs` takes fast forms: setCpuFastMath(true) is in force and the op
 * (on float32 or bool value operands; for `where`, operands 1 and 2) calls a function it changes.
 */
export function eagerFastMath(op: ElementwiseOp, inputs: readonly EagerOperand[]): boolean {
  const dtype = inputs[op === 'where' ? 1 : 0]!.dtype;
  return cpuFastMathEnabled() && (dtype === 'float32' || dtype === 'bool') && fastOp(op, dtype);
}

/**
 * An eager elementwise op (out = op(inputs), over `shape`) through a WebAssembly kernel, when it
 * qualifies: float32 or bool operands and result (`out` a Float32Array or, for bools, a
 * Uint8Array), at least WASM_ELEMENTWISE_MIN elements, each operand dense, a broadcast of trailing
 * axes with a period that is a multiple of 4, a broadcast over trailing axes (col), or one value.
 * Returns false (having done nothing) otherwise. The kernels are cached by op, operand dtypes and
 * patterns, not by size: a kernel serves every length (a col operand's key holds its run and
 * period, which its pass loop fills by); an op the kernels cannot compute is cached as null, so
 * its later calls go straight to JavaScript.
 */
export function eagerWasmElementwise(op: ElementwiseOp, inputs: readonly EagerOperand[], shape: readonly number[], out: WasmArray): boolean {
  const n = out.length;
  if (n < WASM_ELEMENTWISE_MIN || !wasmElementwiseEnabled()) return false;
  // The cache key (op, operand dtypes and patterns; no spec key starts like it), built by plain
  // loops. The result's dtype follows from the op and the operands' dtypes.
  let key: string = op;
  eagerPatterns.length = inputs.length;
  eagerBools.length = inputs.length;
  for (let k = 0; k < inputs.length; k++) {
    const x = inputs[k]!;
    if (x.dtype !== 'float32' && x.dtype !== 'bool') return false;
    const p = x.strides === null ? FULL : pattern(shape, x.strides);
    if (!p) return false;
    eagerPatterns[k] = p;
    eagerBools[k] = x.dtype === 'bool';
    key += p.kind === 'row' ? `|r${p.period}` : p.kind === 'col' ? `|c${p.repeat}x${p.period}` : p.kind === 'full' ? '|f' : '|s';
    if (x.dtype === 'bool') key += 'b';
  }
  const fast = eagerFastMath(op, inputs);
  if (fast) key += '|fast';
  let kernel = cachedElementwiseKernel(key);
  if (kernel === undefined) {
    const patterns = eagerPatterns.slice();
    const nodes: WasmNode[] = patterns.map((_, leaf) => ({ kind: 'leaf', leaf }));
    nodes.push({ kind: 'expr', expr: elementwiseExpression(op, inputs[op === 'where' ? 1 : 0]!.dtype), args: patterns.map((_, k) => k) });
    kernel = elementwiseKernel(key, { leaves: patterns, ...(eagerBools.includes(true) ? { boolLeaves: eagerBools.slice() } : {}), nodes, outputs: [patterns.length], ...(fast ? { fastMath: true } : {}) });
  }
  if (!kernel) return false;
  const leaves = eagerLeaves[inputs.length]!;
  for (let k = 0; k < inputs.length; k++) leaves[k] = inputs[k]!.arr as Float32Array;
  eagerOut[0] = out;
  kernel.run(leaves, ZEROS, eagerOut, n);
  return true;
}

const COLUMN_LEAF = [FULL];
const COLUMN_NODES: WasmNode[] = [{ kind: 'leaf', leaf: 0 }];

/**
 * An eager float32 sum of the first `count` elements of dense `x` over its leading axes into `out`
 * (its out.length trailing elements kept), through the WebAssembly sum kernel, when it qualifies:
 * at least WASM_ELEMENTWISE_MIN elements and a row that is a multiple of 4 long. Each element is
 * added to its column's double in row-major order, as the JavaScript reduction kernel adds, and
 * the doubles rounded to float32 as it stores them. Returns false (having done nothing) otherwise.
 */
export function eagerWasmColumnSum(x: Float32Array, count: number, out: Float32Array): boolean {
  const period = out.length;
  if (count < WASM_ELEMENTWISE_MIN || period % 4 !== 0 || !wasmElementwiseEnabled()) return false;
  // No eager elementwise key starts like this one (those start with an op's name).
  const key = `columnSum|${period}`;
  let kernel = cachedElementwiseKernel(key);
  if (kernel === undefined) kernel = elementwiseKernel(key, { leaves: COLUMN_LEAF, nodes: COLUMN_NODES, outputs: [0], accumulate: period });
  if (!kernel) return false;
  eagerLeaves[1]![0] = x;
  kernel.sum(eagerLeaves[1]!, ZEROS, out, count);
  return true;
}
