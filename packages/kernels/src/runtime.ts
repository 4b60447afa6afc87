// The WebGPU runtime under the backend: pooled buffers, cached pipelines, batched dispatches
// and asynchronous readback, plus the error plumbing that turns WebGPU's deferred validation
// errors, device loss and out-of-range indices found by kernels into thrown errors.
//
// Ordering rules this module relies on (WebGPU queue timeline):
// - `queue.writeBuffer` runs when called, i.e. BEFORE the commands of the encoder that is still
//   being recorded. So a buffer released while a batch is open may still be read by that batch:
//   it waits in `releasedInBatch` and joins the pool only once the batch is submitted (after
//   which any upload into it is queued behind the reads). A batch with no command recorded yet
//   (opened by uploads alone) reads nothing: a buffer released then is pooled at once.
// - Every dispatch's uniforms live in one per-batch arena at their own offset; the arena is
//   written once, just before the batch is submitted, so no dispatch sees another's uniforms.
//   Reusing the arena for the next batch is safe because that write is queued after the submit.

/// <reference types="@webgpu/types" />

import { type ProfileSession, checkBoolean, checkNumber, checkOptions, profilerSession, removeLeastRecentClass } from '@scorch/tensor';
import type { AcquiredDevice } from './device.js';
import type { KernelSpec } from './wgsl/common.js';
import { INDEX_ERROR_RECORD_BYTES, indexErrorOf } from './wgsl/indexErrors.js';
import { KernelProfiler } from './profiling.js';
import { definitionAtLine, shaderContract, shaderDefinitionOf } from './wgsl/custom.js';
import { fillKernel } from './wgsl/elementwise.js';

/** A pooled GPU buffer holding tensor data; views share it through the reference count. */
export interface GpuStorage {
  buffer: GPUBuffer;
  /**
   * The runtime (device) that allocated the buffer. A device lost and replaced under the same
   * tensor-device name leaves tensors holding storages of the old one: they must never reach the
   * new device's pool or kernels.
   */
  readonly owner: GpuRuntime;
  /** Allocated bytes, at least the bytes asked for: their size class, or the binding limit where the class lies past it. */
  bytes: number;
  refs: number;
  /** For small int32 uploads: a host copy, so index tensors can be range-checked without a read. */
  hostInts?: Int32Array;
}

export interface RuntimeOptions {
  /** Dispatches recorded before the batch is submitted. Default 64. */
  maxDispatchesPerBatch?: number;
  /**
   * Bytes of freed buffers (tensor storage and readback staging) kept for reuse; beyond it the
   * size classes used least recently are destroyed to make room. Default 256 MiB.
   */
  poolLimitBytes?: number;
  /** Fill every newly allocated output buffer with NaN bits (0x7fc00000) before its kernel runs. */
  poisonAllocations?: boolean;
  /**
   * Compiled pipelines kept, by kernel source; beyond it the least recently used is dropped (and
   * compiled again if it is needed again). Default 512.
   */
  pipelineCacheLimit?: number;
}

/** Every RuntimeOptions key (the `satisfies` keeps the list complete). */
export const RUNTIME_OPTION_KEYS = Object.keys({
  maxDispatchesPerBatch: true, poolLimitBytes: true, poisonAllocations: true, pipelineCacheLimit: true,
} satisfies Record<keyof RuntimeOptions, true>) as (keyof RuntimeOptions)[];

/** The documented defaults of RuntimeOptions. */
export const RUNTIME_DEFAULTS: Required<RuntimeOptions> = {
  maxDispatchesPerBatch: 64,
  poolLimitBytes: 256 * 1024 * 1024,
  poisonAllocations: false,
  // Kernels generated with literal shapes (compiled programs, some eager kernels) differ per
  // shape, so a program run at many shapes (a server's batch sizes) made a pipeline for each, and
  // kept them all. On llvmpipe a pipeline holds 0.13 MB (a one-line kernel) to 0.5 MB (a fused
  // one) and takes 4 ms and more to compile (measured): 512 holds every kernel a program and its
  // eager work use many times over, and at most about 250 MB in this cache. Compiled programs'
  // kernel plans hold their pipelines outside it (executable.ts, LOWERING_CACHE_LIMIT plans a
  // device): docs/webgpu.md says so.
  pipelineCacheLimit: 512,
};

/** Checks the values of RuntimeOptions (its keys are the caller's to check). */
export function checkRuntimeOptions(where: string, opts: RuntimeOptions): void {
  checkNumber(where, 'maxDispatchesPerBatch', opts.maxDispatchesPerBatch, { integer: true, min: 1 });
  checkNumber(where, 'poolLimitBytes', opts.poolLimitBytes, { integer: true, min: 0 });
  checkBoolean(where, 'poisonAllocations', opts.poisonAllocations);
  checkNumber(where, 'pipelineCacheLimit', opts.pipelineCacheLimit, { integer: true, min: 1 });
}

