// The path a hardware GPU takes, forced on the software adapter the tests run on: llvmpipe is
// detected as software (backend.softwareAdapter), and then a compiled program's large matmuls
// keep no epilogue (compiles there are slow) and register-blocked matmuls shrink their blocks at
// another workgroup count (vec4MinWorkgroups). Here both are set as on a hardware adapter, so
// the fused matmul epilogues and the tilings a real GPU runs are checked against eager WebGPU
// and the CPU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grad, jit, valueAndGrad } from '@scorch/autograd';
import { type Tensor, foldIn, matmul, randn, randomKey, sum, tensor, tidy, where } from '@scorch/tensor';
import { type WebGPUHandle, MIN_WORKGROUPS, WebGPUCompiledProgram, chooseVec4Blocking } from '@scorch/kernels';
import { denoisingScoreMatchingLoss, mlpScore } from '@scorch/score';
import { RUN_SEED, exact, firstMismatch, hardwarePathDevice, hashSeed, hostRandom, ulp, uniformData } from './helpers.js';

let gpu: WebGPUHandle;
let dev = 'webgpu';
let restore: () => void;
beforeAll(async () => {
  ({ gpu, restore } = await hardwarePathDevice());
  dev = gpu.device;
});
afterAll(() => restore());

const read = async (t: Tensor) => Array.from(await t.data());
const u = 2 ** -24;

/** Integers in [−3, 3] as float32: products of them sum exactly in any order (|sum| < 2²⁴). */
function ints(n: number, rnd: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.floor(rnd() * 7) - 3);
}


describe('an anchor kernel with an epilogue binds no more buffers than the device allows', () => {
  // Each consumer p + xᵢ of the product (or reduction) p joined its kernel as an epilogue, one
  // read and one store each, with no count of the buffers: past the device's limit the kernel
  // could not be made ("binds 24 buffers, more than the 16 this device allows").
  const anchors: [string, number, (a: Tensor, b: Tensor) => Tensor][] = [
    ['a tiled matmul', 64, (a, b) => matmul(a, b)],
    ['a dot-product kernel', 4, (a, b) => matmul(a, b)],
    ['a reduction', 8, (a, b) => a.reshape([a.shape[0]!, 32, 1]).mul(b.reshape([1, 32, 64])).sum(1)],
  ];
  for (const [name, m, product] of anchors) {
    it(`${name} with more consumers than bindings`, async () => {
      const limit = gpu.runtime.device.limits.maxStorageBuffersPerShaderStage;
      const rnd = hostRandom(hashSeed('hardware-path-bindings', name));
      const a = tensor(uniformData(m * 32, rnd, -0.5, 1), { shape: [m, 32], device: dev });
      const b = tensor(uniformData(32 * 64, rnd, -0.5, 1), { shape: [32, 64], device: dev });
      const xs = Array.from({ length: limit + 4 }, () => tensor(uniformData(m * 64, rnd), { shape: [m, 64], device: dev }));
      const f = (a: Tensor, b: Tensor, ...xs: Tensor[]) => {
        const p = product(a, b);
        return xs.map((x) => p.add(x));
      };
      const got = jit(f)(a, b, ...xs);
      const want = tidy(() => f(a, b, ...xs));
      // p sums 32 terms of |aₖbₖ| ≤ ¼ in another order: each within 32·u·8 of the exact sum, and
      // p + x (|p + x| ≤ 10) one rounding more.
      const bound = 2 * 32 * u * 8 + ulp(10);
      for (let i = 0; i < want.length; i++) {
        expect(firstMismatch(await read(want[i]!), await read(got[i]!), () => bound), `consumer ${i} (seed ${RUN_SEED})`).toBeNull();
      }
    });
  }
});

