// The pieces of split are typed as precisely as they are counted: a tuple for literal sections.
// The type half of each case is checked by `pnpm typecheck` (tsc reads the tests): an assignment
// that did not fit, or a `@ts-expect-error` line that compiled, fails it. The run-time half
// checks that the values are what the types say.

import { describe, expect, it } from 'vitest';
import { type Tensor, arange, split } from '@scorch/tensor';

describe('split result types', () => {
  it('a list literal of sizes gives one piece per size; a literal count that many pieces', async () => {
    const x = arange(6, undefined, 1, { dtype: 'float64' });
    const [head, tail]: [Tensor, Tensor] = split(x, [2, 4]);
    const [a, b, c]: [Tensor, Tensor, Tensor] = x.split(3);
    const [one]: [Tensor] = x.split([6]);
    // @ts-expect-error two sizes give two pieces: there is no third
    const third: Tensor = split(x, [2, 4])[2];
    // @ts-expect-error a count of 2 gives two pieces
    const three: [Tensor, Tensor, Tensor] = x.split(2);
    expect(third).toBeUndefined();
    expect(three.length).toBe(2);
    expect([Array.from(await head.data()), Array.from(await tail.data())]).toEqual([[0, 1], [2, 3, 4, 5]]);
    expect(await Promise.all([a, b, c, one].map(async (t) => Array.from(await t.data())))).toEqual([[0, 1], [2, 3], [4, 5], [0, 1, 2, 3, 4, 5]]);
  });

  it('sections known only at run time give an array', () => {
    const x = arange(6, undefined, 1, { dtype: 'float64' });
    const sizes: number[] = [1, 5];
    const n: number = 2;
    const bySizes: Tensor[] = split(x, sizes);
    const byCount: Tensor[] = x.split(n);
    // @ts-expect-error an array may be shorter than its destructuring: its first piece may be undefined
    const first: Tensor = bySizes[0];
    expect([bySizes.length, byCount.length, first.size]).toEqual([2, 2, 1]);
  });
});
