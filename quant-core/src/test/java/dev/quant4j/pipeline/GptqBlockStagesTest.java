package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.model.Linear;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.RopeLayout;
import dev.quant4j.pipeline.DecoderGptq.LayerQuantizer;
import dev.quant4j.pipeline.DecoderGptq.Quantized;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * GPTQ's block loop, which runs each part of a block once per true-sequential group and keeps the activations the
 * later groups read ({@link DecoderGptq#block}), against the loop it replaced, kept here as the reference
 * ({@link #reference}): for each group the block run forward from its input up to the group's input ({@link
 * DecoderQuantizer#forEachInput}), then the whole quantized block for the next block's input ({@link
 * DecoderQuantizer#outputs}). Stored weights, reports and the next block's inputs must be the same bits, with one and
 * two threads and with rounds of one or a few sequences.
 */
class GptqBlockStagesTest {

    /** 4 query heads of 12 over 2 key/value heads (so q is wider than the hidden size), q and k with a bias. */
    static final LlamaConfig CONFIG =
            new LlamaConfig(32, 72, 2, 4, 2, 12, 50, 64, 10000, 1e-5, RopeLayout.HALF_SPLIT, true);

    static LlamaDecoder decoder(long seed, ForkJoinPool pool) {
        LlamaConfig c = CONFIG;
        Random r = new Random(seed);
        Map<String, FloatMatrix> t = new LinkedHashMap<>();
        t.put(LlamaDecoder.EMBED_TOKENS, random(LlamaDecoder.EMBED_TOKENS, c.vocabSize(), c.dim(), r, 1));
        t.put(LlamaDecoder.FINAL_NORM, norm(LlamaDecoder.FINAL_NORM, c.dim(), r));
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".";
            t.put(LlamaDecoder.inputLayernorm(l), norm(LlamaDecoder.inputLayernorm(l), c.dim(), r));
            t.put(LlamaDecoder.postAttentionLayernorm(l), norm(LlamaDecoder.postAttentionLayernorm(l), c.dim(), r));
            put(t, p + "self_attn.q_proj.weight", c.qDim(), c.dim(), r);
            put(t, p + "self_attn.q_proj.bias", 1, c.qDim(), r);
            put(t, p + "self_attn.k_proj.weight", c.kvDim(), c.dim(), r);
            put(t, p + "self_attn.k_proj.bias", 1, c.kvDim(), r);
            put(t, p + "self_attn.v_proj.weight", c.kvDim(), c.dim(), r);
            put(t, p + "self_attn.o_proj.weight", c.dim(), c.qDim(), r);
            put(t, p + "mlp.gate_proj.weight", c.hiddenDim(), c.dim(), r);
            put(t, p + "mlp.up_proj.weight", c.hiddenDim(), c.dim(), r);
            put(t, p + "mlp.down_proj.weight", c.dim(), c.hiddenDim(), r);
        }
        return LlamaDecoder.of("gqa", c, t, pool);
    }

    private static void put(Map<String, FloatMatrix> t, String name, int rows, int cols, Random r) {
        t.put(name, random(name, rows, cols, r, 0.3));
    }

    private static FloatMatrix random(String name, int rows, int cols, Random r, double scale) {
        float[] a = new float[rows * cols];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (r.nextGaussian() * scale);
        }
        return FloatMatrix.of(name, rows, cols, a, 0);
    }

    /** An RMSNorm weight: values in [0.5, 1.5). */
    private static FloatMatrix norm(String name, int n, Random r) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (0.5 + r.nextDouble());
        }
        return FloatMatrix.of(name, 1, n, a, 0);
    }

    /**
     * Five sequences: the first 40 tokens long (what the reference's rounds are sized by), one of 12 (below {@code
     * Linear.Dense}'s matrix-product threshold, so its products are dot products), one of 33.
     */
    static List<int[]> calibration(long seed) {
        Random r = new Random(seed);
        List<int[]> seqs = new ArrayList<>();
        for (int length : new int[] {40, 40, 12, 33, 40}) {
            seqs.add(r.ints(length, 0, CONFIG.vocabSize()).toArray());
        }
        return seqs;
    }

    static Stream<Arguments> cases() {
        long twoDown = 2L * Float.BYTES * CONFIG.hiddenDim() * 40; // two sequences a round for down, three for o
        return Stream.of(
                Arguments.of(1, DecoderQuantizer.TAP_BYTES, new Setting(Method.GPTQ, 4, 16, false, false)),
                Arguments.of(2, DecoderQuantizer.TAP_BYTES, new Setting(Method.GPTQ, 4, 16, false, true)),
                Arguments.of(2, 1L, new Setting(Method.GPTQ, 3, 16, true, true)),
                Arguments.of(1, 1L, new Setting(Method.GPTQ, 4, 16, false, true)),
                Arguments.of(2, twoDown, new Setting(Method.GPTQ, 4, 16, false, false).withMse(true)),
                Arguments.of(1, twoDown, new Setting(Method.GPTQ, 2, LinearScheme.PER_CHANNEL, true, false)));
    }

    @ParameterizedTest(name = "{0} threads, rounds of {1} bytes, {2}")
    @MethodSource("cases")
    void equalsTheForwardPassPerGroup(int threads, long tapBytes, Setting setting) {
        ForkJoinPool pool = threads == 1 ? Pools.ONE : Pools.TWO;
        LlamaDecoder model = decoder(7, pool);
        DecoderQuantizer dq = new DecoderQuantizer(setting, pool, tapBytes);
        List<FloatMatrix> states = new ArrayList<>();
        for (int[] seq : calibration(11)) {
            states.add(model.embed(seq));
        }
        List<FloatMatrix> expectedStates = states;
        for (int b = 0; b < CONFIG.layers(); b++) {
            Map<String, QuantizedWeight> expected = new LinkedHashMap<>();
            List<LayerReport> expectedReports = new ArrayList<>();
            List<FloatMatrix> in = expectedStates;
            expectedStates = reference(dq, pool, model, b, in, dq::gptqLayer, expected, expectedReports);
            Map<String, QuantizedWeight> actual = new LinkedHashMap<>();
            List<LayerReport> actualReports = new ArrayList<>();
            // block consumes its inputs (sets them to null): it gets a list of its own
            List<FloatMatrix> given = new ArrayList<>(states);
            states = new DecoderGptq(pool, tapBytes).block(model, b, given, dq::gptqLayer, actual, actualReports);
            assertThat(given).containsOnlyNulls();

            assertThat(actual.keySet()).containsExactlyElementsOf(expected.keySet());
            for (String name : expected.keySet()) {
                QuantizedTensor e = (QuantizedTensor) expected.get(name);
                QuantizedTensor a = (QuantizedTensor) actual.get(name);
                assertThat(a).as(name).isEqualTo(e);
                assertThat(bits(a.scales())).as(name).isEqualTo(bits(e.scales()));
                assertThat(a.zeros()).as(name).isEqualTo(e.zeros());
            }
            assertThat(actualReports).isEqualTo(expectedReports).hasSize(7);
            assertThat(states).hasSameSizeAs(expectedStates);
            for (int i = 0; i < states.size(); i++) {
                FloatMatrix s = states.get(i);
                assertThat(new int[] {s.rows(), s.cols()})
                        .containsExactly(expectedStates.get(i).rows(), CONFIG.dim());
                assertThat(bits(s.toArray()))
                        .as("block %d, sequence %d", b, i)
                        .isEqualTo(bits(expectedStates.get(i).toArray()));
                // the block did something: its output is not its input
                assertThat(bits(s.toArray())).isNotEqualTo(bits(in.get(i).toArray()));
            }
        }
    }

    private static int[] bits(float[] a) {
        int[] b = new int[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = Float.floatToRawIntBits(a[i]);
        }
        return b;
    }

    /**
     * GPTQ on block {@code b} as it ran before the block's parts were kept between groups: each group's Hessian from
     * the block run forward on the groups quantized so far, up to the group's input; the next block's inputs from the
     * whole quantized block.
     */
    static <T> List<FloatMatrix> reference(
            DecoderQuantizer dq,
            ForkJoinPool pool,
            LlamaDecoder model,
            int b,
            List<FloatMatrix> states,
            LayerQuantizer<T> layers,
            Map<String, T> stored,
            List<LayerReport> reports) {
        Map<String, Linear> replaced = new LinkedHashMap<>();
        LlamaDecoder current = model;
        List<Linear> linears = model.linears(b);
        for (Set<String> group : DecoderGptq.TRUE_SEQUENTIAL) {
            List<Linear> members = linears.stream()
                    .filter(l -> group.stream().anyMatch(s -> l.name().endsWith("." + s)))
                    .toList();
            String first = members.get(0).name();
            HessianAccumulator h = new HessianAccumulator(first, members.get(0).inFeatures(), pool);
            dq.forEachInput(current, b, states, Set.of(first), (name, in) -> h.add(in, 1));
            for (Linear l : members) {
                Linear.Dense d = (Linear.Dense) l;
                Quantized<T> q = layers.quantize(d, h);
                stored.put(d.name() + ".weight", q.stored());
                reports.add(q.report());
                replaced.put(d.name(), Linear.dense(d.name(), q.dequantized().named(d.name()), d.bias(), pool));
            }
            current = model.withLinears(replaced);
        }
        return dq.outputs(current, b, states);
    }
}
