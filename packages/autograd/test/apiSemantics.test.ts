// The transformations' API behaves as JAX's and PyTorch's do where the two agree: which arguments
// `argnums` names, what a tracer used outside its transformation does, what reading a value
// inside a transformation gives, and what an in-place update does to a recorded graph. Values are
// float64 on the CPU, and every expected value here is exact in binary floating point (small
// integers and their products), so the comparisons are exact.

import { describe, expect, it } from 'vitest';
import { type Tensor, flattenTree, keep, memory, softplus, tensor, tidy, treeDefKey, unflattenTree } from '@scorch/tensor';
import { checkGrads, customVjp, grad, gradOf, hessian, hvp, jacobian, jit, jvp, noGrad, valueAndGrad, vjp, vmap } from '@scorch/autograd';
import { messageOf } from './helpers.js';

const f64 = (data: Parameters<typeof tensor>[0]) => tensor(data, { dtype: 'float64' });
const read = (t: Tensor) => Array.from(t.dataSync());

describe('argnums', () => {
  const f = (a: Tensor, b: Tensor) => a.mul(b);

  it('an argument listed twice is an error, not a zero gradient for its first copy', () => {
    // Before: [0, 3]: the second copy replaced the first inside f. PyTorch's torch.func.grad
    // refuses duplicates too ("argnums elements must be unique").
    expect(messageOf(() => grad(f, { argnums: [0, 0] })(f64(2), f64(3)))).toBe('grad: argnums [0,0] names argument 0 twice; list each argument once');
    expect(messageOf(() => valueAndGrad(f, { argnums: [1, 0, 1] })(f64(2), f64(3)))).toBe('valueAndGrad: argnums [1,0,1] names argument 1 twice; list each argument once');
  });

  it('that is not an integer or a list of them says so (before: "out of range for 2 argument(s)")', () => {
    expect(messageOf(() => grad(f, { argnums: '1' as never })(f64(2), f64(3)))).toBe('grad: argnums must be an argument index or an array of them, got "1"');
    expect(messageOf(() => grad(f, { argnums: 0.5 })(f64(2), f64(3)))).toBe('grad: argnums 0.5 is not an integer argument index');
    expect(messageOf(() => grad(f, { argnums: [0, '1'] as never })(f64(2), f64(3)))).toBe('grad: argnums [0,"1"] holds "1", not an integer argument index');
  });

  it('a list in any order gives the gradients in that order', async () => {
    const [gb, ga] = grad((a: Tensor, b: Tensor) => a.mul(b.square()), { argnums: [1, 0] })(f64(2), f64(3)) as Tensor[];
    expect(await gb!.item()).toBe(12); // ∂(ab²)/∂b = 2ab
    expect(await ga!.item()).toBe(9); // ∂(ab²)/∂a = b²
  });
});

describe('negative argnums', () => {
  it('count from the end, as in JAX and PyTorch', async () => {
    const f = (a: Tensor, b: Tensor) => a.mul(b.square());
    expect(await (grad(f, { argnums: -1 })(f64(2), f64(3)) as Tensor).item()).toBe(12); // ∂/∂b = 2ab
    const [ga, gb] = grad(f, { argnums: [-2, -1] })(f64(2), f64(3)) as Tensor[];
    expect([await ga!.item(), await gb!.item()]).toEqual([9, 12]);
    // -1 and 1 are the same argument of two.
    expect(messageOf(() => grad(f, { argnums: [1, -1] })(f64(2), f64(3)))).toBe('grad: argnums [1,-1] names argument 1 twice; list each argument once');
    expect(messageOf(() => grad(f, { argnums: -3 })(f64(2), f64(3)))).toBe('grad: argnums -3 out of range for 2 argument(s)');
  });
});

describe('reading values inside vmap', () => {
  it('is an error: a per-example tensor has no single value (before: the first example, or the whole batch)', async () => {
    const expected = 'tensor cannot be read inside vmap (it stands for every example of the batch at once); return it from the function and read the batched result after the call';
    const xs = f64([[1, 2], [3, 4]]);
    // Before: item() of the per-example sum gave 3 (the first example's) for the batch [3, 7], and
    // dataSync() gave all four values for a tensor of shape [2].
    // item() and toArray() are async: they reject.
    let item: Promise<number> | undefined;
    let array: Promise<unknown> | undefined;
    vmap((x: Tensor) => {
      item = x.sum().item();
      array = x.toArray();
      return x;
    })(xs);
    await expect(item).rejects.toThrow(`vmap: the values of a per-example float64 [] ${expected}`);
    await expect(array).rejects.toThrow(`vmap: the values of a per-example float64 [2] ${expected}`);
    expect(messageOf(() => vmap((x: Tensor) => { x.dataSync(); return x; })(xs))).toBe(`vmap: the values of a per-example float64 [2] ${expected}`);
    // Under grad inside vmap the read reaches the batch tracer below the reverse-mode one.
    expect(messageOf(() => vmap(grad((x: Tensor) => { x.mul(2).dataSync(); return x.sum(); }))(xs))).toBe(`vmap: the values of a per-example float64 [2] ${expected}`);
    // A value that does not depend on the batch is concrete and can be read.
    let read: Promise<number> | undefined;
    vmap((x: Tensor) => { read = f64(5).item(); return x; })(xs);
    expect(await read).toBe(5);
  });
});

