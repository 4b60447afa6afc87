// Matrix products on the GPU against the CPU reference: degenerate and awkward sizes (not
// multiples of any tile), batched and broadcast-batch shapes, and transposed operands read
// through strides; both the vec4 register-blocked kernel and the tiled strided kernel.
//
// Tolerance per output: the GPU sums K products in float32, |error| ≤ K·2^-24·Σ|a||b| (each
// product exact in the accumulation bound, K roundings); the CPU sums in float64 and rounds
// once (≤ 1/2 ULP), so K·2^-24·Σ|a||b| + 1 ULP.

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { type Tensor, matmul, tensor } from '@scorch/tensor';
import { type WebGPUHandle, MIN_WORKGROUPS, SKINNY_TILING, VEC4_BLOCKING, chooseVec4Blocking, matmulKernel, softwareAdapterMinWorkgroups, vec4Layout, vec4MatmulKernel } from '@scorch/kernels';
import { UniformBlock, grid1d } from '../src/wgsl/common.js';
import { indexErrorOf } from '../src/wgsl/indexErrors.js';
import { hardwareThreads } from '@scorch/tensor';
import { FLUSH_FLOOR, RUN_SEED, exact, firstMismatch, gpuDevice, hashSeed, hostRandom, normalPair, ulp } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});
afterEach(() => {
  gpu.backend.forceTiledMatmul = false;
});

const randomPair = (shape: readonly number[], seed: number) => normalPair(shape, seed, gpu.device);

/** Operand of logical shape [...batch, rows, cols]; `transposed` stores it as [..., cols, rows] and permutes. */
function operand(shape: readonly number[], transposed: boolean, seed: number): { cpu: Tensor; gpu: Tensor } {
  if (!transposed) return randomPair(shape, seed);
  const r = shape.length;
  const stored = [...shape.slice(0, -2), shape[r - 1]!, shape[r - 2]!];
  const p = randomPair(stored, seed);
  return { cpu: p.cpu.transpose(), gpu: p.gpu.transpose() };
}

async function expectProductMatches(a: { cpu: Tensor; gpu: Tensor }, b: { cpu: Tensor; gpu: Tensor }, what: string): Promise<void> {
  const reference = matmul(a.cpu, b.cpu);
  const bound = matmul(a.cpu.abs(), b.cpu.abs()).dataSync();
  const k = a.cpu.shape[a.cpu.rank - 1]!;
  const out = matmul(a.gpu, b.gpu);
  expect(out.shape).toEqual(reference.shape);
  const mismatch = firstMismatch(reference.dataSync(), await out.data(), (i, r) => k * 2 ** -24 * bound[i]! + ulp(r) + FLUSH_FLOOR);
  expect(mismatch, `${what} (seed ${RUN_SEED})`).toBeNull();
}

const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [1, 1023, 1],
  [1, 1, 1023],
  [127, 255, 63],
  [256, 256, 256],
  [33, 7, 257],
  [4, 64, 12],
];

