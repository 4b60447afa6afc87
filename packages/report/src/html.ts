// A single self-contained HTML report: headed sections holding inline SVG charts (from the chart
// modules), tables and text. Everything — styles included — is in the one string, with no scripts, fonts or
// external links, so the file opens offline and can be archived next to a run's other outputs.
// All text is escaped; SVGs are embedded verbatim after a check that they are SVG documents.

// HTML text needs exactly the XML escapes (and the same characters dropped), so it uses svg.ts's.
import { checkOptions, checkString, showValue } from '@scorch/options';
import { checkEntries, checkOptionsArgument, describeArgument } from './chart.js';
import { escapeXml } from './svg.js';

export type TableCell = string | number | boolean | null | undefined;

export interface ReportTable {
  /** Column headings. */
  readonly columns: readonly string[];
  /** One array per row, as long as `columns`; cells as `formatCell` writes them. */
  readonly rows: ReadonlyArray<ReadonlyArray<TableCell>>;
  /** Shown above the table; default none. */
  readonly caption?: string;
}

export interface ReportSection {
  /** The section's <h2>, and its entry in the table of contents. */
  readonly heading: string;
  /** Paragraphs separated by blank lines; single line breaks are kept. */
  readonly text?: string;
  /** One SVG document or several (e.g. from scatterPlot, linePlot), shown in order. Trusted markup. */
  readonly svg?: string | readonly string[];
  readonly table?: ReportTable;
}

export interface HtmlReportOptions {
  /** The page's <title> and <h1>. */
  readonly title: string;
  /** Text under the title, before the sections. */
  readonly intro?: string;
  /** The sections, in order. */
  readonly sections: readonly ReportSection[];
  /**
   * Shown in the footer (a Date is written in ISO 8601 UTC). Left out by default, so the same
   * inputs give byte-identical reports.
   */
  readonly generatedAt?: Date | string;
}

const STYLE = `
body { font: 15px/1.5 system-ui, -apple-system, Helvetica, Arial, sans-serif; color: #222; max-width: 1040px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.3rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.2rem; }
p { white-space: pre-line; }
nav ol { padding-left: 1.4rem; }
figure { margin: 1rem 0; }
figure svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.8rem 0; }
caption { text-align: left; color: #555; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 0.25rem 0.7rem; text-align: left; vertical-align: top; }
th { border-bottom: 2px solid #bbb; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { margin-top: 3rem; color: #777; font-size: 0.8rem; }
`.trim();

/**
 * A table cell's text: integers below 1e15 in magnitude as they are, other numbers (larger
 * integers too, whose low digits a double may not hold) to 5 significant digits, non-finite numbers
 * as NaN/∞/−∞, null/undefined as an em dash.
 */
export function formatCell(value: TableCell): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (!Number.isFinite(value)) return value > 0 ? '∞' : '−∞';
    if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
    return String(Number(value.toPrecision(5)));
  }
  return String(value);
}

function paragraphs(body: string): string {
  return body
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((p) => `<p>${escapeXml(p)}</p>`)
    .join('\n');
}

const SVG_DOCUMENT = /^(?:<\?xml[^>]*\?>\s*)?(?:<!DOCTYPE[^>]*>\s*)?(<svg\b[\s\S]*<\/svg>)$/i;

/** The `<svg>…</svg>` element of an SVG document string (prolog dropped: it is invalid inside HTML). */
function inlineSvg(where: string, svg: string): string {
  const match = SVG_DOCUMENT.exec(svg.trim());
  if (!match) throw new Error(`${where}: svg must be an SVG document string (<svg …>…</svg>)`);
  return match[1]!;
}

