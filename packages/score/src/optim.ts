// Optimisers and training aids for named parameters (`Params`): Adam, SGD with momentum, an
// exponential moving average of the parameters, clipping by global norm and learning-rate
// warm-up. Everything is tensor arithmetic, and parameters and state are updated in place with
// `assign`, so a step never reads a value back from the device. Updates run under `noGrad`
// (they are not part of any loss) inside a `tidy` (their temporaries are freed at once).

import { noGrad } from '@scorch/autograd';
import { Tensor, add, checkNumber, checkOptions, composite, currentDynamicTrace, fmtShape, isFloatDType, keep, minimum, mul, sqrt, sum, tidy, zerosLike } from '@scorch/tensor';
import { checkBoolean, optionNames } from './conventions.js';
import type { Params } from './models.js';

/** A constant learning rate, or a schedule of the (1-based) step number. */
export type LearningRate = number | ((step: number) => number);

/** A step's scalars (learning rate, bias corrections): numbers, or scalar tensors in a compiled step. */
export type StepScalars = Readonly<Record<string, number | Tensor>>;

/**
 * An optimiser of named parameters. `step` is the whole of one step; a compiled training step
 * (jit) splits it: `init` creates the state before tracing, `beginStep` computes the step's
 * scalars on the host every call, and `applyUpdate`, traced once, takes them as tensors.
 */
export interface Optimizer {
  /** 'adam' or 'sgd': the kind, saved as a state's `kind`, which `loadStateDict` checks. */
  readonly name: string;
  /**
   * Steps begun so far (the learning-rate schedule's count). Adam's bias corrections follow each
   * parameter's own count of updates instead, as in PyTorch (see `beginStep`).
   */
  readonly stepCount: number;
  /** The learning rate used at (1-based) step `step`. */
  learningRate(step: number): number;
  /** Updates every parameter in place from its gradient (same names, shapes and dtypes). */
  step(params: Params, grads: Params): void;
  /** Creates the state tensors for `params` now (idempotent). */
  init(params: Params): void;
  /**
   * Starts the next step: counts it and returns its scalars by name. `params` are the parameters
   * the step will update (by default every parameter the optimiser holds state for); each counts
   * one more update of its own, so one optimiser stepping two models in turn gives each the bias
   * corrections of its own steps, as PyTorch's per-parameter `step` does.
   */
  beginStep(params?: Params): Record<string, number>;
  /**
   * Takes back the count of the step `beginStep` last began, whose update did not run (its loss
   * threw): the next step then gets the scalars this one would have had, as in PyTorch, where a
   * loss that throws never reaches `optimizer.step()`. Optional for optimisers written outside
   * this package; `trainingStep` calls it when present.
   */
  abandonStep?(): void;
  /** The update of a step begun by `beginStep`, with its scalars; parameters and state change by `assign`. */
  applyUpdate(params: Params, grads: Params, scalars: StepScalars): void;
  /**
   * The optimiser's state, to save beside the parameters and continue training from later (as
   * PyTorch's `optimizer.state_dict()`): see `OptimizerState`. Optional for optimisers written
   * outside this package.
   */
  stateDict?(): OptimizerState;
  /**
   * Restores a state from `stateDict()` for `params` (the parameters it was saved for, by name,
   * on their device), replacing any state held, so that the next steps make the updates the
   * saved optimiser's next steps would have. Refuses (changing nothing) a state of another kind
   * of optimiser, of other options (see `OptimizerState.options`), or whose names, shapes or
   * dtypes differ from `params`'. Optional for optimisers written outside this package.
   */
  loadStateDict?(state: OptimizerState, params: Params): void;
  /** Frees the optimiser's state tensors; a disposed optimiser refuses further steps. */
  dispose(): void;
}

/**
 * An optimiser's state as plain data (`Optimizer.stateDict`): the counts as numbers and the state
 * tensors by slot, each slot a record by parameter name like the parameters themselves, so
 * `saveParams` saves a slot as it saves the parameters. The learning rate is not in it: a
 * schedule is code, given again to the optimiser that loads the state.
 */
export interface OptimizerState {
  /** The optimiser's `name` ('adam', 'sgd'): a state loads only into an optimiser of its kind. */
  readonly kind: string;
  /**
   * The options the updates depend on besides the learning rate (Adam's beta1, beta2 and eps;
   * SGD's momentum and nesterov): a state loads only into an optimiser with the same values.
   */
  readonly options: Readonly<Record<string, number | boolean>>;
  /** Steps begun (`stepCount`): the learning-rate schedule's count. */
  readonly step: number;
  /** Each parameter's own count of updates (Adam's bias corrections follow it), by name. */
  readonly counts: Readonly<Record<string, number>>;
  /**
   * The state tensors by slot (Adam: 'm' and 'v', the moments; SGD with momentum: 'momentum';
   * plain SGD: none), each by parameter name. `stateDict` gives the optimiser's own tensors, not
   * copies: the next step changes them in place, so read (saveParams) or copy them before it.
   */
  readonly state: Readonly<Record<string, Params>>;
}

