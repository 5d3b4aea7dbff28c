package dev.quant4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.io.DType;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.pipeline.CheckpointQuantizer.Choice;
import dev.quant4j.pipeline.CheckpointQuantizer.Method;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.HalfFloats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The streaming checkpoint quantizer against the in-memory one: the same weights quantized whole and written with
 * {@link QuantizedSafeTensors#toBytes} give the very bytes the stream writes, block by block, on any number of threads.
 */
class CheckpointQuantizerTest {

    @TempDir
    Path dir;

    /** A model-like file: F32, BF16 and F16 weights of awkward shapes, an embedding, a norm, and int64 ids. */
    private static final class Model {
        final List<FloatMatrix> weights = new ArrayList<>();
        final List<PassThrough> other = new ArrayList<>();
        final SafeTensorsWriter file = new SafeTensorsWriter();

        Model(long seed) {
            Random rnd = new Random(seed);
            weight("layers.0.q_proj.weight", 96, 128, DType.F32, rnd);
            weight("layers.0.up_proj.weight", 200, 64, DType.BF16, rnd);
            pass("embed_tokens.weight", DType.BF16, 50, 64, rnd);
            weight("layers.0.down_proj.weight", 65, 192, DType.F16, rnd);
            pass("layers.0.input_layernorm.weight", DType.F32, 1, 64, rnd);
            ByteBuffer ids = ByteBuffer.allocate(8 * 7).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < 7; i++) {
                ids.putLong(i);
            }
            file.add("position_ids", DType.I64, new long[] {7}, ids.array());
            other.add(new PassThrough("position_ids", DType.I64, new long[] {7}, ids.array()));
        }

        void weight(String name, int rows, int cols, DType dtype, Random rnd) {
            float[] v = new float[rows * cols];
            byte[] bytes = encode(v, dtype, rnd);
            file.add(name, dtype, new long[] {rows, cols}, bytes);
            weights.add(FloatMatrix.of(name, rows, cols, v, 0));
        }

        void pass(String name, DType dtype, int rows, int cols, Random rnd) {
            float[] v = new float[rows * cols];
            byte[] bytes = encode(v, dtype, rnd);
            long[] shape = rows == 1 ? new long[] {cols} : new long[] {rows, cols};
            file.add(name, dtype, shape, bytes);
            other.add(new PassThrough(name, dtype, shape, bytes));
        }

        /** Random values, rounded to {@code dtype} (so {@code v} holds exactly what the file does). */
        static byte[] encode(float[] v, DType dtype, Random rnd) {
            ByteBuffer bb = ByteBuffer.allocate(v.length * dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < v.length; i++) {
                float x = (float) (rnd.nextGaussian() * 0.02 + (i % 97 == 0 ? 0.3 : 0));
                switch (dtype) {
                    case F32 -> bb.putFloat(v[i] = x);
                    case BF16 -> {
                        short h = HalfFloats.floatToBf16(x);
                        v[i] = HalfFloats.bf16ToFloat(h);
                        bb.putShort(h);
                    }
                    default -> {
                        short h = HalfFloats.floatToFp16(x);
                        v[i] = HalfFloats.fp16ToFloat(h);
                        bb.putShort(h);
                    }
                }
            }
            return bb.array();
        }
    }

    private static final CheckpointQuantizer.Selector LINEARS =
            e -> e.shape().length == 2 && !e.name().startsWith("embed")
                    ? Choice.QUANTIZE
                    : e.name().startsWith("embed") ? Choice.kept("an embedding") : Choice.COPY;

    static Stream<Arguments> methods() {
        return Stream.of(
                Arguments.of("rtn", new LinearScheme(4, Symmetry.ASYM, 32)),
                Arguments.of("rtn", new LinearScheme(4, Symmetry.SYM, 64)),
                Arguments.of("rtn", new LinearScheme(3, Symmetry.ASYM, 32)),
                Arguments.of("rtn", new LinearScheme(8, Symmetry.SIGNED, LinearScheme.PER_CHANNEL)),
                Arguments.of("rtn", new LinearScheme(2, Symmetry.ASYM, LinearScheme.PER_TENSOR)),
                Arguments.of("nf4", new CodebookScheme(Codebook.NF4, 64)),
                Arguments.of("nf4", new CodebookScheme(Codebook.NF4, 128, true)),
                Arguments.of("fp4", new CodebookScheme(Codebook.FP4, 256, true)));
    }

    private static Method method(Object scheme) {
        return scheme instanceof LinearScheme s ? Method.rtn(s) : Method.codebook((CodebookScheme) scheme);
    }

    private static QuantizedWeight whole(Object scheme, FloatMatrix w) {
        return scheme instanceof LinearScheme s
                ? new RtnQuantizer(s).quantize(w)
                : new BlockwiseQuantizer((CodebookScheme) scheme).quantize(w);
    }

    @ParameterizedTest
    @MethodSource("methods")
    void streamedFileIsByteIdenticalToTheInMemoryWriterOnAnyNumberOfThreads(String name, Object scheme)
            throws IOException {
        Model model = new Model(7);
        Path in = dir.resolve("model.safetensors");
        model.file.write(in);
        List<QuantizedWeight> expected = new ArrayList<>();
        for (FloatMatrix w : model.weights) {
            expected.add(whole(scheme, w));
        }
        byte[] want = QuantizedSafeTensors.toBytes(expected, name, model.other, java.util.Set.of());
        for (int threads : new int[] {1, 2, 8}) {
            Path out = dir.resolve("q" + threads + ".safetensors");
            ForkJoinPool pool = new ForkJoinPool(threads);
            CheckpointQuantizer.Summary summary;
            try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(in)) {
                // blocks of about 1,000 values: every weight is split into several
                summary = new CheckpointQuantizer(method(scheme), LINEARS, pool, 1000)
                        .quantize(c, out, false, (t, b) -> {});
            } finally {
                pool.shutdown();
            }
            assertArrayEquals(want, Files.readAllBytes(out), threads + " threads");
            assertEquals(3, summary.weights().size());
            assertEquals(List.of(new CheckpointQuantizer.Kept("embed_tokens.weight", "an embedding")), summary.kept());
            assertEquals(3, summary.copied());
            for (int i = 0; i < 3; i++) {
                ErrorMetrics e = ErrorMetrics.compare(model.weights.get(i), expected.get(i));
                CheckpointQuantizer.WeightReport r = summary.weights().get(i);
                assertEquals(e.mse(), r.error().mse(), 1e-12 * Math.max(1, e.mse()));
                assertEquals(e.count(), r.error().count());
                assertEquals(expected.get(i).bitsPerWeight(), r.bitsPerWeight(), 1e-12);
            }
        }
    }

    @Test
    void progressAccountsForEveryByteOfTheInput() throws IOException {
        Model model = new Model(3);
        Path in = dir.resolve("model.safetensors");
        model.file.write(in);
        java.util.concurrent.atomic.AtomicLong done = new java.util.concurrent.atomic.AtomicLong();
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(in)) {
            new CheckpointQuantizer(Method.rtn(LinearScheme.asym(4, 32)), LINEARS, ForkJoinPool.commonPool(), 500)
                    .quantize(c, dir.resolve("q.safetensors"), false, (t, b) -> done.addAndGet(b));
            assertEquals(c.dataBytes(), done.get());
        }
    }

    /** Writes the model's tensors into two shards with an index, plus a config. */
    private Path shardedFolder(Model model) throws IOException {
        Path folder = Files.createDirectory(dir.resolve("hf"));
        try (SafeTensors all = SafeTensors.parse(model.file.toBytes(), "model")) {
            List<String> names = all.names();
            SafeTensorsWriter a = new SafeTensorsWriter();
            SafeTensorsWriter b = new SafeTensorsWriter();
            StringBuilder map = new StringBuilder();
            for (int i = 0; i < names.size(); i++) {
                SafeTensors.Entry e = all.entry(names.get(i));
                String shard = i < 3 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
                (i < 3 ? a : b).add(e.name(), e.dtype(), e.shape(), all.readBytes(e.name()));
                map.append(map.isEmpty() ? "" : ",")
                        .append('"')
                        .append(e.name())
                        .append("\":\"")
                        .append(shard)
                        .append('"');
            }
            a.write(folder.resolve("model-00001-of-00002.safetensors"));
            b.write(folder.resolve("model-00002-of-00002.safetensors"));
            Files.writeString(
                    folder.resolve(SafeTensorsCheckpoint.INDEX),
                    "{\"metadata\":{\"total_size\":1},\"weight_map\":{" + map + "}}",
                    StandardCharsets.UTF_8);
        }
        Files.writeString(folder.resolve("config.json"), "{\"architectures\":[\"LlamaForCausalLM\"]}");
        return folder;
    }

    @Test
    void shardedFolderBecomesAFolderWithTheSameShardsAnIndexAndTheOtherFiles() throws IOException {
        Model model = new Model(11);
        Path folder = shardedFolder(model);
        Path out = dir.resolve("out");
        LinearScheme scheme = LinearScheme.asym(4, 32);
        CheckpointQuantizer.Summary summary;
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(folder)) {
            summary = new CheckpointQuantizer(Method.rtn(scheme), LINEARS, ForkJoinPool.commonPool(), 700)
                    .quantize(c, out, false, (t, b) -> {});
        }
        assertEquals(
                List.of(
                        "model-00001-of-00002.safetensors",
                        "model-00002-of-00002.safetensors",
                        SafeTensorsCheckpoint.INDEX,
                        "config.json"),
                summary.files());
        assertEquals("{\"architectures\":[\"LlamaForCausalLM\"]}", Files.readString(out.resolve("config.json")));
        // every weight, read back from its shard, is the whole-tensor quantization
        Map<String, QuantizedWeight> read = new java.util.HashMap<>();
        for (String shard : List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")) {
            read.putAll(QuantizedSafeTensors.read(out.resolve(shard)).weights());
        }
        for (FloatMatrix w : model.weights) {
            assertEquals(new RtnQuantizer(scheme).quantize(w), read.get(w.name()), w.name());
        }
        // the new index lists every tensor of the output under the shard that holds it
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(out)) {
            assertTrue(c.indexed());
            assertEquals(2, c.shards().size());
        }
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(
                    List.of("hf", "out"),
                    left.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void aFailureLeavesNoOutputAndNoTemporary() throws IOException {
        Model model = new Model(5);
        float[] bad = new float[64 * 32];
        bad[1000] = Float.NaN;
        model.file.add("layers.1.o_proj.weight", DType.F32, new long[] {64, 32}, toBytes(bad));
        Path in = dir.resolve("model.safetensors");
        model.file.write(in);
        Path out = dir.resolve("q.safetensors");
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(in)) {
            IllegalArgumentException e = assertThrows(
                    IllegalArgumentException.class,
                    () -> new CheckpointQuantizer(
                                    Method.rtn(LinearScheme.asym(4, 32)), LINEARS, ForkJoinPool.commonPool(), 256)
                            .quantize(c, out, false, (t, b) -> {}));
            assertTrue(e.getMessage().contains("layers.1.o_proj.weight"), e.getMessage());
        }
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(
                    List.of("model.safetensors"),
                    left.map(p -> p.getFileName().toString()).toList());
        }
    }

    @Test
    void badCheckpointsAreRefusedByNameBeforeAnyWork() throws IOException {
        Model model = new Model(13);
        Path folder = shardedFolder(model);
        Path index = folder.resolve(SafeTensorsCheckpoint.INDEX);
        String text = Files.readString(index);
        Files.writeString(index, text.replace(",\"position_ids\":\"model-00002-of-00002.safetensors\"", ""));
        MalformedTensorFileException notListed = assertThrows(
                MalformedTensorFileException.class,
                () -> SafeTensorsCheckpoint.open(folder).close());
        assertTrue(notListed.getMessage().contains("'position_ids'"), notListed.getMessage());
        Files.writeString(index, text.replace("}}", ",\"extra.weight\":\"model-00002-of-00002.safetensors\"}}"));
        MalformedTensorFileException missing = assertThrows(
                MalformedTensorFileException.class,
                () -> SafeTensorsCheckpoint.open(folder).close());
        assertTrue(missing.getMessage().contains("'extra.weight' is in the index but not in"), missing.getMessage());
        Files.writeString(index, text);
        Files.delete(folder.resolve("model-00002-of-00002.safetensors"));
        NoSuchFileException gone = assertThrows(NoSuchFileException.class, () -> SafeTensorsCheckpoint.open(folder));
        assertTrue(gone.getMessage().contains("model-00002-of-00002.safetensors"), gone.getMessage());
    }

    @Test
    void nothingToQuantizeAndAQuantizedInputAreRefused() throws IOException {
        Model model = new Model(17);
        Path in = dir.resolve("model.safetensors");
        model.file.write(in);
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(in)) {
            IllegalArgumentException none = assertThrows(
                    IllegalArgumentException.class,
                    () -> new CheckpointQuantizer(
                                    Method.rtn(LinearScheme.asym(4, 32)),
                                    e -> Choice.kept("not chosen"),
                                    ForkJoinPool.commonPool())
                            .quantize(c, dir.resolve("q.safetensors"), false, (t, b) -> {}));
            assertTrue(none.getMessage().contains("no tensor to quantize"), none.getMessage());
            new CheckpointQuantizer(Method.rtn(LinearScheme.asym(4, 32)), LINEARS, ForkJoinPool.commonPool())
                    .quantize(c, dir.resolve("q.safetensors"), false, (t, b) -> {});
        }
        assertFalse(Files.exists(dir.resolve(".q.safetensors.tmp")));
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(dir.resolve("q.safetensors"))) {
            IllegalArgumentException again = assertThrows(
                    IllegalArgumentException.class,
                    () -> new CheckpointQuantizer(
                                    Method.rtn(LinearScheme.asym(4, 32)), LINEARS, ForkJoinPool.commonPool())
                            .quantize(c, dir.resolve("q2.safetensors"), false, (t, b) -> {}));
            assertTrue(again.getMessage().contains("already quantized"), again.getMessage());
        }
    }

    private static byte[] toBytes(float[] v) {
        ByteBuffer bb = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        bb.asFloatBuffer().put(v);
        return bb.array();
    }
}
