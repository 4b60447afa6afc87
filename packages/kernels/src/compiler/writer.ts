// Writing the WGSL of one fused kernel: the WGSL dialect of @scorch/tensor's KernelWriterBase
// (which evaluates program values at coordinates and is shared with the CPU's JavaScript writer),
// plus what only WebGPU has: bindings, vec4 lanes and index-error reports.
// Every value computed is a `let`; shapes, strides and constants are literals (u32 `…u`), so the
// shader compiler may fold every division by a constant. The one exception is where a program
// input starts in its buffer: a view's offset changes from call to call (minibatch slices of one
// tensor) while the code should not, so an input's offset is a word of the kernel's uniform block
// (`inputOffset`).

import type { AxisMap, DType, Equation, KernelCoords, KernelLocation, KernelWriterContext, ProgramVar, ReadAt } from '@scorch/tensor';
import { KernelWriterBase, shapesEqual } from '@scorch/tensor';
import { type InputOffsetWord, type WgslScalar, UniformBlock, wgslType } from '../wgsl/common.js';
import { customCall as wgslCustomCall } from '../wgsl/custom.js';
import { ELEMENTWISE_EXPRESSIONS, type ElementwiseOp, castExpression } from '../wgsl/elementwise.js';
import { wgslLiteral } from '../wgsl/expression.js';
import { type IndexCheckedPrimitive, indexErrorDeclaration, reportBadIndex } from '../wgsl/indexErrors.js';
import { mathPrelude } from '../wgsl/mathLibrary.js';

/**
 * A bool that is false whenever the kernel runs, which the shader compiler cannot know: set at
 * the start of `main` from the dispatch size (a kernel dispatched with no workgroups never runs).
 * `opaque_use(x, k)` selects x by it, so the compiler sees a value it cannot fold: WGSL lets a
 * compiler assume there are no infinities, NaN or signed zeros, and Mesa's folds x·0 to 0,
 * x − x to 0 and x + 0 to x. A jitted log(x)·0 gave 0 at x = 0 and a jitted x − x gave 0 at ±∞
 * where the eager kernels, which read their operands from memory, give NaN.
 */
const OPAQUE_NEVER = 'opaque_never';
/**
 * `opaque_use(x, k)`: x, opaque, and distinct for each k (one k for two uses would make them one
 * value to the compiler once both calls are inlined, so a third use could fold again).
 */
const OPAQUE_USE = 'opaque_use';
/**
 * `opaque_const(bits, k)`: opaque_use of the float32 constant with those bits. A −0.0 literal
 * passed in as a float was taken for a 0.0 literal elsewhere in the kernel (a jitted −0 + 0 gave
 * −0, clamp(−1, −0, 0) and min(−0, 0) gave +0 where eager gives −0, min(0, −0) gave −0 for +0):
 * written as its bits, an integer, it is no other constant.
 */
const OPAQUE_CONST = 'opaque_const';
/**
 * `opaque_step(x, k)`: x's bits plus `opaque_zero` · k, for a scan's term in its k-th step (k ≥ 1).
 * `opaque_zero` is 0 whenever the kernel runs (no dispatch has 2^16 workgroups in x) and
 * scrambled by an odd factor, so the compiler knows none of its bits. Unlike opaque_use's select,
 * which the compiler moves out of an operation on two selects of the same flag, the steps of an
 * unrolled scan of one value are different unknown values to it: a jitted cumprod of
 * sqrt(full(−∞)) multiplied NaN by itself and Mesa folded sqrt(a)·sqrt(a) to |a|, giving +∞.
 */
const OPAQUE_STEP = 'opaque_step';
const OPAQUE_ZERO = 'opaque_zero';

