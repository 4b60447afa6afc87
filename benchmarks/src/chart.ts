// The results as an SVG bar chart, hand-written and dependency-free: one panel per case, one bar
// per timed engine showing its speed relative to scorch CPU on a log scale (1× is the reference
// line; bars to the right are faster than scorch CPU), labelled with the figure in the workload's
// unit. Engines that were not timed are listed by name with their status.

import type { EngineId } from './engines.js';
import type { CaseResult, SuiteResults } from './results.js';
import { formatNumber } from './report.js';
import { WORKLOADS } from './workloads.js';

const WIDTH = 920;
const LABEL_WIDTH = 240;
const PLOT_WIDTH = 520;
const BAR_HEIGHT = 14;
const BAR_GAP = 4;
const PANEL_GAP = 22;
const TITLE_HEIGHT = 18;

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** One colour per engine: an engine added to ENGINE_IDS without one is a type error, not a grey bar. */
const COLOURS: Record<EngineId, string> = {
  'scorch-cpu': '#d1495b',
  'scorch-cpu-threads': '#e8899a',
  'scorch-cpu-fastmath': '#b5374a',
  'scorch-cpu-chromium': '#a23b72',
  'scorch-cpu-chromium-threads': '#d49ab8',
  'scorch-webgpu': '#edae49',
  'tfjs-cpu': '#66a182',
  'tfjs-wasm': '#2e8b57',
  'tfjs-webgpu': '#9bc995',
  'jaxjs-wasm': '#00798c',
  'jaxjs-webgpu': '#7fc8d6',
  'jaxjs-wasm-chromium': '#3d5a80',
  'jaxjs-wasm-chromium-threads': '#98c1d9',
  'torch-cpu-1t': '#30638e',
  'torch-cpu-default': '#8fa9c8',
  'torch-cuda': '#555555',
};

/** The decade range covering every ratio (at least 0.1× to 10×). */
function ratioRange(cases: readonly CaseResult[]): [number, number] {
  const ratios = cases.flatMap((c) => c.rows.map((r) => r.vsScorchCpu).filter((v): v is number => v !== undefined && v > 0));
  const lo = Math.min(0.1, ...ratios);
  const hi = Math.max(10, ...ratios);
  return [10 ** Math.floor(Math.log10(lo)), 10 ** Math.ceil(Math.log10(hi))];
}

export function renderChart(results: SuiteResults): string {
  const [lo, hi] = ratioRange(results.cases);
  const x = (ratio: number) => LABEL_WIDTH + ((Math.log10(ratio) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * PLOT_WIDTH;
  const parts: string[] = [];
  let y = 48;
  for (const c of results.cases) {
    const info = WORKLOADS[c.spec.workload];
    parts.push(`<text x="8" y="${y + 12}" class="title">${escapeXml(`${info.code} ${info.title}, ${c.spec.size} (${info.unit})`)}</text>`);
    y += TITLE_HEIGHT + 4;
    const top = y;
    for (const row of c.rows) {
      const label = results.engines.find((e) => e.id === row.engine)?.label ?? row.engine;
      parts.push(`<text x="${LABEL_WIDTH - 6}" y="${y + BAR_HEIGHT - 3}" text-anchor="end">${escapeXml(label)}</text>`);
      if (row.vsScorchCpu !== undefined && row.figure !== undefined) {
        const end = x(row.vsScorchCpu);
        const start = x(lo);
        parts.push(`<rect x="${start.toFixed(1)}" y="${y}" width="${Math.max(1, end - start).toFixed(1)}" height="${BAR_HEIGHT}" fill="${COLOURS[row.engine]}"/>`);
        parts.push(`<text x="${(end + 4).toFixed(1)}" y="${y + BAR_HEIGHT - 3}">${escapeXml(`${formatNumber(row.figure)} (${formatNumber(row.vsScorchCpu)}×)`)}</text>`);
      } else {
        const status = row.status === 'unavailable' ? 'not run' : row.status === 'timed' ? 'no scorch CPU figure' : row.status;
        parts.push(`<text x="${LABEL_WIDTH + 4}" y="${y + BAR_HEIGHT - 3}" class="muted">${escapeXml(status)}</text>`);
      }
      y += BAR_HEIGHT + BAR_GAP;
    }
    // The 1× line: scorch CPU's own speed.
    parts.push(`<line x1="${x(1).toFixed(1)}" y1="${top - 2}" x2="${x(1).toFixed(1)}" y2="${y - BAR_GAP + 2}" class="unit"/>`);
    y += PANEL_GAP;
  }
  const ticks: string[] = [];
  for (let e = Math.log10(lo); e <= Math.log10(hi) + 1e-9; e++) {
    const v = 10 ** e;
    ticks.push(`<text x="${x(v).toFixed(1)}" y="40" text-anchor="middle" class="muted">${escapeXml(`${formatNumber(v)}×`)}</text>`);
  }
  const height = y + 8;
  const title = `scorch benchmark suite — ${results.date.slice(0, 10)}, ${results.machine.name}, ${results.mode} run: speed relative to scorch CPU (log scale; bars label the figure)`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    '<style>.title{font-weight:bold;font-size:12px}.muted{fill:#777}.unit{stroke:#222;stroke-dasharray:3 2}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="8" y="18" class="title">${escapeXml(title)}</text>`,
    ...ticks,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
