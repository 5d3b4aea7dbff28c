package dev.quant4j.kernel;

/**
 * The five kernel families of one implementation behind {@link QuantKernels}: every method forwards to its family.
 * Built once per JVM by {@link Kernels} (scalar) and {@link VectorFactory} (vector); the fields are final and the
 * instance is held in a {@code static final}, so the JIT resolves each call to its family's final class.
 */
record KernelSet(
        String name,
        StatisticsKernels statistics,
        LinearKernels linear,
        CodebookKernels codebook,
        PackedProductKernels products,
        BlasKernels blas)
        implements QuantKernels {

    /** The scalar reference of every family. */
    static KernelSet scalar() {
        return new KernelSet(
                "scalar",
                new ScalarStatisticsKernels(),
                new ScalarLinearKernels(),
                new ScalarCodebookKernels(),
                new ScalarPackedProductKernels(),
                new ScalarBlasKernels());
    }

    // StatisticsKernels

    @Override
    public boolean allFinite(float[] x, int off, int len) {
        return statistics.allFinite(x, off, len);
    }

    @Override
    public long minMax(float[] x, int off, int len) {
        return statistics.minMax(x, off, len);
    }

    @Override
    public float absMax(float[] x, int off, int len) {
        return statistics.absMax(x, off, len);
    }

    @Override
    public float sumSquares(float[] x, int off, int len) {
        return statistics.sumSquares(x, off, len);
    }

    @Override
    public void diffStats(float[] a, int aOff, float[] b, int bOff, int len, float[] out) {
        statistics.diffStats(a, aOff, b, bOff, len, out);
    }

    // LinearKernels

    @Override
    public void linearParams(
            float[] mins, float[] maxs, int n, int bits, int form, float[] scales, int sOff, float[] zeros, int zOff) {
        linear.linearParams(mins, maxs, n, bits, form, scales, sOff, zeros, zOff);
    }

    @Override
    public void quantize(
            float[] x, int off, int len, float scale, float zero, int qmin, int qmax, byte[] codes, int codesOff) {
        linear.quantize(x, off, len, scale, zero, qmin, qmax, codes, codesOff);
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
        return linear.quantizeGroups(x, off, groups, gsize, bits, form, qmin, scales, sOff, zeros, zOff, packed, pOff);
    }

    @Override
    public void dequantize(byte[] codes, int codesOff, int len, float scale, float zero, float[] out, int outOff) {
        linear.dequantize(codes, codesOff, len, scale, zero, out, outOff);
    }

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
        linear.dequantizeGroups(packed, pOff, n, bits, groupSize, scales, sOff, zeros, zOff, out, outOff);
    }

    @Override
    public void pack(byte[] codes, int codesOff, int n, int bits, byte[] packed, int packedOff) {
        linear.pack(codes, codesOff, n, bits, packed, packedOff);
    }

    @Override
    public void unpack(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff) {
        linear.unpack(packed, packedOff, n, bits, codes, codesOff);
    }

    // CodebookKernels

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
        codebook.encodeCodebook(x, off, len, inv, thresholds, signMagnitude, codes, codesOff);
    }

    @Override
    public void decode4(byte[] packed, int byteOff, int n, float[] table, float[] out, int outOff) {
        codebook.decode4(packed, byteOff, n, table, out, outOff);
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
        codebook.quantizeBlocks4(x, off, nBlocks, blockSize, thresholds, signMagnitude, absmax, aOff, packed, pOff);
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
        this.codebook.decodeBlocks4(packed, pOff, nBlocks, blockSize, codebook, absmax, aOff, out, outOff);
    }

    @Override
    public void packHighFirst4(byte[] codes, int codesOff, int n, byte[] packed, int packedOff) {
        codebook.packHighFirst4(codes, codesOff, n, packed, packedOff);
    }

    // PackedProductKernels

    @Override
    public float dotNibbles(
            byte[] packed, int byteOff, float[] xPrepared, int xOff, int n, int groupSize, float[] scales, int sOff) {
        return products.dotNibbles(packed, byteOff, xPrepared, xOff, n, groupSize, scales, sOff);
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
        return products.dotNibblesInt8(packed, byteOff, xq, xOff, n, groupSize, scales, sOff, xScales, dOff);
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
        products.dotNibbles8(packed, byteOff, xPrepared, xOff, ldx, n, groupSize, scales, sOff, out, outOff);
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
        products.dotNibbles2x8(
                packed, byteOff0, byteOff1, xPrepared, xOff, ldx, n, groupSize, scales, sOff0, sOff1, out, outOff);
    }

    // BlasKernels

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int len) {
        return blas.dot(a, aOff, b, bOff, len);
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
        blas.dotMany(m, n, len, a, aOff, lda, b, bOff, ldb, c, cOff, cRowStride, cColStride);
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int len) {
        blas.axpy(alpha, x, xOff, y, yOff, len);
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
        blas.gemmAcc(m, n, k, a, aOff, aRowStride, aColStride, b, bOff, ldb, c, cOff, ldc);
    }
}
