// End to end, on every test device in float32 (see devices.ts): MLP score models trained on a 2-D
// Gaussian mixture, one with SSM-VR and one with DSM, must (1) reach a stated Fisher divergence
// to the exact score and (2) produce, through Langevin dynamics, samples as close to held-out
// data as fresh true samples are.
//
// Sample quality is measured with the RBF-kernel MMD² in its plain (V-statistic) form, which is
// what "the MMD² between two sets" is: for two independent sets of n true points it is positive,
// with expectation E₀ = (2/n)(1 − E k(X, X')) (the unbiased part has mean 0; the i = j terms
// contribute (2/n)·k(0) − (2/n)·E k). The criterion is: the mean over R set pairs of
// MMD²_V(model samples, held-out) ≤ 2·E₀. One pair's MMD²_V fluctuates by about 0.7·E₀ under the
// null (measured by the calibration test below: the degenerate U-statistic's SD is comparable to
// the bias, whatever n), so averaging R = 5 pairs brings that to ≈ 0.32·E₀ and a perfect sampler
// fails with probability ≈ 0.1% (1/0.32 ≈ 3.1 SDs), while a missing mode or a wrong spread moves
// the MMD² by many E₀.
//
// The mixture's modes overlap enough (distance 1.8, component std 0.55) for Langevin dynamics to
// move between them within the run: with well-separated modes it keeps its initial mode
// proportions (Song & Ermon 2019, §3.2.2) and the test would measure the sampler, not the model.

import { expect, it } from 'vitest';
import { type Tensor, exp, mean, randn, randomKey, splitKey, sum, tidy } from '@scorch/tensor';
import { adam, denoisingScoreMatchingLoss, mlpScore, slicedScoreMatchingLoss, train } from '../src/index.js';
import { gaussianMixture } from '../src/data.js';
import { fisherDivergence, medianBandwidth } from '../src/metrics.js';
import { langevinDynamics } from '../src/samplers.js';
import { type TestDevice, countHostReads, onEachDevice } from './devices.js';

// float32 throughout: WebGPU's precision, and the CPU's in the same runs. Every criterion below
// is Monte-Carlo limited (Fisher divergences of a few 1e-2 estimated from 2000 points; MMD² at
// the E₀ ≈ 1e-3 scale), while float32 rounding perturbs a score or a sample at ~1e-6 relative:
// the criteria are the same as they would be in float64.
const dtype = 'float32' as const;
const mixture = gaussianMixture({ means: [[-0.8, -0.4], [0.8, 0.4]], covariances: [0.3, 0.3], weights: [0.4, 0.6] });
const SETS = 5;
const SET_SIZE = 400;

/** Mean RBF kernel value between the rows of a and b (bandwidth h). */
function meanKernel(a: Tensor, b: Tensor, h: number): Tensor {
  const diff = a.reshape([a.shape[0]!, 1, 2]).sub(b.reshape([1, b.shape[0]!, 2]));
  return mean(exp(sum(diff.mul(diff), 2).mul(-1 / (2 * h * h))));
}

/** MMD² as a V-statistic: mean k(a, a') + mean k(b, b') − 2 mean k(a, b), diagonals included. */
async function mmd2V(a: Tensor, b: Tensor, h: number): Promise<number> {
  const value = tidy(() => meanKernel(a, a, h).add(meanKernel(b, b, h)).sub(meanKernel(a, b, h).mul(2)));
  const result = await value.item();
  value.dispose();
  return result;
}

/** The null expectation E₀ and the bandwidth (median heuristic), from two fresh true samples. */
async function computeNullReference(device: TestDevice): Promise<{ bandwidth: number; expectedNull: number }> {
  const a = mixture.sample(1500, { key: randomKey(900), dtype, device });
  const b = mixture.sample(1500, { key: randomKey(901), dtype, device });
  const bandwidth = await medianBandwidth(a, b);
  // E k(X, X') from 2.25·10⁶ pairs: its SE (< 1% relative) is negligible next to the factor 2.
  const crossMean = tidy(() => meanKernel(a, b, bandwidth));
  const expectedNull = (2 / SET_SIZE) * (1 - (await crossMean.item()));
  for (const t of [a, b, crossMean]) t.dispose();
  return { bandwidth, expectedNull };
}
const nullReferences = new Map<TestDevice, ReturnType<typeof computeNullReference>>();
function nullReference(device: TestDevice): ReturnType<typeof computeNullReference> {
  let reference = nullReferences.get(device);
  if (!reference) nullReferences.set(device, (reference = computeNullReference(device)));
  return reference;
}

