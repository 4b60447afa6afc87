// Selection of an order statistic in place, for the metrics' host work (the median heuristic).
// Internal to the package: not in the barrel (index.ts).

/**
 * Rearranges `a` (no NaN) so that a[k] holds the value a sorted copy holds at k, the elements
 * before k are ≤ it and those after ≥ it: Hoare's selection (Wirth's FIND) with median-of-three
 * pivots, O(n) on average where a sort is O(n log n). After 64 rounds (a pathological order) the
 * range left is sorted instead, so the worst case stays O(n log n).
 */
export function selectInPlace(a: Float64Array, k: number): void {
  if (!Number.isInteger(k) || k < 0 || k >= a.length) throw new RangeError(`selectInPlace: k must be an integer index into the ${a.length} values, got ${k}`);
  let lo = 0;
  let hi = a.length - 1;
  for (let round = 0; hi > lo; round++) {
    if (round === 64) {
      a.subarray(lo, hi + 1).sort();
      return;
    }
    const m = (lo + hi) >>> 1;
    const x = a[lo]!;
    const y = a[m]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    // Invariant: a[lo..i) ≤ pivot ≤ a(j..hi]; both scans stop at the pivot's value, so neither
    // leaves the range and runs of equal values split evenly.
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    // Now a[lo..j] ≤ pivot, a(j..i) = pivot, a[i..hi] ≥ pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

/**
 * The two middle order statistics of `a` (no NaN; rearranged in place): for an odd count the
 * middle value twice, for an even count the largest of the lower half and the smallest of the
 * upper half, whose mean (of them, or of a monotone function of them) is the median.
 */
export function middlePair(a: Float64Array): [number, number] {
  if (a.length === 0) throw new RangeError('middlePair: no values');
  const mid = a.length >> 1;
  selectInPlace(a, mid);
  if (a.length % 2 === 1) return [a[mid]!, a[mid]!];
  let below = -Infinity;
  for (let i = 0; i < mid; i++) if (a[i]! > below) below = a[i]!;
  return [below, a[mid]!];
}