describe('matmul epilogues as a hardware GPU compiles them', () => {
  // One program with every kind of epilogue on one product: a broadcast bias, activations, a
  // comparison and where, a cast, the product itself returned, and a reduction after it. The
  // operands are small integers, so every product is exact in any summation order: the jitted
  // values equal eager WebGPU's bit for bit (a fused kernel evaluates eager's WGSL expressions),
  // except the row sum, a reduction in another order (n·u·Σ|tanh| ≤ n²·u).
  const f = (a: Tensor, b: Tensor, bias: Tensor, col: Tensor) => {
    const p = matmul(a, b);
    const s = p.mul(0.125);
    return [
      p, s.add(bias).softplus(), s.gelu(), s.add(col).silu(), s.gelu({ approximate: 'tanh' }).sigmoid(),
      where(p.greater(0), p, p.mul(0.25)), p.mul(0.5).cast('int32'), sum(s.tanh(), -1),
    ];
  };
  // (M, K, N, batch of A, batch of B, A transposed in the program): the tiled kernel (K not a
  // multiple of 4; 127×129 and 130×129 not multiples of its tiles), the register-blocked one
  // (K and N multiples of 4), batched and broadcast batches, a transposed operand, and the
  // dot-product and inline kernels of thin products, and zero-size M and K.
  const shapes: [number, number, number, number[], number[], boolean][] = [
    [130, 66, 129, [], [], false],
    [127, 64, 129, [2], [2], true],
    [16, 32, 64, [], [], false],
    [33, 20, 40, [2, 3], [1, 3], false],
    [3, 5, 5, [], [], false],
    [64, 1, 32, [], [], false],
    [1, 1, 1, [], [], false],
    [0, 8, 5, [], [], false],
    [4, 0, 6, [], [], false],
  ];
  for (const [m, k, n, batchA, batchB, transposed] of shapes) {
    it(`${[...batchA, m].join('·')}×${k}×${[...batchB, n].join('·')}${transposed ? ' (Aᵀ)' : ''}: jitted equals eager and the CPU`, async () => {
      const rnd = hostRandom(hashSeed('hardware-path-epilogues', m, k, n));
      const aShape = transposed ? [...batchA, k, m] : [...batchA, m, k];
      const [ad, bd, biasd, cold] = [ints(aShape.reduce((x, y) => x * y, 1), rnd), ints([...batchB, k, n].reduce((x, y) => x * y, 1), rnd), ints(n, rnd), ints(m, rnd)];
      const make = (device: string) => {
        const a = tensor(ad, { shape: aShape, device });
        return [
          transposed ? a.transpose([...batchA.keys(), batchA.length + 1, batchA.length]) : a, tensor(bd, { shape: [...batchB, k, n], device }),
          tensor(biasd, { shape: [n], device }), tensor(cold, { shape: [m, 1], device }),
        ] as const;
      };
      const args = make(dev);
      const compiled = jit(f);
      const got = compiled(...args);
      // Large products take their epilogue into the matmul kernel (thin ones are dot or inline).
      if (m > 4 && n > 4 && k > 4) expect(compiled.lower(...args).kernels().some((kernel) => kernel.name.includes('matmul') && kernel.name.includes('epilogue'))).toBe(true);
      const want = tidy(() => f(...args));
      const onCpu = tidy(() => f(...make('cpu')));
      const bound = n * n * u + ulp(n);
      for (let i = 0; i < want.length; i++) {
        const tol = i === want.length - 1 ? () => bound : exact;
        expect(got[i]!.dtype).toBe(want[i]!.dtype);
        expect(firstMismatch(await read(want[i]!), await read(got[i]!), tol), `output ${i} (seed ${RUN_SEED})`).toBeNull();
      }
      // The exact product, and the CPU's float32 casts and selections of it.
      for (const i of [0, 5, 6]) expect(firstMismatch(await read(onCpu[i]!), await read(got[i]!), exact), `output ${i} against the CPU`).toBeNull();
    });
  }

  it('a K summed in two launches, the epilogue on the last', async () => {
    // K = 2¹⁵ + 4: the first launch stores the product of the first 2¹⁵ terms, the second adds
    // the rest and runs the epilogue. Exact with integer operands.
    const k = 32768 + 4;
    const rnd = hostRandom(hashSeed('hardware-path-long-k'));
    const [ad, bd, biasd] = [ints(8 * k, rnd), ints(k * 8, rnd), ints(8, rnd)];
    const make = (device: string) => [tensor(ad, { shape: [8, k], device }), tensor(bd, { shape: [k, 8], device }), tensor(biasd, { shape: [8], device })] as const;
    const f = (a: Tensor, b: Tensor, bias: Tensor) => { const p = matmul(a, b); return [p, p.add(bias).relu()]; };
    const got = jit(f)(...make(dev));
    const want = f(...make('cpu'));
    for (let i = 0; i < 2; i++) expect(firstMismatch(await read(want[i]!), await read(got[i]!), exact), `output ${i}`).toBeNull();
  });

  it('a K summed in two launches, A a view at moving offsets: each call reads its own offsets', async () => {
    // The launches after the first read A at the recorded offset word too (the view-offset fuzz
    // draws no K this long). A is 8k elements of a flat tensor from element 8ik + (i mod 4),
    // reshaped to [8, k]: a contiguous view at offsets of every residue mod 4 (a strided view
    // would be copied to offset 0 before the program); then the same calls again in another
    // order, back to offsets seen before. Exact with integer operands.
    const k = 32768 + 4;
    const rnd = hostRandom(hashSeed('hardware-path-long-k-views'));
    const [ad, bd, biasd] = [ints(6 * 8 * k + 3, rnd), ints(k * 8, rnd), ints(8, rnd)];
    const make = (device: string) => [tensor(ad, { device }), tensor(bd, { shape: [k, 8], device }), tensor(biasd, { shape: [8], device })] as const;
    const view = (flat: Tensor, i: number) => flat.slice([8 * i * k + (i % 4)], [8 * k]).reshape([8, k]);
    const f = (a: Tensor, b: Tensor, bias: Tensor) => { const p = matmul(a, b); return [p, p.add(bias).relu()]; };
    const compiled = jit(f);
    const [flat, b, bias] = make(dev);
    const [flatCpu, bCpu, biasCpu] = make('cpu');
    for (const i of [0, 1, 2, 3, 4, 5, 3, 0, 5]) {
      const got = compiled(view(flat, i), b, bias);
      const want = f(view(flatCpu, i), bCpu, biasCpu);
      for (let j = 0; j < 2; j++) expect(firstMismatch(await read(want[j]!), await read(got[j]!), exact), `minibatch ${i}, output ${j}`).toBeNull();
    }
  });
});

