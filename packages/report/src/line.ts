// The line chart (a loss curve against the training step): one path per series, broken where a
// value cannot be drawn, optionally on a log-10 y axis, with long series thinned so that spikes
// survive.

import { checkBoolean, checkNumber, checkOptions, checkString } from '@scorch/options';
import { type AxisLabels, FRAME_KEYS, type PlotSize, checkColor, checkEntries, checkFrameOptions, checkOptionsArgument, frame, plural, tickCount } from './chart.js';
import {
  type LegendEntry, type Scale, axes, el, finiteExtent, footnote, formatNumber, legend, linearScale, logScale,
  niceAxis, niceLogAxis, padExtent, paletteColor, svgDocument,
} from './svg.js';

export interface LineSeries {
  /** x values, as many as `y`; default 0, 1, 2, … (e.g. the training step). */
  x?: ArrayLike<number>;
  /** y values; the line breaks at one that cannot be drawn (non-finite, or ≤ 0 on a log axis). */
  y: ArrayLike<number>;
  /** Legend text; default (or ''): the series has no legend entry. */
  label?: string;
  /** Any CSS colour (a non-empty string); default: the palette colour for the series' position. */
  color?: string;
  /** Stroke width in px, > 0 (default 1.6). */
  strokeWidth?: number;
}

export interface LinePlotOptions extends PlotSize, AxisLabels {
  /** The lines, drawn in order (the last on top). */
  series: readonly LineSeries[];
  /** Shown above the chart (fitted to the width) and as the SVG's <title>; default none. */
  title?: string;
  /**
   * Log-10 y axis. Values ≤ 0 cannot be placed on it: they are skipped like non-finite ones (the
   * line breaks there) and counted in the footnote. Losses that can be negative (ISM, SSM) need
   * a linear axis or an offset.
   */
  logY?: boolean;
  /**
   * Longer series are thinned before drawing, keeping each bucket's minimum and maximum (so spikes
   * survive): at most about this many vertices per series, an integer ≥ 4 (default 2000).
   */
  maxPoints?: number;
}

/** Runs of consecutive drawable indices; a gap (non-finite or non-positive-on-log value) ends a run. */
function drawableRuns(xs: ArrayLike<number>, ys: ArrayLike<number>, logY: boolean): { runs: number[][]; skipped: number } {
  const runs: number[][] = [];
  let current: number[] = [];
  let skipped = 0;
  for (let i = 0; i < ys.length; i++) {
    const x = xs[i]!;
    const y = ys[i]!;
    if (Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0)) {
      current.push(i);
    } else {
      skipped++;
      if (current.length > 0) runs.push(current);
      current = [];
    }
  }
  if (current.length > 0) runs.push(current);
  return { runs, skipped };
}

/** Min/max decimation: per bucket of consecutive indices, its lowest and highest y, in index order. */
function thin(run: number[], ys: ArrayLike<number>, bucket: number): number[] {
  if (bucket <= 1 || run.length <= 2 * bucket) return run;
  const kept: number[] = [];
  for (let start = 0; start < run.length; start += bucket) {
    let lo = run[start]!;
    let hi = lo;
    for (let k = start; k < Math.min(start + bucket, run.length); k++) {
      const i = run[k]!;
      if (ys[i]! < ys[lo]!) lo = i;
      if (ys[i]! > ys[hi]!) hi = i;
    }
    if (lo === hi) kept.push(lo);
    else kept.push(Math.min(lo, hi), Math.max(lo, hi));
  }
  // Keep the true ends so the line starts and stops where the data does.
  if (kept[0] !== run[0]) kept.unshift(run[0]!);
  if (kept[kept.length - 1] !== run[run.length - 1]) kept.push(run[run.length - 1]!);
  return kept;
}

/**
 * Line chart (e.g. loss against step): one `<path class="line">` per series, broken at values
 * that cannot be drawn, with an optional log-10 y axis. Width 640 and height 400 px by default.
 * The options and each series are checked as every scorch function's are: an unknown key (with
 * the closest valid name), a null, a value of the wrong type or out of range throws.
 */