describe('matmul', () => {
  for (const tiled of [false, true]) {
    const kernel = tiled ? 'tiled kernel' : 'default kernel choice';
    for (const [m, k, n] of SIZES) {
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        if ((m * k * n > 1e6 || m * n === 1) && (ta || tb) && tiled) continue; // keep the suite short: layouts are covered on smaller sizes
        it(`${m}×${k}×${n}${ta ? ' Aᵀ' : ''}${tb ? ' Bᵀ' : ''} (${kernel})`, async () => {
          gpu.backend.forceTiledMatmul = tiled;
          const a = operand([m, k], ta, hashSeed('a', m, k, n, ta, tb));
          const b = operand([k, n], tb, hashSeed('b', m, k, n, ta, tb));
          await expectProductMatches(a, b, `${m}×${k}×${n}`);
        });
      }
    }
  }

  it('batched [5,33,20]×[5,20,7] and a permuted batch axis', async () => {
    await expectProductMatches(operand([5, 33, 20], false, hashSeed('ba')), operand([5, 20, 7], true, hashSeed('bb')), 'batched');
    const a = randomPair([33, 5, 20], hashSeed('pa'));
    await expectProductMatches({ cpu: a.cpu.permute([1, 0, 2]), gpu: a.gpu.permute([1, 0, 2]) }, operand([5, 20, 8], false, hashSeed('pb')), 'permuted batch');
  });

  it('broadcast batch: [2,1,16,12]×[3,12,8] (NumPy rules in matmul) and [4,16,12]×[12,8]', async () => {
    await expectProductMatches(operand([2, 1, 16, 12], false, hashSeed('b1')), operand([3, 12, 8], false, hashSeed('b2')), 'broadcast batch');
    await expectProductMatches(operand([4, 16, 12], false, hashSeed('b3')), operand([12, 8], true, hashSeed('b4')), 'batch against a matrix');
  });

  it('vector products: [1023]·[1023], [7,33]·[33], [33]·[33,7]', async () => {
    await expectProductMatches(randomPair([1023], hashSeed('v1')), randomPair([1023], hashSeed('v2')), 'dot');
    await expectProductMatches(randomPair([7, 33], hashSeed('v3')), randomPair([33], hashSeed('v4')), 'matrix-vector');
    await expectProductMatches(randomPair([33], hashSeed('v5')), randomPair([33, 7], hashSeed('v6')), 'vector-matrix');
  });

  it('N not a multiple of 4 with Bᵀ: no store past the end of a row (30 repetitions, a race otherwise)', async () => {
    const a = operand([64, 40, 8], false, hashSeed('race a'));
    const b = operand([64, 8, 7], true, hashSeed('race b'));
    const reference = matmul(a.cpu, b.cpu).dataSync();
    const bound = matmul(a.cpu.abs(), b.cpu.abs()).dataSync();
    for (let i = 0; i < 30; i++) {
      const got = await matmul(a.gpu, b.gpu).data();
      const mismatch = firstMismatch(reference, got, (j, r) => 8 * 2 ** -24 * bound[j]! + ulp(r) + FLUSH_FLOOR);
      expect(mismatch, `repetition ${i}`).toBeNull();
    }
  });

  it('K = 0 gives zeros', async () => {
    const a = tensor(new Float32Array(0), { shape: [3, 0], device: gpu.device });
    const b = tensor(new Float32Array(0), { shape: [0, 4], device: gpu.device });
    expect(await a.matmul(b).toArray()).toEqual([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]);
  });

  it('a K longer than one launch may walk is summed over several (tiled and vec4 kernels, eager and under jit)', async () => {
    // llvmpipe silently ends an invocation after 65,535 loop iterations: the tiled kernel's walk
    // (16 elements of K a step here) stopped at K = 1,048,560, the vec4 kernel's (4 a step) at
    // 262,140. Small integers make every partial sum exact, so any order of summation gives the
    // CPU's result exactly.
    const [m, n] = [5, 6];
    const product = jit((a: Tensor, b: Tensor) => matmul(a, b));
    const withEpilogue = jit((a: Tensor, b: Tensor) => matmul(a, b).mul(2).add(1));
    for (const [k, bTransposed] of [[1048577, false], [262148, true]] as const) {
      const rnd = hostRandom(hashSeed('long K', k));
      const aData = Float32Array.from({ length: m * k }, () => Math.floor(rnd() * 3) - 1);
      const bData = Float32Array.from({ length: k * n }, () => Math.floor(rnd() * 5) - 2);
      const bOf = (device: string) => (bTransposed ? tensor(bData, { shape: [n, k], device }).transpose() : tensor(bData, { shape: [k, n], device }));
      const bLayout = bTransposed ? { shape: [k, n], strides: [1, k], offset: 0 } : { shape: [k, n], strides: [n, 1], offset: 0 };
      const kernel = vec4Layout({ shape: [m, k], strides: [k, 1], offset: 0 }, bLayout) ? 'vec4' : 'tiled';
      expect(kernel).toBe(bTransposed ? 'vec4' : 'tiled');
      const reference = matmul(tensor(aData, { shape: [m, k] }), bOf('cpu'));
      const a = tensor(aData, { shape: [m, k], device: gpu.device });
      const b = bOf(gpu.device);
      expect(await matmul(a, b).toArray(), `${kernel} K = ${k}`).toEqual(await reference.toArray());
      expect(await product(a, b).toArray(), `jit ${kernel} K = ${k}`).toEqual(await reference.toArray());
      expect(await withEpilogue(a, b).toArray(), `jit ${kernel} K = ${k}, epilogue`).toEqual(await reference.mul(2).add(1).toArray());
      a.dispose();
      b.dispose();
    }
  });

  it('a K summed over several launches, A a view at moving offsets: each launch reads the call\'s offsets', async () => {
    // A: 5·k elements of a flat tensor from element 5ik + (i mod 4), reshaped to [5, k] (a
    // contiguous view: every residue mod 4, then offsets seen before); K = 2¹⁵ + 4, two launches
    // of the tiled kernel (unaligned rows) and of the vec4 kernel (aligned ones, i mod 4 = 0).
    // (hardwarePath.test.ts has the epilogue path hardware GPUs take.) Exact with small integers.
    const [m, n, k] = [5, 6, 32768 + 4];
    const rnd = hostRandom(hashSeed('long K views'));
    const aData = Float32Array.from({ length: 6 * m * k + 3 }, () => Math.floor(rnd() * 3) - 1);
    const bData = Float32Array.from({ length: k * n }, () => Math.floor(rnd() * 5) - 2);
    const withEpilogue = jit((a: Tensor, b: Tensor) => [matmul(a, b), matmul(a, b).mul(2).add(1)]);
    const [flat, b] = [tensor(aData, { device: gpu.device }), tensor(bData, { shape: [k, n], device: gpu.device })];
    const [flatCpu, bCpu] = [tensor(aData), tensor(bData, { shape: [k, n] })];
    const view = (x: Tensor, i: number) => x.slice([m * i * k + (i % 4)], [m * k]).reshape([m, k]);
    for (const i of [0, 1, 2, 3, 4, 5, 3, 0, 5]) {
      const want = matmul(view(flatCpu, i), bCpu);
      const [p, q] = withEpilogue(view(flat, i), b) as Tensor[];
      expect(await p!.toArray(), `minibatch ${i}`).toEqual(await want.toArray());
      expect(await q!.toArray(), `minibatch ${i}, epilogue`).toEqual(await want.mul(2).add(1).toArray());
    }
  });

  it('transposed operands are read in place: the vec4 kernel accepts all four layouts of aligned operands', () => {
    const a = { shape: [8, 12], strides: [12, 1], offset: 0 };
    const aT = { shape: [8, 12], strides: [1, 8], offset: 0 };
    const b = { shape: [12, 16], strides: [16, 1], offset: 0 };
    const bT = { shape: [12, 16], strides: [1, 12], offset: 0 };
    expect(vec4Layout(a, b)).toEqual({ a: 'k', b: 'n' });
    expect(vec4Layout(aT, b)).toEqual({ a: 'm', b: 'n' });
    expect(vec4Layout(a, bT)).toEqual({ a: 'k', b: 'k' });
    expect(vec4Layout(aT, bT)).toEqual({ a: 'm', b: 'k' });
    expect(vec4Layout({ shape: [7, 33], strides: [33, 1], offset: 0 }, b)).toBeNull(); // K = 33: rows not 16-byte aligned
  });

  it('a register block is stored four rows at a time by a loop, not by a store per element written out', () => {
    // Written out, a 32×16 block's stores were 512 guarded scalar stores: most of the kernel's
    // code and seconds of llvmpipe's compile (benchmarks/NOTES.md). Now the code has the stores
    // of four rows (4 rows × 4 column groups × 4 lanes of a vec4 = 64), whatever the block's rows.
    const layout = (rows: number, cols: number) => ({ shape: [rows, cols], strides: [cols, 1], offset: 0 });
    const params = { a: layout(1024, 128), b: layout(128, 128), outShape: [1024, 128], axes: { a: 'k', b: 'n' } as const, blocking: VEC4_BLOCKING, batchStart: 0, batchCount: 1 };
    expect(VEC4_BLOCKING.rows * VEC4_BLOCKING.columnGroups).toBe(128);
    const plain = vec4MatmulKernel(params).code;
    expect(plain.match(/\bC\[at( \+ [123]u)?\] =/g)?.length).toBe(64);
    const epilogue = { declarations: '', bindingCount: 0, functions: 'fn matmul_store(batch: u32, row: u32, col: u32, value: f32) {}', perElement: false, entry: '' };
    const fused = vec4MatmulKernel({ ...params, epilogue }).code;
    expect(fused.match(/matmul_store\(batchIndex,/g)?.length).toBe(64);
  });

  it('register blocks whose last rows lie past M, with the store loop (M = 70 and 68, Aᵀ, Bᵀ)', async () => {
    // Blocks of 8 to 32 rows (chooseVec4Blocking, by the adapter's workgroups): the last block's
    // rows past M are computed from clamped loads and not stored, in the loop's last iterations.
    for (const [m, ta, tb] of [[70, false, false], [70, false, true], [68, true, false], [68, true, true]] as const) {
      const a = operand([m, 64], ta, hashSeed('a', m, ta, tb));
      const b = operand([64, 36], tb, hashSeed('b', m, ta, tb));
      await expectProductMatches(a, b, `${m}×64×36${ta ? ' Aᵀ' : ''}${tb ? ' Bᵀ' : ''}`);
    }
  });

  it('register blocks shrink only below the adapter\'s minimum of workgroups: two per core on a software adapter', () => {
    // 128×128: 32-row blocks of 4 column groups of 8 lanes make 4 workgroups.
    expect(chooseVec4Blocking(128, 128, 1, 4)).toEqual({ rows: 32, columnGroups: 4, lanes: 8 });
    expect(chooseVec4Blocking(128, 128, 1, MIN_WORKGROUPS)).toEqual({ rows: 8, columnGroups: 4, lanes: 8 });
    expect(chooseVec4Blocking(128, 128, 1)).toEqual(chooseVec4Blocking(128, 128, 1, MIN_WORKGROUPS));
    // 1024 rows already make 32 workgroups of 32 rows.
    expect(chooseVec4Blocking(1024, 128, 1, MIN_WORKGROUPS)).toEqual({ rows: 32, columnGroups: 4, lanes: 8 });
    // The documented minimums, as numbers: 16 on a hardware adapter, two per core on a software one.
    expect(MIN_WORKGROUPS).toBe(16);
    expect(softwareAdapterMinWorkgroups(2)).toBe(4);
    expect(softwareAdapterMinWorkgroups(8)).toBe(16);
    expect(gpu.backend.vec4MinWorkgroups).toBe(gpu.backend.softwareAdapter ? 2 * hardwareThreads() : 16);
  });
});

