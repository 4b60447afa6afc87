// The registry of data sets, objectives and samplers that the CLI and the playground share: every
// name resolves, each distinct thing has one name, every objective builds a model and a finite
// loss from its own description, and the settings are checked like every other options object.

import { describe, expect, it } from 'vitest';
import { type RandomKey, full, memory, randn, randomKey, splitKey, tensor, tidy } from '@scorch/tensor';
import {
  DATASET_NAMES, DEFAULT_TRAINING_STEPS, KNOWN_HARD_PAIRS, type NoiseSpec, OBJECTIVES, OBJECTIVE_NAMES, SAMPLERS_FOR, SAMPLER_NAMES, buildModel, cleanScore,
  cleanestCondition, datasetEntry, defaultSigmaMax, implicitScoreMatchingLoss, isDatasetName, isObjectiveName, knownHardReason, makeObjective, modelSpecFor, noiseFor,
  describeNoise, sdeOf, sdeScoreLoss, slicedScoreMatchingLoss,
} from '../src/index.js';
import { unknownOption } from './options.js';

describe('data sets by name', () => {
  it('every name makes its data set, and the known mixtures carry their exact law', () => {
    for (const name of DATASET_NAMES) {
      const entry = datasetEntry(name);
      expect(entry.name).toBe(name);
      const x = entry.dataset.sample(5, { key: randomKey(1) });
      expect(x.shape, name).toEqual([5, 2]);
      expect(Array.from(x.dataSync()).every(Number.isFinite), name).toBe(true);
      expect(entry.localStd, name).toBeGreaterThan(0);
      expect(entry.label.length, name).toBeGreaterThan(0);
    }
    // Two different mixtures, two names: Song & Ermon's two modes, and the tilted three.
    expect(datasetEntry('mixture').mixture!.weights).toEqual([0.2, 0.8]);
    expect(datasetEntry('mixture3').mixture!.weights).toEqual([0.5, 0.3, 0.2]);
    expect(datasetEntry('8gaussians').mixture!.components).toBe(8);
    expect(datasetEntry('moons').mixture).toBeUndefined();
  });

  it('one spelling per name: the others are refused with the right one suggested', () => {
    expect(() => datasetEntry('swissRoll' as never)).toThrow(/^datasetEntry: unknown data set "swissRoll" \(did you mean 'swissroll'\?\); expected one of 'mixture', 'mixture3', 'moons', 'swissroll', '8gaussians', 'checkerboard', 'rings', 'spirals'$/);
    expect(isDatasetName('swissroll')).toBe(true);
    expect(isDatasetName('eightGaussians')).toBe(false);
    expect(isObjectiveName('ssm-vr-clean')).toBe(true);
    expect(isObjectiveName('ssmvr')).toBe(false);
  });
});

