package dev.quant4j.model;

import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.kernel.AttentionKernels;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;

/**
 * A BERT encoder's forward pass in plain Java, for sentence embeddings: token, position and token-type embeddings,
 * LayerNorm, then per layer multi-head self-attention (softmax of {@code Q K^T / sqrt(d)}), output projection,
 * residual and LayerNorm, a feed-forward block with exact GELU ({@code x/2 (1 + erf(x / sqrt 2))}), residual and
 * LayerNorm (post-norm, eps {@code 1e-12}); then mean pooling over the tokens and L2 normalisation, as
 * sentence-transformers configures all-MiniLM-L6-v2 ({@code Pooling(mean)} and {@code Normalize}).
 *
 * <p>Followed: the HuggingFace {@code BertModel} (modeling_bert.py) as exported to ONNX, whose graph names each
 * linear's MatMul {@code /encoder/layer.L/attention/self/query/MatMul} (weights {@code [in, out]}, transposed here to
 * {@code [out, in]}) and its bias {@code encoder.layer.L.attention.self.query.bias}. Each sentence runs alone (no
 * padding), so the attention mask is all ones.
 *
 * <p>Every linear layer is a {@link Linear} named as its PyTorch module ({@code encoder.layer.0.attention.self.query}),
 * replaceable by a quantized one ({@link #withLinears}); a {@link Tap} sees the input of every linear before it runs,
 * which is how GPTQ's Hessians and AWQ's statistics are gathered without storing activations.
 */
public final class BertEncoder {

    /** LayerNorm epsilon of BERT ({@code layer_norm_eps}). */
    public static final double LAYER_NORM_EPS = 1e-12;

    /** The attention kernels of this JVM. */
    private static final AttentionKernels KERNELS = Kernels.get();

    private record Layer(
            Linear query,
            Linear key,
            Linear value,
            Linear attentionOutput,
            float[] ln1Weight,
            float[] ln1Bias,
            Linear intermediate,
            Linear output,
            float[] ln2Weight,
            float[] ln2Bias) {}

    private final String source;
    private final int hidden;
    private final int heads;
    private final FloatMatrix wordEmbeddings;
    private final FloatMatrix positionEmbeddings;
    private final float[] tokenType0;
    private final float[] embLnWeight;
    private final float[] embLnBias;
    private final List<Layer> layers;

    private BertEncoder(
            String source,
            int hidden,
            int heads,
            FloatMatrix wordEmbeddings,
            FloatMatrix positionEmbeddings,
            float[] tokenType0,
            float[] embLnWeight,
            float[] embLnBias,
            List<Layer> layers) {
        this.source = source;
        this.hidden = hidden;
        this.heads = heads;
        this.wordEmbeddings = wordEmbeddings;
        this.positionEmbeddings = positionEmbeddings;
        this.tokenType0 = tokenType0;
        this.embLnWeight = embLnWeight;
        this.embLnBias = embLnBias;
        this.layers = List.copyOf(layers);
    }

