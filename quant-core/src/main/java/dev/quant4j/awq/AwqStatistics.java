package dev.quant4j.awq;

import dev.quant4j.linalg.GramAccumulator;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;

/**
 * What AWQ needs from a layer's calibration inputs, streamed batch by batch without keeping {@code X [tokens, in]}:
 *
 * <ul>
 *   <li>the mean of {@code |x|} per input channel, llm-awq's {@code get_act_scale} ({@code auto_scale.py});
 *   <li>{@code X^T X}, from which the scale search's loss, the mean squared output error over all tokens, follows
 *       exactly for any candidate weight: {@code sum_t ||(W - W') x_t||^2 = sum_r d_r^T (X^T X) d_r};
 *   <li>the clip search's token sample, as llm-awq's {@code auto_clip_layer} takes it: every {@code (tokens / 512)}-th
 *       token, from the first. Its stride depends on the total, so the total is declared up front; with fewer than
 *       512 tokens every token is taken (where the reference fails on a zero stride).
 * </ul>
 */
public final class AwqStatistics {

    /** llm-awq's {@code n_sample_token}. */
    public static final int N_SAMPLE_TOKEN = 512;

    private final String name;
    private final int columns;
    private final long expectedTokens;
    private final long stride;
    private final double[] sumAbs;
    private final GramAccumulator gram;
    private final List<float[]> sample = new ArrayList<>();
    private long tokens;

    /**
     * Statistics for a layer with {@code columns} input features that will see {@code expectedTokens} calibration
     * tokens in all.
     */
    public AwqStatistics(String name, int columns, long expectedTokens) {
        this(name, columns, expectedTokens, ForkJoinPool.commonPool());
    }

    public AwqStatistics(String name, int columns, long expectedTokens, ForkJoinPool pool) {
        if (expectedTokens < 1) {
            throw new IllegalArgumentException(
                    "layer '" + name + "': expected calibration tokens must be positive, got " + expectedTokens);
        }
        this.name = name;
        this.columns = columns;
        this.expectedTokens = expectedTokens;
        this.stride = Math.max(1, expectedTokens / N_SAMPLE_TOKEN);
        this.gram = new GramAccumulator(name, columns, pool); // checks columns
        this.sumAbs = new double[columns];
    }

    /** Adds a batch {@code x [n, columns]}, one row per token. */
    public void add(FloatMatrix x) {
        if (tokens + x.rows() > expectedTokens) {
            throw new IllegalArgumentException("layer '" + name + "': " + (tokens + x.rows())
                    + " calibration tokens, more than the " + expectedTokens + " declared");
        }
        gram.add(x); // checks the width and finiteness, naming the bad entry
        for (int t = 0; t < x.rows(); t++) {
            int off = x.rowOffset(t);
            for (int c = 0; c < columns; c++) {
                sumAbs[c] += Math.abs(x.array()[off + c]);
            }
            if ((tokens + t) % stride == 0) {
                float[] row = new float[columns];
                System.arraycopy(x.array(), off, row, 0, columns);
                sample.add(row);
            }
        }
        tokens += x.rows();
    }

    public String name() {
        return name;
    }

    public int columns() {
        return columns;
    }

    public long tokens() {
        return tokens;
    }

    /** The mean of {@code |x|} per input channel over the tokens added. */
    public float[] meanAbs() {
        requireComplete();
        float[] m = new float[columns];
        for (int c = 0; c < columns; c++) {
            m[c] = (float) (sumAbs[c] / tokens);
        }
        return m;
    }

    /** The clip search's tokens, {@code [samples, columns]}. */
    FloatMatrix sample() {
        requireComplete();
        float[] data = new float[sample.size() * columns];
        for (int t = 0; t < sample.size(); t++) {
            System.arraycopy(sample.get(t), 0, data, t * columns, columns);
        }
        return FloatMatrix.of(name + ".sample", sample.size(), columns, data, 0);
    }

    /** {@code sum_t ||(W - W') x_t||^2} over all tokens added. */
    double outputError(FloatMatrix w, FloatMatrix wPrime) {
        return gram.outputError(w, wPrime);
    }

    /** The output error of a quantized tensor, as {@link #outputError(FloatMatrix, FloatMatrix)}. */
    double outputError(FloatMatrix w, QuantizedTensor q) {
        return outputError(w, q.dequantize());
    }

    /**
     * AWQ's loss for a candidate weight {@code wPrime}: {@code mean((X W^T - X W'^T)^2)} over all tokens added and all
     * output channels, computed from {@code X^T X}.
     */
    public double meanSquaredOutputError(FloatMatrix w, FloatMatrix wPrime) {
        requireComplete();
        return outputError(w, wPrime) / ((double) tokens * w.rows());
    }

    private void requireComplete() {
        if (tokens != expectedTokens) {
            throw new IllegalStateException("layer '" + name + "': " + tokens + " calibration tokens added, "
                    + expectedTokens + " declared (the clip search's sampling stride depends on the total)");
        }
    }
}
