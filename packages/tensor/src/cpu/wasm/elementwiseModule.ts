// Elementwise kernels in WebAssembly SIMD, generated from the expression table (../../expression.ts)
// like the JavaScript ones (../jsCode.ts), for float32 chains: four elements per instruction,
// selects as bit selects (no branch to mispredict), exp/log/log1p/sigmoid/tanh/expm1/sin/cos by a
// fast path that is exact after rounding to float32 (mathF32x4.ts), falling back on f64x2
// transcriptions of the algorithms the JavaScript engine's Math functions use (mathF64x2.ts), or,
// for tanh, expm1, sin and cos, on the engine's Math function itself, imported from the host and
// called per lane; erf by the CPU's own float64 erf, run on each lane in f64x2.
//
// Under setCpuFastMath(true) (a spec's `fastMath`), exp, log1p, log and sigmoid instead take the
// float32 forms of mathF32x4Fast.ts: within FAST_MATH_ULPS of the bits described below, which
// every other operation keeps.
//
// Same bits as the JavaScript kernels. Those compute each op in doubles and round its value to
// float32. Here +, −, ×, ÷ and √ run in f32x4 directly, which gives the same value: for operands
// that are float32 values, rounding the exact result once to float32, or first to double and then
// to float32, agree (double has more than 2·24 + 2 bits, so the second rounding is innocuous). A
// math function runs on the doubles of its float32 operands, with the double result rounded to
// float32 as Math.fround does; comparisons of float32 values are the same in either width; bools
// live in lanes as all-ones or zero masks.
//
// A kernel reads float32 or bool arrays laid out as its output is (`full`), repeating with a
// period that is a multiple of 4 (`row`: a broadcast of trailing axes, like a bias), each value
// repeated over a run of elements (`col`: a broadcast of leading axes, like a row's maximum in a
// softmax, spread by the pass loop into a region the kernel reads as `full`), or one value
// (`scalar`), and writes float32 or bool arrays. Float32 arrays of the CPU's heap (heap.ts: the
// memory the modules import where there is one) are read and written where they lie; other
// operands are copied into the thread's scratch and results out of it, a pass of a few thousand
// elements at a time so that both copies hit the cache: O(n) copies next to work that is O(n)
// too, but several times heavier per element. A bool
// operand's bytes (0 or 1) are copied in by the same TypedArray.set as a float32 operand's, which
// converts them to 0.0 and 1.0 (a vectorised copy), and are read as masks; a bool result is
// narrowed from its mask to bytes 0 or 1 in the kernel and copied out byte for byte.

import { type DType } from '../../dtype.js';
import { type Expr, type MathFunction, containsExpr, expressionDType } from '../../expression.js';
import { type FunctionBody, HIGH_HALF, I32, ModuleBuilder, V128, type ValType } from './assembler.js';
import { noteWasmRefusal, wasmSimdSupported } from './features.js';
import { HEAP_MAXIMUM_PAGES, type HeapRegion, cpuHeap } from './heap.js';
import { FAST_MATH_F32X4 } from './mathF32x4Fast.js';
import { emitErfF32x4, emitExpF32x4, emitLog1pF32x4, emitLogF32x4, emitSigmoidF32x4, emitCosF32x4, emitExpm1F32x4, emitSinF32x4, emitTanhF32x4, f32Splat, importHostMath } from './mathF32x4.js';

/** How a kernel's operand is read at output element i. */
export type WasmLeafPattern =
  /** Element i (an array laid out as the output). */
  | { readonly kind: 'full' }
  /** Element i mod period, period a multiple of 4 (a broadcast over leading axes). */
  | { readonly kind: 'row'; readonly period: number }
  /**
   * Element ⌊i / repeat⌋ mod period (repeat > 1: a broadcast over trailing axes, after a run of
   * `period` values and perhaps leading broadcast axes). The pass loop fills each value over its
   * run; the kernel reads the filled region as a full operand.
   */
  | { readonly kind: 'col'; readonly repeat: number; readonly period: number }
  /** Element 0 (a broadcast of one value). */
  | { readonly kind: 'scalar' };

/** One value of the kernel: an operand read from memory, or an expression over earlier values. */
export type WasmNode =
  | { readonly kind: 'leaf'; readonly leaf: number }
  /** `expr` (of the expression table) with its operand k being node `args[k]`. */
  | { readonly kind: 'expr'; readonly expr: Expr; readonly args: readonly number[] };

export interface WasmKernelSpec {
  readonly leaves: readonly WasmLeafPattern[];
  /** Per leaf, whether its array holds bools (bytes 0 or 1) instead of float32 values. Default: none. */
  readonly boolLeaves?: readonly boolean[];
  /** Values in an order where every expression's arguments come first. */
  readonly nodes: readonly WasmNode[];
  /** The nodes stored, in the order of the kernel's output arrays. */
  readonly outputs: readonly number[];
  /**
   * Instead of storing its one output, add it into a row of `accumulate` doubles: element i into
   * double i mod accumulate, rows in order (a sum over leading axes, in the order of the
   * JavaScript reduction kernels). A multiple of 4.
   */
  readonly accumulate?: number;
  /**
   * Instead of storing its one output, the pass loop adds element i to double ⌊i / sumRows⌋ of
   * the result, elements in order (a sum over trailing axes, in the order of the JavaScript
   * reduction kernels: a row's doubles start at 0 and take each value in turn). The module is
   * the one that stores the output; only the pass loop differs.
   */
  readonly sumRows?: number;
  /**
   * exp, log1p, log and sigmoid by their float32 forms (mathF32x4Fast.ts: within FAST_MATH_ULPS,
   * 1 ulp, sigmoid 2) instead of the engine's double results rounded: setCpuFastMath(true). Default false.
   */
  readonly fastMath?: boolean;
}

/** Thrown while emitting for what the kernels do not compute; the caller keeps the JavaScript kernel. */
export class WasmUnsupported extends Error {}

/** Whether node `i` of `spec` is a bool (a mask in the kernel; bytes in its array) rather than a float32. */
function isBoolNode(spec: WasmKernelSpec, i: number): boolean {
  const n = spec.nodes[i]!;
  return n.kind === 'leaf' ? spec.boolLeaves?.[n.leaf] === true : (expressionDType(n.expr) ?? 'bool') === 'bool';
}

/**
 * Math functions on four float32 lanes: each leaves the JavaScript kernels' float32 value of the
 * lanes of V128 local `x` on the stack (Math.fround(f(x)); for erf, of the CPU's own float64 erf),
 * bit for bit (mathF32x4.ts): through a fast path exact after rounding, except erf, computed
 * outright lane by lane. tanh, expm1, sin and cos call the host's Math functions on their rare
 * exact lanes: every module imports those (importHostMath), and the instance passes the global
 * Math object.
 */
type MathTable = Partial<Record<MathFunction, (f: FunctionBody, x: number) => void>>;
const MATH_F32X4: MathTable = {
  exp: emitExpF32x4,
  log: emitLogF32x4,
  log1p: emitLog1pF32x4,
  sigmoid: emitSigmoidF32x4,
  tanh: emitTanhF32x4,
  expm1: emitExpm1F32x4,
  sin: emitSinF32x4,
  cos: emitCosF32x4,
  erf: emitErfF32x4,
};

/**
 * Under setCpuFastMath(true) (a spec's `fastMath`): exp, log1p, log and sigmoid in float32
 * arithmetic on all four lanes, within FAST_MATH_ULPS of the default value
 * (mathF32x4Fast.ts); the others as above.
 */
const MATH_F32X4_FAST: MathTable = { ...MATH_F32X4, ...FAST_MATH_F32X4 };