/** A scalar for arithmetic with `like`: a number as is, a tensor cast to `like`'s dtype if needed. */
function scalarFor(value: number | Tensor | undefined, like: Tensor, where: string, name: string): number | Tensor {
  if (value === undefined) throw new Error(`${where}: the step's scalar '${name}' is missing (take the scalars from beginStep())`);
  return typeof value === 'number' || value.dtype === like.dtype ? value : value.cast(like.dtype);
}

/** What distinguishes one optimiser from another; `makeOptimizer` does the rest. */
interface OptimizerRule {
  /** The names of a parameter's state tensors, in the order `state` makes them. */
  slots: readonly string[];
  /** The options its updates depend on besides the learning rate (`OptimizerState.options`). */
  options: Readonly<Record<string, number | boolean>>;
  /** The state tensors of one parameter (zeros like it), made once. */
  state(p: Tensor): Tensor[];
  /** The (1-based) step's host scalars, by name (the learning rate schedule's, global). */
  scalars(step: number): Record<string, number>;
  /**
   * Scalars that follow a parameter's own step count (Adam's bias corrections): `own` is the
   * number of steps that parameter has taken, this one included. PyTorch counts them per
   * parameter too, so a parameter added mid-training starts its corrections at 1.
   */
  ownScalars?(own: number): Record<string, number>;
  /** Updates one parameter and its state in place, by assign. */
  update(p: Tensor, g: Tensor, state: readonly Tensor[], scalar: (name: string) => number | Tensor): void;
}

