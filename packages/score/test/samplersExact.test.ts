// The SDEs and samplers against answers known in closed form, with every reference written here
// from Song et al. 2021 ("Score-Based Generative Modeling through Stochastic Differential
// Equations", arXiv 2011.13456) rather than read through the library's own Sde objects:
//
// - the coefficients m(t), s(t), f and g of VE, VP and sub-VP, from the paper's formulas;
// - 1-D Gaussian data N(μ, v₀), whose marginal at t is N(m(t)μ, c(t)) with c = m²v₀ + s², and whose
//   exact score −(x − m(t)μ)/c(t) is written here with tensor ops from those formulas;
// - each sampler's discrete chain with that score is affine plus Gaussian noise, so the exact
//   mean and variance of its output follow from a scalar float64 recursion on the host (the law of
//   the discretisation, not of the continuous limit);
// - the probability-flow ODE, against a fine-step float64 Runge–Kutta reference computed here.
//
// Statistical checks use 5 standard errors (a two-sided 6e-7 chance per check of a false alarm).
// CPU only; float64 unless a test says otherwise.

import { describe, expect, it } from 'vitest';
import {
  type RandomKey, type Tensor, exp, expm1, foldIn, full, mul, randn, randomKey, splitKey, tensor,
} from '@scorch/tensor';
import {
  type SdeSamplerOptions, annealedLangevinDynamics, langevinDynamics, predictorCorrector, probabilityFlowOde,
  reverseSdeEulerMaruyama,
} from '../src/samplers.js';
import { SDE_EPSILON, type Sde, type SdeKind, samplingEpsilon, subVpSde, veSde, vpSde } from '../src/sde.js';
import { unitRoundoff } from './devices.js';

const K_SE = 5;
const u64 = unitRoundoff('float64');

/** Song et al. 2021's coefficients (§3.4, App. B), written independently of sde.ts. */
interface Params { betaMin: number; betaMax: number; sigmaMin: number; sigmaMax: number }
const DEFAULTS: Params = { betaMin: 0.1, betaMax: 20, sigmaMin: 0.01, sigmaMax: 50 };
function paperCoefficients(kind: SdeKind, p: Params = DEFAULTS) {
  const beta = (t: number) => p.betaMin + t * (p.betaMax - p.betaMin);
  const integral = (t: number) => p.betaMin * t + 0.5 * t * t * (p.betaMax - p.betaMin); // ∫₀ᵗ β
  const sigma = (t: number) => p.sigmaMin * (p.sigmaMax / p.sigmaMin) ** t;
  return (t: number) => {
    if (kind === 've') {
      // dx = √(dσ²/dt) dw, σ(t) = σ_min(σ_max/σ_min)ᵗ; std σ(t) as in the paper's code.
      return { m: 1, s: sigma(t), f: 0, g: sigma(t) * Math.sqrt(2 * Math.log(p.sigmaMax / p.sigmaMin)) };
    }
    const m = Math.exp(-0.5 * integral(t));
    if (kind === 'vp') return { m, s: Math.sqrt(-Math.expm1(-integral(t))), f: -0.5 * beta(t), g: Math.sqrt(beta(t)) };
    // sub-VP: dx = −½βx dt + √(β(1 − e^{−2∫β})) dw, std 1 − e^{−∫β}.
    return { m, s: -Math.expm1(-integral(t)), f: -0.5 * beta(t), g: Math.sqrt(beta(t) * -Math.expm1(-2 * integral(t))) };
  };
}

const makers: Record<SdeKind, (p?: Params) => Sde> = {
  ve: (p) => veSde(p && { sigmaMin: p.sigmaMin, sigmaMax: p.sigmaMax }),
  vp: (p) => vpSde(p && { betaMin: p.betaMin, betaMax: p.betaMax }),
  subvp: (p) => subVpSde(p && { betaMin: p.betaMin, betaMax: p.betaMax }),
};
const KINDS: SdeKind[] = ['ve', 'vp', 'subvp'];