/** The declarations the opaque functions need and the assignment that starts `main`, for a kernel whose code uses them. */
export function opaquePrelude(code: string): { declarations: string; assignment: string } | null {
  if (![OPAQUE_USE, OPAQUE_CONST, OPAQUE_STEP].some((f) => code.includes(`${f}(`))) return null;
  return {
    declarations:
      `var<private> ${OPAQUE_NEVER}: bool;\n` +
      `fn ${OPAQUE_USE}(x: f32, k: f32) -> f32 { return select(x, k, ${OPAQUE_NEVER}); }\n` +
      `fn ${OPAQUE_CONST}(bits: u32, k: f32) -> f32 { return select(bitcast<f32>(bits), k, ${OPAQUE_NEVER}); }\n` +
      `var<private> ${OPAQUE_ZERO}: u32;\nfn ${OPAQUE_STEP}(x: f32, k: u32) -> f32 { return bitcast<f32>(bitcast<u32>(x) + ${OPAQUE_ZERO} * k); }\n`,
    assignment: `${OPAQUE_NEVER} = nwg.x == 0u;\n  ${OPAQUE_ZERO} = (nwg.x >> 16u) * 0x9e3779b9u;`,
  };
}

/** Where a buffer a kernel binds comes from when the program runs. */
export type Slot =
  | { readonly kind: 'input'; readonly group: number }
  | { readonly kind: 'temp'; readonly index: number }
  /** Results of one element type share blocks, a new one when the last would outgrow a binding. */
  | { readonly kind: 'outputs'; readonly type: WgslScalar; readonly block: number }
  | { readonly kind: 'updates'; readonly type: WgslScalar; readonly block: number }
  /** The device's index-error record (wgsl/indexErrors.ts). */
  | { readonly kind: 'indexErrors' };

export function slotKey(s: Slot): string {
  return s.kind === 'input' ? `in${s.group}` : s.kind === 'temp' ? `tmp${s.index}` : s.kind === 'indexErrors' ? 'index_error' : `${s.kind}_${s.type}_${s.block}`;
}

/** A stored value: its buffer, and how its elements are laid out in it (in elements). */
export interface Location extends KernelLocation {
  readonly slot: Slot;
  /**
   * For a program input, its index among the program's inputs: its offset is then read from the
   * kernel's uniform block (KernelWriter.inputOffset), not written into the code.
   */
  readonly input?: number;
}

/** Coordinates of a value: one u32 expression per axis; `linear` when they decode a row-major index. */
export interface Coords extends KernelCoords {
  /** Set when these are one of VECTOR_WIDTH consecutive elements an invocation computes. */
  readonly lane?: Lane;
}

/** Elements one invocation of a vectorised elementwise kernel computes (one vec4 access). */
export const VECTOR_WIDTH = 4;

/**
 * Lane `k` of VECTOR_WIDTH elements that differ only along `axis`: these coordinates are
 * `at0`'s with `k` added on that axis (all lanes inside the axis's extent). `aligned`: at0's
 * coordinate on that axis is a multiple of VECTOR_WIDTH. A value read with unit stride along the
 * axis, at an aligned address, is then one vector load shared by the lanes; a value that does not
 * vary along the axis (broadcast) reads the same coordinates, so the lanes share one load.
 */
export interface Lane {
  readonly axis: number;
  readonly k: number;
  readonly at0: Coords;
  readonly aligned: boolean;
}

/** The index of the last axis of extent other than 1 (-1 for none). */
export function lastNonUnitAxis(shape: readonly number[]): number {
  for (let d = shape.length - 1; d >= 0; d--) if (shape[d] !== 1) return d;
  return -1;
}

/** Lane `k`'s coordinates (see Lane): at0's, with k added along `axis`. */
export function laneCoords(at0: Coords, axis: number, k: number, aligned: boolean): Coords {
  const base: Coords = { axes: at0.axes, ...(at0.linear !== undefined ? { linear: at0.linear, shape: at0.shape } : {}) };
  const axes = k === 0 ? base.axes : base.axes.map((c, i) => (i === axis ? `(${c} + ${u(k)})` : c));
  // The row-major linear index moves with the lane only when the lane's axis is the innermost one.
  const linear = base.linear !== undefined && base.shape && lastNonUnitAxis(base.shape) === axis ? (k === 0 ? base.linear : `(${base.linear} + ${u(k)})`) : undefined;
  return { axes, ...(linear !== undefined ? { linear, shape: base.shape } : {}), lane: { axis, k, at0: base, aligned } };
}

