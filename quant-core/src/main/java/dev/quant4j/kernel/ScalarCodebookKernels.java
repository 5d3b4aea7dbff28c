package dev.quant4j.kernel;

/**
 * The plain loops of {@link CodebookKernels}: the reference the vector kernels are tested against, and the fallback.
 * The vector kernels call the static loops for their tails and the static compositions for the shapes they do not
 * fuse.
 */
final class ScalarCodebookKernels implements CodebookKernels {

    private static final StatisticsKernels STATISTICS = new ScalarStatisticsKernels();

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
        encodeLoop(x, off, len, inv, thresholds, signMagnitude, codes, codesOff);
    }

    /** {@link #encodeCodebook}'s loop, a count of thresholds per value; the vector kernel's scalar tail. */
    static void encodeLoop(
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
        quantizeBlocks4(
                STATISTICS, this, x, off, nBlocks, blockSize, thresholds, signMagnitude, absmax, aOff, packed, pOff);
    }

    /**
     * {@link #quantizeBlocks4} as the composition that defines it, block by block with the given kernels: {@code
     * absMax}, {@code encodeCodebook} with {@code 1 / absmax}, {@code packHighFirst4}.
     */
    static void quantizeBlocks4(
            StatisticsKernels statistics,
            CodebookKernels codebook,
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
        byte[] codes = KernelScratch.codeBuffer(blockSize);
        for (int b = 0; b < nBlocks; b++) {
            int start = off + b * blockSize;
            float m = statistics.absMax(x, start, blockSize);
            absmax[aOff + b] = m;
            codebook.encodeCodebook(x, start, blockSize, 1.0f / m, thresholds, signMagnitude, codes, 0);
            codebook.packHighFirst4(codes, 0, blockSize, packed, pOff + b * (blockSize / 2));
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
        decodeBlocks4(this, packed, pOff, nBlocks, blockSize, codebook, absmax, aOff, out, outOff);
    }

    /** {@link #decodeBlocks4} as the composition that defines it: per block a table, then {@code decode4} with it. */
    static void decodeBlocks4(
            CodebookKernels kernels,
            byte[] packed,
            int pOff,
            int nBlocks,
            int blockSize,
            float[] codebook,
            float[] absmax,
            int aOff,
            float[] out,
            int outOff) {
        float[] table = KernelScratch.get(0).table; // this thread's: no garbage per call
        for (int b = 0; b < nBlocks; b++) {
            for (int c = 0; c < 16; c++) {
                table[c] = codebook[c] * absmax[aOff + b];
            }
            kernels.decode4(packed, pOff + b * (blockSize / 2), blockSize, table, out, outOff + b * blockSize);
        }
    }

    @Override
    public void decode4(byte[] packed, int byteOff, int n, float[] table, float[] out, int outOff) {
        decode4Loop(packed, byteOff, n, table, out, outOff);
    }

    /** {@link #decode4}'s loop; the vector kernel's scalar tail. */
    static void decode4Loop(byte[] packed, int byteOff, int n, float[] table, float[] out, int outOff) {
        for (int i = 0; i < n; i++) {
            int b = packed[byteOff + (i >>> 1)] & 0xFF;
            out[outOff + i] = table[(i & 1) == 0 ? b >>> 4 : b & 0xF];
        }
    }

    @Override
    public void packHighFirst4(byte[] codes, int codesOff, int n, byte[] packed, int packedOff) {
        packHighFirst4Loop(codes, codesOff, n, packed, packedOff);
    }

    /** {@link #packHighFirst4}'s loop; the vector kernel's scalar tail. */
    static void packHighFirst4Loop(byte[] codes, int codesOff, int n, byte[] packed, int packedOff) {
        for (int j = 0; j < n / 2; j++) {
            packed[packedOff + j] = (byte) (codes[codesOff + 2 * j] << 4 | codes[codesOff + 2 * j + 1] & 0xF);
        }
    }
}
