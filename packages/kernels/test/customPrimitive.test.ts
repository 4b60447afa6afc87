// Primitives defined with definePrimitive, on WebGPU (llvmpipe here), against their CPU
// implementations and float64 host math: eager kernels (strided and broadcast operands), grad,
// jvp and vmap through the definitions' rules, jit with the elementwise expression fused into its
// neighbours (one kernel, the WGSL checked), a shader primitive eagerly and under jit (operands
// and results moved to offset 0 where the compiled program stores them elsewhere), compile errors
// that name the primitive and the compiler's line, and the profiler naming the primitive. The
// definitions are shared with the CPU tests: tests/fixtures/definedPrimitives.ts.
//
// Tolerances (u = 2^-24, float32):
// - softplusSquare: s = max(x, 0) + sc_log1p(sc_exp(−|x|)) with sc_exp and sc_log1p ≤ 1 ULP
//   (mathLibrary.ts); log1p damps exp's relative error (d log1p(e)/de · e/log1p(e) ≤ 1), so s is
//   within about 3u and s² within 7u relative; 16u covers it with room.
// - Derivatives compose built-in ops (softplus, sigmoid, products: ≤ 10 roundings of ≤ 2 ULP
//   functions on x ∈ [−4, 4], where every intermediate is well conditioned): 64u relative.
// - rowSquares sums n squares serially: |error| ≤ (n + 1)·u·Σx² (Higham's bound for a sum plus
//   the squares' own roundings).

import { beforeAll, describe, expect, it } from 'vitest';
import { grad, jit, jvp, vmap } from '@scorch/autograd';
import {
  type Tensor, definePrimitive, memory, mul, profile, sum, tensor, tidy,
} from '@scorch/tensor';
import { type WebGPUHandle, WebGPUCompiledProgram } from '@scorch/kernels';
import { rowSquares, scaledExp, softplusHost, softplusSquare, softplusSquareDerivative } from '../../../tests/fixtures/definedPrimitives.js';
import { gpuDevice, hashSeed, hostRandom } from './helpers.js';

let gpu: WebGPUHandle;
let dev = 'webgpu';
beforeAll(async () => {
  gpu = await gpuDevice();
  dev = gpu.device;
});

const U = 2 ** -24;
const sigmoidHost = (x: number) => 1 / (1 + Math.exp(-x));

const read = async (t: Tensor) => Array.from(await t.data());

/** Float32 host values in [lo, hi). */
function values(n: number, lo: number, hi: number, seed: string): number[] {
  const rnd = hostRandom(hashSeed(seed));
  return Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * rnd()));
}

function expectWithin(got: readonly number[], expected: readonly number[], rel: number, abs = 0): void {
  expect(got.length).toBe(expected.length);
  got.forEach((g, i) => {
    const e = expected[i]!;
    if (!(Math.abs(g - e) <= rel * Math.abs(e) + abs)) throw new Error(`element ${i}: got ${g}, expected ${e} (bound ${rel * Math.abs(e) + abs})`);
  });
}

