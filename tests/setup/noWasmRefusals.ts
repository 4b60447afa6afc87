// Runs with every test file (vitest.config.ts setupFiles). In Node the engine refuses no
// WebAssembly module, so a refusal the CPU backend noted (cpuKernelInfo().wasmRefusals) is a
// module its generators got wrong, whose kernels fell back to TypeScript without a word: the
// values stay right, so no other check would see it. Imported after the file's tests, not before,
// so that files which set the scene before their first import (globals, module resets) keep it.

import { afterAll, expect } from 'vitest';

afterAll(async () => {
  const { cpuKernelInfo } = await import('@scorch/tensor');
  const { wasmRefusals, lastWasmRefusal } = cpuKernelInfo();
  expect(wasmRefusals, `WebAssembly modules refused in Node (a generator defect); the last: ${lastWasmRefusal}`).toBe(0);
});
