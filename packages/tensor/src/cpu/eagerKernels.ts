// The CPU backend's eager kernels for elementwise ops, casts and reductions: one specialised
// loop per op, dtypes and layout kind, generated from the expression table (jsCode.ts) and
// cached, with shapes and strides as arguments so one function serves every shape of its kind.
// No per-element function calls: the op is written into the loop.
//
// Layout kinds of an elementwise operand: dense (row-major, the output's shape: read at the
// output's index), scalar (a broadcast of one element: read once, before the loop) or strided (a
// broadcast view read through its strides). Kernels with only dense and scalar operands are one
// flat loop; others walk the output's axes (after merging axes that every operand steps through
// contiguously) with one running offset per strided operand.
//
// Reductions accumulate in doubles and visit each output's elements in row-major order of the
// input, the order compiled programs follow too, so a reduction gives the same bits eagerly and
// under jit. Reduced axes that come last make one loop per output with the accumulator in a
// local; other patterns walk the input in order, accumulating into a scratch row of doubles. A
// broadcast view is reduced through its strides (no dense copy), each output's terms in the same
// order.

import type { DType, TypedArray } from '../dtype.js';
import {
  ELEMENTWISE_OPS, type ElementwiseOp, argReplaceCondition, reduceCombineExpression, reduceIdentity, scanCombineExpression, scanIdentity,
} from '../expression.js';
import type { ArgReducePrimitive, ReducePrimitive, ScanPrimitive } from '../primitives.js';
import { stridesOf } from '../shape.js';
import { buildFunction, jsCast, jsElementwise, jsLiteral, renderJs } from './jsCode.js';
import { UNROLL_MAX } from './jsWriter.js';
import { eagerFastMath, eagerWasmColumnSum, eagerWasmElementwise } from './wasmPlan.js';

/** An elementwise operand: its array and, for a view, its strides (null: dense, output-shaped). */
export interface EagerOperand {
  readonly arr: TypedArray;
  readonly strides: readonly number[] | null;
  readonly dtype: DType;
}

type Kind = 'd' | 's' | 'v';
type FlatKernel = (out: TypedArray, n: number, ...inputs: TypedArray[]) => void;
type StridedKernel = (out: TypedArray, geometry: readonly number[], ...inputs: TypedArray[]) => void;

const kernels = new Map<string, unknown>();
/** The flat elementwise kernels by elementwiseInto's integer key (each also in `kernels`). */
const flatKernels = new Map<number, unknown>();
/** Each op's number in elementwiseInto's integer key. */
const ELEMENTWISE_OP_INDEX: ReadonlyMap<ElementwiseOp | 'cast', number> = new Map([...ELEMENTWISE_OPS, 'cast' as const].map((op, i) => [op, i]));

/** A dtype's number in elementwiseInto's integer key (DTYPES has four). */
function dtypeIndex(dtype: DType): number {
  return dtype === 'float32' ? 0 : dtype === 'float64' ? 1 : dtype === 'int32' ? 2 : 3;
}

function cached<F>(key: string, make: () => string): F {
  let f = kernels.get(key);
  if (f === undefined) {
    f = buildFunction<F>(make());
    kernels.set(key, f);
  }
  return f as F;
}

/**
 * The op applied to loaded operand values a0, a1, ... (stored into `out`, which rounds); `fast`:
 * its float32 exp, log1p, log or sigmoid by the fast forms (setCpuFastMath, eagerFastMath).
 */
function opExpression(op: ElementwiseOp | 'cast', inputs: readonly EagerOperand[], outDType: DType, fast: boolean): string {
  const args = inputs.map((_, k) => `a${k}`);
  if (op === 'cast') return jsCast(inputs[0]!.dtype, outDType, args[0]!, false);
  return jsElementwise(op, inputs[op === 'where' ? 1 : 0]!.dtype, args, false, fast);
}

/**
 * The output's axes with every operand's strides, size-1 axes dropped and neighbouring axes
 * merged where every operand (and the dense output) steps through them contiguously.
 */
