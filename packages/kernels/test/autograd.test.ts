// Autograd on the GPU: grad, vjp, jvp, hvp, jacobian (both modes) and vmap of an MLP with tanh and
// SiLU, a reduction (logsumexp) and a matmul chain, against the same float32 computation on the
// CPU reference.
//
// Tolerance per case: |gpu − cpu| ≤ C·2^-24·max|cpu| (+ 2^-126), where C adds up, along the
// longest chain of primitives forward and backward, each primitive's error bound in units of
// 2^-24 on both devices: 6 for an elementwise op (≤ 3 ULP), K for a K-term matmul or sum. The
// counts are written next to each case; they are bounds for well-conditioned inputs (no
// cancellation), which the inputs here are (normal data, small weights).

import { beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, memory, randomKey, randn, tensor, tidy } from '@scorch/tensor';
import { grad, hvp, jacobian, jit, jvp, valueAndGrad, vjp, vmap } from '@scorch/autograd';
import type { WebGPUHandle } from '@scorch/kernels';
import { FLUSH_FLOOR, RUN_SEED, firstMismatch, gpuDevice, hashSeed } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});

/** A CPU tensor and its GPU copy (same float32 values). */
function both(shape: number[], scale: number, name: string): { cpu: Tensor; gpu: Tensor } {
  const cpu = randn(shape, { key: randomKey(hashSeed(name)) }).mul(scale);
  return { cpu, gpu: tensor(cpu.dataSync(), { shape, device: gpu.device }) };
}

async function expectClose(cpu: Tensor | Tensor[], g: Tensor | Tensor[], units: number, what: string): Promise<void> {
  const cs = Array.isArray(cpu) ? cpu : [cpu];
  const gs = Array.isArray(g) ? g : [g];
  expect(gs.length).toBe(cs.length);
  for (let j = 0; j < cs.length; j++) {
    expect(gs[j]!.device).toBe(gpu.device);
    expect(gs[j]!.shape).toEqual(cs[j]!.shape);
    const ref = cs[j]!.dataSync();
    const scale = Array.from(ref).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const mismatch = firstMismatch(ref, await gs[j]!.data(), () => units * 2 ** -24 * scale + FLUSH_FLOOR);
    expect(mismatch, `${what}[${j}] (seed ${RUN_SEED})`).toBeNull();
  }
}

// MLP 4 → 16 (tanh) → 16 (SiLU) → 1 on a batch of 8.
const mlp = (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, w3: Tensor): Tensor =>
  x.matmul(w1).add(b1).tanh().matmul(w2).add(b2).silu().matmul(w3);
const mlpLoss = (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, w3: Tensor): Tensor => mlp(x, w1, b1, w2, b2, w3).square().mean();

function mlpParams() {
  return {
    x: both([8, 4], 1, 'x'),
    w1: both([4, 16], 0.5, 'w1'),
    b1: both([16], 0.1, 'b1'),
    w2: both([16, 16], 0.25, 'w2'),
    b2: both([16], 0.1, 'b2'),
    w3: both([16, 1], 0.25, 'w3'),
  };
}

