package dev.quant4j.pipeline;

import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.model.DecoderBlocks;
import dev.quant4j.model.Linear;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * GPTQ's block loop over a decoder, as AutoGPTQ runs it on a model ({@code auto_gptq/modeling/_base.py}, {@code
 * quantize}, with {@code true_sequential}): the calibration sequences' embeddings are block 0's input; in each block
 * the linears that share an input are quantized together, in forward order ({@link #TRUE_SEQUENTIAL}: q, k, v; then
 * o; then gate, up; then down), each group's Hessian accumulated from a forward pass of the block in which the groups
 * before it are already quantized; the block's output, computed with all its linears quantized, is the next block's
 * input. Only one block's weights and the calibration activations entering it are held.
 *
 * <p>How each layer is quantized is the caller's ({@link LayerQuantizer}): quant4j's GPTQ with its round-to-nearest
 * guard ({@link DecoderQuantizer}, {@link DecoderQuantizer.Method#GPTQ}) or ggml's blocks ({@link GgufDecoderGptq}).
 * The loop can start at any block from the inputs a stopped run saved ({@link Start}), and the results depend neither
 * on the thread count nor on the size of the rounds the calibration sequences run in.
 */
public final class DecoderGptq {

    /** The groups of linears that share an input, in forward order, by the suffix of their module name. */
    static final List<Set<String>> TRUE_SEQUENTIAL = List.of(
            Set.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
            Set.of("self_attn.o_proj"),
            Set.of("mlp.gate_proj", "mlp.up_proj"),
            Set.of("mlp.down_proj"));

    private final ForkJoinPool pool;
    private final long tapBytes;

    /** The loop on {@code pool}'s threads. */
    public DecoderGptq(ForkJoinPool pool) {
        this(pool, DecoderQuantizer.TAP_BYTES);
    }

    /** As the public constructor, each round of {@code down_proj}'s inputs holding at most {@code tapBytes}. */
    DecoderGptq(ForkJoinPool pool, long tapBytes) {
        this.pool = Objects.requireNonNull(pool, "pool");
        this.tapBytes = tapBytes;
    }

    /**
     * How GPTQ's block loop quantizes one linear layer, given the Hessian of the layer's calibration inputs (collected
     * with the groups before it quantized): the form the layer is stored in, the weight the rest of the calibration
     * runs it with (the values the stored form stands for), and its report. quant4j's own linear form is one ({@link
     * DecoderQuantizer.Method#GPTQ}); ggml's blocks are another ({@link GgufDecoderGptq}).
     *
     * @param <T> the stored form
     */
    @FunctionalInterface
    public interface LayerQuantizer<T> {
        Quantized<T> quantize(Linear.Dense layer, HessianAccumulator hessian);
    }

    /**
     * One layer as a {@link LayerQuantizer} made it.
     *
     * @param stored what is written
     * @param dequantized the values {@code stored} stands for, {@code [out, in]} as the layer's weight
     * @param report what happened
     */
    public record Quantized<T>(T stored, FloatMatrix dequantized, LayerReport report) {
        public Quantized {
            Objects.requireNonNull(stored, "stored");
            Objects.requireNonNull(dequantized, "dequantized");
            Objects.requireNonNull(report, "report");
        }
    }

    /**
     * What {@link #run} hands over after each block: its layers' stored forms by tensor name and their reports, in
     * forward order.
     */
    @FunctionalInterface
    public interface Sink<T> {
        void accept(int block, Map<String, T> stored, List<LayerReport> layers) throws IOException;
    }

    /**
     * The block loop on {@code source} with each layer quantized by {@code layers}: the calibration sequences'
     * embeddings are block 0's input; in each block the layers that share an input are quantized group after group
     * (true sequential), each group's Hessian from a forward pass of the block with the groups before it quantized
     * (replaced by their {@link Quantized#dequantized()} weights); the block's output with all its layers quantized is
     * the next block's input. {@link DecoderQuantizer.Method#GPTQ} runs this loop with quant4j's GPTQ and RTN; the
     * results depend neither on the thread count nor on the size of the rounds the calibration sequences run in.
     */
    public <T> void run(DecoderBlocks source, List<int[]> calibration, LayerQuantizer<T> layers, Sink<T> sink)
            throws IOException {
        run(source, start(source, calibration), layers, sink, (b, next) -> {});
    }

    /**
     * Where GPTQ's block loop begins: block {@code block}, whose inputs are {@code states}, one {@code [tokens, dim]}
     * matrix per calibration sequence. Block 0 and the sequences' embeddings ({@link #start}), or the inputs a stopped
     * run saved after block {@code block - 1} (the loop is deterministic, so it continues as it would have).
     *
     * <p>The inputs are handed over once: the loop takes them ({@link #take}), so that neither it nor its caller holds
     * them after their block (a gigabyte for a 7B model on 65,536 calibration tokens).
     */
    public static final class Start {
        private final int block;
        private List<FloatMatrix> states;

        public Start(int block, List<FloatMatrix> states) {
            if (block < 0) {
                throw new IllegalArgumentException("start block " + block + " is negative");
            }
            if (states.isEmpty()) {
                throw new IllegalArgumentException("block " + block + " has no calibration inputs");
            }
            this.block = block;
            this.states = new ArrayList<>(states);
        }

        /** The first block the loop quantizes. */
        public int block() {
            return block;
        }

        /** The inputs, once; a second call is an error (a Start begins one loop). */
        List<FloatMatrix> take() {
            if (states == null) {
                throw new IllegalStateException("block " + block + "'s inputs were taken by an earlier loop");
            }
            List<FloatMatrix> taken = states;
            states = null;
            return taken;
        }
    }

    /** Block 0, its inputs the embeddings of {@code calibration}. */
    public static Start start(DecoderBlocks source, List<int[]> calibration) throws IOException {
        if (calibration == null || calibration.isEmpty()) {
            throw new IllegalArgumentException(source.source() + ": GPTQ needs calibration sequences");
        }
        List<FloatMatrix> states = new ArrayList<>();
        for (int[] seq : calibration) {
            states.add(source.embed(seq));
        }
        return new Start(0, states);
    }

    /**
     * What GPTQ's block loop hands over after each block, once its {@link Sink} has the block's layers: the next
     * block's inputs (after the last block, its outputs), the point a stopped run continues from.
     */
    @FunctionalInterface
    public interface AfterBlock {
        void accept(int block, List<FloatMatrix> next) throws IOException;
    }

    /**
     * The block loop ({@link #run(DecoderBlocks, List, LayerQuantizer, Sink)}) from {@code start}, each block's
     * outputs handed to {@code after} once {@code sink} has its layers.
     */
    public <T> void run(DecoderBlocks source, Start start, LayerQuantizer<T> layers, Sink<T> sink, AfterBlock after)
            throws IOException {
        Objects.requireNonNull(layers, "layers");
        Objects.requireNonNull(sink, "sink");
        Objects.requireNonNull(after, "after");
        int dim = source.config().dim();
        if (start.block() > source.config().layers()) {
            throw new IllegalArgumentException(source.source() + ": no block " + start.block() + " (the model has "
                    + source.config().layers() + ")");
        }
        List<FloatMatrix> states = start.take();
        for (FloatMatrix x : states) {
            if (x.cols() != dim) {
                throw new IllegalArgumentException(source.source() + ": block " + start.block() + "'s inputs are "
                        + x.cols() + " wide, the model's hidden size is " + dim);
            }
        }
        for (int b = start.block(); b < source.config().layers(); b++) {
            Map<String, T> stored = new LinkedHashMap<>();
            List<LayerReport> reports = new ArrayList<>();
            states = block(source.block(b), b, states, layers, stored, reports);
            sink.accept(b, stored, reports);
            after.accept(b, states);
        }
    }

    /**
     * GPTQ on block {@code b} of {@code model}, whose inputs are {@code states}: the block's linears quantized group
     * after group (true sequential), each group's Hessian from the block with the groups before it quantized. Returns
     * the next block's inputs, computed with the whole block quantized.
     *
     * <p>Each part of the block runs once per group, on the layers quantized so far (the pieces of {@link
     * LlamaDecoder#block} from {@link LlamaDecoder#attentionInput} on, which compute its floats): q, k, v read {@code
     * input_layernorm(x)}; o reads the attention output {@code a}, kept for every sequence; gate and up read {@code
     * post_attention_layernorm(r)} with {@code r = x + o(a)}, kept in {@code a}'s place; down reads the SwiGLU
     * activations {@code act}, too wide to keep ({@code hiddenDim} per token): they are computed in rounds of at most
     * {@code tapBytes}, and once more for the output {@code r + down(act)}. Each Hessian takes the sequences in order,
     * one {@code add} each: the weights, reports and outputs are, bit for bit, those of running the block from its
     * input up to each group ({@link DecoderQuantizer#forEachInput}) and then whole ({@link
     * DecoderQuantizer#outputs}).
     *
     * <p>{@code states} is consumed: once the stream after attention is made, its elements are set to null, so that
     * the block's inputs and its kept activations are not both held through the MLP's quantization.
     */
    <T> List<FloatMatrix> block(
            LlamaDecoder model,
            int b,
            List<FloatMatrix> states,
            LayerQuantizer<T> layers,
            Map<String, T> stored,
            List<LayerReport> reports) {
        Map<String, Linear> replaced = new LinkedHashMap<>();
        List<List<Linear.Dense>> groups = trueSequential(model.linears(b));
        int n = states.size();
        int tokens = states.get(0).rows();
        // each Hessian is made in the argument of quantizeGroup, so that it is garbage once its group is quantized
        // q, k, v
        LlamaDecoder qkv = quantizeGroup(
                model,
                groups.get(0),
                hessian(groups.get(0), states, x -> model.attentionInput(b, x)),
                layers,
                replaced,
                stored,
                reports);
        // o: the attention output of every sequence, kept
        FloatMatrix[] kept = new FloatMatrix[n];
        inParallel(n, i -> kept[i] = qkv.attentionContext(b, states.get(i)));
        LlamaDecoder o = quantizeGroup(
                model, groups.get(1), hessian(groups.get(1), List.of(kept), a -> a), layers, replaced, stored, reports);
        // gate, up: the stream after attention replaces the attention output; the block's inputs are not read again,
        // and are let go (with the stream kept, the block holds one copy of its activations besides its inputs' room)
        inParallel(n, i -> kept[i] = o.attentionResidual(b, states.get(i), kept[i]));
        java.util.Collections.fill(states, null);
        LlamaDecoder mlp = quantizeGroup(
                model,
                groups.get(2),
                hessian(groups.get(2), List.of(kept), r -> o.mlpInput(b, r)),
                layers,
                replaced,
                stored,
                reports);
        // down: the activations, a round of sequences at a time
        LlamaDecoder whole = quantizeGroup(
                model,
                groups.get(3),
                downHessian(groups.get(3), mlp, b, kept, tokens),
                layers,
                replaced,
                stored,
                reports);
        // the output, in the stream's place
        inParallel(n, i -> kept[i] = whole.mlpResidual(b, kept[i], whole.mlpActivation(b, kept[i])));
        return new ArrayList<>(List.of(kept));
    }

    /** The Hessian of {@code group}'s common input, {@code input} of each of {@code from} added in order. */
    private HessianAccumulator hessian(
            List<Linear.Dense> group, List<FloatMatrix> from, java.util.function.UnaryOperator<FloatMatrix> input) {
        HessianAccumulator h = hessian(group);
        for (FloatMatrix x : from) {
            h.add(input.apply(x), 1);
        }
        return h;
    }

    /**
     * The Hessian of {@code down_proj}'s input, the SwiGLU activations of each stream after attention in {@code
     * kept}, made in parallel in rounds of at most {@code tapBytes} and added in sequence order.
     */
    private HessianAccumulator downHessian(
            List<Linear.Dense> down, LlamaDecoder mlp, int b, FloatMatrix[] kept, int tokens) {
        HessianAccumulator h = hessian(down);
        int n = kept.length;
        long perSequence = (long) Float.BYTES * down.get(0).inFeatures() * tokens;
        int round = (int) Math.max(1, Math.min(n, tapBytes / Math.max(1, perSequence)));
        for (int from = 0; from < n; from += round) {
            int first = from;
            FloatMatrix[] act = new FloatMatrix[Math.min(round, n - from)];
            inParallel(act.length, i -> act[i] = mlp.mlpActivation(b, kept[first + i]));
            for (FloatMatrix x : act) {
                h.add(x, 1);
            }
        }
        return h;
    }

    /** Block linears ({@code linears(b)}) in the groups of {@link #TRUE_SEQUENTIAL}, each in forward order. */
    private static List<List<Linear.Dense>> trueSequential(List<Linear> linears) {
        List<List<Linear.Dense>> groups = new ArrayList<>();
        for (Set<String> group : TRUE_SEQUENTIAL) {
            groups.add(linears.stream()
                    .filter(l -> group.stream().anyMatch(s -> l.name().endsWith("." + s)))
                    .map(l -> (Linear.Dense) l)
                    .toList());
        }
        return groups;
    }

    /** An empty Hessian for the layers of {@code group}, named after the first. */
    private HessianAccumulator hessian(List<Linear.Dense> group) {
        return new HessianAccumulator(group.get(0).name(), group.get(0).inFeatures(), pool);
    }

    /**
     * Quantizes each layer of {@code group} with the Hessian {@code h} of their common input, adding its stored form
     * and report, and its dequantized weight to {@code replaced}; returns {@code model} with every layer in {@code
     * replaced} so far.
     */
    private <T> LlamaDecoder quantizeGroup(
            LlamaDecoder model,
            List<Linear.Dense> group,
            HessianAccumulator h,
            LayerQuantizer<T> layers,
            Map<String, Linear> replaced,
            Map<String, T> stored,
            List<LayerReport> reports) {
        for (Linear.Dense d : group) {
            Quantized<T> q = layers.quantize(d, h);
            stored.put(d.name() + ".weight", q.stored());
            reports.add(q.report());
            // as AutoGPTQ writes the quantized-dequantized weight back into the nn.Linear it then runs: a prefill over
            // many tokens is a dense matrix product
            replaced.put(d.name(), Linear.dense(d.name(), q.dequantized().named(d.name()), d.bias(), pool));
        }
        return model.withLinears(replaced);
    }

    /** {@code task} for {@code 0 ... n - 1}, in parallel on the pool. */
    private void inParallel(int n, IntConsumer task) {
        pool.submit(() -> IntStream.range(0, n).parallel().forEach(task)).join();
    }
}
