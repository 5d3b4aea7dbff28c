package dev.quant4j.kernel;

/**
 * ggml's block types ({@code src/ggml-quants.c} of ggml at commit {@code d99724f2b141fed9e1a9f402213506c081433465}):
 * the reference quantizers {@code quantize_row_*_ref} of the 32-value types, of q4_K and of q5_K, the dequantizers
 * {@code dequantize_row_*} of the 32-value types and of q4_K, q5_K and q6_K, and q6_K's scale search. Every
 * implementation gives the bytes and the float bits of the scalar reference ({@code ScalarGgmlBlockKernels} and
 * {@code ScalarGgmlKQuants}, which read like ggml's C), for every input, NaN and infinities included (the K-quants'
 * quantizers: for finite values).
 *
 * <p>A row is {@code k} values, a multiple of the block size (32, or 256 for the K-quants), from {@code x[xOff]} to
 * {@code y[yOff]}; blocks are stored one after the other ({@code dev.quant4j.ggml.GgmlType} gives their sizes).
 * Arguments are trusted: {@code dev.quant4j.ggml.GgmlQuants} checks them.
 */
public interface GgmlBlockKernels {

    /** Short name for logs and benchmarks: {@code scalar} or {@code vector-<bits>}. */
    String name();

    /** {@code quantize_row_q4_0_ref}: 18-byte blocks, {@code d = max / -8} of the value largest in magnitude. */
    void quantizeQ4_0(float[] x, int xOff, byte[] y, int yOff, int k);

    /** {@code quantize_row_q4_1_ref}: 20-byte blocks, {@code d = (max - min) / 15} and {@code m = min}. */
    void quantizeQ4_1(float[] x, int xOff, byte[] y, int yOff, int k);

    /** {@code quantize_row_q5_0_ref}: 22-byte blocks, {@code d = max / -16}. */
    void quantizeQ5_0(float[] x, int xOff, byte[] y, int yOff, int k);

    /** {@code quantize_row_q5_1_ref}: 24-byte blocks, {@code d = (max - min) / 31} and {@code m = min}. */
    void quantizeQ5_1(float[] x, int xOff, byte[] y, int yOff, int k);

    /** {@code quantize_row_q8_0_ref}: 34-byte blocks, {@code d = amax / 127}, codes {@code roundf(x / d)}. */
    void quantizeQ8_0(float[] x, int xOff, byte[] y, int yOff, int k);

    /**
     * {@code quantize_row_q4_K_ref}: 144-byte super-blocks of 256 values, each sub-block of 32 with the scale and
     * minimum of {@code make_qkx2_quants(32, 15, ..., -1, 0.1, 20, false)}. Values finite.
     */
    void quantizeQ4_K(float[] x, int xOff, byte[] y, int yOff, int k);

    /**
     * {@code quantize_row_q5_K_ref}: 176-byte super-blocks of 256 values, {@code make_qkx2_quants(32, 31, ..., -0.5,
     * 0.1, 15, false)} per sub-block of 32. Values finite.
     */
    void quantizeQ5_K(float[] x, int xOff, byte[] y, int yOff, int k);

    /** {@code dequantize_row_q4_0}. */
    void dequantizeQ4_0(byte[] x, int xOff, float[] y, int yOff, int k);

    /** {@code dequantize_row_q4_1}. */
    void dequantizeQ4_1(byte[] x, int xOff, float[] y, int yOff, int k);

    /** {@code dequantize_row_q5_0}. */
    void dequantizeQ5_0(byte[] x, int xOff, float[] y, int yOff, int k);

    /** {@code dequantize_row_q5_1}. */
    void dequantizeQ5_1(byte[] x, int xOff, float[] y, int yOff, int k);

    /** {@code dequantize_row_q8_0}. */
    void dequantizeQ8_0(byte[] x, int xOff, float[] y, int yOff, int k);

    /** {@code dequantize_row_q4_K}: 144-byte super-blocks of 256 values. */
    void dequantizeQ4_K(byte[] x, int xOff, float[] y, int yOff, int k);

    /** {@code dequantize_row_q5_K}: 176-byte super-blocks of 256 values. */
    void dequantizeQ5_K(byte[] x, int xOff, float[] y, int yOff, int k);

    /** {@code dequantize_row_q6_K}: 210-byte super-blocks of 256 values. */
    void dequantizeQ6_K(byte[] x, int xOff, float[] y, int yOff, int k);

    /**
     * The scale search of q6_K: {@code quantize_row_q6_K_ref}'s {@code make_qx_quants(16, 32, x + 16 * ib, L + 16 *
     * ib, 1, NULL)} for each of the 16 sub-blocks {@code ib} of the super-block at {@code x[xOff]}: codes {@code l +
     * 32} (0 in an all-zero sub-block) to {@code L[lOff + 16 * ib + i]}, each sub-block's scale to {@code scales[sOff +
     * ib]}. Values finite.
     */
    void makeQxQuantsQ6_K(float[] x, int xOff, byte[] L, int lOff, float[] scales, int sOff);

    /**
     * ggml's {@code nearest_int}: round to nearest, ties to even, by adding {@code 1.5 * 2^23} and reading the
     * mantissa; valid for {@code |fval| <= 4194303}.
     */
    static int nearestInt(float fval) {
        float val = fval + 12582912.f;
        int i = Float.floatToRawIntBits(val);
        return (i & 0x007fffff) - 0x00400000;
    }

    /**
     * {@code get_scale_min_k4} of q4_K and q5_K: the 6-bit scale and minimum of sub-block {@code j} (0..7) from the
     * 12 bytes at {@code q[qOff]}, as {@code sc | m << 8}.
     */
    static int scaleMinK4(int j, byte[] q, int qOff) {
        int d;
        int m;
        if (j < 4) {
            d = q[qOff + j] & 63;
            m = q[qOff + j + 4] & 63;
        } else {
            d = (q[qOff + j + 4] & 0xF) | (((q[qOff + j - 4] & 0xFF) >>> 6) << 4);
            m = ((q[qOff + j + 4] & 0xFF) >>> 4) | (((q[qOff + j] & 0xFF) >>> 6) << 4);
        }
        return d | m << 8;
    }

    /**
     * {@code GGML_FP32_TO_FP16}: round to nearest even, overflow to infinity, subnormals kept, and every NaN to the
     * quiet NaN {@code 0x7E00} with the input's sign (where the JDK's {@link Float#floatToFloat16} keeps the payload).
     */
    static short fp32ToFp16(float f) {
        if (Float.isNaN(f)) {
            return (short) (((Float.floatToRawIntBits(f) >>> 16) & 0x8000) | 0x7E00);
        }
        return Float.floatToFloat16(f);
    }
}