function collapse(shape: readonly number[], strides: readonly (readonly number[])[]): { extents: number[]; strides: number[][] } {
  const extents: number[] = [];
  const out: number[][] = strides.map(() => []);
  shape.forEach((d, axis) => {
    if (d === 1) return;
    const last = extents.length - 1;
    if (last >= 0 && strides.every((s, k) => out[k]![last] === s[axis]! * d)) {
      extents[last] = extents[last]! * d;
      strides.forEach((s, k) => (out[k]![last] = s[axis]!));
      return;
    }
    extents.push(d);
    strides.forEach((s, k) => out[k]!.push(s[axis]!));
  });
  return { extents, strides: out };
}

/** Whether a view reads one element wherever it is read (stride 0, or extent 1, on every axis). */
function isScalarView(strides: readonly number[], shape: readonly number[]): boolean {
  for (let i = 0; i < strides.length; i++) if (strides[i] !== 0 && shape[i] !== 1) return false;
  return true;
}

/** out = op(inputs) over `shape`; `out` is dense. */
export function elementwiseInto(op: ElementwiseOp | 'cast', inputs: readonly EagerOperand[], outDType: DType, shape: readonly number[], out: TypedArray): void {
  const n = out.length;
  if (n === 0) return;
  // Large float32 and bool work: the WebAssembly kernel (same bits) where it qualifies.
  if (op !== 'cast' && (out instanceof Float32Array || (outDType === 'bool' && out instanceof Uint8Array)) && eagerWasmElementwise(op, inputs, shape, out)) return;
  // The flat kernels' cache key is a small integer (op, dtypes, operand kinds, fast math), built by plain
  // loops: this runs for every eager elementwise op, and a string key cost a string built,
  // flattened and hashed each time. The text key is made only on a miss, or for strided kernels.
  const opIndex = ELEMENTWISE_OP_INDEX.get(op);
  if (opIndex === undefined || inputs.length > 3) throw new Error(`internal: no eager elementwise kernel for '${op}' of ${inputs.length} operand(s)`);
  let flatKey = (opIndex * 4 + dtypeIndex(outDType)) * 4 + inputs.length;
  let strided = false;
  for (let k = 0; k < inputs.length; k++) {
    const x = inputs[k]!;
    const kind = x.strides === null ? 0 : n === 1 || isScalarView(x.strides, shape) ? 1 : 2;
    if (kind === 2) strided = true;
    flatKey = (flatKey * 4 + kind) * 4 + dtypeIndex(x.dtype);
  }
  const fast = op !== 'cast' && eagerFastMath(op, inputs);
  const mode = fast ? '|fast' : '';
  flatKey = flatKey * 2 + (fast ? 1 : 0);
  if (!strided) {
    let kernel = flatKernels.get(flatKey) as FlatKernel | undefined;
    if (kernel === undefined) {
      const kinds = inputs.map((x): Kind => (x.strides === null ? 'd' : 's'));
      const dtypes = inputs.map((x) => `<${x.dtype}`).join('');
      kernel = cached<FlatKernel>(`flat|${op}|${outDType}${dtypes}|${kinds.join('')}${mode}`, () => flatSource(op, inputs, outDType, kinds, fast));
      flatKernels.set(flatKey, kernel);
    }
    switch (inputs.length) {
      case 1: kernel(out, n, inputs[0]!.arr); return;
      case 2: kernel(out, n, inputs[0]!.arr, inputs[1]!.arr); return;
      default: kernel(out, n, inputs[0]!.arr, inputs[1]!.arr, inputs[2]!.arr); return;
    }
  }
  // Strided: dense operands step like the output; scalars are read once.
  const kindText = inputs.map((x): Kind => (x.strides === null ? 'd' : n === 1 || isScalarView(x.strides, shape) ? 's' : 'v')).join('');
  const dtypes = outDType + inputs.map((x) => `<${x.dtype}`).join('');
  const dense = stridesOf(shape);
  const viewed = inputs.flatMap((x, k) => (kindText[k] === 'v' ? [x.strides!] : []));
  const { extents, strides } = collapse(shape, [dense, ...viewed]);
  const geometry = [...extents, ...strides.slice(1).flat()];
  const kernel = cached<StridedKernel>(`strided|${op}|${dtypes}|${kindText}|${extents.length}${mode}`, () => stridedSource(op, inputs, outDType, [...kindText] as Kind[], extents.length, fast));
  switch (inputs.length) {
    case 1: kernel(out, geometry, inputs[0]!.arr); return;
    case 2: kernel(out, geometry, inputs[0]!.arr, inputs[1]!.arr); return;
    default: kernel(out, geometry, inputs[0]!.arr, inputs[1]!.arr, inputs[2]!.arr); return;
  }
}

