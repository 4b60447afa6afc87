// What engineSteps.test.ts (the CPU adapters) and webgpuSteps.test.ts (the WebGPU adapters) share
// to check an adapter's timed step: the small training cases, the Langevin case whose spread
// shows fresh noise, and the comparison of value, step, step, value with four value() calls.
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';
import type { NodeEngineId } from '../src/engines.js';
import type { Engine } from '../src/engines/engine.js';
import { loadEngine } from '../src/loadEngine.js';
import type { Inputs } from '../src/inputs.js';
import { pythonExecutable } from '../src/workerHost.js';
import { type CaseSpec, DSM_CASE, HVP_CASE, SSMVR_CASE, convCase, ismCase, langevinCase, matmulCase } from '../src/workloads.js';

export const tinyNet = { dim: 2, hidden: 8 };

let torchImports: boolean | undefined;
/** Whether the suite's Python (pythonExecutable) imports torch: PyTorch's rows and checks run only then. Asked once a file. */
export function torchInstalled(): boolean {
  torchImports ??= spawnSync(pythonExecutable(), ['-c', 'import torch'], { timeout: 60_000 }).status === 0;
  return torchImports;
}

/** Engines `ids` made as the suite makes them (loadEngine) and started; each must start (its reason otherwise). */
export async function startEngines(ids: readonly NodeEngineId[]): Promise<[NodeEngineId, Engine][]> {
  const started: [NodeEngineId, Engine][] = [];
  for (const id of ids) {
    const engine = await loadEngine(id);
    const hello = await engine.hello();
    expect(hello.available ? '' : hello.reason, `${id} did not start`).toBe('');
    started.push([id, engine]);
  }
  return started;
}

/** SSM-VR, DSM and exact ISM on small networks and batches. */
export const trainingCases: CaseSpec[] = [
  { ...SSMVR_CASE, id: 'tiny-ssmvr', net: tinyNet, batch: 16 },
  { ...DSM_CASE, id: 'tiny-dsm', net: tinyNet, batch: 16 },
  { ...ismCase(3), id: 'tiny-ism', net: { dim: 3, hidden: 8 }, batch: 8 },
];

/** Every workload once, small: a product, the training objectives, Langevin, the HVP, a convolution forward and backward. */
export const tinyCases: CaseSpec[] = [
  { ...matmulCase(64), id: 'tiny-matmul' },
  ...trainingCases,
  { ...langevinCase(2, 1), id: 'tiny-langevin', net: tinyNet, particles: 64 },
  { ...HVP_CASE, id: 'tiny-hvp', net: tinyNet, batch: 16 },
  { ...convCase(false), id: 'tiny-conv', batch: 2, channels: 3, extent: 5 },
  { ...convCase(true), id: 'tiny-conv-bwd', batch: 2, channels: 3, extent: 5 },
];

/**
 * Langevin from x = 0, with zero noise in the check's steps: value() then reads the particles' own
 * mean squared norm, which after k repetitions of stepsPerRep steps of fresh N(0, I) noise is
 * about k·stepsPerRep·2α (d = 2), and k²·stepsPerRep²·2α if one noise were reused. One check level
 * (α = stepSize there too), so value()'s own step barely moves the particles. With 4,000
 * particles the mean of ‖x‖² has a relative spread of 1/√4000 ≈ 1.6%; the window 0.8–1.2 leaves
 * room for the small network's drift.
 */
export const noiseLangevin = { ...langevinCase(2, 1), id: 'tiny-langevin-noise', net: tinyNet, particles: 4000, checkSigmas: [1] } as Extract<CaseSpec, { workload: 'langevin' }>;

/** noiseLangevin's inputs from `makeInputs`, its start and its check noise zeroed. */
export function noiseLangevinInputs(makeInputs: (spec: CaseSpec) => Inputs): Inputs {
  const inputs = makeInputs(noiseLangevin);
  for (const [name, a] of inputs) if (name === 'init' || name.startsWith('noise')) inputs.set(name, { shape: a.shape, data: new Float32Array(a.data.length) });
  return inputs;
}

/** Expects mean ‖x‖² after r = 1, 2, … repetitions (`meanSquares[r − 1]`) within 0.8–1.2 of r·stepsPerRep·2α. */
export function expectFreshNoise(label: string, meanSquares: readonly number[]): void {
  meanSquares.forEach((v, i) => {
    const ratio = v / ((i + 1) * noiseLangevin.stepsPerRep * 2 * noiseLangevin.stepSize);
    expect(ratio, `${label}: mean ‖x‖² after ${i + 1} repetitions, over k·stepsPerRep·2α`).toBeGreaterThan(0.8);
    expect(ratio, `${label}: mean ‖x‖² after ${i + 1} repetitions, over k·stepsPerRep·2α`).toBeLessThan(1.2);
  });
}

/**
 * Expects an adapter's value after value, step, step, value (`stepped`) to be its value after four
 * value() calls (`valued`). value() returns the loss before and after one Adam step, which it
 * takes, so both routes take the same four steps on the same data in float32; where value() runs
 * its step through another compiled function the roundings may differ, by far less than 1e-5
 * relative (~80 ulps) over four steps. A step that skips a part of the work (the gradients, the
 * update, the noise) moves the loss by 1e-3 to 1e-1 here.
 */
export function expectSameSteps(label: string, stepped: readonly number[], valued: readonly number[]): void {
  expect(stepped).toHaveLength(valued.length);
  stepped.forEach((v, i) =>
    expect(Math.abs(v - valued[i]!), `${label}: after value, step, step, value: ${stepped}; after four values: ${valued}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(valued[i]!))),
  );
}

/**
 * Prepares `spec` twice on `engine`: value, step, step, value on one, four value() calls on the
 * other, and expects the loss to have moved and both to end alike (expectSameSteps).
 */
export async function expectStepIsValueStep(label: string, engine: Engine, spec: CaseSpec, makeInputs: (spec: CaseSpec) => Inputs): Promise<void> {
  const a = await engine.prepare(spec, makeInputs(spec));
  const first = await a.value();
  await a.step();
  await a.step();
  const stepped = await a.value();
  a.dispose();
  const b = await engine.prepare(spec, makeInputs(spec));
  for (let k = 0; k < 3; k++) await b.value();
  const valued = await b.value();
  b.dispose();
  expect(stepped[0], `${label}: the loss moved`).not.toBeCloseTo(first[0]!, 6);
  expectSameSteps(label, stepped, valued);
}

/** noiseLangevin on `engine`: mean ‖x‖² after each of `reps` timed steps (expectFreshNoise's input). */
export async function langevinMeanSquares(engine: Engine, makeInputs: (spec: CaseSpec) => Inputs, reps = 3): Promise<number[]> {
  const p = await engine.prepare(noiseLangevin, noiseLangevinInputs(makeInputs));
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    await p.step();
    out.push((await p.value())[2]!);
  }
  p.dispose();
  return out;
}
