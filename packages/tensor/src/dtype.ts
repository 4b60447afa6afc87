// Element types: what a tensor can hold and the typed array that stores it on the host.

import { showValue } from '@scorch/options';

/** Element type of a tensor. WebGPU computes in float32; float64 exists on the CPU for checks. */
export type DType = 'float32' | 'float64' | 'int32' | 'bool';

/** The float dtypes: what random draws, gradients and the score layer compute in. */
export type FloatDType = 'float32' | 'float64';

export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;

/** Every dtype, in the order errors list them. */
export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'bool'];

/** Whether `dtype` is float32 or float64 (the dtypes that are differentiated). */
export function isFloatDType(dtype: DType): dtype is FloatDType {
  return dtype === 'float32' || dtype === 'float64';
}

/** Bytes one element of `dtype` takes in host storage: 8 for float64, 1 for bool (a Uint8Array), else 4. */
export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case 'float64':
      return 8;
    case 'bool':
      return 1;
    default:
      return 4;
  }
}

/** The typed array each dtype is stored in. */
const TYPED_ARRAY: Record<DType, new (storage: number | SharedArrayBuffer) => TypedArray> = {
  float32: Float32Array as never,
  float64: Float64Array as never,
  int32: Int32Array as never,
  bool: Uint8Array as never,
};

/** A new zeroed array of `size` elements of `dtype`; on a SharedArrayBuffer when `shared`. */
export function allocTyped(dtype: DType, size: number, shared = false): TypedArray {
  return new TYPED_ARRAY[dtype](shared ? new SharedArrayBuffer(size * bytesPerElement(dtype)) : size);
}

/**
 * The dtype a typed array stores: Float32Array → float32, Float64Array → float64, Int32Array →
 * int32, Uint8Array → bool. Any other array is a TypeError naming `where`.
 */
export function dtypeOfTyped(data: TypedArray, where = 'dtypeOfTyped'): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint8Array) return 'bool';
  const name = (data as object).constructor?.name ?? typeof data;
  throw new TypeError(`${where}: unsupported typed array ${name}; expected Float32Array, Float64Array, Int32Array or Uint8Array (bool)`);
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * A number as a tensor of `dtype` holds it; `cast`, `tensor`, `full` and number operands all
 * convert by this one rule, which the WebGPU cast kernel follows too (docs/conventions.md).
 * bool: 1 for any nonzero value (NaN included). int32: truncated toward zero and saturated to
 * [−2³¹, 2³¹ − 1], NaN to 0, as Java and Rust cast (a plain Int32Array store would wrap 3e9 to
 * −1294967296). Floats are stored as given (float32 rounds to nearest, ties to even).
 */
export function storedValue(value: number, dtype: DType): number {
  if (dtype === 'bool') return value !== 0 ? 1 : 0;
  // (+ 0: Math.trunc gives −0 for (−1, −0], which an int32 never holds.)
  if (dtype === 'int32') return Number.isNaN(value) ? 0 : Math.min(INT32_MAX, Math.max(INT32_MIN, Math.trunc(value) + 0));
  return value;
}

/** Host values converted to storage of `dtype` by `storedValue`'s rules. */
export function toTyped(values: ArrayLike<number>, dtype: DType): TypedArray {
  const out = allocTyped(dtype, values.length);
  for (let i = 0; i < values.length; i++) out[i] = storedValue(values[i]!, dtype);
  return out;
}

/** Throws a TypeError naming `where` unless `dtype` is one of `DTYPES`. */
export function assertDType(dtype: unknown, where: string): asserts dtype is DType {
  if (typeof dtype !== 'string' || !(DTYPES as readonly string[]).includes(dtype)) {
    throw new TypeError(`${where}: unknown dtype ${showValue(dtype)}; expected one of ${DTYPES.join(', ')}`);
  }
}
