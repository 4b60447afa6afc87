// Movement kernels that are more than a strided copy: zero padding, gather along an axis and its
// transpose, scatter-add. Each thread owns one output element, so no two threads write the same
// place and no atomics are needed (WGSL has no float atomics): scatter-add has each output
// element walk the index list and sum the updates aimed at it, in index order, which makes the
// result deterministic and equal to the CPU's sequential float32 accumulation. Gather and
// scatter-add report an out-of-range index through the device's index-error record
// (indexErrors.ts), bound after their output.

import type { DType } from '@scorch/tensor';
import { type Layout, sizeOfShape } from '../layout.js';
import { mathPrelude } from './mathLibrary.js';
import { F32_NAN, type KernelSpec, UniformBlock, declareStorage, entryBuiltins, grid1d, linearWorkgroup, wgslType } from './common.js';
import { indexErrorDeclaration, reportBadIndex } from './indexErrors.js';

const WORKGROUP = 64;

/** Code decoding linear `i` over `shape` into coordinates c0..c{r-1} (row-major). */
function decode(u: UniformBlock, shape: readonly number[]): string {
  const lines = ['var rem = i;'];
  for (let d = shape.length - 1; d >= 1; d--) {
    const e = u.u32(shape[d]!);
    lines.push(`let c${d} = rem % ${e}; rem = rem / ${e};`);
  }
  lines.push(shape.length > 0 ? 'let c0 = rem;' : '');
  return lines.join('\n  ');
}

function launch(n: number): readonly [number, number, number] {
  return n === 0 ? [0, 0, 0] : grid1d(Math.ceil(n / WORKGROUP));
}

/**
 * Assembles a kernel that runs one invocation per output element: the storage bindings (then
 * the index-error record, for kernels that report bad indices), the uniform block after them,
 * the math functions `body` calls, then `body`.
 */
function perElementKernel(
  label: string, bindings: Parameters<typeof declareStorage>[0], u: UniformBlock, body: string, n: number, reportsBadIndices = false,
): KernelSpec {
  const record = reportsBadIndices ? indexErrorDeclaration(bindings.length) : '';
  const uniformBinding = bindings.length + (reportsBadIndices ? 1 : 0);
  return {
    label,
    code: `${declareStorage(bindings)}${record}${u.declare(uniformBinding)}${mathPrelude(body)}\n${body}`,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch: launch(n),
    uniforms: u.data(),
  };
}

function zeroOf(dtype: DType): string {
  const t = wgslType(dtype);
  return t === 'f32' ? '0.0' : `${t}(0)`;
}

export interface PadParams {
  dtype: DType;
  input: Layout;
  before: readonly number[];
  outShape: readonly number[];
}

