// Building and running the WebAssembly elementwise kernels' specs by hand, for the tests of the
// emitter (stagedMath.test.ts, signFlips.test.ts).

import { elementwiseModule, passPlan, wasmElementwiseInstance, type WasmKernelSpec, type WasmNode } from '../src/cpu/wasm/elementwiseModule.js';
import { type ElementwiseOp, elementwiseExpression } from '../src/expression.js';

/** A node that reads operand `l`. */
export const leaf = (l: number): WasmNode => ({ kind: 'leaf', leaf: l });
/** A node computing float32 `name` of nodes `args`, by the expression table. */
export const op = (name: ElementwiseOp, ...args: number[]): WasmNode => ({ kind: 'expr', expr: elementwiseExpression(name, 'float32'), args });

/** Runs `spec`'s kernel (in a memory of its own) on `leaves` over `n` elements; its outputs. */
export function runKernel(spec: WasmKernelSpec, leaves: Float32Array[], n: number): Float32Array[] {
  const instance = wasmElementwiseInstance(elementwiseModule(spec, 16384, false), false);
  const outputs = spec.outputs.map(() => new Float32Array(n));
  instance.passes(leaves, leaves.map(() => 0), outputs, 0, passPlan(spec), 0, n);
  return outputs;
}
