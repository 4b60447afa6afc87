// The profiler: `profile(fn)` runs `fn` and reports every kernel it ran, per kernel name: calls,
// total and mean time, bytes moved and, for products, GFLOP/s; and a Chrome trace-event JSON
// (Perfetto and chrome://tracing open it). Backends report kernels to the active session: the
// CPU as it runs them (each timed on the host), WebGPU when the device says how long they took
// (timestamp queries where the adapter offers them; where it does not, each kernel is replayed
// alone afterwards on snapshots of its inputs and timed from submission to completion; see
// docs/extending.md).

import type { DType } from './dtype.js';
import { bytesPerElement } from './dtype.js';
import type { Backend, BackendHandle } from './backend.js';
import { type OutputInfo, type Primitive, type PrimitiveParams, primitiveCallName } from './primitives.js';
import { type Shape, sizeOf } from './shape.js';

/** How a duration was measured. */
export type KernelTiming = 'host' | 'timestamps' | 'replay';

/** One kernel run, on the time line of `performance.now()` (milliseconds). */
export interface KernelEvent {
  /** The primitive an eager kernel computes, or a compiled program's kernel name. */
  readonly name: string;
  /** The generated kernel's own label, where it differs from `name` (WebGPU pipelines). */
  readonly kernel?: string;
  readonly device: string;
  readonly start: number;
  readonly duration: number;
  /** Bytes the kernel read and wrote (its inputs and outputs), when known. */
  readonly bytes?: number;
  /** Floating-point operations (2mnk for a product), when known. */
  readonly flops?: number;
  /**
   * How the duration was measured: 'host' (timed around the call on a synchronous backend),
   * 'timestamps' (GPU timestamp queries around the kernel's pass), 'replay' (the kernel run
   * again alone after `fn`, on snapshots of its inputs, from submission to completion less an
   * empty submission's round trip).
   */
  readonly timing: KernelTiming;
}

/** Per kernel name: what `profile` reports. */
export interface KernelSummary {
  readonly name: string;
  readonly kernel?: string;
  readonly device: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  /** Bytes read and written over all calls (undefined when unknown). */
  readonly bytes?: number;
  /** GFLOP/s over all calls, for kernels that report floating-point work. */
  readonly gflops?: number;
  readonly timing: KernelEvent['timing'];
}

export interface ProfileResult<T> {
  /** What `fn` returned. */
  readonly value: T;
  readonly events: readonly KernelEvent[];
  /** One row per kernel name, the most total time first. */
  readonly kernels: readonly KernelSummary[];
  /** Wall time of `fn`, its device work included (ms). */
  readonly wallMs: number;
  /** The summary as an aligned text table. */
  table(): string;
  /** The Chrome trace-event format: `JSON.stringify` it to a file and open it in Perfetto. */
  traceEvents(): { traceEvents: object[]; displayTimeUnit: 'ms' };
}

/** What an eager operation costs, for the kernels a backend runs on its behalf. */
export interface OpCost {
  readonly name: string;
  readonly bytes: number;
  readonly flops?: number;
}

/**
 * Bytes an operation reads and writes (its inputs' and output's elements; none for `expand`,
 * a view on every backend) and its floating-point work where it is dominated by a product
 * (2·m·n·k per matmul). Elementwise flops are not counted: their cost is the bytes. Other
 * primitives are views on some backends and copies on others (permute: a view on WebGPU always,
 * on the CPU only as a transpose of a dense float array); a host-timed call whose result the
 * backend says is a view (`Backend.isView`) ran no kernel and is not reported at all.
 */
export function operationCost(prim: Primitive, inputs: readonly { shape: Shape; dtype: DType }[], out: { shape: Shape; dtype: DType }): OpCost {
  if (prim === 'expand') return { name: prim, bytes: 0 };
  let bytes = sizeOf(out.shape) * bytesPerElement(out.dtype);
  for (const x of inputs) bytes += sizeOf(x.shape) * bytesPerElement(x.dtype);
  if (prim === 'matmul') {
    const a = inputs[0]!.shape;
    const k = a[a.length - 1]!;
    return { name: prim, bytes, flops: 2 * sizeOf(out.shape) * k };
  }
  return { name: prim, bytes };
}

