// Score models: parameter layout and initialisation, noise conditioning and output scaling,
// energy models' score −∇E, the exact Jacobian trace by three routes, and save/load.

import { describe, expect, it } from 'vitest';
import { grad, hessian, jacobian } from '@scorch/autograd';
import { type Tensor, concat, log, matmul, memory, randn, randomKey, reshape, tensor } from '@scorch/tensor';
import {
  type Params, energyHessianTrace, energyScore, implicitScoreMatchingLoss, loadParamsInto, mlpEnergy, mlpScore,
  fourierEmbedding, saveParams, scoreJacobianTrace, sinusoidalEmbedding,
} from '../src/index.js';
import { vpSde } from '../src/sde.js';
import { onEachDevice } from './devices.js';
import { unknownOption } from './options.js';

const f64 = { dtype: 'float64' as const };
const read = async (t: Tensor): Promise<number[]> => Array.from(await t.data());

/** The exact trace of ∂s/∂x per row from the full Jacobian (one row at a time). */
async function traceViaJacobian(score: (x: Tensor, c?: Tensor) => Tensor, x: Tensor, cond?: Tensor): Promise<number[]> {
  const [n, d] = x.shape as [number, number];
  const traces: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = reshape(x.slice([i, 0], [1, d]), [d]);
    const c = cond?.slice([i], [1]);
    const j = await read(jacobian((z: Tensor) => reshape(score(reshape(z, [1, d]), c), [d]))(row));
    traces.push(Array.from({ length: d }, (_, k) => j[k * d + k]!).reduce((a, b) => a + b, 0));
  }
  return traces;
}

