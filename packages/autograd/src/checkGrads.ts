// checkGrads: numerical verification of derivatives, for every op of the library and for users
// who add their own (after HIPS autograd's check_grads). In float64:
// - forward mode: the JVP ∂f·v against the central difference (f(x + εv) − f(x − εv)) / 2ε;
// - reverse mode: the VJP against the JVP through ⟨u, ∂f·v⟩ = ⟨∂fᵀu, v⟩ (against the central
//   difference when forward mode is not checked);
// - order n > 1: the same checks, recursively, on the functions x, v ↦ ∂f·v and x, u ↦ ∂fᵀu.

import {
  type RandomKey, Tensor, add, checkKey, checkNumber, checkOptions, concat, fmtShape, foldIn, mul, randn, randomKey, reshape, sub, sum, tidy, refusePromise
} from '@scorch/tensor';
import { type TensorFn, jvp, vjp } from './api.js';

export interface CheckGradsOptions {
  /** Highest derivative order checked. Default 2. */
  order?: number;
  /** Which modes to check. Default both. */
  modes?: ReadonlyArray<'fwd' | 'rev'>;
  /**
   * Finite-difference step. Default 1e-6: the central difference's truncation error O(ε²·f''')
   * and its rounding error O(u/ε), u = 1.1e-16, are then both near 1e-10 for O(1) inputs.
   */
  eps?: number;
  /** Relative tolerance. Default 1e-5, well above the ~1e-10 error of the difference. */
  rtol?: number;
  /** Absolute tolerance. Default 1e-6. */
  atol?: number;
  /** Key for the random directions. Default randomKey(0). */
  key?: RandomKey;
}

async function values(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}

