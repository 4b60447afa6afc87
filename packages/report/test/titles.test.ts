// Text widths and titles: the width estimate, how fitTitle sets a title (smaller, on two lines, at
// worst cut with an ellipsis), and — for every chart kind, at its default and at its smallest
// size — that each title line's estimated extent lies inside its figure and above the plot area.

import { describe, expect, it } from 'vitest';
import { linePlot } from '../src/line.js';
import { gridPoints, quiverComparison } from '../src/quiver.js';
import { scatterPlot } from '../src/scatter.js';
import { TITLE_FONT_SIZE, TITLE_MIN_FONT_SIZE, fitTitle, textWidth, truncate } from '../src/textMetrics.js';
import { trajectoryPlot } from '../src/trajectories.js';
import { type XmlNode, byClass, checkSvg, num, onlyByClass } from './xml.js';

// The title that overflowed samples.svg: the CLI names the data set and the sampler.
const SAMPLES_TITLE = 'moons: data and predictor–corrector (reverse diffusion + Langevin) samples';
const ENDLESS_TITLE = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
const ONE_WORD = 'W'.repeat(80);

describe('textWidth', () => {
  it('adds per-character advance widths, bold wider than regular, an em for characters outside ASCII', () => {
    expect(textWidth('', 15)).toBe(0);
    expect(textWidth('m', 10, 'bold')).toBeCloseTo(10.42, 10);
    expect(textWidth('m', 10)).toBeCloseTo(9.74, 10);
    expect(textWidth('data', 11)).toBeCloseTo((635 + 613 + 392 + 613) * 0.011, 10);
    expect(textWidth('σ∇', 12)).toBe(24);
    expect(textWidth('mm', 15, 'bold')).toBeCloseTo(2 * textWidth('m', 15, 'bold'), 10);
    // Wide letters cost more than narrow ones: the estimate is not a flat width per character.
    expect(textWidth('WWW', 12)).toBeGreaterThan(2.5 * textWidth('iii', 12));
  });
});

describe('fitTitle', () => {
  it('keeps a title that fits on one line at the full size', () => {
    expect(fitTitle('  training   loss (dsm) ', 500)).toEqual({ lines: ['training loss (dsm)'], fontSize: TITLE_FONT_SIZE });
  });

  it('shrinks a slightly long title a little before breaking it', () => {
    const title = 'score field (model at σ = 0.01)';
    const room = textWidth(title, 14, 'bold') + 0.5; // too wide at 15 px, fits at 14
    expect(fitTitle(title, room)).toEqual({ lines: [title], fontSize: 14 });
  });

  it('breaks a long title into two balanced lines at the full size when they fit', () => {
    const room = 520 - 24; // samples.svg's width less the title's side padding
    expect(textWidth(SAMPLES_TITLE, TITLE_FONT_SIZE - 2, 'bold')).toBeGreaterThan(room);
    const fitted = fitTitle(SAMPLES_TITLE, room);
    expect(fitted.fontSize).toBe(TITLE_FONT_SIZE);
    expect(fitted.lines).toEqual(['moons: data and predictor–corrector', '(reverse diffusion + Langevin) samples']);
    for (const line of fitted.lines) expect(textWidth(line, fitted.fontSize, 'bold')).toBeLessThanOrEqual(room);
  });

  it('shrinks two lines down to the smallest size, then cuts the second with an ellipsis', () => {
    // The balanced break does not depend on the size (widths scale with it): room for it at 12 px.
    const lines = ['moons: data and predictor–corrector', '(reverse diffusion + Langevin) samples'];
    const room = Math.max(...lines.map((l) => textWidth(l, 12, 'bold'))) + 0.5;
    expect(fitTitle(SAMPLES_TITLE, room)).toEqual({ lines, fontSize: 12 });
    const cut = fitTitle(ENDLESS_TITLE, 200);
    expect(cut.fontSize).toBe(TITLE_MIN_FONT_SIZE);
    expect(cut.lines).toHaveLength(2);
    expect(cut.lines[1]!.endsWith('…')).toBe(true);
    expect(ENDLESS_TITLE.startsWith(`${cut.lines.join(' ').slice(0, -1)}`)).toBe(true);
    for (const line of cut.lines) expect(textWidth(line, TITLE_MIN_FONT_SIZE, 'bold')).toBeLessThanOrEqual(200);
    // A word wider than the room is cut on one line.
    const word = fitTitle(ONE_WORD, 200);
    expect(word.lines).toHaveLength(1);
    expect(word.lines[0]).toMatch(/^W+…$/);
    expect(textWidth(word.lines[0]!, TITLE_MIN_FONT_SIZE, 'bold')).toBeLessThanOrEqual(200);
  });
});

