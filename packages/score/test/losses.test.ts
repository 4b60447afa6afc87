// Proofs of the score-matching losses on Gaussian data, where every quantity has a closed form.
// All randomness comes from fixed keys; each statistical tolerance is k·SE with SE the Monte-Carlo
// standard error estimated from the per-example (or per-key) values, and k = 4: under the CLT a
// correct implementation fails one such check with probability 6e-5, while a wrong constant or
// weighting typically moves the mean by tens of SEs. Tolerances are never widened to pass.

import { describe, expect, it } from 'vitest';
import { grad, jacobian } from '@scorch/autograd';
import {
  type RandomKey, type Tensor, cast, concat, matmul, rand, randn, randomKey, reshape, splitKey, sum, tensor, tidy,
} from '@scorch/tensor';
import {
  type Params, type ProjectionDistribution, denoisingScoreMatchingLoss, drawProjections, energyHessianTrace,
  explicitScoreMatchingLoss, implicitScoreMatchingLoss, kdeLogDensity, kdeScore,
  mlpEnergy, mlpScore, ncsnLoss, projectedJacobianTrace, ruleOfThumbBandwidth, sdeScoreLoss,
  scoreJacobianTrace, sgd, slicedScoreMatchingLoss, train,
} from '../src/index.js';
import { type Sde, perRow, subVpSde, veSde, vpSde } from '../src/sde.js';
import { geometricSigmas } from '../src/samplers.js';
import { symmetricEigen } from '../src/data.js';
import { type FloatDType, onEachTarget, openDevice, unitRoundoff } from './devices.js';
import { unknownOption } from './options.js';

const K_SE = 4;

// ------------------------------------------------------------------------------------------------
// Host-side helpers: small dense linear algebra and sample statistics

type Mat = number[][];
const matMul = (a: Mat, b: Mat): Mat => a.map((row) => b[0]!.map((_, j) => row.reduce((acc, v, k) => acc + v * b[k]![j]!, 0)));
const transposeM = (a: Mat): Mat => a[0]!.map((_, j) => a.map((row) => row[j]!));
const identity = (d: number): Mat => Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));
const addM = (a: Mat, b: Mat): Mat => a.map((row, i) => row.map((v, j) => v + b[i]![j]!));
const scaleM = (a: Mat, s: number): Mat => a.map((row) => row.map((v) => v * s));
const trace = (a: Mat): number => a.reduce((acc, row, i) => acc + row[i]!, 0);
/** Gauss–Jordan inverse with partial pivoting. */
function inverse(a: Mat): Mat {
  const d = a.length;
  const m = a.map((row, i) => [...row, ...identity(d)[i]!]);
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    const piv = m[c]![c]!;
    for (let j = 0; j < 2 * d; j++) m[c]![j]! /= piv;
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = m[r]![c]!;
      for (let j = 0; j < 2 * d; j++) m[r]![j]! -= f * m[c]![j]!;
    }
  }
  return m.map((row) => row.slice(d));
}

function meanAndSe(values: ArrayLike<number>): { mean: number; se: number; variance: number } {
  const n = values.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i]!;
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i]! - mean) ** 2;
  const variance = ss / (n - 1);
  return { mean, se: Math.sqrt(variance / n), variance };
}

/** Expects |estimate − exact| ≤ K_SE·se, with a message carrying the numbers. */
function expectWithinSe(label: string, estimate: number, exact: number, se: number): void {
  const z = (estimate - exact) / se;
  expect(Math.abs(z), `${label}: estimate ${estimate}, exact ${exact}, SE ${se}, z = ${z.toFixed(2)}`).toBeLessThanOrEqual(K_SE);
}

const read = async (t: Tensor): Promise<number[]> => Array.from(await t.data());
const asMat = async (t: Tensor): Promise<Mat> => (await t.toArray()) as Mat;

// ------------------------------------------------------------------------------------------------
// The Gaussian N(μ, Σ) in d = 3, Σ = LLᵀ

const MU = [0.5, -1, 0.25];
const CHOL: Mat = [
  [1, 0, 0],
  [0.4, 0.8, 0],
  [-0.3, 0.2, 0.6],
];
const SIGMA = matMul(CHOL, transposeM(CHOL));
const PRECISION = inverse(SIGMA);
const f64 = { dtype: 'float64' as const, device: 'cpu' };
const rows = async (t: Tensor): Promise<number[][]> => (await t.toArray()) as number[][];

/** n draws of N(mu, chol·cholᵀ), by default float64 on the CPU. */
function gaussianSample(n: number, key: RandomKey, mu = MU, chol = CHOL, on: { dtype: FloatDType; device: string } = f64): Tensor {
  const z = randn([n, mu.length], { key, ...on });
  return matmul(z, tensor(transposeM(chol), on)).add(tensor(mu, on));
}

/** ∇log N(x; μ, Σ) = −Σ⁻¹(x − μ), row-wise: −(x − μ)Σ⁻ᵀ. */
function gaussianScore(mu: number[], precision: Mat): (x: Tensor) => Tensor {
  const p = tensor(transposeM(precision), f64);
  const m = tensor(mu, f64);
  return (x) => matmul(x.sub(m), p).neg();
}

describe('explicit vs implicit score matching on Gaussian data', () => {
  it('ESM − ISM = ½ tr Σ⁻¹ for a random MLP score and a random energy model', async () => {
    const n = 5000;
    const x = gaussianSample(n, randomKey(11));
    const target = gaussianScore(MU, PRECISION);
    const exact = 0.5 * trace(PRECISION);
    const halfSquaredTarget = await read(tidy(() => sum(target(x).square(), 1).mul(0.5)));
    const models = {
      'MLP score (tanh)': mlpScore({ inputDim: 3, hidden: [16, 16], activation: 'tanh', key: randomKey(12), ...f64 }).score,
      'MLP energy (softplus)': mlpEnergy({ inputDim: 3, hidden: [16], activation: 'softplus', key: randomKey(13), ...f64 }).score,
    };
    for (const [label, score] of Object.entries(models)) {
      // Per example, Dᵢ = ESMᵢ − ISMᵢ = ½‖gᵢ‖² − sᵢᵀgᵢ − tr Jᵢ (g = ∇log p) are iid with mean
      // ½E‖g‖² = ½tr Σ⁻¹ (Stein's identity E[sᵀg + tr J] = 0): the sample mean is within k·SE.
      const gap = await read(tidy(() =>
        explicitScoreMatchingLoss(score, x, { targetScore: target, reduction: 'none' }).sub(implicitScoreMatchingLoss(score, x, { reduction: 'none' })),
      ));
      const total = meanAndSe(gap);
      expectWithinSe(`ESM − ISM vs ½tr Σ⁻¹, ${label}`, total.mean, exact, total.se);
      // Sharper, on the same sample: ESM − ISM − ½·mean‖g‖² = −mean(sᵀg + tr J), whose SE
      // excludes the (model-independent) noise of ½‖g‖².
      const stein = meanAndSe(gap.map((v, i) => v - halfSquaredTarget[i]!));
      expectWithinSe(`ESM − ISM − ½‖g‖² on the sample, ${label}`, stein.mean, 0, stein.se);
      console.log(`[ESM−ISM] ${label}: ${total.mean.toFixed(5)} ± ${total.se.toFixed(5)} (SE) vs ½tr Σ⁻¹ = ${exact.toFixed(5)}; ` +
        `minus the sample's ½‖∇log p‖²: ${stein.mean.toExponential(2)} ± ${stein.se.toExponential(2)}`);
    }
  });
});

// ------------------------------------------------------------------------------------------------
// Linear models trained to their closed-form optima, on every test target (devices.ts): the CPU in
// float64, and the CPU and WebGPU in float32. The optimiser must reach the empirical risk's
// closed-form minimiser (an identity up to optimisation error and rounding, both derived below:
// float64 sharpens it, float32 needs its own bound), and that minimiser must estimate the
// population optimum within 4 SE (the Monte-Carlo SEs are ≈ 0.05 here, over 30 times even the
// float32 rounding bounds, so that check is the same in both precisions).

/** Smallest eigenvalue of a symmetric matrix. */
const smallestEigenvalue = (a: Mat): number => Math.min(...symmetricEigen(a).values);

/**
 * Rounding in a batch-mean gradient. Each entry is a mean of N per-example terms: any summation
 * order errs by ≤ (N − 1)·u·Σ|terms|/N (to first order; u the unit roundoff), and each term has
 * about ten roundings of its own (the model's matmul, subtractions and products, and storing the
 * parameters in the dtype). So with `termScale` ≥ the mean |term|:
 *   |computed − exact gradient| ≤ (N + 10)·u·termScale.
 */
function gradientRounding(dtype: FloatDType, n: number, termScale: number): number {
  return (n + 10) * unitRoundoff(dtype) * termScale;
}

/**
 * How far from the exact minimiser of a quadratic risk (Hessian eigenvalues ≥ λ_min) a gradient
 * iteration can come to rest in floating point: where the computed gradient is within its
 * rounding error of 0, or where an update lr·g smaller than half an ulp of θ is lost (at rest,
 * momentum only enlarges the update), i.e. |g| ≤ u·max|θ|/lr. Distance ≤ |g|/λ_min.
 */
function restingDistance(dtype: FloatDType, gradientError: number, largestParam: number, lr: number, lambdaMin: number): number {
  return (gradientError + (unitRoundoff(dtype) * largestParam) / lr) / lambdaMin;
}

/** Optimisation tolerance of the float64 runs: 200 (150) steps converge to ~1e-10 there. */
const OPTIMISATION_TOLERANCE = 1e-6;

