// Concurrent use of the library: JavaScript interleaves work at `await`s, so two training loops,
// a sampler beside a training loop, or a metric inside a progress callback share the process-wide
// state (the trace stack, tidy scopes, the grad mode, jit caches, the devices' queues). Each step
// of a loop is synchronous, so a loop run beside others must give exactly what it gives alone
// (bit for bit on each device: the same kernels on the same values), leave memory() as alone, and
// leave no trace, scope or grad mode behind.

import { expect, it } from 'vitest';
import { grad, jit, noGrad, vmap } from '@scorch/autograd';
import { type Tensor, isGradEnabled, keep, manualSeed, memory, randn, randomKey, tidy, traceDepth } from '@scorch/tensor';
import {
  adam, annealedLangevinDynamics, denoisingScoreMatchingLoss, eightGaussians, ema, energyDistance, fisherDivergence, langevinDynamics, mlpScore, mmd2,
  predictorCorrector, probabilityFlowOde, reverseSdeEulerMaruyama, saveParams, train, vpSde,
} from '../src/index.js';
import { onEachDevice } from './devices.js';

/** A macrotask: lets the other loops run (a callback that waits for the UI, say). */
const yieldToOthers = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
const values = async (t: Tensor): Promise<number[]> => {
  const v = Array.from(await t.data());
  t.dispose();
  return v;
};

