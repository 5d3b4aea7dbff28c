package dev.quant4j.quant;

import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;

/**
 * The library's own access to the arrays inside quantized weights: its quantizers hand over arrays they made and keep
 * no reference to (validated like the public constructors, not copied), and its products and writers read the arrays
 * in place (the caller must not modify them). Not for applications: the only instance is registered with the
 * module's non-exported {@code dev.quant4j.internal} package, from which the library's other packages take it with
 * {@code TrustedConstruction.get(QuantizedParts.class, QuantizedTensor.class)}.
 */
public interface QuantizedParts {

    /** A linear tensor owning the arrays; {@code gIdx} may be null for the natural group order. */
    QuantizedTensor linear(
            String name,
            LinearScheme scheme,
            int rows,
            int cols,
            PackOrder packOrder,
            byte[] packed,
            float[] scales,
            byte[] zeros,
            int[] gIdx);

    /** A codebook tensor owning the arrays: {@code absmax} when the scheme has no double quantization, else {@code dq}. */
    CodebookTensor codebook(
            String name, CodebookScheme scheme, int rows, int cols, byte[] packed, float[] absmax, DoubleQuant dq);

    byte[] packed(QuantizedTensor t);

    float[] scales(QuantizedTensor t);

    byte[] zeros(QuantizedTensor t);

    byte[] packed(CodebookTensor t);

    /** The absmax of every block, restored where double-quantized. */
    float[] absmax(CodebookTensor t);
}
