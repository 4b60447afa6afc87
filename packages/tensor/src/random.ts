// Counter-based random numbers: Philox 4x32-10 (Salmon et al., "Parallel random numbers: as
// easy as 1, 2, 3", SC 2011). The same key and counter give the same bits on every backend; the
// WGSL kernel implements the identical function. Keys are two 32-bit words held on the host,
// so drawing numbers never reads device memory.

import type { RandomKey } from './primitives.js';
import { showValue } from '@scorch/options';

/** Philox 4x32's first round multiplier (Salmon et al., the published constants). */
export const PHILOX_M0 = 0xd2511f53;
/** Philox 4x32's second round multiplier (Salmon et al.). */
export const PHILOX_M1 = 0xcd9e8d57;
/** Philox 4x32's first Weyl key increment (the golden ratio's, Salmon et al.). */
export const PHILOX_W0 = 0x9e3779b9;
/** Philox 4x32's second Weyl key increment (√3 − 1's, Salmon et al.). */
export const PHILOX_W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 values. */
function mulhi(a: number, b: number): number {
  const aHi = a >>> 16;
  const aLo = a & 0xffff;
  const bHi = b >>> 16;
  const bLo = b & 0xffff;
  const lolo = aLo * bLo;
  const hilo = aHi * bLo;
  const lohi = aLo * bHi;
  const cross = (lolo >>> 16) + (hilo & 0xffff) + (lohi & 0xffff);
  return (aHi * bHi + (hilo >>> 16) + (lohi >>> 16) + (cross >>> 16)) >>> 0;
}

/** Philox 4x32 with 10 rounds: one 128-bit counter block to four uint32 words, written to `out`. */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array, at = 0): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 = (k0 + PHILOX_W0) >>> 0;
    k1 = (k1 + PHILOX_W1) >>> 0;
  }
  out[at] = c0;
  out[at + 1] = c1;
  out[at + 2] = c2;
  out[at + 3] = c3;
}

/**
 * The stream layout shared by all backends: element i of a float32 uniform draw is word i % 4 of
 * block ⌊i/4⌋ (counter [block mod 2³², ⌊block/2³²⌋, 0, 0]: a 64-bit block index, so no draw
 * repeats itself; WebGPU buffers stay far below 2³² blocks and its kernels count in one word);
 * float64 uses two words per element; normals use Box–Muller on consecutive uniform pairs (see
 * `fillRandom`).
 */
export const RANDOM_LAYOUT = 'philox4x32-10/v1';

/** 2π as Box–Muller's angle uses it (the WebAssembly draws multiply by the same double). */
export const TWO_PI = 2 * Math.PI;
const TWO_M24 = 2 ** -24;
const TWO_M53 = 2 ** -53;

/**
 * Fills `out` (float32 or float64 storage) with uniform [0, 1) or standard normal values for
 * `key`. Float32 uniforms are the top 24 bits of a word times 2⁻²⁴; float64 uniforms use 53 bits
 * of two words. A normal pair (z₀, z₁) = r(cos 2πu₂, sin 2πu₂), r = √(−2 ln(1 − u₁)).
 */
export function fillRandom(out: Float32Array | Float64Array, key: RandomKey, distribution: 'uniform' | 'normal'): void {
  fillRandomBlocks(out, key, distribution, 0, Math.ceil(out.length / (out instanceof Float64Array ? 2 : 4)));
}

/**
 * fillRandom's values of blocks [b0, b1) only (block b: elements perBlock·b … perBlock·b +
 * perBlock − 1, perBlock = 4 for float32 and 2 for float64, those below out.length): the reference
 * that the CPU's WebAssembly draws (cpu/wasm/wasmRandom.ts) fall back on, block by block.
 */
