// The CPU's heap (src/cpu/wasm/heap.ts): one shared WebAssembly memory that the kernels import and
// that the CPU's float arrays of 1 KiB or more live in. Its regions (first fit, merged when freed,
// the top lowered, views kept valid across growth); the kernels reading and writing its arrays
// where they lie, with the bits they compute from copies and without touching a neighbour; the
// array pool freeing a dropped array's region; and (in a child process, with gc()) a region freed
// when its array is collected. Where shared memory is refused there is no heap: cpuThreads.test.ts
// ("where a shared WebAssembly.Memory is refused") runs that fallback.

import { describe, expect, it } from 'vitest';
import { type CpuBackend, type CpuHandle, type Tensor, add, concat, conv2d, pad, tidy, cpuKernelInfo, getBackend, randn, randomKey, setCpuThreads, setCpuWasm, traceProgram } from '@scorch/tensor';
import { stridedCopyInto } from '../src/cpu/cpuBackend.js';
import { CpuHeap, KERNEL_CONSTANTS_BYTES, cpuHeap } from '../src/cpu/wasm/heap.js';
import { elementwiseKernel, elementwiseModule, passPlan, wasmElementwiseInstance, type WasmKernelSpec } from '../src/cpu/wasm/elementwiseModule.js';
import { FAST_CONSTANTS_ADDRESS } from '../src/cpu/wasm/mathF32x4Fast.js';
import { EXP_TABLE_ADDRESS } from '../src/cpu/wasm/mathF32x4.js';
import { elementwiseExpression } from '../src/expression.js';
import { heapCopiesMade, heapCopy, setWasmMatmulMemoryLimitForTesting, setWasmThreadMinWorkForTesting, wasmMatmul, wasmMatmulGatheredB, wasmThreadStats } from '../src/cpu/wasm/wasmMatmul.js';
import { firstDifference, randomArray, seededUniform } from './matmulReference.js';
import { bitsOf } from './reference.js';
import { runFixture } from '../../../tests/fixtures/runFixture.js';

const WASM = cpuKernelInfo().wasmSimd;
const HEAP = WASM && typeof SharedArrayBuffer === 'function';

/** Counts calls of `a`'s subarray and set (the kernels' copies of an operand or a result). */
function copies(a: Float32Array): () => number {
  let n = 0;
  const subarray = a.subarray.bind(a);
  const set = a.set.bind(a);
  a.subarray = (...args: Parameters<Float32Array['subarray']>) => (n++, subarray(...args));
  a.set = ((...args: Parameters<Float32Array['set']>) => (n++, set(...args))) as Float32Array['set'];
  return () => n;
}

describe.runIf(WASM)('the kernels\' constant tables', () => {
  it('a memory of the kernels\' own holds exp\'s table first and starts its scratch after KERNEL_CONSTANTS_BYTES', () => {
    // exp(x) over full operands, in a module importing an unshared memory (no heap): the instance
    // built from wasmElementwiseInstance's source keeps its own literal for the reserved bytes.
    const spec: WasmKernelSpec = {
      leaves: [{ kind: 'full' }],
      nodes: [{ kind: 'leaf', leaf: 0 }, { kind: 'expr', expr: elementwiseExpression('exp', 'float32'), args: [0] }],
      outputs: [1],
    };
    const instance = wasmElementwiseInstance(elementwiseModule(spec, 16384, false), false);
    const view = instance.heap(4096);
    expect(instance.scratchAt() * 4).toBe(KERNEL_CONSTANTS_BYTES);
    const table = new Float64Array(view.buffer, EXP_TABLE_ADDRESS, 256);
    expect([table[0], table[128], table[64]]).toEqual([1, Math.SQRT2, 2 ** 0.25]);
    for (let j = 0; j < 256; j++) expect(Math.abs(table[j]! / 2 ** (j / 256) - 1), `2^(${j}/256)`).toBeLessThanOrEqual(2 ** -52);
    expect(EXP_TABLE_ADDRESS + 256 * 8).toBeLessThanOrEqual(KERNEL_CONSTANTS_BYTES);
  });

  it('a fast-math kernel in a memory of its own keeps its constants below its scratch, call after call', () => {
    // log1p(exp(x)), both in their fast forms (constants read from the table after exp's):
    // operands copied into the scratch must not land on the table, or the second call would
    // compute with the first call's operands for constants.
    const spec: WasmKernelSpec = {
      leaves: [{ kind: 'full' }],
      nodes: [
        { kind: 'leaf', leaf: 0 },
        { kind: 'expr', expr: elementwiseExpression('exp', 'float32'), args: [0] },
        { kind: 'expr', expr: elementwiseExpression('log1p', 'float32'), args: [1] },
      ],
      outputs: [2],
      fastMath: true,
    };
    const instance = wasmElementwiseInstance(elementwiseModule(spec, 16384, false), false);
    const n = 4096;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = -20 + (25 * i) / n;
    const plan = passPlan(spec);
    for (let call = 0; call < 3; call++) {
      const y = new Float32Array(n);
      instance.passes([x], [0], [y], 0, plan, 0, n);
      for (let i = 0; i < n; i++) {
        // exp within 1 ulp moves log1p(e) by under 1 ulp of the result; log1p's own 1 ulp: 2 ulps
        // of the result, 2·2^−23 relative at most.
        const want = Math.log1p(Math.exp(x[i]!));
        expect(Math.abs(y[i]! - want), `call ${call}, log1p(exp(${x[i]}))`).toBeLessThanOrEqual(2 * 2 ** -23 * want);
      }
    }
    expect(FAST_CONSTANTS_ADDRESS).toBeGreaterThanOrEqual(EXP_TABLE_ADDRESS + 64 * 8);
    expect(instance.scratchAt() * 4).toBe(KERNEL_CONSTANTS_BYTES);
  });
});

/**
 * Takes arrays of `heap` (`held`: under the held arrays' limit), largest first, until it refuses
 * even the smallest size: the arrays' limit reached and no room left in the memory as it is nor
 * in a free region. The arrays go into `into`, for the caller to free.
 */
