package dev.quant4j.gptq;

import dev.quant4j.internal.TrustedConstruction;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.LinearKernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.kernel.StatisticsKernels;
import dev.quant4j.linalg.Cholesky;
import dev.quant4j.linalg.GramAccumulator;
import dev.quant4j.linalg.Parallel;
import dev.quant4j.linalg.QuadraticForms;
import dev.quant4j.quant.CalibratedQuantizer;
import dev.quant4j.quant.QuantizedParts;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ForkJoinPool;

/**
 * GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers", ICLR
 * 2023, Algorithm 1), following the reference {@code fasterquant} of IST-DASLab/gptq ({@code gptq.py}) and its
 * quantizer ({@code quant.py}) step by step, with its variable names:
 *
 * <pre>
 * W [rows = out, columns = in]; H [columns, columns]
 * per channel: scale, zero from W (before dead columns are zeroed)
 * dead = diag(H) == 0:  H[dead, dead] = 1;  W[:, dead] = 0
 * static groups: scale, zero of every group from W now
 * act-order: perm = argsort(diag(H), descending); W = W[:, perm]; H = H[perm][:, perm]
 * H += percdamp * mean(diag(H)) * I;  Hinv = cholesky(cholesky_inverse(cholesky(H)), upper=True)
 * for each block [i1, i2) of blocksize columns:
 *     W1 = W[:, i1:i2] (a copy)
 *     for each column i of the block:
 *         groups: at a group's first column, scale, zero from W[:, i : i + groupsize]   (W, not W1: see below)
 *         q = scale * (clamp(round(w / scale) + zero, 0, maxq) - zero);  d = Hinv[i, i]
 *         Losses += (w - q)^2 / d^2 / 2;  err = (w - q) / d
 *         W1[:, i:] -= err Hinv[i, i:]
 *     W[:, i2:] -= Err1 Hinv[i1:i2, i2:]           the lazy batch update
 * </pre>
 *
 * <p>Conventions reproduced on purpose: group parameters are computed from {@code W}, which inside a block still holds
 * the weights as they were at the last block boundary (so a group that starts inside a block does not see the updates
 * of the block's earlier columns); per-channel parameters come from the weights before dead columns are zeroed; the
 * symmetric zero-point is {@code (maxq + 1) / 2} and the range always contains 0 ({@link
 * dev.quant4j.linear.LinearParams}). Ties in {@code diag(H)} keep ascending column order under act-order (a stable
 * sort; {@code torch.argsort} leaves tie order unspecified).
 *
 * <p>How it runs: once {@code Hinv} is known, every output row is quantized independently, so slices of rows run in
 * parallel, each holding its slice of {@code W} transposed (columns contiguous) so that a column is a vector, the
 * in-block update is an axpy and the lazy update a block product ({@link QuantKernels#gemmAcc}). Results do not depend
 * on the number of threads. {@code Hinv} is the upper Cholesky factor of {@code H^-1}, computed by {@link
 * Cholesky#upperFactorOfInverse} (one factorisation of the reversed {@code H} and one triangular inverse: the same
 * matrix as the reference's three steps, with half the arithmetic).
 *
 * <p>When the damped {@code H} is not positive definite, the damping is raised tenfold, twice (0.01, 0.1, 1 with the
 * default), with a warning each time; if all fail, a {@link HessianNotPositiveDefiniteException} names what was tried.
 */
public final class Gptq implements CalibratedQuantizer<HessianAccumulator, GptqResult> {

    private static final System.Logger LOG = System.getLogger(Gptq.class.getName());

    /** Output rows per task: a multiple of the 3-vector tile width at 128, 256 and 512 bits. */
    static final int ROW_SLICE = 192;

    /** Damping attempts: {@code percdamp}, then ten and a hundred times it. */
    static final int DAMPING_TRIES = 3;

    private final GptqConfig config;
    private final ForkJoinPool pool;
    private final QuantKernels k;

    public Gptq(GptqConfig config) {
        this(config, ForkJoinPool.commonPool());
    }

    public Gptq(GptqConfig config, ForkJoinPool pool) {
        this(config, pool, Kernels.get());
    }

