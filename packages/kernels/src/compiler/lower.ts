// Lowering a fusion plan to WGSL: one kernel (sometimes two, for long reductions) per planned
// group. Elementwise groups become one launch over all their segments; reductions and skinny
// matmuls become reduction kernels whose input is computed inline (the prologue) and whose
// results feed the epilogue; large matmuls use the tiled or vec4 templates with the epilogue
// as their store function; random draws and scatter-adds have kernels of their own.

import {
  type ArgReducePrimitive, type DType, type Equation, type FusionPlan, type PrimitiveParams, type ProgramVar, type ReducePrimitive,
  type ScanPrimitive, type ShaderDefinition, argReplaceCondition, kernelNamer, primitiveDefinition, scanCombineExpression, scanIdentity,
  regroupsAxes, shapesEqual, sizeOf, storedView, stridesOf,
} from '@scorch/tensor';
import { customShaderKernel } from '../wgsl/custom.js';
import { elementwiseKernel } from '../wgsl/elementwise.js';
import { type Layout } from '../layout.js';
import { type InputOffsetSource, type InputOffsetWord, MAX_WORKGROUPS_PER_DIM, UniformBlock, entryBuiltins, linearWorkgroup, wgslType } from '../wgsl/common.js';
import { SMALL_TILING, chooseTiling, chooseVec4Blocking, matmulKSpans, matmulKernel, vec4Layout, vec4MatmulKernel } from '../wgsl/matmul.js';
import { scatterAddSpans } from '../wgsl/movement.js';
import { axisSpans } from '../wgsl/scan.js';
import { PHILOX_WGSL, randomBlockValues } from '../wgsl/random.js';
import { COOPERATIVE_MIN_EXTENT, REDUCE_THREADS, chunkBoundsWgsl, combineExpression, cooperativeChunks, reduceIdentity } from '../wgsl/reduce.js';
import { renderWgsl, wgslLiteral } from '../wgsl/expression.js';
import { type Coords, KernelWriter, type Location, type Slot, VECTOR_WIDTH, type WriterContext, laneCoords, lastNonUnitAxis, opaquePrelude, slotKey, u } from './writer.js';

/** A kernel ready to run: its code, launch size, and what to bind. */
export interface LoweredKernel {
  readonly label: string;
  readonly code: string;
  readonly workgroupSize: readonly [number, number, number];
  readonly dispatch: readonly [number, number, number];
  /** The storage bindings in order; a uniform block, when present, follows them. */
  readonly bindings: readonly Slot[];
  /** Uniform words fixed at compile time (null: no uniform block, unless `key` is set). */
  readonly uniforms: Uint32Array | null;
  /**
   * The words of `uniforms` that hold a program input's offset (plus a constant), as written for
   * the layout lowered: a call with its inputs at other offsets of the same residues rewrites just
   * these (compiled/executable.ts). Absent: none.
   */
  readonly inputOffsets?: readonly InputOffsetWord[];
  /**
   * A random draw's key: the index of a program key in `program.canonicalKeys()`, or a constant
   * key. The uniform block is [k0, k1, 0, 0], written every call.
   */
  readonly key?: number | readonly [number, number];
  /** Equations of the program this kernel computes. */
  readonly equations: readonly number[];
}

export interface LoweringContext {
  readonly plan: FusionPlan;
  /** The location of a stored value (input or materialised), null for values computed inline. */
  locate(v: ProgramVar): Location | null;
  /** A scratch buffer of `elements` float32s for partial results, as a temp slot. */
  scratch(elements: number): Slot;
  readonly maxStorageBuffers: number;
  /** The device's maxUniformBufferBindingSize: the largest uniform block a kernel may bind. */
  readonly maxUniformBytes: number;
  readonly maxInvocations: number;
  /** Workgroups a register-blocked matmul keeps at least before its blocks shrink. */
  readonly vec4MinWorkgroups: number;
}

const WORKGROUP = 64;

/** The bytes of a kernel's uniform block (0 without one). */
const uniformBytes = (k: LoweredKernel): number => k.uniforms?.byteLength ?? 0;
/** With at least this many outputs, each is reduced by one thread. */
const SERIAL_MIN_OUTPUTS = 1024;
/** With at least this many outputs, a column sum is reduced by one thread per output. */
const SERIAL_MIN_COLUMNS = 128;
/**
 * Longest loop one thread runs (llvmpipe ends an invocation after 65,535 loop iterations, all
 * loops counted); longer extents are reduced cooperatively.
 */
const SERIAL_MAX_EXTENT = 16384;

/**
 * Terms a float32 sum in one thread adds in runs of this many (the serial kernel, and pass 2 over
 * the chunks' partials): 64 keeps the chain of a 16,384-term row at 64 + 256 roundings.
 */
const SERIAL_SUM_BLOCK = 64;
const COMBINE_SUM_BLOCK = 32;

function grid(groups: number): [number, number, number] {
  if (groups === 0) return [0, 0, 0];
  if (groups <= MAX_WORKGROUPS_PER_DIM) return [groups, 1, 1];
  return [MAX_WORKGROUPS_PER_DIM, Math.ceil(groups / MAX_WORKGROUPS_PER_DIM), 1];
}

/**
 * A kernel's module: `w`'s bindings, then its uniform block (the offsets of the inputs it reads,
 * KernelWriter.inputOffset) or `uniformDecl` (a random draw's key), the functions the body calls
 * and the body.
 */
function assemble(w: KernelWriter, body: string, uniformDecl = ''): string {
  if (uniformDecl && w.uniformWords) throw new Error('internal: a kernel with a uniform block of its own reads inputs at offsets');
  uniformDecl ||= w.uniformDeclaration(w.bindingList.length);
  const decl = w.declarations();
  const philox = body.includes('philox4x32(') ? PHILOX_WGSL : '';
  const functions = KernelWriter.prelude(philox + body);
  const opaque = opaquePrelude(body);
  const entry = `fn main(${entryBuiltins}) {`;
  if (opaque && !body.includes(entry)) throw new Error('internal: a kernel using opaque constants has no main to set them in');
  const main = opaque ? body.replace(entry, `${entry}\n  ${opaque.assignment}`) : body;
  return `${decl}${uniformDecl}${opaque?.declarations ?? ''}${functions}\n${philox}\n${main}`;
}

/**
 * A kernel of one thread per index `name` < `count` running `lines` (emitted by `w`): the shape
 * of serial reductions, dot products and scatter-adds.
 */
