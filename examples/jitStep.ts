// A compiled training step, for people who read programs and kernels: an MLP 2→16→2 (tanh)
// fitted by least squares with SGD, traced by `jit` into a program, fused into kernels, and run.
// On WebGPU (when an adapter exists) it prints each fused kernel with the equations it covers and
// counts the dispatches of one call; on the CPU it prints the program (which the CPU compiles
// into generated JavaScript loops: docs/jit.md, "On the CPU").
// Usage, from the repository's root: node scripts/run.mjs examples/jitStep.ts [--cpu] [--wgsl]

import { jit, valueAndGrad } from '@scorch/autograd';
import { type RandomKey, type Tensor, foldIn, matmul, randn, randomKey, splitKey, tanh, tensor } from '@scorch/tensor';
import { openWebGPU } from './webgpu.js';

let device = 'cpu';
let countDispatches = (): number => 0;
if (!process.argv.includes('--cpu')) {
  const gpu = await openWebGPU();
  if (gpu) {
    device = gpu.device;
    countDispatches = () => gpu.runtime.stats.dispatches;
  }
}

const [k1, k2, k3] = splitKey(randomKey(7), 3);
const params = {
  w1: randn([2, 16], { key: k1, device }).mul(0.5),
  b1: randn([16], { key: k2, device }).mul(0.1),
  w2: randn([16, 2], { key: k3, device }).mul(0.25),
};
type Params = typeof params;

/** The function to learn: a quarter turn of the plane, squashed (a tensor the step closes over). */
const rotation = tensor([[0, -1], [1, 0]], { device });

/** One SGD step on a fresh batch (its key is an argument: a new key per call is no retrace). */
function step(p: Params, key: RandomKey): Tensor {
  const x = randn([256, 2], { key, device });
  const target = tanh(x.matmul(rotation));
  const loss = (w1: Tensor, b1: Tensor, w2: Tensor) => matmul(tanh(matmul(x, w1).add(b1)), w2).sub(target).square().mean();
  const [value, grads] = valueAndGrad(loss, { argnums: [0, 1, 2] })(p.w1, p.b1, p.w2);
  p.w1.assign(p.w1.sub(grads[0].mul(0.1)));
  p.b1.assign(p.b1.sub(grads[1].mul(0.1)));
  p.w2.assign(p.w2.sub(grads[2].mul(0.1)));
  return value;
}

const compiled = jit(step, { donate: [0] });
const lowered = compiled.lower(params, randomKey(0));
console.log(`${lowered.program.equations.length} equations, ${lowered.kernels().length} kernels on ${device}\n`);
console.log(lowered.program.toString());
if (device !== 'cpu') {
  const lines = lowered.program.equationLines();
  console.log('\nkernels:');
  for (const [i, k] of lowered.kernels().entries()) {
    console.log(`${i + 1}. ${k.name}`);
    for (const e of k.equations) console.log(`     ${lines[e]}`);
  }
  if (process.argv.includes('--wgsl')) console.log(`\n${lowered.describe()}`);
}

let loss = 0;
for (let i = 0; i < 200; i++) {
  const before = countDispatches();
  const value = compiled(params, foldIn(randomKey(1), i));
  if (i === 199) {
    loss = await value.item();
    if (device !== 'cpu') console.log(`\none call: ${countDispatches() - before} dispatches, one command buffer`);
  }
  value.dispose();
}
console.log(`loss after 200 steps: ${loss.toFixed(5)} (traced ${compiled.traceCount} time${compiled.traceCount === 1 ? '' : 's'})`);
