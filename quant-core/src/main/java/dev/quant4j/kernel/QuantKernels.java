package dev.quant4j.kernel;

/**
 * The compute kernels every quantizer is built on. {@link ScalarKernels} is the reference and the fallback; {@link
 * VectorKernels} must give identical integer codes and float sums within a stated tolerance (see the tests).
 *
 * <p>Internal: arguments are trusted (checked by the public API), so kernels only {@code assert}. Float sums of one
 * call are accumulated in float; callers that sum many rows accumulate the per-row results in double.
 */
public interface QuantKernels {

    /** Linear forms, for {@link #linearParams}: GPTQ asymmetric, GPTQ symmetric, signed symmetric (absmax). */
    int ASYM = 0;

    int SYM = 1;
    int SIGNED = 2;
    /** llm-awq's min/max form (AWQ): the range is not widened to contain 0. */
    int MINMAX = 3;

    /** Short name for logs and benchmarks, e.g. {@code scalar} or {@code vector-256}. */
    String name();

    /** Whether every value of {@code x[off, off+len)} is finite (no NaN, no infinity). */
    boolean allFinite(float[] x, int off, int len);

    /**
     * Minimum and maximum of {@code x[off, off+len)}, {@code len >= 1}, packed by {@link #packMinMax}; read them with
     * {@link #min(long)} and {@link #max(long)}. For finite input only (check with {@link #allFinite} first): NaN is
     * ignored or not, depending on the implementation. Zeros compare equal: the sign of a zero result is unspecified.
     */
    long minMax(float[] x, int off, int len);

    /** Largest absolute value of {@code x[off, off+len)}; 0 for {@code len == 0}. For finite input only. */
    float absMax(float[] x, int off, int len);

    /**
     * Scale and zero-point of {@code n} groups from their minima and maxima, as GPTQ's {@code find_params} (formulas
     * in {@link ScalarKernels#linearScale} and {@link ScalarKernels#linearZero}): {@code scales[sOff + i]} and {@code
     * zeros[zOff + i]} (an integer held in a float) for {@code i < n}. Bit-identical across implementations.
     */
    void linearParams(
            float[] mins, float[] maxs, int n, int bits, int form, float[] scales, int sOff, float[] zeros, int zOff);

    /**
     * Round-to-nearest linear quantization, as GPTQ's {@code quant.py}: {@code q = clamp(rint(x / scale) + zero, qmin,
     * qmax)}, division in float32, rounding half to even. Codes are stored as unsigned bytes (0..255).
     */
    void quantize(float[] x, int off, int len, float scale, float zero, int qmin, int qmax, byte[] codes, int codesOff);

    /**
     * Round-to-nearest quantization of {@code groups} whole groups of {@code gsize} values from {@code x[off ...]}, as
     * {@link dev.quant4j.linear.RtnQuantizer} does a row: every group's {@link #minMax}, their {@link #linearParams}
     * in {@code form} into {@code scales[sOff + g]} and {@code zeros[zOff + g]} (the zero-point as an unsigned byte),
     * then the codes of {@link #quantize} in {@code [qmin, 2^bits - 1]}, packed as {@link #pack} writes them into
     * {@code packed[pOff ...]}. Returns false, the outputs then undefined, when a value is not finite. Bit-identical
     * to those calls, which is what the scalar implementation makes; vector implementations fuse them into passes over
     * the row with no buffer of codes in between.
     */
    boolean quantizeGroups(
            float[] x,
            int off,
            int groups,
            int gsize,
            int bits,
            int form,
            int qmin,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            byte[] packed,
            int pOff);

    /**
     * Codebook codes of {@code x[off, off+len)} scaled by {@code inv} ({@code q = x * inv}, float32), one per byte, by
     * counting decision thresholds: without {@code signMagnitude} (NF4) the code is the number of thresholds {@code t}
     * with {@code q > t}; with it (bitsandbytes' FP4) that count {@code c} is taken on {@code |q|}, mapped to the
     * magnitude code {@code c ^ ((c & 2) << 1)}, and bit 3 is set when {@code q < 0}. NaN gives code 0.
     */
    void encodeCodebook(
            float[] x,
            int off,
            int len,
            float inv,
            float[] thresholds,
            boolean signMagnitude,
            byte[] codes,
            int codesOff);

