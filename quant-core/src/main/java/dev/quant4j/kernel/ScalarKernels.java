package dev.quant4j.kernel;

/** Plain-Java reference kernels: the definition the vector kernels are tested against, and the fallback. */
public class ScalarKernels implements QuantKernels {

    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public boolean allFinite(float[] x, int off, int len) {
        for (int i = 0; i < len; i++) {
            if (!Float.isFinite(x[off + i])) {
                return false;
            }
        }
        return true;
    }

    @Override
    public long minMax(float[] x, int off, int len) {
        assert len >= 1;
        float min = x[off];
        float max = x[off];
        for (int i = 1; i < len; i++) {
            float v = x[off + i];
            min = v < min ? v : min;
            max = v > max ? v : max;
        }
        return QuantKernels.packMinMax(min, max);
    }

    @Override
    public float absMax(float[] x, int off, int len) {
        float m = 0f;
        for (int i = 0; i < len; i++) {
            float v = Math.abs(x[off + i]);
            m = v > m ? v : m;
        }
        return m;
    }

    @Override
    public void linearParams(
            float[] mins, float[] maxs, int n, int bits, int form, float[] scales, int sOff, float[] zeros, int zOff) {
        for (int i = 0; i < n; i++) {
            float scale = linearScale(bits, form, mins[i], maxs[i]);
            scales[sOff + i] = scale;
            zeros[zOff + i] = linearZero(bits, form, mins[i], maxs[i], scale);
        }
    }

    /**
     * GPTQ's scale ({@code quant.py}, {@code find_params}), in float32, of a group whose minimum is {@code min} and
     * maximum {@code max}:
     *
     * <pre>
     * xmin = min(min, 0); xmax = max(max, 0)                     the range always contains 0
     * SYM: xmax = max(|xmin|, xmax); xmin = -xmax where xmin &lt; 0
     * xmin == xmax == 0: xmin = -1, xmax = 1                      an all-zero group
     * S = (xmax - xmin) / maxq
     * SIGNED: S = max(|min|, |max|) / (2^(bits-1) - 1), with 1 for an all-zero group
     * MINMAX (llm-awq): S = max(max - min, 1e-5) / maxq
     * </pre>
     *
     * A scale that overflows float is recomputed in double; one below {@link Float#MIN_NORMAL} is raised to it.
     */
    public static float linearScale(int bits, int form, float min, float max) {
        if (form == MINMAX) {
            // llm-awq quantizer.py: scales = (max_val - min_val).clamp(min=1e-5) / max_int
            int maxq = (1 << bits) - 1;
            float range = Math.max(max - min, 1e-5f);
            return safeScale(range / maxq, (double) max - min, maxq);
        }
        if (form == SIGNED) {
            int qlimit = (1 << (bits - 1)) - 1;
            float amax = Math.max(Math.abs(min), Math.abs(max));
            if (amax == 0f) {
                amax = 1f;
            }
            return safeScale(amax / qlimit, amax, qlimit);
        }
        float xmin = Math.min(min, 0f);
        float xmax = Math.max(max, 0f);
        if (form == SYM) {
            xmax = Math.max(Math.abs(xmin), xmax);
            if (xmin < 0f) {
                xmin = -xmax;
            }
        }
        if (xmin == 0f && xmax == 0f) {
            xmin = -1f;
            xmax = 1f;
        }
        int maxq = (1 << bits) - 1;
        return safeScale((xmax - xmin) / maxq, (double) xmax - xmin, maxq);
    }

