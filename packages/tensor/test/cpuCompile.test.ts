// Compiled programs on the CPU (cpu/compile.ts): each fused group of a program is one generated
// loop, and every compiled result equals the program run op by op through the eager kernels
// (`interpretProgram`) bit for bit. Bit-identity is what the lowering promises, not a tolerance:
// every fused value is rounded to its dtype as a store would round it, reductions accumulate in
// doubles in the eager kernel's row-major order, and matmuls call the eager routine.

import { describe, expect, it } from 'vitest';
import {
  type CpuBackend, type CpuHandle, type KernelInfo, Program, type RandomKey, type Tensor, apply, arange, cast, concat, exp, foldIn, getBackend, indexSelect,
  argmax, argmin, cumprod, cumsum, definePrimitive, erf, expm1, floor, log1p, matmul, round, sign, max, pad, permute, profile, randn, randomKey, reshape, sigmoid, slice, softplus, splitKey, sqrt,
  sum, tanh, tensor, traceProgram, where, zeros, setCpuWasm, sin, cos, conv2d, maxPool2d, avgPool2d, broadcastTo, softmax, layerNorm, logsumexp, stack, planFusion, tile, storedValue, full, setCpuThreads,
  memory, mul, reciprocal, add, neg,
} from '../src/index.js';
import { setRangeThreadMinElementsForTesting } from '../src/cpu/rangeThreads.js';
import { gatheredProductsMade, wasmThreads } from '../src/cpu/wasm/wasmMatmul.js';
import { grad, jit } from '@scorch/autograd';
import { CPU_FUSION_OPTIONS } from '../src/cpu/compile.js';
import { refinement } from '../src/cpu/jsWriter.js';
import { BINARY_PRIMITIVES, COMPARE_PRIMITIVES, UNARY_PRIMITIVES } from '../src/primitives.js';
import { type WasmKernelSpec, colRuns, elementwiseKernel, elementwiseKernelCalls, elementwiseRangeSource, rangeUnit, wasmElementwiseInstance } from '../src/cpu/wasm/elementwiseModule.js';
import { type Expr, elementwiseExpression } from '../src/expression.js';
import { buildFunction, renderJs } from '../src/cpu/jsCode.js';
import { planWasmSegment, planWasmSum } from '../src/cpu/wasmPlan.js';
import type { Equation, ProgramVar } from '../src/program.js';
import { expectCompiledMatches } from './programReference.js';
import { bitsOf, canonicalNaNBits } from './reference.js';

const cpu = getBackend('cpu') as CpuBackend;
const keys = splitKey(randomKey(5), 16);
const rn = (shape: number[], i: number, dtype: 'float32' | 'float64' = 'float32') => randn(shape, { key: keys[i]!, dtype });

interface Compared {
  program: Program;
  /** The compiled program's kernels (name, source, equations): the same whatever setCpuWasm says (it picks the path run, not the kernels made). */
  kernels: readonly KernelInfo[];
}

const names = (kernels: readonly KernelInfo[]) => kernels.map((k) => k.name);
const sources = (kernels: readonly KernelInfo[]) => kernels.map((k) => k.source);

/**
 * Traces `f`, runs it compiled and interpreted on the same handles (twice compiled: the second
 * call reuses the held intermediates) and expects every output bit for bit equal. Returns the
 * program and the kernels it compiled to, so tests read kernel names and sources without
 * compiling it again.
 */
function compare(
  f: (xs: readonly Tensor[], ks: readonly RandomKey[]) => Tensor[], args: Tensor[], keyArgs: RandomKey[] = [],
  { anyNaN = false, javascriptReference = false } = {},
): Compared {
  // With anyNaN, every NaN reads as one value (docs/conventions.md, "Which NaN"); all other bits must agree.
  return expectCompiledMatches(cpu, f, args, { keyArgs, bits: anyNaN ? canonicalNaNBits : bitsOf, javascriptReference });
}

/**
 * Compiles `program` and runs it (one output) with WebAssembly on, then twice with it off: the
 * bytes the fallback calls hold beyond what the first call left held (the same after both), and
 * that disposing the program frees everything it held.
 */
function bytesAddedByFallback(program: Program, args: readonly Tensor[]): number {
  const compiled = cpu.compile(program);
  const base = memory().bytes;
  const run = () => cpu.dispose(compiled.run(args.map((t) => t._live('t') as CpuHandle), [], args.map(() => false))[0]!);
  run();
  const held = memory().bytes - base;
  setCpuWasm(false);
  let added: number;
  try {
    run();
    added = memory().bytes - base - held;
    run();
    expect(memory().bytes - base - held).toBe(added);
  } finally {
    setCpuWasm(true);
  }
  compiled.dispose();
  expect(memory().bytes).toBe(base);
  return added;
}

/** A 3 × 3 convolution's columns of x ([2, 3, 9, 10], padding 1), built as conv2d builds them: [2, 27, 90]. */
function columnsOf(x: Tensor): Tensor {
  const p = pad(x, [[0, 0], [0, 0], [1, 1], [1, 1]]);
  const windows: Tensor[] = [];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) windows.push(slice(p, [0, 0, i, j], [2, 3, 9, 10]));
  return stack(windows, 2).reshape([2, 27, 90]);
}