export function linePlot(opts: LinePlotOptions): string {
  const where = 'linePlot';
  checkOptionsArgument(where, opts, '{ series, title?, ... }');
  checkEntries(where, 'series', opts.series, 'a series { y, x?, label?, color?, strokeWidth? }');
  opts.series.forEach((s, k) => {
    for (const [name, values] of [['y', s.y], ['x', s.x]] as const) {
      if ((name === 'y' || values !== undefined) && (values === null || typeof values !== 'object' || typeof values.length !== 'number')) {
        throw new TypeError(`${where}: series ${k}: ${name} must be an array of numbers, got ${values === null ? 'null' : typeof values}`);
      }
    }
  });
  opts.series.forEach((s, k) => {
    const at = `${where}: series ${k}`;
    checkOptions(at, s, ['x', 'y', 'label', 'color', 'strokeWidth']);
    checkString(at, 'label', s.label);
    checkColor(at, 'color', s.color);
    checkNumber(at, 'strokeWidth', s.strokeWidth, { min: 0, exclusiveMin: true });
  });
  checkOptions(where, opts, ['series', 'title', 'logY', 'maxPoints', ...FRAME_KEYS]);
  checkFrameOptions(where, opts);
  checkBoolean(where, 'logY', opts.logY);
  checkNumber(where, 'maxPoints', opts.maxPoints, { integer: true, min: 4 });
  const { width = 640, height = 400 } = opts;
  const logY = opts.logY ?? false;
  const maxPoints = opts.maxPoints ?? 2000;
  const columns = opts.series.map((s, k) => {
    const x = s.x ?? Float64Array.from({ length: s.y.length }, (_, i) => i);
    if (x.length !== s.y.length) throw new RangeError(`${where}: series ${k} has ${x.length} x values but ${s.y.length} y values`);
    return { x, y: s.y, ...drawableRuns(x, s.y, logY) };
  });
  const colors = opts.series.map((s, i) => s.color ?? paletteColor(i));
  const entries: LegendEntry[] = [];
  opts.series.forEach((s, i) => {
    if (s.label) entries.push({ label: s.label, color: colors[i]!, marker: 'line' });
  });
  const skipped = columns.reduce((acc, c) => acc + c.skipped, 0);
  const f = frame(width, height, { title: opts.title, legend: entries, xLabel: opts.xLabel, yLabel: opts.yLabel, note: skipped > 0 });

  const drawnX: number[] = [];
  const drawnY: number[] = [];
  for (const c of columns) {
    for (const run of c.runs) {
      for (const i of run) {
        drawnX.push(c.x[i]!);
        drawnY.push(c.y[i]!);
      }
    }
  }
  const countX = tickCount(f.area.width);
  const xAxis = niceAxis(...(finiteExtent(drawnX) ?? [0, 1]), countX);
  const x = linearScale(xAxis.domain, [f.area.left, f.area.left + f.area.width]);
  const yRange = [f.area.top + f.area.height, f.area.top] as const;
  let y: Scale;
  let yTicks: readonly number[];
  if (logY) {
    const logAxis = niceLogAxis(...(finiteExtent(drawnY) ?? [1, 10]));
    y = logScale(logAxis.domain, yRange);
    yTicks = logAxis.ticks;
  } else {
    const extent = finiteExtent(drawnY);
    const yAxis = niceAxis(...padExtent(extent ?? [0, 1], 0.03), tickCount(f.area.height));
    y = linearScale(yAxis.domain, yRange);
    yTicks = yAxis.ticks;
  }

  const bucket = Math.ceil((2 * Math.max(1, ...columns.map((c) => c.y.length))) / maxPoints);
  const paths = columns.map((c, k) => {
    let d = '';
    for (const run of c.runs) {
      const kept = thin(run, c.y, bucket);
      kept.forEach((i, j) => {
        d += `${j === 0 ? 'M' : 'L'}${formatNumber(x.map(c.x[i]!))} ${formatNumber(y.map(c.y[i]!))}`;
      });
      // A lone point is a zero-length subpath; with round caps it renders as a dot.
      if (kept.length === 1) d += 'l0 0';
    }
    const series = opts.series[k]!;
    return el('path', {
      class: 'line', d: d || null, fill: 'none', stroke: colors[k]!, 'stroke-width': series.strokeWidth ?? 1.6,
      'stroke-linejoin': 'round', 'stroke-linecap': 'round',
    });
  });
  const note = skipped > 0 ? `${plural(skipped, logY ? 'non-finite or non-positive value' : 'non-finite value')} not drawn` : undefined;
  return svgDocument({ width, height, title: opts.title, description: note }, [
    axes({ area: f.area, x, y, xTicks: xAxis.ticks, yTicks, xLabel: opts.xLabel, yLabel: opts.yLabel }),
    el('g', { class: 'lines' }, ...paths),
    ...f.title,
    legend(entries, f.legendX, f.area.top),
    ...(note ? [footnote(note, height)] : []),
  ]);
}
