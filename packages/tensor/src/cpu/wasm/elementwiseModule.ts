// Elementwise kernels in WebAssembly SIMD, generated from the expression table (../../expression.ts)
// like the JavaScript ones (../jsCode.ts), for float32 chains: four elements per instruction,
// selects as bit selects (no branch to mispredict), exp/log/log1p through f64x2 transcriptions of
// the algorithms the JavaScript engine's Math functions use (mathF64x2.ts).
//
// Same bits as the JavaScript kernels. Those compute each op in doubles and round its value to
// float32. Here +, −, ×, ÷ and √ run in f32x4 directly, which gives the same value: for operands
// that are float32 values, rounding the exact result once to float32, or first to double and then
// to float32, agree (double has more than 2·24 + 2 bits, so the second rounding is innocuous). A
// math function runs on the doubles of its float32 operands, with the double result rounded to
// float32 as Math.fround does; comparisons of float32 values are the same in either width; bools
// live in lanes as all-ones or zero masks.
//
// A kernel reads float32 arrays laid out as its output is (`full`), repeating with a period that
// is a multiple of 4 (`row`: a broadcast of trailing axes, like a bias), or one value (`scalar`),
// and writes float32 arrays. Operands are copied into the module's memory and results out of it:
// O(n) copies next to work that is O(n) too, but 5–30 times heavier per element.

import { type DType } from '../../dtype.js';
import { type Expr, type MathFunction, expressionDType } from '../../expression.js';
import { type FunctionBody, I32, ModuleBuilder, V128, type ValType } from './assembler.js';
import { wasmSimdSupported } from './features.js';
import { emitExpF64x2, emitLog1pF64x2, emitLogF64x2 } from './mathF64x2.js';

/** How a kernel's operand is read at output element i. */
export type WasmLeafPattern =
  /** Element i (an array laid out as the output). */
  | { readonly kind: 'full' }
  /** Element i mod period, period a multiple of 4 (a broadcast over leading axes). */
  | { readonly kind: 'row'; readonly period: number }
  /** Element 0 (a broadcast of one value). */
  | { readonly kind: 'scalar' };

/** One value of the kernel: an operand read from memory, or an expression over earlier values. */
export type WasmNode =
  | { readonly kind: 'leaf'; readonly leaf: number }
  /** `expr` (of the expression table) with its operand k being node `args[k]`. */
  | { readonly kind: 'expr'; readonly expr: Expr; readonly args: readonly number[] };

export interface WasmKernelSpec {
  readonly leaves: readonly WasmLeafPattern[];
  /** Values in an order where every expression's arguments come first. */
  readonly nodes: readonly WasmNode[];
  /** The nodes stored, in the order of the kernel's output arrays. */
  readonly outputs: readonly number[];
}

/** Thrown while emitting for what the kernels do not compute; the caller keeps the JavaScript kernel. */
export class WasmUnsupported extends Error {}

/**
 * Math functions on f64x2 values: each leaves f(x) of the two lanes of V128 local `x` on the
 * stack, bit-identical to the JavaScript engine's Math function (mathF64x2.ts).
 */
const MATH: Partial<Record<MathFunction, (f: FunctionBody, x: number) => void>> = { exp: emitExpF64x2, log: emitLogF64x2, log1p: emitLog1pF64x2, sigmoid: emitSigmoidF64x2 };

/**
 * The logistic function as the JavaScript kernels' helper computes it (jsCode.ts): e = e^(−|x|),
 * then 1/(1 + e) for x ≥ 0 and e/(1 + e) below, in doubles, so the same bits.
 */
function emitSigmoidF64x2(f: FunctionBody, x: number): void {
  const e = f.local(V128);
  const d = f.local(V128);
  f.get(x).f64x2Abs().f64x2Neg().set(e);
  emitExpF64x2(f, e);
  f.set(e);
  f.f64Const(1).f64x2Splat().get(e).f64x2Add().set(d);
  f.f64Const(1).f64x2Splat().get(d).f64x2Div();
  f.get(e).get(d).f64x2Div();
  f.get(x).f64Const(0).f64x2Splat().f64x2Ge();
  f.v128Bitselect();
}

const padded = (n: number) => Math.ceil(n / 4) * 4;

/** The byte layout of a call of `count` elements in the memory: each operand's and each output's region. */
interface CallLayout {
  readonly leafBytes: number[];
  readonly outputBytes: number[];
  /** Bytes of memory the call uses. */
  readonly bytes: number;
}

function callLayout(spec: WasmKernelSpec, count: number): CallLayout {
  let at = 0;
  const region = (elements: number) => {
    const start = at;
    at += padded(elements) * 4;
    return start;
  };
  const leafBytes = spec.leaves.map((l) => region(l.kind === 'full' ? count : l.kind === 'row' ? l.period : 1));
  const outputBytes = spec.outputs.map(() => region(count));
  return { leafBytes, outputBytes, bytes: at };
}

