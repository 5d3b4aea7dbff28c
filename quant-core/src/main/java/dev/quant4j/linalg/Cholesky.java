package dev.quant4j.linalg;

import dev.quant4j.kernel.QuantKernels;
import java.util.concurrent.ForkJoinPool;

/**
 * Cholesky factorisation and triangular inversion of dense row-major float32 matrices, blocked so that almost all the
 * arithmetic is {@link QuantKernels#gemmAcc} (the vectorised block product), parallel over independent rows or column
 * blocks. Like EJML's decompositions, {@link #factorLower} returns {@code false} instead of throwing when the matrix is
 * not positive definite: the caller decides what to do (GPTQ raises the damping).
 *
 * <p>Index {@code (i, j)} of an {@code n x n} matrix is {@code i * n + j}; callers keep {@code n * n} within an array.
 */
public final class Cholesky {

    /** Block size: the width of a panel, and the depth {@code k} of every block product. */
    static final int NB = 128;
    /** Rows of the trailing update one task takes. */
    private static final int ROW_CHUNK = 64;

    private Cholesky() {}

    /**
     * Factors the symmetric matrix {@code a} (only its lower triangle is read) in place into {@code L} with {@code a =
     * L L^T}; the strict upper triangle is set to zero.
     *
     * @return {@code false} (leaving {@code a} partly overwritten) when a pivot is not positive or is NaN, i.e. the
     *     matrix is not positive definite in float32
     */
    public static boolean factorLower(float[] a, int n, QuantKernels k, ForkJoinPool pool) {
        float[] panelT = new float[Math.max(1, NB * n)];
        for (int k0 = 0; k0 < n; k0 += NB) {
            int kb = Math.min(NB, n - k0);
            if (!factorDiagonalBlock(a, n, k0, kb)) {
                return false;
            }
            int p0 = k0 + kb; // first row below the diagonal block
            int m = n - p0;
            if (m == 0) {
                break;
            }
            // Panel: solve X L_kk^T = A[p0:, k0:k0+kb] in the transposed layout Pt[t][r] = X[p0 + r][k0 + t], where
            // each step is an axpy over m contiguous values.
            for (int t = 0; t < kb; t++) {
                for (int r = 0; r < m; r++) {
                    panelT[t * m + r] = a[(p0 + r) * n + k0 + t];
                }
            }
            for (int j = 0; j < kb; j++) {
                int lj = (k0 + j) * n + k0;
                for (int t = 0; t < j; t++) {
                    k.axpy(-a[lj + t], panelT, t * m, panelT, j * m, m);
                }
                float ljj = a[lj + j];
                for (int r = 0; r < m; r++) {
                    panelT[j * m + r] /= ljj;
                }
            }
            for (int t = 0; t < kb; t++) {
                for (int r = 0; r < m; r++) {
                    a[(p0 + r) * n + k0 + t] = panelT[t * m + r];
                    panelT[t * m + r] = -panelT[t * m + r];
                }
            }
            // Trailing update A[p0:, p0:] -= X X^T, lower triangle (whole diagonal tiles; the upper part is cleared
            // at the end): row chunk [r0, r1) needs columns [0, r1).
            int chunks = (m + ROW_CHUNK - 1) / ROW_CHUNK;
            final int kbf = kb;
            final int k0f = k0;
            Parallel.forEach(pool, chunks, ch -> {
                int r0 = ch * ROW_CHUNK;
                int r1 = Math.min(m, r0 + ROW_CHUNK);
                k.gemmAcc(r1 - r0, r1, kbf, a, (p0 + r0) * n + k0f, n, 1, panelT, 0, m, a, (p0 + r0) * n + p0, n);
            });
        }
        for (int i = 0; i < n; i++) {
            java.util.Arrays.fill(a, i * n + i + 1, (i + 1) * n, 0f);
        }
        return true;
    }

