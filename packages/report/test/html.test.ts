// The HTML report: escaped text, verbatim SVGs, tables, and a self-contained, deterministic page.

import { describe, expect, it } from 'vitest';
import { scatterPlot } from '../src/scatter.js';
import { linePlot } from '../src/line.js';
import { formatCell, htmlReport } from '../src/html.js';
import { descendants, NASTY, NASTY_ESCAPED, parseXml } from './xml.js';

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

  it('escapes a table\'s caption and column headings', () => {
    const html = htmlReport({ title: 'r', sections: [{ heading: 'm', table: { columns: [`metric ${NASTY}`, 'value'], rows: [['a', 1]], caption: `final ${NASTY}` } }] });
    expect(html).not.toContain(NASTY);
    parseXml(html, { html: true });
    expect(html).toContain(`<caption>final ${NASTY_ESCAPED}</caption>`);
    expect(html).toContain(`<th>metric ${NASTY_ESCAPED}</th>`);
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

describe('htmlReport and formatCell at their edges', () => {
  const svg = scatterPlot({ series: [{ points: [[0, 0], [1, 1]] }] });

  it('formatCell writes integers from 1e15 up to 5 significant digits, like other numbers', () => {
    expect(formatCell(999_999_999_999_999)).toBe('999999999999999');
    expect(formatCell(1_234_567_890_123_456)).toBe('1234600000000000');
    expect(formatCell(-(2 ** 53))).toBe('-9007200000000000');
  });

  it('writes no empty paragraph for leading, trailing or repeated blank lines', () => {
    const root = parseXml(htmlReport({ title: 'r', intro: '\n\n  \nfirst\n\n\n\nsecond\n\n', sections: [{ heading: 'h', text: '\n\nonly\n \n' }] }), { html: true });
    expect(descendants(root, 'p').map((p) => p.text)).toEqual(['first', 'second', 'only']);
  });

  it('refuses an SVG followed by anything else', () => {
    expect(() => htmlReport({ title: 'r', sections: [{ heading: 'h', svg: `${svg}<script>alert(1)</script>` }] })).toThrow(/svg must be an SVG document string/);
  });

  it('leaves the columns of a table without rows left-aligned', () => {
    const html = htmlReport({ title: 'r', sections: [{ heading: 'h', table: { columns: ['metric', 'value'], rows: [] } }] });
    expect(html).toContain('<thead><tr><th>metric</th><th>value</th></tr></thead>');
    expect(html).not.toContain('class="num"');
  });

  it('adds a table of contents from three sections, not for two', () => {
    const page = (n: number) => parseXml(htmlReport({ title: 'r', sections: Array.from({ length: n }, (_, i) => ({ heading: `s${i}` })) }), { html: true });
    expect(descendants(page(2), 'nav')).toHaveLength(0);
    expect(descendants(page(3), 'nav')).toHaveLength(1);
  });

  it('refuses an svg array with a non-string entry, naming the option', () => {
    expect(() => htmlReport({ title: 'r', sections: [{ heading: 'h', svg: [svg, 5 as never] }] })).toThrow(
      /^htmlReport: sections\[0\]\.svg must be an SVG document string or an array of them, got \[/,
    );
  });
});