/** Langevin samples of `score` split into SETS sets, each compared with its own held-out set. */
async function sampleQuality(score: (x: Tensor) => Tensor, seed: number, bandwidth: number, device: TestDevice): Promise<number> {
  // Initialised broad (std 1.5 covers both modes); 300 steps of ε = 0.03 (total time 9, many
  // relaxation times of components with variance 0.3; ULA's O(ε) variance bias, ≈ ε/4 = 0.0075
  // per coordinate for a Gaussian, is small next to the components' 0.3).
  const init = randn([SETS * SET_SIZE, 2], { key: randomKey(seed), dtype, device }).mul(1.5);
  const samples = await langevinDynamics(score, init, { key: randomKey(seed + 1), stepSize: 0.03, steps: 300 });
  expect(samples.device).toBe(device);
  const heldOut = mixture.sample(SETS * SET_SIZE, { key: randomKey(seed + 2), dtype, device });
  let total = 0;
  for (let r = 0; r < SETS; r++) total += await mmd2V(samples.slice([r * SET_SIZE, 0], [SET_SIZE, 2]), heldOut.slice([r * SET_SIZE, 0], [SET_SIZE, 2]), bandwidth);
  return total / SETS;
}

onEachDevice('trained score models on a 2-D Gaussian mixture', (device) => {
  // The evaluation points, drawn on the device under test (created lazily: the device is opened
  // before each test, not while the suite is being collected).
  const testPoints = () => mixture.sample(2000, { key: randomKey(800), dtype, device });
  // ½E‖∇log p‖²: the Fisher divergence of the zero score, the scale the targets are stated in.
  const scale = (test: Tensor) => fisherDivergence((x) => x.mul(0), (x) => mixture.score(x), test);

  it('training stays on the device: parameters, data, projections, noise and optimiser state; the loss is read every `every` steps', async () => {
    const model = mlpScore({ inputDim: 2, hidden: [8], key: randomKey(860), dtype, device });
    const optimizer = adam({ lr: 1e-2 });
    const { result, reads } = await countHostReads(device, () => train({
      params: model.params,
      loss: (p, key) => {
        const [dataKey, lossKey] = splitKey(key, 2) as [[number, number], [number, number]];
        const x = mixture.sample(64, { key: dataKey, dtype, device });
        return slicedScoreMatchingLoss(model.bind(p), x, { key: lossKey, varianceReduced: true }).add(denoisingScoreMatchingLoss(model.bind(p), x, { key: lossKey, sigma: 0.2 }));
      },
      optimizer,
      steps: 10,
      key: randomKey(861),
      every: 5,
      clipNorm: 1,
    }));
    expect(reads).toBe(2);
    expect(result.history.map((h) => h.step)).toEqual([5, 10]);
    for (const p of Object.values(model.params)) expect(p.device).toBe(device);
    optimizer.dispose();
  });

  it("SSM-VR: Fisher divergence ≤ 10% of ½E‖∇log p‖², samples' MMD² ≤ 2× that of true sets", async () => {
    const model = mlpScore({ inputDim: 2, hidden: [32], activation: 'silu', key: randomKey(810), dtype, device });
    const steps = 500;
    await train({
      params: model.params,
      loss: (p, key) => {
        const [dataKey, projectionKey] = splitKey(key, 2) as [[number, number], [number, number]];
        return slicedScoreMatchingLoss(model.bind(p), mixture.sample(256, { key: dataKey, dtype, device }), { key: projectionKey, varianceReduced: true });
      },
      optimizer: adam({ lr: (t) => 1e-2 * Math.max(0.02, Math.min(1, 2 * (1 - t / steps))) }),
      steps,
      key: randomKey(811),
      every: steps,
    });
    const test = testPoints();
    const fisher = await fisherDivergence(model.score, (x) => mixture.score(x), test);
    const reference = await scale(test);
    const { bandwidth, expectedNull } = await nullReference(device);
    const quality = await sampleQuality(model.score, 820, bandwidth, device);
    console.log(`[SSM-VR, ${device}] Fisher divergence ${fisher.toPrecision(5)} (½E‖∇log p‖² = ${reference.toPrecision(5)}); MMD²_V ${quality.toExponential(3)} vs null expectation ${expectedNull.toExponential(3)}`);
    expect(fisher).toBeLessThan(0.1 * reference);
    expect(quality).toBeLessThan(2 * expectedNull);
  });

  it("DSM (σ = 0.2): Fisher divergence to the noised score ≤ 10% of ½E‖∇log p‖², samples' MMD² ≤ 2× that of true sets", async () => {
    const sigma = 0.2;
    const model = mlpScore({ inputDim: 2, hidden: [32], activation: 'silu', key: randomKey(830), dtype, device });
    const steps = 600;
    await train({
      params: model.params,
      loss: (p, key) => {
        const [dataKey, noiseKey] = splitKey(key, 2) as [[number, number], [number, number]];
        return denoisingScoreMatchingLoss(model.bind(p), mixture.sample(512, { key: dataKey, dtype, device }), { key: noiseKey, sigma });
      },
      optimizer: adam({ lr: (t) => 1e-2 * Math.max(0.02, Math.min(1, 2 * (1 - t / steps))) }),
      steps,
      key: randomKey(831),
      every: steps,
    });
    // DSM's minimiser is the score of p_σ = p ∗ N(0, σ²I), so that is the reference here.
    const test = testPoints();
    const fisher = await fisherDivergence(model.score, (x) => mixture.noisyScore(x, sigma), test);
    const reference = await scale(test);
    const { bandwidth, expectedNull } = await nullReference(device);
    const quality = await sampleQuality(model.score, 840, bandwidth, device);
    console.log(`[DSM σ=${sigma}, ${device}] Fisher divergence to ∇log p_σ ${fisher.toPrecision(5)} (½E‖∇log p‖² = ${reference.toPrecision(5)}); MMD²_V ${quality.toExponential(3)} vs null expectation ${expectedNull.toExponential(3)}`);
    expect(fisher).toBeLessThan(0.1 * reference);
    expect(quality).toBeLessThan(2 * expectedNull);
  });

  it('the MMD² criterion has the stated null behaviour: true sets average ≈ E₀, SD ≈ 0.7·E₀ per pair', async () => {
    // Calibration of the criterion above on R = 5 pairs of fresh true sets: their mean MMD²_V is
    // within 4 SE of E₀ (SE from the 5 values), and below the 2·E₀ threshold.
    const { bandwidth, expectedNull } = await nullReference(device);
    const a = mixture.sample(SETS * SET_SIZE, { key: randomKey(850), dtype, device });
    const b = mixture.sample(SETS * SET_SIZE, { key: randomKey(851), dtype, device });
    const values: number[] = [];
    for (let r = 0; r < SETS; r++) values.push(await mmd2V(a.slice([r * SET_SIZE, 0], [SET_SIZE, 2]), b.slice([r * SET_SIZE, 0], [SET_SIZE, 2]), bandwidth));
    const m = values.reduce((s, v) => s + v, 0) / SETS;
    const sd = Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (SETS - 1));
    console.log(`[MMD null, ${device}] mean ${m.toExponential(3)}, SD per pair ${sd.toExponential(3)} (${(sd / expectedNull).toFixed(2)}·E₀), E₀ = ${expectedNull.toExponential(3)}`);
    expect(Math.abs(m - expectedNull)).toBeLessThan((4 * sd) / Math.sqrt(SETS));
    expect(m).toBeLessThan(2 * expectedNull);
  });
});