const COMPONENTS = ['x', 'y', 'z', 'w'];

/** What a WGSL kernel writer knows of the program: definitions, where stored values live, equation indices. */
export type WriterContext = KernelWriterContext<Location>;

interface BindingInfo {
  readonly name: string;
  readonly slot: Slot;
  readonly type: WgslScalar;
  access: 'read' | 'read_write';
  /** Declared as array<vec4<type>>: scalar elements are then read as components. */
  readonly vector: boolean;
}

/** A binding's key for vector access: the slot and the element type it is read as. */
function vectorKey(slot: Slot, type: WgslScalar): string {
  return `${slotKey(slot)}|${type}`;
}

/**
 * A u32 literal. A value of 2^32 or more (an extent or offset of a view of 2^32 or more
 * elements) is refused here, as the eager kernels' uniform block refuses it: written out, it
 * would make the kernel invalid WGSL, reported as a compile error of generated code.
 */
export const u = (n: number): string => {
  if (n > 0xffffffff) {
    throw new Error(`webgpu: constant ${n} of a compiled kernel does not fit an unsigned 32-bit word (is a tensor larger than 2^32 elements?)`);
  }
  return `${n}u`;
};

export class KernelWriter extends KernelWriterBase<Location, Coords> {
  protected readonly kernelKind = 'compiled kernel';
  private readonly bindings: BindingInfo[] = [];
  /** Per kind, the order of each input or temporary slot (slotKey) among this kernel's of that kind (localName). */
  private readonly localOrdinals = { input: new Map<string, number>(), temp: new Map<string, number>() };
  /** Bindings (vectorKey) that some access would have read or written as a vector. */
  private readonly vectorWanted = new Set<string>();
  /** Slots (slotKey) written one element at a time. */
  private readonly scalarWritten = new Set<string>();
  /** Coordinates of reshapes already decoded in a scope, by value and source coordinates. */
  private readonly reshapes: Map<string, Coords>[] = [new Map()];
  /** The kernel's uniform words: the offsets of the inputs it reads and of the results it writes, in order of first use. */
  private readonly uniformBlock = new UniformBlock();
  /** The uniform expression of each input's offset, by input index. */
  private readonly inputOffsets = new Map<number, string>();
  /** The uniform expression of each offset in a results or updates block, by block and offset. */
  private readonly blockOffsets = new Map<string, string>();

  /**
   * `vectorSlots`: bindings (vectorKey) declared as vec4 arrays. A kernel is written once with
   * none, which records which bindings would profit (`vectorBindings()`), then again with those.
   */
  constructor(
    ctx: WriterContext,
    private readonly vectorSlots: ReadonlySet<string> = new Set(),
  ) {
    super(ctx);
  }

  /**
   * The WGSL expression of a program input's offset in its buffer: a word of the kernel's uniform
   * block, one per input however often it is read, 0 included. Only whether an offset is a
   * multiple of VECTOR_WIDTH (vectorAddress) shapes the code, so kernels that read views of one
   * tensor at different offsets (minibatch slices, the first at 0) are one WGSL text and share one
   * compiled pipeline. An offset of 2^32 or more is refused by UniformBlock.u32.
   */
  private inputOffset(input: number, offset: number): string {
    let expr = this.inputOffsets.get(input);
    if (expr === undefined) {
      expr = this.uniformBlock.inputOffset(offset, { input, plus: 0 });
      this.inputOffsets.set(input, expr);
    }
    return expr;
  }

  /** The kernel's uniform block (the offsets of the inputs it reads), for a template that continues it. */
  get uniforms(): UniformBlock {
    return this.uniformBlock;
  }

  /** The uniform words this kernel reads (its inputs' offsets, its results' offsets), or null for none. */
  get uniformWords(): readonly number[] | null {
    return this.uniformBlock.recorded.length ? this.uniformBlock.recorded : null;
  }