describe('SDE coefficients against Song et al. 2021', () => {
  const times = [0, 1e-7, SDE_EPSILON, 1e-3, 0.1, 0.5, 0.999, 1];
  const custom: Params = { betaMin: 0.5, betaMax: 7, sigmaMin: 0.1, sigmaMax: 3 };
  // Bound: the largest condition number among the formulas is VE's exponent t·log(σ_max/σ_min) ≤ 8.6
  // (exp amplifies its relative error by that much); with the roundings of the constants, the
  // product and the scaling (≲ 5), each side stays within ~14u of the exact value: 32u covers both.
  // expm1 keeps VP's s and sub-VP's s and g free of cancellation near t = 0.
  const cases = KINDS.flatMap((kind) => (['float64', 'float32'] as const).flatMap((dtype) => [
    [kind, dtype, 'defaults', undefined] as const,
    [kind, dtype, 'custom', custom] as const,
  ]));
  it.each(cases)('%s %s (%s): m, s, f, g at t from 0 to 1 within 32u', (kind, dtype, _label, params) => {
    const sde = makers[kind](params);
    const ref = paperCoefficients(kind, params);
    const t = tensor(times, { dtype });
    const tHost = Array.from(t.dataSync()); // the times as rounded to dtype
    const bound = 32 * unitRoundoff(dtype);
    const x = tensor(times.map((_, i) => [i + 1, -(i + 1) / 2]), { dtype });
    const got = {
      m: Array.from(sde.meanCoefficient(t).dataSync()),
      s: Array.from(sde.std(t).dataSync()),
      g: Array.from(sde.diffusion(t).dataSync()),
      f: Array.from(sde.drift(x, t).dataSync()),
    };
    tHost.forEach((ti, i) => {
      const r = ref(ti);
      for (const c of ['m', 's', 'g'] as const) {
        const e = r[c];
        const err = e === 0 ? Math.abs(got[c][i]!) : Math.abs(got[c][i]! - e) / Math.abs(e);
        expect(err, `${c}(${ti})`).toBeLessThanOrEqual(bound);
      }
      for (const j of [0, 1]) {
        const xi = x.dataSync()[2 * i + j]!;
        expect(Math.abs(got.f[2 * i + j]! - r.f * xi), `f(${xi}, ${ti})`).toBeLessThanOrEqual(bound * Math.abs(r.f * xi));
      }
    });
  });

  it('β schedule endpoints, VE\'s geometric σ, sub-VP\'s variance below VP\'s', () => {
    const t = tensor([0, 0.25, 0.5, 0.75, 1], { dtype: 'float64' });
    for (const [kind, p] of [['vp', DEFAULTS], ['subvp', DEFAULTS], ['vp', custom]] as const) {
      const g2 = Array.from(makers[kind](p).diffusion(tensor([0, 1], { dtype: 'float64' })).dataSync()).map((g) => g * g);
      if (kind === 'vp') {
        expect(Math.abs(g2[0]! - p.betaMin)).toBeLessThanOrEqual(4 * u64 * p.betaMin); // g(0)² = β_min
        expect(Math.abs(g2[1]! - p.betaMax)).toBeLessThanOrEqual(4 * u64 * p.betaMax); // g(1)² = β_max
      } else {
        expect(g2[0]).toBe(0); // sub-VP: g(0)² = β_min(1 − e⁰) = 0
      }
    }
    for (const p of [DEFAULTS, custom]) {
      const s = Array.from(makers.ve(p).std(t).dataSync());
      expect(Math.abs(s[0]! - p.sigmaMin)).toBeLessThanOrEqual(4 * u64 * p.sigmaMin);
      expect(Math.abs(s[4]! - p.sigmaMax)).toBeLessThanOrEqual(32 * u64 * p.sigmaMax);
      // Geometric: equal ratios over equal steps, (σ_max/σ_min)^¼ each.
      for (let i = 0; i < 4; i++) expect(Math.abs(s[i + 1]! / s[i]! - (p.sigmaMax / p.sigmaMin) ** 0.25)).toBeLessThanOrEqual(32 * u64 * (p.sigmaMax / p.sigmaMin));
    }
    const vp = Array.from(vpSde().std(t).dataSync());
    const sub = Array.from(subVpSde().std(t).dataSync());
    const m = Array.from(vpSde().meanCoefficient(t).dataSync());
    for (let i = 1; i < 5; i++) {
      // sub-VP's variance (1 − m²)² is VP's 1 − m² squared: below it, and the two share m(t).
      expect(sub[i]! ** 2).toBeLessThan(vp[i]! ** 2);
      expect(Math.abs(sub[i]! - vp[i]! ** 2)).toBeLessThanOrEqual(8 * u64);
      expect(Array.from(subVpSde().meanCoefficient(t).dataSync())[i]).toBe(m[i]);
    }
  });

  it.each(KINDS.flatMap((k) => [[k, 'float64'], [k, 'float32']] as const))('%s prior sample in %s: N(0, σ²I) with σ = σ_max (VE) or 1', (kind, dtype) => {
    const sde = makers[kind]();
    const scale = kind === 've' ? DEFAULTS.sigmaMax : 1;
    const x = sde.priorSample([20000, 2], { key: randomKey(3), dtype });
    expect(x.dtype).toBe(dtype);
    expect(x.shape).toEqual([20000, 2]);
    const v = Array.from(x.dataSync());
    const n = v.length;
    const mean = v.reduce((a, b) => a + b, 0) / n;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
    // SE of the sample mean σ/√n, of the sample variance σ²√(2/(n − 1)) (Gaussian).
    expect(Math.abs(mean)).toBeLessThanOrEqual((K_SE * scale) / Math.sqrt(n));
    expect(Math.abs(variance - scale * scale)).toBeLessThanOrEqual(K_SE * scale * scale * Math.sqrt(2 / (n - 1)));
  });
});

