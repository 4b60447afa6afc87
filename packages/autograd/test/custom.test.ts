// customJvp and customVjp: the rule given is the one every transformation uses, in every order,
// and a differentiable rule passes the order-2 gradient checks.

import { describe, expect, it } from 'vitest';
import { checkGrads, customJvp, customVjp, grad, jit, jvp, noGrad, vjp, vmap } from '@scorch/autograd';
import { messageOf } from './helpers.js';
import { type Tensor, exp, logsumexp, memory, randn, randomKey, softmax, sum, tensor } from '@scorch/tensor';

const f64 = { dtype: 'float64' as const };
const read = async (t: Tensor) => Array.from(await t.data());
const readNow = (t: Tensor) => Array.from(t.dataSync());

/** logsumexp written naively (overflows for large x) with the stable derivative Σ softmax(x)·t as its rule. */
const naiveLogsumexp = customJvp(
  (x: Tensor) => exp(x).sum().log(),
  ({ primals: [x], tangents: [t] }) => sum(softmax(x!).mul(t!)),
);

describe('customJvp', () => {
  const x = randn([5], { key: randomKey(1), ...f64 });
  const t = randn([5], { key: randomKey(2), ...f64 });

  it('a custom-rule logsumexp equals the built-in one in value, jvp and gradient', async () => {
    expect(await read(naiveLogsumexp(x))).toEqual(await read(exp(x).sum().log()));
    const [, tangent] = jvp(naiveLogsumexp, [x], [t]);
    const [, reference] = jvp((y: Tensor) => logsumexp(y), [x], [t]);
    expect((await read(tangent))[0]).toBeCloseTo((await read(reference))[0]!, 12);
    const g = await read(grad(naiveLogsumexp)(x) as Tensor);
    const gRef = await read(grad((y: Tensor) => logsumexp(y))(x) as Tensor);
    g.forEach((v, i) => expect(v).toBeCloseTo(gRef[i]!, 12));
  });

  it('passes the order-2 gradient checks in both modes (its rule is differentiable)', async () => {
    await checkGrads(naiveLogsumexp, [x], { order: 2, modes: ['fwd', 'rev'] });
  });

  it('a rule deliberately unlike the true derivative is the one used, forward and reverse, and under jit', async () => {
    // d sin(x) is cos(x); the rule says 2.
    const wrongSin = customJvp((y: Tensor) => y.sin(), ({ tangents: [dt] }) => dt!.mul(2));
    const at = tensor([0.3, -1.2], f64);
    const [, tangent] = jvp(wrongSin, [at], [tensor([1, 1], f64)]);
    expect(await read(tangent)).toEqual([2, 2]);
    expect(await read(grad((y: Tensor) => wrongSin(y).sum())(at) as Tensor)).toEqual([2, 2]);
    expect(await read(jit(grad((y: Tensor) => wrongSin(y).sum()))(at) as Tensor)).toEqual([2, 2]);
    // Second order through the rule: the rule is linear with slope 2, so its derivative is 0.
    const second = grad((y: Tensor) => (grad((z: Tensor) => wrongSin(z).sum())(y) as Tensor).sum())(at) as Tensor;
    expect(await read(second)).toEqual([0, 0]);
  });

  it('records one node in the PyTorch-style graph, with its rule', async () => {
    const wrongExp = customJvp((y: Tensor) => y.exp(), ({ tangents: [dt] }) => dt!.mul(-1));
    const w = tensor([0.5, 1.5], f64);
    w.requiresGrad = true;
    wrongExp(w).sum().backward();
    expect(await read(w.grad!)).toEqual([-1, -1]);
  });
});