const MASK_TRUE = new Array<number>(16).fill(0xff);
/** The sign bits of four f32 lanes. */
const SIGN_BITS = f32Splat(-0);
/** Every bit of four f32 lanes but the sign. */
const ABS_BITS = [0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f];
const ZERO = new Array<number>(16).fill(0);
/** Four i32 lanes of 1. */
const I32_ONES = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0];

/**
 * Whether expression `e` calls one of MATH_F32X4's functions (exp, log, log1p, sigmoid, tanh,
 * expm1, sin, cos, erf): in JavaScript a library call of several nanoseconds an element (exp
 * ~11 ns) where the WebAssembly kernels take ~3 (wasmPlan.ts sends a sum's prologue to WebAssembly
 * only then), and in WebAssembly a long chain of dependent operations (such kernels run two
 * vectors an iteration). sqrt, the roundings and max are single instructions in both.
 */
export function callsMath(e: Expr): boolean {
  return callsOneOf(e, MATH_F32X4);
}

/** Whether expression `e` calls exp, log1p, log or sigmoid: what setCpuFastMath changes. */
export function callsFastMath(e: Expr): boolean {
  return callsOneOf(e, FAST_MATH_F32X4);
}

/** Whether `e` calls one of the functions `table` has a key for. */
function callsOneOf(e: Expr, table: object): boolean {
  return containsExpr(e, (x) => x.kind === 'call' && x.fn in table);
}

/**
 * Whether condition `c` tests a bool (operand `operand`, where given) against false, as every
 * `where` of the expression table tests its condition: in the kernels a bool is a mask, all ones
 * or all zeros, so such a test is the mask itself (i32x4.ne would cost about three instructions).
 */
function boolTestedAgainstFalse(c: Expr, operand?: number): boolean {
  if (c.kind !== 'compare' || c.op !== '!=' || (expressionDType(c.a) ?? 'bool') !== 'bool' || !zeroBits(c.b)) return false;
  return operand === undefined || (c.a.kind === 'operand' && c.a.index === operand);
}

/** Whether `e` is a literal whose lanes are all zero bits: +0, or false. */
function zeroBits(e: Expr): boolean {
  return e.kind === 'literal' && (e.dtype === 'bool' ? e.value === 0 : Object.is(Math.fround(e.value), 0));
}

/**
 * Emits `e` with its operands in locals `args`, leaving one v128 on the stack: a float32 value as
 * f32x4, a bool or a condition as a mask.
 */
function emitExpr(f: FunctionBody, e: Expr, args: readonly number[], math: MathTable): void {
  const typeOf = (x: Expr) => expressionDType(x) ?? 'bool';
  const check = (dtype: DType) => {
    if (dtype !== 'float32' && dtype !== 'bool') throw new WasmUnsupported(`${dtype} values`);
  };
  switch (e.kind) {
    case 'operand':
      check(e.dtype);
      f.get(args[e.index]!);
      return;
    case 'literal':
      check(e.dtype);
      f.v128Const(e.dtype === 'bool' ? (e.value !== 0 ? MASK_TRUE : ZERO) : f32Splat(Math.fround(e.value)));
      return;
    case 'negate':
      if (e.dtype !== 'float32') throw new WasmUnsupported(`negate of ${e.dtype}`);
      // The sign bit flipped, as f32x4.neg does, by an XOR with it: V8 makes f32x4.neg's mask
      // anew at each use (two instructions more; exp(−x) −10% an element).
      emitExpr(f, e.arg, args, math);
      f.v128Const(SIGN_BITS).v128Xor();
      return;
    case 'arithmetic':
      if (e.dtype !== 'float32') throw new WasmUnsupported(`arithmetic in ${e.dtype}`);
      emitExpr(f, e.a, args, math);
      emitExpr(f, e.b, args, math);
      if (e.op === '+') f.f32x4Add();
      else if (e.op === '-') f.f32x4Sub();
      else if (e.op === '*') f.f32x4Mul();
      else f.f32x4Div();
      return;
    case 'call': {
      if (e.dtype !== 'float32' || e.args.length !== 1 || typeOf(e.args[0]!) !== 'float32') throw new WasmUnsupported(`${e.fn} in ${e.dtype}`);
      if (e.fn === 'sqrt') {
        emitExpr(f, e.args[0]!, args, math);
        f.f32x4Sqrt();
        return;
      }
      const emit = math[e.fn];
      if (emit) {
        const x = f.local(V128);
        emitExpr(f, e.args[0]!, args, math);
        f.set(x);
        emit(f, x);
        return;
      }
      throw new WasmUnsupported(`math function ${e.fn}`);
    }
    case 'compare': {
      const dtype = typeOf(e.a);
      if (boolTestedAgainstFalse(e)) {
        emitExpr(f, e.a, args, math);
        return;
      }
      emitExpr(f, e.a, args, math);
      emitExpr(f, e.b, args, math);
      if (dtype === 'float32') {
        const ops = { '<': () => f.f32x4Lt(), '<=': () => f.f32x4Le(), '>': () => f.f32x4Gt(), '>=': () => f.f32x4Ge(), '==': () => f.f32x4Eq(), '!=': () => f.f32x4Ne() };
        ops[e.op]();
        return;
      }
      // Bools as masks: equal masks are equal bools.
      if (dtype === 'bool' && (e.op === '==' || e.op === '!=')) {
        if (e.op === '==') f.i32x4Eq();
        else f.i32x4Ne();
        return;
      }
      throw new WasmUnsupported(`comparison ${e.op} of ${dtype}`);
    }
    case 'isNaN':
      if (typeOf(e.arg) !== 'float32') throw new WasmUnsupported('isNaN of a non-float');
      emitExpr(f, e.arg, args, math);
      {
        const x = f.local(V128);
        f.tee(x).get(x).f32x4Ne();
      }
      return;
    case 'or':
      emitExpr(f, e.a, args, math);
      emitExpr(f, e.b, args, math);
      f.v128Or();
      return;
    case 'select':
      check(e.dtype);
      // A select against +0 (a relu, a mask) as one AND with the condition's mask: the same bits
      // (+0's are all zero) in one instruction where V8 spends about three on a bitselect.
      if (zeroBits(e.ifFalse)) {
        emitExpr(f, e.ifTrue, args, math);
        emitExpr(f, e.cond, args, math);
        f.v128And();
        return;
      }
      if (zeroBits(e.ifTrue)) {
        emitExpr(f, e.ifFalse, args, math);
        emitExpr(f, e.cond, args, math);
        f.v128AndNot();
        return;
      }
      emitExpr(f, e.ifTrue, args, math);
      emitExpr(f, e.ifFalse, args, math);
      emitExpr(f, e.cond, args, math);
      f.v128Bitselect();
      return;
    case 'condition':
      emitExpr(f, e.cond, args, math);
      return;
    case 'convert': {
      const from = typeOf(e.arg);
      if (e.dtype === 'float32' && from === 'bool') {
        emitExpr(f, e.arg, args, math);
        f.v128Const(f32Splat(1)).v128And();
        return;
      }
      if (e.dtype === from && from === 'float32') {
        emitExpr(f, e.arg, args, math);
        return;
      }
      throw new WasmUnsupported(`conversion from ${from} to ${e.dtype}`);
    }
  }
}

/**
 * How a kernel's math calls are split over loops (`stages`). A vector's exp then log1p (softplus)
 * is one dependency chain of ~140 cycles; the processor overlaps the next vector's only as far as
 * its reorder window reaches (~320 instructions), so the chain, not the instruction count, bounds
 * the loop. Each call whose argument depends on another call's result therefore runs in a loop of
 * its own over the pass: loop j computes the calls j calls deep, writes their values to a region
 * (the output's, where the kernel stores that node anyway, else a stage region of the pass's
 * layout), and later loops read them back; the cheap operations they share are recomputed
 * (softplus 3.3 → 2.3 ns an element with fast math, 7.8 → 6.0 exact: benchmarks/NOTES.md, "Staged
 * math"). Same bits: a float32 value stored and loaded is itself.
 */
