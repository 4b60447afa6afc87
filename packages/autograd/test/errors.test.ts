// Misuse of the autodiff API fails loudly, and the message says what was wrong and what was
// expected (shapes, dtypes, the transformation involved, the way out), so a user can fix the call
// without reading the engine.

import { describe, expect, it } from 'vitest';
import { CpuBackend, type Tensor, memory, registerBackend, softplus, tensor, tidy } from '@scorch/tensor';
import { checkGrads, customVjp, enableGrad, grad, gradOf, hessian, hvp, jacobian, jit, jvp, noGrad, valueAndGrad, vjp, vmap } from '@scorch/autograd';
import { messageOf } from './helpers.js';

const f64 = (data: Parameters<typeof tensor>[0]) => tensor(data, { dtype: 'float64' });

describe('errors say what was wrong and what was expected', () => {
  it('grad of a non-scalar output', () => {
    const message = messageOf(() => grad((x: Tensor) => x.mul(2))(f64([1, 2, 3])));
    expect(message).toContain('grad: the function must return a scalar (shape [])');
    expect(message).toContain('got shape [3]');
    expect(message).toContain('use vjp with a cotangent'); // the way out
    // A one-element tensor of rank 1 is not a scalar either.
    expect(messageOf(() => grad((x: Tensor) => x.sum(0, true))(f64([1, 2])))).toContain('got shape [1]');
  });

  it('grad of an integer-valued function (piecewise constant: no gradient), as JAX refuses it', () => {
    // It returned zeros, which looked like a gradient.
    const x = f64([1.5, 2.5]);
    expect(messageOf(() => grad((v: Tensor) => v.cast('int32').sum())(x))).toBe(
      'grad: the function must return a float scalar (float32 or float64), got int32; an int32 value has no gradient (cast inside the function where a float is meant)',
    );
    // valueAndGrad names itself (it said 'grad:').
    expect(messageOf(() => valueAndGrad((v: Tensor) => v.sum().cast('int32'))(x))).toMatch(/^valueAndGrad: the function must return a float scalar \(float32 or float64\), got int32;/);
    // The way out it names works: a float value of the same function differentiates (to zeros).
    expect(Array.from((grad((v: Tensor) => v.cast('int32').cast('float64').sum())(x) as Tensor).dataSync())).toEqual([0, 0]);
  });

  it('hessian, hvp and gradOf name themselves, not the grad inside them', () => {
    // They said 'grad: the function must return a scalar' for a call the user wrote as hessian.
    const x = f64([1, 2]);
    const notScalar = (v: Tensor) => v.mul(2);
    expect(messageOf(() => hessian(notScalar)(x))).toBe("hessian: the function must return a scalar (shape []), got shape [2]; for a function of other outputs use jacobian(jacobian(f), { mode: 'fwd' })");
    expect(messageOf(() => hvp(notScalar, [x], [f64([1, 0])]))).toMatch(/^hvp: the function must return a scalar \(shape \[\]\), got shape \[2\]/);
    expect(messageOf(() => gradOf(notScalar)(x))).toMatch(/^gradOf: the function must return a scalar/);
    expect(messageOf(() => hessian((v: Tensor) => v.sum().cast('int32'))(x))).toMatch(/^hessian: the function must return a float scalar \(float32 or float64\), got int32;/);
    // An async function is refused under the name of the call too.
    expect(messageOf(() => hessian((async (v: Tensor) => v.sum()) as never)(x))).toMatch(/^hessian: /);
  });

  it('backward of a non-scalar without a gradient', () => {
    const x = f64([[1, 2], [3, 4]]);
    x.requiresGrad = true;
    const message = messageOf(() => x.mul(3).backward());
    expect(message).toContain('backward: the output has shape [2,2]');
    expect(message).toContain('pass a cotangent of that shape (backward(gradient)), or reduce it to a scalar first');
  });

  it('backward with a gradient of the wrong shape or dtype', () => {
    const x = f64([1, 2, 3]);
    x.requiresGrad = true;
    const y = x.exp();
    expect(messageOf(() => y.backward(f64([1, 2])))).toBe('backward: gradient is float64 [2] but the output is float64 [3]');
    expect(messageOf(() => y.backward(tensor([1, 2, 3])))).toBe('backward: gradient is float32 [3] but the output is float64 [3]');
  });

  it('backward of a tensor that does not require grad', () => {
    expect(messageOf(() => f64([1]).sum().backward())).toContain('backward: this tensor does not require grad (no input had requiresGrad = true');
  });

  it('jvp with a tangent of the wrong shape, dtype or count', () => {
    const x = f64([1, 2, 3]);
    const wrongShape = messageOf(() => jvp((a: Tensor) => a.sin(), [x], [f64([1, 2])]));
    expect(wrongShape).toBe('jvp: argument 0 tangent is float64 [2] but its primal is float64 [3]; they must match');
    const wrongDType = messageOf(() => jvp((a: Tensor) => a.sin(), [x], [tensor([1, 2, 3])]));
    expect(wrongDType).toBe('jvp: argument 0 tangent is float32 [3] but its primal is float64 [3]; they must match');
    const wrongCount = messageOf(() => jvp((a: Tensor, b: Tensor) => a.mul(b), [x, x], [x]));
    expect(wrongCount).toBe('jvp: expected one tangent per primal (2), got 1');
  });

  it('jvp with a tangent on another device than its primal', () => {
    // A second CPU device stands in for a GPU. The tangent was not checked: with f the identity it
    // came back on its own device beside a primal on another, and otherwise failed in the first
    // op that met both ('where: tensors are on different devices', from inside softplus).
    registerBackend(new CpuBackend('cpu-other'));
    const x = f64([1, 2, 3]);
    const elsewhere = tensor([1, 0, 0], { dtype: 'float64', device: 'cpu-other' });
    const message = "jvp: argument 0 tangent is on 'cpu-other' but its primal is on 'cpu'; move the tangent to its primal's device";
    expect(messageOf(() => jvp((a: Tensor) => a, [x], [elsewhere]))).toBe(message);
    expect(messageOf(() => jvp((a: Tensor) => softplus(a).sum(), [x], [elsewhere]))).toBe(message);
    expect(messageOf(() => jvp((a: Tensor, b: Tensor) => a.mul(b), [x, x], [x, elsewhere]))).toBe(message.replace('argument 0', 'argument 1'));
  });

  it('vjp and backward with a cotangent on another device than the output', () => {
    // As for jvp's tangent: the pullback's cotangent came back as it was for f the identity (a
    // 'cpu-other' gradient of a 'cpu' argument), and otherwise failed in the first op that met
    // both ('mul: tensors are on different devices'), as did backward(gradient).
    registerBackend(new CpuBackend('cpu-other'));
    const elsewhere = tensor([1, 0, 0], { dtype: 'float64', device: 'cpu-other' });
    const pullbackMessage = "vjp: the cotangent is on 'cpu-other' but the output is on 'cpu'; move the cotangent to the output's device";
    expect(messageOf(() => vjp((a: Tensor) => a, f64([1, 2, 3]))[1](elsewhere))).toBe(pullbackMessage);
    expect(messageOf(() => vjp((a: Tensor) => a.mul(2), f64([1, 2, 3]))[1](elsewhere))).toBe(pullbackMessage);
    const x = f64([1, 2, 3]);
    x.requiresGrad = true;
    expect(messageOf(() => x.mul(2).backward(elsewhere))).toBe("backward: gradient is on 'cpu-other' but the output is on 'cpu'; move the gradient to the output's device");
    expect(x.grad).toBeNull();
  });

  it('a disposed argument, tangent or cotangent is named by the transformation it was given to', () => {
    // Was an error from the first op that used it ('exp: tensor [3] float64 was disposed', 'mul:
    // first operand, ...'), and no error at all where f returned it: jvp and vjp of the identity
    // handed the disposed tensor back as a result.
    const disposed = () => {
      const t = f64([1, 2, 3]);
      t.dispose();
      return t;
    };
    const x = f64([1, 2, 3]);
    const dead = (what: string) => `${what}, a float64 [3] tensor, was disposed (by dispose() or tidy()) and cannot be used`;
    const identity = (a: Tensor) => a;
    const exp = (a: Tensor) => a.exp();
    expect(messageOf(() => jvp(identity, [x], [disposed()]))).toBe(dead('jvp: argument 0 tangent'));
    expect(messageOf(() => jvp(exp, [x], [disposed()]))).toBe(dead('jvp: argument 0 tangent'));
    expect(messageOf(() => jvp(identity, [disposed()], [x]))).toBe(dead('jvp: argument 0'));
    expect(messageOf(() => jvp((a: Tensor, b: Tensor) => a.mul(b), [x, disposed()], [x, x]))).toBe(dead('jvp: argument 1'));
    expect(messageOf(() => vjp(identity, disposed()))).toBe(dead('vjp: argument 0'));
    expect(messageOf(() => vjp(exp, x)[1](disposed()))).toBe(dead('vjp: the cotangent'));
    expect(messageOf(() => grad((a: Tensor) => a.sum())(disposed()))).toBe(dead('grad: argument 0'));
    expect(messageOf(() => hvp((a: Tensor) => a.exp().sum(), [x], [disposed()]))).toBe(dead('hvp: argument 0 tangent'));
    expect(messageOf(() => hessian((a: Tensor) => a.exp().sum())(disposed()))).toBe(dead('hessian: argument 0'));
    expect(messageOf(() => jacobian(exp, { mode: 'fwd' })(disposed()))).toBe(dead('jacobian: argument 0'));
  });

  it('backward refuses a disposed gradient under its own name', () => {
    // Was 'mul: first operand, ... was disposed' from the first rule that read it, or 'detach: ...'
    // where it reached a leaf directly.
    const g = f64([1, 1, 1]);
    g.dispose();
    const message = 'backward: gradient, a float64 [3] tensor, was disposed (by dispose() or tidy()) and cannot be used';
    for (const f of [(a: Tensor) => a.mul(2), (a: Tensor) => a.add(1)]) {
      const x = f64([1, 2, 3]);
      x.requiresGrad = true;
      expect(messageOf(() => f(x).backward(g))).toBe(message);
      expect(x.grad).toBeNull();
    }
  });

  it('vmap refuses a disposed batched input by its leaf', () => {
    // vmap of the identity handed the disposed tensor back with no error; a function that used
    // it failed under its first op's name.
    const disposed = f64([[1, 2], [3, 4]]);
    disposed.dispose();
    const message = 'vmap: input leaf 1, a float64 [2,2] tensor, was disposed (by dispose() or tidy()) and cannot be used';
    expect(messageOf(() => vmap((a: Tensor, b: Tensor) => b)(f64([[1, 2], [3, 4]]), disposed))).toBe(message);
    expect(messageOf(() => vmap((a: Tensor, b: Tensor) => a.mul(b))(f64([[1, 2], [3, 4]]), disposed))).toBe(message);
  });

  it('hessian and hvp refuse an argument under their own names', () => {
    // Were 'jacobian: ...' and 'jvp: ...', the transformations hessian and hvp are built from.
    const ints = tensor([1, 2], { dtype: 'int32' });
    const sum = (a: Tensor) => a.sum();
    expect(messageOf(() => hessian(sum)(ints))).toBe('hessian: argument 0 has dtype int32; only float32/float64 tensors can be differentiated');
    expect(messageOf(() => hessian(sum)(3 as never))).toBe('hessian: argument 0 must be a Tensor, got number');
    expect(messageOf(() => hvp(sum, [ints], [ints]))).toBe('hvp: argument 0 has dtype int32; only float32/float64 tensors can be differentiated');
    expect(messageOf(() => hvp(sum, [3 as never], [f64([1])]))).toBe('hvp: argument 0 must be a Tensor, got number');
  });

  it('hvp refuses a tangent under its own name, not the jvp inside it', () => {
    // Were 'jvp: ...', from the jvp hvp is built on; the user called hvp.
    const x = f64([1, 2, 3]);
    const sum = (a: Tensor) => a.mul(a).sum();
    expect(messageOf(() => hvp(sum, [x], [f64([1, 2])]))).toBe('hvp: argument 0 tangent is float64 [2] but its primal is float64 [3]; they must match');
    expect(messageOf(() => hvp(sum, [x], [tensor([1, 2, 3])]))).toBe('hvp: argument 0 tangent is float32 [3] but its primal is float64 [3]; they must match');
    expect(messageOf(() => hvp(sum, [x], [3 as never]))).toBe('hvp: argument 0 tangent must be a Tensor, got number');
    expect(messageOf(() => hvp((a: Tensor, b: Tensor) => a.mul(b).sum(), [x, x], [x]))).toBe('hvp: expected one tangent per primal (2), got 1');
    // jvp itself still says jvp.
    expect(messageOf(() => jvp(sum, [x], [f64([1, 2])]))).toBe('jvp: argument 0 tangent is float64 [2] but its primal is float64 [3]; they must match');
  });

  it('vjp with a cotangent of the wrong shape', () => {
    const [, pullback] = vjp((a: Tensor) => a.sin(), f64([1, 2, 3]));
    expect(messageOf(() => pullback(f64([1, 2])))).toBe('vjp: the cotangent must match the output (float64 [3]), got float64 [2]');
  });

  it('an async function: the Promise is named, not "got object"', () => {
    const message = 'the function returned a Promise; it must be synchronous and return a Tensor (an async function\'s work would run after the transformation ended)';
    const f = async (x: Tensor) => x.mul(x).sum();
    expect(() => grad(f as never)(f64([1, 2]))).toThrow(`grad: ${message}`);
    expect(() => jvp(f as never, [f64([1])], [f64([1])])).toThrow(message);
  });

  it('an async function refused by a transformation leaves no unhandled rejection behind', async () => {
    // The refusal came as a TypeError the caller could catch, but the abandoned Promise went on:
    // after its await it used a tracer of the ended transformation and rejected with no handler,
    // which ends a Node process (tidy and composite already caught theirs).
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const x = f64([1, 2]);
      const later = async (a: Tensor) => {
        await new Promise((resolve) => setTimeout(resolve, 0));
        return a.mul(a).sum();
      };
      const f = later as unknown as (a: Tensor) => Tensor;
      const calls: [string, () => unknown][] = [
        ['grad', () => grad(f)(x)],
        ['grad', () => grad((async (a: Tensor) => [await later(a), 1]) as never, { hasAux: true })(x)],
        ['vjp', () => vjp(f, x)],
        ['jvp', () => jvp(f, [x], [x])],
        ['jacobian', () => jacobian(f)(x)],
        ['vmap', () => vmap(f)(x)],
        ['jit', () => jit(f)(x)],
        ['later', () => customVjp(f, { backward: () => [x] })(x)],
      ];
      for (const [op, call] of calls) expect(messageOf(call)).toMatch(new RegExp(`^${op}: .*returned a Promise`));
      // Long enough for every abandoned function to resume and fail.
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('differentiating an int32 argument', () => {
    const ints = tensor([1, 2, 3], { dtype: 'int32' });
    const expected = 'argument 0 has dtype int32; only float32/float64 tensors can be differentiated';
    expect(messageOf(() => grad((a: Tensor) => a.sum())(ints))).toBe(`grad: ${expected}`);
    expect(messageOf(() => vjp((a: Tensor) => a.sum(), ints))).toBe(`vjp: ${expected}`);
    expect(messageOf(() => jvp((a: Tensor) => a.sum(), [ints], [ints]))).toBe(`jvp: ${expected}`);
    expect(messageOf(() => jacobian((a: Tensor) => a)(ints))).toBe(`jacobian: ${expected}`);
    // Only the differentiated arguments must be float: an int32 argument left out of argnums is fine.
    expect(() => grad((a: Tensor, _i: Tensor) => a.sum(), { argnums: 0 })(f64([1]), ints)).not.toThrow();
    expect(messageOf(() => { ints.requiresGrad = true; })).toBe('requiresGrad: only float tensors can require gradients, got int32');
  });

  it('jacobian of an int32 or bool output, as JAX\'s jacrev (grad: above)', () => {
    // It came out as zeros: float32 in reverse mode, and an int32 or bool Jacobian in forward mode.
    const x = f64([1.5, 2]);
    const toInt = (a: Tensor) => a.cast('int32');
    const toBool = (a: Tensor) => a.less(2);
    const rest = 'value has no derivative (cast inside the function where a float is meant, or use vjp or jvp)';
    for (const mode of ['rev', 'fwd'] as const) {
      expect(messageOf(() => jacobian(toInt, { mode })(x))).toBe(`jacobian: the function must return a float tensor (float32 or float64), got int32; an int32 ${rest}`);
      expect(messageOf(() => jacobian(toBool, { mode })(x))).toBe(`jacobian: the function must return a float tensor (float32 or float64), got bool; a bool ${rest}`);
    }
    // grad of a bool value is refused as of an int32 one ('an bool value' before).
    expect(messageOf(() => valueAndGrad((a: Tensor) => toBool(a.sum()))(x))).toContain('got bool; a bool value has no gradient');
    // vjp and jvp take the cotangent or tangent from the caller, and still give zeros (JAX's float0).
    const [, pullback] = vjp(toInt, x);
    expect(pullback(tensor([1, 1], { dtype: 'int32' }))[0]!.dataSync()).toEqual(new Float64Array([0, 0]));
    expect(jvp(toInt, [x], [f64([1, 1])])[1].dataSync()).toEqual(new Int32Array([0, 0]));
    // A float output computed through integers is differentiated as usual.
    expect(jacobian((a: Tensor) => toInt(a).cast('float64').mul(a))(x).dataSync()).toEqual(new Float64Array([1, 0, 0, 2]));
  });

  it('requiresGrad changes only on leaves: a tensor computed from one that requires grad refuses, one computed from constants is a leaf (docs/autograd.md)', () => {
    const w = f64([1, 2]);
    w.requiresGrad = true;
    const y = w.mul(2);
    expect(y.requiresGrad).toBe(true);
    const leafMessage = 'requiresGrad: can only be changed on leaf tensors; use detach() to cut a computed tensor from the graph';
    expect(messageOf(() => { y.requiresGrad = false; })).toBe(leafMessage);
    expect(messageOf(() => { y.requiresGrad = true; })).toBe(leafMessage);
    const d = y.detach();
    d.requiresGrad = true;
    expect(d.requiresGrad).toBe(true);
    const c = f64([1, 2]).mul(3); // computed, but from no tensor that requires grad: a leaf, as in PyTorch
    c.requiresGrad = true;
    c.sum().backward();
    expect(c.grad).not.toBeNull();
  });

  it('argnums out of range', () => {
    const message = messageOf(() => valueAndGrad((a: Tensor) => a.sum(), { argnums: [0, 2] })(f64([1]), f64([2])));
    expect(message).toBe('valueAndGrad: argnums [0,2] out of range for 2 argument(s)');
  });

  it('grad and valueAndGrad reject unknown options rather than differentiating argument 0', () => {
    const f = (a: Tensor, b: Tensor) => a.mul(b).sum();
    expect(messageOf(() => grad(f, { argnum: 1 } as never))).toBe("grad: unknown option 'argnum' (did you mean 'argnums'?); valid options: argnums, hasAux");
    expect(messageOf(() => valueAndGrad(f, { argNums: 1 } as never))).toBe(
      "valueAndGrad: unknown option 'argNums' (did you mean 'argnums'?); valid options: argnums, hasAux",
    );
    expect(messageOf(() => grad(f, null as never))).toBe('grad: expected an options object, got null');
  });

  it('backward rejects unknown options, a non-boolean createGraph and options in the gradient slot', () => {
    const x = f64([1, 2]);
    x.requiresGrad = true;
    expect(messageOf(() => x.mul(x).sum().backward(undefined, { create_graph: true } as never))).toBe(
      "backward: unknown option 'create_graph' (did you mean 'createGraph'?); valid options: createGraph",
    );
    expect(messageOf(() => x.mul(x).sum().backward(undefined, { createGraph: 'yes' as never }))).toBe('backward: createGraph must be true or false, got "yes"');
    expect(messageOf(() => x.mul(x).sum().backward({ createGraph: true } as never))).toBe(
      "backward: gradient must be a Tensor of the output's shape (or omitted for a scalar output), got an object; options go second: backward(undefined, { createGraph })",
    );
    expect(x.grad).toBeNull();
  });

  describe('using a tracer after its transformation returned', () => {
    const expected = 'was used after that transformation returned; return it from the function instead';

    it('a tracer leaked from grad', () => {
      let leaked: Tensor | undefined;
      grad((x: Tensor) => {
        leaked = x.mul(2);
        return x.sum();
      })(f64([1, 2]));
      const message = messageOf(() => leaked!.add(1));
      expect(message).toBe(`add: a tensor traced by vjp ${expected}`);
    });

    it('a tracer leaked from jvp, used inside a later transformation', () => {
      let leaked: Tensor | undefined;
      jvp((x: Tensor) => {
        leaked = x;
        return x.exp();
      }, [f64([1])], [f64([1])]);
      const message = messageOf(() => grad((y: Tensor) => y.mul(leaked!).sum())(f64([3])));
      expect(message).toBe(`mul: a tensor traced by jvp ${expected}`);
    });

    it('a pullback that captured a tracer of a transformation that has returned', () => {
      let pullbackLeaked: ((ct: Tensor) => Tensor[]) | undefined;
      jvp((a: Tensor) => {
        const [y, pullback] = vjp((b: Tensor) => b.mul(a).sum(), a);
        pullbackLeaked = pullback;
        return y;
      }, [f64([1, 2])], [f64([1, 1])]);
      expect(messageOf(() => pullbackLeaked!(f64(1)))).toContain(`a tensor traced by jvp ${expected}`);
    });
  });

  describe('backward through a graph whose saved tensor was disposed by tidy', () => {
    const expected = 'was disposed (by dispose() or tidy()); run the backward pass inside the same tidy() as the forward pass';

    it('ambient backward()', () => {
      const x = f64([1, 2]);
      x.requiresGrad = true;
      // tidy keeps the loss but frees exp(x), which the gradient of the sum reads.
      const loss = tidy(() => x.exp().sum());
      expect(messageOf(() => loss.backward())).toBe(`backward: a tensor saved for the gradient of 'sum' ${expected}`);
      expect(x.grad).toBeNull();
    });

    it('a functional pullback returned out of tidy', () => {
      const [, pullback] = tidy(() => vjp((a: Tensor) => a.exp().sum(), f64([1, 2])));
      expect(messageOf(() => pullback(f64(1)))).toBe(`backward: a tensor saved for the gradient of 'sum' ${expected}`);
    });

    it('the same computation with backward inside the tidy works', async () => {
      const x = f64([0, 0]);
      x.requiresGrad = true;
      tidy(() => x.exp().sum().backward());
      expect(await x.grad!.toArray()).toEqual([1, 1]);
    });
  });

  it('checkGrads asks for float64 arguments', async () => {
    await expect(checkGrads((a) => a.sin(), [tensor([1, 2])])).rejects.toThrow(
      'checkGrads: argument 0 is float32 [2]; finite differences need float64 (cast it)',
    );
  });

  it('checkGrads names an async function\'s Promise, as the transformations do', async () => {
    // Was 'checkGrads: the function must return a Tensor': checkGrads is itself async, so an async
    // f is a natural mistake, and the message did not say what was wrong with what it returned.
    const f = async (a: Tensor) => a.mul(a).sum();
    await expect(checkGrads(f as never, [f64([1, 2])])).rejects.toThrow(
      "checkGrads: the function returned a Promise; it must be synchronous and return a Tensor (f runs inside jvp and vjp, whose work ends when it returns)",
    );
    await expect(checkGrads(((a: Tensor) => [a]) as never, [f64([1, 2])])).rejects.toThrow('checkGrads: the function must return a Tensor, got object');
  });

  it('checkGrads asks for a float64 output too', async () => {
    // A float32 output failed as 'JVP vs central difference differs' (float32 roundoff over 2ε),
    // or in reverse mode alone as 'vjp: the cotangent must match the output'; a bool one as 'sub: ...'.
    const x = f64([1.5, 2]);
    const to = (dtype: 'float32' | 'int32' | 'bool') => (a: Tensor) => a.mul(a).cast(dtype);
    const need = 'finite differences need a float64 output (cast it)';
    await expect(checkGrads(to('float32'), [x])).rejects.toThrow(`checkGrads: the function returned float32 [2]; ${need}`);
    await expect(checkGrads(to('float32'), [x], { modes: ['rev'] })).rejects.toThrow(`checkGrads: the function returned float32 [2]; ${need}`);
    await expect(checkGrads(to('int32'), [x])).rejects.toThrow(`checkGrads: the function returned int32 [2]; ${need}`);
    await expect(checkGrads(to('bool'), [x])).rejects.toThrow(`checkGrads: the function returned bool [2]; ${need}`);
  });

  it('checkGrads rejects unknown options and bad values', async () => {
    const x = f64([1, 2]);
    const sin = (a: Tensor) => a.sin();
    await expect(checkGrads(sin, [x], { tol: 1e-3 } as never)).rejects.toThrow(
      "checkGrads: unknown option 'tol' (did you mean 'rtol'?); valid options: order, modes, eps, rtol, atol, key",
    );
    await expect(checkGrads(sin, [x], { eps: 0 })).rejects.toThrow('checkGrads: eps must be');
    await expect(checkGrads(sin, [x], { eps: Number.NaN })).rejects.toThrow('checkGrads: eps must be');
    await expect(checkGrads(sin, [x], { rtol: -1 })).rejects.toThrow('checkGrads: rtol must be');
    await expect(checkGrads(sin, [x], { modes: [] })).rejects.toThrow("checkGrads: modes must be a non-empty array of 'fwd' and 'rev', got []");
    await expect(checkGrads(sin, [x], { modes: ['forward'] as never })).rejects.toThrow(
      `checkGrads: modes must be a non-empty array of 'fwd' and 'rev', got ["forward"]`,
    );
  });

  it('noGrad and enableGrad name themselves when given something other than a function', () => {
    // Both failed as 'fn is not a function'; noGrad(x.mul(2)) is an easy slip.
    expect(() => noGrad(f64([1]) as never)).toThrow(/^noGrad: expected a function, got object$/);
    expect(() => enableGrad(null as never)).toThrow(/^enableGrad: expected a function, got null$/);
  });

  it('a function that throws inside vjp, outside any tidy, leaves none of its forward values alive', () => {
    // The values computed under the trace went to no scope: vjp leaves them to its caller, who
    // gets no value or pullback when f throws, so they could never be freed (grad and jvp free theirs).
    const x = f64([1, 2, 3]);
    const before = memory().tensors;
    const failing = (a: Tensor) => {
      a.mul(2).exp().sum();
      throw new Error('failed midway');
    };
    expect(() => vjp(failing, x)).toThrow('failed midway');
    expect(memory().tensors).toBe(before);
    // And the next call works, with nothing left behind but its own results.
    const [value, pullback] = vjp((a: Tensor) => a.square().sum(), x);
    const [g] = pullback(f64(1));
    expect([...g!.dataSync()]).toEqual([2, 4, 6]);
    value.dispose();
    g!.dispose();
  });

  it('a backward pass whose rule throws midway frees the cotangents it computed (pullback and backward())', () => {
    // The pass made its cotangents in a scope it never freed on an error: outside a tidy they
    // stayed alive for good (6 tensors for this function, 7 with backward()'s seed).
    let fail = true;
    const tripled = customVjp((x: Tensor) => x.mul(3), {
      backward: (_saved, ct) => {
        const g = ct.mul(3);
        if (fail) throw new Error('rule failed');
        return [g];
      },
    });
    const f = (a: Tensor) => tripled(a).exp().mul(a).sum();
    const x = f64([0.1, 0.2]);
    const [value, pullback] = vjp(f, x);
    const seed = f64(1);
    const before = memory().tensors;
    expect(() => pullback(seed)).toThrow('rule failed');
    expect(memory().tensors).toBe(before);
    value.dispose();
    const w = f64([0.1, 0.2]);
    w.requiresGrad = true;
    for (const createGraph of [false, true]) {
      const y = f(w);
      const start = memory().tensors;
      expect(() => y.backward(undefined, { createGraph })).toThrow('rule failed');
      expect(memory().tensors, `createGraph ${createGraph}`).toBe(start);
      expect(w.grad).toBeNull();
      y.dispose();
    }
    // The next pass works: d/dw Σ exp(3w)·w = exp(3w)(3w + 1).
    fail = false;
    const y = f(w);
    y.backward();
    const want = [0.1, 0.2].map((v) => Math.exp(3 * v) * (3 * v + 1));
    // |g| < 2.2 after about five float64 roundings (relative 1.1e-16 each) on either side: < 4e-15.
    [...w.grad!.dataSync()].forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThan(4e-15));
  });

  it('noGrad and enableGrad refuse an async function, whose awaited work would run under another grad mode', async () => {
    // The mode was restored when the function returned its Promise, so the work after the await
    // silently ran recording (under noGrad) or not recording (under enableGrad inside noGrad).
    const w = f64([1, 2]);
    w.requiresGrad = true;
    const recorded: boolean[] = [];
    const later = async () => {
      await Promise.resolve();
      recorded.push(w.mul(2).requiresGrad);
    };
    expect(messageOf(() => noGrad(later))).toBe(
      'noGrad: the function returned a Promise; noGrad is synchronous (recording off lasts until the function returns, so work after an await would not get it): call noGrad inside the async function, around each synchronous part',
    );
    expect(messageOf(() => noGrad(() => enableGrad(later)))).toMatch(/^enableGrad: the function returned a Promise; enableGrad is synchronous \(recording on lasts/);
    await new Promise((resolve) => setTimeout(resolve, 0));
    // The abandoned functions still ran (under the ambient mode); the caller was told, and the mode is as before.
    expect(recorded).toEqual([true, true]);
    expect(w.mul(2).requiresGrad).toBe(true);
    expect(noGrad(() => w.mul(2)).requiresGrad).toBe(false);
  });

  it('checkGrads names itself and the option for a bad key or order', async () => {
    const x = f64([1, 2]);
    const sin = (a: Tensor) => a.sin();
    // The key was refused by the first foldIn ('foldIn: a key is ...'), after f had run.
    await expect(checkGrads(sin, [x], { key: 3 as never })).rejects.toThrow(/^checkGrads: key: a key is two unsigned 32-bit integers \[k0, k1\] \(from randomKey or splitKey\), got 3$/);
    await expect(checkGrads(sin, [x], { key: [1, -1] as never })).rejects.toThrow(/^checkGrads: key: a key is .*, got \[1,-1\]$/);
    // A string order was shown as the number it is not ('got 2').
    await expect(checkGrads(sin, [x], { order: '2' as never })).rejects.toThrow(/^checkGrads: order must be an integer >= 1, got "2"$/);
    await expect(checkGrads(sin, [x], { order: 0 })).rejects.toThrow(/^checkGrads: order must be an integer >= 1, got 0$/);
  });

  it('checkGrads reports the first disagreement with both values and the tolerance', async () => {
    // A function whose "derivative" is wrong on purpose: the stop-gradient hides x from the JVP.
    const message = await checkGrads((a) => a.mul(a.detach()), [f64([1.5])], { order: 1, modes: ['fwd'] }).then(
      () => 'no error',
      (e: Error) => e.message,
    );
    expect(message).toMatch(/^checkGrads: JVP vs central difference differs at element 0: \S+ vs \S+ \(\|diff\| \S+ > atol 0\.000001 \+ rtol 0\.00001·\|\S+\|\)$/);
  });
});
