// Programs: a function traced once into typed equations of primitives (JAX's jaxpr, jax-js's
// traced program). A program names its tensor inputs, its random-key inputs and the keys derived
// from them, the equations that compute each value, its outputs, and the in-place updates it
// makes to inputs (`assign` inside a traced function). Backends compile programs; the generic
// `interpretProgram` runs one on any backend, op by op, through the same `execute` calls that
// eager mode makes, so its results are bit-identical to eager ones.

import type { Backend, BackendHandle } from './backend.js';
import { type DType, storedValue } from './dtype.js';
import { type Primitive, type PrimitiveParams, type RandomKey, isBinary, isCompare, isUnary } from './primitives.js';
import { foldIn, splitKeyAt } from './random.js';
import { executeProfiled, profilerSession } from './profiler.js';
import { fmtShape, shapesEqual, sizeOf } from './shape.js';

/** A value of a program: a tensor of fixed shape and dtype. */
export interface ProgramVar {
  /** Unique within its program; also the print order. */
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** A random key of a program: an input, or derived on the host from one. */
export interface KeyVar {
  readonly keyId: number;
}

/** Host-side key derivations, recomputed on every call from the key inputs (cheap: one Philox block). */
export type KeyDerivation =
  | { readonly kind: 'foldIn'; readonly input: KeyVar; readonly data: number; readonly out: KeyVar }
  | { readonly kind: 'split'; readonly input: KeyVar; readonly count: number; readonly index: number; readonly out: KeyVar };

/** One primitive call: `out = prim(inputs; params)`. */
export interface Equation<P extends Primitive = Primitive> {
  readonly prim: P;
  readonly inputs: readonly ProgramVar[];
  readonly params: PrimitiveParams[P];
  readonly out: ProgramVar;
  /** For `random` whose key is a program key (an input or derived from one): that key. */
  readonly key?: KeyVar;
}

/** After a call, input `input` holds the value of `value` (an in-place update). */
export interface ProgramUpdate {
  readonly input: number;
  readonly value: ProgramVar;
}

/** Where a program's tensor input comes from when the traced function is called. */
export type InputSource =
  | { readonly kind: 'argument'; readonly index: number }
  | { readonly kind: 'capture'; readonly index: number };

/**
 * A traced program (`makeProgram`, `jit`): its tensor and key inputs, its equations (one primitive
 * each), its outputs and the `assign` updates it makes; `toString()` prints it like a jaxpr.
 */
export class Program {
  constructor(
    /** The device every value lives on. */
    readonly device: string,
    /** Tensor inputs: the arguments' tensors, then tensors the function closed over. */
    readonly inputs: readonly ProgramVar[],
    readonly inputSources: readonly InputSource[],
    readonly keyInputs: readonly KeyVar[],
    readonly keyDerivations: readonly KeyDerivation[],
    readonly equations: readonly Equation[],
    readonly outputs: readonly ProgramVar[],
    readonly updates: readonly ProgramUpdate[],
  ) {}

