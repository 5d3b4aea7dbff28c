package dev.quant4j.awq;

import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.function.Supplier;
import java.util.stream.IntStream;

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

    /** A quantize-dequantize of one block of values: {@code out} gets what {@code in} stands for once stored. */
    @FunctionalInterface
    public interface BlockQuantizer {
        void apply(float[] in, float[] out);
    }

    /**
     * {@code auto_clip_layer} and {@code apply_clip} as {@link #autoClipLayer(FloatMatrix, FloatMatrix, float[],
     * AwqConfig, ForkJoinPool)}, with {@code quantizer} (one block of {@code groupSize} values at a time, ggml's
     * reference quantizer of a block type for example; one instance per thread) in place of llm-awq's min/max
     * quantizer: per output row and group, among {@code m = max|w| * (1 - i / nGrid)} for {@code i < maxShrink *
     * nGrid}, the first with the smallest {@code mean over tokens of (x . (w - Q(clamp(w, -m, m))))^2}, in double.
     */
    public static Clipped autoClipLayer(
            FloatMatrix w,
            FloatMatrix sample,
            float[] s,
            int groupSize,
            double maxShrink,
            int nGrid,
            Supplier<BlockQuantizer> quantizer,
            ForkJoinPool pool) {
        if (sample.cols() != w.cols() || w.cols() % groupSize != 0) {
            throw new IllegalArgumentException("weight '" + w.name() + "' [" + w.rows() + ", " + w.cols() + "], sample"
                    + " of " + sample.cols() + " columns, groups of " + groupSize);
        }
        float[] scales = s == null ? ones(w.cols()) : s;
        w.requireFinite();
        int rows = w.rows();
        int cols = w.cols();
        int gpr = cols / groupSize;
        int tokens = sample.rows();
        double[] xs = new double[tokens * cols];
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < cols; c++) {
                xs[t * cols + c] = sample.get(t, c) / scales[c];
            }
        }
        // the Gram matrix of every group over the sampled tokens: mean (x . d)^2 = d^T S d / tokens
        double[][] gram = new double[gpr][groupSize * groupSize];
        for (int g = 0; g < gpr; g++) {
            for (int t = 0; t < tokens; t++) {
                int o = t * cols + g * groupSize;
                for (int i = 0; i < groupSize; i++) {
                    for (int j = 0; j < groupSize; j++) {
                        gram[g][i * groupSize + j] += xs[o + i] * xs[o + j];
                    }
                }
            }
        }
        float[] out = w.toArray();
        float[] maxVal = new float[rows * gpr];
        int steps = (int) (maxShrink * nGrid);
        pool.submit(() -> IntStream.range(0, rows).parallel().forEach(r -> {
                    BlockQuantizer q = quantizer.get();
                    float[] wg = new float[groupSize];
                    float[] clamped = new float[groupSize];
                    float[] back = new float[groupSize];
                    double[] d = new double[groupSize];
                    for (int g = 0; g < gpr; g++) {
                        int off = r * cols + g * groupSize;
                        System.arraycopy(out, off, wg, 0, groupSize);
                        float orgMax = 0;
                        for (float v : wg) {
                            orgMax = Math.max(orgMax, Math.abs(v));
                        }
                        float best = orgMax;
                        double minErr = 1e9;
                        for (int i = 0; i < steps; i++) {
                            float m = orgMax * (float) (1 - i * 1.0 / nGrid);
                            for (int j = 0; j < groupSize; j++) {
                                clamped[j] = Math.min(Math.max(wg[j], -m), m);
                            }
                            q.apply(clamped, back);
                            for (int j = 0; j < groupSize; j++) {
                                d[j] = (double) wg[j] - back[j];
                            }
                            double quad = 0;
                            for (int a = 0; a < groupSize; a++) {
                                double row = 0;
                                for (int b = 0; b < groupSize; b++) {
                                    row += gram[g][a * groupSize + b] * d[b];
                                }
                                quad += row * d[a];
                            }
                            double err = quad / tokens;
                            if (err < minErr) {
                                minErr = err;
                                best = m;
                            }
                        }
                        maxVal[r * gpr + g] = best;
                        for (int j = 0; j < groupSize; j++) {
                            out[off + j] = Math.min(Math.max(wg[j], -best), best);
                        }
                    }
                }))
                .join();
        return new Clipped(FloatMatrix.of(w.name(), rows, cols, out, 0), maxVal);
    }

    private static float[] ones(int n) {
        float[] o = new float[n];
        Arrays.fill(o, 1f);
        return o;
    }
}
