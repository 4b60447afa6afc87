// jit on the CPU: programs print, compiled calls equal eager ones bit for bit (the CPU's
// generated kernels round every fused value as a store would, accumulate reductions in eager's
// order and call eager's matmul: no reassociation happens), the cache
// retraces only when the signature changes, and jit composes with grad, jvp and itself.

import { describe, expect, it } from 'vitest';
import { grad, hvp, jit, jvp, makeProgram, noGrad, valueAndGrad } from '@scorch/autograd';
import { messageOf } from './helpers.js';
import {
  CpuBackend, type RandomKey, type Tensor, foldIn, getBackend, listDevices, matmul, memory, randn, randomKey, registerBackend, softplus, splitKey, sum, tensor, tidy, zeros,
} from '@scorch/tensor';

const keys = splitKey(randomKey(42), 8);
const mlp = () => ({
  w1: randn([2, 16], { key: keys[0] }).mul(0.5),
  b1: randn([16], { key: keys[1] }).mul(0.1),
  w2: randn([16, 2], { key: keys[2] }).mul(0.5),
});
type Mlp = ReturnType<typeof mlp>;
const score = (p: Mlp, x: Tensor) => matmul(softplus(matmul(x, p.w1).add(p.b1)), p.w2);

/** Sliced score matching (variance reduced): E[vᵀ(∂s/∂x)v + ½‖s‖²], the θ-gradient is grad of jvp. */
const ssmLoss = (p: Mlp, x: Tensor, key: RandomKey) => {
  const v = randn(x.shape, { key: foldIn(key, 0) });
  const [s, jv] = jvp((y: Tensor) => score(p, y), [x], [v]);
  return sum(v.mul(jv), 1).add(sum(s.square(), 1).mul(0.5)).mean();
};

const values = async (t: Tensor) => Array.from(await t.data());

/** Runs `body` with console.warn silenced (the retrace warning at 32 signatures). */
function quietly(body: () => void): void {
  const warn = console.warn;
  console.warn = () => {};
  try {
    body();
  } finally {
    console.warn = warn;
  }
}

describe('makeProgram', () => {
  it('prints inputs, key inputs, derived keys and equations like a jaxpr', () => {
    const x = tensor([[1, 2], [3, 4]]);
    const program = makeProgram((x: Tensor, k: RandomKey) => x.mul(2).add(randn([2, 2], { key: foldIn(k, 7) })).sum())(x, randomKey(1));
    const text = program.toString();
    expect(text).toBe(
      [
        '{ lambda a:f32[2,2] ; k0:key .',
        '  let k1:key = foldIn k0 7',
        '      b:f32[2,2] = full[value=2]',
        '      c:f32[2,2] = mul a b',
        '      d:f32[2,2] = random[key=k1 distribution=normal]',
        '      e:f32[2,2] = add c d',
        '      f:f32[] = sum[axes=[0,1]] e',
        '  in ( f ) }',
      ].join('\n'),
    );
    expect(program.primitiveCounts()).toEqual({ full: 1, mul: 1, random: 1, add: 1, sum: 1 });
  });

  it('stages detach as stopGradient and assign as an update', () => {
    const state = zeros([3]);
    const program = makeProgram((x: Tensor) => {
      state.assign(state.add(x));
      return x.detach().mul(x);
    })(tensor([1, 2, 3]));
    const text = program.toString();
    expect(text).toContain('stopGradient a');
    expect(text).toContain('b:f32[3](captured)');
    expect(text).toMatch(/updates b <- \w+/);
  });
});

