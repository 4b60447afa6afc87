// Reductions (sum, max) over any set of axes of a strided view. The view is split into kept
// axes (one output each) and reduced axes (the walked extent R), each group collapsed to as few
// axes as the strides allow. Long extents are reduced cooperatively: a workgroup owns one output
// (or one chunk of it), its threads stride through the extent, and a tree in workgroup memory
// combines their partials. Very long extents with few outputs are split into chunks by a first
// pass and finished by a second, so more than one workgroup (one CPU core on llvmpipe) works.
// Short extents use one thread per output. Float max propagates NaN like the CPU reference.

import { type DType, type ReducePrimitive, reduceCombineExpression, reduceIdentity as identityValue } from '@scorch/tensor';
import { dtypeOfWgsl, renderWgsl, wgslLiteral } from './expression.js';
import { type Layout, collapseAxes, sizeOfShape } from '../layout.js';
import {
  type KernelSpec, type WgslScalar, UniformBlock, declareStorage, entryBuiltins, grid1d, linearWorkgroup, wgslType,
} from './common.js';
import { mathPrelude } from './mathLibrary.js';

/** Threads cooperating on one output. */
export const REDUCE_THREADS = 128;
/** Extents at least this long are reduced cooperatively. */
export const COOPERATIVE_MIN_EXTENT = 64;
/** Elements one workgroup reduces before the extent is split across workgroups. */
export const CHUNK_ELEMENTS = 8192;
/** With fewer outputs than this, long extents are split into chunks. */
export const FEW_OUTPUTS = 32;
/**
 * Steps one thread of a cooperative pass takes through its chunk at most. llvmpipe ends an
 * invocation after 65,535 loop iterations in all, silently, so a longer walk (an extent beyond
 * 128·65,535 per output: a broadcast view, or a fused product never stored) would drop the rest.
 */
export const MAX_THREAD_STEPS = 16384;

/**
 * WGSL that declares `start` and `length`, the bounds of chunk `chunk` (each of `chunkLength`
 * elements) of an extent `extent`, for the eager template and the jit lowering alike. The length
 * is counted from the chunk's start: an end computed as start + chunkLength wraps past 2^32 for
 * the last chunk of an extent near 2^32 (a broadcast view), which then summed nothing.
 */
export function chunkBoundsWgsl(chunk: string, chunkLength: string, extent: string, start: string, length: string): string[] {
  return [`let ${start} = ${chunk} * ${chunkLength};`, `let ${length} = min(${chunkLength}, ${extent} - min(${start}, ${extent}));`];
}

/**
 * Chunks a cooperative pass splits each output's extent into: many when outputs are few (so
 * more workgroups share the work), and always enough that no thread walks more than
 * MAX_THREAD_STEPS elements.
 */
export function cooperativeChunks(outputs: number, extent: number): number {
  const spread = outputs < FEW_OUTPUTS && extent > 2 * CHUNK_ELEMENTS ? Math.min(Math.ceil(extent / CHUNK_ELEMENTS), 1024) : 1;
  return Math.max(spread, Math.ceil(extent / (REDUCE_THREADS * MAX_THREAD_STEPS)));
}
const SERIAL_WORKGROUP = 64;

export interface ReducePass {
  cooperative: boolean;
  /** Chunks each output's extent is split into (partials written as [outputs, chunks]). */
  chunks: number;
  /** Extent each pass walks per output. */
  extent: number;
}

/**
 * How an extent of `extent` elements per each of `outputs` outputs is reduced, and the longest
 * chain of float additions any input takes part in (`depth`): the sum's rounding error is at most
 * depth·2^-24·Σ|x| (Higham, recursive summation), which the parity tests use as their tolerance.
 */
export function reductionPlan(outputs: number, extent: number): { passes: ReducePass[]; depth: number } {
  const passes: ReducePass[] = [];
  let depth = 0;
  let remaining = extent;
  for (;;) {
    if (remaining < COOPERATIVE_MIN_EXTENT) {
      passes.push({ cooperative: false, chunks: 1, extent: remaining });
      depth += Math.max(remaining - 1, 0);
      break;
    }
    const chunks = cooperativeChunks(outputs, remaining);
    passes.push({ cooperative: true, chunks, extent: remaining });
    const perChunk = Math.ceil(remaining / chunks);
    depth += Math.ceil(perChunk / REDUCE_THREADS) + Math.log2(REDUCE_THREADS);
    if (chunks === 1) break;
    remaining = chunks;
  }
  return { passes, depth };
}

export interface ReduceParams {
  op: ReducePrimitive;
  dtype: DType;
  input: Layout;
  /** Sorted reduced axes of the input. */
  axes: readonly number[];
  pass: ReducePass;
}

/** accumulator ⊕ element, from @scorch/tensor's expression table (max propagates NaN). */
export function combineExpression(op: ReducePrimitive, t: WgslScalar, a: string, b: string): string {
  return renderWgsl(reduceCombineExpression(op, dtypeOfWgsl(t)), [a, b]);
}

