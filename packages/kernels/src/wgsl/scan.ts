// Kernels that walk one axis: inclusive scans (cumsum, cumprod) and arg-reductions (argmax,
// argmin). One invocation per line (every coordinate but the axis) walks the axis serially, the
// step and the comparison rendered from @scorch/tensor's expression table (scanCombineExpression,
// argReplaceCondition), so they mean on the GPU what they mean on the CPU. Work O(n) per line
// and n per invocation: simple and exact in its order of operations (a float32 running sum in
// index order), but without parallelism along the axis (a work-efficient parallel scan, Blelloch
// 1990, would pay off for long axes with few lines).
//
// llvmpipe ends an invocation after 65,535 loop iterations, so an axis is walked in spans of
// AXIS_SPAN, one launch each, every launch continuing from what the previous one stored: a scan
// from the last value it wrote, an arg-reduction from the index it wrote (re-reading the value
// there).

import { type ArgReducePrimitive, type DType, type ScanPrimitive, argReplaceCondition, scanCombineExpression, scanIdentity } from '@scorch/tensor';
import { type Layout, sizeOfShape } from '../layout.js';
import { mathPrelude } from './mathLibrary.js';
import { type KernelSpec, UniformBlock, declareStorage, entryBuiltins, grid1d, linearWorkgroup, wgslType } from './common.js';
import { renderWgsl, wgslLiteral } from './expression.js';

const WORKGROUP = 64;

/** Elements of the axis one launch walks per line (see the header). */
export const AXIS_SPAN = 1 << 14;

export interface AxisSpan {
  start: number;
  count: number;
}

/** The launches a walk over an axis of `extent` takes, in index order (at least one). */
export function axisSpans(extent: number): AxisSpan[] {
  const spans: AxisSpan[] = [];
  for (let start = 0; start === 0 || start < extent; start += AXIS_SPAN) spans.push({ start, count: Math.min(AXIS_SPAN, extent - start) });
  return spans;
}

/**
 * Code decoding line index `line` over the input shape without `axis` into the input's element
 * offset `base` (through its strides) and the line's position `outBase` in a row-major output
 * of `outShape` (the input's shape for a scan, the shape without the axis for an arg-reduction).
 */
function lineOffsets(u: UniformBlock, input: Layout, axis: number, outShape: readonly number[]): string {
  const rank = input.shape.length;
  const dims = [...Array(rank).keys()].filter((d) => d !== axis);
  const lines = ['var rem = line;'];
  const inTerms = [u.u32(input.offset)];
  const outTerms: string[] = [];
  const outStrides: number[] = [];
  let stride = 1;
  for (let d = outShape.length - 1; d >= 0; d--) {
    outStrides[d] = stride;
    stride *= outShape[d]!;
  }
  for (let k = dims.length - 1; k >= 0; k--) {
    const d = dims[k]!;
    const extent = u.u32(input.shape[d]!);
    lines.push(k === 0 ? `let c${d} = rem;` : `let c${d} = rem % ${extent}; rem = rem / ${extent};`);
    inTerms.push(`c${d} * ${u.u32(input.strides[d]!)}`);
    const od = outShape.length === rank ? d : k;
    outTerms.push(`c${d} * ${u.u32(outStrides[od]!)}`);
  }
  lines.push(`let base = ${inTerms.join(' + ')};`, `let outBase = ${outTerms.length ? outTerms.join(' + ') : '0u'};`);
  return lines.join('\n  ');
}

/** What a line-walking kernel's body is written with: the uniforms, and the walk's bounds. */
interface Walk {
  readonly u: UniformBlock;
  /** The element type read. */
  readonly t: string;
  /** Stride of the axis in the input. */
  readonly inStep: string;
  /** This launch's span of the axis: positions start ≤ k < stop. */
  readonly start: string;
  readonly stop: string;
}

/**
 * A kernel of one invocation per line of `input` along `axis` (see lineOffsets), bound to src and
 * out. `walk` writes the body after the line's offsets `base` and `outBase` are decoded.
 */
