package dev.quant4j.model;

import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Token sequences sampled from a decoder itself: calibration and evaluation data for a model shipped without a
 * tokenizer, or without text at hand. Each sequence starts with a given first token (BOS) and continues by sampling
 * the model's next-token distribution at a temperature. Sequence {@code i} depends only on the model, the seed and
 * {@code i}: the same on any machine and thread count.
 */
public final class TokenSampler {

    private TokenSampler() {}

    /**
     * {@code count} sequences of {@code length} tokens, each {@code first} followed by {@code length - 1} tokens drawn
     * from the softmax of the logits divided by {@code temperature} (1: the model's own distribution).
     */
    public static List<int[]> sample(
            LlamaDecoder model, int count, int length, int first, double temperature, long seed) {
        if (count < 1 || length < 1) {
            throw new IllegalArgumentException("sample " + count + " sequences of " + length + " tokens: both >= 1");
        }
        if (!(temperature > 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature " + temperature + " must be positive and finite");
        }
        SplittableRandom root = new SplittableRandom(seed);
        List<int[]> out = new ArrayList<>();
        for (int s = 0; s < count; s++) {
            SplittableRandom random = root.split();
            LlamaDecoder.KvCache cache = model.newCache(length);
            int[] seq = new int[length];
            seq[0] = first;
            for (int t = 1; t < length; t++) {
                FloatMatrix logits = model.forward(new int[] {seq[t - 1]}, cache, null);
                seq[t] = draw(logits.toArray(), temperature, random.nextDouble());
            }
            out.add(seq);
        }
        return out;
    }

    /**
     * One token drawn from {@code softmax(logits / temperature)} with {@code u} uniform in {@code [0, 1)}: the first
     * id whose cumulative probability exceeds {@code u} (the last id if rounding runs out first).
     */
    public static int draw(float[] logits, double temperature, double u) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l / temperature);
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp(logits[i] / temperature - max);
            sum += p[i];
        }
        double target = u * sum;
        double cdf = 0;
        for (int i = 0; i < p.length; i++) {
            cdf += p[i];
            if (target < cdf) {
                return i;
            }
        }
        return p.length - 1;
    }
}
