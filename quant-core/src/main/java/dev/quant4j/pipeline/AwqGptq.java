package dev.quant4j.pipeline;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;

/**
 * AWQ's input scales followed by GPTQ on the scaled weight: the combination the AWQ paper (Lin et al., MLSys 2024,
 * section 5, "AWQ is orthogonal to GPTQ", the table "AWQ + GPTQ") reports to add up. Not plain AWQ: the codes come from
 * GPTQ ({@link Gptq}, its quantizer and options), and AWQ contributes the per-input-channel scales {@code s}.
 *
 * <pre>
 * x_mean = mean |x| per input channel;  H = (2 / n) X^T X                     the layer's calibration inputs
 * for ratio = i / n_grid, i &lt; n_grid:                                       AWQ's grid (llm-awq or duo candidates)
 *     s = the AWQ candidate at ratio                                          Awq.scales / Awq.duoScales
 *     H_s = diag(1 / s) H diag(1 / s)                                         the Hessian of the inputs X / s
 *     Q = GPTQ(W * s, H_s)
 *     loss = sum_r d_r^T H d_r / 2,  d = W - Q / s                            GPTQ's own output error (Gptq.outputError)
 *     the first strictly smallest loss wins
 * result: Q with s as input scales (Q / s the effective weight)
 * </pre>
 *
 * <p>Each candidate is scored by the error of the weight GPTQ makes from it, not of round-to-nearest's: the search thus
 * picks the scales that help GPTQ. With llm-awq's candidates, ratio 0 gives {@code s = 1} exactly, {@code H_s = H} and
 * plain GPTQ, so the result's output error never exceeds GPTQ alone's on the same {@code H} (tested). AWQ's clip search
 * is not run: it chooses clipping ranges for round-to-nearest, which GPTQ's error feedback then undoes.
 *
 * <p>It lives in {@code pipeline} because it drives both algorithms: {@code awq} and {@code gptq} do not depend on each
 * other.
 */
public final class AwqGptq {

    /**
     * The outcome.
     *
     * @param tensor GPTQ's codes of {@code W * s}, carrying {@code s} as input scales
     * @param scales {@code s}
     * @param alpha the chosen ratio
     * @param lossCurve the output error {@code sum_r d_r^T H d_r / 2} of every ratio, in grid order
     * @param loss the chosen ratio's output error
     */
    public record Result(QuantizedTensor tensor, float[] scales, double alpha, double[] lossCurve, double loss) {
        public Result {
            Objects.requireNonNull(tensor, "tensor");
            scales = scales.clone();
            lossCurve = lossCurve.clone();
        }

        @Override
        public float[] scales() {
            return scales.clone();
        }

        @Override
        public double[] lossCurve() {
            return lossCurve.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Result r
                    && tensor.equals(r.tensor)
                    && Arrays.equals(scales, r.scales)
                    && Double.compare(alpha, r.alpha) == 0
                    && Arrays.equals(lossCurve, r.lossCurve)
                    && Double.compare(loss, r.loss) == 0;
        }

        @Override
        public int hashCode() {
            return Objects.hash(tensor, Arrays.hashCode(scales), alpha, loss);
        }

        @Override
        public String toString() {
            return "AwqGptq.Result[" + tensor + ", alpha " + alpha + ", loss " + loss + "]";
        }
    }

    private final AwqConfig awq;
    private final Gptq gptq;

    /**
     * AWQ's grid and candidates from {@code awq} ({@link AwqConfig#nGrid()}, {@link AwqConfig#duoScaling()}; its bits,
     * group size and clip options are not used), GPTQ's quantizer and options from {@code gptq}.
     */
    public AwqGptq(AwqConfig awq, GptqConfig gptq, ForkJoinPool pool) {
        this.awq = awq;
        this.gptq = new Gptq(gptq, pool);
    }

    /**
     * Quantizes {@code w [out, in]} given the mean of {@code |x|} per input channel and {@code H [in, in]} (row-major,
     * symmetric, as {@link dev.quant4j.gptq.HessianAccumulator#hessian()} gives it) of the same calibration inputs.
     *
     * @throws IllegalArgumentException for mismatched widths, and as {@link Gptq#quantize(FloatMatrix, float[])}
     */
    public Result quantize(FloatMatrix w, float[] xMean, float[] h) {
        int cols = w.cols();
        if (xMean.length != cols || h.length != (long) cols * cols) {
            throw new IllegalArgumentException("weight '" + w.name() + "' has " + cols + " input features, x_mean has "
                    + xMean.length + " and H " + h.length + " entries");
        }
        w.requireFinite();
        int groupSize = gptq.config().groupSize() == -1 ? cols : gptq.config().groupSize();
        float[] wMean = awq.duoScaling() ? Awq.wMean(w, groupSize) : null;
        int nGrid = awq.nGrid();
        double[] history = new double[nGrid];
        double bestError = Double.POSITIVE_INFINITY;
        int bestRatio = -1;
        QuantizedTensor best = null;
        float[] bestScales = null;
        for (int i = 0; i < nGrid; i++) {
            double ratio = i * 1.0 / nGrid;
            float[] s = awq.duoScaling() ? Awq.duoScales(xMean, wMean, ratio) : Awq.scales(xMean, ratio);
            QuantizedTensor q =
                    gptq.quantize(Awq.scale(w, s), scaledHessian(h, s)).tensor().withInputScales(s);
            double loss = Gptq.outputError(w, q.dequantize(), h);
            history[i] = loss;
            if (loss < bestError) {
                bestError = loss;
                bestRatio = i;
                best = q;
                bestScales = s;
            }
        }
        if (best == null) {
            throw new IllegalArgumentException("AWQ+GPTQ layer '" + w.name()
                    + "': the output error is not finite for any ratio (weights or activations too large for float32)");
        }
        return new Result(best, bestScales, bestRatio * 1.0 / nGrid, history, bestError);
    }

    /** {@code H_s[i][j] = H[i][j] / (s_i s_j)}: the Hessian of the inputs divided by {@code s}, in float32. */
    public static float[] scaledHessian(float[] h, float[] s) {
        int n = s.length;
        float[] hs = new float[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                hs[i * n + j] = h[i * n + j] / s[i] / s[j];
            }
        }
        return hs;
    }
}
