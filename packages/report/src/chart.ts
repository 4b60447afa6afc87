// What every chart kind shares, between the SVG builder (svg.ts) and the charts themselves: the
// accepted point layouts and their reading, argument checks, the single-panel frame (margins for
// title, legend, labels and footnote), axes fitted to data, point marks, and the footnote that
// says what was not drawn.
//
// Every chart takes plain numbers (number[], Float32Array, Float64Array — what a tensor's `data()`
// reads back as) and returns a complete SVG document string with a viewBox, to be written to a
// .svg file or inlined in HTML as is. Data that cannot be drawn is skipped, never written as NaN:
// non-finite coordinates are dropped, points outside an explicitly given domain are dropped, and a
// note in the bottom-left corner says how many were left out, so nothing disappears silently.

import { checkNumber, checkString, showValue } from '@scorch/options';
import {
  type LegendEntry, type Markup, type PlotArea, type Scale, chartTitle, el, equalAspectDomains, hasTitle, legendWidth, linearScale,
  TICK_FONT, niceAxis, niceTicks, padExtent, plotArea, tickLabels,
} from './svg.js';
import { textWidth } from './textMetrics.js';

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

/** A chart's size; each chart has its own defaults. */
export interface PlotSize {
  /** Nominal width in px (also the viewBox width): finite, at least 100 (200 for quiverComparison's two panels). */
  width?: number;
  /** Nominal height in px (also the viewBox height): finite, at least 80. */
  height?: number;
}

/** Axis titles; default none. */
export interface AxisLabels {
  /** Title under the x axis. */
  xLabel?: string;
  /** Title beside the y axis, rotated. */
  yLabel?: string;
}

/** Every position of an input, in order, non-finite ones included. */
export function pointPath(where: string, input: PointsInput): { xs: Float64Array; ys: Float64Array } {
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
  } else if (input === null || typeof input !== 'object') {
    // `'xy' in input` throws its own TypeError for these, naming neither the chart nor the argument.
    throw new TypeError(`${where}: points must be [x, y] pairs, {x, y} arrays or {xy} interleaved, got ${describeArgument(input)}`);
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
  // Anything but a number is non-finite: Number() drew null (a NaN after JSON), '' and false at 0, true at 1.
  const num = (v: unknown) => (typeof v === 'number' ? v : NaN);
  return { xs: Float64Array.from({ length: n }, (_, i) => num(xAt(i))), ys: Float64Array.from({ length: n }, (_, i) => num(yAt(i))) };
}

/** The points of one input, split into finite coordinates and a count of the non-finite ones. */
export interface PointSet {
  readonly xs: Float64Array;
  readonly ys: Float64Array;
  readonly nonFinite: number;
}

export function pointSet(where: string, input: PointsInput): PointSet {
  const all = pointPath(where, input);
  const n = all.xs.length;
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const x = all.xs[i]!;
    const y = all.ys[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    xs[kept] = x;
    ys[kept] = y;
    kept++;
  }
  return { xs: xs.subarray(0, kept), ys: ys.subarray(0, kept), nonFinite: n - kept };
}

/** What an argument of the wrong kind is, for a message. */
export function describeArgument(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

// Argument checks. Every options object (the top level, each series, section, table or field)
// goes through @scorch/options' checkOptions: an unknown key is refused with the closest valid
// one, and null is refused (left out or undefined, an option takes its default). The required
// entries are checked first, so a call without them says what is missing; then the keys; then
// each value's type and range, in the checks below and in each chart.

/**
 * Checks an entry point's options argument and its required lists (the series, paths or
 * sections, each an object), so a call without them says what is missing rather than failing
 * as "Cannot read properties of undefined" inside the chart. `shape` shows what it takes.
 */
export function checkOptionsArgument(where: string, opts: unknown, shape: string): asserts opts is Record<string, unknown> {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new TypeError(`${where}: expected an options object ${shape}, got ${describeArgument(opts)}`);
}

/** A required list option whose entries are objects of the form `entry`. */
export function checkEntries(where: string, name: string, list: unknown, entry: string): void {
  if (!Array.isArray(list)) throw new TypeError(`${where}: ${name} must be an array of ${entry}, got ${describeArgument(list)}`);
  list.forEach((item, i) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new TypeError(`${where}: ${name}[${i}] must be ${entry}, got ${describeArgument(item)}`);
  });
}

/** The keys of `PlotSize` and `AxisLabels`, which every chart takes beside its own. */
export const FRAME_KEYS = ['width', 'height', 'xLabel', 'yLabel'] as const;

/**
 * Checks the options every chart takes: title, xLabel and yLabel strings, and a finite size of at
 * least `minWidth` × 80 px (the smallest the charts were ever allowed).
 */
export function checkFrameOptions(where: string, opts: Readonly<Record<string, unknown>>, minWidth = 100): void {
  for (const name of ['title', 'xLabel', 'yLabel']) checkString(where, name, opts[name]);
  checkNumber(where, 'width', opts.width, { min: minWidth });
  checkNumber(where, 'height', opts.height, { min: 80 });
}

/** An axis range option: left out, or [lo, hi] with both finite and lo < hi. */
export function checkDomain(where: string, name: string, domain: unknown): void {
  if (domain === undefined) return;
  if (!Array.isArray(domain) || domain.length !== 2) throw new TypeError(`${where}: ${name} must be an array [lo, hi], got ${showValue(domain)}`);
  const [lo, hi] = domain as [unknown, unknown];
  if (typeof lo !== 'number' || typeof hi !== 'number' || !Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi)) {
    throw new RangeError(`${where}: ${name} must be finite with lo < hi, got ${showValue(domain)}`);
  }
}

