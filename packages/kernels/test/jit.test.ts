// jit on WebGPU: traced programs compiled to fused kernels. A fused kernel evaluates the same
// WGSL expressions as the eager kernels, in the same order, so elementwise fusion must give
// eager WebGPU's results bit for bit; reductions and matmuls accumulate in other orders and are
// held to the summation bound of the parity tests. Whole training steps are compared with eager
// WebGPU; dispatch counts, submits per call, in-place updates, index errors and memory are
// checked directly.

import { beforeAll, describe, expect, it } from 'vitest';
import { grad, valueAndGrad } from '@scorch/autograd';
import {
  type RandomKey, type Tensor, concat, foldIn, full, groupNorm, matmul, memory, narrow, pad, randn, randomKey, sizeOf, softplus, splitKey, stack, sum, tensor, tidy, where, zeros,
} from '@scorch/tensor';
import { type WebGPUHandle, SOFTWARE_KERNEL_EQUATIONS_MAX, SOFTWARE_TRANSCENDENTALS_MAX, VARIANT_LIMIT, WebGPUCompiledProgram, initWebGPU } from '@scorch/kernels';
import { mlpScore, denoisingScoreMatchingLoss, slicedScoreMatchingLoss } from '@scorch/score';
import { RUN_SEED, exact, firstMismatch, gpuDevice, hashSeed, hostRandom, jitClearedAfterEachTest, ulp, uniformData } from './helpers.js';

let gpu: WebGPUHandle;
let dev = 'webgpu';
beforeAll(async () => {
  gpu = await gpuDevice();
  dev = gpu.device;
});

const read = async (t: Tensor) => Array.from(await t.data());

// Every jitted function a test makes is cleared when the test ends (helpers.ts says why).
const jit = jitClearedAfterEachTest();


describe('elementwise fusion equals eager WebGPU bit for bit', () => {
  // A random chain over a [7,33] value, a [33] row broadcast, a [7,1] column broadcast, a
  // transposed [33,7] input and a slice of a [9,35] input: every kind of read through index math.
  type Op = (a: Tensor, b: Tensor) => Tensor;
  const unary: ((a: Tensor) => Tensor)[] = [
    (a) => a.neg(), (a) => a.tanh(), (a) => a.sigmoid(), (a) => a.exp(), (a) => a.abs().add(1).log(), (a) => a.abs().sqrt(),
    (a) => softplus(a), (a) => a.sin(), (a) => a.square(), (a) => a.relu(),
    (a) => a.mul(3).floor(), (a) => a.mul(3).round(), (a) => a.ceil(), (a) => a.sign(), (a) => a.erf(), (a) => a.gelu(),
    (a) => a.gelu({ approximate: 'tanh' }), (a) => a.clamp(-0.5, 0.75),
  ];
  const binary: Op[] = [
    (a, b) => a.add(b), (a, b) => a.sub(b), (a, b) => a.mul(b), (a, b) => a.maximum(b), (a, b) => a.minimum(b),
    (a, b) => a.less(b).cast('float32').mul(a), (a, b) => a.div(b.abs().add(1)),
  ];
  const TRANSCENDENTAL_PRIMS = new Set(['exp', 'log', 'sin', 'cos', 'tanh', 'log1p', 'expm1', 'sigmoid', 'pow', 'erf']);
  for (let trial = 0; trial < 12; trial++) {
    it(`random chain ${trial}`, async () => {
      const rnd = hostRandom(hashSeed('jit-chain', trial));
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
      const steps = Array.from({ length: 6 + Math.floor(rnd() * 6) }, () => ({ u: pick(unary), b: pick(binary), operand: Math.floor(rnd() * 5), unaryFirst: rnd() < 0.5 }));
      const inputs = {
        x: uniformData(7 * 33, rnd), row: uniformData(33, rnd), col: uniformData(7, rnd), tr: uniformData(33 * 7, rnd), big: uniformData(9 * 35, rnd),
      };
      const f = (x: Tensor, row: Tensor, col: Tensor, tr: Tensor, big: Tensor) => {
        const operands = [row, col, tr.transpose(), big.slice([1, 2], [7, 33]), x.mul(0.5)];
        let v = x;
        for (const s of steps) {
          if (s.unaryFirst) v = s.u(v);
          v = s.b(v, operands[s.operand]!);
          // Keep magnitudes bounded so no step overflows into a different special value.
          v = v.tanh().mul(2);
        }
        return v.add(sum(v, 0, true));
      };
      const make = () => [
        tensor(inputs.x, { shape: [7, 33], device: dev }), tensor(inputs.row, { shape: [33], device: dev }),
        tensor(inputs.col, { shape: [7, 1], device: dev }), tensor(inputs.tr, { shape: [33, 7], device: dev }),
        tensor(inputs.big, { shape: [9, 35], device: dev }),
      ] as const;
      const args = make();
      const eager = await read(tidy(() => f(...args)));
      const compiled = jit(f);
      const fused = await read(compiled(...args));
      // The column sum is one reduction over 7 values: eager and fused reductions add in
      // different orders, so the bound is the summation's (7·u·Σ|v|, with |v| ≤ 2 → 28·7·u).
      const bound = 7 * 2 ** -24 * 14 + ulp(30);
      const mismatch = firstMismatch(eager, fused, () => bound);
      expect(mismatch, `chain ${trial} (seed ${RUN_SEED})`).toBeNull();
      // The chain, the column sum (its prologue) and the final add (its epilogue's reader); on a
      // software adapter a kernel computes at most SOFTWARE_TRANSCENDENTALS_MAX transcendentals,
      // so a chain of more takes a kernel per that many (about 1 chain in 80 here: 6–11 steps of
      // a tanh, some with a softplus, gelu or erf before it).
      const lowered = compiled.lower(...args);
      const equations = lowered.program.equations;
      const transcendentals = equations.filter((eq) => TRANSCENDENTAL_PRIMS.has(eq.prim)).length;
      const chainKernels = gpu.backend.softwareAdapter ? Math.max(1, Math.ceil(transcendentals / SOFTWARE_TRANSCENDENTALS_MAX)) : 1;
      // Where the chain is cut into kernels, a value computed from an operand alone (smaller than
      // the chain: |row| + 1 for a division, on [33]) that kernels on both sides of the cut read is
      // stored by a kernel of its own when it costs more than the plan recomputes (planFusion's
      // recompute rule: |row| + 1 is five operations, past recomputeCostMax's 4). Such a kernel
      // is counted apart, and must have at least two readers: it exists for them.
      const kernels = lowered.kernels();
      const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
      const operandSide = kernels.filter((k) => k.equations.every((i) => equations[i]!.prim !== 'sum' && size(equations[i]!.out.shape) < 7 * 33));
      for (const k of operandSide) {
        const outs = new Set(k.equations.map((i) => equations[i]!.out.id));
        const readers = kernels.filter((r) => r !== k && r.equations.some((i) => equations[i]!.inputs.some((x) => outs.has(x.id))));
        expect(readers.length, `chain ${trial} (seed ${RUN_SEED}): ${k.name} computes an operand's value for ${readers.length} kernel(s)`).toBeGreaterThanOrEqual(2);
      }
      expect(kernels.length - operandSide.length, `chain ${trial} (seed ${RUN_SEED}), ${transcendentals} transcendentals`).toBeLessThanOrEqual(2 + chainKernels);
    });
  }

  it('an elementwise chain with no reduction is exact', async () => {
    const rnd = hostRandom(hashSeed('jit-exact'));
    const x = tensor(uniformData(1023, rnd), { device: dev });
    const y = tensor(uniformData(33, rnd), { shape: [33, 1], device: dev });
    const f = (x: Tensor, y: Tensor) => softplus(x.mul(y)).sub(x.tanh()).div(y.abs().add(1)).exp().sigmoid();
    const eager = await read(tidy(() => f(x, y)));
    const compiled = jit(f);
    expect(firstMismatch(eager, await read(compiled(x, y)), exact)).toBeNull();
    expect(compiled.lower(x, y).kernels().length).toBe(1);
  });
});

