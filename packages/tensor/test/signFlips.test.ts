// The elementwise kernels' sign-bit forms (src/cpu/wasm/elementwiseModule.ts, `signFlips`): a node
// that is another with its sign bits flipped in the lanes where a condition holds or fails (−|s|
// in softplus: neg(where(s ≥ 0, s, −s))) is emitted as one XOR of that node with the masked sign
// bits instead of negations and bit selects; `abs` as the op writes it (where(x < 0, −x, x + 0)) is
// x with its sign bit cleared, one AND. The bits must be those of the ops one by one, signed
// zeros and infinities included (a NaN's sign only where abs clears it: which NaN comes out is not
// specified, docs/conventions.md).

import { describe, expect, it } from 'vitest';
import { cpuKernelInfo } from '@scorch/tensor';
import { signFlips, type WasmKernelSpec, type WasmNode } from '../src/cpu/wasm/elementwiseModule.js';
import { leaf, op, runKernel } from './wasmKernelSpecs.js';

const WASM = cpuKernelInfo().wasmSimd;

/** Leaves: x (full), 0 (a scalar). softplus's −|x| and its variants, each stored. */
const CHAINS: WasmKernelSpec = {
  leaves: [{ kind: 'full' }, { kind: 'scalar' }],
  nodes: [
    leaf(0), leaf(1),
    op('lessEqual', 1, 0), // 2: h = 0 ≤ x
    op('neg', 0), // 3: −x
    op('where', 2, 0, 3), // 4: h ? x : −x (|x| but −0 for −0, as softplus writes it)
    op('neg', 4), // 5: −(h ? x : −x)
    op('where', 2, 3, 0), // 6: h ? −x : x
    op('neg', 6), // 7
    op('neg', 7), // 8: a negation of a negation
    op('where', 2, 0, 0), // 9: the same node both ways
    op('where', 2, 3, 3), // 10
    op('add', 0, 1), // 11: x + 0, not x's sign form
    op('where', 2, 0, 11), // 12: not a pair of signs of one node
  ],
  outputs: [4, 5, 6, 7, 8, 9, 10, 12],
};

/**
 * 1,003 float32 inputs (several passes would not matter, but an odd tail of a vector does): signed
 * zeros, ±1, the least subnormals, the extremes, infinities, NaNs of both signs, then values over
 * nine decades.
 */
function specialInputs(): Float32Array {
  const specials = [0, -0, 1, -1, 1.5e-45, -1.5e-45, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, -NaN, 7.25, -0.1];
  const n = 1003;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = i < specials.length ? specials[i]! : Math.sin(i * 12.9898) * 10 ** ((i % 9) - 4);
  // −NaN: NaN with its sign bit set (Float32Array keeps the bits it is given through a Uint32Array).
  new Uint32Array(x.buffer)[11] = 0xffc00000;
  return x;
}

/** A literal float32 node. */
const literal = (value: number): WasmNode => ({ kind: 'expr', expr: { kind: 'literal', value, dtype: 'float32' }, args: [] });

/** Leaves: x. abs as the op writes it, its negation, and near misses that are not abs. */
const ABS: WasmKernelSpec = {
  leaves: [{ kind: 'full' }],
  nodes: [
    leaf(0), literal(0), literal(-0),
    op('less', 0, 1), // 3: x < 0
    op('neg', 0), // 4: −x
    op('add', 0, 1), // 5: x + 0
    op('where', 3, 4, 5), // 6: abs(x)
    op('neg', 6), // 7: −abs(x)
    op('add', 0, 2), // 8: x + (−0), which keeps −0
    op('where', 3, 4, 8), // 9: not abs at −0
    op('less', 1, 0), // 10: 0 < x
    op('where', 10, 4, 5), // 11: not abs
    op('add', 1, 0), // 12: 0 + x
    op('where', 3, 4, 12), // 13: abs too
  ],
  outputs: [6, 7, 9, 11, 13],
};

describe('sign-bit forms', () => {
  it('abs as where(x < 0, −x, x + 0) is x with its sign bit cleared, and its negation x with it set', () => {
    const forms = signFlips(ABS);
    expect(forms[6]).toEqual({ base: 0, flip: 'clear' });
    expect(forms[7]).toEqual({ base: 0, flip: 'set' });
    expect(forms[13]).toEqual({ base: 0, flip: 'clear' });
    for (const i of [9, 11]) expect(forms[i]).toEqual({ base: i, flip: 'none' });
  });

  it.runIf(WASM)('abs and its negation in one AND and one OR give the bits of the ops one by one', () => {
    const x = specialInputs();
    const n = x.length;
    const outputs = runKernel(ABS, [x], n);
    const bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0]!;
    const abs = (v: number) => (v < 0 ? -v : v + 0);
    const want: ((v: number) => number)[] = [abs, (v) => -abs(v), (v) => (v < 0 ? -v : v + -0), (v) => (0 < v ? -v : v + 0), abs];
    outputs.forEach((out, j) => {
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        const got = out[i]!;
        if (Number.isNaN(v)) {
          expect(Number.isNaN(got), `output ${j}, x = NaN`).toBe(true);
          continue;
        }
        expect(bits(got), `output ${j}, x = ${Object.is(v, -0) ? '-0' : v}`).toBe(bits(Math.fround(want[j]!(v))));
      }
    });
  });

  it('neg and where between a node and its negation are that node with some lanes\' signs flipped', () => {
    const forms = signFlips(CHAINS);
    expect(forms[3]).toEqual({ base: 0, flip: 'all' });
    expect(forms[4]).toEqual({ base: 0, flip: { cond: 2, when: false } });
    expect(forms[5]).toEqual({ base: 0, flip: { cond: 2, when: true } });
    expect(forms[6]).toEqual({ base: 0, flip: { cond: 2, when: true } });
    expect(forms[7]).toEqual({ base: 0, flip: { cond: 2, when: false } });
    expect(forms[8]).toEqual({ base: 0, flip: { cond: 2, when: true } });
    expect(forms[9]).toEqual({ base: 0, flip: 'none' });
    expect(forms[10]).toEqual({ base: 0, flip: 'all' });
    for (const i of [0, 1, 2, 11, 12]) expect(forms[i]).toEqual({ base: i, flip: 'none' });
  });

  it.runIf(WASM)('the kernel gives the bits of the ops one by one: signed zeros, infinities, NaNs of both signs', () => {
    const x = specialInputs();
    const n = x.length;
    const outputs = runKernel(CHAINS, [x, new Float32Array([0])], n);
    // The reference: each op on float32 values, its sign flips by the bits (so a NaN's too).
    const xb = new Uint32Array(x.buffer);
    const flip = (bits: number) => (bits ^ 0x80000000) >>> 0;
    const want = CHAINS.outputs.map(() => new Uint32Array(n));
    for (let i = 0; i < n; i++) {
      const h = 0 <= x[i]!;
      const b = xb[i]!;
      const nb = flip(b);
      const k = h ? b : nb;
      const m = h ? nb : b;
      const plus0 = new Uint32Array(new Float32Array([x[i]! + 0]).buffer)[0]!;
      [k, flip(k), m, flip(m), m, b, nb, h ? b : plus0].forEach((v, j) => (want[j]![i] = v));
    }
    outputs.forEach((out, j) => {
      const got = new Uint32Array(out.buffer);
      const at = got.findIndex((v, i) => v !== want[j]![i] && !(j === 7 && Number.isNaN(x[i]!)));
      expect(at, `output ${j}: element ${at} (x = ${x[at]})`).toBe(-1);
    });
  });
});