describe('a tracer used after its transformation returned', () => {
  const expected = 'was used after that transformation returned; return it from the function instead';
  /** A tracer of `transform` stored outside the function: the argument or an intermediate. */
  function leak(transform: 'grad' | 'jvp' | 'vmap' | 'jit', intermediate: boolean): Tensor {
    let leaked: Tensor | undefined;
    const body = (x: Tensor) => {
      leaked = intermediate ? x.mul(3) : x;
      return x.sum();
    };
    const x = f64([1, 2]);
    if (transform === 'grad') grad(body)(x);
    else if (transform === 'jvp') jvp(body, [x], [f64([1, 1])]);
    else if (transform === 'vmap') vmap(body)(x);
    else jit(body)(x);
    return leaked!;
  }
  const name = { grad: 'vjp', jvp: 'jvp', vmap: 'vmap', jit: 'jit' } as const;

  it('reading a leaked vmap or jit tracer is that error (before: "cannot be read inside vmap", "not known while its function is traced")', async () => {
    for (const transform of ['vmap', 'jit'] as const) {
      for (const intermediate of [false, true]) {
        const leaked = leak(transform, intermediate);
        const message = `${transform}: a tensor traced by ${name[transform]} ${expected}`;
        await expect(leaked.toArray()).rejects.toThrow(message);
        expect(messageOf(() => leaked.dataSync())).toBe(message);
      }
    }
  });

  it('a side value of grad or jvp kept with keep() can still be read, as documented; one not kept was disposed', async () => {
    let kept: Tensor | undefined;
    let dropped: Tensor | undefined;
    grad((x: Tensor) => {
      kept = keep(x.mul(3));
      dropped = x.mul(4);
      return x.sum();
    })(f64([1, 2]));
    expect(await kept!.toArray()).toEqual([3, 6]);
    expect(messageOf(() => dropped!.dataSync())).toContain('was disposed');
    // Used in an operation, it is the leaked-tracer error.
    expect(messageOf(() => kept!.add(1))).toBe(`add: a tensor traced by vjp ${expected}`);
  });

  it('as a jit argument, assign target or value, backward root or requiresGrad target, it is that error', () => {
    const leaked = leak('grad', false);
    const message = `a tensor traced by vjp ${expected}`;
    // Before: 'internal: a traced tensor reached a top-level jit call'.
    expect(messageOf(() => jit((a: Tensor) => a.mul(2))(leaked))).toBe(`jit argument 0: ${message}`);
    // Before: 'assign: cannot assign a traced value inside vjp', though no vjp was running.
    expect(messageOf(() => f64([0, 0]).assign(leaked))).toBe(`assign: ${message}`);
    expect(messageOf(() => leaked.assign(f64([0, 0])))).toBe(`assign: ${message}`);
    // Before: 'backward: this tensor does not require grad'.
    expect(messageOf(() => leaked.sum().backward())).toBe(`sum: ${message}`);
    expect(messageOf(() => leaked.backward(f64([1, 1])))).toBe(`backward: ${message}`);
    expect(messageOf(() => { leaked.requiresGrad = true; })).toBe(`requiresGrad: ${message}`);
  });

  it('backward() on a live tracer says to use grad or vjp (before: "this tensor does not require grad")', () => {
    const message = messageOf(() => grad((x: Tensor) => { x.sum().backward(); return x.sum(); })(f64([1, 2])));
    expect(message).toBe('backward: cannot be called on a tensor traced by vjp; inside a transformation use grad or vjp (backward() differentiates concrete tensors that require grad)');
    // Also when an outer tensor requires grad: the tracer's own graph is the transformation's.
    const w = f64([1, 2]);
    w.requiresGrad = true;
    expect(messageOf(() => vmap((x: Tensor) => { x.mul(w).sum().backward(); return x; })(f64([[1, 2]])))).toBe(message.replace('vjp;', 'vmap;'));
    expect(w.grad).toBeNull();
  });
});

describe('misuse of the functional API names the transformation', () => {
  it('a transformed value that is not a function (before: "f is not a function", when called)', () => {
    const x = f64([1, 2]);
    const notFn = 5 as never;
    expect(messageOf(() => grad(notFn))).toBe('grad: expected a function, got number');
    expect(messageOf(() => valueAndGrad(null as never))).toBe('valueAndGrad: expected a function, got null');
    expect(messageOf(() => gradOf(notFn))).toBe('gradOf: expected a function, got number');
    expect(messageOf(() => vjp(notFn, x))).toBe('vjp: expected a function, got number');
    expect(messageOf(() => jvp(notFn, [x], [x]))).toBe('jvp: expected a function, got number');
    expect(messageOf(() => hvp(notFn, [x], [x]))).toBe('hvp: expected a function, got number');
    expect(messageOf(() => jacobian(notFn))).toBe('jacobian: expected a function, got number');
    expect(messageOf(() => hessian(notFn))).toBe('hessian: expected a function, got number');
  });

  it('a function that does not return a tensor (before: "vjp: ..." from grad and jacobian, a TypeError on reduce from jacobian fwd)', () => {
    const x = f64([1, 2]);
    const returnsArray = ((a: Tensor) => [a.sum()]) as never;
    expect(messageOf(() => grad(returnsArray)(x))).toBe('grad: the function must return a Tensor, got object');
    expect(messageOf(() => valueAndGrad(((a: Tensor) => 3) as never)(x))).toBe('valueAndGrad: the function must return a Tensor, got number');
    expect(messageOf(() => grad((async (a: Tensor) => a.sum()) as never)(x))).toContain('grad: the function returned a Promise; it must be synchronous');
    expect(messageOf(() => jacobian(returnsArray)(x))).toBe('jacobian: the function must return a Tensor, got object');
    expect(messageOf(() => jacobian(returnsArray, { mode: 'fwd' })(x))).toBe('jacobian: the function must return a Tensor, got object');
    expect(messageOf(() => jacobian(returnsArray, { mode: 'fwd' })(f64([])))).toBe('jacobian: the function must return a Tensor, got object');
    expect(messageOf(() => vjp(returnsArray, x))).toBe('vjp: the function must return a Tensor, got object');
  });

  it('jvp of a function that returns neither a tensor nor an array of tensors says that both are accepted', () => {
    // Was 'jvp: the function must return a Tensor, got object', for an object and for a nested
    // array alike: it read as if the array of tensors that jvp accepts were refused.
    const x = f64([1, 2]);
    const accepted = 'jvp: the function must return a Tensor or an array of tensors, got';
    expect(messageOf(() => jvp(((a: Tensor) => ({ y: a })) as never, [x], [x]))).toBe(`${accepted} object`);
    expect(messageOf(() => jvp(((a: Tensor) => 3) as never, [x], [x]))).toBe(`${accepted} number`);
    expect(messageOf(() => jvp(((a: Tensor) => [a, [a]]) as never, [x], [x]))).toBe(`${accepted} an array whose element 1 is a nested array`);
    expect(messageOf(() => jvp(((a: Tensor) => [a, null]) as never, [x], [x]))).toBe(`${accepted} an array whose element 1 is null`);
    expect(messageOf(() => jvp((async (a: Tensor) => a) as never, [x], [x]))).toContain('jvp: the function returned a Promise; it must be synchronous');
    // What it accepts: a tensor, or an array of them (the tangents in the same form).
    const [ys, ts] = jvp((a: Tensor) => [a.mul(2), a.sum()], [x], [x]);
    expect(ys.map((y) => Array.from(y.dataSync()))).toEqual([[2, 4], [3]]);
    expect(ts.map((t) => Array.from(t.dataSync()))).toEqual([[2, 4], [3]]);
  });

  it('jvp and hvp with primals or tangents that are not arrays of tensors (before: TypeErrors on forEach, map and join)', () => {
    const x = f64([1, 2]);
    const f = (a: Tensor) => a.square().sum();
    expect(messageOf(() => jvp(f, x as never, [x]))).toBe('jvp: primals must be an array of tensors, one per argument of f (e.g. jvp(f, [x], [v])), got a Tensor');
    expect(messageOf(() => jvp(f, [x], x as never))).toBe('jvp: tangents must be an array of tensors, one per argument of f (e.g. jvp(f, [x], [v])), got a Tensor');
    expect(messageOf(() => jvp(f, [x], [1 as never]))).toBe('jvp: argument 0 tangent must be a Tensor, got number');
    expect(messageOf(() => hvp(f, x as never, x as never))).toBe('hvp: primals must be an array of tensors, one per argument of f (e.g. hvp(f, [x], [v])), got a Tensor');
    expect(messageOf(() => hvp(f, [x], null as never))).toBe('hvp: tangents must be an array of tensors, one per argument of f (e.g. hvp(f, [x], [v])), got null');
  });
});