function perThreadKernel(w: KernelWriter, label: string, name: string, count: number, lines: readonly string[], equations: Iterable<number>): LoweredKernel {
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let ${name} = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  if (${name} >= ${u(count)}) { return; }
  ${lines.join('\n  ')}
}`;
  return {
    label, code: assemble(w, body), workgroupSize: [WORKGROUP, 1, 1], dispatch: grid(Math.ceil(count / WORKGROUP)),
    bindings: w.bindingList.map((b) => b.slot), uniforms: w.uniformData(), inputOffsets: w.offsetWords, equations: [...new Set([...equations, ...w.covered])].sort((a, b) => a - b),
  };
}

/** A lowering in progress: its context, and the kernel writers' context, built once per plan. */
interface Lowering extends LoweringContext {
  readonly writer: WriterContext;
}

function newWriter(ctx: Lowering, vectorSlots?: ReadonlySet<string>): KernelWriter {
  return new KernelWriter(ctx.writer, vectorSlots);
}

// ---------------------------------------------------------------------------------------------
// Elementwise

type ElementwisePart = { readonly shape: readonly number[]; readonly roots: readonly ProgramVar[] };

/**
 * The axis along which one invocation computes VECTOR_WIDTH consecutive elements of a part: its
 * innermost axis, when a multiple of the width (else one element per invocation).
 */
function vectorAxis(shape: readonly number[]): number | null {
  const a = lastNonUnitAxis(shape);
  return a >= 0 && shape[a]! % VECTOR_WIDTH === 0 ? a : null;
}

/**
 * One launch over every part; each part covers a range of invocations. In a vectorised part an
 * invocation decodes its first element's index once and computes VECTOR_WIDTH consecutive
 * elements with the same expression each (so results equal the one-element kernel's): operands
 * with unit inner stride at aligned addresses are one vec4 load, broadcast operands one load,
 * others a load per element; results are one vec4 store where aligned. On software adapters every
 * storage access costs a loop over the SIMD lanes, so four values per access is what pays (the
 * eager template does the same, wgsl/elementwise.ts).
 */
function lowerElementwise(ctx: Lowering, parts: readonly ElementwisePart[]): LoweredKernel {
  // Written twice: the first writing finds which bindings some access reads or writes as
  // vectors, the second declares those as vec4 arrays.
  const first = writeElementwise(ctx, parts, new Set());
  const vectors = first.writer.vectorBindings();
  return vectors.size === 0 ? first.kernel : writeElementwise(ctx, parts, vectors).kernel;
}

function writeElementwise(ctx: Lowering, parts: readonly ElementwisePart[], vectorSlots: ReadonlySet<string>): { kernel: LoweredKernel; writer: KernelWriter } {
  const w = newWriter(ctx, vectorSlots);
  const blocks: string[] = [];
  let start = 0;
  for (const part of parts) {
    const n = sizeOf(part.shape);
    if (n === 0) continue;
    const axis = vectorAxis(part.shape);
    const end = start + (axis === null ? n : n / VECTOR_WIDTH);
    const lines = w.scope(() => {
      const j = start === 0 ? 'i' : w.fresh('j');
      if (start !== 0) w.emit(`let ${j} = i - ${u(start)};`);
      if (axis === null) {
        const coords = w.decode(j, part.shape);
        for (const root of part.roots) w.writeRoot(root, coords);
        return;
      }
      const e = w.fresh('e');
      w.emit(`let ${e} = ${j} * ${u(VECTOR_WIDTH)};`);
      const at0 = w.decode(e, part.shape);
      const lanes = Array.from({ length: VECTOR_WIDTH }, (_, k) => laneCoords(at0, axis, k, true));
      for (const root of part.roots) w.writeRoot(root, ...lanes);
    });
    blocks.push(`  if (i < ${u(end)}) {\n    ${lines.join('\n    ')}\n    return;\n  }`);
    start = end;
  }
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let i = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
${blocks.join('\n')}
}`;
  const shapes = parts.map((p) => `[${p.shape.join(',')}]x${p.roots.length}`).join('+');
  const kernel: LoweredKernel = {
    label: `fused_elementwise_${shapes}`,
    code: assemble(w, body),
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch: grid(Math.ceil(start / WORKGROUP)),
    bindings: w.bindingList.map((b) => b.slot),
    uniforms: w.uniformData(),
    inputOffsets: w.offsetWords,
    equations: [...w.covered].sort((a, b) => a - b),
  };
  return { kernel, writer: w };
}

/**
 * Lowers elementwise parts, splitting them over several kernels when they bind too many buffers
 * or their uniform block (a word for each stored value's and input's offset) is larger than the
 * device binds: a kernel storing thousands of results (Adam over a large parameter tree) made a
 * block past maxUniformBufferBindingSize, which failed only when bound, in Dawn's words.
 */
function lowerElementwiseWithinLimits(ctx: Lowering, parts: readonly ElementwisePart[]): LoweredKernel[] {
  const kernel = lowerElementwise(ctx, parts);
  if (kernel.bindings.length <= ctx.maxStorageBuffers && uniformBytes(kernel) <= ctx.maxUniformBytes) return [kernel];
  // Split the roots in order: a root may read an earlier root of its segment, which a later
  // kernel then reads from memory (every root is stored).
  const flat = parts.flatMap((p) => p.roots.map((r) => ({ shape: p.shape, root: r })));
  if (flat.length === 1) {
    if (kernel.bindings.length > ctx.maxStorageBuffers) throw new Error(`webgpu jit: one fused value reads ${kernel.bindings.length} buffers, more than the ${ctx.maxStorageBuffers} a kernel may bind`);
    return [kernel]; // its uniform block past the limit: lowerPlan's last check names it
  }
  const half = Math.ceil(flat.length / 2);
  const group = (items: typeof flat) => {
    const out: { shape: readonly number[]; roots: ProgramVar[] }[] = [];
    for (const it of items) {
      const last = out[out.length - 1];
      if (last && last.shape === it.shape) last.roots.push(it.root);
      else out.push({ shape: it.shape, roots: [it.root] });
    }
    return out;
  };
  return [...lowerElementwiseWithinLimits(ctx, group(flat.slice(0, half))), ...lowerElementwiseWithinLimits(ctx, group(flat.slice(half)))];
}

// ---------------------------------------------------------------------------------------------
// Reductions (sum, max, and matmuls with a small M or N as dot products)

interface ReductionSpec {
  op: ReducePrimitive;
  /** The anchor value (shape = the output coordinates). */
  anchor: ProgramVar;
  /** Shape of the reduced axes (walked by linear index r). */
  reduced: readonly number[];
  /** The element to combine at output coordinates `out` and reduced coordinates `red`. */
  term(w: KernelWriter, out: Coords, red: Coords): string;
  epilogue: readonly ProgramVar[];
  writesResult: boolean;
  equation: number;
  /** The reduced axes come before every kept axis (a column sum). */
  columns: boolean;
}

