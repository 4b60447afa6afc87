// The CPU matrix product on several threads (workers over a shared WebAssembly.Memory): the same
// bits as one thread whatever the count, the workers really take part, small products stay on
// the calling thread, the pool is replaced or stopped without leaking workers, a worker past a
// lowered count does not spin, a worker that dies leaves one thread, the workers run in a bundle
// made with esbuild's keepNames, and a process that leaves its pool running still exits. Also, in a child process where relaxed SIMD is
// switched on, the fused-multiply-add kernels against the reference (see the fixture).

import { afterAll, describe, expect, it } from 'vitest';
import { cpuKernelInfo, matmul, matmulBatchedInto, setCpuThreads, setCpuWasm, shutdownCpuThreads, tensor } from '@scorch/tensor';
import { setWasmThreadMinWorkForTesting, setWorkerSpinForTesting, wasmThreadStats } from '../src/cpu/wasm/wasmMatmul.js';
import { cpuHeap } from '../src/cpu/wasm/heap.js';
import { type FloatCtor, firstDifference, randomArray, referenceProduct, seededUniform, wasmTolerance } from './matmulReference.js';
import { runFixture } from '../../../tests/fixtures/runFixture.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { availableParallelism } from 'node:os';
import { cgroupCpuQuota, hardwareThreads } from '../src/cpu/wasm/threadPool.js';
import { untilWorkerChunk } from './workerChunks.js';

// Products are split from 2^24 multiply-adds by default; here from 2^16, so that the shapes
// below (each over 2^16, most under 2^24) run on several threads while the references stay quick.
setWasmThreadMinWorkForTesting(1 << 16);
afterAll(() => {
  setWasmThreadMinWorkForTesting(undefined);
  setCpuThreads(undefined);
  shutdownCpuThreads();
});

/** The workspace's packages as esbuild aliases (scripts/workspace.mjs: plain JS, loaded at run time). */
async function workspaceAliases(): Promise<Record<string, string>> {
  const url = new URL('../../../scripts/workspace.mjs', import.meta.url);
  return ((await import(url.href)) as { workspaceAliases: Record<string, string> }).workspaceAliases;
}

const WASM = cpuKernelInfo().wasmSimd;
/** Workers need worker_threads (Node) and SharedArrayBuffer; both exist in Node 20. */
const THREADS = WASM && cpuKernelInfo().defaultThreads >= 1 && typeof SharedArrayBuffer === 'function';

function product(Ctor: FloatCtor, batch: number, m: number, k: number, n: number, threads: number, seed: number): Float32Array | Float64Array {
  const next = seededUniform(seed);
  const a = randomArray(Ctor, batch * m * k, next);
  const b = randomArray(Ctor, batch * k * n, next);
  setCpuThreads(threads);
  const c = new Ctor(batch * m * n).fill(NaN);
  matmulBatchedInto(batch, a, 0, m * k, b, 0, k * n, c, 0, m, n, k);
  return c;
}

