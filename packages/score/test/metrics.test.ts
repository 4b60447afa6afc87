// Metrics proved on distributions with known answers (CPU backend, float64, fixed keys).
//
// Tolerances are Monte-Carlo standard errors, each derived where it is used: for the two-sample
// statistics under "same distribution", the degenerate U-statistic SE the metric reports itself
// (see TwoSampleStatistic); for their expectation under "different distributions", the spread
// of B independent replicates (mean ± 4·sd/√B, a t-interval with B − 1 = 15 degrees of freedom:
// false-alarm probability ≈ 0.001); for means of i.i.d. terms, sd/√n.

import { afterAll, describe, expect, it } from 'vitest';
import { Tensor, concat, foldIn, randn, randomKey, tensor } from '@scorch/tensor';
import { GaussianMixture, eightGaussians, rings } from '../src/data.js';
import {
  countNonFinite, energyDistance, fisherDivergence, histogram2d, histogramKL, medianBandwidth, mmd2, modeWeights, pairwiseSquaredDistances,
} from '../src/metrics.js';
import { perRow } from '../src/sde.js';
import { unknownOption } from './options.js';

const f64 = { dtype: 'float64' as const };

/** erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), for closed-form targets on the host. */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1 - poly * Math.exp(-a * a));
}
const normalCdf = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));

/** Mean and SE (sd/√B) of B replicate values. */
function replicateMean(values: number[]): { mean: number; se: number } {
  const B = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / B;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (B - 1);
  return { mean, se: Math.sqrt(variance / B) };
}

const report: string[] = [];

describe('two-sample statistics far from the origin', () => {
  it('float32 MMD², energy distance and the median bandwidth at an offset of 1000 match float64 on the same points', async () => {
    // Distances are taken after centring the rows together, so the offset's square no longer
    // cancels in |a|² + |b|² − 2abᵀ. What is left is float32 rounding of each kernel value (a few
    // ulps, 2⁻²⁴ relative, of values of order 1): about 1e-6 on the statistic, a thousandth of its
    // null standard error at 1000 points (about 1e-3). Before, the error was 4–5% of it.
    const x = randn([1000, 2], { key: randomKey(1) }).add(1000);
    const y = randn([1000, 2], { key: randomKey(2) }).add(1000.05);
    const [x64, y64] = [x.cast('float64'), y.cast('float64')];
    for (const [name, stat] of [
      ['mmd2', (a: Tensor, b: Tensor) => mmd2(a, b, { bandwidth: 1 })],
      ['energyDistance', energyDistance],
    ] as const) {
      const [single, double] = [await stat(x, y), await stat(x64, y64)];
      expect(Math.abs(single.value - double.value), name).toBeLessThan(1e-3 * double.nullStandardError);
    }
    const [h32, h64] = [await medianBandwidth(x, y), await medianBandwidth(x64, y64)];
    expect(Math.abs(h32 - h64)).toBeLessThan(1e-5 * h64); // was 6e-3 relative
    for (const t of [x, y, x64, y64]) t.dispose();
  });
});

