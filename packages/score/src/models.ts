// Score models: functions x ↦ s_θ(x) ≈ ∇ₓ log p(x) that the losses train.
//
// A model's score is a `ScoreFunction` (conventions.ts): `cond` is the noise level of a
// noise-conditional model, one per row (shape [N]): σ for `conditioning: 'sigma'`, the diffusion
// time t ∈ [0, 1] for 'time'. Parameters are a named record of tensors (`Params`). A model's
// `apply(params, x, cond)` is a pure function of them, so a loss can be differentiated
// functionally (`grad`/`valueAndGrad` over the params), or via `requiresGrad` and `backward()`
// on `model.params`.
//
// Two families:
// - `mlpScore`: an MLP that outputs the score directly (optionally noise-conditional, with a
//   sinusoidal or Gaussian-Fourier embedding of the noise level, and output scaling).
// - `mlpEnergy`: an MLP energy E_θ(x) (shape [N]) whose score is −∇ₓE, computed with `grad`
//   inside the model; so losses that need ∂s/∂x (ISM, SSM) differentiate the Hessian of E.
//
// ReLU: its second derivative is zero. For an energy model s = −∇E is then piecewise constant,
// so tr ∂s/∂x = −tr ∇²E vanishes almost everywhere and ISM/SSM collapse to ½E‖s‖² (driving the
// score to zero). For a direct score network ∂s/∂x is piecewise constant in x: the trace term
// carries no curvature information, and its θ-gradient through the activation's derivative
// vanishes. Use a smooth activation (SiLU, softplus, tanh, ELU) with ISM/SSM.

import { grad } from '@scorch/autograd';
import {
  composite, getBackend,
  type RandomKey, Tensor, checkKey, checkNumber, checkNumberList, checkOneOf, everyEntry, checkOptions, concat, cos, elu, fmtShape, isFloatDType, log, matmul, mul, randn, relu, reshape,
  silu, sin, sizeOf, softplus, splitKey, sum, tanh, tensor, tidy, type FloatDType,
} from '@scorch/tensor';
import { type EnergyFunction, type ScoreFunction, optionNames } from './conventions.js';
import { type Sde, perRow } from './sde.js';
/** Named parameters (or buffers) of a model. */
export type Params = Record<string, Tensor>;

export type Activation = 'silu' | 'softplus' | 'tanh' | 'elu' | 'relu';
export type Conditioning = 'none' | 'sigma' | 'time';
export type Embedding = 'sinusoidal' | 'fourier';
export type OutputScaling = 'none' | 'divideBySigma' | 'noisePrediction';

const ACTIVATIONS: readonly Activation[] = ['silu', 'softplus', 'tanh', 'elu', 'relu'];
const CONDITIONINGS: readonly Conditioning[] = ['none', 'sigma', 'time'];
const EMBEDDINGS: readonly Embedding[] = ['sinusoidal', 'fourier'];
const OUTPUT_SCALINGS: readonly OutputScaling[] = ['none', 'divideBySigma', 'noisePrediction'];

const activationFns: { [A in Activation]: (x: Tensor) => Tensor } = {
  silu,
  softplus,
  tanh,
  elu: (x) => elu(x),
  relu,
};

export interface MlpOptions {
  /** Data dimension d. */
  inputDim: number;
  /** Widths of the hidden layers, e.g. [64, 64]. */
  hidden: readonly number[];
  /**
   * Hidden activation; default 'silu' (smooth, so ∂s/∂x and its θ-gradient are informative). It
   * also picks the hidden layers' initialisation: He normal (Var = 2/fan_in, He et al. 2015) for
   * 'relu', LeCun normal (Var = 1/fan_in) for the rest; the output layer is LeCun normal always.
   */
  activation?: Activation;
  /** What `cond` holds: nothing ('none', default), the noise scale σ, or the diffusion time t. */
  conditioning?: Conditioning;
  /**
   * Embedding of the noise level, concatenated to x at the input. 'sinusoidal' (Vaswani et al.
   * 2017; Ho et al. 2020) or 'fourier': random Gaussian Fourier features (Tancik et al. 2020),
   * fixed at initialisation. Default 'fourier' for σ, 'sinusoidal' for t.
   * The embedded scalar is log σ for 'sigma' (as NCSN++); for 'time' it is 999·t with the
   * sinusoidal embedding (Ho et al. embed the integer step 0…999) and t with Fourier features.
   */
  embedding?: Embedding;
  /** Embedding width (even); default 32. */
  embeddingDim?: number;
  /** Standard deviation of the Fourier frequencies; default 16 (Song et al. 2021). */
  fourierScale?: number;
  /** Key for the initial parameters (and the Fourier frequencies). */
  key: RandomKey;
  /** Parameter dtype; default float32. */
  dtype?: FloatDType;
  /** Device of the parameters ('cpu' or a WebGPU device name from `initWebGPU`); default the default device. */
  device?: string;
}

