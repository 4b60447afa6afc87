// Structural checks of the SVG charts and the HTML report. Every generated document is parsed by a
// small strict XML reader written here (balanced tags, quoted unique attributes, only known
// entities, no stray `<`), and the assertions count and measure elements in the parsed tree, so a
// wrong number of marks, an unescaped label or a NaN coordinate fails a test rather than a viewer.

import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  el, escapeXml, formatNumber, formatTicks, linearScale, logScale, niceAxis, niceLogAxis, niceStep, niceTicks, text,
} from '../src/svg.js';
import { gridPoints, linePlot, quiverComparison, scatterPlot, trajectoryPlot } from '../src/plots.js';
import { formatCell, htmlReport } from '../src/html.js';

// ------------------------------------------------------------------------------------------------
// A strict little XML reader

interface XmlNode {
  readonly name: string;
  readonly attrs: Record<string, string>;
  readonly children: XmlNode[];
  /** The element's own character data, entities left as written. */
  text: string;
}

const HTML_VOID = new Set(['meta', 'br', 'hr', 'img', 'link', 'input']);
const ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#39|#\d+|#x[0-9a-fA-F]+);)/;
const TAG = /<\/([A-Za-z][\w:.-]*)\s*>|<([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<!DOCTYPE[^>]*>/y;
const ATTR = /\s+([A-Za-z_][\w:.-]*)="([^"<]*)"/g;

