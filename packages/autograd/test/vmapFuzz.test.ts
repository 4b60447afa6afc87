// vmap against a loop: for random float64 programs f, vmap(f) over a batch equals f applied to
// each example and the results stacked, bit for bit (each example's elements are computed by the
// same arithmetic in the same order, batched or not). The batch axis of the input is drawn at any
// position and the outputs' at 0 or 1; the programs are random chains (tests/fixtures/
// randomChains.ts: views, pads, concats, gathers, reductions and scans along any axis, products),
// their gradients and JVPs, and the pair steps of tests/fixtures/pairSteps.ts with a second
// operand that is batched or shared.

import { describe, expect, it } from 'vitest';
import { grad, jvp, vmap } from '@scorch/autograd';
import * as T from '@scorch/tensor';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';
import { pick, randomChain } from '../../../tests/fixtures/randomChains.js';
import { PAIR_STEPS, SPECIAL_PAIR_STEPS } from '../../../tests/fixtures/pairSteps.js';

/** The fixture's pair steps and an attention-like product (batched or shared operands into matmul). */
const ALL_PAIR_STEPS = [...PAIR_STEPS, ...SPECIAL_PAIR_STEPS, (v: T.Tensor, w: T.Tensor) => T.matmul(T.softmax(T.matmul(v, T.transpose(v.add(w))), -1), v)];

const f64 = { dtype: 'float64' as const };
const SHAPES = [[20, 33], [33, 20], [6, 7, 9], [4, 5, 6, 3], [300], [16, 17], [3, 4]];

/** The batch of examples of `xs` along `axis` (each a tensor without that axis). */
const examples = (x: T.Tensor, axis: number) => Array.from({ length: x.shape[axis]! }, (_, i) => T.narrow(x, axis, i, 1).squeeze(axis));

/** vmap(f)'s outputs (batch axis at outAxis) against f of each example, stacked at outAxis. */
function expectBatched(label: string, batched: readonly T.Tensor[], each: readonly (readonly T.Tensor[])[], outAxis: number): void {
  expect(batched.length, label).toBe(each[0]!.length);
  batched.forEach((got, o) => {
    const want = T.stack(each.map((outs) => outs[o]!), outAxis);
    expect(got.shape, `${label}, output ${o}`).toEqual(want.shape);
    const a = got.dataSync();
    const b = want.dataSync();
    const k = a.findIndex((v, i) => !Object.is(v, b[i]) && !(Number.isNaN(v) && Number.isNaN(b[i])));
    expect(k, `${label}, output ${o}, element ${k}: ${a[k]} batched, ${b[k]} example by example`).toBe(-1);
  });
}

type Mode = 'chain' | 'grad' | 'jvp';

function checkChain(seed: number, mode: Mode): void {
  T.tidy(() => {
    const r = mulberry32(seed);
    const shape = pick(r, SHAPES);
    const inAxis = Math.floor(r() * (shape.length + 1));
    const outAxis = Math.floor(r() * 2);
    const full = [...shape];
    full.splice(inAxis, 0, pick(r, [1, 3, 4]));
    const x = T.randn(full, { key: T.randomKey(seed), ...f64 });
    const chain = randomChain(Array.from({ length: 48 }, () => r()), { length: 6, maxSize: 60_000 });
    const total = (z: T.Tensor) => chain(z).reduce((acc, t) => acc.add(T.sum(t.mul(0.01))), T.zeros([], f64));
    const f = mode === 'grad' ? (z: T.Tensor) => [grad(total)(z) as T.Tensor] : mode === 'jvp' ? (z: T.Tensor) => jvp(chain, [z], [z.cos()])[1] : chain;
    // An output of rank 0 has no axis 1 to put the batch at.
    const axis = f(examples(x, inAxis)[0]!).every((t) => t.rank >= 1) ? outAxis : 0;
    expectBatched(`${mode} seed ${seed}, input [${full}] batched at ${inAxis}, outputs at ${axis}`, vmap(f, { inAxes: inAxis, outAxes: axis })(x), examples(x, inAxis).map(f), axis);
  });
}


/** A chain of the fixture's pair steps (tests/fixtures/pairSteps.ts) of x ([rows, cols]) and w, batched over x alone or over both. */
function checkPair(seed: number): void {
  T.tidy(() => {
    const r = mulberry32(seed);
    const shape = pick(r, [[12, 7], [5, 16], [9, 9]]);
    const wShape = pick(r, [shape, [1, shape[1]!], [shape[0]!, 1], [shape[1]!], []]);
    const shared = r() < 0.5;
    const batch = pick(r, [2, 3]);
    const x = T.randn([batch, ...shape], { key: T.randomKey(seed), ...f64 });
    const w = T.randn(shared ? wShape : [...wShape, batch], { key: T.randomKey(seed + 7), ...f64 });
    const steps = Array.from({ length: 5 }, () => pick(r, ALL_PAIR_STEPS));
    const f = (x0: T.Tensor, w0: T.Tensor) => {
      let v = x0;
      return steps.map((step) => (v = step(v, w0)));
    };
    const wAxis = shared ? null : wShape.length;
    const each = examples(x, 0).map((xi, i) => f(xi, shared ? w : T.narrow(w, wShape.length, i, 1).squeeze(wShape.length)));
    expectBatched(`pair seed ${seed}, w [${w.shape}] ${shared ? 'shared' : `batched at ${wAxis}`}`, vmap(f, { inAxes: [0, wAxis] })(x, w), each, 0);
  });
}

describe('vmap equals a loop over the examples, bit for bit', () => {
  it('random chains: 800 seeds', () => {
    for (let seed = 1; seed <= 800; seed++) checkChain(seed, 'chain');
  });

  it('gradients and JVPs of random chains: 400 seeds each', () => {
    for (let seed = 1; seed <= 400; seed++) checkChain(seed, 'grad');
    for (let seed = 1; seed <= 400; seed++) checkChain(seed, 'jvp');
  });

  it('a second operand, batched or shared, that broadcasts: 1,000 seeds', () => {
    for (let seed = 1; seed <= 1000; seed++) checkPair(seed);
  });
});
