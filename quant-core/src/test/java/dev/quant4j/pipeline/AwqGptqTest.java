package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class AwqGptqTest {

    private static final ForkJoinPool TWO = new ForkJoinPool(2);

    static float[] hessian(FloatMatrix x) {
        HessianAccumulator acc = new HessianAccumulator("layer", x.cols(), TWO);
        acc.add(x);
        return acc.hessian();
    }

    /** mean |x| per column, as get_act_scale. */
    static float[] meanAbs(FloatMatrix x) {
        AwqStatistics s = new AwqStatistics("layer", x.cols(), x.rows());
        s.add(x);
        return s.meanAbs();
    }

    static FloatMatrix weights(int rows, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (0.05 * r.nextGaussian());
        }
        return FloatMatrix.of("layer", rows, cols, w, 0);
    }

    /** Activations whose every {@code every}-th channel is {@code boost} times larger. */
    static FloatMatrix activations(int n, int cols, long seed, int every, double boost) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n * cols];
        for (int t = 0; t < n; t++) {
            for (int c = 0; c < cols; c++) {
                double v = r.nextGaussian();
                x[t * cols + c] = (float) (c % every == 1 ? boost * v : v);
            }
        }
        return FloatMatrix.of("x", n, cols, x, 0);
    }

    /**
     * With llm-awq's candidates, ratio 0 is s = 1 and the Hessian unchanged: plain GPTQ, to the bit. The search keeps
     * the smallest of its losses, so the combination's output error never exceeds GPTQ alone's on the same H.
     */
    @ParameterizedTest(name = "bits={0} group={1} actOrder={2} seed={3}")
    @CsvSource({
        "4, 32, false, 1",
        "4, 32, true, 2",
        "3, 64, true, 3",
        "4, -1, false, 4",
        "2, 32, false, 5",
        "4, 64, true, 6"
    })
    void neverWorseThanGptqAloneOnItsHessian(int bits, int group, boolean actOrder, long seed) {
        FloatMatrix w = weights(48, 128, seed);
        FloatMatrix x = activations(700, 128, seed + 100, 8, 20);
        float[] h = hessian(x);
        GptqConfig gptq = GptqConfig.defaults(bits).withGroupSize(group).withActOrder(actOrder);
        AwqGptq.Result r = new AwqGptq(AwqConfig.defaults(bits), gptq, TWO).quantize(w, meanAbs(x), h);

        QuantizedTensor alone = new Gptq(gptq, TWO).quantize(w, h).tensor();
        double aloneError = Gptq.outputError(w, alone.dequantize(), h);
        assertThat(r.lossCurve()[0]).isEqualTo(aloneError);
        assertThat(r.loss()).isLessThanOrEqualTo(aloneError);
        // the reported loss is the output error of the tensor returned, and the smallest of the curve
        assertThat(r.loss()).isEqualTo(Gptq.outputError(w, r.tensor().dequantize(), h));
        assertThat(r.loss()).isEqualTo(Arrays.stream(r.lossCurve()).min().orElseThrow());
        assertThat(r.alpha()).isEqualTo(indexOfFirstMin(r.lossCurve()) / 20.0);
    }

    /** The tensor is GPTQ run on W * s with the Hessian of X / s, carrying s: the definition, recomputed. */
    @Test
    void theTensorIsGptqOfTheScaledWeightWithTheScaledHessian() {
        FloatMatrix w = weights(32, 128, 7);
        FloatMatrix x = activations(600, 128, 8, 16, 30);
        float[] h = hessian(x);
        GptqConfig gptq = GptqConfig.defaults(4).withGroupSize(32).withActOrder(true);
        AwqGptq.Result r = new AwqGptq(AwqConfig.defaults(4), gptq, TWO).quantize(w, meanAbs(x), h);
        assertThat(r.alpha()).as("outlier channels: a positive ratio wins").isPositive();
        float[] s = r.scales();
        assertThat(s).isEqualTo(Awq.scales(meanAbs(x), r.alpha()));
        QuantizedTensor expected = new Gptq(gptq, TWO)
                .quantize(Awq.scale(w, s), AwqGptq.scaledHessian(h, s))
                .tensor()
                .withInputScales(s);
        assertThat(r.tensor()).isEqualTo(expected);
        assertThat(r.tensor().inputScales()).isEqualTo(s);
    }

    /** diag(1 / s) H diag(1 / s) is the Hessian of the inputs divided by s, channel by channel. */
    @Test
    void theScaledHessianIsTheHessianOfTheScaledInputs() {
        FloatMatrix x = activations(300, 24, 9, 4, 10);
        float[] s = Awq.scales(meanAbs(x), 0.7);
        FloatMatrix xs = FloatMatrix.zeros("xs", x.rows(), x.cols());
        for (int t = 0; t < x.rows(); t++) {
            for (int c = 0; c < x.cols(); c++) {
                xs.array()[t * x.cols() + c] = x.get(t, c) / s[c];
            }
        }
        float[] direct = hessian(xs);
        float[] scaled = AwqGptq.scaledHessian(hessian(x), s);
        for (int i = 0; i < direct.length; i++) {
            assertThat((double) scaled[i])
                    .as("entry %d", i)
                    .isCloseTo(direct[i], org.assertj.core.api.Assertions.within(2e-5 * (1 + Math.abs(direct[i]))));
        }
    }

    /** On a layer whose inputs have channels 30 times larger, the scales help GPTQ: a clearly smaller output error. */
    @Test
    void outlierChannelsMakeItBetterThanGptqAlone() {
        FloatMatrix w = weights(64, 256, 11);
        FloatMatrix x = activations(1024, 256, 12, 16, 30);
        float[] h = hessian(x);
        GptqConfig gptq = GptqConfig.defaults(3).withGroupSize(64);
        AwqGptq.Result r = new AwqGptq(AwqConfig.defaults(3), gptq, TWO).quantize(w, meanAbs(x), h);
        double alone =
                Gptq.outputError(w, new Gptq(gptq, TWO).quantize(w, h).tensor().dequantize(), h);
        assertThat(r.loss()).as("AWQ+GPTQ %.4g, GPTQ %.4g", r.loss(), alone).isLessThan(0.9 * alone);
    }

    @Test
    void mismatchedWidthsAreRefused() {
        FloatMatrix w = weights(4, 16, 1);
        AwqGptq q = new AwqGptq(AwqConfig.defaults(4), GptqConfig.defaults(4), TWO);
        assertThatThrownBy(() -> q.quantize(w, new float[15], new float[256]))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("weight 'layer' has 16 input features, x_mean has 15 and H 256 entries");
    }

    private static int indexOfFirstMin(double[] a) {
        int best = 0;
        for (int i = 1; i < a.length; i++) {
            if (a[i] < a[best]) {
                best = i;
            }
        }
        return best;
    }
}
