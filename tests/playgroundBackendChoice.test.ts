// The playground's backend choice (playground/src/backendSelection.ts) in Node: a page that says
// WebGPU computes on WebGPU, and one that fell back to the CPU says why. initWebGPU is a stand-in
// (mocked before backendSelection is first imported, hence a file of its own), its device the CPU
// backend under another name.

import { describe, expect, it, vi } from 'vitest';
import { getBackend, getDefaultDevice, registerBackend, setDefaultDevice } from '@scorch/tensor';

describe('the page\'s backend choice', () => {
  it("makes WebGPU the tensors' default device when it says WebGPU, and says why when WebGPU failed", async () => {
    // A stand-in WebGPU (the CPU backend under another name) behind a stand-in initWebGPU.
    const cpu = getBackend('cpu');
    registerBackend({ ...cpu, name: 'stand-in-webgpu' } as typeof cpu);
    const init = vi.fn(async () => ({ device: 'stand-in-webgpu', info: { vendor: 'v', architecture: 'a', device: '', description: '', featureLevel: 'core' }, runtime: { lossReason: null } }));
    vi.doMock('@scorch/kernels', () => ({ initWebGPU: init }));
    const g = globalThis as { navigator?: unknown; window?: unknown };
    const hadNavigator = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: {} }, configurable: true, writable: true });
    g.window = { isSecureContext: true };
    try {
      const { chooseBackend, describeBackend } = await import('../playground/src/backendSelection.js');
      const choice = await chooseBackend('auto');
      expect(choice.device).toBe('webgpu');
      expect(getDefaultDevice()).toBe('stand-in-webgpu');
      setDefaultDevice('cpu');
      init.mockImplementationOnce(async () => {
        throw new Error('initWebGPU: requestDevice failed. More advice.');
      });
      const fallback = await chooseBackend('auto');
      expect(fallback.device).toBe('cpu');
      expect(describeBackend(fallback)).toMatch(/WebGPU unavailable: requestDevice failed\.\)$/);
    } finally {
      setDefaultDevice('cpu');
      vi.doUnmock('@scorch/kernels');
      delete g.window;
      if (hadNavigator) Object.defineProperty(globalThis, 'navigator', hadNavigator);
      else delete g.navigator;
    }
  });
});