/** Parses a document; throws on anything not well-formed. `html` allows void elements like <meta>. */
function parseXml(source: string, { html = false } = {}): XmlNode {
  const root: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlNode[] = [root];
  let pos = 0;
  const checkText = (chunk: string, where: number) => {
    if (ENTITY.test(chunk)) throw new Error(`bare & near offset ${where}: ${JSON.stringify(chunk.slice(0, 60))}`);
  };
  while (pos < source.length) {
    const next = source.indexOf('<', pos);
    const chunk = next < 0 ? source.slice(pos) : source.slice(pos, next);
    checkText(chunk, pos);
    if (/[^\s]/.test(chunk) && stack.length === 1) throw new Error(`text outside the root element at ${pos}`);
    stack[stack.length - 1]!.text += chunk;
    if (next < 0) break;
    TAG.lastIndex = next;
    const m = TAG.exec(source);
    if (!m) throw new Error(`malformed tag at offset ${next}: ${JSON.stringify(source.slice(next, next + 60))}`);
    pos = TAG.lastIndex;
    const [, closing, opening, attrText, selfClosing] = m;
    if (closing) {
      const open = stack.pop();
      if (!open || open.name !== closing || stack.length === 0) throw new Error(`</${closing}> closes <${open?.name}> at offset ${next}`);
    } else if (opening) {
      const attrs: Record<string, string> = {};
      for (const a of (attrText ?? '').matchAll(ATTR)) {
        if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]} on <${opening}>`);
        checkText(a[2]!, next);
        attrs[a[1]!] = a[2]!;
      }
      const node: XmlNode = { name: opening, attrs, children: [], text: '' };
      stack[stack.length - 1]!.children.push(node);
      if (!selfClosing && !(html && HTML_VOID.has(opening))) stack.push(node);
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1) throw new Error(`expected one root element, got ${root.children.length}`);
  return root.children[0]!;
}

function descendants(node: XmlNode, name?: string): XmlNode[] {
  const found: XmlNode[] = [];
  const walk = (n: XmlNode) => {
    for (const c of n.children) {
      if (name === undefined || c.name === name) found.push(c);
      walk(c);
    }
  };
  walk(node);
  return found;
}

function byClass(node: XmlNode, cls: string): XmlNode[] {
  return descendants(node).filter((n) => (n.attrs.class ?? '').split(' ').includes(cls));
}

function onlyByClass(node: XmlNode, cls: string): XmlNode {
  const found = byClass(node, cls);
  expect(found, `exactly one .${cls}`).toHaveLength(1);
  return found[0]!;
}

/** Parses an SVG document and checks what every chart must satisfy. */
function checkSvg(svg: string): XmlNode {
  const root = parseXml(svg);
  expect(root.name).toBe('svg');
  expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
  expect(root.attrs.viewBox).toMatch(/^0 0 [\d.]+ [\d.]+$/);
  expect(svg).not.toMatch(/NaN|Infinity|undefined|null|\[object/);
  return root;
}

const num = (n: XmlNode, attr: string) => Number(n.attrs[attr]);

/** A small deterministic generator, so the property tests repeat exactly. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const NASTY = `<b>&"'`;
const NASTY_ESCAPED = '&lt;b&gt;&amp;&quot;&#39;';

// ------------------------------------------------------------------------------------------------

describe('the tag checker itself', () => {
  it('rejects what it is meant to reject', () => {
    expect(() => parseXml('<svg><g></svg>')).toThrow();
    expect(() => parseXml('<svg><g/></g></svg>')).toThrow();
    expect(() => parseXml('<svg a="1" a="2"/>')).toThrow(/duplicate/);
    expect(() => parseXml('<svg>a & b</svg>')).toThrow(/bare &/);
    expect(() => parseXml('<svg>a < b</svg>')).toThrow(/malformed/);
    expect(() => parseXml('<svg x=1/>')).toThrow(/malformed/);
    expect(parseXml('<svg><g a="&amp;"><c/></g></svg>').children[0]!.children).toHaveLength(1);
  });
});

describe('svg builder', () => {
  it('escapes text and attribute values', () => {
    expect(escapeXml(NASTY)).toBe(NASTY_ESCAPED);
    expect(text(NASTY)).toBe(NASTY_ESCAPED);
    const node = el('text', { 'data-label': NASTY }, text(NASTY));
    expect(node).toBe(`<text data-label="${NASTY_ESCAPED}">${NASTY_ESCAPED}</text>`);
    expect(parseXml(node).attrs['data-label']).toBe(NASTY_ESCAPED);
    // Characters XML cannot carry are dropped; a lone surrogate becomes U+FFFD.
    expect(escapeXml('a\u0000b\u0007c\tz')).toBe('abc\tz');
    expect(escapeXml('x\uD800y')).toBe('x\uFFFDy');
  });

  it('validates names, omits non-finite numbers, writes numbers compactly', () => {
    expect(() => el('g onload', {})).toThrow(/element name/);
    expect(() => el('g', { 'x" onload="': 1 })).toThrow(/attribute name/);
    expect(el('circle', { cx: NaN, cy: Infinity, r: 2, fill: undefined, stroke: null })).toBe('<circle r="2"/>');
    expect(el('g', {}, el('a'), el('b', { x: 1 }))).toBe('<g><a/><b x="1"/></g>');
    expect(formatNumber(1.23456)).toBe('1.23');
    expect(formatNumber(-0.0001)).toBe('0');
    expect(formatNumber(100)).toBe('100');
    expect(formatNumber(2.5, 0)).toBe('3');
    expect(() => formatNumber(NaN)).toThrow(RangeError);
  });
});

describe('scales', () => {
  it('map the domain ends exactly onto the range ends', () => {
    const rand = lcg(7);
    for (let k = 0; k < 200; k++) {
      const d0 = (rand() - 0.5) * 10 ** (rand() * 8 - 4);
      const d1 = d0 + rand() * 10 ** (rand() * 8 - 4) + 1e-9;
      const r0 = rand() * 900 + 0.1234567;
      const r1 = rand() * 900 + 0.7654321;
      const s = linearScale([d0, d1], [r0, r1]);
      expect(s.map(d0)).toBe(r0);
      expect(s.map(d1)).toBe(r1);
      const mid = s.map((d0 + d1) / 2);
      expect(Math.abs(mid - (r0 + r1) / 2)).toBeLessThan(1e-6 * Math.max(Math.abs(r0), Math.abs(r1)));
      const p0 = rand() * 10 ** (rand() * 6 - 3) + 1e-6;
      const p1 = p0 * (1.5 + rand() * 1000);
      const l = logScale([p0, p1], [r0, r1]);
      expect(l.map(p0)).toBe(r0);
      expect(l.map(p1)).toBe(r1);
    }
    expect(linearScale([3, 3], [0, 100]).map(42)).toBe(50);
    expect(logScale([1, 100], [0, 100]).map(10)).toBeCloseTo(50, 12);
    expect(logScale([1, 100], [0, 100]).map(0)).toBeNaN();
    expect(() => logScale([0, 1], [0, 1])).toThrow(RangeError);
  });

  it('choose 1/2/5 × 10^k steps', () => {
    expect(niceStep(1, 5).value).toBe(0.2);
    expect(niceStep(10, 5).value).toBe(2);
    expect(niceStep(7, 5).value).toBe(2);
    expect(niceStep(12, 5).value).toBe(5);
    expect(niceStep(0.0049, 5).value).toBe(0.001);
    expect(niceStep(9.5, 1).value).toBe(10);
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.05, 0.95, 5)).toEqual([0.2, 0.4, 0.6, 0.8]);
    expect(niceTicks(0.1, 0.3, 2)).toEqual([0.1, 0.2, 0.3]); // 0.3 / 0.1 is 2.9999999999999996
    expect(niceTicks(2, 2)).toEqual([2]);
    expect(niceTicks(NaN, 1)).toEqual([]);
  });

  it('nice axes: ticks cover the domain, evenly, at exact decimal values', () => {
    const rand = lcg(11);
    for (let k = 0; k < 300; k++) {
      const scale = 10 ** Math.floor(rand() * 12 - 6);
      const lo = (rand() - 0.5) * 20 * scale;
      const hi = lo + rand() * 10 * scale;
      const count = 2 + Math.floor(rand() * 8);
      const axis = niceAxis(lo, hi, count);
      const { ticks, domain, step } = axis;
      expect([1, 2, 5]).toContain(step.mantissa);
      expect(domain[0]).toBeLessThanOrEqual(lo);
      expect(domain[1]).toBeGreaterThanOrEqual(hi);
      expect(ticks[0]).toBe(domain[0]);
      expect(ticks[ticks.length - 1]).toBe(domain[1]);
      expect(ticks.length - 1).toBeLessThanOrEqual(2 * count + 2);
      for (let i = 1; i < ticks.length; i++) {
        const gap = ticks[i]! - ticks[i - 1]!;
        expect(Math.abs(gap - step.value)).toBeLessThanOrEqual(step.value * 1e-9);
        // Each gap is 1, 2 or 5 times a power of ten.
        const mantissa = gap / 10 ** Math.floor(Math.log10(gap) + 1e-9);
        expect([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6)).toBe(true);
      }
      // Exact decimals: each tick is the double nearest its short decimal form.
      for (const t of ticks) expect(Number(t.toPrecision(12))).toBe(t);
    }
  });

  it('log axes span whole decades', () => {
    const axis = niceLogAxis(0.003, 250);
    expect(axis.domain).toEqual([0.001, 1000]);
    expect(axis.ticks).toEqual([0.001, 0.01, 0.1, 1, 10, 100, 1000]);
    expect(niceLogAxis(1000, 1000).domain).toEqual([1000, 10000]);
    expect(niceLogAxis(1e-12, 1e12).ticks.length).toBeLessThanOrEqual(9);
    expect(() => niceLogAxis(-1, 2)).toThrow(RangeError);
  });

  it('label ticks with just enough decimals', () => {
    expect(formatTicks([0, 0.1, 0.2])).toEqual(['0', '0.1', '0.2']);
    expect(formatTicks([-10, 0, 10])).toEqual(['-10', '0', '10']);
    expect(formatTicks([0, 2e6, 4e6])).toEqual(['0', '2e6', '4e6']);
    expect(formatTicks([1e-5, 2e-5])).toEqual(['1e-5', '2e-5']);
  });
});

