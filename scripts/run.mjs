#!/usr/bin/env node
// Runs a TypeScript entry file of this repository: esbuild bundles it (workspace packages from
// their sources, npm dependencies left external) into a .tmp/ folder beside the entry, so Node
// resolves the external packages from the entry's own workspace package; then Node imports it.
// The bundle is named by this process's id and removed when the process exits: two runs of one
// entry at once (a test runs an example on the CPU and on WebGPU side by side) each import their
// own, where one shared file could be read while the other run rewrote it, and run nothing.
// Usage: node scripts/run.mjs FILE.ts [args...]
import { build } from 'esbuild';
import { mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { workspaceAliases } from './workspace.mjs';

const entry = process.argv[2];
if (!entry) {
  console.error('usage: node scripts/run.mjs FILE.ts [args...]');
  process.exit(2);
}
const outdir = resolve(dirname(resolve(process.cwd(), entry)), '.tmp');
mkdirSync(outdir, { recursive: true });
const outfile = resolve(outdir, `${basename(entry).replace(/\.[cm]?tsx?$/, '')}-${process.pid}.mjs`);
process.on('exit', () => rmSync(outfile, { force: true }));
await build({
  entryPoints: [resolve(process.cwd(), entry)],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'inline',
  packages: 'external',
  alias: workspaceAliases,
  logLevel: 'warning',
});
process.argv.splice(1, 2, outfile);
await import(pathToFileURL(outfile).href);