export function fillRandomBlocks(out: Float32Array | Float64Array, key: RandomKey, distribution: 'uniform' | 'normal', b0: number, b1: number): void {
  if (b0 >= b1) return; // the WebAssembly draws' usual tail: nothing left, nothing to allocate
  const n = out.length;
  const words = new Uint32Array(4);
  const f64 = out instanceof Float64Array;
  const perBlock = f64 ? 2 : 4; // uniform values per 128-bit block
  const u = new Float64Array(perBlock);
  for (let b = b0; b < b1; b++) {
    philox4x32(b >>> 0, Math.floor(b / 2 ** 32), 0, 0, key[0], key[1], words);
    if (f64) {
      u[0] = ((words[0]! >>> 5) * 67108864 + (words[1]! >>> 6)) * TWO_M53;
      u[1] = ((words[2]! >>> 5) * 67108864 + (words[3]! >>> 6)) * TWO_M53;
    } else {
      for (let j = 0; j < 4; j++) u[j] = (words[j]! >>> 8) * TWO_M24;
    }
    const base = b * perBlock;
    if (distribution === 'uniform') {
      for (let j = 0; j < perBlock && base + j < n; j++) out[base + j] = u[j]!;
    } else {
      for (let j = 0; j < perBlock; j += 2) {
        const r = Math.sqrt(-2 * Math.log(1 - u[j]!));
        const theta = TWO_PI * u[j + 1]!;
        if (base + j < n) out[base + j] = r * Math.cos(theta);
        if (base + j + 1 < n) out[base + j + 1] = r * Math.sin(theta);
      }
    }
  }
}

// Keys made by this module are branded, so `jit` can tell a key argument (an input of the
// compiled program: a new key per call is no retrace) from an array of two numbers. Keys of the
// default stream carry a second brand: a traced function cannot use them (they would freeze).
const madeKeys = new WeakSet<object>();
const streamKeys = new WeakSet<object>();

function made(key: RandomKey): RandomKey {
  madeKeys.add(key);
  return key;
}

/** True for keys made by randomKey, splitKey, foldIn (or the default stream). */
export function isRandomKey(value: unknown): value is RandomKey {
  return typeof value === 'object' && value !== null && madeKeys.has(value);
}

/** True for keys drawn from the seeded default stream (random calls without a key). */
export function isStreamKey(key: RandomKey): boolean {
  return streamKeys.has(key);
}

/**
 * Observes key derivations while a function is traced for `jit`, so keys derived from a key
 * argument become host-side derivations of the program rather than constants.
 */
export interface KeyObserver {
  derived(kind: 'foldIn', input: RandomKey, out: RandomKey, data: number): void;
  derived(kind: 'split', input: RandomKey, out: RandomKey, data: number, count: number): void;
}

let keyObserver: KeyObserver | null = null;

/** Runs `fn` with `observer` told of every foldIn and splitKey. */
export function withKeyObserver<T>(observer: KeyObserver, fn: () => T): T {
  const saved = keyObserver;
  keyObserver = observer;
  try {
    return fn();
  } finally {
    keyObserver = saved;
  }
}

/** A fresh key object with the same words as `key` (a distinct identity for a traced key argument). */
export function copyKey(key: RandomKey): RandomKey {
  return made([key[0], key[1]]);
}

/** Throws a TypeError naming `where` unless `key` is a `RandomKey`: two unsigned 32-bit integers. */
function checkKey(key: unknown, where: string): asserts key is RandomKey {
  // Both words by index: `every` skips the holes of a sparse array (new Array(2)), whose missing
  // words each backend would read differently.
  const isWord = (w: unknown) => Number.isInteger(w) && (w as number) >= 0 && (w as number) <= 0xffffffff;
  if (!Array.isArray(key) || key.length !== 2 || !isWord(key[0]) || !isWord(key[1])) {
    throw new TypeError(`${where}: a key is two unsigned 32-bit integers [k0, k1] (from randomKey or splitKey), got ${showValue(key)}`);
  }
}

/** Throws a TypeError naming `where` unless `seed` is a non-negative safe integer. */
function checkSeed(seed: unknown, where: string): asserts seed is number {
  if (!Number.isSafeInteger(seed) || (seed as number) < 0) throw new TypeError(`${where}: seed must be a non-negative safe integer, got ${showValue(seed)}`);
}

/** A key from an integer seed, 0 to 2⁵³ − 1: words [seed mod 2³², ⌊seed / 2³²⌋]. */
export function randomKey(seed: number): RandomKey {
  checkSeed(seed, 'randomKey');
  return made([seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0]);
}

/**
 * The keys of `splitKey(key, n)` for a literal n from 1 to 8: a tuple of n keys, so each one of
 * `const [a, b] = splitKey(key)` is a `RandomKey` (not `RandomKey | undefined`).
 */
