// `pnpm bench`: scorch beside TensorFlow.js, jax-js and PyTorch on the same work, in one run.
// Runs every workload (benchmarks/src/workloads.ts) on every engine that can run here, checks
// that their values agree, times them interleaved, prints one table per case, and writes
// benchmarks/results/<date>-<machine>[-quick].json and .svg. A complete full run (no --quick, no
// --workloads or --engines filter) whose workers all started and whose rows all passed also becomes
// latest.json/latest.svg and rewrites the READMEs' result tables (results.ts, latestRefusal).
//
//   pnpm bench [--quick] [--workloads matmul,ssmvr,...] [--engines scorch-cpu,tfjs-wasm,...]
//   pnpm bench --relaxed-simd    every Node engine with relaxed SIMD on (Chrome 114+'s and Node 22+'s
//                                default; a V8 flag on Node 20): written as <...>-relaxed-simd.json,
//                                never latest.json
//   pnpm bench --show [FILE]     print a results file (default latest.json) without running
//   pnpm bench --rerender        rewrite every chart from its JSON, and the READMEs' tables from latest.json
//   pnpm bench --list            the workloads and engines
//
// Set-up for the peers: bash scripts/setup.sh (it runs scripts/setup-peers.sh). See benchmarks/README.md.

import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { type Args, USAGE, UsageError, parseArgs } from './src/args.js';
import { renderChart } from './src/chart.js';
import { ENGINES, ENGINE_IDS } from './src/engines.js';
import { updateReadmes } from './src/readme.js';
import { textReport } from './src/report.js';
import { type SuiteResults, latestJsonPath, latestRefusal, latestSvgPath, readResults, resultsDir, runFailures, writeResults } from './src/results.js';
import { RelaxedSimdError, runSuite } from './src/suite.js';
import { relaxedSimdNodeFlags } from './src/simdPeak.js';
import { scratchDir } from './src/workerHost.js';
import { WORKLOADS, WORKLOAD_IDS, planFor } from './src/workloads.js';

function repoRoot(): string {
  let dir = process.cwd();
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('bench: run this from inside the scorch repository (no pnpm-workspace.yaml above the working directory)');
    dir = up;
  }
  return dir;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`bench: ${e.message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const root = repoRoot();
  if (args.list) {
    for (const id of WORKLOAD_IDS) console.log(`${id.padEnd(10)} ${WORKLOADS[id].code} ${WORKLOADS[id].title} (${WORKLOADS[id].unit})`);
    const width = Math.max(...ENGINE_IDS.map((id) => id.length)) + 1;
    for (const id of ENGINE_IDS) console.log(`${id.padEnd(width)} ${ENGINES[id].label}`);
    return 0;
  }
  if (args.rerender) {
    // After a change to the tables or the chart: everything generated from the results, again.
    const dir = resultsDir(root);
    const latest = readResults(latestJsonPath(root));
    // The READMEs show the record: a latest.json that may not be one (copied by hand) is not
    // rendered, and nothing else is rewritten either.
    const refusal = latestRefusal(latest);
    if (refusal) {
      console.error(`bench: ${relative(process.cwd(), latestJsonPath(root))} is not a run that may be the record (${refusal}); nothing was rewritten`);
      return 1;
    }
    const runs = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'latest.json');
    for (const file of runs) writeFileSync(join(dir, file.replace(/\.json$/, '.svg')), renderChart(readResults(join(dir, file))));
    writeFileSync(latestSvgPath(root), renderChart(latest));
    const changed = updateReadmes(root, latest);
    console.log(`rewrote the charts of ${runs.length} run(s) and latest.svg; ${changed.length > 0 ? `updated ${changed.join(' and ')}` : 'the READMEs already showed latest.json'}`);
    return 0;
  }
  if (args.show !== undefined) {
    const path = args.show === true ? latestJsonPath(root) : args.show;
    let lines: string[];
    try {
      lines = textReport(readResults(path));
    } catch (e) {
      // A missing, unreadable or malformed file: what was wrong, not a stack trace.
      console.error(`bench: --show: ${(e as Error).message}`);
      return 2;
    }
    for (const line of lines) console.log(line);
    console.log(`\n(${relative(process.cwd(), path) || path})`);
    return 0;
  }

  const plan = planFor(args.quick ? 'quick' : 'full');
  if (args.reps) plan.reps = args.reps;
  const complete = !args.workloads && !args.engines;
  let relaxedSimd: { nodeFlags: string[] } | undefined;
  if (args.relaxedSimd) {
    try {
      relaxedSimd = { nodeFlags: relaxedSimdNodeFlags() };
    } catch (e) {
      console.error(`bench: --relaxed-simd: ${(e as Error).message}`);
      return 2;
    }
  }
  let results: SuiteResults;
  try {
    results = await runSuite({
      plan,
      engines: args.engines ?? ENGINE_IDS,
      workloads: args.workloads ?? WORKLOAD_IDS,
      complete,
      command: `pnpm bench ${process.argv.slice(2).join(' ')}`.trim(),
      repoRoot: root,
      log: (line) => console.error(line),
      ...(relaxedSimd ? { relaxedSimd } : {}),
    });
  } catch (e) {
    if (!(e instanceof RelaxedSimdError)) throw e;
    console.error(`bench: ${e.message}`);
    return 2;
  }
  console.log('');
  for (const line of textReport(results)) console.log(line);

  // Partial runs are kept out of benchmarks/results: they are not the suite's record.
  const dir = complete ? resultsDir(root) : join(scratchDir(root), 'results');
  // Only a complete run without relaxed SIMD forced on is the record; others are kept under their own names.
  const files = writeResults(results, renderChart(results), dir);
  console.log(`\nwrote ${relative(root, files.json)} and ${relative(root, files.svg)}${files.latest ? ', updated latest.json and latest.svg' : `; latest.json is left alone: ${files.refusal}`}`);
  if (files.latest) {
    const changed = updateReadmes(root, results);
    if (changed.length > 0) console.log(`updated the results in ${changed.join(' and ')}`);
  }
  const { workers, rows } = runFailures(results);
  const failed = [...workers.map((e) => `${e.id}: its worker failed (${e.reason})`), ...rows.map(({ at, row }) => `${at}: ${row.status}`)];
  if (failed.length > 0) console.log(`\n${failed.length} engine(s) or row(s) failed: ${failed.join('; ')}`);
  return failed.length > 0 ? 1 : 0;
}

// Exit explicitly: a library's handle (a Dawn instance, a timer) must not keep the run alive.
process.exit(await main());
