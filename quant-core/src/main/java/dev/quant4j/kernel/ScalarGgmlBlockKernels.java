package dev.quant4j.kernel;

/**
 * The reference {@link GgmlBlockKernels}, and the fallback: ggml's {@code quantize_row_q*_ref} and {@code
 * dequantize_row_q*} of {@code src/ggml-quants.c} at commit {@code d99724f2b141fed9e1a9f402213506c081433465}, statement
 * for statement and with its variable names (checked against files ggml wrote in {@code GgmlQuantsTest} and {@code
 * GgmlBlockKernelsTest}). The vector kernels call these loops for the blocks they leave to scalar code.
 *
 * <p>Blocks ({@code src/ggml-common.h}; {@code d}, {@code m} FP16, little-endian):
 *
 * <pre>
 * q4_0  18 bytes: d, qs[16]            x = d * (q - 8);   element j in the low nibble of qs[j], j + 16 in the high
 * q4_1  20 bytes: d, m, qs[16]         x = d * q + m
 * q5_0  22 bytes: d, qh[4], qs[16]     x = d * (q - 16);  bit 4 of element j is bit j of the 32-bit qh
 * q5_1  24 bytes: d, m, qh[4], qs[16]  x = d * q + m
 * q8_0  34 bytes: d, qs[32] (int8)     x = d * q
 * q4_K 144 bytes: d, dmin, scales[12], qs[128]   8 sub-blocks of 32: x = d*sc*q - dmin*m, 6-bit sc and m packed
 *                                                by get_scale_min_k4; 64 values per 32 bytes of qs (low, high nibble)
 * q5_K 176 bytes: d, dmin, scales[12], qh[32], qs[128]   as q4_K with a fifth bit in qh
 * q6_K 210 bytes: ql[128], qh[64], scales[16] (int8), d  16 sub-blocks of 16: x = d*sc*(q - 32)
 * </pre>
 *
 * <p>{@code make_qx_quants} is the scale search of q6_K (ggml's {@code quantize_row_q6_K_ref}, whose other steps are
 * in {@code dev.quant4j.ggml.KQuants}).
 *
 * <p>C semantics kept on purpose: float to int conversions truncate ({@code (int8_t)(x0 + 8.5f)}); {@code roundf}
 * rounds half away from zero; a zero block gets {@code d = max / -8 = -0.0}, stored as FP16 {@code 0x8000}. NaN is
 * never the largest magnitude nor an extreme of q4_0..q5_1 (ggml's comparisons are false for it); q8_0's {@code
 * MAX(amax, fabsf(v))} keeps it.
 */
final class ScalarGgmlBlockKernels implements GgmlBlockKernels {

    static final int QK4_0 = 32;
    static final int QK4_1 = 32;
    static final int QK5_0 = 32;
    static final int QK5_1 = 32;
    static final int QK8_0 = 32;
    static final int QK_K = 256;
    static final int K_SCALE_SIZE = 12;

    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public void quantizeQ4_0(float[] x, int xOff, byte[] y, int yOff, int k) {
        quantize_row_q4_0_ref(x, xOff, y, yOff, k);
    }

    @Override
    public void quantizeQ4_1(float[] x, int xOff, byte[] y, int yOff, int k) {
        quantize_row_q4_1_ref(x, xOff, y, yOff, k);
    }

    @Override
    public void quantizeQ5_0(float[] x, int xOff, byte[] y, int yOff, int k) {
        quantize_row_q5_0_ref(x, xOff, y, yOff, k);
    }

    @Override
    public void quantizeQ5_1(float[] x, int xOff, byte[] y, int yOff, int k) {
        quantize_row_q5_1_ref(x, xOff, y, yOff, k);
    }

    @Override
    public void quantizeQ8_0(float[] x, int xOff, byte[] y, int yOff, int k) {
        quantize_row_q8_0_ref(x, xOff, y, yOff, k);
    }

    @Override
    public void quantizeQ4_K(float[] x, int xOff, byte[] y, int yOff, int k) {
        ScalarGgmlKQuants.quantize_row_q4_K_ref(x, xOff, y, yOff, k);
    }

