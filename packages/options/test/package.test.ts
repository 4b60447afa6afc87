// The package as a whole: no dependencies and no imports, so that every other package (the
// dependency-free @scorch/report included) can use it.

import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('the options package', () => {
  it('declares no dependencies', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(manifest.name).toBe('@scorch/options');
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) expect(manifest[field], field).toBeUndefined();
  });

  it('imports nothing: one module, no import, export-from or require', () => {
    const dir = new URL('../src/', import.meta.url);
    expect(readdirSync(dir)).toEqual(['index.ts']);
    const source = readFileSync(new URL('index.ts', dir), 'utf8');
    expect(source).toMatch(/^export function checkOptions\(/m);
    expect([...source.matchAll(/^\s*(?:import|export)\b[^;]*\bfrom\s+'|\bimport\s*\(|\brequire\s*\(/gm)].map((m) => m[0])).toEqual([]);
  });
});
