package dev.quant4j.pipeline;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.model.DecoderBlocks;
import dev.quant4j.model.Linear;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Quantizes every linear layer of a {@link LlamaDecoder} (the output head and the embeddings stay in FP32, as AutoGPTQ
 * and llama.cpp leave them by default).
 *
 * <p>Round-to-nearest and the codebooks quantize each weight on its own. GPTQ runs as AutoGPTQ runs it on a model
 * ({@code auto_gptq/modeling/_base.py}, {@code quantize}, with {@code true_sequential}): the calibration sequences'
 * embeddings are block 0's input; in each block the linears that share an input are quantized together, in forward
 * order (q, k, v; then o; then gate, up; then down), each group's Hessian accumulated from a forward pass of the block
 * in which the groups before it are already quantized; the block's output, computed with all its linears quantized,
 * is the next block's input. Only the calibration activations of one block live in memory besides the model.
 *
 * <p>GPTQ is never worse than round-to-nearest here: for each layer, when GPTQ's output error on the calibration
 * activations, {@code ||W X^T - Q X^T||^2}, exceeds that of round-to-nearest with the same scheme, the RTN weight is
 * kept and the {@link LayerReport} says so.
 *
 * <p>A layer whose input width the group size does not divide is quantized per output channel instead, and reported.
 */
public final class DecoderQuantizer {

    /** The quantization methods a whole decoder can be quantized with. */
    public enum Method {
        /** Round-to-nearest, {@link RtnQuantizer}. */
        RTN,
        /** bitsandbytes' NF4 codebook, {@link BlockwiseQuantizer} ({@code groupSize} is the block size). */
        NF4,
        /** GPTQ, block by block on calibration sequences. */
        GPTQ,
        /**
         * AWQ per layer ({@link Awq}: each layer's own input scales, kept in its quantized tensor), on the FP32
         * model's activations.
         */
        AWQ,
        /**
         * AWQ as llm-awq runs it on Llama blocks ({@link BlockAwq}): scales shared by the layers that read one input,
         * searched at the attention module's or the MLP's output, folded into the RMSNorm weights and the previous
         * linear; clipping; llm-awq's quantizer on the folded weights (no input scales left).
         */
        AWQ_BLOCK;

        /** The method's name on the command line: {@code rtn}, {@code nf4}, {@code gptq}, {@code awq}, {@code awq-block}. */
        public String id() {
            return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
        }

        /** The method whose {@link #id()} is {@code id} (any case), or empty. */
        public static java.util.Optional<Method> fromId(String id) {
            for (Method m : values()) {
                if (m.id().equalsIgnoreCase(id)) {
                    return java.util.Optional.of(m);
                }
            }
            return java.util.Optional.empty();
        }
    }

