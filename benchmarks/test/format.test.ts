// Tests of the benchmark suite's own parts that need no engine: statistics, the value check, the
// input bundle, the tables, the results file and its chart.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { foldIn, mean, mul, randomKey, sum, add, tensor } from '@scorch/tensor';
import { jvp } from '@scorch/autograd';
import { mlpScore, slicedScoreMatchingLoss } from '@scorch/score';
import { checkScale, compareValues } from '../src/agreement.js';
import { renderChart } from '../src/chart.js';
import { ENGINES, type EngineId } from '../src/engines.js';
import { matmulChecksum, matmulProjections, particleStatistics } from '../src/engines/engine.js';
import { decodeInputs, encodeInputs, input, makeInputs } from '../src/inputs.js';
import { caseTable, formatNumber, growthTable, markdownSummary, renderMarkdown, runLine, summaryTable, textReport } from '../src/report.js';
import { type CaseResult, type Row, SCHEMA, type SuiteResults, latestRefusal, readResults, runStem, writeResults } from '../src/results.js';
import { README_BLOCKS, expectedBlock, readBlock, updateReadmes } from '../src/readme.js';
import { RELAXED_SIMD_FLAG } from '../src/simdPeak.js';
import { growthExponent, summarize } from '../src/stats.js';
import { HVP_CASE, MLP_PARAM_NAMES, SSMVR_CASE, TOLERANCES, WORKLOADS, type CaseSpec, figureFor, ismCase as ismCaseOf, matmulCase } from '../src/workloads.js';

