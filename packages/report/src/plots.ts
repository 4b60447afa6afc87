// Standalone SVG charts for score-matching reports: scatter (data vs samples), quiver (a learned
// score field beside the true one), line (loss curves, optionally log-y) and sampler
// trajectories. Each function takes plain numbers (number[],
// Float32Array, Float64Array — what a tensor's `data()` reads back as) and returns a complete SVG
// document string with a viewBox, so it can be written to a .svg file or inlined in HTML as is.
//
// Data that cannot be drawn is skipped, never written as NaN: non-finite coordinates are dropped
// (lines break at them), points outside an explicitly given domain are dropped, and a small note
// in the bottom-left corner says how many points were left out, so nothing disappears silently.

import {
  type LegendEntry, type Markup, type NiceAxis, type PlotArea, type Scale, axes, chartTitle, el, equalAspectDomains,
  finiteExtent, footnote, formatNumber, legend, legendWidth, linearScale, logScale, niceAxis, niceLogAxis,
  niceTicks, padExtent, paletteColor, plotArea, pointList, svgDocument, text,
} from './svg.js';

// ------------------------------------------------------------------------------------------------
// Inputs

/**
 * 2-D points in any of three layouts: `[[x, y], …]` pairs; separate `{x, y}` coordinate arrays
 * of equal length; or `{xy}`, interleaved x0, y0, x1, y1, … (a row-major [N, 2] tensor's data).
 */
export type PointsInput =
  | ReadonlyArray<readonly [number, number]>
  | { readonly x: ArrayLike<number>; readonly y: ArrayLike<number> }
  | { readonly xy: ArrayLike<number> };

export interface PlotSize {
  /** Nominal width in px (also the viewBox width). */
  width?: number;
  /** Nominal height in px (also the viewBox height). */
  height?: number;
}

export interface AxisLabels {
  xLabel?: string;
  yLabel?: string;
}

/** The points of one input, split into finite coordinates and a count of the non-finite ones. */
interface PointSet {
  readonly xs: Float64Array;
  readonly ys: Float64Array;
  readonly nonFinite: number;
}

function pointSet(where: string, input: PointsInput): PointSet {
  let n: number;
  let xAt: (i: number) => number;
  let yAt: (i: number) => number;
  if (Array.isArray(input)) {
    const pairs = input as ReadonlyArray<readonly [number, number]>;
    n = pairs.length;
    for (let i = 0; i < n; i++) {
      const pair = pairs[i];
      if (!pair || pair.length < 2) throw new RangeError(`${where}: point ${i} must be an [x, y] pair`);
    }
    xAt = (i) => pairs[i]![0];
    yAt = (i) => pairs[i]![1];
  } else if ('xy' in input) {
    const xy = input.xy;
    if (xy.length % 2 !== 0) throw new RangeError(`${where}: interleaved xy must have an even length, got ${xy.length}`);
    n = xy.length / 2;
    xAt = (i) => xy[2 * i]!;
    yAt = (i) => xy[2 * i + 1]!;
  } else if ('x' in input && 'y' in input) {
    const { x, y } = input;
    if (x.length !== y.length) throw new RangeError(`${where}: x and y have different lengths (${x.length} vs ${y.length})`);
    n = x.length;
    xAt = (i) => x[i]!;
    yAt = (i) => y[i]!;
  } else {
    throw new TypeError(`${where}: points must be [x, y] pairs, {x, y} arrays or {xy} interleaved`);
  }
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const x = Number(xAt(i));
    const y = Number(yAt(i));
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    xs[kept] = x;
    ys[kept] = y;
    kept++;
  }
  return { xs: xs.subarray(0, kept), ys: ys.subarray(0, kept), nonFinite: n - kept };
}

function checkDomain(where: string, name: string, domain: readonly [number, number] | undefined): void {
  if (domain === undefined) return;
  const [lo, hi] = domain;
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi)) {
    throw new RangeError(`${where}: ${name} must be finite with lo < hi, got [${lo}, ${hi}]`);
  }
}