/** An Optimizer from its rule: the step count, state per parameter, and the split step. */
function makeOptimizer(where: string, name: string, lr: LearningRate, rule: OptimizerRule): Optimizer {
  const state = new Map<string, Tensor[]>();
  /** Each parameter's own count of updates begun (PyTorch's per-parameter `step`). */
  const counts = new Map<string, number>();
  /** The parameters whose counts the last `beginStep` advanced (for `abandonStep`). */
  let lastBegun: string[] = [];
  /** The highest own count the last `beginStep` gave (its plain scalars' count). */
  let lastTop = 0;
  /** The tensor each name's state belongs to: another tensor under that name is another model's. */
  const owner = new Map<string, Tensor>();
  let t = 0;
  // A step's own scalars: `k` for the parameters at the step's highest own count (all of them
  // when every parameter is stepped every time), `k@name` for a parameter whose count differs
  // (added later, or not stepped every time). The names, not the counts, are in the keys, so a
  // compiled step's record keeps its keys while the counts grow, and a change of which
  // parameters differ changes the keys (and so retraces the step).
  const ownKey = (k: string, key: string): string => `${k}@${key}`;
  // After dispose the moments are gone but the count is not: a step would start from zero
  // moments with the bias correction of step t + 1 (far too small a correction), so it is refused.
  let disposed = false;
  const checkLive = (): void => {
    if (disposed) throw new Error(`${where}: the optimiser was disposed (its state is freed); make a new one to train again`);
  };
  const init = (params: Params): void => {
    checkLive();
    checkRecord(where, params, 'params');
    // Every parameter is checked before any state is made, so a refused call changes nothing.
    for (const [key, p] of Object.entries(params)) {
      checkFloatParam(where, key, p);
      const existing = state.get(key)?.[0];
      if (existing && (existing.dtype !== p.dtype || !sameShape(existing.shape, p.shape))) {
        throw new Error(`${where}: its state for '${key}' is ${existing.dtype} ${fmtShape(existing.shape)} but the parameter is ${p.dtype} ${fmtShape(p.shape)}; use a new optimiser for a different model`);
      }
      // Under jit the parameters are the trace's stand-ins; the real ones were checked before.
      const first = owner.get(key);
      if (first && first !== p && !currentDynamicTrace()) {
        throw new Error(`${where}: its state for '${key}' belongs to another tensor (a parameter of that name it stepped before); an optimiser's moments are one model's, so use a new optimiser for another model`);
      }
    }
    for (const [key, p] of Object.entries(params)) {
      if (state.has(key)) continue;
      stateNeeded(where);
      state.set(key, rule.state(p));
      counts.set(key, 0);
      owner.set(key, p);
    }
  };
  const optimizer: Optimizer = {
    name,
    get stepCount() {
      return t;
    },
    learningRate: (step) => resolveRate(where, lr, step),
    init,
    beginStep(params) {
      checkLive();
      if (params !== undefined) init(params);
      const keys = params === undefined ? [...state.keys()] : Object.keys(params);
      // The scalars first: a schedule that refuses step t + 1 leaves every count as it was.
      const scalars = rule.scalars(t + 1);
      let own: number[] = [];
      let top = t + 1;
      if (rule.ownScalars) {
        own = keys.map((key) => counts.get(key)! + 1);
        top = own.length > 0 ? Math.max(...own) : t + 1;
        Object.assign(scalars, rule.ownScalars(top));
        keys.forEach((key, i) => {
          if (own[i] === top) return;
          for (const [k, v] of Object.entries(rule.ownScalars!(own[i]!))) scalars[ownKey(k, key)] = v;
        });
      }
      for (const key of keys) counts.set(key, counts.get(key)! + 1);
      lastBegun = keys;
      lastTop = top;
      t++;
      return scalars;
    },
    abandonStep() {
      if (t > 0) t--;
      for (const key of lastBegun) if (counts.has(key)) counts.set(key, Math.max(0, counts.get(key)! - 1));
      lastBegun = [];
      lastTop = 0;
    },
    applyUpdate(params, grads, scalars) {
      checkSameLayout(where, params, grads);
      init(params);
      for (const key of Object.keys(params)) {
        if (counts.get(key) !== 0) continue;
        // A parameter beginStep did not count (its state was made just now): at the optimiser's
        // first step its own count is the step's; later its scalars are not in the record.
        if (lastTop !== 1) throw new Error(`${where}: the parameter '${key}' was not counted by beginStep (its state was made after it); pass the step's params to beginStep, or call init(params) before it`);
        counts.set(key, 1);
        lastBegun.push(key);
      }
      // A parameter stepped before but left out of this beginStep took the others' corrections
      // (their count, not its own) and its count stayed behind, without a word.
      const begun = new Set(lastBegun);
      const missed = Object.keys(params).filter((k) => !begun.has(k));
      if (missed.length > 0) {
        throw new Error(`${where}: ${missed.map((k) => `'${k}'`).join(', ')} ${missed.length > 1 ? 'were' : 'was'} not counted by the last beginStep(params); pass beginStep the parameters this update steps`);
      }
      update(() => {
        for (const [key, p] of Object.entries(params)) {
          rule.update(p, grads[key]!, state.get(key)!, (k) => {
            const own = ownKey(k, key);
            return scalarFor(own in scalars ? scalars[own] : scalars[k], p, where, own in scalars ? own : k);
          });
        }
      });
    },
    stateDict() {
      checkLive();
      const slots: Record<string, Params> = {};
      rule.slots.forEach((slot, i) => {
        slots[slot] = Object.fromEntries([...state].map(([key, list]) => [key, list[i]!]));
      });
      return { kind: name, options: { ...rule.options }, step: t, counts: Object.fromEntries(counts), state: slots };
    },
    loadStateDict(saved, params) {
      checkLive();
      // Its tensors are made before a step is traced, like init's: inside a trace they would be
      // the trace's values.
      if (currentDynamicTrace()) throw new Error(`${where}: loadStateDict cannot run inside jit; load the state before compiling the training step (or calling train)`);
      checkRecord(where, params, 'params');
      for (const [key, p] of Object.entries(params)) {
        checkFloatParam(where, key, p);
        // Its state is made like it, after the old state is freed: checked first.
        if (p.isDisposed) throw new Error(`${where}: parameter '${key}' was disposed`);
      }
      checkOptimizerState(where, name, rule, saved, params);
      // Everything was checked: the saved state is copied in, then the old state goes. A
      // parameter's state that fits it (its dtype, shape and device) is kept and assigned in
      // place, so whatever holds it (a compiled training step closes over it) stays valid; other
      // state is made anew. The saved values are all copied before any is assigned: the saved
      // tensors may be this optimiser's own (its own stateDict() loaded back, or one slot's under
      // another's name), which an earlier assign would have changed.
      const old = [...state.values()].flat();
      const fits = (list: readonly Tensor[] | undefined, p: Tensor): list is Tensor[] =>
        list !== undefined && list.length === rule.slots.length && list.every((s) => !s.isDisposed && s.dtype === p.dtype && sameShape(s.shape, p.shape) && s.device === p.device);
      const loaded = Object.entries(params).map(([key, p]) => {
        const from = rule.slots.map((slot) => saved.state[slot]![key]!);
        const mine = state.get(key);
        return [key, fits(mine, p) ? mine : rule.state(p), p, from] as const;
      });
      update(() => {
        const values = loaded.map(([, list, , from]) => from.map((s, i) => (s === list[i] ? s : s.detach())));
        loaded.forEach(([, list], k) => list.forEach((s, i) => {
          if (values[k]![i] !== s) s.assign(values[k]![i]!);
        }));
      });
      const kept = new Set(loaded.flatMap(([, list]) => list));
      for (const s of old) if (!kept.has(s)) s.dispose();
      state.clear();
      counts.clear();
      owner.clear();
      for (const [key, list, p] of loaded) {
        state.set(key, list);
        counts.set(key, saved.counts[key]!);
        owner.set(key, p);
      }
      t = saved.step;
      lastBegun = [];
      lastTop = 0;
    },
    step(params, grads) {
      // Checked (and the state made) before beginStep counts a step that would not run.
      checkSameLayout(where, params, grads);
      init(params);
      optimizer.applyUpdate(params, grads, optimizer.beginStep(params));
    },
    dispose() {
      for (const list of state.values()) for (const s of list) s.dispose();
      state.clear();
      counts.clear();
      owner.clear();
      lastBegun = [];
      disposed = true;
    },
  };
  return optimizer;
}

