package dev.quant4j.awq;

import dev.quant4j.quant.QuantizedTensor;

/**
 * The outcome of AWQ on one layer.
 *
 * @param tensor the codes, scales and zero-points of the scaled and clipped weight {@code clamp(W * s, -m, m)}, carrying
 *     {@code s} as input scales: {@link QuantizedTensor#dequantize()} gives the effective weight {@code Q(.) / s},
 *     {@link QuantizedTensor#dequantizeFolded()} the weight to use once {@code 1 / s} is folded into the previous op
 * @param scales {@code s}, one per input channel (see docs/awq.md for folding it into a LayerNorm or linear layer)
 * @param alpha the chosen ratio: {@code s = x_mean^alpha}, normalised
 * @param lossCurve the scale search's loss for {@code alpha = i / nGrid}: the mean squared output error over all
 *     calibration tokens and output channels, {@code mean((X W^T - X W'^T)^2)}
 * @param loss the same mean squared output error for the final effective weight (after clipping)
 * @param clipMax the clip search's {@code m}, per output row and group ({@code rows * groupsPerRow}, row-major)
 * @param scaleSeconds wall-clock time of the scale search
 * @param clipSeconds wall-clock time of the clip search and the final quantization
 */
public record AwqResult(
        QuantizedTensor tensor,
        float[] scales,
        double alpha,
        double[] lossCurve,
        double loss,
        float[] clipMax,
        double scaleSeconds,
        double clipSeconds) {}