describe('objectives by name', () => {
  const entry = datasetEntry('mixture');
  const points = entry.dataset.sample(50, { key: randomKey(2) }).dataSync();
  const kdeData = entry.dataset.sample(20, { key: randomKey(3) });

  it.each(OBJECTIVE_NAMES)('%s: its noise, model and loss fit together, and its samplers exist', (name) => {
    const { family } = OBJECTIVES[name];
    const noise = noiseFor(name, { dataPoints: points, kdeBandwidth: [0.3, 0.3], kdePoints: 20 });
    expect(noise.kind).toBe(family);
    const spec = modelSpecFor(name, [8]);
    expect(spec.conditioning).toBe(family === 'levels' ? 'sigma' : family === 'sde' ? 'time' : 'none');
    const [modelKey, lossKey] = splitKey(randomKey(4), 2) as [RandomKey, RandomKey];
    const model = buildModel(spec, noise, modelKey);
    const loss = makeObjective({ objective: name, noise, model, dataset: entry.dataset, batch: 8, kdeData })(model.params, lossKey);
    expect(loss.shape).toEqual([]);
    expect(Number.isFinite(loss.dataSync()[0])).toBe(true);
    // The model evaluated where it is plotted and sampled: at its cleanest noise level, if any.
    expect(cleanestCondition(noise) === undefined).toBe(spec.conditioning === 'none');
    expect(cleanScore(model, noise)(kdeData).shape).toEqual([20, 2]);
    expect(SAMPLERS_FOR[family].length).toBeGreaterThan(0);
    for (const s of SAMPLERS_FOR[family]) expect(SAMPLER_NAMES).toContain(s);
  });

  it('reads the noise settings like any options object, and says what a default needs', () => {
    const valid = ['levels', 'sigmaMin', 'sigmaMax', 'sigma', 'dataPoints', 'kdeBandwidth', 'kdePoints'];
    expect(() => noiseFor('ncsn', { sigmaMax: 2, level: 5 } as never)).toThrow(unknownOption('noiseFor', 'level', 'levels', valid));
    expect(() => noiseFor('ncsn', { levels: 0, sigmaMax: 2 })).toThrow(/^noiseFor: levels must be an integer >= 1, got 0$/);
    expect(() => noiseFor('ncsn')).toThrow(/^noiseFor: 'ncsn' needs sigmaMax, or dataPoints \(at least two points\) to take it from$/);
    expect(() => noiseFor('esm-kde', { dataPoints: points })).toThrow(/^noiseFor: 'esm-kde' needs kdeBandwidth and kdePoints/);
    const levels = noiseFor('ncsn', { sigmaMax: 2, levels: 3 });
    if (levels.kind !== 'levels') throw new Error('expected noise levels');
    expect([levels.sigmas[0], levels.sigmas[2]]).toEqual([2, 0.01]);
    expect(levels.sigmas[1]).toBeCloseTo(Math.sqrt(2 * 0.01), 15); // geometric: the middle one is the geometric mean
    expect(noiseFor('dsm')).toEqual({ kind: 'single', sigma: 0.1 });
    const model = buildModel(modelSpecFor('dsm', [4]), { kind: 'single', sigma: 0.1 }, randomKey(5));
    expect(() => makeObjective({ objective: 'ncsn', noise: { kind: 'single', sigma: 0.1 }, model, dataset: entry.dataset, batch: 4 })).toThrow(/^makeObjective: objective 'ncsn' trains under 'levels' noise, but the noise spec is 'single'$/);
    expect(() => makeObjective({ objective: 'dsm', noise: { kind: 'single', sigma: 0.1 }, model, dataset: entry.dataset, batchSize: 4 } as never)).toThrow(
      unknownOption('makeObjective', 'batchSize', 'batch', ['objective', 'noise', 'model', 'dataset', 'batch', 'kdeData']),
    );
  });

  it("refuses a VE σ range or a KDE bandwidth it could not build, as it does 'ncsn''s", () => {
    // Both specs were returned, and failed only later: VE in veSde (from sdeOf, buildModel or
    // cleanestCondition), the KDE in makeObjective, after describeNoise printed "bandwidth " and nothing.
    expect(() => noiseFor('ve', { sigmaMax: 0.005 })).toThrow(/^noiseFor: 've' needs sigmaMax > sigmaMin, got sigmaMax 0\.005 and sigmaMin 0\.01$/);
    expect(() => noiseFor('ve', { sigmaMax: 0.5, sigmaMin: 0.5 })).toThrow(/^noiseFor: 've' needs sigmaMax > sigmaMin, got sigmaMax 0\.5 and sigmaMin 0\.5$/);
    expect(() => noiseFor('ve', { dataPoints: [0, 0, 0.004, 0.003] })).toThrow(/^noiseFor: 've' needs sigmaMax > sigmaMin, got sigmaMax 0\.005 \(from dataPoints\) and sigmaMin 0\.01$/);
    expect(() => noiseFor('ncsn', { sigmaMax: 0.005 })).toThrow(/need sigmaMax > sigmaMin/);
    expect(noiseFor('ve', { sigmaMax: 2 })).toEqual({ kind: 'sde', sde: 've', sigmaMin: 0.01, sigmaMax: 2 });
    expect(() => noiseFor('esm-kde', { kdeBandwidth: [], kdePoints: 20 })).toThrow(/^noiseFor: kdeBandwidth must hold 2 numbers \(one per dimension\), got 0$/);
    expect(() => noiseFor('esm-kde', { kdeBandwidth: [0.2, 0.2, 0.2], kdePoints: 20 })).toThrow(/^noiseFor: kdeBandwidth must hold 2 numbers \(one per dimension\), got 3$/);
  });

  it('an objective holds no tensors: made in a tidy and dropped it leaks none, and it still works', () => {
    // The 'levels' objectives kept a σ table that nothing could free (even 'ncsn', which never read
    // it), while the KDE target's tensors were not kept at all, so a KDE objective made inside a
    // tidy failed on its first call with "was disposed".
    const levels = noiseFor('ncsn', { sigmaMax: 2, levels: 3 });
    const model = buildModel(modelSpecFor('ncsn', [4]), levels, randomKey(8));
    const before = memory().tensors;
    for (let i = 0; i < 10; i++) {
      for (const objective of ['ncsn', 'ssm-vr'] as const) tidy(() => { makeObjective({ objective, noise: levels, model, dataset: entry.dataset, batch: 4 }); });
    }
    expect(memory().tensors).toBe(before);
    const kde = noiseFor('esm-kde', { kdeBandwidth: [0.3, 0.3], kdePoints: 20 });
    const kdeModel = buildModel(modelSpecFor('esm-kde', [4]), kde, randomKey(9));
    const inTidy = tidy(() => makeObjective({ objective: 'esm-kde', noise: kde, model: kdeModel, dataset: entry.dataset, batch: 4, kdeData }));
    const outside = makeObjective({ objective: 'esm-kde', noise: kde, model: kdeModel, dataset: entry.dataset, batch: 4, kdeData });
    const afterMaking = memory().tensors;
    const [a, b] = tidy(() => [inTidy, outside].map((loss) => loss(kdeModel.params, randomKey(10)).dataSync()[0]!));
    expect(Number.isFinite(a)).toBe(true);
    expect(a).toBe(b);
    // A step leaves nothing behind either, once its result is freed.
    expect(memory().tensors).toBe(afterMaking);
    const ssm = tidy(() => makeObjective({ objective: 'ssm-vr', noise: levels, model, dataset: entry.dataset, batch: 4 }));
    expect(Number.isFinite(tidy(() => ssm(model.params, randomKey(11)).dataSync()[0]!))).toBe(true);
    expect(memory().tensors).toBe(afterMaking);
  });
});