describe.runIf(THREADS)('threads', () => {
  // [batch, m, k, n]: all ≥ 2^16 multiply-adds (split); rows not a multiple of the tile height or
  // of the chunk, one product of few rows and many columns, a batch whose entries split unevenly.
  const SHAPES: [number, number, number, number][] = [[1, 301, 257, 130], [1, 11, 1030, 200], [5, 97, 70, 33], [2, 256, 64, 256]];

  it('workers take part in a large product', () => {
    shutdownCpuThreads();
    setCpuThreads(2);
    // Workers start asynchronously: the first products may finish before they are up.
    const { tries, chunks } = untilWorkerChunk(() => product(Float32Array, 1, 400, 300, 200, 2, 3));
    expect(wasmThreadStats().workers).toBe(1);
    expect(chunks, `no worker chunk after ${tries} products`).toBeGreaterThan(0);
  });

  for (const [name, Ctor] of [['float32', Float32Array], ['float64', Float64Array]] as const) {
    for (const [batch, m, k, n] of SHAPES) {
      it(`${batch} × (${m}×${k}×${n}) ${name}: the same bits on 1, 2, 3 and 4 threads, within the bound`, () => {
        const seed = m * 31 + n;
        const one = product(Ctor, batch, m, k, n, 1, seed);
        for (const threads of [2, 3, 4]) {
          const many = product(Ctor, batch, m, k, n, threads, seed);
          const d = firstDifference(many, 0, one);
          expect(d, `${threads} threads, element ${d}: ${many[d]} against ${one[d]}`).toBe(-1);
        }
        // And the values themselves (entry 0 and the last), so that agreement is not agreement on garbage.
        const next = seededUniform(seed);
        const a = randomArray(Ctor, batch * m * k, next);
        const b = randomArray(Ctor, batch * k * n, next);
        for (const t of [0, batch - 1]) {
          const { value, absSum } = referenceProduct(a, t * m * k, b, t * k * n, m, n, k);
          let firstBad = -1;
          for (let e = 0; e < m * n && firstBad < 0; e++) {
            if (!(Math.abs(one[t * m * n + e]! - value[e]!) <= wasmTolerance(absSum[e]!, k, Ctor === Float32Array))) firstBad = e;
          }
          expect(firstBad, `entry ${t} element ${firstBad}`).toBe(-1);
        }
      });
    }
  }

  // B in the CPU's heap and at least 2^16 elements: the threads pack it, blocks of whole panels
  // at a time, inside the product's job. [batch, m, k, n, B shared by the entries, B stored as Bᵀ]:
  // n not a multiple of the panel width (the last block pads), several blocks per entry.
  const PACKED: [number, number, number, number, boolean, boolean][] = [
    [3, 23, 300, 1001, false, false], [2, 40, 257, 515, true, false], [2, 17, 129, 700, false, true], [1, 9, 1030, 70, false, true],
    // n a multiple of both panel widths (8 and 4): C written where it lies in the heap, and with
    // fewer rows than columns in chunks of columns (the last one shorter on three threads).
    [2, 31, 200, 512, false, false], [1, 12, 150, 2000, false, false],
  ];
  for (const [name, Ctor] of [['float32', Float32Array], ['float64', Float64Array]] as const) {
    for (const [batch, m, k, n, shared, transB] of PACKED) {
      it(`${batch} × (${m}×${k}×${n}) ${name}${shared ? ', B shared' : ''}${transB ? ', B stored as Bᵀ' : ''}, B in the heap: packed by the threads, the same bits as one thread, within the bound`, () => {
        const heap = cpuHeap()!;
        const inHeap = (length: number): Float32Array | Float64Array => (Ctor === Float32Array ? heap.array(Float32Array, length) : heap.array(Float64Array, length))!;
        const next = seededUniform(m * 7 + n);
        const bEntries = shared ? 1 : batch;
        // A in the heap too (read in place), B in the heap as stored below.
        const a = inHeap(batch * m * k);
        a.set(randomArray(Ctor, batch * m * k, next));
        const bRows = randomArray(Ctor, bEntries * k * n, next);
        const b = inHeap(bEntries * k * n);
        // As stored: each entry row-major (k×n), or its transpose (n×k).
        for (let e = 0; e < bEntries; e++) {
          for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) b[e * k * n + (transB ? j * k + p : p * n + j)] = bRows[e * k * n + p * n + j]!;
        }
        // The same product of −B on one thread first leaves its panels in the product's scratch, so
        // a panel the threads failed to pack would show in C instead of passing as the last call's.
        const decoy = inHeap(bEntries * k * n);
        for (let e = 0; e < decoy.length; e++) decoy[e] = -b[e]!;
        const run = (threads: number) => {
          const c = inHeap(batch * m * n).fill(NaN);
          try {
            setCpuThreads(1);
            matmulBatchedInto(batch, a, 0, m * k, decoy, 0, shared ? 0 : k * n, c, 0, m, n, k, { transB });
            setCpuThreads(threads);
            matmulBatchedInto(batch, a, 0, m * k, b, 0, shared ? 0 : k * n, c, 0, m, n, k, { transB });
            return c.slice();
          } finally {
            heap.freeArray(c);
          }
        };
        try {
          const one = run(1);
          for (const threads of [2, 3]) {
            const before = wasmThreadStats();
            const many = run(threads);
            expect(wasmThreadStats().packBlocks, `${threads} threads: blocks of B packed in the job`).toBeGreaterThan(before.packBlocks);
            // C in place (n a multiple of the panel: 8 float32 columns, 4 float64) with m < n:
            // split by columns; otherwise by rows.
            const inPlace = n % (Ctor === Float32Array ? 8 : 4) === 0;
            expect(wasmThreadStats().columnJobs - before.columnJobs, `${threads} threads: jobs split by columns`).toBe(inPlace && m < n ? 1 : 0);
            const d = firstDifference(many, 0, one);
            expect(d, `${threads} threads, element ${d}: ${many[d]} against ${one[d]}`).toBe(-1);
          }
          for (const t of [0, batch - 1]) {
            const { value, absSum } = referenceProduct(a, t * m * k, bRows, (shared ? 0 : t) * k * n, m, n, k);
            let firstBad = -1;
            for (let e = 0; e < m * n && firstBad < 0; e++) {
              if (!(Math.abs(one[t * m * n + e]! - value[e]!) <= wasmTolerance(absSum[e]!, k, Ctor === Float32Array))) firstBad = e;
            }
            expect(firstBad, `entry ${t} element ${firstBad}`).toBe(-1);
          }
        } finally {
          heap.freeArray(a);
          heap.freeArray(b);
          heap.freeArray(decoy);
        }
      });
    }
  }

  it('a batch of large Bs runs in groups of entries (each group packed, then its tiles): the bits of each entry alone, on 1, 2 and 3 threads, the epilogue seeing every row once in order', () => {
    // B per entry 400×1200: 9.6 MB of packed float32 B over the batch (19.2 MB in float64), past
    // the 8 MiB from which the entries run in groups (one per participant; one at a time on one thread).
    const [batch, m, k, n] = [5, 37, 400, 1200];
    for (const Ctor of [Float32Array, Float64Array] as FloatCtor[]) {
      const next = seededUniform(4242);
      const a = randomArray(Ctor, batch * m * k, next);
      const b = randomArray(Ctor, batch * k * n, next);
      setCpuThreads(1);
      const alone = new Ctor(batch * m * n);
      for (let t = 0; t < batch; t++) matmulBatchedInto(1, a, t * m * k, 0, b, t * k * n, 0, alone, t * m * n, m, n, k);
      for (const threads of [1, 2, 3]) {
        setCpuThreads(threads);
        const groups = wasmThreadStats().packGroups;
        const c = new Ctor(batch * m * n).fill(NaN);
        let at = 0;
        matmulBatchedInto(batch, a, 0, m * k, b, 0, k * n, c, 0, m, n, k, {
          epilogue: (start, end) => {
            expect([start, (end - start) % n]).toEqual([at, 0]);
            at = end;
          },
        });
        const label = `${Ctor.name}, ${threads} thread(s)`;
        expect(at, label).toBe(batch * m * n);
        // One group per entry on one thread; groups of `threads` entries otherwise (5 entries: 3 groups of 2, 2 of 3).
        expect(wasmThreadStats().packGroups - groups, label).toBe(Math.ceil(batch / threads));
        const d = firstDifference(c, 0, alone);
        expect(d, `${label}, element ${d}: ${c[d]} against ${alone[d]} computed alone`).toBe(-1);
      }
      const { value, absSum } = referenceProduct(a, (batch - 1) * m * k, b, (batch - 1) * k * n, m, n, k);
      let firstBad = -1;
      for (let e = 0; e < m * n && firstBad < 0; e++) {
        if (!(Math.abs(alone[(batch - 1) * m * n + e]! - value[e]!) <= wasmTolerance(absSum[e]!, k, Ctor === Float32Array))) firstBad = e;
      }
      expect(firstBad, `${Ctor.name}: last entry, element ${firstBad}`).toBe(-1);
    }
  });

  it('the epilogue sees every row once, in order, after the threads finish', () => {
    const [m, k, n] = [300, 200, 50];
    const next = seededUniform(77);
    const a = Float32Array.from({ length: m * k }, next);
    const b = Float32Array.from({ length: k * n }, next);
    setCpuThreads(1);
    const plain = new Float32Array(m * n);
    matmulBatchedInto(1, a, 0, 0, b, 0, 0, plain, 0, m, n, k);
    setCpuThreads(3);
    const out = new Float32Array(m * n);
    let at = 0;
    matmulBatchedInto(1, a, 0, 0, b, 0, 0, out, 0, m, n, k, {
      epilogue: (start, end) => {
        expect(start).toBe(at);
        for (let e = start; e < end; e++) expect(out[e]).toBe(plain[e]);
        at = end;
      },
    });
    expect(at).toBe(m * n);
  });

  it('small products stay on the calling thread and start no workers', () => {
    shutdownCpuThreads();
    setWasmThreadMinWorkForTesting(undefined);
    setCpuThreads(4);
    try {
      // 128³ = 2^21 and 3·40·50·60 multiply-adds: under the default threshold (2^24), so no pool starts.
      product(Float32Array, 1, 128, 128, 128, 4, 5);
      product(Float64Array, 3, 40, 50, 60, 4, 6);
      expect(wasmThreadStats().workers).toBe(0);
    } finally {
      setWasmThreadMinWorkForTesting(1 << 16);
    }
  });

  it('between jobs a worker spins for the set time, finding a job published meanwhile without blocking, then blocks', () => {
    shutdownCpuThreads();
    setCpuThreads(2);
    untilWorkerChunk(() => product(Float32Array, 1, 128, 128, 128, 2, 9));
    /**
     * A product published 20 ms after the last: the worker has finished that one and is spinning,
     * or blocked. 512³ takes the caller a few milliseconds, about a scheduler's time slice, so a
     * spinning worker that another process held off the core for a moment still finds chunks
     * left (at 128³ the caller finished in ~0.1 ms, and one such moment, with the suite's other
     * files on both cores, made a spinning worker miss the job).
     */
    const gap = () => {
      const end = performance.now() + 20;
      while (performance.now() < end) {
        // The gap.
      }
    };
    const afterGap = () => {
      gap();
      product(Float32Array, 1, 512, 512, 512, 2, 9);
    };
    /** Jobs found by the worker in `jobs` products, each published 20 ms after the one before. */
    const foundAfterGaps = (spinUs: number, jobs: number): number => {
      setWorkerSpinForTesting(spinUs);
      // The worker reads the spin time after each job: after the first of these it spins for the
      // new time. The second lets the first be counted (a worker may notice a job it was spinning
      // for after the caller has done it all) before the count is read.
      // Each count is read after a gap too: read as the second product returned, a notice of it
      // that came late (the worker descheduled) fell into the window as a sixth of five (seen
      // once in a full suite run).
      afterGap();
      afterGap();
      gap();
      const before = wasmThreadStats().jobsSeenSpinning;
      for (let i = 0; i < jobs; i++) afterGap();
      gap();
      return wasmThreadStats().jobsSeenSpinning - before;
    };
    try {
      // Spinning for 200 ms, the worker is still watching 20 ms later: it finds the jobs (all but one
      // it might have slept through while descheduled).
      expect(foundAfterGaps(200_000, 5)).toBeGreaterThanOrEqual(4);
      // With no spin it blocks at once after each job, and is woken for the next: it finds none.
      expect(foundAfterGaps(0, 5)).toBe(0);
      // A pool of 3 kept at a count of 2: the worker past the count is woken by each job and sits it
      // out, then blocks at once rather than spin (it spun after every job, taking a core for the
      // spin time each: 10 jobs found in 5 here, and a product 3 times slower on a busy machine).
      // Only the other worker finds the jobs: at most one each.
      shutdownCpuThreads();
      untilWorkerChunk(() => product(Float32Array, 1, 128, 128, 128, 3, 9));
      expect(wasmThreadStats().workers).toBe(2);
      const found = foundAfterGaps(200_000, 5);
      expect(wasmThreadStats().workers).toBe(2);
      expect(found).toBeGreaterThanOrEqual(4);
      expect(found).toBeLessThanOrEqual(5);
    } finally {
      setWorkerSpinForTesting(undefined);
    }
    // A time that is not a whole number of microseconds is refused, with a pool running or not.
    expect(() => setWorkerSpinForTesting(-1)).toThrow(/a spin time is a whole number of microseconds below 2\^31, got -1/);
    shutdownCpuThreads();
    expect(() => setWorkerSpinForTesting(1.5)).toThrow(/got 1.5/);
  });

  it('a larger count replaces the pool, a smaller one reuses it, shutdown stops it', () => {
    shutdownCpuThreads();
    product(Float32Array, 1, 200, 200, 100, 3, 8);
    expect(wasmThreadStats().workers).toBe(2);
    setCpuThreads(2);
    product(Float32Array, 1, 200, 200, 100, 2, 8);
    expect(wasmThreadStats().workers).toBe(2);
    product(Float32Array, 1, 200, 200, 100, 4, 8);
    expect(wasmThreadStats().workers).toBe(3);
    shutdownCpuThreads();
    expect(wasmThreadStats().workers).toBe(0);
    // And it starts again on the next large product.
    product(Float32Array, 1, 200, 200, 100, 2, 8);
    expect(wasmThreadStats().workers).toBe(1);
  });

  it('rejects a thread count that is not a positive integer', () => {
    expect(() => setCpuThreads(0)).toThrow(/setCpuThreads: expected an integer from 1 to 256/);
    expect(() => setCpuThreads(2.5)).toThrow(/got 2.5/);
  });

  it('through the public matmul with a broadcast batch: the same bits on 1 and 3 threads', () => {
    const next = seededUniform(12);
    const aData = Float32Array.from({ length: 4 * 130 * 90 }, next);
    const bData = Float32Array.from({ length: 90 * 120 }, next);
    const run = (threads: number) => {
      setCpuThreads(threads);
      // b broadcast over a's batch of 4 (batch [4] against [1]).
      const r = matmul(tensor(aData, { shape: [4, 130, 90] }), tensor(bData, { shape: [1, 90, 120] }));
      const data = r.dataSync();
      r.dispose();
      return data as Float32Array;
    };
    const one = run(1);
    expect(firstDifference(run(3), 0, one)).toBe(-1);
  });

  it('a product from inside an epilogue runs (in TypeScript) without disturbing the outer one', () => {
    setCpuWasm(true);
    setCpuThreads(1);
    const [m, k, n] = [250, 40, 30];
    const next = seededUniform(21);
    const a = Float64Array.from({ length: m * k }, next);
    const b = Float64Array.from({ length: k * n }, next);
    const plain = new Float64Array(m * n);
    matmulBatchedInto(1, a, 0, 0, b, 0, 0, plain, 0, m, n, k);
    const out = new Float64Array(m * n);
    const inner = new Float64Array(20 * 20);
    matmulBatchedInto(1, a, 0, 0, b, 0, 0, out, 0, m, n, k, {
      epilogue: () => matmulBatchedInto(1, a, 0, 0, a, 0, 0, inner, 0, 20, 20, 20),
    });
    expect(firstDifference(out, 0, plain)).toBe(-1);
  });
});