describe('register-blocked matmuls at a hardware GPU\'s workgroup count', () => {
  it('every blocking chooseVec4Blocking picks for these shapes gives the exact product', async () => {
    // Shapes whose blocks differ at MIN_WORKGROUPS: rows 4 to 32, one to four column groups,
    // edges past the matrix (M, N not multiples of the block), batches, A read along M and B
    // along K. Integer operands: the exact product.
    const rnd = hostRandom(hashSeed('hardware-path-blocking'));
    const blockings = new Set<string>();
    const shapes: [number, number, number, number, boolean, boolean][] = [
      [1, 128, 16, 128, false, false], [1, 255, 8, 64, false, true], [1, 3, 12, 36, false, false], [1, 20, 8, 64, true, false],
      [1, 64, 4, 512, true, true], [1, 510, 8, 64, false, false], [2, 127, 12, 32, false, false], [5, 9, 8, 5, false, true],
    ];
    for (const [batch, m, k, n, aAlongM, bAlongK] of shapes) {
      blockings.add(JSON.stringify(chooseVec4Blocking(m, n, batch, MIN_WORKGROUPS)));
      const ad = ints(batch * m * k, rnd);
      const bd = ints(batch * k * n, rnd);
      const make = (device: string) => {
        const a = aAlongM ? tensor(ad, { shape: [batch, k, m], device }).transpose([0, 2, 1]) : tensor(ad, { shape: [batch, m, k], device });
        const b = bAlongK ? tensor(bd, { shape: [batch, n, k], device }).transpose([0, 2, 1]) : tensor(bd, { shape: [batch, k, n], device });
        return matmul(a, b);
      };
      expect(firstMismatch(await read(make('cpu')), await read(make(dev)), exact), `${batch}·${m}×${k}×${n}`).toBeNull();
    }
    expect(blockings.size).toBeGreaterThanOrEqual(7);
  });
});

