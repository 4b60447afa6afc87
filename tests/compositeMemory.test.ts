// An op leaves only its result. Ops composed of other ops (a broadcast against a number,
// softplus, logsumexp, a convolution) and the transformations (grad, jvp, vmap, jacobian) dispose
// the tensors they create on the way when they return (`composite`), as a primitive does and as
// TF.js's ops do, so `const y = op(x); …; y.dispose()` frees everything without a `tidy`. Where
// the intermediates are still needed they stay: under an enclosing transformation, and when an
// input requires grad (the ambient graph's `backward()` reads them); `vjp` keeps its forward
// values for the pullback.

import { describe, expect, it } from 'vitest';
import * as T from '@scorch/tensor';
import { checkGrads, grad, hessian, hvp, jacobian, jvp, noGrad, valueAndGrad, vjp, vmap } from '@scorch/autograd';

const x = T.randn([4, 6], { key: T.randomKey(1) });
const image = T.randn([1, 2, 6, 6], { key: T.randomKey(2) });
const kernel = T.randn([2, 2, 3, 3], { key: T.randomKey(3) });
const labels = T.tensor([0, 1, 2, 3], { dtype: 'int32' });
const row = T.randn([6], { key: T.randomKey(4) });
const tangent = T.randn([4, 6], { key: T.randomKey(5) });
const ones = T.ones([6]);
const mask = x.greater(0);
const f = (z: T.Tensor) => T.sum(T.softplus(z.mul(z)).exp());
const g = (z: T.Tensor) => T.softplus(z.mul(z)).exp();

/** Calls that create intermediates; each must leave exactly its outputs alive. */
const CALLS: Record<string, () => T.Tensor | T.Tensor[]> = {
  'x · 2 (a constant and its broadcast)': () => x.mul(2),
  'x + row (a broadcast)': () => x.add(row),
  '2 − x': () => T.sub(2, x),
  'x > 0': () => x.greater(0),
  'x ≥ 0': () => x.greaterEqual(0),
  minimum: () => T.minimum(x, 0),
  maximum: () => T.maximum(x, 0.5),
  'where with numbers': () => T.where(mask, x, 0),
  abs: () => x.abs(),
  rsqrt: () => T.rsqrt(x),
  'pow (tensor exponent)': () => x.pow(3),
  softplus: () => T.softplus(x),
  silu: () => T.silu(x),
  relu: () => T.relu(x),
  elu: () => T.elu(x),
  gelu: () => T.gelu(x),
  'gelu (tanh)': () => T.gelu(x, { approximate: 'tanh' }),
  clamp: () => T.clamp(x, -0.5, 0.5),
  isFinite: () => T.isFinite(x),
  'sum (keepdims)': () => T.sum(x, 1, true),
  'max (keepdims)': () => T.max(x, 1, true),
  min: () => T.min(x, 1),
  mean: () => T.mean(x, 1),
  logsumexp: () => T.logsumexp(x, 1),
  variance: () => T.variance(x, 0),
  softmax: () => T.softmax(x, 1),
  logSoftmax: () => T.logSoftmax(x, 0),
  'argmax (keepdims)': () => T.argmax(x, 1, { keepdims: true }),
  'matmul (vector)': () => T.matmul(x, ones),
  broadcastTo: () => T.broadcastTo(row, [3, 6]),
  flip: () => T.flip(x),
  tile: () => T.tile(x, [2, 3]),
  stack: () => T.stack([x, x], 1),
  'indexSelect (host indices)': () => T.indexSelect(x, 0, [3, 0, 0]),
  rademacher: () => T.rademacher([5], { key: T.randomKey(6) }),
  conv2d: () => T.conv2d(image, kernel, { padding: 1 }),
  convTranspose2d: () => T.convTranspose2d(image, kernel, { stride: 2 }),
  maxPool2d: () => T.maxPool2d(image, 2),
  avgPool2d: () => T.avgPool2d(image, 3, { stride: 1, padding: 1 }),
  upsample: () => T.upsample(image, { scaleFactor: 2, mode: 'bilinear' }),
  layerNorm: () => T.layerNorm(x, [6]),
  groupNorm: () => T.groupNorm(image, 2),
  softmaxCrossEntropy: () => T.softmaxCrossEntropy(x, labels),
  grad: () => grad(f)(x) as T.Tensor,
  valueAndGrad: () => {
    const [value, gradient] = valueAndGrad(f)(x);
    return [value, gradient as T.Tensor];
  },
  jvp: () => jvp(g, [x], [tangent]),
  vmap: () => vmap(g)(x),
  'vmap of grad': () => vmap(grad(f))(x),
  hvp: () => hvp(f, [x], [x]) as T.Tensor,
  'jacobian (rev)': () => jacobian(g)(row),
  'jacobian (fwd)': () => jacobian(g, { mode: 'fwd' })(row),
  hessian: () => hessian(f)(row),
  'grad of grad': () => grad((z: T.Tensor) => T.sum(grad(f)(z) as T.Tensor))(x) as T.Tensor,
};

