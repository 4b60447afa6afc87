#!/usr/bin/env node
// Builds every workspace package with esbuild: packages/NAME/src/index.ts → packages/NAME/dist/index.js,
// one ESM file per package, other @scorch packages and `webgpu` left as imports. Then emits the
// packages' type declarations with TypeScript: packages/NAME/src/X.ts → packages/NAME/dist/X.d.ts,
// which package.json's `types` point at, so that a project using the packages type-checks our
// declarations only, never our sources under its own compiler settings.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const packages = readdirSync(join(root, 'packages')).filter((p) => existsSync(join(root, 'packages', p, 'src', 'index.ts')));
for (const name of packages) {
  const dir = join(root, 'packages', name);
  // From empty: a declaration of a source file since deleted would otherwise stay and be packed.
  rmSync(join(dir, 'dist'), { recursive: true, force: true });
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

// Declarations: one program over every package's entry, with the workspace's compiler options
// (tsconfig.json: @scorch/* imports resolve to the sources and stay `@scorch/*` in the output).
// noCheck: `pnpm typecheck` checks the sources; emitting without a full check takes half the time
// and writes the same declarations (errors that stop declarations being written still throw below).
const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, {
  ...ts.sys,
  onUnRecoverableConfigFileDiagnostic: (d) => {
    throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  },
});
const packagesDir = join(root, 'packages');
const program = ts.createProgram(
  packages.map((name) => join(packagesDir, name, 'src', 'index.ts')),
  { ...config.options, noEmit: false, declaration: true, emitDeclarationOnly: true, noCheck: true, rootDir: packagesDir, outDir: packagesDir },
);
const written = Object.fromEntries(packages.map((name) => [name, 0]));
// Emitted as packages/NAME/src/X.d.ts (outDir = rootDir); written to packages/NAME/dist/X.d.ts.
const emitted = program.emit(undefined, (file, text) => {
  const [name, src, ...rest] = relative(packagesDir, file).split(sep);
  if (src !== 'src' || !(name in written)) throw new Error(`build: a declaration outside packages/*/src: ${file}`);
  const out = join(packagesDir, name, 'dist', ...rest);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
  written[name]++;
});
if (emitted.emitSkipped || emitted.diagnostics.length > 0) {
  const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' };
  throw new Error(`build: declarations were not emitted:\n${ts.formatDiagnostics(emitted.diagnostics, host)}`);
}
for (const name of packages) console.log(`@scorch/${name}: ${written[name]} declaration files in dist/`);