    /**
     * The encoder of an ONNX BERT export (HuggingFace names), FP32, with {@code heads} attention heads (the graph keeps
     * the head count in reshape constants; all-MiniLM-L6-v2 has 12). Linears run on {@code pool}.
     */
    public static BertEncoder fromOnnx(OnnxModel model, int heads, ForkJoinPool pool) {
        String src = model.source();
        Map<String, String> weightOfNode = model.matMulWeights();
        FloatMatrix word =
                model.initializer("embeddings.word_embeddings.weight").matrix();
        int hidden = word.cols();
        if (heads < 1 || hidden % heads != 0) {
            throw new IllegalArgumentException(src + ": " + heads + " heads do not divide the hidden size " + hidden);
        }
        FloatMatrix pos =
                model.initializer("embeddings.position_embeddings.weight").matrix();
        FloatMatrix type =
                model.initializer("embeddings.token_type_embeddings.weight").matrix();
        requireCols(src, pos, hidden);
        requireCols(src, type, hidden);
        float[] type0 = new float[hidden];
        System.arraycopy(type.array(), type.rowOffset(0), type0, 0, hidden);
        List<Layer> layers = new ArrayList<>();
        for (int l = 0; weightOfNode.containsKey("/encoder/layer." + l + "/attention/self/query/MatMul"); l++) {
            String p = "encoder.layer." + l + ".";
            layers.add(new Layer(
                    linear(model, weightOfNode, l, "attention/self/query", p + "attention.self.query", pool),
                    linear(model, weightOfNode, l, "attention/self/key", p + "attention.self.key", pool),
                    linear(model, weightOfNode, l, "attention/self/value", p + "attention.self.value", pool),
                    linear(model, weightOfNode, l, "attention/output/dense", p + "attention.output.dense", pool),
                    vector(model, p + "attention.output.LayerNorm.weight", hidden),
                    vector(model, p + "attention.output.LayerNorm.bias", hidden),
                    linear(model, weightOfNode, l, "intermediate/dense", p + "intermediate.dense", pool),
                    linear(model, weightOfNode, l, "output/dense", p + "output.dense", pool),
                    vector(model, p + "output.LayerNorm.weight", hidden),
                    vector(model, p + "output.LayerNorm.bias", hidden)));
        }
        if (layers.isEmpty()) {
            throw new MalformedTensorFileException(
                    src + ": no node '/encoder/layer.0/attention/self/query/MatMul' (not a HuggingFace BERT export?)");
        }
        return new BertEncoder(
                src,
                hidden,
                heads,
                word,
                pos,
                type0,
                vector(model, "embeddings.LayerNorm.weight", hidden),
                vector(model, "embeddings.LayerNorm.bias", hidden),
                layers);
    }

    private static Linear linear(
            OnnxModel model, Map<String, String> weightOfNode, int layer, String path, String name, ForkJoinPool pool) {
        String node = "/encoder/layer." + layer + "/" + path + "/MatMul";
        String w = weightOfNode.get(node);
        if (w == null) {
            throw new MalformedTensorFileException(model.source() + ": no MatMul node '" + node + "' with a weight");
        }
        FloatMatrix inOut = model.initializer(w).matrix();
        float[] bias = model.initializer(name + ".bias").floats();
        if (bias.length != inOut.cols()) {
            throw new MalformedTensorFileException(model.source() + ": bias '" + name + ".bias' has " + bias.length
                    + " values, weight '" + w + "' has " + inOut.cols() + " outputs");
        }
        return Linear.dense(name, inOut.transpose().named(name), bias, pool);
    }

    private static float[] vector(OnnxModel model, String name, int length) {
        float[] v = model.initializer(name).floats();
        if (v.length != length) {
            throw new MalformedTensorFileException(
                    model.source() + ": '" + name + "' has " + v.length + " values, needs " + length);
        }
        return v;
    }

    private static void requireCols(String src, FloatMatrix m, int hidden) {
        if (m.cols() != hidden) {
            throw new MalformedTensorFileException(
                    src + ": '" + m.name() + "' has " + m.cols() + " columns, the hidden size is " + hidden);
        }
    }

    /** Hidden size. */
    public int hidden() {
        return hidden;
    }

    /** Number of encoder layers. */
    public int layers() {
        return layers.size();
    }

    /** The longest input, in tokens (rows of the position table). */
    public int maxTokens() {
        return positionEmbeddings.rows();
    }

    /** Every linear layer in forward order (six per encoder layer). */
    public List<Linear> linears() {
        List<Linear> all = new ArrayList<>();
        for (Layer l : layers) {
            all.addAll(List.of(l.query, l.key, l.value, l.attentionOutput, l.intermediate, l.output));
        }
        return all;
    }

