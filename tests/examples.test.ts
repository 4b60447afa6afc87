// Runs the examples the README shows, as a reader would (`node scripts/run.mjs FILE`), and checks
// what they print, so that the README's code cannot silently stop working:
// - examples/mlpDerivatives.ts: every pair of routes to the same derivative prints the same values;
// - the README's gradient/JVP/HVP block, extracted from README.md and run the same way;
// - examples/trainScore.ts: the trained sampler's mode weights and MMD² are within stated bounds,
//   and the README's training block is that file's code, verbatim;
// - examples/jitStep.ts (docs/jit.md's worked example): the program it prints, the fused kernels
//   and dispatch count on WebGPU, and the same loss on the CPU and on WebGPU (also when run from
//   examples/); docs/jit.md's program, kernel plan and WGSL are lines the example prints;
// - examples/customPrimitive.ts (docs/extending.md's walkthrough), on WebGPU and with --cpu: its
//   rules pass checkGrads, the score network trains with it to the loss of the built-in
//   composition, the profile lists one kernel for the custom op against the composition's several,
//   the live tensor count at the end is the one before training, and docs/extending.md's output
//   (timings aside) is lines it prints;
// - the README's training-style and checkGrads blocks, and docs/autograd.md's blocks, extracted
//   and run the same way: they run as written and print what their comments say;
// - docs/extending.md's first two blocks (define softplusSquare, checkGrads it), pasted together;
// - docs/vmap.md's block, after definitions of the names it leaves to the reader (float64):
//   per-example gradients against a loop, Jacobian columns against their closed form;
// - the WebGPU blocks of README.md and docs/webgpu.md, run from packages/kernels (where Dawn
//   resolves): they find the adapter and print what their comments say.

import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

/** Runs a TypeScript file through scripts/run.mjs and returns what it printed on stdout. */
async function runExample(file: string, ...args: string[]): Promise<string> {
  return runExampleIn(root, file, ...args);
}

/** runExample from another working directory (`file` relative to it). */
async function runExampleIn(cwd: string, file: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [join(root, 'scripts', 'run.mjs'), file, ...args], { cwd, maxBuffer: 1 << 20 });
  return stdout;
}

/**
 * The examples' fallback to the CPU prints one line ending so: Dawn not installed, or its reason
 * WebGPU is unavailable (initWebGPU's "no WebGPU adapter found ...", say).
 */
const CPU_FALLBACK = /: running on the CPU$/m;

/** The numbers on the printed line that starts with `label` (after the label itself). */
function numbersAfter(output: string, label: string): number[] {
  const line = output.split('\n').find((l) => l.startsWith(label));
  if (line === undefined) throw new Error(`no line starting with ${JSON.stringify(label)} in:\n${output}`);
  return (line.slice(label.length).match(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi) ?? []).map(Number);
}