describe('defaults of the objectives', () => {
  const entry = datasetEntry('moons');

  it('trains NCSN for 3000 steps and every other objective for 1000', () => {
    // NCSN's DSM target z/σ is noisier than the sliced estimators' at the small levels the samples
    // end at: at 1000 steps two seeds in three left moons 13 s.e. (MMD²) from the data, at 3000
    // none was above 1 s.e. (scripts/sweepDefaults.mjs). The others were within 3 s.e. at 1000.
    expect(DEFAULT_TRAINING_STEPS).toBe(1000);
    for (const name of OBJECTIVE_NAMES) expect(OBJECTIVES[name].steps, name).toBe(name === 'ncsn' ? 3000 : 1000);
  });

  it('samples SDE models by Euler–Maruyama first, as Song et al. 2021 sample VP and sub-VP', () => {
    // score_sde's configs/vp and configs/subvp: predictor euler_maruyama, corrector none. PC's
    // r = 0.16 was tuned for VE on CIFAR-10; on the 2-D sets it left VE 13–370 s.e. (MMD²) from the
    // data where EM was within 3 s.e. — so EM is the default and PC is still offered.
    expect(SAMPLERS_FOR.sde).toEqual(['em', 'pc', 'ode', 'langevin']);
    expect(SAMPLERS_FOR.levels[0]).toBe('ald');
  });

  it('divides every noise-level model by σ (Song & Ermon 2020, technique 3)', () => {
    // The perturbed data's score grows as 1/σ once σ outgrows the data, whatever estimator fits it:
    // every noise-level objective and VE divide by σ; VP and sub-VP predict the noise (Ho et al.
    // 2020); one fixed σ (DSM), the KDE and the clean objectives leave the output as it is.
    const want: Record<string, 'none' | 'divideBySigma' | 'noisePrediction'> = {
      'ssm-vr': 'divideBySigma', ssm: 'divideBySigma', 'ssm-fd': 'divideBySigma', ism: 'divideBySigma', ncsn: 'divideBySigma',
      ve: 'divideBySigma', vp: 'noisePrediction', subvp: 'noisePrediction',
      dsm: 'none', 'esm-kde': 'none', 'ssm-vr-clean': 'none', 'ssm-clean': 'none', 'ism-clean': 'none',
    };
    // The table names every registered objective, and nothing else.
    expect(Object.keys(want).sort()).toEqual([...OBJECTIVE_NAMES].sort());
    for (const name of OBJECTIVE_NAMES) expect(modelSpecFor(name, [8]).outputScaling, name).toBe(want[name]);
  });

  it('names the known hard pairs once each, by registered names, with a reason', () => {
    const seen = new Set<string>();
    for (const group of KNOWN_HARD_PAIRS) {
      expect(group.reason.length).toBeGreaterThan(0);
      for (const data of group.data) {
        expect(DATASET_NAMES).toContain(data);
        for (const objective of group.objectives) {
          expect(OBJECTIVE_NAMES).toContain(objective);
          expect(seen.has(`${data}/${objective}`), `${data}/${objective}`).toBe(false);
          seen.add(`${data}/${objective}`);
          expect(knownHardReason(data, objective)).toBe(group.reason);
        }
      }
    }
    // The sweep's verdicts at the defaults (seed 0): plain Langevin on one noise scale misses the
    // mixture's mode weights; the same objectives on 8gaussians, DSM on the spirals, and every
    // noise-level and SDE objective everywhere come within 3 s.e. — except SSM-VR (either
    // derivative) on 8gaussians, at 3.3, and NCSN on the rings, at 4.8, both of whose models
    // come within 1.1 s.e. when sampled again.
    expect(knownHardReason('mixture', 'dsm')).toMatch(/Song & Ermon 2019, §3\.2/);
    expect(knownHardReason('rings', 'ssm-vr-clean')).toBeDefined();
    for (const objective of ['dsm', 'esm-kde', 'ssm-vr-clean', 'ssm-clean', 'ism-clean'] as const) expect(knownHardReason('8gaussians', objective), objective).toBeUndefined();
    expect(knownHardReason('spirals', 'dsm')).toBeUndefined();
    expect(knownHardReason('8gaussians', 'ssm-vr')).toMatch(/^at the threshold, by the draw: the run comes out 3\.3 s\.e\. away/);
    expect(knownHardReason('rings', 'ncsn')).toMatch(/^at the threshold, by the draw: the run comes out 4\.8 s\.e\. away/);
    expect(knownHardReason('moons', 'ncsn')).toBeUndefined();
    expect(knownHardReason('8gaussians', 'ssm-fd')).toBe(knownHardReason('8gaussians', 'ssm-vr'));
    expect(knownHardReason('8gaussians', 'ssm')).toBeUndefined();
    for (const data of DATASET_NAMES) {
      for (const objective of OBJECTIVE_NAMES) {
        const family = OBJECTIVES[objective].family;
        const borderline = (data === '8gaussians' && (objective === 'ssm-vr' || objective === 'ssm-fd')) || (data === 'rings' && objective === 'ncsn');
        if ((family === 'levels' || family === 'sde') && !borderline) expect(knownHardReason(data, objective), `${data}/${objective}`).toBeUndefined();
      }
    }
  });

  it.each(['ssm-vr', 'ssm', 'ism'] as const)('%s at noise levels weighs each example by λ(σ) = σ², as NCSN does', (name) => {
    // With a single level σ the objective is σ² times the estimator's mean over x + σz. The same
    // draws are rebuilt here from the step's key (split four ways: data, level, noise, loss).
    const sigma = 0.5;
    const batch = 16;
    const noise: NoiseSpec = { kind: 'levels', sigmas: [sigma] };
    const model = buildModel(modelSpecFor(name, [8]), noise, randomKey(6));
    const key = randomKey(7);
    const got = makeObjective({ objective: name, noise, model, dataset: entry.dataset, batch })(model.params, key).dataSync()[0]!;
    const [dataKey, , noiseKey, lossKey] = splitKey(key, 4) as RandomKey[];
    const x = entry.dataset.sample(batch, { key: dataKey! });
    const noisy = x.add(randn([batch, 2], { key: noiseKey! }).mul(sigma));
    const cond = full([batch], sigma);
    const score = model.bind(model.params);
    const per = name === 'ism'
      ? implicitScoreMatchingLoss(score, noisy, { cond, reduction: 'none' })
      : slicedScoreMatchingLoss(score, noisy, { key: lossKey!, cond, varianceReduced: name === 'ssm-vr', reduction: 'none' });
    const values = per.dataSync();
    let sum = 0;
    for (let i = 0; i < batch; i++) sum += values[i]!;
    const want = (sigma * sigma * sum) / batch;
    // Both sides sum the same 16 float32 terms: the registry in float32 (16 roundings of relative
    // 2⁻²⁴ on partial sums no larger than Σ|term|), the reference in float64. Bound: 32 ulps of Σ|term|.
    let magnitude = 0;
    for (let i = 0; i < batch; i++) magnitude += Math.abs(values[i]!);
    expect(Math.abs(got - want)).toBeLessThanOrEqual(32 * 2 ** -24 * sigma * sigma * magnitude / batch + 1e-30);
    // And it is not the unweighted mean: σ² = 0.25 moves it by a factor of four.
    expect(Math.abs(got - sum / batch)).toBeGreaterThan(0.5 * Math.abs(sum / batch));
  });
});

