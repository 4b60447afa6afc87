// The run report's own pieces, without a run: how figures are written (in the metrics table and
// index.html alike) and how index.html shows what a run has.

import { describe, expect, it } from 'vitest';
import { descendants, parseXml } from '../../report/test/xml.js';
import { type Tensor, memory, randomKey, tensor } from '@scorch/tensor';
import { cleanestCondition, datasetEntry, mlpScore, noiseFor } from '@scorch/score';
import { type Metrics, type ReportInput, computeMetrics, fmt, makeHtml, makePlots, metricRows, writeResults } from '../src/report.js';
import { captureIo } from './runMain.js';

describe('fmt: 4 significant digits, in exponent form when very small or large', () => {
  it('keeps 4 significant digits in exponent form too', () => {
    // Exponent form gave 3 (1.2346e-4 shown as 1.23e-4, 12345678 as 1.23e+7).
    expect(fmt(1.2346e-4)).toBe('1.235e-4');
    expect(fmt(12345678)).toBe('1.235e+7');
    expect(fmt(-9.9991e-4)).toBe('-9.999e-4');
    expect(fmt(2.5e-7)).toBe('2.5e-7');
    expect(fmt(1e-7)).toBe('1e-7');
    expect(fmt(0.1234567)).toBe('0.1235');
    expect(fmt(123456.7)).toBe('123500');
  });

  it('chooses the form by the value it shows, so one value is always written one way', () => {
    // 999950 rounds to 1.000e6 and was written '1000000', while 1e6 itself was '1.00e+6';
    // 0.00099996 rounds to 0.001 and was written '1.00e-3', while 0.001 was '0.001'.
    expect(fmt(999950)).toBe(fmt(1e6));
    expect(fmt(1e6)).toBe('1e+6');
    expect(fmt(0.00099996)).toBe(fmt(0.001));
    expect(fmt(0.001)).toBe('0.001');
    expect(fmt(999949)).toBe('999900');
  });

  it('writes zero, negative zero and non-finite values plainly', () => {
    expect([fmt(0), fmt(-0), fmt(NaN), fmt(Infinity), fmt(-Infinity)]).toEqual(['0', '0', 'NaN', 'Infinity', '-Infinity']);
  });
});

describe('makeHtml', () => {
  const metrics: Metrics = {
    format: 'scorch-metrics/v1', data: 'mixture', loss: 'ssm-vr', sampler: 'langevin', backend: 'cpu', seed: 4, samples: 300,
    fisherDivergence: null,
    mmd2: { value: 1.2346e-4, nullStandardError: 2e-4, bandwidth: 0.75 },
    energyDistance: { value: 0.003, nullStandardError: 0.002 },
    modeWeights: null,
    training: null,
    sampling: { sampler: 'langevin', steps: 100, seconds: 1.5, pathsFrom: 'uniform noise' },
  };
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10"/></svg>';
  const plots = { 'samples.svg': svg, 'score.svg': svg, 'trajectories.svg': svg };

  it('says so where a run has no loss history, instead of leaving the section out', () => {
    // A checkpoint with an empty training.history is accepted by `scorch sample`, and its report
    // had no training-loss section at all, as if the page were cut short.
    const html = makeHtml({ title: 'run', intro: 'intro', settings: [['seed', 4]], metrics, plots });
    const root = parseXml(html, { html: true });
    const sections = descendants(root, 'section');
    const headings = sections.map((s) => descendants(s, 'h2')[0]!.text);
    expect(headings).toEqual(['Run', 'Metrics', 'Data and samples', 'Score field', 'Training loss', 'Sampler trajectories']);
    const loss = sections[4]!;
    expect(descendants(loss, 'svg')).toHaveLength(0);
    expect(descendants(loss, 'p').map((p) => p.text).join(' ')).toBe('No loss history was recorded for this run, so there is no loss chart.');
    // With the chart, the section shows it.
    const withLoss = parseXml(makeHtml({ title: 'run', intro: 'intro', settings: [], metrics, plots: { ...plots, 'loss.svg': svg } }), { html: true });
    expect(descendants(descendants(withLoss, 'section')[4]!, 'svg')).toHaveLength(1);
  });
});

