// vmap: every primitive's batching rule against a loop over the batch (float64 on the CPU), for
// every way its inputs can be batched (each batched at the front, at the back, or not at all);
// composition with grad, jvp, jit and custom rules in both orders; the uses it was made for
// (per-example gradients, jacobian, the ISM trace); and its errors.
//
// Tolerances: a batched rule performs the same float64 operations on the same values as the
// loop, in the same order, so results are equal exactly, except for products, whose batched
// kernel may block the k-sum differently: those are held to the bound of a k-term float64 dot
// product, k·2⁻⁵³·Σ|aᵢ||bᵢ| (Higham, Accuracy and Stability, §3.1).

import { describe, expect, it } from 'vitest';
import { customJvp, customVjp, grad, jacobian, jit, jvp, vmap } from '@scorch/autograd';
import {
  type Primitive, type PrimitiveParams, type RandomKey, type Tensor, apply, clamp, concat, definePrimitive, exp, flip, gelu, matmul, memory, randn,
  permute, randomKey, split, splitKey, stack, sum, tensor, tidy, tile, cumsum, zeros,
} from '@scorch/tensor';
import { batchRules } from '../src/vmap.js';
import { messageOf } from './helpers.js';

const f64 = { dtype: 'float64' as const };
const B = 3;
const read = async (t: Tensor) => Array.from(await t.data());

/** Per-example inputs of one primitive: their shapes, how to make valid values, and the params. */
interface Case {
  name: string;
  prim: Primitive;
  inputs: { shape: number[]; kind?: 'positive' | 'bool' | { indices: number } }[];
  params: unknown;
}

const unary = (prim: Primitive, kind?: 'positive'): Case => ({ name: prim, prim, inputs: [{ shape: [2, 3], kind }], params: {} });
const binary = (prim: Primitive, kind?: 'positive'): Case => ({ name: prim, prim, inputs: [{ shape: [2, 3], kind }, { shape: [2, 3] }], params: {} });

// Defined primitives reach vmap through 'custom': an elementwise one is batched like a built-in
// elementwise op, a shader one (here: each row's sum times the first input element) by the
// default loop over examples.
definePrimitive({
  name: 'vmapScaledExp', kind: 'elementwise', inputs: ['a', 'b'], cpu: (a, b) => a * Math.exp(b), wgsl: { expression: 'a * exp(b)' },
  jvp: () => null, vjp: () => [null, null],
});
definePrimitive({
  name: 'vmapRowSums', kind: 'shader', inputs: ['x'],
  infer: ([x]) => ({ shape: [x!.shape[0]!], dtype: x!.dtype }),
  cpu: ([x], out) => {
    const [m, n] = x!.shape as [number, number];
    for (let i = 0; i < m; i++) {
      let acc = 0;
      for (let j = 0; j < n; j++) acc += x!.data[i * n + j]!;
      out.data[i] = acc * x!.data[0]!;
    }
  },
  wgsl: { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] },
  jvp: () => null, vjp: () => [null],
});
definePrimitive({
  name: 'vmapCountTrue', kind: 'shader', inputs: ['x'],
  infer: ([x]) => ({ shape: x!.shape.slice(0, -1), dtype: 'int32' }),
  cpu: ([x], out) => {
    const n = x!.shape.at(-1)!;
    for (let i = 0; i < out.data.length; i++) {
      let c = 0;
      for (let j = 0; j < n; j++) c += x!.data[i * n + j]! ? 1 : 0;
      out.data[i] = c;
    }
  },
  wgsl: { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] },
  jvp: () => null, vjp: () => [null],
});

