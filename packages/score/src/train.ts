// A training loop for named parameters: each step differentiates the loss with `valueAndGrad`,
// optionally clips the gradients, applies the optimiser and updates an EMA. By default the whole
// step is compiled once with `jit` and replayed (fused kernels, one submit per step on WebGPU);
// the step's host scalars (learning rate, bias corrections, EMA decay) and its random key are
// arguments, so nothing retraces. Eagerly (`jit: false`), each step runs inside one `tidy`. The
// loss value is read back from the device only every `every` steps, for the progress callback.

import { type JittedFunction, jit, noGrad, valueAndGrad } from '@scorch/autograd';
import { type RandomKey, type Tensor, checkKey, checkNumber, checkOptions, fmtShape, foldIn, full, tidy } from '@scorch/tensor';
import { checkBoolean, optionNames } from './conventions.js';
import type { Params } from './models.js';
import { type Ema, type Optimizer, type StepScalars, clipGradNorm } from './optim.js';

export interface TrainProgress {
  /** Steps completed (1-based). */
  step: number;
  /** The loss at that step (before its update was applied). */
  loss: number;
}

/**
 * `P` is the type of the parameter record: the loss receives a record with the same names (the
 * tracers of a step), so a loss over `{ w1, b1, w2 }` reads `p.w1` as a Tensor without a cast.
 */
export interface TrainOptions<P extends Params = Params> {
  /** The parameters to train, updated in place. */
  params: P;
  /**
   * The scalar loss at `params` (tracers with the same names while differentiating). `key` is a
   * fresh key for this step (foldIn(key, step)), `step` is 0-based.
   */
  loss: (params: P, key: RandomKey, step: number) => Tensor;
  /** Updates `params` from their gradients (`adam()`, `sgd()`); its state is created before the first step. */
  optimizer: Optimizer;
  /** Steps to run in this call. */
  steps: number;
  /** The run's key: step k's loss gets foldIn(key, k). */
  key: RandomKey;
  /**
   * The 0-based number of the first step; default 0. A run continued after `startStep` steps
   * (its optimiser's and EMA's state loaded with `loadStateDict`, so the optimiser's `stepCount`
   * is `startStep`) takes the keys foldIn(key, startStep), foldIn(key, startStep + 1), …, passes
   * those step numbers to the loss, and reports and reads the loss at the steps the whole run
   * would have: its steps are the uninterrupted run's. Given, it must equal the optimiser's
   * `stepCount`.
   */
  startStep?: number;
  /** Clip gradients to this global norm first (Song et al. 2021 clip at 1); default: no clipping. */
  clipNorm?: number;
  /** An EMA of `params` (from `ema(params)`) updated after every step. */
  ema?: Ema;
  /** Read the loss every this many steps (and at the last step); default 100. */
  every?: number;
  /** Called (and awaited) with the step and its loss each time the loss is read (see `every`). */
  onProgress?: (progress: TrainProgress) => void | Promise<void>;
  /** Throw when a read loss is NaN or infinite; default true. */
  stopOnNonFinite?: boolean;
  /**
   * Compile the step once (`jit`) and replay it; default true, except for a loss that takes the
   * step number (a third parameter; see lossTakesStep), which would be a different program every
   * step and so runs eagerly. false runs every step eagerly, op by op (for debugging: values can be read inside).
   */
  jit?: boolean;
  /**
   * Whether the loss takes the step number; default `loss.length >= 3`. JavaScript's
   * `Function.length` does not count a parameter with a default value or a rest parameter, so a
   * loss written `(params, key, step = 0) =>` or `(...args) =>` looks as if it ignored the step
   * (and would be compiled once, with step 0): set true for such a loss.
   */
  lossTakesStep?: boolean;
  /**
   * Stops training early once aborted (e.g. by a Ctrl-C listener): the step in progress is
   * finished, its loss read (it is the last step, as a run of that many steps would read it) and
   * reported, and no further step is taken; `TrainResult.steps` says how many were. Given a
   * signal, the loop lets the event loop turn about every 20 ms between steps (on the CPU a step
   * runs synchronously), so that its abort can arrive mid-run; already aborted, no step runs.
   */
  signal?: AbortSignal;
  /**
   * A step made by `trainingStep` with these `params`, `loss`, `optimizer`, `clipNorm`, `ema`,
   * `jit` and `lossTakesStep`, run instead of a step of train's own, and not disposed: the caller
   * disposes it. A run trained in several calls (stretches between checkpoints) passes one step
   * to each, so its program is traced and compiled once, not once per call.
   */
  step?: TrainingStep;
}

