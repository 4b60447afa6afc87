// Every float32 input through the CPU's WebAssembly fast paths for the math functions
// (packages/tensor/src/cpu/wasm/mathF32x4.ts), as eager ops, against the JavaScript kernels'
// value Math.fround(Math.fn(x)) bit for bit (a NaN matches any NaN; erf: the CPU's own float64
// erf, which the WebAssembly erf runs lane by lane). Too slow for the test suite
// (from 80 s to 5 minutes a function on one core), which checks samples of the same inputs.
//
// Usage: node scripts/run.mjs scripts/exhaustiveMath.ts [exp|log|log1p|sigmoid|tanh|expm1|sin|cos|erf ...]
// (all of them when none is named). Exits 1 on any mismatch, printing the first few.

import { type Tensor, cos, cpuKernelInfo, erf, exp, expm1, log, log1p, setCpuThreads, sigmoid, sin, tanh, tensor } from '@scorch/tensor';
import { erf as jsErf, sigmoid as jsSigmoid } from '../packages/tensor/src/cpu/jsCode.js';
import { elementwiseKernelCalls } from '../packages/tensor/src/cpu/wasm/elementwiseModule.js';


const FUNCTIONS: Record<string, { op: (x: Tensor) => Tensor; ref: (x: number) => number }> = {
  exp: { op: exp, ref: Math.exp },
  log: { op: log, ref: Math.log },
  log1p: { op: log1p, ref: Math.log1p },
  sigmoid: { op: sigmoid, ref: jsSigmoid },
  tanh: { op: tanh, ref: Math.tanh },
  expm1: { op: expm1, ref: Math.expm1 },
  sin: { op: sin, ref: Math.sin },
  cos: { op: cos, ref: Math.cos },
  erf: { op: erf, ref: jsErf },
};

const names = process.argv.slice(2);
for (const name of names) {
  if (!FUNCTIONS[name]) {
    console.error(`unknown function '${name}': expected one of ${Object.keys(FUNCTIONS).join(', ')}`);
    process.exit(2);
  }
}
if (!cpuKernelInfo().wasmSimd) {
  console.error('WebAssembly SIMD is missing here: the JavaScript kernels run, and there is nothing to check');
  process.exit(2);
}
setCpuThreads(1);

const CHUNK = 1 << 24;
const bits = new Uint32Array(CHUNK);
const xs = new Float32Array(bits.buffer);
const ref = new Float32Array(CHUNK);
const refBits = new Uint32Array(ref.buffer);
let failed = false;
for (const name of names.length ? names : Object.keys(FUNCTIONS)) {
  const { op, ref: fn } = FUNCTIONS[name]!;
  const start = performance.now();
  let mismatches = 0;
  for (let c = 0; c < 2 ** 32 / CHUNK; c++) {
    for (let i = 0; i < CHUNK; i++) bits[i] = (c * CHUNK + i) >>> 0;
    for (let i = 0; i < CHUNK; i++) ref[i] = fn(xs[i]!);
    const x = tensor(xs, { shape: [CHUNK] });
    const before = elementwiseKernelCalls();
    const y = op(x);
    // Through the WebAssembly kernel, or this would compare the JavaScript kernel with itself.
    if (elementwiseKernelCalls() === before) {
      console.error(`${name} did not run a WebAssembly kernel: nothing was checked`);
      process.exit(2);
    }
    const got = y.dataSync() as Float32Array;
    const gotBits = new Uint32Array(got.buffer, got.byteOffset, got.length);
    for (let i = 0; i < CHUNK; i++) {
      if (gotBits[i] === refBits[i] || (Number.isNaN(got[i]!) && Number.isNaN(ref[i]!))) continue;
      if (mismatches < 8) console.log(`${name}(${xs[i]}, bits 0x${bits[i]!.toString(16)}) = ${ref[i]}, got ${got[i]}`);
      mismatches++;
    }
    x.dispose();
    y.dispose();
  }
  console.log(`${name}: ${mismatches} mismatches over 2^32 inputs in ${((performance.now() - start) / 1000).toFixed(0)} s`);
  if (mismatches > 0) failed = true;
}
process.exit(failed ? 1 : 0);
