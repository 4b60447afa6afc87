// The elementwise kernels' staged loops (src/cpu/wasm/elementwiseModule.ts, `stages`): a math call
// whose argument depends on another's runs in a loop of its own over the pass, reading the earlier
// values back from the output that stores them or from a stage region of the pass. The bits must
// be those of the one-loop kernel: each value a Math.fround of the JavaScript kernels' double (the
// exact forms), or, under fast math, the values the one-function kernels give in turn.

import { describe, expect, it } from 'vitest';
import { cpuKernelInfo } from '@scorch/tensor';
import { passPlan, stages, type WasmKernelSpec } from '../src/cpu/wasm/elementwiseModule.js';
import type { ElementwiseOp } from '../src/expression.js';
import { firstDifference } from './matmulReference.js';
import { leaf, op, runKernel as run } from './wasmKernelSpecs.js';

const WASM = cpuKernelInfo().wasmSimd;

/**
 * softplus(x + b) as the forward pass of a training step computes it: e = exp(−|s|), stored for
 * the backward pass, and max(s, 0) + log1p(e). Leaves: x (full), b (a row of 128: a bias), 0.
 */
const SOFTPLUS: WasmKernelSpec = {
  leaves: [{ kind: 'full' }, { kind: 'row', period: 128 }, { kind: 'scalar' }],
  nodes: [
    leaf(0), leaf(1), leaf(2),
    op('add', 0, 1), // 3: s
    op('neg', 3), // 4
    op('max', 3, 4), // 5: |s|
    op('neg', 5), // 6
    op('exp', 6), // 7: e
    op('max', 3, 2), // 8
    op('log1p', 7), // 9
    op('add', 8, 9), // 10
  ],
  outputs: [7, 10],
};

/**
 * Three calls deep, none stored but the last: e1 = exp(s), l = log1p(e1), e2 = exp(−l), with a
 * second output e1·s that reads e1 back in the last loop. Leaves: x (full), b (a row of 128).
 */
const CHAIN: WasmKernelSpec = {
  leaves: [{ kind: 'full' }, { kind: 'row', period: 128 }],
  nodes: [leaf(0), leaf(1), op('add', 0, 1), op('exp', 2), op('log1p', 3), op('neg', 4), op('exp', 5), op('mul', 3, 2)],
  outputs: [6, 7],
};

/** x over [−12, 12) (no exact zeros: |s| > 0), b a row of 128 values in [−1, 1). */
function operands(n: number): [Float32Array, Float32Array] {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = -12 + (24 * (i + 0.37)) / n;
  const b = new Float32Array(128);
  for (let j = 0; j < 128; j++) b[j] = -1 + (2 * j + 0.5) / 128;
  return [x, b];
}

describe('staged loops: which math calls run in a loop of their own', () => {
  it('softplus: exp in the first loop, into the output that stores it; log1p in the second; no stage region', () => {
    const s = stages(SOFTPLUS);
    expect(s.last).toBe(1);
    expect(s.staged).toEqual([{ node: 7, output: 0, region: null }]);
    expect([s.level[7], s.level[9]]).toEqual([0, 1]);
    expect(passPlan(SOFTPLUS).stageAt).toEqual([]);
  });

  it('a chain three calls deep: two stage regions, one pass of elements each, after the outputs', () => {
    const s = stages(CHAIN);
    expect(s.last).toBe(2);
    expect(s.staged).toEqual([{ node: 3, output: null, region: 0 }, { node: 4, output: null, region: 1 }]);
    const plan = passPlan(CHAIN);
    expect(plan.stageAt).toEqual([plan.outAt[1]! + plan.pass, plan.outAt[1]! + 2 * plan.pass]);
    expect(plan.bytes).toBe((plan.stageAt[1]! + plan.pass) * 4);
  });

  it('calls that do not feed one another, an accumulation, no call: one loop', () => {
    const apart: WasmKernelSpec = { leaves: [{ kind: 'full' }], nodes: [leaf(0), op('exp', 0), op('log1p', 0), op('add', 1, 2)], outputs: [3] };
    expect(stages(apart)).toMatchObject({ last: 0, staged: [] });
    const plain: WasmKernelSpec = { leaves: [{ kind: 'full' }, { kind: 'full' }], nodes: [leaf(0), leaf(1), op('mul', 0, 1)], outputs: [2] };
    expect(stages(plain)).toMatchObject({ last: 0, staged: [] });
    // A sum of log1p(exp(x)) over leading axes: its one output accumulates, so exp takes a region.
    const sum: WasmKernelSpec = { leaves: [{ kind: 'full' }], nodes: [leaf(0), op('exp', 0), op('log1p', 1)], outputs: [2], accumulate: 8 };
    expect(stages(sum).staged).toEqual([{ node: 1, output: null, region: 0 }]);
  });
});

describe.runIf(WASM)('staged loops: the same bits as one loop', () => {
  // 157 rows of 128: 20,096 elements, more than two passes of 8,192 (the rows restart each loop).
  const n = 157 * 128;
  const [x, b] = operands(n);

  it('softplus (exact forms): e and the result are the JavaScript kernels\' float32 values, element for element', () => {
    const [e, y] = run(SOFTPLUS, [x, b, new Float32Array([0])], n);
    const wantE = new Float32Array(n);
    const wantY = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const s = Math.fround(x[i]! + b[i % 128]!);
      wantE[i] = Math.exp(-Math.abs(s));
      wantY[i] = Math.max(s, 0) + Math.fround(Math.log1p(wantE[i]!));
    }
    expect(firstDifference(e!, 0, wantE)).toBe(-1);
    expect(firstDifference(y!, 0, wantY)).toBe(-1);
  });

  it('a chain three calls deep through two stage regions (exact forms), with a value of the first loop read in the last', () => {
    const [e2, p] = run(CHAIN, [x, b], n);
    const want2 = new Float32Array(n);
    const wantP = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const s = Math.fround(x[i]! + b[i % 128]!);
      const e1 = Math.fround(Math.exp(s));
      want2[i] = Math.exp(-Math.fround(Math.log1p(e1)));
      wantP[i] = e1 * s;
    }
    expect(firstDifference(e2!, 0, want2)).toBe(-1);
    expect(firstDifference(p!, 0, wantP)).toBe(-1);
  });

  it('under fast math: the chain gives the bits of its one-function kernels run in turn', () => {
    const fast = (spec: WasmKernelSpec): WasmKernelSpec => ({ ...spec, fastMath: true });
    const [e2, p] = run(fast(CHAIN), [x, b], n);
    const unary = (name: ElementwiseOp, v: Float32Array) => run(fast({ leaves: [{ kind: 'full' }], nodes: [leaf(0), op(name, 0)], outputs: [1] }), [v], n)[0]!;
    const s = new Float32Array(n);
    for (let i = 0; i < n; i++) s[i] = x[i]! + b[i % 128]!;
    const e1 = unary('exp', s);
    const l = unary('log1p', e1);
    const want2 = unary('exp', l.map((v) => -v));
    expect(firstDifference(e2!, 0, want2)).toBe(-1);
    expect(firstDifference(p!, 0, e1.map((v, i) => v * s[i]!))).toBe(-1);
  });
});
