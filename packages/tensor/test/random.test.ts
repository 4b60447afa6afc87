// Random numbers: keys (randomKey, splitKey, foldIn), the seeded default stream (manualSeed),
// determinism (same key ⇒ same numbers, different keys ⇒ different), the Philox stream layout
// (known answers), and the distributions of rand, randn and rademacher in float32 and float64.
//
// Monte-Carlo bounds: for n independent draws of a variable with standard deviation σ, the sample
// mean has standard error σ/√n and is approximately normal (CLT), so |mean − μ| < 4σ/√n fails
// with probability about 6e−5 for a correct generator. Keys are fixed, so a run is deterministic;
// the bound says how far from the truth a correct generator's estimate may land, and it is never
// loosened to make a draw pass.

import { describe, expect, it } from 'vitest';
import { foldIn, manualSeed, rademacher, rand, randn, randomKey, splitKey } from '@scorch/tensor';

const N = 100_000;
const sqrtN = Math.sqrt(N);

function mean(v: ArrayLike<number>, f: (x: number) => number = (x) => x): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += f(v[i]!);
  return s / v.length;
}

describe('keys', () => {
  it('randomKey splits a seed into two 32-bit words', () => {
    expect(randomKey(0)).toEqual([0, 0]);
    expect(randomKey(42)).toEqual([42, 0]);
    expect(randomKey(2 ** 32 + 5)).toEqual([5, 1]);
    expect(randomKey(2 ** 53 - 1)).toEqual([0xffffffff, 0x1fffff]);
  });

  it('splitKey gives distinct keys, none equal to the parent, the same every time', () => {
    const k = randomKey(7);
    const parts = splitKey(k, 4);
    expect(parts).toHaveLength(4);
    const all = [k, ...parts].map((p) => p.join(','));
    expect(new Set(all).size).toBe(5);
    expect(splitKey(k, 4)).toEqual(parts);
    expect(splitKey(k)).toEqual(parts.slice(0, 2)); // default n = 2; key i depends only on i
    for (const p of parts) for (const w of p) expect(Number.isInteger(w) && w >= 0 && w <= 0xffffffff).toBe(true);
  });

  it('foldIn derives a distinct key per integer, deterministically, using all 53 bits', () => {
    const k = randomKey(3);
    const folded = Array.from({ length: 100 }, (_, i) => foldIn(k, i).join(','));
    expect(new Set(folded).size).toBe(100);
    expect(foldIn(k, 17)).toEqual(foldIn(k, 17));
    expect(foldIn(k, 2 ** 32)).not.toEqual(foldIn(k, 0));
    expect(foldIn(randomKey(4), 17)).not.toEqual(foldIn(k, 17));
  });
});

describe('determinism', () => {
  it('the same key gives identical numbers; different keys give different ones', () => {
    const [k1, k2] = splitKey(randomKey(11)) as [readonly [number, number], readonly [number, number]];
    const a = rand([64], { key: k1 }).dataSync();
    expect(rand([64], { key: k1 }).dataSync()).toEqual(a);
    const b = rand([64], { key: k2 }).dataSync();
    // At 2^-24 resolution a coincidence in one of 64 positions has probability 64·2^-24.
    let same = 0;
    for (let i = 0; i < 64; i++) if (a[i] === b[i]) same++;
    expect(same).toBe(0);
    expect(randn([8], { key: k1 }).dataSync()).toEqual(randn([8], { key: k1 }).dataSync());
  });

  it('element i depends only on the key and i (counter-based), not on the shape', () => {
    const k = randomKey(5);
    const long = rand([3, 7], { key: k }).dataSync();
    const short = rand([5], { key: k }).dataSync();
    expect(Array.from(short)).toEqual(Array.from(long.subarray(0, 5)));
    const longN = randn([9], { key: k, dtype: 'float64' }).dataSync();
    expect(Array.from(randn([3], { key: k, dtype: 'float64' }).dataSync())).toEqual(Array.from(longN.subarray(0, 3)));
  });

  it('manualSeed restarts the default stream; successive draws differ', () => {
    manualSeed(1234);
    const a = rand([16]).dataSync();
    const b = rand([16]).dataSync();
    expect(a).not.toEqual(b);
    manualSeed(1234);
    expect(rand([16]).dataSync()).toEqual(a);
    expect(rand([16]).dataSync()).toEqual(b);
    manualSeed(1235);
    expect(rand([16]).dataSync()).not.toEqual(a);
  });
});

describe('stream layout (Philox 4x32-10 known answers)', () => {
  // Random123's known answer for counter 0 and key 0 is 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
  const words = [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8];

  it('float32 uniforms are the top 24 bits of each word times 2^-24', () => {
    expect(Array.from(rand([4], { key: [0, 0] }).dataSync())).toEqual(words.map((w) => (w >>> 8) * 2 ** -24));
  });

  it('float64 uniforms take 53 bits from two words', () => {
    const expected = [
      ((words[0]! >>> 5) * 2 ** 26 + (words[1]! >>> 6)) * 2 ** -53,
      ((words[2]! >>> 5) * 2 ** 26 + (words[3]! >>> 6)) * 2 ** -53,
    ];
    expect(Array.from(rand([2], { key: [0, 0], dtype: 'float64' }).dataSync())).toEqual(expected);
  });
});