function flatSource(op: ElementwiseOp | 'cast', inputs: readonly EagerOperand[], outDType: DType, kinds: readonly Kind[], fast: boolean): string {
  const params = inputs.map((_, k) => `x${k}`);
  const hoisted = kinds.flatMap((kind, k) => (kind === 's' ? [`const a${k} = x${k}[0];`] : []));
  const loads = kinds.flatMap((kind, k) => (kind === 'd' ? [`const a${k} = x${k}[i];`] : []));
  return `function ${op}_flat(out, n, ${params.join(', ')}) {
  ${hoisted.join('\n  ')}
  for (let i = 0; i < n; i++) {
    ${loads.join(' ')}
    out[i] = ${opExpression(op, inputs, outDType, fast)};
  }
}`;
}

function stridedSource(op: ElementwiseOp | 'cast', inputs: readonly EagerOperand[], outDType: DType, kinds: readonly Kind[], rank: number, fast: boolean): string {
  const params = inputs.map((_, k) => `x${k}`);
  const views = inputs.map((_, k) => k).filter((k) => kinds[k] === 'v');
  const lines: string[] = [];
  for (let d = 0; d < rank; d++) lines.push(`const d${d} = g[${d}];`);
  views.forEach((k, j) => {
    for (let d = 0; d < rank; d++) lines.push(`const t${k}_${d} = g[${rank + j * rank + d}];`);
  });
  kinds.forEach((kind, k) => {
    if (kind === 's') lines.push(`const a${k} = x${k}[0];`);
  });
  lines.push('let i = 0;');
  // One running offset per strided operand and axis: p{k}_{d} starts at its enclosing axis' offset.
  const loads = kinds.map((kind, k) => (kind === 'd' ? `const a${k} = x${k}[i];` : kind === 'v' ? `const a${k} = x${k}[p${k}_${rank - 1}];` : '')).filter(Boolean);
  let body = `${loads.join(' ')}\n  out[i] = ${opExpression(op, inputs, outDType, fast)};`;
  for (let d = rank - 1; d >= 0; d--) {
    const init = views.map((k) => `, p${k}_${d} = ${d === 0 ? '0' : `p${k}_${d - 1}`}`).join('');
    const step = views.map((k) => `, p${k}_${d} += t${k}_${d}`).join('');
    const inner = d === rank - 1 ? ', i++' : '';
    body = `for (let c${d} = 0${init}; c${d} < d${d}; c${d}++${step}${inner}) {\n  ${body}\n}`;
  }
  lines.push(body);
  return `function ${op}_strided(out, g, ${params.join(', ')}) {\n${lines.join('\n')}\n}`;
}

// ---------------------------------------------------------------------------------------------
// Reductions

type RowsKernel = (out: TypedArray, x: TypedArray, outer: number, inner: number) => void;
type GeneralKernel = (out: TypedArray, x: TypedArray, acc: Float64Array, geometry: readonly number[]) => void;

let scratch = new Float64Array(1024);

/**
 * The reduction's combining step, `acc ⊕ v` in doubles (a float sum is not rounded until
 * stored). An int32 sum wraps at every step, as on a GPU: a double holds integers exactly only up
 * to 2⁵³, so a running sum of more than 2²² int32s could pass it and drop low bits before the
 * store's wrap (2²³ copies of 2³¹ − 1 summed to −2²² instead of −2²³ ≡ 2²³·(2³¹ − 1) mod 2³²).
 */
export function combineJs(op: ReducePrimitive, dtype: DType, acc: string, v: string, branchless = false): string {
  return renderJs(reduceCombineExpression(op, dtype), [acc, v], dtype === 'int32', branchless);
}

/** The accumulator's starting value as JavaScript. */
export function identityJs(op: ReducePrimitive, dtype: DType): string {
  return jsLiteral(reduceIdentity(op, dtype), dtype === 'float32' ? 'float64' : dtype);
}

