package dev.quant4j.kernel;

import static dev.quant4j.kernel.VectorShapes.ALL_LANES;
import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.MAGIC_BITS;
import static dev.quant4j.kernel.VectorShapes.ROUND_MAGIC;
import static dev.quant4j.kernel.VectorShapes.sumLanes;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * {@link AttentionKernels} on the Vector API, as two block products per block of {@link #QUERY_BLOCK} queries: the
 * keys of the head are transposed once into the work array ({@code kT [d, keys]}), the scores of the block are {@code
 * S = Q kT} and the outputs {@code P V}, both by {@link BlasKernels#gemmAcc}, whose every element is the reference's
 * chain of fused multiply-adds (so scores and value sums are bit-identical to it). The softmax between them runs in
 * lanes over each row of scores, padded to whole vectors with {@code -inf} (whose exponential is 0).
 *
 * <p>The exponential is computed here from fused multiply-adds and exponent bits (a Taylor polynomial of degree 7 on
 * {@code |r| <= ln(2) / 2}, truncation below {@code 6e-9} relative, then {@code 2^k}), within about an ulp of {@code
 * Math.exp} and 0 below {@code -87.5}, where it is under {@code 2^-126}. Not {@code VectorOperators.EXP}: that is a
 * different function in the interpreter (its Java fallback) and in compiled code (an intrinsic), and a result must
 * not depend on which of them ran a call.
 *
 * <p>In a causal block every query is scored against the keys of the block's last query; the scores it does not see
 * get probability 0, which adds nothing to its value sum.
 */
final class VectorAttentionKernels implements AttentionKernels {

    private static final VectorBlasKernels BLAS = new VectorBlasKernels();

    /** Below this the exponential is under 2^-126 and taken as 0. */
    private static final float EXP_FLOOR = -87.5f;

    private static final float LOG2E = (float) (1 / Math.log(2));
    /** ln 2 in two parts: {@code LN2_HI} has 9 significant bits, so {@code k LN2_HI} is exact for every k used here. */
    private static final float LN2_HI = 0.693359375f;

    private static final float LN2_LO = (float) (Math.log(2) - 0.693359375);

    @Override
    public void attention(
            int n,
            int start,
            boolean causal,
            int d,
            int group,
            float[] q,
            int qOff,
            int ldq,
            float[] k,
            int kOff,
            float[] v,
            int vOff,
            int ldkv,
            float[] out,
            int outOff,
            int ldo,
            float[] scratch) {
        assert scratch.length >= AttentionKernels.attentionScratchSize(n, start, d);
        int keys = start + n;
        int ldt = AttentionKernels.paddedKeys(keys);
        // kT [d, ldt] at 0: kT(c, t) = K(t, c), read by the score products row by row
        for (int t = 0; t < keys; t++) {
            int kt = kOff + t * ldkv;
            for (int c = 0; c < d; c++) {
                scratch[c * ldt + t] = k[kt + c];
            }
        }
        // S [QUERY_BLOCK, ldt] after it
        int sOff = d * ldt;
        float sqrtD = (float) Math.sqrt(d);
        for (int g = 0; g < group; g++) {
            for (int i0 = 0; i0 < n; i0 += QUERY_BLOCK) {
                int rows = Math.min(QUERY_BLOCK, n - i0);
                int cols = causal ? start + i0 + rows : keys;
                for (int r = 0; r < rows; r++) {
                    Arrays.fill(scratch, sOff + r * ldt, sOff + r * ldt + cols, 0f);
                }
                BLAS.gemmAcc(rows, cols, d, q, qOff + i0 * ldq + g * d, ldq, 1, scratch, 0, ldt, scratch, sOff, ldt);
                for (int r = 0; r < rows; r++) {
                    int count = causal ? start + i0 + r + 1 : keys;
                    softmaxRow(scratch, sOff + r * ldt, count, cols, sqrtD);
                }
                int o0 = outOff + i0 * ldo + g * d;
                for (int r = 0; r < rows; r++) {
                    Arrays.fill(out, o0 + r * ldo, o0 + r * ldo + d, 0f);
                }
                BLAS.gemmAcc(rows, d, cols, scratch, sOff, ldt, 1, v, vOff, ldkv, out, o0, ldo);
            }
        }
    }

    /**
     * Row {@code s[off ...]} of raw scores becomes the probabilities of its first {@code count} keys, divided by
     * {@code sqrtD} and softmaxed as the reference does; entries {@code count ... cols - 1} become 0.
     */
    private static void softmaxRow(float[] s, int off, int count, int cols, float sqrtD) {
        int step = F.length();
        int end = (count + step - 1) / step * step;
        Arrays.fill(s, off + count, off + end, Float.NEGATIVE_INFINITY);
        FloatVector max = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (int j = 0; j < end; j += step) {
            FloatVector x = FloatVector.fromArray(F, s, off + j).div(sqrtD);
            x.intoArray(s, off + j);
            max = x.max(max);
        }
        // the loop's variables are arguments only (VectorShapes' class comment)
        float m = FloatVector.zero(F).blend(max, ALL_LANES).reduceLanes(VectorOperators.MAX);
        FloatVector sum = FloatVector.zero(F);
        for (int j = 0; j < end; j += step) {
            // exp(x), x <= 0 (class comment): x = k ln 2 + r with |r| <= ln(2) / 2, k rounded by ROUND_MAGIC
            FloatVector x = FloatVector.fromArray(F, s, off + j).sub(m);
            FloatVector xc = x.max(EXP_FLOOR);
            FloatVector t = xc.fma(LOG2E, ROUND_MAGIC);
            FloatVector k = t.sub(ROUND_MAGIC);
            // k ln2_hi is exact: one rounding, as a fused multiply-add
            FloatVector r = k.mul(-LN2_HI).add(xc);
            r = k.fma(FloatVector.broadcast(F, -LN2_LO), r);
            // e^r: its Taylor polynomial of degree 7 by Horner's rule
            FloatVector p = r.fma(1f / 5040, 1f / 720);
            p = p.fma(r, FloatVector.broadcast(F, 1f / 120));
            p = p.fma(r, FloatVector.broadcast(F, 1f / 24));
            p = p.fma(r, FloatVector.broadcast(F, 1f / 6));
            p = p.fma(r, FloatVector.broadcast(F, 0.5f));
            p = p.fma(r, FloatVector.broadcast(F, 1f));
            p = p.fma(r, FloatVector.broadcast(F, 1f));
            // times 2^k, built in the exponent field (k in [-126, 0])
            FloatVector twoK = t.reinterpretAsInts()
                    .sub(MAGIC_BITS - 127)
                    .lanewise(VectorOperators.LSHL, 23)
                    .reinterpretAsFloats();
            FloatVector e = p.mul(twoK).blend(0f, x.lt(EXP_FLOOR));
            e.intoArray(s, off + j);
            sum = e.add(sum);
        }
        float total = sumLanes(sum);
        for (int j = 0; j < end; j += step) {
            FloatVector.fromArray(F, s, off + j).div(total).intoArray(s, off + j);
        }
        if (end < cols) {
            Arrays.fill(s, off + end, off + cols, 0f);
        }
    }
}
