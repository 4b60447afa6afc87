// Optimisers and training aids against sequences computed by hand (plain JavaScript numbers
// implementing the papers' update rules), in float64 so agreement is to roundoff.

import { describe, expect, it } from 'vitest';
import { type DType, type RandomKey, type Tensor, foldIn, matmul, memory, randn, randomKey, sum, tensor } from '@scorch/tensor';
import { type Ema, type Optimizer, type OptimizerState, type Params, adam, clipGradNorm, ema, globalNorm, linearWarmup, sgd, train, trainingStep, turnEventLoop, vpSde } from '../src/index.js';
import { unknownOption } from './options.js';
import { jit } from '@scorch/autograd';
import { openDevice } from './devices.js';

const f64 = { dtype: 'float64' as const };
const read = async (t: Tensor): Promise<number[]> => Array.from(await t.data());
const GRADS = [
  [0.5, -1],
  [0.3, 0.2],
  [-0.4, 0.1],
  [2, -0.05],
];
const P0 = [1, -2];
const close = (a: number[], b: number[], tol = 1e-14) => a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThan(tol));

describe('adam', () => {
  it('follows the bias-corrected sequence of Kingma & Ba (2015), Algorithm 1', async () => {
    const lr = 0.1;
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    const opt = adam({ lr });
    const params: Params = { w: tensor(P0, f64) };
    // By hand: m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ), θ ← θ − α m̂/(√v̂ + ε). Step 1: m̂ = g, v̂ = g², so
    // θ₁ = θ₀ − α g/(|g| + ε) = [1 − 0.1·0.5/(0.5+1e-8), −2 + 0.1·1/(1+1e-8)] ≈ [0.9, −1.9].
    const p = [...P0];
    const m = [0, 0];
    const v = [0, 0];
    for (const [t, g] of GRADS.entries()) {
      opt.step(params, { w: tensor(g, f64) });
      for (let i = 0; i < 2; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
        const mHat = m[i]! / (1 - b1 ** (t + 1));
        const vHat = v[i]! / (1 - b2 ** (t + 1));
        p[i] = p[i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
      }
      if (t === 0) close(await read(params.w!), [1 - (0.1 * 0.5) / (0.5 + 1e-8), -2 + 0.1 / (1 + 1e-8)]);
      close(await read(params.w!), p);
    }
    expect(opt.stepCount).toBe(4);
    opt.dispose();
  });

  it('keeps training a float32 element whose gradient was once huge, as torch does (g·g overflowed and froze it)', async () => {
    // (1−β₂)g·g and √v/√(1−β₂ᵗ) in torch's order stay finite for |g| up to ~5.8e20; g·g first
    // overflowed at 1.8e19, v became +∞ for good and the element never moved again.
    const [lr, b1, b2, eps] = [0.1, 0.9, 0.999, 1e-8];
    const params: Params = { w: tensor([1, 1]) };
    const opt = adam({ lr });
    const grads = [[2e19, 1], [1, 1], [1, 1]];
    const p = [1, 1];
    const m = [0, 0];
    const v = [0, 0];
    for (const [t, g] of grads.entries()) {
      opt.step(params, { w: tensor(g) });
      for (let i = 0; i < 2; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
        p[i] = p[i]! - (lr * (m[i]! / (1 - b1 ** (t + 1)))) / (Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** (t + 1)) + eps);
      }
    }
    // float32: a few roundings of values near 1 in each of three updates.
    close(await read(params.w!), p, 1e-6);
    expect(await read(opt.stateDict!().state.v!.w!)).toSatisfy((vs: number[]) => vs.every(Number.isFinite));
    opt.dispose();
  });

  it('uses the defaults lr 1e-3, β = (0.9, 0.999), ε = 1e-8 and a schedule when given', async () => {
    const params: Params = { w: tensor(P0, f64) };
    const opt = adam();
    opt.step(params, { w: tensor(GRADS[0]!, f64) });
    close(await read(params.w!), [1 - (1e-3 * 0.5) / (0.5 + 1e-8), -2 + 1e-3 / (1 + 1e-8)]);
    const warm = adam({ lr: linearWarmup(1e-3, 100) });
    expect([warm.learningRate(1), warm.learningRate(50), warm.learningRate(100), warm.learningRate(500)]).toEqual([1e-5, 5e-4, 1e-3, 1e-3]);
  });

  it('rejects bad settings and mismatched gradients', () => {
    expect(() => adam({ beta1: 1 })).toThrow(/^adam: beta1 must be a finite number >= 0 and < 1, got 1$/);
    expect(() => adam({ lr: -1 })).toThrow(/^adam: lr must be a finite number > 0, got -1$/);
    expect(() => adam({ lr: 0 })).toThrow(/^adam: lr must be a finite number > 0, got 0$/);
    expect(() => adam({ eps: -1e-8 })).toThrow(/^adam: eps must be a finite number >= 0, got -1e-8$/);
    // 'learningRate' is not a typo of 'lr': no suggestion, but every valid name.
    expect(() => adam({ learningRate: 1e-3 } as never)).toThrow(unknownOption('adam', 'learningRate', null, ['lr', 'beta1', 'beta2', 'eps']));
    expect(() => adam({ beta_1: 0.9 } as never)).toThrow(unknownOption('adam', 'beta_1', 'beta1', ['lr', 'beta1', 'beta2', 'eps']));
    expect(() => sgd({ lr: 0.1, momentun: 0.9 } as never)).toThrow(unknownOption('sgd', 'momentun', 'momentum', ['lr', 'momentum', 'nesterov']));
    expect(() => sgd({ lr: 0.1, momentum: 0.9, nesterov: 1 as never })).toThrow(/^sgd: nesterov must be true or false, got 1$/);
    // linearWarmup's lr is the rate it warms up to, a number: a schedule there made every step's
    // rate NaN, refused only at the first step and by the optimiser's name.
    expect(() => linearWarmup((() => 0.1) as never, 10)).toThrow(/^linearWarmup: lr must be a positive number \(the rate reached after warm-up\), got function$/);
    expect(() => linearWarmup('0.1' as never, 10)).toThrow(/^linearWarmup: lr must be a positive number \(the rate reached after warm-up\), got string$/);
    expect(() => linearWarmup(0, 10)).toThrow(/^linearWarmup: lr must be a finite number > 0, got 0$/);
    expect(() => linearWarmup(0.1, 0)).toThrow(/^linearWarmup: warmupSteps must be/);
    const params: Params = { w: tensor(P0, f64) };
    expect(() => adam().step(params, {})).toThrow(/no gradient for parameter 'w'/);
    expect(() => adam().step(params, { w: tensor([1, 2, 3], f64) })).toThrow(/gradient of 'w' is float64 \[3\] but the parameter is float64 \[2\]/);
  });
});