describe('rand', () => {
  const u = rand([N], { key: randomKey(2025) }).dataSync();

  it('is float32 in [0, 1) on a 2^-24 grid', () => {
    expect(u).toBeInstanceOf(Float32Array);
    let lo = Infinity;
    let hi = -Infinity;
    let offGrid = 0;
    for (const v of u) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      if (!Number.isInteger(v * 2 ** 24)) offGrid++;
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(offGrid).toBe(0);
  });

  it('has the first two moments of U(0, 1)', () => {
    // E u = 1/2 with σ = √(1/12); E u² = 1/3 with Var u² = E u⁴ − 1/9 = 1/5 − 1/9 = 4/45.
    expect(Math.abs(mean(u) - 0.5)).toBeLessThan((4 * Math.sqrt(1 / 12)) / sqrtN);
    expect(Math.abs(mean(u, (x) => x * x) - 1 / 3)).toBeLessThan((4 * Math.sqrt(4 / 45)) / sqrtN);
  });

  it('puts a quarter of the mass below 1/4', () => {
    // The indicator 1[u < 1/4] is Bernoulli(1/4): σ = √(1/4 · 3/4).
    expect(Math.abs(mean(u, (x) => (x < 0.25 ? 1 : 0)) - 0.25)).toBeLessThan((4 * Math.sqrt(0.25 * 0.75)) / sqrtN);
  });

  it('each of the four words of a Philox block is uniform (per-lane means)', () => {
    // Lane j holds elements i ≡ j (mod 4): N/4 draws each, standard error √(1/12)/√(N/4).
    for (let lane = 0; lane < 4; lane++) {
      let s = 0;
      for (let i = lane; i < N; i += 4) s += u[i]!;
      expect(Math.abs(s / (N / 4) - 0.5)).toBeLessThan((4 * Math.sqrt(1 / 12)) / Math.sqrt(N / 4));
    }
  });

  it('float64 draws are in [0, 1), use more than float32 precision and have mean 1/2', () => {
    const d = rand([N], { key: randomKey(77), dtype: 'float64' }).dataSync();
    expect(d).toBeInstanceOf(Float64Array);
    let notFloat32 = 0;
    let outside = 0;
    for (const v of d) {
      if (!(v >= 0 && v < 1)) outside++;
      if (Math.fround(v) !== v) notFloat32++;
    }
    expect(outside).toBe(0);
    // A 53-bit uniform is float32-representable only if its low 29 bits vanish: about 2^-29 of
    // draws (more near 0, where float32 has finer spacing), so essentially none of N.
    expect(notFloat32).toBeGreaterThan(N - 10);
    expect(Math.abs(mean(d) - 0.5)).toBeLessThan((4 * Math.sqrt(1 / 12)) / sqrtN);
  });
});

describe('randn', () => {
  const z = randn([N], { key: randomKey(99) }).dataSync();

  it('is float32 of the requested shape', () => {
    const s = randn([2, 3], { key: randomKey(1) });
    expect(s.shape).toEqual([2, 3]);
    expect(s.dtype).toBe('float32');
    expect(z.every(Number.isFinite)).toBe(true);
  });

  it('has the moments of N(0, 1)', () => {
    // E z = 0 (σ = 1); E z² = 1 (Var z² = E z⁴ − 1 = 2); E z³ = 0 (Var z³ = E z⁶ = 15).
    expect(Math.abs(mean(z))).toBeLessThan(4 / sqrtN);
    expect(Math.abs(mean(z, (x) => x * x) - 1)).toBeLessThan((4 * Math.sqrt(2)) / sqrtN);
    expect(Math.abs(mean(z, (x) => x * x * x))).toBeLessThan((4 * Math.sqrt(15)) / sqrtN);
  });

  it('puts 5% of the mass beyond ±1.96', () => {
    // P(|z| > 1.959964) = 0.05; the indicator has σ = √(0.05 · 0.95).
    expect(Math.abs(mean(z, (x) => (Math.abs(x) > 1.959964 ? 1 : 0)) - 0.05)).toBeLessThan((4 * Math.sqrt(0.05 * 0.95)) / sqrtN);
  });

  it('the two values of a Box–Muller pair are uncorrelated', () => {
    // E[z₂ᵢ z₂ᵢ₊₁] = 0 with Var = E z² · E z² = 1, over N/2 pairs.
    let s = 0;
    for (let i = 0; i < N; i += 2) s += z[i]! * z[i + 1]!;
    expect(Math.abs(s / (N / 2))).toBeLessThan(4 / Math.sqrt(N / 2));
  });

  it('float64 draws have the moments of N(0, 1)', () => {
    const d = randn([N], { key: randomKey(100), dtype: 'float64' }).dataSync();
    expect(d).toBeInstanceOf(Float64Array);
    expect(Math.abs(mean(d))).toBeLessThan(4 / sqrtN);
    expect(Math.abs(mean(d, (x) => x * x) - 1)).toBeLessThan((4 * Math.sqrt(2)) / sqrtN);
  });
});

describe('rademacher', () => {
  it('draws exactly ±1 with mean 0', () => {
    const r = rademacher([N], { key: randomKey(5) });
    expect(r.dtype).toBe('float32');
    const v = r.dataSync();
    let plus = 0;
    let other = 0;
    for (const x of v) {
      if (x === 1) plus++;
      else if (x !== -1) other++;
    }
    expect(other).toBe(0);
    // Each sign has σ = 1, so the mean is within 4/√N of 0.
    expect(Math.abs(mean(v))).toBeLessThan(4 / sqrtN);
    expect(plus).toBeGreaterThan(0);
  });

  it('follows the requested float dtype and is reproducible', () => {
    const a = rademacher([2, 50], { key: randomKey(6), dtype: 'float64' });
    expect(a.dtype).toBe('float64');
    expect(a.shape).toEqual([2, 50]);
    expect(a.dataSync()).toEqual(rademacher([2, 50], { key: randomKey(6), dtype: 'float64' }).dataSync());
    expect(Array.from(a.dataSync()).every((x) => x === 1 || x === -1)).toBe(true);
  });
});
