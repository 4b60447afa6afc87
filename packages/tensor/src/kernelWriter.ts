// The target-independent half of writing one fused kernel: evaluating program values at
// coordinates. A stored value is a load from its buffer; any other is computed from its defining
// equation, whose inputs are evaluated at coordinates mapped through the movement ops on the way
// (index arithmetic, no copies). Every value computed is a named constant, and a value asked for
// twice at the same coordinates in one scope is computed once. Shapes, strides and constants are
// literals: a compiled program runs many times.
//
// Both code generators build on this class: @scorch/kernels' WGSL KernelWriter (WebGPU) and the
// CPU backend's JsWriter (cpu/jsWriter.ts). A subclass supplies the dialect (how to write an
// index literal, a declaration, a quotient, a range test, a block), the leaves (a load, a store, an
// elementwise expression, a cast, a literal, a defined primitive's call, a gather's bounds check,
// an inline matmul) and target features (vector lanes on WebGPU, loops on the CPU).

import type { DType } from './dtype.js';
import type { ElementwiseOp } from './expression.js';
import { type PrimitiveParams, isBinary, isCompare, isUnary } from './primitives.js';
import type { Equation, Program, ProgramVar } from './program.js';
import { reshapeGroups, shapesEqual, stridesOf } from './shape.js';

/**
 * Coordinates of a value in generated code: one non-negative integer expression per axis, and
 * `linear` when they decode the row-major index `linear` over `shape`.
 */
export interface KernelCoords {
  readonly axes: readonly string[];
  readonly linear?: string;
  readonly shape?: readonly number[];
  /**
   * With `linear`: the same element's coordinates over a finer shape of the same row-major order
   * (a loop over it, CPU kernels), so that a reshape to any coarsening of it reads them grouped
   * instead of decoding `linear` by divisions.
   */
  readonly fine?: FineCoords;
}

/** Coordinates over `shape`, a refinement of a value's shape (KernelCoords.fine). */
export interface FineCoords {
  readonly shape: readonly number[];
  readonly axes: readonly string[];
}

/** How a stored value's elements are laid out in their buffer (in elements). */
export interface KernelLocation {
  readonly offset: number;
  readonly strides: readonly number[];
}

/** What a kernel writer knows of the program it writes from. */
export interface KernelWriterContext<L extends KernelLocation> {
  /** The defining equation of every value computed by the program. */
  readonly definitions: ReadonlyMap<number, Equation>;
  /** The location of a stored value (a program input or a materialised value), or null to compute it. */
  locate(v: ProgramVar): L | null;
  /**
   * Indices into `program.equations` by output id (the equations a kernel covers, for
   * `program.kernels()`): built once per lowering (KernelWriterBase.equationIndex).
   */
  readonly equationIndex: ReadonlyMap<number, number>;
}

/** Reads `x` at coordinates (default: those being computed). */
export type ReadAt<C extends KernelCoords> = (x: ProgramVar, coords?: C) => string;

/**
 * How a movement op carries coordinates that stand for several elements at once (WebGPU's vector
 * lanes): `axis` maps an output axis to the input axis it reads (null when the input does not vary
 * along it), `shift` is the constant the op adds to the coordinate on an output axis.
 */
export interface AxisMap {
  readonly axis: (outAxis: number) => number | null;
  readonly shift?: (outAxis: number) => number;
}

/**
 * Writes the code of one fused kernel in some target language: the scopes, the memo of values
 * already computed, and the index arithmetic of every movement op. `L` is the target's location
 * of a stored value, `C` its coordinates (which may carry more than KernelCoords).
 */
export abstract class KernelWriterBase<L extends KernelLocation, C extends KernelCoords> {
  private readonly blocks: string[][] = [[]];
  /** Declarations a closed scope drops when nothing reads their name (withoutUnused), by line. */
  private readonly optionalLines = new Map<string, string>();
  private readonly memos: Map<string, string>[] = [new Map()];
  /** Values known in the current scope by id at given coordinates (e.g. an accumulator). */
  private readonly known: Map<string, string>[] = [new Map()];
  private counter = 0;
  /** Equation indices computed inline (for `program.kernels()`). */
  readonly covered = new Set<number>();

  constructor(protected readonly ctx: KernelWriterContext<L>) {}

