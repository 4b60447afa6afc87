// scorch used as a library outside this repository: `pnpm build` (scripts/build.mjs), then each
// runtime package laid out as a package manager installs it (package.json and what its `files`
// name, under a fresh project's node_modules; @webgpu/types beside them, as a TypeScript user of
// @scorch/kernels installs it), and used from there, with none of the workspace's settings:
// - TypeScript, under strict settings other than ours, type-checks code using every package;
// - plain Node ESM (.mjs) runs a gradient, a jit and a training loop of @scorch/score, with the
//   values the sources give;
// - CommonJS: require() loads the packages where Node can require ES modules (20.19+, 22.12+);
//   elsewhere Node's own ERR_REQUIRE_ESM says to use import();
// - esbuild bundles them for a browser with no Node built-in left to resolve (the Chromium run of
//   such a bundle is tests/cpuMatmulBrowser.e2e.test.ts's, from the sources);
// - the README's "Using scorch in your project" runs as written: its pack command makes tarballs
//   that `npm install` puts in a fresh project, offline, and its example prints what it says.
// The build writes packages/*/dist (git-ignored), as `pnpm build` does.

import { execFileSync, execSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { denoisingScoreMatchingLoss, eightGaussians, mlpScore, sgd, train } from '@scorch/score';
import { foldIn, randomKey } from '@scorch/tensor';

const root = fileURLToPath(new URL('..', import.meta.url));
const runtimePackages = ['options', 'tensor', 'autograd', 'kernels', 'score', 'report'];
let project = '';

/** A declaration no source gives (as of a source file since deleted): the build must not keep it. */
const staleDeclaration = join(root, 'packages', 'tensor', 'dist', 'removedSource.d.ts');

beforeAll(() => {
  mkdirSync(join(root, 'packages', 'tensor', 'dist'), { recursive: true });
  writeFileSync(staleDeclaration, 'export declare const removed: number;\n');
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'pipe' });
  project = mkdtempSync(join(tmpdir(), 'scorch-consumer-'));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  for (const name of runtimePackages) {
    const from = join(root, 'packages', name);
    const to = join(project, 'node_modules', '@scorch', name);
    mkdirSync(to, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { files: string[] };
    for (const entry of ['package.json', ...manifest.files]) cpSync(join(from, entry), join(to, entry), { recursive: true });
  }
  mkdirSync(join(project, 'node_modules', '@webgpu'));
  symlinkSync(join(root, 'packages', 'kernels', 'node_modules', '@webgpu', 'types'), join(project, 'node_modules', '@webgpu', 'types'), 'dir');
}, 120_000);

afterAll(() => {
  if (project !== '') rmSync(project, { recursive: true, force: true });
});

/** Runs a file of the consumer project with Node and returns what it printed on stdout. */
function runNode(file: string, source: string): string {
  writeFileSync(join(project, file), source);
  return execFileSync(process.execPath, [file], { cwd: project, encoding: 'utf8', stdio: 'pipe' });
}

// The consumer's training loop, written once: run below from the packages' dist and here from the sources.
const TRAINING = `
const data = eightGaussians();
const model = mlpScore({ inputDim: 2, hidden: [16], key: foldIn(randomKey(0), 0) });
const { history } = await train({
  params: model.params, optimizer: sgd({ lr: 0.05 }), steps: 20, every: 10, key: foldIn(randomKey(0), 1),
  loss: (params, k) => denoisingScoreMatchingLoss(model.bind(params), data.sample(64, { key: foldIn(k, 0) }), { key: foldIn(k, 1), sigma: 0.5 }),
});
`;

