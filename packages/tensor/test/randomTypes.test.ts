// The types of the random-key API are as precise as its values. The type half of each case is
// checked by `pnpm typecheck` (tsc reads the tests): an assignment that did not fit, or a
// `@ts-expect-error` line that compiled, fails it. The run-time half checks that the values are
// what the types say.

import { describe, expect, it } from 'vitest';
import { type RandomKey, randomKey, splitKey } from '@scorch/tensor';

describe('splitKey result types', () => {
  it('the default and a literal n give a tuple of that many keys', () => {
    const key = randomKey(3);
    const [a, b]: [RandomKey, RandomKey] = splitKey(key);
    const five: [RandomKey, RandomKey, RandomKey, RandomKey, RandomKey] = splitKey(key, 5);
    const [one]: [RandomKey] = splitKey(key, 1);
    // @ts-expect-error two keys are not three
    const three: [RandomKey, RandomKey, RandomKey] = splitKey(key);
    // @ts-expect-error a tuple of three has no fourth key
    const fourth: RandomKey = splitKey(key, 3)[3];
    expect([a, b]).toEqual(splitKey(key, 2));
    expect(five.length).toBe(5);
    expect(five.slice(0, 2)).toEqual([a, b]); // key i depends only on i
    expect(one).toEqual(a);
    expect(three.length).toBe(2);
    expect(fourth).toBeUndefined();
  });

  it('a count known only at run time gives an array', () => {
    const n: number = 12;
    const keys: RandomKey[] = splitKey(randomKey(3), n);
    const [first] = keys;
    // @ts-expect-error an array may be shorter than its destructuring: each key may be undefined
    const k: RandomKey = first;
    expect(keys.length).toBe(12);
    expect(k).toEqual(splitKey(randomKey(3))[0]);
  });
});
