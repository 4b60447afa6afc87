// A small command-line parser for the scorch CLI: each command declares its flags once (name,
// kind, default, where the default comes from), and that one table drives parsing, validation
// and --help. Every mistake becomes a UsageError carrying one line that says what was wrong and
// what was expected; main.ts prints it on stderr and exits with status 2.

import { editDistance } from '@scorch/tensor';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type FlagKind = 'string' | 'integer' | 'number' | 'boolean' | 'choice' | 'list';

export interface FlagSpec {
  /** Flag name without dashes: `steps` is given as `--steps 100` or `--steps=100`. */
  readonly name: string;
  readonly kind: FlagKind;
  /** What the value is, for --help: `N`, `DIR`, `NAME`. */
  readonly valueName?: string;
  readonly description: string;
  /** Allowed values of a 'choice' flag. */
  readonly choices?: readonly string[];
  /** The default value, used when the flag is absent; undefined means "decided at run time". */
  readonly default?: string | number | boolean | readonly number[];
  /** How --help describes the default when it is computed (e.g. "per loss: ald, langevin or pc"). */
  readonly defaultText?: string;
  /** Where the default comes from (a paper, a convention), shown in --help. */
  readonly source?: string;
  /** Smallest allowed value of an 'integer' or 'number' flag (and of each 'list' entry). */
  readonly min?: number;
  /** For 'number': whether `min` itself is excluded (e.g. a step size must be > 0). */
  readonly exclusiveMin?: boolean;
  /** Largest allowed value of an 'integer' or 'number' flag. */
  readonly max?: number;
  readonly required?: boolean;
}

export interface CommandSpec {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Paragraphs shown after the usage line in --help. */
  readonly details?: string;
  readonly flags: readonly FlagSpec[];
  /** Example invocations for --help. */
  readonly examples?: readonly string[];
}

export type FlagValue = string | number | boolean | number[] | undefined;

export interface ParsedArgs {
  /** True when -h or --help was given (nothing else is validated then). */
  readonly help: boolean;
  /** Flag values by name: given, or the default. */
  readonly values: Readonly<Record<string, FlagValue>>;
  /** Names of the flags the user gave explicitly. */
  readonly given: ReadonlySet<string>;
}

/** What a flag expects, in words, for error messages and help. */
export function expectation(flag: FlagSpec): string {
  const bound = (what: string) => {
    if (flag.min === undefined && flag.max === undefined) return what;
    if (flag.kind === 'integer' && flag.min === 1 && flag.max === undefined) return `a positive ${what.replace(/^an? /, '')}`;
    if (flag.kind === 'integer' && flag.min === 0 && flag.max === undefined) return `a non-negative ${what.replace(/^an? /, '')}`;
    if (flag.kind === 'number' && flag.min === 0 && flag.exclusiveMin && flag.max === undefined) return `a positive ${what.replace(/^an? /, '')}`;
    const lower = flag.min === undefined ? '' : ` ${flag.exclusiveMin ? '>' : '>='} ${flag.min}`;
    const upper = flag.max === undefined ? '' : `${lower ? ' and' : ''} <= ${flag.max}`;
    return `${what}${lower}${upper}`;
  };
  switch (flag.kind) {
    case 'integer':
      return bound('an integer');
    case 'number':
      return bound('a number');
    case 'boolean':
      return 'no value';
    case 'choice':
      return `one of ${(flag.choices ?? []).join(', ')}`;
    case 'list':
      return `comma-separated positive integers${flag.max === undefined ? '' : ` of at most ${flag.max}`}, e.g. 64,64`;
    case 'string':
      return flag.valueName === 'DIR' ? 'a directory path' : 'a value';
  }
}

/**
 * Whether `value`, read from a file the CLI wrote (a checkpoint), is one the integer or number
 * flag `flag` takes: of its kind (a safe integer, a finite number) and within its bounds.
 */
export function fitsFlag(flag: FlagSpec, value: unknown): boolean {
  if (typeof value !== 'number') return false;
  if (flag.kind === 'integer' ? !Number.isSafeInteger(value) : !Number.isFinite(value)) return false;
  return inRange(flag, value);
}

function inRange(flag: FlagSpec, v: number): boolean {
  if (flag.min !== undefined && (flag.exclusiveMin ? !(v > flag.min) : !(v >= flag.min))) return false;
  if (flag.max !== undefined && !(v <= flag.max)) return false;
  return true;
}

/**
 * The candidate `word` is most likely a typo of, for a 'did you mean' hint: the nearest by edit
 * distance (ignoring case), if within 1 edit for words of 4 to 6 characters and 2 for longer
 * ones; undefined otherwise. Words under 4 characters get no guess ('gpu' is one edit from
 * 'cpu', but meant 'webgpu').
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const limit = word.length < 4 ? 0 : word.length < 7 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** ' (did you mean X?)' for the candidate `word` is near (see nearest), or ''. */
export function didYouMean(word: string, candidates: readonly string[], prefix = ''): string {
  const guess = nearest(word, candidates);
  return guess === undefined ? '' : ` (did you mean ${prefix}${guess}?)`;
}

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Converts one flag's text to its value, or throws a UsageError naming the flag and the expectation. */
function convert(where: string, flag: FlagSpec, text: string): FlagValue {
  const wrong = () => new UsageError(`${where}: --${flag.name} must be ${expectation(flag)}, got ${JSON.stringify(text)}`);
  switch (flag.kind) {
    case 'integer': {
      if (!INTEGER.test(text)) throw wrong();
      const v = Number(text);
      if (!Number.isSafeInteger(v) || !inRange(flag, v)) throw wrong();
      return v;
    }
    case 'number': {
      if (!NUMBER.test(text)) throw wrong();
      const v = Number(text);
      if (!Number.isFinite(v) || !inRange(flag, v)) throw wrong();
      return v;
    }
    case 'choice':
      if (!(flag.choices ?? []).includes(text)) throw new UsageError(`${wrong().message}${didYouMean(text, flag.choices ?? [])}`);
      return text;
    case 'list': {
      const parts = text.split(',');
      if (parts.length === 0 || !parts.every((p) => /^\d+$/.test(p.trim()) && Number.isSafeInteger(Number(p)) && Number(p) >= (flag.min ?? 1) && (flag.max === undefined || Number(p) <= flag.max))) throw wrong();
      return parts.map((p) => Number(p));
    }
    case 'string':
      if (text.length === 0) throw wrong();
      return text;
    case 'boolean':
      throw new UsageError(`${where}: --${flag.name} takes no value, got ${JSON.stringify(text)}`);
  }
}

