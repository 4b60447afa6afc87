// The engines the suite compares, in table order, and how each one's worker is started. An
// engine that cannot run here still gets its row, saying why (its worker's hello, or the reason
// below when there is no worker to ask).

import type { PageEngine, PageThreads } from './engines/chromiumPage.js';
import type { CaseSpec } from './workloads.js';

export const ENGINE_IDS = [
  'scorch-cpu', 'scorch-cpu-threads', 'scorch-cpu-fastmath', 'scorch-cpu-chromium', 'scorch-cpu-chromium-threads', 'scorch-webgpu',
  'tfjs-cpu', 'tfjs-wasm', 'tfjs-webgpu',
  'jaxjs-wasm', 'jaxjs-webgpu', 'jaxjs-wasm-chromium', 'jaxjs-wasm-chromium-threads',
  'torch-cpu-1t', 'torch-cpu-default',
  'torch-cuda',
] as const;
export type EngineId = (typeof ENGINE_IDS)[number];

/** The engines whose worker is a Node process. */
export type NodeEngineId = Exclude<EngineId, 'torch-cpu-1t' | 'torch-cpu-default' | 'torch-cuda'>;

export interface EngineSpec {
  id: EngineId;
  /** Row label. */
  label: string;
  /** 'cpu' engines compute on the processor; 'gpu' ones through a GPU API (on this machine, llvmpipe). */
  kind: 'cpu' | 'gpu';
  /** Whether its first steps compile something (shaders, pipelines, a jit program). */
  compiles: boolean;
  worker: { runtime: 'node'; engine: NodeEngineId } | { runtime: 'python'; args: string[]; env: Record<string, string> };
  /** How the engine differs in method (the engines table shows it). */
  note?: string;
  /**
   * For an engine that computes in a page of headless Chromium driven by its Node worker
   * (engines/chromium.ts): which engine the page runs, on how many threads. Its WebAssembly
   * features, relaxed SIMD among them, are then the browser's, not Node's.
   */
  chromiumPage?: { engine: PageEngine; threads: PageThreads };
  /** Why the engine cannot run a case at all (a kernel it lacks), or undefined: its row is skipped with this reason. */
  cannot?: (spec: CaseSpec) => string | undefined;
  /**
   * Milliseconds the suite waits after each of its steps before the next engine's step, for an
   * engine whose idle threads keep a core busy after a step (benchmarks/NOTES.md), so the next
   * engine does not share the cores with them.
   */
  settleMs?: number;
  /**
   * Computes on its worker process's main thread alone (one thread, no pool doing the work): the
   * suite pins that thread to the core every such engine's is pinned to (pinning.ts).
   */
  oneThread?: true;
}

const TFJS_NOTE = 'no forward mode: SSM-VR is a double backward, ISM a replicated-batch VJP, the HVP reverse over reverse';
const JAXJS_NOTE = 'every step one jit-compiled function (Adam included)';

const CHROMIUM_PAGE = "bundled into a page that Debian's Chromium (headless, the e2e tests' browser) loads cross-origin isolated (COOP and COEP headers: SharedArrayBuffer and threads, unless the row hides them, and a 5 µs clock); relaxed SIMD is on there by default, unlike in Node 20. The step is timed inside the page.";
const CHROMIUM_NOTE = `The same code as scorch CPU, ${CHROMIUM_PAGE}`;
const JAXJS_CHROMIUM_NOTE = `The same code as jax-js wasm (jit), ${CHROMIUM_PAGE}`;
// Measured on the 2-core machine (runs of 2026-12-04): jax-js's first steps of W7's backward pass
// took 11–13 s in Chromium on one thread and 5.4–6.8 s with its workers (13 s in Node), over both
// modes' step limits (5 s, 1 s); finding that out again cost each run about 90 s.
const jaxjsChromiumCannot = (spec: CaseSpec): string | undefined =>
  spec.workload === 'conv' && spec.backward ? "its first steps of W7's backward took 11–13 s in Chromium on one thread and 5.4–6.8 s with its workers here, over both modes' step limits" : undefined;

const ONE_THREAD = { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };

