// Samplers proved on problems with known answers, with fixed keys, on every test target: the CPU
// in float64 (the reference, where float64 sharpens the identities), and the CPU and WebGPU in
// float32 (see devices.ts).
//
// Reverse-SDE, predictor–corrector and probability-flow samplers run with the ANALYTIC score of
// Gaussian data N(μ, Σ): under an SDE with kernel N(m(t)x₀, s(t)²I) the time-t marginal is
// N(m(t)μ, m(t)²Σ + s(t)²I), whose score GaussianMixture.diffusedScore gives in closed form. The
// samplers start from an exact draw of the marginal at T, so every error is either Monte-Carlo
// (from the N samples) or discretisation (from the step count), and both are stated:
//
// - Monte-Carlo: the output is Gaussian (every step is affine in x plus Gaussian noise), so the
//   sample mean has SE √(Σᵢᵢ/N) and the sample covariance entry SE √((ΣᵢᵢΣⱼⱼ + Σᵢⱼ²)/N) (the
//   Wishart variance). Tolerance: 4 SE (a two-sided 6e-5 chance per check of a false alarm).
// - Discretisation: because the score is linear in x, each scheme is an affine recursion in Σ's
//   eigenbasis, so the exact mean and variance of the DISCRETISED chain follow from a scalar
//   recursion on the host (`predictScheme` below, an independent float64 implementation that
//   reads only the SDE's coefficients). The allowance is |predicted − exact target|, per entry.
// - For the deterministic ODE solvers there is no path noise, and the output is compared point by
//   point with (a) the exact flow map x_T ↦ x_ε (in closed form for Gaussian data) and (b) for
//   Euler/RK4, the host prediction of the scheme itself.
// - Rounding: bounded in `roundingBound` below. In float32 it is at most ≈ 1e-3 of a coordinate
//   (1e-12 in float64), about 1% of the Monte-Carlo tolerances (4 SE ≥ 0.08 here), so the
//   moment and mode-weight criteria are the same in both precisions; only the pointwise ODE
//   checks, which have no Monte-Carlo error, carry it.

import { afterAll, describe, expect, it } from 'vitest';
import { type RandomKey, type Tensor, foldIn, full, memory, rand, randn, randomKey, tensor } from '@scorch/tensor';
import { GaussianMixture, symmetricEigen } from '../src/data.js';
import { modeWeights } from '../src/metrics.js';
import {
  SAMPLER_DEFAULTS, annealedLangevinDynamics, geometricSigmas, langevinDynamics, predictorCorrector, probabilityFlowOde,
  reverseSdeEulerMaruyama,
} from '../src/samplers.js';
import { type Sde, perRow, samplingEpsilon, subVpSde, veSde, vpSde } from '../src/sde.js';
import { type TestTarget, countHostReads, hostValues, onEachDevice, onEachTarget, unitRoundoff } from './devices.js';
import { unknownOption } from './options.js';

const MU = [1, -0.5];
const SIGMA = [
  [1, 0.6],
  [0.6, 0.8],
];
const data = new GaussianMixture({ means: [MU], covariances: [SIGMA] });
const { values: LAMBDA, vectors: U } = symmetricEigen(SIGMA);

type Moments = { mean: number[]; cov: number[][] };

/** Sample mean and (N − 1)-normalised covariance of [N, 2] points given as flat host values. */
function sampleMoments(v: readonly number[]): Moments {
  const n = v.length / 2;
  const mean = [0, 0];
  for (let i = 0; i < n; i++) for (let j = 0; j < 2; j++) mean[j]! += v[2 * i + j]! / n;
  const cov = [
    [0, 0],
    [0, 0],
  ];
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) cov[a]![b]! += ((v[2 * i + a]! - mean[a]!) * (v[2 * i + b]! - mean[b]!)) / (n - 1);
  }
  return { mean, cov };
}

/** From eigen coordinates (per direction j) back to the original ones: U diag(v) Uᵀ and U a. */
const fromEigen = (a: number[], v: number[]): Moments => ({
  mean: [0, 1].map((i) => U[i]![0]! * a[0]! + U[i]![1]! * a[1]!),
  cov: [0, 1].map((i) => [0, 1].map((k) => U[i]![0]! * v[0]! * U[k]![0]! + U[i]![1]! * v[1]! * U[k]![1]!)),
});
const muEigen = [0, 1].map((j) => U[0]![j]! * MU[0]! + U[1]![j]! * MU[1]!);

/**
 * Scalar SDE coefficients at time t, read through the Sde interface (no knowledge of its kind):
 * the host reference, so always float64 on the CPU whatever the sampler runs on.
 */
function coefficients(sde: Sde, t: number) {
  const host = { dtype: 'float64', device: 'cpu' } as const;
  const tt = full([1], t, host);
  const one = full([1, 1], 1, host);
  return {
    f: sde.drift(one, tt).dataSync()[0]!, // f(x, t) = f·x for these SDEs
    g2: sde.diffusion(tt).dataSync()[0]! ** 2,
    m: sde.meanCoefficient(tt).dataSync()[0]!,
    s2: sde.std(tt).dataSync()[0]! ** 2,
  };
}

type Scheme = 'eulerMaruyama' | 'reverseDiffusion' | 'euler' | 'rk4';

/**
 * The discretised chain of `scheme` on one eigen-direction (eigenvalue λ, mean component μ),
 * on the same grid as the samplers (tᵢ = T − iΔt, the last step noise-free): an affine map
 * u ↦ A·u + B plus noise of variance Q per step, composed over all steps. Returns the total
 * map (A, B), the accumulated noise variance Q, the exact target at ε for comparison, and the
 * largest |aᵢ − 1| of a step's map u ↦ aᵢu + bᵢ: how large a step's move is next to the state.
 */
function predictScheme(sde: Sde, scheme: Scheme, steps: number, lambda: number, mu: number) {
  const eps = samplingEpsilon(sde);
  const dt = (sde.T - eps) / steps;
  const timeAt = (i: number) => (i === steps ? eps : sde.T - i * dt);
  const c = (k: ReturnType<typeof coefficients>) => k.m * k.m * lambda + k.s2;
  let A = 1;
  let B = 0;
  let Q = 0;
  let largestMove = 0;
  for (let i = 0; i < steps; i++) {
    const t = timeAt(i);
    const k = coefficients(sde, t);
    const last = i === steps - 1;
    let a: number;
    let b: number;
    let q: number;
    if (scheme === 'eulerMaruyama') {
      // x ← x − [f x + g²(x − mμ)/c]Δt + g√Δt z
      a = 1 - k.f * dt - (k.g2 * dt) / c(k);
      b = (k.g2 * dt * k.m * mu) / c(k);
      q = last ? 0 : k.g2 * dt;
    } else if (scheme === 'reverseDiffusion') {
      if (sde.kind === 've') {
        const G2 = k.s2 - coefficients(sde, timeAt(i + 1)).s2;
        a = 1 - G2 / c(k);
        b = (G2 * mu) / c(k);
        q = last ? 0 : G2;
      } else {
        const beta = -2 * k.f * dt; // VP: f = −β/2
        a = 2 - Math.sqrt(1 - beta) - beta / c(k);
        b = (beta * k.m * mu) / c(k);
        q = last ? 0 : beta;
      }
    } else {
      // ODE dx/dt = κ(t)x + β(t) with κ = f + g²/(2c), β = −g² m μ/(2c)
      const kappa = (kk: ReturnType<typeof coefficients>) => kk.f + (0.5 * kk.g2) / c(kk);
      const offset = (kk: ReturnType<typeof coefficients>) => (-0.5 * kk.g2 * kk.m * mu) / c(kk);
      q = 0;
      if (scheme === 'euler') {
        a = 1 - kappa(k) * dt;
        b = -offset(k) * dt;
      } else {
        const h = -dt;
        const mid = coefficients(sde, t + h / 2);
        const end = coefficients(sde, t + h);
        const F = (kk: ReturnType<typeof coefficients>, y: number) => kappa(kk) * y + offset(kk);
        const step = (y: number) => {
          const k1 = F(k, y);
          const k2 = F(mid, y + (h / 2) * k1);
          const k3 = F(mid, y + (h / 2) * k2);
          const k4 = F(end, y + h * k3);
          return y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4);
        };
        b = step(0);
        a = step(1) - b;
      }
    }
    A = a * A;
    B = a * B + b;
    Q = a * a * Q + q;
    largestMove = Math.max(largestMove, Math.abs(a - 1));
  }
  const start = coefficients(sde, sde.T);
  const end = coefficients(sde, eps);
  const startMean = start.m * mu;
  const startVar = start.m * start.m * lambda + start.s2;
  return {
    A,
    B,
    largestMove,
    predictedMean: A * startMean + B,
    predictedVar: A * A * startVar + Q,
    targetMean: end.m * mu,
    targetVar: end.m * end.m * lambda + end.s2,
  };
}

/** Exact marginal moments at ε and the discretisation allowance |predicted − target| per entry. */
function allowanceFor(sde: Sde, scheme: Scheme, steps: number) {
  const per = [0, 1].map((j) => predictScheme(sde, scheme, steps, LAMBDA[j]!, muEigen[j]!));
  const predicted = fromEigen(per.map((p) => p.predictedMean), per.map((p) => p.predictedVar));
  const target = fromEigen(per.map((p) => p.targetMean), per.map((p) => p.targetVar));
  return {
    target,
    per,
    mean: predicted.mean.map((v, i) => Math.abs(v - target.mean[i]!)),
    cov: predicted.cov.map((row, i) => row.map((v, k) => Math.abs(v - target.cov[i]![k]!))),
  };
}

/**
 * Roundings along any path to one coordinate of a step's move: a Gaussian-score velocity
 * (rotation into the eigenbasis, division by the variances, rotation back, drift, g², the
 * combination) has about 20; RK4 has four of them plus its stage sums, about 90; Dormand–Prince
 * six new stages plus its stage and error sums, about 160.
 */
const ROUNDINGS_PER_MOVE = { euler: 20, rk4: 90, rk45: 160 } as const;

/**
 * Worst-case effect of rounding on the output of a deterministic run of `steps` steps (all
 * rounding errors aligned; the measured runs stay 40–200× below it). Step i adds a move Δᵢ to x.
 * Computing Δᵢ rounds about R times, each a relative error ≤ u, and |Δᵢ| ≤ ρ(|xᵢ − m(tᵢ)μ| + ‖μ‖)
 * with ρ = max |aᵢ − 1| from the host recursion; the addition rounds once more. So step i
 * perturbs the state by ≤ (1 + Rρ)·u·(|xᵢ − m(tᵢ)μ| + ‖μ‖). The remaining steps scale the centred
 * state and any perturbation alike (by ≈ √(c(ε)/c(tᵢ)) per eigen-direction): the centred state
 * becomes the output's centred part, ≤ max‖x_out‖ + ‖μ‖, and the ‖μ‖ term grows by at most
 * √max(1, λ_max) (a variance grows towards ε only along VP's λ_max > 1). Summed over the steps:
 *   |x_computed − x_exact arithmetic| ≤ steps·(1 + Rρ)·u·(max‖x_out‖ + 2‖μ‖)·√max(1, λ_max).
 */
