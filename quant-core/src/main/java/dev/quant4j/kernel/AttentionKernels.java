package dev.quant4j.kernel;

/**
 * Scaled dot-product attention of one key/value head and the query heads that read it (grouped-query attention),
 * causal or over every key, as a decoder's prefill, its generation with a cache of keys and values, and an encoder run
 * it. Implemented by {@link ScalarAttentionKernels} (the reference, llama2.c's {@code run.c} attention loop: Andrej
 * Karpathy, MIT) and {@code VectorAttentionKernels}.
 *
 * <p>For query head {@code g < group} and query {@code i < n} (at position {@code start + i}), with {@code count =
 * start + i + 1} keys when {@code causal}, else {@code start + n}, the reference computes in float:
 *
 * <pre>
 * Q(i, c)    = q[qOff + i * ldq + g * d + c]
 * K(t, c)    = k[kOff + t * ldkv + c],  V(t, c) = v[vOff + t * ldkv + c]     keys and values as rows [position, kvDim]
 * s(t)       = dot(Q(i), K(t)) / sqrt(d)          dot: fma(Q(i, c), K(t, c), .) over c = 0 ... d - 1, from 0
 * p(t)       = exp(s(t) - max_t s) / sum          sum: of the exponentials, t = 0 ... count - 1 in order
 * out(i, gc) = sum_t p(t) V(t, c)                 fma(p(t), V(t, c), .) over t = 0 ... count - 1, from 0
 * </pre>
 *
 * where {@code sqrt(d)} is rounded to float, {@code exp} is {@code Math.exp} rounded to float and the output is
 * {@code out[outOff + i * ldo + g * d + c]}. Subtracting the maximum keeps every exponential in {@code (0, 1]}:
 * no score overflows the softmax.
 *
 * <p>The vector form computes the scores and the weighted sums of values with the same chains of fused multiply-adds
 * in the same order (bit-identical); it differs from the reference only in {@code exp} (a polynomial of its own,
 * within about an ulp, and 0 below {@code 2^-126}) and in the order of the denominator's sum (in lanes). Each
 * probability therefore differs by a relative {@code (count + 4) 2^-24} at most (or by less than {@code 2^-126}),
 * and each output by at most {@code (3 count + 8) 2^-24 max|V|}, which is what the tests assert. A query's output depends only on its own row, the keys and values it sees and {@code count}: not
 * on {@code n}, {@code start} or the blocking, so a prefill and a token-by-token generation give the same bits.
 */
public interface AttentionKernels {

    /** Keys per row of the work arrays are rounded up to a multiple of this (the widest vector's lanes). */
    int KEY_PAD = 16;

    /** Queries the vector kernel scores at once (rows of its score block). */
    int QUERY_BLOCK = 32;

    /**
     * Attention of {@code group} query heads of width {@code d} over one key/value head, for {@code n} queries at
     * positions {@code start ... start + n - 1}, into {@code out} (which must not overlap {@code q}, {@code k} or
     * {@code v}); see the interface comment for the layout and the arithmetic. {@code scratch} holds at least {@link
     * #attentionScratchSize}{@code (n, start, d)} floats; its contents are overwritten.
     */
    void attention(
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
            float[] scratch);

    /**
     * Floats of work array {@link #attention} needs: the keys of the head transposed and a block of scores, {@code (d
     * + QUERY_BLOCK)} rows of {@code start + n} keys rounded up to {@link #KEY_PAD}.
     */
    static int attentionScratchSize(int n, int start, int d) {
        return Math.multiplyExact(d + QUERY_BLOCK, paddedKeys(start + n));
    }

    /** {@code keys} rounded up to a multiple of {@link #KEY_PAD}: the row length of the work arrays. */
    static int paddedKeys(int keys) {
        return Math.addExact(keys, KEY_PAD - 1) / KEY_PAD * KEY_PAD;
    }
}