/** Rounds a request up to its pool size class: powers of two up to 4 KiB, then quarter steps. */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 4096) return 2 ** Math.ceil(Math.log2(b));
  const pow = 2 ** Math.floor(Math.log2(b));
  const step = pow / 4;
  return Math.ceil(b / step) * step;
}

/** One launch of a compiled program: a pipeline, its bind group and its grid. */
export interface CompiledLaunch {
  readonly label: string;
  readonly pipeline: CachedPipeline;
  readonly bindGroup: GPUBindGroup;
  readonly dispatch: readonly [number, number, number];
  /** For the profiler: the storage buffers bound (in binding order) and the uniform words. */
  readonly buffers: readonly GPUBuffer[];
  readonly uniforms: Uint32Array | null;
  /** For the profiler: bytes the kernel reads and writes, and its flops (products). */
  readonly bytes?: number;
  readonly flops?: number;
}

/** The free buffers of one size class, and the tick of the class's last use (a take or a return). */
interface PoolClass {
  readonly buffers: GPUBuffer[];
  used: number;
}

export interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** Bindings the kernel may write (declared `read_write`). */
  written: ReadonlySet<number>;
  /** Set once the device has said the kernel does not compile: later uses throw it at once. */
  invalid?: Error;
}

/**
 * The storage bindings a kernel may write: those a generated kernel declares `read_write`; a
 * shader definition's output only, whatever its code declares (its layout binds the inputs
 * read-only, so a pipeline that would write one is invalid and writes nothing).
 */
function writtenBindings(code: string): Set<number> {
  const shader = shaderDefinitionOf(code);
  if (shader) return new Set([shader.inputs.length]);
  const out = new Set<number>();
  for (const m of code.matchAll(/@binding\((\d+)\)\s+var<storage,\s*read_write>/g)) out.add(Number(m[1]));
  return out;
}

/**
 * The error for a kernel whose module or pipeline is invalid: the compiler's error messages with
 * their lines and the source lines they point at, naming the defined primitive whose code holds
 * the line (wgsl/custom.ts marks it) when there is one.
 */
function compileError(spec: Pick<KernelSpec, 'code' | 'label'>, message: string, messages: readonly GPUCompilationMessage[]): Error {
  const source = spec.code.split('\n');
  const errors = messages.filter((m) => m.type === 'error');
  const owner = errors.map((m) => definitionAtLine(spec.code, m.lineNum)).find((d) => d !== null)?.name ?? null;
  const details = errors.map((m) => {
    const at = definitionAtLine(spec.code, m.lineNum);
    const where = at ? `line ${at.line}:${m.linePos} of '${at.name}' (kernel line ${m.lineNum})` : `kernel line ${m.lineNum}:${m.linePos}`;
    return `  ${where}: ${m.message}\n    ${(source[m.lineNum - 1] ?? '').trim()}`;
  });
  const what = owner !== null ? `custom primitive '${owner}': its WGSL does not compile (kernel '${spec.label}')` : `webgpu: kernel '${spec.label}' is invalid`;
  if (details.length > 0) return new Error(`${what}:\n${details.join('\n')}`);
  // A shader definition that compiles but does not fit its bindings or entry point: the device
  // says what it found, the contract says what was expected.
  const shader = shaderDefinitionOf(spec.code);
  if (shader) return new Error(`custom primitive '${shader.name}': its shader is not a valid kernel (kernel '${spec.label}'): ${message}\n  expected: ${shaderContract(shader)}`);
  return new Error(`${what}: ${message}`);
}

const UNIFORM_ARENA_BYTES = 64 * 1024;
// Flag values fixed by the WebGPU spec; Dawn for Node does not put GPUBufferUsage on globalThis.
const BUFFER_USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_MODE_READ = 0x1;
const SHADER_STAGE_COMPUTE = 0x4;
const POISON_WORD = 0x7fc00000;

/**
 * The runtime under one WebGPU device: the buffer pool, the pipeline cache, command batching
 * (`maxDispatchesPerBatch`), reads back to the host and `stats`; `handle.runtime` of `initWebGPU`.
 */
export class GpuRuntime {
  readonly device: GPUDevice;
  /** Kept so the adapter (and its Dawn instance) live as long as the device. */
  readonly acquired: AcquiredDevice;
  readonly poison: boolean;
  private readonly maxDispatches: number;
  private readonly poolLimit: number;
  private readonly uniformAlign: number;

  /** Free storage buffers by size class (each class stamped with the tick of its last use). */
  private readonly pool = new Map<number, PoolClass>();
  /** Bytes of both pools (storage and readback staging), held to poolLimit together. */
  private pooledBytes = 0;
  private readonly stagingPool = new Map<number, PoolClass>();
  private poolTick = 0;
  private releasedInBatch: GpuStorage[] = [];
  private liveBuffers = 0;
  private liveBytes = 0;