export interface MlpScoreOptions extends MlpOptions {
  /**
   * 'none' (default): s = net(x, c). 'divideBySigma': s = net(x, σ)/σ (Song & Ermon 2020,
   * "Improved techniques for training score-based generative models": the score's magnitude
   * scales as 1/σ, so the network predicts a unit-scale quantity). 'noisePrediction': the network
   * predicts the noise ε̂ and s = −ε̂/σ (Ho et al. 2020's parametrisation). With 'time'
   * conditioning σ = σ(t) is the `sde`'s kernel standard deviation, so `sde` is required.
   */
  outputScaling?: OutputScaling;
  /**
   * The SDE whose std(t) gives σ for output scaling under 'time' conditioning; refused with any
   * other conditioning or with outputScaling 'none', where nothing reads it.
   */
  sde?: Sde;
}

const MLP_OPTIONS = optionNames<MlpOptions>()([
  'inputDim', 'hidden', 'activation', 'conditioning', 'embedding', 'embeddingDim', 'fourierScale', 'key', 'dtype', 'device',
]);
const MLP_SCORE_OPTIONS = optionNames<MlpScoreOptions>()([...MLP_OPTIONS, 'outputScaling', 'sde']);

/** A score model: named parameters and a pure `apply`. */
export interface ScoreModel {
  readonly kind: 'mlpScore' | 'mlpEnergy';
  /** Trainable parameters, by name (`layer0.weight`, `layer0.bias`, …, `out.weight`, `out.bias`). */
  readonly params: Params;
  /** Fixed tensors (the Fourier frequencies); not trained, but saved with the parameters. */
  readonly buffers: Params;
  readonly inputDim: number;
  readonly conditioning: Conditioning;
  /** The score under explicit parameters: s_θ(x, cond), shape [N, d]. */
  apply(params: Params, x: Tensor, cond?: Tensor): Tensor;
  /** The score under `this.params`. */
  readonly score: ScoreFunction;
  /** The score function with `params` bound (e.g. the tracers inside a `grad`). */
  bind(params: Params): ScoreFunction;
  /** Frees the tensors the model made, its parameters and buffers (again: nothing). */
  dispose(): void;
}

/** An energy model: E_θ(x) of shape [N], and the score −∇ₓE_θ. */
export interface EnergyModel extends ScoreModel {
  readonly kind: 'mlpEnergy';
  applyEnergy(params: Params, x: Tensor, cond?: Tensor): Tensor;
  /** E under `this.params`. */
  energy(x: Tensor, cond?: Tensor): Tensor;
}

// ------------------------------------------------------------------------------------------------
// Noise-level embeddings

/**
 * Sinusoidal embedding (Vaswani et al. 2017, as used for diffusion time by Ho et al. 2020):
 * [sin(c·ω_k), cos(c·ω_k)], ω_k = 10000^(−k/(h−1)), k = 0…h−1, h = dim/2. c: [N] (or [N, 1]) → [N, dim].
 */
export function sinusoidalEmbedding(c: Tensor, dim: number): Tensor {
  return composite(() => {
    checkLevels('sinusoidalEmbedding', c);
    checkEmbeddingDim('sinusoidalEmbedding', dim);
    const half = dim / 2;
    const freqs = new Float64Array(half);
    for (let k = 0; k < half; k++) freqs[k] = Math.exp(-Math.log(10000) * (half > 1 ? k / (half - 1) : 0));
    const omega = tensor(freqs, { dtype: c.dtype, device: c.device, shape: [1, half] });
    const angles = matmul(reshape(c, [c.shape[0]!, 1]), omega);
    return concat([sin(angles), cos(angles)], 1);
  });
}

