// The CPU backend's eager slice is a window: the source's array read at an offset through its
// strides, copied by nothing until a consumer needs it dense (a concat copies it straight from the
// source). These tests pin the memory accounting, the strides of a reshaped window, and that every
// consumer gives the bits it gives for a dense copy of the same values.

import { describe, expect, it } from 'vitest';
import {
  type CpuBackend, type CpuHandle, type DType, type Tensor, argmax, cast, concat, conv2d, cumsum, expand, getBackend, indexSelect, matmul,
  cpuKernelInfo, memory, narrow, pad, permute, profile, setCpuThreads, randn, randomKey, reshape, sum, tensor, unsqueeze, where,
} from '@scorch/tensor';
import { jit } from '@scorch/autograd';
import { heapCopiesMade, setWasmThreadMinWorkForTesting } from '../src/cpu/wasm/wasmMatmul.js';
import { untilWorkerChunk } from './workerChunks.js';
import { stridedCopy } from '../src/cpu/cpuBackend.js';
import { reshapedStrides } from '../src/fusion.js';
import { bitsOf } from './reference.js';

const cpu = (): CpuBackend => getBackend('cpu') as CpuBackend;
const handle = (t: Tensor): CpuHandle => t._handle as CpuHandle;
const isWindow = (t: Tensor): boolean => handle(t).view?.kind === 'window';

/** A tensor's bytes (NaN, −0 and every float told apart). */
const bits = (t: Tensor): number[] => bitsOf(t.dataSync());

/** A dense tensor of the same values, dtype and shape (made from its read-out copy). */
const denseCopy = (t: Tensor): Tensor => tensor(t.dataSync(), { shape: t.shape, dtype: t.dtype });

/** Values 0, 1, 2, … scaled so that float32 sums round (and int32/bool stay in range). */
function ramp(shape: number[], dtype: DType = 'float32'): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 3 === 0 : dtype === 'int32' ? (i * 7919) % 1001 - 500 : Math.sin(i) * 10 ** ((i % 7) - 3)));
  return tensor(values as number[], { shape, dtype });
}

