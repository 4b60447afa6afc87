// The CPU backend's matrix-product kernels (matmulInto, matmulBatchedInto) against a plain
// triple loop computed in float64, on shapes chosen to hit every path and every edge of the
// tilings: empty and unit dimensions, 1, 3, 7, 33, 257, sizes that are not multiples of the
// register tiles (8×8 in TypeScript, 6×8 / 6×4 in WebAssembly) or of the blocks, nonzero offsets
// into larger arrays, batches with shared and strided operands. Every case runs twice: with the
// WebAssembly SIMD kernels (where the engine has them) and with the TypeScript kernels forced
// (setCpuWasm(false)), each held to its own bound (matmulReference.ts derives both). On either
// path each element must also equal, bit for bit, the kernel's recurrence evaluated in
// JavaScript (in the element type on the WebAssembly path, in double on the TypeScript one):
// a misplaced, missing or reordered term cannot hide inside a tolerance.

import { afterAll, describe, expect, it } from 'vitest';
import { type Tensor, broadcastTo, cpuKernelInfo, getBackend, matmul, matmulBatchedInto, matmulInto, setCpuThreads, setCpuWasm, slice, tensor, transpose } from '@scorch/tensor';
import { WASM_MIN_WORK, clearTransposeSpares, matmulGatheredBInto, transposeSpareBytes, transposeSparesMade } from '../src/cpu/cpuMatmul.js';
import { cpuHeap } from '../src/cpu/wasm/heap.js';
import type { CpuBackend, CpuHandle } from '../src/cpu/cpuBackend.js';
import { matmulMemoryBytes, setWasmMatmulMemoryLimitForTesting, setWasmThreadMinWorkForTesting } from '../src/cpu/wasm/wasmMatmul.js';
import {
  type Float, type FloatCtor, firstDifference, randomArray, referenceProduct, seededUniform, sequentialProduct, typescriptTolerance, wasmTolerance,
} from './matmulReference.js';
import { bitsOf } from './reference.js';
import { untilWorkerChunk } from './workerChunks.js';

// One thread here: cpuThreads.test.ts compares threads with one thread.
setCpuThreads(1);
afterAll(() => {
  setCpuWasm(true);
  setCpuThreads(undefined);
});

const WASM = cpuKernelInfo().wasmSimd;
type Path = 'wasm' | 'typescript';
const PATHS: Path[] = WASM ? ['wasm', 'typescript'] : ['typescript'];

function usePath(path: Path): void {
  setCpuWasm(path === 'wasm');
  expect(cpuKernelInfo().matmul).toBe(path === 'wasm' ? 'wasm-simd' : 'typescript');
}

/** Whether the WebAssembly kernel computes this product on `path` (tiny ones stay in TypeScript). */
function onWasm(path: Path, m: number, n: number, k: number): boolean {
  return path === 'wasm' && m * n * k >= WASM_MIN_WORK;
}

interface Case {
  m: number;
  k: number;
  n: number;
  aOff?: number;
  bOff?: number;
  cOff?: number;
}

// [m, k, n]. TypeScript paths: tiny products and n ≤ 2 the direct loop, m ≤ 3 the row loop,
// otherwise the tiled kernel (8×8 tiles; blocks of 64 rows, 256 of k, 256 columns). WebAssembly
// (m·n·k ≥ WASM_MIN_WORK): 6×8 float32 tiles (6×4 float64), with or without fused multiply-add,
// blocks of 120 rows and 256 of k, chunks of 120 rows.
const CASES: Case[] = [
  { m: 0, k: 0, n: 0 },
  { m: 0, k: 5, n: 3 },
  { m: 4, k: 5, n: 0 },
  { m: 4, k: 0, n: 3 }, // k = 0: C must be overwritten with zeros
  { m: 9, k: 0, n: 10, cOff: 3 },
  { m: 1, k: 1, n: 1 },
  { m: 1, k: 1023, n: 1 },
  { m: 1, k: 1, n: 1023 },
  { m: 1023, k: 1, n: 1 },
  { m: 7, k: 33, n: 5 },
  { m: 3, k: 3, n: 3 },
  { m: 2, k: 300, n: 2100 }, // row loop, more columns than one accumulator chunk
  { m: 300, k: 40, n: 2 }, // direct loop, narrow
  { m: 4, k: 1, n: 9 },
  { m: 8, k: 8, n: 8 }, // exactly one tile
  { m: 9, k: 17, n: 9 }, // one full tile plus one-wide edges
  { m: 127, k: 255, n: 63 },
  { m: 65, k: 64, n: 66 },
  { m: 70, k: 600, n: 270 }, // several blocks in every dimension, k split three ways
  { m: 1, k: 257, n: 33 },
  { m: 33, k: 257, n: 1 },
  { m: 257, k: 33, n: 7 },
  { m: 3, k: 7, n: 257 },
  { m: 241, k: 257, n: 129 }, // two full row blocks plus one row; k one past a block; n one past a tile
  { m: 6, k: 8, n: 256 }, // exactly one tile high
  { m: 5, k: 8, n: 256 }, // one row short of a tile
  { m: 7, k: 5003, n: 11 }, // large prime k: twenty k blocks, the last partial
  { m: 300, k: 2, n: 129 }, // depth ≤ 4: the shallow kernels, a column past the last vector
  { m: 64, k: 3, n: 37, aOff: 5, bOff: 3, cOff: 2 },
  { m: 33, k: 1, n: 66 },
  { m: 130, k: 4, n: 128 },
  { m: 1, k: 4099, n: 1 }, // one dot product long enough for the WebAssembly kernel
  { m: 127, k: 255, n: 63, aOff: 5, bOff: 11, cOff: 7 },
  { m: 65, k: 64, n: 66, aOff: 1, bOff: 2, cOff: 3 },
  { m: 7, k: 33, n: 5, aOff: 13, bOff: 1, cOff: 4 },
  { m: 2, k: 50, n: 30, aOff: 3, bOff: 3, cOff: 3 },
  { m: 40, k: 20, n: 1, aOff: 9, bOff: 2, cOff: 6 },
  { m: 33, k: 257, n: 7, aOff: 1, bOff: 3, cOff: 5 },
];

const GUARD = 4;

/** A and B inside larger arrays whose other cells are NaN (reading them would poison the result). */
function operands(Ctor: FloatCtor, c: Case, seed: number): { a: Float; b: Float } {
  const next = seededUniform(seed);
  const a = new Ctor((c.aOff ?? 0) + c.m * c.k + GUARD).fill(NaN);
  const b = new Ctor((c.bOff ?? 0) + c.k * c.n + GUARD).fill(NaN);
  for (let i = 0; i < c.m * c.k; i++) a[(c.aOff ?? 0) + i] = next();
  for (let i = 0; i < c.k * c.n; i++) b[(c.bOff ?? 0) + i] = next();
  return { a, b };
}

/** rows×cols row-major at `off` of `x`, transposed into a cols×rows array at `to` of a new array (NaN elsewhere). */
function transposeInto(Ctor: FloatCtor, x: Float, off: number, rows: number, cols: number, to: number): Float {
  const out = new Ctor(to + rows * cols + GUARD).fill(NaN);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[to + c * rows + r] = x[off + r * cols + c]!;
  return out;
}

/**
 * Runs one case: C's region starts as NaN (it must be overwritten) and the cells around it hold
 * a sentinel (they must not be written).
 */
