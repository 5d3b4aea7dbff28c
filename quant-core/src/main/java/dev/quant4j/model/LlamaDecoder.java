package dev.quant4j.model;

import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.kernel.AttentionKernels;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.linalg.Parallel;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;

/**
 * The forward pass of a Llama-family decoder in FP32, on whole sequences (prefill) with a {@link KvCache} for
 * generation: token embedding, then per block {@code x += o(attention(rope(q(n(x))), rope(k(n(x))), v(n(x))))} and
 * {@code x += down(silu(gate(n(x))) * up(n(x)))} with RMSNorm {@code n}, grouped-query causal attention and SwiGLU,
 * then a final RMSNorm and the output head.
 *
 * <p>It follows llama2.c's {@code run.c} (Andrej Karpathy, MIT; the reference that produced this class's test
 * fixtures) and Hugging Face transformers' {@code modeling_llama.py} for the names: tensors are looked up under Hugging
 * Face's names ({@code model.embed_tokens.weight}, {@code model.layers.N.self_attn.q_proj.weight}, ...
 * {@code lm_head.weight}), and linear layers are named after their module ({@code model.layers.N.self_attn.q_proj}).
 * Query and key projections may have a bias (Qwen2); the others have none.
 *
 * <p>Arithmetic: the linear layers ({@link Linear}) and attention ({@link AttentionKernels}: scores, softmax and value
 * sums in float with fused multiply-adds, as {@code run.c} computes them in float) run on the kernel layer; RMSNorm
 * accumulates in double; rotary angles are {@code position * inverse_frequency} rounded to float, as both references
 * compute them. Results do not depend on the thread count.
 *
 * <p>An instance is immutable and may be shared by threads; a {@link KvCache} belongs to one sequence and one thread
 * at a time.
 */
public final class LlamaDecoder {

    /** Hugging Face's name of the token embedding table. */
    public static final String EMBED_TOKENS = "model.embed_tokens.weight";
    /** Hugging Face's name of the final RMSNorm's weight. */
    public static final String FINAL_NORM = "model.norm.weight";
    /** Hugging Face's name of the output head's weight (absent when the embeddings are tied). */
    public static final String LM_HEAD = "lm_head.weight";

    /** The attention kernels of this JVM. */
    private static final AttentionKernels KERNELS = Kernels.get();

    private record Block(
            float[] attentionNorm,
            Linear q,
            Linear k,
            Linear v,
            Linear o,
            float[] mlpNorm,
            Linear gate,
            Linear up,
            Linear down) {

        List<Linear> linears() {
            return List.of(q, k, v, o, gate, up, down);
        }
    }

    private final String source;
    private final LlamaConfig config;
    private final FloatMatrix embedding;
    private final List<Block> blocks;
    private final float[] finalNorm;
    private final Linear head;
    private final float[] inverseFrequency;
    private final ForkJoinPool pool;

    private LlamaDecoder(
            String source,
            LlamaConfig config,
            FloatMatrix embedding,
            List<Block> blocks,
            float[] finalNorm,
            Linear head,
            ForkJoinPool pool) {
        this.source = source;
        this.config = config;
        this.embedding = embedding;
        this.blocks = Collections.unmodifiableList(new ArrayList<>(blocks));
        this.finalNorm = finalNorm;
        this.head = head;
        this.pool = pool;
        int half = config.headDim() / 2;
        this.inverseFrequency = new float[half];
        for (int j = 0; j < half; j++) {
            // 1 / theta^(2j / d), rounded to float: run.c's powf and transformers' float32 inv_freq
            inverseFrequency[j] = (float) (1 / Math.pow(config.ropeTheta(), (double) (2 * j) / config.headDim()));
        }
    }

