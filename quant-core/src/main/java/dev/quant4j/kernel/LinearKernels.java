package dev.quant4j.kernel;

import static dev.quant4j.scheme.Symmetry.MINMAX;
import static dev.quant4j.scheme.Symmetry.SIGNED;
import static dev.quant4j.scheme.Symmetry.SYM;

import dev.quant4j.scheme.Symmetry;

/**
 * Linear (integer) quantization, as GPTQ's {@code quant.py}: per-group scales and zero-points, round-to-nearest codes,
 * dense bit packing of 2..8-bit codes, and decoding back to floats. Implemented by {@link ScalarLinearKernels} (the
 * reference) and {@code VectorLinearKernels}; every result is bit-identical between them.
 */
public interface LinearKernels {

    /**
     * Scale and zero-point of {@code n} groups from their minima and maxima, as GPTQ's {@code find_params} (formulas
     * in {@link #linearScale} and {@link #linearZero}): {@code scales[sOff + i]} and {@code
     * zeros[zOff + i]} (an integer held in a float) for {@code i < n}. Bit-identical across implementations.
     */
    void linearParams(
            float[] mins,
            float[] maxs,
            int n,
            int bits,
            Symmetry form,
            float[] scales,
            int sOff,
            float[] zeros,
            int zOff);

    /**
     * Round-to-nearest linear quantization, as GPTQ's {@code quant.py}: {@code q = clamp(rint(x / scale) + zero, qmin,
     * qmax)}, division in float32, rounding half to even. Codes are stored as unsigned bytes (0..255).
     */
    void quantize(float[] x, int off, int len, float scale, float zero, int qmin, int qmax, byte[] codes, int codesOff);

    /**
     * Round-to-nearest quantization of {@code groups} whole groups of {@code gsize} values from {@code x[off ...]}, as
     * {@link dev.quant4j.linear.RtnQuantizer} does a row: every group's {@link StatisticsKernels#minMax}, their {@link #linearParams}
     * in {@code form} into {@code scales[sOff + g]} and {@code zeros[zOff + g]} (the zero-point as an unsigned byte),
     * then the codes of {@link #quantize} in {@code [qmin, 2^bits - 1]}, packed as {@link #pack} writes them into
     * {@code packed[pOff ...]}. Returns false, the outputs then undefined, when a value is not finite. Bit-identical
     * to those calls, which is what the scalar implementation makes; vector implementations fuse them into passes over
     * the row with no buffer of codes in between.
     */
    boolean quantizeGroups(
            float[] x,
            int off,
            int groups,
            int gsize,
            int bits,
            Symmetry form,
            int qmin,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            byte[] packed,
            int pOff);

    /** {@code out = scale * (code - zero)} in float32, codes read as unsigned bytes. */
    void dequantize(byte[] codes, int codesOff, int len, float scale, float zero, float[] out, int outOff);

    /**
     * Dequantizes {@code n} linear codes of {@code bits} bits packed as {@link #pack} writes them (from byte {@code
     * pOff}, low bits first), in groups of {@code groupSize} ({@code n} a multiple of it): {@code out[outOff + c] = scales[sOff + g] * (code(c) - (zeros[zOff + g] & 0xFF))} in float32, {@code g
     * = c / groupSize}. Bit-identical to {@link #unpack} then {@link #dequantize} per group, which is what it replaces:
     * vector implementations decode the packed bits in registers, with no buffer of codes in between.
     */
    void dequantizeGroups(
            byte[] packed,
            int pOff,
            int n,
            int bits,
            int groupSize,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            float[] out,
            int outOff);

    /**
     * Packs {@code n} codes of {@code bits} bits densely: code {@code j} occupies bits {@code [j*bits, (j+1)*bits)} of
     * the little-endian bit stream that starts at byte {@code packedOff} (LSB first). Writes {@code ceil(n*bits/8)}
     * bytes; unused high bits of the last byte are zero. Codes must already fit in {@code bits}.
     */
    void pack(byte[] codes, int codesOff, int n, int bits, byte[] packed, int packedOff);

    /** Inverse of {@link #pack}. */
    void unpack(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff);

    /** Number of packed bytes for {@code n} codes of {@code bits} bits. */
    static int packedBytes(long n, int bits) {
        return Math.toIntExact((n * bits + 7) >>> 3);
    }

    /**
     * GPTQ's scale ({@code quant.py}, {@code find_params}), in float32, of a group whose minimum is {@code min} and
     * maximum {@code max}:
     *
     * <pre>
     * xmin = min(min, 0); xmax = max(max, 0)                     the range always contains 0
     * SYM: xmax = max(|xmin|, xmax); xmin = -xmax where xmin &lt; 0
     * xmin == xmax == 0: xmin = -1, xmax = 1                      an all-zero group
     * S = (xmax - xmin) / maxq
     * SIGNED: S = max(|min|, |max|) / (2^(bits-1) - 1), with 1 for an all-zero group
     * MINMAX (llm-awq): S = max(max - min, 1e-5) / maxq
     * </pre>
     *
     * A scale that overflows float is recomputed in double; one below {@link Float#MIN_NORMAL} is raised to it.
     */
    static float linearScale(int bits, Symmetry form, float min, float max) {
        if (form == MINMAX) {
            // llm-awq quantizer.py: scales = (max_val - min_val).clamp(min=1e-5) / max_int
            int maxq = (1 << bits) - 1;
            float range = Math.max(max - min, 1e-5f);
            return safeScale(range / maxq, (double) max - min, maxq);
        }
        if (form == SIGNED) {
            int qlimit = (1 << (bits - 1)) - 1;
            float amax = Math.max(Math.abs(min), Math.abs(max));
            if (amax == 0f) {
                amax = 1f;
            }
            return safeScale(amax / qlimit, amax, qlimit);
        }
        float xmin = Math.min(min, 0f);
        float xmax = Math.max(max, 0f);
        if (form == SYM) {
            xmax = Math.max(Math.abs(xmin), xmax);
            if (xmin < 0f) {
                xmin = -xmax;
            }
        }
        if (xmin == 0f && xmax == 0f) {
            xmin = -1f;
            xmax = 1f;
        }
        int maxq = (1 << bits) - 1;
        return safeScale((xmax - xmin) / maxq, (double) xmax - xmin, maxq);
    }

    /**
     * GPTQ's zero-point: {@code round(-xmin / S)} (ASYM, clamped to {@code [0, maxq]}), {@code (maxq + 1) / 2} (SYM),
     * {@code 2^(bits-1)} (SIGNED).
     */
    static float linearZero(int bits, Symmetry form, float min, float max, float scale) {
        int maxq = (1 << bits) - 1;
        if (form == MINMAX) {
            // zeros = (-torch.round(min_val / scales)).clamp_(0, max_int); rint is odd, so -rint(a) = rint(-a)
            float zero = (float) Math.rint(-min / scale);
            return Math.min(Math.max(zero, 0f), maxq);
        }
        if (form == SIGNED) {
            return 1 << (bits - 1);
        }
        if (form == SYM) {
            return (maxq + 1) >> 1; // an integer: maxq + 1 is a power of two
        }
        float xmin = Math.min(min, 0f);
        if (xmin == 0f && Math.max(max, 0f) == 0f) {
            xmin = -1f;
        }
        float zero = (float) Math.rint(-xmin / scale);
        return Math.min(Math.max(zero, 0f), maxq);
    }

    private static float safeScale(float scale, double range, int steps) {
        if (!Float.isFinite(scale)) {
            scale = (float) (range / steps);
        }
        return Math.max(scale, Float.MIN_NORMAL);
    }
}