describe('training with the hardware path', () => {
  it('the DSM training step (MLP 2→32→32→2, softplus, momentum): jitted equals eager', async () => {
    const setup = () => {
      const model = mlpScore({ inputDim: 2, hidden: [32, 32], activation: 'softplus', key: randomKey(0), device: dev } as never);
      const names = Object.keys(model.params);
      const x = randn([128, 2], { key: randomKey(5), device: dev });
      const m = Object.fromEntries(names.map((n) => [n, tensor(new Float32Array(model.params[n]!.size), { shape: model.params[n]!.shape, device: dev })]));
      const step = (params: Record<string, Tensor>, key: ReturnType<typeof randomKey>) => {
        const objective = (...flat: Tensor[]) => denoisingScoreMatchingLoss(model.bind(Object.fromEntries(names.map((n, i) => [n, flat[i]!]))), x, { key, sigma: 0.5 });
        const [loss, grads] = valueAndGrad(objective, { argnums: names.map((_, i) => i) })(...names.map((n) => params[n]!)) as [Tensor, Tensor[]];
        names.forEach((n, i) => {
          m[n]!.assign(m[n]!.mul(0.9).add(grads[i]!.mul(0.1)));
          params[n]!.assign(params[n]!.sub(m[n]!.mul(1e-2)));
        });
        return loss;
      };
      return { model, names, step };
    };
    const eager = setup();
    const compiled = setup();
    const step = jit(compiled.step, { donate: [0] });
    for (let i = 0; i < 2; i++) {
      const key = foldIn(randomKey(1), i);
      const e = (await tidy(() => eager.step(eager.model.params, key)).data())[0]!;
      const j = (await step(compiled.model.params, key).data())[0]!;
      // A mean over 128 examples of sums over 2 and 32-term products, in other orders: within
      // 128·u relative of the eager loss (the bound of the mean's sum dominates), as jit.test.ts's
      // training steps hold it.
      expect(Math.abs(e - j)).toBeLessThanOrEqual(128 * u * Math.abs(e) + 1e-6);
    }
    const initial = setup();
    for (const n of compiled.names) {
      const start = await read(initial.model.params[n]!);
      const want = (await read(eager.model.params[n]!)).map((v, i) => v - start[i]!);
      const got = (await read(compiled.model.params[n]!)).map((v, i) => v - start[i]!);
      // The two steps' updates (1e-2 · m, m a running mean of gradients): each gradient entry is
      // a sum over the 128 examples of products through 32-wide layers, summed in other orders,
      // so within 128·32·u of the sum of its terms' magnitudes, here taken as the largest update.
      const largest = want.reduce((x, y) => Math.max(x, Math.abs(y)), 0);
      // Each step also rounds the parameter itself (an ulp of |p| ≤ 2 ulp of the start, twice each).
      expect(firstMismatch(want, got, (i) => 128 * 32 * u * largest + 4 * ulp(2 * start[i]!)), n).toBeNull();
    }
  });

  it('the jitted gradient of an MLP equals eager', async () => {
    const rnd = hostRandom(hashSeed('hardware-path-mlp'));
    const shapes = [[100, 33], [33, 70], [70], [70, 17], [17]];
    const make = () => shapes.map((s) => tensor(uniformData(s.reduce((x, y) => x * y, 1), rnd, -0.5, 1), { shape: s, device: dev }));
    const args = make();
    const loss = (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) => sum(matmul(matmul(x, w1).add(b1).softplus(), w2).add(b2).square()).mul(1e-3);
    const f = (...xs: Tensor[]) => grad(loss, { argnums: [1, 2, 3, 4] })(...(xs as [Tensor, Tensor, Tensor, Tensor, Tensor])) as Tensor[];
    const got = jit(f)(...args);
    const want = tidy(() => f(...args));
    for (let i = 0; i < want.length; i++) {
      const w = await read(want[i]!);
      // Chains of sums of at most 100·70 products in other orders: 7000·u of the largest
      // gradient bounds each entry's difference (the terms' magnitudes are the gradient's own).
      const largest = w.reduce((x, y) => Math.max(x, Math.abs(y)), 0);
      expect(firstMismatch(w, await read(got[i]!), () => 7000 * u * largest), `gradient ${i} (seed ${RUN_SEED})`).toBeNull();
    }
  });
});

describe('an epilogue that reads its product through a reshape and back', () => {
  // matmul folds a batch of activations [b, s, d] into the rows of one [b·s, d] @ [d, h] product
  // and reshapes the result to [b, s, h]; the next product folds relu of it back into [b·s, h]
  // rows, a value that joins the first product's kernel as its epilogue (it reads the product at
  // its own row-major index). It read the product at the coordinates the two reshapes compute,
  // other expressions than the kernel's own for the same element, so it loaded the product from
  // its buffer, which the kernel never writes when only the epilogue reads the product: zeros or
  // another value's data. Integer operands: every product exact, so equal to eager WebGPU and
  // the CPU bit for bit.
  const cases: [string, number[][], (...xs: Tensor[]) => Tensor[]][] = [
    ['a tiled product: relu(x @ w₁) @ w₂, x [4, 25, 24]', [[4, 25, 24], [24, 20], [20, 16]], (x, w1, w2) => [matmul(matmul(x!, w1!).relu(), w2!)]],
    ['a dot-product kernel: x @ w reshaped to [4, 25, 3], relu, and back', [[100, 24], [24, 3]], (x, w) => [matmul(x!, w!).reshape([4, 25, 3]).relu().reshape([100, 3])]],
  ];
  for (const [name, shapes, f] of cases) {
    it(name, async () => {
      const rnd = hostRandom(hashSeed('hardware-path-reshape-round-trip', name));
      const data = shapes.map((shape) => ints(shape.reduce((x, y) => x * y, 1), rnd));
      const make = (device: string) => shapes.map((shape, i) => tensor(data[i]!, { shape, device }));
      const args = make(dev);
      const got = jit(f)(...args);
      const want = tidy(() => f(...args));
      const onCpu = tidy(() => f(...make('cpu')));
      for (let i = 0; i < want.length; i++) {
        expect(firstMismatch(await read(want[i]!), await read(got[i]!), exact), `output ${i} (seed ${RUN_SEED})`).toBeNull();
        expect(firstMismatch(await read(onCpu[i]!), await read(got[i]!), exact), `output ${i} against the CPU`).toBeNull();
      }
    });
  }
});

