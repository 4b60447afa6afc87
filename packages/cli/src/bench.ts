// `scorch bench`: how fast this machine runs scorch. Part 'score' times the demo's own work on
// each backend (an SSM-VR training step of the default model, and an annealed-Langevin step over
// 1000 samples). Part 'latest' prints the benchmark suite's latest side-by-side results
// (benchmarks/results/latest.json, the same file the README's performance section shows), and
// 'peers' runs that suite (pnpm bench) afresh. The suite lives in benchmarks/ and runs as its own
// process through scripts/run.mjs. Whatever is unavailable is named, with the reason.

import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RandomKey, type Tensor, foldIn, full, profile, randn, randomKey, setDefaultDevice, splitKey } from '@scorch/tensor';
import {
  adam, annealedLangevinDynamics, buildModel, datasetEntry, makeObjective, mlpScore, modelSpecFor, noiseFor, slicedScoreMatchingLoss, trainingStep,
} from '@scorch/score';
import { type CommandSpec, type FlagValue, UsageError } from './args.js';
import { selectBackend } from './backend.js';
import type { Io } from './io.js';
import { writeFiles } from './output.js';
import { fmt } from './report.js';
import { Held } from './sampling.js';

/** The benchmark suite's entry (pnpm bench), relative to the repository root. */
const SUITE_ENTRY = 'benchmarks/bench.ts';

export const BENCH_SPEC: CommandSpec = {
  name: 'bench',
  summary: "time the demo's steps per backend and show the side-by-side benchmark results",
  details:
    "Part 'score': one SSM-VR training step of the demo's model (MLP 64×64, batch 256) and one annealed-Langevin step over 1000 samples, on the CPU and on WebGPU when an adapter exists; " +
    'also the first training step alone (its trace, fusion plan and compile included: the wait before training moves). ' +
    "Part 'latest': the benchmark suite's latest results, scorch beside TensorFlow.js, jax-js and PyTorch (benchmarks/results/latest.json, as in the README). " +
    "Part 'peers': runs that suite (the same as pnpm bench; minutes); a full run whose engines all ran and agreed rewrites latest.json, a quick one is written beside it. 'all' is 'score' then 'latest'.",
  flags: [
    { name: 'suite', kind: 'choice', valueName: 'NAME', choices: ['all', 'score', 'latest', 'peers'], default: 'all', description: 'which part to run' },
    { name: 'backend', kind: 'choice', valueName: 'NAME', choices: ['all', 'cpu', 'webgpu'], default: 'all', description: "backends for part 'score' and --profile: 'webgpu' fails where no adapter exists; 'all' then measures the CPU and names WebGPU as not available" },
    { name: 'steps', kind: 'integer', valueName: 'N', min: 1, default: 30, description: "timed steps per measurement of part 'score' (after 5 warm-up steps)" },
    { name: 'quick', kind: 'boolean', description: "part 'peers': the quick run (smaller sizes, fewer repetitions; about 4 minutes on 2 cores)" },
    {
      name: 'profile', kind: 'boolean',
      description: "instead of the parts: profile one SSM-VR training step of the suite's workload (MLP 2→128→128→2, batch 1024, Adam) per backend, after 20 warm-up steps, and print its kernel table",
    },
    { name: 'eager', kind: 'boolean', description: 'with --profile: profile the step run op by op instead of compiled with jit' },
    { name: 'trace', kind: 'string', valueName: 'FILE', description: "with --profile: also write the kernels as trace events (open in Perfetto or chrome://tracing) to FILE, a new file; with --backend all one file per backend, '<FILE>' with the backend before its extension" },
  ],
  examples: ['scorch bench', 'scorch bench --suite score --backend cpu --steps 50', 'scorch bench --suite peers --quick', 'scorch bench --profile --backend webgpu --trace ssmvr.json'],
};

/** Steps run before the profiled one. */
const PROFILE_WARMUP_STEPS = 20;

/**
 * Profiles one SSM-VR training step of the benchmark suite's workload (W2: MLP 2→128→128→2,
 * softplus, batch 1024, Adam) on `device`, after PROFILE_WARMUP_STEPS warm-up steps.
 */
async function profileSsmStep(device: string, compiled: boolean) {
  const [modelKey, dataKey, stepKey] = splitKey(randomKey(0), 3) as RandomKey[];
  const model = mlpScore({ inputDim: 2, hidden: [128, 128], activation: 'softplus', key: modelKey!, device });
  const x = randn([1024, 2], { key: dataKey!, device });
  const optimizer = adam({ lr: 1e-3 });
  const step = trainingStep({
    params: model.params, optimizer, jit: compiled,
    loss: (params, key) => slicedScoreMatchingLoss(model.bind(params), x, { key, varianceReduced: true }),
  });
  const once = async (i: number) => {
    const loss = step(foldIn(stepKey!, i), i);
    const value = await loss.item();
    loss.dispose();
    return value;
  };
  // The first step compiles; V8 then tiers up the generated JavaScript and WebAssembly over the
  // next few (a profile after two steps showed a 2,048-element sum taking 1.6 ms).
  for (let i = 0; i < PROFILE_WARMUP_STEPS; i++) await once(i);
  const result = await profile(() => once(PROFILE_WARMUP_STEPS));
  step.dispose();
  optimizer.dispose();
  x.dispose();
  model.dispose();
  return result;
}