  /**
   * Pipelines by kernel source, each with the tick of its last use; at most pipelineLimit. A use
   * stamps its entry (a hit costs a store, not a reordering of the map); a compile past the limit
   * finds the least recently used by a scan, which is small next to the compile.
   */
  private readonly pipelines = new Map<string, { entry: CachedPipeline; used: number }>();
  private readonly pipelineLimit: number;
  private pipelineTick = 0;
  private pipelineCompiles = 0;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  private labelsInBatch = new Set<string>();
  private readonly uniformArena: GPUBuffer;
  private readonly uniformHost = new Uint8Array(UNIFORM_ARENA_BYTES);
  private uniformUsed = 0;
  /** Where gather/scatterAdd kernels report an out-of-range index (wgsl/indexErrors.ts). */
  private readonly indexErrorRecord: GPUBuffer;
  /** True once such a kernel was recorded after the record was last copied out. */
  private indexRecordUnread = false;

  /** Validation/OOM/internal errors not yet reported, and the checks still in flight. */
  private failure: Error | null = null;
  /**
   * Settles when every error check added so far has (each one chained onto the last, never
   * rejecting): what `settle` and the profiler's `batchFailed` wait for. Awaiting Promise.all
   * over a set of the pending checks instead made N reads in flight cost N², each waiting on
   * every check still pending (3,200 reads in Promise.all: 29 s).
   */
  private checksDone: Promise<unknown> = Promise.resolve();
  /**
   * What a failed batch takes with it. Batches are numbered as they are opened (`batch` is the
   * open one's number, or the next one's); a submitted batch stays in `unsettledBatches` until its
   * error check settles (`settledThrough`: every batch up to it has settled), and joins
   * `failedBatches` if the check found an error: none of its commands ran, so every buffer it was
   * to write holds stale bytes. `dependsOn` gives, for each buffer a kernel wrote, the batches
   * [lo, hi] its value may depend on that were not known to have succeeded when it was written:
   * its writer's, and those of its inputs (a range, so a long chain recorded without a pause
   * costs the same as a short one; a failure inside the range counts even for a value that did
   * not depend on it, which errs on the side of refusing). A read, or a kernel, that meets a
   * failed batch throws instead of using the stale bytes.
   */
  private batch = 0;
  private settledThrough = -1;
  private readonly unsettledBatches = new Set<number>();
  private readonly failedBatches = new Map<number, Error>();
  private readonly dependsOn = new WeakMap<GPUBuffer, { readonly lo: number; readonly hi: number }>();
  private lostReason: string | null = null;
  private submits = 0;
  private dispatches = 0;