describe('the epilogue of a batched activations × weight product', () => {
  // matmul folds the batch of [b, s, d] @ [d, h] into the rows of one [b·s, d] @ [d, h] product
  // and reshapes it to [b, s, h]; the epilogue reads the product through that reshape (a split
  // of its rows: the same memory in the same order). Integer operands make every product exact,
  // so the fused values equal eager WebGPU's bit for bit (the epilogue evaluates eager's
  // expressions on the same values), and the CPU's where no transcendental is involved.
  const [b, s, d, h] = [3, 11, 24, 20];
  const count = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);
  const operands = (tag: string, shapes: readonly (readonly number[])[]) => {
    const rnd = hostRandom(hashSeed('hardware-path-batched-epilogue', tag));
    const data = shapes.map((shape) => ints(count(shape), rnd));
    return (device: string) => shapes.map((shape, i) => tensor(data[i]!, { shape: [...shape], device }));
  };
  const matmulKernels = (names: readonly string[]) => names.filter((n) => n.includes('matmul'));
  const check = async (f: (...xs: Tensor[]) => Tensor[], make: (device: string) => Tensor[], exactOnCpu: readonly number[]) => {
    const args = make(dev);
    const compiled = jit(f);
    const got = compiled(...args);
    const want = tidy(() => f(...args));
    const onCpu = tidy(() => f(...make('cpu')));
    for (let i = 0; i < want.length; i++) {
      expect(got[i]!.shape).toEqual(want[i]!.shape);
      expect(firstMismatch(await read(want[i]!), await read(got[i]!), exact), `output ${i} (seed ${RUN_SEED})`).toBeNull();
    }
    for (const i of exactOnCpu) expect(firstMismatch(await read(onCpu[i]!), await read(got[i]!), exact), `output ${i} against the CPU`).toBeNull();
    return compiled.lower(...args).kernels().map((k) => k.name);
  };

  it('bias + relu, silu and gelu chains run in the product\'s kernel, as the 2-D product\'s do', async () => {
    const chains = (p: Tensor, bias: Tensor) => {
      const s = p.mul(0.125).add(bias);
      return [s.relu(), s.silu(), s.gelu(), s.gelu({ approximate: 'tanh' }).mul(s.sigmoid())];
    };
    const make = operands('chains', [[b, s, d], [d, h], [h]]);
    const batched = await check((x, w, bias) => chains(matmul(x!, w!), bias!), make, [0]);
    const flat = await check((x, w, bias) => chains(matmul(x!.reshape([b * s, d]), w!), bias!), make, [0]);
    // One kernel each: the product with its whole epilogue (no elementwise pass after it).
    expect(flat).toHaveLength(1);
    expect(batched).toHaveLength(flat.length);
    expect(batched[0]).toContain('epilogue');
  });

  it('operands broadcast along any axis of [b, s, h] are read at the element\'s index', async () => {
    // A bias [h], a per-batch [b, 1, h], a per-position [s, h], a per-row [b, s, 1] and a full
    // [b, s, h]: each read at the coordinates the split row index decodes to.
    const f = (x: Tensor, w: Tensor, bias: Tensor, perBatch: Tensor, perPosition: Tensor, perRow: Tensor, full: Tensor) => {
      const p = matmul(x, w);
      return [
        p.add(bias).relu(), p.mul(perBatch).add(perPosition), p.sub(perRow).abs().add(full),
        where(p.greater(full), perBatch.expand([b, s, h]), perRow.expand([b, s, h])),
      ];
    };
    const make = operands('broadcasts', [[b, s, d], [d, h], [h], [b, 1, h], [s, h], [b, s, 1], [b, s, h]]);
    const names = await check((...xs) => f(...(xs as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor])), make, [0, 1, 2, 3]);
    expect(names).toHaveLength(1);
    expect(matmulKernels(names)).toHaveLength(1);
  });

  it('a 4-D activation, and the product returned beside its epilogue', async () => {
    // [2, 3, 5, d] @ [d, h]: rows split in three axes; the product itself is an output too.
    const make = operands('rank-4', [[2, 3, 5, d], [d, h], [h]]);
    const names = await check((x, w, bias) => { const p = matmul(x!, w!); return [p, p.add(bias!).relu()]; }, make, [0, 1]);
    expect(names).toHaveLength(1);
  });

  it('a thin product (a dot-product kernel) and a sum take such an epilogue too', async () => {
    // [b, s, d] @ [d, 3] is computed as dot products; a row sum of [b·s, h, 7] reshaped to
    // [b, s, h] splits a reduction's rows the same way.
    const make = operands('dot-and-sum', [[b, s, d], [d, 3], [3], [b * s, h, 7], [h]]);
    const f = (x: Tensor, w: Tensor, bias: Tensor, y: Tensor, bias2: Tensor) => [matmul(x, w).add(bias).relu(), y.sum(-1).reshape([b, s, h]).add(bias2).relu()];
    const names = await check((...xs) => f(...(xs as [Tensor, Tensor, Tensor, Tensor, Tensor])), make, [0, 1]);
    expect(names).toHaveLength(2);
    expect(names.every((n) => n.includes('epilogue'))).toBe(true);
  });

  it('a batched product\'s rows merged ([b, s, h] read as [b·s, h]) take its epilogue', async () => {
    // Both operands batched: the product is [b, s, h] itself; the bias and activation read it as
    // [b·s, h], and a value read back at [b, s, h] beside it.
    const make = operands('merged', [[b, s, d], [b, d, h], [h]]);
    const f = (x: Tensor, w: Tensor, bias: Tensor) => {
      const p = matmul(x, w);
      const y = p.reshape([b * s, h]).add(bias).relu();
      return [y, y.reshape([b, s, h]).sub(p)];
    };
    const names = await check((...xs) => f(...(xs as [Tensor, Tensor, Tensor])), make, [0, 1]);
    expect(names).toHaveLength(1);
    expect(names[0]).toContain('epilogue');
  });

  it('an epilogue operand computed from an input and broadcast (b², b·2, exp(b) read by two products) leaves the epilogue in the product\'s kernel', async () => {
    // b² and b·2 are computed in the epilogue; exp(b), costly and read by two products' epilogues,
    // is stored once as [h] (not as its [b·s, h] broadcast, by a pass after the first product).
    const make = operands('computed-operand', [[b, s, d], [d, h], [d, h], [h]]);
    const f = (x: Tensor, w: Tensor, w2: Tensor, bias: Tensor) => [
      matmul(x, w).add(bias.square()).relu(), matmul(x.reshape([b * s, d]), w2).add(bias.mul(2)).relu(),
    ];
    const names = await check((...xs) => f(...(xs as [Tensor, Tensor, Tensor, Tensor])), make, [0, 1]);
    expect(names).toHaveLength(2);
    expect(names.every((n) => n.includes('epilogue'))).toBe(true);
    const g = (x: Tensor, w: Tensor, w2: Tensor, bias: Tensor) => {
      const e = bias.mul(0.25).exp();
      return [matmul(x, w).add(e).relu(), matmul(x, w2).mul(e).sub(e)];
    };
    const shared = await check((...xs) => g(...(xs as [Tensor, Tensor, Tensor, Tensor])), make, []);
    expect(shared).toHaveLength(3);
    expect(matmulKernels(shared).every((n) => n.includes('epilogue'))).toBe(true);
  });

  it('the WGSL of such epilogues names no value it does not use', async () => {
    // The coordinates over a split or merged shape, and the product's element read back through
    // the reshape, were `let`s that no expression read (the element is known by its row-major index).
    const make = operands('unused-lets', [[b, s, d], [d, h], [b, d, h], [h], [b * s, h, 7]]);
    const f = (x: Tensor, w: Tensor, wb: Tensor, bias: Tensor, y: Tensor) => [
      matmul(x, w).add(bias).relu(), matmul(x, wb).reshape([b * s, h]).add(bias).relu(), y.sum(-1).reshape([b, s, h]).add(bias).relu(),
    ];
    const args = make(dev);
    const kernels = jit(f).lower(...(args as [Tensor, Tensor, Tensor, Tensor, Tensor])).kernels();
    expect(kernels).toHaveLength(3);
    for (const k of kernels) {
      expect(k.name).toContain('epilogue');
      // The names the kernel writer makes (a letter and a counter), not the templates' own.
      const names = [...k.source.matchAll(/\blet ([a-z]\d+) =/g)].map((m) => m[1]!);
      const unused = names.filter((n) => (k.source.match(new RegExp(`\\b${n}\\b`, 'g')) ?? []).length < 2);
      expect(unused, `${k.name}:\n${k.source}`).toEqual([]);
    }
  });

  it('reshapes that are not a split of the rows, and a transpose, keep a pass of their own and run right', async () => {
    // [b·s, h] to [b, s·h] merges a row with the columns, to [b, s, h/2, 2] splits the columns,
    // and a transpose reorders them: none is the product's element at a split row index.
    const make = operands('not-split', [[b, s, d], [d, h], [s * h], [h / 2, 2], [b, h, s]]);
    const f = (x: Tensor, w: Tensor, merged: Tensor, split: Tensor, transposed: Tensor) => {
      const p = matmul(x, w);
      return [p.reshape([b, s * h]).add(merged).relu(), p.reshape([b, s, h / 2, 2]).mul(split).silu(), p.transpose([0, 2, 1]).add(transposed).relu()];
    };
    const names = await check((...xs) => f(...(xs as [Tensor, Tensor, Tensor, Tensor, Tensor])), make, [0, 2]);
    expect(matmulKernels(names)).toHaveLength(1);
    expect(names.length).toBeGreaterThan(1);
  });
});