  /** The equations' count by primitive (for tests and summaries). */
  primitiveCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const eq of this.equations) counts[eq.prim] = (counts[eq.prim] ?? 0) + 1;
    return counts;
  }

  /** The concrete keys of every key variable, from the key inputs' values. */
  resolveKeys(inputs: readonly RandomKey[]): Map<KeyVar, RandomKey> {
    if (inputs.length !== this.keyInputs.length) throw new Error(`program: expected ${this.keyInputs.length} key(s), got ${inputs.length}`);
    const keys = new Map<KeyVar, RandomKey>();
    this.keyInputs.forEach((k, i) => keys.set(k, inputs[i]!));
    for (const d of this.keyDerivations) {
      const base = keys.get(d.input)!;
      keys.set(d.out, d.kind === 'foldIn' ? foldIn(base, d.data) : splitKeyAt(base, d.index, d.count));
    }
    return keys;
  }

  /**
   * The program as text, one equation a line, in the style of a jaxpr:
   *   { lambda a:f32[4,3] b:f32[3] ; k0:key .
   *     let c:f32[4,3] = mul a a
   *     in ( c ) }
   */
  toString(): string {
    const { name, typed, equation } = this.printer();
    const keyName = (k: KeyVar) => `k${k.keyId}`;
    const lines: string[] = [];
    const head = this.inputs.map((v, i) => {
      const src = this.inputSources[i]!;
      return src.kind === 'capture' ? `${typed(v)}(captured)` : typed(v);
    });
    const keys = this.keyInputs.map((k) => `${keyName(k)}:key`);
    lines.push(`{ lambda ${head.join(' ')}${keys.length ? ` ; ${keys.join(' ')}` : ''} .`);
    const body: string[] = [];
    for (const d of this.keyDerivations) {
      body.push(d.kind === 'foldIn' ? `${keyName(d.out)}:key = foldIn ${keyName(d.input)} ${d.data}` : `${keyName(d.out)}:key = split ${keyName(d.input)} ${d.index}/${d.count}`);
    }
    for (const eq of this.equations) body.push(equation(eq));
    body.forEach((line, i) => lines.push(`  ${i === 0 ? 'let ' : '    '}${line}`));
    lines.push(`  in ( ${this.outputs.map(name).join(', ')} )`);
    if (this.updates.length > 0) {
      lines.push(`  updates ${this.updates.map((u) => `${name(this.inputs[u.input]!)} <- ${name(u.value)}`).join(', ')}`);
    }
    lines[lines.length - 1] += ' }';
    return lines.join('\n');
  }

  /** Every key variable in a canonical order: the key inputs, then each derived key as derived. */
  canonicalKeys(): KeyVar[] {
    return [...this.keyInputs, ...this.keyDerivations.map((d) => d.out)];
  }

  /**
   * A text that is equal for two programs exactly when they compute the same thing the same way
   * (inputs, equations with their params, outputs and updates, with variables numbered in order,
   * and which keys draw what). Backends cache generated code under it: a function traced again
   * (a sampler run after another) reuses the kernels made for the first trace.
   */
  structuralKey(): string {
    const ids = new Map<number, number>();
    const id = (v: ProgramVar): number => {
      let n = ids.get(v.id);
      if (n === undefined) ids.set(v.id, (n = ids.size));
      return n;
    };
    const keyIds = new Map<KeyVar, number>(this.canonicalKeys().map((k, i) => [k, i]));
    const keyId = (k: KeyVar): number => keyIds.get(k)!;
    const type = (v: ProgramVar) => `${v.dtype}[${v.shape.join(',')}]`;
    const parts: string[] = [this.device];
    parts.push(this.inputs.map((v, i) => `${id(v)}:${type(v)}:${this.inputSources[i]!.kind}`).join(' '));
    for (const d of this.keyDerivations) parts.push(`k${keyId(d.out)}=${d.kind}(k${keyId(d.input)},${d.kind === 'foldIn' ? d.data : `${d.index}/${d.count}`})`);
    for (const eq of this.equations) {
      const params = eq.key ? { ...(eq.params as PrimitiveParams['random']), key: `k${keyId(eq.key)}` } : eq.params;
      parts.push(`${id(eq.out)}:${type(eq.out)}=${eq.prim}${paramsKey(params)}(${eq.inputs.map(id).join(',')})`);
    }
    parts.push(`out(${this.outputs.map(id).join(',')})`, `upd(${this.updates.map((u) => `${u.input}<-${id(u.value)}`).join(',')})`);
    return parts.join(';');
  }

  /** Each equation as `toString` prints it (with the same variable names), by index. */
  equationLines(): string[] {
    return this.equations.map(this.printer().equation);
  }

  /** Names in print order (inputs first, then each equation's output), and line formatters. */
  private printer() {
    const names = new Map<number, string>();
    const name = (v: ProgramVar): string => {
      let n = names.get(v.id);
      if (n === undefined) {
        n = varName(names.size);
        names.set(v.id, n);
      }
      return n;
    };
    for (const v of this.inputs) name(v);
    const typed = (v: ProgramVar) => `${name(v)}:${dtypeAbbrev(v.dtype)}${fmtShape(v.shape)}`;
    const equation = (eq: Equation) => `${typed(eq.out)} = ${eq.prim}${formatParams(eq)} ${eq.inputs.map(name).join(' ')}`.trimEnd();
    return { name, typed, equation };
  }
}

/** a, b, …, z, ba, bb, … (base 26, as jaxprs name their variables). */
function varName(i: number): string {
  let s = '';
  do {
    s = String.fromCharCode(97 + (i % 26)) + s;
    i = Math.floor(i / 26);
  } while (i > 0);
  return s;
}

function dtypeAbbrev(d: DType): string {
  return d === 'float32' ? 'f32' : d === 'float64' ? 'f64' : d === 'int32' ? 'i32' : 'bool';
}

