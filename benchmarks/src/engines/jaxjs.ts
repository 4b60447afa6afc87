// jax-js's side of every workload, on its wasm or webgpu backend, written as a JAX user would:
// pure functions of the parameters, `jvp` for derivatives in x (SSM-VR's vᵀ(∂s/∂x)v, ISM's trace
// over the batch replicated d times with basis tangents), `valueAndGrad` for ∇θ, forward over
// reverse (`jvp` of `grad`) for the HVP, and the whole step, Adam's update included, under `jit`
// (Adam written out, with optax's formula). jax-js arrays are reference-counted: a function
// consumes its arguments, so every reuse takes `.ref` first.

import type * as JaxModule from '@jax-js/jax';
import type { Array as JaxArray } from '@jax-js/jax';
import { installNavigatorGpu, webgpuThreads } from '../dawn.js';
import type { HelloResult } from '../protocol.js';
import { type HostArray, type Inputs, input } from '../inputs.js';
import { type AdamSpec, type CaseSpec, type ConvCase, type HvpCase, type LangevinCase, MLP_PARAM_NAMES, type MatmulCase, type TrainingCase } from '../workloads.js';
import { type Engine, type PreparedCase, byWorkload, innerProduct, matmulChecksum, particleStatistics } from './engine.js';

type Jax = typeof JaxModule;
export type JaxBackend = 'wasm' | 'webgpu';

const refs = (list: readonly JaxArray[]): JaxArray[] => list.map((a) => a.ref);
const disposeAll = (list: readonly JaxArray[]): void => list.forEach((a) => a.dispose());

/** s(x) = softplus(softplus(x W₀ + b₀) W₁ + b₁) W₂ + b₂; consumes `p` and `x`. */
function mlp(jax: Jax, p: readonly JaxArray[], x: JaxArray): JaxArray {
  const { numpy: np, nn } = jax;
  const h1 = nn.softplus(np.matmul(x, p[0]!).add(p[1]!));
  const h2 = nn.softplus(np.matmul(h1, p[2]!).add(p[3]!));
  return np.matmul(h2, p[4]!).add(p[5]!);
}

const rowSquaredNorm = (jax: Jax, t: JaxArray): JaxArray => jax.numpy.sum(t.ref.mul(t), 1);

function prepareMatmul(jax: Jax, spec: MatmulCase, inputs: Inputs, constant: (a: HostArray) => JaxArray): PreparedCase {
  const a = constant(input(inputs, 'a'));
  const b = constant(input(inputs, 'b'));
  const product = jax.jit((x: JaxArray, y: JaxArray) => jax.numpy.matmul(x, y));
  return {
    async value() {
      const data = await product(a.ref, b.ref).data();
      return [matmulChecksum(data, input(inputs, 'u').data, input(inputs, 'w').data, spec.n)];
    },
    async step() {
      const c = product(a.ref, b.ref);
      await c.blockUntilReady();
      c.dispose();
    },
    dispose() {
      disposeAll([a, b]);
      product.dispose();
    },
  };
}

/** Adam (Kingma & Ba 2015; optax.adam): returns [params, m, v]; consumes everything it is given. */
function adamUpdate(jax: Jax, adam: AdamSpec, p: JaxArray[], g: JaxArray[], m: JaxArray[], v: JaxArray[], correction1: JaxArray, correction2: JaxArray): [JaxArray[], JaxArray[], JaxArray[]] {
  const np = jax.numpy;
  const newP: JaxArray[] = [];
  const newM: JaxArray[] = [];
  const newV: JaxArray[] = [];
  p.forEach((pk, k) => {
    const gk = g[k]!;
    const mk = m[k]!.mul(adam.beta1).add(gk.ref.mul(1 - adam.beta1));
    const vk = v[k]!.mul(adam.beta2).add(gk.ref.mul(gk).mul(1 - adam.beta2));
    const update = mk.ref.div(correction1.ref).div(np.sqrt(vk.ref.div(correction2.ref)).add(adam.eps));
    newP.push(pk.sub(update.mul(adam.lr)));
    newM.push(mk);
    newV.push(vk);
  });
  disposeAll([correction1, correction2]);
  return [newP, newM, newV];
}

