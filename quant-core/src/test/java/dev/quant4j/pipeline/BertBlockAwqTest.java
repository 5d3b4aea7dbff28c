package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.awq.AutoScale;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.model.Linear;
import dev.quant4j.model.WordPieceTokenizer;
import dev.quant4j.pipeline.BertBlockAwq.Scale;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Block-level AWQ on all-MiniLM-L6-v2's layers: the input scales leave the FP32 layer's function unchanged, each
 * search's losses are the inspected module's output errors (recomputed here from the weights), the searches are the
 * four of a BERT layer, and the quantized encoder beats round-to-nearest on held-out sentences.
 */
class BertBlockAwqTest {

    static final List<String> CALIBRATION = List.of(
            "a young animal of the cat family",
            "the act of moving something from one place to another",
            "she painted the kitchen a pale shade of yellow",
            "an instrument for measuring the pressure of the atmosphere",
            "He refused to answer any further questions.",
            "the state of being free from danger or injury",
            "a large body of salt water partly enclosed by land",
            "they walked along the river until the sun went down",
            "any of various tropical trees bearing edible fruit",
            "the quality of being honest and straightforward in attitude and speech",
            "The committee approved the budget after a long debate.",
            "a musical composition for a solo instrument");

    static final List<String> HELD_OUT = List.of(
            "a building where books are kept for reading or borrowing",
            "the children laughed at the clown's silly tricks",
            "a feeling of deep sadness after a loss",
            "Prices rose sharply during the winter months.",
            "the science of the motions of the stars and planets",
            "to make a sudden loud noise like an explosion");

    static BertEncoder encoder;
    static List<int[]> calibration;
    static List<int[]> heldOut;

    @BeforeAll
    static void load() throws IOException {
        OnnxModel model = OnnxModel.parse("all-minilm-l6-v2.onnx", resource("/all-minilm-l6-v2.onnx"));
        WordPieceTokenizer tokenizer = WordPieceTokenizer.parse(
                "all-minilm-l6-v2-tokenizer.json",
                new String(resource("/all-minilm-l6-v2-tokenizer.json"), StandardCharsets.UTF_8));
        encoder = BertEncoder.fromOnnx(model, 12, Pools.TWO);
        calibration = CALIBRATION.stream().map(tokenizer::encode).toList();
        heldOut = HELD_OUT.stream().map(tokenizer::encode).toList();
    }

    static byte[] resource(String name) throws IOException {
        try (InputStream in = BertBlockAwqTest.class.getResourceAsStream(name)) {
            assertThat(in).as(name + " on the test class path").isNotNull();
            return in.readAllBytes();
        }
    }

    static BertBlockAwq awq() {
        return new BertBlockAwq(AwqConfig.defaults(4), Pools.TWO);
    }

    /** Layer {@code b}'s inputs on the calibration sentences (FP32 below), by linear name. */
    static Map<String, FloatMatrix[]> inputFeat(int b) {
        FloatMatrix[] inps = new FloatMatrix[calibration.size()];
        for (int i = 0; i < inps.length; i++) {
            inps[i] = encoder.hiddenStates(calibration.get(i), null, b);
        }
        Map<String, FloatMatrix[]> feat = new LinkedHashMap<>();
        awq().tapped(encoder, b, inps, feat);
        return feat;
    }

    /** A linear that divides its input by {@code s} and then multiplies by {@code w [out, in]} (FP32). */
    static Linear scaledInput(Linear.Dense d, FloatMatrix w, float[] s) {
        Linear inner = Linear.dense(d.name(), w, d.bias(), Pools.TWO);
        return new Linear() {
            @Override
            public String name() {
                return d.name();
            }

            @Override
            public int inFeatures() {
                return d.inFeatures();
            }

            @Override
            public int outFeatures() {
                return d.outFeatures();
            }

            @Override
            public FloatMatrix forward(FloatMatrix x) {
                float[] a = x.toArray();
                for (int i = 0; i < a.length; i++) {
                    a[i] /= s[i % s.length];
                }
                return inner.forward(FloatMatrix.of(x.name(), x.rows(), x.cols(), a, 0));
            }
        };
    }

    static float[] positive(int n, Random r) {
        float[] s = new float[n];
        for (int i = 0; i < n; i++) {
            s[i] = (float) Math.exp(r.nextGaussian()); // about 0.05 to 20
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

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3})
    void inputScalesLeaveTheFp32LayerUnchanged(int seed) {
        Random r = new Random(seed);
        int b = seed % encoder.layers();
        List<Linear.Dense> linears = BertBlockAwq.layerLinears(encoder, b);
        float[] attn = positive(encoder.hidden(), r);
        List<Scale> list = List.of(
                new Scale(
                        List.of(
                                linears.get(0).name(),
                                linears.get(1).name(),
                                linears.get(2).name()),
                        attn,
                        0,
                        new double[0]),
                new Scale(List.of(linears.get(3).name()), positive(encoder.hidden(), r), 0, new double[0]),
                new Scale(List.of(linears.get(4).name()), positive(encoder.hidden(), r), 0, new double[0]),
                new Scale(
                        List.of(linears.get(5).name()), positive(linears.get(5).inFeatures(), r), 0, new double[0]));
        Map<String, float[]> s = BertBlockAwq.inputScales(list);
        assertThat(s).hasSize(6);
        Map<String, Linear> scaled = new LinkedHashMap<>();
        for (Linear.Dense d : linears) {
            scaled.put(d.name(), scaledInput(d, AutoScale.scaleFc(d.weight(), s.get(d.name())), s.get(d.name())));
        }
        BertEncoder m = encoder.withLinears(scaled);
        FloatMatrix h = encoder.hiddenStates(heldOut.get(seed), null, b);
        FloatMatrix expected = encoder.layer(b, h, null);
        FloatMatrix actual = m.layer(b, h, null);
        assertThat(maxAbsDiff(expected, actual)).isLessThan(1e-5 * maxAbs(expected));
        // and a wrong pairing (the query's scales on the key only) does change it
        Map<String, Linear> wrong = new LinkedHashMap<>(scaled);
        Linear.Dense key = linears.get(1);
        wrong.put(key.name(), scaledInput(key, key.weight(), attn));
        assertThat(maxAbsDiff(expected, encoder.withLinears(wrong).layer(b, h, null)))
                .isGreaterThan(1e-3 * maxAbs(expected));
    }

