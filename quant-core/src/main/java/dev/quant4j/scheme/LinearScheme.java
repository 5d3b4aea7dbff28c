package dev.quant4j.scheme;

/**
 * Round-to-nearest linear quantization with {@code bits} in 2..8.
 *
 * @param bits bits per code, 2..8
 * @param symmetry how scale and zero-point are chosen
 * @param groupSize {@link #PER_TENSOR} (0): one scale for the tensor; {@link #PER_CHANNEL} (-1): one per row (output
 *     channel); {@code G > 0}: one per {@code G} consecutive columns of a row, where {@code G} divides the column count
 */
public record LinearScheme(int bits, Symmetry symmetry, int groupSize) implements QuantScheme {

    public static final int PER_TENSOR = 0;
    public static final int PER_CHANNEL = -1;
    public static final int MIN_BITS = 2;
    public static final int MAX_BITS = 8;

    public LinearScheme {
        if (bits < MIN_BITS || bits > MAX_BITS) {
            throw new IllegalArgumentException("bits must be in " + MIN_BITS + ".." + MAX_BITS + ", got " + bits);
        }
        if (symmetry == null) {
            throw new IllegalArgumentException("symmetry is null");
        }
        if (groupSize < PER_CHANNEL) {
            throw new IllegalArgumentException(
                    "group size must be -1 (per channel), 0 (per tensor) or positive, got " + groupSize);
        }
    }

    /** Asymmetric, per group of {@code groupSize} columns. */
    public static LinearScheme asym(int bits, int groupSize) {
        return new LinearScheme(bits, Symmetry.ASYM, groupSize);
    }

    /** GPTQ symmetric, per group of {@code groupSize} columns. */
    public static LinearScheme sym(int bits, int groupSize) {
        return new LinearScheme(bits, Symmetry.SYM, groupSize);
    }

    /** Signed symmetric (absmax), per group of {@code groupSize} columns. */
    public static LinearScheme signed(int bits, int groupSize) {
        return new LinearScheme(bits, Symmetry.SIGNED, groupSize);
    }

    @Override
    public String kind() {
        return "linear";
    }

    /** Largest code, {@code 2^bits - 1}. */
    public int maxq() {
        return (1 << bits) - 1;
    }

    /**
     * Columns per group for a tensor with {@code cols} columns: {@code cols} per channel, {@code groupSize} per group.
     * Per tensor also returns {@code cols}; see {@link #groupsPerRow(int)}.
     *
     * @throws IllegalArgumentException if a positive group size does not divide {@code cols}
     */
    public int columnsPerGroup(int cols) {
        if (groupSize > 0) {
            if (cols % groupSize != 0) {
                throw new IllegalArgumentException(
                        "group size " + groupSize + " does not divide the column count " + cols);
            }
            return groupSize;
        }
        return cols;
    }

    /** Groups (scales) per row: 1 per channel, {@code cols / groupSize} per group, and 1 per tensor (shared). */
    public int groupsPerRow(int cols) {
        return cols / columnsPerGroup(cols);
    }

    /** Number of scales stored for a {@code [rows, cols]} tensor. */
    public int scaleCount(int rows, int cols) {
        return groupSize == PER_TENSOR ? 1 : Math.multiplyExact(rows, groupsPerRow(cols));
    }

    /** Granularity as the CLI spells it: {@code per-tensor}, {@code per-channel} or {@code g128}. */
    public String granularity() {
        return switch (groupSize) {
            case PER_TENSOR -> "per-tensor";
            case PER_CHANNEL -> "per-channel";
            default -> "g" + groupSize;
        };
    }

    @Override
    public String toString() {
        return "linear " + bits + "-bit " + symmetry.id() + " " + granularity();
    }
}