onEachTarget('linear score models trained on Gaussian data reach their closed forms', (target) => {
  const on = { dtype: target.dtype, device: target.device };
  const where = `${target.device} ${target.dtype}`;

  it('a linear score −P(x − b) trained with ISM reaches P = Σ⁻¹, b = μ', async () => {
    const n = 1000;
    const d = 3;
    const lr = 0.2;
    const x = gaussianSample(n, randomKey(21), MU, CHOL, on);
    expect(x.device).toBe(target.device);
    // The empirical ISM ½tr(P C Pᵀ) − tr P, C = mean (x−b)(x−b)ᵀ, is minimised by b = x̄ and
    // P = S⁻¹ with S the (1/N) sample covariance (computed on the host in float64 from the
    // sample's values, which every dtype holds exactly as doubles).
    const xs = (await asMat(x)) as Mat;
    const mean = MU.map((_, j) => xs.reduce((acc, row) => acc + row[j]!, 0) / n);
    const centred = xs.map((row) => row.map((v, j) => v - mean[j]!));
    const sampleCov = scaleM(matMul(transposeM(centred), centred), 1 / n);
    const closedP = inverse(sampleCov);

    const linearScore = (p: Params) => (z: Tensor) => matmul(z.sub(p.b!), p.P!.transpose()).neg();
    const ism = (p: Params) => implicitScoreMatchingLoss(linearScore(p), x);

    // 1. The closed form is a stationary point of the empirical ISM: its gradient vanishes up to
    //    rounding. Per example, the P-gradient term is P(x−b)(x−b)ᵀ and the b-gradient term
    //    −PᵀP(x−b); at the optimum (PCPᵀ = P, P symmetric) Cauchy–Schwarz bounds their mean sizes
    //    by √(P_aa C_cc) and √((P²)_aa). float64: ≈ 3e-13; float32: ≈ 1.8e-4.
    const closedSquared = matMul(closedP, closedP);
    const termScale = Math.max(
      ...closedP.flatMap((row, a) => sampleCov.map((_, c) => Math.sqrt(closedP[a]![a]! * sampleCov[c]![c]!))),
      ...closedSquared.map((row, a) => Math.sqrt(row[a]!)),
    );
    const gradientError = gradientRounding(target.dtype, n, termScale);
    const closed = { P: tensor(closedP, on), b: tensor(mean, on) };
    const [gP, gb] = grad((P: Tensor, b: Tensor) => ism({ P, b }), { argnums: [0, 1] })(closed.P, closed.b) as Tensor[];
    const stationarity = Math.max(...[...(await read(gP!)), ...(await read(gb!))].map(Math.abs));
    expect(stationarity).toBeLessThanOrEqual(gradientError);

    // 2. Training from P = I, b = 0 (SGD with momentum: the objective is a well-conditioned
    //    quadratic in P for fixed b) reaches it: within the optimisation tolerance plus the
    //    resting distance of the float iteration. The Hessian is C ⊗ I in P and PᵀP = C⁻² in b
    //    (no cross terms at b = x̄), so λ_min = min(λ_min(C), 1/λ_max(C)²).
    const params: Params = { P: tensor(identity(d), on), b: tensor([0, 0, 0], on) };
    await train({
      params,
      loss: (p) => ism(p),
      optimizer: sgd({ lr, momentum: 0.8 }),
      steps: 200,
      key: randomKey(22),
      every: 200,
    });
    const trainedP = await asMat(params.P!);
    const trainedB = await read(params.b!);
    const covEigen = symmetricEigen(sampleCov).values;
    const lambdaMin = Math.min(Math.min(...covEigen), 1 / Math.max(...covEigen) ** 2);
    const largestParam = Math.max(...closedP.flat().map(Math.abs), ...mean.map(Math.abs));
    const trainingTolerance = OPTIMISATION_TOLERANCE + restingDistance(target.dtype, gradientError, largestParam, lr, lambdaMin);
    let trainingError = 0;
    for (let a = 0; a < d; a++) {
      trainingError = Math.max(trainingError, Math.abs(trainedB[a]! - mean[a]!));
      for (let c = 0; c < d; c++) trainingError = Math.max(trainingError, Math.abs(trainedP[a]![c]! - closedP[a]![c]!));
    }
    expect(trainingError).toBeLessThanOrEqual(trainingTolerance);

    // 3. The empirical minimiser estimates the truth: by the delta method for S⁻¹ (Cov of the
    //    sample covariance (1/N)(Σ_ac Σ_bd + Σ_ad Σ_bc)), Var[(S⁻¹)_ab] ≈ (Q_aa Q_bb + Q_ab²)/N
    //    with Q = Σ⁻¹; Var[x̄_a] = Σ_aa/N.
    for (let a = 0; a < d; a++) {
      expectWithinSe(`b[${a}]`, trainedB[a]!, MU[a]!, Math.sqrt(SIGMA[a]![a]! / n));
      for (let c = 0; c < d; c++) {
        const se = Math.sqrt((PRECISION[a]![a]! * PRECISION[c]![c]! + PRECISION[a]![c]! ** 2) / n);
        expectWithinSe(`P[${a}][${c}]`, trainedP[a]![c]!, PRECISION[a]![c]!, se);
      }
    }
    console.log(`[ISM linear, ${where}] |∇ at closed form| ${stationarity.toExponential(2)} (bound ${gradientError.toExponential(2)}); ` +
      `|trained − closed| ${trainingError.toExponential(2)} (bound ${trainingTolerance.toExponential(2)}); ` +
      `trained P = ${JSON.stringify(trainedP.map((r) => r.map((v) => +v.toFixed(4))))}, Σ⁻¹ = ${JSON.stringify(PRECISION.map((r) => r.map((v) => +v.toFixed(4))))}`);
  });

  it('a linear model trained with DSM reaches s* = −(Σ + σ²I)⁻¹(x̃ − μ)', async () => {
    // d = 2; the affine model s = −P x̃ + c on one fixed noise draw (a deterministic empirical
    // risk). Its minimiser is least squares of y = −z/σ on x̃; the residual y − s*(x̃) has
    // covariance R = I/σ² − Q (Q = (Σ+σ²I)⁻¹, the Gaussian conditional of z given x̃), so
    // SE(P̂_ab) = √(R_aa Q_bb/N) and SE(ĉ_a) = √(R_aa(1 + μᵀQμ)/N) (OLS with intercept).
    const sigma = 0.5;
    const n = 2000;
    const lr = 0.2;
    const mu2 = [1, -0.5];
    const chol2: Mat = [
      [0.8, 0],
      [0.5, 0.6],
    ];
    const sigma2 = matMul(chol2, transposeM(chol2));
    const q = inverse(addM(sigma2, scaleM(identity(2), sigma * sigma)));
    const x = gaussianSample(n, randomKey(44), mu2, chol2, on);
    const key = randomKey(45);
    const params: Params = { P: tensor(identity(2), on), c: tensor([0, 0], on) };
    const affine = (p: Params) => (z: Tensor) => matmul(z, p.P!.transpose()).neg().add(p.c!);
    await train({
      params,
      loss: (p) => denoisingScoreMatchingLoss(affine(p), x, { sigma, key }),
      optimizer: sgd({ lr, momentum: 0.8 }),
      steps: 150,
      key: randomKey(46),
      every: 150,
    });
    expect(params.P!.device).toBe(target.device);
    const P = await asMat(params.P!);
    const c = await read(params.c!);

    // Closed-form empirical minimiser: normal equations on the same x̃, z (the loss draws
    // z = randn(x.shape, {key}) in x's dtype on x's device; the host rebuilds it the same way).
    const z = await asMat(randn([n, 2], { key, ...on }));
    const xs = await asMat(x);
    const noisy = xs.map((row, i) => row.map((v, j) => v + sigma * z[i]![j]!));
    const y = z.map((row) => row.map((v) => -v / sigma));
    const xm = [0, 1].map((j) => noisy.reduce((acc, r) => acc + r[j]!, 0) / n);
    const ym = [0, 1].map((j) => y.reduce((acc, r) => acc + r[j]!, 0) / n);
    const xc = noisy.map((r) => r.map((v, j) => v - xm[j]!));
    const yc = y.map((r) => r.map((v, j) => v - ym[j]!));
    const sxx = matMul(transposeM(xc), xc);
    const sxy = matMul(transposeM(xc), yc);
    const closedP = scaleM(transposeM(matMul(inverse(sxx), sxy)), -1); // y ≈ −P x̃ + c
    const closedC = ym.map((v, a) => v + closedP[a]!.reduce((acc, p, b) => acc + p * xm[b]!, 0));

    // Optimisation tolerance plus the float iteration's resting distance. Per example the
    // gradient terms are r_a x̃_b (P) and r_a (c), with r = s + z/σ the residual at the minimiser:
    // their mean sizes are ≤ √(mean r_a² · mean x̃_b²) and √(mean r_a²) (Cauchy–Schwarz, from the
    // data). The Hessian is M ⊗ I with M = mean [x̃; 1][x̃; 1]ᵀ. float64: ≈ 1e-6; float32: ≈ 1.4e-3.
    const residuals = noisy.map((row, i) => [0, 1].map((a) => y[i]![a]! - (closedC[a]! - closedP[a]!.reduce((acc, p, b) => acc + p * row[b]!, 0))));
    const meanSquare = (rows: number[][], j: number) => rows.reduce((acc, r) => acc + r[j]! ** 2, 0) / n;
    const residualScale = Math.sqrt(Math.max(meanSquare(residuals, 0), meanSquare(residuals, 1)));
    const inputScale = Math.sqrt(Math.max(1, meanSquare(noisy, 0), meanSquare(noisy, 1)));
    const gradientError = gradientRounding(target.dtype, n, residualScale * inputScale);
    const secondMoments: Mat = [0, 1, 2].map((i) => [0, 1, 2].map((j) => noisy.reduce((acc, r) => acc + (i < 2 ? r[i]! : 1) * (j < 2 ? r[j]! : 1), 0) / n));
    const largestParam = Math.max(...closedP.flat().map(Math.abs), ...closedC.map(Math.abs));
    const trainingTolerance = OPTIMISATION_TOLERANCE + restingDistance(target.dtype, gradientError, largestParam, lr, smallestEigenvalue(secondMoments));

    const r = addM(scaleM(identity(2), 1 / sigma ** 2), scaleM(q, -1));
    const muQmu = mu2.reduce((acc, ma, a) => acc + ma * q[a]!.reduce((s, qab, b) => s + qab * mu2[b]!, 0), 0);
    const cStar = q.map((row) => row.reduce((acc, v, b) => acc + v * mu2[b]!, 0));
    let trainingError = 0;
    for (let a = 0; a < 2; a++) {
      trainingError = Math.max(trainingError, Math.abs(c[a]! - closedC[a]!));
      expectWithinSe(`c[${a}]`, c[a]!, cStar[a]!, Math.sqrt((r[a]![a]! * (1 + muQmu)) / n));
      for (let b = 0; b < 2; b++) {
        trainingError = Math.max(trainingError, Math.abs(P[a]![b]! - closedP[a]![b]!));
        expectWithinSe(`P[${a}][${b}]`, P[a]![b]!, q[a]![b]!, Math.sqrt((r[a]![a]! * q[b]![b]!) / n));
      }
    }
    expect(trainingError).toBeLessThanOrEqual(trainingTolerance);
    console.log(`[DSM linear, ${where}] |trained − closed| ${trainingError.toExponential(2)} (bound ${trainingTolerance.toExponential(2)}); ` +
      `trained P = ${JSON.stringify(P.map((row) => row.map((v) => +v.toFixed(4))))}, (Σ+σ²I)⁻¹ = ${JSON.stringify(q.map((row) => row.map((v) => +v.toFixed(4))))}`);
  });
});

