// The trajectory chart: sampler chains (e.g. Langevin dynamics) as polylines from a hollow start
// marker to a filled end marker, over the data drawn lightly underneath.

import { checkBoolean, checkOptions, checkString } from '@scorch/options';
import {
  type AxisLabels, FRAME_KEYS, type PlotSize, type PointsInput, checkColor, checkDomain, checkFrameOptions, checkOptionsArgument, describeArgument, circles, frame,
  linearTickLabels, omissionNote, plural, pointPath, pointSet, resolveAxes,
} from './chart.js';
import { type LegendEntry, type PlotArea, type Markup, axes, el, elList, finiteExtent, footnote, legend, paletteColor, pointList, svgDocument } from './svg.js';

export interface TrajectoryPlotOptions extends PlotSize, AxisLabels {
  /** One entry per trajectory: its successive positions. */
  paths: readonly PointsInput[];
  /** Shown above the chart (fitted to the width) and as the SVG's <title>; default none. */
  title?: string;
  /** Points drawn lightly underneath, e.g. the data distribution; default none. */
  background?: PointsInput;
  /** Legend text for the background points; default: no legend entry for them. */
  backgroundLabel?: string;
  /** One CSS colour (a non-empty string) for every path; default: a palette colour per path. */
  color?: string;
  /** Fixed x range [lo, hi], finite with lo < hi; default: the paths' and background's extent. */
  xDomain?: readonly [number, number];
  /** Fixed y range, as `xDomain`. */
  yDomain?: readonly [number, number];
  /**
   * Same scale along x and y (default true), for automatic domains. Given
   * as true, also with one or both domains given: one axis is widened (given ends stay in) so a data unit has
   * the same length along x and y; left out, given domains are used as they are.
   */
  equalAspect?: boolean;
}

/**
 * Sampler trajectories (e.g. Langevin dynamics): each path a `<polyline>` in `<g class="paths">`,
 * its start a hollow circle and its end a filled one in `<g class="markers">`. A path that
 * diverges is cut at its first non-finite position: it ends at its last finite one (later values
 * of a diverged chain carry no information), and the footnote counts the cut positions.
 * Positions outside explicit domains are not clipped (the domains only set the axes). Width 520
 * and height 440 px by default. The options are checked as every scorch function's are: an
 * unknown key (with the closest valid name), a null, a value of the wrong type or out of range
 * throws.
 */
export function trajectoryPlot(opts: TrajectoryPlotOptions): string {
  const where = 'trajectoryPlot';
  checkOptionsArgument(where, opts, '{ paths, title?, background?, ... }');
  if (!Array.isArray(opts.paths)) throw new TypeError(`${where}: paths must be an array with one entry of points per trajectory, got ${describeArgument(opts.paths)}`);
  checkOptions(where, opts, ['paths', 'title', 'background', 'backgroundLabel', 'color', 'xDomain', 'yDomain', 'equalAspect', ...FRAME_KEYS]);
  checkFrameOptions(where, opts);
  checkString(where, 'backgroundLabel', opts.backgroundLabel);
  checkColor(where, 'color', opts.color);
  checkDomain(where, 'xDomain', opts.xDomain);
  checkDomain(where, 'yDomain', opts.yDomain);
  checkBoolean(where, 'equalAspect', opts.equalAspect);
  const { width = 520, height = 440 } = opts;
  // Read each path whole (pointSet would silently close the gap over a non-finite position).
  const paths = opts.paths.map((p, k) => {
    const full = pointPath(`${where}: path ${k}`, p);
    let end = 0;
    while (end < full.xs.length && Number.isFinite(full.xs[end]!) && Number.isFinite(full.ys[end]!)) end++;
    return { xs: full.xs.subarray(0, end), ys: full.ys.subarray(0, end), cut: full.xs.length - end };
  });
  const background = opts.background !== undefined ? pointSet(`${where}: background`, opts.background) : undefined;
  const cut = paths.reduce((acc, p) => acc + p.cut, 0);

  const entries: LegendEntry[] = [];
  if (background && opts.backgroundLabel) entries.push({ label: opts.backgroundLabel, color: '#999999', marker: 'point' });
  if (paths.some((p) => p.xs.length > 0)) {
    entries.push({ label: 'start', color: '#333333', marker: 'hollow' }, { label: 'end', color: '#333333', marker: 'point' });
  }
  const axesIn = (area: PlotArea) => resolveAxes(
    area,
    finiteExtent(...paths.map((p) => p.xs), ...(background ? [background.xs] : [])),
    finiteExtent(...paths.map((p) => p.ys), ...(background ? [background.ys] : [])),
    opts.xDomain,
    opts.yDomain,
    // Asked for outright, it holds with one or both domains given too (widening one axis).
    opts.equalAspect === true ? 'explicit' : (opts.equalAspect ?? true),
  );
  const f = frame(width, height, {
    title: opts.title, legend: entries, xLabel: opts.xLabel, yLabel: opts.yLabel, note: cut > 0 || background !== undefined,
    tickLabels: linearTickLabels(axesIn),
  });
  const ax = axesIn(f.area);

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
    body.push(elList('g', { class: 'background', fill: '#999999', 'fill-opacity': 0.35 }, drawn.marks));
  }
  body.push(
    elList('g', { class: 'paths', fill: 'none', 'stroke-width': 1.2, 'stroke-opacity': 0.8, 'stroke-linejoin': 'round' }, lines),
    elList('g', { class: 'markers' }, markers),
  );
  const notes = [
    cut > 0 ? `${plural(cut, 'position')} from a path's first non-finite one on not drawn` : undefined,
    omissionNote(background?.nonFinite ?? 0, backgroundOutside, 'background point'),
  ].filter((s): s is string => s !== undefined);
  const note = notes.length > 0 ? notes.join('; ') : undefined;
  return svgDocument({ width, height, title: opts.title, description: note }, [
    ...body,
    ...f.title,
    legend(entries, f.legendX, f.area.top, f.area.height),
    ...(note ? [footnote(note, height)] : []),
  ]);
}