// Staged panels past K, the tiled kernel's per-element epilogue on skinny tiles, the register
// blocks' shrinking rule, and the shared WGSL helpers' checks. A tile past K is zero-filled in *both*
// staged panels: a panel that read past K would multiply the other panel's zeros by whatever lies
// there (the next row or batch entry), which is invisible for finite values (x·0 = 0) but not for an
// infinity (∞·0 = NaN). So these products put an infinity just past K and expect the CPU's values
// exactly: operands are small integers, every partial sum is an integer below 2^24, so float32 sums
// them exactly in any order, and the infinities (one infinite term per sum) give the same ±∞ or NaN
// on both sides.

/** The product on the GPU equals the CPU's exactly, element by element (NaN where it has NaN, ±∞ where it has ±∞). */
async function expectSameAsCpu(aData: number[], aShape: number[], bData: number[], bShape: number[], what: string): Promise<Float32Array> {
  const want = matmul(tensor(Float32Array.from(aData), { shape: aShape }), tensor(Float32Array.from(bData), { shape: bShape })).dataSync();
  const got = await matmul(tensor(Float32Array.from(aData), { shape: aShape, device: gpu.device }), tensor(Float32Array.from(bData), { shape: bShape, device: gpu.device })).data();
  expect(firstMismatch(want, got, exact), what).toBeNull();
  return Float32Array.from(got);
}

