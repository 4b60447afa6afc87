// jax-js is timed "with jit" (the README, its row's label and its hello's details say so): every
// timed step runs through functions made by jax.jit. jax.jit is wrapped to count the calls of the
// functions it returns (countingJit.ts); each workload's step must call at least one of them. A
// file of its own: the mock must be in place before the engine module first loads @jax-js/jax.
import { describe, expect, it, vi } from 'vitest';
import { makeInputs } from '../src/inputs.js';
import { tinyCases } from './adapterSteps.js';
import { expectEveryStepJitted } from './countingJit.js';

vi.mock('@jax-js/jax', async (original) => (await import('./countingJit.js')).withCountingJit(await original()));

describe('jax-js wasm', () => {
  it('runs every workload\'s timed step through jax.jit', async () => {
    const { jaxjsEngine } = await import('../src/engines/jaxjs.js');
    const engine = jaxjsEngine('wasm');
    expect((await engine.hello()).available).toBe(true);
    await expectEveryStepJitted(engine, tinyCases, makeInputs);
  }, 120_000);
});
