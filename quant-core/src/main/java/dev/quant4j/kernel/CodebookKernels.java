package dev.quant4j.kernel;

/**
 * Codebook (NF4, FP4) quantization as bitsandbytes does it: codes by counting decision thresholds, blockwise absmax
 * scaling, 4-bit packing high nibble first, and decoding by table. Implemented by {@link ScalarCodebookKernels} (the
 * reference) and {@code VectorCodebookKernels}; every result is bit-identical between them.
 */
public interface CodebookKernels {

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

    /**
     * Packs {@code n} 4-bit codes (n even) two per byte in bitsandbytes' order: code {@code 2j} in the high nibble of
     * byte {@code j}, code {@code 2j + 1} in its low nibble.
     */
    void packHighFirst4(byte[] codes, int codesOff, int n, byte[] packed, int packedOff);
}