const CASES: Case[] = [
  { name: 'custom elementwise (two inputs)', prim: 'custom', inputs: [{ shape: [2, 3] }, { shape: [2, 3] }], params: { name: 'vmapScaledExp' } },
  { name: 'custom shader (default loop)', prim: 'custom', inputs: [{ shape: [2, 3] }], params: { name: 'vmapRowSums' } },
  ...(['neg', 'exp', 'sin', 'cos', 'tanh', 'expm1', 'sigmoid', 'reciprocal', 'floor', 'ceil', 'round', 'sign', 'erf'] as const).map((p) => unary(p)),
  ...(['log', 'sqrt', 'log1p'] as const).map((p) => unary(p, 'positive')),
  ...(['add', 'sub', 'mul', 'div', 'max', 'less', 'lessEqual', 'equal', 'notEqual'] as const).map((p) => binary(p)),
  binary('pow', 'positive'),
  { name: 'where', prim: 'where', inputs: [{ shape: [2, 3], kind: 'bool' }, { shape: [2, 3] }, { shape: [2, 3] }], params: {} },
  { name: 'cast to int32', prim: 'cast', inputs: [{ shape: [4] }], params: { dtype: 'int32' } },
  { name: 'stopGradient', prim: 'stopGradient', inputs: [{ shape: [4] }], params: {} },
  { name: 'sum over axis 1', prim: 'sum', inputs: [{ shape: [2, 3, 2] }], params: { axes: [1] } },
  { name: 'sum over all', prim: 'sum', inputs: [{ shape: [2, 3] }], params: { axes: [0, 1] } },
  { name: 'reduceMax over axes 0, 2', prim: 'reduceMax', inputs: [{ shape: [2, 3, 2] }], params: { axes: [0, 2] } },
  { name: 'argmax over axis 1', prim: 'argmax', inputs: [{ shape: [2, 4, 3] }], params: { axis: 1 } },
  { name: 'argmin over axis 0', prim: 'argmin', inputs: [{ shape: [4, 3] }], params: { axis: 0 } },
  { name: 'cumsum over axis 1', prim: 'cumsum', inputs: [{ shape: [2, 4, 3] }], params: { axis: 1, reverse: false } },
  { name: 'cumprod over axis 0, reverse', prim: 'cumprod', inputs: [{ shape: [4, 3] }], params: { axis: 0, reverse: true } },
  { name: 'reshape', prim: 'reshape', inputs: [{ shape: [2, 3] }], params: { shape: [3, 2] } },
  { name: 'expand', prim: 'expand', inputs: [{ shape: [1, 3] }], params: { shape: [4, 3] } },
  { name: 'permute', prim: 'permute', inputs: [{ shape: [2, 3, 4] }], params: { perm: [2, 0, 1] } },
  { name: 'slice', prim: 'slice', inputs: [{ shape: [4, 5] }], params: { starts: [1, 0], ends: [3, 4] } },
  { name: 'pad', prim: 'pad', inputs: [{ shape: [2, 3] }], params: { before: [1, 0], after: [0, 2] } },
  { name: 'concat', prim: 'concat', inputs: [{ shape: [2, 3] }, { shape: [1, 3] }], params: { axis: 0 } },
  { name: 'gather axis 0', prim: 'gather', inputs: [{ shape: [5, 3] }, { shape: [4], kind: { indices: 5 } }], params: { axis: 0 } },
  { name: 'gather axis 1', prim: 'gather', inputs: [{ shape: [2, 5, 3] }, { shape: [4], kind: { indices: 5 } }], params: { axis: 1 } },
  { name: 'scatterAdd axis 0', prim: 'scatterAdd', inputs: [{ shape: [4, 3] }, { shape: [4], kind: { indices: 5 } }], params: { axis: 0, size: 5 } },
  { name: 'scatterAdd axis 1', prim: 'scatterAdd', inputs: [{ shape: [2, 4] }, { shape: [4], kind: { indices: 3 } }], params: { axis: 1, size: 3 } },
  { name: 'matmul', prim: 'matmul', inputs: [{ shape: [2, 3] }, { shape: [3, 4] }], params: {} },
  { name: 'batched matmul', prim: 'matmul', inputs: [{ shape: [2, 2, 3] }, { shape: [2, 3, 4] }], params: {} },
];

/** Batched values of one input: B examples stacked at `axis`. */
function make(input: Case['inputs'][number], seed: number, batch: number | null): Tensor {
  const shape = batch === null ? input.shape : [batch, ...input.shape];
  const x = randn(shape, { key: randomKey(seed), ...f64 });
  const kind = input.kind;
  if (kind === 'positive') return x.abs().add(0.5);
  if (kind === 'bool') return x.greater(0);
  if (kind && typeof kind === 'object') {
    // int32 indices in [0, extent), different per example.
    const data = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i * 7 + seed) % kind.indices);
    return tensor(data, { dtype: 'int32', shape });
  }
  return x;
}

/** Moves axis 0 of a batched value to `axis`. */
function placeBatch(x: Tensor, axis: number): Tensor {
  if (axis === 0) return x;
  const perm = [...Array(x.rank).keys()].slice(1);
  perm.splice(axis, 0, 0);
  return x.permute(perm);
}

/** Example b of a value batched at `axis`. */
function example(x: Tensor, axis: number, b: number): Tensor {
  const starts = x.shape.map((_, i) => (i === axis ? b : 0));
  const ends = x.shape.map((d, i) => (i === axis ? b + 1 : d));
  return apply('slice', [x], { starts, ends }).squeeze(axis);
}