/**
 * out = op of `x` (of `shape`) over sorted `axes`; `out` is dense over the kept axes. `x` is dense,
 * or with `strides` a view read through them (element i₀…iₙ at x[Σ iₖ·strides[k]]: a broadcast,
 * reduced without a dense copy of it) in the same order, so with the same bits.
 */
export function reduceInto(op: ReducePrimitive, x: TypedArray, dtype: DType, shape: readonly number[], axes: readonly number[], out: TypedArray, strides: readonly number[] | null = null): void {
  const nOut = out.length;
  if (nOut === 0) return;
  if (strides) {
    reduceStrided(op, x, dtype, shape, axes, strides, out);
    return;
  }
  // Groups of neighbouring axes of one class (size-1 axes dropped): a dense input steps through
  // each group contiguously.
  const groups: { reduced: boolean; extent: number }[] = [];
  shape.forEach((d, axis) => {
    if (d === 1) return;
    const reduced = axes.includes(axis);
    const last = groups[groups.length - 1];
    if (last && last.reduced === reduced) last.extent *= d;
    else groups.push({ reduced, extent: d });
  });
  const lastKept = groups.map((g) => !g.reduced).lastIndexOf(true);
  const firstReduced = groups.findIndex((g) => g.reduced);
  if (firstReduced < 0 || lastKept < firstReduced) {
    // Kept axes, then reduced ones: one run of the input per output.
    const inner = firstReduced < 0 ? 1 : groups[firstReduced]!.extent;
    const kernel = cached<RowsKernel>(`rows|${op}|${dtype}`, () => rowsSource(op, dtype));
    kernel(out, x, nOut, inner);
    return;
  }
  // A float32 sum over leading axes (a column sum, like a bias gradient): the WebAssembly kernel
  // adds each element to the same double in the same order as the loop below.
  if (op === 'sum' && groups.length === 2 && groups[0]!.reduced && out instanceof Float32Array && x instanceof Float32Array && eagerWasmColumnSum(x, groups[0]!.extent * nOut, out)) return;
  // A few reduced elements between kept axes (a pool's window taps, [N·C, taps, Ho·Wo]): each
  // output's terms in a local, the same order and doubles as the walk below, selects without a
  // branch (compile.ts unrolls the same reductions).
  if (groups.length === 3 && !groups[0]!.reduced && groups[1]!.reduced && groups[1]!.extent <= UNROLL_MAX) {
    const kernel = cached<MiddleKernel>(`middle|${op}|${dtype}`, () => middleSource(op, dtype));
    kernel(out, x, groups[0]!.extent, groups[1]!.extent, groups[2]!.extent);
    return;
  }
  const { outStrides, pattern } = accumulatorLayout(groups, nOut);
  const kernel = cached<GeneralKernel>(`general|${op}|${dtype}|${pattern}`, () => generalSource(op, dtype, pattern));
  kernel(out, x, scratch, [nOut, ...groups.map((g) => g.extent), ...outStrides]);
}

type MiddleKernel = (out: TypedArray, x: TypedArray, outer: number, reduced: number, inner: number) => void;

/** out[o, j] = op over r of x[o, r, j] (reduceInto's few reduced elements between kept axes). */
function middleSource(op: ReducePrimitive, dtype: DType): string {
  return `function ${op}_middle(out, x, outer, reduced, inner) {
  let k = 0;
  for (let o = 0; o < outer; o++) {
    const base = o * reduced * inner;
    for (let j = 0; j < inner; j++, k++) {
      let acc = ${identityJs(op, dtype)};
      for (let r = 0, i = base + j; r < reduced; r++, i += inner) {
        const v = x[i];
        acc = ${combineJs(op, dtype, 'acc', 'v', true)};
      }
      out[k] = acc;
    }
  }
}`;
}

/**
 * For a loop nest over axis groups: each group's stride in the output (0 for a reduced group),
 * its pattern of reduced (R) and kept (K) groups, the generated kernels' cache key; the scratch
 * row of doubles grown to hold `nOut` accumulators.
 */
