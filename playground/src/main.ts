// Entry point of the playground page: reads the URL's settings, picks the backend (WebGPU when
// the browser has an adapter, else CPU; `?backend=cpu|webgpu` forces one), starts the app and
// publishes `window.scorchPlayground` for automation once the page is ready.
//
// URL parameters (all optional): backend, dataset, loss, seed, steps, lr, batch, sigma, eps,
// chunk, particles, e.g. `?backend=cpu&dataset=rings&loss=dsm&seed=3`. Data sets and losses go by
// their names in @scorch/score's registry, as on the command line (`swissroll`, `ssm-vr-clean`).
// A parameter not in this list, or a value a setting cannot take, stops the page with a message.

import { DATASET_NAMES, isDatasetName } from '@scorch/score';
import { DEFAULT_SETTINGS, type NumericSetting, PlaygroundApp, numericSettingProblem, seedProblem } from './app.js';
import { chooseBackend, parseBackendPreference } from './backendSelection.js';
import { PLAYGROUND_OBJECTIVES, isPlaygroundObjective } from './objectives.js';
import type { PlaygroundSettings } from './playgroundApi.js';

/** The URL parameters the page reads (a misspelt one, `los=dsm`, is refused rather than ignored). */
const URL_PARAMETERS = ['backend', 'dataset', 'loss', 'seed', 'steps', 'lr', 'batch', 'sigma', 'eps', 'chunk', 'particles'];

function settingsFromUrl(params: URLSearchParams): PlaygroundSettings {
  for (const [name, value] of params) {
    if (!URL_PARAMETERS.includes(name)) throw new Error(`${name}=${value}: unknown parameter; expected ${URL_PARAMETERS.join(', ')}`);
    // params.get reads the first of them: ?seed=3&seed=abc started with seed 3 and no message.
    const given = params.getAll(name);
    if (given.length > 1) throw new Error(`${name} is given ${given.length} times (${given.map((v) => `${name}=${v}`).join(', ')}); give it once`);
  }
  const settings = { ...DEFAULT_SETTINGS };
  // The settings the page's fields and configure() take, with their bounds (app.ts).
  const setting = (name: string, key: NumericSetting): number | undefined => {
    const raw = params.get(name);
    if (raw === null) return undefined;
    const problem = numericSettingProblem(key, Number(raw));
    if (problem) throw new Error(`${name}=${raw}: ${problem}`);
    return Number(raw);
  };

  const dataset = params.get('dataset');
  if (dataset !== null) {
    if (!isDatasetName(dataset)) throw new Error(`dataset=${dataset}: expected one of ${DATASET_NAMES.join(', ')}`);
    settings.dataset = dataset;
  }
  const objective = params.get('loss');
  if (objective !== null) {
    if (!isPlaygroundObjective(objective)) throw new Error(`loss=${objective}: expected one of ${PLAYGROUND_OBJECTIVES.join(', ')}`);
    settings.objective = objective;
  }
  const seed = params.get('seed');
  if (seed !== null) {
    // Number('') is 0: an empty seed= is refused, not read as seed 0.
    const value = seed.trim() === '' ? NaN : Number(seed);
    const problem = seedProblem(value);
    if (problem) throw new Error(`seed=${seed}: ${problem}`);
    settings.seed = value;
  }
  settings.trainingSteps = setting('steps', 'trainingSteps') ?? settings.trainingSteps;
  settings.learningRate = setting('lr', 'learningRate') ?? settings.learningRate;
  settings.batchSize = setting('batch', 'batchSize') ?? settings.batchSize;
  settings.dsmSigma = setting('sigma', 'dsmSigma') ?? settings.dsmSigma;
  settings.stepSize = setting('eps', 'stepSize') ?? settings.stepSize;
  settings.chunkSize = setting('chunk', 'chunkSize') ?? settings.chunkSize;
  settings.particleCount = setting('particles', 'particleCount') ?? settings.particleCount;
  return settings;
}

/**
 * An error nothing else caught (a bug, a failure in an event handler) is shown in the page's
 * message line as well as in the console, where a reader of the page would not look.
 */
function showUncaught(error: unknown): void {
  const target = document.getElementById('message');
  if (target) target.textContent = `Unexpected error: ${error instanceof Error ? error.message : String(error)}`;
}
window.addEventListener('error', (event) => showUncaught(event.error ?? event.message));
window.addEventListener('unhandledrejection', (event) => showUncaught(event.reason));

async function main(): Promise<void> {
  const params = new URLSearchParams(window.location.search);
  const settings = settingsFromUrl(params);
  const backend = await chooseBackend(parseBackendPreference(params.get('backend')));
  if (backend.fallbackReason) console.warn(`playground: computing on the CPU; WebGPU was not available: ${backend.fallbackReason}`);
  const app = new PlaygroundApp(backend, settings);
  await app.start();
  window.scorchPlayground = app.api();
  document.body.dataset.ready = 'true';
}

main().catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  console.error('playground: failed to start:', e);
  const target = document.getElementById('message');
  if (target) target.textContent = `The playground could not start: ${message}`;
  const backend = document.getElementById('backend');
  if (backend && backend.dataset.device === undefined) backend.textContent = 'none (the page did not start)';
  document.body.dataset.error = message;
});