describe('every primitive\'s batching rule equals a loop over the batch', () => {
  it('covers every primitive with inputs (random and full have none)', () => {
    const tested = new Set(CASES.map((c) => c.prim));
    for (const p of Object.keys(batchRules) as Primitive[]) {
      if (p === 'random' || p === 'full') continue;
      expect(tested.has(p), p).toBe(true);
    }
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const n = c.inputs.length;
      // Each input: batched at the front (0), at the back (-1), or not batched (null); at least one batched.
      const choices: (number | null)[][] = [[]];
      for (let i = 0; i < n; i++) {
        const next: (number | null)[][] = [];
        for (const prefix of choices) for (const a of [0, -1, null]) next.push([...prefix, a]);
        choices.splice(0, choices.length, ...next);
      }
      for (const axes of choices.filter((a) => a.some((x) => x !== null))) {
        const args = c.inputs.map((input, i) => {
          const axis = axes[i]!;
          if (axis === null) return make(input, 10 + i, null);
          const batched = make(input, 20 + i, B);
          return placeBatch(batched, axis === -1 ? input.shape.length : 0);
        });
        const f = (...xs: Tensor[]) => apply(c.prim, xs, c.params as PrimitiveParams[Primitive]);
        const got = vmap(f, { inAxes: axes })(...args) as Tensor;
        const loop = stack(
          Array.from({ length: B }, (_, b) =>
            f(...args.map((x, i) => (axes[i] === null ? x : example(x, axes[i] === -1 ? x.rank - 1 : 0, b)))),
          ),
          0,
        );
        expect(got.shape, `${c.name} ${JSON.stringify(axes)}`).toEqual(loop.shape);
        expect(got.dtype).toBe(loop.dtype);
        const [g, l] = [await read(got), await read(loop)];
        if (c.prim === 'matmul') {
          // |batched − loop| ≤ k·2⁻⁵³·Σ|a||b| per element: the loop's product of the absolute values gives the sum.
          const k = c.inputs[0]!.shape.at(-1)!;
          const magnitude = await read(vmap((a: Tensor, b: Tensor) => f(a.abs(), b.abs()), { inAxes: axes })(args[0]!, args[1]!) as Tensor);
          g.forEach((v, i) => expect(Math.abs(v - l[i]!), `${c.name} ${JSON.stringify(axes)} at ${i}`).toBeLessThanOrEqual(k * 2 ** -53 * magnitude[i]!));
        } else {
          expect(g, `${c.name} ${JSON.stringify(axes)}`).toEqual(l);
        }
      }
    });
  }
});

