// Writing the JavaScript of one fused CPU kernel: the CPU twin of @scorch/kernels' WGSL
// KernelWriter. A JsWriter evaluates program values at coordinates: a stored value is a load
// from its array; any other is computed from its defining equation, whose inputs are evaluated
// at coordinates mapped through the movement ops on the way (index arithmetic, no copies).
// Every computed value is a `const` rounded to its dtype (so a chain rounds as eager ops do), and
// a value asked for twice at the same coordinates in one scope is computed once. Shapes, strides
// and constants are literals: a compiled program runs many times.
//
// Loops: `forEach(shape, body)` runs `body` with coordinates that are loop variables; when the
// body ends up using none of them (every read is at the element's own row-major index) the loop
// is one flat loop over the linear index.

import type { DType } from '../dtype.js';
import type { ElementwiseOp } from '../expression.js';
import type { Equation, ProgramVar } from '../program.js';
import { type PrimitiveParams, isBinary, isCompare, isUnary } from '../primitives.js';
import { sizeOf, stridesOf } from '../shape.js';
import { jsCast, jsElementwise, jsLiteral, rounded } from './jsCode.js';

/** A stored value: the index of its array among the kernel's arrays, and its element layout. */
export interface JsLocation {
  readonly slot: number;
  readonly offset: number;
  readonly strides: readonly number[];
}

/** Coordinates of a value: one integer expression per axis; `linear` when they decode a row-major index over `shape`. */
export interface JsCoords {
  readonly axes: readonly string[];
  readonly linear?: string;
  readonly shape?: readonly number[];
}

export interface JsWriterContext {
  /** The defining equation of every value computed by the program. */
  readonly definitions: ReadonlyMap<number, Equation>;
  /** The location of a stored value (a program input or a materialised value), or null to compute it. */
  locate(v: ProgramVar): JsLocation | null;
  /** Indices into `program.equations` by output id (for the equations a kernel covers). */
  readonly equationIndex: ReadonlyMap<number, number>;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$|^\(?-?[\d.e+-]+\)?$|^NaN$|^\(?-?Infinity\)?$/;

export class JsWriter {
  private readonly slots: number[] = [];
  private readonly blocks: string[][] = [[]];
  private readonly memo: Map<string, string>[] = [new Map()];
  private readonly known: Map<string, string>[] = [new Map()];
  private counter = 0;
  /** Equation indices computed inline (for `kernels()`). */
  readonly covered = new Set<number>();
  /** Defined elementwise primitives the kernel calls, by name (bound once per call). */
  private readonly customs = new Set<string>();

  constructor(private readonly ctx: JsWriterContext) {}

  /** The local name of the array in `slot` (bound as the kernel's array argument). */
  array(slot: number): string {
    let i = this.slots.indexOf(slot);
    if (i < 0) i = this.slots.push(slot) - 1;
    return `b${i}`;
  }

