// Named derivative checks against hand-derived formulas, in float64 on random points:
// - the Hessian of the Rosenbrock function from `hvp` and from `hessian`;
// - for an MLP score s(x) = W2·silu(W1 x + b1) + b2, the quantities score matching needs:
//   vᵀ(∂s/∂x)v by forward and by reverse mode, the exact trace of ∂s/∂x from d basis JVPs vs the
//   full Jacobian (both modes), and the θ-gradient of vᵀ(∂s/∂x)v computed reverse-over-forward,
//   by double backward, with the ambient `backward()`, and from the closed form.
//
// Tolerances follow the standard forward error bound for sums of products: a value computed as
// Σ terms through at most L successive roundings differs from the exact value by at most
// L·u·Σ|terms| (u = 2⁻⁵³, Higham, "Accuracy and Stability of Numerical Algorithms", §3.1). Each
// test computes Σ|terms| (the "magnitude") from absolute values of the same factors and states L.

import { describe, expect, it } from 'vitest';
import { type Tensor, randn, randomKey, sub, tensor } from '@scorch/tensor';
import { grad, hessian, hvp, jacobian, jvp, vjp } from '@scorch/autograd';

/** Unit roundoff of float64. */
const u = Number.EPSILON / 2;

const draw = (shape: number[], seed: number, scale = 1): Tensor =>
  randn(shape, { dtype: 'float64', key: randomKey(seed) }).mul(scale);

const flat = async (t: Tensor): Promise<number[]> => Array.from(await t.data());

/** Asserts |got − want| ≤ tol elementwise, naming the first element that is off. */
function expectClose(what: string, got: readonly number[], want: readonly number[], tol: readonly number[]): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  got.forEach((g, i) => {
    const w = want[i]!;
    const t = tol[i]!;
    if (!(Math.abs(g - w) <= t)) {
      throw new Error(`${what}: element ${i} is ${g}, expected ${w} (|diff| ${Math.abs(g - w).toExponential(3)} > tolerance ${t.toExponential(3)})`);
    }
  });
}

describe('Rosenbrock Hessian', () => {
  // f(x) = Σ_{i<n−1} 100(x_{i+1} − x_i²)² + (1 − x_i)².
  const rosenbrock = (x: Tensor): Tensor => {
    const n = x.shape[0]!;
    const head = x.slice([0], [n - 1]);
    const tail = x.slice([1], [n - 1]);
    return tail.sub(head.square()).square().mul(100).add(sub(1, head).square()).sum();
  };

  // By hand, from the term of index i:
  //   ∂²/∂x_i²         = 1200 x_i² − 400 x_{i+1} + 2   (i < n−1)
  //   ∂²/∂x_{i+1}²     += 200                           (from 100(x_{i+1} − x_i²)²)
  //   ∂²/∂x_i∂x_{i+1}  = −400 x_i
  // `magnitude` holds the sum of the absolute values of the terms the engine adds up for the
  // entry (it computes 800x_i² and −400(x_{i+1} − x_i²) separately, so 1200x_i² + 400|x_{i+1}|
  // bounds both): the scale its rounding errors are relative to.
  function analyticHessian(x: readonly number[]): { hessian: number[][]; magnitude: number[][] } {
    const n = x.length;
    const hessian = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    const magnitude = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    for (let i = 0; i < n - 1; i++) {
      const xi = x[i]!;
      const next = x[i + 1]!;
      hessian[i]![i]! += 1200 * xi * xi - 400 * next + 2;
      magnitude[i]![i]! += 1200 * xi * xi + 400 * Math.abs(next) + 2;
      hessian[i + 1]![i + 1]! += 200;
      magnitude[i + 1]![i + 1]! += 200;
      hessian[i]![i + 1] = hessian[i + 1]![i] = -400 * xi;
      magnitude[i]![i + 1] = magnitude[i + 1]![i] = 400 * Math.abs(xi);
    }
    return { hessian, magnitude };
  }

  // Each engine term is a product of ≤ 4 factors and the entry a sum of ≤ 4 terms, plus the
  // transposes of slice/sum (exact): L = 8 roundings; 16 leaves a factor 2 for the rounding of
  // the reference itself (its terms are computed the same way).
  const roundings = 16;
  const n = 7;
  const x = draw([n], 4001);

  it('from hvp with basis vectors (each column) and with a random vector', async () => {
    const xs = await flat(x);
    const { hessian: h, magnitude } = analyticHessian(xs);
    for (let j = 0; j < n; j++) {
      const basis = new Float64Array(n);
      basis[j] = 1;
      const column = await flat(hvp(rosenbrock, [x], [tensor(basis, { dtype: 'float64' })]) as Tensor);
      expectClose(`Hessian column ${j}`, column, h.map((row) => row[j]!), magnitude.map((row) => roundings * u * row[j]!));
    }
    const v = draw([n], 4002);
    const vs = await flat(v);
    const hv = await flat(hvp(rosenbrock, [x], [v]) as Tensor);
    // (Hv)_i = Σ_j H_ij v_j: n more products and sums, each relative to Σ_j magnitude_ij |v_j|.
    const want = h.map((row) => row.reduce((acc, hij, j) => acc + hij * vs[j]!, 0));
    const tol = magnitude.map((row) => (roundings + 2 * n) * u * row.reduce((acc, m, j) => acc + m * Math.abs(vs[j]!), 0));
    expectClose('Hv', hv, want, tol);
  });

  it('from hessian (forward-over-reverse), symmetric', async () => {
    const { hessian: h, magnitude } = analyticHessian(await flat(x));
    const full = hessian(rosenbrock)(x);
    expect(full.shape).toEqual([n, n]);
    expectClose('Hessian', await flat(full), h.flat(), magnitude.flat().map((m) => roundings * u * m));
  });
});

