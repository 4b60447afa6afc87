// The ambient reverse mode (`requiresGrad`, `backward()`, `.grad`, `noGrad`, `detach`) against
// the functional one (`grad`, `vjp`) on random float64 programs: the random chains of
// tests/fixtures/randomChains.ts (views, pads, concats, gathers, reductions, scans, products, a
// detached read) of one leaf, and the pair steps of tests/fixtures/pairSteps.ts of two leaves
// that broadcast, or of one leaf passed as both operands. For each program, with a random
// cotangent u_i of each output, the loss Σ_i Σ(out_i · u_i) and a random direction v:
// - backward() gives each leaf's .grad equal to grad's, bit for bit: both record the same
//   primitives with the same inputs and walk the graph in the same order with the same rules
//   (backwardPass), from a seed of ones, so every element is the same float64 arithmetic. A leaf
//   reached by no path keeps .grad null where grad gives zeros;
// - backward(u) of the last output equals vjp's pullback of u, bit for bit;
// - a second backward() through the same graph doubles .grad exactly (g + g = 2g in floating
//   point); a leaf no path reaches keeps .grad null;
// - backward(undefined, { createGraph: true }), then backward() of Σ .grad·v, gives
//   grad(x ↦ Σ grad(loss)(x)·v), the Hessian-vector product by reverse over reverse, bit for bit
//   for the same reason (the createGraph pass records the rules' ops as grad of grad's outer trace
//   does);
// - a loss plus a copy of it computed from detached leaves, plus one computed under noGrad, has
//   the loss's gradient, bit for bit (the cut terms get no cotangent; the loss's own is the seed);
//   with the second leaf detached, the first's gradient is unchanged and the second's stays null.
// Each of these runs in a tidy; afterwards, with the .grads disposed and nulled, memory() is
// where it started. Programs of single named ops (composite or primitive, every result named)
// then run without any tidy, first and second order, and disposing what they named and the
// .grads frees everything: the composed ops' intermediates that the graph kept and those of a
// createGraph backward pass go with the results that reach them.

import { describe, expect, it } from 'vitest';
import { grad, noGrad, vjp } from '@scorch/autograd';
import * as T from '@scorch/tensor';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';
import { pick, randomChain } from '../../../tests/fixtures/randomChains.js';
import { PAIR_STEPS, SPECIAL_PAIR_STEPS, type PairStep } from '../../../tests/fixtures/pairSteps.js';

const f64 = { dtype: 'float64' as const };
const SHAPES = [[20, 33], [33, 20], [6, 7, 9], [4, 5, 6, 3], [300], [16, 17], [3, 4]];
const ALL_PAIR_STEPS = [...PAIR_STEPS, ...SPECIAL_PAIR_STEPS];

/** A random program of fresh float64 leaves, and its description for failure messages. */
interface Program {
  label: string;
  leaves: T.Tensor[];
  f: (...xs: T.Tensor[]) => T.Tensor[];
}

/** Source text without line breaks and the test runner's import prefixes. */
const plain = (text: string) => text.replace(/\s+/g, ' ').replace(/\(0, ?(?:__vite_ssr_import_\d+__\.)?(\w+)\)/g, '$1').replace(/__vite_ssr_import_\d+__\./g, '');
const source = (step: (...args: never[]) => unknown) => plain(step.toString());

function chainProgram(seed: number): Program {
  const r = mulberry32(seed);
  const x = T.randn(pick(r, SHAPES), { key: T.randomKey(seed), ...f64 });
  const log: string[] = [];
  const chain = randomChain(Array.from({ length: 48 }, () => r()), { length: 6, maxSize: 60_000, log });
  chain(x); // fills the log; the caller's tidy frees the values
  return { label: `chain seed ${seed}, x [${x.shape}]: ${log.map(plain).join('; ')}`, leaves: [x], f: chain };
}

/** Pair steps of x and w, w broadcasting against x; with `oneLeaf`, x is passed as w too. */
function pairProgram(seed: number, oneLeaf: boolean): Program {
  const r = mulberry32(seed);
  const shape = pick(r, [[12, 7], [5, 16], [9, 9]]);
  const wShape = pick(r, [shape, [1, shape[1]!], [shape[0]!, 1], [shape[1]!], []]);
  const x = T.randn(shape, { key: T.randomKey(seed), ...f64 });
  const steps = Array.from({ length: 5 }, () => pick(r, ALL_PAIR_STEPS));
  const run = (x0: T.Tensor, w0: T.Tensor) => {
    let v = x0;
    return steps.map((step) => (v = step(v, w0)));
  };
  const program = steps.map(source).join('; ');
  if (oneLeaf) return { label: `pair seed ${seed}, x [${shape}] as both operands: ${program}`, leaves: [x], f: (x0) => run(x0, x0) };
  const w = T.randn(wShape, { key: T.randomKey(seed + 7), ...f64 });
  return { label: `pair seed ${seed}, x [${shape}], w [${wShape}]: ${program}`, leaves: [x, w], f: (x0, w0) => run(x0, w0!) };
}

