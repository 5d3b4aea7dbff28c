package dev.quant4j.quant;

import dev.quant4j.tensor.FloatMatrix;

/** Turns a float matrix {@code W [out, in]} into a {@link QuantizedTensor}. Never modifies its input. */
@FunctionalInterface
public interface Quantizer {

    /**
     * Quantizes {@code w}.
     *
     * @throws IllegalArgumentException if {@code w} holds NaN or an infinity (naming the index), or its shape does
     *     not fit the scheme (naming both)
     */
    QuantizedTensor quantize(FloatMatrix w);
}
