// Straightforward float64 reference implementations of the NCHW layers (nested loops over flat
// row-major arrays), written from the defining formulas and PyTorch's documented conventions,
// using nothing from the library: the layer tests compare scorch's compositions with these.

export interface Image {
  data: Float64Array;
  shape: [number, number, number, number];
}

const at = (s: readonly number[], n: number, c: number, i: number, j: number): number => ((n * s[1]! + c) * s[2]! + i) * s[3]! + j;

export interface ConvParams {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** y[n,o,i,j] = b[o] + Σ w[o,c,a,b]·x[n, g·Cg + c, i·s − p + a·d, j·s − p + b·d]. */
export function conv2dReference(x: Image, w: Image, bias: Float64Array | null, p: ConvParams): Image {
  const [n, c, h, wd] = x.shape;
  const [o, cg, kh, kw] = w.shape;
  const og = o / p.groups;
  const ho = Math.floor((h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0]) + 1;
  const wo = Math.floor((wd + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1]) + 1;
  const shape: Image['shape'] = [n, o, ho, wo];
  const out = new Float64Array(n * o * ho * wo);
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let i = 0; i < ho; i++)
        for (let j = 0; j < wo; j++) {
          let acc = bias ? bias[oc]! : 0;
          for (let ci = 0; ci < cg; ci++)
            for (let a = 0; a < kh; a++)
              for (let bb = 0; bb < kw; bb++) {
                const r = i * p.stride[0] - p.padding[0] + a * p.dilation[0];
                const q = j * p.stride[1] - p.padding[1] + bb * p.dilation[1];
                if (r < 0 || r >= h || q < 0 || q >= wd) continue;
                acc += w.data[at(w.shape, oc, ci, a, bb)]! * x.data[at(x.shape, b, g * cg + ci, r, q)]!;
              }
          out[at(shape, b, oc, i, j)] = acc;
        }
    }
  return { data: out, shape };
}

/** Scatter form: each y[n,ci,i,j] adds y·w[ci,oc,a,b] at output (i·s − p + a·d, j·s − p + b·d). */
export function convTranspose2dReference(y: Image, w: Image, bias: Float64Array | null, p: ConvParams & { outputPadding: [number, number] }): Image {
  const [n, cin, h, wd] = y.shape;
  const [, cog, kh, kw] = w.shape;
  const cig = cin / p.groups;
  const cout = cog * p.groups;
  const ho = (h - 1) * p.stride[0] - 2 * p.padding[0] + p.dilation[0] * (kh - 1) + p.outputPadding[0] + 1;
  const wo = (wd - 1) * p.stride[1] - 2 * p.padding[1] + p.dilation[1] * (kw - 1) + p.outputPadding[1] + 1;
  const shape: Image['shape'] = [n, cout, ho, wo];
  const out = new Float64Array(n * cout * ho * wo);
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < cout; oc++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) out[at(shape, b, oc, i, j)] = bias ? bias[oc]! : 0;
  for (let b = 0; b < n; b++)
    for (let ci = 0; ci < cin; ci++) {
      const g = Math.floor(ci / cig);
      for (let i = 0; i < h; i++)
        for (let j = 0; j < wd; j++)
          for (let oc = 0; oc < cog; oc++)
            for (let a = 0; a < kh; a++)
              for (let bb = 0; bb < kw; bb++) {
                const r = i * p.stride[0] - p.padding[0] + a * p.dilation[0];
                const q = j * p.stride[1] - p.padding[1] + bb * p.dilation[1];
                if (r < 0 || r >= ho || q < 0 || q >= wo) continue;
                out[at(shape, b, g * cog + oc, r, q)]! += y.data[at(y.shape, b, ci, i, j)]! * w.data[at(w.shape, ci, oc, a, bb)]!;
              }
    }
  return { data: out, shape };
}

export interface PoolParams {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

/**
 * Pooling by loops: the average (padding counted as zeros in the divisor kh·kw) or the maximum
 * (padding ignored); for max also the flat input index of the first maximum of each window
 * (an entry of x even when every entry of the window is −∞).
 */
export function pool2dReference(x: Image, p: PoolParams, kind: 'avg' | 'max'): Image & { argmax: Int32Array } {
  const [n, c, h, wd] = x.shape;
  const ho = Math.floor((h + 2 * p.padding[0] - p.kernel[0]) / p.stride[0]) + 1;
  const wo = Math.floor((wd + 2 * p.padding[1] - p.kernel[1]) / p.stride[1]) + 1;
  const shape: Image['shape'] = [n, c, ho, wo];
  const out = new Float64Array(n * c * ho * wo);
  const argmax = new Int32Array(out.length).fill(-1);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < ho; i++)
        for (let j = 0; j < wo; j++) {
          let acc = kind === 'avg' ? 0 : -Infinity;
          let arg = -1;
          for (let a = 0; a < p.kernel[0]; a++)
            for (let bb = 0; bb < p.kernel[1]; bb++) {
              const r = i * p.stride[0] - p.padding[0] + a;
              const q = j * p.stride[1] - p.padding[1] + bb;
              if (r < 0 || r >= h || q < 0 || q >= wd) continue;
              const v = x.data[at(x.shape, b, ch, r, q)]!;
              if (kind === 'avg') acc += v;
              else if (arg < 0 || v > acc || (Number.isNaN(v) && !Number.isNaN(acc))) {
                acc = v;
                arg = at(x.shape, b, ch, r, q);
              }
            }
          const k = at(shape, b, ch, i, j);
          out[k] = kind === 'avg' ? acc / (p.kernel[0] * p.kernel[1]) : acc;
          argmax[k] = arg;
        }
  return { data: out, shape, argmax };
}

