// sinkBroadcasts (program.ts), run by simplifyProgram on every traced program: elementwise work
// whose operands are all broadcasts of smaller values is computed at the small shape and then
// broadcast. Each element is the same float operations on the same values, so jitted results
// equal eager ones bit for bit (compared as bytes, so −0 and NaN payloads count), in float32 and
// float64; what is computed is checked on the program (the shapes its equations compute at).

import { describe, expect, it } from 'vitest';
import { grad, jit, makeProgram } from '@scorch/autograd';
import {
  type DType, type Program, type Tensor, broadcastTo, concat, cos, log, matmul, randn, randomKey, sin, sinkBroadcasts, splitKey, sum, tensor, where,
} from '@scorch/tensor';

const [k1, k2, k3] = splitKey(randomKey(66), 3);

/** Bytes of a tensor's values: equal exactly when every element has the same bits. */
const bytes = async (t: Tensor) => {
  const d = await t.data();
  return Array.from(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
};

/** The jitted call equals the eager one bit for bit (every output). */
async function expectSameAsEager(f: (...a: Tensor[]) => Tensor | Tensor[], args: Tensor[]): Promise<void> {
  const eager = [f(...args)].flat();
  const compiled = [jit(f)(...args)].flat();
  expect(compiled.length).toBe(eager.length);
  for (let i = 0; i < eager.length; i++) {
    expect(compiled[i]!.shape).toEqual(eager[i]!.shape);
    expect(await bytes(compiled[i]!)).toEqual(await bytes(eager[i]!));
  }
}

/** Elements computed by each primitive's equations in the program, e.g. { sin: 16 }. */
function elementsBy(program: Program, prims: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const eq of program.equations) {
    if (!prims.includes(eq.prim)) continue;
    out[eq.prim] = (out[eq.prim] ?? 0) + eq.out.shape.reduce((a, b) => a * b, 1);
  }
  return out;
}

const DTYPES: DType[] = ['float32', 'float64'];

describe('sinkBroadcasts: elementwise work on broadcasts is computed at the source\'s size', () => {
  for (const dtype of DTYPES) {
    it(`unary and binary ops, comparisons, where and casts of a broadcast scalar (${dtype})`, async () => {
      // σ broadcast to [8, 5]; everything up to the add with x is a function of σ alone.
      const f = (s: Tensor, x: Tensor) => {
        const b = broadcastTo(s.reshape([1, 1]), [8, 5]);
        const l = log(b);
        const y = sin(l.mul(3)).add(cos(l));
        const w = where(b.less(0.5), y, y.neg()).cast(dtype === 'float32' ? 'float64' : 'float32').cast(dtype);
        return x.add(w);
      };
      const s = tensor(0.3, { dtype });
      const x = randn([8, 5], { key: k1, dtype: dtype as 'float32' | 'float64' });
      const program = makeProgram(f)(s, x);
      expect(elementsBy(program, ['log', 'sin', 'cos', 'mul', 'neg', 'less', 'where', 'cast', 'add'])).toEqual({
        log: 1, sin: 1, cos: 1, mul: 1, neg: 1, less: 1, where: 1, cast: 2, add: 1 + 40,
      });
      await expectSameAsEager(f, [s, x]);
      // σ = 1: log σ = +0, and −0 from the negation: signed zeros come through as eager's.
      await expectSameAsEager(f, [tensor(1, { dtype }), x]);
    });
  }

  it('operands broadcast from different smaller shapes are computed at their joint shape', async () => {
    // [1,1,5] and [1,4,1] stretched to [3,4,5]: the sum is computed on [1,4,5] (20 of 60).
    const f = (a: Tensor, b: Tensor, x: Tensor) => x.mul(broadcastTo(a, [3, 4, 5]).add(broadcastTo(b, [3, 4, 5])).exp());
    const a = randn([1, 1, 5], { key: k1 });
    const b = randn([1, 4, 1], { key: k2 });
    const x = randn([3, 4, 5], { key: k3 });
    const program = makeProgram(f)(a, b, x);
    expect(elementsBy(program, ['add', 'exp'])).toEqual({ add: 20, exp: 20 });
    await expectSameAsEager(f, [a, b, x]);
  });

  it('a K = 1 product of a row-broadcast column (and a column-broadcast row), and a concat of broadcasts, are computed once', async () => {
    // The embedding's shape: c [N] → [N, 1] @ ω [1, h] → sin, cos → concat.
    for (const dtype of DTYPES) {
      const f = (s: Tensor, omega: Tensor, x: Tensor) => {
        const c = log(broadcastTo(s.reshape([1]), [6]));
        const angles = matmul(c.reshape([6, 1]), omega);
        const emb = concat([sin(angles), cos(angles)], 1);
        const cols = matmul(x.slice([0, 0], [6, 1]), broadcastTo(s.reshape([1, 1]), [1, 3]));
        return [concat([x, emb], 1), cols];
      };
      const s = tensor(1, { dtype });
      // ω with a −0 and negatives: log σ = +0, so some products are −0 (0 + −0 is +0 in every kernel).
      const omega = tensor([[0.5, -2, -0, 3]], { dtype });
      const x = randn([6, 2], { key: k2, dtype: dtype as 'float32' | 'float64' });
      const program = makeProgram(f)(s, omega, x);
      expect(elementsBy(program, ['log', 'matmul', 'sin', 'cos'])).toEqual({ log: 1, matmul: 4 + 6, sin: 4, cos: 4 });
      expect(program.equations.filter((e) => e.prim === 'concat').map((e) => e.out.shape)).toEqual([[1, 8], [6, 10]]);
      await expectSameAsEager(f, [s, omega, x]);
      await expectSameAsEager(f, [tensor(0.25, { dtype }), omega, x]);
    }
  });
});