function formatParams(eq: Equation): string {
  const p = eq.params as Record<string, unknown>;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(p)) {
    if (k === 'device') continue;
    if (eq.prim === 'random' && k === 'key') {
      parts.push(eq.key ? `key=k${eq.key.keyId}` : `key=${JSON.stringify(v)}`);
      continue;
    }
    if (eq.prim === 'random' && (k === 'shape' || k === 'dtype')) continue;
    if (eq.prim === 'full' && (k === 'shape' || k === 'dtype')) continue;
    parts.push(`${k}=${Array.isArray(v) ? `[${v.join(',')}]` : String(v)}`);
  }
  return parts.length ? `[${parts.join(' ')}]` : '';
}

// ---------------------------------------------------------------------------------------------
// Building

/** Accumulates a program while a function is traced. */
export class ProgramBuilder {
  private nextVar = 0;
  private nextKey = 0;
  readonly equations: Equation[] = [];
  readonly keyDerivations: KeyDerivation[] = [];

  newVar(shape: readonly number[], dtype: DType): ProgramVar {
    return { id: this.nextVar++, shape: Object.isFrozen(shape) ? shape : Object.freeze([...shape]), dtype };
  }

  newKey(): KeyVar {
    return { keyId: this.nextKey++ };
  }

  add<P extends Primitive>(prim: P, inputs: readonly ProgramVar[], params: PrimitiveParams[P], out: ProgramVar, key?: KeyVar): void {
    this.equations.push(key ? { prim, inputs, params, out, key } : { prim, inputs, params, out });
  }
}

/**
 * Drops the equations and key derivations that no output or update needs, and reorders
 * nothing: the trace order is already a valid schedule.
 */
export function eliminateDeadCode(program: Program): Program {
  const live = new Set<number>();
  for (const v of program.outputs) live.add(v.id);
  for (const u of program.updates) live.add(u.value.id);
  const liveKeys = new Set<KeyVar>();
  const kept: Equation[] = [];
  for (let i = program.equations.length - 1; i >= 0; i--) {
    const eq = program.equations[i]!;
    if (!live.has(eq.out.id)) continue;
    kept.push(eq);
    for (const x of eq.inputs) live.add(x.id);
    if (eq.key) liveKeys.add(eq.key);
  }
  const derivations: KeyDerivation[] = [];
  for (let i = program.keyDerivations.length - 1; i >= 0; i--) {
    const d = program.keyDerivations[i]!;
    if (!liveKeys.has(d.out)) continue;
    derivations.push(d);
    liveKeys.add(d.input);
  }
  return new Program(
    program.device, program.inputs, program.inputSources, program.keyInputs, derivations.reverse(), kept.reverse(),
    program.outputs, program.updates,
  );
}

/** Movement ops that turn a constant into a constant of another shape. */
const CONSTANT_PRESERVING = new Set<Primitive>(['reshape', 'expand', 'permute', 'slice', 'stopGradient', 'cast']);

/** An equation simplifyProgram kept, as it compares them: inputs by id, params as `paramsKey`'s texts do. */
interface SeenEquation {
  readonly prim: Primitive;
  readonly inputs: readonly ProgramVar[];
  readonly params: object;
  readonly keyId: number;
  readonly out: ProgramVar;
}

/**
 * The equations kept so far, found by what they compute: same primitive, same inputs, params of
 * the same `paramsKey` text and same program key. Looked up by a small-integer hash of those
 * parts, not by a string of them: building, flattening and hashing a string per equation (and
 * the params' text, for a constant) was most of simplifyProgram's time, itself half of tracing a
 * long gradient. Params are compared by `sameParams`, which builds no text for the usual ones.
 */
class EquationTable {
  private readonly buckets = new Map<number, SeenEquation[]>();

  /** The output of an equation kept earlier that computes what `eq` does, or undefined (and `eq` is recorded). */
  findOrAdd(eq: Equation): ProgramVar | undefined {
    const keyId = eq.key ? eq.key.keyId : -1;
    const inputs = eq.inputs;
    let hash = Math.imul(keyId ^ paramsHash(eq.params), 0x9e3779b1) ^ eq.prim.length;
    for (let i = 0; i < inputs.length; i++) hash = Math.imul(hash ^ inputs[i]!.id, 0x9e3779b1);
    hash &= 0x3fffffff; // a small integer: Maps hash those fastest
    const bucket = this.buckets.get(hash);
    if (bucket !== undefined) {
      for (const seen of bucket) {
        if (seen.prim === eq.prim && seen.keyId === keyId && sameIds(seen.inputs, inputs) && sameParams(seen.params, eq.params)) return seen.out;
      }
    }
    const entry: SeenEquation = { prim: eq.prim, inputs, params: eq.params, keyId, out: eq.out };
    if (bucket === undefined) this.buckets.set(hash, [entry]);
    else bucket.push(entry);
    return undefined;
  }
}

