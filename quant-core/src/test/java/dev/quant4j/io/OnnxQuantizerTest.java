package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.quant.Quantizer;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.QuantScheme;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link OnnxQuantizer}: all-MiniLM-L6-v2 quantized while it is written gives the bytes {@link OnnxExport#write} gives
 * for the weights quantized beforehand, from the single file and from the model saved with external data, on 1 and 3
 * threads, each weight quantized once; ONNX Runtime runs the streamed external-data output to the in-memory export's
 * outputs; a weight whose data file was cut short or removed fails with its name and the file's, leaving nothing.
 */
class OnnxQuantizerTest {

    private static final String WORDS = "embeddings.word_embeddings.weight";

    @TempDir
    static Path shared;

    @TempDir
    Path dir;

    static byte[] model;
    static OnnxModel single;
    static Path ext;

    @BeforeAll
    static void models() throws Exception {
        model = OnnxModelTest.realModel();
        single = OnnxModel.parse("all-minilm-l6-v2.onnx", model);
        ext = shared.resolve("model.onnx");
        OnnxExternalData.write(ext, "all-minilm-l6-v2.onnx", model, single);
    }

    /** The MatMul weights in initializer order, and (linear schemes) the word embeddings as a Gather table. */
    static List<String> weights(OnnxModel m, QuantScheme scheme) {
        List<String> out = new ArrayList<>();
        var matmul = new java.util.HashSet<>(m.matMulWeights().values());
        for (String name : m.initializers().keySet()) {
            if (matmul.contains(name) || (name.equals(WORDS) && scheme instanceof LinearScheme)) {
                out.add(name);
            }
        }
        return out;
    }

    static Quantizer<?> quantizer(QuantScheme scheme) {
        return scheme instanceof LinearScheme l ? new RtnQuantizer(l) : new BlockwiseQuantizer((CodebookScheme) scheme);
    }

    /** What {@code quant quantize --format onnx} wrote before it streamed: every weight quantized, then written. */
    static void inMemory(Path out, OnnxModel m, byte[] bytes, QuantScheme scheme) throws Exception {
        Map<String, QuantizedWeight> q = new LinkedHashMap<>();
        var matmul = new java.util.HashSet<>(m.matMulWeights().values());
        for (String w : weights(m, scheme)) {
            var t = m.initializer(w).matrix();
            q.put(w, quantizer(scheme).quantize(matmul.contains(w) ? t.transpose() : t));
        }
        OnnxExport.write(out, m, bytes, q, 0);
    }

    static Stream<Arguments> cases() {
        QuantScheme g32 = LinearScheme.asym(4, 32); // every new tensor in the data file
        QuantScheme g128 = LinearScheme.asym(4, 128); // zero_points of 768 bytes: inside the model
        return Stream.of(
                Arguments.of(g32, true, 1),
                Arguments.of(g32, true, 3),
                Arguments.of(g128, true, 3),
                Arguments.of(g128, false, 1),
                Arguments.of(LinearScheme.sym(8, 64), true, 2),
                Arguments.of(CodebookScheme.nf4(64), true, 3));
    }

    @ParameterizedTest(name = "{0}, external data {1}, {2} threads")
    @MethodSource("cases")
    void streamedGivesTheInMemoryBytes(QuantScheme scheme, boolean external, int threads) throws Exception {
        OnnxModel m = external ? OnnxModel.read(ext) : single;
        byte[] bytes = external ? Files.readAllBytes(ext) : model;
        Path expected = Files.createDirectory(dir.resolve("expected")).resolve("q.onnx");
        inMemory(expected, m, bytes, scheme);
        Path out = Files.createDirectory(dir.resolve("streamed")).resolve("q.onnx");
        List<String> heard = Collections.synchronizedList(new ArrayList<>());
        List<String> weights = weights(m, scheme);
        try (ForkJoinPool pool = new ForkJoinPool(threads)) {
            OnnxQuantizer.write(
                    out,
                    m,
                    bytes,
                    weights,
                    scheme,
                    quantizer(scheme),
                    OnnxQuantizer.Layout.PLAIN,
                    0,
                    pool,
                    (q, e, w) -> {
                        if (w != null) {
                            assertThat(q.rows()).isEqualTo(w.rows());
                        }
                        heard.add(q.name());
                    });
        }
        assertThat(files(out.getParent())).isEqualTo(files(expected.getParent()));
        assertThat(files(out.getParent())).hasSize(external ? 2 : 1);
        for (String f : files(out.getParent())) {
            assertThat(Files.readAllBytes(out.resolveSibling(f)))
                    .as(f)
                    .isEqualTo(Files.readAllBytes(expected.resolveSibling(f)));
        }
        // each weight quantized once
        assertThat(heard).containsExactlyInAnyOrderElementsOf(weights);
    }

    /**
     * GPTQ with act-order (its features permuted into group order: a Gather by a perm tensor) and AWQ (its input scales:
     * a Mul by their inverses) lay out the graph before any weight is quantized, from {@link OnnxQuantizer.Layout}
     * alone, and give the bytes of the in-memory export of the same weights, which lays it out from the weights: on
     * all-MiniLM-L6-v2's first layer with external data, 2 threads, calibration activations per input width.
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"gptq-act-order", "awq"})
    void actOrderAndAwqStreamAsTheInMemoryExportWritesThem(String method) throws Exception {
        OnnxModel m = OnnxModel.read(ext);
        byte[] bytes = Files.readAllBytes(ext);
        boolean actOrder = method.equals("gptq-act-order");
        // AWQ's codes are llm-awq's min/max form
        LinearScheme scheme =
                actOrder ? LinearScheme.asym(4, 32) : new LinearScheme(4, dev.quant4j.scheme.Symmetry.MINMAX, 32);
        Map<Integer, dev.quant4j.tensor.FloatMatrix> calib = new java.util.concurrent.ConcurrentHashMap<>();
        java.util.function.IntFunction<dev.quant4j.tensor.FloatMatrix> x =
                cols -> calib.computeIfAbsent(cols, c -> dev.quant4j.tensor.Gaussian.matrix("x", c, 96, c, 1.0));
        Quantizer<?> quantizer = actOrder
                ? w -> {
                    var h = new dev.quant4j.gptq.HessianAccumulator("x", w.cols());
                    h.add(x.apply(w.cols()));
                    return new dev.quant4j.gptq.Gptq(dev.quant4j.gptq.GptqConfig.defaults(4)
                                    .withGroupSize(32)
                                    .withActOrder(true))
                            .quantize(w, h)
                            .tensor();
                }
                : w -> {
                    var stats = new dev.quant4j.awq.AwqStatistics("x", w.cols(), 96);
                    stats.add(x.apply(w.cols()));
                    return new dev.quant4j.awq.Awq(
                                    dev.quant4j.awq.AwqConfig.defaults(4).withGroupSize(32))
                            .quantize(w, stats)
                            .tensor();
                };
        // the first layer's six weights (both input widths), the others kept
        List<String> weights =
                m.matMulWeights().values().stream().distinct().limit(6).toList();
        Map<String, QuantizedWeight> known = new LinkedHashMap<>();
        for (String w : weights) {
            known.put(w, quantizer.quantize(m.initializer(w).matrix().transpose()));
        }
        assertThat(known.values())
                .allMatch(q -> actOrder
                        ? ((dev.quant4j.quant.QuantizedTensor) q).hasGIdx()
                        : ((dev.quant4j.quant.QuantizedTensor) q).hasInputScales());
        Path expected = Files.createDirectory(dir.resolve("expected")).resolve("q.onnx");
        OnnxExport.write(expected, m, bytes, known, 0);
        Path out = Files.createDirectory(dir.resolve("streamed")).resolve("q.onnx");
        try (ForkJoinPool pool = new ForkJoinPool(2)) {
            OnnxQuantizer.write(
                    out,
                    m,
                    bytes,
                    weights,
                    scheme,
                    quantizer,
                    new OnnxQuantizer.Layout(actOrder, !actOrder),
                    0,
                    pool,
                    (q, e, w) -> {});
        }
        assertThat(files(out.getParent())).isEqualTo(files(expected.getParent()));
        for (String f : files(out.getParent())) {
            assertThat(Files.readAllBytes(out.resolveSibling(f)))
                    .as(f)
                    .isEqualTo(Files.readAllBytes(expected.resolveSibling(f)));
        }
        // laid out without what the weights carry: refused by name, nothing written
        Path refused = Files.createDirectory(dir.resolve("refused")).resolve("q.onnx");
        try (ForkJoinPool pool = new ForkJoinPool(2)) {
            assertThatThrownBy(() -> OnnxQuantizer.write(
                            refused,
                            m,
                            bytes,
                            weights,
                            scheme,
                            quantizer,
                            OnnxQuantizer.Layout.PLAIN,
                            0,
                            pool,
                            (q, e, w) -> {}))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining(actOrder ? "a g_idx, which the layout does not permute" : "AWQ input scales");
        }
        assertThat(files(refused.getParent())).isEmpty();
    }

    /**
     * A MatMul weight read from external data in blocks of stored rows and transposed in squares: with sides that are
     * not multiples of either (k = 130 stored rows, n = 200 columns, and k below one block), every value lands where
     * the stored weight's transpose has it, and the output is the in-memory path's.
     */
    @ParameterizedTest(name = "W [{0}, {1}]")
    @MethodSource("oddShapes")
    void aWeightOfAnyShapeIsReadAsItsTranspose(int k, int n) throws Exception {
        byte[] inline = OnnxExportTest.model(k, n);
        Path in = Files.createDirectory(dir.resolve("in")).resolve("model.onnx");
        OnnxExternalData.write(in, "model.onnx", inline, OnnxModel.parse("model.onnx", inline));
        OnnxModel m = OnnxModel.read(in);
        assertThat(m.initializer("W").external()).isNotNull();
        byte[] bytes = Files.readAllBytes(in);
        LinearScheme scheme = LinearScheme.asym(4, LinearScheme.PER_CHANNEL);
        Path expected = Files.createDirectory(dir.resolve("expected")).resolve("q.onnx");
        inMemory(expected, m, bytes, scheme);
        Path out = Files.createDirectory(dir.resolve("streamed")).resolve("q.onnx");
        float[][] read = new float[1][];
        try (ForkJoinPool pool = new ForkJoinPool(2)) {
            OnnxQuantizer.write(
                    out,
                    m,
                    bytes,
                    List.of("W"),
                    scheme,
                    quantizer(scheme),
                    OnnxQuantizer.Layout.PLAIN,
                    0,
                    pool,
                    (q, e, w) -> {
                        assertThat(w.rows()).isEqualTo(n);
                        assertThat(w.cols()).isEqualTo(k);
                        read[0] = w.toArray();
                    });
        }
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < k; c++) {
                // OnnxExportTest.model stores W[c][r] = (c * n + r) * 0.01f
                assertThat(read[0][r * k + c]).as("[%d, %d]", r, c).isEqualTo((c * n + r) * 0.01f);
            }
        }
        for (String f : files(out.getParent())) {
            assertThat(Files.readAllBytes(out.resolveSibling(f)))
                    .as(f)
                    .isEqualTo(Files.readAllBytes(expected.resolveSibling(f)));
        }
    }

    /**
     * A MatMul weight whose groups or blocks of input features quantize independently is read and quantized a slice of
     * stored rows at a time, a block of rows at a time: slices that end inside the weight, a last slice (and a last
     * block) shorter than the others, group sizes that
     * are not powers of two, 4 and 8 bits (what MatMulNBits runs), NF4 and FP4. The output is the in-memory path's byte for byte (the whole
     * weight quantized at once), and the error the listener hears is the whole weight's, summed slice by slice. Per
     * channel, per tensor and NF4 with double quantization must be quantized whole, and are.
     */
    @ParameterizedTest(name = "{0}, W [{1}, {2}]")
    @MethodSource("slices")
    void aWeightQuantizedInSlicesIsTheWholeWeightsQuantization(QuantScheme scheme, int k, int n, boolean sliced)
            throws Exception {
        java.util.Random random = new java.util.Random(k * 31L + n);
        float[] values = new float[k * n];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian() * (1 + i % 7);
        }
        byte[] inline = OnnxExportTest.model(k, n, values);
        Path in = Files.createDirectory(dir.resolve("in")).resolve("model.onnx");
        OnnxExternalData.write(in, "model.onnx", inline, OnnxModel.parse("model.onnx", inline));
        OnnxModel m = OnnxModel.read(in);
        byte[] bytes = Files.readAllBytes(in);
        Quantizer<?> quantizer = quantizer(scheme);
        assertThat(quantizer.independentColumns(k) > 0).isEqualTo(sliced);
        Path expected = Files.createDirectory(dir.resolve("expected")).resolve("q.onnx");
        inMemory(expected, m, bytes, scheme);
        Path out = Files.createDirectory(dir.resolve("streamed")).resolve("q.onnx");
        List<Object[]> heard = new ArrayList<>();
        try (ForkJoinPool pool = new ForkJoinPool(2)) {
            OnnxQuantizer.write(
                    out, m, bytes, List.of("W"), scheme, quantizer, OnnxQuantizer.Layout.PLAIN, 0, pool, (q, e, w) -> {
                        heard.add(new Object[] {q, e, w});
                    });
        }
        for (String f : files(out.getParent())) {
            assertThat(Files.readAllBytes(out.resolveSibling(f)))
                    .as(f)
                    .isEqualTo(Files.readAllBytes(expected.resolveSibling(f)));
        }
        assertThat(heard).hasSize(1);
        QuantizedWeight q = (QuantizedWeight) heard.get(0)[0];
        ErrorMetrics error = (ErrorMetrics) heard.get(0)[1];
        assertThat(heard.get(0)[2] == null).as("read in slices").isEqualTo(sliced);
        ErrorMetrics whole = ErrorMetrics.compare(m.initializer("W").matrix().transpose(), q);
        assertThat(error.count()).isEqualTo((long) k * n);
        assertThat(error.mse()).isCloseTo(whole.mse(), org.assertj.core.data.Percentage.withPercentage(1e-4));
        assertThat(error.maxAbs()).isEqualTo(whole.maxAbs());
        assertThat(error.sqnrDb()).isCloseTo(whole.sqnrDb(), org.assertj.core.data.Offset.offset(1e-5));
        assertThat(error.cosine()).isCloseTo(whole.cosine(), org.assertj.core.data.Offset.offset(1e-6));
    }

    static Stream<Arguments> slices() {
        return Stream.of(
                Arguments.of(LinearScheme.asym(4, 16), 208, 67, true), // slices of 128 and 80
                Arguments.of(LinearScheme.sym(8, 16), 272, 33, true), // 128, 128, 16
                Arguments.of(LinearScheme.asym(4, 32), 96, 5, true), // one slice, the whole weight
                Arguments.of(LinearScheme.asym(8, 64), 320, 9, true), // 128, 128, 64
                Arguments.of(LinearScheme.asym(4, 48), 240, 17, true), // 96, 96, 48
                Arguments.of(LinearScheme.signed(4, 128), 384, 130, true),
                Arguments.of(CodebookScheme.nf4(64), 192, 67, true), // 128 and 64
                Arguments.of(LinearScheme.asym(4, 64), 256, 1100, true), // blocks of 512 rows: 512, 512, 76
                Arguments.of(CodebookScheme.nf4(64), 128, 1030, true),
                Arguments.of(CodebookScheme.fp4(32), 160, 3, true),
                Arguments.of(LinearScheme.asym(4, LinearScheme.PER_CHANNEL), 200, 67, false),
                Arguments.of(LinearScheme.asym(4, LinearScheme.PER_TENSOR), 200, 7, false),
                Arguments.of(CodebookScheme.nf4(64).withDoubleQuant(), 192, 67, false));
    }

    @Test
    void slicesAreWholeGroupsStartingOnAByte() {
        assertThat(OnnxQuantizer.sliceColumns(8, 200)).isEqualTo(128);
        assertThat(OnnxQuantizer.sliceColumns(12, 240)).isEqualTo(120);
        assertThat(OnnxQuantizer.sliceColumns(3, 999)).isEqualTo(120);
        assertThat(OnnxQuantizer.sliceColumns(128, 4096)).isEqualTo(128);
        assertThat(OnnxQuantizer.sliceColumns(256, 11008)).isEqualTo(256);
        assertThat(OnnxQuantizer.sliceColumns(32, 96)).isEqualTo(96);
    }

    static Stream<Arguments> oddShapes() {
        return Stream.of(Arguments.of(130, 200), Arguments.of(40, 67), Arguments.of(64, 64), Arguments.of(300, 1));
    }

    @Test
    void onnxRuntimeRunsTheStreamedExternalDataOutputAsTheInMemoryExport() throws Exception {
        QuantScheme scheme = LinearScheme.asym(4, 32);
        Path expected = Files.createDirectory(dir.resolve("expected")).resolve("q.onnx");
        inMemory(expected, single, model, scheme);
        Path out = Files.createDirectory(dir.resolve("streamed")).resolve("q.onnx");
        OnnxModel m = OnnxModel.read(ext);
        try (ForkJoinPool pool = new ForkJoinPool(2)) {
            OnnxQuantizer.write(
                    out,
                    m,
                    Files.readAllBytes(ext),
                    weights(m, scheme),
                    scheme,
                    quantizer(scheme),
                    OnnxQuantizer.Layout.PLAIN,
                    0,
                    pool,
                    (q, e, w) -> {});
        }
        assertThat(files(out.getParent())).containsExactly("q.onnx", "q.onnx.data");
        float[][] reference = OnnxStreamedExportTest.ort(expected);
        assertThat(OnnxStreamedExportTest.ort(out)).isDeepEqualTo(reference);
    }

    /** The MatMul weight stored last in the data file, with the file cut one byte short of its end, or removed. */
    @ParameterizedTest(name = "data file removed: {0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void aWeightWhoseDataIsCutShortOrMissingIsNamedAndNothingIsWritten(boolean removed) throws Exception {
        Path in = Files.createDirectory(dir.resolve("in")).resolve("model.onnx");
        OnnxExternalData.write(in, "all-minilm-l6-v2.onnx", model, single);
        OnnxModel m = OnnxModel.read(in);
        QuantScheme scheme = LinearScheme.asym(4, 32);
        List<String> weights = weights(m, scheme);
        String last = weights.get(0);
        for (String w : weights) {
            if (m.initializer(w).external().offset()
                    > m.initializer(last).external().offset()) {
                last = w;
            }
        }
        OnnxModel.External e = m.initializer(last).external();
        Path data = in.resolveSibling("model.onnx.data");
        if (removed) {
            Files.delete(data);
        } else {
            try (RandomAccessFile f = new RandomAccessFile(data.toFile(), "rw")) {
                f.setLength(e.offset() + e.length() - 1);
            }
        }
        Path out = Files.createDirectory(dir.resolve("out")).resolve("q.onnx");
        String lastWeight = last;
        try (ForkJoinPool pool = new ForkJoinPool(2)) {
            var thrown = assertThatThrownBy(() -> OnnxQuantizer.write(
                            out,
                            m,
                            Files.readAllBytes(in),
                            weights,
                            scheme,
                            quantizer(scheme),
                            OnnxQuantizer.Layout.PLAIN,
                            0,
                            pool,
                            (q, error, w) -> {}))
                    .hasMessageContaining("model.onnx.data");
            if (!removed) { // removed, the first tensor copied from it fails: a kept one or a weight
                thrown.isInstanceOf(MalformedTensorFileException.class)
                        .hasMessageContaining("'" + lastWeight + "' needs " + e.length() + " bytes");
            }
        }
        assertThat(files(out.getParent())).isEmpty();
    }

    private static List<String> files(Path folder) throws Exception {
        try (Stream<Path> s = Files.list(folder)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** MatMulNBits' B copied from quant4j's packed rows is B packed code by code (an identity permutation). */
    @ParameterizedTest(name = "{0} bits, K = {1}, block {2}")
    @org.junit.jupiter.params.provider.CsvSource({"4, 384, 32", "4, 96, 32", "8, 100, 128", "4, 1536, 128"})
    void bCopiedFromThePackedRowsIsBPackedCodeByCode(int bits, int k, int block) {
        java.util.Random random = new java.util.Random(k * 31L + bits);
        float[] values = new float[37 * k];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        var q = new RtnQuantizer(LinearScheme.asym(bits, LinearScheme.PER_CHANNEL))
                .quantize(dev.quant4j.tensor.FloatMatrix.of("w", 37, k, values, 0));
        int[] identity = java.util.stream.IntStream.range(0, k).toArray();
        assertThat(MatMulNBitsPacking.packB(q, block, null)).isEqualTo(MatMulNBitsPacking.packB(q, block, identity));
    }
}
