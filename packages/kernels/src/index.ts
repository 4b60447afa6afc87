// @scorch/kernels: the WebGPU backend. `await initWebGPU()` finds a device (Dawn in Node, with a
// compatibility-mode fallback over Mesa llvmpipe; navigator.gpu in a browser) and registers it
// as tensor device 'webgpu', after which `tensor(data, { device: 'webgpu' })` lives on the GPU.

// `preserve` keeps this line in dist/index.d.ts: the declarations name GPUDevice and its kin,
// which a project type-checking them finds in @webgpu/types (an optional peer dependency).
/// <reference types="@webgpu/types" preserve="true" />

import { checkOptions, getBackend, listDevices, registerBackend } from '@scorch/tensor';
import { WebGPUBackend } from './backend.js';
import { type AdapterSummary, DEVICE_REQUEST_DEFAULTS, DEVICE_REQUEST_KEYS, type DeviceRequest, acquireDevice, checkDeviceRequest } from './device.js';
import { GpuRuntime, RUNTIME_DEFAULTS, RUNTIME_OPTION_KEYS, type RuntimeOptions, checkRuntimeOptions } from './runtime.js';

export interface InitWebGPUOptions extends DeviceRequest, RuntimeOptions {
  /** Tensor device name to register. Default 'webgpu'. */
  name?: string;
}

export interface WebGPUHandle {
  /** Tensor device name: pass it as `{ device }` when creating tensors. */
  device: string;
  info: AdapterSummary;
  gpu: GPUDevice;
  backend: WebGPUBackend;
  runtime: GpuRuntime;
}

const INIT_OPTION_KEYS: readonly string[] = ['name', ...DEVICE_REQUEST_KEYS, ...RUNTIME_OPTION_KEYS];

type DeviceOptions = Omit<InitWebGPUOptions, 'name'>;

/** What a device was opened with, defaults filled in, to compare later calls against. */
function effectiveOptions(opts: DeviceOptions): Record<string, unknown> {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return { ...DEVICE_REQUEST_DEFAULTS, ...RUNTIME_DEFAULTS, ...given };
}

function describeOption(value: unknown): string {
  if (value === undefined) return 'unset';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') return 'an object';
  return JSON.stringify(value);
}

/** Throws when `opts` asks for an option value the open device `name` was not opened with. */
function checkSameOptions(name: string, opened: DeviceOptions, opts: InitWebGPUOptions): void {
  const was = effectiveOptions(opened);
  for (const [key, value] of Object.entries(opts)) {
    if (key === 'name' || value === undefined || was[key] === value) continue;
    // Two functions or two objects describe alike: say that this one is another.
    const isReference = (v: unknown) => typeof v === 'function' || (typeof v === 'object' && v !== null);
    const asked = isReference(value) && isReference(was[key]) ? `a different ${typeof value === 'function' ? 'function' : 'object'}` : describeOption(value);
    throw new Error(
      `initWebGPU: device '${name}' is already open with ${key} = ${describeOption(was[key])}; this call asks for ${key} = ${asked}. ` +
        `Options take effect when a device opens: omit them to share the open device, or pass another name to open a second one.`,
    );
  }
}

/** The entries of `opts` under `keys`. */
function pick<T extends object, K extends keyof T>(opts: T, keys: readonly K[]): Pick<T, K> {
  return Object.fromEntries(keys.filter((k) => k in opts).map((k) => [k, opts[k]])) as Pick<T, K>;
}

interface Opening {
  handle: Promise<WebGPUHandle>;
  opts: DeviceOptions;
}

const initialised = new Map<string, Opening>();

/**
 * Opens a WebGPU device and registers it as a tensor device. Idempotent per name: later calls
 * return the open device's handle until that device is lost, when the next call opens a new one
 * (with that call's options). Options take effect when a device opens: a later call may omit
 * them, but an option it gives must equal the open device's (the default counts when the first
 * call omitted it), otherwise it throws; pass another `name` for a second device with other
 * options. Unknown keys and values out of range throw before anything is opened, and so does a
 * name registered to a backend that is not WebGPU ('cpu'). Throws, saying what was tried, when
 * there is no adapter.
 */
