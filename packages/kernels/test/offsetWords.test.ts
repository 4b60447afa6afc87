// A compiled WebGPU program serves every layout of its inputs whose offsets have the same residues
// mod 4 with one lowering: the offsets themselves are uniform words of its kernels
// (LoweredKernel.inputOffsets), rewritten when a call's offsets differ from the last call's
// (executable.ts). That is only right if every word or literal that depends on an input's offset
// is one of those recorded words: a template that wrote an input's offset anywhere else (into its
// code, or an unrecorded uniform word) would read the first call's offset on every later call at
// offsets of the same residues, silently. So, for programs of every kind of kernel, each program
// is lowered at two sets of offsets of the same residues, and the two lowerings must be the same
// code with the same uniform words, but for the recorded offset words, which hold the offsets
// lowered for (plus their constants).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grad, jit } from '@scorch/autograd';
import {
  type Tensor, argmax, concat, cumsum, indexSelect, matmul, pad, softmax, sum, tensor, transpose, where,
} from '@scorch/tensor';
import { type WebGPUHandle, WebGPUCompiledProgram } from '@scorch/kernels';
import { rowSquares } from '../../../tests/fixtures/definedPrimitives.js';
import { gpuDevice, hardwarePathDevice } from './helpers.js';

/** The parts of a lowered kernel this test compares (compiler/lower.ts LoweredKernel). */
interface LoweredKernelView {
  readonly label: string;
  readonly code: string;
  readonly uniforms: Uint32Array | null;
  readonly inputOffsets?: readonly { word: number; input: number; plus: number }[];
}

/** WebGPUCompiledProgram's private lowering for a layout (each input in its own buffer here). */
function lowerAt(program: WebGPUCompiledProgram, offsets: readonly number[]): readonly LoweredKernelView[] {
  const lower = (program as unknown as { lower(groups: readonly number[], offsets: readonly number[]): { kernels: readonly LoweredKernelView[] } }).lower;
  return lower.call(program, offsets.map((_, i) => i), offsets).kernels;
}


/** The programs: one or more of every kind of kernel a compiled program lowers to. */
const CASES: [string, number[][], (...xs: Tensor[]) => Tensor | Tensor[]][] = [
  ['an elementwise chain', [[8, 16]], (x) => x.mul(x).sub(x.mul(3)).add(1).tanh()],
  ['a broadcast row and column', [[8, 16], [16], [8, 1]], (x, b, c) => x.add(b).mul(c).relu()],
  ['row, column and full sums', [[8, 16]], (x) => [sum(x.mul(x), [1]), sum(x.exp(), [0]), sum(x)]],
  ['a keepdims sum read reshaped', [[24, 16]], (x) => sum(x.square(), [1], true).reshape([4, 6, 1]).sqrt()],
  ['softmax rows', [[8, 16]], (x) => softmax(x, 1)],
  ['argmax', [[8, 16]], (x) => argmax(x, 1)],
  ['cumsum', [[8, 16]], (x) => cumsum(x, 1)],
  ['concat, pad and a transpose', [[8, 16], [4, 16]], (x, y) => [concat([x, y], 0).neg(), pad(x, [[1, 0], [0, 2]]).add(1), transpose(x).add(2)]],
  ['a select', [[8, 16], [8, 16]], (x, y) => where(x.greater(y), x, y.mul(2))],
  ['a product', [[8, 16], [16, 12]], (x, w) => matmul(x, w)],
  ['a large product with a bias and activation', [[64, 32], [32, 64], [64]], (x, w, b) => matmul(x, w).add(b).relu()],
  ['a batched product, rows merged, with a bias', [[2, 32, 16], [2, 16, 64], [64]], (x, w, b) => matmul(x, w).reshape([64, 64]).add(b).tanh()],
  ['a product with K past MATMUL_K_SPAN (launches over spans of K), plain and with an epilogue', [[8, 32776], [32776, 16], [16]], (x, w, b) => [
    matmul(x, w), matmul(x, w).add(b).relu(),
  ]],
  ['a skinny product (dot kernel)', [[2, 64], [64, 3]], (x, w) => matmul(x, w).exp()],
  ['rows gathered and their gradient (scatter-add)', [[12, 8], [5]], (x, i) => [
    indexSelect(x, 0, i.cast('int32')).square(),
    grad((t: Tensor) => sum(indexSelect(t, 0, i.cast('int32')).square()))(x),
  ]],
  ['a defined primitive\'s shader on an input (copied to offset 0 first) and on a computed value', [[8, 16], [8, 16]], (x, y) => [
    rowSquares(x).add(1), rowSquares(y.mul(x)),
  ]],
  ['an MLP loss and its gradients', [[64, 2], [2, 32], [32], [32, 2]], (x, w1, b1, w2) => {
    const loss = (w1: Tensor, b1: Tensor, w2: Tensor) => sum(matmul(matmul(x, w1).add(b1).tanh(), w2).square());
    return grad(loss, { argnums: [0, 1, 2] })(w1, b1, w2);
  }],
];

