// A program compiled for WebGPU: its fusion plan, lowered to WGSL once per layout of its inputs
// (which inputs share a buffer, at which offsets), with a static buffer plan, and run as one
// command buffer per call.
//
// Buffers of a call:
// - inputs: the argument and captured tensors' own buffers (made contiguous first if a view is
//   strided), bound once per buffer however many inputs live in it;
// - temps: intermediates, owned by the compiled program and reused by every call; values whose
//   lifetimes do not overlap share one;
// - one block per element type for the results a call returns, and one for the updates (values
//   assigned to inputs): fresh buffers each call, handed out as views. Parameters updated by a
//   training step therefore all live in one buffer after the first step, which later steps bind
//   once.

/// <reference types="@webgpu/types" />

import {
  type CompiledProgram, type Equation, type FusionPlan, type KernelInfo, Program, type ProgramVar, type RandomKey,
  fmtShape, kernelCost, lastReaders, objectId, planFusion, profilerSession, sizeOf, slotReuser,
} from '@scorch/tensor';
import type { GpuHandle, WebGPUBackend } from '../backend.js';
import { isContiguous, rowMajorStrides } from '../layout.js';
import { type CachedPipeline, type CompiledLaunch, type GpuRuntime, type GpuStorage, sizeClass } from '../runtime.js';
import { type InputOffsetWord, wgslType } from '../wgsl/common.js';
import { type LoweredKernel, lowerPlan } from './lower.js';
import { type Location, type Slot, slotKey } from './writer.js';

const BYTES = 4;
/** Results in a block start at multiples of 4 elements (16 bytes), as vec4 access wants. */
const BLOCK_ALIGN = 4;
const UNIFORM_USAGE = 0x40 | 0x8; // UNIFORM | COPY_DST

/**
 * The code and buffer plan of a program for one layout of its inputs. It depends only on the
 * program's structure and the layout, so it is cached per device under a key made of both
 * before any WGSL is generated: a function traced again (every sampler run traces its step)
 * reuses the kernels, pipelines and plans made the first time.
 */
interface Lowering {
  readonly kernels: readonly LoweredKernel[];
  readonly pipelines: readonly CachedPipeline[];
  /** Element counts of the temps it uses. */
  readonly tempSizes: readonly number[];
  /** Elements of each block of results and of updates, by slotKey. */
  readonly outputBlocks: ReadonlyMap<string, number>;
  readonly updateBlocks: ReadonlyMap<string, number>;
  /** Where each program output and each update value is written, by index. */
  readonly outputLocations: readonly Location[];
  readonly updateLocations: readonly Location[];
  /** Byte offset of each kernel's uniform block in the uniform buffer (null: none), and its size. */
  readonly uniformOffsets: readonly (number | null)[];
  readonly uniformBytes: number;
  readonly reportsBadIndices: boolean;
  /** Per kernel, for the profiler: bytes of stored values it reads and writes, and its product flops. */
  readonly costs: readonly { bytes: number; flops?: number }[];
}

/**
 * A program's own state for one lowering: its uniform buffer and cached bind groups. A lowering
 * serves every layout of the same buffers whose offsets have the same residues mod 4 (layoutKey),
 * so a variant also keeps the offsets its uniform words were last written for.
 */
interface Variant {
  readonly lowering: Lowering;
  readonly uniformBuffer: GPUBuffer | null;
  /**
   * Per kernel, its uniform words as last written to the buffer, for a kernel with words that hold
   * input offsets (LoweredKernel.inputOffsets; null: none, its words never change).
   */
  readonly uniformWords: readonly (Uint32Array<ArrayBuffer> | null)[];
  /** The input offsets those words were last written for. */
  readonly offsets: number[];
  readonly bindGroups: Map<string, GPUBindGroup>[];
  /**
   * Per kernel, a random draw's uniform words [k0, k1, 0, 0] (null: not a draw): a constant key's
   * written once with the static uniforms, a program key's refilled and written every call.
   */
  readonly keyWords: readonly (Uint32Array<ArrayBuffer> | null)[];
}