describe('CPU eager slices are windows of their source', () => {
  it('a slice allocates nothing; its source stays live until the window goes, and memory() says so', () => {
    const x = ramp([64, 64]);
    const before = memory();
    const s = narrow(x, 0, 8, 16);
    expect(isWindow(s)).toBe(true);
    expect(memory().bytes).toBe(before.bytes);
    expect(memory().buffers).toBe(before.buffers);
    x.dispose();
    // The window still reads x's array: its 16 KiB stay live (and counted) until the window goes.
    expect(memory().bytes).toBe(before.bytes);
    expect(bits(s)).toEqual(bitsOf(Float32Array.from({ length: 16 * 64 }, (_, i) => Math.sin(8 * 64 + i) * 10 ** (((8 * 64 + i) % 7) - 3))));
    s.dispose();
    expect(memory().bytes).toBe(before.bytes - 64 * 64 * 4);
    expect(memory().buffers).toBe(before.buffers - 1);
  });

  it('a window materialised by its first dense consumer holds its own copy and lets the source go', () => {
    const x = ramp([32, 32]);
    const columns = narrow(x, 1, 3, 5);
    const s = narrow(columns, 0, 2, 7);
    columns.dispose(); // s reads x's array itself, not through the first window
    expect(isWindow(s)).toBe(true);
    const y = s.add(1); // elementwise kernels read windows dense: s is copied in place, once
    expect(isWindow(s)).toBe(false);
    const before = memory().bytes;
    x.dispose();
    expect(memory().bytes).toBe(before - 32 * 32 * 4);
    expect(bits(y)).toEqual(bits(denseCopy(s).add(1)));
    s.dispose();
    y.dispose();
  });

  it('slices of slices and of reshapes compose; reshapes of windows stay windows where strides allow', () => {
    const x = ramp([4, 6, 10]);
    const s = narrow(narrow(reshape(x, [24, 10]), 1, 2, 6), 0, 5, 12); // a slice of an alias
    expect(isWindow(s)).toBe(true);
    const u = unsqueeze(s, 1); // [12, 1, 6]
    expect(isWindow(u)).toBe(true);
    const split = reshape(s, [3, 4, 2, 3]); // rows split, columns split: both steps within a run
    expect(isWindow(split)).toBe(true);
    const merged = reshape(s, [72]); // the window's columns then rows: no strides read that
    expect(isWindow(merged)).toBe(false);
    const ref = denseCopy(s);
    expect(bits(u)).toEqual(bits(ref));
    expect(bits(split)).toEqual(bits(ref));
    expect(bits(merged)).toEqual(bits(ref));
    expect(bits(narrow(split, 3, 1, 2))).toEqual(bits(narrow(reshape(ref, [3, 4, 2, 3]), 3, 1, 2)));
    for (const t of [x, s, u, split, merged, ref]) t.dispose();
  });

  it('every consumer of a window gives the bits of the same op on a dense copy (float32, float64, int32, bool)', () => {
    for (const dtype of ['float32', 'float64', 'int32', 'bool'] as const) {
      const x = ramp([3, 5, 8], dtype);
      // A fresh window for each consumer: [3, 3, 6] at offset 9 of x, strides [40, 8, 1].
      const window = () => narrow(narrow(x, 2, 1, 6), 1, 1, 3);
      const w = window();
      // A concat and a pad copy the window straight from x's array: it stays a window.
      concat([w, w], 0).dispose();
      pad(w, [[0, 1], [2, 0], [1, 1]]).dispose();
      expect(isWindow(w)).toBe(true);
      const d = denseCopy(w);
      const same = (f: (t: Tensor) => Tensor) => {
        const fresh = window();
        expect(isWindow(fresh)).toBe(true);
        expect(bits(f(fresh)), `${dtype}: ${f}`).toEqual(bits(f(d)));
      };
      same((t) => concat([t, d, t], 1));
      same((t) => concat([narrow(t, 2, 0, 2), expand(narrow(d, 2, 0, 1), [3, 3, 4]), t], 2));
      same((t) => pad(t, [[1, 0], [0, 2], [3, 1]]));
      same((t) => permute(t, [2, 0, 1]));
      same((t) => permute(t, [0, 2, 1]));
      same((t) => reshape(t, [9, 6]));
      same((t) => expand(unsqueeze(t, 0), [2, 3, 3, 6]));
      same((t) => indexSelect(t, 2, [5, 0, 0, 3]));
      same((t) => argmax(cast(t, 'float32'), 2));
      same((t) => where(cast(t, 'bool'), t, t));
      if (dtype !== 'bool') {
        same((t) => sum(t, [0, 2]));
        same((t) => cumsum(t, 1));
        same((t) => t.add(t).mul(d));
      }
      if (dtype === 'float32' || dtype === 'float64') {
        same((t) => matmul(t, permute(d, [0, 2, 1]))); // A a window read in place, B a transpose view
        same((t) => matmul(permute(d, [0, 2, 1]), t));
        same((t) => matmul(narrow(t, 0, 1, 1), reshape(narrow(t, 1, 0, 1), [3, 6, 1]))); // a window of a window, and its reshape
      }
      x.dispose();
      d.dispose();
      w.dispose();
    }
  });

  it('elementwise kernels read a row-major window in place, and an expand of any window copies nothing', () => {
    // Small (the JavaScript kernels) and large (WebAssembly, from 256 elements) operands.
    for (const [shape, rows, cols] of [[[3, 8, 10], [2, 5], [1, 6]], [[4, 40, 40], [3, 30], [5, 32]]] as const) {
      const x = ramp([...shape]);
      const run = narrow(x, 0, 1, 2); // whole rows: one row-major run at an offset
      const sum1 = run.add(run).mul(2);
      expect(isWindow(run)).toBe(true);
      expect(bits(sum1)).toEqual(bits(denseCopy(run).add(denseCopy(run)).mul(2)));
      const columns = () => narrow(narrow(x, 1, rows[0], rows[1]), 2, cols[0], cols[1]); // not one run
      const colsDense = denseCopy(columns());
      const cols1 = columns();
      const target = [2, ...cols1.shape];
      const before = memory();
      const wide = expand(unsqueeze(cols1, 0), target);
      expect([memory().bytes, memory().buffers]).toEqual([before.bytes, before.buffers]);
      const ref = expand(unsqueeze(colsDense, 0), target);
      for (const f of [(t: Tensor) => t.mul(3).sub(1), (t: Tensor) => sum(t, [0, 2]), (t: Tensor) => argmax(t, 3), (t: Tensor) => t.add(run.sum().reshape([1, 1, 1, 1]))]) {
        expect(bits(f(wide)), String(f)).toEqual(bits(f(ref)));
      }
      expect(isWindow(cols1)).toBe(true); // read through the broadcast, never copied
      const plain = cols1.add(1); // an elementwise op on it copies it densely first
      expect(isWindow(cols1)).toBe(false);
      expect(bits(plain)).toEqual(bits(colsDense.add(1)));
    }
  });

  it('a jitted function takes windows as arguments, copied densely first (dense_input under profile)', async () => {
    const x = ramp([6, 20]);
    const f = jit((a: Tensor, b: Tensor) => a.mul(b).add(1));
    const w = narrow(x, 1, 3, 10);
    const r = narrow(x, 0, 2, 3);
    const p = await profile(() => f(w, w));
    expect(p.kernels.map((k) => k.name)).toContain('dense_input0');
    expect(bits(p.value)).toEqual(bits(f(denseCopy(w), denseCopy(w))));
    expect(bits(f(r, r))).toEqual(bits(f(denseCopy(r), denseCopy(r))));
  });

  it.runIf(cpuKernelInfo().wasmSimd && typeof SharedArrayBuffer === 'function')('a product of windows on two threads has the bits of one thread', () => {
    setWasmThreadMinWorkForTesting(1 << 12);
    try {
      const a = ramp([3, 70, 64]);
      const b = ramp([4, 64, 48]).mul(0.25);
      const run = (threads: number) => {
        setCpuThreads(threads);
        return bits(matmul(narrow(a, 1, 5, 60), narrow(b, 0, 1, 3)));
      };
      const one = run(1);
      let two: number[] = [];
      const { tries, chunks } = untilWorkerChunk(() => (two = run(2)));
      expect(chunks, `no worker chunk after ${tries} products`).toBeGreaterThan(0);
      expect(two).toEqual(one);
      expect(one).toEqual(bits(matmul(denseCopy(narrow(a, 1, 5, 60)), denseCopy(narrow(b, 0, 1, 3)))));
    } finally {
      setWasmThreadMinWorkForTesting(undefined);
      setCpuThreads(undefined);
    }
  });

  it('an empty window reads nothing, whatever its start: every consumer takes it', () => {
    const x = ramp([0, 4, 16]);
    const w = x.slice([0, 1, 2], [0, 3, 10]); // would start at 1·16 + 2, past the end of no elements
    expect(isWindow(w)).toBe(true);
    expect(matmul(w, ramp([10, 2])).shape).toEqual([0, 3, 2]);
    expect(concat([w, w], 2).shape).toEqual([0, 3, 20]);
    expect(reshape(w, [0, 10]).dataSync().length).toBe(0);
    expect(w.add(1).shape).toEqual([0, 3, 10]);
  });

  it('a matmul reads a window of whole matrices (or of rows) in place, at its offset', () => {
    const a = ramp([4, 8, 16]);
    const b = ramp([5, 16, 8], 'float32').mul(0.5);
    for (const [wa, wb] of [
      [narrow(a, 0, 1, 2), narrow(b, 0, 2, 2)], // whole matrices of a batch
      [narrow(a, 1, 3, 4), narrow(b, 0, 1, 4)], // rows of each matrix (batch stride 128, rows of 16)
    ] as const) {
      expect(isWindow(wa) && isWindow(wb)).toBe(true);
      const product = matmul(wa, wb);
      expect(isWindow(wa) && isWindow(wb)).toBe(true); // read in place: neither was copied densely
      expect(bits(product)).toEqual(bits(matmul(denseCopy(wa), denseCopy(wb))));
    }
    // A window of some columns of each row is not: it is copied densely first, with the same bits.
    const cols = narrow(a, 2, 4, 8);
    expect(bits(matmul(cols, narrow(narrow(b, 0, 0, 4), 1, 0, 8)))).toEqual(bits(matmul(denseCopy(cols), denseCopy(narrow(narrow(b, 0, 0, 4), 1, 0, 8)))));
    expect(isWindow(cols)).toBe(false);
  });

  it("an eager conv2d's nine taps are windows of the padded input, copied once into the columns", () => {
    const x = randn([2, 3, 9, 7], { key: randomKey(5) });
    const w = randn([4, 3, 3, 3], { key: randomKey(6) });
    const before = memory();
    const y = conv2d(x, w, { padding: 1, stride: [2, 1], dilation: [1, 2] });
    // The same convolution by direct summation in float64, rounded: the columns hold the values.
    const xs = x.dataSync();
    const ws = w.dataSync();
    const ys = y.dataSync();
    const [ho, wo] = [5, 5];
    expect(y.shape).toEqual([2, 4, ho, wo]);
    for (let n = 0; n < 2; n++) for (let o = 0; o < 4; o++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) {
      let acc = 0;
      let mag = 0;
      for (let c = 0; c < 3; c++) for (let p = 0; p < 3; p++) for (let q = 0; q < 3; q++) {
        const r = i * 2 - 1 + p;
        const s = j - 1 + q * 2;
        if (r < 0 || r >= 9 || s < 0 || s >= 7) continue;
        const term = xs[((n * 3 + c) * 9 + r) * 7 + s]! * ws[((o * 3 + c) * 3 + p) * 3 + q]!;
        acc += term;
        mag += Math.abs(term);
      }
      // float32 accumulation of 27 terms: |error| ≤ γ₂₇·Σ|terms| with γ₂₇ = 27u/(1 − 27u), u = 2⁻²⁴.
      const got = ys[((n * 4 + o) * ho + i) * wo + j]!;
      expect(Math.abs(got - acc)).toBeLessThanOrEqual((27 * 2 ** -24 / (1 - 27 * 2 ** -24)) * mag + 2 ** -24 * Math.abs(acc));
    }
    y.dispose();
    expect([memory().bytes, memory().buffers]).toEqual([before.bytes, before.buffers]); // nothing the call made outlives it
  });

  it("an eager conv2d runs no slice kernel: the concat copies the taps from the padded input, in WebAssembly", async () => {
    // Large enough that the concat's pieces (rows of 30 floats) go through the heap's copy.
    const x = randn([4, 16, 30, 30], { key: randomKey(7) });
    const w = randn([8, 16, 3, 3], { key: randomKey(8) });
    const h0 = heapCopiesMade();
    const p = await profile(() => conv2d(x, w, { padding: 1 }));
    expect(heapCopiesMade() - h0).toBeGreaterThanOrEqual(9);
    const names = p.kernels.map((k) => k.name);
    expect(names).toContain('concat');
    expect(names).toContain('pad');
    expect(names).not.toContain('slice');
    p.value.dispose();
  });
});