/** A count in a saved state: a non-negative integer, at most `max` when given. */
function checkCount(where: string, what: string, value: unknown, max?: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || (max !== undefined && value > max)) {
    throw new Error(`${where}: the state's ${what} must be an integer from 0${max === undefined ? '' : ` to ${max} (its step count)`}, got ${JSON.stringify(value)}`);
  }
}

/** The names of a record, quoted, for a message. */
function namesOf(record: object): string {
  return Object.keys(record).map((n) => `'${n}'`).join(', ') || 'none';
}

/**
 * Checks a state given to `loadStateDict` against the optimiser (its kind, options and slots) and
 * `params` (the same names, and tensors of their shapes, dtypes and device), before any change.
 */
function checkOptimizerState(where: string, name: string, rule: OptimizerRule, saved: unknown, params: Params): asserts saved is OptimizerState {
  if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) {
    throw new TypeError(`${where}: expected a state from stateDict() ({ kind, options, step, counts, state }), got ${describe(saved)}`);
  }
  const s = saved as Partial<OptimizerState>;
  if (s.kind !== name) throw new Error(`${where}: the state is of optimiser ${JSON.stringify(s.kind)}, not ${name}; load it into the kind of optimiser that saved it`);
  if (s.options === null || typeof s.options !== 'object') throw new Error(`${where}: the state has no options record (expected ${JSON.stringify(rule.options)})`);
  for (const option of new Set([...Object.keys(rule.options), ...Object.keys(s.options)])) {
    if (!Object.is(s.options[option], rule.options[option])) {
      throw new Error(`${where}: the state was saved with ${option} ${JSON.stringify(s.options[option])}, but this optimiser has ${option} ${JSON.stringify(rule.options[option])}; make the optimiser with the options of the run being continued`);
    }
  }
  checkCount(where, 'step', s.step);
  const step = s.step as number;
  const wanted = Object.keys(params);
  const sameNames = (record: object) => Object.keys(record).length === wanted.length && wanted.every((n) => Object.hasOwn(record, n));
  if (s.counts === null || typeof s.counts !== 'object' || !sameNames(s.counts)) {
    throw new Error(`${where}: the state counts the parameters ${s.counts && typeof s.counts === 'object' ? namesOf(s.counts) : 'none'}, but the params are ${namesOf(params)}; load a state saved for these parameters`);
  }
  for (const key of wanted) checkCount(where, `count of '${key}'`, s.counts[key], step);
  if (s.state === null || typeof s.state !== 'object' || Array.isArray(s.state)) throw new Error(`${where}: the state has no record of state tensors by slot (state)`);
  const slots = Object.keys(s.state);
  if (slots.length !== rule.slots.length || !rule.slots.every((slot) => slots.includes(slot))) {
    throw new Error(`${where}: the state holds the slots ${slots.map((n) => `'${n}'`).join(', ') || 'none'}, but ${name} keeps ${rule.slots.map((n) => `'${n}'`).join(', ') || 'none'}`);
  }
  for (const slot of rule.slots) {
    const record = s.state![slot];
    if (record === null || typeof record !== 'object' || !sameNames(record)) {
      throw new Error(`${where}: the state's '${slot}' holds ${record && typeof record === 'object' ? namesOf(record) : 'nothing'}, but the params are ${namesOf(params)}`);
    }
    for (const key of wanted) {
      const v = record[key];
      const p = params[key]!;
      if (!(v instanceof Tensor)) throw new TypeError(`${where}: the state's '${slot}' of '${key}' is not a Tensor, got ${describe(v)}`);
      if (v.isDisposed) throw new Error(`${where}: the state's '${slot}' of '${key}' was disposed`);
      if (v.dtype !== p.dtype || !sameShape(v.shape, p.shape)) {
        throw new Error(`${where}: the state's '${slot}' of '${key}' is ${v.dtype} ${fmtShape(v.shape)} but the parameter is ${p.dtype} ${fmtShape(p.shape)}`);
      }
      if (v.device !== p.device) throw new Error(`${where}: the state's '${slot}' of '${key}' is on '${v.device}' but the parameter on '${p.device}'; make the state's tensors on the parameters' device`);
    }
  }
}

/** Optimiser state is made before a step is traced; made during tracing it would be a traced value. */
function stateNeeded(where: string): void {
  if (currentDynamicTrace()) throw new Error(`${where}: its state does not exist yet; call init(params) before compiling a training step with jit`);
}

function resolveRate(where: string, lr: LearningRate, step: number): number {
  const value = typeof lr === 'function' ? lr(step) : lr;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new RangeError(`${where}: the learning rate must be a finite non-negative number, got ${value} at step ${step}`);
  return value;
}

/**
 * A constant learning rate must be positive (0 would train nothing); a schedule may reach 0 (at
 * the end of a decay), which `resolveRate` allows step by step.
 */
