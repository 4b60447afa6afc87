// The compiled-program checks' bit comparison (programReference.ts): sameBits decides that two
// arrays are equal without building their byte lists, and expectCompiledMatches then skips its
// deep equality. It must never call arrays equal that the byte lists tell apart, and, for arrays
// of one type, must find equal every pair they find equal (else only time is lost).

import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { sameBits } from './programReference.js';
import { bitsOf, canonicalNaNBits } from './reference.js';

type Values = Float32Array | Float64Array | Int32Array | Uint8Array;

/** A NaN of `type` with the given payload bits set (a quiet NaN that is not the canonical one). */
function otherNaN(type: 'float32' | 'float64', sign: boolean): number {
  if (type === 'float32') return new Float32Array(Uint32Array.of(((sign ? 0xffc00001 : 0x7fc00001) >>> 0)).buffer)[0]!;
  const words = Uint32Array.of(1, sign ? 0xfff80000 : 0x7ff80000); // little-endian: low word first
  return new Float64Array(words.buffer)[0]!;
}

const floatValues = (type: 'float32' | 'float64') => {
  const next = type === 'float32' ? 1 + 2 ** -23 : 1 + 2 ** -52;
  return [0, -0, 1, next, -1, Number.NaN, otherNaN(type, false), otherNaN(type, true), Infinity, -Infinity, 2 ** -149, 1e30];
};

describe('sameBits', () => {
  const cases: [string, () => Values, readonly number[]][] = [
    ['float32', () => new Float32Array(1), floatValues('float32')],
    ['float64', () => new Float64Array(1), floatValues('float64')],
    ['int32', () => new Int32Array(1), [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)]],
    ['bool', () => new Uint8Array(1), [0, 1]],
  ];
  for (const bits of [bitsOf, canonicalNaNBits]) {
    it.each(cases)(`agrees with the deep equality of ${bits.name}'s lists, every pair of one-element %s arrays`, (_, make, values) => {
      let equalPairs = 0;
      for (const x of values) {
        for (const y of values) {
          // Written by storing, as a kernel's result is: a NaN's payload survives the store.
          const [g, e] = [make(), make()];
          g[0] = x;
          e[0] = y;
          const same = isDeepStrictEqual(bits(g), bits(e));
          expect(sameBits(bits, g, e), `${x} against ${y}`).toBe(same);
          if (same) equalPairs++;
        }
      }
      // Each value equals itself; under canonicalNaNBits the NaNs are one value.
      const nans = values.filter((v) => Number.isNaN(v)).length;
      expect(equalPairs).toBe(values.length + (bits === canonicalNaNBits ? nans * nans - nans : 0));
    });
  }

  it('finds arrays of different lengths, types or a difference past the first element unequal', () => {
    for (const bits of [bitsOf, canonicalNaNBits]) {
      expect(sameBits(bits, Float32Array.of(1, 2), Float32Array.of(1, 2))).toBe(true);
      expect(sameBits(bits, Float32Array.of(1, 2), Float32Array.of(1, 2, 3))).toBe(false);
      expect(sameBits(bits, Float32Array.of(1, 2, 3), Float32Array.of(1, 2, -3))).toBe(false);
      // The same bytes in another type: left to the caller's check of the array type.
      expect(sameBits(bits, new Float32Array(2), new Int32Array(2))).toBe(false);
      // A view's own elements, not its buffer's.
      const buffer = Float32Array.of(9, 1, 2, 9);
      expect(sameBits(bits, buffer.subarray(1, 3), Float32Array.of(1, 2))).toBe(true);
    }
  });

  it('leaves any other comparison to the caller', () => {
    expect(sameBits((a) => Array.from(a), Float32Array.of(1), Float32Array.of(1))).toBe(false);
  });
});
