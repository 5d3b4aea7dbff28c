package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.quant4j.cli.eval.EmbeddingEval;
import dev.quant4j.cli.eval.OrtEmbedder;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.io.OnnxExport;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.model.Linear;
import dev.quant4j.model.WordPieceTokenizer;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/**
 * ONNX Runtime (Java, 1.23.2) runs what {@link OnnxExport} writes, and computes what quant4j's quantized weights stand
 * for: a single MatMulNBits against {@code x W^T} with W dequantized by quant4j, for each layout; the real
 * all-MiniLM-L6-v2 against quant4j's own forward pass with the same weights.
 */
class OnnxExportOrtTest {

    /** A protobuf message written by hand (the test's own, independent of the writer under test). */
    static final class Proto {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Proto varint(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
            return this;
        }

        Proto intField(int field, long v) {
            return varint((long) field << 3).varint(v);
        }

        Proto bytesField(int field, byte[] b) {
            varint((long) field << 3 | 2).varint(b.length);
            out.writeBytes(b);
            return this;
        }

        Proto string(int field, String s) {
            return bytesField(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Proto message(int field, Proto m) {
            return bytesField(field, m.out.toByteArray());
        }
    }

    /** ValueInfoProto of a float tensor [rows, cols]. */
    static Proto floatValue(String name, long rows, long cols) {
        Proto shape = new Proto().message(1, new Proto().intField(1, rows)).message(1, new Proto().intField(1, cols));
        return new Proto()
                .string(1, name)
                .message(2, new Proto().message(1, new Proto().intField(1, 1).message(2, shape)));
    }

    /** MatMul(x [m, k], W [k, n]) -> y, opset 17. */
    static byte[] matMulModel(float[] w, int m, int k, int n) {
        ByteBuffer wb = ByteBuffer.allocate(4 * w.length).order(ByteOrder.LITTLE_ENDIAN);
        wb.asFloatBuffer().put(w);
        Proto graph = new Proto()
                .message(
                        1,
                        new Proto()
                                .string(1, "x")
                                .string(1, "W")
                                .string(2, "y")
                                .string(3, "mm")
                                .string(4, "MatMul"))
                .string(2, "g")
                .message(
                        5,
                        new Proto()
                                .intField(1, k)
                                .intField(1, n)
                                .intField(2, 1)
                                .string(8, "W")
                                .bytesField(9, wb.array()))
                .message(11, floatValue("x", m, k))
                .message(12, floatValue("y", m, n));
        return new Proto()
                .intField(1, 8)
                .message(8, new Proto().string(1, "").intField(2, 17))
                .message(7, graph)
                .out
                .toByteArray();
    }

    /** MatMul(x [m, k], W [k, n]) -> h; Add(b, h) -> y, b [n]: a linear layer with its bias. */
    static byte[] linearModel(float[] w, float[] bias, int m, int k, int n) {
        ByteBuffer wb = ByteBuffer.allocate(4 * w.length).order(ByteOrder.LITTLE_ENDIAN);
        wb.asFloatBuffer().put(w);
        ByteBuffer bb = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        bb.asFloatBuffer().put(bias);
        Proto graph = new Proto()
                .message(
                        1,
                        new Proto()
                                .string(1, "x")
                                .string(1, "W")
                                .string(2, "h")
                                .string(3, "mm")
                                .string(4, "MatMul"))
                .message(
                        1,
                        new Proto()
                                .string(1, "b")
                                .string(1, "h")
                                .string(2, "y")
                                .string(3, "add")
                                .string(4, "Add"))
                .string(2, "g")
                .message(
                        5,
                        new Proto()
                                .intField(1, k)
                                .intField(1, n)
                                .intField(2, 1)
                                .string(8, "W")
                                .bytesField(9, wb.array()))
                .message(
                        5,
                        new Proto().intField(1, n).intField(2, 1).string(8, "b").bytesField(9, bb.array()))
                .message(11, floatValue("x", m, k))
                .message(12, floatValue("y", m, n));
        return new Proto()
                .intField(1, 8)
                .message(8, new Proto().string(1, "").intField(2, 17))
                .message(7, graph)
                .out
                .toByteArray();
    }

    /** The bias of MatMul -> Add folded into MatMulNBits' bias input: ONNX Runtime computes x W^T + b. */
    @Test
    void biasFoldedIntoMatMulNBits() throws OrtException {
        Random rnd = new Random(21);
        int k = 64;
        int n = 8;
        float[] bias = new float[n];
        for (int j = 0; j < n; j++) {
            bias[j] = (float) rnd.nextGaussian();
        }
        for (boolean sym : new boolean[] {false, true}) {
            QuantizedTensor q = random(rnd, sym ? LinearScheme.sym(4, 32) : LinearScheme.asym(4, 32), n, k, sym, null);
            byte[] model =
                    OnnxExport.quantizedModel("lin", linearModel(new float[k * n], bias, 2, k, n), Map.of("W", q));
            OnnxModel back = OnnxModel.parse("back", model);
            assertThat(back.nodes()).hasSize(1);
            assertThat(back.nodes().get(0).inputs())
                    .containsExactly("x", "W_Q4", "W_scales", sym ? "" : "W_zero_points", "", "b");
            assertThat(back.nodes().get(0).outputs()).containsExactly("y");
            float[][] x = new float[2][k];
            for (float[] row : x) {
                for (int c = 0; c < k; c++) {
                    row[c] = (float) rnd.nextGaussian();
                }
            }
            float[][] y = runOrt(model, x);
            float[] w = q.dequantize().array();
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < n; j++) {
                    double e = bias[j];
                    for (int c = 0; c < k; c++) {
                        e += (double) x[i][c] * w[j * k + c];
                    }
                    assertThat((double) y[i][j]).isCloseTo(e, org.assertj.core.api.Assertions.within(1e-4));
                }
            }
        }
    }

