// The conversation between the suite and its engine workers (one process per engine: Node for
// scorch, TensorFlow.js and jax-js, Python for PyTorch). One JSON object per line: requests on the
// worker's stdin, replies on its stdout prefixed with REPLY_PREFIX, so that whatever a library
// prints on stdout is told apart from a reply. Times are measured inside the worker, around the
// work alone.

import type { CaseSpec } from './workloads.js';

export const REPLY_PREFIX = '@bench-reply ';

export type Request =
  | { id: number; op: 'hello' }
  | { id: number; op: 'prepare'; spec: CaseSpec; inputs: string }
  | { id: number; op: 'step' }
  /** The case's value in float64 from the same inputs (the PyTorch worker only; nothing is kept). */
  | { id: number; op: 'reference'; spec: CaseSpec; inputs: string }
  | { id: number; op: 'release' }
  | { id: number; op: 'exit' };

/** A request as the suite writes it; the worker host adds the id. */
export type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** What an engine says about itself, or why it cannot run here. */
export type HelloResult =
  | {
      available: true;
      /** e.g. '@tensorflow/tfjs 4.22.0', 'torch 1.13.0a0'. */
      version: string;
      /** The backend or device in the engine's own words, e.g. 'wasm', 'webgpu (llvmpipe …)'. */
      backend: string;
      /** Threads the engine computes with, as a number, or a phrase when it is not one number. */
      threads: number | string;
      /** Anything else worth recording: BLAS library, adapter, SIMD, ... */
      details: Record<string, string | number | boolean>;
      /**
       * Node workers: whether WebAssembly in the worker's own process has relaxed SIMD (as started,
       * flags included; simdPeak.ts hasRelaxedSimd). The PyTorch worker leaves it out.
       */
      relaxedSimd?: boolean;
    }
  | { available: false; reason: string };

export interface PrepareResult {
  /** The workload's value from the initial state (see workloads.ts). */
  value: number[];
  /** How long computing the value took, ms (it predicts a step's cost). */
  valueMs: number;
}

export interface StepResult {
  /** Wall time of the step, ms, measured in the worker. */
  ms: number;
  /** Work counters of this step, e.g. { dispatches, submits } for scorch on WebGPU. */
  counters?: Record<string, number>;
}
