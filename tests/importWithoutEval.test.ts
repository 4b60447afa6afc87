// Importing scorch's runtime packages evaluates no code: a page whose content security policy
// forbids it (no 'unsafe-eval') can still load them and use the WebGPU backend. Only the CPU's
// generated kernels are built with `new Function`, when they first run.

import { describe, expect, it } from 'vitest';
import { runFixture } from './fixtures/runFixture.js';

describe('the package under a policy that forbids evaluating code', () => {
  it('imports @scorch/tensor, autograd, kernels and score, makes and reads tensors; a CPU kernel fails with the engine\'s error', () => {
    const r = runFixture<{ values: number[]; kernelError: string; loaded: boolean[] }>(new URL('./fixtures/noCodeGenerationAtImport.ts', import.meta.url), {
      nodeFlags: ['--disallow-code-generation-from-strings'],
    });
    expect(r.loaded).toEqual([true, true, true]);
    expect(r.values).toEqual([1, 2, 3]);
    // The flag took effect: building a kernel is refused.
    expect(r.kernelError).toMatch(/^EvalError: Code generation from strings disallowed/);
  });
});