interface Stages {
  /** Per node, the math calls on the longest chain of arguments before it: for a math node, the loop that computes it. */
  readonly level: readonly number[];
  /** The last loop: the one that computes the outputs (0: one loop, no staging). */
  readonly last: number;
  /** The math nodes computed before the last loop, each with where its values go. */
  readonly staged: readonly { readonly node: number; readonly output: number | null; readonly region: number | null }[];
}

/** `spec`'s loops (Stages): its math nodes by depth, and which regions carry the earlier ones. */
export function stages(spec: WasmKernelSpec): Stages {
  const heavy = spec.nodes.map((n) => n.kind === 'expr' && callsMath(n.expr));
  // level: the math calls on the longest chain before a node; a math node runs in loop `level`.
  const level: number[] = [];
  spec.nodes.forEach((n, i) => {
    let l = 0;
    if (n.kind === 'expr') for (const a of n.args) l = Math.max(l, heavy[a] ? level[a]! + 1 : level[a]!);
    level[i] = l;
  });
  let last = 0;
  spec.nodes.forEach((_, i) => {
    if (heavy[i]) last = Math.max(last, level[i]!);
  });
  const storedOutputs = spec.accumulate === undefined;
  const staged: { node: number; output: number | null; region: number | null }[] = [];
  let regions = 0;
  spec.nodes.forEach((_, i) => {
    if (!heavy[i] || level[i]! >= last) return;
    const j = storedOutputs ? spec.outputs.indexOf(i) : -1;
    staged.push(j >= 0 ? { node: i, output: j, region: null } : { node: i, output: null, region: regions++ });
  });
  return { level, last, staged };
}

/**
 * Which lanes of node `base` have their sign bit flipped to give a node: none, all, or those
 * where bool node `cond` holds (`when` true) or fails (false); or the sign bits cleared ('clear':
 * |base|, as `abs` computes it) or set ('set': −|base|).
 */
export interface SignFlip {
  readonly base: number;
  readonly flip: 'none' | 'all' | 'clear' | 'set' | { readonly cond: number; readonly when: boolean };
}

const isOperand = (e: Expr, index: number): boolean => e.kind === 'operand' && e.index === index;

/** Whether node `i` of `spec` is a literal zero (`plusOnly`: +0 alone). */
function zeroNode(spec: WasmKernelSpec, i: number, plusOnly: boolean): boolean {
  const n = spec.nodes[i]!;
  if (n.kind !== 'expr' || n.expr.kind !== 'literal' || n.expr.dtype !== 'float32') return false;
  const v = Math.fround(n.expr.value);
  return plusOnly ? Object.is(v, 0) : v === 0;
}

/**
 * The node x when the `where` node with arguments `args` (condition, if true, if false) is `abs` as
 * the op writes it, where(x < 0, −x, x + 0) (or 0 + x), `forms` being the earlier nodes' sign
 * forms; else null. That is |x| with −0 made +0: x with its sign bit cleared (a NaN's too; which
 * NaN comes out is not specified: docs/conventions.md).
 */
function isAbs(spec: WasmKernelSpec, forms: readonly SignFlip[], args: readonly number[]): number | null {
  const [cond, a, b] = args as [number, number, number];
  const neg = forms[a]!;
  if (neg.flip !== 'all') return null;
  const x = neg.base;
  const plain = (i: number) => forms[i]!.base === x && forms[i]!.flip === 'none';
  const c = spec.nodes[cond]!;
  if (c.kind !== 'expr' || c.expr.kind !== 'condition' || c.expr.cond.kind !== 'compare' || c.expr.cond.op !== '<') return null;
  if (!isOperand(c.expr.cond.a, 0) || !isOperand(c.expr.cond.b, 1) || !plain(c.args[0]!) || !zeroNode(spec, c.args[1]!, false)) return null;
  const sum = spec.nodes[b]!;
  if (sum.kind !== 'expr' || sum.expr.kind !== 'arithmetic' || sum.expr.op !== '+' || sum.expr.dtype !== 'float32') return null;
  const [p, q] = sum.args as [number, number];
  const ordered = isOperand(sum.expr.a, 0) && isOperand(sum.expr.b, 1);
  return ordered && ((plain(p) && zeroNode(spec, q, true)) || (plain(q) && zeroNode(spec, p, true))) ? x : null;
}

/**
 * Per node, the node it is with sign bits flipped (SignFlip): a float32 negation flips all of
 * them, and a `where` between a node and its negation (−|s| in softplus: neg(where(s ≥ 0, s,
 * −s))) flips those where its condition holds or fails. Such a node is emitted as one XOR of its
 * base with the sign bits masked by the condition, where the chain takes a negation (an XOR) and a
 * bit select (three instructions on x64) per step: the same bits, as negation only flips the
 * sign bit (of a NaN too), and a select picks one of two lanes that differ in it alone.
 */
export function signFlips(spec: WasmKernelSpec): SignFlip[] {
  const forms: SignFlip[] = [];
  spec.nodes.forEach((n, i) => {
    let form: SignFlip = { base: i, flip: 'none' };
    if (n.kind === 'expr' && expressionDType(n.expr) === 'float32') {
      const e = n.expr;
      if (e.kind === 'negate' && isOperand(e.arg, 0)) {
        const { base, flip } = forms[n.args[0]!]!;
        const negated = { none: 'all', all: 'none', clear: 'set', set: 'clear' } as const;
        form = { base, flip: typeof flip === 'string' ? negated[flip] : { cond: flip.cond, when: !flip.when } };
      } else if (e.kind === 'select' && boolTestedAgainstFalse(e.cond, 0) && isOperand(e.ifTrue, 1) && isOperand(e.ifFalse, 2)) {
        const [cond, a, b] = n.args as [number, number, number];
        const x = forms[a]!;
        const y = forms[b]!;
        const plain = (f: SignFlip['flip']) => f === 'none' || f === 'all';
        const abs = isAbs(spec, forms, n.args);
        if (abs !== null) form = { base: abs, flip: 'clear' };
        else if (x.base === y.base && plain(x.flip) && plain(y.flip)) {
          form = x.flip === y.flip ? x : { base: x.base, flip: { cond, when: x.flip === 'all' } };
        }
      }
    }
    forms.push(form);
  });
  return forms;
}

/**
 * The operand an accumulating kernel adds as it is (its output is that leaf, a full float32
 * operand, no expression), or null: such a kernel is a plain column sum (emitColumnSum).
 */
function columnSumLeaf(spec: WasmKernelSpec): number | null {
  if (spec.accumulate === undefined) return null;
  const n = spec.nodes[spec.outputs[0]!]!;
  return n.kind === 'leaf' && spec.leaves[n.leaf]!.kind === 'full' && spec.boolLeaves?.[n.leaf] !== true ? n.leaf : null;
}

/**
 * A pass of a plain column sum: the float32 values at byte address `x` (local), `bytes` of them
 * (local: whole rows of `period` values), added into the `period` doubles at `acc` (local), by
 * blocks of eight columns (four at the end where period mod 8 is 4): the block's doubles stay in
 * four registers while the loop walks down the rows, and are stored once. Each double takes its
 * column's values in row order, as the element-by-element loop adds them (acc[i mod period] += v),
 * so the sums are the same bit for bit, with a load and a store of the row of doubles less per
 * vector (benchmarks/NOTES.md, "A plain column sum by blocks of columns").
 */
