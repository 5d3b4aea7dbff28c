package dev.quant4j.linalg;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.tensor.FloatMatrix;
import java.util.concurrent.ForkJoinPool;

/**
 * Streams batches of activations {@code X [tokens, columns]} of one layer and keeps only {@code sum X^T X}: what GPTQ's
 * Hessian and AWQ's output error are computed from, without storing {@code X}.
 *
 * <p>The sum is accumulated in float32 by the vectorised block product (lower triangle only, a SYRK), {@value
 * #K_CHUNK} tokens at a time, packed into contiguous panels first (as GotoBLAS packs its operands), parallel over row
 * blocks. Up to {@link #MAX_COLUMNS} columns (the sum as one float array; 16384 columns take 1 GiB).
 */
public final class GramAccumulator {

    /** Largest number of columns: {@code columns^2} must index one Java array. */
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

    private long tokens;

    /** An accumulator for a layer with {@code columns} input features, on {@code pool}. */
    public GramAccumulator(String name, int columns, ForkJoinPool pool) {
        this(name, columns, pool, Kernels.get());
    }

    public GramAccumulator(String name, int columns, ForkJoinPool pool, QuantKernels kernels) {
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

    /** Columns: the width of every batch. */
    public int columns() {
        return columns;
    }

    /** Rows (tokens) added so far. */
    public long tokens() {
        return tokens;
    }

    /**
     * Adds a batch {@code x [n, columns]}.
     *
     * @throws IllegalArgumentException when the width differs or a value is NaN or infinite (naming its row and column)
     */
    public void add(FloatMatrix x) {
        if (x.cols() != columns) {
            throw new IllegalArgumentException("activations '" + x.name() + "' have " + x.cols() + " columns, layer '"
                    + name + "' has " + columns + " input features");
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
        tokens += n;
    }

    /** {@code (sum X^T X)[i][j]} for {@code j <= i}: the lower triangle; entries above the diagonal are not defined. */
    public float lower(int i, int j) {
        return sum[i * columns + j];
    }

    /** The accumulated lower triangle itself, row-major {@code [columns, columns]} (upper triangle: scratch). */
    float[] lowerSum() {
        return sum;
    }

    /**
     * {@code ||W X^T - Q X^T||^2} summed over every token added: {@code sum_r d_r^T (X^T X) d_r} with {@code d_r} row
     * {@code r} of {@code W - Q}; exact up to float rounding, about {@code rows * columns^2} multiply-adds as block
     * products.
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
    public static float[] difference(FloatMatrix w, FloatMatrix q) {
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
