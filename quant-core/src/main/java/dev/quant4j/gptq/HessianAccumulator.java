package dev.quant4j.gptq;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.linalg.GramAccumulator;
import dev.quant4j.tensor.FloatMatrix;
import java.util.concurrent.ForkJoinPool;

/**
 * Streams calibration activations of one linear layer and keeps only their Hessian {@code H = (2 / nsamples) X^T X}
 * ({@code X [tokens, in]}, one row per token): GPTQ's {@code add_batch}, without storing {@code X}.
 *
 * <p>The sum {@code X^T X} is accumulated by a {@link GramAccumulator} (float32, lower triangle, block products);
 * {@link #hessian()} scales it once by {@code 2 / nsamples}. The reference rescales its
 * running {@code H} by {@code nsamples / (nsamples + batch)} at every batch instead: the same matrix up to float
 * rounding.
 *
 * <p>What counts as a sample: {@link #add(FloatMatrix)} counts every row (token), as the paper's {@code H = 2 X X^T}
 * averaged over tokens. The reference counts the first dimension of each input it is given, which for a {@code [batch,
 * seq, in]} activation is the number of sequences; pass that count to {@link #add(FloatMatrix, long)} to get its
 * {@code H} (and its loss) exactly. The scale of {@code H} changes neither the damping (relative to the mean diagonal)
 * nor the codes GPTQ chooses; it scales GPTQ's reported loss.
 *
 * <p>Up to {@link #MAX_COLUMNS} input features ({@code H} as one float array; 16384 features take 1 GiB).
 */
public final class HessianAccumulator {

    /** Largest number of input features: {@code columns^2} must index one Java array. */
    public static final int MAX_COLUMNS = GramAccumulator.MAX_COLUMNS;

    private final GramAccumulator gram;
    private long samples;

    /** An accumulator for a layer with {@code columns} input features, on the common pool. */
    public HessianAccumulator(String name, int columns) {
        this(name, columns, ForkJoinPool.commonPool());
    }

    public HessianAccumulator(String name, int columns, ForkJoinPool pool) {
        this(name, columns, pool, Kernels.get());
    }

    HessianAccumulator(String name, int columns, ForkJoinPool pool, QuantKernels kernels) {
        this.gram = new GramAccumulator(name, columns, pool, kernels);
    }

    public String name() {
        return gram.name();
    }

    /** Input features: the width of every batch and of {@code H}. */
    public int columns() {
        return gram.columns();
    }

    /** Samples counted so far (the {@code nsamples} that {@link #hessian()} divides by). */
    public long samples() {
        return samples;
    }

    /** Rows (tokens) seen so far. */
    public long tokens() {
        return gram.tokens();
    }

    /** Adds a batch of activations {@code x [n, columns]}, counting each row as one sample. */
    public void add(FloatMatrix x) {
        add(x, x.rows());
    }

    /**
     * Adds a batch of activations {@code x [n, columns]} and counts it as {@code batchSamples} samples (the reference's
     * {@code tmp = inp.shape[0]}: sequences, when {@code x} stacks the tokens of several sequences).
     *
     * @throws IllegalArgumentException when the width differs, a value is NaN or infinite (naming its row and column),
     *     or {@code batchSamples < 1}
     */
    public void add(FloatMatrix x, long batchSamples) {
        if (batchSamples < 1) {
            throw new IllegalArgumentException("a batch counts as at least one sample, got " + batchSamples);
        }
        gram.add(x);
        samples += batchSamples;
    }

    /**
     * A new full symmetric copy of {@code H = (2 / samples) sum X^T X}, row-major {@code [columns, columns]}.
     *
     * @throws IllegalStateException when nothing was added
     */
    public float[] hessian() {
        float[] h = lowerHessian();
        int columns = columns();
        for (int i = 0; i < columns; i++) {
            for (int j = 0; j < i; j++) {
                h[j * columns + i] = h[i * columns + j];
            }
        }
        return h;
    }

    /**
     * {@code H} with only its lower triangle filled (the upper one is zero): all that GPTQ reads, without the cost of
     * mirroring a large matrix.
     */
    float[] lowerHessian() {
        float scale = scale();
        int columns = columns();
        float[] h = new float[columns * columns];
        for (int i = 0; i < columns; i++) {
            for (int j = 0; j <= i; j++) {
                h[i * columns + j] = gram.lower(i, j) * scale;
            }
        }
        return h;
    }

    /** {@code H[i][j]}, read from the accumulated lower triangle. */
    float entry(int i, int j) {
        return gram.lower(Math.max(i, j), Math.min(i, j)) * scale();
    }

    private float scale() {
        if (samples == 0) {
            throw new IllegalStateException("layer '" + name() + "': no calibration activations were added");
        }
        return (float) (2.0 / samples);
    }

    /**
     * {@code ||W X^T - Q X^T||^2} summed over every token added, from the accumulated {@code X^T X} alone (see {@link
     * GramAccumulator#outputError}).
     */
    public double outputError(FloatMatrix w, FloatMatrix q) {
        return gram.outputError(w, q);
    }
}
