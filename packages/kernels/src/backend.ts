// The WebGPU implementation of @scorch/tensor's Backend: maps each primitive to a view (no
// work) or to a kernel template, and manages the handles tensors hold. A handle is a strided
// view {storage, shape, strides, offset} over a reference-counted pooled buffer; storages are
// written once, by the kernel (or upload) that created them, and never modified after, which is
// what makes sharing them between views safe.

/// <reference types="@webgpu/types" />

import type {
  Backend, BackendMemory, CompiledProgram, Program, DType, OutputInfo, Primitive, PrimitiveParams, Shape, TypedArray,
} from '@scorch/tensor';
import { hardwareThreads, indexOutOfRange, isArgReduce, isBinary, isCompare, isReduce, isScan, isUnary, primitiveDefinition, reshapedStrides, shapesEqual } from '@scorch/tensor';
import { WebGPUCompiledProgram } from './compiler/executable.js';
import type { AdapterSummary } from './device.js';
import { type Layout, isContiguous, rowMajorStrides, sizeOfShape } from './layout.js';
import type { GpuRuntime, GpuStorage } from './runtime.js';
import { type KernelSpec, MAX_WORKGROUPS_PER_DIM } from './wgsl/common.js';
import { customShaderKernel } from './wgsl/custom.js';
import { type ElementwiseOp, elementwiseKernel, fillKernel } from './wgsl/elementwise.js';
import {
  MIN_WORKGROUPS, SMALL_TILING, chooseTiling, chooseVec4Blocking, matmulKSpans, matmulKernel, softwareAdapterMinWorkgroups, vec4Layout, vec4MatmulKernel,
} from './wgsl/matmul.js';
import { gatherKernel, padKernel, scatterAddBucketKernel, scatterAddBuckets, scatterAddKernel, scatterAddSpans } from './wgsl/movement.js';
import { argReduceKernel, axisSpans, scanKernel } from './wgsl/scan.js';
import { randomKernel } from './wgsl/random.js';
import { reduceKernel, reductionPlan } from './wgsl/reduce.js';

/** A WebGPU tensor's storage: a strided view of a pooled buffer. */
export interface GpuHandle extends Layout {
  readonly storage: GpuStorage;
  readonly dtype: DType;
  disposed: boolean;
}

/** Every stored element is 32 bits (bool as a u32 0/1). */
const BYTES_PER_ELEMENT = 4;
/** Largest int32 upload whose host copy is kept for range-checking indices without a read. */
const HOST_INDEX_COPY_LIMIT = 1 << 16;

function describe(h: Layout & { dtype: DType }): string {
  return `${h.dtype} [${h.shape.join(',')}]`;
}

/** The WebGPU backend (float32, int32, bool): every primitive as a WGSL kernel on one `GpuRuntime`. `initWebGPU` makes and registers it. */
export class WebGPUBackend implements Backend<GpuHandle> {
  readonly name: string;
  readonly dtypes: readonly DType[] = ['float32', 'int32', 'bool'];
  readonly runtime: GpuRuntime;
  readonly info: AdapterSummary;
  /** Use only the tiled (strided, any alignment) matmul kernel: for tests of that path. */
  forceTiledMatmul = false;
  /**
   * True on a CPU-based adapter (Mesa llvmpipe, SwiftShader, lavapipe, WARP), where shader
   * compiles are slow and compiled programs share kernels rather than fuse more.
   */
  readonly softwareAdapter: boolean;
  /** Workgroups a register-blocked matmul keeps at least before its blocks shrink (chooseVec4Blocking). */
  readonly vec4MinWorkgroups: number;
  /** Kernels are timed on the device and reported by the runtime (see profiling.ts). */
  readonly reportsKernels = true;