const sameBits = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
const fmt = (a: number | undefined) => (Object.is(a, -0) ? '-0' : String(a));

/** `got` (a .grad) equals `want` bit for bit; a null .grad stands for zeros. */
function expectSame(label: string, got: T.Tensor | null, want: T.Tensor): void {
  const b = want.dataSync();
  if (got === null) {
    const k = b.findIndex((e) => e !== 0);
    expect(k, `${label}: .grad is null, but element ${k} of the functional result is ${fmt(b[k])}`).toBe(-1);
    return;
  }
  expect(got.shape, label).toEqual(want.shape);
  const a = got.dataSync();
  const k = a.findIndex((e, i) => !sameBits(e, b[i]!));
  expect(k, `${label}, element ${k}: ${fmt(a[k])} by backward(), ${fmt(b[k])} functional`).toBe(-1);
}

/** Σ_i Σ(ts_i · ws_i), from a float64 zero (as adjointFuzz's loss). */
const dot = (ts: readonly (T.Tensor | null)[], ws: readonly T.Tensor[]) =>
  ts.reduce((acc: T.Tensor, t, i) => (t ? acc.add(T.sum(t.mul(ws[i]!))) : acc), T.zeros([], f64));

/** Disposes and nulls the leaves' .grads (the reset of an accumulator). */
function resetGrads(leaves: readonly T.Tensor[]): void {
  for (const x of leaves) {
    x.grad?.dispose();
    x.grad = null;
  }
}

/** t.backward(gradient) where t is in the graph; otherwise every reference must be zero. */
function backwardOrZero(label: string, t: T.Tensor, leaves: readonly T.Tensor[], refs: readonly T.Tensor[], gradient?: T.Tensor): void {
  if (t.requiresGrad) t.backward(gradient);
  leaves.forEach((x, i) => expectSame(`${label}, leaf ${i}`, x.grad, refs[i]!));
}

/**
 * Every check of the file's header on one program, in a tidy; memory is where it started after.
 * Returns whether the second-order check ran (the gradient depends on the leaves).
 */
function checkProgram(seed: number, make: () => Program): boolean {
  let secondOrder = false;
  const before = T.memory();
  let leaves: T.Tensor[] = [];
  let label = `seed ${seed}`;
  T.tidy(() => {
    const p = make();
    leaves = p.leaves;
    label = p.label;
    const { f } = p;
    const argnums = leaves.map((_, i) => i);
    const us = f(...leaves).map((t, i) => T.randn(t.shape, { key: T.randomKey(seed * 100 + i), ...f64 }));
    const vs = leaves.map((x, i) => T.randn(x.shape, { key: T.randomKey(seed * 100 + 50 + i), ...f64 }));
    const loss = (...xs: T.Tensor[]) => dot(f(...xs), us);
    const lastOf = (...xs: T.Tensor[]) => f(...xs).at(-1)!;

    // The functional references, before any leaf requires grad.
    const g = grad(loss, { argnums })(...leaves) as T.Tensor[];
    const pulled = vjp(lastOf, ...leaves)[1](us.at(-1)!);
    const hv = grad((...xs: T.Tensor[]) => dot(grad(loss, { argnums })(...xs) as T.Tensor[], vs), { argnums })(...leaves) as T.Tensor[];
    const gx = leaves.length === 2 ? (grad(loss, { argnums: 0 })(...leaves) as T.Tensor) : null;

    for (const x of leaves) x.requiresGrad = true;
    const unreached = T.randn([3], { key: T.randomKey(seed + 3), ...f64 });
    unreached.requiresGrad = true;
    try {
      const l = loss(...leaves);
      backwardOrZero(`${label}: backward() of the loss`, l, leaves, g);
      if (l.requiresGrad) {
        backwardOrZero(`${label}: a second backward() of the loss doubles .grad`, l, leaves, g.map((t) => t.mul(2)));
      }
      resetGrads(leaves);

      backwardOrZero(`${label}: backward(u) of the last output`, lastOf(...leaves), leaves, pulled, us.at(-1));
      resetGrads(leaves);

      if (l.requiresGrad) {
        l.backward(undefined, { createGraph: true });
        const gs = leaves.map((x) => x.grad);
        if (gs.length === 2 && gs[0]) expect(gs[0] !== gs[1], `${label}: the leaves' createGraph .grads are one tensor`).toBe(true);
        leaves.forEach((x, i) => {
          expectSame(`${label}: backward({ createGraph }) of the loss, leaf ${i}`, x.grad, g[i]!);
          x.grad = null;
        });
        const l2 = dot(gs, vs);
        secondOrder = l2.requiresGrad;
        backwardOrZero(`${label}: backward() of Σ .grad·v after createGraph`, l2, leaves, hv);
        for (const t of gs) t?.dispose();
        resetGrads(leaves);
      } else {
        leaves.forEach((_, i) => expectSame(`${label}: Hessian-vector product of a loss outside the graph, leaf ${i}`, null, hv[i]!));
      }

      const cut = noGrad(() => loss(...leaves));
      expect(cut.requiresGrad, `${label}: a loss computed under noGrad`).toBe(false);
      backwardOrZero(`${label}: backward() of loss + loss(detached leaves) + loss under noGrad`, l.add(loss(...leaves.map((x) => x.detach()))).add(cut), leaves, g);
      resetGrads(leaves);
      if (gx) {
        const withW = noGrad(() => loss(leaves[0]!, leaves[1]!.detach()));
        expect(withW.requiresGrad, label).toBe(false);
        backwardOrZero(`${label}: backward() with w detached`, loss(leaves[0]!, leaves[1]!.detach()), leaves, [gx, T.zerosLike(leaves[1]!)]);
        expect(leaves[1]!.grad, `${label}: .grad of a detached leaf`).toBeNull();
        resetGrads(leaves);
      }
      expect(unreached.grad, `${label}: .grad of a leaf no path reaches`).toBeNull();
    } finally {
      resetGrads([...leaves, unreached]);
    }
  });
  expect(leaves.every((x) => x.isDisposed), label).toBe(true);
  expect(T.memory(), `${label}: memory after the tidy, the .grads disposed`).toEqual(before);
  return secondOrder;
}

