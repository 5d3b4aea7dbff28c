package dev.quant4j.ggml;

import dev.quant4j.kernel.GgmlBlockKernels;

/**
 * ggml's float storage types and the little-endian byte access the block types share: {@code f32}, {@code f16}
 * ({@code GGML_FP32_TO_FP16}, {@code GGML_FP16_TO_FP32}) and {@code bf16} ({@code GGML_FP32_TO_BF16}), as ggml's
 * {@code src/ggml-impl.h} defines them at commit {@code d99724f2b141fed9e1a9f402213506c081433465}.
 *
 * <p>ggml converts to FP16 with the bit manipulation of Maratyszcza's FP16 library: round to nearest even, overflow to
 * infinity, subnormals kept, and every NaN to the quiet NaN {@code 0x7E00} with the input's sign. The JDK's {@link
 * Float#floatToFloat16} rounds the same way; only the NaN payload differs, so NaN is handled here. To BF16 ggml rounds to
 * nearest even and makes a NaN quiet by setting bit 6 of the upper half ({@code (bits >> 16) | 64}).
 */
public final class GgmlFloats {

    private GgmlFloats() {}

    /** {@code GGML_FP32_TO_FP16}: float32 to FP16 bits, round to nearest even. */
    public static short fp32ToFp16(float f) {
        return GgmlBlockKernels.fp32ToFp16(f);
    }

    /** {@code GGML_FP16_TO_FP32}: exact. */
    public static float fp16ToFp32(short h) {
        return Float.float16ToFloat(h);
    }

    /** {@code GGML_FP32_TO_BF16}: float32 to BF16 bits, round to nearest even. */
    public static short fp32ToBf16(float s) {
        int i = Float.floatToRawIntBits(s);
        if ((i & 0x7fffffff) > 0x7f800000) { // nan
            return (short) ((i >>> 16) | 64); // force to quiet
        }
        return (short) ((i + (0x7fff + ((i >>> 16) & 1))) >>> 16);
    }

    /** {@code GGML_BF16_TO_FP32}: exact. */
    public static float bf16ToFp32(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }

    static void putShort(byte[] y, int off, short v) {
        y[off] = (byte) v;
        y[off + 1] = (byte) (v >> 8);
    }

    static short getShort(byte[] x, int off) {
        return (short) ((x[off] & 0xFF) | (x[off + 1] << 8));
    }

    static void putFp16(byte[] y, int off, float v) {
        putShort(y, off, fp32ToFp16(v));
    }

    static float getFp16(byte[] x, int off) {
        return fp16ToFp32(getShort(x, off));
    }

    /** {@code ggml_fp32_to_fp16_row}. */
    static void quantizeRowF16(float[] x, int xOff, byte[] y, int yOff, int k) {
        for (int i = 0; i < k; i++) {
            putShort(y, yOff + 2 * i, fp32ToFp16(x[xOff + i]));
        }
    }

    /** {@code ggml_fp32_to_bf16_row_ref}. */
    static void quantizeRowBf16(float[] x, int xOff, byte[] y, int yOff, int k) {
        for (int i = 0; i < k; i++) {
            putShort(y, yOff + 2 * i, fp32ToBf16(x[xOff + i]));
        }
    }

    static void quantizeRowF32(float[] x, int xOff, byte[] y, int yOff, int k) {
        for (int i = 0; i < k; i++) {
            int b = Float.floatToRawIntBits(x[xOff + i]);
            int o = yOff + 4 * i;
            y[o] = (byte) b;
            y[o + 1] = (byte) (b >> 8);
            y[o + 2] = (byte) (b >> 16);
            y[o + 3] = (byte) (b >> 24);
        }
    }

    static void dequantizeRowF16(byte[] x, int xOff, float[] y, int yOff, int k) {
        for (int i = 0; i < k; i++) {
            y[yOff + i] = fp16ToFp32(getShort(x, xOff + 2 * i));
        }
    }

    static void dequantizeRowBf16(byte[] x, int xOff, float[] y, int yOff, int k) {
        for (int i = 0; i < k; i++) {
            y[yOff + i] = bf16ToFp32(getShort(x, xOff + 2 * i));
        }
    }

    static void dequantizeRowF32(byte[] x, int xOff, float[] y, int yOff, int k) {
        for (int i = 0; i < k; i++) {
            int o = xOff + 4 * i;
            y[yOff + i] = Float.intBitsToFloat(
                    (x[o] & 0xFF) | (x[o + 1] & 0xFF) << 8 | (x[o + 2] & 0xFF) << 16 | (x[o + 3] & 0xFF) << 24);
        }
    }
}