  constructor(name: string, runtime: GpuRuntime, info: AdapterSummary) {
    this.name = name;
    this.runtime = runtime;
    runtime.deviceName = name;
    this.info = info;
    this.softwareAdapter = /llvmpipe|swiftshader|lavapipe|warp|software/i.test(`${info.device} ${info.description} ${info.vendor} ${info.architecture}`);
    // A software adapter runs workgroups on the CPU's cores (llvmpipe: one thread per core).
    this.vec4MinWorkgroups = this.softwareAdapter ? softwareAdapterMinWorkgroups(hardwareThreads()) : MIN_WORKGROUPS;
  }

  // ------------------------------------------------------------------------------------------
  // Handles

  private newHandle(shape: Shape, dtype: DType): GpuHandle {
    const storage = this.runtime.allocate(sizeOfShape(shape) * BYTES_PER_ELEMENT);
    return { storage, shape: [...shape], strides: rowMajorStrides(shape), offset: 0, dtype, disposed: false };
  }

  /** A fresh output handle, poisoned with NaN bits when the runtime asks for it. */
  private output(shape: Shape, dtype: DType): GpuHandle {
    const h = this.newHandle(shape, dtype);
    if (this.runtime.poison) {
      this.runtime.poisonFill(h.storage);
    }
    return h;
  }

  private view(of: GpuHandle, shape: Shape, strides: readonly number[], offset: number): GpuHandle {
    of.storage.refs++;
    return { storage: of.storage, shape: [...shape], strides: [...strides], offset, dtype: of.dtype, disposed: false };
  }

  private run(spec: KernelSpec, buffers: readonly GpuHandle[]): void {
    this.runtime.dispatch(spec, buffers.map((h) => h.storage.buffer));
  }

  /** `run` for gather and scatterAdd, whose kernels report indices the host could not check. */
  private runReportingBadIndices(spec: KernelSpec, buffers: readonly GpuHandle[]): void {
    this.runtime.dispatchReportingBadIndices(spec, buffers.map((h) => h.storage.buffer));
  }

  /** A contiguous handle with the same values (the handle itself, with one more reference, if already so). */
  private contiguous(h: GpuHandle): GpuHandle {
    if (isContiguous(h)) return this.view(h, h.shape, rowMajorStrides(h.shape), h.offset);
    return this.copied(h);
  }

  /** A fresh dense copy of a handle (offset 0, row-major). */
  private copied(x: GpuHandle): GpuHandle {
    const out = this.output(x.shape, x.dtype);
    this.run(elementwiseKernel({ op: 'copy', inputs: [{ dtype: x.dtype, layout: x }], output: { dtype: x.dtype, layout: out }, ownsOutputBuffer: true }), [x, out]);
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Backend interface

  upload(data: TypedArray, shape: Shape, dtype: DType): GpuHandle {
    const n = sizeOfShape(shape);
    if (data.length !== n) throw new Error(`webgpu upload: ${data.length} values for shape [${shape.join(',')}] (${n} elements)`);
    const h = this.newHandle(shape, dtype);
    if (n === 0) return h;
    let words: Float32Array | Int32Array | Uint32Array;
    if (dtype === 'float32') words = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    else if (dtype === 'int32') words = data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
    else if (dtype === 'bool') words = Uint32Array.from(data as ArrayLike<number>, (v) => (v ? 1 : 0));
    else throw new Error(`webgpu upload: dtype ${dtype} is not supported (float32, int32, bool)`);
    if (dtype === 'int32' && n <= HOST_INDEX_COPY_LIMIT) h.storage.hostInts = Int32Array.from(words as Int32Array);
    this.runtime.write(h.storage, words);
    return h;
  }

  full(shape: Shape, value: number, dtype: DType): GpuHandle {
    const h = this.newHandle(shape, dtype);
    const n = sizeOfShape(shape);
    let bits: number;
    if (dtype === 'float32') bits = new Uint32Array(new Float32Array([value]).buffer)[0]!;
    else if (dtype === 'int32') bits = value | 0; // ToInt32, as an Int32Array fill does
    else if (dtype === 'bool') bits = value ? 1 : 0;
    else throw new Error(`webgpu full: dtype ${dtype} is not supported (float32, int32, bool)`);
    if (n === 0) return h;
    if (n <= 1024) {
      // Small constants (scalars of every `x.mul(2)`) go up with the next submit: no kernel.
      this.runtime.write(h.storage, new Uint32Array(n).fill(bits >>> 0));
    } else {
      this.runtime.dispatch(fillKernel(n, bits), [h.storage.buffer]);
    }
    return h;
  }

  async read(h: GpuHandle): Promise<TypedArray> {
    this.checkUsable('read', h);
    const n = sizeOfShape(h.shape);
    const c = this.contiguous(h);
    // runtime.read records and submits the copy before its first await, so `c` can go now: a
    // tensor disposed while its read is pending then holds no buffer in memory()'s figures, and
    // a later write into the recycled buffer is queued after the copy.
    let pending: Promise<ArrayBuffer>;
    try {
      pending = this.runtime.read(c.storage.buffer, c.offset * BYTES_PER_ELEMENT, n * BYTES_PER_ELEMENT);
    } finally {
      this.release(c);
    }
    const bytes = await pending;
    if (h.dtype === 'float32') return new Float32Array(bytes);
    if (h.dtype === 'int32') return new Int32Array(bytes);
    const words = new Uint32Array(bytes);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const w = words[i]!;
      if (w > 1) throw new Error(`webgpu read: bool element ${i} holds ${w}, not 0 or 1 (an unwritten or corrupted output)`);
      out[i] = w;
    }
    return out;
  }

