// A Node engine's adapter from its id in the engine table, configured as its row says: the one
// place the suite (worker.ts) and the tests that drive an adapter directly make engines. Each
// peer's module is imported only when its engine is asked for (TensorFlow.js and jax-js register
// global backends).

import type { NodeEngineId } from './engines.js';
import { ENGINES } from './engines.js';
import type { Engine } from './engines/engine.js';

/** The adapter of engine `id` (not started: call its hello()). */
export async function loadEngine(id: NodeEngineId): Promise<Engine> {
  switch (id) {
    case 'scorch-cpu':
      return (await import('./engines/scorch.js')).scorchEngine('cpu');
    case 'scorch-cpu-threads':
      return (await import('./engines/scorch.js')).scorchEngine('cpu', { threads: 'default' });
    case 'scorch-cpu-fastmath':
      return (await import('./engines/scorch.js')).scorchEngine('cpu', { fastMath: true });
    case 'scorch-webgpu':
      return (await import('./engines/scorch.js')).scorchEngine('webgpu');
    case 'scorch-cpu-chromium':
    case 'scorch-cpu-chromium-threads':
    case 'jaxjs-wasm-chromium':
    case 'jaxjs-wasm-chromium-threads':
      return (await import('./engines/chromium.js')).chromiumEngine(ENGINES[id].chromiumPage!);
    case 'tfjs-cpu':
    case 'tfjs-wasm':
    case 'tfjs-webgpu':
      return (await import('./engines/tfjs.js')).tfjsEngine(id.slice('tfjs-'.length) as 'cpu' | 'wasm' | 'webgpu');
    case 'jaxjs-wasm':
    case 'jaxjs-webgpu':
      return (await import('./engines/jaxjs.js')).jaxjsEngine(id.slice('jaxjs-'.length) as 'wasm' | 'webgpu');
  }
}