// ------------------------------------------------------------------------------------------------

describe('scatterPlot', () => {
  const data: [number, number][] = [[0, 0], [1, 2], [2, 1], [-1, 0.5]];

  it('draws one circle per point, per series, inside the frame', () => {
    const svg = scatterPlot({ title: 'data vs samples', series: [{ points: data, label: 'data' }, { points: { x: [0, 1, 2], y: [1, 1, 1] }, label: 'samples' }] });
    const root = checkSvg(svg);
    const series = byClass(root, 'series');
    expect(series.map((g) => descendants(g, 'circle').length)).toEqual([4, 3]);
    const frame = onlyByClass(root, 'frame');
    const [left, top, w, h] = ['x', 'y', 'width', 'height'].map((a) => num(frame, a)) as [number, number, number, number];
    for (const c of series.flatMap((g) => descendants(g, 'circle'))) {
      expect(num(c, 'cx')).toBeGreaterThanOrEqual(left);
      expect(num(c, 'cx')).toBeLessThanOrEqual(left + w);
      expect(num(c, 'cy')).toBeGreaterThanOrEqual(top);
      expect(num(c, 'cy')).toBeLessThanOrEqual(top + h);
    }
    expect(descendants(onlyByClass(root, 'legend'), 'text').map((t) => t.text)).toEqual(['data', 'samples']);
    expect(onlyByClass(root, 'title').text).toBe('data vs samples');
    expect(svg).not.toContain('class="note"'); // nothing was left out
  });

  it('accepts pairs, {x, y} and interleaved {xy} alike', () => {
    const a = scatterPlot({ series: [{ points: data }] });
    const b = scatterPlot({ series: [{ points: { x: data.map((p) => p[0]), y: data.map((p) => p[1]) } }] });
    const c = scatterPlot({ series: [{ points: { xy: new Float32Array(data.flat()) } }] });
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(() => scatterPlot({ series: [{ points: { x: [1, 2], y: [1] } }] })).toThrow(/different lengths/);
    expect(() => scatterPlot({ series: [{ points: { xy: [1, 2, 3] } }] })).toThrow(/even length/);
  });

  it('places domain ends on the frame edges exactly', () => {
    const root = checkSvg(scatterPlot({ series: [{ points: [[0, 0], [1, 1]] }], xDomain: [0, 1], yDomain: [0, 1] }));
    const frame = onlyByClass(root, 'frame');
    const circles = descendants(onlyByClass(root, 'series'), 'circle');
    expect(num(circles[0]!, 'cx')).toBe(num(frame, 'x'));
    expect(num(circles[0]!, 'cy')).toBe(num(frame, 'y') + num(frame, 'height'));
    expect(num(circles[1]!, 'cx')).toBe(num(frame, 'x') + num(frame, 'width'));
    expect(num(circles[1]!, 'cy')).toBe(num(frame, 'y'));
  });

  it('escapes labels and titles', () => {
    const svg = scatterPlot({ title: NASTY, xLabel: NASTY, series: [{ points: data, label: NASTY, color: `red" onload="x` }] });
    checkSvg(svg);
    expect(svg).not.toContain(NASTY);
    expect(svg).not.toContain('onload="x');
    expect(svg.split(NASTY_ESCAPED).length - 1).toBeGreaterThanOrEqual(4); // <title>, heading, axis label, legend
  });

  it('skips non-finite points and points outside a given domain, and says so', () => {
    const points: [number, number][] = [[0, 0], [NaN, 1], [1, Infinity], [0.5, 0.5], [5, 5], [-Infinity, 0]];
    const root = checkSvg(scatterPlot({ series: [{ points }] }));
    expect(descendants(onlyByClass(root, 'series'), 'circle')).toHaveLength(3);
    expect(onlyByClass(root, 'note').text).toBe('3 non-finite points not drawn');
    const svg = scatterPlot({ series: [{ points }], xDomain: [-1, 1], yDomain: [-1, 1] });
    const clipped = checkSvg(svg);
    expect(descendants(onlyByClass(clipped, 'series'), 'circle')).toHaveLength(2);
    expect(svg).toContain('3 non-finite points and 1 point outside the axes not drawn');
  });

  it('handles empty input without throwing', () => {
    checkSvg(scatterPlot({ series: [] }));
    const root = checkSvg(scatterPlot({ series: [{ points: [], label: 'nothing' }, { points: { x: new Float64Array(0), y: new Float64Array(0) } }] }));
    expect(byClass(root, 'series').map((g) => g.children.length)).toEqual([0, 0]);
    expect(descendants(onlyByClass(root, 'legend'), 'text').map((t) => t.text)).toEqual(['nothing']);
    checkSvg(scatterPlot({ series: [{ points: [[NaN, NaN]] }] }));
    checkSvg(scatterPlot({ series: [{ points: [[3, 3], [3, 3]] }] })); // zero-width extents
  });

  it('rejects bad sizes and domains', () => {
    expect(() => scatterPlot({ series: [], width: NaN })).toThrow(RangeError);
    expect(() => scatterPlot({ series: [], xDomain: [1, 1] })).toThrow(RangeError);
  });
});