function prepareTraining(jax: Jax, spec: TrainingCase, inputs: Inputs, constant: (a: HostArray) => JaxArray): PreparedCase {
  const np = jax.numpy;
  const { dim } = spec.net;
  const n = spec.batch;
  const x = constant(input(inputs, 'x'));
  // The per-case extra input: the projection (SSM-VR), the noise (DSM) or the basis tangents (ISM).
  let extra: JaxArray;
  let loss: (p: JaxArray[], x: JaxArray, extra: JaxArray) => JaxArray;
  if (spec.workload === 'ssmvr') {
    extra = constant(input(inputs, 'projection'));
    loss = (p, xx, v) => {
      const [s, jv] = jax.jvp((y: JaxArray) => mlp(jax, p, y), [xx], [v.ref]);
      return np.mean(np.sum(v.mul(jv), 1).add(rowSquaredNorm(jax, s).mul(0.5)));
    };
  } else if (spec.workload === 'dsm') {
    extra = constant(input(inputs, 'noise'));
    const sigma = spec.sigma!;
    loss = (p, xx, z) => {
      const s = mlp(jax, p, xx.add(z.ref.mul(sigma)));
      return np.mean(rowSquaredNorm(jax, s.add(z.div(sigma))).mul(0.5));
    };
  } else {
    // Block j of X = [x; …; x] moves along e_j; the j-th entry of its JVP row is ∂s_j/∂x_j.
    const basis = new Float32Array(dim * n * dim);
    for (let j = 0; j < dim; j++) for (let i = 0; i < n; i++) basis[(j * n + i) * dim + j] = 1;
    extra = np.array(basis, { shape: [dim * n, dim] });
    loss = (p, xx, tangents) => {
      const [s, jv] = jax.jvp((y: JaxArray) => mlp(jax, p, y), [np.tile(xx, [dim, 1])], [tangents.ref]);
      const trace = np.sum(np.sum(jv.mul(tangents), 1).reshape([dim, n]), 0);
      return np.mean(rowSquaredNorm(jax, s.slice([0, n], [])).mul(0.5).add(trace));
    };
  }
  const adam = spec.adam;
  const step = jax.jit((p: JaxArray[], m: JaxArray[], v: JaxArray[], c1: JaxArray, c2: JaxArray, xx: JaxArray, e: JaxArray) => {
    const [value, g] = jax.valueAndGrad(loss)(refs(p), xx, e);
    const [newP, newM, newV] = adamUpdate(jax, adam, p, g as JaxArray[], m, v, c1, c2);
    return [newP, newM, newV, value] as [JaxArray[], JaxArray[], JaxArray[], JaxArray];
  });
  const lossAt = jax.jit(loss);
  let params = MLP_PARAM_NAMES.map((name) => constant(input(inputs, name)));
  let m = params.map((p) => np.zerosLike(p.ref));
  let v = params.map((p) => np.zerosLike(p.ref));
  let t = 0;
  const oneStep = async (): Promise<number> => {
    t++;
    const c1 = np.array(1 - adam.beta1 ** t);
    const c2 = np.array(1 - adam.beta2 ** t);
    const [p2, m2, v2, value] = step(params, m, v, c1, c2, x.ref, extra.ref);
    params = p2;
    m = m2;
    v = v2;
    const loss = (await value.data())[0]!;
    // The step ends when all of its work has: with its Web Workers (a browser page that is cross-
    // origin isolated) jax-js dispatches asynchronously, and reading the loss waits only for the
    // kernels up to the loss, not for the gradient and Adam's update after it. (On one thread, as
    // in Node, every kernel has run by then and this returns at once.)
    await jax.blockUntilReady([...params, ...m, ...v]);
    return loss;
  };
  return {
    async value() {
      const before = await oneStep();
      const after = (await lossAt(refs(params), x.ref, extra.ref).data())[0]!;
      return [before, after];
    },
    async step() {
      await oneStep();
    },
    dispose() {
      disposeAll([...params, ...m, ...v, x, extra]);
      step.dispose();
      lossAt.dispose();
    },
  };
}

