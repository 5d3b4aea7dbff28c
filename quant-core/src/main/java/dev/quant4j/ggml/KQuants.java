package dev.quant4j.ggml;

import static dev.quant4j.ggml.GgmlFloats.getFp16;
import static dev.quant4j.ggml.GgmlFloats.putFp16;

import dev.quant4j.kernel.GgmlBlockKernels;
import dev.quant4j.kernel.Kernels;
import java.util.Arrays;

/**
 * ggml's K-quants {@code q4_K}, {@code q5_K} and {@code q6_K}: super-blocks of {@code QK_K = 256} values whose
 * sub-block scales are themselves quantized. The reference quantizers {@code quantize_row_q*_K_ref} with their scale
 * searches ({@code make_qkx2_quants}, {@code make_qx_quants}, {@code nearest_int}) of ggml's {@code
 * src/ggml-quants.c} at commit
 * {@code d99724f2b141fed9e1a9f402213506c081433465}, statement for statement and with its variable names, so that the
 * bytes are ggml's ({@code GgmlQuantsTest} checks them against ggml's output). The dequantizers are kernels ({@link
 * GgmlBlockKernels}).
 *
 * <p>Blocks ({@code src/ggml-common.h}; FP16 little-endian):
 *
 * <pre>
 * q4_K 144 bytes: d, dmin, scales[12], qs[128]   8 sub-blocks of 32: x = d*sc*q - dmin*m, 6-bit sc and m packed
 *                                                by get_scale_min_k4; 64 values per 32 bytes of qs (low, high nibble)
 * q5_K 176 bytes: d, dmin, scales[12], qh[32], qs[128]   as q4_K with a fifth bit in qh
 * q6_K 210 bytes: ql[128], qh[64], scales[16] (int8), d  16 sub-blocks of 16: x = d*sc*(q - 32)
 * </pre>
 *
 * <p>Where a sub-block's scale rounds to zero, ggml keeps the codes the scale search chose ({@code if (!d)
 * continue;}); so does this class.
 */
final class KQuants {

    static final int QK_K = 256;
    static final int K_SCALE_SIZE = 12;
    static final float GROUP_MAX_EPS = 1e-15f;

    private KQuants() {}

    /** The block kernels of this JVM (q6_K's scale search). */
    private static final GgmlBlockKernels BLOCKS = Kernels.ggml();

    /** {@code nearest_int}: {@link GgmlBlockKernels#nearestInt}. */
    static int nearest_int(float fval) {
        return GgmlBlockKernels.nearestInt(fval);
    }

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
            int l = nearest_int(iscale * (x[xOff + i] - min));
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
                int l = nearest_int(iscale * (x[xOff + i] - min));
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

    /** {@code get_scale_min_k4}: the 6-bit scale and min of sub-block {@code j}, as {@code sc | m << 8}. */
    static int get_scale_min_k4(int j, byte[] q, int qOff) {
        return GgmlBlockKernels.scaleMinK4(j, q, qOff);
    }

    /** The scale search and 6-bit scale packing q4_K and q5_K share; fills {@code L} and the block head. */
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
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < QK_K / 32; ++j) {
            int ls = nearest_int(inv_scale * scales[j]) & 0xFF;
            int lm = nearest_int(inv_min * mins[j]) & 0xFF;
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

        for (int j = 0; j < QK_K / 32; ++j) {
            int scm = get_scale_min_k4(j, y, sc);
            final float d = getFp16(y, b) * (scm & 0xFF);
            if (d == 0) continue;
            final float dm = getFp16(y, b + 2) * (scm >>> 8);
            for (int ii = 0; ii < 32; ++ii) {
                int l = nearest_int((x[xOff + 32 * j + ii] + dm) / d);
                l = Math.max(0, Math.min(nmax, l));
                L[32 * j + ii] = (byte) l;
            }
        }
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

    static void quantize_row_q6_K_ref(float[] x, int xOff, byte[] y, int yOff, int k) {
        final int nb = k / QK_K;
        byte[] L = new byte[QK_K];
        float[] scales = new float[QK_K / 16];
        for (int i = 0; i < nb; i++) {
            final int b = yOff + i * 210;
            final int sc = b + 192; // y[i].scales
            final int dOff = b + 208; // y[i].d
            float max_scale = 0;
            float max_abs_scale = 0;
            // make_qx_quants(16, 32, x + 16*ib, L + 16*ib, 1, NULL) of every sub-block: a kernel
            BLOCKS.makeQxQuantsQ6_K(x, xOff, L, 0, scales, 0);
            for (int ib = 0; ib < QK_K / 16; ++ib) {
                final float scale = scales[ib];
                final float abs_scale = Math.abs(scale);
                if (abs_scale > max_abs_scale) {
                    max_abs_scale = abs_scale;
                    max_scale = scale;
                }
            }
            if (max_abs_scale < GROUP_MAX_EPS) {
                Arrays.fill(y, b, b + 210, (byte) 0);
                putFp16(y, dOff, 0.f);
                xOff += QK_K;
                continue;
            }
            float iscale = -128.f / max_scale;
            putFp16(y, dOff, 1 / iscale);
            for (int ib = 0; ib < QK_K / 16; ++ib) {
                y[sc + ib] = (byte) Math.min(127, nearest_int(iscale * scales[ib]));
            }
            for (int j = 0; j < QK_K / 16; ++j) {
                float d = getFp16(y, dOff) * y[sc + j];
                if (d == 0) {
                    continue;
                }
                for (int ii = 0; ii < 16; ++ii) {
                    int l = nearest_int(x[xOff + 16 * j + ii] / d);
                    l = Math.max(-32, Math.min(31, l));
                    L[16 * j + ii] = (byte) (l + 32);
                }
            }
            int ql = b;
            int qh = b + 128;
            for (int j = 0; j < QK_K; j += 128) {
                for (int l = 0; l < 32; ++l) {
                    final int q1 = L[j + l + 0] & 0xF;
                    final int q2 = L[j + l + 32] & 0xF;
                    final int q3 = L[j + l + 64] & 0xF;
                    final int q4 = L[j + l + 96] & 0xF;
                    y[ql + l + 0] = (byte) (q1 | (q3 << 4));
                    y[ql + l + 32] = (byte) (q2 | (q4 << 4));
                    y[qh + l] = (byte) ((L[j + l] >> 4)
                            | ((L[j + l + 32] >> 4) << 2)
                            | ((L[j + l + 64] >> 4) << 4)
                            | ((L[j + l + 96] >> 4) << 6));
                }
                ql += 64;
                qh += 32;
            }
            xOff += QK_K;
        }
    }
}
