package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.Gguf;
import dev.quant4j.io.GgufValue;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Hugging Face folder's byte-level BPE tokenizer carried into GGUF ({@code quant quantize --model DIR --format
 * gguf}): llama.cpp loaded the file quant4j writes and tokenized sentences to the ids Hugging Face's tokenizers give
 * them. The fixture ({@code src/test/resources/llama-cpp-tokenizer/}, its README says how it was made and with which
 * llama.cpp) holds the tokenizer, the sentences and llama.cpp's ids; this test writes the GGUF again, checks it is the
 * file llama.cpp read (SHA-256), and compares llama.cpp's ids with the tokenizers library's.
 */
class LlamaCppTokenizerTest {

    static final Path FIXTURE = Path.of("src", "test", "resources", "llama-cpp-tokenizer");

    @TempDir
    Path dir;

    Path folder() throws Exception {
        Path hf = TextCalibrationTest.folder(
                dir, "stories-bpe", 512, Files.readString(FIXTURE.resolve("tokenizer.json")));
        Files.copy(FIXTURE.resolve("tokenizer_config.json"), hf.resolve("tokenizer_config.json"));
        return hf;
    }

    @Test
    void llamaCppTokenizesAsTheTokenizersLibrary() throws Exception {
        Path hf = folder();
        Path gguf = dir.resolve("stories-bpe-q8_0.gguf");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--gguf-type",
                "q8_0",
                "--out",
                gguf.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: the vocabulary is " + hf.resolve("tokenizer.json") + "'s: gpt2 (pre llama-bpe), 370"
                        + " tokens and 142 [PAD] to fill 512 rows, 112 merges, bos 368, eos 369, add_bos true");
        String keep = System.getProperty("quant4j.keepTokenizerGguf");
        if (keep != null) {
            Files.copy(gguf, Path.of(keep), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        byte[] bytes = Files.readAllBytes(gguf);
        assertThat(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes)))
                .isEqualTo(readmeSha256("- SHA-256 of the GGUF file: `"));

        Map<String, GgufValue> meta = Gguf.open(gguf).metadata();
        assertThat(meta.get("tokenizer.ggml.model").asString()).isEqualTo("gpt2");
        assertThat(meta.get("tokenizer.ggml.pre").asString()).isEqualTo("llama-bpe");
        List<Object> tokens = meta.get("tokenizer.ggml.tokens").asArray().values();
        List<Object> types = meta.get("tokenizer.ggml.token_type").asArray().values();
        assertThat(tokens).hasSize(512);
        assertThat(tokens.get(0)).isEqualTo("\u0100"); // byte 0 as GPT-2's byte-to-character map writes it
        assertThat(tokens.get(368)).isEqualTo("<|begin_of_text|>");
        assertThat(tokens.get(370)).isEqualTo("[PAD370]");
        assertThat(((Number) types.get(65)).longValue()).isEqualTo(1); // NORMAL
        assertThat(((Number) types.get(368)).longValue()).isEqualTo(3); // CONTROL
        assertThat(((Number) types.get(511)).longValue()).isEqualTo(5); // UNUSED
        assertThat(meta.get("tokenizer.ggml.merges").asArray().values().get(0)).isEqualTo("\u0120 t");
        assertThat(meta.get("tokenizer.ggml.bos_token_id").asLong()).isEqualTo(368);
        assertThat(meta.get("tokenizer.ggml.eos_token_id").asLong()).isEqualTo(369);

        compare(hf, "llama-cpp-ids.txt");
    }

    @Test
    void llamaCppTokenizesALlama2StyleTokenizerAsTheTokenizersLibrary() throws Exception {
        Path spm = FIXTURE.resolve("spm");
        Path hf = TextCalibrationTest.folder(dir, "stories-spm", 512, Files.readString(spm.resolve("tokenizer.json")));
        Files.copy(spm.resolve("tokenizer_config.json"), hf.resolve("tokenizer_config.json"));
        Path gguf = dir.resolve("stories-spm-q8_0.gguf");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--gguf-type",
                "q8_0",
                "--out",
                gguf.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: the vocabulary is " + hf.resolve("tokenizer.json") + "'s: llama (SentencePiece BPE"
                        + " with scores), 413 tokens and 99 [PAD] to fill 512 rows, bos 1, eos 2, unk 0, add_bos true");
        String keep = System.getProperty("quant4j.keepSpmGguf");
        if (keep != null) {
            Files.copy(gguf, Path.of(keep), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        assertThat(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(gguf))))
                .isEqualTo(readmeSha256("- SHA-256 of the SentencePiece GGUF file: `"));

        Map<String, GgufValue> meta = Gguf.open(gguf).metadata();
        assertThat(meta.get("tokenizer.ggml.model").asString()).isEqualTo("llama");
        List<Object> types = meta.get("tokenizer.ggml.token_type").asArray().values();
        List<Object> scores = meta.get("tokenizer.ggml.scores").asArray().values();
        assertThat(((Number) types.get(0)).longValue()).isEqualTo(2); // UNKNOWN
        assertThat(((Number) types.get(1)).longValue()).isEqualTo(3); // CONTROL
        assertThat(((Number) types.get(3)).longValue()).isEqualTo(6); // BYTE <0x00>
        // the piece of merge r scores -r: "▁t" (merge 0), "he" (1)
        assertThat(((Number) scores.get(259)).floatValue()).isEqualTo(0f);
        assertThat(((Number) scores.get(260)).floatValue()).isEqualTo(-1f);
        assertThat(meta).doesNotContainKey("tokenizer.ggml.merges");
        compare(hf, "llama-cpp-spm-ids.txt");
    }

    /** Hugging Face's ids of each sentence against llama.cpp's, line by line. */
    static void compare(Path hf, String idsFile) throws Exception {
        List<String> sentences = Files.readAllLines(FIXTURE.resolve("sentences.txt"), StandardCharsets.UTF_8);
        List<String> llamaCpp = Files.readAllLines(FIXTURE.resolve(idsFile), StandardCharsets.UTF_8);
        assertThat(llamaCpp).hasSameSizeAs(sentences).hasSize(7);
        try (TextTokenizer hfTokenizer = TextTokenizer.open(hf.resolve("tokenizer.json"))) {
            for (int i = 0; i < sentences.size(); i++) {
                int[] expected = Arrays.stream(llamaCpp.get(i).split(" "))
                        .mapToInt(Integer::parseInt)
                        .toArray();
                assertThat(hfTokenizer.encode(sentences.get(i)))
                        .as("line %d: %s", i + 1, sentences.get(i))
                        .containsExactly(expected);
            }
        }
    }

    /** The SHA-256 the fixture's README records for the file llama.cpp read, on the line starting with prefix. */
    static String readmeSha256(String prefix) throws Exception {
        for (String line : Files.readAllLines(FIXTURE.resolve("README.md"))) {
            if (line.startsWith(prefix)) {
                return line.substring(line.indexOf('`') + 1, line.lastIndexOf('`'));
            }
        }
        throw new AssertionError(FIXTURE.resolve("README.md") + " records no SHA-256");
    }
}
