// Long programs: chains of thousands of small ops (a sampler unrolled for many steps, an RNN-like
// loop) through eager, grad, jit and vmap. The host-side algorithms walk such graphs without
// recursion one level per op (no "Maximum call stack size exceeded") and in time that grows
// about linearly with the length. Values on the CPU are compared exactly with eager ones: the
// CPU's compiled kernels round every fused value as eager's store would (jit.test.ts).

import { describe, expect, it } from 'vitest';
import { gradOf, jit } from '@scorch/autograd';
import { INLINE_OPS_MAX, type Tensor, planFusion, sin, sum, tensor, traceProgram } from '@scorch/tensor';

/** n elementwise ops in a chain: sin and a scale by turns, then a sum. */
const chain = (n: number) => (x: Tensor): Tensor => {
  let y = x;
  for (let i = 0; i < n; i++) y = i % 2 ? y.mul(1.0001) : sin(y);
  return sum(y);
};

const values = async (t: Tensor) => Array.from(await t.data());

describe('jit of long chains (CPU)', () => {
  it('a chain of 5,000 elementwise ops stores values along the way (at most INLINE_OPS_MAX inline ops per value) and equals eager', async () => {
    const x = tensor([0.5, 0.2, -0.1]);
    const f = chain(5000);
    // It overflowed the call stack: each kernel writer walks a value's definitions depth first.
    expect(await values(jit(f)(x))).toEqual(await values(f(x)));
    // The plan stores values along the chain: no stored value's kernel computes more than the
    // limit inline.
    const { program } = traceProgram((t) => [f(t[0]!)], [x], []);
    expect(planFusion(program).materialized.size).toBeGreaterThanOrEqual(Math.ceil(5000 / INLINE_OPS_MAX));
  });
});

describe('jit compile time', () => {
  // jit(grad) of a chain: the forward values are read by the chain and by the backward pass, so
  // the plan stores many of them. Storing one re-ran the whole plan analysis (quadratic: about
  // 45 s at 1,000 ops); now about a second.
  it('jit of grad of a 1,000-op chain compiles in about linear time and equals eager grad', async () => {
    const x = tensor([0.5, 0.2, -0.1]);
    const g = gradOf(chain(1000));
    expect(await values(jit(g)(x))).toEqual(await values(g(x)));
  }, 15_000);
});