describe('jit on the CPU equals eager mode bit for bit', () => {
  it('a kernel whose outputs read each other at other coordinates (a transpose of a value it makes)', async () => {
    // exp(s) after a row sum is the reduction's epilogue; s + exp(s)ᵀ may not join that epilogue,
    // as it reads exp(s) at elements the kernel has not written yet. The same for u = exp(x)
    // read both transposed and in place by one root: the transposed read decides.
    const x3 = randn([6, 6, 8], { key: keys[7] });
    const x2 = randn([6, 6], { key: keys[6] });
    const programs: [(a: Tensor) => Tensor[], Tensor][] = [
      [(a) => { const s = a.sum(2); const e = s.exp(); return [e, s.add(e.permute([1, 0]))]; }, x3],
      [(a) => { const s = a.sum(2); const e = s.exp(); return [e, e.permute([1, 0]).add(e)]; }, x3],
      [(a) => { const u = a.exp(); return [u, u.permute([1, 0]).add(u)]; }, x2],
    ];
    for (const [f, x] of programs) {
      const eager = f(x);
      const compiled = jit(f)(x);
      for (let i = 0; i < eager.length; i++) expect(await values(compiled[i]!)).toEqual(await values(eager[i]!));
    }
  });

  it('a broadcast value that reads a reduction is not placed before the reduction', async () => {
    // exp(s) (or tanh(2s)) of a row sum, read through an expand beside s itself: hoisted one
    // step too early, its kernel read the sum before the sum was written.
    const x = randn([8, 16], { key: keys[2] });
    const programs: ((a: Tensor) => Tensor[])[] = [
      (a) => { const s = a.sum(1, true); const hb = s.exp().expand([8, 16]); return [a.mul(hb).add(s.expand([8, 16])), a.div(hb)]; },
      (a) => { const s = a.sum(1, true); const hb = s.mul(2).tanh().expand([8, 16]); return [a.mul(hb).add(s.expand([8, 16])), a.sub(hb).exp()]; },
    ];
    for (const f of programs) {
      const eager = f(x);
      const compiled = jit(f)(x);
      for (let i = 0; i < eager.length; i++) expect(await values(compiled[i]!)).toEqual(await values(eager[i]!));
    }
  });

  it('a draw from a key split twice inside the program', async () => {
    // Dead-code elimination keeps the derivation of a derived key's own input key.
    const f = (a: Tensor, key: RandomKey) => a.add(randn([4], { key: splitKey(splitKey(key, 2)[0]!, 3)[1]! }));
    const x = tensor([1, 2, 3, 4]);
    expect(await values(jit(f)(x, randomKey(7)))).toEqual(await values(f(x, randomKey(7))));
  });

  it('a product of a row slice (an offset view) of an input or of a stored product', async () => {
    const x = randn([10, 8], { key: keys[5] });
    const x3 = randn([3, 8, 8], { key: keys[4] });
    const w = randn([8, 8], { key: keys[3] });
    const f = (a: Tensor, b: Tensor) => matmul(a.slice([2, 0], [8, 8]), b);
    const h = (a: Tensor, b: Tensor) => matmul(matmul(a, b).slice([1, 0, 0], [2, 8, 8]), b);
    expect(await values(jit(f)(x, w))).toEqual(await values(f(x, w)));
    expect(await values(jit(h)(x3, w))).toEqual(await values(h(x3, w)));
  });

  it('a training step: SSM-VR loss, its θ-gradient through jvp, an SGD update by assign', async () => {
    const eagerParams = mlp();
    const jitParams = mlp();
    const x = randn([64, 2], { key: keys[3] });
    const step = (p: Mlp, x: Tensor, key: RandomKey) => {
      const names = ['w1', 'b1', 'w2'] as const;
      const [loss, grads] = valueAndGrad((...t: Tensor[]) => ssmLoss({ w1: t[0]!, b1: t[1]!, w2: t[2]! }, x, key), { argnums: [0, 1, 2] })(p.w1, p.b1, p.w2) as [Tensor, Tensor[]];
      names.forEach((n, i) => p[n].assign(p[n].sub(grads[i]!.mul(0.05))));
      return loss;
    };
    const compiled = jit(step);
    for (let i = 0; i < 4; i++) {
      const k = foldIn(keys[4]!, i);
      const eager = tidy(() => step(eagerParams, x, k));
      const jitted = compiled(jitParams, x, k);
      expect(await values(jitted)).toEqual(await values(eager));
      for (const n of ['w1', 'b1', 'w2'] as const) expect(await values(jitParams[n])).toEqual(await values(eagerParams[n]));
      eager.dispose();
      jitted.dispose();
    }
    expect(compiled.traceCount).toBe(1);
  });

  it('a Hessian-vector product (forward over reverse) and a pytree result', async () => {
    const p = mlp();
    const x = randn([8, 2], { key: keys[5] });
    const v = randn([2, 16], { key: keys[6] });
    const f = (w1: Tensor, x: Tensor, v: Tensor) => {
      const objective = (w: Tensor) => score({ ...p, w1: w }, x).sum();
      return { hv: hvp(objective, [w1], [v]) as Tensor, value: objective(w1), tag: 'hvp' };
    };
    const eager = f(p.w1, x, v);
    const compiled = jit(f)(p.w1, x, v);
    expect(compiled.tag).toBe('hvp');
    expect(await values(compiled.hv)).toEqual(await values(eager.hv));
    expect(await values(compiled.value)).toEqual(await values(eager.value));
  });

  it('a product of an empty slice whose offset lies past the end of its empty input', async () => {
    // Rows 1..3 and columns 2..11 of a [0, 4, 16] input: a view at offset 1·16 + 2 of no elements.
    // The compiled matmul passed that offset to matmulBatchedInto, whose bounds check threw.
    const w = tensor([[1, 2, 3], [4, 5, 6]]).reshape([1, 6]).expand([10, 6]).cast('float64');
    for (const dtype of ['float32', 'float64'] as const) {
      const f = (x: Tensor) => [x.slice([0, 1, 2], [0, 3, 10]).matmul(w.cast(dtype)), x.slice([0, 1, 2], [0, 3, 10]).reshape([0, 10]).matmul(w.cast(dtype)).add(1)];
      const x = zeros([0, 4, 16], { dtype });
      const eager = f(x);
      const compiled = jit(f)(x);
      expect(compiled.map((t) => [t.dtype, t.shape])).toEqual(eager.map((t) => [t.dtype, t.shape]));
      expect(compiled.map((t) => t.shape)).toEqual([[0, 3, 6], [0, 6]]);
    }
  });
});

