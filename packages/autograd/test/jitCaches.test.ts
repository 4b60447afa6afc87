// What jit keeps over a long run: a jitted function's compiled programs go when the function
// does. A closure jitted anew every iteration (the same code) used to leave its compiled program
// behind: the arrays went to the garbage collector, but the backend counted the program's temps as
// live for good, so memory() grew by one temp per iteration (200 buffers after 200 closures).

import { describe, expect, it } from 'vitest';
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
});
