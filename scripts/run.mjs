#!/usr/bin/env node
// Runs a TypeScript entry file of this repository: esbuild bundles it (workspace packages from
// their sources, npm dependencies left external) into a .tmp/ folder beside the entry, so Node
// resolves the external packages from the entry's own workspace package; then Node imports it.
// Usage: node scripts/run.mjs FILE.ts [args...]
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = process.argv[2];
if (!entry) {
  console.error('usage: node scripts/run.mjs FILE.ts [args...]');
  process.exit(2);
}
const outdir = resolve(dirname(resolve(process.cwd(), entry)), '.tmp');
mkdirSync(outdir, { recursive: true });
const outfile = resolve(outdir, `${basename(entry).replace(/\.[cm]?tsx?$/, '')}.mjs`);
const workspace = {
  '@scorch/tensor': 'packages/tensor/src/index.ts',
  '@scorch/autograd': 'packages/autograd/src/index.ts',
  '@scorch/kernels': 'packages/kernels/src/index.ts',
  '@scorch/score': 'packages/score/src/index.ts',
};
await build({
  entryPoints: [resolve(process.cwd(), entry)],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'inline',
  packages: 'external',
  alias: Object.fromEntries(Object.entries(workspace).map(([k, v]) => [k, resolve(root, v)])),
  logLevel: 'warning',
});
process.argv.splice(1, 2, outfile);
await import(pathToFileURL(outfile).href);