/**
 * The trace file of each backend `--trace FILE` may write ('<FILE>' itself for one backend; with
 * the backend before its extension for --backend all), checked before any work: a file that
 * exists is the user's and is refused, not overwritten, and the folder must be there to write in.
 */
function traceFiles(trace: string, wanted: 'all' | 'cpu' | 'webgpu'): Record<string, string> {
  const names = wanted === 'all' ? ['cpu', 'webgpu'] : [wanted];
  const files = Object.fromEntries(names.map((name) => [name, wanted === 'all' ? trace.replace(/(\.[^./]*)?$/, (ext) => `-${name}${ext}`) : trace]));
  for (const file of Object.values(files)) {
    if (existsSync(file)) {
      throw new UsageError(`scorch bench: --trace ${trace}: ${file} already exists; choose a new file name (or remove that ${statSync(file).isDirectory() ? 'directory' : 'file'} first)`);
    }
    const folder = dirname(resolve(file));
    let writable = existsSync(folder) && statSync(folder).isDirectory();
    try {
      if (writable) accessSync(folder, constants.W_OK);
    } catch {
      writable = false;
    }
    if (!writable) throw new UsageError(`scorch bench: --trace ${trace}: ${folder} is not a directory this process can write into; expected a new file in an existing directory`);
  }
  return files;
}

async function runProfile(values: Readonly<Record<string, FlagValue>>, io: Io): Promise<number> {
  const wanted = values.backend as 'all' | 'cpu' | 'webgpu';
  const compiled = values.eager !== true;
  const trace = values.trace as string | undefined;
  const files = trace === undefined ? undefined : traceFiles(trace, wanted);
  const devices: { name: string; device: string }[] = [];
  if (wanted !== 'webgpu') devices.push({ name: 'cpu', device: 'cpu' });
  if (wanted !== 'cpu') {
    // --backend webgpu asks for WebGPU: without an adapter that is an error (as for train), not
    // an empty profile; 'all' profiles what there is and names what is missing.
    const gpu = await selectBackend(wanted === 'webgpu' ? 'webgpu' : 'auto');
    if (gpu.fallbackReason) io.out(`webgpu: not available: ${gpu.fallbackReason}`);
    else devices.push({ name: 'webgpu', device: gpu.device });
  }
  for (const d of devices) {
    const result = await profileSsmStep(d.device, compiled);
    io.out('');
    io.out(`SSM-VR training step (MLP 2→128→128→2, batch 1024, Adam), ${compiled ? 'compiled with jit' : 'eager'}, on ${d.name}:`);
    for (const line of result.table().split('\n')) io.out(`  ${line}`);
    const file = files?.[d.name];
    if (file !== undefined) {
      // Written under a temporary name and renamed into place, so an interrupted write leaves no
      // truncated trace.
      writeFiles(dirname(resolve(file)), { [basename(file)]: JSON.stringify(result.traceEvents()) });
      io.out(`  trace events: ${file}`);
    }
  }
  return 0;
}

interface StepTimes {
  /** The first training step: trace, fusion plan, compile and run, its loss read back. */
  firstTrainMs: number;
  trainMs: number;
  sampleMs: number;
}

/** Milliseconds per training step and per sampler step of the demo's model on `device`. */
async function timeDemoSteps(device: string, steps: number): Promise<StepTimes> {
  setDefaultDevice(device);
  const entry = datasetEntry('mixture');
  // Freed when the timing ends, however it ends (the model, the data set's cached parameters).
  const held = new Held();
  if (entry.mixture) held.add(entry.mixture);
  try {
    const [modelKey, dataKey, trainKey, sampleKey] = splitKey(randomKey(0), 4) as RandomKey[];
    const points = await held.add(entry.dataset.sample(1000, { key: dataKey! })).data();
    const noise = noiseFor('ssm-vr', { dataPoints: points });
    const model = held.add(buildModel(modelSpecFor('ssm-vr', [64, 64]), noise, modelKey!));
    const objective = makeObjective({ objective: 'ssm-vr', noise, model, dataset: entry.dataset, batch: 256 });
    const optimizer = adam({ lr: 1e-3 });
    const warmUp = 5;
    // The step train() runs, made once so that the warm-up traces and compiles it and the timed run
    // only replays it (each train() call would trace its own); one loss read at the end of each
    // run: it waits for the device, so the time is the real one.
    const step = trainingStep({ params: model.params, loss: objective, optimizer });
    const trainRun = async (from: number, count: number) => {
      let loss: Tensor | undefined;
      for (let i = from; i < from + count; i++) {
        loss?.dispose();
        loss = step(foldIn(trainKey!, i), i);
      }
      await loss!.data();
      loss!.dispose();
    };
    // The first step alone, what a user waits for before training moves (time to first step).
    let started = performance.now();
    await trainRun(0, 1);
    const firstTrainMs = performance.now() - started;
    await trainRun(1, warmUp - 1);
    started = performance.now();
    await trainRun(warmUp, steps);
    const trainMs = (performance.now() - started) / steps;
    step.dispose();
    optimizer.dispose();

    // A sampler call compiles its own step, so the sampling time includes one trace per run
    // (spread over its steps); the warm-up run fills the kernel caches.
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
    return { firstTrainMs, trainMs, sampleMs };
  } finally {
    held.free();
  }
}

