package dev.quant4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Java BERT forward pass against ONNX Runtime running the original all-MiniLM-L6-v2 graph (test scope only), on
 * real sentences: the last hidden states agree to float rounding and the sentence embeddings (mean pooling, L2
 * normalisation, computed here from ORT's hidden states) have cosine >= 0.99999.
 */
class BertEncoderTest {

    static final List<String> SENTENCES = List.of(
            "The quick brown fox jumps over the lazy dog.",
            "a grammatical category of nouns and pronouns",
            "she was a born leader; he was born again",
            "Quantization shrinks weights 2-8x with little accuracy loss.",
            "Café au lait, naïve résumé: accents are stripped before WordPiece.",
            "I",
            "the act of someone who picks up or takes something; \"the pickup was scheduled for 5 o'clock\"",
            "Large models don't fit: LLaMA-70B needs ~140 GB in FP16, while most GPUs have 8-24 GB.",
            "東京 is the capital of Japan",
            "an (often imaginary) line of demarcation between the bounds of two regions");

    static OnnxModel model;
    static WordPieceTokenizer tokenizer;
    static BertEncoder encoder;
    static OrtEnvironment env;
    static OrtSession session;

    @BeforeAll
    static void load() throws IOException, OrtException {
        byte[] bytes = resource("/all-minilm-l6-v2.onnx");
        model = OnnxModel.parse("all-minilm-l6-v2.onnx", bytes);
        tokenizer = WordPieceTokenizer.parse(
                "all-minilm-l6-v2-tokenizer.json",
                new String(resource("/all-minilm-l6-v2-tokenizer.json"), StandardCharsets.UTF_8));
        encoder = BertEncoder.fromOnnx(model, 12, Pools.TWO);
        env = OrtEnvironment.getEnvironment();
        OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        options.setIntraOpNumThreads(2);
        session = env.createSession(bytes, options);
    }

    @AfterAll
    static void close() throws OrtException {
        session.close();
    }

    static byte[] resource(String name) throws IOException {
        try (InputStream in = BertEncoderTest.class.getResourceAsStream(name)) {
            assertThat(in).as(name + " on the test class path").isNotNull();
            return in.readAllBytes();
        }
    }

    /** ORT's last_hidden_state [tokens, 384] for one unpadded sentence. */
    static float[][] ort(int[] ids) throws OrtException {
        long[][] input = new long[1][ids.length];
        long[][] mask = new long[1][ids.length];
        long[][] types = new long[1][ids.length];
        for (int i = 0; i < ids.length; i++) {
            input[0][i] = ids[i];
            mask[0][i] = 1;
        }
        Map<String, OnnxTensor> feed = new HashMap<>();
        feed.put("input_ids", OnnxTensor.createTensor(env, input));
        feed.put("attention_mask", OnnxTensor.createTensor(env, mask));
        feed.put("token_type_ids", OnnxTensor.createTensor(env, types));
        try (OrtSession.Result r = session.run(feed)) {
            return ((float[][][]) r.get(0).getValue())[0];
        } finally {
            feed.values().forEach(OnnxTensor::close);
        }
    }

    static float[] meanPoolNormalize(float[][] h) {
        double[] m = new double[h[0].length];
        for (float[] row : h) {
            for (int c = 0; c < m.length; c++) {
                m[c] += row[c];
            }
        }
        double norm = 0;
        for (int c = 0; c < m.length; c++) {
            m[c] /= h.length;
            norm += m[c] * m[c];
        }
        float[] e = new float[m.length];
        for (int c = 0; c < m.length; c++) {
            e[c] = (float) (m[c] / Math.sqrt(norm));
        }
        return e;
    }

    static double cosine(float[] a, float[] b) {
        double ab = 0;
        double aa = 0;
        double bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        return ab / Math.sqrt(aa * bb);
    }

    @Test
    void hiddenStatesAndEmbeddingsAgreeWithOnnxRuntime() throws OrtException {
        assertThat(encoder.layers()).isEqualTo(6);
        assertThat(encoder.hidden()).isEqualTo(384);
        assertThat(encoder.linears()).hasSize(36);
        double worstCos = 1;
        double worstAbs = 0;
        for (String s : SENTENCES) {
            int[] ids = tokenizer.encode(s);
            float[][] expected = ort(ids);
            FloatMatrix h = encoder.hiddenStates(ids, null);
            assertThat(h.rows()).isEqualTo(ids.length);
            for (int t = 0; t < ids.length; t++) {
                for (int c = 0; c < 384; c++) {
                    worstAbs = Math.max(worstAbs, Math.abs(h.get(t, c) - expected[t][c]));
                }
            }
            double cos = cosine(encoder.embed(ids), meanPoolNormalize(expected));
            worstCos = Math.min(worstCos, cos);
            assertThat(cos).as(s).isGreaterThanOrEqualTo(0.99999);
        }
        // hidden states are O(1): agreement to a few float roundings through six layers
        assertThat(worstAbs).isLessThan(2e-4);
        System.out.printf("BERT vs ONNX Runtime: min cosine %.8f, max |hidden difference| %.2e%n", worstCos, worstAbs);
    }

    @Test
    void theTapSeesEveryLinearInputInForwardOrder() {
        List<String> names = new ArrayList<>();
        List<Integer> widths = new ArrayList<>();
        int[] ids = tokenizer.encode(SENTENCES.get(0));
        encoder.embed(ids, (name, x) -> {
            names.add(name);
            widths.add(x.cols());
            assertThat(x.rows()).isEqualTo(ids.length);
        });
        assertThat(names).hasSize(36);
        assertThat(names.subList(0, 6))
                .containsExactly(
                        "encoder.layer.0.attention.self.query",
                        "encoder.layer.0.attention.self.key",
                        "encoder.layer.0.attention.self.value",
                        "encoder.layer.0.attention.output.dense",
                        "encoder.layer.0.intermediate.dense",
                        "encoder.layer.0.output.dense");
        assertThat(widths.subList(0, 6)).containsExactly(384, 384, 384, 384, 384, 1536);
    }

    /** Replacing every linear by its 8-bit per-channel quantization keeps the embeddings close (a real-model check). */
    @Test
    void quantizedLinearsReplaceDenseOnes() {
        Map<String, Linear> q = new HashMap<>();
        for (Linear l : encoder.linears()) {
            Linear.Dense d = (Linear.Dense) l;
            var t = new RtnQuantizer(LinearScheme.asym(8, -1)).quantize(d.weight());
            q.put(l.name(), Linear.quantized(l.name(), QuantizedLinear.of(t, d.bias(), Pools.TWO)));
        }
        BertEncoder int8 = encoder.withLinears(q);
        for (String s : SENTENCES.subList(0, 4)) {
            int[] ids = tokenizer.encode(s);
            assertThat(cosine(int8.embed(ids), encoder.embed(ids))).as(s).isGreaterThan(0.999);
        }
        assertThatThrownBy(() ->
                        encoder.withLinears(Map.of("nope", encoder.linears().get(0))))
                .hasMessageContaining("no linear layer named [nope]");
        assertThatThrownBy(() -> encoder.withLinears(Map.of(
                        "encoder.layer.0.attention.self.query",
                        encoder.linears().get(4))))
                .hasMessageContaining("replacement for 'encoder.layer.0.attention.self.query' is 1536x384");
    }

    @Test
    void badInputsAreClearErrors() {
        assertThatThrownBy(() -> encoder.embed(new int[0])).hasMessageContaining("no tokens");
        assertThatThrownBy(() -> encoder.embed(new int[] {101, 40000, 102}))
                .hasMessageContaining("token 1 has id 40000, the vocabulary has 30522");
        assertThatThrownBy(() -> encoder.embed(new int[513]))
                .hasMessageContaining("513 tokens, the model takes at most 512");
        assertThatThrownBy(() -> BertEncoder.fromOnnx(model, 7, Pools.TWO))
                .hasMessageContaining("7 heads do not divide the hidden size 384");
        int[] ids = tokenizer.encode("a short sentence");
        assertThatThrownBy(() -> encoder.hiddenStates(ids, null, 7))
                .hasMessageContaining("7 layers asked, the model has 6");
        assertThatThrownBy(() -> encoder.hiddenStates(ids, null, -1)).hasMessageContaining("-1 layers asked");
        FloatMatrix h = encoder.hiddenStates(ids, null, 0);
        assertThatThrownBy(() -> encoder.layer(6, h, null)).hasMessageContaining("no layer 6 (the model has 6)");
        assertThatThrownBy(() -> encoder.layer(0, FloatMatrix.zeros("h", 3, 383), null))
                .hasMessageContaining("hidden states 'h' have 383 columns, needs 384");
        // layer by layer equals the whole pass
        FloatMatrix byLayer = h;
        for (int l = 0; l < encoder.layers(); l++) {
            byLayer = encoder.layer(l, byLayer, null);
        }
        assertThat(byLayer.toArray())
                .containsExactly(encoder.hiddenStates(ids, null).toArray());
        // the linear layers themselves
        assertThatThrownBy(() -> Linear.dense("fc", FloatMatrix.zeros("w", 4, 3), new float[5], Pools.ONE))
                .hasMessageContaining("layer 'fc': bias has 5 values, the weight has 4 rows");
        assertThatThrownBy(() -> Linear.dense("fc", FloatMatrix.zeros("w", 4, 3), null, Pools.ONE)
                        .forward(FloatMatrix.zeros("x", 2, 4)))
                .hasMessageContaining("layer 'fc' [4, 3]: activations 'x' have 4 columns, needs 3");
    }

    /** erf against values of the function (to 1e-15), and GELU's defining identity. */
    @Test
    void erfIsAccurate() {
        double[][] known = {
            {0.5, 0.5204998778130465},
            {1, 0.8427007929497149},
            {2, 0.9953222650189527},
            {2.5, 0.9995930479825550},
            {3, 0.9999779095030014},
            {-1.5, -0.9661051464753108},
            {0, 0},
            {7, 1}
        };
        for (double[] k : known) {
            assertThat(BertEncoder.erf(k[0])).as("erf(%s)", k[0]).isCloseTo(k[1], within(2e-15));
        }
        // the two methods meet at 2.5 without a step
        assertThat(BertEncoder.erf(2.5 - 1e-12)).isCloseTo(BertEncoder.erf(2.5), within(1e-14));
        assertThat(BertEncoder.gelu(1f)).isCloseTo(0.8413447f, within(1e-7f));
        assertThat(BertEncoder.gelu(-3f)).isCloseTo(-0.0040496941f, within(1e-9f));
    }
}
