package dev.quant4j.pipeline;

import dev.quant4j.internal.Json;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.GgufValueType;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.model.HuggingFaceVocabulary;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A Hugging Face folder's tokenizer as GGUF's {@code tokenizer.ggml.*} keys, so that llama.cpp tokenizes text for the
 * model as {@code transformers} does. Follows llama.cpp's converter (commit {@code 81ff7abe}: {@code
 * conversion/base.py} {@code get_vocab_base}, {@code _set_vocab_gpt2} and {@code _set_vocab_llama_hf}; {@code
 * gguf-py/gguf/vocab.py} {@code SpecialVocab}; key names and token types from {@code gguf-py/gguf/constants.py}).
 *
 * <p>Two kinds of {@code tokenizer.json} are carried:
 *
 * <ul>
 *   <li><b>Byte-level BPE</b> (GPT-2, Llama 3, Qwen2: a BPE model without {@code byte_fallback}, a {@code ByteLevel}
 *       pre-tokenizer): {@code tokenizer.ggml.model = "gpt2"}, the merges as {@code "left right"} strings (a space
 *       inside a part written U+0120, as {@code SpecialVocab} does), and {@code tokenizer.ggml.pre} named after the
 *       pre-tokenizer's split expression, which llama.cpp's {@code llama-vocab.cpp} keeps as its own: Llama 3's
 *       ({@code "llama-bpe"}), Qwen2's ({@code "qwen2"}), or GPT-2's own split, a {@code ByteLevel} step with {@code
 *       use_regex} and no {@code Split} ({@code "gpt-2"}). llama.cpp's converter names the pre-tokenizer by hashing
 *       the ids of a test string instead; quant4j does not tokenize here, so another expression is not carried.
 *   <li><b>SentencePiece converted to BPE</b> (Llama 2: BPE with {@code byte_fallback}): {@code tokenizer.ggml.model =
 *       "llama"}, {@code tokenizer.ggml.pre = "default"}, with scores. llama.cpp's SentencePiece tokenizer merges the
 *       adjacent pair whose joined piece has the highest score; BPE merges the pair of lowest rank. A piece made by
 *       merge {@code r} scores {@code -r}, so both merge in the same order; every other piece scores 0, added tokens
 *       and padding -1000. ({@code LlamaHfVocab} gives every piece -1000, which would make llama.cpp merge left to
 *       right.) Byte pieces {@code <0xNN>} are BYTE.
 * </ul>
 *
 * <p>Tokens: one per row of the embedding table, ids the tokenizer leaves unused (a padded table) {@code [PADn]} of
 * type UNUSED; an added token is CONTROL when marked {@code special} or when it looks special ({@code <|...|>},
 * {@code <pad>}, {@code <mask>}), otherwise USER_DEFINED with {@code ▁} written as a space; every other token NORMAL.
 * Special ids as {@code SpecialVocab} finds them: {@code tokenizer_config.json}'s {@code bos_token}, {@code eos_token},
 * {@code unk_token}, {@code pad_token} (a string or an object with {@code content}) matched against the added tokens,
 * then {@code config.json}'s {@code bos_token_id} ... (the first found wins); {@code add_bos_token}/{@code
 * add_eos_token} from the post-processor's template (a special token first/last), overridden by {@code
 * tokenizer_config.json}'s.
 */
public final class GgufTokenizer {

    /** Llama 3's split expression as its {@code tokenizer.json} holds it. */
    static final String LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
            + " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** Qwen2's: Llama 3's with single digits. */
    static final String QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
            + " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    static final int NORMAL = 1;
    static final int UNKNOWN = 2;
    static final int CONTROL = 3;
    static final int USER_DEFINED = 4;
    static final int UNUSED = 5;
    static final int BYTE = 6;

    private static final Pattern BYTE_PIECE = Pattern.compile("<0x[0-9A-Fa-f]{2}>");

    /**
     * The outcome: the keys to write, or why the tokenizer cannot be carried (then {@code metadata} is null).
     *
     * @param description what was carried, for the command's message: model, pre-tokenizer, counts, special ids
     */
    public record Converted(Map<String, GgufValue> metadata, String description, String unsupported) {}

