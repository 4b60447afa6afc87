// The eager op path's shortcuts keep what they replace: an op's output shares a frozen input
// shape instead of copying it (and stays frozen), and the CPU's flat elementwise kernels, cached
// by an integer of op, dtypes and operand kinds, give each combination its own kernel.

import { describe, expect, it } from 'vitest';
import { type DType, add, cast, exp, less, mul, reshape, sub, tensor, where } from '@scorch/tensor';

describe('the eager op path', () => {
  it('gives every result a frozen shape of its own values, shared with its input only when that is frozen', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const y = exp(x);
    const z = add(x, y);
    const r = reshape(z, [3, 2]);
    for (const t of [x, y, z, r]) expect(Object.isFrozen(t.shape)).toBe(true);
    expect([y.shape, z.shape, r.shape]).toEqual([[2, 3], [2, 3], [3, 2]]);
    expect(() => (y.shape as number[]).push(1)).toThrow(TypeError);
    expect(x.shape).toEqual([2, 3]);
    // A shape given as a plain array is copied: changing the array afterwards changes nothing.
    const shape = [6];
    const flat = reshape(x, shape);
    shape[0] = 7;
    expect(flat.shape).toEqual([6]);
  });

  it('runs each op, dtype and operand kind (dense, a broadcast scalar) with its own kernel, whatever ran before', () => {
    const a = [1.5, -2, 3.25, 7];
    const b = [0.5, 4, -1, 2];
    // Every combination in turn, each checked against plain JS: one kernel served for another
    // (a key that ran two together) would give the other op's, dtype's or layout's values.
    const cases: [string, () => number[], number[]][] = [];
    for (const dtype of ['float32', 'float64', 'int32'] as DType[]) {
      const ta = tensor(dtype === 'int32' ? a.map(Math.trunc) : a, { dtype });
      const tb = tensor(dtype === 'int32' ? b.map(Math.trunc) : b, { dtype });
      const av = dtype === 'int32' ? a.map(Math.trunc) : a;
      const bv = dtype === 'int32' ? b.map(Math.trunc) : b;
      cases.push(
        [`add ${dtype} dense`, () => [...add(ta, tb).dataSync()], av.map((v, i) => v + bv[i]!)],
        [`add ${dtype} scalar`, () => [...add(ta, 3).dataSync()], av.map((v) => v + 3)],
        [`add ${dtype} scalar first`, () => [...add(3, ta).dataSync()], av.map((v) => 3 + v)],
        [`sub ${dtype} dense`, () => [...sub(ta, tb).dataSync()], av.map((v, i) => v - bv[i]!)],
        [`sub ${dtype} scalar first`, () => [...sub(1, ta).dataSync()], av.map((v) => 1 - v)],
        [`mul ${dtype} dense`, () => [...mul(ta, tb).dataSync()], av.map((v, i) => v * bv[i]!)],
        [`less ${dtype}`, () => [...less(ta, tb).dataSync()], av.map((v, i) => (v < bv[i]! ? 1 : 0))],
        [`where ${dtype}`, () => [...where(less(ta, tb), ta, tb).dataSync()], av.map((v, i) => Math.min(v, bv[i]!))],
        [`cast ${dtype} to float64`, () => [...cast(ta, 'float64').dataSync()], av],
      );
    }
    // Twice round, so each runs both with its kernel new and with it cached after the others.
    for (let round = 0; round < 2; round++) {
      for (const [name, run, expected] of cases) expect([name, run()]).toEqual([name, expected]);
    }
  });
});