  /**
   * Throws unless `h` can be computed with here: not disposed, and made by this backend's device.
   * A tensor keeps its device name ('webgpu') when the device behind that name is lost and
   * replaced, so the handle's storage says which device it really belongs to. Compiled programs
   * check their inputs by it too (`op` 'jit').
   */
  checkUsable(op: string, h: GpuHandle): void {
    if (h.disposed) throw new Error(`webgpu ${op}: the ${describe(h)} tensor was disposed`);
    const owner = h.storage.owner;
    if (owner.isLost) {
      throw new Error(
        `webgpu ${op}: this tensor belongs to a WebGPU device that was lost; recreate it on a new device (initWebGPU() opens one). ` +
          `Tensor: ${describe(h)}; loss: ${owner.lossReason}`,
      );
    }
    if (owner !== this.runtime) throw new Error(`webgpu ${op}: the ${describe(h)} tensor belongs to another WebGPU device than '${this.name}'`);
  }

  private release(h: GpuHandle): void {
    if (h.disposed) return;
    h.disposed = true;
    this.runtime.release(h.storage);
  }

  dispose(h: GpuHandle): void {
    this.release(h);
  }

  memory(): BackendMemory {
    return this.runtime.memory;
  }

  /**
   * Destroys the pooled buffers no tensor holds, readback staging buffers included
   * (`runtime.trimPool()`); returns their bytes. A buffer freed inside the open batch joins the
   * pool when the batch is submitted, so it is not among them.
   */
  trimPool(): number {
    const bytes = this.runtime.stats.pooledBytes;
    this.runtime.trimPool();
    return bytes;
  }

  /** A traced program compiled to fused WGSL kernels, run as one command buffer per call. */
  compile(program: Program): CompiledProgram<GpuHandle> {
    return new WebGPUCompiledProgram(this, program);
  }

  async sync(): Promise<void> {
    await this.runtime.sync();
  }

