package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.model.Linear;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.GgufDecoderFile.Stored;
import dev.quant4j.pipeline.QuantizedDecoderFile.Source;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * llama.cpp ran the GGUF files quant4j writes for stories260K and recorded its logits ({@code
 * src/test/resources/llama-cpp/README.md} says how). quant4j writes the same bytes today (their SHA-256), and its
 * decoder on the file's own (dequantized) tensors gives llama.cpp's logits: within float rounding for F32; for the
 * quantized files within float rounding once quant4j rounds its activations as llama.cpp does (ggml multiplies a q8_0
 * or q4_0 weight by activations quantized to q8_0, an F16 weight by activations rounded to F16), which alone moves
 * the logits by up to 0.7.
 */
class LlamaCppGgufTest {

    static final int[] TOKENS = GgufDecoderFileTest.TOKENS;

    @TempDir
    Path dir;

    /**
     * One llama.cpp run: the file's type, its SHA-256, the logits file, the largest difference allowed from quant4j's
     * logits on the file's tensors (plain, and with ggml's activation rounding), and how many of the 16 positions must
     * agree within 1e-4 with that rounding.
     *
     * <p>Rounding activations to q8_0 is a knife edge: a code one step apart moves stories260K's logits by a tenth or
     * more, and which codes fall on the other side of a rounding boundary depends on the last bit of the float sums
     * before it. q4_0 ran twice in llama.cpp: by default it repacks q4_0 matrices whose rows are a multiple of 8 for
     * its AVX2 kernels ({@code CPU_REPACK}, {@code q4_0_8x8}); with {@code use_extra_bufts = false} it multiplies the
     * stored blocks, as it does q8_0. The two runs differ by up to 0.33 from position 5 on, and so do quant4j's
     * kernels: its 256-bit kernels land every code where llama.cpp's plain path does (16 of 16 positions within
     * 2e-6), its 128-bit kernels where the repacked path does, its scalar kernels on neither at about half the
     * positions. The flips stay at their position (they happen after the last attention), so for q4_0 the first five
     * positions, where no kernel flips a code, must agree, and every position within 0.5.
     */
    @ParameterizedTest
    @CsvSource({
        "f32,  d05e06f51c895f6f8e109bb54761abd2d64c5f39bf55838d373fe0d7bbb8adda, stories260K-f32.logits.f32, 1e-4, 1e-4,"
                + " 16",
        "q8_0, 23f208ecd9d381373a1c6f6dded25e447d7be5dc6f63873228c854c1b6b16ca6, stories260K-q8_0.logits.f32, 1, 1e-4,"
                + " 16",
        "q4_0, 9b10e39ce6a0b6a6a710d144a9d3df0ce8c3567c80f2c26ca48f621df13dc141, stories260K-q4_0-norepack.logits.f32,"
                + " 1, 0.5, 5",
        "q4_0, 9b10e39ce6a0b6a6a710d144a9d3df0ce8c3567c80f2c26ca48f621df13dc141, stories260K-q4_0.logits.f32, 1, 0.5, 5",
    })
    void llamaCppsLogitsAreQuant4jsOnTheFilesTensors(
            String typeName, String sha256, String logitsFile, double plain, double rounded, int agreeing)
            throws Exception {
        GgmlType type = GgmlType.byName(typeName);
        Source source = GgufDecoderFileTest.source();
        GgufDecoderFile.Plan plan = GgufDecoderFile.plan(source, type, false);
        byte[] bytes = plan.writer().toBytes();
        String hash =
                HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        assertThat(hash).isEqualTo(sha256);
        Path file = dir.resolve("stories260K-" + typeName + ".gguf");
        Files.write(file, bytes);
        GgufDecoderFile.Loaded loaded = GgufDecoderFile.read(file);
        float[] llama = logits(logitsFile);

        LlamaDecoder decoder = loaded.decoder(Pools.TWO);
        double plainDiff = maxAbsDiff(decoder.logits(TOKENS).toArray(), llama);
        Map<String, GgmlType> stored = new LinkedHashMap<>();
        for (Stored s : plan.written().tensors()) {
            stored.put(s.source(), s.type());
        }
        float[] withRounding = withGgmlActivations(loaded, decoder, stored);
        double roundedDiff = maxAbsDiff(withRounding, llama);
        int vocab = loaded.config().vocabSize();
        int agree = 0;
        for (int p = 0; p < TOKENS.length; p++) {
            float[] a = Arrays.copyOfRange(withRounding, p * vocab, (p + 1) * vocab);
            float[] b = Arrays.copyOfRange(llama, p * vocab, (p + 1) * vocab);
            agree += maxAbsDiff(a, b) < 1e-4 ? 1 : 0;
        }
        System.out.printf(
                Locale.ROOT,
                "%s (%s): max |quant4j - llama.cpp| %.3g; with ggml's activation rounding %.3g, %d of %d positions"
                        + " within 1e-4%n",
                typeName,
                logitsFile,
                plainDiff,
                roundedDiff,
                agree,
                TOKENS.length);
        assertThat(plainDiff).isLessThan(plain);
        assertThat(roundedDiff).isLessThan(rounded);
        assertThat(agree).isGreaterThanOrEqualTo(agreeing);
    }

