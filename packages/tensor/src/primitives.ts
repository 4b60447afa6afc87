// The primitive set: every tensor operation reduces to these, and each backend implements them.
// Shape and dtype inference lives here, once, so backends and transforms never disagree on it.
// Adding a primitive: a member here, a `params` entry, an inference case, a CPU implementation,
// a WGSL kernel, a jvp rule and a vjp rule (the compiler reports each missing table entry).

import { DTYPES, type DType, assertDType, isFloatDType, storedValue } from './dtype.js';
import { everyEntry, showValue } from '@scorch/options';
import { findPrimitiveDefinition } from './primitiveRegistry.js';
import { type Shape, fmtShape, shapesEqual, sizeOf } from './shape.js';

/** Elementwise primitives of one operand (float tensors; `neg` takes int32 too). */
export const UNARY_PRIMITIVES = [
  'neg', 'exp', 'log', 'sin', 'cos', 'sqrt', 'reciprocal', 'tanh', 'log1p', 'expm1', 'sigmoid',
  'floor', 'ceil', 'round', 'sign', 'erf',
] as const;
/** Elementwise primitives of two operands of one shape and dtype (`max` is `maximum`). */
export const BINARY_PRIMITIVES = ['add', 'sub', 'mul', 'div', 'max', 'pow'] as const;
/** Elementwise comparisons: two operands of one shape and dtype, a bool result. */
export const COMPARE_PRIMITIVES = ['less', 'lessEqual', 'equal', 'notEqual'] as const;
/** Reductions over a list of axes (`reduceMax` is `max`). */
export const REDUCE_PRIMITIVES = ['sum', 'reduceMax'] as const;
/** Index of the largest (smallest) entry along one axis: int32 results, no derivative. */
export const ARG_REDUCE_PRIMITIVES = ['argmax', 'argmin'] as const;
/** Inclusive running sums and products along one axis. */
export const SCAN_PRIMITIVES = ['cumsum', 'cumprod'] as const;

export type UnaryPrimitive = (typeof UNARY_PRIMITIVES)[number];
export type BinaryPrimitive = (typeof BINARY_PRIMITIVES)[number];
export type ComparePrimitive = (typeof COMPARE_PRIMITIVES)[number];
export type ReducePrimitive = (typeof REDUCE_PRIMITIVES)[number];
export type ArgReducePrimitive = (typeof ARG_REDUCE_PRIMITIVES)[number];
export type ScanPrimitive = (typeof SCAN_PRIMITIVES)[number];

/** Philox key: two unsigned 32-bit words. */
export type RandomKey = readonly [number, number];
export type RandomDistribution = 'uniform' | 'normal';