/** PyTorch's interpolate, 2-D formula per output pixel (not split into passes). */
export function upsampleReference(x: Image, out: [number, number], mode: 'nearest' | 'bilinear', alignCorners: boolean, factor?: [number, number]): Image {
  const [n, c, h, wd] = x.shape;
  const [ho, wo] = out;
  const scale = (inS: number, outS: number, f?: number): number =>
    alignCorners ? (outS > 1 ? (inS - 1) / (outS - 1) : 0) : f !== undefined ? 1 / f : inS / outS;
  const sh = scale(h, ho, factor?.[0]);
  const sw = scale(wd, wo, factor?.[1]);
  const shape: Image['shape'] = [n, c, ho, wo];
  const data = new Float64Array(n * c * ho * wo);
  // PyTorch's kernel for a float32 NCHW image: floorf(d · float(scale)), no shortcut at the same or twice the size.
  const nearest = (d: number, s: number, inS: number): number => Math.min(Math.floor(Math.fround(d * Math.fround(s))), inS - 1);
  const source = (d: number, s: number, inS: number): [number, number, number] => {
    const src = alignCorners ? d * s : Math.max(0, (d + 0.5) * s - 0.5);
    const i0 = Math.min(Math.floor(src), inS - 1);
    return [i0, Math.min(i0 + 1, inS - 1), src - i0];
  };
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < ho; i++)
        for (let j = 0; j < wo; j++) {
          let v: number;
          if (mode === 'nearest') {
            v = x.data[at(x.shape, b, ch, nearest(i, sh, h), nearest(j, sw, wd))]!;
          } else {
            // PyTorch leaves an axis of unchanged size as it is, whatever the factor.
            const [r0, r1, lr] = ho === h ? [i, i, 0] : source(i, sh, h);
            const [q0, q1, lq] = wo === wd ? [j, j, 0] : source(j, sw, wd);
            const g = (r: number, q: number): number => x.data[at(x.shape, b, ch, r, q)]!;
            v = (1 - lr) * ((1 - lq) * g(r0, q0) + lq * g(r0, q1)) + lr * ((1 - lq) * g(r1, q0) + lq * g(r1, q1));
          }
          data[at(shape, b, ch, i, j)] = v;
        }
  return { data, shape };
}

/** Standardises consecutive blocks of `block` values (two-pass mean and biased variance). */
export function normaliseBlocks(x: Float64Array, block: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let s = 0; s < x.length; s += block) {
    let m = 0;
    for (let k = 0; k < block; k++) m += x[s + k]!;
    m /= block;
    let v = 0;
    for (let k = 0; k < block; k++) v += (x[s + k]! - m) ** 2;
    v /= block;
    for (let k = 0; k < block; k++) out[s + k] = (x[s + k]! - m) / Math.sqrt(v + eps);
  }
  return out;
}

/** Per row of [rows, classes] logits: logsumexp − z_y, or −Σ p log softmax for probability rows. */
export function crossEntropyReference(z: Float64Array, classes: number, labels: Int32Array | null, probs: Float64Array | null): Float64Array {
  const rows = z.length / classes;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let k = 0; k < classes; k++) m = Math.max(m, z[r * classes + k]!);
    let s = 0;
    for (let k = 0; k < classes; k++) s += Math.exp(z[r * classes + k]! - m);
    const lse = m + Math.log(s);
    if (labels) out[r] = lse - z[r * classes + labels[r]!]!;
    else {
      let acc = 0;
      for (let k = 0; k < classes; k++) acc -= probs![r * classes + k]! * (z[r * classes + k]! - lse);
      out[r] = acc;
    }
  }
  return out;
}

/** A small seeded normal generator (Box–Muller over xorshift32) for float64 test data. */
export function normals(count: number, seed: number): Float64Array {
  let state = seed >>> 0 || 1;
  const uniform = (): number => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state + 0.5) / 4294967296;
  };
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}