/** The ```ts code blocks of a Markdown file of the repository (README.md by default). */
function codeBlocks(file = 'README.md'): string[] {
  const readme = readFileSync(join(root, file), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Runs the ```ts block of `file` that contains `marker`, as written, and returns what it printed. */
async function runDocBlock(file: string, marker: string, name: string): Promise<string> {
  const block = codeBlocks(file).find((b) => b.includes(marker));
  expect(block, `${file} has a \`\`\`ts block containing ${JSON.stringify(marker)}`).toBeDefined();
  // .tmp/ is git-ignored; scripts/run.mjs bundles the file beside it, inside the repository,
  // so the workspace packages resolve.
  const dir = join(root, 'tests', '.tmp');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.ts`);
  writeFileSync(path, block!);
  return runExample(path);
}

describe('examples/mlpDerivatives.ts', () => {
  it('prints the same derivatives by independent routes', async () => {
    const out = await runExample('examples/mlpDerivatives.ts');
    const [forward] = numbersAfter(out, '∂f·v           (forward)');
    const [reverse] = numbersAfter(out, '∇f(x)·v        (reverse)');
    expect(forward).toBeDefined();
    expect(forward).toBe(reverse);
    const gradient = numbersAfter(out, '∇f(x)          (reverse)');
    expect(gradient).toHaveLength(4);
    expect(numbersAfter(out, 'vjp(1)         (reverse)')).toEqual(gradient);
    const hvpForwardOverReverse = numbersAfter(out, '∇²f(x)·v  (fwd-over-rev)');
    expect(hvpForwardOverReverse).toHaveLength(4);
    expect(numbersAfter(out, '∇²f(x)·v  (rev-over-rev)')).toEqual(hvpForwardOverReverse);
    expect(hvpForwardOverReverse.every(Number.isFinite)).toBe(true);
  });
});

describe('examples/jitStep.ts', () => {
  it('prints the traced program, fuses it into a few kernels on WebGPU, and trains to the same loss on both backends', async () => {
    // The third run is from examples/, not the repository's root: the example finds Dawn from its
    // own file, not from the working directory.
    const [cpu, gpu, fromExamples] = await Promise.all([
      runExample('examples/jitStep.ts', '--cpu'),
      runExample('examples/jitStep.ts', '--wgsl'),
      runExampleIn(join(root, 'examples'), 'jitStep.ts'),
    ]);
    expect(cpu).toContain('{ lambda a:f32[2,16] b:f32[16] c:f32[16,2] d:f32[2,2](captured) ; k0:key .');
    expect(cpu).toMatch(/updates a <- \w+, b <- \w+, c <- \w+ }/);
    // On this machine the example must find llvmpipe's adapter; if it fell back to the CPU, say why.
    expect(gpu, 'examples/jitStep.ts ran on the CPU').not.toMatch(CPU_FALLBACK);
    expect(gpu.split('\n')[0]).toMatch(/ kernels on webgpu$/);
    expect(fromExamples, 'examples/jitStep.ts, run from examples/, ran on the CPU').not.toMatch(CPU_FALLBACK);
    expect(fromExamples.split('\n')[0]).toMatch(/ kernels on webgpu$/);
    const [equations, kernels] = numbersAfter(gpu, '');
    // The program's own let-block, as printed on the CPU, has one line per equation.
    expect(equations).toBe(cpu.split('\n').filter((l) => / = \w/.test(l) && !l.includes(':key =')).length);
    expect(kernels).toBeLessThanOrEqual(10);
    const [dispatches] = numbersAfter(gpu, 'one call:');
    expect(dispatches).toBe(kernels);
    // 200 float32 steps on each backend: the runs agree to float32 rounding amplified by the
    // steps (relative 1e-3 is far above it and far below the loss's own 0.1 → 0.003 change).
    const [cpuLoss] = numbersAfter(cpu, 'loss after 200 steps:');
    const [gpuLoss] = numbersAfter(gpu, 'loss after 200 steps:');
    expect(cpuLoss!).toBeLessThan(0.01);
    expect(Math.abs(gpuLoss! - cpuLoss!)).toBeLessThanOrEqual(1e-3 * cpuLoss! + 1e-5);
    expect(gpu).toContain('(traced 1 time)');
    expect(numbersAfter(fromExamples, 'loss after 200 steps:')).toEqual([gpuLoss, 1]);
    checkJitDoc(cpu, gpu, equations!, kernels!);
  });
});

/**
 * docs/jit.md shows this example's program, its kernel plan on llvmpipe and kernel 2's WGSL; they
 * had drifted (43 equations and names one letter on, after the program lost an equation; a scalar
 * kernel where the generator now writes vec4 lanes). Each shown line must be one the example prints.
 */
function checkJitDoc(cpu: string, gpu: string, equations: number, kernels: number): void {
  const doc = readFileSync(join(root, 'docs', 'jit.md'), 'utf8');
  const fenced = [...doc.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]! }));
  const trimmedLines = (text: string) => new Set(text.split('\n').map((l) => l.trim()));
  // The program: every line but the elision is a line the CPU run prints.
  const program = fenced.find((b) => b.body.startsWith('{ lambda'))!.body;
  const cpuLines = trimmedLines(cpu);
  for (const line of program.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('...'))) {
    expect(cpuLines.has(line), `docs/jit.md's program line ${JSON.stringify(line)}`).toBe(true);
  }
  const shown = program.split('\n').filter((l) => / = \w/.test(l)).length;
  const elided = Number(/\((?:the backward pass: )?(\d+) more equations\)/.exec(program)?.[1]);
  expect(shown + elided).toBe(equations);
  expect(doc).toContain(`the ${equations} equations become **${kernels} kernels`);
  // The kernel plan: each row's name, and the equations it names (first and last around a '...').
  const plan = new Map<number, { name: string; vars: string[] }>();
  let current: { name: string; vars: string[] } | undefined;
  for (const line of gpu.slice(gpu.indexOf('\nkernels:\n')).split('\n')) {
    const head = /^(\d+)\. (\S+)$/.exec(line);
    if (head) plan.set(Number(head[1]), (current = { name: head[2]!, vars: [] }));
    else if (current && /^ {5}\w+:/.test(line)) current.vars.push(line.trim().split(':')[0]!);
    else if (current) break;
  }
  const table = fenced.find((b) => b.body.startsWith('1. fused_'))!.body.trim().split('\n');
  expect(table).toHaveLength(plan.size);
  for (const row of table) {
    const [, n, name, vars] = /^(\d+)\. (\S+)\s+([^:]+?)(?::|$)/.exec(row)!;
    const kernel = plan.get(Number(n))!;
    expect(kernel.name, row).toBe(name);
    const named = vars!.split(/,\s*|\s*=.*$/).filter((v) => v !== '' && v !== '...');
    for (const v of named) expect(kernel.vars, row).toContain(v);
  }
  // Kernel 2's WGSL: every line shown (its comments aside) is a line of the printed kernels.
  const wgsl = fenced.find((b) => b.lang === 'wgsl')!.body;
  const gpuLines = trimmedLines(gpu);
  for (const line of wgsl.split('\n').map((l) => l.replace(/\s*\/\/.*$/, '').trim()).filter((l) => l !== '' && !l.includes('...'))) {
    expect(gpuLines.has(line), `docs/jit.md's WGSL line ${JSON.stringify(line)}`).toBe(true);
  }
}

