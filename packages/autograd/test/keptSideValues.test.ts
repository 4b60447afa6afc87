// A side value kept with `keep` inside a transformation (grad, valueAndGrad, vjp, jvp, vmap,
// jacobian, nested ones) is a tracer: it has no storage of its own, and `keep` exempts the values
// it stands for from the scopes that would have freed them. Disposing it frees exactly those of
// them the transformation made, once nothing else holds them: not the caller's arguments, tangents
// or closed-over tensors, not values the transformation also returned, and not values a pending
// `vjp` pullback saved (those go with the scope the pullback's forward values belong to).
// Float64 on the CPU; every expected value is exact.

import { describe, expect, it } from 'vitest';
import { type Tensor, keep, memory, tensor, tidy } from '@scorch/tensor';
import { grad, jacobian, jit, jvp, valueAndGrad, vjp, vmap } from '@scorch/autograd';

const f64 = (data: Parameters<typeof tensor>[0]) => tensor(data, { dtype: 'float64' });

/** Runs `call` once to warm up, then three times: the live tensor count must not grow. */
async function flat(what: string, call: () => Promise<void> | void): Promise<void> {
  await call();
  const before = memory().tensors;
  for (let i = 0; i < 3; i++) await call();
  expect(memory().tensors, what).toBe(before);
}