function reductionOf(ctx: LoweringContext, kernel: { equation: number; epilogue: ProgramVar[]; writesResult: boolean }): ReductionSpec {
  const eq = ctx.plan.program.equations[kernel.equation]!;
  if (eq.prim === 'matmul') {
    const [a, b] = eq.inputs as [ProgramVar, ProgramVar];
    const r = eq.out.shape.length;
    const k = a.shape[r - 1]!;
    return {
      op: 'sum',
      anchor: eq.out,
      reduced: [k],
      term: (w, out, red) => {
        const batch = out.axes.slice(0, r - 2);
        const av = w.value(a, { axes: [...batch, out.axes[r - 2]!, red.axes[0]!] });
        const bv = w.value(b, { axes: [...batch, red.axes[0]!, out.axes[r - 1]!] });
        return `${av} * ${bv}`;
      },
      epilogue: kernel.epilogue,
      writesResult: kernel.writesResult,
      equation: kernel.equation,
      columns: false,
    };
  }
  const { axes } = eq.params as PrimitiveParams['sum'];
  const x = eq.inputs[0]!;
  return {
    op: eq.prim as ReducePrimitive,
    anchor: eq.out,
    reduced: axes.map((a) => x.shape[a]!),
    term: (w, out, red) => {
      const full: string[] = [];
      let ko = 0;
      let kr = 0;
      x.shape.forEach((_, i) => full.push(axes.includes(i) ? red.axes[kr++]! : out.axes[ko++]!));
      return w.value(x, { axes: full });
    },
    epilogue: kernel.epilogue,
    writesResult: kernel.writesResult,
    equation: kernel.equation,
    columns: isColumnReduction(axes, x.shape.length),
  };
}

/** True when every reduced axis comes before every kept axis. */
function isColumnReduction(axes: readonly number[], rank: number): boolean {
  const kept = Array.from({ length: rank }, (_, i) => i).filter((i) => !axes.includes(i));
  return kept.length > 0 && Math.max(...axes) < Math.min(...kept);
}

/**
 * Writes the anchor (if stored) and the epilogue from the finished accumulator `acc`, at `out`.
 * An epilogue value that reads the anchor (or an earlier value) through a reshape reads it at
 * coordinates the reshape computes, other expressions than `out`'s for the same element (a
 * product [b·s, h] read as [b, s, h] and back as [b·s, h], how `matmul` folds a batch into rows):
 * such an epilogue computes every value at the coordinates of the element's row-major index,
 * which carry that index, the key the writer knows the anchor and the values by; and a value of
 * a shape that regroups the anchor's rows, or a reduction's axes (planFusion's splitRowEpilogues), at the coordinates of
 * that index over its own shape.
 */
function finishReduction(w: KernelWriter, plan: FusionPlan, spec: Pick<ReductionSpec, 'anchor' | 'epilogue' | 'writesResult'>, out: Coords, acc: string): void {
  const anchor = spec.anchor;
  w.define(anchor, out, acc);
  if (spec.writesResult) w.store(anchor, out, acc);
  if (!spec.epilogue.some((root) => !shapesEqual(root.shape, anchor.shape) || readsThroughReshape(plan, root))) {
    for (const root of spec.epilogue) w.writeRoot(root, out);
    return;
  }
  const linear = out.linear !== undefined && out.shape && shapesEqual(out.shape, anchor.shape) ? out.linear : rowMajorIndex(w, out, anchor.shape);
  const indexed: Coords = { axes: out.axes, linear, shape: anchor.shape };
  w.define(anchor, indexed, acc);
  const coords = new Map<string, Coords>([[anchor.shape.join(','), indexed]]);
  for (const root of spec.epilogue) {
    if (!shapesEqual(root.shape, anchor.shape) && !regroupsAxes(anchor.shape, root.shape)) {
      throw new Error(`internal: an epilogue value of shape [${root.shape.join(', ')}] does not regroup the rows of its anchor's [${anchor.shape.join(', ')}]`);
    }
    const key = root.shape.join(',');
    let at = coords.get(key);
    if (!at) {
      at = w.reshapeCoords(indexed, anchor.shape, root.shape);
      coords.set(key, at);
    }
    w.writeRoot(root, at);
  }
}

/** Primitives an epilogue value's computation reads its inputs through at other coordinates than its own (or none). */
const NOT_AT_ELEMENT = new Set<string>(['expand', 'permute', 'slice', 'pad', 'concat', 'gather', 'matmul', 'full']);

/**
 * Whether computing `root` from its definition reaches a reshape through elementwise ops alone:
 * it then reads what lies past the reshape (the anchor, an earlier epilogue value) at its own
 * row-major index, under other coordinate expressions (finishReduction).
 */
function readsThroughReshape(plan: FusionPlan, root: ProgramVar): boolean {
  const inputs = new Set(plan.program.inputs.map((v) => v.id));
  const seen = new Set<number>();
  const walk = (v: ProgramVar): boolean => {
    if (plan.materialized.has(v.id) || inputs.has(v.id) || seen.has(v.id)) return false;
    seen.add(v.id);
    const eq = plan.definitions.get(v.id)!;
    if (eq.prim === 'reshape') return true;
    return !NOT_AT_ELEMENT.has(eq.prim) && eq.inputs.some(walk);
  };
  return plan.definitions.get(root.id)!.inputs.some(walk);
}

/** The row-major index of `coords` over `shape`, named by a `let` in the current scope. */
function rowMajorIndex(w: KernelWriter, coords: Coords, shape: readonly number[]): string {
  const name = w.fresh('e');
  // The address of the element in a dense row-major value at offset 0.
  w.emit(`let ${name} = ${w.address({ offset: 0, strides: stridesOf(shape) }, coords, shape)};`);
  return name;
}

/**
 * How a compiled reduction of `extent` elements per output, with `outputs` outputs, is run.
 * `columns`: the reduced axes all come before the kept ones (a column sum), so neighbouring
 * outputs read neighbouring elements.
 */
function reductionShape(outputs: number, extent: number, columns: boolean): { serial: boolean; chunks: number } {
  // Many outputs keep every core busy with one thread each; cooperation (a workgroup per
  // output, a tree in workgroup memory) pays only when outputs are few and long. Column sums
  // go serial sooner: each SIMD group of threads then reads one contiguous run per step
  // (measured on llvmpipe: a [1024,128] column sum 4× faster than cooperatively).
  const serialFrom = columns ? SERIAL_MIN_COLUMNS : SERIAL_MIN_OUTPUTS;
  if (extent < COOPERATIVE_MIN_EXTENT || (outputs >= serialFrom && extent <= SERIAL_MAX_EXTENT)) return { serial: true, chunks: 1 };
  return { serial: false, chunks: cooperativeChunks(outputs, extent) };
}

/**
 * The longest chain of additions any input takes part in when a compiled kernel sums `extent`
 * elements per output: the summation error is at most depth·u·Σ|x| (Higham), the bound the
 * parity tests hold compiled reductions to.
 */