    /**
     * GPTQ's zero-point: {@code round(-xmin / S)} (ASYM, clamped to {@code [0, maxq]}), {@code (maxq + 1) / 2} (SYM),
     * {@code 2^(bits-1)} (SIGNED).
     */
    public static float linearZero(int bits, int form, float min, float max, float scale) {
        int maxq = (1 << bits) - 1;
        if (form == MINMAX) {
            // zeros = (-torch.round(min_val / scales)).clamp_(0, max_int); rint is odd, so -rint(a) = rint(-a)
            float zero = (float) Math.rint(-min / scale);
            return Math.min(Math.max(zero, 0f), maxq);
        }
        if (form == SIGNED) {
            return 1 << (bits - 1);
        }
        if (form == SYM) {
            return (maxq + 1) >> 1; // an integer: maxq + 1 is a power of two
        }
        float xmin = Math.min(min, 0f);
        if (xmin == 0f && Math.max(max, 0f) == 0f) {
            xmin = -1f;
        }
        float zero = (float) Math.rint(-xmin / scale);
        return Math.min(Math.max(zero, 0f), maxq);
    }

    private static float safeScale(float scale, double range, int steps) {
        if (!Float.isFinite(scale)) {
            scale = (float) (range / steps);
        }
        return Math.max(scale, Float.MIN_NORMAL);
    }

    @Override
    public void quantize(
            float[] x, int off, int len, float scale, float zero, int qmin, int qmax, byte[] codes, int codesOff) {
        for (int i = 0; i < len; i++) {
            float q = (float) Math.rint(x[off + i] / scale) + zero;
            q = Math.min(Math.max(q, qmin), qmax);
            codes[codesOff + i] = (byte) (int) q;
        }
    }

    @Override
    public boolean quantizeGroups(
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
            int pOff) {
        int n = groups * gsize;
        if (!allFinite(x, off, n)) {
            return false;
        }
        GroupScratch s = GroupScratch.get(groups);
        byte[] codes = s.codes(n);
        for (int g = 0; g < groups; g++) {
            long mm = minMax(x, off + g * gsize, gsize);
            s.mins[g] = QuantKernels.min(mm);
            s.maxs[g] = QuantKernels.max(mm);
        }
        linearParams(s.mins, s.maxs, groups, bits, form, scales, sOff, s.zeros, 0);
        int maxq = (1 << bits) - 1;
        for (int g = 0; g < groups; g++) {
            zeros[zOff + g] = (byte) (int) s.zeros[g];
            quantize(x, off + g * gsize, gsize, scales[sOff + g], s.zeros[g], qmin, maxq, codes, g * gsize);
        }
        pack(codes, 0, n, bits, packed, pOff);
        return true;
    }

    @Override
    public void encodeCodebook(
            float[] x,
            int off,
            int len,
            float inv,
            float[] thresholds,
            boolean signMagnitude,
            byte[] codes,
            int codesOff) {
        for (int i = 0; i < len; i++) {
            float q = x[off + i] * inv;
            float a = signMagnitude ? Math.abs(q) : q;
            int c = 0;
            for (float t : thresholds) {
                if (a > t) {
                    c++;
                }
            }
            if (signMagnitude) {
                c = (c ^ ((c & 2) << 1)) | (q < 0 ? 0b1000 : 0);
            }
            codes[codesOff + i] = (byte) c;
        }
    }

    @Override
    public void quantizeBlocks4(
            float[] x,
            int off,
            int nBlocks,
            int blockSize,
            float[] thresholds,
            boolean signMagnitude,
            float[] absmax,
            int aOff,
            byte[] packed,
            int pOff) {
        byte[] codes = codeScratch(blockSize);
        for (int b = 0; b < nBlocks; b++) {
            int start = off + b * blockSize;
            float m = absMax(x, start, blockSize);
            absmax[aOff + b] = m;
            encodeCodebook(x, start, blockSize, 1.0f / m, thresholds, signMagnitude, codes, 0);
            packHighFirst4(codes, 0, blockSize, packed, pOff + b * (blockSize / 2));
        }
    }

    @Override
    public void decodeBlocks4(
            byte[] packed,
            int pOff,
            int nBlocks,
            int blockSize,
            float[] codebook,
            float[] absmax,
            int aOff,
            float[] out,
            int outOff) {
        float[] table = GroupScratch.get(0).table; // this thread's: no garbage per call
        for (int b = 0; b < nBlocks; b++) {
            for (int c = 0; c < 16; c++) {
                table[c] = codebook[c] * absmax[aOff + b];
            }
            decode4(packed, pOff + b * (blockSize / 2), blockSize, table, out, outOff + b * blockSize);
        }
    }