const TRAIN_OPTIONS = optionNames<TrainOptions>()([
  'params', 'loss', 'optimizer', 'steps', 'key', 'startStep', 'clipNorm', 'ema', 'every', 'onProgress', 'stopOnNonFinite', 'jit', 'lossTakesStep', 'signal', 'step',
]);

export interface TrainResult {
  /** The losses read (every `every` steps and at the last step). */
  history: TrainProgress[];
  /** The steps this call took: `steps`, or fewer when `signal` stopped it. */
  steps: number;
}

/** How long (ms) training with a `signal` runs between turns of the event loop. */
const SIGNAL_POLL_MS = 20;

/**
 * Lets the event loop turn once: resolves after the timers, I/O callbacks and signal listeners
 * already due have run (setImmediate; setTimeout 0 where there is none, as in a browser). On
 * the CPU, training and sampling run synchronously between awaits of values already computed,
 * so a long loop awaits this now and then for a listener (an abort, Ctrl-C) to run at all.
 */
export function turnEventLoop(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
}

/** What one training step needs: `train`'s options without the loop's. */
export type TrainingStepOptions<P extends Params = Params> = Pick<TrainOptions<P>, 'params' | 'loss' | 'optimizer' | 'clipNorm' | 'ema' | 'jit' | 'lossTakesStep'>;
const TRAINING_STEP_OPTIONS = optionNames<TrainingStepOptions>()(['params', 'loss', 'optimizer', 'clipNorm', 'ema', 'jit', 'lossTakesStep']);
/** The options each step made by trainingStep was made with (for train's `step`). */
const stepOptions = new WeakMap<TrainingStep, Readonly<Record<keyof TrainingStepOptions, unknown>>>();

/**
 * One training step, ready to call many times: `step(key, n)` computes the loss at the current
 * parameters with the step's key (`n` is the 0-based step number), its gradient, clips it, and
 * updates the parameters (and the EMA) in place; it returns the loss as a scalar tensor (the
 * caller disposes it). Compiled once with jit unless `jit: false` (see TrainOptions.jit), so a
 * loop that calls it replays one program. `dispose()` frees the compiled program.
 */
export interface TrainingStep {
  (key: RandomKey, step: number): Tensor;
  /** Whether the step is compiled (jit). */
  readonly compiled: boolean;
  /** Frees the compiled program (kernels, buffers); the step cannot run after. */
  dispose(): void;
}

/**
 * Builds one training step (`TrainingStep`) from `params`, `loss`, `optimizer` and optional
 * `clipNorm`, `ema`, `jit` and `lossTakesStep` (default: compiled unless the loss takes the step
 * number); `train`
 * runs it `steps` times. The optimiser state is initialised here.
 */
