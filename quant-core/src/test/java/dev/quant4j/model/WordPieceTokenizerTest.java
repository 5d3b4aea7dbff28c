package dev.quant4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.quant4j.io.MalformedTensorFileException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The WordPiece tokenizer against hand-checked ids, and against HuggingFace's own Rust tokenizer (through DJL, test
 * scope only) on a few thousand generated texts that stress each rule: punctuation, accents, case, CJK, control and
 * white-space characters, special tokens written in the text, unknown and over-long words, truncation.
 */
class WordPieceTokenizerTest {

    static String json;
    static WordPieceTokenizer tokenizer;

    @BeforeAll
    static void load() throws IOException {
        json = new String(BertEncoderTest.resource("/all-minilm-l6-v2-tokenizer.json"), StandardCharsets.UTF_8);
        tokenizer = WordPieceTokenizer.parse("tokenizer.json", json);
    }

    @Test
    void handCheckedIds() {
        // bert-base-uncased ids: hello 7592, world 2088, "," 1010, "!" 999
        assertThat(tokenizer.encode("Hello, World!")).containsExactly(101, 7592, 1010, 2088, 999, 102);
        assertThat(tokenizer.tokenize("naïve CAFÉ")).containsExactly("naive", "cafe");
        assertThat(tokenizer.tokenize("a\u0000b\tc\u00A0d")).containsExactly("ab", "c", "d");
        assertThat(tokenizer.tokenize("東京")).containsExactly("東", "京");
        assertThat(tokenizer.tokenize("x [MASK] y")).containsExactly("x", "[MASK]", "y");
        assertThat(tokenizer.tokenize("a".repeat(101))).containsExactly("[UNK]");
        assertThat(tokenizer.vocabSize()).isEqualTo(30522);
        int[] long_ = tokenizer.encode("word ".repeat(300));
        assertThat(long_).hasSize(128);
        assertThat(long_[127]).isEqualTo(102);
    }

    /** Texts that exercise every rule, from a fixed seed. */
    static List<String> generatedTexts(int n) {
        SplittableRandom r = new SplittableRandom(42);
        String[] words = {
            "the",
            "quantization",
            "of",
            "weights",
            "unaffable",
            "Running",
            "jumped",
            "naïve",
            "Ångström",
            "Zürich",
            "señor",
            "façade",
            "coöperate",
            "東京",
            "日本語",
            "χαίρετε",
            "ΣΟΦΙΑ",
            "İstanbul",
            "straße",
            "ﬁne",
            "½",
            "don't",
            "e-mail",
            "U.S.A.",
            "3.14159",
            "$100",
            "50%",
            "(x)",
            "[y]",
            "{z}",
            "a/b",
            "x+y=z",
            "#tag",
            "@user",
            "~tilde~",
            "`tick`",
            "\"quoted\"",
            "«guillemets»",
            "em—dash",
            "en–dash",
            "…",
            "¿qué?",
            "¡sí!",
            "emoji🙂",
            "zero\u200Bwidth",
            "soft\u00ADhyphen",
            "tab\there",
            "line\nbreak",
            "nbsp\u00A0space",
            "ideographic\u3000space",
            "bell\u0007char",
            "[CLS]",
            "[SEP]",
            "[MASK]",
            "[PAD]",
            "[UNK]",
            "supercalifragilisticexpialidocious",
            "pneumonoultramicroscopicsilicovolcanoconiosis",
            "Ünïcödé",
            "COVID-19",
            "GPT-4o",
            "llama.cpp",
            "ggml_q4_0",
            "x".repeat(120),
            "Ab".repeat(30),
            "ÉCOLE",
            "ǅ",
            "ﬀ"
        };
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 1 + r.nextInt(25);
            StringBuilder b = new StringBuilder();
            for (int w = 0; w < len; w++) {
                if (w > 0) {
                    b.append(r.nextInt(10) == 0 ? "  " : r.nextInt(15) == 0 ? "" : " ");
                }
                b.append(words[r.nextInt(words.length)]);
                if (r.nextInt(6) == 0) {
                    b.append(",.;:!?".charAt(r.nextInt(6)));
                }
            }
            texts.add(b.toString());
        }
        return texts;
    }

    @Test
    void agreesWithHuggingFaceTokenizers(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, json);
        try (HuggingFaceTokenizer hf = HuggingFaceTokenizer.newInstance(
                file, Map.of("padding", "false", "truncation", "true", "maxLength", "128"))) {
            List<String> texts = new ArrayList<>(generatedTexts(3000));
            texts.addAll(BertEncoderTest.SENTENCES);
            int checked = 0;
            for (String t : texts) {
                long[] expected = hf.encode(t).getIds();
                int[] actual = tokenizer.encode(t);
                assertThat(Arrays.stream(actual).asLongStream().toArray())
                        .as("ids of \"%s\"", t)
                        .containsExactly(expected);
                checked++;
            }
            assertThat(checked).isEqualTo(3000 + BertEncoderTest.SENTENCES.size());
        }
    }

    @Test
    void unsupportedOrBrokenFilesAreClearErrors() {
        assertThatThrownBy(() -> WordPieceTokenizer.parse(
                        "t.json", json.replace("\"type\": \"WordPiece\"", "\"type\": \"BPE\"")))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage("t.json: model type BPE is not supported (only WordPiece)");
        assertThatThrownBy(() -> WordPieceTokenizer.parse("t.json", "{\"model\": "))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageStartingWith("t.json: invalid JSON");
        assertThatThrownBy(() -> WordPieceTokenizer.parse("t.json", json.replace("\"[CLS]\": 101", "\"[CLS]\": 100")))
                .hasMessageContaining("has id 100 (ids must be 0..30521, each once)");
        // found by TokenizerJsonFuzzTest: encode failed with a NullPointerException, and an empty special token
        // (found reading the code) made tokenize loop for ever
        assertThatThrownBy(() -> WordPieceTokenizer.parse(
                        "t.json", json.replaceFirst("\"content\":\\s*\"\\[MASK\\]\"", "\"content\": \"[MASK2]\"")))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage("t.json: added_tokens: special token '[MASK2]' is not in the vocabulary");
        assertThatThrownBy(() -> WordPieceTokenizer.parse(
                        "t.json", json.replaceFirst("\"content\":\\s*\"\\[MASK\\]\"", "\"content\": \"\"")))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage("t.json: added_tokens has a special token with an empty content");
        assertThatThrownBy(() -> WordPieceTokenizer.parse("t.json", "{\"truncation\": {\"max_length\": 1e999}}"))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage("t.json: invalid JSON at character 35: number '1e999' is out of range");
    }
}
