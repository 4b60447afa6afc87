// The score-field chart: a learned 2-D vector field beside the true one (or an estimate of it), in
// two panels on the same axes and the same arrow scale, plus the regular grid such a field is
// evaluated on. Arrow lengths are normalised (proportional, logarithmic or unit) and the footnote
// states how, so lengths can be read back as numbers.

import { checkNumber, checkOneOf, checkOptions, checkString, showValue } from '@scorch/options';
import {
  type AxisLabels, FRAME_KEYS, type PlotSize, type PointsInput, checkDomain, checkFrameOptions, checkOptionsArgument, describeArgument, circles, frame, insideDomain,
  omissionNote, pointSet, resolveAxes,
} from './chart.js';
import { type Markup, axes, chartTitle, el, elList, equalAspectDomains, finiteExtent, footnote, formatNumber, hasTitle, svgDocument } from './svg.js';

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
export type ArrowNormalization = (typeof ARROW_NORMALIZATIONS)[number];

const ARROW_NORMALIZATIONS = ['max', 'log', 'unit'] as const;

/**
 * The x and y coordinates of an nx × ny regular grid over [x0, x1] × [y0, y1], row by row
 * (y outer, x inner): the layout `quiverComparison` expects, and the [N, 2] rows to feed a score model.
 * A field is `{ x: grid.x, y: grid.y, u, v }` (not `{ ...grid, u, v }`: a field's keys are x, y, u, v).
 */
export function gridPoints(xRange: readonly [number, number], yRange: readonly [number, number], nx: number, ny: number): { x: Float64Array; y: Float64Array; xy: Float64Array } {
  if (!Number.isInteger(nx) || !Number.isInteger(ny) || nx < 1 || ny < 1) throw new RangeError(`gridPoints: nx and ny must be positive integers, got ${nx} × ${ny}`);
  for (const [name, range] of [['xRange', xRange], ['yRange', yRange]] as const) {
    if (!Array.isArray(range) || range.length !== 2 || !range.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new RangeError(`gridPoints: ${name} must be [low, high], two finite numbers, got ${showValue(range)}`);
    }
  }
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
  /** The grid step; undefined with fewer than two distinct positions along both axes. */
  readonly cell: number | undefined;
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
  if (field === null || typeof field !== 'object') throw new TypeError(`${where} must be a vector field { x, y, u, v } (arrays of numbers, one entry per arrow), got ${describeArgument(field)}`);
  for (const name of ['x', 'y', 'u', 'v'] as const) {
    const values: unknown = field[name];
    if (values === null || typeof values !== 'object' || typeof (values as { length?: unknown }).length !== 'number') {
      throw new TypeError(`${where}: ${name} must be an array of numbers, one entry per arrow, got ${describeArgument(values)}`);
    }
  }
  const n = field.x.length;
  if (field.y.length !== n || field.u.length !== n || field.v.length !== n) {
    throw new RangeError(`${where}: x, y, u, v must have one entry per arrow, got lengths ${field.x.length}, ${field.y.length}, ${field.u.length}, ${field.v.length}`);
  }
  checkOptions(where, field, ['x', 'y', 'u', 'v']);
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
  const cell = gaps.length > 0 ? Math.min(...gaps) : undefined;
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
  // Only fields with a grid step set the cell: a fallback for an all-NaN field (1) shrank the other's arrows.
  const cells = fields.flatMap((f) => (f.cell !== undefined ? [f.cell] : []));
  return { max, median, cell: cells.length > 0 ? Math.min(...cells) : fallbackCell(fields) };
}