    /**
     * This encoder with some linear layers replaced (by name; each replacement must have the shape of the layer it
     * replaces). The embeddings and LayerNorms are shared.
     */
    public BertEncoder withLinears(Map<String, Linear> replacements) {
        Map<String, Linear> left = new LinkedHashMap<>(replacements);
        List<Layer> out = new ArrayList<>();
        for (Layer l : layers) {
            out.add(new Layer(
                    Replacements.pick(l.query, left),
                    Replacements.pick(l.key, left),
                    Replacements.pick(l.value, left),
                    Replacements.pick(l.attentionOutput, left),
                    l.ln1Weight,
                    l.ln1Bias,
                    Replacements.pick(l.intermediate, left),
                    Replacements.pick(l.output, left),
                    l.ln2Weight,
                    l.ln2Bias));
        }
        if (!left.isEmpty()) {
            throw new IllegalArgumentException(source + ": no linear layer named " + left.keySet());
        }
        return new BertEncoder(
                source, hidden, heads, wordEmbeddings, positionEmbeddings, tokenType0, embLnWeight, embLnBias, out);
    }

    /**
     * This encoder with other word and position embedding tables (for example their quantized values), each of the
     * shape of the table it replaces; a null keeps that table. The linears and LayerNorms are shared.
     */
    public BertEncoder withEmbeddings(FloatMatrix words, FloatMatrix positions) {
        requireShape(words, wordEmbeddings);
        requireShape(positions, positionEmbeddings);
        return new BertEncoder(
                source,
                hidden,
                heads,
                words == null ? wordEmbeddings : words,
                positions == null ? positionEmbeddings : positions,
                tokenType0,
                embLnWeight,
                embLnBias,
                layers);
    }

    private void requireShape(FloatMatrix replacement, FloatMatrix table) {
        if (replacement != null && (replacement.rows() != table.rows() || replacement.cols() != table.cols())) {
            throw new IllegalArgumentException(source + ": table '" + replacement.name() + "' is ["
                    + replacement.rows() + ", " + replacement.cols() + "], the one it replaces ('" + table.name()
                    + "') [" + table.rows() + ", " + table.cols() + "]");
        }
    }

    /** The sentence embedding of token ids ({@code [CLS] ... [SEP]}): mean of the last hidden states, unit length. */
    public float[] embed(int[] ids) {
        return embed(ids, null);
    }

    /** {@link #embed(int[])}, showing every linear's input to {@code tap} (may be null). */
    public float[] embed(int[] ids, Tap tap) {
        return meanPoolNormalize(hiddenStates(ids, tap));
    }

    /**
     * A sentence embedding from hidden states {@code [tokens, hidden]}: the mean over the tokens, divided by {@code
     * max(||mean||, 1e-12)} (sentence-transformers' {@code Pooling(mean)} then {@code Normalize}).
     */
    public static float[] meanPoolNormalize(FloatMatrix h) {
        double[] mean = new double[h.cols()];
        for (int t = 0; t < h.rows(); t++) {
            for (int c = 0; c < mean.length; c++) {
                mean[c] += h.get(t, c);
            }
        }
        double norm = 0;
        for (int c = 0; c < mean.length; c++) {
            mean[c] /= h.rows();
            norm += mean[c] * mean[c];
        }
        double scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
        float[] e = new float[mean.length];
        for (int c = 0; c < mean.length; c++) {
            e[c] = (float) (mean[c] * scale);
        }
        return e;
    }

    /** The last hidden states {@code [tokens, hidden]} for token ids (token type 0, positions 0, 1, ...). */
    public FloatMatrix hiddenStates(int[] ids, Tap tap) {
        return hiddenStates(ids, tap, layers.size());
    }

    /**
     * The hidden states after the first {@code upTo} encoder layers (0: the embeddings after their LayerNorm); what
     * layer-by-layer calibration needs without running the layers above.
     */
    public FloatMatrix hiddenStates(int[] ids, Tap tap, int upTo) {
        if (upTo < 0 || upTo > layers.size()) {
            throw new IllegalArgumentException(source + ": " + upTo + " layers asked, the model has " + layers.size());
        }
        int n = ids.length;
        if (n == 0) {
            throw new IllegalArgumentException(source + ": no tokens");
        }
        if (n > positionEmbeddings.rows()) {
            throw new IllegalArgumentException(
                    source + ": " + n + " tokens, the model takes at most " + positionEmbeddings.rows());
        }
        float[] x = new float[n * hidden];
        for (int t = 0; t < n; t++) {
            int id = ids[t];
            if (id < 0 || id >= wordEmbeddings.rows()) {
                throw new IllegalArgumentException(
                        source + ": token " + t + " has id " + id + ", the vocabulary has " + wordEmbeddings.rows());
            }
            int w = wordEmbeddings.rowOffset(id);
            int p = positionEmbeddings.rowOffset(t);
            for (int c = 0; c < hidden; c++) {
                // the ONNX graph's order: (word + token type) + position
                x[t * hidden + c] = wordEmbeddings.array()[w + c]
                        + tokenType0[c]
                        + positionEmbeddings.array()[p + c];
            }
        }
        layerNorm(x, n, embLnWeight, embLnBias);
        FloatMatrix h = FloatMatrix.of("hidden", n, hidden, x, 0);
        for (Layer l : layers.subList(0, upTo)) {
            h = layer(l, h, tap);
        }
        return h;
    }