/**
 * Gaussian Fourier features (Tancik et al. 2020; Song et al. 2021's GaussianFourierProjection):
 * [sin(2π c W_k), cos(2π c W_k)] with fixed W ~ N(0, scale²), W of shape [1, dim/2] in c's dtype.
 * c: [N] (or [N, 1]) → [N, dim].
 */
export function fourierEmbedding(c: Tensor, frequencies: Tensor): Tensor {
  return composite(() => {
    checkLevels('fourierEmbedding', c);
    if (!(frequencies instanceof Tensor) || frequencies.rank !== 2 || frequencies.shape[0] !== 1) {
      throw new Error(`fourierEmbedding: frequencies must be a Tensor of shape [1, dim/2], got ${frequencies instanceof Tensor ? fmtShape(frequencies.shape) : describeValue(frequencies)}`);
    }
    if (frequencies.dtype !== c.dtype) throw new TypeError(`fourierEmbedding: frequencies are ${frequencies.dtype} but c is ${c.dtype}; they must match`);
    const angles = matmul(reshape(c, [c.shape[0]!, 1]), frequencies).mul(2 * Math.PI);
    return concat([sin(angles), cos(angles)], 1);
  });
}

/** The noise levels an embedding takes: a float Tensor of shape [N] (or the column [N, 1]), one per row. */
function checkLevels(where: string, c: unknown): asserts c is Tensor {
  if (!(c instanceof Tensor)) throw new TypeError(`${where}: c must be a Tensor of shape [N] (one noise level per row), got ${describeValue(c)}`);
  if (c.rank !== 1 && !(c.rank === 2 && c.shape[1] === 1)) throw new Error(`${where}: c must have shape [N] or [N, 1] (one noise level per row), got ${fmtShape(c.shape)}`);
  if (!isFloatDType(c.dtype)) throw new TypeError(`${where}: c must be float32 or float64, got ${c.dtype}`);
}