describe('autograd on the GPU matches the CPU', () => {
  // Forward: matmul 4 + add 6 + tanh 6 + matmul 16 + add 6 + silu (4 ops) 24 + matmul 16 +
  // square 6 + mean (8 + 6) ≈ 100; backward about the same again, plus the forward: C = 300.
  it('grad of an MLP loss with respect to every parameter (C = 300)', async () => {
    const p = mlpParams();
    const g = grad(mlpLoss, { argnums: [1, 2, 3, 4, 5] });
    const cpu = g(p.x.cpu, p.w1.cpu, p.b1.cpu, p.w2.cpu, p.b2.cpu, p.w3.cpu) as Tensor[];
    const onGpu = g(p.x.gpu, p.w1.gpu, p.b1.gpu, p.w2.gpu, p.b2.gpu, p.w3.gpu) as Tensor[];
    await expectClose(cpu, onGpu, 300, 'grad');
  });

  it('valueAndGrad gives the loss too (C = 100 for the value)', async () => {
    const p = mlpParams();
    const vg = valueAndGrad((w1: Tensor) => mlpLoss(p.x.cpu, w1, p.b1.cpu, p.w2.cpu, p.b2.cpu, p.w3.cpu));
    const vgGpu = valueAndGrad((w1: Tensor) => mlpLoss(p.x.gpu, w1, p.b1.gpu, p.w2.gpu, p.b2.gpu, p.w3.gpu));
    const [vc, gc] = vg(p.w1.cpu);
    const [vgv, ggv] = vgGpu(p.w1.gpu);
    await expectClose(vc, vgv, 100, 'value');
    await expectClose(gc as Tensor, ggv as Tensor, 300, 'gradient');
  });

  // The chain A(5×33)·B(33×17)·C(17×3), then tanh: forward 33 + 17 + 6, backward the same: C = 120.
  it('vjp of a matmul chain with a random cotangent (C = 120)', async () => {
    const a = both([5, 33], 0.3, 'A');
    const b = both([33, 17], 0.3, 'B');
    const c = both([17, 3], 0.3, 'C');
    const u = both([5, 3], 1, 'u');
    const f = (x: Tensor, y: Tensor, z: Tensor) => x.matmul(y).matmul(z).tanh();
    const [yc, pbc] = vjp(f, a.cpu, b.cpu, c.cpu);
    const [yg, pbg] = vjp(f, a.gpu, b.gpu, c.gpu);
    await expectClose(yc, yg, 60, 'vjp value');
    await expectClose(pbc(u.cpu), pbg(u.gpu), 120, 'vjp cotangents');
  });

  it('jvp of the MLP with respect to its input (C = 200: forward plus tangent)', async () => {
    const p = mlpParams();
    const v = both([8, 4], 1, 'v');
    const f = (x: Tensor) => mlp(x, p.w1.cpu, p.b1.cpu, p.w2.cpu, p.b2.cpu, p.w3.cpu);
    const fg = (x: Tensor) => mlp(x, p.w1.gpu, p.b1.gpu, p.w2.gpu, p.b2.gpu, p.w3.gpu);
    const [yc, tc] = jvp(f, [p.x.cpu], [v.cpu]);
    const [yg, tg] = jvp(fg, [p.x.gpu], [v.gpu]);
    await expectClose(yc, yg, 100, 'jvp value');
    await expectClose(tc, tg, 200, 'jvp tangent');
  });

  // logsumexp over 257 (max, sub, exp, sum 257, log, add) of x·W (K = 7): forward ≈ 300, the
  // Hessian-vector product (forward over reverse) about three passes: C = 1000.
  it('hvp of a logsumexp reduction (C = 1000)', async () => {
    const x = both([7], 1, 'hx');
    const w = both([7, 257], 0.5, 'hW');
    const v = both([7], 1, 'hv');
    const f = (wm: Tensor) => (xv: Tensor) => xv.matmul(wm).logsumexp();
    await expectClose(hvp(f(w.cpu), [x.cpu], [v.cpu]) as Tensor, hvp(f(w.gpu), [x.gpu], [v.gpu]) as Tensor, 1000, 'hvp');
  });

  it('jacobian of softplus(W x) in reverse and forward mode (C = 60)', async () => {
    const x = both([5], 1, 'jx');
    const w = both([3, 5], 0.5, 'jW');
    const f = (wm: Tensor) => (xv: Tensor) => wm.matmul(xv).softplus();
    for (const mode of ['rev', 'fwd'] as const) {
      const jc = jacobian(f(w.cpu), { mode })(x.cpu);
      const jg = jacobian(f(w.gpu), { mode })(x.gpu);
      expect(jg.shape).toEqual([3, 5]);
      await expectClose(jc, jg, 60, `jacobian ${mode}`);
    }
  });

  it('backward() on GPU tensors that require grad (C = 300)', async () => {
    const p = mlpParams();
    for (const t of [p.w1.cpu, p.w1.gpu]) t.requiresGrad = true;
    mlpLoss(p.x.cpu, p.w1.cpu, p.b1.cpu, p.w2.cpu, p.b2.cpu, p.w3.cpu).backward();
    mlpLoss(p.x.gpu, p.w1.gpu, p.b1.gpu, p.w2.gpu, p.b2.gpu, p.w3.gpu).backward();
    await expectClose(p.w1.cpu.grad!, p.w1.gpu.grad!, 300, 'w1.grad');
  });
});

