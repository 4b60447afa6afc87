// The toy data sets' float32 samples on every test device (the CPU and WebGPU): their moments
// against the closed forms of data.test.ts (which proves them in float64 on the CPU), and the
// documented agreement of the two devices for one key (docs/conventions.md, "Random keys": the
// same Philox words on both, uniforms bit-identical, normals to float32 rounding of Box–Muller).
//
// Moments: each raw moment E[x], E[y], E[x²], E[y²], E[xy] is a mean of n i.i.d. terms, with
// plug-in standard error sd/√n; tolerance 4 SE, a false alarm of 6e-5 per check (keys fixed).

import { describe, expect, it } from 'vitest';
import { type Tensor, randomKey } from '@scorch/tensor';
import { GaussianMixture, type ToyDataset, checkerboard, eightGaussians, rings, swissRoll, twoMoons, twoSpirals } from '../src/data.js';
import { hostValues, onEachDevice, openDevice } from './devices.js';
import { veSde, vpSde } from '../src/sde.js';
import { reverseSdeEulerMaruyama } from '../src/samplers.js';

const mixture = new GaussianMixture({
  weights: [0.5, 0.3, 0.2],
  means: [[1, 2], [-2, 0.5], [0.5, -3]],
  covariances: [[[1, 0.5], [0.5, 2]], 0.5, [[0.3, -0.1], [-0.1, 0.2]]],
});

