// The page side of the Chromium engines (chromium.ts): an engine's own code (scorch.ts or jaxjs.ts,
// what the Node rows run) bundled into a browser page, driven by the engine's worker process through
// `window.benchPage`. The inputs come from the worker's server as one bundle (inputs.ts); a step is
// timed here, in the page, so the round trip from the worker to the page is not in the figure.
// The page is always cross-origin isolated: its clock then has 5 µs steps instead of 100 µs. For
// one thread it hides SharedArrayBuffer before the engine starts, as a page without COOP/COEP has none.

import { wasmRelaxedSimdSupported } from '../../../packages/tensor/src/cpu/wasm/features.js';
import { decodeInputs } from '../inputs.js';
import type { HelloResult } from '../protocol.js';
import type { CaseSpec } from '../workloads.js';
import type { Engine, PreparedCase } from './engine.js';
import { jaxjsEngine } from './jaxjs.js';
import { scorchEngine } from './scorch.js';

/** The engines a page runs: scorch's CPU backend, or jax-js's wasm backend (jit). */
export type PageEngine = 'scorch' | 'jaxjs';

/**
 * Threads: one, or the engine's default. scorch's default is one thread per core, at most 8;
 * jax-js's wasm backend makes a pool of navigator.hardwareConcurrency Web Workers when
 * SharedArrayBuffer exists.
 */
export type PageThreads = 1 | 'default';

export interface BenchPage {
  /** Starts `engine` with `threads`; unavailable on a page that is not cross-origin isolated. */
  hello(engine: PageEngine, threads: PageThreads): Promise<HelloResult>;
  /** Builds the case from the input bundle at `inputsUrl` (the previous case is released first). */
  prepare(spec: CaseSpec, inputsUrl: string): Promise<void>;
  value(): Promise<number[]>;
  /** One step, timed in the page, ms. */
  step(): Promise<number>;
  release(): void;
}

declare global {
  interface Window {
    benchPage: BenchPage;
  }
}

let engine: Engine | undefined;
let prepared: PreparedCase | undefined;

function current(): PreparedCase {
  if (!prepared) throw new Error('benchPage: no case prepared (prepare comes first)');
  return prepared;
}

window.benchPage = {
  async hello(which, threads) {
    // Without isolation a page has no SharedArrayBuffer: the engine would run on one thread, and a
    // row labelled with the default threads would not be what it says.
    if (!crossOriginIsolated) return { available: false, reason: 'the page is not cross-origin isolated (its server sent no COOP/COEP headers)' };
    const page = { crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency };
    // A property of the browser's WebAssembly, whichever engine asks (scorch's feature test, which
    // only validates a module: on jax-js's page nothing of scorch's starts).
    const relaxedSimd = wasmRelaxedSimdSupported();
    // One thread is what a page without COOP/COEP headers gets, so the one-thread rows run as on
    // such a page: SharedArrayBuffer hidden before the engine starts (the page stays isolated for
    // its clock: 5 µs steps instead of 100 µs). jax-js then computes on the page's thread; scorch
    // has no heap (cpuKernelInfo().heap 'none'): its kernels copy their operands.
    if (threads === 1) delete (globalThis as { SharedArrayBuffer?: unknown }).SharedArrayBuffer;
    if (which === 'scorch') {
      engine = scorchEngine('cpu', threads === 'default' ? { threads: 'default' } : {});
      const hello = await engine.hello();
      if (!hello.available) return hello;
      return { ...hello, relaxedSimd, details: { ...hello.details, ...page } };
    }
    // jax-js's wasm backend takes its Web Workers when SharedArrayBuffer and Worker exist (its
    // hasSharedArrayBuffer, checked once, when its backend starts), and has no thread setting.
    engine = jaxjsEngine('wasm');
    const hello = await engine.hello();
    if (!hello.available) return hello;
    const pool = typeof SharedArrayBuffer === 'undefined' ? 1 : Math.max(1, navigator.hardwareConcurrency || 4);
    if ((threads === 1) !== (pool === 1)) return { available: false, reason: `asked for ${threads} thread(s), jax-js would use ${pool}` };
    return { ...hello, threads: pool, relaxedSimd, details: { ...hello.details, ...page, webWorkers: pool > 1 ? pool : 0 } };
  },
  async prepare(spec, inputsUrl) {
    prepared?.dispose();
    prepared = undefined;
    const response = await fetch(inputsUrl);
    if (!response.ok) throw new Error(`benchPage: fetching the inputs at ${inputsUrl} gave HTTP ${response.status}`);
    const inputs = decodeInputs(new Uint8Array(await response.arrayBuffer()));
    if (!engine) throw new Error('benchPage: no engine started (hello comes first)');
    prepared = await engine.prepare(spec, inputs);
  },
  value: () => current().value(),
  async step() {
    const run = current();
    const start = performance.now();
    await run.step();
    return performance.now() - start;
  },
  release() {
    prepared?.dispose();
    prepared = undefined;
  },
};
