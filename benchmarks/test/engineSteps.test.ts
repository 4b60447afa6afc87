// The timed step of each engine adapter, called directly on small workloads (no suite, no
// workers): agreement.test.ts checks each engine's value(), and nothing there checks that step(),
// the code the suite times, does the same work. Here: step() is the training step value() runs
// (loss, gradients and the Adam update), Langevin draws fresh noise at every step and runs
// stepsPerRep steps a repetition, a step has computed its result when it returns, and PyTorch's
// worker warms up, multiplies in float32 and keeps to one thread as its row says.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type Inputs, encodeInputs, makeInputs } from '../src/inputs.js';
import { ENGINES } from '../src/engines.js';
import { pythonExecutable, startWorker } from '../src/workerHost.js';
import { type CaseSpec, HVP_CASE, matmulCase } from '../src/workloads.js';
import { expectFreshNoise, expectSameSteps, expectStepIsValueStep, langevinMeanSquares, noiseLangevin, noiseLangevinInputs, startEngines, torchInstalled, trainingCases } from './adapterSteps.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const torchWorker = resolve(here, '..', 'src', 'engines', 'torch_worker.py');
const scratch = mkdtempSync(join(tmpdir(), 'scorch-engine-steps-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const matmul = matmulCase(512);
const hvp = { ...HVP_CASE, id: 'hvp-8192', batch: 8192 } as CaseSpec;
// The fewest flops each step can cost, and a rate one thread of WebAssembly SIMD or of PyTorch's
// CPU kernels cannot reach: 128-bit vectors without fused multiply-add do at most 16 float32 flops
// a cycle, 96 GFLOP/s at 6 GHz (this machine's SIMD bound is 52–57). A step faster than that has
// returned before its work was done (jax-js dispatches lazily: blockUntilReady).
const FLOPS_CEILING = 200e9;
const matmulFlops = 2 * 512 ** 3;
const hvpFlops = 3 * 2 * 8192 * (2 * 128 + 128 * 128 + 128 * 2); // at least three passes of the network

/**
 * Runs `script` in Python with the PyTorch worker's module loaded as `tw` (and json imported), in
 * this process's environment plus `env`; returns its last line of output, parsed as JSON.
 */
function python(script: string, env: Record<string, string> = {}): unknown {
  const code = `
import importlib.util, json
s = importlib.util.spec_from_file_location('tw', ${JSON.stringify(torchWorker)}); tw = importlib.util.module_from_spec(s); s.loader.exec_module(tw)
${script}`;
  const r = spawnSync(pythonExecutable(), ['-c', code], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** The PyTorch worker's Engine on one thread, driven from Python: `script` sees `engine`, `spec`, `path` and prints JSON. */
function torchRun(spec: CaseSpec, inputs: Inputs, script: string): unknown {
  const path = join(scratch, `${spec.id}.bin`);
  writeFileSync(path, encodeInputs(inputs));
  return python(`
engine = tw.Engine('1', 'cpu'); assert engine.hello()['available']
spec = json.loads(${JSON.stringify(JSON.stringify(spec))}); path = ${JSON.stringify(path)}
${script}`, { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' });
}

describe('each engine adapter\'s timed step (scorch CPU, TF.js cpu, jax-js wasm, PyTorch CPU)', async () => {
  const engines = await startEngines(['scorch-cpu', 'tfjs-cpu', 'jaxjs-wasm']);

  it('is the training step the value check checked: loss, gradients and Adam (value, 2 steps, value = 4 values)', async () => {
    // value() returns the loss before and after one Adam step, which it takes: so value, step,
    // step, value must end where four value() calls do, and a step that skips the gradients or
    // the update, or draws other noise, ends elsewhere. (The suite calls value() once; here it
    // is called again only to take the same step by the route the value check took.)
    for (const [id, engine] of engines) {
      for (const spec of trainingCases) await expectStepIsValueStep(`${id} ${spec.id}`, engine, spec, makeInputs);
    }
    if (!torchInstalled()) return;
    for (const spec of trainingCases) {
      const [stepped, valued] = torchRun(spec, makeInputs(spec), `
value, step = engine.prepare(spec, path); value(); step(); step(); a = value()
value, step = engine.prepare(spec, path); value(); value(); value(); b = value()
print(json.dumps([a, b]))`) as number[][];
      expectSameSteps(`torch ${spec.id}`, stepped!, valued!);
    }
  }, 400_000);

  it('draws fresh noise at every Langevin step and runs stepsPerRep steps per repetition', async () => {
    const k = 3;
    for (const [id, engine] of engines) expectFreshNoise(id, await langevinMeanSquares(engine, makeInputs, k));
    if (!torchInstalled()) return;
    expectFreshNoise('torch', torchRun(noiseLangevin, noiseLangevinInputs(makeInputs), `
value, step = engine.prepare(spec, path); out = []
for _ in range(${k}):
    step(); out.append(value()[2])
print(json.dumps(out))`) as number[]);
  }, 400_000);

  it('has computed its result when it returns (no faster than 200 GFLOP/s on one thread)', async () => {
    for (const [spec, flops] of [[matmul, matmulFlops], [hvp, hvpFlops]] as const) {
      for (const [id, engine] of engines) {
        // TF.js's cpu backend computes every op when it is called; its HVP at this batch takes ~10 s a step.
        if (id === 'tfjs-cpu' && spec === hvp) continue;
        const p = await engine.prepare(spec, makeInputs(spec));
        await p.value();
        const times: number[] = [];
        for (let r = 0; r < 3; r++) {
          const start = performance.now();
          await p.step();
          times.push(performance.now() - start);
        }
        p.dispose();
        expect(Math.min(...times), `${id} ${spec.id}: ${times.map((t) => t.toFixed(3)).join(', ')} ms`).toBeGreaterThan((flops / FLOPS_CEILING) * 1e3);
      }
    }
  }, 400_000);

  it.runIf(torchInstalled())('PyTorch: hello warms the allocator with a 2048×2048 product before any case is prepared', () => {
    // Every torch.randn the worker's hello calls, by shape (the worker imports torch in hello).
    const shapes = python(`
import torch
shapes = []
real = torch.randn
torch.randn = lambda *a, **k: (shapes.append(list(a)), real(*a, **k))[1]
assert tw.Engine('1', 'cpu').hello()['available']
print(json.dumps(shapes))`);
    expect(shapes).toContainEqual([2048, 2048]);
  }, 400_000);

  it.runIf(torchInstalled())('PyTorch: the matmul step multiplies the case\'s float32 n×n operands, as the value check does', () => {
    const spec = { ...matmulCase(64), id: 'mm64' } as CaseSpec;
    const ops = torchRun(spec, makeInputs(spec), `
from torch.utils._python_dispatch import TorchDispatchMode
class Record(TorchDispatchMode):
    def __init__(self): super().__init__(); self.ops = []
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append([str(func), [str(a.dtype) for a in args if isinstance(a, tw.torch.Tensor)], [list(a.shape) for a in args if isinstance(a, tw.torch.Tensor)]])
        return func(*args, **(kwargs or {}))
value, step = engine.prepare(spec, path); value()
with Record() as r:
    step()
print(json.dumps(r.ops))`) as [string, string[], number[][]][];
    const products = ops.filter(([name]) => /\b(mm|matmul)\b/.test(name));
    expect(products, JSON.stringify(ops)).toEqual([[expect.any(String), ['torch.float32', 'torch.float32'], [[64, 64], [64, 64]]]]);
    expect(ops.filter(([, dtypes]) => dtypes.some((d) => d !== 'torch.float32')), JSON.stringify(ops)).toEqual([]);
  }, 400_000);

  it.runIf(torchInstalled())('PyTorch, 1 thread: torch, its inter-op pool and OpenBLAS on one thread, whatever the environment asks', async () => {
    // The worker as the suite starts it, from a parent whose environment asks for 4 threads.
    const names = ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'] as const;
    const saved = names.map((n) => process.env[n]);
    for (const n of names) process.env[n] = '4';
    const worker = startWorker(ENGINES['torch-cpu-1t'], resolve(here, '..', '..'), '', scratch);
    try {
      const hello = await worker.request<{ threads: string; details: Record<string, unknown> }>({ op: 'hello' }, 120_000);
      expect(hello.threads).toMatch(/^torch 1(, OpenBLAS 1)?$/);
      expect(hello.details).toMatchObject({ interopThreads: 1 });
    } finally {
      await worker.close();
      names.forEach((n, i) => (saved[i] === undefined ? delete process.env[n] : (process.env[n] = saved[i])));
    }
    // The worker's own setting, as when it is run by hand (torch_worker.py --threads 1) under OMP_NUM_THREADS=4.
    const threads = python(`
assert tw.Engine('1', 'cpu').hello()['available']
print(tw.torch.get_num_threads())`, { OMP_NUM_THREADS: '4' });
    expect(threads).toBe(1);
  }, 400_000);
});
