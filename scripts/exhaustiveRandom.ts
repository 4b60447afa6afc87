// Every 24-bit uniform of r and of θ through the CPU's WebAssembly normal draws
// (packages/tensor/src/cpu/wasm/randomModule.ts), the other uniform fixed at a few values, against
// fillRandom's formula bit for bit: each factor of z = r·cos θ (and r·sin θ) over all its inputs.
// The test suite checks one value of the other (wasmRandom.test.ts); this checks five, in about
// fifteen seconds.
//
// Usage: node scripts/run.mjs scripts/exhaustiveRandom.ts. Exits 1 on any mismatch.

import { checkNormals, instantiate } from '../packages/tensor/test/randomReference.js';

const mod = instantiate();
let failed = false;
for (const other of [1, 77, 2 ** 22, 2 ** 23 + 12345, 2 ** 24 - 1]) {
  for (const [name, pairAt] of [['theta', (i: number) => [other, i] as const], ['r', (i: number) => [i, other] as const]] as const) {
    const t0 = performance.now();
    try {
      const { listed, compared } = checkNormals(mod, 2 ** 24, pairAt);
      console.log(`${name} over all 2^24 uniforms, the other ${other}: ${compared} values equal, ${listed.size} pairs redone by the exact path (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed = true;
      console.log(`${name}, the other ${other}: ${(e as Error).message}`);
    }
  }
}
process.exit(failed ? 1 : 0);