  /** The index of every equation of `program` by its output's id (KernelWriterContext.equationIndex). */
  static equationIndex(program: Program): Map<number, number> {
    const index = new Map<number, number>();
    program.equations.forEach((eq, i) => index.set(eq.out.id, i));
    return index;
  }

  // ---- the target's dialect ----------------------------------------------------------------

  /** What the kernel is called in internal errors ('compiled kernel'). */
  protected abstract readonly kernelKind: string;
  /** A non-negative integer literal of the index type. */
  protected abstract index(n: number): string;
  /** A statement declaring the constant `name` as `expr`. */
  protected abstract declare(name: string, expr: string): string;
  /** A statement declaring the variable `name` of `dtype`, set to `init` when given. */
  protected abstract declareVariable(name: string, dtype: DType, init?: string): string;
  /** Whether `expr` is a name or a literal (used as it is rather than named). */
  protected abstract isSimple(expr: string): boolean;
  /** `expr` divided by `n`, rounded down (`expr` is a non-negative index). */
  protected abstract quotient(expr: string, n: number): string;
  /**
   * The test that index `c`, which may have been moved below 0, lies in [0, extent). A dialect
   * may answer 'true' or 'false' where `c`'s range decides it (the pad case then drops the test,
   * or keeps a branch never taken).
   */
  protected abstract inRange(c: string, extent: number): string;

  /**
   * Coordinate `c` moved by `delta` (a slice's start, a pad's or a concat piece's offset): `(c +
   * delta)` or `(c − |delta|)`. A dialect may fold the constant into one `c` already carries.
   */
  protected shifted(c: string, delta: number): string {
    if (delta === 0) return c;
    return delta > 0 ? `(${c} + ${this.index(delta)})` : `(${c} - ${this.index(-delta)})`;
  }
  /** `lines` as a braced block, indented for where branches stand. */
  protected abstract block(lines: readonly string[]): string;
  /** The zero of `dtype`. */
  protected abstract zero(dtype: DType): string;
  /** A literal of `dtype`. */
  protected abstract literal(value: number, dtype: DType): string;

  // ---- the target's leaves -----------------------------------------------------------------

  /** The element of stored value `v` at `coords`. */
  protected abstract load(v: ProgramVar, loc: L, coords: C): string;
  /** An elementwise op on operands of `dtype`. */
  protected abstract elementwise(op: ElementwiseOp, dtype: DType, args: readonly string[]): string;
  protected abstract cast(from: DType, to: DType, x: string): string;
  /** A defined elementwise primitive's call, with its result of `dtype`. */
  protected abstract customCall(name: string, args: readonly string[], dtype: DType): string;
  /**
   * A gather's element of `v`: `index` is the gathered row along `axis` (of `extent`) as read,
   * `read(row)` the element of the source at row `row` (an index expression).
   */
  protected abstract gather(v: ProgramVar, index: string, axis: number, extent: number, read: (row: string) => string): string;
  /** A matmul computed inline, or null when the target computes none at `coords`. */
  protected abstract matmul(v: ProgramVar, eq: Equation, coords: C, at: ReadAt<C>): string | null;

  /** Stores `value` as stored value `v`'s element at `coords`. */
  abstract store(v: ProgramVar, coords: C, value: string): void;

  /**
   * Stores `values` as `v`'s elements at `at` (one coordinates each): one `store` each, unless the
   * target stores several at once (WebGPU's vector lanes).
   */
  protected storeAll(v: ProgramVar, at: readonly C[], values: readonly string[]): void {
    at.forEach((c, k) => this.store(v, c, values[k]!));
  }

  /**
   * The coordinates of the input that `move` maps `coords` to. A target whose coordinates stand
   * for several elements overrides this to carry them through (see AxisMap).
   */
  protected moveCoords(coords: C, move: (c: C) => C, _map: AxisMap): C {
    return move(coords);
  }

  /** The coordinates in input `x` of `v`'s (a reshape of x) element at `coords`. */
  protected reshapeInput(v: ProgramVar, x: ProgramVar, coords: C): C {
    return this.reshapeCoords(coords, v.shape, x.shape);
  }

  // ---- scopes ------------------------------------------------------------------------------

  fresh(prefix = 't'): string {
    return `${prefix}${this.counter++}`;
  }

  emit(line: string): void {
    this.blocks[this.blocks.length - 1]!.push(line);
  }