describe.runIf(THREADS)('in a child process', () => {
  it('relaxed SIMD fused multiply-add within the bound and bit-identical across threads; the process exits with its pool running', () => {
    const out = runFixture<{
      info: { relaxedSimd: boolean; fma: boolean }; outsideBound: number; sameAcrossThreads: boolean; fusedRecurrenceMismatches: number; workers: number; y0: number;
    }>(new URL('./fixtures/wasmMatmulChild.ts', import.meta.url));
    // Node 20 has relaxed SIMD behind the flag the fixture sets; later versions by default.
    expect(out.info.relaxedSimd).toBe(true);
    expect(out.info.fma).toBe(true);
    expect(out.outsideBound).toBe(0);
    expect(out.sameAcrossThreads).toBe(true);
    expect(out.fusedRecurrenceMismatches).toBe(0);
    expect(out.workers).toBeGreaterThan(0);
    expect(out.y0).toBe(50); // 200 · 0.5 · 0.5, exact
  });
});

describe.runIf(WASM)('where a shared WebAssembly.Memory is refused (child process)', () => {
  it('reports one thread, makes no shared arrays, has no CPU heap and starts no worker; products, elementwise kernels and a compiled convolution (B packed from the image) are right', () => {
    const out = runFixture<{
      before: { threads: number; defaultThreads: number }; after: { threads: number; defaultThreads: number }; shared: boolean; workers: number; y: number[];
      heap: boolean; expExact: boolean; convGathered: number; convSameBits: boolean;
    }>(new URL('./fixtures/unsharedMemoryChild.ts', import.meta.url));
    // No CPU heap (it is a shared memory): ordinary arrays, which the kernels copy.
    expect(out.heap).toBe(false);
    expect(out.expExact).toBe(true);
    expect(out.before.threads).toBe(1);
    expect(out.before.defaultThreads).toBe(1);
    // setCpuThreads(4) is accepted, but one thread is all that can run ("always 1", its doc says).
    expect(out.after.threads).toBe(1);
    expect(out.shared).toBe(false);
    expect(out.workers).toBe(0);
    // 1·5 + 2·7, 1·6 + 2·8, 3·5 + 4·7, 3·6 + 4·8: exact in float32.
    expect(out.y).toEqual([19, 22, 43, 50]);
    // A compiled convolution's forward product and weight gradient pack B from a copy of the
    // padded image in the product's memory (not from kh·kw copies of it), with eager's bits: two
    // products, each an image at a time (as many as the product's threads: one), two images.
    expect(out.convGathered).toBe(4);
    expect(out.convSameBits).toBe(true);
  });
});

