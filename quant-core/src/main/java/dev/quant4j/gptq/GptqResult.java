package dev.quant4j.gptq;

import dev.quant4j.quant.CalibratedQuantizer;
import dev.quant4j.quant.QuantizedTensor;
import java.util.Objects;

/**
 * The outcome of GPTQ on one layer, an immutable value.
 *
 * <p>The output error of the result is not part of it (it costs as much as GPTQ's own updates): {@link
 * HessianAccumulator#outputError} gives {@code ||W X^T - Q X^T||^2} over the calibration tokens, and {@link
 * Gptq#outputError} the same from a bare {@code H}.
 *
 * @param tensor codes, scales and zero-points per row and group, and {@code g_idx} when act-order reorders groups
 * @param loss the reference's reported error (see {@link #loss()})
 * @param diagnostics the Hessian's diagonal, dead columns, the damping that worked, and timings
 */
public record GptqResult(QuantizedTensor tensor, double loss, GptqDiagnostics diagnostics)
        implements CalibratedQuantizer.Result {

    public GptqResult {
        Objects.requireNonNull(tensor, "tensor");
        Objects.requireNonNull(diagnostics, "diagnostics");
    }

    /**
     * The reference's reported error: {@code sum((w - q)^2 / d^2) / 2} over all weights, {@code d} the diagonal of
     * the upper Cholesky factor of {@code H^-1} at the column's position.
     *
     * <p>It scales with {@code H}: the reference's {@code H} averages over the sequences it is given, a {@link
     * HessianAccumulator} fed by {@link HessianAccumulator#add(dev.quant4j.tensor.FloatMatrix)} over tokens, so this
     * is the reference's figure divided by the tokens per sequence (1/2048 for 2048-token sequences). Feed the
     * accumulator with {@link HessianAccumulator#add(dev.quant4j.tensor.FloatMatrix, long)} and the sequence count to
     * get the reference's figure itself. The codes do not depend on the scale.
     */
    @Override
    public double loss() {
        return loss;
    }
}