// ------------------------------------------------------------------------------------------------
// 1-D Gaussian data and the discrete chains of the samplers

const MU = 1.5;
const V0 = 0.3;

/** The exact score of N(m(t)μ, m(t)²v₀ + s(t)²) at t, from the paper's formulas in tensor ops. */
function exactScore(kind: SdeKind) {
  const { betaMin, betaMax, sigmaMin, sigmaMax } = DEFAULTS;
  return (x: Tensor, t?: Tensor): Tensor => {
    const tt = t!;
    let m: Tensor;
    let s2: Tensor;
    if (kind === 've') {
      m = full(tt.shape, 1, { dtype: tt.dtype });
      const s = exp(mul(tt, Math.log(sigmaMax / sigmaMin))).mul(sigmaMin);
      s2 = s.mul(s);
    } else {
      const integral = mul(tt, betaMin).add(mul(mul(tt, tt), 0.5 * (betaMax - betaMin)));
      m = exp(integral.mul(-0.5));
      const oneMinus = expm1(integral.neg()).neg();
      s2 = kind === 'vp' ? oneMinus : oneMinus.mul(oneMinus);
    }
    const c = m.mul(m).mul(V0).add(s2).reshape([-1, 1]);
    return x.sub(m.reshape([-1, 1]).mul(MU)).div(c).neg();
  };
}

const variance = (kind: SdeKind, t: number) => {
  const k = paperCoefficients(kind)(t);
  return k.m * k.m * V0 + k.s * k.s;
};

type Predictor = 'eulerMaruyama' | 'reverseDiffusion';

/**
 * One predictor step at t of size Δt with the exact score, as x ↦ a·x + b plus noise of variance q:
 * Euler–Maruyama on dx = [f − g²s]dt + g dw̄, or the reverse-diffusion step x − fᵢ + Gᵢ²s + Gᵢz
 * with SMLD's chain for VE (Gᵢ² = σ(t)² − σ(t − Δt)²), DDPM's for VP (βᵢ = β(t)Δt,
 * fᵢ = (√(1 − βᵢ) − 1)x, Gᵢ² = βᵢ) and Euler–Maruyama's for sub-VP (Song et al. 2021, eq. 46).
 */
function predictorStep(kind: SdeKind, predictor: Predictor, t: number, dt: number) {
  const k = paperCoefficients(kind)(t);
  const c = variance(kind, t);
  const withScore = (keep: number, G2: number) => ({ a: keep - G2 / c, b: (G2 * k.m * MU) / c, q: G2 });
  if (predictor === 'eulerMaruyama' || kind === 'subvp') return withScore(1 - k.f * dt, k.g * k.g * dt);
  if (kind === 've') return withScore(1, k.s * k.s - paperCoefficients('ve')(t - dt).s ** 2);
  const betaStep = (DEFAULTS.betaMin + t * (DEFAULTS.betaMax - DEFAULTS.betaMin)) * dt;
  return withScore(2 - Math.sqrt(1 - betaStep), betaStep);
}

