package dev.quant4j.linear;

import dev.quant4j.quant.LinearScheme;
import dev.quant4j.quant.Symmetry;

/**
 * Scale and zero-point of one group, and the code range, computed exactly as GPTQ's {@code quant.py}
 * ({@code Quantizer.find_params}) does in float32.
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
        if (scheme.symmetry() == Symmetry.SIGNED) {
            int qlimit = (1 << (scheme.bits() - 1)) - 1;
            float amax = Math.max(Math.abs(min), Math.abs(max));
            if (amax == 0f) {
                amax = 1f;
            }
            return safeScale(amax / qlimit, amax, qlimit);
        }
        float xmin = rangeMin(scheme, min, max);
        float xmax = rangeMax(scheme, min, max);
        int maxq = scheme.maxq();
        return safeScale((xmax - xmin) / maxq, (double) xmax - xmin, maxq);
    }

    /** The zero-point {@code Z} of a group given its {@link #scale}. */
    public static int zero(LinearScheme scheme, float min, float max, float scale) {
        return switch (scheme.symmetry()) {
            case SIGNED -> 1 << (scheme.bits() - 1);
            case SYM -> (scheme.maxq() + 1) / 2;
            case ASYM -> {
                int zero = (int) Math.rint(-rangeMin(scheme, min, max) / scale);
                yield Math.min(Math.max(zero, 0), scheme.maxq());
            }
        };
    }

    /** Smallest code used: 1 for {@link Symmetry#SIGNED} (the range is symmetric around {@code Z = 2^(b-1)}), else 0. */
    public static int qmin(LinearScheme scheme) {
        return scheme.symmetry() == Symmetry.SIGNED ? 1 : 0;
    }

    /** GPTQ's {@code xmin}: the range contains 0; symmetric where negative; -1 for an all-zero group. */
    private static float rangeMin(LinearScheme scheme, float min, float max) {
        float xmin = Math.min(min, 0f);
        float xmax = Math.max(max, 0f);
        if (scheme.symmetry() == Symmetry.SYM && xmin < 0f) {
            xmin = -Math.max(-xmin, xmax);
        }
        return xmin == 0f && xmax == 0f ? -1f : xmin;
    }

    /** GPTQ's {@code xmax}: the range contains 0; symmetric for SYM; +1 for an all-zero group. */
    private static float rangeMax(LinearScheme scheme, float min, float max) {
        float xmin = Math.min(min, 0f);
        float xmax = Math.max(max, 0f);
        if (scheme.symmetry() == Symmetry.SYM) {
            xmax = Math.max(Math.abs(xmin), xmax);
        }
        return xmin == 0f && xmax == 0f ? 1f : xmax;
    }

    /** A scale that overflowed float is recomputed in double; one below the smallest normal float is raised to it. */
    private static float safeScale(float scale, double range, int steps) {
        if (!Float.isFinite(scale)) {
            scale = (float) (range / steps);
        }
        return Math.max(scale, Float.MIN_NORMAL);
    }

    /** Dequantized value of {@code code}: {@code S * (code - Z)} in float32. */
    public float dequantize(int code) {
        return scale * (code - zero);
    }
}
