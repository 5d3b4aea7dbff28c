package dev.quant4j.io;

import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.QuantScheme;
import java.util.function.LongFunction;

/**
 * A quantized weight as {@link OnnxExport} lays it out before its values are needed: its scheme and shape {@code [rows,
 * cols]}, whether every zero-point is the operator's default (then no zero_points tensor is written), whether its input
 * features are permuted into group order ({@code permuted}: a g_idx, GPTQ's act-order; a Gather of the activations and
 * a perm tensor are laid out) and whether it carries AWQ input scales ({@code inputScales}: a Mul of the activations by
 * their inverses), and its quantization, asked for by each of its tensors when that tensor is written ({@code
 * values.apply(length)}, the tensor's length in bytes). {@code known} is the quantized weight when it is at hand before
 * writing, else null.
 */
record OnnxWeightPlan(
        QuantScheme scheme,
        int rows,
        int cols,
        boolean defaultZeros,
        boolean permuted,
        boolean inputScales,
        QuantizedWeight known,
        LongFunction<QuantizedWeight> values) {

    /** A weight at hand. */
    static OnnxWeightPlan of(QuantizedWeight q) {
        boolean permuted = q instanceof QuantizedTensor t && t.hasGIdx();
        boolean inputScales = q instanceof QuantizedTensor t && t.hasInputScales();
        return new OnnxWeightPlan(
                q.scheme(), q.rows(), q.cols(), defaultZeros(q), permuted, inputScales, q, length -> q);
    }

    /** Whether every zero-point of {@code q} is {@code 2^(bits - 1)}, MatMulNBits' default (a codebook has none). */
    static boolean defaultZeros(QuantizedWeight q) {
        if (q instanceof QuantizedTensor t) {
            int mid = 1 << (t.scheme().bits() - 1);
            for (byte z : t.zeros()) {
                if ((z & 0xFF) != mid) {
                    return false;
                }
            }
        }
        return true;
    }

    QuantizedTensor linear(long length) {
        return (QuantizedTensor) values.apply(length);
    }

    CodebookTensor codebook(long length) {
        return (CodebookTensor) values.apply(length);
    }

    /** The weight at hand when it is a linear one, else null. */
    QuantizedTensor knownLinear() {
        return known instanceof QuantizedTensor q ? q : null;
    }
}
