package dev.quant4j.awq;

import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;

/**
 * AWQ's options with llm-awq's defaults ({@code entry.py}: {@code w_bit}, {@code q_group_size} 128, {@code
 * zero_point=True}; {@code auto_scale.py}: {@code n_grid = 20}; {@code auto_clip.py}: {@code n_grid = 20}, {@code
 * max_shrink = 0.5}).
 *
 * @param bits bits per code, 2..8
 * @param groupSize -1 for one group per row, or a positive divisor of the input features
 * @param nGrid ratios {@code alpha = i / nGrid}, {@code i < nGrid}, of the scale search, and the clip grid
 * @param maxShrink the clip search tries {@code max|w| * (1 - i / nGrid)} for {@code i < maxShrink * nGrid}
 * @param clip whether to run the clip search after the scale search
 * @param duoScaling AutoAWQ's {@code duo_scaling}: candidates {@code s = x_mean^alpha / (w_mean^(1 - alpha) + 1e-4)}
 *     instead of llm-awq's {@code x_mean^alpha} ({@link Awq#duoScales}); off by default, as in llm-awq
 */
public record AwqConfig(int bits, int groupSize, int nGrid, double maxShrink, boolean clip, boolean duoScaling) {

    public AwqConfig {
        new LinearScheme(bits, Symmetry.MINMAX, groupSize == -1 ? LinearScheme.PER_CHANNEL : groupSize); // checks bits
        if (groupSize == 0 || groupSize < -1) {
            throw new IllegalArgumentException("AWQ group size must be -1 (per channel) or positive, got " + groupSize);
        }
        if (nGrid < 1) {
            throw new IllegalArgumentException("n_grid must be positive, got " + nGrid);
        }
        if (!(maxShrink >= 0 && maxShrink < 1)) {
            throw new IllegalArgumentException("max_shrink must be in [0, 1), got " + maxShrink);
        }
    }

    /** llm-awq's scale candidates ({@code duoScaling} false). */
    public AwqConfig(int bits, int groupSize, int nGrid, double maxShrink, boolean clip) {
        this(bits, groupSize, nGrid, maxShrink, clip, false);
    }

    /** llm-awq's defaults at {@code bits}: group 128, n_grid 20, max_shrink 0.5, with the clip search. */
    public static AwqConfig defaults(int bits) {
        return new AwqConfig(bits, 128, 20, 0.5, true, false);
    }

    public AwqConfig withGroupSize(int g) {
        return new AwqConfig(bits, g, nGrid, maxShrink, clip, duoScaling);
    }

    public AwqConfig withClip(boolean c) {
        return new AwqConfig(bits, groupSize, nGrid, maxShrink, c, duoScaling);
    }

    public AwqConfig withNGrid(int n) {
        return new AwqConfig(bits, groupSize, n, maxShrink, clip, duoScaling);
    }

    public AwqConfig withDuoScaling(boolean d) {
        return new AwqConfig(bits, groupSize, nGrid, maxShrink, clip, d);
    }

    /** llm-awq's quantizer ({@code pseudo_quantize_tensor}, zero point) at this group size. */
    public LinearScheme scheme() {
        return new LinearScheme(bits, Symmetry.MINMAX, groupSize == -1 ? LinearScheme.PER_CHANNEL : groupSize);
    }
}