function checkSize(where: string, width: number, height: number): void {
  if (!(width >= 100) || !(height >= 80) || !Number.isFinite(width) || !Number.isFinite(height)) {
    throw new RangeError(`${where}: width and height must be finite and at least 100 × 80, got ${width} × ${height}`);
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** "3 non-finite points and 2 points outside the axes not drawn", or undefined when nothing was left out. */
function omissionNote(nonFinite: number, outside: number, noun = 'point'): string | undefined {
  const parts: string[] = [];
  if (nonFinite > 0) parts.push(`${plural(nonFinite, `non-finite ${noun}`)}`);
  if (outside > 0) parts.push(`${plural(outside, noun)} outside the axes`);
  return parts.length > 0 ? `${parts.join(' and ')} not drawn` : undefined;
}

// ------------------------------------------------------------------------------------------------
// Layout shared by the single-panel charts

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly area: PlotArea;
  /** Where a legend placed in the right margin starts. */
  readonly legendX: number;
}

function frame(width: number, height: number, opts: { title?: string | undefined; legend?: readonly LegendEntry[]; xLabel?: string | undefined; yLabel?: string | undefined; note?: boolean }): Frame {
  const legendSpace = opts.legend && opts.legend.length > 0 ? legendWidth(opts.legend) + 20 : 0;
  const margins = {
    top: opts.title ? 36 : 14,
    right: 16 + legendSpace,
    bottom: (opts.xLabel ? 46 : 30) + (opts.note ? 12 : 0),
    left: opts.yLabel ? 66 : 52,
  };
  const area = plotArea(width, height, margins);
  return { width, height, area, legendX: area.left + area.width + 12 };
}

/** About one tick interval per 60 px, at least two. */
function tickCount(pixels: number): number {
  return Math.max(2, Math.round(pixels / 60));
}

interface ResolvedAxes {
  readonly x: Scale;
  readonly y: Scale;
  readonly xTicks: readonly number[];
  readonly yTicks: readonly number[];
}

/** A zero-width extent widened by ±10% of its value (at least ±0.5), as niceAxis does. */
function widenFlatExtent([lo, hi]: readonly [number, number]): [number, number] {
  if (lo < hi) return [lo, hi];
  const half = Math.max(Math.abs(lo) * 0.1, 0.5);
  return [lo - half, hi + half];
}

/**
 * Domains and ticks for a 2-D chart. An explicit domain is used as given (ticks inside it). An
 * automatic one is the data extent padded by `pad` of its width on each side: rounded out to
 * nice ticks, or — with `equalAspect` and both domains automatic — widened along one axis so a
 * data unit has the same length along x and y (ticks then lie inside, the ends need not be ticks;
 * rounding both ends out first would waste much of the canvas).
 */
function resolveAxes(
  area: PlotArea,
  extentX: readonly [number, number] | undefined,
  extentY: readonly [number, number] | undefined,
  explicitX: readonly [number, number] | undefined,
  explicitY: readonly [number, number] | undefined,
  equalAspect: boolean,
  pad = 0.05,
): ResolvedAxes {
  const countX = tickCount(area.width);
  const countY = tickCount(area.height);
  const padded = (extent: readonly [number, number] | undefined) => padExtent(widenFlatExtent(extent ?? [0, 1]), pad);
  let xDomain: readonly [number, number];
  let yDomain: readonly [number, number];
  let xTicks: readonly number[];
  let yTicks: readonly number[];
  if (equalAspect && !explicitX && !explicitY) {
    const widened = equalAspectDomains(padded(extentX), padded(extentY), area.width, area.height);
    xDomain = widened.x;
    yDomain = widened.y;
    xTicks = niceTicks(xDomain[0], xDomain[1], countX);
    yTicks = niceTicks(yDomain[0], yDomain[1], countY);
  } else {
    const resolve = (explicit: readonly [number, number] | undefined, extent: readonly [number, number] | undefined, count: number) => {
      if (explicit) return { domain: explicit, ticks: niceTicks(explicit[0], explicit[1], count) };
      const axis: NiceAxis = niceAxis(...padded(extent), count);
      return { domain: axis.domain, ticks: axis.ticks };
    };
    ({ domain: xDomain, ticks: xTicks } = resolve(explicitX, extentX, countX));
    ({ domain: yDomain, ticks: yTicks } = resolve(explicitY, extentY, countY));
  }
  return {
    x: linearScale(xDomain, [area.left, area.left + area.width]),
    // Pixel y grows downward, so the domain's low end maps to the area's bottom.
    y: linearScale(yDomain, [area.top + area.height, area.top]),
    xTicks,
    yTicks,
  };
}

function insideDomain(scale: Scale, value: number): boolean {
  const [lo, hi] = scale.domain;
  return value >= Math.min(lo, hi) && value <= Math.max(lo, hi);
}

/** Circles for the finite points inside both domains; returns them and how many fell outside. */
function circles(points: PointSet, x: Scale, y: Scale, radius: number): { marks: Markup[]; outside: number } {
  const marks: Markup[] = [];
  let outside = 0;
  for (let i = 0; i < points.xs.length; i++) {
    const px = points.xs[i]!;
    const py = points.ys[i]!;
    if (!insideDomain(x, px) || !insideDomain(y, py)) {
      outside++;
      continue;
    }
    marks.push(el('circle', { cx: x.map(px), cy: y.map(py), r: radius }));
  }
  return { marks, outside };
}

function defaultRadius(totalPoints: number): number {
  if (totalPoints <= 500) return 3;
  if (totalPoints <= 3000) return 2;
  return 1.4;
}

// ------------------------------------------------------------------------------------------------
// Scatter

export interface ScatterSeries {
  points: PointsInput;
  label?: string;
  /** Any CSS colour; default: the palette colour for the series' position. */
  color?: string;
  /** Marker radius in px; default 3, 2 or 1.4 px depending on how many points the chart has. */
  radius?: number;
  /** Marker opacity; default 0.65, so overlapping clouds stay readable. */
  opacity?: number;
}

export interface ScatterPlotOptions extends PlotSize, AxisLabels {
  series: readonly ScatterSeries[];
  title?: string;
  /** Fixed x range; points outside it are not drawn. Default: the data's extent, padded and rounded to ticks. */
  xDomain?: readonly [number, number];
  yDomain?: readonly [number, number];
  /** Same scale along x and y (default true: these are 2-D distributions). Only when neither domain is given. */
  equalAspect?: boolean;
}

/**
 * Overlaid scatter plot, one colour per series, drawn in order (the last on top). Each series is
 * a `<g class="series">` of `<circle>`s, one per drawn point.
 */
export function scatterPlot(opts: ScatterPlotOptions): string {
  const where = 'scatterPlot';
  const { width = 520, height = 440 } = opts;
  checkSize(where, width, height);
  checkDomain(where, 'xDomain', opts.xDomain);
  checkDomain(where, 'yDomain', opts.yDomain);
  const sets = opts.series.map((s, i) => pointSet(`${where}: series ${i}`, s.points));
  const colors = opts.series.map((s, i) => s.color ?? paletteColor(i));
  const entries: LegendEntry[] = [];
  opts.series.forEach((s, i) => {
    if (s.label) entries.push({ label: s.label, color: colors[i]!, marker: 'point' });
  });
  const nonFinite = sets.reduce((acc, s) => acc + s.nonFinite, 0);
  const total = sets.reduce((acc, s) => acc + s.xs.length, 0);

  // The note's presence changes the bottom margin, and "outside" is only known after mapping;
  // reserving the line whenever a domain is explicit (or points are non-finite) keeps one pass.
  const mayOmit = nonFinite > 0 || opts.xDomain !== undefined || opts.yDomain !== undefined;
  const f = frame(width, height, { title: opts.title, legend: entries, xLabel: opts.xLabel, yLabel: opts.yLabel, note: mayOmit });
  const ax = resolveAxes(
    f.area,
    finiteExtent(...sets.map((s) => s.xs)),
    finiteExtent(...sets.map((s) => s.ys)),
    opts.xDomain,
    opts.yDomain,
    opts.equalAspect ?? true,
  );

  let outside = 0;
  const groups = sets.map((points, i) => {
    const series = opts.series[i]!;
    const drawn = circles(points, ax.x, ax.y, series.radius ?? defaultRadius(total));
    outside += drawn.outside;
    return el('g', { class: 'series', fill: colors[i]!, 'fill-opacity': series.opacity ?? 0.65 }, ...drawn.marks);
  });
  const note = omissionNote(nonFinite, outside);
  return svgDocument({ width, height, title: opts.title, description: note }, [
    axes({ area: f.area, ...ax, xLabel: opts.xLabel, yLabel: opts.yLabel }),
    ...groups,
    ...(opts.title ? [chartTitle(opts.title, width)] : []),
    legend(entries, f.legendX, f.area.top),
    ...(note ? [footnote(note, height)] : []),
  ]);
}

// ------------------------------------------------------------------------------------------------
// Quiver (vector fields)

/**
 * A vector field sampled at points of a regular grid: arrow i starts from (x[i], y[i]) with
 * components (u[i], v[i]). All four arrays have one entry per arrow, in any order — e.g. the grid
 * from `gridPoints` and the [N, 2] score a model returns for it, split into columns.
 */
export interface VectorField {
  readonly x: ArrayLike<number>;
  readonly y: ArrayLike<number>;
  readonly u: ArrayLike<number>;
  readonly v: ArrayLike<number>;
}

/**
 * How arrow lengths follow the vector magnitudes |s|, with c the grid cell (the smaller grid
 * spacing) and M the largest finite magnitude:
 * - 'max': length = 0.9c · |s| / M — proportional; the longest arrow is 0.9 of a cell.
 * - 'log': length = 0.9c · ln(1 + |s|/m) / ln(1 + M/m), m the median magnitude — still monotone,
 *   but compresses the very large scores far from the data, so the field near the data stays visible.
 * - 'unit': every arrow 0.9c long; direction only.
 */
export type ArrowNormalization = 'max' | 'log' | 'unit';

/**
 * The x and y coordinates of an nx × ny regular grid over [x0, x1] × [y0, y1], row by row
 * (y outer, x inner): the layout `quiverComparison` expects, and the [N, 2] rows to feed a score model.
 */
export function gridPoints(xRange: readonly [number, number], yRange: readonly [number, number], nx: number, ny: number): { x: Float64Array; y: Float64Array; xy: Float64Array } {
  if (!Number.isInteger(nx) || !Number.isInteger(ny) || nx < 1 || ny < 1) throw new RangeError(`gridPoints: nx and ny must be positive integers, got ${nx} × ${ny}`);
  const x = new Float64Array(nx * ny);
  const y = new Float64Array(nx * ny);
  const xy = new Float64Array(2 * nx * ny);
  const at = (range: readonly [number, number], k: number, n: number) => (n === 1 ? (range[0] + range[1]) / 2 : range[0] + ((range[1] - range[0]) * k) / (n - 1));
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const idx = j * nx + i;
      x[idx] = at(xRange, i, nx);
      y[idx] = at(yRange, j, ny);
      xy[2 * idx] = x[idx]!;
      xy[2 * idx + 1] = y[idx]!;
    }
  }
  return { x, y, xy };
}