describe('compiled CPU programs equal the eager kernels bit for bit', () => {
  it('an elementwise chain with broadcasting is one generated loop', () => {
    const a = rn([4, 1, 3], 0);
    const b = rn([5, 1], 1);
    const { program, kernels } = compare(([a, b]) => [tanh(a!.mul(b!).add(0.5)).mul(exp(b!.neg())).sub(sigmoid(a!))], [a, b]);
    expect(program.equations.length).toBeGreaterThan(6);
    expect(names(kernels)).toEqual(['fused_elementwise_[4,5,3]x1']);
  });

  it('reads through pads: the range tests on the innermost counter only at a row\'s edges (the loop peeled), the interior without them; the eager bits', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([2, 3, 9, 10], 21, dtype);
      // Padded by 1 on each side of both spatial axes, then computed on: one generated loop.
      const { kernels } = compare(([x]) => [pad(x!, [[0, 0], [0, 0], [1, 1], [1, 1]]).mul(2)], [x]);
      const k = kernels.find((k) => k.name === 'fused_elementwise_[2,3,11,12]x1')!;
      // The innermost loop in three parts: [0, 1) and [11, 12) with the column's tests, [1, 11) without.
      const parts = [...k.source.matchAll(/for \(let (c\d+_3) = (\d+); \1 < (\d+);/g)].map((m) => [Number(m[2]), Number(m[3])]);
      expect(parts, dtype).toEqual([[0, 1], [1, 11], [11, 12]]);
      const interior = k.source.slice(k.source.indexOf('= 1; '), k.source.indexOf('= 11; '));
      expect(interior, dtype).not.toMatch(/c\d+_3 - 1\) >= 0|c\d+_3 - 1\) < 10/);
      // The row's tests stay (not the innermost counter's), in every part.
      expect(interior, dtype).toMatch(/c\d+_2 - 1\) >= 0/);
    }
    // A padded read shifted so that no interior is left on a short row (width 2, padding 3): no peel, the eager bits.
    const y = rn([2, 3, 4, 2], 22, 'float32');
    const { kernels } = compare(([y]) => [pad(y!, [[0, 0], [0, 0], [0, 0], [3, 3]]).add(1)], [y]);
    expect(kernels.some((k) => /for \(let c\d+_3 = 3; /.test(k.source))).toBe(true);
    // And the convolutions' backward passes (nine padded reads an element: col2im), stride 1 and 2.
    const [x, w] = [rn([2, 3, 9, 10], 23, 'float32'), rn([4, 3, 3, 3], 24, 'float32')];
    for (const stride of [1, 2]) {
      compare(([x, w]) => [grad((a: Tensor) => {
        const y = conv2d(a, w!, { padding: 1, stride });
        return y.mul(y).sum();
      })(x!) as Tensor], [x, w]);
    }
  });

  it('selects between computed values run without a branch (SEL), their values kept bit for bit: −0, infinities, NaN payloads; a long reduction\'s combine keeps its branch; the eager bits', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      // Values a select must pass as they are: ±0, ±∞, a NaN with a payload (float32 0x7fc01234 /
      // float64 0x7ff8000000001234), and random ones of both signs.
      const special = dtype === 'float32' ? new Float32Array(new Uint32Array([0x7fc01234]).buffer)[0]! : new Float64Array(new BigUint64Array([0x7ff8000000001234n]).buffer)[0]!;
      const values = [-0, 0, Infinity, -Infinity, special, ...Array.from({ length: 55 }, (_, i) => Math.sin(i * 1.7) * 3)];
      const x = tensor(values, { dtype, shape: [6, 10] });
      const y = rn([6, 10], 34, dtype);
      // A padded read keeps the kernel in JavaScript: relu and a where between two inputs, padded.
      const f = ([x, y]: readonly Tensor[]) => [pad(where(x!.lessEqual(0), 0, x!).add(where(x!.greater(y!), x!, y!).mul(0)), [[1, 1], [2, 0]]), where(x!.greater(y!), x!, y!).max(1)];
      const { kernels, program } = compare(f, [x, y]);
      // The eager ops share these kernels' code: the values are also checked against JavaScript here.
      const compiled = cpu.compile(program);
      const [out] = compiled.run([x._live('t') as CpuHandle, y._live('t') as CpuHandle], [], [false, false]);
      const got = cpu.readSync(out!) as Float32Array | Float64Array;
      const ys = y.dataSync();
      const at = (r: number, c: number) => values[r * 10 + c]!;
      for (let r = 0; r < 8; r++) {
        for (let c = 0; c < 12; c++) {
          const inside = r >= 1 && r < 7 && c >= 2;
          const v = inside ? at(r - 1, c - 2) : 0;
          // relu by where: x ≤ 0 gives +0 (−0 too); NaN is not ≤ 0 and passes with its payload; plus where(x > y, x, y)·0.
          const relu = v <= 0 ? 0 : v;
          const other = inside ? (v > ys[(r - 1) * 10 + c - 2]! ? v : ys[(r - 1) * 10 + c - 2]!) * 0 : 0;
          const want = inside ? (dtype === 'float32' ? Math.fround(relu + other) : relu + other) : 0;
          const e = r * 12 + c;
          expect(Number.isNaN(want) ? Number.isNaN(got[e]!) : Object.is(got[e], want), `${dtype} (${r}, ${c}): ${got[e]} against ${want}`).toBe(true);
        }
      }
      // NaN's payload through the select (row 0, column 4 of x, its relu at (1, 6)).
      const bits = dtype === 'float32' ? new Uint32Array(Float32Array.of(got[18]!).buffer)[0] : new BigUint64Array(Float64Array.of(got[18]!).buffer)[0];
      expect(bits, dtype).toBe(dtype === 'float32' ? 0x7fc01234 : 0x7ff8000000001234n);
      cpu.dispose(out!);
      compiled.dispose();
      const padded = kernels.find((k) => k.name.startsWith('fused_elementwise_[8,12]'))!;
      expect(padded.source, dtype).toMatch(/SEL\[0\] = /);
      expect(padded.source, dtype).not.toMatch(/\? 1 : 0/);
      // A row's maximum over 10 elements (trailing axis): its running value keeps the branch.
      const rowMax = kernels.find((k) => k.name.startsWith('fused_reduceMax_'))!;
      expect(rowMax.source.match(/acc = .*/)![0], dtype).not.toMatch(/SEL\[/);
    }
  });

  it('a select whose condition selects keeps its branch (the inner select would overwrite SEL before the outer one reads it)', () => {
    const op = (index: number): Expr => ({ kind: 'operand', index, dtype: 'float64' });
    const inner: Expr = { kind: 'select', cond: { kind: 'compare', op: '>', a: op(0), b: op(1) }, ifTrue: op(2), ifFalse: op(3), dtype: 'float64' };
    const outer: Expr = { kind: 'select', cond: { kind: 'compare', op: '>', a: inner, b: { kind: 'literal', value: 0, dtype: 'float64' } }, ifTrue: op(0), ifFalse: op(1), dtype: 'float64' };
    const code = renderJs(outer, ['a', 'b', 'x', 'y']);
    // The inner select without a branch, the outer one a conditional.
    expect(code.match(/SEL\[0\] = /g)?.length).toBe(1);
    const f = buildFunction<(a: number, b: number, x: number, y: number) => number>(`function nested(a, b, x, y) { return ${code}; }`);
    for (const [a, b, x, y] of [[2, 1, 5, -5], [2, 1, -5, 5], [1, 2, 5, -5], [1, 2, -5, 5]] as const) {
      expect(f(a, b, x, y), `${[a, b, x, y]}`).toBe(((a > b ? x : y) > 0) ? a : b);
    }
  });

  it('a reduction over kept axes and then trailing reduced ones (a bias gradient over N, H, W) adds each run of its trailing axes in a local; the eager bits', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      // float64 sums of 2·40 terms an output round at every step: another order shows in the bits.
      const x = rn([2, 3, 5, 8], 35, dtype);
      const { kernels } = compare(([x]) => [x!.mul(x!).add(x!).sum([0, 2, 3]), x!.exp().max([0, 3])], [x]);
      const k = kernels.find((k) => k.name.startsWith('fused_sum_3x80'))!;
      // The run over the trailing [5, 8] in a local, stored once per run.
      expect(k.source, dtype).toMatch(/let acc = b\d+\[[^\]]+\];/);
      expect(kernels.find((k) => k.name.startsWith('fused_reduceMax_15x16'))!.source, dtype).toMatch(/let acc = /);
    }
  });

  it('a reduction over at most 16 elements between kept axes (a pool\'s taps) is one loop per output, the taps unrolled into a local accumulator; more, or trailing, or leading ones keep their paths; the eager bits', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([3, 5, 4, 6, 7], 31, dtype);
      // Sums are order-sensitive: the eager bits show the same order (row-major over the reduced axes).
      const { kernels } = compare(([x]) => [x!.mul(1.5).sum(2), x!.exp().max(2), x!.sum([1, 3]), x!.neg().min(2, true)], [x]);
      const sums = kernels.filter((k) => /^fused_(sum|reduceMax|reduceMin)_/.test(k.name));
      expect(sums.length, dtype).toBe(4);
      for (const k of sums) {
        const unrolled = k.name !== 'fused_sum_84x30';
        // Unrolled: a local accumulator, no scratch row filled with the identity.
        expect(/let acc = /.test(k.source) && !/\.fill\(/.test(k.source), `${dtype} ${k.name}`).toBe(unrolled);
      }
      // [3, 5, 4, 6, 7] summed over axes 1 and 3: 30 elements, past 16: the walk over the input.
      expect(sums.some((k) => k.name === 'fused_sum_84x30' && /\.fill\(/.test(k.source)), dtype).toBe(true);
    }
    // A max pool's forward and backward passes (its windows' maxima over four taps), the eager bits.
    const [p, q] = [rn([2, 3, 8, 10], 32, 'float32'), rn([2, 3, 4, 5], 33, 'float32')];
    compare(([p, q]) => [maxPool2d(p!, 2), grad((a: Tensor) => maxPool2d(a, 2).mul(q!).sum())(p!) as Tensor], [p, q]);
  });

  it('a convolution\'s columns (windows stacked, then merged) are copied piece by piece; with work on them, they loop over the refined shape with the nine windows unrolled; pools too; the eager bits', () => {
    // The loop shape refining [2, 27, 90] and the windows' [2, 3, 9, 9, 10]; shapes whose cuts do
    // not nest are left out; nothing to refine gives null.
    expect(refinement([2, 27, 90], [[2, 3, 9, 90], [2, 3, 9, 9, 10]])).toEqual([2, 3, 9, 9, 10]);
    expect(refinement([6], [[2, 3], [3, 2]])).toEqual([2, 3]);
    expect(refinement([4, 6], [[24], [4, 6, 1], [5, 5]])).toBeNull();
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([2, 3, 9, 10], 14, dtype);
      const w = rn([4, 3, 3, 3], 15, dtype);
      // The pad, read by nine windows, is stored by its own kernel (padStoreReaders). The columns
      // are then a concat of nine strided views of it under reshapes: nine strided copies, each
      // into its box of the columns (in WebAssembly where both arrays live in the heap).
      const plain = compare(([x, w]) => [conv2d(x!, w!, { padding: 1 })], [x, w]);
      expect(names(plain.kernels)).toContain('fused_elementwise_[2,3,11,12]x1');
      // (The product's operand is the columns' reshape; the concat under it is what is stored:
      // matmulOperandSources.)
      // The product that reads them as B runs in the same step, image by image (interleaveEntries).
      const copy = plain.kernels.find((k) => k.name.startsWith('fused_elementwise_[2,3,9,9,10]'))!;
      expect(copy.name).toBe('fused_elementwise_[2,3,9,9,10]x1+matmul_4x90x27_batch2');
      expect(copy.source).toMatch(/^\/\/ entries of the leading axis at a time/);
      expect(copy.source).toMatch(/^\/\/ stridedCopyInto, piece by piece \(concat along axis 2\)/m);
      expect(copy.source.match(/strides \[396, 132, 0, 12, 1\]/g), `${dtype}: nine windows of the pad`).toHaveLength(9);
      // An output width of 10 splits the product's vectors (4 float32 columns) across output rows,
      // and 90 outputs are not whole panels (8, or 4 in float64): the columns are copied, not
      // gathered from the pad (the next test).
      expect(copy.source).not.toMatch(/B packed from/);
      // Work on the columns: one generated loop over the refined shape, counters rather than
      // divisions of the linear index, and no branch between the windows.
      const worked = compare(([x]) => [columnsOf(x!).mul(2)], [x]);
      const text = sources(worked.kernels).join('\n');
      expect(text).not.toMatch(/Math\.floor|% 9\b|let cat/);
      expect(text.match(/for \(let c\d+_4 = 0; c\d+_4 < 10;/g)?.length, `${dtype}: one loop nest per window`).toBe(9);
      // Copies with no range test: the pad is stored first there too.
      const columns = worked.kernels.find((k) => k.name.startsWith('fused_elementwise_[2,27,90]'))!;
      expect(columns.source).not.toMatch(/>= 0/);
      compare(([x, w]) => [conv2d(x!, w!, { padding: 1, stride: 2 })], [x, w]);
      compare(([x, w]) => [conv2d(x!, w!, { padding: 2, dilation: 2 })], [x, w]);
      compare(([x]) => [maxPool2d(x!, 2), avgPool2d(x!, 3, { stride: 1, padding: 1 })], [x]);
    }
  });

  it('a convolution (stride 1 or 2) whose columns only products read (its own, a weight gradient\'s) packs their B from the pad (the columns neither written nor held), image by image, on one thread and on two; with WebAssembly off, the columns copied into an array held from then on; not where the columns have another reader; the eager bits', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      // Output 8 × 16: panels of 8 (float32) or 4 (float64) neighbouring outputs lie in one row
      // of the pad [3, 3, 10, 18], row p = (channel, tap) at channel·180 + i·18 + j.
      const x = rn([3, 3, 8, 16], 14, dtype);
      const w = rn([5, 3, 3, 3], 15, dtype);
      const conv = ([x, w]: readonly Tensor[]) => [conv2d(x!, w!, { padding: 1 })];
      for (const [wasm, threads] of [[true, 1], [true, 2], [false, 1]] as const) {
        setCpuWasm(wasm);
        setCpuThreads(threads);
        try {
          const before = gatheredProductsMade();
          const { kernels } = compare(conv, [x, w]);
          const pair = kernels.find((k) => k.name.includes('+matmul'))!;
          expect(pair.name).toBe('fused_elementwise_[3,3,9,8,16]x1+matmul_5x128x27_batch3');
          expect(pair.source).toMatch(/^\/\/ entries of the leading axis at a time \(as many as the product's threads\): the product of those entries with B packed from slot\d+ \(B's rows at \[0, 1, 2, 18, 19, 20, … \(27\)\], its columns at \[0, 1, 2, 3, 4, 5, … \(128\)\], entries 540 apart\), the columns \(slot\d+\) not stored/);
          // compare runs the program twice: images as many at a time as there are threads.
          expect(gatheredProductsMade() - before, `${dtype}, WebAssembly ${wasm}, ${threads} thread(s)`).toBe(wasm ? 2 * Math.ceil(3 / wasmThreads()) : 0);
        } finally {
          setCpuWasm(true);
          setCpuThreads(undefined);
        }
      }
      // Memory: the columns' array (3 · 27 · 128 elements) is held only once a call needs it: with
      // WebAssembly off, from then on, and freed with the program.
      const E = dtype === 'float32' ? 4 : 8;
      expect(bytesAddedByFallback(traceProgram(conv, [x, w], []).program, [x, w])).toBe(3 * 27 * 128 * E);
      // The output and the weight's gradient of ⟨y, r⟩: the weight gradient's product reads the
      // columns transposed (B's rows, outputs, in fours; float32 only). Both products pack from
      // the pad and the columns' copy is gone; in float64 both read the copied columns.
      // Eight channels: the weight gradient's B has 8 · 9 = 72 columns, whole panels.
      const x8 = rn([3, 8, 8, 16], 16, dtype);
      const w8 = rn([5, 8, 3, 3], 17, dtype);
      const r = rn([3, 5, 8, 16], 18, dtype);
      const made = gatheredProductsMade();
      const withGrad = compare(([x, w, r]) => {
        const loss = (ww: Tensor) => sum(conv2d(x!, ww, { padding: 1 }).mul(r!));
        return [conv2d(x!, w!, { padding: 1 }), grad(loss)(w!) as Tensor];
      }, [x8, w8, r]);
      const gathered = withGrad.kernels.filter((k) => /B packed from/.test(k.source)).map((k) => k.name);
      expect(gathered).toEqual(dtype === 'float32' ? ['fused_elementwise_[3,8,9,8,16]x1+matmul_5x128x72_batch3', 'fused_matmul_5x72x128_batch3'] : []);
      expect(gatheredProductsMade() - made).toBe(dtype === 'float32' ? 2 * 2 * Math.ceil(3 / wasmThreads()) : 0);
      // Two stacked convolutions whose columns ([3, 72, 128] each) share one array in the buffer
      // plan: both pack from their pads, so that array is not held either, until a call falls
      // back (WebAssembly off), which allocates it once.
      const w1 = rn([8, 8, 3, 3], 24, dtype);
      const stack2 = traceProgram(([x, a, b]: readonly Tensor[]) => [conv2d(conv2d(x!, a!, { padding: 1 }), b!, { padding: 1 })], [x8, w1, w8], []).program;
      expect(bytesAddedByFallback(stack2, [x8, w1, w8])).toBe(3 * 72 * 128 * E);
      w1.dispose();
      // Stride 2 (x [3, 8, 16, 32] → 8 × 16 outputs): each panel's neighbouring outputs are 2
      // apart in the pad, and the weight gradient's fours of outputs too; packed from the pad.
      const xs = rn([3, 8, 16, 32], 19, dtype);
      const made2 = gatheredProductsMade();
      const strided = compare(([x, w, r]) => {
        const loss = (ww: Tensor) => sum(conv2d(x!, ww, { padding: 1, stride: 2 }).mul(r!));
        return [conv2d(x!, w!, { padding: 1, stride: 2 }), grad(loss)(w!) as Tensor];
      }, [xs, w8, r]);
      expect(strided.kernels.filter((k) => /B packed from/.test(k.source)).map((k) => k.name)).toEqual(dtype === 'float32' ? ['fused_elementwise_[3,8,9,8,16]x1+matmul_5x128x72_batch3', 'fused_matmul_5x72x128_batch3'] : []);
      expect(gatheredProductsMade() - made2).toBe(dtype === 'float32' ? 2 * 2 * Math.ceil(3 / wasmThreads()) : 0);
      const forward2 = compare(([x, w]) => [conv2d(x!, w!, { padding: 1, stride: 2 })], [xs, w8]);
      expect(forward2.kernels.filter((k) => /B packed from/.test(k.source))).toHaveLength(1);
      // Two stacked convolutions and both weights' gradients: the first pad must outlive its
      // columns' copy until the first weight gradient's product packs from it, although the
      // second pad (of the same size) is made in between; it took the first's array before.
      const stacked = compare(([x, w1, w2, r]) => grad((a: Tensor, b: Tensor) => sum(conv2d(conv2d(x!, a, { padding: 1 }), b, { padding: 1 }).mul(r!)), { argnums: [0, 1] })(w1!, w2!) as Tensor[], [x8, rn([8, 8, 3, 3], 21, dtype), rn([8, 8, 3, 3], 22, dtype), rn([3, 8, 8, 16], 23, dtype)]);
      expect(stacked.kernels.filter((k) => /B packed from/.test(k.source))).toHaveLength(dtype === 'float32' ? 3 : 0);
      // One image: its product is not batched, and packs from the pad all the same.
      const single = compare(([x, w]) => [conv2d(x!, w!, { padding: 1 })], [rn([1, 3, 8, 16], 20, dtype), w]);
      expect(single.kernels.filter((k) => /B packed from/.test(k.source)).map((k) => k.name)).toEqual(['fused_elementwise_[1,3,9,8,16]x1+matmul_5x128x27']);
      // The columns read by a second kernel too (their sum): copied, then read by both.
      const before = gatheredProductsMade();
      const both = compare(([x, w]) => {
        const p = pad(x!, [[0, 0], [0, 0], [1, 1], [1, 1]]);
        const windows: Tensor[] = [];
        for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) windows.push(slice(p, [0, 0, i, j], [3, 3, 8, 16]));
        const cols = stack(windows, 2).reshape([3, 27, 128]);
        return [matmul(w!.reshape([5, 27]), cols), sum(cols.mul(cols), 1)];
      }, [x, w]);
      expect(sources(both.kernels).join('\n')).not.toMatch(/B packed from/);
      expect(gatheredProductsMade() - before).toBe(0);
    }
  });

  it('a convolution whose product packs its B from the pad reports to profile() the bytes it moves: the pad and the weights read, the product written, not the columns', async () => {
    const x = rn([3, 3, 8, 16], 14);
    const w = rn([5, 3, 3, 3], 15);
    const compiled = cpu.compile(traceProgram(([x, w]: readonly Tensor[]) => [conv2d(x!, w!, { padding: 1 })], [x, w], []).program);
    try {
      const { kernels } = await profile(() => cpu.dispose(compiled.run([x._live('t') as CpuHandle, w._live('t') as CpuHandle], [], [false, false])[0]!));
      const pair = kernels.find((k) => k.name.includes('+matmul'))!;
      expect(compiled.kernels().find((k) => k.name === pair.name)!.source).toMatch(/B packed from/);
      // The pad [3, 3, 10, 18], the weights as the product reads them (broadcast over the
      // images: [3, 5, 27], as kernelCost counts a product's operands) and the product
      // [3, 5, 128], float32; the columns [3, 27, 128] would add 41,472 bytes written and as
      // many read.
      expect(pair.bytes).toBe((3 * 3 * 10 * 18 + 3 * 5 * 27 + 3 * 5 * 128) * 4);
    } finally {
      compiled.dispose();
    }
  });

  it('a concat of strided views along its leading axis, or along another, copied piece by piece (each piece its own extent), with and without a product after it; the eager bits', () => {
    // Pieces of 2048 elements or more (the WebAssembly copy's minimum): blocks of rows of 32,
    // stacked along axis 0 (extents 96 and 64: each piece copies its own rows); and halves of the
    // rows of a stack of two, stacked along axis 1, then read as B by a batched product.
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([128, 64], 41, dtype);
      const lead = compare(([x]) => [concat([x!.slice([32, 0], [96, 32]), x!.slice([0, 32], [64, 32])], 0)], [x]);
      expect(sources(lead.kernels).join('\n')).toMatch(/stridedCopyInto, piece by piece \(concat along axis 0\)/);
      expect(names(lead.kernels).join(' ')).not.toMatch(/\+matmul/);
      const y = rn([2, 64, 64], 42, dtype);
      const w = rn([3, 128], 43, dtype);
      const across = compare(([y, w]) => {
        const cols = concat([y!.slice([0, 0, 0], [2, 64, 32]), y!.slice([0, 0, 32], [2, 64, 32])], 1);
        return [matmul(w!, cols)];
      }, [y, w]);
      expect(names(across.kernels)).toContain('fused_elementwise_[2,128,32]x1+matmul_3x32x128_batch2');
    }
  });

  it('a concat of 256 elements or more is stored with its computed pieces and copied by blocks (concatStoreMin); the eager bits in every dtype', () => {
    const x = rn([40, 33], 16);
    const y = rn([40, 7], 17);
    const z = rn([12, 33], 18);
    const blocks = (ks: readonly KernelInfo[]) => sources(ks).join('\n').match(/concatInto along axis/g) ?? [];
    // Stored pieces (inputs), computed pieces (each stored by its own kernel first), a stack (a
    // concat of reshapes), rows at an offset (a contiguous slice), and a concat read by more work.
    const { kernels, program } = compare(([x, y, z]) => [
      concat([x!, y!], 1),
      concat([x!.mul(2), exp(y!)], 1),
      concat([x!, z!], 0).mul(3),
      stack([x!, x!.neg()], 0),
      concat([slice(x!, [2, 0], [10, 33]), z!], 0),
    ], [x, y, z]);
    expect(blocks(kernels)).toHaveLength(5);
    // The computed pieces' own kernels: x · 2, exp(y), and −x as the stack's piece (unsqueezed).
    const plan = planFusion(program, CPU_FUSION_OPTIONS);
    const computed = program.equations.filter((e) => e.prim === 'exp' || (e.prim === 'mul' && e.out.shape.join() === '40,33'));
    expect(computed).toHaveLength(2);
    for (const e of computed) expect(plan.materialized.has(e.out.id), e.prim).toBe(true);
    const neg = program.equations.find((e) => e.prim === 'neg')!.out;
    expect(plan.materialized.has(program.equations.find((e) => e.prim === 'reshape' && e.inputs[0] === neg)!.out.id)).toBe(true);
    // The default (WebGPU's) stores none of them: the concat is read inline.
    const fused = planFusion(program, {});
    expect(program.equations.filter((e) => e.prim === 'exp').some((e) => fused.materialized.has(e.out.id))).toBe(false);
    // Bools and int32 (copies of any array); a strided piece with a computed one (the concat is
    // stored, its generated loop reads the transpose); small concats stay inline.
    const m = x.greater(0);
    const n = cast(y, 'int32');
    compare(([m, n, x, y]) => [concat([m!, y!.less(0)], 1), concat([cast(x!, 'int32'), n!], 1), concat([x!.transpose(), exp(y!.transpose())], 0)], [m, n, x, y]);
    const small = compare(([a, b]) => [concat([a!, b!.mul(2)], 0)], [rn([3, 5], 19), rn([4, 5], 20)]);
    expect(blocks(small.kernels)).toHaveLength(0);
    for (const t of [x, y, z, m, n]) t.dispose();
  });

  it('roots that only move stored data are copied as eager copies them (views by rows or tiles, pads, gathers); large gathers, and a pad\'s input that calls a transcendental, are stored (movementStoreMin); the eager bits in every dtype', () => {
    const copied = (ks: readonly KernelInfo[]) => sources(ks).join('\n').match(/^\/\/ \w+[^\n]*copied as eager copies it$/gm) ?? [];
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([40, 33], 21, dtype);
      const i = tensor([5, 0, 39, 5, 17, 2, 2, 30], { dtype: 'int32' });
      const j = tensor([5, 0, 32, 5, 17, 2, 2, 30], { dtype: 'int32' });
      const { kernels } = compare(([x, i, j]) => [
        x!.transpose(),
        slice(x!, [3, 1], [20, 30]),
        tile(slice(x!, [0, 0], [10, 33]), [3, 2]),
        pad(x!, [[2, 1], [0, 3]]),
        indexSelect(x!, 0, i!),
        indexSelect(x!, 1, j!),
        // Work on a gather from rows at an offset: the gather stored first, then the arithmetic.
        indexSelect(slice(x!, [1, 0], [39, 33]), 0, j!).add(1),
        // Work on a pad: one generated loop, as before. A pad of a value that calls a
        // transcendental: the value stored first (in WebAssembly), then padded.
        pad(x!, [[1, 1], [1, 1]]).mul(2),
        pad(exp(x!.mul(0.5)), [[0, 2], [2, 0]]),
      ], [x, i, j]);
      const text = copied(kernels).join('\n');
      expect(text.match(/^\/\/ stridedCopy/gm), `${dtype}: the transpose, the slice and the tile`).toHaveLength(3);
      expect(text.match(/^\/\/ padInto/gm), `${dtype}: the pads of a stored value and of exp's`).toHaveLength(2);
      expect(text.match(/^\/\/ gatherInto/gm), `${dtype}: three gathers`).toHaveLength(3);
      for (const t of [x, i, j]) t.dispose();
    }
    // Bools and int32; an index out of range raises the eager error.
    const m = rn([40, 33], 22).greater(0);
    const n = cast(rn([40, 33], 23).mul(10), 'int32');
    const { kernels } = compare(([m, n]) => [m!.transpose(), pad(n!, [[1, 1], [2, 2]]), indexSelect(m!, 1, [3, 3, 0])], [m, n]);
    expect(copied(kernels)).toHaveLength(3);
    const x = rn([40, 33], 24);
    const bad = tensor([1, 40], { dtype: 'int32' });
    const compiled = cpu.compile(traceProgram(([x, i]) => [indexSelect(x!, 0, i!)], [x, bad], []).program);
    expect(compiled.kernels()[0]!.source).toMatch(/^\/\/ gatherInto/);
    expect(() => compiled.run([x._live('t') as CpuHandle, bad._live('t') as CpuHandle], [], [false, false])).toThrow('gather: index 40 is out of range for axis 0 of extent 40');
    compiled.dispose();
    for (const t of [m, n, x, bad]) t.dispose();
  });

  it('a root that moves another root of its segment is computed with it, not copied before it is written; empty movements', () => {
    // exp(x) and its detached copy, a reshape round trip and a transpose of it: one segment, the
    // movements read exp's values (a copy run first would read an unwritten array).
    const x = rn([32, 32], 25);
    compare(([x]) => {
      const a = exp(x!);
      return [a, a.detach(), reshape(reshape(a, [1024]), [32, 32]), a.transpose().mul(2)];
    }, [x]);
    // Empty results of movements (reshapes of empty values end the view analysis at once).
    const e = rn([0, 5], 26);
    const b = rn([64, 5], 27);
    const z = rn([5, 0], 28);
    compare(([x]) => [tile(x!, [0, 2])], [x]);
    compare(([e]) => [reshape(e!, [5, 0]), pad(e!, [[1, 1], [0, 2]])], [e]);
    compare(([b, z]) => [concat([b!.mul(2), reshape(z!, [0, 5])], 0)], [b, z]);
    for (const t of [x, e, b, z]) t.dispose();
  });

  it('reductions of reshapes of a computed value, a transpose and a concat: the compound index divided whole', () => {
    // The reduction reads its input at out · extent + r; through a reshape that regroups axes,
    // that index is divided and reduced modulo, which needs it in parentheses.
    const x = rn([66, 20], 29);
    const y = rn([33, 20], 30);
    compare(([x, y]) => [
      sum(reshape(x!.mul(2), [20, 66]), 1),
      sum(reshape(x!.transpose(), [33, 40]), 1),
      max(reshape(concat([y!, y!.mul(2)], 0), [20, 66]), 1),
    ], [x, y]);
    for (const t of [x, y]) t.dispose();
  });

  it('a reduction to one element read through reshapes to all-ones shapes: its accumulator, as any one element', () => {
    // The epilogue named the sum's element by coordinates that had lost its linear index and
    // missed the accumulator ("'sum' cannot be computed inline"); also the gradient of a tile.
    const x = rn([2, 1], 31);
    const y = rn([1], 32);
    compare(([x, y]) => [
      sum(x!, 0).reshape([1, 1]).reshape([1]),
      max(x!, 0, true).reshape([1]).mul(2).reshape([1, 1]),
      sum(tile(y!, [2])).reshape([1, 1, 1]).add(y!),
    ], [x, y]);
    for (const t of [x, y]) t.dispose();
  });

  it('the gradient of a long cumprod (a Hillis–Steele scan read at two offsets per level) stores levels: bounded kernels, the eager bits', () => {
    // Inline, each level copied the one below twice, so the kernel's code grew as 4^levels: a
    // 173-long scan's gradient overflowed the stack generating it. Values read in many ways are
    // now stored. (One column: wider levels pass concatStoreMin and were stored already.)
    const x = rn([173, 1], 33);
    const f = (z: Tensor) => grad((q: Tensor) => sum(tanh(q).mul(0.3).add(1).cumprod(0).mul(0.01)))(z) as Tensor;
    const { kernels } = compare(([x]) => [f(x!)], [x]);
    expect(kernels.length).toBeGreaterThan(1);
    for (const k of kernels) expect(k.source.length).toBeLessThan(40_000);
    x.dispose();
  });

  it('strided reads: a transpose, a slice and a reshape of a permuted value, with no copies', () => {
    const x = rn([3, 4, 5], 2);
    const y = rn([5, 3, 4], 3);
    const z = rn([6, 8], 4);
    const { kernels } = compare(([x, y, z]) => [
      permute(x!, [2, 0, 1]).mul(y!).add(1),
      slice(z!, [1, 2], [4, 5]).mul(slice(z!, [2, 0], [4, 5])),
      reshape(permute(x!, [1, 0, 2]), [4, 15]).add(reshape(y!, [4, 15])),
    ], [x, y, z]);
    expect(kernels).toHaveLength(1);
    expect(names(kernels)[0]).toMatch(/^fused_elementwise_/);
  });

  it('reductions over leading, trailing and middle axes, with a prologue and an epilogue', () => {
    const x = rn([6, 7, 5], 5);
    const w = rn([7, 1], 6);
    const pro = (t: Tensor, w: Tensor) => exp(t.mul(0.3)).mul(w).add(1);
    const { kernels } = compare(([x, w]) => [
      sum(pro(x!, w!), 0),
      sum(pro(x!, w!), 2).mul(2).add(1),
      sum(pro(x!, w!), 1),
      sum(pro(x!, w!), [0, 2]),
      max(pro(x!, w!), [1]).sub(3),
      sum(x!),
      sqrt(sum(x!.square(), -1, true)),
    ], [x, w]);
    expect(names(kernels).filter((k) => /^fused_(sum|reduceMax)/.test(k))).toHaveLength(7);
  });

  it('float64 end to end: elementwise, reductions and a matmul with its epilogue', () => {
    const x = rn([33, 17], 7, 'float64');
    const w = rn([17, 9], 8, 'float64');
    const b = rn([9], 9, 'float64');
    const { kernels } = compare(([x, w, b]) => {
      const h = softplus(matmul(x!, w!).add(b!));
      return [h, sum(h, 0), log1p(x!.square())];
    }, [x, w, b]);
    expect(names(kernels).some((k) => k.startsWith('fused_matmul_33x9x17_epilogue'))).toBe(true);
  });

  it('products by ±1, quotients by ±1 and sums with ±0 (left unrounded) on −0, NaN, ±∞, subnormals and extremes', () => {
    const special = [-0, 0, Number.NaN, Infinity, -Infinity, 1e-45, -1.4e-45, 3.4028234663852886e38, -3.4028234663852886e38, 1 / 3, 0.1];
    const f = tensor(special);
    const d = tensor(special, { dtype: 'float64' });
    const ops = (x: Tensor) => [x.mul(-1), x.mul(1), x.div(-1), x.div(1), x.add(0), x.add(-0), x.sub(0), x.sub(-0), x.neg().mul(-1).add(0.5)];
    const { kernels } = compare(([f, d]) => [...ops(f!), ...ops(d!)], [f, d]);
    expect(kernels).toHaveLength(1);
  });

  it('int32 arithmetic and casts between every dtype', () => {
    const i = tensor([[3, -7, 2147483647, 0], [5, 9, -2147483648, 11]], { dtype: 'int32' });
    const f = tensor([[1.5, -2.5, 1e10, Number.NaN], [-0.0, 0.49999997, -1e-30, 7]]);
    const d = tensor([[1.5, -2.5, 1e300, Number.NaN], [-0.0, 1 / 3, -1e-30, 7]], { dtype: 'float64' });
    compare(([i, f, d]) => [
      i!.mul(i!).add(i!).sub(3),
      cast(f!, 'int32').add(i!),
      cast(cast(i!, 'float32').mul(0.5), 'float64').add(d!),
      cast(d!, 'float32').mul(f!),
      cast(f!.less(0), 'int32').add(cast(d!.equal(7), 'int32')),
      where(i!.less(0), f!, cast(d!, 'float32')),
      sum(i!, 1),
      max(i!, 0),
    ], [i, f, d]);
  });

  it('a float cast to int32 and back in one kernel is +0, never −0, for values in (−1, −0], as a stored int32 is', () => {
    // The fused kernel keeps the int32 in a local: truncation by Math.trunc would leave −0 there,
    // and the cast back to a float would keep it (1 / x then −∞ where eager gives +∞).
    const f = tensor([-0.5, -0, -1e-30, 0.75, -1.5, 2.5, -0.99999994, 0]);
    const d = tensor([-0.5, -0, -1e-300, 0.75, -1.5, 2.5, -0.9999999999, 0], { dtype: 'float64' });
    compare(([f, d]) => [
      tensor(1).div(cast(cast(f!, 'int32'), 'float32')),
      tensor(1, { dtype: 'float64' }).div(cast(cast(d!, 'int32'), 'float64')),
      cast(cast(f!.mul(0.5), 'int32'), 'float32'),
    ], [f, d]);
    // A literal cast when the program is built (storedValue) too.
    expect(Object.is(storedValue(-0.5, 'int32'), 0)).toBe(true);
    expect(Array.from(tensor(1).div(cast(full([2], -0.5, { dtype: 'int32' }), 'float32')).dataSync())).toEqual([Infinity, Infinity]);
  });

  it('matmuls: transposed operands, batches that broadcast, skinny products, epilogues', () => {
    const a = rn([2, 3, 16, 8], 10);
    const b = rn([3, 8, 12], 11);
    const c = rn([40, 6], 12);
    const d = rn([40, 2], 13);
    compare(([a, b, c, d]) => [
      tanh(matmul(a!, b!)).mul(2),
      matmul(permute(c!, [1, 0]), d!),
      matmul(c!, matmul(permute(c!, [1, 0]), d!)).add(1),
      matmul(exp(c!), permute(rn([4, 6], 14), [1, 0])),
    ], [a, b, c, d]);
    // An epilogue whose second value reads its first (softplus with e^(−|z|) kept).
    const x = rn([64, 32], 1);
    const w = rn([32, 16], 2);
    const { kernels } = compare(([x, w]) => {
      const z = matmul(x!, w!).add(0.25);
      const e = z.abs().neg().exp();
      return [e, z.maximum(0).add(e.log1p())];
    }, [x, w]);
    expect(names(kernels)).toEqual(['fused_matmul_64x16x32_epilogue2']);
  });

  it('batched matmuls with evenly spaced entries: one batched call, the eager bits', () => {
    // Contiguous entries, a B shared by every entry (stride 0), and a batch large enough for the
    // WebAssembly kernels (16·12·8 multiply-adds per entry, above WASM_MIN_WORK).
    const a = rn([6, 16, 8], 3);
    const b = rn([6, 8, 12], 4);
    const w = rn([8, 12], 5);
    const { kernels } = compare(([a, b, w]) => [matmul(a!, b!), matmul(a!, w!).add(1), matmul(a!.mul(2), w!)], [a, b, w]);
    const text = sources(kernels).join('\n');
    expect(text).toContain('matmulBatchedInto');
    expect(text).not.toContain('per batch');
  });

  it('a matmul lists the equations its operand gathers compute', () => {
    const c = rn([40, 6], 6);
    const d = rn([6, 5], 7);
    // A window of columns: rows 5 apart, neither row-major nor a transpose, so it is gathered.
    const { program, kernels } = compare(([c, d]) => [matmul(c!, slice(d!, [0, 1], [6, 4]))], [c, d]);
    // Equation 0 is the slice, read by the product through a gather into scratch; 1 the product.
    expect(program.equations.map((eq) => eq.prim)).toEqual(['slice', 'matmul']);
    expect(kernels.map((k) => k.equations)).toEqual([[0, 1]]);
    expect(kernels[0]!.source).toContain('gather_b');
  });

  it('transposed operands are read in place (no gather), with the eager bits, on both kernel paths', () => {
    // Aᵀ·B and A·Bᵀ as a training step's backward pass makes them, both at once, batched with
    // per-entry and shared transposed operands, one with an epilogue, float64, and products
    // below WASM_MIN_WORK (TypeScript on either path) and above it.
    const f32 = [rn([64, 48], 1), rn([64, 40], 2), rn([30, 64], 3), rn([50, 64], 4), rn([3, 2], 5), rn([3, 4], 6)];
    const batched = [rn([4, 16, 8], 7), rn([4, 16, 12], 8), rn([12, 10], 9), rn([4, 9, 10], 10), rn([12, 16], 14)];
    const f64 = [rn([33, 17], 11, 'float64'), rn([33, 9], 12, 'float64'), rn([21, 9], 13, 'float64')];
    const t = (x: Tensor) => permute(x, [1, 0]);
    const cases: [Parameters<typeof compare>[0], Tensor[]][] = [
      [([x, y, z, w, s, u]) => [
        matmul(t(x!), y!), // 48×64 · 64×40: A transposed
        matmul(z!, t(w!)), // 30×64 · 64×50: B transposed
        matmul(t(x!), t(matmul(y!, t(y!)))).add(1), // both, with an epilogue
        matmul(t(s!), u!), // 2×3 · 3×4: TypeScript whatever the setting
      ], f32],
      [([a, b, w, v, q]) => [
        matmul(permute(a!, [0, 2, 1]), b!), // per-entry Aᵀ: 4 × (8×16 · 16×12)
        matmul(permute(a!, [0, 2, 1]), reshape(t(q!), [1, 16, 12])).add(1), // and a Bᵀ shared by the batch (stride 0), with an epilogue
        matmul(v!, t(w!)), // a Bᵀ under a batched A: one 36×10 · 10×12 product
      ], batched],
      [([x, y, z]) => [matmul(t(x!), y!), matmul(y!, t(z!)).mul(2)], f64],
    ];
    for (const wasm of [true, false]) {
      setCpuWasm(wasm);
      try {
        for (const [f, args] of cases) {
          // compare ran the program on the path setCpuWasm(wasm) picks; the kernels' sources are the same either way.
          const text = sources(compare(f, args).kernels).join('\n');
          expect(text).toContain('transposed in place');
          expect(text).not.toContain('gather_a');
          expect(text).not.toContain('gather_b');
        }
      } finally {
        setCpuWasm(true);
      }
    }
  });

  it('an operand that is the transpose of a computed value: the value is stored in its own layout and read transposed (matmulOperandSources); a slice, or a permute that is no matrix transpose, stores the operand; the eager bits', () => {
    const a = rn([64, 48], 31);
    const b = rn([64, 48], 32);
    const c = rn([64, 40], 33);
    const d = rn([4, 16, 8], 34);
    const e = rn([16, 12], 35);
    const stored = (f: Parameters<typeof compare>[0], args: Tensor[], opts: Parameters<typeof planFusion>[1]) => {
      const { program } = traceProgram(f, args, []);
      const plan = planFusion(program, opts);
      return (prim: string) => program.equations.filter((eq) => eq.prim === prim).map((eq) => plan.materialized.has(eq.out.id));
    };
    // (a·b + 1)ᵀ · c, as W6's backward pass makes one: the sum (not its transpose) is stored, and
    // its kernel reads a and b densely; the default (WebGPU's) stores the transpose.
    const transposed: Parameters<typeof compare>[0] = ([a, b, c]) => [matmul(permute(a!.mul(b!).add(1), [1, 0]), c!)];
    expect(stored(transposed, [a, b, c], CPU_FUSION_OPTIONS)('add')).toEqual([true]);
    expect(stored(transposed, [a, b, c], CPU_FUSION_OPTIONS)('permute')).toEqual([false]);
    expect(stored(transposed, [a, b, c], {})('permute')).toEqual([true]);
    const { kernels } = compare(transposed, [a, b, c]);
    expect(sources(kernels).join('\n')).toContain('a transposed in place');
    expect(names(kernels).filter((n) => n.startsWith('fused_elementwise_'))).toEqual(['fused_elementwise_[64,48]x1']);
    // Under a batch: per-entry Aᵀ of a computed [4, 16, 8], and a computed B broadcast over the batch.
    const batched: Parameters<typeof compare>[0] = ([d, e]) => [matmul(permute(exp(d!), [0, 2, 1]), reshape(e!.mul(2), [1, 16, 12]))];
    expect(stored(batched, [d, e], CPU_FUSION_OPTIONS)('exp')).toEqual([true]);
    expect(sources(compare(batched, [d, e]).kernels).join('\n')).toContain('a transposed in place');
    // A slice of a computed value (storing the value would compute more than the operand) and a
    // permute that moves a batch axis into the matrix (no view a product reads): the operand.
    const sliced: Parameters<typeof compare>[0] = ([a, c]) => [matmul(permute(slice(a!.mul(3), [0, 0], [64, 40]), [1, 0]), c!)];
    expect(stored(sliced, [a, c], CPU_FUSION_OPTIONS)('permute')).toEqual([true]);
    compare(sliced, [a, c]);
    const mixed: Parameters<typeof compare>[0] = ([d, e]) => [matmul(permute(exp(d!), [1, 0, 2]), reshape(e!.mul(2), [1, 8, 24]))];
    expect(stored(mixed, [d, rn([8, 24], 36)], CPU_FUSION_OPTIONS)('permute')).toEqual([true]);
    compare(mixed, [d, rn([8, 24], 36)]);
    for (const t of [a, b, c, d, e]) t.dispose();
  });

  it('pad, concat, gather, scatter-add and random draws', () => {
    const x = rn([5, 4], 15);
    const idx = tensor([4, 0, 0, 2, 1, 4], { dtype: 'int32' });
    const [k] = splitKey(randomKey(77), 1);
    compare(([x, idx], [key]) => [
      pad(x!.mul(2), [[1, 0], [0, 2]]).add(1),
      concat([x!, exp(x!), x!.square()], 1).mul(3),
      indexSelect(x!.add(1), 0, idx!).mul(2),
      apply('scatterAdd', [x!.add(1), idx!.slice([0], [5])], { axis: 0, size: 7 }),
      randn([5, 4], { key: foldIn(key!, 3) }).mul(x!),
    ], [x, idx], [k!]);
  });

  it('the lowering cache drops its least recently used lowering, not its oldest: a hot program survives a burst of others', () => {
    // Each call compiles a new program (traced anew), whose lowering is looked up in the backend's
    // cache (limit 256) by structure; a hit hands out the cached lowering, whose kernels share
    // their equation lists.
    const equations = (n: number) => {
      const x = zeros([n]);
      const compiled = cpu.compile(traceProgram(([x]) => [x!.mul(3).add(1)], [x], []).program);
      x.dispose();
      return compiled.kernels()[0]!.equations;
    };
    const hot = equations(1);
    const cold = equations(2);
    for (let n = 3; n <= 201; n++) equations(n);
    expect(equations(1)).toBe(hot); // a hit: now the most recently used
    for (let n = 202; n <= 301; n++) equations(n); // 301 lowerings in all, past the limit
    expect(equations(1)).toBe(hot);
    // The least recently used were dropped: 2 is lowered again.
    expect(equations(2)).not.toBe(cold);
  });

  it('constants that differ only as NaN, ±∞, −0 and +0 stay distinct (in the program and in the kernel cache)', () => {
    const x = tensor([1, -2, 3]);
    // One program with all five: simplification must not merge them (JSON writes them alike).
    compare(([x]) => [Infinity, Number.NaN, -Infinity, -0, 0].map((c) => x!.mul(0).add(c).mul(-1)), [x]);
    const results = [Infinity, Number.NaN, -Infinity, -0, 0].map((c) => {
      const traced = traceProgram(([x]) => [x!.mul(0).add(c).mul(-1)], [x], []);
      const compiled = cpu.compile(traced.program);
      const [h] = compiled.run([x._live('t') as CpuHandle], [], [false]);
      const values = Array.from(cpu.readSync(h!));
      cpu.dispose(h!);
      compiled.dispose();
      return values;
    });
    // Host arithmetic on the same values (exact here: ±0, ±∞, NaN and small integers).
    const expected = [Infinity, Number.NaN, -Infinity, -0, 0].map((c) => [1, -2, 3].map((v) => (v * 0 + c) * -1));
    expect(results).toEqual(expected);
    expect(results[3]).not.toEqual(results[4]);
  });

  it('a cast of a constant converts the value as the constant holds it (a float32 one rounded first), as eager does', () => {
    // jit's constant folding converted the unrounded double: 0.1, 16777217 and true where eager
    // gives 0.10000000149011612, 16777216 and false (1e-46 is 0 in float32).
    const made = [
      () => full([2], 0.1).cast('float64'),
      () => full([2], 16777217).cast('int32'),
      () => full([2], 1e-46).cast('bool'),
      () => full([2], 0.1).reshape([1, 2]).cast('float64'),
    ];
    const x = tensor([0]);
    for (const make of made) {
      const eager = Array.from(make().dataSync());
      expect(Array.from((jit((_x: Tensor) => make())(x) as Tensor).dataSync())).toEqual(eager);
    }
    expect(Array.from(made[0]!().dataSync())).toEqual([Math.fround(0.1), Math.fround(0.1)]);
    expect(Array.from(made[1]!().dataSync())).toEqual([16777216, 16777216]);
    // The primitive itself refuses a value its integer dtype cannot hold (a bool store of −2.5 was 254).
    expect(() => apply('full', [], { value: -2.5, shape: [2], dtype: 'bool', device: 'cpu' })).toThrow(/^full: value -2.5 cannot be held by dtype bool \(expected 0 or 1/);
    expect(() => apply('full', [], { value: 2.5, shape: [2], dtype: 'int32', device: 'cpu' })).toThrow(/^full: value 2.5 cannot be held by dtype int32 \(expected an integer/);
  });

  it('an input returned as it is, or returned twice, comes back in arrays of its own', () => {
    const x = tensor([1, 2, 3]);
    const p = traceProgram(([x]) => [x!.add(1)], [x], []).program;
    const bare = new Program(p.device, p.inputs, p.inputSources, p.keyInputs, p.keyDerivations, [], [p.inputs[0]!, p.inputs[0]!], []);
    const compiled = cpu.compile(bare);
    const input = x._live('t') as CpuHandle;
    const out = compiled.run([input], [], [false]);
    expect(out.map((h) => Array.from(cpu.readSync(h)))).toEqual([[1, 2, 3], [1, 2, 3]]);
    expect(out[0]!.data).not.toBe(input.data);
    expect(out[1]!.data).not.toBe(out[0]!.data);
    for (const h of out) cpu.dispose(h);
    expect(Array.from(x.dataSync())).toEqual([1, 2, 3]);
    compiled.dispose();
  });

  it('programs of one structure share their generated code, each with its own keys', () => {
    const x = rn([6, 3], 2);
    const run = (seed: number) => {
      const traced = traceProgram(([x], [k]) => [randn([6, 3], { key: foldIn(k!, 1) }).add(x!)], [x], [randomKey(seed)]);
      const compiled = cpu.compile(traced.program);
      const [h] = compiled.run([x._live('t') as CpuHandle], [randomKey(seed + 100)], [false]);
      const values = Array.from(cpu.readSync(h!));
      cpu.dispose(h!);
      compiled.dispose();
      return values;
    };
    // Each traced program has its own key variables; the second reuses the first's lowering.
    for (const seed of [1, 2]) {
      const expected = randn([6, 3], { key: foldIn(randomKey(seed + 100), 1) }).add(x);
      expect(run(seed)).toEqual(Array.from(expected.dataSync()));
      expected.dispose();
    }
  });

  it('scans, arg-reductions, rounding ops, erf and defined primitives (elementwise inline, a shader as its own kernel)', () => {
    const twiceSquare = definePrimitive({
      name: 'cpuCompileTwiceSquare', kind: 'elementwise', inputs: ['x', 'y'],
      cpu: (x, y) => 2 * x * x + y,
      wgsl: { expression: '2.0 * x * x + y' },
      // d(2x² + y) = 4x dx + dy
      jvp: ([x], [dx, dy]) => {
        const fromX = dx ? dx.mul(x!.mul(4)) : null;
        return fromX && dy ? fromX.add(dy) : (fromX ?? dy ?? null);
      },
      vjp: (ct, [x]) => [ct.mul(x!.mul(4)), ct],
    });
    const rowSums = definePrimitive({
      name: 'cpuCompileRowSums', kind: 'shader', inputs: ['x'],
      infer: ([x]) => ({ shape: [x!.shape[0]!], dtype: x!.dtype }),
      cpu: ([x], out) => {
        const cols = x!.shape[1]!;
        for (let r = 0; r < out.data.length; r++) {
          let acc = 0;
          for (let c = 0; c < cols; c++) acc += x!.data[r * cols + c]!;
          out.data[r] = acc;
        }
      },
      wgsl: { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] },
      jvp: () => null,
      vjp: () => [null],
    });
    const x = rn([5, 7], 3);
    const y = rn([5, 7], 4);
    const { kernels } = compare(([x, y]) => [
      cumsum(exp(x!.mul(0.5)).mul(2), 1),
      cumprod(x!.mul(0.1).add(1), 0, { reverse: true }),
      argmax(x!.mul(y!), 0),
      argmin(x!.add(1), 1),
      floor(x!.mul(3)).add(round(y!.mul(2))).mul(sign(x!)),
      erf(x!).mul(2),
      twiceSquare(x!.mul(0.5), y!).add(1),
      rowSums(twiceSquare(x!, y!).exp()).mul(2),
    ], [x, y]);
    expect(names(kernels).filter((k) => k.startsWith('custom_cpuCompileRowSums'))).toHaveLength(1);
    expect(names(kernels).filter((k) => /^(cumsum|cumprod|argmax|argmin)_/.test(k))).toHaveLength(4);
    // The defined primitive against its definition, on the host (2x² + y in doubles, then rounded).
    const got = twiceSquare(x, y).dataSync();
    const xs = x.dataSync();
    const ys = y.dataSync();
    got.forEach((v, i) => expect(v).toBe(Math.fround(2 * xs[i]! * xs[i]! + ys[i]!)));
  });

  it('empty tensors: sums of nothing, empty products and elementwise work on no elements', () => {
    const x = zeros([0, 3]);
    const y = zeros([3, 4]);
    compare(([x, y]) => [sum(exp(x!), 0), matmul(x!, y!).add(1), x!.mul(2), sum(matmul(permute(x!, [1, 0]), zeros([0, 4])), 0)], [x, y]);
  });

  it('an index out of range is the eager range error', () => {
    const x = rn([5, 4], 0);
    const idx = tensor([4, 9], { dtype: 'int32' });
    const traced = traceProgram(([x, idx]) => [indexSelect(x!.add(1), 0, idx!)], [x, idx], []);
    const compiled = cpu.compile(traced.program);
    const before = cpu.memoryStats();
    expect(() => compiled.run([x._live('t') as CpuHandle, idx._live('t') as CpuHandle], [], [false, false])).toThrow(RangeError);
    expect(cpu.memoryStats().liveBuffers).toBe(before.liveBuffers);
    compiled.dispose();
  });
});

