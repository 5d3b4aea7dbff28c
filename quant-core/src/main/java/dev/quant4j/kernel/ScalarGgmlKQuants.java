package dev.quant4j.kernel;

import static dev.quant4j.kernel.ScalarGgmlBlockKernels.getFp16;

import java.util.Arrays;

/**
 * The reference quantizers of q4_K and q5_K, {@code quantize_row_q4_K_ref} and {@code quantize_row_q5_K_ref} with their
 * scale search {@code make_qkx2_quants}, of ggml's {@code src/ggml-quants.c} at commit {@code
 * d99724f2b141fed9e1a9f402213506c081433465}, statement for statement and with its variable names; the scalar {@link
 * GgmlBlockKernels#quantizeQ4_K} and {@link GgmlBlockKernels#quantizeQ5_K} ({@code GgmlQuantsTest} and {@code
 * GgmlBlockKernelsTest} check the bytes against ggml's files).
 *
 * <pre>
 * q4_K 144 bytes: d, dmin, scales[12], qs[128]   8 sub-blocks of 32: x = d*sc*q - dmin*m, 6-bit sc and m packed
 *                                                by get_scale_min_k4; 64 values per 32 bytes of qs (low, high nibble)
 * q5_K 176 bytes: d, dmin, scales[12], qh[32], qs[128]   as q4_K with a fifth bit in qh
 * </pre>
 *
 * <p>Where a sub-block's scale rounds to zero, ggml keeps the codes the scale search chose ({@code if (!d)
 * continue;}); so does this class.
 */
final class ScalarGgmlKQuants {

    static final int QK_K = 256;
    static final int K_SCALE_SIZE = 12;

    private ScalarGgmlKQuants() {}

