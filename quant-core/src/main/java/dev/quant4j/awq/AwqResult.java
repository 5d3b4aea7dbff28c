package dev.quant4j.awq;

import dev.quant4j.quant.CalibratedQuantizer;
import dev.quant4j.quant.QuantizedTensor;
import java.util.Arrays;
import java.util.Objects;

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
 *     <p>Immutable: the arrays are copied in and out.
 */
public record AwqResult(
        QuantizedTensor tensor,
        float[] scales,
        double alpha,
        double[] lossCurve,
        double loss,
        float[] clipMax,
        double scaleSeconds,
        double clipSeconds)
        implements CalibratedQuantizer.Result {

    public AwqResult {
        Objects.requireNonNull(tensor, "tensor");
        scales = scales.clone();
        lossCurve = lossCurve.clone();
        clipMax = clipMax.clone();
    }

    @Override
    public float[] scales() {
        return scales.clone();
    }

    @Override
    public double[] lossCurve() {
        return lossCurve.clone();
    }

    @Override
    public float[] clipMax() {
        return clipMax.clone();
    }

    /** Equal findings: the same tensor, scales, alpha, losses and clip values (the timings are not compared). */
    @Override
    public boolean equals(Object o) {
        return o instanceof AwqResult r
                && tensor.equals(r.tensor)
                && Arrays.equals(scales, r.scales)
                && Double.compare(alpha, r.alpha) == 0
                && Arrays.equals(lossCurve, r.lossCurve)
                && Double.compare(loss, r.loss) == 0
                && Arrays.equals(clipMax, r.clipMax);
    }

    @Override
    public int hashCode() {
        return Objects.hash(tensor, Arrays.hashCode(scales), alpha, loss);
    }

    @Override
    public String toString() {
        return "AwqResult[" + tensor + ", alpha " + alpha + ", loss " + loss + "]";
    }
}