describe("a transformation's result is a tensor of its own", () => {
  it('vjp of a function returning its argument or a tensor it closes over gives a new tensor: disposing it leaves the input (as jvp and grad)', async () => {
    const x = f64([1, 2]);
    const c = f64([7, 8]);
    // The identity's gradient is the cotangent; a closed-over tensor's is zero.
    for (const [f, expected] of [[(a: Tensor) => a, [1, 1]], [(_a: Tensor) => c, [0, 0]]] as const) {
      const before = memory().tensors;
      const [value, pullback] = vjp(f, x);
      expect(value === x || value === c).toBe(false);
      value.dispose();
      expect(x.isDisposed || c.isDisposed).toBe(false);
      const ct = f64([1, 1]);
      const [g] = pullback(ct);
      expect(Array.from(await g!.data())).toEqual(expected);
      g!.dispose();
      ct.dispose();
      expect(memory().tensors).toBe(before);
    }
    expect(Array.from(await x.data())).toEqual([1, 2]);
    expect(Array.from(await c.data())).toEqual([7, 8]);
  });

  it('so is every tensor of a nested result: jvp of f returning a list, an aux that is an input, nested vmap outputs', async () => {
    // Only a top-level result or a flat array's entries were copied: these came back as the
    // caller's own tensors, and disposing the result freed them.
    const a = f64([1, 2]);
    const t = f64([3, 4]);
    const side = f64([5, 6]);
    const results: [string, () => unknown][] = [
      ['jvp(a => [a])', () => jvp((x: Tensor) => [x] as never, [a], [t])],
      ['jvp(a => [side, sin a])', () => jvp((x: Tensor) => [side, x.sin()] as never, [a], [t])],
      ['valueAndGrad with the input as aux', () => valueAndGrad((x: Tensor) => [x.sum(), x] as never, { hasAux: true })(a)],
      ['vmap returning [[a]]', () => vmap((x: Tensor) => [[x]] as never)(a)],
    ];
    for (const [name, run] of results) {
      const before = memory().tensors;
      const out = run();
      const tensors: Tensor[] = [];
      const walk = (v: unknown): void => {
        if (v instanceof Object && 'dispose' in v && 'shape' in v) tensors.push(v as Tensor);
        else if (Array.isArray(v)) v.forEach(walk);
      };
      walk(out);
      expect(tensors.some((x) => x === a || x === t || x === side), name).toBe(false);
      for (const x of tensors) x.dispose();
      expect([a, t, side].map((x) => x.isDisposed), name).toEqual([false, false, false]);
      expect(memory().tensors, name).toBe(before);
    }
    expect(Array.from(await a.data())).toEqual([1, 2]);
  });
});

describe('jacobian and hessian of a function of several arguments', () => {
  it('differentiate the first and pass the others as constants (before: f got undefined for them)', async () => {
    const x = f64([1, 2]);
    const y = f64([3, 5]);
    for (const mode of ['rev', 'fwd'] as const) {
      // ∂(a ⊙ b)/∂a = diag(b)
      const J = jacobian((a: Tensor, b: Tensor) => a.mul(b), { mode })(x, y);
      expect(J.shape).toEqual([2, 2]);
      expect(await J.toArray()).toEqual([[3, 0], [0, 5]]);
    }
    // ∂²(Σ a² b)/∂a² = diag(2b)
    const H = hessian((a: Tensor, b: Tensor) => a.square().mul(b).sum())(x, y);
    expect(await H.toArray()).toEqual([[6, 0], [0, 10]]);
  });
});