function sameIds(a: readonly ProgramVar[], b: readonly ProgramVar[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.id !== b[i]!.id) return false;
  return true;
}

/** A plain object (its prototype Object.prototype or null): no toJSON or getters inherited. */
function isPlainParams(params: object): boolean {
  const proto: unknown = Object.getPrototypeOf(params);
  return proto === Object.prototype || proto === null;
}

/**
 * What a number or string adds to `paramsHash`: a non-finite number or −0 is written as a string
 * ('#NaN'). A Number object is written as its number (by JSON.stringify, without the replacer
 * seeing a number: NaN and ±Infinity as null, −0 as 0), so it adds what that number's text does.
 */
function valueHash(v: unknown): number {
  if (v instanceof Number) {
    const x = v.valueOf();
    return Number.isFinite(x) ? (x * 65599) | 0 : 0x5bd1e995;
  }
  return typeof v === 'number' && Number.isFinite(v) && !Object.is(v, -0) ? (v * 65599) | 0 : 0x5bd1e995;
}

/**
 * A hash of params, equal for params of equal `paramsKey` text: it reads only what the text
 * shows (key names' lengths, numbers, array lengths; not the keys JSON leaves out). Params that
 * JSON.stringify writes otherwise than their own keys (a toJSON method, another prototype) are
 * hashed as the plain object their text reads back as.
 */
export function paramsHash(params: object): number {
  const hash = plainParamsHash(params);
  if (hash !== undefined) return hash;
  const text = paramsKey(params) as string | undefined; // undefined when a toJSON returns it
  const read: unknown = text === undefined ? undefined : JSON.parse(text);
  return read !== null && typeof read === 'object' ? plainParamsHash(read) ?? 1 : 1;
}

/** paramsHash of a plain object whose text is its own keys; undefined for any other. */
function plainParamsHash(params: object): number | undefined {
  if (!isPlainParams(params)) return undefined;
  let hash = 7;
  for (const k in params) {
    if (!Object.prototype.hasOwnProperty.call(params, k)) return undefined;
    const v = (params as Record<string, unknown>)[k];
    if (typeof v === 'function') {
      if (k === 'toJSON') return undefined;
      continue;
    }
    if (v === undefined || typeof v === 'symbol') continue;
    hash = Math.imul(hash ^ k.length, 0x01000193);
    if (Array.isArray(v)) {
      hash = Math.imul(hash ^ v.length, 0x01000193);
      for (let i = 0; i < v.length; i++) hash = Math.imul(hash ^ valueHash(v[i]), 0x01000193);
    } else hash = Math.imul(hash ^ valueHash(v), 0x01000193);
  }
  return hash;
}

/**
 * Whether `paramsKey(a) === paramsKey(b)`, without building the texts for plain objects of
 * numbers, strings, booleans, null and arrays of numbers (the texts decide anything else).
 */
export function sameParams(a: object, b: object): boolean {
  if (a === b) return true;
  if (!isPlainParams(a) || !isPlainParams(b)) return paramsKey(a) === paramsKey(b);
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return paramsKey(a) === paramsKey(b); // keys JSON leaves out, say
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return paramsKey(a) === paramsKey(b);
    const x = (a as Record<string, unknown>)[ka[i]!];
    const y = (b as Record<string, unknown>)[kb[i]!];
    if (typeof x === 'number' && typeof y === 'number') {
      if (!Object.is(x, y)) return false;
    } else if (typeof x === 'string' && typeof y === 'string' && x[0] !== '#' && y[0] !== '#') {
      if (x !== y) return false;
    } else if (typeof x === 'boolean' || x === null) {
      if (x !== y) return (typeof y === 'boolean' || y === null) ? false : paramsKey(a) === paramsKey(b);
    } else if (Array.isArray(x) && Array.isArray(y)) {
      if (x.length !== y.length) return false;
      for (let j = 0; j < x.length; j++) {
        const xj: unknown = x[j];
        const yj: unknown = y[j];
        if (typeof xj !== 'number' || typeof yj !== 'number') return paramsKey(a) === paramsKey(b);
        if (!Object.is(xj, yj)) return false;
      }
    } else return paramsKey(a) === paramsKey(b);
  }
  return true;
}

