package dev.quant4j.awq;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.LinearKernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.linalg.Parallel;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.CalibratedQuantizer;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.util.concurrent.ForkJoinPool;

/**
 * AWQ (Lin et al., "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration", MLSys 2024) on
 * one linear layer, following mit-han-lab/llm-awq: {@code auto_scale.py} ({@code _search_module_scale} with the layer
 * itself as the module to inspect), {@code auto_clip.py} ({@code auto_clip_layer}) and {@code quantizer.py} ({@code
 * pseudo_quantize_tensor}, zero point, i.e. {@link dev.quant4j.scheme.Symmetry#MINMAX}).
 *
 * <pre>
 * x_max = mean |x| per input channel
 * for ratio = i / n_grid, i &lt; n_grid:                                     the scale search
 *     s = clamp(x_max^ratio, min=1e-4);  s = s / sqrt(max(s) * min(s))
 *     W' = Q(W * s) / s;  loss = mean((X W^T - X W'^T)^2)                 over all tokens and outputs
 *     the first strictly smallest loss wins
 * W = W * s;  X = X / s                                                   applied (s folds into the previous op)
 * for each output row and group, org_max = max |w|:                       the clip search, on the token sample
 *     for i &lt; max_shrink * n_grid: m = org_max * (1 - i / n_grid)
 *         err = mean over tokens of (x . Q(clamp(w, -m, m)) - x . w)^2;  the first strictly smallest wins
 * result: Q(clamp(W * s, -m, m)), with s to fold and Q(.) / s the effective weight
 * </pre>
 *
 * <p>The scale search's loss is computed from {@code X^T X} ({@link AwqStatistics}) instead of from the outputs: the
 * same number up to float rounding, with no activations kept. The clip search's error per row and group is {@code d^T
 * S_g d / tokens} with {@code S_g} the Gram matrix of the sampled tokens' group {@code g}: again the reference's mean,
 * reassociated.
 */
public final class Awq implements CalibratedQuantizer<AwqStatistics, AwqResult> {

    private final AwqConfig config;
    private final ForkJoinPool pool;
    private final QuantKernels k;

    public Awq(AwqConfig config) {
        this(config, ForkJoinPool.commonPool());
    }

    public Awq(AwqConfig config, ForkJoinPool pool) {
        this(config, pool, Kernels.get());
    }

    Awq(AwqConfig config, ForkJoinPool pool, QuantKernels kernels) {
        this.config = config;
        this.pool = pool;
        this.k = kernels;
    }

    /**
     * Quantizes {@code w [out, in]} with the statistics of its layer's calibration inputs.
     *
     * @throws IllegalArgumentException for a non-finite weight (naming the entry), mismatched widths, a group size
     *     that does not divide {@code in}, or a loss that is not finite for any ratio
     * @throws IllegalStateException when the statistics did not receive the tokens they were declared for
     */
    @Override
    public AwqResult quantize(FloatMatrix w, AwqStatistics stats) {
        if (stats.columns() != w.cols()) {
            throw new IllegalArgumentException("weight '" + w.name() + "' has " + w.cols() + " input features, the "
                    + "statistics of '" + stats.name() + "' have " + stats.columns());
        }
        w.requireFinite();
        LinearScheme scheme = config.scheme();
        int rows = w.rows();
        int cols = w.cols();
        int groupSize = scheme.columnsPerGroup(cols); // checks that it divides
        RtnQuantizer rtn = new RtnQuantizer(scheme, pool);
        float[] xMax = stats.meanAbs();
        float[] wMean = config.duoScaling() ? wMean(w, groupSize) : null;

        // the scale search
        long t0 = System.nanoTime();
        int nGrid = config.nGrid();
        double[] history = new double[nGrid];
        double bestError = Double.POSITIVE_INFINITY;
        int bestRatio = -1;
        float[] bestScales = null;
        for (int i = 0; i < nGrid; i++) {
            double ratio = i * 1.0 / nGrid;
            float[] s = config.duoScaling() ? duoScales(xMax, wMean, ratio) : scales(xMax, ratio);
            // W' = Q(W * s) / s: the tensor with s as input scales stands for exactly that
            FloatMatrix candidate = rtn.quantize(scale(w, s)).withInputScales(s).dequantize();
            double loss = stats.meanSquaredOutputError(w, candidate);
            history[i] = loss;
            if (loss < bestError) {
                bestError = loss;
                bestRatio = i;
                bestScales = s;
            }
        }
        if (bestRatio < 0) {
            throw new IllegalArgumentException(
                    "AWQ layer '" + w.name() + "': the output error is not finite for any ratio (weights or"
                            + " activations too large for float32)");
        }
        float[] s = bestScales;
        long t1 = System.nanoTime();
        FloatMatrix ws = scale(w, s);

        // the clip search, on W * s and the sampled X / s
        int gpr = cols / groupSize;
        float[] clipMax = new float[rows * gpr];
        if (config.clip()) {
            clip(ws, stats.sample(), s, groupSize, clipMax);
        } else {
            for (int r = 0; r < rows; r++) {
                for (int g = 0; g < gpr; g++) {
                    clipMax[r * gpr + g] = k.absMax(ws.array(), ws.rowOffset(r) + g * groupSize, groupSize);
                }
            }
        }
        QuantizedTensor q = rtn.quantize(ws).withInputScales(s);
        long t2 = System.nanoTime();
        double loss = stats.meanSquaredOutputError(w, q.dequantize());
        return new AwqResult(q, s, bestRatio * 1.0 / nGrid, history, loss, clipMax, (t1 - t0) * 1e-9, (t2 - t1) * 1e-9);
    }