  execute<P extends Primitive>(prim: P, inputs: readonly GpuHandle[], params: PrimitiveParams[P], out: OutputInfo): GpuHandle {
    for (const x of inputs) this.checkUsable(prim, x);
    this.runtime.checkHealthy();
    if (this.runtime.anyBatchFailed) this.runtime.checkInputsHaveValues(inputs.map((x) => x.storage.buffer), `'${prim}'`);
    if (isUnary(prim) || isBinary(prim) || isCompare(prim) || prim === 'where') {
      return this.elementwise(prim as ElementwiseOp, inputs, out);
    }
    if (isReduce(prim)) return this.reduce(prim as 'sum' | 'reduceMax', inputs[0]!, (params as PrimitiveParams['sum']).axes, out);
    const x = inputs[0]!;
    if (isScan(prim)) {
      const { axis, reverse } = params as PrimitiveParams['cumsum'];
      const h = this.output(out.shape, out.dtype);
      // An empty result has nothing to write (and an empty axis has no last position for the kernel's uniforms).
      if (sizeOfShape(out.shape) === 0) return h;
      for (const span of axisSpans(x.shape[axis]!)) this.run(scanKernel({ op: prim, dtype: out.dtype, input: x, axis, reverse, span }), [x, h]);
      return h;
    }
    if (isArgReduce(prim)) {
      const { axis } = params as PrimitiveParams['argmax'];
      const h = this.output(out.shape, 'int32');
      for (const span of axisSpans(x.shape[axis]!)) this.run(argReduceKernel({ op: prim, dtype: x.dtype, input: x, axis, span }), [x, h]);
      return h;
    }
    switch (prim) {
      case 'reshape': {
        // A view where the strides allow one, as the CPU keeps (a narrow's unsqueeze in im2col
        // was a copy kernel: 9 of conv2d 3×3's 20 eager dispatches). A reshape to the same shape
        // stays a dense copy: the compiled program densifies a strided input that way.
        const strides = shapesEqual(x.shape, out.shape) ? null : reshapedStrides(x.shape, x.strides, out.shape);
        if (strides) return this.view(x, out.shape, strides, x.offset);
        const c = this.contiguous(x);
        const h = this.view(c, out.shape, rowMajorStrides(out.shape), c.offset);
        this.release(c);
        return h;
      }
      case 'expand': {
        const strides = x.strides.map((s, i) => (x.shape[i] === 1 && out.shape[i] !== 1 ? 0 : s));
        return this.view(x, out.shape, strides, x.offset);
      }
      case 'permute': {
        const { perm } = params as PrimitiveParams['permute'];
        return this.view(x, out.shape, perm.map((p) => x.strides[p]!), x.offset);
      }
      case 'slice': {
        const { starts } = params as PrimitiveParams['slice'];
        const offset = starts.reduce((acc, s, i) => acc + s * x.strides[i]!, x.offset);
        return this.view(x, out.shape, x.strides, offset);
      }
      case 'pad': {
        const { before } = params as PrimitiveParams['pad'];
        const h = this.output(out.shape, out.dtype);
        this.run(padKernel({ dtype: out.dtype, input: x, before, outShape: out.shape }), [x, h]);
        return h;
      }
      case 'concat':
        return this.concat(inputs, (params as PrimitiveParams['concat']).axis, out);
      case 'gather': {
        const { axis } = params as PrimitiveParams['gather'];
        const idx = inputs[1]!;
        this.checkIndices('gather', idx, axis, x.shape[axis]!);
        const h = this.output(out.shape, out.dtype);
        this.runReportingBadIndices(gatherKernel({ dtype: out.dtype, input: x, indices: idx, axis, outShape: out.shape }), [x, idx, h]);
        return h;
      }
      case 'scatterAdd': {
        const { axis, size } = params as PrimitiveParams['scatterAdd'];
        const idx = inputs[1]!;
        this.checkIndices('scatterAdd', idx, axis, size);
        const h = this.output(out.shape, out.dtype);
        const host = idx.storage.hostInts;
        if (host) {
          // Indices known on the host (checked above): each output element walks its own bucket.
          const { table, longest } = scatterAddBuckets(host, idx.offset, idx.strides[0]!, idx.shape[0]!, size);
          // Written directly: upload would also keep a host copy of a table nothing reads.
          const buckets = this.newHandle([table.length], 'int32');
          this.runtime.write(buckets.storage, table);
          for (const span of scatterAddSpans(longest)) {
            this.run(scatterAddBucketKernel({ dtype: out.dtype, updates: x, axis, outShape: out.shape, span }), [x, buckets, h]);
          }
          this.release(buckets);
          return h;
        }
        for (const span of scatterAddSpans(x.shape[axis]!)) {
          this.runReportingBadIndices(scatterAddKernel({ dtype: out.dtype, updates: x, indices: idx, axis, outShape: out.shape, span }), [x, idx, h]);
        }
        return h;
      }
      case 'matmul':
        return this.matmul(x, inputs[1]!, out);
      case 'cast': {
        const h = this.output(out.shape, out.dtype);
        this.run(elementwiseKernel({ op: 'cast', inputs: [{ dtype: x.dtype, layout: x }], output: { dtype: out.dtype, layout: h }, ownsOutputBuffer: true }), [x, h]);
        return h;
      }
      case 'full': {
        const p = params as PrimitiveParams['full'];
        return this.full(out.shape, p.value, out.dtype);
      }
      case 'stopGradient':
        // Storages are written once and shared by views, so the identity is one more reference.
        return this.view(x, x.shape, x.strides, x.offset);
      case 'custom':
        return this.custom((params as PrimitiveParams['custom']).name, inputs, out);
      case 'random': {
        const p = params as PrimitiveParams['random'];
        if (p.dtype !== 'float32') throw new Error(`webgpu random: dtype ${p.dtype} is not supported; WebGPU draws float32`);
        const h = this.output(out.shape, 'float32');
        this.run(randomKernel({ key: p.key, distribution: p.distribution, count: sizeOfShape(out.shape) }), [h]);
        return h;
      }
    }
    throw new Error(`webgpu: no kernel for primitive '${prim}'`);
  }