describe('vmap composes', () => {
  const w = randn([3, 2], { key: randomKey(1), ...f64 });
  const xs = randn([5, 3], { key: randomKey(2), ...f64 });
  const loss = (weights: Tensor, x: Tensor) => sum(exp(matmul(x.reshape([1, 3]), weights).mul(0.5)));

  it('vmap(grad(f)) gives per-example gradients equal to a loop', async () => {
    const perExample = vmap(grad(loss), { inAxes: [null, 0] })(w, xs) as Tensor;
    expect(perExample.shape).toEqual([5, 3, 2]);
    const loop = stack(Array.from({ length: 5 }, (_, b) => grad(loss)(w, example(xs, 0, b)) as Tensor), 0);
    const [g, l] = [await read(perExample), await read(loop)];
    g.forEach((v, i) => expect(v).toBeCloseTo(l[i]!, 14));
  });

  it('composite ops batch through their primitives: gelu, clamp, split, flip, tile (exact), and grad of them', async () => {
    const f = (x: Tensor) => {
      const [a, b] = split(x, [1, 2]);
      return concat([tile(flip(gelu(a!)), [2]), clamp(b!, -0.5, 0.5).mul(x.cumprod(0).sum())], 0);
    };
    const batched = vmap(f)(xs) as Tensor;
    const loop = stack(Array.from({ length: 5 }, (_, b) => f(example(xs, 0, b))), 0);
    expect(await read(batched)).toEqual(await read(loop));
    const g = vmap(grad((x: Tensor) => f(x).sum()))(xs) as Tensor;
    const gLoop = stack(Array.from({ length: 5 }, (_, b) => grad((x: Tensor) => f(x).sum())(example(xs, 0, b)) as Tensor), 0);
    expect(await read(g)).toEqual(await read(gLoop));
  });

  it('grad(vmap(f)) equals the gradient of the summed loop', async () => {
    const total = (weights: Tensor) => sum(vmap((x: Tensor) => loss(weights, x))(xs) as Tensor);
    const g = await read(grad(total)(w) as Tensor);
    const ref = await read(grad((weights: Tensor) => sum(stack(Array.from({ length: 5 }, (_, b) => loss(weights, example(xs, 0, b))), 0)))(w) as Tensor);
    g.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 14));
  });

  it('vmap(jvp) and jvp(vmap) agree with the loop', async () => {
    const f = (x: Tensor) => x.sin().mul(x);
    const ts = randn([5, 3], { key: randomKey(3), ...f64 });
    const a = vmap((x: Tensor, t: Tensor) => jvp(f, [x], [t])[1])(xs, ts) as Tensor;
    const [, b] = jvp((x: Tensor) => vmap(f)(x) as Tensor, [xs], [ts]);
    const loop = stack(Array.from({ length: 5 }, (_, i) => jvp(f, [example(xs, 0, i)], [example(ts, 0, i)])[1]), 0);
    expect(await read(a)).toEqual(await read(loop));
    expect(await read(b)).toEqual(await read(loop));
  });

  it('jit(vmap(f)) and vmap(jit(f)) equal vmap(f)', async () => {
    const f = (x: Tensor) => sum(matmul(x.reshape([1, 3]), w).tanh());
    const plain = await read(vmap(f)(xs) as Tensor);
    expect(await read(jit(vmap(f))(xs) as Tensor)).toEqual(plain);
    expect(await read(vmap(jit(f))(xs) as Tensor)).toEqual(plain);
  });

  it('vmap of vmap maps over two axes', async () => {
    const grid = randn([2, 4, 3], { key: randomKey(4), ...f64 });
    const f = (x: Tensor) => x.mul(x).sum();
    const got = vmap(vmap(f))(grid) as Tensor;
    expect(got.shape).toEqual([2, 4]);
    expect(await read(got)).toEqual(await read(grid.mul(grid).sum([2])));
    // Inner over axis 1 of the outer example, outer over axis 1 of the whole: [4, 2].
    const swapped = vmap(vmap(f, { inAxes: 0 }), { inAxes: 1 })(grid) as Tensor;
    expect(swapped.shape).toEqual([4, 2]);
    expect(await read(swapped)).toEqual(await read(grid.mul(grid).sum([2]).transpose()));
  });

  it('custom rules survive vmap: grad outside uses the rule, batched', async () => {
    // d sin(x) is cos(x); the rule says 2.
    const wrongSin = customJvp((y: Tensor) => y.sin(), ({ tangents: [dt] }) => dt!.mul(2));
    const g = grad((x: Tensor) => sum(vmap(wrongSin)(x) as Tensor))(xs) as Tensor;
    expect(await read(g)).toEqual(Array(15).fill(2));
    const clip = customVjp((y: Tensor) => y, { backward: (_s, ct) => [ct.maximum(-0.5).minimum(0.5)] });
    const cts = randn([5, 3], { key: randomKey(5), ...f64 });
    const gv = vmap((x: Tensor, c: Tensor) => grad((y: Tensor) => sum(clip(y).mul(c)))(x))(xs, cts) as Tensor;
    expect(await read(gv)).toEqual((await read(cts)).map((v) => Math.min(0.5, Math.max(-0.5, v))));
    // vmap inside grad, with a shared (unbatched) argument: its cotangent is summed over the batch.
    const scale = tensor([2], f64);
    const scaled = customVjp((s: Tensor, y: Tensor) => y.mul(s), { backward: ([s, y]: Tensor[], ct) => [sum(ct.mul(y!)).reshape([1]).mul(10), ct.mul(s!)] });
    const gs = grad((s: Tensor) => sum(vmap((y: Tensor) => scaled(s, y))(xs) as Tensor))(scale) as Tensor;
    expect((await read(gs))[0]).toBeCloseTo(10 * (await read(sum(xs)))[0]!, 12);
  });
});

describe('vmap where it is the natural tool', () => {
  it('jacobian by vmap over basis vectors equals the loop of jvps', async () => {
    const f = (x: Tensor) => x.sin().mul(x.sum());
    const x = randn([4], { key: randomKey(6), ...f64 });
    for (const mode of ['fwd', 'rev'] as const) {
      const j = await read(jacobian(f, { mode })(x));
      const loop: number[] = [];
      const cols = Array.from({ length: 4 }, (_, k) => jvp(f, [x], [tensor(Array.from({ length: 4 }, (_, i) => (i === k ? 1 : 0)), f64)])[1]);
      const m = await read(stack(cols, 1));
      loop.push(...m);
      j.forEach((v, i) => expect(v).toBeCloseTo(loop[i]!, 14));
    }
  });
});

