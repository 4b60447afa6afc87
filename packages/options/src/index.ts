// @scorch/options: validation of public options objects, shared by every package: one place
// decides what an unknown key, a null, a value outside its set or a number outside its range says.
// A misspelled option (`learningRate:` for `lr:`) must fail loudly, never run silently with the
// default. Its own package, importing nothing, so that @scorch/report (plain numbers, no tensors)
// checks its options with the same code as @scorch/tensor, which re-exports all of it.

/** The closest of `candidates` to `name` (case-insensitive edit distance), or null if none is close. */
export function closestName(name: string, candidates: readonly string[]): string | null {
  const lower = name.toLowerCase();
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    // A candidate that contains the name or is contained in it (`steps` / `stepsPerLevel`) is close.
    // Not for a name or candidate under 3 letters: 'a' is in 'beta1' without being a typo of it.
    const contains = Math.min(lower.length, cl.length) >= 3 && (cl.includes(lower) || lower.includes(cl));
    const d = cl === lower ? 0 : contains ? 1 : editDistance(lower, cl);
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  // Allow about one edit per three characters: 'lr' vs 'learningRate' is not a typo, 'stepsPerlevel' is.
  // And at most one edit in a name of one or two letters: 'a' is two edits from 'lr' (no typo), 'w' one from 'x'.
  return best !== null && bestDistance <= Math.min(Math.max(2, Math.floor(name.length / 3)), Math.max(1, name.length - 1)) ? best : null;
}

/**
 * The number of single-character insertions, deletions, substitutions and swaps of two
 * neighbours that turn `a` into `b` (the optimal string alignment distance), O(|a|·|b|): the one
 * measure of a typo for option names here and the command line's flags.
 */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** " (did you mean 'x'?)" when a close candidate exists, else "". */
export function didYouMean(name: string, candidates: readonly string[]): string {
  const c = closestName(name, candidates);
  return c === null ? '' : ` (did you mean '${c}'?)`;
}

/**
 * Checks that `opts` is a plain options object (or undefined) whose keys are all in `known`.
 * The error names the function, the unknown key, the closest valid key and every valid one:
 * `adam: unknown option 'beta_1' (did you mean 'beta1'?); valid options: lr, beta1, beta2, eps`
 * (no hint where no valid key is close: 'learningRate' is not a typo of 'lr').
 * Keys whose value is `undefined` count as absent, as they do for defaults; `null` is refused
 * except for the `nullable` keys, where it is a value (vmap's inAxes: null, as JAX's None).
 */
export function checkOptions(where: string, opts: unknown, known: readonly string[], nullable: readonly string[] = []): void {
  if (opts === undefined) return;
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    const got = opts === null ? 'null' : Array.isArray(opts) ? 'an array' : typeof opts;
    throw new TypeError(`${where}: expected an options object, got ${got}`);
  }
  // A plain object only: a Map or a class instance passed the check above, and its settings
  // (entries, or fields on its prototype) were ignored without a word. Its prototype's prototype
  // is null for a plain object of any realm (Object.prototype's own is null).
  const proto = Object.getPrototypeOf(opts) as object | null;
  if (proto !== null && Object.getPrototypeOf(proto) !== null) {
    const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
    throw new TypeError(`${where}: expected a plain options object ({ key: value, ... }), got ${typeof name === 'string' && name !== '' ? `a ${name}` : 'an object with a prototype'}`);
  }
  for (const key of Object.keys(opts)) {
    const value = (opts as Record<string, unknown>)[key];
    // null is not "the default": options are typed `T | undefined`, and null reached some
    // functions' defaults (through ??) but others' checks (as a wrong value), so one option
    // object behaved two ways. Left out or undefined, an option takes its default.
    if (value === null && known.includes(key) && !nullable.includes(key)) throw new TypeError(`${where}: ${key} is null, which is not a value for it (an option left out, or undefined, takes its default)`);
    if (known.includes(key) || value === undefined) continue;
    const valid = known.length > 0 ? `valid options: ${known.join(', ')}` : 'it takes no options';
    throw new TypeError(`${where}: unknown option '${key}'${didYouMean(key, known)}; ${valid}`);
  }
}

/**
 * A value as an error message shows it: numbers as JavaScript prints them (NaN and Infinity, where
 * JSON.stringify says null), bigints with their n (which JSON.stringify throws on), strings quoted,
 * arrays element by element, typed arrays with their type, tensors by dtype, shape and device,
 * other objects as JSON where they have one.
 */
