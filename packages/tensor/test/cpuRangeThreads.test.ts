// Large elementwise kernels and matmul epilogues of compiled CPU programs split across the worker
// pool (rangeThreads.ts):
// every result bit for bit the program run op by op through the eager kernels (interpretProgram,
// an independent path) on 1, 2 and 3 threads, float32 and float64, with broadcast and strided
// reads; the workers really take part; small kernels start no worker; one thread (and arrays not
// on SharedArrayBuffer) after setCpuThreads(1), and no more threads than setCpuThreads allows
// when it is lowered under a running pool; an index error raised inside a chunk is reported as on
// one thread, and the next jobs run normally; kernels calling a defined primitive stay here;
// memory() counts shared arrays as it counts the others, and nothing leaks: workers forget arrays
// this thread lets go, and a process with a pool running still exits.
//
// Bit-identity, not a tolerance: each element is computed by the same generated code from the
// same inputs whichever thread runs its chunk, and no element reads another's result.

import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type CpuBackend, type CpuHandle, type Tensor, concat, cpuKernelInfo, definePrimitive, erf, exp, getBackend, indexSelect, matmul, memory, permute, randn, randomKey, reshape,
  setCpuThreads, shutdownCpuThreads, slice, softmax, softplus, splitKey, sum, tanh, tensor, traceProgram, where, cast,
} from '../src/index.js';
import { traceAndInterpret } from './programReference.js';
import { bitsOf } from './reference.js';
import { runFixture } from '../../../tests/fixtures/runFixture.js';
import { rangeRerunsForTesting, setRangeThreadMinElementsForTesting } from '../src/cpu/rangeThreads.js';
import { rangePool, setWasmThreadMinWorkForTesting, wasmThreadStats } from '../src/cpu/wasm/wasmMatmul.js';
import { setSyncMessagesForTesting } from '../src/cpu/wasm/threadPool.js';
import { cpuHeap } from '../src/cpu/wasm/heap.js';
import { buildFunction } from '../src/cpu/jsCode.js';
import { untilWorkerChunk } from './workerChunks.js';
import { firstDifference } from './matmulReference.js';
import { setWasmElementwiseForTesting } from '../src/cpu/wasmPlan.js';

const cpu = getBackend('cpu') as CpuBackend;
const keys = splitKey(randomKey(11), 16);
const THREADS = cpuKernelInfo().defaultThreads > 1 || (cpuKernelInfo().wasmSimd && typeof SharedArrayBuffer === 'function');

// The JavaScript kernels: float32 kernels that qualify run as WebAssembly on the calling thread
// (cpu/wasmPlan.ts); what splits across workers is the JavaScript kernels, tested here.
setWasmElementwiseForTesting(false);

afterAll(() => {
  setWasmElementwiseForTesting(true);
  setRangeThreadMinElementsForTesting(undefined);
  setWasmThreadMinWorkForTesting(undefined);
  setCpuThreads(undefined);
  shutdownCpuThreads();
});

type Program = (xs: readonly Tensor[]) => Tensor[];

/**
 * Runs `f` compiled on `threads` threads (inputs made after the count is set, so on shared
 * arrays where threads are on), until a worker has computed a chunk when threads > 1 (workers
 * start asynchronously; bounded), and expects every run's outputs bit for bit equal to the
 * program interpreted op by op. `label` names the case in failure messages. `workers` false:
 * threads > 1 but the kernels must stay on this thread (three runs, no worker chunk).
 */