function accumulatorLayout(groups: readonly { reduced: boolean; extent: number }[], nOut: number): { outStrides: number[]; pattern: string } {
  if (scratch.length < nOut) scratch = new Float64Array(Math.max(nOut, 2 * scratch.length));
  const outStrides: number[] = [];
  let stride = 1;
  for (let g = groups.length - 1; g >= 0; g--) {
    outStrides[g] = groups[g]!.reduced ? 0 : stride;
    if (!groups[g]!.reduced) stride *= groups[g]!.extent;
  }
  return { outStrides, pattern: groups.map((g) => (g.reduced ? 'R' : 'K')).join('') };
}

/**
 * reduceInto of a view, each element read through the view's strides: a loop nest over the axes
 * (in row-major order, or with the kept axes outside, below) accumulating into `scratch` at its
 * output's offset (in a local over a reduced innermost run). Each output gets the same terms in
 * the same order (row-major over the reduced axes), in the same doubles (int32 wrapping at every
 * step), as from a dense copy of the view, so the same bits; the copy's memory and time are saved.
 */
function reduceStrided(op: ReducePrimitive, x: TypedArray, dtype: DType, shape: readonly number[], axes: readonly number[], strides: readonly number[], out: TypedArray): void {
  const nOut = out.length;
  const dims = shape.flatMap((d, axis) => (d === 1 ? [] : [{ reduced: axes.includes(axis), extent: d, stride: strides[axis]! }]));
  // Each output's terms come in row-major order of the reduced axes whatever the kept axes' place
  // in the loop nest: where every reduced axis ahead of a kept one is a broadcast (stride 0, the
  // same elements again), the kept axes go outside, so that each output's run is summed in a
  // local (a bias-like row broadcast summed over its rows: one run of the row per output).
  if (dims.every((g, i) => !g.reduced || g.stride === 0 || dims.slice(i).every((h) => h.reduced))) dims.sort((a, b) => Number(a.reduced) - Number(b.reduced));
  // Neighbouring axes of one class merged where the view steps through them as one.
  const groups: typeof dims = [];
  for (const { reduced, extent, stride } of dims) {
    const last = groups[groups.length - 1];
    if (last && last.reduced === reduced && last.stride === stride * extent) {
      last.extent *= extent;
      last.stride = stride;
    } else groups.push({ reduced, extent, stride });
  }
  // One element (every extent 1): a reduction of one term.
  if (groups.length === 0) groups.push({ reduced: true, extent: 1, stride: 0 });
  const { outStrides, pattern } = accumulatorLayout(groups, nOut);
  const kernel = cached<GeneralKernel>(`strided|${op}|${dtype}|${pattern}`, () => stridedReduceSource(op, dtype, pattern));
  kernel(out, x, scratch, [nOut, ...groups.map((g) => g.extent), ...outStrides, ...groups.map((g) => g.stride)]);
}

function stridedReduceSource(op: ReducePrimitive, dtype: DType, pattern: string): string {
  const rank = pattern.length;
  const lines = ['const nOut = g[0];'];
  for (let d = 0; d < rank; d++) lines.push(`const e${d} = g[${1 + d}], s${d} = g[${1 + rank + d}], t${d} = g[${1 + 2 * rank + d}];`);
  lines.push(`acc.fill(${identityJs(op, dtype)}, 0, nOut);`);
  // q{d}: the output offset at depth d (kept groups advance it); p{d}: the input's, by the view's strides.
  const q = (d: number): string => {
    for (let k = d; k >= 0; k--) if (pattern[k] === 'K') return `q${k}`;
    return '0';
  };
  const p = (d: number): string => (d >= 0 ? `p${d}` : '0');
  const last = rank - 1;
  // The innermost group: a reduced run adds into a local, a kept one into each output's slot.
  let body = pattern[last] === 'R'
    ? `{ let a = acc[${q(last)}];\nfor (let c${last} = 0, p${last} = ${p(last - 1)}; c${last} < e${last}; c${last}++, p${last} += t${last}) { const v = x[p${last}]; a = ${combineJs(op, dtype, 'a', 'v')}; }\nacc[${q(last)}] = a; }`
    : `for (let c${last} = 0, q${last} = ${q(last - 1)}, p${last} = ${p(last - 1)}; c${last} < e${last}; c${last}++, q${last} += s${last}, p${last} += t${last}) { const v = x[p${last}]; const a = acc[q${last}]; acc[q${last}] = ${combineJs(op, dtype, 'a', 'v')}; }`;
  for (let d = last - 1; d >= 0; d--) {
    body = pattern[d] === 'K'
      ? `for (let c${d} = 0, q${d} = ${q(d - 1)}, p${d} = ${p(d - 1)}; c${d} < e${d}; c${d}++, q${d} += s${d}, p${d} += t${d}) {\n  ${body}\n}`
      : `for (let c${d} = 0, p${d} = ${p(d - 1)}; c${d} < e${d}; c${d}++, p${d} += t${d}) {\n  ${body}\n}`;
  }
  lines.push(body, 'for (let o = 0; o < nOut; o++) out[o] = acc[o];');
  return `function ${op}_strided(out, x, acc, g) {\n${lines.join('\n')}\n}`;
}

