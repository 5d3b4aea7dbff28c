package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.io.GgufValue;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.model.HuggingFaceVocabulary;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link HuggingFaceVocabulary} on the layouts of {@code tokenizer.json} (vocab object and Unigram list, both merge
 * formats, added tokens) and its errors; {@link GgufTokenizer} on what it carries and what it leaves to the
 * placeholder. llama.cpp's own reading of the converted files is {@code LlamaCppTokenizerTest} (quant-cli).
 */
class GgufTokenizerTest {

    @TempDir
    Path dir;

    static final String ADDED = "\"added_tokens\": [{\"id\": 4, \"content\": \"<|end|>\", \"special\": true},"
            + " {\"id\": 5, \"content\": \"user word\", \"special\": false}]";

    static String bpe(String preTokenizer, String merges) {
        return "{" + ADDED + ", \"pre_tokenizer\": " + preTokenizer + ", \"post_processor\": {\"type\":"
                + " \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|end|>\"}}, {\"Sequence\":"
                + " {\"id\": \"A\"}}]}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2,"
                + " \"a b\": 3}, \"merges\": " + merges + "}}";
    }

    static String split(String regex) {
        return "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \""
                + regex.replace("\\", "\\\\") + "\"}}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}";
    }

    Path folder(String tokenizer) throws Exception {
        Path hf = Files.createDirectories(dir.resolve("hf"));
        Files.writeString(hf.resolve("tokenizer.json"), tokenizer);
        return hf;
    }

    @Test
    void readsVocabularyAddedTokensAndBothMergeFormats() {
        HuggingFaceVocabulary v = HuggingFaceVocabulary.parse("t.json", bpe("null", "[\"a b\", [\"a b\", \"b\"]]"));
        assertThat(v.modelType()).isEqualTo("BPE");
        assertThat(v.size()).isEqualTo(6);
        assertThat(v.token(2)).isEqualTo("ab");
        assertThat(v.added(4)).isTrue();
        assertThat(v.special(4)).isTrue();
        assertThat(v.special(5)).isFalse();
        assertThat(v.addedId("<|end|>")).isEqualTo(4);
        assertThat(v.addedId("ab")).isEqualTo(-1);
        assertThat(v.merges()).containsExactly(new String[] {"a", "b"}, new String[] {"a b", "b"});
        assertThat(v.templateFirst()).isEqualTo("<|end|>");
        assertThat(v.templateLast()).isNull();

        HuggingFaceVocabulary unigram = HuggingFaceVocabulary.parse(
                "u.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"<unk>\", 0], [\"x\", -1.5]]}}");
        assertThat(unigram.size()).isEqualTo(2);
        assertThat(unigram.token(1)).isEqualTo("x");
    }

    @Test
    void malformedFilesAreNamed() {
        assertThatThrownBy(() -> HuggingFaceVocabulary.parse(
                        "t.json", "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0, \"b\": 0}}}"))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage("t.json: model.vocab entry 'b' has id 0, which 'a' has too");
        assertThatThrownBy(() -> HuggingFaceVocabulary.parse("t.json", bpe("null", "[\"ab\"]")))
                .hasMessage("t.json: model.merges[0] is neither \"left right\" nor [left, right]");
        assertThatThrownBy(() -> HuggingFaceVocabulary.parse(
                        "t.json",
                        bpe("null", "[]")
                                .replace(
                                        "\"id\": 4, \"content\": \"<|end|>\"",
                                        "\"id\": 1," + " \"content\": \"<|end|>\"")))
                .hasMessage("t.json: added_tokens[0] '<|end|>' has id 1, which model.vocab gives to 'b'");
        assertThatThrownBy(() -> HuggingFaceVocabulary.parse("t.json", "{\"model\": {\"type\": \"BPE\"}}"))
                .hasMessage("t.json: model.vocab is missing (a BPE model)");
        assertThatThrownBy(() -> HuggingFaceVocabulary.parse(
                        "t.json", "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 999999999}}}"))
                .hasMessage("t.json: model.vocab entry 'a' has id 999999999, far beyond the 0 ids before it");
        assertThatThrownBy(() -> HuggingFaceVocabulary.parse("t.json", "[1]")).hasMessage("t.json: not a JSON object");
    }