describe('long chains of transcendentals on a software adapter', () => {
  it('a chain of 120 ops with 40 tanh: kernels of at most SOFTWARE_TRANSCENDENTALS_MAX tanh each (LLVM\'s compile time), results bit for bit', async () => {
    // llvmpipe compiled the one fused kernel of this chain (40 tanh, each inlined in each of its
    // four lanes) in 7.6 s without its shader cache; three kernels of at most 16 compile in ~3.
    const rnd = hostRandom(hashSeed('jit-transcendental-cap'));
    const x = tensor(uniformData(64, rnd), { device: dev });
    const f = (y: Tensor) => {
      for (let i = 0; i < 120; i++) y = i % 3 === 0 ? y.mul(1.001) : i % 3 === 1 ? y.add(0.01) : y.tanh();
      return y;
    };
    const eager = await read(tidy(() => f(x)));
    const compiled = jit(f);
    expect(firstMismatch(eager, await read(compiled(x)), exact)).toBeNull();
    // Each kernel's calls of sc_tanh (its definition aside), four per tanh (one per vec4 lane).
    const calls = compiled.lower(x).kernels().map((k) => (k.source.match(/\bsc_tanh\(/g) ?? []).length - 1);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(4 * 40);
    const software = (gpu.backend as unknown as { softwareAdapter: boolean }).softwareAdapter;
    if (software) expect(calls).toEqual([4 * SOFTWARE_TRANSCENDENTALS_MAX, 4 * SOFTWARE_TRANSCENDENTALS_MAX, 4 * (40 - 2 * SOFTWARE_TRANSCENDENTALS_MAX)]);
    else expect(calls).toEqual([4 * 40]);
  });
});

describe('kernels of many roots on a software adapter', () => {
  it('the gradient of a concat of 60 slices: kernels of at most SOFTWARE_KERNEL_EQUATIONS_MAX equations, results bit for bit', async () => {
    // The slices' gradients are pads of the concat's cotangent, summed into x's gradient by roots
    // of one shape; they joined one kernel without a bound (299 equations here; 1,999 for 400
    // slices, whose first call took ~108 s on llvmpipe, cold).
    const rnd = hostRandom(hashSeed('jit-kernel-equations'));
    const x = tensor(uniformData(64, rnd), { device: dev });
    const f = (x: Tensor) => {
      const parts: Tensor[] = [];
      for (let i = 0; i < 60; i++) parts.push(x.slice([i % 8], [1]).mul(i / 60));
      return sum(concat(parts).exp());
    };
    const g = (x: Tensor) => grad(f)(x);
    const want = tidy(() => g(x));
    const compiled = jit(g);
    const got = compiled(x);
    expect(firstMismatch(await read(want), await read(got), exact)).toBeNull();
    want.dispose();
    got.dispose();
    const sizes = compiled.lower(x).kernels().map((k) => k.equations.length);
    if (gpu.backend.softwareAdapter) expect(Math.max(...sizes)).toBeLessThanOrEqual(SOFTWARE_KERNEL_EQUATIONS_MAX);
    else expect(Math.max(...sizes)).toBeGreaterThan(SOFTWARE_KERNEL_EQUATIONS_MAX);
    x.dispose();
  });
});

describe('elementwise kernels computing four elements per invocation', () => {
  // Innermost extent 32: each invocation computes four consecutive elements. Operands reach it
  // as vec4 loads (the value itself, a [32] row broadcast, an aligned slice of a [9,36] input,
  // a reshape of a [4,64] input), as one load shared by the four (a [8,1] column broadcast), or
  // a load per element (a transposed input, a slice at an unaligned start of a [9,35] input).
  // Results must equal eager WebGPU bit for bit: the same expression per element.
  const unary: ((a: Tensor) => Tensor)[] = [
    (a) => a.tanh(), (a) => a.exp(), (a) => softplus(a), (a) => a.sin(), (a) => a.erf(), (a) => a.abs().add(1).log(), (a) => a.relu(),
  ];
  const binary: ((a: Tensor, b: Tensor) => Tensor)[] = [
    (a, b) => a.add(b), (a, b) => a.mul(b), (a, b) => a.maximum(b), (a, b) => a.less(b).cast('float32').mul(a), (a, b) => a.div(b.abs().add(1)),
  ];
  const shapes = { x: [8, 32], row: [32], col: [8, 1], tr: [32, 8], wide: [9, 36], odd: [9, 35], flat: [4, 64] } as const;
  const make = (rnd: () => number) =>
    Object.fromEntries(Object.entries(shapes).map(([k, shape]) => [k, tensor(uniformData(sizeOf([...shape]), rnd), { shape: [...shape], device: dev })])) as Record<keyof typeof shapes, Tensor>;

  for (let trial = 0; trial < 8; trial++) {
    it(`random chain ${trial}, with results of innermost extents 32, 36, 35, 30 and 5`, async () => {
      const rnd = hostRandom(hashSeed('jit-vec4-chain', trial));
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
      const steps = Array.from({ length: 5 + Math.floor(rnd() * 5) }, () => ({ u: pick(unary), b: pick(binary), operand: Math.floor(rnd() * 6) }));
      const f = (x: Tensor, row: Tensor, col: Tensor, tr: Tensor, wide: Tensor, odd: Tensor, flat: Tensor) => {
        const operands = [row, col, tr.transpose(), wide.slice([1, 4], [8, 32]), odd.slice([1, 2], [8, 32]), flat.reshape([8, 32])];
        let v = x;
        for (const s of steps) v = s.b(s.u(v), operands[s.operand]!).tanh().mul(2);
        // More results: a [8,30] window (innermost extent not a multiple of 4), a [5] vector, a
        // comparison (stored as u32), and results of inputs of extents 35 and 36 computed in the
        // chain's kernel (the float results' buffer is then written one element at a time).
        return [v, v.slice([0, 1], [8, 30]).exp(), v.slice([2, 3], [1, 5]).reshape([5]).sigmoid(), v.less(x), odd.exp(), wide.sin()] as const;
      };
      const args = make(rnd);
      const list = [args.x, args.row, args.col, args.tr, args.wide, args.odd, args.flat] as const;
      const eager = await Promise.all(tidy(() => [...f(...list)]).map(read));
      const compiled = jit(f);
      const fused = await Promise.all(compiled(...list).map(read));
      eager.forEach((e, k) => expect(firstMismatch(e, fused[k]!, exact), `chain ${trial}, result ${k} (seed ${RUN_SEED})`).toBeNull());
    });
  }

  it('a chain whose innermost extent is a multiple of 4 is one kernel of vec4 loads and stores', async () => {
    const rnd = hostRandom(hashSeed('jit-vec4-source'));
    const { x, row, col } = make(rnd);
    const f = (x: Tensor, row: Tensor, col: Tensor) => softplus(x.mul(row)).sub(col.tanh()).exp();
    const compiled = jit(f);
    const eager = await read(tidy(() => f(x, row, col)));
    expect(firstMismatch(eager, await read(compiled(x, row, col)), exact)).toBeNull();
    const kernels = compiled.lower(x, row, col).kernels();
    expect(kernels.length).toBe(1);
    // x and row as vec4 arrays, the [8,32] result stored as one vec4; col read as scalars.
    expect(kernels[0]!.source).toMatch(/array<vec4<f32>>/);
    expect(kernels[0]!.source).toContain('= vec4<f32>(');
  });

  it('sizes of 4 elements and fewer, and a vector part beside scalar parts', async () => {
    const rnd = hostRandom(hashSeed('jit-vec4-small'));
    for (const shape of [[4], [1, 4], [3], [2, 1], [4, 1], [2, 4, 1]]) {
      const x = tensor(uniformData(sizeOf(shape), rnd), { shape, device: dev });
      const f = (x: Tensor) => [x.exp().mul(x), x.sin().add(1)] as const;
      const eager = await Promise.all(tidy(() => [...f(x)]).map(read));
      const fused = await Promise.all(jit(f)(x).map(read));
      eager.forEach((e, k) => expect(firstMismatch(e, fused[k]!, exact), `[${shape}] result ${k}`).toBeNull());
    }
  });
});

describe('reductions and matmuls with fused prologues and epilogues', () => {
  const cases: [string, number[], number[]][] = [
    ['skinny N (dot products by row)', [300, 37], [37, 3]],
    ['skinny M (dot products by column)', [2, 513], [513, 70]],
    ['tiny K (inline)', [257, 2], [2, 65]],
    ['tiled', [130, 66], [66, 129]],
  ];
  for (const [name, as, bs] of cases) {
    it(name, async () => {
      const rnd = hostRandom(hashSeed('jit-mm', name));
      const a = tensor(uniformData(sizeOf(as), rnd), { shape: as, device: dev });
      const b = tensor(uniformData(sizeOf(bs), rnd), { shape: bs, device: dev });
      const bias = tensor(uniformData(bs[1]!, rnd), { device: dev });
      // Prologue (tanh of A), epilogue (bias, softplus), and a row sum of the result.
      const f = (a: Tensor, b: Tensor, bias: Tensor) => {
        const h = softplus(matmul(a.tanh(), b).add(bias));
        return [h, h.sum(1)];
      };
      const [eh, es] = tidy(() => f(a, b, bias));
      const [jh, js] = jit(f)(a, b, bias);
      // K products summed in float32 in a different order: ≤ K·u·Σ|a||b| ≤ K·u·K·2 (|tanh| < 1,
      // |b| ≤ 2), softplus is 1-Lipschitz and adds its ULPs; the row sum adds N·u·Σ|h|.
      const k = as[1]!;
      const hBound = 2 * k * k * 2 ** -24 + 8 * ulp(2 * k);
      expect(firstMismatch(await read(eh!), await read(jh!), () => hBound)).toBeNull();
      const n = bs[1]!;
      expect(firstMismatch(await read(es!), await read(js!), () => n * hBound + n * 2 ** -24 * n * (2 * k + 1))).toBeNull();
    });
  }

  it('an inline product (K ≤ 4) sums from 0 as eager does: products that are all −0 give +0', async () => {
    // a = 0 and b < 0: every a·b is −0, and eager's kernels (and the CPU) start their sums at 0,
    // so the product is +0; the inline contraction gave a·b alone, −0 for K = 1.
    const a = tensor([[0], [0], [0]], { device: dev });
    const b = tensor([[-2, -2]], { device: dev });
    const a2 = tensor([[0, 0], [0, 0]], { device: dev });
    const b2 = tensor([[-1, 3], [-2, 5]], { device: dev });
    const eager = [...(await read(matmul(a, b))), ...(await read(matmul(a2, b2)))];
    const mm = jit((x: Tensor, y: Tensor) => matmul(x, y));
    const compiled = [...(await read(mm(a, b))), ...(await read(mm(a2, b2)))];
    expect(mm.lower(a, b).kernels().map((k) => k.name)).toEqual([expect.stringMatching(/^fused_elementwise/)]);
    expect(eager.map((v) => Object.is(v, -0))).toEqual(eager.map(() => false));
    expect(compiled.map((v) => (Object.is(v, -0) ? '-0' : String(v)))).toEqual(eager.map((v) => (Object.is(v, -0) ? '-0' : String(v))));
  });

  it('a tiled product of one returned value, written beside it (program outputs share a block): plain and with an epilogue', async () => {
    // The product reads h from the outputs' block and writes into it: its operand is copied to
    // scratch first, since WebGPU forbids a buffer bound writable and readable in one dispatch.
    const rnd = hostRandom(hashSeed('jit-mm', 'output operand'));
    const a = tensor(uniformData(130 * 66, rnd), { shape: [130, 66], device: dev });
    const b = tensor(uniformData(66 * 129, rnd), { shape: [66, 129], device: dev });
    const bias = tensor(uniformData(129, rnd), { device: dev });
    const f = (a: Tensor, b: Tensor, bias: Tensor) => {
      const h = a.tanh();
      return [h, matmul(h, b), softplus(matmul(h, b).add(bias))];
    };
    const expected = tidy(() => f(a, b, bias));
    const got = jit(f)(a, b, bias);
    // |h| < 1 and |b| ≤ 2, K = 66: the bound of the cases above.
    const hBound = 2 * 66 * 66 * 2 ** -24 + 8 * ulp(2 * 66);
    expect(firstMismatch(await read(expected[0]!), await read(got[0]!), () => 0)).toBeNull();
    for (const i of [1, 2]) expect(firstMismatch(await read(expected[i]!), await read(got[i]!), () => hBound)).toBeNull();
  });
});

describe('epilogues that read their anchor through reshapes', () => {
  it('a column sum, reshaped to [1,n] and back, updates a bias in the sum\'s own kernel', async () => {
    const rnd = hostRandom(hashSeed('jit-reshape-epilogue'));
    const g = tensor(uniformData(256 * 16, rnd), { shape: [256, 16], device: dev });
    const b = tensor(uniformData(16, rnd), { device: dev });
    const f = (g: Tensor, b: Tensor) => b.sub(g.sum(0, true).reshape([16]).mul(0.1));
    const eager = await read(tidy(() => f(g, b)));
    const compiled = jit(f);
    const lowered = compiled.lower(g, b);
    expect(lowered.kernels().length).toBe(1);
    // One sum over 256 values per output, in another order: 256·u·Σ|g| (|g| ≤ 2), times 0.1.
    const bound = 0.1 * 256 * 2 ** -24 * 512 + ulp(4);
    expect(firstMismatch(eager, await read(compiled(g, b)), () => bound)).toBeNull();
  });
});

describe('a keepdims sum read as [b, s, 1], or a full one as [1, 1], takes its epilogue', () => {
  // The sum's outputs [b, s] (or [b·s], or []) read as [b, s, 1] (or [1, 1]): the same elements
  // in the same order, so the division and square root run in the sum's own kernel.
  const [b, s, h] = [3, 7, 40];
  const cases: [string, number, (x: Tensor) => Tensor][] = [
    ['keepdims', h, (x) => x.square().sum(-1, true).div(h).add(1e-5).sqrt()],
    ['a row sum reshaped', h, (x) => sum(x.reshape([b * s, h]).square(), 1).reshape([b, s, 1]).div(h).sqrt()],
    ['a full keepdims sum', b * s * h, (x) => sum(x.reshape([b * s, h]).square(), [0, 1], true).div(b * s * h).sqrt()],
  ];
  for (const [name, n, f] of cases) {
    it(name, async () => {
      const rnd = hostRandom(hashSeed('jit-keepdims-epilogue', name));
      const x = tensor(uniformData(b * s * h, rnd), { shape: [b, s, h], device: dev });
      const want = await read(tidy(() => f(x)));
      const compiled = jit(f);
      expect(compiled.lower(x).kernels().map((k) => k.name)).toHaveLength(1);
      // Sums of n squares (positive) in two orders, each within n·u relative of the exact sum;
      // the division and the 1e-5 add two roundings, the square root halves the relative error
      // and adds one: 2·(n + 3)·u relative covers the difference.
      expect(firstMismatch(want, await read(compiled(x)), (_i, r) => 2 * (n + 3) * 2 ** -24 * Math.abs(r))).toBeNull();
    });
  }
});

/** The SSM-VR and DSM training steps of the benchmark: MLP 2→h→h→2 (softplus), Adam, one call. */
function trainingStep(kind: 'ssm-vr' | 'dsm', device: string, hidden: number, batch: number) {
  const model = mlpScore({ inputDim: 2, hidden: [hidden, hidden], activation: 'softplus', key: randomKey(0), device } as never);
  const names = Object.keys(model.params);
  const x = randn([batch, 2], { key: randomKey(5), device });
  const state = Object.fromEntries(names.flatMap((n) => [[`m_${n}`, zeros(model.params[n]!.shape, { device })], [`v_${n}`, zeros(model.params[n]!.shape, { device })]]));
  const step = (params: Record<string, Tensor>, key: RandomKey, lr: Tensor) => {
    const objective = (...flat: Tensor[]) => {
      const p = Object.fromEntries(names.map((n, i) => [n, flat[i]!]));
      return kind === 'ssm-vr'
        ? slicedScoreMatchingLoss(model.bind(p), x, { key, varianceReduced: true })
        : denoisingScoreMatchingLoss(model.bind(p), x, { key, sigma: 0.5 });
    };
    const [loss, grads] = valueAndGrad(objective, { argnums: names.map((_, i) => i) })(...names.map((n) => params[n]!)) as [Tensor, Tensor[]];
    names.forEach((n, i) => {
      const g = grads[i]!;
      const m = state[`m_${n}`]!;
      const v = state[`v_${n}`]!;
      m.assign(m.mul(0.9).add(g.mul(0.1)));
      v.assign(v.mul(0.999).add(g.square().mul(0.001)));
      params[n]!.assign(params[n]!.sub(m.div(v.sqrt().add(1e-8)).mul(lr)));
    });
    return loss;
  };
  return { model, step, x, state };
}

describe('training steps', () => {
  for (const [kind, maxDispatches] of [['ssm-vr', 40], ['dsm', 25]] as const) {
    it(`${kind}: one submit and at most ${maxDispatches} dispatches per step, the eager step's loss`, async () => {
      const eager = trainingStep(kind, dev, 128, 1024);
      const compiled = trainingStep(kind, dev, 128, 1024);
      const step = jit(compiled.step, { donate: [0] });
      const lr = tensor(1e-3, { device: dev });
      for (let i = 0; i < 3; i++) {
        const key = foldIn(randomKey(1), i);
        const e = tidy(() => eager.step(eager.model.params, key, lr));
        const before = { ...gpu.runtime.stats };
        const j = step(compiled.model.params, key, lr);
        const after = gpu.runtime.stats;
        if (i > 0) {
          expect(after.submits - before.submits).toBe(1);
          expect(after.dispatches - before.dispatches).toBeLessThanOrEqual(maxDispatches);
        }
        const [ev, jv] = [(await e.data())[0]!, (await j.data())[0]!];
        // The loss is a mean over 1024 examples of sums over 2 (and 128-wide products): summed in
        // another order, within 1024·u relative (Higham) of the eager value.
        expect(Math.abs(ev - jv)).toBeLessThanOrEqual(1024 * 2 ** -24 * Math.abs(ev) + 1e-6);
        e.dispose();
        j.dispose();
      }
      expect(step.traceCount).toBe(1);
    });
  }

  it('memory stays flat over 2,000 jitted training steps', async () => {
    const t = trainingStep('ssm-vr', dev, 16, 64);
    const step = jit(t.step, { donate: [0] });
    const lr = tensor(1e-3, { device: dev });
    step(t.model.params, randomKey(0), lr).dispose();
    await gpu.runtime.sync();
    const before = memory();
    for (let i = 1; i < 2000; i++) step(t.model.params, foldIn(randomKey(2), i), lr).dispose();
    await gpu.runtime.sync();
    expect(memory()).toEqual(before);
  });
});

describe('updates, random keys and errors', () => {
  it('a view argument whose dense copy would not fit one buffer is refused by name; a smaller one is copied and gives eager\'s value', async () => {
    // The copy's allocation failed with 'webgpu: a N-byte tensor exceeds ...', naming neither jit
    // nor the argument. n×n float32 elements just over the device's binding limit (never allocated).
    const limit = gpu.runtime.device.limits.maxStorageBufferBindingSize;
    const n = Math.ceil(Math.sqrt(limit / 4)) + 1;
    const one = tensor([0.5], { device: dev }).reshape([1, 1]);
    const f = jit((v: Tensor) => v.sum());
    expect(() => f(one.expand([n, n]))).toThrow(new RegExp(`^jit: input 0 is a strided view \\[${n},${n}\\] of 1 stored element; a compiled program copies such a view densely \\(${4 * n * n} bytes, over this device's maxStorageBufferBindingSize of ${limit}\\); pass the tensor before its expand`));
    expect(await read(f(one.expand([64, 64])))).toEqual([2048]);
  });
  it('assigned arguments and closed-over state are updated, and read back correctly', async () => {
    const total = zeros([4], { device: dev });
    const f = jit((p: Tensor, x: Tensor) => {
      p.assign(p.add(x));
      total.assign(total.add(p));
      return p.sum();
    });
    const p = tensor([1, 2, 3, 4], { device: dev });
    for (let i = 0; i < 3; i++) f(p, tensor([1, 1, 1, 1], { device: dev })).dispose();
    expect(await read(p)).toEqual([4, 5, 6, 7]);
    expect(await read(total)).toEqual([2 + 3 + 4, 3 + 4 + 5, 4 + 5 + 6, 5 + 6 + 7]);
  });

  it('random draws take their key every call: the same numbers as eager mode', async () => {
    const f = (k: RandomKey) => randn([1000], { key: foldIn(k, 3), device: dev }).mul(2);
    const compiled = jit(f);
    for (const seed of [1, 2]) {
      expect(await read(compiled(randomKey(seed)))).toEqual(await read(f(randomKey(seed))));
    }
    expect(compiled.traceCount).toBe(1);
  });

  it('a constant key next to a program key draws the same numbers on every call', async () => {
    // The constant key's words are written once, when the compiled variant is made; the program
    // key's are rewritten each call: both must hold on the calls after the first.
    const f = (x: Tensor, k: RandomKey) => randn([256], { key: randomKey(11), device: dev }).add(randn([256], { key: k, device: dev })).add(x);
    const compiled = jit(f);
    const x = tensor(Array.from({ length: 256 }, (_, i) => i), { device: dev });
    for (const seed of [1, 2, 3]) {
      expect(await read(compiled(x, randomKey(seed)))).toEqual(await read(f(x, randomKey(seed))));
    }
    expect(compiled.traceCount).toBe(1);
  });

  it('an index computed on the device and out of range fails the next read, as on the CPU', async () => {
    const f = jit((x: Tensor, i: Tensor) => x.indexSelect(0, i.mul(3).cast('int32')).add(1));
    const x = tensor([1, 2, 3, 4, 5], { device: dev });
    const out = f(x, tensor([0, 1, 2], { device: dev }));
    await expect(out.data()).rejects.toThrow('gather: index 6 is out of range for axis 0 of extent 5 (expected 0 <= index < 5)');
    expect(await read(f(x, tensor([0, 1], { device: dev })))).toEqual([2, 5]);
  });
});

describe('results that are constants of the function', () => {
  it('a tensor the function made or closed over and returns unused is a result of its own', async () => {
    // Such a tensor becomes a program input only when the trace reads its outputs; it must
    // still get the copy every result that is an input gets, or the result has no buffer.
    const closed = tensor([5, 6], { device: dev });
    const made = jit(() => tensor(Int32Array.from([7, -8, 9]), { dtype: 'int32', device: dev }));
    const returned = jit(() => closed);
    const beside = jit((x: Tensor) => [x.add(1), tensor([true, false], { dtype: 'bool', device: dev })]);
    for (let call = 0; call < 2; call++) {
      expect(await made().toArray()).toEqual([7, -8, 9]);
      const r = returned();
      expect(await r.toArray()).toEqual([5, 6]);
      r.dispose();
      const [y, flags] = beside(tensor([1, 2], { device: dev })) as Tensor[];
      expect(await y!.toArray()).toEqual([2, 3]);
      expect(await flags!.toArray()).toEqual([true, false]);
    }
    expect(await closed.toArray()).toEqual([5, 6]);
  });
});

describe('results larger together than one binding', () => {
  it('go to separate blocks: two results of 64 MiB + 16 bytes each, as eager mode returns them', async () => {
    // Results of one dtype share a block; past the device's maxStorageBufferBindingSize (128 MiB
    // by default) the call failed, naming a 'tensor' of both results' size.
    const n = 2 ** 24 + 4;
    expect(2 * n * 4).toBeGreaterThan(gpu.gpu.limits.maxStorageBufferBindingSize);
    const x = full([n], 3, { device: dev });
    const f = jit((a: Tensor) => [a.mul(2), a.add(1)]);
    const [p, q] = f(x) as Tensor[];
    const [pv, qv] = [await p!.data(), await q!.data()];
    expect([pv[0], pv[n - 1], qv[0], qv[n - 1]]).toEqual([6, 6, 4, 4]);
    for (const t of [x, p!, q!]) t.dispose();
    f.clearCache();
  });
});

describe('scans and arg-reductions with fused prologues', () => {
  // The scan and arg-reduction kernels compute their input inline with the eager kernels' WGSL
  // and walk the axis in the eager kernels' order, so they must match eager WebGPU bit for bit.
  const rnd = hostRandom(hashSeed('jit-scans'));
  const x = () => tensor(uniformData(7 * 40, rnd), { shape: [7, 40], device: dev });
  const cases: [string, (a: Tensor, b: Tensor) => Tensor][] = [
    ['cumsum of exp(a)·b along axis 1, plus one', (a, b) => a.exp().mul(b).cumsum(1).add(1)],
    ['cumprod of a transposed sin, reversed', (a, b) => a.add(b).sin().transpose().cumprod(0, { reverse: true })],
    ['argmax of a rounded product along axis 0', (a, b) => a.mul(b).mul(4).round().argmax(0)],
    ['argmin of gelu(a) − b along axis 1, keepdims', (a, b) => a.gelu().sub(b).argmin(1, { keepdims: true })],
  ];
  for (const [name, f] of cases) {
    it(name, async () => {
      const [a, b] = [x(), x()];
      const eager = await read(tidy(() => f(a, b)));
      const compiled = jit(f);
      expect(firstMismatch(eager, await read(compiled(a, b)), exact)).toBeNull();
      // The scan or arg-reduction with its prologue inline, and (for the first) the epilogue's add.
      expect(compiled.lower(a, b).kernels().length).toBeLessThanOrEqual(2);
    });
  }
});

describe('split, flip and tile under jit', () => {
  it('are index arithmetic (slice, gather, expand) inside one elementwise kernel, exact', async () => {
    const rnd = hostRandom(hashSeed('jit-movement'));
    const x = tensor(uniformData(5 * 6, rnd), { shape: [5, 6], device: dev });
    const f = (a: Tensor) => {
      const [p, q] = a.split([2, 4], 1);
      return concat([p!.flip().tile([1, 2]), q!.flip(0).erf()], 1);
    };
    const eager = await read(tidy(() => f(x)));
    const compiled = jit(f);
    expect(firstMismatch(eager, await read(compiled(x)), exact)).toBeNull();
    expect(compiled.lower(x).kernels().length).toBe(1);
  });
});

describe('a concat of many pieces inside one kernel', () => {
  // Each piece is picked by comparisons on the concat coordinate. As an if/else-if chain, 80
  // pieces or more (a 9×9 kernel's im2col taps) nested as deep and Dawn's OpenGL backend on
  // llvmpipe dropped the chain's last branch: that piece read as 0. Exact: a copy of entries.
  for (const pieces of [79, 80, 81, 200]) {
    it(`${pieces} slices of one input, reversed and of uneven sizes`, async () => {
      const sizes = Array.from({ length: pieces }, (_, i) => 1 + (i % 3));
      const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
      const total = sizes.reduce((a, b) => a + b, 0);
      const x = tensor(Float32Array.from({ length: total }, (_, i) => i), { shape: [1, total], device: dev });
      const f = (a: Tensor) => concat(sizes.map((_, k) => narrow(a, 1, starts[pieces - 1 - k]!, sizes[pieces - 1 - k]!)), 1).mul(2);
      const want = sizes.flatMap((_, k) => Array.from({ length: sizes[pieces - 1 - k]! }, (_, j) => 2 * (starts[pieces - 1 - k]! + j)));
      const compiled = jit(f);
      expect(firstMismatch(want, await read(compiled(x)), exact)).toBeNull();
      expect(compiled.lower(x).kernels().length).toBe(1);
    });
  }
});

describe('a concat of more separately computed pieces than a kernel may bind', () => {
  // One binding per piece: a concat of 16 computed values or more (llvmpipe binds 16 buffers) was
  // 'one fused value reads 17 buffers' under jit, where eager runs. It is compiled as a tree of
  // concats, the inner ones stored as needed. Exact: each piece is one rounding, as eager's.
  for (const pieces of [16, 20, 40]) {
    it(`${pieces} pieces of one and of two buffers each, and a stack, as eager`, async () => {
      const as = Array.from({ length: pieces }, (_, i) => tensor([i, -i, 0.5 * i], { device: dev }));
      const bs = Array.from({ length: pieces }, (_, i) => tensor([1 + i, 3, -2], { device: dev }));
      const f = (...xs: Tensor[]) => {
        const a = xs.slice(0, pieces);
        const b = xs.slice(pieces);
        return [concat(a.map((x) => x.add(1)), 0), concat(a.map((x, i) => x.mul(b[i]!)), 0), stack(b.map((x) => x.exp()), 1)];
      };
      const eager = f(...as, ...bs);
      const compiled = jit(f)(...as, ...bs) as unknown as Tensor[];
      for (let k = 0; k < 3; k++) expect(firstMismatch(await read(eager[k]!), await read(compiled[k]!), exact)).toBeNull();
      for (const t of [...as, ...bs, ...eager, ...compiled]) t.dispose();
    });
  }
});

describe('a reduction to one element, read through reshapes to all-ones shapes', () => {
  // The epilogue named the sum's element by coordinates that had lost its linear index, missed
  // the accumulator, and read the sum's unwritten scratch (0 or garbage).
  it('is the sum, forward and as the gradient of a tile', async () => {
    const x = tensor([[0.5], [1.5]], { device: dev });
    expect(await read(jit((v: Tensor) => sum(v, 0).reshape([1, 1]).reshape([1]))(x))).toEqual([2]);
    const y = tensor([0.5], { device: dev });
    expect(await read(jit((z: Tensor) => grad((q: Tensor) => sum(q.tile([2])))(z) as Tensor)(y))).toEqual([2]);
  });
});

describe('values with an empty axis, compiled and eager', () => {
  // Kernels over empty shapes never run, but their WGSL must still compile: decoding an index over
  // a shape with a 0 divided by a literal 0u, reshapes between empty shapes looped forever pairing
  // axes, and a scan along an empty axis wrote its last position as -1. And where a loop is empty
  // its result is a constant the compiler folds: 0/0 gave 0 where eager gives NaN.
  const empty = (shape: number[]) => tensor([], { shape, device: dev });
  it('reductions over an empty extent give the identity (a mean NaN); to an empty result, nothing', async () => {
    expect(await read(jit((v: Tensor) => v.sum())(empty([3, 0])))).toEqual([0]);
    expect(await read(jit((v: Tensor) => v.mean(1))(empty([3, 0])))).toEqual([NaN, NaN, NaN]);
    const y = jit((v: Tensor) => v.sum(2).add(1))(empty([2, 0, 5]));
    expect(y.shape).toEqual([2, 0]);
    expect(await read(y)).toEqual([]);
  });
  it('a product with an empty inner dimension is 0, not a folded constant', async () => {
    const f = (a: Tensor, b: Tensor) => matmul(a, b).div(0);
    expect(await read(f(empty([2, 0]), empty([0, 3])))).toEqual(new Array(6).fill(NaN));
    expect(await read(jit(f)(empty([2, 0]), empty([0, 3])))).toEqual(new Array(6).fill(NaN));
  });
  it('reshapes between empty shapes: a group norm of an empty batch, the gradient of a tile by 0', async () => {
    const g = jit((v: Tensor) => groupNorm(v, 2))(empty([0, 4, 3, 3]));
    expect(g.shape).toEqual([0, 4, 3, 3]);
    expect(await read(g)).toEqual([]);
    const x = tensor([[1, 2], [3, 4], [5, 6]], { device: dev });
    expect(await read(jit((v: Tensor) => grad((q: Tensor) => sum(q.tile([0, 2])))(v) as Tensor)(x))).toEqual([0, 0, 0, 0, 0, 0]);
  });
  it('cumsum and cumprod along an empty axis are empty, eager and compiled', async () => {
    for (const f of [(v: Tensor) => v.cumsum(1), (v: Tensor) => v.mul(2).cumprod(1, { reverse: true })]) {
      for (const y of [f(empty([3, 0])), jit(f)(empty([3, 0]))]) {
        expect(y.shape).toEqual([3, 0]);
        expect(await read(y)).toEqual([]);
      }
    }
  });
});

describe('the gradient of a long cumprod under jit', () => {
  // cumprod's derivatives are a Hillis–Steele scan, each level reading the one below at two
  // offsets; inlined whole, a 173-long scan's gradient was a shader too large to compile. Levels
  // read in many ways are stored, so each kernel stays small. Products sum in the same order as
  // eager, but WGSL's tanh may differ by an ulp with inlining: held to 1e-5 relative.
  it('compiles to bounded kernels and equals eager', async () => {
    const rnd = hostRandom(hashSeed('jit-cumprod-grad'));
    const x = tensor(uniformData(173 * 7, rnd), { shape: [173, 7], device: dev });
    const f = (z: Tensor) => grad((q: Tensor) => sum(q.tanh().mul(0.3).add(1).cumprod(0).mul(0.01)))(z) as Tensor;
    const eager = await read(tidy(() => f(x)));
    const compiled = jit(f);
    const got = await read(compiled(x));
    const scale = Math.max(...eager.map(Math.abs));
    got.forEach((v, i) => expect(Math.abs(v - eager[i]!)).toBeLessThanOrEqual(1e-5 * scale));
    for (const k of compiled.lower(x).kernels()) expect(k.source.length).toBeLessThan(60_000);
  });
});

describe('infinities, NaN and signed zeros under jit are eager\'s', () => {
  // WGSL lets a shader compiler assume none of them, and Mesa's folded the jitted kernels'
  // inline constants and repeated operands: x·0 → 0, x − x → 0, x + 0 → x. Eager kernels read
  // both from memory. Jitted constants and second copies of an operand now pass through an
  // opaque select (compiler/writer.ts, OPAQUE_NEVER).
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
  const withFlip = (x: Tensor, f: (y: Tensor) => Tensor) => f(x.flip());
  const cases: [string, (x: Tensor) => Tensor, number[]][] = [
    ['log(x) · 0', (x) => x.log().mul(0), [0, -1, 1]],
    ['x − x', (x) => x.sub(x), [Infinity, -Infinity, NaN, 2, -0]],
    ['x / x', (x) => x.div(x), [0, Infinity, 3]],
    ['(1 / x) · 0', (x) => x.reciprocal().mul(0), [0, 2]],
    ['exp(100x) · 0 (overflow)', (x) => x.mul(100).exp().mul(0), [1, 0]],
    ['x · 1 + 0 (−0 + 0 is +0)', (x) => x.mul(1).add(0), [-0, 1]],
    // A value used by two operations was reassociated: (x + y) − y became x, dropping y's NaN and
    // ∞ and the rounding of x + y; a third use must not fold either. y is x reversed.
    ['(x + y) − y', (x) => withFlip(x, (y) => x.add(y).sub(y)), [1 + 2 ** -12, NaN, Infinity, -1e10, 3]],
    ['(x − y) + y', (x) => withFlip(x, (y) => x.sub(y).add(y)), [1 + 2 ** -12, NaN, Infinity, -1e10, 3]],
    ['((x + y) − y) + y − y', (x) => withFlip(x, (y) => x.add(y).sub(y).add(y).sub(y)), [1 + 2 ** -12, NaN, Infinity, -1e10, 3]],
    // A value chosen by a where from second uses of x and y was 1 on the branch never taken, as
    // was its own second use: w − w folded to 0 for w = ±∞.
    ['w − w for w = where(x < y, x, y)', (x) => withFlip(x, (y) => { const w = where(x.less(y), x, y); return w.sub(w); }), [-Infinity, 2, Infinity, NaN, 1]],
    // A short sum or scan is one unrolled loop from acc = 0: 0 + (−0) was folded to −0.
    ['the sum of −0s', (x) => x.sum(), [-0, -0, -0]],
    ['the sum of −0s over one axis, then a mean', (x) => x.reshape([3, 1]).sum(1).add(x.reshape([1, 3]).mean(1)), [-0, -0, -0]],
    ['cumsum from a −0', (x) => x.cumsum(0), [-0, -0, 1]],
    ['reverse cumsum to a −0', (x) => x.cumsum(0, { reverse: true }), [1, -0, -0]],
    ['the gradient of √x where x > 0, at 0 (0 · ∞)', (x) => grad((z: Tensor) => sum(z.sqrt().mul(z.greater(0).cast('float32'))))(x) as Tensor, [0, 4]],
    // A pad's zeros were a literal 0.0: a short cumprod through them is an unrolled loop whose acc
    // the compiler knew was 0 after them, so 0 · ∞ and 0 · NaN further on were folded to 0.
    ['cumprod through a pad\'s zeros (0 · ∞, 0 · NaN)', (x) => pad(x, [[2, 0]]).cumprod(0), [Infinity, 2, NaN, 3]],
    ['reverse cumprod through a pad\'s zeros', (x) => pad(x, [[0, 2]]).cumprod(0, { reverse: true }), [3, NaN, 2, Infinity]],
    ['cumprod down the columns through a padded row', (x) => pad(x.reshape([2, 2]), [[1, 0], [0, 0]]).cumprod(0), [Infinity, 2, NaN, 3]],
    // A bool or int32 the compiler folds exactly (b ≠ b is false, i − i is 0) converted to a float
    // constant 0 that it then folded into x·0 → 0 and x + 0 → x (0·NaN, 0·∞ and −0 + 0 were lost).
    ['f32(b ≠ b) · x for a bool b', (x) => x.less(1).notEqual(x.less(1)).cast('float32').mul(x), [NaN, Infinity, -Infinity, -0, 2]],
    ['f32(i − i) · x for an int32 i', (x) => x.cast('int32').sub(x.cast('int32')).cast('float32').mul(x), [NaN, Infinity, -Infinity, -0, 2]],
    ['f32(i − i) + x for an int32 i', (x) => x.cast('int32').sub(x.cast('int32')).cast('float32').add(x), [-0, NaN, 2]],
    // Two opaque values (the converted 0 and the literal 0) were both 0.5 on the branch never
    // taken, so −f32(i − i) + 0 was 0 on both branches: a constant, and x / 0 folded to 0.
    ['x / (−f32(i − i) + 0) for an int32 i', (x) => x.div(x.cast('int32').sub(x.cast('int32')).cast('float32').neg().add(0)), [2.5, -1, 0]],
    // An opaque value's never-taken alternative k was 1.0 for the kernel's first: select(−0.0, 1.0, c)
    // was compiled as f32(c), +0, so a −0 constant read as +0 in one lane of each vec4.
    ['full(−0) in every lane', (x) => full(x.shape, -0, { device: x.device }), [1, 2, 3, 4, 5, 6, 7, 8]],
    // A −0.0 literal was taken for a 0.0 literal of the same kernel: −0 + 0 gave −0, and a
    // maximum or minimum of the two picked the wrong zero.
    ['full(−0) + 0', (x) => full(x.shape, -0, { device: x.device }).add(0), [1, 2, 3, 4]],
    ['x · 0 + (−0)', (x) => x.mul(0).add(-0), [NaN, 0, -0, 2, -1, Infinity, -Infinity, 1e-40]],
    ['minimum(full(−0), 0) and minimum(0, full(−0))', (x) => { const z = full(x.shape, -0, { device: x.device }); return concat([z.minimum(0), full([], 0, { device: x.device }).minimum(z)]); }, [1, 2, 3, 4]],
    ['clamp(x, −0, 0)', (x) => x.clamp(-0, 0), [NaN, 0, -0, 2, -1, Infinity, -Infinity, 1e-40]],
    ['clamp(x · 1, −0, 0)', (x) => x.mul(1).clamp(-0, 0), [NaN, 0, -0, 2, -1, Infinity, -Infinity, 1e-40]],
    // ±∞ and NaN constants were not opaque: −∞ · sigmoid(−∞) (∞ · 0) was folded to 0.
    ['silu(full(−∞)) (−∞ · 0)', (x) => full(x.shape, -Infinity, { device: x.device }).silu().add(x), [1, 2, 3, 4]],
    ['sigmoid(full(−∞)) · (−∞)', (x) => full(x.shape, -Infinity, { device: x.device }).sigmoid().mul(-Infinity).add(x), [1, 2, 3, 4]],
    // A scan's term that is one value along the axis was multiplied by itself in the unrolled
    // loop, and sqrt(a)·sqrt(a) folded to |a|: NaN · NaN for NaN = sqrt(−∞) gave +∞.
    ['cumprod of sqrt(full(−∞)) (NaN · NaN)', (x) => full(x.shape, -Infinity, { device: x.device }).sqrt().reshape([2, 4]).cumprod(1).reshape([8]), [1, 2, 3, 4, 5, 6, 7, 8]],
    // 1 / (1 / x) was folded to x: 1e−40 stayed 1e−40 (1 / 1e−40 overflows to ∞, so eager gives
    // 0), and large or inexact x kept bits that the two roundings change.
    ['1 / (1 / x)', (x) => x.reciprocal().reciprocal(), [3, 1e-40, 2e38, 7, 0.1, -3e38, 1e-38, 5]],
    // The expression table's other float constants (sign's ±1 and 0, the casts' bounds) reach the
    // kernel through the same opaque writer as reciprocal's 1.
    ['sign(x) − sign(x), sign(x) · 0', (x) => concat([x.sign().sub(x.sign()), x.sign().mul(0)]), [NaN, 0, -0, 2, -1, Infinity, -Infinity, 1e-40]],
    ['f32(i32(x)) · 0', (x) => x.cast('int32').cast('float32').mul(0), [NaN, 0, -0, 3e9, -3e9, Infinity, -Infinity, 2147483520]],
    ['2 − gelu(gelu(silu(−∞)))', (x) => full([], 2, { device: x.device }).sub(full([], -Infinity, { device: x.device }).silu().gelu().gelu()).add(x.mul(0)), [1, 2, 3, 4]],
  ];
  for (const [name, f, values] of cases) {
    it(name, async () => {
      const x = tensor(values, { device: dev });
      const eager = await read(tidy(() => f(x)));
      const jitted = await read(jit(f)(x));
      expect(same(jitted, eager), `eager ${eager}, jitted ${jitted}`).toBe(true);
    });
  }
});

describe('a tiled product with a fused epilogue holding float constants', () => {
  // On a software adapter the products' epilogues are off (compiles there are slow), so this
  // forces the hardware path: the epilogue's constants pass through opaque_const, which the
  // product templates must declare and whose flag their main must set (an undeclared call was
  // invalid WGSL on every real GPU).
  it('compiles and equals eager', async () => {
    const backend = gpu.backend as { softwareAdapter: boolean };
    const software = backend.softwareAdapter;
    backend.softwareAdapter = false;
    try {
      const rnd = hostRandom(hashSeed('jit-epilogue-constants'));
      const a = tensor(uniformData(130 * 66, rnd), { shape: [130, 66], device: dev });
      const b = tensor(uniformData(66 * 129, rnd), { shape: [66, 129], device: dev });
      for (const f of [(x: Tensor, y: Tensor) => matmul(x, y).mul(2).add(0.5), (x: Tensor, y: Tensor) => softplus(matmul(x, y))]) {
        const want = await read(tidy(() => f(a, b)));
        const compiled = jit(f);
        const got = await read(compiled(a, b));
        expect(compiled.lower(a, b).kernels().some((k) => k.name.includes('epilogue'))).toBe(true);
        const scale = Math.max(...want.map(Math.abs));
        got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-5 * scale));
      }
    } finally {
      backend.softwareAdapter = software;
    }
  });
});

