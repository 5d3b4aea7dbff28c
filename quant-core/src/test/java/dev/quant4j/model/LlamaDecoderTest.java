package dev.quant4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.io.Npy;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The decoder forward pass on a real model, stories260K (llama2.c's TinyStories Llama: dim 64, 5 layers, 8 query and 4
 * key/value heads, hidden 172, vocabulary 512), against llama2.c's own {@code run.c}: its logits at every position
 * of a 64-token sequence it sampled itself are the fixture (src/test/resources/stories260K/README.md says how they
 * were made).
 */
public class LlamaDecoderTest {

    /** Logits differ from run.c's by float rounding only (run.c sums in float, left to right). */
    static final double RUNC_TOLERANCE = 1e-4;

    static Llama2cCheckpoint checkpoint;
    static LlamaDecoder decoder;
    static int[] tokens;
    static FloatMatrix runcLogits;

    static Path resource(String name) throws URISyntaxException {
        return Path.of(
                LlamaDecoderTest.class.getResource("/stories260K/" + name).toURI());
    }

    @BeforeAll
    static void load() throws Exception {
        checkpoint = Llama2cCheckpoint.read(resource("stories260K.bin"));
        decoder = LlamaDecoder.fromLlama2c(checkpoint, Pools.TWO);
        tokens = Arrays.stream(Files.readString(resource("runc-tokens-t1-seed42.txt"))
                        .trim()
                        .split(" "))
                .mapToInt(Integer::parseInt)
                .toArray();
        runcLogits = Npy.readMatrix(resource("runc-logits-t1-seed42.npy"));
    }

    @Test
    void readsTheHeaderOfStories260K() {
        Llama2cCheckpoint.Header h = checkpoint.header();
        assertThat(h).isEqualTo(new Llama2cCheckpoint.Header(64, 172, 5, 8, 4, 512, 512, true));
        assertThat(h.kvDim()).isEqualTo(32);
        // embedding, 5 x (2 norms + 7 linears), final norm; the head is shared
        assertThat(checkpoint.tensors()).hasSize(1 + 5 * 9 + 1).doesNotContainKey("lm_head.weight");
        FloatMatrix k = checkpoint.tensors().get("model.layers.4.self_attn.k_proj.weight");
        assertThat(new int[] {k.rows(), k.cols()}).containsExactly(32, 64);
        FloatMatrix down = checkpoint.tensors().get("model.layers.0.mlp.down_proj.weight");
        assertThat(new int[] {down.rows(), down.cols()}).containsExactly(64, 172);
    }

    @Test
    void logitsEqualRunC() {
        assertThat(tokens).hasSize(64).startsWith(1);
        FloatMatrix logits = decoder.logits(tokens);
        assertThat(logits.rows()).isEqualTo(64);
        assertThat(logits.cols()).isEqualTo(512);
        double maxDiff = maxAbsDiff(logits, runcLogits);
        System.out.printf("stories260K vs run.c: max |logit difference| %.2e%n", maxDiff);
        assertThat(maxDiff).as("max |logit - run.c|").isLessThan(RUNC_TOLERANCE);
        // the fixture is not trivially small: logits span tens of units
        assertThat(maxAbs(runcLogits)).isGreaterThan(10);
    }