/** What a value that should have been a Tensor is, for a message. */
function describeValue(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function checkEmbeddingDim(where: string, dim: number): void {
  if (!Number.isInteger(dim) || dim < 2 || dim % 2 !== 0) throw new RangeError(`${where}: embedding dimension must be an even integer >= 2, got ${dim}`);
}

// ------------------------------------------------------------------------------------------------
// The MLP body shared by score and energy models

interface MlpBody {
  params: Params;
  buffers: Params;
  numLayers: number;
  /** Hidden activations' output features → network output, under explicit params. */
  forward(params: Params, x: Tensor, cond: Tensor | undefined): Tensor;
  conditioning: Conditioning;
  /** Frees the parameters and buffers. */
  dispose(): void;
}

const POSITIVE_INTEGER = { integer: true, min: 1 } as const;

function buildMlp(where: string, opts: MlpOptions, outputDim: number, known: readonly string[]): MlpBody {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object`);
  checkOptions(where, opts, known);
  const { inputDim, hidden, key } = opts;
  checkNumber(where, 'inputDim', inputDim, POSITIVE_INTEGER);
  if (!Array.isArray(hidden)) throw new TypeError(`${where}: hidden must be an array of layer widths, e.g. [64, 64], got ${JSON.stringify(hidden)}`);
  checkNumberList(where, 'hidden', hidden, POSITIVE_INTEGER);
  checkKey(key, `${where}: opts.key`);
  const activation = opts.activation ?? 'silu';
  checkOneOf(where, 'activation', activation, ACTIVATIONS);
  const conditioning = opts.conditioning ?? 'none';
  checkOneOf(where, 'conditioning', conditioning, CONDITIONINGS);
  // Settings the model would not use are refused, as the samplers' and losses' are, so that none
  // is dropped silently: the embedding's for an unconditional model, Fourier's for a sinusoidal one.
  const unused = (['embedding', 'embeddingDim', 'fourierScale'] as const).filter((k) => opts[k] !== undefined);
  if (conditioning === 'none' && unused.length > 0) {
    throw new Error(`${where}: ${unused.join(', ')} ${unused.length === 1 ? 'sets' : 'set'} the noise-level embedding, which an unconditional model (conditioning 'none') does not have; set conditioning to 'sigma' or 'time', or leave ${unused.length === 1 ? 'it' : 'them'} out`);
  }
  const embedding = opts.embedding ?? (conditioning === 'time' ? 'sinusoidal' : 'fourier');
  checkOneOf(where, 'embedding', embedding, EMBEDDINGS);
  const embeddingDim = opts.embeddingDim ?? 32;
  if (conditioning !== 'none') checkEmbeddingDim(where, embeddingDim);
  if (embedding === 'sinusoidal' && opts.fourierScale !== undefined) {
    throw new Error(`${where}: fourierScale sets the Fourier features' frequencies; the sinusoidal embedding has fixed ones (set embedding to 'fourier', or leave fourierScale out)`);
  }
  const fourierScale = opts.fourierScale ?? 16;
  checkNumber(where, 'fourierScale', fourierScale, { min: 0, exclusiveMin: true });
  const dtype = opts.dtype ?? 'float32';
  checkOneOf(where, 'dtype', dtype, ['float32', 'float64'] as const);
  const device = opts.device;
  // Named here, as the model's option, rather than by the first randn of the initialisation.
  if (device !== undefined) getBackend(device, where);

  const widths = [inputDim + (conditioning === 'none' ? 0 : embeddingDim), ...hidden, outputDim];
  const numLayers = widths.length - 1;
  const keys = splitKey(key, numLayers + 1);
  // LeCun normal (Var = 1/fan_in) keeps unit-variance activations through tanh/SiLU/softplus/
  // ELU layers; He normal (Var = 2/fan_in) compensates for ReLU zeroing half of its inputs. The
  // output layer applies no activation, so it is LeCun normal whatever the hidden layers use.
  const gain = activation === 'relu' ? 2 : 1;
  const params: Params = {};
  for (let l = 0; l < numLayers; l++) {
    const name = l === numLayers - 1 ? 'out' : `layer${l}`;
    const fanIn = widths[l]!;
    // In tidy: the unscaled draw and the scale's constant are freed, only the weight stays.
    params[`${name}.weight`] = tidy(() => randn([fanIn, widths[l + 1]!], { key: keys[l]!, dtype, device }).mul(Math.sqrt((l === numLayers - 1 ? 1 : gain) / fanIn)));
    params[`${name}.bias`] = tensor(new Float64Array(widths[l + 1]!), { dtype, device, shape: [widths[l + 1]!] });
  }
  const buffers: Params = {};
  if (conditioning !== 'none' && embedding === 'fourier') {
    buffers['embedding.frequencies'] = tidy(() => randn([1, embeddingDim / 2], { key: keys[numLayers]!, dtype, device }).mul(fourierScale));
  }
  const act = activationFns[activation];

  const embed = (cond: Tensor): Tensor => {
    const c = conditioning === 'sigma' ? log(cond) : embedding === 'sinusoidal' ? mul(cond, 999) : cond;
    return embedding === 'sinusoidal' ? sinusoidalEmbedding(c, embeddingDim) : fourierEmbedding(c, buffers['embedding.frequencies']!);
  };

  const forward = (p: Params, x: Tensor, cond: Tensor | undefined): Tensor => {
    checkParamsRecord(where, p);
    // Said here, naming the model, rather than by matmul ("dtype mismatch (float32 vs float64)").
    const first = p[numLayers === 1 ? 'out.weight' : 'layer0.weight'];
    if (first && first.dtype !== x.dtype) {
      throw new TypeError(`${where}: x is ${x.dtype} but the model's parameters are ${first.dtype}; pass x as ${first.dtype} (x.cast('${first.dtype}')) or build the model with dtype '${x.dtype}'`);
    }
    for (const [name, t] of Object.entries(buffers)) {
      if (t.isDisposed) throw new Error(`${where}: buffer '${name}' was disposed (by model.dispose(), dispose() or tidy()) and cannot be used`);
    }
    let h = conditioning === 'none' ? x : concat([x, embed(cond!)], 1);
    for (let l = 0; l < numLayers; l++) {
      const name = l === numLayers - 1 ? 'out' : `layer${l}`;
      const w = p[`${name}.weight`];
      const b = p[`${name}.bias`];
      if (!w || !b) throw new Error(`${where}: parameter '${name}.weight' or '${name}.bias' is missing from the params record`);
      // Named by the model and the parameter, not by matmul's "second operand ... was disposed".
      for (const [suffix, t] of [['weight', w], ['bias', b]] as const) {
        if (t.isDisposed) throw new Error(`${where}: parameter '${name}.${suffix}' was disposed (by model.dispose(), dispose() or tidy()) and cannot be used`);
      }
      h = matmul(h, w).add(b);
      if (l < numLayers - 1) h = act(h);
    }
    return h;
  };
  const dispose = () => {
    for (const t of [...Object.values(params), ...Object.values(buffers)]) t.dispose();
  };
  return { params, buffers, numLayers, forward, conditioning, dispose };
}

