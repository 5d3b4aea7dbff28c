package dev.quant4j.quant;

import dev.quant4j.tensor.FloatMatrix;

/**
 * A calibration-free quantizer: turns a float matrix {@code W [out, in]} into a {@link QuantizedWeight}, never
 * modifying its input. Round-to-nearest ({@code RtnQuantizer}, giving a {@link QuantizedTensor}) and the blockwise
 * codebooks ({@code BlockwiseQuantizer}, giving a {@link CodebookTensor}) are quantizers; GPTQ and AWQ, which also
 * need statistics of the layer's inputs, are {@link CalibratedQuantizer}s.
 *
 * @param <W> the kind of weight it produces
 */
@FunctionalInterface
public interface Quantizer<W extends QuantizedWeight> {

    /**
     * Quantizes {@code w}.
     *
     * @throws IllegalArgumentException if {@code w} holds NaN or an infinity (naming the index), or its shape does
     *     not fit the scheme (naming both)
     */
    W quantize(FloatMatrix w);
}