/** Mean and variance of the output of `steps` predictor steps from the exact law at T = 1. */
function chainLaw(kind: SdeKind, predictor: Predictor, steps: number, eps: number, denoise: boolean) {
  const dt = (1 - eps) / steps;
  let mean = paperCoefficients(kind)(1).m * MU;
  let v = variance(kind, 1);
  for (let i = 0; i < steps; i++) {
    const { a, b, q } = predictorStep(kind, predictor, 1 - i * dt, dt);
    mean = a * mean + b;
    v = a * a * v + (denoise && i === steps - 1 ? 0 : q);
  }
  return { mean, variance: v };
}

/** An exact draw of the marginal at T = 1, [n, 1]. */
function startSample(kind: SdeKind, n: number): Tensor {
  return randn([n, 1], { key: randomKey(17), dtype: 'float64' }).mul(Math.sqrt(variance(kind, 1))).add(paperCoefficients(kind)(1).m * MU);
}

function sampleMoments(x: Tensor) {
  const v = Array.from(x.dataSync());
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, variance: v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1), n: v.length };
}

/** The output is Gaussian: sample mean within 5·√(v/n), sample variance within 5·v√(2/(n − 1)). */
function expectLaw(label: string, x: Tensor, law: { mean: number; variance: number }) {
  const got = sampleMoments(x);
  expect(Math.abs(got.mean - law.mean), `${label}: mean ${got.mean} vs ${law.mean}`).toBeLessThanOrEqual(K_SE * Math.sqrt(law.variance / got.n));
  expect(Math.abs(got.variance - law.variance), `${label}: variance ${got.variance} vs ${law.variance}`).toBeLessThanOrEqual(K_SE * law.variance * Math.sqrt(2 / (got.n - 1)));
}