describe('two-sample statistics with a far point among the samples, and at extreme scales (float32)', () => {
  // A sampler starting to diverge leaves a few finite points far out. Centred at the pooled mean,
  // one point at 1e7 among a thousand moved every other point to ~1e4, where |a|² + |b|² − 2ab in
  // float32 kept nothing of their distances: MMD² of 0.616 (~1000 null SE; +∞ with the point at
  // 3e5, from exp of its own rounded diagonal entry), mode weights summing to 5.7. The float64
  // copy of the same numbers is the reference.
  const data = eightGaussians();
  const reference = data.sample(1000, { key: randomKey(71) });
  const withFarPoint = (far: number) => concat([data.sample(1000, { key: randomKey(72) }), tensor([[far, far]])], 0);

  it.each([3e5, 1e7])('MMD² and mode weights with one point at %d on both axes match float64', async (far) => {
    const x = withFarPoint(far);
    const [m, m64] = [await mmd2(x, reference), await mmd2(x.cast('float64'), reference.cast('float64'))];
    expect(Math.abs(m.value - m64.value)).toBeLessThan(0.01 * m64.nullStandardError);
    expect(m.bandwidth / m64.bandwidth).toBeCloseTo(1, 6);
    const [w, w64] = [await modeWeights(x, data.means), await modeWeights(x.cast('float64'), data.means)];
    // The far point's own distances to the modes tie in float32 (ulp(2·far²) against differences
    // of ~4·far): it may count for several modes, 1/1001 each; every other point is placed as in float64.
    w.forEach((v, i) => expect(Math.abs(v - w64[i]!)).toBeLessThanOrEqual(1 / 1001 + 1e-6));
    x.dispose();
  });

  it('the energy distance with one point at (1e6, 1e6) matches float64 within 0.1 null SE', async () => {
    // (Its sums hold the far point's distances, ~1.4e6 each: float32 resolves the statistic to
    // ~1e-7 of those, so the far point cannot go much further out at this accuracy.)
    const x = withFarPoint(1e6);
    const [e, e64] = [await energyDistance(x, reference), await energyDistance(x.cast('float64'), reference.cast('float64'))];
    expect(Math.abs(e.value - e64.value)).toBeLessThan(0.1 * e64.nullStandardError);
    x.dispose();
  });

  it('pairwise squared distances of ordinary points beside a far one are those of float64', () => {
    // Centred at the rows' mean, a distance of 5.31 between ordinary points came out 0.
    const x = withFarPoint(1e7);
    const y = data.sample(5, { key: randomKey(75) });
    const [d32, d64] = [pairwiseSquaredDistances(x, y), pairwiseSquaredDistances(x.cast('float64'), y.cast('float64'))];
    const [a, b] = [d32.dataSync(), d64.dataSync()];
    // Each entry is a sum of d = 2 float32 squares of float32 differences: a few ulps of it.
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(4 * 2 ** -24 * b[i]!);
    for (const t of [x, y, d32, d64]) t.dispose();
  });

  it('the energy distance takes its unit from every row, not only the subsample (a far row 600 was squared into +∞)', async () => {
    const x = concat([data.sample(599, { key: randomKey(76) }), tensor([[2e20, 2e20]])], 0);
    const [e, e64] = [await energyDistance(x, reference), await energyDistance(x.cast('float64'), reference.cast('float64'))];
    expect(Number.isFinite(e.value)).toBe(true);
    // The far row's distances (~2.8e20) enter each sum with weight ~1/600; float32 resolves them to ~1e-7.
    expect(Math.abs(e.value - e64.value)).toBeLessThan(1e-6 * 2.8e20 / 600);
    x.dispose();
  });

  it('MMD², its bandwidth and the energy distance do not depend on the samples\' scale, from 1e-25 to 1e20', async () => {
    // The squares of such coordinates under- or overflow float32: MMD² was NaN at 1e-20 and 1e20,
    // the median bandwidth +∞ at 1e20 and "more than half the points coincide" at 1e-25.
    const x = randn([50, 2], { key: randomKey(73) });
    const y = randn([60, 2], { key: randomKey(74) });
    const [m, e] = [await mmd2(x, y), await energyDistance(x, y)];
    for (const scale of [1e-25, 1e-20, 1e19, 1e20]) {
      const [xs, ys] = [x.mul(scale), y.mul(scale)];
      const ms = await mmd2(xs, ys);
      expect(Math.abs(ms.value - m.value)).toBeLessThan(1e-6);
      expect(ms.bandwidth / scale / m.bandwidth).toBeCloseTo(1, 5);
      expect((await medianBandwidth(xs, ys)) / scale / m.bandwidth).toBeCloseTo(1, 5);
      expect(Math.abs((await energyDistance(xs, ys)).value / scale - e.value)).toBeLessThan(1e-5);
      xs.dispose();
      ys.dispose();
    }
  });
});

describe('MMD² (unbiased, RBF)', () => {
  const p = eightGaussians();
  const n = 1000;

  it('≈ 0 within 4 null SE for two samples of one distribution', async () => {
    const x = p.sample(n, { key: randomKey(1), dtype: 'float64' });
    const y = p.sample(n, { key: randomKey(2), dtype: 'float64' });
    const r = await mmd2(x, y);
    report.push(`MMD² same: ${r.value.toExponential(3)} (null SE ${r.nullStandardError.toExponential(2)}, h ${r.bandwidth.toFixed(3)})`);
    expect(Math.abs(r.value)).toBeLessThanOrEqual(4 * r.nullStandardError);
    expect(r.bandwidth).toBeGreaterThan(0);
  });

  it('clearly > 0 (over 10 null SE) for 8 Gaussians vs rings', async () => {
    const x = p.sample(n, { key: randomKey(3), dtype: 'float64' });
    const y = rings().sample(n, { key: randomKey(4), dtype: 'float64' });
    const r = await mmd2(x, y);
    report.push(`MMD² 8 Gaussians vs rings: ${r.value.toExponential(3)} (null SE ${r.nullStandardError.toExponential(2)})`);
    expect(r.value).toBeGreaterThan(10 * r.nullStandardError);
  });

  it('is unbiased: N(0, I) vs N((½, 0), I) with h = 1 matches the closed form', async () => {
    // E k(x, x') over two independent N(μ₁, I), N(μ₂, I) draws in d dims with an RBF of width h:
    // (h²/(h² + 2))^{d/2} exp(−‖μ₁ − μ₂‖²/(2(h² + 2))); so MMD² = 2(h²/(h²+2))^{d/2}(1 − e^{−δ²/(2(h²+2))}).
    const h = 1;
    const delta = 0.5;
    const exact = 2 * (h * h / (h * h + 2)) * (1 - Math.exp(-(delta * delta) / (2 * (h * h + 2))));
    const values: number[] = [];
    for (let b = 0; b < 16; b++) {
      const key = foldIn(randomKey(5), b);
      const x = randn([250, 2], { key: foldIn(key, 0), ...f64 });
      const y = randn([250, 2], { key: foldIn(key, 1), ...f64 }).add(tensor([delta, 0], f64));
      values.push((await mmd2(x, y, { bandwidth: h })).value);
    }
    const { mean, se } = replicateMean(values);
    report.push(`MMD² closed form ${exact.toFixed(5)}: replicate mean ${mean.toFixed(5)} ± ${se.toFixed(5)}`);
    expect(Math.abs(mean - exact)).toBeLessThanOrEqual(4 * se);
  });

  it('is exactly the U-statistic of Gretton et al. (2012), eq. 3, with k = exp(−‖a − b‖²/(2h²)): on fixed points', async () => {
    // The unbiasedness test above has an SE a tenth of its target, so a biased denominator n²,
    // the diagonal i = j kept, or the kernel's 2 dropped all passed it.
    const X = [[0, 0], [1, 0], [3, 1]];
    const Y = [[0.5, 0], [2, 2], [-1, 0.5], [0, 3]];
    const h = 1.3;
    const k = (a: number[], b: number[]) => Math.exp(-((a[0]! - b[0]!) ** 2 + (a[1]! - b[1]!) ** 2) / (2 * h * h));
    const within = (S: number[][]) => {
      let s = 0;
      S.forEach((a, i) => S.forEach((b, j) => { if (i !== j) s += k(a, b); }));
      return s / (S.length * (S.length - 1));
    };
    let between = 0;
    for (const a of X) for (const b of Y) between += k(a, b);
    const expected = within(X) + within(Y) - (2 * between) / (X.length * Y.length);
    // float64 sums of a dozen terms of size ≤ 1: within 1e-15 of the host's order.
    expect((await mmd2(tensor(X, f64), tensor(Y, f64), { bandwidth: h })).value).toBeCloseTo(expected, 14);
  });

  it('the median heuristic is the median of the distances, the mean of the middle two for an even count', async () => {
    // 1-D points 0, 1 (x) and 3, 7 (y): the 6 pairwise distances are 1, 2, 3, 4, 6, 7, whose
    // median is (3 + 4)/2 = 3.5 exactly, not √((3² + 4²)/2) = 3.5355… (the median of the squared
    // distances, rooted). Every value here is exact in float64.
    const x = tensor([[0], [1]], f64);
    const y = tensor([[3], [7]], f64);
    expect(await medianBandwidth(x, y)).toBe(3.5);
    expect((await mmd2(x, y)).bandwidth).toBe(3.5);
    // With points = 3 (0 and 1 from x, 3 from y) the 3 distances 1, 3, 2 have a middle one: 2.
    expect(await medianBandwidth(x, y, 3)).toBe(2);
  });
});