/**
 * Canonicalises a traced program without changing any computed value: a constant reshaped,
 * broadcast, permuted, sliced or cast is the constant of the final shape (a scalar operand
 * becomes one `full` an elementwise kernel inlines), work on broadcasts of smaller values is
 * done before the broadcast (`sinkBroadcasts`), identical equations are computed once, and dead
 * ones dropped.
 */
export function simplifyProgram(program: Program): Program {
  const folded = foldAndMerge(program);
  const sunk = sinkBroadcasts(folded);
  // Sinking may make equal small equations (two ops expanding one source to one shape).
  return eliminateDeadCode(sunk === folded ? folded : foldAndMerge(sunk));
}

/** Constants folded through movement ops and identical equations merged (no dead-code pass). */
function foldAndMerge(program: Program): Program {
  const replace = new Map<number, ProgramVar>();
  const sub = (v: ProgramVar): ProgramVar => replace.get(v.id) ?? v;
  const constants = new Map<number, PrimitiveParams['full']>();
  const seen = new EquationTable();
  const equations: Equation[] = [];
  for (const eq0 of program.equations) {
    // An equation none of whose inputs was replaced is kept as it is (equations are immutable).
    let inputs = eq0.inputs;
    for (let i = 0; i < inputs.length; i++) {
      if (replace.has(inputs[i]!.id)) {
        inputs = inputs.map(sub);
        break;
      }
    }
    let eq: Equation = inputs === eq0.inputs ? eq0 : { ...eq0, inputs };
    const source = eq.inputs.length === 1 ? constants.get(eq.inputs[0]!.id) : undefined;
    if (source && CONSTANT_PRESERVING.has(eq.prim)) {
      // A cast converts the value as the constant holds it (a float32 full stores its value
      // rounded to float32): full(0.1, float32).cast(float64) is 0.10000000149011612 eagerly.
      // An int32 or bool full's value is already the stored one (full refuses any other).
      const held = source.dtype === 'float32' ? Math.fround(source.value) : source.value;
      const value = eq.prim === 'cast' ? storedValue(held, eq.out.dtype) : source.value;
      eq = { prim: 'full', inputs: [], params: { value, shape: [...eq.out.shape], dtype: eq.out.dtype, device: source.device }, out: eq.out };
    }
    const same = seen.findOrAdd(eq);
    if (same) {
      replace.set(eq.out.id, same);
      continue;
    }
    if (eq.prim === 'full') constants.set(eq.out.id, eq.params as PrimitiveParams['full']);
    equations.push(eq);
  }
  return new Program(
    program.device, program.inputs, program.inputSources, program.keyInputs, program.keyDerivations, equations,
    program.outputs.map(sub), program.updates.map((u) => ({ input: u.input, value: sub(u.value) })),
  );
}

/**
 * How a value is a broadcast: `expand(reshape(base, shape), value.shape)` (`shape` of the value's
 * rank, each extent 1 or the value's; the reshape only when `shape` is not base's), or a constant
 * (`full`) that can be made at any shape.
 */
type Broadcast =
  | { readonly kind: 'of'; readonly base: ProgramVar; readonly shape: readonly number[] }
  | { readonly kind: 'constant'; readonly params: PrimitiveParams['full'] };

/**
 * Computes elementwise work before a broadcast instead of after it (XLA's algebraic simplifier
 * does the same): an equation every operand of which is a broadcast of a smaller value is
 * computed on the broadcast of the operands' source shapes, and its result `expand`ed to the
 * output shape. It applies to elementwise primitives (unary, binary, comparisons, `where`,
 * `cast`), to `concat` of broadcasts none stretched along the concatenation axis, and to a
 * `matmul` with inner dimension 1 whose left operand is broadcast along the rows or right one
 * along the columns (each element is `0 + a·b` in every kernel, whatever the rows). A value is a
 * broadcast when made by `expand`, by `full`, or by a `reshape` of a broadcast that only inserts
 * or removes size-1 axes. Each element is computed by the same float operations on the same
 * values, so results are bit-identical; the rewritten equation keeps its output variable (now
 * made by an `expand`), so outputs and their shapes are unchanged. Equations with a full-size
 * operand are left alone. Returns `program` itself when nothing applies.
 */