function runCase(Ctor: FloatCtor, c: Case, seed: number, path: Path): void {
  const { m, k, n } = c;
  const aOff = c.aOff ?? 0;
  const bOff = c.bOff ?? 0;
  const cOff = c.cOff ?? 0;
  const { a, b } = operands(Ctor, c, seed);
  const out = new Ctor(cOff + m * n + GUARD).fill(-7.5);
  out.fill(NaN, cOff, cOff + m * n);

  matmulInto(a, aOff, b, bOff, out, cOff, m, n, k);

  const { value, absSum } = referenceProduct(a, aOff, b, bOff, m, n, k);
  const isFloat32 = Ctor === Float32Array;
  const wasm = onWasm(path, m, n, k);
  const tolerance = (e: number) => (wasm ? wasmTolerance(absSum[e]!, k, isFloat32) : typescriptTolerance(value[e]!, absSum[e]!, k, isFloat32));
  // The first element outside its bound; NaN fails the comparison, so unwritten cells are caught.
  let firstBad = -1;
  for (let e = 0; e < m * n && firstBad < 0; e++) {
    if (!(Math.abs(out[cOff + e]! - value[e]!) <= tolerance(e))) firstBad = e;
  }
  expect(firstBad, `element ${firstBad}: got ${out[cOff + firstBad]}, reference ${value[firstBad]}`).toBe(-1);
  if (wasm && (isFloat32 || !cpuKernelInfo().fma)) {
    const emulated = sequentialProduct(a, aOff, b, bOff, m, n, k, isFloat32, cpuKernelInfo().fma);
    const d = firstDifference(out, cOff, emulated);
    expect(d, `element ${d}: got ${out[cOff + d]}, the kernel's recurrence gives ${emulated[d]}`).toBe(-1);
  }
  if (!wasm) {
    // Every TypeScript path (direct, rows, tiled across k blocks) sums in order of k in double.
    const inOrder = typescriptRecurrence(a, aOff, b, bOff, m, n, k, isFloat32);
    const d = firstDifference(out, cOff, inOrder);
    expect(d, `element ${d}: got ${out[cOff + d]}, the double recurrence in order of k gives ${inOrder[d]}`).toBe(-1);
  }
  for (let i = 0; i < cOff; i++) expect(out[i]).toBe(-7.5);
  for (let i = cOff + m * n; i < out.length; i++) expect(out[i]).toBe(-7.5);
}

/**
 * The TypeScript kernels' arithmetic: s = 0, then s ← s + a·b in double for p = 0…k−1, rounded
 * once to the element type (a float32 product of float32 inputs is exact in double).
 */
function typescriptRecurrence(a: Float, aOff: number, b: Float, bOff: number, m: number, n: number, k: number, isFloat32: boolean): Float64Array {
  const out = sequentialProduct(a, aOff, b, bOff, m, n, k, false, false);
  if (isFloat32) for (let e = 0; e < out.length; e++) out[e] = Math.fround(out[e]!);
  return out;
}

for (const path of PATHS) {
  describe(`matmulInto against a float64 triple loop (${path} kernels)`, () => {
    for (const [name, Ctor] of [['float32', Float32Array], ['float64', Float64Array]] as const) {
      describe(name, () => {
        CASES.forEach((c, idx) => {
          const offsets = [c.aOff ?? 0, c.bOff ?? 0, c.cOff ?? 0];
          const label = `${c.m}×${c.k}×${c.n}` + (offsets.some((o) => o > 0) ? ` at offsets ${offsets.join(', ')}` : '');
          it(label, () => {
            usePath(path);
            runCase(Ctor, c, 1000 + idx, path);
          });
        });

        it('is exact on small integers (every sum representable), so any misplaced term shows', () => {
          usePath(path);
          // Entries in [-8, 8], k = 300: |partial sums| ≤ 64·300 < 2^24, exact in float32 and float64
          // whatever the accumulation type or order.
          const m = 37;
          const k = 300;
          const n = 45;
          const next = seededUniform(7);
          const a = new Ctor(m * k).map(() => Math.round(next() * 8));
          const b = new Ctor(k * n).map(() => Math.round(next() * 8));
          const out = new Ctor(m * n);
          matmulInto(a, 0, b, 0, out, 0, m, n, k);
          expect(Array.from(out)).toEqual(Array.from(referenceProduct(a, 0, b, 0, m, n, k).value));
        });

        // 7×9×7 stays in TypeScript everywhere; 13×40×11 reaches the WebAssembly kernel, whose
        // tiles pad 13 rows to 15 and 11 columns to 16.
        for (const [m, k, n] of [[7, 9, 7], [13, 40, 11]] as const) {
          it(`keeps an infinity in its own row and column (zero padding must not leak NaN), ${m}×${k}×${n}`, () => {
            usePath(path);
            const a = new Ctor(m * k).fill(1);
            const b = new Ctor(k * n).fill(1);
            a[(m - 1) * k + 3] = Infinity; // last row of A
            b[5 * n + (n - 1)] = -Infinity; // last column of B
            const out = new Ctor(m * n);
            matmulInto(a, 0, b, 0, out, 0, m, n, k);
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < n; j++) {
                const expected = i === m - 1 && j === n - 1 ? NaN : i === m - 1 ? Infinity : j === n - 1 ? -Infinity : k;
                expect(out[i * n + j], `(${i}, ${j})`).toBe(expected);
              }
            }
          });
        }
      });
    }

    describe('batched products', () => {
      // [batch, m, k, n, aStride, bStride] with strides in elements: 'dense' = m·k (A) or k·n (B),
      // 0 = one operand shared by the batch (packed once), larger = gaps between entries.
      const BATCHES: [number, number, number, number, number | 'dense', number | 'dense'][] = [
        [3, 33, 40, 17, 'dense', 'dense'],
        [4, 7, 257, 9, 'dense', 0],
        [5, 21, 33, 40, 0, 'dense'],
        [2, 130, 20, 31, 2700, 700],
        [6, 1, 1, 1, 'dense', 'dense'],
        [3, 2, 3, 4, 'dense', 0],
        [3, 40, 2, 33, 'dense', 0], // depth ≤ 4 (the shallow kernels), B shared
        [2, 50, 3, 20, 300, 'dense'],
      ];
      for (const [batch, m, k, n, as, bs] of BATCHES) {
        for (const [name, Ctor] of [['float32', Float32Array], ['float64', Float64Array]] as const) {
          it(`${batch} × (${m}×${k}×${n}), strides ${as}/${bs}, ${name}: each entry as the single product`, () => {
            usePath(path);
            const aStride = as === 'dense' ? m * k : as;
            const bStride = bs === 'dense' ? k * n : bs;
            const [aOff, bOff, cOff] = [3, 5, 2];
            const next = seededUniform(batch * 131 + m);
            const a = new Ctor(aOff + (batch - 1) * aStride + m * k + GUARD).map(() => next());
            const b = new Ctor(bOff + (batch - 1) * bStride + k * n + GUARD).map(() => next());
            const out = new Ctor(cOff + batch * m * n + GUARD).fill(-7.5);
            out.fill(NaN, cOff, cOff + batch * m * n);
            matmulBatchedInto(batch, a, aOff, aStride, b, bOff, bStride, out, cOff, m, n, k);
            const isFloat32 = Ctor === Float32Array;
            for (let i = 0; i < batch; i++) {
              // The same product alone must give the same bits: batching changes no element's arithmetic.
              const single = new Ctor(m * n);
              matmulInto(a, aOff + i * aStride, b, bOff + i * bStride, single, 0, m, n, k);
              const d = firstDifference(out, cOff + i * m * n, single);
              expect(d, `entry ${i} element ${d}`).toBe(-1);
              const { value, absSum } = referenceProduct(a, aOff + i * aStride, b, bOff + i * bStride, m, n, k);
              const wasm = onWasm(path, m, n, k);
              for (let e = 0; e < m * n; e++) {
                const tol = wasm ? wasmTolerance(absSum[e]!, k, isFloat32) : typescriptTolerance(value[e]!, absSum[e]!, k, isFloat32);
                expect(Math.abs(out[cOff + i * m * n + e]! - value[e]!), `entry ${i} element ${e}`).toBeLessThanOrEqual(tol);
              }
            }
            for (let i = 0; i < cOff; i++) expect(out[i]).toBe(-7.5);
            for (let i = cOff + batch * m * n; i < out.length; i++) expect(out[i]).toBe(-7.5);
          });
        }
      }
    });

    describe('epilogue', () => {
      // Shapes for every route: tiny (TypeScript direct), a few rows (TypeScript rows), tiled in
      // several row blocks either way, k = 0, and a batch.
      const SHAPES: [number, number, number, number][] = [[1, 3, 4, 2], [1, 2, 50, 30], [1, 200, 70, 45], [1, 250, 300, 20], [1, 6, 0, 5], [3, 130, 20, 31], [2, 60, 2, 40]];
      for (const [batch, m, k, n] of SHAPES) {
        it(`sees every row once, in order, final, then its writes stay (${batch} × ${m}×${k}×${n})`, () => {
          usePath(path);
          const next = seededUniform(m + n + k);
          const a = Float32Array.from({ length: batch * m * k }, next);
          const b = Float32Array.from({ length: batch * k * n }, next);
          const cOff = 3;
          const plain = new Float32Array(cOff + batch * m * n);
          matmulBatchedInto(batch, a, 0, m * k, b, 0, k * n, plain, cOff, m, n, k);
          const out = new Float32Array(cOff + batch * m * n);
          const ranges: [number, number][] = [];
          matmulBatchedInto(batch, a, 0, m * k, b, 0, k * n, out, cOff, m, n, k, {
            epilogue: (start, end) => {
              ranges.push([start, end]);
              // Final values: what the product without an epilogue computes.
              for (let e = start; e < end; e++) expect(out[e]).toBe(plain[e]);
              // A fused bias and ReLU, applied in place.
              for (let e = start; e < end; e++) out[e] = Math.max(0, out[e]! + ((e - cOff) % n) * 0.25);
            },
          });
          let at = cOff;
          for (const [start, end] of ranges) {
            expect(start).toBe(at);
            expect((end - start) % n).toBe(0);
            expect(end).toBeGreaterThan(start);
            at = end;
          }
          expect(at).toBe(cOff + batch * m * n);
          for (let e = cOff; e < out.length; e++) expect(out[e]).toBe(Math.fround(Math.max(0, plain[e]! + ((e - cOff) % n) * 0.25)));
        });
      }
    });
  });
}

