// Writing the JavaScript of one fused CPU kernel: the JavaScript dialect of KernelWriterBase
// (../kernelWriter.ts, which evaluates program values at coordinates and is shared with
// @scorch/kernels' WGSL KernelWriter), plus what only the CPU has: the kernel's arrays, its
// loops and its function. Every computed value is a `const` rounded to its dtype (Math.fround
// for float32, so a chain rounds as eager ops do).
//
// Loops: `forEach(shape, body)` runs `body` with coordinates that are loop variables; when the
// body ends up using none of them (every read is at the element's own row-major index) the loop
// is one flat loop over the linear index.

import type { DType } from '../dtype.js';
import type { ElementwiseOp } from '../expression.js';
import { type KernelCoords, type KernelLocation, type KernelWriterContext, type ReadAt, KernelWriterBase } from '../kernelWriter.js';
import type { Equation, ProgramVar } from '../program.js';
import { sizeOf } from '../shape.js';
import { jsCast, jsElementwise, jsLiteral, rounded } from './jsCode.js';

/** A stored value: the index of its array among the kernel's arrays, and its element layout. */
export interface JsLocation extends KernelLocation {
  readonly slot: number;
}

/** Coordinates of a value: one integer expression per axis; `linear` when they decode a row-major index over `shape`. */
export type JsCoords = KernelCoords;

/** What a CPU kernel writer knows of the program: definitions, locations, equation indices. */
export type JsWriterContext = KernelWriterContext<JsLocation> & {
  /** float32 exp, log1p, log and sigmoid by their fast forms (setCpuFastMath(true) when the program was lowered). Default false. */
  readonly fastMath?: boolean;
};

const IDENTIFIER = /^[A-Za-z_$][\w$]*$|^\(?-?[\d.e+-]+\)?$|^NaN$|^\(?-?Infinity\)?$/;

/** The most values of a loop counter that forRange unrolls (a 3 × 3 kernel's nine windows). */
export const UNROLL_MAX = 16;

/**
 * The coarsest shape (size-1 axes dropped) that refines `shape` and every shape in `others` of its
 * size, the others that no common refinement admits left out; null when that is `shape` itself.
 * A shape's axes cut the row-major order at its suffix products; a refinement has every cut of
 * both, which works only when the cuts, sorted, each divide the next.
 */
export function refinement(shape: readonly number[], others: readonly (readonly number[])[]): number[] | null {
  const n = sizeOf(shape);
  const cutsOf = (s: readonly number[]) => {
    const cuts = new Set<number>();
    let p = 1;
    for (let k = s.length - 1; k >= 0; k--) {
      p *= s[k]!;
      if (p > 1) cuts.add(p);
    }
    return cuts;
  };
  const chain = (cuts: Set<number>) => {
    const sorted = [...cuts].sort((a, b) => a - b);
    return sorted.every((c, i) => i === 0 || c % sorted[i - 1]! === 0) ? sorted : null;
  };
  const base = cutsOf(shape);
  let cuts = base;
  for (const o of others) {
    if (sizeOf(o) !== n) continue;
    const merged = new Set([...cuts, ...cutsOf(o)]);
    if (chain(merged)) cuts = merged;
  }
  if (cuts.size === base.size) return null;
  const sorted = chain(cuts)!;
  return sorted.map((c, i) => (i === 0 ? c : c / sorted[i - 1]!)).reverse();
}

/**
 * A coordinate as a loop counter plus a constant (`name`, `(name + k)`, `(name - k)`), or a
 * constant alone (`k`, `(-k)`: an unrolled counter), as JsWriter.shifted writes them; else null.
 */
function counterPlus(c: string): { name: string | null; k: number } | null {
  if (/^\d+$/.test(c)) return { name: null, k: Number(c) };
  let m = /^\(-(\d+)\)$/.exec(c);
  if (m) return { name: null, k: -Number(m[1]) };
  if (/^[A-Za-z_$][\w$]*$/.test(c)) return { name: c, k: 0 };
  m = /^\(([A-Za-z_$][\w$]*) ([+-]) (\d+)\)$/.exec(c);
  if (m) return { name: m[1]!, k: m[2] === '+' ? Number(m[3]) : -Number(m[3]) };
  return null;
}