describe('sliced score matching', () => {
  const n = 32;
  const x = gaussianSample(n, randomKey(31));
  const model = mlpScore({ inputDim: 3, hidden: [16], activation: 'tanh', key: randomKey(32), ...f64 });
  const exactIsm = implicitScoreMatchingLoss(model.score, x);

  const configs: { label: string; distribution: ProjectionDistribution; varianceReduced: boolean; method?: 'finiteDifference' }[] = [];
  for (const distribution of ['gaussian', 'rademacher', 'sphere'] as const) {
    for (const varianceReduced of [false, true]) configs.push({ label: `${varianceReduced ? 'SSM-VR' : 'SSM'} ${distribution}`, distribution, varianceReduced });
  }
  configs.push({ label: 'SSM gaussian, finite difference', distribution: 'gaussian', varianceReduced: false, method: 'finiteDifference' });
  configs.push({ label: 'SSM-VR rademacher, finite difference', distribution: 'rademacher', varianceReduced: true, method: 'finiteDifference' });

  it.each(configs)('$label is unbiased for the exact ISM of the batch', async ({ label, distribution, varianceReduced, method }) => {
    // Over keys, the estimates Lₖ are iid with mean ISM(batch) (E[vvᵀ] = I); their mean is within
    // k·SE = k·sd(L)/√K. The finite difference has a deterministic O(ε²) bias, ≈ 1e-11 at
    // float64's default ε ≈ 7e-6, far below the SE.
    const keys = splitKey(randomKey(33), 200);
    const estimates = keys.map((key) =>
      tidy(() => slicedScoreMatchingLoss(model.score, x, { key, distribution, varianceReduced, method }).dataSync()[0]!),
    );
    const { mean, se } = meanAndSe(estimates);
    const exact = (await exactIsm.data())[0]!;
    console.log(`[SSM] ${label}: mean over 200 keys ${mean.toFixed(5)} ± ${se.toFixed(5)} vs exact ISM ${exact.toFixed(5)}`);
    expectWithinSe(label, mean, exact, se);
  });

  it('finite differences agree with the JVP projection for the same key', async () => {
    // Same v; the central difference's error is O(ε²·|∂³s|) ≈ 1e-10 plus roundoff u·|s|/ε ≈ 1e-11.
    const key = randomKey(34);
    const a = await read(slicedScoreMatchingLoss(model.score, x, { key, reduction: 'none' }));
    const b = await read(slicedScoreMatchingLoss(model.score, x, { key, method: 'finiteDifference', reduction: 'none' }));
    a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThan(1e-8));
  });

  it('every projection distribution has E[vvᵀ] = I', async () => {
    // Each entry of the sample second moment of R = 40000 draws has SE = sd(vᵢvⱼ)/√R, sd ≤ √3
    // (Gaussian diagonal: Var(v²) = 2; sphere and Rademacher are smaller), so k·SE ≤ 4·√3/200.
    const r = 40000;
    for (const distribution of ['gaussian', 'rademacher', 'sphere'] as const) {
      const v = drawProjections([r, 3], distribution, { key: randomKey(35), dtype: 'float64' });
      const m = await asMat(matmul(v.transpose(), v).div(r));
      for (let a = 0; a < 3; a++) for (let c = 0; c < 3; c++) expect(Math.abs(m[a]![c]! - (a === c ? 1 : 0))).toBeLessThan((K_SE * Math.sqrt(3)) / Math.sqrt(r));
    }
  });

  it('a sphere direction is a unit vector even when its Gaussian row is exactly zero', async () => {
    // At d = 2 a row of the Gaussian draw is one Box–Muller pair, and both its values are exactly
    // 0 when the pair's u₁ is 0: probability 2⁻²⁴ per row in float32, so about one row in 16.8
    // million, not rare in training. Under randomKey(20524) this is the pair at elements 1552 and
    // 1553, row 776. Every row must still have norm √d.
    const key = randomKey(20524);
    const g = await read(randn([777, 2], { key }));
    expect(Math.hypot(g[1552]!, g[1553]!)).toBe(0); // ±0 each
    const v = await read(drawProjections([777, 2], 'sphere', { key, dtype: 'float32' }));
    for (let i = 0; i < 777; i++) expect(Math.hypot(v[2 * i]!, v[2 * i + 1]!), `row ${i}`).toBeCloseTo(Math.SQRT2, 5);
    expect([v[1552], v[1553]]).toEqual([Math.fround(Math.SQRT2), 0]);
  });

  it('the Rademacher trace estimate has lower variance than the Gaussian one, as theory says', async () => {
    // At one point x₀ with A = ∂s/∂x(x₀): Var_gauss(vᵀAv) = 2‖A_sym‖²_F and
    // Var_rad(vᵀAv) = 2(‖A_sym‖²_F − Σ A_ii²). R estimates from one batched call (x₀ repeated R
    // times, one projection each: the same law as R keys). The sample variance's SE is
    // √((m₄ − s⁴)/R) with m₄ the sample fourth central moment.
    const r = 20000;
    const x0 = x.slice([0, 0], [1, 3]);
    const a = await asMat(jacobian((z: Tensor) => reshape(model.score(reshape(z, [1, 3])), [3]))(reshape(x0, [3])));
    const sym = a.map((row, i) => row.map((v, j) => (v + a[j]![i]!) / 2));
    const frob = sym.flat().reduce((acc, v) => acc + v * v, 0);
    const diag = a.reduce((acc, row, i) => acc + row[i]! ** 2, 0);
    const theory = { gaussian: 2 * frob, rademacher: 2 * (frob - diag) };
    const exactTrace = trace(a);
    const repeated = concat(new Array<Tensor>(r).fill(x0), 0);
    const measured: Record<string, { variance: number; se: number }> = {};
    for (const distribution of ['gaussian', 'rademacher'] as const) {
      const est = await read(projectedJacobianTrace(model.score, repeated, { key: randomKey(36), distribution }));
      const { mean, se: meanSe, variance } = meanAndSe(est);
      const m4 = est.reduce((acc, v) => acc + (v - mean) ** 4, 0) / r;
      const varSe = Math.sqrt((m4 - variance ** 2) / r);
      measured[distribution] = { variance, se: varSe };
      console.log(`[trace variance] ${distribution}: measured ${variance.toFixed(5)} ± ${varSe.toFixed(5)}, theory ${theory[distribution].toFixed(5)}; mean ${mean.toFixed(5)} vs tr A ${exactTrace.toFixed(5)}`);
      expectWithinSe(`trace mean (${distribution})`, mean, exactTrace, meanSe);
      expectWithinSe(`trace variance (${distribution})`, variance, theory[distribution], varSe);
    }
    const g = measured.gaussian!;
    const rd = measured.rademacher!;
    expect(g.variance - rd.variance).toBeGreaterThan(K_SE * Math.hypot(g.se, rd.se));
  });
});

