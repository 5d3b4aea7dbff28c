package dev.quant4j.model;

import dev.quant4j.tensor.FloatMatrix;
import java.util.Arrays;

/**
 * What quantizing a language model changes in its next-token predictions, measured against the full-precision model
 * on the same sequences, as llama.cpp's {@code perplexity --kl-divergence} reports it: per token, the KL divergence
 * {@code KL(P || Q) = sum_v P(v) log(P(v) / Q(v))} from the reference distribution {@code P} to the quantized one
 * {@code Q} (nats), whether both rank the same token first, and each model's negative log-likelihood of the token that
 * actually follows (perplexity is {@code exp} of its mean). Softmax and logarithms in double.
 *
 * <p>Add sequences with {@link #add}; read the statistics with {@link #summary}. Not thread-safe.
 */
public final class NextTokenMetrics {

    private double[] kl = new double[256];
    private int tokens;
    private long top1;
    private double nllReference;
    private double nllQuantized;
    private int predicted;

    /**
     * The statistics so far.
     *
     * @param tokens positions compared
     * @param klMean mean KL divergence per token, nats
     * @param klP99 99th percentile of the per-token KL divergence (nearest rank)
     * @param klMax the largest per-token KL divergence
     * @param top1 fraction of positions where both models put the same token first
     * @param pplReference perplexity of the reference model on the next tokens (positions with a next token)
     * @param pplQuantized perplexity of the quantized model on the same tokens
     */
    public record Summary(
            int tokens,
            double klMean,
            double klP99,
            double klMax,
            double top1,
            double pplReference,
            double pplQuantized) {}

    /**
     * Adds one sequence: {@code reference} and {@code quantized} logits {@code [n, vocab]} for {@code tokens[0 ...
     * n-1]}; position {@code t}'s prediction is scored against {@code tokens[t + 1]} for perplexity when there is one.
     */
    public void add(int[] tokens, FloatMatrix reference, FloatMatrix quantized) {
        int n = reference.rows();
        int vocab = reference.cols();
        if (quantized.rows() != n || quantized.cols() != vocab || tokens.length != n) {
            throw new IllegalArgumentException("logits [" + n + ", " + vocab + "] and [" + quantized.rows() + ", "
                    + quantized.cols() + "] for " + tokens.length + " tokens do not match");
        }
        double[] logP = new double[vocab];
        double[] logQ = new double[vocab];
        for (int t = 0; t < n; t++) {
            logSoftmax(reference, t, logP);
            logSoftmax(quantized, t, logQ);
            double d = 0;
            for (int v = 0; v < vocab; v++) {
                d += Math.exp(logP[v]) * (logP[v] - logQ[v]);
            }
            if (this.tokens == kl.length) {
                kl = Arrays.copyOf(kl, 2 * kl.length);
            }
            kl[this.tokens++] = Math.max(0, d);
            if (argmax(logP) == argmax(logQ)) {
                top1++;
            }
            if (t + 1 < n) {
                int next = tokens[t + 1];
                if (next < 0 || next >= vocab) {
                    throw new IllegalArgumentException(
                            "token " + (t + 1) + " has id " + next + ", vocabulary " + vocab);
                }
                nllReference -= logP[next];
                nllQuantized -= logQ[next];
                predicted++;
            }
        }
    }

    /** The statistics of everything added. */
    public Summary summary() {
        if (tokens == 0) {
            throw new IllegalStateException("no tokens added");
        }
        double[] sorted = Arrays.copyOf(kl, tokens);
        Arrays.sort(sorted);
        double sum = 0;
        for (double v : sorted) {
            sum += v;
        }
        int rank = (int) Math.ceil(0.99 * tokens) - 1;
        return new Summary(
                tokens,
                sum / tokens,
                sorted[Math.max(0, rank)],
                sorted[tokens - 1],
                (double) top1 / tokens,
                predicted == 0 ? Double.NaN : Math.exp(nllReference / predicted),
                predicted == 0 ? Double.NaN : Math.exp(nllQuantized / predicted));
    }

    private static void logSoftmax(FloatMatrix logits, int row, double[] out) {
        float[] a = logits.array();
        int off = logits.rowOffset(row);
        double max = Double.NEGATIVE_INFINITY;
        for (int v = 0; v < out.length; v++) {
            max = Math.max(max, a[off + v]);
        }
        double sum = 0;
        for (int v = 0; v < out.length; v++) {
            sum += Math.exp(a[off + v] - max);
        }
        double log = max + Math.log(sum);
        for (int v = 0; v < out.length; v++) {
            out[v] = a[off + v] - log;
        }
    }

    private static int argmax(double[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }
}
