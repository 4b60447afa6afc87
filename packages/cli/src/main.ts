// Entry point of the `scorch` command: picks the command, parses its flags, runs it, and turns
// failures into exit statuses — 2 with one line on stderr for a usage mistake (a bad flag or
// value, an output directory that is not empty), 1 with one line for a failure while running
// (set SCORCH_DEBUG=1 for the stack).

import { type CommandSpec, type FlagValue, UsageError, commandHelp, didYouMean, parseArgs } from './args.js';
import { BENCH_SPEC, runBench } from './bench.js';
import { type Io, processIo } from './io.js';
import { SAMPLE_SPEC, runSample } from './sample.js';
import { DEMO_SPEC, TRAIN_SPEC, runTrain } from './train.js';

interface Command {
  readonly spec: CommandSpec;
  run(values: Readonly<Record<string, FlagValue>>, given: ReadonlySet<string>, io: Io): Promise<number>;
}

const COMMANDS: readonly Command[] = [
  { spec: DEMO_SPEC, run: (v, g, io) => runTrain('demo', v, g, io) },
  { spec: TRAIN_SPEC, run: (v, g, io) => runTrain('train', v, g, io) },
  { spec: SAMPLE_SPEC, run: runSample },
  { spec: BENCH_SPEC, run: runBench },
];

const commandNames = () => COMMANDS.map((c) => c.spec.name).join(', ');

export function topLevelHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length));
  return [
    'scorch — score matching on an autodiff tensor engine with WebGPU kernels',
    '',
    'Usage: scorch <command> [flags]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary}`),
    '',
    "Run 'scorch <command> --help' for a command's flags and their defaults.",
  ].join('\n');
}

/** Runs the CLI on `argv` (the arguments after `scorch`) and returns the exit status. */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  // A leading bare `--` is what `pnpm scorch -- train …` passes on (pnpm, unlike npm, keeps it);
  // it separates nothing here, as parseArgs treats one among a command's flags.
  const [name, ...rest] = argv[0] === '--' ? argv.slice(1) : argv;
  let where = 'scorch';
  try {
    if (name === undefined) throw new UsageError(`scorch: missing command; expected one of ${commandNames()} (scorch --help describes them)`);
    if (name === '--help' || name === '-h' || name === 'help') {
      // `scorch help <command>`, `scorch --help <command>` and `-h <command>` take one command
      // name: more is a mistake, as a stray argument is elsewhere. (--help and -h dropped the
      // name and printed the top-level help.)
      const topic = rest[0];
      if (rest.length > 1) {
        throw new UsageError(`scorch ${name}: unexpected argument ${JSON.stringify(rest[1])}; expected one command name at most (scorch ${name} <command>)`);
      }
      const command = topic === undefined ? undefined : COMMANDS.find((c) => c.spec.name === topic);
      if (topic !== undefined && !command) throw new UsageError(`scorch ${name}: unknown command ${JSON.stringify(topic)}${didYouMean(topic, COMMANDS.map((c) => c.spec.name))}; expected one of ${commandNames()}`);
      io.out(command ? commandHelp(command.spec) : topLevelHelp());
      return 0;
    }
    const command = COMMANDS.find((c) => c.spec.name === name);
    if (!command) {
      const hint = name.startsWith('-') ? 'a command comes first, then its flags' : `scorch --help describes them`;
      throw new UsageError(`scorch: unknown command ${JSON.stringify(name)}${didYouMean(name, COMMANDS.map((c) => c.spec.name))}; expected one of ${commandNames()} (${hint})`);
    }
    where = `scorch ${name}`;
    const parsed = parseArgs(command.spec, rest);
    if (parsed.help) {
      io.out(commandHelp(command.spec));
      return 0;
    }
    return await command.run(parsed.values, parsed.given, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(e.message);
      return 2;
    }
    const error = e as Error;
    const message = (error?.message ?? String(e)).split('\n')[0];
    io.err(`${where}: ${message}`);
    if (process.env.SCORCH_DEBUG) io.err(error?.stack ?? '');
    return 1;
  }
}