  /** Runs `body` in a nested scope (a loop body, a branch); returns the statements it emitted. */
  scope(body: () => void): string[] {
    this.blocks.push([]);
    this.memos.push(new Map(this.memo));
    this.known.push(new Map(this.known[this.known.length - 1]));
    try {
      body();
    } finally {
      this.memos.pop();
      this.known.pop();
    }
    return this.withoutUnused(this.blocks.pop()!);
  }

  /**
   * `lines` less the declarations of coordinates that reshapeCoords named (a group of axes
   * linearised) and nothing in them reads: an epilogue value's coordinates over a regrouped
   * shape, when every value it reads is known by the row-major index. A closed scope's names
   * are read only within it.
   */
  private withoutUnused(lines: string[]): string[] {
    let candidates = lines.filter((l) => this.optionalLines.has(l));
    while (candidates.length > 0) {
      const text = lines.join('\n');
      const dead = new Set(candidates.filter((l) => (text.match(new RegExp(`\\b${this.optionalLines.get(l)!}\\b`, 'g')) ?? []).length < 2));
      if (dead.size === 0) break;
      lines = lines.filter((l) => !dead.has(l));
      candidates = candidates.filter((l) => !dead.has(l));
    }
    return lines;
  }

  /** Statements emitted at the top level so far (and clears them). */
  take(): string[] {
    const lines = this.blocks[0]!;
    this.blocks[0] = [];
    return lines;
  }

  /** The current scope's memo: expressions already named, by key. */
  protected get memo(): Map<string, string> {
    return this.memos[this.memos.length - 1]!;
  }

  /** Makes `v` at `coords` read as `expr` in the current scope (an accumulator, a value already computed). */
  define(v: ProgramVar, coords: C, expr: string): void {
    this.known[this.known.length - 1]!.set(elementKey(v, coords), expr);
  }

  // ---- values ------------------------------------------------------------------------------

  /**
   * Row-major coordinates of the linear index `index` over `shape`: from the innermost axis out,
   * each coordinate a named remainder and the rest a named quotient (divisions by literals),
   * emitted once in the current scope; axes of extent 1 are 0, and the outermost axis of extent
   * above 1 is the last quotient itself.
   */
  decode(index: string, shape: readonly number[]): C {
    const zero = this.index(0);
    const axes = shape.map(() => zero);
    // An empty shape has no element to decode: code over it never runs, and its divisions by the
    // extent 0 would not compile (WGSL rejects a literal divisor of 0).
    if (shape.includes(0)) return { axes, linear: index, shape } as KernelCoords as C;
    let rem = this.isSimple(index) ? index : `(${index})`;
    for (let d = shape.length - 1; d >= 0; d--) {
      const n = shape[d]!;
      if (n === 1) continue;
      if (shape.slice(0, d).every((x) => x === 1)) {
        axes[d] = rem;
        break;
      }
      const c = this.fresh('c');
      this.emit(this.declare(c, `${rem} % ${this.index(n)}`));
      axes[d] = c;
      const q = this.fresh('q');
      this.emit(this.declare(q, this.quotient(rem, n)));
      rem = q;
    }
    return { axes, linear: index, shape } as KernelCoords as C;
  }

  /** The element index of `coords` in a stored value of `shape` at `loc` (its offset and strides). */
  address(loc: KernelLocation, coords: C, shape: readonly number[]): string {
    const rowMajor = stridesOf(shape);
    const zero = this.index(0);
    const terms: string[] = [];
    if (coords.linear !== undefined && coords.shape && shapesEqual(coords.shape, shape) && loc.strides.every((s, i) => s === rowMajor[i] || shape[i] === 1)) {
      terms.push(coords.linear);
    } else {
      coords.axes.forEach((c, i) => {
        const s = loc.strides[i]!;
        if (s === 0 || c === zero || shape[i] === 1) return;
        terms.push(s === 1 ? c : `${c} * ${this.index(s)}`);
      });
    }
    if (loc.offset !== 0) terms.unshift(this.index(loc.offset));
    return terms.length ? terms.join(' + ') : zero;
  }

  /**
   * The value of `v` at `coords`, as an expression (a constant's name or a literal). With
   * `fromDefinition`, a stored value is computed from its equation instead of loaded (how the
   * kernel that stores it computes it).
   */
  value(v: ProgramVar, coords: C, fromDefinition = false): string {
    const key = elementKey(v, coords);
    const scopeKnown = this.known[this.known.length - 1]!.get(key);
    if (scopeKnown !== undefined) return scopeKnown;
    const memo = this.memo;
    const hit = fromDefinition ? undefined : memo.get(key);
    if (hit !== undefined) return hit;
    const expr = this.compute(v, coords, fromDefinition);
    if (this.isSimple(expr)) {
      memo.set(key, expr);
      return expr;
    }
    const name = this.fresh();
    this.emit(this.declare(name, expr));
    memo.set(key, name);
    return name;
  }