  /** Which of uniformWords hold which input's offset (each plus 0; the words of results' offsets never change). */
  get offsetWords(): readonly InputOffsetWord[] {
    return this.uniformBlock.inputOffsets;
  }

  /** The uniform block's data (null: the kernel has none). */
  uniformData(): Uint32Array | null {
    return this.uniformWords ? this.uniformBlock.data() : null;
  }

  /** The uniform block's declaration at `binding` ('' when the kernel has none). */
  uniformDeclaration(binding: number): string {
    return this.uniformWords ? this.uniformBlock.declare(binding) : '';
  }

  /**
   * The WGSL expression of a value's offset in the program's results or updates block: a word of
   * the kernel's uniform block, one per value, fixed when the program is lowered. The values a
   * program returns sit one after another in their block, so kernels that compute the same for
   * different results (the gradients of a deep network's layers) would otherwise differ only in
   * that constant, and each be compiled on its own.
   */
  private blockOffset(slot: Slot, offset: number): string {
    const key = `${slotKey(slot)}@${offset}`;
    let expr = this.blockOffsets.get(key);
    if (expr === undefined) {
      expr = this.uniformBlock.u32(offset);
      this.blockOffsets.set(key, expr);
    }
    return expr;
  }

  /**
   * As KernelWriterBase's, with a program input's offset (inputOffset) and a value's offset in a
   * results or updates block (blockOffset) read from the uniform block.
   */
  override address(loc: KernelLocation, coords: Coords, shape: readonly number[]): string {
    const { input, slot } = loc as Location;
    const inBlock = slot?.kind === 'outputs' || slot?.kind === 'updates'; // (an index computation passes no slot)
    if (input === undefined && !inBlock) return super.address(loc, coords, shape);
    const offset = input !== undefined ? this.inputOffset(input, loc.offset) : this.blockOffset(slot, loc.offset);
    const rest = super.address({ offset: 0, strides: loc.strides }, coords, shape);
    return rest === this.index(0) ? offset : `${offset} + ${rest}`;
  }

  /**
   * The bindings to declare as vec4 arrays in a second writing: those some access would read or
   * write as a vector, less the slots also written one element at a time (a written buffer has one
   * binding, and a component store would race with a neighbour's).
   */
  vectorBindings(): Set<string> {
    return new Set([...this.vectorWanted].filter((k) => !this.scalarWritten.has(k.slice(0, k.lastIndexOf('|')))));
  }

  /** The binding name for a slot read (or written) as `type`; read bindings of one slot share. */
  bind(slot: Slot, type: WgslScalar, access: 'read' | 'read_write'): string {
    const key = slotKey(slot);
    // A written slot has one binding (WebGPU forbids aliasing a writable binding); read-only
    // bindings of one buffer as different types may coexist.
    let b = this.bindings.find((x) => slotKey(x.slot) === key && (x.type === type || x.access === 'read_write' || access === 'read_write'));
    if (b) {
      if (b.type !== type) throw new Error(`internal: compiled kernel binds ${key} as ${b.type} and ${type}`);
      if (access === 'read_write') b.access = 'read_write';
      return b.name;
    }
    b = { name: `${this.localName(slot, key)}_${type}`, slot, type, access, vector: this.vectorSlots.has(vectorKey(slot, type)) };
    this.bindings.push(b);
    return b.name;
  }

  /**
   * A slot's name in this kernel: a program input or temporary buffer is named by its kind and
   * its order among this kernel's slots of that kind (`in0`, `in1`, `tmp0`, ...), not by its
   * place in the whole program. Kernels that compute the same thing on buffers of the same
   * layout (the layers of a deep network, the steps of an unrolled chain) are then one WGSL text
   * and share one compiled pipeline: on llvmpipe each distinct kernel costs a compile (4–50 ms
   * and more), and past 1,024 compute shaders in use it evicts compiled variants it needs again
   * within the same call. Results and updates are few and keep their block's name.
   */
  private localName(slot: Slot, key: string): string {
    if (slot.kind !== 'input' && slot.kind !== 'temp') return key;
    const ordinals = this.localOrdinals[slot.kind];
    let ordinal = ordinals.get(key);
    if (ordinal === undefined) ordinals.set(key, (ordinal = ordinals.size));
    return `${slot.kind === 'input' ? 'in' : 'tmp'}${ordinal}`;
  }

