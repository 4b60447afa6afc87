// Every score-matching objective against an independent PyTorch float64 implementation
// (fixtures/torchReference.ts says how it was computed): the per-example values, the batch mean
// and its gradient with respect to every parameter, for the cases of lossCases.ts — batch 1,
// d = 1, σ from 1e-4 to 1e4, data 1e3 from the origin, every projection distribution, one and
// several projections, both trace routes, energy models, each SDE and weighting — and the exact
// traces against torch's Jacobians and Hessians; and each loss under jit against its eager run.
//
// Tolerances. Each value is a chain of at most a few hundred float64 operations on well-scaled
// terms (the network's forward and forward-mode passes, a reverse pass over them), computed in a
// different order by PyTorch; each operation errs by ≤ u = 2⁻⁵³ relative, so the two differ by
// ≤ k·u·S with k ≲ 10³ and S the largest magnitude among the values compared (observed: ≤ 2e-14
// relative). We allow 1e-12·S, i.e. k = 4500. The finite-difference SSM divides a difference of
// two score values (each with that rounding) by 2ε, ε = ∛(3u) ≈ 6.9e-6: its rounding is
// ~2k·u·S·|v|²/(2ε) ≤ 1e-12·S·|v|²/ε, and |v|² ≤ 10 for these projections: we allow 1e-12·S·10/ε
// ≈ 1.5e-6·S (observed: 1e-10).

import { describe, expect, it } from 'vitest';
import { jit, valueAndGrad } from '@scorch/autograd';
import type { Tensor } from '@scorch/tensor';
import type { Params } from '../src/index.js';
import { type LossCase, lossCases } from './lossCases.js';
import { TORCH_REFERENCE } from './fixtures/torchReference.js';

const REL = 1e-12;
const FD_EPS = Math.cbrt(3 * 2 ** -53);

function expectClose(label: string, actual: ArrayLike<number>, expected: readonly number[], rel: number): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  const scale = Math.max(...expected.map(Math.abs));
  const worst = Math.max(0, ...expected.map((e, i) => Math.abs(actual[i]! - e)));
  expect(worst, `${label}: largest difference ${worst} against a scale of ${scale}`).toBeLessThanOrEqual(rel * scale);
}

describe('the losses against an independent PyTorch float64 implementation', () => {
  const cases = lossCases();
  it('has a reference for every case and a case for every reference', () => {
    expect(cases.map((c) => c.name).sort()).toEqual(Object.keys(TORCH_REFERENCE).sort());
  });
  /** The batch mean and its gradient in every parameter, under explicit parameters. */
  const valueAndGrads = (c: LossCase, params: Params, x: Tensor): [Tensor, Tensor[]] => {
    const names = Object.keys(params);
    return valueAndGrad(
      (...ps: Tensor[]) => c.loss(c.model.bind(Object.fromEntries(names.map((n, i) => [n, ps[i]!]))), x, 'mean'),
      { argnums: names.map((_, i) => i) },
    )(...names.map((n) => params[n]!)) as [Tensor, Tensor[]];
  };
  it.each(cases.map((c) => [c.name, c] as [string, LossCase]))('%s', async (name, c) => {
    const ref = TORCH_REFERENCE[name]!;
    const rel = name.includes('finite difference') ? (REL * 10) / FD_EPS : REL;
    expectClose(`${name}, per example`, await c.loss(c.model.score, c.x, 'none').data(), ref.perExample, rel);
    if (c.kind === 'trace') return;
    const names = Object.keys(c.model.params);
    const [value, grads] = valueAndGrads(c, c.model.params, c.x);
    expectClose(`${name}, mean`, await value.data(), [ref.loss!], rel);
    expect([...names].sort()).toEqual(Object.keys(ref.grads!).sort());
    for (const [i, n] of names.entries()) expectClose(`${name}, ∂/∂${n}`, await grads[i]!.data(), ref.grads![n]!, rel);
  });
  // On the CPU a jitted program's results are bit for bit the eager ones (docs/jit.md).
  it('gives the same loss and gradients under jit, bit for bit, on the CPU', async () => {
    for (const c of cases) {
      if (c.kind === 'trace') continue;
      const [value, grads] = valueAndGrads(c, c.model.params, c.x);
      const [jValue, jGrads] = jit((params: Params, x: Tensor) => valueAndGrads(c, params, x))(c.model.params, c.x);
      expect(Array.from(await jValue.data()), c.name).toEqual(Array.from(await value.data()));
      for (const [i, g] of grads.entries()) expect(Array.from(await jGrads[i]!.data()), c.name).toEqual(Array.from(await g.data()));
    }
  });
});
