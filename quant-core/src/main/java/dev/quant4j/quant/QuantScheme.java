package dev.quant4j.quant;

/**
 * How a tensor is quantized. Sealed: each scheme is data with a name, never scattered constants.
 *
 * <p>Schemes for codebooks (NF4, FP4) join {@link LinearScheme} in later versions.
 */
public sealed interface QuantScheme permits LinearScheme {

    /** Bits per code. */
    int bits();

    /** A short stable name used in file metadata, e.g. {@code linear}. */
    String kind();
}