  /**
   * Computes stored value `root` at `at` (one coordinates, or several that the target may store
   * together, e.g. vector lanes) from its definition, not from its own location; stores it, and
   * makes it known in the current scope, so later roots that read it use the value computed.
   */
  writeRoot(root: ProgramVar, ...at: C[]): void {
    const values = at.map((c) => this.value(root, c, true));
    this.storeAll(root, at, values);
    at.forEach((c, k) => this.define(root, c, values[k]!));
    this.covered.add(this.ctx.equationIndex.get(root.id)!);
  }

  private compute(v: ProgramVar, coords: C, fromDefinition: boolean): string {
    const loc = fromDefinition ? null : this.ctx.locate(v);
    if (loc) return this.load(v, loc, coords);
    const eq = this.ctx.definitions.get(v.id);
    if (!eq) throw new Error(`internal: ${this.kernelKind} reads a value with no definition and no location`);
    const index = this.ctx.equationIndex.get(v.id);
    if (index !== undefined) this.covered.add(index);
    const at: ReadAt<C> = (x, c = coords) => this.value(x, c);
    const plain = (axes: readonly string[]) => ({ axes }) as KernelCoords as C;
    const p = eq.prim;
    if (isUnary(p) || isBinary(p) || isCompare(p) || p === 'where') {
      const args = eq.inputs.map((x) => at(x));
      return this.elementwise(p as ElementwiseOp, eq.inputs[p === 'where' ? 1 : 0]!.dtype, args);
    }
    switch (p) {
      case 'custom':
        // Only elementwise definitions are computed inline (fusion.ts); a shader's result is stored.
        return this.customCall((eq.params as PrimitiveParams['custom']).name, eq.inputs.map((x) => at(x)), v.dtype);
      case 'cast':
        return this.cast(eq.inputs[0]!.dtype, v.dtype, at(eq.inputs[0]!));
      case 'full':
        return this.literal((eq.params as PrimitiveParams['full']).value, v.dtype);
      case 'stopGradient':
        return at(eq.inputs[0]!);
      case 'matmul': {
        const m = this.matmul(v, eq, coords, at);
        if (m !== null) return m;
        break;
      }
      case 'reshape':
        return at(eq.inputs[0]!, this.reshapeInput(v, eq.inputs[0]!, coords));
      case 'expand': {
        const x = eq.inputs[0]!;
        const zero = this.index(0);
        const move = (c: C) => plain(c.axes.map((a, i) => (x.shape[i] === 1 ? zero : a)));
        // Broadcast along an axis: every element along it reads the same one.
        return at(x, this.moveCoords(coords, move, { axis: (i) => (x.shape[i] === 1 ? null : i) }));
      }
      case 'permute': {
        const { perm } = eq.params as PrimitiveParams['permute'];
        const move = (c: C) => {
          const axes = new Array<string>(perm.length);
          perm.forEach((src, i) => (axes[src] = c.axes[i]!));
          return plain(axes);
        };
        return at(eq.inputs[0]!, this.moveCoords(coords, move, { axis: (i) => perm[i]! }));
      }
      case 'slice': {
        const { starts } = eq.params as PrimitiveParams['slice'];
        const move = (c: C) => plain(c.axes.map((a, i) => this.shifted(a, starts[i] ?? 0)));
        return at(eq.inputs[0]!, this.moveCoords(coords, move, { axis: (i) => i, shift: (i) => starts[i] ?? 0 }));
      }
      case 'pad': {
        const { before } = eq.params as PrimitiveParams['pad'];
        const x = eq.inputs[0]!;
        const inner = coords.axes.map((c, i) => this.shifted(c, -(before[i] ?? 0)));
        // A dialect's inRange may say 'true' or 'false' where the coordinate's range decides it.
        const inside = inner.flatMap((c, i) => (x.shape[i] === v.shape[i] ? [] : [this.inRange(c, x.shape[i]!)])).filter((cond) => cond !== 'true');
        if (inside.length === 0) return at(x, plain(inner));
        // 'false' (never inside) still writes the read, in a branch never taken that the engine
        // drops, so that the equations under it are counted as this kernel's like any other.
        return this.guarded(v.dtype, this.zero(v.dtype), inside.includes('false') ? 'false' : inside.join(' && '), () => at(x, plain(inner)));
      }
      case 'concat': {
        const { axis } = eq.params as PrimitiveParams['concat'];
        // A coordinate that is a literal (a CPU loop unrolled over it) picks its piece here.
        const fixed = /^\d+$/.test(coords.axes[axis]!) ? Number(coords.axes[axis]) : null;
        if (fixed !== null) {
          let start = 0;
          for (const x of eq.inputs) {
            const end = start + x.shape[axis]!;
            if (fixed < end) return at(x, plain(coords.axes.map((c, i) => (i === axis ? String(fixed - start) : c))));
            start = end;
          }
        }
        const result = this.fresh('cat');
        this.emit(this.declareVariable(result, v.dtype));
        const c = coords.axes[axis]!;
        const starts: number[] = [];
        let start = 0;
        const bodies = eq.inputs.map((x, k) => {
          const from = start;
          starts.push(from);
          start += x.shape[axis]!;
          const local = this.shifted(c, -from);
          const lines = this.scope(() => {
            const val = at(x, plain(coords.axes.map((a, i) => (i === axis ? local : a))));
            this.emit(`${result} = ${val};`);
          });
          if (k === 0) this.branchOn(c);
          return lines;
        });
        // The pieces are picked by a balanced tree of comparisons, nested ⌈log₂ pieces⌉ deep, not by
        // an if/else-if chain, which nests one level per piece: with 80 pieces or more (a 9×9
        // kernel's taps) WebGPU on Dawn's OpenGL backend and llvmpipe miscompiled the chain (its
        // last piece read as 0 under jit). WGSL wants a block after `if (…)` (`else if` is
        // allowed), so an inner `if` there is braced.
        const pick = (lo: number, hi: number): string => {
          if (hi - lo === 1) return this.block(bodies[lo]!);
          const mid = (lo + hi) >> 1;
          const below = mid - lo === 1 ? pick(lo, mid) : this.block([pick(lo, mid)]);
          return `if (${c} < ${this.index(starts[mid]!)}) ${below} else ${pick(mid, hi)}`;
        };
        this.emit(pick(0, bodies.length));
        return result;
      }
      case 'gather': {
        const { axis } = eq.params as PrimitiveParams['gather'];
        const [x, idx] = eq.inputs as [ProgramVar, ProgramVar];
        const index = at(idx, plain([coords.axes[axis]!]));
        return this.gather(v, index, axis, x.shape[axis]!, (row) => at(x, plain(coords.axes.map((c, i) => (i === axis ? row : c)))));
      }
    }
    throw new Error(`internal: '${p}' cannot be computed inline in a ${this.kernelKind}`);
  }

