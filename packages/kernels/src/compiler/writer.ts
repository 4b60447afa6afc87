// Writing the WGSL of one fused kernel. A KernelWriter evaluates program values at coordinates:
// a stored value is a load from its buffer; any other is computed from its defining equation,
// whose inputs are evaluated at coordinates mapped through the movement ops on the way (index
// arithmetic, no copies). Every value computed is a `let`, and a value asked for twice at the
// same coordinates is computed once. Shapes, strides and constants are literals: a compiled
// program runs many times, so the shader compiler may fold every division by a constant.

import type { DType, Equation, PrimitiveParams, ProgramVar } from '@scorch/tensor';
import { isBinary, isCompare, isUnary, stridesOf } from '@scorch/tensor';
import { type WgslScalar, wgslType } from '../wgsl/common.js';
import { ELEMENTWISE_EXPRESSIONS, type ElementwiseOp, castExpression } from '../wgsl/elementwise.js';
import { wgslLiteral } from '../wgsl/expression.js';
import { type IndexCheckedPrimitive, indexErrorDeclaration, reportBadIndex } from '../wgsl/indexErrors.js';
import { mathPrelude } from '../wgsl/mathLibrary.js';

/** Where a buffer a kernel binds comes from when the program runs. */
export type Slot =
  | { readonly kind: 'input'; readonly group: number }
  | { readonly kind: 'temp'; readonly index: number }
  | { readonly kind: 'outputs'; readonly type: WgslScalar }
  | { readonly kind: 'updates'; readonly type: WgslScalar }
  /** The device's index-error record (wgsl/indexErrors.ts). */
  | { readonly kind: 'indexErrors' };

export function slotKey(s: Slot): string {
  return s.kind === 'input' ? `in${s.group}` : s.kind === 'temp' ? `tmp${s.index}` : s.kind === 'indexErrors' ? 'index_error' : `${s.kind}_${s.type}`;
}

/** A stored value: its buffer, and how its elements are laid out in it (in elements). */
export interface Location {
  readonly slot: Slot;
  readonly offset: number;
  readonly strides: readonly number[];
}

/** Coordinates of a value: one u32 expression per axis; `linear` when they decode a row-major index. */
export interface Coords {
  readonly axes: readonly string[];
  /** The row-major linear index these coordinates decode (over `shape`), when they do. */
  readonly linear?: string;
  readonly shape?: readonly number[];
}

export interface WriterContext {
  /** The defining equation of every value computed by the program. */
  readonly definitions: ReadonlyMap<number, Equation>;
  /** The location of a stored value (program input or materialised), or null to compute it. */
  locate(v: ProgramVar): Location | null;
}

interface BindingInfo {
  readonly name: string;
  readonly slot: Slot;
  readonly type: WgslScalar;
  access: 'read' | 'read_write';
}

/** A u32 literal. */
export const u = (n: number): string => `${n}u`;

export class KernelWriter {
  private readonly bindings: BindingInfo[] = [];
  private readonly blocks: string[][] = [[]];
  private readonly memo: Map<string, string>[] = [new Map()];
  /** Values known in the current scope by id at given coordinates (e.g. an accumulator). */
  private readonly known: Map<string, string>[] = [new Map()];
  private counter = 0;
  /** Equation indices computed inline (for `program.kernels()`). */
  readonly covered = new Set<number>();

