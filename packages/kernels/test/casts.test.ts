// Casts follow one rule on every backend (docs/conventions.md, `storedValue` on the CPU,
// `castExpression` in WGSL): float → int32 truncates toward zero, saturates to [−2³¹, 2³¹ − 1]
// and takes NaN to 0; int32 → float32 rounds to nearest, ties to even; → bool is x ≠ 0 (NaN is
// nonzero). Each case lists the expected values and runs on the CPU and on the GPU.

import { beforeAll, describe, expect, it } from 'vitest';
import { type DType, cast, tensor } from '@scorch/tensor';
import { gpuDevice } from './helpers.js';

const INT32_MAX = 2 ** 31 - 1;
const INT32_MIN = -(2 ** 31);

interface CastCase {
  name: string;
  from: DType;
  to: DType;
  values: number[];
  expected: number[];
}

const CASES: CastCase[] = [
  {
    name: 'float32 → int32: NaN, ±inf, out of range, the 2³¹ boundaries, fractions',
    from: 'float32',
    to: 'int32',
    // 2147483520 is the largest float32 below 2³¹; 2147483648 = 2³¹ is the first one above
    // int32's range; -2147483904 is the float32 below −2³¹.
    values: [NaN, Infinity, -Infinity, 3e9, -3e9, 2147483520, 2147483648, -2147483648, -2147483904, -0.5, 2.5, -2.5, 0.99999994, -0, 1e-45, 3.4e38, -3.4e38],
    expected: [0, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, 2147483520, INT32_MAX, INT32_MIN, INT32_MIN, 0, 2, -2, 0, 0, 0, INT32_MAX, INT32_MIN],
  },
  {
    name: 'int32 → float32: rounds to nearest, ties to even',
    from: 'int32',
    to: 'float32',
    // Float32s are 2 apart above 2²⁴: 2²⁴ + 1 and 2²⁴ + 3 are ties and go to the even
    // neighbours 2²⁴ and 2²⁴ + 4; 2147483584 is halfway between 2147483520 and 2³¹ (even).
    values: [16777217, 16777219, -16777217, 33554435, 2147483583, 2147483584, INT32_MAX, INT32_MIN, -1, 0],
    expected: [16777216, 16777220, -16777216, 33554436, 2147483520, 2147483648, 2147483648, -2147483648, -1, 0],
  },
  {
    name: 'float32 → bool: nonzero, NaN and ±inf are true; ±0 false',
    from: 'float32',
    to: 'bool',
    values: [NaN, Infinity, -Infinity, 0, -0, 1e-45, -2.5],
    expected: [1, 1, 1, 0, 0, 1, 1],
  },
];

let gpu = 'webgpu';
beforeAll(async () => {
  gpu = (await gpuDevice()).device;
});

describe('casts agree with the documented rule on every backend', () => {
  for (const c of CASES) {
    for (const device of ['cpu', 'gpu'] as const) {
      it(`${c.name} (${device})`, async () => {
        const x = tensor(c.values, { dtype: c.from, device: device === 'cpu' ? 'cpu' : gpu });
        const y = cast(x, c.to);
        expect(y.dtype).toBe(c.to);
        expect(Array.from(await y.data())).toEqual(c.expected);
      });
    }
  }
});
