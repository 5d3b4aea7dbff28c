package dev.quant4j.ggml;

import java.util.List;
import java.util.Locale;

/**
 * ggml's tensor types as a GGUF file names them: the numeric id, ggml's name, the number of values in a block and the
 * bytes a block takes ({@code type_traits} in ggml's {@code ggml.c}; ids from {@code enum ggml_type} in
 * {@code include/ggml.h}, ggml commit {@code d99724f2b141fed9e1a9f402213506c081433465}). A row of {@code ne0} values
 * takes {@code ne0 / blockSize * typeSize} bytes; {@code ne0} must be a multiple of the block size.
 *
 * <p>quant4j reads and writes every type in a GGUF file; it quantizes to and dequantizes from those with {@link
 * #quantizable()} true (the scalar references in {@link GgmlQuants}).
 */
public enum GgmlType {
    F32(0, "f32", 1, 4, true),
    F16(1, "f16", 1, 2, true),
    Q4_0(2, "q4_0", 32, 18, true),
    Q4_1(3, "q4_1", 32, 20, true),
    Q5_0(6, "q5_0", 32, 22, true),
    Q5_1(7, "q5_1", 32, 24, true),
    Q8_0(8, "q8_0", 32, 34, true),
    Q8_1(9, "q8_1", 32, 36, false),
    Q2_K(10, "q2_K", 256, 84, false),
    Q3_K(11, "q3_K", 256, 110, false),
    Q4_K(12, "q4_K", 256, 144, true),
    Q5_K(13, "q5_K", 256, 176, true),
    Q6_K(14, "q6_K", 256, 210, true),
    Q8_K(15, "q8_K", 256, 292, false),
    IQ2_XXS(16, "iq2_xxs", 256, 66, false),
    IQ2_XS(17, "iq2_xs", 256, 74, false),
    IQ3_XXS(18, "iq3_xxs", 256, 98, false),
    IQ1_S(19, "iq1_s", 256, 50, false),
    IQ4_NL(20, "iq4_nl", 32, 18, false),
    IQ3_S(21, "iq3_s", 256, 110, false),
    IQ2_S(22, "iq2_s", 256, 82, false),
    IQ4_XS(23, "iq4_xs", 256, 136, false),
    I8(24, "i8", 1, 1, false),
    I16(25, "i16", 1, 2, false),
    I32(26, "i32", 1, 4, false),
    I64(27, "i64", 1, 8, false),
    F64(28, "f64", 1, 8, false),
    IQ1_M(29, "iq1_m", 256, 56, false),
    BF16(30, "bf16", 1, 2, true),
    TQ1_0(34, "tq1_0", 256, 54, false),
    TQ2_0(35, "tq2_0", 256, 66, false),
    MXFP4(39, "mxfp4", 32, 17, false),
    NVFP4(40, "nvfp4", 64, 36, false),
    Q1_0(41, "q1_0", 128, 18, false),
    Q2_0(42, "q2_0", 64, 18, false);

    private static final GgmlType[] BY_ID = new GgmlType[64];

    static {
        for (GgmlType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    private final int id;
    private final String ggmlName;
    private final int blockSize;
    private final int typeSize;
    private final boolean quantizable;

    GgmlType(int id, String ggmlName, int blockSize, int typeSize, boolean quantizable) {
        this.id = id;
        this.ggmlName = ggmlName;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
        this.quantizable = quantizable;
    }

    /** The id stored in a GGUF tensor info. */
    public int id() {
        return id;
    }

    /** ggml's name ({@code ggml_type_name}): {@code q4_0}, {@code q4_K}, {@code bf16}, ... */
    public String ggmlName() {
        return ggmlName;
    }

    /** Values per block (1 for the plain types). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block. */
    public int typeSize() {
        return typeSize;
    }

    /** Whether quant4j can quantize to and dequantize from this type. */
    public boolean quantizable() {
        return quantizable;
    }

    /** Bytes of a row of {@code ne0} values; {@code ne0} must be a multiple of {@link #blockSize()}. */
    public long rowSize(long ne0) {
        if (ne0 % blockSize != 0) {
            throw new IllegalArgumentException(
                    "a row of " + ne0 + " values is not a multiple of the " + ggmlName + " block size " + blockSize);
        }
        return Math.multiplyExact(ne0 / blockSize, (long) typeSize);
    }

    /** The type with GGUF id {@code id}, or null when ggml defines none (removed or unknown ids). */
    public static GgmlType byId(long id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[(int) id] : null;
    }

    /**
     * The type named {@code name} as ggml or the {@code quant} command spell it, case-insensitively ({@code q4_k} and
     * {@code Q4_K} both give {@link #Q4_K}).
     *
     * @throws IllegalArgumentException naming the quantizable types when there is none
     */
    public static GgmlType byName(String name) {
        for (GgmlType t : values()) {
            if (t.ggmlName.equalsIgnoreCase(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException(
                "unknown ggml type '" + name + "'; quant4j quantizes to " + quantizableNames());
    }

    /** The types quant4j quantizes to, the block types first, smallest blocks and fewest bits first. */
    public static List<GgmlType> quantizableTypes() {
        return List.of(Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16, F32);
    }

    /** The quantizable types' names, lower case, in the order of {@link #quantizableTypes()}, joined by {@code |}. */
    public static String quantizableNames() {
        StringBuilder sb = new StringBuilder();
        for (GgmlType t : quantizableTypes()) {
            sb.append(sb.isEmpty() ? "" : "|").append(t.ggmlName.toLowerCase(Locale.ROOT));
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return ggmlName;
    }
}