describe('jit signatures and the cache', () => {
  it('records which argument a repeated tensor repeats, and tells a number −0 from 0', async () => {
    // g(x, y, x) and g(x, y, y) pass the same tensors in the same shapes: only the position a
    // repeat points back to tells the two programs apart.
    const f = (a: Tensor, b: Tensor, c: Tensor) => a.add(b.mul(10)).add(c.mul(100));
    const x = tensor([1, 2]);
    const y = tensor([3, 4]);
    const g = jit(f);
    expect(await values(g(x, y, x))).toEqual([131, 242]);
    expect(await values(g(x, y, y))).toEqual([331, 442]);
    // A number argument is a constant of the program: 1 / −0 is −∞, so −0 is a program of its own.
    const div = jit((a: Tensor, s: number) => a.div(s));
    expect(await values(div(x, 0))).toEqual([Infinity, Infinity]);
    expect(await values(div(x, -0))).toEqual([-Infinity, -Infinity]);
  });

  it('retraces for new shapes and static values, not for new values or new keys', async () => {
    let traced = 0;
    const f = jit((x: Tensor, k: RandomKey, scale: number) => {
      traced++;
      return x.mul(scale).add(randn(x.shape, { key: k, dtype: x.dtype }));
    });
    const a = tensor([1, 2, 3]);
    const r1 = f(a, randomKey(1), 2);
    const r2 = f(tensor([5, 6, 7]), randomKey(2), 2);
    expect(traced).toBe(1);
    // A new key gives the numbers eager mode gives for that key.
    expect(await values(r2)).toEqual(await values(tensor([5, 6, 7]).mul(2).add(randn([3], { key: randomKey(2) }))));
    expect(await values(r1)).not.toEqual(await values(r2.sub(tensor([8, 8, 8]))));
    f(a, randomKey(3), 3);
    expect(traced).toBe(2);
    f(tensor([1, 2, 3, 4]), randomKey(3), 3);
    expect(traced).toBe(3);
    f(a.cast('float64'), randomKey(3), 3);
    expect(traced).toBe(4);
    expect(f.cacheSize).toBe(4);
    f.clearCache();
    expect(f.cacheSize).toBe(0);
  });

  it('a traced typed array or a class instance, Map or Set holding tensors is refused, not replayed stale', async () => {
    // Keyed by identity, a batch buffer refilled in place replayed the first call's values, and a
    // tensor replaced in a class instance was never read again.
    class Model {
      constructor(public w: Tensor) {}
    }
    const x = tensor([1, 2, 3]);
    expect(() => jit((m: Model, v: Tensor) => v.mul(m.w))(new Model(tensor([1, 1, 1])), x)).toThrow(
      /^jit argument 0 is a Model holding tensors, which jit cannot see as inputs \(a tensor replaced in it would not be seen\); pass them in arrays and plain objects \(a pytree\), e.g\. \{ w: model\.w \}$/,
    );
    expect(() => jit((m: Map<string, Tensor>, v: Tensor) => v.mul(m.get('w')!))(new Map([['w', x]]), x)).toThrow(/^jit argument 0 is a Map holding tensors/);
    expect(() => jit((v: Tensor, b: Float32Array) => v.mul(tensor(b)))(x, new Float32Array(3))).toThrow(
      /^jit argument 1 is a Float32Array: pass its values as a tensor \(tensor\(array\)\), an input of the program, or list the argument in static \(then compared by its contents\)$/,
    );
    // Static, a typed array is compared by its contents: refilled in place, it is a new program.
    let traced = 0;
    const f = jit((v: Tensor, b: Float32Array) => {
      traced++;
      return v.mul(tensor(b)).sum();
    }, { static: [1] });
    const buffer = new Float32Array([1, 2, 3]);
    expect(await values(f(tensor([1, 1, 1]), buffer))).toEqual([6]);
    buffer.set([10, 20, 30]);
    expect(await values(f(tensor([1, 1, 1]), buffer))).toEqual([60]);
    expect(await values(f(tensor([1, 1, 1]), new Float32Array([10, 20, 30])))).toEqual([60]);
    expect(traced).toBe(2);
  });

  it('a static array or plain object is compared by its contents; a tensor or class instance in it by identity', async () => {
    let traced = 0;
    const f = jit((x: Tensor, config: { scale: number; shift: number[]; extra?: Tensor }) => {
      traced++;
      const y = x.mul(config.scale).add(config.shift[0]!);
      return config.extra ? y.add(config.extra) : y;
    }, { static: [1] });
    const x = tensor([1, 2, 3]);
    // A new literal each call, as a JAX or PyTorch user writes it: one program (a new trace each
    // call before, compared by identity).
    expect(await values(f(x, { scale: 2, shift: [1] }))).toEqual([3, 5, 7]);
    expect(await values(f(x, { scale: 2, shift: [1] }))).toEqual([3, 5, 7]);
    expect(traced).toBe(1);
    // One object changed in place between calls is a new program, not the old one's stale constants.
    const config = { scale: 2, shift: [1] };
    f(x, config);
    config.scale = 3;
    expect(await values(f(x, config))).toEqual([4, 7, 10]);
    expect(traced).toBe(2);
    // Keys in another order are another object.
    f(x, { shift: [1], scale: 2 } as never);
    expect(traced).toBe(3);
    // A tensor inside is read by reference and compared by identity.
    const extra = tensor([10, 20, 30]);
    expect(await values(f(x, { scale: 2, shift: [0], extra }))).toEqual([12, 24, 36]);
    f(x, { scale: 2, shift: [0], extra });
    expect(traced).toBe(4);
    f(x, { scale: 2, shift: [0], extra: tensor([0, 0, 0]) });
    expect(traced).toBe(5);
    // A container inside itself does not loop.
    const cyclic: { scale: number; shift: number[]; self?: unknown } = { scale: 1, shift: [0] };
    cyclic.self = cyclic;
    expect(await values(f(x, cyclic))).toEqual([1, 2, 3]);
  });

  it('keeps at most 64 programs, freeing the least recently used, and warns once at 32 (docs/jit.md)', async () => {
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (message: string) => void warnings.push(message);
    try {
      let traced = 0;
      const f = jit((x: Tensor, scale: number) => {
        traced++;
        return x.mul(scale);
      });
      const a = tensor([1, 2, 3]);
      for (let s = 1; s <= 31; s++) f(a, s).dispose();
      expect(warnings).toEqual([]);
      f(a, 32).dispose();
      expect(warnings.length).toBe(1);
      expect(warnings[0]).toMatch(/traced for 32 different signatures/);
      f(a, 1).dispose(); // a hit: scale 1 becomes the most recently used
      for (let s = 33; s <= 65; s++) f(a, s).dispose();
      expect(f.cacheSize).toBe(64);
      expect(warnings.length).toBe(1);
      expect(traced).toBe(65);
      f(a, 1).dispose(); // still held: scale 2, the least recently used, was freed instead
      expect(traced).toBe(65);
      f(a, 2).dispose();
      expect(traced).toBe(66);
      f.clearCache();
    } finally {
      console.warn = warn;
    }
  });

  it('returns the keys a call derives from its key argument, new on every call, as eager mode does', async () => {
    // A step that hands back the key for the next step (as with JAX's split-and-carry).
    const step = (x: Tensor, key: RandomKey) => {
      const [draw, next] = splitKey(key, 2);
      return { y: x.add(randn(x.shape, { key: draw! })), next, same: key, folded: [foldIn(next!, 3)], constant: randomKey(9) };
    };
    const compiled = jit(step);
    const x = tensor([1, 2, 3]);
    let key = randomKey(1);
    for (let i = 0; i < 3; i++) {
      const got = compiled(x, key);
      const want = step(x, key);
      expect(got.next).toEqual(want.next);
      expect(got.same).toEqual(key);
      expect(got.folded).toEqual(want.folded);
      expect(got.constant).toEqual(want.constant);
      expect(await values(got.y)).toEqual(await values(want.y));
      // The returned key is a key (so it can be passed back in without a retrace).
      key = got.next!;
    }
    expect(compiled.traceCount).toBe(1);
    // A fresh key of the caller's own: the keys returned are this call's, not the first call's.
    expect(compiled(x, randomKey(5)).next).toEqual(splitKey(randomKey(5), 2)[1]);
  });

  it('reads a closed-over tensor by reference: updates between calls are seen', async () => {
    const w = tensor([1, 1]);
    const f = jit((x: Tensor) => x.mul(w));
    expect(await values(f(tensor([2, 3])))).toEqual([2, 3]);
    w.assign(tensor([10, 100]));
    expect(await values(f(tensor([2, 3])))).toEqual([20, 300]);
  });

  it('keeps its own copy of constants made while tracing, though tidy frees the originals', async () => {
    const f = jit((x: Tensor) => tidy(() => x.add(tensor([1, 2, 3]))));
    expect(await values(f(tensor([0, 0, 0])))).toEqual([1, 2, 3]);
    expect(await values(f(tensor([1, 1, 1])))).toEqual([2, 3, 4]);
  });
});