function emitColumnSum(f: FunctionBody, bytes: number, x: number, acc: number, period: number): void {
  const col = f.local(I32);
  const row = f.local(I32);
  const a = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const v = f.local(V128);
  const stride = period * 4;
  const block = (columns: 4 | 8) => {
    const vectors = columns / 4;
    // The block's doubles: acc + 2·col bytes (the f32 offset doubled is the f64 one).
    for (let h = 0; h < 2 * vectors; h++) f.get(col).i32Const(1).i32Shl().get(acc).i32Add().v128Load(16 * h).set(a[h]!);
    f.get(col).set(row);
    f.block().loop();
    for (let q = 0; q < vectors; q++) {
      f.get(row).get(x).i32Add().v128Load(16 * q).set(v);
      f.get(a[2 * q]!).get(v).f64x2PromoteLowF32x4().f64x2Add().set(a[2 * q]!);
      f.get(a[2 * q + 1]!).get(v).get(v).i8x16Shuffle(HIGH_HALF).f64x2PromoteLowF32x4().f64x2Add().set(a[2 * q + 1]!);
    }
    f.get(row).i32Const(stride).i32Add().tee(row).get(bytes).i32LtU().brIf(0);
    f.end().end();
    for (let h = 0; h < 2 * vectors; h++) f.get(col).i32Const(1).i32Shl().get(acc).i32Add().get(a[h]!).v128Store(16 * h);
  };
  f.i32Const(0).set(col);
  f.block().loop();
  f.get(col).i32Const(32).i32Add().i32Const(stride).i32GtU().brIf(1);
  block(8);
  f.get(col).i32Const(32).i32Add().set(col);
  f.br(0).end().end();
  if (period % 8 === 4) block(4);
}

/**
 * The module of one kernel: it imports `env.memory` and the host's Math functions (importHostMath)
 * and exports `run(bytes, leaf₀, …, out₀, …, stage₀, …)`, which computes the first `bytes`/4
 * output elements (in steps of four; regions are padded) from the operands at the given byte
 * addresses, in one loop over them or, where math calls depend on one another, several (stages),
 * the stage regions carrying values between them. Throws WasmUnsupported for what it cannot
 * compute.
 */
export function elementwiseModule(spec: WasmKernelSpec, maximumPages: number, sharedMemory = false): Uint8Array<ArrayBuffer> {
  for (const l of spec.leaves) if (l.kind === 'row' && (l.period % 4 !== 0 || l.period <= 0)) throw new WasmUnsupported(`a period of ${l.period}`);
  if (spec.accumulate !== undefined && (spec.accumulate % 4 !== 0 || spec.accumulate <= 0 || spec.outputs.length !== 1)) throw new WasmUnsupported(`an accumulation row of ${spec.accumulate}`);
  if (spec.accumulate !== undefined && isBoolNode(spec, spec.outputs[0]!)) throw new WasmUnsupported('an accumulation of bools');
  if (spec.sumRows !== undefined && (!Number.isInteger(spec.sumRows) || spec.sumRows <= 0 || spec.outputs.length !== 1 || spec.accumulate !== undefined || isBoolNode(spec, spec.outputs[0]!))) {
    throw new WasmUnsupported(`a sum of rows of ${spec.sumRows}`);
  }
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: 1, maximum: maximumPages, shared: sharedMemory });
  importHostMath(m);
  const math = spec.fastMath === true ? MATH_F32X4_FAST : MATH_F32X4;
  const loops = stages(spec);
  const regionCount = loops.staged.filter((st) => st.region !== null).length;
  const params: ValType[] = [I32, ...spec.leaves.map((): ValType => I32), ...spec.outputs.map((): ValType => I32), ...Array.from({ length: regionCount }, (): ValType => I32)];
  m.func('run', params, [], (f) => {
    const bytes = 0;
    const leafAt = spec.leaves.map((_, k) => 1 + k);
    const outAt = spec.outputs.map((_, j) => 1 + spec.leaves.length + j);
    const regionAt = (r: number) => 1 + spec.leaves.length + spec.outputs.length + r;
    // Where each staged node's values lie: its output's region or a stage region.
    const stagedAt = new Map(loops.staged.map((st) => [st.node, st.output !== null ? outAt[st.output]! : regionAt(st.region!)]));
    const at = f.local(I32);
    const periods = [...new Set([...spec.leaves.flatMap((l) => (l.kind === 'row' ? [l.period] : [])), ...(spec.accumulate ? [spec.accumulate] : [])])];
    // A row offset (the element's within its period, in bytes): for a power-of-two period the
    // element offset masked (a pass starts on a whole period), else a local advanced each vector.
    const masked = (period: number) => (period & (period - 1)) === 0;
    const rowAt = new Map(periods.filter((p) => !masked(p)).map((p) => [p, f.local(I32)]));
    const rowOffset = (period: number) => {
      if (masked(period)) f.get(at).i32Const(period * 4 - 1).i32And();
      else f.get(rowAt.get(period)!);
    };
    const values = spec.nodes.map(() => f.local(V128));
    const flips = signFlips(spec);
    // A bool operand was copied in as 0.0 or 1.0: its mask is the lanes whose bits are nonzero.
    const asMask = (i: number) => {
      if (isBoolNode(spec, i)) f.v128Const(ZERO).i32x4Ne();
    };
    // Scalars once, before the loop; so are col operands whose runs bound the passes (colRuns).
    const runs = colRuns(spec) > 0;
    const splatOnce = (l: WasmLeafPattern) => l.kind === 'scalar' || (runs && l.kind === 'col');
    spec.nodes.forEach((n, i) => {
      if (n.kind === 'leaf' && splatOnce(spec.leaves[n.leaf]!)) {
        f.get(leafAt[n.leaf]!).v128Load32Splat();
        asMask(i);
        f.set(values[i]!);
      }
    });
    const narrow = f.local(V128);
    const address = f.local(I32);
    /**
     * The nodes loop `loop` computes (true), reads back from where an earlier loop stored them
     * ('load'), or does not touch: what `targets` need, down to the math nodes of earlier loops.
     */
    const needs = (loop: number, targets: readonly number[]): (boolean | 'load')[] => {
      const need: (boolean | 'load')[] = spec.nodes.map(() => false);
      const visit = (i: number) => {
        if (need[i] !== false) return;
        const n = spec.nodes[i]!;
        if (stagedAt.has(i) && loops.level[i]! < loop) {
          need[i] = 'load';
          return;
        }
        need[i] = true;
        if (n.kind === 'expr') for (const a of n.args) visit(a);
      };
      for (const t of targets) visit(t);
      return need;
    };
    // One vector of loop `loop`: its operands, its expressions, its results (the staged values it
    // computes, or the kernel's outputs in the last loop); the rows' offsets and `at` advanced.
    const vector = (loop: number, need: readonly (boolean | 'load')[]) => {
      spec.nodes.forEach((n, i) => {
        if (need[i] === false) return;
        if (need[i] === 'load') {
          f.get(at).get(stagedAt.get(i)!).i32Add().v128Load().set(values[i]!);
          return;
        }
        if (n.kind === 'leaf') {
          const l = spec.leaves[n.leaf]!;
          if (splatOnce(l)) return;
          // A col operand's region is filled as a full one (PassPlan.cols).
          if (l.kind === 'row') rowOffset(l.period);
          else f.get(at);
          f.get(leafAt[n.leaf]!).i32Add().v128Load();
          asMask(i);
          f.set(values[i]!);
          return;
        }
        const { base, flip } = flips[i]!;
        if (flip === 'clear' || flip === 'set') {
          // |base| (abs: one AND where its select, negation and sum took about ten instructions), or −|base| (one OR).
          f.get(values[base]!);
          if (flip === 'clear') f.v128Const(ABS_BITS).v128And();
          else f.v128Const(SIGN_BITS).v128Or();
          f.set(values[i]!);
          return;
        }
        if (base !== i && typeof flip === 'object') {
          // Its base with the sign bits of the lanes where `cond` holds (or fails) flipped.
          f.get(values[base]!).v128Const(SIGN_BITS).get(values[flip.cond]!);
          if (flip.when) f.v128And();
          else f.v128AndNot();
          f.v128Xor().set(values[i]!);
          return;
        }
        emitExpr(f, n.expr, n.args.map((a) => values[a]!), math);
        f.set(values[i]!);
      });
      if (loop < loops.last) {
        for (const st of loops.staged) if (loops.level[st.node] === loop) f.get(at).get(stagedAt.get(st.node)!).i32Add().get(values[st.node]!).v128Store();
      } else if (spec.accumulate) {
        // acc[i mod P] += v, in doubles: the f32 row offset doubled is the f64 one.
        const v = values[spec.outputs[0]!]!;
        rowOffset(spec.accumulate);
        f.i32Const(1).i32Shl().get(outAt[0]!).i32Add().set(address);
        f.get(address).get(address).v128Load().get(v).f64x2PromoteLowF32x4().f64x2Add().v128Store();
        f.get(address).get(address).v128Load(16).get(v).get(v).i8x16Shuffle(HIGH_HALF).f64x2PromoteLowF32x4().f64x2Add().v128Store(16);
      } else {
        spec.outputs.forEach((node, j) => {
          // A staged output was stored by its own loop, in this region.
          if (loops.staged.some((st) => st.output === j)) return;
          if (!isBoolNode(spec, node)) {
            f.get(at).get(outAt[j]!).i32Add().get(values[node]!).v128Store();
            return;
          }
          // Four bytes at the element's index: each lane's mask & 1, narrowed i32 → i16 → i8.
          f.get(at).i32Const(2).i32ShrU().get(outAt[j]!).i32Add();
          f.get(values[node]!).v128Const(I32_ONES).v128And().tee(narrow).get(narrow).i16x8NarrowI32x4S();
          f.tee(narrow).get(narrow).i8x16NarrowI16x8S().v128Store32Lane(0, 0);
        });
      }
      for (const [period, local] of rowAt) {
        // Advance within the period, back to 0 at its end.
        f.get(local).i32Const(16).i32Add().tee(local).i32Const(0).get(local).i32Const(period * 4).i32Ne().select().set(local);
      }
      f.get(at).i32Const(16).i32Add().tee(at);
    };
    // A loop that calls a math function takes two vectors an iteration, with an exit between
    // them (a pass may hold an odd number): the long dependency chains of one vector's math then
    // overlap the next's (softplus −8%, exp −5% an element; benchmarks/NOTES.md, "Two vectors an
    // iteration"). Other loops, short and bound by memory, keep one (and half the code).
    f.block();
    f.get(bytes).i32Eqz().brIf(0);
    const summed = columnSumLeaf(spec);
    if (summed !== null) {
      emitColumnSum(f, bytes, leafAt[summed]!, outAt[0]!, spec.accumulate!);
      f.end();
      return;
    }
    for (let loop = 0; loop <= loops.last; loop++) {
      const targets = loop < loops.last ? loops.staged.filter((st) => loops.level[st.node] === loop).map((st) => st.node) : spec.outputs;
      const need = needs(loop, targets);
      const twice = spec.nodes.some((n, i) => need[i] === true && n.kind === 'expr' && callsMath(n.expr));
      // Each loop starts the pass over from its first element. (The rows' offsets are back at 0
      // already: a pass is whole periods, whole accumulation rows.)
      if (loop > 0) f.i32Const(0).set(at);
      f.block().loop();
      vector(loop, need);
      if (twice) {
        f.get(bytes).i32GeU().brIf(1);
        vector(loop, need);
      }
      f.get(bytes).i32LtU().brIf(0);
      f.end().end();
    }
    f.end();
  });
  return m.encode();
}

