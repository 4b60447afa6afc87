// The CPU's float32 random draws in WebAssembly (src/cpu/wasm/randomModule.ts, wasmRandom.ts)
// against random.ts's fillRandom, the reference every backend's stream layout is defined by:
// equal bits, value for value. The module is checked directly on words chosen to reach each case
// (the exact path's domain, the angles nearest multiples of π/2, every 24-bit uniform of r and of
// θ), and through fillRandomCpu and randn on whole draws, chunk edges and tails included.

import { describe, expect, it } from 'vitest';
import { randn, randomKey, setCpuThreads, setCpuWasm, tidy } from '@scorch/tensor';
import { fillRandom, philox4x32 } from '../src/random.js';
import { CHUNK_GROUPS } from '../src/cpu/wasm/randomModule.js';
import { fillRandomCpu, randomBlocksRedone, randomMemoryBytes } from '../src/cpu/wasm/wasmRandom.js';
import { checkNormals, firstDifference, instantiate } from './randomReference.js';

// First in the file: no draw has run in WebAssembly on this thread yet (each test file has its own modules).
describe('the WebAssembly draws\' memory', () => {
  it('is 0 until a draw runs in WebAssembly: a draw shorter than a group of sixteen is JavaScript\'s', () => {
    expect(randomMemoryBytes()).toBe(0);
    fillRandomCpu(new Float32Array(15), randomKey(1), 'normal');
    expect(randomMemoryBytes()).toBe(0);
    fillRandomCpu(new Float32Array(16), randomKey(1), 'normal');
    expect(randomMemoryBytes()).toBeGreaterThan(0);
  });
});

