// The SVG builder and its numbers: escaping, element construction, scales, nice ticks and tick
// labels — and the strict XML reader the other tests rely on.

import { describe, expect, it } from 'vitest';
import { scatterPlot } from '../src/scatter.js';
import {
  chartTitle, el, escapeXml, formatNumber, formatTicks, legend, legendWidth, linearScale, logScale, niceAxis, niceLogAxis, niceStep, niceTicks, padExtent,
  plotArea, text, tickLabels,
} from '../src/svg.js';
import { textWidth } from '../src/textMetrics.js';
import { checkSvg, descendants, lcg, NASTY, NASTY_ESCAPED, num, onlyByClass, parseXml } from './xml.js';

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

  it('label ticks of a narrow range far from zero with distinct, faithful labels', () => {
    // A loss settled near ln 2, a step counter past 1e9, a value near 1 that moves in the 9th
    // digit: the ticks are distinct numbers, so their labels must be too, and each label must read
    // back as its tick to within a tenth of the tick spacing.
    for (const [lo, hi] of [[0.693147, 0.6931472], [1e9, 1e9 + 10], [1, 1 + 1e-8], [123456, 123456.0001], [-5e6 - 1e-3, -5e6]] as const) {
      const { ticks } = niceAxis(lo, hi);
      const labels = formatTicks(ticks);
      expect(new Set(labels).size, `${labels}`).toBe(ticks.length);
      const spacing = ticks[1]! - ticks[0]!;
      ticks.forEach((t, i) => expect(Math.abs(Number(labels[i]) - t), `${labels[i]} for ${t}`).toBeLessThanOrEqual(spacing / 10));
    }
    expect(formatTicks(niceAxis(1e9, 1e9 + 10).ticks)).toEqual(['1e9', '1.000000002e9', '1.000000004e9', '1.000000006e9', '1.000000008e9', '1.00000001e9']);
  });
});

describe('extreme extents', () => {
  it('an extent too narrow for its magnitude to tick is drawn as a flat one (listing its ticks never ended)', () => {
    // 0.3 and 0.1 + 0.2 differ by one rounding: the step of 1e-17 put tick indices past 2^53,
    // where i++ no longer moves, and the tick list grew until V8 ran out of memory.
    for (const [lo, hi] of [[0.3, 0.1 + 0.2], [1e17, 1e17 + 16], [2 ** 60, 2 ** 60 + 512]]) {
      const axis = niceAxis(lo!, hi!);
      expect(axis.ticks.length).toBeGreaterThan(1);
      expect(axis.ticks.length).toBeLessThanOrEqual(20);
      expect(axis.domain[0]).toBeLessThanOrEqual(Math.min(lo!, hi!));
      expect(axis.domain[1]).toBeGreaterThanOrEqual(Math.max(lo!, hi!));
      expect(niceTicks(lo!, hi!).length).toBeLessThanOrEqual(5);
    }
    // A chart as wide as asked never asks for more than 100 intervals.
    expect(niceAxis(0, 1, 1e9).ticks.length).toBeLessThanOrEqual(101);
    expect(niceTicks(0, 1, 1e9).length).toBeLessThanOrEqual(101);
  });

  it('extents near the largest double stay finite: domain, ticks, positions', () => {
    const wide = niceAxis(-1e308, 1e308);
    expect(wide.ticks.every(Number.isFinite) && wide.domain.every(Number.isFinite)).toBe(true);
    const upper = niceAxis(0, 1.7e308);
    expect(upper.ticks.every(Number.isFinite)).toBe(true);
    expect(upper.domain).toEqual([0, Number.MAX_VALUE]);
    const scale = linearScale([-1e308, 1e308], [0, 100]);
    expect([scale.map(-1e308), scale.map(0), scale.map(1e308)]).toEqual([0, 50, 100]);
    // A value far outside the domain is placed 1e7 pixels out, not at Infinity or at 1e40.
    expect(linearScale([0, 1], [0, 100]).map(1e306)).toBe(100 + 1e7);
    expect(formatNumber(1e306)).toBe('1e+306');
    // Subnormal decades on a log axis: 1e-310 was written as 0 and the log scale then refused it.
    expect(niceLogAxis(1e-310, 1).domain[0]).toBe(1e-310);
  });
});

