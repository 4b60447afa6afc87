// The CPU's float32 random draws in WebAssembly SIMD, the same bits as fillRandom (random.ts):
// Philox 4x32-10 on four counter blocks at a time, then the uniforms or Box–Muller's normals of
// those blocks. (The float64 draws, the gradient checks' reference, stay in TypeScript.)
//
// Layout of the module's memory (its own, not the heap; byte addresses):
// - [0, KERNEL_CONSTANTS_BYTES): the constant tables the logarithm reads (logCore's, at the
//   addresses of every kernel module: mathF32x4.ts).
// - WORDS_AT: the Philox words of CHUNK_GROUPS groups of four blocks, group g at WORDS_AT + 64g as
//   four vectors: word 0 of its blocks 0–3, then word 1, word 2, word 3 (a block's words lie in
//   one lane of the four vectors, as the SIMD rounds compute them).
// - OUT_AT: the float32 values of those groups, group g's sixteen at OUT_AT + 64g, in element order.
// - LIST_AT: normals' list of the blocks (within the chunk) that the exact path must redo.
//
// Philox. Round r of the block (c0, c1, c2, c3) with key (k0, k1): (hi(M1·c2) ⊕ c1 ⊕ k0,
// lo(M1·c2), hi(M0·c0) ⊕ c3 ⊕ k1, lo(M0·c0)), then k0 += W0, k1 += W1 (mod 2^32), as philox4x32.
// The low words are i32x4.mul's; the high ones come from i64x2.extmul of lanes 0, 1 and 2, 3 (the
// full 64-bit unsigned products), their high words gathered by one shuffle. Exact integer
// arithmetic: the same words as random.ts's philox4x32 (the tests compare them, and the published
// known-answer vectors hold for both).
//
// Uniforms: word >>> 8 (24 bits) converted to float32 and scaled by 2^−24, both exact.
//
// Normals. fillRandom's pair from the block's uniforms (u₁, u₂) (words 0, 1, then 2, 3) is
// z₀ = r·cos θ, z₁ = r·sin θ with r = Math.sqrt(−2·Math.log(1 − u₁)) and θ = 2π·u₂ in doubles,
// each rounded to float32 when stored. Here, in f64x2 lanes: 1 − u₁ is exact (u₁ a multiple of
// 2^−24 below 1), L ≈ log(1 − u₁) by logCore (mathF32x4.ts: relative error < 2^−40.7 for a
// positive normal double), r = sqrt(−2·L) (the product exact, the root rounded once), θ = 2π·u₂
// rounded exactly as the JavaScript rounds it (the same double product), cos θ and sin θ by
// trigApprox (relative error < 2^−48: its proof holds for these doubles θ in [0, 2π) as for float32
// x, below), z₀ and z₁ each one more rounded product. Each z is then a double approximation
// with a proven error, rounded to float32 if it lies far enough from every float32 rounding
// boundary (the boundary test of mathF32x4.ts), and otherwise its block is redone by the
// JavaScript path (fillRandomBlocks): exact results either way.
//
// Error bound. With y = r·cos θ exactly (or sin):
// - ours: L within 2^−40.7 relative moves r = √(−2L) by half that, 2^−41.7; the root rounds by
//   2^−53, cos θ is within 2^−48, the product rounds by 2^−53: |z − y| ≤ 2^−41.68·|y|.
// - JavaScript's: fdlibm's log, cos and sin are within 1 ulp (2^−52 relative) each, the root and
//   the product round by 2^−53 each: |J − y| ≤ (2^−53 + 2^−53 + 2^−52 + 2^−53)·|y| < 2^−50.6·|y|.
//   |z − J| < 2^−41.66·|y|: in ulps of z (y may lie in the next binade), 2^53·2^−41.66·(1 + 2^−40)
//   < 2,600. The window is W = 2^13 (over three times that), as for exp: 2^−15 of the values are
//   ambiguous, 2^−13 of the blocks redone.
// - trigApprox's reduction for a double θ in [0, 2π): k = nearest(θ·2/π) ≤ 4, k·P1 and k·P2 are
//   exact (P1, P2 have 33 bits), and θ − k·P1 is exact: it is a multiple of θ's ulp (2^−53 from θ ≥
//   1/2, where k ≥ 1; k = 0 below leaves θ itself) smaller than 1 in magnitude. The rest of its
//   proof is the float32 one; the exclusion it needs, |θ − k·π/2| far above the 2^−120 by which
//   P1 + P2 + P3 times k misses k·π/2, holds: the closest of these θ to a multiple of π/2 is the
//   double nearest π/2 (u₂ = 1/4), 6.1e−17 (2^−53.9) from it.
// - The results are normal float32 values: |z| ≥ √(−2·log(1 − 2^−24))·|sin θ or cos θ| ≥ 2^−11.5 ·
//   6e−17 > 2^−126, unless r = 0 (u₁ = 0: Math.log(1) = 0, and the sign of −0·cos θ is the
//   JavaScript's) or θ = 0 (u₂ = 0: sin θ = 0): those blocks take the exact path too.

import { PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, TWO_PI } from '../../random.js';
import { HIGH_HALF, I32, JOIN_LOW, ModuleBuilder, V128, type FunctionBody, lanes32, storeTransposed } from './assembler.js';
import { KERNEL_CONSTANTS_BYTES } from './heap.js';
import { f32Splat, logCore, trigApprox, unambiguous } from './mathF32x4.js';
import { num } from './mathF64x2.js';

/** Groups of four blocks (sixteen float32 values) a call of the module handles. */
export const CHUNK_GROUPS = 512;
/** Byte addresses in the module's memory (see the header). */
export const WORDS_AT = KERNEL_CONSTANTS_BYTES;
export const OUT_AT = WORDS_AT + 64 * CHUNK_GROUPS;
export const LIST_AT = OUT_AT + 64 * CHUNK_GROUPS;
/** The memory the module needs, in 64 KiB pages. */
export const RANDOM_MEMORY_PAGES = Math.ceil((LIST_AT + 16 * CHUNK_GROUPS) / 65536);

/** The window of the boundary test, in ulps of the double (log2): see the header's bound. */
const WINDOW = 13;

/** The high words of two i64x2 products, lanes 0, 1 of the first then of the second. */
const HIGH_WORDS = lanes32([1, 3, 5, 7]);

/** A loop over groups g = 0 … `groups` − 1 with `at` = 64g; `body` emits one group. */
function forGroups(f: FunctionBody, groups: number, at: number, body: () => void): void {
  f.i32Const(0).set(at);
  f.block().loop();
  f.get(groups).i32Eqz().brIf(1);
  body();
  f.get(at).i32Const(64).i32Add().set(at);
  f.get(groups).i32Const(1).i32Sub().set(groups);
  f.br(0).end().end();
}

/** The module's exports (randomModule). */
export interface RandomModuleExports {
  philox(first: number, groups: number, k0: number, k1: number): void;
  uniforms(groups: number): void;
  normals(groups: number): number;
}

/**
 * The module: it imports `env.memory` (RANDOM_MEMORY_PAGES pages at least) and exports
 * - philox(first, groups, k0, k1): the words of blocks first … first + 4·groups − 1 (counters
 *   (b, 0, 0, 0): the caller keeps them below 2^32) to WORDS_AT;
 * - uniforms(groups): the float32 uniforms of those words to OUT_AT;
 * - normals(groups) → count: the float32 normals to OUT_AT, and the `count` blocks whose values
 *   the exact path must redo to LIST_AT (i32 block indices within the chunk).
 */