    Gptq(GptqConfig config, ForkJoinPool pool, QuantKernels kernels) {
        this.config = config;
        this.pool = pool;
        this.k = kernels;
    }

    public GptqConfig config() {
        return config;
    }

    /**
     * Quantizes {@code w [out, in]} with the Hessian accumulated from its layer's calibration inputs.
     *
     * @throws IllegalArgumentException as {@link #quantize(FloatMatrix, float[])}, and when the accumulator's input
     *     features differ from {@code w}'s
     */
    @Override
    public GptqResult quantize(FloatMatrix w, HessianAccumulator hessian) {
        if (hessian.columns() != w.cols()) {
            throw new IllegalArgumentException("weight '" + w.name() + "' has " + w.cols() + " input features, the "
                    + "Hessian of '" + hessian.name() + "' has " + hessian.columns());
        }
        Quantized q = run(w, hessian.lowerHessian());
        return new GptqResult(q.tensor, q.loss, q.diagnostics);
    }

    /**
     * Quantizes {@code w [out, in]} given {@code H}, row-major {@code [in, in]} and symmetric: only its lower triangle
     * (diagonal included) is read, and it is not modified ({@link #outputError} gives the result's output error).
     *
     * @throws IllegalArgumentException for a non-finite weight or Hessian entry (naming its index), mismatched shapes,
     *     a group size that does not divide {@code in}, or a Hessian whose diagonal is all zero (no calibration token
     *     activates any input feature of the layer; a layer with only some such features is quantized with their
     *     weights set to 0, as the reference does, and {@link GptqDiagnostics#deadColumns()} counts them)
     * @throws HessianNotPositiveDefiniteException when no damping makes {@code H} positive definite
     */
    public GptqResult quantize(FloatMatrix w, float[] h) {
        long expected = (long) w.cols() * w.cols();
        if (h.length != expected) {
            throw new IllegalArgumentException("Hessian for weight '" + w.name() + "' has " + h.length + " entries, ["
                    + w.cols() + ", " + w.cols() + "] needs " + expected);
        }
        Quantized q = run(w, h.clone());
        return new GptqResult(q.tensor, q.loss, q.diagnostics);
    }

    /**
     * {@code sum_r d_r^T H d_r / 2} with {@code d_r} row {@code r} of {@code W - Q} and {@code H [in, in]} given by its
     * lower triangle: the output error per token when {@code H = (2 / n) X^T X} (what {@link
     * HessianAccumulator#outputError} gives summed over the tokens). About {@code rows * in^2} multiply-adds.
     */
    public static double outputError(FloatMatrix w, FloatMatrix q, float[] h) {
        if (w.rows() != q.rows() || w.cols() != q.cols() || h.length != (long) w.cols() * w.cols()) {
            throw new IllegalArgumentException("shapes differ: '" + w.name() + "' [" + w.rows() + ", " + w.cols()
                    + "], '" + q.name() + "' [" + q.rows() + ", " + q.cols() + "], H of " + h.length + " entries");
        }
        float[] d = GramAccumulator.difference(w, q);
        return QuadraticForms.sumOfRowForms(d, w.rows(), w.cols(), h, Kernels.get(), ForkJoinPool.commonPool()) / 2;
    }

    private record Quantized(QuantizedTensor tensor, double loss, GptqDiagnostics diagnostics) {}

