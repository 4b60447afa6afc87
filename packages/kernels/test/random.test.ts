// Random numbers on the GPU: Philox 4x32-10 in WGSL must compute exactly the CPU's stream
// (random.ts `fillRandom`), so uniforms are bit-identical for the same key, and normals (the
// same Box–Muller pairing) agree within float32 rounding.
//
// Normal tolerance, per element of a pair (z0, z1) = r(cos θ, sin θ), r = √(−2 log(1 − u1)):
// r carries log1p's ≤ 3 ULP (halved by the square root) and sqrt's ≤ 4.5 ULP (WGSL bound), so
// |Δr|/r ≤ 6.5·2^-23 < 8e-7; the angle 2π(u2 − ½) has |Δθ| ≤ π(2.8e-8 + 2^-24) < 2.8e-7 (π
// rounded to float32, one product), and sin/cos add ≤ 3 ULP ≤ 3.6e-7, so
// |Δz| ≤ 8e-7·|z| + 6.4e-7·r + 1 ULP(z) (the CPU's own rounding to float32 included).

import { beforeAll, describe, expect, it } from 'vitest';
import { foldIn, manualSeed, rademacher, rand, randn, randomKey, splitKey } from '@scorch/tensor';
import type { RandomKey, Tensor } from '@scorch/tensor';
import { jit } from '@scorch/autograd';
import type { WebGPUHandle } from '@scorch/kernels';
import { RUN_SEED, firstMismatch, gpuDevice, hashSeed, ulp } from './helpers.js';

let gpu: WebGPUHandle;
beforeAll(async () => {
  gpu = await gpuDevice();
});

const keys = (): RandomKey[] => [randomKey(0), randomKey(hashSeed('rng')), [0xffffffff, 0x80000001], ...splitKey(randomKey(RUN_SEED), 2)];

describe('uniform', () => {
  it('bit-identical to the CPU stream for the same key (sizes 1, 3, 7, 1023, 100003)', async () => {
    for (const key of keys()) {
      for (const n of [1, 3, 7, 1023, 100003]) {
        const cpu = rand([n], { key }).dataSync() as Float32Array;
        const g = (await rand([n], { key, device: gpu.device }).data()) as Float32Array;
        const cpuBits = new Uint32Array(cpu.buffer);
        const gpuBits = new Uint32Array(g.buffer);
        let first = -1;
        for (let i = 0; i < n && first < 0; i++) if (cpuBits[i] !== gpuBits[i]) first = i;
        expect(first, `key ${key}, n ${n}: first differing element ${first}`).toBe(-1);
      }
    }
  });

  it('bit-identical at size 0 and past 65535 workgroups (the launch folded into y), eager and under jit', async () => {
    // 65535 workgroups of 64 threads, 4 values each, cover 16,776,960 values; 5 more need a
    // second row of workgroups, whose block index is wid.x + wid.y·nwg.x.
    const key = randomKey(hashSeed('big'));
    expect((await rand([0], { key, device: gpu.device }).data()).length).toBe(0);
    const n = 65535 * 64 * 4 + 5;
    const cpu = new Uint32Array(rand([n], { key }).dataSync().buffer);
    const draw = jit((k: RandomKey) => rand([n], { key: k, device: gpu.device }));
    for (const [how, t] of [['eager', rand([n], { key, device: gpu.device })], ['jit', draw(key) as Tensor]] as const) {
      const g = new Uint32Array(((await t.data()) as Float32Array).buffer);
      let first = -1;
      for (let i = 0; i < n && first < 0; i++) if (cpu[i] !== g[i]) first = i;
      expect(first, `${how}, key ${key}: first differing element ${first}`).toBe(-1);
      t.dispose();
    }
  });

  it('bit-identical under jit at sizes whose last block of 4 is partial or alone in its workgroup', async () => {
    // 257 values are 65 blocks of 4, so 2 workgroups of 64: a dispatch that counted only whole
    // blocks (floor(257 / 4) = 64) launched one workgroup and left the last value unwritten.
    // The eager sizes above never ran under jit, whose launch is computed in its own lowering.
    const key = randomKey(hashSeed('jit sizes'));
    for (const n of [1, 7, 257, 1023]) {
      const cpu = new Uint32Array(rand([n], { key }).dataSync().buffer);
      const t = jit((k: RandomKey) => rand([n], { key: k, device: gpu.device }))(key) as Tensor;
      const g = new Uint32Array(((await t.data()) as Float32Array).buffer);
      t.dispose();
      let first = -1;
      for (let i = 0; i < n && first < 0; i++) if (cpu[i] !== g[i]) first = i;
      expect(first, `n ${n}: first differing element ${first}`).toBe(-1);
    }
  });

  it('shapes do not change the stream: [7,13] equals the first 91 values of [91]', async () => {
    const key = randomKey(hashSeed('shape'));
    const flat = await rand([91], { key, device: gpu.device }).data();
    const shaped = await rand([7, 13], { key, device: gpu.device }).data();
    expect([...shaped]).toEqual([...flat]);
  });
});