/** Integers 1…3 (nonzero, so an infinite factor gives ±∞, never 0·∞, in the CPU's sums too) or −2…2. */
const ints = (n: number, seed: number, nonzero: boolean) => Array.from({ length: n }, (_, i) => (nonzero ? 1 + ((i * 7 + seed) % 3) : ((i * 5 + seed) % 5) - 2));

describe('staged panels are zero past K, whatever lies there', () => {
  it('skinny tiles (M ≤ 4, A staged as scalars): an infinity in the next row of A leaves row 0 finite', async () => {
    // A [2, 5]: K = 5 (not a multiple of 4: the tiled kernel; M = 2: 4×64 tiles, K panels of 32),
    // row 1 starts with ∞, which is A's element 5: just past row 0's K.
    const a = [1, 2, -1, 0, 3, Infinity, 1, 1, 1, 1];
    const b = ints(5 * 3, 1, false);
    const got = await expectSameAsCpu(a, [2, 5], b, [5, 3], 'skinny [2,5]·[5,3]');
    expect([...got.slice(0, 3)].every(Number.isFinite)).toBe(true);
  });

  it('32×32 tiles (A and B staged as vec4 groups), batched: infinities in batch entry 1 leave entry 0 finite', async () => {
    // A [2, 8, 5], B [2, 5, 6]: K = 5 (the tiled kernel) < 16 (the panel depth), so the panels of
    // batch entry 0 span elements of entry 1 past K: A's row 7 is followed by entry 1's row 0, B's
    // row 4 by entry 1's rows. Entry 1 has A[1,0,0] = B[1,0,0] = ∞.
    const a = ints(2 * 8 * 5, 2, true);
    const b = ints(2 * 5 * 6, 3, false);
    a[40] = Infinity;
    b[30] = Infinity;
    const got = await expectSameAsCpu(a, [2, 8, 5], b, [2, 5, 6], 'batched [2,8,5]·[2,5,6]');
    expect([...got.slice(0, 48)].every(Number.isFinite)).toBe(true);
  });
});

