// The CLI's helpers in process (progress.ts, limits.ts, flags.ts, io.ts, main.ts): the progress
// line's arithmetic under a fixed clock, the sampler flags' least values, the output sink's pipe
// handling, the top-level help and the failure line. Two library entry points can be made to fail
// on demand to reach the error paths. selectBackend's own tests are in backend.test.ts.

import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockInstance, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const hooks = vi.hoisted(() => ({ dsmFailure: undefined as Error | undefined, benchFailure: undefined as Error | undefined, suiteStatus: undefined as number | undefined }));
vi.mock('@scorch/score', async (importOriginal) => {
  const real = await importOriginal<typeof import('@scorch/score')>();
  return {
    ...real,
    denoisingScoreMatchingLoss: (...args: Parameters<typeof real.denoisingScoreMatchingLoss>) => {
      if (hooks.dsmFailure) throw hooks.dsmFailure;
      return real.denoisingScoreMatchingLoss(...args);
    },
  };
});
// When suiteStatus is set, the benchmark suite's process (bench.ts's runSuite) is not started: it
// "exits" with that status and a line on stderr.
vi.mock('node:child_process', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:child_process')>();
  const spawnSync = ((...args: Parameters<typeof real.spawnSync>) =>
    hooks.suiteStatus === undefined ? real.spawnSync(...args) : { status: hooks.suiteStatus, stdout: '', stderr: 'suite failed (test)\n' }) as typeof real.spawnSync;
  return { ...real, spawnSync, default: { ...real, spawnSync } };
});
vi.mock('../src/bench.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/bench.js')>();
  return {
    ...real,
    runBench: (...args: Parameters<typeof real.runBench>) => {
      if (hooks.benchFailure) return Promise.reject(hooks.benchFailure);
      return real.runBench(...args);
    },
  };
});