/** Validates x (rank 2, d columns, float) and cond (present iff conditional, shape [N]). */
function checkInputs(where: string, inputDim: number, conditioning: Conditioning, x: unknown, cond: unknown): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`${where}: x must be a Tensor of shape [N, ${inputDim}]`);
  if (x.rank !== 2 || x.shape[1] !== inputDim) throw new Error(`${where}: x must have shape [N, ${inputDim}], got ${fmtShape(x.shape)}`);
  // Before the parameters' dtype is compared: that message would advise building the model in int32.
  if (!isFloatDType(x.dtype)) throw new TypeError(`${where}: x must be float32 or float64, got ${x.dtype}`);
  if (conditioning === 'none') {
    if (cond !== undefined) throw new Error(`${where}: this model is unconditional (conditioning 'none') but a cond tensor was passed`);
    return;
  }
  if (!(cond instanceof Tensor)) {
    throw new Error(`${where}: this model is conditioned on ${conditioning === 'sigma' ? 'σ' : 't'}; pass cond of shape [${x.shape[0]}]`);
  }
  if (cond.rank !== 1 || cond.shape[0] !== x.shape[0]) throw new Error(`${where}: cond must have shape [${x.shape[0]}] (one ${conditioning === 'sigma' ? 'σ' : 't'} per row of x), got ${fmtShape(cond.shape)}`);
  if (cond.dtype !== x.dtype) throw new TypeError(`${where}: cond is ${cond.dtype} but x is ${x.dtype}; they must match`);
}

/** An MLP score network s_θ(x[, σ or t]) ↦ [N, d]. See `MlpScoreOptions`. */
export function mlpScore(opts: MlpScoreOptions): ScoreModel {
  const where = 'mlpScore';
  const body = buildMlp(where, opts, opts?.inputDim, MLP_SCORE_OPTIONS);
  const outputScaling = opts.outputScaling ?? 'none';
  checkOneOf(where, 'outputScaling', outputScaling, OUTPUT_SCALINGS);
  const { conditioning } = body;
  // Checked when given, used or not: a wrong value would otherwise fail at the first score as
  // "opts.sde.std is not a function".
  if (opts.sde !== undefined && (opts.sde === null || typeof opts.sde !== 'object' || typeof opts.sde.std !== 'function')) {
    throw new TypeError(`${where}: sde must be an Sde (from veSde(), vpSde() or subVpSde()), got ${opts.sde === null ? 'null' : typeof opts.sde === 'object' ? 'an object without std(t)' : typeof opts.sde}`);
  }
  if (outputScaling !== 'none') {
    if (conditioning === 'none') throw new Error(`${where}: outputScaling '${outputScaling}' needs a noise level; set conditioning to 'sigma' or 'time'`);
    if (conditioning === 'time' && !opts.sde) throw new Error(`${where}: outputScaling '${outputScaling}' with 'time' conditioning needs the sde (σ(t) = sde.std(t))`);
  }
  // The sde is read only to scale a time-conditioned output by σ(t); refused where nothing reads
  // it, as the embedding's settings are, so that a model the user thinks follows it does not.
  if (opts.sde !== undefined && (conditioning !== 'time' || outputScaling === 'none')) {
    throw new Error(`${where}: sde sets σ(t) for the output scaling of a time-conditioned model; this one has conditioning '${conditioning}' and outputScaling '${outputScaling}', which do not read it (set conditioning 'time' with outputScaling 'divideBySigma' or 'noisePrediction', or leave sde out)`);
  }
  const sigmaOf = (cond: Tensor): Tensor => (conditioning === 'sigma' ? cond : opts.sde!.std(cond));
  const inputDim = opts.inputDim;

  const apply = (params: Params, x: Tensor, cond?: Tensor): Tensor =>
    composite(() => {
      checkInputs(where, inputDim, conditioning, x, cond);
      const out = body.forward(params, x, cond);
      if (outputScaling === 'none') return out;
      const sigma = perRow(sigmaOf(cond!));
      return outputScaling === 'divideBySigma' ? out.div(sigma) : out.neg().div(sigma);
    });
  const model: ScoreModel = {
    kind: 'mlpScore',
    params: body.params,
    buffers: body.buffers,
    inputDim,
    conditioning,
    apply,
    score: (x, cond) => apply(body.params, x, cond),
    bind: (params) => (x, cond) => apply(params, x, cond),
    dispose: body.dispose,
  };
  return model;
}

