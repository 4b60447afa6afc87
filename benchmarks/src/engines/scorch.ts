// scorch's side of every workload, written with the public API the way a user would: `mlpScore`,
// the losses of @scorch/score, `adam` and `trainingStep` (the step `train` runs, compiled with jit)
// for a training step, the update of `annealedLangevinDynamics` compiled once, `hvp` under `jit`. The same
// code runs on the CPU and on WebGPU (the device is the only difference); on WebGPU each step's
// dispatches and submits are counted from the runtime.
//
// Also the reference every engine is checked against: the same workloads in float64 on scorch's
// CPU backend, from the same float32 inputs, written from the formulas (given projections and
// noise instead of keys; the ISM trace by d separate JVPs; the HVP reverse-over-reverse; Adam's
// first step on the host), so the check does not rest on the code it checks.

import { grad, hvp, jit, jvp, valueAndGrad, vjp } from '@scorch/autograd';
import { initWebGPU, type WebGPUHandle } from '@scorch/kernels';
import {
  type RandomKey, type Tensor, add, conv2d, cpuKernelInfo, setCpuFastMath, setCpuThreads, foldIn, matmul, mean, mul, randn, randomKey, setDefaultDevice, sum, tensor, tidy,
} from '@scorch/tensor';
import {
  type Params, type ScoreModel, adam, denoisingScoreMatchingLoss, implicitScoreMatchingLoss,
  mlpScore, slicedScoreMatchingLoss, trainingStep,
} from '@scorch/score';
import { webgpuThreads } from '../dawn.js';
import type { HelloResult } from '../protocol.js';
import { type HostArray, type Inputs, input } from '../inputs.js';
import { type CaseSpec, type ConvCase, type HvpCase, type LangevinCase, MLP_PARAM_NAMES, type MatmulCase, type MlpShape, type TrainingCase } from '../workloads.js';
import { type Engine, type PreparedCase, byWorkload, innerProduct, matmulChecksum, matmulProjections, particleStatistics } from './engine.js';

type Dtype = 'float32' | 'float64';

function upload(array: HostArray, device: string, dtype: Dtype = 'float32'): Tensor {
  const data = dtype === 'float64' ? Float64Array.from(array.data) : array.data;
  return tensor(data, { shape: array.shape, dtype, device });
}

/** An `mlpScore` (softplus) whose parameters are replaced by the shared initial weights. */
function loadModel(net: MlpShape, inputs: Inputs, device: string, dtype: Dtype = 'float32'): ScoreModel {
  const model = mlpScore({ inputDim: net.dim, hidden: [net.hidden, net.hidden], activation: 'softplus', key: randomKey(1), dtype, device });
  for (const name of MLP_PARAM_NAMES) {
    const value = upload(input(inputs, name), device, dtype);
    model.params[name]!.assign(value);
    value.dispose();
  }
  return model;
}

const paramsOf = (model: ScoreModel): Tensor[] => MLP_PARAM_NAMES.map((name) => model.params[name]!);
const asRecord = (list: readonly Tensor[]): Params => Object.fromEntries(MLP_PARAM_NAMES.map((name, i) => [name, list[i]!]));

/** Reads one element: it waits for all the work queued before it (WebGPU runs a queue in order). */
async function settle(t: Tensor): Promise<void> {
  const one = tidy(() => t.reshape([t.size]).slice([0], [1]));
  await one.data();
  one.dispose();
}

async function readAll(tensors: readonly Tensor[]): Promise<number[]> {
  const out: number[] = [];
  for (const t of tensors) out.push(...(await t.data()));
  return out;
}

// ------------------------------------------------------------------------------------------------
// float32, the public API

function prepareMatmul(spec: MatmulCase, inputs: Inputs, device: string): PreparedCase {
  const a = upload(input(inputs, 'a'), device);
  const b = upload(input(inputs, 'b'), device);
  return {
    async value() {
      const c = matmul(a, b);
      const data = await c.data();
      c.dispose();
      return [matmulChecksum(data, input(inputs, 'u').data, input(inputs, 'w').data, spec.n)];
    },
    async step() {
      const c = matmul(a, b);
      await settle(c);
      c.dispose();
    },
    dispose() {
      a.dispose();
      b.dispose();
    },
  };
}