export async function initWebGPU(opts: InitWebGPUOptions = {}): Promise<WebGPUHandle> {
  checkOptions('initWebGPU', opts, INIT_OPTION_KEYS);
  const name = opts.name ?? 'webgpu';
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`initWebGPU: name must be a non-empty string (the tensor device name), got ${name === '' ? 'an empty string' : describeOption(name)}`);
  }
  checkDeviceRequest('initWebGPU', opts);
  checkRuntimeOptions('initWebGPU', opts);
  if (listDevices().includes(name) && !(getBackend(name) instanceof WebGPUBackend)) {
    throw new Error(`initWebGPU: the device name '${name}' belongs to a registered backend that is not WebGPU; pass another name (the default is 'webgpu')`);
  }
  const { name: _name, ...deviceOptions } = opts;
  const existing = initialised.get(name);
  if (existing) {
    const handle = await existing.handle;
    if (!handle.runtime.isLost) {
      checkSameOptions(name, existing.opts, opts);
      return handle;
    }
    // A lost device is replaced (and re-registered) below, once, however many callers saw it lost.
    if (initialised.get(name) === existing) initialised.delete(name);
  }
  let opening = initialised.get(name);
  if (opening) {
    checkSameOptions(name, opening.opts, opts);
  } else {
    const handle = (async () => {
      // Each part takes its own keys (and rejects the other's).
      const acquired = await acquireDevice(pick(deviceOptions, DEVICE_REQUEST_KEYS));
      const runtime = new GpuRuntime(acquired, pick(deviceOptions, RUNTIME_OPTION_KEYS));
      const backend = new WebGPUBackend(name, runtime, acquired.info);
      registerBackend(backend);
      return { device: name, info: acquired.info, gpu: acquired.device, backend, runtime };
    })();
    opening = { handle, opts: deviceOptions };
    initialised.set(name, opening);
    // A failed attempt may be retried (e.g. after installing drivers).
    handle.catch(() => {
      if (initialised.get(name) === opening) initialised.delete(name);
    });
  }
  return opening.handle;
}

export { WebGPUBackend } from './backend.js';
export { SOFTWARE_KERNEL_EQUATIONS_MAX, SOFTWARE_TRANSCENDENTALS_MAX, VARIANT_LIMIT, WebGPUCompiledProgram } from './compiler/executable.js';
export { compiledReductionDepth } from './compiler/lower.js';
export type { GpuHandle } from './backend.js';
export { GpuRuntime, sizeClass } from './runtime.js';
export type { GpuStorage, RuntimeOptions } from './runtime.js';
export { acquireDevice } from './device.js';
export type { AdapterSummary, AcquiredDevice, DeviceRequest, FeatureLevel } from './device.js';
export { ELEMENTWISE_EXPRESSIONS, castExpression, elementwiseKernel, fillKernel } from './wgsl/elementwise.js';
export type { ElementwiseOp, ElementwiseParams } from './wgsl/elementwise.js';
export { reduceKernel, reductionPlan, REDUCE_THREADS } from './wgsl/reduce.js';
export {
  matmulKernel, matmulKSpans, MATMUL_K_SPAN, chooseTiling, LARGE_TILING, SMALL_TILING, SKINNY_TILING, vec4Layout, vec4MatmulKernel, chooseVec4Blocking, VEC4_BLOCKING, MIN_WORKGROUPS, softwareAdapterMinWorkgroups,
} from './wgsl/matmul.js';
export type { MatmulTiling, MatmulParams, Vec4Blocking, Vec4MatmulParams } from './wgsl/matmul.js';
export { padKernel, gatherKernel, scatterAddKernel, scatterAddSpans, SCATTER_ADD_SPAN } from './wgsl/movement.js';
export type { ScatterAddSpan } from './wgsl/movement.js';
export { randomKernel, PHILOX_WGSL } from './wgsl/random.js';
export { argReduceKernel, axisSpans, scanKernel, AXIS_SPAN } from './wgsl/scan.js';
export type { AxisSpan } from './wgsl/scan.js';
export { mathPrelude } from './wgsl/mathLibrary.js';
export type { KernelSpec } from './wgsl/common.js';
export { collapseAxes, isContiguous, rowMajorStrides } from './layout.js';
export type { Layout } from './layout.js';