describe('numbers and ticks at their edges', () => {
  it('writes a coordinate near the largest double as itself, not as Infinity', () => {
    // value · 100 overflows to Infinity above ~1.8e306; beyond 2^53 there is no fraction to round.
    expect(formatNumber(1.7e308)).toBe('1.7e+308');
    expect(formatNumber(-1.7e308)).toBe('-1.7e+308');
  });

  it('niceTicks takes its ends in either order', () => {
    expect(niceTicks(1, 0, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('niceTicks keeps a tick whose end is a multiple of the step but for one rounding', () => {
    // (0.1 + 0.2) / 0.1 is 3.0000000000000004: the end 0.30000000000000004 is the tick 0.3.
    expect(niceTicks(0.1 + 0.2, 0.8, 5)).toEqual([0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
  });

  it('niceAxis ends at -MAX_VALUE when the enclosing multiple below overflows', () => {
    const axis = niceAxis(-1.7e308, 0);
    expect(axis.domain).toEqual([-Number.MAX_VALUE, 0]);
    expect(axis.ticks.every(Number.isFinite)).toBe(true);
  });

  it('niceLogAxis widens a flat extent at the top decade downward, staying finite', () => {
    const axis = niceLogAxis(1e308, 1e308);
    expect(axis.domain).toEqual([1e307, 1e308]);
    expect(axis.ticks).toEqual([1e307, 1e308]);
  });

  it('niceLogAxis thins its ticks to at most maxTicks', () => {
    // Ten decades, at most 8 ticks by default: every second decade.
    expect(niceLogAxis(1, 1e9).ticks).toEqual([1, 100, 1e4, 1e6, 1e8]);
    expect(niceLogAxis(1, 1e9, 8).ticks.length).toBeLessThanOrEqual(8);
  });

  it('formatTicks switches to exponent form at a magnitude of exactly 1e6', () => {
    expect(formatTicks([0, 5e5, 1e6])).toEqual(['0', '5e5', '1e6']);
  });

  it('formatTicks gives one decimal to a spacing of 0.1 that subtraction left a hair short', () => {
    // 1.2 - 1.1 is 0.09999999999999987: -log10 of it is a hair above 1, still one decimal.
    expect(formatTicks([1, 1.1, 1.2, 1.3])).toEqual(['1.0', '1.1', '1.2', '1.3']);
  });

  it('labels log ticks plainly from 0.001 to 10000 and by exponent beyond', () => {
    expect(tickLabels('log', [1e-4, 0.001, 1, 1e4, 1e5])).toEqual(['1e-4', '0.001', '1', '10000', '1e5']);
  });

  it('padExtent widens by the fraction of the width on each side', () => {
    expect(padExtent([0, 10])).toEqual([-0.5, 10.5]);
    expect(padExtent([-2, 2], 0.25)).toEqual([-3, 3]);
  });

  it('plotArea never goes below 1 px, however large the margins', () => {
    expect(plotArea(100, 80, { top: 50, right: 60, bottom: 50, left: 60 })).toEqual({ left: 60, top: 50, width: 1, height: 1 });
  });
});

describe('titles, footnotes and legends', () => {
  const LONG = 'score matching on moons: predictor corrector samples after training for many steps';

  it('sets a two-line title 1.2 font sizes apart, the first baseline 7 px + one size down', () => {
    const root = parseXml(chartTitle(LONG, 300).markup);
    const size = num(root, 'font-size');
    const ys = descendants(root, 'tspan').map((t) => num(t, 'y'));
    expect(ys).toHaveLength(2);
    // Each y is written to 0.01 px (rounding error at most 0.005 each, 0.01 in a difference).
    expect(Math.abs(ys[0]! - (7 + size))).toBeLessThanOrEqual(0.005);
    expect(Math.abs(ys[1]! - ys[0]! - 1.2 * size)).toBeLessThanOrEqual(0.01);
  });

  it('keeps a title 12 px clear of each side', () => {
    const title = 'training loss (denoising score matching)';
    // Fits 15 px bold with 18 px to spare in all, but not with 12 px kept clear on each side.
    const width = textWidth(title, 15, 'bold') + 18;
    const root = parseXml(chartTitle(title, width).markup);
    const size = num(root, 'font-size');
    expect(size).toBeLessThan(15);
    expect(textWidth(title, size, 'bold')).toBeLessThanOrEqual(width - 24);
  });

  it('draws the footnote on the canvas, below the plot area', () => {
    const height = 300;
    const root = checkSvg(scatterPlot({ series: [{ points: [[0, 0], [1, 1], [NaN, 2]] }], height }));
    const note = onlyByClass(root, 'note');
    const frame = onlyByClass(root, 'frame');
    expect(note.text).toBe('1 non-finite point not drawn');
    expect(num(note, 'y')).toBeLessThanOrEqual(height);
    expect(num(note, 'y')).toBeGreaterThan(num(frame, 'y') + num(frame, 'height'));
  });

  it('labels an explicit domain end that is a tick but for one rounding', () => {
    // xDomain starts at 0.1 + 0.2 = 0.30000000000000004; its tick 0.3 lies 1 ulp outside and is drawn.
    const root = checkSvg(scatterPlot({ series: [{ points: [[0.5, 0.5]] }], xDomain: [0.1 + 0.2, 0.8], yDomain: [0, 1], width: 400 }));
    const labels = descendants(onlyByClass(root, 'tick-labels'), 'text').filter((t) => t.attrs['text-anchor'] === 'middle').map((t) => t.text);
    expect(labels).toEqual(['0.3', '0.4', '0.5', '0.6', '0.7', '0.8']);
  });

  const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ label: `series ${i}`, color: '#000000', marker: 'point' as const }));

  it('shows every row of a legend that exactly fills its room, with no "+ N more"', () => {
    // 3 rows of 16 px plus 8 px of padding: 56 px.
    const root = parseXml(legend(entries(3), 0, 0, 56));
    expect(descendants(root, 'text').map((t) => t.text)).toEqual(['series 0', 'series 1', 'series 2']);
  });

  it('fits a cut legend\'s "+ N more" row inside its box', () => {
    const root = parseXml(legend(entries(5), 0, 0, 56));
    const box = descendants(root, 'rect')[0]!;
    const more = onlyByClass(root, 'legend-more');
    expect(more.text).toBe('+ 3 more');
    expect(num(box, 'height')).toBe(56);
    expect(num(more, 'y')).toBeLessThan(num(box, 'y') + num(box, 'height'));
  });

  it('reserves only the width of a cut legend label', () => {
    // 18 px swatch + 14 px of spacing + a label cut to 180 px at most.
    expect(legendWidth([{ label: 'a very long series name '.repeat(5), color: '#000000', marker: 'line' }])).toBeLessThanOrEqual(18 + 14 + 180);
  });
});
