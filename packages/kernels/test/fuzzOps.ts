// What the two random-program fuzz tests (hardwareFuzz, viewOffsetFuzz) share: the error
// accounting's constants and the ops they both draw, applied to tensors the same way.
import * as T from '@scorch/tensor';

/** Below this, integer partial sums (times 2⁻ˢ) are exact in float32 with margin. */
export const EXACT = 2 ** 22;

/** One ulp at a magnitude bound (the ulp of any value up to it is no larger). */
export const ulpOf = (b: number): number => (b <= 2 ** -126 ? 2 ** -149 : 2 ** (Math.ceil(Math.log2(b)) - 23));

/** Elements of a shape. */
export const count = (shape: readonly number[]): number => shape.reduce((x, y) => x * y, 1);

/**
 * An op both fuzzes draw, applied to its first two operands `a` and `b` with parameters `p`;
 * undefined for an op of one fuzz only (its own `apply` has those).
 */
export function applySharedOp(op: string, a: T.Tensor, b: T.Tensor, p: readonly (number | number[] | boolean)[]): T.Tensor | undefined {
  switch (op) {
    case 'matmul': return T.matmul(a, b);
    case 'add': return a.add(b);
    case 'sub': return a.sub(b);
    case 'mul': return a.mul(b);
    case 'maximum': return a.maximum(b);
    case 'relu': return a.relu();
    case 'neg': return a.neg();
    case 'abs': return a.abs();
    case 'clamp': return a.clamp(-(p[0] as number), p[0] as number);
    case 'half': return a.mul(0.5);
    case 'tanh': return a.tanh();
    case 'sigmoid': return a.sigmoid();
    case 'positive': return a.greater(0).cast(a.dtype);
    case 'truncate': return a.cast('int32').cast(a.dtype);
    case 'max': return a.max(p[0] as number, p[1] as boolean);
    case 'reshape': return a.reshape(p[0] as number[]);
    case 'permute': return a.permute(p[0] as number[]);
    case 'slice': return a.slice(p[0] as number[], p[1] as number[]);
    case 'concat': return T.concat([a, b], p[0] as number);
    case 'cumsum': return a.cumsum(p[0] as number);
    default: return undefined;
  }
}

/** What a drawn program's printout reads of each value. */
export interface FuzzNode {
  op: string;
  args: number[];
  p: (number | number[] | boolean)[];
  shape: number[];
  /** Bound on |value − reference|; 0 for an exact value. */
  E: number;
  exact: boolean;
}

/** A drawn program: its values in order, which are inputs and which are outputs. */
export interface FuzzProgram<N extends FuzzNode> {
  nodes: N[];
  inputs: number[];
  outputs: number[];
}

/** A program as lines `vI = op(vJ, …; params) : [shape]`, for a failure's message. */
export function showProgram(prog: FuzzProgram<FuzzNode>): string {
  return prog.nodes.map((n, i) => {
    const what = n.op === 'input' ? 'input' : `${n.op}(${n.args.map((a) => `v${a}`).join(', ')}${n.p.length ? `; ${JSON.stringify(n.p).slice(1, -1)}` : ''})`;
    return `  v${i} = ${what} : [${n.shape.join(', ')}]${n.exact ? '' : ` E ${n.E.toExponential(2)}`}${prog.outputs.includes(i) ? '  (output)' : ''}`;
  }).join('\n');
}

/** Broadcasting result shape of two shapes (numpy rules); null where they do not broadcast. */
export function broadcast(a: readonly number[], b: readonly number[]): number[] | null {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** The function of a program: inputs in (in order), its outputs out, each value by `apply`. */
export function evaluateProgram<N extends FuzzNode>(prog: FuzzProgram<N>, apply: (n: N, xs: T.Tensor[]) => T.Tensor) {
  return (...args: T.Tensor[]): T.Tensor[] => {
    const xs: T.Tensor[] = [];
    let next = 0;
    prog.nodes.forEach((n) => xs.push(n.op === 'input' ? args[next++]! : apply(n, xs)));
    return prog.outputs.map((i) => xs[i]!);
  };
}
