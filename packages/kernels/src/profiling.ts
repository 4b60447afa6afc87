// Kernel timing for `profile` on WebGPU.
//
// - With timestamp queries (the adapter offers 'timestamp-query': Vulkan, Metal and D3D12 GPUs,
//   SwiftShader), each kernel runs in a compute pass of its own whose beginning and end write a
//   timestamp; the pairs are resolved when the batch is submitted and read back asynchronously.
// - Without them (Mesa llvmpipe through OpenGL), the host cannot see when one kernel of a batch
//   ends: completions are only reported when JavaScript yields, which a synchronous `fn` never
//   does. So each kernel's read bindings are snapshot (a buffer copy recorded just before it,
//   one per buffer, refreshed when the buffer changed) and, once `fn` has finished, each kernel is
//   replayed alone on its snapshots, writing scratch buffers, and timed from submission to
//   completion (median of three runs after one warm-up), less the median round trip of an empty
//   submission. Replays never touch the tensors' own buffers.

/// <reference types="@webgpu/types" />

import type { KernelEvent, ProfileSession } from '@scorch/tensor';
import type { CachedPipeline, CompiledLaunch } from './runtime.js';

/** What the runtime lends the profiler. */
export interface ProfilerHooks {
  /** The open batch's encoder, with no compute pass open. */
  encoder(): GPUCommandEncoder;
  /** Submits the open batch. */
  flush(): void;
  /** Waits for submitted work's error checks and throws what they found. */
  settle(): Promise<void>;
  /** The number of the batch kernels are recorded into now. */
  openBatch(): number;
  /** Whether a submitted batch failed (none of its commands ran), once its error check settled. */
  batchFailed(batch: number): Promise<boolean>;
}

const QUERY_CAPACITY = 256; // timestamps per batch: 128 kernels
const REPLAY_RUNS = 3;
const BASELINE_RUNS = 7;
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
const MAP_MODE_READ = 0x1;

interface Described {
  readonly name: string;
  readonly kernel: string;
  readonly bytes?: number;
  readonly flops?: number;
  readonly recordedAt: number;
  /** The runtime's batch the kernel was recorded into: a failed batch ran none of its kernels. */
  readonly batch: number;
}

interface Replay extends Described {
  readonly pipeline: CachedPipeline;
  readonly dispatch: readonly [number, number, number];
  /** Per storage binding: a snapshot to read, or the size of a scratch buffer to write. */
  readonly bindings: readonly (GPUBuffer | number)[];
  readonly uniforms: Uint32Array | null;
}

interface TimestampBatch {
  readonly querySet: GPUQuerySet;
  readonly kernels: Described[];
}

export class KernelProfiler {
  /** True when kernels are timed with timestamp queries; false: replayed afterwards. */
  readonly timestamps: boolean;
  private batch: TimestampBatch | null = null;
  private resolving: { batch: TimestampBatch; resolve: GPUBuffer; read: GPUBuffer; number: number } | null = null;
  private readonly replays: Replay[] = [];
  /** Per buffer: how many profiled kernels or uploads wrote it, and its latest snapshot. */
  private readonly versions = new Map<GPUBuffer, number>();
  private readonly snapshots = new Map<GPUBuffer, { version: number; copy: GPUBuffer }>();
  private readonly owned: GPUBuffer[] = [];

  constructor(
    private readonly device: GPUDevice,
    readonly session: ProfileSession,
    private readonly hooks: ProfilerHooks,
    /** The tensor device name events carry. */
    private readonly deviceName: string,
  ) {
    this.timestamps = device.features.has('timestamp-query');
  }

  /** Notes that a buffer's contents changed outside a kernel (an upload). */
  written(buffer: GPUBuffer): void {
    this.versions.set(buffer, (this.versions.get(buffer) ?? 0) + 1);
  }

  /** True when the open batch has no room for another timestamped kernel: the runtime submits it first. */
  get batchFull(): boolean {
    return this.timestamps && this.batch !== null && this.batch.kernels.length * 2 >= QUERY_CAPACITY;
  }

