// The plots' details that the other tests of quiver, trajectories, scatter and line leave open:
// defaults, documented constants, and options that were accepted but not checked.
// Pixel coordinates are written to 0.01 px, so a difference of two is off by at most 0.02 px.

import { describe, expect, it } from 'vitest';
import { linePlot } from '../src/line.js';
import { gridPoints, quiverComparison } from '../src/quiver.js';
import { scatterPlot } from '../src/scatter.js';
import { trajectoryPlot } from '../src/trajectories.js';
import { type XmlNode, byClass, checkSvg, descendants, num, onlyByClass } from './xml.js';

/** All points of an arrow path "Mx0 y0Lx1 y1Mhx1 hy1Lx1 y1Lhx2 hy2": shaft tail, tip, the two barb ends. */
function arrow(path: XmlNode): { tail: [number, number]; tip: [number, number]; barbs: [number, number][] } {
  const nums = (path.attrs.d ?? '').match(/-?[\d.]+/g)!.map(Number);
  expect(nums).toHaveLength(10);
  const p = (k: number): [number, number] => [nums[2 * k]!, nums[2 * k + 1]!];
  expect(p(3)).toEqual(p(1)); // both barbs meet the tip
  return { tail: p(0), tip: p(1), barbs: [p(2), p(4)] };
}

const len = (a: [number, number], b: [number, number]) => Math.hypot(b[0] - a[0], b[1] - a[1]);

/** Per panel: the arrows, their lengths (px), their midpoints (px), the frame and the note. */
function panels(svg: string) {
  return byClass(checkSvg(svg), 'panel').map((p) => {
    const arrows = descendants(onlyByClass(p, 'arrows'), 'path').map(arrow);
    return {
      arrows,
      lengths: arrows.map((a) => len(a.tail, a.tip)),
      mids: arrows.map((a) => [(a.tail[0] + a.tip[0]) / 2, (a.tail[1] + a.tip[1]) / 2] as const),
      frame: onlyByClass(p, 'frame'),
      note: onlyByClass(p, 'note').text,
    };
  });
}

describe('gridPoints', () => {
  it('refuses a zero count along either axis', () => {
    expect(() => gridPoints([0, 1], [0, 1], 0, 3)).toThrow('gridPoints: nx and ny must be positive integers, got 0 × 3');
    expect(() => gridPoints([0, 1], [0, 1], 3, 0)).toThrow('gridPoints: nx and ny must be positive integers, got 3 × 0');
  });

  it('puts a single point per axis at the middle of its range', () => {
    const g = gridPoints([0, 4], [2, 6], 1, 1);
    expect(Array.from(g.xy)).toEqual([2, 4]);
  });
});

