// Picks the tensor device the page computes on: WebGPU when the browser offers an adapter (through
// initWebGPU from @scorch/kernels), else the CPU reference backend. `?backend=webgpu` insists on
// WebGPU (an error when there is none, rather than a silent fallback); `?backend=cpu` skips it.

import { type AdapterSummary, type WebGPUHandle, initWebGPU } from '@scorch/kernels';
import { cpuKernelInfo, setDefaultDevice } from '@scorch/tensor';

export type BackendPreference = 'auto' | 'webgpu' | 'cpu';

export interface BackendChoice {
  /** The tensor device every tensor of the page lives on. */
  device: 'webgpu' | 'cpu';
  /** The WebGPU adapter, when device is 'webgpu'. */
  adapter?: AdapterSummary;
  /** Why WebGPU was not used, when it was wanted ('auto') but could not be had. */
  fallbackReason?: string;
  /**
   * When device is 'cpu': the threads its kernels use (cpuKernelInfo().threads). Above 1 only on
   * a cross-origin-isolated page (serve.mjs sends the headers), where SharedArrayBuffer exists.
   */
  cpuThreads?: number;
}

/** The page's WebGPU device, once chosen: its runtime says whether (and why) it was lost. */
let chosenGpu: WebGPUHandle | null = null;

/** Why the page's WebGPU device was lost ('destroyed: …'), or null: alive, or the page is on the CPU. */
export function deviceLossReason(): string | null {
  return chosenGpu?.runtime.lossReason ?? null;
}

/** The CPU as the page's device, with the threads its kernels will use. */
function cpuChoice(fallbackReason?: string): BackendChoice {
  setDefaultDevice('cpu');
  const choice: BackendChoice = { device: 'cpu', cpuThreads: cpuKernelInfo().threads };
  if (fallbackReason !== undefined) choice.fallbackReason = fallbackReason;
  return choice;
}

export function parseBackendPreference(value: string | null): BackendPreference {
  if (value === null || value === '' || value === 'auto') return 'auto';
  if (value === 'webgpu' || value === 'cpu') return value;
  throw new Error(`backend=${value}: expected 'auto', 'webgpu' or 'cpu'`);
}

export async function chooseBackend(preference: BackendPreference): Promise<BackendChoice> {
  if (preference === 'cpu') return cpuChoice();
  if (!('gpu' in navigator) || !navigator.gpu) {
    // WebGPU exists only in secure contexts: plain http works on localhost, not on a LAN address.
    const reason = `navigator.gpu is missing${window.isSecureContext ? '' : ' (not a secure context: use https or localhost)'}`;
    if (preference === 'webgpu') throw new Error(`backend=webgpu: ${reason}`);
    return cpuChoice(reason);
  }
  try {
    const handle = await initWebGPU();
    chosenGpu = handle;
    setDefaultDevice(handle.device);
    return { device: 'webgpu', adapter: handle.info };
  } catch (e) {
    // initWebGPU's full text advises on Node set-ups; on the page the first sentence is what helps.
    if (preference === 'webgpu') throw new Error(`backend=webgpu: ${shortReason((e as Error).message)}; open the page without ?backend=webgpu to compute on the CPU`);
    return cpuChoice((e as Error).message);
  }
}

/**
 * initWebGPU's error lists every attempt and advice for Node; on the page the first sentence is
 * what a reader needs (the full text is in `fallbackReason` and the console).
 */
function shortReason(reason: string): string {
  if (/no WebGPU adapter/i.test(reason)) return 'the browser offers no WebGPU adapter';
  // A sentence ends at a full stop followed by a space or the end: not at the one in 'navigator.gpu'.
  const firstSentence = /^.*?(?:\.(?=\s|$)|$)/s.exec(reason)?.[0] ?? reason;
  return firstSentence.replace(/^initWebGPU:\s*/, '');
}

/** One line for the page: 'webgpu (google swiftshader, core)' or 'cpu (2 threads)'. */
export function describeBackend(choice: BackendChoice): string {
  if (choice.device === 'cpu') {
    const threads = choice.cpuThreads === undefined ? '' : `${choice.cpuThreads} thread${choice.cpuThreads === 1 ? '' : 's'}`;
    const parts = [threads, choice.fallbackReason ? `WebGPU unavailable: ${shortReason(choice.fallbackReason)}` : ''].filter((p) => p !== '');
    return parts.length > 0 ? `cpu (${parts.join('; ')})` : 'cpu';
  }
  const a = choice.adapter;
  if (!a) return 'webgpu';
  const name = [a.vendor, a.architecture, a.device, a.description].filter((s) => s !== '').join(' ');
  return `webgpu (${name || 'unnamed adapter'}, ${a.featureLevel})`;
}