  get bindingList(): readonly BindingInfo[] {
    return this.bindings;
  }

  /** Storage declarations at bindings first..first+n-1. */
  declarations(first = 0): string {
    return this.bindings
      .map((b, i) => (b.slot.kind === 'indexErrors' ? indexErrorDeclaration(first + i) : `@group(0) @binding(${first + i}) var<storage, ${b.access}> ${b.name}: array<${b.vector ? `vec4<${b.type}>` : b.type}>;`))
      .join('\n') + '\n';
  }

  /** A statement reporting `index` (i32) as out of range for `axis` of `extent`. */
  reportBadIndex(prim: IndexCheckedPrimitive, index: string, axis: number, extent: number): string {
    this.bind({ kind: 'indexErrors' }, 'u32', 'read_write');
    return reportBadIndex(prim, index, axis, u(extent));
  }

  /** Runs `body` in a nested scope; reshapes decoded inside stay inside. */
  override scope(body: () => void): string[] {
    this.reshapes.push(new Map(this.reshapes[this.reshapes.length - 1]));
    try {
      return super.scope(body);
    } finally {
      this.reshapes.pop();
    }
  }

  /**
   * The element index of the first lane when the VECTOR_WIDTH lanes of `coords` are one aligned
   * vector of `loc` (unit stride along the lanes' axis, every other step and the offset multiples
   * of VECTOR_WIDTH), else null.
   */
  private vectorAddress(loc: Location, coords: Coords, shape: readonly number[]): string | null {
    const lane = coords.lane;
    if (!lane || !lane.aligned || loc.offset % VECTOR_WIDTH !== 0) return null;
    if (shape[lane.axis] === 1 || loc.strides[lane.axis] !== 1) return null;
    const ok = lane.at0.axes.every((c, i) => i === lane.axis || shape[i] === 1 || c === '0u' || loc.strides[i]! % VECTOR_WIDTH === 0);
    return ok ? this.address(loc, lane.at0, shape) : null;
  }

  /** A scalar element of a binding (a component of a vec4 binding). */
  private element(b: string, address: string): string {
    const info = this.bindings.find((x) => x.name === b)!;
    return info.vector ? `${b}[(${address}) / ${u(VECTOR_WIDTH)}][(${address}) % ${u(VECTOR_WIDTH)}]` : `${b}[${address}]`;
  }

  /** Stores `value` as `v`'s element at `coords`. */
  store(v: ProgramVar, coords: Coords, value: string): void {
    const loc = this.ctx.locate(v);
    if (!loc) throw new Error(`internal: compiled kernel stores a value with no location`);
    const type = wgslType(v.dtype);
    if (this.vectorSlots.has(vectorKey(loc.slot, type))) throw new Error(`internal: compiled kernel stores one element into a vector binding`);
    this.scalarWritten.add(slotKey(loc.slot));
    const name = this.bind(loc.slot, type, 'read_write');
    this.emit(`${name}[${this.address(loc, coords, v.shape)}] = ${value};`);
  }

