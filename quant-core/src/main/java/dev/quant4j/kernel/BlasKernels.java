package dev.quant4j.kernel;

/**
 * Dense float linear algebra: dot products (one, or register tiles of many), {@code axpy} and the block product
 * {@code gemmAcc} of the Hessian, Cholesky and GPTQ updates. Implemented by {@link ScalarBlasKernels} (the reference)
 * and {@code VectorBlasKernels}; {@code axpy} and {@code gemmAcc} are bit-identical between them, dot products differ
 * by rounding.
 */
public interface BlasKernels {

    /** Sum of {@code a[i] * b[i]}. */
    float dot(float[] a, int aOff, float[] b, int bOff, int len);

    /**
     * Dot products of {@code m} rows of {@code A} with {@code n} rows of {@code B} (both row-major, length {@code len}):
     * {@code c[cOff + i * cRowStride + j * cColStride] = sum_t A(i, t) B(j, t)}, {@code A(i, t) = a[aOff + i * lda +
     * t]}, {@code B(j, t) = b[bOff + j * ldb + t]}. For batches on decoded weight rows: every loaded value meets
     * several others in registers. Float sums: implementations differ by rounding.
     */
    void dotMany(
            int m,
            int n,
            int len,
            float[] a,
            int aOff,
            int lda,
            float[] b,
            int bOff,
            int ldb,
            float[] c,
            int cOff,
            int cRowStride,
            int cColStride);

    /** {@code y[yOff + i] += alpha * x[xOff + i]} for {@code i < len}, one fused multiply-add per element. */
    void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int len);

    /**
     * Dense block product {@code C += A B}, the building block of the Hessian, Cholesky and GPTQ updates:
     *
     * <pre>
     * for i &lt; m, j &lt; n:   C(i, j) = fma(A(i, k-1), B(k-1, j), ... fma(A(i, 0), B(0, j), C(i, j)))
     * A(i, t) = a[aOff + i * aRowStride + t * aColStride]    row-major A: (lda, 1); A as its transpose: (1, lda)
     * B(t, j) = b[bOff + t * ldb + j]                         row-major
     * C(i, j) = c[cOff + i * ldc + j]                         row-major
     * </pre>
     *
     * Every element is one chain of fused multiply-adds over {@code t} in increasing order, starting from its value in
     * {@code C}, so all implementations give bit-identical results. Callers block {@code k} to a few hundred so that a
     * strip of {@code B} stays in cache.
     */
    void gemmAcc(
            int m,
            int n,
            int k,
            float[] a,
            int aOff,
            int aRowStride,
            int aColStride,
            float[] b,
            int bOff,
            int ldb,
            float[] c,
            int cOff,
            int ldc);
}