describe('jit composes', () => {
  const f = (x: Tensor) => softplus(x.mul(x)).sum();
  const x = tensor([0.5, -1.5, 2], { dtype: 'float64' });
  const t = tensor([1, 2, 3], { dtype: 'float64' });

  it('grad(jit(f)), jvp(jit(f)), jit(grad(f)) and jit(jit(f)) equal the eager results', async () => {
    const eagerGrad = await values(grad(f)(x) as Tensor);
    expect(await values(grad(jit(f))(x) as Tensor)).toEqual(eagerGrad);
    expect(await values(jit(grad(f))(x) as Tensor)).toEqual(eagerGrad);
    const [, eagerTangent] = jvp(f, [x], [t]);
    const [, tangent] = jvp(jit(f), [x], [t]);
    expect(await values(tangent)).toEqual(await values(eagerTangent));
    expect(await values(jit((y: Tensor) => jit(f)(y).mul(2))(x))).toEqual(await values(f(x).mul(2)));
  });
});

describe('jit and requiresGrad/backward()', () => {
  const f = (x: Tensor) => softplus(x.mul(x)).sum().mul(x.sin().sum());
  const leaf = () => {
    const x = tensor([0.5, -1.5, 2]);
    x.requiresGrad = true;
    return x;
  };

  it('a call an argument of the ambient graph reaches runs eagerly: backward() gives the eager gradients', async () => {
    const x = leaf();
    const y = leaf();
    const jf = jit(f, { donate: [0] });
    for (let i = 0; i < 3; i++) {
      const got = jf(x);
      const want = f(y);
      expect(got.requiresGrad).toBe(true);
      expect(await values(got)).toEqual(await values(want));
      got.backward();
      want.backward();
      expect(await values(x.grad!)).toEqual(await values(y.grad!));
    }
    expect(x.isDisposed).toBe(false);
    expect(jf.traceCount).toBe(0);
    // jit(grad(f)) of a tensor that requires grad is in the graph as eager's is: its gradient differentiates again.
    const g = jit(grad(f));
    const got = g(x) as Tensor;
    const want = grad(f)(y) as Tensor;
    expect(got.requiresGrad).toBe(true);
    expect(await values(got)).toEqual(await values(want));
    got.sum().backward();
    want.sum().backward();
    expect(await values(x.grad!)).toEqual(await values(y.grad!));
    // Under noGrad, or for a detached argument, the call runs the compiled program (which consumes a donated argument).
    const plain = jit(f);
    expect(await values(noGrad(() => plain(x)))).toEqual(await values(noGrad(() => f(y))));
    expect(noGrad(() => plain(x)).requiresGrad).toBe(false);
    expect(plain.traceCount).toBe(1);
    const detached = x.detach();
    expect(jf(detached).requiresGrad).toBe(false);
    expect(detached.isDisposed).toBe(true);
    expect(jf.traceCount).toBe(1);
    expect(await values(x)).toEqual(await values(y));
  });

  it('so does a call that reads a closed-over tensor of the graph, though the program was compiled without it', async () => {
    const w = tensor([0.25, -2, 1.5]);
    const v = tensor([0.25, -2, 1.5]);
    const body = (p: Tensor) => (x: Tensor) => f(x.mul(p));
    const jf = jit(body(w));
    const x = tensor([1, 3, -0.5]);
    expect(await values(jf(x))).toEqual(await values(body(v)(x)));
    expect(jf(x).requiresGrad).toBe(false);
    w.requiresGrad = true;
    v.requiresGrad = true;
    for (let i = 0; i < 2; i++) {
      const got = jf(x);
      const want = body(v)(x);
      expect(got.requiresGrad).toBe(true);
      expect(await values(got)).toEqual(await values(want));
      got.backward();
      want.backward();
      expect(await values(w.grad!)).toEqual(await values(v.grad!));
    }
    expect(noGrad(() => jf(x)).requiresGrad).toBe(false);
    expect(jf.traceCount).toBe(1);
  });
});

