// Forward and reverse mode give one linear map: for random programs f in float64, random
// cotangents u of f's outputs and a random tangent v of its inputs, u·(J v) by jvp equals
// (Jᵀ u)·v by grad. The per-primitive checks compare each rule with finite differences; this
// compares every jvp rule with its vjp rule as programs compose them, over shapes, broadcasts and
// views that single primitives do not reach: a wrong transpose of a structural rule (cumsum's
// direction, expand's summed axes, a pad's offsets, a concat's piece, ties of a maximum split one
// way forward and another backward) is off by the terms' own size.
//
// Tolerance: each side is a float64 sum of products of derivatives, rounded in a different order;
// its error is a few ulp per op times the depth, relative to Σ|terms| (the larger of Σ|u|·|J v| and
// Σ|Jᵀu|·|v|). The worst seen over these seeds is 2.3e-14 of that (the pair test's powers and
// products); the bound is 1e-12. Programs whose values pass 1e8 in magnitude (exp of exp) are
// left out: their rounding noise, amplified, is not a rule's error. At exact non-differentiable
// points forward and reverse may differ by design (a 0/0 tangent at sqrt(0) is NaN in JAX and
// PyTorch too), so the chain fixture's square root is taken away from 0.

import { describe, expect, it } from 'vitest';
import { grad, jvp } from '@scorch/autograd';
import * as T from '@scorch/tensor';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';
import { pick, randomChain } from '../../../tests/fixtures/randomChains.js';

const f64 = { dtype: 'float64' as const };
const TOLERANCE = 1e-12;
const scalar = (t: T.Tensor) => t.dataSync()[0]!;
const tooLarge = (ts: readonly T.Tensor[]) => ts.some((t) => t.dataSync().some((e) => !(Math.abs(e) <= 1e8)));

/**
 * Checks u·(J v) = (Jᵀ u)·v for f at `primals` (seed names the cotangents and tangents); returns
 * false, checking nothing, when f's values pass 1e8.
 */
function checkAdjoint(label: string, seed: number, f: (...xs: T.Tensor[]) => T.Tensor[], primals: readonly T.Tensor[]): boolean {
  return T.tidy(() => {
    const outs = f(...primals);
    if (tooLarge(outs)) return false;
    const us = outs.map((t, i) => T.randn(t.shape, { key: T.randomKey(seed * 100 + i), ...f64 }));
    const vs = primals.map((p, i) => T.randn(p.shape, { key: T.randomKey(seed * 100 + 50 + i), ...f64 }));
    const [, tangents] = jvp(f, [...primals], vs);
    let forward = 0;
    let forwardScale = 0;
    tangents.forEach((t, i) => {
      forward += scalar(T.sum(t.mul(us[i]!)));
      forwardScale += scalar(T.sum(t.abs().mul(us[i]!.abs())));
    });
    const total = (...xs: T.Tensor[]) => f(...xs).reduce((acc, t, i) => acc.add(T.sum(t.mul(us[i]!))), T.zeros([], f64));
    const gradients = grad(total, { argnums: primals.map((_, i) => i) })(...primals) as T.Tensor[];
    let reverse = 0;
    let reverseScale = 0;
    gradients.forEach((g, i) => {
      const terms = g.mul(vs[i]!);
      reverse += scalar(T.sum(terms));
      reverseScale += scalar(T.sum(terms.abs()));
    });
    const scale = Math.max(forwardScale, reverseScale);
    expect(Math.abs(forward - reverse) <= TOLERANCE * scale, `${label}: u·(J v) = ${forward} by jvp, (Jᵀu)·v = ${reverse} by grad, Σ|terms| ${scale}`).toBe(true);
    return true;
  });
}

/** Steps of v with a second operand w that broadcasts against it. */
type PairStep = (v: T.Tensor, w: T.Tensor) => T.Tensor;
const PAIR_STEPS: readonly PairStep[] = [
  (v, w) => v.add(w),
  (v, w) => v.mul(w.exp()),
  (v, w) => T.where(v.greater(w), v, w),
  (v, w) => T.maximum(v, w).sub(T.minimum(v, w)),
  (v, w) => v.div(w.abs().add(1)),
  (v, w) => v.abs().add(0.5).pow(w.mul(0.5)),
  (v) => v.mul(0.3).add(1).cumprod(v.rank - 1),
  (v) => v.mul(0.3).add(1).cumprod(0, { reverse: true }),
  (v) => T.cast(T.cast(v.mul(4), 'int32'), 'float64').add(v),
  (v) => T.erf(v),
  (v) => T.gelu(v),
  (v) => T.clamp(v, -0.5, 0.7),
  (v, w) => T.softmax(v.add(w), -1),
  (v) => T.logSoftmax(v, 0),
  (v) => T.layerNorm(v, [v.shape[v.rank - 1]!]),
  (v) => T.variance(v, 0, { keepdims: true }).mul(v),
  (v) => v.abs().add(1).log().add(v.sin()).mul(v.cos()),
  (v) => v.mul(v).add(1).reciprocal().add(T.expm1(v.mul(0.5))).add(T.log1p(v.abs())),
  (v, w) => T.matmul(v, T.ones([v.shape[v.rank - 1]!, 3], f64).mul(T.sum(w).mul(0.1))).sum(-1, true).add(v),
  (v) => T.cumsum(v, 0, { reverse: true }),
  (v) => T.sum(v, -1, true).sub(T.max(v, 0, true)),
];

