// Creating tensors: from host data, constants, ranges, identity, and random draws.

import { getBackend, getDefaultDevice } from './backend.js';
import { type DType, type TypedArray, allocTyped, assertDType, dtypeOfTyped, isFloatDType, storedValue, toTyped } from './dtype.js';
import type { RandomKey } from './primitives.js';
import { checkKey, nextKey } from './random.js';
import { checkNumber, checkOptions, showValue } from '@scorch/options';
import { type Shape, assertAllocatable, assertShape, fmtShape, sizeOf } from './shape.js';
import { isPlainObject } from './tree.js';
import { Tensor, apply, composite } from './tensor.js';
import { constant, where, less, scalarLike } from './ops.js';

export interface CreationOptions {
  /** Element type; default float32 (float64 for a Float64Array, int32 for an Int32Array, bool for a Uint8Array of 0s and 1s — other bytes need a dtype — or data that is all booleans). */
  dtype?: DType;
  /** Device name; default the current default device ('cpu' unless changed). */
  device?: string;
}

export interface TensorOptions extends CreationOptions {
  /** Shape for flat data; default: inferred from nesting (or [length] for typed arrays). */
  shape?: readonly number[];
}

const CREATION_OPTIONS = ['dtype', 'device'] as const satisfies readonly (keyof CreationOptions)[];
const TENSOR_OPTIONS = [...CREATION_OPTIONS, 'shape'] as const satisfies readonly (keyof TensorOptions)[];

export type NestedNumbers = number | boolean | readonly NestedNumbers[];