const scratch = mkdtempSync(join(tmpdir(), 'scorch-bench-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('statistics', () => {
  it('summarizes odd and even counts', () => {
    expect(summarize([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, count: 3 });
    expect(summarize([4, 1, 3, 10])).toEqual({ median: 3.5, min: 1, max: 10, count: 4 });
    expect(() => summarize([])).toThrow('no samples');
  });

  it('fits the exponent of a power law', () => {
    const points = [2, 8, 32, 128].map((d) => ({ size: d, cost: 3 * d ** 1.7 }));
    expect(growthExponent(points)).toBeCloseTo(1.7, 12);
    // Multiplicative noise that averages out in log space leaves the exponent.
    const noisy = [2, 8, 32, 128].map((d, i) => ({ size: d, cost: 5 * d ** 0.9 * (i % 2 === 0 ? 1.1 : 1 / 1.1) }));
    expect(growthExponent(noisy)).toBeCloseTo(0.9, 1);
    expect(() => growthExponent([{ size: 4, cost: 1 }, { size: 4, cost: 2 }])).toThrow('two or more sizes');
  });
});

describe('the value check', () => {
  it("describes W6's value with the length of the product it compares", () => {
    const inputs = makeInputs(HVP_CASE);
    const length = MLP_PARAM_NAMES.reduce((n, name) => n + input(inputs, `tangent.${name}`).data.length, 0);
    expect(length).toBe(17_154);
    expect(WORKLOADS.hvp.value).toBe('the whole product (17,154 numbers)');
  });

  it('measures relative to max(‖reference‖, floor)', () => {
    const spec = SSMVR_CASE;
    expect(checkScale(spec, new Map(), [3, 4])).toBe(5);
    expect(checkScale(spec, new Map(), [0.01, 0])).toBe(TOLERANCES.ssmvr.floor);
    const ok = compareValues(spec, [3 + 2e-4, 4], [3, 4], 5);
    expect(ok.ok).toBe(true);
    expect(ok.error).toBeCloseTo(4e-5, 12);
    const off = compareValues(spec, [3 + 1e-3, 4], [3, 4], 5);
    expect(off).toMatchObject({ ok: false, reason: expect.stringMatching(/^relative error 2\.00e-4 > 0\.0001$/) });
    expect(compareValues(spec, [1], [3, 4], 5)).toMatchObject({ ok: false, reason: '1 values where the reference has 2' });
    expect(compareValues(spec, [NaN, 4], [3, 4], 5)).toMatchObject({ ok: false, reason: 'a value is not finite' });
  });

  it("scales matmul's checksum by its typical size ‖uᵀA‖‖Bw‖/√n", () => {
    const spec = matmulCase(3);
    const inputs = new Map([
      ['a', { shape: [3, 3], data: Float32Array.from([1, 2, 0, 0, 1, 0, 0, 0, 1]) }],
      ['b', { shape: [3, 3], data: Float32Array.from([1, 0, 0, 0, 2, 0, 0, 0, 1]) }],
      ['u', { shape: [3], data: Float32Array.from([1, 0, 0]) }],
      ['w', { shape: [3], data: Float32Array.from([0, 1, 1]) }],
    ]);
    // uᵀA = [1, 2, 0], Bw = [0, 2, 1]: uᵀABw = 4; the scale is √5·√5/√3.
    const { uA, bw } = matmulProjections(inputs.get('a')!.data, inputs.get('b')!.data, inputs.get('u')!.data, inputs.get('w')!.data, 3);
    expect(Array.from(uA)).toEqual([1, 2, 0]);
    expect(Array.from(bw)).toEqual([0, 2, 1]);
    expect(checkScale(spec, inputs, [4])).toBeCloseTo(5 / Math.sqrt(3), 12);
    // The engines' side: the checksum of the product itself.
    const c = [1, 4, 0, 0, 2, 0, 0, 0, 1];
    expect(matmulChecksum(c, [1, 0, 0], [0, 1, 1], 3)).toBe(4);
  });

  it('takes particle statistics in float64', () => {
    expect(particleStatistics([1, 2, 3, 4], [1, 0, 0, 1])).toEqual([2, 3, (1 + 4 + 9 + 16) / 2, (1 + 4) / 2]);
    expect(() => particleStatistics([1, 2, 3], [1, 2, 3])).toThrow('[N, 2]');
  });
});

describe('inputs', () => {
  const tiny: CaseSpec = { ...SSMVR_CASE, id: 'tiny-ssmvr', net: { dim: 2, hidden: 8 }, batch: 16 };

  it('are deterministic and survive the bundle file byte for byte', () => {
    const inputs = makeInputs(tiny);
    expect([...inputs.keys()]).toEqual([...MLP_PARAM_NAMES, 'x', 'projection']);
    expect(input(inputs, 'layer1.weight').shape).toEqual([8, 8]);
    const again = makeInputs(tiny);
    for (const [name, { data }] of inputs) expect(Array.from(again.get(name)!.data)).toEqual(Array.from(data));
    const path = join(scratch, 'tiny.bin');
    writeFileSync(path, encodeInputs(inputs));
    // The file's bytes as a Node Buffer at an odd offset of a larger one (as a pooled Buffer may
    // start; a Buffer's slice shares its memory) decode the same.
    const read = decodeInputs(Buffer.concat([Buffer.alloc(1, 0xff), readFileSync(path)]).subarray(1));
    for (const [name, { shape, data }] of inputs) {
      expect(read.get(name)!.shape).toEqual(shape);
      expect(Array.from(read.get(name)!.data)).toEqual(Array.from(data));
    }
    expect(() => input(read, 'nothing')).toThrow("no array 'nothing' (the bundle holds layer0.weight, ");
  });

  it("hold the projection scorch's SSM-VR loss draws from its key", async () => {
    const inputs = makeInputs(tiny);
    const model = mlpScore({ inputDim: 2, hidden: [8, 8], activation: 'softplus', key: randomKey(1) });
    for (const name of MLP_PARAM_NAMES) expect(Array.from(model.params[name]!.dataSync())).toEqual(Array.from(input(inputs, name).data));
    const x = tensor(input(inputs, 'x').data, { shape: [16, 2] });
    const v = tensor(input(inputs, 'projection').data, { shape: [16, 2] });
    const viaKey = await slicedScoreMatchingLoss(model.score, x, { key: foldIn(randomKey(tiny.seed!), 0), varianceReduced: true }).item();
    const [s, jv] = jvp((xx) => model.score(xx), [x], [v]);
    const explicit = await mean(add(sum(mul(v, jv), 1), mul(sum(mul(s, s), 1), 0.5))).item();
    expect(viaKey).toBeCloseTo(explicit, 6);
  });
});

// ------------------------------------------------------------------------------------------------
// Tables and files, from a small made-up run

function row(engine: EngineId, medianMs: number | undefined, extra: Partial<Row> = {}): Row {
  if (medianMs === undefined) return { engine, status: 'unavailable', reason: 'not installed here', ...extra };
  return {
    engine, status: 'timed', medianMs, minMs: medianMs * 0.9, maxMs: medianMs * 1.2, samplesMs: [medianMs, medianMs, medianMs, medianMs, medianMs],
    check: { ok: true, error: 3e-7, rtol: 1e-4 }, ...extra,
  };
}

function madeUpResults(): SuiteResults {
  const spec = matmulCase(256);
  const timed = (engine: EngineId, ms: number): Row => {
    const r = row(engine, ms);
    return { ...r, figure: figureFor(spec, ms), figureBest: figureFor(spec, r.minMs!), figureWorst: figureFor(spec, r.maxMs!), vsScorchCpu: 10 / ms };
  };
  const matmul: CaseResult = {
    spec,
    loadAverage: 1.5,
    reference: { by: 'scorch-float64', value: [1], valueMs: 1, scale: 1 },
    rows: [
      timed('scorch-cpu', 10),
      { ...timed('scorch-webgpu', 5), counters: { dispatches: 1, submits: 1 } },
      { engine: 'tfjs-cpu', status: 'mismatch', reason: 'value relative error 2.00e-2 > 0.0001; not timed', check: { ok: false, error: 0.02, rtol: 1e-4 } },
      { engine: 'tfjs-wasm', status: 'skipped', reason: 'a warm-up step took 9.0 s, over this mode’s 1.0 s limit' },
      row('torch-cuda', undefined),
    ],
  };
  const engines: SuiteResults['engines'] = (['scorch-cpu', 'scorch-webgpu', 'tfjs-cpu', 'tfjs-wasm', 'torch-cuda'] as EngineId[]).map((id) =>
    id === 'torch-cuda'
      ? { id, label: ENGINES[id].label, kind: ENGINES[id].kind, available: false, reason: 'not installed here' }
      : { id, label: ENGINES[id].label, kind: ENGINES[id].kind, available: true, version: '1.0', backend: 'cpu', threads: 1 },
  );
  return {
    schema: SCHEMA,
    date: '2026-12-01T10:00:00.000Z',
    mode: 'quick',
    complete: true,
    commit: 'abc1234',
    command: 'pnpm bench --quick',
    durationS: 12.5,
    machine: { name: 'test-2cpu', hostname: 'test', cpu: 'Some <CPU>', cores: 2, memoryGiB: 8, os: 'Linux', node: 'v20', loadAverageStart: [1, 1, 1], loadAverageEnd: [2, 2, 2] },
    gpu: { nvidia: false, detail: 'no NVIDIA GPU at hand' },
    method: { warmup: 1, reps: 5, slowStepMs: 1000, maxStepMs: 1000, maxScorchStepMs: 4000, statistic: 'median', interleaved: 'rounds', reference: 'float64' },
    engines,
    workloads: [{ ...WORKLOADS.matmul, tolerance: TOLERANCES.matmul }],
    cases: [matmul],
    growth: [],
  };
}

/**
 * The made-up run as one that may be the record (latestRefusal): a full run, and its mismatching
 * row a skipped one.
 */
function madeUpRecord(): SuiteResults {
  const results = madeUpResults();
  const rows = results.cases[0]!.rows.map((r): Row => (r.status === 'mismatch' ? { engine: r.engine, status: 'skipped', reason: 'over the limit' } : r));
  return { ...results, mode: 'full', command: 'pnpm bench', method: { ...results.method, reps: 7 }, cases: [{ ...results.cases[0]!, rows }] };
}

/** `results` as a run made with `--relaxed-simd` records itself, its Node engines started with `nodeFlags`. */
function forcedRelaxed(results: SuiteResults, nodeFlags = [RELAXED_SIMD_FLAG]): SuiteResults {
  return { ...results, method: { ...results.method, relaxedSimd: { nodeFlags } } };
}

describe('tables', () => {
  const results = madeUpResults();

  it('give every engine a row, with a figure and ratios or the reason it has none', () => {
    const table = caseTable(results, results.cases[0]!);
    expect(table.header).toEqual(['engine', 'GFLOP/s', 'range', 'vs scorch CPU', 'vs scorch WebGPU', 'check', 'notes']);
    expect(table.rows.map((r) => r[0])).toEqual(['scorch CPU', 'scorch WebGPU', 'TF.js cpu', 'TF.js wasm', 'PyTorch CUDA (NVIDIA GPU)']);
    // 2·256³ flops in 10 ms is 3.36 GFLOP/s; in 5 ms twice that, and twice scorch CPU's speed.
    expect(table.rows[0]!.slice(1, 4)).toEqual(['3.36', '2.80–3.73', '1×']);
    expect(table.rows[1]!.slice(1, 4)).toEqual(['6.71', '5.59–7.46', '2×']);
    expect(table.rows[1]![6]).toBe('per step: 1 dispatches, 1 submits');
    expect(table.rows[2]!.slice(1)).toEqual(['—', '', '', '', 'MISMATCH 2.0e-2', 'mismatch: value relative error 2.00e-2 > 0.0001; not timed']);
    expect(table.rows[3]![6]).toBe('skipped: a warm-up step took 9.0 s, over this mode’s 1.0 s limit');
    expect(table.rows[4]![6]).toBe('not run: not installed here');
  });

  it('render as aligned text and as Markdown with one cell per column', () => {
    const lines = textReport(results);
    expect(lines[0]).toBe('scorch benchmark suite: 2026-12-01, scorch abc1234, on test-2cpu (Some <CPU>, 2 cores, 8 GiB, Node v20), quick run of 12.5 s, load average 1 1 1 → 2 2 2');
    expect(lines).toContain('W1 matmul, n=256 — GFLOP/s, higher is better; load 1.50');
    const markdown = renderMarkdown(caseTable(results, results.cases[0]!));
    for (const line of markdown) expect(line.split(' | ')).toHaveLength(7);
    expect(markdown[1]).toBe('| --- | ---: | ---: | ---: | ---: | --- | --- |');
    const summary = markdownSummary(results);
    expect(summary).toContain('| W1 matmul, n=256 | GFLOP/s ↑ | 3.36 | 6.71 | mismatch | skipped |');
    expect(summary).toContain('- PyTorch CUDA (NVIDIA GPU): not run: not installed here');
  });

  it("put each engine's figure under its own name in the summary when an engine listed before it did not run", () => {
    // TF.js cpu not installed: the summary drops its column, and the columns after it must still
    // hold their own engines' cells (found by engine, not by position among the engines).
    const base = madeUpResults();
    const gap: SuiteResults = {
      ...base,
      engines: base.engines.map((e) => (e.id === 'tfjs-cpu' ? { id: e.id, label: e.label, kind: e.kind, available: false, reason: 'not installed here' } : e)),
      cases: [{ ...base.cases[0]!, rows: base.cases[0]!.rows.map((r) => (r.engine === 'tfjs-cpu' ? row('tfjs-cpu', undefined) : r)) }],
    };
    expect(summaryTable(gap).header).toEqual(['workload', 'unit', 'scorch CPU', 'scorch WebGPU', 'TF.js wasm']);
    expect(markdownSummary(gap)).toContain('| W1 matmul, n=256 | GFLOP/s ↑ | 3.36 | 6.71 | skipped |');
  });

  it("give every engine that ran a row in W4's growth table, with its exponent or the sizes it was timed at", () => {
    // W4 at d = 2 and 8: scorch CPU timed at both, TF.js wasm at d = 2 only (over the limit at 8),
    // TF.js cpu at neither (a mismatch). Only scorch CPU has an exponent; the others were left out
    // of the table without a word, as if they had not been part of the run.
    const base = madeUpResults();
    const ismCase = (dim: number, wasm: Row): CaseResult => ({
      spec: ismCaseOf(dim),
      loadAverage: 1,
      reference: { by: 'scorch-float64', value: [1, 0.5], valueMs: 1, scale: 1 },
      rows: [row('scorch-cpu', 4 * dim), row('scorch-webgpu', 8 * dim), { engine: 'tfjs-cpu', status: 'mismatch', reason: 'value off; not timed' }, wasm, row('torch-cuda', undefined)],
    });
    const results: SuiteResults = {
      ...base,
      cases: [ismCase(2, row('tfjs-wasm', 30)), ismCase(8, { engine: 'tfjs-wasm', status: 'skipped', reason: 'a step would take about 9.0 s' })],
      growth: [{ engine: 'scorch-cpu', exponent: 1, dims: [2, 8] }, { engine: 'scorch-webgpu', exponent: 1, dims: [2, 8] }],
    };
    const table = growthTable(results)!;
    expect(table.rows).toEqual([
      ['scorch CPU', '1.00', '2, 8'],
      ['scorch WebGPU', '1.00', '2, 8'],
      ['TF.js cpu', '—', 'not timed at any d'],
      ['TF.js wasm', '—', 'timed at d = 2 only'],
    ]);
    expect(textReport(results)).toContain('W4 exact ISM: growth of the step time in d');
    // A run without W4 at two sizes has no growth to show.
    expect(growthTable(base)).toBeUndefined();
  });

  it('format numbers to three significant digits', () => {
    expect([123456.7, 512, 99.94, 1.234, 0.012345, 7].map(formatNumber)).toEqual(['123,457', '512', '99.9', '1.23', '0.0123', '7']);
    // Values that round up into the next decade take its format: not '100.0', '10.00' or '1000'
    // (four digits, and 999.7 not grouped where 1000.4 is).
    expect([99.96, 9.996, 999.7, -99.96, 0.99996, 1000.4].map(formatNumber)).toEqual(['100', '10.0', '1,000', '-100', '1.00', '1,000']);
  });
});

describe('the results file and chart', () => {
  it('round-trips through JSON and names runs by date, machine, mode and relaxed SIMD', () => {
    const results = madeUpResults();
    const files = writeResults(results, '<svg/>', scratch);
    expect(files.json).toBe(join(scratch, '2026-12-01-test-2cpu-quick.json'));
    expect(readResults(files.json)).toEqual(results);
    expect(runStem({ ...results, mode: 'full' })).toBe('2026-12-01-test-2cpu');
    // A run with relaxed SIMD forced on is named apart from the record.
    const relaxed = forcedRelaxed({ ...results, mode: 'full' });
    expect(runStem(relaxed)).toBe('2026-12-01-test-2cpu-relaxed-simd');
    const record = madeUpRecord();
    expect(readResults(writeResults(record, '<svg/>', mkdtempSync(join(scratch, 'record-'))).latest!.json)).toEqual(record);
    const wrong = join(scratch, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ ...results, schema: 'other' }));
    expect(() => readResults(wrong)).toThrow(`expected schema '${SCHEMA}', got "other"`);
    expect(() => readResults(join(scratch, 'none.json'))).toThrow('run pnpm bench');
  });

  it('read back a mismatch whose error is not finite, and print it', () => {
    // compareValues gives Infinity for a value that is not finite; JSON writes it as null, and
    // the report read back from the file called null.toExponential.
    const results = madeUpResults();
    const notFinite: Row = { engine: 'tfjs-cpu', status: 'mismatch', reason: 'value a value is not finite; not timed', check: { ok: false, error: null, rtol: 1e-4 } };
    const run = { ...results, cases: [{ ...results.cases[0]!, rows: results.cases[0]!.rows.map((r) => (r.engine === 'tfjs-cpu' ? notFinite : r)) }] };
    const files = writeResults(run, '<svg/>', mkdtempSync(join(scratch, 'not-finite-')));
    const read = readResults(files.json);
    expect(read.cases[0]!.rows.find((r) => r.engine === 'tfjs-cpu')!.check).toEqual({ ok: false, error: null, rtol: 1e-4 });
    expect(textReport(read).some((line) => line.includes('MISMATCH not finite'))).toBe(true);
    expect(textReport(read)).toEqual(textReport(run));
    // A file that is not JSON says which file.
    const broken = join(scratch, 'broken.json');
    writeFileSync(broken, '{"schema": NaN}');
    expect(() => readResults(broken)).toThrow(`${broken}: not a results file: `);
  });

  it('write a second run of the day beside the first, not over it', () => {
    const results = madeUpRecord();
    const dir = mkdtempSync(join(scratch, 'same-day-'));
    const later = { ...results, durationS: results.durationS + 1 };
    const names = [results, later, later].map((r) => writeResults(r, '<svg/>', dir).json);
    expect(names).toEqual(['', '-2', '-3'].map((n) => join(dir, `2026-12-01-test-2cpu${n}.json`)));
    expect(readResults(names[0]!)).toEqual(results);
    expect(readResults(names[1]!)).toEqual(later);
    expect(readResults(join(dir, 'latest.json'))).toEqual(later);
  });

  it('say in the run line when the Node engines had relaxed SIMD, forced on or by default', () => {
    const results = madeUpRecord();
    expect(runLine(results)).not.toContain('relaxed SIMD');
    const withEngines = (relaxedSimd: boolean) => ({ ...results, engines: results.engines.map((e) => (e.available ? { ...e, relaxedSimd } : e)) });
    expect(runLine(withEngines(false))).not.toContain('relaxed SIMD');
    // The browser rows have it from Chromium: that says nothing about the Node engines.
    const browserRow = { ...withEngines(false).engines.find((e) => e.id === 'scorch-cpu')!, id: 'scorch-cpu-chromium' as const, label: ENGINES['scorch-cpu-chromium'].label, relaxedSimd: true };
    expect(ENGINES[browserRow.id].chromiumPage).toEqual({ engine: 'scorch', threads: 1 });
    expect(runLine({ ...withEngines(false), engines: [...withEngines(false).engines, browserRow] })).not.toContain('relaxed SIMD');
    // A Node where it is on by default (22 and later): a plain run, which may be the record, says so.
    expect(latestRefusal(withEngines(true))).toBeUndefined();
    expect(runLine(withEngines(true))).toContain(' run with relaxed SIMD on by default in its Node engines of');
    const forced = forcedRelaxed(withEngines(true));
    expect(runLine(forced)).toContain(`run with relaxed SIMD on in every Node engine (${RELAXED_SIMD_FLAG}) of`);
  });

  it('become latest.json only when complete, full, made without --relaxed-simd, every worker started and no row failed', () => {
    const results = madeUpRecord();
    expect(latestRefusal(results)).toBeUndefined();
    // A quick run (the README's try-out) replaced the full run's figures in the READMEs.
    expect(latestRefusal(madeUpResults())).toBe('a quick run (--quick): smaller sizes and fewer steps than a full run');
    // A full run with other repetitions than the plan's: the READMEs say 'the median of 7'.
    expect(latestRefusal({ ...results, method: { ...results.method, reps: 5 } })).toBe("a run with --reps 5: the record's figures are medians of 7");
    // A worker that failed to start was recorded as 'unavailable', as an engine that cannot run
    // here is, and the run became the record (exit 0) with that engine missing.
    const broken = { ...results, engines: results.engines.map((e) => (e.id === 'tfjs-cpu' ? { ...e, available: false, reason: 'its worker could not start: ENOENT', workerFailed: true } : e)) };
    expect(latestRefusal(broken)).toBe('the worker of tfjs-cpu failed to start or to answer (see its row)');
    // A mismatch or an error has no figure: the record would show a hole where a figure was.
    const withRow = (failed: Row): SuiteResults => ({ ...results, cases: [{ ...results.cases[0]!, rows: results.cases[0]!.rows.map((r) => (r.engine === failed.engine ? failed : r)) }] });
    expect(latestRefusal(withRow({ engine: 'tfjs-cpu', status: 'mismatch', reason: 'value a value is not finite; not timed', check: { ok: false, error: null, rtol: 1e-4 } }))).toBe('1 row(s) failed (matmul-256/tfjs-cpu)');
    expect(latestRefusal(withRow({ engine: 'scorch-webgpu', status: 'error', reason: 'its worker died' }))).toBe('1 row(s) failed (matmul-256/scorch-webgpu)');
    const relaxed = forcedRelaxed(results);
    expect(latestRefusal(relaxed)).toBe('relaxed SIMD was forced on (--relaxed-simd)');
    // Relaxed SIMD with this Node's default (no flags) is still forced on.
    expect(latestRefusal(forcedRelaxed(results, []))).toBe('relaxed SIMD was forced on (--relaxed-simd)');
    expect(latestRefusal({ ...results, complete: false })).toBe('a partial run (--workloads or --engines)');
    // writeResults holds to it: such a run is written under its own name only, saying why.
    const dir = mkdtempSync(join(scratch, 'latest-'));
    const files = writeResults(relaxed, '<svg/>', dir);
    expect(files.refusal).toBe('relaxed SIMD was forced on (--relaxed-simd)');
    expect(files.latest).toBeUndefined();
    expect(existsSync(files.json)).toBe(true);
    expect(existsSync(join(dir, 'latest.json'))).toBe(false);
  });

  it('refuse to read a malformed results file, saying what it lacks', () => {
    // Files that do not say whether the run was complete or how it was made: never read, so never
    // the record.
    const results = madeUpResults();
    const cases: [unknown, string][] = [
      [{ ...results, complete: undefined }, "the results have no 'complete'"],
      [{ ...results, complete: 'true' }, "'complete' is string, expected boolean"],
      [{ ...results, method: undefined }, "the results have no 'method'"],
      [{ ...results, method: [] }, "'method' is array, expected object"],
      [{ ...results, method: { ...results.method, relaxedSimd: null } }, "'method.relaxedSimd' is null, neither absent nor { nodeFlags }"],
      [null, 'expected a results object, got null'],
      [[results], 'expected a results object, got array'],
    ];
    for (const [i, [malformed, reason]] of cases.entries()) {
      const path = join(scratch, `malformed-${i}.json`);
      writeFileSync(path, JSON.stringify(malformed));
      expect(() => readResults(path), path).toThrow(`${path}: ${reason}`);
    }
  });

  it('rewrite the README blocks between their markers, keeping the text around them once', () => {
    const root = mkdtempSync(join(scratch, 'readmes-'));
    mkdirSync(join(root, 'benchmarks'));
    for (const block of README_BLOCKS) writeFileSync(join(root, block.file), `before\n<!-- ${block.name}:start -->\nOLD TABLE\n<!-- ${block.name}:end -->\nafter\n`);
    const results = madeUpResults();
    expect(updateReadmes(root, results)).toEqual(README_BLOCKS.map((b) => b.file));
    for (const block of README_BLOCKS) {
      const text = readFileSync(join(root, block.file), 'utf8');
      expect(text).not.toContain('OLD TABLE');
      expect(text.split(`<!-- ${block.name}:end -->`)).toHaveLength(2);
      expect(text.startsWith(`before\n<!-- ${block.name}:start -->`)).toBe(true);
      expect(text.endsWith(`<!-- ${block.name}:end -->\nafter\n`)).toBe(true);
      expect(readBlock(text, block.name, block.file)).toBe(expectedBlock(block, results));
    }
    // The same results again change nothing.
    expect(updateReadmes(root, results)).toEqual([]);
  });

  it('draws one bar per timed engine, escaping text', () => {
    const svg = renderChart(madeUpResults());
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<rect x=/g)).toHaveLength(2);
    // Bars on a log scale of the speed relative to scorch CPU: scorch WebGPU's (2×) is the longer,
    // and each is labelled with its figure and that ratio.
    const widths = [...svg.matchAll(/<rect x="[^"]+" y="[^"]+" width="([^"]+)"/g)].map((m) => Number(m[1]));
    expect(widths[1]!).toBeGreaterThan(widths[0]!);
    expect(svg).toContain('>3.36 (1×)<');
    expect(svg).toContain('>6.71 (2×)<');
    expect(svg).toContain('>mismatch<');
    expect(svg).toContain('>not run<');
    expect(svg).not.toContain('<CPU>');
  });
});
