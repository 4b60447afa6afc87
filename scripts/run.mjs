#!/usr/bin/env node
// Runs a TypeScript entry file of this repository: esbuild bundles it (workspace packages from
// their sources, npm dependencies left external) into a .tmp/ folder beside the entry, so Node
// resolves the external packages from the entry's own workspace package; then Node imports it.
// The bundle is named by this process's id: two runs of one entry at once (a test runs an example
// on the CPU and on WebGPU side by side) each import their own, where one shared file could be
// read while the other run rewrote it, and run nothing. The bundle is removed when the process
// exits. A signal (Ctrl-C, a timeout's kill) ends the process at once, as it would any Node
// program, and leaves its bundle: the next run in that folder removes the bundles of processes
// that are gone. (A handler for the signal would remove the bundle, but Node runs a handler only
// when the script's thread is free, so a script computing for minutes would ignore Ctrl-C.)
// Usage: node scripts/run.mjs FILE.ts [args...]
import { build } from 'esbuild';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
removeBundlesOfEndedRuns(outdir);
// Written here rather than by esbuild (write: false): esbuild's own process writes its files, and
// could write the bundle after this process had been stopped, and after a next run had looked.
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

/** Removes the bundles in `dir` whose process (the id in their name) no longer runs. */
function removeBundlesOfEndedRuns(dir) {
  for (const name of readdirSync(dir)) {
    const pid = /-(\d+)\.mjs$/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || processRuns(Number(pid))) continue;
    rmSync(resolve(dir, name), { force: true });
  }
}

/** Whether a process with this id runs (signal 0 checks without sending anything). */
function processRuns(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM'; // it runs, as another user's
  }
}