describe('the null standard error with samples of two sizes', () => {
  it('is the spread of the statistic over repeated draws from one law (it was up to 2× that: n = min(M, N) in 2E[h²]/(n(n−1)))', async () => {
    // M = 20 against N = 200, both N(0, 1) in 1-D, 300 draws in float64: the standard deviation of
    // the 300 values against the mean reported standard error. An SD from 300 draws is within
    // about ±4% (1/√(2·300)) of the true one; the ratio was 1.8–2.1 before.
    for (const [name, statistic] of [['mmd2', (x: Tensor, y: Tensor) => mmd2(x, y, { bandwidth: 1 })], ['energyDistance', energyDistance]] as const) {
      const values: number[] = [];
      let reported = 0;
      const draws = 300;
      for (let i = 0; i < draws; i++) {
        const x = randn([20, 1], { key: foldIn(randomKey(81), 2 * i), dtype: 'float64' });
        const y = randn([200, 1], { key: foldIn(randomKey(81), 2 * i + 1), dtype: 'float64' });
        const r = await statistic(x, y);
        values.push(r.value);
        reported += r.nullStandardError / draws;
        x.dispose();
        y.dispose();
      }
      const mean = values.reduce((a, b) => a + b, 0) / draws;
      const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (draws - 1));
      expect(reported / sd, name).toBeGreaterThan(0.85);
      expect(reported / sd, name).toBeLessThan(1.18);
    }
  });
});

describe('energy distance', () => {
  it('≈ 0 within 4 null SE for one distribution, clearly > 0 for different ones', async () => {
    const p = eightGaussians();
    const x = p.sample(1000, { key: randomKey(11), dtype: 'float64' });
    const y = p.sample(1000, { key: randomKey(12), dtype: 'float64' });
    const same = await energyDistance(x, y);
    expect(Math.abs(same.value)).toBeLessThanOrEqual(4 * same.nullStandardError);
    const z = rings().sample(1000, { key: randomKey(13), dtype: 'float64' });
    const different = await energyDistance(x, z);
    expect(different.value).toBeGreaterThan(10 * different.nullStandardError);
    report.push(`energy same: ${same.value.toExponential(3)} (SE ${same.nullStandardError.toExponential(2)}); 8 Gaussians vs rings: ${different.value.toExponential(3)} (SE ${different.nullStandardError.toExponential(2)})`);
  });

  it('is unbiased: 1-D N(0, 1) vs N(1, 1) matches the closed form', async () => {
    // X − Y ~ N(−δ, 2), X − X' ~ N(0, 2) and E|N(μ, s²)| = s√(2/π)e^{−μ²/(2s²)} + μ·erf(μ/(s√2)):
    // D = 2[(2/√π)e^{−δ²/4} + δ·erf(δ/2)] − 4/√π.
    const delta = 1;
    const exact = 2 * ((2 / Math.sqrt(Math.PI)) * Math.exp(-(delta * delta) / 4) + delta * erf(delta / 2)) - 4 / Math.sqrt(Math.PI);
    const values: number[] = [];
    for (let b = 0; b < 16; b++) {
      const key = foldIn(randomKey(14), b);
      const x = randn([250, 1], { key: foldIn(key, 0), ...f64 });
      const y = randn([250, 1], { key: foldIn(key, 1), ...f64 }).add(delta);
      values.push((await energyDistance(x, y)).value);
    }
    const { mean, se } = replicateMean(values);
    report.push(`energy closed form ${exact.toFixed(5)}: replicate mean ${mean.toFixed(5)} ± ${se.toFixed(5)}`);
    expect(Math.abs(mean - exact)).toBeLessThanOrEqual(4 * se);
  });
});