function checkRate(where: string, lr: unknown): asserts lr is LearningRate {
  if (typeof lr === 'function') return;
  if (typeof lr !== 'number') throw new TypeError(`${where}: lr must be a positive number or a schedule step ↦ lr, got ${JSON.stringify(lr)}`);
  checkNumber(where, 'lr', lr, { min: 0, exclusiveMin: true });
}

/** A decay or momentum coefficient: in [0, 1). */
const UNIT_INTERVAL = { min: 0, max: 1, exclusiveMax: true } as const;

/** Options must be an object of known names (`undefined` means none). */
function checkOptimizerOptions(where: string, opts: unknown, known: readonly string[]): void {
  if (opts === null) throw new TypeError(`${where}: expected an options object, got null`);
  checkOptions(where, opts, known);
}

/**
 * Parameters are float32 or float64: in an int32 tensor the step's fractional scalars (lr, 1 − β)
 * would round to integers (to 0), so an update would silently do nothing or erase the values.
 */
function checkFloatParam(where: string, name: string, p: Tensor): void {
  if (!(p instanceof Tensor)) throw new TypeError(`${where}: parameter '${name}' is not a Tensor, got ${describe(p)}`);
  if (!isFloatDType(p.dtype)) throw new TypeError(`${where}: parameter '${name}' is ${p.dtype}; only float32 and float64 parameters can be trained or averaged`);
}

/** What a value that should have been a Tensor is, for a message. */
function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A record of tensors by name: an object, not null, an array or a Tensor (entries are checked by the caller). */
function checkRecord(where: string, value: unknown, what: string): asserts value is Params {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Tensor) {
    throw new TypeError(`${where}: ${what} must be a record of tensors by name (e.g. model.params), got ${value instanceof Tensor ? 'a Tensor' : describe(value)}`);
  }
}

/**
 * Checks that `other` has a tensor of each parameter's dtype, shape and device for every entry of
 * `params`. In messages `what` names an entry of `other`, `otherWhat` the record (default: the
 * plural of `what`), and `holder` the entry of `params` it is compared with.
 */
function checkSameLayout(where: string, params: Params, other: Params, what = 'gradient', otherWhat = `${what}s`, holder = 'the parameter'): void {
  checkRecord(where, params, 'params');
  checkRecord(where, other, otherWhat);
  for (const [name, p] of Object.entries(params)) {
    const g = other[name];
    if (!g) throw new Error(`${where}: no ${what} for parameter '${name}' (${what}s given for: ${Object.keys(other).join(', ') || 'none'})`);
    checkFloatParam(where, name, p);
    if (!(g instanceof Tensor)) throw new TypeError(`${where}: ${what} of '${name}' is not a Tensor, got ${describe(g)}`);
    if (g.dtype !== p.dtype || !sameShape(g.shape, p.shape)) {
      throw new Error(`${where}: ${what} of '${name}' is ${g.dtype} ${fmtShape(g.shape)} but ${holder} is ${p.dtype} ${fmtShape(p.shape)}`);
    }
    // Checked with the rest before anything changes: an op failed part-way, the earlier
    // parameters (or averages) updated and the later not.
    if (g.device !== p.device) throw new Error(`${where}: ${what} of '${name}' is on '${g.device}' but ${holder} on '${p.device}'`);
  }
}

/** Zeros shaped like `p`, exempt from enclosing tidy scopes (optimiser state outlives a step). */
function stateLike(p: Tensor): Tensor {
  return keep(zerosLike(p));
}

/** Runs an in-place update: no gradient recording, temporaries freed. */
function update(fn: () => void): void {
  noGrad(() => tidy(fn));
}

export interface AdamOptions {
  /** Step size α; default 1e-3 (Kingma & Ba 2015, Algorithm 1). A number or a schedule. */
  lr?: LearningRate;
  /** First-moment decay β₁; default 0.9 (Kingma & Ba 2015). */
  beta1?: number;
  /** Second-moment decay β₂; default 0.999 (Kingma & Ba 2015). */
  beta2?: number;
  /** ε added to √v̂; default 1e-8 (Kingma & Ba 2015). */
  eps?: number;
}
const ADAM_OPTIONS = optionNames<AdamOptions>()(['lr', 'beta1', 'beta2', 'eps']);

/**
 * Adam (Kingma & Ba 2015) with bias correction:
 *   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  θ ← θ − α (m/(1−β₁ᵗ)) / (√v/√(1−β₂ᵗ) + ε),
 * t the parameter's own count of updates (PyTorch's per-parameter `step`: one optimiser stepping
 * two parameter sets in turn gives each the corrections of its own steps), α the learning rate at
 * the optimiser's `stepCount` (a schedule counts the steps begun on any set).
 */