describe('compiled CPU programs: buffers and the profiler', () => {
  it('a second call allocates nothing; dispose frees the held intermediates', () => {
    const x = rn([64, 32], 1);
    const w = rn([32, 32], 2);
    const traced = traceProgram(([x, w]) => {
      const h = tanh(matmul(x!, w!));
      return [sum(matmul(h, w!).mul(h), 1)];
    }, [x, w], []);
    const handles = [x._live('t') as CpuHandle, w._live('t') as CpuHandle];
    const live0 = cpu.memoryStats();
    const compiled = cpu.compile(traced.program);
    cpu.dispose(compiled.run(handles, [], [false, false])[0]!);
    const warm = cpu.memoryStats();
    for (let i = 0; i < 5; i++) cpu.dispose(compiled.run(handles, [], [false, false])[0]!);
    const after = cpu.memoryStats();
    expect(after.allocations).toBe(warm.allocations);
    expect(after.liveBytes).toBe(warm.liveBytes);
    compiled.dispose();
    expect(cpu.memoryStats().liveBytes).toBe(live0.liveBytes);
    expect(cpu.memoryStats().liveBuffers).toBe(live0.liveBuffers);
  });

  it('memoryStats() reports the WebAssembly kernels\' memories apart from live storage', () => {
    const before = cpu.memoryStats();
    // A 320² product lays out A, B, B packed and C (each at least 320² floats) in the matmul's
    // memory; an exp over 2^16 elements, one pass of 8,192 in and out in the elementwise memory.
    const n = 320;
    const a = rn([n, n], 5);
    const b = rn([n, n], 6);
    const x = rn([1 << 16], 7);
    const c = matmul(a, b);
    const y = exp(x);
    const stats = cpu.memoryStats();
    expect(stats.kernelMemoryBytes).toBeGreaterThanOrEqual(4 * n * n * 4 + 2 * 8192 * 4);
    // Not live storage: the live bytes grew by the five tensors' arrays exactly.
    expect(stats.liveBytes - before.liveBytes).toBe((3 * n * n + 2 * (1 << 16)) * 4);
    for (const t of [a, b, x, c, y]) t.dispose();
    expect(cpu.memoryStats().liveBytes).toBe(before.liveBytes);
    // Memories never shrink: smaller calls run in what the larger ones grew.
    const small = rn([64, 64], 8);
    for (const t of [matmul(small, small), exp(small), small]) t.dispose();
    expect(cpu.memoryStats().kernelMemoryBytes).toBe(stats.kernelMemoryBytes);
  });

  it('reports each fused kernel to profile() by name, host-timed, with its bytes and flops', async () => {
    const x = rn([32, 16], 3);
    const w = rn([16, 8], 4);
    const traced = traceProgram(([x, w]) => [sum(exp(matmul(x!, w!)).add(1), 1).mul(2)], [x, w], []);
    const compiled = cpu.compile(traced.program);
    const handles = [x._live('t') as CpuHandle, w._live('t') as CpuHandle];
    const r = await profile(() => {
      const [h] = compiled.run(handles, [], [false, false]);
      cpu.dispose(h!);
    });
    const names = compiled.kernels().map((k) => k.name);
    expect(r.events.map((e) => e.name)).toEqual(names);
    expect(names).toEqual(['fused_matmul_32x8x16', 'fused_sum_32x8_epilogue1']);
    for (const e of r.events) {
      expect(e.device).toBe('cpu');
      expect(e.timing).toBe('host');
      expect(e.duration).toBeGreaterThanOrEqual(0);
    }
    // The product reads x and w and writes C (4 bytes each), 2·m·n·k flops; the sum reads C, writes 32.
    expect(r.events[0]!.bytes).toBe((32 * 16 + 16 * 8 + 32 * 8) * 4);
    expect(r.events[0]!.flops).toBe(2 * 32 * 8 * 16);
    expect(r.events[1]!.bytes).toBe((32 * 8 + 32) * 4);
    compiled.dispose();
  });
});