  /**
   * A variable holding `value()` when `cond` holds, else `outside` (of `dtype`), with `value`
   * evaluated in a branch; `otherwise`: a statement run when `cond` does not hold.
   */
  protected guarded(dtype: DType, outside: string, cond: string, value: () => string, otherwise = ''): string {
    const result = this.fresh('g');
    this.emit(this.declareVariable(result, dtype, outside));
    const lines = this.scope(() => this.emit(`${result} = ${value()};`));
    this.emit(`if (${cond}) ${this.block(lines)}${otherwise ? ` else { ${otherwise} }` : ''}`);
    return result;
  }

  /** Coordinates in `inShape` of the element at `coords` of its reshape to `outShape`. */
  reshapeCoords(coords: C, outShape: readonly number[], inShape: readonly number[]): C {
    if (shapesEqual(outShape, inShape)) return coords;
    // A reshape of an empty value names no element, and the axis pairing below needs nonzero
    // extents (a 0 against a nonzero extent never balances).
    if (inShape.includes(0)) return { axes: inShape.map(() => this.index(0)) } as KernelCoords as C;
    const linear = coords.linear !== undefined && coords.shape && shapesEqual(coords.shape, outShape) ? coords.linear : undefined;
    const fine = linear !== undefined ? coords.fine : undefined;
    if (linear !== undefined) this.reshapeOfElement(inShape);
    if (fine) {
      const grouped = this.groupFine(fine, inShape);
      if (grouped) return { axes: grouped, linear, shape: inShape, fine } as KernelCoords as C;
    }
    // Groups of axes with equal products (reshapeGroups); size-1 axes read coordinate 0.
    const outAxes = outShape.filter((d) => d !== 1).length;
    const inAxes = inShape.filter((d) => d !== 1).length;
    const result = inShape.map(() => this.index(0));
    for (const [og, ig] of reshapeGroups(outShape, inShape)) {
      if (og.length === 1 && ig.length === 1) {
        result[ig[0]!] = coords.axes[og[0]!]!;
        continue;
      }
      // Linearise the group's output coordinates, then decode them over the input axes.
      let lin: string;
      // (A compound linear index, such as a reduction's `out * extent + r`, in parentheses: it is
      // divided, reduced modulo and scaled below.)
      if (og.length === outAxes && ig.length === inAxes && linear !== undefined) lin = this.isSimple(linear) ? linear : `(${linear})`;
      else {
        const terms: string[] = [];
        let stride = 1;
        for (let k = og.length - 1; k >= 0; k--) {
          const c = coords.axes[og[k]!]!;
          terms.unshift(stride === 1 ? c : `${c} * ${this.index(stride)}`);
          stride *= outShape[og[k]!]!;
        }
        lin = this.fresh('l');
        const line = this.declare(lin, terms.join(' + '));
        this.optionalLines.set(line, lin);
        this.emit(line);
      }
      let inner = 1;
      for (let k = ig.length - 1; k >= 0; k--) {
        const d = inShape[ig[k]!]!;
        const div = inner === 1 ? lin : this.quotient(lin, inner);
        result[ig[k]!] = k === 0 ? div : `(${div} % ${this.index(d)})`;
        inner *= d;
      }
    }
    return (linear !== undefined && inAxes > 0 ? { axes: result, linear, shape: inShape, ...(fine ? { fine } : {}) } : { axes: result }) as KernelCoords as C;
  }