export function trainingStep<P extends Params>(opts: TrainingStepOptions<P>, where = 'trainingStep'): TrainingStep {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object`);
  if (where === 'trainingStep') checkOptions(where, opts, TRAINING_STEP_OPTIONS);
  const { params, loss, optimizer, clipNorm, ema } = opts;
  if (params === null || typeof params !== 'object' || Object.keys(params).length === 0) throw new Error(`${where}: params must be a non-empty record of tensors`);
  if (typeof loss !== 'function') throw new TypeError(`${where}: loss must be a function (params, key, step) => scalar Tensor`);
  if (!optimizer || typeof optimizer.step !== 'function') throw new TypeError(`${where}: optimizer must be an Optimizer (adam(), sgd(...))`);
  checkNumber(where, 'clipNorm', clipNorm, { min: 0, exclusiveMin: true });
  if (ema !== undefined && (ema === null || typeof ema.update !== 'function')) throw new TypeError(`${where}: ema must be an Ema (from ema(params))`);
  if (opts.lossTakesStep !== undefined) checkBoolean(where, 'lossTakesStep', opts.lossTakesStep);
  const takesStep = opts.lossTakesStep ?? loss.length >= 3;
  if (opts.jit !== undefined) checkBoolean(where, 'jit', opts.jit);
  if (opts.jit === true && takesStep) {
    const why = opts.lossTakesStep === undefined ? 'a third parameter' : 'lossTakesStep: true';
    throw new Error(`${where}: jit: true with a loss that takes the step number (${why}): a compiled step is traced once, so pass step-dependent values as tensors, or set jit: false`);
  }
  const compile = opts.jit ?? !takesStep;

  const names = Object.keys(params);
  const toRecord = (list: readonly Tensor[]): Params => Object.fromEntries(names.map((n, i) => [n, list[i]!]));
  // The step's scalars are made in the widest float dtype among the parameters and cast down to
  // each parameter's (optim.ts scalarFor), as an eager step rounds a number to the parameter's
  // dtype: made in float32, the scalars of a float64 parameter would lose their low bits.
  const widest = Object.values(params).find((p) => p.dtype === 'float64') ?? params[names[0]!]!;
  const scalar = (v: number): Tensor => full([], v, { dtype: widest.dtype, device: widest.device });
  const asTensors = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, scalar(v)]));

  /** One step: the loss at `current` (returned) and the updates, all by assign. */
  const stepOnce = (current: Params, stepKey: RandomKey, scalars: StepScalars, averaging: StepScalars | undefined, step: number): Tensor => {
    // The record has params' names, each bound to its tracer: the P the loss was typed with.
    const objective = (...flat: Tensor[]): Tensor => loss(toRecord(flat) as P, stepKey, step);
    const [lossValue, gradList] = valueAndGrad(objective, { argnums: names.map((_, i) => i) })(...names.map((n) => current[n]!));
    let grads = toRecord(gradList as Tensor[]);
    if (clipNorm !== undefined) grads = clipGradNorm(grads, clipNorm).grads;
    optimizer.applyUpdate(current, grads, scalars);
    if (ema) ema.applyUpdate(current, averaging!);
    return lossValue;
  };
  let compiled: JittedFunction<[Params, RandomKey, Record<string, Tensor>, Record<string, Tensor> | undefined], Tensor> | null = null;
  // The state must exist before a step is traced, and the parameters are checked (float dtypes)
  // before a step is counted; the parameters are updated in place.
  optimizer.init(params);
  if (ema) {
    const missing = Object.keys(ema.shadow).filter((n) => !Object.hasOwn(params, n));
    if (missing.length > 0) throw new Error(`${where}: the ema averages ${missing.map((n) => `'${n}'`).join(', ')}, not among the params (${names.join(', ')})`);
    // Checked here, not by the EMA's own update: that runs after the optimiser's, so an eager
    // step would move the parameters and the moments and then throw, its count taken back.
    for (const [n, s] of Object.entries(ema.shadow)) {
      const p = params[n]!;
      if (s.dtype !== p.dtype || s.shape.length !== p.shape.length || s.shape.some((d, i) => d !== p.shape[i]) || s.device !== p.device) {
        throw new Error(
          `${where}: the ema's average of '${n}' is ${s.dtype} ${fmtShape(s.shape)} on '${s.device}' but the parameter is ${p.dtype} ${fmtShape(p.shape)} on '${p.device}'; make the ema from these params (ema(params))`,
        );
      }
    }
  }
  if (compile) {
    compiled = jit((current: Params, stepKey: RandomKey, scalars: Record<string, Tensor>, averaging: Record<string, Tensor> | undefined) => stepOnce(current, stepKey, scalars, averaging, 0), { donate: [0] });
  }
  const run = ((stepKey: RandomKey, step: number): Tensor => {
    // Checked before the step is counted: a bad key failed inside the loss (or was traced into a
    // compiled step as whatever it was), and a step that is not a count reached the loss as is.
    checkKey(stepKey, `${where} step: key`);
    checkNumber(`${where} step`, 'step', step, { integer: true, min: 0 });
    if (step === undefined) throw new TypeError(`${where} step: step is required (the 0-based step number), e.g. step(foldIn(key, n), n)`);
    // Checked before each step: a parameter or average disposed meanwhile (by a progress callback,
    // or another loop at an await) failed inside the step with an error naming the compiled step
    // ('jit argument 0') or an op, not the tensor.
    checkLive(where, params, 'parameter');
    if (ema) checkLive(where, ema.shadow, "ema's average of");
    const stepScalars = optimizer.beginStep(params);
    let averaging: Record<string, number> | undefined;
    try {
      averaging = ema?.beginUpdate();
      // The gradients are taken functionally: parameters that also require grad (for backward()
      // elsewhere) are not recorded into the ambient graph, which would make jit run the step eagerly.
      return noGrad(() =>
        tidy(() =>
          compiled ? compiled(params, stepKey, asTensors(stepScalars), averaging && asTensors(averaging)) : stepOnce(params, stepKey, stepScalars, averaging, step),
        ),
      );
    } catch (error) {
      // The loss (or its trace) threw before any update: the step is not counted, so the next
      // one gets this one's bias corrections and schedule, as if it had not been tried.
      optimizer.abandonStep?.();
      if (averaging) ema!.abandonUpdate();
      throw error;
    }
  }) as TrainingStep;
  Object.defineProperties(run, {
    compiled: { value: compiled !== null },
    dispose: { value: () => compiled?.clearCache() },
  });
  stepOptions.set(run, { params, loss, optimizer, clipNorm, ema, jit: opts.jit, lossTakesStep: opts.lossTakesStep });
  return run;
}

