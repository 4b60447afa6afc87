// Random programs compiled by jit on WebGPU against the same functions run eagerly on WebGPU:
// random chains of ops (tests/fixtures/randomChains.ts, the CPU fuzz test's) of up to six steps
// over float32 inputs of rank 1 to 3, some intermediate values returned, with the gradient of
// the chain. It looks for what the parity tests' single primitives cannot show: kernels that do
// not validate together (it found a product reading one program output while writing another
// into the same block, which WebGPU rejects), and wrong elements. Reductions and products sum in
// other orders than eager, so values are held to 1e-3 · (1 + the output's largest magnitude)
// (helpers.ts ofLargest). The gradient is of a loss Σ 0.01·t (LOSS_FACTOR), exactly 0.01 times
// the gradient of Σ t, and is held to the same rule on that unscaled gradient (ofLargest's
// unit = 0.01: 1e-3 · (0.01 + largest)); under 1e-3 · (1 + largest) a gradient 10% off, or all
// zeros, passed. So an element wrong by 10% of an output's largest magnitude fails wherever that
// magnitude is over ~0.01 (~1e-4 for the gradient), and a misplaced element, off by the values'
// own size, far beyond the bound. The fraction 1e-3 is the suite's allowance for other summation
// orders (not derived per op, and not widened here).

import { beforeAll, describe, expect, it } from 'vitest';
import { grad, jit } from '@scorch/autograd';
import * as T from '@scorch/tensor';
import { firstMismatch, gpuDevice, ofLargest } from './helpers.js';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';
import { pick, randomChain } from '../../../tests/fixtures/randomChains.js';

let gpu = 'webgpu';
beforeAll(async () => {
  gpu = (await gpuDevice()).device;
});

/** The factor of the loss whose gradient the programs return (see the header). */
const LOSS_FACTOR = 0.01;

/** Seed's chain on `x`'s device, its values and (last) the gradient of Σ LOSS_FACTOR·t over them. */
function program(seed: number, device: string): { f: (x0: T.Tensor) => T.Tensor[]; x: T.Tensor } {
  const r = mulberry32(seed);
  const shape = pick(r, [[20, 33], [6, 7, 9], [300], [16, 17]]);
  const chain = randomChain(Array.from({ length: 48 }, () => r()), { length: 6, maxSize: 30_000 });
  const total = (z: T.Tensor) => chain(z).reduce((acc, t) => acc.add(T.sum(t.mul(LOSS_FACTOR))), T.zeros([], { device: z.device }));
  const f = (x0: T.Tensor) => [...chain(x0), grad(total)(x0) as T.Tensor];
  return { f, x: T.randn(shape, { key: T.randomKey(seed), device }) };
}

/** The comparison of output i of n (the last is the gradient). */
const tolerance = (want: ArrayLike<number>, i: number, n: number) => ofLargest(want, 1e-3, i === n - 1 ? LOSS_FACTOR : 1);

async function check(seed: number): Promise<void> {
  const { f, x } = program(seed, gpu);
  const eager = f(x);
  const compiled = jit(f)(x);
  for (let i = 0; i < eager.length; i++) {
    const want = await eager[i]!.data();
    expect(firstMismatch(want, await compiled[i]!.data(), tolerance(want, i, eager.length)), `seed ${seed}, output ${i} (eager, then jitted)`).toBeNull();
  }
  for (const t of [...eager, ...compiled, x]) t.dispose();
}

describe('random programs under jit on WebGPU equal their eager runs', () => {
  it('seeds 1 to 80', async () => {
    for (let seed = 1; seed <= 80; seed++) await check(seed);
  }, 300_000);

  it('the comparison rejects a gradient 10% off, or all zeros (seed 16, which 1e-3·(1 + largest) let pass)', async () => {
    const { f, x } = program(16, gpu);
    const outputs = f(x);
    const g = await outputs.at(-1)!.data();
    const tol = tolerance(g, outputs.length - 1, outputs.length);
    expect(firstMismatch(g, g.map((v) => v * 0.9), tol), 'gradient × 0.9').not.toBeNull();
    expect(firstMismatch(g, g.map(() => 0), tol), 'gradient zeroed').not.toBeNull();
    for (const t of new Set([...outputs, x])) t.dispose();
  });
});

