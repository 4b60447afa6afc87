// The page side of the Chromium rows (src/engines/chromiumPage.ts), run here in Node with the
// engines it starts replaced by recording fakes and the page's clock by a counter: the figure a
// page returns for a step must be the time until the engine's step had finished (its promise
// resolved), measured around step() itself (not value()); a one-thread row must start its engine
// for one thread with SharedArrayBuffer hidden, and a default-threads row that would get one
// thread must refuse. Deterministic: no browser, no timing.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { BenchPage } from '../src/engines/chromiumPage.js';
import { encodeInputs, makeInputs } from '../src/inputs.js';
import { type CaseSpec, matmulCase } from '../src/workloads.js';

const rec = vi.hoisted(() => ({
  clock: 0,
  /** What each fake engine saw when started: its options, and whether SharedArrayBuffer existed at hello. */
  started: [] as { engine: string; opts: unknown; sharedArrayBuffer: boolean }[],
  steps: 0,
  values: 0,
  /** The page's clock advances by this much while a step runs, in a later task (the step's work). */
  stepMs: 7,
}));

function fakeEngine(engine: string, opts: unknown) {
  return {
    async hello() {
      rec.started.push({ engine, opts, sharedArrayBuffer: typeof SharedArrayBuffer !== 'undefined' });
      return { available: true as const, version: engine, backend: 'fake', threads: 1, details: {} };
    },
    async prepare() {
      return {
        async value() {
          rec.values++;
          return [1];
        },
        step() {
          rec.steps++;
          return new Promise<void>((resolve) =>
            setTimeout(() => {
              rec.clock += rec.stepMs;
              resolve();
            }, 0));
        },
        dispose() {},
      };
    },
  };
}
vi.mock('../src/engines/scorch.js', () => ({ scorchEngine: (target: string, opts: unknown) => fakeEngine(`scorch-${target}`, opts) }));
// chromium.ts (the worker side) with Playwright's browser replaced by this process: evaluate runs
// the function here, against the page module above.
vi.mock('../../playground/src/headlessChromium.js', () => ({
  CROSS_ORIGIN_ISOLATION_HEADERS: {},
  bundleForPage: async () => '',
  launchHeadlessChromium: async () => ({
    version: () => '0.0',
    close: async () => undefined,
    newPage: async () => ({
      on() {},
      goto: async () => undefined,
      waitForFunction: async () => undefined,
      evaluate: async (fn: (arg: unknown) => unknown, arg?: unknown) => fn(arg),
    }),
  }),
}));
vi.mock('../src/engines/jaxjs.js', () => ({ jaxjsEngine: (backend: string) => fakeEngine(`jaxjs-${backend}`, undefined), jaxVersion: async () => 'fake' }));

const here = fileURLToPath(new URL('.', import.meta.url));
const g = globalThis as Record<string, unknown>;
const saved = { SharedArrayBuffer: g.SharedArrayBuffer, fetch: g.fetch };
let page: BenchPage;
const spec = { ...matmulCase(2), id: 'tiny' } as CaseSpec;

beforeAll(async () => {
  g.window = globalThis;
  g.crossOriginIsolated = true;
  g.navigator = { hardwareConcurrency: 4 };
  g.fetch = async () => new Response(new Blob([encodeInputs(new Map([['a', { shape: [1], data: new Float32Array(1) }]])) as BlobPart]));
  vi.spyOn(performance, 'now').mockImplementation(() => rec.clock);
  await import('../src/engines/chromiumPage.js');
  page = (globalThis as unknown as { benchPage: BenchPage }).benchPage;
});
afterAll(() => {
  vi.restoreAllMocks();
  g.SharedArrayBuffer = saved.SharedArrayBuffer;
  g.fetch = saved.fetch;
  for (const k of ['window', 'crossOriginIsolated', 'navigator', 'benchPage']) delete g[k];
});
const restoreSab = () => {
  g.SharedArrayBuffer = saved.SharedArrayBuffer;
};

describe('a Chromium page', () => {
  it("times its engine's step() until it has resolved, and that step only", async () => {
    restoreSab();
    expect((await page.hello('scorch', 'default')).available).toBe(true);
    await page.prepare(spec, '/inputs.bin');
    expect(await page.value()).toEqual([1]);
    const before = { steps: rec.steps, values: rec.values };
    for (const ms of [7, 3, 11]) {
      rec.stepMs = ms;
      expect(await page.step(), 'the page\'s figure: the time its engine\'s step() took to resolve').toBe(ms);
    }
    expect(rec.steps - before.steps, 'engine step() calls for 3 page steps').toBe(3);
    expect(rec.values - before.values, 'engine value() calls during the steps').toBe(0);
    page.release();
  });

  it('starts scorch on one thread, SharedArrayBuffer hidden, for the one-thread row; with its default threads otherwise', async () => {
    restoreSab();
    rec.started.length = 0;
    await page.hello('scorch', 'default');
    restoreSab();
    await page.hello('scorch', 1);
    restoreSab();
    expect(rec.started).toEqual([
      { engine: 'scorch-cpu', opts: { threads: 'default' }, sharedArrayBuffer: true },
      { engine: 'scorch-cpu', opts: expect.not.objectContaining({ threads: 'default' }), sharedArrayBuffer: false },
    ]);
  });

  it('starts jax-js with SharedArrayBuffer hidden for the one-thread row, and refuses a default-threads row that would get one thread', async () => {
    restoreSab();
    rec.started.length = 0;
    const one = await page.hello('jaxjs', 1);
    expect(one).toMatchObject({ available: true, threads: 1, details: { webWorkers: 0 } });
    expect(rec.started[0]).toMatchObject({ engine: 'jaxjs-wasm', sharedArrayBuffer: false });
    restoreSab();
    expect(await page.hello('jaxjs', 'default')).toMatchObject({ available: true, threads: 4, details: { webWorkers: 4 } });
    // One core (navigator.hardwareConcurrency 1): jax-js makes no workers, so the threads row is not what it says.
    (g.navigator as { hardwareConcurrency: number }).hardwareConcurrency = 1;
    try {
      expect(await page.hello('jaxjs', 'default')).toMatchObject({ available: false });
    } finally {
      (g.navigator as { hardwareConcurrency: number }).hardwareConcurrency = 4;
      restoreSab();
    }
  });

  it("gives the worker the page's own figure for a step: chromium.ts forwards step() and returns the page's milliseconds", async () => {
    restoreSab();
    const { chromiumEngine } = await import('../src/engines/chromium.js');
    const engine = chromiumEngine({ engine: 'scorch', threads: 'default' }, resolve(here, '..', '..'));
    expect((await engine.hello()).available).toBe(true);
    try {
      const prepared = await engine.prepare(spec, makeInputs(spec));
      await prepared.value();
      const before = { steps: rec.steps, values: rec.values };
      rec.stepMs = 5;
      expect(await prepared.step(), 'what the worker records (a number: the page timed the step)').toBe(5);
      expect(rec.steps - before.steps).toBe(1);
      expect(rec.values - before.values).toBe(0);
      prepared.dispose();
    } finally {
      await engine.close!();
    }
  });
});
