package dev.quant4j.kernel;

import static dev.quant4j.kernel.ScalarGgmlBlockKernels.getFp16;
import static dev.quant4j.kernel.VectorShapes.ALL_LANES;
import static dev.quant4j.kernel.VectorShapes.B;
import static dev.quant4j.kernel.VectorShapes.BYTE_PARTS;
import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.I;
import static dev.quant4j.kernel.VectorShapes.ROUND_MAGIC;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * The K-quants' scale searches with the Vector API, one sub-block per float lane: the sub-blocks' values are first
 * transposed (value {@code i} of {@code L} sub-blocks side by side), then every lane runs the reference's loop over
 * its own sub-block in the reference's order. So each sum is the reference's float (no reordered reduction), its
 * comparisons become lane masks and its branches blends, and the codes and scales are {@link
 * ScalarGgmlBlockKernels}' bit for bit ({@code GgmlBlockKernelsTest}).
 */
final class VectorGgmlKQuants {

    private VectorGgmlKQuants() {}

    /**
     * {@code make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, NULL)} ({@code src/ggml-quants.c} of ggml at {@code
     * d99724f2}, as {@link ScalarGgmlBlockKernels#make_qx_quants}) of the 16 sub-blocks of a q6_K super-block, {@code
     * L} at a time: {@code rmse_type} 1, weights {@code x * x}, the 18 scales {@code -(nmax + 0.1 is) / max} tried
     * after the first.
     */
    static void makeQxQuantsQ6_K(float[] x, int xOff, byte[] L, int lOff, float[] scales, int sOff) {
        final int n = 16;
        final int nmax = 32;
        final int fl = F.length();
        final float[] t = KernelScratch.lanes(n * fl);
        final int[] lt = KernelScratch.get(0).withBitWork(n * fl).bitWork;
        for (int g = 0; g < 16; g += fl) {
            // t[i * L + j]: value i of sub-block g + j
            for (int j = 0; j < fl; j++) {
                for (int i = 0; i < n; i++) {
                    t[i * fl + j] = x[xOff + 16 * (g + j) + i];
                }
            }
            // if (ax > amax) { amax = ax; max = x[i]; }
            FloatVector amax = FloatVector.zero(F);
            FloatVector max = FloatVector.zero(F);
            for (int i = 0; i < n; i++) {
                FloatVector xi = FloatVector.fromArray(F, t, i * fl);
                FloatVector ax = xi.abs();
                VectorMask<Float> keep = ax.compare(VectorOperators.GT, amax).not();
                amax = ax.blend(amax, keep);
                max = xi.blend(max, keep);
            }
            // loop results copied into fresh vectors before they are receivers (VectorShapes)
            final FloatVector mx = FloatVector.zero(F).blend(max, ALL_LANES);
            final VectorMask<Float> allZero = FloatVector.broadcast(F, ScalarGgmlBlockKernels.GROUP_MAX_EPS)
                    .compare(VectorOperators.GT, amax);
            // iscale = -nmax / max; the first codes and sums
            FloatVector iscale = FloatVector.broadcast(F, (float) -nmax).div(mx);
            FloatVector sumlx = FloatVector.zero(F);
            FloatVector suml2 = FloatVector.zero(F);
            for (int i = 0; i < n; i++) {
                FloatVector xi = FloatVector.fromArray(F, t, i * fl);
                IntVector l = xi.mul(iscale)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .and(0x007fffff)
                        .sub(0x00400000)
                        .min(nmax - 1)
                        .max(-nmax);
                l.add(nmax).intoArray(lt, i * fl);
                FloatVector lf = (FloatVector) l.convert(VectorOperators.I2F, 0);
                FloatVector w = xi.mul(xi);
                sumlx = w.mul(xi).mul(lf).add(sumlx);
                suml2 = w.mul(lf).mul(lf).add(suml2);
            }
            FloatVector sx = FloatVector.zero(F).blend(sumlx, ALL_LANES);
            FloatVector s2 = FloatVector.zero(F).blend(suml2, ALL_LANES);
            // scale = suml2 != 0 ? sumlx / suml2 : 0; best = scale * sumlx
            FloatVector scale = sx.div(s2).blend(0.0f, s2.compare(VectorOperators.EQ, 0));
            FloatVector best = sx.mul(scale);
            for (int is = -9; is <= 9; ++is) {
                if (is == 0) {
                    continue;
                }
                final FloatVector is2 =
                        FloatVector.broadcast(F, -(nmax + 0.1f * is)).div(mx);
                FloatVector tlx = FloatVector.zero(F);
                FloatVector tl2 = FloatVector.zero(F);
                for (int i = 0; i < n; i++) {
                    FloatVector xi = FloatVector.fromArray(F, t, i * fl);
                    IntVector l = xi.mul(is2)
                            .add(ROUND_MAGIC)
                            .reinterpretAsInts()
                            .and(0x007fffff)
                            .sub(0x00400000)
                            .min(nmax - 1)
                            .max(-nmax);
                    FloatVector lf = (FloatVector) l.convert(VectorOperators.I2F, 0);
                    FloatVector w = xi.mul(xi);
                    tlx = w.mul(xi).mul(lf).add(tlx);
                    tl2 = w.mul(lf).mul(lf).add(tl2);
                }
                FloatVector cx = FloatVector.zero(F).blend(tlx, ALL_LANES);
                FloatVector c2 = FloatVector.zero(F).blend(tl2, ALL_LANES);
                // if (suml2 > 0 && sumlx * sumlx > best * suml2): the codes, scale = sumlx / suml2, best = scale *
                // sumlx
                VectorMask<Float> better =
                        c2.compare(VectorOperators.GT, 0).and(cx.mul(cx).compare(VectorOperators.GT, c2.mul(best)));
                if (better.anyTrue()) {
                    VectorMask<Integer> betterInts = better.cast(I);
                    for (int i = 0; i < n; i++) {
                        FloatVector xi = FloatVector.fromArray(F, t, i * fl);
                        IntVector l = xi.mul(is2)
                                .add(ROUND_MAGIC)
                                .reinterpretAsInts()
                                .and(0x007fffff)
                                .sub(0x00400000)
                                .min(nmax - 1)
                                .max(-nmax);
                        IntVector.fromArray(I, lt, i * fl)
                                .blend(l.add(nmax), betterInts)
                                .intoArray(lt, i * fl);
                    }
                    FloatVector ns = cx.div(c2);
                    scale = ns.blend(scale, better.not());
                    best = ns.mul(cx).blend(best, better.not());
                }
            }
            // an all-zero sub-block: codes 0, scale 0
            FloatVector.zero(F).blend(scale, ALL_LANES).blend(0.0f, allZero).intoArray(scales, sOff + g);
            final long zeroLanes = allZero.toLong();
            for (int j = 0; j < fl; j++) {
                final boolean zero = (zeroLanes >>> j & 1) != 0;
                for (int i = 0; i < n; i++) {
                    L[lOff + 16 * (g + j) + i] = zero ? 0 : (byte) lt[i * fl + j];
                }
            }
        }
    }

