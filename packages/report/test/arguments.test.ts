// Every entry point of the package says which argument is missing or of the wrong kind, naming
// itself, where a call without its series, paths, sections or fields failed as "Cannot read
// properties of undefined (reading 'map')" (or 'width', 'length', 'x', 'replace') inside the chart.
// Its options are checked as every scorch package's are (@scorch/options): a misspelled key was
// dropped silently (scatterPlot's titel: no title), null was taken as the default, a title of 5
// failed as "title.trim is not a function", and radius −1 or opacity NaN were drawn.

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

// The messages are @scorch/options' own: unknown keys with the closest valid one and the list,
// null as not a value, types and ranges by name.
const isNull = (where: string, key: string) => new TypeError(`${where}: ${key} is null, which is not a value for it (an option left out, or undefined, takes its default)`);

describe('entry points check their options: unknown keys, null, types and ranges', () => {
  const pts: [number, number][] = [[0, 0], [1, 1]];

  it('scatterPlot and its series', () => {
    const call = loose(scatterPlot);
    const series = [{ points: pts }];
    expect(call({ series, titel: 'x' })).toThrow(
      /^scatterPlot: unknown option 'titel' \(did you mean 'title'\?\); valid options: series, title, xDomain, yDomain, equalAspect, width, height, xLabel, yLabel$/,
    );
    expect(call({ series, title: null })).toThrow(isNull('scatterPlot', 'title'));
    expect(call({ series, title: 5 })).toThrow(/^scatterPlot: title must be a string, got 5$/);
    expect(call({ series, equalAspect: 'yes' })).toThrow(/^scatterPlot: equalAspect must be true or false, got "yes"$/);
    expect(call({ series, width: '500' })).toThrow(/^scatterPlot: width must be a finite number >= 100, got "500"$/);
    expect(call({ series, height: 79 })).toThrow(/^scatterPlot: height must be a finite number >= 80, got 79$/);
    expect(call({ series, xDomain: 5 })).toThrow(/^scatterPlot: xDomain must be an array \[lo, hi\], got 5$/);
    expect(call({ series, yDomain: [0, NaN] })).toThrow(/^scatterPlot: yDomain must be finite with lo < hi, got \[0,NaN\]$/);
    // Each series is an options object too.
    expect(call({ series: [{ points: pts, colour: 'red' }] })).toThrow(
      /^scatterPlot: series 0: unknown option 'colour' \(did you mean 'color'\?\); valid options: points, label, color, radius, opacity$/,
    );
    expect(call({ series: [{ points: pts, label: null }] })).toThrow(isNull('scatterPlot: series 0', 'label'));
    expect(call({ series: [{ points: pts, color: '' }] })).toThrow(/^scatterPlot: series 0: color must be a non-empty string, got ""$/);
    expect(call({ series: [{ points: pts, radius: -1 }] })).toThrow(/^scatterPlot: series 0: radius must be a finite number > 0, got -1$/);
    expect(call({ series: [{ points: pts, radius: 0 }] })).toThrow(/^scatterPlot: series 0: radius must be a finite number > 0, got 0$/);
    expect(call({ series: [{ points: pts, opacity: Number.NaN }] })).toThrow(/^scatterPlot: series 0: opacity must be a finite number >= 0 and <= 1, got NaN$/);
    expect(call({ series: [{ points: pts }, { points: pts, opacity: 1.5 }] })).toThrow(/^scatterPlot: series 1: opacity must be a finite number >= 0 and <= 1, got 1.5$/);
    // The ends of the ranges are values.
    expect(scatterPlot({ series: [{ points: pts, opacity: 0, radius: 0.5 }, { points: pts, opacity: 1 }], width: 100, height: 80 })).toContain('fill-opacity="0"');
  });

  it('linePlot and its series', () => {
    const call = loose(linePlot);
    const series = [{ y: [1, 2] }];
    expect(call({ series, logy: true })).toThrow(/^linePlot: unknown option 'logy' \(did you mean 'logY'\?\); valid options: series, title, logY, maxPoints, width, height, xLabel, yLabel$/);
    expect(call({ series, logY: null })).toThrow(isNull('linePlot', 'logY'));
    expect(call({ series, logY: 1 })).toThrow(/^linePlot: logY must be true or false, got 1$/);
    expect(call({ series, xLabel: 3 })).toThrow(/^linePlot: xLabel must be a string, got 3$/);
    expect(call({ series, maxPoints: 2 })).toThrow(/^linePlot: maxPoints must be an integer >= 4, got 2$/);
    expect(call({ series, maxPoints: 4.5 })).toThrow(/^linePlot: maxPoints must be an integer >= 4, got 4.5$/);
    expect(call({ series: [{ y: [1, 2], lable: 'a' }] })).toThrow(/^linePlot: series 0: unknown option 'lable' \(did you mean 'label'\?\); valid options: x, y, label, color, strokeWidth$/);
    expect(call({ series: [{ y: [1, 2], color: null }] })).toThrow(isNull('linePlot: series 0', 'color'));
    expect(call({ series: [{ y: [1, 2], label: ['a'] }] })).toThrow(/^linePlot: series 0: label must be a string, got \["a"\]$/);
    expect(call({ series: [{ y: [1, 2], strokeWidth: 0 }] })).toThrow(/^linePlot: series 0: strokeWidth must be a finite number > 0, got 0$/);
  });

  it('trajectoryPlot', () => {
    const call = loose(trajectoryPlot);
    const paths = [pts];
    expect(call({ paths, backgroud: pts })).toThrow(
      /^trajectoryPlot: unknown option 'backgroud' \(did you mean 'background'\?\); valid options: paths, title, background, backgroundLabel, color, xDomain, yDomain, equalAspect, width, height, xLabel, yLabel$/,
    );
    // null was taken as "no background"; false or 0 were too (the check was truthiness).
    expect(call({ paths, background: null })).toThrow(isNull('trajectoryPlot', 'background'));
    expect(call({ paths, background: false })).toThrow(/^trajectoryPlot: background: points must be \[x, y\] pairs, \{x, y\} arrays or \{xy\} interleaved, got boolean$/);
    expect(call({ paths, backgroundLabel: 1 })).toThrow(/^trajectoryPlot: backgroundLabel must be a string, got 1$/);
    expect(call({ paths, color: '' })).toThrow(/^trajectoryPlot: color must be a non-empty string, got ""$/);
    expect(call({ paths, yDomain: [2, 1] })).toThrow(/^trajectoryPlot: yDomain must be finite with lo < hi, got \[2,1\]$/);
    expect(call({ paths, width: Infinity })).toThrow(/^trajectoryPlot: width must be a finite number >= 100, got Infinity$/);
  });

  it('quiverComparison and its fields', () => {
    const call = loose(quiverComparison);
    const field = { x: [0, 1], y: [0, 0], u: [1, 1], v: [0, 0] };
    const both = { learned: field, truth: field };
    expect(call({ ...both, normalise: 'log' })).toThrow(
      /^quiverComparison: unknown option 'normalise' \(did you mean 'normalize'\?\); valid options: learned, truth, title, labels, normalize, scale, background, xDomain, yDomain, width, height, xLabel, yLabel$/,
    );
    expect(call({ ...both, title: null })).toThrow(isNull('quiverComparison', 'title'));
    // An unknown normalisation drew no arrow at all (every length came out undefined).
    expect(call({ ...both, normalize: 'logs' })).toThrow(/^quiverComparison: unknown normalize "logs" \(did you mean 'log'\?\); expected one of 'max', 'log', 'unit'$/);
    expect(call({ ...both, labels: ['a'] })).toThrow(/^quiverComparison: labels must be the two panel titles \[learned, truth\], got \["a"\]$/);
    expect(call({ ...both, labels: ['a', 2] })).toThrow(/^quiverComparison: labels\[1\] must be a string, got 2$/);
    expect(call({ ...both, scale: 0 })).toThrow(/^quiverComparison: scale must be a finite number > 0, got 0$/);
    // Two panels, each at least the 100 px a chart needs.
    expect(call({ ...both, width: 150 })).toThrow(/^quiverComparison: width must be a finite number >= 200, got 150$/);
    expect(call({ learned: { ...field, dx: [1, 1] }, truth: field })).toThrow(/^quiverComparison: learned: unknown option 'dx' \(did you mean 'x'\?\); valid options: x, y, u, v$/);
    expect(call({ learned: field, truth: { ...field, w: null } })).toThrow(/^quiverComparison: truth: unknown option 'w' \(did you mean 'x'\?\); valid options: x, y, u, v$/);
  });

  it('htmlReport, its sections and their tables', () => {
    const call = loose(htmlReport);
    const base = { title: 't', sections: [] };
    expect(call({ ...base, generatedat: 'x' })).toThrow(/^htmlReport: unknown option 'generatedat' \(did you mean 'generatedAt'\?\); valid options: title, intro, sections, generatedAt$/);
    expect(call({ ...base, intro: null })).toThrow(isNull('htmlReport', 'intro'));
    expect(call({ ...base, intro: 5 })).toThrow(/^htmlReport: intro must be a string, got 5$/);
    expect(call({ title: 5, sections: [] })).toThrow(/^htmlReport: title must be a string, got 5$/);
    // An invalid Date failed in toISOString as "Invalid time value", a number as "value.replace is not a function".
    expect(call({ ...base, generatedAt: new Date(Number.NaN) })).toThrow(/^htmlReport: generatedAt must be a valid Date or a string, got an invalid Date$/);
    expect(call({ ...base, generatedAt: 5 })).toThrow(/^htmlReport: generatedAt must be a valid Date or a string, got 5$/);
    const section = (s: object) => ({ title: 't', sections: [{ heading: 'h', ...s }] });
    expect(call(section({ txt: 'x' }))).toThrow(/^htmlReport: sections\[0\]: unknown option 'txt' \(did you mean 'text'\?\); valid options: heading, text, svg, table$/);
    expect(call(section({ table: null }))).toThrow(isNull('htmlReport: sections[0]', 'table'));
    expect(call(section({ text: 5 }))).toThrow(/^htmlReport: sections\[0\]\.text must be a string, got 5$/);
    expect(call(section({ svg: 5 }))).toThrow(/^htmlReport: sections\[0\]\.svg must be an SVG document string or an array of them, got 5$/);
    expect(call(section({ table: { columns: ['a'], rows: [], captions: 'c' } }))).toThrow(
      /^htmlReport: sections\[0\]\.table: unknown option 'captions' \(did you mean 'caption'\?\); valid options: columns, rows, caption$/,
    );
    expect(call(section({ table: { column: ['a'], rows: [] } }))).toThrow(/^htmlReport: sections\[0\]\.table\.columns must be an array of column headings, got undefined$/);
    expect(call(section({ table: { columns: ['a'], rows: [{}] } }))).toThrow(/^htmlReport: sections\[0\]\.table\.rows\[0\] must be an array of cells, got \{\}$/);
    // An object cell was written as "[object Object]".
    expect(call(section({ table: { columns: ['a'], rows: [[{}]] } }))).toThrow(
      /^htmlReport: sections\[0\]\.table\.rows\[0\]\[0\] must be a string, number, boolean, null or undefined, got \{\}$/,
    );
    expect(call(section({ table: { columns: ['a'], rows: [], caption: 1 } }))).toThrow(/^htmlReport: sections\[0\]\.table\.caption must be a string, got 1$/);
    // Null and undefined cells are values (an em dash), not options.
    expect(htmlReport(section({ table: { columns: ['a', 'b'], rows: [[null, undefined]] } }) as never)).toContain('<td class="num">—</td><td class="num">—</td>');
  });
});