describe('sinkBroadcasts: what it leaves alone', () => {
  it('ops with a full-size operand, broadcasts that together fill the output, and a returned broadcast', () => {
    const mixed = makeProgram((x: Tensor, b: Tensor) => x.add(b).exp())(randn([8, 5], { key: k1 }), randn([5], { key: k2 }));
    expect(sinkBroadcasts(mixed)).toBe(mixed);
    const outer = makeProgram((a: Tensor, b: Tensor) => broadcastTo(a, [4, 5]).mul(broadcastTo(b, [4, 5])))(randn([1, 5], { key: k1 }), randn([4, 1], { key: k2 }));
    expect(sinkBroadcasts(outer)).toBe(outer);
    expect(elementsBy(outer, ['mul'])).toEqual({ mul: 20 });
    const returned = makeProgram((s: Tensor) => broadcastTo(s.reshape([1, 1]), [4, 5]))(tensor(2));
    expect(sinkBroadcasts(returned)).toBe(returned);
    // A K > 1 product of a broadcast is left (its kernels' sums may differ with the rows).
    const inner = makeProgram((a: Tensor, w: Tensor) => matmul(broadcastTo(a, [6, 3]), w))(randn([1, 3], { key: k1 }), randn([3, 2], { key: k2 }));
    expect(sinkBroadcasts(inner)).toBe(inner);
  });

  it('a rewritten op that is an output keeps its variable and shape (made by an expand)', async () => {
    const f = (s: Tensor) => [sin(broadcastTo(s.reshape([1]), [7])), s.mul(2)];
    const program = makeProgram(f)(tensor(0.7));
    expect(program.outputs.map((v) => v.shape)).toEqual([[7], []]);
    expect(elementsBy(program, ['sin', 'expand'])).toEqual({ sin: 1, expand: 7 });
    await expectSameAsEager(f, [tensor(0.7)]);
  });
});

describe('sinkBroadcasts under grad', () => {
  for (const dtype of DTYPES) {
    it(`jit(grad(f)) of a function of a broadcast σ equals eager grad bit for bit (${dtype})`, async () => {
      // d/dσ and d/dx of Σ x·sin(ω·log σ) with σ broadcast to the rows.
      const f = (s: Tensor, x: Tensor) => {
        const c = log(broadcastTo(s.reshape([1]), [5]));
        const e = concat([sin(c.reshape([5, 1]).mul(2)), cos(c.reshape([5, 1]))], 1);
        return sum(x.mul(e));
      };
      const g = (s: Tensor, x: Tensor) => grad(f, { argnums: [0, 1] })(s, x) as Tensor[];
      const s = tensor(0.4, { dtype });
      const x = randn([5, 2], { key: k3, dtype: dtype as 'float32' | 'float64' });
      const program = makeProgram(g)(s, x);
      // The forward's sin and cos run on one row, and so do the backward's cos and −sin (their
      // derivatives, functions of σ alone); only their products with the cotangent are [5, 1].
      expect(program.equations.filter((e) => e.prim === 'sin' || e.prim === 'cos').map((e) => `${e.prim}${JSON.stringify(e.out.shape)}`).sort())
        .toEqual(['cos[1,1]', 'cos[1,1]', 'sin[1,1]', 'sin[1,1]'].sort());
      await expectSameAsEager(g, [s, x]);
    });
  }
});
