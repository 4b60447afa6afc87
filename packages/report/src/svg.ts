// A tiny SVG builder for the report plots: escaped element construction, compact number
// formatting, linear and log scales with "nice" (1/2/5 × 10^k) ticks, and the pieces every chart
// shares (document wrapper, axes, title, legend, footnote). Plain strings in, plain strings out:
// no DOM and no dependencies, so it runs in Node, a browser or a worker alike.
//
// Safety: markup is a branded string type (`Markup`). `el` escapes every attribute value and `text`
// escapes character data; nothing turns an arbitrary string into markup. Numeric attributes that
// are not finite are left out rather than written as `NaN`/`Infinity`, which SVG renderers reject;
// the chart code drops non-finite data points before they reach any coordinate (see chart.ts).

import { fitTitle, textWidth, truncate } from './textMetrics.js';

declare const markupBrand: unique symbol;

/** A string that is already well-formed SVG/XML markup (as opposed to text to be escaped). */
export type Markup = string & { readonly [markupBrand]: true };

/** Decimal places used for coordinates: 1/100 px is far below what any display resolves. */
const COORD_PRECISION = 2;

/**
 * Colour-blind-safe categorical palette (Okabe & Ito, "Color Universal Design", 2008), reordered
 * so the first two — the usual "data vs samples" pair — contrast strongly.
 */
const PALETTE: readonly string[] = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

/**
 * The colour of series `index` (from 0): the palette's eight, then hues stepped by the golden
 * angle (137.5°, so no two come close for a long while) at alternately dark and light shades, as
 * #RRGGBB. Every index gets its own colour: cycling the palette gave series 8 the colour of
 * series 0, and two legend rows the same swatch.
 */
export function paletteColor(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`paletteColor: index must be a non-negative integer, got ${index}`);
  if (index < PALETTE.length) return PALETTE[index]!;
  const k = index - PALETTE.length;
  return hslToHex((20 + k * 137.508) % 360, 0.7, k % 2 === 0 ? 0.38 : 0.6);
}