/** The interior [from, to) of the innermost loop and the body emitted for it (JsWriter.emitPeeled). */
interface Peel {
  readonly from: number;
  readonly to: number;
  readonly lines: readonly string[];
}

export class JsWriter extends KernelWriterBase<JsLocation, JsCoords> {
  protected readonly kernelKind = 'compiled CPU kernel';
  private readonly slots: number[] = [];
  /** The loop counters this writer opened, and the range [start, end) each runs over (a part of it when peeled). */
  private readonly counters = new Map<string, readonly [number, number]>();
  /**
   * While a body is emitted: per loop counter, the range inside which every range test emitted on
   * it holds (inRange), so that the loop can run that interior without them (peeled).
   */
  private interiors: Map<string, [number, number]> | null = null;
  /** Defined elementwise primitives the kernel calls, by name (bound once per call). */
  private readonly customs = new Set<string>();

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

  /**
   * The kernel as a function of its arrays, `(B) => void`, around `lines`; with `range`, a range
   * function `(B, start, end) => void` (rangeThreads.ts) whose bounds `lines` read by those names.
   */
  functionSource(name: string, lines: readonly string[], range?: readonly [start: string, end: string]): string {
    const bind = [
      ...this.slots.map((_, i) => `const b${i} = B[${i}];`),
      ...[...this.customs].map((n) => `const cp_${n} = customFunction('${n}');`),
    ].join(' ');
    const params = ['B', ...(range ?? [])].join(', ');
    return `function ${name.replace(/\W/g, '_')}(${params}) {\n  ${bind}\n  ${lines.join('\n  ')}\n}`;
  }

  /**
   * Whether the kernel calls a defined primitive's CPU function, which only this thread has
   * (jsCode.ts: a worker's customFunction throws): such a kernel does not run on workers.
   */
  get callsCustomFunction(): boolean {
    return this.customs.size > 0;
  }

  /**
   * Loops over every element of `shape` in row-major order, with `body` emitting the statements
   * for the element at the given coordinates (with the row-major index). A flat loop when the
   * body uses no coordinate, else one loop per axis of extent above 1.
   */
  forEach(shape: readonly number[], body: (coords: JsCoords) => void): string[] {
    return this.loops(shape, body, false).lines;
  }

  /**
   * forEach over the units [start, end) of `shape` only (`start` and `end` are variables of the
   * generated function), so that threads can split it: a unit is an element when the loop is
   * flat, else a row of the outermost loop axis of extent above 1. Returns the loops and the units.
   *
   * `body` may run more than once (it must only emit). When the body reshapes its element to
   * shapes that split the loop's axes (a concat's pieces stacked and merged, as a convolution's
   * columns are), the loops run over the coarsest shape refining them all, so those reshapes read
   * loop counters instead of dividing the linear index; and a loop counter that a concat's pieces
   * branch on, of at most UNROLL_MAX values and not the outermost or innermost loop, is unrolled,
   * each copy of the body with the counter a literal (whose branches the engine folds away).
   */
  forRange(shape: readonly number[], body: (coords: JsCoords) => void): { lines: string[]; units: number } {
    const n = sizeOf(shape);
    if (n === 0) return { lines: [], units: 0 };
    const seen: (readonly number[])[] = [];
    this.seenReshapes = seen;
    const plain = this.loops(shape, body, true);
    this.seenReshapes = null;
    const fine = refinement(shape, seen);
    if (!fine) return plain;
    const prefix = this.fresh('c');
    const axes = fine.map((d, i) => (d === 1 ? '0' : `${prefix}_${i}`));
    axes.forEach((a, i) => a !== '0' && this.counters.set(a, [0, fine[i]!]));
    const linear = this.fresh('i');
    const coordsOf = (fineAxes: readonly string[]): JsCoords => ({ axes: this.groupFine({ shape: fine, axes: fineAxes }, shape)!, linear, shape, fine: { shape: fine, axes: fineAxes } });
    const branches = new Set<string>();
    this.branches = branches;
    const { lines, peel } = this.emitPeeled(fine, axes, () => this.scope(() => body(coordsOf(axes))));
    this.branches = null;
    const loopAxes = fine.map((d, i) => i).filter((i) => fine[i] !== 1);
    const unroll = loopAxes.slice(1, -1).find((i) => fine[i]! <= UNROLL_MAX && branches.has(axes[i]!));
    if (unroll === undefined) return this.nest(fine, axes, linear, [{ lines, peel }], n);
    const copies = Array.from({ length: fine[unroll]! }, (_, v) => {
      const fixed = axes.map((a, i) => (i === unroll ? String(v) : a));
      return { lines: this.scope(() => body(coordsOf(fixed))), at: unroll };
    });
    return this.nest(fine, axes, linear, copies, n);
  }

