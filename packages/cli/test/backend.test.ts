// --backend on a machine without a WebGPU adapter, simulated: initWebGPU (the CLI's only way to
// WebGPU) rejects as it does when Dawn finds no adapter. 'webgpu' asked for by name fails with
// exit status 1 and one line on stderr, before any work; 'auto' falls back to the CPU, saying so;
// 'cpu' never calls initWebGPU at all.
// selectBackend in process too: how it names the adapter, what it passes initWebGPU, and its
// fallback whatever the rejection carries.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const NO_ADAPTER = 'initWebGPU: no WebGPU adapter found. Tried: Dawn default backends (Vulkan/Metal/D3D12), core features: no adapter (simulated)';

const initWebGPU = vi.hoisted(() => vi.fn());
vi.mock('@scorch/kernels', async (importOriginal) => ({ ...(await importOriginal<object>()), initWebGPU }));

const { runMain } = await import('./runMain.js');
const { selectBackend } = await import('../src/backend.js');
const { CpuBackend, getDefaultDevice, listDevices, registerBackend, setDefaultDevice } = await import('@scorch/tensor');

describe('--backend without a WebGPU adapter', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'scorch-backend-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  beforeEach(() => {
    initWebGPU.mockReset();
    initWebGPU.mockRejectedValue(new Error(NO_ADAPTER));
  });
  const tiny = ['--steps', '2', '--batch', '16', '--n', '20', '--steps-per-level', '1'];
  const failure = `--backend webgpu: no WebGPU device could be opened: ${NO_ADAPTER}`;
  /** A run of `steps` steps stopped after 2, on the CPU, to resume. */
  const stoppedRun = (steps: number) => ['train', '--backend', 'cpu', '--batch', '16', '--n', '20', '--steps-per-level', '1', '--steps', String(steps), '--stop-after', '2'];

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

  it('--resume without --backend continues on the backend the run trained on; one that cannot be had is refused, naming it', async () => {
    // It took --backend's default, auto, whatever the run had trained on.
    const stopped = join(scratch, 'resume-stopped');
    expect((await runMain(...stoppedRun(4), '--out', stopped)).code).toBe(0);
    const onCpu = join(scratch, 'resume-cpu');
    const continued = await runMain('train', '--resume', stopped, '--n', '20', '--steps-per-level', '1', '--out', onCpu);
    expect(continued.stderr).toBe('');
    expect(continued.code).toBe(0);
    expect(continued.stdout).toContain('· backend cpu ·');
    expect(continued.stdout).not.toContain('note:');
    expect(initWebGPU).not.toHaveBeenCalled();
    const checkpoint = JSON.parse(readFileSync(join(onCpu, 'checkpoint.json'), 'utf8'));
    expect(checkpoint.training.backend).toBe('cpu');
    expect(checkpoint.training.backends).toBeUndefined();
    // A run that trained on WebGPU, resumed where no adapter is found.
    const onGpu = join(scratch, 'resume-gpu-run');
    mkdirSync(onGpu);
    const stoppedCheckpoint = JSON.parse(readFileSync(join(stopped, 'checkpoint.json'), 'utf8'));
    writeFileSync(join(onGpu, 'checkpoint.json'), JSON.stringify({ ...stoppedCheckpoint, training: { ...stoppedCheckpoint.training, backend: 'webgpu (some adapter, vulkan, core)' } }));
    const refusedOut = join(scratch, 'resume-refused');
    const refused = await runMain('train', '--resume', onGpu, '--out', refusedOut);
    expect(refused).toEqual({
      code: 2, stdout: '',
      stderr: `scorch train: --resume ${onGpu}: the run trained on webgpu (some adapter, vulkan, core), but no WebGPU device could be opened: ${NO_ADAPTER}; to continue it on another backend, choose it with --backend (e.g. --backend cpu)\n`,
    });
    expect(existsSync(refusedOut)).toBe(false);
  });

  it('--resume on another backend than the run trained on says so, and the checkpoint, metrics and report record both', async () => {
    // The run said nothing, and its files named only the new backend, though its first steps ran on another.
    const stopped = join(scratch, 'moved-stopped');
    expect((await runMain(...stoppedRun(5), '--out', stopped)).code).toBe(0);
    const checkpoint = JSON.parse(readFileSync(join(stopped, 'checkpoint.json'), 'utf8'));
    writeFileSync(join(stopped, 'checkpoint.json'), JSON.stringify({ ...checkpoint, training: { ...checkpoint.training, backend: 'webgpu (some adapter, vulkan, core)' } }));
    // Continued on the CPU to step 4, then (its checkpoint's last backend being the CPU) on to 5 without --backend.
    const moved = join(scratch, 'moved');
    const r = await runMain('train', '--resume', stopped, '--backend', 'cpu', '--steps', '4', '--n', '20', '--steps-per-level', '1', '--out', moved);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`resuming ${stopped} at step 2\nnote: the resumed run trained on webgpu (some adapter, vulkan, core) (steps 1–2); it continues on cpu from step 3, and its checkpoint, metrics and report record each backend's steps\n`);
    const history = 'webgpu (some adapter, vulkan, core) (steps 1–2), then cpu (steps 3–4)';
    const segments = [{ backend: 'webgpu (some adapter, vulkan, core)', firstStep: 1, lastStep: 2 }, { backend: 'cpu', firstStep: 3, lastStep: 4 }];
    const training = JSON.parse(readFileSync(join(moved, 'checkpoint.json'), 'utf8')).training;
    expect(training).toMatchObject({ steps: 4, backend: history, backends: segments });
    const metrics = JSON.parse(readFileSync(join(moved, 'metrics.json'), 'utf8'));
    expect(metrics.backend).toBe(history);
    expect(metrics.training.backends).toEqual(segments);
    expect(readFileSync(join(moved, 'index.html'), 'utf8')).toContain(`<td>${history}</td>`);
    const further = join(scratch, 'moved-further');
    const f = await runMain('train', '--resume', moved, '--steps', '6', '--n', '20', '--steps-per-level', '1', '--out', further);
    expect(f.stderr).toBe('');
    expect(f.code).toBe(0);
    expect(f.stdout).not.toContain('note:');
    expect(JSON.parse(readFileSync(join(further, 'checkpoint.json'), 'utf8')).training).toMatchObject({
      steps: 6, backend: 'webgpu (some adapter, vulkan, core) (steps 1–2), then cpu (steps 3–6)', backends: [segments[0], { backend: 'cpu', firstStep: 3, lastStep: 6 }],
    });
    // sample's report says where the model trained.
    const sampled = await runMain('sample', '--checkpoint', further, '--backend', 'cpu', '--n', '20', '--steps-per-level', '1', '--out', join(scratch, 'moved-sampled'));
    expect(sampled.code).toBe(0);
    expect(readFileSync(join(scratch, 'moved-sampled', 'index.html'), 'utf8')).toContain('<td>6 steps × batch 16 on webgpu (some adapter, vulkan, core) (steps 1–2), then cpu (steps 3–6)</td>');
    expect(initWebGPU).not.toHaveBeenCalled();
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

describe('selectBackend, in process', () => {
  beforeEach(() => {
    initWebGPU.mockReset();
    setDefaultDevice('cpu');
  });
  afterEach(() => setDefaultDevice('cpu'));
  // A second CPU backend stands for the WebGPU device, so that tensors could live on it.
  if (!listDevices().includes('gpu-standin')) registerBackend(new CpuBackend('gpu-standin'));
  const handle = (info: object) => ({ device: 'gpu-standin', info: { device: '', description: '', backend: 'vulkan', featureLevel: 'core', ...info } });

  it("describes the adapter by its device name, else its description, and loads Dawn's create from the installed webgpu package", async () => {
    initWebGPU.mockResolvedValue(handle({ device: 'llvmpipe (LLVM 15.0.7, 256 bits)', description: 'Mesa 23.2.1' }));
    expect(await selectBackend('webgpu')).toEqual({ device: 'gpu-standin', description: 'webgpu (llvmpipe (LLVM 15.0.7, 256 bits), vulkan, core)' });
    expect(getDefaultDevice()).toBe('gpu-standin');
    // The bundle cannot import('webgpu') by name from packages/cli/dist: create is passed in.
    expect(initWebGPU).toHaveBeenCalledWith({ dawnCreate: expect.any(Function) });
    initWebGPU.mockResolvedValue(handle({ description: 'Mesa 23.2.1' }));
    expect((await selectBackend('auto')).description).toBe('webgpu (Mesa 23.2.1, vulkan, core)');
    initWebGPU.mockResolvedValue(handle({}));
    expect((await selectBackend('auto')).description).toBe('webgpu (unknown adapter, vulkan, core)');
  });

  it("'auto' falling back names the first line of the reason and makes the CPU the default device again", async () => {
    initWebGPU.mockResolvedValue(handle({ device: 'x' }));
    await selectBackend('webgpu');
    expect(getDefaultDevice()).toBe('gpu-standin');
    initWebGPU.mockRejectedValue(new Error('initWebGPU: no WebGPU adapter found\n  tried: vulkan\n  tried: opengl'));
    expect(await selectBackend('auto')).toEqual({ device: 'cpu', description: 'cpu', fallbackReason: 'initWebGPU: no WebGPU adapter found' });
    expect(getDefaultDevice()).toBe('cpu');
    await expect(selectBackend('webgpu')).rejects.toThrow(/^--backend webgpu: no WebGPU device could be opened: initWebGPU: no WebGPU adapter found$/);
  });

  it('falls back, or fails with one line, when set-up rejects with something other than an Error', async () => {
    for (const rejection of ['no adapter\nsecond line', undefined, { code: 7 }]) {
      initWebGPU.mockRejectedValue(rejection);
      const reason = rejection === undefined ? 'undefined' : typeof rejection === 'string' ? 'no adapter' : '[object Object]';
      expect(await selectBackend('auto')).toEqual({ device: 'cpu', description: 'cpu', fallbackReason: reason });
      await expect(selectBackend('webgpu')).rejects.toThrow(`--backend webgpu: no WebGPU device could be opened: ${reason}`);
    }
  });
});
