#!/usr/bin/env node
// Maintenance tool: trains every (data set, objective) pair of the registry at its defaults with
// `scorch train`, one run at a time, and tabulates how close the samples come to the data —
// MMD² against fresh data, its standard error under "same law", their ratio, and the wall time.
// Run it after changing a default (steps, noise, sampler settings) to see which pairs it moved;
// the help text's "known hard pairs" should name exactly the pairs that stay above 3 s.e.
//
//   node scripts/sweepDefaults.mjs [--data a,b] [--loss a,b] [--seeds 0,1,2] [--backend cpu]
//                                  [--out DIR] [--json FILE] [--resume] [-- extra train flags]
//   node scripts/sweepDefaults.mjs --merge a.json,b.json,…   (no runs: one table, later files win)
//
// --merge prints one table of the latest run of each (data, objective, seed) across sweep files
// given oldest first, in the registry's order — for re-measuring only the pairs a change moved.
// Each run is `nice -n 10` (the table is a measurement; the machine is shared) and goes to
// DIR/<data>-<loss>-s<seed> (default DIR: a fresh folder under the system's temp directory). The
// CLI is bundled once, up front, into a snapshot that every run imports, so editing sources while
// a long sweep runs does not change the code it measures. Results are appended to the JSON file
// after every run (so --resume can skip finished pairs) and printed as a markdown table at the end.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shim = join(root, 'packages/cli/bin/scorch.mjs');

function parse(argv) {
  const opts = { data: undefined, loss: undefined, seeds: [0], backend: 'cpu', out: undefined, json: undefined, resume: false, merge: undefined, extra: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`sweepDefaults: ${a} needs a value`);
      return v;
    };
    if (a === '--') { opts.extra = argv.slice(i + 1); break; }
    else if (a === '--data') opts.data = next().split(',');
    else if (a === '--loss') opts.loss = next().split(',');
    else if (a === '--seeds') opts.seeds = next().split(',').map(Number);
    else if (a === '--backend') opts.backend = next();
    else if (a === '--out') opts.out = next();
    else if (a === '--json') opts.json = next();
    else if (a === '--resume') opts.resume = true;
    else if (a === '--merge') opts.merge = next().split(',');
    else throw new Error(`sweepDefaults: unknown argument '${a}' (see the header of this file)`);
  }
  return opts;
}

const opts = parse(process.argv.slice(2));

const fmt = (v) => (Math.abs(v) < 1e-3 ? v.toExponential(1) : v.toFixed(4));
function printTable(rows) {
  console.log('| data | objective | sampler | seed | MMD² | s.e. | MMD²/s.e. | time (s) |');
  console.log('| --- | --- | --- | --- | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    if (!r.ok) console.log(`| ${r.data} | ${r.loss} | — | ${r.seed} | failed | | | ${r.seconds.toFixed(0)} |`);
    else console.log(`| ${r.data} | ${r.loss} | ${r.sampler} | ${r.seed} | ${fmt(r.mmd2)} | ${fmt(r.se)} | ${r.ratio.toFixed(1)}${r.ratio > 3 ? ' ✗' : ''} | ${r.seconds.toFixed(0)} |`);
  }
}

// Building the bundle is the shim's job: ask it for --help (which rebuilds when stale), then
// freeze a copy beside it so npm packages still resolve from the CLI's own node_modules.
const built = spawnSync(process.execPath, [shim, '--help'], { encoding: 'utf8' });
if (built.status !== 0) throw new Error(`sweepDefaults: building the CLI failed:\n${built.stderr}`);
const snapshot = join(root, 'packages/cli/dist', `sweep-snapshot-${process.pid}.mjs`);
copyFileSync(join(root, 'packages/cli/dist/scorch.mjs'), snapshot);
process.on('exit', () => rmSync(snapshot, { force: true }));
// Stopped by a signal the process does not exit normally: exit, so the snapshot goes too (once
// the run in progress returns — spawnSync holds the event loop until then).
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