describe('quiverComparison', () => {
  it('takes the cell from the finer spacing of a rectangular grid (x step 1, y step 0.5)', () => {
    const g = gridPoints([-2, 2], [-1, 1], 5, 5);
    const field = { x: g.x, y: g.y, u: g.x.map(() => 1), v: g.y.map(() => 0) };
    const [p] = panels(quiverComparison({ learned: field, truth: field }));
    const cellXPx = p!.mids[1]![0] - p!.mids[0]![0]; // one x step = 1 data unit
    // Every arrow is the longest: 0.9 of the 0.5 cell = 0.45 data units (±0.03 px of ~70 px).
    for (const l of p!.lengths) expect(l / cellXPx).toBeCloseTo(0.45, 3);
  });

  it('ignores float32-rounding differences within a grid column when finding the cell', () => {
    // Each row's x is off by j·1e-7 (span 4: below the 4e-6 threshold), as a float32 grid can be.
    const g = gridPoints([-2, 2], [-2, 2], 5, 5);
    const x = Float64Array.from(g.x, (v, i) => v + Math.floor(i / 5) * 1e-7);
    const field = { x, y: g.y, u: x.map(() => 1), v: x.map(() => 0) };
    const [p] = panels(quiverComparison({ learned: field, truth: field }));
    const cellPx = p!.mids[1]![0] - p!.mids[0]![0];
    expect(cellPx).toBeGreaterThan(10);
    for (const l of p!.lengths) expect(l / cellPx).toBeCloseTo(0.9, 2);
  });

  it('drops a vector whose magnitude overflows to Infinity and counts it, sizing the rest by the finite ones', () => {
    const line = { x: [0, 1, 2], y: [0, 0, 0], u: [1, 2, 1.7e308], v: [0, 0, 1.7e308] };
    const [p] = panels(quiverComparison({ learned: line, truth: line }));
    expect(p!.lengths).toHaveLength(2);
    expect(p!.note).toBe('arrow length ∝ |s|; longest = 0.9 cell at |s| = 2; 1 non-finite arrow not drawn');
    const cellPx = p!.mids[1]![0] - p!.mids[0]![0];
    expect(p!.lengths[1]! / cellPx).toBeCloseTo(0.9, 2);
  });

  it("'log' takes the median over non-zero magnitudes only, the lower middle one for an even count", () => {
    // Zero vectors are left out: magnitudes 1, 2, 4, 8 → the median m is 2 (the lower of 2 and 4;
    // counting the two zeros it would be 1).
    const line = { x: [0, 1, 2, 3, 4, 5], y: [0, 0, 0, 0, 0, 0], u: [0, 0, 1, 2, 4, 8], v: [0, 0, 0, 0, 0, 0] };
    const svg = quiverComparison({ learned: line, truth: line, normalize: 'log' });
    const [p] = panels(svg);
    expect(p!.note).toBe('arrow length ∝ log(1 + |s|/2); longest = 0.9 cell at |s| = 8');
    const expected = [1, 2, 4, 8].map((s) => Math.log1p(s / 2) / Math.log1p(8 / 2));
    // Shortest ~8 px, longest ~39 px, each ±0.03 px: the ratios hold to well under 0.005.
    p!.lengths.forEach((l, i) => expect(l / p!.lengths[3]!).toBeCloseTo(expected[i]!, 2));
  });

  it('without any grid step, arrows are 0.9 of a tenth of the combined extent', () => {
    // One arrow per field, at x = 0 and x = 10: no field has a grid step; extent 10 → cell 1.
    // The x domain is the extent padded by half a cell, [-0.5, 10.5]: 11 units across the frame.
    const p = panels(quiverComparison({ learned: { x: [0], y: [0], u: [1], v: [0] }, truth: { x: [10], y: [0], u: [1], v: [0] } }));
    for (const panel of p) {
      const unitPx = num(panel.frame, 'width') / 11;
      expect(panel.lengths).toHaveLength(1);
      expect(panel.lengths[0]! / unitPx).toBeCloseTo(0.9, 2);
    }
  });

  it('scale: an arrow spans exactly scale · (u, v) data units, and the note states the scale as given', () => {
    const line = { x: [0, 1, 2], y: [0, 0, 0], u: [1, 2, 4], v: [0, 0, 0] };
    const [p] = panels(quiverComparison({ learned: line, truth: line, scale: 0.125 }));
    const unitPx = p!.mids[1]![0] - p!.mids[0]![0];
    [1, 2, 4].forEach((s, i) => expect(p!.lengths[i]! / unitPx).toBeCloseTo(0.125 * s, 3));
    expect(p!.note).toBe('arrows span 0.125 × (u, v) data units; largest |s| = 4');
  });

  it('clips the arrows to their frame, so a long arrow under scale cannot cross into the other panel', () => {
    const line = { x: [0, 1, 2], y: [0, 0, 0], u: [1, 2, 4], v: [0, 0, 0] };
    const root = checkSvg(quiverComparison({ learned: line, truth: line, scale: 1 }));
    for (const p of byClass(root, 'panel')) {
      const frame = onlyByClass(p, 'frame');
      const viewport = p.children.find((c) => c.name === 'svg' && c.children.some((g) => g.attrs.class === 'arrows'))!;
      expect(viewport).toBeDefined();
      const [x, y, w, h] = ['x', 'y', 'width', 'height'].map((k) => frame.attrs[k]!);
      expect(viewport.attrs).toMatchObject({ x, y, width: w, height: h, viewBox: `${x} ${y} ${w} ${h}`, overflow: 'hidden' });
    }
    // The third arrow (4 data units) does run past its frame: what the viewport cuts off.
    const [learned] = panels(quiverComparison({ learned: line, truth: line, scale: 1 }));
    expect(learned!.arrows[2]!.tip[0]).toBeGreaterThan(num(learned!.frame, 'x') + num(learned!.frame, 'width'));
  });

  it('pads the automatic domain by half a cell beyond the grid', () => {
    // A wide grid (9 × 3, step 1): x is the long axis, so it is not widened for equal aspect.
    const g = gridPoints([-4, 4], [-1, 1], 9, 3);
    const field = { x: g.x, y: g.y, u: g.x.map(() => 1), v: g.y.map(() => 0) };
    const [p] = panels(quiverComparison({ learned: field, truth: field }));
    const cellPx = p!.mids[1]![0] - p!.mids[0]![0];
    expect((p!.mids[0]![0] - num(p!.frame, 'x')) / cellPx).toBeCloseTo(0.5, 2);
    expect(num(p!.frame, 'width') / cellPx).toBeCloseTo(9, 1);
  });

  it('with only xDomain given, takes the y range from the grid (not from xDomain)', () => {
    const g = gridPoints([-2, 2], [10, 12], 5, 3);
    const field = { x: g.x, y: g.y, u: g.x.map(() => 1), v: g.y.map(() => 1) };
    for (const p of panels(quiverComparison({ learned: field, truth: field, xDomain: [-3, 3] }))) {
      expect(p.lengths).toHaveLength(15);
      expect(p.note).toBe('arrow length ∝ |s|; longest = 0.9 cell at |s| = 1.414');
    }
  });

  it('leaves out arrows outside given domains and says how many', () => {
    const g = gridPoints([-4, 4], [-1, 1], 9, 3); // x = -4 … 4; the domains (widened a little for equal aspect) keep x = -1, 0, 1
    const field = { x: g.x, y: g.y, u: g.x.map(() => 1), v: g.y.map(() => 0) };
    for (const p of panels(quiverComparison({ learned: field, truth: field, xDomain: [-1.5, 1.5], yDomain: [-1.5, 1.5] }))) {
      expect(p.lengths).toHaveLength(9); // x = -1, 0, 1 in each of the 3 rows
      expect(p.note).toBe('arrow length ∝ |s|; longest = 0.9 cell at |s| = 1; 18 arrows outside the axes not drawn');
      const [left, right] = [num(p.frame, 'x'), num(p.frame, 'x') + num(p.frame, 'width')];
      for (const a of p.arrows) for (const pt of [a.tail, a.tip]) expect(pt[0] >= left && pt[0] <= right).toBe(true);
    }
  });

  it('draws the arrow head as two barbs 0.3 of the shaft long, at ±25° to it', () => {
    const line = { x: [0, 1], y: [0, 0], u: [1, 0], v: [1, 1] };
    const [p] = panels(quiverComparison({ learned: line, truth: line }));
    for (const a of p!.arrows) {
      const shaft = len(a.tail, a.tip);
      const back = Math.atan2(a.tail[1] - a.tip[1], a.tail[0] - a.tip[0]);
      // Rounding to 0.01 px moves a barb end by ≤ 0.007 px: of a ~20 px barb, < 1e-3 in ratio and angle.
      const angles = a.barbs.map((b) => {
        expect(len(a.tip, b) / shaft).toBeCloseTo(0.3, 2);
        const d = Math.atan2(b[1] - a.tip[1], b[0] - a.tip[0]) - back;
        return Math.abs(Math.atan2(Math.sin(d), Math.cos(d)));
      });
      for (const t of angles) expect(t).toBeCloseTo((25 * Math.PI) / 180, 2);
    }
  });

  it('checks labels is exactly two strings and that every field array has one entry per arrow', () => {
    const field = { x: [0, 1], y: [0, 0], u: [1, 1], v: [0, 0] };
    expect(() => quiverComparison({ learned: field, truth: field, labels: ['a', 'b', 'c'] as unknown as [string, string] })).toThrow(
      'quiverComparison: labels must be the two panel titles [learned, truth], got ["a","b","c"]',
    );
    expect(() => quiverComparison({ learned: field, truth: { ...field, v: [0] } })).toThrow('quiverComparison: truth: x, y, u, v must have one entry per arrow, got lengths 2, 2, 2, 1');
  });

  it('counts an arrow whose length overflows with the non-finite ones', () => {
    const line = { x: [0, 1, 2], y: [0, 0, 0], u: [1, 2, 1e10], v: [0, 0, 0] };
    for (const p of panels(quiverComparison({ learned: line, truth: line, scale: 1e300 }))) {
      expect(p.lengths).toHaveLength(2);
      expect(p.note).toBe('arrows span 1e+300 × (u, v) data units; largest |s| = 10000000000; 1 non-finite arrow not drawn');
    }
  });
});