// ---------------------------------------------------------------------------------------------
// Running kernels: on each thread one memory for all of them, operands copied in, results out,
// in passes.

/** 1 GiB: the memory's maximum (engines reserve it as address space, not memory). */
const MAXIMUM_PAGES = HEAP_MAXIMUM_PAGES;
/** The most bytes a call may lay out in the thread's memory: its maximum. */
const ELEMENTWISE_MEMORY_BYTES = MAXIMUM_PAGES * 65536;

/** Where a call's operands and results lie in the thread's memory (byte addresses), and its extent. */
interface Layout {
  /** Elements of each operand a pass copies: a pass of the count, a period, or one. */
  readonly leafLength: readonly number[];
  readonly leafAt: readonly number[];
  readonly outAt: readonly number[];
  /** The stage regions of math values that later loops of a pass read back (stages): a pass of elements each. */
  readonly stageAt: readonly number[];
  readonly bytes: number;
}

/**
 * The one layout of a kernel's calls, eager calls and range functions alike, whatever their
 * count: one whole pass's regions (a call of fewer elements uses their start), each padded to a
 * whole vector: a full operand's pass of elements (a col operand's too, or one value where its
 * runs bound the passes: colRuns), a row operand's period, a scalar's one value;
 * an output's pass of elements, or the row of doubles it accumulates into; a stage region's pass
 * of elements (stages). Only a row operand's period grows it beyond a pass's.
 */
function layout(spec: WasmKernelSpec): Layout {
  const n = passElements(spec);
  const runs = colRuns(spec) > 0;
  let at = 0;
  const leafLength = spec.leaves.map((l) => (l.kind === 'full' || (l.kind === 'col' && !runs) ? n : l.kind === 'row' ? l.period : 1));
  const leafAt = leafLength.map((length) => {
    const start = at;
    at += Math.ceil(length / 4) * 16;
    return start;
  });
  const outAt = spec.outputs.map(() => {
    const start = at;
    at += spec.accumulate ? spec.accumulate * 8 : Math.ceil(n / 4) * 16;
    return start;
  });
  const stageAt = stages(spec).staged.flatMap((st) => {
    if (st.region === null) return [];
    const start = at;
    at += Math.ceil(n / 4) * 16;
    return [start];
  });
  return { leafLength, leafAt, outAt, stageAt, bytes: at };
}

/**
 * What a kernel's pass loop needs (plain data, so that a range function's source can hold it as a
 * literal): the layout's regions as float32 indices, which operands are full, which results bools,
 * the elements of a pass, and whether the results are rows of doubles that passes accumulate into
 * (a sum: nothing is copied out).
 */
export interface PassPlan {
  readonly leafAt: readonly number[];
  readonly leafLength: readonly number[];
  readonly outAt: readonly number[];
  /** The stage regions (stages: values an earlier loop of the kernel leaves for a later one), the kernel's last arguments. */
  readonly stageAt: readonly number[];
  readonly full: readonly boolean[];
  /** Per operand, its run and period when it is a `col` operand (filled each pass, or one value a pass with runPass), else null. */
  readonly cols: readonly ({ readonly repeat: number; readonly period: number } | null)[];
  /**
   * colRuns(spec): when above 0, no pass crosses a multiple of it, and each col operand is one
   * value per pass (the kernel splats it) instead of a filled region.
   */
  readonly runPass: number;
  readonly boolOut: readonly boolean[];
  readonly pass: number;
  readonly bytes: number;
  readonly accumulate: boolean;
  /** Elements of a row the pass loop sums each output element into (spec.sumRows), or 0: stored. */
  readonly sumRows: number;
}

/** How `spec`'s kernel lays out a pass of its operands and results (exported for the tests). */
export function passPlan(spec: WasmKernelSpec): PassPlan {
  const { leafLength, leafAt, outAt, stageAt, bytes } = layout(spec);
  return {
    leafAt: leafAt.map((b) => b / 4),
    leafLength,
    outAt: outAt.map((b) => b / 4),
    stageAt: stageAt.map((b) => b / 4),
    full: spec.leaves.map((l) => l.kind === 'full'),
    cols: spec.leaves.map((l) => (l.kind === 'col' ? { repeat: l.repeat, period: l.period } : null)),
    runPass: colRuns(spec),
    boolOut: spec.outputs.map((node) => isBoolNode(spec, node)),
    pass: passElements(spec),
    bytes,
    accumulate: spec.accumulate !== undefined && spec.accumulate > 0,
    sumRows: spec.sumRows ?? 0,
  };
}