    /**
     * The logits of {@link #TOKENS} when every linear's input is first rounded as ggml's CPU backend rounds it for the
     * weight's type ({@code vec_dot_type}: q8_0 for q4_0, q5_0 and q8_0 weights, F16 for F16, unchanged for F32).
     */
    static float[] withGgmlActivations(
            GgufDecoderFile.Loaded loaded, LlamaDecoder decoder, Map<String, GgmlType> stored) {
        Map<String, Linear> rounded = new LinkedHashMap<>();
        for (Linear l : decoder.linears()) {
            GgmlType t = stored.get(l.name() + ".weight");
            rounded.put(l.name(), roundingInput(l, t));
        }
        LlamaDecoder model = decoder.withLinears(rounded);
        FloatMatrix h = model.embed(TOKENS);
        for (int b = 0; b < loaded.config().layers(); b++) {
            h = model.block(b, h, null);
        }
        // the final RMSNorm as LlamaDecoder computes it, then the (tied) output head on rounded activations
        int dim = loaded.config().dim();
        float[] x = h.toArray();
        float[] w = loaded.tensors().get(LlamaDecoder.FINAL_NORM).toArray();
        for (int t = 0; t < TOKENS.length; t++) {
            double ss = 0;
            for (int c = 0; c < dim; c++) {
                ss += (double) x[t * dim + c] * x[t * dim + c];
            }
            float inv = (float) (1 / Math.sqrt(ss / dim + loaded.config().normEps()));
            for (int c = 0; c < dim; c++) {
                x[t * dim + c] = w[c] * (inv * x[t * dim + c]);
            }
        }
        String headName = loaded.config().tiedEmbeddings() ? LlamaDecoder.EMBED_TOKENS : LlamaDecoder.LM_HEAD;
        Linear head = Linear.dense("lm_head", loaded.tensors().get(headName), null, Pools.TWO);
        return roundingInput(head, stored.get(headName))
                .forward(FloatMatrix.of("final_norm", TOKENS.length, dim, x, 0))
                .toArray();
    }

    private static Linear roundingInput(Linear l, GgmlType weightType) {
        GgmlType activations = switch (weightType) {
            case Q4_0, Q5_0, Q8_0 -> GgmlType.Q8_0;
            case F16 -> GgmlType.F16;
            case F32 -> null;
            default -> throw new IllegalArgumentException("no activation type for " + weightType);
        };
        if (activations == null) {
            return l;
        }
        return new Linear() {
            @Override
            public String name() {
                return l.name();
            }

            @Override
            public int inFeatures() {
                return l.inFeatures();
            }

            @Override
            public int outFeatures() {
                return l.outFeatures();
            }

            @Override
            public FloatMatrix forward(FloatMatrix x) {
                byte[] q = GgmlQuants.quantize(activations, x.toArray(), x.rows(), x.cols());
                return l.forward(FloatMatrix.of(
                        x.name(), x.rows(), x.cols(), GgmlQuants.dequantize(activations, q, x.rows(), x.cols()), 0));
            }
        };
    }

    static float[] logits(String name) throws Exception {
        byte[] b = Files.readAllBytes(
                Path.of(LlamaCppGgufTest.class.getResource("/llama-cpp/" + name).toURI()));
        float[] v = new float[b.length / Float.BYTES];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
        assertThat(v).hasSize(TOKENS.length * 512);
        return v;
    }

    static double maxAbsDiff(float[] a, float[] b) {
        assertThat(a).hasSameSizeAs(b);
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs((double) a[i] - b[i]));
        }
        return max;
    }
}
