package dev.quant4j.model;

import dev.quant4j.internal.Json;
import dev.quant4j.io.MalformedTensorFileException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The vocabulary a Hugging Face {@code tokenizer.json} defines, read without tokenizing anything: the model's type,
 * every token with its id (the model's {@code vocab} and the {@code added_tokens}), which tokens are special, and a
 * BPE model's merges. What a caller needs to check that a tokenizer's ids fit a model's embedding table, and to
 * carry the vocabulary into another format.
 *
 * <p>Layout followed: huggingface/tokenizers' serialization ({@code tokenizers/src/models/*}/{@code serialization.rs},
 * {@code tokenizer/serialization.rs}): {@code model.vocab} is an object of token to id for BPE, WordPiece and
 * WordLevel, and a list of {@code [piece, score]} pairs (the id is the position) for Unigram; {@code model.merges} is
 * a list of {@code "left right"} strings or, in newer files, of {@code [left, right]} pairs; {@code added_tokens} is a
 * list of objects with {@code id}, {@code content} and {@code special}.
 */
public final class HuggingFaceVocabulary {

    private final String source;
    private final String modelType;
    private final String[] tokens;
    private final boolean[] special;
    private final boolean[] added;
    private final List<String[]> merges;
    private final boolean byteFallback;
    private final boolean ignoreMerges;
    private final String unkToken;
    private final List<String> splitPatterns = new ArrayList<>();
    private Boolean byteLevelUseRegex;
    private String templateFirst;
    private String templateLast;
    private final Map<String, Integer> addedByContent = new HashMap<>();