function prepareTraining(spec: TrainingCase, inputs: Inputs, device: string): PreparedCase {
  const model = loadModel(spec.net, inputs, device);
  const x = upload(input(inputs, 'x'), device);
  const { lr, beta1, beta2, eps } = spec.adam;
  const optimizer = adam({ lr, beta1, beta2, eps });
  const key = randomKey(spec.seed ?? 0);
  const loss = (params: Params, stepKey: RandomKey): Tensor => {
    const score = model.bind(params);
    switch (spec.workload) {
      case 'ssmvr':
        return slicedScoreMatchingLoss(score, x, { key: stepKey, varianceReduced: true });
      case 'dsm':
        return denoisingScoreMatchingLoss(score, x, { key: stepKey, sigma: spec.sigma! });
      case 'ism':
        return implicitScoreMatchingLoss(score, x);
    }
  };
  // The step `train` runs, made once and called per repetition (as a training loop calls it):
  // loss, gradient, Adam, compiled with jit, then the loss read back (which waits for the
  // device). Its key is foldIn(key, 0) every time, so every step sees the same projection or
  // noise, as the other engines do.
  const step = trainingStep({ params: model.params, loss, optimizer });
  const stepKey = foldIn(key, 0);
  const oneStep = async () => {
    const value = step(stepKey, 0);
    const loss = await value.item();
    value.dispose();
    return loss;
  };
  return {
    async value() {
      const lossBefore = await oneStep();
      const after = tidy(() => loss(model.params, stepKey));
      const lossAfter = await after.item();
      after.dispose();
      return [lossBefore, lossAfter];
    },
    async step() {
      await oneStep();
    },
    dispose() {
      step.dispose();
      optimizer.dispose();
      x.dispose();
      for (const p of paramsOf(model)) p.dispose();
    },
  };
}

function prepareLangevin(spec: LangevinCase, inputs: Inputs, device: string): PreparedCase {
  const model = loadModel(spec.net, inputs, device);
  // The sampler passes σ as the score's second argument; W2's network is unconditional.
  const score = (x: Tensor) => model.score(x);
  let current = upload(input(inputs, 'init'), device);
  let rep = 0;
  // annealedLangevinDynamics's update, x + (α/2)s(x) + √α z (Song & Ermon 2019, Algorithm 1),
  // written once for the value check and the timed steps, as jax-js's engine does.
  const update = (x: Tensor, z: Tensor, alpha: number) => add(add(x, mul(score(x), alpha / 2)), mul(z, Math.sqrt(alpha)));
  const langevinStep = jit((x: Tensor, key: RandomKey) => update(x, randn(x.shape, { key, dtype: 'float32', device: x.device }), spec.stepSize));
  return {
    async value() {
      // The check's levels and steps with the suite's noise (eagerly: jit equals eager bit for bit).
      const last = spec.checkSigmas[spec.checkSigmas.length - 1]!;
      let x = current;
      let k = 0;
      for (const sigma of spec.checkSigmas) {
        const alpha = (spec.stepSize * sigma * sigma) / (last * last);
        for (let s = 0; s < spec.checkStepsPerLevel; s++) {
          const z = upload(input(inputs, `noise${k++}`), device);
          const next = tidy(() => update(x, z, alpha));
          z.dispose();
          if (x !== current) x.dispose();
          x = next;
        }
      }
      const stats = particleStatistics(await x.data(), input(inputs, 'checkWeights').data);
      if (x !== current) x.dispose();
      return stats;
    },
    async step() {
      // One level: the step size is then stepSize itself; a step costs the same at every level.
      // The update compiled once and reused, as jax-js's step is: annealedLangevinDynamics
      // compiles its step per call, which a repetition of a few steps would pay every time.
      for (let s = 0; s < spec.stepsPerRep; s++) {
        const next = langevinStep(current, foldIn(randomKey(spec.seed + 1), rep++));
        current.dispose();
        current = next;
      }
      await settle(current);
    },
    dispose() {
      current.dispose();
      langevinStep.clearCache();
      for (const p of paramsOf(model)) p.dispose();
    },
  };
}

function prepareHvp(spec: HvpCase, inputs: Inputs, device: string): PreparedCase {
  const model = loadModel(spec.net, inputs, device);
  const x = upload(input(inputs, 'x'), device);
  const tangents = MLP_PARAM_NAMES.map((name) => upload(input(inputs, `tangent.${name}`), device));
  const summedOutput = (...params: Tensor[]) => sum(model.apply(asRecord(params), x));
  // Forward over reverse, compiled once (jit) as a user would for a product taken repeatedly.
  const compiled = jit((params: Tensor[], v: Tensor[]) => hvp(summedOutput, params, v) as Tensor[]);
  const product = () => compiled(paramsOf(model), tangents);
  return {
    async value() {
      const out = product();
      const values = await readAll(out);
      for (const t of out) t.dispose();
      return values;
    },
    async step() {
      const out = product();
      await settle(out[out.length - 1]!);
      for (const t of out) t.dispose();
    },
    dispose() {
      compiled.clearCache();
      x.dispose();
      for (const t of [...tangents, ...paramsOf(model)]) t.dispose();
    },
  };
}