describe('kernels for people who read them', () => {
  it('every equation of the program is covered by a kernel, each with its WGSL', () => {
    const [k1, k2] = splitKey(randomKey(3), 2);
    const w = randn([2, 32], { key: k1, device: dev });
    const x = randn([64, 2], { key: k2, device: dev });
    const lowered = jit((w: Tensor, x: Tensor) => softplus(matmul(x, w)).mean()).lower(w, x);
    const kernels = lowered.kernels();
    const covered = new Set(kernels.flatMap((k) => k.equations));
    lowered.program.equations.forEach((_, i) => expect(covered.has(i), `equation ${i}`).toBe(true));
    for (const k of kernels) expect(k.source).toContain('@compute');
  });
});

describe('compiled programs\' caches', () => {
  /**
   * Runs `body` counting the compiled programs' uniform buffers (one per variant) that are live:
   * created on the shared device and not yet destroyed.
   */
  async function countingUniformBuffers(body: (live: () => number) => Promise<void>): Promise<void> {
    const device = gpu.runtime.device;
    const create = device.createBuffer;
    let live = 0;
    device.createBuffer = function (descriptor: GPUBufferDescriptor): GPUBuffer {
      const buffer = create.call(this, descriptor);
      if (descriptor.label === 'scorch compiled uniforms') {
        live++;
        const destroy = buffer.destroy;
        buffer.destroy = () => {
          live--;
          destroy.call(buffer);
        };
      }
      return buffer;
    };
    try {
      await body(() => live);
    } finally {
      device.createBuffer = create;
    }
  }
  /** Integers in [-3, 3]: their products sum exactly in float32, in any order. */
  const ints = (n: number, from: number) => Float32Array.from({ length: n }, (_, i) => ((from + i) % 7) - 3);

  it('the lowering cache keys on the backend settings that change the code: a program compiled after one changes gets its kernels', () => {
    const backend = gpu.backend as unknown as { softwareAdapter: boolean; vec4MinWorkgroups: number };
    const saved = { softwareAdapter: backend.softwareAdapter, vec4MinWorkgroups: backend.vec4MinWorkgroups };
    const a = randn([128, 64], { key: randomKey(71), device: dev });
    const w = randn([64, 128], { key: randomKey(72), device: dev });
    const b = randn([128], { key: randomKey(73), device: dev });
    // A fresh jitted function each time: a new compiled program of the same structure and layout.
    const names = (softwareAdapter: boolean, vec4MinWorkgroups: number) => {
      Object.assign(backend, { softwareAdapter, vec4MinWorkgroups });
      return jit((a: Tensor, w: Tensor, b: Tensor) => matmul(a, w).add(b).relu()).lower(a, w, b).kernels().map((k) => k.name);
    };
    try {
      // 128×128 in 4-lane groups: 32×16 blocks make 4 workgroups, so at least 16 shrinks them to 8×16.
      expect(names(true, 4)).toEqual(['matmul_vec4_ak_bn_32x16_batchrank1', 'fused_elementwise_[128,128]x1']);
      expect(names(true, 16)).toEqual(['matmul_vec4_ak_bn_8x16_batchrank1', 'fused_elementwise_[128,128]x1']);
      // A hardware adapter fuses the bias and relu into the matmul.
      expect(names(false, 16)).toEqual(['fused_matmul_vec4_ak_bn_8x16_batchrank1_epilogue']);
      expect(names(true, 4)).toEqual(['matmul_vec4_ak_bn_32x16_batchrank1', 'fused_elementwise_[128,128]x1']);
    } finally {
      Object.assign(backend, saved);
    }
  });

  it('the lowering cache drops its least recently used lowering, not its oldest: a hot program survives a burst of others', async () => {
    const own = await initWebGPU({ name: 'webgpu-lowering-lru' });
    // What is checked is the lowering cache, not the compiler: the 301 lowerings' pipelines are
    // not made (as in limits.test.ts), where they were 301 WGSL compiles on this device of its own
    // (0.7 s with a warm Mesa cache, 1.3 s on a fresh machine) that no kernel ever ran.
    const runtime = own.runtime as unknown as { pipeline: (code: string, label: string) => unknown };
    runtime.pipeline = (code, label) => ({ pipeline: null, layout: null, written: new Set(), code, label });
    try {
      // A fresh jitted function each time, so each lowering is looked up in the device's cache
      // (limit 256); a hit hands out the cached lowering, whose kernels share their equation lists.
      const equations = (n: number) => jit((t: Tensor) => t.mul(3).add(1)).lower(zeros([n], { device: own.device })).kernels()[0]!.equations;
      const hot = equations(1);
      const cold = equations(2);
      for (let n = 3; n <= 201; n++) equations(n);
      expect(equations(1)).toBe(hot); // a hit: now the most recently used
      for (let n = 202; n <= 301; n++) equations(n); // 301 lowerings in all, past the limit
      expect(equations(1)).toBe(hot);
      // The least recently used were dropped: 2 is lowered again.
      expect(equations(2)).not.toBe(cold);
    } finally {
      own.gpu.destroy();
    }
  });

  it(`a compiled program keeps at most ${VARIANT_LIMIT} input layouts (offsets of other residues mod 4), destroying the uniform buffers of those it drops`, async () => {
    await countingUniformBuffers(async (live) => {
      // A product large enough to be a matmul kernel, plus a bias: three views of one flat tensor.
      // Offsets are uniform words rewritten per call; a layout is each offset's residue mod 4
      // (the vec4 paths depend on it), so the three offsets step through 4·4·4 layouts, of which
      // VARIANT_LIMIT + 8 are met here.
      const layouts = VARIANT_LIMIT + 8;
      const host = ints(1500, 0);
      const flat = tensor(host, { shape: [1500], device: dev });
      const f = jit((x: Tensor, w: Tensor, b: Tensor) => matmul(x, w).add(b));
      let compiled: WebGPUCompiledProgram | null = null;
      for (let i = 0; i < layouts; i++) {
        const [ox, ow, ob] = [i % 4, 300 + (Math.floor(i / 4) % 4), 1400 + (Math.floor(i / 16) % 4)];
        const x = flat.slice([ox], [256]).reshape([8, 32]);
        const w = flat.slice([ow], [1024]).reshape([32, 32]);
        const b = flat.slice([ob], [32]);
        const y = f(x, w, b);
        // Integers: every sum is exact.
        const want = Array.from({ length: 8 }, (_, r) => Array.from({ length: 32 }, (_, c) => host[ob + c]! + Array.from({ length: 32 }, (_, k) => host[ox + r * 32 + k]! * host[ow + k * 32 + c]!).reduce((s, v) => s + v, 0)));
        expect(await y.toArray(), `layout ${i}`).toEqual(want);
        compiled ??= f.lower(x, w, b).compiled as WebGPUCompiledProgram;
        for (const t of [x, w, b, y]) t.dispose();
      }
      expect(live()).toBe(VARIANT_LIMIT);
      expect(compiled!.variantCount).toBe(VARIANT_LIMIT);
      expect(compiled!.stats.variants).toBe(layouts);
      f.clearCache();
      expect(live()).toBe(0);
      flat.dispose();
    });
  });

  it('a jitted function over minibatch slices of one tensor compiles its kernels once, not once per offset', async () => {
    // 40 minibatches of 8 rows: contiguous views at offsets 256i of one buffer. Every function
    // here is one kernel or a few: fused elementwise and reduction kernels that read their
    // inputs in place, at the view's offset. A 1-D view at offset 3i covers every residue mod 4
    // (the vec4 path needs an aligned offset), and two views read by one kernel move apart.
    const batches = 40;
    const data = tensor(ints(batches * 8 * 32, 0), { shape: [batches * 8, 32], device: dev });
    const flat = data.reshape([batches * 8 * 32]);
    const chain = (x: Tensor) => x.mul(x).sub(x.mul(3)).add(1).relu();
    const rowSums = (x: Tensor) => sum(x.mul(x).add(x), [1]);
    const columnSums = (x: Tensor) => sum(x.mul(2).sub(1), [0]);
    const pair = (x: Tensor, y: Tensor) => x.mul(y).add(x).sub(y.mul(y));
    const fs = { chain: jit(chain), rowSums: jit(rowSums), columnSums: jit(columnSums), pair: jit(pair), flat: jit(chain) };
    const step = async (i: number) => {
      const x = data.slice([i * 8, 0], [8, 32]);
      const y = data.slice([((i * 7 + 3) % batches) * 8, 0], [8, 32]);
      const z = flat.slice([i * 3], [64]);
      const got = [fs.chain(x), fs.rowSums(x), fs.columnSums(x), fs.pair(x, y), fs.flat(z)];
      const want = [chain(x), rowSums(x), columnSums(x), pair(x, y), chain(z)];
      // Integers in [-3, 3]: every sum here is exact in float32 in any order, so compiled equals eager.
      for (let k = 0; k < got.length; k++) expect(await read(got[k]!), `function ${k} at minibatch ${i}`).toEqual(await read(want[k]!));
      for (const t of [x, y, z, ...got, ...want]) t.dispose();
    };
    // The first 8 minibatches: every function at offset 0 and at others, the 1-D view at every residue mod 4.
    for (let i = 0; i < 8; i++) await step(i);
    const compiles = gpu.runtime.stats.compiles;
    for (let i = 8; i < batches; i++) await step(i);
    expect(gpu.runtime.stats.compiles - compiles).toBe(0);
    data.dispose();
    flat.dispose();
  });

  it('kernels that compute the same on different buffers are one WGSL text and compile once', async () => {
    // Twelve layers tanh(x·Wᵢ + bᵢ) of one width: each layer's kernels read other inputs and
    // temporaries, but name them by their order in the kernel (in0, tmp0, ...), not by their
    // place in the program, so the layers' kernels are the same texts and share pipelines. Named
    // by place (stop 31), every kernel was its own text: a deep or unrolled program compiled each
    // (4–50 ms on llvmpipe), and past 1,024 distinct kernels llvmpipe evicted compiled variants
    // it needed again within one call (an 800-step chain's gradient: 0.72 s a call, not 0.06).
    const layers = 12;
    const rnd = hostRandom(hashSeed('jit-shared-kernels', 0));
    const x = tensor(uniformData(32 * 16, rnd), { shape: [32, 16], device: dev });
    const ws = Array.from({ length: layers }, () => tensor(uniformData(16 * 16, rnd, -1 / 32, 1 / 16), { shape: [16, 16], device: dev }));
    const bs = Array.from({ length: layers }, () => tensor(uniformData(16, rnd), { shape: [16], device: dev }));
    const net = (x: Tensor, ...params: Tensor[]) => {
      let h = x;
      for (let i = 0; i < layers; i++) h = matmul(h, params[i]!).add(params[layers + i]!).tanh();
      return h;
    };
    const f = jit(net);
    const kernels = f.lower(x, ...ws, ...bs).kernels();
    const texts = new Set(kernels.map((k) => k.source));
    expect(kernels.length).toBeGreaterThanOrEqual(layers);
    // The first layer reads the argument x, the others the layer before: two kinds of layer,
    // and at most one kernel of each kind per layer.
    expect(texts.size).toBeLessThanOrEqual(2 * (kernels.length / layers));
    const compiles = gpu.runtime.stats.compiles;
    const got = f(x, ...ws, ...bs);
    expect(gpu.runtime.stats.compiles - compiles).toBeLessThanOrEqual(texts.size);
    // The same program eagerly (each op its own kernel): products summed in other orders, so
    // compared within a bound. |Wᵢ| ≤ 1/32, so a row of 16 sums at most half an input's error
    // (tanh's slope ≤ 1), and a layer's own rounding (16 products, 16 adds, the bias: |x·W| ≤ 1,
    // |b| ≤ 2) is at most 33·2⁻²⁴·3 ≈ 6e-6; an error e halves each layer: below 2·6e-6 at the end.
    const want = net(x, ...ws, ...bs);
    const [a, b] = [await read(got), await read(want)];
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!), `element ${i}`).toBeLessThan(1.2e-5);
    for (const t of [x, ...ws, ...bs, got, want]) t.dispose();
  });

  it("the gradients of equal layers are one WGSL text: results' offsets are uniform words", async () => {
    // valueAndGrad of layers relu(h·Wᵢ) + h: the weights' gradients are the program's results,
    // one after another in the results block. Each was written at its offset as a literal, so
    // the layers' gradient kernels differed in that constant alone and each compiled on its own
    // (21 texts for 12 layers, 33 for 24; a 400-layer network's first call took 14.9 s on
    // llvmpipe, 1.1 s with offsets as uniform words). Each Wᵢ is a signed permutation and x holds
    // small integers, so every value and gradient is a small integer, exact in float32: the
    // jitted gradients equal eager's bit for bit.
    const width = 8;
    const rnd = hostRandom(hashSeed('jit-result-offsets', 0));
    const x = tensor(Array.from({ length: 4 * width }, () => Math.floor(rnd() * 7) - 3), { shape: [4, width], device: dev });
    const weights = (layers: number) => Array.from({ length: layers }, () => {
      // Row i has one ±1, in column perm[i] (a Fisher–Yates shuffle).
      const perm = Array.from({ length: width }, (_, i) => i);
      for (let i = width - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [perm[i], perm[j]] = [perm[j]!, perm[i]!];
      }
      const w = new Array<number>(width * width).fill(0);
      perm.forEach((j, i) => (w[i * width + j] = rnd() < 0.5 ? -1 : 1));
      return tensor(w, { shape: [width, width], device: dev });
    });
    const loss = (...w: Tensor[]) => {
      let h = x;
      for (const wi of w) h = matmul(h, wi).relu().add(h);
      return h.sum();
    };
    const gradients = (ws: Tensor[]) => valueAndGrad(loss, { argnums: ws.map((_, i) => i) })(...ws);
    const f = jit((...w: Tensor[]) => gradients(w));
    const texts = (ws: Tensor[]) => new Set(f.lower(...ws).kernels().map((k) => k.source));
    const [ws12, ws24] = [weights(12), weights(24)];
    // Twice the layers, no more texts: every layer's kernels are of the same few kinds.
    const texts24 = texts(ws24);
    expect(texts24.size).toBe(texts(ws12).size);
    const compiles = gpu.runtime.stats.compiles;
    const [value, grads] = f(...ws24);
    expect(gpu.runtime.stats.compiles - compiles).toBeLessThanOrEqual(texts24.size);
    const [wantValue, wantGrads] = gradients(ws24);
    expect(await read(value)).toEqual(await read(wantValue));
    for (let i = 0; i < ws24.length; i++) expect(await read(grads[i]!), `layer ${i}`).toEqual(await read(wantGrads[i]!));
    for (const t of [x, ...ws12, ...ws24, value, ...grads, wantValue, ...wantGrads]) t.dispose();
  });

  it('kernels() of a lowered program whose jitted function was cleared makes no uniform buffer', async () => {
    await countingUniformBuffers(async (live) => {
      // A matmul kernel (its shapes are uniforms) and a relu after it.
      const x = tensor(ints(8 * 32, 1), { shape: [8, 32], device: dev });
      const w = tensor(ints(32 * 32, 2), { shape: [32, 32], device: dev });
      const f = jit((x: Tensor, w: Tensor) => matmul(x, w).relu());
      const lowered = f.lower(x, w);
      const names = lowered.kernels().map((k) => k.name);
      expect(names.length).toBeGreaterThan(0);
      f.clearCache(); // disposes the compiled program the lowered one hands out
      expect(live()).toBe(0);
      expect(lowered.kernels().map((k) => k.name)).toEqual(names);
      expect(live()).toBe(0);
      x.dispose();
      w.dispose();
    });
  });
});

