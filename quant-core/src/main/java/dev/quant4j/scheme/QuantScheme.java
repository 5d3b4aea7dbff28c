package dev.quant4j.scheme;

/**
 * How a tensor is quantized. Sealed: each scheme is data with a name, never scattered constants.
 *
 * <p>{@link LinearScheme}: scale and zero-point per group; {@link CodebookScheme}: absmax per block and a 16-value
 * codebook.
 */
public sealed interface QuantScheme permits LinearScheme, CodebookScheme {

    /** Bits per code. */
    int bits();

    /** A short stable name used in file metadata, e.g. {@code linear}. */
    String kind();
}