/** The score of an energy: s(x) = −∇ₓ Σᵢ E(xᵢ) (rows are independent, so row i is −∇E(xᵢ)). */
export function energyScore(energy: EnergyFunction): ScoreFunction {
  // Checked here: accepted, it failed at the first score as "energy is not a function".
  if (typeof energy !== 'function') throw new TypeError(`energyScore: energy must be a function (x [N, d], cond?) => [N], got ${describeValue(energy)}`);
  return (x, cond) =>
    composite(() => {
      // `grad` nests inside any enclosing jvp/grad (over x or θ), so ∂s/∂x is the Hessian of E and
      // ∇_θ of a loss on s differentiates through this gradient.
      const g = grad((xx: Tensor) => sum(energy(xx, cond)))(x) as Tensor;
      return g.neg();
    });
}

/**
 * An MLP energy E_θ(x[, σ or t]) ↦ [N] whose score is −∇ₓE_θ. Smooth activations only make
 * sense for losses that use ∂s/∂x = −∇²E (see the ReLU note at the top of this module).
 */
export function mlpEnergy(opts: MlpOptions): EnergyModel {
  const where = 'mlpEnergy';
  const body = buildMlp(where, opts, 1, MLP_OPTIONS);
  const { conditioning } = body;
  const inputDim = opts.inputDim;
  const applyEnergy = (params: Params, x: Tensor, cond?: Tensor): Tensor =>
    composite(() => {
      checkInputs(where, inputDim, conditioning, x, cond);
      const out = body.forward(params, x, cond);
      return reshape(out, [x.shape[0]!]);
    });
  const apply = (params: Params, x: Tensor, cond?: Tensor): Tensor => {
    checkInputs(where, inputDim, conditioning, x, cond);
    return energyScore((xx, c) => applyEnergy(params, xx, c))(x, cond);
  };
  return {
    kind: 'mlpEnergy',
    params: body.params,
    buffers: body.buffers,
    inputDim,
    conditioning,
    apply,
    applyEnergy,
    energy: (x, cond) => applyEnergy(body.params, x, cond),
    score: (x, cond) => apply(body.params, x, cond),
    bind: (params) => (x, cond) => apply(params, x, cond),
    dispose: body.dispose,
  };
}

// ------------------------------------------------------------------------------------------------
// Saving and loading

/** The JSON layout of saved parameters. */
export interface SavedParams {
  /** The layout's name and version; loading refuses any other. */
  format: 'scorch-params/v1';
  /**
   * Each parameter by name: its dtype, shape and values in row-major order, as JSON numbers
   * except NaN, ±Infinity and −0, written as the strings 'NaN', 'Infinity', '-Infinity', '-0'.
   */
  tensors: Record<string, { dtype: FloatDType; shape: number[]; data: (number | string)[] }>;
}

// JSON has no NaN, ±Infinity or −0; they are written as strings so a round trip is exact (a
// NaN's sign and payload aside: every NaN is written 'NaN').
function encodeNumber(v: number): number | string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v === 0 && 1 / v < 0) return '-0';
  return v;
}

