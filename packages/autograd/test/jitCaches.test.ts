// What jit keeps over a long run: a jitted function's compiled programs go when the function
// does. A closure jitted anew every iteration (the same code) used to leave its compiled program
// behind: the arrays went to the garbage collector, but the backend counted the program's temps as
// live for good, so memory() grew by one temp per iteration (200 buffers after 200 closures).

import { describe, expect, it } from 'vitest';
import { type Tensor, ones } from '@scorch/tensor';
import { jit } from '@scorch/autograd';
import { runFixture } from '../../../tests/fixtures/runFixture.js';

type Memory = { tensors: number; buffers: number; bytes: number };

describe('jit caches', () => {
  it('a jitted closure that becomes garbage frees its compiled programs (memory() returns to where it was)', () => {
    const out = runFixture<{ closures: number; before: Memory; after: Memory; loweredKeepsFunction: boolean; droppedCollected: boolean }>(
      new URL('./fixtures/jitGarbageChild.ts', import.meta.url), { nodeFlags: ['--expose-gc'] },
    );
    expect(out.closures).toBe(200);
    expect(out.after).toEqual(out.before);
    // The program a LoweredProgram hands out stays usable: it holds its function.
    expect(out.droppedCollected).toBe(true);
    expect(out.loweredKeepsFunction).toBe(true);
  });

  it('the retrace warning names a changing shape when shapes are what changes (a server\'s batch sizes), not non-tensor arguments', () => {
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (message: string) => void warnings.push(message);
    try {
      const f = jit(function rowSums(x: Tensor) {
        return x.tanh().sum(1);
      });
      for (let batch = 1; batch <= 32; batch++) {
        const x = ones([batch, 4]);
        f(x).dispose();
        x.dispose();
      }
      expect(warnings).toEqual([
        "jit: rowSums has been traced for 32 different signatures; a tensor argument's shape, dtype or device changes between calls " +
          '(float32[31,4]@cpu then float32[32,4]@cpu), and each new one is traced and compiled anew. Pad inputs to a few sizes (batch buckets) to reuse programs.',
      ]);
      f.clearCache();
    } finally {
      console.warn = warn;
    }
  });
});