/** Integer-valued inputs (indices among them), so every program is defined for every case. */
function inputsFor(shapes: readonly number[][], device: string): Tensor[] {
  return shapes.map((shape, k) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, i) => (k === 1 && shape.length === 1 && shape[0] === 5 ? (i * 7) % 12 : ((i * 5 + k) % 7) - 3));
    return tensor(data, { shape, device });
  });
}

function checkCases(device: () => WebGPUHandle): void {
  for (const [name, shapes, f] of CASES) {
    it(name, () => {
      const inputs = inputsFor(shapes, device().device);
      const lowered = jit(f).lower(...inputs);
      const program = lowered.compiled as WebGPUCompiledProgram;
      expect(program).toBeInstanceOf(WebGPUCompiledProgram);
      // Two layouts of the same residues: every residue mod 4 among the inputs, then each offset
      // moved by a different multiple of 4 (none is 0: an input a defined primitive's shader
      // reads is bound as it is at 0, a layout of its own).
      const first = inputs.map((_, i) => 4 * (i + 1) + (i % 4));
      const second = first.map((o, i) => o + 4 * (3 * i + 5));
      const a = lowerAt(program, first);
      const b = lowerAt(program, second);
      expect(b.map((k) => k.label)).toEqual(a.map((k) => k.label));
      for (let k = 0; k < a.length; k++) {
        const where = `${name}: kernel ${k} (${a[k]!.label})`;
        expect(b[k]!.code, `${where}: code`).toBe(a[k]!.code);
        expect(b[k]!.inputOffsets ?? [], `${where}: offset words`).toEqual(a[k]!.inputOffsets ?? []);
        // a's uniform words with its recorded offset words set for `second`: b's, word for word.
        const patched = a[k]!.uniforms ? Uint32Array.from(a[k]!.uniforms!) : null;
        for (const w of a[k]!.inputOffsets ?? []) {
          expect(a[k]!.uniforms![w.word], `${where}: word ${w.word} holds input ${w.input}'s offset`).toBe(first[w.input]! + w.plus);
          patched![w.word] = second[w.input]! + w.plus;
        }
        expect(b[k]!.uniforms === null ? null : Array.from(b[k]!.uniforms!), `${where}: uniform words`).toEqual(patched === null ? null : Array.from(patched));
      }
      for (const t of inputs) t.dispose();
    });
  }
}

describe('every word of a lowering that depends on an input offset is a recorded offset word (software adapter)', () => {
  let gpu: WebGPUHandle;
  beforeAll(async () => {
    gpu = await gpuDevice();
  });
  checkCases(() => gpu);
});

describe('a compiled call reads each slice at its own offset (software adapter)', () => {
  it('a slice at an offset seen two calls before is read there again (rows 0, 1, 0, 2, 1)', async () => {
    // Rows 0 and 1 differ by 4 elements: the same residue mod 4, one variant whose offset words
    // are rewritten per call; the variant's record of them must follow each rewrite.
    const { device } = await gpuDevice();
    const x = tensor(Array.from({ length: 32 }, (_, i) => i), { shape: [8, 4], device });
    const twice = jit((v: Tensor) => v.mul(2));
    const got: number[][] = [];
    for (const r of [0, 1, 0, 2, 1]) {
      const row = x.slice([r, 0], [1, 4]);
      const y = twice(row) as Tensor;
      got.push(Array.from(await y.data()));
      row.dispose();
      y.dispose();
    }
    expect(got).toEqual([0, 1, 0, 2, 1].map((r) => [0, 1, 2, 3].map((c) => 2 * (4 * r + c))));
    twice.clearCache();
    x.dispose();
  });
});

describe('the same on the path a hardware GPU takes (fused product epilogues)', () => {
  let gpu: WebGPUHandle;
  let restore: () => void;
  beforeAll(async () => {
    ({ gpu, restore } = await hardwarePathDevice());
  });
  afterAll(() => restore());
  checkCases(() => gpu);
});