    /**
     * Decodes {@code n} 4-bit codes packed high nibble first (bitsandbytes' order) from {@code packed[byteOff ...]}:
     * {@code out[outOff + i] = table[code(i)]}, with a 16-entry table (a codebook already multiplied by the block's
     * absmax). {@code n} may be odd: the last byte's low nibble is then ignored.
     */
    void decode4(byte[] packed, int byteOff, int n, float[] table, float[] out, int outOff);

    /**
     * bitsandbytes' blockwise 4-bit quantization of {@code nBlocks} whole blocks of {@code blockSize} values (a
     * multiple of 16) from {@code x[off ...]}: for block {@code b}, {@code absmax[aOff + b] = max |v|}, {@code inv =
     * 1.0f / absmax}, the codes of {@link #encodeCodebook} with that {@code inv}, packed high nibble first as {@link
     * #packHighFirst4} into {@code packed[pOff + b * blockSize / 2 ...]}. Bit-identical to those calls block by block
     * (which is what the scalar implementation makes); implementations fuse them to save the per-block calls. For
     * finite input only.
     */
    void quantizeBlocks4(
            float[] x,
            int off,
            int nBlocks,
            int blockSize,
            float[] thresholds,
            boolean signMagnitude,
            float[] absmax,
            int aOff,
            byte[] packed,
            int pOff);

    /**
     * {@link #decode4} of {@code nBlocks} whole blocks of {@code blockSize} codes (a multiple of 16) from {@code
     * packed[pOff ...]} into {@code out[outOff ...]}, block {@code b} with the table {@code codebook[c] * absmax[aOff +
     * b]} (float32 products, as bitsandbytes' {@code dequantize_4bit}). Bit-identical across implementations.
     */
    void decodeBlocks4(
            byte[] packed,
            int pOff,
            int nBlocks,
            int blockSize,
            float[] codebook,
            float[] absmax,
            int aOff,
            float[] out,
            int outOff);

    /** {@code out = scale * (code - zero)} in float32, codes read as unsigned bytes. */
    void dequantize(byte[] codes, int codesOff, int len, float scale, float zero, float[] out, int outOff);

    /**
     * Dequantizes {@code n} linear codes of {@code bits} bits packed as {@link #pack} writes them (from byte {@code
     * pOff}, low bits first), in groups of {@code groupSize} ({@code n} a multiple of it): {@code out[outOff + c] = scales[sOff + g] * (code(c) - (zeros[zOff + g] & 0xFF))} in float32, {@code g
     * = c / groupSize}. Bit-identical to {@link #unpack} then {@link #dequantize} per group, which is what it replaces:
     * vector implementations decode the packed bits in registers, with no buffer of codes in between.
     */
    void dequantizeGroups(
            byte[] packed,
            int pOff,
            int n,
            int bits,
            int groupSize,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            float[] out,
            int outOff);

    /**
     * Packs {@code n} codes of {@code bits} bits densely: code {@code j} occupies bits {@code [j*bits, (j+1)*bits)} of
     * the little-endian bit stream that starts at byte {@code packedOff} (LSB first). Writes {@code ceil(n*bits/8)}
     * bytes; unused high bits of the last byte are zero. Codes must already fit in {@code bits}.
     */
    void pack(byte[] codes, int codesOff, int n, int bits, byte[] packed, int packedOff);

    /** Inverse of {@link #pack}. */
    void unpack(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff);

    /**
     * Packs {@code n} 4-bit codes (n even) two per byte in bitsandbytes' order: code {@code 2j} in the high nibble of
     * byte {@code j}, code {@code 2j + 1} in its low nibble.
     */
    void packHighFirst4(byte[] codes, int codesOff, int n, byte[] packed, int packedOff);

