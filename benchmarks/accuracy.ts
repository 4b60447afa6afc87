// What the CPU engines of W2/W3 compute for the MLP's transcendentals: float32 exp, log1p and
// softplus on jax-js's wasm backend (jitted, as the suite runs it) and on scorch's CPU, each
// against the correctly rounded value (the float64 function, rounded once), in float32 ulps over
// 2^20 evenly spaced inputs per range. Prints a table; the figures are in benchmarks/NOTES.md
// ("What jax-js's wasm softplus computes").
// Usage: node scripts/run.mjs benchmarks/accuracy.ts

import { type Tensor, exp, log1p, setCpuThreads, softplus, tensor } from '@scorch/tensor';
import type * as JaxModule from '@jax-js/jax';
import type { Array as JaxArray } from '@jax-js/jax';
import { jaxVersion } from './src/engines/jaxjs.js';

type Jax = typeof JaxModule;
const jax = (await import('@jax-js/jax')) as Jax;
if (!(await jax.init('wasm')).includes('wasm')) throw new Error('jax-js found no wasm backend');
jax.defaultDevice('wasm');
setCpuThreads(1);

const N = 2 ** 20;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** A float32's position on the number line in ulps (so that a difference counts the floats between). */
const ordinal = (v: number): number => {
  f32[0] = v;
  const b = u32[0]!;
  return b & 0x80000000 ? -(b & 0x7fffffff) : b;
};

interface Case {
  readonly name: string;
  readonly lo: number;
  readonly hi: number;
  readonly exact: (v: number) => number;
  readonly jaxFn: (a: JaxArray) => JaxArray;
  readonly scorchFn: (t: Tensor) => Tensor;
}
const cases: Case[] = [
  { name: 'exp', lo: -20, hi: 20, exact: Math.exp, jaxFn: (a) => jax.numpy.exp(a), scorchFn: exp },
  { name: 'log1p', lo: 0, hi: 1, exact: Math.log1p, jaxFn: (a) => jax.numpy.log1p(a), scorchFn: log1p },
  { name: 'log1p', lo: 1e-6, hi: 1e-3, exact: Math.log1p, jaxFn: (a) => jax.numpy.log1p(a), scorchFn: log1p },
  { name: 'softplus', lo: -10, hi: 10, exact: (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))), jaxFn: (a) => jax.nn.softplus(a), scorchFn: softplus },
];

console.log(`@jax-js/jax ${await jaxVersion()} (wasm, jit) against scorch's CPU (one thread), float32 ulps from the correctly rounded value`);
console.log('function   inputs            jax-js max (mean)     scorch max (mean)');
for (const c of cases) {
  const x = new Float32Array(N);
  for (let i = 0; i < N; i++) x[i] = c.lo + (c.hi - c.lo) * ((i + 0.5) / N);
  const jitted = jax.jit(c.jaxFn);
  const fromJax = (await jitted(jax.numpy.array(x, { shape: [N] })).data()) as Float32Array;
  jitted.dispose();
  const input = tensor(x, { shape: [N] });
  const result = c.scorchFn(input);
  const fromScorch = result.dataSync();
  input.dispose();
  result.dispose();
  const stats = [fromJax, fromScorch].map((y) => {
    let max = 0;
    let total = 0;
    for (let i = 0; i < N; i++) {
      const d = Math.abs(ordinal(y[i]!) - ordinal(Math.fround(c.exact(x[i]!))));
      max = Math.max(max, d);
      total += d;
    }
    return `${max} (${(total / N).toFixed(2)})`;
  });
  console.log(`${c.name.padEnd(10)} [${c.lo}, ${c.hi}]`.padEnd(30) + stats[0]!.padEnd(22) + stats[1]);
}