    @Override
    public void decode4(byte[] packed, int byteOff, int n, float[] table, float[] out, int outOff) {
        for (int i = 0; i < n; i++) {
            int b = packed[byteOff + (i >>> 1)] & 0xFF;
            out[outOff + i] = table[(i & 1) == 0 ? b >>> 4 : b & 0xF];
        }
    }

    @Override
    public void dequantize(byte[] codes, int codesOff, int len, float scale, float zero, float[] out, int outOff) {
        for (int i = 0; i < len; i++) {
            out[outOff + i] = scale * ((codes[codesOff + i] & 0xFF) - zero);
        }
    }

    /** The bit stream of {@link #unpack}, each code dequantized as it comes out: {@code scale * (code - zero)}. */
    @Override
    public void dequantizeGroups(
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
            int outOff) {
        if (bits == 8) {
            // a code per byte: the plain loop of dequantize, which the JIT vectorizes (the bit stream below it does
            // not: 3.5 against 8.9 GiB/s in L2, the scalar fallback's speed when the Vector API module is absent)
            for (int g = 0; g < n / groupSize; g++) {
                int c = g * groupSize;
                dequantize(packed, pOff + c, groupSize, scales[sOff + g], zeros[zOff + g] & 0xFF, out, outOff + c);
            }
            return;
        }
        int mask = (1 << bits) - 1;
        long acc = 0;
        int filled = 0;
        int p = pOff;
        for (int g = 0; g < n / groupSize; g++) {
            float scale = scales[sOff + g];
            float zero = zeros[zOff + g] & 0xFF;
            for (int c = g * groupSize; c < (g + 1) * groupSize; c++) {
                if (filled < bits) {
                    acc |= (long) (packed[p++] & 0xFF) << filled;
                    filled += 8;
                }
                out[outOff + c] = scale * ((int) (acc & mask) - zero);
                acc >>>= bits;
                filled -= bits;
            }
        }
    }

    /**
     * This thread's buffer of codes, at least {@code n} bytes (contents undefined); for kernels that do not call each
     * other while holding it.
     */
    static byte[] codeScratch(int n) {
        return GroupScratch.get(0).codes(n);
    }

    @Override
    public void pack(byte[] codes, int codesOff, int n, int bits, byte[] packed, int packedOff) {
        if (bits == 8) {
            System.arraycopy(codes, codesOff, packed, packedOff, n);
            return;
        }
        long acc = 0;
        int filled = 0;
        int p = packedOff;
        for (int i = 0; i < n; i++) {
            acc |= (long) (codes[codesOff + i] & 0xFF) << filled;
            filled += bits;
            while (filled >= 8) {
                packed[p++] = (byte) acc;
                acc >>>= 8;
                filled -= 8;
            }
        }
        if (filled > 0) {
            packed[p] = (byte) acc;
        }
    }

    @Override
    public void packHighFirst4(byte[] codes, int codesOff, int n, byte[] packed, int packedOff) {
        for (int j = 0; j < n / 2; j++) {
            packed[packedOff + j] = (byte) (codes[codesOff + 2 * j] << 4 | codes[codesOff + 2 * j + 1] & 0xF);
        }
    }

    @Override
    public void unpack(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff) {
        if (bits == 8) {
            System.arraycopy(packed, packedOff, codes, codesOff, n);
            return;
        }
        int mask = (1 << bits) - 1;
        long acc = 0;
        int filled = 0;
        int p = packedOff;
        for (int i = 0; i < n; i++) {
            if (filled < bits) {
                acc |= (long) (packed[p++] & 0xFF) << filled;
                filled += 8;
            }
            codes[codesOff + i] = (byte) (acc & mask);
            acc >>>= bits;
            filled -= bits;
        }
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int len) {
        float s = 0f;
        for (int i = 0; i < len; i++) {
            s = Math.fma(a[aOff + i], b[bOff + i], s);
        }
        return s;
    }

