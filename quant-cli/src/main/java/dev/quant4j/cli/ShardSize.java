package dev.quant4j.cli;

import java.util.Locale;

/**
 * A shard size as transformers reads {@code max_shard_size} ({@code convert_file_size_to_int} in {@code
 * src/transformers/utils/hub.py}, commit {@code 00511f2b}): digits then a unit, {@code GiB}, {@code MiB}, {@code KiB}
 * (powers of 2) or {@code GB}, {@code MB}, {@code KB} (powers of 10), the unit's letters in any case; a unit whose last
 * letter is a lower-case {@code b} ({@code 8Gb}, {@code 800mb}) counts bits, divided by 8 as transformers divides them.
 * transformers also takes an integer of bytes (a Python {@code int}); here plain digits are bytes.
 */
final class ShardSize {

    private ShardSize() {}

    /**
     * The bytes {@code text} stands for.
     *
     * @throws IllegalArgumentException naming the value and the forms accepted, for anything else or a size below 1
     */
    static long parse(String text) {
        String upper = text.toUpperCase(Locale.ROOT);
        long size;
        try {
            if (upper.endsWith("GIB")) {
                size = Math.multiplyExact(digits(text, 3), 1L << 30);
            } else if (upper.endsWith("MIB")) {
                size = Math.multiplyExact(digits(text, 3), 1L << 20);
            } else if (upper.endsWith("KIB")) {
                size = Math.multiplyExact(digits(text, 3), 1L << 10);
            } else if (upper.endsWith("GB") || upper.endsWith("MB") || upper.endsWith("KB")) {
                long unit = upper.endsWith("GB") ? 1_000_000_000L : upper.endsWith("MB") ? 1_000_000L : 1_000L;
                size = Math.multiplyExact(digits(text, 2), unit);
                if (text.endsWith("b")) {
                    size /= 8;
                }
            } else {
                size = digits(text, 0);
            }
        } catch (NumberFormatException | ArithmeticException e) {
            size = -1;
        }
        if (size < 1) {
            throw new IllegalArgumentException("--max-shard-size '" + text + "' is not a size: digits and a unit, as"
                    + " transformers' max_shard_size takes it (5GB, 500MB, 100KB, 2GiB, 512MiB), or bytes");
        }
        return size;
    }

    /**
     * A split size for GGUF output: what {@link #parse} reads, or a number of megabytes or gigabytes as llama.cpp's
     * {@code gguf-split --split-max-size} reads it ({@code split_str_to_n_bytes}: digits then {@code M} or {@code G},
     * powers of 10).
     */
    static long parseGguf(String text) {
        if (text.length() > 1 && (text.endsWith("M") || text.endsWith("G"))) {
            try {
                long n = digits(text, 1);
                if (n > 0) {
                    return Math.multiplyExact(n, text.endsWith("M") ? 1_000_000L : 1_000_000_000L);
                }
            } catch (NumberFormatException | ArithmeticException e) {
                // fall through to the message naming every form
            }
            throw new IllegalArgumentException("--max-shard-size '" + text + "' is not a size: digits and a unit (5GB,"
                    + " 500MB, 2GiB, 512MiB; or 4G, 500M as gguf-split takes it), or bytes");
        }
        return parse(text);
    }

    private static long digits(String text, int unitLength) {
        String d = text.substring(0, text.length() - unitLength);
        if (d.isEmpty() || !d.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new NumberFormatException(d);
        }
        return Long.parseLong(d);
    }
}