    static float[][] runOrt(byte[] model, float[][] x) throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setIntraOpNumThreads(1);
            try (OrtSession s = env.createSession(model, o);
                    OnnxTensor in = OnnxTensor.createTensor(env, x);
                    OrtSession.Result r = s.run(Map.of("x", in))) {
                return (float[][]) r.get(0).getValue();
            }
        }
    }

    /** A tensor [n, k] of random codes, scales and zero-points (and g_idx, if given). */
    static QuantizedTensor random(Random rnd, LinearScheme s, int n, int k, boolean sym, int[] gIdx) {
        int groups = s.groupSize() > 0 ? n * (k / s.groupSize()) : s.groupSize() == -1 ? n : 1;
        int rowBytes = (k * s.bits() + 7) / 8;
        byte[] packed = new byte[n * rowBytes];
        rnd.nextBytes(packed);
        if ((k * s.bits()) % 8 != 0) {
            throw new IllegalArgumentException("test shapes fill whole bytes");
        }
        float[] scales = new float[groups];
        byte[] zeros = new byte[groups];
        for (int g = 0; g < groups; g++) {
            scales[g] = 0.01f + rnd.nextFloat() * 0.1f;
            zeros[g] = (byte) (sym ? 1 << (s.bits() - 1) : rnd.nextInt(1 << s.bits()));
        }
        return new QuantizedTensor("W", s, n, k, PackOrder.LSB_FIRST_ROW_ALIGNED, packed, scales, zeros, gIdx);
    }

    /** ONNX Runtime's MatMulNBits output against x W^T with quant4j's dequantized W, in double. */
    static double maxError(QuantizedWeight q) throws OrtException {
        return maxError(q, 0);
    }

    /** {@link #maxError(QuantizedWeight)} with MatMulNBits' {@code accuracy_level}. */
    static double maxError(QuantizedWeight q, int accuracyLevel) throws OrtException {
        int n = q.rows();
        int k = q.cols();
        int m = 3;
        byte[] model = OnnxExport.quantizedModel(
                "t.onnx", matMulModel(new float[k * n], m, k, n), Map.of("W", q), accuracyLevel);
        Random rnd = new Random(7);
        float[][] x = new float[m][k];
        for (float[] row : x) {
            for (int c = 0; c < k; c++) {
                row[c] = (float) rnd.nextGaussian();
            }
        }
        float[][] y = runOrt(model, x);
        float[] w = q.dequantize().array();
        double worst = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double e = 0;
                double mag = 0;
                for (int c = 0; c < k; c++) {
                    e += (double) x[i][c] * w[j * k + c];
                    mag += Math.abs((double) x[i][c] * w[j * k + c]);
                }
                worst = Math.max(worst, Math.abs(y[i][j] - e) / Math.max(mag, 1e-6));
            }
        }
        return worst;
    }

    @Test
    void onnxRuntimeComputesWhatTheCodesStandFor() throws OrtException {
        Random rnd = new Random(42);
        // asymmetric 4 bits, 3 blocks of 32 (zero-points of a row: two bytes, half of one unused)
        assertThat(maxError(random(rnd, LinearScheme.asym(4, 32), 24, 96, false, null)))
                .isLessThan(1e-5);
        // symmetric: zero_points left out, ONNX Runtime's default 8
        assertThat(maxError(random(rnd, LinearScheme.sym(4, 16), 8, 64, true, null)))
                .isLessThan(1e-5);
        // 128 and 256 blocks, 4 bits
        assertThat(maxError(random(rnd, LinearScheme.asym(4, 128), 8, 384, false, null)))
                .isLessThan(1e-5);
        assertThat(maxError(random(rnd, LinearScheme.asym(4, 256), 8, 512, false, null)))
                .isLessThan(1e-5);
        // 8 bits
        assertThat(maxError(random(rnd, LinearScheme.asym(8, 32), 8, 96, false, null)))
                .isLessThan(1e-5);
        assertThat(maxError(random(rnd, LinearScheme.sym(8, 32), 8, 64, true, null)))
                .isLessThan(1e-5);
        // groups of 512 and 96 (blocks of 256 and 32, the group's parameters repeated)
        assertThat(maxError(random(rnd, LinearScheme.asym(4, 512), 8, 1024, false, null)))
                .isLessThan(1e-5);
        assertThat(maxError(random(rnd, LinearScheme.asym(8, 96), 8, 192, false, null)))
                .isLessThan(1e-5);
        // per channel over K = 384 and 1536: blocks of 256, the last of 384 half padding
        assertThat(maxError(random(rnd, LinearScheme.asym(4, -1), 8, 384, false, null)))
                .isLessThan(1e-5);
        assertThat(maxError(random(rnd, LinearScheme.asym(8, -1), 8, 1536, false, null)))
                .isLessThan(1e-5);
        // per channel: one block of 64 over K = 40, the rest zero codes
        assertThat(maxError(random(rnd, LinearScheme.asym(4, -1), 8, 40, false, null)))
                .isLessThan(1e-5);
        // per tensor: one scale repeated over N
        assertThat(maxError(random(rnd, LinearScheme.asym(4, 0), 8, 48, false, null)))
                .isLessThan(1e-5);
    }

    /**
     * accuracy_level 4: ONNX Runtime quantizes the activations to int8 (per block), so the product is close to, not
     * equal to, the float32 one; level 0 on the same weights is exact.
     */
    @Test
    void accuracyLevel4QuantizesTheActivations() throws OrtException {
        Random rnd = new Random(4);
        for (LinearScheme s : List.of(LinearScheme.asym(4, 128), LinearScheme.asym(4, 32), LinearScheme.asym(8, -1))) {
            QuantizedTensor q = random(rnd, s, 16, 384, false, null);
            assertThat(maxError(q, 0)).as(s.toString()).isLessThan(1e-5);
            double e4 = maxError(q, 4);
            System.out.printf(Locale.ROOT, "accuracy_level 4, %s: relative error %.2e%n", s, e4);
            assertThat(e4).as(s.toString()).isGreaterThan(1e-5).isLessThan(0.05);
        }
    }

    /**
     * NF4 and FP4 as MatMulBnb4: bitsandbytes' order and tables, blocks 32 to 256, and 1024 written as blocks of 256
     * repeating its absmax (N * K = 1536 not a multiple of 1024: the last block partial).
     */
    @Test
    void nf4AndFp4AsMatMulBnb4() throws OrtException {
        Random rnd = new Random(9);
        for (Codebook book : Codebook.values()) {
            for (int block : new int[] {32, 256, 1024}) {
                int n = 24;
                int k = 64;
                FloatMatrix w = FloatMatrix.zeros("W", n, k);
                for (int i = 0; i < n * k; i++) {
                    w.array()[i] = (float) rnd.nextGaussian();
                }
                CodebookTensor q = new BlockwiseQuantizer(new CodebookScheme(book, block)).quantize(w);
                assertThat(maxError(q)).as(book + " block " + block).isLessThan(1e-5);
            }
        }
    }

    /** GPTQ act-order: groups of 16 features scattered over K, written as a Gather and B in group order. */
    @Test
    void actOrderGIdx() throws OrtException {
        Random rnd = new Random(3);
        int k = 64;
        List<Integer> order = new ArrayList<>();
        for (int c = 0; c < k; c++) {
            order.add(c);
        }
        java.util.Collections.shuffle(order, rnd);
        int[] gIdx = new int[k];
        for (int j = 0; j < k; j++) {
            gIdx[order.get(j)] = j / 16; // as GPTQ's act-order assigns groups: by position in the permuted order
        }
        assertThat(maxError(random(rnd, LinearScheme.asym(4, 16), 8, k, false, gIdx)))
                .isLessThan(1e-5);
    }

    /**
     * The act-order permutation is written as int32 indices: its Gather and the MatMulNBits after it give exactly the
     * outputs of the same model with the permutation as int64 (built here by hand from the exported initializers).
     */
    @Test
    void actOrderInt32PermutationGivesTheInt64Outputs() throws OrtException {
        Random rnd = new Random(11);
        int k = 64;
        int n = 8;
        int m = 3;
        List<Integer> order = new ArrayList<>();
        for (int c = 0; c < k; c++) {
            order.add(c);
        }
        java.util.Collections.shuffle(order, rnd);
        int[] gIdx = new int[k];
        for (int j = 0; j < k; j++) {
            gIdx[order.get(j)] = j / 16;
        }
        QuantizedTensor q = random(rnd, LinearScheme.asym(4, 16), n, k, false, gIdx);
        byte[] exported = OnnxExport.quantizedModel("t.onnx", matMulModel(new float[k * n], m, k, n), Map.of("W", q));
        OnnxModel written = OnnxModel.parse("t.onnx", exported);
        OnnxModel.Initializer perm = written.initializer("W_perm");
        assertThat(perm.dataType()).isEqualTo(INT32);
        assertThat(perm.dims()).containsExactly(k);
        ByteBuffer p32 = ByteBuffer.wrap(perm.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer p64 = ByteBuffer.allocate(8 * k).order(ByteOrder.LITTLE_ENDIAN);
        for (int c = 0; c < k; c++) {
            p64.putLong(p32.getInt());
        }
        Proto graph = new Proto()
                .message(
                        1,
                        new Proto()
                                .string(1, "x")
                                .string(1, "W_perm")
                                .string(2, "xp")
                                .string(3, "gather")
                                .string(4, "Gather")
                                .message(
                                        5,
                                        new Proto()
                                                .string(1, "axis")
                                                .intField(3, -1)
                                                .intField(20, 2)))
                .message(
                        1,
                        new Proto()
                                .string(1, "xp")
                                .string(1, "W_Q4")
                                .string(1, "W_scales")
                                .string(1, "W_zero_points")
                                .string(2, "y")
                                .string(3, "mm")
                                .string(4, "MatMulNBits")
                                .message(
                                        5,
                                        new Proto()
                                                .string(1, "K")
                                                .intField(3, k)
                                                .intField(20, 2))
                                .message(
                                        5,
                                        new Proto()
                                                .string(1, "N")
                                                .intField(3, n)
                                                .intField(20, 2))
                                .message(
                                        5,
                                        new Proto()
                                                .string(1, "bits")
                                                .intField(3, 4)
                                                .intField(20, 2))
                                .message(
                                        5,
                                        new Proto()
                                                .string(1, "block_size")
                                                .intField(3, 16)
                                                .intField(20, 2))
                                .string(7, OnnxExport.MS_DOMAIN))
                .string(2, "g");
        for (String name : List.of("W_Q4", "W_scales", "W_zero_points")) {
            OnnxModel.Initializer t = written.initializer(name);
            Proto tp = new Proto();
            for (long d : t.dims()) {
                tp.intField(1, d);
            }
            graph.message(5, tp.intField(2, t.dataType()).string(8, name).bytesField(9, t.bytes()));
        }
        graph.message(
                        5,
                        new Proto()
                                .intField(1, k)
                                .intField(2, INT64)
                                .string(8, "W_perm")
                                .bytesField(9, p64.array()))
                .message(11, floatValue("x", m, k))
                .message(12, floatValue("y", m, n));
        byte[] int64Model = new Proto()
                .intField(1, 8)
                .message(8, new Proto().string(1, "").intField(2, 17))
                .message(8, new Proto().string(1, OnnxExport.MS_DOMAIN).intField(2, 1))
                .message(7, graph)
                .out
                .toByteArray();
        float[][] x = new float[m][k];
        for (float[] row : x) {
            for (int c = 0; c < k; c++) {
                row[c] = (float) rnd.nextGaussian();
            }
        }
        float[][] y32 = run(exported, x);
        float[][] y64 = run(int64Model, x);
        assertThat(y32).isDeepEqualTo(y64);
        assertThat(maxError(q)).isLessThan(1e-5);
    }

    /** The model's output {@code y} for the input {@code x}. */
    private static float[][] run(byte[] model, float[][] x) throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession s = env.createSession(model, new OrtSession.SessionOptions());
                OnnxTensor in = OnnxTensor.createTensor(env, x);
                OrtSession.Result r = s.run(Map.of("x", in))) {
            return (float[][]) r.get(0).getValue();
        }
    }

    @Test
    void awqInputScalesAsAMul() throws OrtException {
        Random rnd = new Random(5);
        float[] s = new float[64];
        for (int c = 0; c < s.length; c++) {
            s[c] = 0.5f + rnd.nextFloat() * 2;
        }
        QuantizedTensor q =
                random(rnd, LinearScheme.asym(4, 32), 8, 64, false, null).withInputScales(s);
        assertThat(maxError(q)).isLessThan(1e-5);
    }

    /**
     * The real all-MiniLM-L6-v2, its 36 MatMul weights RTN 4-bit g128 and g32, and 8-bit per channel (blocks of 256): ONNX Runtime's sentence embeddings of the exported
     * model equal quant4j's own forward pass with the same quantized weights.
     */
    @Test
    void miniLmEmbeddingsEqualQuant4jsForwardPass() throws Exception {
        byte[] modelBytes = EvalCommand.resource(EvalCommand.MODEL);
        OnnxModel onnx = OnnxModel.parse("all-minilm-l6-v2.onnx", modelBytes);
        WordPieceTokenizer tokenizer = WordPieceTokenizer.parse(
                "tokenizer", new String(EvalCommand.resource(EvalCommand.TOKENIZER), StandardCharsets.UTF_8));
        List<int[]> texts = new ArrayList<>();
        List<String> pairs = EvalCommand.lines("/wordnet/pairs.tsv");
        for (String line : pairs.subList(0, 20)) {
            for (String sentence : line.split("\t", 2)) {
                texts.add(tokenizer.encode(sentence));
            }
        }
        ForkJoinPool pool = new ForkJoinPool(2);
        try {
            BertEncoder fp32 = BertEncoder.fromOnnx(onnx, 12, pool);
            Map<String, String> weightOfLinear = new HashMap<>();
            onnx.matMulWeights().forEach((node, w) -> {
                if (node.startsWith("/encoder/layer.")) {
                    String path = node.substring(1, node.length() - "/MatMul".length());
                    weightOfLinear.put(path.replace('/', '.'), w);
                }
            });
            for (LinearScheme scheme :
                    List.of(LinearScheme.asym(4, 128), LinearScheme.asym(4, 32), LinearScheme.asym(8, -1))) {
                Map<String, QuantizedTensor> weights = new HashMap<>();
                Map<String, Linear> linears = new HashMap<>();
                for (Linear l : fp32.linears()) {
                    Linear.Dense d = (Linear.Dense) l;
                    QuantizedTensor q = new RtnQuantizer(scheme).quantize(d.weight());
                    weights.put(weightOfLinear.get(l.name()), q);
                    linears.put(l.name(), Linear.quantized(l.name(), QuantizedLinear.of(q, d.bias(), pool)));
                }
                assertThat(weights).hasSize(36);
                byte[] exported = OnnxExport.quantizedModel("minilm", modelBytes, weights);
                BertEncoder ours = fp32.withLinears(linears);
                float[][] mine = EmbeddingEval.embed(ours, texts, i -> {}, pool);
                float[][] theirs;
                long t0 = System.nanoTime();
                try (OrtEmbedder ort = new OrtEmbedder(exported, 1)) {
                    theirs = ort.embed(texts, i -> {});
                }
                double ms = (System.nanoTime() - t0) / 1e6 / texts.size();
                double[] cos = EmbeddingEval.cosineStats(mine, theirs);
                System.out.printf(
                        Locale.ROOT,
                        "all-MiniLM-L6-v2 RTN %s as MatMulNBits: %d bytes (FP32 %d), %d sentences, cosine"
                                + " mean %.9f, 1 - min %.2e, ONNX Runtime %.2f ms a sentence (session included)%n",
                        scheme,
                        exported.length,
                        modelBytes.length,
                        texts.size(),
                        cos[0],
                        1 - cos[1],
                        ms);
                assertThat(cos[1]).isGreaterThanOrEqualTo(0.99999);
                OnnxModel back = OnnxModel.parse("exported", exported);
                // every linear's bias Add folded into its MatMulNBits
                assertThat(back.nodes()).hasSize(onnx.nodes().size() - 36);
                assertThat(back.nodes().stream().filter(n -> n.opType().equals("Add")))
                        .hasSize((int) onnx.nodes().stream()
                                        .filter(n -> n.opType().equals("Add"))
                                        .count()
                                - 36);
                assertThat(back.nodes().stream().filter(n -> n.opType().equals("MatMulNBits")))
                        .hasSize(36);
                assertThat(back.inputs()).isEqualTo(onnx.inputs());
                assertThat(back.outputs()).isEqualTo(onnx.outputs());
            }
        } finally {
            pool.shutdown();
        }
    }

    /**
     * GatherBlockQuantized of a table [3, 48] in blocks of 16 (three a row: an odd count, so the zero-points' packing
     * row by row differs from a packing over the whole array), asymmetric with zero-points and symmetric without:
     * ONNX Runtime's rows equal quant4j's dequantized table.
     */
    @Test
    void gatherBlockQuantizedTable() throws OrtException {
        gatherBlockQuantizedTable(LinearScheme.asym(4, 16), 4, INT64);
        gatherBlockQuantizedTable(LinearScheme.sym(4, 16), 3, INT64);
    }

    /**
     * The same at 8 bits (one code a byte; zero-points one a byte, left out when all are 128) and with int32 indices,
     * both of which ONNX Runtime's CPU kernel is registered for.
     */
    @Test
    void gatherBlockQuantizedEightBitsAndInt32Indices() throws OrtException {
        gatherBlockQuantizedTable(LinearScheme.asym(8, 16), 4, INT64);
        gatherBlockQuantizedTable(LinearScheme.sym(8, 16), 3, INT32);
        gatherBlockQuantizedTable(LinearScheme.asym(4, 16), 4, INT32);
    }

    static final int INT32 = 6;
    static final int INT64 = 7;

    private static void gatherBlockQuantizedTable(LinearScheme scheme, int inputs, int indexType) throws OrtException {
        int v = 3;
        int h = 48;
        QuantizedTensor q = random(new Random(1), scheme, v, h, scheme.symmetry() == Symmetry.SYM, null);
        Proto indices = new Proto()
                .string(1, "i")
                .message(
                        2,
                        new Proto()
                                .message(
                                        1,
                                        new Proto()
                                                .intField(1, indexType)
                                                .message(2, new Proto().message(1, new Proto().intField(1, 4)))));
        Proto graph = new Proto()
                .message(
                        1,
                        new Proto()
                                .string(1, "T")
                                .string(1, "i")
                                .string(2, "y")
                                .string(3, "g")
                                .string(4, "Gather"))
                .string(2, "g")
                .message(
                        5,
                        new Proto()
                                .intField(1, v)
                                .intField(1, h)
                                .intField(2, 1)
                                .string(8, "T")
                                .bytesField(9, new byte[4 * v * h]))
                .message(11, indices)
                .message(12, floatValue("y", 4, h));
        byte[] model = new Proto()
                .intField(1, 8)
                .message(8, new Proto().string(1, "").intField(2, 17))
                .message(7, graph)
                .out
                .toByteArray();
        byte[] exported = OnnxExport.quantizedModel("table", model, Map.of("T", q));
        OnnxModel written = OnnxModel.parse("table", exported);
        assertThat(written.nodes().get(0).inputs()).hasSize(inputs);
        int bits = scheme.bits();
        OnnxModel.Initializer data = written.initializer("T_Q" + bits);
        assertThat(data.dataType()).isEqualTo(2); // UINT8
        assertThat(data.dims()).containsExactly(v, h * bits / 8);
        assertThat(written.initializer("T_scales").dims()).containsExactly(v, h / 16);
        if (inputs == 4) {
            assertThat(written.initializer("T_zero_points").dims()).containsExactly(v, (h / 16 * bits + 7) / 8);
        }
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        long[] rows = {2, 0, 1, 2};
        try (OrtSession s = env.createSession(exported, new OrtSession.SessionOptions());
                OnnxTensor in = indexType == INT64
                        ? OnnxTensor.createTensor(env, rows)
                        : OnnxTensor.createTensor(
                                env,
                                java.util.Arrays.stream(rows)
                                        .mapToInt(x -> (int) x)
                                        .toArray());
                OrtSession.Result r = s.run(Map.of("i", in))) {
            float[][] y = (float[][]) r.get(0).getValue();
            FloatMatrix deq = q.dequantize();
            for (int j = 0; j < rows.length; j++) {
                for (int c = 0; c < h; c++) {
                    assertThat(y[j][c]).isEqualTo(deq.get((int) rows[j], c));
                }
            }
        }
    }

    /**
     * all-MiniLM-L6-v2 with its word embeddings too (RTN int4 g128 along the hidden size) as GatherBlockQuantized,
     * its linears RTN int4 g128 as MatMulNBits: ONNX Runtime's embeddings equal quant4j's forward pass on a model whose
     * word embeddings are the dequantized table and whose linears are the same quantized weights.
     */
    @Test
    void miniLmWithQuantizedWordEmbeddings() throws Exception {
        byte[] modelBytes = EvalCommand.resource(EvalCommand.MODEL);
        OnnxModel onnx = OnnxModel.parse("all-minilm-l6-v2.onnx", modelBytes);
        String table = "embeddings.word_embeddings.weight";
        FloatMatrix words = onnx.initializer(table).matrix();
        QuantizedTensor qWords = new RtnQuantizer(LinearScheme.asym(4, 128)).quantize(words);
        // the same model with the dequantized table in place of the FP32 one (same size: overwritten where it lies)
        byte[] original = le(words.array());
        byte[] withDequantized = modelBytes.clone();
        int at = indexOf(modelBytes, original);
        assertThat(at).isPositive();
        System.arraycopy(le(qWords.dequantize().array()), 0, withDequantized, at, original.length);
        WordPieceTokenizer tokenizer = WordPieceTokenizer.parse(
                "tokenizer", new String(EvalCommand.resource(EvalCommand.TOKENIZER), StandardCharsets.UTF_8));
        List<int[]> texts = new ArrayList<>();
        for (String line : EvalCommand.lines("/wordnet/pairs.tsv").subList(0, 20)) {
            for (String sentence : line.split("\t", 2)) {
                texts.add(tokenizer.encode(sentence));
            }
        }
        ForkJoinPool pool = new ForkJoinPool(2);
        try {
            BertEncoder fp32 = BertEncoder.fromOnnx(OnnxModel.parse("dequantized table", withDequantized), 12, pool);
            Map<String, String> weightOfLinear = new HashMap<>();
            onnx.matMulWeights().forEach((node, w) -> {
                if (node.startsWith("/encoder/layer.")) {
                    String path = node.substring(1, node.length() - "/MatMul".length());
                    weightOfLinear.put(path.replace('/', '.'), w);
                }
            });
            Map<String, QuantizedWeight> weights = new HashMap<>();
            Map<String, Linear> linears = new HashMap<>();
            for (Linear l : fp32.linears()) {
                Linear.Dense d = (Linear.Dense) l;
                QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 128)).quantize(d.weight());
                weights.put(weightOfLinear.get(l.name()), q);
                linears.put(l.name(), Linear.quantized(l.name(), QuantizedLinear.of(q, d.bias(), pool)));
            }
            weights.put(table, qWords);
            byte[] exported = OnnxExport.quantizedModel("minilm", modelBytes, weights);
            float[][] mine = EmbeddingEval.embed(fp32.withLinears(linears), texts, i -> {}, pool);
            float[][] theirs;
            try (OrtEmbedder ort = new OrtEmbedder(exported, 1)) {
                theirs = ort.embed(texts, i -> {});
            }
            double[] cos = EmbeddingEval.cosineStats(mine, theirs);
            System.out.printf(
                    Locale.ROOT,
                    "all-MiniLM-L6-v2 word embeddings GatherBlockQuantized int4 g128 and linears MatMulNBits int4"
                            + " g128: %d bytes (FP32 %d), %d sentences, 1 - min cosine %.2e%n",
                    exported.length,
                    modelBytes.length,
                    texts.size(),
                    1 - cos[1]);
            assertThat(cos[1]).isGreaterThanOrEqualTo(0.99999);
            assertThat(OnnxModel.parse("exported", exported).nodes().stream()
                            .filter(n -> n.opType().equals("GatherBlockQuantized")))
                    .hasSize(1);
        } finally {
            pool.shutdown();
        }
    }

    static byte[] le(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b.array();
    }

    /** Where {@code part} starts in {@code whole}, or -1 (checked on its first 256 bytes, then whole). */
    static int indexOf(byte[] whole, byte[] part) {
        outer:
        for (int i = 0; i + part.length <= whole.length; i++) {
            for (int j = 0; j < 256; j++) {
                if (whole[i + j] != part[j]) {
                    continue outer;
                }
            }
            if (java.util.Arrays.equals(whole, i, i + part.length, part, 0, part.length)) {
                return i;
            }
        }
        return -1;
    }
}
