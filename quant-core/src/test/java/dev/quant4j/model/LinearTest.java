package dev.quant4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link Linear#dense}: {@code y = x W^T + b} against a plain double-precision loop, on either side of the token count
 * where it switches from row-by-row dot products to the blocked matrix product, with shapes that fill no tile, chunk or
 * strip evenly.
 */
class LinearTest {

    @ParameterizedTest
    @CsvSource({"1, 5, 3", "15, 37, 300", "16, 37, 300", "17, 37, 300", "33, 129, 513", "64, 300, 257", "40, 8, 1"})
    void denseEqualsTheDefinition(int tokens, int out, int in) {
        SplittableRandom r = new SplittableRandom(31L * tokens + out + 7L * in);
        float[] w = new float[out * in];
        float[] x = new float[tokens * in];
        float[] b = new float[out];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) r.nextGaussian();
        }
        Linear l = Linear.dense("w", FloatMatrix.of("w", out, in, w, 0), b, Pools.TWO);
        float[] y = l.forward(FloatMatrix.of("x", tokens, in, x, 0)).toArray();
        for (int t = 0; t < tokens; t++) {
            float[] row = l.forward(
                            FloatMatrix.of("x1", 1, in, java.util.Arrays.copyOfRange(x, t * in, (t + 1) * in), 0))
                    .toArray();
            for (int o = 0; o < out; o++) {
                double s = b[o];
                double abs = Math.abs(b[o]);
                for (int c = 0; c < in; c++) {
                    s += (double) w[o * in + c] * x[t * in + c];
                    abs += Math.abs((double) w[o * in + c] * x[t * in + c]);
                }
                // float sums of `in` products: within a few ulps of the sum of magnitudes per product
                double tolerance = 1e-6 * in * Math.max(1, abs / in);
                assertThat((double) y[t * out + o])
                        .as("y[%d][%d]", t, o)
                        .isCloseTo(s, org.assertj.core.data.Offset.offset(tolerance));
                assertThat((double) row[o])
                        .as("one token, y[%d][%d]", t, o)
                        .isCloseTo(s, org.assertj.core.data.Offset.offset(tolerance));
            }
        }
    }

    /**
     * The blocked product's contract: each output is one float chain of fused multiply-adds over the input in
     * increasing order, then the bias added once, so it equals this loop bit for bit whatever the pool; the input is
     * a view into a larger array (its rows start past the array's first element).
     */
    @ParameterizedTest
    @CsvSource({
        "16, 37, 300, 1",
        "17, 129, 513, 2",
        "64, 300, 257, 2",
        "70, 8, 1, 2",
        "33, 260, 600, 1",
        "150, 40, 520, 2"
    })
    void theBlockedProductIsOneChainPerOutput(int tokens, int out, int in, int threads) {
        SplittableRandom r = new SplittableRandom(977L * tokens + out + 13L * in);
        float[] w = new float[out * in];
        int skip = 5;
        float[] x = new float[skip + tokens * in];
        float[] b = new float[out];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) r.nextGaussian();
        }
        java.util.concurrent.ForkJoinPool pool = threads == 1 ? Pools.ONE : Pools.TWO;
        float[] y = Linear.dense("w", FloatMatrix.of("w", out, in, w, 0), b, pool)
                .forward(FloatMatrix.of("x", tokens, in, x, skip))
                .toArray();
        float[] noBias = Linear.dense("w", FloatMatrix.of("w", out, in, w, 0), null, pool)
                .forward(FloatMatrix.of("x", tokens, in, x, skip))
                .toArray();
        for (int t = 0; t < tokens; t++) {
            for (int o = 0; o < out; o++) {
                float acc = 0f;
                for (int c = 0; c < in; c++) {
                    acc = Math.fma(x[skip + t * in + c], w[o * in + c], acc);
                }
                assertThat(noBias[t * out + o])
                        .as("y[%d][%d] without bias", t, o)
                        .isEqualTo(acc);
                assertThat(y[t * out + o]).as("y[%d][%d]", t, o).isEqualTo(acc + b[o]);
            }
        }
    }
}