/**
 * Normal draws of `shape` with the float32 values where elementwise arithmetic goes wrong first
 * (14 specials) written in at each of the element offsets `at`.
 */
function withSpecials(shape: number[], i: number, at: readonly number[] = [0]): Tensor {
  const special = [-0, 0, Number.NaN, Infinity, -Infinity, 1e-45, -1.4e-45, 1.1754942e-38, 3.4028234663852886e38, -3.4028234663852886e38, 1 / 3, 0.1, -1, 1];
  const drawn = rn(shape, i);
  const draws = Array.from(drawn.dataSync());
  drawn.dispose();
  for (const start of at) draws.splice(start, special.length, ...special);
  return tensor(draws, { shape });
}

describe('compiled CPU elementwise work in WebAssembly SIMD: the JavaScript kernels\' bits', () => {
  // Every case runs through compare(): compiled (WebAssembly where it qualifies) against the
  // program run op by op through the eager JavaScript kernels, bit for bit, on −0, NaN, ±∞, subnormals and
  // the float32 extremes as well as normal draws; then again with setCpuWasm(false).
  // NaN operands meet NaN operands here (x + y with both NaN): which one's sign the sum keeps is
  // the compiler's choice in either language, so NaNs compare as NaN (docs/conventions.md).
  // Returns the first run's result (the kernels, which setCpuWasm does not change).
  const both = (f: Parameters<typeof compare>[0], args: Tensor[]) => {
    const result = compare(f, args, [], { anyNaN: true, javascriptReference: true });
    setCpuWasm(false);
    try {
      compare(f, args, [], { anyNaN: true });
    } finally {
      setCpuWasm(true);
    }
    return result;
  };

  /**
   * Runs the eager ops of `ops` with WebAssembly on, then with setCpuWasm(false), and expects every
   * result equal bit for bit (NaN as NaN) and no WebAssembly kernel in the second run. Returns the
   * WebAssembly kernel calls of the first; disposes the results.
   */
  const eagerBothWays = (ops: () => Tensor[]): number => {
    const run = (wasm: boolean) => {
      setCpuWasm(wasm);
      try {
        return ops();
      } finally {
        setCpuWasm(true);
      }
    };
    const before = elementwiseKernelCalls();
    const on = run(true);
    const calls = elementwiseKernelCalls() - before;
    const off = run(false);
    expect(elementwiseKernelCalls() - before).toBe(calls);
    on.forEach((t, i) => expect(canonicalNaNBits(t.dataSync()), `result ${i}`).toEqual(canonicalNaNBits(off[i]!.dataSync())));
    for (const t of [...on, ...off]) t.dispose();
    return calls;
  };

  it('arithmetic, selects, comparisons and casts over 1,001 elements (a partial last vector)', () => {
    const x = withSpecials([7, 143], 0);
    const y = withSpecials([7, 143], 1).flip([0]);
    const { kernels } = both(([x, y]) => [
      x!.add(y!).mul(x!).sub(y!.div(3)),
      x!.neg().reciprocal().add(x!.square()),
      x!.maximum(y!).add(y!.maximum(x!)),
      x!.relu().mul(x!.abs()).add(sign(y!)),
      where(x!.less(y!), x!, y!.mul(2)),
      cast(x!.less(0), 'float32').add(cast(y!.equal(y!), 'float32')),
      sqrt(x!.abs()).sub(reshape(y!, [1001]).reshape([7, 143])),
    ], [x, y]);
    const text = sources(kernels);
    expect(text.length).toBeGreaterThan(0);
    expect(text.every((t) => t.includes('WebAssembly SIMD'))).toBe(true);
  });

  it('broadcasts: a bias over rows (period 132), a scalar, a transpose-free reshape', () => {
    const x = withSpecials([8, 132], 2);
    const b = withSpecials([132], 3);
    const s = tensor([0.75]);
    const { kernels } = both(([x, b, s]) => [x!.add(b!).mul(s!.reshape([])), x!.mul(b!).maximum(s!)], [x, b, s]);
    expect(sources(kernels).every((t) => t.includes('WebAssembly SIMD') && /slot\d+\[i % 132\]/.test(t))).toBe(true);
  });

  it('matmul epilogues: bias, the softplus derivative\'s selects on one condition', () => {
    const x = rn([64, 32], 4);
    const w = rn([32, 16], 5);
    const b = rn([16], 6);
    const g = rn([64, 16], 7);
    const { kernels } = both(([x, w, b, g]) => {
      const z = matmul(x!, w!).add(b!);
      const pos = z.less(0);
      return [where(pos, g!.mul(-1), g!).add(where(pos, z, g!.div(z.add(1))))];
    }, [x, w, b, g]);
    expect(names(kernels)).toEqual(['fused_matmul_64x16x32_epilogue1']);
    expect(sources(kernels)[0]).toContain('WebAssembly SIMD');
  });

  it('eager ops: every elementwise primitive on 1,001 float32 elements and on a row broadcast, WebAssembly against JavaScript', () => {
    const x = withSpecials([7, 143], 13);
    const y = withSpecials([7, 143], 14).flip([1]);
    const r = withSpecials([8, 132], 15);
    const bias = withSpecials([132], 0).mul(0.5);
    const calls = eagerBothWays(() => [
      ...UNARY_PRIMITIVES.map((p) => apply(p, [x], {} as never)),
      ...BINARY_PRIMITIVES.map((p) => apply(p, [x, y], {} as never)),
      ...BINARY_PRIMITIVES.map((p) => apply(p, [r, bias.reshape([1, 132]).expand([8, 132])], {} as never)),
      where(x.less(y), x, y), x.add(2.5),
    ]);
    // At least the arithmetic (add, sub, mul, div, max: twice each), neg, reciprocal, sqrt and the scalar add.
    expect(calls).toBeGreaterThanOrEqual(14);
    for (const t of [x, y, r, bias]) t.dispose();
  });

  it('eager comparisons with bool results and selects on bool conditions (full, row, scalar), bools compared and selected: WebAssembly against JavaScript', () => {
    // 1,001 elements (a partial last vector) with NaN, ±0 and ±∞ on both sides of each comparison.
    const x = withSpecials([7, 143], 24);
    const y = withSpecials([7, 143], 25).flip([1]);
    const r = withSpecials([8, 132], 26);
    const c = x.less(y);
    const d = x.greater(0);
    const rowCondition = withSpecials([132], 27).greater(0);
    const yes = tensor([1]).greater(0).reshape([]);
    const no = tensor([-1]).greater(0).reshape([]);
    const negR = r.neg();
    const ops = () => [
      ...COMPARE_PRIMITIVES.map((p) => apply(p, [x, y], {} as never)),
      where(c, x, y),
      where(c, x, 0),
      where(rowCondition, r, negR),
      where(yes, x, y),
      where(no, x, y),
      where(c, d, c),
      c.equal(d),
      c.notEqual(d),
    ];
    const calls = eagerBothWays(ops);
    // Every op above ran as WebAssembly (a 1,001-element op is one call): the comparisons, five
    // selects on float32 values, one on bools, and == and != of bools.
    expect(calls).toBe(COMPARE_PRIMITIVES.length + 8);
    for (const t of [x, y, r, c, d, rowCondition, yes, no, negR]) t.dispose();
  });

  it('eager sums over leading axes in WebAssembly: the JavaScript kernel\'s order and bits, over one pass and several', () => {
    const a = withSpecials([8, 132], 32);
    const b = withSpecials([4, 6, 132], 33);
    // 13,200 elements: two passes of whole rows (8,184 elements, then the rest).
    const c = withSpecials([100, 132], 34);
    // A column of −0 only: +0 + −0 is +0 in either kernel.
    const z = tensor(new Array(64 * 4).fill(-0)).reshape([64, 4]);
    const odd = withSpecials([7, 143], 35);
    const calls = eagerBothWays(() => [a.sum(0), b.sum([0, 1]), c.sum(0, true), z.sum(0), odd.sum(0)]);
    // All but the sum with a period of 143 (not a multiple of 4).
    expect(calls).toBe(4);
    for (const t of [a, b, c, z, odd]) t.dispose();
  });

  it('kernels that differ only in a constant 0 or −0, ∞, −∞ or NaN are different kernels', () => {
    // Compiled kernels were cached by their spec's JSON, which writes NaN and ±∞ as null and −0 as
    // 0: x · −0 ran x · 0's kernel (+0 for positive x), a NaN constant −∞'s.
    const x = withSpecials([3, 100], 32);
    for (const c of [0, -0, -Infinity, NaN, Infinity, 0]) {
      both(([x]) => [x!.mul(c), full([3, 100], c), x!.add(c)], [x]);
    }
  });

  it('compiled: bools read from arrays (full and row) and stored as results, in WebAssembly', () => {
    const x = withSpecials([8, 132], 28);
    const y = withSpecials([8, 132], 29).flip([1]);
    const m = withSpecials([8, 132], 30).greater(0);
    const row = withSpecials([132], 31).less(0);
    const { kernels } = both(([x, y, m, row]) => [
      where(m!, x!, y!.mul(2)),
      x!.lessEqual(y!),
      where(row!, x!.greater(0), m!),
      m!.equal(x!.less(0)).notEqual(row!),
    ], [x, y, m, row]);
    const text = sources(kernels).join('\n');
    // One segment over [8, 132], all four roots: three of them bools.
    expect(text.match(/^\/\/ WebAssembly SIMD/gm)).toHaveLength(1);
    expect(text).toMatch(/slot\d+\[i % 132\]/);
  });

  it('exp, log, log1p, sigmoid, tanh, expm1, sin and cos (f64 lanes; fdlibm\'s algorithms, or the imported Math function) in softplus, SiLU, tanh, ELU and Fourier epilogues, over the whole float32 range', () => {
    // Values from −200 to 200 and beyond (exp's overflow and underflow, subnormal results), the
    // specials, and normal draws.
    const x = withSpecials([64, 40], 16);
    const w = withSpecials([40, 16], 17).mul(0.01);
    const wide = tensor(Array.from({ length: 1024 }, (_, i) => (i - 512) * 0.39 + (i % 7) * 1e-3)).reshape([64, 16]);
    const { kernels } = both(([x, w, wide]) => {
      const z = matmul(x!, w!).mul(40).add(wide!);
      const e = z.abs().neg().exp();
      return [e, z.maximum(0).add(e.log1p()), z.mul(sigmoid(z)), z.abs().log(), tanh(z).mul(2), expm1(z.minimum(0)), sin(z.mul(30)), cos(z.mul(30)), exp(wide!), log1p(wide!), sigmoid(wide!), tanh(wide!), expm1(wide!), sin(wide!), cos(wide!)];
    }, [x, w, wide]);
    expect(names(kernels)[0]).toMatch(/^fused_matmul_64x16x40_epilogue/);
    expect(sources(kernels).every((t) => t.includes('WebAssembly SIMD'))).toBe(true);
  });

  it('sums over leading axes (bias gradients): accumulated in WebAssembly in the JavaScript kernel\'s order, with prologue and epilogue', () => {
    const g = withSpecials([1024, 128], 18);
    const x = rn([300, 4, 8], 19);
    const w = rn([4, 8], 20);
    const { kernels } = both(([g, x, w]) => [
      sum(g!, 0),
      sum(exp(x!.mul(0.3)).mul(w!).add(1), 0).mul(2),
      sum(x!.mul(x!), [0, 1], true),
    ], [g, x, w]);
    const text = sources(kernels).filter((t) => t.includes('summed in f64'));
    expect(text).toHaveLength(3);
  });

  it('sums over trailing axes whose prologue calls a library function (a softmax\'s sum of exps): the prologue in WebAssembly, each row added in the JavaScript kernel\'s order; rows of 2, 5, 12, 1,024, 1,500 and 16,384, across passes', () => {
    // Rows of 5 (with a column operand, the row's maximum, stored by its own kernel) straddle the
    // passes' boundaries (passes of 8,192 elements); rows of 16,384 span two passes; rows of 12
    // read a row operand (passes of whole periods). Specials sit on both sides of boundaries.
    const x = withSpecials([20, 1024], 40, [0, 1017, 8190, 20460]);
    const five = withSpecials([3000, 5], 41, [0, 8185, 8190]);
    const two = withSpecials([700, 2], 42);
    const twoCol = rn([700, 1], 7);
    const twelve = withSpecials([800, 12], 43);
    const w = rn([12], 8);
    const wide = withSpecials([3, 16384], 44, [0, 16380, 32760]);
    const cube = withSpecials([7, 30, 50], 45);
    const { kernels } = both(([x, five, two, twoCol, twelve, w, wide, cube]) => [
      softmax(x!, 1),
      logsumexp(five!, 1),
      sum(exp(two!.sub(twoCol!)), 1, true),
      sum(sigmoid(twelve!.mul(w!)), 1).mul(2),
      sum(log1p(wide!.abs()), 1),
      sum(tanh(cube!), [1, 2]),
    ], [x, five, two, twoCol, twelve, w, wide, cube]);
    const rowSums = sources(kernels).filter((t) => /summed in f64 into acc\[Math\.floor\(i \/ \d+\)\]/.test(t));
    expect(rowSums.map((t) => t.match(/Math\.floor\(i \/ (\d+)\)/)![1])).toEqual(['1024', '5', '2', '12', '16384', '1500']);
    // Plain arithmetic (no library call) keeps the JavaScript kernel, which is as fast.
    const plain = both(([x]) => [sum(x!.mul(x!), 1)], [x]);
    expect(sources(plain.kernels).join('\n')).not.toMatch(/summed in f64/);
    for (const t of [x, five, two, twoCol, twelve, w, wide, cube]) t.dispose();
  });

  it('views that no operand pattern reads (a transpose, a permutation, a slice of columns, a broadcast between axes, bools) are copied densely first; the segments run in WebAssembly', () => {
    const x = withSpecials([40, 33], 46);
    const y = withSpecials([33, 40], 47);
    const z = withSpecials([6, 7, 40], 48);
    const m = withSpecials([40, 33], 49).greater(0);
    const b = withSpecials([6, 1, 40], 50);
    const { kernels } = both(([x, y, z, m, b]) => [
      x!.transpose().add(y!).exp(),
      where(m!.transpose(), y!, x!.transpose().mul(3)),
      permute(z!, [2, 0, 1]).mul(3).add(1),
      sigmoid(slice(y!, [1, 4], [32, 32]).mul(2)).add(slice(y!, [0, 0], [32, 32])),
      broadcastTo(b!, [6, 7, 40]).add(z!),
    ], [x, y, z, m, b]);
    const text = sources(kernels).join('\n');
    const copies = text.match(/gather\d+ = slot\d+ from \d+, shape \[[\d, ]+\], strides \[[\d, ]+\], copied densely first/g) ?? [];
    // Each copy has its own array in its kernel; the next test shares them across kernels.
    const targets = text.match(/copied densely first into slot\d+/g) ?? [];
    expect(new Set(targets).size).toBe(targets.length);
    // x transposed (read twice, copied once), m transposed, z permuted, two blocks of y's
    // columns (the same shape and strides at two offsets), b broadcast.
    expect(copies.map((c) => c.replace(/^gather\d+ = slot\d+ /, ''))).toEqual(expect.arrayContaining([
      'from 0, shape [33, 40], strides [1, 33], copied densely first',
      'from 0, shape [40, 6, 7], strides [1, 280, 40], copied densely first',
      'from 44, shape [32, 32], strides [40, 1], copied densely first',
      'from 0, shape [32, 32], strides [40, 1], copied densely first',
      'from 0, shape [6, 7, 40], strides [40, 0, 1], copied densely first',
    ]));
    expect(copies).toHaveLength(6);
    expect(sources(kernels).every((t) => t.startsWith('// WebAssembly SIMD'))).toBe(true);
    for (const t of [x, y, z, m, b]) t.dispose();
  });

  it('copies of views and rows of sums are scratch of their kernel: kernels that run one after another share it', () => {
    // Two kernels, each copying a transposed [40, 33] view (the second needs the first's sum),
    // and two row sums of exps of that shape: one array for both copies, one for both rows.
    const x = withSpecials([33, 40], 51);
    const y = withSpecials([33, 40], 52);
    const { kernels } = both(([x, y]) => {
      const a = exp(x!.transpose());
      const b = y!.transpose().mul(sum(a));
      return [a, b, sum(exp(a), 1), sum(exp(b), 1)];
    }, [x, y]);
    const text = sources(kernels).join('\n');
    const targets = text.match(/copied densely first into slot\d+/g) ?? [];
    expect(targets).toHaveLength(2);
    expect(new Set(targets).size, 'one array for both copies').toBe(1);
    const rows = text.match(/^\/\/ acc = slot\d+, doubles/gm) ?? [];
    expect(rows).toHaveLength(2);
    expect(new Set(rows).size, 'one row of doubles for both sums').toBe(1);
    for (const t of [x, y]) t.dispose();
  });

  it('calls longer than a pass (8,192 elements) run in passes: full, row and scalar operands, partial last vectors, sums; eager and compiled', () => {
    // 3 × 8,191 = 24,573 elements: passes of 8,192 with a partial last vector. Rows of period 132
    // (passes of 8,184, whole periods) over 70 × 132 = 9,240 elements, and the column sums of
    // that shape (an accumulation row of 132 doubles, added to across passes). Specials sit on
    // both sides of each pass boundary.
    const x = withSpecials([3, 8191], 21, [0, 8185, 16377, 24559]);
    const y = withSpecials([3, 8191], 22, [7, 8188, 16380]);
    const r = withSpecials([70, 132], 23, [0, 8177, 9226]);
    const bias = withSpecials([132], 24);
    const { kernels } = both(([x, y, r, bias]) => [
      x!.mul(y!).add(x!.exp()).sub(y!.mul(0.5)),
      r!.add(bias!).mul(r!.log1p()),
      sum(r!.mul(bias!).add(1), 0),
    ], [x, y, r, bias]);
    expect(sources(kernels).every((t) => t.includes('WebAssembly SIMD'))).toBe(true);
    expect(sources(kernels).filter((t) => t.includes('summed in f64'))).toHaveLength(1);
    // The same shapes through eager ops: WebAssembly against JavaScript.
    expect(eagerBothWays(() => [x.mul(y), x.exp(), r.add(bias), r.log1p(), x.add(2.5)])).toBe(5);
    for (const t of [x, y, r, bias]) t.dispose();
  });

  it('column broadcasts (a value per row, spread over the row) in WebAssembly, eager and compiled: softmax and layer norm, runs of 3, 5, 1,024 and 16,384, a condition per row', () => {
    // A [rows, 1] operand against [rows, n]: the pass loop fills each value over its run (`col`),
    // or, for runs of 256 or more, stops its passes at their ends and hands the kernel one value.
    // Runs of 5 and 3 are not whole vectors; one of 16,384 spans two passes; one with a leading
    // broadcast repeats its values (⌊i / 5⌋ mod 7). Specials sit in the operands and the longer columns.
    const x = withSpecials([20, 1024], 31, [0, 1017, 8190, 20460]);
    const col = withSpecials([20, 1], 32);
    const five = withSpecials([200, 5], 33, [0, 980]);
    const fiveCol = withSpecials([200, 1], 34);
    const wide = withSpecials([3, 16384], 35, [0, 16380, 32760]);
    const wideCol = rn([3, 1], 36 % 16);
    const three = withSpecials([100, 3], 37);
    const threeCol = rn([100, 1], 6);
    const rep = withSpecials([8, 7, 5], 38);
    const repCol = rn([7, 1], 39 % 16);
    const cond = tensor(Array.from({ length: 20 }, (_, i) => i % 3), { shape: [20, 1] }).greater(0);
    const calls = eagerBothWays(() => [
      x.sub(col), col.mul(x), five.div(fiveCol), wide.add(wideCol).exp(), rep.mul(repCol),
      three.sub(threeCol), where(broadcastTo(cond, [20, 1024]), x, col),
    ]);
    expect(calls, 'every op in WebAssembly').toBe(8);
    // Compiled: the per-row values (a maximum, a log-sum-exp, a mean and a variance) are stored by
    // small kernels, and the kernels over [20, 1024] read them as column operands in WebAssembly.
    const { kernels } = both(([x]) => [softmax(x!, 1), layerNorm(x!, [1024]), x!.sub(logsumexp(x!, 1, true)).exp()], [x]);
    const wide2 = sources(kernels).filter((t) => t.includes('i over [0, 20480)'));
    expect(wide2.length, 'the kernels over [20, 1024]').toBeGreaterThanOrEqual(2);
    for (const t of wide2) expect(t).toMatch(/Math\.floor\(i \/ 1024\) % 20/);
    for (const t of [x, col, five, fiveCol, wide, wideCol, three, threeCol, rep, repCol, cond]) t.dispose();
    // Runs of 1,024 and 16,384 bound the passes (colRuns): each column operand one value a pass,
    // splatted by the kernel. Runs of 5 or 3, a gcd under 256, or an accumulating kernel: filled.
    const leaf = (l: WasmKernelSpec['leaves'][number]): WasmKernelSpec => ({ leaves: [{ kind: 'full' }, l], nodes: [{ kind: 'leaf', leaf: 0 }, { kind: 'leaf', leaf: 1 }, { kind: 'expr', expr: elementwiseExpression('sub', 'float32'), args: [0, 1] }], outputs: [2] });
    expect(colRuns(leaf({ kind: 'col', repeat: 1024, period: 20 }))).toBe(1024);
    expect(colRuns(leaf({ kind: 'col', repeat: 16384, period: 3 }))).toBe(16384);
    expect(colRuns(leaf({ kind: 'col', repeat: 5, period: 7 }))).toBe(0);
    expect(colRuns({ ...leaf({ kind: 'col', repeat: 1024, period: 20 }), leaves: [{ kind: 'full' }, { kind: 'col', repeat: 1024, period: 20 }, { kind: 'col', repeat: 260, period: 2 }] })).toBe(0);
    expect(colRuns({ ...leaf({ kind: 'col', repeat: 1024, period: 20 }), accumulate: 1024 })).toBe(0);
  });

  it('a range function reads only its operands from its array of operands then results (the results are written, never read)', () => {
    // Operands: a row of period 4 and a full array; one result, their sum, over 3 passes' worth of
    // units split into two ranges. The range function hands the pass loop one array (operands,
    // then results): every read of a result's array would be a read of an operand that is not one.
    const spec: WasmKernelSpec = {
      leaves: [{ kind: 'row', period: 4 }, { kind: 'full' }],
      nodes: [{ kind: 'leaf', leaf: 0 }, { kind: 'leaf', leaf: 1 }, { kind: 'expr', expr: elementwiseExpression('add', 'float32'), args: [0, 1] }],
      outputs: [2],
    };
    const kernel = elementwiseKernel(JSON.stringify(spec), spec);
    expect(kernel).not.toBeNull();
    const count = 3 * 8192 + 12;
    const range = new Function('wasmElementwiseInstance', `return ${elementwiseRangeSource('sum', kernel!.bytes, spec, count, [4, 1], kernel!.shared)}`)(wasmElementwiseInstance) as
      (B: Float32Array[], start: number, end: number) => void;
    const row = Float32Array.from({ length: 8 }, (_, i) => i + 0.25);
    const full = Float32Array.from({ length: count + 1 }, (_, i) => i * 3);
    const out = new Float32Array(count).fill(Number.NaN);
    let resultReads = 0;
    const subarray = out.subarray.bind(out);
    out.subarray = (...args: Parameters<Float32Array['subarray']>) => {
      resultReads++;
      return subarray(...args);
    };
    const units = count / rangeUnit(spec);
    range([row, full, out], 0, 3000);
    range([row, full, out], 3000, units);
    expect(resultReads).toBe(0);
    // Element i: row[4 + i mod 4] + full[1 + i], each exact in float32 (sums below 2^24 of quarters).
    expect(Array.from(out)).toEqual(Array.from({ length: count }, (_, i) => Math.fround(row[4 + (i % 4)]! + full[1 + i]!)));
  });

  it('two vectors an iteration: every count of vectors, even and odd, with rows wrapping between the two and sums of rows; plain column sums by blocks of columns, the same doubles', () => {
    // out = exp(row[i mod 12] + full[i]); a row of 12 elements is three vectors, so its offset
    // wraps in either half of an iteration. Counts of 3 to 27 vectors (one pass each), and one of
    // 2049 vectors over passes of 2048.
    const spec: WasmKernelSpec = {
      leaves: [{ kind: 'row', period: 12 }, { kind: 'full' }],
      nodes: [
        { kind: 'leaf', leaf: 0 }, { kind: 'leaf', leaf: 1 }, { kind: 'expr', expr: elementwiseExpression('add', 'float32'), args: [0, 1] },
        { kind: 'expr', expr: elementwiseExpression('exp', 'float32'), args: [2] },
      ],
      outputs: [3],
    };
    const kernel = elementwiseKernel(JSON.stringify(spec), spec)!;
    expect(kernel).not.toBeNull();
    const row = Float32Array.from({ length: 12 }, (_, i) => (i - 6) / 4);
    const expected = (full: Float32Array, i: number) => Math.fround(Math.exp(Math.fround(row[i % 12]! + full[i]!)));
    for (const count of [12, 24, 36, 48, 60, 72, 84, 96, 108, 12 * 683]) {
      const full = Float32Array.from({ length: count }, (_, i) => Math.sin(i) * 3);
      const out = new Float32Array(count + 4).fill(Number.NaN);
      kernel.run([row, full], [0, 0], [out], count);
      expect(Array.from(out.subarray(0, count)), `${count / 4} vectors`).toEqual(Array.from({ length: count }, (_, i) => expected(full, i)));
      // Nothing past the count (the last vector ends at it).
      expect(Array.from(out.subarray(count)).every(Number.isNaN)).toBe(true);
    }
    // A kernel without math keeps one vector an iteration: the same counts.
    const plainSpec: WasmKernelSpec = { ...spec, nodes: spec.nodes.slice(0, 3), outputs: [2] };
    const plain = elementwiseKernel(JSON.stringify(plainSpec), plainSpec)!;
    for (const count of [12, 24, 36, 12 * 683]) {
      const full = Float32Array.from({ length: count }, (_, i) => Math.sin(i) * 3);
      const out = new Float32Array(count);
      plain.run([row, full], [0, 0], [out], count);
      expect(Array.from(out)).toEqual(Array.from({ length: count }, (_, i) => Math.fround(row[i % 12]! + full[i]!)));
    }
    // The sums of rows of 12 (accumulate): vector by vector in order, in doubles.
    const sums = elementwiseKernel(JSON.stringify({ ...spec, accumulate: 12 }), { ...spec, accumulate: 12 })!;
    for (const count of [12, 36, 60, 12 * 683]) {
      const full = Float32Array.from({ length: count }, (_, i) => Math.cos(i));
      const acc = new Float64Array(12);
      sums.sum([row, full], [0, 0], acc, count);
      const want = new Float64Array(12);
      for (let i = 0; i < count; i++) want[i % 12] = want[i % 12]! + expected(full, i);
      expect(Array.from(acc), `${count / 4} vectors summed`).toEqual(Array.from(want));
    }
    // A plain column sum (the summed value is the operand itself) runs by blocks of eight columns,
    // four at the end: rows of 4, 8, 12, 20 and 128, over one pass and several (passes of whole
    // rows near 8,192 elements), with NaN, infinities, signed zeros and values whose order matters
    // in doubles (2^60, 1, −2^60). The same doubles as adding element by element in order.
    for (const period of [4, 8, 12, 20, 128]) {
      const plainSum: WasmKernelSpec = { leaves: [{ kind: 'full' }], nodes: [{ kind: 'leaf', leaf: 0 }], outputs: [0], accumulate: period };
      const kernel = elementwiseKernel(JSON.stringify(plainSum), plainSum)!;
      for (const rows of [1, 3, 700, 3000]) {
        const count = rows * period;
        const full = Float32Array.from({ length: count }, (_, i) => [2 ** 60, 1, -(2 ** 60), -0, Math.sin(i) * 1e3][i % 5]!);
        if (count > 40) {
          full[period + 1] = Number.NaN;
          full[2 * period + 2] = Number.POSITIVE_INFINITY;
          full[3 * period + 3] = Number.NEGATIVE_INFINITY;
          full[3 * period + 4] = Number.POSITIVE_INFINITY;
        }
        const acc = new Float64Array(period);
        kernel.sum([full], [0], acc, count);
        const want = new Float64Array(period);
        for (let i = 0; i < count; i++) want[i % period] = want[i % period]! + full[i]!;
        expect(canonicalNaNBits(acc), `rows of ${period}, ${rows} of them`).toEqual(canonicalNaNBits(want));
      }
    }
  });

  it('a root read back through reshapes by another root of its segment: read as computed, not from its array', () => {
    // y is stored by the kernel and z reads it through reshapes (linear access, same shape): both
    // roots of one segment, so z must see y's new values, not what y's array held before.
    const x = withSpecials([16, 16], 21);
    const { kernels } = both(([x]) => {
      const y = x!.mul(3).add(1);
      const z = reshape(reshape(y, [256]).add(0.5), [16, 16]).mul(2);
      return [y, z];
    }, [x]);
    expect(names(kernels)).toEqual(['fused_elementwise_[16,16]x2']);
    expect(sources(kernels)[0]).toContain('WebAssembly SIMD');
  });

  it('a matmul epilogue root read back through reshapes by a later epilogue root: read as computed', () => {
    const x = rn([64, 32], 25);
    const w = rn([32, 16], 26);
    const b = rn([16], 27);
    const { kernels } = both(([x, w, b]) => {
      const z = matmul(x!, w!);
      const y = z.add(b!);
      return [y, reshape(reshape(y, [1024]).mul(2), [64, 16]).add(z)];
    }, [x, w, b]);
    expect(names(kernels)).toEqual(['fused_matmul_64x16x32_epilogue2']);
    expect(sources(kernels)[0]).toContain('WebAssembly SIMD');
  });

  it('operands at offsets (slices), period-4 and scalar broadcasts, selects on computed conditions, bool casts in the chain', () => {
    // 3 x 339 = 1,017 elements (a partial last vector); slices start at element 1 and 2 of their arrays.
    const z = withSpecials([1020], 22);
    const q = withSpecials([1020], 23);
    const r4 = tensor([0.5, -2, 3, -0]);
    const s = tensor(0.25);
    const { kernels } = both(([z, q, r4, s]) => {
      const a = slice(z!, [1], [1017]).reshape([3, 339]);
      const b = slice(q!, [2], [1017]).reshape([3, 339]);
      const c = where(a.greater(b), a.mul(s!), cast(a.less(0), 'float32').add(b));
      return [c, a.sub(b).mul(cast(b.equal(b), 'float32')), q!.reshape([255, 4]).mul(r4!).add(s!)];
    }, [z, q, r4, s]);
    const text = sources(kernels).join('\n');
    // Two segments ([3,339] and [255,4]), both WebAssembly, reading the slices at their offsets.
    expect(text.match(/^\/\/ WebAssembly SIMD/gm)).toHaveLength(2);
    expect(text).toMatch(/slot\d+\[1 \+ i\]/);
    expect(text).toMatch(/slot\d+\[2 \+ i\]/);
    expect(text).toMatch(/slot\d+\[i % 4\]/);
  });

  it('kernels over arrays of any length are planned in WebAssembly; only a row too long for the module\'s 1 GiB keeps the JavaScript kernel (planned, not run)', () => {
    // A call lays out one pass (at most 8,192 elements) of each full operand and output in one
    // memory of at most 2^30 bytes (16,384 pages), and each row operand whole. So 8 full operands
    // of 2^25 elements (2^30 bytes of arrays) and a bias row qualify, and so do their column sums;
    // a row of 2^28 floats (2^30 bytes by itself) does not, nor does a sum into 2^27 doubles.
    // Plans only: no array is made.
    const n = 2 ** 25;
    const shape = [n / 128, 128];
    let id = 0;
    const v = (dtype: 'float32' = 'float32', s: readonly number[] = shape): ProgramVar => ({ id: id++, shape: s, dtype });
    const definitions = new Map<number, Equation>();
    const locations = new Map<number, { slot: number; offset: number; strides: readonly number[] }>();
    const chain = (operands: readonly ProgramVar[]) => operands.slice(1).reduce((acc: ProgramVar, x) => {
      const out = v('float32', acc.shape);
      definitions.set(out.id, { prim: 'add', inputs: [acc, x], params: {} as never, out });
      return out;
    }, operands[0]!);
    const ctx = { definitions, locate: (x: ProgramVar) => locations.get(x.id) ?? null };
    const dense = (s: readonly number[]) => [s[1]!, 1];
    const operands = (s: readonly number[], count: number, withRow = false) => {
      const xs = Array.from({ length: count }, () => v('float32', s));
      xs.forEach((x) => locations.set(x.id, { slot: locations.size, offset: 0, strides: dense(s) }));
      if (!withRow) return xs;
      const row = v('float32', s);
      locations.set(row.id, { slot: locations.size, offset: 0, strides: [0, 1] });
      return [...xs, row];
    };
    const planned = (s: readonly number[], xs: readonly ProgramVar[]) => {
      const root = chain(xs);
      locations.set(root.id, { slot: locations.size, offset: 0, strides: dense(s) });
      return planWasmSegment(ctx, s, [root]);
    };
    expect(planned(shape, operands(shape, 8, true))).not.toBeNull();
    expect(planWasmSum(ctx, chain(operands(shape, 8)), 128)).not.toBeNull();
    const long = [2, 2 ** 28];
    expect(planned(long, operands(long, 1, true))).toBeNull();
    const wide = [2, 2 ** 27];
    expect(planWasmSum(ctx, chain(operands(wide, 2)), 2 ** 27)).toBeNull();
  });

  it('keeps the JavaScript kernel where a period is not a multiple of 4 (a transposed read in that segment is then read in place, not copied), the dtype is not float32, or the work is small', () => {
    const x = rn([8, 130], 8);
    const b = rn([130], 9);
    const t = rn([130, 8], 10);
    const d = rn([40, 40], 11, 'float64');
    const small = rn([255], 12);
    const { kernels } = both(([x, b, t, d, small]) => [x!.add(b!), x!.mul(permute(t!, [1, 0])), d!.mul(d!), small!.mul(2)], [x, b, t, d, small]);
    for (const text of sources(kernels)) expect(text).not.toContain('WebAssembly');
    for (const text of sources(kernels)) expect(text).not.toContain('copied densely');
  });
});

