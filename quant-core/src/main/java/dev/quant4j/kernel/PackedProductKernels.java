package dev.quant4j.kernel;

/**
 * Products of packed 4-bit weight rows with activations, for matrix-vector and small-batch products on quantized
 * weights: float activations ({@link #dotNibbles}, {@link #dotNibbles8}, {@link #dotNibbles2x8}) or int8 activation
 * codes ({@link #dotNibblesInt8}), and the activation preparation they expect. Implemented by {@link
 * ScalarPackedProductKernels} (the reference) and {@code VectorPackedProductKernels}; float sums differ by rounding.
 */
public interface PackedProductKernels {

    /** Values per chunk of {@link #dotNibbles}: 32 codes, 16 bytes. */
    int NIBBLE_CHUNK = 32;

    /**
     * Reorders {@code n} values (a multiple of {@link #NIBBLE_CHUNK}) for {@link #dotNibbles}: within each chunk of
     * 32, the 16 at even positions, then the 16 at odd positions (the low and the high nibbles of 16 packed bytes).
     */
    static void deinterleaveForNibbles(float[] x, int xOff, int n, float[] out, int outOff) {
        for (int c = 0; c < n; c += NIBBLE_CHUNK) {
            for (int j = 0; j < NIBBLE_CHUNK / 2; j++) {
                out[outOff + c + j] = x[xOff + c + 2 * j];
                out[outOff + c + NIBBLE_CHUNK / 2 + j] = x[xOff + c + 2 * j + 1];
            }
        }
    }

    /**
     * A row of 4-bit codes (packed LSB first: code {@code 2j} in the low nibble of byte {@code j}) against prepared
     * activations, group by group: {@code sum_g scales[sOff + g] * sum_{i in g} code_i * x_i} over {@code n / groupSize}
     * groups, with {@code xPrepared} reordered by {@link #deinterleaveForNibbles} and {@code groupSize} a multiple of
     * {@link #NIBBLE_CHUNK}. The zero-points are the caller's ({@code - sum_g S_g Z_g sum_{i in g} x_i}). Float sums:
     * implementations differ by rounding.
     */
    float dotNibbles(
            byte[] packed, int byteOff, float[] xPrepared, int xOff, int n, int groupSize, float[] scales, int sOff);

    /** Values per chunk of {@link #dotNibblesInt8}: 64 codes, 32 bytes. */
    int NIBBLE_CHUNK_INT8 = 64;

    /** Largest magnitude of an int8 activation code: the codes are symmetric, {@code [-127, 127]}. */
    int ACTIVATION_MAXQ = 127;

    /**
     * Quantizes {@code n} activations to symmetric int8 codes for {@link #dotNibblesInt8}, one scale per group of
     * {@code groupSize} (a multiple of {@link #NIBBLE_CHUNK_INT8} dividing {@code n}): {@code d_g = max_{i in g}|x_i| /
     * 127}, {@code xq_i = rint(x_i / d_g)} (half to even), clamped to {@code [-127, 127]}; an all-zero group gets
     * {@code d_g = 0} and codes 0. NaN or infinity in a group makes {@code d_g} NaN or infinite, so the products that
     * use it are not finite either (IEEE propagation, as on the float path). Codes are written as shorts (the kernel
     * multiplies in 16 bits) in the order of {@link #NIBBLE_CHUNK_INT8}-chunks: the 32 values at even positions, then
     * the 32 at odd positions (the low and the high nibbles of 32 packed bytes). This is the activation half of
     * llama.cpp's {@code q8_0} (ggml-quants.c, {@code quantize_row_q8_0_ref}: {@code d = amax / 127}), with the group
     * of the weight instead of blocks of 32.
     */
    static void quantizeActivationsInt8(
            float[] x, int xOff, int n, int groupSize, short[] xq, int xqOff, float[] xScales, int dOff) {
        for (int g = 0; g < n / groupSize; g++) {
            int c0 = g * groupSize;
            float amax = 0f;
            for (int c = c0; c < c0 + groupSize; c++) {
                float v = x[xOff + c];
                amax = Math.max(amax, Math.abs(v)); // NaN, once seen, stays (Math.max propagates it)
            }
            float d = amax / ACTIVATION_MAXQ;
            xScales[dOff + g] = d;
            for (int c = c0; c < c0 + groupSize; c += NIBBLE_CHUNK_INT8) {
                for (int j = 0; j < NIBBLE_CHUNK_INT8; j++) {
                    float v = x[xOff + c + j];
                    // d == 0 only for an all-zero group; a non-finite d leaves codes 0 and carries itself into the sum
                    float r = d == 0f || !Float.isFinite(d) ? 0f : (float) Math.rint(v / d);
                    short code = (short) Math.max(-ACTIVATION_MAXQ, Math.min(ACTIVATION_MAXQ, r));
                    int half = NIBBLE_CHUNK_INT8 / 2;
                    xq[xqOff + c + (j % 2 == 0 ? j / 2 : half + j / 2)] = code;
                }
            }
        }
    }

    /**
     * A row of 4-bit codes (packed as for {@link #dotNibbles}) against int8 activation codes from {@link
     * #quantizeActivationsInt8}: {@code sum_g scales[sOff + g] * xScales[dOff + g] * sum_{i in g} code_i * xq_i}, with
     * {@code groupSize} a multiple of {@link #NIBBLE_CHUNK_INT8}. The products and their sums within a group are exact
     * integers in every implementation (16-bit products, at most 15 * 127 each, added in 16 bits no more than 16 at
     * a time per lane); only the scaling by the float group scale {@code S_g * d_g} differs by rounding.
     */
    float dotNibblesInt8(
            byte[] packed,
            int byteOff,
            short[] xq,
            int xOff,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            float[] xScales,
            int dOff);

    /**
     * {@link #dotNibbles} of one row against eight prepared activation rows at once ({@code xPrepared[xOff + b * ldx
     * ...]}, {@code b < 8}), into {@code out[outOff + b]}: the nibbles are unpacked once and meet the eight rows in
     * registers.
     */
    void dotNibbles8(
            byte[] packed,
            int byteOff,
            float[] xPrepared,
            int xOff,
            int ldx,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            float[] out,
            int outOff);

    /**
     * {@link #dotNibbles8} for two weight rows at once (at {@code byteOff0} and {@code byteOff1}, scales from {@code
     * sOff0} and {@code sOff1}): row 0's eight results into {@code out[outOff ...]}, row 1's into {@code out[outOff +
     * 8 ...]}. Each activation vector loaded meets both rows, halving the activation traffic per product. Equal to two
     * {@link #dotNibbles8} calls.
     */
    void dotNibbles2x8(
            byte[] packed,
            int byteOff0,
            int byteOff1,
            float[] xPrepared,
            int xOff,
            int ldx,
            int n,
            int groupSize,
            float[] scales,
            int sOff0,
            int sOff1,
            float[] out,
            int outOff);
}
