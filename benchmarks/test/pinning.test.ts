// Pinning the single-threaded CPU engines to one core (pinning.ts, suite.ts's pinOneThreadEngines):
// CPU lists parsed as Linux writes them, the core chosen, every single-threaded engine's worker
// pinned or none (a failure gives back those done), the reason recorded when nothing is pinned,
// and, on Linux, a real process's main thread pinned and read back.

import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ENGINES, type EngineId } from '../src/engines.js';
import { affinity, chooseCore, parseCpuList, pinThread } from '../src/pinning.js';
import { type Engines, type SuiteWorker, pinOneThreadEngines } from '../src/suite.js';

describe('CPU lists and the core chosen', () => {
  it('parses Linux CPU lists, ranges included, and refuses anything else', () => {
    expect(parseCpuList('0,1')).toEqual([0, 1]);
    expect(parseCpuList('0-3,6,8-9\n')).toEqual([0, 1, 2, 3, 6, 8, 9]);
    expect(parseCpuList('5')).toEqual([5]);
    expect(parseCpuList('3-1')).toBeNull();
    expect(parseCpuList('a,b')).toBeNull();
    expect(parseCpuList('')).toBeNull();
  });

  it('chooses the last core, and none with fewer than two', () => {
    expect(chooseCore([0, 1])).toBe(1);
    expect(chooseCore([0, 2, 5])).toBe(5);
    expect(chooseCore([3])).toBeNull();
    expect(chooseCore(null)).toBeNull();
  });
});

/** Engines as startEngines leaves them: the available ones with stand-in workers of the given pids. */
function enginesOf(entries: [EngineId, number | undefined][]): Engines {
  const engines: Engines = { records: [], workers: new Map() };
  for (const [id, pid] of entries) {
    engines.records.push({ id, label: ENGINES[id].label, kind: ENGINES[id].kind, available: true, version: 'v', backend: 'b', threads: 1, details: {} });
    engines.workers.set(id, { pid } as unknown as SuiteWorker);
  }
  return engines;
}

describe('pinOneThreadEngines', () => {
  it('pins the main thread of every single-threaded CPU engine\'s worker to the core, and no other', () => {
    const calls: [number, readonly number[]][] = [];
    const engines = enginesOf([['scorch-cpu', 11], ['scorch-cpu-threads', 12], ['jaxjs-wasm', 13], ['torch-cpu-1t', 14], ['torch-cpu-default', 15], ['scorch-webgpu', 16]]);
    const line = pinOneThreadEngines(engines, 1, [0, 1], (tid, cores) => void calls.push([tid, cores]));
    expect(calls).toEqual([[11, [1]], [13, [1]], [14, [1]]]);
    expect(line).toMatch(/^the main thread of each single-threaded CPU engine's worker \(scorch CPU, jax-js wasm \(jit\), PyTorch CPU, 1 thread\) pinned to core 1 with taskset/);
  });

  it('pins none where one cannot be pinned: those done get the suite\'s cores back, and the reason is recorded', () => {
    const calls: [number, readonly number[]][] = [];
    const engines = enginesOf([['scorch-cpu', 11], ['jaxjs-wasm', 13], ['torch-cpu-1t', 14]]);
    const line = pinOneThreadEngines(engines, 1, [0, 1], (tid, cores) => {
      calls.push([tid, cores]);
      return tid === 13 ? 'taskset exited with status 1: no such process' : undefined;
    });
    expect(calls).toEqual([[11, [1]], [13, [1]], [11, [0, 1]]]);
    expect(line).toBe('nothing pinned: the worker of jax-js wasm (jit): taskset exited with status 1: no such process');
  });

  it('says why nothing was pinned where there is no core to pin to, or no engine to pin', () => {
    const pin = () => {
      throw new Error('nothing should be pinned');
    };
    expect(pinOneThreadEngines(enginesOf([['scorch-cpu', 11]]), null, [0], pin)).toBe('nothing pinned: one core');
    expect(pinOneThreadEngines(enginesOf([['scorch-cpu-threads', 12]]), 1, [0, 1], pin)).toBe('nothing pinned: no single-threaded CPU engine in the run');
    expect(pinOneThreadEngines(enginesOf([['scorch-cpu', undefined]]), 1, [0, 1], () => undefined)).toBe('nothing pinned: the worker of scorch CPU: its worker has no process id');
  });
});

describe.runIf(process.platform === 'linux' && affinity() !== null)('taskset on this machine', () => {
  it('pins a process\'s main thread to one core, which reads back, and gives it back its cores', async () => {
    const own = affinity()!;
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
    try {
      await new Promise((resolve) => child.once('spawn', resolve));
      const pid = child.pid!;
      const core = own[own.length - 1]!;
      expect(pinThread(pid, [core])).toBeUndefined();
      expect(affinity(pid)).toEqual([core]);
      expect(pinThread(pid, own)).toBeUndefined();
      expect(affinity(pid)).toEqual(own);
      expect(pinThread(2 ** 22 + 7, [core])).toMatch(/^taskset exited with status \d+/);
    } finally {
      child.kill();
    }
  });
});
