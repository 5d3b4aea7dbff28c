package dev.quant4j.cli;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Calibration and evaluation sequences cut from a user's file: {@code --calib-text FILE} (one text a line, UTF-8,
 * tokenized with the model's {@code tokenizer.json}) or {@code --calib-tokens FILE} (one sequence of token ids a line,
 * separated by white space), and their {@code --eval-} twins.
 *
 * <p>Packing, as GPTQ's {@code datautils.py} prepares WikiText-2 ({@code get_wikitext2}: the texts joined and tokenized
 * as one stream, then windows of {@code seqlen} tokens taken from it): each non-blank line becomes its ids (a text
 * with the special tokens the tokenizer adds, BOS for Llama), the lines' ids are concatenated in file order into one
 * stream, and the stream is cut into consecutive windows of {@code --seq-len} tokens; the tokens after the last whole
 * window are left out. GPTQ draws its windows at random offsets; here they are consecutive and never overlap, so the
 * same file gives the same sequences on every run, and a file of ids gives exactly the sequences of the text it was
 * tokenized from.
 */
final class TextSequences {

    /** The ids of a file's non-blank lines, each with its line number (from 1). */
    record Lines(String option, Path file, List<int[]> ids, List<Integer> lineNumbers, String tokenizedWith) {

        long tokens() {
            long n = 0;
            for (int[] line : ids) {
                n += line.length;
            }
            return n;
        }
    }

    /** The windows cut from a file and how it was read, for the command's stderr line. */
    record Windows(List<int[]> sequences, String description) {}

    private TextSequences() {}

    /**
     * The ids of {@code --PREFIX-text} (tokenized with {@code tokenizer}, which may be null only when no text is
     * given) or {@code --PREFIX-tokens}; null when neither is given. {@code prefix} is {@code calib} or {@code eval}.
     */
    static Lines read(String prefix, Path text, Path tokens, TextTokenizer tokenizer) throws IOException {
        if (text != null && tokens != null) {
            throw new IllegalArgumentException("--" + prefix + "-text and --" + prefix + "-tokens are two sources of"
                    + " the same sequences: give one");
        }
        if (text != null) {
            return readText("--" + prefix + "-text", text, tokenizer);
        }
        return tokens == null ? null : readTokens("--" + prefix + "-tokens", tokens);
    }