    @Test
    void byteLevelBpeBecomesGpt2WithThePreTokenizerItsExpressionNames() throws Exception {
        GgufTokenizer.Converted c =
                GgufTokenizer.fromHuggingFace(folder(bpe(split(GgufTokenizer.QWEN2_SPLIT), "[[\"a b\", \"b\"]]")), 8);
        Map<String, GgufValue> m = c.metadata();
        assertThat(m.get("tokenizer.ggml.model").asString()).isEqualTo("gpt2");
        assertThat(m.get("tokenizer.ggml.pre").asString()).isEqualTo("qwen2");
        assertThat(m.get("tokenizer.ggml.tokens").asArray().values())
                .containsExactly("a", "b", "ab", "a b", "<|end|>", "user word", "[PAD6]", "[PAD7]");
        assertThat(m.get("tokenizer.ggml.token_type").asArray().values().stream()
                        .map(t -> ((Number) t).intValue())
                        .toList())
                .containsExactly(1, 1, 1, 1, 3, 4, 5, 5);
        // a space inside a merge's part is written U+0120, as gguf-py's SpecialVocab does
        assertThat(m.get("tokenizer.ggml.merges").asArray().values()).containsExactly("a\u0120b b");
        assertThat(m.get("tokenizer.ggml.add_bos_token").value()).isEqualTo(true);
        assertThat(m).doesNotContainKeys("tokenizer.ggml.scores", "tokenizer.ggml.bos_token_id");
        assertThat(c.description())
                .isEqualTo("gpt2 (pre qwen2), 6 tokens and 2 [PAD] to fill 8 rows, 1 merges," + " add_bos true");

        String gpt2 = bpe("{\"type\": \"ByteLevel\"}", "[]");
        assertThat(GgufTokenizer.fromHuggingFace(folder(gpt2), 6)
                        .metadata()
                        .get("tokenizer.ggml.pre")
                        .asString())
                .isEqualTo("gpt-2");
        Files.writeString(
                dir.resolve("hf").resolve("tokenizer_config.json"),
                "{\"eos_token\": {\"content\":" + " \"<|end|>\"}, \"add_bos_token\": false}");
        Files.writeString(dir.resolve("hf").resolve("config.json"), "{\"bos_token_id\": 2, \"eos_token_id\": 3}");
        Map<String, GgufValue> withConfig =
                GgufTokenizer.fromHuggingFace(dir.resolve("hf"), 6).metadata();
        assertThat(withConfig.get("tokenizer.ggml.bos_token_id").asLong()).isEqualTo(2);
        assertThat(withConfig.get("tokenizer.ggml.eos_token_id").asLong()).isEqualTo(4); // tokenizer_config first
        assertThat(withConfig.get("tokenizer.ggml.add_bos_token").value()).isEqualTo(false);
    }

    @Test
    void otherTokenizersKeepThePlaceholderWithTheReason() throws Exception {
        assertThat(GgufTokenizer.fromHuggingFace(folder(bpe(split("\\s+"), "[]")), 8)
                        .unsupported())
                .isEqualTo("its pre-tokenizer splits with [\\s+], not Llama 3's, Qwen2's or GPT-2's expression");
        assertThat(GgufTokenizer.fromHuggingFace(
                                folder("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}}}"), 8)
                        .unsupported())
                .startsWith("a WordLevel model");
        assertThatThrownBy(() -> GgufTokenizer.fromHuggingFace(folder(bpe("null", "[]")), 5))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageEndingWith("tokenizer.json gives ids up to 5 (6 tokens), and the model has a vocabulary"
                        + " of 5: not this model's tokenizer");
        assertThat(GgufTokenizer.looksSpecial("<|im_start|>")).isTrue();
        assertThat(GgufTokenizer.looksSpecial("<unused12>")).isTrue();
        assertThat(GgufTokenizer.looksSpecial("<s>")).isFalse();
        assertThat(List.of(GgufTokenizer.LLAMA3_SPLIT, GgufTokenizer.QWEN2_SPLIT))
                .doesNotHaveDuplicates();
    }
}
