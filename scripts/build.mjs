#!/usr/bin/env node
// Builds every workspace package with esbuild: packages/NAME/src/index.ts → packages/NAME/dist/index.js,
// one ESM file per package, other @scorch packages and `webgpu` left as imports.
import { build } from 'esbuild';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const packages = readdirSync(join(root, 'packages')).filter((p) => existsSync(join(root, 'packages', p, 'src', 'index.ts')));
for (const name of packages) {
  const dir = join(root, 'packages', name);
  const result = await build({
    entryPoints: [join(dir, 'src', 'index.ts')],
    outfile: join(dir, 'dist', 'index.js'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    external: ['@scorch/*', 'webgpu', 'node:*'],
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
  });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  console.log(`@scorch/${name}: dist/index.js (${(bytes / 1024).toFixed(1)} KiB with source map)`);
}