function rowsSource(op: ReducePrimitive, dtype: DType): string {
  return `function ${op}_rows(out, x, outer, inner) {
  let i = 0;
  for (let o = 0; o < outer; o++) {
    let acc = ${identityJs(op, dtype)};
    for (let r = 0; r < inner; r++) {
      const v = x[i++];
      acc = ${combineJs(op, dtype, 'acc', 'v')};
    }
    out[o] = acc;
  }
}`;
}

function generalSource(op: ReducePrimitive, dtype: DType, pattern: string): string {
  const rank = pattern.length;
  const lines = ['const nOut = g[0];'];
  for (let d = 0; d < rank; d++) lines.push(`const e${d} = g[${1 + d}], s${d} = g[${1 + rank + d}];`);
  lines.push(`acc.fill(${identityJs(op, dtype)}, 0, nOut);`, 'let i = 0;');
  // q{d}: the output offset at depth d (kept groups advance it, reduced ones leave it).
  const q = (d: number): string => {
    for (let k = d; k >= 0; k--) if (pattern[k] === 'K') return `q${k}`;
    return '0';
  };
  let body = `{ const v = x[i++]; const a = acc[${q(rank - 1)}]; acc[${q(rank - 1)}] = ${combineJs(op, dtype, 'a', 'v')}; }`;
  for (let d = rank - 1; d >= 0; d--) {
    body = pattern[d] === 'K'
      ? `for (let c${d} = 0, q${d} = ${q(d - 1)}; c${d} < e${d}; c${d}++, q${d} += s${d}) {\n  ${body}\n}`
      : `for (let c${d} = 0; c${d} < e${d}; c${d}++) {\n  ${body}\n}`;
  }
  lines.push(body, 'for (let o = 0; o < nOut; o++) out[o] = acc[o];');
  return `function ${op}_general(out, x, acc, g) {\n${lines.join('\n')}\n}`;
}

// ---------------------------------------------------------------------------------------------
// Scans and arg-reductions along one axis: the input seen as [outer, extent, inner], one walk of
// the axis per (outer, inner) pair.

type AxisKernel = (out: TypedArray, x: TypedArray, outer: number, extent: number, inner: number) => void;

function axisGeometry(shape: readonly number[], axis: number): [number, number, number] {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return [outer, shape[axis]!, inner];
}

/**
 * out = the inclusive scan of dense `x` along `axis` (from the end when `reverse`). Floats run in
 * doubles, rounded only when stored (as reductions); int32 wraps at every step, as on a GPU. With
 * trailing axes (inner > 1) the scan walks whole rows, keeping one running double per column in
 * `acc`, so that it reads and writes memory in order (a column at a time strode by `inner`, ~4×
 * slower along the first axis of a 1024 × 1024 array); each column's steps are the same.
 */