describe('bad arguments', () => {
  const a = new Float32Array(6);
  const b = new Float32Array(6);
  const c = new Float32Array(4);
  it('say what was wrong and what was expected', () => {
    expect(() => matmulInto(a, 0, b, 0, c, 0, 2, 2, 3)).not.toThrow();
    expect(() => matmulInto(a, 0, b, 0, new Float64Array(4) as unknown as Float32Array, 0, 2, 2, 3)).toThrow(
      'matmulInto: a, b and c must all be Float32Array or all Float64Array, got Float32Array, Float32Array, Float64Array',
    );
    expect(() => matmulInto(a, 0, b, 0, c, 0, 2, 2, -3)).toThrow('matmulInto: k must be a non-negative integer, got -3');
    expect(() => matmulInto(a, 0.5, b, 0, c, 0, 2, 2, 3)).toThrow('matmulInto: aOff must be a non-negative integer, got 0.5');
    expect(() => matmulInto(a, 1, b, 0, c, 0, 2, 2, 3)).toThrow('matmulInto: a needs elements up to index 6, but has length 6');
    expect(() => matmulInto(a, 0, b, 0, c, 1, 2, 2, 3)).toThrow('matmulInto: c needs elements up to index 4, but has length 4');
    expect(() => matmulBatchedInto(2, a, 0, 0, b, 0, 1, c, 0, 1, 2, 3)).toThrow('matmulBatchedInto: b needs elements up to index 6, but has length 6');
    expect(() => matmulInto(a, 0, b, 0, c, 0, 2, 2, 3, { epilog: () => {} } as never)).toThrow(
      "matmulInto: unknown option 'epilog' (did you mean 'epilogue'?); valid options: epilogue",
    );
    expect(() => setCpuWasm('no' as unknown as boolean)).toThrow('setCpuWasm: expected true or false, got "no"');
  });
});

describe('the TypeScript and WebAssembly kernels agree', () => {
  it.skipIf(!WASM)('within the sum of their bounds on a product both compute', () => {
    const [m, k, n] = [97, 513, 61];
    const next = seededUniform(4242);
    const a = Float32Array.from({ length: m * k }, next);
    const b = Float32Array.from({ length: k * n }, next);
    const viaWasm = new Float32Array(m * n);
    const viaTs = new Float32Array(m * n);
    setCpuWasm(true);
    matmulInto(a, 0, b, 0, viaWasm, 0, m, n, k);
    setCpuWasm(false);
    matmulInto(a, 0, b, 0, viaTs, 0, m, n, k);
    setCpuWasm(true);
    const { value, absSum } = referenceProduct(a, 0, b, 0, m, n, k);
    let differ = 0;
    for (let e = 0; e < m * n; e++) {
      const bound = wasmTolerance(absSum[e]!, k, true) + typescriptTolerance(value[e]!, absSum[e]!, k, true);
      expect(Math.abs(viaWasm[e]! - viaTs[e]!)).toBeLessThanOrEqual(bound);
      if (viaWasm[e] !== viaTs[e]) differ++;
    }
    // They are different computations (float32 against double accumulation): some bits differ.
    expect(differ).toBeGreaterThan(0);
  });
});

describe('float64 products have the same bits on both paths where the WebAssembly kernel does not fuse', () => {
  // Both sum each element in double, s ← s + a·b in order of k (mul then add). The TypeScript
  // tiled kernel once started each 256-deep k block from zero and added the block's sum to C,
  // which changed the bits from k = 258 on with at least 4 rows and 3 columns (k = 700 was found).
  // Shapes around both kernels' blocks: 8×8 tiles, 64 rows, 256 columns and 256 of k in
  // TypeScript; 5×4 tiles, 120 rows and 256 of k in WebAssembly.
  const SHAPES: [number, number, number][] = [
    [4, 258, 3], [5, 300, 4], [9, 511, 9], [65, 513, 8], [121, 700, 17], [64, 769, 257], [8, 1030, 2],
  ];
  it.skipIf(!WASM || cpuKernelInfo().fma)('single and batched products, operands row-major or stored transposed', () => {
    const next = seededUniform(77);
    for (const [m, k, n] of SHAPES) {
      const batch = 2;
      const a = randomArray(Float64Array, batch * m * k, next);
      const b = randomArray(Float64Array, batch * k * n, next);
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const viaWasm = new Float64Array(batch * m * n);
          const viaTs = new Float64Array(batch * m * n);
          setCpuWasm(true);
          matmulBatchedInto(batch, a, 0, m * k, b, 0, k * n, viaWasm, 0, m, n, k, { transA, transB });
          setCpuWasm(false);
          matmulBatchedInto(batch, a, 0, m * k, b, 0, k * n, viaTs, 0, m, n, k, { transA, transB });
          setCpuWasm(true);
          const d = firstDifference(viaTs, 0, viaWasm);
          expect(d, `${batch}×${m}×${k}×${n}, transA ${transA}, transB ${transB}, element ${d}: TypeScript ${viaTs[d]}, WebAssembly ${viaWasm[d]}`).toBe(-1);
        }
      }
    }
  });
});

describe('products larger than the WebAssembly memory', () => {
  // The module's memory holds at most 1 GiB; a product that did not fit at once (a batch of 22000
  // 64×64×64 float32 products) ran wholly in TypeScript: 3.3× slower there, and with the
  // TypeScript kernels' bits, so 3287 of the 4096 elements of the last product differed from the
  // same product computed alone. It now runs in parts that fit, with the bits of one call. Here
  // the limit is lowered to 512 KiB: each case lays out more than that at once (A, packed B and
  // C of the whole batch, and 120×256 elements of A-pack scratch), and each part fits.
  afterAll(() => setWasmMatmulMemoryLimitForTesting(undefined));

  it.skipIf(!WASM)('run in parts (groups of the batch, blocks of rows) with the bits of one call, the epilogue seeing every row once in order', () => {
    setCpuWasm(true);
    const next = seededUniform(977);
    // [batch, m, k, n, B]: a batch in groups (B strided or shared), and products whose single
    // entry does not fit (bands of rows, B packed for each).
    const cases: [number, number, number, number, 'strided' | 'shared'][] = [
      [80, 24, 24, 24, 'strided'], [100, 30, 17, 20, 'shared'], [1, 1500, 40, 30, 'strided'], [2, 1500, 33, 21, 'shared'],
    ];
    for (const Ctor of [Float32Array, Float64Array] as FloatCtor[]) {
      for (const [batch, m, k, n, bKind] of cases) {
        const label = `${Ctor.name} batch ${batch} ${m}×${k}×${n} (B ${bKind})`;
        const bStride = bKind === 'shared' ? 0 : k * n;
        const a = randomArray(Ctor, batch * m * k, next);
        const b = randomArray(Ctor, bKind === 'shared' ? k * n : batch * k * n, next);
        const whole = new Ctor(batch * m * n);
        setWasmMatmulMemoryLimitForTesting(undefined);
        matmulBatchedInto(batch, a, 0, m * k, b, 0, bStride, whole, 0, m, n, k);
        const parts = new Ctor(batch * m * n);
        const seen: [number, number][] = [];
        setWasmMatmulMemoryLimitForTesting(512 * 1024);
        matmulBatchedInto(batch, a, 0, m * k, b, 0, bStride, parts, 0, m, n, k, { epilogue: (s, e) => seen.push([s, e]) });
        expect(firstDifference(parts, 0, whole), label).toBe(-1);
        // Runs of whole rows, in order, covering C once.
        let at = 0;
        for (const [s, e] of seen) {
          expect([s, (e - s) % n], label).toEqual([at, 0]);
          at = e;
        }
        expect(at, label).toBe(batch * m * n);
        if (Ctor === Float32Array) {
          // Not the TypeScript kernels (double accumulation): their float32 bits differ somewhere.
          const viaTs = new Ctor(batch * m * n);
          setCpuWasm(false);
          matmulBatchedInto(batch, a, 0, m * k, b, 0, bStride, viaTs, 0, m, n, k);
          setCpuWasm(true);
          expect(firstDifference(parts, 0, viaTs), label).not.toBe(-1);
        }
      }
    }
  });
});

