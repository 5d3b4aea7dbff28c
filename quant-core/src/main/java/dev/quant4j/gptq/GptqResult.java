package dev.quant4j.gptq;

import dev.quant4j.quant.QuantizedTensor;
import java.util.Objects;
import java.util.function.DoubleSupplier;

/**
 * The outcome of GPTQ on one layer: the quantized tensor, the reference's reported loss, the output error and the
 * diagnostics.
 */
public final class GptqResult {

    private final QuantizedTensor tensor;
    private final double loss;
    private final GptqDiagnostics diagnostics;
    private DoubleSupplier outputErrorSource;
    private double outputError = Double.NaN;

    GptqResult(QuantizedTensor tensor, double loss, GptqDiagnostics diagnostics, DoubleSupplier outputError) {
        this.tensor = Objects.requireNonNull(tensor);
        this.loss = loss;
        this.diagnostics = Objects.requireNonNull(diagnostics);
        this.outputErrorSource = Objects.requireNonNull(outputError);
    }

    /** Codes, scales and zero-points per row and group, and {@code g_idx} when act-order reorders groups. */
    public QuantizedTensor tensor() {
        return tensor;
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
    public double loss() {
        return loss;
    }

    /** The Hessian's diagonal, dead columns, the damping that worked, and timings. */
    public GptqDiagnostics diagnostics() {
        return diagnostics;
    }

    /**
     * The output error of the quantized weight. Quantized from a {@link HessianAccumulator}: {@code ||W X^T - Q
     * X^T||^2} summed over every calibration token added. From a bare {@code H}: {@code sum_r d_r^T H d_r / 2} with
     * {@code d_r} row {@code r} of {@code W - Q}, the same per token when {@code H = (2 / n) X^T X}.
     *
     * <p>Computed on the first call (about {@code rows * in^2} multiply-adds, as much as GPTQ's own updates, so it is
     * not paid unless asked for), from the weight and the Hessian passed to {@link Gptq#quantize}: do not modify
     * them before calling this.
     */
    public synchronized double outputError() {
        if (outputErrorSource != null) {
            outputError = outputErrorSource.getAsDouble();
            outputErrorSource = null; // release the inputs
        }
        return outputError;
    }

    @Override
    public String toString() {
        return "GptqResult[" + tensor + ", loss " + loss + ", " + diagnostics + "]";
    }
}