    /** The algorithm; {@code H} is ours to modify. */
    private Quantized run(FloatMatrix w, float[] H) {
        w.requireFinite();
        final int rows = w.rows();
        final int columns = w.cols();
        final LinearScheme scheme = config.scheme();
        final int groupsize = config.groupSize();
        final int gpr = scheme.groupsPerRow(columns); // checks that the group size divides the columns
        final int bits = config.bits();
        final Symmetry form = config.sym() ? Symmetry.SYM : Symmetry.ASYM;
        final int blocksize = config.blocksize();
        long t0 = System.nanoTime();

        long nonFinite = 0;
        int firstBad = -1;
        for (int i = 0; i < columns; i++) {
            for (int j = 0; j <= i; j++) {
                if (!Float.isFinite(H[i * columns + j])) {
                    nonFinite++;
                    firstBad = firstBad < 0 ? i * columns + j : firstBad;
                }
            }
        }
        if (nonFinite > 0) {
            throw new IllegalArgumentException("Hessian of layer '" + w.name() + "' has " + nonFinite
                    + " NaN or infinite entries, the first at [" + firstBad / columns + ", " + firstBad % columns
                    + "]");
        }

        // per channel: find_params(W) before anything else
        float[] channelScale = null;
        float[] channelZero = null;
        if (groupsize == -1) {
            channelScale = new float[rows];
            channelZero = new float[rows];
            findParams(w.array(), w.rowOffset(0), columns, rows, columns, bits, form, channelScale, channelZero);
        }

        // dead = diag(H) == 0: H[dead, dead] = 1, W[:, dead] = 0
        boolean[] dead = new boolean[columns];
        int deadCount = 0;
        float diagMin = Float.POSITIVE_INFINITY;
        float diagMax = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < columns; i++) {
            float d = H[i * columns + i];
            diagMin = Math.min(diagMin, d);
            diagMax = Math.max(diagMax, d);
            if (d == 0f) {
                dead[i] = true;
                deadCount++;
                H[i * columns + i] = 1f;
            }
        }
        if (deadCount == columns) {
            throw new IllegalArgumentException("GPTQ layer '" + w.name() + "': the calibration data is empty for this"
                    + " layer: all " + columns + " input features are zero in every calibration token (diag(H) == 0)");
        }
        if (deadCount > 0) {
            LOG.log(
                    System.Logger.Level.WARNING,
                    "GPTQ layer '" + w.name() + "': " + deadCount + " of " + columns
                            + " input features are never activated (diag(H) == 0); their weights are set to 0");
        }
        float[] wz = w.toArray(); // W with dead columns zeroed, [rows, columns]
        if (deadCount > 0) {
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < columns; c++) {
                    if (dead[c]) {
                        wz[r * columns + c] = 0f;
                    }
                }
            }
        }

        // static groups: every group's parameters from W now, in the original column order
        float[] staticScale = null;
        float[] staticZero = null;
        if (groupsize > 0 && config.staticGroups()) {
            staticScale = new float[rows * gpr];
            staticZero = new float[rows * gpr];
            float[] s = new float[rows];
            float[] z = new float[rows];
            for (int g = 0; g < gpr; g++) {
                findParams(wz, g * groupsize, columns, rows, groupsize, bits, form, s, z);
                for (int r = 0; r < rows; r++) {
                    staticScale[r * gpr + g] = s[r];
                    staticZero[r * gpr + g] = z[r];
                }
            }
        }

        // act-order: columns by descending diag(H)
        int[] perm = new int[columns];
        Arrays.setAll(perm, i -> i);
        if (config.actOrder()) {
            float[] diag = new float[columns];
            for (int i = 0; i < columns; i++) {
                diag[i] = H[i * columns + i];
            }
            perm = Arrays.stream(perm)
                    .boxed()
                    .sorted((a, b) -> Float.compare(diag[b], diag[a]))
                    .mapToInt(Integer::intValue)
                    .toArray();
            float[] hp = new float[H.length];
            for (int i = 0; i < columns; i++) {
                for (int j = 0; j <= i; j++) {
                    int a = Math.max(perm[i], perm[j]);
                    int b = Math.min(perm[i], perm[j]);
                    hp[i * columns + j] = H[a * columns + b]; // lower triangle only
                }
            }
            H = hp;
        }

        // damping, raised until the Cholesky factorisation succeeds
        double meanDiag = 0;
        for (int i = 0; i < columns; i++) {
            meanDiag += H[i * columns + i];
        }
        meanDiag /= columns;
        List<Double> tried = new ArrayList<>();
        float[] Hinv = null;
        for (int attempt = 0; attempt < DAMPING_TRIES && Hinv == null; attempt++) {
            double percdamp = config.percdamp() * Math.pow(10, attempt);
            tried.add(percdamp);
            float damp = (float) (percdamp * meanDiag);
            float[] damped = H.clone();
            for (int i = 0; i < columns; i++) {
                damped[i * columns + i] += damp;
            }
            Hinv = Cholesky.upperFactorOfInverse(damped, columns, k, pool);
            if (Hinv == null && attempt + 1 < DAMPING_TRIES) {
                LOG.log(
                        System.Logger.Level.WARNING,
                        "GPTQ layer '" + w.name() + "': H + " + percdamp
                                + " x mean diag is not positive definite, retrying with " + percdamp * 10);
            }
        }
        if (Hinv == null) {
            throw new HessianNotPositiveDefiniteException(
                    w.name(), new GptqDiagnostics(diagMin, diagMax, deadCount, 0, tried, 0, 0));
        }
        long t1 = System.nanoTime();

        byte[] codes = new byte[rows * columns];
        float[] scales = new float[groupsize == -1 ? rows : rows * gpr];
        byte[] zeros = new byte[scales.length];
        double[] rowLoss = new double[rows];
        if (groupsize == -1) {
            for (int r = 0; r < rows; r++) {
                scales[r] = channelScale[r];
                zeros[r] = (byte) (int) channelZero[r];
            }
        } else if (staticScale != null) {
            for (int i = 0; i < scales.length; i++) {
                scales[i] = staticScale[i];
                zeros[i] = (byte) (int) staticZero[i];
            }
        }
        final float[] hinv = Hinv;
        final int[] order = perm;
        final float[] sScale = staticScale;
        final float[] sZero = staticZero;
        final float[] cScale = channelScale;
        final float[] cZero = channelZero;
        int slices = (rows + ROW_SLICE - 1) / ROW_SLICE;
        Parallel.forEach(pool, slices, slice -> {
            int r0 = slice * ROW_SLICE;
            int s = Math.min(ROW_SLICE, rows - r0);
            new Slice(
                            r0, s, rows, columns, wz, order, hinv, codes, scales, zeros, rowLoss, cScale, cZero, sScale,
                            sZero, gpr, bits, form, blocksize)
                    .run();
        });
        double loss = 0;
        for (double v : rowLoss) {
            loss += v;
        }
        loss /= 2;

        int rowBytes = LinearKernels.packedBytes(columns, bits);
        byte[] packed = new byte[rows * rowBytes];
        for (int r = 0; r < rows; r++) {
            k.pack(codes, r * columns, columns, bits, packed, r * rowBytes);
        }
        int[] gIdx = null;
        if (groupsize > 0 && config.actOrder() && !config.staticGroups()) {
            gIdx = new int[columns];
            for (int p = 0; p < columns; p++) {
                gIdx[perm[p]] = p / groupsize; // AutoGPTQ: g_idx[invperm]
            }
        }
        QuantizedTensor tensor = TrustedConstruction.get(QuantizedParts.class, QuantizedTensor.class)
                .linear(w.name(), scheme, rows, columns, PackOrder.LSB_FIRST_ROW_ALIGNED, packed, scales, zeros, gIdx);
        long t2 = System.nanoTime();
        GptqDiagnostics diagnostics =
                new GptqDiagnostics(diagMin, diagMax, deadCount, 0, tried, (t1 - t0) * 1e-9, (t2 - t1) * 1e-9);
        return new Quantized(tensor, loss, diagnostics);
    }

    /**
     * {@code find_params} of {@code rows} row segments: segment {@code r} is {@code a[off + r * stride, + len)};
     * its scale and zero-point go to {@code scale[r]} and {@code zero[r]}.
     */
    private void findParams(
            float[] a, int off, int stride, int rows, int len, int bits, Symmetry form, float[] scale, float[] zero) {
        float[] mins = new float[rows];
        float[] maxs = new float[rows];
        for (int r = 0; r < rows; r++) {
            long mm = k.minMax(a, off + r * stride, len);
            mins[r] = StatisticsKernels.min(mm);
            maxs[r] = StatisticsKernels.max(mm);
        }
        k.linearParams(mins, maxs, rows, bits, form, scale, 0, zero, 0);
        if (config.mse()) {
            for (int r = 0; r < rows; r++) {
                mseSearch(a, off + r * stride, 1, len, mins[r], maxs[r], bits, form, scale, zero, r);
            }
        }
    }

    /**
     * {@code find_params} with {@code mse=True} (IST-DASLab/gptq {@code quant.py} at commit 2d65066: {@code grid=100,
     * maxshrink=.8, norm=2.4}) for one row segment {@code x_j = a[off + j * step]}, {@code j < len}, of minimum {@code
     * min} and maximum {@code max}; {@code scale[r]} and {@code zero[r]} hold the plain min/max parameters on entry and
     * the best shrunk ones on return:
     *
     * <pre>
     * xmin = min(min, 0), xmax = max(max, 0); sym: xmax = max(|xmin|, xmax), xmin = -xmax where xmin &lt; 0;
     * both 0: xmin = -1, xmax = 1
     * for i &lt; maxshrink * grid:  p = 1 - i / grid
     *     scale1 = (p xmax - p xmin) / maxq;  zero1 = round(-p xmin / scale1)  (sym: the zero-point as it is)
     *     err = sum_j |scale1 (clamp(round(x_j / scale1) + zero1, 0, maxq) - zero1) - x_j|^norm
     *     the first strictly smallest err wins
     * </pre>
     *
     * The signed form ({@code --signed}) has no such search in the reference and is left as it is.
     */
    static void mseSearch(
            float[] a,
            int off,
            int step,
            int len,
            float min,
            float max,
            int bits,
            Symmetry form,
            float[] scale,
            float[] zero,
            int r) {
        if (form != Symmetry.ASYM && form != Symmetry.SYM) {
            return;
        }
        boolean sym = form == Symmetry.SYM;
        int maxq = (1 << bits) - 1;
        float xmin = Math.min(min, 0f);
        float xmax = Math.max(max, 0f);
        if (sym) {
            xmax = Math.max(Math.abs(xmin), xmax);
            if (xmin < 0) {
                xmin = -xmax;
            }
        }
        if (xmin == 0f && xmax == 0f) {
            xmin = -1f;
            xmax = 1f;
        }
        double best = Double.POSITIVE_INFINITY;
        for (int i = 0; i < (int) (MSE_MAXSHRINK * MSE_GRID); i++) {
            float p = (float) (1 - (double) i / MSE_GRID);
            float xmin1 = p * xmin;
            float xmax1 = p * xmax;
            float scale1 = (xmax1 - xmin1) / maxq;
            float zero1 = sym ? zero[r] : (float) Math.rint(-xmin1 / scale1);
            double err = 0;
            for (int j = 0; j < len; j++) {
                float x = a[off + j * step];
                float q = Math.min(Math.max((float) Math.rint(x / scale1) + zero1, 0f), maxq);
                err += Math.pow(Math.abs(scale1 * (q - zero1) - x), MSE_NORM);
            }
            if (err < best) {
                best = err;
                scale[r] = scale1;
                zero[r] = zero1;
            }
        }
    }

    /** {@code quant.py}'s defaults for the {@code mse} search. */
    static final int MSE_GRID = 100;

    static final double MSE_MAXSHRINK = 0.8;

    static final double MSE_NORM = 2.4;

    /** The column loop for output rows {@code [r0, r0 + s)}, on their own transposed copy of {@code W}. */
    private final class Slice {
        final int r0;
        final int s;
        final int columns;
        final int[] perm;
        final float[] Hinv;
        final byte[] codes;
        final float[] scales;
        final byte[] zeros;
        final double[] rowLoss;
        final float[] staticScale;
        final float[] staticZero;
        final int gpr;
        final int bits;
        final Symmetry form;
        final int blocksize;
        final int maxq;
        /** {@code W[r0 + r][perm[c]]} at {@code wt[c * s + r]}: the slice transposed, in quantization order. */
        final float[] wt;

        final float[] scale;
        final float[] zero;

        Slice(
                int r0,
                int s,
                int rows,
                int columns,
                float[] wz,
                int[] perm,
                float[] hinv,
                byte[] codes,
                float[] scales,
                byte[] zeros,
                double[] rowLoss,
                float[] channelScale,
                float[] channelZero,
                float[] staticScale,
                float[] staticZero,
                int gpr,
                int bits,
                Symmetry form,
                int blocksize) {
            this.r0 = r0;
            this.s = s;
            this.columns = columns;
            this.perm = perm;
            this.Hinv = hinv;
            this.codes = codes;
            this.scales = scales;
            this.zeros = zeros;
            this.rowLoss = rowLoss;
            this.staticScale = staticScale;
            this.staticZero = staticZero;
            this.gpr = gpr;
            this.bits = bits;
            this.form = form;
            this.blocksize = blocksize;
            this.maxq = (1 << bits) - 1;
            this.wt = new float[columns * s];
            for (int c = 0; c < columns; c++) {
                int src = perm[c];
                for (int r = 0; r < s; r++) {
                    wt[c * s + r] = wz[(r0 + r) * columns + src];
                }
            }
            this.scale = new float[s];
            this.zero = new float[s];
            if (channelScale != null) {
                System.arraycopy(channelScale, r0, scale, 0, s);
                System.arraycopy(channelZero, r0, zero, 0, s);
            }
        }

        void run() {
            int groupsize = config.groupSize();
            boolean staticGroups = staticScale != null;
            float[] W1 = new float[Math.min(blocksize, columns) * s];
            float[] negErr1 = new float[W1.length];
            float[] mins = new float[s];
            float[] maxs = new float[s];
            double[] loss = new double[s];
            for (int i1 = 0; i1 < columns; i1 += blocksize) {
                int i2 = Math.min(i1 + blocksize, columns);
                int count = i2 - i1;
                System.arraycopy(wt, i1 * s, W1, 0, count * s);
                for (int i = 0; i < count; i++) {
                    int col = i1 + i;
                    if (groupsize != -1) {
                        if (!staticGroups) {
                            if (col % groupsize == 0) {
                                findParams(col, Math.min(col + groupsize, columns), mins, maxs);
                                int g = col / groupsize;
                                for (int r = 0; r < s; r++) {
                                    scales[(r0 + r) * gpr + g] = scale[r];
                                    zeros[(r0 + r) * gpr + g] = (byte) (int) zero[r];
                                }
                            }
                        } else {
                            int g = perm[col] / groupsize;
                            for (int r = 0; r < s; r++) {
                                scale[r] = staticScale[(r0 + r) * gpr + g];
                                zero[r] = staticZero[(r0 + r) * gpr + g];
                            }
                        }
                    }
                    float d = Hinv[col * columns + col];
                    int dst = perm[col];
                    for (int r = 0; r < s; r++) {
                        float x = W1[i * s + r];
                        float q = (float) Math.rint(x / scale[r]) + zero[r];
                        q = Math.min(Math.max(q, 0f), maxq);
                        codes[(r0 + r) * columns + dst] = (byte) (int) q;
                        float diff = x - scale[r] * (q - zero[r]);
                        loss[r] += (double) diff * diff / ((double) d * d);
                        negErr1[i * s + r] = -(diff / d);
                    }
                    // W1[:, i:] -= err1 Hinv1[i, i:]
                    for (int j = i + 1; j < count; j++) {
                        k.axpy(Hinv[col * columns + i1 + j], negErr1, i * s, W1, j * s, s);
                    }
                }
                // W[:, i2:] -= Err1 Hinv[i1:i2, i2:], as wt[j][:] += sum_t Hinv[i1 + t][j] * negErr1[t][:]
                if (i2 < columns) {
                    k.gemmAcc(
                            columns - i2, s, count, Hinv, i1 * columns + i2, 1, columns, negErr1, 0, s, wt, i2 * s, s);
                }
            }
            for (int r = 0; r < s; r++) {
                rowLoss[r0 + r] = loss[r];
            }
        }

        /** {@code find_params(W[:, c0:c1])} for every row of the slice, from the block-boundary weights. */
        private void findParams(int c0, int c1, float[] mins, float[] maxs) {
            System.arraycopy(wt, c0 * s, mins, 0, s);
            System.arraycopy(wt, c0 * s, maxs, 0, s);
            for (int c = c0 + 1; c < c1; c++) {
                for (int r = 0; r < s; r++) {
                    float v = wt[c * s + r];
                    mins[r] = v < mins[r] ? v : mins[r];
                    maxs[r] = v > maxs[r] ? v : maxs[r];
                }
            }
            k.linearParams(mins, maxs, s, bits, form, scale, 0, zero, 0);
            if (config.mse()) {
                for (int r = 0; r < s; r++) {
                    mseSearch(wt, c0 * s + r, s, c1 - c0, mins[r], maxs[r], bits, form, scale, zero, r);
                }
            }
        }
    }
}
