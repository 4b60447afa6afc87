// The timed step of each WebGPU engine adapter (scorch WebGPU, TF.js webgpu, jax-js webgpu), called
// directly on tiny workloads. A GPU step is timed on the host, so it must not return before the
// device has finished the work it queued; a speed bound cannot tell (a real GPU is fast enough to
// pass any bound llvmpipe fails). Instead Dawn's queue and buffers are watched: each step must
// submit work, and a wait issued after its last submit (a buffer's mapAsync, which resolves once
// the queue's earlier work is done, or queue.onSubmittedWorkDone) must have resolved before the
// step returns. Also: the training step is the one value() checked (value, 2 steps, value = 4
// values), Langevin draws fresh noise every step, and jax-js's steps run through jax.jit.
import { describe, expect, it, vi } from 'vitest';
import { getDefaultDevice, setDefaultDevice } from '@scorch/tensor';
import { type Inputs, makeInputs as makeInputsOn } from '../src/inputs.js';
import type { CaseSpec } from '../src/workloads.js';
import { expectFreshNoise, expectStepIsValueStep, langevinMeanSquares, startEngines, tinyCases, trainingCases } from './adapterSteps.js';
import { expectEveryStepJitted } from './countingJit.js';

vi.mock('@jax-js/jax', async (original) => (await import('./countingJit.js')).withCountingJit(await original()));

/** The shared inputs, made on scorch's CPU as the suite's parent process makes them (scorch WebGPU's hello makes WebGPU the default device). */
function makeInputs(spec: CaseSpec): Inputs {
  const device = getDefaultDevice();
  setDefaultDevice('cpu');
  try {
    return makeInputsOn(spec);
  } finally {
    setDefaultDevice(device);
  }
}

/** Dawn's queue and buffers, watched: submits counted, and the submit count at which each wait was issued, once it resolves. */
const queueLog = { submits: 0, waitedFor: 0 };
async function watchDawn(): Promise<void> {
  const dawn = (await import('webgpu')) as unknown as { globals: { GPUQueue: { prototype: GPUQueue }; GPUBuffer: { prototype: GPUBuffer } } };
  const queue = dawn.globals.GPUQueue.prototype;
  const buffer = dawn.globals.GPUBuffer.prototype;
  const submit = queue.submit;
  queue.submit = function (this: GPUQueue, ...a: Parameters<GPUQueue['submit']>) {
    queueLog.submits++;
    return submit.apply(this, a);
  };
  const waited = <T>(p: Promise<T>, at: number): Promise<T> =>
    p.then((r) => {
      queueLog.waitedFor = Math.max(queueLog.waitedFor, at);
      return r;
    });
  const done = queue.onSubmittedWorkDone;
  queue.onSubmittedWorkDone = function (this: GPUQueue) {
    return waited(done.call(this), queueLog.submits);
  };
  const map = buffer.mapAsync;
  buffer.mapAsync = function (this: GPUBuffer, ...a: Parameters<GPUBuffer['mapAsync']>) {
    return waited(map.apply(this, a), queueLog.submits);
  };
}

describe('each WebGPU engine adapter\'s timed step (scorch, TF.js, jax-js; Dawn)', async () => {
  await watchDawn();
  // Each must start (fails, does not skip, as the kernels' tests do): scripts/setup.sh installs Mesa's adapter.
  const engines = await startEngines(['scorch-webgpu', 'tfjs-webgpu', 'jaxjs-webgpu']);

  it('submits its work and has waited for the last of it when it returns', async () => {
    for (const [id, engine] of engines) {
      for (const spec of tinyCases) {
        const p = await engine.prepare(spec, makeInputs(spec));
        await p.value();
        for (let r = 0; r < 2; r++) {
          const before = queueLog.submits;
          await p.step();
          expect(queueLog.submits, `${id} ${spec.id}: the step submitted no work`).toBeGreaterThan(before);
          expect(queueLog.waitedFor, `${id} ${spec.id}: returned before a wait issued after its last submit (#${queueLog.submits}) resolved`).toBe(queueLog.submits);
        }
        p.dispose();
      }
    }
  }, 120_000);

  it('is the training step the value check checked: loss, gradients and Adam (value, 2 steps, value = 4 values)', async () => {
    for (const [id, engine] of engines) {
      for (const spec of trainingCases) await expectStepIsValueStep(`${id} ${spec.id}`, engine, spec, makeInputs);
    }
  }, 120_000);

  it('draws fresh noise at every Langevin step and runs stepsPerRep steps per repetition', async () => {
    for (const [id, engine] of engines) expectFreshNoise(id, await langevinMeanSquares(engine, makeInputs));
  }, 120_000);

  it('jax-js webgpu runs every workload\'s timed step through jax.jit', async () => {
    await expectEveryStepJitted(engines.find(([id]) => id === 'jaxjs-webgpu')![1], tinyCases, makeInputs);
  }, 120_000);
});
