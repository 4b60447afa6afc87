// selectInPlace (the median heuristic's selection) against a full sort: the same value at k for
// every k of small arrays and for the middle of large ones, with ties, runs and ordered inputs.

import { describe, expect, it } from 'vitest';
import { selectInPlace } from '../src/select.js';

/** A deterministic stream of values in [0, 1) (a linear congruential generator), for reproducible cases. */
function stream(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Checks a[k] is the sorted copy's value and the split around it: none larger before, none smaller after. */
function expectSelected(values: Float64Array, k: number, name: string): void {
  const sorted = values.slice().sort();
  const a = values.slice();
  selectInPlace(a, k);
  expect(a[k], `${name}, k = ${k}`).toBe(sorted[k]);
  for (let i = 0; i < k; i++) if (a[i]! > a[k]!) expect.fail(`${name}, k = ${k}: a[${i}] = ${a[i]} > a[k] = ${a[k]}`);
  for (let i = k + 1; i < a.length; i++) if (a[i]! < a[k]!) expect.fail(`${name}, k = ${k}: a[${i}] = ${a[i]} < a[k] = ${a[k]}`);
  const after = a.slice().sort(); // the same values, only moved
  for (let i = 0; i < a.length; i++) if (after[i] !== sorted[i]) expect.fail(`${name}, k = ${k}: the values changed at sorted index ${i}`);
}

describe('selectInPlace', () => {
  const next = stream(7);
  const cases: [string, (n: number) => Float64Array][] = [
    ['uniform', (n) => Float64Array.from({ length: n }, next)],
    ['three distinct values', (n) => Float64Array.from({ length: n }, () => Math.floor(next() * 3))],
    ['all equal', (n) => new Float64Array(n).fill(2.5)],
    ['ascending', (n) => Float64Array.from({ length: n }, (_, i) => i)],
    ['descending', (n) => Float64Array.from({ length: n }, (_, i) => n - i)],
    ['organ pipe', (n) => Float64Array.from({ length: n }, (_, i) => Math.min(i, n - 1 - i))],
    ['zeros and a few positives', (n) => Float64Array.from({ length: n }, () => (next() < 0.9 ? 0 : next()))],
  ];

  it('puts the sorted value at every k of arrays of 1 to 40 values', () => {
    for (const [name, make] of cases) {
      for (let n = 1; n <= 40; n++) {
        const values = make(n);
        for (let k = 0; k < n; k++) expectSelected(values, k, `${name} of ${n}`);
      }
    }
  });

  it('selects the middle of 499,500 values (the median heuristic of 1,000 points) as the sort does', () => {
    for (const [name, make] of cases) {
      const values = make(499500);
      expectSelected(values, 249750, name);
      expectSelected(values, 249749, name);
    }
  });

  it('refuses a k outside the array', () => {
    expect(() => selectInPlace(new Float64Array(3), 3)).toThrow(/^selectInPlace: k must be an integer index into the 3 values, got 3$/);
    expect(() => selectInPlace(new Float64Array(3), 1.5)).toThrow(/^selectInPlace: k must be an integer index into the 3 values, got 1.5$/);
  });
});