    private static final int QK_K = 256;
    private static final int FL = F.length();
    private static final int BL = B.length();
    /** Sub-blocks of 32 (lanes) in a batch of the q4_K and q5_K search: {@code max(L, 8)}, whole super-blocks. */
    private static final int SUBS = Math.max(FL, 8);

    // the float scratch of quantizeK: one batch's transposed values, weights, candidate and best codes, results
    private static final int T = 0;
    private static final int W = 32 * FL;
    private static final int C = 64 * FL;
    private static final int BEST = 96 * FL;
    private static final int SC = BEST + 32 * SUBS;
    private static final int MN = SC + SUBS;
    private static final int SCRATCH = MN + SUBS;

    /**
     * {@code quantize_row_q4_K_ref} ({@code five} false: 144-byte super-blocks, codes 0..15, {@code
     * make_qkx2_quants(32, 15, ..., -1, 0.1, 20, false)}) and {@code quantize_row_q5_K_ref} (176 bytes, 0..31, {@code
     * -0.5, 0.1, 15}) of ggml at {@code d99724f2}, as {@link ScalarGgmlKQuants}. The scale searches of {@code
     * max(L, 8)} sub-blocks of 32 at once, one per lane ({@link #searchLanes}); then per super-block the scalar
     * packing of the 6-bit scales ({@link ScalarGgmlKQuants#packScalesMins}), the final codes {@code nearest_int((x +
     * dm) / d)} in lanes of consecutive values, and the nibbles (and q5_K's fifth bits) packed in int lanes.
     */
    static void quantizeK(float[] x, int xOff, byte[] y, int yOff, int k, boolean five) {
        final int nmax = five ? 31 : 15;
        final float rmin = five ? -0.5f : -1.f;
        final int nstep = five ? 15 : 20;
        final int size = five ? 176 : 144;
        final int nb = k / QK_K;
        final float[] s = KernelScratch.lanes(SCRATCH);
        final int[] codes = KernelScratch.get(0).withBitWork(QK_K).bitWork;
        for (int i0 = 0; i0 < nb; i0 += SUBS / 8) {
            final int live = 8 * Math.min(SUBS / 8, nb - i0);
            for (int g = 0; g < SUBS / FL; g++) {
                searchLanes(x, xOff + QK_K * i0 + 32 * FL * g, Math.min(FL, live - FL * g), nmax, rmin, nstep, s, g);
            }
            for (int c = 0; c < live / 8; c++) {
                final int i = i0 + c;
                final int b = yOff + i * size;
                final int xo = xOff + QK_K * i;
                float max_scale = 0;
                float max_min = 0;
                for (int j = 0; j < 8; ++j) {
                    float scale = s[SC + 8 * c + j];
                    if (scale > max_scale) {
                        max_scale = scale;
                    }
                    float min = s[MN + 8 * c + j];
                    if (min > max_min) {
                        max_min = min;
                    }
                }
                ScalarGgmlKQuants.packScalesMins(s, SC + 8 * c, s, MN + 8 * c, max_scale, max_min, y, b);
                finalCodes(x, xo, y, b, nmax, s, 8 * c, codes);
                if (five) {
                    packQ5_K(codes, y, b);
                } else {
                    packQ4_K(codes, y, b);
                }
            }
        }
    }