    @Override
    public void quantizeQ5_K(float[] x, int xOff, byte[] y, int yOff, int k) {
        ScalarGgmlKQuants.quantize_row_q5_K_ref(x, xOff, y, yOff, k);
    }

    @Override
    public void dequantizeQ4_0(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantize_row_q4_0(x, xOff, y, yOff, k);
    }

    @Override
    public void dequantizeQ4_1(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantize_row_q4_1(x, xOff, y, yOff, k);
    }

    @Override
    public void dequantizeQ5_0(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantize_row_q5_0(x, xOff, y, yOff, k);
    }

    @Override
    public void dequantizeQ5_1(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantize_row_q5_1(x, xOff, y, yOff, k);
    }

    @Override
    public void dequantizeQ8_0(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantize_row_q8_0(x, xOff, y, yOff, k);
    }

    @Override
    public void dequantizeQ4_K(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantize_row_q4_K(x, xOff, y, yOff, k);
    }

    @Override
    public void dequantizeQ5_K(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantize_row_q5_K(x, xOff, y, yOff, k);
    }

    @Override
    public void dequantizeQ6_K(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantize_row_q6_K(x, xOff, y, yOff, k);
    }

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

    static void dequantize_row_q4_K(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int nb = k / QK_K;
        for (int i = 0; i < nb; i++) {
            final int b = xOff + i * 144;
            int q = b + 4 + K_SCALE_SIZE;
            final float d = getFp16(x, b);
            final float min = getFp16(x, b + 2);
            int is = 0;
            for (int j = 0; j < QK_K; j += 64) {
                int scm = GgmlBlockKernels.scaleMinK4(is + 0, x, b + 4);
                final float d1 = d * (scm & 0xFF);
                final float m1 = min * (scm >>> 8);
                scm = GgmlBlockKernels.scaleMinK4(is + 1, x, b + 4);
                final float d2 = d * (scm & 0xFF);
                final float m2 = min * (scm >>> 8);
                for (int l = 0; l < 32; ++l) y[yOff++] = d1 * (x[q + l] & 0xF) - m1;
                for (int l = 0; l < 32; ++l) y[yOff++] = d2 * ((x[q + l] & 0xFF) >>> 4) - m2;
                q += 32;
                is += 2;
            }
        }
    }