  /** The slots the kernel reads or writes, in the order of its array argument. */
  get bindings(): readonly number[] {
    return this.slots;
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

  /** The top-level statements emitted so far (and clears them). */
  take(): string[] {
    const lines = this.blocks[0]!;
    this.blocks[0] = [];
    return lines;
  }

  /** The kernel as a function of its arrays, `(B) => void`, around `lines`. */
  functionSource(name: string, lines: readonly string[]): string {
    const bind = [
      ...this.slots.map((_, i) => `const b${i} = B[${i}];`),
      ...[...this.customs].map((n) => `const cp_${n} = customFunction('${n}');`),
    ].join(' ');
    return `function ${name.replace(/\W/g, '_')}(B) {\n  ${bind}\n  ${lines.join('\n  ')}\n}`;
  }

  /** Makes `v` at `coords` read as `expr` in the current scope (an accumulator, a value already computed). */
  define(v: ProgramVar, coords: JsCoords, expr: string): void {
    this.known[this.known.length - 1]!.set(elementKey(v, coords), expr);
  }

  /**
   * Loops over every element of `shape` in row-major order, with `body` emitting the statements
   * for the element at the given coordinates; `linear` names the row-major index. A flat loop
   * when the body uses no coordinate, else one loop per axis of extent above 1.
   */
  forEach(shape: readonly number[], body: (coords: JsCoords) => void, linear = this.fresh('i')): string[] {
    const n = sizeOf(shape);
    if (n === 0) return [];
    const prefix = this.fresh('c');
    const axes = shape.map((d, i) => (d === 1 ? '0' : `${prefix}_${i}`));
    const lines = this.scope(() => body({ axes, linear, shape }));
    const text = lines.join('\n');
    const used = axes.filter((a) => a !== '0' && new RegExp(`\\b${a}\\b`).test(text));
    if (used.length === 0) {
      return [`for (let ${linear} = 0; ${linear} < ${n}; ${linear}++) {`, ...lines.map((l) => `  ${l}`), '}'];
    }
    // Loops over the axes of extent above 1; the linear index advances in the innermost.
    const loops = shape.map((d, i) => ({ d, name: axes[i]! })).filter((a) => a.d !== 1);
    const out = [`let ${linear} = 0;`];
    loops.forEach((a, k) => {
      const last = k === loops.length - 1;
      out.push(`${'  '.repeat(k)}for (let ${a.name} = 0; ${a.name} < ${a.d}; ${a.name}++${last ? `, ${linear}++` : ''}) {`);
    });
    const indent = '  '.repeat(loops.length);
    out.push(...lines.map((l) => `${indent}${l}`));
    for (let k = loops.length - 1; k >= 0; k--) out.push(`${'  '.repeat(k)}}`);
    return out;
  }

  /** The element index of `coords` in a stored value of `shape` at `loc`. */
  address(loc: JsLocation, coords: JsCoords, shape: readonly number[]): string {
    const rowMajor = stridesOf(shape);
    const terms: string[] = [];
    if (coords.linear !== undefined && coords.shape && sameShape(coords.shape, shape) && loc.strides.every((s, i) => s === rowMajor[i] || shape[i] === 1)) {
      terms.push(coords.linear);
    } else {
      coords.axes.forEach((c, i) => {
        const s = loc.strides[i]!;
        if (s === 0 || c === '0' || shape[i] === 1) return;
        terms.push(s === 1 ? c : `${c} * ${s}`);
      });
    }
    if (loc.offset !== 0) terms.unshift(String(loc.offset));
    return terms.length ? terms.join(' + ') : '0';
  }

  /** Stores `value` as `v`'s element at `coords`. */
  store(v: ProgramVar, coords: JsCoords, value: string): void {
    const loc = this.ctx.locate(v);
    if (!loc) throw new Error('internal: compiled CPU kernel stores a value with no location');
    this.emit(`${this.array(loc.slot)}[${this.address(loc, coords, v.shape)}] = ${value};`);
  }

  /**
   * The value of `v` at `coords` as a JavaScript expression (a `const` name or a literal), rounded
   * to v's dtype. With `fromDefinition`, a stored value is computed from its equation instead of
   * loaded (how the kernel that stores it computes it).
   */
  value(v: ProgramVar, coords: JsCoords, fromDefinition = false): string {
    const key = elementKey(v, coords);
    const scopeKnown = this.known[this.known.length - 1]!.get(key);
    if (scopeKnown !== undefined) return scopeKnown;
    const memo = this.memo[this.memo.length - 1]!;
    const hit = fromDefinition ? undefined : memo.get(key);
    if (hit !== undefined) return hit;
    const expr = this.compute(v, coords, fromDefinition);
    if (IDENTIFIER.test(expr)) {
      memo.set(key, expr);
      return expr;
    }
    const name = this.fresh();
    this.emit(`const ${name} = ${expr};`);
    memo.set(key, name);
    return name;
  }

  private compute(v: ProgramVar, coords: JsCoords, fromDefinition: boolean): string {
    const loc = fromDefinition ? null : this.ctx.locate(v);
    if (loc) return `${this.array(loc.slot)}[${this.address(loc, coords, v.shape)}]`;
    const eq = this.ctx.definitions.get(v.id);
    if (!eq) throw new Error('internal: compiled CPU kernel reads a value with no definition and no location');
    const index = this.ctx.equationIndex.get(v.id);
    if (index !== undefined) this.covered.add(index);
    const at = (x: ProgramVar, c: JsCoords = coords) => this.value(x, c);
    const p = eq.prim;
    if (isUnary(p) || isBinary(p) || isCompare(p) || p === 'where') {
      const args = eq.inputs.map((x) => at(x));
      return jsElementwise(p as ElementwiseOp, eq.inputs[p === 'where' ? 1 : 0]!.dtype, args);
    }
    switch (p) {
      case 'cast':
        return jsCast(eq.inputs[0]!.dtype, v.dtype, at(eq.inputs[0]!));
      case 'full':
        return jsLiteral((eq.params as PrimitiveParams['full']).value, v.dtype);
      case 'stopGradient':
        return at(eq.inputs[0]!);
      case 'matmul': {
        // The CPU plans no inline contractions (inlineContractionMax 0) but the empty one: a sum
        // of no products is 0, as the eager routine writes for k = 0.
        const a = eq.inputs[0]!;
        if (a.shape[a.shape.length - 1] === 0) return jsLiteral(0, v.dtype);
        break;
      }
      case 'custom': {
        // A defined elementwise primitive (the planner inlines no other kind): its CPU function
        // in doubles, rounded to the dtype as the eager kernel's store rounds it.
        const { name } = eq.params as PrimitiveParams['custom'];
        this.customs.add(name);
        return rounded(`cp_${name}(${eq.inputs.map((x) => at(x)).join(', ')})`, v.dtype);
      }
      case 'reshape':
        return at(eq.inputs[0]!, this.reshapeCoords(coords, v.shape, eq.inputs[0]!.shape));
      case 'expand': {
        const x = eq.inputs[0]!;
        return at(x, { axes: coords.axes.map((c, i) => (x.shape[i] === 1 ? '0' : c)) });
      }
      case 'permute': {
        const { perm } = eq.params as PrimitiveParams['permute'];
        const axes = new Array<string>(perm.length);
        perm.forEach((src, i) => (axes[src] = coords.axes[i]!));
        return at(eq.inputs[0]!, { axes });
      }
      case 'slice': {
        const { starts } = eq.params as PrimitiveParams['slice'];
        return at(eq.inputs[0]!, { axes: coords.axes.map((c, i) => (starts[i] ? `(${c} + ${starts[i]})` : c)) });
      }
      case 'pad': {
        const { before } = eq.params as PrimitiveParams['pad'];
        const x = eq.inputs[0]!;
        const inner = coords.axes.map((c, i) => (before[i] ? `(${c} - ${before[i]})` : c));
        const inside = inner.flatMap((c, i) => (x.shape[i] === v.shape[i] ? [] : [`${c} >= 0 && ${c} < ${x.shape[i]}`]));
        return this.guarded(v.dtype, inside.join(' && ') || 'true', () => at(x, { axes: inner }));
      }
      case 'concat': {
        const { axis } = eq.params as PrimitiveParams['concat'];
        const result = this.fresh('cat');
        this.emit(`let ${result} = 0;`);
        let start = 0;
        const branches: string[] = [];
        eq.inputs.forEach((x, k) => {
          const local = start ? `(${coords.axes[axis]} - ${start})` : coords.axes[axis]!;
          const lines = this.scope(() => {
            const val = at(x, { axes: coords.axes.map((c, i) => (i === axis ? local : c)) });
            this.emit(`${result} = ${val};`);
          });
          const end = start + x.shape[axis]!;
          const cond = k === eq.inputs.length - 1 ? '' : `if (${coords.axes[axis]} < ${end}) `;
          branches.push(`${k > 0 ? 'else ' : ''}${cond}{\n  ${lines.join('\n  ')}\n}`);
          start = end;
        });
        this.emit(branches.join(' '));
        return result;
      }
      case 'gather': {
        const { axis } = eq.params as PrimitiveParams['gather'];
        const [x, idx] = eq.inputs as [ProgramVar, ProgramVar];
        const row = at(idx, { axes: [coords.axes[axis]!] });
        const extent = x.shape[axis]!;
        this.emit(`if (!(${row} >= 0 && ${row} < ${extent})) throw indexOutOfRange('gather', ${row}, ${axis}, ${extent});`);
        return at(x, { axes: coords.axes.map((c, i) => (i === axis ? row : c)) });
      }
    }
    throw new Error(`internal: '${p}' cannot be computed inline in a compiled CPU kernel`);
  }

  /** `cond ? value() : 0` with `value` evaluated in a branch. */
  private guarded(dtype: DType, cond: string, value: () => string): string {
    const result = this.fresh('g');
    this.emit(`let ${result} = ${jsLiteral(0, dtype)};`);
    const lines = this.scope(() => this.emit(`${result} = ${value()};`));
    this.emit(`if (${cond}) {\n  ${lines.join('\n  ')}\n}`);
    return result;
  }

  /** Coordinates in `inShape` of the element at `coords` of its reshape to `outShape`. */
  reshapeCoords(coords: JsCoords, outShape: readonly number[], inShape: readonly number[]): JsCoords {
    if (sameShape(outShape, inShape)) return coords;
    const linear = coords.linear !== undefined && coords.shape && sameShape(coords.shape, outShape) ? coords.linear : undefined;
    // Pair groups of axes with equal products; only size-1 axes are skipped.
    const outAxes = outShape.map((_, i) => i).filter((i) => outShape[i] !== 1);
    const inAxes = inShape.map((_, i) => i).filter((i) => inShape[i] !== 1);
    const result = inShape.map(() => '0');
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
          terms.unshift(stride === 1 ? c : `${c} * ${stride}`);
          stride *= outShape[og[k]!]!;
        }
        lin = this.fresh('l');
        this.emit(`const ${lin} = ${terms.join(' + ')};`);
      }
      let inner = 1;
      for (let k = ig.length - 1; k >= 0; k--) {
        const d = inShape[ig[k]!]!;
        const div = inner === 1 ? lin : `Math.floor(${lin} / ${inner})`;
        result[ig[k]!] = k === 0 ? div : `(${div} % ${d})`;
        inner *= d;
      }
    }
    return linear !== undefined && inAxes.length > 0 ? { axes: result, linear, shape: inShape } : { axes: result };
  }
}

/**
 * Which element of `v` coordinates name, as a memo key: by the row-major linear index when the
 * coordinates carry it for v's shape (a value reached through reshapes that return to its shape
 * is the same element), else by the coordinate expressions.
 */
function elementKey(v: ProgramVar, coords: JsCoords): string {
  if (coords.linear !== undefined && coords.shape && sameShape(coords.shape, v.shape)) return `${v.id}#${coords.linear}`;
  return `${v.id}@${coords.axes.join(',')}`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
