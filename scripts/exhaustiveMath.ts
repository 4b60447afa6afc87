// Every float32 input through the CPU's WebAssembly fast paths for the math functions
// (packages/tensor/src/cpu/wasm/mathF32x4.ts), as eager ops, against the JavaScript kernels'
// value Math.fround(Math.fn(x)) bit for bit (a NaN matches any NaN; erf: the CPU's own float64
// erf, which the WebAssembly erf runs lane by lane). Too slow for the test suite
// (from 80 s to 5 minutes a function on one core), which checks samples of the same inputs.
//
// Usage: node scripts/run.mjs scripts/exhaustiveMath.ts [exp|log|log1p|sigmoid|tanh|expm1|sin|cos|erf ...]
// (all of them when none is named). Exits 1 on any mismatch, printing the first few.
//
// With --fast: setCpuFastMath(true), and the functions that have fast forms (exp, log, log1p,
// sigmoid; mathF32x4Fast.ts) checked against their bound instead: each result within
// FAST_MATH_ULPS of the default value (Math.fround(Math.fn(x))), counted in float32 steps (the distance between
// the two bit patterns ordered as integers), NaN for NaN, and infinities and signed zeros exactly.
// Prints each function's largest distance and how many inputs reach it. Also checks that the
// JavaScript kernels' transcription of each fast form (jsCode.ts's fastMathJs) gives the WebAssembly kernel's bits on every input (a NaN matches any NaN).
//
// With --mixed: the same 2^32 inputs in another order, each vector of four lanes holding two of
// one sign and the same two magnitudes of the other, so that no vector lies wholly in a range an
// approximation takes only when all four lanes are there (log1p's [0, 1): mathF32x4.ts); the
// default order (consecutive bit patterns) puts nearly every vector of such a range there.

import { FAST_MATH_ULPS, type Tensor, cos, cpuKernelInfo, setCpuFastMath, erf, exp, expm1, log, log1p, setCpuThreads, sigmoid, sin, tanh, tensor } from '@scorch/tensor';
import { erf as jsErf, fastMathJs, sigmoid as jsSigmoid } from '../packages/tensor/src/cpu/jsCode.js';
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

/** The JavaScript kernels' transcription of each fast form. */
const FAST_JS: Record<string, (x: number) => number> = fastMathJs();
const fast = process.argv.includes('--fast');
const mixed = process.argv.includes('--mixed');
const names = process.argv.slice(2).filter((a) => a !== '--fast' && a !== '--mixed');
const fastBounds: Record<string, number> = FAST_MATH_ULPS;
for (const name of names) {
  if (fast && fastBounds[name] === undefined) {
    console.error(`'${name}' has no fast form: --fast checks ${Object.keys(fastBounds).join(', ')}`);
    process.exit(2);
  }
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
setCpuFastMath(fast);

/** A float32's bits as an integer ordered as the values are (−0 and +0 adjacent). */
const ordered = (b: number): number => (b >= 0x80000000 ? 0x80000000 - b : b);

const CHUNK = 1 << 24;
const bits = new Uint32Array(CHUNK);
const xs = new Float32Array(bits.buffer);
const ref = new Float32Array(CHUNK);
const refBits = new Uint32Array(ref.buffer);
let failed = false;
for (const name of names.length ? names : Object.keys(fast ? fastBounds : FUNCTIONS)) {
  const { op, ref: fn } = FUNCTIONS[name]!;
  const start = performance.now();
  let mismatches = 0;
  let jsMismatches = 0;
  let worst = 0;
  let atWorst = 0;
  for (let c = 0; c < 2 ** 32 / CHUNK; c++) {
    if (mixed) {
      // Chunk c holds the magnitudes of patterns c·CHUNK/2 … in pairs, each pair then negated.
      for (let i = 0; i < CHUNK; i++) bits[i] = ((c * CHUNK) / 2 + (i >> 2) * 2 + (i & 1) + (i & 2 ? 0x80000000 : 0)) >>> 0;
    } else for (let i = 0; i < CHUNK; i++) bits[i] = (c * CHUNK + i) >>> 0;
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
    if (fast) {
      const js = FAST_JS[name]!;
      for (let i = 0; i < CHUNK; i++) {
        ref[i] = js(xs[i]!);
        if (refBits[i] === gotBits[i] || (Number.isNaN(got[i]!) && Number.isNaN(ref[i]!))) continue;
        if (jsMismatches < 8) console.log(`${name}(${xs[i]}, bits 0x${bits[i]!.toString(16)}): JavaScript ${ref[i]}, WebAssembly ${got[i]}`);
        jsMismatches++;
      }
      for (let i = 0; i < CHUNK; i++) ref[i] = fn(xs[i]!);
    }
    for (let i = 0; i < CHUNK; i++) {
      if (gotBits[i] === refBits[i] || (Number.isNaN(got[i]!) && Number.isNaN(ref[i]!))) continue;
      if (fast && Number.isFinite(ref[i]!) && ref[i] !== 0 && Number.isFinite(got[i]!)) {
        const d = Math.abs(ordered(gotBits[i]!) - ordered(refBits[i]!));
        if (d > worst) [worst, atWorst] = [d, 0];
        if (d === worst) atWorst++;
        if (d <= fastBounds[name]!) continue;
      }
      if (mismatches < 8) console.log(`${name}(${xs[i]}, bits 0x${bits[i]!.toString(16)}) = ${ref[i]}, got ${got[i]}`);
      mismatches++;
    }
    x.dispose();
    y.dispose();
  }
  const spread = fast ? ` (largest distance ${worst} ulps, at ${atWorst} inputs; bound ${fastBounds[name]}); the JavaScript form differs from the WebAssembly one on ${jsMismatches}` : '';
  console.log(`${name}: ${mismatches} ${fast ? 'outside the bound' : 'mismatches'} over 2^32 inputs${spread} in ${((performance.now() - start) / 1000).toFixed(0)} s`);
  if (mismatches > 0 || jsMismatches > 0) failed = true;
}
process.exit(failed ? 1 : 0);
