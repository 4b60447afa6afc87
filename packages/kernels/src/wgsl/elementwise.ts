// Elementwise kernels: every unary, binary, comparison, where, cast and copy is one template fed
// by one table of `op → WGSL expression`, rendered from @scorch/tensor's expression table (the
// table the CPU backend generates its JavaScript from). Operands are read through their strides
// and offsets (broadcast, permuted and sliced views cost no copy), and the output may itself be a
// strided window of a larger buffer (concat writes each input into its slot this way).

import { type DType, ELEMENTWISE_OPS, type ElementwiseOp, castExpression as castTree, elementwiseExpression } from '@scorch/tensor';
import { type Layout, collapseAxes, isContiguous, sizeOfShape } from '../layout.js';
import { type WgslLiteralWriter, dtypeOfWgsl, renderWgsl } from './expression.js';
import {
  type InputOffsetSource, type KernelSpec, type WgslScalar, UniformBlock, declareStorage, entryBuiltins, grid1d, linearWorkgroup, stridedOffsets, wgslType,
} from './common.js';
import { customCall } from './custom.js';
import { mathPrelude } from './mathLibrary.js';

export type { ElementwiseOp };

type Expression = (args: readonly string[], type: WgslScalar, literal?: WgslLiteralWriter) => string;

/**
 * Each op as a WGSL expression over its operand variables (already loaded, of WGSL type `type`,
 * the inputs' common type; `where` gets the condition first): @scorch/tensor's expression table
 * rendered to WGSL. Comparisons produce a bool stored as u32.
 */
export const ELEMENTWISE_EXPRESSIONS: { readonly [K in ElementwiseOp]: Expression } = Object.fromEntries(
  ELEMENTWISE_OPS.map((op) => [op, (args: readonly string[], type: WgslScalar, literal?: WgslLiteralWriter) => renderWgsl(elementwiseExpression(op, dtypeOfWgsl(type)), args, literal)]),
) as { readonly [K in ElementwiseOp]: Expression };

/**
 * Conversion between stored types by the rule of @scorch/tensor's `castExpression` (the CPU's
 * `storedValue`, docs/conventions.md). Spelled out because WGSL's own `i32(f32)` leaves NaN
 * indeterminate and saturates to 2147483520, the largest float32 below 2³¹ (Dawn over llvmpipe
 * gives NaN → −2³¹ and +inf → 2147483520).
 */
export function castExpression(from: DType, to: DType, a: string, literal?: WgslLiteralWriter): string {
  return renderWgsl(castTree(from, to), [a], literal);
}

export interface ElementwiseOperand {
  dtype: DType;
  layout: Layout;
  /**
   * The compiled program input this operand is (its layout's offset that input's offset plus
   * `plus`): the offset's uniform word is recorded (KernelSpec.inputOffsets) so a call at another
   * offset rewrites it. Only inputs may have one.
   */
  source?: InputOffsetSource;
}

export interface ElementwiseParams {
  /** The op, a cast to the output dtype, or a defined elementwise primitive (named by `custom`). */
  op: ElementwiseOp | 'cast' | 'custom';
  /** The defined primitive's name when `op` is 'custom'. */
  custom?: string;
  inputs: readonly ElementwiseOperand[];
  /** Output dtype and layout (same shape as every input). */
  output: ElementwiseOperand;
  /**
   * True when the output layout covers its whole buffer (a fresh output), so the vec4 kernel may
   * write the padding after the last element; false for a window into a shared buffer (concat).
   */
  ownsOutputBuffer?: boolean;
}

const WORKGROUP = 64;

function expressionFor(p: ElementwiseParams, vars: readonly string[]): string {
  if (p.op === 'custom') return customCall(p.custom!, vars);
  return p.op === 'cast'
    ? castExpression(p.inputs[0]!.dtype, p.output.dtype, vars[0]!)
    : ELEMENTWISE_EXPRESSIONS[p.op](vars, wgslType(p.inputs[p.op === 'where' ? 1 : 0]!.dtype));
}

function labelOf(p: ElementwiseParams): string {
  if (p.op === 'custom') return `custom_${p.custom}_${p.output.dtype}`;
  return p.op === 'cast' ? `cast_${p.inputs[0]!.dtype}_to_${p.output.dtype}` : `${p.op}_${p.output.dtype}`;
}

/** How an input is read by the vec4 kernel: four consecutive elements, or one broadcast value. */
type Vec4Read = 'vector' | 'scalar';

/**
 * The vec4 kernel applies when the output is a whole fresh buffer (so the padding after its last
 * element may be overwritten) and each input is either contiguous from a 16-byte aligned offset
 * or a single broadcast value (all strides 0).
 */
function vec4Reads(p: ElementwiseParams): Vec4Read[] | null {
  const out = p.output.layout;
  const n = sizeOfShape(out.shape);
  if (!p.ownsOutputBuffer || n < 4 || out.offset !== 0 || !isContiguous(out)) return null;
  const reads: Vec4Read[] = [];
  for (const x of p.inputs) {
    if (x.layout.strides.every((s, i) => s === 0 || x.layout.shape[i] === 1)) reads.push('scalar');
    else if (x.layout.offset % 4 === 0 && isContiguous(x.layout)) reads.push('vector');
    else return null;
  }
  return reads;
}