export function randomModule(): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: RANDOM_MEMORY_PAGES });
  m.func('philox', [I32, I32, I32, I32], [], (f, [first, groups, k0, k1]) => {
    const at = f.local(I32);
    const v = Array.from({ length: 15 }, () => f.local(V128));
    const [counter, c0, c1, c2, c3, key0, key1, m0, m1, hi0, lo0, hi1, lo1, w0, w1] = v as [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];
    f.get(first!).i32x4Splat().v128Const([0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]).i32x4Add().set(counter); // b … b + 3
    [PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1].forEach((value, i) => f.i32Const(value | 0).i32x4Splat().set([m0, m1, w0, w1][i]!));
    // hi and lo words of c·M, lane by lane.
    const product = (c: number, mult: number, hi: number, lo: number) => {
      f.get(c).get(mult).i64x2ExtmulLowI32x4U();
      f.get(c).get(mult).i64x2ExtmulHighI32x4U();
      f.i8x16Shuffle(HIGH_WORDS).set(hi);
      f.get(c).get(mult).i32x4Mul().set(lo);
    };
    forGroups(f, groups!, at, () => {
      f.get(counter).set(c0);
      for (const c of [c1, c2, c3]) f.v128Const().set(c);
      f.get(k0!).i32x4Splat().set(key0);
      f.get(k1!).i32x4Splat().set(key1);
      for (let round = 0; round < 10; round++) {
        product(c0, m0, hi0, lo0);
        product(c2, m1, hi1, lo1);
        f.get(hi1).get(c1).v128Xor().get(key0).v128Xor().set(c0);
        f.get(lo1).set(c1);
        f.get(hi0).get(c3).v128Xor().get(key1).v128Xor().set(c2);
        f.get(lo0).set(c3);
        if (round < 9) {
          f.get(key0).get(w0).i32x4Add().set(key0);
          f.get(key1).get(w1).i32x4Add().set(key1);
        }
      }
      [c0, c1, c2, c3].forEach((c, j) => f.get(at).get(c).v128Store(WORDS_AT + 16 * j));
      f.get(counter).i32Const(4).i32x4Splat().i32x4Add().set(counter);
    });
  });

  m.func('uniforms', [I32], [], (f, [groups]) => {
    const at = f.local(I32);
    const u = Array.from({ length: 4 }, () => f.local(V128));
    const t = Array.from({ length: 4 }, () => f.local(V128));
    const out = f.local(I32);
    forGroups(f, groups!, at, () => {
      u.forEach((local, j) => {
        f.get(at).v128Load(WORDS_AT + 16 * j).i32Const(8).i32x4ShrU().f32x4ConvertI32x4S();
        f.v128Const(f32Splat(2 ** -24)).f32x4Mul().set(local);
      });
      f.get(at).i32Const(OUT_AT).i32Add().set(out);
      storeTransposed(f, u, t, out, 0, 16);
    });
  });

  m.func('normals', [I32], [I32], (f, [groups]) => {
    const at = f.local(I32);
    const out = f.local(I32);
    const count = f.local(I32);
    const [radius, angle, bad, ur, ut, z0lo, z0hi, z1lo, z1hi, v] = Array.from({ length: 10 }, () => f.local(V128)) as [number, number, number, number, number, number, number, number, number, number];
    const values = Array.from({ length: 4 }, () => f.local(V128)); // z₀, z₁ of pair 0, then of pair 1
    const t = Array.from({ length: 4 }, () => f.local(V128));
    f.i32Const(0).set(count);
    forGroups(f, groups!, at, () => {
      f.v128Const().set(bad);
      for (const pair of [0, 1]) {
        // The 24-bit integers of u₁ (r) and u₂ (θ) of each block.
        f.get(at).v128Load(WORDS_AT + 32 * pair).i32Const(8).i32x4ShrU().set(ur);
        f.get(at).v128Load(WORDS_AT + 32 * pair + 16).i32Const(8).i32x4ShrU().set(ut);
        // u₁ = 0 or u₂ = 0: the exact path (see the header).
        f.get(bad).get(ur).v128Const().i32x4Eq().v128Or().get(ut).v128Const().i32x4Eq().v128Or().set(bad);
        for (const [half, z0, z1] of [[0, z0lo, z1lo], [1, z0hi, z1hi]] as const) {
          const doubles = (ints: number) => {
            f.get(ints);
            if (half === 1) f.get(ints).i8x16Shuffle(HIGH_HALF);
            f.f64x2ConvertLowI32x4S();
            num(2 ** -24)(f);
            f.f64x2Mul();
          };
          // r = sqrt(−2·log(1 − u₁)).
          num(1)(f);
          doubles(ur);
          f.f64x2Sub().set(v);
          logCore(f, v);
          num(-2)(f);
          f.f64x2Mul().f64x2Sqrt().set(radius);
          // θ = 2π·u₂.
          num(TWO_PI)(f);
          doubles(ut);
          f.f64x2Mul().set(angle);
          trigApprox(f, angle, true);
          f.get(radius).f64x2Mul().set(z0);
          trigApprox(f, angle, false);
          f.get(radius).f64x2Mul().set(z1);
        }
        for (const [j, zlo, zhi] of [[0, z0lo, z0hi], [1, z1lo, z1hi]] as const) {
          unambiguous(f, zlo, zhi, WINDOW);
          f.v128Const().i32x4Eq().get(bad).v128Or().set(bad);
          f.get(zlo).f32x4DemoteF64x2Zero().get(zhi).f32x4DemoteF64x2Zero().i8x16Shuffle(JOIN_LOW).set(values[2 * pair + j]!);
        }
      }
      f.get(at).i32Const(OUT_AT).i32Add().set(out);
      storeTransposed(f, values, t, out, 0, 16);
      // The blocks to redo: each lane of `bad` set, as the block's index (g·4 + lane).
      f.get(bad).v128AnyTrue().if();
      for (let lane = 0; lane < 4; lane++) {
        f.get(bad).i32x4ExtractLane(lane).if();
        f.get(count).i32Const(2).i32Shl().get(at).i32Const(4).i32ShrU().i32Const(lane).i32Add().i32Store(LIST_AT);
        f.get(count).i32Const(1).i32Add().set(count);
        f.end();
      }
      f.end();
    });
    f.get(count);
  });
  return m.encode();
}