    /** Sum of {@code a[i] * b[i]}. */
    float dot(float[] a, int aOff, float[] b, int bOff, int len);

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
     * 8 ...]}. Each activation vector loaded meets both rows, halving the activation traffic per product. The default
     * is two {@link #dotNibbles8} calls.
     */
    default void dotNibbles2x8(
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
            int outOff) {
        dotNibbles8(packed, byteOff0, xPrepared, xOff, ldx, n, groupSize, scales, sOff0, out, outOff);
        dotNibbles8(packed, byteOff1, xPrepared, xOff, ldx, n, groupSize, scales, sOff1, out, outOff + 8);
    }

    /**
     * Dot products of {@code m} rows of {@code A} with {@code n} rows of {@code B} (both row-major, length {@code len}):
     * {@code c[cOff + i * cRowStride + j * cColStride] = sum_t A(i, t) B(j, t)}, {@code A(i, t) = a[aOff + i * lda +
     * t]}, {@code B(j, t) = b[bOff + j * ldb + t]}. For batches on decoded weight rows: every loaded value meets
     * several others in registers. Float sums: implementations differ by rounding.
     */
    void dotMany(
            int m,
            int n,
            int len,
            float[] a,
            int aOff,
            int lda,
            float[] b,
            int bOff,
            int ldb,
            float[] c,
            int cOff,
            int cRowStride,
            int cColStride);

    /** {@code y[yOff + i] += alpha * x[xOff + i]} for {@code i < len}, one fused multiply-add per element. */
    void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int len);

    /**
     * Dense block product {@code C += A B}, the building block of the Hessian, Cholesky and GPTQ updates:
     *
     * <pre>
     * for i &lt; m, j &lt; n:   C(i, j) = fma(A(i, k-1), B(k-1, j), ... fma(A(i, 0), B(0, j), C(i, j)))
     * A(i, t) = a[aOff + i * aRowStride + t * aColStride]    row-major A: (lda, 1); A as its transpose: (1, lda)
     * B(t, j) = b[bOff + t * ldb + j]                         row-major
     * C(i, j) = c[cOff + i * ldc + j]                         row-major
     * </pre>
     *
     * Every element is one chain of fused multiply-adds over {@code t} in increasing order, starting from its value in
     * {@code C}, so all implementations give bit-identical results. Callers block {@code k} to a few hundred so that a
     * strip of {@code B} stays in cache.
     */
    void gemmAcc(
            int m,
            int n,
            int k,
            float[] a,
            int aOff,
            int aRowStride,
            int aColStride,
            float[] b,
            int bOff,
            int ldb,
            float[] c,
            int cOff,
            int ldc);

    /** Sum of {@code x[i]^2}. */
    float sumSquares(float[] x, int off, int len);

    /** Index in the {@link #diffStats} result: sum of {@code (a[i] - b[i])^2}. */
    int SUM_SQ_DIFF = 0;

    /** Sum of {@code |a[i] - b[i]|}. */
    int SUM_ABS_DIFF = 1;

    /** Largest {@code |a[i] - b[i]|} (0 for {@code len == 0}). */
    int MAX_ABS_DIFF = 2;

    /** Sum of {@code a[i]^2}. */
    int SUM_SQ_A = 3;

    /** Sum of {@code b[i]^2}. */
    int SUM_SQ_B = 4;

    /** Sum of {@code a[i] * b[i]}. */
    int SUM_AB = 5;

    /**
     * Everything the error metrics need from a reference {@code a} and an approximation {@code b}, in one pass: writes
     * the six sums indexed by {@link #SUM_SQ_DIFF} ... {@link #SUM_AB} to {@code out[0..5]}.
     */
    void diffStats(float[] a, int aOff, float[] b, int bOff, int len, float[] out);

    /** Packs a minimum and a maximum into one long (no allocation in hot loops). */
    static long packMinMax(float min, float max) {
        return ((long) Float.floatToRawIntBits(min) << 32) | (Float.floatToRawIntBits(max) & 0xFFFFFFFFL);
    }

    /** The minimum of a {@link #minMax} result. */
    static float min(long minMax) {
        return Float.intBitsToFloat((int) (minMax >>> 32));
    }

    /** The maximum of a {@link #minMax} result. */
    static float max(long minMax) {
        return Float.intBitsToFloat((int) minMax);
    }

    /** Number of packed bytes for {@code n} codes of {@code bits} bits. */
    static int packedBytes(long n, int bits) {
        return Math.toIntExact((n * bits + 7) >>> 3);
    }
}