describe('denoising score matching', () => {
  const sigma = 0.5;
  const noisyPrecision = inverse(addM(SIGMA, scaleM(identity(3), sigma * sigma)));

  it('its excess over the optimum is the ESM of the noised data, and the optimum is ½(d/σ² − tr(Σ+σ²I)⁻¹)', async () => {
    const n = 20000;
    const x = gaussianSample(n, randomKey(41));
    const key = randomKey(42);
    const optimal = gaussianScore(MU, noisyPrecision); // s* = ∇log N(μ, Σ + σ²I)
    const model = mlpScore({ inputDim: 3, hidden: [16], key: randomKey(43), ...f64 }).score;
    // Same key, so both losses see the same noise z = randn(x.shape, {key}) and x̃ = x + σz.
    const atOptimum = denoisingScoreMatchingLoss(optimal, x, { sigma, key, reduction: 'none' });
    const atModel = denoisingScoreMatchingLoss(model, x, { sigma, key, reduction: 'none' });
    const noisy = x.add(randn(x.shape, { key, ...f64 }).mul(sigma));
    const esm = explicitScoreMatchingLoss(model, noisy, { targetScore: optimal, reduction: 'none' });
    // DSMᵢ(s) − DSMᵢ(s*) − ½‖s − s*‖²(x̃ᵢ) = (s − s*)ᵀ(s* + z/σ): mean 0 since E[z/σ | x̃] = −s*.
    const diff = meanAndSe(await read(atModel.sub(atOptimum).sub(esm)));
    expectWithinSe('DSM(s) − DSM(s*) − ESM_σ(s)', diff.mean, 0, diff.se);
    // E[½‖s* + z/σ‖²] = ½(E‖z‖²/σ² − E‖s*‖²) = ½(d/σ² − tr (Σ+σ²I)⁻¹).
    const opt = meanAndSe(await read(atOptimum));
    const exactOpt = 0.5 * (3 / sigma ** 2 - trace(noisyPrecision));
    console.log(`[DSM] min DSM ${opt.mean.toFixed(5)} ± ${opt.se.toFixed(5)} vs ${exactOpt.toFixed(5)}; DSM − ESM_σ residual ${diff.mean.toExponential(2)} ± ${diff.se.toExponential(2)}`);
    expectWithinSe('min DSM', opt.mean, exactOpt, opt.se);
  });
});

describe('noise-conditional losses at the true score (diagonal Gaussian data)', () => {
  // Data N(μ, diag(v)); under the kernel N(m x, s² I) the noised data is N(mμ, diag(m²v + s²)),
  // with score −(x − mμ)/(m²v + s²). At that score the expected per-level loss is
  //   ½ λ (d/s² − Σ_k 1/(m²v_k + s²)),
  // so the batch mean of the per-example losses must match its average over the levels or
  // times, within k·SE.
  const n = 20000;
  const mu = [0.5, -0.5];
  const v = [1.5, 0.4];
  const x = tidy(() => randn([n, 2], { key: randomKey(51), ...f64 }).mul(tensor(v.map(Math.sqrt), f64)).add(tensor(mu, f64)));
  const levelLoss = (m: number, s: number, lambda: number) => 0.5 * lambda * (2 / s ** 2 - v.reduce((acc, vk) => acc + 1 / (m * m * vk + s * s), 0));
  const trueScore = (m: Tensor, s: Tensor) => (z: Tensor) => {
    const variance = perRow(m.mul(m)).mul(tensor(v, f64)).add(perRow(s.mul(s)));
    return z.sub(perRow(m).mul(tensor(mu, f64))).div(variance).neg();
  };

  it('ncsnLoss draws levels uniformly and weights them by σ^power', async () => {
    const sigmas = geometricSigmas(1, 0.01, 10);
    for (const power of [2, 1]) {
      const score = (z: Tensor, sigma?: Tensor) => trueScore(sigma!.mul(0).add(1), sigma!)(z);
      const values = await read(ncsnLoss(score, x, { key: randomKey(52), power, reduction: 'none' }));
      const { mean, se } = meanAndSe(values);
      const exact = sigmas.reduce((acc, s) => acc + levelLoss(1, s, s ** power), 0) / sigmas.length;
      console.log(`[NCSN] power ${power}: ${mean.toFixed(5)} ± ${se.toFixed(5)} vs ${exact.toFixed(5)}`);
      expectWithinSe(`ncsnLoss power ${power}`, mean, exact, se);
    }
  });

  const cases: { label: string; sde: Sde; weighting: 'sigma2' | 'likelihood' | 'noisePrediction' }[] = [
    { label: 'VE, σ² weighting', sde: veSde(), weighting: 'sigma2' },
    { label: 'VP, σ² weighting', sde: vpSde(), weighting: 'sigma2' },
    { label: 'sub-VP, σ² weighting', sde: subVpSde(), weighting: 'sigma2' },
    { label: 'VE, likelihood weighting', sde: veSde(), weighting: 'likelihood' },
    { label: 'VP, ε-prediction MSE', sde: vpSde(), weighting: 'noisePrediction' },
  ];
  it.each(cases)('sdeScoreLoss, $label', async ({ label, sde, weighting }) => {
    const score = (z: Tensor, t?: Tensor) => trueScore(sde.meanCoefficient(t!), sde.std(t!))(z);
    const values = await read(sdeScoreLoss(score, x, { sde, weighting, key: randomKey(53), reduction: 'none' }));
    const { mean, se } = meanAndSe(values);
    // E over t ~ U(ε, 1): composite Simpson on 20000 intervals in u = log t, because near t = ε
    // the VE kernel's s(t) varies over decades (quadrature error far below the SE).
    const eps = 1e-5;
    const steps = 20000;
    const lo = Math.log(eps);
    const h = -lo / steps;
    const ts = tensor(Array.from({ length: steps + 1 }, (_, i) => Math.exp(lo + i * h)), f64);
    const [ms, ss, gs] = [await read(sde.meanCoefficient(ts)), await read(sde.std(ts)), await read(sde.diffusion(ts))];
    let integral = 0;
    for (let i = 0; i <= steps; i++) {
      const [m, s, g] = [ms[i]!, ss[i]!, gs[i]!];
      const sigmaWeighted = levelLoss(m, s, s * s);
      // L_simple = mean over the d = 2 dimensions of (ε̂ − z)² = (2/d)·(σ²-weighted loss).
      const value = weighting === 'likelihood' ? levelLoss(m, s, g * g) : weighting === 'noisePrediction' ? (2 / 2) * sigmaWeighted : sigmaWeighted;
      const w = i === 0 || i === steps ? 1 : i % 2 === 1 ? 4 : 2;
      integral += w * value * Math.exp(lo + i * h); // dt = t du
    }
    const exact = ((integral * h) / 3) / (1 - eps);
    console.log(`[SDE] ${label}: ${mean.toFixed(5)} ± ${se.toFixed(5)} vs ${exact.toFixed(5)}`);
    expectWithinSe(label, mean, exact, se);
  });

  it("sdeScoreLoss 'noisePrediction' is the mean over the d dimensions of (ε̂ − z)², ε̂ = −s(t)·s_θ: per example at d = 3", async () => {
    // At d = 2 (every case above) the mean over dimensions equals ½‖·‖², so a factor ½ in place
    // of 1/d passed. The draws are the loss's own: t and z from splitKey(key, 2), as it documents.
    const sde = vpSde();
    const [n, d] = [5, 3];
    const x3 = tensor(Array.from({ length: n * d }, (_, i) => Math.sin(i + 1)), { ...f64, shape: [n, d] });
    const score = (z: Tensor, t?: Tensor) => z.mul(-0.7).add(t!.reshape([n, 1]).mul(0.3));
    const key = randomKey(7);
    const got = await read(sdeScoreLoss(score, x3, { sde, key, weighting: 'noisePrediction', reduction: 'none' }));
    const [timeKey, noiseKey] = splitKey(key, 2);
    const t = rand([n], { key: timeKey, ...f64 }).mul(sde.T - 1e-5).add(1e-5);
    const z = randn([n, d], { key: noiseKey, ...f64 });
    const [m, s] = [sde.meanCoefficient(t).reshape([n, 1]), sde.std(t).reshape([n, 1])];
    const epsHat = score(x3.mul(m).add(z.mul(s)), t).mul(s).neg();
    const expected = await read(epsHat.sub(z).square().mean(1));
    got.forEach((g, i) => expect(g).toBeCloseTo(expected[i]!, 12));
  });
});

