package dev.quant4j.kernel;

import java.util.Arrays;

/**
 * The plain loops of {@link AttentionKernels}: the reference the vector kernel is tested against, and the fallback.
 * One query at a time, as llama2.c's {@code run.c} computes a head's attention (scores, softmax, weighted sum of
 * values), with fused multiply-adds.
 */
final class ScalarAttentionKernels implements AttentionKernels {

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
        float sqrtD = (float) Math.sqrt(d);
        float[] att = scratch;
        for (int g = 0; g < group; g++) {
            for (int i = 0; i < n; i++) {
                int qi = qOff + i * ldq + g * d;
                int count = causal ? start + i + 1 : start + n;
                // the query's score against each key it sees
                for (int t = 0; t < count; t++) {
                    att[t] = ScalarBlasKernels.dotLoop(q, qi, k, kOff + t * ldkv, d) / sqrtD;
                }
                softmax(att, count);
                // the weighted sum of the values
                int oi = outOff + i * ldo + g * d;
                Arrays.fill(out, oi, oi + d, 0f);
                for (int t = 0; t < count; t++) {
                    float a = att[t];
                    int vt = vOff + t * ldkv;
                    for (int c = 0; c < d; c++) {
                        out[oi + c] = Math.fma(a, v[vt + c], out[oi + c]);
                    }
                }
            }
        }
    }

    /** {@code x[0 ... size)} becomes its softmax, the maximum subtracted first: {@code run.c}'s {@code softmax}. */
    static void softmax(float[] x, int size) {
        float max = x[0];
        for (int i = 1; i < size; i++) {
            if (x[i] > max) {
                max = x[i];
            }
        }
        float sum = 0f;
        for (int i = 0; i < size; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < size; i++) {
            x[i] /= sum;
        }
    }
}