describe('a WebAssembly memory that cannot grow', () => {
  it.skipIf(!WASM)('the product runs in TypeScript (the engine refused to commit memory), then in WebAssembly again once it can', () => {
    // A grow the engine refuses (no memory or address space to commit) reached the caller as the
    // engine's RangeError 'WebAssembly.Memory.grow(): ...', naming no op. Here grow is stubbed to
    // refuse, and the batch (a shared B) lays out more than the memory holds now.
    setCpuWasm(true);
    const [m, k, n] = [64, 64, 64];
    const batch = Math.ceil(matmulMemoryBytes() / (m * k * 4 + m * n * 4)) + 1;
    const next = seededUniform(31);
    const a = randomArray(Float32Array, batch * m * k, next);
    const b = randomArray(Float32Array, k * n, next);
    const viaTs = new Float32Array(batch * m * n);
    setCpuWasm(false);
    matmulBatchedInto(batch, a, 0, m * k, b, 0, 0, viaTs, 0, m, n, k);
    setCpuWasm(true);
    const grow = WebAssembly.Memory.prototype.grow;
    const refused = new Float32Array(batch * m * n);
    WebAssembly.Memory.prototype.grow = () => {
      throw new RangeError('WebAssembly.Memory.grow(): Maximum memory size exceeded');
    };
    try {
      matmulBatchedInto(batch, a, 0, m * k, b, 0, 0, refused, 0, m, n, k);
    } finally {
      WebAssembly.Memory.prototype.grow = grow;
    }
    expect(firstDifference(refused, 0, viaTs)).toBe(-1);
    const grown = new Float32Array(batch * m * n);
    matmulBatchedInto(batch, a, 0, m * k, b, 0, 0, grown, 0, m, n, k);
    // The WebAssembly kernels' float32 accumulation: other bits than the TypeScript kernels' somewhere.
    expect(firstDifference(grown, 0, viaTs)).not.toBe(-1);
  });
});

describe('matmul through the public API', () => {
  it('broadcasts batch dimensions and agrees with the reference per batch entry', () => {
    // a: [2, 1, 13, 21], b: [3, 21, 10] → [2, 3, 13, 10]; b's batch of 3 is broadcast over a's
    // first axis and a's batch of 1 over b's, so every (i, j) pair uses a[i, 0] and b[j].
    const next = seededUniform(99);
    const [m, k, n] = [13, 21, 10];
    const aData = Float32Array.from({ length: 2 * m * k }, next);
    const bData = Float32Array.from({ length: 3 * k * n }, next);
    const result = matmul(tensor(aData, { shape: [2, 1, m, k] }), tensor(bData, { shape: [3, k, n] }));
    expect(result.shape).toEqual([2, 3, m, n]);
    expect(result.dtype).toBe('float32');
    const got = result.dataSync();
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) {
        const { absSum, value } = referenceProduct(aData, i * m * k, bData, j * k * n, m, n, k);
        const base = (i * 3 + j) * m * n;
        for (let e = 0; e < m * n; e++) {
          // Whichever kernel ran: the larger of the two bounds.
          const tol = Math.max(wasmTolerance(absSum[e]!, k, true), typescriptTolerance(value[e]!, absSum[e]!, k, true));
          expect(Math.abs(got[base + e]! - value[e]!), `batch (${i}, ${j}) element ${e}`).toBeLessThanOrEqual(tol);
        }
      }
    }
    result.dispose();
  });

  it('takes transposed and sliced operands (a transpose read in place, a slice made dense first), both kernels', () => {
    // a is stored [k, m] and transposed; b is a [k, n] window (rows 3…, columns 2…) of a wider
    // array, so neither operand is contiguous as a matrix when matmul is called.
    const [m, k, n] = [45, 67, 38];
    const next = seededUniform(31);
    const aStored = Float32Array.from({ length: k * m }, next);
    const bWide = Float32Array.from({ length: (k + 5) * (n + 4) }, next);
    const aDense = new Float32Array(m * k);
    for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) aDense[i * k + p] = aStored[p * m + i]!;
    const bDense = new Float32Array(k * n);
    for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bDense[p * n + j] = bWide[(p + 3) * (n + 4) + j + 2]!;
    const { value, absSum } = referenceProduct(aDense, 0, bDense, 0, m, n, k);
    for (const path of PATHS) {
      usePath(path);
      const at = tensor(aStored, { shape: [k, m] });
      const bw = tensor(bWide, { shape: [k + 5, n + 4] });
      const result = matmul(transpose(at), slice(bw, [3, 2], [k, n]));
      const got = result.dataSync();
      for (let e = 0; e < m * n; e++) {
        const tol = path === 'wasm' ? wasmTolerance(absSum[e]!, k, true) : typescriptTolerance(value[e]!, absSum[e]!, k, true);
        expect(Math.abs(got[e]! - value[e]!), `${path} element ${e}`).toBeLessThanOrEqual(tol);
      }
      result.dispose();
      at.dispose();
      bw.dispose();
    }
    setCpuWasm(true);
  });

  it('eager transposes of the last two axes are views: read in place with the bits of dense copies, no bytes until used elsewhere, alive after their source', () => {
    const next = seededUniform(57);
    const [batch, m, k, n] = [3, 19, 33, 26];
    for (const dtype of ['float32', 'float64'] as const) {
      for (const path of PATHS) {
        usePath(path);
        const aStored = tensor(Array.from({ length: batch * k * m }, next), { shape: [batch, k, m], dtype });
        const bStored = tensor(Array.from({ length: batch * n * k }, next), { shape: [batch, n, k], dtype });
        const b = tensor(Array.from({ length: batch * k * n }, next), { shape: [batch, k, n], dtype });
        // Dense copies of the transposes, made from their values.
        const denseOf = (x: Tensor, shape: number[]) => {
          const t = transpose(x, [0, 2, 1]);
          const copy = tensor(Array.from(t.dataSync()), { shape, dtype });
          t.dispose();
          return copy;
        };
        const aDense = denseOf(aStored, [batch, m, k]);
        const bDense = denseOf(bStored, [batch, k, n]);
        const before = getBackend('cpu').memory();
        const at = transpose(aStored, [0, 2, 1]);
        const bt = transpose(bStored, [0, 2, 1]);
        // Views: no storage of their own (memory() counts arrays, as WebGPU counts buffers).
        expect(getBackend('cpu').memory()).toEqual(before);
        const cases: [Tensor, Tensor, Tensor, Tensor][] = [[at, b, aDense, b], [aDense, bt, aDense, bDense], [at, bt, aDense, bDense]];
        for (const [x, y, xd, yd] of cases) {
          const got = matmul(x, y);
          const want = matmul(xd, yd);
          expect(bitsOf(got.dataSync()), `${dtype} ${path}`).toEqual(bitsOf(want.dataSync()));
          got.dispose();
          want.dispose();
        }
        expect(getBackend('cpu').memory().bytes, 'the products read the views in place').toBe(before.bytes);
        // The view outlives its source, and reads dense for an elementwise op or another permute.
        const source = aStored._live('test') as CpuHandle;
        aStored.dispose();
        // Disposed, but the view still reads its array.
        expect(source.data).not.toBeNull();
        const doubled = at.mul(2);
        expect(Array.from(doubled.dataSync())).toEqual(Array.from(aDense.dataSync()).map((v) => v * 2));
        // Materialised by the elementwise op: the view holds its own array and lets the source's go.
        expect((at._live('test') as CpuHandle).view).toBeNull();
        expect(source.readers).toBe(0);
        expect(source.data).toBeNull();
        const back = transpose(at, [0, 2, 1]);
        const backDense = transpose(aDense, [0, 2, 1]);
        expect(Array.from(back.dataSync())).toEqual(Array.from(backDense.dataSync()));
        for (const t of [bStored, b, aDense, bDense, at, bt, doubled, back, backDense]) t.dispose();
      }
    }
    setCpuWasm(true);
  });

  it('batch-broadcast operands (a 2-D left operand of a batched product, an expanded right one, a broadcast transpose) are read in place with the bits of dense copies', () => {
    const next = seededUniform(58);
    const [m, k, n] = [13, 35, 22];
    for (const dtype of ['float32', 'float64'] as const) {
      for (const path of PATHS) {
        usePath(path);
        const make = (shape: number[]) => tensor(Array.from({ length: shape.reduce((p, d) => p * d, 1) }, next), { shape, dtype });
        const dense = (x: Tensor) => tensor(Array.from(x.dataSync()), { shape: [...x.shape], dtype });
        const w = make([m, k]);
        const v = make([k, n]);
        const wStoredT = make([1, k, m]);
        const x = make([4, k, n]);
        const y = make([4, m, k]);
        const z = make([2, 3, k, n]);
        const wt = transpose(wStoredT, [0, 2, 1]); // a transpose view, [1, M, K]
        const bpe = dtype === 'float32' ? 4 : 8;
        // Each operand is made twice: once for the product under test, once for its dense copy
        // (reading a view's values materialises it). W·x and W·z broadcast W inside matmul (a
        // reshape to [1, M, K], an alias, then an expand view): nothing is copied.
        const wide = make([1, 3, m, k]);
        const cases: { what: string; a: () => Tensor; b: () => Tensor; inPlace: boolean }[] = [
          { what: 'W·x', a: () => w, b: () => x, inPlace: true },
          { what: 'y·expand(V)', a: () => y, b: () => broadcastTo(v, [4, k, n]), inPlace: true },
          { what: 'expand(W)·expand(V)', a: () => broadcastTo(w, [4, m, k]), b: () => broadcastTo(v, [4, k, n]), inPlace: true },
          { what: 'expand(Wᵀ stored)·x', a: () => broadcastTo(wt, [4, m, k]), b: () => x, inPlace: true },
          { what: 'W·z over two batch axes', a: () => w, b: () => z, inPlace: true },
          // Broadcast over the first of two batch axes only: no single batch stride, read dense.
          { what: 'expand([1,3,M,K])·z', a: () => broadcastTo(wide, [2, 3, m, k]), b: () => z, inPlace: false },
        ];
        const isView = (t: Tensor) => (t._live('test') as CpuHandle).view !== null;
        for (const { what, a: makeA, b: makeB, inPlace } of cases) {
          const [a, b] = [makeA(), makeB()];
          const [a2, b2] = [makeA(), makeB()];
          const ad = dense(a2);
          const bd = dense(b2);
          const views = [a, b].filter((t) => isView(t) && t !== wt);
          // The broadcast of the transpose view reads its source through both: Wᵀ's strides, batch stride 0.
          if (what.startsWith('expand(Wᵀ')) expect((a._live('test') as CpuHandle).view!.strides).toEqual([0, 1, m]);
          const bytesBefore = getBackend('cpu').memory().bytes;
          const got = matmul(a, b);
          const added = getBackend('cpu').memory().bytes - bytesBefore - got.size * bpe;
          const stayed = views.filter(isView).length;
          const want = matmul(ad, bd);
          expect(bitsOf(got.dataSync()), `${dtype} ${path} ${what}`).toEqual(bitsOf(want.dataSync()));
          if (inPlace) {
            expect(stayed, `${dtype} ${path} ${what}: the views stay views`).toBe(views.length);
            expect(added, `${dtype} ${path} ${what}: no copy`).toBe(0);
          } else {
            expect(views.length).toBe(1);
            expect(stayed, `${dtype} ${path} ${what}: made dense`).toBe(0);
            expect(added, `${dtype} ${path} ${what}: made dense`).toBe(a.size * bpe);
          }
          for (const t of new Set([a, b, a2, b2, ad, bd, got, want])) if (![w, x, y, z, wt].includes(t)) t.dispose();
        }
        for (const t of [w, v, wStoredT, x, y, z, wt, wide]) t.dispose();
      }
    }
    setCpuWasm(true);
  });

  it('folds a batched left operand into one product with a 2-D right operand (float64)', () => {
    const next = seededUniform(5);
    const [batch, m, k, n] = [3, 11, 70, 17];
    const aData = Float64Array.from({ length: batch * m * k }, next);
    const bData = Float64Array.from({ length: k * n }, next);
    const result = matmul(tensor(aData, { shape: [batch, m, k] }), tensor(bData, { shape: [k, n] }));
    expect(result.shape).toEqual([batch, m, n]);
    const got = result.dataSync();
    for (let t = 0; t < batch; t++) {
      const { value, absSum } = referenceProduct(aData, t * m * k, bData, 0, m, n, k);
      for (let e = 0; e < m * n; e++) {
        expect(Math.abs(got[t * m * n + e]! - value[e]!)).toBeLessThanOrEqual(wasmTolerance(absSum[e]!, k, false));
      }
    }
    result.dispose();
  });
});

