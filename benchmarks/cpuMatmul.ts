// Benchmark: float32 square matrix product C = A·B at 128, 256 and 512 on the CPU, scorch's CPU
// backend (through the public matmul) against TensorFlow.js's CPU backend (tf.matMul, plain
// JavaScript like ours, in production mode). Each timed call includes reading the result back
// with dataSync(). Both libraries get the same inputs, the same warm-up and the same number of
// timed repetitions, alternating call by call (and which goes first) so that load from other
// processes hits both alike; the figure per size is the median. GFLOP/s counts 2·n³ flops.
// Prints a table and writes benchmarks/results/cpu-matmul.json.
//
// Run from the repository root: pnpm bench:matmul-cpu (node scripts/run.mjs benchmarks/cpuMatmul.ts).

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { matmul, randn, randomKey } from '@scorch/tensor';

/** The workspace root (where pnpm-workspace.yaml is), found upwards from the working directory. */
function workspaceRoot(): string {
  let dir = process.cwd();
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cpuMatmul: run this from inside the scorch repository');
    dir = up;
  }
  return dir;
}
const repoRoot = workspaceRoot();

const SIZES = [128, 256, 512];
const WARMUP_CALLS = 3;
const TIMED_CALLS = 9;

interface LibraryFigures {
  medianMs: number;
  gflops: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

interface SizeFigures {
  size: number;
  flops: number;
  scorch: LibraryFigures;
  tfjs: LibraryFigures;
  /** scorch GFLOP/s over tfjs GFLOP/s (medians). */
  ratio: number;
}

function median(sorted: readonly number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function summarize(samplesMs: number[], flops: number): LibraryFigures {
  const sorted = [...samplesMs].sort((x, y) => x - y);
  const medianMs = median(sorted);
  return { medianMs, gflops: flops / (medianMs * 1e6), minMs: sorted[0]!, maxMs: sorted[sorted.length - 1]!, samplesMs };
}

function timeMs(run: () => void): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}

async function main(): Promise<void> {
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const loadBefore = loadavg();
  const results: SizeFigures[] = [];

  for (const size of SIZES) {
    const flops = 2 * size ** 3;
    const a = randn([size, size], { key: randomKey(2 * size) });
    const b = randn([size, size], { key: randomKey(2 * size + 1) });
    const tfA = tf.tensor2d(a.dataSync() as Float32Array, [size, size], 'float32');
    const tfB = tf.tensor2d(b.dataSync() as Float32Array, [size, size], 'float32');

    const runScorch = (): void => {
      const c = matmul(a, b);
      c.dataSync();
      c.dispose();
    };
    const runTfjs = (): void => {
      const c = tf.matMul(tfA, tfB);
      c.dataSync();
      c.dispose();
    };

    for (let i = 0; i < WARMUP_CALLS; i++) {
      runScorch();
      runTfjs();
    }
    const scorchMs: number[] = [];
    const tfjsMs: number[] = [];
    for (let i = 0; i < TIMED_CALLS; i++) {
      if (i % 2 === 0) {
        scorchMs.push(timeMs(runScorch));
        tfjsMs.push(timeMs(runTfjs));
      } else {
        tfjsMs.push(timeMs(runTfjs));
        scorchMs.push(timeMs(runScorch));
      }
    }
    a.dispose();
    b.dispose();
    tfA.dispose();
    tfB.dispose();

    const scorch = summarize(scorchMs, flops);
    const tfjs = summarize(tfjsMs, flops);
    results.push({ size, flops, scorch, tfjs, ratio: scorch.gflops / tfjs.gflops });
  }

  const cpuList = cpus();
  const report = {
    benchmark: 'float32 square matmul, CPU, scorch vs @tensorflow/tfjs-backend-cpu',
    date: new Date().toISOString(),
    machine: {
      cpu: cpuList[0]?.model ?? 'unknown',
      cores: cpuList.length,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg(),
    },
    node: process.version,
    tfjs: tf.version_core,
    method: { warmupCalls: WARMUP_CALLS, timedCalls: TIMED_CALLS, statistic: 'median', interleaved: true, includesDataSync: true },
    sizes: results,
  };

  const header = ['size', 'scorch GFLOP/s', 'tfjs GFLOP/s', 'ratio', 'scorch ms (min–max)', 'tfjs ms (min–max)'];
  const rows = results.map((r) => [
    String(r.size),
    r.scorch.gflops.toFixed(2),
    r.tfjs.gflops.toFixed(2),
    `${r.ratio.toFixed(2)}×`,
    `${r.scorch.medianMs.toFixed(2)} (${r.scorch.minMs.toFixed(2)}–${r.scorch.maxMs.toFixed(2)})`,
    `${r.tfjs.medianMs.toFixed(2)} (${r.tfjs.minMs.toFixed(2)}–${r.tfjs.maxMs.toFixed(2)})`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padStart(widths[i]!)).join('  ');
  console.log(`${report.machine.cpu}, ${report.machine.cores} cores, Node ${report.node}, tfjs ${report.tfjs}`);
  console.log(line(header));
  for (const row of rows) console.log(line(row));

  const outDir = join(repoRoot, 'benchmarks', 'results');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, 'cpu-matmul.json');
  writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${outFile}`);
}

await main();
