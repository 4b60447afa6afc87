// The committed results (benchmarks/results/latest.json) against the suite's own rules, and the
// READMEs against them: the README's performance section, benchmarks/README.md and `scorch bench`
// all read latest.json, so a stale table fails here.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENGINE_IDS } from '../src/engines.js';
import { README_BLOCKS, expectedBlock, readBlock } from '../src/readme.js';
import { latestJsonPath, latestRefusal, readResults } from '../src/results.js';
import { summarize } from '../src/stats.js';
import { WORKLOADS, figureFor, planFor } from '../src/workloads.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

describe('the committed results', () => {
  const latest = readResults(latestJsonPath(repoRoot));

  it('cover every workload and engine, each row timed with a passing check or saying why not', () => {
    // Complete, and not made with relaxed SIMD forced on: the rule bench.ts writes latest.json by.
    expect(latestRefusal(latest)).toBeUndefined();
    expect(latest.engines.map((e) => e.id)).toEqual([...ENGINE_IDS]);
    expect(new Set(latest.cases.map((c) => c.spec.workload))).toEqual(new Set(Object.keys(WORKLOADS)));
    const plan = planFor(latest.mode);
    expect(latest.cases.map((c) => c.spec.id)).toEqual(plan.cases.map((c) => c.id));
    for (const c of latest.cases) {
      expect(c.rows.map((r) => r.engine)).toEqual([...ENGINE_IDS]);
      for (const r of c.rows) {
        if (r.status === 'timed') {
          expect(r.check?.ok).toBe(true);
          expect(r.samplesMs!.length).toBeGreaterThanOrEqual(5);
          expect(r.figure).toBeCloseTo(figureFor(c.spec, summarize(r.samplesMs!).median), 9);
        } else {
          expect(r.reason, `${c.spec.id}/${r.engine}`).toMatch(/\w/);
        }
      }
      // scorch CPU is the subject: it has a figure in every case.
      expect(c.rows.find((r) => r.engine === 'scorch-cpu')!.status).toBe('timed');
    }
  });

  it('are what the READMEs show', () => {
    for (const block of README_BLOCKS) {
      const text = readFileSync(join(repoRoot, block.file), 'utf8');
      expect(readBlock(text, block.name, block.file), `${block.file} is stale: run pnpm bench, or pnpm bench --rerender`).toBe(expectedBlock(block, latest));
    }
  });
});