describe('mlpScore', () => {
  it('names its parameters and initialises them LeCun-normal (He-normal for ReLU)', async () => {
    const model = mlpScore({ inputDim: 2, hidden: [400, 8], key: randomKey(1) });
    expect(Object.keys(model.params)).toEqual(['layer0.weight', 'layer0.bias', 'layer1.weight', 'layer1.bias', 'out.weight', 'out.bias']);
    expect(model.params['layer1.weight']!.shape).toEqual([400, 8]);
    expect(Object.values(model.params)).toHaveLength(6);
    // 3200 iid N(0, g/fan_in) weights: the sample variance has SE = var·√(2/(n−1)); within 4 SE.
    for (const [activation, gain] of [['tanh', 1], ['relu', 2]] as const) {
      const w = await read(mlpScore({ inputDim: 2, hidden: [400, 8], activation, key: randomKey(2) }).params['layer1.weight']!);
      const variance = w.reduce((a, v) => a + v * v, 0) / w.length;
      const expected = gain / 400;
      expect(Math.abs(variance - expected)).toBeLessThan(4 * expected * Math.sqrt(2 / (w.length - 1)));
    }
    expect(await read(model.params['layer0.bias']!)).toEqual(new Array(400).fill(0));
  });

  it('allocates only its parameters and buffers: the initialisation frees its draws', () => {
    for (const embedding of ['sinusoidal', 'fourier'] as const) {
      const before = memory().tensors;
      const model = mlpScore({ inputDim: 2, hidden: [16, 16], conditioning: 'sigma', embedding, embeddingDim: 8, key: randomKey(5), ...f64 });
      const owned = [...Object.values(model.params), ...Object.values(model.buffers)];
      expect(memory().tensors).toBe(before + owned.length);
      for (const t of owned) t.dispose();
      expect(memory().tensors).toBe(before);
    }
  });

  it('conditions on σ or t through sinusoidal or Fourier embeddings', async () => {
    const x = randn([5, 2], { key: randomKey(3), ...f64 });
    const sigma = tensor([0.01, 0.1, 1, 10, 50], f64);
    for (const conditioning of ['sigma', 'time'] as const) {
      for (const embedding of ['sinusoidal', 'fourier'] as const) {
        const model = mlpScore({ inputDim: 2, hidden: [16], conditioning, embedding, embeddingDim: 8, key: randomKey(4), ...f64 });
        const cond = conditioning === 'sigma' ? sigma : tensor([0.1, 0.3, 0.5, 0.7, 0.9], f64);
        const s = model.score(x, cond);
        expect(s.shape).toEqual([5, 2]);
        expect(Object.keys(model.buffers)).toEqual(embedding === 'fourier' ? ['embedding.frequencies'] : []);
        // Different noise levels give different outputs at the same x.
        const same = model.score(concat([x.slice([0, 0], [1, 2]), x.slice([0, 0], [1, 2])], 0), cond.slice([0], [2]));
        const rows = await read(same);
        expect(rows[0]).not.toBeCloseTo(rows[2]!, 6);
      }
    }
    // sin(0) = 0 and cos(0) = 1 in every channel at c = 0.
    expect(await read(sinusoidalEmbedding(tensor([0], f64), 6))).toEqual([0, 0, 0, 1, 1, 1]);
    expect(await read(fourierEmbedding(tensor([0], f64).reshape([1, 1]), tensor([[3, 4]], f64)))).toEqual([0, 0, 1, 1]);
  });

  it('embeds noise levels of shape [N] or [N, 1] only, and says what else it was given', () => {
    // These failed inside reshape ("invalid shape [,1]"), matmul or a property read, naming
    // neither the embedding nor c; [2, 3] was reshaped to [2, 1] and refused only by its size.
    const w = tensor([[1, 2]]);
    const shape = (where: string, got: string) => `${where}: c must have shape [N] or [N, 1] (one noise level per row), got ${got}`;
    expect(() => sinusoidalEmbedding(tensor(0.5), 4)).toThrow(shape('sinusoidalEmbedding', '[]'));
    expect(() => sinusoidalEmbedding(tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3] }), 4)).toThrow(shape('sinusoidalEmbedding', '[2,3]'));
    expect(() => fourierEmbedding(tensor(0.5), w)).toThrow(shape('fourierEmbedding', '[]'));
    expect(() => sinusoidalEmbedding([1, 2] as never, 4)).toThrow('sinusoidalEmbedding: c must be a Tensor of shape [N] (one noise level per row), got an array');
    expect(() => sinusoidalEmbedding(tensor([1, 2], { dtype: 'int32' }), 4)).toThrow('sinusoidalEmbedding: c must be float32 or float64, got int32');
    expect(() => fourierEmbedding(tensor([0.5, 1]), tensor([1, 2]))).toThrow('fourierEmbedding: frequencies must be a Tensor of shape [1, dim/2], got [2]');
    expect(() => fourierEmbedding(tensor([0.5, 1], f64), w)).toThrow('fourierEmbedding: frequencies are float32 but c is float64; they must match');
  });

  it('scales its output by 1/σ or reads it as noise: s = net/σ, s = −ε̂/σ(t)', async () => {
    const x = randn([4, 3], { key: randomKey(5), ...f64 });
    const sigma = tensor([0.05, 0.5, 2, 20], f64);
    const opts = { inputDim: 3, hidden: [8], conditioning: 'sigma' as const, key: randomKey(6), ...f64 };
    const plain = await read(mlpScore(opts).score(x, sigma));
    const divided = await read(mlpScore({ ...opts, outputScaling: 'divideBySigma' }).score(x, sigma));
    const noise = await read(mlpScore({ ...opts, outputScaling: 'noisePrediction' }).score(x, sigma));
    const sig = await read(sigma);
    plain.forEach((v, i) => {
      expect(divided[i]).toBeCloseTo(v / sig[Math.floor(i / 3)]!, 12);
      expect(noise[i]).toBeCloseTo(-v / sig[Math.floor(i / 3)]!, 12);
    });
    // With time conditioning σ = sde.std(t).
    const sde = vpSde();
    const t = tensor([0.1, 0.4, 0.7, 1], f64);
    const timeOpts = { inputDim: 3, hidden: [8], conditioning: 'time' as const, key: randomKey(6), ...f64 };
    const base = await read(mlpScore(timeOpts).score(x, t));
    const eps = await read(mlpScore({ ...timeOpts, outputScaling: 'noisePrediction', sde }).score(x, t));
    const std = await read(sde.std(t));
    base.forEach((v, i) => expect(eps[i]).toBeCloseTo(-v / std[Math.floor(i / 3)]!, 12));
  });

  it('reports bad options and inputs clearly', () => {
    const key = randomKey(7);
    expect(() => mlpScore({ inputDim: 2, hidden: [4], activation: 'gelu' as never, key })).toThrow(/unknown activation "gelu" \(did you mean 'elu'\?\); expected one of 'silu', 'softplus', 'tanh', 'elu', 'relu'/);
    expect(() => mlpScore({ inputDim: 2, hidden: [4], outputScaling: 'divideBySigma', key })).toThrow(/needs a noise level/);
    expect(() => mlpScore({ inputDim: 2, hidden: [4], conditioning: 'time', outputScaling: 'divideBySigma', key })).toThrow(/needs the sde/);
    expect(() => mlpScore({ inputDim: 0, hidden: [4], key })).toThrow(/^mlpScore: inputDim must be an integer >= 1, got 0$/);
    // Accepted, these failed at the first score with "opts.sde.std is not a function".
    const timed = { inputDim: 2, hidden: [4], conditioning: 'time', outputScaling: 'noisePrediction', key } as const;
    expect(() => mlpScore({ ...timed, sde: {} as never })).toThrow('mlpScore: sde must be an Sde (from veSde(), vpSde() or subVpSde()), got an object without std(t)');
    expect(() => mlpScore({ ...timed, sde: 've' as never })).toThrow('mlpScore: sde must be an Sde (from veSde(), vpSde() or subVpSde()), got string');
    expect(() => mlpScore({ ...timed, sde: null as never })).toThrow('mlpScore: sde is null, which is not a value for it (an option left out, or undefined, takes its default)');
    const model = mlpScore({ inputDim: 2, hidden: [4], key });
    expect(() => model.score(randn([3], { key }))).toThrow(/x must have shape \[N, 2\], got \[3\]/);
    expect(() => model.score(randn([3, 4], { key }))).toThrow(/x must have shape \[N, 2\], got \[3,4\]/);
    const conditional = mlpScore({ inputDim: 2, hidden: [4], conditioning: 'sigma', key });
    expect(() => conditional.score(randn([3, 2], { key }))).toThrow(/conditioned on σ; pass cond of shape \[3\]/);
    expect(() => conditional.score(randn([3, 2], { key }), randn([2], { key }))).toThrow(/cond must have shape \[3\]/);
    // A batch of another dtype than the parameters was refused by matmul, naming neither the model nor x.
    const wide = { key, dtype: 'float64' } as const;
    expect(() => model.score(randn([3, 2], wide))).toThrow("mlpScore: x is float64 but the model's parameters are float32; pass x as float32 (x.cast('float32')) or build the model with dtype 'float64'");
    expect(() => conditional.score(randn([3, 2], wide), randn([3], wide))).toThrow("mlpScore: x is float64 but the model's parameters are float32");
    expect(() => mlpEnergy({ inputDim: 2, hidden: [4], key, ...f64 }).score(randn([3, 2], { key }))).toThrow("mlpEnergy: x is float32 but the model's parameters are float64");
    // An int32 x was told to "build the model with dtype 'int32'", which mlpScore refuses.
    expect(() => model.score(tensor([1, 2], { dtype: 'int32', shape: [1, 2] }))).toThrow(/^mlpScore: x must be float32 or float64, got int32$/);
    expect(() => mlpEnergy({ inputDim: 2, hidden: [4], key }).energy(tensor([1, 2], { dtype: 'int32', shape: [1, 2] }))).toThrow(/^mlpEnergy: x must be float32 or float64, got int32$/);
    // A params record that is not one failed as "Cannot read properties of null (reading 'layer0.weight')".
    expect(() => model.apply(null as never, randn([3, 2], { key }))).toThrow(/^mlpScore: params must be a record of tensors by name \(e\.g\. model\.params\), got null$/);
    expect(() => mlpEnergy({ inputDim: 2, hidden: [4], key }).applyEnergy(undefined as never, randn([3, 2], { key }))).toThrow(/^mlpEnergy: params must be a record of tensors by name/);
  });

  it('rejects a misspelled option, naming the closest valid one and all of them, and nonsense values', () => {
    const key = randomKey(7);
    const mlp = ['inputDim', 'hidden', 'activation', 'conditioning', 'embedding', 'embeddingDim', 'fourierScale', 'key', 'dtype', 'device'];
    expect(() => mlpScore({ inputDim: 2, hidden: [4], key, activaton: 'tanh' } as never)).toThrow(unknownOption('mlpScore', 'activaton', 'activation', [...mlp, 'outputScaling', 'sde']));
    // An energy model has no output scaling: the score's option is unknown to it.
    expect(() => mlpEnergy({ inputDim: 2, hidden: [4], key, outputScaling: 'none' } as never)).toThrow(unknownOption('mlpEnergy', 'outputScaling', null, mlp));
    expect(() => mlpScore({ inputDim: 2, hidden: [4, 0], key })).toThrow(/^mlpScore: hidden\[1\] must be an integer >= 1, got 0$/);
    expect(() => mlpScore({ inputDim: 2, hidden: [4], conditioning: 'sigma', fourierScale: 0, key })).toThrow(/^mlpScore: fourierScale must be a finite number > 0, got 0$/);
    expect(() => mlpScore({ inputDim: 2, hidden: [4] } as never)).toThrow(/^mlpScore: opts.key: a key is two unsigned 32-bit integers/);
  });

  it('refuses embedding settings the model would not use, as the samplers refuse theirs', () => {
    // Each was accepted and ignored: an unconditional model has no embedding, a sinusoidal one no
    // random frequencies (embeddingDim 3, odd, was not even checked).
    const key = randomKey(7);
    const none = 'set the noise-level embedding, which an unconditional model \\(conditioning \'none\'\\) does not have';
    expect(() => mlpScore({ inputDim: 2, hidden: [4], key, embeddingDim: 3 })).toThrow(/^mlpScore: embeddingDim sets the noise-level embedding, which an unconditional model \(conditioning 'none'\) does not have; set conditioning to 'sigma' or 'time', or leave it out$/);
    expect(() => mlpEnergy({ inputDim: 2, hidden: [4], key, embedding: 'fourier', fourierScale: 4 })).toThrow(new RegExp(`^mlpEnergy: embedding, fourierScale ${none}; .* leave them out$`));
    expect(() => mlpScore({ inputDim: 2, hidden: [4], key, conditioning: 'time', fourierScale: 4 })).toThrow(/^mlpScore: fourierScale sets the Fourier features' frequencies; the sinusoidal embedding has fixed ones/);
    expect(() => mlpScore({ inputDim: 2, hidden: [4], key, conditioning: 'sigma', embedding: 'sinusoidal', fourierScale: 4 })).toThrow(/^mlpScore: fourierScale sets the Fourier features' frequencies/);
    // Used, they are accepted.
    expect(mlpScore({ inputDim: 2, hidden: [4], key, conditioning: 'time', embedding: 'fourier', fourierScale: 4, embeddingDim: 8 }).buffers['embedding.frequencies']!.shape).toEqual([1, 4]);
    // An sde nothing reads (σ conditioning, or no output scaling) was accepted and ignored.
    const sde = vpSde();
    const unread = (conditioning: string, scaling: string) => `mlpScore: sde sets σ(t) for the output scaling of a time-conditioned model; this one has conditioning '${conditioning}' and outputScaling '${scaling}', which do not read it`;
    expect(() => mlpScore({ inputDim: 2, hidden: [4], key, sde })).toThrow(unread('none', 'none'));
    expect(() => mlpScore({ inputDim: 2, hidden: [4], key, conditioning: 'sigma', outputScaling: 'divideBySigma', sde })).toThrow(unread('sigma', 'divideBySigma'));
    expect(() => mlpScore({ inputDim: 2, hidden: [4], key, conditioning: 'time', sde })).toThrow(unread('time', 'none'));
    expect(mlpScore({ inputDim: 2, hidden: [4], key, conditioning: 'time', outputScaling: 'divideBySigma', sde }).conditioning).toBe('time');
  });

  it('refuses an embedding width that is odd or below 2, in the embedding and in the model', () => {
    const c = tensor([0.5, 1], f64);
    for (const dim of [0, 3]) {
      expect(() => sinusoidalEmbedding(c, dim)).toThrow(`sinusoidalEmbedding: embedding dimension must be an even integer >= 2, got ${dim}`);
      for (const embedding of ['sinusoidal', 'fourier'] as const) {
        expect(() => mlpScore({ inputDim: 2, hidden: [4], conditioning: 'sigma', embedding, embeddingDim: dim, key: randomKey(1) }))
          .toThrow(`mlpScore: embedding dimension must be an even integer >= 2, got ${dim}`);
      }
    }
  });

  it('the embedding is 32 wide by default: 16 Fourier frequencies, 32 extra inputs to the first layer', () => {
    for (const conditioning of ['sigma', 'time'] as const) {
      const model = mlpScore({ inputDim: 3, hidden: [5], conditioning, key: randomKey(1) });
      expect(model.params['layer0.weight']!.shape).toEqual([3 + 32, 5]);
      if (conditioning === 'sigma') expect(model.buffers['embedding.frequencies']!.shape).toEqual([1, 16]);
    }
  });

  it('names the model in what it refuses: hidden as a number or with a hole, an unknown device, a missing or disposed parameter', () => {
    const key = randomKey(8);
    expect(() => mlpScore({ inputDim: 2, hidden: 64 as never, key })).toThrow(/^mlpScore: hidden must be an array of layer widths, e.g. \[64, 64\], got 64$/);
    // forEach skipped the hole, which reached randn: "shape must be an array of non-negative integers, got [4,null]".
    // eslint-disable-next-line no-sparse-arrays
    expect(() => mlpScore({ inputDim: 2, hidden: [4, , 4] as never, key })).toThrow(/^mlpScore: hidden\[1\] must be an integer >= 1, got undefined$/);
    const before = memory().tensors;
    expect(() => mlpEnergy({ inputDim: 2, hidden: [4], device: 'tpu', key })).toThrow(/^mlpEnergy: unknown device 'tpu'; registered devices: cpu/);
    expect(memory().tensors).toBe(before);
    const model = mlpScore({ inputDim: 2, hidden: [4], conditioning: 'sigma', key });
    const x = randn([3, 2], { key });
    const sigma = tensor([1, 2, 3]);
    const { ['out.bias']: _, ...rest } = model.params;
    expect(() => model.apply(rest, x, sigma)).toThrow(/^mlpScore: parameter 'out.weight' or 'out.bias' is missing from the params record$/);
    model.params['layer0.bias']!.dispose();
    expect(() => model.score(x, sigma)).toThrow(/^mlpScore: parameter 'layer0.bias' was disposed \(by model.dispose\(\), dispose\(\) or tidy\(\)\) and cannot be used$/);
    // After model.dispose() the frequencies are the first thing read: "fourierEmbedding: ... was disposed" named neither.
    model.dispose();
    expect(() => model.score(x, sigma)).toThrow(/^mlpScore: buffer 'embedding.frequencies' was disposed/);
    const linear = mlpEnergy({ inputDim: 2, hidden: [], key });
    linear.dispose();
    expect(() => linear.energy(x)).toThrow(/^mlpEnergy: parameter 'out.weight' was disposed/);
  });

  it('a model without hidden layers is one linear map, and names a batch of the wrong dtype', () => {
    const model = mlpScore({ inputDim: 2, hidden: [], key: randomKey(6) });
    expect(Object.keys(model.params)).toEqual(['out.weight', 'out.bias']);
    expect(() => model.score(randn([3, 2], { key: randomKey(7), ...f64 }))).toThrow("mlpScore: x is float64 but the model's parameters are float32; pass x as float32 (x.cast('float32')) or build the model with dtype 'float64'");
  });

  it('refuses a cond passed to an unconditional model (it was ignored), a cond column [N, 1] and a cond of another dtype than x', () => {
    const x = randn([3, 2], { key: randomKey(11), ...f64 });
    const plain = mlpScore({ inputDim: 2, hidden: [4], key: randomKey(10), ...f64 });
    expect(() => plain.score(x, tensor([1, 2, 3], f64))).toThrow(/^mlpScore: this model is unconditional \(conditioning 'none'\) but a cond tensor was passed$/);
    const conditional = mlpScore({ inputDim: 2, hidden: [4], conditioning: 'sigma', key: randomKey(10), ...f64 });
    expect(() => conditional.score(x, tensor([[1], [2], [3]], f64))).toThrow(/^mlpScore: cond must have shape \[3\] \(one σ per row of x\), got \[3,1\]$/);
    expect(() => conditional.score(x, tensor([1, 2, 3]))).toThrow(/^mlpScore: cond is float32 but x is float64; they must match$/);
  });
});

