// Pieces every kernel template shares: the WGSL storage type of each dtype, a uniform parameter
// block built alongside the code, binding declarations, strided index decoding and the launch
// grid. Shapes, strides and offsets are passed as uniforms rather than baked into the source, so
// one compiled pipeline serves every shape of the same structure (compiles are slow on llvmpipe).

import type { DType } from '@scorch/tensor';

/** Scalar WGSL type a dtype is stored as: bool is one u32 (0 or 1) per element. */
export type WgslScalar = 'f32' | 'i32' | 'u32';

export function wgslType(dtype: DType): WgslScalar {
  switch (dtype) {
    case 'float32':
      return 'f32';
    case 'int32':
      return 'i32';
    case 'bool':
      return 'u32';
    case 'float64':
      throw new Error('webgpu: float64 is not supported (WGSL has no f64); cast to float32 first');
  }
}

/** What a template returns: the code, its workgroup shape, how many workgroups, and its uniforms. */
export interface KernelSpec {
  /** Names the kernel in errors (pipeline and bind-group labels). */
  label: string;
  code: string;
  workgroupSize: readonly [number, number, number];
  dispatch: readonly [number, number, number];
  /** Uniform words (u32), bound after the storage buffers. */
  uniforms: Uint32Array;
  /** The words of `uniforms` that hold a compiled program input's offset (UniformBlock.inputOffset). */
  inputOffsets?: readonly InputOffsetWord[];
}

/**
 * Where a compiled program's input (its index among the program's inputs) is read: at its offset
 * in its buffer plus `plus` elements (a view of it that starts further in).
 */
export interface InputOffsetSource {
  readonly input: number;
  readonly plus: number;
}

/**
 * A uniform word that holds a compiled program input's offset plus a constant: word `word` is
 * `input`'s offset + `plus`. A compiled program rewrites these words when a call's inputs sit at
 * other offsets (a minibatch slice further into its tensor) instead of lowering the program again.
 */
export interface InputOffsetWord extends InputOffsetSource {
  readonly word: number;
}

/**
 * Uniform words collected while generating code. `u32(value)` records a value and returns the
 * WGSL expression that reads it; since the order of calls depends only on the kernel's
 * structure, the same code is produced for every shape of that structure.
 */
export class UniformBlock {
  private readonly words: number[];

  /**
   * `start`: a block whose words code written before this block's owner already reads (a
   * compiled matmul's epilogue reads its inputs' offsets as words 0…, the template's own follow
   * them); its words and offset records are copied, so the template's kernel records them all.
   */
  constructor(start?: UniformBlock) {
    this.words = start ? [...start.words] : [];
    this.offsetWords = start ? [...start.offsetWords] : [];
  }

  /** The words recorded so far, in order. */
  get recorded(): readonly number[] {
    return this.words;
  }

  private readonly offsetWords: InputOffsetWord[];

  /**
   * `value` as u32, recorded (when `source` is given) as that program input's offset plus
   * `source.plus` (see InputOffsetWord): the code must then depend on the offset only through
   * this word.
   */
  inputOffset(value: number, source?: InputOffsetSource): string {
    if (source) this.offsetWords.push({ word: this.words.length, input: source.input, plus: source.plus });
    return this.u32(value);
  }

  /** The words recorded by inputOffset with a source, in order. */
  get inputOffsets(): readonly InputOffsetWord[] {
    return this.offsetWords;
  }

  u32(value: number): string {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xffffffff)) {
      throw new Error(`webgpu: uniform value ${value} does not fit an unsigned 32-bit word (is a tensor larger than 2^32 elements?)`);
    }
    const i = this.words.length;
    this.words.push(value);
    return `U.w[${i >> 2}].${'xyzw'[i & 3]}`;
  }

  /** A float32 value, passed as its bits. */
  f32(value: number): string {
    const bits = new Uint32Array(new Float32Array([value]).buffer)[0]!;
    return `bitcast<f32>(${this.u32(bits)})`;
  }

  /** The WGSL declaration of the block at `binding`. */
  declare(binding: number): string {
    const vecs = Math.max(1, Math.ceil(this.words.length / 4));
    return `struct Uniforms { w: array<vec4<u32>, ${vecs}> }\n@group(0) @binding(${binding}) var<uniform> U: Uniforms;\n`;
  }

  data(): Uint32Array {
    const out = new Uint32Array(Math.max(4, Math.ceil(this.words.length / 4) * 4));
    out.set(this.words);
    return out;
  }
}