export function sinkBroadcasts(program: Program): Program {
  let nextId = 0;
  for (const v of program.inputs) nextId = Math.max(nextId, v.id + 1);
  for (const eq of program.equations) nextId = Math.max(nextId, eq.out.id + 1);
  const newVar = (shape: readonly number[], dtype: ProgramVar['dtype']): ProgramVar => ({ id: nextId++, shape: Object.freeze([...shape]), dtype });
  const broadcasts = new Map<number, Broadcast>();
  const equations: Equation[] = [];
  const reshaped = new Map<string, ProgramVar>();
  let changed = false;

  /** The broadcast `b` made at `shape` (extents its source's or larger), emitting what it needs. */
  const materialize = (b: Broadcast, shape: readonly number[], dtype: ProgramVar['dtype']): ProgramVar => {
    if (b.kind === 'constant') {
      const out = newVar(shape, dtype);
      equations.push({ prim: 'full', inputs: [], params: { ...b.params, shape: [...shape] }, out });
      return out;
    }
    let source = b.base;
    if (!shapesEqual(b.base.shape, b.shape)) {
      const key = `${b.base.id}|${b.shape.join(',')}`;
      let r = reshaped.get(key);
      if (!r) {
        r = newVar(b.shape, b.base.dtype);
        equations.push({ prim: 'reshape', inputs: [b.base], params: { shape: [...b.shape] }, out: r });
        reshaped.set(key, r);
      }
      source = r;
    }
    if (shapesEqual(source.shape, shape)) return source;
    const out = newVar(shape, source.dtype);
    equations.push({ prim: 'expand', inputs: [source], params: { shape: [...shape] }, out });
    return out;
  };
  const sourceShape = (b: Broadcast, rank: number): readonly number[] => (b.kind === 'of' ? b.shape : new Array<number>(rank).fill(1));
  /** `eq` computed as `small` (already emitted) broadcast to its output. */
  const broadcastResult = (eq: Equation, small: ProgramVar): void => {
    equations.push({ prim: 'expand', inputs: [small], params: { shape: [...eq.out.shape] }, out: eq.out });
    broadcasts.set(eq.out.id, { kind: 'of', base: small, shape: small.shape });
    changed = true;
  };

  for (const eq of program.equations) {
    const ins = eq.inputs.map((x) => broadcasts.get(x.id));
    const allBroadcast = ins.length > 0 && ins.every((b) => b !== undefined) && ins.some((b) => b!.kind === 'of');
    if (eq.prim === 'full') {
      broadcasts.set(eq.out.id, { kind: 'constant', params: eq.params as PrimitiveParams['full'] });
    } else if (eq.prim === 'expand') {
      const b = ins[0];
      broadcasts.set(eq.out.id, b ?? { kind: 'of', base: eq.inputs[0]!, shape: eq.inputs[0]!.shape });
    } else if (eq.prim === 'reshape' && ins[0]) {
      const b = ins[0];
      const shape = unitReshape(eq.inputs[0]!.shape, eq.out.shape, sourceShape(b, eq.inputs[0]!.shape.length));
      if (shape) broadcasts.set(eq.out.id, b.kind === 'constant' ? b : { kind: 'of', base: b.base, shape });
    } else if (allBroadcast && (isUnary(eq.prim) || isBinary(eq.prim) || isCompare(eq.prim) || eq.prim === 'where' || eq.prim === 'cast')) {
      const rank = eq.out.shape.length;
      const small = eq.out.shape.map((_, d) => Math.max(...ins.map((b) => sourceShape(b!, rank)[d]!)));
      if (sizeOf(small) < sizeOf(eq.out.shape)) {
        const operands = ins.map((b, i) => materialize(b!, small, eq.inputs[i]!.dtype));
        const out = newVar(small, eq.out.dtype);
        equations.push({ ...eq, inputs: operands, out });
        broadcastResult(eq, out);
        continue;
      }
    } else if (eq.prim === 'concat' && allBroadcast) {
      const { axis } = eq.params as PrimitiveParams['concat'];
      const rank = eq.out.shape.length;
      const stretched = ins.some((b, i) => sourceShape(b!, rank)[axis] !== eq.inputs[i]!.shape[axis]);
      const small = eq.out.shape.map((_, d) => (d === axis ? eq.out.shape[d]! : Math.max(...ins.map((b) => sourceShape(b!, rank)[d]!))));
      if (!stretched && sizeOf(small) < sizeOf(eq.out.shape)) {
        const operands = ins.map((b, i) => materialize(b!, small.map((n, d) => (d === axis ? eq.inputs[i]!.shape[d]! : n)), eq.inputs[i]!.dtype));
        const out = newVar(small, eq.out.dtype);
        equations.push({ ...eq, inputs: operands, out });
        broadcastResult(eq, out);
        continue;
      }
    } else if (eq.prim === 'matmul' && eq.inputs[0]!.shape[eq.inputs[0]!.shape.length - 1] === 1) {
      // Inner dimension 1: out[i, j] = 0 + a[i, 0]·b[0, j] in every kernel, whatever the rows and
      // columns, so rows of a broadcast `a` (columns of a broadcast `b`) give equal rows (columns).
      const [a, b] = eq.inputs as [ProgramVar, ProgramVar];
      const [ba, bb] = ins;
      const r = a.shape.length;
      const sameBatch = (x: ProgramVar, bx: Broadcast) => x.shape.slice(0, r - 2).every((d, i) => sourceShape(bx, r)[i] === d);
      const rows = ba !== undefined && a.shape[r - 2]! > 1 && sourceShape(ba, r)[r - 2] === 1 && sameBatch(a, ba);
      const cols = bb !== undefined && b.shape[r - 1]! > 1 && sourceShape(bb, r)[r - 1] === 1 && sameBatch(b, bb);
      if (rows || cols) {
        const batch = a.shape.slice(0, r - 2);
        const aSmall = rows ? materialize(ba!, [...batch, 1, 1], a.dtype) : a;
        const bSmall = cols ? materialize(bb!, [...batch, 1, 1], b.dtype) : b;
        const out = newVar([...batch, aSmall.shape[r - 2]!, bSmall.shape[r - 1]!], eq.out.dtype);
        equations.push({ ...eq, inputs: [aSmall, bSmall], out });
        broadcastResult(eq, out);
        continue;
      }
    }
    equations.push(eq);
  }
  if (!changed) return program;
  return new Program(
    program.device, program.inputs, program.inputSources, program.keyInputs, program.keyDerivations, equations,
    program.outputs, program.updates,
  );
}