describe('the epilogue of a batched activations × weight product ([b, s, d] @ [d, h]): in the product\'s kernel, the eager bits', () => {
  // matmul folds x's batch into the rows of one [b·s, d] @ [d, h] product and reshapes it to
  // [b, s, h]; the CPU's plan takes values read through that reshape into the product's epilogue
  // (splitRowEpilogues), as for a 2-D x. Each case runs compiled against the program run op by op
  // through the eager kernels, bit for bit: WebAssembly on and off, one thread and two (the
  // epilogue split by rows across the workers).
  const paths = (f: Parameters<typeof compare>[0], args: Tensor[]): Compared => {
    let first: Compared | null = null;
    try {
      setRangeThreadMinElementsForTesting(1 << 8);
      for (const threads of [1, 2]) {
        setCpuThreads(threads);
        for (const wasm of [true, false]) {
          setCpuWasm(wasm);
          const result = compare(f, args, [], { anyNaN: true });
          first ??= result;
          expect(names(result.kernels), `threads ${threads}, wasm ${wasm}`).toEqual(names(first.kernels));
        }
      }
    } finally {
      setCpuWasm(true);
      setCpuThreads(undefined);
      setRangeThreadMinElementsForTesting(undefined);
    }
    return first!;
  };
  const [b, s, d, h] = [4, 25, 36, 20];

  it('bias and relu, silu and gelu chains: one kernel, as the 2-D product\'s; float32 and float64', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([b, s, d], 0, dtype);
      const w = rn([d, h], 1, dtype);
      const bias = rn([h], 2, dtype);
      const flat = paths(([x, w, bias]) => [matmul(x!.reshape([b * s, d]), w!).add(bias!).relu()], [x, w, bias]);
      const batched = paths(([x, w, bias]) => [matmul(x!, w!).add(bias!).relu()], [x, w, bias]);
      expect(names(batched.kernels)).toEqual(names(flat.kernels));
      expect(names(batched.kernels)).toEqual([`fused_matmul_${b * s}x${h}x${d}_epilogue1`]);
      const chain = (z: Tensor) => [z.silu(), z.gelu(), z.gelu({ approximate: 'tanh' }).mul(z.sigmoid())];
      const flatChains = paths(([x, w, bias]) => chain(matmul(x!.reshape([b * s, d]), w!).add(bias!)), [x, w, bias]);
      const chains = paths(([x, w, bias]) => chain(matmul(x!, w!).add(bias!)), [x, w, bias]);
      expect(names(chains.kernels)).toEqual(names(flatChains.kernels));
      expect(names(chains.kernels)).toHaveLength(1);
      if (dtype === 'float32') expect(sources(chains.kernels)[0]).toContain('WebAssembly SIMD');
      for (const t of [x, w, bias]) t.dispose();
    }
  });

  it('operands broadcast as [h], [b, 1, h], [s, h], [b, s, 1] and [b, s, h], read at the coordinates of each element\'s row-major index', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([b, s, d], 3, dtype);
      const w = rn([d, h], 4, dtype);
      const operands = [[h], [b, 1, h], [s, h], [b, s, 1], [b, s, h]].map((shape, i) => rn(shape, 5 + i, dtype));
      for (const [i, op] of operands.entries()) {
        const { kernels } = paths(([x, w, op]) => [matmul(x!, w!).mul(op!).add(op!).relu()], [x, w, op]);
        expect(names(kernels), `operand ${i}, ${dtype}`).toEqual([`fused_matmul_${b * s}x${h}x${d}_epilogue1`]);
      }
      // All at once, with the product returned too, and a value of the product's own shape read
      // back from the epilogue (the next product's operand, folded again).
      const { kernels } = paths(([x, w, o0, o1, o2, o3, o4]) => {
        const p = matmul(x!, w!);
        const y = p.add(o0!).mul(o1!).sub(o2!).add(o3!).add(o4!).relu();
        return [p, y, y.reshape([b * s, h]).mul(2).add(p.reshape([b * s, h]))];
      }, [x, w, ...operands]);
      expect(names(kernels), dtype).toEqual([`fused_matmul_${b * s}x${h}x${d}_epilogue3`]);
      // A 4-D activation: the rows split into three axes.
      const x4 = rn([2, 2, s, d], 10, dtype);
      const bias4 = rn([2, 1, s, 1], 11, dtype);
      const four = paths(([x, w, c]) => [matmul(x!, w!).add(c!).relu()], [x4, w, bias4]);
      expect(names(four.kernels), dtype).toEqual([`fused_matmul_${b * s}x${h}x${d}_epilogue1`]);
      for (const t of [x, w, x4, bias4, ...operands]) t.dispose();
    }
  });

  it('a batched product\'s rows merged ([b, s, h] read as [b·s, h]): its bias and activation in its kernel', () => {
    // Both operands batched: the product is [b, s, h] itself (batch entries of [s, d] @ [d, h]),
    // read through a reshape joining its batch and rows, the same memory in the same order.
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([b, s, d], 19, dtype);
      const w = rn([b, d, h], 20, dtype);
      const bias = rn([h], 21, dtype);
      const { kernels } = paths(([x, w, bias]) => [matmul(x!, w!).reshape([b * s, h]).add(bias!).relu()], [x, w, bias]);
      expect(names(kernels), dtype).toEqual([`fused_matmul_${s}x${h}x${d}_batch${b}_epilogue1`]);
      // Merged and split again, beside a value of the product's own shape.
      const both = paths(([x, w, bias]) => {
        const p = matmul(x!, w!);
        const y = p.reshape([b * s, h]).mul(bias!).silu();
        return [y, y.reshape([b, s, h]).add(p)];
      }, [x, w, bias]);
      expect(names(both.kernels), dtype).toEqual([`fused_matmul_${s}x${h}x${d}_batch${b}_epilogue2`]);
      for (const t of [x, w, bias]) t.dispose();
    }
  });

  it('an epilogue operand computed from an input and broadcast (b², b·2, exp(b) read by two products): the epilogue stays in the product\'s kernel', () => {
    // The operand is stored by a small kernel of its own (broadcastStoreMin), now placed before
    // the product's, which then takes the bias and activation; 2-D and batched activations.
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([b, s, d], 22, dtype);
      const w = rn([d, h], 23, dtype);
      const w2 = rn([d, h], 24, dtype);
      const bias = rn([h], 25, dtype);
      for (const [label, op] of [['square', (t: Tensor) => t.square()], ['times 2', (t: Tensor) => t.mul(2)]] as const) {
        const flat = paths(([x, w, bias]) => [matmul(x!.reshape([b * s, d]), w!).add(op(bias!)).tanh()], [x, w, bias]);
        expect(names(flat.kernels), `${label}, ${dtype}`).toEqual([`fused_elementwise_[${h}]x1`, `fused_matmul_${b * s}x${h}x${d}_epilogue1`]);
        const batched = paths(([x, w, bias]) => [matmul(x!, w!).add(op(bias!)).relu()], [x, w, bias]);
        expect(names(batched.kernels), `${label}, ${dtype}`).toEqual([`fused_elementwise_[${h}]x1`, `fused_matmul_${b * s}x${h}x${d}_epilogue1`]);
      }
      const shared = paths(([x, w, w2, bias]) => {
        const e = bias!.exp();
        return [matmul(x!, w!).add(e).tanh(), matmul(x!, w2!).mul(e).silu()];
      }, [x, w, w2, bias]);
      expect(names(shared.kernels), dtype).toEqual([`fused_elementwise_[${h}]x1`, `fused_matmul_${b * s}x${h}x${d}_epilogue1`, `fused_matmul_${b * s}x${h}x${d}_epilogue1_2`]);
      for (const t of [x, w, w2, bias]) t.dispose();
    }
  });

  it('a reshape that merges rows, one that changes the columns, and a transpose are not fused, and are right', () => {
    const x = rn([b, s, d], 12);
    const w = rn([d, h], 13);
    const merged = rn([b, s * h], 14);
    const split = rn([b, s, h / 2, 2], 15);
    const transposed = rn([b, h, s], 16);
    for (const [label, f] of [
      ['rows merged', ([x, w, c]: readonly Tensor[]) => [matmul(x!, w!).reshape([b, s * h]).add(c!).relu()]],
      ['columns split', ([x, w, c]: readonly Tensor[]) => [matmul(x!, w!).reshape([b, s, h / 2, 2]).mul(c!).silu()]],
      ['transposed', ([x, w, c]: readonly Tensor[]) => [permute(matmul(x!, w!), [0, 2, 1]).add(c!).relu()]],
    ] as const) {
      const c = label === 'rows merged' ? merged : label === 'columns split' ? split : transposed;
      const { kernels } = paths(f, [x, w, c]);
      expect(names(kernels), label).toHaveLength(2);
      expect(names(kernels)[0], label).toBe(`fused_matmul_${b * s}x${h}x${d}`);
    }
    for (const t of [x, w, merged, split, transposed]) t.dispose();
  });

  it('a keepdims row sum read as [b, s, 1] (a layer norm\'s mean and variance), and a full one as [1, 1]: the epilogue in the sum\'s kernel', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([b, s, h], 26, dtype);
      const keepdims = paths(([x]) => [x!.sum(-1, true).div(h).add(1e-5).sqrt()], [x]);
      expect(names(keepdims.kernels), dtype).toEqual([`fused_sum_${b * s}x${h}_epilogue1`]);
      const rows = paths(([x]) => [sum(x!.reshape([b * s, h]).square(), 1).reshape([b, s, 1]).div(h).log()], [x]);
      expect(names(rows.kernels), dtype).toEqual([`fused_sum_${b * s}x${h}_epilogue1`]);
      const full = paths(([x]) => [sum(x!.reshape([b * s, h]), [0, 1], true).div(b * s * h).exp()], [x]);
      expect(names(full.kernels), dtype).toEqual([`fused_sum_1x${b * s * h}_epilogue1`]);
      x.dispose();
    }
  });

  it('a sum\'s epilogue read through a reshape splitting its rows ([b·s, h] as [b, s, h])', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const x = rn([b * s, 3, h], 17, dtype);
      const c = rn([s, h], 18, dtype);
      const { kernels } = paths(([x, c]) => [sum(x!.exp(), 1).reshape([b, s, h]).log().mul(c!)], [x, c]);
      expect(names(kernels), dtype).toEqual([`fused_sum_${b * s * h}x3_epilogue1`]);
      for (const t of [x, c]) t.dispose();
    }
  });
});