// The registry's names, read from the snapshot's own --help so the sweep and the CLI agree.
const snapshotUrl = JSON.stringify(pathToFileURL(snapshot).href);
const names = (flag) => {
  const help = spawnSync(process.execPath, ['--input-type=module', '-e', `const { main } = await import(${snapshotUrl}); process.exitCode = await main(['train', '--help']);`], { encoding: 'utf8' });
  const match = help.stdout.replace(/\s+/g, ' ').match(new RegExp(`--${flag} NAME .*?\\(([a-z0-9 |-]+)\\)\\. Default`));
  if (!match) throw new Error(`sweepDefaults: could not read the choices of --${flag} from 'scorch train --help'`);
  return match[1].split(' | ');
};
if (opts.merge) {
  // Runs made with extra train flags are not runs at the defaults: refused, not mixed in.
  const latest = new Map();
  for (const file of opts.merge) {
    const sweep = JSON.parse(readFileSync(file, 'utf8'));
    if (sweep.extra?.length) throw new Error(`sweepDefaults: ${file} was run with extra flags (${sweep.extra.join(' ')}), not at the defaults`);
    for (const r of sweep.runs) latest.set(`${r.data}/${r.loss}/${r.seed}`, r);
  }
  printTable(orderedByRegistry([...latest.values()]));
  process.exit(0);
}

/** Rows in the order of the registry's data sets, then objectives, then seeds (read from --help). */
function orderedByRegistry(rows) {
  const data = names('data');
  const losses = names('loss');
  return rows.sort((a, b) => data.indexOf(a.data) - data.indexOf(b.data) || losses.indexOf(a.loss) - losses.indexOf(b.loss) || a.seed - b.seed);
}

const datasets = opts.data ?? names('data');
const losses = opts.loss ?? names('loss');

const outRoot = resolve(opts.out ?? mkdtempSync(join(tmpdir(), 'scorch-sweep-')));
mkdirSync(outRoot, { recursive: true });
const jsonPath = resolve(opts.json ?? join(outRoot, 'sweep.json'));
const results = opts.resume && existsSync(jsonPath) ? JSON.parse(readFileSync(jsonPath, 'utf8')).runs : [];
const done = new Set(results.map((r) => `${r.data}/${r.loss}/${r.seed}`));

const save = () => writeFileSync(jsonPath, `${JSON.stringify({ format: 'scorch-sweep/v1', backend: opts.backend, extra: opts.extra, runs: results }, null, 1)}\n`);

console.error(`sweep: ${datasets.length} data sets × ${losses.length} objectives × ${opts.seeds.length} seed(s) into ${outRoot}; results in ${jsonPath}`);
for (const data of datasets) {
  for (const loss of losses) {
    for (const seed of opts.seeds) {
      if (done.has(`${data}/${loss}/${seed}`)) continue;
      const dir = join(outRoot, `${data}-${loss}-s${seed}`);
      const args = ['train', '--data', data, '--loss', loss, '--backend', opts.backend, '--seed', String(seed), '--out', dir, '--force', ...opts.extra];
      const started = Date.now();
      const run = spawnSync('nice', ['-n', '10', process.execPath, '--input-type=module', '-e',
        `const { main } = await import(${snapshotUrl}); process.exit(await main(${JSON.stringify(args)}));`], { encoding: 'utf8', maxBuffer: 1 << 26 });
      const seconds = (Date.now() - started) / 1000;
      const row = { data, loss, seed, seconds, ok: run.status === 0 };
      if (row.ok) {
        const m = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
        Object.assign(row, {
          mmd2: m.mmd2.value,
          se: m.mmd2.nullStandardError,
          ratio: m.mmd2.value / m.mmd2.nullStandardError,
          trainSeconds: m.training?.seconds ?? null,
          sampleSeconds: m.sampling.seconds,
          sampler: m.sampler,
        });
      } else {
        row.error = (run.stderr || run.stdout).trim().split('\n').slice(-3).join(' ');
      }
      results.push(row);
      save();
      console.error(row.ok ? `${data} ${loss} s${seed}: MMD² ${row.mmd2.toExponential(2)} = ${row.ratio.toFixed(1)} s.e. (${seconds.toFixed(0)} s)` : `${data} ${loss} s${seed}: failed: ${row.error}`);
    }
  }
}

printTable(results);