    /**
     * {@code make_qkx2_quants} with its weights ({@code av_x + fabsf(x)}) for the {@code live} sub-blocks of 32 from
     * {@code x[o]}, one per lane (the other lanes zeros): lane {@code j}'s scale to {@code s[SC + L g + j]}, its
     * {@code the_min} to {@code s[MN + L g + j]}, its codes (as floats) to {@code s[BEST + 32 L g + L i + j]}. The
     * reference's loop in every lane: the sums in its order, {@code if}s as masks. {@code min} changes when a step
     * wins, and the later steps use the new one ({@code iscale * (x[i] - min)}), as the reference does.
     */
    private static void searchLanes(float[] x, int o, int live, int nmax, float rmin, int nstep, float[] s, int g) {
        final int best = BEST + 32 * FL * g;
        // s[T + i * L + j]: value i of sub-block j
        for (int j = 0; j < FL; j++) {
            for (int i = 0; i < 32; i++) {
                s[T + i * FL + j] = j < live ? x[o + 32 * j + i] : 0f;
            }
        }
        // av_x = sqrtf(sum_x2 / 32), weights[l] = av_x + fabsf(x[l])
        FloatVector sum_x2 = FloatVector.zero(F);
        for (int i = 0; i < 32; i++) {
            FloatVector xi = FloatVector.fromArray(F, s, T + i * FL);
            sum_x2 = xi.mul(xi).add(sum_x2);
        }
        final FloatVector av_x =
                FloatVector.zero(F).blend(sum_x2, ALL_LANES).div(32f).sqrt();
        for (int i = 0; i < 32; i++) {
            av_x.add(FloatVector.fromArray(F, s, T + i * FL).abs()).intoArray(s, W + i * FL);
        }
        // min, max, sum_w, sum_x
        FloatVector min = FloatVector.fromArray(F, s, T);
        FloatVector max = FloatVector.fromArray(F, s, T);
        FloatVector sum_w = FloatVector.fromArray(F, s, W);
        FloatVector sum_x = FloatVector.fromArray(F, s, W).mul(FloatVector.fromArray(F, s, T));
        for (int i = 1; i < 32; i++) {
            FloatVector xi = FloatVector.fromArray(F, s, T + i * FL);
            FloatVector w = FloatVector.fromArray(F, s, W + i * FL);
            min = xi.blend(min, xi.compare(VectorOperators.LT, min).not());
            max = xi.blend(max, xi.compare(VectorOperators.GT, max).not());
            sum_w = w.add(sum_w);
            sum_x = w.mul(xi).add(sum_x);
        }
        final FloatVector mx = FloatVector.zero(F).blend(max, ALL_LANES);
        final FloatVector sw = FloatVector.zero(F).blend(sum_w, ALL_LANES);
        final FloatVector sx = FloatVector.zero(F).blend(sum_x, ALL_LANES);
        FloatVector mn = FloatVector.zero(F).blend(min, ALL_LANES);
        mn = mn.blend(0f, mn.compare(VectorOperators.GT, 0f)); // if (min > 0) min = 0
        final FloatVector min0 = mn;
        // if (max == min): codes 0, scale 0, the_min = -min (blended in at the end)
        final VectorMask<Float> flat = mx.compare(VectorOperators.EQ, mn);
        // the first codes: iscale = nmax / (max - min), scale = 1 / iscale
        final FloatVector iscale = FloatVector.broadcast(F, (float) nmax).div(mx.sub(mn));
        FloatVector scale = FloatVector.broadcast(F, 1f).div(iscale);
        FloatVector best_error = FloatVector.zero(F);
        for (int i = 0; i < 32; i++) {
            FloatVector xi = FloatVector.fromArray(F, s, T + i * FL);
            IntVector l = xi.sub(mn)
                    .mul(iscale)
                    .add(ROUND_MAGIC)
                    .reinterpretAsInts()
                    .and(0x007fffff)
                    .sub(0x00400000)
                    .min(nmax)
                    .max(0);
            FloatVector lf = (FloatVector) l.convert(VectorOperators.I2F, 0);
            lf.intoArray(s, best + i * FL);
            FloatVector diff = scale.mul(lf).add(mn).sub(xi);
            best_error =
                    FloatVector.fromArray(F, s, W + i * FL).mul(diff.mul(diff)).add(best_error);
        }
        final float rdelta = 0.1f;
        for (int is = 0; is <= nstep; ++is) {
            // iscale = (rmin + rdelta * is + nmax) / (max - min), min as the steps before left it
            final FloatVector isc =
                    FloatVector.broadcast(F, rmin + rdelta * is + nmax).div(mx.sub(mn));
            FloatVector sum_l = FloatVector.zero(F);
            FloatVector sum_l2 = FloatVector.zero(F);
            FloatVector sum_xl = FloatVector.zero(F);
            for (int i = 0; i < 32; i++) {
                FloatVector xi = FloatVector.fromArray(F, s, T + i * FL);
                IntVector l = xi.sub(mn)
                        .mul(isc)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .and(0x007fffff)
                        .sub(0x00400000)
                        .min(nmax)
                        .max(0);
                FloatVector lf = (FloatVector) l.convert(VectorOperators.I2F, 0);
                lf.intoArray(s, C + i * FL);
                FloatVector wl = FloatVector.fromArray(F, s, W + i * FL).mul(lf);
                sum_l = wl.add(sum_l);
                sum_l2 = wl.mul(lf).add(sum_l2);
                sum_xl = wl.mul(xi).add(sum_xl);
            }
            final FloatVector sl = FloatVector.zero(F).blend(sum_l, ALL_LANES);
            final FloatVector sl2 = FloatVector.zero(F).blend(sum_l2, ALL_LANES);
            final FloatVector sxl = FloatVector.zero(F).blend(sum_xl, ALL_LANES);
            final FloatVector D = sw.mul(sl2).sub(sl.mul(sl));
            final VectorMask<Float> positive = D.compare(VectorOperators.GT, 0f);
            if (!positive.anyTrue()) {
                continue;
            }
            FloatVector this_scale = sw.mul(sxl).sub(sx.mul(sl)).div(D);
            FloatVector this_min = sl2.mul(sx).sub(sl.mul(sxl)).div(D);
            final VectorMask<Float> above = this_min.compare(VectorOperators.GT, 0f);
            this_scale = this_scale.blend(sxl.div(sl2), above);
            this_min = this_min.blend(0f, above);
            FloatVector cur_error = FloatVector.zero(F);
            for (int i = 0; i < 32; i++) {
                FloatVector diff = this_scale
                        .mul(FloatVector.fromArray(F, s, C + i * FL))
                        .add(this_min)
                        .sub(FloatVector.fromArray(F, s, T + i * FL));
                cur_error = FloatVector.fromArray(F, s, W + i * FL)
                        .mul(diff.mul(diff))
                        .add(cur_error);
            }
            final FloatVector ce = FloatVector.zero(F).blend(cur_error, ALL_LANES);
            // if (cur_error < best_error): the step's codes, error, scale and min
            final VectorMask<Float> better =
                    ce.compare(VectorOperators.LT, best_error).and(positive);
            if (better.anyTrue()) {
                for (int i = 0; i < 32; i++) {
                    FloatVector.fromArray(F, s, best + i * FL)
                            .blend(FloatVector.fromArray(F, s, C + i * FL), better)
                            .intoArray(s, best + i * FL);
                }
                best_error = ce.blend(best_error, better.not());
                scale = this_scale.blend(scale, better.not());
                mn = this_min.blend(mn, better.not());
            }
        }
        FloatVector.zero(F).blend(scale, ALL_LANES).blend(0f, flat).intoArray(s, SC + FL * g);
        FloatVector.zero(F).blend(mn, ALL_LANES).blend(min0, flat).neg().intoArray(s, MN + FL * g);
        if (flat.anyTrue()) {
            for (int i = 0; i < 32; i++) {
                FloatVector.fromArray(F, s, best + i * FL).blend(0f, flat).intoArray(s, best + i * FL);
            }
        }
    }

