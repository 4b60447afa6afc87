// Runs a fixture of test/fixtures/ in a child Node process (through scripts/run.mjs, which
// bundles it from the workspace's sources) and returns the JSON object it prints last. A test
// runs there what needs a fresh process: V8 flags, a pool the process must exit with, gc().

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');

/** Runs fixtures/`name` with `nodeFlags`; expects it to exit by itself with status 0 within 2 minutes. */
export function runFixture<T>(name: string, nodeFlags: readonly string[] = []): T {
  const run = spawnSync(process.execPath, [...nodeFlags, join(root, 'scripts', 'run.mjs'), join(here, 'fixtures', name)], {
    cwd: root, encoding: 'utf8', timeout: 120_000,
  });
  // Killed by the timeout (status null) would mean the workers kept it alive.
  expect(run.signal, run.stderr).toBe(null);
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as T;
}