/** Throws naming the first tensor of `record` that was disposed: training updates them in place. */
function checkLive(where: string, record: Params, what: string): void {
  for (const [name, t] of Object.entries(record)) {
    if (t.isDisposed) {
      throw new Error(`${where}: the ${what} '${name}', a ${t.dtype} ${fmtShape(t.shape)} tensor, was disposed; every step updates it in place, so it must live until training ends (dispose it after)`);
    }
  }
}

/**
 * Why training stopped on a non-finite loss, and what to change. The loss of step `n` (from 0) is
 * computed before that step's update, so at the first step no learning rate or clipping is the
 * cause: the data, the loss's settings (noise levels) or the initial parameters are. The loss is
 * read only every `every` steps: `lastFinite` is the last step (1-based) read finite, if any, so
 * the message says "became" only when that was the step just before.
 */
function nonFiniteLossMessage(where: string, loss: number, n: number, lastFinite: number | undefined): string {
  if (n === 0) {
    return `${where}: the loss is ${loss} at step 1, before any update; check the data, the loss's settings (its noise levels) and the initial parameters`;
  }
  if (lastFinite === n) return `${where}: the loss became ${loss} at step ${n + 1}; lower the learning rate or clip gradients (clipNorm)`;
  const before = lastFinite === undefined
    ? 'not read at any step before (read it every step, every: 1, to see whether it was finite at step 1)'
    : `finite at step ${lastFinite}, the last step read`;
  return `${where}: the loss is ${loss} at step ${n + 1}, ${before}; lower the learning rate or clip gradients (clipNorm)`;
}

/**
 * Runs `steps` optimisation steps of `loss` over `params` (updated in place) with `optimizer`,
 * the step's key foldIn(key, step). `steps` and `key` are required; `startStep` (a continued
 * run's first step, default 0), `every` (default 100), `clipNorm`, `ema`, `onProgress`,
 * `stopOnNonFinite` (default true), `jit`, `lossTakesStep`, `signal` (stops the run after the
 * step in progress) and `step` (a step of trainingStep's to reuse) as in `TrainOptions`. Returns the losses read (every `every` steps and at the
 * last step) and the steps taken (`TrainResult`: fewer than `steps` when `signal` stopped it).
 */