// The compiler's edges (compiler/lower.ts, writer.ts, executable.ts): intermediate buffers freed
// when a compiled program is disposed, vec4 lanes read through a slice or a reshape that breaks
// their alignment, a product's operand copied out of the results block, a blocked serial sum's
// last run, a kernel using every storage binding the device allows, and a gathered index equal to
// the extent. Values are small integers, so every sum and product is exact in float32 in any
// order and results are compared exactly.

/** Integers in [-3, 3]. */
const smallInts = (n: number) => Array.from({ length: n }, (_, i) => (i % 7) - 3);

describe('what a compiled program holds', () => {
  it('disposing a compiled program (clearing its function) frees its intermediate buffers', async () => {
    const x = tensor(smallInts(32 * 64), { shape: [32, 64], device: dev });
    await gpu.runtime.sync();
    const before = memory();
    // The row sums are stored (a temp of the program) and read back by the broadcast product.
    const f = jit((v: Tensor) => v.sum(1, true).mul(v));
    const y = f(x);
    const rows = smallInts(32 * 64);
    const want = Array.from({ length: 32 }, (_, r) => {
      const s = rows.slice(r * 64, r * 64 + 64).reduce((a, b) => a + b, 0);
      return rows.slice(r * 64, r * 64 + 64).map((v) => s * v);
    });
    expect(await y.toArray()).toEqual(want);
    y.dispose();
    f.clearCache();
    await gpu.runtime.sync();
    expect(memory()).toEqual(before);
    x.dispose();
  });
});