/**
 * Lowerings per device, by structural key, the backend settings the code depends on and the input
 * layout; past the limit the least recently used is dropped. Map order is use order: a hit moves
 * its entry to the end. It is looked up only when a program meets a new input layout (not per
 * call), so a hit's delete+set (microseconds with long structural keys) is paid once per variant.
 */
const loweringCaches = new WeakMap<GpuRuntime, Map<string, Lowering>>();
const LOWERING_CACHE_LIMIT = 256;
/**
 * Most transcendental operations one fused kernel computes inline on a software adapter
 * (planFusion's inlineTranscendentalsMax). llvmpipe, cold (no shader cache), compiled a kernel
 * with 10, 20, 30 and 40 tanh (a chain of mul, add, tanh) in 0.5, 1.5, 2.6 and 7.6 s; 16 keeps a
 * kernel near a second (benchmarks/NOTES.md, "Time to first step").
 */
export const SOFTWARE_TRANSCENDENTALS_MAX = 16;
/**
 * Most equations one fused elementwise kernel computes on a software adapter, its roots' inline
 * equations summed (planFusion's kernelEquationsMax): as many as one value may compute inline
 * (INLINE_OPS_MAX). Roots of one shape joined one kernel without a bound: the gradient of a
 * 400-piece concat of slices made a kernel of 1,999 equations (423,000 characters of WGSL), and
 * its first call took ~108 s on llvmpipe, cold; with 512, 19 s; with 256, 9.7 s
 * (benchmarks/NOTES.md, "Kernels of thousands of equations"). The training steps' kernels are
 * far below it (35 at most).
 */
export const SOFTWARE_KERNEL_EQUATIONS_MAX = 256;
/**
 * Variants (input layouts) one compiled program keeps; past it the least recently used is dropped
 * with its uniform buffer and bind groups. A layout is which buffer each input is in and each
 * input's offset there reduced to what the code depends on (layoutKey: its residue mod 4): the
 * offsets themselves are uniform words of the kernels (KernelWriter.inputOffset, the matmul
 * templates' operand offsets), rewritten in place when a call's offsets differ from the last
 * call's. A program fed minibatch slices of one tensor at hundreds of offsets keeps one variant.
 */
export const VARIANT_LIMIT = 32;

/** The backend settings that change a lowering's code (the fusion plan's and the kernels'). */
interface CodeSettings {
  /** A software adapter keeps matmuls free of epilogues (planFusion's matmulEpilogues). */
  readonly softwareAdapter: boolean;
  /** Workgroups a register-blocked matmul keeps at least (chooseVec4Blocking). */
  readonly vec4MinWorkgroups: number;
}

/** Buffers a kernel may read: one binding each, beside its output and the index-error record. */
function maxReadsPerKernel(runtime: GpuRuntime): number {
  return runtime.device.limits.maxStorageBuffersPerShaderStage - 2;
}

/**
 * The program with every concat of more than `maxPieces` pieces rewritten as a tree of concats of
 * at most `maxPieces` each. A kernel binds one buffer per piece it reads (plus its output and the
 * index-error record), so one concat of 16 separately computed values or more could not be a
 * kernel at all; as a tree, the fusion plan stores inner concats as it needs (maxReadsPerValue).
 * The values and their order are the same: a concat of concats along one axis is the concat.
 */