    @Test
    void theSearchesAreTheFourOfABertLayerAndTheirLossesAreModuleOutputErrors() {
        int b = 1;
        Map<String, FloatMatrix[]> feat = inputFeat(b);
        List<Scale> list = awq().autoScaleBlock(encoder, b, feat);
        String p = "encoder.layer.1.";
        assertThat(list.stream().map(Scale::layers).toList())
                .containsExactly(
                        List.of(p + "attention.self.query", p + "attention.self.key", p + "attention.self.value"),
                        List.of(p + "attention.output.dense"),
                        List.of(p + "intermediate.dense"),
                        List.of(p + "output.dense"));
        List<Linear.Dense> linears = BertBlockAwq.layerLinears(encoder, b);
        RtnQuantizer rtn = new RtnQuantizer(AwqConfig.defaults(4).scheme(), Pools.TWO);

        // ratio 0 is s = 1: plain Q(W) of q, k, v, the loss at the attention module's output, computed here
        Map<String, Linear> plain = new LinkedHashMap<>();
        for (Linear.Dense d : linears.subList(0, 3)) {
            plain.put(d.name(), Linear.dense(d.name(), rtn.quantize(d.weight()).dequantize(), d.bias(), Pools.TWO));
        }
        BertEncoder q = encoder.withLinears(plain);
        double sum = 0;
        long n = 0;
        for (FloatMatrix x : feat.get(p + "attention.self.query")) {
            FloatMatrix e = encoder.selfAttention(b, x);
            FloatMatrix a = q.selfAttention(b, x);
            for (int i = 0; i < e.rows(); i++) {
                for (int j = 0; j < e.cols(); j++) {
                    double d = e.get(i, j) - a.get(i, j);
                    sum += d * d;
                }
            }
            n += (long) e.rows() * e.cols();
        }
        double[] history = list.get(0).history();
        assertThat(history).hasSize(AutoScale.N_GRID);
        assertThat(history[0]).isCloseTo(sum / n, org.assertj.core.api.Assertions.within(1e-6 * sum / n));

        for (Scale s : list) {
            double[] h = s.history();
            int best = (int) Math.round(s.ratio() * AutoScale.N_GRID);
            double min = java.util.Arrays.stream(h).min().orElseThrow();
            // the chosen ratio has the smallest loss (the first of equals), never more than s = 1's
            assertThat(h[best]).as("%s", s.layers()).isEqualTo(min).isLessThanOrEqualTo(h[0]);
            for (int i = 0; i < best; i++) {
                assertThat(h[i]).isGreaterThan(min);
            }
        }
        // on a real layer the searches find scales that help at least once
        assertThat(list.stream().anyMatch(s -> s.ratio() > 0)).isTrue();
    }

    @Test
    void theQuantizedEncoderBeatsRoundToNearest() {
        BertBlockAwq.Result r = awq().quantize(encoder, calibration, null);
        assertThat(r.weights()).hasSize(6 * encoder.layers());
        assertThat(r.scales()).hasSize(4 * encoder.layers());
        for (QuantizedTensor t : r.weights().values()) {
            assertThat(t.hasInputScales()).as(t.name()).isTrue();
            assertThat(t.scheme().bits()).isEqualTo(4);
        }
        Map<String, Linear> rtn = new LinkedHashMap<>();
        RtnQuantizer q = new RtnQuantizer(AwqConfig.defaults(4).scheme(), Pools.TWO);
        for (Linear l : encoder.linears()) {
            Linear.Dense d = (Linear.Dense) l;
            rtn.put(d.name(), Linear.dense(d.name(), q.quantize(d.weight()).dequantize(), d.bias(), Pools.TWO));
        }
        BertEncoder plain = encoder.withLinears(rtn);
        double awqCos = 0;
        double rtnCos = 0;
        for (int[] ids : heldOut) {
            float[] e = encoder.embed(ids);
            awqCos += cosine(e, r.encoder().embed(ids)) / heldOut.size();
            rtnCos += cosine(e, plain.embed(ids)) / heldOut.size();
        }
        assertThat(awqCos).isGreaterThan(rtnCos).isGreaterThan(0.95);
    }

    @Test
    void badInputIsAClearError() {
        assertThatThrownBy(() -> awq().quantize(encoder, List.of(), null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("calibration");
        Map<String, Linear> one = new LinkedHashMap<>();
        Linear.Dense d = BertBlockAwq.layerLinears(encoder, 0).get(0);
        one.put(d.name(), scaledInput(d, d.weight(), new float[d.inFeatures()]));
        assertThatThrownBy(() -> awq().quantize(encoder.withLinears(one), calibration, null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("FP32 encoder");
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
}
