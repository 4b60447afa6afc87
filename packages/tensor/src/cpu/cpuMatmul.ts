// Matrix product kernel of the CPU backend: C[m×n] = A[m×k]·B[k×n], row-major, at offsets.

/** Writes A·B into `c` (overwriting). Loop order i-k-j keeps B and C rows streaming. */
export function matmulInto<T extends Float32Array | Float64Array>(
  a: T, aOff: number, b: T, bOff: number, c: T, cOff: number, m: number, n: number, k: number,
): void {
  for (let i = 0; i < m; i++) {
    const ci = cOff + i * n;
    for (let j = 0; j < n; j++) c[ci + j] = 0;
    for (let p = 0; p < k; p++) {
      const av = a[aOff + i * k + p]!;
      const bp = bOff + p * n;
      for (let j = 0; j < n; j++) c[ci + j] = c[ci + j]! + av * b[bp + j]!;
    }
  }
}
