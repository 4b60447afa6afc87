// --backend on a machine without a WebGPU adapter, simulated: initWebGPU (the CLI's only way to
// WebGPU) rejects as it does when Dawn finds no adapter. 'webgpu' asked for by name fails with
// exit status 1 and one line on stderr, before any work; 'auto' falls back to the CPU, saying so;
// 'cpu' never calls initWebGPU at all.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';

const NO_ADAPTER = 'initWebGPU: no WebGPU adapter found. Tried: Dawn default backends (Vulkan/Metal/D3D12), core features: no adapter (simulated)';

const initWebGPU = vi.hoisted(() => vi.fn());
vi.mock('@scorch/kernels', async (importOriginal) => ({ ...(await importOriginal<object>()), initWebGPU }));

const { main } = await import('../src/main.js');
const { streamIo } = await import('../src/io.js');

async function runMain(...argv: string[]) {
  let out = '';
  let err = '';
  const io = streamIo({ write: (s: string) => (out += s), isTTY: false }, { write: (s: string) => (err += s) });
  const code = await main(argv, io);
  return { code, stdout: out, stderr: err };
}

describe('--backend without a WebGPU adapter', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'scorch-backend-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  beforeEach(() => {
    initWebGPU.mockReset();
    initWebGPU.mockRejectedValue(new Error(NO_ADAPTER));
  });
  const tiny = ['--steps', '2', '--batch', '16', '--n', '20', '--steps-per-level', '1'];
  const failure = `--backend webgpu: no WebGPU device could be opened: ${NO_ADAPTER}`;

  it('train --backend webgpu fails with status 1, one line on stderr, and leaves no --out', async () => {
    const out = join(scratch, 'train-webgpu');
    const { code, stdout, stderr } = await runMain('train', '--backend', 'webgpu', ...tiny, '--out', out);
    expect(code).toBe(1);
    expect(stderr).toBe(`scorch train: ${failure}\n`);
    expect(stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    [['bench', '--suite', 'score', '--backend', 'webgpu', '--steps', '1']],
    [['bench', '--profile', '--backend', 'webgpu']],
  ])('%j fails with status 1 and one line on stderr, measuring nothing', async (argv) => {
    // It printed a table with 'not available' (or nothing at all) and exited 0.
    const { code, stdout, stderr } = await runMain(...argv);
    expect(code).toBe(1);
    expect(stderr).toBe(`scorch bench: ${failure}\n`);
    expect(stdout).toBe('');
  });

  it('train --backend auto falls back to the CPU and says why', async () => {
    const out = join(scratch, 'train-auto');
    const { code, stdout } = await runMain('train', '--backend', 'auto', ...tiny, '--out', out);
    expect(code).toBe(0);
    expect(stdout).toContain(`note: no WebGPU adapter (${NO_ADAPTER}); running on the CPU\n`);
    expect(stdout).toContain('· backend cpu ·');
    expect(initWebGPU).toHaveBeenCalledTimes(1);
  });

  it('--backend cpu never asks for WebGPU (train, bench)', async () => {
    const { code } = await runMain('train', '--backend', 'cpu', ...tiny, '--out', join(scratch, 'train-cpu'));
    expect(code).toBe(0);
    const bench = await runMain('bench', '--suite', 'score', '--backend', 'cpu', '--steps', '1');
    expect(bench.code).toBe(0);
    expect(bench.stdout).not.toContain('webgpu');
    expect(initWebGPU).not.toHaveBeenCalled();
  });
});