describe('operands stored transposed (transA / transB): the bits of the same call on row-major copies', () => {
  // [m, k, n]: tiny (TypeScript on either path), just under and over WASM_MIN_WORK, sizes that
  // are no multiple of any register tile (8×8 TypeScript; 5 or 6 rows × 8 float32 / 4 float64
  // columns in WebAssembly), one and two row blocks plus a row (mc = 120), k past a k block
  // (kc = 256), long k, one-row and one-column products, and a square one.
  const SHAPES: [number, number, number][] = [
    [3, 4, 5], [7, 9, 5], [8, 8, 7], [8, 8, 8], [1, 600, 1], [1, 40, 70], [70, 40, 1], [13, 17, 11], [33, 40, 17],
    [127, 255, 63], [241, 257, 129], [7, 5003, 11], [64, 64, 64],
    // Depth ≤ 4: row-major operands take the shallow kernels, transposed ones gemm.
    [300, 2, 129], [64, 3, 37], [40, 1, 66], [33, 4, 20],
  ];
  const FLAGS: [boolean, boolean][] = [[true, false], [false, true], [true, true]];

  for (const path of PATHS) {
    for (const [name, Ctor] of [['float32', Float32Array], ['float64', Float64Array]] as const) {
      for (const [transA, transB] of FLAGS) {
        const flags = `${transA ? 'Aᵀ' : 'A'}·${transB ? 'Bᵀ' : 'B'}`;
        it(`${flags}, ${name}, ${path} kernels, every shape`, () => {
          usePath(path);
          for (const [m, k, n] of SHAPES) {
            const c: Case = { m, k, n, aOff: 3, bOff: 5 };
            const { a, b } = operands(Ctor, c, m * 7 + n);
            const want = new Ctor(m * n).fill(NaN);
            matmulInto(a, 3, b, 5, want, 0, m, n, k);
            // The stored operands sit at other offsets, in arrays whose other cells are NaN.
            const aStored = transA ? transposeInto(Ctor, a, 3, m, k, 2) : a;
            const bStored = transB ? transposeInto(Ctor, b, 5, k, n, 9) : b;
            const got = new Ctor(4 + m * n + GUARD).fill(-7.5);
            got.fill(NaN, 4, 4 + m * n);
            matmulInto(aStored, transA ? 2 : 3, bStored, transB ? 9 : 5, got, 4, m, n, k, { transA, transB });
            const d = firstDifference(got, 4, want);
            expect(d, `${m}×${k}×${n} element ${d}: got ${got[4 + d]}, row-major copies give ${want[d]}`).toBe(-1);
            for (let i = 0; i < 4; i++) expect(got[i]).toBe(-7.5);
            for (let i = 4 + m * n; i < got.length; i++) expect(got[i]).toBe(-7.5);
          }
        });
      }
      it(`A·Bᵀ of depth ≤ 4, ${name}, ${path} kernels: a Bᵀ that is a view into a buffer of any length`, () => {
        usePath(path);
        // The shallow kernels copy a Bᵀ that lies outside the kernels' memory through a word view of
        // its own bytes; the buffer around it may end on any byte (here two past the view).
        const [m, k, n] = [300, 2, 129];
        const c: Case = { m, k, n, aOff: 3, bOff: 5 };
        const { a, b } = operands(Ctor, c, m * 7 + n);
        const want = new Ctor(m * n).fill(NaN);
        matmulInto(a, 3, b, 5, want, 0, m, n, k);
        const bT = transposeInto(Ctor, b, 5, k, n, 9);
        const E = Ctor.BYTES_PER_ELEMENT;
        const bView = new Ctor(new ArrayBuffer(2 * E + bT.length * E + 2), 2 * E, bT.length);
        bView.set(bT);
        const got = new Ctor(m * n).fill(NaN);
        matmulInto(a, 3, bView, 9, got, 0, m, n, k, { transB: true });
        const d = firstDifference(got, 0, want);
        expect(d, `element ${d}: got ${got[d]}, row-major copies give ${want[d]}`).toBe(-1);
      });
      // [batch, m, k, n, aStride, bStride]: per-entry operands (dense, or with gaps) and shared ones (0).
      const BATCHES: [number, number, number, number, number | 'dense', number | 'dense'][] = [
        [3, 33, 40, 17, 'dense', 'dense'],
        [4, 7, 257, 9, 'dense', 0],
        [5, 21, 33, 40, 0, 'dense'],
        [2, 130, 20, 31, 2700, 700],
        [3, 2, 3, 4, 'dense', 0],
      ];
      it(`batched, ${name}, ${path} kernels: shared and per-entry operands, every flag`, () => {
        usePath(path);
        for (const [batch, m, k, n, as, bs] of BATCHES) {
          const aStride = as === 'dense' ? m * k : as;
          const bStride = bs === 'dense' ? k * n : bs;
          const next = seededUniform(batch * 17 + m);
          const aCount = aStride === 0 ? 1 : batch;
          const bCount = bStride === 0 ? 1 : batch;
          const a = randomArray(Ctor, 1 + (aCount - 1) * aStride + m * k + GUARD, next);
          const b = randomArray(Ctor, 2 + (bCount - 1) * bStride + k * n + GUARD, next);
          const want = new Ctor(batch * m * n);
          matmulBatchedInto(batch, a, 1, aStride, b, 2, bStride, want, 0, m, n, k);
          // Each entry transposed in place of itself: the same offsets and strides.
          const aT = new Ctor(a.length).fill(NaN);
          for (let e = 0; e < aCount; e++) aT.set(transposeInto(Ctor, a, 1 + e * aStride, m, k, 0).subarray(0, m * k), 1 + e * aStride);
          const bT = new Ctor(b.length).fill(NaN);
          for (let e = 0; e < bCount; e++) bT.set(transposeInto(Ctor, b, 2 + e * bStride, k, n, 0).subarray(0, k * n), 2 + e * bStride);
          for (const [transA, transB] of FLAGS) {
            const got = new Ctor(batch * m * n).fill(NaN);
            matmulBatchedInto(batch, transA ? aT : a, 1, aStride, transB ? bT : b, 2, bStride, got, 0, m, n, k, { transA, transB });
            const d = firstDifference(got, 0, want);
            expect(d, `${batch} × ${m}×${k}×${n} (${transA}, ${transB}) element ${d}`).toBe(-1);
          }
        }
      });
    }
  }

  it.runIf(WASM && typeof SharedArrayBuffer === 'function')('split across threads, with workers taking part: the same bits', () => {
    // From 2^16 multiply-adds the product splits (here on 2 threads); the workers read transA from the job.
    setWasmThreadMinWorkForTesting(1 << 16);
    setCpuWasm(true);
    try {
      const [m, k, n] = [301, 257, 130];
      const next = seededUniform(77);
      const a = randomArray(Float32Array, m * k, next);
      const b = randomArray(Float32Array, k * n, next);
      setCpuThreads(1);
      const want = new Float32Array(m * n);
      matmulInto(a, 0, b, 0, want, 0, m, n, k);
      const aT = transposeInto(Float32Array, a, 0, m, k, 0);
      const bT = transposeInto(Float32Array, b, 0, k, n, 0);
      setCpuThreads(2);
      // Workers start asynchronously: repeat (bounded) until one has computed a chunk.
      const { tries, chunks } = untilWorkerChunk(() => {
        for (const [transA, transB] of FLAGS) {
          const got = new Float32Array(m * n).fill(NaN);
          matmulInto(transA ? aT : a, 0, transB ? bT : b, 0, got, 0, m, n, k, { transA, transB });
          expect(firstDifference(got, 0, want), `(${transA}, ${transB})`).toBe(-1);
        }
      });
      expect(chunks, `no worker chunk after ${tries} rounds`).toBeGreaterThan(0);
    } finally {
      setWasmThreadMinWorkForTesting(undefined);
      setCpuThreads(1);
    }
  });

  it('the TypeScript path reuses its transposed copies: a repeated sequence of products allocates none', () => {
    // Products of different sizes, as in a compiled step: both operands transposed (10 and 20
    // elements), then one of 30, then a 5 and a 35. Taking the first spare that fits and dropping
    // returns once four were kept made the third allocate on every repetition. Taking the first
    // that fits alone hands the 35-element spare to a small copy, so the 35 allocates again in
    // the fourth repetition (best fit settles within the first).
    setCpuWasm(false);
    // Start from no spares: ones left by earlier tests are large enough to fit every product
    // here, and would hide the allocations this test guards against.
    clearTransposeSpares();
    try {
      const products: [number, number, number, boolean, boolean][] = [
        [2, 5, 2, true, true],
        [4, 5, 4, true, true],
        [5, 6, 5, true, false],
        [1, 5, 7, true, true],
      ];
      const run = () => {
        for (const [m, k, n, transA, transB] of products) {
          const a = new Float32Array(m * k).fill(1);
          const b = new Float32Array(k * n).fill(2);
          const c = new Float32Array(m * n);
          matmulInto(a, 0, b, 0, c, 0, m, n, k, { transA, transB });
          expect(c[0]).toBe(2 * k);
        }
      };
      run();
      run();
      const before = transposeSparesMade();
      for (let i = 0; i < 5; i++) run();
      expect(transposeSparesMade()).toBe(before);
      // The kept spares are counted with the kernels' memory: their float32 elements, no more.
      const kept = transposeSpareBytes();
      expect(kept).toBeGreaterThanOrEqual(4 * 35);
      const withSpares = (getBackend('cpu') as CpuBackend).memoryStats().kernelMemoryBytes;
      clearTransposeSpares();
      expect(transposeSpareBytes()).toBe(0);
      expect((getBackend('cpu') as CpuBackend).memoryStats().kernelMemoryBytes).toBe(withSpares - kept);
    } finally {
      setCpuWasm(true);
    }
  });

  it('rejects a flag that is not a boolean', () => {
    const x = new Float32Array(4);
    expect(() => matmulInto(x, 0, x, 0, new Float32Array(4), 0, 2, 2, 2, { transA: 1 as unknown as boolean })).toThrow('matmulInto: transA must be true or false, got 1');
  });
});