describe('MLP score s(x) = W2·silu(W1 x + b1) + b2', () => {
  const d = 3; // data dimension
  const hidden = 8;
  const batch = 4;
  const w1 = draw([hidden, d], 4101, 0.8);
  const b1 = draw([hidden], 4102, 0.5);
  const w2 = draw([d, hidden], 4103, 0.8);
  const b2 = draw([d], 4104, 0.5);
  const x = draw([batch, d], 4105);
  const v = draw([batch, d], 4106);

  /** The score of a batch of rows x: [N, d] → [N, d]. */
  const score = (w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, x: Tensor): Tensor =>
    x.matmul(w1.transpose()).add(b1).silu().matmul(w2.transpose()).add(b2);
  const scoreOfX = (x: Tensor): Tensor => score(w1, b1, w2, b2, x);

  // Rounding-error magnitudes. The engine computes vᵀ W2 diag(silu'(z)) W1 v (and its pieces)
  // as nested dot products over d and h, with silu' and silu'' evaluated with an absolute error
  // of a few u·(1 + |z|) (their terms are bounded by 1 + |z|). So every quantity is bounded
  // by the same expression with |W1|, |W2|, |v|, |x| and a = 1 + |z| in place of W1, W2, v, x and
  // silu', silu''. L = 2d + h + N (the dot products and the batch sum) + 32 (activation
  // evaluation, bias additions); doubled because both compared values carry that error.
  const roundings = 2 * (2 * d + hidden + batch + 32);
  const z = x.matmul(w1.transpose()).add(b1);
  const a = z.abs().add(1);
  const absW1v = v.abs().matmul(w1.abs().transpose()); // |W1||v_n|, [N, h]
  const absW2tv = v.abs().matmul(w2.abs()); // |W2|ᵀ|v_n|, [N, h]

  it('vᵀ jvp(s, x, v) equals vjp(s, x)(v) · v, per sample', async () => {
    const [, jv] = jvp(scoreOfX, [x], [v]);
    const [, pullback] = vjp(scoreOfX, x);
    const vjv = await flat(v.mul(jv).sum(1));
    const vjtv = await flat(pullback(v)[0]!.mul(v).sum(1));
    const magnitude = await flat(absW2tv.mul(a).mul(absW1v).sum(1));
    expectClose('vᵀJv forward vs reverse', vjv, vjtv, magnitude.map((m) => roundings * u * m));
    // Not trivially zero: the quadratic form is of the order of its magnitude.
    expect(Math.max(...vjv.map(Math.abs))).toBeGreaterThan(1e-3);
  });

  it('the trace of ∂s/∂x from d basis JVPs equals the trace of the full Jacobian (fwd and rev agree)', async () => {
    // One JVP per data axis j with tangent e_j in every row: column j of each sample's Jacobian.
    const traceTerms: Tensor[] = [];
    for (let j = 0; j < d; j++) {
      const basis = new Float64Array(batch * d);
      for (let n = 0; n < batch; n++) basis[n * d + j] = 1;
      const [, column] = jvp(scoreOfX, [x], [tensor(basis, { dtype: 'float64', shape: [batch, d] })]);
      traceTerms.push(column.slice([0, j], [batch, 1]).reshape([batch]));
    }
    const traceFromJvps = await flat(traceTerms.reduce((acc, t) => acc.add(t)));

    const jacobianRev = await flat(jacobian(scoreOfX, { mode: 'rev' })(x)); // [N, d, N, d]
    const jacobianFwd = await flat(jacobian(scoreOfX, { mode: 'fwd' })(x));
    const at = (n: number, i: number, m: number, j: number) => ((n * d + i) * batch + m) * d + j;

    // Entry (n,i,n,j) = Σ_k W2_ik silu'(z_nk) W1_kj; magnitude Σ_k |W2_ik| a_nk |W1_kj|.
    const [absW2, aRows, absW1] = (await Promise.all([w2.abs(), a, w1.abs()].map((t) => t.toArray()))) as [number[][], number[][], number[][]];
    const magnitudeOf = (n: number, i: number, j: number) =>
      absW2[i]!.reduce((acc, w, k) => acc + w * aRows[n]![k]! * absW1[k]![j]!, 0);

    const traceFromJacobian = (jac: number[]) =>
      Array.from({ length: batch }, (_, n) => Array.from({ length: d }, (_, i) => jac[at(n, i, n, i)]!).reduce((p, q) => p + q));
    const traceMagnitude = Array.from({ length: batch }, (_, n) => Array.from({ length: d }, (_, i) => magnitudeOf(n, i, i)).reduce((p, q) => p + q));
    const traceTol = traceMagnitude.map((m) => (roundings + 2 * d) * u * m);
    expectClose('trace: basis JVPs vs reverse Jacobian', traceFromJvps, traceFromJacobian(jacobianRev), traceTol);
    expectClose('trace: basis JVPs vs forward Jacobian', traceFromJvps, traceFromJacobian(jacobianFwd), traceTol);

    // The two Jacobians agree entry by entry, and samples do not interact (exact zeros).
    const want: number[] = [];
    const tol: number[] = [];
    for (let n = 0; n < batch; n++) {
      for (let i = 0; i < d; i++) {
        for (let m = 0; m < batch; m++) {
          for (let j = 0; j < d; j++) {
            want.push(jacobianRev[at(n, i, m, j)]!);
            tol.push(n === m ? roundings * u * magnitudeOf(n, i, j) : 0);
            if (n !== m) expect(jacobianRev[at(n, i, m, j)]).toBe(0);
          }
        }
      }
    }
    expectClose('forward vs reverse Jacobian', jacobianFwd, want, tol);
  });

  describe('θ-gradient of Σ_n v_nᵀ (∂s/∂x)(x_n) v_n', () => {
    type Params = [Tensor, Tensor, Tensor, Tensor];
    const theta: Params = [w1, b1, w2, b2];

    // Reverse-over-forward: a JVP inside the differentiated function.
    const viaJvp = (w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor): Tensor =>
      v.mul(jvp((xx: Tensor) => score(w1, b1, w2, b2, xx), [x], [v])[1]).sum();
    // Double backward: the pullback of s at x applied to v, differentiated again.
    const viaVjp = (w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor): Tensor => {
      const [, pullback] = vjp((xx: Tensor) => score(w1, b1, w2, b2, xx), x);
      return pullback(v)[0]!.mul(v).sum();
    };

    // Closed form, with p = W2ᵀv_n, q = W1 v_n, z = W1 x_n + b1:
    //   L       = Σ_n Σ_k p_k silu'(z_k) q_k
    //   ∂L/∂W2_ik = Σ_n v_i silu'(z_k) q_k
    //   ∂L/∂W1_kj = Σ_n p_k silu'(z_k) v_j + p_k silu''(z_k) q_k x_j
    //   ∂L/∂b1_k  = Σ_n p_k silu''(z_k) q_k
    //   ∂L/∂b2    = 0 (the Jacobian does not depend on b2)
    // silu'(z) = σ(1 + z(1 − σ)), silu''(z) = σ(1 − σ)(2 + z(1 − 2σ)), σ = σ(z).
    // The magnitudes replace every factor by its absolute value and silu', silu'' by a = 1 + |z|.
    async function closedForm(): Promise<{ grads: number[][]; magnitudes: number[][] }> {
      const [W1, B1, W2, X, V] = (await Promise.all([w1, b1, w2, x, v].map((t) => t.toArray()))) as [number[][], number[], number[][], number[][], number[][]];
      const gW1 = new Array<number>(hidden * d).fill(0);
      const mW1 = new Array<number>(hidden * d).fill(0);
      const gB1 = new Array<number>(hidden).fill(0);
      const mB1 = new Array<number>(hidden).fill(0);
      const gW2 = new Array<number>(d * hidden).fill(0);
      const mW2 = new Array<number>(d * hidden).fill(0);
      for (let n = 0; n < batch; n++) {
        const xn = X[n]!;
        const vn = V[n]!;
        for (let k = 0; k < hidden; k++) {
          let zk = B1[k]!;
          let q = 0;
          let absQ = 0;
          let p = 0;
          let absP = 0;
          for (let j = 0; j < d; j++) {
            zk += W1[k]![j]! * xn[j]!;
            q += W1[k]![j]! * vn[j]!;
            absQ += Math.abs(W1[k]![j]! * vn[j]!);
          }
          for (let i = 0; i < d; i++) {
            p += W2[i]![k]! * vn[i]!;
            absP += Math.abs(W2[i]![k]! * vn[i]!);
          }
          const s = 1 / (1 + Math.exp(-zk));
          const silu1 = s * (1 + zk * (1 - s));
          const silu2 = s * (1 - s) * (2 + zk * (1 - 2 * s));
          const ak = 1 + Math.abs(zk);
          for (let i = 0; i < d; i++) {
            gW2[i * hidden + k]! += vn[i]! * silu1 * q;
            mW2[i * hidden + k]! += Math.abs(vn[i]!) * ak * absQ;
          }
          for (let j = 0; j < d; j++) {
            gW1[k * d + j]! += p * silu1 * vn[j]! + p * silu2 * q * xn[j]!;
            mW1[k * d + j]! += absP * ak * (Math.abs(vn[j]!) + absQ * Math.abs(xn[j]!));
          }
          gB1[k]! += p * silu2 * q;
          mB1[k]! += absP * ak * absQ;
        }
      }
      return { grads: [gW1, gB1, gW2, new Array<number>(d).fill(0)], magnitudes: [mW1, mB1, mW2, new Array<number>(d).fill(0)] };
    }

    const names = ['W1', 'b1', 'W2', 'b2'];
    async function expectMatchesClosedForm(method: string, grads: readonly (Tensor | null)[]): Promise<void> {
      const { grads: want, magnitudes } = await closedForm();
      for (let p = 0; p < 4; p++) {
        const g = grads[p];
        // A parameter the loss does not reach may be left without a .grad (ambient mode): zero.
        const got = g ? await flat(g) : new Array<number>(want[p]!.length).fill(0);
        expectClose(`${method}: ∂L/∂${names[p]}`, got, want[p]!, magnitudes[p]!.map((m) => roundings * u * m));
      }
    }

    it('reverse-over-forward (grad of a function calling jvp) matches the closed form', async () => {
      const grads = grad(viaJvp, { argnums: [0, 1, 2, 3] })(...theta) as Tensor[];
      await expectMatchesClosedForm('reverse-over-forward', grads);
      expect(await flat(grads[3]!)).toEqual([0, 0, 0]);
    });

    it('double backward (grad of vᵀ·pullback(v)) matches the closed form and reverse-over-forward', async () => {
      const grads = grad(viaVjp, { argnums: [0, 1, 2, 3] })(...theta) as Tensor[];
      await expectMatchesClosedForm('double backward', grads);
      const other = grad(viaJvp, { argnums: [0, 1, 2, 3] })(...theta) as Tensor[];
      const { magnitudes } = await closedForm();
      for (let p = 0; p < 4; p++) {
        expectClose(`double backward vs reverse-over-forward: ∂L/∂${names[p]}`, await flat(grads[p]!), await flat(other[p]!), magnitudes[p]!.map((m) => roundings * u * m));
      }
    });

    it('ambient mode: backward(v, {createGraph}) then backward() of vᵀ·x.grad matches', async () => {
      const params = theta.map((t) => t.detach()) as Params;
      for (const p of params) p.requiresGrad = true;
      const xLeaf = x.detach();
      xLeaf.requiresGrad = true;
      score(...params, xLeaf).backward(v, { createGraph: true });
      const jtv = xLeaf.grad!; // (∂s/∂x)ᵀv, recorded so it can be differentiated again
      // The first backward also left ∂(vᵀs)/∂θ in the parameters' .grad: start from zero.
      for (const p of params) {
        p.grad?.dispose();
        p.grad = null;
      }
      jtv.mul(v).sum().backward();
      await expectMatchesClosedForm('ambient double backward', params.map((p) => p.grad));
    });

    it('ambient mode over forward mode: backward() of vᵀ jvp(s, x, v) matches', async () => {
      const params = theta.map((t) => t.detach()) as Params;
      for (const p of params) p.requiresGrad = true;
      const [, jv] = jvp((xx: Tensor) => score(...params, xx), [x], [v]);
      v.mul(jv).sum().backward();
      await expectMatchesClosedForm('ambient over jvp', params.map((p) => p.grad));
    });
  });
});
