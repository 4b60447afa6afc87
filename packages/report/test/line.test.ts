// The line chart: paths broken at undrawable values, log axes, and thinning that keeps extremes.

import { describe, expect, it } from 'vitest';
import { linePlot } from '../src/line.js';
import { paletteColor } from '../src/svg.js';
import { textWidth } from '../src/textMetrics.js';
import { type XmlNode, checkSvg, descendants, lcg, num, onlyByClass } from './xml.js';

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

  it('gives many series distinct colours, each legend swatch its line\'s', () => {
    // With the 8-colour palette cycled, series 8 and 9 were drawn and listed in the colours of 0 and 1.
    const series = Array.from({ length: 12 }, (_, k) => ({ y: [k, k + 1, k + 3], label: `run ${k}` }));
    const root = checkSvg(linePlot({ series }));
    const strokes = descendants(onlyByClass(root, 'lines'), 'path').map((p) => p.attrs.stroke);
    expect(new Set(strokes).size).toBe(12);
    const legendRows = descendants(onlyByClass(root, 'legend'), 'line').map((l) => l.attrs.stroke);
    const legendLabels = descendants(onlyByClass(root, 'legend'), 'text').map((t) => t.text);
    expect(legendRows).toEqual(strokes);
    expect(legendLabels).toEqual(series.map((s) => s.label));
    // Distinct as colours, not just as strings: at least 30 apart in RGB (of 441 between black
    // and white) over the first 16, and no repeats over the first 200.
    const rgb = (c: string) => [1, 3, 5].map((o) => parseInt(c.slice(o, o + 2), 16));
    const colours = Array.from({ length: 200 }, (_, i) => paletteColor(i));
    for (const c of colours) expect(c).toMatch(/^#[0-9A-F]{6}$/);
    expect(new Set(colours).size).toBe(200);
    for (let i = 0; i < 16; i++) {
      for (let j = i + 1; j < 16; j++) {
        const [a, b] = [rgb(colours[i]!), rgb(colours[j]!)];
        expect(Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!), `${colours[i]} vs ${colours[j]}`).toBeGreaterThan(30);
      }
    }
  });

  it('gives a legend swatch its own series\' colour when an earlier series has no label', () => {
    // The unlabelled series has no legend row, so the swatch's row index is not its series index.
    const root = checkSvg(linePlot({ series: [{ y: [1, 2, 3] }, { y: [3, 2, 1], label: 'val' }] }));
    const strokes = descendants(onlyByClass(root, 'lines'), 'path').map((p) => p.attrs.stroke);
    expect(new Set(strokes).size).toBe(2);
    expect(descendants(onlyByClass(root, 'legend'), 'line').map((l) => l.attrs.stroke)).toEqual([strokes[1]]);
  });

  it('stacks legend rows one below the other, 16 px apart, each swatch level with its label', () => {
    const root = checkSvg(linePlot({ series: [{ y: [1, 2, 3], label: 'train' }, { y: [3, 2, 1], label: 'val' }, { y: [2, 2, 2], label: 'test' }] }));
    const legend = onlyByClass(root, 'legend');
    const texts = descendants(legend, 'text');
    expect(texts.map((t) => t.text)).toEqual(['train', 'val', 'test']);
    const ys = texts.map((t) => num(t, 'y'));
    expect([ys[1]! - ys[0]!, ys[2]! - ys[1]!]).toEqual([16, 16]);
    expect(descendants(legend, 'line').map((l) => num(l, 'y1'))).toEqual(ys);
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

  it('cuts a long legend label with an ellipsis instead of crushing the plot (a 120-character label left it 1 px wide)', () => {
    const label = 'a very long series name '.repeat(5);
    const svg = linePlot({ series: [{ y: [1, 2, 3], label }], width: 640 });
    const root = checkSvg(svg);
    expect(num(onlyByClass(root, 'frame'), 'width')).toBeGreaterThan(300);
    expect(svg).toContain('…');
    expect(svg).not.toContain(label.trim());
  });

  it('maxPoints bounds a series with gaps too (each run between gaps was left unthinned)', () => {
    const y = Float64Array.from({ length: 200_000 }, (_, i) => (i % 10 === 9 ? NaN : 1 + Math.sin(i)));
    y[123_456] = 40; // a spike
    const vertices = (maxPoints: number) => subpaths(descendants(onlyByClass(checkSvg(linePlot({ series: [{ y }], maxPoints })), 'lines'), 'path')[0]!.attrs.d!).flat();
    const all = vertices(1_000_000);
    const kept = vertices(2000);
    expect(all).toHaveLength(180_000);
    expect(kept.length).toBeLessThanOrEqual(2002);
    const extremes = (v: Array<[number, number]>) => v.reduce(([lo, hi], p) => [Math.min(lo, p[1]), Math.max(hi, p[1])], [Infinity, -Infinity]);
    expect(extremes(kept)).toEqual(extremes(all));
  });

  it('lists the legend rows that fit and "+ N more" (rows past the canvas were lost)', () => {
    const root = checkSvg(linePlot({ series: Array.from({ length: 30 }, (_, k) => ({ y: [k, k + 1], label: `run ${k}` })) }));
    const legend = onlyByClass(root, 'legend');
    const box = descendants(legend, 'rect')[0]!;
    expect(num(box, 'y') + num(box, 'height')).toBeLessThanOrEqual(400);
    const texts = descendants(legend, 'text').map((t) => t.text);
    // 14 px top margin, 30 px bottom: 356 px of plot, (356 - 8) / 16 = 21 rows.
    expect(texts).toHaveLength(21);
    expect(texts.slice(-2)).toEqual(['run 19', '+ 10 more']);
  });

  it('log axes at the ends of the double range (1e-324 is 0 and threw; 1e309 is Infinity and flattened the line)', () => {
    const low = checkSvg(linePlot({ logY: true, series: [{ y: [1e-3, 1e-323] }] }));
    expect(subpaths(descendants(onlyByClass(low, 'lines'), 'path')[0]!.attrs.d!)[0]).toHaveLength(2);
    const high = checkSvg(linePlot({ logY: true, series: [{ y: [1, 100, 1.5e308] }] }));
    const ys = subpaths(descendants(onlyByClass(high, 'lines'), 'path')[0]!.attrs.d!)[0]!.map((p) => p[1]);
    // Decades 0 … 308 over the plot's height: 100 sits 2/308 of the way up, 1.5e308 at the top.
    expect(ys[0]).toBeGreaterThan(ys[1]!);
    expect(ys[1]).toBeGreaterThan(ys[2]!);
    expect(descendants(onlyByClass(high, 'tick-labels'), 'text').map((t) => t.text)).not.toContain('1eInfinity');
  });

  it('widens the left margin to the y tick labels (fixed at 52/66 px, they ran off the canvas and over the y title)', () => {
    const cases = [
      { y: Array.from({ length: 50 }, (_, i) => 1e9 + i * 0.5) },
      { y: Array.from({ length: 50 }, (_, i) => 12345.6 + 0.01 * Math.sin(i)), yLabel: 'loss' },
    ];
    for (const { y, yLabel } of cases) {
      const root = checkSvg(linePlot({ series: [{ y }], ...(yLabel ? { yLabel } : {}) }));
      const yLabels = descendants(onlyByClass(root, 'tick-labels'), 'text').filter((t) => t.attrs['text-anchor'] === 'end');
      expect(yLabels.length).toBeGreaterThan(2);
      // The rotated title's glyphs reach about 2.5 px right of its x.
      const titleRight = yLabel ? num(onlyByClass(root, 'axis-label'), 'x') + 2.5 : 0;
      for (const t of yLabels) expect(num(t, 'x') - textWidth(t.text, 11)).toBeGreaterThan(titleRight);
      // The last x label (centred on the frame's right edge) stays on the 640 px canvas too.
      const xLabels = descendants(onlyByClass(root, 'tick-labels'), 'text').filter((t) => t.attrs['text-anchor'] === 'middle');
      const last = xLabels[xLabels.length - 1]!;
      expect(num(last, 'x') + textWidth(last.text, 11) / 2).toBeLessThanOrEqual(640);
    }
  });
});

describe('linePlot: single points, leading gaps, thinning and stroke', () => {
  /** The vertices of the k-th line's path, its subpaths merged. */
  const vertices = (root: XmlNode, k = 0) => subpaths(descendants(onlyByClass(root, 'lines'), 'path')[k]!.attrs.d!).flat();

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