/** Parameters of each primitive. Shapes and axes are already normalised when they get here. */
export interface PrimitiveParams {
  neg: Record<string, never>;
  exp: Record<string, never>;
  log: Record<string, never>;
  sin: Record<string, never>;
  cos: Record<string, never>;
  sqrt: Record<string, never>;
  reciprocal: Record<string, never>;
  tanh: Record<string, never>;
  log1p: Record<string, never>;
  expm1: Record<string, never>;
  /** The logistic function σ(x) = 1/(1 + e⁻ˣ): a primitive (as JAX's logistic) because SiLU,
   *  the default activation of score networks, would otherwise be ~10 kernels per call. */
  sigmoid: Record<string, never>;
  /** Largest integer ≤ x (±0, ±∞ and NaN map to themselves). */
  floor: Record<string, never>;
  /** Smallest integer ≥ x. */
  ceil: Record<string, never>;
  /** Nearest integer, halves to the even one (IEEE roundTiesToEven, as NumPy and PyTorch). */
  round: Record<string, never>;
  /** 1 for x > 0, −1 for x < 0, x itself for ±0 and NaN. */
  sign: Record<string, never>;
  /** The error function erf(x) = 2/√π ∫₀ˣ e^(−t²) dt. */
  erf: Record<string, never>;
  add: Record<string, never>;
  sub: Record<string, never>;
  mul: Record<string, never>;
  div: Record<string, never>;
  max: Record<string, never>;
  pow: Record<string, never>;
  less: Record<string, never>;
  lessEqual: Record<string, never>;
  equal: Record<string, never>;
  notEqual: Record<string, never>;
  /** where(cond, a, b): all three of one shape; cond is bool. */
  where: Record<string, never>;
  /** Sum over sorted axes; the reduced axes are removed from the output shape. */
  sum: { axes: readonly number[] };
  reduceMax: { axes: readonly number[] };
  /**
   * The first index of the largest entry along `axis` (removed from the output), int32. NaN
   * counts as larger than everything (the first NaN wins), as in PyTorch and NumPy.
   */
  argmax: { axis: number };
  /** The first index of the smallest entry along `axis`; NaN counts as smaller than everything. */
  argmin: { axis: number };
  /** y_i = Σ_{j ≤ i} x_j along `axis` (Σ_{j ≥ i} when `reverse`); the shape is kept. */
  cumsum: { axis: number; reverse: boolean };
  /** y_i = Π_{j ≤ i} x_j along `axis` (Π_{j ≥ i} when `reverse`). */
  cumprod: { axis: number; reverse: boolean };
  reshape: { shape: Shape };
  /** Broadcast to `shape` (same rank as the input; size-1 axes stretch). */
  expand: { shape: Shape };
  permute: { perm: readonly number[] };
  /** Contiguous window [starts[i], ends[i]) on every axis. */
  slice: { starts: readonly number[]; ends: readonly number[] };
  /** Zero padding before/after every axis (the transpose of slice). */
  pad: { before: readonly number[]; after: readonly number[] };
  concat: { axis: number };
  /** gather(x, indices): x's slices at int32 `indices` (1-D) along `axis`. */
  gather: { axis: number };
  /** scatterAdd(updates, indices): zeros of extent `size` on `axis`, updates added at indices. */
  scatterAdd: { axis: number; size: number };
  /** Batched matrix product [...b, m, k] x [...b, k, n]; batch dims equal (the API broadcasts). */
  matmul: Record<string, never>;
  cast: { dtype: DType };
  /** Counter-based random numbers; no inputs. */
  random: { key: RandomKey; distribution: RandomDistribution; shape: Shape; dtype: DType; device: string };
  /**
   * A constant: `shape` filled with `value` (already converted to `dtype` by `storedValue`); no
   * inputs. A primitive so that scalar operands and zeros are values a traced program can see
   * (as literals) rather than buffers made behind the dispatch point.
   */
  full: { value: number; shape: Shape; dtype: DType; device: string };
  /** The identity whose derivative is zero (`detach()`): JAX's stop_gradient. */
  stopGradient: Record<string, never>;
  /**
   * A primitive defined with `definePrimitive`, by name: its inference, kernels and rules come
   * from the registered definition (primitiveRegistry.ts), so every rule table has this one entry.
   */
  custom: { name: string };
}

export type Primitive = keyof PrimitiveParams;

/** The built-in primitives (every member of `Primitive` but 'custom', the entry point of defined ones). */
export const PRIMITIVES: readonly Primitive[] = [
  ...UNARY_PRIMITIVES, ...BINARY_PRIMITIVES, ...COMPARE_PRIMITIVES, 'where', ...REDUCE_PRIMITIVES,
  ...ARG_REDUCE_PRIMITIVES, ...SCAN_PRIMITIVES, 'reshape', 'expand', 'permute', 'slice', 'pad', 'concat', 'gather', 'scatterAdd', 'matmul', 'cast', 'random',
  'full', 'stopGradient',
];

/** Primitives with no inputs: they make values from their params alone (a device is a param). */
export function isSource(p: Primitive): p is 'random' | 'full' {
  return p === 'random' || p === 'full';
}

// The kinds as sets: every op asks inference and the backend which kind its primitive is, and
// `includes` compared it with each name of an array in turn.
const UNARY_SET: ReadonlySet<Primitive> = new Set(UNARY_PRIMITIVES);
const BINARY_SET: ReadonlySet<Primitive> = new Set(BINARY_PRIMITIVES);
const COMPARE_SET: ReadonlySet<Primitive> = new Set(COMPARE_PRIMITIVES);
const REDUCE_SET: ReadonlySet<Primitive> = new Set(REDUCE_PRIMITIVES);
const ARG_REDUCE_SET: ReadonlySet<Primitive> = new Set(ARG_REDUCE_PRIMITIVES);
const SCAN_SET: ReadonlySet<Primitive> = new Set(SCAN_PRIMITIVES);

