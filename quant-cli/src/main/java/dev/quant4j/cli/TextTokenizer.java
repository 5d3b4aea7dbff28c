package dev.quant4j.cli;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.quant4j.model.HuggingFaceVocabulary;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json} run by Hugging Face's own tokenizers library (Rust, through DJL's {@code
 * ai.djl.huggingface:tokenizers}): text to ids as {@code transformers}' fast tokenizer gives them (special tokens
 * included, as the file's post-processor adds them: BOS for Llama), ids back to text. No padding, no truncation. The
 * only class of the command that sees DJL's types.
 */
final class TextTokenizer implements AutoCloseable {

    private final Path file;
    private final HuggingFaceTokenizer tokenizer;
    private final HuggingFaceVocabulary vocabulary;

    private TextTokenizer(Path file, HuggingFaceTokenizer tokenizer, HuggingFaceVocabulary vocabulary) {
        this.file = file;
        this.tokenizer = tokenizer;
        this.vocabulary = vocabulary;
    }

    /**
     * The tokenizer of {@code --tokenizer}, or else the {@code tokenizer.json} of a Hugging Face model folder; null
     * when neither exists.
     */
    static Path locate(Path explicit, Path model) {
        if (explicit != null) {
            return explicit;
        }
        Path inFolder = model.resolve("tokenizer.json");
        return Files.isDirectory(model) && Files.isRegularFile(inFolder) ? inFolder : null;
    }

    /** Loads {@code file}; its vocabulary is checked against the model's with {@link #requireFits}. */
    static TextTokenizer open(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("--tokenizer " + file + ": no such file");
        }
        HuggingFaceVocabulary vocabulary = HuggingFaceVocabulary.read(file);
        HuggingFaceTokenizer tokenizer;
        try {
            tokenizer = HuggingFaceTokenizer.newInstance(
                    file, Map.of("padding", "false", "truncation", "false", "addSpecialTokens", "true"));
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(
                    file + ": Hugging Face's tokenizers library cannot read it (" + e.getMessage() + ")", e);
        }
        return new TextTokenizer(file, tokenizer, vocabulary);
    }

    /** The file read. */
    Path file() {
        return file;
    }

    /** One more than the largest id the tokenizer gives. */
    int size() {
        return vocabulary.size();
    }

    /**
     * Refuses a tokenizer whose ids reach beyond the model's {@code vocab} embedding rows; returns a note (or null)
     * when the model has more rows than the tokenizer has ids, which is legal: models pad their embedding table.
     */
    String requireFits(int vocab, String model) {
        if (size() > vocab) {
            throw new IllegalArgumentException(file + " gives ids up to " + (size() - 1) + " (" + size()
                    + " tokens), and " + model + " has a vocabulary of " + vocab + ": not this model's tokenizer");
        }
        return size() < vocab
                ? file + " has " + size() + " tokens, " + model + " " + vocab + " embedding rows (a padded table:"
                        + " the last " + (vocab - size()) + " are never used)"
                : null;
    }

    /** The ids of {@code text}, with the special tokens the file's post-processor adds. */
    int[] encode(String text) {
        return Arrays.stream(tokenizer.encode(text, true, false).getIds())
                .mapToInt(Math::toIntExact)
                .toArray();
    }

    /** The text of {@code ids}, special tokens left out. */
    String decode(int[] ids) {
        return tokenizer.decode(Arrays.stream(ids).asLongStream().toArray(), true);
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
