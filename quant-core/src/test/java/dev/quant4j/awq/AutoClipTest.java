package dev.quant4j.awq;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.kernel.LinearKernels;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/** The clipping search on a block's scaled layer: llm-awq's token sample, and a clip that never adds error. */
class AutoClipTest {

    @Test
    void theSampleIsEveryNthTokenOfTheConcatenation() {
        FloatMatrix x = AwqTest.activations(1100, 4, 1, 0, 1);
        List<FloatMatrix> xs = AutoScaleTest.chunks(x, 4); // 275 tokens each
        FloatMatrix sample = AutoClip.sampleTokens("x", xs);
        // 1100 / 512 = 2: tokens 0, 2, 4, ...
        assertThat(sample.rows()).isEqualTo(550);
        for (int t = 0; t < sample.rows(); t++) {
            for (int c = 0; c < 4; c++) {
                assertThat(sample.get(t, c)).isEqualTo(x.get(2 * t, c));
            }
        }
        assertThat(AutoClip.sampleTokens("x", AutoScaleTest.chunks(x, 11).subList(0, 3))
                        .rows())
                .as("fewer than 512 tokens: all of them")
                .isEqualTo(300);
    }

    @Test
    void itMakesThePerLayerSearchsChoiceOnTheSameScaledLayer() {
        FloatMatrix w = AwqTest.weights(32, 128, 5);
        FloatMatrix x = AwqTest.activations(1200, 128, 6, 8, 15);
        AwqConfig config = new AwqConfig(4, 32, 20, 0.5, true);
        AwqResult perLayer = new Awq(config).quantize(w, AwqTest.stats(x));
        float[] s = perLayer.scales();
        AutoClip.Clipped c = AutoClip.autoClipLayer(
                Awq.scale(w, s),
                AutoClip.sampleTokens("x", AutoScaleTest.chunks(x, 3)),
                s,
                config,
                ForkJoinPool.commonPool());
        assertThat(c.maxVal()).containsExactly(perLayer.clipMax());
    }

    @Test
    void clippingNeverIncreasesTheErrorItMeasures() {
        FloatMatrix w = AwqTest.weights(16, 64, 7);
        FloatMatrix x = AwqTest.activations(700, 64, 8, 5, 10);
        float[] s = new float[64];
        for (int i = 0; i < 64; i++) {
            s[i] = (float) Math.exp((i % 5 - 2) * 0.5);
        }
        FloatMatrix ws = Awq.scale(w, s);
        AwqConfig config = new AwqConfig(3, 16, 20, 0.5, true);
        FloatMatrix sample = AutoClip.sampleTokens("x", List.of(x));
        AutoClip.Clipped c = AutoClip.autoClipLayer(ws, sample, s, config, ForkJoinPool.commonPool());
        int clipped = 0;
        for (int r = 0; r < 16; r++) {
            for (int g = 0; g < 4; g++) {
                float orgMax = 0;
                for (int j = 0; j < 16; j++) {
                    orgMax = Math.max(orgMax, Math.abs(ws.get(r, g * 16 + j)));
                }
                float m = c.maxVal()[r * 4 + g];
                double chosen = err(ws, sample, s, r, g, m);
                double none = err(ws, sample, s, r, g, orgMax);
                assertThat(chosen).as("row %d group %d", r, g).isLessThanOrEqualTo(none * (1 + 1e-5));
                if (m < orgMax) {
                    clipped++;
                }
                for (int j = 0; j < 16; j++) {
                    float v = ws.get(r, g * 16 + j);
                    assertThat(c.weight().get(r, g * 16 + j)).isEqualTo(Math.min(Math.max(v, -m), m));
                }
            }
        }
        assertThat(clipped).as("3 bits: most groups are clipped").isGreaterThan(32);
    }

    /**
     * {@code mean over tokens of ((x / s) . (Q(clamp(w, -m, m)) - w))^2} for row {@code r}, group {@code g}, with the
     * group's own min/max quantizer, straight from the definition.
     */
    static double err(FloatMatrix ws, FloatMatrix sample, float[] s, int r, int g, float m) {
        float[] d = new float[16];
        float lo = Float.MAX_VALUE;
        float hi = -Float.MAX_VALUE;
        for (int j = 0; j < 16; j++) {
            float v = Math.min(Math.max(ws.get(r, g * 16 + j), -m), m);
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        float scale = LinearKernels.linearScale(3, Symmetry.MINMAX, lo, hi);
        float zero = LinearKernels.linearZero(3, Symmetry.MINMAX, lo, hi, scale);
        for (int j = 0; j < 16; j++) {
            float w = ws.get(r, g * 16 + j);
            float v = Math.min(Math.max(w, -m), m);
            float q = Math.min(Math.max((float) Math.rint(v / scale) + zero, 0f), 7f);
            d[j] = scale * (q - zero) - w;
        }
        double sum = 0;
        for (int t = 0; t < sample.rows(); t++) {
            double dot = 0;
            for (int j = 0; j < 16; j++) {
                dot += (double) sample.get(t, g * 16 + j) / s[g * 16 + j] * d[j];
            }
            sum += dot * dot;
        }
        return sum / sample.rows();
    }
}
