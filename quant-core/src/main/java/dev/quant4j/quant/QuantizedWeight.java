package dev.quant4j.quant;

import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.scheme.QuantScheme;
import dev.quant4j.tensor.FloatMatrix;

/**
 * A quantized weight matrix {@code [rows = out, cols = in]}: what every quantizer produces and every writer, reader,
 * product and metric of quant4j accepts. Sealed, so code that handles weights handles every kind (a {@code switch}
 * over the permitted classes is checked for completeness by the compiler):
 *
 * <ul>
 *   <li>{@link QuantizedTensor}: linear codes, a scale and a zero-point per group ({@link LinearScheme}: RTN, GPTQ,
 *       AWQ);
 *   <li>{@link CodebookTensor}: 4-bit codes into a 16-value codebook, an absmax per block ({@link CodebookScheme}: NF4,
 *       FP4).
 * </ul>
 *
 * <p>Instances are immutable: accessors return copies or read-only views.
 */
public sealed interface QuantizedWeight permits QuantizedTensor, CodebookTensor {

    /** The tensor's name, as in the file it came from. */
    String name();

    /** Output channels. */
    int rows();

    /** Input features. */
    int cols();

    /** How it was quantized. */
    QuantScheme scheme();

    /** How the codes are laid out in bytes. */
    PackOrder packOrder();

    /** The float32 matrix it stands for, {@code [rows, cols]}. */
    FloatMatrix dequantize();

    /** Bytes stored: codes, scales, zero-points or absmax values, and any per-column data. */
    long storageBytes();

    /** {@code 8 * storageBytes() / (rows * cols)}. */
    double bitsPerWeight();
}