  constructor(private readonly ctx: WriterContext, private readonly equationIndex: ReadonlyMap<number, number>) {}

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
    b = { name: `${key}_${type}`, slot, type, access };
    this.bindings.push(b);
    return b.name;
  }

  get bindingList(): readonly BindingInfo[] {
    return this.bindings;
  }

  /** Storage declarations at bindings first..first+n-1. */
  declarations(first = 0): string {
    return this.bindings
      .map((b, i) => (b.slot.kind === 'indexErrors' ? indexErrorDeclaration(first + i) : `@group(0) @binding(${first + i}) var<storage, ${b.access}> ${b.name}: array<${b.type}>;`))
      .join('\n') + '\n';
  }

  /** A statement reporting `index` (i32) as out of range for `axis` of `extent`. */
  reportBadIndex(prim: IndexCheckedPrimitive, index: string, axis: number, extent: number): string {
    this.bind({ kind: 'indexErrors' }, 'u32', 'read_write');
    return reportBadIndex(prim, index, axis, u(extent));
  }

  fresh(prefix = 't'): string {
    return `${prefix}${this.counter++}`;
  }

  emit(line: string): void {
    this.blocks[this.blocks.length - 1]!.push(line);
  }

  /** Runs `body` in a nested scope (a loop body, a branch); returns the statements it emitted. */
  scope(body: () => void): string[] {
    this.blocks.push([]);
    this.memo.push(new Map(this.memo[this.memo.length - 1]));
    this.known.push(new Map(this.known[this.known.length - 1]));
    try {
      body();
    } finally {
      this.memo.pop();
      this.known.pop();
    }
    return this.blocks.pop()!;
  }

  /** Statements emitted at the top level so far (and clears them). */
  take(): string[] {
    const lines = this.blocks[0]!;
    this.blocks[0] = [];
    return lines;
  }

  /** Makes `v` at `coords` read as `expr` in the current scope (an accumulator, a value already computed). */
  define(v: ProgramVar, coords: Coords, expr: string): void {
    this.known[this.known.length - 1]!.set(elementKey(v, coords), expr);
  }

  /** Row-major coordinates of linear index `index` over `shape` (decoded lazily, divisions by literals). */
  decode(index: string, shape: readonly number[]): Coords {
    if (shape.length === 0) return { axes: [], linear: index, shape };
    const axes: string[] = new Array(shape.length);
    let rem = index;
    for (let d = shape.length - 1; d >= 0; d--) {
      const n = shape[d]!;
      if (n === 1) {
        axes[d] = '0u';
        continue;
      }
      if (d === 0 || shape.slice(0, d).every((x) => x === 1)) {
        axes[d] = rem;
        break;
      }
      const c = this.fresh('c');
      this.emit(`let ${c} = ${rem} % ${u(n)};`);
      axes[d] = c;
      const q = this.fresh('q');
      this.emit(`let ${q} = ${rem} / ${u(n)};`);
      rem = q;
    }
    for (let d = 0; d < shape.length; d++) axes[d] ??= '0u';
    return { axes, linear: index, shape };
  }

  /** The element index of `coords` in a stored value. */
  address(loc: Location, coords: Coords, shape: readonly number[]): string {
    const rowMajor = stridesOf(shape);
    const terms: string[] = [];
    if (coords.linear !== undefined && coords.shape && sameShape(coords.shape, shape) && loc.strides.every((s, i) => s === rowMajor[i] || shape[i] === 1)) {
      terms.push(coords.linear);
    } else {
      coords.axes.forEach((c, i) => {
        const s = loc.strides[i]!;
        if (s === 0 || c === '0u' || shape[i] === 1) return;
        terms.push(s === 1 ? c : `${c} * ${u(s)}`);
      });
    }
    if (loc.offset !== 0) terms.unshift(u(loc.offset));
    return terms.length ? terms.join(' + ') : '0u';
  }

  /** Stores `value` as `v`'s element at `coords`. */
  store(v: ProgramVar, coords: Coords, value: string): void {
    const loc = this.ctx.locate(v);
    if (!loc) throw new Error(`internal: compiled kernel stores a value with no location`);
    const name = this.bind(loc.slot, wgslType(v.dtype), 'read_write');
    this.emit(`${name}[${this.address(loc, coords, v.shape)}] = ${value};`);
  }

  /**
   * The value of `v` at `coords`, as a WGSL expression (a `let` name or a literal). With
   * `fromDefinition`, a stored value is computed from its equation instead of loaded (how the
   * kernel that stores it computes it).
   */
  value(v: ProgramVar, coords: Coords, fromDefinition = false): string {
    const key = elementKey(v, coords);
    const scopeKnown = this.known[this.known.length - 1]!.get(key);
    if (scopeKnown !== undefined) return scopeKnown;
    const memo = this.memo[this.memo.length - 1]!;
    const hit = fromDefinition ? undefined : memo.get(key);
    if (hit !== undefined) return hit;
    const expr = this.compute(v, coords, fromDefinition);
    if (/^[A-Za-z_]\w*$|^[\d.]+[ui]?$/.test(expr)) {
      memo.set(key, expr);
      return expr;
    }
    const name = this.fresh();
    this.emit(`let ${name} = ${expr};`);
    memo.set(key, name);
    return name;
  }

  private compute(v: ProgramVar, coords: Coords, fromDefinition: boolean): string {
    const loc = fromDefinition ? null : this.ctx.locate(v);
    if (loc) {
      const type = wgslType(v.dtype);
      return `${this.bind(loc.slot, type, 'read')}[${this.address(loc, coords, v.shape)}]`;
    }
    const eq = this.ctx.definitions.get(v.id);
    if (!eq) throw new Error(`internal: compiled kernel reads a value with no definition and no location`);
    const index = this.equationIndex.get(v.id);
    if (index !== undefined) this.covered.add(index);
    const at = (x: ProgramVar, c: Coords = coords) => this.value(x, c);
    const p = eq.prim;
    if (isUnary(p) || isBinary(p) || isCompare(p) || p === 'where') {
      const args = eq.inputs.map((x) => at(x));
      const operandType = wgslType(eq.inputs[p === 'where' ? 1 : 0]!.dtype);
      return ELEMENTWISE_EXPRESSIONS[p as ElementwiseOp](args, operandType);
    }
    switch (p) {
      case 'cast':
        return castExpression(eq.inputs[0]!.dtype, v.dtype, at(eq.inputs[0]!));
      case 'full':
        return wgslLiteral((eq.params as PrimitiveParams['full']).value, v.dtype);
      case 'stopGradient':
        return at(eq.inputs[0]!);
      case 'reshape':
        return at(eq.inputs[0]!, this.reshapeCoords(coords, v.shape, eq.inputs[0]!.shape));
      case 'expand': {
        const x = eq.inputs[0]!;
        return at(x, { axes: coords.axes.map((c, i) => (x.shape[i] === 1 ? '0u' : c)) });
      }
      case 'permute': {
        const { perm } = eq.params as PrimitiveParams['permute'];
        const axes = new Array<string>(perm.length);
        perm.forEach((src, i) => (axes[src] = coords.axes[i]!));
        return at(eq.inputs[0]!, { axes });
      }
      case 'slice': {
        const { starts } = eq.params as PrimitiveParams['slice'];
        return at(eq.inputs[0]!, { axes: coords.axes.map((c, i) => (starts[i] ? `(${c} + ${u(starts[i]!)})` : c)) });
      }
      case 'pad': {
        const { before } = eq.params as PrimitiveParams['pad'];
        const x = eq.inputs[0]!;
        const inner = coords.axes.map((c, i) => (before[i] ? `(${c} - ${u(before[i]!)})` : c));
        // Unsigned wrap-around makes a coordinate before the window huge: one test per axis.
        const inside = inner.map((c, i) => `${c} < ${u(x.shape[i]!)}`).filter((_, i) => x.shape[i] !== v.shape[i]);
        return this.guarded(v.dtype, inside.join(' && ') || 'true', () => at(x, { axes: inner }));
      }
      case 'concat': {
        const { axis } = eq.params as PrimitiveParams['concat'];
        const result = this.fresh('cat');
        this.emit(`var ${result}: ${wgslType(v.dtype)};`);
        let start = 0;
        const branches: string[] = [];
        eq.inputs.forEach((x, k) => {
          const local = start ? `(${coords.axes[axis]} - ${u(start)})` : coords.axes[axis]!;
          const lines = this.scope(() => {
            const val = at(x, { axes: coords.axes.map((c, i) => (i === axis ? local : c)) });
            this.emit(`${result} = ${val};`);
          });
          const end = start + x.shape[axis]!;
          const cond = k === eq.inputs.length - 1 ? '' : `if (${coords.axes[axis]} < ${u(end)}) `;
          branches.push(`${k > 0 ? 'else ' : ''}${cond}{\n    ${lines.join('\n    ')}\n  }`);
          start = end;
        });
        this.emit(branches.join(' '));
        return result;
      }
      case 'gather': {
        const { axis } = eq.params as PrimitiveParams['gather'];
        const [x, idx] = eq.inputs as [ProgramVar, ProgramVar];
        const index = at(idx, { axes: [coords.axes[axis]!] });
        const row = this.fresh('row');
        this.emit(`let ${row} = u32(${index});`);
        const extent = x.shape[axis]!;
        // Out of range: report it (the next read throws the CPU's error) and yield NaN (0).
        return this.guarded(v.dtype, `${row} < ${u(extent)}`, () => at(x, { axes: coords.axes.map((c, i) => (i === axis ? row : c)) }), true, this.reportBadIndex('gather', index, axis, extent));
      }
      case 'matmul': {
        const [a, b] = eq.inputs as [ProgramVar, ProgramVar];
        const r = v.shape.length;
        const k = a.shape[r - 1]!;
        const batch = coords.axes.slice(0, r - 2);
        const terms: string[] = [];
        for (let i = 0; i < k; i++) {
          const ai = at(a, { axes: [...batch, coords.axes[r - 2]!, u(i)] });
          const bi = at(b, { axes: [...batch, u(i), coords.axes[r - 1]!] });
          terms.push(`${ai} * ${bi}`);
        }
        if (terms.length === 0) return '0.0';
        // Left to right, as the CPU accumulates.
        return terms.reduce((acc, t, i) => (i === 0 ? t : `(${acc} + ${t})`), '');
      }
    }
    throw new Error(`internal: '${p}' cannot be computed inline in a compiled kernel`);
  }

  /** `cond ? value() : 0` (NaN for floats out of a gather's range) with `value` evaluated in a branch. */
  private guarded(dtype: DType, cond: string, value: () => string, nanOutside = false, otherwise = ''): string {
    const t = wgslType(dtype);
    const zero = t === 'f32' ? (nanOutside ? 'sc_nan()' : '0.0') : t === 'i32' ? 'i32(0)' : '0u';
    const result = this.fresh('g');
    this.emit(`var ${result}: ${t} = ${zero};`);
    const lines = this.scope(() => this.emit(`${result} = ${value()};`));
    this.emit(`if (${cond}) {\n    ${lines.join('\n    ')}\n  }${otherwise ? ` else { ${otherwise} }` : ''}`);
    return result;
  }

  /** Coordinates in `inShape` of the element at `coords` of its reshape to `outShape`. */
  reshapeCoords(coords: Coords, outShape: readonly number[], inShape: readonly number[]): Coords {
    if (sameShape(outShape, inShape)) return coords;
    const linear = coords.linear !== undefined && coords.shape && sameShape(coords.shape, outShape) ? coords.linear : undefined;
    // Pair groups of axes with equal products; only size-1 axes are skipped.
    const outAxes = outShape.map((d, i) => i).filter((i) => outShape[i] !== 1);
    const inAxes = inShape.map((d, i) => i).filter((i) => inShape[i] !== 1);
    const result = inShape.map(() => '0u');
    let i = 0;
    let j = 0;
    while (i < outAxes.length || j < inAxes.length) {
      const og = [outAxes[i++]!];
      const ig = [inAxes[j++]!];
      let po = outShape[og[0]!]!;
      let pi = inShape[ig[0]!]!;
      while (po !== pi) {
        if (po < pi) {
          og.push(outAxes[i++]!);
          po *= outShape[og[og.length - 1]!]!;
        } else {
          ig.push(inAxes[j++]!);
          pi *= inShape[ig[ig.length - 1]!]!;
        }
      }
      if (og.length === 1 && ig.length === 1) {
        result[ig[0]!] = coords.axes[og[0]!]!;
        continue;
      }
      // Linearise the group's output coordinates, then decode them over the input axes.
      let lin: string;
      if (og.length === outAxes.length && ig.length === inAxes.length && linear !== undefined) lin = linear;
      else {
        const terms: string[] = [];
        let stride = 1;
        for (let k = og.length - 1; k >= 0; k--) {
          const c = coords.axes[og[k]!]!;
          terms.unshift(stride === 1 ? c : `${c} * ${u(stride)}`);
          stride *= outShape[og[k]!]!;
        }
        lin = this.fresh('l');
        this.emit(`let ${lin} = ${terms.join(' + ')};`);
      }
      let inner = 1;
      for (let k = ig.length - 1; k >= 0; k--) {
        const d = inShape[ig[k]!]!;
        const div = inner === 1 ? lin : `(${lin} / ${u(inner)})`;
        result[ig[k]!] = k === 0 ? div : `(${div} % ${u(d)})`;
        inner *= d;
      }
    }
    return linear !== undefined && inAxes.length > 0 ? { axes: result, linear, shape: inShape } : { axes: result };
  }

  /** The WGSL math functions the given code calls. */
  static prelude(code: string): string {
    return mathPrelude(code);
  }
}

/**
 * Which element of `v` coordinates name, as a memo key: by the row-major linear index when the
 * coordinates carry it for v's shape (so a value reached through reshapes that return to its
 * shape is recognised as the same element), else by the coordinate expressions.
 */
function elementKey(v: ProgramVar, coords: Coords): string {
  if (coords.linear !== undefined && coords.shape && sameShape(coords.shape, v.shape)) return `${v.id}#${coords.linear}`;
  return `${v.id}@${coords.axes.join(',')}`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