describe('a sample disposed while a metric runs', () => {
  it('is named by the metric, not by the first op to use it', async () => {
    // 'sub: first operand, a float32 [64,2] tensor, was disposed', for the second sample.
    for (const [name, metric] of [['mmd2', mmd2], ['energyDistance', energyDistance]] as const) {
      const x = randn([64, 2], { key: randomKey(1) });
      const y = randn([64, 2], { key: randomKey(2) });
      const pending = metric(x, y);
      y.dispose();
      await expect(pending).rejects.toThrow(`${name}: the second sample, a float32 [64,2] tensor, was disposed while ${name} was running; keep it until the promise settles`);
      x.dispose();
    }
  });
});

describe('mode weights', () => {
  it('recovers the weights of a well-separated mixture within 4 binomial SE', async () => {
    // Means 10 apart with unit covariances: a point is nearer the wrong mean only beyond 5σ along
    // the joining line, probability Φ(−5) = 3e-7: negligible next to the binomial SE √(w(1−w)/n).
    const weights = [0.5, 0.3, 0.2];
    const means = [
      [0, 0],
      [10, 0],
      [0, 10],
    ];
    const mixture = new GaussianMixture({ weights, means });
    const n = 5000;
    const x = mixture.sample(n, { key: randomKey(21), dtype: 'float64' });
    const got = await modeWeights(x, means);
    const viaTensor = await modeWeights(x, tensor(means, f64));
    expect(viaTensor).toEqual(got);
    report.push(`mode weights: ${got.map((w) => w.toFixed(4)).join(', ')} (true 0.5, 0.3, 0.2)`);
    got.forEach((w, k) => expect(Math.abs(w - weights[k]!)).toBeLessThanOrEqual(4 * Math.sqrt((weights[k]! * (1 - weights[k]!)) / n)));
    expect(got.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('counts a far float32 point once, for its nearest mode', async () => {
    // A diverging sampler leaves a few finite points far out. Their squared distances to the two
    // modes rounded to one float32 from |x| ≈ 1e8 (and overflowed together from ~1e19), so the
    // point counted for both modes and the fractions summed to 4/3. (v, 0.37v) is nearer (2, 2).
    for (const v of [1e8, 1e20, 1e30]) {
      const x = tensor([[v, 0.37 * v], [2, 2], [-2, -2]], { dtype: 'float32' });
      expect(await modeWeights(x, [[-2, -2], [2, 2]])).toEqual([1 / 3, 2 / 3].map((w) => Math.fround(w)));
      x.dispose();
    }
  });
});

describe('Fisher divergence', () => {
  const standardScore = (x: Tensor) => x.neg(); // N(0, I)

  it('is 0 for the exact score', async () => {
    const mixture = eightGaussians();
    const x = mixture.sample(500, { key: randomKey(31), dtype: 'float64' });
    expect(await fisherDivergence((y) => mixture.score(y), (y) => mixture.score(y), x)).toBe(0);
  });

  it('is ½‖a‖² for a score off by a constant a (on any sample)', async () => {
    const x = randn([300, 2], { key: randomKey(32), ...f64 });
    const a = tensor([0.3, -1.2], f64);
    const fd = await fisherDivergence((y) => y.sub(a).neg(), standardScore, x);
    expect(fd).toBeCloseTo(0.5 * (0.09 + 1.44), 12);
  });

  it('matches ½(1 − 1/τ²)²·d for s(x) = −x/τ² against N(0, I), within 4 SE', async () => {
    // The integrand ½(1 − 1/τ²)²‖x‖² with ‖x‖² ~ χ²_d: mean ½(1 − 1/τ²)²d, sd ½(1 − 1/τ²)²√(2d).
    const d = 2;
    const tau = 2;
    const n = 4000;
    const c = 0.5 * (1 - 1 / tau ** 2) ** 2;
    const x = randn([n, d], { key: randomKey(33), ...f64 });
    const fd = await fisherDivergence((y) => y.mul(-1 / tau ** 2), standardScore, x);
    expect(Math.abs(fd - c * d)).toBeLessThanOrEqual((4 * c * Math.sqrt(2 * d)) / Math.sqrt(n));
  });

  it('checks its scores and cond instead of passing a mismatched cond through (the scores may ignore it)', async () => {
    const x = randn([4, 2], { key: randomKey(34), ...f64 });
    await expect(fisherDivergence(standardScore, standardScore, x, tensor([1, 2, 3], f64))).rejects.toThrow(
      /^fisherDivergence: cond must be a Tensor of shape \[4\] \(one noise level per row of x\), got shape \[3\]$/,
    );
    await expect(fisherDivergence(standardScore, 'normal' as never, x)).rejects.toThrow(/^fisherDivergence: referenceScore must be a function \(x \[N, d\], cond\?\) => \[N, d\], got string$/);
    await expect(fisherDivergence(standardScore, (() => 0) as never, x)).rejects.toThrow(/^fisherDivergence: referenceScore must return a Tensor, got number$/);
    // A score of another dtype, or a cond of another, is named here, not in a subtraction inside.
    await expect(fisherDivergence((z) => z.cast('float32'), standardScore, x)).rejects.toThrow(
      /^fisherDivergence: the score function returned float32 for a float64 input; a score has the dtype of its input$/,
    );
    await expect(fisherDivergence(standardScore, standardScore, x, tensor([1, 2, 3, 4], { dtype: 'int32' }))).rejects.toThrow(/^fisherDivergence: cond must have x's dtype \(float64\), got int32$/);
  });
});

describe('pairwise squared distances', () => {
  it('names itself and the mismatch when the points differ in dimension or are not [N, d]', () => {
    const a = randn([3, 2], { key: randomKey(35), ...f64 });
    expect(() => pairwiseSquaredDistances(a, randn([3, 3], { key: randomKey(36), ...f64 }))).toThrow(/^pairwiseSquaredDistances: samples have different dimensions \(2 vs 3\)$/);
    expect(() => pairwiseSquaredDistances(a, tensor([1, 2], f64))).toThrow(/^pairwiseSquaredDistances: the second sample must have rank 2 \(shape \[N, d\]/);
  });
});

describe('2-D histogram KL', () => {
  const grid = { xRange: [-4, 4] as const, yRange: [-4, 4] as const, bins: 16 };
  const cells = 16 * 16;
  const n = 20000;

  it('is exactly 0 for identical samples', async () => {
    const x = randn([1000, 2], { key: randomKey(41), ...f64 });
    expect(await histogramKL(x, x, grid)).toBe(0);
  });

  it('is Σ p̂ log(p̂/q̂) with p̂_c = (count_c + ½)/(n + ½·cells), the default pseudocount: on a 2 × 1 grid by hand', async () => {
    // The sample-based tests cannot see the pseudocount at n = 20000 (a default of 1 passed them).
    const small = { xRange: [0, 2] as const, yRange: [0, 1] as const, bins: [2, 1] as [number, number] };
    const p = tensor([[0.1, 0.5], [0.2, 0.5], [0.3, 0.5], [1.5, 0.5]], f64); // counts 3, 1
    const q = tensor([[1.2, 0.5], [1.7, 0.5]], f64); // counts 0, 2
    const kl = (a: number) => {
      const ph = [(3 + a) / (4 + 2 * a), (1 + a) / (4 + 2 * a)];
      const qh = [a / (2 + 2 * a), (2 + a) / (2 + 2 * a)];
      return ph[0]! * Math.log(ph[0]! / qh[0]!) + ph[1]! * Math.log(ph[1]! / qh[1]!);
    };
    expect(await histogramKL(p, q, small)).toBeCloseTo(kl(0.5), 14);
    expect(await histogramKL(p, q, small, { pseudocount: 2 })).toBeCloseTo(kl(2), 14);
  });

  it('for two samples of one distribution stays within the plug-in bias χ²_{C−1}/n', async () => {
    // For p = q, n·KL̂ ≈ ½Σ(p̂ − q̂)²/p·n ~ χ² with at most C − 1 degrees of freedom (fewer when
    // cells are nearly empty), so KL̂ ≤ (C − 1 + 4√(2(C − 1)))/n with false-alarm chance < 1e-4.
    const x = randn([n, 2], { key: randomKey(42), ...f64 });
    const y = randn([n, 2], { key: randomKey(43), ...f64 });
    const kl = await histogramKL(x, y, grid);
    report.push(`histogram KL same: ${kl.toExponential(3)} (bound ${((cells - 1 + 4 * Math.sqrt(2 * (cells - 1))) / n).toExponential(2)})`);
    expect(kl).toBeGreaterThanOrEqual(0);
    expect(kl).toBeLessThanOrEqual((cells - 1 + 4 * Math.sqrt(2 * (cells - 1))) / n);
  });

  it('N(0, I) vs N((1, 0), I) matches the exact binned KL within bias + 4 SE', async () => {
    // Exact cell probabilities from normal CDFs, renormalised to the grid (outside points are
    // dropped), with the pseudo-count ½ applied to the expected counts: the target T. Around it,
    // the plug-in bias (C − 1)/(2n) + Σ p(1 − q)/(2nq) (second-order delta method, Miller 1955)
    // and the SE √(Var_p[log p/q]/n + Var_q[p/q]/n) (first-order delta method).
    const edges = Array.from({ length: 17 }, (_, i) => -4 + i * 0.5);
    const cellMass = (shift: number) => {
      const px = edges.slice(0, 16).map((e, i) => normalCdf(edges[i + 1]! - shift) - normalCdf(e - shift));
      const py = edges.slice(0, 16).map((e, i) => normalCdf(edges[i + 1]!) - normalCdf(e));
      const m = px.flatMap((a) => py.map((b) => a * b));
      const total = m.reduce((s, v) => s + v, 0);
      return { probs: m.map((v) => v / total), inGrid: total };
    };
    const P = cellMass(0);
    const Q = cellMass(1);
    const smooth = (probs: number[], count: number) => probs.map((v) => (count * v + 0.5) / (count + 0.5 * cells));
    const p = smooth(P.probs, n * P.inGrid);
    const q = smooth(Q.probs, n * Q.inGrid);
    const target = p.reduce((s, pc, c) => s + pc * Math.log(pc / q[c]!), 0);
    const bias = (cells - 1) / (2 * n) + p.reduce((s, pc, c) => s + (pc * (1 - q[c]!)) / (2 * n * q[c]!), 0);
    const meanLog = target;
    const varP = p.reduce((s, pc, c) => s + pc * (Math.log(pc / q[c]!) - meanLog) ** 2, 0);
    const varQ = q.reduce((s, qc, c) => s + qc * (p[c]! / qc - 1) ** 2, 0);
    const se = Math.sqrt(varP / n + varQ / n);
    const x = randn([n, 2], { key: randomKey(44), ...f64 });
    const y = randn([n, 2], { key: randomKey(45), ...f64 }).add(tensor([1, 0], f64));
    const kl = await histogramKL(x, y, grid);
    report.push(`histogram KL N(0,I)‖N((1,0),I): ${kl.toFixed(4)} (binned target ${target.toFixed(4)}, bias ${bias.toExponential(2)}, SE ${se.toExponential(2)}; continuous KL 0.5)`);
    expect(Math.abs(kl - target)).toBeLessThanOrEqual(bias + 4 * se);
  });

  it('rejects a bad grid with a message that says what was expected', async () => {
    const x = randn([10, 2], { key: randomKey(46), ...f64 });
    await expect(histogramKL(x, x, { xRange: [1, -1], yRange: [0, 1], bins: 4 })).rejects.toThrow(/xRange must have lo < hi/);
    await expect(histogramKL(x, x, { ...grid, bins: 0 })).rejects.toThrow(/bins must be positive integers/);
  });

  it('say how many samples are non-finite instead of returning NaN, zeros or a bandwidth error', async () => {
    const good = randn([10, 2], { key: randomKey(48), ...f64 });
    // Rows 2, 5 and 7 diverged: a NaN, a +∞ and a −∞ in one coordinate each.
    const values = Array.from(good.dataSync());
    [[2, 0, NaN], [5, 1, Infinity], [7, 0, -Infinity]].forEach(([row, col, v]) => (values[2 * row! + col!] = v!));
    const bad = tensor(values, { ...f64, shape: [10, 2] });
    expect(await countNonFinite(bad)).toBe(3);
    expect(await countNonFinite(good)).toBe(0);
    const message = (where: string, name: string) => new RegExp(`^${where}: 3 of 10 samples are non-finite \\(NaN or ±Infinity\\) in ${name}; `);
    await expect(mmd2(bad, good)).rejects.toThrow(message('mmd2', 'x'));
    await expect(mmd2(good, bad, { bandwidth: 1 })).rejects.toThrow(message('mmd2', 'y'));
    await expect(energyDistance(good, bad)).rejects.toThrow(message('energyDistance', 'y'));
    await expect(medianBandwidth(bad, good)).rejects.toThrow(message('medianBandwidth', 'x'));
    await expect(modeWeights(bad, [[0, 0], [1, 1]])).rejects.toThrow(message('modeWeights', 'x'));
    // A NaN falls in no bin: histogramKL returned a finite KL even for samples that were all NaN.
    const histogramGrid = { xRange: [-3, 3], yRange: [-3, 3], bins: 4 } as const;
    await expect(histogramKL(bad, good, histogramGrid)).rejects.toThrow(message('histogramKL', 'p'));
    await expect(histogramKL(good, bad, histogramGrid)).rejects.toThrow(message('histogramKL', 'q'));
    expect(Number.isFinite(await histogramKL(good, good, histogramGrid))).toBe(true);
    // The same samples without the bad rows measure normally.
    expect((await modeWeights(good, [[0, 0], [1, 1]])).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('mmd2 and energyDistance need two points in each sample, and say so in their own name before any work', async () => {
    const one = randn([1, 2], { key: randomKey(49), ...f64 });
    const five = randn([5, 2], { key: randomKey(50), ...f64 });
    const message = (where: string) => new RegExp(`^${where}: each sample needs at least 2 points \\(the statistic averages over pairs of distinct points\\), got 1 and 5$`);
    await expect(mmd2(one, five)).rejects.toThrow(message('mmd2'));
    await expect(energyDistance(one, five)).rejects.toThrow(message('energyDistance'));
  });

  it('modeWeights refuses modes that are neither a tensor nor rows of numbers, naming the argument', async () => {
    // It failed as 'modes.map is not a function'.
    const x = randn([10, 2], { key: randomKey(48), ...f64 });
    await expect(modeWeights(x, 3 as never)).rejects.toThrow(/^modeWeights: modes must be a Tensor \[K, 2\] or K rows of 2 numbers, got number$/);
    await expect(modeWeights(x, null as never)).rejects.toThrow(/^modeWeights: modes must be .*, got null$/);
  });

  it('rejects a misspelled option, naming the closest valid one and all of them, and nonsense values', async () => {
    const x = randn([10, 2], { key: randomKey(47), ...f64 });
    await expect(mmd2(x, x, { bandwith: 0.5 } as never)).rejects.toThrow(unknownOption('mmd2', 'bandwith', 'bandwidth', ['bandwidth', 'medianPoints']));
    await expect(histogramKL(x, x, grid, { pseudoCount: 1 } as never)).rejects.toThrow(unknownOption('histogramKL', 'pseudoCount', 'pseudocount', ['pseudocount']));
    expect(() => histogram2d(x, { ...grid, bin: 4 } as never)).toThrow(unknownOption('histogram2d', 'bin', 'bins', ['xRange', 'yRange', 'bins']));
    // A grid missing a field failed as '... is not iterable' or reading an entry of undefined; an
    // infinite range made NaN bin edges and counted nothing.
    expect(() => histogram2d(x, {} as never)).toThrow(/^histogram2d: bins must be a number or \[x bins, y bins\], got undefined$/);
    expect(() => histogram2d(x, { yRange: [0, 1], bins: 4 } as never)).toThrow(/^histogram2d: xRange must be \[lo, hi\], got undefined$/);
    expect(() => histogram2d(x, { xRange: [0, 1], yRange: 1, bins: [4, 4] } as never)).toThrow(/^histogram2d: yRange must be \[lo, hi\], got 1$/);
    expect(() => histogram2d(x, { ...grid, bins: [4] } as never)).toThrow(/^histogram2d: bins must be a number or \[x bins, y bins\], got \[4\]$/);
    expect(() => histogram2d(x, { ...grid, xRange: [-Infinity, 1] })).toThrow(/^histogram2d: xRange must have lo < hi, both finite, got \[-Infinity, 1\]$/);
    // histogramKL's own samples and grid are refused under its name (they said histogram2d).
    await expect(histogramKL(x, x, { ...grid, xRange: [1, 0] })).rejects.toThrow(/^histogramKL: xRange must have lo < hi, both finite, got \[1, 0\]$/);
    const x3 = randn([10, 3], { key: randomKey(49), ...f64 });
    await expect(histogramKL(x3, x3, grid)).rejects.toThrow(/^histogramKL: expected 2-D points \[N, 2\], got \[10,3\]$/);
    await expect(mmd2(x, x, { medianPoints: 1 })).rejects.toThrow(/^mmd2: medianPoints must be an integer >= 2, got 1$/);
    await expect(mmd2(x, x, { bandwidth: 0.5, medianPoints: 100 })).rejects.toThrow(/^mmd2: medianPoints applies to the median heuristic only/);
    await expect(medianBandwidth(x, x, 2.5)).rejects.toThrow(/^medianBandwidth: points must be an integer >= 2, got 2.5$/);
  });
});

// The measured figures, for the record (the lead's report quotes them).
afterAll(() => {
  console.log(report.join('\n'));
});

describe('Fisher divergence with a noise level', () => {
  it('passes cond to the reference score too', async () => {
    // s(x) = −x, s*(x, σ) = −x/σ with σ = 2: s − s* = −x/2, so ½·mean‖x/2‖² = ⅛·mean‖x‖² = ⅛·(5 + 9)/2 = 0.875,
    // every value exact in float64.
    const x = tensor([[1, 2], [3, 0]], f64);
    const sigma = tensor([2, 2], f64);
    const reference = (z: Tensor, c?: Tensor) => z.neg().div(perRow(c!));
    expect(await fisherDivergence((z) => z.neg(), reference, x, sigma)).toBe(0.875);
  });
});

describe('pairwise squared distances', () => {
  it('sum every coordinate (d = 1 and d = 3)', () => {
    const a = tensor([[0, 0, 0], [1, 1, 1]], f64);
    const b = tensor([[1, 2, 3]], f64);
    // 1 + 4 + 9 and 0 + 1 + 4: exact.
    expect(Array.from(pairwiseSquaredDistances(a, b).dataSync())).toEqual([14, 5]);
    expect(Array.from(pairwiseSquaredDistances(tensor([[0], [2]], f64), tensor([[3]], f64)).dataSync())).toEqual([9, 1]);
  });
});

describe('the median heuristic', () => {
  it('refuses a median distance of 0 instead of dividing by it', async () => {
    // Pooled 0, 0, 0 (x) and 0, 5 (y): 6 of the 10 distances are 0, so the median is 0.
    const x = tensor([[0], [0], [0]], f64);
    const y = tensor([[0], [5]], f64);
    // Each under the name of the function called (mmd2's said medianBandwidth).
    const message = (where: string) => new RegExp(`^${where}: the median pairwise distance is 0 \\(more than half the points coincide\\); pass a bandwidth$`);
    await expect(medianBandwidth(x, y)).rejects.toThrow(message('medianBandwidth'));
    await expect(mmd2(x, y)).rejects.toThrow(message('mmd2'));
  });
});

describe('the null standard error on fixed points', () => {
  // The host's sum over i ≠ j of h² for the first n = min(M, N, 500) points, then
  // √(E[h²]/2 · (1/(M(M−1)) + 1/(N(N−1)) + 2/(MN))): float64 sums of ~4000 terms of size ≤ 16
  // (RBF) or ≤ 100 (distances), so agreement to 1e-10 relative (roundoff ~4000·2⁻⁵³ ≈ 5e-13).
  const hostSe = (xs: number[], ys: number[], k: (a: number, b: number) => number) => {
    const [M, N] = [xs.length, ys.length];
    const n = Math.min(M, N, 500);
    let s = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        const h = k(xs[i]!, xs[j]!) + k(ys[i]!, ys[j]!) - k(xs[i]!, ys[j]!) - k(xs[j]!, ys[i]!);
        s += h * h;
      }
    }
    const meanH2 = s / (n * (n - 1));
    return Math.sqrt(0.5 * meanH2 * (1 / (M * (M - 1)) + 1 / (N * (N - 1)) + 2 / (M * N)));
  };

  it('is the formula of TwoSampleStatistic for MMD² and the energy distance, M = 60, N = 70 (1-D)', async () => {
    const x = randn([60, 1], { key: randomKey(93), ...f64 });
    const y = randn([70, 1], { key: randomKey(94), ...f64 }).add(0.3);
    const [xs, ys] = [Array.from(x.dataSync()), Array.from(y.dataSync())];
    const h = 0.8;
    const rbf = (a: number, b: number) => Math.exp(-((a - b) ** 2) / (2 * h * h));
    const m = await mmd2(x, y, { bandwidth: h });
    expect(Math.abs(m.nullStandardError / hostSe(xs, ys, rbf) - 1)).toBeLessThan(1e-10);
    const e = await energyDistance(x, y);
    expect(Math.abs(e.nullStandardError / hostSe(xs, ys, (a, b) => -Math.abs(a - b)) - 1)).toBeLessThan(1e-10);
  });
});

describe('the energy distance with a far point on the negative side (float32)', () => {
  it('takes its unit from the most negative coordinate too', async () => {
    // A row at (−2e20, −2e20): its distances (~2.8e20) enter each sum with weight ~2/50, and float32
    // resolves them to ~1e-7 (the same bound as the positive case in metrics.test.ts). Without the
    // negative side in the unit, their squares overflowed float32 to +∞.
    const x = concat([randn([49, 2], { key: randomKey(95) }), tensor([[-2e20, -2e20]])], 0);
    const y = randn([50, 2], { key: randomKey(96) });
    const [e, e64] = [await energyDistance(x, y), await energyDistance(x.cast('float64'), y.cast('float64'))];
    expect(Number.isFinite(e.value)).toBe(true);
    expect(Math.abs(e.value - e64.value)).toBeLessThan(1e-6 * 2.8e20 * 2 / 50);
  });
});

describe('MMD² with two far points near each other (float32)', () => {
  it('keeps every kernel value at most 1: finite, and within the pair\'s weight of float64', async () => {
    // Two points at ~1e5 (or 1e7), 3 (or 1) apart: |a|² + |b|² − 2ab in float32 leaves their
    // distance to rounding of ~ulp(1e10), either sign; unclamped, exp of a positive one was +∞.
    // Clamped, their two kernel entries lie in [0, 1], each weighted 1/(M(M − 1)) in the x
    // average: float32 may be off by up to 2/(M(M − 1)) there, plus ~1e-6 of float32 rounding
    // elsewhere (sums of ~5000 values ≤ 1 at 2⁻²⁴).
    const y = randn([50, 2], { key: randomKey(2) });
    for (const [far, apart] of [[1e5, 3], [1e7, 1]] as const) {
      const x = concat([randn([50, 2], { key: randomKey(1) }), tensor([[far, far], [far + apart, far - 0.5 * apart]])], 0);
      const [m, m64] = [await mmd2(x, y, { bandwidth: 1 }), await mmd2(x.cast('float64'), y.cast('float64'), { bandwidth: 1 })];
      expect(Number.isFinite(m.value), `${far}`).toBe(true);
      expect(Math.abs(m.value - m64.value), `${far}`).toBeLessThanOrEqual(2 / (52 * 51) + 1e-5);
    }
  });
});

describe('mode weights', () => {
  it('refuses modes of another dimension, naming the shapes; rows of numbers row by row', async () => {
    const x = tensor([[0, 0], [1, 1]], f64);
    await expect(modeWeights(x, tensor([[0, 0, 0]], f64))).rejects.toThrow(/^modeWeights: modes must be \[K, 2\], got \[1,3\]$/);
    // Rows of numbers failed in tensor(), naming neither modeWeights nor modes.
    await expect(modeWeights(x, [[0, 0, 0]])).rejects.toThrow(/^modeWeights: modes\[0\] must be 2 numbers \(a row of the \[K, 2\] modes\), got \[0,0,0\]$/);
    await expect(modeWeights(x, [[0, 0], [1]])).rejects.toThrow(/^modeWeights: modes\[1\] must be 2 numbers \(a row of the \[K, 2\] modes\), got \[1\]$/);
    await expect(modeWeights(x, [['a', 'b']] as never)).rejects.toThrow(/^modeWeights: modes\[0\] must be 2 numbers \(a row of the \[K, 2\] modes\), got \["a","b"\]$/);
    // Holes, a missing row or number (forEach and every skipped them).
    const rows = [[0, 0], [1, 1]];
    delete rows[1];
    await expect(modeWeights(x, rows)).rejects.toThrow(/^modeWeights: modes\[1\] must be 2 numbers \(a row of the \[K, 2\] modes\), got undefined$/);
    const row = [0, 1];
    delete row[1];
    await expect(modeWeights(x, [row])).rejects.toThrow(/^modeWeights: modes\[0\] must be 2 numbers \(a row of the \[K, 2\] modes\), got \[0,undefined\]$/);
  });
});

describe('2-D histogram bins', () => {
  it('are half-open [lo, hi) on each axis, each axis on its own range', () => {
    const grid = { xRange: [0, 2] as const, yRange: [0, 1] as const, bins: [2, 1] as [number, number] };
    // (1, 0.5) on the inner edge: the upper bin; (0, 0) at lo: counted; (2, 0.5) at hi: not;
    // (0.5, 1.5) is outside yRange (inside xRange): not counted; (1.9, 0.99): upper bin.
    const points = tensor([[1, 0.5], [0, 0], [2, 0.5], [0.5, 1.5], [1.9, 0.99]], f64);
    expect(Array.from(histogram2d(points, grid).dataSync())).toEqual([1, 2]);
  });
});
