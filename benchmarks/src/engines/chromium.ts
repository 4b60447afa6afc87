// scorch's CPU backend, and jax-js's wasm backend beside it, as a web page gets them: the Chromium
// engines' worker process bundles chromiumPage.ts (with the engines' own code, that of the Node
// rows) for the browser, serves it from memory on a free localhost port with the headers that make
// a page cross-origin isolated (COOP and COEP: SharedArrayBuffer, so threads through Web Workers),
// opens it in Debian's Chromium, headless (playground/src/headlessChromium.ts, the e2e tests'
// launcher), and forwards each request to the page. The page times its own steps.
//
// The worker runs from the repository root (workerHost.ts starts every worker there), which is
// where the page's sources are found.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CROSS_ORIGIN_ISOLATION_HEADERS, bundleForPage, launchHeadlessChromium } from '../../../playground/src/headlessChromium.js';
import { encodeInputs } from '../inputs.js';
import type { HelloResult } from '../protocol.js';
import type { Engine } from './engine.js';
import type { PageEngine, PageThreads } from './chromiumPage.js';
import { jaxVersion } from './jaxjs.js';

/** The page's script: chromiumPage.ts and the workspace packages, bundled for the browser. */
function bundlePage(repoRoot: string): Promise<string> {
  const entry = join(repoRoot, 'benchmarks', 'src', 'engines', 'chromiumPage.ts');
  if (!existsSync(entry)) throw new Error(`the Chromium engine's page is not at ${entry}: its worker must run from the repository root`);
  // jaxjs.ts reads jax-js's version from its package.json with Node modules it imports where it
  // runs; in the page that import fails and is caught, and this process reads the version.
  return bundleForPage(entry, repoRoot, { external: ['node:*'] });
}

interface Session {
  server: Server;
  browser: Browser;
  page: Page;
  /** The current case's input bundle, served at /inputs.bin. */
  inputs: Uint8Array;
}

const PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>scorch bench</title></head><body><script src="page.js"></script></body></html>';

async function openSession(repoRoot: string): Promise<Session> {
  const script = await bundlePage(repoRoot);
  const session = { inputs: new Uint8Array(0) } as Session;
  session.server = createServer((req, res) => {
    const isolation = CROSS_ORIGIN_ISOLATION_HEADERS;
    const path = req.url ?? '/';
    if (path === '/inputs.bin') {
      res.writeHead(200, { ...isolation, 'content-type': 'application/octet-stream', 'content-length': session.inputs.length });
      res.end(session.inputs);
    } else if (path === '/page.js') {
      res.writeHead(200, { ...isolation, 'content-type': 'text/javascript' });
      res.end(script);
    } else if (path === '/') {
      res.writeHead(200, { ...isolation, 'content-type': 'text/html' });
      res.end(PAGE);
    } else {
      res.writeHead(404, isolation);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    session.server.once('error', reject);
    session.server.listen(0, '127.0.0.1', resolve);
  });
  try {
    session.browser = await launchHeadlessChromium();
    session.page = await session.browser.newPage();
    // What the page prints goes to the worker's stderr, which the suite keeps in the engine's log.
    session.page.on('console', (message) => console.error(`[page] ${message.text()}`));
    session.page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
    await session.page.goto(`http://127.0.0.1:${(session.server.address() as AddressInfo).port}/`);
    await session.page.waitForFunction(() => typeof window.benchPage === 'object', null, { timeout: 60_000 });
  } catch (e) {
    await session.browser?.close().catch(() => undefined);
    session.server.close();
    throw e;
  }
  return session;
}

/** scorch CPU or jax-js wasm in headless Chromium, on one thread or the engine's default threads. */
export function chromiumEngine(opts: { engine: PageEngine; threads: PageThreads }, repoRoot: string = process.cwd()): Engine {
  let session: Session | undefined;
  // A release is sent without waiting (PreparedCase.dispose is synchronous); the next request waits for it.
  let releasing: Promise<unknown> = Promise.resolve();
  const page = (): Page => {
    if (!session) throw new Error('the Chromium engine has no page (hello comes first)');
    return session.page;
  };
  return {
    async hello(): Promise<HelloResult> {
      try {
        session = await openSession(repoRoot);
      } catch (e) {
        return { available: false, reason: `headless Chromium could not open the page: ${(e as Error).message.split('\n')[0]}` };
      }
      const hello = await session.page.evaluate(([engine, threads]) => window.benchPage.hello(engine, threads), [opts.engine, opts.threads] as const);
      if (!hello.available) return hello;
      const chromium = session.browser.version();
      const version = opts.engine === 'jaxjs' ? `@jax-js/jax ${await jaxVersion()}` : hello.version;
      return { ...hello, version, backend: `${hello.backend} in Chromium ${chromium}`, details: { ...hello.details, chromium } };
    },
    async prepare(spec, inputs) {
      await releasing;
      session!.inputs = encodeInputs(inputs);
      await page().evaluate(([s, url]) => window.benchPage.prepare(s, url), [spec, '/inputs.bin'] as const);
      return {
        value: () => page().evaluate(() => window.benchPage.value()),
        step: () => page().evaluate(() => window.benchPage.step()),
        dispose() {
          releasing = page().evaluate(() => window.benchPage.release()).catch((e: Error) => console.error(`[release] ${e.message}`));
        },
      };
    },
    async close() {
      if (!session) return;
      await releasing;
      await session.browser.close().catch(() => undefined);
      session.server.close();
      session = undefined;
    },
  };
}
