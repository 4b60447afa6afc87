// scorch-WebGPU against TensorFlow.js-WebGPU on the same Dawn adapter, in one process: float32
// matmul GFLOP/s at 256/512/1024 and elementwise add GB/s. Each timing is the median of several
// repetitions, each ending with a one-element read back so that the GPU work is really done.
// Writes benchmarks/results/webgpu-matmul.json.
// Run: node scripts/run.mjs benchmarks/webgpuMatmul.ts [--reps 7]

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { randn, randomKey, type Tensor } from '@scorch/tensor';
import { initWebGPU } from '@scorch/kernels';

const benchDir = resolve(process.cwd(), 'benchmarks');
/** npm packages resolve from this workspace package (scripts/run.mjs bundles beside the entry). */
const importPackage = async <T>(name: string): Promise<T> => (await import(name)) as T;

const repsArg = process.argv.indexOf('--reps');
const reps = repsArg >= 0 ? Number(process.argv[repsArg + 1]) : 7;
const sizes = [256, 512, 1024];
const addElements = 1 << 22;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeIt(run: () => Promise<void>): Promise<number> {
  await run(); // warm-up: pipeline compilation, buffer pool
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

interface Row {
  op: string;
  size: number;
  scorchMs: number;
  tfjsMs: number;
  scorchRate: number;
  tfjsRate: number;
  unit: string;
}

// One Dawn instance and adapter kind for both libraries: the compatibility-mode OpenGL adapter
// (llvmpipe) on machines without a GPU, as initWebGPU would pick.
process.env.EGL_PLATFORM = 'surfaceless';
const dawn = await importPackage<{ create: (flags: string[]) => GPU; globals: object }>('webgpu');
// TensorFlow.js uses GPUBufferUsage, GPUMapMode, ... as globals, as in a browser.
Object.assign(globalThis, dawn.globals);
const coreGpu = dawn.create([]);
const coreAdapter = await coreGpu.requestAdapter();
const gpu = coreAdapter ? coreGpu : dawn.create(['backend=opengl']);
const featureLevel = coreAdapter ? 'core' : 'compatibility';

const scorch = await initWebGPU({ gpu, forceCompatibility: featureLevel === 'compatibility' });
console.log(`adapter: ${scorch.info.description} (${scorch.info.device}), backend ${scorch.info.backend}, ${scorch.info.featureLevel}`);

// TensorFlow.js looks for navigator.gpu when its module loads and asks for a core adapter;
// the wrapper adds the feature level this adapter needs.
const requestAdapter = gpu.requestAdapter.bind(gpu);
const gpuForTfjs = {
  requestAdapter: (opts: GPURequestAdapterOptions = {}) => requestAdapter({ ...opts, featureLevel }),
  getPreferredCanvasFormat: () => 'rgba8unorm',
  wgslLanguageFeatures: gpu.wgslLanguageFeatures,
};
Object.defineProperty(globalThis, 'navigator', { value: { gpu: gpuForTfjs, userAgent: 'node' }, configurable: true });
type Tf = typeof import('@tensorflow/tfjs-core');
const tf = await importPackage<Tf>('@tensorflow/tfjs-core');
await importPackage('@tensorflow/tfjs-backend-webgpu');
await tf.setBackend('webgpu');
await tf.ready();
console.log(`tfjs backend: ${tf.getBackend()} ${tf.version_core}`);

const rows: Row[] = [];

for (const n of sizes) {
  const a = randn([n, n], { key: randomKey(1), device: scorch.device });
  const b = randn([n, n], { key: randomKey(2), device: scorch.device });
  const scorchMs = await timeIt(async () => {
    const c = a.matmul(b);
    const corner = c.slice([0, 0], [1, 1]);
    await corner.data();
    corner.dispose();
    c.dispose();
  });
  const ta = tf.randomNormal([n, n]);
  const tb = tf.randomNormal([n, n]);
  const tfjsMs = await timeIt(async () => {
    const c = tf.matMul(ta, tb);
    const corner = tf.slice(c, [0, 0], [1, 1]);
    await corner.data();
    corner.dispose();
    c.dispose();
  });
  ta.dispose();
  tb.dispose();
  a.dispose();
  b.dispose();
  const flops = 2 * n ** 3;
  rows.push({ op: 'matmul', size: n, scorchMs, tfjsMs, scorchRate: flops / scorchMs / 1e6, tfjsRate: flops / tfjsMs / 1e6, unit: 'GFLOP/s' });
}

{
  const n = addElements;
  const a = randn([n], { key: randomKey(3), device: scorch.device });
  const b = randn([n], { key: randomKey(4), device: scorch.device });
  const scorchMs = await timeIt(async () => {
    const c: Tensor = a.add(b);
    const first = c.slice([0], [1]);
    await first.data();
    first.dispose();
    c.dispose();
  });
  const ta = tf.randomNormal([n]);
  const tb = tf.randomNormal([n]);
  const tfjsMs = await timeIt(async () => {
    const c = tf.add(ta, tb);
    const first = tf.slice(c, [0], [1]);
    await first.data();
    first.dispose();
    c.dispose();
  });
  // Bytes moved: two inputs read, one output written.
  const bytes = 3 * 4 * n;
  rows.push({ op: 'add', size: n, scorchMs, tfjsMs, scorchRate: bytes / scorchMs / 1e6, tfjsRate: bytes / tfjsMs / 1e6, unit: 'GB/s' });
}

console.log('\nop      size      scorch ms  tfjs ms   scorch     tfjs       ratio');
for (const r of rows) {
  console.log(
    `${r.op.padEnd(7)} ${String(r.size).padEnd(9)} ${r.scorchMs.toFixed(2).padStart(9)} ${r.tfjsMs.toFixed(2).padStart(8)}  ` +
      `${r.scorchRate.toFixed(2).padStart(7)} ${r.unit.padEnd(7)} ${r.tfjsRate.toFixed(2).padStart(7)}  ${(r.scorchRate / r.tfjsRate).toFixed(2)}x`,
  );
}

const out = resolve(benchDir, 'results', 'webgpu-matmul.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  JSON.stringify(
    {
      adapter: scorch.info,
      tfjs: tf.version_core,
      repetitions: reps,
      // Software adapters share the CPU with everything else: the load says how quiet it was.
      cpus: cpus().length,
      loadAverage1m: loadavg()[0],
      statistic: 'median wall time per call, including a one-element readback',
      date: new Date().toISOString(),
      rows,
    },
    null,
    2,
  ) + '\n',
);
console.log(`\nload average (1 min) ${loadavg()[0]!.toFixed(2)} on ${cpus().length} CPUs; wrote ${out}`);
process.exit(0);