describe('rounding steps a fused float32 program keeps', () => {
  // Found by mutating the JavaScript writer: nothing else failed when these roundings went.
  it('a reciprocal is rounded to float32 before the next op reads it', () => {
    const xs = Array.from({ length: 37 }, (_, i) => Math.fround(3 + i * 0.37));
    const want = xs.map((x) => Math.fround(Math.fround(1 / x) * 3));
    for (const wasm of [true, false]) {
      setCpuWasm(wasm);
      try {
        expect(Array.from(jit((x: Tensor) => mul(reciprocal(x), 3))(tensor(xs)).dataSync()), `wasm ${wasm}`).toEqual(want);
      } finally {
        setCpuWasm(true);
      }
    }
  });
  it('float32 → int32 → float32 truncates (−1, 0) to +0, as the eager casts do', () => {
    const xs = [-0.5, -0.25, 0.75, -1.5, -0];
    const f = (x: Tensor) => cast(cast(x, 'int32'), 'float32');
    const eager = Array.from(f(tensor(xs)).dataSync());
    const fused = Array.from(jit(f)(tensor(xs)).dataSync());
    expect(eager.map((v) => Object.is(v, -0))).toEqual([false, false, false, false, false]);
    expect(fused.map((v) => Object.is(v, -0))).toEqual([false, false, false, false, false]);
    expect(fused).toEqual([0, 0, 0, -1, 0]);
  });
  it('max over −∞ only is −∞ (its identity), eager and fused, float32 and float64', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const x = tensor([[-Infinity, -Infinity, -Infinity]], { dtype });
      expect(Array.from(max(x).dataSync()), dtype).toEqual([-Infinity]);
      expect(Array.from(max(x, 1).dataSync()), dtype).toEqual([-Infinity]);
      expect(Array.from(jit((v: Tensor) => max(v, 1).add(0))(x).dataSync()), `jit ${dtype}`).toEqual([-Infinity]);
    }
  });
});