/** Whether `p` is one of `UNARY_PRIMITIVES`. */
export function isUnary(p: Primitive): p is UnaryPrimitive {
  return UNARY_SET.has(p);
}
/** Whether `p` is one of `BINARY_PRIMITIVES`. */
export function isBinary(p: Primitive): p is BinaryPrimitive {
  return BINARY_SET.has(p);
}
/** Whether `p` is one of `COMPARE_PRIMITIVES`. */
export function isCompare(p: Primitive): p is ComparePrimitive {
  return COMPARE_SET.has(p);
}
/** Whether `p` is one of `REDUCE_PRIMITIVES`. */
export function isReduce(p: Primitive): p is ReducePrimitive {
  return REDUCE_SET.has(p);
}
/** Whether `p` is one of `ARG_REDUCE_PRIMITIVES`. */
export function isArgReduce(p: Primitive): p is ArgReducePrimitive {
  return ARG_REDUCE_SET.has(p);
}
/** Whether `p` is one of `SCAN_PRIMITIVES`. */
export function isScan(p: Primitive): p is ScanPrimitive {
  return SCAN_SET.has(p);
}

/**
 * The error for an index outside [0, extent) in gather or scatterAdd. Indices are data, so only
 * a backend can find a bad one; every backend reports it in these words.
 */
export function indexOutOfRange(prim: 'gather' | 'scatterAdd', index: number, axis: number, extent: number): RangeError {
  return new RangeError(`${prim}: index ${index} is out of range for axis ${axis} of extent ${extent} (expected 0 <= index < ${extent})`);
}

/** What an input looks like to inference: a tracer and a concrete tensor answer alike. */
export interface AbstractValue {
  readonly shape: Shape;
  readonly dtype: DType;
}

export interface OutputInfo {
  shape: readonly number[];
  dtype: DType;
}

const fail = (prim: string, msg: string): never => {
  throw new Error(`${prim}: ${msg}`);
};

function sameDType(prim: string, xs: readonly AbstractValue[]): DType {
  const d = xs[0]!.dtype;
  for (const x of xs) {
    if (x.dtype !== d) fail(prim, `dtype mismatch (${xs.map((v) => v.dtype).join(' vs ')}); cast one operand first`);
  }
  return d;
}

function sameShape(prim: string, xs: readonly AbstractValue[]): Shape {
  const s = xs[0]!.shape;
  for (const x of xs) {
    if (!shapesEqual(x.shape, s)) fail(prim, `shapes differ (${xs.map((v) => fmtShape(v.shape)).join(' vs ')})`);
  }
  return ownShape(s);
}

/**
 * An output shape equal to an input's: that array itself when it is frozen (a tensor's or a
 * program variable's shape; nothing can change it), else a copy. Tensors freeze their shape, and
 * copying and freezing one per op was ~7% of a small eager op.
 */
function ownShape(shape: Shape): Shape {
  return Object.isFrozen(shape) ? shape : [...shape];
}

function arity(prim: string, inputs: readonly AbstractValue[], n: number): void {
  if (inputs.length !== n) fail(prim, `expected ${n} input(s), got ${inputs.length}`);
}

/**
 * Params are normalised by the ops before they get here, but `apply` is public, and a bad axis
 * was not caught downstream: concat on axis −1 gave zeros of the input's shape, a sum over axis 2
 * of a matrix gave the matrix back, gather on axis 2 said 'extent undefined'.
 */
function checkAxis(prim: string, axis: unknown, shape: Shape): asserts axis is number {
  // showValue: interpolated, the string '1' read as axis 1 of a matrix, 'out of range' (fa4c369).
  if (!(Number.isInteger(axis) && (axis as number) >= 0 && (axis as number) < shape.length)) fail(prim, `axis ${showValue(axis)} is out of range for ${fmtShape(shape)}`);
}

/** A shape param must be non-negative integers: reshape to [−1, −6] passed the element count check. */
function checkShapeParam(prim: string, shape: Shape): void {
  if (!Array.isArray(shape) || !everyEntry(shape, (d) => Number.isInteger(d) && (d as number) >= 0)) fail(prim, `shape must be non-negative integers, got ${JSON.stringify(shape)}`);
}

/** How errors and profiles name a primitive call: a defined primitive by its own name, not as 'custom'. */
export function primitiveCallName<P extends Primitive>(prim: P, params: PrimitiveParams[P]): string {
  return prim === 'custom' ? (params as PrimitiveParams['custom']).name : prim;
}

