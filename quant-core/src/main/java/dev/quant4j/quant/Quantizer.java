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

    /**
     * A positive {@code p} when the columns of a weight with {@code cols} columns quantize in independent slices of
     * {@code p}: quantizing columns {@code [c, c + m p)} of every row alone, for {@code c} a multiple of {@code p}, gives
     * exactly the codes and parameters those columns get when the whole weight is quantized (the groups of
     * round-to-nearest, the blocks of a codebook that do not cross rows). 0, the default, when a weight must be
     * quantized whole. A writer that reads a weight transposed uses it to quantize it a slice of stored rows at a time.
     */
    default int independentColumns(int cols) {
        return 0;
    }
}