describe('assign and donation', () => {
  it('applies an update to an argument, and later reads in the function see the new value', async () => {
    const f = jit((s: Tensor, x: Tensor) => {
      s.assign(s.add(x));
      return s.mul(10);
    });
    const s = tensor([1, 2]);
    const out = f(s, tensor([1, 1]));
    expect(await values(s)).toEqual([2, 3]);
    expect(await values(out)).toEqual([20, 30]);
    f(s, tensor([1, 1]));
    expect(await values(s)).toEqual([3, 4]);
  });

  it('a tensor passed as two arguments is one tensor: an assign through one is read through the other, as in eager mode', async () => {
    const body = (a: Tensor, b: Tensor) => {
      a.assign(b.flip([0]).mul(2));
      b.assign(b.add(1));
      return b.sum();
    };
    const f = jit(body, { donate: [0] });
    const x = tensor([1, 2, 3]);
    const y = tensor([1, 2, 3]);
    for (let i = 0; i < 2; i++) {
      const got = f(x, x);
      const want = body(y, y);
      expect(await values(x)).toEqual(await values(y));
      expect(await values(got)).toEqual(await values(want));
    }
    expect(await values(x)).toEqual([7, 11, 15]);
    expect(x.isDisposed).toBe(false);
    // Two different tensors of the same shapes are another signature, each updated on its own.
    const p = tensor([1, 2, 3]);
    const q = tensor([0, 0, 1]);
    expect(await values(f(p, q))).toEqual([4]);
    expect(await values(p)).toEqual([2, 0, 0]);
    expect(await values(q)).toEqual([1, 1, 2]);
    expect(f.traceCount).toBe(2);
  });

  it('a tensor the function closes over and is passed is one tensor, and a program for one use does not serve the other', async () => {
    // Closes over `state`; called with it, with another tensor, and back, in both orders.
    const make = (state: Tensor) => (a: Tensor) => {
      const before = a.mul(2);
      state.assign(state.add(0.1));
      a.assign(a.mul(3));
      return before.add(state).add(a);
    };
    for (const donate of [[], [0]]) {
      for (const order of [['same', 'other', 'same', 'other'], ['other', 'same', 'other', 'same']]) {
        const s = tensor([0.3, -1.7]);
        const e = tensor([0.3, -1.7]);
        const p = tensor([2.5, 0.25]);
        const q = tensor([2.5, 0.25]);
        const f = jit(make(s), { donate });
        const eager = make(e);
        for (const which of order) {
          for (let i = 0; i < 2; i++) {
            const got = which === 'same' ? f(s) : f(p);
            const want = which === 'same' ? eager(e) : eager(q);
            expect(await values(got)).toEqual(await values(want));
            expect(await values(s)).toEqual(await values(e));
            expect(await values(p)).toEqual(await values(q));
          }
        }
        expect(s.isDisposed || p.isDisposed).toBe(false);
        expect(f.traceCount).toBe(2);
        expect(f.cacheSize).toBe(2);
      }
    }
    // The example: eager reads the assigned value through the argument.
    const s = tensor([1, 2]);
    const out = jit((a: Tensor) => {
      s.assign(s.add(1));
      return a.mul(1);
    })(s);
    expect(await values(out)).toEqual([2, 3]);
  });

  it('updates closed-over state on every call', async () => {
    const total = zeros([2]);
    const accumulate = jit((x: Tensor) => {
      total.assign(total.add(x));
      return total.sum();
    });
    for (let i = 0; i < 3; i++) accumulate(tensor([1, 2])).dispose();
    expect(await values(total)).toEqual([3, 6]);
  });

  it('donated arguments: an assigned one keeps its identity and new value, another is consumed', async () => {
    const f = jit((args: { params: Tensor; grads: Tensor }) => {
      args.params.assign(args.params.sub(args.grads));
      return args.params.sum();
    }, { donate: ['params', 'grads'] });
    const params = tensor([5, 5]);
    const grads = tensor([1, 2]);
    f({ params, grads }).dispose();
    expect(await values(params)).toEqual([4, 3]);
    expect(grads.isDisposed).toBe(true);
    // A replay (the same signature) donates the same way: the new gradient is consumed too.
    const grads2 = tensor([1, 1]);
    f({ params, grads: grads2 }).dispose();
    expect(await values(params)).toEqual([3, 2]);
    expect(grads2.isDisposed).toBe(true);
    expect(f.traceCount).toBe(1);
  });

  it('donation on replays: a positional donation consumes only its argument on every call; without donate nothing is consumed', async () => {
    const g = jit((a: Tensor, b: Tensor) => a.add(b), { donate: [1] });
    const a = tensor([1, 2]);
    for (let i = 0; i < 2; i++) {
      const b = tensor([10, 20]);
      const out = g(a, b);
      expect(await values(out)).toEqual([11, 22]);
      out.dispose();
      expect(b.isDisposed).toBe(true);
      expect(a.isDisposed).toBe(false);
    }
    const h = jit((a: Tensor, b: Tensor) => a.add(b));
    const b = tensor([10, 20]);
    for (let i = 0; i < 2; i++) h(a, b).dispose();
    expect(a.isDisposed || b.isDisposed).toBe(false);
  });
});

describe('memory', () => {
  it('a trace leaves nothing behind: the constants made while tracing are freed when it ends (clearCache frees the rest), also when it throws', () => {
    const x = tensor([1, 2, 3, 4]);
    const before = memory();
    // flip's indices, a number broadcast against a tracer, a host tensor, a state kept by the function
    const f = jit((z: Tensor) => z.flip(0).mul(2).add(tensor([1, 0, 1, 0])).indexSelect(0, [3, 1]));
    f(x).dispose();
    f(x).dispose();
    f.clearCache();
    expect(memory()).toEqual(before);
    const g = jit((z: Tensor) => {
      z.add(tensor([5, 5, 5, 5])).flip(0);
      throw new Error('stop');
    });
    expect(() => g(x)).toThrow('stop');
    expect(memory()).toEqual(before);
    x.dispose();
  });

  it('stays flat over 2,000 jitted training steps', async () => {
    const p = mlp();
    const x = randn([32, 2], { key: keys[7] });
    const step = jit((p: Mlp, key: RandomKey) => {
      const [loss, grads] = valueAndGrad((w1: Tensor, b1: Tensor, w2: Tensor) => ssmLoss({ w1, b1, w2 }, x, key), { argnums: [0, 1, 2] })(p.w1, p.b1, p.w2) as [Tensor, Tensor[]];
      p.w1.assign(p.w1.sub(grads[0]!.mul(0.01)));
      p.b1.assign(p.b1.sub(grads[1]!.mul(0.01)));
      p.w2.assign(p.w2.sub(grads[2]!.mul(0.01)));
      return loss;
    }, { donate: [0] });
    step(p, randomKey(0)).dispose();
    const before = memory();
    for (let i = 1; i < 2000; i++) step(p, foldIn(keys[7]!, i)).dispose();
    expect(memory()).toEqual(before);
    expect(step.traceCount).toBe(1);
  });

  it('an MLP trained with Adam, eager and jitted, 2,000 steps each: flat live memory, no new arrays after the first step', async () => {
    const cpu = getBackend('cpu') as CpuBackend;
    const x = randn([64, 2], { key: keys[7] });
    const names = ['w1', 'b1', 'w2'] as const;
    // Adam (Kingma & Ba 2015, their default β₁, β₂, ε; no bias correction: a constant-rate step
    // keeps the traced program the same every call). State updated by assign, as optimisers do.
    const adamStep = (p: Mlp, m: Mlp, v: Mlp, key: RandomKey) => {
      const [loss, grads] = valueAndGrad((w1: Tensor, b1: Tensor, w2: Tensor) => ssmLoss({ w1, b1, w2 }, x, key), { argnums: [0, 1, 2] })(p.w1, p.b1, p.w2) as [Tensor, Tensor[]];
      names.forEach((n, i) => {
        const g = grads[i]!;
        m[n].assign(m[n].mul(0.9).add(g.mul(0.1)));
        v[n].assign(v[n].mul(0.999).add(g.square().mul(0.001)));
        p[n].assign(p[n].sub(m[n].mul(1e-3).div(v[n].sqrt().add(1e-8))));
      });
      return loss;
    };
    const zerosLike = (p: Mlp): Mlp => ({ w1: zeros(p.w1.shape), b1: zeros(p.b1.shape), w2: zeros(p.w2.shape) });
    const jitted = jit(adamStep, { donate: [0, 1, 2] });
    const runs: [string, (p: Mlp, m: Mlp, v: Mlp, key: RandomKey) => Tensor][] = [
      ['eager', (p, m, v, key) => tidy(() => adamStep(p, m, v, key))],
      ['jit', jitted],
    ];
    for (const [, step] of runs) {
      const p = mlp();
      const m = zerosLike(p);
      const v = zerosLike(p);
      // Warm-up: the first call traces, compiles and allocates; every later one reuses its arrays.
      step(p, m, v, foldIn(keys[7]!, 0)).dispose();
      const before = memory();
      const pool = cpu.memoryStats();
      let first = 0;
      let last = 0;
      for (let i = 1; i < 2000; i++) {
        const loss = step(p, m, v, foldIn(keys[7]!, i));
        if (i === 1) first = await loss.item();
        if (i === 1999) last = await loss.item();
        loss.dispose();
      }
      expect(memory()).toEqual(before);
      expect(cpu.memoryStats().allocations).toBe(pool.allocations);
      expect(last).toBeLessThan(first);
      for (const t of [...Object.values(p), ...Object.values(m), ...Object.values(v)]) t.dispose();
    }
    expect(jitted.traceCount).toBe(1);
    jitted.clearCache();
  });
});

