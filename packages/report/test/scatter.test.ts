// The scatter chart: one circle per drawable point, inside the frame, with the omissions counted.

import { describe, expect, it } from 'vitest';
import { plural, tickCount } from '../src/chart.js';
import { scatterPlot } from '../src/scatter.js';
import { byClass, checkSvg, descendants, NASTY, NASTY_ESCAPED, num, onlyByClass } from './xml.js';

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

  it('gives a legend swatch its own series\' colour when an earlier series has no label', () => {
    // The unlabelled series has no legend row, so the swatch's row index is not its series index.
    const root = checkSvg(scatterPlot({ series: [{ points: [[0, 0], [1, 1]] }, { points: [[0, 1], [1, 0]], label: 'samples' }] }));
    const fills = byClass(root, 'series').map((g) => g.attrs.fill);
    expect(new Set(fills).size).toBe(2);
    expect(descendants(onlyByClass(root, 'legend'), 'circle').map((c) => c.attrs.fill)).toEqual([fills[1]]);
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

  it('equalAspect: true holds with both domains given, widening one (it was ignored, squashing a ring into an ellipse)', () => {
    // Pixels per data unit along x and along y, from the circles of (0, 0) and (2, 1).
    const unitsOf = (svg: string) => {
      const circles = descendants(checkSvg(svg)).filter((e) => e.name === 'circle');
      const [a, c] = [circles[0]!, circles[2]!];
      return { x: Math.abs(num(c, 'cx') - num(a, 'cx')) / 2, y: Math.abs(num(c, 'cy') - num(a, 'cy')) / 1 };
    };
    const given = unitsOf(scatterPlot({ series: [{ points: data }], xDomain: [-2, 2], yDomain: [-2, 2], equalAspect: true }));
    expect(Math.abs(given.x - given.y)).toBeLessThan(0.02); // coordinates are written to 2 decimals
    // Left out, the domains are used as given: the frame is not square, so the units differ.
    const asGiven = unitsOf(scatterPlot({ series: [{ points: data }], xDomain: [-2, 2], yDomain: [-2, 2] }));
    expect(Math.abs(asGiven.x - asGiven.y)).toBeGreaterThan(1);
  });

  it('skips null, \'\' and true in point arrays (Number() drew them at 0 or 1)', () => {
    const x = [1, 2, null, '', true] as unknown as number[];
    const root = checkSvg(scatterPlot({ series: [{ points: { x, y: [1, 2, 3, 4, 5] } }] }));
    expect(descendants(onlyByClass(root, 'series'), 'circle')).toHaveLength(2);
    expect(onlyByClass(root, 'note').text).toBe('3 non-finite points not drawn');
  });

  it('equalAspect: true holds with one domain given (a ring was drawn as an ellipse)', () => {
    const ring = Array.from({ length: 8 }, (_, i) => [Math.cos((i * Math.PI) / 4), Math.sin((i * Math.PI) / 4)] as [number, number]);
    for (const domain of [{ xDomain: [-2, 2] as const }, { yDomain: [-2, 2] as const }]) {
      const c = descendants(onlyByClass(checkSvg(scatterPlot({ series: [{ points: ring }], equalAspect: true, ...domain })), 'series'), 'circle');
      // Radius in px along x (points 0 and 4) and along y (points 2 and 6).
      const rx = (num(c[0]!, 'cx') - num(c[4]!, 'cx')) / 2;
      const ry = (num(c[6]!, 'cy') - num(c[2]!, 'cy')) / 2;
      expect(Math.abs(rx - ry)).toBeLessThan(0.02);
    }
  });

  it('draws 200 000 points (spreading them into el overflowed the stack above ~125k)', () => {
    const xy = Float64Array.from({ length: 400_000 }, (_, i) => Math.sin(i));
    const svg = scatterPlot({ series: [{ points: { xy } }] });
    expect(svg.split('<circle ').length - 1).toBe(200_000);
  });
});

