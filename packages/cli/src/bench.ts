// `scorch bench`: how fast this machine runs scorch. First the demo's own work on each backend (an
// SSM-VR training step of the default model, and an annealed-Langevin step over 1000 samples),
// then the repository's benchmark programs (benchmarks/*.ts) when they are present, each run as
// its own process through scripts/run.mjs. Whatever is unavailable is named, with the reason.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RandomKey, full, randomKey, setDefaultDevice, splitKey } from '@scorch/tensor';
import { adam, annealedLangevinDynamics, buildModel, datasetEntry, makeObjective, modelSpecFor, noiseFor, train } from '@scorch/score';
import type { CommandSpec, FlagValue } from './args.js';
import { selectBackend } from './backend.js';
import type { Io } from './io.js';
import { fmt } from './report.js';

/** The repository's benchmark programs, in the order they run. */
const BENCHMARK_FILES = [
  { file: 'benchmarks/cpuMatmul.ts', needsWebGPU: false, what: 'CPU matmul against TensorFlow.js CPU' },
  { file: 'benchmarks/webgpuMatmul.ts', needsWebGPU: true, what: 'WebGPU matmul and elementwise add against TensorFlow.js WebGPU' },
] as const;

export const BENCH_SPEC: CommandSpec = {
  name: 'bench',
  summary: "time the demo's training and sampling steps per backend, then the repository's benchmarks",
  details:
    "Part 'score': one SSM-VR training step of the demo's model (MLP 64×64, batch 256) and one annealed-Langevin step over 1000 samples, on the CPU and on WebGPU when an adapter exists. " +
    "Part 'files': the repository's benchmark programs (" + BENCHMARK_FILES.map((b) => b.file).join(', ') + '), when present; like their pnpm scripts, they write their results into benchmarks/results/.',
  flags: [
    { name: 'suite', kind: 'choice', valueName: 'NAME', choices: ['all', 'score', 'files'], default: 'all', description: 'which part to run' },
    { name: 'backend', kind: 'choice', valueName: 'NAME', choices: ['all', 'cpu', 'webgpu'], default: 'all', description: "backends for part 'score'" },
    { name: 'steps', kind: 'integer', valueName: 'N', min: 1, default: 30, description: "timed steps per measurement of part 'score' (after 5 warm-up steps)" },
  ],
  examples: ['scorch bench', 'scorch bench --suite score --backend cpu --steps 50'],
};

interface StepTimes {
  trainMs: number;
  sampleMs: number;
}

/** Milliseconds per training step and per sampler step of the demo's model on `device`. */
async function timeDemoSteps(device: string, steps: number): Promise<StepTimes> {
  setDefaultDevice(device);
  const entry = datasetEntry('mixture');
  const [modelKey, dataKey, trainKey, sampleKey] = splitKey(randomKey(0), 4) as RandomKey[];
  const points = await entry.dataset.sample(1000, { key: dataKey! }).data();
  const noise = noiseFor('ssm-vr', { dataPoints: points });
  const model = buildModel(modelSpecFor('ssm-vr', [64, 64]), noise, modelKey!);
  const objective = makeObjective({ objective: 'ssm-vr', noise, model, dataset: entry.dataset, batch: 256 });
  const optimizer = adam({ lr: 1e-3 });
  const warmUp = 5;
  // One loss read at the end of each run: it waits for the device, so the time is the real one.
  await train({ params: model.params, loss: objective, optimizer, steps: warmUp, key: trainKey!, every: warmUp });
  let started = performance.now();
  await train({ params: model.params, loss: objective, optimizer, steps, key: trainKey!, every: steps });
  const trainMs = (performance.now() - started) / steps;

  const init = full([1000, 2], 0.5);
  const sigma = [0.1];
  const warm = await annealedLangevinDynamics(model.score, init, { key: sampleKey!, sigmas: sigma, stepsPerLevel: warmUp, denoise: false });
  await warm.data();
  warm.dispose();
  started = performance.now();
  const out = await annealedLangevinDynamics(model.score, init, { key: sampleKey!, sigmas: sigma, stepsPerLevel: steps, denoise: false });
  await out.data();
  const sampleMs = (performance.now() - started) / steps;
  out.dispose();
  init.dispose();
  return { trainMs, sampleMs };
}

export async function runBench(values: Readonly<Record<string, FlagValue>>, _given: ReadonlySet<string>, io: Io): Promise<number> {
  const suite = values.suite as 'all' | 'score' | 'files';
  const wanted = values.backend as 'all' | 'cpu' | 'webgpu';
  const steps = values.steps as number;
  // WebGPU is probed once: both parts need to know whether an adapter exists.
  const gpu = suite === 'score' && wanted === 'cpu' ? undefined : await selectBackend('auto');
  const webgpuDevice = gpu && !gpu.fallbackReason ? gpu.device : undefined;
  let failures = 0;

  if (suite !== 'files') {
    io.out(`score steps (demo model: SSM-VR, MLP 64×64, batch 256; annealed Langevin over 1000 samples), ${steps} timed steps each:`);
    const rows: string[][] = [['backend', 'train ms/step', 'train steps/s', 'sample ms/step']];
    const devices: { name: string; device: string | undefined; description: string; why?: string }[] = [];
    if (wanted !== 'webgpu') devices.push({ name: 'cpu', device: 'cpu', description: 'cpu' });
    if (wanted !== 'cpu') devices.push({ name: 'webgpu', device: webgpuDevice, description: gpu?.description ?? 'webgpu', why: gpu?.fallbackReason });
    for (const d of devices) {
      if (!d.device) {
        rows.push([d.name, `not available: ${d.why ?? 'no adapter'}`, '', '']);
        continue;
      }
      const t = await timeDemoSteps(d.device, steps);
      rows.push([d.description, fmt(t.trainMs), fmt(1000 / t.trainMs), fmt(t.sampleMs)]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) io.out(`  ${r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()}`);
  }

  if (suite !== 'score') {
    const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    const runner = join(repoRoot, 'scripts', 'run.mjs');
    for (const b of BENCHMARK_FILES) {
      io.out('');
      const path = join(repoRoot, b.file);
      if (!existsSync(path) || !existsSync(runner)) {
        io.out(`${b.file}: not available (${existsSync(runner) ? 'the file is not in this checkout' : 'scripts/run.mjs is missing'})`);
        continue;
      }
      if (b.needsWebGPU && !webgpuDevice) {
        io.out(`${b.file}: skipped, no WebGPU adapter (${gpu?.fallbackReason ?? 'not probed'})`);
        continue;
      }
      io.out(`${b.file}: ${b.what}`);
      const result = spawnSync(process.execPath, [runner, b.file], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
      if (result.status !== 0) {
        failures++;
        io.err(`scorch bench: ${b.file} failed (exit status ${result.status ?? result.signal})`);
      }
    }
  }
  return failures > 0 ? 1 : 0;
}
