// Pytrees as jit signatures and rebuilt outputs: key names and order are part of a tree.
import { describe, expect, it } from 'vitest';
import { jit, vmap } from '@scorch/autograd';
import { type Tensor, tensor } from '@scorch/tensor';

describe('pytree keys in jit signatures and rebuilt trees', () => {
  it('same leaf types under other key names is another signature', () => {
    const f = jit((o: Record<string, Tensor>) => (o.a ? o.a.mul(2) : o.b!.mul(3)));
    const x = tensor([1, 2]);
    expect(Array.from(f({ a: x }).dataSync())).toEqual([2, 4]);
    expect(Array.from(f({ b: x }).dataSync())).toEqual([3, 6]);
  });
  it('the same keys in another insertion order reach the right leaves', () => {
    const f = jit((o: { a: Tensor; b: Tensor }) => o.a.sub(o.b));
    const x = tensor([5]);
    const y = tensor([1]);
    expect(Array.from(f({ a: x, b: y }).dataSync())).toEqual([4]);
    expect(Array.from(f({ b: y, a: x }).dataSync())).toEqual([4]);
  });
  it('rebuilt objects keep the key order of the tree (jit and vmap outputs)', () => {
    const x = tensor([1, 2]);
    expect(Object.keys(jit((t: Tensor) => ({ z: t, a: t.mul(2) }))(x))).toEqual(['z', 'a']);
    expect(Object.keys(vmap((t: Tensor) => ({ z: t, a: t.mul(2) }))(x))).toEqual(['z', 'a']);
  });
  it('an object with a null prototype is a container (jit and vmap see its tensors)', () => {
    const x = tensor([1, 2]);
    const o = Object.assign(Object.create(null) as Record<string, Tensor>, { a: x });
    expect(Array.from(jit((p: Record<string, Tensor>) => p.a!.mul(2))(o).dataSync())).toEqual([2, 4]);
    expect(Array.from((vmap((p: Record<string, Tensor>) => p.a!.mul(2))(o) as Tensor).dataSync())).toEqual([2, 4]);
  });
});
