package dev.quant4j.ggml;

import static dev.quant4j.ggml.GgmlFloats.getFp16;
import static dev.quant4j.ggml.GgmlFloats.putFp16;

import dev.quant4j.kernel.GgmlBlockKernels;
import dev.quant4j.kernel.Kernels;
import java.util.Arrays;

/**
 * ggml's K-quant {@code q6_K}: super-blocks of {@code QK_K = 256} values whose sub-block scales are themselves
 * quantized. The reference quantizer {@code quantize_row_q6_K_ref} of ggml's {@code src/ggml-quants.c} at commit
 * {@code d99724f2b141fed9e1a9f402213506c081433465}, statement for statement and with its variable names, so that the
 * bytes are ggml's ({@code GgmlQuantsTest} checks them against ggml's output); its scale search ({@code
 * make_qx_quants}) is a kernel. q4_K's and q5_K's quantizers and every dequantizer are kernels ({@link
 * GgmlBlockKernels}).
 *
 * <p>Block ({@code src/ggml-common.h}; FP16 little-endian):
 *
 * <pre>
 * q6_K 210 bytes: ql[128], qh[64], scales[16] (int8), d  16 sub-blocks of 16: x = d*sc*(q - 32)
 * </pre>
 *
 * <p>Where a sub-block's scale rounds to zero, ggml keeps the codes the scale search chose ({@code if (!d)
 * continue;}); so does this class.
 */
final class KQuants {

    static final int QK_K = 256;
    static final float GROUP_MAX_EPS = 1e-15f;

    private KQuants() {}

    /** The block kernels of this JVM (q6_K's scale search). */
    private static final GgmlBlockKernels BLOCKS = Kernels.ggml();

    /** {@code nearest_int}: {@link GgmlBlockKernels#nearestInt}. */
    static int nearest_int(float fval) {
        return GgmlBlockKernels.nearestInt(fval);
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