/** A colour option: left out, or a non-empty string (any CSS colour). */
export function checkColor(where: string, name: string, color: unknown): void {
  checkString(where, name, color, { nonEmpty: true });
}

/** `count` and the noun, with an s unless the count is 1 ("1 step", "0 steps", "2 steps"). */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** "3 non-finite points and 2 points outside the axes not drawn", or undefined when nothing was left out. */
export function omissionNote(nonFinite: number, outside: number, noun = 'point'): string | undefined {
  const parts: string[] = [];
  if (nonFinite > 0) parts.push(`${plural(nonFinite, `non-finite ${noun}`)}`);
  if (outside > 0) parts.push(`${plural(outside, noun)} outside the axes`);
  return parts.length > 0 ? `${parts.join(' and ')} not drawn` : undefined;
}

// ------------------------------------------------------------------------------------------------
// Layout of a single panel

export interface Frame {
  readonly width: number;
  readonly height: number;
  readonly area: PlotArea;
  /** Where a legend placed in the right margin starts. */
  readonly legendX: number;
  /** The title fitted to the width, or nothing when there is none (drawn last, over the data). */
  readonly title: readonly Markup[];
}

/** The tick labels a chart would draw in a given plot area (to size the margins to them). */
export type TickLabelsIn = (area: PlotArea) => { readonly x: readonly string[]; readonly y: readonly string[] };

/** The tick labels of two linear axes that `axesIn` resolves in a plot area (scatter, trajectories). */
export function linearTickLabels(axesIn: (area: PlotArea) => { readonly xTicks: readonly number[]; readonly yTicks: readonly number[] }): TickLabelsIn {
  return (area) => {
    const a = axesIn(area);
    return { x: tickLabels('linear', a.xTicks), y: tickLabels('linear', a.yTicks) };
  };
}

export function frame(
  width: number, height: number,
  opts: { title?: string | undefined; legend?: readonly LegendEntry[]; xLabel?: string | undefined; yLabel?: string | undefined; note?: boolean; tickLabels?: TickLabelsIn },
): Frame {
  const title = hasTitle(opts.title) ? chartTitle(opts.title, width) : undefined;
  const top = title ? title.bottom + 11 : 14;
  const bottom = (opts.xLabel ? 46 : 30) + (opts.note ? 12 : 0);
  // The legend stands beside the plot area and is as tall at most (legend's room).
  const legendSpace = opts.legend && opts.legend.length > 0 ? legendWidth(opts.legend, plotArea(width, height, { top, bottom, left: 0, right: 0 }).height) + 20 : 0;
  const margins = { top, right: 16 + legendSpace, bottom, left: opts.yLabel ? 66 : 52 };
  let area = plotArea(width, height, margins);
  if (opts.tickLabels) {
    // Wide y labels (1.000000005e9) were cut off at the left edge and covered the y title: widen
    // the margin to the widest (right-aligned 8 px from the frame; the title 10 px beyond), and
    // keep half the last x label (centred on the frame's right edge) on the canvas.
    const labels = opts.tickLabels(area);
    const widest = Math.max(0, ...labels.y.map((label) => textWidth(label, TICK_FONT)));
    const lastX = labels.x.length > 0 ? textWidth(labels.x[labels.x.length - 1]!, TICK_FONT) / 2 + 2 : 0;
    area = plotArea(width, height, {
      ...margins,
      left: Math.max(margins.left, 16 + widest + (opts.yLabel ? 26 : 0)),
      right: legendSpace + Math.max(16, lastX),
    });
  }
  return { width, height, area, legendX: area.left + area.width + 12, title: title ? [title.markup] : [] };
}

/** About one tick interval per 60 px, at least two. */
export function tickCount(pixels: number): number {
  return Math.max(2, Math.round(pixels / 60));
}

export interface ResolvedAxes {
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
 * rounding both ends out first would waste much of the canvas). With `equalAspect` 'explicit'
 * (the caller asked for it outright) explicit domains are widened so too, each end kept in (a
 * missing one is the padded data extent).
 */
export function resolveAxes(
  area: PlotArea,
  extentX: readonly [number, number] | undefined,
  extentY: readonly [number, number] | undefined,
  explicitX: readonly [number, number] | undefined,
  explicitY: readonly [number, number] | undefined,
  equalAspect: boolean | 'explicit',
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
  } else if (equalAspect === 'explicit' && (explicitX || explicitY)) {
    // With one domain given, the other is the padded data extent (ignoring the option drew ellipses).
    const widened = equalAspectDomains(explicitX ?? padded(extentX), explicitY ?? padded(extentY), area.width, area.height);
    xDomain = widened.x;
    yDomain = widened.y;
    xTicks = niceTicks(xDomain[0], xDomain[1], countX);
    yTicks = niceTicks(yDomain[0], yDomain[1], countY);
  } else {
    const resolve = (explicit: readonly [number, number] | undefined, extent: readonly [number, number] | undefined, count: number) => {
      if (explicit) return { domain: explicit, ticks: niceTicks(explicit[0], explicit[1], count) };
      const axis = niceAxis(...padded(extent), count);
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

export function insideDomain(scale: Scale, value: number): boolean {
  const [lo, hi] = scale.domain;
  return value >= Math.min(lo, hi) && value <= Math.max(lo, hi);
}

/** Circles for the finite points inside both domains; returns them and how many fell outside. */
export function circles(points: PointSet, x: Scale, y: Scale, radius: number): { marks: Markup[]; outside: number } {
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
