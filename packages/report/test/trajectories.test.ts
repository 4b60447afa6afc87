// The trajectory chart: a polyline per chain with its start and end markers, cut where it diverges.

import { describe, expect, it } from 'vitest';
import { trajectoryPlot } from '../src/trajectories.js';
import { checkSvg, descendants, num, onlyByClass } from './xml.js';

describe('trajectoryPlot', () => {
  const walk = (x0: number, y0: number, steps: number): [number, number][] => Array.from({ length: steps }, (_, k) => [x0 * 0.9 ** k, y0 * 0.9 ** k]);

  it('draws a polyline per path with start and end markers', () => {
    const paths = [walk(3, 3, 20), walk(-3, 2, 20), walk(1, -2, 5), [[0.5, 0.5]] as [number, number][], []];
    const root = checkSvg(trajectoryPlot({ title: 'Langevin', paths, background: { x: [0, 1, 2], y: [0, 1, 0] }, backgroundLabel: 'data' }));
    const lines = descendants(onlyByClass(root, 'paths'), 'polyline');
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.attrs.points!.split(' ').length)).toEqual([20, 20, 5]);
    // Three full paths (start + end) and one single-point path (start only).
    expect(descendants(onlyByClass(root, 'markers'), 'circle')).toHaveLength(7);
    expect(descendants(onlyByClass(root, 'background'), 'circle')).toHaveLength(3);
    // The start marker sits on the polyline's first vertex.
    const start = descendants(onlyByClass(root, 'markers'), 'circle')[0]!;
    expect(lines[0]!.attrs.points!.split(' ')[0]).toBe(`${start.attrs.cx},${start.attrs.cy}`);
  });

  it('cuts a diverged path at its first non-finite position', () => {
    const path = walk(2, 2, 10);
    path[6] = [NaN, 1];
    path[7] = [Infinity, Infinity];
    const svg = trajectoryPlot({ paths: [path] });
    const root = checkSvg(svg);
    expect(descendants(onlyByClass(root, 'paths'), 'polyline')[0]!.attrs.points!.split(' ')).toHaveLength(6);
    // Positions 6 … 9: the first non-finite one and the three after it.
    expect(onlyByClass(root, 'note').text).toBe('4 positions from a path&#39;s first non-finite one on not drawn');
    // A chain that diverges at its last step loses that one position, and none after it
    // (the note said '1 position after a path's first non-finite one', which did not exist).
    const last = walk(2, 2, 5);
    last[4] = [NaN, NaN];
    const one = checkSvg(trajectoryPlot({ paths: [last] }));
    expect(descendants(onlyByClass(one, 'paths'), 'polyline')[0]!.attrs.points!.split(' ')).toHaveLength(4);
    expect(onlyByClass(one, 'note').text).toBe('1 position from a path&#39;s first non-finite one on not drawn');
  });

  it('cuts a path at a position whose y alone is non-finite', () => {
    // Drawn on, the NaN y reached the number formatter, which throws.
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [1, 1], [2, NaN], [3, 3]]] }));
    expect(descendants(onlyByClass(root, 'paths'), 'polyline')[0]!.attrs.points!.split(' ')).toHaveLength(2);
    expect(onlyByClass(root, 'note').text).toBe('2 positions from a path&#39;s first non-finite one on not drawn');
  });

  it('handles no paths at all', () => {
    const root = checkSvg(trajectoryPlot({ paths: [] }));
    expect(descendants(root, 'polyline')).toHaveLength(0);
  });

  it('cuts a path at a null (a NaN after JSON), not at (0, 0)', () => {
    // Number(null) is 0: a diverged chain saved as JSON was drawn jumping to the origin, unnoted.
    const path = JSON.parse('[[1,1],[2,2],[null,null]]') as [number, number][];
    const root = checkSvg(trajectoryPlot({ paths: [path] }));
    expect(descendants(onlyByClass(root, 'paths'), 'polyline')[0]!.attrs.points!.split(' ')).toHaveLength(2);
    expect(onlyByClass(root, 'note').text).toBe('1 position from a path&#39;s first non-finite one on not drawn');
  });

  it('equalAspect: true holds with one domain given (it was ignored unless both were)', () => {
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [2, 1]]], xDomain: [-3, 3], equalAspect: true }));
    const [start, end] = descendants(onlyByClass(root, 'markers'), 'circle');
    const perUnitX = (Number(end!.attrs.cx) - Number(start!.attrs.cx)) / 2;
    const perUnitY = Number(start!.attrs.cy) - Number(end!.attrs.cy);
    expect(Math.abs(perUnitX - perUnitY)).toBeLessThan(0.02);
  });
});

describe('trajectoryPlot: legend, aspect, colour and notes', () => {
  it('gives no legend row to a background label without a background', () => {
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [1, 1]]], backgroundLabel: 'data' }));
    expect(descendants(onlyByClass(root, 'legend'), 'text').map((t) => t.text)).toEqual(['start', 'end']);
  });

  it('draws on equal x and y scales by default', () => {
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [2, 1]]] }));
    const [start, end] = descendants(onlyByClass(root, 'markers'), 'circle');
    const perUnitX = (num(end!, 'cx') - num(start!, 'cx')) / 2;
    const perUnitY = num(start!, 'cy') - num(end!, 'cy');
    expect(Math.abs(perUnitX - perUnitY)).toBeLessThan(0.02);
  });

  it('draws every path in the given colour: a hollow start, a filled end on the last vertex', () => {
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [1, 2], [2, 1]]], color: 'red' }));
    const line = onlyByClass(root, 'paths').children[0]!;
    expect(line.attrs.stroke).toBe('red');
    const [start, end] = descendants(onlyByClass(root, 'markers'), 'circle');
    expect(start!.attrs).toMatchObject({ fill: '#ffffff', stroke: 'red' });
    expect(end!.attrs.fill).toBe('red');
    const vertices = line.attrs.points!.split(' ');
    expect(`${end!.attrs.cx},${end!.attrs.cy}`).toBe(vertices[vertices.length - 1]);
  });

  it('counts non-finite background points in the note', () => {
    const root = checkSvg(trajectoryPlot({ paths: [[[0, 0], [1, 1]]], background: [[0, 1], [NaN, 0]] }));
    expect(descendants(onlyByClass(root, 'background'), 'circle')).toHaveLength(1);
    expect(onlyByClass(root, 'note').text).toBe('1 non-finite background point not drawn');
  });
});
