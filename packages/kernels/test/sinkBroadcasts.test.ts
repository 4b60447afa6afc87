// sinkBroadcasts on WebGPU: elementwise work on a broadcast σ, computed by the jitted program on
// one row and broadcast (simplifyProgram), equals eager WebGPU, which computes it on every row.
// Elementwise WGSL evaluates the same expression per element whatever the size, and a product
// with inner dimension 1 is 0 + a·b in both matmul kernels, so the results agree bit for bit.

import { beforeAll, describe, expect, it } from 'vitest';
import { grad, makeProgram } from '@scorch/autograd';
import { type Tensor, broadcastTo, concat, cos, log, matmul, randn, randomKey, sin, splitKey, sum, tensor, where } from '@scorch/tensor';
import { gpuDevice, jitClearedAfterEachTest } from './helpers.js';

let dev = 'webgpu';
beforeAll(async () => {
  dev = (await gpuDevice()).device;
});

// Every jitted function a test makes is cleared when the test ends (helpers.ts says why).
const jit = jitClearedAfterEachTest();

/** Bytes of a tensor's values: equal exactly when every element has the same bits. */
const bytes = async (t: Tensor) => {
  const d = await t.data();
  return Array.from(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
};

const [k1, k2] = splitKey(randomKey(68), 2);

describe('sinkBroadcasts on WebGPU', () => {
  it('the embedding of a broadcast σ (log, K = 1 product, sin, cos, where, concat) and its gradient equal eager', async () => {
    const n = 37;
    const f = (s: Tensor, omega: Tensor, x: Tensor) => {
      const c = log(broadcastTo(s.reshape([1]), [n]));
      const angles = matmul(c.reshape([n, 1]), omega).mul(2 * Math.PI);
      const emb = concat([sin(angles), where(angles.less(0), cos(angles), angles.neg().exp())], 1);
      return concat([x, emb], 1);
    };
    const s = tensor(0.3, { device: dev });
    // A zero frequency, and σ = 1 (log σ = 0): products 0·ω of either sign, which the compiled
    // inline product and eager's matmul both sum from 0 (+0, not −0).
    const omega = tensor([[0.5, -2, 0, 3, 1.25]], { device: dev });
    const x = randn([n, 2], { key: k1, device: dev });
    const program = makeProgram(f)(s, omega, x);
    expect(program.equations.filter((e) => e.prim === 'sin' || e.prim === 'cos').map((e) => e.out.shape)).toEqual([[1, 5], [1, 5]]);
    for (const sigma of [0.3, 1.7, 1]) {
      const sv = tensor(sigma, { device: dev });
      expect(await bytes(jit(f)(sv, omega, x))).toEqual(await bytes(f(sv, omega, x)));
    }
    const loss = (s: Tensor, w: Tensor) => sum(f(s, omega, x).mul(w));
    const w = randn([n, 12], { key: k2, device: dev });
    const g = (s: Tensor, w: Tensor) => grad(loss, { argnums: [0, 1] })(s, w) as Tensor[];
    const [eager, compiled] = [g(s, w), jit(g)(s, w)];
    // d/dw is the embedding itself: bit for bit. d/dσ is a sum of m = 37·10 terms w·∂emb/∂σ (the
    // two columns of x add none), computed per element alike but summed in the compiled
    // reductions' order, not eager's: each order is within γ_m·Σ|terms| of the exact sum (γ_m =
    // m·u/(1 − m·u), u = 2⁻²⁴), so the two within twice that. |∂emb/∂σ| ≤ 2π·|ω|max/σ (sin and
    // cos of the angles, and exp(−angle) ≤ 1 where the angle is ≥ 0, each times the angle's
    // derivative 2π·ω/σ), so Σ|terms| ≤ Σ|w|·2π·3/σ.
    expect(await bytes(compiled[1]!)).toEqual(await bytes(eager[1]!));
    const [a, b] = [(await compiled[0]!.data())[0]!, (await eager[0]!.data())[0]!];
    const m = n * 10;
    const gamma = (m * 2 ** -24) / (1 - m * 2 ** -24);
    const sumAbsW = Array.from(await w.data()).reduce((acc, v) => acc + Math.abs(v), 0);
    expect(Math.abs(a - b)).toBeLessThanOrEqual(2 * gamma * sumAbsW * ((2 * Math.PI * 3) / 0.3));
  });
});