    @Test
    void generationWithTheCacheEqualsPrefill() {
        FloatMatrix prefill = decoder.logits(tokens);
        LlamaDecoder.KvCache cache = decoder.newCache(tokens.length);
        FloatMatrix first = decoder.forward(Arrays.copyOf(tokens, 40), cache, null);
        assertThat(cache.length()).isEqualTo(40);
        float[] all = new float[64 * 512];
        System.arraycopy(first.toArray(), 0, all, 0, 40 * 512);
        for (int t = 40; t < 64; t++) {
            FloatMatrix one = decoder.forward(new int[] {tokens[t]}, cache, null);
            System.arraycopy(one.toArray(), 0, all, t * 512, 512);
        }
        assertThat(cache.length()).isEqualTo(64);
        // float rounding only: one token's products take another path through the kernels than a tile of 64
        assertThat(maxAbsDiff(FloatMatrix.of(64, 512, all), prefill)).isLessThan(5e-5);
        assertThatThrownBy(() -> decoder.forward(new int[] {1}, cache, null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("64 cached tokens and 1 new ones exceed the cache's 64");
    }

    @Test
    void resultsDoNotDependOnTheThreadCount() {
        LlamaDecoder single = LlamaDecoder.fromLlama2c(checkpoint, Pools.ONE);
        assertThat(single.logits(tokens).toArray())
                .isEqualTo(decoder.logits(tokens).toArray());
    }

    /**
     * Hugging Face's conversion permutes the rows of q_proj and k_proj so that rotate_half (pairs j, j + d/2) computes
     * what the interleaved rotation (pairs 2j, 2j + 1) did: the permuted model in the half-split layout gives the same
     * logits.
     */
    @Test
    void halfSplitLayoutWithHuggingFacesPermutationGivesTheSameLogits() {
        LlamaConfig c = decoder.config();
        Map<String, FloatMatrix> permuted = new LinkedHashMap<>(checkpoint.tensors());
        for (int l = 0; l < c.layers(); l++) {
            String q = "model.layers." + l + ".self_attn.q_proj.weight";
            String k = "model.layers." + l + ".self_attn.k_proj.weight";
            permuted.put(q, permuteForHalfSplit(permuted.get(q), c.heads(), c.headDim()));
            permuted.put(k, permuteForHalfSplit(permuted.get(k), c.kvHeads(), c.headDim()));
        }
        LlamaConfig hf = new LlamaConfig(
                c.dim(),
                c.hiddenDim(),
                c.layers(),
                c.heads(),
                c.kvHeads(),
                c.headDim(),
                c.vocabSize(),
                c.maxSeqLen(),
                c.ropeTheta(),
                c.normEps(),
                RopeLayout.HALF_SPLIT,
                c.tiedEmbeddings());
        LlamaDecoder halfSplit = LlamaDecoder.of("permuted", hf, permuted, Pools.TWO);
        // the permutation reorders the terms of every attention score, a float sum: the logits differ by float
        // rounding, as run.c's do (about 5e-5 measured)
        assertThat(maxAbsDiff(halfSplit.logits(tokens), decoder.logits(tokens))).isLessThan(RUNC_TOLERANCE);
        // and the layout matters: the permuted weights in the interleaved layout are another model
        LlamaDecoder wrong = LlamaDecoder.of("permuted", c, permuted, Pools.TWO);
        assertThat(maxAbsDiff(wrong.logits(tokens), decoder.logits(tokens))).isGreaterThan(0.1);
    }

    /**
     * transformers' convert_llama_weights_to_hf.py {@code permute}: {@code w.view(heads, d/2, 2, in).transpose(1,
     * 2).reshape(heads*d, in)}: row {@code h*d + i*(d/2) + j} of the result is row {@code h*d + 2j + i} of {@code w}.
     */
    public static FloatMatrix permuteForHalfSplit(FloatMatrix w, int heads, int d) {
        int in = w.cols();
        float[] out = new float[w.rows() * in];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < d / 2; j++) {
                    int to = h * d + i * (d / 2) + j;
                    int from = h * d + 2 * j + i;
                    System.arraycopy(w.array(), w.rowOffset(from), out, to * in, in);
                }
            }
        }
        return FloatMatrix.of(w.name(), w.rows(), in, out, 0);
    }

    @Test
    void blockByBlockEqualsTheWholeForward() {
        FloatMatrix h = decoder.embed(tokens);
        int[] taps = new int[1];
        for (int l = 0; l < decoder.config().layers(); l++) {
            h = decoder.block(l, h, (name, x) -> taps[0]++);
        }
        assertThat(taps[0]).isEqualTo(7 * 5);
        assertThat(decoder.head(h).toArray()).isEqualTo(decoder.logits(tokens).toArray());
    }

    @Test
    void tapSeesEveryLinearInputInForwardOrder() {
        List<String> seen = new java.util.ArrayList<>();
        decoder.forward(new int[] {1, 2, 3}, decoder.newCache(3), (name, x) -> {
            seen.add(name);
            assertThat(x.rows()).isEqualTo(3);
        });
        assertThat(seen).hasSize(35);
        assertThat(seen.subList(0, 7))
                .containsExactly(
                        "model.layers.0.self_attn.q_proj",
                        "model.layers.0.self_attn.k_proj",
                        "model.layers.0.self_attn.v_proj",
                        "model.layers.0.self_attn.o_proj",
                        "model.layers.0.mlp.gate_proj",
                        "model.layers.0.mlp.up_proj",
                        "model.layers.0.mlp.down_proj");
        assertThat(decoder.linears().stream().map(Linear::name).toList()).isEqualTo(seen);
    }

    @Test
    void inputsRunsTheBlockOnlyAsFarAsTheNamedLinears() {
        FloatMatrix h = decoder.embed(new int[] {1, 2, 3, 4});
        java.util.Map<String, FloatMatrix> all = new java.util.LinkedHashMap<>();
        decoder.block(1, h, all::put);
        for (String wanted : List.of("self_attn.v_proj", "self_attn.o_proj", "mlp.down_proj")) {
            String name = "model.layers.1." + wanted;
            List<String> seen = new java.util.ArrayList<>();
            decoder.inputs(1, h, java.util.Set.of(name), (n, x) -> {
                seen.add(n);
                assertThat(x.toArray()).containsExactly(all.get(n).toArray());
            });
            assertThat(seen).containsExactly(name);
        }
        // the pass stops once every named input is seen: a linear after them never runs
        java.util.concurrent.atomic.AtomicInteger after = new java.util.concurrent.atomic.AtomicInteger();
        Linear counting = new Linear() {
            final Linear up = decoder.linears(1).get(5);

            @Override
            public String name() {
                return up.name();
            }

            @Override
            public int inFeatures() {
                return up.inFeatures();
            }

            @Override
            public int outFeatures() {
                return up.outFeatures();
            }

            @Override
            public FloatMatrix forward(FloatMatrix x) {
                after.incrementAndGet();
                return up.forward(x);
            }
        };
        LlamaDecoder counted = decoder.withLinears(java.util.Map.of(counting.name(), counting));
        counted.inputs(1, h, java.util.Set.of("model.layers.1.mlp.gate_proj"), (n, x) -> {});
        assertThat(after.get()).isZero();
        counted.inputs(1, h, java.util.Set.of("model.layers.1.mlp.down_proj"), (n, x) -> {});
        assertThat(after.get()).isEqualTo(1);
        assertThatThrownBy(() -> decoder.inputs(1, h, java.util.Set.of("model.layers.2.mlp.up_proj"), (n, x) -> {}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("block 1 has no linear named [model.layers.2.mlp.up_proj]");
    }

    @Test
    void thePiecesOfABlockComputeItsFloats() {
        // 40 tokens take the linears' matrix product, 4 their dot products
        for (int length : new int[] {40, 4}) {
            FloatMatrix h = decoder.block(0, decoder.embed(Arrays.copyOf(tokens, length)), null);
            Map<String, FloatMatrix> in = new LinkedHashMap<>();
            FloatMatrix out = decoder.block(1, h, in::put);
            String p = "model.layers.1.";
            assertThat(bits(decoder.attentionInput(1, h))).isEqualTo(bits(in.get(p + "self_attn.q_proj")));
            FloatMatrix context = decoder.attentionContext(1, h);
            assertThat(new int[] {context.rows(), context.cols()}).containsExactly(length, 64);
            assertThat(bits(context)).isEqualTo(bits(in.get(p + "self_attn.o_proj")));
            FloatMatrix r = decoder.attentionResidual(1, h, context);
            assertThat(bits(decoder.mlpInput(1, r))).isEqualTo(bits(in.get(p + "mlp.gate_proj")));
            FloatMatrix act = decoder.mlpActivation(1, r);
            assertThat(new int[] {act.rows(), act.cols()}).containsExactly(length, 172);
            assertThat(bits(act)).isEqualTo(bits(in.get(p + "mlp.down_proj")));
            assertThat(bits(decoder.mlpResidual(1, r, act))).isEqualTo(bits(out));
            // the same as the stream plus the attention module's and the MLP's outputs AWQ compares
            assertThat(bits(decoder.attentionResidual(1, h, context)))
                    .isEqualTo(bits(sum(h, decoder.selfAttention(1, decoder.attentionInput(1, h)))));
            assertThat(bits(out)).isEqualTo(bits(sum(r, decoder.mlp(1, decoder.mlpInput(1, r)))));
        }
        FloatMatrix h = decoder.embed(new int[] {1, 2, 3});
        assertThatThrownBy(() -> decoder.mlpResidual(1, h, decoder.mlpActivation(1, decoder.embed(new int[] {1, 2}))))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("[2, 64] added to hidden states 'embeddings' [3, 64]");
    }

    private static int[] bits(FloatMatrix m) {
        float[] a = m.toArray();
        int[] b = new int[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = Float.floatToRawIntBits(a[i]);
        }
        return b;
    }

    /** {@code h + y} in float, element by element. */
    private static FloatMatrix sum(FloatMatrix h, FloatMatrix y) {
        float[] x = h.toArray();
        float[] add = y.toArray();
        for (int i = 0; i < x.length; i++) {
            x[i] += add[i];
        }
        return FloatMatrix.of("sum", h.rows(), h.cols(), x, 0);
    }

    @Test
    void withLinearsReplacesByNameAndChecksShapes() {
        Linear.Dense q0 = (Linear.Dense) decoder.linears().get(0);
        float[] zero = new float[q0.outFeatures() * q0.inFeatures()];
        Linear zeroed = Linear.dense(
                q0.name(), FloatMatrix.of(q0.name(), q0.outFeatures(), q0.inFeatures(), zero, 0), null, Pools.TWO);
        LlamaDecoder changed = decoder.withLinears(Map.of(q0.name(), zeroed));
        assertThat(maxAbsDiff(changed.logits(tokens), decoder.logits(tokens))).isGreaterThan(1e-3);
        assertThatThrownBy(() -> decoder.withLinears(Map.of("model.layers.9.mlp.up_proj", zeroed)))
                .hasMessageContaining("no linear layer named [model.layers.9.mlp.up_proj]");
        assertThatThrownBy(() -> decoder.withLinears(Map.of("model.layers.0.self_attn.k_proj", zeroed)))
                .hasMessageContaining("replacement for 'model.layers.0.self_attn.k_proj' is 64x64, the layer is 32x64");
    }

    @Test
    void badInputIsNamed() {
        assertThatThrownBy(() -> decoder.logits(new int[] {1, 512}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("token 1 has id 512, the vocabulary has 512");
        assertThatThrownBy(() -> decoder.logits(new int[0])).hasMessageContaining("no tokens");
        assertThatThrownBy(() -> decoder.logits(new int[513]))
                .hasMessageContaining("513 tokens, the model takes at most 512");
        Map<String, FloatMatrix> missing = new LinkedHashMap<>(checkpoint.tensors());
        missing.remove("model.layers.3.mlp.up_proj.weight");
        assertThatThrownBy(() -> LlamaDecoder.of("m", decoder.config(), missing, Pools.ONE))
                .hasMessage("m: no tensor 'model.layers.3.mlp.up_proj.weight'");
        Map<String, FloatMatrix> biased = new LinkedHashMap<>(checkpoint.tensors());
        biased.put("model.layers.0.mlp.down_proj.bias", FloatMatrix.zeros("b", 1, 64));
        assertThatThrownBy(() -> LlamaDecoder.of("m", decoder.config(), biased, Pools.ONE))
                .hasMessageContaining("'model.layers.0.mlp.down_proj.bias': the Llama architecture has no bias there");
    }

    @Test
    void readTakesAFolderOrABinAndNamesAnythingElse() throws Exception {
        LlamaDecoder fromPath = LlamaDecoder.read(resource("stories260K.bin"), Pools.TWO);
        assertThat(fromPath.logits(new int[] {1, 306}).toArray())
                .isEqualTo(decoder.logits(new int[] {1, 306}).toArray());
        Path other = resource("runc-tokens-t1-seed42.txt");
        assertThatThrownBy(() -> LlamaDecoder.read(other, Pools.ONE))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage(other + ": expected a llama2.c checkpoint (.bin) or a Hugging Face model folder");
    }

    @Test
    void configFieldsAreChecked() {
        assertThatThrownBy(() -> new LlamaConfig(64, 172, 5, 8, 3, 8, 512, 512, 1e4, 1e-5, RopeLayout.HALF_SPLIT, true))
                .hasMessageContaining("heads 8 is not a multiple of kv_heads 3");
        assertThatThrownBy(() -> new LlamaConfig(64, 172, 0, 8, 4, 8, 512, 512, 1e4, 1e-5, RopeLayout.HALF_SPLIT, true))
                .hasMessageContaining("layers is 0");
        assertThatThrownBy(() -> new LlamaConfig(64, 172, 5, 8, 4, 7, 512, 512, 1e4, 1e-5, RopeLayout.HALF_SPLIT, true))
                .hasMessageContaining("head_dim 7 is odd");
    }

    public static double maxAbsDiff(FloatMatrix a, FloatMatrix b) {
        assertThat(a.rows()).isEqualTo(b.rows());
        assertThat(a.cols()).isEqualTo(b.cols());
        float[] x = a.toArray();
        float[] y = b.toArray();
        double max = 0;
        for (int i = 0; i < x.length; i++) {
            max = Math.max(max, Math.abs((double) x[i] - y[i]));
        }
        return max;
    }

    static double maxAbs(FloatMatrix a) {
        double max = 0;
        for (float v : a.toArray()) {
            max = Math.max(max, Math.abs(v));
        }
        return max;
    }
}