function decodeNumber(where: string, v: unknown, index: number): number {
  if (typeof v === 'number') {
    // JSON.parse reads a literal beyond the double range (1e400) as ±Infinity; saveParams writes
    // infinities as strings, so such a number is a damaged or hand-written file, not a value.
    if (!Number.isFinite(v)) throw new Error(`${where}: the number at index ${index} is beyond the float64 range (read as ${v}); an infinity is saved as the string '${v}'`);
    return v;
  }
  switch (v) {
    case 'NaN':
      return NaN;
    case 'Infinity':
      return Infinity;
    case '-Infinity':
      return -Infinity;
    case '-0':
      return -0;
  }
  throw new Error(`${where}: expected a number (or 'NaN', 'Infinity', '-Infinity', '-0'), got ${JSON.stringify(v)}`);
}

/**
 * Serialises named tensors to JSON: dtype, shape and values. Doubles print as the shortest
 * decimal that parses back to the same double, and every float32 is a double, so the round trip
 * is exact for both float dtypes: every value's bits come back, −0 and ±Infinity included (as
 * strings), except a NaN's, which is saved as 'NaN' and loads as the quiet NaN 0x7fc00000
 * (float32) or 0x7ff8000000000000 (float64): its sign and payload are not kept, as no
 * operation specifies them (docs/conventions.md, "Which NaN"). Reads the tensors from the device (hence async), all at the
 * call: the values saved are those of that moment, even while a training loop runs on.
 */
export async function saveParams(params: Params): Promise<string> {
  checkParamsRecord('saveParams', params);
  const entries = Object.entries(params);
  for (const [name, t] of entries) {
    if (!(t instanceof Tensor)) throw new TypeError(`saveParams: '${name}' is not a Tensor`);
    if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new TypeError(`saveParams: '${name}' has dtype ${t.dtype}; only float32/float64 parameters are saved`);
    if (t.isDisposed) throw new Error(`saveParams: '${name}' was disposed`);
  }
  // Every read is issued before the first await (each backend takes its copy when asked): read
  // one by one, a loop interleaved at an await (train beside this) would update the later
  // tensors first, and the file would mix steps.
  const reads = entries.map(([, t]) => t.data());
  const values = await Promise.all(reads);
  // Without a prototype, a parameter named '__proto__' is a property like any other (the loader
  // reads names literally; on a plain {} the assignment set the prototype and the tensor was lost).
  const saved: SavedParams = { format: 'scorch-params/v1', tensors: Object.create(null) as SavedParams['tensors'] };
  entries.forEach(([name, t], i) => {
    saved.tensors[name] = { dtype: t.dtype as FloatDType, shape: [...t.shape], data: Array.from(values[i]!, encodeNumber) };
  });
  return JSON.stringify(saved);
}

/** A record of tensors by name: an object, not null and not an array (whose names would be 0, 1, …). */
function checkParamsRecord(where: string, params: unknown, what = 'params'): void {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new TypeError(`${where}: ${what} must be a record of tensors by name (e.g. model.params), got ${params === null ? 'null' : Array.isArray(params) ? 'an array' : typeof params}`);
  }
  // A Map's entries are not its own properties: saved as {} and loaded as nothing, without a word.
  if (params instanceof Map) throw new TypeError(`${where}: ${what} must be a record of tensors by name (e.g. model.params), got a Map; convert it with Object.fromEntries(map)`);
  if (params instanceof Tensor) throw new TypeError(`${where}: ${what} must be a record of tensors by name (e.g. model.params), got a Tensor; name it: { weight: t }`);
}

/** One saved tensor, decoded on the host: values in its dtype's typed array, not yet on a device. */
interface DecodedTensor {
  dtype: FloatDType;
  shape: number[];
  values: Float32Array | Float64Array;
}