describe('errors', () => {
  it('reading a value while tracing says why it cannot', async () => {
    const f = jit((x: Tensor) => tensor([x.dataSync()[0]!]));
    expect(() => f(tensor([1]))).toThrow(/jit: the values of a float32 \[1\] tensor are not known while its function is traced/);
  });

  it('a random draw without a key is refused', () => {
    const f = jit((x: Tensor) => x.add(randn([2])));
    expect(() => f(tensor([1, 2]))).toThrow(/jit: a random draw without a key inside a traced function/);
  });

  it('an async function, an unknown option and a bad donation are refused', () => {
    expect(() => jit(async (x: Tensor) => x)(tensor([1]))).toThrow('jit: the function returned a Promise');
    expect(() => jit((x: Tensor) => x, { donat: [0] } as never)).toThrow("jit: unknown option 'donat' (did you mean 'donate'?)");
    expect(() => jit((x: Tensor) => x, { donate: ['nope'] })(tensor([1]))).toThrow("jit: donate names 'nope', which no plain-object argument has as a key");
  });

  it('static and donate must be lists: one index or key is refused, naming the option', () => {
    // static: 1 failed as 'number 1 is not iterable'; donate: 'params' iterated as its letters
    // and then failed at the call as 'donate.filter is not a function'.
    expect(() => jit((x: Tensor) => x, { static: 1 } as never)).toThrow(/^jit: static must be an array of argument indices \(e\.g\. \[1\]\), got 1$/);
    expect(() => jit((x: Tensor) => x, { donate: 'params' } as never)).toThrow(/^jit: donate must be an array of argument indices or keys \(e\.g\. \[0\] or \['params'\]\), got "params"$/);
    expect(() => jit((x: Tensor) => x, { donate: 0 } as never)).toThrow(/^jit: donate must be an array .*, got 0$/);
    expect(() => makeProgram((x: Tensor) => x, { static: 0 } as never)).toThrow(/^jit: static must be an array of argument indices/);
  });

  it('an argument both static and donated is refused (the donation was dropped silently)', () => {
    expect(() => jit((x: Tensor, n: number) => x.mul(n), { static: [1], donate: [1] })).toThrow(/^jit: argument 1 is listed in both static and donate; a static argument .* cannot be donated$/);
    expect(() => jit((x: Tensor, n: number) => x.mul(n), { static: [1], donate: [0] })).not.toThrow();
  });

  it('a static index past the arguments of a call is refused, as donate\'s is (it was ignored silently)', async () => {
    // static: [2] meant [1]: the number became a constant of the program, and no error said so.
    const f = jit((x: Tensor, k: number) => x.mul(k), { static: [2] });
    expect(() => f(tensor([1, 2]), 3)).toThrow(/^jit: static names argument 2, but the function was called with 2$/);
    expect(() => makeProgram((x: Tensor) => x, { static: [1] })(tensor([1]))).toThrow(/^jit: static names argument 1, but the function was called with 1$/);
    expect(Array.from(await jit((x: Tensor, k: number) => x.mul(k), { static: [1] })(tensor([1, 2]), 3).data())).toEqual([3, 6]);
  });
});

describe('program tracing: devices, captured tensors, state made while tracing, aliasing and constant keys', () => {
  it('arguments on two devices are refused, naming both devices, even where no op meets them', () => {
    // A second CPU device stands in for a GPU (as in errors.test.ts).
    if (!listDevices().includes('cpu-other')) registerBackend(new CpuBackend('cpu-other'));
    const a = tensor([1, 2]);
    const b = tensor([3, 4], { device: 'cpu-other' });
    const message = "jit: argument tensor 1 is on device 'cpu-other' but the traced function already works on 'cpu'; one compiled function runs on one device";
    expect(messageOf(() => jit((x: Tensor, y: Tensor) => [x.add(1), y.add(1)])(a, b))).toBe(message);
  });

  it('a function of keys only keeps its own copy of the first tensor it makes, though tidy frees the original', async () => {
    // The constant is the first tensor made after the trace began (no argument tracer before it).
    const f = jit((k: RandomKey) => tidy(() => tensor([1, 2, 3]).add(randn([3], { key: k }).mul(0))));
    expect(await values(f(randomKey(1)))).toEqual([1, 2, 3]);
    expect(await values(f(randomKey(2)))).toEqual([1, 2, 3]);
  });

  it('state made while tracing, read and then assigned, is the tensor the program updates (no copy of it)', async () => {
    let state: Tensor | null = null;
    const f = jit((x: Tensor) => {
      state = tensor([0, 0]);
      const next = state.add(x);
      state.assign(next);
      return next.sum();
    });
    expect(await values(f(tensor([1, 2])))).toEqual([3]);
    expect(await values(state!)).toEqual([1, 2]);
    expect(await values(f(tensor([1, 2])))).toEqual([6]);
    expect(await values(state!)).toEqual([2, 4]);
  });

  it('an output or update that is an input value is a copy of it in the program (stopGradient), never the input itself', () => {
    const a = tensor([1, 2]);
    const b = tensor([3, 4]);
    expect(makeProgram((x: Tensor) => x)(a).toString()).toBe(['{ lambda a:f32[2] .', '  let b:f32[2] = stopGradient a', '  in ( b ) }'].join('\n'));
    const assigned = makeProgram((x: Tensor, y: Tensor) => {
      x.assign(y);
      return x.sum();
    })(a, b);
    expect(assigned.toString()).toBe(
      ['{ lambda a:f32[2] b:f32[2] .', '  let c:f32[] = sum[axes=[0]] b', '      d:f32[2] = stopGradient b', '  in ( c )', '  updates a <- d }'].join('\n'),
    );
  });

  it('a draw with a constant key (not the default stream) is allowed, and equals eager mode', async () => {
    const draw = (x: Tensor) => x.add(randn([3], { key: randomKey(3) }));
    const x = tensor([1, 2, 3]);
    expect(await values(jit(draw)(x))).toEqual(await values(draw(x)));
  });
});

