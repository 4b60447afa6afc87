// Choosing where tensors live: 'cpu' (the reference backend), 'webgpu' (WGSL kernels through Dawn
// in Node; on a machine without a GPU, Mesa's llvmpipe in compatibility mode), or 'auto', which
// takes WebGPU whenever an adapter exists and the CPU otherwise. The choice becomes the default
// device, so everything the run creates lands there without passing `device` around.

import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CpuBackend, listDevices, registerBackend, setDefaultDevice } from '@scorch/tensor';
import { initWebGPU } from '@scorch/kernels';

export const BACKEND_CHOICES = ['auto', 'webgpu', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface SelectedBackend {
  /** Tensor device name: 'cpu' or 'webgpu'. */
  readonly device: string;
  /** What it is, for the report: 'cpu' or e.g. 'webgpu (llvmpipe …, opengl, compatibility)'. */
  readonly description: string;
  /** Why 'auto' fell back to the CPU, when it did. */
  readonly fallbackReason?: string;
}

/**
 * Dawn's `create`, loaded from where pnpm installed the `webgpu` package: beside @scorch/kernels
 * (its optional peer). The CLI's bundle lives in packages/cli/dist, from where a bare
 * `import('webgpu')` would not find it.
 */
async function loadDawnCreate(): Promise<((flags: string[]) => GPU) | undefined> {
  const cliRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const anchors = [
    join(cliRoot, 'package.json'),
    join(cliRoot, 'node_modules', '@scorch', 'kernels', 'package.json'),
    join(cliRoot, '..', 'kernels', 'package.json'),
  ];
  for (const anchor of anchors) {
    let path: string;
    try {
      path = createRequire(anchor).resolve('webgpu');
    } catch {
      continue;
    }
    const dawn = (await import(pathToFileURL(path).href)) as { create?: (flags: string[]) => GPU };
    if (typeof dawn.create === 'function') return dawn.create;
  }
  return undefined; // initWebGPU then tries a plain import and explains what is missing
}

/** Opens the requested backend and makes it the default device. Throws when 'webgpu' is impossible. */
export async function selectBackend(choice: BackendChoice): Promise<SelectedBackend> {
  // Bundlers may drop @scorch/tensor's registration of the CPU device as an unused side effect.
  if (!listDevices().includes('cpu')) registerBackend(new CpuBackend('cpu'));
  if (choice === 'cpu') {
    setDefaultDevice('cpu');
    return { device: 'cpu', description: 'cpu' };
  }
  try {
    const dawnCreate = await loadDawnCreate();
    const handle = await initWebGPU(dawnCreate ? { dawnCreate } : {});
    setDefaultDevice(handle.device);
    const { info } = handle;
    return { device: handle.device, description: `webgpu (${info.device || info.description || 'unknown adapter'}, ${info.backend}, ${info.featureLevel})` };
  } catch (e) {
    // Dawn throws Errors, but a rejection may carry anything: a string, undefined.
    const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0] || 'unknown error';
    if (choice === 'webgpu') throw new Error(`--backend webgpu: no WebGPU device could be opened: ${reason}`);
    setDefaultDevice('cpu');
    return { device: 'cpu', description: 'cpu', fallbackReason: reason };
  }
}
