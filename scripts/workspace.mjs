// The workspace's packages as esbuild aliases, one list for every script that bundles from source
// (scripts/run.mjs, the scorch CLI shim, the playground build): a new package is added here once.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const workspaceRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Package name → absolute path of its TypeScript entry. */
export const workspaceAliases = Object.fromEntries(
  ['options', 'tensor', 'autograd', 'kernels', 'score', 'report'].map((name) => [`@scorch/${name}`, resolve(workspaceRoot, 'packages', name, 'src', 'index.ts')]),
);