export async function train<P extends Params>(opts: TrainOptions<P>): Promise<TrainResult> {
  const where = 'train';
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object`);
  checkOptions(where, opts, TRAIN_OPTIONS);
  const { steps, key } = opts;
  // Required: checkNumber lets undefined through (for defaults), and a loop to undefined runs no step.
  if (steps === undefined) throw new TypeError(`${where}: steps is required (the number of optimisation steps, an integer >= 0), e.g. train({ ..., steps: 1000 })`);
  const every = opts.every ?? 100;
  const stopOnNonFinite = opts.stopOnNonFinite ?? true;
  checkNumber(where, 'steps', steps, { integer: true, min: 0 });
  checkNumber(where, 'every', every, { integer: true, min: 1 });
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new TypeError(`${where}: onProgress must be a function ({ step, loss }) => void`);
  checkBoolean(where, 'stopOnNonFinite', stopOnNonFinite);
  checkKey(key, `${where}: key`);
  const { signal } = opts;
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) {
    throw new TypeError(`${where}: signal must be an AbortSignal (new AbortController().signal), got ${signal === null ? 'null' : typeof signal}`);
  }
  const start = opts.startStep ?? 0;
  checkNumber(where, 'startStep', start, { integer: true, min: 0 });
  // A continued run whose optimiser state was not loaded would take the schedule's (and Adam's
  // corrections') values of its first steps again, not those of the steps it continues.
  if (opts.startStep !== undefined && opts.optimizer && opts.optimizer.stepCount !== start) {
    throw new Error(`${where}: startStep is ${start} but the optimiser has begun ${opts.optimizer.stepCount} steps; load the state of the run being continued into it first (optimizer.loadStateDict)`);
  }
  const given = opts.step;
  if (given !== undefined) {
    const made = typeof given === 'function' ? stepOptions.get(given) : undefined;
    if (!made) throw new TypeError(`${where}: step must be a TrainingStep made by trainingStep(...), got ${given === null ? 'null' : typeof given}`);
    // Its program is of the options it was made with: run with others, it would train those.
    const differing = TRAINING_STEP_OPTIONS.find((name) => made[name] !== opts[name]);
    if (differing) throw new Error(`${where}: step was made by trainingStep with a different ${differing} than train's; give both the same params, loss, optimizer, clipNorm, ema, jit and lossTakesStep`);
  }
  const step = given ?? trainingStep(opts, where);
  const history: TrainProgress[] = [];
  let taken = 0;
  let lastTurn = performance.now();
  try {
    for (let n = start; n < start + steps; n++) {
      if (signal?.aborted) break;
      let read = (n + 1) % every === 0 || n === start + steps - 1;
      const value = step(foldIn(key, n), n);
      taken++;
      // On every step, read or not: reading a CPU value awaits a promise already settled, and
      // onProgress may be synchronous (the CLI's log line and checkpoint), so with every: 1 the
      // event loop never turned and a Ctrl-C listener never ran.
      if (signal && performance.now() - lastTurn >= SIGNAL_POLL_MS) {
        await turnEventLoop();
        lastTurn = performance.now();
      }
      // Stopped here: this step is the last, read as the last step of a run is.
      if (signal?.aborted) read = true;
      if (!read) {
        value.dispose();
        continue;
      }
      const lossNumber = (await value.data())[0]!;
      value.dispose();
      const progress = { step: n + 1, loss: lossNumber };
      history.push(progress);
      if (stopOnNonFinite && !Number.isFinite(lossNumber)) throw new Error(nonFiniteLossMessage(where, lossNumber, n, history.at(-2)?.step));
      await opts.onProgress?.(progress);
    }
  } finally {
    if (!given) step.dispose();
  }
  return { history, steps: taken };
}