describe('vec4 lanes of elementwise kernels read through movement ops', () => {
  it('a slice inside the function starting 2 elements into rows of 36 is read element by element: 2·x[r, c + 2], exact', async () => {
    // Rows of 36 (a multiple of 4, so the row step alone would allow vec4 loads) sliced from column
    // 2: the lanes of an aligned output vector start at x[r, 4j + 2], not at a vec4 boundary.
    const host = smallInts(8 * 36);
    const x = tensor(host, { shape: [8, 36], device: dev });
    const f = jit((t: Tensor) => t.slice([0, 2], [8, 32]).mul(2));
    const want = Array.from({ length: 8 }, (_, r) => Array.from({ length: 32 }, (_, c) => 2 * host[r * 36 + c + 2]!));
    expect(await f(x).toArray()).toEqual(want);
    x.dispose();
  });

  it('a slice inside the function of rows of 34 from column 0 is read element by element: 2·x[r, c], exact', async () => {
    // Each row's first lanes start at a multiple of 4 along the row, but row r starts at element
    // 34r, a multiple of 4 only for even r: odd rows are not at a vec4 boundary.
    const host = smallInts(8 * 34);
    const x = tensor(host, { shape: [8, 34], device: dev });
    const f = jit((t: Tensor) => t.slice([0, 0], [8, 32]).mul(2));
    const want = Array.from({ length: 8 }, (_, r) => Array.from({ length: 32 }, (_, c) => 2 * host[r * 34 + c]!));
    expect(await f(x).toArray()).toEqual(want);
    x.dispose();
  });
});