describe('an elementwise defined primitive on WebGPU', () => {
  it('eager: contiguous, transposed and broadcast operands match the float64 formula', async () => {
    const xs = values(7 * 33, -30, 30, 'custom-eager');
    const x = tensor(xs, { shape: [7, 33], device: dev });
    expectWithin(await read(softplusSquare(x)), xs.map((v) => softplusHost(v) ** 2), 16 * U);
    const xt = x.transpose();
    const expectedT = Array.from({ length: 33 * 7 }, (_, k) => softplusHost(xs[(k % 7) * 33 + Math.floor(k / 7)]!) ** 2);
    expectWithin(await read(softplusSquare(xt)), expectedT, 16 * U);
    const row = values(33, -2, 2, 'custom-row');
    const y = scaledExp(x.mul(0.1), tensor(row, { device: dev }));
    // a·e^b: the product of x·0.1 (one rounding) and sc_exp (1 ULP) and one more rounding: 4u.
    expectWithin(await read(y), xs.map((v, k) => Math.fround(v * Math.fround(0.1)) * Math.exp(row[k % 33]!)), 4 * U);
  });

  it('grad and jvp go through its rules, on the device', async () => {
    const xs = values(64, -4, 4, 'custom-grad');
    const x = tensor(xs, { device: dev });
    const g = grad((t: Tensor) => sum(softplusSquare(t)))(x) as Tensor;
    expect(g.device).toBe(dev);
    const truth = xs.map((v) => 2 * softplusHost(v) * sigmoidHost(v));
    expectWithin(await read(g), truth, 64 * U, U);
    const [, tangent] = jvp((t: Tensor) => softplusSquare(t), [x], [tensor(xs.map(() => 1), { device: dev })]);
    expectWithin(await read(tangent), truth, 64 * U, U);
  });

  it('vmap batches it with an unbatched operand', async () => {
    const a = values(5 * 3, -2, 2, 'custom-vmap-a');
    const b = values(3, -1, 1, 'custom-vmap-b');
    const y = vmap((u: Tensor, v: Tensor) => scaledExp(u, v), { inAxes: [0, null] })(tensor(a, { shape: [5, 3], device: dev }), tensor(b, { device: dev })) as Tensor;
    expect(y.shape).toEqual([5, 3]);
    expectWithin(await read(y), a.map((v, k) => v * Math.exp(b[k % 3]!)), 4 * U);
  });

  it('jit fuses its expression into its neighbours: one kernel, the same bits as eager', async () => {
    const xs = values(7 * 33, -6, 6, 'custom-jit');
    const x = tensor(xs, { shape: [7, 33], device: dev });
    const f = (t: Tensor) => softplusSquare(t.mul(2)).add(1).tanh();
    const eager = await read(tidy(() => f(x)));
    const compiled = jit(f);
    expect(await read(compiled(x) as Tensor)).toEqual(eager);
    const kernels = compiled.lower(x).kernels();
    expect(kernels).toHaveLength(1);
    const source = kernels[0]!.source;
    expect(source).toContain('fn cp_softplusSquare(x: f32) -> f32');
    expect(source).toContain('fn softplusSquare_value(x: f32) -> f32');
    expect(source).toMatch(/cp_softplusSquare\(/);
    expect(source).toContain('fn sc_log1p('); // the math library it calls came along
    // Its gradient compiled too, through its vjp rule. Not compared bit for bit with eager: the
    // same rule written with built-ins only (softplus·σ products) already differs by an ulp
    // between eager and fused code on llvmpipe, so both are held to the float64 derivative.
    // h(x) = tanh(0.1·(s(2x)² + 1)) on [−2, 2]: the tanh argument stays ≤ 1.72, where
    // 1 − tanh² ≥ 0.12, so its cancellation costs at most 4u/0.12 ≈ 33u relative; the other
    // ≤ 10 roundings of ≤ 2-ULP functions add 20u: 96u holds it.
    const xg = tensor(values(64, -2, 2, 'custom-jit-grad'), { device: dev });
    const h = (t: Tensor) => softplusSquare(t.mul(2)).add(1).mul(0.1).tanh();
    const g = (t: Tensor) => grad((u: Tensor) => sum(h(u)))(t) as Tensor;
    const truth = (await read(xg)).map((v) => {
      const y = 0.1 * (softplusHost(2 * v) ** 2 + 1);
      return (1 - Math.tanh(y) ** 2) * 0.1 * 2 * softplusHost(2 * v) * sigmoidHost(2 * v) * 2;
    });
    expectWithin(await read(tidy(() => g(xg))), truth, 96 * U);
    const jg = jit(g);
    expectWithin(await read(jg(xg)), truth, 96 * U);
    jg.clearCache();
    compiled.clearCache();
  });
});

describe('the rules that run on the device are the definition\'s', () => {
  // softplusSquare again, with a vjp three times too large: grad (eager and compiled) gives 3×
  // the derivative, jvp (its correct rule) the derivative itself.
  const wrongVjp = definePrimitive({
    name: 'softplusSquareWrongVjp',
    kind: 'elementwise',
    inputs: ['x'],
    cpu: (x) => softplusHost(x) ** 2,
    wgsl: softplusSquare.definition.wgsl as { expression: string; functions: string },
    jvp: ([x], [t]) => (t ? mul(t, softplusSquareDerivative(x!)) : null),
    vjp: (ct, [x]) => [mul(mul(ct, softplusSquareDerivative(x!)), 3)],
  });

  it('grad uses the vjp rule (eager and under jit), jvp the jvp rule', async () => {
    const xs = values(32, -4, 4, 'custom-rules');
    const x = tensor(xs, { device: dev });
    const truth = xs.map((v) => 2 * softplusHost(v) * sigmoidHost(v));
    const g = (t: Tensor) => grad((u: Tensor) => sum(wrongVjp(u)))(t) as Tensor;
    // 3× adds one more rounding to the derivative's bound.
    expectWithin(await read(g(x)), truth.map((v) => 3 * v), 64 * U, 3 * U);
    const jg = jit(g);
    expectWithin(await read(jg(x)), truth.map((v) => 3 * v), 64 * U, 3 * U);
    jg.clearCache();
    const [, tangent] = jvp((t: Tensor) => wrongVjp(t), [x], [tensor(xs.map(() => 1), { device: dev })]);
    expectWithin(await read(tangent), truth, 64 * U, U);
  });
});

describe('a shader defined primitive on WebGPU', () => {
  const rowsOf = (xs: readonly number[], n: number) => Array.from({ length: xs.length / n }, (_, i) => xs.slice(i * n, (i + 1) * n));
  const squaresBound = (rows: number[][]) => rows.map((r) => (r.length + 1) * U * r.reduce((a, v) => a + v * v, 0));

  async function expectRowSquares(t: Tensor, rows: number[][]): Promise<void> {
    const got = await read(t);
    const bounds = squaresBound(rows);
    rows.forEach((r, i) => {
      const e = r.reduce((a, v) => a + v * v, 0);
      if (!(Math.abs(got[i]! - e) <= bounds[i]!)) throw new Error(`row ${i}: got ${got[i]}, expected ${e}`);
    });
  }

  it('eager: dense, transposed (copied first) and sliced operands', async () => {
    const xs = values(9 * 35, -2, 2, 'custom-shader');
    const x = tensor(xs, { shape: [9, 35], device: dev });
    await expectRowSquares(rowSquares(x), rowsOf(xs, 35));
    const cols = Array.from({ length: 35 }, (_, j) => Array.from({ length: 9 }, (_, i) => xs[i * 35 + j]!));
    await expectRowSquares(rowSquares(x.transpose()), cols);
    const window = x.slice([2, 3], [5, 30]);
    await expectRowSquares(rowSquares(window), rowsOf(xs, 35).slice(2, 7).map((r) => r.slice(3, 33)));
  });

  it('jit: its own kernel between fused ones, results at offsets and read back by the shader', async () => {
    const xs = values(6 * 20, -2, 2, 'custom-shader-jit');
    const x = tensor(xs, { shape: [6, 20], device: dev });
    const rows2 = rowsOf(xs.map((v) => 2 * v), 20);
    // y = 2x is both a result (in the results block, at offset 0) and the shader's operand; the
    // shader's result lands after it in that block: it goes through a scratch buffer.
    const f = (t: Tensor) => {
      const y = t.mul(2);
      return [y, rowSquares(y), rowSquares(y).add(1)] as const;
    };
    const compiled = jit(f);
    const [y, r, r1] = compiled(x) as unknown as [Tensor, Tensor, Tensor];
    expect(await read(y)).toEqual(xs.map((v) => 2 * v));
    await expectRowSquares(r, rows2);
    const plusOne = await read(r1);
    const plain = await read(r);
    expect(plusOne).toEqual(plain.map((v) => Math.fround(v + 1)));
    const names = compiled.lower(x).kernels().map((k) => k.name);
    expect(names.filter((n) => n === 'custom_rowSquares')).toHaveLength(1);
    const source = compiled.lower(x).kernels().find((k) => k.name === 'custom_rowSquares')!.source;
    expect(source).toContain("// custom primitive 'rowSquares'");
    // Under grad and vmap too (the default batching loops over examples).
    const g = jit((t: Tensor) => grad((u: Tensor) => sum(rowSquares(u)))(t) as Tensor);
    expectWithin(await read(g(x)), xs.map((v) => 2 * v), 0, 0);
    const batch = tensor(values(3 * 4 * 5, -1, 1, 'custom-shader-vmap'), { shape: [3, 4, 5], device: dev });
    const vm = vmap((t: Tensor) => rowSquares(t))(batch) as Tensor;
    expect(vm.shape).toEqual([3, 4]);
    await expectRowSquares(vm, rowsOf(await read(batch), 5));
    compiled.clearCache();
    g.clearCache();
  });

  it('jit over minibatch slices: one lowering with the operand at offset 0 and one per residue elsewhere, each call equal to eager', async () => {
    // Batches of 3 rows of 19: the slice of batch i starts at element 57i, so the offsets meet
    // every residue mod 4. The shader's operand is copied to a scratch buffer when it is not at
    // offset 0; that copy reads the offset from a recorded uniform word, so a new offset of a seen
    // residue costs no lowering (it used to cost one per offset: the copy's offset was baked in).
    const batches = 24;
    const xs = values(batches * 3 * 19, -2, 2, 'custom-shader-slices');
    const data = tensor(xs, { shape: [batches * 3, 19], device: dev });
    const f = (t: Tensor) => rowSquares(t.mul(t.add(1))).add(rowSquares(t));
    const compiled = jit(f);
    const program = compiled.lower(data.slice([0, 0], [3, 19])).compiled as WebGPUCompiledProgram;
    for (let epoch = 0; epoch < 2; epoch++) {
      for (let i = 0; i < batches; i++) {
        const x = data.slice([3 * i, 0], [3, 19]);
        const [got, want] = [compiled(x) as Tensor, f(x)];
        expect(await read(got), `epoch ${epoch}, batch ${i}`).toEqual(await read(want));
        for (const t of [x, got, want]) t.dispose();
      }
    }
    // Offset 0 (bound as it is) and the four residues elsewhere (copied first).
    expect(program.stats.lowerings).toBe(5);
    expect(program.variantCount).toBe(5);
    compiled.clearCache();
    data.dispose();
  });

  it('jit: an operand stored at an offset of the results block is copied to offset 0 first', async () => {
    const xs = values(6 * 20, -2, 2, 'custom-shader-operand-offset');
    const x = tensor(xs, { shape: [6, 20], device: dev });
    // a = 3x takes the block's first 120 elements, so y = 2x, the shader's operand, starts at 120.
    const compiled = jit((t: Tensor) => {
      const y = t.mul(2);
      return [t.mul(3), y, rowSquares(y)] as const;
    });
    const [a, y, r] = compiled(x) as unknown as [Tensor, Tensor, Tensor];
    expect(await read(a)).toEqual(xs.map((v) => Math.fround(3 * v)));
    expect(await read(y)).toEqual(xs.map((v) => 2 * v));
    await expectRowSquares(r, rowsOf(xs.map((v) => 2 * v), 20));
    compiled.clearCache();
  });

  it('jit: a variant whose scratch copy is larger than an earlier variant\'s grows the shared temp', async () => {
    // A program's variants share its temps, but the scratch copy of the shader's operand depends on
    // the layout: first x's 8 elements (x at an offset, y at 0), then y's 64 (x at 0, y at an offset).
    const xs = Array.from({ length: 12 }, (_, i) => i - 5);
    const ys = Array.from({ length: 72 }, (_, i) => (i % 7) - 3);
    const X = tensor(xs, { shape: [3, 4], device: dev });
    const Y = tensor(ys, { shape: [18, 4], device: dev });
    await Promise.all([X.data(), Y.data()]);
    const before = memory();
    const compiled = jit((x: Tensor, y: Tensor) => [rowSquares(x), rowSquares(y)] as Tensor[]);
    // Twice each layout: the temp grows once, on the first call of the second layout.
    for (const [x0, y0] of [[1, 0], [0, 2], [1, 0], [0, 2]] as const) {
      const [xa, ya] = [X.slice([x0, 0], [2, 4]), Y.slice([y0, 0], [16, 4])];
      const [p, q] = compiled(xa, ya) as Tensor[];
      await expectRowSquares(p!, rowsOf(xs.slice(4 * x0, 4 * x0 + 8), 4));
      await expectRowSquares(q!, rowsOf(ys.slice(4 * y0, 4 * y0 + 64), 4));
      for (const t of [xa, ya, p!, q!]) t.dispose();
    }
    compiled.clearCache();
    // The smaller temp the larger one replaced was given back with the rest: nothing is left.
    expect(memory()).toEqual(before);
    X.dispose();
    Y.dispose();
  });

  it('frees what it makes, copies included', async () => {
    // memory() is compared across awaits (readbacks): every test here clears the jitted functions
    // it makes, or one dropped by an earlier test could be collected during this one's awaits and
    // free its programs' buffers then (docs/jit.md), and memory() would drop under the comparison.
    const x = tensor(values(8 * 8, -1, 1, 'custom-memory'), { shape: [8, 8], device: dev });
    await read(rowSquares(x).mul(0)); // warm the pipelines
    const before = memory();
    const out = tidy(() => rowSquares(x.transpose()).add(softplusSquare(x).sum(1)));
    await read(out);
    out.dispose();
    expect(memory().tensors).toBe(before.tensors);
    expect(memory().buffers).toBe(before.buffers);
  });

  it('a workgroup size that disagrees with the code is an error at once', () => {
    const mismatched = definePrimitive({
      name: 'mismatchedWorkgroup', kind: 'shader', inputs: ['x'],
      infer: ([x]) => x!, cpu: ([x], out) => out.data.set(x!.data),
      wgsl: { code: '@compute @workgroup_size(32) fn main() {}', workgroupSize: [64, 1, 1] },
      jvp: () => null, vjp: () => [null],
    });
    expect(() => mismatched(tensor([1, 2], { device: dev }))).toThrow(/mismatchedWorkgroup: the shader declares @workgroup_size\(32, 1, 1\) but the definition says workgroupSize \[64, 1, 1\]/);
  });

  it('a workgroup size given by a module-scope constant is checked too; one that cannot be read is an error', async () => {
    const shader = (name: string, declarations: string, size: string) => definePrimitive({
      name, kind: 'shader', inputs: ['x'],
      infer: ([x]) => x!, cpu: ([x], out) => out.data.set(x!.data),
      wgsl: {
        code: `${declarations}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(${size}) fn main(@builtin(global_invocation_id) id: vec3<u32>) { if (id.x < arrayLength(&y)) { y[id.x] = 2.0 * x[id.x]; } }`,
        workgroupSize: [64, 1, 1],
      },
      jvp: () => null, vjp: () => [null],
    });
    const x = tensor(Array.from({ length: 100 }, (_, i) => i), { device: dev });
    // Declared as 32 through a constant, launched as 64s: elements 64 to 99 were left unwritten.
    expect(() => shader('constWorkgroup32', 'const WG = 32u;', 'WG')(x)).toThrow(/constWorkgroup32: the shader declares @workgroup_size\(32, 1, 1\) but the definition says workgroupSize \[64, 1, 1\]/);
    expect(() => shader('overrideWorkgroup', 'override WG: u32 = 16;', 'WG, 1')(x)).toThrow(/declares @workgroup_size\(16, 1, 1\)/);
    expect(() => shader('exprWorkgroup', 'const WG = 32u;', 'WG * 2u')(x)).toThrow(
      /exprWorkgroup: the shader's workgroup size cannot be checked against the definition's workgroupSize \[64, 1, 1\]: @workgroup_size\(WG \* 2u\): 'WG \* 2u' is neither an integer literal nor a module-scope const or override initialised by one/,
    );
    // The same constant with the definition's size runs, every element written.
    const y = shader('constWorkgroup64', 'const WG: u32 = 64u;', 'WG')(x);
    expect(Array.from(await y.data())).toEqual(Array.from({ length: 100 }, (_, i) => 2 * i));
  });

  it('an output too large for the default launch along x is an error at once, not elements left unwritten', () => {
    // One element more than 65535 workgroups of 64 cover. The default launch used to fold into
    // y, and a shader indexing by global_invocation_id.x, as documented, never wrote the rest.
    const n = 65535 * 64 + 1;
    const tooLong = definePrimitive({
      name: 'tooLongForX', kind: 'shader', inputs: ['x'],
      infer: ([x]) => ({ shape: [n], dtype: x!.dtype }), cpu: (_inputs, out) => out.data.fill(1),
      wgsl: {
        code: '@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) id: vec3<u32>) { if (id.x < arrayLength(&y)) { y[id.x] = 1.0; } }',
        workgroupSize: [64, 1, 1],
      },
      jvp: () => null, vjp: () => [null],
    });
    const before = memory().buffers;
    expect(() => tooLong(tensor([1], { device: dev }))).toThrow(
      `tooLongForX: the default dispatch is one invocation per output element along x, at most 65535 workgroups of 64 (4194240 elements), but the output has ${n}; give wgsl.dispatch`,
    );
    expect(memory().buffers).toBe(before + 1);
  });
});

describe('a shader defined primitive is bound by its contract, not by what its code uses', () => {
  it('an input the shader declares but never reads still takes its buffer', async () => {
    // A layout derived from the code leaves out bindings the code does not use, and binding the
    // input there failed validation ('binding index 0 not present in the bind group layout').
    const onesLike = definePrimitive({
      name: 'onesLike', kind: 'shader', inputs: ['x'],
      infer: ([x]) => x!, cpu: (_inputs, out) => out.data.fill(1),
      wgsl: {
        code: '@group(0) @binding(0) var<storage, read> x: array<f32>;\n@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) id: vec3<u32>) { if (id.x < arrayLength(&y)) { y[id.x] = 1.0; } }',
        workgroupSize: [64, 1, 1],
      },
      jvp: () => null, vjp: () => [null],
    });
    const x = tensor([[1, 2, 3], [4, 5, 6]], { device: dev });
    expect(await read(onesLike(x))).toEqual([1, 1, 1, 1, 1, 1]);
    const compiled = jit((t: Tensor) => onesLike(t.mul(2)).add(t));
    expect(await read(compiled(x))).toEqual([2, 3, 4, 5, 6, 7]);
    compiled.clearCache();
  });

  it('bindings or an entry point that differ from the contract are an error naming the primitive and what was expected', async () => {
    const x = tensor([1, 2, 3], { device: dev });
    const contract = /\n {2}expected: entry point 'main'; group 0 with @binding\(0\) var<storage, read> x: array<T> and the output at @binding\(1\) as var<storage, read_write> …: array<T>/;
    const writesItsInput = definePrimitive({
      name: 'writesItsInput', kind: 'shader', inputs: ['x'],
      infer: ([v]) => v!, cpu: ([v], out) => out.data.set(v!.data),
      wgsl: {
        code: '@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) id: vec3<u32>) { if (id.x < 3u) { x[id.x] = 0.0; y[id.x] = 1.0; } }',
        workgroupSize: [64, 1, 1],
      },
      jvp: () => null, vjp: () => [null],
    });
    await expect(writesItsInput(x).data()).rejects.toThrow(/^custom primitive 'writesItsInput': its shader is not a valid kernel \(kernel 'custom_writesItsInput'\): [\s\S]*@binding\(0\)/);
    expect(() => writesItsInput(x)).toThrow(contract);
    const noMain = definePrimitive({
      name: 'noMain', kind: 'shader', inputs: ['x'],
      infer: ([v]) => v!, cpu: ([v], out) => out.data.set(v!.data),
      wgsl: {
        code: '@group(0) @binding(0) var<storage, read> x: array<f32>;\n@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(64)\nfn entry(@builtin(global_invocation_id) id: vec3<u32>) { if (id.x < 3u) { y[id.x] = x[id.x]; } }',
        workgroupSize: [64, 1, 1],
      },
      jvp: () => null, vjp: () => [null],
    });
    await expect(noMain(x).data()).rejects.toThrow(/^custom primitive 'noMain': its shader is not a valid kernel \(kernel 'custom_noMain'\): [\s\S]*main/);
    // Known invalid, it throws at once when used again, with the same message.
    expect(() => noMain(x)).toThrow(contract);
    expect(await read(x.add(1))).toEqual([2, 3, 4]);
    expect(await read(x)).toEqual([1, 2, 3]);
  });
});

describe('malformed WGSL is an error naming the primitive, with the compiler\'s line', () => {
  it('an elementwise expression calling an unknown function', async () => {
    const bad = definePrimitive({
      name: 'badExpression', kind: 'elementwise', inputs: ['x'], cpu: (x) => x,
      wgsl: { expression: 'x + notAFunction(x)' },
      jvp: () => null, vjp: () => [null],
    });
    const y = bad(tensor([1, 2, 3], { device: dev }));
    // Line 2 of its WGSL: no functions, so line 1 is the wrapper's `fn`, line 2 the expression.
    await expect(y.data()).rejects.toThrow(/custom primitive 'badExpression': its WGSL does not compile \(kernel 'custom_badExpression_float32\w*'\):\n {2}line 2:\d+ of 'badExpression' \(kernel line \d+\): .*notAFunction[\s\S]*return x \+ notAFunction\(x\);/);
    // The device is still usable, and other kernels are untouched.
    expect(await read(softplusSquare(tensor([0], { device: dev })))).toEqual([Math.fround(Math.LN2 ** 2)]);
    // Called again, the kernel known not to compile throws at once, leaving no buffer behind.
    const x = tensor([1, 2, 3], { device: dev });
    const before = memory();
    expect(() => bad(x)).toThrow(/custom primitive 'badExpression': its WGSL does not compile/);
    expect(memory().buffers).toBe(before.buffers);
    // Fused into a compiled kernel, the error still names it and its own line.
    const compiled = jit((t: Tensor) => bad(t.mul(2)).add(1));
    await expect(compiled(tensor([1, 2, 3], { device: dev })).data()).rejects.toThrow(/custom primitive 'badExpression': its WGSL does not compile \(kernel 'fused_elementwise_\[3\]x1'\):\n {2}line 2:\d+ of 'badExpression'/);
    expect(await read(tensor([1, 2], { device: dev }).add(1))).toEqual([2, 3]);
    compiled.clearCache();
  });

  it('a shader with a syntax error on its fourth line', async () => {
    const bad = definePrimitive({
      name: 'badShader', kind: 'shader', inputs: ['x'],
      infer: ([x]) => x!, cpu: ([x], out) => out.data.set(x!.data),
      wgsl: {
        code: '@group(0) @binding(0) var<storage, read> x: array<f32>;\n@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) id: vec3<u32>) { y[id.x] = x[id.x] +; }',
        workgroupSize: [64, 1, 1],
      },
      jvp: () => null, vjp: () => [null],
    });
    const y = bad(tensor([1, 2], { device: dev }));
    await expect(y.data()).rejects.toThrow(/custom primitive 'badShader': its WGSL does not compile \(kernel 'custom_badShader'\):\n {2}line 4:\d+ of 'badShader' \(kernel line 5\)/);
    expect(await read(tensor([1, 2], { device: dev }).add(1))).toEqual([2, 3]);
    // Used again (here under jit, whose kernels are made when the program is lowered), the kernel
    // known not to compile fails at once with the same error.
    const compiled = jit((t: Tensor) => bad(t.mul(2)).add(1));
    await expect((async () => compiled(tensor([1, 2], { device: dev })).data())()).rejects.toThrow(/custom primitive 'badShader': its WGSL does not compile \(kernel 'custom_badShader'\):\n {2}line 4:\d+ of 'badShader'/);
    expect(await read(tensor([1, 2], { device: dev }).add(1))).toEqual([2, 3]);
    compiled.clearCache();
  });
});

describe('device errors name the defined primitive, not the built-in entry point', () => {
  it('a float64 output on WebGPU, and inputs on two devices', async () => {
    // infer says float64, which WGSL has no type for: the device check said "custom: device ...".
    const widen = definePrimitive({
      name: 'widenToFloat64', kind: 'shader', inputs: ['x'],
      infer: ([x]) => ({ shape: x!.shape, dtype: 'float64' }),
      cpu: ([x], out) => out.data.set(x!.data),
      wgsl: { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] },
      jvp: () => null, vjp: () => [null],
    });
    expect(await read(widen(tensor([1, 2])))).toEqual([1, 2]); // the CPU has float64
    const x = tensor([1, 2], { device: dev });
    const before = memory();
    expect(() => widen(x)).toThrow(/^widenToFloat64: device 'webgpu' does not support dtype float64 \(it supports float32, int32, bool\)$/);
    expect(memory().buffers).toBe(before.buffers);
    expect(() => scaledExp(tensor([1, 2]), x)).toThrow(/^scaledExp: tensors are on different devices \('cpu' and 'webgpu'\); copy one to the other's device first: tensor\(await t\.data\(\), \{ shape: t\.shape, dtype: t\.dtype, device \}\)$/);
  });
});

describe('the profiler names a defined primitive', () => {
  it('eager kernels are reported under the primitive\'s name', async () => {
    const x = tensor(values(1024, -3, 3, 'custom-profile'), { device: dev });
    await read(softplusSquare(x)); // compile outside the profile
    const r = await profile(async () => read(softplusSquare(x)));
    const own = r.events.filter((e) => e.name !== 'poison fill');
    expect(own.map((e) => e.name)).toEqual(['softplusSquare']);
    expect(own[0]!.kernel).toMatch(/^custom_softplusSquare_float32/);
    expect(own[0]!.bytes).toBe(2 * 1024 * 4);
  });
});
