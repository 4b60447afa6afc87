// The inputs of each benchmark case, made once with scorch's Philox generator on the CPU and
// handed to every engine as the same float32 numbers: initial weights (scorch's `mlpScore`
// initialisation), data batches, projections, noise, tangents. Engines never draw their own for
// the value check, so their values can be compared with a float32 tolerance.
//
// On disk a bundle is one file: a little-endian uint32 header length, a JSON header listing each
// array's name, shape and byte offset, then the float32 data (8-byte aligned). The suite writes it
// (encodeInputs), the Node workers and a browser page decode it, the Python worker reads it without
// copying. No Node module here: a browser page bundles this file.

import { foldIn, randn, randomKey, type Tensor } from '@scorch/tensor';
import { mlpScore } from '@scorch/score';
import { type CaseSpec, MLP_PARAM_NAMES, type MlpShape } from './workloads.js';

export interface HostArray {
  shape: number[];
  data: Float32Array;
}

/** Named float32 arrays. */
export type Inputs = Map<string, HostArray>;

/** The array `name`, or an error naming what the bundle holds. */
export function input(inputs: Inputs, name: string): HostArray {
  const found = inputs.get(name);
  if (!found) throw new Error(`inputs: no array '${name}' (the bundle holds ${[...inputs.keys()].join(', ')})`);
  return found;
}

function host(t: Tensor): HostArray {
  const data = t.dataSync();
  if (!(data instanceof Float32Array)) throw new Error(`inputs: expected float32 data, got ${data.constructor.name}`);
  const out = { shape: [...t.shape], data: Float32Array.from(data) };
  t.dispose();
  return out;
}

const normal = (shape: number[], seed: number): HostArray => host(randn(shape, { key: randomKey(seed) }));

/** scorch's initial weights for the MLP (LeCun normal, zero biases), by parameter name. */
function mlpWeights(net: MlpShape, inputs: Inputs): void {
  const model = mlpScore({ inputDim: net.dim, hidden: [net.hidden, net.hidden], activation: 'softplus', key: randomKey(1) });
  for (const name of MLP_PARAM_NAMES) inputs.set(name, host(model.params[name]!));
}

/** Every array the case's engines need. Deterministic: the same case gives the same numbers. */
export function makeInputs(spec: CaseSpec): Inputs {
  const inputs: Inputs = new Map();
  switch (spec.workload) {
    case 'matmul':
      inputs.set('a', normal([spec.n, spec.n], 101));
      inputs.set('b', normal([spec.n, spec.n], 102));
      inputs.set('u', normal([spec.n], 103));
      inputs.set('w', normal([spec.n], 104));
      break;
    case 'ssmvr':
    case 'dsm':
    case 'ism': {
      mlpWeights(spec.net, inputs);
      inputs.set('x', normal([spec.batch, spec.net.dim], 2));
      // scorch's losses draw v (SSM-VR) or z (DSM) as randn(x.shape, key) with the key `train`
      // hands its first step: foldIn(randomKey(seed), 0).
      if (spec.workload !== 'ism') {
        const key = foldIn(randomKey(spec.seed ?? 0), 0);
        inputs.set(spec.workload === 'ssmvr' ? 'projection' : 'noise', host(randn([spec.batch, spec.net.dim], { key })));
      }
      break;
    }
    case 'langevin': {
      mlpWeights(spec.net, inputs);
      const shape = [spec.particles, spec.net.dim];
      inputs.set('init', normal(shape, 3));
      const checkSteps = spec.checkSigmas.length * spec.checkStepsPerLevel;
      // annealedLangevinDynamics draws step k's noise as randn(x.shape, foldIn(key, k)).
      for (let k = 0; k < checkSteps; k++) inputs.set(`noise${k}`, host(randn(shape, { key: foldIn(randomKey(spec.seed), k) })));
      inputs.set('checkWeights', normal(shape, 4));
      break;
    }
    case 'conv': {
      const { batch, channels, extent, kernel } = spec;
      const image = [batch, channels, extent, extent];
      inputs.set('x', normal(image, 5));
      // Weights with variance 1/fan-in (LeCun normal), so outputs stay O(1).
      const w = randn([channels, channels, kernel, kernel], { key: randomKey(6) });
      inputs.set('w', host(w.mul(1 / Math.sqrt(channels * kernel * kernel))));
      w.dispose();
      inputs.set('r', normal(image, 7));
      if (spec.backward) {
        inputs.set('s', normal(image, 8));
        inputs.set('t', normal([channels, channels, kernel, kernel], 9));
      }
      break;
    }
    case 'hvp': {
      mlpWeights(spec.net, inputs);
      inputs.set('x', normal([spec.batch, spec.net.dim], 2));
      MLP_PARAM_NAMES.forEach((name, i) => inputs.set(`tangent.${name}`, normal(input(inputs, name).shape, 200 + i)));
      break;
    }
  }
  return inputs;
}

interface BundleHeader {
  arrays: { name: string; shape: number[]; offset: number; length: number }[];
}

/** `inputs` as the bytes of one bundle (format above). */
export function encodeInputs(inputs: Inputs): Uint8Array {
  const arrays: BundleHeader['arrays'] = [];
  let offset = 0;
  for (const [name, { shape, data }] of inputs) {
    arrays.push({ name, shape, offset, length: data.length });
    offset += data.byteLength;
  }
  let header = JSON.stringify({ arrays } satisfies BundleHeader);
  const encoder = new TextEncoder();
  // Pad so the data starts 8-byte aligned: typed-array views need their element alignment.
  while ((4 + encoder.encode(header).length) % 8 !== 0) header += ' ';
  const headerBytes = encoder.encode(header);
  const out = new Uint8Array(4 + headerBytes.length + offset);
  new DataView(out.buffer).setUint32(0, headerBytes.length, true);
  out.set(headerBytes, 4);
  const dataStart = 4 + headerBytes.length;
  for (const entry of arrays) {
    const { data } = inputs.get(entry.name)!;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), dataStart + entry.offset);
  }
  return out;
}

/** The arrays of a bundle made by `encodeInputs` (read from its file, or fetched by a page). */
export function decodeInputs(bytes: Uint8Array): Inputs {
  if (bytes.length < 4) throw new Error(`decodeInputs: ${bytes.length} bytes are too few to be an input bundle (at least a 4-byte header length)`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + headerLength > bytes.length) throw new Error(`decodeInputs: the header says ${headerLength} bytes, but the bundle has ${bytes.length - 4} after its length`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as BundleHeader;
  // A fresh, aligned copy of the data section (a file's bytes may start at any offset). Not
  // `bytes.slice`: on a Node Buffer that is a view sharing the buffer, not a copy.
  const data = new Uint8Array(bytes.subarray(4 + headerLength)).buffer;
  const inputs: Inputs = new Map();
  for (const { name, shape, offset, length } of header.arrays) {
    inputs.set(name, { shape, data: new Float32Array(data, offset, length) });
  }
  return inputs;
}