    /** {@code s = clamp(x_max^ratio, 1e-4)}, normalised by {@code sqrt(max(s) * min(s))}, in float32. */
    public static float[] scales(float[] xMax, double ratio) {
        float[] s = new float[xMax.length];
        float max = 0f;
        float min = Float.POSITIVE_INFINITY;
        for (int c = 0; c < s.length; c++) {
            s[c] = Math.max((float) Math.pow(xMax[c], ratio), 1e-4f);
            max = Math.max(max, s[c]);
            min = Math.min(min, s[c]);
        }
        float norm = (float) Math.sqrt(max * min);
        for (int c = 0; c < s.length; c++) {
            s[c] = s[c] / norm;
        }
        return s;
    }

    /**
     * AutoAWQ's {@code w_mean} ({@code _search_best_scale}, casper-hansen/AutoAWQ {@code awq/quantize/quantizer.py} at
     * commit {@code 93d7e8e}): every weight's magnitude relative to its group's, {@code |w| / (max_group |w| + 1e-6)},
     * averaged over the rows of each input channel. {@code groupSize} is the group width along a row (the whole row
     * for one group per row).
     */
    public static float[] wMean(FloatMatrix w, int groupSize) {
        int rows = w.rows();
        int cols = w.cols();
        double[] sum = new double[cols];
        for (int r = 0; r < rows; r++) {
            int o = w.rowOffset(r);
            for (int g = 0; g < cols; g += groupSize) {
                float max = 0f;
                for (int c = g; c < g + groupSize; c++) {
                    max = Math.max(max, Math.abs(w.array()[o + c]));
                }
                float denominator = max + 1e-6f;
                for (int c = g; c < g + groupSize; c++) {
                    sum[c] += Math.abs(w.array()[o + c]) / denominator;
                }
            }
        }
        float[] mean = new float[cols];
        for (int c = 0; c < cols; c++) {
            mean[c] = (float) (sum[c] / rows);
        }
        return mean;
    }

    /**
     * AutoAWQ's {@code duo_scaling} candidate: {@code s = clamp(x_mean^ratio / (w_mean^(1 - ratio) + 1e-4), 1e-4)},
     * normalised by {@code sqrt(max(s) * min(s))}, a non-finite entry then set to 1, in float32. At ratio 0 it is
     * {@code 1 / (w_mean + 1e-4)}, not 1: unlike llm-awq's candidates, the grid does not contain plain round-to-nearest.
     */
    public static float[] duoScales(float[] xMax, float[] wMean, double ratio) {
        float[] s = new float[xMax.length];
        float max = 0f;
        float min = Float.POSITIVE_INFINITY;
        for (int c = 0; c < s.length; c++) {
            float x = (float) Math.pow(xMax[c], ratio);
            float wm = (float) Math.pow(wMean[c], 1 - ratio) + 1e-4f;
            s[c] = Math.max(x / wm, 1e-4f);
            max = Math.max(max, s[c]);
            min = Math.min(min, s[c]);
        }
        float norm = (float) Math.sqrt(max * min);
        for (int c = 0; c < s.length; c++) {
            s[c] = s[c] / norm;
            if (!Float.isFinite(s[c])) {
                s[c] = 1f;
            }
        }
        return s;
    }