describe('kernel writer index arithmetic under jit', () => {
  it('an indexSelect along axis 1 (and 2) inside an elementwise kernel reads the index at the gathered axis', async () => {
    const x = arange(24).reshape([2, 3, 4]);
    const along1 = (t: Tensor) => indexSelect(t.mul(2), 1, [2, 0, 2, 1]).add(1);
    const along2 = (t: Tensor) => indexSelect(t.add(1), 2, [3, 0]).mul(3);
    // out[i, j, k] = 2·x[i, idx[j], k] + 1, with x[i, j, k] = 12i + 4j + k
    const want1 = [];
    for (let i = 0; i < 2; i++) for (const j of [2, 0, 2, 1]) for (let k = 0; k < 4; k++) want1.push(2 * (12 * i + 4 * j + k) + 1);
    const want2 = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (const k of [3, 0]) want2.push(3 * (12 * i + 4 * j + k + 1));
    expect(Array.from(await along1(x).data())).toEqual(want1);
    expect(Array.from(await jit(along1)(x).data())).toEqual(want1);
    expect(Array.from(await jit(along2)(x).data())).toEqual(want2);
    expect(Array.from(await jit((t: Tensor) => t.flip(1).mul(2))(x).data())).toEqual(Array.from(await x.flip(1).mul(2).data()));
  });
});