// Random expressions over IEEE special values, jitted and eager on WebGPU, bit for bit (any NaN
// for NaN): leaves x and y over NaN, ±∞, ±0, subnormals and the float32 extremes, and constants of
// the same made inside the function (full, scalars); unary ops, binary ops with a constant, with
// the same value twice and with another expression, and reductions over size-1 axes, softmax,
// logsumexp and scans over rows of 4; each with its gradient. WGSL lets the shader compiler
// assume no NaN, infinities or signed zeros, so the jitted kernels' constants and repeated values
// are opaque (compiler/writer.ts). Seeds 47, 48, 68, 93, 123 and 141 found a −0 constant read as
// +0 and min/max/clamp picking the wrong zero of two constants; 351 a −∞ constant folded
// (silu(−∞) gave 0, not NaN); 548 1/(1/x) folded to x; 1376 NaN · NaN in an unrolled cumprod
// folded to +∞.
describe('random expressions over NaN, ±∞, ±0 and subnormals: jitted as eager on WebGPU', () => {
  type Tensor = T.Tensor;
  type Fn = (x: Tensor, y: Tensor) => Tensor;
  const SPECIALS = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-40, 1e-45, 3.4028234663852886e38, -3.4028234663852886e38, 1, -1, 2, 0.5, -3, 1e30, 88.7, -88.7, 1e-20, 7];
  const CONSTS = [0, -0, 1, -1, 2, 0.5, NaN, Infinity, -Infinity, 1e-40, 3.4028234663852886e38, 1e-45];
  const choose = <X,>(r: () => number, a: readonly X[]): X => a[Math.floor(r() * a.length)]!;
  const constant = (c: number, like: Tensor, shape: readonly number[]) => T.full(shape, c, { device: like.device, dtype: like.dtype });
  const rows = (a: Tensor, f: (m: Tensor) => Tensor) => (a.shape.length === 0 ? a : f(a.reshape([-1, 4])).reshape(a.shape));
  const UNARY: ((a: Tensor) => Tensor)[] = [
    (a) => a.neg(), (a) => a.abs(), (a) => a.exp(), (a) => a.log(), (a) => a.sqrt(), (a) => a.square(), (a) => a.reciprocal(), (a) => a.relu(),
    (a) => a.sign(), (a) => a.tanh(), (a) => a.sigmoid(), (a) => a.floor(), (a) => a.cast('int32').cast(a.dtype), (a) => a.greater(0).cast(a.dtype),
    (a) => a.clamp(1, 1), (a) => a.clamp(-0, 0), (a) => a.pow(0), (a) => a.pow(1), (a) => a.pow(2), (a) => a.pow(0.5), (a) => a.rsqrt(),
    (a) => a.softplus(), (a) => a.round(), (a) => a.ceil(), (a) => a.erf(), (a) => a.sin(), (a) => a.elu(), (a) => a.silu(), (a) => a.gelu(),
  ];
  const BINARY: ((a: Tensor, b: Tensor) => Tensor)[] = [
    (a, b) => a.add(b), (a, b) => a.sub(b), (a, b) => a.mul(b), (a, b) => a.div(b), (a, b) => a.maximum(b), (a, b) => a.minimum(b), (a, b) => a.pow(b),
    (a, b) => T.where(a.less(b), a, b), (a, b) => T.where(a.equal(b), a, b), (a, b) => T.where(a.less(b), a, a), (a, b) => a.clamp(b, b),
  ];
  const REDUCE: ((a: Tensor) => Tensor)[] = [
    (a) => (a.shape.length === 0 ? a : a.unsqueeze(-1).sum(-1)), (a) => (a.shape.length === 0 ? a : a.unsqueeze(-1).max(-1)),
    (a) => (a.shape.length === 0 ? a : a.unsqueeze(-1).mean(-1)), (a) => rows(a, (m) => T.softmax(m, -1)),
    (a) => rows(a, (m) => m.logsumexp(-1).reshape([-1, 1]).expand(m.shape)), (a) => rows(a, (m) => m.cumsum(1)), (a) => rows(a, (m) => m.cumprod(1)),
  ];
  function expression(r: () => number, depth: number): Fn {
    if (depth <= 0 || r() < 0.15) {
      const k = r();
      if (k < 0.35) return (x) => x;
      if (k < 0.6) return (_x, y) => y;
      const c = choose(r, CONSTS);
      return k < 0.8 ? (x) => constant(c, x, x.shape) : (x) => constant(c, x, []);
    }
    const k = r();
    if (k < 0.4) {
      const a = expression(r, depth - 1);
      const u = choose(r, UNARY);
      return (x, y) => u(a(x, y));
    }
    if (k < 0.55) {
      const a = expression(r, depth - 1);
      const c = choose(r, CONSTS);
      const b = choose(r, BINARY);
      const left = r() < 0.5;
      return (x, y) => {
        const v = a(x, y);
        return left ? b(v, constant(c, v, [])) : b(constant(c, v, []), v);
      };
    }
    if (k < 0.65) {
      const a = expression(r, depth - 1);
      const b = choose(r, BINARY);
      return (x, y) => {
        const v = a(x, y);
        return b(v, v);
      };
    }
    if (k < 0.72) {
      const a = expression(r, depth - 1);
      const reduce = choose(r, REDUCE);
      return (x, y) => reduce(a(x, y));
    }
    const a = expression(r, depth - 1);
    const c = expression(r, depth - 1);
    const b = choose(r, BINARY);
    return (x, y) => b(a(x, y), c(x, y));
  }
  const sameBits = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]!) && Number.isNaN(b[i]!))) return i;
    return a.length === b.length ? -1 : a.length;
  };
  async function check(seed: number): Promise<void> {
    const r = mulberry32(seed);
    const f = expression(r, 4);
    const xs = Array.from({ length: 20 }, (_, i) => (i < SPECIALS.length ? SPECIALS[i]! : choose(r, SPECIALS)));
    const ys = Array.from({ length: 20 }, () => choose(r, SPECIALS));
    const x = T.tensor(xs, { device: gpu });
    const y = T.tensor(ys, { device: gpu });
    const g: Fn = (x, y) => grad((z: Tensor) => T.sum(f(z, y)))(x) as Tensor;
    for (const [name, h] of [['value', f], ['gradient', g]] as const) {
      const eager = await T.tidy(() => h(x, y)).data();
      const jitted = await jit(h)(x, y).data();
      const i = sameBits(eager, jitted);
      const show = (v: number | undefined) => (Object.is(v, -0) ? '-0' : String(v));
      expect(i, `seed ${seed}, ${name}: at ${i} (x ${show(xs[i])}, y ${show(ys[i])}) eager ${show(eager[i])}, jitted ${show(jitted[i])}`).toBe(-1);
    }
  }
  it('seeds 1 to 60 and the seeds that found folds', async () => {
    for (const seed of [...Array.from({ length: 60 }, (_, i) => i + 1), 68, 93, 123, 141, 351, 548, 1376]) await check(seed);
  }, 300_000);
});