/**
 * Four elements per invocation with vec4 loads and stores. On software adapters each storage
 * access costs a per-lane loop, so moving four values per access is what makes this fast; the
 * arithmetic itself stays the scalar expression of the table, applied per component.
 */
function elementwiseVec4Kernel(p: ElementwiseParams, reads: readonly Vec4Read[]): KernelSpec {
  const n = sizeOfShape(p.output.layout.shape);
  const u = new UniformBlock();
  const count4 = u.u32(Math.ceil(n / 4));
  const loads = p.inputs.map((x, k) =>
    reads[k] === 'vector'
      // A recorded offset word holds the element offset (a multiple of 4 in every layout of this code).
      ? `let v${k} = in${k}[${x.source ? `${u.inputOffset(x.layout.offset, x.source)} / 4u` : u.u32(x.layout.offset / 4)} + i];`
      : `let s${k} = in${k}[${u.inputOffset(x.layout.offset, x.source)}];`,
  );
  const components = ['x', 'y', 'z', 'w'].map((c) => {
    const vars = p.inputs.map((_, k) => (reads[k] === 'vector' ? `v${k}.${c}` : `s${k}`));
    return expressionFor(p, vars);
  });
  const outType = wgslType(p.output.dtype);
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let i = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  if (i >= ${count4}) { return; }
  ${loads.join('\n  ')}
  out[i] = vec4<${outType}>(${components.join(',\n    ')});
}`;
  const decl =
    p.inputs
      .map((x, k) => {
        const t = wgslType(x.dtype);
        return `@group(0) @binding(${k}) var<storage, read> in${k}: array<${reads[k] === 'vector' ? `vec4<${t}>` : t}>;`;
      })
      .join('\n') + `\n@group(0) @binding(${p.inputs.length}) var<storage, read_write> out: array<vec4<${outType}>>;\n`;
  return {
    label: `${labelOf(p)}_vec4`,
    code: `${decl}${u.declare(p.inputs.length + 1)}${mathPrelude(body)}\n${body}`,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch: grid1d(Math.ceil(n / 4 / WORKGROUP)),
    uniforms: u.data(),
    inputOffsets: u.inputOffsets,
  };
}

/** out[i] = op(inputs[i]...) over one shape, every operand through its own strides. */
export function elementwiseKernel(p: ElementwiseParams): KernelSpec {
  const reads = vec4Reads(p);
  if (reads) return elementwiseVec4Kernel(p, reads);
  const shape = p.output.layout.shape;
  const n = sizeOfShape(shape);
  const collapsed = collapseAxes(shape, [p.output.layout.strides, ...p.inputs.map((x) => x.layout.strides)]);
  const u = new UniformBlock();
  const count = u.u32(n);
  const operands = [p.output, ...p.inputs].map((o, k) => ({
    name: k === 0 ? 'o_out' : `o_in${k - 1}`,
    strides: collapsed.strides[k]!,
    offset: o.layout.offset,
    contiguous: isContiguous({ shape: collapsed.shape, strides: collapsed.strides[k]!, offset: 0 }),
    source: o.source,
  }));
  const index = stridedOffsets(u, 'i', collapsed.shape, operands);
  const inTypes = p.inputs.map((x) => wgslType(x.dtype));
  const outType = wgslType(p.output.dtype);
  const expr = expressionFor(p, p.inputs.map((_, k) => `a${k}`));
  const bindings = [
    ...p.inputs.map((_, k) => ({ name: `in${k}`, type: inTypes[k]!, access: 'read' as const })),
    { name: 'out', type: outType, access: 'read_write' as const },
  ];
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let i = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  if (i >= ${count}) { return; }
  ${index}
  ${p.inputs.map((_, k) => `let a${k} = in${k}[o_in${k}];`).join('\n  ')}
  out[o_out] = ${expr};
}`;
  const code = `${declareStorage(bindings)}${u.declare(bindings.length)}${mathPrelude(body)}\n${body}`;
  return {
    label: `${labelOf(p)}_rank${collapsed.shape.length}`,
    code,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch: n === 0 ? [0, 0, 0] : grid1d(Math.ceil(n / WORKGROUP)),
    uniforms: u.data(),
    inputOffsets: u.inputOffsets,
  };
}

/** out[i] = pattern (32-bit words) for i < words: `full`, and NaN poisoning of fresh buffers. */
export function fillKernel(words: number, pattern: number): KernelSpec {
  const u = new UniformBlock();
  const count = u.u32(words);
  const value = u.u32(pattern >>> 0);
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let i = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  if (i >= ${count}) { return; }
  out[i] = ${value};
}`;
  return {
    label: 'fill',
    code: `${declareStorage([{ name: 'out', type: 'u32', access: 'read_write' }])}${u.declare(1)}${body}`,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch: words === 0 ? [0, 0, 0] : grid1d(Math.ceil(words / WORKGROUP)),
    uniforms: u.data(),
  };
}