function prepareLangevin(jax: Jax, spec: LangevinCase, inputs: Inputs, constant: (a: HostArray) => JaxArray): PreparedCase {
  const params = MLP_PARAM_NAMES.map((name) => constant(input(inputs, name)));
  const shape = [spec.particles, spec.net.dim];
  // x ← x + (α/2)s(x) + √α z (Song & Ermon 2019, Algorithm 1).
  const update = (p: JaxArray[], x: JaxArray, noise: JaxArray, alpha: number) => x.ref.add(mlp(jax, p, x).mul(alpha / 2)).add(noise.mul(Math.sqrt(alpha)));
  const givenNoiseStep = jax.jit((p: JaxArray[], x: JaxArray, noise: JaxArray, alpha: number) => update(p, x, noise, alpha), { staticArgnums: [3] });
  const ownNoiseStep = jax.jit((p: JaxArray[], x: JaxArray, key: JaxArray) => update(p, x, jax.random.normal(key, shape), spec.stepSize));
  let current = constant(input(inputs, 'init'));
  let counter = 0;
  return {
    async value() {
      const last = spec.checkSigmas[spec.checkSigmas.length - 1]!;
      let x = current.ref;
      let k = 0;
      for (const sigma of spec.checkSigmas) {
        const alpha = (spec.stepSize * sigma * sigma) / (last * last);
        for (let s = 0; s < spec.checkStepsPerLevel; s++) x = givenNoiseStep(refs(params), x, constant(input(inputs, `noise${k++}`)), alpha);
      }
      return particleStatistics(await x.data(), input(inputs, 'checkWeights').data);
    },
    async step() {
      // One level, so α is the step size itself; the noise is jax-js's own (a key per step).
      for (let s = 0; s < spec.stepsPerRep; s++) current = ownNoiseStep(refs(params), current, jax.random.key(counter++));
      await current.blockUntilReady();
    },
    dispose() {
      disposeAll([...params, current]);
      givenNoiseStep.dispose();
      ownNoiseStep.dispose();
    },
  };
}

function prepareHvp(jax: Jax, spec: HvpCase, inputs: Inputs, constant: (a: HostArray) => JaxArray): PreparedCase {
  const np = jax.numpy;
  const params = MLP_PARAM_NAMES.map((name) => constant(input(inputs, name)));
  const tangents = MLP_PARAM_NAMES.map((name) => constant(input(inputs, `tangent.${name}`)));
  const x = constant(input(inputs, 'x'));
  const summedOutput = (p: JaxArray[], xx: JaxArray) => np.sum(mlp(jax, p, xx));
  // Forward over reverse: the JVP of θ ↦ ∇θ f along v.
  const product = jax.jit((p: JaxArray[], v: JaxArray[], xx: JaxArray) => {
    const [gradient, hv] = jax.jvp((q: JaxArray[]) => jax.grad(summedOutput)(q, xx), [p], [v]);
    disposeAll(gradient as JaxArray[]);
    return hv as JaxArray[];
  });
  return {
    async value() {
      const out = product(refs(params), refs(tangents), x.ref);
      const values: number[] = [];
      for (const t of out) values.push(...(await t.data()));
      return values;
    },
    async step() {
      const out = product(refs(params), refs(tangents), x.ref);
      await jax.blockUntilReady(out);
      disposeAll(out);
    },
    dispose() {
      disposeAll([...params, ...tangents, x]);
      product.dispose();
    },
  };
}

/**
 * W7: lax.conv (NCHW, OIHW, as scorch and PyTorch lay them out: no transposes), under jit; with
 * the backward pass, valueAndGrad of L = ⟨y, r⟩ in x and w with y returned as auxiliary output.
 */