function lineKernel(
  label: string,
  p: { dtype: DType; input: Layout; axis: number; span: AxisSpan },
  outShape: readonly number[],
  outType: string,
  walk: (w: Walk) => string,
): KernelSpec {
  const u = new UniformBlock();
  const t = wgslType(p.dtype);
  const extent = p.input.shape[p.axis]!;
  const lines = extent === 0 ? 0 : sizeOfShape(p.input.shape) / extent;
  const count = u.u32(lines);
  const offsets = lineOffsets(u, p.input, p.axis, outShape);
  const inStep = u.u32(p.input.strides[p.axis]!);
  const start = u.u32(p.span.start);
  const stop = u.u32(p.span.start + p.span.count);
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let line = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  if (line >= ${count}) { return; }
  ${offsets}
  ${walk({ u, t, inStep, start, stop })}
}`;
  const bindings = [
    { name: 'src', type: t as 'f32', access: 'read' as const },
    { name: 'out', type: outType as 'f32', access: 'read_write' as const },
  ];
  return {
    label,
    code: `${declareStorage(bindings)}${u.declare(2)}${mathPrelude(body)}\n${body}`,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch: lines === 0 ? [0, 0, 0] : grid1d(Math.ceil(lines / WORKGROUP)),
    uniforms: u.data(),
  };
}

export interface ScanParams {
  op: ScanPrimitive;
  dtype: DType;
  input: Layout;
  axis: number;
  reverse: boolean;
  span: AxisSpan;
}

/**
 * out[..., i, ...] = x[..., 0, ...] ⊕ … ⊕ x[..., i, ...] (from the end when `reverse`), for the
 * positions of `span` (counted from the scan's start); out is row-major of the input's shape.
 * Bindings: src, out.
 */
export function scanKernel(p: ScanParams): KernelSpec {
  const shape = p.input.shape;
  const label = `${p.op}_${p.dtype}_rank${shape.length}${p.reverse ? '_reverse' : ''}`;
  return lineKernel(label, p, shape, wgslType(p.dtype), ({ u, t, inStep, start, stop }) => {
    const outStep = u.u32(sizeOfShape(shape.slice(p.axis + 1)));
    const last = u.u32(shape[p.axis]! - 1);
    // Position k of the walk is element k (or extent − 1 − k reversed) of the axis.
    const at = p.reverse ? `(${last} - k)` : 'k';
    const previous = p.reverse ? `(${last} - ${start} + 1u)` : `(${start} - 1u)`;
    return `var acc: ${t} = ${wgslLiteral(scanIdentity(p.op), p.dtype)};
  if (${start} > 0u) { acc = out[outBase + ${previous} * ${outStep}]; }
  for (var k = ${start}; k < ${stop}; k = k + 1u) {
    let v = src[base + ${at} * ${inStep}];
    acc = ${renderWgsl(scanCombineExpression(p.op, p.dtype), ['acc', 'v'])};
    out[outBase + ${at} * ${outStep}] = acc;
  }`;
  });
}

export interface ArgReduceParams {
  op: ArgReducePrimitive;
  dtype: DType;
  input: Layout;
  axis: number;
  span: AxisSpan;
}

/**
 * out[...] = the first index along `axis` of the extreme (argReplaceCondition: strictly better
 * replaces, a NaN replaces and ends the walk, so the first NaN wins). Each launch after the first
 * continues from the index the previous one stored. Bindings: src, out (int32).
 */
export function argReduceKernel(p: ArgReduceParams): KernelSpec {
  const outShape = p.input.shape.filter((_, d) => d !== p.axis);
  return lineKernel(`${p.op}_${p.dtype}_rank${p.input.shape.length}`, p, outShape, 'i32', ({ t, inStep, start, stop }) => {
    const isNaN = t === 'f32' ? 'sc_isnan(best)' : 'false';
    return `var at = 0u;
  if (${start} > 0u) { at = u32(out[outBase]); }
  var best = src[base + at * ${inStep}];
  if (!(${isNaN})) {
    for (var k = max(${start}, 1u); k < ${stop}; k = k + 1u) {
      let v = src[base + k * ${inStep}];
      if (${renderWgsl(argReplaceCondition(p.op, p.dtype), ['best', 'v'])}) {
        best = v;
        at = k;
        if (${isNaN}) { break; }
      }
    }
  }
  out[outBase] = i32(at);`;
  });
}
