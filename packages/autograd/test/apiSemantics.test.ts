// The transformations' API behaves as JAX's and PyTorch's do where the two agree: which arguments
// `argnums` names, what a tracer used outside its transformation does, what reading a value
// inside a transformation gives, and what an in-place update does to a recorded graph. Values are
// float64 on the CPU, and every expected value here is exact in binary floating point (small
// integers and their products), so the comparisons are exact.

import { describe, expect, it } from 'vitest';
import { type Tensor, tensor } from '@scorch/tensor';
import { grad, valueAndGrad } from '@scorch/autograd';

const f64 = (data: Parameters<typeof tensor>[0]) => tensor(data, { dtype: 'float64' });

/** The message of the error `fn` throws (fails the test if it throws nothing). */
function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, but none was thrown');
}

describe('argnums', () => {
  const f = (a: Tensor, b: Tensor) => a.mul(b);

  it('an argument listed twice is an error, not a zero gradient for its first copy', () => {
    // Before: [0, 3]: the second copy replaced the first inside f. PyTorch's torch.func.grad
    // refuses duplicates too ("argnums elements must be unique").
    expect(messageOf(() => grad(f, { argnums: [0, 0] })(f64(2), f64(3)))).toBe('grad: argnums [0,0] names argument 0 twice; list each argument once');
    expect(messageOf(() => valueAndGrad(f, { argnums: [1, 0, 1] })(f64(2), f64(3)))).toBe('grad: argnums [1,0,1] names argument 1 twice; list each argument once');
  });

  it('a list in any order gives the gradients in that order', async () => {
    const [gb, ga] = grad((a: Tensor, b: Tensor) => a.mul(b.square()), { argnums: [1, 0] })(f64(2), f64(3)) as Tensor[];
    expect(await gb!.item()).toBe(12); // ∂(ab²)/∂b = 2ab
    expect(await ga!.item()).toBe(9); // ∂(ab²)/∂a = b²
  });
});

describe('negative argnums', () => {
  it('count from the end, as in JAX and PyTorch', async () => {
    const f = (a: Tensor, b: Tensor) => a.mul(b.square());
    expect(await (grad(f, { argnums: -1 })(f64(2), f64(3)) as Tensor).item()).toBe(12); // ∂/∂b = 2ab
    const [ga, gb] = grad(f, { argnums: [-2, -1] })(f64(2), f64(3)) as Tensor[];
    expect([await ga!.item(), await gb!.item()]).toEqual([9, 12]);
    // -1 and 1 are the same argument of two.
    expect(messageOf(() => grad(f, { argnums: [1, -1] })(f64(2), f64(3)))).toBe('grad: argnums [1,-1] names argument 1 twice; list each argument once');
    expect(messageOf(() => grad(f, { argnums: -3 })(f64(2), f64(3)))).toBe('grad: argnums -3 out of range for 2 argument(s)');
  });
});