describe('optimiser state and parameters', () => {
  it('refuses a parameter that is not a Tensor, saying so', async () => {
    // It said "parameter 'w' is undefined; only float32 and float64 parameters can be trained"
    // (the dtype of a number), of a value that is not undefined.
    const message = (where: string, got: string) => `${where}: parameter 'w' is not a Tensor, got ${got}`;
    expect(() => sgd({ lr: 0.1 }).init({ w: 5 as never })).toThrow(message('sgd', 'number'));
    expect(() => adam().step({ w: [1, 2] as never }, { w: [1, 2] as never })).toThrow(message('adam', 'an array'));
    expect(() => ema({ w: null as never })).toThrow(message('ema', 'null'));
    expect(() => sgd({ lr: 0.1 }).step({ w: tensor([1]) }, { w: 5 as never })).toThrow("sgd: gradient of 'w' is not a Tensor, got number");
    expect(() => ema({ w: tensor([1]) }).update({ w: 'w' as never })).toThrow("ema: value of 'w' is not a Tensor, got string");
    await expect(train({ params: { w: 5 as never }, loss: () => tensor(0), optimizer: sgd({ lr: 0.1 }), steps: 1, key: [1, 2] })).rejects.toThrow(message('sgd', 'number'));
  });

  it('refuses params, gradients or averages that are not a record of tensors, naming which', () => {
    // Before: 'Cannot convert undefined or null to object' or "Cannot read properties of null (reading 'w')".
    const record = (where: string, what: string, got: string) => new RegExp(`^${where}: ${what} must be a record of tensors by name \\(e\\.g\\. model\\.params\\), got ${got}$`);
    const params: Params = { w: tensor([1], f64) };
    expect(() => adam().step(null as never, {})).toThrow(record('adam', 'params', 'null'));
    expect(() => adam().step(params, null as never)).toThrow(record('adam', 'gradients', 'null'));
    expect(() => sgd({ lr: 0.1 }).init(undefined as never)).toThrow(record('sgd', 'params', 'undefined'));
    expect(() => adam().applyUpdate(params, tensor([1], f64) as never, { lr: 0.1 })).toThrow(record('adam', 'gradients', 'a Tensor'));
    expect(() => ema(null as never)).toThrow(record('ema', 'params', 'null'));
    expect(() => ema(undefined as never)).toThrow(record('ema', 'params', 'undefined'));
    const average = ema(params);
    expect(() => average.update(null as never)).toThrow(record('ema', 'params', 'null'));
    expect(() => average.copyTo([] as never)).toThrow(record('ema', 'params', 'an array'));
  });

  it('an ema update it refuses is not counted: the warm-up decay stays that of the next real update', () => {
    const params: Params = { w: tensor([1], f64) };
    const average = ema(params, { decay: 0.99 });
    expect(() => average.update(null as never)).toThrow(/^ema: params must be a record/);
    expect(() => average.update({ w: tensor([1, 2], f64) })).toThrow(/^ema: value of 'w' is float64 \[2\] but the parameter is float64 \[1\]$/);
    expect(() => average.update({})).toThrow(/^ema: no value for parameter 'w'/);
    // Before, each refusal had counted an update: 3 updates, the next decay (1 + 3)/(10 + 3).
    expect(average.updates).toBe(0);
    expect(average.nextDecay()).toBe(1 / 10);
  });

  it('refuses integer parameters, which an update would leave unchanged or zero', () => {
    // In int32 the step's scalars round to integers: lr 0.5 to 0, the decay 0.5 and 1 − 0.5 to 0.
    const ints = () => ({ w: tensor([10, 20], { dtype: 'int32' }) });
    for (const make of [() => sgd({ lr: 0.5 }), () => adam({ lr: 0.5 })]) {
      const opt = make();
      expect(() => opt.step(ints(), ints())).toThrow(new RegExp(`^${opt.name}: parameter 'w' is int32; only float32 and float64 parameters can be trained or averaged$`));
      expect(opt.stepCount).toBe(0);
    }
    expect(() => ema(ints(), { decay: 0.5, warmup: false })).toThrow(/^ema: parameter 'w' is int32; only float32 and float64/);
  });

  it('does not count a step its schedule refuses, and names a parameter whose shape changed', async () => {
    const opt = sgd({ lr: (t) => (t === 2 ? NaN : 0.5) });
    const params: Params = { w: tensor([1], f64) };
    opt.step(params, { w: tensor([1], f64) });
    expect(() => opt.step(params, { w: tensor([1], f64) })).toThrow(/^sgd: the learning rate must be a finite non-negative number, got NaN at step 2$/);
    expect(opt.stepCount).toBe(1);
    expect(await read(params.w!)).toEqual([0.5]);

    const moments = adam({ lr: 0.1 });
    moments.step({ w: tensor(P0, f64) }, { w: tensor(GRADS[0]!, f64) });
    const wider = { w: tensor([1, 2, 3], f64) };
    expect(() => moments.step(wider, { w: tensor([1, 1, 1], f64) })).toThrow(/^adam: its state for 'w' is float64 \[2\] but the parameter is float64 \[3\]; use a new optimiser/);
    expect(moments.stepCount).toBe(1);
    expect(await read(wider.w)).toEqual([1, 2, 3]);
  });

  it('refuses an update of a parameter the last beginStep did not count (it took the others\' corrections)', async () => {
    const one = () => tensor([1], f64);
    const [a, b] = [one(), one()];
    const opt = adam({ lr: 0.1, beta2: 0.5 });
    opt.step({ a, b }, { a: one(), b: one() });
    opt.step({ a }, { a: one() });
    const scalars = opt.beginStep({ a });
    const before = await read(b);
    expect(() => opt.applyUpdate({ a, b }, { a: one(), b: tensor([2], f64) }, scalars)).toThrow(
      "adam: 'b' was not counted by the last beginStep(params); pass beginStep the parameters this update steps",
    );
    expect(await read(b)).toEqual(before);
    expect(opt.stateDict!().counts).toEqual({ a: 3, b: 1 });
  });

  it('refuses a gradient on another device than its parameter before anything moves', async () => {
    // It failed inside an op ('add: tensors are on different devices') after updating the
    // parameters before it: a step half applied, its count kept.
    await openDevice('webgpu');
    const params: Params = { a: tensor([1, 2], { device: 'webgpu' }), b: tensor([3], { device: 'webgpu' }) };
    const opt = adam({ lr: 0.1 });
    expect(() => opt.step(params, { a: tensor([1, 1], { device: 'webgpu' }), b: tensor([1]) })).toThrow("adam: gradient of 'b' is on 'cpu' but the parameter on 'webgpu'");
    expect([await read(params.a!), await read(params.b!), opt.stepCount]).toEqual([[1, 2], [3], 0]);
    const average = ema({ a: tensor([5, 5], { device: 'webgpu' }), b: tensor([5]) });
    expect(() => average.update(params)).toThrow("ema: value of 'b' is on 'webgpu' but the parameter on 'cpu'");
    expect([await read(average.shadow.a!), average.updates]).toEqual([[5, 5], 0]);
    const target: Params = { a: tensor([0, 0]), b: tensor([0], { device: 'webgpu' }) };
    expect(() => average.copyTo(target)).toThrow(/^ema: average of '(a|b)' is on '(cpu|webgpu)' but the parameter on '(webgpu|cpu)'$/);
    expect(await read(target.a!)).toEqual([0, 0]);
    const cpuAverage = ema({ a: tensor([0, 0]), b: tensor([0]) });
    expect(() => trainingStep({ params, loss: (p: Params) => sum(p.a!).add(sum(p.b!)), optimizer: adam({ lr: 0.1 }), ema: cpuAverage, jit: false })).toThrow(
      "trainingStep: the ema's average of 'a' is float32 [2] on 'cpu' but the parameter is float32 [2] on 'webgpu'; make the ema from these params (ema(params))",
    );
  });

  it('refuses a step after dispose, which would restart from zero moments with a later bias correction', async () => {
    const opt = adam({ lr: 0.1 });
    const params: Params = { w: tensor([1], f64) };
    opt.step(params, { w: tensor([1], f64) });
    // Step 1: m̂ = g, v̂ = g², so θ₁ = 1 − 0.1·1/(1 + 1e-8).
    expect(await read(params.w!)).toEqual([1 - 0.1 / (1 + 1e-8)]);
    opt.dispose();
    // Before the fix this stepped: fresh zero moments m = 0.1, v = 0.001 corrected by step 2's
    // 1 − 0.9² and 1 − 0.999², an update 0.1·0.5263/(0.5003 + 1e-8) ≈ 0.105 instead of the 0.1 of a first step.
    const refused = /^adam: the optimiser was disposed \(its state is freed\); make a new one to train again$/;
    expect(() => opt.step(params, { w: tensor([1], f64) })).toThrow(refused);
    expect(() => opt.init(params)).toThrow(refused);
    expect(() => opt.beginStep()).toThrow(refused);
    expect(() => trainingStep({ params, loss: (p) => sum(p.w!), optimizer: opt })).toThrow(refused);
    expect(opt.stepCount).toBe(1);
    expect(await read(params.w!)).toEqual([1 - 0.1 / (1 + 1e-8)]);
  });
});

describe('a loss that is a parameter passed through unchanged', () => {
  it('reports the loss before the update and leaves the parameter alive, eagerly and under jit', () => {
    // sum() of a scalar parameter is the parameter unchanged: trainingStep returned the parameter
    // itself as the loss (its value after the update, and disposing it disposed the parameter).
    for (const jitted of [false, true]) {
      const params = { b: tensor(3) };
      const step = trainingStep({ params, loss: (p) => sum(p.b!), optimizer: sgd({ lr: 0.5 }), jit: jitted });
      const seen: number[] = [];
      for (let n = 0; n < 3; n++) {
        const loss = step(randomKey(n), n);
        expect(loss).not.toBe(params.b);
        seen.push(loss.dataSync()[0]!);
        loss.dispose();
        expect(params.b.isDisposed).toBe(false);
      }
      expect(seen, `jit ${jitted}`).toEqual([3, 2.5, 2]);
      expect(params.b.dataSync()[0]).toBe(1.5);
      params.b.dispose();
    }
  });
});

describe('sgd', () => {
  it('applies heavy-ball and Nesterov momentum as PyTorch does', async () => {
    for (const nesterov of [false, true]) {
      const [lr, mu] = [0.1, 0.9];
      const opt = sgd({ lr, momentum: mu, nesterov });
      const params: Params = { w: tensor(P0, f64) };
      const p = [...P0];
      let b: number[] | null = null;
      for (const g of GRADS) {
        opt.step(params, { w: tensor(g, f64) });
        b = b === null ? [...g] : b.map((bi, i) => mu * bi + g[i]!);
        const direction = nesterov ? g.map((gi, i) => gi + mu * b![i]!) : b;
        for (let i = 0; i < 2; i++) p[i] = p[i]! - lr * direction[i]!;
        close(await read(params.w!), p);
      }
    }
    expect(() => sgd({} as never)).toThrow(/lr is required/);
  });
});

