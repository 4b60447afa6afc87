// Derivatives of a small MLP f(x) = wᵀ tanh(W x + b), in every mode scorch
// offers — a gradient (reverse mode), a Jacobian-vector product (forward mode) and a
// Hessian-vector product (forward-over-reverse) — each checked against an independent route.

import { grad, hvp, jvp, vjp } from '@scorch/autograd';
import { type Tensor, matmul, randn, randomKey, splitKey, sum, tanh } from '@scorch/tensor';

const [kW, kb, kw, kx, kv] = splitKey(randomKey(2026), 5);
const d = 4;
const hidden = 8;
const W = randn([hidden, d], { key: kW, dtype: 'float64' }).mul(1 / Math.sqrt(d));
const b = randn([hidden], { key: kb, dtype: 'float64' }).mul(0.1);
const w = randn([hidden], { key: kw, dtype: 'float64' }).mul(1 / Math.sqrt(hidden));
const x = randn([d], { key: kx, dtype: 'float64' });
const v = randn([d], { key: kv, dtype: 'float64' });

/** f(x) = wᵀ tanh(W x + b): a scalar function of x ∈ R⁴. */
const f = (x: Tensor): Tensor => sum(tanh(matmul(W, x).add(b)).mul(w));

const fmt = async (t: Tensor): Promise<string> => `[${Array.from(await t.data(), (z) => z.toFixed(6)).join(', ')}]`;

const g = grad(f)(x);
const [fx, fv] = jvp(f, [x], [v]);
const [, pullback] = vjp(f, x);
const hv = hvp(f, [x], [v]);
// The same Hessian-vector product reverse-over-reverse: ∇ₓ(∇f(x) · v).
const hvReverse = grad((x: Tensor) => sum(grad(f)(x).mul(v)))(x);

console.log(`f(x) = wᵀ tanh(Wx + b), x ∈ R^${d}, ${hidden} hidden units, float64 on ${x.device}`);
console.log(`f(x)                     = ${(await fx.item()).toFixed(6)}`);
console.log(`∇f(x)          (reverse) = ${await fmt(g)}`);
console.log(`∂f·v           (forward) = ${(await fv.item()).toFixed(6)}`);
console.log(`∇f(x)·v        (reverse) = ${(await sum(g.mul(v)).item()).toFixed(6)}`);
console.log(`vjp(1)         (reverse) = ${await fmt(pullback(fx.mul(0).add(1))[0])}`);
console.log(`∇²f(x)·v  (fwd-over-rev) = ${await fmt(hv)}`);
console.log(`∇²f(x)·v  (rev-over-rev) = ${await fmt(hvReverse)}`);