/** A kernel's instance on this thread: the thread's memory through `heap`, and its pass loop. */
export interface ElementwiseInstance {
  /**
   * A view of the thread's memory with this thread's scratch of at least `bytes` in it, from
   * float32 index `scratchAt()` (the view is made again only when the memory grew).
   */
  heap(bytes: number): Float32Array;
  /** The float32 index of this thread's scratch in the view (in a memory of the kernels' own, after their constant tables). */
  scratchAt(): number;
  /**
   * Elements [e0, e1) of every result, in passes of `plan.pass`: operand k of the plan read from
   * `leaves[k]` at `offsets[k]` (a row operand's period and a scalar copied in once: passes start
   * on whole periods; entries past the plan's operands, a range function's results, are not
   * read), result j written to `outputs[outBase + j]` at the same elements (none with
   * `plan.accumulate`, whose rows of doubles stay in the memory at `plan.outAt`; with
   * `plan.sumRows`, element e is added to double ⌊e / sumRows⌋ of `outputs[outBase]`, a
   * Float64Array, in order). The one pass loop of eager calls, column and row sums and compiled
   * range functions. On the CPU's heap (a shared module on a thread that has the heap's hooks), a
   * float32 array of the heap is read or written where it lies instead of copied.
   */
  passes(leaves: readonly WasmArray[], offsets: readonly number[], outputs: readonly (WasmArray | Float64Array)[], outBase: number, plan: PassPlan, e0: number, e1: number): void;
}

/**
 * What a thread that has the CPU's heap (heap.ts) gives its kernel instances: the heap's memory,
 * this thread's scratch region in it, and which arrays live in it.
 */
export interface ElementwiseHeapHooks {
  readonly memory: WebAssembly.Memory;
  /** The byte address of this thread's scratch, made at least `bytes` long (its old contents lost). */
  scratch(bytes: number): number;
  /** Whether `a` is an array of the heap, whole (heap.ts's `holds`). */
  holds(a: object): boolean;
}

/**
 * An instance of a kernel module (its bytes; `shared` when they import a shared memory) on this
 * thread's memory for elementwise kernels, made on first use and grown as calls need: the
 * CPU's heap where this thread has its hooks (`wasmElementwiseInstance.heap`, set on the main
 * thread by onHeap, in a worker by its start) and the module is shared, else a memory of the kernels' own.
 * Self-contained (it keeps the memories on itself): worker threads build it from its source
 * text (jsCode.ts's helpers), so each thread has its own.
 */
export function wasmElementwiseInstance(bytes: Uint8Array<ArrayBuffer>, shared = false): ElementwiseInstance {
  type Compiled = { bytes: Uint8Array; module: WebAssembly.Module };
  const self = wasmElementwiseInstance as unknown as { memory?: WebAssembly.Memory; sharedMemory?: WebAssembly.Memory; heap?: ElementwiseHeapHooks; modules?: Map<number, Compiled[]>; count?: number };
  const hooks = shared ? self.heap : undefined;
  if (!hooks) {
    if (shared) self.sharedMemory ??= new WebAssembly.Memory({ initial: 1, maximum: 16384, shared: true });
    else self.memory ??= new WebAssembly.Memory({ initial: 1, maximum: 16384 });
  }
  // Each module compiled once per thread: the planner's instance (which checks that the engine
  // compiles it) and a compiled program's range function share it. Found by a hash of the bytes
  // (FNV-1a), then compared byte for byte; at most 1024 kept, the oldest bucket dropped first.
  self.modules ??= new Map();
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  const bucket = self.modules.get(hash) ?? [];
  let module: WebAssembly.Module | undefined;
  for (const c of bucket) {
    if (c.bytes.length !== bytes.length) continue;
    let same = true;
    for (let i = 0; i < bytes.length && same; i++) same = c.bytes[i] === bytes[i];
    if (same) module = c.module;
  }
  if (module === undefined) {
    module = new WebAssembly.Module(bytes);
    if (bucket.length === 0) self.modules.set(hash, bucket);
    bucket.push({ bytes, module });
    self.count = (self.count ?? 0) + 1;
    if (self.count > 1024) {
      const [oldest, dropped] = self.modules.entries().next().value!;
      self.modules.delete(oldest);
      self.count -= dropped.length;
    }
  }
  // Math: the host functions the exact paths of tanh, expm1, sin and cos call (importHostMath).
  const memory = hooks ? hooks.memory : shared ? self.sharedMemory! : self.memory!;
  const exports = new WebAssembly.Instance(module, { env: { memory }, Math: Math as unknown as WebAssembly.ModuleImports }).exports as { run: (...args: number[]) => void };
  let view = new Float32Array(memory.buffer);
  let bytesView = new Uint8Array(memory.buffer);
  // The scratch's byte address: in a memory of the kernels' own, right after the bytes its
  // modules' constant tables take (KERNEL_CONSTANTS_BYTES, heap.ts: a literal here, since workers
  // build this function from its source alone), where growth keeps it.
  const CONSTANTS_BYTES = 9216;
  let base = CONSTANTS_BYTES;
  const heap = (need: number): Float32Array => {
    base = hooks ? hooks.scratch(need) : CONSTANTS_BYTES;
    const end = base + need;
    if (view.byteLength < end) {
      if (!hooks && memory.buffer.byteLength < end) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
      view = new Float32Array(memory.buffer);
    }
    return view;
  };
  const byteView = (): Uint8Array => {
    if (bytesView.buffer !== view.buffer) bytesView = new Uint8Array(view.buffer);
    return bytesView;
  };
  // Below this many elements a col operand's run is filled by a loop, not by `fill` (a call).
  // (Here, not at the top level: workers build this function from its source alone.)
  const SHORT_RUN = 16;
  // The run function's arguments: the byte count of a pass, then every region's byte address;
  // whether each full operand, then each result, is read or written where it lies in the heap.
  const args: number[] = [];
  const inPlace: boolean[] = [];
  return {
    heap,
    scratchAt: () => base / 4,
    passes(leaves, offsets, outputs, outBase, plan, e0, e1) {
      const h = heap(plan.bytes);
      const s4 = base / 4;
      const hb = plan.boolOut.includes(true) ? byteView() : null;
      const { leafAt, leafLength, outAt, full, cols, boolOut, pass } = plan;
      // The plan's operands only: a range function passes one array of operands then results.
      const L = full.length;
      const O = outAt.length;
      const stored = !plan.accumulate && plan.sumRows === 0;
      const S = plan.stageAt.length;
      args.length = 1 + L + O + S;
      for (let r = 0; r < S; r++) args[1 + L + O + r] = base + plan.stageAt[r]! * 4;
      inPlace.length = L + O;
      for (let k = 0; k < L; k++) {
        args[1 + k] = base + leafAt[k]! * 4;
        inPlace[k] = hooks !== undefined && full[k]! && leaves[k] instanceof Float32Array && hooks.holds(leaves[k]!);
      }
      for (let j = 0; j < O; j++) {
        args[1 + L + j] = base + outAt[j]! * 4;
        const out = outputs[outBase + j];
        inPlace[L + j] = hooks !== undefined && stored && !boolOut[j] && out instanceof Float32Array && hooks.holds(out);
      }
      for (let k = 0; k < L; k++) {
        if (full[k] || cols[k]) continue;
        const off = offsets[k]!;
        h.set(leaves[k]!.subarray(off, off + leafLength[k]!), s4 + leafAt[k]!);
      }
      const runPass = plan.runPass;
      for (let p0 = e0, pn = 0; p0 < e1; p0 += pn) {
        pn = Math.min(e1 - p0, pass);
        if (runPass > 0) pn = Math.min(pn, runPass - (p0 % runPass));
        for (let k = 0; k < L; k++) {
          const col = cols[k];
          if (col && runPass > 0) {
            // The pass lies within one run of each col operand: its one value, which the kernel splats.
            h[s4 + leafAt[k]!] = leaves[k]![offsets[k]! + (Math.floor(p0 / col.repeat) % col.period)]!;
            continue;
          }
          if (col) {
            // Each value over its run of elements: element e reads value ⌊e / repeat⌋ mod period.
            // Runs shorter than SHORT_RUN are stored by a loop: a call of fill costs more.
            const src = leaves[k]!;
            const off = offsets[k]!;
            const { repeat, period } = col;
            const at = s4 + leafAt[k]! - p0;
            const end = p0 + pn;
            const q = Math.floor(p0 / repeat);
            let v = q % period;
            for (let e = p0, stop = Math.min(end, (q + 1) * repeat); e < end; e = stop, stop = Math.min(end, stop + repeat)) {
              const value = src[off + v]!;
              if (stop - e < SHORT_RUN) for (let i = e + at, j = stop + at; i < j; i++) h[i] = value;
              else h.fill(value, e + at, stop + at);
              if (++v === period) v = 0;
            }
            continue;
          }
          if (!full[k]) continue;
          const from = offsets[k]! + p0;
          // In place: the kernel reads the pass where it lies (a last vector past the array's end
          // reads bytes of its region or the next, in the memory: heap.ts).
          if (inPlace[k]) args[1 + k] = leaves[k]!.byteOffset + from * 4;
          else h.set(leaves[k]!.subarray(from, from + pn), s4 + leafAt[k]!);
        }
        // In place: the kernel writes the pass where it lies (a last whole vector past the
        // array's end stays in its region: heap.ts).
        for (let j = 0; j < O; j++) if (inPlace[L + j]) args[1 + L + j] = outputs[outBase + j]!.byteOffset + p0 * 4;
        args[0] = ((pn + 3) & ~3) * 4;
        exports.run(...args);
        if (plan.accumulate) continue;
        if (plan.sumRows > 0) {
          // Each row's values in order into its double, as the JavaScript kernel's acc = acc + t.
          const acc = outputs[outBase]!;
          const len = plan.sumRows;
          const at = s4 + outAt[0]! - p0;
          const end = p0 + pn;
          let r = Math.floor(p0 / len);
          for (let e = p0, stop = Math.min(end, (r + 1) * len); e < end; e = stop, stop = Math.min(end, stop + len), r++) {
            let a = acc[r]!;
            for (let i = e + at, j = stop + at; i < j; i++) a += h[i]!;
            acc[r] = a;
          }
          continue;
        }
        for (let j = 0; j < O; j++) {
          if (inPlace[L + j]) continue;
          const at = s4 + outAt[j]!;
          outputs[outBase + j]!.set(boolOut[j] ? hb!.subarray(at * 4, at * 4 + pn) : h.subarray(at, at + pn), p0);
        }
      }
    },
  };
}