    private HuggingFaceVocabulary(String source, Map<String, Object> json) {
        this.source = source;
        if (!(json.get("model") instanceof Map<?, ?> m)) {
            throw error("no \"model\" object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> model = (Map<String, Object>) m;
        Object type = model.get("type");
        Object vocab = model.get("vocab");
        if (type == null && vocab instanceof List<?>) {
            type = "Unigram";
        } else if (type == null && model.containsKey("merges")) {
            type = "BPE";
        }
        if (!(type instanceof String t)) {
            throw error("model.type is missing or not a string");
        }
        this.modelType = t;
        List<String> byId = new ArrayList<>();
        if (vocab instanceof Map<?, ?> v) {
            for (Map.Entry<?, ?> e : v.entrySet()) {
                put(byId, e.getValue(), (String) e.getKey(), "model.vocab entry '" + e.getKey() + "'");
            }
        } else if (vocab instanceof List<?> v) {
            for (int i = 0; i < v.size(); i++) {
                if (!(v.get(i) instanceof List<?> pair) || pair.isEmpty() || !(pair.get(0) instanceof String piece)) {
                    throw error("model.vocab[" + i + "] is not a [piece, score] pair");
                }
                put(byId, (long) i, piece, "model.vocab[" + i + "]");
            }
        } else {
            throw error("model.vocab is missing (a " + t + " model)");
        }
        int modelSize = byId.size();
        List<Long> addedIds = new ArrayList<>();
        List<Boolean> addedSpecial = new ArrayList<>();
        if (json.get("added_tokens") instanceof List<?> list) {
            for (int i = 0; i < list.size(); i++) {
                if (!(list.get(i) instanceof Map<?, ?> a)
                        || !(a.get("id") instanceof Long id)
                        || !(a.get("content") instanceof String content)) {
                    throw error("added_tokens[" + i + "] has no integer id and string content");
                }
                String where = "added_tokens[" + i + "] '" + content + "'";
                if (id < modelSize && byId.get((int) (long) id) != null) {
                    if (!byId.get((int) (long) id).equals(content)) {
                        throw error(where + " has id " + id + ", which model.vocab gives to '"
                                + byId.get((int) (long) id) + "'");
                    }
                } else {
                    put(byId, id, content, where);
                }
                addedIds.add(id);
                addedSpecial.add(Boolean.TRUE.equals(a.get("special")));
            }
        }
        this.tokens = byId.toArray(new String[0]);
        this.special = new boolean[tokens.length];
        this.added = new boolean[tokens.length];
        for (int i = 0; i < addedIds.size(); i++) {
            int id = (int) (long) addedIds.get(i);
            added[id] = true;
            special[id] |= addedSpecial.get(i);
        }
        this.merges = new ArrayList<>();
        if (model.get("merges") instanceof List<?> list) {
            for (int i = 0; i < list.size(); i++) {
                Object e = list.get(i);
                String[] pair = null;
                if (e instanceof String s) {
                    int space = s.indexOf(' ', 1);
                    if (space > 0) {
                        pair = new String[] {s.substring(0, space), s.substring(space + 1)};
                    }
                } else if (e instanceof List<?> p
                        && p.size() == 2
                        && p.get(0) instanceof String l
                        && p.get(1) instanceof String r) {
                    pair = new String[] {l, r};
                }
                if (pair == null) {
                    throw error("model.merges[" + i + "] is neither \"left right\" nor [left, right]");
                }
                merges.add(pair);
            }
        }
        this.byteFallback = Boolean.TRUE.equals(model.get("byte_fallback"));
        this.ignoreMerges = Boolean.TRUE.equals(model.get("ignore_merges"));
        this.unkToken = model.get("unk_token") instanceof String u ? u : null;
        for (int i = 0; i < addedIds.size(); i++) {
            addedByContent.putIfAbsent(tokens[(int) (long) addedIds.get(i)], (int) (long) addedIds.get(i));
        }
        preTokenizers(json.get("pre_tokenizer"), 0);
        postProcessors(json.get("post_processor"), 0);
    }

    /** The Split patterns and the ByteLevel step of a pre-tokenizer (a Sequence's in order). */
    private void preTokenizers(Object p, int depth) {
        if (!(p instanceof Map<?, ?> m) || depth > 8) {
            return;
        }
        Object type = m.get("type");
        if ("Sequence".equals(type) && m.get("pretokenizers") instanceof List<?> list) {
            for (Object e : list) {
                preTokenizers(e, depth + 1);
            }
        } else if ("Split".equals(type)
                && m.get("pattern") instanceof Map<?, ?> pattern
                && pattern.get("Regex") instanceof String regex) {
            splitPatterns.add(regex);
        } else if ("ByteLevel".equals(type)) {
            byteLevelUseRegex = !Boolean.FALSE.equals(m.get("use_regex"));
        }
    }

    /** The special tokens a TemplateProcessing puts before and after a single sequence. */
    private void postProcessors(Object p, int depth) {
        if (!(p instanceof Map<?, ?> m) || depth > 8) {
            return;
        }
        if ("Sequence".equals(m.get("type")) && m.get("processors") instanceof List<?> list) {
            for (Object e : list) {
                postProcessors(e, depth + 1);
            }
        } else if ("TemplateProcessing".equals(m.get("type"))
                && m.get("single") instanceof List<?> single
                && single.size() > 1) {
            templateFirst = specialTokenId(single.get(0));
            templateLast = specialTokenId(single.get(single.size() - 1));
        }
    }

    private static String specialTokenId(Object piece) {
        return piece instanceof Map<?, ?> m
                        && m.get("SpecialToken") instanceof Map<?, ?> t
                        && t.get("id") instanceof String id
                ? id
                : null;
    }

    private void put(List<String> byId, Object idValue, String token, String where) {
        if (!(idValue instanceof Long id) || id < 0 || id >= Integer.MAX_VALUE - 8) {
            throw error(where + " has id " + idValue + " (ids are integers from 0)");
        }
        int i = (int) (long) id;
        if (i >= byId.size() && i - byId.size() > (1 << 24)) {
            throw error(where + " has id " + id + ", far beyond the " + byId.size() + " ids before it");
        }
        while (byId.size() <= i) {
            byId.add(null);
        }
        if (byId.get(i) != null) {
            throw error(where + " has id " + id + ", which '" + byId.get(i) + "' has too");
        }
        byId.set(i, token);
    }

    private MalformedTensorFileException error(String what) {
        return new MalformedTensorFileException(source + ": " + what);
    }

    /** Reads a {@code tokenizer.json}. */
    public static HuggingFaceVocabulary read(Path file) throws IOException {
        return parse(file.toString(), Files.readString(file, StandardCharsets.UTF_8));
    }

    /** Parses the text of a {@code tokenizer.json}; {@code source} names it in messages. */
    public static HuggingFaceVocabulary parse(String source, String json) {
        return new HuggingFaceVocabulary(source, root(source, json));
    }

    /**
     * The top-level object of a {@code tokenizer.json}'s text, malformed JSON or another top-level value refused
     * naming {@code source}.
     */
    @SuppressWarnings("unchecked")
    static Map<String, Object> root(String source, String json) {
        Object root;
        try {
            root = Json.parse(json);
        } catch (IllegalArgumentException e) {
            throw new MalformedTensorFileException(source + ": " + e.getMessage(), e);
        }
        if (!(root instanceof Map<?, ?>)) {
            throw new MalformedTensorFileException(source + ": not a JSON object");
        }
        return (Map<String, Object>) root;
    }

    /** The file this vocabulary was read from, as given. */
    public String source() {
        return source;
    }

    /** {@code model.type}: BPE, WordPiece, WordLevel or Unigram. */
    public String modelType() {
        return modelType;
    }

    /** One more than the largest id: how many rows an embedding table needs for every id this tokenizer gives. */
    public int size() {
        return tokens.length;
    }

    /** The token of {@code id}, or null where the file leaves the id unused. */
    public String token(int id) {
        return tokens[id];
    }

    /** Whether {@code id} is an added token marked {@code special}. */
    public boolean special(int id) {
        return special[id];
    }

    /** Whether {@code id} is listed in {@code added_tokens}. */
    public boolean added(int id) {
        return added[id];
    }

    /** A BPE model's merges in rank order, each {@code {left, right}}; empty for other models. */
    public List<String[]> merges() {
        return merges;
    }

    /** A BPE model's {@code byte_fallback}: unknown characters become {@code <0xNN>} byte tokens (Llama 2). */
    public boolean byteFallback() {
        return byteFallback;
    }

    /** A BPE model's {@code ignore_merges}: a word that is a token is taken whole (Llama 3). */
    public boolean ignoreMerges() {
        return ignoreMerges;
    }

    /** The model's {@code unk_token}, or null. */
    public String unkToken() {
        return unkToken;
    }

    /** The regular expressions of the pre-tokenizer's {@code Split} steps, in order. */
    public List<String> splitPatterns() {
        return splitPatterns;
    }

    /** Whether the pre-tokenizer has a {@code ByteLevel} step (GPT-2's byte-to-character map). */
    public boolean byteLevel() {
        return byteLevelUseRegex != null;
    }

    /** The {@code use_regex} of the {@code ByteLevel} pre-tokenizer step (GPT-2's own split), false without one. */
    public boolean byteLevelUsesRegex() {
        return Boolean.TRUE.equals(byteLevelUseRegex);
    }

    /** The special token a {@code TemplateProcessing} post-processor puts first in a single sequence, or null. */
    public String templateFirst() {
        return templateFirst;
    }

    /** The special token a {@code TemplateProcessing} post-processor puts last in a single sequence, or null. */
    public String templateLast() {
        return templateLast;
    }

    /** The id of the first added token whose content is {@code content}, or -1. */
    public int addedId(String content) {
        Integer id = addedByContent.get(content);
        return id == null ? -1 : id;
    }
}