describe.runIf(WASM)('narrow products (at most 4 rows or 4 columns): the bits of the tiled kernel', () => {
  // The narrow kernels read the operands in place and keep whole rows or columns of C in their
  // accumulators. The tiled kernel computes the same elements inside a product 5 rows taller and 5
  // columns wider. Each element is the same sum in the same order on both, so the bits must agree,
  // for every flag and in a batch. The other dimension covers whole blocks of vectors, single
  // vectors and single columns; k = 1, a few, and past a k block of the tiled kernel (256), and
  // neither a multiple of 4 nor of 2 (the last steps of a block of k). Products below
  // WASM_MIN_WORK run in TypeScript (its own sum, tested above) and are left out.
  const OTHER = [1, 3, 5, 17, 33, 130, 600];
  const DEPTHS = [1, 7, 300];
  const FLAGS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

  /** The rows×cols row-major matrix at `off` of `x`, as stored (transposed when `t`). */
  const stored = (Ctor: FloatCtor, x: Float, off: number, rows: number, cols: number, t: boolean): Float =>
    t ? transposeInto(Ctor, x, off, rows, cols, 0).subarray(0, rows * cols) : x.subarray(off, off + rows * cols);

  for (const [name, Ctor] of [['float32', Float32Array], ['float64', Float64Array]] as const) {
    it(`${name}: 1–4 rows or columns, every flag, a batch of 2`, () => {
      setCpuWasm(true);
      let cases = 0;
      for (let narrow = 1; narrow <= 4; narrow++) {
        for (const other of OTHER) {
          for (const k of DEPTHS) {
            for (const [m, n] of [[narrow, other], [other, narrow]] as const) {
              if (m * n * k < WASM_MIN_WORK) continue;
              const batch = 2;
              // Row-major operands of the tiled product, per entry: (m + 5) × k and k × (n + 5).
              const [M, N] = [m + 5, n + 5];
              const bigA = randomArray(Ctor, batch * M * k, seededUniform(narrow * 1000 + other * 10 + k));
              const bigB = randomArray(Ctor, batch * k * N, seededUniform(other * 31 + k + m));
              const bigC = new Ctor(batch * M * N);
              matmulBatchedInto(batch, bigA, 0, M * k, bigB, 0, k * N, bigC, 0, M, N, k);
              const want = new Ctor(batch * m * n);
              for (let e = 0; e < batch; e++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) want[(e * m + i) * n + j] = bigC[(e * M + i) * N + j]!;
              for (const [transA, transB] of FLAGS) {
                // Entry e's A: the first m rows of its big A; its B: the first n columns of its big B.
                const a = new Ctor(batch * m * k);
                const b = new Ctor(batch * k * n);
                for (let e = 0; e < batch; e++) {
                  a.set(stored(Ctor, bigA, e * M * k, m, k, transA), e * m * k);
                  const bRows = new Ctor(k * n);
                  for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bRows[p * n + j] = bigB[e * k * N + p * N + j]!;
                  b.set(stored(Ctor, bRows, 0, k, n, transB), e * k * n);
                }
                const got = new Ctor(batch * m * n).fill(NaN);
                matmulBatchedInto(batch, a, 0, m * k, b, 0, k * n, got, 0, m, n, k, { transA, transB });
                const d = firstDifference(got, 0, want);
                expect(d, `${m}×${k}×${n}, transA ${transA}, transB ${transB}: element ${d}, ${got[d]} against ${want[d]}`).toBe(-1);
                cases++;
              }
            }
          }
        }
      }
      expect(cases).toBeGreaterThan(300);
    });
  }
});