interface Arrows {
  /** Indices of the arrows that can be drawn (finite position and components). */
  readonly index: number[];
  readonly nonFinite: number;
  readonly magnitudes: Float64Array;
  readonly cell: number;
  readonly extentX: [number, number] | undefined;
  readonly extentY: [number, number] | undefined;
}

/** The smallest gap between distinct sorted values: the grid spacing along one axis. */
function smallestGap(values: number[]): number | undefined {
  values.sort((a, b) => a - b);
  const span = values[values.length - 1]! - values[0]!;
  let gap = Infinity;
  for (let i = 1; i < values.length; i++) {
    const d = values[i]! - values[i - 1]!;
    // Coordinates of one grid column can differ by float32 rounding; those are not a grid step.
    if (d > span * 1e-6 && d < gap) gap = d;
  }
  return Number.isFinite(gap) ? gap : undefined;
}

function analyseField(where: string, field: VectorField): Arrows {
  const n = field.x.length;
  if (field.y.length !== n || field.u.length !== n || field.v.length !== n) {
    throw new RangeError(`${where}: x, y, u, v must have one entry per arrow, got lengths ${field.x.length}, ${field.y.length}, ${field.u.length}, ${field.v.length}`);
  }
  const index: number[] = [];
  const magnitudes = new Float64Array(n);
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = field.x[i]!;
    const y = field.y[i]!;
    const u = field.u[i]!;
    const v = field.v[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(u) || !Number.isFinite(v)) continue;
    const m = Math.hypot(u, v);
    if (!Number.isFinite(m)) continue;
    magnitudes[i] = m;
    index.push(i);
    xs.push(x);
    ys.push(y);
  }
  const extentX = finiteExtent(xs);
  const extentY = finiteExtent(ys);
  const gaps = [smallestGap([...new Set(xs)]), smallestGap([...new Set(ys)])].filter((g): g is number => g !== undefined);
  let cell = gaps.length > 0 ? Math.min(...gaps) : 0;
  if (!(cell > 0)) {
    // A single arrow (or a single row of identical positions): a tenth of the extent, else 1.
    const span = Math.max(extentX ? extentX[1] - extentX[0] : 0, extentY ? extentY[1] - extentY[0] : 0);
    cell = span > 0 ? span / 10 : 1;
  }
  return { index, nonFinite: n - index.length, magnitudes, cell, extentX, extentY };
}