/** With no grid step anywhere (a single arrow, or one position): a tenth of the combined extent, else 1. */
function fallbackCell(fields: readonly Arrows[]): number {
  const ex = finiteExtent(...fields.flatMap((f) => (f.extentX ? [f.extentX] : [])));
  const ey = finiteExtent(...fields.flatMap((f) => (f.extentY ? [f.extentY] : [])));
  const span = Math.max(ex ? ex[1] - ex[0] : 0, ey ? ey[1] - ey[0] : 0);
  return span > 0 ? span / 10 : 1;
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

/**
 * A magnitude for the footnote, to `digits` significant digits: fixed decimals (formatNumber's,
 * for coordinates) wrote 4.2e-4 as 0, which misstates data in large units.
 */
function magnitude(value: number, digits: number): string {
  return Number.isFinite(value) ? String(Number(value.toPrecision(digits))) : String(value);
}

function describeArrows(ref: ArrowReference, normalize: ArrowNormalization, scale: number | undefined): string {
  const max = magnitude(ref.max, 4);
  if (scale !== undefined) return `arrows span ${magnitude(scale, 4)} × (u, v) data units; largest |s| = ${max}`;
  switch (normalize) {
    case 'unit':
      return `arrows show direction only (equal lengths); largest |s| = ${max}`;
    case 'log':
      return `arrow length ∝ log(1 + |s|/${magnitude(ref.median, 4)}); longest = 0.9 cell at |s| = ${max}`;
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
  // Arrows keep their angles and lengths only where a data unit is as long along x as along y.
  // resolveAxes gives that to automatic domains; given ones are widened along one axis to it
  // (so they still cover what was asked for), and a missing one is taken from the grid.
  let xDomain = opts.xDomain;
  let yDomain = opts.yDomain;
  if (xDomain || yDomain) {
    const equal = equalAspectDomains(
      xDomain ?? padCell(extents.x) ?? yDomain!, yDomain ?? padCell(extents.y) ?? xDomain!, f.area.width, f.area.height,
    );
    xDomain = equal.x;
    yDomain = equal.y;
  }
  const ax = resolveAxes(f.area, padCell(extents.x), padCell(extents.y), xDomain, yDomain, true, 0);

  const body: Markup[] = [axes({ area: f.area, ...ax, xLabel: opts.xLabel, yLabel: opts.yLabel })];
  let backgroundOmitted: string | undefined;
  if (opts.background !== undefined) {
    const points = pointSet('quiverComparison: background', opts.background);
    const drawn = circles(points, ax.x, ax.y, 1.6);
    backgroundOmitted = omissionNote(points.nonFinite, drawn.outside, 'background point');
    body.push(elList('g', { class: 'background', fill: '#999999', 'fill-opacity': 0.35 }, drawn.marks));
  }

  const paths: Markup[] = [];
  let outside = 0;
  // Arrows whose length overflows (a `scale` times a magnitude past the float range): not drawn,
  // and counted with the non-finite ones.
  let overflowed = 0;
  for (const i of arrows.index) {
    const m = arrows.magnitudes[i]!;
    const length = arrowLength(m, ref, normalize, opts.scale);
    if (length === Infinity) {
      overflowed++;
      continue;
    }
    if (!(length > 0)) continue; // a zero vector has no direction to draw
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
  // Clipped to the frame by a nested viewport (no document-wide id, so two plots in one page cannot
  // clash): with `scale` an arrow is as long as its data, and would otherwise run across the other
  // panel; the viewBox keeps the panel's coordinates.
  const { left, top, width: w, height: h } = f.area;
  body.push(el('svg', { x: left, y: top, width: w, height: h, viewBox: `${formatNumber(left)} ${formatNumber(top)} ${formatNumber(w)} ${formatNumber(h)}`, overflow: 'hidden' },
    elList('g', { class: 'arrows', stroke: '#1f3b73', 'stroke-width': 1.2, fill: 'none', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }, paths)));
  body.push(...f.title);
  const omitted = omissionNote(arrows.nonFinite + overflowed, outside, 'arrow');
  const note = [describeArrows(ref, normalize, opts.scale), omitted, backgroundOmitted].filter(Boolean).join('; ');
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

export interface QuiverComparisonOptions extends PlotSize, AxisLabels {
  /** The left panel's field (e.g. the model's score). */
  learned: VectorField;
  /** The right panel's field (the true score, or an estimate of it). */
  truth: VectorField;
  /** Shown above both panels (fitted to the width) and as the SVG's <title>; default none. */
  title?: string;
  /** Panel titles, two strings; default ['learned score', 'true score']. */
  labels?: readonly [string, string];
  /** 'max', 'log' or 'unit'; default 'max'. See `ArrowNormalization`. */
  normalize?: ArrowNormalization;
  /** Fixed arrow scale, > 0: an arrow spans `scale · (u, v)` data units. Overrides `normalize`. */
  scale?: number;
  /** Points drawn lightly under the arrows, e.g. the training data. */
  background?: PointsInput;
  /**
   * Fixed axis ranges (default: the grid, padded by half a cell). Widened along one axis so a data
   * unit is as long along x as along y, which arrows need to keep their angles and lengths.
   */
  xDomain?: readonly [number, number];
  yDomain?: readonly [number, number];
}

/**
 * Learned and true vector fields side by side in one SVG, on the same axes and the same arrow
 * scale (the normalisation's reference magnitudes are taken over both fields), so equal arrows
 * mean equal vectors. Width 960 (two panels of 480) and height 500 px by default. The options and
 * both fields are checked as every scorch function's are: an unknown key (with the closest valid
 * name), a null, a value of the wrong type or out of range throws; a field holds x, y, u and v only.
 */
export function quiverComparison(opts: QuiverComparisonOptions): string {
  const where = 'quiverComparison';
  checkOptionsArgument(where, opts, '{ learned, truth, title?, ... }');
  const fields = [analyseField(`${where}: learned`, opts.learned), analyseField(`${where}: truth`, opts.truth)] as const;
  checkOptions(where, opts, ['learned', 'truth', 'title', 'labels', 'normalize', 'scale', 'background', 'xDomain', 'yDomain', ...FRAME_KEYS]);
  // Two panels side by side, each at least the 100 px a single chart needs.
  checkFrameOptions(where, opts, 200);
  if (opts.labels !== undefined) {
    if (!Array.isArray(opts.labels) || opts.labels.length !== 2) throw new TypeError(`${where}: labels must be the two panel titles [learned, truth], got ${showValue(opts.labels)}`);
    opts.labels.forEach((label, k) => checkString(where, `labels[${k}]`, label, { required: true }));
  }
  if (opts.normalize !== undefined) checkOneOf(where, 'normalize', opts.normalize, ARROW_NORMALIZATIONS);
  checkNumber(where, 'scale', opts.scale, { min: 0, exclusiveMin: true });
  checkDomain(where, 'xDomain', opts.xDomain);
  checkDomain(where, 'yDomain', opts.yDomain);
  const { width = 960, height = 500 } = opts;
  const ref = arrowReference(fields);
  const extents = {
    x: finiteExtent(...fields.flatMap((f) => (f.extentX ? [f.extentX] : []))),
    y: finiteExtent(...fields.flatMap((f) => (f.extentY ? [f.extentY] : []))),
  };
  const [learnedLabel, truthLabel] = opts.labels ?? ['learned score', 'true score'];
  const title = hasTitle(opts.title) ? chartTitle(opts.title, width) : undefined;
  // The panels, each titled in its own frame, start below the overall title.
  const top = title ? title.bottom + 3 : 0;
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
    return { markup: elList('g', { class: 'panel', transform: `translate(${formatNumber(k * panelWidth)} ${formatNumber(top)})` }, panel.body), note: panel.note };
  });
  return svgDocument({ width, height, title: opts.title, description: panels.map((p) => p.note).join(' | ') }, [
    ...panels.map((p) => p.markup),
    ...(title ? [title.markup] : []),
  ]);
}
