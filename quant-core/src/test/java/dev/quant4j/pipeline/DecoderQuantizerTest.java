package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Result;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.testing.Pools;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Whole-model quantization of stories260K, measured as llama.cpp measures it: KL divergence of the next-token
 * distribution to the FP32 model's, on sequences the FP32 model sampled itself (the model has no tokenizer here).
 * Calibration and evaluation sequences come from different seeds.
 */
class DecoderQuantizerTest {

    static LlamaDecoder fp32;
    static List<int[]> calibration;
    static List<int[]> evaluation;

    @BeforeAll
    static void load() throws Exception {
        Path bin = Path.of(DecoderQuantizerTest.class
                .getResource("/stories260K/stories260K.bin")
                .toURI());
        fp32 = LlamaDecoder.fromLlama2c(Llama2cCheckpoint.read(bin), Pools.TWO);
        calibration = TokenSampler.sample(fp32, 16, 128, 1, 1.0, 1);
        evaluation = TokenSampler.sample(fp32, 8, 128, 1, 1.0, 2);
    }

    static NextTokenMetrics.Summary kl(LlamaDecoder quantized) {
        NextTokenMetrics m = new NextTokenMetrics();
        for (int[] seq : evaluation) {
            m.add(seq, fp32.logits(seq), quantized.logits(seq));
        }
        return m.summary();
    }

    @Test
    void gptqBlockByBlockBeatsRoundToNearest() {
        Result rtn = new DecoderQuantizer(new Setting(Method.RTN, 4, 32, false, false), Pools.TWO)
                .quantize(fp32, null, null);
        List<Integer> blocks = new ArrayList<>();
        Result gptq = new DecoderQuantizer(new Setting(Method.GPTQ, 4, 32, false, true), Pools.TWO)
                .quantize(fp32, calibration, blocks::add);
        assertThat(blocks).containsExactly(1, 2, 3, 4, 5);
        NextTokenMetrics.Summary r = kl(rtn.model());
        NextTokenMetrics.Summary g = kl(gptq.model());
        System.out.printf(
                "stories260K 4-bit g32: RTN KL %.4f top1 %.3f ppl %.3f; GPTQ KL %.4f top1 %.3f ppl %.3f (FP32 ppl %.3f)%n",
                r.klMean(), r.top1(), r.pplQuantized(), g.klMean(), g.top1(), g.pplQuantized(), r.pplReference());
        // measured 0.72-0.77x RTN's KL with 16 to 64 sequences (docs/decoders.md); 0.8x leaves room for float noise
        assertThat(g.klMean()).isLessThan(0.8 * r.klMean());
        assertThat(g.top1()).isGreaterThan(r.top1());
        // 7 linears per block, each reported; down_proj's 172 columns are not a multiple of 32: per channel
        assertThat(gptq.layers()).hasSize(35);
        LayerReport down = gptq.layers().get(6);
        assertThat(down.name()).isEqualTo("model.layers.0.mlp.down_proj");
        assertThat(down.scheme()).contains("per-channel");
        assertThat(((QuantizedTensor) gptq.weights().get("model.layers.0.mlp.down_proj.weight"))
                        .scheme()
                        .groupSize())
                .isEqualTo(LinearScheme.PER_CHANNEL);
        for (LayerReport l : gptq.layers()) {
            // the kept weight is never worse than RTN on the calibration activations
            assertThat(Math.min(l.gptqError(), l.rtnError())).isLessThanOrEqualTo(l.rtnError());
            assertThat(l.keptRtn()).isEqualTo(l.rtnError() < l.gptqError());
        }
        assertThat(gptq.bitsPerWeight()).isBetween(4.0, 6.0);
    }