/** Magnitude statistics that fix the arrow lengths; shared between panels to keep them comparable. */
interface ArrowReference {
  readonly max: number;
  readonly median: number;
  readonly cell: number;
}

function arrowReference(fields: readonly Arrows[]): ArrowReference {
  const positive: number[] = [];
  for (const f of fields) for (const i of f.index) if (f.magnitudes[i]! > 0) positive.push(f.magnitudes[i]!);
  positive.sort((a, b) => a - b);
  const max = positive.length > 0 ? positive[positive.length - 1]! : 0;
  const median = positive.length > 0 ? positive[Math.floor((positive.length - 1) / 2)]! : 0;
  return { max, median, cell: Math.min(...fields.map((f) => f.cell)) };
}

const ARROW_FILL_OF_CELL = 0.9;

/** Arrow length in data units for magnitude m. */
function arrowLength(m: number, ref: ArrowReference, normalize: ArrowNormalization, scale: number | undefined): number {
  if (scale !== undefined) return scale * m;
  if (ref.max === 0) return 0;
  const full = ARROW_FILL_OF_CELL * ref.cell;
  switch (normalize) {
    case 'unit':
      return m > 0 ? full : 0;
    case 'log':
      return (full * Math.log1p(m / ref.median)) / Math.log1p(ref.max / ref.median);
    case 'max':
      return (full * m) / ref.max;
  }
}

