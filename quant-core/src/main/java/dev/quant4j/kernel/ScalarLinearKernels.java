package dev.quant4j.kernel;

import dev.quant4j.scheme.Symmetry;

/**
 * The plain loops of {@link LinearKernels}: the reference the vector kernels are tested against, and the fallback. The
 * vector kernels call the static loops for their tails and {@link #quantizeGroups(StatisticsKernels, LinearKernels,
 * float[], int, int, int, int, int, int, float[], int, byte[], int, byte[], int)} for the shapes they do not fuse.
 */
final class ScalarLinearKernels implements LinearKernels {

    private static final StatisticsKernels STATISTICS = new ScalarStatisticsKernels();

    @Override
    public void linearParams(
            float[] mins,
            float[] maxs,
            int n,
            int bits,
            Symmetry form,
            float[] scales,
            int sOff,
            float[] zeros,
            int zOff) {
        linearParamsLoop(mins, maxs, 0, n, bits, form, scales, sOff, zeros, zOff);
    }

    /** {@link #linearParams} of groups {@code [from, to)}; the vector kernel's scalar tail. */
    static void linearParamsLoop(
            float[] mins,
            float[] maxs,
            int from,
            int to,
            int bits,
            Symmetry form,
            float[] scales,
            int sOff,
            float[] zeros,
            int zOff) {
        for (int i = from; i < to; i++) {
            float scale = LinearKernels.linearScale(bits, form, mins[i], maxs[i]);
            scales[sOff + i] = scale;
            zeros[zOff + i] = LinearKernels.linearZero(bits, form, mins[i], maxs[i], scale);
        }
    }

    @Override
    public void quantize(
            float[] x, int off, int len, float scale, float zero, int qmin, int qmax, byte[] codes, int codesOff) {
        quantizeLoop(x, off, len, scale, zero, qmin, qmax, codes, codesOff);
    }

    /** {@link #quantize}'s loop; the vector kernel's scalar tail. */
    static void quantizeLoop(
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
            Symmetry form,
            int qmin,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            byte[] packed,
            int pOff) {
        return quantizeGroups(
                STATISTICS, this, x, off, groups, gsize, bits, form, qmin, scales, sOff, zeros, zOff, packed, pOff);
    }

    /**
     * {@link #quantizeGroups} as the composition that defines it, with the given kernels for the parts: {@code
     * allFinite}, every group's {@code minMax}, {@code linearParams}, {@code quantize} and {@code pack}.
     */
    static boolean quantizeGroups(
            StatisticsKernels statistics,
            LinearKernels linear,
            float[] x,
            int off,
            int groups,
            int gsize,
            int bits,
            Symmetry form,
            int qmin,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            byte[] packed,
            int pOff) {
        int n = groups * gsize;
        if (!statistics.allFinite(x, off, n)) {
            return false;
        }
        KernelScratch s = KernelScratch.get(groups);
        byte[] codes = s.codes(n);
        for (int g = 0; g < groups; g++) {
            long mm = statistics.minMax(x, off + g * gsize, gsize);
            s.mins[g] = StatisticsKernels.min(mm);
            s.maxs[g] = StatisticsKernels.max(mm);
        }
        linear.linearParams(s.mins, s.maxs, groups, bits, form, scales, sOff, s.zeros, 0);
        int maxq = (1 << bits) - 1;
        for (int g = 0; g < groups; g++) {
            zeros[zOff + g] = (byte) (int) s.zeros[g];
            linear.quantize(x, off + g * gsize, gsize, scales[sOff + g], s.zeros[g], qmin, maxq, codes, g * gsize);
        }
        linear.pack(codes, 0, n, bits, packed, pOff);
        return true;
    }

    @Override
    public void dequantize(byte[] codes, int codesOff, int len, float scale, float zero, float[] out, int outOff) {
        dequantizeLoop(codes, codesOff, len, scale, zero, out, outOff);
    }

    /** {@link #dequantize}'s loop; the vector kernel's scalar tail. */
    static void dequantizeLoop(byte[] codes, int codesOff, int len, float scale, float zero, float[] out, int outOff) {
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
                dequantizeLoop(packed, pOff + c, groupSize, scales[sOff + g], zeros[zOff + g] & 0xFF, out, outOff + c);
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

    @Override
    public void pack(byte[] codes, int codesOff, int n, int bits, byte[] packed, int packedOff) {
        packLoop(codes, codesOff, n, bits, packed, packedOff);
    }

    /** {@link #pack}'s bit stream; the vector kernel's scalar tail. */
    static void packLoop(byte[] codes, int codesOff, int n, int bits, byte[] packed, int packedOff) {
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
    public void unpack(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff) {
        unpackLoop(packed, packedOff, n, bits, codes, codesOff);
    }

    /** {@link #unpack}'s bit stream; the vector kernel's scalar tail. */
    static void unpackLoop(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff) {
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
}