  /**
   * Stores `values` as `v`'s elements at `lanes`: one vector store when they are the lanes
   * (laneCoords 0..VECTOR_WIDTH-1) of an aligned vector, else one store each.
   */
  protected override storeAll(v: ProgramVar, lanes: readonly Coords[], values: readonly string[]): void {
    const loc = this.ctx.locate(v);
    if (!loc) throw new Error(`internal: compiled kernel stores a value with no location`);
    const type = wgslType(v.dtype);
    const at = this.vectorAddress(loc, lanes[0]!, v.shape);
    if (at !== null && lanes.length === VECTOR_WIDTH) {
      const key = vectorKey(loc.slot, type);
      if (this.vectorSlots.has(key)) {
        const name = this.bind(loc.slot, type, 'read_write');
        this.emit(`${name}[(${at}) / ${u(VECTOR_WIDTH)}] = vec4<${type}>(${values.join(', ')});`);
        return;
      }
      // First writing (or a buffer also stored one element at a time): scalar stores, the
      // binding marked as wanting vectors.
      this.vectorWanted.add(key);
      const name = this.bind(loc.slot, type, 'read_write');
      lanes.forEach((c, k) => this.emit(`${name}[${this.address(loc, c, v.shape)}] = ${values[k]};`));
      return;
    }
    lanes.forEach((c, k) => this.store(v, c, values[k]!));
  }

  // ---- the WGSL dialect --------------------------------------------------------------------

  protected index(n: number): string {
    return u(n);
  }

  protected declare(name: string, expr: string): string {
    return `let ${name} = ${expr};`;
  }

  protected declareVariable(name: string, dtype: DType, init?: string): string {
    return `var ${name}: ${wgslType(dtype)}${init === undefined ? '' : ` = ${init}`};`;
  }

  protected isSimple(expr: string): boolean {
    return /^[A-Za-z_]\w*$|^[\d.]+[ui]?$/.test(expr);
  }

  protected quotient(expr: string, n: number): string {
    return `(${expr} / ${u(n)})`;
  }

  /** Unsigned wrap-around makes a coordinate moved below 0 huge: one test. */
  protected inRange(c: string, extent: number): string {
    return `${c} < ${u(extent)}`;
  }

  protected block(lines: readonly string[]): string {
    return `{\n    ${lines.join('\n    ')}\n  }`;
  }

  /**
   * A pad's fill. A float 0 is a constant (`literal`, through `opaque_const`): a short scan
   * is an unrolled loop, and after a literal 0 the compiler knew its product was 0 and folded
   * 0 · ∞ and 0 · NaN later in the scan to 0 (OPAQUE_NEVER).
   */
  protected zero(dtype: DType): string {
    const t = wgslType(dtype);
    return t === 'f32' ? this.literal(0, 'float32') : t === 'i32' ? 'i32(0)' : '0u';
  }

  /**
   * A float32 expression through `opaque_use` with a k of its own: its value, which the compiler
   * cannot fold into what uses it (OPAQUE_NEVER). With one never-taken value for every call (0.5,
   * as an earlier opaque function had), two opaque values agreed on both branches when they agreed on the
   * taken one, and a jitted x / (−f32(i − i) + 0) folded −0.5 + 0.5 and −0 + 0 alike to a
   * constant 0 and the quotient to 0, not ±∞.
   */
  opaque(expr: string): string {
    // k is n + 0.5, never 1.0: the compiler took select(−0.0, 1.0, c) for select(0.0, 1.0, c),
    // which is f32(c), +0 (a jitted full(−0) gave +0 in the lane whose k was 1).
    return `${OPAQUE_USE}(${expr}, ${++this.opaqueUses}.5)`;
  }

  /** `x` (float32) in step `k` (a u32 expression, never 0) of a scan, opaque (OPAQUE_STEP). */
  opaqueStep(x: string, k: string): string {
    return `${OPAQUE_STEP}(${x}, ${k})`;
  }

  /**
   * A constant; a float through `opaque_const` (its bits, and a k as `opaque` gives), so that x·0
   * and x + 0 are not folded (OPAQUE_NEVER) and −0 is not taken for 0. ±∞ and NaN too: written as
   * the math prelude's constants, a jitted silu(−∞) (−∞ · sigmoid(−∞), ∞ · 0) was folded to 0
   * where eager gives NaN.
   */
  protected literal(value: number, dtype: DType): string {
    if (dtype !== 'float32') return wgslLiteral(value, dtype);
    const bits = new Uint32Array(new Float32Array([value]).buffer)[0]!;
    return `${OPAQUE_CONST}(0x${bits.toString(16)}u, ${++this.opaqueUses}.5)`;
  }

