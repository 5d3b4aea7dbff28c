package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.awq.AutoClip;
import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.pipeline.QuantizedDecoderFile.Source;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * AWQ's block scales and clipping searched for ggml's block types ({@link DecoderQuantizer#awqFolded(LlamaDecoder,
 * List, GgmlType, java.util.function.IntConsumer)}), then ggml's reference quantizer: on stories260K closer to the FP32
 * model than ggml's quantizer alone into the same type.
 */
class GgufDecoderAwqTest {

    static DecoderQuantizer awqBlock() {
        return new DecoderQuantizer(new Setting(Method.AWQ_BLOCK, 4, 32, false, false), Pools.TWO);
    }

    static double kl(LlamaDecoder fp32, byte[] gguf, List<int[]> evaluation) {
        LlamaDecoder q = GgufDecoderFile.read(gguf, "q.gguf").decoder(Pools.TWO);
        NextTokenMetrics m = new NextTokenMetrics();
        for (int[] seq : evaluation) {
            m.add(seq, fp32.logits(seq), q.logits(seq));
        }
        return m.summary().klMean();
    }

    /**
     * Measured 0.908x with 16 calibration and 16 evaluation sequences of 128 tokens (q4_0: 0.916x); llm-awq's own
     * quantizer in the searches gave 1.041x (q4_0: 0.979x).
     */
    @ParameterizedTest
    @CsvSource({"q4_1, 0.95"})
    void awqSearchedForGgmlsBlocksBeatsGgmlsQuantizerAlone(String typeName, double bound) {
        GgmlType type = GgmlType.byName(typeName);
        Source source = GgufDecoderFileTest.source();
        LlamaDecoder fp32 = source.decoder(Pools.TWO);
        List<int[]> calibration = TokenSampler.sample(fp32, 16, 128, 1, 1.0, 1);
        List<int[]> evaluation = TokenSampler.sample(fp32, 16, 128, 1, 1.0, 2);
        Map<String, FloatMatrix> folded = awqBlock().awqFolded(fp32, calibration, type, null);
        assertThat(folded)
                .containsKeys("model.layers.0.self_attn.q_proj.weight", "model.layers.4.mlp.down_proj.weight")
                .containsKeys(
                        "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight");
        double rtn = kl(fp32, GgufDecoderFile.plan(source, type, false).writer().toBytes(), evaluation);
        double awq = kl(
                fp32,
                GgufDecoderFile.plan(source.with(folded), type, false).writer().toBytes(),
                evaluation);
        System.out.printf(
                Locale.ROOT,
                "stories260K %s: ggml's reference KL %.4f, AWQ searched for it %.4f (%.3fx)%n",
                type,
                rtn,
                awq,
                awq / rtn);
        assertThat(awq).isLessThan(bound * rtn);
    }

    /**
     * Per row and group the clipping keeps the first {@code m} with the smallest sampled output error: never worse
     * than no clipping ({@code m = max|w|}, the first candidate), recomputed here from its definition.
     */
    @Test
    void clippingNeverRaisesTheSampledOutputError() {
        Random r = new Random(11);
        int rows = 6;
        int cols = 64;
        int tokens = 40;
        float[] w = new float[rows * cols];
        float[] x = new float[tokens * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * (i % 17 == 0 ? 4 : 1));
        }
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        FloatMatrix wm = FloatMatrix.of("w", rows, cols, w, 0);
        FloatMatrix sample = FloatMatrix.of("x", tokens, cols, x, 0);
        GgmlType t = GgmlType.Q4_1;
        AutoClip.Clipped c = AutoClip.autoClipLayer(
                wm,
                sample,
                null,
                32,
                0.5,
                20,
                () -> (in, out) -> System.arraycopy(
                        GgmlQuants.dequantize(t, GgmlQuants.quantize(t, in, 1, 32), 1, 32), 0, out, 0, 32),
                Pools.TWO);
        float[] m = c.maxVal();
        int clippedGroups = 0;
        for (int row = 0; row < rows; row++) {
            for (int g = 0; g < 2; g++) {
                float[] group = new float[32];
                System.arraycopy(w, row * cols + g * 32, group, 0, 32);
                float orgMax = 0;
                for (float v : group) {
                    orgMax = Math.max(orgMax, Math.abs(v));
                }
                float best = m[row * 2 + g];
                assertThat(best).isBetween(orgMax * 0.5f, orgMax);
                clippedGroups += best < orgMax ? 1 : 0;
                assertThat(error(group, best, x, cols, g, t)).isLessThanOrEqualTo(error(group, orgMax, x, cols, g, t));
                for (int j = 0; j < 32; j++) {
                    assertThat(c.weight().get(row, g * 32 + j)).isEqualTo(Math.min(Math.max(group[j], -best), best));
                }
            }
        }
        assertThat(clippedGroups).isPositive();
    }

    /** {@code mean over tokens of (x . (w - Q(clamp(w, -m, m))))^2} for one group. */
    private static double error(float[] w, float m, float[] x, int cols, int g, GgmlType t) {
        float[] clamped = new float[32];
        for (int j = 0; j < 32; j++) {
            clamped[j] = Math.min(Math.max(w[j], -m), m);
        }
        float[] q = GgmlQuants.dequantize(t, GgmlQuants.quantize(t, clamped, 1, 32), 1, 32);
        int tokens = x.length / cols;
        double sum = 0;
        for (int tok = 0; tok < tokens; tok++) {
            double dot = 0;
            for (int j = 0; j < 32; j++) {
                dot += (double) x[tok * cols + g * 32 + j] * ((double) w[j] - q[j]);
            }
            sum += dot * dot;
        }
        return sum / tokens;
    }

    @Test
    void otherTypesAreRefusedByName() {
        Source source = GgufDecoderFileTest.source();
        LlamaDecoder fp32 = source.decoder(Pools.TWO);
        assertThatThrownBy(() -> awqBlock().awqFolded(fp32, List.of(new int[] {1, 2}), GgmlType.Q4_K, null))
                .hasMessage("AWQ into GGUF searches for ggml's 32-value blocks: q4_0, q4_1, q5_0, q5_1 or q8_0, not"
                        + " q4_K");
    }
}
