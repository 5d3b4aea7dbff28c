package dev.quant4j.gptq;

import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;

/**
 * The options of GPTQ's {@code fasterquant} and its quantizer, with the reference's defaults ({@code
 * IST-DASLab/gptq}: {@code blocksize=128, percdamp=.01, groupsize=-1, actorder=False, static_groups=False}; the
 * quantizer is asymmetric unless {@code --sym}).
 *
 * @param bits bits per code, 2..8 ({@code maxq = 2^bits - 1})
 * @param groupSize {@code -1} for one scale per output row (the reference's {@code perchannel=True}), or a positive
 *     {@code G} dividing the input features: one scale per row and group of {@code G} columns
 * @param sym the reference's symmetric form: zero-point {@code (maxq + 1) / 2}
 * @param actOrder quantize columns by descending {@code diag(H)} (the tensor then carries {@code g_idx})
 * @param staticGroups compute every group's parameters up front from the (dead-zeroed) weights instead of when the
 *     group's first column is reached; only meaningful with groups
 * @param percdamp damping added to the diagonal, as a fraction of its mean
 * @param blocksize columns per lazy batch update
 * @param mse the reference quantizer's {@code mse=True}: each row's or group's range shrunk by the factor (1, 0.99,
 *     ..., 0.21) that gives the smallest {@code sum |Q(w) - w|^2.4} ({@code quant.py}'s {@code find_params} with
 *     {@code grid=100, maxshrink=.8, norm=2.4}); off by default, as in the reference
 */
public record GptqConfig(
        int bits,
        int groupSize,
        boolean sym,
        boolean actOrder,
        boolean staticGroups,
        double percdamp,
        int blocksize,
        boolean mse) {

    public GptqConfig {
        new LinearScheme(bits, Symmetry.ASYM, groupSize == -1 ? LinearScheme.PER_CHANNEL : groupSize); // checks bits
        if (groupSize == 0 || groupSize < -1) {
            throw new IllegalArgumentException(
                    "GPTQ group size must be -1 (per channel) or positive, got " + groupSize);
        }
        if (!(percdamp > 0) || !Double.isFinite(percdamp)) {
            throw new IllegalArgumentException("percdamp must be positive and finite, got " + percdamp);
        }
        if (blocksize < 1) {
            throw new IllegalArgumentException("blocksize must be positive, got " + blocksize);
        }
    }

    /** Without the range search ({@code mse} false). */
    public GptqConfig(
            int bits,
            int groupSize,
            boolean sym,
            boolean actOrder,
            boolean staticGroups,
            double percdamp,
            int blocksize) {
        this(bits, groupSize, sym, actOrder, staticGroups, percdamp, blocksize, false);
    }

    /** The reference's defaults at {@code bits}: per channel, asymmetric, no act-order, damping 0.01, blocks of 128. */
    public static GptqConfig defaults(int bits) {
        return new GptqConfig(bits, -1, false, false, false, 0.01, 128, false);
    }

    public GptqConfig withGroupSize(int g) {
        return new GptqConfig(bits, g, sym, actOrder, staticGroups, percdamp, blocksize, mse);
    }

    public GptqConfig withSym(boolean s) {
        return new GptqConfig(bits, groupSize, s, actOrder, staticGroups, percdamp, blocksize, mse);
    }

    public GptqConfig withActOrder(boolean a) {
        return new GptqConfig(bits, groupSize, sym, a, staticGroups, percdamp, blocksize, mse);
    }

    public GptqConfig withStaticGroups(boolean s) {
        return new GptqConfig(bits, groupSize, sym, actOrder, s, percdamp, blocksize, mse);
    }

    public GptqConfig withPercdamp(double p) {
        return new GptqConfig(bits, groupSize, sym, actOrder, staticGroups, p, blocksize, mse);
    }

    public GptqConfig withBlocksize(int b) {
        return new GptqConfig(bits, groupSize, sym, actOrder, staticGroups, percdamp, b, mse);
    }

    public GptqConfig withMse(boolean m) {
        return new GptqConfig(bits, groupSize, sym, actOrder, staticGroups, percdamp, blocksize, m);
    }

    /** The linear scheme of the result: GPTQ's asymmetric or symmetric form at this group size. */
    public LinearScheme scheme() {
        return new LinearScheme(
                bits, sym ? Symmetry.SYM : Symmetry.ASYM, groupSize == -1 ? LinearScheme.PER_CHANNEL : groupSize);
    }
}
