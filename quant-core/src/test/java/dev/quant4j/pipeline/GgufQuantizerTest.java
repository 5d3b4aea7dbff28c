package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.GgufStreamWriter;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.GgufValueType;
import dev.quant4j.io.GgufWriter;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import dev.quant4j.testing.Pools;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The streamed GGUF output is the in-memory writer's file byte for byte ({@link GgufWriter} fed with {@link
 * GgmlQuants#quantize} of each whole weight), for every type, with row blocks of one row to whole weights, on one, two
 * and eight threads; its error figures do not depend on the thread count and equal those of the whole weights.
 */
class GgufQuantizerTest {

    @TempDir
    Path dir;

    private static final ForkJoinPool EIGHT = new ForkJoinPool(8);

    static Stream<Arguments> cases() {
        List<Arguments> list = new ArrayList<>();
        long seed = 1;
        for (GgmlType type : GgmlType.quantizableTypes()) {
            for (int blockElements : new int[] {1, 700, 1 << 18}) {
                list.add(Arguments.of(type, blockElements, seed++));
            }
        }
        return list.stream();
    }

    @ParameterizedTest
    @MethodSource("cases")
    void streamedFileIsTheInMemoryWritersOnAnyThreadCount(GgmlType type, int blockElements, long seed)
            throws Exception {
        FloatMatrix a = Gaussian.matrix("blk.0.attn_q.weight", seed, 13, 512, 0.1);
        FloatMatrix b = Gaussian.matrix("blk.0.ffn_up.weight", seed + 100, 7, 256, 0.02);
        float[] norm = Gaussian.samples(seed + 200, 256, 1.0);
        byte[] normBytes = GgmlQuants.quantize(GgmlType.F32, norm, 1, 256);
        byte[] ids = {1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0};
        Map<String, GgufValue> meta = new LinkedHashMap<>();
        meta.put("general.architecture", GgufValue.string("llama"));
        meta.put("general.alignment", GgufValue.uint32(64));
        meta.put("tokenizer.ggml.tokens", GgufValue.array(GgufValueType.STRING, List.of("<s>", "a")));
        byte[] expected = new GgufWriter()
                .putAll(meta)
                .addTensor(a.name(), new long[] {512, 13}, type, GgmlQuants.quantize(type, a.toArray(), 13, 512))
                .addTensor("norm", new long[] {256}, GgmlType.F32, normBytes)
                .addTensor(b.name(), new long[] {256, 7}, type, GgmlQuants.quantize(type, b.toArray(), 7, 256))
                .addTensor("ids", new long[] {3}, GgmlType.I32, ids)
                .toBytes();
        List<GgufQuantizer.Item> items = List.of(
                weight(a),
                GgufQuantizer.Item.kept(
                        "norm",
                        new long[] {256},
                        GgmlType.F32,
                        (from, length, out, i) ->
                                out.write(i, from, ByteBuffer.wrap(normBytes, (int) from, (int) length))),
                weight(b),
                GgufQuantizer.Item.kept(
                        "ids",
                        new long[] {3},
                        GgmlType.I32,
                        (from, length, out, i) -> out.write(i, from, ByteBuffer.wrap(ids, (int) from, (int) length))));
        List<List<GgufQuantizer.WeightReport>> reports = new ArrayList<>();
        for (ForkJoinPool pool : List.of(Pools.ONE, Pools.TWO, EIGHT)) {
            Path out = dir.resolve("out-" + pool.getParallelism() + ".gguf");
            AtomicLong progress = new AtomicLong();
            GgufQuantizer.Summary s = new GgufQuantizer(GgufQuantizer.Method.rtn(type), pool, blockElements)
                    .write(meta, items, out, (t, n) -> progress.addAndGet(n));
            assertThat(Files.readAllBytes(out)).isEqualTo(expected);
            assertThat(s.bytesOut()).isEqualTo(expected.length);
            assertThat(s.kept()).isEqualTo(2);
            assertThat(progress.get()).isEqualTo(s.bytesIn()).isEqualTo(4L * (13 * 512 + 7 * 256) + 1024 + 12);
            reports.add(s.weights());
        }
        assertThat(reports.get(1)).isEqualTo(reports.get(0));
        assertThat(reports.get(2)).isEqualTo(reports.get(0));
        GgufQuantizer.WeightReport r = reports.get(0).get(0);
        ErrorMetrics whole = ErrorMetrics.compare(
                a,
                FloatMatrix.of(
                        a.name(),
                        13,
                        512,
                        GgmlQuants.dequantize(type, GgmlQuants.quantize(type, a.toArray(), 13, 512), 13, 512),
                        0));
        assertThat(r.error().mse()).isCloseTo(whole.mse(), org.assertj.core.data.Offset.offset(whole.mse() * 1e-12));
        assertThat(r.error().maxAbs()).isEqualTo(whole.maxAbs());
        assertThat(r.bitsPerWeight()).isEqualTo(8.0 * type.rowSize(512) / 512);
    }

