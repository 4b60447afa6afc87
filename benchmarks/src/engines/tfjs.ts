// TensorFlow.js's side of every workload, on its cpu (plain JavaScript), wasm (XNNPACK) or webgpu
// backend, written as a TensorFlow.js user would: `tf.variable`s, `tf.train.adam` and
// `optimizer.minimize`, `tf.grad`/`tf.grads`. TensorFlow.js has no forward mode, so every
// derivative in x is a reverse-mode one: SSM-VR's vᵀ(∂s/∂x)v is a vector-Jacobian product inside
// the loss (a double backward once ∇θ is taken), ISM's exact trace one VJP over the batch
// replicated d times (block j pulls back e_j), and the HVP is reverse over reverse.
//
// The packages load lazily, after `navigator.gpu` is installed for the webgpu backend (it probes
// navigator.gpu when it loads), and only in this engine's worker process.

import type * as TfModule from '@tensorflow/tfjs';
import type { Rank, Scalar, Tensor, Tensor2D, Tensor4D, Variable } from '@tensorflow/tfjs';
import { installNavigatorGpu, webgpuThreads } from '../dawn.js';
import type { HelloResult } from '../protocol.js';
import { type HostArray, type Inputs, input } from '../inputs.js';
import { type CaseSpec, type ConvCase, type HvpCase, type LangevinCase, MLP_PARAM_NAMES, type MatmulCase, type TrainingCase } from '../workloads.js';
import { type Engine, type PreparedCase, byWorkload, innerProduct, matmulChecksum, particleStatistics } from './engine.js';

type Tf = typeof TfModule;
export type TfjsBackend = 'cpu' | 'wasm' | 'webgpu';

/** s(x) = softplus(softplus(x W₀ + b₀) W₁ + b₁) W₂ + b₂ with the parameters in MLP_PARAM_NAMES order. */
function mlp(tf: Tf, p: readonly Tensor[], x: Tensor): Tensor2D {
  const h1 = tf.softplus(tf.add(tf.matMul(x as Tensor2D, p[0] as Tensor2D), p[1]!));
  const h2 = tf.softplus(tf.add(tf.matMul(h1 as Tensor2D, p[2] as Tensor2D), p[3]!));
  return tf.add(tf.matMul(h2 as Tensor2D, p[4] as Tensor2D), p[5]!) as Tensor2D;
}

/**
 * Waits for `t` by reading back one element of it (a read is what makes TF.js finish the work).
 * The flattening view is made inside tidy: a reshape holds a reference to `t`'s data, so one left
 * undisposed would keep every step's output alive.
 */
async function readOne(tf: Tf, t: Tensor): Promise<void> {
  const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
  await one.data();
  one.dispose();
}

function prepareMatmul(tf: Tf, spec: MatmulCase, inputs: Inputs, constant: (a: HostArray) => Tensor): PreparedCase {
  const a = constant(input(inputs, 'a')) as Tensor2D;
  const b = constant(input(inputs, 'b')) as Tensor2D;
  return {
    async value() {
      const c = tf.matMul(a, b);
      const data = await c.data();
      c.dispose();
      return [matmulChecksum(data, input(inputs, 'u').data, input(inputs, 'w').data, spec.n)];
    },
    async step() {
      const c = tf.matMul(a, b);
      await readOne(tf, c);
      c.dispose();
    },
    dispose() {
      tf.dispose([a, b]);
    },
  };
}

let variableCount = 0;

