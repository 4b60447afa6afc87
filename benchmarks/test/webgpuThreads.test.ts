// What the engines table says a WebGPU engine computes with (src/dawn.ts, webgpuThreads): a
// software adapter's workgroups run on the CPU's cores, a hardware adapter's on the GPU, whichever
// native API Dawn drives. TF.js webgpu and jax-js webgpu said "llvmpipe threads (all cores)"
// whatever the adapter (a real GPU too), and scorch WebGPU said "GPU" for any adapter outside
// Dawn's OpenGL backend (Mesa's lavapipe through Vulkan too).

import { describe, expect, it } from 'vitest';
import { webgpuThreads } from '../src/dawn.js';

describe("a WebGPU engine's threads", () => {
  it("are the CPU's cores on a software adapter, through OpenGL or Vulkan", () => {
    // As Dawn describes Mesa's llvmpipe through OpenGL here (the committed results' adapter).
    expect(webgpuThreads({ vendor: 'mesa', architecture: '', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'OpenGL version 4.5 (Core Profile) Mesa 22.3.6' })).toBe('llvmpipe threads (all cores)');
    // Mesa's lavapipe through Vulkan: the same rasteriser, on the same cores.
    expect(webgpuThreads({ vendor: 'mesa', architecture: '', device: 'llvmpipe (LLVM 15.0.6, 256 bits)', description: 'Mesa 22.3.6 (LLVM 15.0.6)' })).toBe('llvmpipe threads (all cores)');
    expect(webgpuThreads({ vendor: 'google', architecture: '', device: 'SwiftShader Device (Subzero)', description: 'SwiftShader driver' })).toBe('SwiftShader threads (all cores)');
  });

  it('are the GPU on a hardware adapter', () => {
    expect(webgpuThreads({ vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H200', description: 'NVIDIA: 550.54.15' })).toBe('GPU');
  });
});