/** out = zeros(outShape) with the input written at offset `before` (the transpose of slice). */
export function padKernel(p: PadParams): KernelSpec {
  const u = new UniformBlock();
  const n = sizeOfShape(p.outShape);
  const rank = p.outShape.length;
  const count = u.u32(n);
  const t = wgslType(p.dtype);
  const checks: string[] = [];
  const terms: string[] = [u.u32(p.input.offset)];
  for (let d = 0; d < rank; d++) {
    const b = u.u32(p.before[d]!);
    const extent = u.u32(p.input.shape[d]!);
    // Unsigned wrap-around makes c < before look huge, so one comparison covers both sides.
    checks.push(`(c${d} - ${b}) < ${extent}`);
    terms.push(`(c${d} - ${b}) * ${u.u32(p.input.strides[d]!)}`);
  }
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let i = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  if (i >= ${count}) { return; }
  ${rank > 0 ? decode(u, p.outShape) : ''}
  var v = ${zeroOf(p.dtype)};
  if (${checks.length > 0 ? checks.join(' && ') : 'true'}) { v = src[${terms.join(' + ')}]; }
  out[i] = v;
}`;
  const bindings = [
    { name: 'src', type: t, access: 'read' as const },
    { name: 'out', type: t, access: 'read_write' as const },
  ];
  return perElementKernel(`pad_${p.dtype}_rank${rank}`, bindings, u, body, n);
}

export interface GatherParams {
  dtype: DType;
  input: Layout;
  /** 1-D int32 indices (a view: offset and stride). */
  indices: Layout;
  axis: number;
  outShape: readonly number[];
}

/**
 * out[..., j, ...] = x[..., idx[j], ...]. An index outside [0, extent) is reported to the
 * index-error record (the next read throws) and yields NaN (0 for ints) meanwhile, so nothing
 * plausible is read from outside the axis. Bindings: src, idx, out, the record.
 */
export function gatherKernel(p: GatherParams): KernelSpec {
  const u = new UniformBlock();
  const n = sizeOfShape(p.outShape);
  const rank = p.outShape.length;
  const count = u.u32(n);
  const t = wgslType(p.dtype);
  const idxAt = `${u.u32(p.indices.offset)} + c${p.axis} * ${u.u32(p.indices.strides[0] ?? 0)}`;
  const extent = u.u32(p.input.shape[p.axis]!);
  const terms = [u.u32(p.input.offset)];
  for (let d = 0; d < rank; d++) terms.push(`${d === p.axis ? 'row' : `c${d}`} * ${u.u32(p.input.strides[d]!)}`);
  const bad = t === 'f32' ? F32_NAN : zeroOf(p.dtype);
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let i = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  if (i >= ${count}) { return; }
  ${decode(u, p.outShape)}
  let wanted = idx[${idxAt}];
  let row = u32(wanted);
  var v = ${bad};
  if (row < ${extent}) { v = src[${terms.join(' + ')}]; } else { ${reportBadIndex('gather', 'wanted', p.axis, extent)} }
  out[i] = v;
}`;
  const bindings = [
    { name: 'src', type: t, access: 'read' as const },
    { name: 'idx', type: 'i32' as const, access: 'read' as const },
    { name: 'out', type: t, access: 'read_write' as const },
  ];
  return perElementKernel(`gather_${p.dtype}_axis${p.axis}_rank${rank}`, bindings, u, body, n, true);
}

export interface ScatterAddParams {
  dtype: DType;
  updates: Layout;
  indices: Layout;
  axis: number;
  outShape: readonly number[];
  /** The indices this launch walks (see scatterAddSpans); the first span starts from zeros. */
  span: ScatterAddSpan;
}

export interface ScatterAddSpan {
  start: number;
  count: number;
}

/**
 * Indices one scatter-add launch walks per output element. llvmpipe (Mesa's gallivm) ends an
 * invocation after 65,535 loop iterations in all (its guard against endless loops), silently:
 * a single pass over 70,000 indices summed only the first 65,535. 16,384 leaves room for a few
 * loop constructs per iteration.
 */
export const SCATTER_ADD_SPAN = 1 << 14;

/** The launches a scatter-add over `length` indices takes, in index order (one, possibly empty, at least). */
export function scatterAddSpans(length: number): ScatterAddSpan[] {
  const spans: ScatterAddSpan[] = [];
  for (let start = 0; start === 0 || start < length; start += SCATTER_ADD_SPAN) spans.push({ start, count: Math.min(SCATTER_ADD_SPAN, length - start) });
  return spans;
}

/**
 * out[..., s, ...] = Σ_{j : idx[j] = s} updates[..., j, ...], summed in increasing j. One launch
 * per span of indices: each continues the sums the previous one wrote, so the order of additions
 * (and the float32 result) is the CPU's whatever the number of launches. An index outside
 * [0, size) matches no output element; it is reported to the index-error record.
 * Bindings: src, idx, out, the record.
 */
export function scatterAddKernel(p: ScatterAddParams): KernelSpec {
  return scatterAddEach(p, 'scatterAdd', 'idx', true, (u, base, step, start) => {
    const stop = u.u32(p.span.start + p.span.count);
    const size = u.u32(p.outShape[p.axis]!);
    const idxOffset = u.u32(p.indices.offset);
    const idxStride = u.u32(p.indices.strides[0] ?? 0);
    return `
  let destination = i32(c${p.axis});
  for (var j = ${start}; j < ${stop}; j = j + 1u) {
    let wanted = idx[${idxOffset} + j * ${idxStride}];
    if (wanted == destination) {
      acc = acc + src[${base} + j * ${step}];
    } else if (u32(wanted) >= ${size}) {
      ${reportBadIndex('scatterAdd', 'wanted', p.axis, size)}
    }
  }`;
  });
}