describe('mlpEnergy', () => {
  it('has score −∇ₓE, checked against central differences of E', async () => {
    // Central differences with h = 1e-5 in float64: truncation h²|E'''|/6 ≈ 2e-11 for O(1)
    // derivatives, roundoff u|E|/h ≈ 1e-11; the tolerance 1e-8 bounds both with room to spare.
    const model = mlpEnergy({ inputDim: 3, hidden: [16, 16], activation: 'silu', key: randomKey(8), ...f64 });
    const x = randn([4, 3], { key: randomKey(9), ...f64 });
    const s = await read(model.score(x));
    const xs = await read(x);
    const h = 1e-5;
    for (let i = 0; i < 4; i++) {
      for (let k = 0; k < 3; k++) {
        const shifted = (delta: number) => {
          const copy = xs.slice();
          copy[i * 3 + k]! += delta;
          return model.energy(tensor(copy, { ...f64, shape: [4, 3] })).dataSync()[i]!;
        };
        const fd = (shifted(h) - shifted(-h)) / (2 * h);
        expect(Math.abs(s[i * 3 + k]! + fd)).toBeLessThan(1e-8);
      }
    }
    expect(model.energy(x).shape).toEqual([4]);
  });

  it('names a batch that is no Tensor, as the score model does', () => {
    const energy = mlpEnergy({ inputDim: 2, hidden: [4], key: randomKey(11) });
    expect(() => energy.score([[1, 2]] as never)).toThrow(/^mlpEnergy: x must be a Tensor of shape \[N, 2\]$/);
  });

  it('energyScore refuses an energy that is not a function when it is made, not at its first score', () => {
    expect(() => energyScore(3 as never)).toThrow(/^energyScore: energy must be a function \(x \[N, d\], cond\?\) => \[N\], got number$/);
    expect(() => energyScore(null as never)).toThrow(/^energyScore: energy must be a function .*, got null$/);
  });

  it('energyHessianTrace equals the trace of the Hessian of E', async () => {
    // Same second derivatives, summed in a different order: equal to float64 roundoff.
    const model = mlpEnergy({ inputDim: 3, hidden: [8], activation: 'tanh', key: randomKey(21), ...f64 });
    const x = randn([3, 3], { key: randomKey(22), ...f64 });
    const traces = await read(energyHessianTrace((z) => model.energy(z), x));
    for (let i = 0; i < 3; i++) {
      const row = reshape(x.slice([i, 0], [1, 3]), [3]);
      const h = await read(hessian((z: Tensor) => model.energy(reshape(z, [1, 3])).sum())(row));
      expect(Math.abs(traces[i]! - (h[0]! + h[4]! + h[8]!))).toBeLessThan(1e-12);
    }
  });

  it('ReLU energies have a zero Hessian trace, so ISM cannot learn them', async () => {
    const model = mlpEnergy({ inputDim: 2, hidden: [16], activation: 'relu', key: randomKey(10), ...f64 });
    const x = randn([8, 2], { key: randomKey(11), ...f64 });
    expect(await read(scoreJacobianTrace(model.score, x))).toEqual(new Array(8).fill(0));
  });
});