export function splitWideConcats(program: Program, maxPieces: number): Program {
  if (!program.equations.some((eq) => eq.prim === 'concat' && eq.inputs.length > maxPieces)) return program;
  let nextId = Math.max(...program.inputs.map((v) => v.id), ...program.equations.map((eq) => eq.out.id)) + 1;
  const equations: Equation[] = [];
  for (const eq of program.equations) {
    if (eq.prim !== 'concat' || eq.inputs.length <= maxPieces) {
      equations.push(eq);
      continue;
    }
    const { axis } = eq.params as { axis: number };
    let pieces: readonly ProgramVar[] = eq.inputs;
    while (pieces.length > maxPieces) {
      const next: ProgramVar[] = [];
      for (let i = 0; i < pieces.length; i += maxPieces) {
        const group = pieces.slice(i, i + maxPieces);
        if (group.length === 1) {
          next.push(group[0]!);
          continue;
        }
        const shape = [...group[0]!.shape];
        shape[axis] = group.reduce((n, v) => n + v.shape[axis]!, 0);
        const out: ProgramVar = { id: nextId++, shape: Object.freeze(shape), dtype: eq.out.dtype };
        equations.push({ prim: 'concat', inputs: group, params: { axis }, out });
        next.push(out);
      }
      pieces = next;
    }
    equations.push({ ...eq, inputs: pieces });
  }
  return new Program(program.device, program.inputs, program.inputSources, program.keyInputs, program.keyDerivations, equations, program.outputs, program.updates);
}

/** A jit program compiled for WebGPU: its fused kernels, temps and bind groups, replayed as one command buffer per call. */
export class WebGPUCompiledProgram implements CompiledProgram<GpuHandle> {
  private planned: FusionPlan | null = null;
  private readonly structure: string;
  private readonly variants = new Map<string, Variant>();
  private lastVariant: Variant | null = null;
  /**
   * Temps, shared by every variant: the temp plan depends on the fusion plan only, so a variant
   * for a new input layout (parameters that moved into one buffer after the first step) reuses
   * the first variant's buffers instead of holding a second set.
   */
  private temps: GpuStorage[] = [];
  /** The launches of the last call (for timing kernels one by one). */
  lastLaunches: readonly CompiledLaunch[] = [];
  private disposed = false;
  /**
   * The backend's settings as this program was compiled: its plan and every lowering use these,
   * and they are part of the lowering cache's key, so a program compiled after a setting changes
   * gets code for the new setting rather than another program's cached code for the old one.
   */
  private readonly settings: CodeSettings;

  /** The program as compiled: the traced one, with concats of too many pieces split (splitWideConcats). */
  readonly program: Program;

  constructor(private readonly backend: WebGPUBackend, program: Program) {
    this.settings = { softwareAdapter: backend.softwareAdapter, vec4MinWorkgroups: backend.vec4MinWorkgroups };
    this.structure = `${program.structuralKey()}#software=${this.settings.softwareAdapter},vec4MinWorkgroups=${this.settings.vec4MinWorkgroups}`;
    this.program = splitWideConcats(program, maxReadsPerKernel(backend.runtime));
  }

  /** The fusion plan (made when a lowering is first needed). */
  get plan(): FusionPlan {
    if (!this.planned) {
      // On a software adapter a register-blocked matmul takes over a second to compile (llvmpipe,
      // cold: 1.2–1.7 s for the 32×16 blocks, measured; 4–13 s before their stores were a loop):
      // epilogues would make its code differ per program, so there the matmul stays the one
      // shared kernel and its epilogue an elementwise pass. Measured with epilogues allowed there
      // (benchmarks/NOTES.md): the cold first DSM and SSM-VR steps slower, the warm ones no faster.
      // And there a kernel computes at most SOFTWARE_TRANSCENDENTALS_MAX transcendentals inline,
      // and at most SOFTWARE_KERNEL_EQUATIONS_MAX equations: LLVM's time on one kernel grows
      // faster than linearly in them.
      const software = this.settings.softwareAdapter;
      this.planned = planFusion(this.program, {
        maxReadsPerValue: maxReadsPerKernel(this.runtime), matmulEpilogues: !software, splitRowEpilogues: true,
        inlineTranscendentalsMax: software ? SOFTWARE_TRANSCENDENTALS_MAX : Infinity,
        kernelEquationsMax: software ? SOFTWARE_KERNEL_EQUATIONS_MAX : Infinity,
      });
    }
    return this.planned;
  }

  private get runtime(): GpuRuntime {
    return this.backend.runtime;
  }

