// WebGPU for the peers in Node. TensorFlow.js and jax-js look for `navigator.gpu`, as in a browser,
// and ask for a core-feature adapter; in Node there is no navigator, and on a machine without a GPU
// Dawn's only adapter is Mesa's llvmpipe behind its OpenGL backend, which offers WebGPU's
// compatibility feature level alone. This helper repeats what @scorch/kernels does when it finds
// its device (src/device.ts), so that all engines run on the same adapter:
//
//   1. Dawn's default backends (Vulkan, Metal, D3D12) with core features, when an adapter exists;
//   2. otherwise EGL_PLATFORM=surfaceless (read by Mesa's EGL when Dawn's OpenGL backend starts, so
//      it must be set before `create`), then `create(['backend=opengl'])` and a
//      compatibility-mode adapter;
//
// and then installs Dawn's globals (GPUBufferUsage, GPUMapMode, …, which TensorFlow.js uses as a
// browser would) and a `navigator.gpu` whose requestAdapter adds the feature level found. Call it
// before importing @tensorflow/tfjs-backend-webgpu (it probes navigator.gpu when it loads) or
// calling jax-js's init('webgpu').

export type FeatureLevel = 'core' | 'compatibility';

export interface PeerGpu {
  gpu: GPU;
  featureLevel: FeatureLevel;
  adapter: AdapterText & { backend: string };
}

interface DawnModule {
  create: (flags: string[]) => GPU;
  globals: object;
}

/** The adapter's description fields, as Dawn and @scorch/kernels (AdapterSummary) give them. */
export interface AdapterText {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

/** CPU-based adapters, by the name one of the adapter's fields carries (the test @scorch/kernels' softwareAdapter makes). */
const SOFTWARE_ADAPTER = /llvmpipe|swiftshader|lavapipe|warp|software/i;

/**
 * What a WebGPU engine computes with, for the engines table: a software adapter (Mesa's llvmpipe
 * through OpenGL, or as lavapipe through Vulkan; SwiftShader; WARP) runs its workgroups on every
 * core of the CPU, '<name> threads (all cores)'; any other adapter is a 'GPU'. Decided by the
 * adapter, not by the API Dawn drives it through.
 */
export function webgpuThreads(adapter: AdapterText): string {
  const software = `${adapter.device} ${adapter.description} ${adapter.vendor} ${adapter.architecture}`.match(SOFTWARE_ADAPTER);
  return software ? `${software[0]} threads (all cores)` : 'GPU';
}

// Dawn instances stay referenced for the life of the process: the collector finalising one while
// another is in use deadlocks Dawn's event processing (the same finding as in @scorch/kernels).
const retained: GPU[] = [];

let installed: Promise<PeerGpu> | undefined;

/** Finds Dawn's adapter as @scorch/kernels does and exposes it as `navigator.gpu`. Idempotent. */
export function installNavigatorGpu(): Promise<PeerGpu> {
  installed ??= (async () => {
    const specifier = 'webgpu';
    let dawn: DawnModule;
    try {
      dawn = (await import(specifier)) as DawnModule;
    } catch (e) {
      throw new Error(`installNavigatorGpu: the 'webgpu' package (Dawn for Node) did not load: ${(e as Error).message}`);
    }
    Object.assign(globalThis, dawn.globals);

    let gpu = dawn.create([]);
    retained.push(gpu);
    let featureLevel: FeatureLevel = 'core';
    let backend = process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';
    let adapter = await gpu.requestAdapter();
    if (!adapter) {
      process.env.EGL_PLATFORM = 'surfaceless';
      gpu = dawn.create(['backend=opengl']);
      retained.push(gpu);
      featureLevel = 'compatibility';
      backend = 'opengl';
      adapter = await gpu.requestAdapter({ featureLevel });
    }
    if (!adapter) {
      throw new Error('installNavigatorGpu: Dawn found no adapter (neither core nor, over OpenGL, compatibility); on Linux without a GPU run scripts/setup-webgpu.sh');
    }

    const requestAdapter = gpu.requestAdapter.bind(gpu);
    const navigatorGpu = {
      requestAdapter: (options: GPURequestAdapterOptions = {}) => requestAdapter({ ...options, featureLevel }),
      getPreferredCanvasFormat: () => 'rgba8unorm',
      wgslLanguageFeatures: gpu.wgslLanguageFeatures,
    };
    const existing = (globalThis as { navigator?: object }).navigator ?? {};
    Object.defineProperty(globalThis, 'navigator', {
      value: { userAgent: 'node', ...existing, gpu: navigatorGpu },
      configurable: true,
      writable: true,
    });
    const info = adapter.info;
    return {
      gpu,
      featureLevel,
      adapter: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, backend },
    };
  })();
  return installed;
}