describe('jit signatures: non-tensor leaves and static values', () => {
  it('a string or boolean leaf is part of the signature: another value is another program', async () => {
    const x = tensor([1, 2]);
    const byName = jit((t: Tensor, op: string) => (op === 'double' ? t.mul(2) : t.mul(3)));
    expect(await values(byName(x, 'double'))).toEqual([2, 4]);
    expect(await values(byName(x, 'triple'))).toEqual([3, 6]);
    expect(byName.traceCount).toBe(2);
    const byFlag = jit((t: Tensor, negate: boolean) => (negate ? t.neg() : t.mul(1)), { static: [1] });
    expect(await values(byFlag(x, true))).toEqual([-1, -2]);
    expect(await values(byFlag(x, false))).toEqual([1, 2]);
    expect(byFlag.traceCount).toBe(2);
  });

  it('a static plain object is keyed by its key names too, and a typed array by its type', async () => {
    const x = tensor([1, 2]);
    const f = jit((t: Tensor, o: { a?: number; b?: number }) => (o.a !== undefined ? t.mul(o.a) : t.add(o.b!)), { static: [1] });
    expect(await values(f(x, { a: 3 }))).toEqual([3, 6]);
    expect(await values(f(x, { b: 3 }))).toEqual([4, 5]);
    expect(f.traceCount).toBe(2);
    // The same numbers as float32 and as int32: tensor(b) has b's dtype, so two programs.
    const g = jit((t: Tensor, b: Float32Array | Int32Array) => [t.mul(2), tensor(b)], { static: [1] });
    expect(g(x, new Float32Array([1, 2]))[1]!.dtype).toBe('float32');
    expect(g(x, new Int32Array([1, 2]))[1]!.dtype).toBe('int32');
    expect(g.traceCount).toBe(2);
  });

  it('a static typed array holding −0 is another value than one holding 0, as a static number is', async () => {
    // String(−0) is "0": the [−0] call replayed the program built for [0], giving +∞ for −∞.
    const f = jit((x: Tensor, b: Float32Array) => x.div(tensor(b)), { static: [1] });
    const x = tensor([1]);
    expect(await values(f(x, new Float32Array([0])))).toEqual([Infinity]);
    expect(await values(f(x, new Float32Array([-0])))).toEqual([-Infinity]);
    expect(f.traceCount).toBe(2);
  });

  it('a tensor on another device is another program, whose results are on that device', async () => {
    if (!listDevices().includes('cpu-other')) registerBackend(new CpuBackend('cpu-other'));
    const f = jit((t: Tensor) => t.mul(2));
    expect(f(tensor([1, 2])).device).toBe('cpu');
    const there = f(tensor([3, 4], { device: 'cpu-other' }));
    expect(there.device).toBe('cpu-other');
    expect(await values(there)).toEqual([6, 8]);
    expect(f.traceCount).toBe(2);
  });

  it('a device registered anew under the same name gets a program of its own, the old one freed', async () => {
    registerBackend(new CpuBackend('cpu-registered-twice'));
    const f = jit((t: Tensor) => t.add(1));
    expect(await values(f(tensor([1, 2], { device: 'cpu-registered-twice' })))).toEqual([2, 3]);
    registerBackend(new CpuBackend('cpu-registered-twice'));
    expect(await values(f(tensor([5, 6], { device: 'cpu-registered-twice' })))).toEqual([6, 7]);
    expect(f.traceCount).toBe(2);
    expect(f.cacheSize).toBe(1);
  });
});

describe('errors: arguments, static and donated indices', () => {
  it('a class instance holding a tensor among other fields is refused', () => {
    class Layer {
      constructor(public w: Tensor, public scale: number) {}
    }
    expect(() => jit((l: Layer, v: Tensor) => v.mul(l.w))(new Layer(tensor([1, 1]), 2), tensor([1, 2]))).toThrow(/^jit argument 0 is a Layer holding tensors/);
  });

  it('a static index that is not an integer is refused', () => {
    expect(() => jit((x: Tensor) => x, { static: [1.5] })).toThrow(/^jit: static must list argument indices \(non-negative integers\), got \[1\.5\]$/);
  });

  it('a disposed argument, or a disposed tensor the function closes over, is refused naming which', () => {
    const f = jit((a: Tensor, b: Tensor) => a.add(b));
    const x = tensor([1, 2]);
    const y = tensor([1, 2]);
    f(x, y);
    y.dispose();
    expect(messageOf(() => f(x, y))).toMatch(/^jit argument 1: tensor \[2\] float32 was disposed/);
    const w = tensor([1, 2]);
    const g = jit((a: Tensor) => a.mul(w));
    g(x);
    w.dispose();
    expect(messageOf(() => g(x))).toMatch(/^jit \(a tensor the function closes over\): tensor \[2\] float32 was disposed/);
  });

  it('a donated index past the arguments, or a donated key two arguments have, is refused', () => {
    expect(() => jit((a: Tensor) => a.mul(2), { donate: [1] })(tensor([1]))).toThrow(/^jit: donate names argument 1, but the function was called with 1$/);
    const f = jit((p: { w: Tensor }, q: { w: Tensor }) => p.w.add(q.w), { donate: ['w'] });
    expect(() => f({ w: tensor([1]) }, { w: tensor([2]) })).toThrow("jit: donate names 'w', which more than one plain-object argument has as a key");
  });

  it('a donated key is looked up in the arguments that are not static: a static config sharing its name neither blocks nor takes it', async () => {
    // The static { params: 2 } counted as a second owner: 'more than one plain-object argument'.
    const f = jit((args: { params: Tensor }, cfg: { params: number }) => args.params.mul(cfg.params), { static: [1], donate: ['params'] });
    const p = tensor([1, 2]);
    expect(await values(f({ params: p }, { params: 2 }))).toEqual([2, 4]);
    expect(p.isDisposed).toBe(true);
    // With the key in the static argument only, no argument is donated: said, not dropped.
    const g = jit((t: Tensor, cfg: { params: number }) => t.mul(cfg.params), { static: [1], donate: ['params'] });
    expect(() => g(tensor([1]), { params: 2 })).toThrow("jit: donate names 'params', which no plain-object argument has as a key");
  });

  it('lower() under a transformation is refused', () => {
    const f = jit((t: Tensor) => t.mul(2));
    expect(() => grad((t: Tensor) => f.lower(t).program && t.sum())(tensor([1, 2]))).toThrow('jit: lower() needs concrete arguments; call it outside grad, jvp and jit');
  });
});