// The dispatch's edges: a batch of depth 0, option checks before anything is written, the
// transposed-copy spares (their reuse, their count, float64's among them), what cpuKernelInfo says
// with WebAssembly off, a stored Aᵀ too large for the kernels' memory, a shallow product with a
// heap-resident transposed B, the gathered-B entry's checks, and a product run from an epilogue.

describe('a batch of depth k = 0', () => {
  for (const Ctor of [Float32Array, Float64Array]) {
    it(`overwrites every entry of C with zeros, and only C (${Ctor.name})`, () => {
      // 3 entries of 2×4, C at offset 1 of a NaN-filled array with a sentinel on each side: each
      // of the 24 elements of C is an empty sum, exactly 0. A and B have no elements (m·k = k·n =
      // 0), so empty arrays fit them whatever their strides (7 here).
      const [batch, m, n] = [3, 2, 4];
      const out = new Ctor(1 + batch * m * n + 2).fill(NaN);
      out[0] = -7.5;
      out[1 + batch * m * n] = -7.5;
      out[2 + batch * m * n] = -7.5;
      const ranges: [number, number][] = [];
      matmulBatchedInto(batch, new Ctor(0), 0, 7, new Ctor(0), 0, 7, out, 1, m, n, 0, { epilogue: (s, e) => ranges.push([s, e]) });
      const notZero = out.subarray(1, 1 + batch * m * n).findIndex((v) => !Object.is(v, 0));
      expect(notZero, `element ${notZero} of C: ${out[1 + notZero]}`).toBe(-1);
      expect([out[0], out[1 + batch * m * n], out[2 + batch * m * n]]).toEqual([-7.5, -7.5, -7.5]);
      expect(ranges).toEqual([[1, 1 + batch * m * n]]);
    });
  }
});

describe('bad options are refused before anything is written, naming the value', () => {
  const a = new Float32Array(6).fill(1);
  const b = new Float32Array(6).fill(1);
  it('an epilogue that is not a function', () => {
    const c = new Float32Array(4).fill(NaN);
    expect(() => matmulInto(a, 0, b, 0, c, 0, 2, 2, 3, { epilogue: 'relu' as never })).toThrow('matmulInto: epilogue must be a function, got string');
    // Nothing computed: C still holds what it held.
    expect(Array.from(c)).toEqual([NaN, NaN, NaN, NaN]);
  });
  it('transB that is not a boolean (1 is truthy: it must not be read as a transposed B)', () => {
    const c = new Float32Array(4).fill(NaN);
    expect(() => matmulInto(a, 0, b, 0, c, 0, 2, 2, 3, { transB: 1 as unknown as boolean })).toThrow('matmulInto: transB must be true or false, got 1');
    expect(Array.from(c)).toEqual([NaN, NaN, NaN, NaN]);
  });
  it('a falsy non-boolean flag (0) is refused too, not read as false', () => {
    const c = new Float32Array(4).fill(NaN);
    expect(() => matmulInto(a, 0, b, 0, c, 0, 2, 2, 3, { transA: 0 as unknown as boolean })).toThrow('matmulInto: transA must be true or false, got 0');
    expect(() => matmulBatchedInto(1, a, 0, 0, b, 0, 0, c, 0, 2, 2, 3, { transB: '' as unknown as boolean })).toThrow('matmulBatchedInto: transB must be true or false, got ""');
    expect(Array.from(c)).toEqual([NaN, NaN, NaN, NaN]);
  });
});

describe('float64 transposed copies on the TypeScript path', () => {
  it('are kept as spares, counted by transposeSpareBytes, and dropped by clearTransposeSpares', () => {
    setCpuWasm(false);
    try {
      clearTransposeSpares();
      expect(transposeSpareBytes()).toBe(0);
      // A stored transposed (a 3×5 Aᵀ, 15 float64 elements), B row-major: one spare of at least
      // 15·8 bytes is kept after the product. All-ones operands: each element of C is k = 3.
      const c = new Float64Array(5 * 4);
      matmulInto(new Float64Array(15).fill(1), 0, new Float64Array(12).fill(1), 0, c, 0, 5, 4, 3, { transA: true });
      expect(Array.from(c)).toEqual(new Array<number>(20).fill(3));
      const kept = transposeSpareBytes();
      expect(kept).toBeGreaterThanOrEqual(15 * 8);
      expect(clearTransposeSpares()).toBe(kept);
      expect(transposeSpareBytes()).toBe(0);
    } finally {
      setCpuWasm(true);
    }
  });
});

describe('the TypeScript path\'s spare arrays for transposed copies', () => {
  it('a taker gets the smallest spare that fits: a repeated product allocates nothing after its first call', () => {
    setCpuWasm(false);
    clearTransposeSpares();
    try {
      // A stored transposed (5 elements), then B (10): the first call makes both. Handing the
      // 10 to A's copy in the second would leave only the 5 for B's, and make a third.
      const run = () => {
        const c = new Float32Array(5 * 10).fill(NaN);
        matmulInto(new Float32Array(5).fill(1), 0, new Float32Array(10).fill(1), 0, c, 0, 5, 10, 1, { transA: true, transB: true });
        expect(Array.from(c)).toEqual(new Array<number>(50).fill(1));
      };
      run();
      const before = transposeSparesMade();
      run();
      expect(transposeSparesMade() - before).toBe(0);
    } finally {
      clearTransposeSpares();
      setCpuWasm(true);
    }
  });

  it('when four are kept, one given back replaces the smallest only if it is larger (the largest stay)', () => {
    setCpuWasm(false);
    clearTransposeSpares();
    try {
      // Both operands stored transposed, all ones (each element of C is k). The copies, in
      // elements: A 5 and B 10; A 20 and B 20; then A 40 (none fits: a new one, kept as the
      // fourth) and B 5 (best fit: the 5 kept). Given back to a full set, the 5 is smaller than
      // every spare kept, so it is dropped: [10, 20, 20, 40] remain, 90 float32 elements.
      for (const [m, k, n] of [[5, 1, 10], [4, 5, 4], [8, 5, 1]] as const) {
        const c = new Float32Array(m * n).fill(NaN);
        matmulInto(new Float32Array(m * k).fill(1), 0, new Float32Array(k * n).fill(1), 0, c, 0, m, n, k, { transA: true, transB: true });
        expect(Array.from(c)).toEqual(new Array<number>(m * n).fill(k));
      }
      expect(transposeSpareBytes()).toBe(4 * (10 + 20 + 20 + 40));
    } finally {
      clearTransposeSpares();
      setCpuWasm(true);
    }
  });
});