/**
 * Runs the benchmark suite's entry with `args` as its own process; returns its exit status. A
 * run's progress streams straight to the terminal; a short command's output (`capture`) is
 * passed through `io`.
 */
function runSuite(args: readonly string[], io: Io, capture: boolean): number {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const runner = join(repoRoot, 'scripts', 'run.mjs');
  for (const needed of [runner, join(repoRoot, SUITE_ENTRY)]) {
    if (!existsSync(needed)) {
      io.err(`scorch bench: ${needed} is missing; the benchmark suite runs from a checkout of the scorch repository`);
      return 1;
    }
  }
  if (!capture) return spawnSync(process.execPath, [runner, SUITE_ENTRY, ...args], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] }).status ?? 1;
  const result = spawnSync(process.execPath, [runner, SUITE_ENTRY, ...args], { cwd: repoRoot, encoding: 'utf8' });
  for (const line of result.stdout.trimEnd().split('\n')) io.out(line);
  for (const line of result.stderr.trimEnd().split('\n').filter(Boolean)) io.err(line);
  return result.status ?? 1;
}

/** Flags given where they do nothing are refused, so no setting is silently dropped. */
function checkBenchFlags(given: ReadonlySet<string>, suite: string, profile: boolean): void {
  if (profile) {
    for (const flag of ['suite', 'steps', 'quick']) {
      if (given.has(flag)) throw new UsageError(`scorch bench: --${flag} does not apply with --profile, which profiles one step of the suite's workload`);
    }
    return;
  }
  for (const flag of ['eager', 'trace']) {
    if (given.has(flag)) throw new UsageError(`scorch bench: --${flag} only applies with --profile`);
  }
  if (given.has('quick') && suite !== 'peers') throw new UsageError(`scorch bench: --quick applies to --suite peers only, not to ${suite}`);
  for (const flag of ['backend', 'steps']) {
    if (given.has(flag) && (suite === 'latest' || suite === 'peers')) throw new UsageError(`scorch bench: --${flag} applies to part 'score' (--suite score or all) only, not to --suite ${suite}`);
  }
}

export async function runBench(values: Readonly<Record<string, FlagValue>>, given: ReadonlySet<string>, io: Io): Promise<number> {
  const suite = values.suite as 'all' | 'score' | 'latest' | 'peers';
  const wanted = values.backend as 'all' | 'cpu' | 'webgpu';
  const steps = values.steps as number;

  checkBenchFlags(given, suite, values.profile === true);
  if (values.profile === true) return runProfile(values, io);
  if (suite === 'peers') return runSuite(values.quick ? ['--quick'] : [], io, false) === 0 ? 0 : 1;

  if (suite !== 'latest') {
    // WebGPU is probed only when it is wanted; asked for alone (--backend webgpu) it must open,
    // as for train, rather than leave a table with nothing measured.
    const gpu = wanted === 'cpu' ? undefined : await selectBackend(wanted === 'webgpu' ? 'webgpu' : 'auto');
    const webgpuDevice = gpu && !gpu.fallbackReason ? gpu.device : undefined;
    io.out(`score steps (demo model: SSM-VR, MLP 64×64, batch 256; annealed Langevin over 1000 samples), ${steps} timed steps each:`);
    const rows: string[][] = [['backend', 'first train step ms', 'train ms/step', 'train steps/s', 'sample ms/step']];
    const devices: { name: string; device: string | undefined; description: string; why?: string }[] = [];
    if (wanted !== 'webgpu') devices.push({ name: 'cpu', device: 'cpu', description: 'cpu' });
    if (wanted !== 'cpu') devices.push({ name: 'webgpu', device: webgpuDevice, description: gpu?.description ?? 'webgpu', why: gpu?.fallbackReason });
    for (const d of devices) {
      if (!d.device) {
        rows.push([d.name, `not available: ${d.why ?? 'no adapter'}`, '', '', '']);
        continue;
      }
      const t = await timeDemoSteps(d.device, steps);
      rows.push([d.description, fmt(t.firstTrainMs), fmt(t.trainMs), fmt(1000 / t.trainMs), fmt(t.sampleMs)]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) io.out(`  ${r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()}`);
  }

  if (suite !== 'score') {
    io.out('');
    io.out('side-by-side results of the benchmark suite (pnpm bench; scorch bench --suite peers runs it afresh):');
    if (runSuite(['--show'], io, true) !== 0) return 1;
  }
  return 0;
}