describe('defaultSigmaMax', () => {
  it('is the largest pairwise distance to 3 digits, and refuses points that give no scale', () => {
    expect(defaultSigmaMax([0, 0, 3, 4, 1, 1])).toBe(5);
    expect(defaultSigmaMax(new Float32Array([0, 0, 1, 1]))).toBe(1.41);
    // Each returned 0 (or NaN), a σ_max that noiseFor's grid then refused naming geometricSigmas,
    // or failed reading the length of null.
    expect(() => defaultSigmaMax([])).toThrow(/^defaultSigmaMax: points must hold at least two points as interleaved x, y \(an even length >= 4\), got length 0$/);
    expect(() => defaultSigmaMax([0, 0, 1])).toThrow(/^defaultSigmaMax: points must hold at least two points .*, got length 3$/);
    expect(() => defaultSigmaMax([1, 2, 1, 2])).toThrow(/^defaultSigmaMax: all 2 points coincide, so they give no scale; pass sigmaMax$/);
    expect(() => defaultSigmaMax([0, 0, NaN, 1])).toThrow(/^defaultSigmaMax: points\[2\] must be a finite number, got NaN$/);
    expect(() => defaultSigmaMax(null as never)).toThrow(/^defaultSigmaMax: points must be interleaved x, y numbers \(an array or typed array\), got null$/);
    expect(() => noiseFor('ncsn', { dataPoints: [1, 2, 1, 2] })).toThrow(/^defaultSigmaMax: all 2 points coincide/);
  });
});

