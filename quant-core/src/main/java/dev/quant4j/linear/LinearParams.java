package dev.quant4j.linear;

import dev.quant4j.kernel.LinearKernels;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;

/**
 * Scale and zero-point of one group, and the code range, computed exactly as GPTQ's {@code quant.py}
 * ({@code Quantizer.find_params}) does in float32. The code is the scalar reference kernel ({@link
 * LinearKernels#linearScale}, {@link LinearKernels#linearZero}); the vector kernels compute many groups at once.
 *
 * <pre>
 * xmin = min(min(x), 0), xmax = max(max(x), 0)         the range always contains 0
 * SYM:    xmax = max(|xmin|, xmax); xmin = -xmax where xmin &lt; 0
 * xmin == xmax == 0: xmin = -1, xmax = +1               an all-zero group
 * S = (xmax - xmin) / maxq                             float32
 * ASYM:   Z = round(-xmin / S)                         half to even
 * SYM:    Z = (maxq + 1) / 2
 * </pre>
 *
 * <p>{@link Symmetry#MINMAX} (llm-awq's {@code pseudo_quantize_tensor}, for AWQ): {@code S = max(max - min, 1e-5) /
 * maxq}, {@code Z = clamp(-round(min / S), 0, maxq)}, the range not widened to contain 0.
 *
 * <p>{@link Symmetry#SIGNED}: {@code S = max|x| / (2^(b-1) - 1)} ({@code max|x| = 1} for an all-zero group), {@code Z
 * = 2^(b-1)}, codes in {@code [Z - (2^(b-1) - 1), Z + 2^(b-1) - 1]}.
 *
 * <p>Where GPTQ would divide by a zero or subnormal scale (a range below about {@code 1e-36}, or one so wide it
 * overflows), quant4j departs from it: the scale is clamped to {@link Float#MIN_NORMAL} or recomputed in double, so a
 * scale is always positive and finite and never yields NaN.
 *
 * @param scale {@code S}, positive and finite
 * @param zero {@code Z}, an integer in {@code [0, maxq]}
 * @param qmin smallest code used
 * @param qmax largest code used
 */
public record LinearParams(float scale, int zero, int qmin, int qmax) {

    /** Parameters for a group whose minimum is {@code min} and maximum is {@code max} (both finite). */
    public static LinearParams of(LinearScheme scheme, float min, float max) {
        float scale = scale(scheme, min, max);
        return new LinearParams(scale, zero(scheme, min, max, scale), qmin(scheme), scheme.maxq());
    }

    /** The scale {@code S} of a group (see the class comment); allocation-free, for the quantizers' hot loops. */
    public static float scale(LinearScheme scheme, float min, float max) {
        return LinearKernels.linearScale(scheme.bits(), scheme.symmetry(), min, max);
    }

    /** The zero-point {@code Z} of a group given its {@link #scale}. */
    public static int zero(LinearScheme scheme, float min, float max, float scale) {
        return (int) LinearKernels.linearZero(scheme.bits(), scheme.symmetry(), min, max, scale);
    }

    /** Smallest code used: 1 for {@link Symmetry#SIGNED} (the range is symmetric around {@code Z = 2^(b-1)}), else 0. */
    public static int qmin(LinearScheme scheme) {
        return scheme.symmetry() == Symmetry.SIGNED ? 1 : 0;
    }

    /** Dequantized value of {@code code}: {@code S * (code - Z)} in float32. */
    public float dequantize(int code) {
        return scale * (code - zero);
    }
}