function prepareTraining(tf: Tf, spec: TrainingCase, inputs: Inputs, constant: (a: HostArray) => Tensor): PreparedCase {
  const params: Variable[] = MLP_PARAM_NAMES.map((name) => tf.variable(constant(input(inputs, name)), true, `${spec.id}.${name}.${variableCount++}`));
  const x = constant(input(inputs, 'x')) as Tensor2D;
  const { dim } = spec.net;
  const n = spec.batch;
  const net = (xx: Tensor) => mlp(tf, params, xx);
  const rowSquaredNorm = (t: Tensor) => tf.sum(tf.square(t), 1);
  let lossOf: () => Scalar;
  const owned: Tensor[] = [x];
  if (spec.workload === 'ssmvr') {
    const v = constant(input(inputs, 'projection'));
    owned.push(v);
    // vᵀ(∂s/∂x)v: the pullback of v (rows vᵀ∂s/∂x), dotted with v. valueAndGrad with dy = v
    // gives s and the pullback from one forward pass (a separate net(x) for s ran it twice, ~1.5×
    // the step; NOTES).
    const valueAndPullback = tf.valueAndGrad(net);
    lossOf = () => {
      const { value: s, grad: vJ } = valueAndPullback(x, v as Tensor2D);
      const vJv = tf.sum(tf.mul(vJ, v), 1);
      return tf.mean(tf.add(vJv, tf.mul(rowSquaredNorm(s), 0.5)));
    };
  } else if (spec.workload === 'dsm') {
    const z = constant(input(inputs, 'noise'));
    const sigma = spec.sigma!;
    owned.push(z);
    lossOf = () => tf.mean(tf.mul(rowSquaredNorm(tf.add(net(tf.add(x, tf.mul(z, sigma))), tf.div(z, sigma))), 0.5));
  } else {
    // Block j of X = [x; …; x] pulls back e_j: row i of block j is e_jᵀ∂s/∂x at xᵢ, whose j-th
    // entry is the diagonal one.
    const replicated = tf.tile(x, [dim, 1]);
    const basis = new Float32Array(dim * n * dim);
    for (let j = 0; j < dim; j++) for (let i = 0; i < n; i++) basis[(j * n + i) * dim + j] = 1;
    const tangents = tf.tensor2d(basis, [dim * n, dim]);
    owned.push(replicated, tangents);
    // s on the first block of the same forward pass (a separate net(x) ran n rows more).
    const valueAndPullback = tf.valueAndGrad(net);
    lossOf = () => {
      const { value: s, grad } = valueAndPullback(replicated, tangents as Tensor2D);
      const diagonal = tf.sum(tf.mul(grad, tangents), 1);
      const trace = tf.sum(tf.reshape(diagonal, [dim, n]), 0);
      return tf.mean(tf.add(tf.mul(rowSquaredNorm(tf.slice(s, [0, 0], [n, dim])), 0.5), trace));
    };
  }
  const { lr, beta1, beta2, eps } = spec.adam;
  const optimizer = tf.train.adam(lr, beta1, beta2, eps);
  const oneStep = async (): Promise<number> => {
    const loss = optimizer.minimize(lossOf, true, params)!;
    const value = (await loss.data())[0]!;
    loss.dispose();
    return value;
  };
  return {
    async value() {
      const before = await oneStep();
      const after = tf.tidy(lossOf);
      const value = (await after.data())[0]!;
      after.dispose();
      return [before, value];
    },
    async step() {
      await oneStep();
    },
    dispose() {
      optimizer.dispose();
      tf.dispose([...params, ...owned]);
    },
  };
}

function prepareLangevin(tf: Tf, spec: LangevinCase, inputs: Inputs, constant: (a: HostArray) => Tensor): PreparedCase {
  const params = MLP_PARAM_NAMES.map((name) => constant(input(inputs, name)));
  let current = constant(input(inputs, 'init'));
  const update = (x: Tensor, noise: Tensor, alpha: number) =>
    tf.tidy(() => tf.add(tf.add(x, tf.mul(mlp(tf, params, x), alpha / 2)), tf.mul(noise, Math.sqrt(alpha))));
  return {
    async value() {
      const last = spec.checkSigmas[spec.checkSigmas.length - 1]!;
      let x = current.clone();
      let k = 0;
      for (const sigma of spec.checkSigmas) {
        const alpha = (spec.stepSize * sigma * sigma) / (last * last);
        for (let t = 0; t < spec.checkStepsPerLevel; t++) {
          const noise = constant(input(inputs, `noise${k++}`));
          const next = update(x, noise, alpha);
          tf.dispose([x, noise]);
          x = next;
        }
      }
      const stats = particleStatistics(await x.data(), input(inputs, 'checkWeights').data);
      x.dispose();
      return stats;
    },
    async step() {
      // One level, so α is the step size itself; the noise is TensorFlow.js's own.
      for (let t = 0; t < spec.stepsPerRep; t++) {
        const next = tf.tidy(() => update(current, tf.randomNormal(current.shape), spec.stepSize));
        current.dispose();
        current = next;
      }
      await readOne(tf, current);
    },
    dispose() {
      tf.dispose([...params, current]);
    },
  };
}

function prepareHvp(tf: Tf, spec: HvpCase, inputs: Inputs, constant: (a: HostArray) => Tensor): PreparedCase {
  const params: Variable[] = MLP_PARAM_NAMES.map((name) => tf.variable(constant(input(inputs, name)), true, `${spec.id}.${name}.${variableCount++}`));
  const tangents = MLP_PARAM_NAMES.map((name) => constant(input(inputs, `tangent.${name}`)));
  const x = constant(input(inputs, 'x'));
  // Reverse over reverse: ∇θ ⟨∇θ f, v⟩ for f(θ) = Σ s_θ(x). The outer gradient is taken over
  // variables: tf.grads over plain tensors refuses when one of them (the output bias, whose
  // gradient is a constant) has no path to the result, and that part of the product is zero.
  const gradient = tf.grads((...ps: Tensor[]) => tf.sum(mlp(tf, ps, x)));
  const product = (): Tensor[] => {
    const { value, grads } = tf.variableGrads(() => tf.addN(gradient(params).map((g, k) => tf.sum(tf.mul(g, tangents[k]!)))) as Scalar, params);
    value.dispose();
    return params.map((p) => grads[p.name] ?? tf.zerosLike(p));
  };
  return {
    async value() {
      const out = product();
      const values: number[] = [];
      for (const t of out) values.push(...(await t.data()));
      tf.dispose(out);
      return values;
    },
    async step() {
      const out = product();
      await readOne(tf, out[out.length - 2]!);
      tf.dispose(out);
    },
    dispose() {
      tf.dispose([...params, ...tangents, x]);
    },
  };
}

