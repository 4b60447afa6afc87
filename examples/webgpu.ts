// The WebGPU device the examples run on, or undefined (after a line saying why) to run on the CPU.
// Dawn (the `webgpu` package) is installed beside @scorch/kernels, its optional peer; it is found
// from this file (scripts/run.mjs bundles an example into examples/.tmp/), not from the cwd.

import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type WebGPUHandle, initWebGPU } from '@scorch/kernels';

export async function openWebGPU(): Promise<WebGPUHandle | undefined> {
  const kernels = new URL('../../packages/kernels/', import.meta.url);
  let dawn: string;
  try {
    dawn = createRequire(new URL('package.json', kernels)).resolve('webgpu');
  } catch {
    console.log(`Dawn (the \`webgpu\` package) is not installed in ${fileURLToPath(kernels)} (pnpm install installs it): running on the CPU`);
    return undefined;
  }
  try {
    const { create } = (await import(pathToFileURL(dawn).href)) as { create: NonNullable<Parameters<typeof initWebGPU>[0]>['dawnCreate'] };
    return await initWebGPU({ dawnCreate: create! });
  } catch (e) {
    console.log(`WebGPU unavailable (${(e as Error).message.split('\n')[0]}): running on the CPU`);
    return undefined;
  }
}
