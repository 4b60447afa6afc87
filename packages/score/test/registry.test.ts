// The registry of data sets, objectives and samplers that the CLI and the playground share: every
// name resolves, each distinct thing has one name, every objective builds a model and a finite
// loss from its own description, and the settings are checked like every other options object.

import { describe, expect, it } from 'vitest';
import { type RandomKey, randomKey, splitKey } from '@scorch/tensor';
import {
  DATASET_NAMES, OBJECTIVES, OBJECTIVE_NAMES, SAMPLERS_FOR, SAMPLER_NAMES, buildModel, cleanScore, cleanestCondition,
  datasetEntry, isDatasetName, isObjectiveName, makeObjective, modelSpecFor, noiseFor,
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
});