/**
 * Steps of v ([rows, cols]) with w broadcasting against it, each a list of single op calls (the
 * last is the new v): every tensor a step makes is named, so a program that disposes them all
 * leaves nothing of its own behind.
 */
type NamedStep = (v: T.Tensor, w: T.Tensor) => T.Tensor[];
const NAMED_STEPS: readonly NamedStep[] = [
  (v, w) => [v.add(w)],
  (v, w) => [v.mul(w)],
  (v) => [v.mul(0.5)],
  (v) => [T.sub(1, v)],
  (v) => [T.softplus(v)],
  (v) => [T.gelu(v)],
  (v) => [T.erf(v)],
  (v) => [T.tanh(v)],
  (v) => [T.sigmoid(v)],
  (v) => [T.clamp(v, -0.5, 0.7)],
  (v, w) => [T.maximum(v, w)],
  (v, w) => [T.minimum(v, w)],
  (v) => [v.pow(3)],
  (v) => [v.abs()],
  (v) => [T.softmax(v, -1)],
  (v) => [T.logSoftmax(v, 0)],
  (v) => [T.layerNorm(v, [v.shape[1]!])],
  (v) => [T.cumsum(v, 0)],
  (v) => [T.flip(v, [1])],
  (v) => {
    const mask = v.greater(0);
    return [mask, T.where(mask, v, 0)];
  },
  (v) => {
    const m = T.max(v, 1, true);
    return [m, v.sub(m)];
  },
  (v) => {
    const s = T.logsumexp(v, 0, true);
    return [s, v.sub(s)];
  },
  (v) => {
    const s = T.variance(v, 0, { keepdims: true });
    return [s, v.mul(s)];
  },
  (v) => {
    const m = T.mean(v, 1, true);
    return [m, v.sub(m)];
  },
];

/**
 * A program of named steps of x and w, run with no tidy, first order then second (createGraph,
 * Σ .grad·v, backward, with .grad accumulating onto the createGraph gradient): values as
 * functional grad's, and after disposing every named tensor and the .grads, memory() is where it
 * started.
 */
