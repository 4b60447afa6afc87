// What a run writes, recomputed from what it wrote: metrics.json's sample metrics from samples.json
// against the run's reference data, its mode-weight error and relative Fisher divergence from its
// own fields, the final loss from the checkpoint's history, a resumed run's loss chart equal to the
// uninterrupted run's, and a resumed run's checkpoints at the multiples of --checkpoint-every.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensor } from '@scorch/tensor';
import { datasetEntry, energyDistance, mmd2 } from '@scorch/score';
import { runKeys } from '../src/sampling.js';
import { runMain } from './runMain.js';

const scratch = mkdtempSync(join(tmpdir(), 'scorch-run-outputs-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const run = ['--backend', 'cpu', '--steps', '30', '--batch', '16', '--hidden', '8', '--log-every', '5', '--n', '40', '--steps-per-level', '2', '--seed', '2'];
const whole = join(scratch, 'whole');
const stopped = join(scratch, 'stopped');
const resumed = join(scratch, 'resumed');

beforeAll(async () => {
  for (const [args, dir] of [[run, whole], [[...run, '--stop-after', '15'], stopped]] as const) {
    const r = await runMain('train', ...args, '--out', dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  }
  const r = await runMain('train', '--resume', stopped, '--backend', 'cpu', '--n', '40', '--steps-per-level', '2', '--out', resumed);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}, 120_000);

describe('a run\'s outputs', () => {
  it('a resumed run draws the whole run\'s loss curve (loss.svg), not only the steps it trained', () => {
    expect(readFileSync(join(resumed, 'loss.svg'), 'utf8')).toBe(readFileSync(join(whole, 'loss.svg'), 'utf8'));
  });

  it('metrics.json\'s MMD² and energy distance (with their null s.e.) are those of samples.json against the run\'s reference data', async () => {
    const metrics = JSON.parse(readFileSync(join(whole, 'metrics.json'), 'utf8'));
    const points = JSON.parse(readFileSync(join(whole, 'samples.json'), 'utf8')).points as [number, number][];
    const samples = tensor(points.flat(), { shape: [points.length, 2], dtype: 'float32' });
    const reference = datasetEntry('mixture').dataset.sample(points.length, { key: runKeys(2).reference });
    const e = await energyDistance(samples, reference);
    const m = await mmd2(samples, reference);
    expect(metrics.energyDistance.value).toBeCloseTo(e.value, 6);
    expect(metrics.energyDistance.nullStandardError).toBeCloseTo(e.nullStandardError, 6);
    expect(metrics.mmd2.nullStandardError).toBeCloseTo(m.nullStandardError, 6);
  });
  it('metrics.json\'s mode-weight error is the largest one, and the relative Fisher divergence is value / zero score\'s', () => {
    const metrics = JSON.parse(readFileSync(join(whole, 'metrics.json'), 'utf8'));
    const w = metrics.modeWeights;
    expect(w.largestError).toBeCloseTo(Math.max(...w.samples.map((x: number, k: number) => Math.abs(x - w.true[k]))), 12);
    const f = metrics.fisherDivergence;
    expect(f.relative).toBeCloseTo(f.value / f.zeroScoreValue, 12);
  });
  it('metrics.json\'s final loss is the last loss read (the checkpoint history\'s last), for a run and a resumed one', () => {
    for (const dir of [whole, resumed]) {
      const history = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')).training.history;
      expect(JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')).training.finalLoss).toBe(history.at(-1).loss);
    }
  });
  it('a resumed run with --checkpoint-every K writes its checkpoints at the multiples of K (killed, it resumes from one)', async () => {
    const bin = fileURLToPath(new URL('../bin/scorch.mjs', import.meta.url));
    const common = ['--backend', 'cpu', '--batch', '16', '--hidden', '8', '--n', '20', '--steps-per-level', '2', '--seed', '4'];
    const first = join(scratch, 'k-first');
    const r = await runMain('train', ...common, '--steps', '600', '--stop-after', '15', '--out', first);
    expect(r.code).toBe(0);
    const killed = join(scratch, 'k-killed');
    const result = await new Promise<NodeJS.Signals | null>((done) => {
      const child = spawn(process.execPath, [bin, 'train', '--resume', first, '--backend', 'cpu', '--n', '20', '--steps-per-level', '2', '--checkpoint-every', '20', '--out', killed]);
      let stdout = '';
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        if (/^train: .* steps\/s/m.test(stdout)) child.kill('SIGKILL');
      });
      child.on('close', (_code, signal) => done(signal));
    });
    expect(result).toBe('SIGKILL');
    const steps = JSON.parse(readFileSync(join(killed, 'checkpoint.json'), 'utf8')).training.steps;
    expect(steps).toBeGreaterThan(15);
    expect(steps % 20).toBe(0);
  }, 60_000);
});
