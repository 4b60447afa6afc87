// Trains a noise-conditional score network s(x, σ) on eight 2-D Gaussians with multi-scale
// denoising score matching (ncsnLoss; Song & Ermon 2019), samples it with annealed Langevin
// dynamics, and prints the last training loss, the fraction of samples nearest each of the eight
// means (1/8 each for the data) and MMD² between the samples and fresh data, with its standard
// error under "same distribution". About 3 s on the CPU backend of a 2-core machine.
// Run: node scripts/run.mjs examples/trainScore.ts (tests/examples.test.ts checks its output).

import {
  adam, annealedLangevinDynamics, eightGaussians, ema, geometricSigmas, mlpScore, mmd2, modeWeights, ncsnLoss, train,
} from '@scorch/score';
import { foldIn, randn, randomKey, tidy } from '@scorch/tensor';

const key = (i: number) => foldIn(randomKey(0), i);   // independent keys from seed 0
const data = eightGaussians();                        // means on a circle of radius 2, std 0.25
const sigmas = geometricSigmas(5, 0.01, 10);          // σ₁ = 5 (about the data's diameter) … σ₁₀ = 0.01
const model = mlpScore({ inputDim: 2, hidden: [64, 64], conditioning: 'sigma', outputScaling: 'divideBySigma', key: key(0) });
const average = ema(model.params, { decay: 0.99 });   // sample with averaged parameters

const steps = 1000;
const optimizer = adam({ lr: (t) => 1e-2 * Math.max(0.02, Math.min(1, 2 * (1 - t / steps))) }); // decays over the 2nd half
const { history } = await train({
  params: model.params,
  optimizer,
  steps,
  key: key(1),
  ema: average,
  loss: (params, k) => ncsnLoss(model.bind(params), data.sample(256, { key: foldIn(k, 0) }), { key: foldIn(k, 1), sigmas }),
});
average.copyTo(model.params);

const init = tidy(() => randn([1000, 2], { key: key(2) }).mul(sigmas[0]!)); // tidy frees the randn
const samples = await annealedLangevinDynamics(model.score, init, { key: key(3), sigmas });
const fresh = data.sample(1000, { key: key(4) });
const weights = await modeWeights(samples, data.means);
const mmd = await mmd2(samples, fresh);
// Nothing is garbage-collected: free every tensor made here (so this can run again, per seed),
// the optimizer's moments too (train leaves the optimizer to its caller).
for (const t of [init, samples, fresh]) t.dispose();
for (const owner of [model, optimizer, average, data]) owner.dispose();

console.log(`final loss:   ${history.at(-1)!.loss.toFixed(4)}`);
console.log(`mode weights: ${weights.map((w) => w.toFixed(3)).join(' ')}`);
console.log(`MMD²:         ${mmd.value.toExponential(2)} (null standard error ${mmd.nullStandardError.toExponential(2)})`);