describe('data sets: their scale', () => {
  it('localStd is the finest std of the law: the smallest component std of a mixture, the noise a noised set adds', () => {
    for (const name of DATASET_NAMES) {
      const entry = datasetEntry(name);
      if (entry.mixture) {
        // Smallest eigenvalue of each 2 × 2 covariance [[a, b], [b, c]]: (a + c)/2 − √(((a − c)/2)² + b²).
        const stds = entry.mixture.covariances.map((m) => {
          const [a, b, c] = [m[0]![0]!, m[0]![1]!, m[1]![1]!];
          return Math.sqrt((a + c) / 2 - Math.hypot((a - c) / 2, b));
        });
        // Stated to two digits (mixture3's tilted component: 0.2478 → 0.25).
        expect(entry.localStd, name).toBe(Number(Math.min(...stds).toPrecision(2)));
      } else if (name !== 'checkerboard') {
        // The noise the description names is the data generator's default noise (data.ts).
        const stated = /noise (\d+(?:\.\d+)?)/.exec(entry.description);
        expect(stated, name).not.toBeNull();
        expect(entry.localStd, name).toBe(Number(stated![1]));
      }
    }
    expect(datasetEntry('rings').localStd).toBe(0.05);
    expect(datasetEntry('mixture3').localStd).toBe(0.25);
  });
});