  /**
   * Called with the input shape of every reshape of a kernel's own element (coordinates that
   * carry its linear index): a CPU kernel looks for a loop shape that refines them all.
   */
  protected reshapeOfElement(_inShape: readonly number[]): void {}

  /** Called with the coordinate a concat's pieces branch on: a CPU kernel may unroll its loop. */
  protected branchOn(_coordinate: string): void {}

  /**
   * Coordinates over `shape` from finer ones, when `shape` (size-1 axes aside) groups consecutive
   * axes of `fine.shape`: each axis the row-major combination of its group's coordinates. Null
   * when it does not.
   */
  groupFine(fine: FineCoords, shape: readonly number[]): string[] | null {
    const zero = this.index(0);
    const axes = shape.map(() => zero);
    const parts = fine.shape.map((d, i) => ({ d, c: fine.axes[i]! })).filter((a) => a.d !== 1);
    let j = 0;
    for (let i = 0; i < shape.length; i++) {
      const extent = shape[i]!;
      if (extent === 1) continue;
      const group: { d: number; c: string }[] = [];
      let product = 1;
      while (product < extent && j < parts.length) {
        group.push(parts[j]!);
        product *= parts[j++]!.d;
      }
      if (product !== extent) return null;
      let stride = 1;
      const terms: string[] = [];
      for (let k = group.length - 1; k >= 0; k--) {
        terms.unshift(stride === 1 ? group[k]!.c : `${group[k]!.c} * ${this.index(stride)}`);
        stride *= group[k]!.d;
      }
      axes[i] = terms.length === 1 ? terms[0]! : `(${terms.join(' + ')})`;
    }
    return j === parts.length ? axes : null;
  }
}

/**
 * Which element of `v` coordinates name, as a memo key: by the row-major linear index when the
 * coordinates carry it for v's shape (so a value reached through reshapes that return to its
 * shape is recognised as the same element), else by the coordinate expressions.
 */
function elementKey(v: ProgramVar, coords: KernelCoords): string {
  // A value of one element has one element, whatever coordinates name it (a reduction's result
  // reached through reshapes to all-ones shapes loses its linear index, not its identity).
  if (v.shape.every((d) => d === 1)) return `${v.id}#0`;
  if (coords.linear !== undefined && coords.shape && shapesEqual(coords.shape, v.shape)) return `${v.id}#${coords.linear}`;
  return `${v.id}@${coords.axes.join(',')}`;
}