describe('an in-place update (assign) of a tensor a recorded graph saved', () => {
  const stale = (what: string, prim: string) =>
    `backward: the ${what} [2] float64 of '${prim}' was modified in place (assign) after the operation was recorded, so the recorded gradient no longer holds; run the backward pass before the update, or compute again from the updated tensor`;

  it('makes backward() an error, as in PyTorch (before: the gradient at the new values, [10, 12] for 2x at x = [1, 2])', () => {
    const x = f64([1, 2]);
    x.requiresGrad = true;
    const loss = x.mul(x).sum();
    noGrad(() => x.assign(f64([5, 6])));
    const live = memory().tensors;
    expect(messageOf(() => loss.backward())).toBe(stale('input', 'mul'));
    expect(x.grad).toBeNull();
    expect(memory().tensors).toBe(live); // the refused pass made nothing
  });

  it('of a computed tensor, its graph no longer describes it (before: a gradient through the overwritten mul)', () => {
    const x = f64([1, 2]);
    x.requiresGrad = true;
    const y = x.mul(2);
    noGrad(() => y.assign(f64([5, 6])));
    expect(messageOf(() => y.square().sum().backward())).toBe(stale('output', 'mul'));
    expect(x.grad).toBeNull();
  });

  it('by a jit program, or before a vjp pullback runs, is the same error', () => {
    const x = f64([1, 2]);
    x.requiresGrad = true;
    const loss = x.exp().sum();
    noGrad(() => jit((p: Tensor) => { p.assign(p.mul(2)); })(x));
    expect(messageOf(() => loss.backward())).toBe(stale('input', 'exp'));
    const a = f64([1, 2]);
    const [, pullback] = vjp((t: Tensor) => t.mul(t).sum(), a);
    a.assign(f64([3, 4]));
    expect(messageOf(() => pullback(f64(1)))).toBe(stale('input', 'mul'));
  });

  it('after backward(), as a training step does, is fine, and the next step sees the new values', async () => {
    const w = f64([1, 2]);
    w.requiresGrad = true;
    for (const expected of [[2, 4], [4, 8]]) {
      w.mul(w).sum().backward(); // ∂Σw²/∂w = 2w
      expect(await w.grad!.toArray()).toEqual(expected);
      noGrad(() => w.assign(w.mul(2)));
      w.grad!.dispose();
      w.grad = null;
    }
  });
});

describe('requiresGrad', () => {
  it('takes a boolean (before: "yes" turned recording on, 0 turned it off)', () => {
    const x = f64([1, 2]);
    expect(messageOf(() => { x.requiresGrad = 'yes' as never; })).toBe('requiresGrad: must be true or false, got "yes"');
    expect(messageOf(() => { x.requiresGrad = 1 as never; })).toBe('requiresGrad: must be true or false, got 1');
    expect(x.requiresGrad).toBe(false);
  });
});

describe('checkGrads', () => {
  it('names a non-function and arguments not in an array (before: "f is not a function", "args.entries is not a function")', async () => {
    const x = f64([1, 2]);
    await expect(checkGrads(5 as never, [x])).rejects.toThrow('checkGrads: expected a function, got number');
    await expect(checkGrads((a: Tensor) => a.sin(), x as never)).rejects.toThrow(
      'checkGrads: args must be an array of tensors, one per argument of f (e.g. checkGrads(f, [x])), got a Tensor',
    );
  });
});

