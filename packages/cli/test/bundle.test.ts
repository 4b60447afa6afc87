// The `scorch` shim's bundle (bin/scorch.mjs → dist/scorch.mjs): its source map is a file beside
// it, named by the bundle's last line, not an inline comment (3 of 4 MB that V8 scanned on every
// start), and the map's sources resolve from dist/ to the TypeScript files, so a stack under
// --enable-source-maps names them.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const bin = join(repoRoot, 'packages', 'cli', 'bin', 'scorch.mjs');
const bundle = join(repoRoot, 'packages', 'cli', 'dist', 'scorch.mjs');

describe('the CLI bundle', () => {
  it('links its source map from a file beside it, whose sources are the TypeScript files', () => {
    // Builds the bundle when it is missing or stale.
    const run = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const text = readFileSync(bundle, 'utf8');
    expect(text).not.toContain('sourceMappingURL=data:');
    expect(text.trimEnd().split('\n').at(-1)).toBe('//# sourceMappingURL=scorch.mjs.map');
    // Under 1.5 MB: the code alone (0.9 MB here); with the map inline it was 4 MB.
    expect(text.length).toBeLessThan(1.5e6);
    const map = JSON.parse(readFileSync(`${bundle}.map`, 'utf8')) as { sources: string[] };
    const main = map.sources.map((s) => resolve(dirname(bundle), s)).find((s) => s.endsWith(join('cli', 'src', 'main.ts')));
    expect(main).toBe(join(repoRoot, 'packages', 'cli', 'src', 'main.ts'));
    const missing = map.sources.map((s) => resolve(dirname(bundle), s)).filter((s) => !s.includes('node_modules') && !existsSync(s));
    expect(missing).toEqual([]);
  });
});
