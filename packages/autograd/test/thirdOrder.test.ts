// Third derivatives: checkGrads to order 3 in both modes, so every nesting of three
// transformations (jvp∘jvp∘jvp, vjp∘jvp∘vjp, ...) is checked against finite differences.
// Tolerances: checkGrads' defaults (see checkGrads.ts and opGradients.test.ts); the inputs are
// O(1) and the functions smooth with O(1) fourth derivatives, so the central differences of the
// order-2 maps are accurate to ~1e-9, far inside rtol 1e-5.

import { describe, it } from 'vitest';
import { type Tensor, randn, randomKey } from '@scorch/tensor';
import { checkGrads } from '@scorch/autograd';

const draw = (shape: number[], seed: number): Tensor => randn(shape, { dtype: 'float64', key: randomKey(seed) });

describe('checkGrads to order 3, forward and reverse, float64', () => {
  it('tanh', async () => {
    await checkGrads((x) => x.tanh(), [draw([5], 3001)], { order: 3 });
  });

  it('exp·sin', async () => {
    await checkGrads((x) => x.exp().mul(x.sin()), [draw([5], 3002)], { order: 3 });
  });

  it('two-layer tanh MLP in weights and inputs', async () => {
    // y = W2 tanh(W1 x + b1), batch of 3 inputs in R^4, 5 hidden units, 2 outputs.
    const mlp = (w1: Tensor, b1: Tensor, w2: Tensor, x: Tensor) => x.matmul(w1.transpose()).add(b1).tanh().matmul(w2.transpose());
    const args = [draw([5, 4], 3003).mul(0.5), draw([5], 3004), draw([2, 5], 3005).mul(0.5), draw([3, 4], 3006)];
    await checkGrads(mlp, args, { order: 3 });
  });
});