export function compiledReductionDepth(outputs: number, extent: number, columns = false): number {
  const { serial, chunks } = reductionShape(outputs, extent, columns);
  if (serial) return blockedDepth(extent, SERIAL_SUM_BLOCK);
  const perChunk = Math.ceil(extent / chunks);
  return Math.ceil(perChunk / REDUCE_THREADS) + Math.log2(REDUCE_THREADS) + (chunks > 1 ? blockedDepth(chunks, COMBINE_SUM_BLOCK) : 0);
}

/** The longest chain of roundings of `n` terms summed in runs of `block` (plainly when n ≤ block). */
function blockedDepth(n: number, block: number): number {
  if (n <= block) return Math.max(n - 1, 0);
  return block - 1 + Math.ceil(n / block);
}

/**
 * WGSL for `for index in [0, n)`, whose body (given the variable it adds into) combines a term
 * into `acc`; with `block`, each run of block.size terms is summed apart into a `block` variable
 * (starting at block.zero) that is then added to acc. `pad` indents the loop's closing lines.
 */
function sumLoopWgsl(index: string, n: string, acc: string, body: (into: string) => readonly string[], block: { size: number; zero: string } | null, pad: string): string {
  if (!block) return `for (var ${index} = 0u; ${index} < ${n}; ${index} = ${index} + 1u) {\n${pad}  ${body(acc).join(`\n${pad}  `)}\n${pad}}`;
  const [start, end] = [`${index}0`, `${index}_end`];
  return (
    `for (var ${start} = 0u; ${start} < ${n}; ${start} = ${start} + ${block.size}u) {\n${pad}  var block: f32 = ${block.zero};\n${pad}  let ${end} = min(${start} + ${block.size}u, ${n});\n` +
    `${pad}  for (var ${index} = ${start}; ${index} < ${end}; ${index} = ${index} + 1u) {\n${pad}    ${body('block').join(`\n${pad}    `)}\n${pad}  }\n${pad}  ${acc} = ${acc} + block;\n${pad}}`
  );
}

function lowerReduction(ctx: Lowering, spec: ReductionSpec): LoweredKernel[] {
  const outShape = spec.anchor.shape;
  const outputs = sizeOf(outShape);
  const extent = sizeOf(spec.reduced);
  const t = wgslType(spec.anchor.dtype);
  const combine = (a: string, b: string) => combineExpression(spec.op, t, a, b);
  const identity = reduceIdentity(spec.op, t);
  const label = `fused_${spec.op}_${outputs}x${extent}${spec.epilogue.length ? `_epilogue${spec.epilogue.length}` : ''}`;

  const shape = reductionShape(outputs, extent, spec.columns);
  if (shape.serial) {
    // One thread per output walks the whole (short) extent.
    const w = newWriter(ctx);
    const lines = w.scope(() => {
      const out = w.decode('o', outShape);
      // Over an empty extent the loop never runs: acc is then the identity, a constant the
      // compiler would fold into the epilogue (a mean's 0/0 to 0, not NaN) unless it is opaque.
      // A float sum's 0 is opaque always: the loop over a short literal extent is unrolled and
      // 0 + x folded to x, which keeps x = −0 where the eager kernel's 0 + (−0) gives +0.
      const opaqueStart = t === 'f32' && (extent === 0 || spec.op === 'sum');
      w.emit(`var acc: ${t} = ${opaqueStart ? w.opaque(identity) : identity};`);
      // Blocked (a float sum longer than a block): an element takes part in at most
      // BLOCK − 1 + ⌈extent/BLOCK⌉ roundings, not extent − 1 (a [1024, 16384] row sum was ~160×
      // less accurate than eager's tree; the same reads). The block starts opaque as acc does.
      const blocked = t === 'f32' && spec.op === 'sum' && extent > SERIAL_SUM_BLOCK;
      const zero = blocked ? w.fresh('zero') : '';
      if (blocked) w.emit(`let ${zero}: f32 = ${w.opaque(identity)};`);
      const body = (into: string) =>
        w.scope(() => {
          const red = w.decode('r', spec.reduced);
          w.emit(`${into} = ${combine(into, spec.term(w, out, red))};`);
        });
      w.emit(sumLoopWgsl('r', u(extent), 'acc', body, blocked ? { size: SERIAL_SUM_BLOCK, zero } : null, '    '));
      finishReduction(w, ctx.plan, spec, out, 'acc');
    });
    return [perThreadKernel(w, `${label}_serial`, 'o', outputs, lines, [spec.equation])];
  }

  const chunks = shape.chunks;
  const chunkLength = Math.ceil(extent / chunks);
  const tree = `  partial[lid] = acc;
  workgroupBarrier();
  for (var width = ${REDUCE_THREADS / 2}u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] = ${combine('partial[lid]', 'partial[lid + width]')}; }
    workgroupBarrier();
  }`;
  // Pass 1 (or the only pass): each workgroup reduces one chunk of one output's extent.
  const w = newWriter(ctx);
  const partials = chunks > 1 ? ctx.scratch(outputs * chunks) : null;
  const partialName = partials ? w.bind(partials, t, 'read_write') : '';
  const setup = w.scope(() => {
    const out = w.decode('o', outShape);
    const loop = w.scope(() => {
      const red = w.decode('r', spec.reduced);
      w.emit(`acc = ${combine('acc', spec.term(w, out, red))};`);
    });
    w.emit(`var acc: ${t} = ${identity};`);
    if (chunks > 1) {
      for (const line of chunkBoundsWgsl('chunk', u(chunkLength), u(extent), 'chunk_start', 'chunk_length')) w.emit(line);
      w.emit(`for (var i = lid; i < chunk_length; i = i + ${u(REDUCE_THREADS)}) {\n    let r = chunk_start + i;\n    ${loop.join('\n    ')}\n  }`);
    } else {
      w.emit(`for (var r = lid; r < ${u(extent)}; r = r + ${u(REDUCE_THREADS)}) {\n    ${loop.join('\n    ')}\n  }`);
    }
    w.emit(tree);
    const finish = w.scope(() => {
      if (partials) w.emit(`${partialName}[slot] = partial[0];`);
      else finishReduction(w, ctx.plan, spec, out, 'partial[0]');
    });
    w.emit(`if (lid == 0u) {\n    ${finish.join('\n    ')}\n  }`);
  });
  const body = `
var<workgroup> partial: array<${t}, ${REDUCE_THREADS}>;

@compute @workgroup_size(${REDUCE_THREADS})
fn main(${entryBuiltins}) {
  let slot = ${linearWorkgroup};
  if (slot >= ${u(outputs * chunks)}) { return; }
  let o = slot / ${u(chunks)};
  let chunk = slot % ${u(chunks)};
  ${setup.join('\n  ')}
}`;
  const first: LoweredKernel = {
    label: `${label}_cooperative${chunks > 1 ? '_chunks' : ''}`, code: assemble(w, body), workgroupSize: [REDUCE_THREADS, 1, 1],
    dispatch: grid(outputs * chunks), bindings: w.bindingList.map((b) => b.slot), uniforms: w.uniformData(), inputOffsets: w.offsetWords, equations: [spec.equation, ...w.covered].sort((a, b) => a - b),
  };
  if (!partials) return [first];
  // Pass 2: one thread per output combines its chunks' partials, then the epilogue.
  const w2 = newWriter(ctx);
  const src = w2.bind(partials, t, 'read');
  const lines = w2.scope(() => {
    const out = w2.decode('o', outShape);
    w2.emit(`var acc: ${t} = ${identity};`);
    // Blocked as the serial sum: up to 1024 partials in one chain lost eager's tree accuracy.
    const blocked = t === 'f32' && spec.op === 'sum' && chunks > COMBINE_SUM_BLOCK;
    const body = (into: string) => [`${into} = ${combine(into, `${src}[o * ${u(chunks)} + c]`)};`];
    w2.emit(sumLoopWgsl('c', u(chunks), 'acc', body, blocked ? { size: COMBINE_SUM_BLOCK, zero: identity } : null, '  '));
    finishReduction(w2, ctx.plan, spec, out, 'acc');
  });
  return [first, perThreadKernel(w2, `${label}_combine`, 'o', outputs, lines, [spec.equation])];
}