describe('gradient clipping by global norm', () => {
  it('scales every gradient by maxNorm/‖g‖ when ‖g‖ exceeds it, and leaves them alone otherwise', async () => {
    const grads: Params = { a: tensor([3, 4], f64), b: tensor([[12]], f64) }; // ‖g‖ = 13
    expect(await read(globalNorm(grads))).toEqual([13]);
    const clipped = clipGradNorm(grads, 6.5);
    const scale = 6.5 / (13 + 1e-6);
    close(await read(clipped.grads.a!), [3 * scale, 4 * scale]);
    close(await read(clipped.grads.b!), [12 * scale]);
    expect(await read(clipped.norm)).toEqual([13]);
    const untouched = clipGradNorm(grads, 20);
    expect(await read(untouched.grads.a!)).toEqual([3, 4]);
    expect(await read(untouched.grads.b!)).toEqual([12]);
    expect(() => clipGradNorm(grads, 0)).toThrow(/^clipGradNorm: maxNorm must be a finite number > 0, got 0$/);
  });

  it('clips float32 gradients beside float64 ones: the norm in float64, each gradient in its own dtype, as PyTorch', async () => {
    // torch.nn.utils.clip_grad_norm_ over a float32 grad [3, 4] and a float64 grad [12] returns
    // the float64 norm 13 and scales each grad in place by 6.5/(13 + 1e-6), in its own dtype.
    const grads: Params = { a: tensor([3, 4]), b: tensor([12], f64) };
    const norm = globalNorm(grads);
    expect([norm.dtype, await read(norm)]).toEqual(['float64', [13]]);
    const clipped = clipGradNorm(grads, 6.5);
    const scale = 6.5 / (13 + 1e-6);
    expect(clipped.grads.a!.dtype).toBe('float32');
    expect(clipped.grads.b!.dtype).toBe('float64');
    // The float32 scale times 3 or 4, each product rounded once to float32.
    const scale32 = Math.fround(scale);
    expect(await read(clipped.grads.a!)).toEqual([Math.fround(3 * scale32), Math.fround(4 * scale32)]);
    close(await read(clipped.grads.b!), [12 * scale]);
    // And so a training step over such parameters clips them: SGD with lr 1 moves each by its clipped gradient.
    const params: Params = { a: tensor([1.5, 2]), b: tensor([6], f64) };
    const loss = (p: Params) => sum(p.a!.square()).cast('float64').add(sum(p.b!.square())); // gradients 2a, 2b: [3, 4], [12]
    await train({ params, loss, optimizer: sgd({ lr: 1 }), steps: 1, key: [1, 2], clipNorm: 6.5 });
    expect(await read(params.a!)).toEqual([Math.fround(1.5 - Math.fround(3 * scale32)), Math.fround(2 - Math.fround(4 * scale32))]);
    close(await read(params.b!), [6 - 12 * scale]);
  });

  it('names the function and the argument for gradients it cannot take, and requires maxNorm', () => {
    const grads: Params = { a: tensor([3, 4], f64) };
    // Before: 'mul: second operand must be a Tensor, got undefined', 'Cannot convert undefined or
    // null to object', 'mul: at least one operand must be a Tensor ...', 'sqrt: expected a float tensor, got int32'.
    expect(() => clipGradNorm(grads, undefined as never)).toThrow(/^clipGradNorm: maxNorm is required \(the global norm to clip to, a number > 0\)/);
    for (const fn of [globalNorm, (g: Params) => clipGradNorm(g, 1)]) {
      const name = fn === globalNorm ? 'globalNorm' : 'clipGradNorm';
      expect(() => fn(null as never)).toThrow(new RegExp(`^${name}: grads must be a record of gradient tensors by name \\(as the params\\), got null$`));
      expect(() => fn(tensor([1], f64) as never)).toThrow(new RegExp(`^${name}: grads must be a record .*, got a Tensor$`));
      expect(() => fn({ a: 3 } as never)).toThrow(new RegExp(`^${name}: gradient 'a' is not a Tensor, got number$`));
      expect(() => fn({ a: tensor([1, 2], { dtype: 'int32' }) })).toThrow(new RegExp(`^${name}: gradient 'a' is int32; gradients are float32 or float64$`));
      expect(() => fn({})).toThrow(new RegExp(`^${name}: no gradients given$`));
    }
  });
});

describe('ema', () => {
  it('averages with the warm-up decay min(δ, (1+n)/(10+n)) and copies the average back', async () => {
    const params: Params = { w: tensor(P0, f64) };
    const average = ema(params, { decay: 0.999 });
    let shadow = [...P0];
    for (const [n, g] of GRADS.entries()) {
      params.w!.assign(tensor(g, f64)); // any new parameter values
      const delta = Math.min(0.999, (1 + n) / (10 + n));
      expect(average.nextDecay()).toBe(delta);
      average.update(params);
      shadow = shadow.map((s, i) => delta * s + (1 - delta) * g[i]!);
      close(await read(average.shadow.w!), shadow);
    }
    expect(average.updates).toBe(4);
    average.copyTo(params);
    close(await read(params.w!), shadow);

    const plain = ema({ w: tensor(P0, f64) }, { decay: 0.5, warmup: false });
    plain.update({ w: tensor([3, 0], f64) });
    expect(await read(plain.shadow.w!)).toEqual([2, -1]);
    expect(() => ema(params, { decay: 1 })).toThrow(/^ema: decay must be a finite number >= 0 and < 1, got 1$/);
    expect(() => ema(params, { decay: -0.1 })).toThrow(/^ema: decay must be a finite number >= 0 and < 1, got -0.1$/);
    expect(() => ema(params, { decay: 0.9, warmUp: false } as never)).toThrow(unknownOption('ema', 'warmUp', 'warmup', ['decay', 'warmup']));
  });
});