describe('vec4 lanes of elementwise kernels read through reshapes', () => {
  it('a [2,6] sum with a broadcast row, reshaped to [3,4]: a lane vector crossing a row of 6 reads the next row, exact', async () => {
    // Output row 1 is elements 4..7 of the [2,6] value: (0,4), (0,5), (1,0), (1,1). Rows of 6 are
    // not a multiple of 4, so those lanes are not 4 consecutive coordinates along the last axis
    // (the broadcast row would then be read at 6 and 7, past its end).
    const t = tensor(smallInts(12), { shape: [2, 6], device: dev });
    const row = tensor([10, 20, 30, 40, 50, 60], { shape: [6], device: dev });
    const f = jit((a: Tensor, b: Tensor) => a.add(b).reshape([3, 4]).mul(2));
    const sums = smallInts(12).map((v, i) => 2 * (v + [10, 20, 30, 40, 50, 60][i % 6]!));
    const want = [sums.slice(0, 4), sums.slice(4, 8), sums.slice(8, 12)];
    expect(await f(t, row).toArray()).toEqual(want);
    t.dispose();
    row.dispose();
  });
});

describe('a product reading a result stored past the start of the results block', () => {
  it('its operand, copied to scratch (the product writes that block), is read from the copy\'s start, exact', async () => {
    // c = 3a takes the block's first 128 elements, h = 2a the next 128, and h·b is written into the
    // same block: h is copied to offset 0 of a scratch buffer before the product reads it.
    // Integers: |2a| ≤ 6, |b| ≤ 3, K = 8, so every sum is exact.
    const [ha, hb] = [smallInts(16 * 8), smallInts(8 * 16).map((v) => -v)];
    const a = tensor(ha, { shape: [16, 8], device: dev });
    const b = tensor(hb, { shape: [8, 16], device: dev });
    const f = jit((x: Tensor, y: Tensor) => {
      const h = x.mul(2);
      return [x.mul(3), h, matmul(h, y)];
    });
    const [c, h, p] = f(a, b) as Tensor[];
    expect(Array.from(await c!.data())).toEqual(ha.map((v) => 3 * v));
    expect(Array.from(await h!.data())).toEqual(ha.map((v) => 2 * v));
    const want = Array.from({ length: 16 }, (_, r) => Array.from({ length: 16 }, (_, col) => Array.from({ length: 8 }, (_, k) => 2 * ha[r * 8 + k]! * hb[k * 16 + col]!).reduce((s, v) => s + v, 0)));
    expect(await p!.toArray()).toEqual(want);
    expect(f.lower(a, b).kernels().map((k) => k.name).some((n) => n.startsWith('matmul'))).toBe(true);
    a.dispose();
    b.dispose();
  });
});

