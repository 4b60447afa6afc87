// Compositions of transformations, end to end through the public API: grad of grad, jvp of grad
// (forward-over-reverse), grad of jvp (reverse-over-forward), jvp of jvp (mixed partials), no
// perturbation confusion between nested levels, and the PyTorch-style ambient mode (createGraph,
// noGrad, accumulation), with the API's conveniences (valueAndGrad, argnums, jacobian).
//
// Values are exact where the arithmetic allows (small integers and dyadic rationals: every
// intermediate is representable, so the results must be bit-exact); elsewhere the tolerance is
// L·u·Σ|terms| (u = 2⁻⁵³, L the number of roundings, Σ|terms| from the closed form), as derived
// at each use.

import { describe, expect, it } from 'vitest';
import { type Tensor, concat, memory, onesLike, randn, randomKey, tensor, tidy, zerosLike } from '@scorch/tensor';
import { enableGrad, grad, hessian, hvp, jacobian, jvp, noGrad, valueAndGrad, vjp } from '@scorch/autograd';

const u = Number.EPSILON / 2;
const f64 = (data: Parameters<typeof tensor>[0]) => tensor(data, { dtype: 'float64' });
const draw = (shape: number[], seed: number): Tensor => randn(shape, { dtype: 'float64', key: randomKey(seed) });
const flat = async (t: Tensor): Promise<number[]> => Array.from(await t.data());

function expectClose(what: string, got: readonly number[], want: readonly number[], tol: readonly number[]): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  got.forEach((g, i) => {
    if (!(Math.abs(g - want[i]!) <= tol[i]!)) {
      throw new Error(`${what}: element ${i} is ${g}, expected ${want[i]} (tolerance ${tol[i]!.toExponential(3)})`);
    }
  });
}

// A separable test function with all derivatives in closed form:
//   f(x) = Σ x² sin x,  f' = 2x sin x + x² cos x,  f'' = 2 sin x + 4x cos x − x² sin x.
// Its Hessian is diagonal, so Hv = f''(x)·v. Each derivative is a sum of ≤ 3 terms of ≤ 4
// factors (sin, cos within 1 ulp): L = 16 roundings, relative to Σ|terms|.
const xSquaredSinX = (x: Tensor): Tensor => x.square().mul(x.sin()).sum();
const secondDerivative = (x: number) => 2 * Math.sin(x) + 4 * x * Math.cos(x) - x * x * Math.sin(x);
const secondDerivativeMagnitude = (x: number) => 2 * Math.abs(Math.sin(x)) + 4 * Math.abs(x * Math.cos(x)) + x * x * Math.abs(Math.sin(x));

