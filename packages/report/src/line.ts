// The line chart (a loss curve against the training step): one path per series, broken where a
// value cannot be drawn, optionally on a log-10 y axis, with long series thinned so that spikes
// survive.

import { checkBoolean, checkNumber, checkOptions, checkString } from '@scorch/options';
import { type AxisLabels, FRAME_KEYS, type PlotSize, checkColor, checkEntries, checkFrameOptions, checkOptionsArgument, frame, plural, tickCount } from './chart.js';
import {
  type LegendEntry, type PlotArea, axes, el, elList, finiteExtent, footnote, formatNumber, legend, linearScale, logScale,
  niceAxis, niceLogAxis, padExtent, paletteColor, svgDocument, tickLabels,
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
   * Longer series are thinned before drawing, keeping the minimum and maximum of each bucket of
   * consecutive values (so spikes survive; a break at a gap moves by less than a bucket): at most
   * about this many vertices per series, gaps or not, an integer ≥ 4 (default 2000).
   */
  maxPoints?: number;
}

/** Whether a point can be drawn: finite, and positive on a log axis. */
function drawable(x: number, y: number, logY: boolean): boolean {
  return Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
}

/**
 * The x and y extents of a series' drawable points, as [lo, hi] pairs (empty with none), and the
 * count of the others (non-finite, or non-positive on a log axis): one pass, no index arrays.
 */
function drawableExtents(xs: ArrayLike<number>, ys: ArrayLike<number>, logY: boolean): { xRange: number[]; yRange: number[]; skipped: number } {
  let [xLo, xHi, yLo, yHi] = [Infinity, -Infinity, Infinity, -Infinity];
  let skipped = 0;
  for (let i = 0; i < ys.length; i++) {
    const x = xs[i]!;
    const y = ys[i]!;
    if (!drawable(x, y, logY)) {
      skipped++;
      continue;
    }
    if (x < xLo) xLo = x;
    if (x > xHi) xHi = x;
    if (y < yLo) yLo = y;
    if (y > yHi) yHi = y;
  }
  return { xRange: xLo <= xHi ? [xLo, xHi] : [], yRange: yLo <= yHi ? [yLo, yHi] : [], skipped };
}

/**
 * A series' path data, thinned by min/max decimation over fixed buckets of `bucket` consecutive
 * indices of the whole series: each bucket keeps its lowest and highest drawable y in index order
 * (and the series' first and last drawable points, so the line starts and stops where the data
 * does), and a bucket holding a gap ends the subpath. Thinning each run between gaps apart left a
 * series with many gaps (a NaN every 10th value, a loss dipping below 0 on log y) unthinned; this
 * way each bucket adds at most two vertices, and a break moves by less than a bucket. A bucket of
 * 1 draws every drawable point, broken at every gap.
 */
function linePath(ys: ArrayLike<number>, bucket: number, drawable: (i: number) => boolean, at: (i: number) => string): string {
  const n = ys.length;
  let first = 0;
  while (first < n && !drawable(first)) first++;
  let last = n - 1;
  while (last >= 0 && !drawable(last)) last--;
  let d = '';
  let vertices = 0;
  const endSubpath = () => {
    // A lone point is a zero-length subpath; with round caps it renders as a dot.
    if (vertices === 1) d += 'l0 0';
    vertices = 0;
  };
  for (let start = 0; start < n; start += bucket) {
    const stop = Math.min(start + bucket, n);
    let lo = -1;
    let hi = -1;
    let gap = false;
    for (let i = start; i < stop; i++) {
      if (!drawable(i)) {
        gap = true;
        continue;
      }
      if (lo < 0 || ys[i]! < ys[lo]!) lo = i;
      if (hi < 0 || ys[i]! > ys[hi]!) hi = i;
    }
    if (lo >= 0) {
      const kept = [...new Set([first, lo, hi, last].filter((i) => i >= start && i < stop))].sort((a, b) => a - b);
      for (const i of kept) d += `${vertices++ === 0 ? 'M' : 'L'}${at(i)}`;
    }
    if (gap) endSubpath();
  }
  endSubpath();
  return d;
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
    return { x, y: s.y, ...drawableExtents(x, s.y, logY) };
  });
  const colors = opts.series.map((s, i) => s.color ?? paletteColor(i));
  const entries: LegendEntry[] = [];
  opts.series.forEach((s, i) => {
    if (s.label) entries.push({ label: s.label, color: colors[i]!, marker: 'line' });
  });
  const skipped = columns.reduce((acc, c) => acc + c.skipped, 0);
  const extentX = finiteExtent(...columns.map((c) => c.xRange)) ?? [0, 1];
  const extentY = finiteExtent(...columns.map((c) => c.yRange));
  // The scales in a plot area: the tick counts follow its size, and the margins the tick labels.
  const scalesIn = (area: PlotArea) => {
    const xAxis = niceAxis(...extentX, tickCount(area.width));
    const x = linearScale(xAxis.domain, [area.left, area.left + area.width]);
    const yRange = [area.top + area.height, area.top] as const;
    if (logY) {
      const logAxis = niceLogAxis(...(extentY ?? [1, 10]));
      return { x, xTicks: xAxis.ticks, y: logScale(logAxis.domain, yRange), yTicks: logAxis.ticks };
    }
    const yAxis = niceAxis(...padExtent(extentY ?? [0, 1], 0.03), tickCount(area.height));
    return { x, xTicks: xAxis.ticks, y: linearScale(yAxis.domain, yRange), yTicks: yAxis.ticks };
  };
  const f = frame(width, height, {
    title: opts.title, legend: entries, xLabel: opts.xLabel, yLabel: opts.yLabel, note: skipped > 0,
    tickLabels: (area) => {
      const s = scalesIn(area);
      return { x: tickLabels('linear', s.xTicks), y: tickLabels(s.y.kind, s.yTicks) };
    },
  });
  const { x, xTicks, y, yTicks } = scalesIn(f.area);

  const bucket = Math.ceil((2 * Math.max(1, ...columns.map((c) => c.y.length))) / maxPoints);
  const paths = columns.map((c, k) => {
    // A series short enough is drawn whole.
    const d = linePath(c.y, c.y.length <= 2 * bucket ? 1 : bucket, (i) => drawable(c.x[i]!, c.y[i]!, logY),
      (i) => `${formatNumber(x.map(c.x[i]!))} ${formatNumber(y.map(c.y[i]!))}`);
    const series = opts.series[k]!;
    return el('path', {
      class: 'line', d: d || null, fill: 'none', stroke: colors[k]!, 'stroke-width': series.strokeWidth ?? 1.6,
      'stroke-linejoin': 'round', 'stroke-linecap': 'round',
    });
  });
  const note = skipped > 0 ? `${plural(skipped, logY ? 'non-finite or non-positive value' : 'non-finite value')} not drawn` : undefined;
  return svgDocument({ width, height, title: opts.title, description: note }, [
    axes({ area: f.area, x, y, xTicks, yTicks, xLabel: opts.xLabel, yLabel: opts.yLabel }),
    elList('g', { class: 'lines' }, paths),
    ...f.title,
    legend(entries, f.legendX, f.area.top, f.area.height),
    ...(note ? [footnote(note, height)] : []),
  ]);
}