  /** Records one kernel launch (in place of the runtime's batched dispatch). */
  launch(launch: CompiledLaunch, name: string): void {
    // (An eager dispatch has submitted a full batch before placing its uniform words: runtime.ts.)
    if (this.batchFull) this.hooks.flush();
    const described: Described = { name, kernel: launch.label, bytes: launch.bytes, flops: launch.flops, recordedAt: performance.now(), batch: this.hooks.openBatch() };
    if (this.timestamps) {
      const encoder = this.hooks.encoder();
      this.batch ??= { querySet: this.device.createQuerySet({ type: 'timestamp', count: QUERY_CAPACITY, label: 'scorch profile' }), kernels: [] };
      const i = this.batch.kernels.push(described) - 1;
      const pass = encoder.beginComputePass({
        label: `scorch profiled ${launch.label}`,
        timestampWrites: { querySet: this.batch.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
      this.encode(pass, launch.pipeline, launch.bindGroup, launch.dispatch);
      return;
    }
    const encoder = this.hooks.encoder();
    const bindings = launch.buffers.map((b, i) => (launch.pipeline.written.has(i) ? b.size : this.snapshot(encoder, b)));
    this.encode(encoder.beginComputePass({ label: 'scorch kernels' }), launch.pipeline, launch.bindGroup, launch.dispatch);
    launch.buffers.forEach((b, i) => {
      if (launch.pipeline.written.has(i)) this.written(b);
    });
    this.replays.push({ ...described, pipeline: launch.pipeline, dispatch: launch.dispatch, bindings, uniforms: launch.uniforms ? launch.uniforms.slice() : null });
  }

  private encode(pass: GPUComputePassEncoder, pipeline: CachedPipeline, bindGroup: GPUBindGroup, dispatch: readonly [number, number, number]): void {
    pass.setPipeline(pipeline.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(dispatch[0], dispatch[1], dispatch[2]);
    pass.end();
  }

  /**
   * The buffer's snapshot, copied again when the buffer changed since. One snapshot a buffer,
   * refreshed in place: a new copy per version kept every step's parameters and intermediates
   * until the session ended (a profiled training loop grew by its whole working set each step).
   * A replay therefore reads the buffer as the session last copied it, not as its kernel saw it:
   * the same sizes and bindings, so the same work; only the values' bits can differ.
   */
  private snapshot(encoder: GPUCommandEncoder, buffer: GPUBuffer): GPUBuffer {
    const version = this.versions.get(buffer) ?? 0;
    const have = this.snapshots.get(buffer);
    if (have && have.version === version) return have.copy;
    let copy = have?.copy;
    if (!copy) {
      copy = this.device.createBuffer({ label: 'scorch profile snapshot', size: buffer.size, usage: USAGE.STORAGE | USAGE.COPY_DST });
      this.owned.push(copy);
    }
    encoder.copyBufferToBuffer(buffer, 0, copy, 0, buffer.size);
    this.snapshots.set(buffer, { version, copy });
    return copy;
  }

  /** Called with the batch's encoder just before it is submitted: resolves its timestamps. */
  beforeSubmit(encoder: GPUCommandEncoder): void {
    const batch = this.batch;
    if (!batch || batch.kernels.length === 0) return;
    const bytes = batch.kernels.length * 16;
    const resolve = this.device.createBuffer({ label: 'scorch profile resolve', size: bytes, usage: USAGE.QUERY_RESOLVE | USAGE.COPY_SRC });
    const read = this.device.createBuffer({ label: 'scorch profile read', size: bytes, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    encoder.resolveQuerySet(batch.querySet, 0, batch.kernels.length * 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, bytes);
    this.resolving = { batch, resolve, read, number: this.hooks.openBatch() };
    this.batch = null;
  }

  /**
   * The first timed batch's submission (host ms) and first tick: every batch of the session is
   * placed from it, as the device's timestamps share one clock. Placed from its own submission,
   * each batch of a long `fn` (128 kernels a batch) started inside the previous one's span, since
   * the host submits them far faster than the device runs them: events of different batches
   * overlapped on one trace thread and came out of program order.
   */
  private origin: { readonly host: number; tick?: bigint } | null = null;
  /** The batches' timestamps, read one after another so the first sets the origin's tick. */
  private reading: Promise<unknown> = Promise.resolve();

  /** Called just after a batch was submitted: reads its timestamps when they arrive. */
  afterSubmit(): void {
    const r = this.resolving;
    if (!r) return;
    this.resolving = null;
    const origin = (this.origin ??= { host: performance.now() });
    const device = this.deviceName;
    const read = this.reading.then(async (): Promise<KernelEvent[]> => {
      await r.read.mapAsync(MAP_MODE_READ);
      const ticks = new BigInt64Array(r.read.getMappedRange().slice(0));
      r.read.unmap();
      r.read.destroy();
      r.resolve.destroy();
      r.batch.querySet.destroy();
      // A batch that failed ran none of its kernels (its timestamps are whatever the set held).
      if (await this.hooks.batchFailed(r.number)) return [];
      origin.tick ??= ticks[0]!;
      return r.batch.kernels.map((k, i): KernelEvent => ({
        name: k.name, kernel: k.kernel, device, bytes: k.bytes, flops: k.flops, timing: 'timestamps',
        start: origin.host + Number(ticks[2 * i]! - origin.tick!) / 1e6,
        duration: Math.max(0, Number(ticks[2 * i + 1]! - ticks[2 * i]!) / 1e6),
      }));
    });
    this.reading = read.catch(() => undefined);
    this.session.later(read);
  }

  /**
   * After `fn`: waits for the device, replays what has to be replayed, frees the snapshots. When
   * `fn` threw (`failed`) nothing is replayed or reported, and an error of its device work is
   * left for the next operation to throw.
   */
  async finish(failed = false): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    try {
      // A kernel that did not compile is reported as the device named it, not as a failed replay.
      if (!failed) await this.hooks.settle();
      if (this.replays.length > 0 && !failed) await this.replay();
    } finally {
      for (const b of this.owned) b.destroy();
      this.owned.length = 0;
      this.snapshots.clear();
      this.replays.length = 0;
    }
    if (!failed) await this.hooks.settle();
  }

  private async roundTrip(encode: ((encoder: GPUCommandEncoder) => void) | null): Promise<number> {
    const encoder = this.device.createCommandEncoder({ label: 'scorch profile replay' });
    encode?.(encoder);
    const commands = encoder.finish();
    const t0 = performance.now();
    this.device.queue.submit([commands]);
    await this.device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  }

  private async replay(): Promise<void> {
    const baselines: number[] = [];
    for (let i = 0; i < BASELINE_RUNS; i++) baselines.push(await this.roundTrip(null));
    const baseline = median(baselines);
    // Scratch buffers by size; a kernel writing several bindings gets distinct ones.
    const scratch = new Map<number, GPUBuffer[]>();
    const events: KernelEvent[] = [];
    let clock = -Infinity;
    for (const r of this.replays.slice()) {
      // A kernel whose batch failed never ran (fn caught the error, e.g. a custom kernel that does
      // not compile, and went on): its replay would fail on the invalid pipeline, losing fn's value.
      if (r.pipeline.invalid || (await this.hooks.batchFailed(r.batch))) continue;
      const taken = new Map<number, number>();
      const entries: GPUBindGroupEntry[] = r.bindings.map((b, i) => {
        if (typeof b !== 'number') return { binding: i, resource: { buffer: b } };
        const list = scratch.get(b) ?? [];
        scratch.set(b, list);
        const n = taken.get(b) ?? 0;
        taken.set(b, n + 1);
        if (n === list.length) {
          const created = this.device.createBuffer({ label: 'scorch profile scratch', size: b, usage: USAGE.STORAGE });
          list.push(created);
          this.owned.push(created);
        }
        return { binding: i, resource: { buffer: list[n]! } };
      });
      if (r.uniforms) {
        const size = Math.ceil(Math.max(16, r.uniforms.byteLength) / 16) * 16;
        const u = this.device.createBuffer({ label: 'scorch profile uniforms', size, usage: USAGE.UNIFORM | USAGE.COPY_DST });
        this.device.queue.writeBuffer(u, 0, r.uniforms.buffer, r.uniforms.byteOffset, r.uniforms.byteLength);
        this.owned.push(u);
        entries.push({ binding: r.bindings.length, resource: { buffer: u } });
      }
      this.device.pushErrorScope('validation');
      const bindGroup = this.device.createBindGroup({ layout: r.pipeline.layout, entries, label: `replay ${r.kernel}` });
      const run = (encoder: GPUCommandEncoder) => this.encode(encoder.beginComputePass(), r.pipeline, bindGroup, r.dispatch);
      await this.roundTrip(run);
      const times: number[] = [];
      for (let i = 0; i < REPLAY_RUNS; i++) times.push(await this.roundTrip(run));
      const error = await this.device.popErrorScope();
      if (error) throw new Error(`profile: replaying kernel '${r.kernel}' failed: ${error.message}`);
      const duration = Math.max(0, median(times) - baseline);
      // Laid out back to back in the order they ran, from when each was recorded.
      const start = Math.max(r.recordedAt, clock);
      clock = start + duration;
      events.push({ name: r.name, kernel: r.kernel, device: this.deviceName, start, duration, bytes: r.bytes, flops: r.flops, timing: 'replay' });
    }
    for (const e of events) this.session.record(e);
  }
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