function checkNamed(seed: number): void {
  const before = T.memory();
  const r = mulberry32(seed);
  const shape = pick(r, [[6, 5], [4, 8], [7, 7]]);
  const wShape = pick(r, [shape, [1, shape[1]!], [shape[0]!, 1], [shape[1]!], []]);
  const steps = Array.from({ length: 4 }, () => pick(r, NAMED_STEPS));
  const label = `named seed ${seed}, x [${shape}], w [${wShape}]: ${steps.map(source).join('; ')}`;
  const named: T.Tensor[] = [];
  const name = <X extends T.Tensor | T.Tensor[]>(t: X): X => {
    named.push(...(Array.isArray(t) ? t : [t]));
    return t;
  };
  const x = name(T.randn(shape, { key: T.randomKey(seed), ...f64 }));
  const w = name(T.randn(wShape, { key: T.randomKey(seed + 7), ...f64 }));
  const u = name(T.randn(shape, { key: T.randomKey(seed + 8), ...f64 }));
  const vs = name([T.randn(shape, { key: T.randomKey(seed + 9), ...f64 }), T.randn(wShape, { key: T.randomKey(seed + 10), ...f64 })]);
  // The loss of named values: Σ(last · u).
  const lossNamed = (x0: T.Tensor, w0: T.Tensor) => {
    let v = x0;
    for (const step of steps) v = name(step(v, w0)).at(-1)!;
    return name(T.sum(name(v.mul(u))));
  };
  // The references (grad leaves only its result).
  const loss = (x0: T.Tensor, w0: T.Tensor) => {
    let v = x0;
    for (const step of steps) v = step(v, w0).at(-1)!;
    return T.sum(v.mul(u));
  };
  const g = name(grad(loss, { argnums: [0, 1] })(x, w) as T.Tensor[]);
  const hv = name(grad((x0: T.Tensor, w0: T.Tensor) => dot(grad(loss, { argnums: [0, 1] })(x0, w0) as T.Tensor[], vs), { argnums: [0, 1] })(x, w) as T.Tensor[]);
  const leaves = [x, w];
  for (const t of leaves) t.requiresGrad = true;
  try {
    lossNamed(x, w).backward();
    leaves.forEach((t, i) => expectSame(`${label}: backward(), leaf ${i}`, t.grad, g[i]!));
    resetGrads(leaves);

    // Second order, the .grads left in place: backward() of Σ .grad·v adds H v to them.
    lossNamed(x, w).backward(undefined, { createGraph: true });
    const gs = leaves.map((t) => t.grad);
    name(gs.filter((gi) => gi !== null));
    let l2 = name(T.zeros([], f64));
    gs.forEach((gi, i) => {
      if (gi) l2 = name(l2.add(name(T.sum(name(gi.mul(vs[i]!))))));
    });
    if (l2.requiresGrad) {
      l2.backward();
      leaves.forEach((t, i) => {
        const what = `${label}: .grad + H v by backward() of Σ .grad·v after createGraph, leaf ${i}`;
        // A leaf this pass does not reach keeps its .grad as it was (H v is zero there).
        if (t.grad === gs[i]) expectSame(what, null, hv[i]!);
        else expectSame(what, t.grad, gs[i] ? name(gs[i]!.add(hv[i]!)) : hv[i]!);
      });
    }
    // A .grad that is still the createGraph gradient is named already.
    leaves.forEach((t, i) => {
      if (t.grad === gs[i]) t.grad = null;
    });
    resetGrads(leaves);
  } finally {
    for (const t of leaves) t.requiresGrad = false;
    resetGrads(leaves);
    for (const t of named) t.dispose();
  }
  expect(T.memory(), `${label}: memory after disposing every named tensor and the .grads`).toEqual(before);
}

describe('backward() agrees with grad and vjp on random float64 programs, and frees what it made', () => {
  it('random chains of one leaf: 400 seeds', () => {
    let secondOrder = 0;
    for (let seed = 1; seed <= 400; seed++) if (checkProgram(seed, () => chainProgram(seed))) secondOrder++;
    expect(secondOrder).toBeGreaterThan(330); // the rest are linear, or cut from the leaves
  });

  it('pair steps of two leaves that broadcast: 400 seeds', () => {
    let secondOrder = 0;
    for (let seed = 1; seed <= 400; seed++) if (checkProgram(seed, () => pairProgram(seed, false))) secondOrder++;
    expect(secondOrder).toBeGreaterThan(350); // the rest are linear, or cut from the leaves
  });

  it('pair steps of one leaf passed as both operands: 150 seeds', () => {
    let secondOrder = 0;
    for (let seed = 1; seed <= 150; seed++) if (checkProgram(seed, () => pairProgram(seed, true))) secondOrder++;
    expect(secondOrder).toBeGreaterThan(130); // the rest are linear, or cut from the leaves
  });

  it('programs of named ops with no tidy, first and second order: disposing what they named frees everything, 300 seeds', () => {
    for (let seed = 1; seed <= 300; seed++) checkNamed(seed);
  });
});
