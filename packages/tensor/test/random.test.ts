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
import { foldIn, manualSeed, rademacher, rand, randn, randomKey, splitKey, splitKeyAt } from '@scorch/tensor';
import { type KeyObserver, philox4x32, withKeyObserver } from '../src/random.js';

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

  it('splitKeyAt(k, i, n) is splitKey(k, n)[i], computed alone (as compiled programs resolve split keys each call)', () => {
    const k = randomKey(11);
    const all = splitKey(k, 1000);
    for (const i of [0, 1, 499, 999]) expect(splitKeyAt(k, i, 1000)).toEqual(all[i]);
    expect(() => splitKeyAt(k, 1000, 1000)).toThrow(/^splitKeyAt: index must be an integer from 0 to 999 \(one of the 1000 keys\), got 1000$/);
    expect(() => splitKeyAt(k, 0, 0)).toThrow(/^splitKeyAt: count must be an integer from 1 to 4294967295, got 0$/);
    expect(() => splitKeyAt([1, 2.5] as never, 0, 2)).toThrow(/^splitKeyAt: /);
  });

  it('foldIn derives a distinct key per integer, deterministically, using all 53 bits', () => {
    const k = randomKey(3);
    const folded = Array.from({ length: 100 }, (_, i) => foldIn(k, i).join(','));
    expect(new Set(folded).size).toBe(100);
    expect(foldIn(k, 17)).toEqual(foldIn(k, 17));
    expect(foldIn(k, 2 ** 32)).not.toEqual(foldIn(k, 0));
    expect(foldIn(randomKey(4), 17)).not.toEqual(foldIn(k, 17));
  });

  it('foldIn gives a distinct key for each of 200,000 integers, below and above 2^32 and near 2^53', () => {
    // Keys are 64 bits: by the birthday bound, m random keys collide with probability about
    // m²/2^65, 1e-9 here, so any repeat is a defect, not chance.
    const k = randomKey(8);
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(foldIn(k, i).join(','));
    for (let i = 0; i < 50_000; i++) seen.add(foldIn(k, 2 ** 32 - 25_000 + i).join(','));
    for (let i = 0; i < 50_000; i++) seen.add(foldIn(k, 2 ** 53 - 1 - i).join(','));
    expect(seen.size).toBe(200_000);
  });

  it('different derivation paths give different keys', () => {
    // foldIn then foldIn, split then split, and the two mixed, from several roots (raw seeds
    // included): 6 · (1 + 500 + 500 + 4 · 400 + 500) = 18,606 keys, none equal (see above).
    const seen = new Map<string, string>();
    const repeats: string[] = [];
    const add = (key: readonly number[], path: string) => {
      const id = key.join(',');
      const earlier = seen.get(id);
      if (earlier !== undefined) repeats.push(`${path} = ${earlier}`);
      else seen.set(id, path);
    };
    [0, 1, 2, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1].forEach((seed, r) => {
      const root = randomKey(seed);
      add(root, `randomKey(${seed})`);
      for (let i = 0; i < 500; i++) add(foldIn(root, i), `foldIn(${r}, ${i})`);
      splitKey(root, 500).forEach((key, i) => add(key, `splitKey(${r})[${i}]`));
      const folded = Array.from({ length: 20 }, (_, i) => foldIn(root, i));
      const split = splitKey(root, 20);
      for (let i = 0; i < 20; i++) {
        for (let j = 0; j < 20; j++) {
          add(foldIn(folded[i]!, j), `foldIn(foldIn(${r}, ${i}), ${j})`);
          add(splitKey(folded[i]!, 20)[j]!, `splitKey(foldIn(${r}, ${i}))[${j}]`);
          add(foldIn(split[i]!, j), `foldIn(splitKey(${r})[${i}], ${j})`);
          add(splitKey(split[i]!, 20)[j]!, `splitKey(splitKey(${r})[${i}])[${j}]`);
        }
      }
      for (let i = 0; i < 500; i++) add(randomKey(1000 * (r + 1) + i), `randomKey(${1000 * (r + 1) + i})`);
    });
    expect(repeats).toEqual([]);
    expect(seen.size).toBe(18_606);
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

  it('the k-th keyless draw after manualSeed(s) uses foldIn(randomKey(s), k), as docs/conventions.md says', () => {
    manualSeed(31);
    const draws = [rand([5]), randn([4], { dtype: 'float64' }), rand([3])].map((t) => Array.from(t.dataSync()));
    expect(draws[0]).toEqual(Array.from(rand([5], { key: foldIn(randomKey(31), 0) }).dataSync()));
    expect(draws[1]).toEqual(Array.from(randn([4], { key: foldIn(randomKey(31), 1), dtype: 'float64' }).dataSync()));
    expect(draws[2]).toEqual(Array.from(rand([3], { key: foldIn(randomKey(31), 2) }).dataSync()));
  });
});