describe('noise by name', () => {
  it('VP and sub-VP are Song et al. 2021\'s SDEs, each its own, with β_min 0.1 and β_max 20', () => {
    expect(noiseFor('vp')).toEqual({ kind: 'sde', sde: 'vp', betaMin: 0.1, betaMax: 20 });
    expect(noiseFor('subvp')).toEqual({ kind: 'sde', sde: 'subvp', betaMin: 0.1, betaMax: 20 });
    expect(sdeOf(noiseFor('subvp') as Extract<NoiseSpec, { kind: 'sde' }>).kind).toBe('subvp');
  });

  it('a VE SDE starts at the σ_min it was given', () => {
    const noise = noiseFor('ve', { sigmaMin: 0.05, sigmaMax: 2 });
    expect(noise).toEqual({ kind: 'sde', sde: 've', sigmaMin: 0.05, sigmaMax: 2 });
    const sde = sdeOf(noise as Extract<NoiseSpec, { kind: 'sde' }>);
    // σ(t) = σ_min (σ_max/σ_min)ᵗ: σ(0) = σ_min, σ(1) = σ_max, in float64 to a few ulps.
    const std = tidy(() => Array.from(sde.std(tensor([0, 1], { dtype: 'float64' })).dataSync()));
    expect(std[0]).toBeCloseTo(0.05, 14);
    expect(std[1]).toBeCloseTo(2, 13);
  });

  it('refuses, by name, a σ, σ_max, bandwidth or KDE size it could not use', () => {
    expect(() => noiseFor('dsm', { sigma: 0 })).toThrow(/^noiseFor: sigma must be a finite number > 0, got 0$/);
    expect(() => noiseFor('ncsn', { sigmaMax: -1 })).toThrow(/^noiseFor: sigmaMax must be a finite number > 0, got -1$/);
    expect(() => noiseFor('dsm', { sigmaMax: 0 })).toThrow(/^noiseFor: sigmaMax must be a finite number > 0, got 0$/);
    expect(() => noiseFor('esm-kde', { kdeBandwidth: [0.3, -0.1], kdePoints: 20 })).toThrow(/^noiseFor: kdeBandwidth\[1\] must be a finite number > 0, got -0\.1$/);
    expect(() => noiseFor('esm-kde', { kdeBandwidth: [0.3, 0.3], kdePoints: 1 })).toThrow(/^noiseFor: kdePoints must be an integer >= 2, got 1$/);
    // One point gives no distance: σ_max's default says what it needs, under noiseFor's name.
    expect(() => noiseFor('ncsn', { dataPoints: [1, 2] })).toThrow(/^noiseFor: 'ncsn' needs sigmaMax, or dataPoints \(at least two points\) to take it from$/);
    expect(() => defaultSigmaMax([0, 0, 1, 1, 2])).toThrow(/^defaultSigmaMax: points must hold at least two points as interleaved x, y \(an even length >= 4\), got length 5$/);
  });

  it('a spec keeps its own copy of the caller\'s arrays', () => {
    const bandwidth = [0.3, 0.4];
    const kde = noiseFor('esm-kde', { kdeBandwidth: bandwidth, kdePoints: 20 });
    const hidden = [8, 8];
    const spec = modelSpecFor('dsm', hidden);
    bandwidth[0] = 9;
    hidden[0] = 1;
    expect(kde).toEqual({ kind: 'kde', bandwidth: [0.3, 0.4], points: 20 });
    expect(spec.hidden).toEqual([8, 8]);
  });

  it('describes each kind of noise in words', () => {
    expect(describeNoise(noiseFor('ncsn', { sigmaMax: 2, levels: 3 }))).toBe('3 levels, geometric from σ = 2 down to 0.01');
    expect(describeNoise(noiseFor('dsm', { sigma: 0.12345 }))).toBe('σ = 0.1235');
    expect(describeNoise(noiseFor('vp'))).toBe('VP SDE, β_min = 0.1, β_max = 20');
    expect(describeNoise(noiseFor('subvp'))).toBe('sub-VP SDE, β_min = 0.1, β_max = 20');
    expect(describeNoise(noiseFor('ve', { sigmaMax: 2.71828 }))).toBe('VE SDE, σ_min = 0.01, σ_max = 2.718');
  });
});