function describeArrows(ref: ArrowReference, normalize: ArrowNormalization, scale: number | undefined): string {
  const max = formatNumber(ref.max, 3);
  if (scale !== undefined) return `arrows span ${formatNumber(scale, 4)} × (u, v) data units; largest |s| = ${max}`;
  switch (normalize) {
    case 'unit':
      return `arrows show direction only (equal lengths); largest |s| = ${max}`;
    case 'log':
      return `arrow length ∝ log(1 + |s|/${formatNumber(ref.median, 3)}); longest = 0.9 cell at |s| = ${max}`;
    case 'max':
      return `arrow length ∝ |s|; longest = 0.9 cell at |s| = ${max}`;
  }
}

interface QuiverPanel {
  readonly body: Markup[];
  readonly note: string;
}

/** What one panel of `quiverComparison` draws: one field, titled, with the shared options. */
interface QuiverPanelOptions extends AxisLabels {
  readonly grid: VectorField;
  readonly title: string;
  readonly normalize?: ArrowNormalization | undefined;
  readonly scale?: number | undefined;
  readonly background?: PointsInput | undefined;
  readonly xDomain?: readonly [number, number] | undefined;
  readonly yDomain?: readonly [number, number] | undefined;
}

/** The chart body of one quiver panel laid out in `width` × `height` (its own coordinates). */
function quiverPanel(
  opts: QuiverPanelOptions, arrows: Arrows, ref: ArrowReference, width: number, height: number,
  extents: { x: readonly [number, number] | undefined; y: readonly [number, number] | undefined },
): QuiverPanel {
  const normalize = opts.normalize ?? 'max';
  const f = frame(width, height, { title: opts.title, xLabel: opts.xLabel, yLabel: opts.yLabel, note: true });
  // Pad by half a cell beyond the grid so the outermost (centred) arrows stay inside the frame.
  const padCell = (e: readonly [number, number] | undefined): [number, number] | undefined => (e ? [e[0] - ref.cell / 2, e[1] + ref.cell / 2] : undefined);
  const ax = resolveAxes(f.area, padCell(extents.x), padCell(extents.y), opts.xDomain, opts.yDomain, true, 0);

  const body: Markup[] = [axes({ area: f.area, ...ax, xLabel: opts.xLabel, yLabel: opts.yLabel })];
  if (opts.background) {
    const points = pointSet('quiverComparison: background', opts.background);
    body.push(el('g', { class: 'background', fill: '#999999', 'fill-opacity': 0.35 }, ...circles(points, ax.x, ax.y, 1.6).marks));
  }

  const paths: Markup[] = [];
  let outside = 0;
  for (const i of arrows.index) {
    const m = arrows.magnitudes[i]!;
    const length = arrowLength(m, ref, normalize, opts.scale);
    if (!(length > 0) || !Number.isFinite(length)) continue; // a zero vector has no direction to draw
    const x = opts.grid.x[i]!;
    const y = opts.grid.y[i]!;
    if (!insideDomain(ax.x, x) || !insideDomain(ax.y, y)) {
      outside++;
      continue;
    }
    const dx = (opts.grid.u[i]! / m) * length;
    const dy = (opts.grid.v[i]! / m) * length;
    // Centred on the grid point (pivot in the middle), which reads best on dense grids.
    const tailX = ax.x.map(x - dx / 2);
    const tailY = ax.y.map(y - dy / 2);
    const tipX = ax.x.map(x + dx / 2);
    const tipY = ax.y.map(y + dy / 2);
    paths.push(el('path', { d: arrowPath(tailX, tailY, tipX, tipY) }));
  }
  body.push(el('g', { class: 'arrows', stroke: '#1f3b73', 'stroke-width': 1.2, fill: 'none', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }, ...paths));
  body.push(chartTitle(opts.title, width));
  const omitted = omissionNote(arrows.nonFinite, outside, 'arrow');
  const note = [describeArrows(ref, normalize, opts.scale), omitted].filter(Boolean).join('; ');
  body.push(footnote(note, height));
  return { body, note };
}