onEachDevice('loops run side by side', (device) => {
  const on = { dtype: 'float32', device } as const;
  const mixture = eightGaussians();
  const sde = vpSde();
  const diffused = mixture.diffusedScore(sde);
  const timeScore = (x: Tensor, t?: Tensor) => diffused(x, t!);

  /** Each job makes what it uses and returns plain numbers; `tick` runs at its awaits. */
  const jobs = (data: Tensor, head: Tensor, compiled: boolean, tick: () => Promise<void>): Record<string, () => Promise<unknown>> => {
    const trainJob = (seed: number, withEma: boolean) => async () => {
      const model = mlpScore({ inputDim: 2, hidden: [8], key: randomKey(seed), ...on });
      const optimizer = adam({ lr: 1e-2 });
      const average = withEma ? ema(model.params, { decay: 0.9 }) : undefined;
      const loss = (p: typeof model.params, key: ReturnType<typeof randomKey>) => denoisingScoreMatchingLoss((x) => model.apply(p, x), data, { sigma: 0.3, key });
      const { history } = await train({ params: model.params, loss, optimizer, ema: average, steps: 12, key: randomKey(seed + 1), every: 3, jit: compiled, onProgress: tick });
      const out = [history, await Promise.all(Object.values(model.params).map(values)), average ? await Promise.all(Object.values(average.shadow).map(values)) : []];
      optimizer.dispose();
      return out;
    };
    return {
      train: trainJob(1, false),
      'train with an ema': trainJob(2, true),
      langevinDynamics: async () => values(await langevinDynamics((x) => mixture.score(x), data, { key: randomKey(3), steps: 6, jit: compiled, callback: tick })),
      annealedLangevinDynamics: async () =>
        values(await annealedLangevinDynamics(mixture.noiseConditionalScore(), data, { key: randomKey(4), sigmas: [1, 0.3], stepsPerLevel: 3, jit: compiled, callback: tick })),
      reverseSdeEulerMaruyama: async () => values(await reverseSdeEulerMaruyama(timeScore, sde, { key: randomKey(5), shape: [16, 2], ...on, steps: 6, jit: compiled, callback: tick })),
      predictorCorrector: async () => values(await predictorCorrector(timeScore, sde, { key: randomKey(6), shape: [16, 2], ...on, steps: 20, jit: compiled, callback: tick })),
      'probabilityFlowOde rk4': async () => values((await probabilityFlowOde(timeScore, sde, { key: randomKey(7), shape: [16, 2], ...on, method: 'rk4', steps: 6, jit: compiled, callback: tick })).x),
      'probabilityFlowOde rk45': async () => {
        const { x, nfe } = await probabilityFlowOde(timeScore, sde, { key: randomKey(8), shape: [16, 2], ...on, callback: tick });
        return [nfe, await values(x)];
      },
      mmd2: async () => mmd2(data, head),
      energyDistance: async () => energyDistance(data, head),
      fisherDivergence: async () => fisherDivergence((x) => mixture.score(x), (x) => x.neg(), data),
    };
  };

  it.each([true, false])('trainers, samplers and metrics side by side give what each gives alone (jit %s)', async (compiled) => {
    const data = keep(mixture.sample(32, { key: randomKey(0), ...on }));
    const head = keep(data.slice([0, 0], [16, 2]));
    mixture.score(data).dispose(); // the mixture caches its parameters (kept) on first use
    const before = memory().tensors;
    const alone: Record<string, unknown> = {};
    for (const [name, job] of Object.entries(jobs(data, head, compiled, yieldToOthers))) alone[name] = await job();
    expect(memory().tensors).toBe(before);
    const names = Object.keys(alone);
    const together = await Promise.all(Object.values(jobs(data, head, compiled, yieldToOthers)).map((job) => job()));
    names.forEach((name, i) => expect(together[i], name).toEqual(alone[name]));
    expect(memory().tensors).toBe(before);
    expect([traceDepth(), isGradEnabled()]).toEqual([0, true]);
    data.dispose();
    head.dispose();
  });

  it('a progress callback may run transformations, samplers and metrics of its own', async () => {
    const data = keep(mixture.sample(32, { key: randomKey(0), ...on }));
    const run = async (busy: boolean) => {
      const model = mlpScore({ inputDim: 2, hidden: [8], key: randomKey(9), ...on });
      const optimizer = adam({ lr: 1e-2 });
      const seen: number[] = [];
      const onProgress = async () => {
        if (!busy) return;
        const g = grad((x: Tensor) => model.score(x).square().sum())(data) as Tensor;
        const j = jit((x: Tensor) => model.score(x).sum());
        const v = vmap((x: Tensor) => model.score(x.reshape([1, 2])).sum())(data);
        seen.push((await values(g)).length, ...(await values(j(data))), (await values(v)).length);
        j.clearCache();
        (await langevinDynamics((x) => model.score(x), data, { key: randomKey(10), steps: 2 })).dispose();
        seen.push(await fisherDivergence((x) => model.score(x), (x) => x.neg(), data));
        tidy(() => noGrad(() => model.score(data).sum())).dispose();
      };
      const loss = (p: typeof model.params, key: ReturnType<typeof randomKey>) => denoisingScoreMatchingLoss((x) => model.apply(p, x), data, { sigma: 0.3, key });
      const { history } = await train({ params: model.params, loss, optimizer, steps: 6, key: randomKey(11), every: 2, onProgress });
      const params = await Promise.all(Object.values(model.params).map(values));
      optimizer.dispose();
      return { history, params, seen: seen.length };
    };
    const before = memory().tensors;
    const quiet = await run(false);
    const busy = await run(true);
    expect(busy.seen).toBe(3 * 4); // 6 steps read every 2: three calls, four values each
    expect({ ...busy, seen: 0 }).toEqual({ ...quiet, seen: 0 });
    expect(memory().tensors).toBe(before);
    expect([traceDepth(), isGradEnabled()]).toEqual([0, true]);
    data.dispose();
  });

  it('a checkpoint saved while training runs holds the parameters of one step', async () => {
    const data = keep(mixture.sample(32, { key: randomKey(0), ...on }));
    const model = mlpScore({ inputDim: 2, hidden: [8], key: randomKey(12), ...on });
    const optimizer = adam({ lr: 1e-2 });
    const snapshot = async () => JSON.stringify(await Promise.all(Object.values(model.params).map(async (p) => Array.from(await p.data()))));
    const steps = [await snapshot()];
    const loss = (p: typeof model.params, key: ReturnType<typeof randomKey>) => denoisingScoreMatchingLoss((x) => model.apply(p, x), data, { sigma: 0.3, key });
    const training = train({ params: model.params, loss, optimizer, steps: 8, key: randomKey(13), every: 1, onProgress: async () => void steps.push(await snapshot()) });
    const saving = (async () => {
      await Promise.resolve();
      return saveParams(model.params);
    })();
    const [, json] = await Promise.all([training, saving]);
    const saved = JSON.parse(json) as { tensors: Record<string, { data: number[] }> };
    expect(steps).toContain(JSON.stringify(Object.values(saved.tensors).map((t) => t.data)));
    optimizer.dispose();
    data.dispose();
  });
});

it('keyless draws of two interleaved loops take the default stream\'s keys in the order they are made (docs/conventions.md)', async () => {
  // The stream is process-wide: each keyless draw takes its next key, whichever loop draws, so
  // each loop's numbers depend on how the loops interleave (pass keys for reproducible loops).
  manualSeed(7);
  const made: { loop: string; values: number[] }[] = [];
  const loop = async (name: string) => {
    for (let i = 0; i < 3; i++) {
      const draw = randn([2]);
      await yieldToOthers();
      made.push({ loop: name, values: await values(draw) });
    }
  };
  await Promise.all([loop('a'), loop('b')]);
  manualSeed(7);
  const stream = await Promise.all(made.map(() => values(randn([2]))));
  // Drawn in the order a, b, a, b, ...: the k-th draw made is the stream's k-th.
  expect(made.map((m) => m.loop)).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  expect(made.map((m) => m.values)).toEqual(stream);
});