    /**
     * The last step of {@code quantize_row_q4_K_ref} and {@code q5_K}: with the 6-bit scales of the block head at
     * {@code y[b]}, each sub-block {@code j}'s codes {@code nearest_int((x + dm) / d)} in {@code [0, nmax]} to {@code
     * codes[32 j]}, or, where {@code d} is 0, the search's codes (sub-block {@code first + j} of the batch).
     */
    private static void finalCodes(float[] x, int xo, byte[] y, int b, int nmax, float[] s, int first, int[] codes) {
        final float dAll = getFp16(y, b);
        final float dminAll = getFp16(y, b + 2);
        for (int j = 0; j < 8; ++j) {
            final int scm = GgmlBlockKernels.scaleMinK4(j, y, b + 4);
            final float d = dAll * (scm & 0xFF);
            if (d == 0) {
                final int sub = first + j;
                final int at = BEST + 32 * FL * (sub / FL) + sub % FL;
                for (int ii = 0; ii < 32; ii++) {
                    codes[32 * j + ii] = (int) s[at + ii * FL];
                }
                continue;
            }
            final FloatVector dv = FloatVector.broadcast(F, d);
            final FloatVector dm = FloatVector.broadcast(F, dminAll * (scm >>> 8));
            for (int ii = 0; ii < 32; ii += FL) {
                FloatVector.fromArray(F, x, xo + 32 * j + ii)
                        .add(dm)
                        .div(dv)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .and(0x007fffff)
                        .sub(0x00400000)
                        .min(nmax)
                        .max(0)
                        .intoArray(codes, 32 * j + ii);
            }
        }
    }