export function adam(opts: AdamOptions = {}): Optimizer {
  const where = 'adam';
  checkOptimizerOptions(where, opts, ADAM_OPTIONS);
  const lr = opts.lr ?? 1e-3;
  const beta1 = opts.beta1 ?? 0.9;
  const beta2 = opts.beta2 ?? 0.999;
  const eps = opts.eps ?? 1e-8;
  checkRate(where, lr);
  checkNumber(where, 'beta1', beta1, UNIT_INTERVAL);
  checkNumber(where, 'beta2', beta2, UNIT_INTERVAL);
  checkNumber(where, 'eps', eps, { min: 0 });
  return makeOptimizer(where, 'adam', lr, {
    slots: ['m', 'v'],
    options: { beta1, beta2, eps },
    state: (p) => [stateLike(p), stateLike(p)],
    scalars: (t) => ({ lr: resolveRate(where, lr, t) }),
    ownScalars: (own) => ({ correction1: 1 - beta1 ** own, rootCorrection2: Math.sqrt(1 - beta2 ** own) }),
    update: (p, g, [m, v], scalar) => {
      m!.assign(add(mul(m!, beta1), mul(g, 1 - beta1)));
      // (1−β₂)g·g and √v/√(1−β₂ᵗ), in PyTorch's order: g·g first overflowed float32 from
      // |g| ≈ 1.8e19 (as did v/(1−β₂ᵗ) under the root), and an infinite v froze the element for
      // good; torch's stays finite to ~5.8e20 at β₂ = 0.999.
      v!.assign(add(mul(v!, beta2), mul(mul(g, 1 - beta2), g)));
      const mHat = m!.div(scalar('correction1'));
      p.assign(p.sub(mHat.div(sqrt(v!).div(scalar('rootCorrection2')).add(eps)).mul(scalar('lr'))));
    },
  });
}

export interface SgdOptions {
  /** Step size; required (SGD has no scale-free default). A number or a schedule. */
  lr: LearningRate;
  /** Momentum μ; default 0 (plain SGD). */
  momentum?: number;
  /** Nesterov momentum (Sutskever et al. 2013 form, as PyTorch); default false. */
  nesterov?: boolean;
}
const SGD_OPTIONS = optionNames<SgdOptions>()(['lr', 'momentum', 'nesterov']);

/**
 * SGD with (heavy-ball) momentum, in PyTorch's form: b ← μb + g (b₁ = g), θ ← θ − α·b, or with
 * Nesterov θ ← θ − α(g + μb).
 */
export function sgd(opts: SgdOptions): Optimizer {
  const where = 'sgd';
  checkOptimizerOptions(where, opts, SGD_OPTIONS);
  if (!opts || opts.lr === undefined) throw new Error(`${where}: lr is required, e.g. sgd({ lr: 0.01 })`);
  const { lr } = opts;
  checkRate(where, lr);
  const momentum = opts.momentum ?? 0;
  checkNumber(where, 'momentum', momentum, UNIT_INTERVAL);
  const nesterov = opts.nesterov ?? false;
  checkBoolean(where, 'nesterov', nesterov);
  if (nesterov && momentum === 0) throw new Error(`${where}: nesterov needs a momentum > 0`);
  // The momentum buffer starts at zero, so its first update b ← μ·0 + g is PyTorch's b₁ = g.
  return makeOptimizer(where, 'sgd', lr, {
    slots: momentum > 0 ? ['momentum'] : [],
    options: { momentum, nesterov },
    state: (p) => (momentum > 0 ? [stateLike(p)] : []),
    scalars: (t) => ({ lr: resolveRate(where, lr, t) }),
    update: (p, g, [b], scalar) => {
      let direction = g;
      if (b) {
        b.assign(add(mul(b, momentum), g));
        direction = nesterov ? add(g, mul(b, momentum)) : b;
      }
      p.assign(p.sub(mul(direction, scalar('lr'))));
    },
  });
}

/**
 * Gradients by name: a non-empty record of float tensors. Checked before any arithmetic, which
 * would otherwise fail naming its own op ("mul: ...", "sqrt: expected a float tensor") or read
 * the entries of null.
 */
function checkGradients(where: string, grads: unknown): asserts grads is Params {
  if (grads === null || typeof grads !== 'object' || Array.isArray(grads) || grads instanceof Tensor) {
    throw new TypeError(`${where}: grads must be a record of gradient tensors by name (as the params), got ${grads instanceof Tensor ? 'a Tensor' : describe(grads)}`);
  }
  const entries = Object.entries(grads);
  if (entries.length === 0) throw new Error(`${where}: no gradients given`);
  for (const [name, g] of entries) {
    if (!(g instanceof Tensor)) throw new TypeError(`${where}: gradient '${name}' is not a Tensor, got ${describe(g)}`);
    if (!isFloatDType(g.dtype)) throw new TypeError(`${where}: gradient '${name}' is ${g.dtype}; gradients are float32 or float64`);
  }
}

/**
 * √(Σ‖g‖²) over every gradient: a scalar tensor, in the widest float dtype among them (float64
 * if any gradient is float64, as PyTorch's clip_grad_norm_ promotes the per-tensor norms). Each
 * gradient's sum of squares is taken in its own dtype, then cast.
 */
