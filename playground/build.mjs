#!/usr/bin/env node
// Builds the playground page: esbuild bundles src/main.ts with the workspace packages taken from
// their TypeScript sources into dist/main.js, and index.html is copied beside it. `webgpu` (Dawn,
// the Node-only WebGPU) stays external: @scorch/kernels imports it only in Node, through a
// variable specifier, so the browser bundle never reaches it; marking it external keeps a future
// literal import from pulling a native addon into the page.
// Usage: node playground/build.mjs [--watch]
import { build, context } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workspaceAliases } from '../scripts/workspace.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, 'dist');

const options = {
  entryPoints: [join(here, 'src', 'main.ts')],
  outfile: join(outdir, 'main.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // WebGPU-capable browsers all run ES2022.
  target: 'es2022',
  sourcemap: true,
  alias: workspaceAliases,
  external: ['webgpu'],
  logLevel: 'warning',
  metafile: true,
};

mkdirSync(outdir, { recursive: true });
copyFileSync(join(here, 'index.html'), join(outdir, 'index.html'));
if (process.argv.includes('--watch')) {
  const ctx = await context(options);
  await ctx.watch();
  console.log('playground: watching for changes (dist/ is rebuilt on save)');
} else {
  const result = await build(options);
  const bundle = Object.entries(result.metafile.outputs).find(([path]) => path.endsWith('main.js'));
  const bytes = bundle ? bundle[1].bytes : 0;
  console.log(`playground: dist/main.js (${(bytes / 1024).toFixed(1)} KiB) and dist/index.html`);
}