    /**
     * Encoder layer {@code index} (0-based) applied to hidden states {@code h [tokens, hidden]}, {@code tap} (may be
     * null) seeing its six linears' inputs: with {@link #hiddenStates(int[], Tap, int)} at 0 layers, what
     * layer-by-layer calibration (GPTQ's sequential mode) runs on cached states.
     */
    public FloatMatrix layer(int index, FloatMatrix h, Tap tap) {
        if (index < 0 || index >= layers.size()) {
            throw new IllegalArgumentException(
                    source + ": no layer " + index + " (the model has " + layers.size() + ")");
        }
        if (h.cols() != hidden) {
            throw new IllegalArgumentException(
                    source + ": hidden states '" + h.name() + "' have " + h.cols() + " columns, needs " + hidden);
        }
        return layer(layers.get(index), h, tap);
    }

    /**
     * Layer {@code index}'s self-attention module on {@code h [tokens, hidden]}: query, key, value, softmax attention
     * and the output dense layer, before the residual and LayerNorm (HuggingFace's {@code BertSelfAttention} then
     * {@code BertSelfOutput.dense}); what a search over the attention's weights compares.
     */
    public FloatMatrix selfAttention(int index, FloatMatrix h) {
        return selfAttention(checked(index, h, hidden), h, null);
    }

    /**
     * Layer {@code index}'s feed-forward module on {@code attended [tokens, hidden]} (the attention LayerNorm's
     * output): intermediate dense, GELU and output dense, before the residual and LayerNorm.
     */
    public FloatMatrix feedForward(int index, FloatMatrix attended) {
        return feedForward(checked(index, attended, hidden), attended, null);
    }

    private Layer checked(int index, FloatMatrix x, int cols) {
        if (index < 0 || index >= layers.size()) {
            throw new IllegalArgumentException(
                    source + ": no layer " + index + " (the model has " + layers.size() + ")");
        }
        if (x.cols() != cols) {
            throw new IllegalArgumentException(
                    source + ": input '" + x.name() + "' has " + x.cols() + " columns, needs " + cols);
        }
        return layers.get(index);
    }

    private FloatMatrix selfAttention(Layer l, FloatMatrix h, Tap tap) {
        int n = h.rows();
        FloatMatrix q = run(l.query, h, tap);
        FloatMatrix k = run(l.key, h, tap);
        FloatMatrix v = run(l.value, h, tap);
        float[] ctx = attention(q.toArray(), k.toArray(), v.toArray(), n);
        return run(l.attentionOutput, FloatMatrix.of("context", n, hidden, ctx, 0), tap);
    }

    private FloatMatrix feedForward(Layer l, FloatMatrix attended, Tap tap) {
        int n = attended.rows();
        float[] mid = run(l.intermediate, attended, tap).toArray();
        for (int i = 0; i < mid.length; i++) {
            mid[i] = gelu(mid[i]);
        }
        return run(l.output, FloatMatrix.of("gelu", n, mid.length / n, mid, 0), tap);
    }

