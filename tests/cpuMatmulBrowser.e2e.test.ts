// The CPU matrix product in headless Chromium: the WebAssembly SIMD kernels scorch assembles at
// startup run in a browser page (with relaxed SIMD's fused multiply-add, which Chromium has),
// within the error bound of the float64 reference; on a cross-origin-isolated page (COOP and
// COEP headers) the product is split across Web Workers with the same bits as one thread, and on
// a page that is not isolated it stays on one thread. Compiled float32 elementwise kernels run as
// WebAssembly on the page with the JavaScript kernels' bits, and large ones split across the same
// workers on an isolated page (range jobs, through the CPU's heap: no message reaches a worker
// blocked in Atomics.wait) with one thread's bits. The CPU's arrays live in its heap (a shared
// memory) on the isolated page and are ordinary on the plain one, where the kernels copy them:
// training steps give the same bits on both. The page is bundled from
// tests/fixtures/cpuMatmulPage.ts and served from memory on a free localhost port.
//
// Chromium is a hard requirement, as for the playground's test (scripts/setup.sh installs it).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CROSS_ORIGIN_ISOLATION_HEADERS, bundleForPage, launchHeadlessChromium } from '../playground/src/headlessChromium.js';
import type { HeapReport, PageReport } from './fixtures/cpuMatmulPage.js';

const root = fileURLToPath(new URL('..', import.meta.url));

let server: Server;
let base = '';

beforeAll(async () => {
  const script = await bundleForPage(fileURLToPath(new URL('./fixtures/cpuMatmulPage.ts', import.meta.url)), root);
  const page = '<!doctype html><html><body><script src="page.js"></script></body></html>';
  server = createServer((req, res) => {
    // /isolated/… gets the headers that make a page cross-origin isolated (SharedArrayBuffer).
    const headers = req.url?.startsWith('/isolated/') ? CROSS_ORIGIN_ISOLATION_HEADERS : {};
    const js = req.url?.endsWith('/page.js');
    res.writeHead(200, { ...headers, 'content-type': js ? 'text/javascript' : 'text/html' });
    res.end(js ? script : page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(() => {
  server?.close();
});

/** Opens `path` in a fresh Chromium and returns what `run` evaluates on the page once its script is up. */
async function onPage<T>(path: string, run: () => Promise<T>): Promise<T> {
  const browser = await launchHeadlessChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${base}${path}`);
    await page.waitForFunction(() => typeof window.cpuMatmulCheck === 'function', null, { timeout: 30_000 });
    return await page.evaluate(run);
  } finally {
    await browser.close();
  }
}

const check = (path: string): Promise<PageReport> => onPage(path, () => window.cpuMatmulCheck(10));
const heapCheck = (path: string): Promise<HeapReport> => onPage(path, () => window.cpuHeapCheck());

/**
 * Compiled float32 elementwise work runs as WebAssembly on the page, with the JavaScript kernels'
 * bits; so does an eager op; and the page's engine refused none of the modules (it compiles them
 * on the page's main thread, synchronously).
 */
function expectElementwiseOnPage(report: PageReport): void {
  expect(report.elementwise.wasmKernels).toBeGreaterThanOrEqual(3);
  expect(report.elementwise.sameBits).toBe(true);
  expect(report.elementwise.eagerWasmCalls).toBe(1);
  expect(report.wasmRefusals, report.lastWasmRefusal ?? '').toBe(0);
}

describe('the CPU matrix product in Chromium', () => {
  it('a cross-origin-isolated page: WebAssembly SIMD with fused multiply-add, within the bound, threads with the same bits', async () => {
    const report = await check('/isolated/');
    expect(report.crossOriginIsolated).toBe(true);
    expect(report.info.heap).toBe('shared');
    expect(report.info.matmul).toBe('wasm-simd');
    expect(report.info.relaxedSimd).toBe(true);
    expect(report.info.fma).toBe(true);
    expect(report.worstRatio).toBeLessThanOrEqual(1);
    expect(report.sameBitsAcrossThreads).toBe(true);
    // Workers start once the page yields; over ten rounds with pauses (more, up to 20 s, until one does) they take part.
    expect(report.workerChunks).toBeGreaterThan(0);
    expectElementwiseOnPage(report);
    expect(report.rangeJobs.workerChunks).toBeGreaterThan(0);
    expect(report.rangeJobs.sameBits).toBe(true);
    expect(report.rangeJobs.reruns).toBe(0);
  }, 120_000);

  it('a page that is not isolated: the same kernels on one thread', async () => {
    const report = await check('/plain/');
    expect(report.crossOriginIsolated).toBe(false);
    expect(report.info.heap).toBe('none');
    expect(report.info.matmul).toBe('wasm-simd');
    expect(report.info.threads).toBe(1);
    expect(report.worstRatio).toBeLessThanOrEqual(1);
    expect(report.sameBitsAcrossThreads).toBe(true);
    expect(report.workerChunks).toBe(0);
    expectElementwiseOnPage(report);
    expect(report.rangeJobs.workerChunks).toBe(0);
    expect(report.rangeJobs.sameBits).toBe(true);
  }, 120_000);

  it('the heap on an isolated page, ordinary arrays on a plain one: training steps with the same bits on both', async () => {
    const isolated = await heapCheck('/isolated/');
    const plain = await heapCheck('/plain/');
    expect([isolated.kind, plain.kind]).toEqual(['shared', 'none']);
    expect([isolated.inHeap, plain.inHeap]).toEqual([true, false]);
    // The same kernels on one thread: in place or through copies, the same values bit for bit.
    expect(isolated.losses.every(Number.isFinite)).toBe(true);
    expect(plain.losses).toEqual(isolated.losses);
    expect(plain.params.length).toBe(2 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2);
    expect(plain.params).toEqual(isolated.params);
    // A 32 MiB array grows the heap; arrays made before keep their values. Without a heap there
    // is nothing to grow.
    expect(isolated.growth.heapBytesAfter).toBeGreaterThanOrEqual(isolated.growth.heapBytesBefore + 32 * 2 ** 20);
    expect(isolated.growth.kept).toBe(true);
    expect(plain.growth).toEqual({ kept: true, heapBytesBefore: 0, heapBytesAfter: 0 });
  }, 120_000);
});