  /** Input shapes of the reshapes of the element being written (forRange's first pass). */
  private seenReshapes: (readonly number[])[] | null = null;
  /** Coordinates concats branched on (forRange's refined pass). */
  private branches: Set<string> | null = null;

  protected override reshapeOfElement(inShape: readonly number[]): void {
    this.seenReshapes?.push(inShape);
  }

  protected override branchOn(coordinate: string): void {
    this.branches?.add(coordinate);
  }

  /**
   * `emit` (a body for loops over `shape`, counters `axes`) run while recording the range tests
   * inRange writes on the innermost loop's counter; where they leave an interior short of the whole
   * range, `emit` runs again with that counter's range narrowed to it, where inRange finds the
   * tests decided and drops them (`peel`: nest runs the edges with the first body, the interior
   * with the second). A padded read's tests then cost only a row's first and last elements.
   */
  private emitPeeled(shape: readonly number[], axes: readonly string[], emit: () => string[]): { lines: string[]; peel?: Peel } {
    const loopAxes = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
    if (loopAxes.length < 2) return { lines: emit() };
    const last = loopAxes[loopAxes.length - 1]!;
    const counter = axes[last]!;
    const n = shape[last]!;
    const interior: [number, number] = [0, n];
    const saved = this.interiors;
    this.interiors = new Map([[counter, interior]]);
    let lines: string[];
    try {
      lines = emit();
    } finally {
      this.interiors = saved;
    }
    const [from, to] = [Math.max(0, interior[0]), Math.min(n, interior[1])];
    if (from >= to || (from === 0 && to === n)) return { lines };
    this.counters.set(counter, [from, to]);
    try {
      return { lines, peel: { from, to, lines: emit() } };
    } finally {
      this.counters.set(counter, [0, n]);
    }
  }