describe('a blocked serial row sum whose extent is not a multiple of the block', () => {
  it('[1024, 100] row sums (one thread per row, runs of 64 then 36 terms) read only their own row, exact', async () => {
    // 1,024 outputs of 100 terms: the serial kernel, summing in runs of 64 (SERIAL_SUM_BLOCK in
    // lower.ts); the second run of each row is 36 terms. Integers in [-3, 5] (a period of 9, whose
    // runs of 28 do not sum to 0, so terms read past a row change its sum): exact sums.
    const host = Array.from({ length: 1024 * 100 }, (_, i) => (i % 9) - 3);
    const x = tensor(host, { shape: [1024, 100], device: dev });
    const f = jit((t: Tensor) => t.sum(1));
    const want = Array.from({ length: 1024 }, (_, r) => host.slice(r * 100, r * 100 + 100).reduce((a, b) => a + b, 0));
    expect(Array.from(await f(x).data())).toEqual(want);
    expect(f.lower(x).kernels().map((k) => k.name)).toEqual(['fused_sum_1024x100_serial']);
    x.dispose();
  });
});

describe('a kernel binding exactly as many storage buffers as the device allows', () => {
  it('is made: two sums of separate arguments in one kernel, the arguments and the results block filling every binding', async () => {
    const max = gpu.runtime.device.limits.maxStorageBuffersPerShaderStage;
    // max − 1 arguments, each read by one of two roots, and one results block: max bindings.
    const n = max - 1;
    const args = Array.from({ length: n }, (_, i) => tensor([i, 2 * i, 3 * i, -i], { device: dev }));
    const half = Math.ceil(n / 2);
    const f = jit((...ts: Tensor[]) => [ts.slice(0, half).reduce((a, b) => a.add(b)), ts.slice(half).reduce((a, b) => a.add(b))]);
    const [p, q] = f(...args) as Tensor[];
    const sumOf = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k).reduce((a, b) => a + b, 0);
    const [s0, s1] = [sumOf(0, half), sumOf(half, n)];
    expect(Array.from(await p!.data())).toEqual([s0, 2 * s0, 3 * s0, -s0]);
    expect(Array.from(await q!.data())).toEqual([s1, 2 * s1, 3 * s1, -s1]);
    const kernels = f.lower(...args).kernels();
    expect(kernels).toHaveLength(1);
    expect(kernels[0]!.source.match(/var<storage/g)).toHaveLength(max);
    for (const t of args) t.dispose();
  });
});

describe('a gathered index equal to the extent under jit', () => {
  it('is out of range: the next read fails naming it, as with any index past the end', async () => {
    // 2i + 1 for i = 0, 1, 2 is 1, 3, 5: 5 is one past the last row of a 5-element x.
    const f = jit((x: Tensor, i: Tensor) => x.indexSelect(0, i.mul(2).add(1).cast('int32')).add(1));
    const x = tensor([1, 2, 3, 4, 5], { device: dev });
    const out = f(x, tensor([0, 1, 2], { device: dev }));
    await expect(out.data()).rejects.toThrow('gather: index 5 is out of range for axis 0 of extent 5 (expected 0 <= index < 5)');
    expect(Array.from(await f(x, tensor([0, 1], { device: dev })).data())).toEqual([3, 5]);
  });
});