describe('donation: which tensors a call consumes', () => {
  it('a tensor passed twice, donated in one place only, is consumed', async () => {
    const f = jit((a: Tensor, b: Tensor) => a.add(b), { donate: [0] });
    const x = tensor([1, 2]);
    expect(await values(f(x, x))).toEqual([2, 4]);
    expect(x.isDisposed).toBe(true);
    // Reading it says why it is gone.
    expect(messageOf(() => x.dataSync())).toMatch(/donated to a call of a jitted function, which consumed it/);
  });

  it('only the donated keys of an argument, and every tensor of a donated plain object, are consumed', async () => {
    const f = jit((args: { params: Tensor; grads: Tensor }) => args.params.sub(args.grads), { donate: ['grads'] });
    const params = tensor([5, 5]);
    const grads = tensor([1, 2]);
    expect(await values(f({ params, grads }))).toEqual([4, 3]);
    expect(grads.isDisposed).toBe(true);
    expect(params.isDisposed).toBe(false);
    const g = jit((args: { a: Tensor; b: Tensor }) => args.a.add(args.b), { donate: [0] });
    const a = tensor([1]);
    const b = tensor([2]);
    expect(await values(g({ a, b }))).toEqual([3]);
    expect([a.isDisposed, b.isDisposed]).toEqual([true, true]);
  });

  it('a closed-over tensor is never consumed by a donation, nor a static argument counted among the leaves', async () => {
    const w = tensor([10, 20]);
    const f = jit((a: Tensor) => a.add(w), { donate: [0] });
    const x = tensor([1, 2]);
    expect(await values(f(x))).toEqual([11, 22]);
    expect(x.isDisposed).toBe(true);
    expect(w.isDisposed).toBe(false);
    const s = tensor([3, 3]);
    const g = jit((scale: Tensor, a: Tensor) => a.mul(scale), { static: [0], donate: [1] });
    const y = tensor([1, 2]);
    expect(await values(g(s, y))).toEqual([3, 6]);
    expect(y.isDisposed).toBe(true);
    expect(s.isDisposed).toBe(false);
  });
});

describe('programs that read a closed-over tensor', () => {
  it('a call that also passes the closed-over tensor, among more arguments, gets its own program', async () => {
    // Two arguments and one tensor read by reference: the else branch of serves() (more
    // arguments than closed-over tensors). Eager reads b after the assign, so b is w + 1.
    const w = tensor([1, 2]);
    const f = jit((a: Tensor, b: Tensor) => {
      w.assign(w.add(1));
      return a.add(b);
    });
    const x = tensor([0, 0]);
    const y = tensor([5, 5]);
    expect(await values(f(x, y))).toEqual([5, 5]);
    expect(await values(f(x, w))).toEqual([3, 4]);
    expect(f.traceCount).toBe(2);
  });

  it('the least recently used program of a signature is the one freed (the variants of one signature too)', () => {
    const w = tensor([1]);
    const f = jit((a: Tensor) => a.add(w));
    const p = tensor([5]);
    // Two programs of one signature: p read as an argument, w read through its argument.
    f(p);
    f(w);
    f(p); // p's program is the most recently used again
    // 63 more signatures: 65 programs, so the least recently used one (w's) is freed.
    quietly(() => {
      for (let n = 2; n <= 64; n++) f(zeros([n])).dispose();
    });
    expect(f.cacheSize).toBe(64);
    const traced = f.traceCount;
    f(p);
    expect(f.traceCount).toBe(traced);
    f(w);
    expect(f.traceCount).toBe(traced + 1);
    f.clearCache();
  });
});

describe('memory: evicted, traced-only and uncompilable programs', () => {
  it('a program freed as least recently used frees its constants and temps', () => {
    const x = tensor([1, 2, 3]);
    const before = memory();
    const f = jit((t: Tensor, scale: number) => t.add(tensor([1, 2, 3])).mul(scale).exp().sum());
    quietly(() => {
      for (let s = 1; s <= 70; s++) f(x, s).dispose();
    });
    expect(f.cacheSize).toBe(64);
    f.clearCache();
    expect(memory()).toEqual(before);
  });

  it('makeProgram frees the constants its trace made', () => {
    const x = tensor([1, 2, 3]);
    const before = memory();
    const program = makeProgram((t: Tensor) => t.add(tensor([1, 2, 3])))(x);
    expect(program.equations.length).toBeGreaterThan(0);
    expect(memory()).toEqual(before);
  });

  it('a program the backend cannot compile leaves no constants behind', () => {
    class Refusing extends CpuBackend {
      override compile(): never {
        throw new Error('no compiler here');
      }
    }
    registerBackend(new Refusing('cpu-refusing'));
    const x = tensor([1, 2, 3], { device: 'cpu-refusing' });
    const before = memory();
    const f = jit((t: Tensor) => t.add(tensor([1, 2, 3], { device: 'cpu-refusing' })));
    expect(() => f(x)).toThrow('no compiler here');
    expect(memory()).toEqual(before);
  });
});

describe('printKernels', () => {
  it('true prints each compiled program with console.log', () => {
    const printed: string[] = [];
    const log = console.log;
    console.log = (text: string) => void printed.push(text);
    try {
      jit((t: Tensor) => t.mul(2), { printKernels: true })(tensor([1, 2]));
    } finally {
      console.log = log;
    }
    expect(printed.length).toBe(1);
    expect(printed[0]).toMatch(/^program \(\d+ equations, 1 kernels\):/);
  });
});