describe('scatterPlot: series styles, legend, aspect and radius', () => {
  const pts: [number, number][] = [[0, 0], [1, 1], [2, 0]];

  it("uses a series' colour, radius and opacity, and defaults opacity to 0.65", () => {
    const root = checkSvg(scatterPlot({ series: [{ points: pts, color: 'red', radius: 5, opacity: 0.3, label: 'a' }, { points: pts }] }));
    const [a, b] = byClass(root, 'series');
    expect(a!.attrs).toMatchObject({ fill: 'red', 'fill-opacity': '0.3' });
    expect(descendants(a!, 'circle').map((c) => c.attrs.r)).toEqual(['5', '5', '5']);
    expect(descendants(onlyByClass(root, 'legend'), 'circle')[0]!.attrs.fill).toBe('red');
    expect(b!.attrs['fill-opacity']).toBe('0.65');
  });

  it("gives a series labelled '' no legend row", () => {
    const svg = scatterPlot({ series: [{ points: pts, label: '' }] });
    expect(byClass(checkSvg(svg), 'legend')).toHaveLength(0);
  });

  it('draws on equal x and y scales by default (a ring stays round)', () => {
    const ring = Array.from({ length: 8 }, (_, i) => [Math.cos((i * Math.PI) / 4), Math.sin((i * Math.PI) / 4)] as [number, number]);
    const c = descendants(onlyByClass(checkSvg(scatterPlot({ series: [{ points: ring }] })), 'series'), 'circle');
    const rx = (num(c[0]!, 'cx') - num(c[4]!, 'cx')) / 2;
    const ry = (num(c[6]!, 'cy') - num(c[2]!, 'cy')) / 2;
    expect(Math.abs(rx - ry)).toBeLessThan(0.02);
  });

  it('default radius: 3 px up to 500 points in all, 2 px above', () => {
    const radius = (n: number) => {
      const xy = Float64Array.from({ length: 2 * n }, (_, i) => Math.sin(i));
      return descendants(onlyByClass(checkSvg(scatterPlot({ series: [{ points: { xy } }] })), 'series'), 'circle')[0]!.attrs.r;
    };
    expect(radius(500)).toBe('3');
    expect(radius(501)).toBe('2');
  });
});

describe('the frame and inputs every chart shares (chart.ts)', () => {
  it('refuses a point that is not a pair', () => {
    expect(() => scatterPlot({ series: [{ points: [[1, 2], [3] as never] }] })).toThrow(/^scatterPlot: series 0: point 1 must be an \[x, y\] pair$/);
  });

  it('names both lengths of mismatched x and y', () => {
    expect(() => scatterPlot({ series: [{ points: { x: [1, 2], y: [1] } }] })).toThrow(/x and y have different lengths \(2 vs 1\)$/);
  });

  it('keeps the footnote clear of the x tick labels', () => {
    for (const xLabel of [undefined, 'step']) {
      const height = 240;
      const root = checkSvg(scatterPlot({ series: [{ points: [[0, 0], [1, 1], [NaN, 2]] }], height, xLabel }));
      const note = onlyByClass(root, 'note');
      const lowest = Math.max(...descendants(onlyByClass(root, 'tick-labels'), 'text').filter((t) => t.attrs['text-anchor'] === 'middle').map((t) => num(t, 'y')));
      // A tick label (11 px) descends at most 0.25 em below its baseline; the note's glyphs (10 px)
      // rise at most 1 em above its own.
      expect(lowest + 0.25 * 11).toBeLessThanOrEqual(num(note, 'y') - num(note, 'font-size'));
    }
  });

  it('plural: an s for every count but 1', () => {
    expect([plural(0, 'step'), plural(1, 'step'), plural(2, 'step')]).toEqual(['0 steps', '1 step', '2 steps']);
  });

  it('tickCount asks for at least two intervals, one per 60 px', () => {
    expect([tickCount(1), tickCount(60), tickCount(120), tickCount(600)]).toEqual([2, 2, 2, 10]);
  });

  it('gives a single point axes at least ±0.5 (or ±10% of its value) around it', () => {
    const xRange = (x: number) => {
      const root = checkSvg(scatterPlot({ series: [{ points: [[x, 1], [x, 1]] }] }));
      const labels = descendants(onlyByClass(root, 'tick-labels'), 'text').filter((t) => t.attrs['text-anchor'] === 'middle').map((t) => Number(t.text));
      return [Math.min(...labels), Math.max(...labels)];
    };
    const [lo0, hi0] = xRange(0);
    expect(lo0).toBeLessThanOrEqual(-0.5);
    expect(hi0).toBeGreaterThanOrEqual(0.5);
    const [lo100, hi100] = xRange(100);
    expect(lo100).toBeLessThanOrEqual(90);
    expect(hi100).toBeGreaterThanOrEqual(110);
  });
});
