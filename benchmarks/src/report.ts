// Tables from a results object: one per case for the terminal and benchmarks/README.md (figure,
// min–max, speed relative to scorch, the value check, scorch WebGPU's dispatches per step), W4's
// growth exponents, and a compact matrix (cases × engines) for the repository's README and
// `scorch bench`. Every engine has its row or column; one that was not timed says why.

import { ENGINES, type EngineId } from './engines.js';
import type { CaseResult, EngineRecord, Row, SuiteResults } from './results.js';
import { WORKLOADS } from './workloads.js';
import { simdPeakLine } from './simdPeak.js';

type Align = 'left' | 'right';

interface Table {
  header: string[];
  align: Align[];
  rows: string[][];
}

/** A plain-text table: columns padded to their widest cell, two spaces apart. */
export function renderText(table: Table, indent = '  '): string[] {
  const all = [table.header, ...table.rows];
  const widths = table.header.map((_, c) => Math.max(...all.map((r) => [...(r[c] ?? '')].length)));
  const pad = (cell: string, c: number) => {
    const gap = ' '.repeat(widths[c]! - [...cell].length);
    return table.align[c] === 'right' ? gap + cell : cell + gap;
  };
  return all.map((r) => indent + r.map((cell, c) => pad(cell, c)).join('  ').trimEnd());
}

const escapeCell = (cell: string) => cell.replace(/\|/g, '\\|');

/** A GitHub-flavoured Markdown table. */
export function renderMarkdown(table: Table): string[] {
  return [
    `| ${table.header.map(escapeCell).join(' | ')} |`,
    `| ${table.align.map((a) => (a === 'right' ? '---:' : '---')).join(' | ')} |`,
    ...table.rows.map((r) => `| ${r.map(escapeCell).join(' | ')} |`),
  ];
}

/** Three significant digits, thousands grouped: 12,345 · 123 · 12.3 · 1.23 · 0.0123. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1000) return String(v);
  // The magnitude after rounding to three digits picks the format: 99.96 is '100', not '100.0'.
  const a = Math.abs(Number(v.toPrecision(3)));
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

const formatRatio = (v: number | undefined) => (v === undefined ? '' : `${formatNumber(v)}×`);

function notTimed(row: Row): string {
  const what = row.status === 'unavailable' ? 'not run' : row.status;
  return `${what}: ${row.reason ?? ''}`.trim();
}

/** The header line of a case's table. */
export function caseTitle(c: CaseResult): string {
  const info = WORKLOADS[c.spec.workload];
  return `${info.code} ${info.title}, ${c.spec.size} — ${info.unit}, ${info.higherIsBetter ? 'higher' : 'lower'} is better; load ${c.loadAverage.toFixed(2)}`;
}

/** One case's table: every engine's figure, spread, speed relative to scorch and value check. */
export function caseTable(results: SuiteResults, c: CaseResult): Table {
  const info = WORKLOADS[c.spec.workload];
    const header = ['engine', info.unit, 'range', 'vs scorch CPU', 'vs scorch WebGPU', 'check', 'notes'];
  const rows = c.rows.map((row) => {
    const label = labelOf(results, row.engine);
    // The reason goes last, where its length widens no other column.
    if (row.figure === undefined) return [label, '—', '', '', '', checkText(row), notTimed(row)];
    const low = Math.min(row.figureWorst!, row.figureBest!);
    const high = Math.max(row.figureWorst!, row.figureBest!);
    const perStep = row.counters ? `per ${c.spec.workload === 'langevin' ? `${c.spec.stepsPerRep} sampler steps` : 'step'}: ${Object.entries(row.counters).map(([k, v]) => `${formatNumber(v)} ${k}`).join(', ')}` : '';
    return [label, formatNumber(row.figure), `${formatNumber(low)}–${formatNumber(high)}`, formatRatio(row.vsScorchCpu), formatRatio(row.vsScorchWebgpu), checkText(row), perStep];
  });
  return { header, align: ['left', 'right', 'right', 'right', 'right', 'left', 'left'], rows };
}

function checkText(row: Row): string {
  if (!row.check) return '';
  const { error } = row.check;
  return `${row.check.ok ? 'ok' : 'MISMATCH'} ${error === null ? 'not finite' : error.toExponential(1)}`;
}

function labelOf(results: SuiteResults, id: EngineId): string {
  return results.engines.find((e) => e.id === id)?.label ?? ENGINES[id].label;
}

/**
 * W4's fitted growth exponents: a row for every engine that ran, with its exponent, or '—' and the
 * sizes it was timed at (fewer than two: skipped, a mismatch, an error). Undefined when the run had
 * W4 at fewer than two sizes.
 */
export function growthTable(results: SuiteResults): Table | undefined {
  const ism = results.cases.flatMap((c) => (c.spec.workload === 'ism' ? [{ dim: c.spec.net.dim, rows: c.rows }] : []));
  if (results.growth.length === 0 && new Set(ism.map((c) => c.dim)).size < 2) return undefined;
  const rows = results.engines.filter((e) => e.available).map((e) => {
    const label = labelOf(results, e.id);
    const fit = results.growth.find((g) => g.engine === e.id);
    if (fit) return [label, fit.exponent.toFixed(2), fit.dims.join(', ')];
    const timed = ism.filter((c) => c.rows.find((r) => r.engine === e.id)?.medianMs !== undefined).map((c) => c.dim);
    return [label, '—', timed.length === 0 ? 'not timed at any d' : `timed at d = ${timed.join(', ')} only`];
  });
  return { header: ['engine', 'exponent b (ms ≈ a·d^b)', 'fitted over d'], align: ['left', 'right', 'left'], rows };
}

