// The tolerance helpers' ulp (helpers.ts): it reads the float32 exponent field, where it was
// 2^(⌊log2 |fround(v)|⌋ − 23) by Math.log2, and every float32 tolerance of these tests is a count of
// them. Checked here against that definition, which is exact for float32 values (log2 of a float32
// in [2^k, 2^(k+1)) rounds to a double in [k, k+1)).

import { describe, expect, it } from 'vitest';
import { ulp } from './helpers.js';

/** The definition: 2^(⌊log2 a⌋ − 23) for a = |fround(v)| normal, 2^−149 below, ∞ for ±∞ and NaN. */
function ulpByLog2(v: number): number {
  const a = Math.abs(Math.fround(v));
  if (!Number.isFinite(a)) return Infinity;
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

const fromBits = (bits: number) => new Float32Array(Uint32Array.of(bits >>> 0).buffer)[0]!;

describe('ulp', () => {
  it('is the definition at every exponent field, both signs, the least, a middle and the largest mantissa', () => {
    let checked = 0;
    for (let e = 0; e < 256; e++) {
      for (const mantissa of [0, 1, 0x400000, 0x7fffff]) {
        for (const sign of [0, 0x80000000]) {
          const v = fromBits(sign | (e << 23) | mantissa);
          expect(ulp(v), `exponent ${e}, mantissa ${mantissa}, sign ${sign ? '-' : '+'}: ${v}`).toBe(ulpByLog2(v));
          checked++;
        }
      }
    }
    expect(checked).toBe(256 * 4 * 2);
  });

  it('is the ulp of the float32 nearest to a double: across a binade edge, past the largest float32, below the least', () => {
    expect(ulp(2 - 2 ** -30)).toBe(2 ** -22); // rounds to 2
    expect(ulp(2 - 2 ** -23)).toBe(2 ** -23); // a float32 below 2
    expect(ulp(1e39)).toBe(Infinity); // rounds to ∞
    expect(ulp(3.4028235e38)).toBe(2 ** 104);
    expect(ulp(2 ** -150 * 1.5)).toBe(2 ** -149);
    expect(ulp(2 ** -126)).toBe(2 ** -149);
    expect(ulp(0)).toBe(2 ** -149);
    expect(ulp(-0)).toBe(2 ** -149);
    expect(ulp(Number.NaN)).toBe(Infinity);
    expect(ulp(-Infinity)).toBe(Infinity);
  });

  it('is the definition over 200,000 doubles spread across float32 range', () => {
    let state = 12345;
    const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 200_000; i++) {
      const v = (random() < 0.5 ? -1 : 1) * 2 ** (random() * 280 - 152) * (1 + random());
      if (ulp(v) !== ulpByLog2(v)) expect.fail(`ulp(${v}) = ${ulp(v)}, the definition ${ulpByLog2(v)}`);
    }
  });
});