/** Bytes of this thread's memory for elementwise kernels, or of its scratch in the CPU's heap: 0 until a kernel first runs here. */
export function elementwiseMemoryBytes(): number {
  return (wasmElementwiseInstance as unknown as { memory?: WebAssembly.Memory }).memory?.buffer.byteLength ?? heapScratch?.bytes ?? 0;
}

/** This thread's scratch in the CPU's heap, once a kernel has run on it. */
let heapScratch: HeapRegion | null = null;
/** The largest pass layout of the kernels made on the heap so far: the scratch a worker needs for any of them. */
let heapPassBytes = 0;

/** Bytes of scratch a pass of any kernel made on the CPU's heap needs (a worker's scratch is made this large: threadPool.ts). */
export function elementwiseScratchBytes(): number {
  return heapPassBytes;
}

let heapHooked: boolean | undefined;

/**
 * Whether the kernels made on this thread run on the CPU's heap: the first call gives
 * wasmElementwiseInstance the heap's hooks, with this thread's scratch as a region of the heap.
 */
function onHeap(): boolean {
  if (heapHooked !== undefined) return heapHooked;
  const heap = cpuHeap();
  heapHooked = heap !== null;
  if (!heap) return false;
  const hooks: ElementwiseHeapHooks = {
    memory: heap.memory,
    scratch(bytes) {
      if (heapScratch === null || heapScratch.bytes < bytes) {
        const old = heapScratch;
        if (old) heap.release(old);
        heapScratch = heap.scratch(bytes);
        if (heapScratch === null) {
          // The old region again (its bytes are free: it is had back), so that the kernels made
          // before still run; this one cannot.
          heapScratch = old && heap.scratch(old.bytes);
          throw new RangeError(`cpu: the heap cannot grow by ${bytes} bytes for an elementwise kernel`);
        }
      }
      return heapScratch.start;
    },
    holds: (a) => heap.holds(a),
  };
  (wasmElementwiseInstance as unknown as { heap?: ElementwiseHeapHooks }).heap = hooks;
  return true;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number): number => (a * b) / gcd(a, b);

/** Elements per unit of a range over a kernel's output: a multiple of 4 and of every row period. */
export function rangeUnit(spec: WasmKernelSpec): number {
  return spec.leaves.reduce((u, l) => (l.kind === 'row' ? lcm(u, l.period) : u), 4);
}

/** Runs of col operands at least this long bound the passes instead of being filled (colRuns). */
const LONG_RUN = 256;

/**
 * When a kernel's col operands all repeat each value over runs of LONG_RUN elements or more, the
 * greatest common divisor of their runs (a multiple of the range unit): the passes then stop at
 * its multiples, so that each col operand holds one value through a pass, which the kernel
 * splats once, instead of the pass loop filling a region with it (a group norm's mean, scale and
 * shift: four fills of every pass, ~1.6 ms of its ~4 ms kernel on 16×64×32×32). Else 0. Not for
 * accumulating kernels (their passes are whole accumulation rows).
 */
export function colRuns(spec: WasmKernelSpec): number {
  if (spec.accumulate !== undefined || spec.sumRows !== undefined) return 0;
  let g = 0;
  for (const l of spec.leaves) if (l.kind === 'col') g = gcd(g, l.repeat);
  return g >= LONG_RUN && g % rangeUnit(spec) === 0 ? g : 0;
}

/**
 * Elements a call copies in, computes and copies out at a time: 8192 (32 KiB an operand), so
 * that a pass's operands and results are still in cache when the kernel reads them and when
 * they are copied out, instead of a whole array's going through memory three times. Measured
 * (benchmarks/NOTES.md, "elementwise calls in passes"): 4096–16384 equal, whole arrays ~8% slower
 * on the SSM-VR step, 512 ~4%.
 */
const PASS_ELEMENTS = 8192;

/**
 * Elements of one pass of `spec`'s calls: about PASS_ELEMENTS, in whole units (so a row
 * operand's pass starts on a whole period) and whole accumulation rows (so each element is added
 * to the same double, in the same order, as in one pass over everything).
 */
export function passElements(spec: WasmKernelSpec): number {
  const unit = spec.accumulate ? lcm(rangeUnit(spec), spec.accumulate) : rangeUnit(spec);
  return Math.max(1, Math.floor(PASS_ELEMENTS / unit)) * unit;
}