/**
 * A matmul with few rows or few columns (M or N ≤ 4) as dot products: one thread per row of C
 * (or per column) computes its N (or M) outputs together, so the long operand's element, and
 * whatever prologue computes it, is loaded once per k and feeds every output of the thread.
 */
function lowerDot(ctx: Lowering, kernel: { equation: number; epilogue: ProgramVar[]; writesResult: boolean }): LoweredKernel[] {
  const eq = ctx.plan.program.equations[kernel.equation]!;
  const [a, b] = eq.inputs as [ProgramVar, ProgramVar];
  const outShape = eq.out.shape;
  const r = outShape.length;
  const [m, n, k] = [outShape[r - 2]!, outShape[r - 1]!, a.shape[r - 1]!];
  if (k > SERIAL_MAX_EXTENT) return lowerReduction(ctx, reductionOf(ctx, kernel));
  const byRow = n <= m; // threads walk the longer side; each computes the short side's outputs
  const inner = byRow ? n : m;
  const threadShape = [...outShape.slice(0, -2), byRow ? m : n];
  const threads = sizeOf(threadShape);
  const t = wgslType(eq.out.dtype);
  const w = newWriter(ctx);
  const lines = w.scope(() => {
    const tc = w.decode('o', threadShape);
    const batch = tc.axes.slice(0, -1);
    const own = tc.axes[tc.axes.length - 1]!;
    for (let q = 0; q < inner; q++) w.emit(`var acc${q}: ${t} = ${wgslLiteral(0, eq.out.dtype)};`);
    const loop = w.scope(() => {
      if (byRow) {
        const av = w.value(a, { axes: [...batch, own, 'kk'] });
        for (let q = 0; q < inner; q++) w.emit(`acc${q} = acc${q} + ${av} * ${w.value(b, { axes: [...batch, 'kk', u(q)] })};`);
      } else {
        const bv = w.value(b, { axes: [...batch, 'kk', own] });
        for (let q = 0; q < inner; q++) w.emit(`acc${q} = acc${q} + ${w.value(a, { axes: [...batch, u(q), 'kk'] })} * ${bv};`);
      }
    });
    w.emit(`for (var kk = 0u; kk < ${u(k)}; kk = kk + 1u) {\n    ${loop.join('\n    ')}\n  }`);
    for (let q = 0; q < inner; q++) {
      const out: Coords = { axes: byRow ? [...batch, own, u(q)] : [...batch, u(q), own] };
      const part = w.scope(() => finishReduction(w, ctx.plan, { anchor: eq.out, epilogue: kernel.epilogue, writesResult: kernel.writesResult }, out, `acc${q}`));
      w.emit(`{\n    ${part.join('\n    ')}\n  }`);
    }
  });
  const label = `fused_dot_${m}x${n}x${k}${byRow ? '_rows' : '_columns'}${kernel.epilogue.length ? `_epilogue${kernel.epilogue.length}` : ''}`;
  return [perThreadKernel(w, label, 'o', threads, lines, [kernel.equation])];
}

// ---------------------------------------------------------------------------------------------
// Large matmuls