describe('trajectoryPlot', () => {
  it('gives no legend row to a background label without a background', () => {
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [1, 1]]], backgroundLabel: 'data' }));
    expect(descendants(onlyByClass(root, 'legend'), 'text').map((t) => t.text)).toEqual(['start', 'end']);
  });

  it('draws on equal x and y scales by default', () => {
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [2, 1]]] }));
    const [start, end] = descendants(onlyByClass(root, 'markers'), 'circle');
    const perUnitX = (num(end!, 'cx') - num(start!, 'cx')) / 2;
    const perUnitY = num(start!, 'cy') - num(end!, 'cy');
    expect(Math.abs(perUnitX - perUnitY)).toBeLessThan(0.02);
  });

  it('draws every path in the given colour: a hollow start, a filled end on the last vertex', () => {
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [1, 2], [2, 1]]], color: 'red' }));
    const line = onlyByClass(root, 'paths').children[0]!;
    expect(line.attrs.stroke).toBe('red');
    const [start, end] = descendants(onlyByClass(root, 'markers'), 'circle');
    expect(start!.attrs).toMatchObject({ fill: '#ffffff', stroke: 'red' });
    expect(end!.attrs.fill).toBe('red');
    const vertices = line.attrs.points!.split(' ');
    expect(`${end!.attrs.cx},${end!.attrs.cy}`).toBe(vertices[vertices.length - 1]);
  });

  it('counts non-finite background points in the note', () => {
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [1, 1]]], background: [[0, 1], [NaN, 0]] }));
    expect(descendants(onlyByClass(root, 'background'), 'circle')).toHaveLength(1);
    expect(onlyByClass(root, 'note').text).toBe('1 non-finite background point not drawn');
  });
});