// ------------------------------------------------------------------------------------------------

/** Shaft endpoints of an arrow path "Mx0 y0Lx1 y1M…". */
function shaft(path: XmlNode): { x0: number; y0: number; x1: number; y1: number } {
  const m = /^M(-?[\d.]+) (-?[\d.]+)L(-?[\d.]+) (-?[\d.]+)M/.exec(path.attrs.d ?? '');
  expect(m).not.toBeNull();
  const [x0, y0, x1, y1] = m!.slice(1).map(Number) as [number, number, number, number];
  return { x0, y0, x1, y1 };
}

/** The arrow lengths (px) of each panel of a quiverComparison. */
function panelArrowLengths(svg: string): number[][] {
  return byClass(checkSvg(svg), 'panel').map((p) => descendants(onlyByClass(p, 'arrows'), 'path').map(shaft).map((s) => Math.hypot(s.x1 - s.x0, s.y1 - s.y0)));
}

describe('quiverComparison', () => {
  const grid = gridPoints([-2, 2], [-1, 1], 5, 3); // spacing 1 in x and y
  const field = { x: grid.x, y: grid.y, u: grid.x.map((x) => -x), v: grid.y.map((y) => -2 * y) };

  it('lays out a regular grid row by row', () => {
    expect(Array.from(grid.x.slice(0, 5))).toEqual([-2, -1, 0, 1, 2]);
    expect(Array.from(grid.y.slice(0, 5))).toEqual([-1, -1, -1, -1, -1]);
    expect(Array.from(grid.xy.slice(0, 4))).toEqual([-2, -1, -1, -1]);
  });

  it('draws one arrow per finite non-zero vector, the longest 0.9 cells long', () => {
    const u = Array.from(field.u);
    u[3] = NaN; // (1, -1): dropped
    const root = checkSvg(quiverComparison({ learned: { ...field, u }, truth: field }));
    const panel = byClass(root, 'panel')[0]!;
    expect(onlyByClass(panel, 'title').text).toBe('learned score');
    const arrows = descendants(onlyByClass(panel, 'arrows'), 'path');
    // 15 grid points, one zero vector at the origin, one NaN.
    expect(arrows).toHaveLength(13);
    const shafts = arrows.map(shaft);
    const lengths = shafts.map((s) => Math.hypot(s.x1 - s.x0, s.y1 - s.y0));
    const mid = (s: ReturnType<typeof shaft>) => [(s.x0 + s.x1) / 2, (s.y0 + s.y1) / 2] as const;
    // Arrows are centred on grid points; neighbours along x are one cell apart.
    const cellPx = mid(shafts[1]!)[0] - mid(shafts[0]!)[0];
    expect(cellPx).toBeGreaterThan(10);
    expect(Math.max(...lengths)).toBeCloseTo(0.9 * cellPx, 1);
    // Proportional: |s| at (-2, -1) is √8, at (-1, -1) √5.
    expect(lengths[1]! / lengths[0]!).toBeCloseTo(Math.sqrt(5 / 8), 2);
    // Pointing the right way: u = 2 > 0 at x = -2 (right), v = 2 > 0 at y = -1 (up: smaller pixel y).
    expect(shafts[0]!.x1).toBeGreaterThan(shafts[0]!.x0);
    expect(shafts[0]!.y1).toBeLessThan(shafts[0]!.y0);
    const note = onlyByClass(panel, 'note').text;
    expect(note).toBe('arrow length ∝ |s|; longest = 0.9 cell at |s| = 2.828; 1 non-finite arrow not drawn');
    expect(root.children.find((c) => c.name === 'desc')?.text).toBe(`${note} | arrow length ∝ |s|; longest = 0.9 cell at |s| = 2.828`);
  });

  it("'unit' draws equal lengths, 'log' keeps the order, scale fixes lengths", () => {
    const lengthsOf = (opts: Partial<Parameters<typeof quiverComparison>[0]>) => panelArrowLengths(quiverComparison({ learned: field, truth: field, ...opts }))[0]!;
    const unit = lengthsOf({ normalize: 'unit' });
    expect(unit).toHaveLength(14);
    expect(Math.max(...unit) - Math.min(...unit)).toBeLessThan(0.05);
    const proportional = lengthsOf({});
    const logged = lengthsOf({ normalize: 'log' });
    expect(Math.max(...proportional) - Math.min(...proportional)).toBeGreaterThan(10);
    for (let i = 0; i < logged.length; i++) {
      for (let j = 0; j < logged.length; j++) {
        if (proportional[i]! < proportional[j]! - 0.05) expect(logged[i]!).toBeLessThan(logged[j]! + 0.05);
      }
    }
    const a = lengthsOf({ scale: 0.1 });
    const b = lengthsOf({ scale: 0.2 });
    a.forEach((l, i) => expect(b[i]! / l).toBeCloseTo(2, 1));
    expect(() => quiverComparison({ learned: field, truth: field, scale: -1 })).toThrow(RangeError);
  });

  it('survives empty, all-zero and mismatched fields', () => {
    const empty = { x: [], y: [], u: [], v: [] };
    checkSvg(quiverComparison({ learned: empty, truth: empty }));
    const zeroField = { ...field, u: field.u.map(() => 0), v: field.v.map(() => 0) };
    expect(panelArrowLengths(quiverComparison({ learned: zeroField, truth: zeroField })).map((p) => p.length)).toEqual([0, 0]);
    const single = { x: [0], y: [0], u: [1], v: [1] };
    expect(panelArrowLengths(quiverComparison({ learned: single, truth: single })).map((p) => p.length)).toEqual([1, 1]);
    expect(() => quiverComparison({ learned: { x: [0, 1], y: [0], u: [1], v: [1] }, truth: single })).toThrow(/learned: x, y, u, v must have one entry per arrow/);
  });

  it('compares two fields in one SVG on one scale', () => {
    const root = checkSvg(quiverComparison({ title: 'learned vs true', learned: field, truth: field, background: [[0, 0]] }));
    const panels = byClass(root, 'panel');
    expect(panels).toHaveLength(2);
    const arrows = panels.map((p) => descendants(onlyByClass(p, 'arrows'), 'path').map((a) => a.attrs.d));
    expect(arrows[0]).toHaveLength(14);
    expect(arrows[1]).toEqual(arrows[0]); // same field, same axes and scale: identical arrows
    expect(panels.map((p) => descendants(onlyByClass(p, 'background'), 'circle').length)).toEqual([1, 1]);
    // Doubling the learned field doubles its arrows relative to the truth's.
    const [l, t] = panelArrowLengths(quiverComparison({ learned: { ...field, u: field.u.map((a) => 2 * a), v: field.v.map((a) => 2 * a) }, truth: field }));
    l!.forEach((len, i) => expect(len / t![i]!).toBeCloseTo(2, 1));
  });
});

