// The Backend interface: what a device must provide for tensors to live on it. It is small on
// purpose: one `execute` per primitive call, plus upload, fill, read and free. Shapes and dtypes
// arrive already inferred and checked (see primitives.ts), so a backend only computes.

import type { DType, TypedArray } from './dtype.js';
import type { OutputInfo, Primitive, PrimitiveParams } from './primitives.js';
import type { CompiledProgram, Program } from './program.js';
import type { Shape } from './shape.js';

/** A backend's handle to a tensor's storage. Opaque outside the backend that made it. */
export type BackendHandle = object;

export interface BackendMemory {
  /** Live storage allocations (buffers) the backend holds for tensors. */
  buffers: number;
  /** Bytes held by those allocations. */
  bytes: number;
}

export interface Backend<H extends BackendHandle = BackendHandle> {
  /** Device name that tensors report as `device` ('cpu', 'webgpu', ...). */
  readonly name: string;
  /** Dtypes this backend can store and compute with. */
  readonly dtypes: readonly DType[];
  /** Copies host data into a new handle (the array is not retained). */
  upload(data: TypedArray, shape: Shape, dtype: DType): H;
  /** A handle filled with one value. */
  full(shape: Shape, value: number, dtype: DType): H;
  /** Runs one primitive. Inputs are live handles of this backend; the output is new. */
  execute<P extends Primitive>(prim: P, inputs: readonly H[], params: PrimitiveParams[P], out: OutputInfo): H;
  /** Reads a handle back to the host. */
  read(handle: H): Promise<TypedArray>;
  /** Synchronous read, where the device allows it (the CPU does; WebGPU does not). */
  readSync?(handle: H): TypedArray;
  /** Frees a handle's storage. Idempotent. */
  dispose(handle: H): void;
  memory(): BackendMemory;
  /**
   * Frees the storage the backend keeps for reuse and no tensor holds (freed tensors' arrays or
   * buffers, scratch copies); returns the bytes freed. Live tensors and compiled programs keep
   * theirs. Later work allocates anew.
   */
  trimPool?(): number;
  /** Waits for all queued work (no-op on synchronous backends). */
  sync?(): Promise<void>;
  /**
   * Prepares a traced program to run many times (fused kernels, a static buffer plan...).
   * Without it, programs run through `interpretProgram`: op by op through `execute`.
   */
  compile?(program: Program): CompiledProgram<H>;
  /**
   * True when the backend reports its kernels to the profiler itself (WebGPU, from device
   * timings). Otherwise, while `profile` runs, each `execute` is timed on the host.
   */
  readonly reportsKernels?: boolean;
  /**
   * True when `handle`, just returned by `execute`, is a view of an input's storage: the call read
   * and wrote nothing (the CPU's broadcast views from expand, transpose views from permute and
   * aliases from reshape). The profiler's host timing then reports no kernel for the call, as a
   * view on WebGPU makes no dispatch; `operationCost` gives what the primitive moves when it copies.
   */
  isView?(handle: H): boolean;
}

const backends = new Map<string, Backend>();
let defaultDevice = 'cpu';

/** Makes a backend available as a tensor device under `backend.name`. */
export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

/**
 * The backend registered as `device`; an unknown name throws, listing the registered devices,
 * under `where` (the function the caller wrote) when given.
 */
export function getBackend(device: string, where?: string): Backend {
  const b = backends.get(device);
  if (!b) {
    throw new Error(`${where ? `${where}: ` : ''}unknown device '${device}'; registered devices: ${[...backends.keys()].join(', ') || 'none'}`);
  }
  return b;
}

/** Names of the registered tensor devices (`cpu`, and `webgpu` after `initWebGPU()`). */
export function listDevices(): string[] {
  return [...backends.keys()];
}

/** Device used by creation functions when none is given. */
export function setDefaultDevice(device: string): void {
  getBackend(device);
  defaultDevice = device;
}

/** Device the creation functions use when none is given: `'cpu'` until `setDefaultDevice`. */
export function getDefaultDevice(): string {
  return defaultDevice;
}
