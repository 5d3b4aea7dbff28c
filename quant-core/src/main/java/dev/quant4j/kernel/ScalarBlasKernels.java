package dev.quant4j.kernel;

/** The plain loops of {@link BlasKernels}: the reference the vector kernels are tested against, and the fallback. */
final class ScalarBlasKernels implements BlasKernels {

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int len) {
        return dotLoop(a, aOff, b, bOff, len);
    }

    /** {@link #dot}'s loop: one chain of fused multiply-adds. */
    static float dotLoop(float[] a, int aOff, float[] b, int bOff, int len) {
        float s = 0f;
        for (int i = 0; i < len; i++) {
            s = Math.fma(a[aOff + i], b[bOff + i], s);
        }
        return s;
    }

    @Override
    public void dotMany(
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
            int cColStride) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                c[cOff + i * cRowStride + j * cColStride] = dotLoop(a, aOff + i * lda, b, bOff + j * ldb, len);
            }
        }
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int len) {
        axpyLoop(alpha, x, xOff, y, yOff, len);
    }

    /** {@link #axpy}'s loop; the vector kernel's scalar tail. */
    static void axpyLoop(float alpha, float[] x, int xOff, float[] y, int yOff, int len) {
        for (int i = 0; i < len; i++) {
            y[yOff + i] = Math.fma(alpha, x[xOff + i], y[yOff + i]);
        }
    }

    @Override
    public void gemmAcc(
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
            int ldc) {
        for (int i = 0; i < m; i++) {
            int ci = cOff + i * ldc;
            for (int t = 0; t < k; t++) {
                float ait = a[aOff + i * aRowStride + t * aColStride];
                int bt = bOff + t * ldb;
                for (int j = 0; j < n; j++) {
                    c[ci + j] = Math.fma(ait, b[bt + j], c[ci + j]);
                }
            }
        }
    }
}