describe('reverse-time samplers with the exact score: the law of their discrete chains (d = 1)', () => {
  it('stop at the reference code\'s sampling ε by default: 1e-5 for VE, 1e-3 for VP and sub-VP (training\'s is 1e-5 for all)', () => {
    expect(KINDS.map((kind) => samplingEpsilon(makers[kind]()))).toEqual([1e-5, 1e-3, 1e-3]);
    expect(SDE_EPSILON).toBe(1e-5);
  });

  const n = 20000;
  // steps 1 (one step from T to ε), a coarse grid, and a final time other than the default with
  // the last step's noise kept.
  const configs = [
    { steps: 1, eps: SDE_EPSILON, denoise: true },
    { steps: 40, eps: SDE_EPSILON, denoise: true },
    { steps: 40, eps: 0.3, denoise: false },
  ];
  it.each(KINDS)('%s: Euler–Maruyama, and predictor–corrector with no corrector (both predictors)', async (kind) => {
    const sde = makers[kind]();
    const init = startSample(kind, n);
    for (const { steps, eps, denoise } of configs) {
      const opts: SdeSamplerOptions = { key: randomKey(steps), init, steps, eps, denoiseFinalStep: denoise };
      const label = `${kind} steps ${steps} eps ${eps} denoise ${denoise}`;
      expectLaw(`EM ${label}`, await reverseSdeEulerMaruyama(exactScore(kind), sde, opts), chainLaw(kind, 'eulerMaruyama', steps, eps, denoise));
      for (const predictor of ['eulerMaruyama', 'reverseDiffusion'] as const) {
        // VP's one-step reverse diffusion needs β(1)Δt ≤ 1: refused (samplers.test.ts).
        if (kind === 'vp' && predictor === 'reverseDiffusion' && steps === 1) continue;
        const x = await predictorCorrector(exactScore(kind), sde, { ...opts, correctorSteps: 0, predictor });
        expectLaw(`PC ${predictor} ${label}`, x, chainLaw(kind, predictor, steps, eps, denoise));
      }
    }
  });

  it.each(KINDS)('%s: predictor–corrector with 1 and 2 corrector steps follows its chain path by path (batch 5, d = 3)', async (kind) => {
    // The corrector's step ε = 2α(r‖z‖/‖g‖)² depends on the batch's norms, so its chain is not affine
    // in law; instead the chain is replayed here in float64 with the same normal draws (the key
    // layout: [prior key, step key] = splitKey(key, 2); step i uses foldIn(step key, i), whose
    // foldIn(·, 0) is the predictor's noise and foldIn(·, j + 1) corrector step j's). Rounding: each
    // step is ≲ 30 roundings of values ≤ 4 in magnitude, 25 steps: ≤ 25·30·4·u ≈ 7e-13.
    const [rows, d, steps, eps, snr] = [5, 3, 25, 1e-3, 0.2];
    const c = paperCoefficients(kind);
    const key = randomKey(9);
    const stepKey = splitKey(key, 2)[1] as RandomKey;
    const init = randn([rows, d], { key: randomKey(4), dtype: 'float64' }).mul(2);
    const draw = (k: RandomKey) => Array.from(randn([rows, d], { key: k, dtype: 'float64' }).dataSync());
    for (const predictor of ['reverseDiffusion', 'eulerMaruyama'] as const) {
      for (const correctorSteps of [1, 2]) {
        const dt = (1 - eps) / steps;
        let x = Array.from(init.dataSync());
        for (let i = 0; i < steps; i++) {
          const t = 1 - i * dt;
          const k = c(t);
          const score = (y: number[]) => y.map((v) => -(v - k.m * MU) / variance(kind, t));
          const keyI = foldIn(stepKey, i);
          for (let j = 0; j < correctorSteps; j++) {
            const g = score(x);
            const z = draw(foldIn(keyI, j + 1));
            const meanNorm = (v: number[]) => {
              let total = 0;
              for (let r = 0; r < rows; r++) total += Math.hypot(...v.slice(r * d, (r + 1) * d)) / rows;
              return total;
            };
            const alpha = kind === 've' ? 1 : 1 - (DEFAULTS.betaMin + t * (DEFAULTS.betaMax - DEFAULTS.betaMin)) * dt;
            const stepSize = 2 * alpha * ((snr * meanNorm(z)) / meanNorm(g)) ** 2;
            x = x.map((v, e) => v + stepSize * g[e]! + Math.sqrt(2 * stepSize) * z[e]!);
          }
          const z = draw(foldIn(keyI, 0));
          const { a, b, q } = predictorStep(kind, predictor, t, dt);
          x = x.map((v, e) => a * v + b + (i === steps - 1 ? 0 : Math.sqrt(q) * z[e]!));
        }
        const out = Array.from((await predictorCorrector(exactScore(kind), makers[kind](), { key, init, steps, eps, snr, correctorSteps, predictor })).dataSync());
        out.forEach((v, e) => expect(Math.abs(v - x[e]!), `${predictor}, ${correctorSteps} corrector steps, element ${e}`).toBeLessThanOrEqual(1e-12));
      }
    }
  });

  it.each(KINDS)('%s: a batch of one from the prior, one step: the prior draw and its step', async (kind) => {
    // Prior: N(0, σ_max²) for VE, N(0, 1) otherwise, drawn with the prior key; then one
    // Euler–Maruyama step to ε without noise (denoiseFinalStep), replayed on the host.
    const key = randomKey(12);
    const priorKey = splitKey(key, 2)[0] as RandomKey;
    const scale = kind === 've' ? DEFAULTS.sigmaMax : 1;
    const start = randn([1, 1], { key: priorKey, dtype: 'float64' }).dataSync()[0]! * scale;
    const { a, b } = predictorStep(kind, 'eulerMaruyama', 1, 1 - samplingEpsilon(makers[kind]()));
    const x = await reverseSdeEulerMaruyama(exactScore(kind), makers[kind](), { key, shape: [1, 1], dtype: 'float64', steps: 1 });
    expect(x.shape).toEqual([1, 1]);
    // Two roundings of a·x + b plus the score's ≲ 10, on values ≤ |a·x| + |b|.
    expect(Math.abs(x.dataSync()[0]! - (a * start + b))).toBeLessThanOrEqual(16 * u64 * (Math.abs(a * start) + Math.abs(b)));
  });
});

// ------------------------------------------------------------------------------------------------
// The probability-flow ODE

/** dx/dt = f x − ½g²·score = f x + ½g²(x − mμ)/c: the flow with the exact score, on the host. */
function flowVelocity(kind: SdeKind, x: number, t: number): number {
  const k = paperCoefficients(kind)(t);
  return k.f * x + (0.5 * k.g * k.g * (x - k.m * MU)) / variance(kind, t);
}