    /** Unblocked Cholesky of the {@code kb x kb} diagonal block at {@code k0}, already updated by earlier panels. */
    private static boolean factorDiagonalBlock(float[] a, int n, int k0, int kb) {
        for (int j = k0; j < k0 + kb; j++) {
            float d = a[j * n + j];
            for (int t = k0; t < j; t++) {
                d -= a[j * n + t] * a[j * n + t];
            }
            if (!(d > 0f)) {
                return false;
            }
            float ljj = (float) Math.sqrt(d);
            a[j * n + j] = ljj;
            for (int i = j + 1; i < k0 + kb; i++) {
                float s = a[i * n + j];
                for (int t = k0; t < j; t++) {
                    s -= a[i * n + t] * a[j * n + t];
                }
                a[i * n + j] = s / ljj;
            }
        }
        return true;
    }

    /**
     * The inverse of the lower-triangular {@code l} (positive diagonal), a new lower-triangular matrix. Block columns of
     * the inverse are independent (each solves {@code L X = E_J} by blocked forward substitution) and run in parallel.
     */
    public static float[] invertLower(float[] l, int n, QuantKernels k, ForkJoinPool pool) {
        float[] inv = new float[n * n];
        int blocks = (n + NB - 1) / NB;
        Parallel.forEach(pool, blocks, jBlock -> {
            int j0 = jBlock * NB;
            int jb = Math.min(NB, n - j0);
            float[] negX = new float[NB * jb];
            for (int j = 0; j < jb; j++) {
                inv[(j0 + j) * n + j0 + j] = 1f;
            }
            // X = inv[j0:, j0:j0+jb]; rows above j0 are zero
            for (int k0 = j0; k0 < n; k0 += NB) {
                int kb = Math.min(NB, n - k0);
                // X[K] = L_KK^{-1} X[K]: forward substitution, one row (an axpy over jb columns) at a time
                for (int r = k0; r < k0 + kb; r++) {
                    for (int t = k0; t < r; t++) {
                        k.axpy(-l[r * n + t], inv, t * n + j0, inv, r * n + j0, jb);
                    }
                    float lrr = l[r * n + r];
                    for (int j = 0; j < jb; j++) {
                        inv[r * n + j0 + j] /= lrr;
                    }
                }
                int below = n - (k0 + kb);
                if (below == 0) {
                    break;
                }
                // X[K1:] -= L[K1:, K] X[K]
                for (int t = 0; t < kb; t++) {
                    for (int j = 0; j < jb; j++) {
                        negX[t * jb + j] = -inv[(k0 + t) * n + j0 + j];
                    }
                }
                k.gemmAcc(below, jb, kb, l, (k0 + kb) * n + k0, n, 1, negX, 0, jb, inv, (k0 + kb) * n + j0, n);
            }
        });
        return inv;
    }

    /**
     * The upper Cholesky factor {@code U} of {@code inverse(h)}, with {@code inverse(h) = U^T U}: what GPTQ's reference
     * computes as {@code cholesky(cholesky_inverse(cholesky(H)), upper=True)}, obtained here with one factorisation and
     * one triangular inverse instead of two factorisations, an inverse and a product. With {@code J} the exchange
     * matrix (reversal), if {@code J H J = L L^T} then {@code H^-1 = (J L^-1 J)^T (J L^-1 J)} and {@code J L^-1 J} is
     * upper triangular with a positive diagonal, so it is that unique factor.
     *
     * @return the factor, row-major {@code n x n}, or {@code null} when {@code h} is not positive definite
     */
    public static float[] upperFactorOfInverse(float[] h, int n, QuantKernels k, ForkJoinPool pool) {
        float[] flipped = new float[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                // lower triangle of J H J, read from the lower triangle of h
                flipped[i * n + j] = h[(n - 1 - j) * n + (n - 1 - i)];
            }
        }
        if (!factorLower(flipped, n, k, pool)) {
            return null;
        }
        float[] linv = invertLower(flipped, n, k, pool);
        float[] u = flipped; // reuse: every element is overwritten
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                u[i * n + j] = linv[(n - 1 - i) * n + (n - 1 - j)];
            }
        }
        return u;
    }
}
