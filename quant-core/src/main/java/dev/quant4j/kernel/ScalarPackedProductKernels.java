package dev.quant4j.kernel;

/**
 * The plain loops of {@link PackedProductKernels}: the reference the vector kernels are tested against, and the
 * fallback. The vector kernels call the static compositions for the widths they do not fuse.
 */
final class ScalarPackedProductKernels implements PackedProductKernels {

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
        dotNibbles8(this, packed, byteOff, xPrepared, xOff, ldx, n, groupSize, scales, sOff, out, outOff);
    }

    /** {@link #dotNibbles8} as the eight {@code dotNibbles} calls of the given kernels that define it. */
    static void dotNibbles8(
            PackedProductKernels kernels,
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
            out[outOff + b] =
                    kernels.dotNibbles(packed, byteOff, xPrepared, xOff + b * ldx, n, groupSize, scales, sOff);
        }
    }

    @Override
    public void dotNibbles2x8(
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
        dotNibbles2x8(
                this, packed, byteOff0, byteOff1, xPrepared, xOff, ldx, n, groupSize, scales, sOff0, sOff1, out,
                outOff);
    }

    /** {@link #dotNibbles2x8} as the two {@code dotNibbles8} calls of the given kernels that define it. */
    static void dotNibbles2x8(
            PackedProductKernels kernels,
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
        kernels.dotNibbles8(packed, byteOff0, xPrepared, xOff, ldx, n, groupSize, scales, sOff0, out, outOff);
        kernels.dotNibbles8(packed, byteOff1, xPrepared, xOff, ldx, n, groupSize, scales, sOff1, out, outOff + 8);
    }
}
