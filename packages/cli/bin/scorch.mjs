#!/usr/bin/env node
// The `scorch` command. This shim makes the TypeScript CLI runnable from a fresh clone with no
// build step: it bundles src/main.ts (and the workspace packages, from their sources) with esbuild
// into dist/scorch.mjs when that file is missing or older than any source, then imports it.
// npm packages (notably `webgpu`, Dawn's native addon) stay external and load at run time.

import { appendFileSync, existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { workspaceAliases } from '../../../scripts/workspace.mjs';

const cliRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(cliRoot, 'dist', 'scorch.mjs');

// Workspace packages are bundled from source (as scripts/run.mjs does), so an edit anywhere in
// them is picked up on the next run.
const workspace = workspaceAliases;
const sourceDirs = [join(cliRoot, 'src'), ...Object.values(workspace).map((entry) => dirname(entry))];

/** The newest modification time (ms) of any file under `dir`, or 0 when it does not exist. */
function newestMtime(dir) {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function isStale() {
  if (!existsSync(outfile)) return true;
  const built = statSync(outfile).mtimeMs;
  const shim = Math.max(statSync(fileURLToPath(import.meta.url)).mtimeMs, statSync(fileURLToPath(new URL('../../../scripts/workspace.mjs', import.meta.url))).mtimeMs);
  return shim > built || sourceDirs.some((dir) => newestMtime(dir) > built);
}

async function bundle() {
  let build;
  try {
    ({ build } = await import('esbuild'));
  } catch (e) {
    console.error(`scorch: esbuild is needed to build the CLI on first run and could not be loaded (${e.message}); run 'pnpm install' in the repository root`);
    process.exit(1);
  }
  mkdirSync(dirname(outfile), { recursive: true });
  // Written beside the target and renamed into place, so two runs building at once (parallel
  // tests) never import a half-written file.
  const partial = `${outfile}.${process.pid}.tmp`;
  await build({
    entryPoints: [join(cliRoot, 'src', 'main.ts')],
    outfile: partial,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // The source map is a file beside the bundle, read only under --enable-source-maps. Inline, it
    // was 3 of the bundle's 4 MB, which V8 scans on every start (~15–20 ms of each run's start-up;
    // benchmarks/NOTES.md, "The demo outside training"). 'external' writes no comment: the one
    // appended names the map's final name, not the partial's.
    sourcemap: 'external',
    packages: 'external',
    external: ['webgpu'],
    alias: workspace,
    logLevel: 'warning',
  });
  appendFileSync(partial, `//# sourceMappingURL=${basename(outfile)}.map\n`);
  renameSync(`${partial}.map`, `${outfile}.map`);
  renameSync(partial, outfile);
}

if (isStale()) await bundle();
const { main } = await import(pathToFileURL(outfile).href);
const code = await main(process.argv.slice(2));
// A run stopped by Ctrl-C, SIGTERM or SIGHUP (which saved what it had first) returns that
// signal's status, 128 + its number; it then ends by the signal itself, with no listener left, as
// an uncaught one would end it: a shell running it in a loop sees a process killed by Ctrl-C and
// stops the loop, where an exit with status 130 would look handled and go on (Python re-raises
// the same way after KeyboardInterrupt).
const stoppedBy = { 129: 'SIGHUP', 130: 'SIGINT', 143: 'SIGTERM' }[code];
if (stoppedBy) {
  process.removeAllListeners(stoppedBy);
  process.kill(process.pid, stoppedBy);
}
// Exit explicitly: an open WebGPU device (Dawn) keeps the event loop alive after the work is done.
process.exitCode = code;
process.exit(code);
