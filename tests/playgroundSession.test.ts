// The playground's session (playground/src/session.ts) in Node on the CPU: what the page's Reset
// and every setting that makes a new model rely on. The page itself is driven in
// playground.e2e.test.ts; these are the session's own promises, cheaper to check here.

import { describe, expect, it } from 'vitest';
import { DATASET_NAMES, NOISE_DEFAULTS } from '@scorch/score';
import { memory, setDefaultDevice, tensor } from '@scorch/tensor';
import { PlaygroundSession, type SessionSettings } from '../playground/src/session.js';
import { describeBackend } from '../playground/src/backendSelection.js';
import { drawLossCurve, drawScene } from '../playground/src/renderer.js';

setDefaultDevice('cpu');

const settings = (changes: Partial<SessionSettings>): SessionSettings => ({
  dataset: 'moons',
  objective: 'ssm-vr-clean',
  seed: 0,
  learningRate: 3e-3,
  batchSize: 64,
  hidden: [16, 16],
  dsmSigma: NOISE_DEFAULTS.sigma,
  particleCount: 50,
  ...changes,
});

/** Runs `f` on a new session of `s`, disposed afterwards whatever happens. */
async function withSession<T>(s: SessionSettings, f: (session: PlaygroundSession) => Promise<T>): Promise<T> {
  const session = new PlaygroundSession(s);
  try {
    return await f(session);
  } finally {
    session.dispose();
  }
}

