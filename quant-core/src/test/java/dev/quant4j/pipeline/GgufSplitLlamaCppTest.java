package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.GgufSplits;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.GgufValueType;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * stories260K split as llama.cpp's {@code gguf-split} splits it: the files quant4j writes are the files {@code
 * llama-gguf-split} wrote from quant4j's single file (their SHA-256), and a model read from its splits is the model read
 * from the single file. {@code src/test/resources/llama-cpp/README.md} says how the tool was built and run, and that
 * llama.cpp loaded these splits and computed the single file's logits from them, bit for bit.
 */
class GgufSplitLlamaCppTest {

    @TempDir
    Path dir;

    /**
     * {@code llama-gguf-split --split-max-tensors 10 stories260K-q8_0.gguf t10}: five files of 10, 10, 10, 10 and 7
     * tensors.
     */
    static final List<String> Q8_0_TEN_TENSORS = List.of(
            "cb9f0943707354b0b7965a209531c23c361bfce3d8cdd3c43334d11957d20100",
            "21022b8e203b61b5a7ff54210bee7a81f3e69b5199e30e4147948fc2fe1cb99d",
            "02d8588b0c587b3bdf129719ca0cdeec590e749dcc86c0c8ea16648e3ec3d6d7",
            "afb5159e93f45baef355e445eb21ff9b1e39e46138313148ab10d55fd209eeeb",
            "90b487057bffa38152d916550324aed65ec9671348fd287cadd4b84d4377bb0c");

    /** {@code llama-gguf-split --split-max-size 1M stories260K-f32.gguf s1m}: two files, 45 and 2 tensors. */
    static final List<String> F32_ONE_MEGABYTE = List.of(
            "e809b325eb338b47d3c339b4c1efdba80bde244cf39608ceceb813505638b96f",
            "579e78d8e56d7ed9f2b449a9b26b16f95b1fd2a6b186cf40e3daa0bc1e620197");

    /** {@code llama-gguf-split --merge t10-00001-of-00005.gguf merged.gguf}. */
    static final String Q8_0_MERGED = "3d0c8f1be59817bb9639da03972b37421307c42c26003319469d28735e265981";

    @Test
    void splitsAreTheFilesGgufSplitWrote() throws Exception {
        QuantizedDecoderFile.Source source = GgufDecoderFileTest.source();
        List<Path> q8 = GgufDecoderFile.plan(source, GgmlType.Q8_0, false).writeSplit(dir.resolve("t10.gguf"), 0, 10);
        assertThat(q8).isEqualTo(GgufSplits.paths(dir.resolve("t10"), 5));
        assertThat(q8.stream().map(GgufSplitLlamaCppTest::sha256)).containsExactlyElementsOf(Q8_0_TEN_TENSORS);
        List<Path> f32 =
                GgufDecoderFile.plan(source, GgmlType.F32, false).writeSplit(dir.resolve("s1m.gguf"), 1_000_000, 0);
        assertThat(f32.stream().map(GgufSplitLlamaCppTest::sha256)).containsExactlyElementsOf(F32_ONE_MEGABYTE);
    }

    /**
     * gguf-split's merge keeps the first split's metadata with {@code split.count} set to 0 and writes every tensor
     * after it as the single file does: the single file plus three keys at the end of its metadata.
     */
    @Test
    void mergingTheSplitsGivesTheSingleFilePlusTheSplitKeys() throws Exception {
        GgufDecoderFile.Plan plan = GgufDecoderFile.plan(GgufDecoderFileTest.source(), GgmlType.Q8_0, false);
        int tensors = plan.written().tensors().size();
        plan.writer()
                .put(GgufSplits.NO, GgufValue.of(GgufValueType.UINT16, 0))
                .put(GgufSplits.TENSORS_COUNT, GgufValue.of(GgufValueType.INT32, tensors))
                .put(GgufSplits.COUNT, GgufValue.of(GgufValueType.UINT16, 0));
        assertThat(tensors).isEqualTo(47);
        assertThat(hex(MessageDigest.getInstance("SHA-256").digest(plan.writer().toBytes())))
                .isEqualTo(Q8_0_MERGED);
    }

    @Test
    void aDecoderReadFromItsSplitsIsTheDecoderReadFromTheSingleFile() throws Exception {
        GgufDecoderFile.Plan plan = GgufDecoderFile.plan(GgufDecoderFileTest.source(), GgmlType.Q8_0, false);
        Path single = dir.resolve("single.gguf");
        plan.write(single);
        List<Path> splits = plan.writeSplit(dir.resolve("split.gguf"), 100_000, 0);
        assertThat(splits).hasSize(4);
        GgufDecoderFile.Loaded expected = GgufDecoderFile.read(single);
        for (Path p : List.of(splits.get(0), splits.get(3))) {
            GgufDecoderFile.Loaded loaded = GgufDecoderFile.read(p);
            assertThat(loaded.config()).isEqualTo(expected.config());
            assertThat(loaded.tensors().keySet())
                    .containsExactlyElementsOf(expected.tensors().keySet());
            for (Map.Entry<String, FloatMatrix> e : expected.tensors().entrySet()) {
                assertThat(loaded.tensors().get(e.getKey()).toArray())
                        .as(e.getKey())
                        .isEqualTo(e.getValue().toArray());
            }
        }
    }

    private static String sha256(Path p) {
        try {
            return hex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static String hex(byte[] b) {
        return HexFormat.of().formatHex(b);
    }
}