describe('the exact Jacobian trace', () => {
  const x = randn([6, 3], { key: randomKey(12), ...f64 });
  const cond = tensor([0.1, 0.2, 0.5, 1, 2, 5], f64);
  const cases: [string, (z: Tensor, c?: Tensor) => Tensor, Tensor | undefined][] = [
    ['MLP score', mlpScore({ inputDim: 3, hidden: [16, 16], activation: 'elu', key: randomKey(13), ...f64 }).score, undefined],
    ['σ-conditional MLP score', mlpScore({ inputDim: 3, hidden: [16], conditioning: 'sigma', outputScaling: 'divideBySigma', key: randomKey(14), ...f64 }).score, cond],
    ['MLP energy (Hessian trace)', mlpEnergy({ inputDim: 3, hidden: [16, 16], activation: 'softplus', key: randomKey(15), ...f64 }).score, undefined],
  ];
  it.each(cases)('%s: batched JVPs = a loop of d JVPs = tr(jacobian)', async (_label, score, c) => {
    // The same derivatives summed in different orders: equal to float64 roundoff.
    const batched = await read(scoreJacobianTrace(score, x, { cond: c }));
    const looped = await read(scoreJacobianTrace(score, x, { cond: c, method: 'loop' }));
    const viaJacobian = await traceViaJacobian(score, x, c);
    batched.forEach((v, i) => {
      expect(Math.abs(v - looped[i]!)).toBeLessThan(1e-12 * Math.max(1, Math.abs(v)));
      expect(Math.abs(v - viaJacobian[i]!)).toBeLessThan(1e-12 * Math.max(1, Math.abs(v)));
    });
    const ismBatched = await read(implicitScoreMatchingLoss(score, x, { cond: c }));
    const ismLooped = await read(implicitScoreMatchingLoss(score, x, { cond: c, method: 'loop' }));
    expect(Math.abs(ismBatched[0]! - ismLooped[0]!)).toBeLessThan(1e-12);
  });

  it('differentiates ISM of an energy model in θ, functionally and with backward()', async () => {
    // ∇_θ of a loss holding −tr ∇²ₓE_θ: reverse over forward over reverse. Both routes run the
    // same rules, so they agree to roundoff.
    const model = mlpEnergy({ inputDim: 3, hidden: [8], activation: 'tanh', key: randomKey(16), ...f64 });
    const names = Object.keys(model.params);
    const loss = (...ps: Tensor[]) => implicitScoreMatchingLoss(model.bind(Object.fromEntries(names.map((n, i) => [n, ps[i]!]))), x);
    const functional = grad(loss, { argnums: names.map((_, i) => i) })(...Object.values(model.params)) as Tensor[];
    for (const p of Object.values(model.params)) p.requiresGrad = true;
    implicitScoreMatchingLoss(model.score, x).backward();
    for (const [i, p] of Object.values(model.params).entries()) {
      const a = await read(functional[i]!);
      if (names[i] === 'out.bias') {
        // E's constant offset does not change ∇ₓE: no gradient reaches it (null, as PyTorch).
        expect(a.every((v) => v === 0)).toBe(true);
        expect(p.grad).toBeNull();
      } else {
        const b = await read(p.grad!);
        a.forEach((v, j) => expect(Math.abs(v - b[j]!)).toBeLessThan(1e-12 * Math.max(1, Math.abs(v))));
        expect(a.some((v) => v !== 0)).toBe(true);
      }
      p.requiresGrad = false;
    }
  });
});

