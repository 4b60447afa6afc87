// @scorch/tensor re-exports the option checks of @scorch/options as they are: the same functions,
// one definition (the checks themselves are tested in packages/options/test).
import { describe, expect, it } from 'vitest';
import * as options from '@scorch/options';
import * as tensor from '@scorch/tensor';

describe('the option checks in @scorch/tensor', () => {
  it('are those of @scorch/options, every one of them', () => {
    const names = Object.keys(options).sort();
    expect(names).toEqual(['checkBoolean', 'checkNumber', 'checkNumberList', 'checkOneOf', 'checkOptions', 'checkString', 'closestName', 'didYouMean', 'editDistance', 'everyEntry', 'showValue']);
    for (const name of names) expect((tensor as Record<string, unknown>)[name], name).toBe((options as Record<string, unknown>)[name]);
  });
});