describe('compiled kernels round every fused value as a store would, and check a fused gather\'s index', () => {
  it('an int32 negation wraps inside a fused chain: −(−2³¹) is −2³¹ before a cast to float32', () => {
    const x = tensor([-(2 ** 31), 5, -7], { dtype: 'int32' });
    const f = ([a]: readonly Tensor[]) => [cast(neg(a!), 'float32')];
    // Eager: the negation is stored in an Int32Array (wrapping 2³¹ to −2³¹), then cast exactly.
    expect(Array.from(f([x])[0]!.dataSync())).toEqual([-(2 ** 31), -5, 7]);
    // Compiled (neg and cast fused in one loop): the same bits.
    expectCompiledMatches(cpu, f, [x], { bits: bitsOf });
  });

  it('an int32 cast to float32 rounds inside a fused chain: (float32)16777217 + 0.5 is 16777216', () => {
    const x = tensor([16777217, 3], { dtype: 'int32' });
    const y = tensor([0.5, 0.5], { dtype: 'float32' });
    const f = ([a, b]: readonly Tensor[]) => [add(cast(a!, 'float32'), b!)];
    // Eager: 16777217 → 16777216 (float32 spacing 2 at 2²⁴); 16777216 + 0.5 rounds to even, 16777216.
    // Unrounded, 16777217.5 would round up to 16777218.
    expect(Array.from(f([x, y])[0]!.dataSync())).toEqual([16777216, 3.5]);
    expectCompiledMatches(cpu, f, [x, y], { bits: bitsOf });
  });
  it('a fused gather at an index equal to the extent is the eager range error, not a read past the end', () => {
    const x = tensor(Array.from({ length: 20 }, (_, i) => i), { shape: [5, 4], dtype: 'float32' });
    const idx = tensor([1, 5], { dtype: 'int32' });
    // x.add(1) makes the gather a read inside a fused kernel (not a gatherInto copy).
    const traced = traceProgram(([a, i]) => [indexSelect(a!.add(1), 0, i!)], [x, idx], []);
    const compiled = cpu.compile(traced.program);
    try {
      expect(() => compiled.run([x._live('t') as CpuHandle, idx._live('t') as CpuHandle], [], [false, false]))
        .toThrow('gather: index 5 is out of range for axis 0 of extent 5');
    } finally {
      compiled.dispose();
    }
  });
});
