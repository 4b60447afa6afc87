// Random compiled CPU programs against the same programs run op by op (interpretProgram), bit for
// bit (NaNs as one value, docs/conventions.md). Each seed builds a chain of up to eight random
// steps over a [rows, cols] float32 input (rows·cols ≥ 256, so that the WebAssembly kernels and
// the CPU's store rules, concatStoreMin and movementStoreMin, take part): transcendentals, a
// transpose, pads, flips, slices, concats, tiles, gathers, row sums with a prologue, softmax,
// reshape round trips, stacks, selects, and a detached read of an earlier value; some
// intermediate values are outputs too. Every fourth seed runs again with WebAssembly off.
//
// Seeds 292 and 336 found a writer bug: a reduction's compound linear index (out · extent + r)
// was divided and reduced modulo without parentheses when its input was a reshape of a
// transpose or of a computed value, so the kernel read the wrong elements.

import { describe, expect, it } from 'vitest';
import { type CpuBackend, type Tensor, concat, flip, getBackend, indexSelect, narrow, pad, randn, randomKey, setCpuWasm, softmax, softplus, stack, sum, tile, where } from '../src/index.js';
import { traceAndInterpret } from './programReference.js';
import { canonicalNaNBits } from './reference.js';

const cpu = getBackend('cpu') as CpuBackend;

/** A linear congruential generator: the same program for a seed on every run. */
function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const pick = <X>(r: () => number, xs: readonly X[]): X => xs[Math.floor(r() * xs.length)]!;

/** One random step from `v` (null where it does not apply); `earlier` holds the chain's values so far. */
type Step = (v: Tensor, r: () => number, earlier: readonly Tensor[]) => Tensor | null;
const STEPS: Step[] = [
  (v) => v.exp().mul(0.1),
  (v) => softplus(v),
  (v) => v.mul(v).add(1),
  (v) => v.transpose(),
  (v) => (v.rank === 2 ? pad(v, [[1, 2], [0, 3]]) : null),
  (v, r) => flip(v, [Math.floor(r() * v.rank)]),
  (v, r) => {
    const a = Math.floor(r() * v.rank);
    return v.shape[a]! < 3 ? null : narrow(v, a, 1, v.shape[a]! - 2);
  },
  (v, r) => concat([v, v.mul(2)], Math.floor(r() * v.rank)),
  (v) => (v.rank === 2 ? tile(v, [2, 1]) : null),
  (v, r) => {
    const a = Math.floor(r() * v.rank);
    const n = v.shape[a]!;
    return indexSelect(v, a, Array.from({ length: Math.max(1, n - 1) }, (_, i) => (i * 7) % n));
  },
  (v, r) => sum(v.exp(), Math.floor(r() * v.rank), true).add(v),
  (v) => softmax(v, -1),
  (v, _r, earlier) => {
    const w = earlier.find((p) => p !== v && p.shape.join() === v.shape.join());
    return w ? v.add(w.detach()) : null;
  },
  (v) => v.reshape([v.size]).reshape(v.shape),
  (v) => (v.rank === 2 ? stack([v, v.neg()], 0).sum(0) : null),
  (v) => where(v.greater(0), v, v.mul(-0.5)),
];

function check(seed: number): void {
  const r = generator(seed);
  const x = randn(pick(r, [[20, 33], [33, 20], [17, 40], [64, 8], [8, 64]]), { key: randomKey(seed) });
  const program = ([x0]: readonly Tensor[]): Tensor[] => {
    const earlier: Tensor[] = [x0!];
    const outputs: Tensor[] = [];
    let v = x0!;
    for (let k = 0; k < 8; k++) {
      const next = pick(r, STEPS)(v, r, earlier);
      if (!next || next.size === 0 || next.size > 100_000) continue;
      v = next;
      earlier.push(v);
      if (r() < 0.4) outputs.push(v);
    }
    return [...outputs, v];
  };
  const { traced, handles, donated, expected } = traceAndInterpret(cpu, program, [x]);
  const compiled = cpu.compile(traced.program);
  try {
    for (const wasm of seed % 4 === 0 ? [true, false] : [true]) {
      setCpuWasm(wasm);
      for (let call = 0; call < 2; call++) {
        compiled.run(handles, [], donated).forEach((h, i) => {
          expect(canonicalNaNBits(cpu.readSync(h)), `seed ${seed}, output ${i}, call ${call}, WebAssembly ${wasm ? 'on' : 'off'}`).toEqual(canonicalNaNBits(cpu.readSync(expected[i]!)));
          cpu.dispose(h);
        });
      }
    }
  } finally {
    setCpuWasm(true);
    for (const h of expected) cpu.dispose(h);
    compiled.dispose();
    for (const t of traced.owned) t.dispose();
    x.dispose();
  }
}

describe('random compiled CPU programs equal their op-by-op runs bit for bit', () => {
  it('seeds 201 to 600', () => {
    for (let seed = 201; seed <= 600; seed++) check(seed);
  });
});