export function scanInto(op: ScanPrimitive, x: TypedArray, dtype: DType, shape: readonly number[], axis: number, reverse: boolean, out: TypedArray): void {
  if (out.length === 0) return;
  const kernel = cached<(out: TypedArray, x: TypedArray, outer: number, extent: number, inner: number, acc: Float64Array) => void>(`scan|${op}|${dtype}|${reverse}`, () => {
    const step = renderJs(scanCombineExpression(op, dtype), ['a', 'x[p]'], dtype === 'int32', false);
    const [from, cond, next] = reverse ? ['extent - 1', 'j >= 0', 'j--'] : ['0', 'j < extent', 'j++'];
    return `function ${op}_scan(out, x, outer, extent, inner, acc) {
  for (let o = 0; o < outer; o++) {
    const base = o * extent * inner;
    if (inner === 1) {
      let a = ${scanIdentity(op)};
      for (let j = ${from}; ${cond}; ${next}) {
        const p = base + j;
        a = ${step};
        out[p] = a;
      }
      continue;
    }
    acc.fill(${scanIdentity(op)}, 0, inner);
    for (let j = ${from}; ${cond}; ${next}) {
      const row = base + j * inner;
      for (let k = 0; k < inner; k++) {
        const p = row + k;
        let a = acc[k];
        a = ${step};
        acc[k] = a;
        out[p] = a;
      }
    }
  }
}`;
  });
  const [outer, extent, inner] = axisGeometry(shape, axis);
  // The running doubles: the reductions' scratch row (grown, never allocated per call).
  if (scratch.length < inner) scratch = new Float64Array(Math.max(inner, 2 * scratch.length));
  kernel(out, x, outer, extent, inner, scratch);
}

/**
 * JavaScript that sets `at` to the index of the extreme of the `extent` elements from x[base], a
 * step of `step` apart (argReplaceCondition: ties keep the first, the first NaN wins and ends the
 * walk), for the dense and the strided kernels alike.
 */
function argWalkJs(op: ArgReducePrimitive, dtype: DType, step: string): string {
  const replace = renderJs(argReplaceCondition(op, dtype), ['best', 'v'], false);
  return `let best = x[base];
    let at = 0;
    if (best === best) {
      for (let j = 1, p = base + ${step}; j < extent; j++, p += ${step}) {
        const v = x[p];
        if (${replace}) {
          best = v;
          at = j;
          if (best !== best) break;
        }
      }
    }`;
}

/**
 * out = the first index of the extreme of `x` along `axis` (argReplaceCondition; the first NaN
 * wins). `x` is dense, or with `strides` a view read through them (a broadcast, without a dense copy).
 */
export function argReduceInto(op: ArgReducePrimitive, x: TypedArray, dtype: DType, shape: readonly number[], axis: number, out: TypedArray, strides: readonly number[] | null = null): void {
  if (out.length === 0) return;
  if (strides) {
    argReduceStrided(op, x, dtype, shape, axis, strides, out);
    return;
  }
  const kernel = cached<AxisKernel>(`arg|${op}|${dtype}`, () => `function ${op}_axis(out, x, outer, extent, inner) {
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const base = o * extent * inner + k;
      ${argWalkJs(op, dtype, 'inner')}
      out[o * inner + k] = at;
    }
  }
}`);
  kernel(out, x, ...axisGeometry(shape, axis));
}

/**
 * argReduceInto of a view: for each output, in row-major order of the kept axes (a counter over
 * them, stepping the view's strides), one walk along `axis` by its stride, as the dense kernel's.
 */
function argReduceStrided(op: ArgReducePrimitive, x: TypedArray, dtype: DType, shape: readonly number[], axis: number, strides: readonly number[], out: TypedArray): void {
  const kernel = cached<(out: TypedArray, x: TypedArray, nOut: number, extent: number, step: number, keptExtents: number[], keptStrides: number[]) => void>(`argStrided|${op}|${dtype}`, () => `function ${op}_strided(out, x, nOut, extent, step, ke, ks) {
  const rank = ke.length;
  const idx = new Array(rank).fill(0);
  let base = 0;
  for (let o = 0; o < nOut; o++) {
    ${argWalkJs(op, dtype, 'step')}
    out[o] = at;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      base += ks[d];
      if (idx[d] < ke[d]) break;
      base -= ks[d] * ke[d];
      idx[d] = 0;
    }
  }
}`);
  const kept = shape.map((_, k) => k).filter((k) => k !== axis && shape[k] !== 1);
  kernel(out, x, out.length, shape[axis]!, strides[axis]!, kept.map((k) => shape[k]!), kept.map((k) => strides[k]!));
}
