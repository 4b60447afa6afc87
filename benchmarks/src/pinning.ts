// Single-threaded CPU rows compare on one core. The cores of a virtual machine need not be equal:
// on the 2-vCPU development machine the same scorch step took ~4.1 ms pinned to one vCPU and ~5.9
// pinned to the other (benchmarks/NOTES.md, "Normal draws in WebAssembly"), and an unpinned
// process tends to stay on the core it started on, so two engines' single-threaded figures could
// differ by the luck of their placement. The suite therefore pins the main thread of each
// single-threaded CPU engine's worker (EngineSpec.oneThread) to one core, the same for all, and
// measures the WebAssembly SIMD bound on that core too. Only the main thread: the engine computes
// there, and the threads of its runtime (V8's garbage collector and compiler, PyTorch's pools of
// one) keep the affinity they started with, as they would in any program. Linux only (taskset,
// from util-linux); elsewhere nothing is pinned, and the results say so.

import { spawnSync } from 'node:child_process';

/** A Linux CPU list ("0-3,6,8-9") as its cores, ascending; null if it is not one. */
export function parseCpuList(text: string): number[] | null {
  const cores = new Set<number>();
  const trimmed = text.trim();
  if (trimmed === '') return null;
  for (const part of trimmed.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) return null;
    for (let c = lo; c <= hi; c++) cores.add(c);
  }
  return [...cores].sort((a, b) => a - b);
}

/** The cores thread `tid` (a process's main thread: its pid) may run on, or null where taskset cannot say. */
export function affinity(tid: number = process.pid): number[] | null {
  if (process.platform !== 'linux') return null;
  const out = spawnSync('taskset', ['-p', '-c', String(tid)], { encoding: 'utf8' });
  if (out.status !== 0) return null;
  // "pid 1234's current affinity list: 0,1"
  const m = /affinity list:\s*(.+)$/m.exec(out.stdout ?? '');
  return m ? parseCpuList(m[1]!) : null;
}

/**
 * The core to pin to, from the suite's own cores: the last (Linux gives CPU 0 more of the machine's
 * housekeeping: timers, most interrupts); null with fewer than two, where pinning decides nothing.
 */
export function chooseCore(cores: readonly number[] | null): number | null {
  return cores && cores.length >= 2 ? cores[cores.length - 1]! : null;
}

/** Pins thread `tid` to `cores`; the reason it could not, or undefined once done. */
export function pinThread(tid: number, cores: readonly number[]): string | undefined {
  const out = spawnSync('taskset', ['-p', '-c', cores.join(','), String(tid)], { encoding: 'utf8' });
  if (out.error) return `taskset: ${out.error.message}`;
  if (out.status !== 0) return `taskset exited with status ${out.status}: ${(out.stderr ?? '').trim()}`;
  const now = affinity(tid);
  if (!now || now.join(',') !== [...cores].sort((a, b) => a - b).join(',')) return `taskset left thread ${tid} on cores ${now?.join(',') ?? 'unknown'}`;
  return undefined;
}