function roundingBound(dtype: TestTarget['dtype'], steps: number, roundings: number, largestMove: number, output: readonly number[]): number {
  let largestNorm = 0;
  for (let i = 0; i < output.length; i += 2) largestNorm = Math.max(largestNorm, Math.hypot(output[i]!, output[i + 1]!));
  const growth = Math.sqrt(Math.max(1, ...LAMBDA));
  return steps * (1 + roundings * largestMove) * unitRoundoff(dtype) * (largestNorm + 2 * Math.hypot(MU[0]!, MU[1]!)) * growth;
}

const report: string[] = [];

/** |estimate − target| ≤ 4 SE + allowance for every mean and covariance entry. */
async function expectMoments(label: string, x: Tensor, target: Moments, allowance: { mean: number[]; cov: number[][] }): Promise<void> {
  const n = x.shape[0]!;
  const got = sampleMoments(await hostValues(x));
  const S = target.cov;
  const lines: string[] = [];
  for (let i = 0; i < 2; i++) {
    const tol = 4 * Math.sqrt(S[i]![i]! / n) + allowance.mean[i]!;
    lines.push(`mean[${i}] ${got.mean[i]!.toFixed(4)} (target ${target.mean[i]!.toFixed(4)}, tol ${tol.toFixed(4)})`);
    expect(Math.abs(got.mean[i]! - target.mean[i]!), `${label} mean[${i}]`).toBeLessThanOrEqual(tol);
  }
  for (let i = 0; i < 2; i++) {
    for (let k = i; k < 2; k++) {
      const tol = 4 * Math.sqrt((S[i]![i]! * S[k]![k]! + S[i]![k]! ** 2) / n) + allowance.cov[i]![k]!;
      lines.push(`cov[${i}${k}] ${got.cov[i]![k]!.toFixed(4)} (target ${target.cov[i]![k]!.toFixed(4)}, tol ${tol.toFixed(4)})`);
      expect(Math.abs(got.cov[i]![k]! - target.cov[i]![k]!), `${label} cov[${i}][${k}]`).toBeLessThanOrEqual(tol);
    }
  }
  report.push(`${label}: ${lines.join('; ')}`);
}

/** An exact draw from the marginal at T (so no prior mismatch enters the comparison). */
function startSample(sde: Sde, n: number, key: RandomKey, { device, dtype }: TestTarget): Tensor {
  return data.diffused(sde, sde.T).sample(n, { key, dtype, device });
}

/** Per sample, in eigen coordinates uⱼ = (Uᵀx)ⱼ: u ↦ Aⱼ uⱼ + Bⱼ, back to the original coordinates. */
function applyEigenMaps(v: readonly number[], A: number[], B: number[]): Float64Array {
  const n = v.length / 2;
  const out = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const u = [0, 1].map((j) => U[0]![j]! * v[2 * i]! + U[1]![j]! * v[2 * i + 1]!);
    const w = u.map((uj, j) => A[j]! * uj + B[j]!);
    for (let r = 0; r < 2; r++) out[2 * i + r] = U[r]![0]! * w[0]! + U[r]![1]! * w[1]!;
  }
  return out;
}

/**
 * The exact probability-flow map for Gaussian data: with y = x − m(t)μ, each eigen-coordinate
 * obeys dy/dt = (f + g²/(2c))y and dc/dt = 2fc + g², so y(ε) = √(c(ε)/c(T))·y(T).
 */