  // ------------------------------------------------------------------------------------------
  // Building a variant

  /** Layouts this program holds a variant for (a uniform buffer and bind groups each), at most VARIANT_LIMIT. */
  get variantCount(): number {
    return this.variants.size;
  }

  /**
   * What this program has made so far: lowerings (code generated for a layout no cache held) and
   * variants (a uniform buffer and bind groups each), and how many calls rewrote input-offset
   * words (a layout met again at other offsets). A loop over minibatch slices makes one of each.
   */
  get stats(): { lowerings: number; variants: number; offsetRewrites: number } {
    return { lowerings: this.lowerings, variants: this.variantsMade, offsetRewrites: this.offsetRewrites };
  }

  private lowerings = 0;
  private variantsMade = 0;
  private offsetRewrites = 0;
  private zeroOffsets: ReadonlySet<number> | null = null;

  /**
   * Inputs whose code depends on whether their offset is 0: those a defined primitive's shader
   * reads (lowerCustom binds one at offset 0 as it is, and copies one at any other offset to a
   * scratch buffer first, the copy's offset a recorded word). Every input's offset is otherwise a
   * recorded uniform word.
   */
  private get zeroOffsetInputs(): ReadonlySet<number> {
    if (!this.zeroOffsets) {
      const index = new Map(this.program.inputs.map((v, i) => [v.id, i]));
      const zero = new Set<number>();
      for (const k of this.plan.kernels) {
        if (k.kind !== 'custom') continue;
        for (const x of this.program.equations[k.equation]!.inputs) if (index.has(x.id)) zero.add(index.get(x.id)!);
      }
      this.zeroOffsets = zero;
    }
    return this.zeroOffsets;
  }

  /**
   * A variant's key: which buffer each input is in and what of its offset the code depends on
   * (its residue mod 4; and whether it is 0, for an input a defined primitive's shader reads).
   */
  private layoutKey(groups: readonly number[], offsets: readonly number[]): string {
    const zero = this.zeroOffsetInputs;
    return `${groups.join(',')}|${offsets.map((o, i) => `${zero.has(i) && o === 0 ? 'z' : 'r'}${o % 4}`).join(',')}`;
  }