/**
 * For a reshape `from` → `to` that only inserts or removes size-1 axes, the source shape (of
 * `to`'s rank) of the reshaped broadcast whose source shape was `source` (of `from`'s rank);
 * undefined for any other reshape.
 */
function unitReshape(from: readonly number[], to: readonly number[], source: readonly number[]): number[] | undefined {
  const fromAxes = from.flatMap((d, i) => (d === 1 ? [] : [i]));
  const toAxes = to.flatMap((d, i) => (d === 1 ? [] : [i]));
  if (fromAxes.length !== toAxes.length || fromAxes.some((a, k) => from[a] !== to[toAxes[k]!])) return undefined;
  const shape = to.map(() => 1);
  toAxes.forEach((a, k) => (shape[a] = source[fromAxes[k]!]!));
  return shape;
}

// ---------------------------------------------------------------------------------------------
// Running

/**
 * `JSON.stringify(params, exactNumbers)`, the text simplifyProgram and structuralKey tell
 * equations' params apart by, written without JSON.stringify's replacer calls for the params
 * every primitive has: an object of numbers, strings, booleans, null and arrays of numbers (empty
 * for the elementwise primitives). A replacer made JSON.stringify call back into JavaScript for
 * every key and element, about a microsecond an equation: a third of tracing a long gradient.
 * Anything else (nested objects, other array elements) is left to JSON.stringify, so the text is
 * the same for every params object.
 */
export function paramsKey(params: object): string {
  // An instance of a class may have a toJSON or getters on its prototype: JSON.stringify decides.
  const proto: unknown = Object.getPrototypeOf(params);
  if (proto !== Object.prototype && proto !== null) return JSON.stringify(params, exactNumbers);
  let text = '{';
  let first = true;
  for (const k in params) {
    if (!Object.prototype.hasOwnProperty.call(params, k)) return JSON.stringify(params, exactNumbers);
    const v = (params as Record<string, unknown>)[k];
    let part: string;
    if (typeof v === 'number') part = exactNumberJson(v);
    else if (typeof v === 'string' || typeof v === 'boolean' || v === null) part = JSON.stringify(v);
    else if (v === undefined) continue;
    else if (Array.isArray(v)) {
      part = '[';
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (typeof x !== 'number') return JSON.stringify(params, exactNumbers);
        part += (i === 0 ? '' : ',') + exactNumberJson(x);
      }
      part += ']';
    } else return JSON.stringify(params, exactNumbers);
    text += `${first ? '' : ','}${JSON.stringify(k)}:${part}`;
    first = false;
  }
  return `${text}}`;
}

/** A number as `JSON.stringify(x, exactNumbers)` writes it. */
function exactNumberJson(x: number): string {
  return Number.isFinite(x) && !Object.is(x, -0) ? String(x) : JSON.stringify(exactNumbers('', x));
}

