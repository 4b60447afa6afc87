// Workers of the CPU pool start asynchronously: the first threaded products or kernels may finish
// on the calling thread before any worker is up. Tests that must see the workers take part repeat
// their work (bounded) until a worker has computed a chunk. No vitest here: a child-process
// fixture (fixtures/rangeThreadsChild.ts) uses it too, so callers make the assertion.

import { rangeRerunsForTesting } from '../src/cpu/rangeThreads.js';
import { wasmThreadStats } from '../src/cpu/wasm/wasmMatmul.js';

/**
 * Calls `step` at least once, and again until a worker has computed a chunk or `ms` milliseconds
 * have passed. Returns the calls made (`tries`), the chunks workers computed meanwhile (`chunks`;
 * 0 means none took part: the caller's assertion, with `tries` in its message), and the split
 * kernels rerun on the calling thread because a chunk threw (`reruns`; where no index is out of
 * range, anything but 0 is a worker failure the rerun hid).
 */
export function untilWorkerChunk(step: () => void, ms = 20_000): { tries: number; chunks: number; reruns: number } {
  const before = wasmThreadStats().workerChunks;
  const rerunsBefore = rangeRerunsForTesting();
  const deadline = Date.now() + ms;
  let tries = 0;
  do {
    step();
    tries++;
  } while (wasmThreadStats().workerChunks === before && Date.now() < deadline);
  return { tries, chunks: wasmThreadStats().workerChunks - before, reruns: rangeRerunsForTesting() - rerunsBefore };
}