function renderTable(where: string, table: ReportTable): string {
  const width = table.columns.length;
  table.rows.forEach((row, r) => {
    if (row.length !== width) throw new RangeError(`${where}: table row ${r} has ${row.length} cells, expected ${width}`);
  });
  // A column whose cells are all numbers (or empty) is right-aligned, so digits line up.
  const numeric = table.columns.map((_, c) => table.rows.length > 0 && table.rows.every((row) => row[c] === null || row[c] === undefined || typeof row[c] === 'number'));
  const cls = (c: number) => (numeric[c] ? ' class="num"' : '');
  const head = table.columns.map((name, c) => `<th${cls(c)}>${escapeXml(name)}</th>`).join('');
  const body = table.rows.map((row) => `<tr>${row.map((cell, c) => `<td${cls(c)}>${escapeXml(formatCell(cell))}</td>`).join('')}</tr>`).join('\n');
  const caption = table.caption ? `<caption>${escapeXml(table.caption)}</caption>` : '';
  return `<table>${caption}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function renderSection(section: ReportSection, index: number): string {
  const where = `htmlReport: section ${index} (${JSON.stringify(section.heading)})`;
  const parts = [`<h2 id="section-${index + 1}">${escapeXml(section.heading)}</h2>`];
  if (section.text) parts.push(paragraphs(section.text));
  const svgs = section.svg === undefined ? [] : typeof section.svg === 'string' ? [section.svg] : section.svg;
  for (const svg of svgs) parts.push(`<figure>${inlineSvg(where, svg)}</figure>`);
  if (section.table) parts.push(renderTable(where, section.table));
  return `<section>\n${parts.join('\n')}\n</section>`;
}

/** A section's keys and their types (its heading was checked with the other required entries). */
function checkSection(where: string, name: string, section: ReportSection): void {
  checkOptions(`${where}: ${name}`, section, ['heading', 'text', 'svg', 'table']);
  checkString(where, `${name}.text`, section.text);
  const svg: unknown = section.svg;
  if (svg !== undefined && typeof svg !== 'string' && !(Array.isArray(svg) && svg.every((s) => typeof s === 'string'))) {
    throw new TypeError(`${where}: ${name}.svg must be an SVG document string or an array of them, got ${showValue(svg)}`);
  }
  if (section.table !== undefined) checkTable(where, `${name}.table`, section.table);
}

/** A table's columns (strings), rows (arrays of cells) and caption; the row lengths are renderTable's to check. */
function checkTable(where: string, name: string, table: unknown): void {
  if (table === null || typeof table !== 'object' || Array.isArray(table)) throw new TypeError(`${where}: ${name} must be a table { columns, rows, caption? }, got ${describeArgument(table)}`);
  const { columns, rows, caption } = table as Record<string, unknown>;
  if (!Array.isArray(columns)) throw new TypeError(`${where}: ${name}.columns must be an array of column headings, got ${showValue(columns)}`);
  columns.forEach((c, k) => checkString(where, `${name}.columns[${k}]`, c, { required: true }));
  if (!Array.isArray(rows)) throw new TypeError(`${where}: ${name}.rows must be an array of rows (arrays of cells), got ${showValue(rows)}`);
  rows.forEach((row: unknown, r) => {
    if (!Array.isArray(row)) throw new TypeError(`${where}: ${name}.rows[${r}] must be an array of cells, got ${showValue(row)}`);
    row.forEach((cell: unknown, c) => {
      if (cell !== null && cell !== undefined && typeof cell !== 'string' && typeof cell !== 'number' && typeof cell !== 'boolean') {
        throw new TypeError(`${where}: ${name}.rows[${r}][${c}] must be a string, number, boolean, null or undefined, got ${showValue(cell)}`);
      }
    });
  });
  checkOptions(`${where}: ${name}`, table, ['columns', 'rows', 'caption']);
  checkString(where, `${name}.caption`, caption);
}

/**
 * The report as one HTML document string. Sections appear in order, each with an anchor
 * (`#section-1`, …); with three or more sections a table of contents follows the title. The
 * options, each section and each table are checked as every scorch function's are: an unknown
 * key (with the closest valid name), a null, a value of the wrong type throws.
 */
export function htmlReport(opts: HtmlReportOptions): string {
  const where = 'htmlReport';
  checkOptionsArgument(where, opts, '{ title, sections, intro?, generatedAt? }');
  checkString(where, 'title', opts.title, { required: true });
  checkEntries(where, 'sections', opts.sections, 'a section { heading, text?, svg?, table? }');
  opts.sections.forEach((s, i) => checkString(where, `sections[${i}].heading`, s.heading, { required: true }));
  checkOptions(where, opts, ['title', 'intro', 'sections', 'generatedAt']);
  checkString(where, 'intro', opts.intro);
  const generatedAt: unknown = opts.generatedAt;
  if (generatedAt !== undefined && typeof generatedAt !== 'string' && !(generatedAt instanceof Date && Number.isFinite(generatedAt.getTime()))) {
    throw new TypeError(`${where}: generatedAt must be a valid Date or a string, got ${generatedAt instanceof Date ? 'an invalid Date' : showValue(generatedAt)}`);
  }
  opts.sections.forEach((s, i) => checkSection(where, `sections[${i}]`, s));
  const sections = opts.sections.map(renderSection);
  const contents = opts.sections.length >= 3
    ? `<nav><ol>${opts.sections.map((s, i) => `<li><a href="#section-${i + 1}">${escapeXml(s.heading)}</a></li>`).join('')}</ol></nav>`
    : '';
  const generated = opts.generatedAt === undefined
    ? ''
    : `<footer>Generated ${escapeXml(opts.generatedAt instanceof Date ? opts.generatedAt.toISOString() : opts.generatedAt)}</footer>`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeXml(opts.title)}</title>`,
    `<style>\n${STYLE}\n</style>`,
    '</head>',
    '<body>',
    `<h1>${escapeXml(opts.title)}</h1>`,
    ...(opts.intro ? [paragraphs(opts.intro)] : []),
    ...(contents ? [contents] : []),
    ...sections,
    ...(generated ? [generated] : []),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