  /**
   * The loops over the axes of `shape` of extent above 1 (counters `axes`, the linear index
   * advancing in the innermost; `ranged`: the outermost over [start, end)): one body, or (`at`)
   * one copy per value of that axis, each in its own loops over the axes after it.
   */
  private nest(shape: readonly number[], axes: readonly string[], linear: string, bodies: readonly { lines: readonly string[]; at?: number; peel?: Peel }[], n: number, ranged = true): { lines: string[]; units: number } {
    const loopAxes = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
    const units = shape[loopAxes[0]!]!;
    const at = bodies[0]!.at;
    const outer = at === undefined ? loopAxes : loopAxes.filter((i) => i < at);
    const inner = at === undefined ? [] : loopAxes.filter((i) => i > at);
    const open = (list: readonly number[], depth: number, first: boolean, last: boolean) =>
      list.map((i, k) => {
        const [from, to] = first && k === 0 ? ['start', 'end'] : ['0', String(shape[i])];
        const step = last && k === list.length - 1 ? `, ${linear}++` : '';
        return `${'  '.repeat(depth + k)}for (let ${axes[i]} = ${from}; ${axes[i]} < ${to}; ${axes[i]}++${step}) {`;
      });
    const close = (count: number, depth: number) => Array.from({ length: count }, (_, k) => `${'  '.repeat(depth + count - 1 - k)}}`);
    const out = [`let ${linear} = ${ranged ? `start * ${n / units}` : '0'};`];
    const peel = at === undefined ? bodies[0]!.peel : undefined;
    if (peel) {
      // The innermost loop in up to three parts: its edges with the body's range tests, its interior without.
      const last = outer[outer.length - 1]!;
      out.push(...open(outer.slice(0, -1), 0, ranged, false));
      const depth = outer.length - 1;
      const c = axes[last]!;
      const parts: [number, number, readonly string[]][] = [[0, peel.from, bodies[0]!.lines], [peel.from, peel.to, peel.lines], [peel.to, shape[last]!, bodies[0]!.lines]];
      for (const [from, to, lines] of parts) {
        if (from >= to) continue;
        out.push(`${'  '.repeat(depth)}for (let ${c} = ${from}; ${c} < ${to}; ${c}++, ${linear}++) {`);
        out.push(...lines.map((l) => `${'  '.repeat(depth + 1)}${l}`));
        out.push(`${'  '.repeat(depth)}}`);
      }
      out.push(...close(depth, 0));
      return { lines: out, units };
    }
    out.push(...open(outer, 0, ranged, at === undefined));
    const depth = outer.length;
    if (at === undefined) {
      out.push(...bodies[0]!.lines.map((l) => `${'  '.repeat(depth)}${l}`));
    } else {
      for (const b of bodies) {
        out.push(`${'  '.repeat(depth)}{`);
        out.push(...open(inner, depth + 1, false, true));
        out.push(...b.lines.map((l) => `${'  '.repeat(depth + 1 + inner.length)}${l}`));
        out.push(...close(inner.length, depth + 1));
        out.push(`${'  '.repeat(depth)}}`);
      }
    }
    out.push(...close(outer.length, 0));
    return { lines: out, units };
  }

  private loops(shape: readonly number[], body: (coords: JsCoords) => void, ranged: boolean): { lines: string[]; units: number } {
    const linear = this.fresh('i');
    const n = sizeOf(shape);
    if (n === 0) return { lines: [], units: 0 };
    const prefix = this.fresh('c');
    const axes = shape.map((d, i) => (d === 1 ? '0' : `${prefix}_${i}`));
    axes.forEach((a, i) => a !== '0' && this.counters.set(a, [0, shape[i]!]));
    const { lines, peel } = this.emitPeeled(shape, axes, () => this.scope(() => body({ axes, linear, shape })));
    const text = lines.join('\n');
    const used = axes.filter((a) => a !== '0' && new RegExp(`\\b${a}\\b`).test(text));
    if (used.length === 0) {
      const [from, to] = ranged ? ['start', 'end'] : ['0', String(n)];
      return { units: n, lines: [`for (let ${linear} = ${from}; ${linear} < ${to}; ${linear}++) {`, ...lines.map((l) => `  ${l}`), '}'] };
    }
    return this.nest(shape, axes, linear, [{ lines, peel }], n, ranged);
  }

  /** Stores `value` as `v`'s element at `coords`. */
  store(v: ProgramVar, coords: JsCoords, value: string): void {
    const loc = this.ctx.locate(v);
    if (!loc) throw new Error('internal: compiled CPU kernel stores a value with no location');
    this.emit(`${this.array(loc.slot)}[${this.address(loc, coords, v.shape)}] = ${value};`);
  }

  // ---- the JavaScript dialect --------------------------------------------------------------

  protected index(n: number): string {
    return String(n);
  }

  protected declare(name: string, expr: string): string {
    return `const ${name} = ${expr};`;
  }