    static void dequantize_row_q5_K(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int nb = k / QK_K;
        for (int i = 0; i < nb; i++) {
            final int b = xOff + i * 176;
            final int qh = b + 4 + K_SCALE_SIZE;
            int ql = qh + QK_K / 8;
            final float d = getFp16(x, b);
            final float min = getFp16(x, b + 2);
            int is = 0;
            int u1 = 1, u2 = 2;
            for (int j = 0; j < QK_K; j += 64) {
                int scm = GgmlBlockKernels.scaleMinK4(is + 0, x, b + 4);
                final float d1 = d * (scm & 0xFF);
                final float m1 = min * (scm >>> 8);
                scm = GgmlBlockKernels.scaleMinK4(is + 1, x, b + 4);
                final float d2 = d * (scm & 0xFF);
                final float m2 = min * (scm >>> 8);
                for (int l = 0; l < 32; ++l)
                    y[yOff++] = d1 * ((x[ql + l] & 0xF) + ((x[qh + l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; ++l)
                    y[yOff++] = d2 * (((x[ql + l] & 0xFF) >>> 4) + ((x[qh + l] & u2) != 0 ? 16 : 0)) - m2;
                ql += 32;
                is += 2;
                u1 <<= 2;
                u2 <<= 2;
            }
        }
    }

    static void dequantize_row_q6_K(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int nb = k / QK_K;
        for (int i = 0; i < nb; i++) {
            final int b = xOff + i * 210;
            final float d = getFp16(x, b + 208);
            int ql = b;
            int qh = b + 128;
            int sc = b + 192;
            for (int n = 0; n < QK_K; n += 128) {
                for (int l = 0; l < 32; ++l) {
                    int is = l / 16;
                    final int h = x[qh + l] & 0xFF;
                    final int q1 = (byte) ((x[ql + l + 0] & 0xF) | (((h >>> 0) & 3) << 4)) - 32;
                    final int q2 = (byte) ((x[ql + l + 32] & 0xF) | (((h >>> 2) & 3) << 4)) - 32;
                    final int q3 = (byte) (((x[ql + l + 0] & 0xFF) >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
                    final int q4 = (byte) (((x[ql + l + 32] & 0xFF) >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
                    y[yOff + l + 0] = d * x[sc + is + 0] * q1;
                    y[yOff + l + 32] = d * x[sc + is + 2] * q2;
                    y[yOff + l + 64] = d * x[sc + is + 4] * q3;
                    y[yOff + l + 96] = d * x[sc + is + 6] * q4;
                }
                yOff += 128;
                ql += 64;
                qh += 32;
                sc += 8;
            }
        }
    }

    @Override
    public void makeQxQuantsQ6_K(float[] x, int xOff, byte[] L, int lOff, float[] scales, int sOff) {
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            scales[sOff + ib] = make_qx_quants(16, 32, x, xOff + 16 * ib, L, lOff + 16 * ib, 1);
        }
    }

    /** {@code GROUP_MAX_EPS} of {@code ggml-quants.c}. */
    static final float GROUP_MAX_EPS = 1e-15f;

    /** {@code make_qx_quants} without importance weights ({@code qw == NULL}); {@code L} gets {@code l + nmax}. */
    static float make_qx_quants(int n, int nmax, float[] x, int xOff, byte[] L, int lOff, int rmse_type) {
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; ++i) {
            float ax = Math.abs(x[xOff + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xOff + i];
            }
        }
        if (amax < GROUP_MAX_EPS) { // all zero
            for (int i = 0; i < n; ++i) {
                L[lOff + i] = 0;
            }
            return 0.f;
        }
        float iscale = -nmax / max;
        if (rmse_type == 0) {
            for (int i = 0; i < n; ++i) {
                int l = GgmlBlockKernels.nearestInt(iscale * x[xOff + i]);
                L[lOff + i] = (byte) (nmax + Math.max(-nmax, Math.min(nmax - 1, l)));
            }
            return 1 / iscale;
        }
        boolean return_early = false;
        if (rmse_type < 0) {
            rmse_type = -rmse_type;
            return_early = true;
        }
        float sumlx = 0;
        float suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = GgmlBlockKernels.nearestInt(iscale * x[xOff + i]);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            L[lOff + i] = (byte) (l + nmax);
            float w = weight(x[xOff + i], rmse_type);
            sumlx += w * x[xOff + i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; ++is) {
            if (is == 0) {
                continue;
            }
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; ++i) {
                int l = GgmlBlockKernels.nearestInt(iscale * x[xOff + i]);
                l = Math.max(-nmax, Math.min(nmax - 1, l));
                float w = weight(x[xOff + i], rmse_type);
                sumlx += w * x[xOff + i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; ++i) {
                    int l = GgmlBlockKernels.nearestInt(iscale * x[xOff + i]);
                    L[lOff + i] = (byte) (nmax + Math.max(-nmax, Math.min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    private static float weight(float x, int rmse_type) {
        return rmse_type == 1
                ? x * x
                : rmse_type == 2 ? 1 : rmse_type == 3 ? Math.abs(x) : (float) Math.sqrt(Math.abs(x));
    }

    private static void putFp16(byte[] y, int off, float v) {
        short h = GgmlBlockKernels.fp32ToFp16(v);
        y[off] = (byte) h;
        y[off + 1] = (byte) (h >> 8);
    }

    static float getFp16(byte[] x, int off) {
        return Float.float16ToFloat((short) ((x[off] & 0xFF) | (x[off + 1] << 8)));
    }

    static void putInt(byte[] y, int off, int v) {
        y[off] = (byte) v;
        y[off + 1] = (byte) (v >> 8);
        y[off + 2] = (byte) (v >> 16);
        y[off + 3] = (byte) (v >> 24);
    }

    static int getInt(byte[] x, int off) {
        return (x[off] & 0xFF) | (x[off + 1] & 0xFF) << 8 | (x[off + 2] & 0xFF) << 16 | (x[off + 3] & 0xFF) << 24;
    }
}