export interface StorageBinding {
  name: string;
  type: WgslScalar;
  access: 'read' | 'read_write';
}

/** Declarations of storage buffers at bindings 0..n-1 (the uniform block follows them). */
export function declareStorage(bindings: readonly StorageBinding[]): string {
  return bindings
    .map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${b.type}>;`)
    .join('\n') + '\n';
}

/** At most this many workgroups along one dispatch dimension (the WebGPU default limit). */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/**
 * A 1-D launch of `groups` workgroups folded into x and y when it exceeds the per-dimension
 * limit. Kernels recover the linear workgroup index with `linearWorkgroup()`.
 */
export function grid1d(groups: number): [number, number, number] {
  if (groups <= MAX_WORKGROUPS_PER_DIM) return [Math.max(groups, 1), 1, 1];
  const y = Math.ceil(groups / MAX_WORKGROUPS_PER_DIM);
  if (y > MAX_WORKGROUPS_PER_DIM) throw new Error(`webgpu: ${groups} workgroups exceed the dispatch limit`);
  return [MAX_WORKGROUPS_PER_DIM, y, 1];
}

/** WGSL expression for the linear workgroup index of a `grid1d` launch (needs `wid` and `nwg` builtins). */
export const linearWorkgroup = 'wid.x + wid.y * nwg.x';

/** Builtins every 1-D kernel's entry point takes. */
export const entryBuiltins =
  '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';

/**
 * Code that decodes a row-major linear index `index` over `shape` into coordinates c0..c{r-1}
 * and forms, for each operand, `offset + Σ c_d·stride_d` into variable `names[k]`. A contiguous
 * operand (stride pattern = row-major of the same shape) just adds the index.
 */
export function stridedOffsets(
  u: UniformBlock,
  index: string,
  shape: readonly number[],
  operands: readonly { name: string; strides: readonly number[]; offset: number; contiguous: boolean; source?: InputOffsetSource }[],
  coordPrefix = 'c',
): string {
  const rank = shape.length;
  const lines: string[] = [];
  const needsCoords = operands.some((o) => !o.contiguous) && rank > 1;
  if (needsCoords) {
    lines.push(`var ${coordPrefix}rem = ${index};`);
    for (let d = rank - 1; d >= 1; d--) {
      const extent = u.u32(shape[d]!);
      lines.push(`let ${coordPrefix}${d} = ${coordPrefix}rem % ${extent}; ${coordPrefix}rem = ${coordPrefix}rem / ${extent};`);
    }
    lines.push(`let ${coordPrefix}0 = ${coordPrefix}rem;`);
  }
  for (const o of operands) {
    const offset = u.inputOffset(o.offset, o.source);
    if (o.contiguous) {
      lines.push(`let ${o.name} = ${offset} + ${index};`);
    } else if (rank === 1) {
      lines.push(`let ${o.name} = ${offset} + ${index} * ${u.u32(o.strides[0]!)};`);
    } else {
      const terms = o.strides.map((s, d) => `${coordPrefix}${d} * ${u.u32(s)}`);
      lines.push(`let ${o.name} = ${offset} + ${terms.join(' + ')};`);
    }
  }
  return lines.join('\n    ');
}

/** Float32 values WGSL cannot write as constants (the math prelude defines these functions). */
export const F32_POS_INF = 'sc_pos_inf()';
export const F32_NEG_INF = 'sc_neg_inf()';
export const F32_NAN = 'sc_nan()';
export const I32_MIN = 'bitcast<i32>(0x80000000u)';