/** A profiling session: what backends report to while `profile` runs. */
export class ProfileSession {
  readonly events: KernelEvent[] = [];
  /**
   * The eager operation being executed, set around `backend.execute`: a backend that reports its
   * own kernels names them after it and charges its bytes and flops to its first kernel.
   */
  operation: OpCost | null = null;
  /** Set when the session starts to finish (`fn` returned or threw): work from then on is not profiled. */
  closed = false;
  private readonly pending: Promise<unknown>[] = [];
  private readonly syncs: ((failed: boolean) => Promise<void>)[] = [];

  record(event: KernelEvent): void {
    this.events.push(event);
  }

  /** Events a device will report later (its timings arrive asynchronously). */
  later(events: Promise<readonly KernelEvent[]>): void {
    this.pending.push(events.then((list) => this.events.push(...list)));
  }

  /**
   * A device's way to finish its queued work before the session ends, and to stop profiling and
   * free what it holds for the session. `failed`: `fn` threw, so the session reports nothing and
   * the device need not time what it recorded.
   */
  onFinish(sync: (failed: boolean) => Promise<void>): void {
    if (!this.syncs.includes(sync)) this.syncs.push(sync);
  }

  /** @internal Waits for the devices and for every late report. */
  async finish(failed = false): Promise<void> {
    this.closed = true;
    for (const s of this.syncs) await s(failed);
    await Promise.all(this.pending);
  }
}

/**
 * `backend.execute` while `profile` runs: timed on the host for a synchronous backend, or with
 * the operation named for a backend that reports its own kernels' device times.
 */
export function executeProfiled<H extends BackendHandle, P extends Primitive>(
  session: ProfileSession, backend: Backend<H>, prim: P, handles: readonly H[],
  inputs: readonly { shape: Shape; dtype: DType }[], params: PrimitiveParams[P], out: OutputInfo,
): H {
  const name = primitiveCallName(prim, params);
  const cost = { ...operationCost(prim, inputs, out), name };
  if (backend.reportsKernels) {
    session.operation = cost;
    try {
      return backend.execute(prim, handles, params, out);
    } finally {
      session.operation = null;
    }
  }
  const start = performance.now();
  const handle = backend.execute(prim, handles, params, out);
  const duration = performance.now() - start;
  // A view ran no kernel (as WebGPU's views make no dispatch): nothing to report.
  if (backend.isView?.(handle)) return handle;
  session.record({ name, device: backend.name, start, duration, bytes: cost.bytes, flops: cost.flops, timing: 'host' });
  return handle;
}

let active: ProfileSession | null = null;

/** The session of the `profile` call in progress, if any (backends report to it). */
export function profilerSession(): ProfileSession | null {
  // While the session finishes (WebGPU replays its kernels), other work is not added to it: a
  // replay loop that took in the kernels of work running beside it never ended.
  return active && !active.closed ? active : null;
}

/**
 * Runs `fn` (it may be async) with the profiler on and reports the kernels it ran. The profiler
 * is process-wide: kernels that other work runs while an async `fn` awaits are reported too. Profiling
 * changes how work is scheduled (a GPU without timestamp queries runs its kernels one
 * submission at a time), so profile to see where time goes, not to time a whole step.
 */
