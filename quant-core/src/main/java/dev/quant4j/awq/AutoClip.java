package dev.quant4j.awq;

import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ForkJoinPool;

/**
 * AWQ's clipping search on one linear layer of a block, as mit-han-lab/llm-awq's {@code auto_clip_layer} and {@code
 * apply_clip} ({@code awq/quantize/auto_clip.py} at commit {@code d6e797a}) run it after the block's scales were
 * applied: on the scaled weight and the layer's calibration inputs divided by the same scales. The search itself is
 * {@link Awq}'s (checked against {@code auto_clip_layer} in every row and group).
 *
 * <pre>
 * tokens = x[0 :: n // 512]
 * for each output row and group, org_max = max |w|:
 *     for i &lt; max_shrink * n_grid:  m = org_max * (1 - i / n_grid)
 *         err = mean over tokens of (x . Q(clamp(w, -m, m)) - x . w)^2;  the first strictly smallest wins
 * w = clamp(w, -m, m)
 * </pre>
 *
 * <p>llm-awq clips output rows in batches of 64 or 256 and asserts that one divides the rows; here every row is
 * searched, whatever their number.
 */
public final class AutoClip {

    private AutoClip() {}

    /**
     * The outcome on one layer.
     *
     * @param weight the clipped weight {@code clamp(W, -m, m)} per row and group
     * @param maxVal {@code m} per output row and group ({@code rows * groupsPerRow}, row-major)
     */
    public record Clipped(FloatMatrix weight, float[] maxVal) {
        public Clipped {
            maxVal = maxVal.clone();
        }

        @Override
        public float[] maxVal() {
            return maxVal.clone();
        }
    }

    /**
     * {@code auto_clip_layer}'s token sample of a layer's calibration inputs, taken in order from the concatenation of
     * {@code x}: every {@code (n / 512)}-th token of the {@code n}, from the first; every token when {@code n < 512}
     * (where the reference fails on a zero step).
     */
    public static FloatMatrix sampleTokens(String name, List<FloatMatrix> x) {
        long n = x.stream().mapToLong(FloatMatrix::rows).sum();
        long stride = Math.max(1, n / AwqStatistics.N_SAMPLE_TOKEN);
        int cols = x.get(0).cols();
        List<float[]> rows = new ArrayList<>();
        long t = 0;
        for (FloatMatrix m : x) {
            for (int r = 0; r < m.rows(); r++, t++) {
                if (t % stride == 0) {
                    rows.add(Arrays.copyOfRange(m.array(), m.rowOffset(r), m.rowOffset(r) + cols));
                }
            }
        }
        float[] data = new float[rows.size() * cols];
        for (int i = 0; i < rows.size(); i++) {
            System.arraycopy(rows.get(i), 0, data, i * cols, cols);
        }
        return FloatMatrix.of(name + ".sample", rows.size(), cols, data, 0);
    }

    /**
     * {@code auto_clip_layer} then {@code apply_clip} on {@code w [out, in]} (already multiplied by its input scales
     * {@code s}), with {@code sample} the token sample ({@link #sampleTokens}) of the layer's inputs before they were
     * divided by {@code s}: the search sees {@code sample / s}, as the reference sees its scaled inputs.
     *
     * @param s the input scales already applied to {@code w}, or null for none
     */
    public static Clipped autoClipLayer(
            FloatMatrix w, FloatMatrix sample, float[] s, AwqConfig config, ForkJoinPool pool) {
        if (sample.cols() != w.cols()) {
            throw new IllegalArgumentException("weight '" + w.name() + "' has " + w.cols() + " input features, the "
                    + "sample '" + sample.name() + "' " + sample.cols());
        }
        float[] scales = s == null ? ones(w.cols()) : s;
        w.requireFinite();
        int groupSize = config.scheme().columnsPerGroup(w.cols());
        FloatMatrix clipped = FloatMatrix.of(w.name(), w.rows(), w.cols(), w.toArray(), 0); // clipped in place
        float[] maxVal = new float[w.rows() * (w.cols() / groupSize)];
        new Awq(config, pool).clip(clipped, sample, scales, groupSize, maxVal);
        return new Clipped(clipped, maxVal);
    }

    private static float[] ones(int n) {
        float[] o = new float[n];
        Arrays.fill(o, 1f);
        return o;
    }
}