    /** Each non-blank line of a UTF-8 file tokenized on its own, special tokens included. */
    static Lines readText(String option, Path file, TextTokenizer tokenizer) throws IOException {
        List<String> lines = utf8Lines(option, file);
        List<int[]> ids = new ArrayList<>();
        List<Integer> numbers = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            if (!lines.get(i).isBlank()) {
                ids.add(tokenizer.encode(lines.get(i)));
                numbers.add(i + 1);
            }
        }
        if (ids.isEmpty()) {
            throw new IllegalArgumentException(option + " " + file + " holds no text (every line is blank)");
        }
        return new Lines(option, file, ids, numbers, tokenizer.file().toString());
    }

    /** Each non-blank line of a file of token ids, separated by white space. */
    static Lines readTokens(String option, Path file) throws IOException {
        List<String> lines = utf8Lines(option, file);
        List<int[]> ids = new ArrayList<>();
        List<Integer> numbers = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty()) {
                continue;
            }
            String[] parts = line.split("\\s+");
            int[] row = new int[parts.length];
            for (int j = 0; j < parts.length; j++) {
                try {
                    row[j] = Integer.parseInt(parts[j]);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(option + " " + file + " line " + (i + 1) + ": '"
                            + abbreviate(parts[j]) + "' is not a token id (a line holds integers separated by white"
                            + " space)");
                }
                if (row[j] < 0) {
                    throw new IllegalArgumentException(
                            option + " " + file + " line " + (i + 1) + ": token id " + row[j] + " is negative");
                }
            }
            ids.add(row);
            numbers.add(i + 1);
        }
        if (ids.isEmpty()) {
            throw new IllegalArgumentException(option + " " + file + " holds no token ids (every line is blank)");
        }
        return new Lines(option, file, ids, numbers, null);
    }

    /**
     * The lines' ids concatenated and cut into consecutive windows of {@code seqLen} tokens: all of them, or the first
     * {@code count} when it is not null ({@code countOption} names it in messages). Every id must be below {@code
     * vocab}, the model's vocabulary ({@code model} names it).
     */
    static Windows windows(Lines lines, int vocab, String model, int seqLen, Integer count, String countOption) {
        for (int i = 0; i < lines.ids().size(); i++) {
            for (int id : lines.ids().get(i)) {
                if (id >= vocab) {
                    throw new IllegalArgumentException(lines.option() + " " + lines.file() + " line "
                            + lines.lineNumbers().get(i) + ": token id " + id + " is outside the vocabulary of "
                            + model + " (ids 0.." + (vocab - 1) + ")");
                }
            }
        }
        long total = lines.tokens();
        long whole = total / seqLen;
        if (whole == 0) {
            throw new IllegalArgumentException(lines.option() + " " + lines.file() + " holds " + total + " tokens"
                    + tokenized(lines) + "; one sequence of --seq-len " + seqLen + " needs " + seqLen
                    + ": give more text or a lower --seq-len");
        }
        if (count != null && count < 1) {
            throw new IllegalArgumentException(countOption + " " + count + " must be at least 1");
        }
        if (count != null && count > whole) {
            throw new IllegalArgumentException(lines.option() + " " + lines.file() + " holds " + whole
                    + (whole == 1 ? " sequence" : " sequences") + " of " + seqLen + " tokens (" + total + " tokens"
                    + tokenized(lines) + "), and " + countOption + " asks for " + count);
        }
        int n = count == null ? Math.toIntExact(whole) : count;
        List<int[]> out = new ArrayList<>(n);
        int[] window = new int[seqLen];
        int filled = 0;
        for (int[] line : lines.ids()) {
            for (int id : line) {
                window[filled++] = id;
                if (filled == seqLen) {
                    out.add(window);
                    if (out.size() == n) {
                        return new Windows(out, describe(lines, n, seqLen, total));
                    }
                    window = new int[seqLen];
                    filled = 0;
                }
            }
        }
        throw new AssertionError("the stream holds " + whole + " windows");
    }

    private static String describe(Lines lines, int n, int seqLen, long total) {
        long unused = total - (long) n * seqLen;
        return String.format(
                Locale.ROOT,
                "%d %s of %d tokens from %s (%d %s, %d tokens%s%s)",
                n,
                n == 1 ? "sequence" : "sequences",
                seqLen,
                lines.file().getFileName(),
                lines.ids().size(),
                lines.tokenizedWith() == null ? "lines of ids" : "lines of text",
                total,
                tokenized(lines),
                unused > 0 ? "; the last " + unused + " unused" : "");
    }

    private static String tokenized(Lines lines) {
        return lines.tokenizedWith() == null ? "" : " by " + lines.tokenizedWith();
    }

    /** The lines of a UTF-8 file (a leading byte-order mark and each line's trailing CR removed). */
    private static List<String> utf8Lines(String option, Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(option + " " + file + ": no such file");
        }
        byte[] bytes = Files.readAllBytes(file);
        CharsetDecoder decoder = StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer chars = CharBuffer.allocate(bytes.length + 1);
        CoderResult r = decoder.decode(in, chars, true);
        if (r.isError()) {
            int line = 1;
            for (int i = 0; i < in.position(); i++) {
                line += bytes[i] == '\n' ? 1 : 0;
            }
            throw new IllegalArgumentException(
                    option + " " + file + " line " + line + ": not UTF-8 text (byte offset " + in.position() + ")");
        }
        decoder.flush(chars);
        String text = chars.flip().toString();
        if (text.startsWith("\uFEFF")) {
            text = text.substring(1);
        }
        List<String> lines = new ArrayList<>();
        for (String line : text.split("\n", -1)) {
            lines.add(line.endsWith("\r") ? line.substring(0, line.length() - 1) : line);
        }
        return lines;
    }

    private static String abbreviate(String s) {
        return s.length() > 20 ? s.substring(0, 20) + "..." : s;
    }
}