describe('errors', () => {
  it('a float64 draw on WebGPU is refused by the function called, before a default-stream key is used', () => {
    // The device check ran in the primitive, so the message named 'random', a function the caller
    // never wrote; and a keyless draw had already advanced the default stream.
    for (const [name, draw] of [['rand', rand], ['randn', randn], ['rademacher', rademacher]] as const) {
      expect(() => draw([3], { key: randomKey(1), dtype: 'float64', device: gpu.device })).toThrow(
        `${name}: device 'webgpu' does not support dtype float64 (it supports float32, int32, bool)`,
      );
    }
    manualSeed(5);
    expect(() => rand([3], { dtype: 'float64', device: gpu.device })).toThrow(/^rand: device/);
    expect(Array.from(rand([3]).dataSync())).toEqual(Array.from(rand([3], { key: foldIn(randomKey(5), 0) }).dataSync()));
  });
});

describe('normal', () => {
  it('matches the CPU within float32 rounding of log, sqrt, cos and sin', async () => {
    for (const key of keys()) {
      for (const n of [1, 2, 7, 4097]) {
        const cpu = randn([n], { key }).dataSync();
        const g = await randn([n], { key, device: gpu.device }).data();
        // r of the pair each element belongs to, from the reference; the stream is the same for
        // any length, so an odd tail element's partner is element n of a one-longer draw.
        const pairs = randn([n + (n % 2)], { key }).dataSync();
        const radius = (i: number) => Math.hypot(pairs[i - (i % 2)]!, pairs[i - (i % 2) + 1]!);
        const mismatch = firstMismatch(cpu, g, (i, z) => 8e-7 * Math.abs(z) + 6.4e-7 * radius(i) + ulp(z));
        expect(mismatch, `key ${key}, n ${n} (seed ${RUN_SEED})`).toBeNull();
      }
    }
  });

  it('agrees at the ends of the uniform grid: u₁ = 0 (r = 0) and u₁ = 1 − 2^-24 (the largest r)', async () => {
    // Under randomKey(20524) element 1552 is the uniform 0, under randomKey(25665) element 126 is
    // 1 − 2^-24 (packages/tensor/test/random.test.ts); each is the u₁ of its Box–Muller pair.
    for (const [seed, i] of [[20524, 1552], [25665, 126]] as const) {
      const key = randomKey(seed);
      const u = (await rand([i + 1], { key, device: gpu.device }).data())[i]!;
      expect(u).toBe(seed === 20524 ? 0 : 1 - 2 ** -24);
      const cpu = randn([i + 2], { key }).dataSync();
      const g = await randn([i + 2], { key, device: gpu.device }).data();
      const r = Math.hypot(cpu[i]!, cpu[i + 1]!);
      for (const j of [i, i + 1]) {
        expect(Number.isFinite(g[j]!)).toBe(true);
        expect(Math.abs(g[j]! - cpu[j]!), `seed ${seed}, element ${j}`).toBeLessThanOrEqual(8e-7 * Math.abs(cpu[j]!) + 6.4e-7 * r + ulp(cpu[j]!));
      }
    }
  });

  it('has the moments of a standard normal (10^6 draws)', async () => {
    const z = randn([1_000_000], { key: randomKey(hashSeed('moments')), device: gpu.device });
    const mean = await z.mean().item();
    const variance = await z.square().mean().item();
    // Standard errors: 1/√n = 1e-3 for the mean, √2/√n ≈ 1.4e-3 for the second moment; 5σ.
    expect(Math.abs(mean)).toBeLessThan(5e-3);
    expect(Math.abs(variance - 1)).toBeLessThan(7.1e-3);
  });
});
