// Finding a WebGPU device: `navigator.gpu` in a browser, Dawn (the `webgpu` npm package) in
// Node. In Node a core-feature adapter (Vulkan, Metal, D3D12) is preferred; on a machine without
// a GPU the fallback is Dawn's OpenGL backend over Mesa llvmpipe, which only offers WebGPU's
// compatibility feature level, so every kernel in this package is written to run there.

/// <reference types="@webgpu/types" />

import { checkBoolean, checkOneOf, checkOptions } from '@scorch/tensor';

export type FeatureLevel = 'core' | 'compatibility';

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  /** Adapter's device string (e.g. 'llvmpipe-llvm-15-0-6-256-bits-'). */
  device: string;
  description: string;
  /** The native API Dawn drives: 'vulkan', 'metal', 'd3d12', 'opengl', or 'browser'. */
  backend: string;
  featureLevel: FeatureLevel;
}

export interface DeviceRequest {
  /** A `GPU` object to use instead of `navigator.gpu` or Dawn (e.g. one you created yourself). */
  gpu?: GPU;
  /** Dawn's `create` function, when the `webgpu` package is not resolvable from this module. */
  dawnCreate?: (flags: string[]) => GPU;
  /** Skip the core-feature attempt and go straight to the compatibility fallback. Default false. */
  forceCompatibility?: boolean;
  /**
   * 'adapter' (default) raises the limits the kernels benefit from to what the adapter offers;
   * 'defaults' keeps WebGPU's defaults for the feature level (to check that everything runs there).
   */
  limits?: 'adapter' | 'defaults';
}

/** Every DeviceRequest key (the `satisfies` keeps the list complete). */
export const DEVICE_REQUEST_KEYS = Object.keys({
  gpu: true, dawnCreate: true, forceCompatibility: true, limits: true,
} satisfies Record<keyof DeviceRequest, true>) as (keyof DeviceRequest)[];

/** The documented defaults of the DeviceRequest options that have one. */
export const DEVICE_REQUEST_DEFAULTS = { forceCompatibility: false, limits: 'adapter' } as const satisfies DeviceRequest;

const LIMITS_CHOICES = ['adapter', 'defaults'] as const;

/** Checks the values of a DeviceRequest (its keys are the caller's to check). */
export function checkDeviceRequest(where: string, req: DeviceRequest): void {
  if (req.gpu !== undefined && (req.gpu === null || typeof (req.gpu as { requestAdapter?: unknown }).requestAdapter !== 'function')) {
    throw new TypeError(`${where}: gpu must be a GPU object (with requestAdapter), e.g. navigator.gpu or Dawn's create([]), got ${req.gpu === null ? 'null' : typeof req.gpu}`);
  }
  if (req.dawnCreate !== undefined && typeof req.dawnCreate !== 'function') {
    throw new TypeError(`${where}: dawnCreate must be Dawn's create(flags) function (import { create } from 'webgpu'), got ${typeof req.dawnCreate}`);
  }
  checkBoolean(where, 'forceCompatibility', req.forceCompatibility);
  if (req.limits !== undefined) checkOneOf(where, 'limits', req.limits, LIMITS_CHOICES);
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  info: AdapterSummary;
}

/** Limits the kernels want raised above the (small) compatibility defaults, when the adapter allows. */
const WANTED_LIMITS = [
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxUniformBufferBindingSize',
] as const;

interface DawnModule {
  create: (flags: string[]) => GPU;
}

/**
 * Every Dawn instance this module creates, kept for the life of the process: when the garbage
 * collector finalises an instance (e.g. the unused one from a failed core attempt) while another
 * is in use, Dawn's event processing deadlocks or aborts ('std::system_error: Invalid argument';
 * observed with webgpu 0.6.2 over OpenGL).
 */
const retainedInstances: GPU[] = [];

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

async function loadDawn(): Promise<DawnModule> {
  // A variable specifier keeps browser bundlers from trying to resolve the Node-only package.
  const specifier = 'webgpu';
  try {
    return (await import(/* @vite-ignore */ specifier)) as DawnModule;
  } catch (e) {
    throw new Error(
      `initWebGPU: could not load the 'webgpu' package (Dawn for Node): ${(e as Error).message}. ` +
        `Install it next to @scorch/kernels (it is an optional peer dependency), or pass { dawnCreate } or { gpu }.`,
    );
  }
}

function backendName(info: GPUAdapterInfo, flags: readonly string[]): string {
  const named = flags.find((f) => f.startsWith('backend='));
  if (named) return named.slice('backend='.length);
  const text = `${info.description} ${info.device} ${info.vendor}`.toLowerCase();
  if (text.includes('vulkan') || text.includes('swiftshader')) return 'vulkan';
  if (text.includes('metal') || text.includes('apple')) return 'metal';
  if (text.includes('d3d') || text.includes('direct3d')) return 'd3d12';
  if (text.includes('opengl')) return 'opengl';
  if (!isNode) return 'browser';
  // Dawn's default backend per platform.
  return process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';
}