/**
 * W7: conv2d (im2col: pad, strided slices, one matmul), and with the backward pass the gradients
 * of ⟨y, r⟩ in x and w through `grad`; under `jit` on WebGPU, as the other compiled workloads.
 * Returns the checksums' tensors: [y] or [y, ∂x, ∂w].
 */
function convPass(spec: ConvCase, x: Tensor, w: Tensor, r: Tensor): Tensor[] {
  const layer = (xx: Tensor, ww: Tensor) => conv2d(xx, ww, { padding: spec.padding });
  if (!spec.backward) return [layer(x, w)];
  const [y, grads] = valueAndGradPair(layer, x, w, r);
  return [y, ...grads];
}

/** y = f(x, w) and the gradients of ⟨y, r⟩ in x and w, from one forward pass. */
function valueAndGradPair(f: (x: Tensor, w: Tensor) => Tensor, x: Tensor, w: Tensor, r: Tensor): [Tensor, Tensor[]] {
  const [y, pullback] = vjp(f, x, w);
  return [y, pullback(r)];
}

function prepareConv(spec: ConvCase, inputs: Inputs, device: string): PreparedCase {
  const [x, w, r] = ['x', 'w', 'r'].map((name) => upload(input(inputs, name), device)) as [Tensor, Tensor, Tensor];
  const compiled = jit((a: Tensor, b: Tensor, c: Tensor) => convPass(spec, a, b, c));
  const run = () => compiled(x, w, r);
  const checks = spec.backward ? ['r', 's', 't'] : ['r'];
  return {
    async value() {
      const out = run();
      const values: number[] = [];
      for (let k = 0; k < out.length; k++) values.push(innerProduct(await out[k]!.data(), input(inputs, checks[k]!).data));
      for (const t of out) t.dispose();
      return values;
    },
    async step() {
      const out = tidy(() => run());
      await settle(out[out.length - 1]!);
      for (const t of out) t.dispose();
    },
    dispose() {
      compiled.clearCache();
      for (const t of [x, w, r]) t.dispose();
    },
  };
}

/**
 * scorch in float32 on 'cpu' or on WebGPU (Dawn; llvmpipe on a machine without a GPU). On the
 * CPU, one thread unless `threads: 'default'` (one per core, as a Node program gets it), and
 * correctly rounded float32 math unless `fastMath` (setCpuFastMath).
 */
export function scorchEngine(target: 'cpu' | 'webgpu', opts: { threads?: 'default'; fastMath?: boolean } = {}): Engine {
  let gpu: WebGPUHandle | undefined;
  const device = (): string => (target === 'cpu' ? 'cpu' : gpu!.device);
  return {
    async hello(): Promise<HelloResult> {
      const version = 'scorch';
      if (target === 'cpu') {
        // One thread, as the rows it is compared with (jax-js and TF.js wasm, PyTorch 1 thread);
        // the extra row keeps the default.
        setCpuThreads(opts.threads === 'default' ? undefined : 1);
        setCpuFastMath(opts.fastMath === true);
        // Before any kernel is built, so no refusal can have been met yet (the last one's message, null, left out).
        const { lastWasmRefusal: _none, ...k } = cpuKernelInfo();
        return { available: true, version, backend: `cpu (matmul: ${k.matmul}${k.fma ? ', fused multiply-add' : ''}${k.fastMath ? ', fast float32 math' : ''})`, threads: k.threads, details: { ...k } };
      }
      try {
        gpu = await initWebGPU();
      } catch (e) {
        return { available: false, reason: (e as Error).message };
      }
      setDefaultDevice(gpu.device);
      const { info } = gpu;
      return {
        available: true,
        version,
        backend: `webgpu (${info.device || info.description}, ${info.backend}, ${info.featureLevel})`,
        threads: webgpuThreads(info),
        details: { adapterDevice: info.device, adapterDescription: info.description, adapterVendor: info.vendor, backend: info.backend, featureLevel: info.featureLevel },
      };
    },
    async prepare(spec: CaseSpec, inputs: Inputs): Promise<PreparedCase> {
      const dev = device();
      const prepared = byWorkload<PreparedCase>(spec, {
        matmul: (s) => prepareMatmul(s, inputs, dev),
        langevin: (s) => prepareLangevin(s, inputs, dev),
        hvp: (s) => prepareHvp(s, inputs, dev),
        conv: (s) => prepareConv(s, inputs, dev),
        training: (s) => prepareTraining(s, inputs, dev),
      });
      if (!gpu) return prepared;
      const runtime = gpu.runtime;
      let last: Record<string, number> = {};
      return {
        value: () => prepared.value(),
        async step() {
          const before = runtime.stats;
          await prepared.step();
          const after = runtime.stats;
          last = { dispatches: after.dispatches - before.dispatches, submits: after.submits - before.submits };
        },
        counters: () => last,
        dispose: () => prepared.dispose(),
      };
    },
  };
}