function check(label: string, f: Program, make: () => Tensor[], threads: number, wasm = false, workers = threads > 1): void {
  setCpuThreads(threads);
  const args = make();
  const { traced, handles, donated, expected: reference } = traceAndInterpret(cpu, f, args);
  const program = traced.program;
  const expected = reference.map((h) => {
    const bits = bitsOf(cpu.readSync(h));
    cpu.dispose(h);
    return bits;
  });
  // wasm: the compiled program's float32 kernels as WebAssembly, against the JavaScript eager ops.
  setWasmElementwiseForTesting(wasm);
  const compiled = cpu.compile(program);
  if (wasm) expect(compiled.kernels().some((k) => k.source.includes('WebAssembly SIMD')), `${label}: a WebAssembly kernel`).toBe(true);
  let runs = 0;
  const runOnce = () => {
    const got = compiled.run(handles, [], donated);
    got.forEach((h, i) => {
      expect(bitsOf(cpu.readSync(h)), `${label}: output ${i} on ${threads} threads, run ${runs}`).toEqual(expected[i]);
      cpu.dispose(h);
    });
    runs++;
  };
  if (threads > 1 && !workers) {
    const before = wasmThreadStats().workerChunks;
    for (let i = 0; i < 3; i++) runOnce();
    expect(wasmThreadStats().workerChunks - before, `${label}: worker chunks`).toBe(0);
  } else if (threads > 1) {
    const { chunks, reruns } = untilWorkerChunk(runOnce);
    expect(chunks, `${label}: no worker chunk after ${runs} runs on ${threads} threads`).toBeGreaterThan(0);
    // No chunk threw: a worker's failure would be hidden by the rerun on this thread.
    expect(reruns, `${label}: split jobs rerun after a chunk threw`).toBe(0);
  } else {
    runOnce();
  }
  setWasmElementwiseForTesting(false);
  compiled.dispose();
  for (const t of traced.owned) t.dispose();
  for (const t of args) t.dispose();
}

const rn = (shape: number[], i: number, dtype: 'float32' | 'float64') => randn(shape, { key: keys[i]!, dtype });

/** Programs with large elementwise kernels (above the test threshold of 2^10 elements). */
const PROGRAMS: { name: string; f: Program; make: (dtype: 'float32' | 'float64') => Tensor[] }[] = [
  {
    name: 'a chain of transcendentals, flat',
    f: ([x, y]) => [tanh(x!).mul(exp(y!.mul(0.5))).add(x!), softplus(y!)],
    make: (d) => [rn([3001], 0, d), rn([3001], 1, d)],
  },
  {
    // The program's only kernel calls erf: a worker's chunk counts only if the worker's copy of
    // erf's generated source (helpersSource) runs there (a chunk that throws reruns here).
    name: 'erf alone',
    f: ([x]) => [erf(x!.mul(2))],
    make: (d) => [rn([3001], 0, d)],
  },
  {
    name: 'broadcast reads over three axes',
    f: ([a, b, c]) => [a!.add(b!).mul(c!).sub(exp(b!))],
    make: (d) => [rn([37, 1, 33], 2, d), rn([1, 50, 33], 3, d), rn([37, 50, 1], 4, d)],
  },
  {
    name: 'strided reads: a transpose and a slice, and a select',
    f: ([a, b]) => {
      const t = permute(a!, [1, 0]);
      const s = slice(b!, [3, 0], [64, 97]);
      return [where(t.greater(s), t.mul(s), s.sub(t)), t.add(1)];
    },
    make: (d) => [rn([97, 64], 5, d), rn([70, 97], 6, d)],
  },
  {
    // 150·40·90 multiply-adds: below the product's own split point, so the worker chunks are the epilogue's rows.
    name: 'a matmul epilogue (a batch of products, a broadcast bias), split by rows',
    f: ([a, b, c]) => [softplus(matmul(a!, b!).add(c!)).mul(c!)],
    make: (d) => [rn([2, 75, 40], 10, d), rn([40, 90], 11, d), rn([90], 12, d)],
  },
  {
    name: 'a reduction between elementwise kernels',
    f: ([a]) => {
      const e = exp(a!.sub(1));
      return [e.div(sum(e, 1, true)).mul(a!)];
    },
    make: (d) => [rn([129, 65], 7, d)],
  },
];

  // Float32 work that runs as WebAssembly: a flat chain, and a matmul epilogue with a bias whose
  // period (96) makes the unit of a chunk 96 elements.
  const WASM_PROGRAMS: { name: string; f: Program; make: () => Tensor[] }[] = [
    { name: 'a chain with exp, log1p and sigmoid', f: ([x, y]) => [exp(y!.mul(0.5)).mul(x!).add(softplus(x!)), x!.sigmoid().mul(y!)], make: () => [rn([3001], 0, 'float32'), rn([3001], 1, 'float32')] },
    // erf's pieces on both sides of 1.25 and 6 (x·3 spans them), the exps of the middle one included.
    { name: 'erf', f: ([x]) => [erf(x!.mul(3))], make: () => [rn([3001], 2, 'float32')] },
    { name: 'a softplus epilogue with a bias', f: ([a, b, c]) => [softplus(matmul(a!, b!).add(c!)).mul(c!)], make: () => [rn([2, 75, 40], 10, 'float32'), rn([40, 96], 11, 'float32'), rn([96], 12, 'float32')] },
    // Operands at offsets 1 and 96 of their arrays, a root read back by another root through
    // reshapes; chunks of 96 elements (the bias period) copy each operand from its offset.
    {
      name: 'slices at offsets with a bias, and a root read back',
      f: ([x, c]) => {
        const y = slice(x!, [1], [96 * 40]).reshape([40, 96]).mul(c!).add(slice(x!, [96], [96 * 40]).reshape([40, 96]));
        return [y, reshape(reshape(y, [96 * 40]).exp(), [40, 96]).sub(c!)];
      },
      make: () => [rn([96 * 41], 13, 'float32'), rn([96], 12, 'float32')],
    },
    // A bool operand (copied in as 0.0/1.0 on each worker) and bool results (bytes copied out).
    {
      name: 'a stored condition, a select on it, and bool results',
      f: ([x, y, m]) => [where(m!, x!, y!.mul(2)), x!.less(y!), where(m!, x!.greater(0), y!.less(0))],
      make: () => {
        const [x, y] = [rn([3001], 0, 'float32'), rn([3001], 1, 'float32')];
        return [x, y, rn([3001], 2, 'float32').greater(0)];
      },
    },
    // Column operands (a value per row, filled over its run on each worker from the chunk's
    // first element): a softmax over rows of 250, chunks not starting on a row.
    { name: 'a softmax (values per row as column operands)', f: ([x]) => [softmax(x!, 1)], make: () => [rn([60, 250], 3, 'float32')] },
    // A transpose and a slice of columns, copied densely on this thread before the kernel splits.
    {
      name: 'views copied densely first',
      f: ([a, b]) => [exp(permute(a!, [1, 0]).mul(slice(b!, [3, 0], [64, 97])))],
      make: () => [rn([97, 64], 5, 'float32'), rn([70, 97], 6, 'float32')],
    },
  ];