  // ------------------------------------------------------------------------------------------
  // Primitive families

  private elementwise(op: ElementwiseOp, inputs: readonly GpuHandle[], out: OutputInfo): GpuHandle {
    const h = this.output(out.shape, out.dtype);
    const spec = elementwiseKernel({
      op,
      inputs: inputs.map((x) => ({ dtype: x.dtype, layout: x })),
      output: { dtype: out.dtype, layout: h },
      ownsOutputBuffer: true,
    });
    this.run(spec, [...inputs, h]);
    return h;
  }

  /**
   * A defined primitive: an elementwise one through the elementwise template (strided operands,
   * vec4 when it can); a shader one on dense copies of its inputs (offset 0, row-major), as its
   * bindings promise.
   */
  private custom(name: string, inputs: readonly GpuHandle[], out: OutputInfo): GpuHandle {
    const def = primitiveDefinition(name);
    // The shader's launch is checked (workgroup size, dispatch) before anything is allocated.
    const spec = def.kind === 'shader' ? customShaderKernel(def, { inputs: inputs.map((x) => ({ shape: x.shape, dtype: x.dtype })), output: out }) : null;
    const h = this.output(out.shape, out.dtype);
    const dense: GpuHandle[] = [];
    try {
      if (!spec) {
        this.run(elementwiseKernel({
          op: 'custom', custom: name, inputs: inputs.map((x) => ({ dtype: x.dtype, layout: x })), output: { dtype: out.dtype, layout: h }, ownsOutputBuffer: true,
        }), [...inputs, h]);
      } else {
        for (const x of inputs) dense.push(isContiguous(x) && x.offset === 0 ? this.view(x, x.shape, x.strides, 0) : this.copied(x));
        this.run(spec, [...dense, h]);
      }
    } catch (e) {
      // A kernel known not to compile throws here: nothing it allocated outlives the call.
      this.release(h);
      throw e;
    } finally {
      for (const d of dense) this.release(d);
    }
    return h;
  }

