// What every module of @scorch/score assumes, defined once (docs/conventions.md describes it):
// the form of a score function and of an energy, the [N, d] batch check every loss, sampler and
// metric applies to its inputs, and the compile-time link between an options interface and the
// list of option names its function accepts (checked at run time by @scorch/tensor's
// `checkOptions`).

import { Tensor, checkTensor, fmtShape, isFloatDType } from '@scorch/tensor';

/**
 * A score function: x, a batch [N, d], (and for a noise-conditional model its noise level, σ or
 * t, one per row, shape [N]) ↦ ∇ₓ log p, shape [N, d]. Rows are independent.
 */
export type ScoreFunction = (x: Tensor, cond?: Tensor) => Tensor;

/** An energy: x [N, d] (and the noise level, [N]) ↦ E(x), shape [N]; its score is −∇ₓE. */
export type EnergyFunction = (x: Tensor, cond?: Tensor) => Tensor;

/**
 * Checks a batch of points: a float32 or float64 Tensor of shape [N, d] with N, d ≥ 1. An empty
 * batch is always a mistake here (a loss of it is NaN, a sampler of it draws nothing), so it is
 * refused with the rest. `what` names the argument in the message ('x', 'init', 'the data').
 */
export function checkBatch(where: string, x: unknown, what = 'x'): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`${where}: ${what} must be a Tensor of shape [N, d], got ${x === null ? 'null' : typeof x}`);
  // A disposed batch was reported by the first op to read it (jit, detach, jvp, isFinite, narrow).
  checkTensor(where, x, what);
  if (x.rank !== 2) throw new Error(`${where}: ${what} must have rank 2 (shape [N, d]: a batch of N points in d dimensions), got shape ${fmtShape(x.shape)}`);
  if (x.shape[0] === 0 || x.shape[1] === 0) throw new Error(`${where}: ${what} must be non-empty, got shape ${fmtShape(x.shape)}`);
  if (!isFloatDType(x.dtype)) throw new TypeError(`${where}: ${what} must be float32 or float64, got ${x.dtype}`);
}

/** A score function argument must be a function; says what form it takes otherwise. */
export function checkScoreFunction(where: string, score: unknown, what = 'score'): asserts score is ScoreFunction {
  if (typeof score !== 'function') throw new TypeError(`${where}: ${what} must be a function (x [N, d], cond?) => [N, d], got ${score === null ? 'null' : typeof score}`);
}

/** cond, when given: one noise level (σ or t) per row of x, [N], in x's dtype. */
export function checkCond(where: string, cond: unknown, x: Tensor): void {
  if (cond === undefined) return;
  const n = x.shape[0]!;
  if (!(cond instanceof Tensor) || cond.rank !== 1 || cond.shape[0] !== n) {
    throw new Error(`${where}: cond must be a Tensor of shape [${n}] (one noise level per row of x), got ${cond instanceof Tensor ? `shape ${fmtShape(cond.shape)}` : cond === null ? 'null' : typeof cond}`);
  }
  if (cond.dtype !== x.dtype) throw new TypeError(`${where}: cond must have x's dtype (${x.dtype}), got ${cond.dtype}`);
}

/**
 * Calls the score and checks that it returned a tensor of x's shape and dtype; `what` names the
 * score in messages where a call has two (fisherDivergence's referenceScore).
 */
export function evalScore(where: string, score: ScoreFunction, x: Tensor, cond: Tensor | undefined, what = 'the score function'): Tensor {
  const s = cond === undefined ? score(x) : score(x, cond);
  if (!(s instanceof Tensor)) throw new TypeError(`${where}: ${what} must return a Tensor, got ${s === null ? 'null' : typeof s}`);
  if (s.rank !== x.rank || s.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`${where}: ${what} returned shape ${fmtShape(s.shape)} for an input of shape ${fmtShape(x.shape)}; a score has the shape of its input`);
  }
  // Checked here, where the score can be named: mixed dtypes would fail in the caller's next
  // operation with a message about that operation's operands.
  if (s.dtype !== x.dtype) throw new TypeError(`${where}: ${what} returned ${s.dtype} for a ${x.dtype} input; a score has the dtype of its input`);
  return s;
}

/**
 * `score` with its result checked on every call (`evalScore`). A score of another shape ([N, 1],
 * say) would otherwise broadcast against x and give wrong values silently.
 */
export function checkedScore(where: string, score: ScoreFunction): ScoreFunction {
  return (x, cond) => evalScore(where, score, x, cond);
}

/** The shared boolean-option check (@scorch/options), for this package's modules. */
export { checkBoolean } from '@scorch/tensor';

/** The keys of T that `Keys` leaves out (never when it lists them all). */
type Unlisted<T, Keys extends readonly PropertyKey[]> = Exclude<keyof T, Keys[number]>;

/**
 * The option names of the options interface T, listed once and checked by the compiler both
 * ways: every name must be a key of T, and every key of T must be named (a key added to the
 * interface and not to the list is a compile error naming it). The list is what the function
 * passes to `checkOptions`, so the names it accepts cannot drift from the names it documents.
 *
 *   const ADAM_OPTIONS = optionNames<AdamOptions>()(['lr', 'beta1', 'beta2', 'eps']);
 */
export function optionNames<T extends object>() {
  return <const Keys extends readonly (keyof T & string)[]>(
    keys: Keys & ([Unlisted<T, Keys>] extends [never] ? unknown : { missingOption: Unlisted<T, Keys> }),
  ): Keys => keys;
}