/**
 * Parses `argv` (the arguments after the command name) against `spec`. Accepts `--name value`,
 * `--name=value` and bare boolean flags; rejects unknown flags, repeated flags, stray positional
 * arguments, missing values and values of the wrong kind, each with a UsageError.
 */
export function parseArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const where = `scorch ${spec.name}`;
  if (argv.includes('--help') || argv.includes('-h')) return { help: true, values: {}, given: new Set() };
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const values: Record<string, FlagValue> = {};
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    // A bare `--` (what `pnpm demo:score -- --flag` passes on) separates nothing here: no
    // command takes positional arguments.
    if (arg === '--') continue;
    if (!arg.startsWith('--')) {
      // '-steps' or '-h'-style short forms: name the flag meant, when one is near.
      const meant = arg.startsWith('-') ? didYouMean(arg.replace(/^-+/, '').split('=')[0]!, spec.flags.map((f) => f.name), '--') : '';
      throw new UsageError(`${where}: unexpected argument ${JSON.stringify(arg)}${meant}; flags are written --name value (see scorch ${spec.name} --help)`);
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const flag = byName.get(name);
    if (!flag) {
      const known = spec.flags.map((f) => `--${f.name}`).join(', ');
      throw new UsageError(`${where}: unknown flag --${name}${didYouMean(name, spec.flags.map((f) => f.name), '--')}; expected one of ${known}, or --help`);
    }
    if (given.has(name)) throw new UsageError(`${where}: --${name} is given twice; give each flag at most once`);
    given.add(name);
    if (flag.kind === 'boolean') {
      if (eq >= 0) throw new UsageError(`${where}: --${name} takes no value, got ${JSON.stringify(arg.slice(eq + 1))}`);
      values[name] = true;
      continue;
    }
    let text: string | undefined;
    if (eq >= 0) {
      text = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      // A following flag is not a value, nor is a bare `--` (skipped everywhere else, so
      // `--out --` must not make a directory named '--'); a negative number (for flags that
      // allow one) is.
      if (next === undefined || next.startsWith('--')) {
        throw new UsageError(`${where}: --${name} needs a value (${expectation(flag)})`);
      }
      text = next;
      i++;
    }
    values[name] = convert(where, flag, text);
  }
  for (const flag of spec.flags) {
    if (given.has(flag.name)) continue;
    if (flag.required) throw new UsageError(`${where}: --${flag.name} is required (${expectation(flag)})`);
    const d = flag.default;
    values[flag.name] = flag.kind === 'boolean' ? (d ?? false) as boolean : Array.isArray(d) ? [...(d as readonly number[])] : (d as FlagValue);
  }
  return { help: false, values, given };
}

/** Word-wraps `text` to `width` columns, every line after the first indented by `indent`. */
function wrap(text: string, width: number, indent: number): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

function defaultText(flag: FlagSpec): string | undefined {
  if (flag.defaultText) return flag.defaultText;
  if (flag.kind === 'boolean' || flag.default === undefined) return undefined;
  return Array.isArray(flag.default) ? flag.default.join(',') : String(flag.default);
}

/** The --help text of one command: usage, details, every flag with its default and its source. */
export function commandHelp(spec: CommandSpec): string {
  const column = 26;
  const width = 100 - column;
  const out = [`scorch ${spec.name} — ${spec.summary}`, '', `Usage: scorch ${spec.name}${spec.flags.length ? ' [flags]' : ''}`];
  if (spec.details) for (const paragraph of spec.details.split('\n\n')) out.push('', wrap(paragraph, 98, 0));
  if (spec.flags.length) {
    out.push('', 'Flags:');
    for (const flag of spec.flags) {
      const head = `  --${flag.name}${flag.kind === 'boolean' ? '' : ` ${flag.valueName ?? 'VALUE'}`}`;
      let body = flag.description;
      if (flag.kind === 'choice') body += ` (${(flag.choices ?? []).join(' | ')})`;
      if (flag.required) body += '. Required.';
      const d = defaultText(flag);
      if (d !== undefined) body += `. Default: ${d}${flag.source ? ` — ${flag.source}` : ''}.`;
      else if (flag.source) body += ` (${flag.source}).`;
      const padded = head.length >= column - 1 ? `${head}\n${' '.repeat(column)}` : head.padEnd(column);
      out.push(`${padded}${wrap(body, width, column)}`);
    }
    out.push(`  --help                  show this help`);
  }
  if (spec.examples?.length) out.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return out.join('\n');
}