describe.runIf(THREADS)('where a worker cannot be started (child process)', () => {
  it('stops the workers it started, runs on one thread and says so, tries again only after setCpuThreads', () => {
    const out = runFixture<{
      firstSame: boolean; againSame: boolean;
      afterFirst: { running: number; made: number; attempts: number; threads: number; workers: number };
      afterMore: { running: number; made: number; attempts: number };
      recovered: { running: number; threads: number; workers: number; chunks: number; tries: number; same: boolean };
    }>(new URL('./fixtures/workerStartFailsChild.ts', import.meta.url));
    // The pool of 4 started two workers, then the third failed: the product ran on this thread.
    expect(out.afterFirst.made).toBe(2);
    expect(out.afterFirst.attempts).toBe(3);
    expect(out.firstSame).toBe(true);
    // The two are stopped, not left waiting for jobs for good; one thread is what runs, and reported.
    expect(out.afterFirst.running).toBe(0);
    expect(out.afterFirst.workers).toBe(0);
    expect(out.afterFirst.threads).toBe(1);
    // Later products do not start (and stop) workers again each time.
    expect(out.againSame).toBe(true);
    expect(out.afterMore).toEqual({ running: 0, made: 2, attempts: 3 });
    // setCpuThreads(3) asks again: two workers run and take part.
    expect(out.recovered.running).toBe(2);
    expect(out.recovered.workers).toBe(2);
    expect(out.recovered.threads).toBe(3);
    expect(out.recovered.chunks, `no worker chunk after ${out.recovered.tries} products`).toBeGreaterThan(0);
    expect(out.recovered.same).toBe(true);
  });

  it('a worker that dies at start: one thread from then on, until setCpuThreads asks again', () => {
    const out = runFixture<{
      firstSame: boolean; started: number;
      afterDeaths: { threads: number; workers: number; same: boolean };
      recovered: { threads: number; workers: number; chunks: number; tries: number; same: boolean };
    }>(new URL('./fixtures/workerDiesChild.ts', import.meta.url));
    // The pool of 3 started its two workers; the product ran on this thread, right.
    expect(out.started).toBe(2);
    expect(out.firstSame).toBe(true);
    // Once their deaths are known the pool is gone and one thread is reported and runs.
    expect(out.afterDeaths).toEqual({ threads: 1, workers: 0, same: true });
    // setCpuThreads(3) asks again: the workers live now and take part.
    expect(out.recovered.threads).toBe(3);
    expect(out.recovered.workers).toBe(2);
    expect(out.recovered.chunks, `no worker chunk after ${out.recovered.tries} products`).toBeGreaterThan(0);
    expect(out.recovered.same).toBe(true);
  });

  it('bundled with esbuild\'s keepNames: the workers run the rewritten code and compute', async () => {
    // As a user's build may bundle scorch: keepNames rewrites the functions the workers run from
    // their source text to call a __name helper the bundle defines and a worker lacks.
    const dir = mkdtempSync(join(tmpdir(), 'scorch-keep-names-'));
    try {
      const outfile = join(dir, 'child.mjs');
      await build({
        entryPoints: [fileURLToPath(new URL('./fixtures/workerKeepNamesChild.ts', import.meta.url))],
        outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', keepNames: true, logLevel: 'silent',
        alias: await workspaceAliases(),
      });
      const run = spawnSync(process.execPath, [outfile], { encoding: 'utf8', timeout: 120_000 });
      expect(run.status, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
        rewritten: boolean; threads: number; productChunks: number; rangeChunks: number; productSame: boolean; rowsSame: boolean;
      };
      expect(out.rewritten).toBe(true);
      expect(out).toEqual({ rewritten: true, threads: 2, productChunks: expect.any(Number), rangeChunks: expect.any(Number), productSame: true, rowsSame: true });
      expect(out.productChunks).toBeGreaterThan(0);
      expect(out.rangeChunks).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the default count', () => {
  it('counts a control group\'s CPU quota (a container\'s limit), rounded up; none where unset or unreadable', () => {
    const files = (entries: Record<string, string>) => (path: string) => entries[path] ?? null;
    const v2 = (text: string) => cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': text }));
    const v1 = (quota: string, period = '100000\n') => cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': quota, '/sys/fs/cgroup/cpu/cpu.cfs_period_us': period }));
    expect(v2('max 100000\n')).toBe(null);
    expect(v2('200000 100000\n')).toBe(2);
    expect(v2('150000 100000\n')).toBe(2);
    expect(v2('50000 100000\n')).toBe(1);
    // Up, not to the nearest: 1.4 cores is 2 threads and 2.1 is 3.
    expect(v2('140000 100000\n')).toBe(2);
    expect(v2('210000 100000\n')).toBe(3);
    expect(v2('')).toBe(null);
    expect(v1('-1\n')).toBe(null);
    expect(v1('300000\n')).toBe(3);
    expect(v1('250000\n', '100000')).toBe(3);
    expect(v1('100000', 'x')).toBe(null);
    expect(cgroupCpuQuota(() => null)).toBe(null);
    // cgroup v2's file wins where both are there (a hybrid mount).
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '100000 100000', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '400000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }))).toBe(1);
    // This process: at most the cores it may run on.
    expect(hardwareThreads()).toBeLessThanOrEqual(availableParallelism());
    expect(hardwareThreads()).toBeGreaterThanOrEqual(1);
  });
});

describe('setCpuThreads and setCpuWasm arguments', () => {
  it('show a refused value as it was passed (a string quoted, a bigint with its n) and change nothing', () => {
    setCpuThreads(undefined);
    const before = cpuKernelInfo().threads;
    // A count read from an environment variable or a command line is a string: the message must not make '4' look like 4.
    expect(() => setCpuThreads('4' as never)).toThrow(new TypeError('setCpuThreads: expected an integer from 1 to 256 (or undefined for the default), got "4"'));
    expect(() => setCpuThreads(4n as never)).toThrow(new TypeError('setCpuThreads: expected an integer from 1 to 256 (or undefined for the default), got 4n'));
    expect(() => setCpuThreads([4] as never)).toThrow(new TypeError('setCpuThreads: expected an integer from 1 to 256 (or undefined for the default), got [4]'));
    expect(() => setCpuThreads(null as never)).toThrow(new TypeError('setCpuThreads: expected an integer from 1 to 256 (or undefined for the default), got null'));
    for (const n of [0, -1, Number.NaN, 2.5, Infinity, 257, 1e9]) {
      expect(() => setCpuThreads(n)).toThrow(new RangeError(`setCpuThreads: expected an integer from 1 to 256 (or undefined for the default), got ${n}`));
    }
    expect(cpuKernelInfo().threads).toBe(before);
    expect(() => setCpuWasm('false' as never)).toThrow(new TypeError('setCpuWasm: expected true or false, got "false"'));
    expect(() => setCpuWasm(0 as never)).toThrow(new TypeError('setCpuWasm: expected true or false, got 0'));
    expect(cpuKernelInfo().matmul).toBe(WASM ? 'wasm-simd' : 'typescript');
  });
});