function lowerMatmul(ctx: Lowering, kernel: { equation: number; epilogue: ProgramVar[]; writesResult: boolean }): LoweredKernel[] {
  const eq = ctx.plan.program.equations[kernel.equation]! as Equation<'matmul'>;
  const plan = ctx.plan;
  // `source`: the program input the operand is a view of (its offset a rewritable uniform word).
  type Operand = { slot: Slot; layout: Layout; base: Location; count: number; source?: InputOffsetSource };
  const operand = (x: ProgramVar): Operand => {
    const sv = storedView(x, plan.definitions, (id) => ctx.locate({ id, shape: [], dtype: 'float32' }) !== null);
    if (!sv) throw new Error('internal: a tiled matmul operand is not a view of a stored value');
    const loc = ctx.locate(sv.base)!;
    // A size-1 axis is never stepped along; a zero stride keeps it out of alignment checks.
    const strides = sv.view.strides.map((s, i) => (sv.view.shape[i] === 1 ? 0 : s));
    const source = loc.input === undefined ? undefined : { input: loc.input, plus: sv.view.offset };
    return { slot: loc.slot, layout: { shape: sv.view.shape, strides, offset: loc.offset + sv.view.offset }, base: loc, count: sizeOf(sv.base.shape), source };
  };
  // An operand in a buffer this kernel writes (two program outputs share one block: the product
  // of one output written beside another it reads) would alias a writable binding, which WebGPU
  // forbids: its stored value is copied to scratch first (a copy kernel before the product).
  const copies: LoweredKernel[] = [];
  const apart = (x: Operand, written: readonly Slot[]): Operand => {
    if (!written.some((s) => slotKey(s) === slotKey(x.slot))) return x;
    const scratch: Location = { slot: ctx.scratch(Math.max(x.count, 1)), offset: 0, strides: [] };
    copies.push(copyKernel(x.base, scratch, x.count, 'float32'));
    return { ...x, slot: scratch.slot, layout: { ...x.layout, offset: x.layout.offset - x.base.offset }, base: scratch, source: undefined };
  };
  let a = operand(eq.inputs[0]!);
  let b = operand(eq.inputs[1]!);
  const outShape = eq.out.shape;
  const rank = outShape.length;
  const batchShape = outShape.slice(0, -2);
  const batch = sizeOf(batchShape);
  const m = outShape[rank - 2]!;
  const n = outShape[rank - 1]!;
  let tiling = chooseTiling(m, n, batch);
  if ((tiling.tileM * tiling.tileN) / (tiling.perThreadM * tiling.perThreadN) > ctx.maxInvocations) tiling = SMALL_TILING;
  const blocking = chooseVec4Blocking(m, n, batch, ctx.vec4MinWorkgroups);
  // A long K is summed in spans, each launch after the first adding to C (MATMUL_K_SPAN).
  const kSpans = matmulKSpans(eq.inputs[0]!.shape[rank - 1]!);
  if (kernel.epilogue.length === 0 && kernel.writesResult) {
    // A plain product: the templates' own code (shapes are uniforms), the same for every program.
    const c = ctx.locate(eq.out)!;
    a = apart(a, [c.slot]);
    b = apart(b, [c.slot]);
    // (The vec4 layout after any copy: a copy moves the operand's offset.)
    const axes = vec4Layout(a.layout, b.layout);
    const kernels: LoweredKernel[] = [...copies];
    for (let start = 0; start < batch; start += MAX_WORKGROUPS_PER_DIM) {
      const count = Math.min(MAX_WORKGROUPS_PER_DIM, batch - start);
      for (const span of kSpans) {
        const ks = { kStart: span.start, kCount: span.count, accumulate: span.start > 0 };
        const spec = axes
          ? vec4MatmulKernel({ a: a.layout, b: b.layout, aSource: a.source, bSource: b.source, outShape, axes, blocking, batchStart: start, batchCount: count, outOffset: c.offset, ...ks })
          : matmulKernel({ a: a.layout, b: b.layout, aSource: a.source, bSource: b.source, outShape, tiling, batchStart: start, batchCount: count, outOffset: c.offset, ...ks });
        kernels.push({ label: spec.label, code: spec.code, workgroupSize: spec.workgroupSize, dispatch: spec.dispatch, bindings: [a.slot, b.slot, c.slot], uniforms: spec.uniforms, inputOffsets: spec.inputOffsets, equations: [kernel.equation] });
      }
    }
    return kernels;
  }
  // C goes where the result is stored, or to a scratch buffer the epilogue reads back; the
  // epilogue runs once per element of each invocation's tile (see MatmulEpilogue).
  const w = newWriter(ctx);
  const raw: Location = kernel.writesResult ? ctx.locate(eq.out)! : { slot: ctx.scratch(batch * m * n), offset: 0, strides: [] };
  const rawName = w.bind(raw.slot, 'f32', 'read_write');
  const at = `${raw.offset ? `${u(raw.offset)} + ` : ''}batch * ${u(m * n)} + row * ${u(n)} + col`;
  const perElement = kernel.epilogue.length > 0;
  let epilogueFunction = '';
  if (perElement) {
    const lines = w.scope(() => {
      const batchCoords = w.decode('batch', batchShape).axes;
      const out: Coords = { axes: [...batchCoords, 'row', 'col'] };
      w.emit(`let value = ${rawName}[${at}];`);
      finishReduction(w, plan, { anchor: eq.out, epilogue: kernel.epilogue, writesResult: false }, out, 'value');
    });
    epilogueFunction = `fn matmul_epilogue(batch: u32, row: u32, col: u32) {\n  ${lines.join('\n  ')}\n}\n`;
  }
  // After the first span of K, the last launch (the one with the epilogue) adds to what the
  // plain launches before it stored.
  const accumulate = kSpans.length > 1;
  const functions = `fn matmul_store(batch: u32, row: u32, col: u32, value: f32) {\n  ${rawName}[${at}] = ${accumulate ? `${rawName}[${at}] + ` : ''}value;\n}\n${epilogueFunction}`;
  // Constants and reused values in the epilogue pass through the opaque functions (compiler/writer.ts): the templates' main sets their flag.
  const opaque = opaquePrelude(functions);
  const epilogue = {
    declarations: w.declarations(2), bindingCount: w.bindingList.length, functions: `${opaque?.declarations ?? ''}${KernelWriter.prelude(functions)}\n${functions}`, perElement,
    entry: opaque?.assignment ?? '',
    uniforms: w.uniforms,
  };
  const written = w.bindingList.filter((x) => x.access === 'read_write').map((x) => x.slot);
  a = apart(a, written);
  b = apart(b, written);
  const axes = vec4Layout(a.layout, b.layout);
  const kernels: LoweredKernel[] = [...copies];
  const last = kSpans[kSpans.length - 1]!;
  for (let start = 0; start < batch; start += MAX_WORKGROUPS_PER_DIM) {
    const count = Math.min(MAX_WORKGROUPS_PER_DIM, batch - start);
    // Every span but the last: the plain template, storing or adding the raw product where the
    // epilogue's launch reads it.
    for (const span of kSpans.slice(0, -1)) {
      const ks = { kStart: span.start, kCount: span.count, accumulate: span.start > 0, outOffset: raw.offset };
      const spec = axes
        ? vec4MatmulKernel({ a: a.layout, b: b.layout, aSource: a.source, bSource: b.source, outShape, axes, blocking, batchStart: start, batchCount: count, ...ks })
        : matmulKernel({ a: a.layout, b: b.layout, aSource: a.source, bSource: b.source, outShape, tiling, batchStart: start, batchCount: count, ...ks });
      kernels.push({ label: `fused_${spec.label}`, code: spec.code, workgroupSize: spec.workgroupSize, dispatch: spec.dispatch, bindings: [a.slot, b.slot, raw.slot], uniforms: spec.uniforms, inputOffsets: spec.inputOffsets, equations: [kernel.equation] });
    }
    const ks = { kStart: last.start, kCount: last.count };
    const spec = axes
      ? vec4MatmulKernel({ a: a.layout, b: b.layout, aSource: a.source, bSource: b.source, outShape, axes, blocking, batchStart: start, batchCount: count, epilogue, ...ks })
      : matmulKernel({ a: a.layout, b: b.layout, aSource: a.source, bSource: b.source, outShape, tiling, batchStart: start, batchCount: count, epilogue, ...ks });
    kernels.push({
      label: `fused_${spec.label}`,
      code: spec.code,
      workgroupSize: spec.workgroupSize,
      dispatch: spec.dispatch,
      bindings: [a.slot, b.slot, ...w.bindingList.map((x) => x.slot)],
      uniforms: spec.uniforms,
      // The epilogue's words and their records come first in the template's block (MatmulEpilogue.uniforms).
      inputOffsets: spec.inputOffsets,
      equations: [kernel.equation, ...w.covered].sort((x, y) => x - y),
    });
  }
  return kernels;
}

// ---------------------------------------------------------------------------------------------
// Random draws and scatter-adds