describe('the jitted gradient of a layer on batched activations', () => {
  it('equals eager, and takes the 2-D layer\'s kernel count', async () => {
    // The MLP of 'the jitted gradient of an MLP equals eager' above on activations [4, 25, 33]:
    // its products are the same [100, 33] @ [33, 70] and [100, 70] @ [70, 17] (matmul folds the
    // batch into the rows), so the same kernels, and the same bound, apply.
    const rnd = hostRandom(hashSeed('hardware-path-batched-mlp'));
    const shapes = [[4, 25, 33], [33, 70], [70], [70, 17], [17]];
    const args = shapes.map((s) => tensor(uniformData(s.reduce((x, y) => x * y, 1), rnd, -0.5, 1), { shape: s, device: dev }));
    const loss = (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) => sum(matmul(matmul(x, w1).add(b1).softplus(), w2).add(b2).square()).mul(1e-3);
    const f = (...xs: Tensor[]) => grad(loss, { argnums: [0, 1, 2, 3, 4] })(...(xs as [Tensor, Tensor, Tensor, Tensor, Tensor])) as Tensor[];
    const compiled = jit(f);
    const got = compiled(...args);
    const want = tidy(() => f(...args));
    for (let i = 0; i < want.length; i++) {
      const w = await read(want[i]!);
      // Chains of sums of at most 100·70 products in other orders: 7000·u of the largest
      // gradient bounds each entry's difference (the terms' magnitudes are the gradient's own).
      const largest = w.reduce((x, y) => Math.max(x, Math.abs(y)), 0);
      expect(firstMismatch(w, await read(got[i]!), () => 7000 * u * largest), `gradient ${i} (seed ${RUN_SEED})`).toBeNull();
    }
    const flat = [args[0]!.reshape([100, 33]), ...args.slice(1)];
    const names = compiled.lower(...args).kernels().map((k) => k.name);
    const flatNames = jit(f).lower(...flat).kernels().map((k) => k.name);
    expect(names.length).toBe(flatNames.length);
  });
});

