// A number operand outside jit is made by the backend as one constant of the tensor's shape
// (ops.ts withOperands, tensor.ts withNumberOperand), where it was a full of shape [], a reshape
// and an expand in a composite scope. Gradients through it (the ambient graph and the grad, jvp
// and vmap transformations) are those of the op with the constant as a tensor operand of the
// same shape, bit for bit; jit's programs, which still record the three primitives, are
// unchanged (texts and structural keys as before the change, at b921d51).

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type Tensor, add, broadcastTo, div, maximum, memory, minimum, mul, pow, scalarLike, sub, tensor, tidy,
} from '@scorch/tensor';
import { grad, jvp, makeProgram, vmap } from '@scorch/autograd';

type Op = (a: Tensor | number, b: Tensor | number) => Tensor;
const OPS: [string, Op][] = [['add', add], ['sub', sub], ['mul', mul], ['div', div], ['pow', pow], ['maximum', maximum], ['minimum', minimum]];
const NUMBERS = [2, -0, 0, 0.5, -3, 1e-45, Infinity, NaN];
const X = [[2, -0, 0.5, -3], [1.5, 0, 7, -2]];

function bits(t: Tensor): number[] {
  const d = t.dataSync();
  return Array.from(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
}
/** The number `v` as a tensor of x's shape: the op then takes the path of two tensors. */
const asTensor = (v: number, x: Tensor): Tensor => broadcastTo(scalarLike(v, x), x.shape);
/** op with the number on the right or the left. */
const withNumber = (op: Op, v: number, left: boolean) => (x: Tensor) => (left ? op(v, x) : op(x, v));
const withTensor = (op: Op, v: number, left: boolean) => (x: Tensor) => (left ? op(asTensor(v, x), x) : op(x, asTensor(v, x)));
// A weight, so each element's gradient differs.
const loss = (f: (x: Tensor) => Tensor) => (x: Tensor) => mul(f(x), tensor([[1, -2, 3, 0.25], [-1, 5, 0.5, 2]])).sum();

describe('a number operand and gradients', () => {
  it('gives the gradients of the op with a tensor operand, in the ambient graph', () => {
    const start = memory();
    for (const [name, op] of OPS) {
      for (const v of NUMBERS) {
        for (const left of [false, true]) {
          const grads = [withNumber, withTensor].map((form) => tidy(() => {
            const x = tensor(X);
            x.requiresGrad = true;
            const y = loss(form(op, v, left))(x);
            y.backward();
            const r = { value: bits(y), g: bits(x.grad!) };
            x.dispose(); // and its .grad
            return r;
          }));
          expect(grads[0], `${name} ${left ? `(${v}, x)` : `(x, ${v})`}`).toEqual(grads[1]);
        }
      }
    }
    expect(memory()).toEqual(start);
  });

  it('frees a recorded constant with its result, not before (backward reads it)', () => {
    const x = tensor([1, 2, 3]);
    x.requiresGrad = true;
    const start = memory();
    const y = x.mul(4);
    expect(memory().tensors).toBe(start.tensors + 2); // the result and the constant it was recorded with
    const s = y.sum();
    s.backward();
    expect(Array.from(x.grad!.dataSync())).toEqual([4, 4, 4]);
    s.dispose();
    expect(memory().tensors).toBe(start.tensors + 3); // y, its constant and x.grad
    y.dispose();
    x.grad!.dispose();
    x.grad = null;
    expect(memory().tensors).toBe(start.tensors);
    x.dispose();
  });

  it('gives the gradients, tangents and batches of the op with a tensor operand under grad, jvp and vmap', () => {
    const start = memory();
    for (const [name, op] of OPS) {
      for (const v of NUMBERS) {
        for (const left of [false, true]) {
          const what = `${name} ${left ? `(${v}, x)` : `(x, ${v})`}`;
          const [a, b] = [withNumber, withTensor].map((form) => tidy(() => {
            const x = tensor(X);
            const f = form(op, v, left);
            const [, tangent] = jvp(f, [x], [tensor([[1, 0.5, -1, 2], [3, -0.25, 1, 1]])]) as [Tensor, Tensor];
            return { g: bits(grad(loss(f))(x)), t: bits(tangent), b: bits(vmap(f)(x)) };
          }));
          expect(a, what).toEqual(b);
        }
      }
    }
    expect(memory()).toEqual(start);
  });

  it('leaves the programs jit traces as they were (texts and structural keys)', () => {
    const x = tensor([[1, -2, 3], [0.5, -0, 4]]);
    const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);
    const cases: [string, (v: Tensor) => Tensor, string, string][] = [
      ['affine', (v) => v.mul(0.5).add(1), 'd0d3dbca55e628ed488ceb5d35adba7f', '44f4934443cbbaa309db0fe75bf342af'],
      ['rsub', (v) => v.sub(3).neg().div(2).pow(3), 'fd009bd78ae9c47cd743b6966f89be44', '31d49c4856794f29858bbb2bc69872b2'],
      ['cmp', (v) => v.greater(0).cast('float32').mul(v).maximum(-0).sub(NaN), 'c8ba76167bde657d344daf6e05f460a3', '954ca06b545fe9c376b98c1579a0f95f'],
      ['gradChain', (v) => grad((u: Tensor) => u.mul(1.01).add(0.1).tanh().mul(Infinity).sum())(v), '09a6855116e54ed1f2e286e0a9da56e4', '15734b784cd19e4245bb3532f94bbea6'],
      ['vmap', (v) => vmap((u: Tensor) => u.mul(2).add(-1))(v), '12ab8d4a41bd0389472c966b3301c3a7', '7a557cb6be61300a9fcaa0dfef0be2b0'],
      ['jvp', (v) => jvp((u: Tensor) => u.mul(3).sub(1e-45), [v], [v])[1] as Tensor, '98025d506dee3fc00f3473f878dbeff1', '5d8dbedf7249c7b5289e94d4c0adf862'],
      ['minClamp', (v) => v.minimum(1).clamp(-1, 2).sub(-0), '64bb293a3be229430bc01d986a3f8bc9', '0ac3271611cd17b21af77373d938a9bf'], // clamp's NaN as a constant (a where before the bounds)
    ];
    for (const [name, f, key, text] of cases) {
      const p = makeProgram(f)(x);
      expect([sha(p.structuralKey()), sha(p.toString())], name).toEqual([key, text]);
    }
    expect(makeProgram(cases[0]![1])(x).toString()).toBe([
      '{ lambda a:f32[2,3] .',
      '  let b:f32[2,3] = full[value=0.5]',
      '      c:f32[2,3] = mul a b',
      '      d:f32[2,3] = full[value=1]',
      '      e:f32[2,3] = add c d',
      '  in ( e ) }',
    ].join('\n'));
    x.dispose();
  });
});