describe('train', () => {
  it('minimises a loss, reads it every `every` steps, and frees each step', async () => {
    const target = tensor([0.5, -1.5, 2], f64);
    const params: Params = { w: tensor([0, 0, 0], f64), b: tensor([1], f64) };
    const keys: RandomKey[] = [];
    const loss = (p: Params, key: RandomKey, step: number) => {
      if (step < 3) keys.push(key);
      return sum(p.w!.sub(target).square()).add(sum(p.b!.square()));
    };
    const optimizer = adam({ lr: 0.1 });
    const average = ema(params, { decay: 0.9 });
    const seen: number[] = [];
    const first = await train({ params, loss, optimizer, steps: 10, key: [1, 2], every: 4, clipNorm: 1, ema: average, onProgress: (p) => void seen.push(p.step) });
    expect(first.history.map((h) => h.step)).toEqual([4, 8, 10]);
    expect(seen).toEqual([4, 8, 10]);
    expect(new Set(keys.map((k) => k.join(','))).size).toBe(3); // a fresh key each step
    // After the optimiser state exists, further training allocates nothing that outlives a step.
    const before = memory().tensors;
    const second = await train({ params, loss, optimizer, steps: 300, key: [3, 4], every: 100 });
    expect(memory().tensors).toBe(before);
    expect(second.history.at(-1)!.loss).toBeLessThan(1e-6);
    close(await read(params.w!), [0.5, -1.5, 2], 1e-3);
    // The first step's loss comes before any update, so the advice is not the learning rate's.
    await expect(train({ params, loss: () => tensor(NaN, f64).add(sum(params.w!)), optimizer, steps: 1, key: [0, 0] })).rejects.toThrow(
      "train: the loss is NaN at step 1, before any update; check the data, the loss's settings (its noise levels) and the initial parameters",
    );
    let calls = 0;
    const laterNaN = (p: Params) => (++calls >= 3 ? tensor(NaN, f64) : tensor(0, f64)).add(sum(p.w!));
    await expect(train({ params, loss: laterNaN, optimizer, steps: 5, key: [0, 0], jit: false, every: 1 })).rejects.toThrow(
      'train: the loss became NaN at step 3; lower the learning rate or clip gradients (clipNorm)',
    );
    // Read every 2 steps (2, 4, 5): NaN from step 3 on is seen at step 4, and step 3 was not read,
    // so the message gives the last step read finite instead of saying it became NaN at 4.
    calls = 0;
    await expect(train({ params, loss: laterNaN, optimizer, steps: 5, key: [0, 0], jit: false, every: 2 })).rejects.toThrow(
      'train: the loss is NaN at step 4, finite at step 2, the last step read; lower the learning rate or clip gradients (clipNorm)',
    );
    calls = 0;
    await expect(train({ params, loss: laterNaN, optimizer, steps: 5, key: [0, 0], jit: false, every: 4 })).rejects.toThrow(
      'train: the loss is NaN at step 4, not read at any step before (read it every step, every: 1, to see whether it was finite at step 1); lower the learning rate or clip gradients (clipNorm)',
    );
  });

  it('compiles the step by default: the same parameters and losses as eager steps, bit for bit on the CPU', async () => {
    const run = async (jit: boolean | undefined, optimizer: Optimizer) => {
      const params: Params = { w: tensor([0.1, -0.2, 0.3], f64), b: tensor([1], f64) };
      const average = ema(params, { decay: 0.9 });
      const loss = (p: Params, key: RandomKey) => sum(p.w!.sub(randn([3], { key, dtype: 'float64' })).square()).add(sum(p.b!.square()));
      const { history } = await train({ params, loss, optimizer, steps: 25, key: [5, 6], every: 5, clipNorm: 0.5, ema: average, jit });
      return { history, w: await read(params.w!), b: await read(params.b!), shadow: await read(average.shadow.w!) };
    };
    for (const make of [() => adam({ lr: (t) => 0.1 / t }), () => sgd({ lr: 0.05, momentum: 0.9, nesterov: true })]) {
      const compiled = await run(undefined, make());
      const eager = await run(false, make());
      expect(compiled).toEqual(eager);
    }
  });

  it('gives float64 parameters beside float32 ones their exact scalars when compiled, as eagerly', async () => {
    // The compiled step takes lr, the bias corrections and the EMA decay as tensors; a float64
    // parameter must see the same double as an eager step does, not its float32 rounding.
    const run = async (jit: boolean) => {
      const params: Params = { a: tensor([0.1, 0.2]), b: tensor([0.3, -0.7], f64) };
      const average = ema(params, { decay: 0.9 });
      const loss = (p: Params) => sum(p.a!.square()).cast('float64').add(sum(p.b!.sub(1).square()));
      await train({ params, loss, optimizer: adam({ lr: (t) => 0.1 / t }), steps: 20, key: [1, 2], ema: average, jit });
      return { a: await read(params.a!), b: await read(params.b!), shadow: await read(average.shadow.b!) };
    };
    const eager = await run(false);
    // b's gradient is 2(b − 1), exact in float64: Adam and the EMA by hand, in the step's order.
    let b = [0.3, -0.7];
    let shadow = [...b];
    const m = [0, 0];
    const v = [0, 0];
    for (let t = 1; t <= 20; t++) {
      const [c1, c2, lr] = [1 - 0.9 ** t, 1 - 0.999 ** t, 0.1 / t];
      b = b.map((w, i) => {
        const g = 2 * (w - 1);
        m[i] = m[i]! * 0.9 + g * (1 - 0.9);
        v[i] = v[i]! * 0.999 + g * g * (1 - 0.999);
        return w - (m[i]! / c1 / (Math.sqrt(v[i]! / c2) + 1e-8)) * lr;
      });
      const delta = Math.min(0.9, t / (9 + t));
      shadow = shadow.map((s, i) => s * delta + b[i]! * (1 - delta));
    }
    expect(eager.b).toEqual(b);
    expect(eager.shadow).toEqual(shadow);
    expect(await run(true)).toEqual(eager);
  });

  it('a parameter added mid-training starts its own bias corrections at step 1, as in PyTorch', async () => {
    const optimizer = adam({ lr: 0.1 });
    const w = tensor([1], f64);
    for (let i = 0; i < 100; i++) optimizer.step({ w }, { w: tensor([1], f64) });
    const v = tensor([0], f64);
    optimizer.step({ w, v }, { w: tensor([1], f64), v: tensor([1], f64) });
    // v's first Adam step, by the paper's formula with its own t = 1 (Kingma & Ba 2015, Alg. 1),
    // in the order the update rounds: m = (1 − β₁)g, s = (1 − β₂)g², m̂ = m/(1 − β₁¹), ŝ = s/(1 − β₂¹).
    const [m, sq] = [1 - 0.9, 1 - 0.999];
    const first = 0 - (m / (1 - 0.9 ** 1) / (Math.sqrt(sq / (1 - 0.999 ** 1)) + 1e-8)) * 0.1;
    expect((await v.data())[0]).toBe(first);
    // With the optimiser's global t = 101 it was −0.09804: the corrections of a hundred steps.
    expect(optimizer.stepCount).toBe(101);
    optimizer.dispose();
  });

  it('one optimiser stepping two models in turn gives each its own bias corrections, eager and compiled, as PyTorch', async () => {
    // PyTorch's Adam keeps `step` per parameter and advances it only for parameters it updates;
    // a global count advanced by both models gave each the corrections of twice its steps.
    // The loss (w − c)² has gradient 2(w − c): model a pulls towards 1, model b towards −1.
    const run = async (shared: boolean, compiled: boolean) => {
      const a = { wa: tensor([3, -2], f64) };
      const b = { wb: tensor([0.5], f64) };
      const optA = adam({ lr: 0.1 });
      const optB = shared ? optA : adam({ lr: 0.1 });
      const lossOf = (c: number) => (p: Params) => sum(Object.values(p)[0]!.sub(c).square());
      const stepA = trainingStep({ params: a, loss: lossOf(1), optimizer: optA, jit: compiled });
      const stepB = trainingStep({ params: b, loss: lossOf(-1), optimizer: optB, jit: compiled });
      const key = randomKey(0);
      for (let n = 0; n < 6; n++) {
        stepA(key, n).dispose();
        stepB(key, n).dispose();
      }
      const out = { a: await read(a.wa), b: await read(b.wb), counts: [optA.stepCount, optB.stepCount] };
      stepA.dispose();
      stepB.dispose();
      optA.dispose();
      if (shared === false) optB.dispose();
      return out;
    };
    for (const compiled of [false, true]) {
      const alone = await run(false, compiled);
      const shared = await run(true, compiled);
      expect(shared.a).toEqual(alone.a);
      expect(shared.b).toEqual(alone.b);
      // The schedule's count is the optimiser's: twelve steps begun when shared.
      expect([alone.counts, shared.counts]).toEqual([[6, 6], [12, 12]]);
    }
    // By hand for b: Adam with its own t = 1..6 (Kingma & Ba 2015, Alg. 1), g = 2(w + 1).
    let [w, m, v] = [0.5, 0, 0];
    for (let t = 1; t <= 6; t++) {
      const g = 2 * (w + 1);
      m = m * 0.9 + g * (1 - 0.9);
      v = v * 0.999 + g * g * (1 - 0.999);
      w = w - (m / (1 - 0.9 ** t) / (Math.sqrt(v / (1 - 0.999 ** t)) + 1e-8)) * 0.1;
    }
    close((await run(true, false)).b, [w]);
  });

  it("the eager step() of one optimiser over two parameter sets in turn counts each set's own steps", async () => {
    const shared = adam({ lr: 0.1 });
    const [onlyA, onlyB] = [adam({ lr: 0.1 }), adam({ lr: 0.1 })];
    const [a1, b1, a2, b2] = [tensor([1], f64), tensor([2], f64), tensor([1], f64), tensor([2], f64)];
    for (let n = 0; n < 5; n++) {
      shared.step({ a: a1 }, { a: tensor([0.5 + n], f64) });
      shared.step({ b: b1 }, { b: tensor([-1 - n], f64) });
      onlyA.step({ a: a2 }, { a: tensor([0.5 + n], f64) });
      onlyB.step({ b: b2 }, { b: tensor([-1 - n], f64) });
    }
    expect([await read(a1), await read(b1)]).toEqual([await read(a2), await read(b2)]);
    for (const o of [shared, onlyA, onlyB]) o.dispose();
  });

  it('an EMA refuses to update or copy after dispose, by name', () => {
    const w = tensor([1], f64);
    const average = ema({ w });
    average.update({ w });
    average.dispose();
    const message = 'ema: the average was disposed (its tensors are freed); make a new one';
    expect(() => average.update({ w })).toThrow(message);
    expect(() => average.copyTo({ w })).toThrow(message);
    expect(average.updates).toBe(1);
    w.dispose();
  });

  it('refuses a parameter of another model under a name whose state it holds', () => {
    const optimizer = adam({ lr: 0.1 });
    optimizer.step({ w: tensor([1], f64) }, { w: tensor([1], f64) });
    expect(() => optimizer.step({ w: tensor([5], f64) }, { w: tensor([-1], f64) })).toThrow(
      "adam: its state for 'w' belongs to another tensor (a parameter of that name it stepped before); an optimiser's moments are one model's, so use a new optimiser for another model",
    );
    expect(optimizer.stepCount).toBe(1);
    optimizer.dispose();
  });

  it('a step whose loss throws is not counted: the next one is the first step, eager and compiled', async () => {
    const run = async (compiled: boolean, throwFirst: boolean) => {
      const params: Params = { w: tensor([0.5, -1.5], f64) };
      const optimizer = adam({ lr: 0.1 });
      const average = ema(params, { decay: 0.9 });
      let calls = 0;
      const loss = (p: Params) => {
        if (throwFirst && calls++ === 0) throw new Error('no data yet');
        return sum(p.w!.sub(1).square());
      };
      const step = trainingStep({ params, loss, optimizer, ema: average, jit: compiled });
      if (throwFirst) expect(() => step([1, 2], 0)).toThrow(/^no data yet$/);
      // Bad arguments are refused before the step counts (3 as a key ran the step before).
      expect(() => step(3 as never, 0)).toThrow(/^trainingStep step: key: /);
      expect(() => step([1, 2], 1.5)).toThrow(/^trainingStep step: step must be an integer >= 0, got 1\.5$/);
      expect(() => (step as unknown as (k: unknown) => Tensor)([1, 2])).toThrow(/^trainingStep step: step is required/);
      expect([optimizer.stepCount, average.updates]).toEqual([0, 0]);
      for (let i = 0; i < 3; i++) step([1, 2], i).dispose();
      const result = { counts: [optimizer.stepCount, average.updates], w: await params.w!.data(), shadow: await average.shadow.w!.data() };
      step.dispose();
      optimizer.dispose();
      average.dispose();
      params.w!.dispose();
      return result;
    };
    for (const compiled of [false, true]) {
      const clean = await run(compiled, false);
      expect(clean.counts).toEqual([3, 3]);
      // Adam's first step moves each weight by lr exactly (m̂/√v̂ = ±1): counted twice it would not.
      expect(await run(compiled, true)).toEqual(clean);
    }
  });

  it('checks the EMA against the params before a step is counted', () => {
    const params: Params = { w: tensor([1], f64) };
    const average = ema({ v: tensor([1], f64) });
    const optimizer = sgd({ lr: 0.1 });
    expect(() => trainingStep({ params, loss: (p: Params) => sum(p.w!), optimizer, ema: average })).toThrow(/^trainingStep: the ema averages 'v', not among the params \(w\)$/);
    expect([optimizer.stepCount, average.updates]).toEqual([0, 0]);
  });

  it('refuses an EMA of another shape or dtype under a parameter\'s name before any step moves the parameters', async () => {
    for (const jit of [false, true]) {
      for (const other of [tensor([1, 2], f64), tensor([1, 2, 3])]) {
        const params: Params = { w: tensor([1, 2, 3], f64) };
        const optimizer = adam({ lr: 0.1 });
        const average = ema({ w: other });
        const make = () => trainingStep({ params, loss: (p: Params) => sum(p.w!.square()), optimizer, ema: average, jit });
        expect(make).toThrow(`trainingStep: the ema's average of 'w' is ${other.dtype} [${other.shape.join(',')}] on 'cpu' but the parameter is float64 [3] on 'cpu'; make the ema from these params (ema(params))`);
        // An eager step used to apply Adam's update and then throw in the EMA's: w moved by lr.
        expect(await read(params.w!)).toEqual([1, 2, 3]);
        expect([optimizer.stepCount, average.updates]).toEqual([0, 0]);
      }
    }
  });

  it('refuses a step once a progress callback (or another loop) disposed a parameter or the EMA\'s average, before anything moves', async () => {
    for (const jit of [false, true]) {
      for (const victim of ['parameter', 'average'] as const) {
        const params: Params = { w: tensor([1, 2, 3], f64), b: tensor([1], f64) };
        const optimizer = adam({ lr: 0.1 });
        const average = ema(params, { decay: 0.9 });
        let atStep2: number[][] = [];
        const onProgress = async ({ step }: { step: number }) => {
          if (step !== 2) return;
          atStep2 = [await read(params.w!), await read(average.shadow.w!)];
          (victim === 'parameter' ? params.b! : average.shadow.b!).dispose();
        };
        const what = victim === 'parameter' ? "the parameter 'b'" : "the ema's average of 'b'";
        await expect(train({ params, loss: (p: Params) => sum(p.w!.square()).add(sum(p.b!.square())), optimizer, ema: average, steps: 4, key: [1, 2], every: 1, jit, onProgress })).rejects.toThrow(
          `train: ${what}, a float64 [1] tensor, was disposed; every step updates it in place, so it must live until training ends (dispose it after)`,
        );
        // An eager step moved w and Adam's moments, then failed in the EMA's update on the
        // disposed average, and its count was taken back: a step half applied.
        expect([await read(params.w!), await read(average.shadow.w!)], `jit ${jit}, ${victim}`).toEqual(atStep2);
        expect([optimizer.stepCount, average.updates]).toEqual([2, 2]);
      }
    }
  });

  it('parameters that also require grad (for backward() elsewhere) train the same, with the step still compiled', async () => {
    const run = async (requiresGrad: boolean) => {
      const params: Params = { w: tensor([0.1, -0.2, 0.3], f64), b: tensor([1], f64) };
      for (const p of Object.values(params)) p.requiresGrad = requiresGrad;
      let traced = 0;
      const loss = (p: Params, key: RandomKey) => {
        traced++;
        return sum(p.w!.sub(randn([3], { key, dtype: 'float64' })).square()).add(sum(p.b!.square()));
      };
      const { history } = await train({ params, loss, optimizer: adam({ lr: 0.1 }), steps: 12, key: [5, 6], every: 4 });
      const result = { history: history.map((h) => h.loss), w: await read(params.w!), b: await read(params.b!), traced };
      expect(params.w!.requiresGrad).toBe(requiresGrad);
      for (const p of Object.values(params)) p.dispose();
      return result;
    };
    const plain = await run(false);
    expect(plain.traced).toBe(1); // traced once, then the compiled program runs
    expect(await run(true)).toEqual(plain);
  });

  it('runs a loss that takes the step number eagerly, and refuses jit: true for it', async () => {
    const params: Params = { w: tensor([1], f64) };
    const seen: number[] = [];
    const loss = (p: Params, _key: RandomKey, step: number) => {
      seen.push(step);
      return sum(p.w!.square()).mul(step + 1);
    };
    await train({ params, loss, optimizer: sgd({ lr: 0.01 }), steps: 3, key: [1, 1] });
    expect(seen).toEqual([0, 1, 2]);
    await expect(train({ params, loss, optimizer: sgd({ lr: 0.01 }), steps: 1, key: [1, 1], jit: true })).rejects.toThrow(/jit: true with a loss that takes the step number/);
  });

  it('runs a loss whose step parameter has a default (Function.length 2) eagerly when lossTakesStep says so', async () => {
    const run = async (lossTakesStep?: boolean) => {
      const params: Params = { w: tensor([1], f64) };
      const seen: number[] = [];
      const loss = (p: Params, _key: RandomKey, step = 0) => {
        seen.push(step);
        return sum(p.w!.square()).mul(step + 1);
      };
      expect(loss.length).toBe(2);
      const { history } = await train({ params, loss, optimizer: sgd({ lr: 0.01 }), steps: 3, key: [1, 1], every: 1, lossTakesStep });
      params.w!.dispose();
      return { seen, history: history.map((h) => h.loss) };
    };
    // Told: each step sees its number. w = 1, then w·(1 − 0.02·(n + 1)) after step n:
    // losses (n + 1)·w² = 1, 2·0.98², 3·(0.98·0.96)², each a few float64 roundings (< 1e-15 at
    // these sizes) from the closed form: 14 digits (5e-15) holds them.
    const told = await run(true);
    expect(told.seen).toEqual([0, 1, 2]);
    expect(told.history).toEqual([1, 2 * 0.98 ** 2, 3 * (0.98 * 0.96) ** 2].map((v) => expect.closeTo(v, 14)));
    // Not told: the step is compiled once, with the default step 0, and traced once.
    const untold = await run();
    expect(untold.seen).toEqual([0]);
    const params: Params = { w: tensor([1], f64) };
    await expect(train({ params, loss: (p: Params) => sum(p.w!.square()), optimizer: sgd({ lr: 0.01 }), steps: 1, key: [1, 1], lossTakesStep: 1 as never })).rejects.toThrow(/^train: lossTakesStep must be true or false, got 1$/);
    await expect(train({ params, loss: (p: Params, _k: RandomKey, step = 0) => sum(p.w!.square()).mul(step), optimizer: sgd({ lr: 0.01 }), steps: 1, key: [1, 1], lossTakesStep: true, jit: true })).rejects.toThrow(/jit: true with a loss that takes the step number \(lossTakesStep: true\)/);
    params.w!.dispose();
  });

  it('rejects a misspelled option, naming the closest valid one and all of them, and nonsense values', async () => {
    const params: Params = { w: tensor([0], f64) };
    const base = { params, loss: (p: Params) => sum(p.w!.square()), optimizer: sgd({ lr: 0.1 }), steps: 2, key: [1, 2] as RandomKey };
    const valid = ['params', 'loss', 'optimizer', 'steps', 'key', 'startStep', 'clipNorm', 'ema', 'every', 'onProgress', 'stopOnNonFinite', 'jit', 'lossTakesStep', 'signal', 'step'];
    await expect(train({ ...base, clipnorm: 1 } as never)).rejects.toThrow(unknownOption('train', 'clipnorm', 'clipNorm', valid));
    await expect(train({ ...base, logEvery: 1 } as never)).rejects.toThrow(unknownOption('train', 'logEvery', 'every', valid));
    await expect(train({ ...base, steps: 1.5 })).rejects.toThrow(/^train: steps must be an integer >= 0, got 1.5$/);
    await expect(train({ ...base, clipNorm: 0 })).rejects.toThrow(/^train: clipNorm must be a finite number > 0, got 0$/);
    await expect(train({ ...base, stopOnNonFinite: 'no' as never })).rejects.toThrow(/^train: stopOnNonFinite must be true or false, got "no"$/);
    await expect(train({ ...base, signal: true as never })).rejects.toThrow(/^train: signal must be an AbortSignal \(new AbortController\(\)\.signal\), got boolean$/);
    expect(await read(params.w!)).toEqual([0]); // nothing ran
  });

  it('requires steps: left out, it trained nothing and resolved with an empty history', async () => {
    const params: Params = { w: tensor([1], f64) };
    const { steps: _steps, ...noSteps } = { params, loss: (p: Params) => sum(p.w!.square()), optimizer: sgd({ lr: 0.1 }), steps: 2, key: [1, 2] as RandomKey };
    await expect(train(noSteps as never)).rejects.toThrow(/^train: steps is required \(the number of optimisation steps, an integer >= 0\)/);
    await expect(train({ ...noSteps, steps: undefined } as never)).rejects.toThrow(/^train: steps is required/);
    expect(await read(params.w!)).toEqual([1]); // nothing ran
  });
});