function exactFlow(sde: Sde, v: readonly number[]): Float64Array {
  const start = coefficients(sde, sde.T);
  const end = coefficients(sde, samplingEpsilon(sde));
  const c = (k: typeof start, j: number) => k.m * k.m * LAMBDA[j]! + k.s2;
  const A = [0, 1].map((j) => Math.sqrt(c(end, j) / c(start, j)));
  const B = [0, 1].map((j) => end.m * muEigen[j]! - A[j]! * start.m * muEigen[j]!);
  return applyEigenMaps(v, A, B);
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const sdes: [string, Sde][] = [
  ['VP', vpSde()],
  ['VE', veSde()],
];

onEachTarget('reverse-SDE samplers recover N(μ, Σ) from its analytic diffused score', (target) => {
  const where = `${target.device} ${target.dtype}`;
  // N = 2000 samples: mean SE √(1/2000) = 0.022, variance SE √(2/2000) = 0.032.
  const n = 2000;
  it.each(sdes)('%s: Euler–Maruyama, 200 steps', async (name, sde) => {
    const steps = 200;
    const a = allowanceFor(sde, 'eulerMaruyama', steps);
    // Discretisation of EM at 200 steps, from the host recursion: ≤ 0.6% of each variance here.
    expect(Math.max(...a.cov.flat())).toBeLessThan(0.01);
    const x = await reverseSdeEulerMaruyama(data.diffusedScore(sde), sde, { key: randomKey(21), init: startSample(sde, n, randomKey(20), target), steps });
    expect(x.device).toBe(target.device);
    await expectMoments(`${name} EM(${steps}) [${where}]`, x, a.target, a);
  });

  it.each(sdes)('%s: predictor–corrector (reverse diffusion + Langevin, snr 0.16), 500 steps', async (name, sde) => {
    const steps = 500;
    const snr = 0.16;
    const a = allowanceFor(sde, 'reverseDiffusion', steps);
    // Corrector allowance: near p_t the corrector is Langevin with ε ≈ 2αr²·E‖z‖²/E‖g‖² = 2αr²c_h
    // (c_h the harmonic mean of the eigen-variances c_j), times ≤ 1.25 for using mean norms instead
    // of RMS norms (Jensen; 1.25 bounds (E‖z‖)²E‖g‖²/(E‖z‖²(E‖g‖)²) for 2-D Gaussians). Run to
    // stationarity on N(m, c_j) it inflates c_j by (ε/2)/(1 − ε/(2c_j)) ≤ 1.25r²c_h/(1 − 1.25·2r²)
    // (c_h ≤ 2 min c_j), and leaves the mean alone: its bias on the covariance entries.
    const cHarmonic = 2 / (1 / a.per[0]!.targetVar + 1 / a.per[1]!.targetVar);
    const corrector = (1.25 * snr * snr * cHarmonic) / (1 - 1.25 * 2 * snr * snr);
    const allowance = { mean: a.mean, cov: a.cov.map((row) => row.map((v) => v + corrector)) };
    // The reverse-diffusion predictor's own bias: VE's SMLD discretisation inflates the variance
    // by 1.7% at 500 steps (4.4% at 200), VP's DDPM one by 0.6%.
    expect(Math.max(...a.cov.flat())).toBeLessThan(0.03);
    const x = await predictorCorrector(data.diffusedScore(sde), sde, { key: randomKey(31), init: startSample(sde, n, randomKey(30), target), steps, snr });
    expect(x.device).toBe(target.device);
    await expectMoments(`${name} PC(${steps}) [${where}]`, x, a.target, allowance);
  });
});

onEachTarget('probability-flow ODE recovers N(μ, Σ) and follows the exact flow', (target) => {
  const where = `${target.device} ${target.dtype}`;
  // N = 1000: the moment checks carry the start sample's MC error (the map is deterministic);
  // the pointwise checks against the exact flow have no MC error at all.
  const n = 1000;
  const cases: [string, 'euler' | 'rk4', number, Sde][] = [
    ['VP', 'euler', 200, vpSde()],
    ['VE', 'euler', 1000, veSde()],
    ['VP', 'rk4', 50, vpSde()],
    ['VE', 'rk4', 50, veSde()],
  ];
  it.each(cases)('%s: %s with %i steps matches its host-predicted scheme and the data moments', async (name, method, steps, sde) => {
    const start = startSample(sde, n, randomKey(40), target);
    const { x, nfe } = await probabilityFlowOde(data.diffusedScore(sde), sde, { key: randomKey(41), init: start, method, steps });
    expect(nfe).toBe(method === 'euler' ? steps : 4 * steps);
    const [startValues, output] = [await hostValues(start), await hostValues(x)];
    // (b) the same scheme on the host in float64, per eigen-direction, maps each start point to
    // the output: agreement to the rounding bound proves the update rule. The bound is ≤ 1e-12 in
    // float64 and ≤ 6e-4 in float32, 30–100× below Euler's discretisation error, so float32 too
    // tells Euler's scheme from the exact flow; RK4's is below even that (float64 is the sharp case).
    const per = [0, 1].map((j) => predictScheme(sde, method, steps, LAMBDA[j]!, muEigen[j]!));
    const predicted = applyEigenMaps(startValues, per.map((p) => p.A), per.map((p) => p.B));
    const largestMove = Math.max(...per.map((p) => p.largestMove));
    const rounding = roundingBound(target.dtype, steps, ROUNDINGS_PER_MOVE[method], largestMove, output);
    const schemeError = maxAbsDifference(output, predicted);
    expect(schemeError).toBeLessThanOrEqual(rounding);
    // (a) distance to the exact flow = the discretisation error, as predicted by the host recursion.
    const flowError = maxAbsDifference(output, exactFlow(sde, startValues));
    const a = allowanceFor(sde, method, steps);
    report.push(`${name} ${method}(${steps}) [${where}]: max |x − host scheme| = ${schemeError.toExponential(2)} (rounding bound ${rounding.toExponential(2)}), max |x − exact flow| = ${flowError.toExponential(2)}`);
    await expectMoments(`${name} ${method}(${steps}) [${where}]`, x, a.target, a);
    // Euler is first order: VE's stiff start (rate log(σ_max/σ_min) = 8.5) costs 4% of the variance
    // at 1000 steps; RK4 at 50 steps is within 1e-4 of the exact flow, plus rounding.
    if (method === 'rk4') expect(flowError).toBeLessThan(1e-4 + rounding);
  });

  const adaptive: [string, Sde][] = [...sdes, ['sub-VP', subVpSde()]];
  it.each(adaptive)('%s: RK45 (rtol = atol = 1e-5) follows the exact flow to 1e-3 (plus rounding) and recovers the moments', async (name, sde) => {
    const start = startSample(sde, n, randomKey(50), target);
    const sol = await probabilityFlowOde(data.diffusedScore(sde), sde, { key: randomKey(51), init: start, method: 'rk45' });
    expect(sol.nfe).toBe(2 + 6 * (sol.acceptedSteps + sol.rejectedSteps));
    const [startValues, output] = [await hostValues(start), await hostValues(sol.x)];
    // A priori allowance: each accepted step's local error is ≤ atol + rtol·|x| (RMS); the flow
    // contracts (VE by σ_min/σ_max overall), so the global error stays below steps × that ≈ 1e-3.
    // Rounding adds `roundingBound` over the accepted steps with relative moves ρ ≤ 1 (a larger
    // move would make Dormand–Prince's error estimate, ≈ (κh)⁵/600 of the state, fail 1e-5).
    const rounding = roundingBound(target.dtype, sol.acceptedSteps, ROUNDINGS_PER_MOVE.rk45, 1, output);
    const allowed = 1e-3 + rounding;
    const flowError = maxAbsDifference(output, exactFlow(sde, startValues));
    report.push(`${name} rk45 [${where}]: nfe ${sol.nfe} (${sol.acceptedSteps} accepted, ${sol.rejectedSteps} rejected), max |x − exact flow| = ${flowError.toExponential(2)} (allowed ${allowed.toExponential(2)})`);
    expect(flowError).toBeLessThan(allowed);
    // A pointwise error ≤ δ moves the sample mean by ≤ δ and a sample covariance entry by
    // ≤ δ(E|xᵢ − x̄ᵢ| + E|xⱼ − x̄ⱼ|) + δ² ≤ 3δ here (standard deviations ≤ 1.3).
    const marginalAtEps = data.diffused(sde, samplingEpsilon(sde));
    await expectMoments(`${name} rk45 [${where}]`, sol.x, { mean: marginalAtEps.mean(), cov: marginalAtEps.covariance() }, {
      mean: [allowed, allowed],
      cov: [[3 * allowed, 3 * allowed], [3 * allowed, 3 * allowed]],
    });
  });
});

onEachTarget('annealed Langevin dynamics recovers mode weights that plain Langevin cannot', ({ device, dtype }) => {
  // p = 0.8·N(5·1, I) + 0.2·N(−5·1, I) in 2-D (Song & Ermon 2019, §3.2.2). The noise-conditional
  // score at level σ is the exact score of the same mixture with covariances (1 + σ²)I. Mode
  // weights count the basin each sample ends in. float32 rounding moves a sample by ≈ u|x| ≈ 5e-7
  // per step, ≤ 1e-3 over a run, which matters only for a sample that close to the separating
  // line, 7 standard deviations from both modes: the criteria are the same in both precisions.
  const mixture = new GaussianMixture({ weights: [0.8, 0.2], means: [[5, 5], [-5, -5]] });
  const where = `${device} ${dtype}`;
  // 3000 particles on every device. Fewer would barely speed WebGPU up, whose steps cost mostly a
  // fixed dispatch overhead (the annealed run took 21 s with 1500 particles, 27–30 s with 3000),
  // while the Monte-Carlo part of the tolerance below would grow from ±0.025 to ±0.035.
  const uniformStart = () => rand([3000, 2], { key: randomKey(60), dtype, device }).mul(16).sub(8); // U[−8, 8]², as their toy_runner

  it('annealed (σ 20 → 1 geometric, L = 10, ε = 0.1, T = 200): weights within ±0.03 of (0.8, 0.2)', async () => {
    // Song & Ermon's toy settings except T. Error budget of the ±0.03: the algorithm's own bias
    // plus MC error √(0.8·0.2/3000) = 0.0073. The bias is incomplete mixing between the modes as
    // σ shrinks (at σ = 20 the split across the separating line is 0.58/0.42): measured with other
    // keys, the large mode's weight at T = 100 was 0.7797 and 0.7856 (N = 20000, SE 0.0029) and
    // 0.7831, 0.7838 (N = 8000): pooled 0.783 ± 0.002, a bias of −0.017 that would leave under
    // 2 SE of room at test sizes. At T = 200 it was 0.7947 ± 0.0040 (N = 10000): 0.03 ≥ 0.005 + 3.4 SE.
    const x = await annealedLangevinDynamics(mixture.noiseConditionalScore(), uniformStart(), {
      key: randomKey(61),
      sigmas: geometricSigmas(20, 1, 10),
      stepSize: 0.1,
      stepsPerLevel: 200,
    });
    expect(x.device).toBe(device);
    const weights = await modeWeights(x, mixture.means);
    report.push(`annealed Langevin weights [${where}]: ${weights.map((w) => w.toFixed(4)).join(', ')}`);
    expect(Math.abs(weights[0]! - 0.8)).toBeLessThanOrEqual(0.03);
    expect(Math.abs(weights[1]! - 0.2)).toBeLessThanOrEqual(0.03);
  });

  it('plain Langevin (ε = 0.1, 1000 steps) from the same start keeps its ≈ ½/½ split', async () => {
    // Same start (its first 1000 points), the toy experiment's ε and step count. The box is
    // symmetric about the line x₁ + x₂ = 0 that separates the basins, so about half the points
    // start in each; crossing a barrier of ≈ 25 nats (log-density at the midpoint) never happens.
    const start = uniformStart().slice([0, 0], [1000, 2]);
    const x = await langevinDynamics((y) => mixture.score(y), start, { key: randomKey(62), stepSize: 0.1, steps: 1000 });
    const weights = await modeWeights(x, mixture.means);
    report.push(`plain Langevin weights [${where}]: ${weights.map((w) => w.toFixed(4)).join(', ')}`);
    // Off by more than 0.03: the start's split ≈ 0.5 ± 3·√(0.25/1000) = 0.5 ± 0.047 stays.
    expect(Math.abs(weights[0]! - 0.8)).toBeGreaterThan(0.03);
    expect(Math.abs(weights[0]! - 0.5)).toBeLessThan(0.05);
  });
});

describe('Langevin samplers on N(μ, Σ): the moments of their own discretised chains (CPU, float64)', () => {
  // With the exact score −Σ⁻¹(x − μ) (for annealed Langevin at level σ, −(Σ + σ²I)⁻¹(x − μ)) every
  // step is affine plus Gaussian noise, so per eigen-direction (eigenvalue λ, mean component μ)
  // the chain's mean and variance follow exactly from a scalar recursion on the host:
  //   u ← a·u + (1 − a)·μ + √α·z,  a = 1 − (α/2)/v,  v = λ (+ σ²),
  // and the denoising step u ← u − σ_L²(u − μ)/(λ + σ_L²). No discretisation allowance: the
  // prediction is that of the discrete chain itself (stationary variance v/(1 − α/(4v)) per
  // direction, not v). The output is Gaussian; tolerance 4 SE of the sample mean and covariance
  // (Wishart), as expectMoments: a false alarm has probability 6e-5 per check.
  const n = 4000;
  const dtype = 'float64';
  const initStd = 0.5; // init = 0.5·z: isotropic, so independent with variance ¼ in every eigen-direction

  /** Mean and variance per eigen-direction after steps (α, σ²; σ² = 0 for plain Langevin), then an optional denoise. */
  function chainMoments(steps: readonly { alpha: number; sigma2: number }[], denoise?: { sigma2: number }): Moments {
    const a = [0, 1].map(() => 0);
    const q = [0, 1].map(() => initStd * initStd);
    for (const { alpha, sigma2 } of steps) {
      for (let j = 0; j < 2; j++) {
        const c = 1 - alpha / 2 / (LAMBDA[j]! + sigma2);
        a[j] = c * a[j]! + (1 - c) * muEigen[j]!;
        q[j] = c * c * q[j]! + alpha;
      }
    }
    if (denoise) {
      for (let j = 0; j < 2; j++) {
        const c = 1 - denoise.sigma2 / (LAMBDA[j]! + denoise.sigma2);
        a[j] = c * a[j]! + (1 - c) * muEigen[j]!;
        q[j] = c * c * q[j]!;
      }
    }
    return fromEigen(a, q);
  }
  const none = { mean: [0, 0], cov: [[0, 0], [0, 0]] };
  const init = () => randn([n, 2], { key: randomKey(90), dtype }).mul(initStd);

  it('langevinDynamics (ε = 0.4, 100 steps): stationary covariance inflated as its chain predicts', async () => {
    // ε = 0.4 is large beside λ_min = 0.29: the chain's stationary variance λ/(1 − ε/(4λ)) is 52%
    // above λ_min and 7% above λ_max, so the prediction and Σ differ by more than the tolerance on
    // the diagonal (checked below): the test tells the unadjusted chain from exact sampling of p.
    const eps = 0.4;
    const steps = 100;
    const x = await langevinDynamics((y) => data.score(y), init(), { key: randomKey(91), stepSize: eps, steps });
    const predicted = chainMoments(new Array(steps).fill({ alpha: eps, sigma2: 0 }));
    for (let i = 0; i < 2; i++) {
      const c = predicted.cov[i]![i]!;
      expect(c - SIGMA[i]![i]!).toBeGreaterThan(4 * Math.sqrt((2 * c * c) / n));
    }
    await expectMoments('Langevin(0.4, 100)', x, predicted, none);
  });

  it('annealedLangevinDynamics: αᵢ = ε·σᵢ²/σ_L² per level, then the Tweedie denoising step', async () => {
    const sigmas = [1, 0.5, 0.25];
    const stepSize = 0.02;
    const stepsPerLevel = 100;
    const schedule = sigmas.flatMap((sigma) => new Array(stepsPerLevel).fill({ alpha: (stepSize * sigma * sigma) / (0.25 * 0.25), sigma2: sigma * sigma }));
    for (const denoise of [false, true]) {
      const x = await annealedLangevinDynamics(data.noiseConditionalScore(), init(), { key: randomKey(92), sigmas, stepSize, stepsPerLevel, denoise });
      await expectMoments(`annealed Langevin (denoise ${denoise})`, x, chainMoments(schedule, denoise ? { sigma2: 0.25 * 0.25 } : undefined), none);
    }
  });
});

onEachDevice('sampler plumbing', (device) => {
  const gauss = new GaussianMixture({ means: [[0, 0]] });
  const f32 = { dtype: 'float32', device } as const;
  it('callbacks fire every k steps with the live state, and the input is never disposed', async () => {
    const init = tensor([[0, 0], [1, 1]], f32);
    const seen: number[] = [];
    const out = await langevinDynamics((x) => gauss.score(x), init, {
      key: randomKey(70),
      steps: 10,
      callbackEvery: 3,
      callback: async (step, x) => {
        seen.push(step);
        expect(x.shape).toEqual([2, 2]);
        expect(x.device).toBe(device);
        await x.data();
      },
    });
    expect(seen).toEqual([3, 6, 9]);
    expect(init.isDisposed).toBe(false);
    expect(out.isDisposed).toBe(false);
  });

  it('annealed Langevin shows its denoising step to the callback as step L·T + 1: the last state seen is the result', async () => {
    // The denoising step replaced the state without a callback, so a recorded trajectory ended
    // before the result (the reference code appends the denoised samples to its list).
    const init = tensor([[0, 0], [1, 1]], f32);
    for (const denoise of [true, false]) {
      const seen: number[] = [];
      let last: number[] = [];
      const out = await annealedLangevinDynamics((x) => gauss.score(x), init, {
        key: randomKey(71), sigmas: [1, 0.5], stepsPerLevel: 2, denoise,
        callback: async (step, x) => {
          seen.push(step);
          last = Array.from(await x.data());
        },
      });
      expect(seen).toEqual(denoise ? [1, 2, 3, 4, 5] : [1, 2, 3, 4]);
      expect(last).toEqual(Array.from(await out.data()));
      out.dispose();
    }
  });

  it('run on the input\'s device and read nothing back per step (RK45: only its error norms)', async () => {
    const sde = vpSde();
    const score = data.diffusedScore(sde);
    // The start is drawn first: `diffused` reads the SDE's coefficients on the CPU (host numbers).
    const start = startSample(sde, 16, randomKey(71), { device, dtype: 'float32' });
    const mixture = new GaussianMixture({ means: [[1, 1], [-1, -1]] });
    const runs: [string, () => Promise<Tensor>][] = [
      ['Euler–Maruyama', () => reverseSdeEulerMaruyama(score, sde, { key: randomKey(72), init: start, steps: 20 })],
      ['predictor–corrector', () => predictorCorrector(score, sde, { key: randomKey(72), init: start, steps: 20 })],
      ['sub-VP predictor–corrector from the prior', () => predictorCorrector(data.diffusedScore(subVpSde()), subVpSde(), { key: randomKey(72), shape: [16, 2], steps: 20, ...f32 })],
      ['RK4', async () => (await probabilityFlowOde(score, sde, { key: randomKey(72), init: start, method: 'rk4', steps: 20 })).x],
      ['annealed Langevin', () => annealedLangevinDynamics(mixture.noiseConditionalScore(), start, { key: randomKey(72), sigmas: [1, 0.5], stepsPerLevel: 10 })],
    ];
    for (const [name, run] of runs) {
      const { result, reads } = await countHostReads(device, run);
      expect(result.device, name).toBe(device);
      // Predictor–corrector checks its chain's αᵢ over the time grid before any work, as host
      // numbers: one read of a float64 tensor on the CPU, whatever the samples' device.
      expect(reads, name).toBe(name.includes('predictor–corrector') && device === 'cpu' ? 1 : 0);
    }
    // RK45 reads its error norm once per attempted step and three norms to choose the first step.
    const { result: solution, reads } = await countHostReads(device, () => probabilityFlowOde(score, sde, { key: randomKey(72), init: start, method: 'rk45' }));
    expect(solution.x.device).toBe(device);
    expect(reads).toBe(solution.acceptedSteps + solution.rejectedSteps + 3);
  });

  it('the same key gives the same samples; a different key different ones', async () => {
    const sde = vpSde();
    const run = async (k: number) => hostValues(await reverseSdeEulerMaruyama(data.diffusedScore(sde), sde, { key: randomKey(k), shape: [4, 2], steps: 5, ...f32 }));
    const [a, b, c] = [await run(1), await run(1), await run(2)];
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe('samplingEpsilon', () => {
  it('is 1e-5 for VE and 1e-3 for VP and sub-VP (score_sde run_lib.py), and refuses what is not an SDE', () => {
    expect([veSde(), vpSde(), subVpSde()].map(samplingEpsilon)).toEqual([1e-5, 1e-3, 1e-3]);
    expect(samplingEpsilon({ kind: 'subvp' })).toBe(1e-3);
    // An unknown kind was given VP's 1e-3, and null failed reading its kind.
    expect(() => samplingEpsilon({ kind: 'vpsde' } as never)).toThrow(/^samplingEpsilon: expected an SDE \(veSde\(\), vpSde\(\), subVpSde\(\)\) or its kind 've', 'vp' or 'subvp', got kind "vpsde"$/);
    expect(() => samplingEpsilon(null as never)).toThrow(/got null$/);
  });

  it('takes a bare kind too, as its message offers', () => {
    // The message named "its kind 've', 'vp' or 'subvp'" as accepted, and then refused 'vp' with it.
    expect((['ve', 'vp', 'subvp'] as const).map((kind) => samplingEpsilon(kind))).toEqual([1e-5, 1e-3, 1e-3]);
    expect(() => samplingEpsilon('vpsde' as never)).toThrow(/^samplingEpsilon: expected an SDE \(veSde\(\), vpSde\(\), subVpSde\(\)\) or its kind 've', 'vp' or 'subvp', got kind "vpsde"$/);
  });
});

describe('SDE discretisations', () => {
  // Each SDE's discrete chain in closed form from its continuous coefficients (float64, so the
  // tolerance is rounding): SMLD's for VE, DDPM's for VP (β = −2f), Euler–Maruyama for sub-VP.
  const x = tensor([[0.5, -2], [1.5, 3]], { dtype: 'float64' });
  const t = tensor([0.3, 0.8], { dtype: 'float64' });
  const dt = 0.05;
  const cases: [string, Sde, (i: number) => { f: number; G2: number; alpha: number }][] = [
    ['VE', veSde(), (i) => {
      const now = coefficients(veSde(), t.dataSync()[i]!).s2;
      return { f: 0, G2: now - coefficients(veSde(), t.dataSync()[i]! - dt).s2, alpha: 1 };
    }],
    ['VP', vpSde(), (i) => {
      const beta = -2 * coefficients(vpSde(), t.dataSync()[i]!).f;
      return { f: Math.sqrt(1 - beta * dt) - 1, G2: beta * dt, alpha: 1 - beta * dt };
    }],
    ['sub-VP', subVpSde(), (i) => {
      const k = coefficients(subVpSde(), t.dataSync()[i]!);
      return { f: k.f * dt, G2: k.g2 * dt, alpha: 1 + 2 * k.f * dt };
    }],
  ];
  it.each(cases)('%s: discretize and discreteAlpha are its discrete chain', (_name, sde, expected) => {
    const { f, G } = sde.discretize(x, t, dt);
    const alpha = sde.discreteAlpha(t, dt);
    expect(f.shape).toEqual([2, 2]);
    expect(G.shape).toEqual([2, 1]);
    expect(alpha.shape).toEqual([2, 1]);
    const xs = x.dataSync();
    for (let i = 0; i < 2; i++) {
      const e = expected(i);
      for (let j = 0; j < 2; j++) expect(f.dataSync()[2 * i + j]!).toBeCloseTo(e.f * xs[2 * i + j]!, 12);
      expect(G.dataSync()[i]! ** 2).toBeCloseTo(e.G2, 12);
      expect(alpha.dataSync()[i]!).toBeCloseTo(e.alpha, 12);
    }
  });

  it('refuses a t that is not one time per row of x, naming the function and the shape', () => {
    // A scalar t failed inside a reshape ("invalid shape [,1]") or full ("got [null,1]"), and VE's
    // drift, which does not read t, took a t of any length.
    const scalarT = tensor(0.5, { dtype: 'float64' });
    const shortT = tensor([0.5], { dtype: 'float64' });
    expect(() => vpSde().drift(x, scalarT)).toThrow(/^vpSde\.drift: t must be a \[N\] tensor \(one time per row of x\), got shape \[\]$/);
    expect(() => subVpSde().discretize(x, scalarT, dt)).toThrow(/^subVpSde\.discretize: t must be a \[N\] tensor \(one time per row of x\), got shape \[\]$/);
    expect(() => veSde().discreteAlpha(scalarT, dt)).toThrow(/^veSde\.discreteAlpha: t must be a \[N\] tensor, got shape \[\]$/);
    expect(() => vpSde().discreteAlpha(scalarT, dt)).toThrow(/^vpSde\.discreteAlpha: t must be a \[N\] tensor, got shape \[\]$/);
    expect(() => veSde().drift(x, shortT)).toThrow(/^veSde\.drift: t must be a \[N\] tensor \(one time per row of x\), got shape \[1\] for x of shape \[2, ?2\]$/);
    expect(() => veSde().discretize(x, shortT, dt)).toThrow(/^veSde\.discretize: t must be a \[N\] tensor/);
    // std and meanCoefficient still take any shape of t, a scalar included.
    expect(vpSde().std(scalarT).shape).toEqual([]);
  });

  it('refuses an x that is not [N, d] (a [N] x made VP\'s drift an [N, N] outer product), naming the function', () => {
    const t2 = tensor([0.5, 0.5], { dtype: 'float64' });
    const flat = tensor([1, 2], { dtype: 'float64' });
    for (const sde of [vpSde(), subVpSde(), veSde()]) {
      const name = { vp: 'vpSde', subvp: 'subVpSde', ve: 'veSde' }[sde.kind];
      expect(() => sde.drift(flat, t2)).toThrow(new Error(`${name}.drift: x must be a [N, d] tensor (one sample per row), got shape [2]`));
      expect(() => sde.discretize(flat, t2, dt)).toThrow(new Error(`${name}.discretize: x must be a [N, d] tensor (one sample per row), got shape [2]`));
      expect(() => sde.drift(undefined as never, t2)).toThrow(new TypeError(`${name}.drift: x must be a [N, d] tensor, got undefined`));
    }
  });
});

describe('SDE coefficients in float32', () => {
  // The float32 coefficients against float64 ones at the same (float32) times, from t = ε = 1e-5
  // to T. Each is a handful of rounded operations on t whose condition numbers stay below ~1
  // (log m is a sum of two negative terms; expm1(y) has condition y·eʸ/(eʸ − 1) ≤ 1 for y ≤ 0;
  // the VE exponent's condition log(σ_max/σ_min)·t ≤ 8.6 for the defaults), so each agrees to a
  // few units of roundoff: 16u. VP's s(t) = √(1 − m²) and sub-VP's 1 − m² and 1 − m⁴ cancel when
  // m ≈ 1 unless formed by expm1; formed as 1 − m² they lose ~u/(β_min t), 1e-2 at t = ε.
  const times = [1e-5, 3e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 0.9, 1];
  const t32 = tensor(times, { dtype: 'float32' });
  const t64 = t32.cast('float64');
  const bound = 16 * unitRoundoff('float32');
  const sdes: [string, Sde][] = [['VE', veSde()], ['VP', vpSde()], ['sub-VP', subVpSde()]];
  it.each(sdes)('%s: m(t), s(t) and g(t) agree with float64 to 16u', async (_name, sde) => {
    for (const fn of ['meanCoefficient', 'std', 'diffusion'] as const) {
      const single = await hostValues(sde[fn](t32));
      const double = await hostValues(sde[fn](t64));
      single.forEach((v, i) => {
        const relative = Math.abs(v - double[i]!) / Math.abs(double[i]!);
        expect(relative, `${fn}(${times[i]})`).toBeLessThanOrEqual(bound);
      });
    }
  });

  // The discrete chains' f (per unit x) and G at Δt = 1e-4 (10⁴ steps), to the same 16u. Formed as
  // differences of rounded values they cancel: VP's √(1 − βᵢ) − 1 ≈ −βᵢ/2 lost ~2u/βᵢ (4e-3 at
  // small t), VE's √(σ(t)² − σ(t − Δt)²) lost ~u/(2Δt log(σ_max/σ_min)) (1e-4).
  it.each(sdes)('%s: discretize agrees with float64 to 16u at Δt = 1e-4', async (_name, sde) => {
    const dt = 1e-4;
    const ones = (dtype: 'float32' | 'float64') => full([times.length, 1], 1, { dtype });
    const single = sde.discretize(ones('float32'), t32, dt);
    const double = sde.discretize(ones('float64'), t64, dt);
    for (const part of ['f', 'G'] as const) {
      const [a, b] = [await hostValues(single[part]), await hostValues(double[part])];
      a.forEach((v, i) => {
        const relative = b[i] === 0 ? Math.abs(v) : Math.abs(v - b[i]!) / Math.abs(b[i]!);
        expect(relative, `${part} at t = ${times[i]}`).toBeLessThanOrEqual(bound);
      });
    }
  });
});

describe('a sampler whose score function or callback throws', () => {
  // Every sampler, from a given start and (for the SDE samplers) from its own prior draw, which it
  // owns. After the error nothing the run made may still be alive: live tensors are counted
  // before and after, with the error thrown early, midway and at the last score call.
  const key = randomKey(81);
  const init = tensor([[0.5, -0.5], [1, 2], [-1, 0.25]], { dtype: 'float64' });
  const f64 = { dtype: 'float64' as const };
  type Run = (score: (x: Tensor, c?: Tensor) => Tensor, callback?: (step: number, x: Tensor) => void, jit?: boolean) => Promise<unknown>;
  const runs: [string, number, Run][] = [
    // [name, score calls of a full eager run, run]
    ['langevinDynamics', 4, (score, callback, jit) => langevinDynamics(score, init, { key, steps: 4, callback, jit })],
    ['annealedLangevinDynamics (last call: the denoising step)', 5, (score, callback, jit) => annealedLangevinDynamics(score, init, { key, sigmas: [1, 0.5], stepsPerLevel: 2, callback, jit })],
    ['reverseSdeEulerMaruyama from init', 3, (score, callback, jit) => reverseSdeEulerMaruyama(score, vpSde(), { key, init, steps: 3, callback, jit })],
    ['reverseSdeEulerMaruyama from the prior', 3, (score, callback, jit) => reverseSdeEulerMaruyama(score, vpSde(), { key, shape: [3, 2], steps: 3, ...f64, callback, jit })],
    ['predictorCorrector from the prior', 6, (score, callback, jit) => predictorCorrector(score, veSde(), { key, shape: [3, 2], steps: 3, ...f64, callback, jit })],
    ['probabilityFlowOde rk4 from the prior', 12, (score, callback, jit) => probabilityFlowOde(score, vpSde(), { key, shape: [3, 2], method: 'rk4', steps: 3, ...f64, callback, jit })],
    // RK45: call 1 is the first stage, call 2 the step-size probe, then 6 per attempted step.
    ['probabilityFlowOde rk45 from the prior', 20, (score, callback, jit) => probabilityFlowOde(score, vpSde(), { key, shape: [3, 2], ...f64, callback, jit })],
  ];
  /** A linear score that throws at its `failAt`-th call. */
  const failingScore = (failAt: number) => {
    let calls = 0;
    return (x: Tensor) => {
      if (++calls === failAt) throw new Error(`score failed at call ${failAt}`);
      return x.neg();
    };
  };

  it.each(runs)('%s frees its tensors when the score throws (eager steps)', async (_name, calls, run) => {
    for (const failAt of [1, 2, Math.ceil(calls / 2), calls]) {
      const before = memory().tensors;
      await expect(run(failingScore(failAt), undefined, false)).rejects.toThrow(`score failed at call ${failAt}`);
      expect(memory().tensors, `score throwing at call ${failAt}`).toBe(before);
    }
  });

  it.each(runs)('%s frees its tensors when the score throws while its step is compiled', async (_name, _calls, run) => {
    // A compiled step calls the score while it is traced (once per program), never again.
    const before = memory().tensors;
    await expect(run(failingScore(1))).rejects.toThrow('score failed at call 1');
    expect(memory().tensors).toBe(before);
  });

  it.each(runs)('%s frees its tensors when the callback throws', async (_name, _calls, run) => {
    for (const failAt of [1, 2]) {
      let seen = 0;
      const callback = () => {
        if (++seen === failAt) throw new Error(`callback failed at call ${failAt}`);
      };
      const before = memory().tensors;
      await expect(run((x) => x.neg(), callback)).rejects.toThrow(`callback failed at call ${failAt}`);
      expect(memory().tensors, `callback throwing at call ${failAt}`).toBe(before);
    }
  });

  it.each(runs)('%s refuses a callback that disposes the samples it was shown', async (name, _calls, run) => {
    // The samples are the sampler's state. Disposed midway, the next step failed naming the
    // compiled step ('jit argument 0: ... was disposed'); at the last call the sampler returned
    // the disposed tensor as its result, without a word.
    let calls = 0;
    const counted = await run((x) => x.neg(), () => void calls++);
    ((counted as { x?: Tensor }).x ?? (counted as Tensor)).dispose();
    const where = name.split(' ')[0]!;
    for (const jit of [true, false]) {
      for (const disposeAt of new Set([1, calls])) {
        const before = memory().tensors;
        const callback = (step: number, x: Tensor) => {
          if (step === disposeAt) x.dispose();
        };
        await expect(run((x) => x.neg(), callback, jit)).rejects.toThrow(
          new RegExp(`^${where}( \\(rk45\\))?: the callback disposed the samples it was given at step ${disposeAt}; they are the sampler's state`),
        );
        expect(memory().tensors, `jit ${jit}, disposed at call ${disposeAt}`).toBe(before);
      }
    }
  });

  it('and a run that succeeds leaves only its result', async () => {
    for (const [name, , run] of runs) {
      const before = memory().tensors;
      const out = await run((x) => x.neg());
      const result = out instanceof Promise ? await out : out;
      const x = (result as { x?: Tensor }).x ?? (result as Tensor);
      expect(memory().tensors, name).toBe(before + 1);
      x.dispose();
    }
  });
});

describe('samplers and the ambient gradient graph', () => {
  it('a score whose parameters require grad samples the same, compiled, and its samples are not in the graph', async () => {
    const sample = async (requiresGrad: boolean) => {
      const w = tensor([[-1, 0.25], [0.25, -1]], { dtype: 'float64' });
      w.requiresGrad = requiresGrad;
      let calls = 0;
      const score = (x: Tensor) => {
        calls++;
        return x.matmul(w);
      };
      const timeScore = (x: Tensor, _t?: Tensor) => score(x);
      const init = tensor([[1, 2], [-0.5, 0.5], [0, 3]], { dtype: 'float64' });
      const outs = [
        await langevinDynamics(score, init, { key: randomKey(3), steps: 6, stepSize: 0.01 }),
        // Its last step (Tweedie's denoising, on by default) runs eagerly, after the compiled ones.
        await annealedLangevinDynamics(score, init, { key: randomKey(7), sigmas: [1, 0.5], stepsPerLevel: 3, stepSize: 0.01 }),
        await predictorCorrector(timeScore, vpSde(), { key: randomKey(4), init, steps: 20 }),
        (await probabilityFlowOde(timeScore, vpSde(), { key: randomKey(5), init, method: 'rk4', steps: 4 })).x,
        (await probabilityFlowOde(timeScore, vpSde(), { key: randomKey(6), init, rtol: 1e-3, atol: 1e-3 })).x,
      ];
      const values = [];
      for (const x of outs) {
        expect(x.requiresGrad).toBe(false);
        values.push(Array.from(await x.data()));
        x.dispose();
      }
      for (const t of [w, init]) t.dispose();
      return { values, calls };
    };
    const before = memory().tensors;
    const plain = await sample(false);
    expect(await sample(true)).toEqual(plain); // the same calls: the compiled steps were traced, not run eagerly
    expect(memory().tensors).toBe(before);
  });
});

describe('sampler option checks', () => {
  it('rejects bad options with messages that say what was expected', async () => {
    const init = tensor([[0, 0]], { dtype: 'float64' });
    await expect(langevinDynamics((x) => x, init, { key: randomKey(1), stepSize: -1 })).rejects.toThrow(/^langevinDynamics: stepSize must be a finite number > 0, got -1$/);
    await expect(annealedLangevinDynamics((x) => x, init, { key: randomKey(1), sigmas: [1, 2] })).rejects.toThrow(/sigmas must decrease/);
    await expect(reverseSdeEulerMaruyama((x) => x, vpSde(), { key: randomKey(1) })).rejects.toThrow(/give either init/);
    expect(() => geometricSigmas(1, 2, 3)).toThrow(/sigmaMax > sigmaMin/);
  });

  it('rejects a misspelled option in every sampler, naming the closest valid one and all of them', async () => {
    const init = tensor([[0, 0]], { dtype: 'float64' });
    const key = randomKey(1);
    const callbacks = ['callback', 'callbackEvery', 'jit'];
    const sdeOptions = ['key', 'shape', 'init', 'dtype', 'device', 'steps', 'eps', 'denoiseFinalStep', ...callbacks];
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => langevinDynamics((x) => x, init, { key, stepsize: 0.1 } as never), unknownOption('langevinDynamics', 'stepsize', 'stepSize', ['key', 'stepSize', 'steps', 'cond', ...callbacks])],
      [() => annealedLangevinDynamics((x) => x, init, { key, stepsPerlevel: 5 } as never), unknownOption('annealedLangevinDynamics', 'stepsPerlevel', 'stepsPerLevel', ['key', 'sigmas', 'stepSize', 'stepsPerLevel', 'denoise', ...callbacks])],
      [() => reverseSdeEulerMaruyama((x) => x, vpSde(), { key, init, step: 5 } as never), unknownOption('reverseSdeEulerMaruyama', 'step', 'steps', sdeOptions)],
      [() => predictorCorrector((x) => x, vpSde(), { key, init, corrector: 2 } as never), unknownOption('predictorCorrector', 'corrector', 'correctorSteps', [...sdeOptions, 'snr', 'correctorSteps', 'predictor'])],
      [() => probabilityFlowOde((x) => x, vpSde(), { key, init, metod: 'rk4' } as never), unknownOption('probabilityFlowOde', 'metod', 'method', [...sdeOptions, 'method', 'rtol', 'atol', 'maxSteps', 'initialStep'])],
    ];
    for (const [run, message] of cases) await expect(run()).rejects.toThrow(message);
  });

  it('rejects option values that make no sense, and options the chosen method would ignore', async () => {
    const init = tensor([[0, 0]], { dtype: 'float64' });
    const key = randomKey(1);
    await expect(langevinDynamics((x) => x, init, { key, steps: -1 })).rejects.toThrow(/^langevinDynamics: steps must be an integer >= 0, got -1$/);
    // A noise level below 0 gave a σ-conditional model log σ of NaN and NaN samples, silently.
    await expect(langevinDynamics((x) => x, init, { key, cond: -1 })).rejects.toThrow(/^langevinDynamics: cond must be a finite number >= 0, got -1$/);
    await expect(langevinDynamics((x) => x, init, { key, callbackEvery: 0, callback: () => undefined })).rejects.toThrow(/^langevinDynamics: callbackEvery must be an integer >= 1, got 0$/);
    await expect(langevinDynamics((x) => x, init, { key: [1.5, 0] as never })).rejects.toThrow(/^langevinDynamics: opts.key: a key is two unsigned 32-bit integers/);
    await expect(annealedLangevinDynamics((x) => x, init, { key, denoise: 'no' as never })).rejects.toThrow(/^annealedLangevinDynamics: denoise must be true or false, got "no"$/);
    await expect(reverseSdeEulerMaruyama((x) => x, vpSde(), { key, shape: [4, 2.5] })).rejects.toThrow(/^reverseSdeEulerMaruyama: shape\[1\] must be an integer >= 1, got 2.5$/);
    await expect(predictorCorrector((x) => x, vpSde(), { key, init, snr: 0 })).rejects.toThrow(/^predictorCorrector: snr must be a finite number > 0, got 0$/);
    await expect(predictorCorrector((x) => x, veSde(), { key, init, steps: 2, correctorSteps: 0, snr: 0.3 })).rejects.toThrow(
      /^predictorCorrector: snr sets the Langevin corrector's step size; with correctorSteps 0 there is no corrector \(leave snr out, or set correctorSteps >= 1\)$/,
    );
    await expect(predictorCorrector((x) => x, vpSde(), { key, init, predictor: 'euler' as never })).rejects.toThrow(/^predictorCorrector: unknown predictor "euler" \(did you mean 'eulerMaruyama'\?\)/);
    await expect(probabilityFlowOde((x) => x, vpSde(), { key, init, steps: 50 })).rejects.toThrow(/^probabilityFlowOde: steps applies to the fixed-step methods 'euler' and 'rk4'; 'rk45' chooses its own steps/);
    await expect(probabilityFlowOde((x) => x, vpSde(), { key, init, method: 'euler', rtol: 1e-3 })).rejects.toThrow(/^probabilityFlowOde: rtol applies to method 'rk45' only, not to 'euler'$/);
    // The flow is deterministic: there is no last noise term for denoiseFinalStep to leave out.
    for (const denoiseFinalStep of [true, false]) {
      await expect(probabilityFlowOde((x) => x, vpSde(), { key, init, method: 'rk4', steps: 2, denoiseFinalStep })).rejects.toThrow(
        /^probabilityFlowOde: denoiseFinalStep applies to the stochastic samplers \(reverseSdeEulerMaruyama, predictorCorrector\); the probability-flow ODE adds no noise to leave out$/,
      );
    }
    await expect(probabilityFlowOde((x) => x, vpSde(), { key, init, eps: 0 })).rejects.toThrow(/^probabilityFlowOde: eps must be a finite number > 0 and < 1, got 0$/);
  });

  it('the SDE samplers refuse a shape, dtype or device that contradicts init (they were ignored)', async () => {
    const key = randomKey(8);
    const init = vpSde().priorSample([3, 2], { key, dtype: 'float64', device: 'cpu' });
    const before = memory().tensors;
    for (const run of [
      (o: object) => reverseSdeEulerMaruyama((x) => x.neg(), vpSde(), { key, init, steps: 2, ...o }),
      (o: object) => predictorCorrector((x) => x.neg(), vpSde(), { key, init, steps: 40, ...o }),
      (o: object) => probabilityFlowOde((x) => x.neg(), vpSde(), { key, init, method: 'euler', steps: 2, ...o }).then((r) => r.x),
    ]) {
      await expect(run({ shape: [5, 5] })).rejects.toThrow(/: init gives the samples, but shape \[5,5\] \(init's is \[3,2\]\) was given too; leave it out or make it init's$/);
      await expect(run({ dtype: 'float32', device: 'webgpu' })).rejects.toThrow(/: init gives the samples, but dtype 'float32' \(init's is 'float64'\), device 'webgpu' \(init's is 'cpu'\) was given too/);
      // The same values as init's are accepted.
      const x = await run({ shape: [3, 2], dtype: 'float64', device: 'cpu' });
      expect(x.shape).toEqual([3, 2]);
      x.dispose();
    }
    expect(memory().tensors).toBe(before);
    init.dispose();
  });

  it('predictor–corrector refuses a VP or sub-VP grid too coarse for its chain (every sample would be NaN), and runs from the first count that fits', async () => {
    // α = 1 − β(t)Δt, Δt = (1 − ε)/steps with VP's sampling ε = 1e-3, β(1) = 20: negative below 20 steps.
    const key = randomKey(5);
    const before = memory().tensors;
    await expect(predictorCorrector((x) => x.neg(), vpSde(), { key, shape: [4, 2], steps: 10 })).rejects.toThrow(
      /^predictorCorrector: with 10 steps the discrete chain's αᵢ = 1 − β\(t\)Δt is -0\.9980 at t = 1\.000; the corrector \(correctorSteps > 0\) needs αᵢ > 0, or every sample is NaN; use at least 20 steps$/,
    );
    await expect(predictorCorrector((x) => x.neg(), subVpSde(), { key, shape: [4, 2], steps: 19 })).rejects.toThrow(/with 19 steps .* use at least 20 steps$/);
    // Without the corrector, VP's reverse-diffusion step needs βᵢ ≤ 1; Euler–Maruyama's needs nothing.
    await expect(predictorCorrector((x) => x.neg(), vpSde(), { key, shape: [4, 2], steps: 10, correctorSteps: 0 })).rejects.toThrow(/the reverse-diffusion step needs βᵢ ≤ 1/);
    expect(memory().tensors).toBe(before); // the prior sample it drew is disposed with the refusal
    for (const opts of [{ steps: 20 }, { steps: 10, correctorSteps: 0, predictor: 'eulerMaruyama' as const }]) {
      const x = await predictorCorrector((x) => x.neg(), vpSde(), { key, shape: [4, 2], ...opts });
      expect(Array.from(await x.data()).every(Number.isFinite)).toBe(true);
      x.dispose();
    }
  });

  /** Each sampler by name, run on `score` from `init` (the SDE samplers under vpSde) with the options given. */
  const everySampler = (score: (x: Tensor) => Tensor, init: Tensor): [string, (opts: never) => Promise<unknown>][] => [
    ['langevinDynamics', (opts) => langevinDynamics(score, init, opts)],
    ['annealedLangevinDynamics', (opts) => annealedLangevinDynamics(score, init, opts)],
    ['reverseSdeEulerMaruyama', (opts) => reverseSdeEulerMaruyama(score, vpSde(), opts)],
    ['predictorCorrector', (opts) => predictorCorrector(score, vpSde(), opts)],
    ['probabilityFlowOde', (opts) => probabilityFlowOde(score, vpSde(), opts)],
  ];

  it('every sampler refuses a missing or non-object options argument by name, before reading an option', async () => {
    const init = tensor([[0, 0]], { dtype: 'float64' });
    const score = (x: Tensor) => x.neg();
    const cases = everySampler(score, init);
    for (const [where, run] of cases) {
      await expect(run(null as never)).rejects.toThrow(`${where}: expected an options object with at least a key, got null`);
      await expect(run(undefined as never)).rejects.toThrow(`${where}: expected an options object with at least a key, got undefined`);
    }
  });

  it('every sampler checks its options once: their names are listed once per call', async () => {
    // predictorCorrector and probabilityFlowOde checked the options object and its names before
    // reading an option, and then again in the set-up they share with reverseSdeEulerMaruyama.
    const init = tensor([[0.5, -0.5]], { dtype: 'float64' });
    const key = randomKey(1);
    const score = (x: Tensor) => x.neg();
    const counted = <T extends object>(opts: T) => {
      let listed = 0;
      const proxy = new Proxy(opts, { ownKeys: (target) => (listed++, Reflect.ownKeys(target)) });
      return { opts: proxy, listed: () => listed };
    };
    const cases = everySampler(score, init);
    for (const [where, run] of cases) {
      const options = where === 'annealedLangevinDynamics' ? { key, sigmas: [1], stepsPerLevel: 1 }
        : where === 'langevinDynamics' ? { key, steps: 1 }
        : where === 'probabilityFlowOde' ? { key, init, method: 'euler', steps: 1 }
        : where === 'predictorCorrector' ? { key, init, steps: 30 } : { key, init, steps: 1 };
      const { opts, listed } = counted(options);
      const out = await run(opts as never);
      ((out as { x?: Tensor }).x ?? (out as Tensor)).dispose();
      expect({ where, listed: listed() }).toEqual({ where, listed: 1 });
    }
  });

  it('a null option is refused by its own name, before options that depend on it are weighed', async () => {
    // predictorCorrector and probabilityFlowOde read some options through ?? before checking the
    // object, so null stood for the default there: a null method with steps was refused as
    // 'steps applies to the fixed-step methods' (null read as 'rk45'), a null rtol beside 'euler'
    // as applying to 'rk45' only, a null snr with correctorSteps 0 as a corrector setting.
    const key = randomKey(1);
    const score = (x: Tensor) => x.neg();
    const isNull = (where: string, name: string) => `${where}: ${name} is null, which is not a value for it (an option left out, or undefined, takes its default)`;
    await expect(probabilityFlowOde(score, vpSde(), { key, shape: [2, 2], method: null, steps: 3 } as never)).rejects.toThrow(isNull('probabilityFlowOde', 'method'));
    await expect(probabilityFlowOde(score, vpSde(), { key, shape: [2, 2], method: 'euler', rtol: null } as never)).rejects.toThrow(isNull('probabilityFlowOde', 'rtol'));
    await expect(probabilityFlowOde(score, vpSde(), { key, shape: [2, 2], denoiseFinalStep: null } as never)).rejects.toThrow(isNull('probabilityFlowOde', 'denoiseFinalStep'));
    await expect(predictorCorrector(score, vpSde(), { key, shape: [2, 2], steps: 2, snr: null, correctorSteps: 0 } as never)).rejects.toThrow(isNull('predictorCorrector', 'snr'));
  });

  it('every sampler refuses a score that returns another shape than its input (which would broadcast silently)', async () => {
    const init = tensor([[1, 2], [3, 4], [5, 6]], { dtype: 'float64' });
    const key = randomKey(1);
    const column = (x: Tensor) => x.sum(1, true).neg(); // [N, 1]: broadcasts against [N, d]
    const cases: [string, () => Promise<unknown>][] = [
      ['langevinDynamics', () => langevinDynamics(column, init, { key, steps: 2 })],
      ['annealedLangevinDynamics', () => annealedLangevinDynamics(column, init, { key, sigmas: [1, 0.5], stepsPerLevel: 2 })],
      ['reverseSdeEulerMaruyama', () => reverseSdeEulerMaruyama(column, vpSde(), { key, init, steps: 2 })],
      ['predictorCorrector', () => predictorCorrector(column, vpSde(), { key, init, steps: 30 })],
      ['probabilityFlowOde', () => probabilityFlowOde(column, vpSde(), { key, init })],
      ['probabilityFlowOde', () => probabilityFlowOde(column, vpSde(), { key, init, method: 'rk4', steps: 2 })],
    ];
    for (const [where, run] of cases) {
      await expect(run()).rejects.toThrow(`${where}: the score function returned shape [3,1] for an input of shape [3,2]; a score has the shape of its input`);
    }
    await expect(langevinDynamics((() => 3) as never, init, { key, steps: 1 })).rejects.toThrow('langevinDynamics: the score function must return a Tensor, got number');
  });

  it('the SDEs reject misspelled options and nonsense values', () => {
    expect(() => veSde({ sigma_max: 10 } as never)).toThrow(unknownOption('veSde', 'sigma_max', 'sigmaMax', ['sigmaMin', 'sigmaMax']));
    expect(() => vpSde({ betamin: 0.1 } as never)).toThrow(unknownOption('vpSde', 'betamin', 'betaMin', ['betaMin', 'betaMax']));
    expect(() => subVpSde({ betaMaximum: 20 } as never)).toThrow(unknownOption('subVpSde', 'betaMaximum', 'betaMax', ['betaMin', 'betaMax']));
    expect(() => vpSde().priorSample([2, 2], { key: randomKey(1), devise: 'cpu' } as never)).toThrow(unknownOption('vpSde.priorSample', 'devise', 'device', ['key', 'device', 'dtype']));
    expect(() => veSde({ sigmaMin: -1 })).toThrow(/^veSde: sigmaMin must be a finite number > 0, got -1$/);
    expect(() => subVpSde({ betaMin: 5, betaMax: 1 })).toThrow(/^subVpSde: need 0 < betaMin < betaMax, got 5, 1$/);
  });

  it('refuses an empty batch, as the losses and metrics do', async () => {
    const empty = tensor(new Float64Array(0), { dtype: 'float64', shape: [0, 2] });
    await expect(langevinDynamics((x) => x, empty, { key: randomKey(1) })).rejects.toThrow(/^langevinDynamics: init must be non-empty, got shape \[0,2\]$/);
    await expect(annealedLangevinDynamics((x) => x, empty, { key: randomKey(1) })).rejects.toThrow(/^annealedLangevinDynamics: init must be non-empty/);
    await expect(reverseSdeEulerMaruyama((x) => x, vpSde(), { key: randomKey(1), init: empty })).rejects.toThrow(/^reverseSdeEulerMaruyama: init must be non-empty/);
    await expect(modeWeights(empty, [[0, 0]])).rejects.toThrow(/^modeWeights: x must be non-empty/);
  });
});

// The measured figures, for the record (the lead's report quotes them).
afterAll(() => {
  console.log(report.join('\n'));
});

describe('SDE constructors refuse a schedule with no spread, and options that are not an object', () => {
  it('σ_max = σ_min (VE) and β_max = β_min (VP, sub-VP), naming both values', () => {
    // σ_max = σ_min makes log(σ_max/σ_min) = 0: VE's g(t) and its discrete G are then 0, a
    // forward process that adds no noise.
    expect(() => veSde({ sigmaMin: 1, sigmaMax: 1 })).toThrow(new RangeError('veSde: need 0 < sigmaMin < sigmaMax, got 1, 1'));
    expect(() => vpSde({ betaMin: 2, betaMax: 2 })).toThrow(new RangeError('vpSde: need 0 < betaMin < betaMax, got 2, 2'));
    expect(() => subVpSde({ betaMin: 2, betaMax: 2 })).toThrow(new RangeError('subVpSde: need 0 < betaMin < betaMax, got 2, 2'));
  });

  it('null options are named null, not object', () => {
    expect(() => vpSde(null as never)).toThrow(new TypeError('vpSde: expected an options object, got null'));
    expect(() => veSde(null as never)).toThrow(new TypeError('veSde: expected an options object, got null'));
    expect(() => veSde(3 as never)).toThrow(new TypeError('veSde: expected an options object, got number'));
  });
});

describe('priorSample refuses bad options under its own name', () => {
  it('refuses null options under its own name', () => {
    expect(() => vpSde().priorSample([2, 2], null as never)).toThrow(new TypeError('vpSde.priorSample: expected an options object { key, device?, dtype? }'));
  });

  it('refuses a bad key under its own name', () => {
    expect(() => veSde().priorSample([2, 2], { key: 5 } as never)).toThrow(/^veSde\.priorSample: opts\.key: a key is two unsigned 32-bit integers/);
  });

  it('refuses a dtype other than float32 and float64 under its own name', () => {
    expect(() => subVpSde().priorSample([2, 2], { key: randomKey(7), dtype: 'int32' } as never)).toThrow(new Error('subVpSde.priorSample: unknown dtype "int32"; expected one of \'float32\', \'float64\''));
  });
});

describe('samplingEpsilon refuses what is not an SDE', () => {
  it('names what it got when that is not an SDE nor a kind', () => {
    const refusal = /^samplingEpsilon: expected an SDE \(veSde\(\), vpSde\(\), subVpSde\(\)\) or its kind 've', 'vp' or 'subvp', got /;
    expect(() => samplingEpsilon(5 as never)).toThrow(new RegExp(`${refusal.source}number$`));
    expect(() => samplingEpsilon(undefined as never)).toThrow(new RegExp(`${refusal.source}undefined$`));
    expect(() => samplingEpsilon({} as never)).toThrow(new RegExp(`${refusal.source}kind undefined$`));
  });
});

// Below: the documented defaults a run uses, the Langevin step replayed on the host, option checks
// that name the bad value, RK45's eps, maxSteps and callbackEvery, and compiled steps freed. CPU,
// float64 unless a test says otherwise.
const f64 = { dtype: 'float64' } as const;
const u64 = unitRoundoff('float64');

describe('the samplers run with their documented defaults', () => {
  // The defaults are stated in the docs with their sources; a run with the option left out must
  // equal a run with the documented value written out (same key: bit for bit).
  it('SAMPLER_DEFAULTS holds the published settings', () => {
    expect(SAMPLER_DEFAULTS).toEqual({
      langevin: { stepSize: 0.1, steps: 1000 },
      annealedLangevin: { stepSize: 2e-5, stepsPerLevel: 100 },
      reverseSde: { steps: 1000 },
      predictorCorrector: { snr: 0.16, correctorSteps: 1 },
      probabilityFlow: { rtol: 1e-5, atol: 1e-5, maxSteps: 10000 },
    });
  });

  const init = tensor([[0.5, -0.5], [1, 2]], f64);
  const score = (x: Tensor) => x.neg();
  const timeScore = (x: Tensor, _t?: Tensor) => x.neg();
  const key = randomKey(3);

  it('langevinDynamics: ε = 0.1, 1000 steps', async () => {
    let calls = 0;
    const byDefault = await hostValues(await langevinDynamics(score, init, { key, callback: () => void calls++ }));
    expect(calls).toBe(1000);
    expect(byDefault).toEqual(await hostValues(await langevinDynamics(score, init, { key, stepSize: 0.1, steps: 1000 })));
  });

  it('annealedLangevinDynamics: σ geometric 1 → 0.01 over 10 levels, ε = 2e-5, 100 steps per level, then denoising', async () => {
    let calls = 0;
    const byDefault = await hostValues(await annealedLangevinDynamics(score, init, { key, callback: () => void calls++ }));
    expect(calls).toBe(10 * 100 + 1);
    const explicit = { key, sigmas: geometricSigmas(1, 0.01, 10), stepSize: 2e-5, stepsPerLevel: 100, denoise: true };
    expect(byDefault).toEqual(await hostValues(await annealedLangevinDynamics(score, init, explicit)));
  });

  it('reverseSdeEulerMaruyama and predictorCorrector: 1000 steps; snr 0.16 and one corrector step', async () => {
    const sde = vpSde();
    let calls = 0;
    const em = await hostValues(await reverseSdeEulerMaruyama(timeScore, sde, { key, init, callback: () => void calls++ }));
    expect(calls).toBe(1000);
    expect(em).toEqual(await hostValues(await reverseSdeEulerMaruyama(timeScore, sde, { key, init, steps: 1000, denoiseFinalStep: true })));
    const pc = await hostValues(await predictorCorrector(timeScore, sde, { key, init }));
    expect(pc).toEqual(await hostValues(await predictorCorrector(timeScore, sde, { key, init, steps: 1000, snr: 0.16, correctorSteps: 1, predictor: 'reverseDiffusion' })));
  });

  it('probabilityFlowOde: RK45 with rtol = atol = 1e-5', async () => {
    const sde = vpSde();
    const byDefault = await probabilityFlowOde(timeScore, sde, { key, init });
    const explicit = await probabilityFlowOde(timeScore, sde, { key, init, method: 'rk45', rtol: 1e-5, atol: 1e-5, maxSteps: 10000 });
    expect([byDefault.nfe, byDefault.acceptedSteps, byDefault.rejectedSteps]).toEqual([explicit.nfe, explicit.acceptedSteps, explicit.rejectedSteps]);
    expect(await hostValues(byDefault.x)).toEqual(await hostValues(explicit.x));
  });
});

describe('langevinDynamics: the step and its condition, replayed on the host', () => {
  it('x ← x + (ε/2)·s(x, cond) + √ε·z with z from foldIn(key, k), cond broadcast to [N]', async () => {
    // score(x, c) = −c·x needs the condition: without it, it would throw (perRow(undefined)).
    const score = (x: Tensor, c?: Tensor) => x.neg().mul(perRow(c!));
    const init = tensor([[0.5, -0.5], [1, 2], [-1, 0.25]], f64);
    const key = randomKey(17);
    const [eps, cond, steps] = [0.05, 0.7, 3];
    const x = await hostValues(await langevinDynamics(score, init, { key, stepSize: eps, steps, cond }));
    let host = Array.from(init.dataSync());
    for (let k = 0; k < steps; k++) {
      const z = Array.from(randn([3, 2], { key: foldIn(key, k) as RandomKey, ...f64 }).dataSync());
      host = host.map((v, e) => v + (eps / 2) * (-cond * v) + Math.sqrt(eps) * z[e]!);
    }
    // Per step ≤ 5 roundings of values ≤ 4 (|x| ≤ 2 plus √ε·|z| ≤ 0.23·4), the map contracting
    // (factor 1 − ε·cond/2 < 1): over 3 steps ≤ 3·5·4·u ≈ 7e-15.
    x.forEach((v, e) => expect(Math.abs(v - host[e]!), `element ${e}`).toBeLessThanOrEqual(3 * 5 * 4 * u64));
  });

  it('steps 0 returns a copy of init, not init itself', async () => {
    const init = tensor([[0.5, -0.5]], f64);
    const out = await langevinDynamics((x) => x.neg(), init, { key: randomKey(1), steps: 0 });
    expect(out).not.toBe(init);
    expect(Array.from(await out.data())).toEqual([0.5, -0.5]);
    out.dispose();
    expect(init.isDisposed).toBe(false);
    init.dispose();
  });
});

describe('option checks that name the bad value', () => {
  const init = tensor([[0.5, -0.5], [1, 2]], f64);
  const key = randomKey(1);
  const score = (x: Tensor, _c?: Tensor) => x.neg();

  it('geometricSigmas: one level is σ_max; more are geometric from σ_max to σ_min', () => {
    expect(geometricSigmas(2, 0.5, 1)).toEqual([2]);
    const sigmas = geometricSigmas(8, 1, 4); // 8, 4, 2, 1, each within a few roundings (exp, log)
    [8, 4, 2, 1].forEach((s, i) => expect(Math.abs(sigmas[i]! - s)).toBeLessThanOrEqual(8 * 8 * u64));
  });

  it('annealedLangevinDynamics refuses equal or non-positive noise levels', async () => {
    await expect(annealedLangevinDynamics(score, init, { key, sigmas: [1, 1] })).rejects.toThrow(/^annealedLangevinDynamics: sigmas must decrease, got 1 then 1 at index 1$/);
    await expect(annealedLangevinDynamics(score, init, { key, sigmas: [1, -1] })).rejects.toThrow(/^annealedLangevinDynamics: sigmas\[1\] must be a finite number > 0, got -1$/);
  });

  it('the SDE samplers refuse an empty shape, a non-boolean denoiseFinalStep and eps = T, and draw float32 by default', async () => {
    const sde = vpSde();
    await expect(reverseSdeEulerMaruyama(score, sde, { key, shape: [0, 2] })).rejects.toThrow(/^reverseSdeEulerMaruyama: shape\[0\] must be an integer >= 1, got 0$/);
    await expect(reverseSdeEulerMaruyama(score, sde, { key, init, denoiseFinalStep: 'no' as never })).rejects.toThrow(/^reverseSdeEulerMaruyama: denoiseFinalStep must be true or false, got "no"$/);
    await expect(reverseSdeEulerMaruyama(score, sde, { key, init, eps: 1 })).rejects.toThrow(/^reverseSdeEulerMaruyama: eps must be a finite number > 0 and < 1, got 1$/);
    const x = await reverseSdeEulerMaruyama(score, sde, { key, shape: [2, 2], steps: 2 });
    expect(x.dtype).toBe('float32');
    x.dispose();
  });

  it('probabilityFlowOde refuses a non-positive initialStep and a non-integer maxSteps by name; every sampler a callback that is not a function', async () => {
    const sde = vpSde();
    await expect(probabilityFlowOde(score, sde, { key, init, initialStep: 0 })).rejects.toThrow(/^probabilityFlowOde: initialStep must be a finite number > 0, got 0$/);
    await expect(probabilityFlowOde(score, sde, { key, init, maxSteps: 0 })).rejects.toThrow(/^probabilityFlowOde: maxSteps must be an integer >= 1, got 0$/);
    await expect(probabilityFlowOde(score, sde, { key, init, maxSteps: 2.5 })).rejects.toThrow(/^probabilityFlowOde: maxSteps must be an integer >= 1, got 2.5$/);
    await expect(langevinDynamics(score, init, { key, callback: 5 as never })).rejects.toThrow(/^langevinDynamics: callback must be a function \(step, x\) => void, got number$/);
  });
});

describe('probabilityFlowOde (rk45) honours eps, maxSteps and callbackEvery', () => {
  // 1-D Gaussian data N(μ, v₀) under VP: the flow is affine and y = x − m(t)μ obeys
  // y(t₁) = √(c(t₁)/c(T))·y(T), c = m²v₀ + s² (Song et al. 2021; as in samplersExact.test.ts).
  const [mu, v0] = [1.5, 0.09];
  const sde = vpSde();
  const gaussian = new GaussianMixture({ means: [[mu]], covariances: [v0] });
  const coefficientsAt = (t: number) => {
    const tt = full([1], t, f64);
    return { m: sde.meanCoefficient(tt).dataSync()[0]!, s: sde.std(tt).dataSync()[0]! };
  };
  const init = tensor([[-1], [0], [0.5], [2]], f64);

  it('stops at the eps it is given', async () => {
    const eps = 0.5;
    const sol = await probabilityFlowOde(gaussian.diffusedScore(sde), sde, { key: randomKey(1), init, eps });
    const [start, end] = [coefficientsAt(1), coefficientsAt(eps)];
    const c = (k: typeof start) => k.m * k.m * v0 + k.s * k.s;
    const exact = Array.from(init.dataSync()).map((x) => end.m * mu + Math.sqrt(c(end) / c(start)) * (x - start.m * mu));
    const out = await hostValues(sol.x);
    // Each accepted step's local error is ≤ atol + rtol·|x| (defaults 1e-5), and the flow
    // contracts here (c decreases towards t = 0 for v₀ < 1), so the errors add at most.
    const allowed = sol.acceptedSteps * (1e-5 + 1e-5 * Math.max(...out.map(Math.abs), ...exact.map(Math.abs)));
    // At the default ε = 1e-3 the samples would sit ≥ 0.2 away: far outside `allowed` (≈ 1e-4).
    expect(allowed).toBeLessThan(1e-3);
    out.forEach((v, i) => expect(Math.abs(v - exact[i]!), `sample ${i}`).toBeLessThanOrEqual(allowed));
  });

  it('gives up after exactly maxSteps attempted steps', async () => {
    const run = (maxSteps?: number) => probabilityFlowOde(gaussian.diffusedScore(sde), sde, { key: randomKey(1), init, maxSteps });
    const free = await run();
    const attempts = free.acceptedSteps + free.rejectedSteps;
    free.x.dispose();
    expect(attempts).toBeGreaterThan(1);
    const enough = await run(attempts);
    expect(enough.acceptedSteps + enough.rejectedSteps).toBe(attempts);
    enough.x.dispose();
    const before = memory().tensors;
    await expect(run(attempts - 1)).rejects.toThrow(new RegExp(`^probabilityFlowOde \\(rk45\\): no solution after ${attempts - 1} attempted steps`));
    expect(memory().tensors).toBe(before);
  });

  it('calls the callback every callbackEvery accepted steps', async () => {
    const seen: number[] = [];
    const sol = await probabilityFlowOde(gaussian.diffusedScore(sde), sde, { key: randomKey(1), init, callbackEvery: 2, callback: (step) => void seen.push(step) });
    expect(sol.acceptedSteps).toBeGreaterThanOrEqual(4);
    expect(seen).toEqual(Array.from({ length: Math.floor(sol.acceptedSteps / 2) }, (_, i) => 2 * (i + 1)));
    sol.x.dispose();
  });

  it('a score that returns NaN is named as such, not as an exhausted step budget', async () => {
    const before = memory().tensors;
    await expect(probabilityFlowOde((x) => x.mul(Number.NaN), sde, { key: randomKey(1), init, maxSteps: 5 })).rejects.toThrow(
      /^probabilityFlowOde \(rk45\): the error estimate is NaN at t = 1; the score returned non-finite values$/,
    );
    expect(memory().tensors).toBe(before);
  });
});

describe('a finished run frees its compiled steps', () => {
  it('no device buffer outlives a run but its result (the programs\' constants included)', async () => {
    const init = tensor([[0.5, -0.5], [1, 2]], f64);
    const key = randomKey(2);
    const score = (x: Tensor, _c?: Tensor) => x.neg();
    const runs: [string, () => Promise<Tensor>][] = [
      ['langevinDynamics', () => langevinDynamics(score, init, { key, steps: 3 })],
      ['annealedLangevinDynamics', () => annealedLangevinDynamics(score, init, { key, sigmas: [1, 0.5], stepsPerLevel: 2 })],
      ['reverseSdeEulerMaruyama', () => reverseSdeEulerMaruyama(score, vpSde(), { key, init, steps: 3 })],
      ['predictorCorrector', () => predictorCorrector(score, vpSde(), { key, init, steps: 30 })],
      ['probabilityFlowOde rk4', async () => (await probabilityFlowOde(score, vpSde(), { key, init, method: 'rk4', steps: 3 })).x],
    ];
    for (const [name, run] of runs) {
      const before = memory();
      (await run()).dispose();
      const after = memory();
      expect({ name, tensors: after.tensors, buffers: after.buffers, bytes: after.bytes }).toEqual({ name, tensors: before.tensors, buffers: before.buffers, bytes: before.bytes });
    }
  });
});