const f32Splat = (value: number): number[] => {
  const bytes = new Uint8Array(new Float32Array([value, value, value, value]).buffer);
  return Array.from(bytes);
};
const MASK_TRUE = new Array<number>(16).fill(0xff);
const ZERO = new Array<number>(16).fill(0);
/** Lanes 2, 3 of a vector moved to lanes 0, 1. */
const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
/** Lanes 0, 1 of the first vector, then lanes 0, 1 of the second. */
const JOIN_LOW = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

/**
 * Emits `e` with its operands in locals `args`, leaving one v128 on the stack: a float32 value as
 * f32x4, a bool or a condition as a mask.
 */
function emitExpr(f: FunctionBody, e: Expr, args: readonly number[]): void {
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
      emitExpr(f, e.arg, args);
      f.f32x4Neg();
      return;
    case 'arithmetic':
      if (e.dtype !== 'float32') throw new WasmUnsupported(`arithmetic in ${e.dtype}`);
      emitExpr(f, e.a, args);
      emitExpr(f, e.b, args);
      if (e.op === '+') f.f32x4Add();
      else if (e.op === '-') f.f32x4Sub();
      else if (e.op === '*') f.f32x4Mul();
      else f.f32x4Div();
      return;
    case 'call': {
      if (e.dtype !== 'float32' || e.args.length !== 1 || typeOf(e.args[0]!) !== 'float32') throw new WasmUnsupported(`${e.fn} in ${e.dtype}`);
      if (e.fn === 'sqrt') {
        emitExpr(f, e.args[0]!, args);
        f.f32x4Sqrt();
        return;
      }
      const math = MATH[e.fn];
      if (!math) throw new WasmUnsupported(`math function ${e.fn}`);
      // The two halves as doubles, f in doubles, each rounded to float32, joined again.
      const x = f.local(V128);
      const half = f.local(V128);
      const low = f.local(V128);
      emitExpr(f, e.args[0]!, args);
      f.set(x);
      f.get(x).f64x2PromoteLowF32x4().set(half);
      math(f, half);
      f.f32x4DemoteF64x2Zero().set(low);
      f.get(x).get(x).i8x16Shuffle(HIGH_HALF).f64x2PromoteLowF32x4().set(half);
      f.get(low);
      math(f, half);
      f.f32x4DemoteF64x2Zero();
      f.i8x16Shuffle(JOIN_LOW);
      return;
    }
    case 'compare': {
      const dtype = typeOf(e.a);
      emitExpr(f, e.a, args);
      emitExpr(f, e.b, args);
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
      emitExpr(f, e.arg, args);
      {
        const x = f.local(V128);
        f.tee(x).get(x).f32x4Ne();
      }
      return;
    case 'or':
      emitExpr(f, e.a, args);
      emitExpr(f, e.b, args);
      f.v128Or();
      return;
    case 'select':
      check(e.dtype);
      emitExpr(f, e.ifTrue, args);
      emitExpr(f, e.ifFalse, args);
      emitExpr(f, e.cond, args);
      f.v128Bitselect();
      return;
    case 'condition':
      emitExpr(f, e.cond, args);
      return;
    case 'convert': {
      const from = typeOf(e.arg);
      if (e.dtype === 'float32' && from === 'bool') {
        emitExpr(f, e.arg, args);
        f.v128Const(f32Splat(1)).v128And();
        return;
      }
      if (e.dtype === from && from === 'float32') {
        emitExpr(f, e.arg, args);
        return;
      }
      throw new WasmUnsupported(`conversion from ${from} to ${e.dtype}`);
    }
  }
}

/**
 * The module of one kernel: it imports `env.memory` and exports `run(bytes, leaf₀, …, out₀, …)`,
 * which computes the first `bytes`/4 output elements (in steps of four; regions are padded) from
 * the operands at the given byte addresses. Throws WasmUnsupported for what it cannot compute.
 */
export function elementwiseModule(spec: WasmKernelSpec, maximumPages: number): Uint8Array<ArrayBuffer> {
  for (const l of spec.leaves) if (l.kind === 'row' && (l.period % 4 !== 0 || l.period <= 0)) throw new WasmUnsupported(`a period of ${l.period}`);
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: 1, maximum: maximumPages });
  const params: ValType[] = [I32, ...spec.leaves.map((): ValType => I32), ...spec.outputs.map((): ValType => I32)];
  m.func('run', params, [], (f) => {
    const bytes = 0;
    const leafAt = spec.leaves.map((_, k) => 1 + k);
    const outAt = spec.outputs.map((_, j) => 1 + spec.leaves.length + j);
    const at = f.local(I32);
    const periods = [...new Set(spec.leaves.flatMap((l) => (l.kind === 'row' ? [l.period] : [])))];
    const rowAt = new Map(periods.map((p) => [p, f.local(I32)]));
    const values = spec.nodes.map(() => f.local(V128));
    // Scalars once, before the loop.
    spec.nodes.forEach((n, i) => {
      if (n.kind === 'leaf' && spec.leaves[n.leaf]!.kind === 'scalar') f.get(leafAt[n.leaf]!).v128Load32Splat().set(values[i]!);
    });
    f.block();
    f.get(bytes).i32Eqz().brIf(0);
    f.loop();
    spec.nodes.forEach((n, i) => {
      if (n.kind === 'leaf') {
        const l = spec.leaves[n.leaf]!;
        if (l.kind === 'scalar') return;
        f.get(l.kind === 'row' ? rowAt.get(l.period)! : at).get(leafAt[n.leaf]!).i32Add().v128Load().set(values[i]!);
        return;
      }
      emitExpr(f, n.expr, n.args.map((a) => values[a]!));
      f.set(values[i]!);
    });
    spec.outputs.forEach((node, j) => {
      f.get(at).get(outAt[j]!).i32Add().get(values[node]!).v128Store();
    });
    for (const [period, local] of rowAt) {
      // Advance within the period, back to 0 at its end.
      f.get(local).i32Const(16).i32Add().tee(local).i32Const(0).get(local).i32Const(period * 4).i32Ne().select().set(local);
    }
    f.get(at).i32Const(16).i32Add().tee(at).get(bytes).i32LtU().brIf(0);
    f.end().end();
  });
  return m.encode();
}