/** Shaft plus a two-stroke head (30% of the length, ±25°), as one path in pixel coordinates. */
function arrowPath(x0: number, y0: number, x1: number, y1: number): string {
  const length = Math.hypot(x1 - x0, y1 - y0);
  const head = 0.3 * length;
  const angle = Math.atan2(y1 - y0, x1 - x0);
  const spread = (25 * Math.PI) / 180;
  const hx1 = x1 - head * Math.cos(angle - spread);
  const hy1 = y1 - head * Math.sin(angle - spread);
  const hx2 = x1 - head * Math.cos(angle + spread);
  const hy2 = y1 - head * Math.sin(angle + spread);
  const n = (v: number) => formatNumber(v);
  return `M${n(x0)} ${n(y0)}L${n(x1)} ${n(y1)}M${n(hx1)} ${n(hy1)}L${n(x1)} ${n(y1)}L${n(hx2)} ${n(hy2)}`;
}

function checkScale(where: string, scale: number | undefined): void {
  if (scale !== undefined && (!(scale > 0) || !Number.isFinite(scale))) throw new RangeError(`${where}: scale must be positive and finite, got ${scale}`);
}

export interface QuiverComparisonOptions extends PlotSize, AxisLabels {
  learned: VectorField;
  truth: VectorField;
  title?: string;
  /** Panel titles; default ['learned score', 'true score']. */
  labels?: readonly [string, string];
  /** Default 'max'. See `ArrowNormalization`. */
  normalize?: ArrowNormalization;
  /** Fixed arrow scale: an arrow spans `scale · (u, v)` data units. Overrides `normalize`. */
  scale?: number;
  /** Points drawn lightly under the arrows, e.g. the training data. */
  background?: PointsInput;
  xDomain?: readonly [number, number];
  yDomain?: readonly [number, number];
}

/**
 * Learned and true vector fields side by side in one SVG, on the same axes and the same arrow
 * scale (the normalisation's reference magnitudes are taken over both fields), so equal arrows
 * mean equal vectors.
 */
