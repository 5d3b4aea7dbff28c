package dev.quant4j.linalg;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.testing.Pools;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The blocked factorisation and inverses against the definitions, computed in double: sizes below, at and across the
 * block size of 128, with both the scalar and this JVM's kernels, on one thread and on two.
 */
class CholeskyTest {

    static final ForkJoinPool ONE = Pools.ONE;
    static final ForkJoinPool TWO = Pools.TWO;

    /** A symmetric positive definite matrix {@code B B^T / n + 0.05 I}, like a damped Hessian. */
    static float[] spd(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int cols = n + 5;
        double[] b = new double[n * cols];
        for (int i = 0; i < b.length; i++) {
            b[i] = r.nextGaussian();
        }
        float[] a = new float[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int t = 0; t < cols; t++) {
                    s += b[i * cols + t] * b[j * cols + t];
                }
                float v = (float) (s / cols + (i == j ? 0.05 : 0));
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        return a;
    }

    static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 7, 127, 128, 129, 300})
    void factorReproducesTheMatrix(int n) {
        float[] a = spd(n, n);
        for (QuantKernels k : List.of(Kernels.scalar(), Kernels.get())) {
            float[] l = a.clone();
            assertThat(Cholesky.factorLower(l, n, k, TWO)).isTrue();
            double worst = 0;
            for (int i = 0; i < n; i++) {
                assertThat(l[i * n + i]).isPositive();
                for (int j = 0; j < n; j++) {
                    if (j > i) {
                        assertThat(l[i * n + j]).as("upper (%d,%d)", i, j).isZero();
                    }
                    double s = 0;
                    for (int t = 0; t <= Math.min(i, j); t++) {
                        s += (double) l[i * n + t] * l[j * n + t];
                    }
                    worst = Math.max(worst, Math.abs(s - a[i * n + j]));
                }
            }
            assertThat(worst).as("%s max |L L^T - A|", k.name()).isLessThan(2e-5 * maxAbs(a) * Math.sqrt(n));
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 128, 129, 300})
    void lowerInverseTimesMatrixIsIdentity(int n) {
        float[] l = spd(n, 3L * n);
        assertThat(Cholesky.factorLower(l, n, Kernels.get(), TWO)).isTrue();
        float[] inv = Cholesky.invertLower(l, n, Kernels.get(), TWO);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (j > i) {
                    assertThat(inv[i * n + j]).isZero();
                }
                double s = 0;
                for (int t = j; t <= i; t++) {
                    s += (double) l[i * n + t] * inv[t * n + j];
                }
                worst = Math.max(worst, Math.abs(s - (i == j ? 1 : 0)));
            }
        }
        assertThat(worst).isLessThan(1e-4);
    }

    /**
     * The flipped route gives the factor GPTQ's reference computes: {@code cholesky(cholesky_inverse(cholesky(H)),
     * upper=True)}, here in double from the definitions.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 7, 129, 300})
    void upperFactorOfInverseMatchesTheReferenceRoute(int n) {
        float[] h = spd(n, 5L * n);
        float[] u = Cholesky.upperFactorOfInverse(h, n, Kernels.get(), TWO);
        double[] expected = referenceRoute(h, n);
        double worst = 0;
        double scale = 0;
        for (int i = 0; i < n * n; i++) {
            worst = Math.max(worst, Math.abs(u[i] - expected[i]));
            scale = Math.max(scale, Math.abs(expected[i]));
        }
        assertThat(worst / scale).isLessThan(1e-4);
    }

    static double[] referenceRoute(float[] h, int n) {
        double[] l = choleskyDouble(toDouble(h), n);
        // cholesky_inverse: (L L^T)^-1 from the inverse of L
        double[] li = new double[n * n];
        for (int j = 0; j < n; j++) {
            for (int i = j; i < n; i++) {
                double s = i == j ? 1 : 0;
                for (int t = j; t < i; t++) {
                    s -= l[i * n + t] * li[t * n + j];
                }
                li[i * n + j] = s / l[i * n + i];
            }
        }
        double[] hinv = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int t = Math.max(i, j); t < n; t++) {
                    s += li[t * n + i] * li[t * n + j];
                }
                hinv[i * n + j] = s;
            }
        }
        // upper factor U with U^T U = hinv is the transpose of the lower factor
        double[] lower = choleskyDouble(hinv, n);
        double[] u = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                u[i * n + j] = lower[j * n + i];
            }
        }
        return u;
    }

    static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    static double[] choleskyDouble(double[] a, int n) {
        double[] l = new double[n * n];
        for (int j = 0; j < n; j++) {
            double d = a[j * n + j];
            for (int t = 0; t < j; t++) {
                d -= l[j * n + t] * l[j * n + t];
            }
            l[j * n + j] = Math.sqrt(d);
            for (int i = j + 1; i < n; i++) {
                double s = a[i * n + j];
                for (int t = 0; t < j; t++) {
                    s -= l[i * n + t] * l[j * n + t];
                }
                l[i * n + j] = s / l[j * n + j];
            }
        }
        return l;
    }

    @Test
    void resultsDoNotDependOnTheNumberOfThreads() {
        int n = 300;
        float[] h = spd(n, 11);
        float[] one = Cholesky.upperFactorOfInverse(h, n, Kernels.get(), ONE);
        float[] two = Cholesky.upperFactorOfInverse(h, n, Kernels.get(), TWO);
        assertThat(two).containsExactly(one);
    }

    @Test
    void notPositiveDefiniteReturnsFalse() {
        int n = 200;
        float[] a = spd(n, 13);
        a[150 * n + 150] = -1f; // a negative diagonal entry: some pivot must fail
        assertThat(Cholesky.factorLower(a.clone(), n, Kernels.get(), TWO)).isFalse();
        assertThat(Cholesky.upperFactorOfInverse(a, n, Kernels.get(), TWO)).isNull();
        float[] nan = spd(n, 13);
        nan[170 * n + 3] = Float.NaN;
        assertThat(Cholesky.factorLower(nan, n, Kernels.get(), TWO)).isFalse();
        float[] singular = new float[4 * 4]; // all zero
        assertThat(Cholesky.factorLower(singular, 4, Kernels.scalar(), ONE)).isFalse();
    }
}