describe('a jitted layer over minibatch slices, with the epilogues a hardware GPU fuses', () => {
  it('compiles its kernels once, not once per offset, and equals eager', async () => {
    // relu(x @ w + bias): x rows 64i to 64i + 63 of one tensor (a tiled matmul's operand, its
    // offset a uniform of the template), bias a view at offset 3i of another (read in place by
    // the matmul's epilogue, at every residue mod 4). Integer operands: every product is exact
    // in any order, so the compiled values are eager's bit for bit.
    const batches = 12;
    const rnd = hostRandom(hashSeed('hardware-path-minibatches'));
    const data = tensor(ints(batches * 64 * 32, rnd), { shape: [batches * 64, 32], device: dev });
    const w = tensor(ints(32 * 64, rnd), { shape: [32, 64], device: dev });
    const biases = tensor(ints(3 * batches + 64, rnd), { shape: [3 * batches + 64], device: dev });
    const layer = (x: Tensor, w: Tensor, bias: Tensor) => matmul(x, w).add(bias).relu();
    const compiled = jit(layer);
    const step = async (i: number) => {
      const x = data.slice([i * 64, 0], [64, 32]);
      const bias = biases.slice([i * 3], [64]);
      const got = compiled(x, w, bias);
      const want = layer(x, w, bias);
      expect(await read(got), `minibatch ${i}`).toEqual(await read(want));
      for (const t of [x, bias, got, want]) t.dispose();
    };
    for (let i = 0; i < 4; i++) await step(i);
    expect(tidy(() => compiled.lower(data.slice([64, 0], [64, 32]), w, biases.slice([3], [64])).kernels().map((k) => k.name))).toEqual([expect.stringMatching(/^fused_matmul_.*_epilogue$/)]);
    const compiles = gpu.runtime.stats.compiles;
    for (let i = 4; i < batches; i++) await step(i);
    expect(gpu.runtime.stats.compiles - compiles).toBe(0);
    for (const t of [data, w, biases]) t.dispose();
  });
});

