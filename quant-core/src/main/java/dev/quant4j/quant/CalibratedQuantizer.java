package dev.quant4j.quant;

import dev.quant4j.tensor.FloatMatrix;

/**
 * A quantizer that also takes statistics of the layer's calibration inputs: GPTQ ({@code Gptq}, with a {@code
 * HessianAccumulator}) and AWQ ({@code Awq}, with {@code AwqStatistics}). It never modifies its inputs, and its result
 * is an immutable value holding the quantized weight and what the method found on the way.
 *
 * @param <S> the statistics it needs
 * @param <R> its result
 */
@FunctionalInterface
public interface CalibratedQuantizer<S, R extends CalibratedQuantizer.Result> {

    /**
     * Quantizes {@code w [out, in]} given the statistics of its layer's inputs.
     *
     * @throws IllegalArgumentException for a non-finite weight, a shape that does not fit the scheme or the
     *     statistics, or statistics that carry no information (naming the layer)
     */
    R quantize(FloatMatrix w, S statistics);

    /** What every calibrated method returns: the quantized weight, and method-specific findings beside it. */
    interface Result {
        QuantizedWeight tensor();
    }
}
