// Node side, for tests and scripts (never bundled into the page): launches Debian's Chromium
// headless through playwright-core with WebGPU on SwiftShader, so the playground's WGSL kernels
// run on a machine without a GPU. It lives here because playwright-core is a dependency of this
// package, and resolves from here.

import { type Browser, chromium } from 'playwright-core';

/** Debian's chromium package (scripts/setup-browser.sh installs it). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  // Headless Chromium as root refuses to start with its sandbox.
  '--no-sandbox',
  // WebGPU on Linux is still behind a flag; SwiftShader is Chromium's built-in software Vulkan.
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  // This machine's network is closed: no update checks, sync or QUIC probes to wait on.
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

export function launchHeadlessChromium(executablePath: string = CHROMIUM_PATH): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS] });
}