/**
 * The kernel as a range function's source (rangeThreads.ts): a function expression of
 * (B, start, end) computing units [start, end) (`rangeUnit` elements each) of `count` output
 * elements, B holding the operand arrays (operand k read from `offsets[k]`) then the outputs.
 * The module's bytes are in the source, so a worker compiles its own instance.
 */
export function elementwiseRangeSource(name: string, bytes: Uint8Array, spec: WasmKernelSpec, count: number, offsets: readonly number[], shared: boolean): string {
  const unit = rangeUnit(spec);
  return `(() => {
  const bytes = new Uint8Array([${Array.from(bytes).join(',')}]);
  const shared = ${shared};
  const plan = ${JSON.stringify(passPlan(spec))};
  const offsets = ${JSON.stringify(offsets)};
  let k = null;
  return function ${name.replace(/\W/g, '_')}(B, start, end) {
    if (k === null) k = wasmElementwiseInstance(bytes, shared);
    const e1 = Math.min(end * ${unit}, ${count});
    if (e1 > start * ${unit}) k.passes(B, offsets, B, ${spec.leaves.length}, plan, start * ${unit}, e1);
  };
})()`;
}

/**
 * The function elementwiseRangeSource's text evaluates to, made on this thread without the text:
 * a closure over the same module (compiled, or found compiled, at its first call). The calling
 * thread runs this; the text, 23 KB for a typical module, is written only for the workers.
 */
export function elementwiseRangeFunction(
  name: string, bytes: Uint8Array<ArrayBuffer>, spec: WasmKernelSpec, count: number, offsets: readonly number[], shared: boolean,
): (B: readonly WasmArray[], start: number, end: number) => void {
  const unit = rangeUnit(spec);
  const plan = passPlan(spec);
  const leaves = spec.leaves.length;
  let k: ElementwiseInstance | null = null;
  // Named as the text's function is, for profiles.
  const named = {
    [name.replace(/\W/g, '_')](B: readonly WasmArray[], start: number, end: number): void {
      k ??= wasmElementwiseInstance(bytes, shared);
      const e1 = Math.min(end * unit, count);
      if (e1 > start * unit) k.passes(B, offsets, B, leaves, plan, start * unit, e1);
    },
  };
  return Object.values(named)[0]!;
}

/** A compiled kernel, for outputs of any length, on this thread. */
export interface WasmElementwiseKernel {
  /** The module (for range functions that other threads build), and whether it imports a shared memory (the CPU's heap). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly shared: boolean;
  /**
   * Computes `count` elements of each output: operand k is read from `leaves[k]` starting at
   * `offsets[k]` (count elements, its period, or one, by its pattern); output j is written to
   * `outputs[j]` from 0. A row operand's period must divide `count`. Bool operands and results
   * (the spec's bool leaves and nodes) are Uint8Arrays.
   */
  run(leaves: readonly WasmArray[], offsets: readonly number[], outputs: readonly WasmArray[], count: number): void;
  /**
   * For a spec with `accumulate`: sets `acc` (accumulate values) to the sums over the `count`
   * elements (a multiple of accumulate), from zeros, accumulated in doubles; a float32 `acc` gets
   * them rounded as a store rounds. For a spec with `sumRows`: sets `acc`, a Float64Array of
   * count / sumRows doubles, to the sums of the rows.
   */
  sum(leaves: readonly WasmArray[], offsets: readonly number[], acc: Float64Array | Float32Array, count: number): void;
}

/** An operand's or result's array: float32 values, or bools as bytes 0 or 1. */
export type WasmArray = Float32Array<ArrayBufferLike> | Uint8Array<ArrayBufferLike>;

const compiled = new Map<string, WasmElementwiseKernel | null>();
const COMPILED_LIMIT = 1024;
let calls = 0;

/** Calls of WebAssembly elementwise kernels through `run` so far (for tests: that work took this path). */
export function elementwiseKernelCalls(): number {
  return calls;
}

/** The kernel cached under `key` (null: it cannot be made), or undefined if none is yet. */
export function cachedElementwiseKernel(key: string): WasmElementwiseKernel | null | undefined {
  return compiled.get(key);
}

/**
 * The kernel of `spec` (cached under `key`, which must determine the spec), or null where
 * WebAssembly SIMD is missing, the engine refuses to compile it, or it computes something the
 * kernels do not (then the caller runs its JavaScript kernel).
 */
export function elementwiseKernel(key: string, spec: WasmKernelSpec): WasmElementwiseKernel | null {
  const hit = compiled.get(key);
  if (hit !== undefined) return hit;
  let kernel: WasmElementwiseKernel | null = null;
  // The most a call lays out is one whole pass (every count is a multiple of every period, so a
  // period longer than a pass makes the call at least a pass long): only row operands of
  // enormous periods, each copied whole, can overflow the memory, whatever the count.
  const plan = passPlan(spec);
  if (wasmSimdSupported() && plan.bytes <= ELEMENTWISE_MEMORY_BYTES) {
    try {
      const shared = onHeap();
      // A heap full of live arrays may have no room for the scratch a call of this kernel would
      // grow this thread's to (the call would throw where the JavaScript kernel computes): then
      // the kernel is not made, nor cached, and the caller runs its JavaScript kernel (a compiled
      // program keeps it); a later call, when arrays have been freed, tries again. Not a refusal
      // of the module (cpuKernelInfo's wasmRefusals): the memory is in use. (Checked, not taken:
      // the scratch is taken by the first call, as before, which keeps the heap's layout.)
      if (shared && (heapScratch?.bytes ?? 0) < plan.bytes && !cpuHeap()!.fits(plan.bytes)) return null;
      if (shared) heapPassBytes = Math.max(heapPassBytes, plan.bytes);
      const bytes = elementwiseModule(spec, MAXIMUM_PAGES, shared);
      const instance = wasmElementwiseInstance(bytes, shared);
      let sumView: Float64Array | null = null;
      kernel = {
        bytes,
        shared,
        run(leaves, offsets, outputs, count) {
          calls++;
          instance.passes(leaves, offsets, outputs, 0, plan, 0, count);
        },
        sum(leaves, offsets, acc, count) {
          calls++;
          if (plan.sumRows > 0) {
            if (!(acc instanceof Float64Array) || acc.length * plan.sumRows !== count) throw new Error(`internal: a sum of rows of ${plan.sumRows} into ${acc.length} ${acc.constructor.name} values from ${count}`);
            acc.fill(0);
            instance.passes(leaves, offsets, [acc], 0, plan, 0, count);
            return;
          }
          // The row of doubles starts from zeros; each pass adds its elements to the same doubles
          // (passes are whole rows).
          const zeroed = instance.heap(plan.bytes);
          const at = instance.scratchAt() + plan.outAt[0]!;
          zeroed.fill(0, at, at + 2 * acc.length);
          instance.passes(leaves, offsets, [], 0, plan, 0, count);
          // A view of the row of doubles, made again only when the memory or the row moves.
          const heap = instance.heap(plan.bytes);
          if (sumView === null || sumView.buffer !== heap.buffer || sumView.byteOffset !== at * 4 || sumView.length !== acc.length) {
            sumView = new Float64Array(heap.buffer, at * 4, acc.length);
          }
          acc.set(sumView); // rounded to float32 where acc is float32, as a store rounds
        },
      };
    } catch (e) {
      if (!(e instanceof WasmUnsupported) && !(e instanceof WebAssembly.CompileError) && !(e instanceof RangeError)) throw e;
      // WasmUnsupported: the generator declines the spec (not a refusal).
      if (!(e instanceof WasmUnsupported)) noteWasmRefusal(`the elementwise kernel ${key.length > 300 ? `${key.slice(0, 300)}…` : key}`, e);
      kernel = null;
    }
  }
  compiled.set(key, kernel);
  if (compiled.size > COMPILED_LIMIT) compiled.delete(compiled.keys().next().value!);
  return kernel;
}