describe('independence across keys', () => {
  it('streams of seeds, split keys and folded keys are uncorrelated and share no float64 value', () => {
    // 66 keys: seeds 0..19, splitKey(root, 20), foldIn(root, 0..19), root, two levels of foldIn,
    // and raw keys differing in one word's top bit. For independent N(0, 1) streams of n values,
    // Fisher's atanh(r)·√(n − 3) is N(0, 1); over 2145 pairs a bound of 6.4 fails with
    // probability ≤ 2145 · 2Φ(−6.4) ≈ 3.3e-7. Two float64 normals are equal with probability
    // below 2^-52 (the spacing near |z| = 1; finer near 0), so the (66n)²/2 ≈ 3.6e10 pairs of
    // values from different streams hold a Poisson(λ ≤ 8e-6) count of chance repeats: two or more
    // has probability ≤ λ²/2 ≈ 3e-11, while streams that overlap repeat thousands of values.
    const root = randomKey(42);
    const keys: [string, readonly [number, number]][] = [];
    for (let i = 0; i < 20; i++) keys.push([`randomKey(${i})`, randomKey(i)]);
    splitKey(root, 20).forEach((k, i) => keys.push([`splitKey(root)[${i}]`, k]));
    for (let i = 0; i < 20; i++) keys.push([`foldIn(root, ${i})`, foldIn(root, i)]);
    keys.push(['root', root]);
    for (let i = 0; i < 3; i++) keys.push([`foldIn(foldIn(root, 0), ${i})`, foldIn(foldIn(root, 0), i)]);
    keys.push(['[2^31, 0]', [2 ** 31, 0]], ['[0, 2^31]', [0, 2 ** 31]]);
    const n = 4096;
    const draws = keys.map(([, key]) => randn([n], { key, dtype: 'float64' }).dataSync());
    const worst = { z: 0, pair: '' };
    const seen = new Map<number, string>();
    const repeats: string[] = [];
    draws.forEach((d, a) => {
      for (const v of d) {
        const earlier = seen.get(v);
        if (earlier !== undefined && earlier !== keys[a]![0]) repeats.push(`${v} in ${earlier} and ${keys[a]![0]}`);
        seen.set(v, keys[a]![0]);
      }
      for (let b = a + 1; b < draws.length; b++) {
        const e = draws[b]!;
        let sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
        for (let i = 0; i < n; i++) {
          sa += d[i]!; sb += e[i]!; sab += d[i]! * e[i]!; saa += d[i]! * d[i]!; sbb += e[i]! * e[i]!;
        }
        const r = (sab - (sa * sb) / n) / Math.sqrt((saa - (sa * sa) / n) * (sbb - (sb * sb) / n));
        const z = Math.abs(Math.atanh(r)) * Math.sqrt(n - 3);
        if (z > worst.z) Object.assign(worst, { z, pair: `${keys[a]![0]} and ${keys[b]![0]}` });
      }
    });
    expect(repeats.length, repeats.slice(0, 3).join('; ')).toBeLessThan(2);
    expect(worst.z, worst.pair).toBeLessThan(6.4);
  });
});