describe('vmap on the GPU matches the CPU', () => {
  // One example's loss: the MLP on x [4] as a [1, 4] batch. The chain is the batch-8 loss's
  // (the batch folds into the matmuls' rows; mean over one row is exact): C = 300 as above.
  const exampleLoss = (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, w3: Tensor): Tensor =>
    mlpLoss(x.reshape([1, 4]), w1, b1, w2, b2, w3);

  it('per-example gradients: vmap(grad) over the batch, weights shared (C = 300)', async () => {
    const p = mlpParams();
    const perExample = vmap(grad(exampleLoss, { argnums: [1, 2, 3, 4, 5] }), { inAxes: [0, null, null, null, null, null] });
    const cpu = perExample(p.x.cpu, p.w1.cpu, p.b1.cpu, p.w2.cpu, p.b2.cpu, p.w3.cpu) as Tensor[];
    const onGpu = perExample(p.x.gpu, p.w1.gpu, p.b1.gpu, p.w2.gpu, p.b2.gpu, p.w3.gpu) as Tensor[];
    expect(onGpu.map((t) => t.shape)).toEqual([[8, 4, 16], [8, 16], [8, 16, 16], [8, 16], [8, 16, 1]]);
    await expectClose(cpu, onGpu, 300, 'per-example grad');
  });

  it('the exact Jacobian trace as vmap of jvp over basis tangents, eager and under jit (C = 200)', async () => {
    const p = mlpParams();
    // s(x) = MLP 4 → 16 → 16 → 4 applied row-wise; tr ∂s/∂x per row from 4 basis JVPs in one pass.
    const w3 = both([16, 4], 0.25, 'w3-square');
    const trace = (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, w: Tensor): Tensor => {
      const s = (xx: Tensor) => mlp(xx, w1, b1, w2, b2, w);
      const basis = (e: Tensor) => e.reshape([1, 4]).expand([8, 4]);
      const diag = vmap((e: Tensor) => jvp(s, [x], [basis(e)])[1].mul(basis(e)).sum(1))(eyeLike(x));
      return diag.sum(0);
    };
    const eyeLike = (x: Tensor) => tensor([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], { shape: [4, 4], device: x.device });
    const cpu = trace(p.x.cpu, p.w1.cpu, p.b1.cpu, p.w2.cpu, p.b2.cpu, w3.cpu);
    const onGpu = trace(p.x.gpu, p.w1.gpu, p.b1.gpu, p.w2.gpu, p.b2.gpu, w3.gpu);
    const compiled = jit(trace)(p.x.gpu, p.w1.gpu, p.b1.gpu, p.w2.gpu, p.b2.gpu, w3.gpu);
    expect(onGpu.shape).toEqual([8]);
    await expectClose(cpu, onGpu, 200, 'trace');
    await expectClose(cpu, compiled, 200, 'jit trace');
  });
});

describe('gradients through the new ops on the GPU match the CPU', () => {
  // f(x) = Σ cumprod(gelu(x)·½ + 1, axis 1) · clamp(x, −1, 1) + Σ tile(flip(erf(x)))²: forward,
  // gelu 5 ops (30) + mul/add 12 + cumprod over 9 (9) + clamp/mul 12 + erf (its 2^-21 absolute
  // is ≤ 8 units at |erf| ~ 1) + square/sum (6 + 36): ≈ 110; the backward runs cumprod's 4-level
  // scan (4 products and sums per level: 4·4·6 = 96), erf's and gelu's derivatives (≈ 40) and the
  // sums of tile's transpose (2): C = 300 with room.
  const f = (x: Tensor) => x.gelu().mul(0.5).add(1).cumprod(1).mul(x.clamp(-1, 1)).sum()
    .add(x.erf().flip().tile([2, 1]).square().sum());
  it('grad', async () => {
    const x = both([6, 9], 1, 'new-ops-x');
    await expectClose(grad(f)(x.cpu) as Tensor, grad(f)(x.gpu) as Tensor, 300, 'grad');
  });

  it('frees every GPU buffer it made under tidy (the scan kernels use no scratch)', async () => {
    const x = both([6, 9], 1, 'new-ops-memory');
    const before = memory();
    tidy(() => {
      grad(f)(x.gpu);
      x.gpu.argmax(1).add(x.gpu.cumsum(0).argmin(0).sum());
    });
    expect(memory()).toEqual(before);
  });
});
