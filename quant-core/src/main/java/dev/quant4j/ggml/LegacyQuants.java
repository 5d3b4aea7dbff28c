package dev.quant4j.ggml;

import static dev.quant4j.ggml.GgmlFloats.getFp16;
import static dev.quant4j.ggml.GgmlFloats.putFp16;

/**
 * ggml's 32-value block types {@code q4_0}, {@code q4_1}, {@code q5_0}, {@code q5_1} and {@code q8_0}: the reference
 * quantizers {@code quantize_row_*_ref} and the dequantizers {@code dequantize_row_*} of ggml's
 * {@code src/ggml-quants.c} at commit {@code d99724f2b141fed9e1a9f402213506c081433465}, statement for statement and with
 * its variable names, so that the bytes are ggml's (checked against ggml's own output in {@code GgmlQuantsTest}).
 *
 * <p>Blocks ({@code src/ggml-common.h}; {@code d}, {@code m} FP16, little-endian):
 *
 * <pre>
 * q4_0  18 bytes: d, qs[16]            x = d * (q - 8);   element j in the low nibble of qs[j], j + 16 in the high
 * q4_1  20 bytes: d, m, qs[16]         x = d * q + m
 * q5_0  22 bytes: d, qh[4], qs[16]     x = d * (q - 16);  bit 4 of element j is bit j of the 32-bit qh
 * q5_1  24 bytes: d, m, qh[4], qs[16]  x = d * q + m
 * q8_0  34 bytes: d, qs[32] (int8)     x = d * q
 * </pre>
 *
 * <p>C semantics kept on purpose: float to int conversions truncate ({@code (int8_t)(x0 + 8.5f)}); {@code roundf}
 * rounds half away from zero; a zero block gets {@code d = max / -8 = -0.0}, stored as FP16 {@code 0x8000}.
 */
final class LegacyQuants {

    static final int QK4_0 = 32;
    static final int QK4_1 = 32;
    static final int QK5_0 = 32;
    static final int QK5_1 = 32;
    static final int QK8_0 = 32;

    private LegacyQuants() {}

    /** C's {@code roundf}: to nearest, halves away from zero. */
    static float roundf(float x) {
        return (float) Math.copySign(Math.floor(Math.abs((double) x) + 0.5), x);
    }

