// The run report's own pieces, without a run: how figures are written (in the metrics table and
// index.html alike) and how index.html shows what a run has.

import { describe, expect, it } from 'vitest';
import { descendants, parseXml } from '../../report/test/xml.js';
import { type Metrics, fmt, makeHtml } from '../src/report.js';

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
