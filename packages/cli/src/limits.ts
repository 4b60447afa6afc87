// Flag values the library would refuse only once it ran with them — after training, for a
// sampler's — checked before any work, by the library's own checks: each is called here on a
// one-point problem whose score function stops it at its first call, which comes after every
// check of its options. A value it refuses is the user's flag out of range (a UsageError naming
// the flag and what it takes); the limits are the library's, not copies of its numbers.

import { type NoiseSpec, denoisingScoreMatchingLoss, predictorCorrector, sdeOf } from '@scorch/score';
import { type Tensor, randomKey, zeros } from '@scorch/tensor';
import { UsageError } from './args.js';

/** Thrown by the probing score function: the library's checks passed and it began to work. */
class Accepted extends Error {}

const stopAtFirstCall = (): Tensor => {
  throw new Accepted('accepted');
};

/**
 * The library's refusal of `run` (called with a one-point input on the CPU and a score function
 * that stops it at its first call), or undefined when it accepts the options: the RangeError its
 * checks of a value throw before the score is called. Any other failure is rethrown (exit 1).
 */
async function refusal(run: (x: Tensor) => unknown): Promise<Error | undefined> {
  const x = zeros([1, 2], { device: 'cpu', dtype: 'float32' });
  try {
    await run(x);
    throw new Error('internal: the probe of the library\'s checks ran to the end');
  } catch (e) {
    if (e instanceof Accepted) return undefined;
    if (e instanceof RangeError) return e;
    throw e;
  } finally {
    x.dispose();
  }
}

/** Whether predictorCorrector takes `steps` time steps for the SDE of `noise`. */
async function pcTakes(noise: NoiseSpec, steps: number): Promise<boolean> {
  const sde = sdeOf(noise)!;
  return (await refusal((init) => predictorCorrector(stopAtFirstCall, sde, { key: randomKey(0), init, steps, jit: false }))) === undefined;
}

/**
 * Refuses --sample-steps too few for --sampler pc on a model with `noise` (an SDE's): VP and
 * sub-VP's discrete chain needs αᵢ = 1 − β(t)Δt > 0 at every step (predictorCorrector refuses
 * fewer steps, as every sample would be NaN). The least count is found by asking the library.
 */
export async function checkSampleSteps(where: string, noise: NoiseSpec, sampler: string, steps: number | undefined): Promise<void> {
  if (sampler !== 'pc' || noise.kind !== 'sde' || steps === undefined || (await pcTakes(noise, steps))) return;
  // More steps make Δt, and so β(t)Δt, smaller: the counts taken are those from some least one.
  let low = steps; // refused
  let high = steps * 2;
  while (!(await pcTakes(noise, high))) {
    low = high;
    high *= 2;
    if (!Number.isSafeInteger(high)) throw new UsageError(`${where}: --sample-steps ${steps} is too few for --sampler pc with this model's ${noise.sde} SDE, and no number of steps satisfies it; use --sampler em or ode`);
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await pcTakes(noise, middle)) high = middle;
    else low = middle;
  }
  throw new UsageError(
    `${where}: --sample-steps ${steps} is too few for --sampler pc with the ${noise.sde} SDE: its discrete chain needs αᵢ = 1 − β(t)Δt > 0 at every step, or every sample is NaN; expected --sample-steps ${high} or more`,
  );
}

/**
 * Refuses a --sigma (of --loss dsm) that denoisingScoreMatchingLoss would refuse: one that
 * float32, the dtype training computes in, holds only as 0 or ∞.
 */
export async function checkDsmSigma(where: string, sigma: number): Promise<void> {
  const refused = await refusal((x) => denoisingScoreMatchingLoss(stopAtFirstCall, x, { sigma, key: randomKey(0) }));
  if (!refused) return;
  // The positive finite float32 values, from the least subnormal 2⁻¹⁴⁹ to the largest, (2 − 2⁻²³)·2¹²⁷.
  const range = `from ${Number((2 ** -149).toPrecision(2))} to ${Number(((2 - 2 ** -23) * 2 ** 127).toPrecision(2))}`;
  throw new UsageError(`${where}: --sigma ${sigma} rounds to ${Math.fround(sigma)} in float32, the precision the loss computes in; expected a positive number that float32 holds, ${range}`);
}
