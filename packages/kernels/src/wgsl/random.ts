// Counter-based random numbers: Philox 4x32-10 in WGSL, the same function as `philox4x32` in
// @scorch/tensor's random.ts, with the same stream layout as its `fillRandom` for float32:
// thread b computes block b (counter [b, 0, 0, 0]) and writes elements 4b..4b+3. Uniforms are
// the top 24 bits of each word times 2^-24 (bit-identical to the CPU). Normals pair words
// (0,1) and (2,3) by Box–Muller, r = sqrt(-2 log(1 - u1)) with log1p(-u1) (accurate for tiny
// u1), and the angle 2π·u2 evaluated as 2π(u2 - 1/2) + π so that it stays in [-π, π), where
// one Cody–Waite reduction (no Payne–Hanek branch) serves both: cos(θ) = -cos(θ - π),
// sin(θ) = -sin(θ - π).

import type { RandomDistribution, RandomKey } from '@scorch/tensor';
import { type KernelSpec, UniformBlock, declareStorage, entryBuiltins, grid1d, linearWorkgroup } from './common.js';
import { mathPrelude } from './mathLibrary.js';

const WORKGROUP = 64;

/** WGSL Philox 4x32-10 (its 32×32→64-bit high products from the math library's sc_mul_hi). */
export const PHILOX_WGSL = `
fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var round = 0u; round < 10u; round = round + 1u) {
    let hi0 = sc_mul_hi(0xd2511f53u, c.x);
    let lo0 = 0xd2511f53u * c.x;
    let hi1 = sc_mul_hi(0xcd9e8d57u, c.z);
    let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}
`;

export interface RandomParams {
  key: RandomKey;
  distribution: RandomDistribution;
  /** Number of float32 values to write. */
  count: number;
}

/**
 * WGSL statements turning a Philox block `w` (vec4<u32>) into `v`, its four float32 values of
 * `distribution`: every random kernel (eager and compiled) uses these, so all draw the same numbers.
 */
export function randomBlockValues(distribution: RandomDistribution): string {
  return distribution === 'uniform'
    ? 'let v = vec4<f32>(w >> vec4<u32>(8u)) * 5.9604644775390625e-8;'
    : `let uu = vec4<f32>(w >> vec4<u32>(8u)) * 5.9604644775390625e-8;
  let r0 = sqrt(-2.0 * sc_log1p(-uu.x));
  let r1 = sqrt(-2.0 * sc_log1p(-uu.z));
  let q0 = sc_rem_pio2_medium(6.28318530717958648 * (uu.y - 0.5));
  let q1 = sc_rem_pio2_medium(6.28318530717958648 * (uu.w - 0.5));
  let v = vec4<f32>(-r0 * sc_cos_of_quadrant(q0), -r0 * sc_sin_of_quadrant(q0), -r1 * sc_cos_of_quadrant(q1), -r1 * sc_sin_of_quadrant(q1));`;
}

/** out[i] for i < count: uniform [0, 1) or standard normal float32 values of `key`'s stream. */
export function randomKernel(p: RandomParams): KernelSpec {
  const u = new UniformBlock();
  const count = u.u32(p.count);
  const key = `vec2<u32>(${u.u32(p.key[0] >>> 0)}, ${u.u32(p.key[1] >>> 0)})`;
  const values = randomBlockValues(p.distribution);
  const body = `
@compute @workgroup_size(${WORKGROUP})
fn main(${entryBuiltins}) {
  let block = (${linearWorkgroup}) * ${WORKGROUP}u + lid;
  let first = block * 4u;
  if (first >= ${count}) { return; }
  let w = philox4x32(vec4<u32>(block, 0u, 0u, 0u), ${key});
  ${values}
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (first + j < ${count}) { out[first + j] = v[j]; }
  }
}`;
  return {
    label: `random_${p.distribution}_float32`,
    code: `${declareStorage([{ name: 'out', type: 'f32', access: 'read_write' }])}${u.declare(1)}${mathPrelude(PHILOX_WGSL + body)}${PHILOX_WGSL}\n${body}`,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch: p.count === 0 ? [0, 0, 0] : grid1d(Math.ceil(Math.ceil(p.count / 4) / WORKGROUP)),
    uniforms: u.data(),
  };
}
