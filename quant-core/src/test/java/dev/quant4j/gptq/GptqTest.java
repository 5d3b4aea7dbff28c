package dev.quant4j.gptq;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class GptqTest {

    static final ForkJoinPool ONE = Pools.ONE;
    static final ForkJoinPool TWO = Pools.TWO;

    static FloatMatrix weights(int rows, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (0.15 * r.nextGaussian());
        }
        return FloatMatrix.of("layer", rows, cols, w, 0);
    }

    /**
     * Correlated activations {@code X [n, cols]}: each feature mixes a few shared latent factors plus noise, and every
     * {@code outlierEvery}-th feature (if positive) is 20 times larger, like the outlier channels of LLM activations.
     */
    static FloatMatrix activations(int n, int cols, long seed, int outlierEvery) {
        SplittableRandom r = new SplittableRandom(seed);
        int factors = 8;
        double[] mix = new double[factors * cols];
        for (int i = 0; i < mix.length; i++) {
            mix[i] = r.nextGaussian();
        }
        float[] x = new float[n * cols];
        double[] z = new double[factors];
        for (int t = 0; t < n; t++) {
            for (int f = 0; f < factors; f++) {
                z[f] = r.nextGaussian();
            }
            for (int c = 0; c < cols; c++) {
                double v = 0.5 * r.nextGaussian();
                for (int f = 0; f < factors; f++) {
                    v += z[f] * mix[f * cols + c];
                }
                if (outlierEvery > 0 && c % outlierEvery == 3) {
                    v *= 20;
                }
                x[t * cols + c] = (float) v;
            }
        }
        return FloatMatrix.of("x", n, cols, x, 0);
    }

    static float[] hessian(FloatMatrix x) {
        HessianAccumulator acc = new HessianAccumulator("layer", x.cols(), TWO);
        acc.add(x);
        return acc.hessian();
    }

    static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    /**
     * The fast GPTQ (lazy batches, blocked float32 linear algebra, row slices) gives the same codes as the textbook
     * version on small layers, over bit widths, group sizes below, at and above the block size, act-order and static
     * groups.
     */
    @ParameterizedTest(name = "bits={0} group={1} sym={2} actOrder={3} static={4} blocksize={5}")
    @CsvSource({
        "4, -1, false, false, false, 128",
        "3, -1, true, false, false, 16",
        "2, -1, false, true, false, 32",
        "8, -1, false, false, false, 128",
        "4, 32, false, false, false, 32",
        "4, 16, false, false, false, 64",
        "4, 16, true, true, false, 64",
        "3, 32, false, true, true, 64",
        "4, 64, false, false, false, 16",
    })
    void matchesTheTextbookAlgorithm(
            int bits, int group, boolean sym, boolean actOrder, boolean staticGroups, int blocksize) {
        int rows = 24;
        int cols = 128;
        FloatMatrix w = weights(rows, cols, bits * 31L + group);
        float[] h = hessian(activations(300, cols, 7, 0));
        GptqConfig config = GptqConfig.defaults(bits)
                .withGroupSize(group)
                .withSym(sym)
                .withActOrder(actOrder)
                .withStaticGroups(staticGroups)
                .withBlocksize(blocksize);
        GptqResult fast = new Gptq(config, TWO).quantize(w, h);
        TextbookGptq slow = new TextbookGptq(w.array(), rows, cols, toDouble(h), config);
        QuantizedTensor t = fast.tensor();
        FloatMatrix q = t.dequantize();
        // Float32 (ours, like the reference) and double (the textbook) round differently by about 1e-6 of a weight. A
        // row may therefore take the other side of a near tie, and from there on its error feedback differs: each
        // row must agree exactly, or first differ at a value within 1e-3 of a step from a rounding boundary.
        int divergedRows = 0;
        for (int r = 0; r < rows; r++) {
            for (int col : slow.perm) {
                if (t.code(r, col) != slow.codes[r][col]) {
                    assertThat(slow.tieDistance[r][col])
                            .as(
                                    "row %d first differs at column %d: %d vs textbook %d",
                                    r, col, t.code(r, col), slow.codes[r][col])
                            .isLessThan(1e-3);
                    divergedRows++;
                    break;
                }
                assertThat((double) q.get(r, col)).isCloseTo(slow.q[r][col], within(1e-6));
            }
        }
        assertThat(divergedRows).as("rows that met a near tie").isLessThanOrEqualTo(rows / 8);
        if (divergedRows == 0) {
            assertThat(fast.loss()).isCloseTo(slow.loss, within(1e-4 * slow.loss));
        }
        assertThat(t.hasGIdx()).isEqualTo(group > 0 && actOrder && !staticGroups);
    }

    /** Every kernel is bit-exact against the scalar reference, so the whole algorithm is too, on any thread count. */
    @Test
    void scalarAndVectorKernelsAndThreadCountsGiveIdenticalResults() {
        FloatMatrix w = weights(200, 160, 3);
        float[] h = hessian(activations(400, 160, 4, 10));
        GptqConfig config = GptqConfig.defaults(4).withGroupSize(32).withActOrder(true);
        GptqResult scalar = new Gptq(config, ONE, Kernels.scalar()).quantize(w, h);
        GptqResult vector = new Gptq(config, TWO, Kernels.get()).quantize(w, h);
        assertThat(vector.tensor()).isEqualTo(scalar.tensor());
        assertThat(vector.loss()).isEqualTo(scalar.loss());
    }

    @ParameterizedTest(name = "outliers every {0}")
    @CsvSource({"0", "16"})
    void outputErrorIsBelowRoundToNearest(int outlierEvery) {
        int rows = 64;
        int cols = 256;
        FloatMatrix w = weights(rows, cols, 11);
        FloatMatrix x = activations(512, cols, 12, outlierEvery);
        for (int bits : new int[] {3, 4}) {
            for (int group : new int[] {-1, 64}) {
                GptqConfig config = GptqConfig.defaults(bits).withGroupSize(group);
                FloatMatrix gptq =
                        new Gptq(config, TWO).quantize(w, hessian(x)).tensor().dequantize();
                FloatMatrix rtn = new RtnQuantizer(config.scheme()).quantize(w).dequantize();
                double eGptq = ErrorMetrics.outputError(w, gptq, x);
                double eRtn = ErrorMetrics.outputError(w, rtn, x);
                assertThat(eGptq)
                        .as("bits=%d group=%d: GPTQ %.4g vs RTN %.4g", bits, group, eGptq, eRtn)
                        .isLessThan(0.8 * eRtn);
            }
        }
    }

    @Test
    void lossFallsAsBitsRise() {
        FloatMatrix w = weights(48, 128, 21);
        float[] h = hessian(activations(256, 128, 22, 0));
        double previous = Double.POSITIVE_INFINITY;
        for (int bits : new int[] {2, 3, 4, 5, 6, 8}) {
            double loss =
                    new Gptq(GptqConfig.defaults(bits), TWO).quantize(w, h).loss();
            assertThat(loss).as("bits=%d", bits).isLessThan(previous).isPositive();
            previous = loss;
        }
    }

    @Test
    void lossIsTheOutputErrorItPredictsForOneColumn() {
        // With one input feature, GPTQ is RTN and Hinv = 1/sqrt(H + damp): loss = sum (w - q)^2 (H + damp) / 2.
        FloatMatrix w = FloatMatrix.of("one", 3, 1, new float[] {0.3f, -0.7f, 1.1f}, 0);
        float[] h = {2.5f};
        GptqResult result = new Gptq(GptqConfig.defaults(4), ONE).quantize(w, h);
        FloatMatrix q = result.tensor().dequantize();
        double expected = 0;
        for (int r = 0; r < 3; r++) {
            double d = w.get(r, 0) - q.get(r, 0);
            expected += d * d * (2.5 * 1.01) / 2;
        }
        assertThat(result.loss()).isCloseTo(expected, within(1e-6 * Math.max(expected, 1e-12)));
    }

    @Test
    void deadColumnsAreZeroedAsTheReferenceDoes() {
        int cols = 64;
        FloatMatrix x = activations(200, cols, 5, 0);
        for (int t = 0; t < x.rows(); t++) {
            x.array()[t * cols + 10] = 0f; // feature 10 is never activated
            x.array()[t * cols + 40] = 0f;
        }
        FloatMatrix w = weights(16, cols, 6);
        GptqResult result = new Gptq(GptqConfig.defaults(4).withGroupSize(16), TWO).quantize(w, hessian(x));
        assertThat(result.diagnostics().deadColumns()).isEqualTo(2);
        assertThat(result.diagnostics().diagMin()).isZero();
        FloatMatrix q = result.tensor().dequantize();
        for (int r = 0; r < 16; r++) {
            assertThat(q.get(r, 10)).isZero();
            assertThat(q.get(r, 40)).isZero();
        }
    }

    @Test
    void allZeroCalibrationIsAClearErrorNamingTheLayer() {
        // the reference would zero the whole weight (every column dead) and report success: a silent zero model
        FloatMatrix x = FloatMatrix.zeros("x", 10, 32);
        FloatMatrix w = weights(8, 32, 9).named("fc1");
        assertThatThrownBy(() -> new Gptq(GptqConfig.defaults(4), ONE).quantize(w, hessian(x)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("GPTQ layer 'fc1': the calibration data is empty for this layer: all 32 input features are"
                        + " zero in every calibration token (diag(H) == 0)");
    }

    @Test
    void notPositiveDefiniteAfterEveryDampingIsAClearError() {
        int n = 8;
        float[] h = new float[n * n];
        for (int i = 0; i < n; i++) {
            h[i * n + i] = 1f;
        }
        h[0 * n + 1] = 5f; // |off-diagonal| far above the diagonal: indefinite even with damping 1
        h[1 * n + 0] = 5f;
        FloatMatrix w = weights(4, n, 1);
        assertThatThrownBy(() -> new Gptq(GptqConfig.defaults(4), ONE).quantize(w, h))
                .isInstanceOf(HessianNotPositiveDefiniteException.class)
                .hasMessageContaining("layer 'layer'")
                .hasMessageContaining("[0.01, 0.1, 1.0]")
                .hasMessageContaining("diag(H) min 1.0 max 1.0")
                .hasMessageContaining("0 dead columns");
    }

    @Test
    void dampingIsRaisedUntilTheFactorisationSucceeds() {
        int n = 8;
        float[] h = new float[n * n];
        for (int i = 0; i < n; i++) {
            h[i * n + i] = 1f;
        }
        h[0 * n + 1] = 1.05f; // eigenvalue -0.05: fails at 0.01, succeeds at 0.1
        h[1 * n + 0] = 1.05f;
        GptqResult result = new Gptq(GptqConfig.defaults(4), ONE).quantize(weights(4, n, 2), h);
        assertThat(result.diagnostics().dampings()).containsExactly(0.01, 0.1);
        assertThat(result.diagnostics().damping()).isEqualTo(0.1);
    }

    @Test
    void badInputsAreClearErrors() {
        FloatMatrix w = weights(4, 16, 1);
        float[] h = hessian(activations(50, 16, 2, 0));
        Gptq gptq = new Gptq(GptqConfig.defaults(4), ONE);
        float[] nan = h.clone();
        nan[5 * 16 + 3] = Float.NaN; // lower triangle: the only one read
        assertThatThrownBy(() -> gptq.quantize(w, nan))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("1 NaN or infinite entries, the first at [5, 3]");
        assertThatThrownBy(() -> gptq.quantize(w, new float[15 * 15]))
                .hasMessageContaining("has 225 entries, [16, 16] needs 256");
        assertThatThrownBy(() -> new Gptq(GptqConfig.defaults(4).withGroupSize(5), ONE).quantize(w, h))
                .hasMessageContaining("group size 5 does not divide the column count 16");
        FloatMatrix bad = weights(4, 16, 1);
        bad.array()[2 * 16 + 7] = Float.POSITIVE_INFINITY;
        assertThatThrownBy(() -> gptq.quantize(bad, h)).hasMessageContaining("at [2, 7]");
        assertThatThrownBy(() -> GptqConfig.defaults(9)).hasMessageContaining("bits");
        assertThatThrownBy(() -> GptqConfig.defaults(4).withGroupSize(0)).hasMessageContaining("group size");
        assertThatThrownBy(() -> GptqConfig.defaults(4).withPercdamp(0)).hasMessageContaining("percdamp");
        assertThatThrownBy(() -> GptqConfig.defaults(4).withPercdamp(Double.NaN))
                .hasMessageContaining("percdamp");
        assertThatThrownBy(() -> GptqConfig.defaults(4).withBlocksize(0))
                .hasMessageContaining("blocksize must be positive, got 0");
    }

    @Test
    void hessianIsTwoOverNTimesXtX() {
        int cols = 37;
        FloatMatrix x1 = activations(300, cols, 1, 5);
        FloatMatrix x2 = activations(77, cols, 2, 0);
        HessianAccumulator acc = new HessianAccumulator("l", cols, TWO);
        acc.add(x1);
        acc.add(x2);
        assertThat(acc.samples()).isEqualTo(377);
        float[] h = acc.hessian();
        for (int i = 0; i < cols; i++) {
            for (int j = 0; j < cols; j++) {
                double s = 0;
                double mag = 0;
                for (FloatMatrix x : new FloatMatrix[] {x1, x2}) {
                    for (int t = 0; t < x.rows(); t++) {
                        s += (double) x.get(t, i) * x.get(t, j);
                        mag += Math.abs((double) x.get(t, i) * x.get(t, j));
                    }
                }
                assertThat((double) h[i * cols + j]).isCloseTo(2 * s / 377, within(2e-6 * mag));
                assertThat(h[i * cols + j]).isEqualTo(h[j * cols + i]);
            }
        }
        // the reference's count of samples (sequences) scales H, nothing else
        HessianAccumulator bySequence = new HessianAccumulator("l", cols, TWO);
        bySequence.add(x1, 3);
        bySequence.add(x2, 1);
        assertThat(bySequence.hessian()[5]).isCloseTo(h[5] * 377 / 4, within(Math.abs(h[5]) * 1e-5f));
    }

    @Test
    void outputErrorFromTheHessianMatchesTheDirectSum() {
        FloatMatrix x = activations(200, 48, 3, 0);
        FloatMatrix w = weights(20, 48, 4);
        HessianAccumulator acc = new HessianAccumulator("layer", 48, TWO);
        acc.add(x);
        GptqResult result = new Gptq(GptqConfig.defaults(3), TWO).quantize(w, acc);
        FloatMatrix q = result.tensor().dequantize();
        double direct = ErrorMetrics.outputError(w, q, x);
        assertThat(acc.outputError(w, q)).isCloseTo(direct, within(1e-4 * direct));

        // from a bare H = (2 / n) X^T X: the same error per token
        GptqResult bare = new Gptq(GptqConfig.defaults(3), ONE).quantize(w, acc.hessian());
        assertThat(bare.tensor()).isEqualTo(result.tensor());
        assertThat(Gptq.outputError(w, q, acc.hessian())).isCloseTo(direct / 200, within(1e-4 * direct / 200));
        // shapes that do not fit are named
        assertThatThrownBy(() -> Gptq.outputError(w, q, new float[47 * 47]))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("H of 2209 entries");
        assertThatThrownBy(() -> Gptq.outputError(w, FloatMatrix.zeros("q", 19, 48), acc.hessian()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'q' [19, 48]");
    }

    @Test
    void accumulatorRejectsBadBatches() {
        HessianAccumulator acc = new HessianAccumulator("fc1", 16, ONE);
        assertThatThrownBy(() -> acc.add(activations(4, 15, 1, 0)))
                .hasMessageContaining("have 15 columns, layer 'fc1' has 16 input features");
        FloatMatrix nan = activations(4, 16, 1, 0);
        nan.array()[2 * 16 + 9] = Float.NaN;
        assertThatThrownBy(() -> acc.add(nan)).hasMessageContaining("NaN at [2, 9]");
        assertThat(acc.samples()).isZero();
        assertThatThrownBy(acc::hessian).hasMessageContaining("no calibration activations");
        assertThatThrownBy(() -> new HessianAccumulator("big", HessianAccumulator.MAX_COLUMNS + 1))
                .hasMessageContaining("must be in 1..46340");
    }

    /** 16384 input features: H has 2^28 entries; the indexing must not overflow. */
    @Test
    void accumulatesSixteenThousandFeatures() {
        int cols = 16384;
        float[] x = new float[2 * cols];
        x[cols - 1] = 2f; // token 0, last feature
        x[3] = 1f;
        x[cols + cols - 1] = 3f; // token 1, last feature
        HessianAccumulator acc = new HessianAccumulator("wide", cols, TWO);
        acc.add(FloatMatrix.of("x", 2, cols, x, 0));
        // read in place: a copy of 2^28 entries is left to the smaller tests
        assertThat(acc.entry(cols - 1, cols - 1)).isEqualTo((4f + 9f) * 2 / 2);
        assertThat(acc.entry(cols - 1, 3)).isEqualTo(2f);
        assertThat(acc.entry(3, cols - 1)).isEqualTo(2f);
        assertThat(acc.entry(3, 3)).isEqualTo(1f);
        assertThat(acc.entry(cols - 2, 3)).isZero();
    }

    @Test
    void schemeAndGroupIndexFollowTheConfig() {
        FloatMatrix w = weights(8, 64, 5);
        float[] h = hessian(activations(100, 64, 6, 0));
        QuantizedTensor t = new Gptq(GptqConfig.defaults(4).withGroupSize(16).withActOrder(true), ONE)
                .quantize(w, h)
                .tensor();
        assertThat(t.scheme()).isEqualTo(LinearScheme.asym(4, 16));
        int[] gIdx = t.gIdx();
        int[] perGroup = new int[4];
        for (int g : gIdx) {
            perGroup[g]++;
        }
        assertThat(perGroup).containsExactly(16, 16, 16, 16);
    }
}