describe('the cleanest condition', () => {
  it('is σ_L for noise levels', () => {
    expect(cleanestCondition(noiseFor('ncsn', { sigmaMax: 2, levels: 3 }))).toBe(0.01);
    expect(cleanestCondition(noiseFor('ssm-vr', { sigmaMax: 5, sigmaMin: 0.02 }))).toBe(0.02);
  });

  it('is, for VP and sub-VP, the time the kernel std reaches 0.01, to 3 digits', () => {
    // VP: s(t)² = 1 − m(t)², sub-VP: s(t) = 1 − m(t)², with −log m(t)² = ½t²(β_max − β_min) + tβ_min.
    // Solve the quadratic on the host; bisection to 2⁻⁶⁰ leaves it far inside the 3-digit rounding
    // (VP: 9.1648e-4 → 9.16e-4, 2e-8 from the boundary; sub-VP: 0.027152 → 0.0272).
    const root = (c: number) => (-0.1 + Math.sqrt(0.1 ** 2 + 2 * 19.9 * c)) / 19.9;
    expect(cleanestCondition(noiseFor('vp'))).toBe(Number(root(-Math.log1p(-(0.01 ** 2))).toPrecision(3)));
    expect(cleanestCondition(noiseFor('subvp'))).toBe(Number(root(-Math.log1p(-0.01)).toPrecision(3)));
    // VE's std σ_min(σ_max/σ_min)ᵗ is above 0.01 from the start: the earliest time, ε = 1e-5.
    expect(cleanestCondition(noiseFor('ve', { sigmaMax: 2 }))).toBe(1e-5);
  });
});

