package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.ggml.GgmlType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A GGUF model split into several files as llama.cpp's {@code gguf-split} writes one ({@link GgufSplits}): names, the
 * plan, each file's keys and bytes, and reading the files back as one model ({@link Gguf#open}). {@code
 * pipeline.GgufSplitLlamaCppTest} checks the bytes against files {@code gguf-split} itself wrote.
 */
class GgufSplitsTest {

    @TempDir
    Path dir;

    @Test
    void splitsAreNamedAsLlamaSplitPathNamesThem() {
        Path prefix = GgufSplits.prefix(dir.resolve("model.gguf"));
        assertThat(prefix).isEqualTo(dir.resolve("model"));
        assertThat(GgufSplits.paths(prefix, 3))
                .containsExactly(
                        dir.resolve("model-00001-of-00003.gguf"),
                        dir.resolve("model-00002-of-00003.gguf"),
                        dir.resolve("model-00003-of-00003.gguf"));
        assertThat(GgufSplits.path(prefix, 11, 120)).isEqualTo(dir.resolve("model-00012-of-00120.gguf"));
        assertThat(GgufSplits.parseName(dir.resolve("a-b-00002-of-00007.gguf")))
                .isEqualTo(new GgufSplits.Name(dir.resolve("a-b"), 1, 7));
        assertThat(GgufSplits.parseName(dir.resolve("model.gguf"))).isNull();
        assertThat(GgufSplits.parseName(dir.resolve("m-0002-of-00007.gguf"))).isNull();
        assertThatThrownBy(() -> GgufSplits.prefix(dir.resolve("model.bin"))).hasMessageContaining("must be NAME.gguf");
    }