/** Classical RK4 from t = `from` to `to` in `steps` equal steps, in float64 on the host. */
function hostRk4(kind: SdeKind, x0: number, from: number, to: number, steps: number): number {
  const h = (to - from) / steps;
  let x = x0;
  for (let i = 0; i < steps; i++) {
    const t = from + i * h;
    const k1 = flowVelocity(kind, x, t);
    const k2 = flowVelocity(kind, x + (h / 2) * k1, t + h / 2);
    const k3 = flowVelocity(kind, x + (h / 2) * k2, t + h / 2);
    const k4 = flowVelocity(kind, x + h * k3, t + h);
    x += (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4);
  }
  return x;
}

describe('probability-flow ODE with the exact score (d = 1)', () => {
  const n = 64;
  const fine = 20000;
  it.each(KINDS)('%s: RK45 maps each prior point to the fine-step float64 reference', async (kind) => {
    const init = startSample(kind, n);
    const start = Array.from(init.dataSync());
    // The reference: RK4 with 20000 steps (its error, O(h⁴), is checked against the closed form
    // y(ε) = √(c(ε)/c(T))·y(T) for y = x − m(t)μ, which holds because the flow is linear).
    // The flow is affine in x, so two runs give its map x ↦ A·x + B.
    const offset = hostRk4(kind, 0, 1, samplingEpsilon(makers[kind]()), fine);
    const slope = hostRk4(kind, 1, 1, samplingEpsilon(makers[kind]()), fine) - offset;
    const reference = start.map((x) => slope * x + offset);
    const k1 = paperCoefficients(kind)(1);
    const kEps = paperCoefficients(kind)(samplingEpsilon(makers[kind]()));
    const closed = start.map((x) => kEps.m * MU + Math.sqrt(variance(kind, samplingEpsilon(makers[kind]())) / variance(kind, 1)) * (x - k1.m * MU));
    reference.forEach((r, i) => expect(Math.abs(r - closed[i]!)).toBeLessThanOrEqual(1e-9));
    const sol = await probabilityFlowOde(exactScore(kind), makers[kind](), { key: randomKey(1), init });
    const out = Array.from(sol.x.dataSync());
    // Each accepted step's error estimate is ≤ atol + rtol·|x| (defaults 1e-5, |x| ≤ max|out|), and
    // the flow contracts (|dy(ε)/dy(t)| = √(c(ε)/c(t)) ≤ 1 here, as c decreases towards ε for
    // v₀ < 1), so the local errors add at most: accepted steps × (atol + rtol·max|x|).
    const allowed = sol.acceptedSteps * (1e-5 + 1e-5 * Math.max(...out.map(Math.abs), ...reference.map(Math.abs)));
    out.forEach((v, i) => expect(Math.abs(v - reference[i]!), `sample ${i}`).toBeLessThanOrEqual(allowed));
  });

  it.each(KINDS)('%s: RK4 is its own discrete map; its marginal std at each step is the exact one; two legs equal one run', async (kind) => {
    const steps = 100;
    const init = startSample(kind, 4000);
    const start = Array.from(init.dataSync());
    const dt = (1 - samplingEpsilon(makers[kind]())) / steps;
    // Per step, in the callback: the state after k steps is at t_k = 1 − kΔt. The scheme is affine
    // with the same coefficient for every point, so the sample std scales exactly by the host
    // RK4 map's |A_k|, and the sample at T has the exact std √c(T) within 5 SE.
    const startStd = Math.sqrt(sampleMoments(init).variance);
    expect(Math.abs(startStd - Math.sqrt(variance(kind, 1)))).toBeLessThanOrEqual(K_SE * Math.sqrt(variance(kind, 1) / (2 * (start.length - 1))));
    let A = 1;
    let B = 0;
    const checked: number[] = [];
    const sol = await probabilityFlowOde(exactScore(kind), makers[kind](), {
      key: randomKey(1), init, method: 'rk4', steps, callbackEvery: 10,
      callback: (step, x) => {
        const t = step === steps ? samplingEpsilon(makers[kind]()) : 1 - step * dt;
        // The host map from T to t_k, composed step by step (each step's map: b = step(0), a = step(1) − b).
        while (checked.length < step) {
          const i = checked.length;
          const from = 1 - i * dt;
          const to = i === steps - 1 ? samplingEpsilon(makers[kind]()) : from - dt;
          const b = hostRk4(kind, 0, from, to, 1);
          const a = hostRk4(kind, 1, from, to, 1) - b;
          A = a * A;
          B = a * B + b;
          checked.push(step);
        }
        const std = Math.sqrt(sampleMoments(x).variance);
        // Rounding: ≲ 90 roundings a step on values ≤ 4·√c, over ≤ 100 steps: 1e-9 relative.
        expect(Math.abs(std / startStd - Math.abs(A)), `std ratio at t = ${t}`).toBeLessThanOrEqual(1e-9);
        // RK4's A_k against the exact ratio √(c(t_k)/c(T)): the scheme's discretisation error.
        const exactRatio = Math.sqrt(variance(kind, t) / variance(kind, 1));
        expect(Math.abs(Math.abs(A) - exactRatio) / exactRatio, `A at t = ${t}`).toBeLessThanOrEqual(1e-4);
      },
    });
    const out = Array.from(sol.x.dataSync());
    // The same map pointwise (rounding: 100 steps × ~90 roundings × u × |x| ≤ 10 → 1e-11).
    out.forEach((v, i) => expect(Math.abs(v - (A * start[i]! + B))).toBeLessThanOrEqual(1e-11));

    // Time reversal as a semigroup: T → t₁ then t₁ → ε (an Sde starting at t₁) equals T → ε on the
    // same grid, to rounding.
    const half = steps / 2;
    const t1 = 1 - half * dt;
    const first = await probabilityFlowOde(exactScore(kind), makers[kind](), { key: randomKey(1), init, method: 'rk4', steps: half, eps: t1 });
    const second = await probabilityFlowOde(exactScore(kind), { ...makers[kind](), T: t1 }, { key: randomKey(1), init: first.x, method: 'rk4', steps: half });
    Array.from(second.x.dataSync()).forEach((v, i) => expect(Math.abs(v - out[i]!)).toBeLessThanOrEqual(1e-11));
  });
});