/** Composite Simpson's rule with 20000 intervals (error ~1e-12 for these smooth integrands). */
function simpson(f: (t: number) => number, a: number, b: number, intervals = 20000): number {
  const h = (b - a) / intervals;
  let s = f(a) + f(b);
  for (let i = 1; i < intervals; i++) s += (i % 2 === 1 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3;
}

/** [E x, E y, E x², E y², E xy] of each set, as derived in data.test.ts. */
function knownMoments(): [ToyDataset, number[]][] {
  const mu = mixture.mean();
  const cov = mixture.covariance();
  const roll = (() => {
    const [a, b, scale] = [1.5 * Math.PI, 4.5 * Math.PI, 2 / (4.5 * Math.PI)];
    const E = (f: (t: number) => number) => simpson(f, a, b) / (b - a);
    return [scale * E((t) => t * Math.cos(t)), scale * E((t) => t * Math.sin(t)), scale ** 2 * E((t) => (t * Math.cos(t)) ** 2) + 0.01, scale ** 2 * E((t) => (t * Math.sin(t)) ** 2) + 0.01, scale ** 2 * E((t) => t * t * Math.cos(t) * Math.sin(t))];
  })();
  const spirals = (() => {
    const [top, c] = [3 * Math.PI, 1 / (1.5 * Math.PI)];
    const E = (f: (t: number) => number) => simpson((t) => ((2 * t) / top ** 2) * f(t), 0, top);
    return [0, 0, c * c * E((t) => (t * Math.cos(t)) ** 2) + 0.01, c * c * E((t) => (t * Math.sin(t)) ** 2) + 0.01, -c * c * E((t) => t * t * Math.cos(t) * Math.sin(t))];
  })();
  const ringSquare = (0.25 + 1 + 2.25 + 4) / 4;
  return [
    [mixture, [mu[0]!, mu[1]!, cov[0]![0]! + mu[0]! ** 2, cov[1]![1]! + mu[1]! ** 2, cov[0]![1]! + mu[0]! * mu[1]!]],
    [twoMoons(), [0, 0, 3 + 0.01, 4 * (9 / 16 - 1 / Math.PI) + 0.01, 4 * (1 / 8 - 1 / Math.PI)]],
    [swissRoll(), roll],
    [eightGaussians(), [0, 0, 2.0625, 2.0625, 0]],
    [checkerboard(), [0, 0, 4 / 3, 4 / 3, 0.25]],
    [rings(), [0, 0, ringSquare / 2 + 0.0025, ringSquare / 2 + 0.0025, 0]],
    [twoSpirals(), spirals],
  ];
}

const n = 20000;
const names = ['E x', 'E y', 'E x²', 'E y²', 'E xy'];

onEachDevice('toy data sets: float32 sample moments', (device) => {
  it('every set matches its known raw moments within 4 standard errors', async () => {
    for (const [set, known] of knownMoments()) {
      const x = set.sample(n, { key: randomKey(60), device });
      expect(x.dtype).toBe('float32');
      expect(x.device).toBe(device);
      const v = await hostValues(x);
      const terms = [(a: number) => a, (_: number, b: number) => b, (a: number) => a * a, (_: number, b: number) => b * b, (a: number, b: number) => a * b];
      terms.forEach((g, k) => {
        let s = 0;
        let s2 = 0;
        for (let i = 0; i < n; i++) {
          const q = g(v[2 * i]!, v[2 * i + 1]!);
          s += q;
          s2 += q * q;
        }
        const mean = s / n;
        const se = Math.sqrt(Math.max(s2 / n - mean * mean, 0) / n);
        expect(Math.abs(mean - known[k]!), `${set.name} ${names[k]}: ${mean} vs ${known[k]} (SE ${se})`).toBeLessThanOrEqual(4 * se);
      });
    }
  });
});

describe('toy data sets: one key, the same samples on the CPU and on WebGPU (float32)', () => {
  it('agree to float32 rounding of the Box–Muller and sampling arithmetic', async () => {
    await openDevice('webgpu');
    // Uniforms are bit-identical, so every discrete choice (component, moon, ring, square) is the
    // same. Normals differ by at most ~2e-6 of the Box–Muller radius (docs/conventions.md), which
    // for float32 uniforms (≥ 2⁻²⁴) is at most √(2·24·ln 2) = 5.8: 1.2e-5; scaled by at most
    // √λ_max ≈ 1.5 (the mixture) that is 1.8e-5. The maps applied (a 2 × 6 matmul, cos/sin within
    // 2 ULP, a few products) add a few float32 ulps of values below 10: 8·2⁻²⁴·10 = 4.8e-6.
    const tolerance = 1.8e-5 + 4.8e-6;
    for (const [set] of knownMoments()) {
      const cpu = await hostValues(set.sample(4000, { key: randomKey(61) }));
      const gpu = await hostValues(set.sample(4000, { key: randomKey(61), device: 'webgpu' }));
      const worst = Math.max(...cpu.map((c, i) => Math.abs(c - gpu[i]!)));
      expect(worst, set.name).toBeLessThanOrEqual(tolerance);
    }
  });
});

describe('metrics of samples on two devices', () => {
  it('name the metric and the devices (concat or sub said it, naming neither)', async () => {
    await openDevice('webgpu');
    const { mmd2, energyDistance, histogramKL, medianBandwidth } = await import('../src/metrics.js');
    const onCpu = eightGaussians().sample(8, { key: randomKey(1) });
    const onGpu = eightGaussians().sample(8, { key: randomKey(2), device: 'webgpu' });
    const message = (where: string) => new RegExp(`^${where}: samples are on different devices \\('cpu' and 'webgpu'\\); copy one to the other's device first`);
    await expect(mmd2(onCpu, onGpu)).rejects.toThrow(message('mmd2'));
    await expect(energyDistance(onCpu, onGpu)).rejects.toThrow(message('energyDistance'));
    await expect(medianBandwidth(onCpu, onGpu)).rejects.toThrow(message('medianBandwidth'));
    await expect(histogramKL(onCpu, onGpu, { xRange: [-3, 3], yRange: [-3, 3], bins: 4 })).rejects.toThrow(message('histogramKL'));
    onGpu.dispose();
  });

  it('a data set refuses float64 on WebGPU, and an unknown device, under its own name', async () => {
    await openDevice('webgpu');
    for (const [name, data] of [['GaussianMixture', eightGaussians()], ['twoMoons', twoMoons()]] as const) {
      expect(() => data.sample(4, { key: randomKey(3), dtype: 'float64', device: 'webgpu' })).toThrow(new RegExp(`^${name}\\.sample: device 'webgpu' does not support dtype float64 \\(it supports `));
      expect(() => data.sample(4, { key: randomKey(3), device: 'tpu' })).toThrow(new RegExp(`^${name}\\.sample: unknown device 'tpu'; registered devices: `));
    }
  });

  it('an SDE prior and a reverse-SDE sampler refuse float64 on WebGPU, and an unknown device, under their own names (randn named itself)', async () => {
    await openDevice('webgpu');
    expect(() => vpSde().priorSample([4, 2], { key: randomKey(3), dtype: 'float64', device: 'webgpu' })).toThrow(/^vpSde\.priorSample: device 'webgpu' does not support dtype float64 \(it supports /);
    expect(() => veSde().priorSample([4, 2], { key: randomKey(3), device: 'tpu' })).toThrow(/^veSde\.priorSample: unknown device 'tpu'; registered devices: /);
    const score = (x: Tensor) => x.neg();
    await expect(reverseSdeEulerMaruyama(score, vpSde(), { key: randomKey(3), shape: [4, 2], dtype: 'float64', device: 'webgpu' })).rejects.toThrow(
      /^reverseSdeEulerMaruyama: device 'webgpu' does not support dtype float64 \(it supports /,
    );
  });
});