// ------------------------------------------------------------------------------------------------

/** The vertices of a path's "M…L…" data, split into subpaths. */
function subpaths(d: string): Array<Array<[number, number]>> {
  return d.split('M').filter(Boolean).map((part) => part.replace(/l0 0$/, '').split('L').map((xy) => xy.split(' ').map(Number) as [number, number]));
}

describe('linePlot', () => {
  it('draws one path per series and a legend entry per label', () => {
    const root = checkSvg(linePlot({ title: 'loss', series: [{ y: [3, 2, 1.5, 1.2], label: 'train' }, { x: [0, 2], y: [3.5, 1], label: 'val' }] }));
    const paths = descendants(onlyByClass(root, 'lines'), 'path');
    expect(paths).toHaveLength(2);
    expect(subpaths(paths[0]!.attrs.d!)).toEqual([expect.any(Array)]);
    expect(subpaths(paths[0]!.attrs.d!)[0]).toHaveLength(4);
    expect(descendants(onlyByClass(root, 'legend'), 'line')).toHaveLength(2);
    // The first x (0) sits on the frame's left edge: the x axis starts at a tick at or below it.
    const frame = onlyByClass(root, 'frame');
    expect(subpaths(paths[0]!.attrs.d!)[0]![0]![0]).toBe(num(frame, 'x'));
  });

  it('breaks the line at non-finite and (log-y) non-positive values', () => {
    const y = [1, 0.5, NaN, 0.2, 0.1, -0.1, 0, 0.05, 0.01];
    const linear = checkSvg(linePlot({ series: [{ y }] }));
    expect(subpaths(descendants(onlyByClass(linear, 'lines'), 'path')[0]!.attrs.d!).map((s) => s.length)).toEqual([2, 6]);
    const svg = linePlot({ series: [{ y }], logY: true });
    const log = checkSvg(svg);
    const d = descendants(onlyByClass(log, 'lines'), 'path')[0]!.attrs.d!;
    expect(subpaths(d).map((s) => s.length)).toEqual([2, 2, 2]);
    expect(svg).toContain('3 non-finite or non-positive values not drawn');
    // Log ticks are decades, 0.01 … 1 on y (after the x labels 0 … 8).
    const labels = descendants(onlyByClass(log, 'tick-labels'), 'text').map((t) => t.text);
    expect(labels.slice(-3)).toEqual(['0.01', '0.1', '1']);
  });

  it('draws an isolated point as a dot', () => {
    const root = checkSvg(linePlot({ series: [{ y: [NaN, 2, NaN, 1, 3] }] }));
    const d = descendants(onlyByClass(root, 'lines'), 'path')[0]!.attrs.d!;
    expect(d).toMatch(/^M[\d.]+ [\d.]+l0 0M/);
  });

  it('thins long series but keeps their extremes', () => {
    const n = 100_000;
    const rand = lcg(3);
    const y = Float64Array.from({ length: n }, () => 1 + rand());
    y[55_555] = 40; // a spike
    y[77_777] = 0.2; // a dip
    const full = checkSvg(linePlot({ series: [{ y }], maxPoints: 10 * n }));
    const thinned = checkSvg(linePlot({ series: [{ y }] }));
    const vertices = (root: XmlNode) => subpaths(descendants(onlyByClass(root, 'lines'), 'path')[0]!.attrs.d!).flat();
    const all = vertices(full);
    const kept = vertices(thinned);
    expect(all).toHaveLength(n);
    expect(kept.length).toBeLessThanOrEqual(2002);
    const extremes = (v: Array<[number, number]>) => [Math.min(...v.map((p) => p[1])), Math.max(...v.map((p) => p[1]))];
    expect(extremes(kept)).toEqual(extremes(all));
    expect(kept[0]).toEqual(all[0]);
    expect(kept[kept.length - 1]).toEqual(all[all.length - 1]);
  });

  it('handles empty input and rejects mismatched lengths', () => {
    checkSvg(linePlot({ series: [] }));
    checkSvg(linePlot({ series: [{ y: [] }], logY: true }));
    checkSvg(linePlot({ series: [{ y: [-1, -2] }], logY: true }));
    checkSvg(linePlot({ series: [{ y: [5, 5, 5] }] }));
    const root = checkSvg(linePlot({ series: [{ y: [NaN] }] }));
    expect(descendants(onlyByClass(root, 'lines'), 'path')[0]!.attrs.d).toBeUndefined();
    expect(() => linePlot({ series: [{ x: [1, 2], y: [1] }] })).toThrow(/2 x values but 1 y values/);
  });
});

