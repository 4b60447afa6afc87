// jax-js is timed "with jit" (the README, its row's label and its hello's details say so): every
// timed step runs through functions made by jax.jit. jax.jit is wrapped to count the calls of the
// functions it returns; each workload's step must call at least one of them. A file of its own:
// the mock must be in place before the engine module first loads @jax-js/jax.
import { describe, expect, it, vi } from 'vitest';
import { makeInputs } from '../src/inputs.js';
import { type CaseSpec, DSM_CASE, HVP_CASE, SSMVR_CASE, convCase, ismCase, langevinCase, matmulCase } from '../src/workloads.js';

const calls = vi.hoisted(() => ({ n: 0 }));
vi.mock('@jax-js/jax', async (importOriginal) => {
  const jax = await importOriginal<Record<string, unknown> & { jit: (...a: unknown[]) => ((...b: unknown[]) => unknown) & { dispose(): void } }>();
  const jit = (...args: unknown[]) => {
    const compiled = jax.jit(...args);
    return Object.assign((...a: unknown[]) => {
      calls.n++;
      return compiled(...a);
    }, { dispose: () => compiled.dispose() });
  };
  return { ...jax, jit };
});

const tinyNet = { dim: 2, hidden: 8 };
const cases: CaseSpec[] = [
  { ...matmulCase(24), id: 'tiny-matmul' },
  { ...SSMVR_CASE, id: 'tiny-ssmvr', net: tinyNet, batch: 16 },
  { ...DSM_CASE, id: 'tiny-dsm', net: tinyNet, batch: 16 },
  { ...ismCase(3), id: 'tiny-ism', net: { dim: 3, hidden: 8 }, batch: 8 },
  { ...langevinCase(1, 1), id: 'tiny-langevin', net: tinyNet, particles: 32 },
  { ...HVP_CASE, id: 'tiny-hvp', net: tinyNet, batch: 16 },
  { ...convCase(false), id: 'tiny-conv', batch: 2, channels: 3, extent: 5 },
  { ...convCase(true), id: 'tiny-conv-bwd', batch: 2, channels: 3, extent: 5 },
];

describe('jax-js wasm', () => {
  it('runs every workload\'s timed step through jax.jit', async () => {
    const { jaxjsEngine } = await import('../src/engines/jaxjs.js');
    const engine = jaxjsEngine('wasm');
    expect((await engine.hello()).available).toBe(true);
    for (const spec of cases) {
      const p = await engine.prepare(spec, makeInputs(spec));
      await p.value();
      calls.n = 0;
      await p.step();
      expect(calls.n, `${spec.id}: jit-compiled calls in one step`).toBeGreaterThanOrEqual(1);
      p.dispose();
    }
  }, 120_000);
});
