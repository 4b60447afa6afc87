import { describe, expect, it } from 'vitest';
import { tensor, randomKey, philox4x32, memory, tidy } from '@scorch/tensor';
import { grad, jvp, hvp, checkGrads, vjp } from '@scorch/autograd';
import type { Tensor } from '@scorch/tensor';

describe('smoke', () => {
  it('philox known answers', () => {
    const o = new Uint32Array(4);
    philox4x32(0, 0, 0, 0, 0, 0, o);
    expect([...o].map((v) => v.toString(16))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    philox4x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, o);
    expect([...o].map((v) => v.toString(16))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, o);
    expect([...o].map((v) => v.toString(16))).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });
  it('grad and compositions', async () => {
    const x = tensor([1, 2, 3], { dtype: 'float64' });
    const f = (x: Tensor) => x.mul(x).mul(x).sum();
    expect(await (grad(f)(x) as Tensor).toArray()).toEqual([3, 12, 27]);
    const gg = grad((x: Tensor) => (grad(f)(x) as Tensor).sum());
    expect(await (gg(x) as Tensor).toArray()).toEqual([6, 12, 18]);
    const [, t] = jvp((x: Tensor) => grad(f)(x) as Tensor, [x], [tensor([1, 0, 0], { dtype: 'float64' })]);
    expect(await t.toArray()).toEqual([6, 0, 0]);
    expect(await (hvp(f, [x], [tensor([1, 1, 1], { dtype: 'float64' })]) as Tensor).toArray()).toEqual([6, 12, 18]);
    // perturbation confusion
    const one = tensor(1, { dtype: 'float64' });
    const [, d] = jvp((x: Tensor) => x.mul(jvp((y: Tensor) => x.add(y), [one], [one])[1]), [one], [one]);
    expect(await d.item()).toBe(1);
    await checkGrads((x: Tensor) => x.tanh().mul(x.sin()).sum(), [x]);
  });
  it('backward', async () => {
    const w = tensor([[1, 2], [3, 4]]);
    w.requiresGrad = true;
    const x = tensor([1, 1]);
    const loss = w.matmul(x).square().sum();
    loss.backward();
    expect(await w.grad!.toArray()).toEqual([[6, 6], [14, 14]]);
    const before = memory();
    tidy(() => { const [, pb] = vjp((a: Tensor) => a.exp().sum(), x); pb(tensor(1)); });
    expect(memory().tensors).toBe(before.tensors);
  });
});