    /**
     * A decoder over FP32 tensors named as Hugging Face names them. Matrices are {@code [out, in]}; one-dimensional
     * tensors (the norms, biases) are {@code [1, n]}. {@code lm_head.weight} is read unless {@link
     * LlamaConfig#tiedEmbeddings()}. Every missing or misshapen tensor is named in an {@link IllegalArgumentException}
     * before anything runs.
     *
     * @param source the model's name in error messages (its file, usually)
     */
    public static LlamaDecoder of(
            String source, LlamaConfig config, Map<String, FloatMatrix> tensors, ForkJoinPool pool) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(pool, "pool");
        Tensors t = new Tensors(source, tensors);
        FloatMatrix embedding = t.matrix(EMBED_TOKENS, config.vocabSize(), config.dim());
        List<Block> blocks = blocks(t, config, 0, config.layers(), pool);
        float[] finalNorm = t.vector(FINAL_NORM, config.dim());
        FloatMatrix headWeight = config.tiedEmbeddings()
                ? embedding.named("lm_head")
                : t.matrix(LM_HEAD, config.vocabSize(), config.dim());
        Linear head = Linear.dense("lm_head", headWeight.named("lm_head"), null, pool);
        return new LlamaDecoder(source, config, embedding, blocks, finalNorm, head, pool);
    }

    /**
     * A part of a decoder, for pipelines that go block by block through a model too large to hold: blocks {@code from
     * ... to - 1} from {@code tensors} (named and checked as {@link #of} does), and the token embeddings when {@code
     * tensors} has them. The other blocks, the final norm and the output head are absent: {@link #block(int,
     * FloatMatrix, Tap)}, {@link #linears(int)} and the like take the blocks held, {@link #embed} needs the
     * embeddings, and {@link #forward}, {@link #logits} and {@link #head} are refused.
     */
    public static LlamaDecoder window(
            String source, LlamaConfig config, Map<String, FloatMatrix> tensors, int from, int to, ForkJoinPool pool) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(pool, "pool");
        if (from < 0 || to > config.layers() || from > to) {
            throw new IllegalArgumentException(
                    source + ": blocks " + from + " to " + to + " of a model with " + config.layers());
        }
        Tensors t = new Tensors(source, tensors);
        FloatMatrix embedding =
                tensors.containsKey(EMBED_TOKENS) ? t.matrix(EMBED_TOKENS, config.vocabSize(), config.dim()) : null;
        List<Block> blocks = new ArrayList<>(Collections.nCopies(config.layers(), (Block) null));
        List<Block> held = blocks(t, config, from, to, pool);
        for (int l = from; l < to; l++) {
            blocks.set(l, held.get(l - from));
        }
        return new LlamaDecoder(source, config, embedding, blocks, null, null, pool);
    }

    private static List<Block> blocks(Tensors t, LlamaConfig config, int from, int to, ForkJoinPool pool) {
        int dim = config.dim();
        List<Block> blocks = new ArrayList<>();
        for (int l = from; l < to; l++) {
            String p = "model.layers." + l + ".";
            blocks.add(new Block(
                    t.vector(p + "input_layernorm.weight", dim),
                    t.linear(p + "self_attn.q_proj", config.qDim(), dim, true, pool),
                    t.linear(p + "self_attn.k_proj", config.kvDim(), dim, true, pool),
                    t.linear(p + "self_attn.v_proj", config.kvDim(), dim, true, pool),
                    t.linear(p + "self_attn.o_proj", dim, config.qDim(), false, pool),
                    t.vector(p + "post_attention_layernorm.weight", dim),
                    t.linear(p + "mlp.gate_proj", config.hiddenDim(), dim, false, pool),
                    t.linear(p + "mlp.up_proj", config.hiddenDim(), dim, false, pool),
                    t.linear(p + "mlp.down_proj", dim, config.hiddenDim(), false, pool)));
        }
        return blocks;
    }

    /**
     * The decoder of a llama2.c checkpoint: rotary base 10000, RMSNorm epsilon 1e-5, the interleaved rotary layout and
     * {@code dim / n_heads} per head, as {@code run.c} runs it.
     */
    public static LlamaDecoder fromLlama2c(Llama2cCheckpoint checkpoint, ForkJoinPool pool) {
        return of(checkpoint.source(), llama2cConfig(checkpoint.header()), checkpoint.tensors(), pool);
    }

    /** The configuration of a llama2.c checkpoint's model, as {@link #fromLlama2c} runs it. */
    public static LlamaConfig llama2cConfig(Llama2cCheckpoint.Header h) {
        return new LlamaConfig(
                h.dim(),
                h.hiddenDim(),
                h.layers(),
                h.heads(),
                h.kvHeads(),
                h.headSize(),
                h.vocabSize(),
                h.seqLen(),
                LLAMA2C_ROPE_THETA,
                LLAMA2C_NORM_EPS,
                RopeLayout.INTERLEAVED,
                h.sharedClassifier());
    }

    /**
     * The decoder stored at {@code path}: a Hugging Face model folder ({@link HuggingFaceLlama}) or a llama2.c
     * checkpoint ({@code .bin}, {@link Llama2cCheckpoint}).
     *
     * @throws IllegalArgumentException for any other path, naming it
     */
    public static LlamaDecoder read(Path path, ForkJoinPool pool) throws IOException {
        if (Files.isDirectory(path)) {
            return HuggingFaceLlama.read(path, pool);
        }
        if (path.getFileName() == null || !path.getFileName().toString().endsWith(".bin")) {
            throw new IllegalArgumentException(
                    path + ": expected a llama2.c checkpoint (.bin) or a Hugging Face model folder");
        }
        return fromLlama2c(Llama2cCheckpoint.read(path), pool);
    }

    /** {@code run.c}'s rotary base. */
    public static final double LLAMA2C_ROPE_THETA = 10000;
    /** {@code run.c}'s RMSNorm epsilon. */
    public static final double LLAMA2C_NORM_EPS = 1e-5;

    /** Looks tensors up by name, checking shapes. */
    private record Tensors(String source, Map<String, FloatMatrix> map) {

        FloatMatrix matrix(String name, int rows, int cols) {
            FloatMatrix m = map.get(name);
            if (m == null) {
                throw new IllegalArgumentException(source + ": no tensor '" + name + "'");
            }
            if (m.rows() != rows || m.cols() != cols) {
                throw new IllegalArgumentException(source + ": tensor '" + name + "' is [" + m.rows() + ", " + m.cols()
                        + "], the config needs [" + rows + ", " + cols + "]");
            }
            return m;
        }

        float[] vector(String name, int length) {
            return matrix(name, 1, length).toArray();
        }

        Linear linear(String module, int out, int in, boolean mayHaveBias, ForkJoinPool pool) {
            FloatMatrix w = matrix(module + ".weight", out, in);
            String biasName = module + ".bias";
            float[] bias = null;
            if (map.containsKey(biasName)) {
                if (!mayHaveBias) {
                    throw new IllegalArgumentException(source + ": tensor '" + biasName
                            + "': the Llama architecture has no bias there (only q_proj, k_proj and v_proj may)");
                }
                bias = vector(biasName, out);
            }
            return Linear.dense(module, w.named(module), bias, pool);
        }
    }

    /** The hyperparameters. */
    public LlamaConfig config() {
        return config;
    }

    /** The model's name in messages. */
    public String source() {
        return source;
    }

    /** Every linear layer in forward order: per block q, k, v, o, gate, up, down; the output head is not included. */
    public List<Linear> linears() {
        List<Linear> all = new ArrayList<>();
        for (Block b : blocks) {
            if (b != null) {
                all.addAll(b.linears());
            }
        }
        return all;
    }

    /** The linear layers of block {@code index}, in forward order (q, k, v, o, gate, up, down). */
    public List<Linear> linears(int index) {
        return block(index).linears();
    }

    /**
     * This decoder with some linear layers replaced, by name (each replacement must have the shape of the layer it
     * replaces). Embeddings, norms and the output head are shared.
     */
    public LlamaDecoder withLinears(Map<String, Linear> replacements) {
        Map<String, Linear> left = new LinkedHashMap<>(replacements);
        List<Block> out = new ArrayList<>();
        for (Block b : blocks) {
            if (b == null) {
                out.add(null);
                continue;
            }
            out.add(new Block(
                    b.attentionNorm,
                    Replacements.pick(b.q, left),
                    Replacements.pick(b.k, left),
                    Replacements.pick(b.v, left),
                    Replacements.pick(b.o, left),
                    b.mlpNorm,
                    Replacements.pick(b.gate, left),
                    Replacements.pick(b.up, left),
                    Replacements.pick(b.down, left)));
        }
        if (!left.isEmpty()) {
            throw new IllegalArgumentException(source + ": no linear layer named " + left.keySet());
        }
        return new LlamaDecoder(source, config, embedding, out, finalNorm, head, pool);
    }

    /** A cache for one sequence of up to {@code capacity} tokens (at most the model's {@code maxSeqLen}). */
    public KvCache newCache(int capacity) {
        if (capacity <= 0 || capacity > config.maxSeqLen()) {
            throw new IllegalArgumentException(
                    source + ": a cache of " + capacity + " tokens; the model takes 1 to " + config.maxSeqLen());
        }
        return new KvCache(config.layers(), capacity, config.kvDim());
    }

    /** The logits {@code [tokens, vocab]} of a sequence starting at position 0: the next-token scores after each. */
    public FloatMatrix logits(int[] tokens) {
        return forward(tokens, newCache(checkLength(tokens.length)), null);
    }

    /**
     * Runs {@code tokens} at the positions after those already in {@code cache} (prefill when it is empty, one token
     * at a time when generating), appends their keys and values to it, and returns their logits {@code [tokens,
     * vocab]}. {@code tap} (may be null) sees every linear's input.
     */
    public FloatMatrix forward(int[] tokens, KvCache cache, Tap tap) {
        Objects.requireNonNull(cache, "cache");
        if (cache.layers() != config.layers() || cache.kvDim != config.kvDim()) {
            throw new IllegalArgumentException(source + ": the cache was made for another model");
        }
        if (tokens.length == 0) {
            throw new IllegalArgumentException(source + ": no tokens");
        }
        requireWhole("forward");
        if (cache.length + tokens.length > cache.capacity) {
            throw new IllegalArgumentException(source + ": " + cache.length + " cached tokens and " + tokens.length
                    + " new ones exceed the cache's " + cache.capacity);
        }
        FloatMatrix h = embed(tokens);
        for (int l = 0; l < blocks.size(); l++) {
            h = block(blocks.get(l), h, cache.keys[l], cache.values[l], cache.length, tap);
        }
        cache.length += tokens.length;
        return head(h);
    }

    /** The embeddings {@code [tokens, dim]} of token ids: block 0's input. */
    public FloatMatrix embed(int[] tokens) {
        if (embedding == null) {
            throw new IllegalStateException(source + ": this part of the decoder holds no token embeddings");
        }
        int dim = config.dim();
        float[] x = new float[Math.multiplyExact(tokens.length, dim)];
        for (int t = 0; t < tokens.length; t++) {
            int id = tokens[t];
            if (id < 0 || id >= config.vocabSize()) {
                throw new IllegalArgumentException(
                        source + ": token " + t + " has id " + id + ", the vocabulary has " + config.vocabSize());
            }
            System.arraycopy(embedding.array(), embedding.rowOffset(id), x, t * dim, dim);
        }
        return FloatMatrix.of("embeddings", tokens.length, dim, x, 0);
    }

    /**
     * Block {@code index} applied to hidden states {@code h [tokens, dim]} of one sequence at positions {@code 0 ...
     * tokens - 1}, with {@code tap} (may be null) seeing its seven linears' inputs: with {@link #embed} and {@link
     * #head}, what block-by-block calibration runs on cached activations.
     */
    public FloatMatrix block(int index, FloatMatrix h, Tap tap) {
        checkHidden(h);
        int kv = h.rows() * config.kvDim();
        return block(block(index), h, new float[kv], new float[kv], 0, tap);
    }

    /**
     * Block {@code index} run on hidden states {@code h [tokens, dim]} of one sequence (positions {@code 0 ... tokens -
     * 1}) only as far as it must: {@code tap} sees the inputs of the linears named in {@code names}, and the pass
     * stops before the first linear after the last of them. Calibration that collects one group's inputs at a time
     * (GPTQ's true-sequential order) runs no more of the block than it reads.
     *
     * @throws IllegalArgumentException when a name is not one of the block's linears
     */
    public void inputs(int index, FloatMatrix h, Set<String> names, Tap tap) {
        checkHidden(h);
        Block b = block(index);
        Set<String> left = new HashSet<>(names);
        for (Linear l : b.linears()) {
            left.remove(l.name());
        }
        if (!left.isEmpty()) {
            throw new IllegalArgumentException(source + ": block " + index + " has no linear named " + left);
        }
        Set<String> wanted = new HashSet<>(names);
        if (wanted.isEmpty()) {
            return;
        }
        int kv = h.rows() * config.kvDim();
        try {
            block(b, h, new float[kv], new float[kv], 0, (name, in) -> {
                if (wanted.remove(name)) {
                    tap.accept(name, in);
                }
                if (wanted.isEmpty()) {
                    throw Enough.INSTANCE;
                }
            });
        } catch (Enough done) {
            return;
        }
        throw new IllegalStateException(source + ": block " + index + " never ran " + wanted);
    }

    /** Ends a pass of {@link #inputs} once every input it wants is seen: control flow, no stack trace. */
    private static final class Enough extends RuntimeException {
        static final Enough INSTANCE = new Enough();

        private Enough() {
            super(null, null, false, false);
        }
    }

    /**
     * Block {@code index}'s attention module ({@code self_attn}: q, k, v, rotary embedding, causal attention, o) applied
     * to the output {@code xn [tokens, dim]} of its {@code input_layernorm}, for one sequence at positions {@code 0 ...
     * tokens - 1}: what the block adds to the residual stream. AWQ's scale search compares it.
     */
    public FloatMatrix selfAttention(int index, FloatMatrix xn) {
        checkHidden(xn);
        int kv = xn.rows() * config.kvDim();
        Block b = block(index);
        return run(b.o, context(b, xn, new float[kv], new float[kv], 0, null), null);
    }

    /**
     * Block {@code index}'s MLP ({@code down(silu(gate(xn)) * up(xn))}) applied to the output {@code xn [tokens, dim]}
     * of its {@code post_attention_layernorm}: what the block adds to the residual stream. AWQ's scale search compares
     * it.
     */
    public FloatMatrix mlp(int index, FloatMatrix xn) {
        checkHidden(xn);
        Block b = block(index);
        return run(b.down, swiglu(b, xn, null), null);
    }

    /*
     * Block index cut where GPTQ's true-sequential groups read their inputs, for one sequence at positions 0 ...
     * tokens - 1: attentionInput(h) feeds q, k, v; attentionContext(h) feeds o; attentionResidual(h, context) is the
     * stream after attention; mlpInput(r) feeds gate, up; mlpActivation(r) feeds down; mlpResidual(r, act) is the
     * block's output. block(index, h, null) computes exactly these floats (it is made of the same private pieces).
     */

    /** Block {@code index}'s {@code input_layernorm} of hidden states {@code h [tokens, dim]}: the input of q, k, v. */
    public FloatMatrix attentionInput(int index, FloatMatrix h) {
        checkHidden(h);
        return normed(h, block(index).attentionNorm, "input_layernorm");
    }

    /**
     * Block {@code index}'s causal attention over {@code rope(q(n(h)))}, {@code rope(k(n(h)))}, {@code v(n(h))} for
     * hidden states {@code h [tokens, dim]} ({@code n} the {@code input_layernorm}): the input of {@code o_proj},
     * {@code [tokens, qDim]}.
     */
    public FloatMatrix attentionContext(int index, FloatMatrix h) {
        checkHidden(h);
        Block b = block(index);
        int kv = h.rows() * config.kvDim();
        return context(b, normed(h, b.attentionNorm, "input_layernorm"), new float[kv], new float[kv], 0, null);
    }

    /**
     * {@code h + o(context)}: the residual stream after block {@code index}'s attention, {@code context} being {@link
     * #attentionContext} of {@code h}.
     */
    public FloatMatrix attentionResidual(int index, FloatMatrix h, FloatMatrix context) {
        checkHidden(h);
        return residual(h, run(block(index).o, context, null));
    }

    /** Block {@code index}'s {@code post_attention_layernorm} of the stream {@code r}: the input of gate and up. */
    public FloatMatrix mlpInput(int index, FloatMatrix r) {
        checkHidden(r);
        return normed(r, block(index).mlpNorm, "post_attention_layernorm");
    }

    /**
     * {@code silu(gate(n(r))) * up(n(r))} of block {@code index} for the stream {@code r} after its attention ({@link
     * #attentionResidual}; {@code n} the {@code post_attention_layernorm}): the input of {@code down_proj}, {@code
     * [tokens, hiddenDim]}.
     */
    public FloatMatrix mlpActivation(int index, FloatMatrix r) {
        checkHidden(r);
        Block b = block(index);
        return swiglu(b, normed(r, b.mlpNorm, "post_attention_layernorm"), null);
    }

    /** {@code r + down(act)}: block {@code index}'s output, {@code act} being {@link #mlpActivation} of {@code r}. */
    public FloatMatrix mlpResidual(int index, FloatMatrix r, FloatMatrix act) {
        checkHidden(r);
        return residual(r, run(block(index).down, act, null));
    }

    /** The name of block {@code index}'s RMSNorm weight before attention ({@code model.layers.N.input_layernorm.weight}). */
    public static String inputLayernorm(int index) {
        return "model.layers." + index + ".input_layernorm.weight";
    }

    /** The name of block {@code index}'s RMSNorm weight before the MLP. */
    public static String postAttentionLayernorm(int index) {
        return "model.layers." + index + ".post_attention_layernorm.weight";
    }

    /**
     * A copy of the weight of block {@code index}'s RMSNorm named {@code name} ({@link #inputLayernorm} or {@link
     * #postAttentionLayernorm}).
     */
    public float[] normWeight(String name) {
        for (int l = 0; l < blocks.size(); l++) {
            if (blocks.get(l) == null) {
                continue;
            }
            if (name.equals(inputLayernorm(l))) {
                return blocks.get(l).attentionNorm.clone();
            }
            if (name.equals(postAttentionLayernorm(l))) {
                return blocks.get(l).mlpNorm.clone();
            }
        }
        throw new IllegalArgumentException(source + ": no block RMSNorm named '" + name + "'");
    }

    /**
     * This decoder with some blocks' RMSNorm weights replaced, by tensor name ({@link #inputLayernorm}, {@link
     * #postAttentionLayernorm}); everything else is shared. AWQ folds its scales into them.
     */
    public LlamaDecoder withNormWeights(Map<String, float[]> replacements) {
        Map<String, float[]> left = new LinkedHashMap<>(replacements);
        List<Block> out = new ArrayList<>();
        for (int l = 0; l < blocks.size(); l++) {
            Block b = blocks.get(l);
            if (b == null) {
                out.add(null);
                continue;
            }
            float[] attentionNorm = norm(left.remove(inputLayernorm(l)), b.attentionNorm, inputLayernorm(l));
            float[] mlpNorm = norm(left.remove(postAttentionLayernorm(l)), b.mlpNorm, postAttentionLayernorm(l));
            out.add(new Block(attentionNorm, b.q, b.k, b.v, b.o, mlpNorm, b.gate, b.up, b.down));
        }
        if (!left.isEmpty()) {
            throw new IllegalArgumentException(source + ": no block RMSNorm named " + left.keySet());
        }
        return new LlamaDecoder(source, config, embedding, out, finalNorm, head, pool);
    }

    private float[] norm(float[] replacement, float[] current, String name) {
        if (replacement == null) {
            return current;
        }
        if (replacement.length != config.dim()) {
            throw new IllegalArgumentException(source + ": '" + name + "' has " + replacement.length
                    + " values, the model's dim is " + config.dim());
        }
        return replacement.clone();
    }

    private void checkHidden(FloatMatrix h) {
        checkLength(h.rows());
        if (h.cols() != config.dim()) {
            throw new IllegalArgumentException(source + ": hidden states '" + h.name() + "' have " + h.cols()
                    + " columns, the model's dim is " + config.dim());
        }
    }

    /** The final RMSNorm and the output head: logits {@code [tokens, vocab]} of the last block's output. */
    public FloatMatrix head(FloatMatrix h) {
        requireWhole("head");
        float[] x = h.toArray();
        rmsNorm(x, h.rows(), finalNorm);
        return head.forward(FloatMatrix.of("final_norm", h.rows(), config.dim(), x, 0));
    }

    private int checkLength(int tokens) {
        if (tokens == 0) {
            throw new IllegalArgumentException(source + ": no tokens");
        }
        if (tokens > config.maxSeqLen()) {
            throw new IllegalArgumentException(
                    source + ": " + tokens + " tokens, the model takes at most " + config.maxSeqLen());
        }
        return tokens;
    }

    private Block block(int index) {
        if (index < 0 || index >= blocks.size()) {
            throw new IllegalArgumentException(
                    source + ": no block " + index + " (the model has " + blocks.size() + ")");
        }
        Block b = blocks.get(index);
        if (b == null) {
            throw new IllegalStateException(source + ": block " + index + " is not held by this part of the decoder");
        }
        return b;
    }

    /** Whether this decoder holds every block, the embeddings, the final norm and the head (not a {@link #window}). */
    public boolean whole() {
        return head != null && embedding != null && !blocks.contains(null);
    }

    private void requireWhole(String what) {
        if (!whole()) {
            throw new IllegalStateException(source + ": " + what + " needs the whole decoder, this is a part of it");
        }
    }

    /**
     * One block for {@code n} tokens at positions {@code start ... start + n - 1}; their keys and values are written
     * into {@code keys}/{@code values} ({@code [positions, kvDim]}) after the {@code start} already there. Made of the
     * pieces the public {@link #attentionContext}, {@link #attentionResidual}, {@link #mlpActivation} and {@link
     * #mlpResidual} run one by one, so they compute the same floats.
     */
    private FloatMatrix block(Block b, FloatMatrix h, float[] keys, float[] values, int start, Tap tap) {
        FloatMatrix context = context(b, normed(h, b.attentionNorm, "input_layernorm"), keys, values, start, tap);
        FloatMatrix r = residual(h, run(b.o, context, tap));
        FloatMatrix act = swiglu(b, normed(r, b.mlpNorm, "post_attention_layernorm"), tap);
        return residual(r, run(b.down, act, tap));
    }

    /** A new RMSNorm of {@code h [n, dim]} with weight {@code w}, named {@code name}. */
    private FloatMatrix normed(FloatMatrix h, float[] w, String name) {
        float[] x = h.toArray();
        rmsNorm(x, h.rows(), w);
        return FloatMatrix.of(name, h.rows(), config.dim(), x, 0);
    }

    /** The residual stream {@code h + y}, both {@code [n, dim]}, as a new matrix. */
    private FloatMatrix residual(FloatMatrix h, FloatMatrix y) {
        if (h.rows() != y.rows() || h.cols() != y.cols()) {
            throw new IllegalArgumentException(source + ": '" + y.name() + "' [" + y.rows() + ", " + y.cols()
                    + "] added to hidden states '" + h.name() + "' [" + h.rows() + ", " + h.cols() + "]");
        }
        float[] x = h.toArray();
        float[] add = y.array();
        int a0 = y.rowOffset(0);
        for (int i = 0; i < x.length; i++) {
            x[i] += add[a0 + i];
        }
        return FloatMatrix.of("hidden", h.rows(), h.cols(), x, 0);
    }

    /**
     * {@code attention(rope(q(xn)), rope(k(xn)), v(xn))} for {@code n} tokens at positions {@code start ...}: the input
     * of {@code o}, {@code [n, qDim]}.
     */
    private FloatMatrix context(Block b, FloatMatrix xn, float[] keys, float[] values, int start, Tap tap) {
        int n = xn.rows();
        float[] q = run(b.q, xn, tap).toArray();
        float[] k = run(b.k, xn, tap).toArray();
        float[] v = run(b.v, xn, tap).toArray();
        int kvDim = config.kvDim();
        for (int t = 0; t < n; t++) {
            rope(q, t * config.qDim(), config.heads(), start + t);
            rope(k, t * kvDim, config.kvHeads(), start + t);
        }
        System.arraycopy(k, 0, keys, start * kvDim, n * kvDim);
        System.arraycopy(v, 0, values, start * kvDim, n * kvDim);
        float[] context = attention(q, keys, values, n, start);
        return FloatMatrix.of("attention", n, config.qDim(), context, 0);
    }

    /** {@code silu(gate(xn)) * up(xn)}: the input of {@code down}, {@code [n, hiddenDim]}. */
    private FloatMatrix swiglu(Block b, FloatMatrix xn, Tap tap) {
        float[] gate = run(b.gate, xn, tap).toArray();
        float[] up = run(b.up, xn, tap).toArray();
        for (int i = 0; i < gate.length; i++) {
            gate[i] = silu(gate[i]) * up[i];
        }
        return FloatMatrix.of("swiglu", xn.rows(), config.hiddenDim(), gate, 0);
    }

    private static FloatMatrix run(Linear linear, FloatMatrix x, Tap tap) {
        if (tap != null) {
            tap.accept(linear.name(), x);
        }
        return linear.forward(x);
    }

    /** {@code silu(g) = g * sigmoid(g)}, as run.c computes it. */
    static float silu(float g) {
        return g * (float) (1 / (1 + Math.exp(-g)));
    }

    /** RMSNorm of each row of {@code x [n, dim]} in place: {@code w * x / sqrt(mean(x^2) + eps)}. */
    private void rmsNorm(float[] x, int n, float[] w) {
        int dim = config.dim();
        for (int t = 0; t < n; t++) {
            int off = t * dim;
            double ss = 0;
            for (int c = 0; c < dim; c++) {
                ss += (double) x[off + c] * x[off + c];
            }
            float inv = (float) (1 / Math.sqrt(ss / dim + config.normEps()));
            for (int c = 0; c < dim; c++) {
                x[off + c] = w[c] * (inv * x[off + c]);
            }
        }
    }

    /** Rotary embedding of {@code heads} heads at {@code v[off ...]} for position {@code pos}, in place. */
    private void rope(float[] v, int off, int heads, int pos) {
        int d = config.headDim();
        int half = d / 2;
        boolean interleaved = config.rope() == RopeLayout.INTERLEAVED;
        for (int j = 0; j < half; j++) {
            float angle = pos * inverseFrequency[j];
            float cos = (float) Math.cos(angle);
            float sin = (float) Math.sin(angle);
            for (int h = 0; h < heads; h++) {
                int a = off + h * d + (interleaved ? 2 * j : j);
                int b = interleaved ? a + 1 : a + half;
                float v0 = v[a];
                float v1 = v[b];
                v[a] = v0 * cos - v1 * sin;
                v[b] = v0 * sin + v1 * cos;
            }
        }
    }

    /** Queries per attention task: a long prefill is split so that every core has work even with few kv heads. */
    private static final int QUERIES_PER_TASK = 128;

    /**
     * Causal attention of {@code n} queries at positions {@code start ...} over keys and values at positions {@code 0
     * ... start + n - 1}; query head {@code h} reads key/value head {@code h / (heads / kvHeads)}. Runs on the kernel
     * layer ({@link AttentionKernels}), one task per key/value head and run of {@link #QUERIES_PER_TASK} queries; a
     * query's output depends only on what it sees, so not on this split nor on the thread count.
     */
    private float[] attention(float[] q, float[] keys, float[] values, int n, int start) {
        int d = config.headDim();
        int qDim = config.qDim();
        int kvDim = config.kvDim();
        int group = config.heads() / config.kvHeads();
        float[] context = new float[n * qDim];
        int runs = (n + QUERIES_PER_TASK - 1) / QUERIES_PER_TASK;
        Parallel.forEach(pool, config.kvHeads() * runs, task -> {
            int kv = task / runs;
            int i0 = (task % runs) * QUERIES_PER_TASK;
            int rows = Math.min(QUERIES_PER_TASK, n - i0);
            int head = i0 * qDim + kv * group * d;
            float[] scratch = new float[AttentionKernels.attentionScratchSize(rows, start + i0, d)];
            KERNELS.attention(
                    rows,
                    start + i0,
                    true,
                    d,
                    group,
                    q,
                    head,
                    qDim,
                    keys,
                    kv * d,
                    values,
                    kv * d,
                    kvDim,
                    context,
                    head,
                    qDim,
                    scratch);
        });
        return context;
    }

    @Override
    public String toString() {
        return "LlamaDecoder[" + source + ", " + config + "]";
    }

    /**
     * The keys and values of one sequence's tokens so far, per block, for generation: {@link #forward} appends to it.
     * Not thread-safe.
     */
    public static final class KvCache {
        private final float[][] keys;
        private final float[][] values;
        private final int capacity;
        private final int kvDim;
        private int length;

        private KvCache(int layers, int capacity, int kvDim) {
            long size = (long) capacity * kvDim;
            if (size > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException(
                        "a cache of " + capacity + " tokens x " + kvDim + " floats per block is too large");
            }
            this.keys = new float[layers][(int) size];
            this.values = new float[layers][(int) size];
            this.capacity = capacity;
            this.kvDim = kvDim;
        }

        /** Tokens cached: the position of the next token. */
        public int length() {
            return length;
        }

        /** Tokens the cache can hold. */
        public int capacity() {
            return capacity;
        }

        int layers() {
            return keys.length;
        }
    }
}