// ------------------------------------------------------------------------------------------------

describe('trajectoryPlot', () => {
  const walk = (x0: number, y0: number, steps: number): [number, number][] => Array.from({ length: steps }, (_, k) => [x0 * 0.9 ** k, y0 * 0.9 ** k]);

  it('draws a polyline per path with start and end markers', () => {
    const paths = [walk(3, 3, 20), walk(-3, 2, 20), walk(1, -2, 5), [[0.5, 0.5]] as [number, number][], []];
    const root = checkSvg(trajectoryPlot({ title: 'Langevin', paths, background: { x: [0, 1, 2], y: [0, 1, 0] }, backgroundLabel: 'data' }));
    const lines = descendants(onlyByClass(root, 'paths'), 'polyline');
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.attrs.points!.split(' ').length)).toEqual([20, 20, 5]);
    // Three full paths (start + end) and one single-point path (start only).
    expect(descendants(onlyByClass(root, 'markers'), 'circle')).toHaveLength(7);
    expect(descendants(onlyByClass(root, 'background'), 'circle')).toHaveLength(3);
    // The start marker sits on the polyline's first vertex.
    const start = descendants(onlyByClass(root, 'markers'), 'circle')[0]!;
    expect(lines[0]!.attrs.points!.split(' ')[0]).toBe(`${start.attrs.cx},${start.attrs.cy}`);
  });

  it('cuts a diverged path at its first non-finite position', () => {
    const path = walk(2, 2, 10);
    path[6] = [NaN, 1];
    path[7] = [Infinity, Infinity];
    const svg = trajectoryPlot({ paths: [path] });
    const root = checkSvg(svg);
    expect(descendants(onlyByClass(root, 'paths'), 'polyline')[0]!.attrs.points!.split(' ')).toHaveLength(6);
    expect(svg).toContain('4 positions after a path&#39;s first non-finite one not drawn');
  });

  it('handles no paths at all', () => {
    const root = checkSvg(trajectoryPlot({ paths: [] }));
    expect(descendants(root, 'polyline')).toHaveLength(0);
  });
});

