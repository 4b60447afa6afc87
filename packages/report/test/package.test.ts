// The package as a whole: no tensors, one dependency (@scorch/options, the option checks every
// package shares, which itself imports nothing), and no imports beyond its own files and that one.

import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('the report package', () => {
  it('declares one dependency, @scorch/options', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(manifest.name).toBe('@scorch/report');
    expect(manifest.dependencies).toEqual({ '@scorch/options': 'workspace:*' });
    for (const field of ['peerDependencies', 'optionalDependencies']) expect(manifest[field], field).toBeUndefined();
  });

  it('is pure: imports nothing but its own files and @scorch/options (no tensors, no fs), so it writes nothing to disk', () => {
    const dir = new URL('../src/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files.sort()).toEqual(['chart.ts', 'html.ts', 'index.ts', 'line.ts', 'quiver.ts', 'scatter.ts', 'svg.ts', 'textMetrics.ts', 'trajectories.ts']);
    const allowed = new Set([...files.map((f) => `./${f.replace(/\.ts$/, '.js')}`), '@scorch/options']);
    let options = 0;
    for (const file of files) {
      const source = readFileSync(new URL(file, dir), 'utf8');
      const specifiers = [...source.matchAll(/\bfrom\s+'([^']+)'|\bimport\s*\(\s*'([^']+)'|\brequire\s*\(\s*'([^']+)'/g)].map((m) => m[1] ?? m[2] ?? m[3]);
      // Every module but the font metrics at the bottom imports something, so the pattern is known to match.
      expect(specifiers.length, file).toBeGreaterThan(file === 'textMetrics.ts' ? -1 : 0);
      for (const s of specifiers) expect(allowed.has(s!), `${file} imports ${s}`).toBe(true);
      options += specifiers.filter((s) => s === '@scorch/options').length;
    }
    // The charts and the page check their options with it.
    expect(options).toBeGreaterThan(0);
  });
});
