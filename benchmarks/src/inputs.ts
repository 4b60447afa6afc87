// The inputs of each benchmark case, made once with scorch's Philox generator on the CPU and
// handed to every engine as the same float32 numbers: initial weights (scorch's `mlpScore`
// initialisation), data batches, projections, noise, tangents. Engines never draw their own for
// the value check, so their values can be compared with a float32 tolerance.
//
// On disk a bundle is one file: a little-endian uint32 header length, a JSON header listing each
// array's name, shape and byte offset, then the float32 data (8-byte aligned). Node and the Python
// worker read it without copying.

import { readFileSync, writeFileSync } from 'node:fs';
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

/** Writes `inputs` as one bundle file (format above). */
export function writeInputs(path: string, inputs: Inputs): void {
  const arrays: BundleHeader['arrays'] = [];
  let offset = 0;
  for (const [name, { shape, data }] of inputs) {
    arrays.push({ name, shape, offset, length: data.length });
    offset += data.byteLength;
  }
  let header = JSON.stringify({ arrays } satisfies BundleHeader);
  // Pad so the data starts 8-byte aligned: typed-array views need their element alignment.
  while ((4 + Buffer.byteLength(header)) % 8 !== 0) header += ' ';
  const headerBytes = Buffer.from(header);
  const out = Buffer.alloc(4 + headerBytes.length + offset);
  out.writeUInt32LE(headerBytes.length, 0);
  headerBytes.copy(out, 4);
  const dataStart = 4 + headerBytes.length;
  for (const entry of arrays) {
    const { data } = inputs.get(entry.name)!;
    Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, dataStart + entry.offset);
  }
  writeFileSync(path, out);
}

/** Reads a bundle written by `writeInputs`. */
export function readInputs(path: string): Inputs {
  const file = readFileSync(path);
  if (file.length < 4) throw new Error(`readInputs: ${path} is too short to be an input bundle`);
  const headerLength = file.readUInt32LE(0);
  const header = JSON.parse(file.subarray(4, 4 + headerLength).toString('utf8')) as BundleHeader;
  // A fresh, aligned copy of the data section (Buffer pools may start at any offset).
  const data = new Uint8Array(file.subarray(4 + headerLength)).buffer;
  const inputs: Inputs = new Map();
  for (const { name, shape, offset, length } of header.arrays) {
    inputs.set(name, { shape, data: new Float32Array(data, offset, length) });
  }
  return inputs;
}