    /**
     * How to quantize every linear layer.
     *
     * @param groupSize columns per scale, or {@link LinearScheme#PER_CHANNEL}; for NF4 the block size
     * @param sym symmetric (GPTQ's {@code sym=True}) instead of asymmetric; linear methods only
     * @param actOrder GPTQ's {@code desc_act}
     * @param mse GPTQ's range search ({@link GptqConfig#mse()}: each group's range shrunk to the factor that
     *     minimises its rounding error), not on by default in the reference, as here
     * @param damp GPTQ's {@code damp_percent}: the fraction of the mean Hessian diagonal added to it ({@link
     *     #DEFAULT_DAMP} as in the reference)
     * @param staticGroups GPTQ's {@code static_groups}: every group's scale and zero-point computed from the weights
     *     before any column is quantized (with act-order, the groups stay those of the natural column order); a layer
     *     quantized per channel has one group and ignores it
     */
    public record Setting(
            Method method,
            int bits,
            int groupSize,
            boolean sym,
            boolean actOrder,
            boolean mse,
            double damp,
            boolean staticGroups) {

        /** AutoGPTQ's {@code damp_percent} default. */
        public static final double DEFAULT_DAMP = 0.01;

        public Setting {
            Objects.requireNonNull(method, "method");
            if (method == Method.NF4 && bits != 4) {
                throw new IllegalArgumentException("NF4 is 4 bits, not " + bits);
            }
            if ((method == Method.AWQ || method == Method.AWQ_BLOCK) && (sym || actOrder)) {
                throw new IllegalArgumentException("AWQ is asymmetric (zero point) and has no act-order");
            }
            if (mse && method != Method.GPTQ) {
                throw new IllegalArgumentException("the range search (mse) is GPTQ's, not " + method.id() + "'s");
            }
            if (!(damp > 0) || !Double.isFinite(damp)) {
                throw new IllegalArgumentException(
                        "damp " + damp + " must be a positive fraction of the mean Hessian diagonal");
            }
            if (damp != DEFAULT_DAMP && method != Method.GPTQ) {
                throw new IllegalArgumentException("the damping is GPTQ's, not " + method.id() + "'s");
            }
            if (staticGroups && method != Method.GPTQ) {
                throw new IllegalArgumentException("static groups are GPTQ's, not " + method.id() + "'s");
            }
            if (staticGroups && groupSize == LinearScheme.PER_CHANNEL) {
                throw new IllegalArgumentException("static groups need a positive group size, not per channel");
            }
        }

        /** With the reference's damping and groups found as columns are quantized. */
        public Setting(Method method, int bits, int groupSize, boolean sym, boolean actOrder, boolean mse) {
            this(method, bits, groupSize, sym, actOrder, mse, DEFAULT_DAMP, false);
        }

        /** Without the range search. */
        public Setting(Method method, int bits, int groupSize, boolean sym, boolean actOrder) {
            this(method, bits, groupSize, sym, actOrder, false);
        }

        /** This GPTQ setting with the range search on or off. */
        public Setting withMse(boolean on) {
            return new Setting(method, bits, groupSize, sym, actOrder, on, damp, staticGroups);
        }

        /** This GPTQ setting with damping {@code fraction} of the mean Hessian diagonal. */
        public Setting withDamp(double fraction) {
            return new Setting(method, bits, groupSize, sym, actOrder, mse, fraction, staticGroups);
        }

        /** This GPTQ setting with static groups on or off. */
        public Setting withStaticGroups(boolean on) {
            return new Setting(method, bits, groupSize, sym, actOrder, mse, damp, on);
        }

        /** A short label, e.g. {@code GPTQ int4 g32}; the damping is named when it is not the default. */
        public String label() {
            String g = groupSize == LinearScheme.PER_CHANNEL ? " per channel" : " g" + groupSize;
            return switch (method) {
                case NF4 -> "NF4 block " + groupSize;
                case RTN -> "RTN int" + bits + g + (sym ? " sym" : "");
                case GPTQ ->
                    "GPTQ int" + bits + g + (sym ? " sym" : "") + (actOrder ? " act-order" : "")
                            + (staticGroups ? " static" : "") + (mse ? " mse" : "")
                            + (damp != DEFAULT_DAMP ? " damp " + damp : "");
                case AWQ -> "AWQ int" + bits + g;
                case AWQ_BLOCK -> "AWQ block int" + bits + g;
            };
        }
    }

    /**
     * What happened to one linear layer.
     *
     * @param name the layer's module name
     * @param scheme the scheme it was quantized with (per channel when the group did not divide its width)
     * @param gptqError GPTQ's output error on the calibration activations (NaN for other methods)
     * @param rtnError round-to-nearest's output error on the same activations (NaN for other methods)
     * @param keptRtn whether the RTN weight was kept because GPTQ's was worse
     */
    public record LayerReport(String name, String scheme, double gptqError, double rtnError, boolean keptRtn) {}

    /**
     * A quantized decoder.
     *
     * @param model the decoder with every linear layer quantized
     * @param weights the quantized weights by tensor name ({@code model.layers.0.self_attn.q_proj.weight}, ...), each
     *     named so itself
     * @param layers one report per linear layer, in forward order
     * @param tensors the FP32 tensors the method changed, by name, each named so itself (AWQ_BLOCK: the RMSNorm
     *     weights its scales were folded into, and a bias divided by them); every other tensor is the source's
     */
    public record Result(
            LlamaDecoder model,
            Map<String, QuantizedWeight> weights,
            List<LayerReport> layers,
            Map<String, FloatMatrix> tensors) {
        public Result {
            weights = Collections.unmodifiableMap(new LinkedHashMap<>(weights));
            layers = List.copyOf(layers);
            tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        }

        /** A result that changed no FP32 tensor. */
        public Result(LlamaDecoder model, Map<String, QuantizedWeight> weights, List<LayerReport> layers) {
            this(model, weights, layers, Map.of());
        }

        /** Storage of the quantized weights (codes, scales, zero points) in bytes. */
        public long storageBytes() {
            return weights.values().stream()
                    .mapToLong(QuantizedWeight::storageBytes)
                    .sum();
        }

        /** Bits per weight over the quantized layers. */
        public double bitsPerWeight() {
            long n = weights.values().stream()
                    .mapToLong(w -> (long) w.rows() * w.cols())
                    .sum();
            return 8.0 * storageBytes() / n;
        }
    }