/** #RRGGBB of an HSL colour (hue in degrees, saturation and lightness in [0, 1]). */
function hslToHex(hue: number, saturation: number, lightness: number): string {
  const a = saturation * Math.min(lightness, 1 - lightness);
  const channel = (n: number) => {
    const k = (n + hue / 30) % 12;
    const v = lightness - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(v * 255).toString(16).padStart(2, '0');
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`.toUpperCase();
}

const FONT_FAMILY = 'Helvetica, Arial, sans-serif';
const AXIS_COLOR = '#333333';
const GRID_COLOR = '#e6e6e6';
const NOTE_COLOR = '#777777';

// ------------------------------------------------------------------------------------------------
// Escaping and element construction

const XML_ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
// Characters XML 1.0 forbids outright (even escaped): C0 controls other than tab/LF/CR, U+FFFE/F.
const XML_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;
// Unpaired surrogates are not characters at all; they would make the document unencodable.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Escapes text for XML/HTML character data and quoted attribute values: `& < > " '` become
 * entities, characters XML cannot carry are dropped, and lone surrogates become U+FFFD.
 */
export function escapeXml(value: string): string {
  return value.replace(XML_FORBIDDEN, '').replace(LONE_SURROGATE, '\uFFFD').replace(/[&<>"']/g, (c) => XML_ENTITIES[c]!);
}

/** Escaped character data, usable as an element child. */
export function text(value: string): Markup {
  return escapeXml(value) as Markup;
}

/**
 * A finite number written compactly: rounded to `digits` decimals, trailing zeros dropped, no
 * negative zero. Throws on NaN/±Infinity, because a non-finite coordinate reaching this point is a
 * bug in the caller (data points are filtered earlier) and would otherwise produce an invalid SVG.
 */
export function formatNumber(value: number, digits: number = COORD_PRECISION): string {
  if (!Number.isFinite(value)) throw new RangeError(`formatNumber: cannot write the non-finite value ${value} into SVG`);
  const factor = 10 ** digits;
  // Beyond 2^53 a double has no fraction to round, and value·factor may overflow to Infinity.
  const rounded = Math.abs(value) * factor >= 2 ** 53 ? value : Math.round(value * factor) / factor;
  return Object.is(rounded, -0) || rounded === 0 ? '0' : String(rounded);
}

/** Attribute values: strings are escaped; numbers are formatted; null/undefined and non-finite numbers omit the attribute. */
export type AttrValue = string | number | null | undefined;
export type Attrs = Readonly<Record<string, AttrValue>>;

const XML_NAME = /^[A-Za-z_][\w.:-]*$/;

/**
 * `<tag attr="…">children</tag>`, or `<tag …/>` without children. Tag and attribute names are
 * validated (they cannot be escaped), values are escaped, children must already be markup.
 */
export function el(tag: string, attrs: Attrs = {}, ...children: Markup[]): Markup {
  return elList(tag, attrs, children);
}

/**
 * `el` with the children as one array: for a mark per data point, since spreading ~125k
 * arguments into `el` overflowed the stack.
 */
export function elList(tag: string, attrs: Attrs, children: readonly Markup[]): Markup {
  if (!XML_NAME.test(tag)) throw new Error(`el: invalid element name ${JSON.stringify(tag)}`);
  let open = `<${tag}`;
  for (const [name, value] of Object.entries(attrs)) {
    if (!XML_NAME.test(name)) throw new Error(`el: invalid attribute name ${JSON.stringify(name)} on <${tag}>`);
    if (value === null || value === undefined) continue;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) continue;
      open += ` ${name}="${formatNumber(value)}"`;
    } else {
      open += ` ${name}="${escapeXml(value)}"`;
    }
  }
  return (children.length === 0 ? `${open}/>` : `${open}>${children.join('')}</${tag}>`) as Markup;
}

/** Concatenates markup fragments. */
function fragment(parts: readonly Markup[]): Markup {
  return parts.join('') as Markup;
}

/** `x1,y1 x2,y2 …` for a polyline's `points` attribute. Every coordinate must be finite. */
export function pointList(xs: ArrayLike<number>, ys: ArrayLike<number>): string {
  const parts: string[] = [];
  for (let i = 0; i < xs.length; i++) parts.push(`${formatNumber(xs[i]!)},${formatNumber(ys[i]!)}`);
  return parts.join(' ');
}

// ------------------------------------------------------------------------------------------------
// Nice numbers and ticks

/** A step m × 10^k with m ∈ {1, 2, 5}, kept in parts so tick values can be computed exactly. */
export interface NiceStep {
  readonly mantissa: 1 | 2 | 5;
  readonly exponent: number;
  readonly value: number;
}

function powerOfTen(k: number): number {
  // 10 ** -3 is not always the double nearest 0.001; 1 / 1000 is (one correctly rounded division).
  // Below 1e-308, 10^-k overflows: the subnormal decades are written directly (1e-310 as a double).
  return k >= 0 ? 10 ** k : k > -308 ? 1 / 10 ** -k : Number(`1e${k}`);
}

/** i · m · 10^k as the double nearest the decimal value (so 3 × 0.1 is written 0.3, not 0.30000000000000004). */
function stepMultiple(i: number, step: NiceStep): number {
  const units = i * step.mantissa;
  if (units === 0) return 0; // never -0 (Math.ceil(-0.4) is -0), which would print as "-0"
  return step.exponent >= 0 ? units * 10 ** step.exponent : units / 10 ** -step.exponent;
}

/** The smallest 1/2/5 × 10^k step that splits `span` into at most about `count` intervals. */
export function niceStep(span: number, count = 5): NiceStep {
  if (!(span > 0) || !Number.isFinite(span)) throw new RangeError(`niceStep: span must be positive and finite, got ${span}`);
  const raw = span / Math.max(1, count);
  let exponent = Math.floor(Math.log10(raw));
  const fraction = raw / powerOfTen(exponent);
  // A small tolerance keeps e.g. raw = 0.2 (fraction 2.0000000000000004) on 2 instead of 5.
  let mantissa: 1 | 2 | 5;
  if (fraction <= 1 + 1e-9) mantissa = 1;
  else if (fraction <= 2 + 1e-9) mantissa = 2;
  else if (fraction <= 5 + 1e-9) mantissa = 5;
  else {
    mantissa = 1;
    exponent += 1;
  }
  const step = { mantissa, exponent, value: 0 };
  return { ...step, value: stepMultiple(1, step) };
}

// Relative slack when deciding whether an end point is a multiple of the step: lo / step can land
// a hair beside an integer (0.3 / 0.1 = 2.9999999999999996), which must still count as one.
const MULTIPLE_SLACK = 1e-9;
const MAX_TICKS = 1000;
/** The most intervals a tick step is chosen for, whatever the chart's width asks. */
const MAX_TICK_COUNT = 100;

/**
 * Whether ticks first … last (multiples of a step) can be listed: both safe integers (beyond
 * 2^53, i++ no longer moves: data of magnitude ~10^15 times its span looped until V8 ran out of
 * memory) and at most MAX_TICKS apart.
 */
function listable(first: number, last: number): boolean {
  return Number.isSafeInteger(first) && Number.isSafeInteger(last) && last - first <= MAX_TICKS;
}

/** Tick values: the multiples of a nice step lying within [lo, hi] (about `count` intervals). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) return [lo];
  const span = hi - lo;
  if (!Number.isFinite(span)) return [];
  const step = niceStep(span, Math.min(count, MAX_TICK_COUNT));
  const first = Math.ceil(lo / step.value - MULTIPLE_SLACK);
  const last = Math.floor(hi / step.value + MULTIPLE_SLACK);
  if (!listable(first, last)) return [];
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(stepMultiple(i, step));
  return ticks;
}

export interface NiceAxis {
  /** The extent widened outward to multiples of the step, so its ends are ticks. */
  readonly domain: readonly [number, number];
  readonly ticks: readonly number[];
  readonly step: NiceStep;
}

/**
 * A nice axis for data spanning [lo, hi]: one step chosen from the data's span, the domain widened
 * to the enclosing multiples of it, and ticks at every multiple in between — so the ticks cover the
 * domain end to end. A zero-width extent is first widened (±10% of |lo|, at least ±0.5), and so
 * is one too narrow for its magnitude to be ticked (a series constant but for rounding, 0.3 and
 * 0.1 + 0.2). A span beyond the largest double is halved first.
 */
export function niceAxis(lo: number, hi: number, count = 5): NiceAxis {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new RangeError(`niceAxis: extent must be finite, got [${lo}, ${hi}]`);
  if (lo > hi) [lo, hi] = [hi, lo];
  count = Math.min(count, MAX_TICK_COUNT);
  const flat = (centre: number) => {
    const half = Math.max(Math.abs(centre) * 0.1, 0.5);
    return [centre - half, centre + half] as const;
  };
  if (lo === hi) [lo, hi] = flat(lo);
  let step = niceStep(Number.isFinite(hi - lo) ? hi - lo : hi / 2 - lo / 2, count);
  let first = Math.floor(lo / step.value + MULTIPLE_SLACK);
  let last = Math.ceil(hi / step.value - MULTIPLE_SLACK);
  if (!listable(first, last)) {
    [lo, hi] = flat(lo / 2 + hi / 2);
    step = niceStep(hi - lo, count);
    first = Math.floor(lo / step.value + MULTIPLE_SLACK);
    last = Math.ceil(hi / step.value - MULTIPLE_SLACK);
  }
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(stepMultiple(i, step));
  // Near the largest double the enclosing multiple may overflow: the axis then ends there, with no tick.
  const finite = ticks.filter(Number.isFinite);
  const [start, end] = [ticks[0]!, ticks[ticks.length - 1]!];
  const domain: [number, number] = [Number.isFinite(start) ? start : -Number.MAX_VALUE, Number.isFinite(end) ? end : Number.MAX_VALUE];
  return { domain, ticks: finite, step };
}

/**
 * A log-10 axis covering [lo, hi] (both > 0): domain widened to whole decades, a tick per decade
 * (every second, third … decade when there are more than `maxTicks`).
 */
export function niceLogAxis(lo: number, hi: number, maxTicks = 8): { domain: readonly [number, number]; ticks: readonly number[] } {
  if (!(lo > 0) || !(hi > 0) || !Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new RangeError(`niceLogAxis: extent must be positive and finite, got [${lo}, ${hi}]`);
  }
  if (lo > hi) [lo, hi] = [hi, lo];
  // Rounding the log keeps an exact power of ten (log10(1000) = 2.9999999999999996) on its decade.
  // Clamped to the decades whose powers are finite and positive: 1e-324 is 0 (logScale threw) and
  // 1e309 is Infinity (every point drawn at the bottom). Values beyond an end are clamped by the scale.
  const decade = (v: number, round: (x: number) => number) => Math.min(308, Math.max(-323, round(Number(Math.log10(v).toFixed(9)))));
  let first = decade(lo, Math.floor);
  let last = decade(hi, Math.ceil);
  if (last === first) {
    if (last < 308) last += 1;
    else first -= 1;
  }
  const every = Math.ceil((last - first + 1) / Math.max(1, maxTicks));
  const ticks: number[] = [];
  for (let k = first; k <= last; k += every) ticks.push(powerOfTen(k));
  return { domain: [powerOfTen(first), powerOfTen(last)], ticks };
}

/** Tick labels with just enough decimals for the spacing; exponent notation for very large or small values. */
export function formatTicks(ticks: readonly number[]): string[] {
  if (ticks.length === 0) return [];
  let spacing = Infinity;
  for (let i = 1; i < ticks.length; i++) spacing = Math.min(spacing, Math.abs(ticks[i]! - ticks[i - 1]!));
  const magnitude = Math.max(...ticks.map(Math.abs));
  if (!Number.isFinite(spacing) || spacing === 0) spacing = magnitude || 1;
  if (magnitude >= 1e6 || spacing < 1e-4) {
    // As many digits as the spacing needs, however many: ticks of a narrow range far from zero
    // (1e9 … 1e9 + 10) differ only in late digits. 16 is all a double has (17 significant).
    const digits = Math.max(0, Math.min(16, Math.ceil(Math.log10(magnitude / spacing) - 1e-9)));
    return ticks.map((t) => (t === 0 ? '0' : t.toExponential(digits).replace(/\.?0+e/, 'e').replace('e+', 'e')));
  }
  const decimals = Math.max(0, Math.ceil(-Math.log10(spacing) - 1e-9));
  return ticks.map((t) => {
    const label = t.toFixed(decimals);
    return Number(label) === 0 ? '0' : label;
  });
}

/** The labels `axes` writes for ticks on a scale of this kind. */
export function tickLabels(kind: Scale['kind'], ticks: readonly number[]): string[] {
  return kind === 'log' ? ticks.map(formatLogTick) : formatTicks(ticks);
}

/** Font size of tick labels, in px. */
export const TICK_FONT = 11;

/** Powers of ten written plainly between 0.001 and 10000, else as 1e-5 / 1e6. */
function formatLogTick(value: number): string {
  const k = Math.round(Math.log10(value));
  return k >= -3 && k <= 4 ? String(powerOfTen(k)) : `1e${k}`;
}

// ------------------------------------------------------------------------------------------------
// Scales

export interface Scale {
  readonly kind: 'linear' | 'log';
  readonly domain: readonly [number, number];
  readonly range: readonly [number, number];
  /** Domain value to range value; NaN for values the scale cannot place (≤ 0 on a log scale). */
  map(value: number): number;
}

/**
 * Linear map domain → range. The ends map exactly onto the range ends (written as the weighted
 * mean r0(1 − t) + r1·t, exact at t = 0 and t = 1). A zero-width domain maps everything to the
 * middle of the range.
 */
export function linearScale(domain: readonly [number, number], range: readonly [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  // In halves where the whole overflows (a domain of ±1e308): the same t, as halving is exact.
  const halves = !Number.isFinite(d1 - d0);
  const width = halves ? d1 / 2 - d0 / 2 : d1 - d0;
  const far = farLimits(r0, r1);
  return {
    kind: 'linear',
    domain: [d0, d1],
    range: [r0, r1],
    map: (value) => {
      if (width === 0) return (r0 + r1) / 2;
      const t = halves ? (value / 2 - d0 / 2) / width : (value - d0) / width;
      return far(r0 * (1 - t) + r1 * t);
    },
  };
}

/** How far outside its range a scale places a value: farther is written at this distance. */
const FAR_PIXELS = 1e7;

/**
 * A clamp to FAR_PIXELS beyond the range: a value far outside an explicit domain (a diverged
 * sampler's 1e38) mapped to pixels no renderer takes (SVG coordinates are float32) or to Infinity.
 * Lines toward such a point leave the plot at the same edge; their slope may differ slightly.
 */
function farLimits(r0: number, r1: number): (v: number) => number {
  const lo = Math.min(r0, r1) - FAR_PIXELS;
  const hi = Math.max(r0, r1) + FAR_PIXELS;
  return (v) => (v < lo ? lo : v > hi ? hi : v);
}

/** log10 map domain → range; the domain must be positive. Values ≤ 0 map to NaN (callers skip them). */
export function logScale(domain: readonly [number, number], range: readonly [number, number]): Scale {
  const [d0, d1] = domain;
  if (!(d0 > 0) || !(d1 > 0)) throw new RangeError(`logScale: domain must be positive, got [${d0}, ${d1}]`);
  const [r0, r1] = range;
  const l0 = Math.log10(d0);
  const width = Math.log10(d1) - l0;
  const far = farLimits(r0, r1);
  return {
    kind: 'log',
    domain: [d0, d1],
    range: [r0, r1],
    map: (value) => {
      if (!(value > 0)) return NaN;
      if (width === 0) return (r0 + r1) / 2;
      const t = value === d1 ? 1 : (Math.log10(value) - l0) / width;
      return far(r0 * (1 - t) + r1 * t);
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Extents

/** [min, max] of the finite values, or undefined when there are none. */
export function finiteExtent(...arrays: ArrayLike<number>[]): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const values of arrays) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : undefined;
}

/** The extent widened by `fraction` of its width on each side (so markers at the edge are not cut). */
export function padExtent([lo, hi]: readonly [number, number], fraction = 0.05): [number, number] {
  // Halves first: the span of ±1e308 overflows, and so would an end widened past the largest double.
  const pad = (hi / 2 - lo / 2) * fraction * 2;
  return [Math.max(lo - pad, -Number.MAX_VALUE), Math.min(hi + pad, Number.MAX_VALUE)];
}

/**
 * Widens one of two extents so one data unit takes as many pixels along x as along y in a
 * `width` × `height` plot area (circles stay round, arrows keep their angles).
 */
export function equalAspectDomains(
  x: readonly [number, number], y: readonly [number, number], width: number, height: number,
): { x: [number, number]; y: [number, number] } {
  // In halves, so that extents of ±1e308 neither overflow nor widen past the largest double.
  const halfSpanX = x[1] / 2 - x[0] / 2 || 0.5;
  const halfSpanY = y[1] / 2 - y[0] / 2 || 0.5;
  const halfUnitsPerPx = Math.max(halfSpanX / width, halfSpanY / height);
  const midX = x[0] / 2 + x[1] / 2;
  const midY = y[0] / 2 + y[1] / 2;
  const halfX = halfUnitsPerPx * width;
  const halfY = halfUnitsPerPx * height;
  const clamp = (v: number) => Math.max(-Number.MAX_VALUE, Math.min(Number.MAX_VALUE, v));
  // min/max: (span / width) · width / 2 can round a hair inside, and the ends asked for must stay in.
  return {
    x: [Math.min(x[0], clamp(midX - halfX)), Math.max(x[1], clamp(midX + halfX))],
    y: [Math.min(y[0], clamp(midY - halfY)), Math.max(y[1], clamp(midY + halfY))],
  };
}

// ------------------------------------------------------------------------------------------------
// Canvas and chart furniture

export interface Margins {
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
  readonly left: number;
}

/** The rectangle, in viewBox pixels, in which data is drawn. */
export interface PlotArea {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

export function plotArea(width: number, height: number, margins: Margins): PlotArea {
  return {
    left: margins.left,
    top: margins.top,
    width: Math.max(1, width - margins.left - margins.right),
    height: Math.max(1, height - margins.top - margins.bottom),
  };
}

export interface DocumentOptions {
  readonly width: number;
  readonly height: number;
  /** Accessible name (`<title>`): shown as a tooltip by browsers. */
  readonly title?: string | undefined;
  /** Longer accessible description (`<desc>`), e.g. how arrows were normalised. */
  readonly description?: string | undefined;
}

/**
 * A standalone SVG document: a `viewBox` of width × height (so it scales when embedded), the same
 * nominal width/height, a white background (readable in dark viewers), and the given body. No XML
 * prolog, so the string can also be inlined into HTML unchanged.
 */
export function svgDocument(opts: DocumentOptions, body: readonly Markup[]): Markup {
  const { width, height } = opts;
  if (!(width > 0) || !(height > 0) || !Number.isFinite(width) || !Number.isFinite(height)) {
    throw new RangeError(`svgDocument: width and height must be positive and finite, got ${width} × ${height}`);
  }
  return elList(
    'svg',
    {
      xmlns: 'http://www.w3.org/2000/svg',
      width,
      height,
      viewBox: `0 0 ${formatNumber(width)} ${formatNumber(height)}`,
      role: 'img',
      'font-family': FONT_FAMILY,
    },
    [
      ...(hasTitle(opts.title) ? [el('title', {}, text(opts.title))] : []),
      ...(opts.description ? [el('desc', {}, text(opts.description))] : []),
      el('rect', { width, height, fill: '#ffffff' }),
      ...body,
    ],
  );
}

/**
 * Whether a chart has a title to draw: one of only spaces, which fitTitle trims to nothing, counts
 * as none (it drew an empty title line and took its room above the plot).
 */
export function hasTitle(title: string | undefined): title is string {
  return title !== undefined && title.trim() !== '';
}

/** A chart title as drawn: its markup and the y just below its last line (where a layout may continue). */
export interface TitleBlock {
  readonly markup: Markup;
  readonly bottom: number;
}

// Space kept clear on each side of a title, so that even a title that fills its room stays off the edge.
const TITLE_SIDE_PADDING = 12;

/**
 * The title, centred over a canvas `width` px wide and fitted to it (see fitTitle: a smaller font,
 * two lines, at worst an ellipsis; the document's `<title>` keeps the whole text). One line is a
 * plain `<text>`; two are `<tspan>`s in it.
 */
export function chartTitle(title: string, width: number): TitleBlock {
  const { lines, fontSize } = fitTitle(title, width - 2 * TITLE_SIDE_PADDING);
  const x = width / 2;
  // The first baseline sits 7 px plus one font size down; lines are 1.2 font sizes apart.
  const baselines = lines.map((_, i) => 7 + fontSize + i * 1.2 * fontSize);
  const attrs = (y: number | undefined) => ({ class: 'title', x, y, 'text-anchor': 'middle', 'font-size': fontSize, 'font-weight': 'bold', fill: '#111111' });
  const markup = lines.length === 1
    ? el('text', attrs(baselines[0]), text(lines[0]!))
    : el('text', attrs(undefined), ...lines.map((line, i) => el('tspan', { x, y: baselines[i]! }, text(line))));
  // Below the last baseline by the descent (about 0.2 em), where the glyphs end.
  return { markup, bottom: baselines[baselines.length - 1]! + 0.2 * fontSize };
}

/** A small grey note at the bottom-left corner (e.g. how many points were not drawn). */
export function footnote(note: string, height: number, x = 8): Markup {
  return el('text', { class: 'note', x, y: height - 6, 'font-size': 10, fill: NOTE_COLOR }, text(note));
}

export interface AxesOptions {
  readonly area: PlotArea;
  readonly x: Scale;
  readonly y: Scale;
  readonly xTicks: readonly number[];
  readonly yTicks: readonly number[];
  readonly xLabel?: string | undefined;
  readonly yLabel?: string | undefined;
}

/**
 * Grid, frame, ticks and tick labels around a plot area. Ticks outside the scale's domain are
 * dropped, so callers may pass a generous tick list.
 */
export function axes(opts: AxesOptions): Markup {
  const { area, x, y } = opts;
  const left = area.left;
  const right = area.left + area.width;
  const top = area.top;
  const bottom = area.top + area.height;
  const inside = (scale: Scale, v: number) => {
    const [a, b] = scale.domain;
    const tolerance = Math.abs(b - a) * 1e-9;
    return v >= Math.min(a, b) - tolerance && v <= Math.max(a, b) + tolerance;
  };
  const xTicks = opts.xTicks.filter((t) => inside(x, t));
  const yTicks = opts.yTicks.filter((t) => inside(y, t));
  const xLabels = tickLabels(x.kind, xTicks);
  const yLabels = tickLabels(y.kind, yTicks);

  const grid: Markup[] = [];
  const marks: Markup[] = [];
  const labels: Markup[] = [];
  xTicks.forEach((t, i) => {
    const px = x.map(t);
    grid.push(el('line', { x1: px, y1: top, x2: px, y2: bottom }));
    marks.push(el('line', { x1: px, y1: bottom, x2: px, y2: bottom + 5 }));
    labels.push(el('text', { x: px, y: bottom + 17, 'text-anchor': 'middle' }, text(xLabels[i]!)));
  });
  yTicks.forEach((t, i) => {
    const py = y.map(t);
    grid.push(el('line', { x1: left, y1: py, x2: right, y2: py }));
    marks.push(el('line', { x1: left - 5, y1: py, x2: left, y2: py }));
    labels.push(el('text', { x: left - 8, y: py, dy: '0.32em', 'text-anchor': 'end' }, text(yLabels[i]!)));
  });

  const parts: Markup[] = [];
  if (grid.length > 0) parts.push(elList('g', { class: 'grid', stroke: GRID_COLOR, 'stroke-width': 1 }, grid));
  parts.push(el('rect', { class: 'frame', x: left, y: top, width: area.width, height: area.height, fill: 'none', stroke: AXIS_COLOR, 'stroke-width': 1 }));
  if (marks.length > 0) parts.push(elList('g', { class: 'ticks', stroke: AXIS_COLOR, 'stroke-width': 1 }, marks));
  if (labels.length > 0) parts.push(elList('g', { class: 'tick-labels', 'font-size': TICK_FONT, fill: AXIS_COLOR }, labels));
  if (opts.xLabel) {
    parts.push(el('text', { class: 'axis-label', x: left + area.width / 2, y: bottom + 36, 'text-anchor': 'middle', 'font-size': 12, fill: AXIS_COLOR }, text(opts.xLabel)));
  }
  if (opts.yLabel) {
    // Clear of the widest tick label (right-aligned at left - 8), which covered it when wide.
    const widest = Math.max(0, ...yLabels.map((label) => textWidth(label, TICK_FONT)));
    const cx = Math.min(left - 46, left - 18 - widest);
    const cy = top + area.height / 2;
    parts.push(el('text', {
      class: 'axis-label', x: cx, y: cy, transform: `rotate(-90 ${formatNumber(cx)} ${formatNumber(cy)})`,
      'text-anchor': 'middle', 'font-size': 12, fill: AXIS_COLOR,
    }, text(opts.yLabel)));
  }
  return el('g', { class: 'axes' }, ...parts);
}

export type LegendMarker = 'point' | 'hollow' | 'line' | 'square';

export interface LegendEntry {
  readonly label: string;
  readonly color: string;
  readonly marker: LegendMarker;
}

const LEGEND_FONT = 11;
const LEGEND_ROW = 16;
const LEGEND_SWATCH = 18;

/** How many of `count` legend rows fit in `room` px, and how many a "+ N more" row stands for. */
function legendRows(count: number, room: number): { shown: number; more: number } {
  const fit = Math.max(1, Math.floor((room - 8) / LEGEND_ROW));
  const shown = count <= fit ? count : fit - 1;
  return { shown, more: count - shown };
}

/** Width a legend with these entries needs in `room` px of height (for reserving a right margin). */
export function legendWidth(entries: readonly LegendEntry[], room = Infinity): number {
  if (entries.length === 0) return 0;
  // Room for the "+ N more" row only where there is one (see legend): a legend whose rows all
  // fit was widened by it.
  const { shown, more } = legendRows(entries.length, room);
  const moreWidth = more > 0 ? textWidth(`+ ${more} more`, LEGEND_FONT) - LEGEND_SWATCH : 0;
  return LEGEND_SWATCH + 14 + Math.max(moreWidth, ...entries.slice(0, shown).map((e) => textWidth(legendLabel(e.label), LEGEND_FONT)));
}

/** The widest a legend label is drawn: a longer one is cut with an ellipsis (a 120-character label left the plot 1 px wide). */
const LEGEND_LABEL_ROOM = 180;

function legendLabel(label: string): string {
  return truncate(label, LEGEND_FONT, LEGEND_LABEL_ROOM, 'normal');
}

/**
 * A boxed legend whose top-left corner is at (x, y), at most `room` px tall: one row per entry,
 * or as many as fit and a last row "+ N more" (rows past the canvas were silently lost).
 */
export function legend(entries: readonly LegendEntry[], x: number, y: number, room = Infinity): Markup {
  if (entries.length === 0) return fragment([]);
  const { shown: count, more } = legendRows(entries.length, room);
  const shown = entries.slice(0, count);
  const rows: Markup[] = [el('rect', {
    x, y, width: legendWidth(entries, room), height: (shown.length + (more > 0 ? 1 : 0)) * LEGEND_ROW + 8,
    fill: '#ffffff', 'fill-opacity': 0.85, stroke: '#cccccc', 'stroke-width': 1,
  })];
  shown.forEach((entry, i) => {
    const cy = y + 4 + LEGEND_ROW * i + LEGEND_ROW / 2;
    const cx = x + 6 + LEGEND_SWATCH / 2;
    switch (entry.marker) {
      case 'line':
        rows.push(el('line', { x1: x + 6, y1: cy, x2: x + 6 + LEGEND_SWATCH, y2: cy, stroke: entry.color, 'stroke-width': 2 }));
        break;
      case 'hollow':
        rows.push(el('circle', { cx, cy, r: 4, fill: '#ffffff', stroke: entry.color, 'stroke-width': 1.5 }));
        break;
      case 'square':
        rows.push(el('rect', { x: cx - 4, y: cy - 4, width: 8, height: 8, fill: entry.color }));
        break;
      case 'point':
        rows.push(el('circle', { cx, cy, r: 4, fill: entry.color }));
        break;
    }
    rows.push(el('text', { x: x + 10 + LEGEND_SWATCH, y: cy, dy: '0.32em', 'font-size': LEGEND_FONT, fill: AXIS_COLOR }, text(legendLabel(entry.label))));
  });
  if (more > 0) {
    const cy = y + 4 + LEGEND_ROW * shown.length + LEGEND_ROW / 2;
    rows.push(el('text', { class: 'legend-more', x: x + 6, y: cy, dy: '0.32em', 'font-size': LEGEND_FONT, fill: AXIS_COLOR }, text(`+ ${more} more`)));
  }
  return elList('g', { class: 'legend' }, rows);
}