describe('disposing a kept side value', () => {
  it('frees what the transformation made for it (before: +1 tensor a grad call, +2 a jvp call, for good)', async () => {
    const x = f64([1, 2]);
    const v = f64([1, 1]);
    const rows = f64([[1, 2], [3, 4]]);
    let side: Tensor | undefined;
    const calls: [string, () => Promise<void>][] = [
      ['grad', async () => {
        const g = grad((a: Tensor) => { side = keep(a.mul(3)); return side.sum(); })(x);
        expect(await side!.toArray()).toEqual([3, 6]);
        side!.dispose();
        g.dispose();
      }],
      ['valueAndGrad with hasAux', async () => {
        const [[y, aux], g] = valueAndGrad((a: Tensor) => { side = keep(a.mul(3)); return [side.sum(), a.mul(2)] as [Tensor, Tensor]; }, { hasAux: true })(x);
        expect(await side!.toArray()).toEqual([3, 6]);
        side!.dispose();
        for (const t of [y, aux, g as Tensor]) t.dispose();
      }],
      ['jvp', async () => {
        const [y, dy] = jvp((a: Tensor) => { side = keep(a.mul(3)); return a.sum(); }, [x], [v]);
        expect(await side!.toArray()).toEqual([3, 6]);
        side!.dispose();
        y.dispose();
        dy.dispose();
      }],
      ['vjp (in a tidy, as its forward values need)', async () => {
        tidy(() => {
          const [y, pullback] = vjp((a: Tensor) => { side = keep(a.mul(3)); return a.sum(); }, x);
          pullback(f64(1));
          return y;
        }).dispose();
        expect(await side!.toArray()).toEqual([3, 6]);
        side!.dispose();
      }],
      ['vmap', async () => {
        const out = vmap((r: Tensor) => { side = keep(r.mul(3)); return r.sum(); })(rows) as Tensor;
        side!.dispose();
        out.dispose();
      }],
      ['jacobian fwd', async () => {
        jacobian((a: Tensor) => { side = keep(a.mul(3)); return a.mul(a); }, { mode: 'fwd' })(x).dispose();
        side!.dispose();
      }],
      ['jacobian rev', async () => {
        jacobian((a: Tensor) => { side = keep(a.mul(3)); return a.mul(a); })(x).dispose();
        side!.dispose();
      }],
      ['disposed inside f, while grad runs (its backward pass reads it after)', async () => {
        const g = grad((a: Tensor) => {
          side = keep(a.mul(a));
          const y = side.mul(a).sum(); // mul's gradient reads side's value after f returned
          side.dispose();
          return y;
        })(x);
        expect(await g.toArray()).toEqual([3, 12]); // d(a³)/da
        g.dispose();
      }],
    ];
    for (const [what, call] of calls) await flat(what, call);
  });

  it('nested: kept in grad inside jvp, and in jvp inside grad returned by the inner jvp (before, and with the reverted fix: +2 a call)', async () => {
    const x = f64([1, 2]);
    const v = f64([1, 1]);
    let side: Tensor | undefined;
    await flat('grad in jvp', async () => {
      const [y, dy] = jvp((u: Tensor) => grad((a: Tensor) => { side = keep(a.mul(u)); return side.sum(); })(u), [x], [v]);
      expect(await side!.toArray()).toEqual([1, 4]);
      side!.dispose();
      y.dispose();
      dy.dispose();
    });
    await flat('jvp in grad, returned by jvp', async () => {
      const g = grad((u: Tensor) => {
        const [p, t] = jvp((a: Tensor) => (side = keep(a.mul(2))), [u], [u]);
        return p.mul(t).sum();
      })(x);
      expect(await g.toArray()).toEqual([8, 16]); // d(2u·2u)/du
      expect(await side!.toArray()).toEqual([2, 4]);
      side!.dispose();
      g.dispose();
    });
    // Disposed in the other order: the outputs first, the side value after.
    await flat('grad in jvp, side disposed last', async () => {
      const [y, dy] = jvp((u: Tensor) => grad((a: Tensor) => { side = keep(a.mul(u)); return side.sum(); })(u), [x], [v]);
      y.dispose();
      dy.dispose();
      expect(await side!.toArray()).toEqual([1, 4]);
      side!.dispose();
    });
  });

  it('of an argument, a tangent or a closed-over tensor leaves the caller\'s tensors alone (the reverted fix freed them)', async () => {
    const x = f64([1, 2]);
    const v = f64([1, 1]);
    const w = f64([5, 7]);
    const rows = f64([[1, 2], [3, 4]]);
    let side: Tensor | undefined;
    let sideW: Tensor | undefined;
    const check = async () => {
      expect([x.isDisposed, v.isDisposed, w.isDisposed, rows.isDisposed]).toEqual([false, false, false, false]);
      expect(await x.toArray()).toEqual([1, 2]);
      expect(await v.toArray()).toEqual([1, 1]);
      expect(await w.toArray()).toEqual([5, 7]);
    };
    await flat('grad', async () => {
      grad((a: Tensor) => { side = keep(a); sideW = keep(a.mul(0).add(w)); return a.mul(w).sum(); })(x).dispose();
      side!.dispose();
      sideW!.dispose();
      await check();
    });
    await flat('jvp, the tangent passed through add', async () => {
      const [y, dy] = jvp((a: Tensor) => { side = keep(a); sideW = keep(a.add(1)); return a.mul(w).sum(); }, [x], [v]);
      side!.dispose();
      sideW!.dispose();
      await check();
      expect([await y.item(), await dy.item()]).toEqual([19, 12]);
      y.dispose();
      dy.dispose();
    });
    await flat('vjp', async () => {
      const g = tidy(() => {
        const [, pullback] = vjp((a: Tensor) => { side = keep(a); return a.mul(w).sum(); }, x);
        side!.dispose();
        return pullback(f64(1))[0]!;
      });
      await check();
      expect(await g.toArray()).toEqual([5, 7]);
      g.dispose();
    });
    await flat('vmap', async () => {
      const out = vmap((r: Tensor) => { side = keep(r); return r.sum(); })(rows) as Tensor;
      side!.dispose();
      await check();
      expect(await rows.toArray()).toEqual([[1, 2], [3, 4]]);
      out.dispose();
    });
    // Made in a tidy around the call: the tidy still frees it, once the side value is disposed too.
    const base = memory().tensors;
    const kept = tidy(() => {
      const y = f64([3, 4]);
      grad((a: Tensor) => { side = keep(a); return a.sum(); })(y).dispose();
      return y.mul(1);
    });
    expect(await side!.toArray()).toEqual([3, 4]); // kept past the tidy that made it
    side!.dispose();
    kept.dispose();
    expect(memory().tensors).toBe(base);
  });

  it('spares what the transformation returned, in a tidy or not, disposed before or after the side value', async () => {
    const x = f64([1, 2]);
    const rows = f64([[1], [2]]);
    let side: Tensor | undefined;
    await flat('jvp returning it', async () => {
      const [y, dy] = jvp((a: Tensor) => (side = keep(a.mul(3))), [x], [x]);
      side!.dispose();
      expect([await y.toArray(), await dy.toArray()]).toEqual([[3, 6], [3, 6]]);
      y.dispose();
      dy.dispose();
    });
    await flat('vjp returning it', async () => {
      const [y, g] = tidy(() => {
        const [y, pullback] = vjp((a: Tensor) => (side = keep(a.mul(3))), x);
        side!.dispose();
        return [y, pullback(f64([1, 1]))[0]!];
      });
      expect([await y.toArray(), await g.toArray()]).toEqual([[3, 6], [3, 3]]);
      g.dispose();
      y.dispose();
    });
    await flat('vmap returning it', async () => {
      const out = vmap((r: Tensor) => (side = keep(r.mul(3))))(rows) as Tensor;
      side!.dispose();
      expect(await out.toArray()).toEqual([[3], [6]]);
      out.dispose();
    });
    await flat('valueAndGrad: the value and the aux', async () => {
      let aux: Tensor | undefined;
      const [[y, a2], g] = valueAndGrad((a: Tensor) => { side = keep(a.mul(3).sum()); aux = keep(a.mul(2)); return [side, aux] as [Tensor, Tensor]; }, { hasAux: true })(x);
      side!.dispose();
      aux!.dispose();
      expect([await y.item(), await a2.toArray(), await (g as Tensor).toArray()]).toEqual([9, [2, 4], [3, 3]]);
      for (const t of [y, a2, g as Tensor]) t.dispose();
    });
    await flat('a tidy returning jvp\'s result', async () => {
      const [y, dy] = tidy(() => jvp((a: Tensor) => (side = keep(a.mul(3))), [x], [x]));
      side!.dispose();
      expect([await y.toArray(), await dy.toArray()]).toEqual([[3, 6], [3, 6]]);
      y.dispose();
      dy.dispose();
    });
    // The other order: the results disposed first, the side value still readable.
    await flat('jvp returning it, results disposed first', async () => {
      const [y, dy] = jvp((a: Tensor) => (side = keep(a.mul(3))), [x], [x]);
      y.dispose();
      dy.dispose();
      side!.dispose();
    });
  });

  it('leaves a vjp pullback that saved it working, and both go when both are done (the reverted fix broke the pullback)', async () => {
    const x = f64([1, 2]);
    let side: Tensor | undefined;
    const f = (a: Tensor) => { side = keep(a.mul(3)); return side.mul(side).sum(); }; // mul's rule reads side
    // The side value disposed first, inside the tidy the pullback's forward values belong to.
    await flat('side first', async () => {
      const g = tidy(() => {
        const [, pullback] = vjp(f, x);
        side!.dispose();
        return pullback(f64(1))[0]!;
      });
      expect(await g.toArray()).toEqual([18, 36]); // d(9a²)/da
      g.dispose();
    });
    // The tidy first (the pullback's forward values go), then the side value, still readable.
    await flat('pullback first', async () => {
      const g = tidy(() => {
        const [, pullback] = vjp(f, x);
        return pullback(f64(1))[0]!;
      });
      expect(await side!.toArray()).toEqual([3, 6]);
      side!.dispose();
      expect(await g.toArray()).toEqual([18, 36]);
      g.dispose();
    });
  });

  it('kept twice, or kept in a tidy inside the function, goes once every holder is done', async () => {
    const x = f64([1, 2]);
    const rows = f64([[1, 2], [3, 4]]);
    let side: Tensor | undefined;
    let again: Tensor | undefined;
    await flat('two tracers keep one value', async () => {
      // add passes the tangent through: both side values hold that one tangent tensor.
      const [y, dy] = jvp((a: Tensor) => { side = keep(a.mul(3)); again = keep(side.add(0)); return a.sum(); }, [x], [x]);
      side!.dispose();
      expect(await again!.toArray()).toEqual([3, 6]);
      again!.dispose();
      y.dispose();
      dy.dispose();
    });
    await flat('kept in a tidy inside jvp', async () => {
      const [y, dy] = jvp((a: Tensor) => tidy(() => { side = keep(a.mul(3)); return a.sum(); }), [x], [x]);
      expect(await side!.toArray()).toEqual([3, 6]);
      side!.dispose();
      y.dispose();
      dy.dispose();
    });
    // Kept in a tidy inside jvp and used after it: add passes the tangent through, so the result's
    // tangent is the side value's; the tidy's end must not give up the value's stand-in.
    await flat('kept in a tidy inside jvp, its tangent returned', async () => {
      const [y, dy] = jvp((a: Tensor) => { tidy(() => { side = keep(a.mul(3)); }); return side!.add(1); }, [x], [x]);
      side!.dispose();
      expect([await y.toArray(), await dy.toArray()]).toEqual([[4, 7], [3, 6]]);
      y.dispose();
      dy.dispose();
    });
    await flat('kept in a tidy inside jvp, disposed inside f after its last use', async () => {
      const f = (a: Tensor) => { tidy(() => { side = keep(a.mul(3)); }); const z = side!.add(1); side!.dispose(); return z.mul(2); };
      const [y, dy] = jvp(f, [x], [x]);
      expect([await y.toArray(), await dy.toArray()]).toEqual([[8, 14], [6, 12]]);
      y.dispose();
      dy.dispose();
      const J = jacobian(f, { mode: 'fwd' })(x);
      expect(await J.toArray()).toEqual([[6, 0], [0, 6]]);
      J.dispose();
    });
    await flat('vmap returning it at another axis (a view of its values)', async () => {
      const out = vmap((r: Tensor) => (side = keep(r.mul(3))), { outAxes: 1 })(rows) as Tensor;
      side!.dispose();
      expect(await out.toArray()).toEqual([[3, 9], [6, 12]]);
      out.dispose();
    });
  });

  it('under jit stays what it was: a jit tracer holds no values, and nothing is left behind', async () => {
    const x = f64([1, 2]);
    let side: Tensor | undefined;
    const f = jit((a: Tensor) => { side = keep(a.mul(2)); return a.add(1); });
    await flat('jit', async () => {
      const y = f(x) as Tensor;
      side?.dispose();
      expect(await y.toArray()).toEqual([2, 3]);
      y.dispose();
    });
    const h = jit((a: Tensor) => jvp((u: Tensor) => { side = keep(u.mul(2)); return u.exp(); }, [a], [a])[1]);
    await flat('jvp in jit', async () => {
      const y = h(x) as Tensor;
      side?.dispose();
      y.dispose();
    });
  });
});