describe('vmap over a batch of size 0', () => {
  // Rules that fold the batch into an axis split it back as (B, n); n was the folded length
  // divided by B, 0/0 = NaN with B = 0: 'reshape: invalid shape [0,NaN]'.
  it('gathers and scatter-adds with batched indices give empty results of the right shape', async () => {
    const idx = tensor([], { shape: [0, 2], dtype: 'int32' });
    const x = tensor([], { shape: [0, 4], dtype: 'float64' });
    const select = (v: Tensor, i: Tensor) => v.indexSelect(0, i);
    expect(vmap(select)(x, idx).shape).toEqual([0, 2]);
    expect(vmap(select, { inAxes: [null, 0] })(tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64' }), idx).shape).toEqual([0, 2, 3]);
    const g = vmap((v: Tensor, i: Tensor) => grad((y: Tensor) => sum(y.indexSelect(0, i)))(v) as Tensor)(x, idx);
    expect(g.shape).toEqual([0, 4]);
    expect(await g.toArray()).toEqual([]);
  });

  it('a shader defined primitive without a batching rule gives an empty result of the per-example shape and dtype', async () => {
    // The default rule runs one example at a time; with none to run it used to concat nothing.
    const rowSums = (t: Tensor) => apply('custom', [t], { name: 'vmapRowSums' });
    const x = tensor([], { shape: [0, 2, 3], dtype: 'float64' });
    for (const y of [vmap(rowSums)(x) as Tensor, jit(vmap(rowSums))(x) as Tensor, vmap(rowSums, { inAxes: 2 })(tensor([], { shape: [2, 3, 0], dtype: 'float64' })) as Tensor]) {
      expect(y.shape).toEqual([0, 2]);
      expect(y.dtype).toBe('float64');
      expect(await y.toArray()).toEqual([]);
    }
    // infer's dtype, not the operand's: a count of true values per row, bool in and int32 out.
    const y = vmap((t: Tensor) => apply('custom', [t], { name: 'vmapCountTrue' }))(tensor([], { shape: [0, 2, 3], dtype: 'bool' })) as Tensor;
    expect([y.shape, y.dtype]).toEqual([[0, 2], 'int32']);
    expect(await (vmap((t: Tensor) => apply('custom', [t], { name: 'vmapCountTrue' }))(tensor([[[true, false, true]], [[false, false, true]]], { dtype: 'bool' })) as Tensor).toArray()).toEqual([[2], [1]]);
  });
});

describe('vmap and random keys', () => {
  it('a key argument is never batched, even under the default inAxes: every example sees the same draw', async () => {
    const xs = randn([3, 2], { key: randomKey(9), ...f64 });
    const key = randomKey(10);
    const out = await read(vmap((x: Tensor, k: RandomKey) => x.add(randn([2], { key: k, ...f64 })))(xs, key) as Tensor);
    const noise = await read(randn([2], { key, ...f64 }));
    const rows = await read(xs);
    // x + z in float64, the same z on every row: the sum is one rounding, exact to compare.
    rows.forEach((v, i) => expect(out[i]).toBe(v + noise[i % 2]!));
  });

  it('mapping over keys alone (JAX\'s vmap of a draw over split keys) is an error that says keys are not mapped, not that nothing was asked', () => {
    const draw = (k: RandomKey) => randn([2], { key: k, ...f64 });
    const keys = splitKey(randomKey(11), 3);
    const message = /vmap: no argument is batched: inAxes gives a batch axis only to random keys \(3\), and keys are never mapped over .* draw the per-example noise outside/;
    // f takes one key; JAX's idiom passes the array (inside f it would be the whole array).
    const drawAny = draw as (k: unknown) => Tensor;
    expect(() => vmap(drawAny)(keys)).toThrow(message);
    expect(() => vmap(drawAny, { inAxes: [0] })(keys)).toThrow(message);
    expect(() => vmap(draw, { inAxes: 0 })(randomKey(12))).toThrow(/only to random keys \(1\)/);
    // Keys under null, or no key at all: the plain message.
    expect(() => vmap((k: RandomKey, x: Tensor) => x.add(draw(k)), { inAxes: [null, null] })(randomKey(12), tensor([1, 2], f64))).toThrow(
      'vmap: no argument is batched (every inAxes entry is null or applies to no tensor); there is nothing to map over',
    );
  });
});

describe('vmap specs as plain objects (a params record)', () => {
  it('inAxes { w: null, b: 0 } shares w and maps b, as a loop over the examples; outAxes by key too', async () => {
    const w = randn([3, 2], { key: randomKey(31), ...f64 });
    const b = randn([4, 2], { key: randomKey(32), ...f64 });
    const x = randn([4, 3], { key: randomKey(33), ...f64 });
    const f = (p: { w: Tensor; b: Tensor }, xi: Tensor) => ({ y: matmul(xi.reshape([1, 3]), p.w).reshape([2]).add(p.b), norm: sum(xi.mul(xi)) });
    const out = vmap(f, { inAxes: [{ w: null, b: 0 }, 0], outAxes: { y: 1, norm: 0 } })({ w, b }, x) as { y: Tensor; norm: Tensor };
    expect(out.y.shape).toEqual([2, 4]);
    expect(out.norm.shape).toEqual([4]);
    const [ys, norms] = [await out.y.data(), await out.norm.data()];
    for (let i = 0; i < 4; i++) {
      const one = f({ w, b: b.slice([i, 0], [1, 2]).reshape([2]) }, x.slice([i, 0], [1, 3]).reshape([3]));
      const [y1, n1] = [await one.y.data(), await one.norm.data()];
      for (let j = 0; j < 2; j++) expect(ys[j * 4 + i]).toBe(y1[j]);
      expect(norms[i]).toBe(n1[0]);
    }
  });

  it('names a key without a spec, a spec without a key, and an object spec for a tensor', () => {
    const w = randn([3], { key: randomKey(34), ...f64 });
    const x = randn([5, 3], { key: randomKey(35), ...f64 });
    const f = (p: { w: Tensor; b?: Tensor }, xi: Tensor) => xi.mul(p.w);
    expect(() => vmap(f, { inAxes: [{}, 0] })({ w }, x)).toThrow("vmap: inAxes[0] has no spec for 'w' (the value's keys: w)");
    expect(() => vmap(f, { inAxes: [{ w: null, c: 0 }, 0] })({ w }, x)).toThrow("vmap: inAxes[0] has specs for 'c', which the value lacks (the value's keys: w)");
    expect(() => vmap(f, { inAxes: [{ w: null }, { x: 0 }] })({ w }, x)).toThrow('vmap: inAxes[1] is an object of specs but the value it describes is a tensor');
    expect(() => vmap(f, { inAxes: [{ w: 'all' as never }, 0] })({ w }, x)).toThrow(/^vmap: inAxes\[0\]\.w must be a number, null, an array or a plain object of those, got string$/);
  });
});

describe('vmap errors', () => {
  const x = randn([3, 2], { key: randomKey(7), ...f64 });
  it('a non-tensor argument under a number inAxes is refused with the cure: inAxes null', () => {
    // The message said only 'input leaf 1 is batched (axis 0) but is number', though the user
    // had left inAxes at its default; JAX and torch.func refuse it too, saying to pass None.
    const scale = (a: Tensor, s: number) => a.mul(s);
    expect(() => vmap(scale)(x, 3 as never)).toThrow(
      /^vmap: input leaf 1 is batched \(axis 0 \(the default inAxes\)\) but is number, not a Tensor; only tensors are mapped over: give it inAxes null \(e\.g\. inAxes: \[0, null\]\)/,
    );
    expect(() => vmap(scale, { inAxes: 0 })(x, 3 as never)).toThrow(/^vmap: input leaf 1 is batched \(axis 0\) but is number, not a Tensor; only tensors/);
    expect(Array.from((vmap(scale, { inAxes: [0, null] })(x, 3 as never) as Tensor).dataSync())).toEqual(Array.from(x.mul(3).dataSync()));
  });
  it('an index out of range for its own example is refused, never read from or added into another example', () => {
    // The batch folds into the indexed axis (i + b·n): index 3 of example 0 read example 1's
    // first element and -1 of example 1 example 0's last, and scatterAdd (gather's vjp) added
    // into a neighbour, with no error where the same call without vmap throws.
    const rows = tensor([0, 1, 2, 10, 11, 12], { shape: [2, 3], ...f64 });
    const take = (a: Tensor, i: Tensor) => apply('gather', [a, i], { axis: 0 });
    const put = (u: Tensor, i: Tensor) => apply('scatterAdd', [u, i], { axis: 0, size: 3 });
    const updates = tensor([[5], [7]], f64);
    const valid = tensor([[2], [0]], { dtype: 'int32' });
    expect(Array.from((vmap(take)(rows, valid) as Tensor).dataSync())).toEqual([2, 10]);
    expect(Array.from((vmap(put)(updates, valid) as Tensor).dataSync())).toEqual([0, 0, 5, 7, 0, 0]);
    for (const bad of [[[3], [0]], [[0], [-1]]]) {
      const idx = tensor(bad, { dtype: 'int32' });
      expect(() => (vmap(take)(rows, idx) as Tensor).dataSync()).toThrow(/^gather: index -1 is out of range/);
      expect(() => (jit(vmap(take))(rows, idx) as Tensor).dataSync()).toThrow(/^gather: index -1 is out of range/);
      expect(() => (vmap(put)(updates, idx) as Tensor).dataSync()).toThrow(/^scatterAdd: index -1 is out of range/);
    }
  });
  it('names what is wrong', async () => {
    expect(() => vmap(42 as never)).toThrow(/vmap: expected a function, got number/);
    expect(() => vmap((a: Tensor) => a, { inAxis: 0 } as never)).toThrow("vmap: unknown option 'inAxis' (did you mean 'inAxes'?); valid options: inAxes, outAxes");
    expect(() => jacobian((a: Tensor) => a, { mod: 'fwd' } as never)).toThrow("jacobian: unknown option 'mod' (did you mean 'mode'?); valid options: mode");
    expect(() => jacobian((a: Tensor) => a, { mode: 'forward' } as never)).toThrow("jacobian: unknown mode \"forward\"; expected one of 'fwd', 'rev'");
    expect(() => vmap((a: Tensor) => a, { inAxes: null })(x)).toThrow(/no argument is batched/);
    expect(() => vmap((a: Tensor, b: Tensor) => a.add(b))(x, randn([4, 2], { key: randomKey(8), ...f64 }))).toThrow(
      /batch sizes differ: input leaf 0 \[3,2\] at axis 0 has 3 but input leaf 1 \[4,2\] has 4 at axis 0/,
    );
    expect(() => vmap((a: Tensor) => a, { inAxes: [0, 0] })(x)).toThrow(/inAxes has 2 entries but the function was called with 1 arguments/);
    expect(() => vmap((a: Tensor) => a, { inAxes: 2 })(x)).toThrow(/axis 2, outside \[-2, 1\]/);
    // A scalar has no axis: the range of valid axes would be the empty [0, -1].
    expect(() => vmap((a: Tensor, s: Tensor) => a.mul(s))(x, tensor(2, f64))).toThrow(
      'vmap: the batch axis of input leaf 1 ([]) is axis 0, but a scalar has no axis to map over (inAxes null shares it with every example)',
    );
    expect(() => vmap((a: Tensor) => a, { outAxes: null })(x)).toThrow(/output leaf 0 depends on the batch, but its outAxes entry is null/);
    expect(() => vmap((_a: Tensor) => 3)(x)).toThrow(/must return tensors .* output leaf 0 is number/);
    // data() inside vmap: its promise is refused (a per-example value has no values of its own),
    // and vmap refuses the promise as an output.
    let read: Promise<unknown> | undefined;
    expect(() => vmap((a: Tensor) => (read = a.data()))(x)).toThrow(/vmap: .*must return tensors/);
    await expect(read).rejects.toThrow(/^vmap: the values of a per-example float64 \[2\] tensor cannot be read inside vmap/);
  });

  it('frees its intermediates under tidy', () => {
    const before = memory().buffers;
    const kept = tidy(() => vmap((a: Tensor) => a.exp().mul(a).sum())(x) as Tensor);
    expect(memory().buffers).toBe(before + 1);
    kept.dispose();
    expect(memory().buffers).toBe(before);
  });
});

describe('custom rules under vmap at batch axis 1, and outputs that ignore the batch', () => {
  // Every other vmap-of-custom test maps over axis 0, where a rule that read its tangents or
  // saved values at the front, or returned cotangents there, gives the same numbers.
  const X = () => tensor([[0.1, 0.2], [0.3, 0.4]], f64);
  const T = () => tensor([[1, 2], [3, 4]], f64);
  const w = () => tensor([[1, 10], [100, 1000]], f64);
  const close = (got: Tensor, want: Tensor) => {
    expect(got.shape).toEqual(want.shape);
    const b = Array.from(want.dataSync());
    Array.from(got.dataSync()).forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThanOrEqual(4e-16 * Math.abs(b[i]!)));
  };
  it('jvp of vmap of a customJvp reads the tangents at the primals\' batch axis', () => {
    const s = customJvp((x: Tensor) => x.sin(), ({ primals: [p], tangents: [t] }) => t!.mul(p!.cos()));
    const [, t] = jvp((x: Tensor) => vmap((r: Tensor) => s(r), { inAxes: 1 })(x), [X()], [T()]);
    close(t, T().mul(X().cos()).transpose());
  });
  it('grad through vmap of a customVjp reads saved arguments and returns cotangents at axis 1', () => {
    const s = customVjp((x: Tensor) => x.sin(), { backward: (saved, ct) => [ct.mul((saved as Tensor[])[0]!.cos())] });
    close(grad((x: Tensor) => vmap((r: Tensor) => s(r), { inAxes: 1 })(x).mul(w()).sum())(X()) as Tensor, w().transpose().mul(X().cos()));
  });
  it('grad through vmap of a customVjp with a forward: cotangents land at the argument\'s axis', () => {
    const s = customVjp((x: Tensor) => x.sin(), {
      forward: (x: Tensor) => ({ output: x.sin(), saved: x.cos() }),
      backward: (c: Tensor, ct) => [ct.mul(c)],
    });
    close(grad((x: Tensor) => vmap((r: Tensor) => s(r), { inAxes: 1 })(x).mul(w()).sum())(X()) as Tensor, w().transpose().mul(X().cos()));
  });
  it('a reverse cumsum at batch axis 1', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]], f64); // the examples are the columns
    expect(Array.from(vmap((r: Tensor) => cumsum(r, 0, { reverse: true }), { inAxes: 1 })(x).dataSync())).toEqual([5, 4, 7, 5, 9, 6]);
  });
  it('an output that ignores the batch is broadcast over it (JAX\'s out_axes)', () => {
    const c = tensor([7, 8], f64);
    const got = vmap((_r: Tensor) => c.mul(2))(zeros([3, 4], f64));
    expect(got.shape).toEqual([3, 2]);
    expect(Array.from(got.dataSync())).toEqual([14, 16, 14, 16, 14, 16]);
    expect(Array.from(vmap((_r: Tensor) => c, { outAxes: 1 })(zeros([3, 4], f64)).dataSync())).toEqual([7, 7, 7, 8, 8, 8]);
  });
});

