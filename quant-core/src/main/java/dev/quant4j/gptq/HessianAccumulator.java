package dev.quant4j.gptq;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.linalg.Parallel;
import dev.quant4j.linalg.QuadraticForms;
import dev.quant4j.tensor.FloatMatrix;
import java.util.concurrent.ForkJoinPool;

/**
 * Streams calibration activations of one linear layer and keeps only their Hessian {@code H = (2 / nsamples) X^T X}
 * ({@code X [tokens, in]}, one row per token): GPTQ's {@code add_batch}, without storing {@code X}.
 *
 * <p>The sum {@code X^T X} is accumulated in float32 by the vectorised block product (lower triangle only, a SYRK),
 * {@value #K_CHUNK} tokens at a time, packed into contiguous panels first (as GotoBLAS packs its operands), parallel
 * over row blocks; {@link #hessian()} scales it once by {@code 2 / nsamples}. The reference rescales its
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
    public static final int MAX_COLUMNS = 46340;

    /**
     * Tokens per block product. The lower triangle of the sum is read and written once per chunk, so a longer chunk
     * saves memory traffic, while a {@code K_CHUNK x PANEL} strip of {@code X} (288 KiB) must stay in L2. Measured at
     * 4096 features on this machine: 512 x 144 gave 148 GFLOP/s, 256 x 288 134, 1024 x 96 142.
     */
    private static final int K_CHUNK = 512;

    /** Features per packed panel of {@code X}: three 3-vector tiles at 512 bits, six at 256, twelve at 128. */
    private static final int PANEL = 144; // a multiple of 8: a row tile never straddles two panels

    /** Eight-feature row tiles of {@code H} per task. */
    private static final int TILES_PER_TASK = 8;

    private final String name;
    private final int columns;
    private final ForkJoinPool pool;
    private final QuantKernels kernels;
    /** Lower triangle of {@code sum X^T X}; the upper triangle holds scratch values and is never read. */
    private final float[] sum;
    /** Scratch for one chunk of {@code K_CHUNK} tokens, packed for the block product (see {@link #add}). */
    private final float[] packed;

    private long samples;
    private long tokens;

    /** An accumulator for a layer with {@code columns} input features, on the common pool. */
    public HessianAccumulator(String name, int columns) {
        this(name, columns, ForkJoinPool.commonPool());
    }

    public HessianAccumulator(String name, int columns, ForkJoinPool pool) {
        this(name, columns, pool, Kernels.get());
    }

    HessianAccumulator(String name, int columns, ForkJoinPool pool, QuantKernels kernels) {
        if (columns < 1 || columns > MAX_COLUMNS) {
            throw new IllegalArgumentException(
                    "layer '" + name + "': " + columns + " input features, must be in 1.." + MAX_COLUMNS);
        }
        this.name = name;
        this.columns = columns;
        this.pool = pool;
        this.kernels = kernels;
        this.sum = new float[columns * columns];
        this.packed = new float[columns * K_CHUNK];
    }

    public String name() {
        return name;
    }

    /** Input features: the width of every batch and of {@code H}. */
    public int columns() {
        return columns;
    }

    /** Samples counted so far (the {@code nsamples} that {@link #hessian()} divides by). */
    public long samples() {
        return samples;
    }

    /** Rows (tokens) seen so far. */
    public long tokens() {
        return tokens;
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
        if (x.cols() != columns) {
            throw new IllegalArgumentException("activations '" + x.name() + "' have " + x.cols() + " columns, layer '"
                    + name + "' has " + columns + " input features");
        }
        if (batchSamples < 1) {
            throw new IllegalArgumentException("a batch counts as at least one sample, got " + batchSamples);
        }
        x.requireFinite();
        int n = x.rows();
        float[] a = x.array();
        int tiles = (columns + 7) / 8; // row tiles of eight features
        int panels = (columns + PANEL - 1) / PANEL;
        int chunks = (tiles + TILES_PER_TASK - 1) / TILES_PER_TASK;
        for (int t0 = 0; t0 < n; t0 += K_CHUNK) {
            int kc = Math.min(K_CHUNK, n - t0);
            int xOff = x.rowOffset(t0);
            // Pack the chunk panel by panel of PANEL features, X[t][j0 + j] at j0 * kc + t * width + j, so that the
            // block product reads contiguous memory (rows of X are a page apart). A tile of eight features is part of
            // a panel, so the same packing serves as the left operand.
            Parallel.forEach(pool, panels, p -> {
                int j0 = p * PANEL;
                int width = Math.min(PANEL, columns - j0);
                int base = j0 * kc;
                for (int t = 0; t < kc; t++) {
                    System.arraycopy(a, xOff + t * columns + j0, packed, base + t * width, width);
                }
            });
            // sum[i][j] += X[t][i] * X[t][j] for j <= i (whole diagonal tiles), TILES_PER_TASK row tiles a task,
            // panels outermost so that a panel stays in L2 while the task's tiles sweep it
            Parallel.forEach(pool, chunks, ch -> {
                int tile0 = ch * TILES_PER_TASK;
                int tile1 = Math.min(tiles, tile0 + TILES_PER_TASK);
                int lastRow = Math.min(columns, 8 * tile1);
                for (int j0 = 0; j0 < lastRow; j0 += PANEL) {
                    int width = Math.min(PANEL, columns - j0);
                    for (int tile = tile0; tile < tile1; tile++) {
                        int i = 8 * tile;
                        int mt = Math.min(8, columns - i);
                        // up to the diagonal, rounded up to whole 48-column tiles (the excess lands in the unused
                        // upper triangle) so that no scalar tail runs
                        int nt = Math.min(width, (i + mt - j0 + 47) / 48 * 48);
                        if (nt > 0) {
                            // A(i + r, t) = X[t][i + r], read from the panel that holds feature i
                            int ip = i / PANEL * PANEL;
                            int iWidth = Math.min(PANEL, columns - ip);
                            kernels.gemmAcc(
                                    mt,
                                    nt,
                                    kc,
                                    packed,
                                    ip * kc + (i - ip),
                                    1,
                                    iWidth,
                                    packed,
                                    j0 * kc,
                                    width,
                                    sum,
                                    i * columns + j0,
                                    columns);
                        }
                    }
                }
            });
        }
        samples += batchSamples;
        tokens += n;
    }

    /**
     * A new full symmetric copy of {@code H = (2 / samples) sum X^T X}, row-major {@code [columns, columns]}.
     *
     * @throws IllegalStateException when nothing was added
     */
    public float[] hessian() {
        float scale = scale();
        float[] h = QuadraticForms.symmetricCopy(sum, columns);
        for (int i = 0; i < h.length; i++) {
            h[i] *= scale;
        }
        return h;
    }

    /**
     * {@code H} with only its lower triangle filled (the upper one is zero): all that GPTQ reads, without the cost of
     * mirroring a large matrix.
     */
    float[] lowerHessian() {
        float scale = scale();
        float[] h = new float[columns * columns];
        for (int i = 0; i < columns; i++) {
            for (int j = 0; j <= i; j++) {
                h[i * columns + j] = sum[i * columns + j] * scale;
            }
        }
        return h;
    }

    /** {@code H[i][j]}, read from the accumulated lower triangle. */
    float entry(int i, int j) {
        return sum[Math.max(i, j) * columns + Math.min(i, j)] * scale();
    }

    private float scale() {
        if (samples == 0) {
            throw new IllegalStateException("layer '" + name + "': no calibration activations were added");
        }
        return (float) (2.0 / samples);
    }

    /**
     * {@code ||W X^T - Q X^T||^2} summed over every token added, from the accumulated {@code X^T X} alone: {@code
     * sum_r d_r^T (X^T X) d_r} with {@code d_r} row {@code r} of {@code W - Q}; exact up to float rounding, about
     * {@code rows * columns^2} multiply-adds as block products.
     */
    public double outputError(FloatMatrix w, FloatMatrix q) {
        if (w.rows() != q.rows() || w.cols() != q.cols() || w.cols() != columns) {
            throw new IllegalArgumentException("shapes differ: '" + w.name() + "' [" + w.rows() + ", " + w.cols()
                    + "], '" + q.name() + "' [" + q.rows() + ", " + q.cols() + "], layer '" + name + "' has "
                    + columns + " input features");
        }
        if (tokens == 0) {
            throw new IllegalStateException("layer '" + name + "': no calibration activations were added");
        }
        return QuadraticForms.sumOfRowForms(difference(w, q), w.rows(), columns, sum, kernels, pool);
    }

    /** {@code W - Q}, row-major {@code [rows, cols]}. */
    static float[] difference(FloatMatrix w, FloatMatrix q) {
        int rows = w.rows();
        int cols = w.cols();
        float[] d = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            int wo = w.rowOffset(r);
            int qo = q.rowOffset(r);
            for (int c = 0; c < cols; c++) {
                d[r * cols + c] = w.array()[wo + c] - q.array()[qo + c];
            }
        }
        return d;
    }
}