describe.runIf(THREADS)('compiled elementwise kernels on several threads', () => {
  // Split from 2^10 elements (the default is 2^16): the kernels here have a few thousand elements.
  // The test of the default threshold sets it back itself; afterAll restores it.
  beforeEach(() => setRangeThreadMinElementsForTesting(1 << 10));

  it('the same bits as the eager ops on 1, 2 and 3 threads (float32 and float64)', () => {
    for (const { name, f, make } of PROGRAMS) {
      for (const dtype of ['float32', 'float64'] as const) {
        for (const threads of [1, 2, 3]) check(`${name} ${dtype}`, f, () => make(dtype), threads);
      }
    }
  });

  it('a small concat along the split axis, read through a reshape: each chunk loops over its own rows', () => {
    // A kernel writing reshape(concat([x, y], 0)) branches on its outermost axis, the one the
    // threads split; unrolling that axis as an inner one made every chunk compute from row 0.
    // The concat stays inline (under 256 elements), so the kernel must split from 16 elements.
    setRangeThreadMinElementsForTesting(16);
    for (const dtype of ['float32', 'float64'] as const) {
      for (const threads of [2, 3]) {
        check(`flattened concat rows ${dtype}`, ([x, y]) => [reshape(concat([x!, y!], 0), [160]).mul(2)], () => [rn([3, 40], 0, dtype), rn([1, 40], 1, dtype)], threads);
      }
    }
  });

  it('WebAssembly kernels split the same way: the eager JavaScript ops\' bits on 1, 2 and 3 threads', () => {
    for (const { name, f, make } of WASM_PROGRAMS) {
      for (const threads of [1, 2, 3]) check(name, f, make, threads, true);
    }
  });

  it('kernels below the threshold start no worker', () => {
    setRangeThreadMinElementsForTesting(undefined);
    shutdownCpuThreads();
    setCpuThreads(2);
    // 4,096 elements: below the default 2^16. The pool starts on the first split, so no worker means none was tried.
    const x = rn([64, 64], 8, 'float32');
    const traced = traceProgram(([a]) => [exp(a!).mul(a!)], [x], []);
    const compiled = cpu.compile(traced.program);
    const h = x._live('test') as CpuHandle;
    for (let i = 0; i < 5; i++) cpu.dispose(compiled.run([h], [], [false])[0]!);
    expect(wasmThreadStats().workers).toBe(0);
    compiled.dispose();
    x.dispose();
  });

  it('one thread after setCpuThreads(1): arrays outside the heap not shared, no worker, the same bits', () => {
    shutdownCpuThreads();
    setCpuThreads(1);
    // An int32 array is never in the CPU's heap: shared only for threads. A float array of 1 KiB
    // or more is in the heap (a shared memory) whatever the threads.
    const a = cpu.allocate('int32', 5000);
    expect(a.buffer instanceof SharedArrayBuffer).toBe(false);
    cpu.pool.give(a);
    const f = cpu.allocate('float32', 5000);
    expect(cpuHeap()!.holds(f)).toBe(true);
    cpu.pool.give(f);
    check(PROGRAMS[0]!.name, PROGRAMS[0]!.f, () => PROGRAMS[0]!.make('float32'), 1);
    expect(wasmThreadStats().workers).toBe(0);
    setCpuThreads(2);
    const b = cpu.allocate('int32', 5000);
    expect(b.buffer instanceof SharedArrayBuffer).toBe(true);
    cpu.pool.give(b);
  });

  it('an index out of range throws the error one thread throws: in a gather copied on this thread and inside a split chunk', () => {
    setCpuThreads(2);
    const x = rn([4000, 3], 9, 'float32');
    const idx = tensor(Array.from({ length: 4000 }, (_, i) => (i === 3500 ? 4000 : i)), { dtype: 'int32' });
    // Rows of an input gathered along axis 0: a copy on this thread before the split kernel.
    const traced = traceProgram(([a, i]) => [exp(indexSelect(a!, 0, i!)).add(1)], [x, idx], []);
    const compiled = cpu.compile(traced.program);
    const hs = [x, idx].map((t) => t._live('test') as CpuHandle);
    for (let r = 0; r < 3; r++) {
      expect(() => compiled.run(hs, [], [false, false])).toThrow('gather: index 4000 is out of range for axis 0 of extent 4000');
    }
    compiled.dispose();
    // A computed value gathered along axis 1: the gather is fused into the split kernel, so the
    // index fails inside a chunk; the job reruns here, which throws the one-thread error. A chunk's
    // failure swallowed would leave its part of the output unwritten and return normally.
    const y = rn([3, 4000], 9, 'float32');
    const inChunk = cpu.compile(traceProgram(([a, i]) => [exp(indexSelect(a!.mul(2), 1, i!)).add(1)], [y, idx], []).program);
    const ys = [y, idx].map((t) => t._live('test') as CpuHandle);
    const reruns = rangeRerunsForTesting();
    for (let r = 0; r < 3; r++) {
      expect(() => inChunk.run(ys, [], [false, false]), `run ${r}`).toThrow('gather: index 4000 is out of range for axis 1 of extent 4000');
    }
    expect(rangeRerunsForTesting() - reruns, 'split jobs rerun after a chunk threw').toBe(3);
    inChunk.dispose();
    x.dispose();
    y.dispose();
    idx.dispose();
  });

  it('a range of 2^31 units or more is covered whole, by the workers as by this thread', () => {
    // The range's counts travel in the pool's Int32Array control block: 2^31 + 40 was stored as
    // -2^31 + 40 and read back signed, so every chunk's range [start, min(units, end)) was empty
    // and a compiled kernel over a [2^31 + 64] bool tensor returned its output unwritten. Here a
    // function that only records each chunk's extent (nothing is allocated per unit).
    setCpuThreads(2);
    const pool = rangePool(2)!;
    const source = '(function (arrays, start, end) { const a = arrays[0]; Atomics.add(a, 0, BigInt(end - start)); Atomics.add(a, 1, 1n); })';
    const fn = buildFunction<(arrays: readonly unknown[], start: number, end: number) => void>(source);
    for (const units of [2 ** 31 + 40, 2 ** 32 - 5]) {
      const acc = new BigInt64Array(new SharedArrayBuffer(16));
      const unitsPerChunk = Math.ceil(units / 8);
      const { tries, chunks } = untilWorkerChunk(() => {
        acc.fill(0n);
        pool.runRanges({ source, fn, arrays: [acc], units, unitsPerChunk, participants: 2 });
      });
      expect(chunks, `no worker chunk after ${tries} jobs`).toBeGreaterThan(0);
      expect([acc[0], acc[1]]).toEqual([BigInt(units), 8n]);
    }
    expect(() => pool.runRanges({ source, fn, arrays: [], units: 2 ** 32, unitsPerChunk: 2 ** 29, participants: 2 })).toThrow(
      'cpu threads: a range job covers at most 2^32 - 1 units (the control block holds 32-bit counts), got 4294967296',
    );
  });

  it('a job with a chunk that throws fails, whoever ran the chunk; the next jobs and threaded products run normally', () => {
    setWasmThreadMinWorkForTesting(1 << 12);
    setCpuThreads(2);
    const pool = rangePool(2)!;
    // Chunk 3 of 8 throws: on a worker or on this thread, the job must report it, every time.
    const failing = '(function (arrays, start, end) { if (start === 30) throw new Error("chunk 3"); Atomics.add(arrays[0], 0, end - start); })';
    const counted = new Int32Array(new SharedArrayBuffer(4));
    for (let r = 0; r < 5; r++) {
      expect(() => pool.runRanges({ source: failing, fn: buildFunction(failing), arrays: [counted], units: 80, unitsPerChunk: 10, participants: 2 }), `job ${r}`).toThrow(
        'cpu threads: a range chunk failed',
      );
    }
    // The failure is the failed job's only: the next job covers its range, and a product split
    // across the workers returns.
    const counting = '(function (arrays, start, end) { Atomics.add(arrays[0], 0, end - start); })';
    const { chunks } = untilWorkerChunk(() => {
      counted[0] = 0;
      expect(pool.runRanges({ source: counting, fn: buildFunction(counting), arrays: [counted], units: 80, unitsPerChunk: 10, participants: 2 })).toBe(true);
      expect(counted[0]).toBe(80);
    });
    expect(chunks).toBeGreaterThan(0);
    const a = randn([64, 64], { key: keys[12]! }), b = randn([64, 64], { key: keys[13]! });
    const product = matmul(a, b);
    expect(product.dataSync().length).toBe(64 * 64);
    for (const t of [a, b, product]) t.dispose();
    setWasmThreadMinWorkForTesting(undefined);
  });

  it('setCpuThreads lowered below the running pool: split kernels ask for that many threads, and no more take part', () => {
    setCpuThreads(3);
    const pool = rangePool(3)!;
    setCpuThreads(2);
    expect(rangePool(2)).toBe(pool);
    expect(pool.participants).toBe(3);
    // A compiled kernel asks the pool for setCpuThreads' count.
    const asked: number[] = [];
    const runRanges = pool.runRanges.bind(pool);
    pool.runRanges = (job) => (asked.push(job.participants), runRanges(job));
    try {
      const x = rn([5000], 11, 'float32');
      const compiled = cpu.compile(traceProgram(([a]) => [exp(a!).mul(a!)], [x], []).program);
      cpu.dispose(compiled.run([x._live('test') as CpuHandle], [], [false])[0]!);
      compiled.dispose();
      x.dispose();
    } finally {
      pool.runRanges = runRanges;
    }
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((p) => p === 2), `participants asked: ${asked}`).toBe(true);
    // And the pool holds to a job's count: each chunk records a tag of the thread that ran it
    // (every worker has its own globalThis). Three threads while a job asks for 3, at most two
    // over 200 jobs for 2. Bounded: workers start asynchronously, and a descheduled one may miss a job.
    const source =
      '(function (arrays, start, end) { const g = globalThis; if (g.__threadTag === undefined) g.__threadTag = 1 + Math.floor(Math.random() * 1e9); let s = 0; for (let i = 0; i < 5000; i++) s += Math.sqrt(i + start); arrays[0][start] = g.__threadTag + (s < 0 ? 1 : 0); })';
    const fn = buildFunction<(arrays: readonly unknown[], start: number, end: number) => void>(source);
    const tags = new Float64Array(new SharedArrayBuffer(8 * 64));
    const threadsSeen = (participants: number, jobs: number): number => {
      const seen = new Set<number>();
      for (let j = 0; j < jobs && seen.size < 3; j++) {
        tags.fill(0);
        pool.runRanges({ source, fn, arrays: [tags], units: 64, unitsPerChunk: 1, participants });
        for (const t of tags) seen.add(t);
      }
      return seen.size;
    };
    expect(threadsSeen(3, 2000)).toBe(3);
    expect(threadsSeen(2, 200)).toBeLessThanOrEqual(2);
  });

  it('a kernel that calls a defined primitive stays on this thread: its function lives here, so no chunk fails on a worker', () => {
    setCpuThreads(2);
    const twiceSquarePlus = definePrimitive({
      name: 'rangeThreadsTwiceSquarePlus', kind: 'elementwise', inputs: ['x', 'y'],
      cpu: (x, y) => 2 * x * x + y,
      wgsl: { expression: '2.0 * x * x + y' },
      jvp: () => null,
      vjp: (ct) => [ct, ct],
    });
    const x = rn([5000], 14, 'float32'), y = rn([5000], 15, 'float32');
    const compiled = cpu.compile(traceProgram(([a, b]) => [twiceSquarePlus(a!.mul(0.5), b!).add(1)], [x, y], []).program);
    const want = twiceSquarePlus(x.mul(0.5), y).add(1);
    const wantBits = Array.from(bitsOf(want.dataSync()));
    const reruns = rangeRerunsForTesting();
    for (let r = 0; r < 20; r++) {
      const [out] = compiled.run([x, y].map((t) => t._live('test') as CpuHandle), [], [false, false]);
      expect(Array.from(bitsOf(cpu.readSync(out!))), `run ${r}`).toEqual(wantBits);
      cpu.dispose(out!);
    }
    expect(rangeRerunsForTesting() - reruns, 'split jobs rerun after a chunk failed on a worker').toBe(0);
    compiled.dispose();
    for (const t of [x, y, want]) t.dispose();
  });

  it('memory() counts shared arrays by their bytes, and threaded runs leak nothing', () => {
    setCpuThreads(2);
    const start = memory().bytes;
    const x = rn([3001], 0, 'float64');
    expect((x._live('test') as CpuHandle).data!.buffer instanceof SharedArrayBuffer).toBe(true);
    expect(memory().bytes - start).toBe(3001 * 8);
    x.dispose();
    for (let i = 0; i < 3; i++) check(PROGRAMS[1]!.name, PROGRAMS[1]!.f, () => PROGRAMS[1]!.make('float32'), 2);
    expect(memory().bytes).toBe(start);
  });

  it('the heap\'s arrays by address, small ones staged, sources from the heap: no message, each source freed once every worker built it', () => {
    shutdownCpuThreads();
    setCpuThreads(2);
    // Float32 work as WebAssembly, every array in the heap but the bias row (96 floats: staged).
    const make = () => [rn([2, 75, 40], 10, 'float32'), rn([40, 96], 11, 'float32'), rn([96], 12, 'float32')];
    const made = make();
    expect(cpuHeap()!.holds((made[2]!._live('test') as CpuHandle).data!)).toBe(false);
    for (const t of made) t.dispose();
    const f: Program = ([a, b, c]) => [softplus(matmul(a!, b!).add(c!)).mul(c!), exp(a!).mul(a!)];
    check('an epilogue with a staged bias, and a flat chain', f, make, 2, true);
    const pool = rangePool(2)!;
    // The worker records each function it built from the heap, and the region of its source is
    // freed at the next job that names it: run until the worker has built both kernels (bounded).
    for (let i = 0; i < 50 && pool.heapSources > 0; i++) check('again', f, make, 2, true);
    expect(pool.heapSources).toBe(0);
    // The worker still takes part, from the functions it built.
    check('after the sources are freed', f, make, 2, true);
    expect(pool.messagesPosted).toBe(0);
  });

  it('as in a browser (no message reaches a worker): the same bits through the heap and staging; past 16 MiB staged, the job stays here', () => {
    shutdownCpuThreads();
    setSyncMessagesForTesting(false);
    try {
      setCpuThreads(2);
      // Bool operands and results among them: outside the heap, staged.
      for (const { name, f, make } of WASM_PROGRAMS) check(name, f, make, 2, true);
      check(PROGRAMS[0]!.name, PROGRAMS[0]!.f, () => PROGRAMS[0]!.make('float64'), 2);
      // Int32 arrays: outside the heap, so staged (no worker reads a message).
      const ints = (n: number) => () => {
        const draw = rn([n], 3, 'float32').mul(1000);
        const x = cast(draw, 'int32');
        draw.dispose();
        expect(cpuHeap()!.holds((x._live('test') as CpuHandle).data!)).toBe(false);
        return [x];
      };
      const f: Program = ([x]) => [x!.mul(3).add(x!)];
      check('int32 arrays staged', f, ints(5000), 2);
      expect(rangePool(2)!.messagesPosted).toBe(0);
      // 2^22 int32 in and out: 32 MiB to stage, past the 16 MiB limit. Checked element by element
      // against 3x + x in int32 (a bitwise comparison of 2^22 values through check() takes minutes).
      const [x] = ints(2 ** 22)();
      const compiled = cpu.compile(traceProgram(f, [x!], []).program);
      const before = wasmThreadStats().workerChunks;
      const want = (cpu.readSync(x!._live('test') as CpuHandle) as Int32Array).map((v) => Math.imul(v, 3) + v);
      for (let run = 0; run < 3; run++) {
        const [out] = compiled.run([x!._live('test') as CpuHandle], [], [false]);
        expect(firstDifference(cpu.readSync(out!), 0, want), `run ${run}: first wrong element`).toBe(-1);
        cpu.dispose(out!);
      }
      expect(wasmThreadStats().workerChunks - before, 'worker chunks past the staging limit').toBe(0);
      compiled.dispose();
      x!.dispose();
    } finally {
      setSyncMessagesForTesting(undefined);
      shutdownCpuThreads();
    }
  });

  it('arrays made before threads were on (not shared) are staged: their kernels split all the same', () => {
    setCpuThreads(2);
    const make = () => {
      // Made on one thread: an int32 array outside the heap, not on a SharedArrayBuffer (a length
      // no earlier test used, so the array pool has none to give back).
      setCpuThreads(1);
      const draw = rn([5003], 4, 'float32').mul(1000);
      const x = cast(draw, 'int32');
      draw.dispose();
      setCpuThreads(2);
      expect((x._live('test') as CpuHandle).data!.buffer instanceof SharedArrayBuffer).toBe(false);
      return [x];
    };
    check('int32 made on one thread', ([x]) => [x!.mul(3).add(x!)], make, 2);
  });

  it('workers forget arrays once they are collected here, and the process exits with its pool running', () => {
    const out = runFixture<{ heldDropped: number; heldBefore: number; outputsSent: number; heldAfter: number; workers: number }>(
      new URL('./fixtures/rangeThreadsChild.ts', import.meta.url), { nodeFlags: ['--expose-gc'] },
    );
    expect(out.workers).toBe(1);
    // Twelve runs of two new arrays each (input and output), dropped by the pool after each run:
    // forgotten with the next run's job, without a collection, so only the last run's two are held.
    expect(out.heldDropped).toBe(2);
    // Then runs whose outputs are never disposed: one input array (back from the pool each run)
    // and one output per run, all sent to the worker; only the collector can free the outputs.
    // Twelve calls make at least twelve runs, more while a call waits for the worker to take part.
    expect(out.outputsSent).toBeGreaterThanOrEqual(12);
    expect(out.heldBefore).toBe(1 + out.outputsSent);
    // After collection: the last run's two (still reachable) and the final run's two, at most.
    expect(out.heldAfter).toBeLessThanOrEqual(4);
  });

  it('workers free the arrays they were told to forget: a loop that never yields holds bounded memory', () => {
    const out = runFixture<{ peakMiB: number; arrayMiB: number; steps: number; workerChunks: number }>(
      new URL('./fixtures/workerGarbageChild.ts', import.meta.url), { nodeFlags: ['--expose-gc'] },
    );
    expect(out.workerChunks, 'the worker never took part').toBeGreaterThan(0);
    // Every step's output (8 MiB) is garbage here after the step. Held at most: the input and the
    // step's output (live), the 256 MiB of forgotten arrays after which the workers are replaced,
    // and the one output that crosses that limit (acted on at the next job): 256 + 3 · 8 MiB.
    // Workers that keep every array they were sent hold all 50 outputs: 400 MiB and more.
    expect(out.peakMiB).toBeLessThanOrEqual(256 + 3 * out.arrayMiB);
    expect(out.steps * out.arrayMiB).toBeGreaterThan(256 + 3 * out.arrayMiB);
  });
});