/** How each engine ran (version, backend, threads), or why it did not. */
export function enginesTable(results: SuiteResults): Table {
  return {
    header: ['engine', 'version', 'backend', 'threads', 'notes'],
    align: ['left', 'left', 'left', 'left', 'left'],
    rows: results.engines.map((e: EngineRecord) =>
      e.available ? [e.label, e.version ?? '', e.backend ?? '', String(e.threads ?? ''), e.note ?? ''] : [e.label, '—', '—', '—', `not run: ${e.reason ?? ''}`],
    ),
  };
}

const shortStatus = (row: Row): string => (row.status === 'unavailable' ? 'n/a' : row.status === 'timed' ? '' : row.status);

/** Cases × available engines, each cell the median figure; for the README and `scorch bench`. */
export function summaryTable(results: SuiteResults): Table {
  const engines = results.engines.filter((e) => e.available);
  const header = ['workload', 'unit', ...engines.map((e) => e.label)];
  const rows = results.cases.map((c) => {
    const info = WORKLOADS[c.spec.workload];
    const cells = engines.map((e) => {
      const row = c.rows.find((r) => r.engine === e.id);
      if (!row) return '';
      return row.figure === undefined ? shortStatus(row) : formatNumber(row.figure);
    });
    return [`${info.code} ${info.title}, ${c.spec.size}`, `${info.unit} ${info.higherIsBetter ? '↑' : '↓'}`, ...cells];
  });
  return { header, align: ['left', 'left', ...engines.map((): Align => 'right')], rows };
}

/**
 * One line on the run: when, where, which mode, how long, and whether its Node engines had relaxed
 * SIMD: forced on (`--relaxed-simd`), or on by default in this Node (22 and later), which a plain
 * run, the record, then has too.
 */
export function runLine(results: SuiteResults): string {
  const m = results.machine;
  const forced = results.method.relaxedSimd;
  // The Node engines only: a browser row has relaxed SIMD from its browser whatever Node has.
  const byDefault = !forced && results.engines.some((e) => e.relaxedSimd === true && ENGINES[e.id].chromiumPage === undefined);
  const relaxed = forced
    ? ` with relaxed SIMD on in every Node engine${forced.nodeFlags.length > 0 ? ` (${forced.nodeFlags.join(' ')})` : ''}`
    : byDefault ? ' with relaxed SIMD on by default in its Node engines' : '';
  return `${results.date.slice(0, 10)}, scorch ${results.commit}, on ${m.name} (${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}), ${results.mode} run${relaxed} of ${results.durationS} s, load average ${m.loadAverageStart.join(' ')} → ${m.loadAverageEnd.join(' ')}`;
}

/** The run's pinning (method.pinning), as a line, where the run recorded it. */
function pinningLines(results: SuiteResults): string[] {
  const p = results.method.pinning;
  return p === undefined ? [] : [`Cores: ${p}`];
}

/** Engines that did not run, one line each (the README's summary names them under the table). */
export function unavailableLines(results: SuiteResults): string[] {
  return results.engines.filter((e) => !e.available).map((e) => `${e.label}: not run: ${e.reason ?? ''}`);
}

/** The whole report for the terminal. */
export function textReport(results: SuiteResults): string[] {
  const lines = [`scorch benchmark suite: ${runLine(results)}`, `NVIDIA GPU: ${results.gpu.detail}`, simdPeakLine(results.machine.wasmSimdPeak), ...pinningLines(results), '', 'engines:', ...renderText(enginesTable(results))];
  lines.push('', 'ratios are speeds relative to scorch (scorch’s median time ÷ the engine’s): above 1 the engine is faster than scorch; check = relative error of the value against the float64 reference');
  for (const c of results.cases) {
    lines.push('', caseTitle(c), ...renderText(caseTable(results, c)));
  }
  const growth = growthTable(results);
  if (growth) lines.push('', 'W4 exact ISM: growth of the step time in d', ...renderText(growth));
  return lines;
}

/** The detailed Markdown section of benchmarks/README.md. */
export function markdownReport(results: SuiteResults): string[] {
  const lines = [`Measured ${runLine(results)}. NVIDIA GPU: ${results.gpu.detail}. ${simdPeakLine(results.machine.wasmSimdPeak)}.${pinningLines(results).map((l) => ` ${l}.`).join('')}`, '', ...renderMarkdown(enginesTable(results))];
  for (const c of results.cases) lines.push('', `**${caseTitle(c)}**`, '', ...renderMarkdown(caseTable(results, c)));
  const growth = growthTable(results);
  if (growth) lines.push('', '**W4 exact ISM: growth of the step time in d**', '', ...renderMarkdown(growth));
  return lines;
}

/** The compact Markdown section of the repository's README. */
export function markdownSummary(results: SuiteResults): string[] {
  const missing = unavailableLines(results);
  return [
    `Measured ${runLine(results)}; medians (↑ higher is better, ↓ lower is better). Per-case tables with spreads, ratios and value checks: [benchmarks/README.md](benchmarks/README.md).`,
    '',
    ...renderMarkdown(summaryTable(results)),
    ...(missing.length > 0 ? ['', ...missing.map((l) => `- ${l}`)] : []),
    `- NVIDIA GPU: ${results.gpu.detail}.`,
    `- ${simdPeakLine(results.machine.wasmSimdPeak)}.`,
  ];
}