describe('a jitted step over every minibatch position of a dataset, two epochs', () => {
  it('lowers its program and makes its variant once, rewriting only the offset words per call', async () => {
    // 40 minibatches of 64 rows: x is rows 64i to 64i + 63 of one tensor (contiguous, at offset
    // 2048i: every offset a multiple of 4). The functions: a fused elementwise chain, a row
    // reduction, a product with a fused bias+relu epilogue whose bias is a view at offset 4i of
    // another tensor, a plain product whose A is the slice, and the epilogue product with its bias
    // at offset 3i (every residue mod 4: four layouts, since the vec4 path depends on the residue).
    // Integer operands: every product and sum is exact in any order, so compiled equals eager.
    const batches = 40;
    const rnd = hostRandom(hashSeed('hardware-path-minibatch-epochs'));
    const data = tensor(ints(batches * 64 * 32, rnd), { shape: [batches * 64, 32], device: dev });
    const w = tensor(ints(32 * 64, rnd), { shape: [32, 64], device: dev });
    const biases = tensor(ints(4 * batches + 64, rnd), { shape: [4 * batches + 64], device: dev });
    const chain = (x: Tensor) => x.mul(x).sub(x.mul(3)).add(1).relu();
    const rowSums = (x: Tensor) => sum(x.mul(x).add(x), [1]);
    const layer = (x: Tensor, w: Tensor, bias: Tensor) => matmul(x, w).add(bias).relu();
    const product = (x: Tensor, w: Tensor) => matmul(x, w);
    const fs = { chain: jit(chain), rowSums: jit(rowSums), layer: jit(layer), product: jit(product), layer3: jit(layer) };
    const args = (i: number) => {
      const x = data.slice([i * 64, 0], [64, 32]);
      return { x, bias: biases.slice([i * 4], [64]), bias3: biases.slice([i * 3], [64]) };
    };
    const programs = () => {
      const { x, bias, bias3 } = args(0);
      const out = [fs.chain.lower(x), fs.rowSums.lower(x), fs.layer.lower(x, w, bias), fs.product.lower(x, w), fs.layer3.lower(x, w, bias3)].map((l) => l.compiled as WebGPUCompiledProgram);
      for (const t of [x, bias, bias3]) t.dispose();
      return out;
    };
    const step = async (epoch: number, i: number) => {
      const { x, bias, bias3 } = args(i);
      const got = [fs.chain(x), fs.rowSums(x), fs.layer(x, w, bias), fs.product(x, w), fs.layer3(x, w, bias3)];
      const want = [chain(x), rowSums(x), layer(x, w, bias), product(x, w), layer(x, w, bias3)];
      for (let k = 0; k < got.length; k++) expect(await read(got[k]!), `function ${k}, epoch ${epoch}, minibatch ${i}`).toEqual(await read(want[k]!));
      for (const t of [x, bias, bias3, ...got, ...want]) t.dispose();
    };
    // The first 4 minibatches: the bias at offset 3i meets every residue mod 4.
    for (let i = 0; i < 4; i++) await step(0, i);
    const compiled = programs();
    expect(tidy(() => fs.layer.lower(data.slice([64, 0], [64, 32]), w, biases.slice([4], [64])).kernels().map((k) => k.name))).toEqual([expect.stringMatching(/^fused_matmul_.*_epilogue$/)]);
    const before = compiled.map((c) => c.stats);
    const compiles = gpu.runtime.stats.compiles;
    for (let epoch = 0; epoch < 2; epoch++) {
      for (let i = epoch === 0 ? 4 : 0; i < batches; i++) await step(epoch, i);
    }
    const after = compiled.map((c) => c.stats);
    for (let k = 0; k < compiled.length; k++) {
      expect(after[k]!.lowerings, `lowerings of function ${k}`).toBe(before[k]!.lowerings);
      expect(after[k]!.variants, `variants of function ${k}`).toBe(before[k]!.variants);
      // One variant per residue of the inputs' offsets: 1, or 4 for the bias at 3i.
      expect(after[k]!.variants, `variants of function ${k}`).toBe(k === 4 ? 4 : 1);
      expect(compiled[k]!.variantCount).toBe(k === 4 ? 4 : 1);
      expect(after[k]!.offsetRewrites, `calls of function ${k} that rewrote offsets`).toBeGreaterThan(before[k]!.offsetRewrites);
    }
    expect(gpu.runtime.stats.compiles - compiles).toBe(0);
    // Calls in flight together, none read until all are queued: each call's dispatches read the
    // offset words written for it, not a later call's (each call is submitted before the next
    // one's words are written).
    const queued = Array.from({ length: batches }, (_, i) => {
      const { x, bias, bias3 } = args(batches - 1 - i);
      const got = [fs.chain(x), fs.layer(x, w, bias), fs.layer3(x, w, bias3)];
      const want = [chain(x), layer(x, w, bias), layer(x, w, bias3)];
      for (const t of [x, bias, bias3]) t.dispose();
      return { got, want };
    });
    for (const [i, { got, want }] of queued.entries()) {
      for (let k = 0; k < got.length; k++) expect(await read(got[k]!), `in flight: function ${k}, call ${i}`).toEqual(await read(want[k]!));
      for (const t of [...got, ...want]) t.dispose();
    }
    for (const t of [data, w, biases]) t.dispose();
  });
});