describe('KDE score targets', () => {
  it("uses Scott's rule per dimension and returns the gradient of the KDE's log-density", async () => {
    const data = gaussianSample(500, randomKey(61));
    const h = await read(ruleOfThumbBandwidth(data));
    const cols = (await asMat(data)) as Mat;
    for (let j = 0; j < 3; j++) {
      const col = cols.map((r) => r[j]!);
      const { variance } = meanAndSe(col);
      expect(h[j]).toBeCloseTo(500 ** (-1 / 7) * Math.sqrt(variance), 12);
    }
    // Silverman's: (n(d + 2)/4)^(−1/(d + 4))·σ̂ per dimension (at d = 2 it is Scott's, so d = 3 here).
    const hs = await read(ruleOfThumbBandwidth(data, 'silverman'));
    for (let j = 0; j < 3; j++) {
      const { variance } = meanAndSe(cols.map((r) => r[j]!));
      expect(hs[j]).toBeCloseTo(((500 * 5) / 4) ** (-1 / 7) * Math.sqrt(variance), 12);
    }
    const q = gaussianSample(5, randomKey(62));
    // The log-density itself, normaliser included (only its gradient was checked): log of
    // (1/n) Σ N(q; xᵢ, diag h²), summed on the host.
    const logp = await read(kdeLogDensity(data)(q));
    const qs = (await asMat(q)) as Mat;
    qs.forEach((row, i) => {
      let total = 0;
      for (const xi of cols) total += Math.exp(-0.5 * row.reduce((acc, v, j) => acc + ((v - xi[j]!) / h[j]!) ** 2, 0)) / ((2 * Math.PI) ** 1.5 * h[0]! * h[1]! * h[2]!);
      expect(logp[i]).toBeCloseTo(Math.log(total / 500), 11);
    });
    const viaGrad = grad((z: Tensor) => sum(kdeLogDensity(data)(z)))(q) as Tensor;
    const direct = kdeScore(data)(q);
    const [a, b] = [await read(viaGrad), await read(direct)];
    a.forEach((val, i) => expect(val).toBeCloseTo(b[i]!, 10));
  });

  it('matches the score of the Gaussian mixture it defines, computed on the host', async () => {
    // p̂(x) = (1/n) Σᵢ N(x; xᵢ, diag h²) ⇒ ∇log p̂(x) = Σᵢ wᵢ (xᵢ − x)/h², wᵢ ∝ exp(−½‖(x − xᵢ)/h‖²).
    // Exact arithmetic on both sides (float64), so the tolerance is roundoff: 1e-12.
    const data = gaussianSample(7, randomKey(63));
    const q = gaussianSample(4, randomKey(64));
    const h = [0.3, 0.5, 0.8];
    const got = await asMat(kdeScore(data, { bandwidth: h })(q));
    const [xs, qs] = [await asMat(data), await asMat(q)];
    qs.forEach((point, r) => {
      const logw = xs.map((xi) => -0.5 * xi.reduce((acc, v, k) => acc + ((point[k]! - v) / h[k]!) ** 2, 0));
      const top = Math.max(...logw);
      const w = logw.map((l) => Math.exp(l - top));
      const total = w.reduce((acc, v) => acc + v, 0);
      for (let k = 0; k < 3; k++) {
        const expected = xs.reduce((acc, xi, i) => acc + (w[i]! / total) * (xi[k]! - point[k]!), 0) / h[k]! ** 2;
        expect(Math.abs(got[r]![k]! - expected)).toBeLessThan(1e-12 * Math.max(1, Math.abs(expected)));
      }
    });
    expect(() => kdeScore(data, { bandwidth: 'wide' as never })).toThrow(/unknown bandwidth rule "wide"/);
    expect(() => kdeScore(data, { bandwidth: [1, 2] })(q)).toThrow(/one number or 3 numbers/);
    expect(() => kdeScore(data, { bandwith: 0.3 } as never)).toThrow(unknownOption('kdeScore', 'bandwith', 'bandwidth', ['bandwidth']));
    expect(() => kdeLogDensity(data, { bandWidth: 0.3 } as never)).toThrow(unknownOption('kdeLogDensity', 'bandWidth', 'bandwidth', ['bandwidth']));
    // A bandwidth tensor of another float dtype is named at once, not by a later op's dtype mismatch.
    const bandwidth32 = tensor([0.5, 0.5, 0.5]);
    expect(() => kdeScore(data, { bandwidth: bandwidth32 })).toThrow(/^kdeScore: a bandwidth tensor must have shape \[3\] and the data's dtype, got float32 \[3\]$/);
    expect(() => kdeLogDensity(data, { bandwidth: bandwidth32 })).toThrow(/^kdeLogDensity: a bandwidth tensor must have shape \[3\] and the data's dtype, got float32 \[3\]$/);
    bandwidth32.dispose();
    // Neither a rule, numbers nor a tensor: it failed as "Cannot read properties of undefined (reading 'join')".
    const kinds = "bandwidth must be 'scott', 'silverman', a number, 3 numbers or a \\[3\\] tensor, got";
    expect(() => kdeScore(data, { bandwidth: { h: 0.5 } as never })).toThrow(new RegExp(`^kdeScore: ${kinds} an object \\(Object\\)$`));
    expect(() => kdeLogDensity(data, { bandwidth: true as never })).toThrow(new RegExp(`^kdeLogDensity: ${kinds} boolean true$`));
    expect(() => kdeScore(data, { bandwidth: new Float64Array([0.5, 0.5, 0.5]) as never })).toThrow(new RegExp(`^kdeScore: ${kinds} an object \\(Float64Array\\)$`));
  });

  it('names a bandwidth that is not positive and finite as it is, and a wrong count as a count', () => {
    // JSON.stringify wrote NaN and ±Infinity as null, and a list of the wrong length was called "not positive".
    const data = gaussianSample(7, randomKey(65));
    expect(() => kdeScore(data, { bandwidth: NaN })).toThrow(/^kdeScore: bandwidth must be positive and finite, got NaN$/);
    expect(() => kdeLogDensity(data, { bandwidth: -Infinity })).toThrow(/^kdeLogDensity: bandwidth must be positive and finite, got -Infinity$/);
    expect(() => kdeScore(data, { bandwidth: [0.3, NaN, 1] })).toThrow(/^kdeScore: bandwidth must be positive and finite, got \[0\.3, NaN, 1\]$/);
    expect(() => kdeScore(data, { bandwidth: [0.3, 0, 1] })).toThrow(/got \[0\.3, 0, 1\]$/);
    expect(() => kdeScore(data, { bandwidth: [] })).toThrow(/^kdeScore: bandwidth needs one number or 3 numbers \(one per dimension\), got 0 numbers$/);
    expect(() => kdeLogDensity(data, { bandwidth: [0.3, 0.3, 0.3, 0.3] })).toThrow(/^kdeLogDensity: bandwidth needs one number or 3 numbers \(one per dimension\), got 4 numbers$/);
  });
});

describe('KDE score targets in float32', () => {
  // Data far from the origin beside its spread (here N(100, I), as raw, uncentred features are):
  // the float32 KDE against the float64 one of the same (cast) data and queries, with a bandwidth
  // exact in both (0.25). The exponent −½‖a − b‖² (a = (x − c)/h, b = (xᵢ − c)/h) is formed from
  // ‖a‖², ‖b‖² and a·b, so each of its entries carries up to C·u·(‖a‖² + ‖b‖²) of rounding, with
  // C = 4(d + 2) covering the d-term dot products, the centring and the combination; logsumexp is
  // 1-Lipschitz in the largest entry and adds C·u·(|log p̂| + log n). For the score, weights moved
  // by δ in their exponents move Σwᵢxᵢ − x by at most 2δ·Σwᵢ‖xᵢ − x‖, and its last operations
  // round by C·u·(Σwᵢ‖xᵢ − c‖ + ‖x − c‖), both over h². The bounds use the centred a and b:
  // computing the exponents from the raw, uncentred values would leave errors ~u(100/h)², ~300
  // times these bounds.
  const n = 200;
  const d = 2;
  const h = 0.25;
  const offset = 100;
  const data32 = tidy(() => randn([n, d], { key: randomKey(65), dtype: 'float32' }).add(offset));
  const queries32 = tidy(() => data32.slice([0, 0], [32, d]).add(randn([32, d], { key: randomKey(66), dtype: 'float32' }).mul(0.2)));
  const [data64, queries64] = [data32.cast('float64'), queries32.cast('float64')];
  const C = 4 * (d + 2);
  const u = unitRoundoff('float32');

  it('kdeLogDensity and kdeScore of offset data agree with float64 within the rounding of the centred exponents', async () => {
    const [xs, qs] = [await asMat(data64), await asMat(queries64)];
    const centre = Array.from({ length: d }, (_, k) => xs.reduce((acc, r) => acc + r[k]!, 0) / n);
    const norm2 = (r: readonly number[]) => r.reduce((acc, v, k) => acc + ((v - centre[k]!) / h) ** 2, 0);
    const maxData = Math.max(...xs.map(norm2));
    const [lp32, lp64] = [await read(kdeLogDensity(data32, { bandwidth: h })(queries32)), await read(kdeLogDensity(data64, { bandwidth: h })(queries64))];
    const [s32, s64] = [await asMat(kdeScore(data32, { bandwidth: h })(queries32)), await asMat(kdeScore(data64, { bandwidth: h })(queries64))];
    qs.forEach((q, i) => {
      const delta = C * u * (norm2(q) + maxData);
      expect(Math.abs(lp32[i]! - lp64[i]!), `log p̂ at query ${i}`).toBeLessThanOrEqual(delta + C * u * (Math.abs(lp64[i]!) + Math.log(n)));
      const logw = xs.map((xi) => -0.5 * xi.reduce((acc, v, k) => acc + ((q[k]! - v) / h) ** 2, 0));
      const top = Math.max(...logw);
      const w = logw.map((l) => Math.exp(l - top));
      const total = w.reduce((acc, v) => acc + v, 0);
      const dist = (a: readonly number[], b: readonly number[]) => Math.hypot(...a.map((v, k) => v - b[k]!));
      const spread = xs.reduce((acc, xi, j) => acc + (w[j]! / total) * dist(xi, q), 0);
      const size = xs.reduce((acc, xi, j) => acc + (w[j]! / total) * dist(xi, centre), 0) + dist(q, centre);
      expect(dist(s32[i]!, s64[i]!), `score at query ${i}`).toBeLessThanOrEqual((2 * delta * spread + C * u * size) / h ** 2);
    });
  });
});

describe("ISM's batched trace (docs/losses.md)", () => {
  it('calls the score once, on x itself: the tangents are batched by vmap, x is not replicated', async () => {
    const x = randn([5, 3], { key: randomKey(81), dtype: 'float64' });
    const seen: number[][] = [];
    const score = (z: Tensor) => {
      seen.push([...z.shape]);
      return z.mul(z).neg();
    };
    const trace = scoreJacobianTrace(score, x);
    expect(seen).toEqual([[5, 3]]);
    // tr ∂s/∂x of s = −x² (elementwise) is −2 Σ_j x_j. Each term −2x_j is exact (doubling), so
    // the two sums differ only by the rounding of their d − 1 = 2 additions, in whatever order:
    // at most 2·2u·Σ|2x_j| each, u = 2⁻⁵³.
    const rows = (await x.toArray()) as number[][];
    const got = Array.from(await trace.data());
    rows.forEach((row, i) => {
      const expected = row.reduce((a, b) => a - 2 * b, 0);
      const bound = 2 * 2 * 2 ** -53 * row.reduce((a, b) => a + Math.abs(2 * b), 0);
      expect(Math.abs(got[i]! - expected)).toBeLessThanOrEqual(bound);
    });
  });
});

describe('loss input checks', () => {
  const score = (z: Tensor) => z.neg();
  const x = randn([4, 2], { key: randomKey(71) });
  const key = randomKey(72);
  it('rejects a batch of the wrong rank', () => {
    expect(() => implicitScoreMatchingLoss(score, randn([4], { key }))).toThrow(/rank 2 \(shape \[N, d\]/);
    expect(() => slicedScoreMatchingLoss(score, randn([2, 2, 2], { key }), { key })).toThrow(/rank 2/);
  });
  it('rejects a score of the wrong shape', () => {
    const bad = (z: Tensor) => z.sum(1);
    expect(() => implicitScoreMatchingLoss(bad, x)).toThrow(/returned shape \[4\] for an input of shape \[4,2\]/);
    expect(() => denoisingScoreMatchingLoss(bad, x, { sigma: 0.1, key })).toThrow(/returned shape/);
    expect(() => slicedScoreMatchingLoss(bad, x, { key, method: 'finiteDifference' })).toThrow(/returned shape/);
  });
  it('rejects a score or a target score of another dtype than x, naming it', () => {
    // They failed in the loss's next operation: 'add: dtype mismatch (float64 vs float32) …'.
    const wide = (z: Tensor) => cast(z, 'float64').neg();
    const message = (where: string) => new RegExp(`^${where}: the score function returned float64 for a float32 input; a score has the dtype of its input$`);
    expect(() => implicitScoreMatchingLoss(wide, x)).toThrow(message('implicitScoreMatchingLoss'));
    expect(() => denoisingScoreMatchingLoss(wide, x, { sigma: 0.1, key })).toThrow(message('denoisingScoreMatchingLoss'));
    expect(() => slicedScoreMatchingLoss(wide, x, { key, method: 'finiteDifference' })).toThrow(message('slicedScoreMatchingLoss'));
    expect(() => ncsnLoss(wide, x, { key })).toThrow(message('ncsnLoss'));
    expect(() => explicitScoreMatchingLoss(score, x, { targetScore: wide })).toThrow(/^explicitScoreMatchingLoss: targetScore returned float64 for a float32 x; it must return x's dtype$/);
  });
  it('rejects unknown option values', () => {
    expect(() => slicedScoreMatchingLoss(score, x, { key, distribution: 'uniform' as never })).toThrow(/unknown distribution "uniform"; expected one of 'gaussian', 'rademacher', 'sphere'/);
    expect(() => slicedScoreMatchingLoss(score, x, { key, method: 'hvp' as never })).toThrow(/unknown method/);
    expect(() => implicitScoreMatchingLoss(score, x, { reduction: 'sum' as never })).toThrow(/unknown reduction/);
    expect(() => sdeScoreLoss(score, x, { sde: veSde(), key, weighting: 'snr' as never })).toThrow(/unknown weighting/);
    expect(() => denoisingScoreMatchingLoss(score, x, { sigma: -1, key })).toThrow(/sigma must be a positive/);
    // The grid is ncsnLoss's options, named as such; one level is sigmaMax alone, so a sigmaMin with it would be dropped.
    expect(() => ncsnLoss(score, x, { key, sigmaMax: 0.001 })).toThrow(/^ncsnLoss: sigmaMax \(0\.001\) must be larger than sigmaMin \(0\.01, the default\) for numScales 10$/);
    expect(() => ncsnLoss(score, x, { key, numScales: 1, sigmaMin: 5 })).toThrow(/^ncsnLoss: sigmaMin does not apply with numScales 1: the one level is sigmaMax \(1\); leave sigmaMin out, or give sigmas$/);
    expect(() => ncsnLoss(score, x, { key, numScales: 2.5 })).toThrow(/^ncsnLoss: numScales must be an integer >= 1, got 2.5$/);
    // cond is a noise level per row in x's dtype: an int32 or float64 one beside float32 data
    // was handed to the score as it was.
    const levels = [1, 2, 3, 4];
    for (const dtype of ['int32', 'float64'] as const) {
      const cond = tensor(levels, { dtype });
      const message = (where: string) => new RegExp(`^${where}: cond must have x's dtype \\(float32\\), got ${dtype}$`);
      expect(() => denoisingScoreMatchingLoss(score, x, { sigma: 1, key, cond })).toThrow(message('denoisingScoreMatchingLoss'));
      expect(() => implicitScoreMatchingLoss(score, x, { cond })).toThrow(message('implicitScoreMatchingLoss'));
      expect(() => slicedScoreMatchingLoss(score, x, { key, cond })).toThrow(message('slicedScoreMatchingLoss'));
      expect(() => explicitScoreMatchingLoss(score, x, { targetScore: score, cond })).toThrow(message('explicitScoreMatchingLoss'));
    }
    // A σ tensor of another dtype than x is named as such, not left to fail inside a product.
    expect(() => denoisingScoreMatchingLoss(score, x, { sigma: tensor([1, 2, 1, 1], { dtype: 'int32' }), key })).toThrow(/^denoisingScoreMatchingLoss: a sigma tensor must have x's dtype \(float32\), got int32$/);
    expect(() => denoisingScoreMatchingLoss(score, x, { sigma: tensor([1, 2, 1, 1], { dtype: 'float64' }), key })).toThrow(/^denoisingScoreMatchingLoss: a sigma tensor must have x's dtype \(float32\), got float64$/);
    expect(() => ncsnLoss(score, x, { key, sigmas: [] })).toThrow(/non-empty array/);
    expect(() => slicedScoreMatchingLoss(score, x, { key, projections: 0 })).toThrow(/^slicedScoreMatchingLoss: projections must be an integer >= 1, got 0$/);
    expect(() => denoisingScoreMatchingLoss(score, x, { sigma: 1 } as never)).toThrow(/opts.key/);
  });
  it('rejects a misspelled option in every loss, naming the closest valid one and all of them', () => {
    const ssm = ['key', 'cond', 'reduction', 'projections', 'distribution', 'varianceReduced', 'method', 'fdEps'];
    const call = (fn: () => unknown) => fn;
    const cases: [() => unknown, RegExp][] = [
      [call(() => explicitScoreMatchingLoss(score, x, { targetScore: score, reducton: 'none' } as never)), unknownOption('explicitScoreMatchingLoss', 'reducton', 'reduction', ['targetScore', 'cond', 'reduction'])],
      [call(() => implicitScoreMatchingLoss(score, x, { methd: 'loop' } as never)), unknownOption('implicitScoreMatchingLoss', 'methd', 'method', ['cond', 'reduction', 'method'])],
      [call(() => scoreJacobianTrace(score, x, { mehtod: 'loop' } as never)), unknownOption('scoreJacobianTrace', 'mehtod', 'method', ['cond', 'method'])],
      [call(() => slicedScoreMatchingLoss(score, x, { key, projection: 'sphere' } as never)), unknownOption('slicedScoreMatchingLoss', 'projection', 'projections', ssm)],
      [call(() => slicedScoreMatchingLoss(score, x, { key, varianceReduce: true } as never)), unknownOption('slicedScoreMatchingLoss', 'varianceReduce', 'varianceReduced', ssm)],
      // projectedJacobianTrace takes SSM's options less the two that do not bear on the trace.
      [call(() => projectedJacobianTrace(score, x, { key, varianceReduced: true } as never)), unknownOption('projectedJacobianTrace', 'varianceReduced', null, ['key', 'cond', 'projections', 'distribution', 'method', 'fdEps'])],
      [call(() => drawProjections([4, 2], 'gaussian', { key, dtype: 'float32', devce: 'cpu' } as never)), unknownOption('drawProjections', 'devce', 'device', ['key', 'dtype', 'device'])],
      [call(() => denoisingScoreMatchingLoss(score, x, { key, sigmas: 0.1 } as never)), unknownOption('denoisingScoreMatchingLoss', 'sigmas', 'sigma', ['sigma', 'key', 'cond', 'reduction'])],
      [call(() => ncsnLoss(score, x, { key, numscales: 4 } as never)), unknownOption('ncsnLoss', 'numscales', 'numScales', ['key', 'sigmas', 'sigmaMax', 'sigmaMin', 'numScales', 'power', 'reduction'])],
      [call(() => sdeScoreLoss(score, x, { sde: veSde(), key, weight: 'likelihood' } as never)), unknownOption('sdeScoreLoss', 'weight', 'weighting', ['sde', 'key', 'weighting', 'eps', 'reduction'])],
    ];
    for (const [fn, message] of cases) expect(fn).toThrow(message);
  });
  it('rejects a noise level that x\'s dtype holds only as 0 or ∞', async () => {
    // x is float32: σ = 1e39 became Infinity (a NaN loss) and σ = 1e-50 became 0 (an infinite
    // one), though both passed the check of the number itself.
    expect(() => denoisingScoreMatchingLoss(score, x, { sigma: 1e39, key })).toThrow(/^denoisingScoreMatchingLoss: sigma 1e\+39 rounds to Infinity in float32, x's dtype; it must be a positive finite float32 value$/);
    expect(() => denoisingScoreMatchingLoss(score, x, { sigma: 1e-50, key })).toThrow(/^denoisingScoreMatchingLoss: sigma 1e-50 rounds to 0 in float32, x's dtype; it must be a positive finite float32 value$/);
    expect(() => ncsnLoss(score, x, { key, sigmas: [1, 1e-50] })).toThrow(/^ncsnLoss: sigmas\[1\] = 1e-50 rounds to 0 in float32, x's dtype; it must be a positive finite float32 value$/);
    // The finite difference's step alike (it returned NaN: v·ε and the division by 2ε in float32).
    expect(() => slicedScoreMatchingLoss(score, x, { key, method: 'finiteDifference', fdEps: 1e-50 })).toThrow(/^slicedScoreMatchingLoss: fdEps 1e-50 rounds to 0 in float32, x's dtype; it must be a positive finite float32 value$/);
    expect(() => projectedJacobianTrace(score, x, { key, method: 'finiteDifference', fdEps: 1e39 })).toThrow(/^projectedJacobianTrace: fdEps 1e\+39 rounds to Infinity in float32/);
    // The same levels are fine in float64, and float32's extremes are accepted.
    const x64 = cast(x, 'float64');
    expect(Number.isFinite((await denoisingScoreMatchingLoss((z: Tensor) => z.neg(), x64, { sigma: 1e39, key }).data())[0])).toBe(true);
    // (A zero score here: −x̃ would make the loss ~½σ²‖z‖², beyond float32.)
    expect(Number.isFinite((await denoisingScoreMatchingLoss((z: Tensor) => z.mul(0), x, { sigma: 1e38, key }).data())[0])).toBe(true);
    expect(Number.isFinite((await ncsnLoss(score, x, { key, sigmas: [1, 1e-6] }).data())[0])).toBe(true);
  });
  it('rejects option values that make no sense, and options that would be ignored', () => {
    expect(() => ncsnLoss(score, x, { key, sigmas: [1, 0.1], sigmaMax: 5 })).toThrow(/^ncsnLoss: give either sigmas or the grid \(sigmaMax, sigmaMin, numScales\), not both; got sigmas and sigmaMax$/);
    expect(() => slicedScoreMatchingLoss(score, x, { key, fdEps: 1e-3 })).toThrow(/^slicedScoreMatchingLoss: fdEps applies to method 'finiteDifference' only, not to 'jvp'$/);
    expect(() => slicedScoreMatchingLoss(score, x, { key, method: 'finiteDifference', fdEps: -1 })).toThrow(/^slicedScoreMatchingLoss: fdEps must be a finite number > 0, got -1$/);
    expect(() => slicedScoreMatchingLoss(score, x, { key, varianceReduced: 'yes' as never })).toThrow(/^slicedScoreMatchingLoss: varianceReduced must be true or false, got "yes"$/);
    expect(() => sdeScoreLoss(score, x, { sde: veSde(), key, eps: 1 })).toThrow(/^sdeScoreLoss: eps must be a finite number > 0 and < 1, got 1$/);
    expect(() => ncsnLoss(score, x, { key, power: NaN })).toThrow(/^ncsnLoss: power must be a finite number, got NaN$/);
    expect(() => drawProjections([4, 0], 'gaussian', { key, dtype: 'float32' })).toThrow(/^drawProjections: shape\[1\] must be an integer >= 1, got 0$/);
  });
  it('differentiates through the losses in θ (reverse over forward) and agrees with backward()', async () => {
    const model = mlpScore({ inputDim: 2, hidden: [8], key: randomKey(73), dtype: 'float64' });
    const data = randn([16, 2], { key: randomKey(74), dtype: 'float64' });
    const names = Object.keys(model.params);
    const loss = (...ps: Tensor[]) => slicedScoreMatchingLoss(model.bind(Object.fromEntries(names.map((nm, i) => [nm, ps[i]!]))), data, { key });
    const functional = grad(loss, { argnums: names.map((_, i) => i) })(...Object.values(model.params)) as Tensor[];
    for (const p of Object.values(model.params)) p.requiresGrad = true;
    slicedScoreMatchingLoss(model.score, data, { key }).backward();
    for (const [i, p] of Object.values(model.params).entries()) {
      const [a, b] = [await read(functional[i]!), await read(p.grad!)];
      a.forEach((val, j) => expect(val).toBeCloseTo(b[j]!, 12));
      p.requiresGrad = false;
    }
  });
});

const KDE_DATA = [
  [0, 0, 1],
  [1, 0, -1],
  [0, 2, 0.5],
  [0.5, -1, 0],
];

describe('KDE refusals, more', () => {
  it('refuses a rule-of-thumb bandwidth from one data point (its Bessel-corrected spread is 0/0)', () => {
    const one = tensor([[1, 2]], f64);
    expect(() => ruleOfThumbBandwidth(one)).toThrow(/^ruleOfThumbBandwidth: need at least 2 data points to estimate a spread, got 1$/);
    expect(() => kdeScore(one)).toThrow(/^ruleOfThumbBandwidth: need at least 2 data points to estimate a spread, got 1$/);
    expect(() => kdeLogDensity(one, { bandwidth: 'silverman' })).toThrow(/need at least 2 data points to estimate a spread, got 1$/);
    // A given bandwidth needs no spread: one point is a Gaussian, whose score is (x₁ − x)/h².
    const f = kdeScore(one, { bandwidth: 0.5 });
    expect(f(tensor([[0, 0]], f64)).dataSync()).toEqual(new Float64Array([4, 8]));
    f.dispose();
  });

  it('refuses an infinite bandwidth, as a number or in a list, naming it', () => {
    const data = tensor(KDE_DATA, f64);
    expect(() => kdeScore(data, { bandwidth: Infinity })).toThrow(/^kdeScore: bandwidth must be positive and finite, got Infinity$/);
    expect(() => kdeLogDensity(data, { bandwidth: [0.3, Infinity, 1] })).toThrow(/^kdeLogDensity: bandwidth must be positive and finite, got \[0\.3, Infinity, 1\]$/);
  });

  it('refuses a bandwidth tensor of rank 2 even when its first dimension is d', () => {
    const data = tensor(KDE_DATA, f64);
    const column = tensor([[0.5], [0.5], [0.5]], f64);
    expect(() => kdeScore(data, { bandwidth: column })).toThrow(/^kdeScore: a bandwidth tensor must have shape \[3\] and the data's dtype, got float64 \[3,1\]$/);
    expect(() => kdeLogDensity(data, { bandwidth: column })).toThrow(/^kdeLogDensity: a bandwidth tensor must have shape \[3\] and the data's dtype, got float64 \[3,1\]$/);
  });

  it('refuses queries with another number of columns (one column would broadcast) or another dtype', () => {
    const data = tensor(KDE_DATA, f64);
    for (const [name, f] of [['kdeScore', kdeScore(data, { bandwidth: 0.5 })], ['kdeLogDensity', kdeLogDensity(data, { bandwidth: 0.5 })]] as const) {
      expect(() => f(tensor([[1], [2]], f64))).toThrow(new RegExp(`^${name}: x has 1 columns but the KDE data has 3 \\(shape \\[4,3\\]\\)$`));
      expect(() => f(tensor([[1, 2, 3, 4]], f64))).toThrow(new RegExp(`^${name}: x has 4 columns but the KDE data has 3`));
      expect(() => f(tensor([[1, 2, 3]]))).toThrow(new RegExp(`^${name}: x is float32 but the KDE data is float64$`));
      f.dispose();
    }
  });

  it('refuses a bandwidth tensor or a query on another device than the data, naming both', async () => {
    await openDevice('webgpu');
    const data = tensor([[0, 0], [1, 0], [0, 1]], { device: 'webgpu' });
    expect(() => kdeScore(data, { bandwidth: tensor([0.5, 0.5]) })).toThrow(/^kdeScore: the bandwidth tensor is on 'cpu' but the KDE data on 'webgpu'$/);
    expect(() => kdeLogDensity(data, { bandwidth: tensor([0.5, 0.5]) })).toThrow(/^kdeLogDensity: the bandwidth tensor is on 'cpu' but the KDE data on 'webgpu'$/);
    for (const [name, f] of [['kdeScore', kdeScore(data, { bandwidth: 0.5 })], ['kdeLogDensity', kdeLogDensity(data, { bandwidth: 0.5 })]] as const) {
      expect(() => f(tensor([[0.5, 0.5]]))).toThrow(new RegExp(`^${name}: x is on 'cpu' but the KDE data on 'webgpu'$`));
      f.dispose();
    }
  });
});

describe('KDE with a given bandwidth on WebGPU', () => {
  it('makes the bandwidth on the data\'s device: the score and log density of three points at equal distance', async () => {
    await openDevice('webgpu');
    const on = { device: 'webgpu' as const };
    const data = tensor([[0, 0], [1, 0], [0, 1]], on);
    const x = tensor([[0.5, 0.5]], on);
    const h = 0.5;
    // x is at distance √0.5 from each point: equal weights 1/3, so ∇log p̂ = (mean of xᵢ − x)/h² =
    // (1/3 − 1/2)/0.25 = −2/3 per dimension, and p̂(x) = e^(−½·0.5/h²)/(2πh²) = e^(−1)/(π/2).
    const score = await read(kdeScore(data, { bandwidth: h })(x));
    const logp = await read(kdeLogDensity(data, { bandwidth: h })(x));
    // float32, with the bound of losses.test.ts's float32 KDE test (C = 4(d + 2) roundings of size
    // u): the exponents are off by δ = C·u·(‖a‖² + max‖b‖²), a = (x − c)/h, b = (xᵢ − c)/h, c the
    // data mean, here ‖a‖² = 2/9 and max‖b‖² = 20/9; the score by (2δ·Σwᵢ‖xᵢ − x‖ + C·u·size)/h²
    // with Σwᵢ‖xᵢ − x‖ = √0.5 and size = Σwᵢ‖xᵢ − c‖ + ‖x − c‖ ≤ 1; the log density by δ + C·u·(|log p̂| + log n).
    const u = unitRoundoff('float32');
    const C = 16;
    const delta = C * u * (2 / 9 + 20 / 9);
    const expectedLogp = -1 - Math.log(Math.PI / 2);
    for (const s of score) expect(Math.abs(s - -2 / 3)).toBeLessThanOrEqual((2 * delta * Math.SQRT1_2 + C * u) / h ** 2);
    expect(Math.abs(logp[0]! - expectedLogp)).toBeLessThanOrEqual(delta + C * u * (Math.abs(expectedLogp) + Math.log(3)));
  });
});

describe('the documented defaults of the sliced and SDE losses, against the loss\'s own draws', () => {
  // s(x) = −x: ∂s/∂x = −I, so per example vᵀ(∂s/∂x)v = −‖v‖² and ½(vᵀs)² = ½(vᵀx)², exactly.
  const [n, d] = [6, 3];
  const x = randn([n, d], { key: randomKey(1), ...f64 });
  const score = (z: Tensor) => z.neg();
  const key = randomKey(2);

  it('slicedScoreMatchingLoss: one Gaussian projection per example, not variance reduced', async () => {
    const v = await rows(drawProjections([n, d], 'gaussian', { key, ...f64 }));
    const xs = await rows(x);
    const got = await read(slicedScoreMatchingLoss(score, x, { key, reduction: 'none' }));
    // float64: each value is a handful of d-term sums and products, relative error ≤ 4d·u of
    // the terms' magnitudes ‖v‖² + ½(|v|·|x|)² (u = 2⁻⁵³, so ≈ 1.3e-15); 1e-13 is about 75 times looser.
    xs.forEach((row, i) => {
      const vv = v[i]!.reduce((a, vj) => a + vj * vj, 0);
      const vx = v[i]!.reduce((a, vj, j) => a + vj * row[j]!, 0);
      const size = vv + 0.5 * v[i]!.reduce((a, vj, j) => a + Math.abs(vj * row[j]!), 0) ** 2;
      expect(Math.abs(got[i]! - (-vv + 0.5 * vx * vx)), `row ${i}`).toBeLessThanOrEqual(1e-13 * size);
    });
  });

  it('projectedJacobianTrace: one Gaussian projection per example', async () => {
    const v = await rows(drawProjections([n, d], 'gaussian', { key, ...f64 }));
    const got = await read(projectedJacobianTrace(score, x, { key }));
    // A Rademacher v would give −d = −3 in every row; a Gaussian one −‖v‖², here never −3.
    v.forEach((row, i) => {
      const vv = row.reduce((a, vj) => a + vj * vj, 0);
      expect(Math.abs(got[i]! + vv), `row ${i}`).toBeLessThanOrEqual(1e-13 * vv);
    });
  });

  it("sdeScoreLoss: weighting 'sigma2', ½‖s(t)·s_θ + z‖² per example", async () => {
    // The draws are the loss's own: t and z from splitKey(key, 2), t = ε + (T − ε)u.
    const sde = vpSde();
    const x3 = tensor(Array.from({ length: n * d }, (_, i) => Math.cos(i + 1)), { ...f64, shape: [n, d] });
    const model = (z: Tensor, t?: Tensor) => z.mul(-0.7).add(t!.reshape([n, 1]).mul(0.3));
    const got = await read(sdeScoreLoss(model, x3, { sde, key, reduction: 'none' }));
    const [timeKey, noiseKey] = splitKey(key, 2);
    const t = rand([n], { key: timeKey, ...f64 }).mul(sde.T - 1e-5).add(1e-5);
    const z = randn([n, d], { key: noiseKey, ...f64 });
    const [m, s] = [sde.meanCoefficient(t).reshape([n, 1]), sde.std(t).reshape([n, 1])];
    const expected = await read(model(x3.mul(m).add(z.mul(s)), t).mul(s).add(z).square().sum(1).mul(0.5));
    // Same operations in float64 in another order: relative 1e-12 (as torchReference.test.ts).
    got.forEach((g, i) => expect(Math.abs(g - expected[i]!), `row ${i}`).toBeLessThanOrEqual(1e-12 * Math.abs(expected[i]!)));
  });

  it('the finite-difference step in float32 is ∛(3u): the estimate is within its rounding of −‖v‖²', async () => {
    // s = −x is linear, so the central difference has no truncation error: what is left is the
    // rounding of x ± εv (≤ u(|x_j| + ε|v_j|) each), of their difference and of εv, divided by 2ε
    // and dotted with v: ≤ (2u/ε)·Σ_j |v_j|(|x_j| + ε|v_j|), plus ≤ 2d·u·‖v‖² for the dot product
    // and the division. A step of float64's ∛(3·2⁻⁵³) ≈ 7e-6 in float32 makes u/ε 800 times larger.
    const x32 = randn([n, d], { key: randomKey(3) });
    const u = unitRoundoff('float32');
    const eps = Math.fround(Math.cbrt(3 * 2 ** -24));
    const v = await rows(drawProjections([n, d], 'gaussian', { key, dtype: 'float32' }));
    const xs = await rows(x32);
    const got = await read(projectedJacobianTrace(score, x32, { key, method: 'finiteDifference' }));
    v.forEach((row, i) => {
      const vv = row.reduce((a, vj) => a + vj * vj, 0);
      const bound = (2 * u / eps) * row.reduce((a, vj, j) => a + Math.abs(vj) * (Math.abs(xs[i]![j]!) + eps * Math.abs(vj)), 0) + 2 * d * u * vv;
      expect(Math.abs(got[i]! + vv), `row ${i}`).toBeLessThanOrEqual(bound);
    });
  });
});

describe('loss input checks: targets, traces, σ tensors, SDEs, reductions, batches', () => {
  const x = randn([4, 2], { key: randomKey(11), ...f64 });
  const score = (z: Tensor) => z.neg();
  const key = randomKey(12);

  it("explicitScoreMatchingLoss refuses a target of one column (it would broadcast) and a missing target", () => {
    const column = (z: Tensor) => z.sum(1, true);
    expect(() => explicitScoreMatchingLoss(score, x, { targetScore: column })).toThrow(/^explicitScoreMatchingLoss: targetScore returned shape \[4,1\] for x of shape \[4,2\]$/);
    expect(() => explicitScoreMatchingLoss(score, x, {} as never)).toThrow(/^explicitScoreMatchingLoss: opts.targetScore must be a function x ↦ ∇log p\(x\)/);
  });

  it('the exact traces check cond as the losses do', () => {
    for (const cond of [tensor([1, 2, 3, 4], { dtype: 'float32' }), tensor([1, 2], f64)]) {
      expect(() => scoreJacobianTrace(score, x, { cond })).toThrow(/^scoreJacobianTrace: cond must /);
      expect(() => energyHessianTrace((z: Tensor) => z.square().sum(1), x, { cond })).toThrow(/^energyHessianTrace: cond must /);
    }
  });

  it('a sigma tensor must have one σ per row (a [1] one broadcast over the batch)', () => {
    expect(() => denoisingScoreMatchingLoss(score, x, { sigma: tensor([0.5], f64), key })).toThrow(/^denoisingScoreMatchingLoss: sigma must be a positive number or a Tensor of shape \[4\], got \[1\]$/);
  });

  it('sdeScoreLoss refuses an sde without meanCoefficient', () => {
    const { meanCoefficient: _dropped, ...partial } = vpSde();
    expect(() => sdeScoreLoss(score, x, { sde: partial as never, key })).toThrow(/^sdeScoreLoss: opts.sde must be an Sde/);
  });

  it('a bad reduction is refused before the score is called', () => {
    let calls = 0;
    const counted = (z: Tensor) => {
      calls++;
      return z.neg();
    };
    expect(() => implicitScoreMatchingLoss(counted, x, { reduction: 'sum' as never })).toThrow(/^implicitScoreMatchingLoss: unknown reduction "sum"/);
    expect(() => denoisingScoreMatchingLoss(counted, x, { sigma: 1, key, reduction: 'sum' as never })).toThrow(/^denoisingScoreMatchingLoss: unknown reduction "sum"/);
    expect(calls).toBe(0);
  });

  it('the batch checks: a function score, a float batch, a score of the batch\'s shape', () => {
    expect(() => implicitScoreMatchingLoss(undefined as never, x)).toThrow(/^implicitScoreMatchingLoss: score must be a function \(x \[N, d\], cond\?\) => \[N, d\], got undefined$/);
    expect(() => implicitScoreMatchingLoss(score, tensor([[1, 2], [3, 4]], { dtype: 'int32' }))).toThrow(/^implicitScoreMatchingLoss: x must be float32 or float64, got int32$/);
    expect(() => implicitScoreMatchingLoss(score, tensor([], { ...f64, shape: [0, 2] }))).toThrow(/^implicitScoreMatchingLoss: x must be non-empty, got shape \[0,2\]$/);
    const oneRow = (z: Tensor) => z.slice([0, 0], [1, 2]);
    expect(() => denoisingScoreMatchingLoss(oneRow, x, { sigma: 0.5, key })).toThrow(/^denoisingScoreMatchingLoss: the score function returned shape \[1,2\] for an input of shape \[4,2\]/);
  });
});

describe('drawProjections on WebGPU', () => {
  it('puts every distribution on the device asked for', async () => {
    await openDevice('webgpu');
    for (const distribution of ['gaussian', 'rademacher', 'sphere'] as const) {
      const v = drawProjections([4, 3], distribution, { key: randomKey(21), dtype: 'float32', device: 'webgpu' });
      expect(v.device, distribution).toBe('webgpu');
      const values = await read(v);
      if (distribution === 'rademacher') expect(values.every((e) => e === 1 || e === -1)).toBe(true);
      v.dispose();
    }
  });
});
