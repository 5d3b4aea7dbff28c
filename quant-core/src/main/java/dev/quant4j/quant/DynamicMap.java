package dev.quant4j.quant;

import java.util.Arrays;

/**
 * bitsandbytes' signed 8-bit dynamic map ({@code functional.py}, {@code create_dynamic_map(signed=True,
 * max_exponent_bits=7, total_bits=8)}), the codebook double quantization stores the block absmax values with.
 *
 * <p>For each exponent {@code i = 0..6}: the {@code 2^i} midpoints of {@code torch.linspace(0.1, 1, 2^i + 1)} (float32)
 * scaled by {@code 10^(i-6)}, and their negatives; plus 0 and 1.0: 256 values, sorted ascending. Computed here the way
 * torch computes them in float32 (linspace counts up from the start in its first half and down from the end in its
 * second half).
 */
public final class DynamicMap {

    private static final float[] SIGNED = build();

    private DynamicMap() {}

    /** The 256 values, ascending (a copy). */
    public static float[] signed() {
        return SIGNED.clone();
    }

    private static float[] build() {
        float[] data = new float[256];
        int n = 0;
        for (int i = 0; i < 7; i++) {
            int items = (1 << i) + 1;
            float[] b = linspace(0.1f, 1f, items);
            float scale = (float) Math.pow(10, i - 6);
            for (int j = 0; j + 1 < items; j++) {
                float mean = (b[j] + b[j + 1]) / 2.0f;
                data[n++] = scale * mean;
                data[n++] = -scale * mean;
            }
        }
        data[n++] = 0f;
        data[n++] = 1.0f;
        if (n != 256) {
            throw new AssertionError("dynamic map has " + n + " values");
        }
        Arrays.sort(data);
        return data;
    }

    /** {@code torch.linspace} in float32. */
    static float[] linspace(float start, float end, int steps) {
        float[] out = new float[steps];
        if (steps == 1) {
            out[0] = start;
            return out;
        }
        float step = (end - start) / (steps - 1);
        int half = steps / 2;
        for (int i = 0; i < steps; i++) {
            out[i] = i < half ? start + step * i : end - step * (steps - i - 1);
        }
        return out;
    }

    /**
     * Index of the value nearest to {@code x}, the first (lowest) on a tie, as {@code argmin |x - map|} in
     * bitsandbytes' default backend ({@code quantize_blockwise}); NaN gives 0.
     */
    static int nearest(float[] map, float x) {
        int best = 0;
        float bestDist = Float.POSITIVE_INFINITY;
        for (int k = 0; k < map.length; k++) {
            float d = Math.abs(x - map[k]);
            if (d < bestDist) {
                bestDist = d;
                best = k;
            }
        }
        return best;
    }
}