  /** The lowering for a layout: from the device's cache (refreshing its entry), or made and cached. */
  private lowering(groups: readonly number[], offsets: readonly number[], layout: string): Lowering {
    let cache = loweringCaches.get(this.runtime);
    if (!cache) loweringCaches.set(this.runtime, (cache = new Map()));
    const key = `${this.structure}#${layout}`;
    let lowering = cache.get(key);
    if (lowering) {
      cache.delete(key);
    } else {
      lowering = this.lower(groups, offsets);
      this.lowerings++;
      if (cache.size >= LOWERING_CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    }
    cache.set(key, lowering);
    return lowering;
  }

  private variant(groups: readonly number[], offsets: readonly number[]): Variant {
    const layout = this.layoutKey(groups, offsets);
    let variant = this.variants.get(layout);
    if (variant) {
      // Most recently used last, as the lowering cache.
      if (variant !== this.lastVariant) {
        this.variants.delete(layout);
        this.variants.set(layout, variant);
      }
      if (offsets.some((o, i) => o !== variant!.offsets[i])) this.writeOffsets(variant, offsets);
      return variant;
    }
    const lowering = this.lowering(groups, offsets, layout);
    if (this.variants.size >= VARIANT_LIMIT) {
      // The least recently used; every call submits its work before returning, so its uniform
      // buffer is no longer waited on by an open batch and may be destroyed.
      const [oldLayout, old] = this.variants.entries().next().value!;
      this.variants.delete(oldLayout);
      old.uniformBuffer?.destroy();
      for (const groups of old.bindGroups) groups.clear();
    }
    let uniformBuffer: GPUBuffer | null = null;
    // The lowering's words are for the offsets it was made at; this variant's are patched to its own.
    const uniformWords = lowering.kernels.map((k) => (k.uniforms && k.inputOffsets?.length ? patchOffsets(k.uniforms.slice(), k.inputOffsets, offsets) : null));
    if (lowering.uniformBytes > 0) {
      uniformBuffer = this.runtime.device.createBuffer({ label: 'scorch compiled uniforms', size: lowering.uniformBytes, usage: UNIFORM_USAGE });
      lowering.kernels.forEach((k, i) => {
        const words = uniformWords[i] ?? k.uniforms;
        if (words) this.runtime.device.queue.writeBuffer(uniformBuffer!, lowering.uniformOffsets[i]!, words.buffer, words.byteOffset, words.byteLength);
      });
    }
    const keyWords = lowering.kernels.map((k, i) => {
      if (k.key === undefined) return null;
      const words = new Uint32Array(4);
      if (typeof k.key !== 'number') {
        words[0] = k.key[0] >>> 0;
        words[1] = k.key[1] >>> 0;
        this.runtime.device.queue.writeBuffer(uniformBuffer!, lowering.uniformOffsets[i]!, words);
      }
      return words;
    });
    variant = { lowering, uniformBuffer, uniformWords, offsets: [...offsets], bindGroups: lowering.kernels.map(() => new Map()), keyWords };
    this.variants.set(layout, variant);
    this.variantsMade++;
    return variant;
  }

  /**
   * Rewrites the words of `variant`'s kernels that hold input offsets for this call's `offsets`.
   * queue.writeBuffer takes effect before the commands of the batch still open, and every call
   * of a compiled program submits its own command buffer before returning (runtime.runCompiled):
   * the dispatches of earlier calls, which read the old words, are all submitted by now, and no
   * command in the open batch reads this program's uniform buffer. So each call's dispatches see
   * its own offsets, as a random draw's per-call key words do.
   */
  private writeOffsets(variant: Variant, offsets: readonly number[]): void {
    const lowering = variant.lowering;
    lowering.kernels.forEach((k, i) => {
      const words = variant.uniformWords[i];
      if (!words) return;
      const changed = k.inputOffsets!.some((w) => variant.offsets[w.input] !== offsets[w.input]);
      if (!changed) return;
      patchOffsets(words, k.inputOffsets!, offsets);
      this.runtime.device.queue.writeBuffer(variant.uniformBuffer!, lowering.uniformOffsets[i]!, words.buffer, words.byteOffset, words.byteLength);
    });
    for (let i = 0; i < offsets.length; i++) variant.offsets[i] = offsets[i]!;
    this.offsetRewrites++;
  }

  private lower(groups: readonly number[], offsets: readonly number[]): Lowering {
    const program = this.program;
    const plan = this.plan;
    const locations = new Map<number, Location>();
    // An input's offset is a uniform word of the kernels that read it (KernelWriter.inputOffset):
    // the lowerings of layouts that differ only in offsets share their code and pipelines.
    program.inputs.forEach((v, i) => locations.set(v.id, { slot: { kind: 'input', group: groups[i]! }, offset: offsets[i]!, strides: rowMajorStrides(v.shape), input: i }));
    // Results and updates: blocks by element type.
    const outputBlocks = new Map<string, number>();
    const updateBlocks = new Map<string, number>();
    // A block is one buffer, bound whole: results that would take it past the device's binding
    // size start another (each result alone is within it, as an eager tensor must be).
    const maxBlockBytes = this.runtime.device.limits.maxStorageBufferBindingSize;
    const openBlock = new Map<string, number>();
    const place = (v: ProgramVar, kind: 'outputs' | 'updates') => {
      if (locations.has(v.id)) return;
      const type = wgslType(v.dtype);
      const blocks = kind === 'outputs' ? outputBlocks : updateBlocks;
      const size = Math.ceil(Math.max(sizeOf(v.shape), 1) / BLOCK_ALIGN) * BLOCK_ALIGN;
      let block = openBlock.get(`${kind}_${type}`) ?? 0;
      let at = blocks.get(slotKey({ kind, type, block })) ?? 0;
      if (at > 0 && sizeClass((at + size) * BYTES) > maxBlockBytes) {
        block++;
        at = 0;
      }
      openBlock.set(`${kind}_${type}`, block);
      const slot: Slot = { kind, type, block };
      locations.set(v.id, { slot, offset: at, strides: rowMajorStrides(v.shape) });
      blocks.set(slotKey(slot), at + size);
    };
    for (const u of program.updates) place(u.value, 'updates');
    for (const v of program.outputs) place(v, 'outputs');
    // Temps: other stored values, sharing a buffer when lifetimes (in kernels) do not overlap.
    const lastRead = lastReaders(plan);
    const tempSizes: number[] = [];
    const reuse = slotReuser();
    const order = [...plan.materialized].filter((id) => !locations.has(id)).sort((a, b) => plan.producer.get(a)! - plan.producer.get(b)!);
    for (const id of order) {
      const v = plan.definitions.get(id)!.out;
      const born = plan.producer.get(id)!;
      const type = wgslType(v.dtype);
      const size = Math.max(sizeOf(v.shape), 1);
      let slot = reuse.take(type, born);
      if (slot < 0) {
        slot = tempSizes.length;
        tempSizes.push(0);
      }
      tempSizes[slot] = Math.max(tempSizes[slot]!, size);
      reuse.hold(type, slot, Math.max(lastRead.get(id) ?? born, born));
      locations.set(id, { slot: { kind: 'temp', index: slot }, offset: 0, strides: rowMajorStrides(v.shape) });
    }
    const kernels = lowerPlan({
      plan,
      locate: (v) => locations.get(v.id) ?? null,
      scratch: (elements) => {
        tempSizes.push(elements);
        return { kind: 'temp', index: tempSizes.length - 1 };
      },
      maxStorageBuffers: this.runtime.device.limits.maxStorageBuffersPerShaderStage,
      maxUniformBytes: this.runtime.device.limits.maxUniformBufferBindingSize,
      maxInvocations: this.runtime.device.limits.maxComputeInvocationsPerWorkgroup,
      vec4MinWorkgroups: this.settings.vec4MinWorkgroups,
    });
    const pipelines = kernels.map((k) => this.runtime.pipeline(k.code, k.label));
    // Uniforms: static ones, and a random kernel's key (written every call).
    const align = Math.max(16, this.runtime.device.limits.minUniformBufferOffsetAlignment);
    let uniformBytes = 0;
    const uniformOffsets = kernels.map((k) => {
      if (!k.uniforms && k.key === undefined) return null;
      const at = uniformBytes;
      uniformBytes += Math.ceil(Math.max(k.uniforms?.byteLength ?? 16, 16) / align) * align;
      return at;
    });
    return {
      kernels, pipelines, tempSizes, outputBlocks, updateBlocks,
      outputLocations: program.outputs.map((v) => locations.get(v.id)!),
      updateLocations: program.updates.map((u) => locations.get(u.value.id)!),
      uniformOffsets, uniformBytes, reportsBadIndices: kernels.some((k) => k.bindings.some((b) => b.kind === 'indexErrors')),
      costs: kernels.map((k) => kernelCost(plan, k.equations, () => BYTES)),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Running

  run(inputs: readonly GpuHandle[], keyValues: readonly RandomKey[]): GpuHandle[] {
    if (this.disposed) throw new Error('jit: this compiled program was disposed');
    // Before anything is queued: a lost device's buffer bound here failed the whole batch, and
    // with it unrelated work queued beside it, with Dawn's message instead of eager mode's.
    for (const h of inputs) this.backend.checkUsable('jit', h);
    const runtime = this.runtime;
    runtime.checkHealthy();
    if (runtime.anyBatchFailed) runtime.checkInputsHaveValues(inputs.map((h) => h.storage.buffer), 'a compiled program');
    // Inputs must be row-major; a strided view is copied (one elementwise launch, queued first),
    // profiled as dense_input<i> with the distinct elements it reads and the elements it writes.
    const copies: GpuHandle[] = [];
    const blocks = new Map<string, GpuStorage>();
    // Until the call is queued, a throw (an allocation over the device's limit, a refused input)
    // gives back the copies and result blocks made so far: each failed call leaked them before.
    let queued = false;
    try {
      const session = profilerSession();
      const handles = inputs.map((h, i) => {
        if (isContiguous(h)) return h;
        const elements = sizeOf(h.shape);
        const read = h.shape.reduce((n, d, k) => (h.strides[k] === 0 ? n : n * d), 1);
        // Eager kernels read such a view through its strides; the program needs the copy, which a
        // broadcast of a few stored elements can make too large for one buffer: said so here,
        // with the cure (the allocation's own error named neither jit nor the argument).
        const limit = runtime.device.limits.maxStorageBufferBindingSize;
        if (elements * BYTES > limit) {
          throw new Error(
            `jit: input ${i} is a strided view ${fmtShape(h.shape)} of ${read} stored element${read === 1 ? '' : 's'}; a compiled program copies such a view densely ` +
              `(${elements * BYTES} bytes, over this device's maxStorageBufferBindingSize of ${limit}); pass the tensor before its expand or transpose and apply that inside the function`,
          );
        }
        const outer = session?.operation ?? null;
        if (session) session.operation = { name: `dense_input${i}`, bytes: (read + elements) * BYTES };
        try {
          // A reshape of a strided view is a contiguous copy.
          const dense = this.backend.execute('reshape', [h], { shape: h.shape }, { shape: [...h.shape], dtype: h.dtype });
          copies.push(dense);
          return dense;
        } finally {
          if (session) session.operation = outer;
        }
      });
      const storages: GpuStorage[] = [];
      const groups = handles.map((h) => {
        let g = storages.indexOf(h.storage);
        if (g < 0) g = storages.push(h.storage) - 1;
        return g;
      });
      const offsets = handles.map((h) => h.offset);
      const variant = this.variant(groups, offsets);
      const lowering = variant.lowering;
      this.lastVariant = variant;
      lowering.tempSizes.forEach((n, i) => {
        const have = this.temps[i];
        if (have && have.bytes >= n * BYTES) return;
        if (have) runtime.release(have);
        this.temps[i] = runtime.allocate(n * BYTES, 'block of a compiled program\'s intermediate values');
      });
      const temps = this.temps;
      // Every intermediate block is written before it is read in each call.
      for (const t of temps) if (t) runtime.discardContents(t);
      for (const [key, n] of [...lowering.outputBlocks, ...lowering.updateBlocks]) blocks.set(key, runtime.allocate(n * BYTES, 'block of a compiled program\'s results'));
      if (runtime.poison) for (const b of blocks.values()) runtime.poisonFill(b);
      const resolve = (slot: Slot): GPUBuffer => {
        switch (slot.kind) {
          case 'input':
            return storages[slot.group]!.buffer;
          case 'temp':
            return temps[slot.index]!.buffer;
          case 'indexErrors':
            return runtime.indexErrors;
          default:
            return blocks.get(slotKey(slot))!.buffer;
        }
      };
      // Program keys: this call's values written into their kernels' uniforms (queued before this
      // call's commands; writeBuffer copies the words, so each kernel's array is reused).
      if (lowering.kernels.some((k) => typeof k.key === 'number')) {
        const keys = this.program.resolveKeys(keyValues);
        const canonical = this.program.canonicalKeys();
        lowering.kernels.forEach((k, i) => {
          if (typeof k.key !== 'number') return;
          const value = keys.get(canonical[k.key]!)!;
          const words = variant.keyWords[i]!;
          words[0] = value[0] >>> 0;
          words[1] = value[1] >>> 0;
          runtime.device.queue.writeBuffer(variant.uniformBuffer!, lowering.uniformOffsets[i]!, words);
        });
      }
      const launches: CompiledLaunch[] = lowering.kernels.map((k, i) => {
        const buffers = k.bindings.map(resolve);
        const cacheKey = buffers.map(objectId).join(',');
        let bindGroup = variant.bindGroups[i]!.get(cacheKey);
        if (!bindGroup) {
          const entries: GPUBindGroupEntry[] = buffers.map((buffer, b) => ({ binding: b, resource: { buffer } }));
          if (lowering.uniformOffsets[i] !== null) {
            entries.push({ binding: buffers.length, resource: { buffer: variant.uniformBuffer!, offset: lowering.uniformOffsets[i]!, size: Math.max(k.uniforms?.byteLength ?? 16, 16) } });
          }
          bindGroup = runtime.device.createBindGroup({ layout: lowering.pipelines[i]!.layout, entries, label: k.label });
          // Pool buffers come back under new identities rarely; a small cache keeps the common ones.
          if (variant.bindGroups[i]!.size > 16) variant.bindGroups[i]!.clear();
          variant.bindGroups[i]!.set(cacheKey, bindGroup);
        }
        const uniforms = variant.keyWords[i] ?? variant.uniformWords[i] ?? k.uniforms;
        return { label: k.label, pipeline: lowering.pipelines[i]!, bindGroup, dispatch: k.dispatch, buffers, uniforms, ...lowering.costs[i]! };
      });
      runtime.runCompiled(launches, lowering.reportsBadIndices);
      queued = true;
      this.lastLaunches = launches;
      for (const c of copies) this.backend.dispose(c);
      // Results and updates are views of their blocks; each block is freed with its last view.
      const view = (v: ProgramVar, loc: Location): GpuHandle => {
        const storage = blocks.get(slotKey(loc.slot))!;
        storage.refs++;
        return { storage, shape: [...v.shape], strides: rowMajorStrides(v.shape), offset: loc.offset, dtype: v.dtype, disposed: false };
      };
      const result = [
        ...this.program.outputs.map((v, i) => view(v, lowering.outputLocations[i]!)),
        ...this.program.updates.map((u, i) => view(u.value, lowering.updateLocations[i]!)),
      ];
      for (const b of blocks.values()) runtime.release(b);
      return result;
    } catch (e) {
      if (!queued) {
        for (const c of copies) this.backend.dispose(c);
        for (const b of blocks.values()) runtime.release(b);
      }
      throw e;
    }
  }

  kernels(): readonly KernelInfo[] {
    // Not run yet: describe the layout of separate, contiguous inputs. Describing needs only the
    // lowering, so no variant (uniform buffer) is made: a program disposed under a LoweredProgram
    // (its jitted function's cache cleared) can still be described without holding a buffer.
    let lowering = this.lastVariant?.lowering;
    if (!lowering) {
      const groups = this.program.inputs.map((_, i) => i);
      const offsets = this.program.inputs.map(() => 0);
      lowering = this.lowering(groups, offsets, this.layoutKey(groups, offsets));
    }
    return lowering.kernels.map((k) => ({ name: k.label, equations: k.equations, source: k.code }));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variants.values()) v.uniformBuffer?.destroy();
    for (const t of this.temps) this.runtime.release(t);
    this.temps = [];
    this.variants.clear();
    this.lastVariant = null;
  }
}

/**
 * `words` with each input-offset word set to its input's offset in `offsets` plus its constant.
 * An offset of 2^32 or more is refused, as UniformBlock.u32 refuses it when lowering.
 */
function patchOffsets(words: Uint32Array<ArrayBuffer>, inputOffsets: readonly InputOffsetWord[], offsets: readonly number[]): Uint32Array<ArrayBuffer> {
  for (const w of inputOffsets) {
    const value = offsets[w.input]! + w.plus;
    if (value > 0xffffffff) throw new Error(`webgpu jit: input ${w.input} is read at element offset ${value} of its buffer; a kernel's offsets are u32 uniforms, so they must be below 2^32`);
    words[w.word] = value;
  }
  return words;
}