describe('the built packages, installed in a project of their own', () => {
  it('the build starts from an empty dist: nothing of a deleted source is packed', () => {
    expect(existsSync(staleDeclaration)).toBe(false);
  });

  it('type-check under strict settings other than the workspace\'s (node16 resolution, no skipLibCheck)', () => {
    writeFileSync(join(project, 'main.ts'), `
import { grad, jit } from '@scorch/autograd';
import { type InitWebGPUOptions, type WebGPUHandle, initWebGPU } from '@scorch/kernels';
import { scatterPlot } from '@scorch/report';
import { adam, denoisingScoreMatchingLoss, eightGaussians, mlpScore, train } from '@scorch/score';
import { type Tensor, foldIn, randomKey, tensor } from '@scorch/tensor';

export async function main(): Promise<string> {
  const g = grad((x: Tensor) => x.square().sum())(tensor([1, 2, 3])) as Tensor;
  const f = jit((x: Tensor) => x.mul(x).sum());
  const data = eightGaussians();
  const model = mlpScore({ inputDim: 2, hidden: [8], key: randomKey(0) });
  const { history } = await train({
    params: model.params, optimizer: adam({ lr: 1e-2 }), steps: 2, key: randomKey(1),
    loss: (params, k) => denoisingScoreMatchingLoss(model.bind(params), data.sample(8, { key: foldIn(k, 0) }), { key: foldIn(k, 1), sigma: 0.5 }),
  });
  const open: (opts?: InitWebGPUOptions) => Promise<WebGPUHandle> = initWebGPU;
  const gpu: GPUDevice | undefined = undefined;
  return [await g.data(), await f(tensor([1, 2])).item(), history.length, typeof open, gpu, scatterPlot.name].join();
}
`);
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
      types: [],
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      exactOptionalPropertyTypes: true,
      noPropertyAccessFromIndexSignature: true,
      noImplicitReturns: true,
      noUnusedLocals: true,
      noUnusedParameters: true,
    };
    const program = ts.createProgram([join(project, 'main.ts')], options);
    const host = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => project, getNewLine: () => '\n' };
    expect(ts.formatDiagnostics(ts.getPreEmitDiagnostics(program), host)).toBe('');
    // Every @scorch file the consumer's compiler read is a declaration file of a package's dist.
    const scorchFiles = program.getSourceFiles().map((s) => s.fileName).filter((f) => f.includes('/@scorch/'));
    expect(scorchFiles.length).toBeGreaterThan(5);
    expect(scorchFiles.filter((f) => !/\/@scorch\/[a-z]+\/dist\/.*\.d\.ts$/.test(f))).toEqual([]);
  }, 60_000);

  it('run from plain Node ESM: a gradient, a jit and a training loop, with the sources\' values', async () => {
    const out = runNode('main.mjs', `
import { grad, jit } from '@scorch/autograd';
import { denoisingScoreMatchingLoss, eightGaussians, mlpScore, sgd, train } from '@scorch/score';
import { checkOptions, foldIn, randomKey, tensor } from '@scorch/tensor';
import * as options from '@scorch/options';
const g = grad((x) => x.square().sum())(tensor([1, 2, 3]));
const f = jit((x) => x.mul(x).sum());
${TRAINING}
// Tensor's option checks are @scorch/options' own (imported from it, not bundled into tensor's dist).
const sameChecks = checkOptions === options.checkOptions;
console.log(JSON.stringify({ grad: Array.from(await g.data()), jit: await f(tensor([1, 2, 3])).item(), history, sameChecks }));
`);
    const result = JSON.parse(out) as { grad: number[]; jit: number; history: { step: number; loss: number }[]; sameChecks: boolean };
    expect(result.sameChecks).toBe(true);
    // d/dx Σx² = 2x, and 1 + 4 + 9 = 14, exact in float32.
    expect(result.grad).toEqual([2, 4, 6]);
    expect(result.jit).toBe(14);
    // The same loop from the sources, in this process: the same code on the same CPU, the same bits.
    const fromSources = await new Function('train', 'sgd', 'mlpScore', 'eightGaussians', 'denoisingScoreMatchingLoss', 'foldIn', 'randomKey',
      `return (async () => { ${TRAINING} return history; })();`)(train, sgd, mlpScore, eightGaussians, denoisingScoreMatchingLoss, foldIn, randomKey);
    expect(result.history).toEqual(fromSources);
    expect(result.history.map((h) => h.step)).toEqual([10, 20]);
  }, 60_000);

  it('load with require() from CommonJS where Node can require ES modules', () => {
    const source = `
const { grad } = require('@scorch/autograd');
const { tensor } = require('@scorch/tensor');
for (const name of ['options', 'kernels', 'score', 'report']) require('@scorch/' + name);
grad((x) => x.square().sum())(tensor([1, 2, 3])).data().then((d) => console.log(JSON.stringify(Array.from(d))));
`;
    const features = process.features as { require_module?: boolean };
    if (features.require_module === true) {
      expect(JSON.parse(runNode('main.cjs', source))).toEqual([2, 4, 6]);
    } else {
      expect(() => runNode('main.cjs', source)).toThrow(/ERR_REQUIRE_ESM/);
    }
  }, 60_000);

  it('bundle for a browser with esbuild, no Node built-in imported', async () => {
    writeFileSync(join(project, 'page.mjs'), `
import { grad } from '@scorch/autograd';
import { initWebGPU } from '@scorch/kernels';
import { htmlReport } from '@scorch/report';
import { mlpScore } from '@scorch/score';
import { tensor } from '@scorch/tensor';
globalThis.page = { grad, initWebGPU, htmlReport, mlpScore, tensor };
`);
    const result = await build({
      entryPoints: [join(project, 'page.mjs')], bundle: true, format: 'esm', platform: 'browser', write: false, metafile: true, absWorkingDir: project, logLevel: 'silent',
    });
    const imports = Object.values(result.metafile.inputs).flatMap((input) => input.imports.map((i) => i.path));
    // Every import resolved to a package's dist (a Node built-in would fail to resolve, or show here).
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter((path) => !path.startsWith('node_modules/@scorch/'))).toEqual([]);
    expect(Object.keys(result.metafile.inputs).filter((path) => path.includes('/@scorch/')).sort()).toEqual(
      runtimePackages.map((name) => `node_modules/@scorch/${name}/dist/index.js`).sort(),
    );
  }, 60_000);

  it('as the README says: pnpm pack, npm install of the tarballs, and its example', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = /## Using scorch in your project\n([\s\S]*?)\n## /.exec(readme)?.[1];
    expect(section, 'README.md has a section "Using scorch in your project"').toBeDefined();
    const blocks = [...section!.matchAll(/```(sh|js)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, code: m[2]! }));
    const [build, install, example] = blocks;
    expect(blocks.map((b) => b.lang)).toEqual(['sh', 'sh', 'js']);
    // The packages were built in beforeAll: the block's other lines run as written, with a home of their own.
    const home = join(project, 'home');
    const app = join(project, 'app');
    mkdirSync(home);
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    const env = { ...process.env, HOME: home, npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
    const sh = (code: string, cwd: string) => execSync(code, { cwd, env, shell: '/bin/bash', stdio: 'pipe', encoding: 'utf8' });
    sh(build!.code.split('\n').filter((line) => !line.startsWith('pnpm build')).join('\n'), root);
    for (const name of runtimePackages) {
      // pnpm pack gives the version in place of workspace:* (what npm install could not read).
      const manifest = execFileSync('tar', ['-xzOf', join(home, 'scorch-packs', `scorch-${name}-0.1.0.tgz`), 'package/package.json'], { encoding: 'utf8' });
      expect(manifest).not.toContain('workspace:');
    }
    sh(install!.code, app);
    const printed = /\/\/ (.*)$/m.exec(example!.code.split('\n').find((line) => line.startsWith('console.log'))!)![1]!;
    writeFileSync(join(app, 'main.mjs'), example!.code);
    expect(execFileSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8' }).trim()).toBe(printed);
  }, 60_000);
});