    /** q4_K's {@code qs}: per 64 values, code {@code l} low and {@code l + 32} high in byte {@code l}. */
    private static void packQ4_K(int[] codes, byte[] y, int b) {
        final int q = b + 16;
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l += BL) {
                ByteVector p = (ByteVector) IntVector.fromArray(I, codes, 64 * c + 32 + l)
                        .lanewise(VectorOperators.LSHL, 4)
                        .or(IntVector.fromArray(I, codes, 64 * c + l))
                        .convertShape(VectorOperators.I2B, B, 0);
                if (BYTE_PARTS == 2) {
                    p = ((ByteVector) IntVector.fromArray(I, codes, 64 * c + 32 + l + FL)
                                    .lanewise(VectorOperators.LSHL, 4)
                                    .or(IntVector.fromArray(I, codes, 64 * c + l + FL))
                                    .convertShape(VectorOperators.I2B, B, -1))
                            .or(p);
                }
                p.intoArray(y, q + 32 * c + l);
            }
        }
    }

    /**
     * q5_K's {@code qh} and {@code qs}: per 64 values (chunk {@code c}), the low nibbles as q4_K's, the fifth bit of
     * code {@code l} at bit {@code 2c} and of {@code l + 32} at bit {@code 2c + 1} of {@code qh[l]}.
     */
    private static void packQ5_K(int[] codes, byte[] y, int b) {
        final int qh = b + 16;
        final int ql = b + 48;
        for (int l = 0; l < 32; l += BL) {
            IntVector h0 = IntVector.zero(I);
            IntVector h1 = IntVector.zero(I);
            for (int c = 0; c < 4; c++) {
                IntVector lo = IntVector.fromArray(I, codes, 64 * c + l);
                IntVector hi = IntVector.fromArray(I, codes, 64 * c + 32 + l);
                h0 = lo.lanewise(VectorOperators.LSHR, 4)
                        .lanewise(VectorOperators.LSHL, 2 * c)
                        .or(hi.lanewise(VectorOperators.LSHR, 4).lanewise(VectorOperators.LSHL, 2 * c + 1))
                        .or(h0);
                ByteVector p = (ByteVector) hi.and(0x0F)
                        .lanewise(VectorOperators.LSHL, 4)
                        .or(lo.and(0x0F))
                        .convertShape(VectorOperators.I2B, B, 0);
                if (BYTE_PARTS == 2) {
                    IntVector lo1 = IntVector.fromArray(I, codes, 64 * c + l + FL);
                    IntVector hi1 = IntVector.fromArray(I, codes, 64 * c + 32 + l + FL);
                    h1 = lo1.lanewise(VectorOperators.LSHR, 4)
                            .lanewise(VectorOperators.LSHL, 2 * c)
                            .or(hi1.lanewise(VectorOperators.LSHR, 4).lanewise(VectorOperators.LSHL, 2 * c + 1))
                            .or(h1);
                    p = ((ByteVector) hi1.and(0x0F)
                                    .lanewise(VectorOperators.LSHL, 4)
                                    .or(lo1.and(0x0F))
                                    .convertShape(VectorOperators.I2B, B, -1))
                            .or(p);
                }
                p.intoArray(y, ql + 32 * c + l);
            }
            ByteVector hb = (ByteVector) IntVector.zero(I).or(h0).convertShape(VectorOperators.I2B, B, 0);
            if (BYTE_PARTS == 2) {
                hb = ((ByteVector) IntVector.zero(I).or(h1).convertShape(VectorOperators.I2B, B, -1)).or(hb);
            }
            hb.intoArray(y, qh + l);
        }
    }
}
