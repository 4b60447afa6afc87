// Which blocks the CPU's WebAssembly normal draws redo in JavaScript (src/cpu/wasm/wasmRandom.ts).
// wasmRandom.test.ts checks the drawn bits against fillRandom; that alone cannot see a redo put at
// the wrong place, because the module's value of an ambiguous block is almost always right
// already. Here fillRandomBlocks is wrapped to record each block redone, and every chunk's list of
// ambiguous blocks is recomputed with a separate instance of the module: the redone blocks must be
// exactly those, at their place in the whole output (chunk offset included).

import { describe, expect, it, vi } from 'vitest';
import { randomKey } from '@scorch/tensor';
import { CHUNK_GROUPS } from '../src/cpu/wasm/randomModule.js';
import { instantiate } from './randomReference.js';

const redoCalls: Array<[number, number]> = [];

vi.mock('../src/random.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../src/random.js')>();
  return {
    ...original,
    fillRandomBlocks: (...args: Parameters<typeof original.fillRandomBlocks>) => {
      redoCalls.push([args[3], args[4]]);
      original.fillRandomBlocks(...args);
    },
  };
});

describe('the WebAssembly normal draws\' redone blocks', () => {
  it('are the blocks the module flags in each chunk, at their place in the output', async () => {
    const { fillRandomCpu } = await import('../src/cpu/wasm/wasmRandom.js');
    const key = randomKey(2026);
    const n = 2 ** 20; // 128 chunks of CHUNK_GROUPS groups of sixteen values: no tail
    const groups = n / 16;
    redoCalls.length = 0;
    fillRandomCpu(new Float32Array(n), key, 'normal');
    // The tail call covers no block (n is a whole number of groups); every other call redoes one block.
    const redone = redoCalls.filter(([b0, b1]) => b1 > b0);
    for (const [b0, b1] of redone) expect(b1 - b0).toBe(1);

    const mod = instantiate();
    const flagged: number[] = [];
    for (let g0 = 0; g0 < groups; g0 += CHUNK_GROUPS) {
      const count = Math.min(CHUNK_GROUPS, groups - g0);
      mod.exports.philox(4 * g0, count, key[0], key[1]);
      const redo = mod.exports.normals(count);
      for (let i = 0; i < redo; i++) flagged.push(4 * g0 + mod.list[i]!);
    }
    expect(redone.map(([b0]) => b0)).toEqual(flagged);
    // About 32 expected (2^18 blocks, each ambiguous with probability about 4·2^−15), spread over
    // the chunks: most of them past the first.
    expect(flagged.length).toBeGreaterThan(8);
    expect(flagged.filter((b) => b >= 4 * CHUNK_GROUPS).length).toBeGreaterThan(flagged.length / 2);
  });
});
