// The parameter record's type reaches the loss of `train` and `trainingStep`: a loss over
// `{ w, b }` reads `p.w` as a Tensor without a cast. The type half of each case is checked by
// `pnpm typecheck` (tsc reads the tests): an assignment that did not fit, or a `@ts-expect-error`
// line that compiled, fails it. The run-time half checks that the loss gets what the type says.

import { describe, expect, it } from 'vitest';
import { type Params, clipGradNorm, ema, sgd, train, trainingStep } from '@scorch/score';
import { type Tensor, randomKey, sum, tensor } from '@scorch/tensor';

const f64 = (v: number[]) => tensor(v, { dtype: 'float64' });

describe('train and trainingStep keep the parameters type', () => {
  it('trainingStep: the loss gets a record with params\' names', async () => {
    const params = { w: f64([1, 2]), b: f64([3]) };
    const seen: string[][] = [];
    const step = trainingStep({
      params,
      optimizer: sgd({ lr: 0.5 }),
      jit: false,
      loss: (p) => {
        const w: Tensor = p.w; // not Tensor | undefined, as a Record<string, Tensor> would read
        // @ts-expect-error params has no entry 'v'
        const v: Tensor = p.v;
        seen.push(Object.keys(p));
        expect(v).toBeUndefined();
        return sum(w.square()).add(sum(p.b));
      },
    });
    const loss = step(randomKey(0), 0);
    expect(await loss.item()).toBe(1 + 4 + 3);
    expect(seen).toEqual([['w', 'b']]);
    // θ ← θ − 0.5·∇: w − 0.5·2w = 0, b − 0.5·1
    expect(Array.from(await params.w.data())).toEqual([0, 0]);
    expect(Array.from(await params.b.data())).toEqual([2.5]);
    step.dispose();
  });

  it('train: the same, and a loss over a record of unknown names still takes Params', async () => {
    const params = { w: f64([2]) };
    const { history } = await train({ params, optimizer: sgd({ lr: 0.25 }), steps: 1, key: randomKey(1), loss: (p) => sum(p.w.square()) });
    expect(history).toEqual([{ step: 1, loss: 4 }]);
    expect(Array.from(await params.w.data())).toEqual([1]); // 2 − 0.25·4
    const any: Params = { u: f64([1]) };
    await train({ params: any, optimizer: sgd({ lr: 0.25 }), steps: 1, key: randomKey(1), loss: (p: Params) => sum(p.u!.square()) });
    expect(Array.from(await any.u!.data())).toEqual([0.5]); // 1 − 0.25·2
  });

  it('ema and clipGradNorm keep the record type: shadow.w and grads.w are Tensors', async () => {
    const params = { w: f64([3, 4]) };
    const average = ema(params, { decay: 0.5, warmup: false });
    const shadow: Tensor = average.shadow.w;
    // @ts-expect-error the average has no entry 'v'
    const missing: Tensor = average.shadow.v;
    expect(missing).toBeUndefined();
    expect(Array.from(await shadow.data())).toEqual([3, 4]);
    const { grads, norm } = clipGradNorm({ w: f64([3, 4]) }, 1);
    const clipped: Tensor = grads.w;
    // ‖(3, 4)‖ = 5: scaled by 1/(5 + 1e-6)
    expect(await norm.item()).toBe(5);
    expect(Array.from(await clipped.data())).toEqual([3 / (5 + 1e-6), 4 / (5 + 1e-6)]);
    average.dispose();
  });
});