    private static GgufQuantizer.Item weight(FloatMatrix w) {
        return GgufQuantizer.Item.weight(
                w.name(),
                w.rows(),
                w.cols(),
                4L * w.size(),
                (first, count, dst) -> System.arraycopy(w.array(), w.rowOffset((int) first), dst, 0, count * w.cols()));
    }

    /**
     * Split output: the files {@link GgufWriter#writeSplit} writes for the same tensors, byte for byte, on any thread
     * count: the first split with the metadata (and its alignment of 64), the others aligned to 32.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"0, 1, 4", "0, 3, 2", "1600, 0, 3", "3000, 0, 2", "8000, 0, 1"})
    void splitFilesAreTheInMemoryWritersOnAnyThreadCount(long maxBytes, int maxTensors, int splits) throws Exception {
        GgmlType type = GgmlType.Q4_K;
        FloatMatrix a = Gaussian.matrix("a.weight", 11, 5, 512, 0.1);
        FloatMatrix b = Gaussian.matrix("b.weight", 12, 9, 256, 0.1);
        float[] norm = Gaussian.samples(13, 64, 1.0);
        byte[] normBytes = GgmlQuants.quantize(GgmlType.F32, norm, 1, 64);
        Map<String, GgufValue> meta = new LinkedHashMap<>();
        meta.put("general.architecture", GgufValue.string("llama"));
        meta.put("general.alignment", GgufValue.uint32(64));
        GgufWriter single = new GgufWriter()
                .putAll(meta)
                .addTensor("norm", new long[] {64}, GgmlType.F32, normBytes)
                .addTensor(a.name(), new long[] {512, 5}, type, GgmlQuants.quantize(type, a.toArray(), 5, 512))
                .addTensor("norm2", new long[] {64}, GgmlType.F32, normBytes)
                .addTensor(b.name(), new long[] {256, 9}, type, GgmlQuants.quantize(type, b.toArray(), 9, 256));
        Path expectedDir = Files.createDirectory(dir.resolve("expected"));
        List<Path> expected = single.writeSplit(expectedDir.resolve("m.gguf"), maxBytes, maxTensors);
        assertThat(expected).hasSize(splits);
        GgufQuantizer.Copy copyNorm =
                (from, length, out, i) -> out.write(i, from, ByteBuffer.wrap(normBytes, (int) from, (int) length));
        List<GgufQuantizer.Item> items = List.of(
                GgufQuantizer.Item.kept("norm", new long[] {64}, GgmlType.F32, copyNorm),
                weight(a),
                GgufQuantizer.Item.kept("norm2", new long[] {64}, GgmlType.F32, copyNorm),
                weight(b));
        for (ForkJoinPool pool : List.of(Pools.ONE, Pools.TWO, EIGHT)) {
            Path out = Files.createDirectory(dir.resolve("out-" + pool.getParallelism()))
                    .resolve("m.gguf");
            GgufQuantizer.Summary s = new GgufQuantizer(GgufQuantizer.Method.rtn(type), pool, 700)
                    .write(meta, items, out, new GgufQuantizer.Split(maxBytes, maxTensors), (t, n) -> {});
            assertThat(s.files()).hasSize(splits);
            long total = 0;
            for (int i = 0; i < splits; i++) {
                assertThat(s.files().get(i).getFileName())
                        .isEqualTo(expected.get(i).getFileName());
                assertThat(Files.readAllBytes(s.files().get(i))).isEqualTo(Files.readAllBytes(expected.get(i)));
                total += Files.size(s.files().get(i));
            }
            assertThat(s.bytesOut()).isEqualTo(total);
            try (Stream<Path> files = Files.list(out.getParent())) {
                assertThat(files.toList()).containsExactlyInAnyOrderElementsOf(s.files());
            }
        }
    }

    @Test
    void aNanInTheLastSplitLeavesNoSplit() throws Exception {
        FloatMatrix a = Gaussian.matrix("a", 3, 8, 64, 0.1);
        FloatMatrix b = Gaussian.matrix("b", 4, 8, 64, 0.1);
        b.array()[b.rowOffset(7) + 63] = Float.NaN;
        assertThatThrownBy(() -> new GgufQuantizer(GgufQuantizer.Method.rtn(GgmlType.Q8_0), Pools.TWO, 64)
                        .write(
                                Map.of(),
                                List.of(weight(a), weight(b)),
                                dir.resolve("w.gguf"),
                                new GgufQuantizer.Split(0, 1),
                                (t, n) -> {}))
                .hasMessage("tensor 'b': value NaN at row 7, column 63 cannot be quantized to q8_0");
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files).isEmpty();
        }
    }

    @Test
    void aNanIsRefusedByTensorRowAndColumnAndNothingIsLeft() throws Exception {
        FloatMatrix a = Gaussian.matrix("w", 3, 40, 64, 0.1);
        a.array()[a.rowOffset(37) + 5] = Float.NaN;
        Path out = dir.resolve("w.gguf");
        assertThatThrownBy(() -> new GgufQuantizer(GgufQuantizer.Method.rtn(GgmlType.Q4_0), Pools.TWO, 128)
                        .write(Map.of(), List.of(weight(a)), out, (t, n) -> {}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tensor 'w': value NaN at row 37, column 5 cannot be quantized to q4_0");
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files).isEmpty();
        }
    }

    @Test
    void aRowThatIsNotWholeBlocksIsRefusedByName() {
        FloatMatrix a = Gaussian.matrix("w", 3, 4, 96, 0.1);
        assertThatThrownBy(() -> new GgufQuantizer(GgufQuantizer.Method.rtn(GgmlType.Q4_K), Pools.ONE)
                        .write(Map.of(), List.of(weight(a)), dir.resolve("w.gguf"), (t, n) -> {}))
                .hasMessage("tensor 'w' [4, 96]: its rows of 96 values are not a multiple of the q4_K block size 256");
    }

    @Test
    void theStreamWriterRefusesAFileNotWrittenInFull() throws Exception {
        Path out = dir.resolve("x.gguf");
        try (GgufStreamWriter w = GgufStreamWriter.create(
                out, Map.of(), List.of(new GgufStreamWriter.Spec("t", new long[] {32, 2}, GgmlType.Q8_0)))) {
            assertThat(w.size()).isEqualTo(w.position(0, 0, 68) + 96);
            w.write(0, 0, ByteBuffer.wrap(new byte[34]));
            assertThatThrownBy(() -> w.write(0, 40, ByteBuffer.wrap(new byte[30])))
                    .hasMessageContaining("bytes [40, 70) are outside tensor 0 (68 bytes)");
            assertThatThrownBy(w::finish).hasMessageContaining("34 bytes of tensor data written, the tensors need 68");
        }
    }
}
