// Long programs: chains of thousands of small ops (a sampler unrolled for many steps, an RNN-like
// loop) through eager, grad, jit and vmap. The host-side algorithms walk such graphs without
// recursion one level per op (no "Maximum call stack size exceeded") and in time that grows
// about linearly with the length. Values on the CPU are compared exactly with eager ones: the
// CPU's compiled kernels round every fused value as eager's store would (jit.test.ts).

import { describe, expect, it } from 'vitest';
import { grad, gradOf, jit, vmap } from '@scorch/autograd';
import { CPU_KERNEL_EQUATIONS_MAX, INLINE_OPS_MAX, type Tensor, gelu, planFusion, randn, randomKey, sin, sum, tensor, traceProgram } from '@scorch/tensor';

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

describe('kernels of long programs (CPU)', () => {
  // vmap(grad) of a 100-step chain over a [16, 32] batch was one elementwise kernel of 1,153
  // equations storing 251 values; at 400 steps its WebAssembly module (a parameter per operand
  // and result) passed V8's 1,000 parameters and the JavaScript kernel, too large for V8 to
  // optimise, ran 40 times slower. Now a kernel that stores several values computes at most
  // CPU_KERNEL_EQUATIONS_MAX equations (one value alone computes at most INLINE_OPS_MAX), and
  // each runs in WebAssembly.
  it('vmap(grad) of a 100-step gelu/sigmoid chain: small kernels, each in WebAssembly, equal to eager', async () => {
    const g = (y: Tensor) => {
      for (let i = 0; i < 100; i++) y = i % 2 ? gelu(y).add(0.5) : y.sigmoid().mul(y).add(0.3);
      return sum(y);
    };
    const f = (x: Tensor) => vmap((r: Tensor) => grad(g)(r))(x);
    const x = randn([16, 32], { key: randomKey(5) });
    const jitted = jit(f);
    const kernels = jitted.lower(x).kernels();
    expect(kernels.length).toBeGreaterThan(1);
    for (const k of kernels) {
      // The name ends with the number of values it stores (and a suffix that tells kernels of one
      // name apart): fused_elementwise_[16,32]x27_2.
      const stores = Number(/x(\d+)(_\d+)?$/.exec(k.name)![1]);
      expect(k.equations.length, k.name).toBeLessThanOrEqual(stores === 1 ? INLINE_OPS_MAX : CPU_KERNEL_EQUATIONS_MAX);
      expect(k.source, k.name).toContain('without WebAssembly SIMD'); // the WebAssembly listing, then the fallback
    }
    expect(await values(jitted(x))).toEqual(await values(f(x)));
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