export function globalNorm(grads: Params): Tensor {
  return composite(() => {
    checkGradients('globalNorm', grads);
    const tensors = Object.values(grads);
    const dtype = tensors.some((g) => g.dtype === 'float64') ? 'float64' : tensors[0]!.dtype;
    let total: Tensor | null = null;
    for (const g of tensors) {
      const own = sum(mul(g, g));
      const sq = own.dtype === dtype ? own : own.cast(dtype);
      total = total === null ? sq : add(total, sq);
    }
    return sqrt(total!);
  });
}

/**
 * Scales all gradients by min(1, maxNorm/(‖g‖ + 1e-6)) where ‖g‖ is their global norm (Pascanu
 * et al. 2013; the 1e-6 as PyTorch's clip_grad_norm_, so a zero gradient stays zero). The scale
 * is a tensor: no value is read back. Returns new gradient tensors (each in its own dtype) and
 * the norm before clipping (see `globalNorm` for its dtype).
 */
export function clipGradNorm<P extends Params>(grads: P, maxNorm: number): { grads: P; norm: Tensor } {
  return composite(() => {
    checkGradients('clipGradNorm', grads);
    // Required: checkNumber passes undefined (a default), and the scale would then fail in mul.
    if (maxNorm === undefined) throw new TypeError('clipGradNorm: maxNorm is required (the global norm to clip to, a number > 0), e.g. clipGradNorm(grads, 1)');
    checkNumber('clipGradNorm', 'maxNorm', maxNorm, { min: 0, exclusiveMin: true });
    const norm = globalNorm(grads);
    const scale = minimum(norm.add(1e-6).reciprocal().mul(maxNorm), 1);
    const clipped: Params = {};
    // The scale is cast to each gradient's dtype, so a float32 gradient stays float32 beside a
    // float64 one (PyTorch multiplies each gradient in place by the scale, in its own dtype).
    for (const [name, g] of Object.entries(grads)) clipped[name] = mul(g, scale.dtype === g.dtype ? scale : scale.cast(g.dtype));
    return { grads: clipped as P, norm };
  });
}

/**
 * Linear learning-rate warm-up: step ↦ lr · min(1, step/warmupSteps) (Goyal et al. 2017; Song et
 * al. 2021 warm up over 5000 steps, the default here).
 */
export function linearWarmup(lr: number, warmupSteps = 5000): (step: number) => number {
  // Not checkRate: it passes a schedule, which here would make every step's rate NaN.
  if (typeof lr !== 'number') throw new TypeError(`linearWarmup: lr must be a positive number (the rate reached after warm-up), got ${describe(lr)}`);
  checkNumber('linearWarmup', 'lr', lr, { min: 0, exclusiveMin: true });
  checkNumber('linearWarmup', 'warmupSteps', warmupSteps, { integer: true, min: 1 });
  return (step) => lr * Math.min(1, step / warmupSteps);
}

export interface EmaOptions {
  /** Decay; default 0.999 (Song et al. 2021 for VE models; 0.9999 for VP). */
  decay?: number;
  /**
   * Warm-up: use min(decay, (1+n)/(10+n)) at the n-th update (n = 0, 1, …), as TensorFlow's
   * ExponentialMovingAverage with num_updates, so early averages are not dominated by the
   * initial parameters. Default true.
   */
  warmup?: boolean;
}
const EMA_OPTIONS = optionNames<EmaOptions>()(['decay', 'warmup']);

/**
 * An exponential moving average of parameters (Polyak & Juditsky 1992). `P` is the parameters'
 * record type, so the averages read by name are typed as the parameters are.
 */
export interface Ema<P extends Params = Params> {
  /** The averaged parameters, by the same names. */
  readonly shadow: P;
  /** Updates applied so far. */
  readonly updates: number;
  /** The decay the next update will use. */
  nextDecay(): number;
  /** shadow ← δ·shadow + (1 − δ)·params. */
  update(params: Params): void;
  /** Starts the next update (for a compiled step): counts it and returns its scalars, δ and 1 − δ. */
  beginUpdate(): { decay: number; complement: number };
  /** The update begun by `beginUpdate`, with its scalars (numbers, or scalar tensors under jit). */
  applyUpdate(params: Params, scalars: StepScalars): void;
  /** Takes back the count of the update `beginUpdate` last began, which did not run (the step's loss threw). */
  abandonUpdate(): void;
  /** Writes the averages into `params` (e.g. the model's, for sampling or evaluation). */
  copyTo(params: Params): void;
  /**
   * The average's state, to save and continue from (`EmaState`): its own tensors, not copies
   * (the next update changes them in place), and the count of updates (the warm-up's).
   */
  stateDict(): EmaState;
  /**
   * Restores a state from `stateDict()`: the same decay and warm-up, the same names, shapes,
   * dtypes and device as this average's (else it refuses, changing nothing).
   */
  loadStateDict(state: EmaState): void;
  /** Frees the averaged parameters (`shadow`); the average cannot be used after. */
  dispose(): void;
}

/** An EMA's state as plain data (`Ema.stateDict`). */
export interface EmaState {
  readonly kind: 'ema';
  /** The decay and warm-up it was made with: a state loads only into an average with the same. */
  readonly options: { readonly decay: number; readonly warmup: boolean };
  /** Updates applied so far (the warm-up's count). */
  readonly updates: number;
  /** The averages, by parameter name. */
  readonly shadow: Params;
}

