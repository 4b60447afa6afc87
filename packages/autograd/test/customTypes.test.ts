// The rules of customJvp and customVjp are typed by the function's parameters: a jvp rule's
// primals and tangents, a vjp rule's saved arguments (without forward) and its cotangents are
// tuples of one Tensor per argument. The type half of each case is checked by `pnpm typecheck`
// (tsc reads the tests): an assignment that did not fit, or a `@ts-expect-error` line that
// compiled, fails it. The run-time half checks that the values are what the types say.

import { describe, expect, it } from 'vitest';
import { customJvp, customVjp, grad, jvp } from '@scorch/autograd';
import { type Tensor, sum, tensor } from '@scorch/tensor';

const f64 = (v: number | number[]) => tensor(v, { dtype: 'float64' });

describe('custom rule types', () => {
  it('customJvp: the rule destructures one primal and one tangent per argument, each a Tensor', async () => {
    const seen: number[] = [];
    const scaled = customJvp(
      (s: Tensor, y: Tensor) => y.mul(s),
      ({ primals: [s, y], tangents: [ts, ty], output }) => {
        const parts: [Tensor, Tensor, Tensor, Tensor, Tensor] = [s, y, ts, ty, output];
        seen.push(parts.length);
        return y.mul(ts).add(s.mul(ty));
      },
    );
    // @ts-expect-error a function of one argument has one primal: there is no second
    customJvp((y: Tensor) => y.exp(), ({ primals: [, second] }) => second);
    const [out, tangent] = jvp(scaled, [f64(2), f64([1, 3])], [f64(1), f64([0, 1])]);
    expect(Array.from(await out.data())).toEqual([2, 6]);
    expect(Array.from(await tangent.data())).toEqual([1, 5]); // y·1 + 2·[0, 1]
    expect(seen).toEqual([5]);
  });

  it('customVjp: backward gets the arguments (no forward) or what forward saved, and returns one cotangent per argument', async () => {
    const scaled = customVjp((s: Tensor, y: Tensor) => y.mul(s), {
      backward: ([s, y], ct) => [sum(ct.mul(y)), ct.mul(s).mul(10)], // ∂/∂y scaled by 10
    });
    const sigmoid = customVjp((y: Tensor) => y.sigmoid(), {
      forward: (y) => {
        const out = y.sigmoid();
        return { output: out, saved: { out } };
      },
      backward: (saved, ct) => [ct.mul(saved.out).mul(saved.out.neg().add(1))],
    });
    // @ts-expect-error two cotangents for one argument
    customVjp((y: Tensor) => y.mul(2), { backward: (_s, ct) => [ct, ct] });
    // @ts-expect-error forward takes the function's arguments: one tensor, not two
    customVjp((y: Tensor) => y.mul(2), { forward: (a: Tensor, b: Tensor) => ({ output: a.mul(b), saved: a }), backward: (_s, ct) => [ct] });
    const [gs, gy] = grad((s: Tensor, y: Tensor) => sum(scaled(s, y)), { argnums: [0, 1] })(f64(2), f64([1, 3]));
    expect(await gs.item()).toBe(4); // Σy
    expect(Array.from(await gy.data())).toEqual([20, 20]); // s·10
    expect(Array.from(await grad((y: Tensor) => sum(sigmoid(y)))(f64([0])).data())).toEqual([0.25]); // σ(0)(1 − σ(0))
  });
});
