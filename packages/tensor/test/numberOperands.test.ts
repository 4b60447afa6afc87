// A number operand outside jit (`x.add(1)`, `2 - x`) is made by the backend as one constant of
// the tensor's shape (a `full` broadcast), where the public path makes it with three primitives
// (full of shape [], reshape, expand) in a composite scope. These tests run the public path as
// the oracle: under a pass-through dynamic trace, which `jit` is the only other user of, every
// primitive goes to the backend as before, through `operands` and `scalarLike`.

import { describe, expect, it } from 'vitest';
import {
  type DType, type Tensor, add, div, equal, greater, greaterEqual,
  less, lessEqual, maximum, memory, minimum, mul, notEqual, pow, profile, sub, tensor, tensorIdCounter, tidy, withDynamicTrace,
} from '@scorch/tensor';
import { passThroughTrace } from '../../../tests/fixtures/passThroughTrace.js';

const oracle = passThroughTrace;
/** `fn` as the three-primitive path computes it (its intermediates freed by the tidy). */
const before = <T,>(fn: () => T): T => tidy(() => withDynamicTrace(oracle, fn));

type Op = (a: Tensor | number, b: Tensor | number) => Tensor;
const OPS: [string, Op][] = [
  ['add', add], ['sub', sub], ['mul', mul], ['div', div], ['pow', pow], ['maximum', maximum], ['minimum', minimum],
  ['less', less], ['lessEqual', lessEqual], ['greater', greater], ['greaterEqual', greaterEqual], ['equal', equal], ['notEqual', notEqual],
];

const TENSOR_VALUES: Record<DType, number[]> = {
  float32: [0, -0, 1, -1, 2.5, -2.5, NaN, Infinity, -Infinity, 1e-40, 3e38, 7],
  float64: [0, -0, 1, -1, 2.5, -2.5, NaN, Infinity, -Infinity, 5e-324, 1.7e308, 7],
  int32: [0, 1, -1, 7, -(2 ** 31), 2 ** 31 - 1, 3, -3, 2, 5, -8, 100],
  bool: [0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0],
};
// Numbers of each kind, some not values of the dtype (refused with the same error).
const NUMBERS: Record<DType, number[]> = {
  float32: [0, -0, 1, -1, 0.1, 2, 2.5, NaN, Infinity, -Infinity, 1e-320, 3.5e38, 1e39, -7],
  float64: [0, -0, 1, 0.1, 2, NaN, Infinity, -Infinity, 5e-324, 1.7e308, -7],
  int32: [0, -0, 3, -7, 2, 2 ** 31 - 1, -(2 ** 31), 2.5, 3e9, NaN, Infinity],
  bool: [0, 1, -0, 2, NaN],
};
const SHAPES = [[12], [3, 4], [2, 1, 6], [1, 12]];

function bits(t: Tensor): number[] {
  const d = t.dataSync();
  return Array.from(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
}
/** The op's result bits, or its error's class and message. */
function outcome(fn: () => Tensor): { dtype?: DType; shape?: readonly number[]; bits?: number[]; error?: string } {
  try {
    const y = fn();
    const r = { dtype: y.dtype, shape: [...y.shape], bits: bits(y) };
    y.dispose();
    return r;
  } catch (e) {
    return { error: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

describe('a number operand outside jit', () => {
  it('gives the bits and errors of the three-primitive path, for every binary op, dtype and side', () => {
    let compared = 0;
    for (const dtype of ['float32', 'float64', 'int32', 'bool'] as DType[]) {
      for (const shape of SHAPES) {
        const x = tensor(TENSOR_VALUES[dtype], { dtype, shape });
        const scalar = tensor(TENSOR_VALUES[dtype][2]!, { dtype });
        for (const [name, op] of OPS) {
          for (const v of NUMBERS[dtype]) {
            for (const t of [x, scalar]) {
              const right = outcome(() => op(t, v));
              expect(right, `${name}(${dtype} ${JSON.stringify(t.shape)}, ${v})`).toEqual(outcome(() => before(() => op(t, v))));
              const left = outcome(() => op(v, t));
              expect(left, `${name}(${v}, ${dtype} ${JSON.stringify(t.shape)})`).toEqual(outcome(() => before(() => op(v, t))));
              compared += 2;
            }
          }
        }
        x.dispose();
        scalar.dispose();
      }
    }
    expect(compared).toBeGreaterThan(4000);
    expect(memory().tensors).toBe(0);
  });

  it('keeps the errors of a disposed or missing operand', () => {
    const x = tensor([1, 2]);
    x.dispose();
    for (const [name, op] of OPS) {
      expect(outcome(() => op(x, 1)), name).toEqual(outcome(() => before(() => op(x, 1))));
      expect(outcome(() => op(2, x)), name).toEqual(outcome(() => before(() => op(2, x))));
      expect(outcome(() => op(1, 2)), name).toEqual(outcome(() => before(() => op(1, 2))));
    }
    expect(outcome(() => add(1, null as unknown as Tensor)).error).toMatch(/^TypeError/);
  });

  it('leaves no tensor, buffer or byte behind over 1,000 ops, inside and outside tidy', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const k = tensor([1, 0, 1], { dtype: 'int32' });
    const start = memory();
    for (let i = 0; i < 250; i++) {
      x.add(i).dispose();
      sub(0.5, x).dispose();
      k.mul(-3).dispose();
      greater(2, x).dispose();
    }
    expect(memory()).toEqual(start);
    const kept = tidy(() => {
      let y = x;
      for (let i = 0; i < 1000; i++) y = y.mul(0.999).add(i % 2);
      // Inside the scope: only the results made so far (x's 2,000 descendants), no constants.
      expect(memory().tensors).toBe(start.tensors + 2000);
      return y;
    });
    expect(memory().tensors).toBe(start.tensors + 1);
    kept.dispose();
    expect(memory()).toEqual(start);
    x.dispose();
    k.dispose();
  });

  it('makes the constant as one tensor (no full, reshape and expand tensors of its own)', () => {
    for (const shape of [[4], [2, 3], [1, 1], []]) {
      const x = tensor(shape.length === 0 ? 1 : [[1, 2, 3], [4, 5, 6]].flat().slice(0, shape.reduce((a, b) => a * b, 1)), { shape });
      const id = tensorIdCounter();
      const y = x.mul(2);
      // The constant and the result: 2 ids (it was 4 for [4] and [2, 3], 3 for [1, 1]).
      expect(tensorIdCounter() - id, JSON.stringify(shape)).toBe(2);
      y.dispose();
      x.dispose();
    }
  });

  it('profiles as the backend work it does (the constant and the op)', async () => {
    const x = tensor([1, 2, 3, 4]);
    const { value: result, kernels } = await profile(() => x.mul(2));
    expect(kernels.map((k) => k.name).sort()).toEqual(['full', 'mul']);
    expect(Array.from(result.dataSync())).toEqual([2, 4, 6, 8]);
    result.dispose();
    x.dispose();
  });
});