/**
 * JSON of a number that JSON alone would lose: NaN and ±Infinity (all `null`) and −0 (`0`), which
 * compiled kernels bake in as literals, so programs (and equations) differing only there must differ in key.
 * A replacer for JSON.stringify; also the CPU's WebAssembly kernel cache key (cpu/wasmPlan.ts).
 */
export function exactNumbers(_key: string, value: unknown): unknown {
  if (typeof value !== 'number' || (Number.isFinite(value) && !Object.is(value, -0))) return value;
  return `#${Object.is(value, -0) ? '-0' : String(value)}`;
}

/** A program prepared for one backend: `run` takes input handles and keys, returns handles. */
export interface CompiledProgram<H extends BackendHandle = BackendHandle> {
  readonly program: Program;
  /**
   * Runs the program. Returns one handle per output, then one per update (the value the updated
   * input takes). Input handles stay owned by the caller, except that a `donated` input's
   * storage may be reused: its update (if any) may come back as that very handle, updated in
   * place, and a donated input that is not updated may have been consumed (the caller disposes it).
   */
  run(inputs: readonly H[], keys: readonly RandomKey[], donated: readonly boolean[]): H[];
  /** Frees what compilation allocated (pipelines, plans); the program can no longer run. */
  dispose(): void;
  /** The kernels a call launches, in order, with the equations each covers and its source. */
  kernels(): readonly KernelInfo[];
}

/** One kernel of a compiled program, for people who read and time kernels. */
export interface KernelInfo {
  /** A short name (the pipeline label on WebGPU). */
  readonly name: string;
  /** Indices into `program.equations` of the equations the kernel computes. */
  readonly equations: readonly number[];
  /** Generated source (WGSL on WebGPU), or a description for kernels with no source of their own. */
  readonly source: string;
}

/**
 * The reference way to run a program: each equation through `backend.execute`, as eager mode
 * calls it, freeing every intermediate after its last use. Any backend can run any program so.
 */
export function interpretProgram<H extends BackendHandle>(backend: Backend<H>, program: Program): CompiledProgram<H> {
  const lastUse = new Map<number, number>();
  program.equations.forEach((eq, i) => {
    for (const x of eq.inputs) lastUse.set(x.id, i);
  });
  const keep = new Set<number>([...program.outputs.map((v) => v.id), ...program.updates.map((u) => u.value.id)]);
  const inputIds = new Set(program.inputs.map((v) => v.id));
  return {
    program,
    run(inputs, keyValues) {
      const keys = program.resolveKeys(keyValues);
      const env = new Map<number, H>();
      program.inputs.forEach((v, i) => env.set(v.id, inputs[i]!));
      const owned: H[] = [];
      try {
        program.equations.forEach((eq, i) => {
          const params = eq.key ? ({ ...(eq.params as PrimitiveParams['random']), key: keys.get(eq.key)! } as PrimitiveParams[Primitive]) : eq.params;
          const handles = eq.inputs.map((x) => env.get(x.id)!);
          const info = { shape: [...eq.out.shape], dtype: eq.out.dtype };
          const session = profilerSession();
          const out = session ? executeProfiled(session, backend, eq.prim, handles, eq.inputs, params, info) : backend.execute(eq.prim, handles, params, info);
          env.set(eq.out.id, out);
          owned.push(out);
          for (const x of new Set(eq.inputs)) {
            if (lastUse.get(x.id) === i && !keep.has(x.id) && !inputIds.has(x.id)) {
              backend.dispose(env.get(x.id)!);
              env.delete(x.id);
            }
          }
          // A value nobody reads (an unused output of a kept equation) is freed at once.
          if (!lastUse.has(eq.out.id) && !keep.has(eq.out.id)) {
            backend.dispose(out);
            env.delete(eq.out.id);
          }
        });
      } catch (e) {
        for (const h of owned) backend.dispose(h);
        throw e;
      }
      // Outputs are distinct handles even when two outputs (or an output and an update) are one
      // value: each tensor made from them is disposed on its own.
      const handedOut = new Set<H>();
      const result = [...program.outputs, ...program.updates.map((u) => u.value)].map((v) => {
        const h = env.get(v.id)!;
        if (!handedOut.has(h)) {
          handedOut.add(h);
          return h;
        }
        return backend.execute('stopGradient', [h], {}, { shape: [...v.shape], dtype: v.dtype });
      });
      return result;
    },
    dispose() {},
    kernels() {
      return program.equations.map((eq, i) => ({ name: eq.prim, equations: [i], source: `${backend.name} backend: execute('${eq.prim}')` }));
    },
  };
}
