package dev.quant4j.model;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.internal.Json;
import dev.quant4j.testing.FuzzContract;
import java.nio.charset.StandardCharsets;

/**
 * {@code tokenizer.json} and the JSON reader under it: any bytes are read or refused; JSON that parses is written by
 * {@link Json#write} and parses back equal; a tokenizer that loads encodes a fixed text and the start of its own file;
 * {@link HuggingFaceVocabulary} reads or refuses the same bytes, and what it reads is consistent.
 */
class TokenizerJsonFuzzTest {

    private static final String TEXT = "Hello, [MASK] world! Héllo\tthere 中文 ##ing [CLS] unaffable\u0000.";

    @FuzzTest
    void fuzz(byte[] input) {
        String text = new String(input, StandardCharsets.UTF_8);
        FuzzContract.check(input, bytes -> Json.parse(text), json -> {
            Object again = Json.parse(Json.write(json));
            require(again.equals(json), "JSON differs after writing: " + Json.write(again));
        });
        FuzzContract.check(input, bytes -> WordPieceTokenizer.parse("tokenizer.json", text), tokenizer -> {
            tokenizer.encode(TEXT);
            tokenizer.encode(text.substring(0, Math.min(text.length(), 256)));
        });
        FuzzContract.check(input, bytes -> HuggingFaceVocabulary.parse("tokenizer.json", text), v -> {
            for (int id = 0; id < v.size(); id++) {
                if (v.token(id) != null && v.added(id)) {
                    require(v.addedId(v.token(id)) >= 0, "added token " + id + " not found by its content");
                }
            }
            for (String[] m : v.merges()) {
                require(m.length == 2 && m[0] != null && m[1] != null, "a merge is not a pair");
            }
        });
    }
}