  private reduce(op: 'sum' | 'reduceMax', x: GpuHandle, axes: readonly number[], out: OutputInfo): GpuHandle {
    const outputs = sizeOfShape(out.shape);
    const extent = sizeOfShape(axes.map((i) => x.shape[i]!));
    const { passes } = reductionPlan(outputs, extent);
    let src = x;
    let srcAxes = axes;
    for (let k = 0; k < passes.length; k++) {
      const pass = passes[k]!;
      const last = k === passes.length - 1;
      const dst = last ? this.output(out.shape, out.dtype) : this.output([outputs, pass.chunks], out.dtype);
      this.run(reduceKernel({ op, dtype: out.dtype, input: src, axes: srcAxes, pass }), [src, dst]);
      if (src !== x) this.release(src);
      src = dst;
      srcAxes = [1];
    }
    return src;
  }

  private concat(inputs: readonly GpuHandle[], axis: number, out: OutputInfo): GpuHandle {
    const h = this.output(out.shape, out.dtype);
    let start = 0;
    for (const x of inputs) {
      const window: Layout = { shape: x.shape, strides: h.strides, offset: start * h.strides[axis]! };
      start += x.shape[axis]!;
      if (sizeOfShape(x.shape) === 0) continue;
      this.run(elementwiseKernel({ op: 'copy', inputs: [{ dtype: x.dtype, layout: x }], output: { dtype: out.dtype, layout: window } }), [x, h]);
    }
    return h;
  }

  private matmul(aHandle: GpuHandle, bHandle: GpuHandle, out: OutputInfo): GpuHandle {
    const h = this.output(out.shape, out.dtype);
    // A size-1 axis is never stepped along; a zero stride keeps it out of alignment checks.
    const squeezeStrides = (x: GpuHandle): Layout => ({ shape: x.shape, strides: x.strides.map((s, i) => (x.shape[i] === 1 ? 0 : s)), offset: x.offset });
    const a = squeezeStrides(aHandle);
    const b = squeezeStrides(bHandle);
    const rank = out.shape.length;
    const batch = sizeOfShape(out.shape.slice(0, -2));
    const m = out.shape[rank - 2]!;
    const n = out.shape[rank - 1]!;
    const axes = this.forceTiledMatmul ? null : vec4Layout(a, b);
    let tiling = chooseTiling(m, n, batch);
    // Compatibility mode's default is 128 invocations per workgroup; use the 64-thread tiles then.
    if (tiling.tileM * tiling.tileN / (tiling.perThreadM * tiling.perThreadN) > this.runtime.device.limits.maxComputeInvocationsPerWorkgroup) tiling = SMALL_TILING;
    const blocking = chooseVec4Blocking(m, n, batch, this.vec4MinWorkgroups);
    // A long K is summed in spans, each launch after the first adding to C (MATMUL_K_SPAN).
    const k = aHandle.shape[rank - 1]!;
    for (let start = 0; start < batch; start += MAX_WORKGROUPS_PER_DIM) {
      const count = Math.min(MAX_WORKGROUPS_PER_DIM, batch - start);
      for (const span of matmulKSpans(k)) {
        const ks = { kStart: span.start, kCount: span.count, accumulate: span.start > 0 };
        const spec = axes
          ? vec4MatmulKernel({ a, b, outShape: out.shape, axes, blocking, batchStart: start, batchCount: count, ...ks })
          : matmulKernel({ a, b, outShape: out.shape, tiling, batchStart: start, batchCount: count, ...ks });
        this.run(spec, [aHandle, bHandle, h]);
      }
    }
    return h;
  }

  /**
   * Range-checks indices whose values the host knows (small uploads), with the CPU's error, at
   * once; the kernels report the others at the next read.
   */
  private checkIndices(op: 'gather' | 'scatterAdd', idx: GpuHandle, axis: number, extent: number): void {
    const host = idx.storage.hostInts;
    if (!host) return;
    const n = idx.shape[0]!;
    for (let j = 0; j < n; j++) {
      const r = host[idx.offset + j * idx.strides[0]!]!;
      if (!(r >= 0 && r < extent)) throw indexOutOfRange(op, r, axis, extent);
    }
  }
}