// ---------------------------------------------------------------------------------------------
// Running kernels: one memory for all of them, operands copied in and results out.

const PAGE = 65536;
/** 1 GiB: the memory's maximum (engines reserve it as address space, not memory). */
const MAXIMUM_PAGES = 16384;

interface Memory {
  readonly memory: WebAssembly.Memory;
  f32: Float32Array;
}
let shared: Memory | null | undefined;

function memoryFor(bytes: number): Memory | null {
  if (shared === undefined) {
    shared = null;
    if (wasmSimdSupported()) {
      try {
        const memory = new WebAssembly.Memory({ initial: 1, maximum: MAXIMUM_PAGES });
        shared = { memory, f32: new Float32Array(memory.buffer) };
      } catch {
        shared = null;
      }
    }
  }
  if (!shared) return null;
  if (shared.memory.buffer.byteLength < bytes) {
    shared.memory.grow(Math.ceil((bytes - shared.memory.buffer.byteLength) / PAGE));
    shared.f32 = new Float32Array(shared.memory.buffer);
  }
  return shared;
}

/** A compiled kernel, for outputs of any length. */
export interface WasmElementwiseKernel {
  readonly spec: WasmKernelSpec;
  /**
   * Computes `count` elements of each output: operand k is read from `leaves[k]` starting at
   * `offsets[k]` (count elements, its period, or one, by its pattern); output j is written to
   * `outputs[j]` from 0. A row operand's period must divide `count`.
   */
  run(leaves: readonly Float32Array[], offsets: readonly number[], outputs: readonly Float32Array[], count: number): void;
}

const compiled = new Map<string, WasmElementwiseKernel | null>();
let calls = 0;

/** Calls of WebAssembly elementwise kernels so far (for tests: that work took this path). */
export function elementwiseKernelCalls(): number {
  return calls;
}
const COMPILED_LIMIT = 1024;

/**
 * The kernel of `spec` (cached under `key`, which must determine the spec), or null where
 * WebAssembly SIMD is missing, the engine refuses to compile it, or it computes something the
 * kernels do not (then the caller runs its JavaScript kernel).
 */
export function elementwiseKernel(key: string, spec: WasmKernelSpec): WasmElementwiseKernel | null {
  const hit = compiled.get(key);
  if (hit !== undefined) return hit;
  let kernel: WasmElementwiseKernel | null = null;
  const mem = memoryFor(0);
  if (mem) {
    try {
      const module = new WebAssembly.Module(elementwiseModule(spec, MAXIMUM_PAGES));
      const run = (new WebAssembly.Instance(module, { env: { memory: mem.memory } }).exports as { run: (...args: number[]) => void }).run;
      const args = new Array<number>(1 + spec.leaves.length + spec.outputs.length).fill(0);
      let layoutCount = -1;
      let layout: CallLayout | null = null;
      kernel = {
        spec,
        run(leaves, offsets, outputs, count) {
          if (count !== layoutCount) {
            layout = callLayout(spec, count);
            layoutCount = count;
            args[0] = padded(count) * 4;
            layout.leafBytes.forEach((b, k) => (args[1 + k] = b));
            layout.outputBytes.forEach((b, j) => (args[1 + leaves.length + j] = b));
          }
          calls++;
          const heap = memoryFor(layout!.bytes)!.f32;
          for (let k = 0; k < leaves.length; k++) {
            const l = spec.leaves[k]!;
            const length = l.kind === 'full' ? count : l.kind === 'row' ? l.period : 1;
            const off = offsets[k]!;
            heap.set(leaves[k]!.subarray(off, off + length), layout!.leafBytes[k]! / 4);
          }
          run(...args);
          for (let j = 0; j < outputs.length; j++) {
            const at = layout!.outputBytes[j]! / 4;
            outputs[j]!.set(heap.subarray(at, at + count));
          }
        },
      };
    } catch (e) {
      if (!(e instanceof WasmUnsupported) && !(e instanceof WebAssembly.CompileError) && !(e instanceof RangeError)) throw e;
      kernel = null;
    }
  }
  compiled.set(key, kernel);
  if (compiled.size > COMPILED_LIMIT) compiled.delete(compiled.keys().next().value!);
  return kernel;
}
