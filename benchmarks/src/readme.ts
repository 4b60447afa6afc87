// The READMEs show the latest results from benchmarks/results/latest.json, between markers:
// the repository README's performance section gets the summary matrix, benchmarks/README.md the
// per-case tables. A complete run rewrites both, and a test checks that they match latest.json,
// so the README, `scorch bench` and the results file cannot tell different stories.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { markdownReport, markdownSummary } from './report.js';
import type { SuiteResults } from './results.js';

export interface ReadmeBlock {
  /** Path relative to the repository root. */
  file: string;
  name: string;
  render: (results: SuiteResults) => string[];
}

export const README_BLOCKS: readonly ReadmeBlock[] = [
  { file: 'README.md', name: 'bench:summary', render: markdownSummary },
  { file: 'benchmarks/README.md', name: 'bench:tables', render: markdownReport },
];

const markers = (name: string) => [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`] as const;

/** The text between a block's markers (without them), or an error naming the missing marker. */
export function readBlock(text: string, name: string, file: string): string {
  const [start, end] = markers(name);
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${file}: the markers ${start} … ${end} are missing; they enclose the generated results`);
  return text.slice(from + start.length, to);
}

/** The block's expected content for `results` (what a complete run writes between the markers). */
export function expectedBlock(block: ReadmeBlock, results: SuiteResults): string {
  return `\n${block.render(results).join('\n')}\n`;
}

/** Rewrites every README block from `results`; returns the files changed. */
export function updateReadmes(repoRoot: string, results: SuiteResults): string[] {
  const changed: string[] = [];
  for (const block of README_BLOCKS) {
    const path = join(repoRoot, block.file);
    const text = readFileSync(path, 'utf8');
    const current = readBlock(text, block.name, block.file);
    const next = expectedBlock(block, results);
    if (current === next) continue;
    const [start] = markers(block.name);
    const at = text.indexOf(start) + start.length;
    writeFileSync(path, text.slice(0, at) + next + text.slice(at + current.length));
    changed.push(block.file);
  }
  return changed;
}
