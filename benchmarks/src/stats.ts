// Summaries of timed repetitions, and the growth exponent of a cost in a size (W4's fit).

export interface Summary {
  median: number;
  min: number;
  max: number;
  count: number;
}

/** Median, min and max of a non-empty list (the median of an even count averages the middle two). */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, count: sorted.length };
}

/**
 * The exponent b of cost ≈ a·size^b, fitted by least squares on log cost against log size; needs
 * at least two distinct sizes. Over d ∈ {2, 8, 32, 128} an exact ISM step's cost is expected to go
 * from about 1 (the d-fold replicated batch, when the hidden layers dominate) towards 2 (when the
 * d×256 layers do).
 */
export function growthExponent(points: readonly { size: number; cost: number }[]): number {
  const usable = points.filter((p) => p.size > 0 && p.cost > 0);
  const distinct = new Set(usable.map((p) => p.size));
  if (distinct.size < 2) throw new Error(`growthExponent: need costs at two or more sizes, got ${distinct.size}`);
  const xs = usable.map((p) => Math.log(p.size));
  const ys = usable.map((p) => Math.log(p.cost));
  const mx = xs.reduce((s, v) => s + v, 0) / xs.length;
  const my = ys.reduce((s, v) => s + v, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - mx) * (ys[i]! - my);
    sxx += (x - mx) ** 2;
  });
  return sxy / sxx;
}