// ------------------------------------------------------------------------------------------------
// The float64 reference

/** Adam's first step on the host (m̂ = g, v̂ = g², so θ ← θ − lr·g/(|g| + ε)), in float64. */
function adamFirstStep(params: readonly Float64Array[], grads: readonly Float64Array[], lr: number, eps: number): Float64Array[] {
  return params.map((p, k) => p.map((value, i) => value - (lr * grads[k]![i]!) / (Math.sqrt(grads[k]![i]! ** 2) + eps)));
}

const hostData = (t: Tensor): Float64Array => Float64Array.from(t.dataSync());

function referenceTraining(spec: TrainingCase, inputs: Inputs): number[] {
  const f64 = (name: string) => upload(input(inputs, name), 'cpu', 'float64');
  const model = loadModel(spec.net, inputs, 'cpu', 'float64');
  const x = f64('x');
  const objective = (...params: Tensor[]): Tensor => {
    const score = model.bind(asRecord(params));
    switch (spec.workload) {
      case 'ssmvr': {
        // SSM-VR = E[vᵀ(∂s/∂x)v + ½‖s‖²] with the given projection v.
        const v = f64('projection');
        const [s, jv] = jvp((xx: Tensor) => score(xx), [x], [v]);
        return mean(add(sum(mul(v, jv), 1), mul(sum(mul(s, s), 1), 0.5)));
      }
      case 'dsm': {
        // DSM = ½E‖s(x + σz) + z/σ‖² with the given noise z.
        const z = f64('noise');
        const sigma = spec.sigma!;
        const s = score(add(x, mul(z, sigma)));
        const r = add(s, mul(z, 1 / sigma));
        return mean(mul(sum(mul(r, r), 1), 0.5));
      }
      case 'ism':
        // The trace by d separate JVPs: another route than the batched one the engines take.
        return implicitScoreMatchingLoss(score, x, { method: 'loop' });
    }
  };
  const params = paramsOf(model);
  const [loss, grads] = valueAndGrad(objective, { argnums: params.map((_, i) => i) })(...params);
  const lossBefore = hostData(loss)[0]!;
  const stepped = adamFirstStep(params.map(hostData), (grads as Tensor[]).map(hostData), spec.adam.lr, spec.adam.eps);
  const lossAfter = hostData(objective(...stepped.map((data, k) => tensor(data, { shape: params[k]!.shape, dtype: 'float64' }))))[0]!;
  return [lossBefore, lossAfter];
}

function referenceLangevin(spec: LangevinCase, inputs: Inputs): number[] {
  const model = loadModel(spec.net, inputs, 'cpu', 'float64');
  let x = upload(input(inputs, 'init'), 'cpu', 'float64');
  const last = spec.checkSigmas[spec.checkSigmas.length - 1]!;
  let k = 0;
  for (const sigma of spec.checkSigmas) {
    // Song & Ermon 2019, Algorithm 1: α = ε·σ²/σ_L², x ← x + (α/2)s(x) + √α z.
    const alpha = (spec.stepSize * sigma * sigma) / (last * last);
    for (let t = 0; t < spec.checkStepsPerLevel; t++) {
      const z = upload(input(inputs, `noise${k++}`), 'cpu', 'float64');
      x = add(add(x, mul(model.score(x), alpha / 2)), mul(z, Math.sqrt(alpha)));
    }
  }
  return particleStatistics(x.dataSync(), input(inputs, 'checkWeights').data);
}

