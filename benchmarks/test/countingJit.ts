// jax.jit wrapped to count the calls of the functions it returns, for the tests that check jax-js
// is timed "with jit" (jaxjsJit.test.ts on wasm, webgpuSteps.test.ts on WebGPU). A test file
// mocks '@jax-js/jax' with withCountingJit before the engine module first loads it:
//   vi.mock('@jax-js/jax', async (original) => (await import('./countingJit.js')).withCountingJit(await original()));

import { expect } from 'vitest';
import type { Engine } from '../src/engines/engine.js';
import type { Inputs } from '../src/inputs.js';
import type { CaseSpec } from '../src/workloads.js';

type Jitted = ((...args: unknown[]) => unknown) & { dispose(): void };

/** Calls of jitted functions so far; tests reset `n` before the step they count. */
export const jitCalls = { n: 0 };

/** `jax` with its jit replaced by one whose functions count their calls in jitCalls. */
export function withCountingJit<T extends object>(jax: T): T {
  const original = (jax as unknown as { jit: (...args: unknown[]) => Jitted }).jit;
  const jit = (...args: unknown[]): Jitted => {
    const compiled = original(...args);
    return Object.assign((...a: unknown[]) => {
      jitCalls.n++;
      return compiled(...a);
    }, { dispose: () => compiled.dispose() });
  };
  return { ...jax, jit };
}

/** Expects one timed step of each of `cases` on jax-js `engine` to call at least one jitted function. */
export async function expectEveryStepJitted(engine: Engine, cases: readonly CaseSpec[], makeInputs: (spec: CaseSpec) => Inputs): Promise<void> {
  for (const spec of cases) {
    const p = await engine.prepare(spec, makeInputs(spec));
    await p.value();
    jitCalls.n = 0;
    await p.step();
    expect(jitCalls.n, `${spec.id}: jit-compiled calls in one step`).toBeGreaterThanOrEqual(1);
    p.dispose();
  }
}