function summarise(adapter: GPUAdapter, backend: string, featureLevel: FeatureLevel): AdapterSummary {
  const info = adapter.info;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    backend,
    featureLevel,
  };
}

function limitsToRequest(adapter: GPUAdapter): Record<string, number> {
  const limits: Record<string, number> = {};
  const supported = adapter.limits as unknown as Record<string, number | undefined>;
  for (const name of WANTED_LIMITS) {
    const v = supported[name];
    if (typeof v === 'number') limits[name] = v;
  }
  return limits;
}

interface Attempt {
  gpu: GPU;
  flags: string[];
  options: GPURequestAdapterOptions;
  featureLevel: FeatureLevel;
  what: string;
}

/** Finds an adapter (core first, then compatibility) and opens a device with raised limits. */
export async function acquireDevice(req: DeviceRequest = {}): Promise<AcquiredDevice> {
  checkOptions('acquireDevice', req, DEVICE_REQUEST_KEYS);
  checkDeviceRequest('acquireDevice', req);
  const tried: string[] = [];

  const attempts: (() => Attempt | null)[] = [];
  if (req.gpu) {
    const gpu = req.gpu;
    retainedInstances.push(gpu);
    attempts.push(() => (req.forceCompatibility ? null : { gpu, flags: [], options: {}, featureLevel: 'core', what: 'the given GPU object, core features' }));
    attempts.push(() => ({ gpu, flags: [], options: { featureLevel: 'compatibility' }, featureLevel: 'compatibility', what: 'the given GPU object, compatibility mode' }));
  } else if (!isNode && typeof navigator !== 'undefined' && 'gpu' in navigator && navigator.gpu) {
    const gpu = navigator.gpu;
    attempts.push(() => (req.forceCompatibility ? null : { gpu, flags: [], options: {}, featureLevel: 'core', what: 'navigator.gpu, core features' }));
    attempts.push(() => ({ gpu, flags: [], options: { featureLevel: 'compatibility' }, featureLevel: 'compatibility', what: 'navigator.gpu, compatibility mode' }));
  } else if (isNode) {
    let create = req.dawnCreate;
    if (!create) {
      create = (await loadDawn()).create;
    }
    const make = (flags: string[]): GPU => {
      // Dawn rounds timestamp queries down to 2^16 ns by default (a browser's defence against
      // timing attacks); the profiler wants the device's own resolution.
      const gpu = create!([...flags, 'disable-dawn-features=timestamp_quantization']);
      retainedInstances.push(gpu);
      return gpu;
    };
    attempts.push(() => (req.forceCompatibility ? null : { gpu: make([]), flags: [], options: {}, featureLevel: 'core', what: 'Dawn default backends (Vulkan/Metal/D3D12), core features' }));
    attempts.push(() => {
      // Mesa's EGL reads this when the OpenGL backend initialises: with no display server, the
      // surfaceless platform is the one that works, and it must be set before `create`.
      process.env.EGL_PLATFORM = 'surfaceless';
      return {
        gpu: make(['backend=opengl']),
        flags: ['backend=opengl'],
        options: { featureLevel: 'compatibility' },
        featureLevel: 'compatibility',
        what: "Dawn OpenGL backend (EGL_PLATFORM=surfaceless, e.g. Mesa llvmpipe), compatibility mode",
      };
    });
  } else {
    throw new Error('initWebGPU: no WebGPU here: navigator.gpu is missing and this is not Node (where the webgpu package would be used)');
  }

  for (const next of attempts) {
    const attempt = next();
    if (!attempt) continue;
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await attempt.gpu.requestAdapter(attempt.options);
    } catch (e) {
      tried.push(`${attempt.what}: requestAdapter threw ${(e as Error).message}`);
      continue;
    }
    if (!adapter) {
      tried.push(`${attempt.what}: no adapter`);
      continue;
    }
    const level: FeatureLevel = attempt.featureLevel === 'compatibility' && !adapter.features.has('core-features-and-limits') ? 'compatibility' : 'core';
    const limits = req.limits ?? DEVICE_REQUEST_DEFAULTS.limits;
    const requiredLimits = limits === 'defaults' ? {} : limitsToRequest(adapter);
    // Timestamp queries let the profiler time each kernel on the device (profiling.ts).
    const requiredFeatures: GPUFeatureName[] = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'scorch' });
    } catch (e) {
      // An adapter whose device cannot be made (a broken driver) is one more failed attempt: the
      // next one (compatibility mode, Dawn's OpenGL backend) may work. It threw past them before.
      tried.push(`${attempt.what}: requestDevice threw ${(e as Error).message}`);
      continue;
    }
    return {
      device,
      adapter,
      info: summarise(adapter, backendName(adapter.info, attempt.flags), level),
    };
  }
  throw new Error(
    `initWebGPU: no WebGPU adapter found. Tried: ${tried.join('; ')}. ` +
      'On Linux without a GPU, install EGL and Mesa (scripts/setup-webgpu.sh: libegl1 libegl-mesa0 libgl1-mesa-dri) ' +
      'so Dawn can use llvmpipe through OpenGL, or a Vulkan driver for a core-feature adapter.',
  );
}
