// The scatter chart: one or more 2-D point clouds overlaid (data against samples), on equal x and y
// scales by default, since these are 2-D distributions.

import { checkBoolean, checkNumber, checkOptions, checkString } from '@scorch/options';
import {
  type AxisLabels, FRAME_KEYS, type PlotSize, type PointsInput, checkColor, checkDomain, checkEntries, checkFrameOptions, checkOptionsArgument, circles, frame,
  linearTickLabels, omissionNote, pointSet, resolveAxes,
} from './chart.js';
import { type LegendEntry, type PlotArea, axes, elList, finiteExtent, footnote, legend, paletteColor, svgDocument } from './svg.js';

function defaultRadius(totalPoints: number): number {
  if (totalPoints <= 500) return 3;
  if (totalPoints <= 3000) return 2;
  return 1.4;
}


export interface ScatterSeries {
  /** The points to draw; non-finite ones are skipped and counted in the footnote. */
  points: PointsInput;
  /** Legend text; default (or ''): the series has no legend entry. */
  label?: string;
  /** Any CSS colour (a non-empty string); default: the palette colour for the series' position. */
  color?: string;
  /** Marker radius in px, > 0; default 3, 2 or 1.4 px depending on how many points the chart has. */
  radius?: number;
  /** Marker opacity in [0, 1]; default 0.65, so overlapping clouds stay readable. */
  opacity?: number;
}

export interface ScatterPlotOptions extends PlotSize, AxisLabels {
  /** The point clouds, drawn in order (the last on top). */
  series: readonly ScatterSeries[];
  /** Shown above the chart (fitted to the width) and as the SVG's <title>; default none. */
  title?: string;
  /**
   * Fixed x range [lo, hi], finite with lo < hi; points outside it are not drawn. Default: the
   * data's extent, padded and rounded to ticks.
   */
  xDomain?: readonly [number, number];
  /** Fixed y range, as `xDomain`. */
  yDomain?: readonly [number, number];
  /**
   * Same scale along x and y (default true: these are 2-D distributions), for automatic domains. Given
   * as true, also with one or both domains given: one axis is widened (given ends stay in) so a data unit has
   * the same length along x and y; left out, given domains are used as they are.
   */
  equalAspect?: boolean;
}

/**
 * Overlaid scatter plot, one colour per series, drawn in order (the last on top). Each series is
 * a `<g class="series">` of `<circle>`s, one per drawn point. Width 520 and height 440 px by
 * default. The options and each series are checked as every scorch function's are: an unknown
 * key (with the closest valid name), a null, a value of the wrong type or out of range throws.
 */
export function scatterPlot(opts: ScatterPlotOptions): string {
  const where = 'scatterPlot';
  checkOptionsArgument(where, opts, '{ series, title?, ... }');
  checkEntries(where, 'series', opts.series, 'a series { points, label?, color?, radius?, opacity? }');
  checkOptions(where, opts, ['series', 'title', 'xDomain', 'yDomain', 'equalAspect', ...FRAME_KEYS]);
  checkFrameOptions(where, opts);
  checkDomain(where, 'xDomain', opts.xDomain);
  checkDomain(where, 'yDomain', opts.yDomain);
  checkBoolean(where, 'equalAspect', opts.equalAspect);
  const { width = 520, height = 440 } = opts;
  const sets = opts.series.map((s, i) => pointSet(`${where}: series ${i}`, s.points));
  opts.series.forEach((s, i) => {
    const at = `${where}: series ${i}`;
    checkOptions(at, s, ['points', 'label', 'color', 'radius', 'opacity']);
    checkString(at, 'label', s.label);
    checkColor(at, 'color', s.color);
    checkNumber(at, 'radius', s.radius, { min: 0, exclusiveMin: true });
    checkNumber(at, 'opacity', s.opacity, { min: 0, max: 1 });
  });
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
  const axesIn = (area: PlotArea) => resolveAxes(
    area,
    finiteExtent(...sets.map((s) => s.xs)),
    finiteExtent(...sets.map((s) => s.ys)),
    opts.xDomain,
    opts.yDomain,
    // Asked for outright, it holds with one or both domains given too (widening one axis).
    opts.equalAspect === true ? 'explicit' : (opts.equalAspect ?? true),
  );
  const f = frame(width, height, {
    title: opts.title, legend: entries, xLabel: opts.xLabel, yLabel: opts.yLabel, note: mayOmit,
    tickLabels: linearTickLabels(axesIn),
  });
  const ax = axesIn(f.area);

  let outside = 0;
  const groups = sets.map((points, i) => {
    const series = opts.series[i]!;
    const drawn = circles(points, ax.x, ax.y, series.radius ?? defaultRadius(total));
    outside += drawn.outside;
    return elList('g', { class: 'series', fill: colors[i]!, 'fill-opacity': series.opacity ?? 0.65 }, drawn.marks);
  });
  const note = omissionNote(nonFinite, outside);
  return svgDocument({ width, height, title: opts.title, description: note }, [
    axes({ area: f.area, ...ax, xLabel: opts.xLabel, yLabel: opts.yLabel }),
    ...groups,
    ...f.title,
    legend(entries, f.legendX, f.area.top, f.area.height),
    ...(note ? [footnote(note, height)] : []),
  ]);
}