    /** The ggml types {@link #awqFolded} searches for. */
    public static final Set<dev.quant4j.ggml.GgmlType> AWQ_GGUF_TYPES = Set.of(
            dev.quant4j.ggml.GgmlType.Q4_0,
            dev.quant4j.ggml.GgmlType.Q4_1,
            dev.quant4j.ggml.GgmlType.Q5_0,
            dev.quant4j.ggml.GgmlType.Q5_1,
            dev.quant4j.ggml.GgmlType.Q8_0);

    /** The groups of linears that share an input, in forward order, by the suffix of their module name. */
    static final List<Set<String>> TRUE_SEQUENTIAL = List.of(
            Set.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
            Set.of("self_attn.o_proj"),
            Set.of("mlp.gate_proj", "mlp.up_proj"),
            Set.of("mlp.down_proj"));

    private final Setting setting;
    private final ForkJoinPool pool;

    private final long tapBytes;

    public DecoderQuantizer(Setting setting, ForkJoinPool pool) {
        this(setting, pool, TAP_BYTES);
    }

    /**
     * As the public constructor, each round of {@link #forEachInput} (and of GPTQ's {@code down_proj} inputs) holding
     * at most {@code tapBytes} of inputs.
     */
    DecoderQuantizer(Setting setting, ForkJoinPool pool, long tapBytes) {
        this.setting = Objects.requireNonNull(setting, "setting");
        this.pool = Objects.requireNonNull(pool, "pool");
        this.tapBytes = tapBytes;
    }

    /** How this quantizer quantizes every linear layer. */
    public Setting setting() {
        return setting;
    }

    /**
     * What a block-by-block quantization hands over after each block: its quantized weights by tensor name and its
     * layer reports, in forward order. A streaming writer writes them and lets them go.
     */
    @FunctionalInterface
    public interface BlockSink {
        void accept(int block, Map<String, QuantizedWeight> weights, List<LayerReport> layers) throws IOException;
    }

    /**
     * For {@link Method#AWQ_BLOCK} into ggml's {@code type}: llm-awq's block scales and clipping ({@link BlockAwq})
     * searched on {@code calibration} and applied to {@code fp32}, nothing quantized, with the scale search's {@code
     * Q(W * s) / s} and the clipping search's {@code Q(clamp(W))} ggml's reference quantizer of the type each linear is
     * stored in ({@link GgufDecoderFile#storedType}), the clipping per ggml block (a whole row in a fallback type).
     * Returns every tensor they changed, by tensor name: each linear's weight (scaled and clipped), the RMSNorm weights
     * the scales were folded into, biases a scale divided; {@link GgufDecoderFile#plan} quantizes the model with these
     * tensors. (llm-awq's own quantizer in the searches is another function than ggml's blocks: scales and clipping
     * searched for it made stories260K worse than ggml's quantizer alone.)
     *
     * @throws IllegalArgumentException for a type other than q4_0, q4_1, q5_0, q5_1 and q8_0
     */
    public Map<String, FloatMatrix> awqFolded(
            LlamaDecoder fp32, List<int[]> calibration, dev.quant4j.ggml.GgmlType type, IntConsumer blocksDone) {
        if (!AWQ_GGUF_TYPES.contains(type)) {
            throw new IllegalArgumentException("AWQ into GGUF searches for ggml's 32-value blocks: q4_0, q4_1, q5_0,"
                    + " q5_1 or q8_0, not " + type);
        }
        if (setting.method() != Method.AWQ_BLOCK) {
            throw new IllegalStateException(
                    "awqFolded is AWQ_BLOCK's, not " + setting.method().id() + "'s");
        }
        requireCalibration(fp32.source(), calibration);
        return new BlockAwq(this, setting.bits(), pool, type).fold(fp32, calibration, blocksDone);
    }