export const ENGINES: Record<EngineId, EngineSpec> = {
  'scorch-cpu': { id: 'scorch-cpu', oneThread: true, compiles: false, label: 'scorch CPU', kind: 'cpu', worker: { runtime: 'node', engine: 'scorch-cpu' }, note: 'jit: each step one traced program run on the CPU backend: matmul and float32 elementwise kernels in WebAssembly SIMD, the rest generated JavaScript; one thread' },
  'scorch-cpu-threads': {
    id: 'scorch-cpu-threads',
    compiles: false,
    label: 'scorch CPU, default threads (extra)',
    kind: 'cpu',
    worker: { runtime: 'node', engine: 'scorch-cpu-threads' },
    note: 'An extra row: scorch CPU as a Node program gets it, its matmul and large elementwise kernels split across one worker thread per core (setCpuThreads), beside the single-threaded comparison.',
  },
  'scorch-cpu-fastmath': {
    id: 'scorch-cpu-fastmath',
    oneThread: true,
    compiles: false,
    label: 'scorch CPU, fast float32 math (extra)',
    kind: 'cpu',
    worker: { runtime: 'node', engine: 'scorch-cpu-fastmath' },
    // Not a limitation: these steps call none of the four functions, so the row would time scorch CPU's kernels again.
    cannot: (spec) => (spec.workload === 'matmul' || spec.workload === 'conv' ? 'its step calls no exp, log, log1p or sigmoid: the same kernels as scorch CPU' : undefined),
    note: "An extra row: scorch CPU with setCpuFastMath(true), one thread: float32 exp, log1p, log and sigmoid in float32 arithmetic, within 1 ulp of the correctly rounded value (sigmoid 2; FAST_MATH_ULPS, checked over every float32 input) instead of correctly rounded, the accuracy class of PyTorch's vectorised CPU kernels (SLEEF's 1-ulp functions). jax-js wasm's own exp is up to 17 ulps off and its softplus up to 16,383 (benchmarks/NOTES.md, stop 44).",
  },
  'scorch-cpu-chromium': {
    id: 'scorch-cpu-chromium',
    compiles: false,
    label: 'scorch CPU in Chromium (extra)',
    kind: 'cpu',
    worker: { runtime: 'node', engine: 'scorch-cpu-chromium' },
    chromiumPage: { engine: 'scorch', threads: 1 },
    note: `An extra row: scorch CPU as a web page gets it, one thread (the page hides SharedArrayBuffer before scorch starts, as on any page that is not cross-origin isolated: its kernels then copy their operands into a WebAssembly memory of their own instead of reading them in place). ${CHROMIUM_NOTE}`,
  },
  'scorch-cpu-chromium-threads': {
    id: 'scorch-cpu-chromium-threads',
    compiles: false,
    label: 'scorch CPU in Chromium, default threads (extra)',
    kind: 'cpu',
    worker: { runtime: 'node', engine: 'scorch-cpu-chromium-threads' },
    chromiumPage: { engine: 'scorch', threads: 'default' },
    note: `An extra row: scorch CPU as a web page gets it, its matmul and large elementwise kernels split across one Web Worker per core (at most 8). ${CHROMIUM_NOTE}`,
  },
  'scorch-webgpu': { id: 'scorch-webgpu', compiles: true, label: 'scorch WebGPU', kind: 'gpu', worker: { runtime: 'node', engine: 'scorch-webgpu' }, note: 'jit: each step one compiled program of fused WGSL kernels, one command buffer per call' },
  'tfjs-cpu': {
    id: 'tfjs-cpu', oneThread: true, compiles: false, label: 'TF.js cpu', kind: 'cpu', worker: { runtime: 'node', engine: 'tfjs-cpu' }, note: TFJS_NOTE,
    // Measured on the 2-core machine (tf.valueAndGrads of tf.conv2d at W7's size, alone): 77 s, of
    // which the weight gradient (Conv2DBackpropFilter) ~75 s; the forward pass alone 1.2 s.
    cannot: (spec) => (spec.workload === 'conv' && spec.backward ? 'its plain-JavaScript weight gradient (Conv2DBackpropFilter) took about 80 s for one step here, far over any step limit' : undefined),
  },
  'tfjs-wasm': {
    id: 'tfjs-wasm', oneThread: true, compiles: false, label: 'TF.js wasm', kind: 'cpu', worker: { runtime: 'node', engine: 'tfjs-wasm' }, note: TFJS_NOTE,
    cannot: (spec) => (spec.workload === 'conv' && spec.backward ? "TF.js wasm 4.22 registers no 'Conv2DBackpropFilter' kernel (the weight gradient)" : undefined),
  },
  'tfjs-webgpu': { id: 'tfjs-webgpu', compiles: true, label: 'TF.js webgpu', kind: 'gpu', worker: { runtime: 'node', engine: 'tfjs-webgpu' }, note: TFJS_NOTE },
  'jaxjs-wasm': { id: 'jaxjs-wasm', oneThread: true, compiles: true, label: 'jax-js wasm (jit)', kind: 'cpu', worker: { runtime: 'node', engine: 'jaxjs-wasm' }, note: JAXJS_NOTE },
  'jaxjs-webgpu': { id: 'jaxjs-webgpu', compiles: true, label: 'jax-js webgpu (jit)', kind: 'gpu', worker: { runtime: 'node', engine: 'jaxjs-webgpu' }, note: JAXJS_NOTE },
  'jaxjs-wasm-chromium': {
    id: 'jaxjs-wasm-chromium',
    compiles: true,
    label: 'jax-js wasm (jit) in Chromium (extra)',
    kind: 'cpu',
    worker: { runtime: 'node', engine: 'jaxjs-wasm-chromium' },
    chromiumPage: { engine: 'jaxjs', threads: 1 },
    cannot: jaxjsChromiumCannot,
    note: `An extra row, the peer of scorch CPU in Chromium: one thread (the page hides SharedArrayBuffer before jax-js starts, so its wasm backend computes on the page's thread, as on any page that is not cross-origin isolated; it has no thread setting). ${JAXJS_CHROMIUM_NOTE}`,
  },
  'jaxjs-wasm-chromium-threads': {
    id: 'jaxjs-wasm-chromium-threads',
    compiles: true,
    label: 'jax-js wasm (jit) in Chromium, its Web Workers (extra)',
    kind: 'cpu',
    worker: { runtime: 'node', engine: 'jaxjs-wasm-chromium-threads' },
    chromiumPage: { engine: 'jaxjs', threads: 'default' },
    cannot: jaxjsChromiumCannot,
    note: `An extra row, the peer of scorch CPU in Chromium at its default threads: jax-js's wasm backend with its pool of Web Workers (navigator.hardwareConcurrency of them), which it starts wherever SharedArrayBuffer and Worker exist. ${JAXJS_CHROMIUM_NOTE}`,
  },
  'torch-cpu-1t': {
    id: 'torch-cpu-1t',
    oneThread: true,
    compiles: false,
    label: 'PyTorch CPU, 1 thread',
    kind: 'cpu',
    worker: { runtime: 'python', args: ['--threads', '1', '--device', 'cpu'], env: ONE_THREAD },
    note: 'derivatives in x by a double backward (SSM-VR) and functorch vmap of jvp (exact ISM), the HVP reverse over reverse; torch (intra- and inter-op) and its BLAS (OpenBLAS here) on one thread',
  },
  'torch-cpu-default': {
    id: 'torch-cpu-default',
    compiles: false,
    label: 'PyTorch CPU, default threads (extra)',
    kind: 'cpu',
    worker: { runtime: 'python', args: ['--threads', 'default', '--device', 'cpu'], env: {} },
    note: 'An extra row: PyTorch with the threads it chooses itself (torch and OpenBLAS each size their pools), beside the single-threaded comparison.',
    // OpenBLAS's pthread workers busy-wait 2^28 cycles (its default THREAD_TIMEOUT, ~0.1 s on a
    // ~2.6 GHz core) after a call before sleeping: measured, the engine after this one in a round
    // ran its step on cores shared with them (W3 scorch WebGPU 14.3 ms against 9.6 without it).
    settleMs: 250,
  },
  'torch-cuda': { id: 'torch-cuda', compiles: true, label: 'PyTorch CUDA (NVIDIA GPU)', kind: 'gpu', worker: { runtime: 'python', args: ['--threads', 'default', '--device', 'cuda'], env: {} } },
};