    private FloatMatrix layer(Layer l, FloatMatrix h, Tap tap) {
        int n = h.rows();
        FloatMatrix a = selfAttention(l, h, tap);
        float[] x1 = a.toArray();
        float[] hs = h.toArray();
        for (int i = 0; i < x1.length; i++) {
            x1[i] += hs[i];
        }
        layerNorm(x1, n, l.ln1Weight, l.ln1Bias);
        FloatMatrix attended = FloatMatrix.of("attended", n, hidden, x1, 0);
        FloatMatrix f = feedForward(l, attended, tap);
        float[] x2 = f.toArray();
        for (int i = 0; i < x2.length; i++) {
            x2[i] += x1[i];
        }
        layerNorm(x2, n, l.ln2Weight, l.ln2Bias);
        return FloatMatrix.of("hidden", n, hidden, x2, 0);
    }

    private static FloatMatrix run(Linear linear, FloatMatrix x, Tap tap) {
        if (tap != null) {
            tap.accept(linear.name(), x);
        }
        return linear.forward(x);
    }

    /**
     * Softmax attention per head over all {@code n} tokens (no mask: one unpadded sentence), on the kernel layer
     * ({@link AttentionKernels}, in float).
     */
    private float[] attention(float[] q, float[] k, float[] v, int n) {
        int d = hidden / heads;
        float[] ctx = new float[n * hidden];
        float[] scratch = new float[AttentionKernels.attentionScratchSize(n, 0, d)];
        for (int h = 0; h < heads; h++) {
            int o = h * d;
            KERNELS.attention(n, 0, false, d, 1, q, o, hidden, k, o, v, o, hidden, ctx, o, hidden, scratch);
        }
        return ctx;
    }

    /** LayerNorm over each row of {@code x [n, hidden]}, in place: biased variance, eps {@link #LAYER_NORM_EPS}. */
    private void layerNorm(float[] x, int n, float[] w, float[] b) {
        for (int t = 0; t < n; t++) {
            int off = t * hidden;
            double mean = 0;
            for (int c = 0; c < hidden; c++) {
                mean += x[off + c];
            }
            mean /= hidden;
            double var = 0;
            for (int c = 0; c < hidden; c++) {
                double dv = x[off + c] - mean;
                var += dv * dv;
            }
            var /= hidden;
            double inv = 1 / Math.sqrt(var + LAYER_NORM_EPS);
            for (int c = 0; c < hidden; c++) {
                x[off + c] = (float) ((x[off + c] - mean) * inv * w[c] + b[c]);
            }
        }
    }

    /** Exact GELU, {@code x/2 (1 + erf(x / sqrt 2))}, with {@link #erf}. */
    static float gelu(float x) {
        return (float) (0.5 * x * (1 + erf(x / Math.sqrt(2))));
    }

    /**
     * The error function to about 1e-15: Maclaurin series {@code 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1))} for
     * {@code |x| < 2.5}, and the continued fraction of {@code erfc} (Abramowitz and Stegun 7.1.14, evaluated by
     * Lentz's method) beyond. Java has no {@code erf}.
     */
    static double erf(double x) {
        double ax = Math.abs(x);
        if (Double.isNaN(x)) {
            return x;
        }
        if (ax < 2.5) {
            double term = x;
            double sum = x;
            double x2 = x * x;
            for (int n = 1; n < 100; n++) {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.abs(add) < 1e-17 * Math.abs(sum)) {
                    break;
                }
            }
            return 2 / Math.sqrt(Math.PI) * sum;
        }
        if (ax > 6) {
            return Math.signum(x); // erfc(6) < 3e-17
        }
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
        double tiny = 1e-300;
        double f = ax;
        double c = ax;
        double d = 0;
        for (int k = 1; k < 200; k++) {
            double a = k / 2.0;
            d = ax + a * d;
            d = 1 / (Math.abs(d) < tiny ? tiny : d);
            c = ax + a / c;
            if (Math.abs(c) < tiny) {
                c = tiny;
            }
            double delta = c * d;
            f *= delta;
            if (Math.abs(delta - 1) < 1e-16) {
                break;
            }
        }
        double erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
        return Math.signum(x) * (1 - erfc);
    }

    @Override
    public String toString() {
        return "BertEncoder[" + source + ", " + layers.size() + " layers, hidden " + hidden + ", " + heads + " heads]";
    }
}