describe('saveParams / loadParamsInto', () => {
  it('round-trips float32 and float64 exactly, special values included', async () => {
    const special = [NaN, Infinity, -Infinity, -0, 0, 1e-45, 3.4028234663852886e38, 0.1, -1 / 3];
    for (const dtype of ['float32', 'float64'] as const) {
      const model = mlpScore({ inputDim: 2, hidden: [5], conditioning: 'sigma', embedding: 'fourier', embeddingDim: 4, key: randomKey(17), dtype });
      const params: Params = { ...model.params, ...model.buffers, special: tensor(special, { dtype }) };
      const json = await saveParams(params);
      const loaded: Params = Object.fromEntries(Object.entries(params).map(([name, t]) => [name, t.mul(0)]));
      loadParamsInto(loaded, json);
      for (const [name, t] of Object.entries(params)) {
        const back = loaded[name]!;
        expect(back.dtype).toBe(dtype);
        expect(back.shape).toEqual(t.shape);
        const [a, b] = [await read(t), await read(back)];
        a.forEach((v, i) => expect(Object.is(v, b[i])).toBe(true));
      }
    }
  });

  it('keeps a NaN a NaN but not its sign or payload: every NaN loads as the quiet NaN (as saveParams says)', async () => {
    // A float32 NaN with payload 1, a negative quiet NaN, and the float64 counterparts.
    const f32 = new Float32Array(2);
    new Uint32Array(f32.buffer).set([0x7fc00001, 0xffc00000]);
    const f64 = new Float64Array(2);
    new BigUint64Array(f64.buffer).set([0x7ff8000000000001n, 0xfff8000000000000n]);
    const saved = { a: tensor(f32, { shape: [2] }), b: tensor(f64, { dtype: 'float64', shape: [2] }) };
    const json = await saveParams(saved);
    expect(JSON.parse(json).tensors.a.data).toEqual(['NaN', 'NaN']);
    const target = { a: tensor([0, 0]), b: tensor([0, 0], { dtype: 'float64' }) };
    loadParamsInto(target, json);
    expect([...new Uint32Array((await target.a.data() as Float32Array).slice().buffer)]).toEqual([0x7fc00000, 0x7fc00000]);
    expect([...new BigUint64Array((await target.b.data() as Float64Array).slice().buffer)]).toEqual([0x7ff8000000000000n, 0x7ff8000000000000n]);
  });

  it('loads into an existing model in place, and rejects mismatches', async () => {
    const source = mlpScore({ inputDim: 2, hidden: [6], key: randomKey(18) });
    const target = mlpScore({ inputDim: 2, hidden: [6], key: randomKey(19) });
    const x = randn([3, 2], { key: randomKey(20) });
    const json = await saveParams(source.params);
    const weightBefore = target.params['out.weight'];
    loadParamsInto(target.params, json);
    expect(target.params['out.weight']).toBe(weightBefore); // same tensor object, new values
    expect(await read(target.score(x))).toEqual(await read(source.score(x)));
    const wider = mlpScore({ inputDim: 2, hidden: [7], key: randomKey(18) });
    expect(() => loadParamsInto(wider.params, json)).toThrow(/'layer0.weight' is saved as float32 \[2,6\] but the target is float32 \[2,7\]/);
    expect(() => loadParamsInto(target.params, '{"format":"other"}')).toThrow(/^loadParamsInto: expected an object with format 'scorch-params\/v1'/);
    expect(() => loadParamsInto(target.params, 'not json')).toThrow(/^loadParamsInto: not valid JSON/);
  });

  it('refuses names the target lacks: a deeper model does not load into a shallower one', async () => {
    // layer0 [2,6] and out [6,2] exist in both models; the deeper one's layer1 has nowhere to go.
    const deep = mlpScore({ inputDim: 2, hidden: [6, 6], key: randomKey(18) });
    const shallow = mlpScore({ inputDim: 2, hidden: [6], key: randomKey(19) });
    const before = await Promise.all(Object.values(shallow.params).map(read));
    const saved = await saveParams(deep.params);
    expect(() => loadParamsInto(shallow.params, saved)).toThrow(
      /^loadParamsInto: the saved parameters hold 'layer1.weight', 'layer1.bias', not in the target \(target: layer0.weight, layer0.bias, out.weight, out.bias\)$/,
    );
    expect(await Promise.all(Object.values(shallow.params).map(read))).toEqual(before);
  });

  it('changes nothing when any target cannot take its value, and reads names literally', async () => {
    const saved = await saveParams({ a: tensor([1, 2]), b: tensor([3]) });
    const a = tensor([9, 9]);
    const b = tensor([9]);
    b.dispose();
    expect(() => loadParamsInto({ a, b }, saved)).toThrow(/^loadParamsInto: target 'b' was disposed$/);
    expect(() => loadParamsInto({ a, b: [3] as never }, saved)).toThrow(/^loadParamsInto: target 'b' is not a Tensor$/);
    expect(await read(a)).toEqual([9, 9]);
    // 'toString' is no saved entry (the record has no prototype), and '__proto__' is one.
    expect(() => loadParamsInto({ a, b: tensor([9]), toString: tensor([0]) }, saved)).toThrow(/^loadParamsInto: 'toString' is not in the saved parameters \(saved: a, b\)$/);
    const withProto = saved.replace('"tensors":{', '"tensors":{"__proto__":{"dtype":"float32","shape":[1],"data":[5]},');
    expect(() => loadParamsInto({ a, b: tensor([9]) }, withProto)).toThrow(/^loadParamsInto: the saved parameters hold '__proto__', not in the target/);
  });

  it('refuses a Map, a Tensor or a disposed parameter by name, and saves a parameter named __proto__', async () => {
    // A Map was saved as {} and loaded as nothing, without a word.
    const map = new Map([['w', tensor([1])]]);
    await expect(saveParams(map as never)).rejects.toThrow(/^saveParams: params must be a record of tensors by name \(e\.g\. model\.params\), got a Map; convert it with Object\.fromEntries\(map\)$/);
    const savedW = await saveParams({ w: tensor([2]) });
    expect(() => loadParamsInto(map as never, savedW)).toThrow(/^loadParamsInto: .* got a Map/);
    await expect(saveParams(tensor([1]) as never)).rejects.toThrow(/got a Tensor; name it/);
    const gone = tensor([1]);
    gone.dispose();
    // Was 'data: tensor [1] float32 was disposed ...', naming neither saveParams nor the parameter.
    await expect(saveParams({ a: tensor([1]), b: gone })).rejects.toThrow(/^saveParams: 'b' was disposed$/);
    // An own '__proto__' was dropped by the saver (an assignment on {} set the prototype).
    const own = (t: Tensor) => Object.defineProperty({}, '__proto__', { value: t, enumerable: true, writable: true, configurable: true }) as Params;
    const target = own(tensor([0]));
    loadParamsInto(target, await saveParams(own(tensor([7]))));
    expect(await read(target['__proto__']!)).toEqual([7]);
  });

  it('refuses a malformed entry, a float32 entry holding a value float32 cannot hold, and a number beyond the double range', async () => {
    const file = (entry: unknown) => JSON.stringify({ format: 'scorch-params/v1', tensors: { w: entry } });
    const w = () => ({ w: tensor([0]) });
    expect(() => loadParamsInto(w(), file(null))).toThrow(/^loadParamsInto: 'w': expected \{ dtype, shape, data \}, got null$/);
    expect(() => loadParamsInto(w(), file({ dtype: 'float32', shape: [1], data: '1' }))).toThrow(/^loadParamsInto: 'w': data must be an array of 1 values$/);
    // Written by hand or from float64 values: 0.1 would round, 1e39 become Infinity.
    expect(() => loadParamsInto(w(), file({ dtype: 'float32', shape: [1], data: [0.1] }))).toThrow(/^loadParamsInto: 'w': value 0.1 at index 0 is not a float32 value \(saved as float32\)$/);
    expect(() => loadParamsInto(w(), file({ dtype: 'float32', shape: [1], data: [1e39] }))).toThrow(/value 1e\+39 at index 0 is not a float32 value/);
    expect(() => loadParamsInto(w(), JSON.stringify({ format: 'scorch-params/v1', tensors: [] }))).toThrow(/^loadParamsInto: the tensors record is an array/);
    // A number literal beyond the double range parses as ±Infinity; saveParams never writes one
    // (it writes 'Infinity'), so it was loaded as an infinity without a word, in either dtype.
    for (const [dtype, literal, read] of [['float64', '1e400', 'Infinity'], ['float32', '-1e999', '-Infinity']] as const) {
      const target = { w: tensor([7, 7], { dtype }) };
      const text = `{"format":"scorch-params/v1","tensors":{"w":{"dtype":"${dtype}","shape":[2],"data":[1,${literal}]}}}`;
      expect(() => loadParamsInto(target, text)).toThrow(`loadParamsInto: 'w': the number at index 1 is beyond the float64 range (read as ${read}); an infinity is saved as the string '${read}'`);
    }
    const saved = file({ dtype: 'float64', shape: [2], data: ['Infinity', '-Infinity'] });
    const target = { w: tensor([7, 7], f64) };
    loadParamsInto(target, saved);
    expect(await read(target.w)).toEqual([Infinity, -Infinity]);
  });

  it('refuses a params record that is null or an array, and JSON that is not text, saying what was given', async () => {
    const json = await saveParams({ w: tensor([1]) });
    // These threw "Cannot convert undefined or null to object", or saved an array as names '0', '1'.
    await expect(saveParams(null as never)).rejects.toThrow('saveParams: params must be a record of tensors by name (e.g. model.params), got null');
    await expect(saveParams([tensor([1])] as never)).rejects.toThrow('saveParams: params must be a record of tensors by name (e.g. model.params), got an array');
    expect(() => loadParamsInto(null as never, json)).toThrow('loadParamsInto: the target must be a record of tensors by name (e.g. model.params), got null');
    expect(() => loadParamsInto([tensor([0])] as never, json)).toThrow('loadParamsInto: the target must be a record of tensors by name (e.g. model.params), got an array');
    // The parsed object is not the text: it said 'not valid JSON ("[object Object]" is not valid JSON)'.
    expect(() => loadParamsInto({ w: tensor([0]) }, JSON.parse(json))).toThrow('loadParamsInto: expected the JSON text saveParams returned, got object');
  });

  it('round-trips a large float64 tensor and float64 subnormals exactly', async () => {
    const values = [5e-324, -5e-324, 2.2250738585072009e-308, 1.7976931348623157e308, 1 / 3];
    const params: Params = { big: randn([500, 400], { key: randomKey(24), ...f64 }), small: tensor(values, f64) };
    const target: Params = { big: randn([500, 400], { key: randomKey(25), ...f64 }), small: tensor([0, 0, 0, 0, 0], f64) };
    loadParamsInto(target, await saveParams(params));
    expect(await read(target.big!)).toEqual(await read(params.big!));
    expect(await read(target.small!)).toEqual(values);
  });
});

