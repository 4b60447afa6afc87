// Every entry point of the package says which argument is missing or of the wrong kind, naming
// itself, where a call without its series, paths, sections or fields failed as "Cannot read
// properties of undefined (reading 'map')" (or 'width', 'length', 'x', 'replace') inside the chart.

import { describe, expect, it } from 'vitest';
import { htmlReport, linePlot, quiverComparison, scatterPlot, trajectoryPlot } from '../src/index.js';

const loose = (f: (opts: never) => string) => (opts: unknown) => () => f(opts as never);

describe('entry points check their arguments', () => {
  it('scatterPlot', () => {
    const call = loose(scatterPlot);
    expect(call(undefined)).toThrow(/^scatterPlot: expected an options object \{ series, title\?, \.\.\. \}, got undefined$/);
    expect(call({})).toThrow(/^scatterPlot: series must be an array of a series \{ points, label\?, color\?, radius\?, opacity\? \}, got undefined$/);
    expect(call({ series: [null] })).toThrow(/^scatterPlot: series\[0\] must be a series \{ points, .* \}, got null$/);
    expect(call({ series: [{}] })).toThrow(/^scatterPlot: series 0: points must be \[x, y\] pairs, \{x, y\} arrays or \{xy\} interleaved, got undefined$/);
  });

  it('linePlot', () => {
    const call = loose(linePlot);
    expect(call(null)).toThrow(/^linePlot: expected an options object \{ series, title\?, \.\.\. \}, got null$/);
    expect(call({ series: 3 })).toThrow(/^linePlot: series must be an array of a series \{ y, x\?, .* \}, got number$/);
    expect(call({ series: [{ ys: [1, 2] }] })).toThrow(/^linePlot: series 0: y must be an array of numbers, got undefined$/);
    expect(call({ series: [{ y: [1, 2], x: 5 }] })).toThrow(/^linePlot: series 0: x must be an array of numbers, got number$/);
  });

  it('trajectoryPlot', () => {
    const call = loose(trajectoryPlot);
    expect(call(undefined)).toThrow(/^trajectoryPlot: expected an options object \{ paths, title\?, background\?, \.\.\. \}, got undefined$/);
    expect(call({ path: [] })).toThrow(/^trajectoryPlot: paths must be an array with one entry of points per trajectory, got undefined$/);
  });

  it('quiverComparison', () => {
    const call = loose(quiverComparison);
    const field = { x: [0, 1], y: [0, 0], u: [1, 1], v: [0, 0] };
    expect(call(undefined)).toThrow(/^quiverComparison: expected an options object \{ learned, truth, title\?, \.\.\. \}, got undefined$/);
    expect(call({ learned: field })).toThrow(/^quiverComparison: truth must be a vector field \{ x, y, u, v \} \(arrays of numbers, one entry per arrow\), got undefined$/);
    expect(call({ learned: { ...field, u: undefined }, truth: field })).toThrow(/^quiverComparison: learned: u must be an array of numbers, one entry per arrow, got undefined$/);
  });

  it('htmlReport', () => {
    const call = loose(htmlReport);
    expect(call(undefined)).toThrow(/^htmlReport: expected an options object \{ title, sections, intro\?, generatedAt\? \}, got undefined$/);
    expect(call({ sections: [] })).toThrow(/^htmlReport: title must be a string, got undefined$/);
    expect(call({ title: 't', section: [] })).toThrow(/^htmlReport: sections must be an array of a section \{ heading, text\?, svg\?, table\? \}, got undefined$/);
    expect(call({ title: 't', sections: [{ title: 'h' }] })).toThrow(/^htmlReport: sections\[0\]\.heading must be a string, got undefined$/);
    // What was accepted still is.
    expect(htmlReport({ title: 't', sections: [{ heading: 'h', text: 'x' }] })).toContain('<h2 id="section-1">h</h2>');
  });
});