    /**
     * Quantizes {@code fp32}. {@code calibration} (token sequences, each starting at position 0) is needed by GPTQ
     * and AWQ only; {@code blocksDone} (may be null) is told after each block.
     */
    public Result quantize(LlamaDecoder fp32, List<int[]> calibration, IntConsumer blocksDone) {
        if (setting.method() == Method.AWQ_BLOCK) {
            requireCalibration(fp32.source(), calibration);
            return new BlockAwq(this, setting.bits(), pool).quantize(fp32, calibration, blocksDone);
        }
        Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
        List<LayerReport> reports = new ArrayList<>();
        try {
            quantize(DecoderBlocks.of(fp32), calibration, (b, w, r) -> {
                weights.putAll(w);
                reports.addAll(r);
                if (blocksDone != null) {
                    blocksDone.accept(b + 1);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a decoder in memory reads no file
        }
        Map<String, Linear> replaced = new LinkedHashMap<>();
        for (Linear l : fp32.linears()) {
            Linear.Dense d = (Linear.Dense) l;
            QuantizedWeight q = weights.get(d.name() + ".weight");
            replaced.put(d.name(), Linear.quantized(d.name(), QuantizedLinear.of(q, d.bias(), pool)));
        }
        return new Result(fp32.withLinears(replaced), weights, reports);
    }

    /**
     * Quantizes the decoder {@code source} block by block, handing each block's weights to {@code sink} as soon as
     * they are made: with a source that reads blocks from files ({@link dev.quant4j.model.HuggingFaceLlama#open}),
     * only one block's FP32 weights, the calibration activations entering it and the Hessian being accumulated are in
     * memory at a time. The weights are the same, bit for bit, as {@link #quantize(LlamaDecoder, List, IntConsumer)}
     * makes from the whole decoder. Round-to-nearest, NF4, GPTQ and per-layer AWQ; block-level AWQ changes the norm
     * weights and needs the whole decoder.
     */
    public void quantize(DecoderBlocks source, List<int[]> calibration, BlockSink sink) throws IOException {
        Objects.requireNonNull(sink, "sink");
        int layers = source.config().layers();
        switch (setting.method()) {
            case RTN, NF4 -> {
                for (int b = 0; b < layers; b++) {
                    Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
                    List<LayerReport> reports = new ArrayList<>();
                    for (Linear l : source.block(b).linears(b)) {
                        Linear.Dense d = (Linear.Dense) l;
                        LinearScheme scheme = linearScheme(d.inFeatures());
                        FloatMatrix w = weightOf(d);
                        QuantizedWeight q = setting.method() == Method.NF4
                                ? new BlockwiseQuantizer(CodebookScheme.nf4(setting.groupSize())).quantize(w)
                                : new RtnQuantizer(scheme, pool).quantize(w);
                        String schemeText =
                                setting.method() == Method.NF4 ? q.scheme().toString() : scheme.toString();
                        weights.put(d.name() + ".weight", q);
                        reports.add(new LayerReport(l.name(), schemeText, Double.NaN, Double.NaN, false));
                    }
                    sink.accept(b, weights, reports);
                }
            }
            case GPTQ -> gptq(source, calibration, this::gptqLayer, sink::accept);
            case AWQ -> {
                requireCalibration(source.source(), calibration);
                List<FloatMatrix> states = new ArrayList<>();
                long tokens = 0;
                for (int[] seq : calibration) {
                    states.add(source.embed(seq));
                    tokens += seq.length;
                }
                for (int b = 0; b < layers; b++) {
                    Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
                    List<LayerReport> reports = new ArrayList<>();
                    states = awqBlock(source.block(b), b, states, tokens, weights, reports);
                    sink.accept(b, weights, reports);
                }
            }
            case AWQ_BLOCK ->
                throw new IllegalArgumentException(
                        source.source() + ": " + setting.method().id()
                                + " changes the norm weights and runs on a whole decoder in memory; use gptq or awq");
        }
    }

    private void requireCalibration(String source, List<int[]> calibration) {
        if (calibration == null || calibration.isEmpty()) {
            throw new IllegalArgumentException(source + ": " + setting.method() + " needs calibration sequences");
        }
    }

    /**
     * How GPTQ's block loop quantizes one linear layer, given the Hessian of the layer's calibration inputs (collected
     * with the groups before it quantized): the form the layer is stored in, the weight the rest of the calibration
     * runs it with (the values the stored form stands for), and its report. quant4j's own linear form is one ({@link
     * Method#GPTQ}); ggml's blocks are another ({@link GgufDecoderGptq}).
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
     * What {@link #gptq} hands over after each block: its layers' stored forms by tensor name and their reports, in
     * forward order.
     */
    @FunctionalInterface
    public interface Sink<T> {
        void accept(int block, Map<String, T> stored, List<LayerReport> layers) throws IOException;
    }

    /**
     * GPTQ's block loop on {@code source} with each layer quantized by {@code layers}: the calibration sequences'
     * embeddings are block 0's input; in each block the layers that share an input are quantized group after group
     * (true sequential), each group's Hessian from a forward pass of the block with the groups before it quantized
     * (replaced by their {@link Quantized#dequantized()} weights); the block's output with all its layers quantized is
     * the next block's input. {@link Method#GPTQ} runs this loop with quant4j's GPTQ and RTN; the results depend
     * neither on the thread count nor on the size of the rounds the calibration sequences run in.
     */
    public <T> void gptq(DecoderBlocks source, List<int[]> calibration, LayerQuantizer<T> layers, Sink<T> sink)
            throws IOException {
        gptq(source, start(source, calibration), layers, sink, (b, next) -> {});
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
    public Start start(DecoderBlocks source, List<int[]> calibration) throws IOException {
        requireCalibration(source.source(), calibration);
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
     * quant4j's GPTQ ({@link Method#GPTQ}, as {@link #quantize(DecoderBlocks, List, BlockSink)}) from {@code start}:
     * blocks {@code start.block()} onwards, each handed to {@code sink}, then its outputs to {@code after}.
     *
     * @throws IllegalStateException unless this quantizer's method is GPTQ
     */
    public void gptq(DecoderBlocks source, Start start, BlockSink sink, AfterBlock after) throws IOException {
        if (setting.method() != Method.GPTQ) {
            throw new IllegalStateException("a " + setting.label() + " quantizer has no GPTQ block loop");
        }
        Objects.requireNonNull(sink, "sink");
        gptq(source, start, this::gptqLayer, sink::accept, after);
    }

    /**
     * GPTQ's block loop ({@link #gptq(DecoderBlocks, List, LayerQuantizer, Sink)}) from {@code start}, each block's
     * outputs handed to {@code after} once {@code sink} has its layers.
     */
    public <T> void gptq(DecoderBlocks source, Start start, LayerQuantizer<T> layers, Sink<T> sink, AfterBlock after)
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
            states = gptqBlock(source.block(b), b, states, layers, stored, reports);
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
     * input up to each group ({@link #forEachInput}) and then whole ({@link #outputs}).
     *
     * <p>{@code states} is consumed: once the stream after attention is made, its elements are set to null, so that
     * the block's inputs and its kept activations are not both held through the MLP's quantization.
     */
    <T> List<FloatMatrix> gptqBlock(
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

    /**
     * AWQ as llm-awq gathers its statistics: each block's linears see the activations of the full-precision model
     * (llm-awq scales and clips the FP16 model block by block and quantizes at the end; its scaling leaves the block's
     * function unchanged). Each layer gets its own scales. Returns the next block's (FP32) inputs.
     */
    private List<FloatMatrix> awqBlock(
            LlamaDecoder model,
            int b,
            List<FloatMatrix> states,
            long tokens,
            Map<String, QuantizedWeight> weights,
            List<LayerReport> reports) {
        Map<String, AwqStatistics> stats = new LinkedHashMap<>();
        for (Linear l : model.linears(b)) {
            stats.put(l.name(), new AwqStatistics(l.name(), l.inFeatures(), tokens, pool));
        }
        forEachInput(
                model, b, states, stats.keySet(), (name, in) -> stats.get(name).add(in));
        List<FloatMatrix> next = outputs(model, b, states);
        for (Linear l : model.linears(b)) {
            Linear.Dense d = (Linear.Dense) l;
            LinearScheme scheme = linearScheme(d.inFeatures());
            AwqConfig config = new AwqConfig(setting.bits(), scheme.groupSize(), 20, 0.5, true);
            QuantizedWeight q = new Awq(config, pool)
                    .quantize(weightOf(d), stats.get(l.name()))
                    .tensor();
            weights.put(d.name() + ".weight", q);
            reports.add(new LayerReport(l.name(), config.scheme().toString(), Double.NaN, Double.NaN, false));
        }
        return next;
    }

    /** Bytes of layer inputs one round of {@link #forEachInput} holds at most (when a sequence's are fewer). */
    static final long TAP_BYTES = 256L << 20;

    /**
     * Block {@code block} of {@code model} run on every sequence, and {@code consumer} given the input of each layer
     * named in {@code names} for every sequence, sequence after sequence and in the order of {@code names} within a
     * sequence: so sums over the inputs run in the same order whatever the thread count. Sequences run in parallel
     * rounds whose tapped inputs take at most {@link #TAP_BYTES} (one sequence at least), so a long calibration set
     * on a wide model never holds every input at once.
     */
    void forEachInput(
            LlamaDecoder model,
            int block,
            List<FloatMatrix> states,
            Set<String> names,
            java.util.function.BiConsumer<String, FloatMatrix> consumer) {
        long perSequence = 0;
        for (Linear l : model.linears(block)) {
            if (names.contains(l.name())) {
                perSequence +=
                        (long) Float.BYTES * l.inFeatures() * states.get(0).rows();
            }
        }
        int round = (int) Math.max(1, Math.min(states.size(), tapBytes / Math.max(1, perSequence)));
        for (int from = 0; from < states.size(); from += round) {
            List<FloatMatrix> part = states.subList(from, Math.min(states.size(), from + round));
            Map<String, FloatMatrix[]> inputs = tapped(model, block, part, names);
            for (int i = 0; i < part.size(); i++) {
                for (Map.Entry<String, FloatMatrix[]> e : inputs.entrySet()) {
                    consumer.accept(e.getKey(), e.getValue()[i]);
                }
            }
        }
    }

    /**
     * Block {@code block} of {@code model} run on every sequence in parallel, each only as far as the layers named in
     * {@code names} ({@link LlamaDecoder#inputs}); for each of them, its input from each sequence, in sequence order.
     */
    Map<String, FloatMatrix[]> tapped(LlamaDecoder model, int block, List<FloatMatrix> states, Set<String> names) {
        Map<String, FloatMatrix[]> inputs = new LinkedHashMap<>();
        for (String n : names) {
            inputs.put(n, new FloatMatrix[states.size()]);
        }
        pool.submit(() -> IntStream.range(0, states.size()).parallel().forEach(i -> {
                    model.inputs(block, states.get(i), names, (name, in) -> inputs.get(name)[i] = in);
                }))
                .join();
        return inputs;
    }

    /** Block {@code block} of {@code model} run on every sequence in parallel: the next block's inputs. */
    List<FloatMatrix> outputs(LlamaDecoder model, int block, List<FloatMatrix> states) {
        FloatMatrix[] next = new FloatMatrix[states.size()];
        pool.submit(() -> IntStream.range(0, next.length)
                        .parallel()
                        .forEach(i -> next[i] = model.block(block, states.get(i), null)))
                .join();
        return new ArrayList<>(List.of(next));
    }

    /** quant4j's GPTQ of one layer, or its RTN weight when that has the lower output error. */
    Quantized<QuantizedWeight> gptqLayer(Linear.Dense d, HessianAccumulator h) {
        LinearScheme scheme = linearScheme(d.inFeatures());
        // static groups need groups: a layer the group does not divide, quantized per channel, has one
        boolean staticGroups = setting.staticGroups() && scheme.groupSize() != LinearScheme.PER_CHANNEL;
        GptqConfig config = new GptqConfig(
                        setting.bits(),
                        scheme.groupSize(),
                        setting.sym(),
                        setting.actOrder(),
                        staticGroups,
                        setting.damp(),
                        128)
                .withMse(setting.mse());
        FloatMatrix w = weightOf(d);
        QuantizedWeight g = new Gptq(config, pool).quantize(w, h).tensor();
        QuantizedWeight r = new RtnQuantizer(scheme, pool).quantize(w);
        FloatMatrix gBack = g.dequantize();
        FloatMatrix rBack = r.dequantize();
        double gErr = h.outputError(w, gBack);
        double rErr = h.outputError(w, rBack);
        boolean keepRtn = rErr < gErr;
        return new Quantized<>(
                keepRtn ? r : g,
                keepRtn ? rBack : gBack,
                new LayerReport(d.name(), scheme.toString(), gErr, rErr, keepRtn));
    }

    /** A layer's FP32 weight named after its tensor ({@code model.layers.0.self_attn.q_proj.weight}). */
    private static FloatMatrix weightOf(Linear.Dense d) {
        return d.weight().named(d.name() + ".weight");
    }

    /** The setting's linear scheme for a layer {@code in} wide: per channel when the group does not divide it. */
    LinearScheme linearScheme(int in) {
        int g = setting.groupSize();
        boolean divides = g == LinearScheme.PER_CHANNEL || (g > 0 && in % g == 0);
        return new LinearScheme(
                setting.bits(), setting.sym() ? Symmetry.SYM : Symmetry.ASYM, divides ? g : LinearScheme.PER_CHANNEL);
    }
}