/** Output shape and dtype of a primitive, or an error that says what was wrong. */
export function inferOutput<P extends Primitive>(
  prim: P,
  inputs: readonly AbstractValue[],
  params: PrimitiveParams[P],
): OutputInfo {
  if (isUnary(prim)) {
    arity(prim, inputs, 1);
    const x = inputs[0]!;
    if (!isFloatDType(x.dtype) && prim !== 'neg') fail(prim, `expected a float tensor, got ${x.dtype}`);
    if (x.dtype === 'bool') fail(prim, 'expected a numeric tensor, got bool');
    return { shape: ownShape(x.shape), dtype: x.dtype };
  }
  if (isBinary(prim)) {
    arity(prim, inputs, 2);
    const dtype = sameDType(prim, inputs);
    if (dtype === 'bool') fail(prim, 'expected numeric tensors, got bool');
    if ((prim === 'pow' || prim === 'div') && !isFloatDType(dtype)) fail(prim, `expected float tensors, got ${dtype}`);
    return { shape: sameShape(prim, inputs), dtype };
  }
  if (isCompare(prim)) {
    arity(prim, inputs, 2);
    sameDType(prim, inputs);
    return { shape: sameShape(prim, inputs), dtype: 'bool' };
  }
  if (isReduce(prim)) {
    arity(prim, inputs, 1);
    const { axes } = params as PrimitiveParams['sum'];
    const x = inputs[0]!;
    if (x.dtype === 'bool') fail(prim, 'expected a numeric tensor, got bool; cast it first');
    for (const a of axes) checkAxis(prim, a, x.shape);
    // As the ops (and NumPy, PyTorch) refuse it; through apply a repeated axis was taken as one.
    if (new Set(axes).size !== axes.length) fail(prim, `axes ${showValue(axes)} name the same axis twice`);
    return { shape: x.shape.filter((_, i) => !axes.includes(i)), dtype: x.dtype };
  }
  if (isArgReduce(prim) || isScan(prim)) {
    arity(prim, inputs, 1);
    const { axis } = params as PrimitiveParams['argmax'];
    const x = inputs[0]!;
    if (x.dtype === 'bool') fail(prim, 'expected a numeric tensor, got bool; cast it first');
    checkAxis(prim, axis, x.shape);
    if (isScan(prim)) {
      const { reverse } = params as PrimitiveParams['cumsum'];
      // A truthy non-boolean ('yes') reversed the scan; the ops check it (checkBoolean), apply did not.
      if (typeof reverse !== 'boolean') fail(prim, `reverse must be true or false, got ${showValue(reverse)}`);
      return { shape: ownShape(x.shape), dtype: x.dtype };
    }
    if (x.shape[axis] === 0) fail(prim, `cannot reduce the empty axis ${axis} of ${fmtShape(x.shape)}`);
    return { shape: x.shape.filter((_, i) => i !== axis), dtype: 'int32' };
  }
  switch (prim) {
    case 'where': {
      arity(prim, inputs, 3);
      if (inputs[0]!.dtype !== 'bool') fail(prim, `condition must be bool, got ${inputs[0]!.dtype}`);
      const dtype = sameDType(prim, inputs.slice(1));
      return { shape: sameShape(prim, inputs), dtype };
    }
    case 'reshape': {
      arity(prim, inputs, 1);
      const { shape } = params as PrimitiveParams['reshape'];
      checkShapeParam(prim, shape);
      if (sizeOf(shape) !== sizeOf(inputs[0]!.shape)) {
        fail(prim, `cannot reshape ${fmtShape(inputs[0]!.shape)} (${sizeOf(inputs[0]!.shape)} elements) to ${fmtShape(shape)} (${sizeOf(shape)} elements)`);
      }
      return { shape: [...shape], dtype: inputs[0]!.dtype };
    }
    case 'expand': {
      arity(prim, inputs, 1);
      const { shape } = params as PrimitiveParams['expand'];
      checkShapeParam(prim, shape);
      const xs = inputs[0]!.shape;
      if (xs.length !== shape.length || xs.some((d, i) => d !== 1 && d !== shape[i])) {
        fail(prim, `cannot expand ${fmtShape(xs)} to ${fmtShape(shape)} (only size-1 axes stretch)`);
      }
      return { shape: [...shape], dtype: inputs[0]!.dtype };
    }
    case 'permute': {
      arity(prim, inputs, 1);
      const { perm } = params as PrimitiveParams['permute'];
      const xs = inputs[0]!.shape;
      const seen = new Set(perm);
      if (perm.length !== xs.length || seen.size !== perm.length || perm.some((p) => !(Number.isInteger(p) && p >= 0 && p < xs.length))) {
        fail(prim, `${JSON.stringify(perm)} is not a permutation of the ${xs.length} axes of ${fmtShape(xs)}`);
      }
      return { shape: perm.map((p) => xs[p]!), dtype: inputs[0]!.dtype };
    }
    case 'slice': {
      arity(prim, inputs, 1);
      const { starts, ends } = params as PrimitiveParams['slice'];
      const xs = inputs[0]!.shape;
      if (starts.length !== xs.length || ends.length !== xs.length) fail(prim, `expected ${xs.length} starts and ends`);
      xs.forEach((d, i) => {
        const s = starts[i]!;
        const e = ends[i]!;
        if (!(Number.isInteger(s) && Number.isInteger(e) && 0 <= s && s <= e && e <= d)) fail(prim, `window [${s}, ${e}) on axis ${i} does not fit extent ${d}`);
      });
      return { shape: xs.map((_, i) => ends[i]! - starts[i]!), dtype: inputs[0]!.dtype };
    }
    case 'pad': {
      arity(prim, inputs, 1);
      const { before, after } = params as PrimitiveParams['pad'];
      const xs = inputs[0]!.shape;
      if (before.length !== xs.length || after.length !== xs.length) fail(prim, `expected ${xs.length} pad widths per side`);
      if ([...before, ...after].some((p) => !(Number.isInteger(p) && p >= 0))) {
        // showValue, not JSON: JSON.stringify printed NaN as null.
        fail(prim, `widths must be non-negative integers, got before ${showValue(before)} and after ${showValue(after)}`);
      }
      return { shape: xs.map((d, i) => d + before[i]! + after[i]!), dtype: inputs[0]!.dtype };
    }
    case 'concat': {
      const { axis } = params as PrimitiveParams['concat'];
      if (inputs.length === 0) fail(prim, 'expected at least one tensor');
      const dtype = sameDType(prim, inputs);
      const first = inputs[0]!.shape;
      checkAxis(prim, axis, first);
      let total = 0;
      for (const x of inputs) {
        if (x.shape.length !== first.length || x.shape.some((d, i) => i !== axis && d !== first[i])) {
          fail(prim, `shapes ${inputs.map((v) => fmtShape(v.shape)).join(', ')} differ off axis ${axis}`);
        }
        total += x.shape[axis]!;
      }
      const shape = [...first];
      shape[axis] = total;
      return { shape, dtype };
    }
    case 'gather': {
      arity(prim, inputs, 2);
      const { axis } = params as PrimitiveParams['gather'];
      const [x, idx] = inputs as [AbstractValue, AbstractValue];
      checkAxis(prim, axis, x.shape);
      if (idx.dtype !== 'int32' || idx.shape.length !== 1) fail(prim, `indices must be a 1-D int32 tensor, got ${idx.dtype} ${fmtShape(idx.shape)}`);
      const shape = [...x.shape];
      shape[axis] = idx.shape[0]!;
      return { shape, dtype: x.dtype };
    }
    case 'scatterAdd': {
      arity(prim, inputs, 2);
      const { axis, size } = params as PrimitiveParams['scatterAdd'];
      const [u, idx] = inputs as [AbstractValue, AbstractValue];
      checkAxis(prim, axis, u.shape);
      // A sum, refused for bool as sum is: the CPU returned a bool holding 4, WebGPU a corrupt output.
      if (u.dtype === 'bool') fail(prim, 'expected numeric updates, got bool; cast them first');
      if (!(Number.isInteger(size) && size >= 0)) fail(prim, `size must be a non-negative integer, got ${size}`);
      if (idx.dtype !== 'int32' || idx.shape.length !== 1 || idx.shape[0] !== u.shape[axis]) {
        fail(prim, `indices must be 1-D int32 of length ${u.shape[axis]}, got ${idx.dtype} ${fmtShape(idx.shape)}`);
      }
      const shape = [...u.shape];
      shape[axis] = size;
      return { shape, dtype: u.dtype };
    }
    case 'matmul': {
      arity(prim, inputs, 2);
      const [a, b] = inputs as [AbstractValue, AbstractValue];
      const dtype = sameDType(prim, inputs);
      if (!isFloatDType(dtype)) fail(prim, `expected float tensors, got ${dtype}`);
      const r = a.shape.length;
      if (r < 2 || b.shape.length !== r) fail(prim, `expected operands of equal rank >= 2, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
      if (a.shape[r - 1] !== b.shape[r - 2]) {
        fail(prim, `inner dimensions differ (${a.shape[r - 1]} vs ${b.shape[r - 2]}) for shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
      }
      if (!shapesEqual(a.shape.slice(0, -2), b.shape.slice(0, -2))) fail(prim, `batch dimensions differ for ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
      return { shape: [...a.shape.slice(0, -1), b.shape[r - 1]!], dtype };
    }
    case 'cast': {
      arity(prim, inputs, 1);
      const { dtype } = params as PrimitiveParams['cast'];
      // Every path to the kernels (eager, jit, a raw apply) meets this: an unknown dtype reached them.
      assertDType(dtype, prim);
      return { shape: ownShape(inputs[0]!.shape), dtype };
    }
    case 'random': {
      arity(prim, inputs, 0);
      const p = params as PrimitiveParams['random'];
      checkShapeParam(prim, p.shape);
      if (!isFloatDType(p.dtype)) fail(prim, `random values are float32 or float64, got ${p.dtype}`);
      // Unchecked, any other distribution drew normal numbers (the kernels test for 'uniform'),
      // and a key of another form drew from whatever words it held, or failed reading key[0].
      if (p.distribution !== 'uniform' && p.distribution !== 'normal') fail(prim, `distribution must be 'uniform' or 'normal', got ${showValue(p.distribution)}`);
      const key: unknown = p.key;
      if (!Array.isArray(key) || key.length !== 2 || !everyEntry(key, (w) => Number.isInteger(w) && (w as number) >= 0 && (w as number) <= 0xffffffff)) {
        fail(prim, `key must be a random key, two 32-bit words (from randomKey, splitKey or foldIn), got ${showValue(key)}`);
      }
      return { shape: [...p.shape], dtype: p.dtype };
    }
    case 'full': {
      arity(prim, inputs, 0);
      const p = params as PrimitiveParams['full'];
      checkShapeParam(prim, p.shape);
      // A string filled the tensor with NaN.
      if (typeof p.value !== 'number') fail(prim, `value must be a number, got ${showValue(p.value)}`);
      // An integer store of another value would wrap (bool −2.5 stored 254); `full()` converts first.
      if ((p.dtype === 'bool' || p.dtype === 'int32') && storedValue(p.value, p.dtype) !== p.value) {
        fail(prim, `value ${p.value} cannot be held by dtype ${p.dtype} (expected ${p.dtype === 'bool' ? '0 or 1' : 'an integer in [−2³¹, 2³¹ − 1]'}; full() converts by the cast rule)`);
      }
      return { shape: [...p.shape], dtype: p.dtype };
    }
    case 'stopGradient': {
      arity(prim, inputs, 1);
      return { shape: ownShape(inputs[0]!.shape), dtype: inputs[0]!.dtype };
    }
    case 'custom': {
      const { name } = params as PrimitiveParams['custom'];
      const def = findPrimitiveDefinition(name);
      if (!def) return fail(prim, `no primitive named '${name}' is defined`);
      arity(name, inputs, def.inputs.length);
      if (def.kind === 'elementwise') {
        const dtype = sameDType(name, inputs);
        if (!isFloatDType(dtype)) fail(name, `expected float tensors, got ${dtype}`);
        return { shape: sameShape(name, inputs), dtype };
      }
      const out = def.infer(inputs) as unknown;
      const shape = (out as { shape?: unknown } | null)?.shape;
      const dtype = (out as { dtype?: unknown } | null)?.dtype;
      if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0) || !(DTYPES as readonly unknown[]).includes(dtype)) {
        const got = out === null || typeof out !== 'object' ? String(out) : `{ shape: ${JSON.stringify(shape)}, dtype: ${JSON.stringify(dtype)} }`;
        fail(name, `its infer must return { shape: non-negative integers, dtype: one of ${DTYPES.join(', ')} }, got ${got}`);
      }
      return { shape: [...(shape as number[])], dtype: dtype as DType };
    }
  }
  return fail(prim, 'unknown primitive');
}