  constructor(acquired: AcquiredDevice, opts: RuntimeOptions = {}) {
    this.device = acquired.device;
    this.acquired = acquired;
    checkOptions('GpuRuntime', opts, RUNTIME_OPTION_KEYS);
    checkRuntimeOptions('GpuRuntime', opts);
    this.maxDispatches = opts.maxDispatchesPerBatch ?? RUNTIME_DEFAULTS.maxDispatchesPerBatch;
    this.poolLimit = opts.poolLimitBytes ?? RUNTIME_DEFAULTS.poolLimitBytes;
    this.poison = opts.poisonAllocations ?? RUNTIME_DEFAULTS.poisonAllocations;
    this.pipelineLimit = opts.pipelineCacheLimit ?? RUNTIME_DEFAULTS.pipelineCacheLimit;
    this.uniformAlign = Math.max(16, this.device.limits.minUniformBufferOffsetAlignment);
    this.uniformArena = this.device.createBuffer({
      label: 'scorch uniform arena',
      size: UNIFORM_ARENA_BYTES,
      usage: BUFFER_USAGE.UNIFORM | BUFFER_USAGE.COPY_DST,
    });
    // WebGPU zero-fills new buffers: the record starts empty.
    this.indexErrorRecord = this.device.createBuffer({
      label: 'scorch index-error record',
      size: INDEX_ERROR_RECORD_BYTES,
      usage: BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST,
    });
    void this.device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
    this.device.addEventListener('uncapturederror', (event) => {
      const e = (event as GPUUncapturedErrorEvent).error;
      this.failure ??= new Error(`webgpu: ${e.message}`);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Errors

  /** Throws if the device was lost or an earlier batch reported an error. */
  checkHealthy(): void {
    if (this.lostReason !== null) throw new Error(`webgpu: the device was lost (${this.lostReason}); create a new one with initWebGPU`);
    if (this.failure) {
      const f = this.failure;
      this.failure = null;
      throw f;
    }
  }

  /** Waits for the error checks of submitted batches, then throws the first error found. */
  async settle(): Promise<void> {
    await this.checksDone;
    this.checkHealthy();
  }

  /** Adds an error check of submitted work; one that rejects is kept as the failure the next settle throws. */
  private addCheck(check: Promise<void>): void {
    const recorded = check.catch((e: unknown) => {
      this.failure ??= e instanceof Error ? e : new Error(String(e));
    });
    // then, not Promise.all([done, recorded]): that settled to a nested pair per check, kept for
    // the runtime's life (66.9 MB after a million checks).
    this.checksDone = this.checksDone.then(() => recorded);
  }

  /** True once the device is lost; initWebGPU then opens a new one. */
  get isLost(): boolean {
    return this.lostReason !== null;
  }

  /** Why the device was lost ('destroyed: ...'), or null while it is not. */
  get lossReason(): string | null {
    return this.lostReason;
  }

  // ------------------------------------------------------------------------------------------
  // Buffers

  /** Buffers and bytes held by live tensors; none once the device is lost (they went with it). */
  get memory(): { buffers: number; bytes: number } {
    if (this.isLost) return { buffers: 0, bytes: 0 };
    return { buffers: this.liveBuffers, bytes: this.liveBytes };
  }

  /** Pool statistics, for tests and tuning. */
  get stats(): { pooledBytes: number; pipelines: number; compiles: number; submits: number; dispatches: number } {
    return { pooledBytes: this.pooledBytes, pipelines: this.pipelines.size, compiles: this.pipelineCompiles, submits: this.submits, dispatches: this.dispatches };
  }

  /** Storage of `bytes`; `what` names it in the error when it exceeds the binding limit. */
  allocate(bytes: number, what = 'tensor'): GpuStorage {
    this.checkHealthy();
    const limit = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(`webgpu: a ${bytes}-byte ${what} exceeds this device's maxStorageBufferBindingSize (${limit} bytes)`);
    }
    // The size class may lie past a limit that is not one (2^31 − 4): the buffer then stops at
    // the limit (4-byte aligned, and still at least the bytes asked for, a whole number of words).
    const size = Math.min(sizeClass(bytes), limit - (limit % 4));
    let buffer = this.takePooled(this.pool, size);
    if (buffer) {
      // What the buffer held before went with its last tensor.
      this.dependsOn.delete(buffer);
    } else {
      this.ensureBatch();
      buffer = this.device.createBuffer({
        size,
        usage: BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST,
      });
    }
    this.liveBuffers++;
    this.liveBytes += size;
    return { buffer, bytes: size, refs: 1, owner: this };
  }

  /**
   * Drops one reference; the last one returns the buffer (after the open batch is submitted) to
   * the pool of the runtime that allocated it. On a lost device this only counts: the buffer went
   * with the device.
   */
  release(storage: GpuStorage): void {
    if (storage.owner !== this) {
      storage.owner.release(storage);
      return;
    }
    if (storage.refs <= 0) return;
    storage.refs--;
    if (storage.refs > 0) return;
    this.liveBuffers--;
    this.liveBytes -= storage.bytes;
    if (this.isLost) return;
    // Only a batch that has recorded a command can still read the buffer; one opened by uploads
    // alone cannot (an upload into the pooled buffer queues behind them), and holding such
    // buffers until a flush made a loop of uploads and disposes with no kernel or read create a
    // new buffer each time, unbounded and unseen by memory().
    if (this.encoder && this.dispatchesInBatch > 0) this.releasedInBatch.push(storage);
    else this.returnToPool(storage.buffer, storage.bytes);
  }

  /** A free buffer of `size` from `pool`, or undefined; its class counts as used either way. */
  private takePooled(pool: Map<number, PoolClass>, size: number): GPUBuffer | undefined {
    const cls = pool.get(size);
    if (!cls) return undefined;
    cls.used = ++this.poolTick;
    const buffer = cls.buffers.pop();
    if (buffer) this.pooledBytes -= size;
    return buffer;
  }

  /**
   * Pools a freed buffer. Past poolLimit the size classes used least recently (of either pool) are
   * destroyed to make room: a burst of sizes that never come back used to fill the pool for good,
   * and the buffers of the work that runs now were then destroyed and created anew every step.
   */
  private returnToPool(buffer: GPUBuffer, size: number, pool = this.pool): void {
    if (size > this.poolLimit) {
      buffer.destroy();
      return;
    }
    let cls = pool.get(size);
    if (!cls) pool.set(size, (cls = { buffers: [], used: 0 }));
    cls.used = ++this.poolTick;
    while (this.pooledBytes + size > this.poolLimit && this.dropLeastRecentPooled(cls));
    if (this.pooledBytes + size > this.poolLimit) {
      buffer.destroy();
      return;
    }
    cls.buffers.push(buffer);
    this.pooledBytes += size;
  }

  /**
   * Destroys the buffers of the pooled size class used least recently, other than `keep`, and
   * forgets the empty classes it passes; false when there was none. A scan: it runs only when
   * the pool is full.
   */
  private dropLeastRecentPooled(keep: PoolClass): boolean {
    const oldest = removeLeastRecentClass([this.pool, this.stagingPool], keep, (cls) => cls.buffers.length === 0);
    if (oldest === undefined) return false;
    const [size, cls] = oldest;
    for (const b of cls.buffers) b.destroy();
    this.pooledBytes -= size * cls.buffers.length;
    return true;
  }

  /** Destroys every pooled buffer, readback staging buffers included (live tensors are untouched). */
  trimPool(): void {
    for (const pool of [this.pool, this.stagingPool]) {
      for (const cls of pool.values()) for (const b of cls.buffers) b.destroy();
      pool.clear();
    }
    this.pooledBytes = 0;
  }

  /** Copies host bytes into a storage (queued now: ahead of the open batch, which is fine for a fresh buffer). */
  write(storage: GpuStorage, data: ArrayBufferView, byteOffset = 0): void {
    this.checkHealthy();
    this.ensureBatch();
    this.device.queue.writeBuffer(storage.buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
    this.profiler?.written(storage.buffer);
  }

  // ------------------------------------------------------------------------------------------
  // Pipelines and dispatches

  /**
   * The pipeline of `spec`'s code, compiled on first use. A compile past pipelineLimit drops the
   * least recently used (a compiled program holds its own pipelines, so only a later lookup of
   * that code compiles it again).
   */
  private pipelineFor(spec: KernelSpec): CachedPipeline {
    const hit = this.pipelines.get(spec.code);
    let cached = hit?.entry;
    if (cached?.invalid) throw cached.invalid;
    if (hit) hit.used = ++this.pipelineTick;
    if (!cached) {
      // A scope of its own, so a kernel that does not compile is reported as that, with the
      // compiler's messages and lines, rather than as a failed batch.
      this.device.pushErrorScope('validation');
      const module = this.device.createShaderModule({ code: spec.code, label: spec.label });
      const pipeline = this.device.createComputePipeline({ layout: this.pipelineLayout(spec.code), compute: { module, entryPoint: 'main' }, label: spec.label });
      const entry: CachedPipeline = { pipeline, layout: pipeline.getBindGroupLayout(0), written: writtenBindings(spec.code) };
      cached = entry;
      const scope = this.device.popErrorScope();
      const check: Promise<void> = Promise.all([scope, module.getCompilationInfo()])
        .then(([error, info]) => {
          if (!error) return;
          entry.invalid = compileError(spec, error.message, info.messages);
          this.failure = entry.invalid;
        });
      this.addCheck(check);
      if (this.pipelines.size >= this.pipelineLimit) this.dropLeastRecentPipeline();
      this.pipelines.set(spec.code, { entry, used: ++this.pipelineTick });
      this.pipelineCompiles++;
    }
    return cached;
  }

  /** Drops the pipeline whose last use is the oldest (a scan: it runs once per compile past the limit). */
  private dropLeastRecentPipeline(): void {
    let oldest: string | undefined;
    let oldestUse = Infinity;
    for (const [code, p] of this.pipelines) {
      if (p.used < oldestUse) {
        oldestUse = p.used;
        oldest = code;
      }
    }
    if (oldest !== undefined) this.pipelines.delete(oldest);
  }

  /**
   * A generated kernel's layout is derived from its code ('auto'). A shader definition's is its
   * contract (input k read-only at binding k, the output read-write after them), so a binding the
   * shader declares but never uses (which 'auto' leaves out) still accepts its buffer.
   */
  private pipelineLayout(code: string): GPUPipelineLayout | 'auto' {
    const shader = shaderDefinitionOf(code);
    if (!shader) return 'auto';
    const n = shader.inputs.length;
    const entries: GPUBindGroupLayoutEntry[] = Array.from({ length: n + 1 }, (_, k) => ({
      binding: k, visibility: SHADER_STAGE_COMPUTE, buffer: { type: k < n ? 'read-only-storage' : 'storage' },
    }));
    // Labelled by shape, not by primitive: the device may share one layout between definitions.
    const label = `defined shader, ${n} input(s) and an output`;
    return this.device.createPipelineLayout({ bindGroupLayouts: [this.device.createBindGroupLayout({ entries, label })], label });
  }

  /** The error of a failed batch the buffer's value may depend on, or null. */
  private failedDependency(buffer: GPUBuffer): Error | null {
    const range = this.dependsOn.get(buffer);
    if (!range) return null;
    for (const [b, error] of this.failedBatches) if (b >= range.lo && b <= range.hi) return error;
    return null;
  }

  /**
   * Throws if a buffer holds the stale bytes of a failed batch instead of a value: an operation's
   * inputs (`what` names the operation) are checked before anything is allocated for it, and
   * every kernel's buffers again when it is recorded (an input, or a buffer it writes in place;
   * fresh outputs hold nothing yet: `allocate` and `discardContents` clear their record).
   */
  checkInputsHaveValues(buffers: readonly GPUBuffer[], what: string): void {
    if (this.failedBatches.size === 0) return;
    for (const buffer of buffers) {
      const failed = this.failedDependency(buffer);
      if (failed) throw new Error(`webgpu: ${what} has an input with no value: the batch of kernels that computes it failed, so none of its kernels ran (${failed.message}). Compute the input again`);
    }
  }

  /** True once a submitted batch has failed (until then no buffer can lack its value). */
  get anyBatchFailed(): boolean {
    return this.failedBatches.size > 0;
  }

  /**
   * Records, for each buffer a kernel writes (its buffers checked by checkInputsHaveValues first),
   * the batches its value may now depend on: from the earliest batch not yet settled that one of
   * its inputs (or the buffer itself: a kernel may write part of it, or update it in place) may
   * depend on, to the open batch. The index-error record is not a value: it is read and cleared
   * on its own.
   */
  private recordWrites(written: ReadonlySet<number>, buffers: readonly GPUBuffer[]): void {
    let lo = this.batch;
    for (const buffer of buffers) {
      if (buffer === this.indexErrorRecord) continue;
      const range = this.dependsOn.get(buffer);
      // Settled batches in the range succeeded (checkInputsHaveValues would have thrown).
      if (range && range.hi > this.settledThrough) lo = Math.min(lo, Math.max(range.lo, this.settledThrough + 1));
    }
    const range = { lo, hi: this.batch };
    for (const i of written) {
      const buffer = buffers[i];
      if (buffer && buffer !== this.indexErrorRecord) this.dependsOn.set(buffer, range);
    }
  }

  /**
   * Says that the next kernels write the whole of a storage before reading it (a compiled
   * program's intermediate block, kept from call to call), so what it held no longer matters,
   * even the stale bytes of a failed batch.
   */
  discardContents(storage: GpuStorage): void {
    this.dependsOn.delete(storage.buffer);
  }

  /** Opens a batch: an encoder, and error scopes that collect everything until it is submitted. */
  private ensureBatch(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('internal');
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder({ label: 'scorch batch' });
    }
    return this.encoder;
  }

  /**
   * Records one kernel launch. `buffers` are bound at 0..n-1 in the order the kernel declares
   * them; the uniform block follows. Launches with no workgroups are skipped.
   */
  dispatch(spec: KernelSpec, buffers: readonly GPUBuffer[], profiledAs?: string): void {
    this.checkHealthy();
    if (spec.dispatch.some((d) => d === 0)) return;
    const uniformBytes = spec.uniforms.byteLength;
    let at = Math.ceil(this.uniformUsed / this.uniformAlign) * this.uniformAlign;
    // The profiler's query set holds 128 kernels: a full one is submitted here, before this
    // dispatch's uniform words are placed, not from inside launch() after they were (the flush
    // restarts the arena at 0 and later dispatches of the new batch overwrote them).
    const session = profilerSession();
    if (at + uniformBytes > UNIFORM_ARENA_BYTES || this.dispatchesInBatch >= this.maxDispatches || (session !== null && this.profiled(session).batchFull)) {
      this.flush();
      at = 0;
    }
    const encoder = this.ensureBatch();
    const entry = this.pipelineFor(spec);
    this.checkInputsHaveValues(buffers, `kernel '${spec.label}'`);
    this.recordWrites(entry.written, buffers);
    this.uniformHost.set(new Uint8Array(spec.uniforms.buffer, spec.uniforms.byteOffset, uniformBytes), at);
    this.uniformUsed = at + uniformBytes;
    const entries: GPUBindGroupEntry[] = buffers.map((buffer, i) => ({ binding: i, resource: { buffer } }));
    // A kernel with no uniform words (a defined primitive's shader) declares no uniform binding.
    if (uniformBytes > 0) entries.push({ binding: buffers.length, resource: { buffer: this.uniformArena, offset: at, size: uniformBytes } });
    const bindGroup = this.device.createBindGroup({ layout: entry.layout, entries, label: spec.label });
    if (session) {
      // An operation's bytes and flops are charged to its first kernel; a kernel that is not the
      // operation's own work (a debugging fill) goes under its own name.
      const op = profiledAs === undefined ? session.operation : null;
      if (op) session.operation = { name: op.name, bytes: 0 };
      this.profiled(session).launch({
        label: spec.label, pipeline: entry, bindGroup, dispatch: spec.dispatch, buffers, uniforms: uniformBytes > 0 ? spec.uniforms : null,
        bytes: op?.bytes, flops: op?.flops,
      }, profiledAs ?? op?.name ?? spec.label);
    } else {
      this.pass ??= encoder.beginComputePass({ label: 'scorch kernels' });
      this.pass.setPipeline(entry.pipeline);
      this.pass.setBindGroup(0, bindGroup);
      this.pass.dispatchWorkgroups(spec.dispatch[0], spec.dispatch[1], spec.dispatch[2]);
    }
    this.dispatchesInBatch++;
    this.dispatches++;
    this.labelsInBatch.add(spec.label);
  }

  /**
   * Records a kernel that reports out-of-range indices: the index-error record is bound after
   * `buffers`, and the next read (or sync) copies it out and throws what it holds.
   */
  dispatchReportingBadIndices(spec: KernelSpec, buffers: readonly GPUBuffer[]): void {
    this.dispatch(spec, [...buffers, this.indexErrorRecord]);
    this.indexRecordUnread = true;
  }

  get poisonWord(): number {
    return POISON_WORD;
  }

  /** Fills a fresh buffer with NaN bits (poisonAllocations), profiled as 'poison fill'. */
  poisonFill(storage: GpuStorage): void {
    this.dispatch(fillKernel(storage.bytes / 4, POISON_WORD), [storage.buffer], 'poison fill');
  }

  /**
   * Compiles (or finds) the pipeline of a generated kernel. Compiled programs call this once per
   * kernel when they are built, never per call.
   */
  pipeline(code: string, label: string): CachedPipeline {
    return this.pipelineFor({ code, label } as KernelSpec);
  }

  /** The buffer gather and scatterAdd kernels report out-of-range indices into. */
  get indexErrors(): GPUBuffer {
    return this.indexErrorRecord;
  }

  /**
   * Records the launches of one call of a compiled program into the open batch (after any eager
   * work queued before it) and submits: one command buffer per call. Bind groups come made.
   */
  runCompiled(launches: readonly CompiledLaunch[], reportsBadIndices: boolean): void {
    this.checkHealthy();
    const encoder = this.ensureBatch();
    // Every input is checked before any launch is recorded, so a refused call leaves the batch as it was.
    for (const launch of launches) this.checkInputsHaveValues(launch.buffers, `kernel '${launch.label}'`);
    for (const launch of launches) this.recordWrites(launch.pipeline.written, launch.buffers);
    const session = profilerSession();
    for (const launch of launches) {
      if (launch.dispatch.some((d) => d === 0)) continue;
      if (session) {
        this.profiled(session).launch(launch, launch.label);
      } else {
        this.pass ??= encoder.beginComputePass({ label: 'scorch kernels' });
        this.pass.setPipeline(launch.pipeline.pipeline);
        this.pass.setBindGroup(0, launch.bindGroup);
        this.pass.dispatchWorkgroups(launch.dispatch[0], launch.dispatch[1], launch.dispatch[2]);
      }
      this.dispatchesInBatch++;
      this.dispatches++;
      this.labelsInBatch.add(launch.label);
    }
    if (reportsBadIndices) this.indexRecordUnread = true;
    this.flush();
  }

  /** Submits the open batch, if any, and moves the buffers it released into the pool. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (this.uniformUsed > 0) {
      this.device.queue.writeBuffer(this.uniformArena, 0, this.uniformHost.buffer, 0, Math.ceil(this.uniformUsed / 4) * 4);
    }
    this.profiler?.beforeSubmit(this.encoder);
    this.device.queue.submit([this.encoder.finish()]);
    this.profiler?.afterSubmit();
    this.submits++;
    this.encoder = null;
    this.uniformUsed = 0;
    this.dispatchesInBatch = 0;
    const labels = [...this.labelsInBatch];
    this.labelsInBatch = new Set();
    const batch = this.batch++;
    this.unsettledBatches.add(batch);
    const scopes = [this.device.popErrorScope(), this.device.popErrorScope(), this.device.popErrorScope()];
    // Kept until it settles (a loop that never reads must not accumulate them); an error it
    // finds is thrown by the next operation or read, and the values the batch was to compute
    // by any read or kernel that meets them (recordWrites).
    const check: Promise<void> = Promise.all(scopes)
      .then((errors) => {
        const e = errors.find((x) => x !== null);
        if (!e) return;
        const which = labels.length > 0 ? ` in a batch running kernels [${labels.join(', ')}]` : '';
        const error = new Error(`webgpu: ${e.constructor.name}${which}: ${e.message}`);
        this.failedBatches.set(batch, error);
        this.failure ??= error;
      })
      .finally(() => {
        this.unsettledBatches.delete(batch);
        while (this.settledThrough + 1 < this.batch && !this.unsettledBatches.has(this.settledThrough + 1)) this.settledThrough++;
      });
    this.addCheck(check);
    for (const s of this.releasedInBatch) this.returnToPool(s.buffer, s.bytes);
    this.releasedInBatch = [];
  }

  /**
   * Waits until the device has finished all submitted work, then reports any error, including
   * an out-of-range index found by a kernel.
   */
  async sync(): Promise<void> {
    if (this.indexRecordUnread) {
      // Mapping the record waits for the submitted work as onSubmittedWorkDone would.
      await this.readBack(null, 0, 0);
      return;
    }
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.settle();
  }

  // ------------------------------------------------------------------------------------------
  // Profiling

  /** The tensor device name this runtime serves (kernel events carry it). */
  deviceName = 'webgpu';

  /** The profiler of the `profile` call in progress (one per session; dropped when it ends). */
  private profiler: KernelProfiler | null = null;

  /**
   * The kernel profiler for `session`: it records each launch in a compute pass of its own
   * (timestamp queries) or keeps what is needed to replay it alone (no timestamp queries).
   */
  private profiled(session: ProfileSession): KernelProfiler {
    if (this.profiler?.session !== session) {
      const profiler = new KernelProfiler(this.device, session, {
        encoder: () => {
          const encoder = this.ensureBatch();
          if (this.pass) {
            this.pass.end();
            this.pass = null;
          }
          return encoder;
        },
        flush: () => this.flush(),
        settle: () => this.settle(),
        openBatch: () => this.batch,
        batchFailed: async (batch) => {
          // Its error check may still be in flight: the checks added so far include it.
          await this.checksDone;
          return this.failedBatches.has(batch);
        },
      }, this.deviceName);
      this.profiler = profiler;
      session.onFinish(async (failed) => {
        this.flush();
        try {
          await profiler.finish(failed);
        } finally {
          if (this.profiler === profiler) this.profiler = null;
        }
      });
    }
    return this.profiler;
  }

  // ------------------------------------------------------------------------------------------
  // Readback

  /** Reads `byteLength` bytes at `byteOffset` of a buffer: copy to a staging buffer, submit, map. */
  async read(buffer: GPUBuffer, byteOffset: number, byteLength: number): Promise<ArrayBuffer> {
    this.checkHealthy();
    if (byteLength === 0) return new ArrayBuffer(0);
    return this.readBack(buffer, byteOffset, byteLength);
  }

  /**
   * Copies the bytes asked for (if any) into a staging buffer, and the index-error record after
   * them when a kernel may have written it since it was last read; submits; maps once. The
   * record rides on a read that happens anyway: no extra submit or round trip. It is cleared by
   * the same command buffer, right after the copy, so each report is read exactly once. Throws
   * the batch's errors first, then a bad index the record holds.
   */
  private async readBack(buffer: GPUBuffer | null, byteOffset: number, byteLength: number): Promise<ArrayBuffer> {
    const withRecord = this.indexRecordUnread;
    // Copy offsets and the record's Uint32Array view need 4-byte alignment.
    const recordAt = Math.ceil(byteLength / 4) * 4;
    const mapped = withRecord ? recordAt + INDEX_ERROR_RECORD_BYTES : byteLength;
    const size = sizeClass(mapped);
    let staging = this.takePooled(this.stagingPool, size);
    if (!staging) staging = this.device.createBuffer({ label: 'scorch readback', size, usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST });
    const encoder = this.ensureBatch();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (buffer) encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, byteLength);
    if (withRecord) {
      encoder.copyBufferToBuffer(this.indexErrorRecord, 0, staging, recordAt, INDEX_ERROR_RECORD_BYTES);
      encoder.clearBuffer(this.indexErrorRecord);
      this.indexRecordUnread = false;
    }
    this.flush();
    try {
      await staging.mapAsync(MAP_MODE_READ, 0, mapped);
    } catch (e) {
      // Neither pooled nor kept: a buffer whose mapping failed is in no state to be mapped again.
      staging.destroy();
      await this.settle();
      if (this.lostReason !== null) this.checkHealthy();
      throw new Error(`webgpu: reading a result back failed: ${(e as Error).message}`);
    }
    const range = staging.getMappedRange(0, mapped);
    const copy = range.slice(0, byteLength);
    const indexError = withRecord ? indexErrorOf(new Uint32Array(range, recordAt, INDEX_ERROR_RECORD_BYTES / 4)) : null;
    staging.unmap();
    // Kept under the pool's limit like freed storage: reads of many sizes, or many at once, would
    // otherwise each leave a buffer behind for good.
    if (!this.isLost) this.returnToPool(staging, size, this.stagingPool);
    await this.settle();
    if (indexError) throw indexError;
    // Every batch up to this read has settled: the bytes are the value unless a batch it
    // depends on failed.
    const failed = buffer ? this.failedDependency(buffer) : null;
    if (failed) throw new Error(`webgpu: this tensor has no value: the batch of kernels that computes it (or one of its inputs) failed, so none of its kernels ran (${failed.message}). Compute it again`);
    return copy;
  }
}
