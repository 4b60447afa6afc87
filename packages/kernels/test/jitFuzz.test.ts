// Random programs compiled by jit on WebGPU against the same functions run eagerly on WebGPU:
// random chains of ops (tests/fixtures/randomChains.ts, the CPU fuzz test's) of up to six steps
// over float32 inputs of rank 1 to 3, some intermediate values returned, with the gradient of
// the chain. It looks for what the parity tests' single primitives cannot show: kernels that do
// not validate together (it found a product reading one program output while writing another
// into the same block, which WebGPU rejects), and wrong elements. Reductions and products sum in
// other orders than eager, so values are held to 1e-3 of the output's largest magnitude: a
// misplaced element is off by the values' own size, far beyond that.

import { beforeAll, describe, expect, it } from 'vitest';
import { grad, jit } from '@scorch/autograd';
import * as T from '@scorch/tensor';
import { firstMismatch, gpuDevice, ofLargest } from './helpers.js';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';
import { pick, randomChain } from '../../../tests/fixtures/randomChains.js';

let gpu = 'webgpu';
beforeAll(async () => {
  gpu = (await gpuDevice()).device;
});

async function check(seed: number): Promise<void> {
  const r = mulberry32(seed);
  const shape = pick(r, [[20, 33], [6, 7, 9], [300], [16, 17]]);
  const chain = randomChain(Array.from({ length: 48 }, () => r()), { length: 6, maxSize: 30_000 });
  const total = (z: T.Tensor) => chain(z).reduce((acc, t) => acc.add(T.sum(t.mul(0.01))), T.zeros([], { device: z.device }));
  const f = (x0: T.Tensor) => [...chain(x0), grad(total)(x0) as T.Tensor];
  const x = T.randn(shape, { key: T.randomKey(seed), device: gpu });
  const eager = f(x);
  const compiled = jit(f)(x);
  for (let i = 0; i < eager.length; i++) {
    const want = await eager[i]!.data();
    expect(firstMismatch(want, await compiled[i]!.data(), ofLargest(want, 1e-3)), `seed ${seed}, output ${i} (eager, then jitted)`).toBeNull();
  }
  for (const t of [...eager, ...compiled, x]) t.dispose();
}

describe('random programs under jit on WebGPU equal their eager runs', () => {
  it('seeds 1 to 80', async () => {
    for (let seed = 1; seed <= 80; seed++) await check(seed);
  }, 300_000);
});
