package dev.quant4j.gptq;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * GPTQ's range search ({@code quant.py}'s {@code find_params} with {@code mse=True}): with an identity Hessian no error
 * is carried between columns, so every row's or group's scale and zero-point must be the ones a plain search over the
 * 80 shrink factors finds on the weights themselves, written here on its own.
 */
class GptqMseTest {

    /** The identity {@code [k, k]}: GPTQ then quantizes each column on its own. */
    static float[] identity(int k) {
        float[] h = new float[k * k];
        for (int i = 0; i < k; i++) {
            h[i * k + i] = 1f;
        }
        return h;
    }

    /** Sum of |dequantized - x|^2.4 over {@code x}, with the scale and zero-point given. */
    static double err(float[] x, float scale, float zero, int maxq) {
        double e = 0;
        for (float v : x) {
            float q = Math.min(Math.max((float) Math.rint(v / scale) + zero, 0f), maxq);
            e += Math.pow(Math.abs(scale * (q - zero) - v), 2.4);
        }
        return e;
    }

    @ParameterizedTest
    @CsvSource({"4, 16, false", "4, 16, true", "4, -1, false", "3, 32, false", "8, 16, true"})
    void eachGroupTakesTheShrinkWithTheSmallestError(int bits, int group, boolean sym) {
        int rows = 6;
        int cols = 64;
        FloatMatrix w = GptqTest.weights(rows, cols, 31 + bits + group);
        w.array()[5] = 2.5f; // an outlier: clipping it pays
        w.array()[cols + 40] = -3f;
        GptqConfig config = GptqConfig.defaults(bits).withGroupSize(group).withSym(sym);
        QuantizedTensor plain =
                new Gptq(config, Pools.TWO).quantize(w, identity(cols)).tensor();
        QuantizedTensor mse = new Gptq(config.withMse(true), Pools.TWO)
                .quantize(w, identity(cols))
                .tensor();
        int maxq = (1 << bits) - 1;
        int len = group > 0 ? group : cols;
        int groups = cols / len;
        int shrunk = 0;
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < groups; g++) {
                float[] x = new float[len];
                System.arraycopy(w.array(), r * cols + g * len, x, 0, len);
                float lo = 0f;
                float hi = 0f;
                for (float v : x) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
                if (sym) {
                    hi = Math.max(-lo, hi);
                    lo = lo < 0 ? -hi : lo;
                }
                float symZero = (maxq + 1) / 2;
                double best = Double.POSITIVE_INFINITY;
                float bestScale = Float.NaN;
                float bestZero = Float.NaN;
                for (int i = 0; i < 80; i++) {
                    float p = (float) (1 - i / 100.0);
                    float s = (p * hi - p * lo) / maxq;
                    float z = sym ? symZero : (float) Math.rint(-(p * lo) / s);
                    double e = err(x, s, z, maxq);
                    if (e < best) {
                        best = e;
                        bestScale = s;
                        bestZero = z;
                    }
                }
                int gi = r * groups + g;
                assertThat(mse.scale(gi)).as("row %d group %d", r, g).isEqualTo(bestScale);
                assertThat((float) mse.zero(gi)).as("row %d group %d", r, g).isEqualTo(bestZero);
                for (int c = 0; c < len; c++) {
                    float q = Math.min(Math.max((float) Math.rint(x[c] / bestScale) + bestZero, 0f), maxq);
                    assertThat(mse.code(r, g * len + c)).isEqualTo((int) q);
                }
                double plainErr = err(x, plain.scale(gi), plain.zero(gi), maxq);
                assertThat(best).isLessThanOrEqualTo(plainErr);
                shrunk += best < plainErr ? 1 : 0;
            }
        }
        assertThat(shrunk).as("groups whose range the search shrank").isPositive();
    }
}
