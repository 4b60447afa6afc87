// Node side, for tests and scripts (never bundled into the page): launches Debian's Chromium
// headless through playwright-core with WebGPU on SwiftShader, so the playground's WGSL kernels
// run on a machine without a GPU; and what the e2e tests and the benchmarks' Chromium rows share
// to build and serve their own pages (a bundle of an entry file, the isolation headers). It lives
// here because playwright-core is a dependency of this package, and resolves from here.

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

/**
 * The response headers that make a page cross-origin isolated (COOP and COEP): SharedArrayBuffer,
 * so scorch's CPU threads. playground/serve.mjs sends the same pair.
 */
export const CROSS_ORIGIN_ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

/**
 * `entry` and what it imports bundled into one script for a test or benchmark page (an IIFE; the
 * workspace packages from source, through scripts/workspace.mjs's aliases, as the playground's
 * build resolves them). `external` names imports left out of the bundle.
 */
export async function bundleForPage(entry: string, repoRoot: string, opts: { external?: string[] } = {}): Promise<string> {
  const { join } = await import('node:path');
  const { pathToFileURL } = await import('node:url');
  const { build } = await import('esbuild');
  // The one list of workspace packages, loaded at run time (plain JS).
  const workspace = (await import(pathToFileURL(join(repoRoot, 'scripts', 'workspace.mjs')).href)) as { workspaceAliases: Record<string, string> };
  const bundle = await build({
    entryPoints: [entry], bundle: true, format: 'iife', platform: 'browser', write: false, alias: workspace.workspaceAliases, absWorkingDir: repoRoot, logLevel: 'warning',
    ...(opts.external ? { external: opts.external } : {}),
  });
  return bundle.outputFiles[0]!.text;
}