export function quiverComparison(opts: QuiverComparisonOptions): string {
  const where = 'quiverComparison';
  const { width = 960, height = 500 } = opts;
  checkSize(where, width / 2, height);
  checkDomain(where, 'xDomain', opts.xDomain);
  checkDomain(where, 'yDomain', opts.yDomain);
  checkScale(where, opts.scale);
  const fields = [analyseField(`${where}: learned`, opts.learned), analyseField(`${where}: truth`, opts.truth)] as const;
  const ref = arrowReference(fields);
  const extents = {
    x: finiteExtent(...fields.flatMap((f) => (f.extentX ? [f.extentX] : []))),
    y: finiteExtent(...fields.flatMap((f) => (f.extentY ? [f.extentY] : []))),
  };
  const [learnedLabel, truthLabel] = opts.labels ?? ['learned score', 'true score'];
  const top = opts.title ? 28 : 0;
  const panelWidth = width / 2;
  const panelHeight = height - top;
  const panels = ([[opts.learned, learnedLabel], [opts.truth, truthLabel]] as const).map(([grid, label], k) => {
    const panel = quiverPanel(
      {
        grid, title: label, scale: opts.scale, normalize: opts.normalize, background: opts.background,
        xDomain: opts.xDomain, yDomain: opts.yDomain, xLabel: opts.xLabel, yLabel: opts.yLabel,
      },
      fields[k]!, ref, panelWidth, panelHeight, extents,
    );
    return { markup: el('g', { class: 'panel', transform: `translate(${formatNumber(k * panelWidth)} ${formatNumber(top)})` }, ...panel.body), note: panel.note };
  });
  return svgDocument({ width, height, title: opts.title, description: panels.map((p) => p.note).join(' | ') }, [
    ...panels.map((p) => p.markup),
    ...(opts.title ? [chartTitle(opts.title, width)] : []),
  ]);
}

// ------------------------------------------------------------------------------------------------
// Line plots

export interface LineSeries {
  /** x values; default 0, 1, 2, … (e.g. the training step). */
  x?: ArrayLike<number>;
  y: ArrayLike<number>;
  label?: string;
  color?: string;
  /** Stroke width in px (default 1.6). */
  strokeWidth?: number;
}

export interface LinePlotOptions extends PlotSize, AxisLabels {
  series: readonly LineSeries[];
  title?: string;
  /**
   * Log-10 y axis. Values ≤ 0 cannot be placed on it: they are skipped like non-finite ones (the
   * line breaks there) and counted in the footnote. Losses that can be negative (ISM, SSM) need
   * a linear axis or an offset.
   */
  logY?: boolean;
  /**
   * Longer series are thinned before drawing, keeping each bucket's minimum and maximum (so spikes
   * survive): at most about this many vertices per series (default 2000).
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
 * that cannot be drawn, with an optional log-10 y axis.
 */
export function linePlot(opts: LinePlotOptions): string {
  const where = 'linePlot';
  const { width = 640, height = 400 } = opts;
  checkSize(where, width, height);
  const logY = opts.logY ?? false;
  const maxPoints = opts.maxPoints ?? 2000;
  if (!(maxPoints >= 4)) throw new RangeError(`${where}: maxPoints must be at least 4, got ${maxPoints}`);
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
    ...(opts.title ? [chartTitle(opts.title, width)] : []),
    legend(entries, f.legendX, f.area.top),
    ...(note ? [footnote(note, height)] : []),
  ]);
}

// ------------------------------------------------------------------------------------------------
// Trajectories

export interface TrajectoryPlotOptions extends PlotSize, AxisLabels {
  /** One entry per trajectory: its successive positions. */
  paths: readonly PointsInput[];
  title?: string;
  /** Points drawn lightly underneath, e.g. the data distribution. */
  background?: PointsInput;
  backgroundLabel?: string;
  /** One colour for every path; default: the palette, cycling. */
  color?: string;
  xDomain?: readonly [number, number];
  yDomain?: readonly [number, number];
  equalAspect?: boolean;
}

/**
 * Sampler trajectories (e.g. Langevin dynamics): each path a `<polyline>` in `<g class="paths">`,
 * its start a hollow circle and its end a filled one in `<g class="markers">`. A path that
 * diverges is cut at its first non-finite position: it ends at its last finite one (later values
 * of a diverged chain carry no information), and the footnote counts the cut positions.
 * Positions outside explicit domains are not clipped (the domains only set the axes).
 */