describe('customVjp', () => {
  /** The identity whose gradient is clipped to [-1, 1]. */
  const clipGradient = customVjp((x: Tensor) => x.mul(1), { backward: (_saved, ct) => [ct.maximum(-1).minimum(1)] });

  it('a gradient-clipping identity: the value passes, the gradient is clipped', async () => {
    const x = tensor([1, 2, 3], f64);
    const w = tensor([0.5, -4, 7], f64);
    expect(await read(clipGradient(x))).toEqual([1, 2, 3]);
    expect(await read(grad((y: Tensor) => clipGradient(y).mul(w).sum())(x) as Tensor)).toEqual([0.5, -1, 1]);
    const [, pullback] = vjp(clipGradient, x);
    expect(await read(pullback(tensor([3, -0.25, -9], f64))[0]!)).toEqual([1, -0.25, -1]);
  });

  it('forward mode uses the rule too (its transpose)', async () => {
    // backward c ↦ 3c (not 1·c) means J = 3: the tangent comes out tripled.
    const tripled = customVjp((y: Tensor) => y.mul(1), { backward: (_s, ct) => [ct.mul(3)] });
    const [, tangent] = jvp(tripled, [tensor([1, 2], f64)], [tensor([1, -1], f64)]);
    expect(await read(tangent)).toEqual([3, -3]);
  });

  it('forward saves what backward needs; a differentiable rule passes the order-2 checks', async () => {
    // sigmoid with the rule σ(1 − σ)·c, saving the output.
    const sigmoid = customVjp((y: Tensor) => y.sigmoid(), {
      forward: (y: Tensor) => {
        const s = y.sigmoid();
        return { output: s, saved: s };
      },
      backward: (s: Tensor, ct) => [ct.mul(s.mul(s.neg().add(1)))],
    });
    const x = randn([4], { key: randomKey(3), ...f64 });
    await checkGrads(sigmoid, [x], { order: 2, modes: ['fwd', 'rev'] });
  });

  it('says what is wrong with a malformed rule', () => {
    const bad = customVjp((y: Tensor) => y.mul(2), { backward: (_s, ct) => [ct.sum()] });
    expect(() => grad((y: Tensor) => bad(y).sum())(tensor([1, 2], f64))).toThrow(/the backward rule's cotangent 0 must be float64 \[2\] \(like its primal\), got float64 \[\]/);
    expect(() => customVjp((y: Tensor) => y, { backwards: () => [] } as never)).toThrow(/expected a function and \{ backward/);
  });

  it('a backward rule with the wrong count of cotangents is named in forward mode and under vmap too', () => {
    const x = tensor([1, 2], f64);
    // @ts-expect-error two cotangents for one argument: the type refuses it too (the run time is under test)
    const twoForOne = customVjp((y: Tensor) => y.mul(2), { backward: (_s, ct) => [ct.mul(2), null] });
    const notAnArray = customVjp((y: Tensor) => y.mul(2), { backward: (_s, ct) => ct.mul(2) as never });
    const count = /customVjp: the backward rule must return one cotangent \(or null\) per argument \(1\), got 2/;
    const tensorNotArray = /customVjp: the backward rule must return one cotangent \(or null\) per argument \(1\), got a Tensor, not an array/;
    // Forward mode transposes the backward rule: it read the cotangents without checking them.
    expect(() => jvp(twoForOne, [x], [x])).toThrow(count);
    expect(() => jvp(notAnArray, [x], [x])).toThrow(tensorNotArray);
    expect(() => grad((y: Tensor) => notAnArray(y).sum())(x)).toThrow(tensorNotArray);
    expect(() => vmap(grad((y: Tensor) => twoForOne(y).sum()))(tensor([[1, 2]], f64))).toThrow(count);
    expect(() => vmap((y: Tensor) => jvp(notAnArray, [y], [y])[1])(tensor([[1, 2]], f64))).toThrow(tensorNotArray);
  });
});

describe('what a custom function closes over', () => {
  const x = tensor([1, 2, 3], f64);
  it('a tensor traced by the transformation that traces its arguments is refused under vmap, jvp and grad, naming the cure', () => {
    // f(y) = y·y written as customJvp(z => z·y)(y): the rule covers z only, and the output was
    // wrapped twice (a tracer returned, or a misleading "used after that transformation returned").
    const byJvp = (y: Tensor) => customJvp((z: Tensor) => z.mul(y), ({ tangents: [t] }) => t!.mul(y))(y);
    const byVjp = (y: Tensor) => customVjp((z: Tensor) => z.mul(y), { backward: (_s: unknown, ct: Tensor) => [ct.mul(y)] })(y);
    for (const [name, f] of [['customJvp', byJvp], ['customVjp', byVjp]] as const) {
      const message = (by: string) => new RegExp(`^${name}: its function closes over a tensor traced by ${by}, the transformation its arguments are traced by; pass that tensor to the function as an argument`);
      expect(() => vmap(f)(x)).toThrow(message('vmap'));
      expect(() => jvp(f, [x], [x])).toThrow(message('jvp'));
      expect(() => grad((y: Tensor) => f(y).sum())(x)).toThrow(message('vjp'));
    }
  });
  it('a tensor that requires grad is refused under backward() too, when an argument requires grad (its gradient would be lost)', () => {
    // Before, the function ran with gradients off: w.grad stayed null without a word.
    for (const name of ['customJvp', 'customVjp'] as const) {
      const w = tensor([2, 3], f64);
      w.requiresGrad = true;
      const y = tensor([5, 7], f64);
      y.requiresGrad = true;
      const f = name === 'customJvp'
        ? customJvp((z: Tensor) => z.mul(w), ({ tangents: [t] }) => t!.mul(w))
        : customVjp((z: Tensor) => z.mul(w), { backward: (_s: unknown, ct: Tensor) => [ct.mul(w)] });
      expect(() => f(y)).toThrow(new RegExp(`^${name}: its function closes over a tensor that requires grad \\(recorded for backward\\(\\)\\); pass that tensor to the function as an argument`));
      // A constant argument: the function's own operations are recorded, w gets its gradient.
      const plain = tensor([5, 7], f64);
      f(plain).sum().backward();
      expect(Array.from(w.grad!.dataSync())).toEqual([5, 7]);
    }
  });
  it('a tensor traced by a transformation outside the call is differentiated and batched through the function', async () => {
    // d/dc of Σ customJvp(z => z·c)(x) = Σ x: c is closed over from grad's level, x is plain.
    const scaled = (c: Tensor) => customJvp((z: Tensor) => z.mul(c), ({ tangents: [t] }) => t!.mul(c))(x).sum();
    expect(await read(grad(scaled)(tensor(2, f64)))).toEqual([6]);
    expect(await read(vmap(scaled)(tensor([1, 2], f64)))).toEqual([6, 12]);
  });
});

describe('identity and rule checks', () => {
  it('a function that returns its argument (clip) leaves the argument\'s own gradient alone', async () => {
    // The custom node went onto the argument itself: every later use of x got the clipped gradient.
    const clip = customVjp((y: Tensor) => y, { backward: (_s: unknown, ct: Tensor) => [ct.maximum(-1).minimum(1)] });
    const x = tensor([1, 2, 3], f64);
    x.requiresGrad = true;
    clip(x).mul(5).sum().backward();
    expect(await read(x.grad!)).toEqual([1, 1, 1]);
    x.grad = null;
    x.mul(5).sum().backward();
    expect(await read(x.grad!)).toEqual([5, 5, 5]);
  });
  it('forward mode refuses a backward rule\'s undefined cotangent as reverse mode does (only null means zero)', () => {
    // Before, jvp took undefined (or 0, false) as a zero cotangent: a silent zero tangent for y.
    const f = customVjp((x: Tensor, y: Tensor) => x.mul(y), { backward: ([, y]: Tensor[], c: Tensor) => [c.mul(y!), undefined as never] });
    const a = tensor([1, 2], f64);
    const b = tensor([3, 4], f64);
    const message = /^customVjp: the backward rule's cotangent 1 must be float64 \[2\] \(like its primal\), got undefined/;
    expect(() => jvp((y: Tensor) => f(a, y), [b], [b])).toThrow(message);
    expect(() => grad((y: Tensor) => f(a, y).sum())(b)).toThrow(message);
    // Under vmap too: its batched backward turned undefined into zeros before any check saw it
    // (the check lives in the one place every mode reads the cotangents through).
    const perExample = /^customVjp: the backward rule's cotangent 1 must be float64 \[\] \(like its primal\), got undefined/;
    expect(() => grad((y: Tensor) => vmap(f)(a, y).sum())(b)).toThrow(perExample);
    expect(() => jvp((y: Tensor) => vmap(f)(a, y), [b], [b])).toThrow(perExample);
  });
});

describe('memory', () => {
  // A custom function is an op: called outside any tidy it leaves only its result (the
  // intermediates of its function and the residuals its forward saved go with it), as
  // docs/autograd.md ("Memory") promises of ops and transformations.
  const twiceSin = (y: Tensor) => y.sin().mul(2); // one intermediate, sin(y)
  const slope = (y: Tensor) => y.cos().mul(2);
  const byJvp = customJvp(twiceSin, ({ primals: [y], tangents: [t] }) => slope(y!).mul(t!));
  const byVjp = customVjp(twiceSin, {
    forward: (y: Tensor) => ({ output: twiceSin(y), saved: slope(y) }),
    backward: (s: Tensor, ct) => [s.mul(ct)],
  });
  const x = tensor([0.3, -1.2, 2], f64);

  it.each([['customJvp', byJvp], ['customVjp', byVjp]] as const)('%s: memory() is flat over many calls, eager and with requiresGrad', async (_name, f) => {
    const eager = () => f(x).dispose();
    const recorded = () => {
      const w = tensor([0.3, -1.2, 2], f64);
      w.requiresGrad = true;
      const y = f(w);
      const s = y.sum();
      s.backward();
      for (const t of [s, y, w.grad!, w]) t.dispose();
    };
    for (const run of [eager, recorded]) {
      run();
      const before = memory().tensors;
      for (let i = 0; i < 10; i++) run();
      expect(memory().tensors).toBe(before);
    }
    // The residuals lived until backward read them: the gradient is the rule's, 2 cos(x).
    const w = tensor([0.3, -1.2, 2], f64);
    w.requiresGrad = true;
    f(w).sum().backward();
    (await read(w.grad!)).forEach((g, i) => expect(g).toBeCloseTo(2 * Math.cos([0.3, -1.2, 2][i]!), 14));
  });
});

describe('custom rules of two arguments pair each argument with its own tangent and cotangent', () => {
  const x = () => tensor([0.5, -1.5], f64);
  const y = () => tensor([2, 3], f64);
  it('jvp through a customVjp', () => {
    const m = customVjp((a: Tensor, b: Tensor) => a.mul(b), { backward: (s, ct) => [ct.mul((s as Tensor[])[1]!), ct.mul((s as Tensor[])[0]!)] });
    const [, t] = jvp((a: Tensor, b: Tensor) => m(a, b), [x(), y()], [tensor([1, 0], f64), tensor([0, 1], f64)]);
    expect(Array.from(t.dataSync())).toEqual([2, -1.5]); // y·tx + x·ty
  });
  it('grad through a customJvp', () => {
    const m = customJvp((a: Tensor, b: Tensor) => a.mul(b), ({ primals: [a, b], tangents: [ta, tb] }) => ta!.mul(b!).add(tb!.mul(a!)));
    const [ga, gb] = grad((a: Tensor, b: Tensor) => m(a, b).mul(tensor([1, 10], f64)).sum(), { argnums: [0, 1] })(x(), y()) as Tensor[];
    expect(Array.from(ga!.dataSync())).toEqual([2, 30]);
    expect(Array.from(gb!.dataSync())).toEqual([0.5, -15]);
  });
});

describe('customJvp / customVjp: checks of the rules and arguments', () => {
  const a = () => tensor([0.5, -1.5], f64);
  const b = () => tensor([2, 3], f64);

  it('a backward rule\'s cotangent of the wrong dtype is named', () => {
    const cast = customVjp((y: Tensor) => y.mul(2), { backward: (_s, ct) => [ct.mul(2).cast('float32')] });
    expect(() => grad((y: Tensor) => cast(y).sum())(a())).toThrow(/^customVjp: the backward rule's cotangent 0 must be float64 \[2\] \(like its primal\), got float32 \[2\]/);
  });

  it('a jvp rule\'s tangent of the wrong shape is named', () => {
    const summed = customJvp((y: Tensor) => y.sin(), ({ tangents: [t] }) => t.sum());
    expect(() => jvp(summed, [a()], [a()])).toThrow(/^customJvp: the jvp rule's tangent must be float64 \[2\] \(like its primal\), got float64 \[\]/);
  });

  it('a customJvp is named by its function in messages', () => {
    const summed = customJvp(function mySin(y: Tensor) { return y.sin(); }, ({ tangents: [t] }) => t.sum());
    expect(() => jvp(summed, [a()], [a()])).toThrow(/^mySin: the jvp rule's tangent must be/);
  });

  it('a misspelt rule field is refused', () => {
    expect(() => customVjp((y: Tensor) => y, { backward: (_s: unknown, ct: Tensor) => [ct], forwrd: () => null } as never)).toThrow(
      "customVjp: unknown rule field 'forwrd'; expected forward, backward",
    );
  });

  it('forward must return { output: Tensor, saved }', () => {
    const bare = customVjp((y: Tensor) => y.sin(), { forward: ((y: Tensor) => y.sin()) as never, backward: (_s, ct) => [ct] });
    expect(() => grad((y: Tensor) => bare(y).sum())(a())).toThrow(/^customVjp: forward must return a Tensor, got undefined/);
  });

  it('a non-tensor first argument is named', () => {
    const m = customJvp((p: Tensor, q: Tensor) => p.mul(q), ({ tangents: [tp, tq] }) => tp.add(tq));
    expect(messageOf(() => (m as (...args: unknown[]) => Tensor)(3, b()))).toBe('customJvp: argument 0 must be a Tensor, got number');
  });

  it('a tracer used after its transformation returned is named', () => {
    const s = customVjp((y: Tensor) => y.sin(), { backward: ([y]: Tensor[], ct: Tensor) => [ct.mul(y!.cos())] });
    let leaked: Tensor | undefined;
    jvp((y: Tensor) => (leaked = y).sin(), [a()], [a()]);
    expect(messageOf(() => s(leaked!))).toMatch(/^customVjp: a tensor traced by jvp was used after that transformation returned/);
  });
});

describe('customJvp / customVjp: values in the less common cases', () => {
  const a = () => tensor([0.5, -1.5], f64);
  const b = () => tensor([2, 3], f64);
  const product = customJvp((p: Tensor, q: Tensor) => p.mul(q), ({ primals: [p, q], tangents: [tp, tq] }) => tp.mul(q).add(tq.mul(p)));

  it('jvp with one argument untraced gives it a zero tangent', () => {
    // d/dq (a·q)·t = a·t = [0.5, −1.5]·[1, 10].
    const [, t] = jvp((q: Tensor) => product(a(), q), [b()], [tensor([1, 10], f64)]);
    expect(readNow(t)).toEqual([0.5, -15]);
  });

  it('grad with respect to the second argument only of a customJvp (transposed rule)', () => {
    expect(readNow(grad((q: Tensor) => product(a(), q).sum())(b()) as Tensor)).toEqual([0.5, -1.5]);
  });

  it('jvp through a backward rule that returns null for every argument is a zero tangent', () => {
    const stopped = customVjp((y: Tensor) => y.mul(2), { backward: () => [null] });
    const [out, t] = jvp(stopped, [a()], [a()]);
    expect(readNow(out)).toEqual([1, -3]);
    expect(readNow(t)).toEqual([0, 0]);
  });

  it('under vmap, a null cotangent of a batched argument is zero of its per-example shape', () => {
    // g(p, q) = p·q with no cotangent for p; d/dq Σ vmap(g)(A, q) = A.
    const g = customVjp((p: Tensor, q: Tensor) => p.mul(q), { backward: ([p]: Tensor[], ct: Tensor) => [null, ct.mul(p!)] });
    const A = tensor([[1, 2], [3, 4], [5, 6]], f64);
    const gq = grad((q: Tensor) => (vmap(g)(A, q) as Tensor).sum())(tensor([[1, 1], [1, 1], [1, 1]], f64)) as Tensor;
    expect(gq.shape).toEqual([3, 2]);
    expect(readNow(gq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('under noGrad a custom function records nothing for backward()', () => {
    const w = tensor([0.5, 1], f64);
    w.requiresGrad = true;
    const s = customJvp((y: Tensor) => y.sin(), ({ primals: [p], tangents: [t] }) => t.mul(p.cos()));
    expect(noGrad(() => s(w)).requiresGrad).toBe(false);
  });

  it('a bool output is not recorded and not differentiated (its rule is never called)', () => {
    const positive = customJvp((y: Tensor) => y.greater(0), () => { throw new Error('the rule ran'); });
    const w = tensor([0.5, -1], f64);
    w.requiresGrad = true;
    expect(positive(w).requiresGrad).toBe(false);
    const [, t] = jvp((y: Tensor) => positive(y).cast('float64').mul(y), [w.detach()], [tensor([3, 4], f64)]);
    expect(readNow(t)).toEqual([3, 0]);
  });

  it('backward() through a rule with a cotangent for a constant argument leaves no tensor behind', () => {
    const scaled = customVjp((p: Tensor, q: Tensor) => p.mul(q), { backward: ([p, q]: Tensor[], ct: Tensor) => [ct.mul(q!), ct.mul(p!)] });
    const c = tensor([2, 3], f64);
    const run = () => {
      const w = tensor([0.5, 1], f64);
      w.requiresGrad = true;
      const y = scaled(c, w);
      const s = y.sum();
      s.backward();
      expect(readNow(w.grad!)).toEqual([2, 3]);
      for (const t of [s, y, w.grad!, w]) t.dispose();
    };
    run();
    const before = memory().tensors;
    for (let i = 0; i < 5; i++) run();
    expect(memory().tensors).toBe(before);
  });

  it('under vmap at batch axis 1 of a non-square input, backward\'s cotangent is checked against the per-example shape', () => {
    // X is [2, 3] with the examples in its columns: each example is [2], not [3].
    const s = customVjp((y: Tensor) => y.sin(), { backward: ([y]: Tensor[], ct: Tensor) => [ct.mul(y!.cos())] });
    const X = tensor([[0.5, -1, 2], [0, 1.5, -0.25]], f64);
    const g = grad((y: Tensor) => (vmap((r: Tensor) => s(r), { inAxes: 1 })(y) as Tensor).sum())(X) as Tensor;
    expect(g.shape).toEqual([2, 3]);
    expect(readNow(g)).toEqual(readNow(X.cos()));
  });

  it('a function that throws while recorded for backward() leaves its arguments\' requiresGrad as it was', () => {
    const failing = customJvp((_y: Tensor): Tensor => { throw new Error('boom'); }, ({ tangents: [t] }) => t);
    const w = tensor([0.5, 1], f64);
    w.requiresGrad = true;
    expect(() => failing(w)).toThrow('boom');
    expect(w.requiresGrad).toBe(true);
    w.mul(3).sum().backward();
    expect(readNow(w.grad!)).toEqual([3, 3]);
  });
});