  protected declareVariable(name: string, _dtype: DType, init = '0'): string {
    return `let ${name} = ${init};`;
  }

  protected isSimple(expr: string): boolean {
    return IDENTIFIER.test(expr);
  }

  protected quotient(expr: string, n: number): string {
    return `Math.floor(${expr} / ${n})`;
  }

  /** `(c ± k)` with k folded into the constant `c` already carries (a pad of a slice: `(c - 1)`, not `((c + 1) - 2)`). */
  protected override shifted(c: string, delta: number): string {
    const a = counterPlus(c);
    if (!a) return super.shifted(c, delta);
    const k = a.k + delta;
    if (a.name === null) return k < 0 ? `(${k})` : String(k);
    return k === 0 ? a.name : k > 0 ? `(${a.name} + ${k})` : `(${a.name} - ${-k})`;
  }

  /**
   * The test that 0 ≤ c < extent, without the halves a loop counter's range already decides
   * ('true' when both are, 'false' when it never holds): the generated loops then carry no test
   * that cannot fail (a padded convolution's every tap tested both ends of both axes).
   */
  protected inRange(c: string, extent: number): string {
    const a = counterPlus(c);
    const range = a ? (a.name === null ? ([0, 1] as const) : this.counters.get(a.name)) : undefined;
    if (!a || range === undefined) return `${c} >= 0 && ${c} < ${extent}`;
    const lo = a.k + range[0], hi = a.k + range[1] - 1;
    if (hi < 0 || lo >= extent) return 'false';
    const tests = [...(lo < 0 ? [`${c} >= 0`] : []), ...(hi >= extent ? [`${c} < ${extent}`] : [])];
    // The counter's values for which both tests hold: 0 ≤ counter + k < extent.
    const interior = a.name === null ? undefined : this.interiors?.get(a.name);
    if (interior && tests.length > 0) {
      interior[0] = Math.max(interior[0], -a.k);
      interior[1] = Math.min(interior[1], extent - a.k);
    }
    return tests.join(' && ') || 'true';
  }

  protected block(lines: readonly string[]): string {
    return `{\n  ${lines.join('\n  ')}\n}`;
  }

  protected zero(dtype: DType): string {
    return jsLiteral(0, dtype);
  }

  protected literal(value: number, dtype: DType): string {
    return jsLiteral(value, dtype);
  }

  // ---- the JavaScript leaves ---------------------------------------------------------------

  protected load(v: ProgramVar, loc: JsLocation, coords: JsCoords): string {
    return `${this.array(loc.slot)}[${this.address(loc, coords, v.shape)}]`;
  }

  protected elementwise(op: ElementwiseOp, dtype: DType, args: readonly string[]): string {
    return jsElementwise(op, dtype, args, true, (this.ctx as JsWriterContext).fastMath === true);
  }

  protected cast(from: DType, to: DType, x: string): string {
    return jsCast(from, to, x);
  }

  /** Its CPU function in doubles, rounded to the dtype as the eager kernel's store rounds it. */
  protected customCall(name: string, args: readonly string[], dtype: DType): string {
    this.customs.add(name);
    return rounded(`cp_${name}(${args.join(', ')})`, dtype);
  }

  /** An index out of range throws the eager gather's error. */
  protected gather(_v: ProgramVar, row: string, axis: number, extent: number, read: (row: string) => string): string {
    this.emit(`if (!(${row} >= 0 && ${row} < ${extent})) throw indexOutOfRange('gather', ${row}, ${axis}, ${extent});`);
    return read(row);
  }

  /**
   * The CPU plans no inline contractions (inlineContractionMax 0) but the empty one: a sum of no
   * products is 0, as the eager routine writes for k = 0.
   */
  protected matmul(v: ProgramVar, eq: Equation, _coords: JsCoords, _at: ReadAt<JsCoords>): string | null {
    const a = eq.inputs[0]!;
    return a.shape[a.shape.length - 1] === 0 ? jsLiteral(0, v.dtype) : null;
  }
}