describe("README's gradient, JVP and HVP example", () => {
  it('runs as written and prints matching values', async () => {
    const out = await runDocBlock('README.md', 'hvp(f', 'readmeDerivatives');
    const [fv, gv] = numbersAfter(out, '∂f·v');
    expect(fv).toBeCloseTo(gv!, 12);
    const pulled = numbersAfter(out, 'vjp(1)');
    const gradient = numbersAfter(out, '∇f');
    expect(gradient).toHaveLength(4);
    pulled.forEach((p, i) => expect(p).toBeCloseTo(gradient[i]!, 12));
    const hv = numbersAfter(out, '∇²f·v');
    expect(hv).toHaveLength(8); // forward-over-reverse, then reverse-over-reverse
    for (let i = 0; i < 4; i++) expect(hv[i]).toBeCloseTo(hv[i + 4]!, 12);
  });
});

describe("the WebGPU examples of README.md and docs/webgpu.md", () => {
  /**
   * Runs a ```ts block as written from packages/kernels/.tmp/, where `import('webgpu')` resolves
   * as it does in a project that installed Dawn beside @scorch/kernels (tests/ has no Dawn), and
   * returns what it printed on stdout and stderr (Dawn's own warnings go to stderr).
   */
  async function runWebGpuBlock(file: string, marker: string, name: string): Promise<{ stdout: string; stderr: string }> {
    const block = codeBlocks(file).find((b) => b.includes(marker));
    expect(block, `${file} has a \`\`\`ts block containing ${JSON.stringify(marker)}`).toBeDefined();
    const dir = join(root, 'packages', 'kernels', '.tmp');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${name}.ts`);
    writeFileSync(path, block!);
    return run(process.execPath, [join(root, 'scripts', 'run.mjs'), path], { cwd: root, maxBuffer: 1 << 22 });
  }

  it('run as written and find the adapter', async () => {
    // README: the gradient of a [256, 64] tensor on WebGPU, printed as a Float32Array after the
    // adapter's info.
    const readme = await runWebGpuBlock('README.md', 'console.log(gpu.info)', 'readmeWebGpu');
    expect(readme.stdout).toContain("featureLevel: '");
    expect(readme.stdout).toMatch(/Float32Array\(16384\)/);
    // README and docs/webgpu.md: the fallbacks say nothing when an adapter exists.
    const fallback = await runWebGpuBlock('README.md', 'setDefaultDevice((await initWebGPU()).device)', 'readmeWebGpuFallback');
    expect(fallback.stderr).not.toContain('computing on the CPU');
    const docFallback = await runWebGpuBlock('docs/webgpu.md', "let device = 'cpu';", 'webgpuFallback');
    expect(docFallback.stderr).not.toContain('WebGPU unavailable');
    // docs/webgpu.md: the info object (the keys its comment lists), then Σ (x xᵀ), a finite number.
    const first = await runWebGpuBlock('docs/webgpu.md', 'x.matmul(x.transpose())', 'webgpuFirst');
    for (const k of ['vendor', 'architecture', 'device', 'description', 'backend', 'featureLevel']) expect(first.stdout).toContain(`${k}: `);
    const [total] = numbersAfter(first.stdout.split('}\n').at(-1)!, '');
    expect(Number.isFinite(total)).toBe(true);
    // docs/webgpu.md: Dawn's create passed in.
    await runWebGpuBlock('docs/webgpu.md', 'dawnCreate: create', 'webgpuDawnCreate');
  });
});

describe("README's training-style and checkGrads examples", () => {
  it('run as written', async () => {
    // Both print nothing: the first ends with an in-place update, the second's promise rejects
    // (and the run fails) on a mismatch.
    expect(await runDocBlock('README.md', 'loss.backward()', 'readmeBackward')).toBe('');
    expect(await runDocBlock('README.md', 'checkGrads(myOp', 'readmeCheckGrads')).toBe('');
  });
});

describe("docs/autograd.md's examples", () => {
  it('run as written and print what their comments say', async () => {
    // jacobian, hessian, hvp, jvp and grad with argnums: the last values are gA's and gx's shapes.
    const first = await runDocBlock('docs/autograd.md', 'hessian(f)(x)', 'autogradFunctional');
    expect(first.trimEnd().endsWith('[ 3, 3 ] [ 3 ]')).toBe(true);
    // grad of jvp: a [2, 2] gradient, finite.
    const dTheta = ((await runDocBlock('docs/autograd.md', 'grad(vJv)', 'autogradGradOfJvp')).match(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi) ?? []).map(Number);
    expect(dTheta).toHaveLength(4);
    expect(dTheta.every(Number.isFinite)).toBe(true);
    // jvp of jvp: the mixed partial, then its closed form cos(1) − sin(1) at x = 0.5, y = 2.
    const [mixed, exact] = numbersAfter(await runDocBlock('docs/autograd.md', 'const [, mixed]', 'autogradMixed'), '');
    expect(exact).toBeCloseTo(Math.cos(1) - Math.sin(1), 15);
    expect(mixed).toBeCloseTo(exact!, 12);
    // requiresGrad and backward(): three SGD steps of a least-squares loss, each lower.
    const losses = (await runDocBlock('docs/autograd.md', 'loss.backward()', 'autogradBackward')).trim().split('\n').map(Number);
    expect(losses).toHaveLength(3);
    expect(losses[1]!).toBeLessThan(losses[0]!);
    expect(losses[2]!).toBeLessThan(losses[1]!);
  }, 60_000);
});

describe("docs/extending.md's walkthrough", () => {
  it('defines the primitive and checks its rules as its first two blocks are written', async () => {
    // The two blocks, one after the other, as a reader pastes them: the second's checkGrads
    // rejects (and the run fails) if a rule is wrong; nothing is printed.
    const blocks = codeBlocks('docs/extending.md');
    const define = blocks.find((b) => b.includes("name: 'softplusSquare'"));
    const check = blocks.find((b) => b.includes('checkGrads((x) => softplusSquare(x)'));
    expect(define).toBeDefined();
    expect(check).toBeDefined();
    const dir = join(root, 'tests', '.tmp');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'extendingWalkthrough.ts');
    writeFileSync(path, `${define!}\n${check!}`);
    expect(await runExample(path)).toBe('');
  }, 60_000);
});

describe("docs/vmap.md's example", () => {
  it('runs as written with the names it leaves to the reader, in float64, and gives per-example gradients and Jacobian columns', async () => {
    // The block uses a model, its weights w, b, a batch xs, ys, a function f and its argument x;
    // they are defined before it (float64, so that an eye of the default dtype would not fit),
    // and what it computes is checked after it, against a loop and a closed form.
    const block = codeBlocks('docs/vmap.md').find((b) => b.includes('perExample'));
    expect(block).toBeDefined();
    const before = [
      "import { matmul as docMatmul, randn as docRandn, randomKey as docKey } from '@scorch/tensor';",
      'const f64 = { dtype: "float64" } as const;',
      'const model = (w, b, x) => docMatmul(x, w).add(b).tanh();',
      'const w = docRandn([3, 2], { key: docKey(1), ...f64 }), b = docRandn([2], { key: docKey(2), ...f64 });',
      'const xs = docRandn([5, 4, 3], { key: docKey(3), ...f64 }), ys = docRandn([5, 4, 2], { key: docKey(4), ...f64 });',
      'const f = (t) => t.exp().mul(t.sum());',
      'const x = docRandn([2, 3], { key: docKey(5), ...f64 });',
    ].join('\n');
    const after = [
      'console.log(JSON.stringify({ gw: gw.shape, gb: gb.shape, columns: columns.shape }));',
      'let loop = 0;',
      'for (let i = 0; i < 5; i++) {',
      '  const [gwi, gbi] = grad(exampleLoss, { argnums: [0, 1] })(w, b, xs.slice([i], [1]).reshape([4, 3]), ys.slice([i], [1]).reshape([4, 2]));',
      '  loop = Math.max(loop, gw.slice([i], [1]).reshape([3, 2]).sub(gwi).abs().max().dataSync()[0], gb.slice([i], [1]).reshape([2]).sub(gbi).abs().max().dataSync()[0]);',
      '}',
      // f(x) = e^x · Σx, so ∂f_i/∂x_j = e^{x_i}·(δ_ij·Σx + 1); column j is J e_j.
      'const xv = x.dataSync(), s = xv.reduce((p, v) => p + v, 0), cv = columns.dataSync();',
      'let closed = 0;',
      'for (let j = 0; j < 6; j++) for (let i = 0; i < 6; i++) closed = Math.max(closed, Math.abs(cv[j * 6 + i] - Math.exp(xv[i]) * ((i === j ? s : 0) + 1)) / (Math.exp(xv[i]) * (Math.abs(s) + 1)));',
      'console.log(loop, closed);',
    ].join('\n');
    const dir = join(root, 'tests', '.tmp');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'vmapExample.ts');
    writeFileSync(path, `${before}\n${block!}\n${after}\n`);
    const [shapes, numbers] = (await runExample(path)).trim().split('\n');
    expect(JSON.parse(shapes!)).toEqual({ gw: [5, 3, 2], gb: [5, 2], columns: [6, 2, 3] });
    const [loop, closed] = numbersAfter(numbers!, '');
    // vmap's batched products sum the same k <= 4 terms as the per-example ones (γ_4·Σ|a||b| with
    // terms of order 1: about 1e-15); the columns are one float64 exp times (δ·Σx + 1), a few ulps
    // relative to e^{x_i}·(|Σx| + 1).
    expect(loop).toBeLessThan(1e-14);
    expect(closed).toBeLessThan(1e-14);
  }, 60_000);
});

describe('examples/trainScore.ts', () => {
  it("is the README's training example, verbatim", () => {
    const source = readFileSync(join(root, 'examples', 'trainScore.ts'), 'utf8');
    // The code after the header comment (the leading // lines and the blank line after them).
    const code = source.replace(/^(\/\/.*\n)+\n/, '');
    expect(codeBlocks()).toContain(code);
    const codeLines = code.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('//'));
    expect(codeLines.length).toBeLessThanOrEqual(30);
  });

  it('trains and samples within the stated bounds', async () => {
    const out = await runExample('examples/trainScore.ts');
    // ncsnLoss with λ(σ) = σ² is ½E‖σ·s + z‖²: for the zero score 1 (= d/2), and one batch of 256
    // gives 1 ± 0.06. The last batch's loss of a trained run was 0.65–0.86 over seeds 0–5.
    const [loss] = numbersAfter(out, 'final loss:');
    expect(loss).toBeGreaterThan(0);
    expect(loss).toBeLessThan(0.9);
    // Eight equal modes. A fraction from 1000 samples has a standard error of √(⅛·⅞/1000) ≈ 0.0105,
    // and the trained model adds its own error: over seeds 0–5 of this example the largest
    // deviation from ⅛ was 0.044 (0.032 at the seed it uses). The untrained model puts 0.96 of its
    // samples on one mode.
    const weights = numbersAfter(out, 'mode weights:');
    expect(weights).toHaveLength(8);
    expect(weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
    for (const w of weights) expect(Math.abs(w - 0.125)).toBeLessThan(0.05);
    // MMD² against fresh data: within three of its null standard errors of 0, the value for equal
    // laws (about 0.5 for the untrained model's samples).
    const [mmd, nullSe] = numbersAfter(out, 'MMD²:');
    expect(nullSe).toBeGreaterThan(0);
    expect(Math.abs(mmd!)).toBeLessThan(3 * nullSe!);
  }, 120_000);
});

describe('examples/customPrimitive.ts', () => {
  it('checks its rules, trains like the composition it replaces, profiles one kernel against several, on WebGPU and the CPU, and frees what it made', async () => {
    // The WebGPU run is from examples/, not the repository's root: the example finds Dawn from its
    // own file, not from the working directory.
    const [gpu, cpu] = await Promise.all([
      runExampleIn(join(root, 'examples'), 'customPrimitive.ts'),
      runExample('examples/customPrimitive.ts', '--cpu'),
    ]);
    // On this machine the example must find llvmpipe's adapter; if it fell back to the CPU, say why.
    expect(gpu, 'examples/customPrimitive.ts ran on the CPU').not.toMatch(CPU_FALLBACK);
    expect(gpu, 'examples/customPrimitive.ts ran on the CPU').toContain('\ndevice: webgpu\n');
    expect(cpu).toContain('\ndevice: cpu\n');
    for (const out of [gpu, cpu]) checkCustomPrimitive(out);
    checkExtendingDoc(gpu, cpu);
  }, 180_000);
});

/** What examples/customPrimitive.ts prints, on either device. */
function checkCustomPrimitive(out: string): void {
  expect(out).toContain('checkGrads(softplusSquare, order 2, fwd + rev): passed');
  const [customFirst, customLast] = numbersAfter(out, 'DSM loss, custom primitive:').filter((_, i) => i === 1 || i === 3);
  const [composedFirst, composedLast] = numbersAfter(out, 'DSM loss, square(softplus(x)):').filter((_, i) => i === 1 || i === 3);
  // The same network, data and keys: the two activations differ only in float32 rounding (a few
  // ulps each), so the first losses agree to the printed 4 decimals (±1e-4 for the last digit)
  // and 300 Adam steps later within 1e-3 relative; training lowers the loss well below its start.
  expect(Math.abs(customFirst! - composedFirst!)).toBeLessThanOrEqual(1e-4);
  expect(Math.abs(customLast! - composedLast!)).toBeLessThanOrEqual(1e-3 * composedLast!);
  expect(customLast!).toBeLessThan(0.75 * customFirst!);
  const kernels = (label: string) => numbersAfter(out, `  ${label}`)[0];
  expect(kernels('custom softplusSquare (eager)')).toBe(1);
  expect(kernels('custom softplusSquare (jit)')).toBe(1);
  expect(kernels('square(softplus(x)) (jit)')).toBe(1);
  expect(kernels('square(softplus(x)) (eager)')).toBeGreaterThan(5);
  // Nothing is garbage-collected: training, the warm-up and the profile leave no tensor behind.
  const [before, atEnd] = numbersAfter(out, 'live tensors:');
  expect(before).toBeGreaterThanOrEqual(0);
  expect(atEnd, 'live tensors at the end of examples/customPrimitive.ts (a leak)').toBe(before);
}

/**
 * docs/extending.md shows this example's output on WebGPU and the end of its --cpu run. Each line
 * shown is a line the example prints, timings aside (the kernel counts, losses and live tensor
 * counts are compared); the --cpu run also prints the WebGPU run's losses ("the same run ends").
 */
function checkExtendingDoc(gpu: string, cpu: string): void {
  const doc = readFileSync(join(root, 'docs', 'extending.md'), 'utf8');
  const fenced = [...doc.matchAll(/```(\w*)\n([\s\S]*?)```/g)].filter((m) => m[1] === '').map((m) => m[2]!);
  const untimed = (line: string) => line.replace(/\s+\d+\.\d+ ms$/, '').trimEnd();
  const lines = (text: string) => text.split('\n').map(untimed).filter((l) => l !== '');
  const gpuShown = fenced.find((b) => b.startsWith('checkGrads(softplusSquare'));
  const cpuShown = fenced.find((b) => b.startsWith('profile of y = softplus(x)² on [1024, 256] (cpu;'));
  expect(gpuShown, "docs/extending.md's WebGPU output").toBeDefined();
  expect(cpuShown, "docs/extending.md's --cpu output").toBeDefined();
  const check = (shown: string[], out: string, run: string) => {
    const printed = new Set(lines(out));
    for (const line of shown) expect(printed.has(line), `docs/extending.md's line ${JSON.stringify(line)}, in the ${run} run`).toBe(true);
  };
  check(lines(gpuShown!), gpu, 'WebGPU');
  check([...lines(cpuShown!), ...lines(gpuShown!).filter((l) => l.startsWith('DSM loss'))], cpu, '--cpu');
}