/**
 * An exponential moving average of `params` (`Ema`): each `update` sets shadow ← δ·shadow +
 * (1 − δ)·params, δ = `decay` (default 0.999), with `warmup` (default true) δ = min(decay,
 * (1 + n)/(10 + n)) at the n-th update. The shadow starts as a copy of `params`.
 */
export function ema<P extends Params>(params: P, opts: EmaOptions = {}): Ema<P> {
  const where = 'ema';
  checkOptimizerOptions(where, opts, EMA_OPTIONS);
  const decay = opts.decay ?? 0.999;
  checkNumber(where, 'decay', decay, UNIT_INTERVAL);
  const warmup = opts.warmup ?? true;
  checkBoolean(where, 'warmup', warmup);
  checkRecord(where, params, 'params');
  for (const [name, p] of Object.entries(params)) checkFloatParam(where, name, p);
  const shadow: Params = {};
  for (const [name, p] of Object.entries(params)) shadow[name] = keep(p.detach());
  let n = 0;
  let disposed = false;
  // Its averages are freed: an update or a copy would fail inside an op, naming the op.
  const checkLive = (): void => {
    if (disposed) throw new Error(`${where}: the average was disposed (its tensors are freed); make a new one`);
  };
  const nextDecay = (): number => (warmup ? Math.min(decay, (1 + n) / (10 + n)) : decay);
  const beginUpdate = (): { decay: number; complement: number } => {
    checkLive();
    const d = nextDecay();
    n++;
    return { decay: d, complement: 1 - d };
  };
  const applyUpdate = (current: Params, scalars: StepScalars): void => {
    checkLive();
    checkSameLayout(where, shadow, current, 'value', 'params');
    update(() => {
      for (const [name, s] of Object.entries(shadow)) {
        const delta = scalarFor(scalars.decay, s, where, 'decay');
        const complement = scalarFor(scalars.complement, s, where, 'complement');
        s.assign(add(mul(s, delta), mul(current[name]!, complement)));
      }
    });
  };
  return {
    // The averages under the parameters' names, so typed as the parameters' record.
    shadow: shadow as P,
    get updates() {
      return n;
    },
    nextDecay,
    beginUpdate,
    applyUpdate,
    abandonUpdate() {
      if (n > 0) n--;
    },
    update(current) {
      // Checked before beginUpdate counts it: a refused update must not advance the warm-up.
      checkLive();
      checkSameLayout(where, shadow, current, 'value', 'params');
      applyUpdate(current, beginUpdate());
    },
    stateDict() {
      checkLive();
      return { kind: 'ema', options: { decay, warmup }, updates: n, shadow: { ...shadow } };
    },
    loadStateDict(saved) {
      checkLive();
      if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) throw new TypeError(`${where}: expected a state from stateDict() ({ kind, options, updates, shadow }), got ${describe(saved)}`);
      if (saved.kind !== 'ema') throw new Error(`${where}: the state is of ${JSON.stringify(saved.kind)}, not an ema's`);
      for (const [option, mine] of [['decay', decay], ['warmup', warmup]] as const) {
        const theirs = saved.options?.[option];
        if (!Object.is(theirs, mine)) throw new Error(`${where}: the state was saved with ${option} ${JSON.stringify(theirs)}, but this average has ${option} ${JSON.stringify(mine)}; make it with the options of the run being continued`);
      }
      if (typeof saved.updates !== 'number' || !Number.isSafeInteger(saved.updates) || saved.updates < 0) {
        throw new Error(`${where}: the state's updates must be an integer from 0, got ${JSON.stringify(saved.updates)}`);
      }
      checkSameLayout(where, shadow, saved.shadow, 'saved average', "state's averages", 'this average');
      const extra = Object.keys(saved.shadow).filter((name) => !Object.hasOwn(shadow, name));
      if (extra.length > 0) throw new Error(`${where}: the state averages ${extra.map((name) => `'${name}'`).join(', ')}, which this average does not (it averages ${namesOf(shadow)})`);
      for (const [name, s] of Object.entries(shadow)) {
        const v = saved.shadow[name]!;
        if (v.isDisposed) throw new Error(`${where}: the state's average of '${name}' was disposed`);
      }
      // In place (a compiled step closes over the averages), every value copied before any is
      // assigned: the state's tensors may be these averages (one under another's name).
      update(() => {
        const values = Object.entries(shadow).map(([name, s]) => [s, saved.shadow[name]!.detach()] as const);
        for (const [s, v] of values) s.assign(v);
      });
      n = saved.updates;
    },
    copyTo(target) {
      checkLive();
      checkSameLayout(where, target, shadow, 'average');
      update(() => {
        for (const [name, p] of Object.entries(target)) p.assign(shadow[name]!);
      });
    },
    dispose() {
      for (const s of Object.values(shadow)) s.dispose();
      disposed = true;
    },
  };
}