export interface SplitKeys {
  1: [RandomKey];
  2: [RandomKey, RandomKey];
  3: [RandomKey, RandomKey, RandomKey];
  4: [RandomKey, RandomKey, RandomKey, RandomKey];
  5: [RandomKey, RandomKey, RandomKey, RandomKey, RandomKey];
  6: [RandomKey, RandomKey, RandomKey, RandomKey, RandomKey, RandomKey];
  7: [RandomKey, RandomKey, RandomKey, RandomKey, RandomKey, RandomKey, RandomKey];
  8: [RandomKey, RandomKey, RandomKey, RandomKey, RandomKey, RandomKey, RandomKey, RandomKey];
}

/**
 * `n` (default 2) independent keys derived from `key` (Philox of counter [i, 0, 0, 1] under
 * `key`): key i depends only on i, so `splitKey(key, 2)` is the first two of `splitKey(key, 3)`.
 * Typed as a tuple of n keys for the default and a literal n up to 8; an array otherwise.
 */
export function splitKey(key: RandomKey): SplitKeys[2];
export function splitKey<N extends keyof SplitKeys>(key: RandomKey, n: N): SplitKeys[N];
export function splitKey(key: RandomKey, n?: number): RandomKey[];
export function splitKey(key: RandomKey, n = 2): RandomKey[] {
  checkKey(key, 'splitKey');
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`splitKey: n must be a positive integer, got ${showValue(n)}`);
  if (n > 0xffffffff) throw new RangeError(`splitKey: n must be at most 4294967295 (key i uses a 32-bit counter; past it keys would repeat), got ${n}`);
  const words = new Uint32Array(4);
  return Array.from({ length: n }, (_, i) => splitOne(key, i, n, words));
}

/** Key i of n split from `key` (checked by the caller): Philox block [i, 0, 0, 1] under the key. */
function splitOne(key: RandomKey, i: number, n: number, words: Uint32Array): RandomKey {
  philox4x32(i, 0, 0, 1, key[0], key[1], words);
  const k = made([words[0]!, words[1]!]);
  keyObserver?.derived('split', key, k, i, n);
  return k;
}

/**
 * Key `index` of `splitKey(key, count)`, computed alone: key i depends only on i (one Philox
 * block), so a compiled program resolving one split key per call costs one block, not `count`
 * (a draw from each of splitKey(k, 1000) under jit took ~1e6 blocks a call).
 */
export function splitKeyAt(key: RandomKey, index: number, count: number): RandomKey {
  checkKey(key, 'splitKeyAt');
  if (!Number.isInteger(count) || count < 1 || count > 0xffffffff) throw new RangeError(`splitKeyAt: count must be an integer from 1 to 4294967295, got ${showValue(count)}`);
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`splitKeyAt: index must be an integer from 0 to ${count - 1} (one of the ${count} keys), got ${showValue(index)}`);
  return splitOne(key, index, count, new Uint32Array(4));
}

/** A key derived from `key` and an integer `data` (as jax.random.fold_in). */
export function foldIn(key: RandomKey, data: number): RandomKey {
  checkKey(key, 'foldIn');
  // The counter takes data's low and high 32-bit words; a fraction or a negative number would
  // silently alias another integer's key.
  if (!Number.isSafeInteger(data) || data < 0) throw new TypeError(`foldIn: data must be a non-negative safe integer, got ${showValue(data)}`);
  const words = new Uint32Array(4);
  philox4x32(data >>> 0, Math.floor(data / 2 ** 32) >>> 0, 0, 2, key[0], key[1], words);
  const k = made([words[0]!, words[1]!]);
  keyObserver?.derived('foldIn', key, k, data);
  return k;
}

let streamKey: RandomKey = randomKey(0);
let streamCount = 0;

/** Reseeds the default stream used when no key is passed. */
export function manualSeed(seed: number): void {
  checkSeed(seed, 'manualSeed');
  streamKey = randomKey(seed);
  streamCount = 0;
}

/** The next key of the default stream. */
export function nextKey(): RandomKey {
  const k = foldIn(streamKey, streamCount++);
  streamKeys.add(k);
  return k;
}

export { checkKey };