onEachDevice('a model saved and loaded on its device', (device) => {
  it('trains and samples where it was created: loadParamsInto uploads each value to its target\'s device', async () => {
    const on = { dtype: 'float32', device } as const;
    const source = mlpScore({ inputDim: 2, hidden: [6], conditioning: 'sigma', embeddingDim: 4, key: randomKey(21), ...on });
    const target = mlpScore({ inputDim: 2, hidden: [6], conditioning: 'sigma', embeddingDim: 4, key: randomKey(22), ...on });
    for (const t of [...Object.values(target.params), ...Object.values(target.buffers)]) expect(t.device).toBe(device);
    const json = await saveParams({ ...source.params, ...source.buffers });
    loadParamsInto({ ...target.params, ...target.buffers }, json);
    for (const t of Object.values(target.params)) expect(t.device).toBe(device);
    const x = randn([3, 2], { key: randomKey(23), ...on });
    const sigma = tensor([0.1, 0.5, 1], on);
    // The same float32 values through the same ops on one device: bit-identical outputs.
    expect(await read(target.score(x, sigma))).toEqual(await read(source.score(x, sigma)));
  });

  it('saves the values of the moment it is called, while another loop updates the params in place', async () => {
    // saveParams awaited each tensor's read before asking for the next: a training loop beside
    // it (Promise.all, or a timer) updated the later tensors first, so the file mixed two steps.
    const params = { a: tensor([1, 2], { device }), b: tensor([3], { device }), c: tensor([4, 5, 6], { device }) };
    const saving = saveParams(params);
    // A step of the other loop, run while the first read is pending.
    params.a.assign(tensor([10, 20], { device }));
    params.b.assign(tensor([30], { device }));
    params.c.assign(tensor([40, 50, 60], { device }));
    const saved = JSON.parse(await saving) as { tensors: Record<string, { data: number[] }> };
    expect(Object.fromEntries(Object.entries(saved.tensors).map(([name, entry]) => [name, entry.data]))).toEqual({ a: [1, 2], b: [3], c: [4, 5, 6] });
  });
});