function referenceHvp(spec: HvpCase, inputs: Inputs): number[] {
  const model = loadModel(spec.net, inputs, 'cpu', 'float64');
  const x = upload(input(inputs, 'x'), 'cpu', 'float64');
  const tangents = MLP_PARAM_NAMES.map((name) => upload(input(inputs, `tangent.${name}`), 'cpu', 'float64'));
  const params = paramsOf(model);
  const all = params.map((_, i) => i);
  const summedOutput = (...ps: Tensor[]) => sum(model.apply(asRecord(ps), x));
  // Reverse over reverse: ∇θ ⟨∇θ f, v⟩.
  const directional = (...ps: Tensor[]) => {
    const g = grad(summedOutput, { argnums: all })(...ps) as Tensor[];
    return g.map((gk, k) => sum(mul(gk, tangents[k]!))).reduce((acc, term) => add(acc, term));
  };
  const product = grad(directional, { argnums: all })(...params) as Tensor[];
  return product.flatMap((t) => Array.from(t.dataSync()));
}

/** uᵀ(AB)w = (uᵀA)(Bw) in float64, without forming the product. */
function referenceMatmul(spec: MatmulCase, inputs: Inputs): number[] {
  const [a, b, u, w] = ['a', 'b', 'u', 'w'].map((name) => input(inputs, name).data) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const { uA, bw } = matmulProjections(a, b, u, w, spec.n);
  return [uA.reduce((total, value, k) => total + value * bw[k]!, 0)];
}

/**
 * The conv checksums in float64 by loops over the definition (not scorch's composition):
 * y[n,o,i,j] = Σ_c,a,b w[o,c,a,b]·x[n,c,i+a−p,j+b−p]; for L = ⟨y, r⟩, ∂x[n,c,·] collects
 * r·w at the same index pairs and ∂w[o,c,a,b] = Σ_n,i,j r[n,o,i,j]·x[n,c,i+a−p,j+b−p].
 */
function referenceConv(spec: ConvCase, inputs: Inputs): number[] {
  const { batch: nb, channels: ch, extent: e, kernel: k, padding: p } = spec;
  const [x, w, r] = ['x', 'w', 'r'].map((name) => input(inputs, name).data);
  const y = new Float64Array(nb * ch * e * e);
  const gx = new Float64Array(spec.backward ? x!.length : 0);
  const gw = new Float64Array(spec.backward ? w!.length : 0);
  for (let n = 0; n < nb; n++)
    for (let o = 0; o < ch; o++)
      for (let c = 0; c < ch; c++)
        for (let a = 0; a < k; a++)
          for (let b = 0; b < k; b++) {
            const wi = ((o * ch + c) * k + a) * k + b;
            const wv = w![wi]!;
            let dw = 0;
            for (let i = 0; i < e; i++) {
              const row = i + a - p;
              if (row < 0 || row >= e) continue;
              const yBase = ((n * ch + o) * e + i) * e;
              const xBase = ((n * ch + c) * e + row) * e;
              for (let j = 0; j < e; j++) {
                const col = j + b - p;
                if (col < 0 || col >= e) continue;
                y[yBase + j]! += wv * x![xBase + col]!;
                if (spec.backward) {
                  gx[xBase + col]! += wv * r![yBase + j]!;
                  dw += r![yBase + j]! * x![xBase + col]!;
                }
              }
            }
            if (spec.backward) gw[wi]! += dw;
          }
  const values = [innerProduct(y, r!)];
  if (spec.backward) values.push(innerProduct(gx, input(inputs, 's').data), innerProduct(gw, input(inputs, 't').data));
  return values;
}

/** The float64 reference values (not timed: `step` is not offered). */
export function referenceEngine(): Engine {
  return {
    async hello() {
      return { available: true, version: 'scorch', backend: 'cpu, float64 reference', threads: 1, details: {} };
    },
    async prepare(spec, inputs) {
      return {
        // Synchronous on the CPU, so one tidy frees every float64 intermediate.
        value: async () =>
          tidy(() =>
            byWorkload(spec, {
              matmul: (s) => referenceMatmul(s, inputs),
              langevin: (s) => referenceLangevin(s, inputs),
              hvp: (s) => referenceHvp(s, inputs),
              conv: (s) => referenceConv(s, inputs),
              training: (s) => referenceTraining(s, inputs),
            })),
        step: () => Promise.reject(new Error('the reference computes values only; it is not timed')),
        dispose() {},
      };
    },
  };
}
