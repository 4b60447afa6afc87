// Strided layouts: how a view (shape, strides, offset) addresses a flat buffer, and how to
// shrink the index arithmetic a kernel has to do. Views are zero-copy (expand, permute, slice,
// reshape of contiguous data); kernels read them through these strides.

export interface Layout {
  readonly shape: readonly number[];
  /** Element strides per axis (0 on broadcast axes). */
  readonly strides: readonly number[];
  /** Element offset of the view's first element in its buffer. */
  readonly offset: number;
}

// Element counts and row-major strides are the tensor package's, so both backends agree on them.
export { sizeOf as sizeOfShape, stridesOf as rowMajorStrides } from '@scorch/tensor';

/** True when the view is the row-major packing of its shape starting at `offset` (size-1 axes ignored). */
export function isContiguous(layout: Layout): boolean {
  let expected = 1;
  for (let i = layout.shape.length - 1; i >= 0; i--) {
    const d = layout.shape[i]!;
    if (d === 1) continue;
    if (layout.strides[i] !== expected) return false;
    expected *= d;
  }
  return true;
}

/**
 * Merges axes that every operand steps through uniformly, and drops size-1 axes, so a kernel
 * decodes fewer coordinates (divisions are slow on software rasterisers). Axis d and d+1 merge
 * when, for every operand, strides[d] = strides[d+1]·shape[d+1]. The result has rank ≥ 1.
 */
export function collapseAxes(shape: readonly number[], stridesPerOperand: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const keep = shape.map((d, i) => i).filter((i) => shape[i] !== 1);
  const outShape: number[] = [];
  const outStrides: number[][] = stridesPerOperand.map(() => []);
  for (const axis of keep) {
    const d = shape[axis]!;
    const last = outShape.length - 1;
    const mergeable =
      last >= 0 &&
      stridesPerOperand.every((s, k) => outStrides[k]![last] === s[axis]! * d);
    if (mergeable) {
      outShape[last] = outShape[last]! * d;
      stridesPerOperand.forEach((s, k) => (outStrides[k]![last] = s[axis]!));
    } else {
      outShape.push(d);
      stridesPerOperand.forEach((s, k) => outStrides[k]!.push(s[axis]!));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: stridesPerOperand.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}
