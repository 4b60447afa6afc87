// scripts/run.mjs bundles a TypeScript file to <its folder>/.tmp/<name>-<pid>.mjs and removes the
// bundle when the process exits (its exit status kept). SIGINT or SIGTERM (a Ctrl-C, a timeout's
// kill) ends the process at once, even while its script computes without yielding, and leaves the
// bundle, which the next run in that folder removes. A script with its own handler for the signal
// decides for itself.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = join(root, 'tests', 'fixtures', 'waitForSignal.ts');

/**
 * Runs the fixture with `args`; once it prints 'ready', checks its bundle is there and sends
 * `signal` (if any). Resolves with how it ended, what it printed, and whether its bundle remains.
 * (Not tests/fixtures/runFixture.ts: that one waits for a fixture's JSON and its exit with status 0;
 * these runs are stopped by signals, or exit with other statuses, and are watched while running.)
 */
async function runWaitForSignal(args: string[], signal?: NodeJS.Signals) {
  const child = spawn(process.execPath, [join(root, 'scripts', 'run.mjs'), fixture, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const bundle = join(root, 'tests', 'fixtures', '.tmp', `waitForSignal-${child.pid}.mjs`);
  let stdout = '';
  let stderr = '';
  let bundledWhileRunning = false;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
    if (stdout.includes('ready\n') && !bundledWhileRunning) {
      bundledWhileRunning = existsSync(bundle);
      if (signal) child.kill(signal);
    }
  });
  try {
    const [code, killedBy] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    return { code, signal: killedBy, stdout, stderr, bundle, bundledWhileRunning, bundleLeft: existsSync(bundle) };
  } finally {
    child.kill('SIGKILL'); // a no-op once it has exited
  }
}

describe('scripts/run.mjs', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('dies by %s at once, even computing; the next run removes its bundle', async (signal) => {
    for (const mode of ['wait', 'busy']) {
      const run = await runWaitForSignal([mode], signal);
      expect(run.bundledWhileRunning, run.stderr).toBe(true);
      expect([run.code, run.signal], `${mode}: ${run.stderr}`).toEqual([null, signal]);
      expect(run.stdout).not.toContain('not stopped');
      expect(run.bundleLeft, mode).toBe(true);
      // Any next run in the folder removes the bundle of the process that is gone.
      const next = await runWaitForSignal(['exit', '0']);
      expect([next.code, next.signal], next.stderr).toEqual([0, null]);
      expect(existsSync(run.bundle)).toBe(false);
    }
  });

  it("keeps the script's exit status, and removes the bundle", async () => {
    const run = await runWaitForSignal(['exit', '3']);
    expect(run.stdout, run.stderr).toContain('ready');
    // The script saw its bundle (it may exit, and the bundle go, before this test reads 'ready').
    expect(run.stdout).toContain('bundle: yes');
    expect([run.code, run.signal]).toEqual([3, null]);
    expect(run.bundleLeft).toBe(false);
  });

  it('leaves a signal to the script when it handles it, and removes the bundle when it then exits', async () => {
    const run = await runWaitForSignal(['handle'], 'SIGTERM');
    expect(run.stdout, run.stderr).toContain('handled');
    expect([run.code, run.signal]).toEqual([7, null]);
    expect(run.bundleLeft).toBe(false);
  });
});