describe('a fused epilogue of the tiled kernel', () => {
  it('runs once on every element of a skinny tile (one row per thread), as its contract says', async () => {
    // The compiler takes products with M ≤ 4 to dot-product kernels, so this template's skinny
    // tiles with a per-element epilogue are launched here by hand: C = 2·A·B + 1 through
    // matmul_store and matmul_epilogue, A [3, 5] and B [5, 6] small integers (exact).
    const [m, k, n] = [3, 5, 6];
    const aData = Float32Array.from(ints(m * k, 4, false));
    const bData = Float32Array.from(ints(k * n, 5, false));
    const want = Array.from(matmul(tensor(aData, { shape: [m, k] }), tensor(bData, { shape: [k, n] })).mul(2).add(1).dataSync());
    const [a, b, c] = [tensor(aData, { shape: [m, k], device: gpu.device }), tensor(bData, { shape: [k, n], device: gpu.device }), tensor(new Float32Array(m * n), { shape: [m, n], device: gpu.device })];
    const bufferOf = (t: Tensor) => (t._live('test') as { storage: { buffer: GPUBuffer } }).storage.buffer;
    const epilogue = {
      declarations: '@group(0) @binding(2) var<storage, read_write> C: array<f32>;\n', bindingCount: 1, perElement: true, entry: '',
      functions: `fn matmul_store(batch: u32, row: u32, col: u32, value: f32) { C[row * ${n}u + col] = value; }
fn matmul_epilogue(batch: u32, row: u32, col: u32) { let i = row * ${n}u + col; C[i] = C[i] * 2.0 + 1.0; }`,
    };
    const spec = matmulKernel({
      a: { shape: [m, k], strides: [k, 1], offset: 0 }, b: { shape: [k, n], strides: [n, 1], offset: 0 }, outShape: [m, n],
      tiling: SKINNY_TILING, batchStart: 0, batchCount: 1, epilogue,
    });
    gpu.runtime.dispatch(spec, [bufferOf(a), bufferOf(b), bufferOf(c)]);
    expect(Array.from(await c.data())).toEqual(want);
  });
});

describe('register blocks', () => {
  it('keep shrinking until the workgroups reach the minimum or the blocks are 8 rows of one column group', () => {
    // M = 20, N = 256 (64 vec4 groups): 20-row blocks halve to 10, then to 8 (never below), and
    // 8-row blocks (3 of them) of 4, 2, then 1 column groups make 2·3, 4·3, then 8·3 = 24 ≥ 16.
    expect(chooseVec4Blocking(20, 256, 1, 16)).toEqual({ rows: 8, columnGroups: 1, lanes: 8 });
  });
});

describe('shared WGSL helpers (common.ts, indexErrors.ts)', () => {
  it('a uniform word refuses negative, fractional and too large values by name', () => {
    const u = new UniformBlock();
    expect(u.u32(0xffffffff)).toBe('U.w[0].x');
    for (const bad of [-1, 1.5, 2 ** 32]) expect(() => u.u32(bad)).toThrow(`webgpu: uniform value ${bad} does not fit an unsigned 32-bit word`);
    expect([...u.data()]).toEqual([0xffffffff, 0, 0, 0]);
    // declare() always declares one vec4 at least, so data() fills one even with no words.
    expect([...new UniformBlock().data()]).toEqual([0, 0, 0, 0]);
  });

  it('grid1d folds up to 65,535² workgroups and refuses one more, naming the count', () => {
    expect(grid1d(65535)).toEqual([65535, 1, 1]);
    expect(grid1d(65536)).toEqual([65535, 2, 1]);
    expect(grid1d(65535 * 65535)).toEqual([65535, 65535, 1]);
    expect(() => grid1d(65535 * 65535 + 1)).toThrow(`webgpu: ${65535 * 65535 + 1} workgroups exceed the dispatch limit`);
  });

  it('an index-error record with an unknown primitive code names the code', () => {
    expect(indexErrorOf(new Uint32Array([0, 1, 7, 0, 5]))).toBeNull();
    expect(indexErrorOf(new Uint32Array([1, 9, 7, 0, 5]))?.message).toBe('webgpu: the index-error record holds an unknown primitive code 9 (a corrupted record)');
    // Claimed is word 0 alone: an axis of extent 0 (every index out of range) is still an error.
    expect(indexErrorOf(new Uint32Array([1, 1, 0, 0, 0]))?.message).toBe('gather: index 0 is out of range for axis 0 of extent 0 (expected 0 <= index < 0)');
    expect(indexErrorOf(new Uint32Array([1, 1, 0xfffffffd, 1, 2]))?.message).toBe('gather: index -3 is out of range for axis 1 of extent 2 (expected 0 <= index < 2)');
  });
});