// ------------------------------------------------------------------------------------------------

const XML_TEXT: Readonly<Record<string, string>> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
const decode = (s: string) => s.replace(/&(?:amp|lt|gt|quot|#39);/g, (e) => XML_TEXT[e]!);

interface DrawnTitle {
  readonly lines: string[];
  readonly fontSize: number;
  readonly x: number;
  /** The last baseline plus the descent the layout reserves (0.2 em). */
  readonly bottom: number;
}

function drawnTitle(node: XmlNode): DrawnTitle {
  const fontSize = num(node, 'font-size');
  const spans = node.children.filter((c) => c.name === 'tspan');
  const lines = spans.length > 0 ? spans.map((s) => decode(s.text)) : [decode(node.text)];
  const baselines = spans.length > 0 ? spans.map((s) => num(s, 'y')) : [num(node, 'y')];
  for (const s of spans) expect(num(s, 'x')).toBe(num(node, 'x'));
  return { lines, fontSize, x: num(node, 'x'), bottom: Math.max(...baselines) + 0.2 * fontSize };
}

/** Checks one title drawn over a region `width` px wide whose plot area starts `frameTop` px down. */
function expectTitleFits(title: DrawnTitle, wanted: string, width: number, frameTop: number): void {
  expect(title.lines.length).toBeGreaterThanOrEqual(1);
  expect(title.lines.length).toBeLessThanOrEqual(2);
  expect(title.fontSize).toBeGreaterThanOrEqual(TITLE_MIN_FONT_SIZE);
  expect(title.fontSize).toBeLessThanOrEqual(TITLE_FONT_SIZE);
  expect(title.x).toBe(width / 2);
  for (const line of title.lines) {
    const half = textWidth(line, title.fontSize, 'bold') / 2;
    expect(title.x - half, `"${line}" starts inside the figure`).toBeGreaterThanOrEqual(0);
    expect(title.x + half, `"${line}" ends inside the figure`).toBeLessThanOrEqual(width);
  }
  const shown = title.lines.join(' ');
  if (shown.endsWith('…')) expect(wanted.startsWith(shown.slice(0, -1).trimEnd())).toBe(true);
  else expect(shown).toBe(wanted);
  expect(title.bottom).toBeLessThanOrEqual(frameTop);
}

const points: [number, number][] = [[0, 0], [1, 2], [2, 1], [-1, 0.5]];
const grid = gridPoints([-2, 2], [-1, 1], 5, 3);
const field = { x: grid.x, y: grid.y, u: grid.x.map((x) => -x), v: grid.y.map((y) => -y) };

/** Every single-panel chart kind, drawn with a title at a size (undefined: its default). */
const singlePanel: Record<string, (title: string, size?: { width: number; height: number }) => string> = {
  scatterPlot: (title, size) => scatterPlot({ title, series: [{ points, label: 'data' }], ...size }),
  linePlot: (title, size) => linePlot({ title, series: [{ y: [3, 2, 1], label: 'loss' }], xLabel: 'step', ...size }),
  trajectoryPlot: (title, size) => trajectoryPlot({ title, paths: [points], background: points, backgroundLabel: 'data', ...size }),
};

describe('titles in every chart', () => {
  const titles = ['loss', SAMPLES_TITLE, ENDLESS_TITLE, ONE_WORD];

  for (const [kind, draw] of Object.entries(singlePanel)) {
    it(`${kind}: every title line lies inside the figure, above the plot area`, () => {
      for (const size of [undefined, { width: 100, height: 80 }, { width: 300, height: 200 }]) {
        for (const title of titles) {
          const root = checkSvg(draw(title, size));
          const width = num(root, 'width');
          expectTitleFits(drawnTitle(onlyByClass(root, 'title')), title, width, num(onlyByClass(root, 'frame'), 'y'));
          // The accessible name keeps the whole title, however it was drawn.
          expect(root.children.find((c) => c.name === 'title')?.text).toBe(title);
        }
      }
    });
  }

  it('quiverComparison: the overall title and both panel titles fit', () => {
    for (const size of [undefined, { width: 200, height: 80 }, { width: 600, height: 320 }]) {
      for (const title of titles) {
        const root = checkSvg(quiverComparison({ title, labels: [title, 'true score ∇log p'], learned: field, truth: field, ...size }));
        const width = num(root, 'width');
        const panels = byClass(root, 'panel');
        const offsets = panels.map((p) => /^translate\(([\d.]+) ([\d.]+)\)$/.exec(p.attrs.transform ?? '')!.slice(1).map(Number) as [number, number]);
        expect(offsets.map((o) => o[0])).toEqual([0, width / 2]);
        const overall = root.children.find((c) => c.name === 'text' && c.attrs.class === 'title')!;
        expectTitleFits(drawnTitle(overall), title, width, offsets[0]![1]);
        panels.forEach((panel, k) => {
          expectTitleFits(drawnTitle(onlyByClass(panel, 'title')), k === 0 ? title : 'true score ∇log p', width / 2, num(onlyByClass(panel, 'frame'), 'y'));
        });
      }
    }
  });

  it('a short title keeps its one line at the full size and place', () => {
    const root = checkSvg(scatterPlot({ title: 'data vs samples', series: [{ points }] }));
    const title = onlyByClass(root, 'title');
    expect([title.attrs.y, title.attrs['font-size'], title.children.length]).toEqual(['22', '15', 0]);
    expect(num(onlyByClass(root, 'frame'), 'y')).toBe(36);
  });
});

describe('widths, breaks and cuts at their edges', () => {
  it('measures the last printable ASCII character from the table, not as a full em', () => {
    // '~' is 838/1000 em in both weights.
    expect(textWidth('~', 10)).toBeCloseTo(8.38, 10);
    expect(textWidth('~', 10, 'bold')).toBeCloseTo(8.38, 10);
    expect(textWidth(' ', 10)).toBeCloseTo(3.18, 10);
  });

  it('keeps a title on one line down to 13 px before breaking it', () => {
    const title = 'score field (model at σ = 0.01)';
    const room = textWidth(title, 13, 'bold') + 0.5; // too wide at 14 px, fits at 13
    expect(fitTitle(title, room)).toEqual({ lines: [title], fontSize: 13 });
  });

  it('breaks at the first of two equally balanced spaces', () => {
    // 'data' | 'vs data' and 'data vs' | 'data' have the same longer line (the same characters):
    // the earlier break wins, so a title is always set the same way.
    const room = textWidth('data vs', 15, 'bold') + 0.5; // the whole title is too wide even at 13 px
    expect(fitTitle('data vs data', room)).toEqual({ lines: ['data', 'vs data'], fontSize: 15 });
  });

  it('cuts text before a space without leaving the space before the ellipsis', () => {
    // Room for 'abc …' but not for 'abc d…' (d is wider than a space): the cut falls at the space.
    expect(truncate('abc def ghi', 11, textWidth('abc …', 11, 'bold'))).toBe('abc…');
  });

  it('draws nothing for a title of only spaces, and keeps the untitled layout', () => {
    const charts = [...Object.values(singlePanel), (title: string) => quiverComparison({ title, learned: field, truth: field })];
    for (const chart of charts) {
      // The same document as with no title: no title line drawn, no room kept for one, no <title>.
      expect(checkSvg(chart('   ')).children.filter((c) => c.name === 'title')).toHaveLength(0);
      expect(chart('   ')).toBe(chart(''));
    }
  });
});
