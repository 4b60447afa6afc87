// `pnpm bench`'s command line (src/args.ts): what each flag sets, and the clear error a command
// line it refuses gets (bench.ts prints it with the usage line and exits with status 2).

import { describe, expect, it } from 'vitest';
import { UsageError, parseArgs } from '../src/args.js';
import { MIN_REPS } from '../src/workloads.js';

/** The UsageError `argv` is refused with (failing the test if it is accepted). */
function refusal(argv: string[]): string {
  try {
    parseArgs(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

describe('the command line', () => {
  it('reads a run\'s flags, with a value after the flag or after =', () => {
    expect(parseArgs([])).toEqual({ quick: false, rerender: false, list: false, relaxedSimd: false, help: false });
    expect(parseArgs(['--quick', '--workloads', 'matmul,dsm', '--engines=scorch-cpu, torch-cpu-1t', '--reps=9', '--relaxed-simd'])).toEqual({
      quick: true, rerender: false, list: false, relaxedSimd: true, help: false,
      workloads: ['matmul', 'dsm'], engines: ['scorch-cpu', 'torch-cpu-1t'], reps: 9,
    });
    expect(parseArgs(['--show']).show).toBe(true);
    expect(parseArgs(['--show', 'run.json']).show).toBe('run.json');
    expect(parseArgs(['--help', '--bogus']).help).toBe(true);
  });

  it('refuses unknown arguments and values, saying what was expected', () => {
    expect(refusal(['--bogus'])).toBe("unknown argument '--bogus'");
    expect(refusal(['--workloads', 'matmul,gemm'])).toMatch(/^--workloads: unknown 'gemm'; expected some of matmul, ssmvr, /);
    expect(refusal(['--engines'])).toMatch(/^--engines needs a comma-separated list of scorch-cpu, /);
    expect(refusal(['--reps', '3'])).toBe(`--reps must be an integer >= ${MIN_REPS} (medians of at least ${MIN_REPS} runs), got 3`);
    expect(refusal(['--reps=7.5'])).toMatch(/^--reps must be an integer >= 5 .*, got --reps=7\.5$/);
  });

  it('refuses a value given to a switch, which would otherwise be dropped', () => {
    // --relaxed-simd=false read as --relaxed-simd would run with relaxed SIMD forced on; --quick=no
    // would run the quick plan.
    for (const flag of ['--quick', '--relaxed-simd', '--list', '--rerender', '--help', '-h']) {
      for (const value of ['false', 'no', '']) expect(refusal([`${flag}=${value}`])).toBe(`${flag} takes no value, got '${flag}=${value}'`);
    }
  });

  it('refuses a list that names nothing, which would run no engine or no workload', () => {
    expect(refusal(['--engines', ','])).toMatch(/^--engines names nothing in ',': expected a comma-separated list of some of scorch-cpu, /);
    expect(refusal(['--workloads= , '])).toMatch(/^--workloads names nothing in ' , ': expected a comma-separated list of some of matmul, /);
  });

  it('refuses flags that the command given would drop: a run\'s flags with --show, --rerender or --list, two of those, a flag twice', () => {
    // --show prints a file and runs nothing: '--show --quick' showed latest.json, a full run's.
    expect(refusal(['--show', '--quick'])).toBe('--quick does nothing with --show, which prints a results file without running the suite');
    expect(refusal(['--rerender', '--engines', 'scorch-cpu'])).toBe('--engines does nothing with --rerender, which rewrites the charts and READMEs without running the suite');
    expect(refusal(['--reps', '9', '--list'])).toBe('--reps does nothing with --list, which lists the workloads and engines without running the suite');
    expect(refusal(['--list', '--relaxed-simd'])).toBe('--relaxed-simd does nothing with --list, which lists the workloads and engines without running the suite');
    // Only one of them ran (--list, then --rerender, then --show), the others silently not.
    expect(refusal(['--show', '--rerender'])).toBe('--show and --rerender are two commands; give one');
    expect(refusal(['--list', '--show', 'x.json'])).toBe('--list and --show are two commands; give one');
    // The later one won: --workloads matmul --workloads dsm ran W3 alone.
    expect(refusal(['--workloads', 'matmul', '--workloads=dsm'])).toBe('--workloads is given twice; give it once (a list takes several items: --workloads a,b)');
    expect(refusal(['--reps', '7', '--reps', '9'])).toBe('--reps is given twice; give it once');
    expect(refusal(['--quick', '--quick'])).toBe('--quick is given twice; give it once');
    // A missing number says so, rather than 'got undefined'.
    expect(refusal(['--quick', '--reps'])).toBe(`--reps needs a number, an integer >= ${MIN_REPS}`);
  });

  it('refuses a --reps that is not written in digits, which Number() would have read', () => {
    for (const raw of ['0x10', '1e1', ' 7 ', '+9', '9.0']) expect(refusal(['--reps', raw])).toBe(`--reps must be an integer >= ${MIN_REPS} (medians of at least ${MIN_REPS} runs), got ${raw}`);
    expect(parseArgs(['--reps', '07']).reps).toBe(7);
  });

  it('reads --show\'s file only where one is given: an empty name is refused, a flag after it is a flag', () => {
    // '--show=' read as no file made bench.ts run the whole suite, which then replaced latest.json.
    expect(refusal(['--show='])).toBe('--show takes a results file or nothing (latest.json), got an empty name');
    // '--show -h' read -h as a file name.
    expect(parseArgs(['--show', '-h']).help).toBe(true);
    expect(parseArgs(['--show=-odd.json']).show).toBe('-odd.json');
  });

  it('refuses a list that names an item twice', () => {
    // '--engines scorch-cpu,scorch-cpu' started two workers, printed the row twice and timed the
    // engine twice a round: medians of 10 samples where the plan says 5.
    expect(refusal(['--engines', 'scorch-cpu,tfjs-wasm, scorch-cpu'])).toBe("--engines names 'scorch-cpu' twice; name each once");
    expect(refusal(['--workloads=dsm,dsm'])).toBe("--workloads names 'dsm' twice; name each once");
  });
});