describe('vmap errors: specs and batching rules checked where they are given', () => {
  const rows = () => tensor([[1, 2]], f64);

  it('a non-integer batch axis is refused by name, not read as shape[0.5]', () => {
    expect(messageOf(() => vmap((a: Tensor) => a.neg(), { inAxes: 0.5 })(rows()))).toBe('vmap: inAxes[0] must be an integer axis or null, got 0.5');
    expect(messageOf(() => vmap((a: Tensor) => a.neg(), { outAxes: 1.5 })(rows()))).toBe('vmap: outAxes must be an integer axis or null, got 1.5');
  });

  it('an array of specs shorter than the array it describes is refused, not applied to a prefix', () => {
    const f = (p: Tensor[]) => p[0]!.add(p[1]!);
    expect(messageOf(() => vmap(f, { inAxes: [[0]] })([tensor([1, 2], f64), tensor([3, 4], f64)]))).toBe(
      'vmap: inAxes[0] is an array of 1 specs but the value it describes is an array of 2',
    );
  });

  it("a batching rule's batch axis must lie inside its result: one past the last axis is refused", () => {
    // The identity on a [1, 3] example whose rule puts the batch last, [1, 3, B], and calls that
    // axis 3: the shape equals an example's with B inserted at 3, so only the axis's range check
    // can catch it.
    const pastEnd = definePrimitive({
      name: 'vmapTestBatchPastEnd', kind: 'shader', inputs: ['x'],
      infer: ([x]) => ({ shape: x!.shape, dtype: x!.dtype }),
      cpu: ([x], out) => out.data.set(x!.data),
      wgsl: { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] },
      jvp: () => null, vjp: () => [null],
      batch: ([x]) => [permute(x!, [1, 2, 0]), 3],
    });
    const xs = tensor([[[1, 2, 3]], [[4, 5, 6]]], f64); // 2 examples of [1, 3]
    expect(messageOf(() => vmap((t: Tensor) => pastEnd(t))(xs))).toBe(
      'vmapTestBatchPastEnd: its batching rule must return [tensor, batch axis or null], got a batch axis 3 for [1,3,2]',
    );
  });
});
