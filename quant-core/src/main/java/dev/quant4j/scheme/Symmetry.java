package dev.quant4j.scheme;

/**
 * The linear forms. All store unsigned codes {@code q} in {@code [0, 2^bits - 1]} with a per-group scale
 * {@code S} and integer zero-point {@code Z}, and dequantize as {@code x^ = S * (q - Z)}; they differ in how {@code S}
 * and {@code Z} are chosen (see {@link dev.quant4j.linear.LinearParams}).
 */
public enum Symmetry {
    /**
     * GPTQ's asymmetric form ({@code quant.py}, {@code sym=False}): range {@code [min(xmin, 0), max(xmax, 0)]}, {@code
     * S = (xmax - xmin) / maxq}, {@code Z = round(-xmin / S)}.
     */
    ASYM,
    /**
     * GPTQ's symmetric form ({@code sym=True}): {@code xmax = max(|xmin|, xmax)}, {@code xmin = -xmax} only where
     * {@code xmin < 0}, {@code Z = (maxq + 1) / 2}. A group without negative values keeps {@code xmin = 0}, so only
     * the codes above {@code Z} are used: this reproduces the reference, and GPTQ checkpoints depend on it.
     */
    SYM,
    /**
     * Signed symmetric ("absmax") form: {@code S = max|x| / (2^(b-1) - 1)}, {@code q = round(x / S)} in {@code
     * [-(2^(b-1) - 1), 2^(b-1) - 1]}, stored offset by {@code Z = 2^(b-1)}. This is what int8 users and
     * llama.cpp-style formats expect.
     */
    SIGNED,
    /**
     * llm-awq's asymmetric form ({@code pseudo_quantize_tensor} with {@code zero_point=True}), used by AWQ: {@code S =
     * max(max - min, 1e-5) / maxq}, {@code Z = clamp(-round(min / S), 0, maxq)}. Unlike {@link #ASYM} the range is not
     * widened to contain 0, so a group whose values are all positive gets {@code Z = 0} and codes for {@code [0, max -
     * min]} only (its largest values are clamped): this reproduces the reference.
     */
    MINMAX;

    /** Lower-case name used on the command line and in file metadata. */
    public String id() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Parses {@link #id()}. */
    public static Symmetry fromId(String id) {
        for (Symmetry s : values()) {
            if (s.id().equals(id)) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown symmetry '" + id + "' (expected asym, sym, signed or minmax)");
    }
}
