// A custom primitive end to end (docs/extending.md walks through it): y = softplus(x)² as one
// fused WGSL kernel with its own jvp and vjp, checked with checkGrads, used as the activation of
// a small score network trained by denoising score matching, and profiled against the built-in
// composition square(softplus(x)) (eager: several kernels; jit: one fused kernel).
// Usage, from the repository's root: node scripts/run.mjs examples/customPrimitive.ts [--cpu]
// (tests/examples.test.ts runs it and checks what it prints.)

import { checkGrads, jit } from '@scorch/autograd';
import { adam, denoisingScoreMatchingLoss, eightGaussians, train } from '@scorch/score';
import {
  type Tensor, definePrimitive, foldIn, matmul, memory, mul, profile, randn, randomKey, setDefaultDevice, sigmoid, softplus, square, tidy,
} from '@scorch/tensor';
import { openWebGPU } from './webgpu.js';

// ---------------------------------------------------------------------------------------------
// 1. The primitive

/** softplus(x) = max(x, 0) + log1p(e^(−|x|)) in doubles: the CPU implementation's core. */
const softplusHost = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

/** dy/dx = 2·softplus(x)·σ(x), with tensor ops: differentiable again, so order 2 works. */
const slope = (x: Tensor) => mul(mul(softplus(x), sigmoid(x)), 2);

const softplusSquare = definePrimitive({
  name: 'softplusSquare',
  kind: 'elementwise',
  inputs: ['x'],
  cpu: (x) => softplusHost(x) ** 2,
  wgsl: {
    // sc_exp and sc_log1p are scorch's float32 math library (≤ 1 ULP): log1p keeps softplus
    // accurate for x ≪ 0, where 1 + e^x rounds to 1.
    functions: `fn softplusSquare_value(x: f32) -> f32 {
  let s = max(x, 0.0) + sc_log1p(sc_exp(-abs(x)));
  return s * s;
}`,
    expression: 'softplusSquare_value(x)',
  },
  jvp: ([x], [dx]) => (dx ? mul(dx, slope(x!)) : null), // dy = 2 s(x) σ(x) dx
  vjp: (ct, [x]) => [mul(ct, slope(x!))], //               x̄ = 2 s(x) σ(x) ȳ
});

// ---------------------------------------------------------------------------------------------
// 2. Its rules, checked (CPU, float64: finite differences need it)

await checkGrads((x) => softplusSquare(x), [randn([4, 3], { dtype: 'float64', key: randomKey(1) })], { order: 2, modes: ['fwd', 'rev'] });
console.log('checkGrads(softplusSquare, order 2, fwd + rev): passed');

// ---------------------------------------------------------------------------------------------
// 3. The device: WebGPU when an adapter exists (Dawn, the optional peer of @scorch/kernels)

let device = 'cpu';
if (!process.argv.includes('--cpu')) device = (await openWebGPU())?.device ?? 'cpu';
setDefaultDevice(device);
console.log(`device: ${device}`);

// ---------------------------------------------------------------------------------------------
// 4. A score network with it as the activation, trained by denoising score matching

/** s_θ(x) = W₂ act(W₁x + b₁) + b₂ for x ∈ R², 32 hidden units. */
function makeParams() {
  const k = (i: number) => foldIn(randomKey(2), i);
  // tidy frees each randn under its .mul and keeps the four results.
  return tidy(() => ({
    w1: randn([2, 32], { key: k(0) }).mul(Math.SQRT1_2),
    b1: randn([32], { key: k(1) }).mul(0.1),
    w2: randn([32, 2], { key: k(2) }).mul(1 / Math.sqrt(32)),
    b2: randn([2], { key: k(3) }).mul(0.1),
  }));
}
type Params = ReturnType<typeof makeParams>;
const scoreWith = (act: (h: Tensor) => Tensor) => (p: Params) => (x: Tensor) => matmul(act(matmul(x, p.w1).add(p.b1)), p.w2).add(p.b2);

const data = eightGaussians();
async function fit(act: (h: Tensor) => Tensor): Promise<{ first: number; last: number }> {
  const params = makeParams();
  const score = scoreWith(act);
  const optimizer = adam({ lr: 3e-3 }); // named, to dispose its moments (train leaves it to us)
  const { history } = await train({
    params,
    optimizer,
    steps: 300,
    every: 10,
    key: randomKey(3),
    loss: (p, key) => denoisingScoreMatchingLoss(score(p), data.sample(256, { key: foldIn(key, 0) }), { sigma: 0.5, key: foldIn(key, 1) }),
  });
  for (const t of Object.values(params)) t.dispose();
  optimizer.dispose();
  return { first: history[0]!.loss, last: history.at(-1)!.loss };
}
const live = memory().tensors; // nothing is garbage-collected: the end must be back here
const custom = await fit((h) => softplusSquare(h));
const composed = await fit((h) => square(softplus(h)));
console.log(`DSM loss, custom primitive:   step 10 ${custom.first.toFixed(4)} → step 300 ${custom.last.toFixed(4)}`);
console.log(`DSM loss, square(softplus(x)): step 10 ${composed.first.toFixed(4)} → step 300 ${composed.last.toFixed(4)}`);

// ---------------------------------------------------------------------------------------------
// 5. Profiled against the composition

const x = randn([1024, 256], { key: randomKey(4) });
const customJit = jit((t: Tensor) => softplusSquare(t));
const composedJit = jit((t: Tensor) => square(softplus(t)));
const variants: [string, () => Tensor][] = [
  ['custom softplusSquare (eager)', () => softplusSquare(x)],
  ['custom softplusSquare (jit)', () => customJit(x)],
  ['square(softplus(x)) (eager)', () => tidy(() => square(softplus(x)))], // frees softplus(x)
  ['square(softplus(x)) (jit)', () => composedJit(x)],
];
// Compile every kernel before timing.
for (const [, run] of variants) {
  const y = run();
  await y.data();
  y.dispose();
}
console.log(`\nprofile of y = softplus(x)² on [1024, 256] (${device}; fastest of 7 profiles, per call):`);
for (const [label, run] of variants) {
  const runs: { ms: number; kernels: number }[] = [];
  for (let i = 0; i < 7; i++) {
    const r = await profile(async () => {
      const y = run();
      await y.data();
      y.dispose();
    });
    const own = r.events.filter((e) => e.name !== 'poison fill');
    runs.push({ ms: own.reduce((a, e) => a + e.duration, 0), kernels: own.length });
  }
  // The fastest run: the one least disturbed by other work on the machine.
  const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  console.log(`  ${label.padEnd(30)} ${String(best.kernels).padStart(2)} kernel${best.kernels === 1 ? ' ' : 's'}  ${best.ms.toFixed(3).padStart(8)} ms`);
}
x.dispose();
data.dispose(); // the mixture's tensors, made on its first sample on this device
console.log(`\nlive tensors: ${live} before training, ${memory().tensors} at the end`);