// ------------------------------------------------------------------------------------------------

describe('htmlReport', () => {
  const scatter = scatterPlot({ title: 'samples', series: [{ points: [[0, 1], [1, 0]] }] });
  const loss = linePlot({ title: 'loss', series: [{ y: [3, 2, 1] }] });

  it('contains each heading and its SVG, escaped text and a table', () => {
    const html = htmlReport({
      title: `Run ${NASTY}`,
      intro: `first paragraph\n\nsecond ${NASTY}`,
      sections: [
        { heading: 'Samples', svg: scatter, text: 'Data against model samples.' },
        { heading: `Loss ${NASTY}`, svg: [loss, scatter] },
        { heading: 'Metrics', table: { columns: ['metric', 'value'], rows: [[`MMD² ${NASTY}`, 0.000123456], ['steps', 5000], ['KL', null]], caption: 'final' } },
      ],
    });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    const root = parseXml(html, { html: true });
    expect(root.name).toBe('html');
    expect(html).not.toContain(NASTY);
    const headings = descendants(root, 'h2');
    expect(headings).toHaveLength(3);
    expect(html).toContain('<h2 id="section-1">Samples</h2>');
    expect(html).toContain(`<h2 id="section-2">Loss ${NASTY_ESCAPED}</h2>`);
    expect(html).toContain(`<title>Run ${NASTY_ESCAPED}</title>`);
    // Each section holds its own SVGs, verbatim.
    const sections = descendants(root, 'section');
    expect(sections.map((s) => descendants(s, 'svg').filter((n) => n.attrs.xmlns).length)).toEqual([1, 2, 0]);
    expect(html.split(scatter).length - 1).toBe(2);
    expect(html.split(loss).length - 1).toBe(1);
    // Table: escaped cells, numbers formatted and right-aligned, a table of contents for 3 sections.
    expect(html).toContain(`<td>MMD² ${NASTY_ESCAPED}</td><td class="num">0.00012346</td>`);
    expect(html).toContain('<td class="num">—</td>');
    expect(descendants(root, 'nav')).toHaveLength(1);
    expect(descendants(root, 'p')).toHaveLength(3);
    // Self-contained: no scripts, no external resources.
    expect(html).not.toMatch(/<script|<link|src=|@import|url\(/i);
  });

  it('is deterministic unless a timestamp is asked for', () => {
    const opts = { title: 'r', sections: [{ heading: 'a', svg: scatter }] };
    expect(htmlReport(opts)).toBe(htmlReport(opts));
    expect(htmlReport(opts)).not.toContain('<footer>');
    const stamped = htmlReport({ ...opts, generatedAt: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) });
    expect(stamped).toContain('<footer>Generated 2024-01-02T03:04:05.000Z</footer>');
    parseXml(stamped, { html: true });
  });

  it('drops an XML prolog and rejects what is not an SVG document', () => {
    const html = htmlReport({ title: 'r', sections: [{ heading: 'a', svg: `<?xml version="1.0"?>\n${scatter}` }] });
    expect(html).not.toContain('<?xml');
    expect(html).toContain(scatter);
    expect(() => htmlReport({ title: 'r', sections: [{ heading: 'a', svg: '<script>alert(1)</script>' }] })).toThrow(/SVG document/);
    expect(() => htmlReport({ title: 'r', sections: [{ heading: 't', table: { columns: ['a', 'b'], rows: [[1]] } }] })).toThrow(/1 cells, expected 2/);
  });

  it('formats cells', () => {
    expect([formatCell(3), formatCell(1 / 3), formatCell(NaN), formatCell(-Infinity), formatCell(undefined), formatCell(true)])
      .toEqual(['3', '0.33333', 'NaN', '−∞', '—', 'true']);
  });
});

describe('the report package', () => {
  it('declares no dependencies', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(manifest.name).toBe('@scorch/report');
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) expect(manifest[field], field).toBeUndefined();
  });

  it('is pure: imports nothing but its own files (no fs, no dependencies), so it writes nothing to disk', () => {
    const dir = new URL('../src/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files.sort()).toEqual(['html.ts', 'index.ts', 'plots.ts', 'svg.ts']);
    for (const file of files) {
      const source = readFileSync(new URL(file, dir), 'utf8');
      const specifiers = [...source.matchAll(/\bfrom\s+'([^']+)'|\bimport\s*\(\s*'([^']+)'|\brequire\s*\(\s*'([^']+)'/g)].map((m) => m[1] ?? m[2] ?? m[3]);
      expect(specifiers.length, file).toBeGreaterThan(file === 'svg.ts' ? -1 : 0);
      for (const s of specifiers) expect(s, `${file} imports ${s}`).toMatch(/^\.\/(svg|plots|html)\.js$/);
    }
  });
});