const { memory } = await import('@scorch/tensor');
const { noiseFor } = await import('@scorch/score');
const { UsageError, parseArgs } = await import('../src/args.js');
const { closableSink } = await import('../src/io.js');
const { checkDsmSigma, checkSampleSteps } = await import('../src/limits.js');
const { topLevelHelp } = await import('../src/main.js');
const { Progress, formatDuration } = await import('../src/progress.js');
const { SAMPLE_SPEC } = await import('../src/sample.js');
const { TRAIN_SPEC } = await import('../src/train.js');
const { runMain } = await import('./runMain.js');

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('progress display', () => {
  // The clock is fixed, as in cli.test.ts: 10 s for 500 of 1000 steps is 50.0 steps/s, ETA 0:10.
  let clock: MockInstance<() => number>;
  beforeEach(() => {
    clock = vi.spyOn(performance, 'now');
  });
  afterEach(() => clock.mockRestore());
  /** A Progress whose writes are kept, started at time 0 (ms). */
  const display = (total: number | undefined, sink: { isTTY?: boolean; columns?: number } = {}) => {
    const writes: string[] = [];
    clock.mockReturnValue(0);
    const bar = new Progress('train', total, { write: (s: string) => writes.push(s), ...sink });
    return { bar, writes };
  };

  it('rounds durations to the nearest second', () => {
    expect(formatDuration(59.6)).toBe('1:00');
    expect(formatDuration(3599.5)).toBe('1:00:00');
    expect(formatDuration(0.4)).toBe('0:00');
  });

  it('prints a loss of 0 as 0.0000, losses under 10⁻³ or from 10⁵ in exponent form, and keeps the last loss read', () => {
    const lossText = (loss: number) => {
      const { bar, writes } = display(1000);
      clock.mockReturnValue(10_000);
      bar.update(500, loss);
      bar.update(600); // no loss read at this step: the last one stays
      bar.finish();
      return writes.at(-1)!;
    };
    expect(lossText(0)).toContain(' · loss 0.0000 · ');
    expect(lossText(5e-4)).toContain(' · loss 5.000e-4 · ');
    expect(lossText(-2e-3)).toContain(' · loss -0.0020 · ');
    expect(lossText(123456)).toContain(' · loss 1.235e+5 · ');
    expect(lossText(99999)).toContain(' · loss 99999.0000 · ');
  });

  it('redraws a terminal bar at most every 100 ms, and always at the last step', () => {
    const { bar, writes } = display(1000, { isTTY: true });
    clock.mockReturnValue(10_000);
    bar.update(1);
    clock.mockReturnValue(10_050);
    bar.update(2); // 50 ms after the last draw: skipped
    clock.mockReturnValue(10_099);
    bar.update(3); // 99 ms: skipped
    clock.mockReturnValue(10_100);
    bar.update(4); // 100 ms: drawn
    clock.mockReturnValue(10_101);
    bar.update(1000); // the last step, 1 ms later: drawn
    expect(writes.map((w) => /(\d+)\/1000 steps/.exec(w)?.[1])).toEqual(['1', '4', '1000']);
  });

  it('ends a terminal bar with its final line drawn over it, once, however often finish is called', () => {
    const { bar, writes } = display(1000, { isTTY: true });
    clock.mockReturnValue(10_000);
    bar.update(500, -0.5);
    clock.mockReturnValue(20_000);
    bar.finish();
    bar.finish();
    expect(writes).toHaveLength(2);
    // 500 steps in 20 s: 25.0 steps/s; the final line clears the bar first.
    expect(writes[1]).toBe('\r\x1b[2Ktrain:  50% · 500/1000 steps · 25.0 steps/s · loss -0.5000 · ETA 0:20\n');
  });

  it('writes one plain line per 10% passed, however far apart the updates, and at exactly 30%, 60%, …', () => {
    // Jumps: 35% passes 10, 20 and 30% (one line), 36% passes nothing, 80% passes 40–80% (one line).
    const jumps = display(100);
    for (const step of [35, 36, 80]) jumps.bar.update(step);
    expect(jumps.writes.map((w) => /(\d+)\/100 steps/.exec(w)?.[1])).toEqual(['35', '80']);
    // Every step: the lines come at the tenths exactly, though 0.1 added up thrice is 0.30000000000000004.
    const steps = display(100);
    for (let step = 1; step < 100; step++) steps.bar.update(step);
    expect(steps.writes.map((w) => Number(/(\d+)\/100 steps/.exec(w)?.[1]))).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
  });

  it('draws a bar of 6, the narrowest, when that is all that fits', () => {
    // The full line is 95 characters (cli.test.ts); 78 columns leave 77: 18 fewer, a bar of 24 − 18 = 6, 3 filled.
    const { bar, writes } = display(1000, { isTTY: true, columns: 78 });
    clock.mockReturnValue(10_000);
    bar.update(500, -0.40654321);
    expect(writes[0]).toBe(`\r\x1b[2Ktrain [███░░░]  50% · 500/1000 steps · 50.0 steps/s · loss -0.4065 · ETA 0:10`);
    expect(writes[0]!.length - '\r\x1b[2K'.length).toBe(77);
  });

  it('draws the whole line when the terminal reports 0 columns (width unknown)', () => {
    const { bar, writes } = display(1000, { isTTY: true, columns: 0 });
    clock.mockReturnValue(10_000);
    bar.update(500, -0.40654321);
    expect(writes[0]).toBe(`\r\x1b[2Ktrain [${'█'.repeat(12)}${'░'.repeat(12)}]  50% · 500/1000 steps · 50.0 steps/s · loss -0.4065 · ETA 0:10`);
  });

  it('shows 100% for an empty run, never more than 100%, and 99% until the last step', () => {
    const empty = display(0);
    clock.mockReturnValue(1000);
    empty.bar.finish();
    expect(empty.writes).toEqual(['train: 100% · 0/0 steps · 0.0 steps/s · 0:01 elapsed\n']);
    const over = display(100, { isTTY: true });
    clock.mockReturnValue(10_000);
    over.bar.update(150);
    expect(over.writes[0]).toBe(`\r\x1b[2Ktrain [${'█'.repeat(24)}] 100% · 150/100 steps · 15.0 steps/s · 0:10 elapsed`);
    const almost = display(200);
    clock.mockReturnValue(10_000);
    almost.bar.update(199);
    almost.bar.finish();
    expect(almost.writes.at(-1)).toMatch(/^train:  99% · 199\/200 steps · /);
  });
});

describe('library limits checked before any work', () => {
  afterEach(() => {
    hooks.dsmFailure = undefined;
  });

  it('a failure of the library other than its refusal of a value is rethrown as it is, not taken for a usage error', async () => {
    const failure = new TypeError('something else went wrong');
    hooks.dsmFailure = failure;
    await expect(checkDsmSigma('w', 0.1)).rejects.toBe(failure);
  });

  it('the probes leave no tensor behind', async () => {
    const before = memory().tensors;
    await checkDsmSigma('w', 0.1);
    await expect(checkDsmSigma('w', 1e-300)).rejects.toThrow(UsageError);
    await checkSampleSteps('w', noiseFor('vp'), 'pc', 20);
    await expect(checkSampleSteps('w', noiseFor('vp'), 'pc', 3)).rejects.toThrow(UsageError);
    expect(memory().tensors).toBe(before);
  });
});

