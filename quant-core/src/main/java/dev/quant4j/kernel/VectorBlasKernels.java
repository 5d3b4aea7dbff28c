package dev.quant4j.kernel;

import static dev.quant4j.kernel.VectorShapes.ALL_LANES;
import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.sumLanes;

import jdk.incubator.vector.FloatVector;

/**
 * {@link BlasKernels} on the Vector API. Every kernel is a vector body over {@code F.loopBound(len)} and the scalar
 * reference's loop for the tail. {@code gemmAcc} runs over register tiles ({@link VectorBlasTiles}, generated) and is
 * bit-identical to the reference; dot products keep several accumulators and differ from it by rounding only.
 */
final class VectorBlasKernels implements BlasKernels {

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int len) {
        // four accumulators, as Lucene's PanamaVectorUtilSupport: with two, FMA latency bounds an in-cache dot
        int i = 0;
        int step = F.length();
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        FloatVector acc4 = FloatVector.zero(F);
        int bound4 = len - len % (4 * step);
        for (; i < bound4; i += 4 * step) {
            acc1 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc1);
            acc2 = FloatVector.fromArray(F, a, aOff + i + step).fma(FloatVector.fromArray(F, b, bOff + i + step), acc2);
            acc3 = FloatVector.fromArray(F, a, aOff + i + 2 * step)
                    .fma(FloatVector.fromArray(F, b, bOff + i + 2 * step), acc3);
            acc4 = FloatVector.fromArray(F, a, aOff + i + 3 * step)
                    .fma(FloatVector.fromArray(F, b, bOff + i + 3 * step), acc4);
        }
        int bound = F.loopBound(len);
        for (; i < bound; i += step) {
            acc1 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc1);
        }
        // the loop's variables are arguments only (VectorShapes' class comment)
        FloatVector fresh = FloatVector.zero(F);
        float s = sumLanes(fresh.blend(acc1, ALL_LANES)
                .add(acc2)
                .add(fresh.blend(acc3, ALL_LANES).add(acc4)));
        // scalar tail
        return tailDot(a, aOff, b, bOff, i, len, s);
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
        int bound = F.loopBound(len);
        int i = 0;
        for (; i + 2 <= m; i += 2) {
            int j = 0;
            for (; j + 4 <= n; j += 4) {
                // a 2 x 4 tile: 8 accumulators, 6 loads per 8 FMAs
                int a0 = aOff + i * lda;
                int a1 = a0 + lda;
                int b0 = bOff + j * ldb;
                FloatVector c00 = FloatVector.zero(F);
                FloatVector c01 = FloatVector.zero(F);
                FloatVector c02 = FloatVector.zero(F);
                FloatVector c03 = FloatVector.zero(F);
                FloatVector c10 = FloatVector.zero(F);
                FloatVector c11 = FloatVector.zero(F);
                FloatVector c12 = FloatVector.zero(F);
                FloatVector c13 = FloatVector.zero(F);
                for (int t = 0; t < bound; t += F.length()) {
                    FloatVector x0 = FloatVector.fromArray(F, a, a0 + t);
                    FloatVector x1 = FloatVector.fromArray(F, a, a1 + t);
                    FloatVector y = FloatVector.fromArray(F, b, b0 + t);
                    c00 = x0.fma(y, c00);
                    c10 = x1.fma(y, c10);
                    y = FloatVector.fromArray(F, b, b0 + ldb + t);
                    c01 = x0.fma(y, c01);
                    c11 = x1.fma(y, c11);
                    y = FloatVector.fromArray(F, b, b0 + 2 * ldb + t);
                    c02 = x0.fma(y, c02);
                    c12 = x1.fma(y, c12);
                    y = FloatVector.fromArray(F, b, b0 + 3 * ldb + t);
                    c03 = x0.fma(y, c03);
                    c13 = x1.fma(y, c13);
                }
                int c0 = cOff + i * cRowStride + j * cColStride;
                int c1 = c0 + cRowStride;
                c[c0] = tailDot(a, a0, b, b0, bound, len, sumLanes(c00));
                c[c0 + cColStride] = tailDot(a, a0, b, b0 + ldb, bound, len, sumLanes(c01));
                c[c0 + 2 * cColStride] = tailDot(a, a0, b, b0 + 2 * ldb, bound, len, sumLanes(c02));
                c[c0 + 3 * cColStride] = tailDot(a, a0, b, b0 + 3 * ldb, bound, len, sumLanes(c03));
                c[c1] = tailDot(a, a1, b, b0, bound, len, sumLanes(c10));
                c[c1 + cColStride] = tailDot(a, a1, b, b0 + ldb, bound, len, sumLanes(c11));
                c[c1 + 2 * cColStride] = tailDot(a, a1, b, b0 + 2 * ldb, bound, len, sumLanes(c12));
                c[c1 + 3 * cColStride] = tailDot(a, a1, b, b0 + 3 * ldb, bound, len, sumLanes(c13));
            }
            for (; j < n; j++) {
                for (int r = i; r < i + 2; r++) {
                    c[cOff + r * cRowStride + j * cColStride] = dot(a, aOff + r * lda, b, bOff + j * ldb, len);
                }
            }
        }
        for (; i < m; i++) {
            for (int j = 0; j < n; j++) {
                c[cOff + i * cRowStride + j * cColStride] = dot(a, aOff + i * lda, b, bOff + j * ldb, len);
            }
        }
    }

    /** {@code s} plus the scalar tail {@code [from, len)} of a dot product. */
    private static float tailDot(float[] a, int aOff, float[] b, int bOff, int from, int len, float s) {
        for (int t = from; t < len; t++) {
            s = Math.fma(a[aOff + t], b[bOff + t], s);
        }
        return s;
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int len) {
        FloatVector va = FloatVector.broadcast(F, alpha);
        int i = 0;
        int bound = F.loopBound(len);
        for (; i < bound; i += F.length()) {
            FloatVector.fromArray(F, x, xOff + i)
                    .fma(va, FloatVector.fromArray(F, y, yOff + i))
                    .intoArray(y, yOff + i);
        }
        // scalar tail
        ScalarBlasKernels.axpyLoop(alpha, x, xOff + i, y, yOff + i, len - i);
    }

    /**
     * Columns of {@code B} per panel of {@link #gemmAcc}: six 4x3-vector tiles, so that a {@code k x GEMM_NC} strip of
     * {@code B} (288 KiB at 512 bits and k = 256) stays in L2 while every row strip of {@code A} sweeps it.
     */
    private static final int GEMM_NC = 18 * F.length();

    /**
     * Whether {@link #gemmAcc} uses 8-row tiles: 24 accumulators and 4 more registers need the 32 vector registers of
     * AVX-512; with 16 (AVX2) they would spill, so narrower species keep the 4-row tile (12 + 4 registers).
     */
    private static final boolean TALL_TILES = F.vectorBitSize() >= 512;

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
        int lanes = F.length();
        for (int j0 = 0; j0 < n; j0 += GEMM_NC) {
            int j1 = Math.min(n, j0 + GEMM_NC);
            int i = 0;
            for (; TALL_TILES && i + 8 <= m; i += 8) {
                int a0 = aOff + i * aRowStride;
                int c0 = cOff + i * ldc;
                int j = j0;
                if (aRowStride == 1) {
                    for (; j + 3 * lanes <= j1; j += 3 * lanes) {
                        VectorBlasTiles.tile8x3Unit(k, a, a0, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                    }
                } else {
                    for (; j + 3 * lanes <= j1; j += 3 * lanes) {
                        VectorBlasTiles.tile8x3(k, a, a0, aRowStride, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                    }
                }
                for (; j + lanes <= j1; j += lanes) {
                    VectorBlasTiles.tile4x1(k, a, a0, aRowStride, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                    VectorBlasTiles.tile4x1(
                            k,
                            a,
                            a0 + 4 * aRowStride,
                            aRowStride,
                            aColStride,
                            b,
                            bOff + j,
                            ldb,
                            c,
                            c0 + 4 * ldc + j,
                            ldc);
                }
                // scalar tail: the last columns of the panel, for these eight rows
                for (int r = 0; r < 8; r++) {
                    scalarStrip(k, a, a0 + r * aRowStride, aColStride, b, bOff, ldb, c, c0 + r * ldc, j, j1);
                }
            }
            for (; i + 4 <= m; i += 4) {
                int a0 = aOff + i * aRowStride;
                int c0 = cOff + i * ldc;
                int j = j0;
                for (; j + 3 * lanes <= j1; j += 3 * lanes) {
                    VectorBlasTiles.tile4x3(k, a, a0, aRowStride, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                }
                for (; j + lanes <= j1; j += lanes) {
                    VectorBlasTiles.tile4x1(k, a, a0, aRowStride, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                }
                // scalar tail: the last columns of the panel, for these four rows
                for (int r = 0; r < 4; r++) {
                    scalarStrip(k, a, a0 + r * aRowStride, aColStride, b, bOff, ldb, c, c0 + r * ldc, j, j1);
                }
            }
            for (; i < m; i++) {
                int a0 = aOff + i * aRowStride;
                int c0 = cOff + i * ldc;
                int j = j0;
                for (; j + lanes <= j1; j += lanes) {
                    FloatVector acc = FloatVector.fromArray(F, c, c0 + j);
                    for (int t = 0; t < k; t++) {
                        acc = FloatVector.fromArray(F, b, bOff + t * ldb + j)
                                .fma(FloatVector.broadcast(F, a[a0 + t * aColStride]), acc);
                    }
                    // the accumulators are the loop's variables: stored through a fresh vector (VectorShapes' class
                    // comment)
                    FloatVector fresh = FloatVector.zero(F);
                    fresh.blend(acc, ALL_LANES).intoArray(c, c0 + j);
                }
                scalarStrip(k, a, a0, aColStride, b, bOff, ldb, c, c0, j, j1);
            }
        }
    }

    /** Columns {@code [j, j1)} of one row of {@code C}: the scalar definition. */
    private static void scalarStrip(
            int k, float[] a, int a0, int acs, float[] b, int bOff, int ldb, float[] c, int c0, int j, int j1) {
        for (; j < j1; j++) {
            float acc = c[c0 + j];
            for (int t = 0; t < k; t++) {
                acc = Math.fma(a[a0 + t * acs], b[bOff + t * ldb + j], acc);
            }
            c[c0 + j] = acc;
        }
    }
}