/** Parses and validates `saveParams` output into host arrays, by name. */
function decodeSavedParams(json: string): Record<string, DecodedTensor> {
  if (typeof json !== 'string') throw new TypeError(`loadParamsInto: expected the JSON text saveParams returned, got ${json === null ? 'null' : typeof json}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new Error(`loadParamsInto: not valid JSON (${(e as Error).message})`);
  }
  const saved = parsed as Partial<SavedParams>;
  if (saved === null || typeof saved !== 'object' || saved.format !== 'scorch-params/v1' || typeof saved.tensors !== 'object' || saved.tensors === null) {
    throw new Error(`loadParamsInto: expected an object with format 'scorch-params/v1' and a tensors record (from saveParams)`);
  }
  if (Array.isArray(saved.tensors)) throw new Error(`loadParamsInto: the tensors record is an array; expected tensors by name (from saveParams)`);
  // No prototype: a saved name such as 'toString' or '__proto__' is an entry like any other.
  const out: Record<string, DecodedTensor> = Object.create(null);
  for (const [name, entry] of Object.entries(saved.tensors)) {
    const where = `loadParamsInto: '${name}'`;
    if (entry === null || typeof entry !== 'object') throw new Error(`${where}: expected { dtype, shape, data }, got ${JSON.stringify(entry)}`);
    if (entry.dtype !== 'float32' && entry.dtype !== 'float64') throw new Error(`${where}: dtype must be float32 or float64, got ${JSON.stringify(entry.dtype)}`);
    if (!Array.isArray(entry.shape) || !everyEntry(entry.shape, (d) => Number.isInteger(d) && (d as number) >= 0)) throw new Error(`${where}: bad shape ${JSON.stringify(entry.shape)}`);
    const size = sizeOf(entry.shape);
    if (!Array.isArray(entry.data)) throw new Error(`${where}: data must be an array of ${size} values`);
    if (entry.data.length !== size) throw new Error(`${where}: ${entry.data.length} values do not fill shape ${fmtShape(entry.shape)} (${size})`);
    const values = entry.dtype === 'float64' ? new Float64Array(size) : new Float32Array(size);
    entry.data.forEach((v, i) => {
      const x = decodeNumber(where, v, i);
      values[i] = x;
      // saveParams writes float32 values exactly; one that float32 cannot hold (0.1, 1e39) would
      // be rounded or overflow to ±Infinity without a word.
      if (!Object.is(values[i], x) && !Number.isNaN(x)) throw new Error(`${where}: value ${x} at index ${i} is not a float32 value (saved as float32)`);
    });
    out[name] = { dtype: entry.dtype, shape: entry.shape, values };
  }
  return out;
}

/**
 * Loads saved values into existing tensors by name (e.g. a model's params and buffers), with
 * `assign`, so references to them (optimizer state, closures) stay valid. The file and the target
 * hold the same names (a name in only one of them is an error: a model with another layout), each
 * with the same shape and dtype. Each value is uploaded to its target's own device (a model
 * trained on WebGPU loads onto WebGPU).
 */
export function loadParamsInto(target: Params, json: string): void {
  checkParamsRecord('loadParamsInto', target, 'the target');
  const loaded = decodeSavedParams(json);
  // Everything is checked before anything is assigned, so a mismatch leaves the target unchanged.
  for (const [name, t] of Object.entries(target)) {
    if (!(t instanceof Tensor)) throw new TypeError(`loadParamsInto: target '${name}' is not a Tensor`);
    if (t.isDisposed) throw new Error(`loadParamsInto: target '${name}' was disposed`);
    const v = loaded[name];
    if (!v) throw new Error(`loadParamsInto: '${name}' is not in the saved parameters (saved: ${Object.keys(loaded).join(', ') || 'none'})`);
    if (v.dtype !== t.dtype || v.shape.length !== t.shape.length || v.shape.some((d, i) => d !== t.shape[i])) {
      throw new Error(`loadParamsInto: '${name}' is saved as ${v.dtype} ${fmtShape(v.shape)} but the target is ${t.dtype} ${fmtShape(t.shape)}`);
    }
  }
  const extra = Object.keys(loaded).filter((name) => !Object.hasOwn(target, name));
  if (extra.length > 0) {
    throw new Error(`loadParamsInto: the saved parameters hold ${extra.map((n) => `'${n}'`).join(', ')}, not in the target (target: ${Object.keys(target).join(', ') || 'none'})`);
  }
  for (const [name, t] of Object.entries(target)) {
    const { dtype, shape, values } = loaded[name]!;
    const value = tensor(values, { dtype, shape, device: t.device });
    t.assign(value);
    value.dispose();
  }
}
