// The result types of grad, valueAndGrad and hvp follow `argnums` and the primals: one tensor for
// an index (or the default), an array for a list. The type half of each case is checked by
// `pnpm typecheck` (tsc reads the tests): an assignment to `Tensor` or `Tensor[]` that did not
// fit, or a `@ts-expect-error` line that compiled, fails it. The run-time half checks that the
// values are what the types say.

import { describe, expect, it } from 'vitest';
import { type GradOptions, type Pullback, type TensorFn, grad, hvp, valueAndGrad, vjp } from '@scorch/autograd';
import { type Tensor, mul, onesLike, sum, tensor } from '@scorch/tensor';

const f = (a: Tensor, b: Tensor): Tensor => sum(mul(mul(a, a), b));
const a = tensor([1, 2], { dtype: 'float64' });
const b = tensor([3, 4], { dtype: 'float64' });

describe('gradient result types', () => {
  it('grad: one tensor for the default argnums and for an index, an array for a list', async () => {
    const g0: Tensor = grad(f)(a, b);
    const g1: Tensor = grad(f, { argnums: 1 })(a, b);
    const both: Tensor[] = grad(f, { argnums: [0, 1] })(a, b);
    // @ts-expect-error a list of argnums gives an array, not one tensor
    const wrong: Tensor = grad(f, { argnums: [0] })(a, b);
    expect(Array.isArray(g0) || Array.isArray(g1) || !Array.isArray(both) || !Array.isArray(wrong)).toBe(false);
    expect(Array.from(await g0.data())).toEqual([6, 16]); // 2ab
    expect(Array.from(await g1.data())).toEqual([1, 4]); // a²
    expect(both.length).toBe(2);
  });

  it('a list literal of argnums gives a tuple of as many gradients; an array of them an array', async () => {
    const [g0, g1]: [Tensor, Tensor] = grad(f, { argnums: [0, 1] })(a, b);
    // @ts-expect-error two argnums give two gradients: there is no third
    const g2: Tensor = grad(f, { argnums: [0, 1] })(a, b)[2];
    const [value, [gb, ga]]: [Tensor, [Tensor, Tensor]] = valueAndGrad(f, { argnums: [1, 0] })(a, b);
    const withAux = (x: Tensor, y: Tensor): [Tensor, string] => [f(x, y), 'aux'];
    const [[gy], aux]: [[Tensor], string] = grad(withAux, { hasAux: true, argnums: [1] })(a, b);
    const [[, aux2], [gx2, gy2]]: [[Tensor, string], [Tensor, Tensor]] = valueAndGrad(withAux, { hasAux: true, argnums: [0, 1] })(a, b);
    const indices = [0, 1];
    const gs: Tensor[] = grad(f, { argnums: indices })(a, b);
    // @ts-expect-error an array of argnums may be empty: its first gradient may be undefined
    const first: Tensor = gs[0];
    expect(g2).toBeUndefined();
    expect([await value.item(), aux, aux2, gs.length]).toEqual([19, 'aux', 'aux', 2]);
    for (const [t, want] of [[g0, [6, 16]], [ga, [6, 16]], [gx2, [6, 16]], [first, [6, 16]], [g1, [1, 4]], [gb, [1, 4]], [gy, [1, 4]], [gy2, [1, 4]]] as const) {
      expect(Array.from(await t.data())).toEqual(want); // 2ab, a²
    }
  });

  it('grad with options of unknown form keeps the union', () => {
    const opts: GradOptions = { argnums: [1] };
    const g = grad(f, opts)(a, b);
    // @ts-expect-error GradOptions may hold a list: the result may be an array
    const one: Tensor = g;
    expect(Array.isArray(one)).toBe(true);
  });

  it('valueAndGrad and hasAux follow argnums too', async () => {
    const [value, g]: [Tensor, Tensor] = valueAndGrad(f)(a, b);
    const [, gs]: [Tensor, Tensor[]] = valueAndGrad(f, { argnums: [0, 1] })(a, b);
    const withAux = (x: Tensor, y: Tensor): [Tensor, string] => [f(x, y), 'aux'];
    const [[, aux], ga]: [[Tensor, string], Tensor] = valueAndGrad(withAux, { hasAux: true })(a, b);
    const [gl, aux2]: [Tensor[], string] = grad(withAux, { hasAux: true, argnums: [1] })(a, b);
    expect(await value.item()).toBe(1 * 3 + 4 * 4);
    expect(Array.isArray(g) || Array.isArray(ga)).toBe(false);
    expect([gs.length, gl.length, aux, aux2]).toEqual([2, 1, 'aux', 'aux']);
    expect(Array.from(await gl[0]!.data())).toEqual([1, 4]);
  });

  it('hvp: one primal gives one tensor, several an array', async () => {
    const h: Tensor = hvp((x: Tensor) => sum(mul(mul(x, x), x)), [a], [b]); // ∇²(Σx³)·v = 6x·v
    const hs = hvp(f, [a, b], [b, a]);
    expect(Array.isArray(h)).toBe(false);
    expect(Array.from(await h.data())).toEqual([18, 48]);
    expect(Array.isArray(hs)).toBe(true);
  });

  it('hvp: a list literal of several primals gives a tuple, one product per primal', async () => {
    // f = Σ a²b: ∇²f·(u, w) = (2b·u + 2a·w, 2a·u), with (u, w) = (b, a).
    const [ha, hb]: [Tensor, Tensor] = hvp(f, [a, b], [b, a]);
    // @ts-expect-error two primals give two products: there is no third
    const third: Tensor = hvp(f, [a, b], [b, a])[2];
    // Primals of unknown count keep the union.
    const list: Tensor[] = [a, b];
    // @ts-expect-error an array of primals may hold one: the result may be one tensor
    const many: Tensor[] = hvp(f, list, [b, a]);
    expect(third).toBeUndefined();
    expect(Array.from(await ha.data())).toEqual([2 * 3 * 3 + 2 * 1 * 1, 2 * 4 * 4 + 2 * 2 * 2]); // [20, 40]
    expect(Array.from(await hb.data())).toEqual([2 * 1 * 3, 2 * 2 * 4]); // [6, 16]
    expect(many.length).toBe(2);
  });

  it('vjp: the pullback gives a tuple, one cotangent per primal', async () => {
    const [value, pullback] = vjp(f, a, b);
    const [ga, gb]: [Tensor, Tensor] = pullback(onesLike(value));
    // @ts-expect-error two primals give two cotangents: there is no third
    const third: Tensor = pullback(onesLike(value))[2];
    const [, one] = vjp((x: Tensor) => sum(mul(x, x)), a);
    const [gx]: [Tensor] = one(tensor(1, { dtype: 'float64' }));
    // Primals of unknown count: an array, as before.
    const xs: Tensor[] = [a, b];
    const g: TensorFn = (...ts) => sum(mul(ts[0]!, ts[1]!));
    const many: Pullback = vjp(g, ...xs)[1];
    // @ts-expect-error an array of unknown length may not have a first element
    const first: Tensor = many(tensor(1, { dtype: 'float64' }))[0];
    expect(third).toBeUndefined();
    expect(Array.from(await ga.data())).toEqual([6, 16]); // 2ab
    expect(Array.from(await gb.data())).toEqual([1, 4]); // a²
    expect(Array.from(await gx.data())).toEqual([2, 4]); // 2x
    expect(Array.from(await first.data())).toEqual([3, 4]); // b
  });
});