    private GgufTokenizer() {}

    /**
     * The {@code tokenizer.ggml.*} keys for the {@code tokenizer.json} of {@code folder} (with its {@code
     * tokenizer_config.json} and {@code config.json} when present), {@code vocabSize} tokens long.
     *
     * @throws MalformedTensorFileException for a file that is not what it should be, and for a tokenizer whose ids
     *     reach beyond {@code vocabSize}
     */
    public static Converted fromHuggingFace(Path folder, int vocabSize) throws IOException {
        Path file = folder.resolve("tokenizer.json");
        HuggingFaceVocabulary v = HuggingFaceVocabulary.read(file);
        if (v.size() > vocabSize) {
            throw new MalformedTensorFileException(file + " gives ids up to " + (v.size() - 1) + " (" + v.size()
                    + " tokens), and the model has a vocabulary of " + vocabSize + ": not this model's tokenizer");
        }
        if (!v.modelType().equals("BPE")) {
            return unsupported("a " + v.modelType() + " model (quant4j carries byte-level BPE and Llama 2's BPE)");
        }
        Map<String, Object> tokenizerConfig = object(folder.resolve("tokenizer_config.json"));
        Map<String, Object> config = object(folder.resolve("config.json"));
        String model;
        String pre;
        if (v.byteFallback()) {
            model = "llama";
            pre = "default";
        } else if (v.byteLevel()) {
            model = "gpt2";
            List<String> splits = v.splitPatterns();
            if (splits.isEmpty() && v.byteLevelUsesRegex()) {
                pre = "gpt-2";
            } else if (splits.size() == 1 && splits.get(0).equals(LLAMA3_SPLIT)) {
                pre = "llama-bpe";
            } else if (splits.size() == 1 && splits.get(0).equals(QWEN2_SPLIT)) {
                pre = "qwen2";
            } else {
                return unsupported(
                        "its pre-tokenizer splits with " + splits + ", not Llama 3's, Qwen2's or GPT-2's expression");
            }
        } else {
            return unsupported("a BPE model that is neither byte-level nor byte_fallback (SentencePiece)");
        }
        boolean spm = model.equals("llama");
        Map<String, Integer> rankOfMerged = new HashMap<>();
        List<String> merges = new ArrayList<>();
        for (String[] m : v.merges()) {
            rankOfMerged.putIfAbsent(m[0] + m[1], merges.size());
            merges.add(m[0].replace(' ', '\u0120') + " " + m[1].replace(' ', '\u0120'));
        }
        Map<String, Integer> specialIds = specialIds(v, tokenizerConfig, config, vocabSize);
        List<String> tokens = new ArrayList<>(vocabSize);
        List<Long> types = new ArrayList<>(vocabSize);
        List<Float> scores = new ArrayList<>(vocabSize);
        int padded = 0;
        for (int id = 0; id < vocabSize; id++) {
            String token = id < v.size() ? v.token(id) : null;
            int type;
            float score = 0;
            if (token == null) {
                token = "[PAD" + id + "]";
                type = UNUSED;
                score = -1000;
                padded++;
            } else if (spm && token.equals(v.unkToken())) {
                type = UNKNOWN; // as the SentencePiece converter marks it
            } else if (v.added(id) && (v.special(id) || looksSpecial(token))) {
                type = CONTROL;
            } else if (v.added(id)) {
                token = token.replace('\u2581', ' ');
                type = USER_DEFINED;
                score = -1000;
            } else if (spm && BYTE_PIECE.matcher(token).matches()) {
                type = BYTE;
            } else if (spm && specialIds.containsValue(id)) {
                type = CONTROL; // LlamaHfVocab: every special id of the tokenizer (unk, bos, eos) is CONTROL
            } else {
                type = NORMAL;
                Integer rank = rankOfMerged.get(token);
                score = rank == null ? 0 : -rank;
            }
            tokens.add(token);
            types.add((long) type);
            scores.add(score);
        }
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("tokenizer.ggml.model", GgufValue.string(model));
        m.put("tokenizer.ggml.pre", GgufValue.string(pre));
        m.put("tokenizer.ggml.tokens", GgufValue.array(GgufValueType.STRING, tokens));
        if (spm) {
            m.put("tokenizer.ggml.scores", GgufValue.array(GgufValueType.FLOAT32, scores));
        }
        m.put("tokenizer.ggml.token_type", GgufValue.array(GgufValueType.INT32, types));
        if (!spm) {
            m.put("tokenizer.ggml.merges", GgufValue.array(GgufValueType.STRING, merges));
        }
        StringBuilder ids = new StringBuilder();
        for (Map.Entry<String, Integer> e : specialIds.entrySet()) {
            String key = switch (e.getKey()) {
                case "unk" -> "unknown_token_id";
                case "pad" -> "padding_token_id";
                default -> e.getKey() + "_token_id";
            };
            m.put("tokenizer.ggml." + key, GgufValue.uint32(e.getValue()));
            ids.append(", ").append(e.getKey()).append(' ').append(e.getValue());
        }
        Boolean addBos = addSpecial(v.templateFirst(), tokenizerConfig, "add_bos_token");
        Boolean addEos = addSpecial(v.templateLast(), tokenizerConfig, "add_eos_token");
        if (addBos != null) {
            m.put("tokenizer.ggml.add_bos_token", GgufValue.bool(addBos));
        }
        if (addEos != null) {
            m.put("tokenizer.ggml.add_eos_token", GgufValue.bool(addEos));
        }
        String description = model + " (" + (spm ? "SentencePiece BPE with scores" : "pre " + pre) + "), "
                + v.size() + " tokens" + (padded > 0 ? " and " + padded + " [PAD] to fill " + vocabSize + " rows" : "")
                + (spm ? "" : ", " + merges.size() + " merges") + ids
                + (addBos != null ? ", add_bos " + addBos : "");
        return new Converted(m, description, null);
    }