    /**
     * {@code make_qkx2_quants}: codes {@code L} in {@code [0, nmax]}, returns the scale and stores the negated minimum
     * in {@code the_min[0]}.
     */
    static float make_qkx2_quants(
            int n,
            int nmax,
            float[] x,
            int xOff,
            float[] weights,
            byte[] L,
            int lOff,
            float[] the_min,
            byte[] Laux,
            float rmin,
            float rdelta,
            int nstep,
            boolean use_mad) {
        float min = x[xOff];
        float max = x[xOff];
        float sum_w = weights[0];
        float sum_x = sum_w * x[xOff];
        for (int i = 1; i < n; ++i) {
            if (x[xOff + i] < min) min = x[xOff + i];
            if (x[xOff + i] > max) max = x[xOff + i];
            float w = weights[i];
            sum_w += w;
            sum_x += w * x[xOff + i];
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; ++i) L[lOff + i] = 0;
            the_min[0] = -min;
            return 0.f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float best_error = 0;
        for (int i = 0; i < n; ++i) {
            int l = GgmlBlockKernels.nearestInt(iscale * (x[xOff + i] - min));
            L[lOff + i] = (byte) Math.max(0, Math.min(nmax, l));
            float diff = scale * (L[lOff + i] & 0xFF) + min - x[xOff + i];
            diff = use_mad ? Math.abs(diff) : diff * diff;
            float w = weights[i];
            best_error += w * diff;
        }
        if (nstep < 1) {
            the_min[0] = -min;
            return scale;
        }
        for (int is = 0; is <= nstep; ++is) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sum_l = 0, sum_l2 = 0, sum_xl = 0;
            for (int i = 0; i < n; ++i) {
                int l = GgmlBlockKernels.nearestInt(iscale * (x[xOff + i] - min));
                l = Math.max(0, Math.min(nmax, l));
                Laux[i] = (byte) l;
                float w = weights[i];
                sum_l += w * l;
                sum_l2 += w * l * l;
                sum_xl += w * l * x[xOff + i];
            }
            float D = sum_w * sum_l2 - sum_l * sum_l;
            if (D > 0) {
                float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
                float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
                if (this_min > 0) {
                    this_min = 0;
                    this_scale = sum_xl / sum_l2;
                }
                float cur_error = 0;
                for (int i = 0; i < n; ++i) {
                    float diff = this_scale * (Laux[i] & 0xFF) + this_min - x[xOff + i];
                    diff = use_mad ? Math.abs(diff) : diff * diff;
                    float w = weights[i];
                    cur_error += w * diff;
                }
                if (cur_error < best_error) {
                    for (int i = 0; i < n; ++i) {
                        L[lOff + i] = Laux[i];
                    }
                    best_error = cur_error;
                    scale = this_scale;
                    min = this_min;
                }
            }
        }
        the_min[0] = -min;
        return scale;
    }

    /**
     * The scale search and 6-bit scale packing q4_K and q5_K share: fills {@code L} with the super-block's codes and
     * the block head at {@code y[b]} ({@code d}, {@code dmin}, {@code scales[12]}).
     */
    private static void quantizeScalesMins(
            float[] x, int xOff, byte[] y, int b, byte[] L, int nmax, float rmin, int nstep) {
        byte[] Laux = new byte[32];
        float[] weights = new float[32];
        float[] mins = new float[QK_K / 32];
        float[] scales = new float[QK_K / 32];
        float[] the_min = new float[1];
        final int sc = b + 4; // y[i].scales
        float max_scale = 0; // as we are deducting the min, scales are always positive
        float max_min = 0;
        for (int j = 0; j < QK_K / 32; ++j) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += x[xOff + 32 * j + l] * x[xOff + 32 * j + l];
            float av_x = (float) Math.sqrt(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + Math.abs(x[xOff + 32 * j + l]);
            scales[j] = make_qkx2_quants(
                    32, nmax, x, xOff + 32 * j, weights, L, 32 * j, the_min, Laux, rmin, 0.1f, nstep, false);
            mins[j] = the_min[0];
            float scale = scales[j];
            if (scale > max_scale) {
                max_scale = scale;
            }
            float min = mins[j];
            if (min > max_min) {
                max_min = min;
            }
        }
        packScalesMins(scales, 0, mins, 0, max_scale, max_min, y, b);

        for (int j = 0; j < QK_K / 32; ++j) {
            int scm = GgmlBlockKernels.scaleMinK4(j, y, sc);
            final float d = getFp16(y, b) * (scm & 0xFF);
            if (d == 0) continue;
            final float dm = getFp16(y, b + 2) * (scm >>> 8);
            for (int ii = 0; ii < 32; ++ii) {
                int l = GgmlBlockKernels.nearestInt((x[xOff + 32 * j + ii] + dm) / d);
                l = Math.max(0, Math.min(nmax, l));
                L[32 * j + ii] = (byte) l;
            }
        }
    }

    /**
     * The 6-bit scales and minimums of the 8 sub-blocks ({@code scales[sOff + j]}, {@code mins[mOff + j]}) quantized
     * against their largest, packed into {@code y[i].scales}, and {@code y[i].d = max_scale / 63}, {@code y[i].dmin =
     * max_min / 63}: the block head at {@code y[b]}.
     */
    static void packScalesMins(
            float[] scales, int sOff, float[] mins, int mOff, float max_scale, float max_min, byte[] y, int b) {
        final int sc = b + 4; // y[i].scales
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < QK_K / 32; ++j) {
            int ls = GgmlBlockKernels.nearestInt(inv_scale * scales[sOff + j]) & 0xFF;
            int lm = GgmlBlockKernels.nearestInt(inv_min * mins[mOff + j]) & 0xFF;
            ls = Math.min(63, ls);
            lm = Math.min(63, lm);
            if (j < 4) {
                y[sc + j] = (byte) ls;
                y[sc + j + 4] = (byte) lm;
            } else {
                y[sc + j + 4] = (byte) ((ls & 0xF) | ((lm & 0xF) << 4));
                y[sc + j - 4] |= (byte) ((ls >>> 4) << 6);
                y[sc + j - 0] |= (byte) ((lm >>> 4) << 6);
            }
        }
        putFp16(y, b, max_scale / 63.f);
        putFp16(y, b + 2, max_min / 63.f);
    }

    static void quantize_row_q4_K_ref(float[] x, int xOff, byte[] y, int yOff, int k) {
        final int nb = k / QK_K;
        byte[] L = new byte[QK_K];
        for (int i = 0; i < nb; i++) {
            final int b = yOff + i * 144;
            quantizeScalesMins(x, xOff, y, b, L, 15, -1.f, 20);
            int q = b + 4 + K_SCALE_SIZE;
            for (int j = 0; j < QK_K; j += 64) {
                for (int l = 0; l < 32; ++l) y[q + l] = (byte) (L[j + l] | (L[j + l + 32] << 4));
                q += 32;
            }
            xOff += QK_K;
        }
    }

    static void quantize_row_q5_K_ref(float[] x, int xOff, byte[] y, int yOff, int k) {
        final int nb = k / QK_K;
        byte[] L = new byte[QK_K];
        for (int i = 0; i < nb; i++) {
            final int b = yOff + i * 176;
            quantizeScalesMins(x, xOff, y, b, L, 31, -0.5f, 15);
            final int qh = b + 4 + K_SCALE_SIZE;
            int ql = qh + QK_K / 8;
            Arrays.fill(y, qh, qh + QK_K / 8, (byte) 0);
            int m1 = 1, m2 = 2;
            for (int n = 0; n < QK_K; n += 64) {
                for (int j = 0; j < 32; ++j) {
                    int l1 = L[n + j];
                    if (l1 > 15) {
                        l1 -= 16;
                        y[qh + j] |= (byte) m1;
                    }
                    int l2 = L[n + j + 32];
                    if (l2 > 15) {
                        l2 -= 16;
                        y[qh + j] |= (byte) m2;
                    }
                    y[ql + j] = (byte) (l1 | (l2 << 4));
                }
                m1 <<= 2;
                m2 <<= 2;
                ql += 32;
            }
            xOff += QK_K;
        }
    }

    private static void putFp16(byte[] y, int off, float v) {
        short h = GgmlBlockKernels.fp32ToFp16(v);
        y[off] = (byte) h;
        y[off + 1] = (byte) (h >> 8);
    }
}