function inferShape(data: NestedNumbers): number[] {
  const shape: number[] = [];
  let d: NestedNumbers = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    d = (d as readonly NestedNumbers[])[0] as NestedNumbers;
    if (d === undefined) break;
  }
  return shape;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value); // was 'a undefined'
  if (Array.isArray(value)) return 'an array';
  // A tensor among numbers (the torch.tensor([t1, t2]) habit) was 'a object': say what to do instead.
  if (value instanceof Tensor) return `${showValue(value)} (stack or concat tensors; read a tensor's values with await t.data())`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} (nest plain arrays, or give one flat typed array with { shape })`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * Appends the leaves of `data` to `out`, checking that every entry matches `shape` (inferred from
 * the first entry at each depth). `path` is the index of `data`, so errors can point at it.
 */
function flatten(data: unknown, shape: readonly number[], out: number[], path: number[] = []): void {
  const depth = path.length;
  const at = `entry ${fmtShape(path)}`;
  if (depth === shape.length) {
    if (Array.isArray(data)) throw new Error(`tensor: nested data is ragged: ${at} is an array, expected a number`);
    if (typeof data !== 'number' && typeof data !== 'boolean') throw new TypeError(`tensor: ${at} is ${describeValue(data)}, expected a number or boolean`);
    out.push(Number(data));
    return;
  }
  if (!Array.isArray(data)) {
    throw new Error(`tensor: nested data is ragged: ${at} is ${describeValue(data)}, expected an array of ${shape[depth]} elements`);
  }
  if (data.length !== shape[depth]) {
    throw new Error(
      `tensor: nested data is ragged: ${at} has ${data.length} element${data.length === 1 ? '' : 's'}, expected ${shape[depth]} ` +
        `(inferred shape ${fmtShape(shape)} from the first entries)`,
    );
  }
  // An index loop, not forEach: forEach skips a sparse array's holes, so [1, , 3] gave two values
  // (and with a shape given, the rest shifted into place silently).
  for (let i = 0; i < data.length; i++) {
    if (!(i in data)) throw new TypeError(`tensor: entry ${fmtShape([...path, i])} is empty (a hole in a sparse array), expected a number or boolean`);
    flatten(data[i], shape, out, [...path, i]);
  }
}

/** Whether `data` has leaves and every one is a boolean (a mix with numbers is numeric, as in torch.tensor). */
function allBoolean(data: readonly number[] | NestedNumbers): boolean {
  let any = false;
  const visit = (d: unknown): boolean => {
    if (Array.isArray(d)) {
      for (let i = 0; i < d.length; i++) if (!visit(d[i])) return false; // holes included (every skips them)
      return true;
    }
    any = true;
    return typeof d === 'boolean';
  };
  return visit(data) && any;
}

/**
 * `device` (default: the default device), refusing an unknown device and a dtype its backend
 * lacks under the name of the function the caller wrote (the backend's own upload or fill named
 * itself; getBackend names no function).
 */
export function deviceFor(where: string, device: string | undefined, dtype: DType): string {
  const name = device ?? getDefaultDevice();
  const { dtypes } = getBackend(name, where);
  if (!dtypes.includes(dtype)) throw new Error(`${where}: device '${name}' does not support dtype ${dtype} (it supports ${dtypes.join(', ')})`);
  return name;
}

/** A shape given in tensor's options, checked before it is copied: `shape: 4` failed as "opts.shape is not iterable", and `shape: 0` was taken for no shape. */
function givenShape(shape: unknown): number[] {
  assertShape(shape, 'tensor');
  return [...shape];
}

/**
 * A tensor from nested arrays, a flat array with `shape`, a typed array, or a number. Values are
 * converted to `dtype` as `cast` converts them (bool: nonzero; int32: truncated).
 */
export function tensor(data: NestedNumbers | TypedArray, opts: TensorOptions = {}): Tensor {
  checkOptions('tensor', opts, TENSOR_OPTIONS);
  let source: ArrayLike<number>;
  let shape: number[];
  let dtype: DType;
  if (ArrayBuffer.isView(data)) {
    // With a dtype, any numeric typed array converts; BigInt arrays and DataViews hold no numbers
    // (converting one threw JavaScript's 'Cannot convert a BigInt value to a number').
    if (data instanceof BigInt64Array || data instanceof BigUint64Array || data instanceof DataView) {
      throw new TypeError(`tensor: unsupported ${data.constructor.name}; convert it to a Float64Array or Int32Array (or an array of numbers) first`);
    }
    const typed = data as TypedArray;
    if (opts.dtype === undefined && typed instanceof Uint8Array) {
      // Bytes (an image, a Node Buffer) read as bool collapsed to 0 and 1 without a word.
      const at = typed.findIndex((v) => v > 1);
      if (at >= 0) throw new TypeError(`tensor: a Uint8Array is read as bool (0 or 1), but it holds ${typed[at]} at ${at}; pass { dtype: 'int32' } or { dtype: 'float32' } to keep its values, or { dtype: 'bool' } to read nonzero as true`);
    }
    dtype = opts.dtype ?? dtypeOfTyped(typed, 'tensor');
    shape = opts.shape !== undefined ? givenShape(opts.shape) : [typed.length];
    source = typed;
  } else {
    const natural = inferShape(data);
    const flat: number[] = [];
    flatten(data, natural, flat);
    // Bool only when every value is a boolean: inferred from the first alone, [true, 2] became
    // [true, true] (2 read as nonzero) while [2, true] became [2, 1].
    dtype = opts.dtype ?? (allBoolean(data) ? 'bool' : 'float32');
    shape = opts.shape !== undefined ? givenShape(opts.shape) : natural;
    source = flat;
  }
  assertDType(dtype, 'tensor');
  assertShape(shape, 'tensor');
  assertAllocatable(shape, 'tensor');
  if (sizeOf(shape) !== source.length) {
    throw new Error(`tensor: ${source.length} values do not fill shape ${fmtShape(shape)} (${sizeOf(shape)} elements)`);
  }
  const backend = getBackend(deviceFor('tensor', opts.device, dtype));
  return Tensor._fromHandle(backend.upload(toTyped(source, dtype), shape, dtype), shape, dtype, backend);
}

/** A tensor of `shape` filled with `value`. */
export function full(shape: Shape, value: number, opts: CreationOptions = {}): Tensor {
  return fullAs('full', shape, value, opts);
}

/** full's work; errors name `name`, the function the caller wrote (full, zeros, ones). */
function fullAs(name: string, shape: Shape, value: number, opts: CreationOptions): Tensor {
  checkOptions(name, opts, CREATION_OPTIONS);
  assertShape(shape, name);
  assertAllocatable(shape, name);
  // A string or boolean would be converted by the cast rule ('3' → 3, true → 1) without a word.
  if (typeof value !== 'number') throw new TypeError(`${name}: value must be a number, got ${value === null ? 'null' : typeof value}`);
  const dtype = opts.dtype ?? 'float32';
  assertDType(dtype, name);
  return constant(value, shape, dtype, deviceFor(name, opts.device, dtype));
}

/** A tensor of `shape` filled with 0 (`opts`: dtype, default float32; device, default the default device). */
export const zeros = (shape: Shape, opts: CreationOptions = {}): Tensor => fullAs('zeros', shape, 0, opts);
/** A tensor of `shape` filled with 1 (`opts` as `zeros`). */
export const ones = (shape: Shape, opts: CreationOptions = {}): Tensor => fullAs('ones', shape, 1, opts);

/**
 * Values start, start+step, ... below stop (as numpy.arange and torch.arange: ceil((stop − start)
 * / step) of them). `arange(n)` is 0..n−1. Into int32, as torch.arange: start and step are
 * truncated first, so the values are whole steps apart (a step that truncates to 0 is refused).
 */
export function arange(start: number, stop?: number, step = 1, opts: CreationOptions = {}): Tensor {
  for (const [name, value] of [['stop', stop], ['step', step]] as const) {
    if (isPlainObject(value)) throw new TypeError(`arange: got an options object as ${name}; options are the 4th argument: arange(start, stop, step, { dtype, device })`);
  }
  checkOptions('arange', opts, CREATION_OPTIONS);
  // Required: arange(x.shape[2]) on a rank-2 x failed inside `tensor` with a shape [null].
  checkNumber('arange', stop === undefined ? 'stop' : 'start', start, { required: true });
  checkNumber('arange', 'stop', stop);
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0 || !Number.isFinite(step)) throw new RangeError(`arange: step must be a finite non-zero number, got ${showValue(step)}`);
  const n = Math.max(0, Math.ceil((stop - start) / step));
  assertAllocatable([n], 'arange');
  const dtype = opts.dtype ?? 'float32';
  assertDType(dtype, 'arange');
  deviceFor('arange', opts.device, dtype);
  // Computed in float64 and converted by `tensor` (storedValue's rules): written straight into
  // int32 or bool storage, 3e9 wrapped to −1294967296 and 256 to 0 (false).
  const values = new Float64Array(n);
  if (dtype === 'int32') {
    // Each value truncated on its own repeated 0 where the range crosses it: arange(-1.5, 2, 1)
    // gave [-1, 0, 0, 1] (torch: [-1, 0, 1, 2]).
    const [first, stride] = [Math.trunc(start), Math.trunc(step)];
    if (stride === 0 && n > 0) throw new RangeError(`arange: step ${step} truncates to 0 in int32 (as torch.arange); use a whole step, or a float dtype`);
    for (let i = 0; i < n; i++) values[i] = first + i * stride;
  } else {
    for (let i = 0; i < n; i++) values[i] = start + i * step;
  }
  return tensor(values, { dtype, device: opts.device, shape: [n] });
}

/** `num` evenly spaced values from start to stop inclusive. */
export function linspace(start: number, stop: number, num: number, opts: CreationOptions = {}): Tensor {
  if (isPlainObject(num)) throw new TypeError('linspace: got an options object as num; options are the 4th argument: linspace(start, stop, num, { dtype, device })');
  checkOptions('linspace', opts, CREATION_OPTIONS);
  checkNumber('linspace', 'start', start, { required: true });
  checkNumber('linspace', 'stop', stop, { required: true });
  if (!Number.isInteger(num) || num < 0) throw new RangeError(`linspace: num must be a non-negative integer, got ${showValue(num)}`);
  assertAllocatable([num], 'linspace');
  const dtype = opts.dtype ?? 'float32';
  assertDType(dtype, 'linspace');
  deviceFor('linspace', opts.device, dtype);
  const values = new Float64Array(num); // converted by `tensor`, as arange's
  const step = num > 1 ? (stop - start) / (num - 1) : 0;
  for (let i = 0; i < num; i++) values[i] = i === num - 1 && num > 1 ? stop : start + i * step;
  return tensor(values, { dtype, device: opts.device, shape: [num] });
}

/** The n×m identity (m defaults to n); `eye(n, opts)` is `eye(n, n, opts)`. */
export function eye(n: number, m?: number | CreationOptions, opts: CreationOptions = {}): Tensor {
  if (m !== null && typeof m === 'object') {
    opts = m;
    m = n;
  }
  m ??= n;
  checkOptions('eye', opts, CREATION_OPTIONS);
  if (!Number.isInteger(n) || !Number.isInteger(m) || n < 0 || m < 0) throw new RangeError(`eye: sizes must be non-negative integers, got ${showValue(n)}, ${showValue(m)}`);
  const dtype = opts.dtype ?? 'float32';
  assertDType(dtype, 'eye');
  deviceFor('eye', opts.device, dtype);
  assertAllocatable([n, m], 'eye');
  const values = allocTyped(dtype, n * m);
  for (let i = 0; i < Math.min(n, m); i++) values[i * m + i] = 1;
  return tensor(values, { dtype, device: opts.device, shape: [n, m] });
}

export interface RandomOptions extends CreationOptions {
  /** Explicit key (from randomKey/splitKey); default: the next key of the seeded default stream. */
  key?: RandomKey;
}

const RANDOM_OPTIONS = [...CREATION_OPTIONS, 'key'] as const satisfies readonly (keyof RandomOptions)[];

function randomPrim(op: string, shape: Shape, distribution: 'uniform' | 'normal', opts: RandomOptions): Tensor {
  // A misspelt key (`seed:`, `Key:`) must not fall back to the default stream unnoticed.
  checkOptions(op, opts, RANDOM_OPTIONS);
  assertShape(shape, op);
  assertAllocatable(shape, op);
  const dtype = opts.dtype ?? 'float32';
  assertDType(dtype, op);
  if (!isFloatDType(dtype)) throw new TypeError(`${op}: dtype must be float32 or float64, got ${dtype}`);
  // Checked here so the error names rand, randn or rademacher, not the primitive 'random', and
  // before a keyless draw takes the default stream's next key.
  const device = deviceFor(op, opts.device, dtype);
  // Only an absent key means the default stream: `key: null` is a key that went missing.
  const key = opts.key === undefined ? nextKey() : opts.key;
  checkKey(key, op);
  return apply('random', [], { key, distribution, shape: [...shape], dtype, device });
}

/**
 * Standard normal samples (Box–Muller pairs of `rand`'s uniforms for the same key, so use a key
 * for one draw only); float32 unless `dtype` says float64, from `key` or the default stream.
 * Element i depends only on the key, dtype and i (docs/conventions.md, Random keys).
 */
export const randn = (shape: Shape, opts: RandomOptions = {}): Tensor => randomPrim('randn', shape, 'normal', opts);
/**
 * Uniform samples on [0, 1): multiples of 2⁻²⁴ in float32 (the default), of 2⁻⁵³ in float64,
 * never 1; from `key` or the default stream. Element i depends only on the key, dtype and i.
 */
export const rand = (shape: Shape, opts: RandomOptions = {}): Tensor => randomPrim('rand', shape, 'uniform', opts);
/** Random signs ±1 with equal probability (Rademacher): −1 where `rand` of the same key is below ½; float32 unless `dtype` says float64. */
export function rademacher(shape: Shape, opts: RandomOptions = {}): Tensor {
  return composite(() => {
    const u = randomPrim('rademacher', shape, 'uniform', opts);
    // The constants take u's dtype, so float64 draws give float64 signs.
    return where(less(u, 0.5), scalarLike(-1, u), 1);
  });
}
