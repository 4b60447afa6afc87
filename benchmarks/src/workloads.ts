// The workloads of the side-by-side benchmark suite, in one place: what each case computes, its
// unit, the tolerance its value check uses (with the reasoning), and the two run plans (`--quick`
// and the full run). Every engine, the JavaScript ones and the PyTorch worker, reads its case from
// the `CaseSpec` objects defined here (the Python worker receives them as JSON), so a size or a
// hyper-parameter is changed once.

/** The seven workloads, W1–W7. */
export const WORKLOAD_IDS = ['matmul', 'ssmvr', 'dsm', 'ism', 'langevin', 'hvp', 'conv'] as const;
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

/** An MLP score network d → h → h → d with softplus activations (LeCun-normal weights, zero biases). */
export interface MlpShape {
  dim: number;
  hidden: number;
}

/** Adam's hyper-parameters (Kingma & Ba 2015's defaults, lr 1e-3): the same in every engine. */
export interface AdamSpec {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

export const ADAM: AdamSpec = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** The parameter names, in order, as scorch's `mlpScore` names them; every engine uses this order. */
export const MLP_PARAM_NAMES = ['layer0.weight', 'layer0.bias', 'layer1.weight', 'layer1.bias', 'out.weight', 'out.bias'] as const;

interface CaseBase {
  /** Unique within a run, e.g. 'matmul-512', 'ism-d32'. */
  id: string;
  /** Short label of the size, e.g. 'n=512', 'd=32'. */
  size: string;
}

export interface MatmulCase extends CaseBase {
  workload: 'matmul';
  /** C = A·B with A, B of shape [n, n]. */
  n: number;
}

export interface TrainingCase extends CaseBase {
  workload: 'ssmvr' | 'dsm' | 'ism';
  net: MlpShape;
  batch: number;
  adam: AdamSpec;
  /** DSM's noise scale. */
  sigma?: number;
  /**
   * scorch draws the SSM projection (SSM-VR) or the DSM noise from a key: randomKey(seed) folded
   * with step 0, as `train` does for its first step. The inputs hold the same numbers for the peers.
   */
  seed?: number;
}

export interface LangevinCase extends CaseBase {
  workload: 'langevin';
  net: MlpShape;
  particles: number;
  /** The schedule the workload stands for (10 levels × 100 steps); its rate is what is timed. */
  sigmas: number[];
  stepsPerLevel: number;
  stepSize: number;
  /** The value check: the schedule's first and last level, `checkStepsPerLevel` steps each (2 in a full run). */
  checkSigmas: number[];
  checkStepsPerLevel: number;
  /** Sampler steps in one timed repetition (at one level: a step costs the same at every level). */
  stepsPerRep: number;
  /** Noise of check step k: randn([particles, dim], foldIn(randomKey(seed), k)), as scorch's sampler draws it. */
  seed: number;
}

export interface HvpCase extends CaseBase {
  workload: 'hvp';
  net: MlpShape;
  batch: number;
}

/** A 2-D convolution layer, NCHW, stride 1, no bias: x [batch, channels, extent, extent] ⋆ w [channels, channels, kernel, kernel]. */
export interface ConvCase extends CaseBase {
  workload: 'conv';
  batch: number;
  channels: number;
  /** Height and width of the image. */
  extent: number;
  kernel: number;
  padding: number;
  /**
   * false: the forward pass y = conv(x, w). true: also the gradients of L = ⟨y, r⟩ in x and w
   * (for r given): the backward pass of a conv layer in training.
   */
  backward: boolean;
}

export type CaseSpec = MatmulCase | TrainingCase | LangevinCase | HvpCase | ConvCase;

/** W2's network: 2 → 128 → 128 → 2, also used by W3, W5 and W6. */
export const SMALL_NET: MlpShape = { dim: 2, hidden: 128 };

/** The number of parameters of an MLP d → h → h → d (weights and biases): the length of W6's product. */
export function mlpParamCount({ dim, hidden }: MlpShape): number {
  return dim * hidden + hidden + hidden * hidden + hidden + hidden * dim + dim;
}

export function matmulCase(n: number): MatmulCase {
  return { workload: 'matmul', id: `matmul-${n}`, size: `n=${n}`, n };
}

export const SSMVR_CASE: TrainingCase = { workload: 'ssmvr', id: 'ssmvr', size: 'batch 1024', net: SMALL_NET, batch: 1024, adam: ADAM, seed: 11 };

export const DSM_CASE: TrainingCase = { workload: 'dsm', id: 'dsm', size: 'batch 1024, σ=0.5', net: SMALL_NET, batch: 1024, adam: ADAM, sigma: 0.5, seed: 12 };

export function ismCase(dim: number): TrainingCase {
  return { workload: 'ism', id: `ism-d${dim}`, size: `d=${dim}`, net: { dim, hidden: 256 }, batch: 256, adam: ADAM };
}

/** σ₁ = 1 … σ₁₀ = 0.01, geometric (Song & Ermon 2019; scorch's `geometricSigmas(1, 0.01, 10)`). */
const LANGEVIN_SIGMAS = Array.from({ length: 10 }, (_, i) => (i === 9 ? 0.01 : Math.exp((Math.log(0.01) / 9) * i)));

export function langevinCase(stepsPerRep: number, checkStepsPerLevel = 2): LangevinCase {
  return {
    workload: 'langevin',
    id: 'langevin',
    size: '10,000 particles',
    net: SMALL_NET,
    particles: 10_000,
    sigmas: LANGEVIN_SIGMAS,
    stepsPerLevel: 100,
    stepSize: 2e-5,
    checkSigmas: [LANGEVIN_SIGMAS[0]!, LANGEVIN_SIGMAS[9]!],
    checkStepsPerLevel,
    stepsPerRep,
    seed: 13,
  };
}

/** W7: a 3×3 convolution, 64 → 64 channels, 32×32, batch 16, padding 1 (a ResNet-style block's conv). */
export function convCase(backward: boolean): ConvCase {
  return {
    workload: 'conv', id: backward ? 'conv-fwd-bwd' : 'conv-fwd', size: `16×64×32×32, ${backward ? 'forward + backward' : 'forward'}`,
    batch: 16, channels: 64, extent: 32, kernel: 3, padding: 1, backward,
  };
}

export const HVP_CASE: HvpCase = { workload: 'hvp', id: 'hvp', size: 'batch 1024', net: SMALL_NET, batch: 1024 };

// ------------------------------------------------------------------------------------------------
// What each workload reports

export interface WorkloadInfo {
  id: WorkloadId;
  /** 'W1' … 'W6'. */
  code: string;
  title: string;
  /** The figure's unit. */
  unit: string;
  /** Whether a larger figure is better (a rate) or a smaller one (a time). */
  higherIsBetter: boolean;
  /** What the workload measures and why it is in the suite (README and JSON). */
  about: string;
  /** What the value check compares. */
  value: string;
}

export const WORKLOADS: Record<WorkloadId, WorkloadInfo> = {
  matmul: {
    id: 'matmul',
    code: 'W1',
    title: 'matmul',
    unit: 'GFLOP/s',
    higherIsBetter: true,
    about: 'float32 C = A·B, square; 2n³ flops; the kernel every other workload leans on. One timed repetition is the product and a one-element read back (jax-js: blockUntilReady).',
    value: 'uᵀCw for fixed random u, w (float64 sum of the read-back C)',
  },
  ssmvr: {
    id: 'ssmvr',
    code: 'W2',
    title: 'SSM-VR training step',
    unit: 'ms/step',
    higherIsBetter: false,
    about:
      'One sliced-score-matching (variance-reduced) step: MLP 2→128→128→2, softplus, batch 1024, one Gaussian projection, Adam; loss, ∇θ (a JVP inside a gradient, or a double backward) and the optimiser update. The workload scorch exists for.',
    value: 'the loss at the initial weights and after one Adam step, on the same batch and projection',
  },
  dsm: {
    id: 'dsm',
    code: 'W3',
    title: 'DSM training step',
    unit: 'ms/step',
    higherIsBetter: false,
    about: 'One denoising-score-matching step, σ = 0.5, same network and batch: first-order autodiff only, the cheap baseline of W2.',
    value: 'the loss at the initial weights and after one Adam step, on the same batch and noise',
  },
  ism: {
    id: 'ism',
    code: 'W4',
    title: 'exact ISM step',
    unit: 'ms/step',
    higherIsBetter: false,
    about:
      'One implicit-score-matching step with the exact Jacobian trace (d JVPs batched, or d vector-Jacobian products): MLP d→256→256→d, batch 256, Adam. Its cost grows with d; the fitted exponent says how.',
    value: 'the loss at the initial weights and after one Adam step',
  },
  langevin: {
    id: 'langevin',
    code: 'W5',
    title: 'annealed Langevin sampling',
    unit: 'particle-steps/s',
    higherIsBetter: true,
    about:
      "Annealed Langevin dynamics, 10 noise levels × 100 steps over 10,000 particles in 2-D, W2's network as the score: a forward pass, the update and fresh Gaussian noise per step. A repetition times a few consecutive steps; the full 1,000-step run is projected from the rate.",
    value: 'mean x₁, mean x₂, mean ‖x‖² and a weighted mean of the particles after a few steps at σ₁ and as many at σ₁₀ (2 each in a full run, 1 in a quick one), with the noise given',
  },
  hvp: {
    id: 'hvp',
    code: 'W6',
    title: 'Hessian-vector product',
    unit: 'ms',
    higherIsBetter: false,
    about:
      "∇²θ f · v for f(θ) = Σ s_θ(x) of W2's network over a batch of 1024, v a random direction in parameter space; forward-over-reverse where the engine has forward mode, reverse-over-reverse otherwise.",
    value: `the whole product (${mlpParamCount(SMALL_NET).toLocaleString('en-US')} numbers)`,
  },
  conv: {
    id: 'conv',
    code: 'W7',
    title: '3×3 convolution',
    unit: 'ms',
    higherIsBetter: false,
    about:
      'float32 conv2d, NCHW, 64 → 64 channels, 3×3, padding 1, 32×32 images, batch 16 (1.2 GFLOP forward): the forward pass, and the forward pass with the gradients in the input and the weights (the backward pass of a training step, 3× the flops). Each engine uses its own convolution: scorch composes it from pad, slices and one matmul (im2col); the peers call their conv kernels.',
    value: 'forward: ⟨y, r⟩; with the backward pass also ⟨∂L/∂x, s⟩ and ⟨∂L/∂w, t⟩ for L = ⟨y, r⟩ (r, s, t fixed random arrays; float64 sums of read-back values)',
  },
};

// ------------------------------------------------------------------------------------------------
// The value check's tolerance

export interface Tolerance {
  /** Largest accepted ‖value − reference‖₂ / max(‖reference‖₂, floor). */
  rtol: number;
  /** The scale below which the error is measured absolutely (values of that size are "zero"). */
  floor: number;
  /** Why this tolerance (README and JSON). */
  why: string;
}

// Every reference is a float64 computation (PyTorch's, or scorch's CPU backend's) from the same
// float32 inputs, so each engine's error is its float32 rounding alone. Unit roundoff u = 2⁻²⁴ ≈ 6e-8; a dot
// product of length k has a typical relative error of √k·u and at most k·u.
export const TOLERANCES: Record<WorkloadId, Tolerance> = {
  matmul: {
    // uᵀ(AB)w with unit-normal entries has a typical size of ‖uᵀA‖‖Bw‖/√n (the floor, computed from
    // the inputs); each C_ij carries an error of about √n·u·‖A_i‖‖B_j‖/√n, so the checksum's error
    // relative to that size is about √n·u: 3e-6 at n = 2048. A wrong product (a transposed B, a
    // missing block) is off by about the floor itself.
    rtol: 1e-4,
    floor: 0,
    why: 'relative to the checksum’s typical size ‖uᵀA‖‖Bw‖/√n; float32 rounding gives about √n·u ≤ 3e-6 at n = 2048',
  },
  ssmvr: {
    // A loss term costs ~3.5e4 flops in dot products of length ≤ 128 (√128·u ≈ 7e-7 each, three
    // layers and a JVP: ~3e-6); the batch mean of 1024 O(1) terms adds at most 1024·u = 6e-5 with a
    // naive float32 sum and ~2e-6 with a pairwise one. After one Adam step every parameter moves by
    // ~lr = 1e-3; a gradient whose sign is lost in rounding moves the loss only at second order.
    // The terms are O(1) at initialisation, so the error is measured relative to max(|loss|, 1).
    rtol: 1e-4,
    floor: 1,
    why: 'float32 rounding of a batch mean of 1024 O(1) terms (≤ 6e-5 with a naive sum, ~2e-6 typical), relative to max(|loss|, 1)',
  },
  dsm: {
    // As SSM-VR, without the JVP; the terms are ~‖z‖²/(2σ²) ≈ 4.
    rtol: 1e-4,
    floor: 1,
    why: 'float32 rounding of a batch mean of 1024 O(1) terms, relative to max(|loss|, 1)',
  },
  ism: {
    // Dot products of length ≤ 256 (√256·u ≈ 1e-6), the trace a sum of d ≤ 128 diagonal entries
    // (≤ 128·u ≈ 8e-6), a batch mean of 256 terms (≤ 1.5e-5): 1e-4 leaves a margin of about 5.
    rtol: 1e-4,
    floor: 1,
    why: 'float32 rounding of d-term traces and a batch mean of 256 terms (≤ 2.5e-5), relative to max(|loss|, 1)',
  },
  langevin: {
    // Four steps x ← x + (α/2)s(x) + √α z change each particle by O(1) amounts, each computed to
    // ~1e-6 relative (a forward pass as in SSM-VR); the statistics are then taken in float64 from
    // the read-back particles, so they add no rounding of their own.
    rtol: 1e-4,
    floor: 1,
    why: 'float32 rounding of four sampler steps per particle (~1e-6); statistics taken in float64; relative to max(‖values‖, 1)',
  },
  hvp: {
    // Each entry is a sum over 1024 examples of products through softplus'' (σ(1−σ)); ~√1024·u ≈
    // 2e-6 typical, ≤ 1024·u = 6e-5 with a naive sum; compared as a whole vector (relative L2).
    rtol: 1e-4,
    floor: 0,
    why: 'float32 rounding of sums over 1024 examples (≤ 6e-5 naive, ~2e-6 typical), relative L2 error of the whole product',
  },
  conv: {
    // Each output of the forward pass sums 576 products (≤ 576·u ≈ 3.4e-5 relative to Σ|terms|,
    // ~√576·u ≈ 1.4e-6 typical); ∂L/∂x sums 576 and ∂L/∂w 16·32·32 = 16,384 products (~√16384·u ≈
    // 8e-6 typical, ≤ 1e-3 in the worst case of a naive float32 sum). The checksums are taken in
    // float64 over ~1M random-signed terms, which averages these errors rather than adds them.
    rtol: 1e-4,
    floor: 1,
    why: 'float32 rounding of 576-term (forward, ∂x) and 16,384-term (∂w) sums (~1e-5 typical), relative L2 error of the checksums',
  },
};

// ------------------------------------------------------------------------------------------------
// Plans

/** Medians are of at least this many timed repetitions. */
export const MIN_REPS = 5;

export type Mode = 'quick' | 'full';

export interface Plan {
  mode: Mode;
  cases: CaseSpec[];
  /**
   * Untimed steps per engine and case after the value check (compilation, caches, allocator), at
   * least: the first of them, the value check's own, also judges whether the step is slow.
   */
  warmup: number;
  /**
   * Warm-up by time: an engine that is not slow runs warm-up steps until, at its first step's
   * time, they add up to this many milliseconds, and at most `warmupMax` of them. V8 compiles
   * WebAssembly and JavaScript in tiers as code runs (baseline first, optimised once hot), so a
   * JIT-compiled engine's steps get faster over its first ten or so: scorch's SSM-VR step was
   * 23, 18, then 11–16 ms as the timed steps 4–10 of run O (benchmarks/NOTES.md, "Warm-up by
   * time"). A training loop runs thousands of steps; the steady step is what the suite times.
   */
  warmupMs: number;
  warmupMax: number;
  /** Timed repetitions per engine and case: the median and min–max are reported. */
  reps: number;
  /**
   * Untimed steps of the same engine run back to back right before each timed step, until they
   * add up to this many milliseconds (at least one), for engines whose first warm-up step took at
   * most `leadInMaxMs`. In the rounds, the work before an engine's timed step is the other
   * engines' (about 0.3 s), and two things it leaves behind slow a step that a training loop,
   * running its steps back to back, never sees (benchmarks/NOTES.md, "A lead-in before each timed
   * step"): caches and predictors filled by other work (scorch's SSM-VR step 9.6 ms in a loop,
   * 10.9–13.4 after a neighbour's 300 ms burst; PyTorch one thread's 5.9 ms warm, 9–16 in the
   * rounds), and, on this virtual machine, a second core that idled while single-threaded
   * engines ran: scorch's two-thread SSM-VR step takes 16 ms after 300 ms idle, 14–16 after a
   * lead-in of one step or 30 ms, 8.1 after 100 ms, 7.7 after 200, 8.3 in a loop. 100 ms of
   * steps brings every engine, threaded or not, to its loop speed; the rounds still spread the
   * machine's drift over all engines alike.
   */
  leadInMs: number;
  /**
   * Engines whose step takes longer get no lead-in: the disturbance is a few milliseconds, a few
   * percent of such a step, and a lead-in would double their share of the run's time. (Between
   * 100 ms and this, the lead-in is one step.)
   */
  leadInMaxMs: number;
  /**
   * An engine whose first warm-up step takes longer than this gets no further warm-up and the
   * minimum of 5 timed repetitions: a step that long is not at the mercy of a timer's resolution
   * or a cache, and it keeps the full run within its budget.
   */
  slowStepMs: number;
  /**
   * A peer whose step would take longer than this (its first warm-up step, or a prediction from
   * its previous size) is not timed on the case; its row says so. This is what keeps a run within
   * its time budget.
   */
  maxStepMs: number;
  /**
   * The same limit for scorch's own rows, higher: every ratio is taken against scorch, so its
   * rows are kept wherever the budget allows.
   */
  maxScorchStepMs: number;
}

export function planFor(mode: Mode): Plan {
  if (mode === 'quick') {
    return {
      mode,
      cases: [matmulCase(256), matmulCase(512), SSMVR_CASE, DSM_CASE, ismCase(2), ismCase(8), langevinCase(1, 1), HVP_CASE, convCase(false), convCase(true)],
      warmup: 1,
      warmupMs: 0,
      warmupMax: 1,
      reps: 5,
      leadInMs: 0,
      leadInMaxMs: 0,
      slowStepMs: 1_000,
      maxStepMs: 1_000,
      maxScorchStepMs: 4_000,
    };
  }
  return {
    mode,
    cases: [
      matmulCase(256), matmulCase(512), matmulCase(1024), matmulCase(2048),
      SSMVR_CASE, DSM_CASE,
      ismCase(2), ismCase(8), ismCase(32), ismCase(128),
      langevinCase(2), HVP_CASE,
      convCase(false), convCase(true),
    ],
    warmup: 2,
    warmupMs: 1_000,
    warmupMax: 20,
    reps: 7,
    leadInMs: 100,
    leadInMaxMs: 250,
    slowStepMs: 2_000,
    maxStepMs: 5_000,
    maxScorchStepMs: 120_000,
  };
}

/** The figure (in the workload's unit) for a step time in milliseconds. */
export function figureFor(spec: CaseSpec, ms: number): number {
  switch (spec.workload) {
    case 'matmul':
      return (2 * spec.n ** 3) / (ms * 1e6);
    case 'langevin':
      return (spec.particles * spec.stepsPerRep) / (ms / 1000);
    default:
      return ms;
  }
}