    private static Converted unsupported(String why) {
        return new Converted(null, null, why);
    }

    /** {@code does_token_look_special} of llama.cpp's converter. */
    static boolean looksSpecial(String t) {
        return t.equals("<pad>")
                || t.equals("<mask>")
                || t.equals("<2mass>")
                || t.equals("[@BOS@]")
                || (t.startsWith("<|") && t.endsWith("|>"))
                || (t.startsWith("<\uFF5C") && t.endsWith("\uFF5C>"))
                || (t.startsWith("<unused") && t.endsWith(">"));
    }

    /** bos, eos, unk, pad ids: tokenizer_config.json's tokens matched to added tokens, then config.json's ids. */
    private static Map<String, Integer> specialIds(
            HuggingFaceVocabulary v, Map<String, Object> tokenizerConfig, Map<String, Object> config, int vocabSize) {
        Map<String, Integer> ids = new LinkedHashMap<>();
        for (String typ : List.of("bos", "eos", "unk", "pad")) {
            Object entry = tokenizerConfig.get(typ + "_token");
            if (entry instanceof Map<?, ?> e) {
                entry = e.get("content");
            }
            if (entry instanceof String content && v.addedId(content) >= 0) {
                ids.put(typ, v.addedId(content));
            } else if (config.get(typ + "_token_id") instanceof Long id && id >= 0 && id < vocabSize) {
                ids.put(typ, (int) (long) id);
            }
        }
        return ids;
    }

    /** Whether the template adds the token, overridden by tokenizer_config.json's flag; null when neither says. */
    private static Boolean addSpecial(String templateToken, Map<String, Object> tokenizerConfig, String key) {
        if (tokenizerConfig.get(key) instanceof Boolean b) {
            return b;
        }
        return templateToken != null ? Boolean.TRUE : null;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            return Map.of();
        }
        Object o;
        try {
            o = Json.parse(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            throw new MalformedTensorFileException(file + ": " + e.getMessage(), e);
        }
        if (!(o instanceof Map<?, ?>)) {
            throw new MalformedTensorFileException(file + ": not a JSON object");
        }
        return (Map<String, Object>) o;
    }
}