export async function profile<T>(fn: () => T | Promise<T>): Promise<ProfileResult<T>> {
  if (typeof fn !== 'function') throw new TypeError(`profile: expected a function, got ${typeof fn}`);
  // An options object (a timing mode, a filter) would be ignored without a word: there are none.
  if (arguments.length > 1) throw new TypeError(`profile: takes one argument, the function to profile (it has no options), got ${arguments.length}`);
  if (active) throw new Error('profile: a profile is already running; profiles do not nest');
  const session = new ProfileSession();
  active = session;
  const t0 = performance.now();
  let value: T;
  try {
    try {
      value = await fn();
    } catch (e) {
      // The devices still stop profiling and free what they hold; fn's error is the one thrown.
      await session.finish(true).catch(() => undefined);
      throw e;
    }
    await session.finish();
  } finally {
    active = null;
  }
  const wallMs = performance.now() - t0;
  const events = [...session.events].sort((a, b) => a.start - b.start);
  const kernels = summarise(events);
  return { value, events, kernels, wallMs, table: () => formatTable(kernels, wallMs), traceEvents: () => toTraceEvents(events) };
}

function summarise(events: readonly KernelEvent[]): KernelSummary[] {
  const groups = new Map<string, KernelEvent[]>();
  for (const e of events) {
    const key = `${e.device}\u0000${e.name}\u0000${e.kernel ?? ''}`;
    (groups.get(key) ?? groups.set(key, []).get(key)!).push(e);
  }
  const rows: KernelSummary[] = [];
  for (const list of groups.values()) {
    const totalMs = list.reduce((a, e) => a + e.duration, 0);
    const bytes = list.every((e) => e.bytes !== undefined) ? list.reduce((a, e) => a + e.bytes!, 0) : undefined;
    const flops = list.some((e) => e.flops) ? list.reduce((a, e) => a + (e.flops ?? 0), 0) : undefined;
    rows.push({
      name: list[0]!.name, kernel: list[0]!.kernel, device: list[0]!.device, calls: list.length, totalMs, meanMs: totalMs / list.length, bytes,
      gflops: flops !== undefined && totalMs > 0 ? flops / (totalMs * 1e6) : undefined, timing: list[0]!.timing,
    });
  }
  return rows.sort((a, b) => b.totalMs - a.totalMs);
}

function formatTable(rows: readonly KernelSummary[], wallMs: number): string {
  const total = rows.reduce((a, r) => a + r.totalMs, 0);
  const header = ['kernel', 'device', 'calls', 'total ms', 'mean ms', '%', 'MB moved', 'GFLOP/s'];
  const body = rows.map((r) => [
    r.kernel && r.kernel !== r.name ? `${r.name} [${r.kernel}]` : r.name, r.device, String(r.calls), r.totalMs.toFixed(3), r.meanMs.toFixed(3), total > 0 ? ((100 * r.totalMs) / total).toFixed(1) : '0.0',
    r.bytes === undefined ? '' : (r.bytes / 1e6).toFixed(2), r.gflops === undefined ? '' : r.gflops.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 || i === 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const timings = [...new Set(rows.map((r) => r.timing))].join(', ');
  return [
    line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line),
    `${rows.reduce((a, r) => a + r.calls, 0)} kernel runs, ${total.toFixed(3)} ms in kernels, ${wallMs.toFixed(1)} ms wall; timing: ${timings || 'none'}`,
  ].join('\n');
}

/**
 * One thread per device, one complete ('X') event per kernel run. Times are in microseconds as
 * the format wants, unrounded (fractions are valid JSON numbers, and Perfetto and chrome://tracing
 * read them): rounding each start and duration apart made back-to-back kernels overlap by a
 * microsecond and gave a kernel shorter than half a microsecond a whole one.
 */
function toTraceEvents(events: readonly KernelEvent[]): { traceEvents: object[]; displayTimeUnit: 'ms' } {
  const devices = [...new Set(events.map((e) => e.device))];
  const traceEvents: object[] = devices.map((d, i) => ({ name: 'thread_name', ph: 'M', pid: 1, tid: i + 1, args: { name: d } }));
  for (const e of events) {
    traceEvents.push({
      name: e.name, cat: 'kernel', ph: 'X', pid: 1, tid: devices.indexOf(e.device) + 1,
      ts: e.start * 1000, dur: e.duration * 1000,
      args: { kernel: e.kernel, bytes: e.bytes, flops: e.flops, timing: e.timing },
    });
  }
  return { traceEvents, displayTimeUnit: 'ms' };
}
