// The suite's side of a worker (src/workerHost.ts) when the worker misbehaves: each of these ended
// the whole run (an exception thrown from a stream's handler, nothing written) before; now the
// request fails, its row records why, and the suite goes on. And the PyTorch worker's replies:
// values that are not finite reach the value check as a Node worker's do, and a PyTorch on the
// reference BLAS is not timed.

import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPLY_PREFIX } from '../src/protocol.js';
import { EngineWorker, WorkerError, pythonExecutable } from '../src/workerHost.js';

const logs = mkdtempSync(join(tmpdir(), 'scorch-worker-host-'));
const enginesDir = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', 'src', 'engines');

/** A worker running `script` in a plain Node process. */
function nodeWorker(name: string, script: string): EngineWorker {
  return new EngineWorker(name, process.execPath, ['-e', script], { cwd: process.cwd(), env: {}, logPath: join(logs, `${name}.log`) });
}

describe('a worker that misbehaves', () => {
  it('fails the request when a reply is not JSON, and is stopped', async () => {
    // Python's json.dumps writes NaN for a value that is not finite: JSON.parse refuses it.
    const worker = nodeWorker('nan', `process.stdin.once('data', (line) => { const { id } = JSON.parse(line); console.log(${JSON.stringify(REPLY_PREFIX)} + '{"id": ' + id + ', "ok": true, "result": {"value": [NaN]}}'); setInterval(() => {}, 1000); });`);
    const reply = worker.request({ op: 'hello' }, 20_000);
    await expect(reply).rejects.toThrow(WorkerError);
    await expect(reply).rejects.toThrow(/^sent a reply that is not JSON \(.*\): \{"id": 1, "ok": true, "result": \{"value": \[NaN\]\}\}/);
    expect(worker.alive).toBe(false);
    await worker.close();
  });

  it('fails the request when the worker has stopped reading its requests', async () => {
    // Writing to a worker whose input is closed (it died, and its exit is not handled yet) raised
    // EPIPE on a stream with no listener: an unhandled error that ended the run.
    const worker = nodeWorker('closed', `require('fs').closeSync(0); setTimeout(() => {}, 5000);`);
    await new Promise((done) => setTimeout(done, 500));
    await expect(worker.request({ op: 'hello' }, 20_000)).rejects.toThrow(/^stopped reading its requests \(write EPIPE\)|^the worker exited/);
    worker.kill();
  });
});

describe("the PyTorch worker's replies", () => {
  const python = (code: string): string => {
    const run = spawnSync(pythonExecutable(), ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(enginesDir)})\n${code}`], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    return run.stdout.trim();
  };

  it('write values that are not finite as null, as JSON.stringify does', () => {
    const out = python(`import torch_worker\ntorch_worker.reply({"id": 3, "ok": True, "result": {"value": [1.5, float("nan"), float("inf"), -float("inf")], "n": 2, "name": "x"}})`);
    expect(out.startsWith(REPLY_PREFIX)).toBe(true);
    expect(JSON.parse(out.slice(REPLY_PREFIX.length))).toEqual({ id: 3, ok: true, result: { value: [1.5, null, null, null], n: 2, name: 'x' } });
  });

  it('name the optimised BLAS behind torch, and none for the reference BLAS', () => {
    const verdicts = python(
      [
        'from torch_worker import optimized_blas as o',
        "print(o(['/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3', '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so'], 'generic'))",
        "print(o(['/usr/lib/x86_64-linux-gnu/blas/libblas.so.3', '/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3'], 'generic'))",
        "print(o([], 'mkl'))",
        "print(o(['/opt/intel/lib/libmkl_rt.so.2'], 'generic'))",
        "print(o([], 'open'))",
        "print(o([], 'unknown'))",
      ].join('\n'),
    );
    expect(verdicts.split('\n')).toEqual(['OpenBLAS', 'None', 'MKL', 'MKL', 'OpenBLAS', 'None']);
  });
});
