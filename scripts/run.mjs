#!/usr/bin/env node
// Runs a TypeScript entry file of this repository: esbuild bundles it (workspace packages from
// their sources, npm dependencies left external) into a .tmp/ folder beside the entry, so Node
// resolves the external packages from the entry's own workspace package; then Node imports it.
// The bundle is named by this process's id and removed when the process exits, or is stopped by
// SIGINT or SIGTERM: two runs of one entry at once (a test runs an example on the CPU and on WebGPU
// side by side) each import their own, where one shared file could be read while the other run
// rewrote it, and run nothing.
// Usage: node scripts/run.mjs FILE.ts [args...]
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
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
// A signal that stops the process skips 'exit'. On SIGINT (Ctrl-C) or SIGTERM (a timeout's kill)
// the bundle is removed and the process then dies by the same signal, as it would have without
// this handler, so its parent sees the signal (a shell stops its script on Ctrl-C); an exit
// status is left as the script set it. A script with its own handler for the signal decides for
// itself: it exits (and 'exit' removes the bundle) or goes on. A signal listener keeps nothing
// alive. (tests/runScript.test.ts)
for (const signal of ['SIGINT', 'SIGTERM']) {
  const onSignal = () => {
    if (process.listenerCount(signal) > 1) return;
    rmSync(outfile, { force: true });
    process.removeListener(signal, onSignal); // back to Node's default: the signal ends the process
    process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}
// Written here rather than by esbuild (write: false): esbuild's own process writes its files, and
// could write the bundle after a signal had removed it and stopped this one.
const { outputFiles } = await build({
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
  write: false,
});
writeFileSync(outfile, outputFiles[0].contents);
process.argv.splice(1, 2, outfile);
await import(pathToFileURL(outfile).href);