    @Test
    void gptqWithTheRangeSearchRemovesAQuarterOfRoundToNearestsLoss() {
        Result rtn = new DecoderQuantizer(new Setting(Method.RTN, 4, 32, false, false), Pools.TWO)
                .quantize(fp32, null, null);
        Setting setting = new Setting(Method.GPTQ, 4, 32, false, true).withMse(true);
        assertThat(setting.label()).isEqualTo("GPTQ int4 g32 act-order mse");
        Result gptq = new DecoderQuantizer(setting, Pools.TWO).quantize(fp32, calibration, null);
        NextTokenMetrics.Summary r = kl(rtn.model());
        NextTokenMetrics.Summary g = kl(gptq.model());
        System.out.printf(
                "stories260K 4-bit g32: RTN KL %.4f; GPTQ act-order mse KL %.4f (%.3fx)%n",
                r.klMean(), g.klMean(), g.klMean() / r.klMean());
        // measured 0.749x here (16 calibration sequences, at 128-, 256- and 512-bit vectors) and 0.717-0.719x with
        // quant eval's 64 (docs/decoders.md); without the range search the same setting gives 0.772x here
        // (gptqBlockByBlockBeatsRoundToNearest), which this bound tells apart
        assertThat(g.klMean()).isLessThan(0.76 * r.klMean());
        assertThatThrownBy(() -> new Setting(Method.RTN, 4, 32, false, false, true))
                .hasMessageContaining("the range search (mse) is GPTQ's, not rtn's");
    }

    @Test
    void awqBeatsRoundToNearest() {
        Result rtn = new DecoderQuantizer(new Setting(Method.RTN, 4, 32, false, false), Pools.TWO)
                .quantize(fp32, null, null);
        Result awq = new DecoderQuantizer(new Setting(Method.AWQ, 4, 32, false, false), Pools.TWO)
                .quantize(fp32, calibration, null);
        NextTokenMetrics.Summary r = kl(rtn.model());
        NextTokenMetrics.Summary a = kl(awq.model());
        System.out.printf("stories260K 4-bit g32: RTN KL %.4f, AWQ KL %.4f%n", r.klMean(), a.klMean());
        // measured 0.88x with 64 calibration sequences (docs/decoders.md)
        assertThat(a.klMean()).isLessThan(0.95 * r.klMean());
        assertThat(awq.layers()).hasSize(35);
        assertThat(awq.layers().get(6).scheme()).contains("per-channel");
        assertThatThrownBy(() -> new Setting(Method.AWQ, 4, 32, true, false)).hasMessageContaining("AWQ is asymmetric");
    }

    @Test
    void eightBitsIsNearlyLossless() {
        Result q8 = new DecoderQuantizer(new Setting(Method.RTN, 8, LinearScheme.PER_CHANNEL, false, false), Pools.TWO)
                .quantize(fp32, null, null);
        NextTokenMetrics.Summary s = kl(q8.model());
        // measured 0.024 nats and 0.88: a tiny model sampled at temperature 1 has many near-ties for first place
        assertThat(s.klMean()).isLessThan(0.05);
        assertThat(s.top1()).isGreaterThan(0.85);
    }

    @Test
    void resultsDoNotDependOnTheThreadCount() {
        Setting s = new Setting(Method.GPTQ, 4, 32, true, true);
        List<int[]> few = calibration.subList(0, 4);
        Result one =
                new DecoderQuantizer(s, Pools.ONE).quantize(LlamaDecoder.fromLlama2c(load1(), Pools.ONE), few, null);
        Result two = new DecoderQuantizer(s, Pools.TWO).quantize(fp32, few, null);
        int[] seq = evaluation.get(0);
        assertThat(one.model().logits(seq).toArray())
                .isEqualTo(two.model().logits(seq).toArray());
    }

    static Llama2cCheckpoint load1() {
        try {
            return Llama2cCheckpoint.read(Path.of(DecoderQuantizerTest.class
                    .getResource("/stories260K/stories260K.bin")
                    .toURI()));
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void gptqWithoutCalibrationIsAClearError() {
        assertThatThrownBy(() -> new DecoderQuantizer(new Setting(Method.GPTQ, 4, 32, false, false), Pools.ONE)
                        .quantize(fp32, List.of(), null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("GPTQ needs calibration sequences");
    }
}
