// `scorch sample`: draw samples from a trained checkpoint with any sampler that fits its loss, and
// write the samples, their metrics, plots and an HTML report (next to the checkpoint by default).

import { OBJECTIVES, SAMPLERS, SAMPLERS_FOR, type SamplerName, type ScoreModel, datasetEntry, describeNoise } from '@scorch/score';
import { type CommandSpec, type FlagValue, UsageError } from './args.js';
import { type BackendChoice, selectBackend } from './backend.js';
import { backendFlag, forceFlag, samplerFlags } from './flags.js';
import type { Io } from './io.js';
import { checkSampleSteps } from './limits.js';
import { metricsJson, prepareOutputDirectory, readCheckpoint, restoreModel } from './output.js';
import { Progress } from './progress.js';
import { computeMetrics, makeHtml, makePlots, writeResults } from './report.js';
import { Held, checkSamplerFits, drawSamples, lossesBySampler, runKeys } from './sampling.js';
import { RECORDED_PATHS, checkSamplerFlags, pairs, samplerChoicesFrom } from './train.js';
import { plural } from '@scorch/report';

export const SAMPLE_SPEC: CommandSpec = {
  name: 'sample',
  summary: 'draw samples from a trained checkpoint and write them with metrics and a report',
  details:
    'Loads checkpoint.json from a directory written by \'scorch train\', draws --n samples, and writes samples.json, metrics.json, samples.svg, score.svg, trajectories.svg (and loss.svg from the training history) and index.html.\n\n' +
    `Samplers that fit each loss: ${lossesBySampler((fits) => `${fits.slice(0, -1).join(', ')}${fits.length > 1 ? ' or ' : ''}${fits.at(-1)}`)}.`,
  flags: [
    { name: 'checkpoint', kind: 'string', valueName: 'DIR', required: true, description: "a run directory written by 'scorch train' (or its checkpoint.json)" },
    ...samplerFlags,
    {
      name: 'out', kind: 'string', valueName: 'DIR', defaultText: 'a new directory <checkpoint DIR>/samples-<sampler>-<date>-<time>',
      description: 'where the samples and report are written; must be new or empty unless --force',
    },
    forceFlag,
    { name: 'seed', kind: 'integer', valueName: 'S', min: 0, default: 1, description: 'seed of the sampler\'s random draws (and of the fresh data the samples are compared with), derived as \'scorch train\' derives them: with the training run\'s --seed (its checkpoint records it), the same sampler and the same sampler flags, the run\'s own samples are drawn again' },
    backendFlag,
  ],
  examples: ['scorch sample --checkpoint scorch-runs/demo-20250101-120000 --sampler langevin', 'scorch sample --checkpoint runs/vp --sampler ode --n 2000'],
};

export async function runSample(values: Readonly<Record<string, FlagValue>>, given: ReadonlySet<string>, io: Io): Promise<number> {
  const where = 'scorch sample';
  const wallStart = performance.now();
  const { checkpoint, dir, ref } = readCheckpoint(where, values.checkpoint as string);
  const family = OBJECTIVES[checkpoint.loss].family;
  const sampler = (values.sampler as SamplerName | undefined) ?? SAMPLERS_FOR[family][0]!;
  checkSamplerFits(where, sampler, checkpoint.loss);
  checkSamplerFlags(where, given, sampler);
  await checkSampleSteps(where, checkpoint.noise, sampler, values['sample-steps'] as number | undefined);
  // --force must not move aside the checkpoint this run samples from.
  const out = prepareOutputDirectory(where, (values.out as string | undefined) ?? { parent: dir, stem: `samples-${sampler}` }, values.force as boolean, [ref.path]);
  // Freed when the run ends, however it ends (a tiny run kept 16 tensors).
  const held = new Held();
  try {
    const outDir = out.path;
    if (out.movedAside) io.out(`--force: moved the previous contents of ${outDir} to ${out.movedAside}`);

    const backend = await selectBackend(values.backend as BackendChoice);
    if (backend.fallbackReason) io.out(`note: no WebGPU adapter (${backend.fallbackReason}); running on the CPU`);
    const entry = datasetEntry(checkpoint.data);
    if (entry.mixture) held.add(entry.mixture);
    const n = values.n as number;
    const seed = values.seed as number;
    // The streams of a training run of this seed: with train's seed, its samples again.
    const { model: modelKey, reference: referenceKey, samples: sampleKey } = runKeys(seed);
    let model: ScoreModel;
    try {
      model = held.add(restoreModel(checkpoint, modelKey));
    } catch (e) {
      // A model description edited, or parameters of another model size, layout or dtype.
      throw new UsageError(`${where}: --checkpoint ${values.checkpoint as string}: its parameters do not fit its model description (${(e as Error).message}); expected a checkpoint written by 'scorch train'`);
    }
    io.out(`sample: ${SAMPLERS[sampler].description} from ${checkpoint.loss} on ${checkpoint.data} (${dir}) · ${n} samples · backend ${backend.description} · seed ${seed}`);

    const reference = held.add(entry.dataset.sample(n, { key: referenceKey }));
    const progress = { bar: undefined as Progress | undefined };
    const run = await drawSamples(
      { model, noise: checkpoint.noise, loss: checkpoint.loss, domain: checkpoint.domain, localStd: entry.localStd },
      samplerChoicesFrom(values, sampler),
      sampleKey,
      {
        paths: RECORDED_PATHS,
        onStep: (done, total) => {
          progress.bar ??= new Progress('sample', total, io.stdout);
          progress.bar.update(done);
        },
      },
    );
    progress.bar?.finish();
    held.add(run.samples);

    const history = checkpoint.training.history ?? [];
    const reportInput = { data: entry, loss: checkpoint.loss, model, noise: checkpoint.noise, run, reference, backend: backend.description, seed, domain: checkpoint.domain, training: null, history };
    const metrics = await computeMetrics(reportInput);
    const plots = await makePlots(reportInput);
    const html = makeHtml({
      title: `scorch sample: ${sampler} from ${checkpoint.loss} on ${checkpoint.data}`,
      intro: `Samples from the checkpoint in ${dir}, drawn with ${SAMPLERS[sampler].description}.`,
      settings: [
        ['checkpoint', dir],
        ['data', `${checkpoint.data} (${entry.description})`],
        ['loss', `${checkpoint.loss}: ${OBJECTIVES[checkpoint.loss].description}`],
        ['noise', describeNoise(checkpoint.noise)],
        // A run stopped early (Ctrl-C, --stop-after) says so, as train's own report does.
        ['trained', `${plural(checkpoint.training.steps, 'step')}${checkpoint.training.totalSteps !== undefined && checkpoint.training.totalSteps > checkpoint.training.steps ? ` of ${checkpoint.training.totalSteps} (stopped early; --resume continues it)` : ''} × batch ${checkpoint.training.batch} on ${checkpoint.training.backend}`],
        ['sampler', `${SAMPLERS[sampler].description}: ${Object.entries(run.settings).map(([k, v]) => `${k} ${v}`).join(', ')}`],
        ['backend', backend.description],
        ['seed', seed],
      ],
      metrics,
      plots,
    });
    const samples = `${JSON.stringify({ format: 'scorch-samples/v1', sampler, n, points: pairs(Array.from(await run.samples.data())) })}\n`;
    writeResults(io, out, { samples, metrics: metricsJson(metrics, ref), plots, html }, metrics, 0, backend.description, wallStart);
    return 0;
  } finally {
    out.release();
    held.free();
  }
}
