// @scorch/kernels: the WebGPU backend. `await initWebGPU()` finds a device (Dawn in Node, with a
// compatibility-mode fallback over Mesa llvmpipe; navigator.gpu in a browser) and registers it
// as tensor device 'webgpu', after which `tensor(data, { device: 'webgpu' })` lives on the GPU.

/// <reference types="@webgpu/types" />

import { registerBackend } from '@scorch/tensor';
import { WebGPUBackend } from './backend.js';
import { type AdapterSummary, type DeviceRequest, acquireDevice } from './device.js';
import { GpuRuntime, type RuntimeOptions } from './runtime.js';

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

const initialised = new Map<string, Promise<WebGPUHandle>>();

/**
 * Opens a WebGPU device and registers it as a tensor device. Idempotent per name: later calls
 * return the first call's handle (their other options are ignored) until that device is lost,
 * when the next call opens a new one. Throws, saying what was tried, when there is no adapter.
 */
export async function initWebGPU(opts: InitWebGPUOptions = {}): Promise<WebGPUHandle> {
  const name = opts.name ?? 'webgpu';
  const existing = initialised.get(name);
  if (existing) {
    const handle = await existing;
    if (!handle.runtime.isLost) return handle;
    // A lost device is replaced (and re-registered) below, once, however many callers saw it lost.
    if (initialised.get(name) === existing) initialised.delete(name);
  }
  let pending = initialised.get(name);
  if (!pending) {
    pending = (async () => {
      const acquired = await acquireDevice(opts);
      const runtime = new GpuRuntime(acquired, opts);
      const backend = new WebGPUBackend(name, runtime, acquired.info);
      registerBackend(backend);
      return { device: name, info: acquired.info, gpu: acquired.device, backend, runtime };
    })();
    initialised.set(name, pending);
    // A failed attempt may be retried (e.g. after installing drivers).
    pending.catch(() => initialised.delete(name));
  }
  return pending;
}

export { WebGPUBackend } from './backend.js';
export type { GpuHandle } from './backend.js';
export { GpuRuntime, sizeClass } from './runtime.js';
export type { GpuStorage, RuntimeOptions } from './runtime.js';
export { acquireDevice } from './device.js';
export type { AdapterSummary, AcquiredDevice, DeviceRequest, FeatureLevel } from './device.js';
export { ELEMENTWISE_EXPRESSIONS, castExpression, elementwiseKernel, fillKernel } from './wgsl/elementwise.js';
export type { ElementwiseOp, ElementwiseParams } from './wgsl/elementwise.js';
export { reduceKernel, reductionPlan, REDUCE_THREADS } from './wgsl/reduce.js';
export {
  matmulKernel, chooseTiling, LARGE_TILING, SMALL_TILING, SKINNY_TILING, vec4Layout, vec4MatmulKernel, chooseVec4Blocking, VEC4_BLOCKING,
} from './wgsl/matmul.js';
export type { MatmulTiling, MatmulParams, Vec4Blocking, Vec4MatmulParams } from './wgsl/matmul.js';
export { padKernel, gatherKernel, scatterAddKernel, scatterAddSpans, SCATTER_ADD_SPAN } from './wgsl/movement.js';
export type { ScatterAddSpan } from './wgsl/movement.js';
export { randomKernel, PHILOX_WGSL } from './wgsl/random.js';
export { mathPrelude } from './wgsl/mathLibrary.js';
export type { KernelSpec } from './wgsl/common.js';
export { collapseAxes, isContiguous, rowMajorStrides } from './layout.js';
export type { Layout } from './layout.js';
