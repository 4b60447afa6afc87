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
