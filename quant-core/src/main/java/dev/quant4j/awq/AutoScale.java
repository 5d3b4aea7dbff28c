package dev.quant4j.awq;

import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;

/**
 * AWQ's scale search over a module and the folding of its scales, as mit-han-lab/llm-awq runs them on a transformer
 * block ({@code awq/quantize/auto_scale.py} at commit {@code d6e797a}: {@code get_act_scale}, {@code
 * _search_module_scale}, {@code scale_ln_fcs}, {@code scale_fc_fc}).
 *
 * <p>Several linear layers that read the same input ({@code linears2scale}: q, k and v, say) share one scale vector
 * {@code s}, and the search compares the output of a module that contains them ({@code module2inspect}: the whole
 * attention module, say) instead of each layer's own output:
 *
 * <pre>
 * x_max = mean |x| per input channel                                         get_act_scale
 * org_out = block(x)
 * for ratio = i / n_grid, i &lt; n_grid:
 *     s = clamp(x_max^ratio, min=1e-4);  s = s / sqrt(max(s) * min(s))
 *     every fc in linears2scale: W = Q(W * s) / s                             w_quantize_func, no clipping
 *     loss = mean((org_out - block(x))^2)                                     over every output element
 *     the first strictly smallest loss wins
 * </pre>
 *
 * <p>{@code s} is then folded, which leaves the FP32 model's function unchanged: into a norm before the layers
 * ({@code scale_ln_fcs}: {@code gamma /= s}, {@code beta /= s}, every {@code W *= s} column by column), or into a
 * linear layer before them ({@code scale_fc_fc}: its output rows and bias {@code /= s}, the next {@code W *= s}).
 *
 * <p>Unlike {@link Awq}, which keeps one layer's statistics ({@code X^T X}), this search runs the module on the
 * calibration inputs for every candidate, as the reference does: the module may be nonlinear (attention, SwiGLU).
 */
public final class AutoScale {

    /** llm-awq's {@code n_grid} of the scale search. */
    public static final int N_GRID = 20;

    private AutoScale() {}

    /**
     * The module whose output the search compares ({@code module2inspect}).
     *
     * <p>{@link #forward} returns its outputs on every calibration input (one matrix per sequence, say), in a fixed
     * order, with the weights of {@code linears2scale} replaced by {@code weights} (same order and shapes) and every
     * other parameter as it is.
     */
    @FunctionalInterface
    public interface Module {
        List<FloatMatrix> forward(List<FloatMatrix> weights);
    }

    /**
     * The search's outcome.
     *
     * @param scales the best {@code s}, one per input channel
     * @param ratio the chosen {@code i / n_grid}
     * @param history the loss of every ratio, in grid order
     */
    public record Search(float[] scales, double ratio, double[] history) {
        public Search {
            scales = scales.clone();
            history = history.clone();
        }

        @Override
        public float[] scales() {
            return scales.clone();
        }

        @Override
        public double[] history() {
            return history.clone();
        }
    }

    /** {@code get_act_scale}: the mean of {@code |x|} per column over every row of every matrix in {@code x}. */
    public static float[] getActScale(List<FloatMatrix> x) {
        if (x.isEmpty()) {
            throw new IllegalArgumentException("no activations");
        }
        int cols = x.get(0).cols();
        double[] sum = new double[cols];
        long tokens = 0;
        for (FloatMatrix m : x) {
            if (m.cols() != cols) {
                throw new IllegalArgumentException(
                        "activations '" + m.name() + "' have " + m.cols() + " columns, the first " + cols);
            }
            for (int t = 0; t < m.rows(); t++) {
                int off = m.rowOffset(t);
                for (int c = 0; c < cols; c++) {
                    sum[c] += Math.abs(m.array()[off + c]);
                }
            }
            tokens += m.rows();
        }
        float[] xMax = new float[cols];
        for (int c = 0; c < cols; c++) {
            xMax[c] = (float) (sum[c] / tokens);
        }
        return xMax;
    }

    /**
     * {@code _search_module_scale}: the ratio whose scales give {@code block} the smallest mean squared output error
     * when every weight of {@code linears2scale} is replaced by {@code Q(W * s) / s} under {@code scheme}.
     *
     * @param xMax {@link #getActScale} of the layers' shared input
     * @throws IllegalArgumentException when a layer's width differs from {@code xMax}'s, or no ratio gives a finite
     *     loss
     */
    public static Search searchModuleScale(
            Module block, List<FloatMatrix> linears2scale, float[] xMax, LinearScheme scheme, ForkJoinPool pool) {
        Objects.requireNonNull(block, "block");
        for (FloatMatrix w : linears2scale) {
            if (w.cols() != xMax.length) {
                throw new IllegalArgumentException(
                        "weight '" + w.name() + "' has " + w.cols() + " input features, " + "x_max has " + xMax.length);
            }
        }
        RtnQuantizer wQuantize = new RtnQuantizer(scheme, pool);
        // Q(W * s) / s: the tensor with s as its input scales stands for exactly that
        return searchModuleScale(
                block,
                linears2scale,
                xMax,
                (w, scales) -> wQuantize
                        .quantize(Awq.scale(w, scales))
                        .withInputScales(scales)
                        .dequantize()
                        .named(w.name()));
    }

