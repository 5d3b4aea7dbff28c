package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.model.RopeLayout;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.BlockAwq.FoldedBlock;
import dev.quant4j.pipeline.BlockAwq.Scale;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Result;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * llm-awq's block-level AWQ on Llama blocks: the folding leaves the FP32 block's function unchanged, the searches are
 * the ones llm-awq makes for a Llama block (v to o only when their shapes match), and on stories260K the folded,
 * quantized model beats round-to-nearest.
 */
class BlockAwqTest {

    static LlamaDecoder stories;
    static List<int[]> calibration;
    static List<int[]> evaluation;

    @BeforeAll
    static void load() throws Exception {
        Path bin = Path.of(
                BlockAwqTest.class.getResource("/stories260K/stories260K.bin").toURI());
        stories = LlamaDecoder.fromLlama2c(Llama2cCheckpoint.read(bin), Pools.TWO);
        calibration = TokenSampler.sample(stories, 16, 128, 1, 1.0, 1);
        evaluation = TokenSampler.sample(stories, 8, 128, 1, 1.0, 2);
    }

    /** A random decoder whose v_proj and o_proj have one shape (no grouped-query attention, qDim = dim). */
    static LlamaDecoder multiHead(int seed) {
        LlamaConfig c = new LlamaConfig(32, 48, 2, 4, 4, 8, 40, 64, 10000, 1e-5, RopeLayout.INTERLEAVED, true);
        Random r = new Random(seed);
        Map<String, FloatMatrix> t = new LinkedHashMap<>();
        t.put(LlamaDecoder.EMBED_TOKENS, random(LlamaDecoder.EMBED_TOKENS, c.vocabSize(), c.dim(), r, 1));
        t.put(LlamaDecoder.FINAL_NORM, ones(LlamaDecoder.FINAL_NORM, c.dim(), r));
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".";
            t.put(LlamaDecoder.inputLayernorm(l), ones(LlamaDecoder.inputLayernorm(l), c.dim(), r));
            t.put(LlamaDecoder.postAttentionLayernorm(l), ones(LlamaDecoder.postAttentionLayernorm(l), c.dim(), r));
            for (String n : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")) {
                t.put(p + n + ".weight", random(p + n + ".weight", c.dim(), c.dim(), r, 0.3));
            }
            // v has a bias (as Qwen2's does): scale_fc_fc divides it too
            t.put(p + "self_attn.v_proj.bias", random(p + "self_attn.v_proj.bias", 1, c.dim(), r, 0.3));
            t.put(p + "mlp.gate_proj.weight", random(p + "mlp.gate_proj.weight", c.hiddenDim(), c.dim(), r, 0.3));
            t.put(p + "mlp.up_proj.weight", random(p + "mlp.up_proj.weight", c.hiddenDim(), c.dim(), r, 0.3));
            t.put(p + "mlp.down_proj.weight", random(p + "mlp.down_proj.weight", c.dim(), c.hiddenDim(), r, 0.3));
        }
        return LlamaDecoder.of("multi-head", c, t, Pools.TWO);
    }

    static FloatMatrix random(String name, int rows, int cols, Random r, double scale) {
        float[] a = new float[rows * cols];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (r.nextGaussian() * scale);
        }
        return FloatMatrix.of(name, rows, cols, a, 0);
    }

    static FloatMatrix ones(String name, int n, Random r) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (0.5 + r.nextDouble());
        }
        return FloatMatrix.of(name, 1, n, a, 0);
    }

    static float[] positive(int n, Random r) {
        float[] s = new float[n];
        for (int i = 0; i < n; i++) {
            s[i] = (float) Math.exp(r.nextGaussian()); // spans about 0.05 to 20
        }
        return s;
    }

    static double maxAbsDiff(FloatMatrix a, FloatMatrix b) {
        double m = 0;
        for (int i = 0; i < a.rows(); i++) {
            for (int j = 0; j < a.cols(); j++) {
                m = Math.max(m, Math.abs(a.get(i, j) - b.get(i, j)));
            }
        }
        return m;
    }

    static double maxAbs(FloatMatrix a) {
        double m = 0;
        for (float v : a.toArray()) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    /** The scales_list llm-awq's auto_scale_block makes for a Llama block, with random positive scales. */
    static List<Scale> randomScales(LlamaDecoder m, int b, boolean vToO, Random r) {
        String p = "model.layers." + b + ".";
        int dim = m.config().dim();
        List<Scale> list = new ArrayList<>();
        list.add(new Scale(
                LlamaDecoder.inputLayernorm(b),
                true,
                List.of(p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"),
                positive(dim, r),
                0));
        if (vToO) {
            list.add(new Scale(
                    p + "self_attn.v_proj",
                    false,
                    List.of(p + "self_attn.o_proj"),
                    positive(m.config().qDim(), r),
                    0));
        }
        list.add(new Scale(
                LlamaDecoder.postAttentionLayernorm(b),
                true,
                List.of(p + "mlp.gate_proj", p + "mlp.up_proj"),
                positive(dim, r),
                0));
        list.add(new Scale(
                p + "mlp.up_proj",
                false,
                List.of(p + "mlp.down_proj"),
                positive(m.config().hiddenDim(), r),
                0));
        return list;
    }

    @Test
    void foldingLeavesTheFp32BlockUnchanged() {
        Random r = new Random(5);
        for (LlamaDecoder m : List.of(stories, multiHead(3))) {
            boolean vToO = m != stories;
            int[] seq = TokenSampler.sample(m, 1, 40, 1, 1.0, 4).get(0);
            FloatMatrix h = m.embed(seq);
            for (int b = 0; b < m.config().layers(); b++) {
                FoldedBlock f = BlockAwq.applyScale(m, b, randomScales(m, b, vToO, r));
                LlamaDecoder folded = f.apply(m, Pools.TWO);
                FloatMatrix expected = m.block(b, h, null);
                FloatMatrix actual = folded.block(b, h, null);
                // scales up to ~20x either way: float rounding of the products, relative to the outputs
                assertThat(maxAbsDiff(expected, actual)).as("%s block %d", m, b).isLessThan(2e-5 * maxAbs(expected));
                // the norm weights and the producing layers changed
                assertThat(f.norms().get(LlamaDecoder.inputLayernorm(b)))
                        .isNotEqualTo(m.normWeight(LlamaDecoder.inputLayernorm(b)));
                if (vToO) {
                    assertThat(f.biases().get("model.layers." + b + ".self_attn.v_proj"))
                            .isNotNull();
                }
                h = expected;
            }
        }
    }

    @Test
    void theSearchesAreLlmAwqsForALlamaBlock() {
        BlockAwq awq = new BlockAwq(new DecoderQuantizer(setting(), Pools.TWO), 4, Pools.TWO);
        for (LlamaDecoder m : List.of(stories, multiHead(7))) {
            List<int[]> seqs = TokenSampler.sample(m, 4, 48, 1, 1.0, 1);
            List<FloatMatrix> inps = new ArrayList<>();
            for (int[] s : seqs) {
                inps.add(m.embed(s));
            }
            DecoderQuantizer dq = new DecoderQuantizer(setting(), Pools.TWO);
            Map<String, FloatMatrix[]> feat = dq.tapped(m, 0, inps, new LinkedHashSet<>(names(m)));
            List<Scale> list = awq.autoScaleBlock(m, 0, feat);
            List<String> prev = list.stream().map(Scale::prevOp).toList();
            if (m == stories) {
                // grouped-query attention: v_proj [32, 64], o_proj [64, 64]: no v -> o scale
                assertThat(prev)
                        .containsExactly(
                                "model.layers.0.input_layernorm.weight",
                                "model.layers.0.post_attention_layernorm.weight",
                                "model.layers.0.mlp.up_proj");
            } else {
                assertThat(prev)
                        .containsExactly(
                                "model.layers.0.input_layernorm.weight",
                                "model.layers.0.self_attn.v_proj",
                                "model.layers.0.post_attention_layernorm.weight",
                                "model.layers.0.mlp.up_proj");
            }
            for (Scale s : list) {
                float max = 0;
                float min = Float.POSITIVE_INFINITY;
                for (float v : s.scales()) {
                    max = Math.max(max, v);
                    min = Math.min(min, v);
                }
                // normalised by sqrt(max * min)
                assertThat((double) max * min).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-5));
            }
        }
    }

    @Test
    void clippingLeavesQAndKAlone() {
        BlockAwq awq = new BlockAwq(new DecoderQuantizer(setting(), Pools.TWO), 4, Pools.TWO);
        List<FloatMatrix> inps = new ArrayList<>();
        for (int[] s : calibration.subList(0, 4)) {
            inps.add(stories.embed(s));
        }
        DecoderQuantizer dq = new DecoderQuantizer(setting(), Pools.TWO);
        Map<String, FloatMatrix[]> feat = dq.tapped(stories, 0, inps, new LinkedHashSet<>(names(stories)));
        FoldedBlock scaled = BlockAwq.applyScale(stories, 0, awq.autoScaleBlock(stories, 0, feat));
        FoldedBlock clipped = awq.autoClipBlock(scaled, feat);
        for (String n : names(stories)) {
            float[] before = scaled.weights().get(n).toArray();
            float[] after = clipped.weights().get(n).toArray();
            if (n.endsWith("q_proj") || n.endsWith("k_proj")) {
                assertThat(after).as(n).containsExactly(before);
            } else {
                // clipped somewhere at 4 bits, and only towards zero
                assertThat(after).as(n).isNotEqualTo(before);
                for (int i = 0; i < after.length; i++) {
                    assertThat(Math.abs(after[i])).isLessThanOrEqualTo(Math.abs(before[i]));
                }
            }
        }
    }

    @Test
    void theFoldedModelBeatsRoundToNearestAndKeepsNoInputScales() {
        Result rtn = new DecoderQuantizer(new Setting(Method.RTN, 4, 32, false, false), Pools.TWO)
                .quantize(stories, null, null);
        List<Integer> blocks = new ArrayList<>();
        Result awq = new DecoderQuantizer(setting(), Pools.TWO).quantize(stories, calibration, blocks::add);
        assertThat(blocks).containsExactly(1, 2, 3, 4, 5);
        double r = kl(rtn.model());
        double a = kl(awq.model());
        System.out.printf("stories260K 4-bit g32: RTN KL %.4f, AWQ block KL %.4f%n", r, a);
        // measured AWQ / RTN: 0.88 with the scalar and 128-bit kernels, 0.91 at 256 and 512 bits: the scale and clip
        // grid searches pick their argmin among near-ties, which float rounding in attention flips
        assertThat(a).isLessThan(0.95 * r);
        assertThat(awq.layers()).hasSize(35);
        for (QuantizedWeight w : awq.weights().values()) {
            assertThat(((QuantizedTensor) w).hasInputScales()).as(w.name()).isFalse();
        }
        // both norms of every block were folded, and are what the model runs on
        assertThat(awq.tensors()).hasSize(10);
        LlamaDecoder rebuilt = stories.withNormWeights(norms(awq));
        Map<String, dev.quant4j.model.Linear> q = new LinkedHashMap<>();
        for (QuantizedWeight w : awq.weights().values()) {
            String module = w.name().substring(0, w.name().length() - ".weight".length());
            q.put(
                    module,
                    dev.quant4j.model.Linear.quantized(
                            module, dev.quant4j.matmul.QuantizedLinear.of(w, null, Pools.TWO)));
        }
        int[] seq = evaluation.get(0);
        assertThat(rebuilt.withLinears(q).logits(seq).toArray())
                .containsExactly(awq.model().logits(seq).toArray());
    }

    static Map<String, float[]> norms(Result r) {
        Map<String, float[]> m = new LinkedHashMap<>();
        r.tensors().forEach((k, v) -> m.put(k, v.toArray()));
        return m;
    }

    static double kl(LlamaDecoder quantized) {
        NextTokenMetrics m = new NextTokenMetrics();
        for (int[] seq : evaluation) {
            m.add(seq, stories.logits(seq), quantized.logits(seq));
        }
        return m.summary().klMean();
    }

    static Setting setting() {
        return new Setting(Method.AWQ_BLOCK, 4, 32, false, false);
    }

    static List<String> names(LlamaDecoder m) {
        return m.linears(0).stream().map(dev.quant4j.model.Linear::name).toList();
    }
}
