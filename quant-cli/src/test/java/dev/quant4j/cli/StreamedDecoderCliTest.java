package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quant quantize --model DIR} reading a Hugging Face folder block by block ({@link DecoderStreamOutput}, forced
 * with {@code -Dquant4j.decoder.stream=always} since the test model is small) writes the file the in-memory path
 * writes, byte for byte, and says so on stderr with the time left after each block.
 */
class StreamedDecoderCliTest {

    @TempDir
    Path dir;

    @AfterEach
    void clear() {
        System.clearProperty(DecoderStreamOutput.PROPERTY);
    }

    @Test
    void aFolderReadBlockByBlockGivesTheInMemoryFile() throws Exception {
        Path hf = folder();
        Path tokens = calibrationIds();
        for (String method : List.of("gptq", "awq")) {
            Path streamed = dir.resolve(method + "-streamed.safetensors");
            Path whole = dir.resolve(method + "-whole.safetensors");
            System.setProperty(DecoderStreamOutput.PROPERTY, "always");
            QuantCliTest.Result s = run(hf, method, tokens, streamed);
            assertThat(s.code()).as(s.err()).isZero();
            assertThat(s.err()).contains("quant: hf, 5 layers, dim 64, ").contains("read block by block");
            assertThat(s.err()).contains("quant: block 1/5 done (").contains("s left)");
            assertThat(s.out()).contains("wrote " + streamed + " (35 linear layers quantized");
            System.setProperty(DecoderStreamOutput.PROPERTY, "never");
            QuantCliTest.Result w = run(hf, method, tokens, whole);
            assertThat(w.code()).as(w.err()).isZero();
            assertThat(w.err()).doesNotContain("block by block");
            assertThat(Files.mismatch(streamed, whole)).as(method).isEqualTo(-1L);
            // the per-layer report lines are the same either way
            assertThat(s.out().lines().filter(l -> l.startsWith("model.layers.")))
                    .containsExactlyElementsOf(w.out()
                            .lines()
                            .filter(l -> l.startsWith("model.layers."))
                            .toList());
        }
        System.setProperty(DecoderStreamOutput.PROPERTY, "sometimes");
        QuantCliTest.Result bad = run(hf, "gptq", tokens, dir.resolve("bad.safetensors"));
        assertThat(bad.code()).isNotZero();
        assertThat(bad.err()).contains("-Dquant4j.decoder.stream=sometimes: always, never or auto");
    }

    /** GPTQ into a llama.cpp model: streamed, the in-memory file and report, byte for byte. */
    @Test
    void gptqIntoGgufReadBlockByBlockGivesTheInMemoryFile() throws Exception {
        Path hf = folder();
        Path tokens = calibrationIds();
        for (String bits : List.of("--asym", "--sym")) {
            Path streamed = dir.resolve("gptq" + bits + "-streamed.gguf");
            Path whole = dir.resolve("gptq" + bits + "-whole.gguf");
            System.setProperty(DecoderStreamOutput.PROPERTY, "always");
            QuantCliTest.Result s = runGguf(hf, bits, tokens, streamed);
            assertThat(s.code()).as(s.err()).isZero();
            assertThat(s.err())
                    .contains("quant: hf, 5 layers, dim 64, read block by block: GPTQ into q4_")
                    .contains("quant: block 5/5 done (");
            System.setProperty(DecoderStreamOutput.PROPERTY, "never");
            QuantCliTest.Result w = runGguf(hf, bits, tokens, whole);
            assertThat(w.code()).as(w.err()).isZero();
            assertThat(w.err()).doesNotContain("block by block");
            assertThat(Files.mismatch(streamed, whole)).as(bits).isEqualTo(-1L);
            // every line, the file's name aside
            assertThat(s.out().replace(streamed.toString(), "OUT"))
                    .isEqualTo(w.out().replace(whole.toString(), "OUT"));
        }
    }

    /** The test folder: stories260K's shapes with a word-level tokenizer. */
    private Path folder() throws Exception {
        TextCalibrationTest fixture = new TextCalibrationTest();
        fixture.dir = dir;
        return fixture.folder(
                "hf", TextCalibrationTest.VOCAB, TextCalibrationTest.tokenizerJson(TextCalibrationTest.WORDS.size()));
    }

    /** 24 sentences' token ids, one line each. */
    private Path calibrationIds() throws Exception {
        List<String> text = TextCalibrationTest.sentences(24, 3);
        Path tokens = dir.resolve("calib-ids.txt");
        Files.writeString(
                tokens,
                text.stream()
                        .map(s -> TextCalibrationTest.idLine(TextCalibrationTest.ids(s)))
                        .collect(Collectors.joining("\n", "", "\n")));
        return tokens;
    }

    private static QuantCliTest.Result runGguf(Path hf, String symmetry, Path tokens, Path out) throws Exception {
        return QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--format",
                "gguf",
                "--method",
                "gptq",
                "--bits",
                "4",
                symmetry,
                "--group-size",
                "32",
                "--calib-tokens",
                tokens.toString(),
                "--seq-len",
                "16",
                "--out",
                out.toString(),
                "--threads",
                "2");
    }

    private static QuantCliTest.Result run(Path hf, String method, Path tokens, Path out) throws Exception {
        return QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                method,
                "--group-size",
                "32",
                "--calib-tokens",
                tokens.toString(),
                "--seq-len",
                "16",
                "--out",
                out.toString(),
                "--threads",
                "2");
    }
}