describe("reshapedStrides (fusion.ts: the fusion's views and the CPU's windows)", () => {
  it('splits and merges within contiguous runs only; unit axes read no stride (0)', () => {
    // A [16, 64, 32, 32] window of a [16, 64, 34, 34] array, as an eager conv's tap, unsqueezed.
    expect(reshapedStrides([16, 64, 32, 32], [73984, 1156, 34, 1], [16, 64, 1, 32, 32])).toEqual([73984, 1156, 0, 34, 1]);
    expect(reshapedStrides([16, 64, 32, 32], [73984, 1156, 34, 1], [1024, 32, 32])).toEqual([1156, 34, 1]);
    expect(reshapedStrides([16, 64, 32, 32], [73984, 1156, 34, 1], [16, 64, 1024])).toBeNull();
    expect(reshapedStrides([6, 4], [10, 1], [2, 3, 2, 2])).toEqual([30, 10, 2, 1]);
    expect(reshapedStrides([6, 4], [10, 1], [3, 8])).toBeNull();
    expect(reshapedStrides([1, 5, 1], [999, 3, 7], [5])).toEqual([3]);
    expect(reshapedStrides([5], [3], [1, 5, 1, 1])).toEqual([0, 3, 0, 0]);
    expect(reshapedStrides([0, 4], [4, 1], [2, 0, 2])).toEqual([0, 2, 1]);
  });

  it('reads what a dense copy reshaped reads, for random windows and reshapes', () => {
    // Park and Miller's minimal standard generator: every product stays below 2^53.
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 48271) % 2147483647), seed % n);
    let checked = 0;
    for (let trial = 0; trial < 400; trial++) {
      const rank = 1 + rand(4);
      const full = Array.from({ length: rank }, () => 1 + rand(5));
      const st = full.map((_, i) => full.slice(i + 1).reduce((a, b) => a * b, 1));
      const shape = full.map((d) => 1 + rand(d));
      const starts = full.map((d, i) => rand(d - shape[i]! + 1));
      const offset = starts.reduce((a, s, i) => a + s * st[i]!, 0);
      const size = shape.reduce((a, b) => a * b, 1);
      // A random factorisation of size into 1–4 axes, with unit axes sprinkled in.
      const factors: number[] = [];
      let left = size;
      for (let p = 2; p <= left; p++) while (left % p === 0) { factors.push(p); left /= p; }
      const newShape: number[] = [];
      for (const f of factors) if (newShape.length && rand(2)) newShape[newShape.length - 1]! *= f; else newShape.push(f);
      if (rand(3) === 0) newShape.splice(rand(newShape.length + 1), 0, 1);
      const src = new Float64Array(full.reduce((a, b) => a * b, 1)).map((_, i) => i);
      const want = new Float64Array(size);
      stridedCopy(src, offset, st, shape, want);
      const strides = reshapedStrides(shape, st, newShape);
      if (strides === null) continue;
      const got = new Float64Array(size);
      stridedCopy(src, offset, strides, newShape, got);
      expect(Array.from(got)).toEqual(Array.from(want));
      checked++;
    }
    expect(checked).toBeGreaterThan(200);
  });
});
