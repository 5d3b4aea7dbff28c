package dev.quant4j.scheme;

/**
 * Blockwise absmax quantization onto a 4-bit codebook (NF4 or FP4), as bitsandbytes' {@code quantize_4bit}: the
 * tensor is flattened in row-major order and cut into blocks of {@code blockSize} values (the last one may be
 * partial); each block stores its largest magnitude, and each value the code of {@code v / absmax}.
 *
 * @param codebook NF4 or FP4
 * @param blockSize a power of two from 32 to 4096 (bitsandbytes' default is 64)
 * @param doubleQuant whether the block absmax values are themselves quantized (QLoRA's double quantization, see
 *     {@link dev.quant4j.quant.DoubleQuant})
 */
public record CodebookScheme(Codebook codebook, int blockSize, boolean doubleQuant) implements QuantScheme {

    public static final int DEFAULT_BLOCK_SIZE = 64;
    public static final int MIN_BLOCK_SIZE = 32;
    public static final int MAX_BLOCK_SIZE = 4096;

    public CodebookScheme {
        if (codebook == null) {
            throw new IllegalArgumentException("codebook is null");
        }
        if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE || Integer.bitCount(blockSize) != 1) {
            throw new IllegalArgumentException("block size must be a power of two from " + MIN_BLOCK_SIZE + " to "
                    + MAX_BLOCK_SIZE + ", got " + blockSize);
        }
    }

    /** Without double quantization. */
    public CodebookScheme(Codebook codebook, int blockSize) {
        this(codebook, blockSize, false);
    }

    /** The same with double quantization. */
    public CodebookScheme withDoubleQuant() {
        return new CodebookScheme(codebook, blockSize, true);
    }

    /** NF4 with blocks of {@code blockSize}. */
    public static CodebookScheme nf4(int blockSize) {
        return new CodebookScheme(Codebook.NF4, blockSize);
    }

    /** FP4 with blocks of {@code blockSize}. */
    public static CodebookScheme fp4(int blockSize) {
        return new CodebookScheme(Codebook.FP4, blockSize);
    }

    @Override
    public int bits() {
        return 4;
    }

    @Override
    public String kind() {
        return "codebook";
    }

    /** Number of blocks for {@code n} values. */
    public long blocks(long n) {
        return (n + blockSize - 1) / blockSize;
    }

    @Override
    public String toString() {
        return codebook.name().toLowerCase(java.util.Locale.ROOT) + " block " + blockSize
                + (doubleQuant ? " double-quant" : "");
    }
}