/** Tensors alive after `call` and disposing what it returned, less those alive before. */
function leftBehind(call: () => T.Tensor | T.Tensor[]): number {
  const before = T.memory();
  const out = call();
  for (const t of new Set(Array.isArray(out) ? out : [out])) t.dispose();
  const after = T.memory();
  expect(after.buffers - before.buffers).toBe(after.tensors - before.tensors);
  return after.tensors - before.tensors;
}

/**
 * A training-style step (it leaves w.grad and returns the tensors it named) gives `want` as w's
 * gradient, then runs `steps` more times, disposing what it named and w.grad (after `update`),
 * with memory() unchanged.
 */
async function expectFlatSteps(w: T.Tensor, step: () => T.Tensor[], want: T.Tensor, steps: number, update?: () => void): Promise<void> {
  const first = step();
  expect(Array.from(await w.grad!.data())).toEqual(Array.from(await want.data()));
  for (const t of [...first, want]) t.dispose();
  w.grad!.dispose();
  w.grad = null;
  const before = T.memory();
  for (let i = 0; i < steps; i++) {
    for (const t of step()) t.dispose();
    update?.();
    w.grad!.dispose();
    w.grad = null;
  }
  expect(T.memory()).toEqual(before);
}

describe('ops and transformations leave only their results', () => {
  it.each(Object.entries(CALLS))('%s', (_name, call) => {
    expect(leftBehind(call)).toBe(0);
  });

  it('a result that is a view of an intermediate keeps its values (logsumexp without keepdims reshapes its sum)', async () => {
    const want = T.tidy(() => T.logsumexp(x, 1, true).reshape([4]));
    const got = T.logsumexp(x, 1);
    expect(Array.from(await got.data())).toEqual(Array.from(await want.data()));
    for (const t of [want, got]) t.dispose();
  });

  it('an op that throws after creating constants disposes them', () => {
    const five = T.ones([5]);
    const before = T.memory().tensors;
    expect(() => T.where(mask, 1, five)).toThrow(/cannot be broadcast/);
    expect(T.memory().tensors).toBe(before);
    five.dispose();
  });

  it('inside a tidy, the result joins the tidy scope and the intermediates are gone already', () => {
    const before = T.memory().tensors;
    const kept = T.tidy(() => {
      const y = T.softmax(x, 1);
      expect(T.memory().tensors).toBe(before + 1);
      return y.mul(2);
    });
    expect(T.memory().tensors).toBe(before + 1);
    kept.dispose();
  });

  it('intermediates stay for the ambient graph: backward() through softplus and a broadcast after they returned', async () => {
    const w = T.tensor([[-1, 0.5], [2, -3]], { dtype: 'float64' });
    w.requiresGrad = true;
    const y = T.sum(T.softplus(w.mul(2)).add(T.tensor([1, 2], { dtype: 'float64' })));
    y.backward();
    // d/dw Σ softplus(2w) = 2σ(2w)
    const want = [-2, 1, 4, -6].map((v) => 2 / (1 + Math.exp(-v)));
    const got = Array.from(await w.grad!.data());
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 14));
    for (const t of [y, w]) t.dispose();
  });

  it('the intermediates kept for the ambient graph go with the results: a training-style loop that disposes its own tensors holds flat memory', async () => {
    // PyTorch-style steps with no tidy, each disposing every tensor it names. The composed ops'
    // intermediates (softplus, logsumexp, layer norm, the mean's constant) are the graph's until
    // their op's result is disposed; before, each step left 31 tensors behind for good.
    const inputs = T.randn([8, 3], { key: T.randomKey(11), dtype: 'float64' });
    const w = T.randn([3, 4], { key: T.randomKey(12), dtype: 'float64' });
    w.requiresGrad = true;
    const step = () => {
      const h = T.matmul(inputs, w);
      const s = T.softplus(h);
      const n = T.layerNorm(s, [4]);
      const l = T.logsumexp(n, 1);
      const loss = T.mean(l);
      loss.backward();
      const named = [h, s, n, l, loss];
      return named;
    };
    // The same gradient in a tidy, where everything is freed at the end.
    const want = T.tidy(() => {
      step();
      const g = w.grad!;
      w.grad = null;
      return g;
    });
    await expectFlatSteps(w, step, want, 50, () =>
      noGrad(() => {
        const scaled = w.grad!.mul(0.01);
        const update = w.sub(scaled);
        w.assign(update);
        for (const t of [scaled, update]) t.dispose();
      }),
    );
    for (const t of [inputs, w]) t.dispose();
  });

  it('a createGraph backward pass leaves what it made to the .grads it made: a gradient-penalty step that disposes its own tensors holds flat memory', async () => {
    // backward({ createGraph: true }) records the pass: its cotangents and the rules'
    // intermediates are read by the new .grads' graph, and by nothing else. Outside a tidy
    // nothing freed them (nor a .grad that such a pass replaced): each step below left 52 tensors.
    const inputs = T.randn([8, 3], { key: T.randomKey(13), dtype: 'float64' });
    const w = T.randn([3, 4], { key: T.randomKey(14), dtype: 'float64' });
    w.requiresGrad = true;
    const step = () => {
      const h = T.matmul(inputs, w);
      const s = T.softplus(h);
      const loss = T.sum(s);
      loss.backward(undefined, { createGraph: true });
      loss.backward(undefined, { createGraph: true }); // accumulates: the first .grad is replaced
      const g = w.grad!;
      w.grad = null;
      const sq = g.mul(g);
      const penalty = T.sum(sq);
      penalty.backward(); // w.grad = ∂ Σ (2 ∂loss/∂w)² / ∂w
      return [h, s, loss, g, sq, penalty];
    };
    // The same arithmetic: one forward pass, pulled back twice, the two gradients added.
    const penalty = (v: T.Tensor) => {
      const [loss, pullback] = vjp((z: T.Tensor) => T.sum(T.softplus(T.matmul(inputs, z))), v);
      const g = pullback(T.onesLike(loss))[0]!.add(pullback(T.onesLike(loss))[0]!);
      return T.sum(g.mul(g));
    };
    await expectFlatSteps(w, step, grad(penalty)(w) as T.Tensor, 20);
    for (const t of [inputs, w]) t.dispose();
  });

  it('a composed op with two results keeps its intermediates for the graph until both are disposed', async () => {
    const x = T.tensor([0.25, -1.5], { dtype: 'float64' });
    x.requiresGrad = true;
    const before = T.memory().tensors;
    const [a, b] = T.composite(() => {
      const e = T.exp(x);
      return [e.mul(2), e.mul(3)];
    });
    // e, a and b, and each product's constant (the graph saved them too; one tensor each, the
    // backend's broadcast of the number, where a full of shape [] and its broadcast made two)
    expect(T.memory().tensors).toBe(before + 5);
    a.dispose(); // frees a and its product's constant, which only a's graph reaches
    expect(T.memory().tensors).toBe(before + 3);
    const y = T.sum(b);
    y.backward(); // reads e, which a's disposal left alone: d/dx Σ 3eˣ = 3eˣ
    expect(Array.from(await x.grad!.data())).toEqual([0.25, -1.5].map((v) => 3 * Math.exp(v)));
    for (const t of [y, b, x.grad!]) t.dispose();
    x.grad = null;
    expect(T.memory().tensors).toBe(before);
    x.dispose();
  });

  it('a body that records into the ambient graph and keeps its recorded result (backward with createGraph) leaves the rest to the graph', async () => {
    const w = T.tensor([0.5, 1.5], { dtype: 'float64' });
    w.requiresGrad = true;
    const y = T.sum(T.exp(w));
    T.composite(() => {
      y.backward(undefined, { createGraph: true });
      return null;
    });
    const g = w.grad!;
    w.grad = null;
    T.sum(g).backward();
    // d/dw Σ exp(w) = exp(w), again
    const got = Array.from(await w.grad!.data());
    got.forEach((v, i) => expect(v).toBeCloseTo(Math.exp([0.5, 1.5][i]!), 14));
    for (const t of [y, g, w]) t.dispose();
  });

  it('an asynchronous body is refused, as by tidy, and what it made before its first await is disposed', () => {
    const before = T.memory().tensors;
    expect(() => T.composite(async () => x.mul(2))).toThrow(/composite: the function returned a Promise/);
    expect(T.memory().tensors).toBe(before);
  });

  it('vjp keeps its forward values for the pullback, which may run later and more than once', async () => {
    const [y, pullback] = vjp(g, x);
    const first = pullback(T.onesLike(y))[0]!;
    const second = pullback(T.onesLike(y))[0]!;
    expect(Array.from(await second.data())).toEqual(Array.from(await first.data()));
    const reference = grad((z: T.Tensor) => T.sum(g(z)))(x) as T.Tensor;
    expect(Array.from(await first.data())).toEqual(Array.from(await reference.data()));
    for (const t of [y, first, second, reference]) t.dispose();
  });

  it('a side value made inside grad lives on when kept, tracer and all, and is disposed when not, as in a tidy', async () => {
    let kept: T.Tensor | null = null;
    let dropped: T.Tensor | null = null;
    const gradient = grad((z: T.Tensor) => {
      kept = T.keep(T.sum(z.mul(z)).detach());
      dropped = T.sum(z).detach();
      return f(z);
    })(x) as T.Tensor;
    const squares = Array.from(await x.data()).reduce((s, v) => s + Math.fround(v * v), 0);
    expect((await kept!.data())[0]).toBeCloseTo(squares, 4);
    expect(() => dropped!.dataSync()).toThrow(/was disposed/);
    for (const t of [gradient, kept!]) t.dispose();
  });

  it('a tidy inside grad or vjp, or around a vmap body under grad, leaves the values the backward pass reads, freed when the transformation or the enclosing tidy ends', async () => {
    // d/dz Σ sin(z²)·z = cos(z²)·2z² + sin(z²) = h(u), u = z², on the host in float64. In float32,
    // u (≤ 9 here) is off by at most ulp(9)/2 = 4.8e-7, which moves h by at most
    // |h'(u)| ≤ 2 + 2u + 1 = 21 times that (1e-5); the other roundings are a few ulps of
    // values ≤ 19 (1.9e-6 each): below 1e-4 together.
    const z = T.tensor([0.5, -1.25, 2, 3]);
    const body = (w: T.Tensor) => T.tidy(() => T.sum(w.mul(w).sin().mul(w)));
    const expected = Array.from(await z.data(), (v) => Math.cos(v * v) * 2 * v * v + Math.sin(v * v));
    const before = T.memory();
    const results: T.Tensor[] = [
      grad(body)(z) as T.Tensor,
      // Nested tidies, and a tidy around a vmap's body, inside grad.
      grad((w: T.Tensor) => T.tidy(() => T.sum(vmap((r: T.Tensor) => T.tidy(() => body(r)))(w.reshape([4, 1])))))(z) as T.Tensor,
    ];
    // vjp's forward values belong to the enclosing scope (docs/autograd.md): this tidy's.
    results.push(T.tidy(() => {
      const [y, pullback] = vjp(body, z);
      return pullback(T.onesLike(y))[0]!;
    }));
    for (const r of results) {
      const got = Array.from(await r.data());
      got.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-4));
    }
    for (const r of results) r.dispose();
    expect(T.memory()).toEqual(before);
    z.dispose();
  });

  it('checkGrads leaves nothing behind, whether its check passes or fails, and never disposes its arguments', async () => {
    const a = T.randn([3, 2], { key: T.randomKey(7), dtype: 'float64' });
    const b = T.randn([2], { key: T.randomKey(8), dtype: 'float64' });
    const before = T.memory();
    await checkGrads((p, q) => T.softplus(p.add(q)).mul(p), [a, b]);
    await checkGrads((p) => p, [a], { order: 3 }); // the tangent map returns its direction as is
    await expect(checkGrads((p) => p.mul(p.detach()), [a], { order: 1 })).rejects.toThrow('checkGrads: JVP vs central difference');
    expect(T.memory()).toEqual(before);
    expect(a.isDisposed || b.isDisposed).toBe(false);
    a.dispose();
    b.dispose();
  });

  it('a thousand softmaxes, gradients and convolutions hold no tensors', () => {
    const before = T.memory();
    for (let i = 0; i < 1000; i++) {
      T.softmax(x, 1).dispose();
      (grad(f)(x) as T.Tensor).dispose();
      if (i % 10 === 0) T.conv2d(image, kernel, { padding: 1 }).dispose();
    }
    expect(T.memory()).toEqual(before);
  });
});
