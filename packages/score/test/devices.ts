// The devices the training and sampling proofs run on: the CPU reference backend and WebGPU
// (Mesa llvmpipe through Dawn on machines without a GPU, as in CI). A suite written once with
// `onEachDevice` runs on both. WebGPU is opened once per test file (initWebGPU is idempotent) and
// before every test, so a machine where it cannot be opened FAILS each WebGPU test with
// initWebGPU's explanation: a test that skipped itself there would let a broken GPU path pass.
//
// WebGPU stores float32, int32 and bool only, so every WebGPU case is float32; float64 proofs
// stay CPU-only, beside float32 versions that run on both devices.

import { beforeEach, describe } from 'vitest';
import { initWebGPU } from '@scorch/kernels';
import { type Tensor, getBackend } from '@scorch/tensor';

export const TEST_DEVICES = ['cpu', 'webgpu'] as const;
export type TestDevice = (typeof TEST_DEVICES)[number];

/**
 * Makes `device` usable for tensors. The WebGPU device is opened without poisoned allocations:
 * the kernel parity suite already proves every output element is written, and poisoning doubles
 * the dispatches of these long runs.
 */
export async function openDevice(device: TestDevice): Promise<void> {
  if (device === 'webgpu') await initWebGPU();
}

/** `describe(name [device])` once per test device, with the device opened before each test. */
export function onEachDevice(name: string, body: (device: TestDevice) => void): void {
  describe.each(TEST_DEVICES)(`${name} [%s]`, (device) => {
    beforeEach(() => openDevice(device));
    body(device);
  });
}

export type FloatDType = 'float32' | 'float64';

/** A device and the float precision a proof runs in there. */
export interface TestTarget {
  device: TestDevice;
  dtype: FloatDType;
}

/**
 * The float64 CPU reference (where float64 sharpens an identity) and float32 on every test device,
 * the precision WebGPU computes in.
 */
export const TEST_TARGETS: readonly TestTarget[] = [
  { device: 'cpu', dtype: 'float64' },
  ...TEST_DEVICES.map((device) => ({ device, dtype: 'float32' as const })),
];

/** `describe(name [device, dtype])` once per test target, with the device opened before each test. */
export function onEachTarget(name: string, body: (target: TestTarget) => void): void {
  const labelled = TEST_TARGETS.map((target) => [`${target.device}, ${target.dtype}`, target] as const);
  describe.each(labelled)(`${name} [%s]`, (_label, target) => {
    beforeEach(() => openDevice(target.device));
    body(target);
  });
}

/** Unit roundoff u: every float op's result is within a relative u of the exact one. */
export function unitRoundoff(dtype: FloatDType): number {
  return dtype === 'float64' ? 2 ** -53 : 2 ** -24;
}

/** A tensor's values as plain numbers (every float32 is exactly a double). */
export async function hostValues(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/**
 * Runs `fn` and counts the reads from `device` to the host it makes (asynchronous and
 * synchronous), by wrapping the device backend's read methods for the duration of the call.
 */
export async function countHostReads<T>(device: TestDevice, fn: () => Promise<T>): Promise<{ result: T; reads: number }> {
  const backend = getBackend(device);
  const { read, readSync } = backend;
  let reads = 0;
  // The CPU's asynchronous read calls its synchronous one: count the outermost call only.
  let depth = 0;
  const counted = <A, R>(method: (handle: A) => R) => (handle: A): R => {
    if (depth === 0) reads++;
    depth++;
    try {
      return method.call(backend, handle);
    } finally {
      depth--;
    }
  };
  backend.read = counted(read);
  if (readSync) backend.readSync = counted(readSync);
  try {
    return { result: await fn(), reads };
  } finally {
    // The wrappers are own properties shadowing the class's methods: removing them restores those.
    delete (backend as Partial<typeof backend>).read;
    delete (backend as Partial<typeof backend>).readSync;
  }
}