describe('PlaygroundSession', () => {
  it.each(DATASET_NAMES)('frees every tensor it made when disposed (%s): Reset leaves memory flat', async (dataset) => {
    const before = memory();
    // Three train/reset cycles, each using everything the page uses: data, field, training, Langevin.
    for (let cycle = 0; cycle < 3; cycle++) {
      const session = new PlaygroundSession(settings({ dataset, seed: cycle }));
      await session.dataPoints(100);
      await session.trainChunk(2);
      await session.scoreField();
      await session.langevinFrame(2, 0.01);
      session.dispose();
    }
    const after = memory();
    expect({ tensors: after.tensors, bytes: after.bytes }).toEqual({ tensors: before.tensors, bytes: before.bytes });
  });

  it('frees the model it made when a setting is refused after it (a batch size, a learning rate)', () => {
    const before = memory().tensors;
    expect(() => new PlaygroundSession(settings({ learningRate: 0 }))).toThrow(/^adam: lr/);
    expect(() => new PlaygroundSession(settings({ batchSize: 0 }))).toThrow(/batch/);
    expect(() => new PlaygroundSession(settings({ dataset: 'mixture', batchSize: 0 }))).toThrow(/batch/);
    expect(memory().tensors).toBe(before);
  });

  it('stops Langevin dynamics with a message when particles become NaN or infinite, rather than drawing fewer', async () => {
    await withSession(settings({}), async (session) => {
      // A step that keeps every particle finite returns their positions.
      expect((await session.langevinFrame(5, 0.01)).every(Number.isFinite)).toBe(true);
      // ε = 1e20: the first step's √ε z moves a particle ~1e10, where the network's score grows
      // about linearly, so the second step's (ε/2)s_θ(x) is ~1e30 and the third's passes
      // float32's 3.4e38 within the frame's five steps.
      await expect(session.langevinFrame(5, 1e20)).rejects.toThrow(/^\d+ of 50 particles became NaN or infinite; lower the Langevin step ε \(now 100000000000000000000\)$/);
      // Fresh particles with a sound step move again.
      session.resetParticles();
      expect((await session.langevinFrame(5, 0.01)).every(Number.isFinite)).toBe(true);
    });
  });

  it('blames the settings, not the learning rate, for a loss already non-finite at step 1', async () => {
    // The first loss is computed before any update: σ = 1e30 overflows float32 in the DSM loss.
    await withSession(settings({ objective: 'dsm', dsmSigma: 1e30 }), async (session) => {
      await expect(session.trainChunk(1)).rejects.toThrow(/^the loss is (-?Infinity|NaN) at step 1, before any update; the objective's noise σ or the data set is the cause$/);
    });
  });

  it('blames a diverged model, not ε, for particles that become NaN after training failed', async () => {
    await withSession(settings({ learningRate: 1e9 }), async (session) => {
      await expect(session.trainChunk(10)).rejects.toThrow(/^the loss became/);
      // Training it again runs no steps and names the step where it diverged (it ran ten more and
      // named the first NaN of those, with the advice to lower the learning rate).
      const diverged = session.losses.findIndex((v) => !Number.isFinite(v));
      await expect(session.trainChunk(10)).rejects.toThrow(`training diverged at step ${diverged + 1} (loss ${session.losses[diverged]}); Reset the model, with a lower learning rate or another objective`);
      expect(session.stepsDone).toBe(10);
      session.resetParticles();
      await expect(session.langevinFrame(1, 0.01)).rejects.toThrow(/^50 of 50 particles became NaN or infinite; the model is broken \(its training diverged\): Reset it$/);
    });
  });

  it('a new particle count keeps the model: the next frame scatters that many for the same steps', async () => {
    await withSession(settings({}), async (session) => {
      await session.trainChunk(3);
      expect((await session.langevinFrame(1, 0.01)).length).toBe(100);
      const before = memory().tensors;
      session.setParticleCount(20);
      expect(memory().tensors).toBe(before - 1); // the 50 particles, freed
      expect((await session.langevinFrame(1, 0.01)).length).toBe(40);
      expect(session.stepsDone).toBe(3);
      expect(() => session.setParticleCount(0)).toThrow(/^setParticleCount: count must be a positive whole number, got 0$/);
    });
  });

  it('makes another model for another seed', async () => {
    const field = (seed: number) => withSession(settings({ seed }), async (s) => Array.from((await s.scoreField()).scores));
    expect(await field(1)).not.toEqual(await field(0));
  });

  it('draws a fresh batch every step: with a negligible learning rate the losses still differ step to step', async () => {
    const losses = await withSession(settings({ learningRate: 1e-30 }), (s) => s.trainChunk(3));
    expect(new Set(losses).size).toBe(3);
  });

  it('scatters the particles anew at each resetParticles (Scatter again)', async () => {
    await withSession(settings({}), async (s) => {
      s.resetParticles();
      const first = Array.from((await s.particlePositions())!);
      s.resetParticles();
      expect(Array.from((await s.particlePositions())!)).not.toEqual(first);
    });
  });

  it('moves particles by x + (ε/2)·s(x) + √ε·z, with fresh noise z at each step', async () => {
    // 4,000 particles, ε = 4: x1 − x0 regressed on s(x0) gives the drift's coefficient ε/2; the
    // residual over √ε has standard deviation 1; a second session (same seed, same draws) takes
    // two steps, and its second step's noise is uncorrelated with the first's. Each statistic of
    // 8,000 draws has a standard error of about 0.011–0.016: the bounds are ≥ 6 of them.
    const eps = 4;
    const s = settings({ particleCount: 4000 });
    const scoreOf = async (session: PlaygroundSession, x: Float32Array) => Float32Array.from(await session.model.score(tensor(x, { shape: [x.length / 2, 2] })).data());
    const one = await withSession(s, async (session) => {
      session.resetParticles();
      const x0 = (await session.particlePositions())!;
      const s0 = await scoreOf(session, x0);
      const x1 = await session.langevinFrame(1, eps);
      return { x0, s0, x1, s1: await scoreOf(session, x1) };
    });
    const x2 = await withSession(s, async (session) => {
      session.resetParticles();
      return session.langevinFrame(2, eps);
    });
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((acc, v, i) => acc + v * b[i]!, 0);
    const r1 = Array.from(one.x1, (v, i) => v - one.x0[i]!);
    const z1 = r1.map((r, i) => (r - (eps / 2) * one.s0[i]!) / Math.sqrt(eps));
    const z2 = Array.from(x2, (v, i) => (v - one.x1[i]! - (eps / 2) * one.s1[i]!) / Math.sqrt(eps));
    expect(Math.abs(dot(r1, one.s0) / dot(one.s0, one.s0) - eps / 2)).toBeLessThan(0.3);
    expect(Math.abs(Math.sqrt(dot(z1, z1) / z1.length) - 1)).toBeLessThan(0.1);
    expect(Math.abs(dot(z1, z2) / Math.sqrt(dot(z1, z1) * dot(z2, z2)))).toBeLessThan(0.1);
  });

  it('lays the score field grid out row-major from the top-left, as ScoreField says', async () => {
    await withSession(settings({}), async (s) => {
      const f = await s.scoreField();
      const cell = 6 / f.size;
      expect(f.points[0]).toBeCloseTo(-3 + cell / 2, 5);
      expect(f.points[1]).toBeCloseTo(3 - cell / 2, 5);
    });
  });
});

describe('the page\'s backend line', () => {
  it('keeps the whole reason when WebGPU is missing (it was cut at the dot of navigator.gpu)', () => {
    expect(describeBackend({ device: 'cpu', cpuThreads: 1, fallbackReason: 'navigator.gpu is missing' })).toBe('cpu (1 thread; WebGPU unavailable: navigator.gpu is missing)');
    expect(describeBackend({ device: 'cpu', cpuThreads: 2, fallbackReason: 'navigator.gpu is missing (not a secure context: use https or localhost)' })).toBe(
      'cpu (2 threads; WebGPU unavailable: navigator.gpu is missing (not a secure context: use https or localhost))',
    );
    // initWebGPU's long text: its first sentence.
    expect(describeBackend({ device: 'cpu', cpuThreads: 1, fallbackReason: 'initWebGPU: requestDevice failed. Tried: a, b. Install Mesa.' })).toBe('cpu (1 thread; WebGPU unavailable: requestDevice failed.)');
  });
});

/** A canvas of width × height pixels whose 2-D context records its calls. */
function recordingCanvas(width: number, height: number) {
  const calls: { name: string; args: unknown[] }[] = [];
  const context = new Proxy({} as Record<string, unknown>, {
    get: (target, key) => (typeof key === 'string' && key in target ? target[key] : (...args: unknown[]) => calls.push({ name: String(key), args })),
    set: (target, key, value) => ((target[key as string] = value), true),
  });
  const canvas = { clientWidth: width, clientHeight: height, width: 0, height: 0, getContext: () => context };
  const path = () => calls.filter((c) => c.name === 'moveTo' || c.name === 'lineTo');
  return { canvas: canvas as unknown as HTMLCanvasElement, calls, path };
}

/** Runs `draw` with the page's window (its devicePixelRatio) standing in. */
function onPage(draw: () => void): void {
  (globalThis as { window?: unknown }).window = { devicePixelRatio: 1 };
  try {
    draw();
  } finally {
    delete (globalThis as { window?: unknown }).window;
  }
}

describe('the loss chart', () => {
  it('draws at most two points per pixel column however long the history (a million steps took ~1 s a redraw)', () => onPage(() => {
    const short = recordingCanvas(300, 100);
    drawLossCurve(short.canvas, Array.from({ length: 100 }, (_, i) => 1 / (i + 1)));
    expect(short.path()).toHaveLength(100); // a short history: every step
    const long = recordingCanvas(300, 100);
    drawLossCurve(long.canvas, Array.from({ length: 1_000_000 }, (_, i) => (i % 1000 === 7 ? NaN : Math.exp(-i / 1e5))));
    expect(long.path().length).toBeGreaterThan(0);
    expect(long.path().length).toBeLessThanOrEqual(2 * 300);
  }));

  it('draws larger losses higher up: a falling loss falls', () => onPage(() => {
    const { canvas, path } = recordingCanvas(300, 300);
    drawLossCurve(canvas, [3, 2, 1]);
    const ys = path().map((c) => c.args[1] as number);
    expect(ys[0]).toBeLessThan(ys[2]!); // canvas y grows downwards
  }));

  it('draws the finite losses of a history that ends in NaN (training diverged), labelled with their range', () => onPage(() => {
    const { canvas, calls, path } = recordingCanvas(300, 300);
    drawLossCurve(canvas, [3, 2.5, 2, 1.5, NaN]);
    const coordinates = path().flatMap((c) => c.args as number[]);
    expect(coordinates).toHaveLength(8);
    expect(coordinates.every(Number.isFinite)).toBe(true);
    expect(calls.filter((c) => c.name === 'fillText').map((c) => c.args[0])).toEqual(['3.000', '1.500']);
  }));
});

describe('the scene', () => {
  it('draws data y upwards: a point at y = 2 is above the centre', () => onPage(() => {
    const { canvas, calls } = recordingCanvas(300, 300);
    drawScene(canvas, { data: new Float32Array([0, 2]), field: null, particles: null });
    const arc = calls.find((c) => c.name === 'arc')!;
    expect(arc.args[0]).toBeCloseTo(150, 6);
    expect(arc.args[1]).toBeCloseTo(50, 6);
  }));

  it('draws a score pointing up (+y) as an arrow pointing up the screen', () => onPage(() => {
    const { canvas, calls } = recordingCanvas(300, 300);
    drawScene(canvas, { data: null, particles: null, field: { size: 1, points: new Float32Array([0, 0]), scores: new Float32Array([0, 1]) } });
    const tail = calls.findIndex((c) => c.name === 'moveTo' && c.args[0] === 150 && (c.args[1] as number) > 150);
    expect(tail).toBeGreaterThanOrEqual(0); // below the centre
    expect(calls[tail + 1]!.name).toBe('lineTo');
    expect(calls[tail + 1]!.args[1] as number).toBeLessThan(150); // the head, above it
  }));
});

describe('a lost WebGPU device on the page', () => {
  it("is reported with the page's remedy, a reload, instead of the failed op's message and the backend's advice for code", async () => {
    const { failureText } = await import('../playground/src/app.js');
    const failed = new Error('webgpu mul: this tensor belongs to a WebGPU device that was lost; recreate it on a new device (initWebGPU() opens one). Tensor: float32 [4]; loss: destroyed');
    expect(failureText(failed, 'destroyed: Device was destroyed.')).toBe('the GPU device was lost (destroyed: Device was destroyed.); reload the page to start again on a new device');
    // A device alive (or none: the CPU): the error's own message.
    expect(failureText(new Error('the loss became NaN at step 3'), null)).toBe('the loss became NaN at step 3');
    expect(failureText(new Error('the loss became NaN at step 3'))).toBe('the loss became NaN at step 3');
  });
});