describe('shared flags', () => {
  it.each([
    [['--sample-steps', '0'], /^scorch train: --sample-steps must be a positive integer, got "0"$/],
    [['--steps-per-level', '0'], /^scorch train: --steps-per-level must be a positive integer, got "0"$/],
    [['--step-size', '0'], /^scorch train: --step-size must be a positive number, got "0"$/],
  ])('train %j → %s', (argv, pattern) => {
    expect(usageError(() => parseArgs(TRAIN_SPEC, argv))).toMatch(pattern);
  });

  it('takes the least values of the sampler flags', () => {
    expect(parseArgs(SAMPLE_SPEC, ['--checkpoint', 'x', '--sample-steps', '1', '--steps-per-level', '1', '--step-size', '1e-30']).values).toMatchObject({
      'sample-steps': 1, 'steps-per-level': 1, 'step-size': 1e-30,
    });
  });
});

describe('closableSink', () => {
  /** A stream that keeps what is written, as a terminal of `columns` columns. */
  const fakeStream = (columns: number) => {
    const written: string[] = [];
    const stream = Object.assign(new EventEmitter(), { isTTY: true, columns, write: (s: string) => written.push(s) > 0 });
    return { stream, written, sink: closableSink(stream as unknown as NodeJS.WritableStream & { isTTY: boolean; columns: number }) };
  };

  it("passes on the stream's isTTY and its current width (a terminal resized while running)", () => {
    const { stream, sink } = fakeStream(80);
    expect(sink.isTTY).toBe(true);
    expect(sink.columns).toBe(80);
    stream.columns = 120;
    expect(sink.columns).toBe(120);
  });

  it('drops writes once the reader closed the pipe (EPIPE), and rethrows any other stream error', () => {
    const { stream, written, sink } = fakeStream(80);
    sink.write('a');
    const other = Object.assign(new Error('write EIO'), { code: 'EIO' });
    expect(() => stream.emit('error', other)).toThrow(other);
    sink.write('b');
    stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    sink.write('c');
    expect(written).toEqual(['a', 'b']);
  });
});

describe('main', () => {
  afterEach(() => {
    hooks.benchFailure = undefined;
  });

  it('lines the command summaries up in one column in the top-level help', () => {
    const lines = topLevelHelp().split('\n').filter((l) => /^ {2}(demo|train|sample|bench) /.test(l));
    expect(lines).toHaveLength(4);
    // The longest name, 'sample', is 6 characters: every summary starts after 2 + 6 + 2 columns.
    for (const line of lines) expect(line.slice(10, 11)).not.toBe(' ');
    for (const line of lines) expect(line.slice(2, 10).trimEnd()).toMatch(/^(demo|train|sample|bench)$/);
  });

  it('an unknown command that looks like a flag, with one dash or two, says the command comes first', async () => {
    for (const arg of ['-n', '--n']) {
      const { code, stderr } = await runMain(arg, '5');
      expect(code).toBe(2);
      expect(stderr).toBe(`scorch: unknown command ${JSON.stringify(arg)}; expected one of demo, train, sample, bench (a command comes first, then its flags)\n`);
    }
  });

  it('a failure while running prints the first line of its message only, after the command, and exits 1', async () => {
    hooks.benchFailure = new Error('the first line\nthe second line');
    expect(await runMain('bench', '--suite', 'latest')).toEqual({ code: 1, stdout: '', stderr: 'scorch bench: the first line\n' });
  });
});

describe('scorch bench', () => {
  afterEach(() => {
    hooks.suiteStatus = undefined;
  });

  it("part 'score' gives train steps/s as 1000 / train ms/step", async () => {
    const r = await runMain('bench', '--suite', 'score', '--backend', 'cpu', '--steps', '2');
    expect(r.code).toBe(0);
    const row = /^ {2}cpu +([\d.e+-]+) +([\d.e+-]+) +([\d.e+-]+) +([\d.e+-]+)$/m.exec(r.stdout)!;
    const [msPerStep, stepsPerSecond] = [Number(row[2]), Number(row[3])];
    // Each is written to 4 significant digits (relative error at most 5e-4), so their product is
    // 1000 within (1 + 5e-4)² − 1 ≈ 1.0e-3 of it.
    expect(Math.abs((msPerStep * stepsPerSecond) / 1000 - 1)).toBeLessThanOrEqual(1.001e-3);
  });

  it("fails (exit status 1) when the suite's results cannot be shown", async () => {
    hooks.suiteStatus = 3;
    const r = await runMain('bench', '--suite', 'latest');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('suite failed (test)\n');
  });

  it('--trace naming an existing directory calls it a directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scorch-trace-dir-'));
    const r = await runMain('bench', '--profile', '--backend', 'cpu', '--trace', dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd()).toBe(`scorch bench: --trace ${dir}: ${dir} already exists; choose a new file name (or remove that directory first)`);
    expect(existsSync(dir)).toBe(true);
    rmSync(dir, { recursive: true });
  });
});
