// clamp on WebGPU against the CPU, value for value: clamp selects one of its operands (no
// arithmetic), so the results must be identical, NaNs included (a NaN in x or in a bound gives
// NaN, as torch.clamp), eagerly and fused under jit, with number and tensor bounds, broadcast
// tensor bounds, one-sided bounds, and tensor bounds with min > max (the result is max).

import { beforeAll, describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { type Tensor, clamp, elementwiseExpression, tensor } from '@scorch/tensor';
import { renderWgsl } from '../src/wgsl/expression.js';
import type { WebGPUHandle } from '@scorch/kernels';
import { exact, firstMismatch, gpuDevice } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});

const xs = [-3, -1, -0.5, -0, 0, 0.25, 0.5, 1, 2, NaN, Infinity, -Infinity];
const lows = [-1, NaN, 0.5, -Infinity, 2, -0.5, 0, 1, NaN, -1, 0, 3];
const highs = [1, 1, NaN, Infinity, 1, -0.5, 0, 2, 3, NaN, 0.5, -3];

function pair(values: number[], shape: number[]): { cpu: Tensor; gpu: Tensor } {
  return { cpu: tensor(values, { shape }), gpu: tensor(values, { shape, device: gpu.device }) };
}

describe('clamp on WebGPU equals the CPU exactly', () => {
  const cases: [string, (x: Tensor, lo: Tensor, hi: Tensor) => Tensor][] = [
    ['number bounds', (x) => clamp(x, -0.5, 1)],
    ['min only', (x) => clamp(x, 0.25)],
    ['max only', (x) => clamp(x, null, 0.5)],
    ['NaN number bound', (x) => clamp(x, NaN, 1)],
    ['tensor bounds elementwise (NaN bounds, min > max)', (x, lo, hi) => clamp(x, lo, hi)],
    ['broadcast row bounds', (x, lo, hi) => clamp(x.reshape([3, 4]), lo.reshape([3, 4]).slice([0, 0], [1, 4]), hi.reshape([3, 4]).slice([1, 0], [1, 4]))],
  ];
  for (const [name, f] of cases) {
    it(name, async () => {
      const x = pair(xs, [12]);
      const lo = pair(lows, [12]);
      const hi = pair(highs, [12]);
      const want = f(x.cpu, lo.cpu, hi.cpu).dataSync();
      const eager = await f(x.gpu, lo.gpu, hi.gpu).data();
      const fused = await jit(f)(x.gpu, lo.gpu, hi.gpu).data();
      expect(firstMismatch(want, eager, exact), 'eager').toBeNull();
      expect(firstMismatch(want, fused, exact), 'jit').toBeNull();
      // The NaN cases really are NaN (firstMismatch treats NaN = NaN as equal).
      if (name === 'NaN number bound') expect(Array.from(want).every(Number.isNaN)).toBe(true);
    });
  }
});

describe('the NaN guards of float comparisons in WGSL', () => {
  it('an ordered float comparison is rendered with NaN tests (a compiler assuming no NaN may turn select(y, b, y < b) into max)', () => {
    // llvmpipe keeps the NaN without them, so the values above cannot tell: the shader text must.
    for (const op of ['less', 'lessEqual', 'equal'] as const) {
      const code = renderWgsl(elementwiseExpression(op, 'float32'), ['a', 'b']);
      expect(code, op).toContain('!sc_isnan(a)');
      expect(code, op).toContain('!sc_isnan(b)');
    }
    // notEqual is true for a NaN operand, as WGSL's != already is; int comparisons have no NaN.
    expect(renderWgsl(elementwiseExpression('notEqual', 'float32'), ['a', 'b'])).not.toContain('sc_isnan');
    expect(renderWgsl(elementwiseExpression('less', 'int32'), ['a', 'b'])).not.toContain('sc_isnan');
  });
});
