// Random programs compiled by jit on WebGPU against the same functions run eagerly on WebGPU:
// chains of up to six steps (transcendentals, transposes, pads, flips, slices, concats, tiles,
// gathers, row sums, maxima, softmax, cumsum, reshapes that merge and split axes, products,
// selects) over inputs of rank 1 to 3, some intermediate values returned, with the gradient of
// the chain. It looks for what the parity tests' single primitives cannot show: kernels that do
// not validate together (seed 30 found a product reading one program output while writing
// another into the same block, which WebGPU rejects), and wrong elements. Reductions and products
// sum in other orders than eager, so values are held to 1e-3 of the output's largest magnitude:
// a misplaced element is off by the values' own size, far beyond that.

import { beforeAll, describe, expect, it } from 'vitest';
import { grad, jit } from '@scorch/autograd';
import * as T from '@scorch/tensor';
import { gpuDevice } from './helpers.js';

let gpu = 'webgpu';
beforeAll(async () => {
  gpu = (await gpuDevice()).device;
});

/** A linear congruential generator: the same program for a seed on every run. */
function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const pick = <X>(r: () => number, xs: readonly X[]): X => xs[Math.floor(r() * xs.length)]!;
type Step = (v: T.Tensor, r: () => number) => T.Tensor | null;
const ax = (v: T.Tensor, r: () => number) => Math.floor(r() * v.rank);
const STEPS: Step[] = [
  (v) => v.exp().mul(0.1),
  (v) => T.softplus(v),
  (v) => v.mul(v).add(1),
  (v) => v.transpose(),
  (v, r) => T.pad(v, v.shape.map(() => [Math.floor(r() * 2), Math.floor(r() * 3)] as [number, number])),
  (v, r) => T.flip(v, [ax(v, r)]),
  (v, r) => {
    const a = ax(v, r);
    return v.shape[a]! < 3 ? null : T.narrow(v, a, 1, v.shape[a]! - 2);
  },
  (v, r) => T.concat([v, v.mul(2)], ax(v, r)),
  (v, r) => {
    const a = ax(v, r);
    return T.tile(v, v.shape.map((_, i) => (i === a ? 2 : 1)));
  },
  (v, r) => {
    const a = ax(v, r);
    const n = v.shape[a]!;
    return T.indexSelect(v, a, Array.from({ length: n + 1 }, (_, i) => (i * 5) % n));
  },
  (v, r) => T.sum(v.exp(), ax(v, r), true).add(v),
  (v, r) => T.max(v, ax(v, r), true).sub(v),
  (v, r) => T.softmax(v, ax(v, r)),
  (v, r) => T.cumsum(v, ax(v, r)),
  (v) => v.reshape([v.size]).reshape(v.shape),
  (v, r) => {
    const a = ax(v, r);
    if (a === v.rank - 1) return null;
    const s = [...v.shape];
    s.splice(a, 2, v.shape[a]! * v.shape[a + 1]!);
    return v.reshape(s);
  },
  (v, r) => {
    const a = ax(v, r);
    if (v.shape[a]! % 2) return null;
    const s = [...v.shape];
    s.splice(a, 1, 2, v.shape[a]! / 2);
    return v.reshape(s);
  },
  (v) => (v.rank >= 2 ? T.matmul(v, T.ones([v.shape[v.rank - 1]!, 5], { device: v.device }).mul(0.1)) : null),
  (v) => T.where(v.greater(0), v, v.mul(-0.5)),
];

async function check(seed: number): Promise<void> {
  const r = generator(seed);
  const shape = pick(r, [[20, 33], [6, 7, 9], [300], [16, 17]]);
  // The choices drawn once, so that the chain and its gradient take the same steps.
  const choices = Array.from({ length: 32 }, () => r());
  const chain = (x0: T.Tensor): T.Tensor[] => {
    let c = 0;
    const rc = () => choices[c++ % choices.length]!;
    const outputs: T.Tensor[] = [];
    let v = x0;
    for (let k = 0; k < 6; k++) {
      const next = pick(rc, STEPS)(v, rc);
      if (!next || next.size === 0 || next.size > 30_000 || next.rank > 5) continue;
      v = next;
      if (rc() < 0.4) outputs.push(v);
    }
    return [...outputs, v];
  };
  const total = (z: T.Tensor) => chain(z).reduce((acc, t) => acc.add(T.sum(t.mul(0.01))), T.zeros([], { device: z.device }));
  const f = (x0: T.Tensor) => [...chain(x0), grad(total)(x0) as T.Tensor];
  const x = T.randn(shape, { key: T.randomKey(seed), device: gpu });
  const eager = f(x);
  const compiled = jit(f)(x);
  for (let i = 0; i < eager.length; i++) {
    const want = await eager[i]!.data();
    const got = await compiled[i]!.data();
    let scale = 0;
    for (const w of want) if (Number.isFinite(w)) scale = Math.max(scale, Math.abs(w));
    let bad = -1;
    for (let k = 0; k < want.length && bad < 0; k++) {
      if (want[k] === got[k] || (Number.isNaN(want[k]) && Number.isNaN(got[k]))) continue;
      if (!(Math.abs(want[k]! - got[k]!) <= 1e-3 * (1 + scale))) bad = k;
    }
    expect(bad, `seed ${seed}, output ${i}, element ${bad}: ${want[bad]} eager, ${got[bad]} jitted`).toBe(-1);
  }
  for (const t of [...eager, ...compiled, x]) t.dispose();
}

describe('random programs under jit on WebGPU equal their eager runs', () => {
  it('seeds 1 to 80', async () => {
    for (let seed = 1; seed <= 80; seed++) await check(seed);
  }, 300_000);
});