describe('embeddings, initialisation and loading, by value', () => {
  // The other embedding checks are at c = 0 (any frequency gives sin 0 and cos 1) or only ask
  // that two levels differ; these pin the frequencies, the embedded scalar and the scale.
  it('sinusoidalEmbedding equals DDPM\'s get_timestep_embedding (Ho et al. 2020; values from PyTorch)', async () => {
    const want = [
      0.8414709848078965, 0.04639922346473126, 0.0021544330233656027, 9.999999983333325e-05, 0.5403023058681398, 0.9989229760406304, 0.9999976792064809, 0.999999995,
      -0.5440211108893698, 0.4476708347189571, 0.021542680272331638, 0.0009999998333333408, -0.8390715290764524, 0.8941984252625544, 0.9997679295349916, 0.9999995000000417,
    ];
    const got = await read(sinusoidalEmbedding(tensor([1, 10], f64), 8));
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-15));
  });

  it('sinusoidalEmbedding of width 2 has the single frequency ω₀ = 10000⁰ = 1: [sin c, cos c]', async () => {
    const got = await read(sinusoidalEmbedding(tensor([1, 10], f64), 2));
    // c·1 is exact; sin and cos are each within a few float64 ulps of values ≤ 1.
    [Math.sin(1), Math.cos(1), Math.sin(10), Math.cos(10)].forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThanOrEqual(1e-15));
  });

  it('fourierEmbedding is [sin 2πcW, cos 2πcW] (Song et al. 2021, GaussianFourierProjection)', async () => {
    const got = await read(fourierEmbedding(tensor([0.25], f64), tensor([[1, 0.5]], f64)));
    [1, Math.SQRT1_2, 0, Math.SQRT1_2].forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThanOrEqual(1e-15));
  });

  it('the model embeds log σ (Fourier) and 999·t (sinusoidal), as a hand-written forward pass', async () => {
    const x = randn([3, 2], { key: randomKey(1), ...f64 });
    const forward = (p: Record<string, Tensor>, h: Tensor) => matmul(matmul(h, p['layer0.weight']!).add(p['layer0.bias']!).tanh(), p['out.weight']!).add(p['out.bias']!);
    const sigma = tensor([0.1, 1, 5], f64);
    const ms = mlpScore({ inputDim: 2, hidden: [8], activation: 'tanh', conditioning: 'sigma', embedding: 'fourier', embeddingDim: 4, key: randomKey(2), ...f64 });
    expect(await read(ms.score(x, sigma))).toEqual(await read(forward(ms.params, concat([x, fourierEmbedding(log(sigma), ms.buffers['embedding.frequencies']!)], 1))));
    const t = tensor([0.1, 0.5, 0.9], f64);
    const mt = mlpScore({ inputDim: 2, hidden: [8], activation: 'tanh', conditioning: 'time', embedding: 'sinusoidal', embeddingDim: 4, key: randomKey(3), ...f64 });
    const want = await read(forward(mt.params, concat([x, sinusoidalEmbedding(t.mul(999), 4)], 1)));
    // The same operations in another association order: a few float64 roundings of O(1) values.
    (await read(mt.score(x, t))).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-13));
    // The other two pairings: log σ through the sinusoidal embedding, t (not 999·t) through Fourier features.
    const ss = mlpScore({ inputDim: 2, hidden: [8], activation: 'tanh', conditioning: 'sigma', embedding: 'sinusoidal', embeddingDim: 4, key: randomKey(4), ...f64 });
    const wantS = await read(forward(ss.params, concat([x, sinusoidalEmbedding(log(sigma), 4)], 1)));
    (await read(ss.score(x, sigma))).forEach((v, i) => expect(Math.abs(v - wantS[i]!)).toBeLessThanOrEqual(1e-13));
    const tf = mlpScore({ inputDim: 2, hidden: [8], activation: 'tanh', conditioning: 'time', embedding: 'fourier', embeddingDim: 4, key: randomKey(5), ...f64 });
    const wantT = await read(forward(tf.params, concat([x, fourierEmbedding(t, tf.buffers['embedding.frequencies']!)], 1)));
    (await read(tf.score(x, t))).forEach((v, i) => expect(Math.abs(v - wantT[i]!)).toBeLessThanOrEqual(1e-13));
  });

  it('silu, softplus and elu hidden layers are LeCun-normal (variance 1/fan_in), as tanh', async () => {
    for (const activation of ['silu', 'softplus', 'elu'] as const) {
      const w = await read(mlpScore({ inputDim: 2, hidden: [400, 8], activation, key: randomKey(2) }).params['layer1.weight']!);
      // 3200 iid N(0, 1/400) draws: the sample variance has SE = var·√(2/(n−1)); within 4 SE.
      const variance = w.reduce((a, v) => a + v * v, 0) / w.length;
      expect(Math.abs(variance - 1 / 400), activation).toBeLessThan(4 * (1 / 400) * Math.sqrt(2 / (w.length - 1)));
    }
  });

  it('every bias starts at zero, the output layer\'s included, and each layer draws its own weights', async () => {
    const model = mlpScore({ inputDim: 3, hidden: [5, 4], conditioning: 'sigma', embeddingDim: 4, key: randomKey(3) });
    for (const name of ['layer0.bias', 'layer1.bias', 'out.bias']) {
      expect(await read(model.params[name]!), name).toEqual(new Array(model.params[name]!.shape[0]).fill(0));
    }
    // Two [64, 64] weight matrices: 4096 pairs, sample correlation ≈ N(0, 1/n) when independent; 4 SE.
    const m = mlpScore({ inputDim: 64, hidden: [64], key: randomKey(4), ...f64 });
    const [a, b] = [await read(m.params['layer0.weight']!), await read(m.params['out.weight']!)];
    const dot = (u: number[], v: number[]) => u.reduce((s, x, i) => s + x * v[i]!, 0);
    expect(Math.abs(dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b)))).toBeLessThan(4 / Math.sqrt(a.length));
  });

  it('with ReLU the output layer is LeCun-normal (variance 1/fan_in), not He-normal like the hidden ones', async () => {
    const w = await read(mlpScore({ inputDim: 2, hidden: [400], activation: 'relu', key: randomKey(7) }).params['out.weight']!);
    // 800 draws: within 4 standard errors of the variance, 4·σ²·√(2/(n−1)).
    const variance = w.reduce((a, v) => a + v * v, 0) / w.length;
    expect(Math.abs(variance - 1 / 400)).toBeLessThan(4 * (1 / 400) * Math.sqrt(2 / (w.length - 1)));
  });

  it('Fourier frequencies are N(0, 16²) (Song et al. 2021\'s scale) and independent of the layer weights', async () => {
    const m = mlpScore({ inputDim: 1, hidden: [1024], conditioning: 'sigma', embedding: 'fourier', embeddingDim: 2048, key: randomKey(9), ...f64 });
    const f = await read(m.buffers['embedding.frequencies']!);
    const variance = f.reduce((a, v) => a + v * v, 0) / f.length;
    expect(Math.abs(variance - 256)).toBeLessThan(4 * 256 * Math.sqrt(2 / (f.length - 1)));
    const w = (await read(m.params['layer0.weight']!)).slice(0, f.length);
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
    // Independent draws: the sample correlation is about N(0, 1/n); 4 standard errors.
    expect(Math.abs(dot(f, w) / Math.sqrt(dot(f, f) * dot(w, w)))).toBeLessThan(4 / Math.sqrt(f.length));
    // And of the output layer's: with no hidden layer out.weight is [1 + 512, 1]; 256 frequencies against its first 256.
    const e = mlpScore({ inputDim: 1, hidden: [], conditioning: 'sigma', embedding: 'fourier', embeddingDim: 512, key: randomKey(5), ...f64 });
    const g = await read(e.buffers['embedding.frequencies']!);
    const o = (await read(e.params['out.weight']!)).slice(0, g.length);
    expect(Math.abs(dot(g, o) / Math.sqrt(dot(g, g) * dot(o, o)))).toBeLessThan(4 / Math.sqrt(g.length));
  });

  it('loadParamsInto leaves no tensor behind: the uploaded values are freed once assigned', async () => {
    const model = mlpScore({ inputDim: 2, hidden: [4], conditioning: 'sigma', key: randomKey(12) });
    const json = await saveParams({ ...model.params, ...model.buffers });
    const before = memory();
    loadParamsInto({ ...model.params, ...model.buffers }, json);
    expect(memory()).toEqual(before);
  });

  it('loadParamsInto matches parameters by name, not by position', async () => {
    const json = await saveParams({ a: tensor([1, 2], f64), b: tensor([3, 4], f64) });
    const target = { b: tensor([0, 0], f64), a: tensor([0, 0], f64) };
    loadParamsInto(target, json);
    expect(await read(target.a)).toEqual([1, 2]);
    expect(await read(target.b)).toEqual([3, 4]);
  });
});

describe('dispose', () => {
  it('frees the parameters and the buffers a model made, for both kinds; a second call does nothing', () => {
    const before = memory();
    const score = mlpScore({ inputDim: 2, hidden: [8], conditioning: 'sigma', key: randomKey(5) });
    const energy = mlpEnergy({ inputDim: 2, hidden: [8], conditioning: 'sigma', key: randomKey(6) });
    expect(Object.keys(score.buffers)).toEqual(['embedding.frequencies']);
    expect(memory().tensors - before.tensors).toBe(2 * (Object.keys(score.params).length + 1));
    for (const model of [score, energy]) {
      model.dispose();
      model.dispose();
      for (const t of [...Object.values(model.params), ...Object.values(model.buffers)]) expect(t.isDisposed).toBe(true);
    }
    expect(memory()).toEqual(before);
  });
});