describe('cpuKernelInfo with the WebAssembly kernels switched off', () => {
  it('reports one thread whatever setCpuThreads asked (the TypeScript kernels run on this thread)', () => {
    setCpuWasm(false);
    setCpuThreads(3);
    try {
      const info = cpuKernelInfo();
      expect(info.matmul).toBe('typescript');
      expect(info.threads).toBe(1);
      expect(info.fma).toBe(false);
    } finally {
      setCpuWasm(true);
      setCpuThreads(1);
    }
  });
});

describe.runIf(WASM)('an entry too large for the WebAssembly memory, with A stored transposed', () => {
  afterAll(() => setWasmMatmulMemoryLimitForTesting(undefined));
  it('is computed right (row blocks cannot split a stored Aᵀ: it runs in TypeScript)', () => {
    // 1500×40×30 lays out more than 512 KiB at once (as in cpuMatmul.test.ts's parts test); its
    // A's rows are columns of the stored Aᵀ, so no band of rows is contiguous.
    const [m, k, n] = [1500, 40, 30];
    const next = seededUniform(4711);
    const a = randomArray(Float64Array, m * k, next);
    const b = randomArray(Float64Array, k * n, next);
    const aT = new Float64Array(k * m);
    for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) aT[p * m + i] = a[i * k + p]!;
    const got = new Float64Array(m * n).fill(NaN);
    setWasmMatmulMemoryLimitForTesting(512 * 1024);
    try {
      matmulInto(aT, 0, b, 0, got, 0, m, n, k, { transA: true });
    } finally {
      setWasmMatmulMemoryLimitForTesting(undefined);
    }
    const { value, absSum } = referenceProduct(a, 0, b, 0, m, n, k);
    // Whichever kernel ran: the larger of its two bounds (matmulReference.ts derives both).
    let firstBad = -1;
    for (let e = 0; e < m * n && firstBad < 0; e++) {
      const tol = Math.max(wasmTolerance(absSum[e]!, k, false), typescriptTolerance(value[e]!, absSum[e]!, k, false));
      if (!(Math.abs(got[e]! - value[e]!) <= tol)) firstBad = e;
    }
    expect(firstBad, `element ${firstBad}: got ${got[firstBad]}, reference ${value[firstBad]}`).toBe(-1);
  });
});

describe.runIf(WASM)('a product of depth k ≤ 4 whose B is a transpose view of a tensor in the CPU heap', () => {
  it('has the bits of the same product on a dense copy of Bᵀ (float32 and float64)', () => {
    // x: [40, 4], w: [100, 4] (1.6 KiB or more: it lives in the heap), x·wᵀ: 40×4×100, past
    // WASM_MIN_WORK, more than 4 rows and columns, depth 4: the shallow kernels, B stored
    // transposed; those copy such a B row-major first, even where it lies in the heap.
    setCpuWasm(true);
    const [m, k, n] = [40, 4, 100];
    const next = seededUniform(808);
    for (const dtype of ['float32', 'float64'] as const) {
      const x = tensor(Array.from({ length: m * k }, next), { shape: [m, k], dtype });
      const w = tensor(Array.from({ length: n * k }, next), { shape: [n, k], dtype });
      const heap = cpuHeap();
      if (heap) expect(heap.holds((w._live('test') as CpuHandle).data!)).toBe(true);
      const wt = transpose(w);
      expect((wt._live('test') as CpuHandle).view, 'a view, read in place').not.toBeNull();
      const wtDense = tensor(Array.from(wt.dataSync()), { shape: [k, n], dtype });
      const got = matmul(x, transpose(w));
      const want = matmul(x, wtDense);
      const [g, wv] = [got.dataSync(), want.dataSync()];
      const d = firstDifference(g, 0, wv);
      expect(d, `${dtype} element ${d}: got ${g[d]}, the dense Bᵀ gives ${wv[d]}`).toBe(-1);
      for (const t of [x, w, wt, wtDense, got, want] as Tensor[]) t.dispose();
    }
  });
});

describe('matmulGatheredBInto (B packed from a source through row and column offsets)', () => {
  // B's element (p, j) at src[rows[p] + cols[j]]: rows p·n and cols j give a row-major k×n B.
  const tables = (k: number, n: number) => [Int32Array.from({ length: k }, (_, p) => p * n), Int32Array.from({ length: n }, (_, j) => j)] as const;

  it('checks C\'s extent before anything runs, naming the index it needs', () => {
    const [m, n, k] = [8, 8, 8];
    const [rows, cols] = tables(k, n);
    const a = new Float32Array(m * k).fill(1);
    const src = new Float32Array(k * n).fill(1);
    const c = new Float32Array(m * n - 1).fill(NaN);
    expect(() => matmulGatheredBInto(1, a, 0, 0, src, 0, 0, rows, cols, c, 0, m, n, k)).toThrow('matmulGatheredBInto: c needs elements up to index 63, but has length 63');
    expect(c.every(Number.isNaN)).toBe(true);
  });

  it.runIf(WASM)('refuses a source one element short of what the offsets read, naming the range', () => {
    // 8×8×8 (512 multiply-adds): B reads src[0] to src[63]; src has 63 elements.
    const [m, n, k] = [8, 8, 8];
    const [rows, cols] = tables(k, n);
    const c = new Float32Array(m * n).fill(NaN);
    expect(() => matmulGatheredBInto(1, new Float32Array(m * k).fill(1), 0, 0, new Float32Array(k * n - 1).fill(1), 0, 0, rows, cols, c, 0, m, n, k)).toThrow(
      'wasmMatmulGatheredB: the gathered B reads elements 0 to 63 of an array of 63',
    );
    expect(c.every(Number.isNaN)).toBe(true);
  });

  it.runIf(WASM)('declines a product below WASM_MIN_WORK, writing nothing (matmulBatchedInto would run it in TypeScript)', () => {
    setCpuWasm(true);
    // 5×2×8 = 80 multiply-adds: a shape the gather takes (more than 4 rows, 8 contiguous columns),
    // but too small for the WebAssembly kernels, so the caller must store B and call matmulBatchedInto.
    const [m, n, k] = [5, 8, 2];
    expect(m * n * k).toBeLessThan(WASM_MIN_WORK);
    const [rows, cols] = tables(k, n);
    const c = new Float32Array(m * n).fill(NaN);
    expect(matmulGatheredBInto(1, new Float32Array(m * k).fill(1), 0, 0, new Float32Array(k * n).fill(1), 0, 0, rows, cols, c, 0, m, n, k)).toBe(false);
    expect(c.every(Number.isNaN)).toBe(true);
  });
});

describe.runIf(WASM)('a product started from an epilogue of a WebAssembly product', () => {
  it('leaves the outer product\'s operands in the kernels\' memory alone: the outer has its bits', () => {
    // 250×40×30 float64 on one thread: three chunks of 120 rows, the epilogue after each. The
    // inner product has the same shape and other operands (A negated, B reversed), so were it to
    // run in the same memory it would overwrite the copy of A and the packed B that the outer's
    // later chunks read. It must run elsewhere (in TypeScript) and be right itself.
    setCpuWasm(true);
    setCpuThreads(1);
    const [m, k, n] = [250, 40, 30];
    const next = seededUniform(2121);
    const a = randomArray(Float64Array, m * k, next);
    const b = randomArray(Float64Array, k * n, next);
    const plain = new Float64Array(m * n);
    matmulInto(a, 0, b, 0, plain, 0, m, n, k);
    const a2 = a.map((x) => -x);
    const b2 = b.slice().reverse();
    const out = new Float64Array(m * n).fill(NaN);
    const inner = new Float64Array(m * n);
    let calls = 0;
    matmulInto(a, 0, b, 0, out, 0, m, n, k, {
      epilogue: () => {
        calls++;
        matmulInto(a2, 0, b2, 0, inner, 0, m, n, k);
      },
    });
    expect(calls).toBeGreaterThan(1);
    const d = firstDifference(out, 0, plain);
    expect(d, `element ${d}: ${out[d]} against ${plain[d]}`).toBe(-1);
    const { value, absSum } = referenceProduct(a2, 0, b2, 0, m, n, k);
    // Either kernel's float64 bound (matmulReference.ts).
    const bad = value.findIndex((v, e) => !(Math.abs(inner[e]! - v) <= Math.max(wasmTolerance(absSum[e]!, k, false), typescriptTolerance(v, absSum[e]!, k, false))));
    expect(bad).toBe(-1);
  });
});
