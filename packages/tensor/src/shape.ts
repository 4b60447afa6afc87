// Shape arithmetic shared by every backend: sizes, strides, broadcasting and axis normalisation.
// Errors name the operation and both shapes, so a user can find the bad call.

import { everyEntry, showValue } from '@scorch/options';

export type Shape = readonly number[];

/** Number of elements of `shape`: the product of its extents (1 for the scalar shape `[]`). */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The shape of a reduction over `axes` with keepdims: each reduced axis stays, with size 1. */
export function keepdimsShape(shape: Shape, axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Row-major (C-order) strides of `shape`, in elements: the last axis has stride 1. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/**
 * How a reshape from `from` to `to` (equal sizes, no zero extent) regroups their axes: in order,
 * the shortest runs of non-unit axes of each whose extents have equal products, as pairs
 * [from's axes, to's axes]. Axes of extent 1 belong to no group. The fusion's strided views
 * (reshapedStrides) and the kernels' coordinates (KernelWriter's reshape) both read a reshape
 * through these groups.
 */
export function reshapeGroups(from: Shape, to: Shape): [number[], number[]][] {
  const fromAxes = from.map((_, i) => i).filter((i) => from[i] !== 1);
  const toAxes = to.map((_, i) => i).filter((i) => to[i] !== 1);
  const groups: [number[], number[]][] = [];
  let i = 0;
  let j = 0;
  while (i < fromAxes.length || j < toAxes.length) {
    const fg = [fromAxes[i++]!];
    const tg = [toAxes[j++]!];
    let pf = from[fg[0]!]!;
    let pt = to[tg[0]!]!;
    while (pf !== pt) {
      if (pf < pt) {
        fg.push(fromAxes[i++]!);
        pf *= from[fg[fg.length - 1]!]!;
      } else {
        tg.push(toAxes[j++]!);
        pt *= to[tg[tg.length - 1]!]!;
      }
    }
    groups.push([fg, tg]);
  }
  return groups;
}

/** Whether two shapes have the same rank and extents. */
export function shapesEqual(a: Shape, b: Shape): boolean {
  // A loop, not `every` with a closure: every eager op compares shapes two to four times.
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A shape as errors print it: `[2,3]`, `[]` for a scalar. */
export function fmtShape(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

/** Throws a TypeError naming `where` unless `shape` is an array of non-negative integers. */
export function assertShape(shape: unknown, where: string): asserts shape is Shape {
  if (!Array.isArray(shape) || !everyEntry(shape, (d) => Number.isInteger(d) && (d as number) >= 0)) {
    // showValue, not JSON: [NaN, 2] printed as [null,2] and an Int32Array as {"0":2}.
    throw new TypeError(`${where}: shape must be an array of non-negative integers, got ${showValue(shape)}`);
  }
}

/**
 * The most elements a tensor may have: the longest typed array JavaScript engines allocate
 * (V8's limit is 2³² elements; beyond it `new Float32Array(n)` throws "Invalid typed array length").
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 32 - 1;

/**
 * Throws a RangeError naming `where` when a tensor of `shape` would have more than
 * MAX_TENSOR_ELEMENTS elements, before anything is allocated (else the failure is the engine's
 * "Array buffer allocation failed" or "Invalid typed array length", naming no op or shape).
 */
export function assertAllocatable(shape: Shape, where: string): void {
  const n = sizeOf(shape);
  if (n > MAX_TENSOR_ELEMENTS) {
    throw new RangeError(`${where}: shape ${fmtShape(shape)} has ${n} elements, more than a tensor can hold (at most ${MAX_TENSOR_ELEMENTS} = 2^32 - 1)`);
  }
}

/** NumPy broadcasting of two shapes; the error names the op, both shapes and the first bad axis. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(
        `${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast together ` +
          `(axis ${i - rank} has sizes ${da} and ${db}; each pair must be equal or contain a 1)`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * Normalises one axis (negative counts from the end) against a rank, with a clear error. The axis
 * is shown as given: interpolated, the string '1' and the array [0] read as 1 and 0, so the error
 * said that an axis inside the range it printed was out of it.
 */
export function normalizeAxis(op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    const range = rank === 0 ? 'a scalar has no axes' : `expected an integer in [${-rank}, ${rank - 1}]`;
    throw new RangeError(`${op}: axis ${showValue(axis)} is out of range for a tensor of rank ${rank} (${range})`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Sorted, de-duplicated non-negative axes; `undefined` means all axes. */
export function normalizeAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  // Anything else failed as 'list.map is not a function', naming neither the op nor the value.
  if (typeof axes !== 'number' && !Array.isArray(axes)) throw new TypeError(`${op}: axes must be an axis or an array of axes, got ${showValue(axes)}`);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = [...new Set(list.map((a) => normalizeAxis(op, a, rank)))].sort((x, y) => x - y);
  if (out.length !== list.length) {
    throw new RangeError(`${op}: axes ${JSON.stringify(list)} name the same axis twice`);
  }
  return out;
}
