// Test runner configuration: workspace packages resolve to their TypeScript sources, so tests
// exercise the code as written (no build step between an edit and a test run).
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@scorch/options': src('./packages/options/src/index.ts'),
      '@scorch/tensor': src('./packages/tensor/src/index.ts'),
      '@scorch/autograd': src('./packages/autograd/src/index.ts'),
      '@scorch/kernels': src('./packages/kernels/src/index.ts'),
      '@scorch/score': src('./packages/score/src/index.ts'),
      '@scorch/report': src('./packages/report/src/index.ts'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'tests/**/*.test.ts', 'benchmarks/test/**/*.test.ts'],
    testTimeout: 60_000,
    // After each file: no WebAssembly module was refused (in Node, a generator defect).
    setupFiles: ['tests/setup/noWasmRefusals.ts'],
    // At least two test files at a time. Vitest's default, one fewer than the cores, ran the files
    // one at a time on CI's two cores: 561 s for the suite, near its 10-minute limit. Two at a
    // time on the same machine: 376 s, the same files passing.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
