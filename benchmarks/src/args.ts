// `pnpm bench`'s command line: the flags bench.ts accepts, read into `Args`, and the usage line.
// Kept apart from bench.ts (which runs the suite when it is loaded) so that tests can call it.

import { ENGINE_IDS, type EngineId } from './engines.js';
import { MIN_REPS, WORKLOAD_IDS, type WorkloadId } from './workloads.js';

export const USAGE = 'usage: pnpm bench [--quick] [--workloads LIST] [--engines LIST] [--reps N] [--relaxed-simd] | --show [FILE] | --rerender | --list';

/** A command line bench.ts refuses: it prints the message and the usage line, and exits with status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function parseList<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T[] {
  if (!value) throw new UsageError(`${flag} needs a comma-separated list of ${allowed.join(', ')}`);
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  // Only commas and spaces: a run of no engine or no workload, which would time nothing and exit 0.
  if (items.length === 0) throw new UsageError(`${flag} names nothing in '${value}': expected a comma-separated list of some of ${allowed.join(', ')}`);
  items.forEach((item, k) => {
    if (!(allowed as readonly string[]).includes(item)) throw new UsageError(`${flag}: unknown '${item}'; expected some of ${allowed.join(', ')}`);
    // An engine named twice gets two workers, two rows and two steps a round (twice the samples).
    if (items.indexOf(item) !== k) throw new UsageError(`${flag} names '${item}' twice; name each once`);
  });
  return items as T[];
}

/** The flags that take no value. */
const SWITCHES: readonly string[] = ['--quick', '--relaxed-simd', '--list', '--rerender', '--help', '-h'];

/** The flags that do something else instead of a run, and what. */
const COMMANDS: Record<string, string> = {
  '--show': 'prints a results file',
  '--rerender': 'rewrites the charts and READMEs',
  '--list': 'lists the workloads and engines',
};

/** The flags that shape a run. */
const RUN_FLAGS: readonly string[] = ['--quick', '--workloads', '--engines', '--reps', '--relaxed-simd'];

/** What the command line asks for. */
export interface Args {
  quick: boolean;
  workloads?: WorkloadId[];
  engines?: EngineId[];
  reps?: number;
  /** Print a results file (true: latest.json) instead of running. */
  show?: string | true;
  rerender: boolean;
  list: boolean;
  relaxedSimd: boolean;
  /** --help or -h: print the usage line and exit (the arguments after it are not read). */
  help: boolean;
}

/** Reads bench.ts's arguments (process.argv without node and the script); throws a UsageError saying what is wrong. */
export function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, rerender: false, list: false, relaxedSimd: false, help: false };
  const given: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i];
    // A switch given a value (--relaxed-simd=false) would have it dropped: refused instead.
    if (inline !== undefined && SWITCHES.includes(flag)) throw new UsageError(`${flag} takes no value, got '${argv[i]}'`);
    // A flag given again would override the first (a list replaced, not extended).
    if (given.includes(flag)) {
      const list = flag === '--workloads' || flag === '--engines' ? ` (a list takes several items: ${flag} a,b)` : '';
      throw new UsageError(`${flag} is given twice; give it once${list}`);
    }
    given.push(flag);
    switch (flag) {
      case '--quick':
        args.quick = true;
        break;
      case '--workloads':
        args.workloads = parseList(flag, value(), WORKLOAD_IDS);
        break;
      case '--engines':
        args.engines = parseList(flag, value(), ENGINE_IDS);
        break;
      case '--reps': {
        const raw = value();
        if (raw === undefined || raw === '') throw new UsageError(`--reps needs a number, an integer >= ${MIN_REPS}`);
        // Digits only: Number() would also take '0x10', '1e1' and ' 7 '.
        const n = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
        if (!Number.isInteger(n) || n < MIN_REPS) throw new UsageError(`--reps must be an integer >= ${MIN_REPS} (medians of at least ${MIN_REPS} runs), got ${argv[i]}`);
        args.reps = n;
        break;
      }
      case '--show': {
        // The file is optional: a next argument that is a flag (-h, --quick) is not taken for one.
        const next = inline ?? (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-') ? argv[++i] : undefined);
        // '--show=' would read as no file, and bench.ts would run the suite instead of printing.
        if (next === '') throw new UsageError(`--show takes a results file or nothing (latest.json), got an empty name`);
        args.show = next ?? true;
        break;
      }
      case '--relaxed-simd':
        args.relaxedSimd = true;
        break;
      case '--list':
        args.list = true;
        break;
      case '--rerender':
        args.rerender = true;
        break;
      case '--help':
      case '-h':
        // The usage line, whatever else is given (bench.ts prints it and exits).
        return { ...args, help: true };
      default:
        throw new UsageError(`unknown argument '${argv[i]}'`);
    }
  }
  // --show, --rerender and --list each run instead of the suite: with two, or with a run's flags,
  // bench.ts would do one thing and drop the rest without a word.
  const commands = given.filter((flag) => flag in COMMANDS);
  if (commands.length > 1) throw new UsageError(`${commands[0]} and ${commands[1]} are two commands; give one`);
  const command = commands[0];
  const dropped = command && given.find((flag) => RUN_FLAGS.includes(flag));
  if (command && dropped) throw new UsageError(`${dropped} does nothing with ${command}, which ${COMMANDS[command]} without running the suite`);
  return args;
}