describe('stream layout (Philox 4x32-10 known answers)', () => {
  // Random123's known answer for counter 0 and key 0 is 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
  const words = [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8];

  it('philox4x32 gives Random123\'s known answers (all-zero, all-one and π-digit counters and keys)', () => {
    const out = new Uint32Array(4);
    philox4x32(0, 0, 0, 0, 0, 0, out);
    expect(Array.from(out)).toEqual(words);
    philox4x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, out);
    expect(Array.from(out)).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out);
    expect(Array.from(out)).toEqual([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
  });

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

// Kolmogorov–Smirnov: by the Dvoretzky–Kiefer–Wolfowitz inequality (Massart's constant), the
// largest gap D between the empirical CDF of n draws and the true CDF exceeds ε with probability
// at most 2·exp(−2nε²); ε = √(ln(2/α)/(2n)) with α = 1e−4 is 0.0070 at n = 10⁵. The float32 grid
// (2^-24) and the normal CDF's approximation (below, 1.2e−7) are far below that.
describe('Kolmogorov–Smirnov against the exact CDF', () => {
  const ksBound = (n: number) => Math.sqrt(Math.log(2 / 1e-4) / (2 * n));

  function ksDistance(v: ArrayLike<number>, cdf: (x: number) => number): number {
    const sorted = Float64Array.from(v).sort();
    const n = sorted.length;
    let d = 0;
    for (let i = 0; i < n; i++) {
      const f = cdf(sorted[i]!);
      d = Math.max(d, f - i / n, (i + 1) / n - f);
    }
    return d;
  }

  // erfc with fractional error below 1.2e−7 everywhere (Press et al., Numerical Recipes, §6.2).
  function erfc(x: number): number {
    const z = Math.abs(x);
    const t = 1 / (1 + 0.5 * z);
    const p = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851973 + t * (-0.82215223 + t * 0.17087277))))))));
    const r = t * Math.exp(p);
    return x >= 0 ? r : 2 - r;
  }
  const normalCdf = (x: number) => 0.5 * erfc(-x / Math.SQRT2);

  for (const dtype of ['float32', 'float64'] as const) {
    it(`rand (${dtype}) is U(0, 1)`, () => {
      const u = rand([N], { key: randomKey(4001), dtype }).dataSync();
      expect(ksDistance(u, (x) => Math.min(1, Math.max(0, x)))).toBeLessThan(ksBound(N));
    });

    it(`randn (${dtype}) is N(0, 1)`, () => {
      const z = randn([N], { key: randomKey(4002), dtype }).dataSync();
      expect(ksDistance(z, normalCdf)).toBeLessThan(ksBound(N));
      // The tail beyond ±3: P = 2.6998e−3, an indicator with σ = √(P(1 − P)).
      const p3 = 2 * normalCdf(-3);
      expect(Math.abs(mean(z, (x) => (Math.abs(x) > 3 ? 1 : 0)) - p3)).toBeLessThan((4 * Math.sqrt(p3 * (1 - p3))) / sqrtN);
    });
  }
});

// Keys found by searching Philox blocks: under randomKey(20524) word 0 of block 388 has its top
// 24 bits all 0, so element 1552 is the uniform 0; under randomKey(25665) word 2 of block 31 has
// them all 1, so element 126 is the largest float32 uniform, 1 − 2^-24. Both are a Box–Muller u₁
// (the first of a pair), where r = √(−2 ln(1 − u₁)) is 0 and its largest value √(48 ln 2).
describe('the ends of the float32 uniform grid', () => {
  it('rand reaches 0 and 1 − 2^-24, never 1', () => {
    expect(rand([1553], { key: randomKey(20524) }).dataSync()[1552]).toBe(0);
    const top = rand([127], { key: randomKey(25665) }).dataSync()[126]!;
    expect(top).toBe(1 - 2 ** -24);
    expect(top).toBeLessThan(1);
  });

  it('randn turns them into r = 0 and the largest radius, finite', () => {
    const zero = randn([1554], { key: randomKey(20524) }).dataSync();
    expect(Math.hypot(zero[1552]!, zero[1553]!)).toBe(0);
    const far = randn([128], { key: randomKey(25665) }).dataSync();
    const r = Math.hypot(far[126]!, far[127]!);
    // Each value is r·cos or r·sin rounded to float32: relative error ≤ 2^-24 per value.
    expect(Math.abs(r - Math.sqrt(48 * Math.LN2))).toBeLessThan(Math.sqrt(48 * Math.LN2) * 2 ** -23);
  });

  it('no float32 normal is beyond the largest radius √(48 ln 2) ≈ 5.768, or non-finite', () => {
    const z = randn([N], { key: randomKey(4003) }).dataSync();
    let worst = 0;
    for (const x of z) worst = Number.isFinite(x) ? Math.max(worst, Math.abs(x)) : Infinity;
    expect(worst).toBeLessThanOrEqual(Math.fround(Math.sqrt(48 * Math.LN2)));
  });
});