describe('compositions of transformations', () => {
  it('grad of grad (exact on a cubic)', async () => {
    const x = f64([1, 2, 3]);
    const cube = (t: Tensor) => t.mul(t).mul(t).sum();
    expect(await (grad(cube)(x) as Tensor).toArray()).toEqual([3, 12, 27]);
    expect(await (grad((t: Tensor) => (grad(cube)(t) as Tensor).sum())(x) as Tensor).toArray()).toEqual([6, 12, 18]);
  });

  it('grad of grad, jvp of grad, grad of jvp and hvp all give the Hessian action', async () => {
    const x = draw([6], 5001);
    const v = draw([6], 5002);
    const xs = await flat(x);
    const vs = await flat(v);
    const want = xs.map((xi, i) => secondDerivative(xi) * vs[i]!);
    const tol = xs.map((xi, i) => 16 * u * secondDerivativeMagnitude(xi) * Math.abs(vs[i]!));
    const gradient = (t: Tensor) => grad(xSquaredSinX)(t) as Tensor;

    // grad of ⟨∇f, v⟩ with v constant: ∇(vᵀ∇f) = Hv (H symmetric).
    const gradOfGrad = grad((t: Tensor) => gradient(t).mul(v).sum())(x) as Tensor;
    const [, forwardOverReverse] = jvp(gradient, [x], [v]);
    const reverseOverForward = grad((t: Tensor) => jvp(xSquaredSinX, [t], [v])[1])(x) as Tensor;
    const viaHvp = hvp(xSquaredSinX, [x], [v]) as Tensor;
    expectClose('grad of grad', await flat(gradOfGrad), want, tol);
    expectClose('jvp of grad (forward-over-reverse)', await flat(forwardOverReverse), want, tol);
    expectClose('grad of jvp (reverse-over-forward)', await flat(reverseOverForward), want, tol);
    expectClose('hvp', await flat(viaHvp), want, tol);
    // The Hessian is diagonal: off-diagonal entries are exact zeros.
    const h = await flat(hessian(xSquaredSinX)(x));
    h.forEach((hij, k) => {
      const [i, j] = [Math.floor(k / 6), k % 6];
      if (i !== j) expect(hij).toBe(0);
      else expectClose(`Hessian diagonal ${i}`, [hij], [secondDerivative(xs[i]!)], [16 * u * secondDerivativeMagnitude(xs[i]!)]);
    });
  });

  it('jvp of jvp with different tangents gives the mixed partials ∂²f/∂x_i∂y_j', async () => {
    // f(x, y) = Σ sin(x)·y³: ∂²f/∂x_i∂y_j = δ_ij 3 cos(x_i) y_i² (3 roundings plus cos: L = 8).
    const f = (x: Tensor, y: Tensor) => x.sin().mul(y.mul(y).mul(y)).sum();
    const n = 4;
    const x = draw([n], 5003);
    const y = draw([n], 5004);
    const [xs, ys] = [await flat(x), await flat(y)];
    const basis = (i: number) => {
      const e = new Float64Array(n);
      e[i] = 1;
      return f64(e);
    };
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        // Inner jvp along (0, e_j) is ∂f/∂y_j; the outer one along (e_i, 0) differentiates it in x_i.
        const dfdyj = (xx: Tensor, yy: Tensor) => jvp(f, [xx, yy], [zerosLike(xx), basis(j)])[1];
        const [, xThenY] = jvp(dfdyj, [x, y], [basis(i), zerosLike(y)]);
        // The other nesting order gives the same partial.
        const dfdxi = (xx: Tensor, yy: Tensor) => jvp(f, [xx, yy], [basis(i), zerosLike(yy)])[1];
        const [, yThenX] = jvp(dfdxi, [x, y], [zerosLike(x), basis(j)]);
        const want = i === j ? 3 * Math.cos(xs[i]!) * ys[i]! ** 2 : 0;
        const tol = 8 * u * Math.abs(want); // exactly 0 off the diagonal
        expectClose(`∂²f/∂x${i}∂y${j}, y inner`, [await xThenY.item()], [want], [tol]);
        expectClose(`∂²f/∂x${i}∂y${j}, x inner`, [await yThenX.item()], [want], [tol]);
      }
    }
  });

  it('no perturbation confusion: an inner grad of a function that ignores its argument but reads an outer variable is zero', () => {
    // d/dy Σx² = 0: x is the outer vjp's variable, a constant to the inner grad. Read at the wrong
    // level, the inner grad took the outer tracer as its own and returned 2x.
    const [inner] = vjp((x: Tensor) => grad((_y: Tensor) => x.square().sum())(f64([0.25, 0.75])) as Tensor, f64([1.5, -2]));
    expect(Array.from(inner.dataSync())).toEqual([0, 0]);
  });

  describe('no perturbation confusion: d/dx [x · d/dy (x + y)] = 1', () => {
    // d/dy (x + y) = 1 whatever x is, so the outer derivative is d/dx x = 1 exactly. A nested
    // transformation that mixed up the two perturbations would count x's twice and give 2.
    const points: [number, number][] = [[1, 1], [0.37, -2.5], [-3, 11], [Math.PI, -Math.E]];

    it('with jvp inside jvp', async () => {
      for (const [x0, y0] of points) {
        const [x, y] = [f64(x0), f64(y0)];
        const [, d] = jvp((xx: Tensor) => xx.mul(jvp((yy: Tensor) => xx.add(yy), [y], [f64(1)])[1]), [x], [f64(1)]);
        expect(await d.item()).toBe(1);
      }
    });

    it('with grad inside grad', async () => {
      for (const [x0, y0] of points) {
        const [x, y] = [f64(x0), f64(y0)];
        const d = grad((xx: Tensor) => xx.mul(grad((yy: Tensor) => xx.add(yy))(y) as Tensor))(x) as Tensor;
        expect(await d.item()).toBe(1);
      }
    });

    it('with grad inside jvp and jvp inside grad', async () => {
      for (const [x0, y0] of points) {
        const [x, y] = [f64(x0), f64(y0)];
        const [, a] = jvp((xx: Tensor) => xx.mul(grad((yy: Tensor) => xx.add(yy))(y) as Tensor), [x], [f64(1)]);
        const b = grad((xx: Tensor) => xx.mul(jvp((yy: Tensor) => xx.add(yy), [y], [f64(1)])[1]))(x) as Tensor;
        expect(await a.item()).toBe(1);
        expect(await b.item()).toBe(1);
      }
    });

    it('d/dx [x · d/dy (x·y)] = 2x (the inner derivative depends on x)', async () => {
      const x = f64(1.5);
      const y = f64(-4);
      const [, d] = jvp((xx: Tensor) => xx.mul(jvp((yy: Tensor) => xx.mul(yy), [y], [f64(1)])[1]), [x], [f64(1)]);
      const g = grad((xx: Tensor) => xx.mul(grad((yy: Tensor) => xx.mul(yy))(y) as Tensor))(x) as Tensor;
      expect(await d.item()).toBe(3);
      expect(await g.item()).toBe(3);
    });
  });

  it('an output that does not depend on an input gives that input a zero gradient', async () => {
    const x = f64([1, 2]);
    const y = f64([[3, 4, 5]]);
    const onlyX = (a: Tensor, _b: Tensor) => a.square().sum();
    const [gx, gy] = grad(onlyX, { argnums: [0, 1] })(x, y) as Tensor[];
    expect(await gx!.toArray()).toEqual([2, 4]);
    expect(gy!.shape).toEqual([1, 3]);
    expect(await gy!.toArray()).toEqual([[0, 0, 0]]);
    // A constant function: zero gradient (and zero tangent in forward mode) of the input's shape.
    const constant = f64(7);
    expect(await (grad((_a: Tensor) => constant)(x) as Tensor).toArray()).toEqual([0, 0]);
    const [value, tangent] = jvp((_a: Tensor) => constant.mul(2), [x], [f64([1, 1])]);
    expect(await value.item()).toBe(14);
    expect(await tangent.item()).toBe(0);
    const [, pullback] = vjp(onlyX, x, y);
    const [ctX, ctY] = pullback(f64(1));
    expect(await ctX!.toArray()).toEqual([2, 4]);
    expect(await ctY!.toArray()).toEqual([[0, 0, 0]]);
  });

  it('valueAndGrad with an argnums list returns the value and one gradient per listed argument', async () => {
    // f(a, b, c) = Σ a·b + Σ c²: ∂f/∂a = b, ∂f/∂c = 2c (b is held constant).
    const f = (a: Tensor, b: Tensor, c: Tensor) => a.mul(b).sum().add(c.square().sum());
    const [value, grads] = valueAndGrad(f, { argnums: [0, 2] })(f64([1, 2]), f64([3, -4]), f64([0.5, 1.5, -2]));
    expect(await value.item()).toBe(1 * 3 + 2 * -4 + 0.25 + 2.25 + 4);
    expect(Array.isArray(grads)).toBe(true);
    const [ga, gc] = grads as Tensor[];
    expect(await ga!.toArray()).toEqual([3, -4]);
    expect(await gc!.toArray()).toEqual([1, 3, -4]);
    // A single index gives a single tensor.
    const [, gb] = valueAndGrad(f, { argnums: 1 })(f64([1, 2]), f64([3, -4]), f64([0.5]));
    expect(await (gb as Tensor).toArray()).toEqual([1, 2]);
  });

  it('jacobian of a non-square map, forward and reverse, equals the analytic one (exact)', async () => {
    // f: R³ → R², f(x) = (Ax)² elementwise, J = 2·diag(Ax)·A; small integers keep it exact.
    const a = f64([[1, -2, 3], [0, 4, -1]]);
    const f = (x: Tensor) => a.matmul(x).square();
    const x = f64([2, 1, -1]);
    // Ax = [1·2 − 2·1 + 3·(−1), 4·1 + 1] = [−3, 5]
    const want = [[2 * -3 * 1, 2 * -3 * -2, 2 * -3 * 3], [0, 2 * 5 * 4, 2 * 5 * -1]];
    for (const mode of ['fwd', 'rev'] as const) {
      const jac = jacobian(f, { mode })(x);
      expect(jac.shape).toEqual([2, 3]);
      expect(await jac.toArray()).toEqual(want);
    }
  });

  it('jacobian keeps output and input shapes ([...out, ...x]) in both modes', async () => {
    // g: R^{2×2} → R³, g(X) = [X00·X11, X01 + X10, X00²]; J[i] is a 2×2 block (exact integers).
    const g = (m: Tensor) => {
      const [x00, x01, x10, x11] = [0, 1, 2, 3].map((i) => m.reshape([4]).slice([i], [1])) as [Tensor, Tensor, Tensor, Tensor];
      return concat([x00.mul(x11), x01.add(x10), x00.square()]);
    };
    const m = f64([[3, -1], [2, 5]]);
    const want = [[[5, 0], [0, 3]], [[0, 1], [1, 0]], [[6, 0], [0, 0]]];
    for (const mode of ['fwd', 'rev'] as const) {
      const jac = jacobian(g, { mode })(m);
      expect(jac.shape).toEqual([3, 2, 2]);
      expect(await jac.toArray()).toEqual(want);
    }
  });
});

