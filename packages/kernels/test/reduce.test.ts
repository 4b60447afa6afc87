// Reductions over short and long axes, all axes and middle axes, against the CPU reference.
// Sum tolerance: the kernel's longest chain of float32 additions (`reductionPlan(...).depth`)
// bounds the rounding error by depth·2^-24·Σ|x| (recursive summation, Higham §4.2); the CPU
// accumulates in float64 and rounds once (≤ 1/2 ULP), so depth·2^-24·Σ|x| + 1 ULP.
// That worst case grows with the extent (≈ 11 absolute for [1000,1001], more than most single
// elements), so the long extents are also summed over integers in [−8, 8], compared exactly:
// every partial sum of such a slice is an integer of size ≤ 8·extent < 2^24, which float32 holds
// exactly, so every addition is exact whatever the order, and one dropped or repeated element fails.
// Max is exact, and NaN anywhere in a reduced slice gives NaN, as on the CPU.

import { beforeAll, describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import { type Tensor, sizeOf, tensor } from '@scorch/tensor';
import { type WebGPUHandle, reductionPlan } from '@scorch/kernels';
import { type ElementTolerance, FLUSH_FLOOR, RUN_SEED, exact, firstMismatch, gpuDevice, hashSeed, hostRandom, ulp, values } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});

/** Integers in [−8, 8] as float32: sums of < 2^21 of them are exact in any order (see the header). */
const SMALL_INT = 'smallInt';

function pair(shape: number[], kind: 'normal' | 'int' | typeof SMALL_INT, seed: number): { cpu: Tensor; gpu: Tensor } {
  const n = sizeOf(shape);
  const rnd = hostRandom(seed);
  const data = kind === SMALL_INT ? Float32Array.from({ length: n }, () => Math.floor(rnd() * 17) - 8) : Float32Array.from(values(kind, n, rnd));
  return { cpu: tensor(data, { shape }), gpu: tensor(data, { shape, device: gpu.device }) };
}

/**
 * The GPU's float32 sum against the CPU's: within the rounding bound on normal data, exactly on
 * small integers (`SMALL_INT`, for long extents). Returns the inputs and both sums (host arrays).
 */
async function checkSum(shape: number[], axes: number[], view?: (t: Tensor) => Tensor, kind: 'normal' | typeof SMALL_INT = 'normal'): Promise<{ x: Float32Array; reference: ArrayLike<number>; actual: ArrayLike<number> }> {
  const p = pair(shape, kind, hashSeed('sum', kind, shape.join(), axes.join()));
  const x = view ? { cpu: view(p.cpu), gpu: view(p.gpu) } : p;
  const reference = x.cpu.sum(axes);
  const extent = sizeOf(axes.map((i) => x.cpu.shape[i]!));
  if (kind === SMALL_INT) expect(8 * extent).toBeLessThan(2 ** 24);
  const { depth } = reductionPlan(reference.size, extent);
  const absSum = kind === SMALL_INT ? null : x.cpu.abs().sum(axes).dataSync();
  const tolerance: ElementTolerance = absSum ? (i, r) => depth * 2 ** -24 * absSum[i]! + ulp(r) + FLUSH_FLOOR : exact;
  const actual = await x.gpu.sum(axes).data();
  const mismatch = firstMismatch(reference.dataSync(), actual, tolerance);
  expect(mismatch, `sum of [${x.cpu.shape}] (${kind}) over ${axes} (seed ${RUN_SEED})`).toBeNull();
  return { x: x.cpu.dataSync() as Float32Array, reference: reference.dataSync(), actual };
}

async function checkMax(shape: number[], axes: number[]): Promise<void> {
  const x = pair(shape, 'normal', hashSeed('max', shape.join(), axes.join()));
  const mismatch = firstMismatch(x.cpu.max(axes).dataSync(), await x.gpu.max(axes).data(), () => 0);
  expect(mismatch, `max of [${shape}] over ${axes} (seed ${RUN_SEED})`).toBeNull();
}