describe('the documented key layout', () => {
  it('splitKey(key, n)[i] is words 0 and 1 of the Philox block with counter [i, 0, 0, 1] (docs/conventions.md)', () => {
    // A counter laid out otherwise still gives sound streams, but every seeded result would change.
    const key = randomKey(123);
    const keys = splitKey(key, 3);
    const words = new Uint32Array(4);
    for (let i = 0; i < 3; i++) {
      philox4x32(i, 0, 0, 1, key[0], key[1], words);
      expect(keys[i]).toEqual([words[0], words[1]]);
    }
  });
});

const expected = 'a key is two unsigned 32-bit integers [k0, k1] (from randomKey or splitKey), got';

describe('key and seed checks', () => {
  it('a key of three words is refused, not read as its first two', () => {
    expect(() => rand([2], { key: [1, 2, 3] as never })).toThrow(`rand: ${expected} [1,2,3]`);
    expect(() => splitKey([1, 2, 3] as never)).toThrow(`splitKey: ${expected} [1,2,3]`);
    expect(() => foldIn([1, 2, 3] as never, 0)).toThrow(`foldIn: ${expected} [1,2,3]`);
  });

  it('a seed of 2^53 or more is refused: it is not a safe integer (2^53 + 1 would alias 2^53)', () => {
    expect(() => randomKey(2 ** 53)).toThrow('randomKey: seed must be a non-negative safe integer, got 9007199254740992');
    expect(() => manualSeed(2 ** 53)).toThrow('manualSeed: seed must be a non-negative safe integer, got 9007199254740992');
  });

  it('foldIn refuses negative data (-1 became the counter words 0xffffffff, 0xffffffff)', () => {
    expect(() => foldIn(randomKey(0), -1)).toThrow('foldIn: data must be a non-negative safe integer, got -1');
  });

  it('splitKeyAt refuses a negative index and a count past the 32-bit counter', () => {
    const k = randomKey(11);
    expect(() => splitKeyAt(k, -1, 10)).toThrow('splitKeyAt: index must be an integer from 0 to 9 (one of the 10 keys), got -1');
    expect(() => splitKeyAt(k, 0, 2 ** 32)).toThrow('splitKeyAt: count must be an integer from 1 to 4294967295, got 4294967296');
  });
});

describe('the key observer', () => {
  it('is told of derivations only inside withKeyObserver, and is removed when fn returns or throws', () => {
    const seen: string[] = [];
    const observer = { derived: (kind: string, _input: unknown, _out: unknown, data: number) => void seen.push(`${kind} ${data}`) } as KeyObserver;
    const k = randomKey(3);
    withKeyObserver(observer, () => foldIn(k, 1));
    foldIn(k, 2);
    splitKey(k, 2);
    expect(() => withKeyObserver(observer, () => { throw new Error('inside'); })).toThrow('inside');
    foldIn(k, 3);
    expect(seen).toEqual(['foldIn 1']);
  });
});

describe('draws', () => {
  it('rademacher is +1 where the uniform is exactly 1/2 (−1 only below 1/2)', () => {
    // Found by searching Philox blocks: under randomKey(110797) element 79 is 2^23 · 2^-24 = 0.5.
    const key = randomKey(110797);
    expect(rand([80], { key }).dataSync()[79]).toBe(0.5);
    expect(rademacher([80], { key }).dataSync()[79]).toBe(1);
  });

  it('a shape with more elements than a tensor can hold is refused under the draw\'s name', () => {
    expect(() => rand([2 ** 20, 2 ** 13], { key: randomKey(1) })).toThrow('rand: shape [1048576,8192] has 8589934592 elements, more than a tensor can hold (at most 4294967295 = 2^32 - 1)');
  });
});