describe('scatterPlot', () => {
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

describe('linePlot', () => {
  /** The vertices of a path's "M…L…" data (subpaths merged). */
  const vertices = (root: XmlNode, k = 0) => descendants(onlyByClass(root, 'lines'), 'path')[k]!.attrs.d!
    .replace(/l0 0/g, '').split(/[ML]/).filter(Boolean).map((xy) => xy.split(' ').map(Number) as [number, number]);

  it('places a single point inside the frame (an x extent of one value)', () => {
    const root = checkSvg(linePlot({ series: [{ x: [5], y: [1] }] }));
    const frame = onlyByClass(root, 'frame');
    const [[x, y]] = vertices(root) as [[number, number]];
    expect(x).toBeGreaterThanOrEqual(num(frame, 'x'));
    expect(x).toBeLessThanOrEqual(num(frame, 'x') + num(frame, 'width'));
    expect(y).toBeGreaterThanOrEqual(num(frame, 'y'));
    expect(y).toBeLessThanOrEqual(num(frame, 'y') + num(frame, 'height'));
  });

  it('thins a long series that starts with a non-finite value from its first drawable one', () => {
    const y = Float64Array.from({ length: 20_000 }, (_, i) => 1 + Math.sin(i));
    y[0] = NaN;
    const root = checkSvg(linePlot({ series: [{ y }] }));
    const v = vertices(root);
    expect(v.length).toBeLessThanOrEqual(2002);
    expect(onlyByClass(root, 'note').text).toBe('1 non-finite value not drawn');
  });

  it('thins to about 2000 vertices by default, and draws a short series beside a long one whole', () => {
    // 20 000 values: buckets of ceil(2 · 20 000 / 2000) = 20, 1000 buckets, a min and a max each.
    const y = Float64Array.from({ length: 20_000 }, (_, i) => 1 + Math.sin(i));
    const short = Array.from({ length: 30 }, (_, i) => Math.cos(i)); // 30 ≤ 2 · 20: not thinned
    const root = checkSvg(linePlot({ series: [{ y }, { y: short }] }));
    expect(vertices(root, 0).length).toBeGreaterThanOrEqual(1990);
    expect(vertices(root, 0).length).toBeLessThanOrEqual(2002);
    expect(vertices(root, 1)).toHaveLength(30);
  });

  it("uses a series' strokeWidth", () => {
    const root = checkSvg(linePlot({ series: [{ y: [1, 2], strokeWidth: 3 }, { y: [2, 1] }] }));
    expect(descendants(onlyByClass(root, 'lines'), 'path').map((p) => p.attrs['stroke-width'])).toEqual(['3', '1.6']);
  });
});