describe('the report', () => {
  const model = mlpScore({ inputDim: 2, hidden: [4], activation: 'silu', conditioning: 'sigma', outputScaling: 'divideBySigma', key: randomKey(1) });
  const noise = { kind: 'levels', sigmas: [3, 0.5] } as const;
  /** 500 points on a grid inside the square [-2, 2]², as a float32 tensor. */
  const gridTensor = (n = 500) => tensor(Array.from({ length: 2 * n }, (_, i) => -1.9 + 3.8 * (((i * 7919) % 997) / 997)), { shape: [n, 2], dtype: 'float32' });
  const input = (over: Partial<ReportInput> = {}): ReportInput => ({
    data: datasetEntry('mixture'), loss: 'ssm-vr', model, noise, reference: gridTensor(), backend: 'cpu', seed: 1, domain: 2, training: null,
    run: { samples: gridTensor(), paths: [Float64Array.from([0, 0, 1, 1])], pathsFrom: 'their starting points', seconds: 1, settings: { sampler: 'ald', n: 500 } },
    history: [{ step: 1, loss: 10 }, { step: 2, loss: 0 }, { step: 3, loss: 2 }],
    ...over,
  });
  const dispose = (i: ReportInput) => {
    i.reference.dispose();
    i.run.samples.dispose();
  };

  it("the loss chart's moving average starts at the first loss and averages the losses read so far", async () => {
    const i = input();
    const plots = await makePlots(i);
    dispose(i);
    const lines = [...plots['loss.svg']!.matchAll(/<path class="line" d="([^"]*)"/g)].map((m) => [...m[1]!.matchAll(/(-?[\d.]+) (-?[\d.]+)/g)].map((v) => [Number(v[1]), Number(v[2])]));
    expect(lines).toHaveLength(2);
    const [raw, average] = lines as [number[][], number[][]];
    // The y scale is linear: the mean of two losses is drawn midway between them. Coordinates are
    // written to 2 decimals at most, so a midpoint is within 0.01 of its pixel.
    expect(average[0]).toEqual(raw[0]);
    expect(Math.abs(average[1]![1]! - (raw[0]![1]! + raw[1]![1]!) / 2)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(average[2]![1]! - (raw[0]![1]! + raw[1]![1]! + raw[2]![1]!) / 3)).toBeLessThanOrEqual(0.01);
  });

  it("the score field's background shows the first 400 data points", async () => {
    const i = input();
    const plots = await makePlots(i);
    dispose(i);
    const background = plots['score.svg']!.split('<g class="background"')[1]!.split('</g>')[0]!;
    expect(background.match(/<circle /g)).toHaveLength(400);
  });

  it('the trajectory plot fits its axes to paths that leave the square after starting in it', async () => {
    const i = input({ run: { ...input().run, paths: [Float64Array.from([0, 0, 5, 5])] } });
    const plots = await makePlots(i);
    dispose(i);
    const svg = plots['trajectories.svg']!;
    const frame = /<rect class="frame" x="([\d.-]+)" y="([\d.-]+)" width="([\d.-]+)" height="([\d.-]+)"/.exec(svg)!;
    const [left, top, width, height] = frame.slice(1).map(Number) as [number, number, number, number];
    const markers = [...svg.split('<g class="markers">')[1]!.split('</g>')[0]!.matchAll(/<circle cx="([\d.-]+)" cy="([\d.-]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(markers).toHaveLength(2);
    for (const [x, y] of markers) expect(x! >= left && x! <= left + width && y! >= top && y! <= top + height).toBe(true);
  });

  it('a data set without a known score compares with a KDE, which it disposes', async () => {
    const i = input({ data: datasetEntry('moons') });
    const before = memory().tensors;
    const plots = await makePlots(i);
    expect(memory().tensors).toBe(before);
    dispose(i);
    expect(plots['score.svg']).toContain('KDE estimate of ∇log p');
  });

  it("an SDE model's Fisher divergence is evaluated at t, not σ", async () => {
    const sdeModel = mlpScore({ inputDim: 2, hidden: [4], activation: 'silu', conditioning: 'time', key: randomKey(1) });
    const vp = noiseFor('vp');
    const i = input({ model: sdeModel, noise: vp, loss: 'vp', reference: gridTensor(50), run: { ...input().run, samples: gridTensor(50) } });
    const metrics = await computeMetrics(i);
    dispose(i);
    const t = cleanestCondition(vp)!;
    expect(metrics.fisherDivergence!.evaluatedAt).toMatch(/^t = \S+$/);
    expect(Number(metrics.fisherDivergence!.evaluatedAt.slice(4))).toBeCloseTo(t, Math.ceil(-Math.log10(t)) + 3);
  });

  const metrics: Metrics = {
    format: 'scorch-metrics/v1', data: 'mixture', loss: 'ssm-vr', sampler: 'ald', backend: 'cpu', seed: 1, samples: 300,
    fisherDivergence: { value: 0.5, zeroScoreValue: 2, relative: 0.25, evaluatedAt: 'σ = 0.01', points: 300 },
    mmd2: { value: 1e-4, nullStandardError: 2e-4, bandwidth: 0.75 },
    energyDistance: { value: 0.003, nullStandardError: 0.002 },
    modeWeights: null,
    training: null,
    sampling: { sampler: 'ald', seconds: 1.5, pathsFrom: 'their starting points' },
  };

  it("the Fisher divergence row gives its share of the zero score's in percent", () => {
    expect(metricRows(metrics)[0]).toEqual(['Fisher divergence (σ = 0.01)', '0.5', "25% of the zero score's 2"]);
  });

  it("the files counted as written include those written before (train's checkpoint)", () => {
    const io = captureIo();
    const written: string[] = [];
    const out = { path: '/runs/x', write: (files: Readonly<Record<string, string>>) => written.push(...Object.keys(files)) } as never;
    writeResults(io, out, { samples: '[]', metrics: '{}', plots: { 'samples.svg': '', 'score.svg': '' }, html: '' }, metrics, 1, 'cpu', performance.now());
    expect(written).toEqual(['samples.json', 'metrics.json', 'samples.svg', 'score.svg', 'index.html']);
    expect(io.stdoutText()).toContain('\nWrote 6 files to /runs/x\nReport: /runs/x/index.html\n');
  });
});
