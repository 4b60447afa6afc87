// The score-field chart: arrow count, lengths and directions under each normalisation, and two
// panels on one scale; the cell from the grid, the domains, scale, clipping and arrow heads.

import { describe, expect, it } from 'vitest';
import { gridPoints, quiverComparison } from '../src/quiver.js';
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

/** Shaft endpoints of an arrow path (arrow's tail and tip). */
function shaft(path: XmlNode): { x0: number; y0: number; x1: number; y1: number } {
  const { tail, tip } = arrow(path);
  return { x0: tail[0], y0: tail[1], x1: tip[0], y1: tip[1] };
}

/** The arrow lengths (px) of each panel of a quiverComparison. */
function panelArrowLengths(svg: string): number[][] {
  return panels(svg).map((p) => p.lengths);
}

describe('quiverComparison', () => {
  const grid = gridPoints([-2, 2], [-1, 1], 5, 3); // spacing 1 in x and y
  const field = { x: grid.x, y: grid.y, u: grid.x.map((x) => -x), v: grid.y.map((y) => -2 * y) };

  it('gridPoints refuses a range that is not two finite numbers (it filled the grid with NaN)', () => {
    expect(() => gridPoints([0, Number.NaN], [-1, 1], 3, 3)).toThrow('gridPoints: xRange must be [low, high], two finite numbers, got [0,NaN]');
    expect(() => gridPoints([-1, 1], [0, Infinity], 3, 3)).toThrow('gridPoints: yRange must be [low, high], two finite numbers, got [0,Infinity]');
    expect(() => gridPoints([-1] as unknown as [number, number], [-1, 1], 3, 3)).toThrow('got [-1]');
    expect(() => gridPoints([-1, '1'] as unknown as [number, number], [-1, 1], 3, 3)).toThrow('got [-1,"1"]');
    expect(() => gridPoints(undefined as unknown as [number, number], [-1, 1], 3, 3)).toThrow('got undefined');
    expect(gridPoints([1, -1], [0, 0], 3, 1).x).toEqual(new Float64Array([1, 0, -1])); // a reversed range runs high to low
  });

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

  it('keeps arrow angles and lengths when the domains are given (as the CLI report gives them)', () => {
    // Unit vectors at 25 different angles, drawn with equal lengths: on the page each shaft must
    // point at its vector's angle and all must be equally long, which holds only if one data unit
    // takes as many pixels along x as along y. Shaft ends are written to 0.01 px, so a ~70 px shaft
    // is off by at most atan(0.01·√2 / 70) ≈ 2e-4 rad in angle and 0.015 px in length.
    const g = gridPoints([-2, 2], [-2, 2], 5, 5);
    const theta = Array.from(g.x, (_, i) => 0.7 * i - 3);
    const unitField = { x: g.x, y: g.y, u: theta.map(Math.cos), v: theta.map(Math.sin) };
    for (const domains of [{ xDomain: [-2, 2], yDomain: [-2, 2] }, { xDomain: [-3, 3] }, { yDomain: [-2.5, 2.5] }] as const) {
      const root = checkSvg(quiverComparison({ title: 'score', learned: unitField, truth: unitField, normalize: 'unit', ...domains }));
      const shafts = descendants(onlyByClass(byClass(root, 'panel')[0]!, 'arrows'), 'path').map(shaft);
      expect(shafts).toHaveLength(25); // the given domains are still covered: no arrow left out
      const lengths = shafts.map((s) => Math.hypot(s.x1 - s.x0, s.y1 - s.y0));
      expect(Math.max(...lengths) - Math.min(...lengths)).toBeLessThan(0.03);
      shafts.forEach((s, i) => {
        const drawn = Math.atan2(-(s.y1 - s.y0), s.x1 - s.x0);
        const error = Math.abs(Math.atan2(Math.sin(drawn - theta[i]!), Math.cos(drawn - theta[i]!)));
        expect(error, `arrow ${i}`).toBeLessThan(1e-3);
      });
    }
  });

  it('says how many background points were not drawn', () => {
    // One background point outside the given domain, one non-finite: both were dropped silently.
    const background = [[0, 0], [5, 0], [NaN, 1]] as [number, number][];
    const root = checkSvg(quiverComparison({ learned: field, truth: field, background, xDomain: [-3, 3], yDomain: [-3, 3] }));
    for (const panel of byClass(root, 'panel')) {
      expect(descendants(onlyByClass(panel, 'background'), 'circle')).toHaveLength(1);
      expect(onlyByClass(panel, 'note').text).toBe(
        'arrow length ∝ |s|; longest = 0.9 cell at |s| = 2.828; 1 non-finite background point and 1 background point outside the axes not drawn',
      );
    }
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

  it("'log' scales lengths by ln(1 + |s|/m) / ln(1 + M/m), m the median magnitude, and names m in the note", () => {
    // Three arrows one cell apart along x, magnitudes 1, 2, 4: the median m is 2, the largest M 4.
    const line = { x: [0, 1, 2], y: [0, 0, 0], u: [1, 2, 4], v: [0, 0, 0] };
    const svg = quiverComparison({ learned: line, truth: line, normalize: 'log' });
    const lengths = panelArrowLengths(svg)[0]!;
    expect(lengths).toHaveLength(3);
    const expected = [1, 2, 4].map((s) => Math.log1p(s / 2) / Math.log1p(4 / 2));
    lengths.forEach((l, i) => expect(l / lengths[2]!).toBeCloseTo(expected[i]!, 2));
    const panel = byClass(checkSvg(svg), 'panel')[0]!;
    expect(onlyByClass(panel, 'note').text).toBe('arrow length ∝ log(1 + |s|/2); longest = 0.9 cell at |s| = 4');
  });

  it('sizes both panels\' arrows by the finer grid of two fields on different grids', () => {
    // By the coarser grid's cell, the finer field's arrows were 1.8 of its cells long and overlapped.
    const coarse = gridPoints([-2, 2], [-2, 2], 5, 5); // spacing 1
    const fine = gridPoints([-2, 2], [-2, 2], 9, 9); // spacing 0.5
    const eastward = (g: { x: Float64Array; y: Float64Array }) => ({ x: g.x, y: g.y, u: g.x.map(() => 1), v: g.y.map(() => 0) });
    const root = checkSvg(quiverComparison({ learned: eastward(coarse), truth: eastward(fine) }));
    const shafts = descendants(onlyByClass(byClass(root, 'panel')[1]!, 'arrows'), 'path').map(shaft);
    const mids = [...new Set(shafts.map((s) => Math.round(((s.x0 + s.x1) / 2) * 100) / 100))].sort((a, b) => a - b);
    const cellPx = mids[1]! - mids[0]!;
    expect(cellPx).toBeGreaterThan(10);
    expect((shafts[0]!.x1 - shafts[0]!.x0) / cellPx).toBeCloseTo(0.9, 1);
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

  it('draws a 400 × 400 grid (spreading the arrows into el overflowed the stack)', () => {
    const g = gridPoints([-3, 3], [-3, 3], 400, 400);
    const f = { x: g.x, y: g.y, u: Float64Array.from(g.x, (v) => -v), v: Float64Array.from(g.y, (v) => -v) };
    const svg = quiverComparison({ learned: f, truth: f });
    // An arrow per grid point: with 400 per axis none sits on the origin (a zero vector).
    expect(svg.split('<path d=').length - 1).toBe(2 * 400 * 400);
  });

  it('a field with no drawable arrow does not shrink the other\'s (its fallback cell of 1 was the shared cell)', () => {
    const g = gridPoints([-100, 100], [-100, 100], 21, 21); // cell 10
    const learned = { x: g.x, y: g.y, u: Float64Array.from(g.x, (v) => -v), v: Float64Array.from(g.y, (v) => -v) };
    const nan = new Float64Array(g.x.length).fill(NaN);
    const longest = (svg: string) => Math.max(...panelArrowLengths(svg)[0]!);
    const alone = longest(quiverComparison({ learned, truth: learned }));
    const besideNaN = longest(quiverComparison({ learned, truth: { x: g.x, y: g.y, u: nan, v: nan } }));
    expect(alone).toBeGreaterThan(15);
    expect(Math.abs(besideNaN - alone)).toBeLessThan(0.05 * alone);
  });
});

describe('gridPoints: counts and single points', () => {
  it('refuses a zero count along either axis', () => {
    expect(() => gridPoints([0, 1], [0, 1], 0, 3)).toThrow('gridPoints: nx and ny must be positive integers, got 0 × 3');
    expect(() => gridPoints([0, 1], [0, 1], 3, 0)).toThrow('gridPoints: nx and ny must be positive integers, got 3 × 0');
  });

  it('puts a single point per axis at the middle of its range', () => {
    const g = gridPoints([0, 4], [2, 6], 1, 1);
    expect(Array.from(g.xy)).toEqual([2, 4]);
  });
});

describe('quiverComparison: cells, domains, scale, clipping and heads', () => {
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