/** The value an accumulator of `t` starts from. */
export function reduceIdentity(op: ReducePrimitive, t: WgslScalar): string {
  const dtype = dtypeOfWgsl(t);
  return wgslLiteral(identityValue(op, dtype), dtype);
}

/** Code forming `name` = Σ coordinate·stride for a linear index over a collapsed axis group. */
function groupOffset(u: UniformBlock, index: string, shape: readonly number[], strides: readonly number[], name: string): string {
  if (shape.length === 1) return `let ${name} = ${index} * ${u.u32(strides[0]!)};`;
  const lines = [`var ${name}_rem = ${index};`, `var ${name} = 0u;`];
  for (let d = shape.length - 1; d >= 1; d--) {
    const e = u.u32(shape[d]!);
    lines.push(`${name} = ${name} + (${name}_rem % ${e}) * ${u.u32(strides[d]!)}; ${name}_rem = ${name}_rem / ${e};`);
  }
  lines.push(`${name} = ${name} + ${name}_rem * ${u.u32(strides[0]!)};`);
  return lines.join('\n  ');
}

/** One reduction pass: out[o·chunks + c] = reduce over chunk c of output o's extent. */
export function reduceKernel(p: ReduceParams): KernelSpec {
  const { shape, strides } = p.input;
  const kept = shape.map((_, i) => i).filter((i) => !p.axes.includes(i));
  const keptGroup = collapseAxes(kept.map((i) => shape[i]!), [kept.map((i) => strides[i]!)]);
  const redGroup = collapseAxes(p.axes.map((i) => shape[i]!), [p.axes.map((i) => strides[i]!)]);
  const outputs = sizeOfShape(kept.map((i) => shape[i]!));
  const extent = sizeOfShape(p.axes.map((i) => shape[i]!));
  const t = wgslType(p.dtype);
  const u = new UniformBlock();
  const outCount = u.u32(outputs * p.pass.chunks);
  const chunks = u.u32(p.pass.chunks);
  const extentU = u.u32(extent);
  const chunkLength = u.u32(Math.ceil(extent / p.pass.chunks));
  const offset = u.u32(p.input.offset);
  const keptCode = groupOffset(u, 'o', keptGroup.shape, keptGroup.strides[0]!, 'base');
  const redCode = groupOffset(u, 'r', redGroup.shape, redGroup.strides[0]!, 'roff');
  const combine = (a: string, b: string) => combineExpression(p.op, t, a, b);
  const bindings = [
    { name: 'src', type: t, access: 'read' as const },
    { name: 'out', type: t, access: 'read_write' as const },
  ];
  let body: string;
  let dispatch: readonly [number, number, number];
  let workgroup: number;
  if (p.pass.cooperative) {
    workgroup = REDUCE_THREADS;
    body = `
var<workgroup> partial: array<${t}, ${REDUCE_THREADS}>;

@compute @workgroup_size(${REDUCE_THREADS})
fn main(${entryBuiltins}) {
  let slot = ${linearWorkgroup};
  if (slot >= ${outCount}) { return; }
  let o = slot / ${chunks};
  let chunk = slot % ${chunks};
  ${keptCode}
  ${chunkBoundsWgsl('chunk', chunkLength, extentU, 'start', 'length').join('\n  ')}
  var acc = ${reduceIdentity(p.op, t)};
  for (var i = lid; i < length; i = i + ${REDUCE_THREADS}u) {
    let r = start + i;
    ${redCode}
    acc = ${combine('acc', `src[${offset} + base + roff]`)};
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var width = ${REDUCE_THREADS / 2}u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] = ${combine('partial[lid]', 'partial[lid + width]')}; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[slot] = partial[0]; }
}`;
    dispatch = grid1d(outputs * p.pass.chunks);
  } else {
    workgroup = SERIAL_WORKGROUP;
    body = `
@compute @workgroup_size(${SERIAL_WORKGROUP})
fn main(${entryBuiltins}) {
  let o = (${linearWorkgroup}) * ${SERIAL_WORKGROUP}u + lid;
  if (o >= ${outCount}) { return; }
  ${keptCode}
  var acc = ${reduceIdentity(p.op, t)};
  for (var r = 0u; r < ${extentU}; r = r + 1u) {
    ${redCode}
    acc = ${combine('acc', `src[${offset} + base + roff]`)};
  }
  out[o] = acc;
}`;
    dispatch = grid1d(Math.ceil(outputs / SERIAL_WORKGROUP));
  }
  // The slot guard above returns whole workgroups only (slot is per workgroup), so the barriers
  // stay in uniform control flow.
  return {
    label: `${p.op}_${p.dtype}_${p.pass.cooperative ? 'cooperative' : 'serial'}_kept${keptGroup.shape.length}_reduced${redGroup.shape.length}`,
    code: `${declareStorage(bindings)}${u.declare(2)}${mathPrelude(body)}\n${body}`,
    workgroupSize: [workgroup, 1, 1],
    dispatch: outputs === 0 ? [0, 0, 0] : dispatch,
    uniforms: u.data(),
  };
}