  // ---- the WGSL leaves ---------------------------------------------------------------------

  /** A load; one vec4 load shared by the lanes when they are an aligned vector of a vec4 binding. */
  protected load(v: ProgramVar, loc: Location, coords: Coords): string {
    const type = wgslType(v.dtype);
    const at = this.vectorAddress(loc, coords, v.shape);
    if (at !== null) {
      const key = vectorKey(loc.slot, type);
      if (this.vectorSlots.has(key)) {
        const name = this.bind(loc.slot, type, 'read');
        const memo = this.memo;
        const memoKey = `vector ${name}[${at}]`;
        let vec = memo.get(memoKey);
        if (vec === undefined) {
          vec = this.fresh('v');
          this.emit(`let ${vec} = ${name}[(${at}) / ${u(VECTOR_WIDTH)}];`);
          memo.set(memoKey, vec);
        }
        return `${vec}.${COMPONENTS[coords.lane!.k]}`;
      }
      this.vectorWanted.add(key);
    }
    return this.element(this.bind(loc.slot, type, 'read'), this.address(loc, coords, v.shape));
  }

  protected elementwise(op: ElementwiseOp, dtype: DType, args: readonly string[]): string {
    // A float value used again, by this operation or by an earlier one of the kernel, is passed
    // through `opaque_use` (a distinct one per use): folded, x − x is 0 for x = ±∞, where eager
    // reads it twice and gives NaN, and Mesa's reassociation turns (x + y) − y into x, which
    // drops a NaN or ∞ in y and the rounding of x + y (OPAQUE_NEVER). where's condition is bool.
    if (wgslType(dtype) !== 'f32') return ELEMENTWISE_EXPRESSIONS[op](args as string[], wgslType(dtype), this.literalWriter);
    // The k of each opaque_use is unique in the kernel, not the use's count: with k = 1 for the
    // second use of every operand, w = select(opaque_use(y, 1), opaque_use(x, 1), c) is 1 on the
    // never-taken branch, as is opaque_use(w, 1), so w − opaque_use(w, 1) was 0 on both branches
    // and folded (a jitted where's w − w gave 0 for w = −∞, not NaN).
    const operands = args.map((a, i) => {
      if (op === 'where' && i === 0) return a;
      if (!this.floatUsed.has(a)) {
        this.floatUsed.add(a);
        return a;
      }
      return this.opaque(a);
    });
    // The expression table's constants are written opaque (`literal`): Mesa folds 1/(1/x) to x
    // when reciprocal's 1.0 is a literal (a jitted reciprocal of a reciprocal kept 1e−40 where
    // eager's 1/∞ gives 0, and the two roundings' bits elsewhere); sign's ±1 and 0 and the casts'
    // bounds are constants it could fold alike. One select per constant.
    return ELEMENTWISE_EXPRESSIONS[op](operands, wgslType(dtype), this.literalWriter);
  }

  /** `literal` as the expression renderer takes it. */
  private readonly literalWriter = (value: number, dtype: DType): string => this.literal(value, dtype);

  /** The float operands the elementwise operations written so far have used. */
  private readonly floatUsed = new Set<string>();
  /** How many opaque_use calls the kernel has: the k of the next one. */
  private opaqueUses = 0;

  /**
   * A bool or int32 converted to float32 is made opaque (`opaque`): the compiler may fold the
   * integer side exactly (b ≠ b, i − i are 0), and then the float it converts to is a constant it
   * folds into what uses it as WGSL lets it (OPAQUE_NEVER): a jitted f32(b ≠ b)·x gave 0 for x
   * NaN, ±∞ and −0, where the eager kernels and the CPU give NaN and −0.
   */
  protected cast(from: DType, to: DType, x: string): string {
    const converted = castExpression(from, to, x, this.literalWriter);
    return to === 'float32' && from !== 'float32' ? this.opaque(converted) : converted;
  }

  protected customCall(name: string, args: readonly string[]): string {
    return wgslCustomCall(name, args as string[]);
  }