describe('ambient (PyTorch-style) reverse mode', () => {
  const leaf = (data: Parameters<typeof tensor>[0]): Tensor => {
    const t = f64(data);
    t.requiresGrad = true;
    return t;
  };

  it('backward() fills .grad (exact on a matrix-vector product)', async () => {
    // loss = ‖Wx‖², ∂loss/∂W = 2(Wx)xᵀ; Wx = [3, 7] for x = [1, 1].
    const w = leaf([[1, 2], [3, 4]]);
    const x = f64([1, 1]);
    w.matmul(x).square().sum().backward();
    expect(await w.grad!.toArray()).toEqual([[6, 6], [14, 14]]);
  });

  it('backward({createGraph: true}) records the backward pass: .grad can be differentiated again', async () => {
    // loss = Σ x³: x.grad = 3x², and the gradient of Σ x.grad is 6x.
    const x = leaf([1, -2, 0.5]);
    x.mul(x).mul(x).sum().backward(undefined, { createGraph: true });
    const first = x.grad!;
    expect(await first.toArray()).toEqual([3, 12, 0.75]);
    expect(first.requiresGrad).toBe(true);
    x.grad = null; // start the second pass from zero; `first` stays alive as the graph's root
    first.sum().backward();
    expect(await x.grad!.toArray()).toEqual([6, -12, 3]);
  });

  it('without createGraph, .grad is a plain tensor (no graph recorded)', () => {
    const x = leaf([1, 2]);
    x.square().sum().backward();
    expect(x.grad!.requiresGrad).toBe(false);
  });

  it('.grad accumulates across two backward calls', async () => {
    const x = leaf([1, 2, 3]);
    x.square().sum().backward();
    x.square().sum().backward();
    expect(await x.grad!.toArray()).toEqual([4, 8, 12]);
    // A different loss adds on top: + ∂(Σ 3x)/∂x = 3.
    x.mul(3).sum().backward();
    expect(await x.grad!.toArray()).toEqual([7, 11, 15]);
  });

  it('accumulating frees the old .grad storage when no graph saved it', async () => {
    const x = leaf([1, 2]);
    x.square().sum().backward();
    const first = x.grad!;
    x.square().sum().backward();
    expect(first.isDisposed).toBe(true);
    expect(await x.grad!.toArray()).toEqual([4, 8]);
  });

  it('a loss built from x.grad can be backpropagated into x (the old .grad is still read)', async () => {
    // Regression: the old x.grad was freed when x's leaf was reached, but a rule processed after
    // that leaf could still read it (a saved input of the loss or the output of a createGraph
    // pass), and backward failed with a use-after-free error.
    for (const order of ['x.grad term first', 'x term first'] as const) {
      const x = leaf([1, 3]);
      const y = leaf([0.5, -2]);
      x.square().sum().backward(); // x.grad = 2x = [2, 6], a plain tensor
      const oldGrad = x.grad!;
      const gradTerm = y.mul(oldGrad).sum();
      const xTerm = x.sum();
      (order === 'x.grad term first' ? gradTerm.add(xTerm) : xTerm.add(gradTerm)).backward();
      expect(await y.grad!.toArray(), order).toEqual([2, 6]);
      expect(await x.grad!.toArray(), order).toEqual([3, 7]);
      expect(oldGrad.isDisposed, order).toBe(false); // the loss's graph saved it
    }
    // x.grad from a createGraph pass, differentiated without createGraph: for L₁ = Σ x/w,
    // x.grad = 1/w; L₂ = Σ x.grad·x gives ∂L₂/∂x = 1/w (accumulated) and ∂L₂/∂w = −x/w².
    const w = leaf([2, 4]);
    const x = leaf([1, 3]);
    x.div(w).sum().backward(undefined, { createGraph: true });
    expect(await x.grad!.toArray()).toEqual([0.5, 0.25]);
    w.grad = null;
    x.grad!.mul(x).sum().backward();
    expect(await x.grad!.toArray()).toEqual([1, 0.5]);
    expect(await w.grad!.toArray()).toEqual([-0.25, -0.1875]);
  });

  it('one cotangent reaching two leaves gives each its own .grad storage', async () => {
    // add passes its cotangent through unchanged to both operands.
    const a = leaf([1, 2]);
    const b = leaf([3, 4]);
    a.add(b).sum().backward();
    expect(await a.grad!.toArray()).toEqual([1, 1]);
    a.grad!.dispose();
    expect(await b.grad!.toArray()).toEqual([1, 1]);
  });

  it('with createGraph too, each .grad has its own storage: resetting one leaves the other .grads, the gradient passed and the graphs that read it', async () => {
    // Before, a recorded pass gave a leaf the cotangent itself: a and b shared one .grad, and c's
    // was the caller's gradient u, which d.grad's graph reads (the product's cotangent u·d), so
    // resetting one .grad (dispose, null) freed the others.
    const a = leaf([1, 2]);
    const b = leaf([3, 4]);
    a.add(b).sum().backward(undefined, { createGraph: true });
    expect(a.grad).not.toBe(b.grad);
    a.grad!.dispose();
    a.grad = null;
    expect(await b.grad!.toArray()).toEqual([1, 1]);

    const c = leaf([0.5, -1]);
    const d = leaf([3, 4]);
    const u = f64([2, 3]);
    c.add(d.mul(d)).backward(u, { createGraph: true }); // c.grad = u, d.grad = 2u·d
    expect(c.grad).not.toBe(u);
    c.grad!.dispose();
    c.grad = null;
    expect(await u.toArray()).toEqual([2, 3]);
    const dGrad = d.grad!;
    d.grad = null;
    dGrad.sum().backward(); // ∂ Σ 2u·d / ∂d = 2u
    expect(await dGrad.toArray()).toEqual([12, 24]);
    expect(await d.grad!.toArray()).toEqual([4, 6]);
  });

  it('noGrad stops recording; enableGrad turns it back on inside', async () => {
    const x = leaf([1, 2]);
    const untracked = noGrad(() => x.mul(2));
    expect(untracked.requiresGrad).toBe(false);
    expect(() => untracked.sum().backward()).toThrow(/does not require grad/);
    const tracked = noGrad(() => enableGrad(() => x.mul(2)));
    expect(tracked.requiresGrad).toBe(true);
    // A loss mixing both: only the recorded part reaches x.
    tracked.add(untracked).sum().backward();
    expect(await x.grad!.toArray()).toEqual([2, 2]);
    // Functional transforms still work under noGrad.
    expect(await noGrad(() => grad((t: Tensor) => t.square().sum())(f64([3])) as Tensor).toArray()).toEqual([6]);
  });

  it('detach() cuts the graph', async () => {
    const x = leaf([2, 3]);
    x.mul(x.detach()).sum().backward(); // d/dx (x · const) = const
    expect(await x.grad!.toArray()).toEqual([2, 3]);
  });

  it('backward() sees through a functional grad: the θ-gradient of an energy model\'s score', async () => {
    // E(x) = Σ_k tanh((Wx)_k), s = ∇ₓE = Wᵀ(1 − t²) with t = tanh(Wx), loss = vᵀs = Σ_k (Wv)_k (1 − t_k²):
    //   ∂loss/∂W_kj = v_j (1 − t_k²) − 2 (Wv)_k t_k (1 − t_k²) x_j.
    // Rounding: dot products of length 2 and a tanh, ≲ 16 roundings relative to the magnitude
    // |v_j| + 2 (|W||v|)_k |t_k| |x_j| (using 1 − t² ≤ 1); 32 covers both compared values.
    const wValues = [[0.5, -1.25], [2, 0.75], [-0.5, 1]];
    const [x0, x1, v0, v1] = [0.3, -0.7, 1.5, -2];
    const want: number[] = [];
    const tol: number[] = [];
    for (const row of wValues) {
      const t = Math.tanh(row[0]! * x0 + row[1]! * x1);
      const wv = row[0]! * v0 + row[1]! * v1;
      const absWv = Math.abs(row[0]! * v0) + Math.abs(row[1]! * v1);
      for (const [vj, xj] of [[v0, x0], [v1, x1]] as const) {
        want.push(vj * (1 - t * t) - 2 * wv * t * (1 - t * t) * xj);
        tol.push(32 * u * (Math.abs(vj) + 2 * absWv * Math.abs(t) * Math.abs(xj)));
      }
    }
    const x = f64([x0, x1]);
    const v = f64([v0, v1]);
    const energy = (w: Tensor, xx: Tensor) => w.matmul(xx).tanh().sum();
    const scoreDotV = (w: Tensor) => (grad((xx: Tensor) => energy(w, xx))(x) as Tensor).mul(v).sum();

    const w = leaf(wValues);
    scoreDotV(w).backward();
    expectClose('ambient backward through grad', await flat(w.grad!), want, tol);
    expectClose('functional grad of grad', await flat(grad(scoreDotV)(f64(wValues)) as Tensor), want, tol);
  });

  it('a vjp inside tidy leaves no tensors behind', () => {
    const x = f64([1, 2]);
    const before = memory().tensors;
    tidy(() => {
      const [, pullback] = vjp((a: Tensor) => a.exp().sum(), x);
      pullback(onesLike(f64(0)));
    });
    expect(memory().tensors).toBe(before);
  });
});

describe('functional results own their storage', () => {
  it('vjp gives each argument its own cotangent tensor, even when one cotangent reaches both', async () => {
    const a = tensor([1, 2], { dtype: 'float64' });
    const b = tensor([3, 4], { dtype: 'float64' });
    const [, pullback] = vjp((x, y) => x.add(y), a, b);
    const u = tensor([5, 6], { dtype: 'float64' });
    const [ga, gb] = pullback(u);
    expect(ga).not.toBe(gb);
    expect(ga).not.toBe(u);
    ga!.dispose();
    expect(await gb!.toArray()).toEqual([5, 6]);
    expect(await u.toArray()).toEqual([5, 6]);
  });
});
