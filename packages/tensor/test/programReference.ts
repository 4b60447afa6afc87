// The reference run for tests of compiled CPU programs: a function traced to a program and that
// program run op by op through the eager kernels (`interpretProgram`), the independent path a
// compiled run is compared with bit for bit. Unlike reference.ts this uses the package: what it
// provides is the package's own op-by-op semantics, against which its compiler is checked.

import { expect } from 'vitest';
import {
  type CpuBackend, type CpuHandle, type KernelInfo, type Program, type RandomKey, type Tensor, type TracedProgram, type TypedArray, interpretProgram, traceProgram,
} from '../src/index.js';
import { setWasmElementwiseForTesting } from '../src/cpu/wasmPlan.js';
import { bitsOf, canonicalNaNBits } from './reference.js';

/**
 * Whether `bits(g)` equals `bits(e)`, decided on the arrays themselves for the two `bits` of
 * reference.ts (bitsOf: every byte; canonicalNaNBits: every byte, NaNs as one value), without
 * building the byte lists: expect's deep equality of two lists of a byte per element took about a
 * fifth of cpuCompileFuzz.test.ts. False for any other `bits` (the caller then compares the lists).
 */
export function sameBits(bits: (a: TypedArray) => unknown, g: TypedArray, e: TypedArray): boolean {
  if (g.byteLength !== e.byteLength || g.constructor !== e.constructor) return false;
  if (bits === bitsOf) {
    const [a, b] = [new Uint8Array(g.buffer, g.byteOffset, g.byteLength), new Uint8Array(e.buffer, e.byteOffset, e.byteLength)];
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (bits !== canonicalNaNBits) return false;
  // Equal values of one array type have equal bytes, but for +0 and −0; NaNs all match.
  for (let i = 0; i < g.length; i++) {
    const [x, y] = [g[i] as number, e[i] as number];
    if (x !== y ? !(x !== x && y !== y) : x === 0 && 1 / x !== 1 / y) return false;
  }
  return true;
}

/** A traced program, the CPU handles it runs on, and its outputs run op by op. */
export interface Interpreted {
  traced: TracedProgram;
  /** The program's inputs in its order (the arguments and the constants the trace captured). */
  handles: CpuHandle[];
  /** One `false` per input: no run donates its inputs. */
  donated: boolean[];
  /** The outputs of the program run op by op through the eager kernels; the caller disposes them. */
  expected: CpuHandle[];
}

/**
 * Traces `f` on `args` and `keyArgs` and runs the program once through `interpretProgram`.
 * `javascriptReference`: that run without the WebAssembly elementwise kernels (eager ops use them
 * too; its matmuls stay as they are, so only the elementwise kernels differ). The trace's `owned`
 * tensors stay the caller's to dispose.
 */
export function traceAndInterpret(
  cpu: CpuBackend, f: (xs: readonly Tensor[], ks: readonly RandomKey[]) => Tensor[], args: readonly Tensor[], keyArgs: readonly RandomKey[] = [],
  { javascriptReference = false } = {},
): Interpreted {
  const traced = traceProgram(f, args, keyArgs);
  const program = traced.program;
  const inputs = program.inputSources.map((src) => (src.kind === 'argument' ? args[src.index]! : traced.captured[src.index]!));
  const handles = inputs.map((t) => t._live('test') as CpuHandle);
  const donated = handles.map(() => false);
  const reference = interpretProgram(cpu, program);
  if (javascriptReference) setWasmElementwiseForTesting(false);
  try {
    return { traced, handles, donated, expected: reference.run(handles, keyArgs, donated) };
  } finally {
    if (javascriptReference) setWasmElementwiseForTesting(true);
  }
}

/**
 * Traces `f`, compiles the program for `cpu` and runs it `calls` times (a later call reuses the
 * held intermediates), expecting every output equal to the op-by-op run (traceAndInterpret) in
 * `bits` (bitsOf: every bit; canonicalNaNBits: NaNs as one value) and of the same array type,
 * under the caller's setCpuWasm for both runs (it picks the matmul routine too). Returns the
 * program and its kernels. `label` prefixes failure messages (a fuzz test's seed).
 */
export function expectCompiledMatches(
  cpu: CpuBackend, f: (xs: readonly Tensor[], ks: readonly RandomKey[]) => Tensor[], args: readonly Tensor[],
  { keyArgs = [], calls = 2, bits, javascriptReference = false, label = '' }: {
    keyArgs?: readonly RandomKey[]; calls?: number; bits: (a: TypedArray) => unknown; javascriptReference?: boolean; label?: string;
  },
): { program: Program; kernels: readonly KernelInfo[] } {
  const { traced, handles, donated, expected } = traceAndInterpret(cpu, f, args, keyArgs, { javascriptReference });
  const compiled = cpu.compile(traced.program);
  try {
    for (let call = 0; call < calls; call++) {
      const got = compiled.run(handles, keyArgs, donated);
      expect(got).toHaveLength(expected.length);
      got.forEach((h, i) => {
        const e = cpu.readSync(expected[i]!);
        const g = cpu.readSync(h);
        expect(g.constructor, `${label}output ${i}, call ${call}`).toBe(e.constructor);
        if (!sameBits(bits, g, e)) expect(bits(g), `${label}output ${i}, call ${call}`).toEqual(bits(e));
        cpu.dispose(h);
      });
    }
    return { program: traced.program, kernels: compiled.kernels() };
  } finally {
    for (const h of expected) cpu.dispose(h);
    compiled.dispose();
    for (const t of traced.owned) t.dispose();
  }
}
