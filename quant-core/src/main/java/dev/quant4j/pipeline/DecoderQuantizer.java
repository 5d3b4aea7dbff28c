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
 * <p>Round-to-nearest and the codebooks quantize each weight on its own. GPTQ runs block by block as AutoGPTQ runs it
 * on a model ({@link DecoderGptq}: true-sequential groups, each Hessian from the block with the groups before it
 * quantized, each block's input the output of the quantized blocks before it); AWQ per layer gathers its statistics
 * from the FP32 model's activations, and block-level AWQ is {@link BlockAwq}'s.
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
            case GPTQ -> new DecoderGptq(pool, tapBytes).run(source, calibration, this::gptqLayer, sink::accept);
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
     * quant4j's GPTQ ({@link Method#GPTQ}, as {@link #quantize(DecoderBlocks, List, BlockSink)}) from {@code start}:
     * blocks {@code start.block()} onwards, each handed to {@code sink}, then its outputs to {@code after}.
     *
     * @throws IllegalStateException unless this quantizer's method is GPTQ
     */
    public void gptq(DecoderBlocks source, DecoderGptq.Start start, BlockSink sink, DecoderGptq.AfterBlock after)
            throws IOException {
        if (setting.method() != Method.GPTQ) {
            throw new IllegalStateException("a " + setting.label() + " quantizer has no GPTQ block loop");
        }
        Objects.requireNonNull(sink, "sink");
        new DecoderGptq(pool, tapBytes).run(source, start, this::gptqLayer, sink::accept, after);
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
    DecoderGptq.Quantized<QuantizedWeight> gptqLayer(Linear.Dense d, HessianAccumulator h) {
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
        return new DecoderGptq.Quantized<>(
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
