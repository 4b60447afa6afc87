// The ratio columns of a run (suite.ts, runCase): each timed row's speed relative to scorch CPU and
// to scorch WebGPU is that scorch's median time ÷ the row's. runSuite end to end with stand-in
// workers (workerHost mocked), so scorch WebGPU has a row wherever the test runs. Steps: scorch CPU
// 10 ms, scorch WebGPU 5 ms, TF.js cpu 20 ms.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { EngineId, EngineSpec } from '../src/engines.js';
import { type Plan, matmulCase } from '../src/workloads.js';

const STEP_MS: Partial<Record<EngineId, number>> = { 'scorch-cpu': 10, 'scorch-webgpu': 5, 'tfjs-cpu': 20 };

vi.mock('../src/workerHost.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/workerHost.js')>();
  const { decodeInputs } = await import('../src/inputs.js');
  const { referenceEngine } = await import('../src/engines/scorch.js');
  // A worker that answers as the real one does, its value the float64 reference's.
  const standIn = (spec: EngineSpec) => ({
    alive: true,
    pid: undefined,
    close: async () => undefined,
    request: async (message: { op: string; spec?: never; inputs?: string }) => {
      switch (message.op) {
        case 'hello':
          return { available: true, version: 'stand-in', backend: 'stand-in', threads: 1, details: {} };
        case 'prepare': {
          const value = await (await referenceEngine().prepare(message.spec!, decodeInputs(readFileSync(message.inputs!)))).value();
          return { value, valueMs: 1 };
        }
        case 'step':
          return { ms: STEP_MS[spec.id]! };
        default:
          return null;
      }
    },
  });
  return { ...real, bundleWorker: async (root: string) => join(root, 'no-bundle.js'), startWorker: standIn };
});

describe('the ratio columns', () => {
  it("give every timed row its speed relative to scorch CPU and to scorch WebGPU: that scorch's median time ÷ the row's", async () => {
    const { runSuite } = await import('../src/suite.js');
    const root = mkdtempSync(join(tmpdir(), 'scorch-bench-ratios-'));
    const plan: Plan = {
      mode: 'quick', cases: [matmulCase(8)], warmup: 1, warmupMs: 0, warmupMax: 1, reps: 5, leadInMs: 0, leadInMaxMs: 0,
      slowStepMs: 20_000, maxStepMs: 20_000, maxScorchStepMs: 20_000,
    };
    try {
      const results = await runSuite({
        plan, engines: ['scorch-cpu', 'scorch-webgpu', 'tfjs-cpu'], workloads: ['matmul'], complete: false, command: 'vitest', repoRoot: root, scratch: root, log: () => undefined,
      });
      const rows = results.cases[0]!.rows;
      expect(rows.map((r) => [r.engine, r.status, r.medianMs])).toEqual([['scorch-cpu', 'timed', 10], ['scorch-webgpu', 'timed', 5], ['tfjs-cpu', 'timed', 20]]);
      expect(rows.map((r) => r.vsScorchCpu)).toEqual([1, 2, 0.5]);
      expect(rows.map((r) => r.vsScorchWebgpu)).toEqual([0.5, 1, 0.25]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);
});