describe('model specs and objectives refuse what they cannot build', () => {
  it('a noise spec is checked field by field, and makeObjective checks what it is given before the first step', () => {
    // An unknown SDE name was read as sub-VP; levels without σs failed reading .length, an empty
    // list at the first step as 'gather: index -1'; 'vp' under a VE spec trained a VE model as 'vp';
    // a missing noise, model or data set failed reading .kind, .bind or .sample of undefined.
    expect(() => sdeOf({ kind: 'sde', sde: 'VP', betaMin: 0.1, betaMax: 20 } as never)).toThrow(/^sdeOf: unknown noise\.sde "VP" \(did you mean 'vp'\?\); expected one of 've', 'vp', 'subvp'$/);
    expect(() => describeNoise({ kind: 'levels' } as never)).toThrow(/^describeNoise: noise\.sigmas must be a non-empty array of positive numbers, got undefined$/);
    expect(() => cleanestCondition({ kind: 'single', sigma: -1 } as never)).toThrow(/^cleanestCondition: noise\.sigma must be a finite number > 0, got -1$/);
    expect(() => describeNoise({ kind: 'kde', bandwidth: [0.3, 0.3], points: 1 } as never)).toThrow(/^describeNoise: noise\.points must be an integer >= 2, got 1$/);
    expect(() => sdeOf({ kind: 'sde', sde: 've', sigmaMin: 0.01 } as never)).toThrow(/^sdeOf: noise\.sigmaMax must be a finite number > 0, got undefined$/);
    const dataset = datasetEntry('moons').dataset;
    const model = buildModel(modelSpecFor('vp', [4]), noiseFor('vp'), randomKey(1));
    const context = { objective: 'vp', noise: noiseFor('vp'), model, dataset, batch: 4 } as const;
    expect(() => makeObjective({ ...context, noise: noiseFor('ve', { sigmaMax: 2 }) })).toThrow(/^makeObjective: objective 'vp' trains under the vp SDE, but the noise spec is the ve SDE$/);
    expect(() => makeObjective({ ...context, noise: undefined as never })).toThrow(/^makeObjective: noise must be a noise description \(as noiseFor returns\), got undefined$/);
    expect(() => makeObjective({ ...context, objective: 'ssm-vr', noise: { kind: 'levels', sigmas: [] } })).toThrow(/^makeObjective: noise\.sigmas must be a non-empty array of positive numbers, got \[\]$/);
    // A hole in the σs (forEach skipped it, and the step read undefined).
    const holed = [1, 0.5, 0.1];
    delete holed[1];
    expect(() => makeObjective({ ...context, objective: 'ssm-vr', noise: { kind: 'levels', sigmas: holed } })).toThrow(/^makeObjective: noise\.sigmas\[1\] must be a finite number > 0, got undefined$/);
    expect(() => makeObjective({ ...context, dataset: undefined as never })).toThrow(/^makeObjective: dataset must be a data set \(as datasetEntry\(name\)\.dataset\), got undefined$/);
    expect(() => makeObjective({ ...context, model: undefined as never })).toThrow(/^makeObjective: model must be a score model \(as buildModel returns\), got undefined$/);
  });

  it('modelSpecFor refuses a layer of width 0', () => {
    expect(() => modelSpecFor('dsm', [8, 0])).toThrow(/^modelSpecFor: hidden must be an array of layer widths \(positive integers\), got \[8,0\]$/);
  });

  it('makeObjective refuses a batch of 0, and a KDE objective without its data, by name', () => {
    const entry = datasetEntry('moons');
    const dsm = noiseFor('dsm');
    const model = buildModel(modelSpecFor('dsm', [4]), dsm, randomKey(1));
    expect(() => makeObjective({ objective: 'dsm', noise: dsm, model, dataset: entry.dataset, batch: 0 })).toThrow(/^makeObjective: batch must be an integer >= 1, got 0$/);
    const kde = noiseFor('esm-kde', { kdeBandwidth: [0.3, 0.3], kdePoints: 20 });
    const kdeModel = buildModel(modelSpecFor('esm-kde', [4]), kde, randomKey(2));
    expect(() => makeObjective({ objective: 'esm-kde', noise: kde, model: kdeModel, dataset: entry.dataset, batch: 4 })).toThrow(
      /^makeObjective: objective 'esm-kde' needs kdeData, the points its KDE target is built on$/,
    );
  });

  it('the KDE objective fits a fresh batch of the data set each step, not the KDE\'s own points', () => {
    const entry = datasetEntry('moons');
    const kdeData = entry.dataset.sample(20, { key: randomKey(3) });
    const kde = noiseFor('esm-kde', { kdeBandwidth: [0.3, 0.3], kdePoints: 20 });
    const model = buildModel(modelSpecFor('esm-kde', [4]), kde, randomKey(4));
    const before = memory().tensors;
    const loss = makeObjective({ objective: 'esm-kde', noise: kde, model, dataset: entry.dataset, batch: 8, kdeData });
    const [a, b] = tidy(() => [randomKey(5), randomKey(6)].map((key) => loss(model.params, key).dataSync()[0]!));
    // Two steps' keys draw two batches: the losses differ (equal only if the batch were fixed).
    expect(a).not.toBe(b);
    expect(memory().tensors).toBe(before);
    kdeData.dispose();
  });

  it('an SDE objective draws its batch and its loss\'s noise from the step\'s key split in two, in that order', () => {
    const entry = datasetEntry('moons');
    const noise = noiseFor('vp');
    const model = buildModel(modelSpecFor('vp', [8]), noise, randomKey(7));
    const key = randomKey(8);
    const got = tidy(() => makeObjective({ objective: 'vp', noise, model, dataset: entry.dataset, batch: 16 })(model.params, key).dataSync()[0]!);
    const [dataKey, lossKey] = splitKey(key, 2) as [RandomKey, RandomKey];
    const want = tidy(() => sdeScoreLoss(model.bind(model.params), entry.dataset.sample(16, { key: dataKey }), { sde: sdeOf(noise as Extract<NoiseSpec, { kind: 'sde' }>), key: lossKey }).dataSync()[0]!);
    // The same ops on the same draws: bit for bit.
    expect(got).toBe(want);
  });
});