  /** Out of range: report it (the next read throws the CPU's error) and yield NaN (0). */
  protected gather(v: ProgramVar, index: string, axis: number, extent: number, read: (row: string) => string): string {
    const row = this.fresh('row');
    this.emit(`let ${row} = u32(${index});`);
    const outside = wgslType(v.dtype) === 'f32' ? 'sc_nan()' : this.zero(v.dtype);
    return this.guarded(v.dtype, outside, `${row} < ${u(extent)}`, () => read(row), this.reportBadIndex('gather', index, axis, extent));
  }

  /** A short contraction, its products summed left to right as the CPU accumulates. */
  protected matmul(v: ProgramVar, eq: Equation, coords: Coords, at: ReadAt<Coords>): string {
    const [a, b] = eq.inputs as [ProgramVar, ProgramVar];
    const r = v.shape.length;
    const k = a.shape[r - 1]!;
    const batch = coords.axes.slice(0, r - 2);
    // Lanes along the output's columns: the same row of `a` (one read), consecutive columns of `b`.
    const lane = coords.lane?.axis === r - 1 ? coords.lane : undefined;
    const terms: string[] = [];
    for (let i = 0; i < k; i++) {
      const ai = at(a, { axes: [...batch, coords.axes[r - 2]!, u(i)] });
      const bi = lane
        ? at(b, laneCoords({ axes: [...lane.at0.axes.slice(0, r - 2), u(i), lane.at0.axes[r - 1]!] }, r - 1, lane.k, lane.aligned))
        : at(b, { axes: [...batch, u(i), coords.axes[r - 1]!] });
      terms.push(`${ai} * ${bi}`);
    }
    // The sum starts at 0 as the product kernels' and the CPU's do, so products that are all −0
    // give +0 there too (a·b alone gave −0 for a = 0, b < 0 where eager gives 0). The 0 is
    // opaque as every constant is (a literal 0.0 would be folded away, and for an empty
    // contraction 0/0 folded to 0 where eager gives NaN).
    return terms.reduce((acc, t) => `(${acc} + ${t})`, this.literal(0, v.dtype));
  }

  // Movement ops keep lanes together where they can: the lanes' first coordinates are moved, and
  // each lane is rebuilt from them (so lanes share every other coordinate).

  protected override moveCoords(coords: Coords, move: (c: Coords) => Coords, map: AxisMap): Coords {
    const lane = coords.lane;
    const axis = lane ? map.axis(lane.axis) : null;
    if (!lane || axis === null) return move(coords);
    const aligned = lane.aligned && (map.shift?.(lane.axis) ?? 0) % VECTOR_WIDTH === 0;
    return laneCoords(move(lane.at0), axis, lane.k, aligned);
  }

  protected override reshapeInput(v: ProgramVar, x: ProgramVar, coords: Coords): Coords {
    const lane = coords.lane;
    if (lane && !shapesEqual(v.shape, x.shape)) {
      // Consecutive row-major elements stay consecutive when both innermost extents are
      // multiples of the width and the lanes start at a multiple of it.
      const a = lastNonUnitAxis(v.shape);
      const b = lastNonUnitAxis(x.shape);
      if (lane.aligned && lane.axis === a && b >= 0 && v.shape[a]! % VECTOR_WIDTH === 0 && x.shape[b]! % VECTOR_WIDTH === 0) {
        const reshapes = this.reshapes[this.reshapes.length - 1]!;
        const key = `${v.id}@${lane.at0.axes.join(',')}#${lane.at0.linear ?? ''}`;
        let at0 = reshapes.get(key);
        if (!at0) {
          at0 = this.reshapeCoords(lane.at0, v.shape, x.shape);
          reshapes.set(key, at0);
        }
        return laneCoords(at0, b, lane.k, true);
      }
    }
    return super.reshapeInput(v, x, coords);
  }

  /** The WGSL math functions the given code calls. */
  static prelude(code: string): string {
    return mathPrelude(code);
  }
}
