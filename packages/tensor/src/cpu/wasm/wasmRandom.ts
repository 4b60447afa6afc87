// The CPU's random draws: float32 ones by the WebAssembly module of randomModule.ts where the engine
// has WebAssembly SIMD and the CPU's WebAssembly is on (setCpuWasm), else, and for float64, by
// random.ts's fillRandom. Both give the same bits (randomModule.ts).

import type { RandomKey } from '../../primitives.js';
import { fillRandom, fillRandomBlocks } from '../../random.js';
import { cpuWasmEnabled } from '../cpuMatmul.js';
import { noteWasmRefusal, wasmSimdSupported } from './features.js';
import { CHUNK_GROUPS, LIST_AT, OUT_AT, RANDOM_MEMORY_PAGES, type RandomModuleExports, randomModule } from './randomModule.js';

interface RandomInstance {
  readonly exports: RandomModuleExports;
  readonly values: Float32Array;
  readonly list: Int32Array;
}

/** The module's instance on this thread, made on first use; null where it cannot be made. */
let instance: RandomInstance | null | undefined;

function randomInstance(): RandomInstance | null {
  if (instance !== undefined) return instance;
  instance = null;
  if (!wasmSimdSupported()) return instance;
  try {
    const memory = new WebAssembly.Memory({ initial: RANDOM_MEMORY_PAGES, maximum: RANDOM_MEMORY_PAGES });
    const exports = new WebAssembly.Instance(new WebAssembly.Module(randomModule()), { env: { memory } }).exports as unknown as RandomModuleExports;
    instance = { exports, values: new Float32Array(memory.buffer, OUT_AT, 16 * CHUNK_GROUPS), list: new Int32Array(memory.buffer, LIST_AT, 4 * CHUNK_GROUPS) };
  } catch (e) {
    // Compilation refused (WebAssembly compilation turned off, or an old Chrome's limit on
    // synchronous compilation on the main thread) or no memory: fillRandom.
    noteWasmRefusal('the normal draws\' module', e);
    instance = null;
  }
  return instance;
}

let redone = 0;

/** Bytes of the module's memory: 0 until a draw first runs in WebAssembly (memoryStats().kernelMemoryBytes counts them). */
export function randomMemoryBytes(): number {
  return instance ? RANDOM_MEMORY_PAGES * 65536 : 0;
}

/** Blocks the normal draws' exact path has redone in JavaScript on this thread (the tests count them). */
export function randomBlocksRedone(): number {
  return redone;
}

/**
 * Fills `out` as fillRandom does (uniform [0, 1) or standard normal values for `key`, the same bits):
 * float32 arrays of whole groups of sixteen values by WebAssembly, the rest by fillRandom.
 */
export function fillRandomCpu(out: Float32Array | Float64Array, key: RandomKey, distribution: 'uniform' | 'normal'): void {
  const groups = Math.floor(out.length / 16);
  const wasm = out instanceof Float32Array && groups > 0 && cpuWasmEnabled() ? randomInstance() : null;
  if (!wasm) {
    fillRandom(out, key, distribution);
    return;
  }
  // Counters stay below 2^32: a Float32Array has fewer than 2^34 elements.
  const { exports, values, list } = wasm;
  for (let g0 = 0; g0 < groups; g0 += CHUNK_GROUPS) {
    const count = Math.min(CHUNK_GROUPS, groups - g0);
    exports.philox(4 * g0, count, key[0], key[1]);
    let redo = 0;
    if (distribution === 'normal') redo = exports.normals(count);
    else exports.uniforms(count);
    out.set(values.subarray(0, 16 * count), 16 * g0);
    for (let i = 0; i < redo; i++) {
      const b = 4 * g0 + list[i]!;
      fillRandomBlocks(out, key, distribution, b, b + 1);
    }
    redone += redo;
  }
  fillRandomBlocks(out, key, distribution, 4 * groups, Math.ceil(out.length / 4));
}