describe('sum', () => {
  it('short axes: [1023,3] over 1, [3,7,5] over 1', async () => {
    await checkSum([1023, 3], [1]);
    await checkSum([3, 7, 5], [1]);
  });
  it('long axes: [5,100003] over 1 and [100003,3] over 0 (cooperative, chunked)', async () => {
    await checkSum([5, 100003], [1]);
    await checkSum([100003, 3], [0]);
  });
  it('all axes: [1000,1001] and [7,33,257]', async () => {
    await checkSum([1000, 1001], [0, 1]);
    await checkSum([7, 33, 257], [0, 1, 2]);
  });
  it('long extents, exactly: integers in [−8, 8] over [1000,1001] (all axes), [5,100003] over 1, [100003,3] over 0', async () => {
    const all = await checkSum([1000, 1001], [0, 1], undefined, SMALL_INT);
    await checkSum([5, 100003], [1], undefined, SMALL_INT);
    await checkSum([100003, 3], [0], undefined, SMALL_INT);
    // Meta-check: the comparison rejects the sum with one (nonzero) element missing, which the
    // rounding bound on normal data (≈ 11 for this shape) lets through for any element under ~11.
    let last = all.x.length - 1;
    while (all.x[last] === 0) last--;
    const missing = [Math.fround(all.actual[0]! - all.x[last]!)];
    expect(firstMismatch(all.reference, missing, exact), `sum of [1000,1001] without element ${last}`).not.toBeNull();
  });
  it('middle axes: [7,300,11] over 1, [4,33,65,3] over 1 and 2', async () => {
    await checkSum([7, 300, 11], [1]);
    await checkSum([4, 33, 65, 3], [1, 2]);
  });
  it('over a permuted and a sliced view', async () => {
    await checkSum([300, 7], [1], (t) => t.transpose());
    await checkSum([9, 260], [1], (t) => t.slice([1, 2], [7, 257]));
  });
  it('int32 sums are exact', async () => {
    const data = Int32Array.from(values('int', 3 * 40001, hostRandom(hashSeed('int'))));
    const cpu = tensor(data, { shape: [3, 40001] });
    const g = tensor(data, { shape: [3, 40001], device: gpu.device });
    expect(await g.sum(1).toArray()).toEqual(await cpu.sum(1).toArray());
    expect(await g.sum().toArray()).toEqual(await cpu.sum().toArray());
  });

  it('int32 sums that overflow wrap modulo 2³² alike on both backends, however long', async () => {
    // 2²² + 1 copies of −2³¹, then 1000 ones: −2³¹ + 1000 modulo 2³². WGSL's i32 wraps at every
    // step; the CPU accumulated in doubles, which past 2⁵³ rounded the ones away (−2³¹).
    const big = 2 ** 22 + 1;
    const data = new Int32Array(big + 1000).fill(1, big).fill(-(2 ** 31), 0, big);
    const cpu = tensor(data);
    const g = tensor(data, { device: gpu.device });
    expect(await g.sum().item()).toBe(-(2 ** 31) + 1000);
    expect(await cpu.sum().item()).toBe(await g.sum().item());
  });
  it('every element of an extent longer than a thread may walk counts (a broadcast view, eager and fused under jit)', async () => {
    // 32 outputs (too many to be chunked for speed) of 128·65,530 elements each: one thread per
    // 128 would loop 65,530 times, and llvmpipe silently ends an invocation after 65,535 loop
    // iterations in all (the tree's 7 included), which dropped most of each sum.
    const extent = 128 * 65530;
    const rows = tensor(Int32Array.from({ length: 32 }, (_, i) => i + 1), { shape: [32, 1], dtype: 'int32', device: gpu.device });
    const expected = Array.from({ length: 32 }, (_, i) => (i + 1) * extent);
    expect(await rows.expand([32, extent]).sum(1).toArray()).toEqual(expected);
    expect(await rows.cast('float32').expand([32, extent]).sum(1).toArray()).toEqual(expected);
    const fused = jit((x: Tensor) => x.mul(2).expand([32, extent]).sum(1));
    expect(await fused(rows).toArray()).toEqual(expected.map((v) => 2 * v));
    expect(reductionPlan(32, extent).passes.length).toBe(2);
  });
  it('uses a tree: the rounding-error depth of a 10^6-element sum is far below 10^6', () => {
    expect(reductionPlan(1, 1_000_000).depth).toBeLessThan(100);
  });
});

describe('max', () => {
  it('short, long, all and middle axes', async () => {
    await checkMax([1023, 3], [1]);
    await checkMax([3, 100003], [1]);
    await checkMax([100003, 2], [0]);
    await checkMax([300, 301], [0, 1]);
    await checkMax([5, 257, 7], [1]);
  });
  it('propagates NaN from any position and handles ±inf', async () => {
    const n = 5000;
    const data = new Float32Array(4 * n).map((_, i) => Math.sin(i));
    data[17] = NaN; // row 0, early
    data[n + n - 1] = NaN; // row 1, last
    data[2 * n + 3] = Infinity; // row 2
    for (let i = 3 * n; i < 4 * n; i++) data[i] = -Infinity; // row 3: all −inf
    const g = tensor(data, { shape: [4, n], device: gpu.device });
    expect(await g.max(1).toArray()).toEqual([NaN, NaN, Infinity, -Infinity]);
    const c = tensor(data, { shape: [4, n] });
    expect(await c.max(1).toArray()).toEqual([NaN, NaN, Infinity, -Infinity]);
    expect(Number.isNaN(await g.max().item())).toBe(true);
  });
  it('int32 max', async () => {
    const g = tensor(Int32Array.from([-5, -2147483648, 7, 3, -1, 2147483647]), { shape: [2, 3], device: gpu.device });
    expect(await g.max(1).toArray()).toEqual([7, 2147483647]);
  });
});