export function showValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  // Array.from, not map: a hole (new Array(2)) shows as undefined rather than vanishing.
  if (Array.isArray(value)) return `[${Array.from(value, showValue).join(',')}]`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return value.toString();
  // A typed array by its type and elements (JSON makes it {"0":1,"1":2}); a tensor by dtype,
  // shape and device (JSON dumps its internals, handle and all).
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return `a ${value.constructor.name} [${Array.from(value as unknown as ArrayLike<number | bigint>, showValue).join(',')}]`;
  }
  const t = value as { shape?: unknown; dtype?: unknown; device?: unknown };
  if (Array.isArray(t.shape) && typeof t.dtype === 'string' && typeof t.device === 'string') return `a tensor (${t.dtype} [${t.shape.join(',')}] on ${t.device})`;
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  }
}

/** Throws a clear error when `value` is not one of `allowed`. */
export function checkOneOf<T extends string>(where: string, option: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (!(allowed as readonly unknown[]).includes(value)) {
    const hint = typeof value === 'string' ? didYouMean(value, allowed) : '';
    throw new Error(`${where}: unknown ${option} ${showValue(value)}${hint}; expected one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
}

/** Checks a boolean option; `undefined` passes (the caller's default applies). */
export function checkBoolean(where: string, option: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    // showValue: an object printed as '[object Object]' through String.
    throw new TypeError(`${where}: ${option} must be true or false, got ${showValue(value)}`);
  }
}

/**
 * Checks a string option: `undefined` passes (the caller's default applies) unless `required`;
 * `nonEmpty` refuses '' too, for options where an empty string means nothing (a colour). The
 * error names the function, the option and the value: `scatterPlot: title must be a string, got 5`.
 */
export function checkString(where: string, option: string, value: unknown, opts: { required?: boolean; nonEmpty?: boolean } = {}): void {
  if (value === undefined && !opts.required) return;
  if (typeof value !== 'string' || (opts.nonEmpty === true && value === '')) {
    throw new TypeError(`${where}: ${option} must be a ${opts.nonEmpty ? 'non-empty ' : ''}string, got ${showValue(value)}`);
  }
}

export interface NumberRange {
  /** Smallest allowed value (inclusive unless `exclusiveMin`). */
  min?: number;
  /** Largest allowed value (inclusive unless `exclusiveMax`). */
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
  /** Require an integer. */
  integer?: boolean;
  /** Refuse `undefined` too: a positional argument with no default (a forgotten one gave NaN or nothing). */
  required?: boolean;
}

function rangeText(r: NumberRange): string {
  const kind = r.integer ? 'an integer' : 'a finite number';
  const parts: string[] = [];
  if (r.min !== undefined) parts.push(`${r.exclusiveMin ? '>' : '>='} ${r.min}`);
  if (r.max !== undefined) parts.push(`${r.exclusiveMax ? '<' : '<='} ${r.max}`);
  return parts.length ? `${kind} ${parts.join(' and ')}` : kind;
}

/**
 * Whether `test` holds for every entry of `array`, holes included (as undefined). Array.prototype
 * .every and .forEach skip holes, so a shape [2, , 3] or widths [4, , 4] passed the checks written
 * with them and failed later, under another name.
 */
export function everyEntry<T>(array: readonly T[], test: (value: T | undefined, index: number) => boolean): boolean {
  for (let i = 0; i < array.length; i++) if (!test(array[i], i)) return false;
  return true;
}

/**
 * Checks every entry of an array option with `checkNumber` (each required: a hole is refused as
 * undefined), naming the entry: `hidden[1] must be an integer >= 1, got undefined`.
 */
export function checkNumberList(where: string, option: string, values: readonly unknown[], range: NumberRange = {}): void {
  for (let i = 0; i < values.length; i++) checkNumber(where, `${option}[${i}]`, values[i], { ...range, required: true });
}

/**
 * Checks a numeric option: finite, an integer when asked, inside the range. `undefined` passes
 * (the caller's default applies) unless `range.required`. The error names the function, the
 * option and the range.
 */
export function checkNumber(where: string, option: string, value: unknown, range: NumberRange = {}): void {
  if (value === undefined && !range.required) return;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!range.integer || Number.isInteger(value)) &&
    (range.min === undefined || (range.exclusiveMin ? value > range.min : value >= range.min)) &&
    (range.max === undefined || (range.exclusiveMax ? value < range.max : value <= range.max));
  if (!ok) throw new RangeError(`${where}: ${option} must be ${rangeText(range)}, got ${showValue(value)}`);
}