// ------------------------------------------------------------------------------------------------
// Determinism

describe('samplers are deterministic in their key: compiled and eager steps agree exactly (CPU)', () => {
  const runs: [string, (dtype: 'float32' | 'float64', jit: boolean, key: number) => Promise<Tensor>][] = [
    ['langevinDynamics', (dtype, jit, key) => langevinDynamics((x) => x.sub(MU).div(V0).neg(), full([3, 2], 0.5, { dtype }), { key: randomKey(key), steps: 8, stepSize: 0.05, jit })],
    ['annealedLangevinDynamics', (dtype, jit, key) => annealedLangevinDynamics((x, s) => x.sub(MU).div(s!.square().add(V0).reshape([-1, 1])).neg(), full([3, 2], 0.5, { dtype }), { key: randomKey(key), sigmas: [1, 0.3], stepsPerLevel: 4, stepSize: 0.01, jit })],
    ...KINDS.flatMap((kind): [string, (dtype: 'float32' | 'float64', jit: boolean, key: number) => Promise<Tensor>][] => [
      [`reverseSdeEulerMaruyama ${kind}`, (dtype, jit, key) => reverseSdeEulerMaruyama(exactScore(kind), makers[kind](), { key: randomKey(key), shape: [3, 2], dtype, steps: 30, jit })],
      [`predictorCorrector ${kind}`, (dtype, jit, key) => predictorCorrector(exactScore(kind), makers[kind](), { key: randomKey(key), shape: [3, 2], dtype, steps: 30, correctorSteps: 2, jit })],
      [`probabilityFlowOde rk4 ${kind}`, async (dtype, jit, key) => (await probabilityFlowOde(exactScore(kind), makers[kind](), { key: randomKey(key), shape: [3, 2], dtype, method: 'rk4', steps: 10, jit })).x],
    ]),
  ];
  it.each(runs)('%s', async (_name, run) => {
    for (const dtype of ['float32', 'float64'] as const) {
      const compiled = Array.from((await run(dtype, true, 5)).dataSync());
      expect(compiled.every(Number.isFinite)).toBe(true);
      expect(Array.from((await run(dtype, true, 5)).dataSync())).toEqual(compiled);
      expect(Array.from((await run(dtype, false, 5)).dataSync())).toEqual(compiled);
      expect(Array.from((await run(dtype, true, 6)).dataSync())).not.toEqual(compiled);
    }
  });
});