/**
 * W7: tf.conv2d in TensorFlow.js's native layout, NHWC with HWIO filters: the shared NCHW/OIHW
 * inputs are transposed once when the case is prepared (not timed) and the results transposed
 * back for the value check. With the backward pass, tf.valueAndGrads with dy = r gives y and the
 * gradients of ⟨y, r⟩ in x and w.
 */
function prepareConv(tf: Tf, spec: ConvCase, inputs: Inputs, constant: (a: HostArray) => Tensor): PreparedCase {
  const nhwc = (a: HostArray) => tf.tidy(() => tf.transpose(constant(a), [0, 2, 3, 1])) as Tensor4D;
  const x = nhwc(input(inputs, 'x'));
  const r = nhwc(input(inputs, 'r'));
  const w = tf.tidy(() => tf.transpose(constant(input(inputs, 'w')), [2, 3, 1, 0])) as Tensor4D;
  const p = spec.padding;
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
  const layer = (xx: Tensor, ww: Tensor) => tf.conv2d(xx as Tensor4D, ww as Tensor4D, 1, pad);
  const pass = (): Tensor[] => {
    if (!spec.backward) return [layer(x, w)];
    const { value, grads } = tf.valueAndGrads(layer)([x, w], r);
    return [value, ...grads];
  };
  const checks = spec.backward ? ['r', 's', 't'] : ['r'];
  // Back to NCHW (y, ∂x) and OIHW (∂w) for the checksums.
  const back = [[0, 3, 1, 2], [0, 3, 1, 2], [3, 2, 0, 1]];
  return {
    async value() {
      const out = pass();
      const values: number[] = [];
      for (let k = 0; k < out.length; k++) {
        const t = tf.transpose(out[k]!, back[k]!);
        values.push(innerProduct(await t.data(), input(inputs, checks[k]!).data));
        t.dispose();
      }
      tf.dispose(out);
      return values;
    },
    async step() {
      const out = pass();
      await readOne(tf, out[out.length - 1]!);
      tf.dispose(out);
    },
    dispose() {
      tf.dispose([x, r, w]);
    },
  };
}

export function tfjsEngine(backend: TfjsBackend): Engine {
  let tf: Tf | undefined;
  return {
    async hello(): Promise<HelloResult> {
      const details: Record<string, string | number | boolean> = {};
      let threads: number | string = 1;
      if (backend === 'webgpu') {
        try {
          const peer = await installNavigatorGpu();
          threads = webgpuThreads(peer.adapter);
          Object.assign(details, { adapterDevice: peer.adapter.device, adapterDescription: peer.adapter.description, backend: peer.adapter.backend, featureLevel: peer.featureLevel });
        } catch (e) {
          return { available: false, reason: (e as Error).message };
        }
      }
      try {
        tf = (await import('@tensorflow/tfjs')) as Tf;
        if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
        if (backend === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu');
      } catch (e) {
        return { available: false, reason: `TensorFlow.js did not load: ${(e as Error).message} (run pnpm install)` };
      }
      // Production mode skips debug checks, as a deployed model would run.
      tf.enableProdMode();
      if (!(await tf.setBackend(backend))) return { available: false, reason: `tf.setBackend('${backend}') failed (see the worker's log)` };
      await tf.ready();
      if (backend === 'wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        threads = wasm.getThreadsCount();
        details.simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
      }
      return { available: true, version: `@tensorflow/tfjs ${tf.version.tfjs}`, backend, threads, details };
    },
    async prepare(spec: CaseSpec, inputs: Inputs): Promise<PreparedCase> {
      const t = tf!;
      const constant = (a: HostArray) => t.tensor(a.data, a.shape, 'float32') as Tensor<Rank>;
      return byWorkload<PreparedCase>(spec, {
        matmul: (s) => prepareMatmul(t, s, inputs, constant),
        langevin: (s) => prepareLangevin(t, s, inputs, constant),
        hvp: (s) => prepareHvp(t, s, inputs, constant),
        conv: (s) => prepareConv(t, s, inputs, constant),
        training: (s) => prepareTraining(t, s, inputs, constant),
      });
    },
  };
}