describe('state dicts: a run continued from saved state', () => {
  // A small model whose loss draws fresh data from each step's key, so the keys matter too.
  const initial = (dtype: DType): Params => ({
    w: tensor([0.3, -0.2, 0.5, 0.1, -0.4, 0.25], { dtype, shape: [3, 2] }),
    b: tensor([0.05, -0.1], { dtype }),
  });
  const lossOf = (dtype: DType) => (p: Params, key: RandomKey) => {
    const x = randn([4, 3], { key, dtype });
    return sum(matmul(x, p.w!).add(p.b!).tanh().sub(0.5).square());
  };
  const makers: [string, () => Optimizer][] = [
    // A schedule of the step count, so the count restored matters as much as the moments.
    ['adam', () => adam({ lr: (t) => 0.05 / Math.sqrt(t), beta1: 0.8 })],
    ['sgd', () => sgd({ lr: (t) => 0.1 / t, momentum: 0.9, nesterov: true })],
  ];
  /** The bytes of a tensor's values: equal bytes are equal bits (−0 and NaN payloads included). */
  const bits = async (t: Tensor): Promise<number[]> => Array.from(new Uint8Array((await t.data()).slice().buffer));
  const copy = (params: Params): Params => Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.detach()]));
  const KEY: RandomKey = [7, 11];
  const N = 6;
  const M = 5;

  /** Steps `from` … `to` − 1 of a run, with the keys foldIn(KEY, n). */
  const runSteps = (params: Params, optimizer: Optimizer, dtype: DType, jit: boolean, from: number, to: number, average?: Ema) => {
    const step = trainingStep({ params, loss: lossOf(dtype), optimizer, jit, ema: average });
    for (let n = from; n < to; n++) step(foldIn(KEY, n), n).dispose();
    step.dispose();
  };

  for (const dtype of ['float32', 'float64'] as const) {
    for (const jit of [false, true]) {
      for (const [name, make] of makers) {
        it(`${name}, ${dtype}, ${jit ? 'compiled' : 'eager'}: N steps, stateDict, a new optimiser loads it, M more steps equal N + M steps of one, bit for bit`, async () => {
          const whole = initial(dtype);
          const wholeAverage = ema(whole, { decay: 0.95 });
          runSteps(whole, make(), dtype, jit, 0, N + M, wholeAverage);

          const first = initial(dtype);
          const firstOptimizer = make();
          const firstAverage = ema(first, { decay: 0.95 });
          runSteps(first, firstOptimizer, dtype, jit, 0, N, firstAverage);
          const saved = firstOptimizer.stateDict!();
          expect(saved.step).toBe(N);
          expect(saved.counts).toEqual({ w: N, b: N });
          expect(Object.keys(saved.state)).toEqual(name === 'adam' ? ['m', 'v'] : ['momentum']);
          // Continued by other objects: parameters copied, a new optimiser and average loading the state.
          const second = copy(first);
          const secondOptimizer = make();
          secondOptimizer.loadStateDict!(saved, second);
          expect(secondOptimizer.stepCount).toBe(N);
          const secondAverage = ema(second, { decay: 0.95 });
          secondAverage.loadStateDict(firstAverage.stateDict());
          firstOptimizer.dispose();
          firstAverage.dispose();
          runSteps(second, secondOptimizer, dtype, jit, N, N + M, secondAverage);

          for (const k of ['w', 'b']) {
            expect(await bits(second[k]!)).toEqual(await bits(whole[k]!));
            expect(await bits(secondAverage.shadow[k]!)).toEqual(await bits(wholeAverage.shadow[k]!));
          }
          expect(secondAverage.updates).toBe(N + M);
        });
      }
    }
  }

  it("loading an optimiser's own stateDict() back changes nothing: the saved record stays live and the next step is the same", async () => {
    for (const [name, make] of makers) {
      const plain = initial('float64');
      const reloaded = initial('float64');
      const grads = { w: tensor([0.5, -1, 2, 0.25, -0.75, 1.5], { ...f64, shape: [3, 2] }), b: tensor([0.3, -0.2], f64) };
      const a = make();
      const b = make();
      for (let i = 0; i < 2; i++) {
        a.step(plain, grads);
        b.step(reloaded, grads);
      }
      const before = memory().tensors;
      const saved = b.stateDict!();
      b.loadStateDict!(saved, reloaded);
      expect(memory().tensors, name).toBe(before);
      for (const slot of Object.values(saved.state)) for (const t of Object.values(slot)) expect(t.isDisposed, name).toBe(false);
      expect(b.stateDict!().counts).toEqual({ w: 2, b: 2 });
      // A state of which one parameter's tensors are this optimiser's and the other's another's.
      const other = make();
      const otherParams = initial('float64');
      for (let i = 0; i < 2; i++) other.step(otherParams, grads);
      const mixed = b.stateDict!();
      const theirs = other.stateDict!();
      const state = Object.fromEntries(Object.entries(mixed.state).map(([slot, record]) => [slot, { w: record.w!, b: theirs.state[slot]!.b! }]));
      b.loadStateDict!({ ...mixed, state }, reloaded);
      other.dispose();
      // Only the other model's parameters are new: b holds as many state tensors as before.
      expect(memory().tensors, name).toBe(before + 2);
      a.step(plain, grads);
      b.step(reloaded, grads);
      for (const k of ['w', 'b']) expect(await bits(reloaded[k]!), `${name} ${k}`).toEqual(await bits(plain[k]!));
      a.dispose();
      b.dispose();
    }
  });

  it('rolled back with loadStateDict to a saved copy, a compiled step made before goes on as the whole run, bit for bit', async () => {
    // train's documented reuse of one trainingStep across stretches, with a rollback between them
    // (to a checkpoint read back): the compiled step closes over the optimiser's and the EMA's
    // state, so loading must keep those tensors (it replaced the optimiser's, and the step threw
    // that a tensor it closes over was disposed).
    const dtype = 'float64';
    const K = 3;
    for (const [name, make] of makers) {
      const whole = initial(dtype);
      const wholeAverage = ema(whole, { decay: 0.95 });
      runSteps(whole, make(), dtype, true, 0, N + M, wholeAverage);

      let traces = 0;
      const loss = (p: Params, key: RandomKey) => {
        traces++;
        return lossOf(dtype)(p, key);
      };
      const params = initial(dtype);
      const optimizer = make();
      const average = ema(params, { decay: 0.95 });
      const step = trainingStep({ params, loss, optimizer, jit: true, ema: average });
      for (let n = 0; n < N; n++) step(foldIn(KEY, n), n).dispose();
      // The checkpoint: copies, as read back from a file.
      const savedParams = copy(params);
      const state = optimizer.stateDict!();
      const savedState: OptimizerState = { ...state, state: Object.fromEntries(Object.entries(state.state).map(([slot, record]) => [slot, copy(record)])) };
      const averaged = average.stateDict();
      const savedAverage = { ...averaged, shadow: copy(averaged.shadow) };
      // Steps that are rolled back (other keys, so they differ from the whole run's).
      for (let n = N; n < N + K; n++) step(foldIn(KEY, 1000 + n), n).dispose();
      for (const [k, p] of Object.entries(params)) p.assign(savedParams[k]!);
      optimizer.loadStateDict!(savedState, params);
      average.loadStateDict(savedAverage);
      expect(optimizer.stepCount, name).toBe(N);
      for (let n = N; n < N + M; n++) step(foldIn(KEY, n), n).dispose();
      expect(traces, name).toBe(1);
      step.dispose();
      for (const k of ['w', 'b']) {
        expect(await bits(params[k]!), `${name} ${k}`).toEqual(await bits(whole[k]!));
        expect(await bits(average.shadow[k]!), `${name} average ${k}`).toEqual(await bits(wholeAverage.shadow[k]!));
      }
      expect(optimizer.stepCount, name).toBe(N + M);
    }
  });

  it("loads a state whose tensors are its own under other names as their values before the load (the optimiser's and the EMA's)", async () => {
    // The state is assigned into the held tensors in place: every value is read before any is written.
    const start = (): Params => ({ u: tensor([0.3, -0.2], f64), v: tensor([0.5, 0.1], f64) });
    const grads = { u: tensor([0.5, -1], f64), v: tensor([-0.25, 2], f64) };
    const swap = (record: Params, clone: boolean): Params => ({ u: clone ? record.v!.detach() : record.v!, v: clone ? record.u!.detach() : record.u! });
    for (const [name, make] of makers) {
      const [own, copied] = [make(), make()];
      const [ownParams, copiedParams] = [start(), start()];
      for (let i = 0; i < 2; i++) {
        own.step(ownParams, grads);
        copied.step(copiedParams, grads);
      }
      const swapped = (o: Optimizer, clone: boolean): OptimizerState => {
        const s = o.stateDict!();
        return { ...s, state: Object.fromEntries(Object.entries(s.state).map(([slot, record]) => [slot, swap(record, clone)])) };
      };
      own.loadStateDict!(swapped(own, false), ownParams);
      copied.loadStateDict!(swapped(copied, true), copiedParams);
      for (const [slot, record] of Object.entries(own.stateDict!().state)) {
        for (const k of ['u', 'v']) expect(await bits(record[k]!), `${name} ${slot} ${k}`).toEqual(await bits(copied.stateDict!().state[slot]![k]!));
      }
      own.step(ownParams, grads);
      copied.step(copiedParams, grads);
      for (const k of ['u', 'v']) expect(await bits(ownParams[k]!), `${name} ${k}`).toEqual(await bits(copiedParams[k]!));
      own.dispose();
      copied.dispose();
    }
    const average = ema(start(), { decay: 0.9 });
    average.update({ u: tensor([1, 2], f64), v: tensor([3, 4], f64) });
    const [u, v] = [await read(average.shadow.u!), await read(average.shadow.v!)];
    const s = average.stateDict();
    average.loadStateDict({ ...s, shadow: swap(s.shadow, false) });
    expect([await read(average.shadow.u!), await read(average.shadow.v!)]).toEqual([v, u]);
    average.dispose();
  });

  it('train continues from startStep with the keys, step numbers and history of the whole run', async () => {
    const dtype = 'float64';
    const loss = (p: Params, key: RandomKey) => lossOf(dtype)(p, key);
    const make = () => adam({ lr: (t) => 0.05 / t });
    const whole = initial(dtype);
    const all = await train({ params: whole, loss, optimizer: make(), steps: N + M, key: KEY, every: 2 });
    const first = initial(dtype);
    const firstOptimizer = make();
    const before = await train({ params: first, loss, optimizer: firstOptimizer, steps: N, key: KEY, every: 2 });
    const second = copy(first);
    const secondOptimizer = make();
    // Not loaded: the optimiser would start the schedule and the corrections again.
    await expect(train({ params: second, loss, optimizer: secondOptimizer, steps: M, key: KEY, startStep: N })).rejects.toThrow(
      `train: startStep is ${N} but the optimiser has begun 0 steps; load the state of the run being continued into it first (optimizer.loadStateDict)`,
    );
    secondOptimizer.loadStateDict!(firstOptimizer.stateDict!(), second);
    const after = await train({ params: second, loss, optimizer: secondOptimizer, steps: M, key: KEY, startStep: N, every: 2 });
    // Steps 2, 4, 6 | 8, 10, 11: N = 6 is a multiple of `every`, so the history splits cleanly.
    expect([...before.history, ...after.history]).toEqual(all.history);
    for (const k of ['w', 'b']) expect(await bits(second[k]!)).toEqual(await bits(whole[k]!));
    await expect(train({ params: second, loss, optimizer: secondOptimizer, steps: 1, key: KEY, startStep: -1 })).rejects.toThrow(/^train: startStep must be an integer >= 0, got -1$/);
  });

  it('train in stretches with one trainingStep traces its step once, and trains the whole run bit for bit', async () => {
    const dtype = 'float64';
    const make = () => adam({ lr: (t) => 0.05 / t });
    // A compiled step calls the loss once per trace: the calls count the traces.
    let traces = 0;
    const loss = (p: Params, key: RandomKey) => {
      traces++;
      return lossOf(dtype)(p, key);
    };
    const whole = initial(dtype);
    const all = await train({ params: whole, loss, optimizer: make(), steps: N + M, key: KEY, every: 2 });
    expect(traces).toBe(1);
    // In stretches of 3 steps (4 train calls), each given the same step.
    traces = 0;
    const params = initial(dtype);
    const optimizer = make();
    const step = trainingStep({ params, loss, optimizer });
    const history = [];
    for (let from = 0; from < N + M; from += 3) {
      history.push(...(await train({ params, loss, optimizer, step, steps: Math.min(3, N + M - from), key: KEY, startStep: from, every: 2 })).history);
    }
    expect(traces).toBe(1);
    expect(step.compiled).toBe(true);
    step.dispose();
    for (const k of ['w', 'b']) expect(await bits(params[k]!)).toEqual(await bits(whole[k]!));
    // Each stretch's last step is read besides (3, 9: not multiples of 2).
    expect(history.filter((h) => h.step % 2 === 0 || h.step === N + M)).toEqual(all.history);
    // A step of other options, or not a step, is refused before any step runs.
    await expect(train({ params, loss: lossOf(dtype), optimizer, step, steps: 1, key: KEY })).rejects.toThrow(
      /^train: step was made by trainingStep with a different loss than train's; give both the same params, loss, optimizer, clipNorm, ema, jit and lossTakesStep$/,
    );
    await expect(train({ params, loss, optimizer, step, steps: 1, key: KEY, clipNorm: 1 })).rejects.toThrow(/^train: step was made by trainingStep with a different clipNorm than train's/);
    await expect(train({ params, loss, optimizer, step: (() => tensor(0)) as never, steps: 1, key: KEY })).rejects.toThrow(/^train: step must be a TrainingStep made by trainingStep\(\.\.\.\), got function$/);
    expect(optimizer.stepCount).toBe(N + M);
  });

  it('a signal stops train after the step in progress; continued from there, the run is the whole run', async () => {
    const dtype = 'float64';
    const make = () => adam({ lr: (t) => 0.05 / t });
    const whole = initial(dtype);
    const all = await train({ params: whole, loss: lossOf(dtype), optimizer: make(), steps: N + M, key: KEY, every: 2 });
    // Aborted while step 5 (an odd step, not read at every 2) runs: eagerly, the loss runs once a step.
    const stopper = new AbortController();
    let calls = 0;
    const loss = (p: Params, key: RandomKey) => {
      if (++calls === 5) stopper.abort();
      return lossOf(dtype)(p, key);
    };
    const first = initial(dtype);
    const firstOptimizer = make();
    const reported: number[] = [];
    const before = await train({ params: first, loss, optimizer: firstOptimizer, steps: N + M, key: KEY, every: 2, jit: false, signal: stopper.signal, onProgress: (p) => void reported.push(p.step) });
    expect(calls).toBe(5);
    expect(before.steps).toBe(5);
    expect(firstOptimizer.stepCount).toBe(5);
    // Step 5 is read as a run's last step is, and reported.
    expect(before.history.map((h) => h.step)).toEqual([2, 4, 5]);
    expect(reported).toEqual([2, 4, 5]);
    const second = copy(first);
    const secondOptimizer = make();
    secondOptimizer.loadStateDict!(firstOptimizer.stateDict!(), second);
    const after = await train({ params: second, loss: lossOf(dtype), optimizer: secondOptimizer, steps: N + M - 5, key: KEY, startStep: 5, every: 2 });
    expect(after.steps).toBe(N + M - 5);
    for (const k of ['w', 'b']) expect(await bits(second[k]!)).toEqual(await bits(whole[k]!));
    // The whole run's history, with the stopped step's read besides.
    expect([...before.history, ...after.history].filter((h) => h.step !== 5)).toEqual(all.history);
    // Already aborted: no step is taken.
    const untouched = initial(dtype);
    const none = await train({ params: untouched, loss: lossOf(dtype), optimizer: make(), steps: 3, key: KEY, signal: stopper.signal });
    expect(none).toEqual({ history: [], steps: 0 });
    for (const k of ['w', 'b']) expect(await bits(untouched[k]!)).toEqual(await bits(initial(dtype)[k]!));
  });

  it('with a signal, train lets the event loop turn between steps, so a timer (or a Ctrl-C listener) can stop it', async () => {
    const params: Params = { w: tensor([1], f64) };
    const stopper = new AbortController();
    setTimeout(() => stopper.abort(), 50);
    // Far more steps than run in the test's time: without turns of the event loop between
    // steps (which on the CPU run synchronously), the timer would fire only after the last.
    const steps = 10_000_000;
    const { history, steps: taken } = await train({ params, loss: (p: Params) => sum(p.w!.square()), optimizer: sgd({ lr: 1e-9 }), steps, key: [1, 2], every: steps, signal: stopper.signal });
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(steps);
    expect(history.map((h) => h.step)).toEqual([taken]);
  });

  it('with a signal, train lets the event loop turn when every step is read too, its progress reported synchronously', async () => {
    // every: 1 (the CLI's --log-every 1 and --checkpoint-every 1): the turns were taken only on
    // steps not read, so the timer (a Ctrl-C listener) never ran and training went to the end.
    const params: Params = { w: tensor([1], f64) };
    const stopper = new AbortController();
    setTimeout(() => stopper.abort(), 50);
    const steps = 2_000_000;
    const reported: number[] = [];
    const { history, steps: taken } = await train({
      params, loss: (p: Params) => sum(p.w!.square()), optimizer: sgd({ lr: 1e-9 }), steps, key: [1, 2], every: 1, signal: stopper.signal,
      onProgress: (p) => void reported.push(p.step),
    });
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(steps);
    expect(history.map((h) => h.step)).toEqual(Array.from({ length: taken }, (_, i) => i + 1));
    expect(reported).toEqual(history.map((h) => h.step));
  });

  it('turnEventLoop (one definition, used by train and the CLI) resolves after the callbacks already due have run', async () => {
    const ran: string[] = [];
    setImmediate(() => ran.push('immediate'));
    // A promise already resolved settles before any callback: the loop has not turned.
    await Promise.resolve();
    expect(ran).toEqual([]);
    await turnEventLoop();
    expect(ran).toEqual(['immediate']);
  });

  it('refuses a state of another optimiser, other options or other parameters, changing nothing', () => {
    const params = initial('float64');
    const source = adam({ beta1: 0.8 });
    source.step(params, { w: tensor([1, 2, 3, 4, 5, 6], { dtype: 'float64', shape: [3, 2] }), b: tensor([1, -1], f64) });
    const saved = source.stateDict!();
    const target = adam({ beta1: 0.8 });
    const load = (state: unknown, p: Params = params) => () => target.loadStateDict!(state as OptimizerState, p);
    expect(load(saved)).not.toThrow();
    expect(target.stepCount).toBe(1);
    expect(() => sgd({ lr: 0.1, momentum: 0.9 }).loadStateDict!(saved, params)).toThrow(/^sgd: the state is of optimiser "adam", not sgd; load it into the kind of optimiser that saved it$/);
    expect(() => adam().loadStateDict!(saved, params)).toThrow(/^adam: the state was saved with beta1 0.8, but this optimiser has beta1 0.9; make the optimiser with the options of the run being continued$/);
    expect(() => sgd({ lr: 0.1 }).loadStateDict!(sgd({ lr: 0.1, momentum: 0.5 }).stateDict!(), params)).toThrow(/^sgd: the state was saved with momentum 0.5, but this optimiser has momentum 0/);
    const { b: _b, ...onlyW } = params;
    expect(load(saved, onlyW)).toThrow(/^adam: the state counts the parameters 'w', 'b', but the params are 'w'; load a state saved for these parameters$/);
    expect(load({ ...saved, counts: { w: 2, b: 1 } })).toThrow(/^adam: the state's count of 'w' must be an integer from 0 to 1 \(its step count\), got 2$/);
    expect(load({ ...saved, step: 1.5 })).toThrow(/^adam: the state's step must be an integer from 0, got 1.5$/);
    expect(load({ ...saved, state: { m: saved.state.m } })).toThrow(/^adam: the state holds the slots 'm', but adam keeps 'm', 'v'$/);
    expect(load({ ...saved, state: { ...saved.state, v: { ...saved.state.v, b: tensor([1, 2, 3], f64) } } })).toThrow(/^adam: the state's 'v' of 'b' is float64 \[3\] but the parameter is float64 \[2\]$/);
    expect(load({ ...saved, state: { ...saved.state, v: { ...saved.state.v, b: tensor([1, 2]) } } })).toThrow(/^adam: the state's 'v' of 'b' is float32 \[2\] but the parameter is float64 \[2\]$/);
    expect(load(null)).toThrow(/^adam: expected a state from stateDict\(\)/);
    const gone = tensor([0, 0], f64);
    gone.dispose();
    expect(load(saved, { ...params, b: gone })).toThrow(/^adam: parameter 'b' was disposed$/);
    // Inside jit its tensors would be the trace's values: refused, saying where to load it.
    expect(() => jit((x: Tensor) => {
      target.loadStateDict!(saved, params);
      return x;
    })(tensor([1]))).toThrow(/^adam: loadStateDict cannot run inside jit; load the state before compiling the training step \(or calling train\)$/);
    // Every refusal left the state loaded first.
    expect(target.stepCount).toBe(1);
    expect(target.stateDict!().counts).toEqual({ w: 1, b: 1 });
  });

  it("refuses an ema's state of other options or names", () => {
    const params = initial('float64');
    const saved = ema(params, { decay: 0.9 }).stateDict();
    expect(() => ema(params, { decay: 0.99 }).loadStateDict(saved)).toThrow(/^ema: the state was saved with decay 0.9, but this average has decay 0.99/);
    expect(() => ema(params, { decay: 0.9, warmup: false }).loadStateDict(saved)).toThrow(/^ema: the state was saved with warmup true, but this average has warmup false/);
    const { b: _b, ...onlyW } = params;
    expect(() => ema(onlyW, { decay: 0.9 }).loadStateDict(saved)).toThrow(/^ema: the state averages 'b', which this average does not \(it averages 'w'\)$/);
    expect(() => ema(params, { decay: 0.9 }).loadStateDict({ ...saved, updates: -1 })).toThrow(/^ema: the state's updates must be an integer from 0, got -1$/);
  });
});

describe('null options', () => {
  it('are refused by name everywhere: null reached adam\'s default (lr through ??) but vpSde\'s check', () => {
    expect(() => adam({ lr: null } as never)).toThrow(new TypeError('adam: lr is null, which is not a value for it (an option left out, or undefined, takes its default)'));
    expect(() => vpSde({ betaMin: null } as never)).toThrow(new TypeError('vpSde: betaMin is null, which is not a value for it (an option left out, or undefined, takes its default)'));
    expect(() => sgd({ lr: 0.1, momentum: null } as never)).toThrow('sgd: momentum is null');
  });
});

describe('optimiser options, more', () => {
  it('sgd refuses momentum 1 and Nesterov without momentum', () => {
    expect(() => sgd({ lr: 0.1, momentum: 1 })).toThrow(/^sgd: momentum must be a finite number >= 0 and < 1, got 1$/);
    expect(() => sgd({ lr: 0.1, momentum: 1.5 })).toThrow(/^sgd: momentum must be a finite number >= 0 and < 1, got 1.5$/);
    expect(() => sgd({ lr: 0.1, nesterov: true })).toThrow(/^sgd: nesterov needs a momentum > 0$/);
    expect(() => sgd({ lr: 0.1, momentum: 0, nesterov: true })).toThrow(/^sgd: nesterov needs a momentum > 0$/);
  });

  it('a schedule may reach 0 (the end of a decay): that step moves nothing and is counted', async () => {
    const opt = sgd({ lr: (t) => (t === 1 ? 0.5 : 0) });
    const params: Params = { w: tensor([1], f64) };
    opt.step(params, { w: tensor([1], f64) });
    opt.step(params, { w: tensor([1], f64) });
    expect(await read(params.w!)).toEqual([0.5]);
    expect(opt.stepCount).toBe(2);
    expect(opt.learningRate(7)).toBe(0);
  });

  it('linearWarmup counts whole steps: a fractional warmupSteps is refused', () => {
    expect(() => linearWarmup(0.1, 2.5)).toThrow(/^linearWarmup: warmupSteps must be an integer/);
    expect(linearWarmup(0.1, 4)(2)).toBe(0.05);
  });

  it('ema defaults to decay 0.999 with warm-up: δ = min(0.999, (1 + n)/(10 + n))', () => {
    const average = ema({ w: tensor([1], f64) });
    expect(average.nextDecay()).toBe(0.1);
    expect(average.stateDict().options).toEqual({ decay: 0.999, warmup: true });
    // Without warm-up the default decay itself.
    expect(ema({ w: tensor([1], f64) }, { warmup: false }).nextDecay()).toBe(0.999);
  });
});

describe('the step record', () => {
  it("beginStep gives the plain scalars of the highest own count, a later parameter's under its name", () => {
    const [b1, b2] = [0.9, 0.999];
    const opt = adam({ lr: 0.1 });
    const a = tensor([1], f64);
    opt.step({ a }, { a: tensor([1], f64) });
    opt.step({ a }, { a: tensor([1], f64) });
    const b = tensor([0], f64);
    // a's third update, b's first: correction1 is a's 1 − β₁³, correction1@b b's 1 − β₁.
    const scalars = opt.beginStep({ a, b });
    expect(scalars).toEqual({
      lr: 0.1,
      correction1: 1 - b1 ** 3,
      rootCorrection2: Math.sqrt(1 - b2 ** 3),
      'correction1@b': 1 - b1,
      'rootCorrection2@b': Math.sqrt(1 - b2),
    });
  });

  it('refuses an update that no beginStep counted (before any, or after abandonStep), changing nothing', async () => {
    const message = "adam: the parameter 'w' was not counted by beginStep (its state was made after it); pass the step's params to beginStep, or call init(params) before it";
    const opt = adam({ lr: 0.1 });
    const params: Params = { w: tensor([1], f64) };
    const scalars = { lr: 0.1, correction1: 0.1, rootCorrection2: Math.sqrt(0.001) };
    expect(() => opt.applyUpdate(params, { w: tensor([1], f64) }, scalars)).toThrow(message);
    expect(await read(params.w!)).toEqual([1]);
    const abandoned = adam({ lr: 0.1 });
    const begun = abandoned.beginStep(params);
    abandoned.abandonStep!();
    expect(() => abandoned.applyUpdate(params, { w: tensor([1], f64) }, begun)).toThrow(message);
    expect(await read(params.w!)).toEqual([1]);
    expect(abandoned.stateDict!().counts).toEqual({ w: 0 });
  });
});

describe('state held and freed', () => {
  it('loadStateDict frees the state it replaces when the new state does not fit the old tensors', () => {
    const source = adam({ lr: 0.1 });
    const other: Params = { v: tensor([1, 2, 3], f64) };
    source.step(other, { v: tensor([1, 1, 1], f64) });
    const opt = adam({ lr: 0.1 });
    opt.step({ w: tensor([1], f64) }, { w: tensor([1], f64) });
    const before = memory().tensors;
    // Two new moments for 'v' are made, and the two of 'w' go.
    opt.loadStateDict!(source.stateDict!(), other);
    expect(memory().tensors).toBe(before);
    expect(opt.stateDict!().counts).toEqual({ v: 1 });
  });

  it('refuses a saved state on another device than the parameters, naming both, changing nothing', async () => {
    await openDevice('webgpu');
    const source = adam({ lr: 0.1 });
    source.step({ w: tensor([1, 2]) }, { w: tensor([1, 1]) });
    const target = adam({ lr: 0.1 });
    const params: Params = { w: tensor([1, 2], { device: 'webgpu' }) };
    expect(() => target.loadStateDict!(source.stateDict!(), params)).toThrow(
      "adam: the state's 'm' of 'w' is on 'cpu' but the parameter on 'webgpu'; make the state's tensors on the parameters' device",
    );
    expect(target.stepCount).toBe(0);
    expect(target.stateDict!().counts).toEqual({});
  });
});

describe("ema's loadStateDict names the saved average and this one", () => {
  it('refuses a saved average of another dtype, shape or device', async () => {
    await openDevice('webgpu');
    expect(() => ema({ w: tensor([1, 2]) }).loadStateDict(ema({ w: tensor([1, 2], f64) }).stateDict())).toThrow(
      "ema: saved average of 'w' is float64 [2] but this average is float32 [2]",
    );
    expect(() => ema({ w: tensor([1, 2], { device: 'webgpu' }) }).loadStateDict(ema({ w: tensor([1, 2]) }).stateDict())).toThrow(
      "ema: saved average of 'w' is on 'cpu' but this average on 'webgpu'",
    );
    expect(() => ema({ w: tensor([1, 2]) }).loadStateDict(ema({ v: tensor([1, 2]) }).stateDict())).toThrow(
      "ema: no saved average for parameter 'w' (saved averages given for: v)",
    );
  });
});

describe('train defaults', () => {
  it('reads the loss every 100 steps by default, and at the last step', async () => {
    // The loss w with lr 1 (gradient 1): step k (1-based) reads w₀ − (k − 1), exact integers.
    const params: Params = { w: tensor([1000], f64) };
    const { history, steps } = await train({ params, loss: (p: Params) => p.w!.sum(), optimizer: sgd({ lr: 1 }), steps: 101, key: [1, 2] });
    expect(steps).toBe(101);
    expect(history).toEqual([{ step: 100, loss: 901 }, { step: 101, loss: 900 }]);
  });

  it('refuses every: 0 (a remainder by 0 read no step but the last)', async () => {
    const params: Params = { w: tensor([2], f64) };
    await expect(train({ params, loss: (p: Params) => p.w!.square().sum(), optimizer: sgd({ lr: 0.1 }), steps: 3, key: [1, 2], every: 0 })).rejects.toThrow(
      /^train: every must be an integer >= 1, got 0$/,
    );
    expect(await read(params.w!)).toEqual([2]);
  });
});

describe('checks of train', () => {
  const loss = (p: Params) => p.w!.square().sum();

  it('a given step must have been made with train\'s ema', async () => {
    const params: Params = { w: tensor([1], f64) };
    const optimizer = sgd({ lr: 0.1 });
    const average = ema(params, { decay: 0.5 });
    const step = trainingStep({ params, loss, optimizer, ema: average });
    await expect(train({ params, loss, optimizer, step, steps: 1, key: [1, 2] })).rejects.toThrow(
      /^train: step was made by trainingStep with a different ema than train's; give both the same params, loss, optimizer, clipNorm, ema, jit and lossTakesStep$/,
    );
    // Nothing ran: w is still 1.
    expect(await read(params.w!)).toEqual([1]);
    step.dispose();
    average.dispose();
  });

  it('stops on a non-finite loss before onProgress sees it (a callback saving a checkpoint would save the diverged run)', async () => {
    // The loss is NaN from step 3 (1-based) on; read every step.
    const params: Params = { w: tensor([1], f64) };
    const seen: number[] = [];
    const laterNaN = (p: Params, _key: unknown, step: number) => (step >= 2 ? p.w!.sum().mul(Number.NaN) : p.w!.sum());
    await expect(train({ params, loss: laterNaN, optimizer: sgd({ lr: 0.1 }), steps: 5, key: [1, 2], every: 1, onProgress: ({ step }) => void seen.push(step) })).rejects.toThrow(
      /^train: the loss became NaN at step 3; /,
    );
    expect(seen).toEqual([1, 2]);
  });

  it('startStep: 0 must match an optimiser that has taken steps too', async () => {
    const params: Params = { w: tensor([1], f64) };
    const optimizer = sgd({ lr: 0.1 });
    await train({ params, loss, optimizer, steps: 2, key: [1, 2] });
    await expect(train({ params, loss, optimizer, steps: 1, key: [1, 2], startStep: 0 })).rejects.toThrow(
      /^train: startStep is 0 but the optimiser has begun 2 steps; load the state of the run being continued into it first \(optimizer\.loadStateDict\)$/,
    );
  });
});

describe('memory', () => {
  it('train frees the compiled step it made: memory() is the same after a run', async () => {
    // Not disposed, each call's program kept its buffers (3 more, 96 bytes, per call here) until
    // the garbage collector found the function.
    const params: Params = { w: tensor([1, 2, 3, 4], { ...f64, shape: [2, 2] }) };
    const x = tensor([[1, 2], [3, 4]], f64);
    const loss = (p: Params) => matmul(x, p.w!).tanh().square().sum();
    const optimizer = sgd({ lr: 0.1 });
    await train({ params, loss, optimizer, steps: 2, key: [1, 2] }); // the optimiser's state, made once
    const before = memory();
    await train({ params, loss, optimizer, steps: 2, key: [1, 2] });
    expect(memory()).toEqual(before);
  });
});
