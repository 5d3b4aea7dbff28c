package dev.quant4j.awq;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class AwqTest {

    @TempDir
    Path dir;

    static FloatMatrix weights(int rows, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (0.05 * r.nextGaussian());
        }
        return FloatMatrix.of("layer", rows, cols, w, 0);
    }

    /** Activations whose every {@code every}-th channel is {@code boost} times larger (LLM-style outlier channels). */
    static FloatMatrix activations(int n, int cols, long seed, int every, double boost) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n * cols];
        for (int t = 0; t < n; t++) {
            for (int c = 0; c < cols; c++) {
                double v = r.nextGaussian();
                x[t * cols + c] = (float) (every > 0 && c % every == 1 ? boost * v : v);
            }
        }
        return FloatMatrix.of("x", n, cols, x, 0);
    }

    static AwqStatistics stats(FloatMatrix x) {
        AwqStatistics s = new AwqStatistics("layer", x.cols(), x.rows());
        s.add(x);
        return s;
    }

    @ParameterizedTest(name = "bits={0} group={1}")
    @CsvSource({"3, 32", "4, 64", "4, -1"})
    void outputErrorIsBelowRoundToNearestWithOutlierChannels(int bits, int group) {
        FloatMatrix w = weights(64, 256, 1);
        FloatMatrix x = activations(1024, 256, 2, 16, 30);
        AwqResult awq = new Awq(AwqConfig.defaults(bits).withGroupSize(group)).quantize(w, stats(x));
        LinearScheme scheme = new LinearScheme(bits, Symmetry.MINMAX, group);
        double eAwq = ErrorMetrics.outputError(w, awq.tensor().dequantize(), x);
        double eRtn =
                ErrorMetrics.outputError(w, new RtnQuantizer(scheme).quantize(w).dequantize(), x);
        assertThat(eAwq).as("AWQ %.4g vs RTN %.4g", eAwq, eRtn).isLessThan(0.9 * eRtn);
        assertThat(awq.alpha()).isPositive();
        // the reported loss is the mean squared output error of the effective weight
        assertThat(awq.loss()).isCloseTo(eAwq / (1024.0 * 64), within(1e-3 * eAwq / (1024.0 * 64)));
    }

    @Test
    void alphaZeroIsRoundToNearestExactly() {
        FloatMatrix w = weights(32, 128, 3);
        FloatMatrix x = activations(600, 128, 4, 8, 10);
        AwqStatistics st = stats(x);
        AwqResult r = new Awq(new AwqConfig(4, 32, 20, 0.5, true)).quantize(w, st);
        QuantizedTensor rtn = new RtnQuantizer(new LinearScheme(4, Symmetry.MINMAX, 32)).quantize(w);
        double rtnLoss = st.outputError(w, rtn) / (600.0 * 32);
        assertThat(r.lossCurve()[0]).isEqualTo(rtnLoss);
        // with only alpha = 0 and no clipping, AWQ is round-to-nearest: same codes, scales all 1
        AwqResult only = new Awq(new AwqConfig(4, 32, 1, 0.5, false)).quantize(w, st);
        assertThat(only.scales()).containsOnly(1f);
        assertThat(only.tensor().dequantize().toArray())
                .containsExactly(rtn.dequantize().toArray());
        assertThat(only.alpha()).isZero();
    }

    @Test
    void scalesAreNormalisedAsTheReference() {
        // s = clamp(x^0.5, 1e-4) = [1, 2, 1e-4, 4]; sqrt(max * min) = sqrt(4e-4) = 0.02
        float[] s = Awq.scales(new float[] {1f, 4f, 0f, 16f}, 0.5);
        float norm = (float) Math.sqrt(4f * 1e-4f);
        assertThat(s).containsExactly(1f / norm, 2f / norm, 1e-4f / norm, 4f / norm);
        assertThat(Awq.scales(new float[] {0f, 3f}, 0.0)).containsExactly(1f, 1f); // 0^0 = 1, as torch.pow
    }

    /** AutoAWQ's w_mean by hand: |w| over its group's max |w| (+ 1e-6), averaged over the rows of each column. */
    @Test
    void weightMeanIsTheGroupRelativeMagnitudeAveragedOverRows() {
        // two rows, two groups of two: row 0 groups [1, -2], [4, 0]; row 1 groups [0.5, 0.5], [-1, 3]
        FloatMatrix w = FloatMatrix.of("w", 2, 4, new float[] {1f, -2f, 4f, 0f, 0.5f, 0.5f, -1f, 3f}, 0);
        float[] m = Awq.wMean(w, 2);
        float[] expected = {
            (float) ((1f / (2f + 1e-6f) + 0.5f / (0.5f + 1e-6f)) / 2.0),
            (float) ((2f / (2f + 1e-6f) + 0.5f / (0.5f + 1e-6f)) / 2.0),
            (float) ((4f / (4f + 1e-6f) + 1f / (3f + 1e-6f)) / 2.0),
            (float) ((0f + 3f / (3f + 1e-6f)) / 2.0)
        };
        assertThat(m).containsExactly(expected);
        // one group per row: the whole row is the group
        assertThat(Awq.wMean(w, 4)[2]).isEqualTo((float) ((4f / (4f + 1e-6f) + 1f / (3f + 1e-6f)) / 2.0));
    }

    /**
     * Duo scaling at ratio 1 is llm-awq's x_mean candidate (w_mean^0 = 1: a constant factor the normalisation
     * removes); at ratio 0 it is 1 / (w_mean + 1e-4), normalised, not the all-ones of plain round-to-nearest.
     */
    @Test
    void duoScalesAtTheEndsOfTheGrid() {
        float[] xMean = {0.5f, 2f, 8f, 0.125f};
        float[] wMean = {0.3f, 0.6f, 0.45f, 0.9f};
        float[] one = Awq.duoScales(xMean, wMean, 1.0);
        float[] plain = Awq.scales(xMean, 1.0);
        for (int c = 0; c < one.length; c++) {
            assertThat(one[c]).isCloseTo(plain[c], within(2e-6f * plain[c]));
        }
        float[] zero = Awq.duoScales(xMean, wMean, 0.0);
        float[] raw = new float[4];
        float max = 0;
        float min = Float.MAX_VALUE;
        for (int c = 0; c < 4; c++) {
            raw[c] = 1f / (wMean[c] + 1e-4f);
            max = Math.max(max, raw[c]);
            min = Math.min(min, raw[c]);
        }
        float norm = (float) Math.sqrt(max * min);
        for (int c = 0; c < 4; c++) {
            assertThat(zero[c]).isEqualTo(raw[c] / norm);
        }
        assertThat(zero).isNotEqualTo(new float[] {1f, 1f, 1f, 1f});
    }

    /** With duo scaling, every point of the loss curve is the output error of Q(W * s) / s for its duo candidate. */
    @Test
    void duoScalingLossCurveIsTheOutputErrorOfEachCandidate() {
        FloatMatrix w = weights(32, 128, 13);
        FloatMatrix x = activations(600, 128, 14, 8, 10);
        AwqStatistics st = stats(x);
        AwqResult r = new Awq(new AwqConfig(4, 32, 10, 0.5, false, true)).quantize(w, st);
        RtnQuantizer rtn = new RtnQuantizer(new LinearScheme(4, Symmetry.MINMAX, 32));
        float[] wMean = Awq.wMean(w, 32);
        for (int i = 0; i < 10; i++) {
            float[] s = Awq.duoScales(st.meanAbs(), wMean, i / 10.0);
            FloatMatrix candidate =
                    rtn.quantize(Awq.scale(w, s)).withInputScales(s).dequantize();
            assertThat(r.lossCurve()[i]).as("ratio %d / 10", i).isEqualTo(st.meanSquaredOutputError(w, candidate));
        }
        assertThat(r.scales()).isEqualTo(Awq.duoScales(st.meanAbs(), wMean, r.alpha()));
    }

    /** The clip search against the reference's formula evaluated directly on the sampled tokens. */
    @Test
    void clipSearchMatchesTheDirectMeanOverSampledTokens() {
        int rows = 8;
        int cols = 64;
        int g = 16;
        FloatMatrix w = weights(rows, cols, 5);
        FloatMatrix x = activations(1100, cols, 6, 8, 5); // 1100 / 512 = stride 2: tokens 0, 2, ..., 1098
        AwqStatistics st = stats(x);
        AwqResult r = new Awq(new AwqConfig(3, g, 20, 0.5, true)).quantize(w, st);
        assertThat(st.sample().rows()).isEqualTo(550);
        float[] s = r.scales();
        for (int row = 0; row < rows; row++) {
            for (int grp = 0; grp < cols / g; grp++) {
                float[] wg = new float[g];
                float orgMax = 0;
                for (int j = 0; j < g; j++) {
                    wg[j] = w.get(row, grp * g + j) * s[grp * g + j];
                    orgMax = Math.max(orgMax, Math.abs(wg[j]));
                }
                float best = orgMax;
                float minErr = 1e9f;
                for (int i = 0; i < 10; i++) {
                    float m = orgMax * (float) (1 - i / 20.0);
                    float[] cur = new float[g];
                    for (int j = 0; j < g; j++) {
                        cur[j] = Math.min(Math.max(wg[j], -m), m);
                    }
                    float[] q = new RtnQuantizer(new LinearScheme(3, Symmetry.MINMAX, -1))
                            .quantize(FloatMatrix.of(1, g, cur))
                            .dequantize()
                            .toArray();
                    double err = 0;
                    int n = 0;
                    for (int t = 0; t < 1100; t += 2, n++) {
                        double org = 0;
                        double out = 0;
                        for (int j = 0; j < g; j++) {
                            double xv = x.get(t, grp * g + j) / s[grp * g + j];
                            org += xv * wg[j];
                            out += xv * q[j];
                        }
                        err += (out - org) * (out - org);
                    }
                    float e = (float) (err / n);
                    if (e < minErr) {
                        minErr = e;
                        best = m;
                    }
                }
                assertThat(r.clipMax()[row * (cols / g) + grp])
                        .as("row %d group %d", row, grp)
                        .isEqualTo(best);
            }
        }
    }

    @Test
    void degenerateChannelsAndFewTokensGiveDefinedResults() {
        int cols = 64;
        FloatMatrix x = activations(100, cols, 7, 0, 1); // fewer than 512 tokens: every token is sampled
        for (int t = 0; t < 100; t++) {
            x.array()[t * cols + 5] = 0f; // a dead channel
            x.array()[t * cols + 9] = 2.5f; // a constant one
        }
        FloatMatrix w = weights(16, cols, 8);
        AwqStatistics st = stats(x);
        AwqResult r = new Awq(AwqConfig.defaults(4).withGroupSize(32)).quantize(w, st);
        assertThat(st.sample().rows()).isEqualTo(100);
        for (float v : r.scales()) {
            assertThat(v).isPositive().isFinite();
        }
        for (double l : r.lossCurve()) {
            assertThat(l).isFinite().isNotNegative();
        }
        for (float v : r.tensor().dequantize().toArray()) {
            assertThat(v).isFinite();
        }
        // all-zero activations: every candidate's loss is 0, the first (alpha = 0) wins, nothing is clipped
        FloatMatrix zeros = FloatMatrix.zeros("x", 50, cols);
        AwqResult z = new Awq(AwqConfig.defaults(4).withGroupSize(32)).quantize(w, stats(zeros));
        assertThat(z.alpha()).isZero();
        assertThat(z.lossCurve()).containsOnly(0.0);
    }

    @Test
    void badInputsAreClearErrors() {
        AwqStatistics st = new AwqStatistics("fc2", 16, 10);
        assertThatThrownBy(() -> st.add(activations(4, 15, 1, 0, 1)))
                .hasMessageContaining("have 15 columns, layer 'fc2' has 16 input features");
        FloatMatrix nan = activations(4, 16, 1, 0, 1);
        nan.array()[3 * 16 + 2] = Float.NaN;
        assertThatThrownBy(() -> st.add(nan)).hasMessageContaining("NaN at [3, 2]");
        st.add(activations(6, 16, 2, 0, 1));
        assertThatThrownBy(() -> new Awq(AwqConfig.defaults(4).withGroupSize(8)).quantize(weights(4, 16, 1), st))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("6 calibration tokens added, 10 declared");
        assertThatThrownBy(() -> st.add(activations(5, 16, 3, 0, 1))).hasMessageContaining("more than the 10 declared");
        st.add(activations(4, 16, 4, 0, 1));
        assertThatThrownBy(() -> new Awq(AwqConfig.defaults(4).withGroupSize(5)).quantize(weights(4, 16, 1), st))
                .hasMessageContaining("group size 5 does not divide the column count 16");
        assertThatThrownBy(() -> new Awq(AwqConfig.defaults(4)).quantize(weights(4, 32, 1), st))
                .hasMessageContaining("has 32 input features");
        assertThatThrownBy(() -> AwqConfig.defaults(4).withGroupSize(0)).hasMessageContaining("group size");
        assertThatThrownBy(() -> new AwqConfig(4, 32, 0, 0.5, true)).hasMessageContaining("n_grid must be positive");
        assertThatThrownBy(() -> new AwqConfig(4, 32, 20, 1.0, true)).hasMessageContaining("max_shrink must be in");
        assertThatThrownBy(() -> new AwqStatistics("fc", 16, 0)).hasMessageContaining("must be positive, got 0");
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 8)).quantize(weights(2, 16, 3));
        assertThatThrownBy(() -> q.withInputScales(new float[15])).hasMessageContaining("15 input scales, expected 16");
        float[] nanScale = new float[16];
        java.util.Arrays.fill(nanScale, 1f);
        nanScale[4] = Float.NaN;
        assertThatThrownBy(() -> q.withInputScales(nanScale)).hasMessageContaining("input scale 4 is NaN");
    }

    @Test
    void fileKeepsTheScalesAndDequantizesToTheEffectiveWeight() throws Exception {
        FloatMatrix w = weights(8, 64, 9);
        AwqResult r =
                new Awq(AwqConfig.defaults(4).withGroupSize(32)).quantize(w, stats(activations(200, 64, 10, 8, 20)));
        QuantizedTensor t = r.tensor();
        assertThat(t.inputScales()).containsExactly(r.scales());
        FloatMatrix folded = t.dequantizeFolded();
        FloatMatrix effective = t.dequantize();
        for (int c = 0; c < 64; c++) {
            assertThat(effective.get(3, c)).isEqualTo(folded.get(3, c) / r.scales()[c]);
        }
        Path p = dir.resolve("awq.safetensors");
        QuantizedSafeTensors.write(p, List.of(t), "awq", List.of());
        QuantizedSafeTensors.Content c = QuantizedSafeTensors.read(p);
        assertThat(c.weights().get("layer")).isEqualTo(t);
        assertThat(c.weights().get("layer").dequantize().toArray()).containsExactly(effective.toArray());
    }
}