function fillHeap(heap: CpuHeap, into: Float32Array[], held = false, sizes = [2 ** 18, 2 ** 14, 2 ** 10, 2 ** 8]): void {
  for (const n of sizes) for (let a = heap.array(Float32Array, n, held); a; a = heap.array(Float32Array, n, held)) into.push(a);
}

describe.runIf(HEAP)('the CPU heap', () => {
  it('hands out regions first fit, merges freed ones, lowers its top; arrays made before a growth keep their values', () => {
    const heap = new CpuHeap(new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true }));
    const a = heap.array(Float32Array, 100)!;
    const b = heap.array(Float32Array, 1000)!;
    const c = heap.array(Float32Array, 10)!;
    // 64-byte units: 400 → 448 bytes, 4000 → 4032, 40 → 64; from R, after the bytes the kernels'
    // constant tables take.
    const R = KERNEL_CONSTANTS_BYTES;
    expect(R % 64).toBe(0);
    expect([a.byteOffset, b.byteOffset, c.byteOffset]).toEqual([R, R + 448, R + 448 + 4032]);
    expect(heap.stats().arrayBytes).toBe(448 + 4032 + 64);
    a.fill(1.5);
    c.fill(-2);
    // Growth: the memory's buffer is a new object; the arrays on the old one still read the memory.
    const big = heap.array(Float32Array, 100_000)!;
    expect(big.byteOffset).toBe(R + 448 + 4032 + 64);
    expect(heap.stats().memoryBytes).toBeGreaterThanOrEqual(R + 448 + 4032 + 64 + 400_000 + 64);
    expect(a.length).toBe(100);
    expect(Array.from(a.subarray(0, 3))).toEqual([1.5, 1.5, 1.5]);
    expect(c[9]).toBe(-2);
    big[0] = 7;
    expect(new Float32Array(heap.memory.buffer, big.byteOffset, 1)[0]).toBe(7);
    // First fit: a freed region is reused from its start.
    heap.freeArray(b);
    expect(heap.holds(b)).toBe(false);
    const d = heap.array(Float32Array, 500)!;
    expect(d.byteOffset).toBe(R + 448);
    // Freed neighbours merge: a's and d's regions and the rest of b's are one region of 4480 bytes.
    heap.freeArray(a);
    heap.freeArray(d);
    const e = heap.array(Float32Array, 1120)!;
    expect(e.byteOffset).toBe(R);
    // Freeing the last region lowers the top, past the free regions below it.
    for (const x of [e, c, big]) heap.freeArray(x);
    expect(heap.stats().arrayBytes).toBe(0);
    expect(heap.array(Float32Array, 16)!.byteOffset).toBe(R);
    // Past the memory's maximum (16 pages here): null, not an exception.
    expect(heap.array(Float32Array, 16 * 16384)).toBeNull();
    // A region is freed once: freeing an array twice, or one the heap did not make, changes nothing.
    heap.freeArray(e);
    heap.freeArray(new Float32Array(4));
    expect(heap.stats().arrayBytes).toBe(64);
  });

  it('past its array growth limit, arrays take free regions only; scratch still grows the memory', () => {
    const heap = new CpuHeap(new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true }), 100_000);
    const a = heap.array(Float32Array, 20_000)!;
    const b = heap.array(Float32Array, 5_000)!;
    // 80,000 + 20,032 bytes held in a memory of 2 pages (after the kernels' constants): an array
    // of 10,000 elements would pass the limit and grow the memory; one of 1,000 passes the limit
    // but fits the memory as it is.
    const size = heap.stats().memoryBytes;
    expect(size).toBe(2 * 65536);
    expect(heap.array(Float32Array, 10_000)).toBeNull();
    const c = heap.array(Float32Array, 1_000)!;
    expect(c.byteOffset).toBe(KERNEL_CONSTANTS_BYTES + 100_032);
    heap.freeArray(c);
    // A freed region is still taken, whatever the limit.
    heap.freeArray(b);
    expect(heap.array(Float32Array, 1_000)!.byteOffset).toBe(b.byteOffset);
    expect(heap.stats().memoryBytes).toBe(size);
    // Scratch is not limited: it grows the memory.
    const r = heap.scratch(500_000)!;
    expect(r.start).toBeGreaterThanOrEqual(a.byteOffset + 80_000);
    expect(heap.stats().memoryBytes).toBeGreaterThan(size);
  });

  it('the holes between arrays count against the growth limit: a run of ever larger arrays, each freed between two kept, stays within it', () => {
    // Each freed array's region lies between two kept ones and is too small for the next request:
    // the top rose by every request, and the memory grew toward its maximum (1 GiB in use) with
    // almost nothing held. Past the limit the heap now answers null, and the caller makes an
    // ordinary array (arrayPool.ts).
    const heap = new CpuHeap(new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true }), 100_000);
    const kept: Float32Array[] = [];
    let refused = 0;
    for (let i = 0; i < 40; i++) {
      const big = heap.array(Float32Array, 4_000 + 400 * i);
      if (big === null) refused++;
      kept.push(heap.array(Float32Array, 256)!);
      if (big) heap.freeArray(big);
    }
    // 40 KiB kept: far under the limit, but the holes are not.
    expect(heap.stats().arrayBytes).toBe(40 * 1024);
    expect(refused).toBeGreaterThan(0);
    // Under the constants plus the limit, in a memory of at most two pages (the top rose by each request before).
    expect(kept.every((a) => a.byteOffset + a.byteLength <= KERNEL_CONSTANTS_BYTES + 100_000)).toBe(true);
    expect(heap.stats().memoryBytes).toBeLessThanOrEqual(2 * 65536);
    // Freed, the holes merge: a large array fits again.
    for (const a of kept) heap.freeArray(a);
    expect(heap.array(Float32Array, 20_000)!.byteOffset).toBe(KERNEL_CONSTANTS_BYTES);
  });

  it('arrays held by compiled programs grow the memory past the array growth limit, up to their own', () => {
    const heap = new CpuHeap(new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true }), 150_000, 300_000);
    heap.array(Float32Array, 30_000);
    // 120,000 bytes held in 2 pages: 40,000 more must grow the memory, past the ordinary limit
    // (150,000) but not the held one (300,000).
    expect(heap.stats().memoryBytes).toBe(2 * 65536);
    expect(heap.array(Float32Array, 10_000)).toBeNull();
    const held = heap.array(Float32Array, 10_000, true)!;
    expect(held.byteOffset).toBe(KERNEL_CONSTANTS_BYTES + 120_000);
    expect(heap.stats().memoryBytes).toBe(3 * 65536);
    // 160,000 held: 160,000 more pass the held limit too; 20,000 more do not.
    expect(heap.array(Float32Array, 40_000, true)).toBeNull();
    expect(heap.array(Float32Array, 5_000, true)).not.toBeNull();
  });

  it('with ordinary arrays at the growth limit, a compiled program\'s intermediates still go in the heap, and its convolution copies in WebAssembly', () => {
    const heap = cpuHeap()!;
    const cpu = getBackend('cpu') as CpuBackend;
    const x = randn([2, 8, 16, 16], { key: randomKey(53) });
    const w = randn([4, 8, 3, 3], { key: randomKey(54) });
    // Ordinary arrays until the heap refuses even 1 KiB: past the 64 MiB, with no room left in
    // the memory as it is nor in a free region.
    const fill: Float32Array[] = [];
    fillHeap(heap, fill);
    const compiled = cpu.compile(traceProgram(([x, w]: readonly Tensor[]) => [conv2d(x!, w!, { padding: 1 })], [x, w], []).program);
    try {
      expect(fill.length).toBeGreaterThan(0);
      const ordinary = cpu.allocate('float32', 300_000);
      expect(heap.holds(ordinary)).toBe(false);
      // The program's pad and columns are its intermediates: in the heap (which grows for them),
      // copied there by heapCopy.
      const before = heapCopiesMade();
      const [y] = compiled.run([x._live('t') as CpuHandle, w._live('t') as CpuHandle], [], [false, false]);
      expect(heapCopiesMade() - before).toBeGreaterThan(0);
      cpu.dispose(y!);
      // The pool hands a held request an array of the heap, not the free ordinary one of its size.
      cpu.pool.give(ordinary);
      const held = cpu.allocate('float32', 300_000, 'jit', true);
      expect(heap.holds(held)).toBe(true);
      expect(cpu.allocate('float32', 300_000)).toBe(ordinary);
      heap.freeArray(held);
    } finally {
      compiled.dispose();
      for (const a of fill) heap.freeArray(a);
      x.dispose();
      w.dispose();
      // The program's arrays, back in the pool: freed, for the tests after this one.
      cpu.trimPool();
    }
  });

  it('past the array growth limit, arrays made inside tidy still grow the heap (an eager op\'s result, a pad\'s zeros), arrays made outside do not; where the heap refuses even them, a free ordinary array serves', () => {
    const heap = cpuHeap()!;
    const cpu = getBackend('cpu') as CpuBackend;
    const a = randn([300_000], { key: randomKey(55) });
    const b = randn([300_000], { key: randomKey(56) });
    // Ordinary arrays until the heap refuses even 1 KiB: past the 64 MiB, with no room left in the
    // memory as it is (a growth for other work leaves room, which arrays may take: filled again).
    const fill: Float32Array[] = [];
    const fillRoom = () => fillHeap(heap, fill);
    const heldFill: Float32Array[] = [];
    try {
      fillRoom();
      expect(fill.length).toBeGreaterThan(0);
      const dataOf = (t: Tensor) => (t._live('t') as CpuHandle).data!;
      const outside = add(a, b);
      expect(heap.holds(dataOf(outside))).toBe(false);
      tidy(() => {
        fillRoom();
        const sum = add(a, b);
        fillRoom();
        const padded = pad(a, [[1, 1]]);
        expect(heap.holds(dataOf(sum))).toBe(true);
        expect(heap.holds(dataOf(padded))).toBe(true);
        // Same values wherever they lie: the pad's zeros were written into a region used before.
        expect(Array.from(dataOf(sum).subarray(0, 4))).toEqual(Array.from(dataOf(outside).subarray(0, 4)));
        const p = dataOf(padded);
        expect([p[0], p[300_001]]).toEqual([0, 0]);
        return undefined;
      });
      // Regions up to the held limit too (the tidy's arrays dropped from the pool first): a
      // request inside tidy takes the free ordinary array of its size instead of making a new one.
      cpu.trimPool();
      fillHeap(heap, heldFill, true, [2 ** 24, 2 ** 20, 2 ** 16, 2 ** 12, 2 ** 8]);
      const ordinary = dataOf(outside);
      outside.dispose();
      const made = cpu.memoryStats().allocations;
      const again = tidy(() => {
        const y = add(a, b);
        const d = dataOf(y);
        return { same: d === ordinary, inHeap: heap.holds(d) };
      });
      expect(again).toEqual({ same: true, inHeap: false });
      expect(cpu.memoryStats().allocations).toBe(made);
    } finally {
      for (const f of [...fill, ...heldFill]) heap.freeArray(f);
      a.dispose();
      b.dispose();
      cpu.trimPool();
    }
  });

  it('the array pool puts float arrays of 1 KiB or more in the heap, and frees a dropped one\'s region', () => {
    const heap = cpuHeap()!;
    const cpu = getBackend('cpu') as CpuBackend;
    const f = cpu.allocate('float32', 5000);
    const g = cpu.allocate('float64', 200);
    const small = cpu.allocate('float32', 100);
    const ints = cpu.allocate('int32', 5000);
    expect([heap.holds(f), heap.holds(g), heap.holds(small), heap.holds(ints)]).toEqual([true, true, false, false]);
    const before = heap.stats().arrayBytes;
    for (const x of [f, g, small, ints]) cpu.pool.give(x);
    // Free arrays waiting in the pool keep their regions; dropped from it, they free them.
    expect(heap.stats().arrayBytes).toBe(before);
    cpu.trimPool();
    expect(heap.holds(f) || heap.holds(g)).toBe(false);
    expect(heap.stats().arrayBytes).toBe(before - 20032 - 1600);
    // The heap's size, which does not shrink, is reported beside the kernels' scratch.
    expect(cpu.memoryStats().heapBytes).toBe(heap.memory.buffer.byteLength);
    expect(cpu.memoryStats().heapBytes).toBeGreaterThanOrEqual(20032 + 1600);
  });

  it('elementwise kernels read and write arrays of the heap where they lie, with the bits of copies, leaving the next region alone', () => {
    const heap = cpuHeap()!;
    // out = exp(full) · row + scalar over 3 passes and a partial last vector.
    const spec: WasmKernelSpec = {
      leaves: [{ kind: 'full' }, { kind: 'row', period: 8 }, { kind: 'scalar' }],
      nodes: [
        { kind: 'leaf', leaf: 0 }, { kind: 'leaf', leaf: 1 }, { kind: 'leaf', leaf: 2 },
        { kind: 'expr', expr: elementwiseExpression('exp', 'float32'), args: [0] },
        { kind: 'expr', expr: elementwiseExpression('mul', 'float32'), args: [3, 1] },
        { kind: 'expr', expr: elementwiseExpression('add', 'float32'), args: [4, 2] },
      ],
      outputs: [5],
    };
    const kernel = elementwiseKernel(`heap test ${JSON.stringify(spec)}`, spec)!;
    expect(kernel.shared).toBe(true);
    const count = 3 * 8192 + 13;
    const row = randomArray(Float32Array, 8, seededUniform(2)) as Float32Array;
    const scalar = Float32Array.of(0.75);
    // Plain arrays: copied in and out.
    const x = randomArray(Float32Array, count + 3, seededUniform(1)) as Float32Array;
    const expected = new Float32Array(count);
    kernel.run([x, row, scalar], [3, 0, 0], [expected], count);
    // The same in the heap, read from offset 3 and written from 0, with an array just after the result.
    const hx = heap.array(Float32Array, count + 3)!;
    hx.set(x);
    const out = heap.array(Float32Array, count)!;
    const next = heap.array(Float32Array, 64)!;
    expect(next.byteOffset).toBe(out.byteOffset + Math.ceil((count * 4) / 64) * 64);
    next.fill(9);
    const xCopies = copies(hx);
    const outCopies = copies(out);
    kernel.run([hx, row, scalar], [3, 0, 0], [out], count);
    expect(xCopies()).toBe(0);
    expect(outCopies()).toBe(0);
    expect(firstDifference(out, 0, expected)).toBe(-1);
    expect(Array.from(next)).toEqual(new Array(64).fill(9));
    for (const a of [hx, out, next]) heap.freeArray(a);
  });

  it('products read A and B where they lie in the heap (tiled and narrow, B stored transposed or not), with the bits of copies', () => {
    const heap = cpuHeap()!;
    for (const [m, n, k, transB] of [[37, 29, 70, false], [37, 29, 70, true], [3, 50, 40, false], [60, 2, 33, false]] as const) {
      const a = randomArray(Float32Array, m * k + 5, seededUniform(m)) as Float32Array;
      const b = randomArray(Float32Array, k * n, seededUniform(n)) as Float32Array;
      const expected = new Float32Array(m * n);
      expect(wasmMatmul('f32', 1, a, 5, 0, b, 0, 0, expected, 0, m, n, k, undefined, false, transB)).toBe(true);
      const ha = heap.array(Float32Array, a.length)!;
      const hb = heap.array(Float32Array, b.length)!;
      ha.set(a);
      hb.set(b);
      const aCopies = copies(ha);
      const bCopies = copies(hb);
      const c = new Float32Array(m * n);
      expect(wasmMatmul('f32', 1, ha, 5, 0, hb, 0, 0, c, 0, m, n, k, undefined, false, transB)).toBe(true);
      expect([aCopies(), bCopies()]).toEqual([0, 0]);
      expect(firstDifference(c, 0, expected)).toBe(-1);
      heap.freeArray(ha);
      heap.freeArray(hb);
    }
  });

  it('products write C where it lies in the heap, whole tiles there and a last partial tile through the scratch, on one thread and on two, with the bits of copies', () => {
    const heap = cpuHeap()!;
    // m = 1024 and 37: whole tiles then 4 or 2 rows (mr = 5; 1024 and 36 rows, then 0 or 1, with mr = 6); n = 128 and 24 need no compaction.
    const cases = [[1, 1024, 128, 64], [3, 37, 24, 70], [2, 3, 16, 9]] as const;
    for (const threads of [1, 2]) {
      setCpuThreads(threads);
      setWasmThreadMinWorkForTesting(threads > 1 ? 1 : undefined);
      for (const [batch, m, n, k] of cases) {
        const a = randomArray(Float32Array, batch * m * k, seededUniform(m)) as Float32Array;
        const b = randomArray(Float32Array, batch * k * n, seededUniform(n)) as Float32Array;
        const expected = new Float32Array(batch * m * n);
        expect(wasmMatmul('f32', batch, a, 0, m * k, b, 0, k * n, expected, 0, m, n, k)).toBe(true);
        const c = heap.array(Float32Array, batch * m * n)!;
        const next = heap.array(Float32Array, 64)!;
        next.fill(9);
        const cCopies = copies(c);
        const seen: number[] = [];
        expect(wasmMatmul('f32', batch, a, 0, m * k, b, 0, k * n, c, 0, m, n, k, (start, end) => seen.push(start, end))).toBe(true);
        expect(firstDifference(c, 0, expected)).toBe(-1);
        expect(Array.from(next)).toEqual(new Array(64).fill(9));
        // The epilogue saw every row once, in order.
        expect(seen[0]).toBe(0);
        expect(seen.at(-1)).toBe(batch * m * n);
        for (let i = 2; i < seen.length; i += 2) expect(seen[i]).toBe(seen[i - 1]);
        // 1024 rows: only the last partial tile's 4 rows are copied in, once (copying every chunk out took 9 on one thread).
        if (m === 1024) expect(cCopies()).toBe(1);
        heap.freeArray(c);
        heap.freeArray(next);
      }
    }
    setCpuThreads(undefined);
    setWasmThreadMinWorkForTesting(undefined);
  });

  it('a product whose B is gathered from an array of the heap through row and column offsets (each panel\'s columns 1 or 2 apart, or, float32, B\'s rows in fours so spaced) has the bits of the same product on B stored, on one thread and on two (B packed in the workers); a source outside the heap is copied into the product\'s memory first, with the same bits; outside the array is a RangeError; neither contiguity declines', () => {
    const heap = cpuHeap()!;
    // k = 64, n = 512: 32,768 elements of B per entry, which a threaded product packs in its
    // workers (PACK_BLOCK); 3 entries 4,096 elements apart in the source. Rows anywhere; columns
    // in 64 panels of 8 contiguous elements (also contiguous fours, float64's panels) anywhere.
    const [batch, m, n, k, stride] = [3, 9, 512, 64, 4096];
    const u = seededUniform(7);
    const rows = Int32Array.from({ length: k }, () => Math.floor((u() + 1) * 1000));
    const bases = Array.from({ length: n / 8 }, () => Math.floor((u() + 1) * 1000));
    const cols = Int32Array.from({ length: n }, (_, j) => bases[j >> 3]! + (j & 7));
    // The other layout: rows in 16 contiguous fours anywhere, each column anywhere.
    const fours = Array.from({ length: k / 4 }, () => Math.floor((u() + 1) * 1000));
    const quadRows1 = Int32Array.from({ length: k }, (_, p) => fours[p >> 2]! + (p & 3));
    const quadRows2 = Int32Array.from({ length: k }, (_, p) => fours[p >> 2]! + 2 * (p & 3));
    const anyCols = Int32Array.from({ length: n }, () => Math.floor((u() + 1) * 1000));
    for (const [dtype, Type] of [['f32', Float32Array], ['f64', Float64Array]] as const) {
      const src = dtype === 'f32' ? heap.array(Float32Array, batch * stride)! : heap.array(Float64Array, batch * stride)!;
      src.set(randomArray(Type, batch * stride, seededUniform(8)));
      const a = randomArray(Type, batch * m * k, seededUniform(9));
      const b = new Type(batch * k * n);
      for (let e = 0; e < batch; e++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) b[(e * k + p) * n + j] = src[e * stride + rows[p]! + cols[j]!]!;
      for (const threads of [1, 2]) {
        setCpuThreads(threads);
        setWasmThreadMinWorkForTesting(threads > 1 ? 1 : undefined);
        const expected = new Type(batch * m * n);
        expect(wasmMatmul(dtype, batch, a, 0, m * k, b, 0, k * n, expected, 0, m, n, k)).toBe(true);
        const c = new Type(batch * m * n);
        const packed = wasmThreadStats().packBlocks;
        expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, src, 0, stride, rows, cols, c, 0, m, n, k)).toBe(true);
        expect(firstDifference(c, 0, expected), `${dtype}, ${threads} thread(s)`).toBe(-1);
        if (threads > 1) expect(wasmThreadStats().packBlocks - packed).toBeGreaterThan(0);
        // The same source outside the heap (a page with no heap, an array past its growth): what
        // the entries read is copied into the product's memory, then packed from there.
        const outside = new Type(src);
        c.fill(0);
        expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, outside, 0, stride, rows, cols, c, 0, m, n, k)).toBe(true);
        expect(firstDifference(c, 0, expected), `${dtype}, ${threads} thread(s), source outside the heap`).toBe(-1);
        // In parts, an entry at a time, sized as for the stored B (a memory limit that the three
        // entries' ~716 KB on one thread, or 1.43 MB in float64, do not fit; more on two): the
        // same bits.
        setWasmMatmulMemoryLimitForTesting(dtype === 'f32' ? 600_000 : 1_200_000);
        try {
          c.fill(0);
          expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, src, 0, stride, rows, cols, c, 0, m, n, k)).toBe(true);
          expect(firstDifference(c, 0, expected), `${dtype}, ${threads} thread(s), in parts`).toBe(-1);
          c.fill(0);
          expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, outside, 0, stride, rows, cols, c, 0, m, n, k)).toBe(true);
          expect(firstDifference(c, 0, expected), `${dtype}, ${threads} thread(s), in parts, source outside the heap`).toBe(-1);
          // Where the product on the stored B cannot run in WebAssembly (one entry's B and its
          // panels do not fit), the gathered one does not either, although its own layout would.
          setWasmMatmulMemoryLimitForTesting(dtype === 'f32' ? 300_000 : 600_000);
          expect(wasmMatmul(dtype, batch, a, 0, m * k, b, 0, k * n, new Type(batch * m * n), 0, m, n, k)).toBe(false);
          expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, src, 0, stride, rows, cols, c, 0, m, n, k)).toBe(false);
          expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, outside, 0, stride, rows, cols, c, 0, m, n, k)).toBe(false);
        } finally {
          setWasmMatmulMemoryLimitForTesting(undefined);
        }
        // A shared A (stride 0) and A stored transposed, entries 1 and 2 only.
        const at = new Type(k * m);
        for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) at[p * m + i] = a[i * k + p]!;
        const shared = new Type(2 * m * n);
        expect(wasmMatmul(dtype, 2, a, 0, 0, b, k * n, k * n, shared, 0, m, n, k)).toBe(true);
        c.fill(0);
        expect(wasmMatmulGatheredB(dtype, 2, at, 0, 0, src, stride, stride, rows, cols, c, 0, m, n, k, true)).toBe(true);
        expect(firstDifference(c.subarray(0, 2 * m * n), 0, shared)).toBe(-1);
        // Each panel's columns 2 apart (a stride-2 convolution's), on their own and with A shared.
        const cols2 = Int32Array.from(cols, (_, j) => bases[j >> 3]! + 2 * (j & 7));
        const b2 = new Type(batch * k * n);
        for (let e = 0; e < batch; e++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) b2[(e * k + p) * n + j] = src[e * stride + rows[p]! + cols2[j]!]!;
        for (const aStride of [m * k, 0]) {
          const want2 = new Type(batch * m * n);
          expect(wasmMatmul(dtype, batch, a, 0, aStride, b2, 0, k * n, want2, 0, m, n, k)).toBe(true);
          c.fill(0);
          expect(wasmMatmulGatheredB(dtype, batch, a, 0, aStride, src, 0, stride, rows, cols2, c, 0, m, n, k)).toBe(true);
          expect(firstDifference(c, 0, want2), `${dtype}, columns 2 apart, ${threads} thread(s)`).toBe(-1);
        }
        // Each vector's columns contiguous (4 float32, 2 float64) but not the panel's (8, 4): an
        // output width of 28 float32 outputs, a panel's two vectors in two output rows; 1 and 2 apart.
        const lanes = dtype === 'f32' ? 4 : 2;
        const vectorBases = Array.from({ length: n / lanes }, () => Math.floor((u() + 1) * 1000));
        for (const step of [1, 2]) {
          const colsV = Int32Array.from({ length: n }, (_, j) => vectorBases[Math.floor(j / lanes)]! + step * (j % lanes));
          const bv = new Type(batch * k * n);
          for (let e = 0; e < batch; e++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bv[(e * k + p) * n + j] = src[e * stride + rows[p]! + colsV[j]!]!;
          const wantV = new Type(batch * m * n);
          expect(wasmMatmul(dtype, batch, a, 0, m * k, bv, 0, k * n, wantV, 0, m, n, k)).toBe(true);
          c.fill(0);
          expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, src, 0, stride, rows, colsV, c, 0, m, n, k), `${dtype}: vectors ${step} apart`).toBe(true);
          expect(firstDifference(c, 0, wantV), `${dtype}, vectors' columns ${step} apart, ${threads} thread(s)`).toBe(-1);
        }
        // Rows in fours (packBTG_f32), 1 and 2 apart, with k = 63 too: a last row element by element.
        for (const [depth, quadRows] of [[k, quadRows1], [k - 1, quadRows1], [k, quadRows2]] as const) {
          const bq = new Type(batch * depth * n);
          for (let e = 0; e < batch; e++) for (let p = 0; p < depth; p++) for (let j = 0; j < n; j++) bq[(e * depth + p) * n + j] = src[e * stride + quadRows[p]! + anyCols[j]!]!;
          const want = new Type(batch * m * n);
          expect(wasmMatmul(dtype, batch, a, 0, m * depth, bq, 0, depth * n, want, 0, m, n, depth)).toBe(true);
          c.fill(0);
          const packedQuads = wasmThreadStats().packBlocks;
          expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * depth, src, 0, stride, quadRows.subarray(0, depth), anyCols, c, 0, m, n, depth), `${dtype}: rows in fours`).toBe(dtype === 'f32');
          if (dtype === 'f32') expect(firstDifference(c, 0, want), `rows in fours, k = ${depth}, ${threads} thread(s)`).toBe(-1);
          // (k = 64: B's 32,768 elements are packed by the workers; 63 · 512 is under PACK_BLOCK.)
          if (dtype === 'f32' && threads > 1 && depth === k) expect(wasmThreadStats().packBlocks - packedQuads).toBeGreaterThan(0);
        }
      }
      setCpuThreads(undefined);
      setWasmThreadMinWorkForTesting(undefined);
      const c = new Type(batch * m * n);
      // Offsets past the source's end, or before its start.
      expect(() => wasmMatmulGatheredB(dtype, batch, a, 0, m * k, src, 200, stride, rows, cols, c, 0, m, n, k)).toThrow(RangeError);
      expect(() => wasmMatmulGatheredB(dtype, 1, a, 0, m * k, src, 0, 0, Int32Array.from(rows, (r, i) => (i === 5 ? -3000 : r)), cols, c, 0, m, n, k)).toThrow(/reads elements -\d+ to/);
      // Neither a panel's columns nor B's rows contiguous; m at most NARROW_ROWS.
      c.fill(0);
      const broken = Int32Array.from(cols, (x, j) => (j === 3 ? x + 1 : x));
      expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, src, 0, stride, rows, broken, c, 0, m, n, k)).toBe(false);
      expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, src, 0, stride, Int32Array.from(quadRows1, (x, p) => (p === 2 ? x + 1 : x)), anyCols, c, 0, m, n, k)).toBe(false);
      // Columns 3 apart: not a step the packers take.
      expect(wasmMatmulGatheredB(dtype, batch, a, 0, m * k, src, 0, stride, rows, Int32Array.from(cols, (_, j) => bases[j >> 3]! + 3 * (j & 7)), c, 0, m, n, k)).toBe(false);
      expect(wasmMatmulGatheredB(dtype, batch, a, 0, 4 * k, src, 0, stride, rows, cols, c, 0, 4, n, k)).toBe(false);
      expect(c.every((x) => x === 0)).toBe(true);
      heap.freeArray(src);
    }
  });

  it('a product into its own operand A (C and A one array of the heap) reads all of A before any row of C is written', () => {
    const heap = cpuHeap()!;
    // k = n = 512: more than the kernels' 256 steps of k per block, so A's rows are read in two blocks.
    const [m, k] = [300, 512];
    const a = randomArray(Float32Array, m * k, seededUniform(5)) as Float32Array;
    const b = randomArray(Float32Array, k * k, seededUniform(6)) as Float32Array;
    const expected = new Float32Array(m * k);
    expect(wasmMatmul('f32', 1, a, 0, 0, b, 0, 0, expected, 0, m, k, k)).toBe(true);
    const ha = heap.array(Float32Array, m * k)!;
    ha.set(a);
    expect(wasmMatmul('f32', 1, ha, 0, 0, b, 0, 0, ha, 0, m, k, k)).toBe(true);
    expect(firstDifference(ha, 0, expected)).toBe(-1);
    heap.freeArray(ha);
    // A batch of 2 sharing one A of twice the columns (k = 2n), into A's array, on one thread:
    // entry 1 reads all of A after entry 0's rows of C are written.
    setCpuThreads(1);
    const n = 256;
    const a2 = randomArray(Float32Array, m * 2 * n, seededUniform(7)) as Float32Array;
    const b2 = randomArray(Float32Array, 2 * 2 * n * n, seededUniform(8)) as Float32Array;
    const expected2 = new Float32Array(2 * m * n);
    expect(wasmMatmul('f32', 2, a2, 0, 0, b2, 0, 2 * n * n, expected2, 0, m, n, 2 * n)).toBe(true);
    const ha2 = heap.array(Float32Array, m * 2 * n)!;
    ha2.set(a2);
    expect(wasmMatmul('f32', 2, ha2, 0, 0, b2, 0, 2 * n * n, ha2, 0, m, n, 2 * n)).toBe(true);
    expect(firstDifference(ha2, 0, expected2)).toBe(-1);
    heap.freeArray(ha2);
    setCpuThreads(undefined);
  });

  it('a narrow product into its own operand B, B shared across a batch, reads B before any row of C is written', () => {
    // m = 2 rows: the narrow kernels, which read B where it lies. Entry 0's C (2 × 64) overwrites
    // B's first two rows, which entry 1 reads again.
    const heap = cpuHeap()!;
    const [m, n, k] = [2, 64, 8];
    const a = randomArray(Float32Array, 2 * m * k, seededUniform(9)) as Float32Array;
    const b = randomArray(Float32Array, k * n, seededUniform(10)) as Float32Array;
    const expected = new Float32Array(2 * m * n);
    expect(wasmMatmul('f32', 2, a, 0, m * k, b, 0, 0, expected, 0, m, n, k)).toBe(true);
    const hb = heap.array(Float32Array, k * n)!;
    hb.set(b);
    expect(wasmMatmul('f32', 2, a, 0, m * k, hb, 0, 0, hb, 0, m, n, k)).toBe(true);
    expect(firstDifference(hb.subarray(0, 2 * m * n), 0, expected)).toBe(-1);
    heap.freeArray(hb);
  });

  it('strided copies between arrays of the heap run in WebAssembly (heapCopy) where rows are contiguous on both sides, with the values of an element loop, leaving the rest of the destination alone', () => {
    const heap = cpuHeap()!;
    const next = seededUniform(41);
    const int = (lo: number, hi: number) => lo + Math.floor(((next() + 1) / 2) * (hi - lo + 1));
    const rowMajor = (shape: readonly number[]) => shape.map((_, k) => shape.slice(k + 1).reduce((p, e) => p * e, 1));
    /** A box of `shape` in a row-major parent `extra` larger per axis, some outer axes read backwards, one broadcast. */
    const viewIn = (shape: readonly number[], broadcastAxis: number) => {
      const parent = shape.map((e) => e + int(0, 2));
      const st = rowMajor(parent);
      let offset = shape.reduce((o, e, k) => o + int(0, parent[k]! - e) * st[k]!, 0);
      const strides = shape.map((e, k) => {
        if (k === broadcastAxis) return 0;
        if (k < shape.length - 1 && int(0, 3) === 0) {
          offset += (e - 1) * st[k]!;
          return -st[k]!;
        }
        return st[k]!;
      });
      return { length: parent.reduce((p, e) => p * e, 1), offset, strides };
    };
    const reference = (src: ArrayLike<number>, s: { offset: number; strides: readonly number[] }, shape: readonly number[], dst: { [i: number]: number }, d: { offset: number; strides: readonly number[] }) => {
      const count = shape.reduce((p, e) => p * e, 1);
      for (let i = 0; i < count; i++) {
        let rest = i, from = s.offset, to = d.offset;
        for (let k = shape.length - 1; k >= 0; k--) {
          const c = rest % shape[k]!;
          rest = (rest - c) / shape[k]!;
          from += c * s.strides[k]!;
          to += c * d.strides[k]!;
        }
        dst[to] = src[from]!;
      }
    };
    const before = heapCopiesMade();
    let cases = 0;
    for (const Type of [Float32Array, Float64Array]) {
      for (let t = 0; t < 40; t++) {
        // Ranks 1 to 6 (more than three axes left after merging takes the outer loop), rows of 2
        // to 9 elements (whole vectors and last words).
        const rank = int(1, 6);
        const shape = Array.from({ length: rank }, (_, k) => (k === rank - 1 ? int(2, 9) : int(1, 4)));
        const s = viewIn(shape, rank > 1 && int(0, 4) === 0 ? int(0, rank - 2) : -1);
        const d = viewIn(shape, -1);
        d.strides.forEach((v, k) => { if (v < 0) { d.offset -= (shape[k]! - 1) * -v; (d.strides as number[])[k] = -v; } });
        const inHeap = (n: number) => (Type === Float32Array ? heap.array(Float32Array, n)! : heap.array(Float64Array, n)!);
        const src = inHeap(s.length);
        for (let i = 0; i < src.length; i++) src[i] = next();
        const dst = inHeap(d.length);
        dst.fill(7);
        const want = new Type(d.length).fill(7);
        reference(src, s, shape, want, d);
        expect(heapCopy(src, s.offset, s.strides, shape, dst, d.offset, d.strides), `case ${t}: [${shape}]`).toBe(true);
        expect(firstDifference(dst, 0, want), `case ${t}: [${shape}] from ${s.offset} by [${s.strides}] to ${d.offset} by [${d.strides}]`).toBe(-1);
        // The JavaScript copy of the same on plain arrays.
        const plain = new Type(d.length).fill(7);
        stridedCopyInto(Type.from(src), s.offset, s.strides, shape, plain, d.offset, d.strides);
        expect(firstDifference(plain, 0, want), `case ${t}, JavaScript`).toBe(-1);
        heap.freeArray(src);
        heap.freeArray(dst);
        cases++;
      }
    }
    expect(heapCopiesMade() - before).toBe(cases);
    // Not taken: arrays outside the heap, two element types, rows strided on either side, an
    // index past either array, one array both ways.
    const a = heap.array(Float32Array, 64)!;
    const b = heap.array(Float32Array, 64)!;
    const c = heap.array(Float64Array, 64)!;
    expect(heapCopy(new Float32Array(64), 0, [8, 1], [8, 8], b, 0, [8, 1])).toBe(false);
    expect(heapCopy(a, 0, [8, 1], [8, 8], c, 0, [8, 1])).toBe(false);
    expect(heapCopy(a, 0, [8, 2], [8, 4], b, 0, [4, 1])).toBe(false);
    expect(heapCopy(a, 0, [4, 1], [8, 4], b, 0, [8, 2])).toBe(false);
    expect(heapCopy(a, 1, [8, 1], [8, 8], b, 0, [8, 1])).toBe(false);
    expect(heapCopy(a, 0, [8, 1], [8, 8], b, -1, [8, 1])).toBe(false);
    expect(heapCopy(a, 0, [8, 1], [4, 8], a, 32, [8, 1])).toBe(false);
    for (const x of [a, b, c]) heap.freeArray(x);
  });

  it('a compiled convolution\'s pad and columns are copied in WebAssembly, with the eager bits, float32 and float64', () => {
    const cpu = getBackend('cpu') as CpuBackend;
    for (const dtype of ['float32', 'float64'] as const) {
      // Windows of 2 · 8 · 16 · 16 = 4096 elements each: past the copy's WebAssembly minimum. Four
      // output channels: a narrow product, which reads its B as stored, so the columns are copied
      // (with more, the product packs B from the pad: cpuCompile.test.ts).
      const x = randn([2, 8, 16, 16], { key: randomKey(51), dtype });
      const w = randn([4, 8, 3, 3], { key: randomKey(52), dtype });
      const conv = ([x, w]: readonly Tensor[]) => [conv2d(x!, w!, { padding: 1 })];
      const compiled = cpu.compile(traceProgram(conv, [x, w], []).program);
      try {
        expect(compiled.kernels().map((k) => k.source).join('\n')).toMatch(/stridedCopyInto, piece by piece/);
        // The columns and the product run image by image on one thread, both images at once on
        // two (interleaveEntries: as many as the product's threads).
        expect(compiled.kernels().map((k) => k.name)).toContain('fused_elementwise_[2,8,9,16,16]x1+matmul_4x256x72_batch2');
        for (const [wasm, threads] of [[true, 1], [true, 2], [false, 1]] as const) {
          // With the WebAssembly kernels off, the JavaScript copies, no heapCopy, and the eager
          // kernels' bits with them off (the TypeScript product sums in doubles).
          setCpuWasm(wasm);
          setCpuThreads(threads);
          const eager = conv([x, w])[0]!;
          const want = bitsOf(eager.dataSync());
          eager.dispose();
          const before = heapCopiesMade();
          const [y] = compiled.run([x._live('t') as CpuHandle, w._live('t') as CpuHandle], [], [false, false]);
          // The pad, the nine windows (once per image on one thread), and the result's copy out
          // of the product's [2, 4, 256].
          expect(heapCopiesMade() - before, `${dtype}, WebAssembly ${wasm}, ${threads} thread(s)`).toBe(wasm ? (threads === 1 ? 20 : 11) : 0);
          expect(bitsOf(cpu.readSync(y!)), `${dtype}, WebAssembly ${wasm}, ${threads} thread(s)`).toEqual(want);
          cpu.dispose(y!);
        }
      } finally {
        setCpuWasm(true);
        setCpuThreads(undefined);
        compiled.dispose();
      }
      x.dispose();
      w.dispose();
    }
  });

  it('an eager concat of arrays of the heap copies each piece in WebAssembly, with the values of the JavaScript copy', () => {
    // Three pieces of [4, k, 512] concatenated along axis 1: each piece's 4 runs of k·512
    // elements go to their places in rows of 3·… elements; with the WebAssembly kernels off,
    // the JavaScript block copies.
    const pieces = [1, 3, 2].map((k, i) => randn([4, k, 512], { key: randomKey(60 + i) }));
    const run = (wasm: boolean) => {
      setCpuWasm(wasm);
      try {
        const before = heapCopiesMade();
        const y = concat(pieces, 1);
        const copies = heapCopiesMade() - before;
        const values = Array.from(y.dataSync());
        const bits = bitsOf(y.dataSync());
        y.dispose();
        return { copies, bits, values };
      } finally {
        setCpuWasm(true);
      }
    };
    const inWasm = run(true);
    const inJs = run(false);
    expect(inWasm.copies).toBe(3);
    expect(inJs.copies).toBe(0);
    expect(inWasm.bits).toEqual(inJs.bits);
    // And the values themselves: row 2 of the result is piece 0's row 2, then piece 1's, then piece 2's.
    const row = inJs.values.slice(2 * 6 * 512, 3 * 6 * 512);
    const want = pieces.flatMap((p) => Array.from(p.dataSync()).slice(2 * p.shape[1]! * 512, 3 * p.shape[1]! * 512));
    expect(row).toEqual(want);
    for (const p of pieces) p.dispose();
  });

  it('a compiled concat of strided views along its leading axis copies each piece over its own extent, in WebAssembly', () => {
    // Rows 0–63 of a's first 32 columns, then rows 0–95 of b's: pieces of 2048 and 3072 elements
    // in rows of 32. Each is one heapCopy of its own box (a piece copied over the whole result's
    // 160 rows would run past its array, which heapCopy refuses).
    const cpu = getBackend('cpu') as CpuBackend;
    const a = randn([128, 64], { key: randomKey(61) });
    const b = randn([128, 64], { key: randomKey(62) });
    const f = ([a, b]: readonly Tensor[]) => [concat([a!.slice([0, 0], [64, 32]), b!.slice([0, 0], [96, 32])], 0)];
    const compiled = cpu.compile(traceProgram(f, [a, b], []).program);
    try {
      expect(compiled.kernels().map((k) => k.source).join('\n')).toMatch(/piece by piece \(concat along axis 0\)/);
      const eager = f([a, b])[0]!;
      const want = bitsOf(eager.dataSync());
      eager.dispose();
      const before = heapCopiesMade();
      const [y] = compiled.run([a._live('t') as CpuHandle, b._live('t') as CpuHandle], [], [false, false]);
      expect(heapCopiesMade() - before).toBe(2);
      expect(bitsOf(cpu.readSync(y!))).toEqual(want);
      cpu.dispose(y!);
    } finally {
      compiled.dispose();
      a.dispose();
      b.dispose();
    }
  });

  it('an array left to the garbage collector frees its region when it is collected (child process, gc())', () => {
    const out = runFixture<{ held: number; afterDispose: number; afterCollect: number }>(new URL('./fixtures/heapGarbageChild.ts', import.meta.url), { nodeFlags: ['--expose-gc'] });
    expect(out.held).toBeGreaterThanOrEqual(10 * 4096 * 4);
    expect(out.afterCollect).toBe(out.afterDispose - 10 * 4096 * 4);
  });
});