function prepareConv(jax: Jax, spec: ConvCase, inputs: Inputs, constant: (a: HostArray) => JaxArray): PreparedCase {
  const { lax, numpy: np } = jax;
  const [x, w, r] = ['x', 'w', 'r'].map((name) => constant(input(inputs, name))) as [JaxArray, JaxArray, JaxArray];
  const p = spec.padding;
  const layer = (xx: JaxArray, ww: JaxArray) => lax.conv(xx, ww, [1, 1], [[p, p], [p, p]]);
  const pass = spec.backward
    ? jax.jit((xx: JaxArray, ww: JaxArray, rr: JaxArray) => {
      const objective = (a: JaxArray, b: JaxArray): [JaxArray, JaxArray] => {
        const y = layer(a, b);
        return [np.sum(y.ref.mul(rr.ref)), y];
      };
      const [[loss, y], grads] = jax.valueAndGrad(objective, { argnums: [0, 1], hasAux: true })(xx, ww);
      rr.dispose();
      loss.dispose();
      return [y, ...(grads as JaxArray[])];
    })
    : jax.jit((xx: JaxArray, ww: JaxArray, rr: JaxArray) => {
      rr.dispose();
      return [layer(xx, ww)];
    });
  const checks = spec.backward ? ['r', 's', 't'] : ['r'];
  return {
    async value() {
      const out = pass(x.ref, w.ref, r.ref) as JaxArray[];
      const values: number[] = [];
      for (let k = 0; k < out.length; k++) values.push(innerProduct(await out[k]!.data(), input(inputs, checks[k]!).data));
      return values;
    },
    async step() {
      const out = pass(x.ref, w.ref, r.ref) as JaxArray[];
      await jax.blockUntilReady(out);
      disposeAll(out);
    },
    dispose() {
      disposeAll([x, w, r]);
      pass.dispose();
    },
  };
}

export function jaxjsEngine(backend: JaxBackend): Engine {
  let jax: Jax | undefined;
  return {
    async hello(): Promise<HelloResult> {
      const details: Record<string, string | number | boolean> = { jit: true };
      let gpuThreads = '';
      if (backend === 'webgpu') {
        try {
          const peer = await installNavigatorGpu();
          gpuThreads = webgpuThreads(peer.adapter);
          Object.assign(details, { adapterDevice: peer.adapter.device, adapterDescription: peer.adapter.description, backend: peer.adapter.backend, featureLevel: peer.featureLevel });
        } catch (e) {
          return { available: false, reason: (e as Error).message };
        }
      }
      try {
        jax = (await import('@jax-js/jax')) as Jax;
      } catch (e) {
        return { available: false, reason: `jax-js did not load: ${(e as Error).message} (run pnpm install)` };
      }
      const found = await jax.init(backend);
      if (!found.includes(backend)) return { available: false, reason: `jax.init('${backend}') found only ${found.join(', ') || 'no device'}` };
      jax.defaultDevice(backend);
      const version = await jaxVersion();
      // jax-js's wasm backend spreads work over Web Workers when SharedArrayBuffer and a global
      // Worker exist; Node has no global Worker, so it computes on one thread here.
      const threads = backend === 'wasm' ? (typeof (globalThis as { Worker?: unknown }).Worker === 'undefined' ? 1 : 'web workers') : gpuThreads;
      return { available: true, version: `@jax-js/jax ${version}`, backend, threads, details };
    },
    async prepare(spec: CaseSpec, inputs: Inputs): Promise<PreparedCase> {
      const j = jax!;
      const constant = (a: HostArray) => j.numpy.array(a.data, { shape: a.shape });
      return byWorkload<PreparedCase>(spec, {
        matmul: (s) => prepareMatmul(j, s, inputs, constant),
        langevin: (s) => prepareLangevin(j, s, inputs, constant),
        hvp: (s) => prepareHvp(j, s, inputs, constant),
        conv: (s) => prepareConv(j, s, inputs, constant),
        training: (s) => prepareTraining(j, s, inputs, constant),
      });
    },
  };
}

/** The installed package's version (jax-js does not export one). */
export async function jaxVersion(): Promise<string> {
  try {
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    const { readFileSync } = await import('node:fs');
    const { dirname, join } = await import('node:path');
    const entry = require.resolve('@jax-js/jax');
    let dir = dirname(entry);
    for (let i = 0; i < 4; i++, dir = dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === '@jax-js/jax') return pkg.version ?? 'unknown';
      } catch {
        // not this folder
      }
    }
  } catch {
    // fall through
  }
  return 'unknown';
}
