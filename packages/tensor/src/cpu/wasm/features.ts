// What this JavaScript engine offers the CPU kernels, found by asking it rather than by sniffing
// versions: WebAssembly SIMD128 (Node 16.4+, every current browser), relaxed SIMD (Chrome 114+;
// behind --experimental-wasm-relaxed-simd in Node 20), a shared WebAssembly.Memory (needs
// SharedArrayBuffer: Node, or a cross-origin-isolated page) and workers. Each answer is computed
// once.

import { type FunctionBody, ModuleBuilder, V128 } from './assembler.js';

let simd: boolean | undefined;
let relaxed: boolean | undefined;

/** A module with one function (v128, v128, v128) → v128 built from `body`. */
function validates(body: (f: FunctionBody) => void): boolean {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.validate !== 'function') return false;
  const m = new ModuleBuilder();
  m.func('f', [V128, V128, V128], [V128], body);
  try {
    return WebAssembly.validate(m.encode());
  } catch {
    return false;
  }
}

/** Whether WebAssembly with 128-bit SIMD (f32x4 arithmetic, splat loads) is available. */
export function wasmSimdSupported(): boolean {
  simd ??= validates((f) => f.get(0).get(1).f32x4Mul().get(2).f32x4Add());
  return simd;
}

/** Whether relaxed SIMD's fused multiply-add (f32x4.relaxed_madd) is available. */
export function wasmRelaxedSimdSupported(): boolean {
  relaxed ??= wasmSimdSupported() && validates((f) => f.get(0).get(1).get(2).f32x4RelaxedMadd());
  return relaxed;
}

let refusals = 0;
let lastRefusal: string | null = null;

/**
 * Records that the engine would not make one of the kernels' modules (or an instance or memory for
 * it), whose kernels then run the TypeScript path. Engines refuse synchronous compilation of large
 * modules on a page's main thread (Chrome: over 4 KB in older versions, over 8 MB now; a RangeError),
 * a memory where address space is short (a RangeError), and every module where WebAssembly
 * compilation is turned off (a CompileError). (A page's Content-Security-Policy does not cause
 * this alone: 'unsafe-eval', which the CPU backend's generated JavaScript needs, allows
 * WebAssembly too.) In Node none of these happens, so a refusal there is a module the generator
 * got wrong: the tests check that none occurs. `what` names the module.
 */
export function noteWasmRefusal(what: string, error: unknown): void {
  refusals++;
  lastRefusal = `${what}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
}

/** The refusals noted on this thread so far (noteWasmRefusal), and the last one's message. */
export function wasmRefusals(): { count: number; last: string | null } {
  return { count: refusals, last: lastRefusal };
}

/** Whether a WebAssembly.Memory can be shared with workers (SharedArrayBuffer is usable). */
export function sharedMemorySupported(): boolean {
  if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') return false;
  // In a browser, SharedArrayBuffer exists only when cross-origin isolated; be explicit anyway.
  const g = globalThis as { crossOriginIsolated?: boolean };
  return g.crossOriginIsolated !== false;
}
