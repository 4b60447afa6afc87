// What the results record of the machine (machine.ts): its memory in GiB to one decimal, as the run
// line prints it ('23.5 GiB'), and a file-name-safe name.

import { describe, expect, it, vi } from 'vitest';

vi.mock('node:os', async (importOriginal) => {
  const os = await importOriginal<typeof import('node:os')>();
  return { ...os, totalmem: () => 23.54 * 2 ** 30, hostname: () => 'Build Box_7' };
});

const { machineInfo } = await import('../src/machine.js');

describe('machineInfo', () => {

  it('records the memory in GiB to one decimal', () => {
    expect(machineInfo().memoryGiB).toBe(23.5);
  });

  it('names the machine by SCORCH_BENCH_MACHINE, else by host name and cores, safe in a file name', () => {
    const given = process.env.SCORCH_BENCH_MACHINE;
    try {
      delete process.env.SCORCH_BENCH_MACHINE;
      const info = machineInfo();
      expect(info.hostname).toBe('Build Box_7');
      expect(info.name).toBe(`build-box-7-${info.cores}cpu`);
      process.env.SCORCH_BENCH_MACHINE = '--Lab/Rack 3--';
      expect(machineInfo().name).toBe('lab-rack-3');
    } finally {
      if (given === undefined) delete process.env.SCORCH_BENCH_MACHINE;
      else process.env.SCORCH_BENCH_MACHINE = given;
    }
  });
});