    @Override
    public float dotNibbles(
            byte[] packed, int byteOff, float[] xPrepared, int xOff, int n, int groupSize, float[] scales, int sOff) {
        float total = 0f;
        for (int g = 0; g < n / groupSize; g++) {
            float acc = 0f;
            for (int c = g * groupSize; c < (g + 1) * groupSize; c += NIBBLE_CHUNK) {
                int b0 = byteOff + c / 2;
                for (int j = 0; j < NIBBLE_CHUNK / 2; j++) {
                    int b = packed[b0 + j];
                    acc = Math.fma(b & 0xF, xPrepared[xOff + c + j], acc);
                    acc = Math.fma((b >>> 4) & 0xF, xPrepared[xOff + c + NIBBLE_CHUNK / 2 + j], acc);
                }
            }
            total = Math.fma(scales[sOff + g], acc, total);
        }
        return total;
    }

    @Override
    public float dotNibblesInt8(
            byte[] packed,
            int byteOff,
            short[] xq,
            int xOff,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            float[] xScales,
            int dOff) {
        int half = NIBBLE_CHUNK_INT8 / 2;
        float total = 0f;
        for (int g = 0; g < n / groupSize; g++) {
            int acc = 0; // exact: at most 15 * 127 * groupSize
            for (int c = g * groupSize; c < (g + 1) * groupSize; c += NIBBLE_CHUNK_INT8) {
                int b0 = byteOff + c / 2;
                for (int j = 0; j < half; j++) {
                    int b = packed[b0 + j];
                    acc += (b & 0xF) * xq[xOff + c + j];
                    acc += ((b >>> 4) & 0xF) * xq[xOff + c + half + j];
                }
            }
            total = Math.fma((float) acc, scales[sOff + g] * xScales[dOff + g], total);
        }
        return total;
    }

    @Override
    public void dotNibbles8(
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
            int outOff) {
        for (int b = 0; b < 8; b++) {
            out[outOff + b] = dotNibbles(packed, byteOff, xPrepared, xOff + b * ldx, n, groupSize, scales, sOff);
        }
    }

    @Override
    public void dotMany(
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
            int cColStride) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                c[cOff + i * cRowStride + j * cColStride] = dot(a, aOff + i * lda, b, bOff + j * ldb, len);
            }
        }
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int len) {
        for (int i = 0; i < len; i++) {
            y[yOff + i] = Math.fma(alpha, x[xOff + i], y[yOff + i]);
        }
    }

    @Override
    public void gemmAcc(
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
            int ldc) {
        for (int i = 0; i < m; i++) {
            int ci = cOff + i * ldc;
            for (int t = 0; t < k; t++) {
                float ait = a[aOff + i * aRowStride + t * aColStride];
                int bt = bOff + t * ldb;
                for (int j = 0; j < n; j++) {
                    c[ci + j] = Math.fma(ait, b[bt + j], c[ci + j]);
                }
            }
        }
    }

    @Override
    public float sumSquares(float[] x, int off, int len) {
        return dot(x, off, x, off, len);
    }

    @Override
    public void diffStats(float[] a, int aOff, float[] b, int bOff, int len, float[] out) {
        float sqDiff = 0f;
        float absDiff = 0f;
        float maxAbs = 0f;
        float sqA = 0f;
        float sqB = 0f;
        float ab = 0f;
        for (int i = 0; i < len; i++) {
            float x = a[aOff + i];
            float y = b[bOff + i];
            float d = x - y;
            sqDiff = Math.fma(d, d, sqDiff);
            absDiff += Math.abs(d);
            maxAbs = Math.max(maxAbs, Math.abs(d));
            sqA = Math.fma(x, x, sqA);
            sqB = Math.fma(y, y, sqB);
            ab = Math.fma(x, y, ab);
        }
        out[SUM_SQ_DIFF] = sqDiff;
        out[SUM_ABS_DIFF] = absDiff;
        out[MAX_ABS_DIFF] = maxAbs;
        out[SUM_SQ_A] = sqA;
        out[SUM_SQ_B] = sqB;
        out[SUM_AB] = ab;
    }
}
