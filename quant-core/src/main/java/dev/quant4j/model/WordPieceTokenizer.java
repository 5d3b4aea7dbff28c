package dev.quant4j.model;

import dev.quant4j.io.MalformedTensorFileException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * BERT's WordPiece tokenizer, read from a HuggingFace {@code tokenizer.json} ({@code BertNormalizer}, {@code
 * BertPreTokenizer}, {@code WordPiece} model, {@code [CLS] A [SEP]} template, right truncation).
 *
 * <p>Followed (huggingface/tokenizers, Rust): {@code normalizers/bert.rs} in its order: clean text (drop NUL,
 * U+FFFD and control characters other than tab, newline and carriage return; every white-space character becomes a
 * space), spaces around CJK ideographs, strip accents (NFD, drop non-spacing marks; on when {@code strip_accents} is
 * null and {@code lowercase} is true), lower-case each character; {@code pre_tokenizers/bert.rs}: split on white
 * space and isolate every punctuation character (ASCII punctuation or a Unicode {@code P*} category); {@code
 * models/wordpiece}: greedy longest match first, continuation pieces prefixed {@code ##}, a word with no full match
 * or longer than {@code max_input_chars_per_word} becomes {@code [UNK]}. Added special tokens ({@code [CLS]}, {@code
 * [MASK]} ...) written in the text are matched before normalization, as the library does.
 */
public final class WordPieceTokenizer {

    private final String source;
    private final Map<String, Integer> vocab;
    private final String[] tokenOf;
    private final List<String> specials;
    private final String prefix;
    private final String unk;
    private final int maxWordChars;
    private final boolean lowercase;
    private final boolean stripAccents;
    private final boolean cleanText;
    private final boolean chineseChars;
    private final int cls;
    private final int sep;
    private final int maxLength;

    private WordPieceTokenizer(String source, Map<String, Object> json) {
        this.source = source;
        Map<String, Object> model = object(json, "model");
        requireType(model, "WordPiece", "model");
        Map<String, Object> normalizer = object(json, "normalizer");
        requireType(normalizer, "BertNormalizer", "normalizer");
        Map<String, Object> pre = object(json, "pre_tokenizer");
        requireType(pre, "BertPreTokenizer", "pre_tokenizer");
        Map<String, Object> v = object(model, "vocab");
        this.vocab = new HashMap<>(v.size() * 2);
        this.tokenOf = new String[v.size()];
        for (Map.Entry<String, Object> e : v.entrySet()) {
            if (!(e.getValue() instanceof Long id) || id < 0 || id >= v.size() || tokenOf[(int) (long) id] != null) {
                throw error("vocab entry '" + e.getKey() + "' has id " + e.getValue() + " (ids must be 0.."
                        + (v.size() - 1) + ", each once)");
            }
            vocab.put(e.getKey(), (int) (long) id);
            tokenOf[(int) (long) id] = e.getKey();
        }
        this.prefix = string(model, "continuing_subword_prefix", "##");
        this.unk = string(model, "unk_token", "[UNK]");
        this.maxWordChars = (int) number(model, "max_input_chars_per_word", 100);
        this.cleanText = bool(normalizer, "clean_text", true);
        this.chineseChars = bool(normalizer, "handle_chinese_chars", true);
        this.lowercase = bool(normalizer, "lowercase", true);
        Object strip = normalizer.get("strip_accents");
        this.stripAccents = strip instanceof Boolean b ? b : lowercase;
        this.specials = new ArrayList<>();
        if (json.get("added_tokens") instanceof List<?> added) {
            for (Object a : added) {
                if (a instanceof Map<?, ?> m
                        && Boolean.TRUE.equals(m.get("special"))
                        && m.get("content") instanceof String s) {
                    specials.add(s);
                }
            }
        }
        for (String s : specials) {
            // split out of the text before normalization and encoded by their vocabulary id
            if (s.isEmpty()) {
                throw error("added_tokens has a special token with an empty content");
            }
            if (!vocab.containsKey(s)) {
                throw error("added_tokens: special token '" + s + "' is not in the vocabulary");
            }
        }
        this.cls = id("[CLS]");
        this.sep = id("[SEP]");
        id(unk);
        long max = 512;
        if (json.get("truncation") instanceof Map<?, ?> t && t.get("max_length") instanceof Long m) {
            max = m;
        }
        if (max < 2) {
            throw error("truncation max_length " + max + " leaves no room for [CLS] and [SEP]");
        }
        this.maxLength = (int) Math.min(max, Integer.MAX_VALUE);
    }

    /** Reads a {@code tokenizer.json}. */
    public static WordPieceTokenizer read(Path file) throws IOException {
        return parse(file.toString(), Files.readString(file, StandardCharsets.UTF_8));
    }

    /** Parses the text of a {@code tokenizer.json}; {@code source} names it in messages. */
    public static WordPieceTokenizer parse(String source, String json) {
        return new WordPieceTokenizer(source, HuggingFaceVocabulary.root(source, json));
    }

    /** The largest number of ids {@link #encode} returns (the file's truncation length, [CLS] and [SEP] included). */
    public int maxLength() {
        return maxLength;
    }

    /** Vocabulary size. */
    public int vocabSize() {
        return tokenOf.length;
    }

    /** The token of an id. */
    public String token(int id) {
        return tokenOf[id];
    }

    /** {@code [CLS] tokens [SEP]} as ids, the tokens cut so that the whole fits {@link #maxLength()}. */
    public int[] encode(String text) {
        List<String> pieces = tokenize(text);
        int n = Math.min(pieces.size(), maxLength - 2);
        int[] ids = new int[n + 2];
        ids[0] = cls;
        for (int i = 0; i < n; i++) {
            ids[i + 1] = vocab.get(pieces.get(i));
        }
        ids[n + 1] = sep;
        return ids;
    }

    /** The WordPiece tokens of {@code text}, without [CLS] and [SEP], untruncated. */
    public List<String> tokenize(String text) {
        List<String> out = new ArrayList<>();
        int from = 0;
        while (from <= text.length()) {
            // added special tokens are split out before normalization
            int at = -1;
            String special = null;
            for (String s : specials) {
                int i = text.indexOf(s, from);
                if (i >= 0 && (at < 0 || i < at)) {
                    at = i;
                    special = s;
                }
            }
            int end = at < 0 ? text.length() : at;
            for (String word : preTokenize(normalize(text.substring(from, end)))) {
                wordPiece(word, out);
            }
            if (special == null) {
                break;
            }
            out.add(special);
            from = at + special.length();
        }
        return out;
    }

    /** {@code BertNormalizer}: clean text, CJK spacing, accents, lower case (in that order). */
    String normalize(String text) {
        StringBuilder b = new StringBuilder(text.length() + 8);
        text.codePoints().forEach(cp -> {
            if (cleanText) {
                if (cp == 0 || cp == 0xFFFD || isControl(cp)) {
                    return;
                }
                if (isWhitespace(cp)) {
                    b.append(' ');
                    return;
                }
            }
            if (chineseChars && isChinese(cp)) {
                b.append(' ').appendCodePoint(cp).append(' ');
            } else {
                b.appendCodePoint(cp);
            }
        });
        String s = b.toString();
        if (stripAccents) {
            StringBuilder t = new StringBuilder(s.length());
            Normalizer.normalize(s, Normalizer.Form.NFD).codePoints().forEach(cp -> {
                if (Character.getType(cp) != Character.NON_SPACING_MARK) {
                    t.appendCodePoint(cp);
                }
            });
            s = t.toString();
        }
        if (lowercase) {
            // character by character, as the Rust library does (no final-sigma rule of String.toLowerCase)
            StringBuilder t = new StringBuilder(s.length());
            s.codePoints().forEach(cp -> t.append(new String(Character.toChars(cp)).toLowerCase(Locale.ROOT)));
            s = t.toString();
        }
        return s;
    }

    /** {@code BertPreTokenizer}: words split at white space, each punctuation character a word of its own. */
    static List<String> preTokenize(String text) {
        List<String> words = new ArrayList<>();
        StringBuilder w = new StringBuilder();
        text.codePoints().forEach(cp -> {
            if (isWhitespace(cp)) {
                flush(w, words);
            } else if (isPunctuation(cp)) {
                flush(w, words);
                words.add(new String(Character.toChars(cp)));
            } else {
                w.appendCodePoint(cp);
            }
        });
        flush(w, words);
        return words;
    }

    private static void flush(StringBuilder w, List<String> words) {
        if (w.length() > 0) {
            words.add(w.toString());
            w.setLength(0);
        }
    }

    /** Greedy longest match first over the word's characters; no full match: one {@code [UNK]}. */
    private void wordPiece(String word, List<String> out) {
        int[] cps = word.codePoints().toArray();
        if (cps.length > maxWordChars) {
            out.add(unk);
            return;
        }
        List<String> pieces = new ArrayList<>();
        int start = 0;
        while (start < cps.length) {
            String found = null;
            int end = cps.length;
            for (; end > start; end--) {
                String sub = new String(cps, start, end - start);
                if (start > 0) {
                    sub = prefix + sub;
                }
                if (vocab.containsKey(sub)) {
                    found = sub;
                    break;
                }
            }
            if (found == null) {
                out.add(unk);
                return;
            }
            pieces.add(found);
            start = end;
        }
        out.addAll(pieces);
    }

    /** Tab, newline and carriage return count as white space; otherwise a Unicode {@code C*} category. */
    static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            return false;
        }
        int t = Character.getType(cp);
        return t == Character.CONTROL
                || t == Character.FORMAT
                || t == Character.PRIVATE_USE
                || t == Character.SURROGATE
                || t == Character.UNASSIGNED;
    }

    /** Unicode's White_Space property (what Rust's {@code char::is_whitespace} tests). */
    static boolean isWhitespace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D)
                || cp == 0x20
                || cp == 0x85
                || cp == 0xA0
                || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A)
                || cp == 0x2028
                || cp == 0x2029
                || cp == 0x202F
                || cp == 0x205F
                || cp == 0x3000;
    }

    /** ASCII punctuation (symbols such as {@code $ + < = > ^ ` | ~} included) or a Unicode {@code P*} category. */
    static boolean isPunctuation(int cp) {
        if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
            return true;
        }
        int t = Character.getType(cp);
        return t == Character.CONNECTOR_PUNCTUATION
                || t == Character.DASH_PUNCTUATION
                || t == Character.START_PUNCTUATION
                || t == Character.END_PUNCTUATION
                || t == Character.INITIAL_QUOTE_PUNCTUATION
                || t == Character.FINAL_QUOTE_PUNCTUATION
                || t == Character.OTHER_PUNCTUATION;
    }

    /** The CJK Unified Ideographs blocks BERT pads with spaces. */
    static boolean isChinese(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF)
                || (cp >= 0x3400 && cp <= 0x4DBF)
                || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F)
                || (cp >= 0x2B740 && cp <= 0x2B81F)
                || (cp >= 0x2B820 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF)
                || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    private int id(String token) {
        Integer id = vocab.get(token);
        if (id == null) {
            throw error("the vocabulary has no '" + token + "'");
        }
        return id;
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> object(Map<String, Object> m, String key) {
        if (!(m.get(key) instanceof Map<?, ?> o)) {
            throw error("no '" + key + "' object");
        }
        return (Map<String, Object>) o;
    }

    private void requireType(Map<String, Object> m, String type, String what) {
        if (!type.equals(m.get("type"))) {
            throw error(what + " type " + m.get("type") + " is not supported (only " + type + ")");
        }
    }

    private String string(Map<String, Object> m, String key, String dflt) {
        return m.get(key) instanceof String s ? s : dflt;
    }

    private long number(Map<String, Object> m, String key, long dflt) {
        return m.get(key) instanceof Long l ? l : dflt;
    }

    private boolean bool(Map<String, Object> m, String key, boolean dflt) {
        return m.get(key) instanceof Boolean b ? b : dflt;
    }

    private MalformedTensorFileException error(String what) {
        return new MalformedTensorFileException(source + ": " + what);
    }
}