    /**
     * {@link #searchModuleScale(Module, List, float[], LinearScheme, ForkJoinPool)} with another quantizer: {@code
     * candidate} gives, for a weight {@code W} and scales {@code s}, the weight the block runs with, {@code Q(W * s) /
     * s} (ggml's block types, for example).
     */
    public static Search searchModuleScale(
            Module block,
            List<FloatMatrix> linears2scale,
            float[] xMax,
            java.util.function.BiFunction<FloatMatrix, float[], FloatMatrix> candidateOf) {
        Objects.requireNonNull(block, "block");
        for (FloatMatrix w : linears2scale) {
            if (w.cols() != xMax.length) {
                throw new IllegalArgumentException(
                        "weight '" + w.name() + "' has " + w.cols() + " input features, " + "x_max has " + xMax.length);
            }
        }
        List<FloatMatrix> orgOut = block.forward(linears2scale);
        double[] history = new double[N_GRID];
        double bestError = Double.POSITIVE_INFINITY;
        double bestRatio = -1;
        float[] bestScales = null;
        for (int i = 0; i < N_GRID; i++) {
            double ratio = i * 1.0 / N_GRID;
            float[] scales = Awq.scales(xMax, ratio);
            List<FloatMatrix> candidate = new ArrayList<>();
            for (FloatMatrix w : linears2scale) {
                candidate.add(candidateOf.apply(w, scales));
            }
            double loss = meanSquaredError(orgOut, block.forward(candidate));
            history[i] = loss;
            if (loss < bestError) {
                bestError = loss;
                bestRatio = ratio;
                bestScales = scales;
            }
        }
        if (bestScales == null) {
            throw new IllegalArgumentException(
                    "AWQ scale search over " + names(linears2scale) + ": the output error is not finite for any ratio");
        }
        return new Search(bestScales, bestRatio, history);
    }

    /** {@code mean((a - b)^2)} over every element of every pair, summed in order in double. */
    static double meanSquaredError(List<FloatMatrix> a, List<FloatMatrix> b) {
        if (a.size() != b.size()) {
            throw new IllegalArgumentException("the module gave " + b.size() + " outputs, then " + a.size());
        }
        double sum = 0;
        long n = 0;
        for (int i = 0; i < a.size(); i++) {
            FloatMatrix x = a.get(i);
            FloatMatrix y = b.get(i);
            if (x.rows() != y.rows() || x.cols() != y.cols()) {
                throw new IllegalArgumentException("module output " + i + " is [" + y.rows() + ", " + y.cols()
                        + "], was [" + x.rows() + ", " + x.cols() + "]");
            }
            for (int r = 0; r < x.rows(); r++) {
                int ox = x.rowOffset(r);
                int oy = y.rowOffset(r);
                for (int c = 0; c < x.cols(); c++) {
                    double d = (double) x.array()[ox + c] - y.array()[oy + c];
                    sum += d * d;
                }
            }
            n += (long) x.rows() * x.cols();
        }
        return sum / n;
    }

    /**
     * The producing side of the folding, channel by channel: a norm's {@code gamma / s} and {@code beta / s} ({@code
     * scale_ln_fcs}), a linear layer's {@code bias / s} ({@code scale_fc_fc}).
     */
    public static float[] divide(float[] ln, float[] scales) {
        requireLength(ln.length, scales, "vector");
        float[] out = new float[ln.length];
        for (int c = 0; c < ln.length; c++) {
            out[c] = ln[c] / scales[c];
        }
        return out;
    }

    /** The consuming layer's side of {@code scale_ln_fcs} and {@code scale_fc_fc}: {@code W * s}, column by column. */
    public static FloatMatrix scaleFc(FloatMatrix w, float[] scales) {
        requireLength(w.cols(), scales, "weight '" + w.name() + "' input");
        return Awq.scale(w, scales);
    }

    /** The producing layer's side of {@code scale_fc_fc}: its output row {@code i} divided by {@code s_i}. */
    public static FloatMatrix scaleFcRows(FloatMatrix fc1, float[] scales) {
        requireLength(fc1.rows(), scales, "weight '" + fc1.name() + "' output");
        FloatMatrix out = FloatMatrix.zeros(fc1.name(), fc1.rows(), fc1.cols());
        for (int r = 0; r < fc1.rows(); r++) {
            int o = fc1.rowOffset(r);
            for (int c = 0; c < fc1.cols(); c++) {
                out.array()[r * fc1.cols() + c] = fc1.array()[o + c] / scales[r];
            }
        }
        return out;
    }

    private static void requireLength(int n, float[] scales, String what) {
        if (scales.length != n) {
            throw new IllegalArgumentException(what + " has " + n + " channels, the scales " + scales.length);
        }
    }

    private static List<String> names(List<FloatMatrix> ws) {
        return ws.stream().map(FloatMatrix::name).toList();
    }
}