/** Image steps of v ([N, C, H, W]) with a kernel w ([C, C, 3, 3]); null where the image is too small. */
type ImageStep = (v: T.Tensor, w: T.Tensor) => T.Tensor | null;
const side = (v: T.Tensor) => Math.min(v.shape[2]!, v.shape[3]!);
const IMAGE_STEPS: readonly ImageStep[] = [
  (v, w) => (side(v) >= 1 ? T.conv2d(v, w, { padding: 1 }) : null),
  (v, w) => (side(v) >= 2 ? T.conv2d(v, w, { padding: 1, stride: 2 }) : null),
  (v, w) => (side(v) >= 1 ? T.conv2d(v, w, { padding: 2, dilation: 2 }) : null),
  (v, w) => (side(v) >= 1 ? T.convTranspose2d(v, w, { padding: 1 }) : null),
  (v, w) => T.convTranspose2d(v, w, { stride: 2, padding: 1, outputPadding: 1 }),
  (v) => (side(v) >= 2 ? T.maxPool2d(v, 2) : null),
  (v) => (side(v) >= 3 ? T.maxPool2d(v, 3, { stride: 1, padding: 1 }) : null),
  (v) => (side(v) >= 2 ? T.avgPool2d(v, 2) : null),
  (v) => T.upsample(v, { scaleFactor: 2 }),
  (v) => T.upsample(v, { scaleFactor: 2, mode: 'bilinear' }),
  (v) => T.upsample(v, { size: [5, 7], mode: 'bilinear', alignCorners: true }),
  (v) => T.groupNorm(v, 2),
  (v) => T.tanh(v),
  (v) => T.softplus(v).mul(T.sigmoid(v)),
];

describe('jvp and grad are one linear map: u·(J v) = (Jᵀ u)·v on random float64 programs', () => {
  it('random chains of views, pads, concats, gathers, reductions and scans: 1,500 seeds', () => {
    const shapes = [[20, 33], [33, 20], [6, 7, 9], [4, 5, 6, 3], [300], [16, 17], [3, 4]];
    let checked = 0;
    for (let seed = 1; seed <= 1500; seed++) {
      const r = mulberry32(seed);
      const x = T.randn(pick(r, shapes), { key: T.randomKey(seed), ...f64 });
      // keep: 1 returns every value of the chain, so each one's tangent counts in the scale.
      const chain = randomChain(Array.from({ length: 48 }, () => r()), { length: 6, maxSize: 60_000, keep: 1 });
      if (checkAdjoint(`chain seed ${seed}`, seed, chain, [x])) checked++;
      x.dispose();
    }
    expect(checked).toBeGreaterThan(1400);
  });

  it('two operands that broadcast, powers, scans, casts, norms and products: 2,000 seeds', () => {
    let checked = 0;
    for (let seed = 1; seed <= 2000; seed++) {
      const r = mulberry32(seed);
      const shape = pick(r, [[12, 7], [5, 16], [9, 9]]);
      const x = T.randn(shape, { key: T.randomKey(seed), ...f64 });
      const w = T.randn(pick(r, [shape, [1, shape[1]!], [shape[0]!, 1], [shape[1]!], []]), { key: T.randomKey(seed + 7), ...f64 });
      const steps = Array.from({ length: 5 }, () => pick(r, PAIR_STEPS));
      const f = (x0: T.Tensor, w0: T.Tensor) => {
        let v = x0;
        return steps.map((step) => (v = step(v, w0)));
      };
      if (checkAdjoint(`pair seed ${seed}`, seed, f, [x, w])) checked++;
      for (const t of [x, w]) t.dispose();
    }
    expect(checked).toBeGreaterThan(1900);
  });

  it('convolutions, transposed convolutions, pools, upsampling and group norm: 500 seeds', () => {
    let checked = 0;
    for (let seed = 1; seed <= 500; seed++) {
      const r = mulberry32(seed);
      const x = T.randn([2, 4, pick(r, [5, 6, 8]), pick(r, [5, 6, 7])], { key: T.randomKey(seed), ...f64 });
      const w = T.randn([4, 4, 3, 3], { key: T.randomKey(seed + 7), ...f64 });
      const steps = Array.from({ length: 4 }, () => pick(r, IMAGE_STEPS));
      const f = (x0: T.Tensor, w0: T.Tensor) => {
        const out: T.Tensor[] = [];
        let v = x0;
        for (const step of steps) {
          const next = step(v, w0.mul(0.3));
          if (next && next.size <= 20_000) out.push((v = next));
        }
        return out.length ? out : [v.mul(1)];
      };
      if (checkAdjoint(`image seed ${seed}`, seed, f, [x, w])) checked++;
      for (const t of [x, w]) t.dispose();
    }
    expect(checked).toBeGreaterThan(450);
  });
});