function compare(what: string, got: Float64Array, want: Float64Array, rtol: number, atol: number): void {
  if (got.length !== want.length) throw new Error(`checkGrads: ${what}: ${got.length} values vs ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) {
      throw new Error(`checkGrads: ${what} differs at element ${i}: ${g} vs ${w} (|diff| ${Math.abs(g - w).toExponential(3)} > atol ${atol} + rtol ${rtol}·|${w}|)`);
    }
  }
}

/** ⟨a, b⟩ summed over all elements. */
const inner = (a: Tensor, b: Tensor): Tensor => sum(mul(a, b));

async function checkLevel(f: TensorFn, args: Tensor[], order: number, opts: Required<Omit<CheckGradsOptions, 'order'>>, path: string): Promise<void> {
  const { modes, eps, rtol, atol } = opts;
  let key = opts.key;
  const nextKey = (): RandomKey => (key = foldIn(key, 1));
  // Everything this level makes (directions, cotangent, the values compared) is disposed when it
  // returns or throws: a checker called in a loop or over a whole op table leaves nothing behind.
  const made: Tensor[] = [];
  const own = <T extends Tensor>(t: T): T => (made.push(t), t);
  try {
    const dirs = args.map((a) => own(randn(a.shape, { dtype: 'float64', device: a.device, key: nextKey() })));
    // Only the output's shape is needed here. tidy frees what f created but never an argument or
    // a captured constant that f may return as is (x ↦ x + 1 has tangent map v ↦ v): disposing
    // `out` itself would destroy the caller's tensor.
    const outInfo = tidy(() => {
      const out = f(...args);
      refusePromise(out, 'checkGrads: the function returned a Promise; it must be synchronous and return a Tensor (f runs inside jvp and vjp, whose work ends when it returns)');
      if (!(out instanceof Tensor)) throw new TypeError(`checkGrads: the function must return a Tensor, got ${out === null ? 'null' : typeof out}`);
      // As the arguments: a float32 output's differences are float32 roundoff over 2ε (a false
      // 'differs'), and an int32 or bool one has no derivative; either failed in an op inside
      // (the cotangent's dtype in vjp, sub of bools) or as a mismatch that was not one.
      if (out.dtype !== 'float64') {
        throw new TypeError(`checkGrads: the function returned ${out.dtype} ${fmtShape(out.shape)}; finite differences need a float64 output (cast it)`);
      }
      return { shape: [...out.shape], device: out.device };
    });
    const u = own(randn(outInfo.shape, { dtype: 'float64', device: outInfo.device, key: nextKey() }));

    // A tangent is built from this level's directions (a linear f's JVP is v itself, which `made`
    // then holds twice: disposal skips a disposed tensor), never from the caller's arguments.
    // Forward mode only where it is checked: a reverse-only check must not need (or pay for) a
    // jvp rule.
    const jv = modes.includes('fwd') ? own(tidy(() => jvp(f, args, dirs)[1])) : null;
    const numeric = own(tidy(() => {
      const plus = f(...args.map((a, i) => add(a, mul(dirs[i]!, eps))));
      const minus = f(...args.map((a, i) => sub(a, mul(dirs[i]!, eps))));
      return mul(sub(plus, minus), 1 / (2 * eps));
    }));
    if (jv) compare(`${path}JVP vs central difference`, await values(jv), await values(numeric), rtol, atol);

    if (modes.includes('rev')) {
      const [lhs, rhs] = tidy(() => {
        const [, pullback] = vjp(f, ...args);
        const cts = pullback(u);
        const l = cts.reduce<Tensor | null>((acc, ct, i) => {
          const term = inner(ct, dirs[i]!);
          return acc ? add(acc, term) : term;
        }, null)!;
        return [l, inner(u, jv ?? numeric)];
      });
      own(lhs);
      own(rhs);
      compare(`${path}⟨VJP, v⟩ vs ⟨u, JVP⟩`, await values(lhs), await values(rhs), rtol, atol);
    }

    if (order > 1) {
      const n = args.length;
      if (modes.includes('fwd')) {
        const fwd: TensorFn = (...xv) => jvp(f, xv.slice(0, n), xv.slice(n))[1];
        await checkLevel(fwd, [...args, ...dirs], order - 1, { ...opts, key: nextKey() }, `${path}(jvp) `);
      }
      if (modes.includes('rev')) {
        const rev: TensorFn = (...xu) => {
          const [, pullback] = vjp(f, ...xu.slice(0, n));
          const cts = pullback(xu[n]!);
          return cts.length === 1 ? cts[0]! : concat(cts.map((c) => reshape(c, [c.size])));
        };
        await checkLevel(rev, [...args, u], order - 1, { ...opts, key: nextKey() }, `${path}(vjp) `);
      }
    }
  } finally {
    for (const t of made) if (!t.isDisposed) t.dispose();
  }
}

/**
 * Checks the derivatives of `f` at `args` (float64 tensors) up to `order`, in forward and/or
 * reverse mode. Resolves when they agree; rejects with the first disagreement.
 */
export async function checkGrads(f: TensorFn, args: readonly Tensor[], opts: CheckGradsOptions = {}): Promise<void> {
  if (typeof f !== 'function') throw new TypeError(`checkGrads: expected a function, got ${f === null ? 'null' : typeof f}`);
  if (!Array.isArray(args)) {
    throw new TypeError(`checkGrads: args must be an array of tensors, one per argument of f (e.g. checkGrads(f, [x])), got ${args instanceof Tensor ? 'a Tensor' : args === null ? 'null' : typeof args}`);
  }
  for (const [i, a] of args.entries()) {
    if (!(a instanceof Tensor)) throw new TypeError(`checkGrads: argument ${i} must be a Tensor`);
    if (a.dtype !== 'float64') {
      throw new TypeError(`checkGrads: argument ${i} is ${a.dtype} ${fmtShape(a.shape)}; finite differences need float64 (cast it)`);
    }
  }
  checkOptions('checkGrads', opts, ['order', 'modes', 'eps', 'rtol', 'atol', 'key']);
  const order = opts.order ?? 2;
  // checkNumber shows the value as given: a string '2' read as "got 2", the number it is not.
  checkNumber('checkGrads', 'order', order, { integer: true, min: 1 });
  const modes = opts.modes ?? ['fwd', 'rev'];
  if (!Array.isArray(modes) || modes.length === 0 || modes.some((m) => m !== 'fwd' && m !== 'rev')) {
    throw new TypeError(`checkGrads: modes must be a non-empty array of 'fwd' and 'rev', got ${JSON.stringify(modes)}`);
  }
  checkNumber('checkGrads', 'eps', opts.eps, { min: 0, exclusiveMin: true });
  checkNumber('checkGrads', 'rtol', opts.rtol, { min: 0 });
  checkNumber('checkGrads', 'atol', opts.atol, { min: 0 });
  // Here, not in the first foldIn, whose message names foldIn and not the option.
  if (opts.key !== undefined) checkKey(opts.key, 'checkGrads: key');
  await checkLevel(f, [...args], order, {
    modes,
    eps: opts.eps ?? 1e-6,
    rtol: opts.rtol ?? 1e-5,
    atol: opts.atol ?? 1e-6,
    key: opts.key ?? randomKey(0),
  }, '');
}
