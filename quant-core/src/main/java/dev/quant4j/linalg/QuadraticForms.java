package dev.quant4j.linalg;

import dev.quant4j.kernel.QuantKernels;
import java.util.concurrent.ForkJoinPool;

/** Sums of quadratic forms {@code sum_r d_r^T M d_r}, e.g. a layer's output error from its Hessian. */
public final class QuadraticForms {

    private static final int ROW_CHUNK = 32;
    private static final int K_CHUNK = 256;

    private QuadraticForms() {}

    /**
     * {@code sum_r d_r^T M d_r} over the rows {@code d_r} of {@code d [rows, n]}, with {@code M [n, n]} symmetric and
     * given by its lower triangle (the upper one is not read). As block products ({@code D M}, chunk by chunk of rows,
     * in parallel) accumulated in float, then per row in double: about {@code rows * n^2} multiply-adds.
     */
    public static double sumOfRowForms(float[] d, int rows, int n, float[] lowerM, QuantKernels k, ForkJoinPool pool) {
        float[] m = symmetricCopy(lowerM, n);
        int chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
        double[] partial = new double[chunks];
        Parallel.forEach(pool, chunks, ch -> {
            int r0 = ch * ROW_CHUNK;
            int cr = Math.min(ROW_CHUNK, rows - r0);
            float[] dm = new float[cr * n];
            for (int k0 = 0; k0 < n; k0 += K_CHUNK) {
                int kc = Math.min(K_CHUNK, n - k0);
                k.gemmAcc(cr, n, kc, d, r0 * n + k0, n, 1, m, k0 * n, n, dm, 0, n);
            }
            double s = 0;
            for (int r = 0; r < cr; r++) {
                s += k.dot(dm, r * n, d, (r0 + r) * n, n);
            }
            partial[ch] = s;
        });
        double total = 0;
        for (double v : partial) {
            total += v;
        }
        return total;
    }

    /** A full symmetric copy of the matrix whose lower triangle is {@code lower}, mirrored in cache-sized tiles. */
    public static float[] symmetricCopy(float[] lower, int n) {
        float[] full = new float[n * n];
        int tile = 64;
        for (int i0 = 0; i0 < n; i0 += tile) {
            int i1 = Math.min(n, i0 + tile);
            for (int j0 = 0; j0 <= i0; j0 += tile) {
                int j1 = Math.min(n, j0 + tile);
                for (int i = i0; i < i1; i++) {
                    for (int j = j0; j < Math.min(j1, i + 1); j++) {
                        float v = lower[i * n + j];
                        full[i * n + j] = v;
                        full[j * n + i] = v;
                    }
                }
            }
        }
        return full;
    }
}
