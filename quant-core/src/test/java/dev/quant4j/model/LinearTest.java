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
}
