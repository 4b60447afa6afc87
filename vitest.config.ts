// Test runner configuration: workspace packages resolve to their TypeScript sources, so tests
// exercise the code as written (no build step between an edit and a test run).
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
  },
});
