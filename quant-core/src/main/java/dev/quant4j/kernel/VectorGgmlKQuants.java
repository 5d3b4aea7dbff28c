package dev.quant4j.kernel;

import static dev.quant4j.kernel.VectorShapes.ALL_LANES;
import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.I;
import static dev.quant4j.kernel.VectorShapes.ROUND_MAGIC;

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
}