function lowerRandom(ctx: Lowering, index: number): LoweredKernel {
  const eq = ctx.plan.program.equations[index]! as Equation<'random'>;
  const p = eq.params;
  if (p.dtype !== 'float32') throw new Error(`webgpu random: dtype ${p.dtype} is not supported; WebGPU draws float32`);
  const count = sizeOf(p.shape);
  const w = newWriter(ctx);
  const loc = ctx.locate(eq.out)!;
  const out = w.bind(loc.slot, 'f32', 'read_write');
  // The stream layout of @scorch/tensor's fillRandom (see wgsl/random.ts): block b → elements 4b..4b+3.
  const values = randomBlockValues(p.distribution);
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let block = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  let first = block * 4u;
  if (first >= ${u(count)}) { return; }
  let w = philox4x32(vec4<u32>(block, 0u, 0u, 0u), vec2<u32>(KEY.x, KEY.y));
  ${values}
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (first + j < ${u(count)}) { ${out}[${loc.offset ? `${u(loc.offset)} + ` : ''}first + j] = v[j]; }
  }
}`;
  const uniformDecl = `@group(0) @binding(${w.bindingList.length}) var<uniform> KEY: vec4<u32>;\n`;
  return {
    label: `fused_random_${p.distribution}_${count}`,
    code: assemble(w, body, uniformDecl),
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch: grid(Math.ceil(Math.ceil(count / 4) / WORKGROUP)),
    bindings: w.bindingList.map((b) => b.slot),
    uniforms: null,
    key: eq.key ? ctx.plan.program.canonicalKeys().indexOf(eq.key) : p.key,
    equations: [index],
  };
}

/**
 * Scatter-add: each output element sums, in index order, the updates aimed at it (deterministic,
 * and the CPU's sequential accumulation). llvmpipe ends an invocation after 65,535 loop
 * iterations, so long index lists are walked in spans of SCATTER_ADD_SPAN, one launch each,
 * every launch after the first adding to what the previous one stored.
 */
function lowerScatterAdd(ctx: Lowering, index: number): LoweredKernel[] {
  const eq = ctx.plan.program.equations[index]! as Equation<'scatterAdd'>;
  const { axis, size } = eq.params;
  const [updates, indices] = eq.inputs as [ProgramVar, ProgramVar];
  const n = sizeOf(eq.out.shape);
  const length = updates.shape[axis]!;
  const t = wgslType(eq.out.dtype);
  return scatterAddSpans(length).map(({ start, count }) => {
    const w = newWriter(ctx);
    const lines = w.scope(() => {
      const out = w.decode('i', eq.out.shape);
      w.emit(`var acc: ${t} = ${start === 0 ? wgslLiteral(0, eq.out.dtype) : w.value(eq.out, out)};`);
      const loop = w.scope(() => {
        const target = w.value(indices, { axes: ['j'] });
        const inner = w.scope(() => {
          const val = w.value(updates, { axes: out.axes.map((c, d) => (d === axis ? 'j' : c)) });
          w.emit(`acc = acc + ${val};`);
        });
        const check = w.scope(() => {
          // Checked once per index: by the first output element of the target axis' neighbours.
          w.emit(`if (${out.axes[axis]} == 0u && (${target} < 0 || ${target} >= ${size})) { ${w.reportBadIndex('scatterAdd', target, axis, size)} }`);
        });
        w.emit(`${check.join(' ')}\n    if (u32(${target}) == ${out.axes[axis]}) {\n      ${inner.join('\n      ')}\n    }`);
      });
      w.emit(`for (var j = ${u(start)}; j < ${u(start + count)}; j = j + 1u) {\n    ${loop.join('\n    ')}\n  }`);
      w.store(eq.out, out, 'acc');
    });
    return perThreadKernel(w, `fused_scatterAdd_${n}_from${start}`, 'i', n, lines, [index]);
  });
}

/** The coordinates of a line's element `pos` along `axis`: the line's coordinates with `pos` inserted there. */
function withAxis(line: Coords, axis: number, pos: string): Coords {
  const axes = [...line.axes];
  axes.splice(axis, 0, pos);
  return { axes };
}

/**
 * cumsum and cumprod: one thread per line (every coordinate but the axis) walks the axis in
 * order, its input computed inline, storing every running value; spans of the axis as in
 * wgsl/scan.ts (each launch continues from the value the previous one stored).
 */
function lowerScan(ctx: Lowering, index: number): LoweredKernel[] {
  const eq = ctx.plan.program.equations[index]! as Equation<ScanPrimitive>;
  const { axis, reverse } = eq.params;
  const x = eq.inputs[0]!;
  const shape = eq.out.shape;
  const extent = shape[axis]!;
  const lineShape = shape.filter((_, d) => d !== axis);
  const lines = extent === 0 ? 0 : sizeOf(lineShape);
  // An empty result has nothing to write (and position extent − 1 would be −1u).
  if (sizeOf(shape) === 0) return [];
  const t = wgslType(eq.out.dtype);
  return axisSpans(extent).map(({ start, count }) => {
    const w = newWriter(ctx);
    const body = w.scope(() => {
      const line = w.decode('line', lineShape);
      const at = (pos: string) => withAxis(line, axis, pos);
      const previous = reverse ? u(extent - start) : u(start - 1);
      // A float cumsum starts from an opaque 0: the compiler would fold 0 + x to x in the
      // unrolled loop, giving −0 for a leading −0 where the eager kernel gives +0.
      const identity = wgslLiteral(scanIdentity(eq.prim), eq.out.dtype);
      const first = t === 'f32' && eq.prim === 'cumsum' ? w.opaque(identity) : identity;
      w.emit(`var acc: ${t} = ${start === 0 ? first : w.value(eq.out, at(previous))};`);
      const loop = w.scope(() => {
        w.emit(`let pos = ${reverse ? `${u(extent - 1)} - k` : 'k'};`);
        // Each step's float term is opaque to the others (OPAQUE_STEP in writer.ts): a term that
        // is one value along the axis (a constant's) was multiplied by itself in the unrolled
        // loop, and sqrt(a)·sqrt(a) folded to |a| (a cumprod of NaN = sqrt(−∞) gave +∞).
        const v = t === 'f32' ? w.opaqueStep(w.value(x, at('pos')), 'k + 1u') : w.value(x, at('pos'));
        w.emit(`acc = ${renderWgsl(scanCombineExpression(eq.prim, eq.out.dtype), ['acc', v])};`);
        w.store(eq.out, at('pos'), 'acc');
      });
      w.emit(`for (var k = ${u(start)}; k < ${u(start + count)}; k = k + 1u) {\n    ${loop.join('\n    ')}\n  }`);
    });
    return perThreadKernel(w, `fused_${eq.prim}_${sizeOf(shape)}_from${start}`, 'line', lines, body, [index]);
  });
}

/**
 * argmax and argmin: one thread per output walks the axis (its input computed inline), keeping
 * the first extreme (argReplaceCondition; the first NaN ends the walk). Spans as in wgsl/scan.ts.
 */
function lowerArgReduce(ctx: Lowering, index: number): LoweredKernel[] {
  const eq = ctx.plan.program.equations[index]! as Equation<ArgReducePrimitive>;
  const { axis } = eq.params;
  const x = eq.inputs[0]!;
  const extent = x.shape[axis]!;
  const n = sizeOf(eq.out.shape);
  const t = wgslType(x.dtype);
  return axisSpans(extent).map(({ start, count }) => {
    const w = newWriter(ctx);
    const body = w.scope(() => {
      const out = w.decode('i', eq.out.shape);
      const at = (pos: string) => withAxis(out, axis, pos);
      w.emit(`var at = ${start === 0 ? '0u' : `u32(${w.value(eq.out, out)})`};`);
      const first = w.scope(() => w.emit(`best = ${w.value(x, at('at'))};`));
      w.emit(`var best: ${t};\n  {\n    ${first.join('\n    ')}\n  }`);
      const isNaN = t === 'f32' ? 'sc_isnan(best)' : 'false';
      const loop = w.scope(() => {
        const v = w.value(x, at('k'));
        w.emit(`if (${renderWgsl(argReplaceCondition(eq.prim, x.dtype), ['best', v])}) { best = ${v}; at = k; if (${isNaN}) { break; } }`);
      });
      w.emit(`if (!(${isNaN})) {\n    for (var k = ${u(Math.max(start, 1))}; k < ${u(start + count)}; k = k + 1u) {\n      ${loop.join('\n      ')}\n    }\n  }`);
      w.store(eq.out, out, 'i32(at)');
    });
    return perThreadKernel(w, `fused_${eq.prim}_${n}_from${start}`, 'i', n, body, [index]);
  });
}

// ---------------------------------------------------------------------------------------------
// Defined primitives' shaders

/**
 * dst[to.offset + i] = src[from.offset + i] for i < count: moves a value to offset 0 of a buffer
 * of its own, or back. The eager copy template (wgsl/elementwise.ts): its sizes are uniforms, so
 * one pipeline serves every copy of a dtype.
 */
/**
 * Copies `count` elements from `from` to `to`. A program input's offset (`from.input`) is a
 * recorded uniform word, as in every other kernel, so the copy serves every offset.
 */
function copyKernel(from: Location, to: Location, count: number, dtype: DType): LoweredKernel {
  const dense = (offset: number): Layout => ({ shape: [count], strides: [1], offset });
  const source = from.input === undefined ? undefined : { input: from.input, plus: 0 };
  const spec = elementwiseKernel({ op: 'copy', inputs: [{ dtype, layout: dense(from.offset), source }], output: { dtype, layout: dense(to.offset) } });
  return {
    label: spec.label, code: spec.code, workgroupSize: spec.workgroupSize, dispatch: spec.dispatch,
    bindings: [from.slot, to.slot], uniforms: spec.uniforms, inputOffsets: spec.inputOffsets, equations: [],
  };
}

/**
 * A defined primitive's own shader. Its bindings promise dense operands from element 0: an
 * operand stored elsewhere (at an offset in a shared block) is first copied to a scratch buffer,
 * and so is the result when it must land at an offset or in a buffer the shader also reads.
 */
function lowerCustom(ctx: LoweringContext, index: number): LoweredKernel[] {
  const eq = ctx.plan.program.equations[index]! as Equation<'custom'>;
  const def = primitiveDefinition(eq.params.name) as ShaderDefinition;
  const spec = customShaderKernel(def, { inputs: eq.inputs.map((x) => ({ shape: x.shape, dtype: x.dtype })), output: { shape: eq.out.shape, dtype: eq.out.dtype } });
  const kernels: LoweredKernel[] = [];
  const reads: Slot[] = eq.inputs.map((x) => {
    const loc = ctx.locate(x);
    if (!loc) throw new Error(`internal: an operand of ${def.name} is not stored`);
    if (loc.offset === 0) return loc.slot;
    const scratch: Location = { slot: ctx.scratch(Math.max(sizeOf(x.shape), 1)), offset: 0, strides: [] };
    kernels.push(copyKernel(loc, scratch, sizeOf(x.shape), x.dtype));
    return scratch.slot;
  });
  const out = ctx.locate(eq.out)!;
  const aliased = reads.some((s) => slotKey(s) === slotKey(out.slot));
  const direct = out.offset === 0 && !aliased;
  const target: Location = direct ? out : { slot: ctx.scratch(Math.max(sizeOf(eq.out.shape), 1)), offset: 0, strides: [] };
  kernels.push({ label: spec.label, code: spec.code, workgroupSize: spec.workgroupSize, dispatch: spec.dispatch, bindings: [...reads, target.slot], uniforms: null, equations: [index] });
  if (!direct) kernels.push(copyKernel(target, out, sizeOf(eq.out.shape), eq.out.dtype));
  return kernels;
}

/**
 * Every kernel of a plan, in launch order, each labelled uniquely in the program (kernelNamer: a
 * later kernel of an earlier one's label, such as a second product of the same sizes, is numbered).
 */
export function lowerPlan(context: LoweringContext): LoweredKernel[] {
  const ctx: Lowering = {
    ...context,
    writer: { definitions: context.plan.definitions, locate: (v) => context.locate(v), equationIndex: KernelWriter.equationIndex(context.plan.program) },
  };
  const out: LoweredKernel[] = [];
  for (const kernel of ctx.plan.kernels) {
    switch (kernel.kind) {
      case 'elementwise':
        out.push(...lowerElementwiseWithinLimits(ctx, kernel.segments));
        break;
      case 'reduce':
        out.push(...lowerReduction(ctx, reductionOf(ctx, kernel)));
        break;
      case 'dot':
        out.push(...lowerDot(ctx, kernel));
        break;
      case 'matmul':
        out.push(...lowerMatmul(ctx, kernel));
        break;
      case 'random':
        out.push(lowerRandom(ctx, kernel.equation));
        break;
      case 'scatterAdd':
        out.push(...lowerScatterAdd(ctx, kernel.equation));
        break;
      case 'scan':
        out.push(...lowerScan(ctx, kernel.equation));
        break;
      case 'argReduce':
        out.push(...lowerArgReduce(ctx, kernel.equation));
        break;
      case 'custom':
        out.push(...lowerCustom(ctx, kernel.equation));
        break;
    }
  }
  for (const k of out) {
    if (k.bindings.length > ctx.maxStorageBuffers) {
      throw new Error(`webgpu jit: kernel ${k.label} binds ${k.bindings.length} buffers, more than the ${ctx.maxStorageBuffers} this device allows`);
    }
    if (uniformBytes(k) > ctx.maxUniformBytes) {
      throw new Error(`webgpu jit: kernel ${k.label} needs a ${uniformBytes(k)}-byte uniform block, more than this device's maxUniformBufferBindingSize (${ctx.maxUniformBytes})`);
    }
  }
  const name = kernelNamer();
  return out.map((k) => ({ ...k, label: name(k.label) }));
}

export { UniformBlock };