describe('a .grad set by the user', () => {
  it('must have its tensor\'s shape and dtype: one that would broadcast is refused before the pass', () => {
    const x = f64([[1, 2], [3, 4]]);
    x.requiresGrad = true;
    const y = f64([5, 6]);
    y.requiresGrad = true;
    // PyTorch refuses assigning x.grad of another size; added to ∂l/∂x = 2x, [1] broadcast to [2, 2].
    x.grad = f64([1]);
    const l = x.mul(x).sum().add(y.sum());
    const before = memory().tensors;
    expect(() => l.backward()).toThrow(/^backward: the \.grad of a float64 \[2,2\] tensor on 'cpu' is float64 \[1\] on 'cpu'; a \.grad must have its tensor's shape, dtype and device/);
    // Nothing was accumulated or made: y.grad is untouched and no tensor is left behind.
    expect(y.grad).toBeNull();
    expect(memory().tensors).toBe(before);
    x.grad.dispose();
    x.grad = tensor([[1, 1], [1, 1]], { dtype: 'float32' });
    expect(() => l.backward()).toThrow(/is float32 \[2,2\] on 'cpu'/);
    // One that fits accumulates, as documented.
    x.grad.dispose();
    x.grad = f64([[1, 1], [1, 1]]);
    l.backward();
    expect(Array.from(x.grad.dataSync())).toEqual([3, 5, 7, 9]);
    expect(Array.from(y.grad!.dataSync())).toEqual([1, 1]);
  });
});

describe('a disposed or non-tensor .grad', () => {
  it('is refused by backward before any leaf accumulates (it failed midway, after other .grads had been added to)', () => {
    // docs/autograd.md: a .grad is reset by disposing it and setting it to null. Disposed but
    // left set, it failed in the sum with the new cotangent ('add: first operand ... was
    // disposed'), after b, earlier in the reverse order, had already taken its cotangent: b.grad
    // went from [10, 10] to [11, 12], and a second backward after the fix added it twice.
    const a = f64([1, 2]);
    const b = f64([3, 4]);
    a.requiresGrad = true;
    b.requiresGrad = true;
    const l = a.mul(b).sum();
    b.grad = f64([10, 10]);
    a.grad = f64([0, 0]);
    a.grad.dispose();
    const before = memory().tensors;
    expect(() => l.backward()).toThrow(
      new Error("backward: the .grad of a float64 [2] tensor on 'cpu' was disposed (by dispose() or tidy()); set it to null after disposing it to start again"),
    );
    expect(Array.from(b.grad.dataSync())).toEqual([10, 10]);
    expect(memory().tensors).toBe(before);
    // Not a tensor: it failed inside add ('Cannot read properties of undefined').
    a.grad = [1, 2] as never;
    expect(() => l.backward()).toThrow(
      new TypeError("backward: the .grad of a float64 [2] tensor on 'cpu' is [1,2], not a Tensor; a .grad is a tensor of its tensor's shape, dtype and device, or null"),
    );
    expect(Array.from(b.grad.dataSync())).toEqual([10, 10]);
    // Set to null, as documented, the pass runs: ∂l/∂a = b, ∂l/∂b = a added to b.grad.
    a.grad = null;
    l.backward();
    expect(Array.from(a.grad!.dataSync())).toEqual([3, 4]);
    expect(Array.from(b.grad.dataSync())).toEqual([11, 12]);
  });
});

describe('backward() of a disposed tensor', () => {
  it('is refused by name: it ran on (exp) or blamed an intermediate its op had freed with it (softplus)', () => {
    const w = f64([1, 2]);
    w.requiresGrad = true;
    const refused = new Error('backward: the tensor it was called on, a float64 [] tensor, was disposed (by dispose() or tidy()) and cannot be used');
    // softplus is a composite op: disposing its result frees its intermediates, so the pass
    // failed as 'a tensor saved for the gradient of 'sum' was disposed ... inside the same tidy()'.
    const s = softplus(w);
    const y = s.sum();
    s.dispose();
    y.dispose();
    expect(() => y.backward()).toThrow(refused);
    // exp saves only what the pass needs, which is alive: the pass ran and filled w.grad.
    const z = w.exp().sum();
    z.dispose();
    expect(() => z.backward()).toThrow(refused);
    expect(w.grad).toBeNull();
  });
});

describe('backward() over a disposed tensor the graph saved', () => {
  it('is refused before any leaf accumulates (a leaf earlier in the order had its .grad)', () => {
    const [a, b] = [f64([1, 2]), f64([3, 4])];
    a.requiresGrad = true;
    b.requiresGrad = true;
    const h = b.exp();
    const l = h.exp().sum().add(a.sum());
    h.dispose();
    expect(() => l.backward()).toThrow(
      new Error("backward: a tensor saved for the gradient of 'exp' was disposed (by dispose() or tidy()); run the backward pass inside the same tidy() as the forward pass"),
    );
    expect([a.grad, b.grad]).toEqual([null, null]);
    // A leaf disposed by hand is named as such, not as a tensor saved by an op.
    const w = f64([1, 2]);
    w.requiresGrad = true;
    const m = w.mul(w).sum();
    w.dispose();
    expect(() => m.backward()).toThrow(
      "backward: the float64 [2] tensor that requires grad, an input of 'mul', was disposed (by dispose() or tidy()) before backward(); dispose it after the backward pass",
    );
  });
});

describe('backward() that fails midway, and branches it never reaches', () => {
  it('delivers no .grad when a rule throws after another leaf\'s cotangent is complete', () => {
    const [w1, w2] = [f64([1, 2]), f64([1, 2])];
    w1.requiresGrad = true;
    w2.requiresGrad = true;
    const bad = customVjp((a: Tensor) => a.mul(3), { backward: () => { throw new Error('boom'); } });
    const l = bad(w2.mul(2)).sum().add(w1.mul(2).sum());
    expect(() => l.backward()).toThrow('boom');
    expect([w1.grad, w2.grad]).toEqual([null, null]);
  });

  it('runs over a disposed tensor on a branch no cotangent reaches (a custom rule returning null for it)', () => {
    const w = f64([1, 2, 3]);
    w.requiresGrad = true;
    const h = tidy(() => w.mul(2).exp()); // exp's saved input is freed by the tidy
    const g = customVjp((a: Tensor, b: Tensor) => a.mul(b), { backward: (saved: Tensor[], ct: Tensor) => [null, ct.mul(saved[0]!)] });
    g(h, w).sum().backward();
    expect(Array.from(w.grad!.dataSync())).toEqual(Array.from(h.dataSync()));
  });

  it('skips the .grad check of a leaf frozen since the forward pass', () => {
    const [a, b] = [f64([1, 2]), f64([3, 4])];
    a.requiresGrad = true;
    b.requiresGrad = true;
    const l = a.mul(b).sum();
    a.grad = f64([0, 0]);
    a.grad.dispose();
    a.requiresGrad = false;
    l.backward();
    expect(Array.from(b.grad!.dataSync())).toEqual([1, 2]);
  });
});

describe('the .grad a backward() replaces', () => {
  it('is freed saying so: a reference kept to it, or a tensor set as .grad by hand, fails naming backward()', async () => {
    // PyTorch adds in place (x.grad is the same tensor); here the sum is a new tensor, and the
    // old one failed as 'disposed (by dispose() or tidy())', which the user had not called.
    const y = f64([1, 2]);
    y.requiresGrad = true;
    y.square().sum().backward();
    const first = y.grad!;
    y.mul(3).sum().backward();
    expect(Array.from(y.grad!.dataSync())).toEqual([5, 7]);
    await expect(first.toArray()).rejects.toThrow(/was disposed \(by backward\(\), which replaced it as \.grad with a new tensor holding the sum; read \.grad again after each backward\(\)\)/);
  });

  it('is not made for a leaf whose requiresGrad was turned off after the forward pass (PyTorch skips it)', () => {
    const w = f64([1, 2]);
    w.requiresGrad = true;
    const l = w.mul(3).sum();
    w.requiresGrad = false;
    l.backward();
    expect(w.grad).toBeNull();
    // Turned on again, it accumulates as before.
    w.requiresGrad = true;
    l.backward();
    expect(Array.from(w.grad!.dataSync())).toEqual([3, 3]);
  });

  it('when the loss read it (x.grad·x, docs/autograd.md), goes with that loss: it stayed alive after every tidy and dispose', async () => {
    // backward() took the old .grad out of every scope when it set it, and kept it after the pass
    // because the graph had saved it: nothing freed it (one [2] tensor a step, and under
    // createGraph the pass it came from with it).
    const step = (createGraph: boolean) => tidy(() => {
      const p = f64([1, -2]);
      p.requiresGrad = true;
      p.square().sum().backward(undefined, { createGraph }); // p.grad = 2p
      const loss = p.grad!.mul(p).sum(); // 2p·p
      loss.backward(); // p.grad = 2p + (2p + 2p under createGraph, which reaches p through the old .grad)
      return Array.from(p.grad!.dataSync());
    });
    for (const createGraph of [false, true]) {
      const expected = createGraph ? [6, -12] : [4, -8];
      expect(step(createGraph)).toEqual(expected);
      const before = memory().tensors;
      for (let i = 0; i < 3; i++) expect(step(createGraph)).toEqual(expected);
      expect(memory().tensors).toBe(before);
    }
    // Outside a tidy: freed with the loss, after the pass that read it.
    const p = f64([1, -2]);
    p.requiresGrad = true;
    const before = memory().tensors;
    const m1 = p.square();
    const first = m1.sum();
    first.backward();
    const old = p.grad!;
    const m2 = old.mul(p);
    const l2 = m2.sum();
    l2.backward();
    expect(old.isDisposed).toBe(false);
    expect(Array.from(p.grad!.dataSync())).toEqual([4, -8]);
    for (const t of [m1, first, m2, l2]) t.dispose();
    expect(old.isDisposed).toBe(true);
    p.grad!.dispose();
    p.grad = null;
    expect(memory().tensors).toBe(before);
  });

  it('stays while another graph that read it can still run backward: a second loss in the same tidy, the new .grad of a createGraph pass', () => {
    // Tied to the first loss alone, it was freed with that loss while these still read it.
    const twoLosses = tidy(() => {
      const p = f64([1, -2]);
      p.requiresGrad = true;
      p.square().sum().backward(); // p.grad = 2p
      const old = p.grad!;
      const l1 = old.mul(p).sum();
      const l2 = old.mul(p).mul(2).sum();
      l1.backward(); // + 2p
      l1.dispose();
      l2.backward(); // + 4p
      return Array.from(p.grad!.dataSync());
    });
    expect(twoLosses).toEqual([8, -16]);
    // Outside a tidy: the new .grad's graph (createGraph) reads the old one through its sum.
    const p = f64([1, -2]);
    p.requiresGrad = true;
    const first = p.square().sum();
    first.backward(undefined, { createGraph: true }); // p.grad = 2p, differentiable
    const m = p.grad!.mul(p);
    const loss = m.sum();
    loss.backward(undefined, { createGraph: true }); // p.grad = 2p + 4p, reads the old .grad
    for (const t of [first, m, loss]) t.dispose();
    const g = p.grad!;
    p.grad = null;
    const s = g.sum();
    s.backward(); // d/dp Σ 6p = 6
    expect(Array.from(p.grad!.dataSync())).toEqual([6, 6]);
  });
});

describe('jit on a tensor of the ambient graph (run eagerly)', () => {
  it('leaves only its result, as the compiled call and every op do (each call left its intermediates)', () => {
    const w = f64([0.1, -0.2, 0.3, 0.4, -0.5, 0.6]);
    w.requiresGrad = true;
    const x = f64([1, 2, 3, -1, 0, 1]);
    const f = jit((v: Tensor) => softplus(v.mul(x)).sum());
    const eager = (v: Tensor) => softplus(v.mul(x)).sum();
    const l0 = eager(w);
    l0.backward();
    const expected = Array.from(w.grad!.dataSync());
    l0.dispose();
    w.grad!.dispose();
    w.grad = null;
    const before = memory().tensors;
    for (let i = 0; i < 5; i++) {
      const l = f(w);
      l.backward();
      expect(Array.from(w.grad!.dataSync())).toEqual(expected);
      l.dispose();
      w.grad!.dispose();
      w.grad = null;
    }
    expect(memory().tensors).toBe(before);
  });

  it('runs f as the caller\'s code: a view f disposes is its own, and a Map of results is refused as the trace refuses it', () => {
    const x = f64([1, 2, 3]);
    x.requiresGrad = true;
    // Run as an op, reshape to the same shape handed back x itself, and f disposed the caller's x.
    const f = jit((v: Tensor) => {
      const y = v.reshape([3]);
      const z = y.mul(2);
      y.dispose();
      return z;
    });
    const out = f(x);
    expect(x.isDisposed).toBe(false);
    expect(Array.from(out.dataSync())).toEqual([2, 4, 6]);
    // (backward() through it refuses the y that f disposed, as the same f unjitted does.)
    expect(() => out.sum().backward()).toThrow(/^backward: a tensor saved for the gradient of 'mul' was disposed/);
    const mapped = jit((v: Tensor) => new Map([['y', v.mul(2)]]));
    expect(() => mapped(x)).toThrow(/^jit: output leaf 0 is a Map holding tensors the function computed; return tensors in arrays and plain objects/);
  });
});

describe('.grad set to null (PyTorch\'s zero_grad) inside tidy', () => {
  it('frees the gradient backward() made when that tidy ends, unless it is returned; outside a tidy it stays the caller\'s', () => {
    const w = f64([1, 2, 3]);
    w.requiresGrad = true;
    const before = memory();
    // A training loop that clears .grad without disposing it, each step in a tidy: it kept one
    // gradient a step alive (100 steps: 100 tensors).
    for (let i = 0; i < 100; i++) {
      tidy(() => {
        w.mul(w).sum().backward();
        w.assign(w.sub(w.grad!.mul(0.01)));
        w.grad = null;
      });
    }
    expect(memory()).toEqual(before);
    // A gradient penalty: the gradient taken off .grad, then differentiated (createGraph).
    const penalty = tidy(() => {
      w.mul(w).mul(w).sum().backward(undefined, { createGraph: true });
      const g = w.grad!;
      w.grad = null;
      g.mul(g).sum().backward();
      const first = Array.from(g.dataSync());
      w.grad = null;
      return first;
    });
    expect(penalty).toHaveLength(3);
    expect(memory()).toEqual(before);
    // Returned from the tidy, it is the caller's.
    const kept = tidy(() => {
      w.sum().backward();
      const g = w.grad!;
      w.grad = null;
      return g;
    });
    expect(Array.from(kept.dataSync())).toEqual([1, 1, 1]);
    kept.dispose();
    // Cleared outside any tidy, it is the caller's too: not disposed.
    const total = w.sum();
    total.backward();
    total.dispose();
    const g = w.grad!;
    w.grad = null;
    expect(Array.from(g.dataSync())).toEqual([1, 1, 1]);
    g.dispose();
    // A gradient the user set is the user's: clearing it in a tidy does not dispose it.
    const mine = f64([4, 5, 6]);
    w.grad = mine;
    tidy(() => {
      w.grad = null;
    });
    expect(Array.from(mine.dataSync())).toEqual([4, 5, 6]);
    mine.dispose();
    // The documented reset (dispose, then null) is unchanged.
    tidy(() => {
      w.sum().backward();
      w.grad!.dispose();
      w.grad = null;
    });
    expect(memory()).toEqual(before);
    w.dispose();
  });
});

describe('hasAux (JAX has_aux)', () => {
  // f returns [value, aux]: v ↦ Σv² differentiated, its squares and a count carried out.
  const f = (v: Tensor): [Tensor, { squares: Tensor; count: number; args: Tensor[] }] => {
    const squares = v.mul(v);
    return [squares.sum(), { squares, count: v.size, args: [v] }];
  };

  it('valueAndGrad returns [[value, aux], gradient] and grad [gradient, aux], the aux untraced', () => {
    const x = f64([1, 2, 3]);
    const before = memory().tensors;
    const [[value, aux], g] = valueAndGrad(f, { hasAux: true })(x);
    expect(read(value)).toEqual([14]);
    expect(read(g as Tensor)).toEqual([2, 4, 6]);
    expect(read(aux.squares)).toEqual([1, 4, 9]);
    expect(aux.count).toBe(3);
    // An argument comes back untraced, as a tensor of its own (a view of it: disposing the result
    // must not free the caller's x), not as its tracer.
    expect(aux.args[0]).not.toBe(x);
    expect(aux.args[0]!._trace).toBe(null);
    expect(read(aux.args[0]!)).toEqual([1, 2, 3]);
    const [g2, aux2] = grad(f, { hasAux: true, argnums: [0] })(x);
    expect((g2 as Tensor[]).map(read)).toEqual([[2, 4, 6]]);
    expect(read(aux2.squares)).toEqual([1, 4, 9]);
    expect(aux2.args[0]).not.toBe(x);
    // Made: value, gradient, squares, the view of x (valueAndGrad); gradient, squares, the view of x (grad): nothing else kept.
    expect(memory().tensors - before).toBe(7);
    for (const t of [value, g as Tensor, aux.squares, aux.args[0]!, ...(g2 as Tensor[]), aux2.squares, aux2.args[0]!]) t.dispose();
    expect(memory().tensors).toBe(before);
  });

  it('gives each call its own aux', () => {
    const g = grad((v: Tensor) => [v.square().sum(), v.square()] as [Tensor, Tensor], { hasAux: true });
    const first = g(f64([1, 2]));
    const second = g(f64([3, 4]));
    expect([first, second].map(([grads, aux]) => [read(grads as Tensor), read(aux)])).toEqual([[[2, 4], [1, 4]], [[6, 8], [9, 16]]]);
    const h = valueAndGrad((v: Tensor) => [v.sum(), v.mul(2)] as [Tensor, Tensor], { hasAux: true });
    expect([f64([1]), f64([5])].map((x) => read(h(x)[0][1]))).toEqual([[2], [10]]);
  });

  it('keeps an aux that reads only an outer grad\'s variable differentiable by that grad', () => {
    // The aux is read at the inner grad's level: taken as the inner grad's own tracer, its outer
    // derivative (2x) was lost.
    const outer = grad((x: Tensor) => {
      const [, aux] = grad((y: Tensor) => [y.sum(), x.square()] as [Tensor, Tensor], { hasAux: true })(f64([0.25, 0.75]));
      return (aux as Tensor).sum();
    })(f64([1.5, -2])) as Tensor;
    expect(read(outer)).toEqual([3, -4]);
  });

  it('composes: the aux stays differentiable by an outer grad, and works under jit and vmap', () => {
    const x = f64([1, 2, 3]);
    // d/dv Σ(∇f · squares) = d/dv Σ 2v³ = 6v²: the outer grad differentiates through the aux.
    const outer = grad((v: Tensor) => {
      const [g, aux] = grad(f, { hasAux: true })(v);
      return (g as Tensor).mul(aux.squares).sum();
    })(x) as Tensor;
    expect(read(outer)).toEqual([6, 24, 54]);
    const compiled = jit((v: Tensor) => {
      const [g, aux] = grad(f, { hasAux: true })(v);
      return [g as Tensor, aux.squares];
    });
    expect(compiled(x).map(read)).toEqual([[2, 4, 6], [1, 4, 9]]);
    const batched = vmap((v: Tensor) => {
      const [g, aux] = grad(f, { hasAux: true })(v);
      return { g: g as Tensor, squares: aux.squares };
    })(f64([[1, 2], [3, 4]]));
    expect(read(batched.g)).toEqual([2, 4, 6, 8]);
    expect(read(batched.squares)).toEqual([1, 4, 9, 16]);
  });

  it('refuses a function that does not return a pair, and a non-boolean hasAux', () => {
    const x = f64([1, 2]);
    expect(messageOf(() => grad((v: Tensor) => v.sum() as never, { hasAux: true })(x))).toBe(
      'grad: with hasAux the function must return a pair [value, aux] (the scalar to differentiate, then anything to carry out), got a Tensor',
    );
    expect(messageOf(() => valueAndGrad((v: Tensor) => [v.sum()] as never, { hasAux: true })(x))).toContain('got an array of 1');
    expect(messageOf(() => grad(f as never, { hasAux: 'yes' as never }))).toBe('grad: hasAux must be true or false, got "yes"');
    // Without hasAux a pair is not a tensor: the error says what it got.
    expect(messageOf(() => grad(f as never)(x))).toBe(
      'grad: the function must return a Tensor, got a pair [Tensor, object]; to differentiate the first and carry the second out, pass hasAux: true',
    );
  });
});

describe('containers the trees do not walk', () => {
  // A Map or a class instance is one leaf: its tensors were the transformation's tracers, handed
  // back to fail at their first use ('used after that transformation returned; return it from
  // the function instead', or 'was disposed' for hasAux), though the caller did return them.
  class Result {
    constructor(readonly y: Tensor) {}
  }
  const x = tensor([1, 2]);
  it('jit and hasAux refuse one holding tensors the function computed, naming the leaf', () => {
    expect(() => jit((t: Tensor) => new Map([['y', t.mul(2)]]))(x)).toThrow(/^jit: output leaf 0 is a Map holding tensors the function computed; return tensors in arrays and plain objects/);
    expect(() => jit((t: Tensor) => [t.mul(3), new Result(t.mul(2))])(x)).toThrow(/^jit: output leaf 1 is a Result holding tensors the function computed/);
    expect(() => valueAndGrad((t: Tensor) => [t.sum(), new Map([['y', t.mul(2)]])] as never, { hasAux: true })(x)).toThrow(/^valueAndGrad: aux leaf 0 is a Map holding tensors the function computed/);
  });
  it('one holding only concrete tensors, and plain objects with a key __proto__, come back as returned', () => {
    const constant = tensor([5]);
    const held = new Map([['c', constant]]);
    const [out] = jit((t: Tensor) => [held, t.mul(2)])(x) as [Map<string, Tensor>, Tensor];
    expect(out).toBe(held);
    // unflattenTree assigned '__proto__' (setting the prototype): the key was lost from results.
    const withProto = jit((t: Tensor) => Object.defineProperty({}, '__proto__', { value: t.mul(2), enumerable: true }))(x) as Record<string, Tensor>;
    expect(Object.keys(withProto)).toEqual(['__proto__']);
    expect(Array.from(withProto['__proto__']!.dataSync())).toEqual([2, 4]);
  });
});

describe('flattenTree and unflattenTree', () => {
  it('isLeaf stops the descent before an array is opened (a random key is an array)', () => {
    // Opened, a key's two words were leaves of their own: jit took them as constants and retraced for each new key.
    const isKey = (v: unknown): boolean => Array.isArray(v) && v.length === 2 && v.every((w) => typeof w === 'number');
    const { leaves, def } = flattenTree({ key: [3, 4], xs: [5, [6, 7]] }, isKey);
    expect(leaves).toEqual([[3, 4], 5, [6, 7]]);
    expect(treeDefKey(def)).toBe('{"key":*,"xs":[*,*]}');
    expect(unflattenTree(def, leaves)).toEqual({ key: [3, 4], xs: [5, [6, 7]] });
  });

  it('unflattenTree refuses leaves left over', () => {
    expect(() => unflattenTree({ kind: 'array', children: [{ kind: 'leaf' }] }, [1, 2])).toThrow('internal: unflattenTree used 1 of 2 leaves');
    expect(unflattenTree({ kind: 'object', keys: ['a'], children: [{ kind: 'leaf' }] }, [7])).toEqual({ a: 7 });
  });
});

describe('hasAux left out', () => {
  it('valueAndGrad of a function returning a pair says to pass hasAux, as grad does', () => {
    const x = f64([1, 2]);
    expect(messageOf(() => valueAndGrad((v: Tensor) => [v.sum(), v.mul(2)] as never)(x))).toBe(
      'valueAndGrad: the function must return a Tensor, got a pair [Tensor, Tensor]; to differentiate the first and carry the second out, pass hasAux: true',
    );
  });
});

describe('what vjp leaves allocated', () => {
  it('the value of a function that makes its output is that output: disposing it frees everything vjp made', () => {
    const x = f64([1, 2]);
    const before = memory().tensors;
    const [value] = vjp((a: Tensor) => a.neg(), x);
    expect(read(value)).toEqual([-1, -2]);
    expect(memory().tensors).toBe(before + 1);
    value.dispose();
    expect(memory().tensors).toBe(before);
  });

  it('a pullback call leaves only its cotangents: the backward pass\'s intermediates (cos a for sin) are freed', () => {
    const x = f64([0, 0]);
    const ct = f64([2, 3]);
    const [value, pullback] = vjp((a: Tensor) => a.sin(), x);
    const before = memory().tensors;
    const [g] = pullback(ct);
    expect(read(g!)).toEqual([2, 3]); // cos 0 · ct
    expect(memory().tensors).toBe(before + 1);
    g!.dispose();
    value.dispose();
  });
});

describe('the pullback of vjp', () => {
  it('refuses a cotangent of the output\'s shape but another dtype', () => {
    const [, pullback] = vjp((a: Tensor) => a.sin(), f64([1, 2, 3]));
    expect(messageOf(() => pullback(tensor([1, 2, 3])))).toBe('vjp: the cotangent must match the output (float64 [3]), got float32 [3]');
  });
});

describe('jvp and hvp tangent counts', () => {
  it('more tangents than primals is an error, not the extra ones ignored', () => {
    const x = f64([1, 2]);
    expect(messageOf(() => jvp((a: Tensor) => a.sin(), [x], [x, x]))).toBe('jvp: expected one tangent per primal (1), got 2');
    expect(messageOf(() => hvp((a: Tensor) => a.mul(a).sum(), [x], [x, x]))).toBe('hvp: expected one tangent per primal (1), got 2');
  });
});

describe('backward(): the cotangents it hands out', () => {
  it("the gradient passed in stays the caller's: .grad is its own tensor, and a second pass does not free it", () => {
    // add passes its cotangent through unchanged, so the cotangent reaching x is `g` itself.
    const x = f64([1, 2]);
    x.requiresGrad = true;
    const g = f64([3, 4]);
    x.add(f64([10, 20])).backward(g);
    expect(x.grad).not.toBe(g);
    expect(read(x.grad!)).toEqual([3, 4]);
    x.add(f64([10, 20])).backward(g); // accumulates: the old .grad is replaced and freed
    expect(read(x.grad!)).toEqual([6, 8]);
    expect(g.isDisposed).toBe(false);
    expect(read(g)).toEqual([3, 4]);
  });

  it('under createGraph, two leaves reached by one cotangent get a .grad each: freeing one leaves the other', () => {
    // add hands its cotangent to both operands: the same tensor reaches a and b.
    const a = f64([1, 2]);
    const b = f64([3, 4]);
    a.requiresGrad = true;
    b.requiresGrad = true;
    a.add(b).backward(f64([5, 6]), { createGraph: true });
    expect(a.grad).not.toBe(b.grad);
    a.grad!.dispose();
    expect(read(b.grad!)).toEqual([5, 6]);
  });

  it('a one-element output of any rank needs no gradient argument, as in PyTorch', () => {
    const x = f64([[3]]);
    x.requiresGrad = true;
    x.mul(x).backward(); // a [1, 1] output, seeded with 1
    expect(read(x.grad!)).toEqual([6]);
  });

  it('a vjp pullback run on a cotangent that requires grad keeps what the ambient graph recorded, so backward() through it works', () => {
    // x̄ = w·cos x: the cos x the pullback made is saved by the recorded mul, so it must outlive
    // the pullback; ∂Σ(w·cos x)/∂w = cos x. Both sides are the same float64 cos kernel on the same
    // values, so the comparison is exact.
    const x = f64([1, 2]);
    const w = f64([2, 3]);
    w.requiresGrad = true;
    const [, back] = vjp((t: Tensor) => t.sin(), x);
    const [gx] = back(w);
    expect(read(gx!)).toEqual(read(x.cos().mul(w.detach())));
    gx!.sum().backward();
    expect(read(w.grad!)).toEqual(read(x.cos()));
  });
});