export function trajectoryPlot(opts: TrajectoryPlotOptions): string {
  const where = 'trajectoryPlot';
  const { width = 520, height = 440 } = opts;
  checkSize(where, width, height);
  checkDomain(where, 'xDomain', opts.xDomain);
  checkDomain(where, 'yDomain', opts.yDomain);
  // Read each path whole (pointSet would silently close the gap over a non-finite position).
  const paths = opts.paths.map((p, k) => {
    const all = pointSet(`${where}: path ${k}`, p);
    if (all.nonFinite === 0) return { xs: all.xs, ys: all.ys, cut: 0 };
    const full = wholePath(`${where}: path ${k}`, p);
    let end = 0;
    while (end < full.xs.length && Number.isFinite(full.xs[end]!) && Number.isFinite(full.ys[end]!)) end++;
    return { xs: full.xs.subarray(0, end), ys: full.ys.subarray(0, end), cut: full.xs.length - end };
  });
  const background = opts.background ? pointSet(`${where}: background`, opts.background) : undefined;
  const cut = paths.reduce((acc, p) => acc + p.cut, 0);

  const entries: LegendEntry[] = [];
  if (background && opts.backgroundLabel) entries.push({ label: opts.backgroundLabel, color: '#999999', marker: 'point' });
  if (paths.some((p) => p.xs.length > 0)) {
    entries.push({ label: 'start', color: '#333333', marker: 'hollow' }, { label: 'end', color: '#333333', marker: 'point' });
  }
  const f = frame(width, height, { title: opts.title, legend: entries, xLabel: opts.xLabel, yLabel: opts.yLabel, note: cut > 0 || background !== undefined });
  const ax = resolveAxes(
    f.area,
    finiteExtent(...paths.map((p) => p.xs), ...(background ? [background.xs] : [])),
    finiteExtent(...paths.map((p) => p.ys), ...(background ? [background.ys] : [])),
    opts.xDomain,
    opts.yDomain,
    opts.equalAspect ?? true,
  );

  const lines: Markup[] = [];
  const markers: Markup[] = [];
  paths.forEach((p, k) => {
    if (p.xs.length === 0) return;
    const color = opts.color ?? paletteColor(k);
    const px = Array.from(p.xs, (v) => ax.x.map(v));
    const py = Array.from(p.ys, (v) => ax.y.map(v));
    if (p.xs.length >= 2) lines.push(el('polyline', { points: pointList(px, py), stroke: color }));
    markers.push(el('circle', { cx: px[0]!, cy: py[0]!, r: 3.5, fill: '#ffffff', stroke: color, 'stroke-width': 1.5 }));
    if (p.xs.length >= 2) markers.push(el('circle', { cx: px[px.length - 1]!, cy: py[py.length - 1]!, r: 3.5, fill: color }));
  });
  const body: Markup[] = [axes({ area: f.area, ...ax, xLabel: opts.xLabel, yLabel: opts.yLabel })];
  let backgroundOutside = 0;
  if (background) {
    const drawn = circles(background, ax.x, ax.y, 1.6);
    backgroundOutside = drawn.outside;
    body.push(el('g', { class: 'background', fill: '#999999', 'fill-opacity': 0.35 }, ...drawn.marks));
  }
  body.push(
    el('g', { class: 'paths', fill: 'none', 'stroke-width': 1.2, 'stroke-opacity': 0.8, 'stroke-linejoin': 'round' }, ...lines),
    el('g', { class: 'markers' }, ...markers),
  );
  const notes = [
    cut > 0 ? `${plural(cut, 'position')} after a path's first non-finite one not drawn` : undefined,
    omissionNote(background?.nonFinite ?? 0, backgroundOutside, 'background point'),
  ].filter((s): s is string => s !== undefined);
  const note = notes.length > 0 ? notes.join('; ') : undefined;
  return svgDocument({ width, height, title: opts.title, description: note }, [
    ...body,
    ...(opts.title ? [chartTitle(opts.title, width)] : []),
    legend(entries, f.legendX, f.area.top),
    ...(note ? [footnote(note, height)] : []),
  ]);
}

/** All positions of a path in order, non-finite ones included. */
function wholePath(where: string, input: PointsInput): { xs: Float64Array; ys: Float64Array } {
  if (Array.isArray(input)) {
    const pairs = input as ReadonlyArray<readonly [number, number]>;
    return { xs: Float64Array.from(pairs, (p) => p[0]), ys: Float64Array.from(pairs, (p) => p[1]) };
  }
  if ('xy' in input) {
    const n = input.xy.length / 2;
    return { xs: Float64Array.from({ length: n }, (_, i) => input.xy[2 * i]!), ys: Float64Array.from({ length: n }, (_, i) => input.xy[2 * i + 1]!) };
  }
  if ('x' in input) return { xs: Float64Array.from(input.x), ys: Float64Array.from(input.y) };
  throw new TypeError(`${where}: unsupported points layout`);
}