    /** gguf-split's {@code should_split}: tensors padded to 32 fill a split until the next would pass the limit. */
    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                // bytes of each tensor | max bytes | max tensors | split of each tensor
                "20 20 20      | 64  | 0 | 0 0 1", // 32 + 32 fit in 64, a third does not
                "20 20 20      | 63  | 0 | 0 1 2",
                "64 64         | 64  | 0 | 0 1",
                "200 10 10 200 | 100 | 0 | 0 1 1 2", // larger than the limit: alone in a split
                "10 200 10     | 100 | 0 | 0 1 2",
                "1 1 1 1 1     | 0   | 2 | 0 0 1 1 2", // a new split every 2 tensors
                "1 1 1 1 1     | 0   | 5 | 0 0 0 0 0",
                "1 1 1 1 1     | 128 | 3 | 0 0 0 1 1", // both limits: whichever comes first (here 3 tensors)
            })
    void planFollowsGgufSplit(String bytes, long maxBytes, int maxTensors, String expected) {
        long[] b = Arrays.stream(bytes.trim().split(" +"))
                .mapToLong(Long::parseLong)
                .toArray();
        int[] e = Arrays.stream(expected.trim().split(" +"))
                .mapToInt(Integer::parseInt)
                .toArray();
        assertThat(GgufSplits.plan(b, maxBytes, maxTensors)).containsExactly(e);
    }

    @Test
    void firstSplitCarriesTheModelsKeysThenTheSplitKeysTheOthersOnlyTheSplitKeys() {
        Map<String, GgufValue> model = new LinkedHashMap<>();
        model.put("general.architecture", GgufValue.string("llama"));
        model.put(GgufSplits.COUNT, GgufValue.of(GgufValueType.UINT16, 9)); // a stale key of the input
        model.put("general.name", GgufValue.string("m"));
        assertThat(GgufSplits.metadata(model, 0, 3, 47))
                .containsExactly(
                        Map.entry("general.architecture", GgufValue.string("llama")),
                        Map.entry("general.name", GgufValue.string("m")),
                        Map.entry("split.no", GgufValue.of(GgufValueType.UINT16, 0)),
                        Map.entry("split.tensors.count", GgufValue.of(GgufValueType.INT32, 47)),
                        Map.entry("split.count", GgufValue.of(GgufValueType.UINT16, 3)));
        assertThat(GgufSplits.metadata(model, 2, 3, 47))
                .containsExactly(
                        Map.entry("split.no", GgufValue.of(GgufValueType.UINT16, 2)),
                        Map.entry("split.tensors.count", GgufValue.of(GgufValueType.INT32, 47)),
                        Map.entry("split.count", GgufValue.of(GgufValueType.UINT16, 3)));
    }

    /** Seven F32 tensors of 7 to 70 values (not multiples of 32 bytes, so each is padded) and some metadata. */
    static GgufWriter model(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        GgufWriter w = new GgufWriter()
                .put("general.architecture", GgufValue.string("test"))
                .put("test.values", GgufValue.array(GgufValueType.INT32, List.of(1L, 2L, 3L)));
        for (int t = 0; t < 7; t++) {
            int n = 7 + 9 * t;
            ByteBuffer b = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) {
                b.putFloat((float) r.nextGaussian());
            }
            w.addTensor("t" + t, new long[] {n}, GgmlType.F32, b.array());
        }
        return w;
    }

    @ParameterizedTest
    @CsvSource({"100, 0, 6", "0, 2, 4", "0, 1, 7", "64, 0, 7", "1000, 3, 3"})
    void splitFilesHoldTheSingleFilesTensorsAndReadBackAsIt(long maxBytes, int maxTensors, int splits)
            throws Exception {
        GgufWriter w = model(7);
        Path single = dir.resolve("single.gguf");
        w.write(single);
        List<Path> files = w.writeSplit(dir.resolve("model.gguf"), maxBytes, maxTensors);
        assertThat(files).isEqualTo(GgufSplits.paths(dir.resolve("model"), splits));
        assertThat(Files.exists(dir.resolve("model.gguf"))).isFalse();
        try (Gguf whole = Gguf.open(single)) {
            List<String> names = new ArrayList<>();
            for (int s = 0; s < splits; s++) {
                try (Gguf part = Gguf.openFile(files.get(s))) {
                    Map<String, GgufValue> expected =
                            s == 0 ? new LinkedHashMap<>(whole.metadata()) : new LinkedHashMap<>();
                    expected.put("split.no", GgufValue.of(GgufValueType.UINT16, s));
                    expected.put("split.tensors.count", GgufValue.of(GgufValueType.INT32, 7));
                    expected.put("split.count", GgufValue.of(GgufValueType.UINT16, splits));
                    assertThat(part.metadata()).containsExactlyEntriesOf(expected);
                    for (Gguf.TensorInfo t : part.tensors()) {
                        names.add(t.name());
                        assertThat(part.readBytes(t.name())).isEqualTo(whole.readBytes(t.name()));
                        assertThat(t.offset() % 32).isZero();
                    }
                }
            }
            assertThat(names).containsExactly("t0", "t1", "t2", "t3", "t4", "t5", "t6");
            // any split opens the whole model: the first split's metadata without the split keys, every tensor
            for (Path f : files) {
                try (Gguf model = Gguf.open(f)) {
                    assertThat(model.metadata()).containsExactlyEntriesOf(whole.metadata());
                    assertThat(model.tensors().stream().map(Gguf.TensorInfo::name))
                            .containsExactlyElementsOf(names);
                    assertThat(model.splitFiles())
                            .containsExactlyElementsOf(
                                    files.stream().map(Path::toString).toList());
                    for (String n : names) {
                        assertThat(model.readBytes(n)).isEqualTo(whole.readBytes(n));
                        assertThat(model.readFloats(n)).isEqualTo(whole.readFloats(n));
                    }
                    assertThat(model.splitOf("t6")).isEqualTo(splits - 1);
                }
            }
        }
    }

    @Test
    void aModelThatFitsInOneFileIsWrittenAsOneFileWithoutSplitKeys() throws Exception {
        GgufWriter w = model(3);
        List<Path> files = w.writeSplit(dir.resolve("model.gguf"), 1 << 20, 0);
        assertThat(files).containsExactly(dir.resolve("model.gguf"));
        assertThat(Files.readAllBytes(files.get(0))).isEqualTo(w.toBytes());
        try (Stream<Path> s = Files.list(dir)) {
            assertThat(s.toList()).containsExactly(dir.resolve("model.gguf"));
        }
    }

    /** Writes the model split into three of two or three tensors each, and returns the files. */
    private List<Path> three() throws Exception {
        List<Path> files = model(5).writeSplit(dir.resolve("m.gguf"), 0, 3);
        assertThat(files).hasSize(3);
        return files;
    }

    /** Rewrites split {@code index} of three with {@code metadata} and tensors {@code names} from {@code from}. */
    private void rewrite(Path file, Map<String, GgufValue> metadata, Gguf from, String... names) throws Exception {
        GgufWriter w = new GgufWriter().putAll(metadata);
        for (String n : names) {
            Gguf.TensorInfo t = from.tensor(n);
            w.addTensor(n, t.ne(), t.type(), from.readBytes(n));
        }
        Files.write(file, w.toBytes());
    }

    private static Map<String, GgufValue> keys(int no, int count, long tensors) {
        return GgufSplits.metadata(Map.of(), no, count, tensors);
    }

    @Test
    void aMissingSplitIsNamed() throws Exception {
        List<Path> files = three();
        Files.delete(files.get(1));
        assertThatThrownBy(() -> Gguf.open(files.get(0)))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage(files.get(0) + ": split 2 of 3, " + files.get(1) + ", is missing");
        assertThatThrownBy(() -> Gguf.open(files.get(2))).hasMessageContaining(files.get(1) + ", is missing");
        // one file alone still opens
        try (Gguf first = Gguf.openFile(files.get(0))) {
            assertThat(first.tensors()).hasSize(3);
        }
    }

    @Test
    void aSplitWhoseCountOrNumberDisagreesIsRefused() throws Exception {
        List<Path> files = three();
        Path whole = dir.resolve("whole.gguf");
        model(5).write(whole);
        try (Gguf g = Gguf.open(whole)) {
            rewrite(files.get(2), keys(2, 4, 7), g, "t6");
            assertThatThrownBy(() -> Gguf.open(files.get(0)))
                    .hasMessage(files.get(2) + ": split.count is 4, " + files.get(0) + " says 3");
            rewrite(files.get(2), keys(1, 3, 7), g, "t6");
            assertThatThrownBy(() -> Gguf.open(files.get(0)))
                    .hasMessage(files.get(2) + ": split.no is 1, its name says 2");
            rewrite(files.get(2), keys(2, 3, 8), g, "t6");
            assertThatThrownBy(() -> Gguf.open(files.get(0)))
                    .hasMessage(files.get(2) + ": split.tensors.count is 8, " + files.get(0) + " says 7");
            rewrite(files.get(2), keys(2, 3, 7), g, "t6", "t0");
            assertThatThrownBy(() -> Gguf.open(files.get(1)))
                    .hasMessage("tensor 't0' is in two splits, " + files.get(0) + " and " + files.get(2));
            rewrite(files.get(2), keys(2, 3, 7), g);
            assertThatThrownBy(() -> Gguf.open(files.get(0)))
                    .hasMessage(files.get(0) + ": split.tensors.count is 7, the 3 splits hold 6 tensors");
        }
    }

    @Test
    void aSplitWhoseMetadataDisagreesWithTheFirstIsRefused() throws Exception {
        List<Path> files = three();
        Path whole = dir.resolve("whole.gguf");
        model(5).write(whole);
        try (Gguf g = Gguf.open(whole)) {
            Map<String, GgufValue> m = new LinkedHashMap<>();
            m.put("general.architecture", GgufValue.string("other"));
            m.putAll(keys(1, 3, 7));
            rewrite(files.get(1), m, g, "t3", "t4", "t5");
            assertThatThrownBy(() -> Gguf.open(files.get(0)))
                    .hasMessage(files.get(1) + ": metadata 'general.architecture' = other disagrees with the first"
                            + " split's test");
            m.put("general.architecture", GgufValue.string("test")); // the same value is accepted
            rewrite(files.get(1), m, g, "t3", "t4", "t5");
            try (Gguf model = Gguf.open(files.get(0))) {
                assertThat(model.tensors()).hasSize(7);
            }
            m.put("general.name", GgufValue.string("x"));
            rewrite(files.get(1), m, g, "t3", "t4", "t5");
            assertThatThrownBy(() -> Gguf.open(files.get(0)))
                    .hasMessage(files.get(1) + ": metadata 'general.name' is not in the first split " + files.get(0)
                            + ", which carries the model's metadata");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"m-00001-of-00004.gguf", "m.gguf", "m-00002-of-00003.gguf"})
    void aSplitMustBeNamedAfterItsNumberAndCount(String name) throws Exception {
        List<Path> files = three();
        Path renamed = dir.resolve(name);
        Files.move(files.get(0), renamed, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThatThrownBy(() -> Gguf.open(renamed))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage(
                        renamed + ": split 1 of 3 (split.no 0, split.count 3) must be named PREFIX-00001-of-00003.gguf,"
                                + " as llama.cpp finds the other splits from its name");
    }

    @Test
    void splitKeysOfAWrongTypeAreRefused() throws Exception {
        Path f = dir.resolve("m-00001-of-00002.gguf");
        Files.write(
                f,
                new GgufWriter()
                        .put(GgufSplits.NO, GgufValue.of(GgufValueType.UINT16, 0))
                        .put(GgufSplits.COUNT, GgufValue.uint32(2))
                        .toBytes());
        assertThatThrownBy(() -> Gguf.open(f)).hasMessage(f + ": metadata 'split.count' is UINT32, must be UINT16");
        Files.write(
                f,
                new GgufWriter()
                        .put(GgufSplits.COUNT, GgufValue.of(GgufValueType.UINT16, 2))
                        .toBytes());
        assertThatThrownBy(() -> Gguf.open(f)).hasMessage(f + ": split.count is 2 but there is no split.no");
    }

    @Test
    void aFileWithSplitCountOneOrZeroIsOneFileWithItsKeys() throws Exception {
        // what gguf-split --merge leaves in the merged file: split.count 0
        Path f = dir.resolve("merged.gguf");
        GgufWriter w = model(1);
        w.putAll(keys(0, 3, 7)).put(GgufSplits.COUNT, GgufValue.of(GgufValueType.UINT16, 0));
        w.write(f);
        try (Gguf g = Gguf.open(f)) {
            assertThat(g.splitFiles()).isEmpty();
            assertThat(g.metadata()).containsKeys("split.no", "split.count", "split.tensors.count");
            assertThat(g.tensors()).hasSize(7);
        }
    }

    /**
     * Seeded damage to one split's keys, tensors or presence: opening any split either reads the model (then every
     * tensor it lists has its original bytes) or fails with a {@link MalformedTensorFileException}, never otherwise.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("seeds")
    void damagedSplitsAreReadCorrectlyOrRefusedCleanly(long seed) throws Exception {
        SplittableRandom r = new SplittableRandom(seed);
        List<Path> files = three();
        Path whole = dir.resolve("whole.gguf");
        model(5).write(whole);
        try (Gguf g = Gguf.open(whole)) {
            int victim = r.nextInt(3);
            List<String> names = new ArrayList<>();
            try (Gguf part = Gguf.openFile(files.get(victim))) {
                part.tensors().forEach(t -> names.add(t.name()));
            }
            Map<String, GgufValue> m = new LinkedHashMap<>(victim == 0 ? g.metadata() : Map.of());
            m.putAll(keys(victim, 3, 7));
            String key = List.of(GgufSplits.NO, GgufSplits.COUNT, GgufSplits.TENSORS_COUNT, "general.architecture")
                    .get(r.nextInt(4));
            switch (r.nextInt(6)) {
                case 0 -> m.remove(key);
                case 1 -> m.put(key, GgufValue.uint32(r.nextInt(5)));
                case 2 -> m.put(key, GgufValue.of(GgufValueType.UINT16, r.nextInt(5)));
                case 3 -> names.add("t" + r.nextInt(7));
                case 4 -> names.remove(0);
                default -> Files.delete(files.get(victim));
            }
            if (Files.exists(files.get(victim))) {
                rewrite(files.get(victim), m, g, names.stream().distinct().toArray(String[]::new));
            }
            for (Path f : files) {
                if (!Files.exists(f)) {
                    continue;
                }
                try (Gguf model = Gguf.open(f)) {
                    for (Gguf.TensorInfo t : model.tensors()) {
                        assertThat(model.readBytes(t.name())).isEqualTo(g.readBytes(t.name()));
                    }
                } catch (MalformedTensorFileException e) {
                    assertThat(e.getMessage()).isNotBlank();
                }
            }
        }
    }

    static Stream<Long> seeds() {
        return Stream.iterate(1L, x -> x + 1).limit(60);
    }

    @Test
    void aFailedSplitWriteLeavesNoFile() throws Exception {
        GgufWriter w = model(2);
        w.addTensor("bad", new long[] {4}, GgmlType.F32, out -> out.write(new byte[3])); // 3 bytes, not 16
        assertThatThrownBy(() -> w.writeSplit(dir.resolve("model.gguf"), 0, 2))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("tensor 'bad'");
        try (Stream<Path> s = Files.list(dir)) {
            assertThat(s.toList()).isEmpty();
        }
    }
}