/**
 * What both scatter-add kernels share: per output element its coordinates and the updates' base
 * offset, a sum `acc` that continues out[i] after the first span, and `loop` (WGSL adding into
 * acc, given the base, the updates' step along the axis and the span's start) in between. Bindings: src, `second`
 * (i32), out, and the index-error record when `reports`.
 */
function scatterAddEach(
  p: { dtype: DType; updates: Layout; axis: number; outShape: readonly number[]; span: ScatterAddSpan },
  name: string, second: string, reports: boolean, loop: (u: UniformBlock, base: string, step: string, start: string) => string,
): KernelSpec {
  const u = new UniformBlock();
  const n = sizeOfShape(p.outShape);
  const rank = p.outShape.length;
  const count = u.u32(n);
  const t = wgslType(p.dtype);
  const start = u.u32(p.span.start);
  const base = [u.u32(p.updates.offset)];
  for (let d = 0; d < rank; d++) if (d !== p.axis) base.push(`c${d} * ${u.u32(p.updates.strides[d]!)}`);
  const step = u.u32(p.updates.strides[p.axis]!);
  const decoded = decode(u, p.outShape);
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let i = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  if (i >= ${count}) { return; }
  ${decoded}
  let base = ${base.join(' + ')};
  var acc = ${zeroOf(p.dtype)};
  if (${start} > 0u) { acc = out[i]; }${loop(u, 'base', step, start)}
  out[i] = acc;
}`;
  const bindings = [
    { name: 'src', type: t, access: 'read' as const },
    { name: second, type: 'i32' as const, access: 'read' as const },
    { name: 'out', type: t, access: 'read_write' as const },
  ];
  return perElementKernel(`${name}_${p.dtype}_axis${p.axis}_rank${rank}`, bindings, u, body, n, reports);
}

/**
 * Where indices known on the host point, as one int32 table: for each destination s in [0, size)
 * its bucket starts[s]..starts[s + 1] (size + 1 offsets), then the positions j of the indices
 * that point to it, bucket after bucket, in increasing j (a stable counting sort). With it a
 * scatter-add reads, for each output element, its own bucket only, where scatterAddKernel walks
 * every index for every output element (an embedding's gradient, V rows by B indices, cost V·B
 * steps a column: 30 s for 16,000 of each on llvmpipe, against 37 ms on the CPU).
 */
export function scatterAddBuckets(indices: ArrayLike<number>, offset: number, stride: number, count: number, size: number): { table: Int32Array; longest: number } {
  const table = new Int32Array(size + 1 + count);
  for (let j = 0; j < count; j++) table[indices[offset + j * stride]! + 1]!++;
  let longest = 0;
  for (let s = 0; s < size; s++) {
    longest = Math.max(longest, table[s + 1]!);
    table[s + 1] = table[s + 1]! + table[s]!;
  }
  const next = table.slice(0, size);
  for (let j = 0; j < count; j++) table[size + 1 + next[indices[offset + j * stride]!]!++] = j;
  return { table, longest };
}

export interface ScatterAddBucketParams {
  dtype: DType;
  updates: Layout;
  axis: number;
  outShape: readonly number[];
  /** The positions within each bucket this launch walks (scatterAddSpans of the longest bucket). */
  span: ScatterAddSpan;
}

/**
 * scatterAddKernel's sums from the buckets of scatterAddBuckets (bound as `table`): each output
 * element adds its bucket's updates in increasing j, as scatterAddKernel does, so the float32
 * result is the same bits. One launch per span of bucket positions (most gradients: one).
 * Bindings: src, table, out.
 */
export function scatterAddBucketKernel(p: ScatterAddBucketParams): KernelSpec {
  return scatterAddEach(p, 'scatterAddBuckets', 'table', false, (u, base, step, start) => {
    const spanCount = u.u32(p.span.count);
    const positions = u.u32(p.outShape[p.axis]! + 1);
    return `
  let first = u32(table[c${p.axis}]) + ${start};
  let last = min(u32(table[c${p.axis} + 1u]), first + ${spanCount});
  for (var k = first; k < last; k = k + 1u) {
    acc = acc + src[${base} + u32(table[${positions} + k]) * ${step}];
  }`;
  });
}