    /** {@code W * s}, column {@code c} times {@code s[c]}. */
    public static FloatMatrix scale(FloatMatrix w, float[] s) {
        FloatMatrix out = FloatMatrix.zeros(w.name(), w.rows(), w.cols());
        for (int r = 0; r < w.rows(); r++) {
            int o = w.rowOffset(r);
            for (int c = 0; c < w.cols(); c++) {
                out.array()[r * w.cols() + c] = w.array()[o + c] * s[c];
            }
        }
        return out;
    }

    /** Finds {@code m} per row and group and clamps {@code ws} to {@code [-m, m]} in place. */
    void clip(FloatMatrix ws, FloatMatrix sample, float[] s, int groupSize, float[] clipMax) {
        int rows = ws.rows();
        int cols = ws.cols();
        int gpr = cols / groupSize;
        int tokens = sample.rows();
        // X / s, then the Gram matrix of every group over the sampled tokens
        float[] xs = new float[tokens * cols];
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < cols; c++) {
                xs[t * cols + c] = sample.get(t, c) / s[c];
            }
        }
        float[][] gram = new float[gpr][];
        Parallel.forEach(pool, gpr, g -> {
            float[] sg = new float[groupSize * groupSize];
            k.gemmAcc(
                    groupSize,
                    groupSize,
                    tokens,
                    xs,
                    g * groupSize,
                    1,
                    cols,
                    xs,
                    g * groupSize,
                    cols,
                    sg,
                    0,
                    groupSize);
            gram[g] = sg;
        });
        int steps = (int) (config.maxShrink() * config.nGrid());
        int bits = config.bits();
        int maxq = (1 << bits) - 1;
        Parallel.forEach(pool, rows, r -> {
            float[] w = new float[groupSize];
            float[] d = new float[groupSize];
            for (int g = 0; g < gpr; g++) {
                int off = ws.rowOffset(r) + g * groupSize;
                System.arraycopy(ws.array(), off, w, 0, groupSize);
                float orgMax = k.absMax(w, 0, groupSize);
                float best = orgMax;
                float minErr = 1e9f; // the reference's initial min_errs
                for (int i = 0; i < steps; i++) {
                    float maxVal = orgMax * (float) (1 - i * 1.0 / config.nGrid());
                    // Q(clamp(w, -maxVal, maxVal)) with this group's own min/max parameters, inline: three kernel
                    // calls per candidate (min/max, quantize, dequantize) made the clip search 1.6x slower here
                    float lo = Float.POSITIVE_INFINITY;
                    float hi = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < groupSize; j++) {
                        float v = Math.min(Math.max(w[j], -maxVal), maxVal);
                        lo = Math.min(lo, v);
                        hi = Math.max(hi, v);
                    }
                    float scale = LinearKernels.linearScale(bits, Symmetry.MINMAX, lo, hi);
                    float zero = LinearKernels.linearZero(bits, Symmetry.MINMAX, lo, hi, scale);
                    for (int j = 0; j < groupSize; j++) {
                        float v = Math.min(Math.max(w[j], -maxVal), maxVal);
                        float q = Math.min(Math.max((float) Math.rint(v / scale) + zero, 0f), maxq);
                        d[j] = w[j] - scale * (q - zero);
                    }
                    // mean over tokens of (x . d)^2 = d^T S_g d / tokens
                    double quad = 0;
                    for (int j = 0; j < groupSize; j++) {
                        quad += (double) k.dot(gram[g], j * groupSize, d, 0, groupSize) * d[j];
                    }
                    float err = (float) (quad / tokens);
                    if (err < minErr) {
                        minErr = err;
                        best = maxVal;
                    }
                }
                clipMax[r * gpr + g] = best;
                for (int j = 0; j < groupSize; j++) {
                    ws.array()[off + j] = Math.min(Math.max(w[j], -best), best);
                }
            }
        });
    }
}
