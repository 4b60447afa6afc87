// What the results were measured on: the machine's name (used in the results file's name), CPU,
// cores, memory, OS, Node, the load average, and whether an NVIDIA GPU is at hand.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { cpus, hostname, loadavg, release, totalmem, type } from 'node:os';

export interface MachineInfo {
  /** File-name-safe name: SCORCH_BENCH_MACHINE, or the host name and core count. */
  name: string;
  hostname: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  const host = hostname();
  const raw = process.env.SCORCH_BENCH_MACHINE ?? `${host}-${list.length}cpu`;
  return {
    name: raw.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '') || 'machine',
    hostname: host,
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()}`,
    node: process.version,
  };
}

/** 1-, 5- and 15-minute load averages, rounded. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = loadavg();
  const r = (v: number | undefined) => Math.round((v ?? 0) * 100) / 100;
  return [r(a), r(b), r(c)];
}

export interface GpuPresence {
  nvidia: boolean;
  detail: string;
}

/** Whether an NVIDIA GPU is visible: the driver's /proc entries, or `nvidia-smi -L`. */
export function nvidiaGpu(): GpuPresence {
  const proc = '/proc/driver/nvidia/gpus';
  if (existsSync(proc)) {
    const gpus = readdirSync(proc);
    if (gpus.length > 0) return { nvidia: true, detail: `${gpus.length} GPU(s) under ${proc}` };
  }
  const smi = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000 });
  if (smi.status === 0 && smi.stdout.trim()) return { nvidia: true, detail: smi.stdout.trim().split('\n').join('; ') };
  return { nvidia: false, detail: `no NVIDIA GPU at hand: no ${proc}, and nvidia-smi ${smi.error ? 'is not installed' : 'lists none'}` };
}
