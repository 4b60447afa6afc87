// The CPU's WebAssembly random module (src/cpu/wasm/randomModule.ts) run on chosen words, and
// fillRandom's normal pair computed as it computes it: shared by wasmRandom.test.ts and
// scripts/exhaustiveRandom.ts.

import { CHUNK_GROUPS, LIST_AT, OUT_AT, RANDOM_MEMORY_PAGES, type RandomModuleExports, WORDS_AT, randomModule } from '../src/cpu/wasm/randomModule.js';

/** A fresh instance of the module on a memory of its own, with views of its words, values and list. */
export function instantiate(): { exports: RandomModuleExports; words: Uint32Array; out: Float32Array; list: Int32Array } {
  const memory = new WebAssembly.Memory({ initial: RANDOM_MEMORY_PAGES });
  const exports = new WebAssembly.Instance(new WebAssembly.Module(randomModule()), { env: { memory } }).exports as unknown as RandomModuleExports;
  return {
    exports,
    words: new Uint32Array(memory.buffer, WORDS_AT, 16 * CHUNK_GROUPS),
    out: new Float32Array(memory.buffer, OUT_AT, 16 * CHUNK_GROUPS),
    list: new Int32Array(memory.buffer, LIST_AT, 4 * CHUNK_GROUPS),
  };
}

/**
 * The first index where two float32 arrays differ in their bits, described, or null where they
 * agree everywhere (a short message rather than a diff of a million elements).
 */
export function firstDifference(got: Float32Array, want: Float32Array): string | null {
  if (got.length !== want.length) return `lengths ${got.length} and ${want.length}`;
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++) if (g[i] !== w[i]) return `element ${i}: ${got[i]} against ${want[i]}`;
  return null;
}

/** fillRandom's float32 normal pair from the 24-bit uniforms m1 (r) and m2 (θ), as it computes it. */
export function referencePair(m1: number, m2: number): [number, number] {
  const r = Math.sqrt(-2 * Math.log(1 - m1 * 2 ** -24));
  const theta = 2 * Math.PI * (m2 * 2 ** -24);
  return [Math.fround(r * Math.cos(theta)), Math.fround(r * Math.sin(theta))];
}

/**
 * Runs the module's normals on `count` pairs (m1, m2) = pairAt(i) of 24-bit uniforms (words m << 8),
 * eight pairs a group (block q of the group: pair 0 in words 0, 1, pair 1 in words 2, 3), and checks
 * every value of every block it does not list for the exact path against referencePair. Returns the
 * listed blocks' pairs (indices i) and the count of values compared.
 */
export function checkNormals(mod: ReturnType<typeof instantiate>, count: number, pairAt: (i: number) => readonly [number, number]): { listed: Set<number>; compared: number } {
  const listed = new Set<number>();
  let compared = 0;
  const perChunk = 8 * CHUNK_GROUPS;
  for (let p0 = 0; p0 < count; p0 += perChunk) {
    const n = Math.min(perChunk, count - p0);
    const groups = Math.ceil(n / 8);
    // Pair i of the chunk: group i >> 3, block (i >> 1) & 3, pair i & 1. Unused slots get u = 1/2.
    for (let i = 0; i < 8 * groups; i++) {
      const [m1, m2] = i < n ? pairAt(p0 + i) : [2 ** 23, 2 ** 23];
      const g = i >> 3, q = (i >> 1) & 3, pair = i & 1;
      mod.words[16 * g + 4 * (2 * pair) + q] = m1 * 256;
      mod.words[16 * g + 4 * (2 * pair + 1) + q] = m2 * 256;
    }
    const redo = mod.exports.normals(groups);
    const redoBlocks = new Set(Array.from(mod.list.subarray(0, redo)));
    for (let i = 0; i < n; i++) {
      const g = i >> 3, q = (i >> 1) & 3, pair = i & 1;
      if (redoBlocks.has(4 * g + q)) {
        listed.add(p0 + i);
        continue;
      }
      const [m1, m2] = pairAt(p0 + i);
      const [want0, want1] = referencePair(m1, m2);
      const got0 = mod.out[16 * g + 4 * q + 2 * pair]!;
      const got1 = mod.out[16 * g + 4 * q + 2 * pair + 1]!;
      if (!Object.is(got0, want0) || !Object.is(got1, want1)) {
        throw new Error(`pair (${m1}, ${m2}): got ${got0}, ${got1}; fillRandom gives ${want0}, ${want1}`);
      }
      compared += 2;
    }
  }
  return { listed, compared };
}
