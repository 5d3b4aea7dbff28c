package dev.quant4j.gptq;

import dev.quant4j.quant.QuantizedTensor;

/**
 * The outcome of GPTQ on one layer.
 *
 * @param tensor codes, scales and zero-points per row and group, and {@code g_idx} when act-order reorders groups
 * @param loss the reference's reported error: {@code sum((w - q)^2 / d^2) / 2} over all weights, {@code d} the diagonal
 *     of the upper Cholesky factor of {@code H^-1} at the column's position
 * @param diagnostics the Hessian's diagonal, dead columns, and the damping that worked
 */
public record GptqResult(QuantizedTensor tensor, double loss, GptqDiagnostics diagnostics) {}