    static void quantize_row_q4_0_ref(float[] x, int xOff, byte[] y, int yOff, int k) {
        final int qk = QK4_0;
        final int nb = k / qk;
        for (int i = 0; i < nb; i++) {
            float amax = 0.0f; // absolute max
            float max = 0.0f;
            for (int j = 0; j < qk; j++) {
                final float v = x[xOff + i * qk + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            final float d = max / -8;
            final float id = d != 0 ? 1.0f / d : 0.0f;
            final int b = yOff + i * 18;
            putFp16(y, b, d);
            for (int j = 0; j < qk / 2; ++j) {
                final float x0 = x[xOff + i * qk + 0 + j] * id;
                final float x1 = x[xOff + i * qk + qk / 2 + j] * id;
                final int xi0 = Math.min(15, (byte) (int) (x0 + 8.5f));
                final int xi1 = Math.min(15, (byte) (int) (x1 + 8.5f));
                y[b + 2 + j] = (byte) (xi0 | xi1 << 4);
            }
        }
    }

    static void quantize_row_q4_1_ref(float[] x, int xOff, byte[] y, int yOff, int k) {
        final int qk = QK4_1;
        final int nb = k / qk;
        for (int i = 0; i < nb; i++) {
            float min = Float.MAX_VALUE;
            float max = -Float.MAX_VALUE;
            for (int j = 0; j < qk; j++) {
                final float v = x[xOff + i * qk + j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            final float d = (max - min) / ((1 << 4) - 1);
            final float id = d != 0 ? 1.0f / d : 0.0f;
            final int b = yOff + i * 20;
            putFp16(y, b, d);
            putFp16(y, b + 2, min);
            for (int j = 0; j < qk / 2; ++j) {
                final float x0 = (x[xOff + i * qk + 0 + j] - min) * id;
                final float x1 = (x[xOff + i * qk + qk / 2 + j] - min) * id;
                final int xi0 = Math.min(15, (byte) (int) (x0 + 0.5f));
                final int xi1 = Math.min(15, (byte) (int) (x1 + 0.5f));
                y[b + 4 + j] = (byte) (xi0 | xi1 << 4);
            }
        }
    }

    static void quantize_row_q5_0_ref(float[] x, int xOff, byte[] y, int yOff, int k) {
        final int qk = QK5_0;
        final int nb = k / qk;
        for (int i = 0; i < nb; i++) {
            float amax = 0.0f; // absolute max
            float max = 0.0f;
            for (int j = 0; j < qk; j++) {
                final float v = x[xOff + i * qk + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            final float d = max / -16;
            final float id = d != 0 ? 1.0f / d : 0.0f;
            final int b = yOff + i * 22;
            putFp16(y, b, d);
            int qh = 0;
            for (int j = 0; j < qk / 2; ++j) {
                final float x0 = x[xOff + i * qk + 0 + j] * id;
                final float x1 = x[xOff + i * qk + qk / 2 + j] * id;
                final int xi0 = Math.min(31, (byte) (int) (x0 + 16.5f)) & 0xFF;
                final int xi1 = Math.min(31, (byte) (int) (x1 + 16.5f)) & 0xFF;
                y[b + 6 + j] = (byte) ((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                // get the 5-th bit and store it in qh at the right position
                qh |= ((xi0 & 0x10) >>> 4) << (j + 0);
                qh |= ((xi1 & 0x10) >>> 4) << (j + qk / 2);
            }
            putInt(y, b + 2, qh);
        }
    }

    static void quantize_row_q5_1_ref(float[] x, int xOff, byte[] y, int yOff, int k) {
        final int qk = QK5_1;
        final int nb = k / qk;
        for (int i = 0; i < nb; i++) {
            float min = Float.MAX_VALUE;
            float max = -Float.MAX_VALUE;
            for (int j = 0; j < qk; j++) {
                final float v = x[xOff + i * qk + j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            final float d = (max - min) / ((1 << 5) - 1);
            final float id = d != 0 ? 1.0f / d : 0.0f;
            final int b = yOff + i * 24;
            putFp16(y, b, d);
            putFp16(y, b + 2, min);
            int qh = 0;
            for (int j = 0; j < qk / 2; ++j) {
                final float x0 = (x[xOff + i * qk + 0 + j] - min) * id;
                final float x1 = (x[xOff + i * qk + qk / 2 + j] - min) * id;
                final int xi0 = (int) (x0 + 0.5f) & 0xFF;
                final int xi1 = (int) (x1 + 0.5f) & 0xFF;
                y[b + 8 + j] = (byte) ((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                // get the 5-th bit and store it in qh at the right position
                qh |= ((xi0 & 0x10) >>> 4) << (j + 0);
                qh |= ((xi1 & 0x10) >>> 4) << (j + qk / 2);
            }
            putInt(y, b + 4, qh);
        }
    }

    static void quantize_row_q8_0_ref(float[] x, int xOff, byte[] y, int yOff, int k) {
        final int nb = k / QK8_0;
        for (int i = 0; i < nb; i++) {
            float amax = 0.0f; // absolute max
            for (int j = 0; j < QK8_0; j++) {
                final float v = x[xOff + i * QK8_0 + j];
                amax = Math.max(amax, Math.abs(v));
            }
            final float d = amax / ((1 << 7) - 1);
            final float id = d != 0 ? 1.0f / d : 0.0f;
            final int b = yOff + i * 34;
            putFp16(y, b, d);
            for (int j = 0; j < QK8_0; ++j) {
                final float x0 = x[xOff + i * QK8_0 + j] * id;
                y[b + 2 + j] = (byte) (int) roundf(x0);
            }
        }
    }

    static void dequantize_row_q4_0(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int qk = QK4_0;
        final int nb = k / qk;
        for (int i = 0; i < nb; i++) {
            final int b = xOff + i * 18;
            final float d = getFp16(x, b);
            for (int j = 0; j < qk / 2; ++j) {
                final int q = x[b + 2 + j] & 0xFF;
                final int x0 = (q & 0x0F) - 8;
                final int x1 = (q >>> 4) - 8;
                y[yOff + i * qk + j + 0] = x0 * d;
                y[yOff + i * qk + j + qk / 2] = x1 * d;
            }
        }
    }

    static void dequantize_row_q4_1(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int qk = QK4_1;
        final int nb = k / qk;
        for (int i = 0; i < nb; i++) {
            final int b = xOff + i * 20;
            final float d = getFp16(x, b);
            final float m = getFp16(x, b + 2);
            for (int j = 0; j < qk / 2; ++j) {
                final int q = x[b + 4 + j] & 0xFF;
                final int x0 = q & 0x0F;
                final int x1 = q >>> 4;
                y[yOff + i * qk + j + 0] = x0 * d + m;
                y[yOff + i * qk + j + qk / 2] = x1 * d + m;
            }
        }
    }

    static void dequantize_row_q5_0(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int qk = QK5_0;
        final int nb = k / qk;
        for (int i = 0; i < nb; i++) {
            final int b = xOff + i * 22;
            final float d = getFp16(x, b);
            final int qh = getInt(x, b + 2);
            for (int j = 0; j < qk / 2; ++j) {
                final int xh_0 = ((qh >>> (j + 0)) << 4) & 0x10;
                final int xh_1 = (qh >>> (j + 12)) & 0x10;
                final int q = x[b + 6 + j] & 0xFF;
                final int x0 = ((q & 0x0F) | xh_0) - 16;
                final int x1 = ((q >>> 4) | xh_1) - 16;
                y[yOff + i * qk + j + 0] = x0 * d;
                y[yOff + i * qk + j + qk / 2] = x1 * d;
            }
        }
    }

    static void dequantize_row_q5_1(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int qk = QK5_1;
        final int nb = k / qk;
        for (int i = 0; i < nb; i++) {
            final int b = xOff + i * 24;
            final float d = getFp16(x, b);
            final float m = getFp16(x, b + 2);
            final int qh = getInt(x, b + 4);
            for (int j = 0; j < qk / 2; ++j) {
                final int xh_0 = ((qh >>> (j + 0)) << 4) & 0x10;
                final int xh_1 = (qh >>> (j + 12)) & 0x10;
                final int q = x[b + 8 + j] & 0xFF;
                final int x0 = (q & 0x0F) | xh_0;
                final int x1 = (q >>> 4) | xh_1;
                y[yOff + i * qk + j + 0] = x0 * d + m;
                y[yOff + i * qk + j + qk / 2] = x1 * d + m;
            }
        }
    }

    static void dequantize_row_q8_0(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int qk = QK8_0;
        final int nb = k / qk;
        for (int i = 0; i < nb; i++) {
            final int b = xOff + i * 34;
            final float d = getFp16(x, b);
            for (int j = 0; j < qk; ++j) {
                y[yOff + i * qk + j] = x[b + 2 + j] * d;
            }
        }
    }

    private static void putInt(byte[] y, int off, int v) {
        y[off] = (byte) v;
        y[off + 1] = (byte) (v >> 8);
        y[off + 2] = (byte) (v >> 16);
        y[off + 3] = (byte) (v >> 24);
    }

    private static int getInt(byte[] x, int off) {
        return (x[off] & 0xFF) | (x[off + 1] & 0xFF) << 8 | (x[off + 2] & 0xFF) << 16 | (x[off + 3] & 0xFF) << 24;
    }
}