describe('the WebAssembly random module', () => {
  it('computes the Philox words of random.ts, counters up to 2^32 − 1', () => {
    const mod = instantiate();
    const words = new Uint32Array(4);
    for (const [first, k0, k1] of [[0, 0, 0], [12345, 0xdeadbeef, 0x01234567], [2 ** 32 - 16, 0xffffffff, 0xffffffff], [7 * 2 ** 20, 42, 7]] as const) {
      mod.exports.philox(first, 4, k0, k1);
      for (let b = 0; b < 16; b++) {
        philox4x32((first + b) >>> 0, 0, 0, 0, k0, k1, words);
        const g = b >> 2, q = b & 3;
        expect([0, 1, 2, 3].map((j) => mod.words[16 * g + 4 * j + q])).toEqual(Array.from(words));
      }
    }
    // Random123's known answer for counter 0 and key 0 (philox4x32-10).
    mod.exports.philox(0, 1, 0, 0);
    expect([0, 1, 2, 3].map((j) => mod.words[4 * j]!.toString(16))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
  });

  it('converts words to float32 uniforms exactly', () => {
    const mod = instantiate();
    const cases = [0, 255, 256, 0xffffffff, 0x80000000, 0x12345678, 0xffffff00, 1 << 8];
    for (let i = 0; i < 16; i++) mod.words[i] = cases[i % cases.length]!;
    mod.exports.uniforms(1);
    for (let q = 0; q < 4; q++) for (let j = 0; j < 4; j++) expect(mod.out[4 * q + j]).toBe((mod.words[4 * j + q]! >>> 8) * 2 ** -24);
  });

  it('sends u₁ = 0 (r = 0, its zero signed by cos θ) and u₂ = 0 (θ = 0) to the exact path, and only those blocks', () => {
    const mod = instantiate();
    const pairs: [number, number][] = [[0, 12345], [2 ** 23, 0], [0, 0], [1, 1], [2 ** 24 - 1, 2 ** 24 - 1], [0, 3 * 2 ** 22 + 1], [2 ** 20, 2 ** 22], [5, 2 ** 23]];
    const { listed } = checkNormals(mod, pairs.length, (i) => pairs[i]!);
    // Pairs 0 and 1 share block 0, 2 and 3 block 1, 4 and 5 block 2, 6 and 7 block 3.
    expect([...listed].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('matches fillRandom at the angles nearest π/2, π and 3π/2, where cos or sin is tiny', () => {
    const mod = instantiate();
    const pairs: [number, number][] = [];
    for (const m2 of [2 ** 22, 2 ** 23, 3 * 2 ** 22]) for (let d = -8; d <= 8; d++) for (const m1 of [1, 77777, 2 ** 23, 2 ** 24 - 1]) pairs.push([m1, m2 + d]);
    const { listed, compared } = checkNormals(mod, pairs.length, (i) => pairs[i]!);
    expect(compared + 2 * listed.size).toBe(2 * pairs.length);
    expect(compared).toBeGreaterThan(2 * pairs.length - 16);
  });

  it('matches fillRandom for every 24-bit uniform of θ, and of r', () => {
    // Each factor of z = r·cos θ over all its 2^24 inputs, the other fixed: the bounds of the
    // logarithm and of the sine and cosine, and the window, hold at every input. (Five values
    // of the other: `node scripts/run.mjs scripts/exhaustiveRandom.ts`.)
    const mod = instantiate();
    const count = 2 ** 24;
    for (const pairAt of [(i: number) => [2 ** 23 + 12345, i] as const, (i: number) => [i, 77] as const]) {
      const { listed, compared } = checkNormals(mod, count, pairAt);
      // Listed: u = 0 once, and the ambiguous (about 2^−13 of the blocks, each holding two pairs).
      expect(listed.size).toBeLessThan(count / 2 ** 10);
      expect(compared + 2 * listed.size).toBe(2 * count);
    }
  }, 60_000);
});

describe('fillRandomCpu', () => {
  it('gives fillRandom\'s bits for float32 uniforms and normals of any length, across chunks', () => {
    for (const seed of [0, 1, 99, 2 ** 40 + 3]) {
      const key = randomKey(seed);
      for (const n of [1, 15, 16, 17, 63, 64, 65, 2048, 16 * CHUNK_GROUPS - 1, 16 * CHUNK_GROUPS, 16 * CHUNK_GROUPS + 17, 3 * 16 * CHUNK_GROUPS + 5]) {
        for (const distribution of ['uniform', 'normal'] as const) {
          const want = new Float32Array(n);
          const got = new Float32Array(n);
          fillRandom(want, key, distribution);
          fillRandomCpu(got, key, distribution);
          expect(firstDifference(got, want), `${distribution} ${n} for seed ${seed}`).toBeNull();
        }
      }
    }
  });

  it('redoes the ambiguous blocks in JavaScript, with fillRandom\'s bits', () => {
    const n = 2 ** 20;
    const before = randomBlocksRedone();
    const want = new Float32Array(n);
    const got = new Float32Array(n);
    fillRandom(want, randomKey(2026), 'normal');
    fillRandomCpu(got, randomKey(2026), 'normal');
    // 2^18 blocks, each ambiguous with probability about 4·2^−15: ~32 expected.
    const redone = randomBlocksRedone() - before;
    expect(redone).toBeGreaterThan(8);
    expect(redone).toBeLessThan(128);
    expect(firstDifference(got, want)).toBeNull();
  });

  it('leaves float64 draws to fillRandom', () => {
    const want = new Float64Array(1001);
    const got = new Float64Array(1001);
    fillRandom(want, randomKey(5), 'normal');
    fillRandomCpu(got, randomKey(5), 'normal');
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  it('gives randn the same values with the CPU\'s WebAssembly on and off, on one thread and on two', () => {
    const draw = () => tidy(() => Array.from(randn([1000, 7], { key: randomKey(11) }).dataSync()));
    const on = draw();
    setCpuWasm(false);
    try {
      expect(draw()).toEqual(on);
    } finally {
      setCpuWasm(true);
    }
    setCpuThreads(2);
    try {
      expect(draw()).toEqual(on);
    } finally {
      setCpuThreads(undefined);
    }
    const reference = new Float32Array(7000);
    fillRandom(reference, randomKey(11), 'normal');
    expect(on).toEqual(Array.from(reference));
  });
});

describe('the WebAssembly module\'s list of blocks for the exact path', () => {
  it('holds a block whose only zero is u₂ (θ = 0), and blocks past the first group as g·4 + lane', () => {
    const mod = instantiate();
    // 24 pairs: three groups of four blocks of two pairs (pair i: group i >> 3, block (i >> 1) & 3),
    // all (2^22 + 3, 2^21 + 5) but three.
    const pairs = Array.from({ length: 24 }, (): [number, number] => [2 ** 22 + 3, 2 ** 21 + 5]);
    pairs[2] = [2 ** 23, 0]; // group 0, block 1: u₂ = 0 alone
    pairs[13] = [0, 77]; // group 1, block 2 (block 6 of the chunk): u₁ = 0
    pairs[23] = [12345, 0]; // group 2, block 3 (block 11): u₂ = 0
    const { listed } = checkNormals(mod, pairs.length, (i) => pairs[i]!);
    // A listed block lists both of its pairs.
    expect([...listed].sort((a, b) => a - b)).toEqual([2, 3, 12, 13, 22, 23]);
  });
});
