package dev.quant4j.pipeline;

import dev.quant4j.awq.AutoClip;
import dev.quant4j.awq.AutoScale;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.model.Linear;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.function.Function;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * AWQ on a Llama-family decoder as mit-han-lab/llm-awq runs it ({@code awq/quantize/pre_quant.py}, {@code run_awq};
 * {@code auto_scale.py}, {@code auto_scale_block} for {@code LlamaDecoderLayer}; {@code auto_clip.py}, {@code
 * auto_clip_block}; commit {@code d6e797a}), then llm-awq's quantizer on the folded weights.
 *
 * <p>Per block, on the inputs the FP32 model gives it ({@code run_awq} computes the next block's input before it
 * scales and clips this one, and scaling leaves the FP32 function unchanged, so every block sees the FP32 model's
 * activations):
 *
 * <pre>
 * input_feat = every linear's input, one matrix per calibration sequence
 * auto_scale_block, every search on the block as it is:
 *   prev_op input_layernorm,          layers q, k, v,  module2inspect self_attn (o included)
 *   prev_op v_proj,                   layers o,        module2inspect o         only if v and o have one shape
 *   prev_op post_attention_layernorm, layers gate, up, module2inspect mlp
 *   prev_op up_proj,                  layers down,     module2inspect down
 * apply_scale: norm weight / s or producing rows / s (and bias), consuming W * s; input_feat / s
 * auto_clip_block: every linear except q and k ("due to qk bmm, it is hard to clip precisely")
 * then every linear: Q(W) with llm-awq's min/max quantizer per group, no input scales left
 * </pre>
 *
 * <p>With grouped-query attention {@code v_proj} is narrower than {@code o_proj}, so {@code o_proj} gets no scale,
 * only clipping (llm-awq's check, mit-han-lab/llm-awq pull request 67).
 */
final class BlockAwq {

    private static final String Q = "self_attn.q_proj";

    private static final String K = "self_attn.k_proj";
    private static final String V = "self_attn.v_proj";
    private static final String O = "self_attn.o_proj";
    private static final String GATE = "mlp.gate_proj";
    private static final String UP = "mlp.up_proj";
    private static final String DOWN = "mlp.down_proj";

    /**
     * One entry of {@code scales_list}: the scales searched for {@code layers}, to fold into {@code prevOp} (a norm's
     * tensor name, or a linear's module name).
     */
    record Scale(String prevOp, boolean prevIsNorm, List<String> layers, float[] scales, double ratio) {}

    /**
     * What one block became: the folded (and clipped) FP32 weights and biases by module name, the folded norm weights
     * by tensor name, each scaled layer's input scales, the search results.
     */
    record FoldedBlock(
            Map<String, FloatMatrix> weights,
            Map<String, float[]> biases,
            Map<String, float[]> norms,
            Map<String, float[]> inputScales,
            List<Scale> scalesList) {

        /** {@code fp32} with block {@code b}'s linears and norms replaced by these (FP32). */
        LlamaDecoder apply(LlamaDecoder fp32, ForkJoinPool pool) {
            Map<String, Linear> linears = new LinkedHashMap<>();
            for (Map.Entry<String, FloatMatrix> e : weights.entrySet()) {
                linears.put(e.getKey(), Linear.dense(e.getKey(), e.getValue(), biases.get(e.getKey()), pool));
            }
            return fp32.withLinears(linears).withNormWeights(norms);
        }
    }

    private final DecoderQuantizer quantizer;
    private final int bits;
    private final ForkJoinPool pool;

    /** The ggml type the searches quantize to ({@link GgufDecoderFile#storedType} per layer), or null for llm-awq's. */
    private final GgmlType ggml;

    BlockAwq(DecoderQuantizer quantizer, int bits, ForkJoinPool pool) {
        this(quantizer, bits, pool, null);
    }

    BlockAwq(DecoderQuantizer quantizer, int bits, ForkJoinPool pool, GgmlType ggml) {
        this.quantizer = quantizer;
        this.bits = bits;
        this.pool = pool;
        this.ggml = ggml;
    }

    /** {@code Q(W * s) / s} with ggml's reference quantizer of the type a {@code W.cols()}-wide matrix is stored in. */
    private FloatMatrix ggmlCandidate(FloatMatrix w, float[] s) {
        GgmlType t = GgufDecoderFile.storedType(ggml, w.cols());
        int rows = w.rows();
        int cols = w.cols();
        float[] ws = w.toArray();
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                ws[r * cols + c] *= s[c];
            }
        }
        float[] back = GgmlQuants.dequantize(t, GgmlQuants.quantize(t, ws, rows, cols), rows, cols);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                back[r * cols + c] /= s[c];
            }
        }
        return FloatMatrix.of(w.name(), rows, cols, back, 0);
    }

    DecoderQuantizer.Result quantize(LlamaDecoder fp32, List<int[]> calibration, IntConsumer blocksDone) {
        Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
        Map<String, Linear> replaced = new LinkedHashMap<>();
        Map<String, float[]> norms = new LinkedHashMap<>();
        Map<String, FloatMatrix> folded = new LinkedHashMap<>();
        List<DecoderQuantizer.LayerReport> reports = new ArrayList<>();
        eachBlock(fp32, calibration, blocksDone, (block, b) -> {
            for (Linear l : fp32.linears(b)) {
                FloatMatrix w = block.weights().get(l.name());
                AwqConfig config = config(l.inFeatures());
                QuantizedWeight q = new RtnQuantizer(config.scheme(), pool).quantize(w.named(l.name() + ".weight"));
                float[] bias = block.biases().get(l.name());
                weights.put(l.name() + ".weight", q);
                replaced.put(l.name(), Linear.quantized(l.name(), QuantizedLinear.of(q, bias, pool)));
                if (bias != null && !Arrays.equals(bias, ((Linear.Dense) l).bias())) {
                    folded.put(l.name() + ".bias", FloatMatrix.of(l.name() + ".bias", 1, bias.length, bias, 0));
                }
                String ratio = block.scalesList().stream()
                        .filter(s -> s.layers().contains(l.name()))
                        .map(s -> String.format(Locale.ROOT, ", ratio %.2f", s.ratio()))
                        .findFirst()
                        .orElse(", no scale");
                reports.add(new DecoderQuantizer.LayerReport(
                        l.name(), config.scheme() + ratio, Double.NaN, Double.NaN, false));
            }
            for (Map.Entry<String, float[]> e : block.norms().entrySet()) {
                norms.put(e.getKey(), e.getValue());
                folded.put(e.getKey(), FloatMatrix.of(e.getKey(), 1, e.getValue().length, e.getValue(), 0));
            }
        });
        LlamaDecoder model = fp32.withLinears(replaced).withNormWeights(norms);
        return new DecoderQuantizer.Result(model, weights, reports, folded);
    }

    /**
     * The scales and clipping of every block applied to the FP32 model, unquantized: each linear's weight as it would be
     * quantized, the folded norm weights and the biases scaling changed, by tensor name ({@code
     * model.layers.0.self_attn.q_proj.weight}, {@code model.layers.0.input_layernorm.weight}, ...), for a quantizer of
     * another format (ggml's block types) to take from there.
     */
    Map<String, FloatMatrix> fold(LlamaDecoder fp32, List<int[]> calibration, IntConsumer blocksDone) {
        Map<String, FloatMatrix> folded = new LinkedHashMap<>();
        eachBlock(fp32, calibration, blocksDone, (block, b) -> {
            for (Linear l : fp32.linears(b)) {
                folded.put(l.name() + ".weight", block.weights().get(l.name()).named(l.name() + ".weight"));
                float[] bias = block.biases().get(l.name());
                if (bias != null && !Arrays.equals(bias, ((Linear.Dense) l).bias())) {
                    folded.put(l.name() + ".bias", FloatMatrix.of(l.name() + ".bias", 1, bias.length, bias, 0));
                }
            }
            for (Map.Entry<String, float[]> e : block.norms().entrySet()) {
                folded.put(e.getKey(), FloatMatrix.of(e.getKey(), 1, e.getValue().length, e.getValue(), 0));
            }
        });
        return folded;
    }

    /**
     * {@code run_awq}'s loop: block by block, every linear's input on the FP32 model's activations, then the block's
     * scales and clipping ({@link #scaleAndClip}) handed to {@code sink}.
     */
    private void eachBlock(
            LlamaDecoder fp32,
            List<int[]> calibration,
            IntConsumer blocksDone,
            java.util.function.ObjIntConsumer<FoldedBlock> sink) {
        List<FloatMatrix> inps = new ArrayList<>();
        for (int[] seq : calibration) {
            inps.add(fp32.embed(seq));
        }
        for (int b = 0; b < fp32.config().layers(); b++) {
            List<String> names = fp32.linears(b).stream().map(Linear::name).toList();
            Map<String, FloatMatrix[]> inputFeat = quantizer.tapped(fp32, b, inps, new LinkedHashSet<>(names));
            inps = quantizer.outputs(fp32, b, inps);
            sink.accept(scaleAndClip(fp32, b, inputFeat), b);
            if (blocksDone != null) {
                blocksDone.accept(b + 1);
            }
        }
    }

    /** llm-awq's quantizer ({@code pseudo_quantize_tensor}, zero point) at the setting's group for a layer this wide. */
    AwqConfig config(int in) {
        return new AwqConfig(bits, quantizer.linearScheme(in).groupSize(), AutoScale.N_GRID, 0.5, true);
    }

    /**
     * {@code auto_scale_block}, {@code apply_scale} and {@code auto_clip_block} on block {@code b} of {@code fp32},
     * whose linears saw {@code inputFeat} (one matrix per sequence, by module name).
     */
    FoldedBlock scaleAndClip(LlamaDecoder fp32, int b, Map<String, FloatMatrix[]> inputFeat) {
        FoldedBlock scaled = applyScale(fp32, b, autoScaleBlock(fp32, b, inputFeat));
        return autoClipBlock(scaled, inputFeat);
    }

    /** The block's linears by module suffix ({@code self_attn.q_proj}, ...). */
    private static Map<String, Linear.Dense> linears(LlamaDecoder fp32, int b) {
        Map<String, Linear.Dense> fc = new LinkedHashMap<>();
        for (Linear l : fp32.linears(b)) {
            fc.put(suffix(l.name()), (Linear.Dense) l);
        }
        return fc;
    }

    /** {@code auto_scale_block} for a Llama block: every search on the block as it is, in llm-awq's order. */
    List<Scale> autoScaleBlock(LlamaDecoder fp32, int b, Map<String, FloatMatrix[]> inputFeat) {
        Map<String, Linear.Dense> fc = linears(fp32, b);
        String p = "model.layers." + b + ".";
        List<Scale> scalesList = new ArrayList<>();
        List<Linear.Dense> qkv = List.of(fc.get(Q), fc.get(K), fc.get(V));
        FloatMatrix[] attnIn = inputFeat.get(p + Q);
        scalesList.add(autoGetScale(LlamaDecoder.inputLayernorm(b), true, qkv, attnIn, ws -> {
            LlamaDecoder m = fp32.withLinears(dense(qkv, ws, pool));
            return forEach(attnIn, x -> m.selfAttention(b, x), pool);
        }));
        Linear.Dense v = fc.get(V);
        Linear.Dense o = fc.get(O);
        if (v.outFeatures() == o.outFeatures() && v.inFeatures() == o.inFeatures()) {
            scalesList.add(autoGetScale(v.name(), false, List.of(o), inputFeat.get(p + O), null));
        }
        List<Linear.Dense> gateUp = List.of(fc.get(GATE), fc.get(UP));
        FloatMatrix[] mlpIn = inputFeat.get(p + GATE);
        scalesList.add(autoGetScale(LlamaDecoder.postAttentionLayernorm(b), true, gateUp, mlpIn, ws -> {
            LlamaDecoder m = fp32.withLinears(dense(gateUp, ws, pool));
            return forEach(mlpIn, x -> m.mlp(b, x), pool);
        }));
        scalesList.add(autoGetScale(fc.get(UP).name(), false, List.of(fc.get(DOWN)), inputFeat.get(p + DOWN), null));
        return scalesList;
    }

    /**
     * {@code apply_scale}: each entry's {@code s} folded into its previous op (norm weight or producing rows and bias
     * divided) and its layers ({@code W * s}); each layer's input scale recorded, by which its inputs are divided.
     */
    static FoldedBlock applyScale(LlamaDecoder fp32, int b, List<Scale> scalesList) {
        Map<String, Linear.Dense> fc = linears(fp32, b);
        Map<String, FloatMatrix> weights = new LinkedHashMap<>();
        Map<String, float[]> biases = new LinkedHashMap<>();
        for (Linear.Dense d : fc.values()) {
            weights.put(d.name(), d.weight());
            biases.put(d.name(), d.bias());
        }
        Map<String, float[]> norms = new LinkedHashMap<>();
        norms.put(LlamaDecoder.inputLayernorm(b), fp32.normWeight(LlamaDecoder.inputLayernorm(b)));
        norms.put(LlamaDecoder.postAttentionLayernorm(b), fp32.normWeight(LlamaDecoder.postAttentionLayernorm(b)));
        Map<String, float[]> inputScales = new LinkedHashMap<>();
        for (Scale s : scalesList) {
            if (s.prevIsNorm()) {
                // scale_ln_fcs (RMSNorm has no bias)
                norms.put(s.prevOp(), AutoScale.divide(norms.get(s.prevOp()), s.scales()));
            } else {
                // scale_fc_fc
                weights.put(s.prevOp(), AutoScale.scaleFcRows(weights.get(s.prevOp()), s.scales()));
                float[] bias = biases.get(s.prevOp());
                if (bias != null) {
                    biases.put(s.prevOp(), AutoScale.divide(bias, s.scales()));
                }
            }
            for (String layer : s.layers()) {
                weights.put(layer, AutoScale.scaleFc(weights.get(layer), s.scales()));
                inputScales.put(layer, s.scales());
            }
        }

        return new FoldedBlock(weights, biases, norms, inputScales, scalesList);
    }

    /**
     * {@code auto_clip_block} then {@code apply_clip}: every linear but q and k clipped, on its scaled weight and its
     * inputs divided by its scale.
     */
    FoldedBlock autoClipBlock(FoldedBlock scaled, Map<String, FloatMatrix[]> inputFeat) {
        Map<String, FloatMatrix> weights = new LinkedHashMap<>(scaled.weights());
        for (Map.Entry<String, FloatMatrix> e : scaled.weights().entrySet()) {
            String name = e.getKey();
            if (name.endsWith("." + Q) || name.endsWith("." + K)) {
                continue;
            }
            FloatMatrix w = e.getValue();
            FloatMatrix sample = AutoClip.sampleTokens(name, List.of(inputFeat.get(name)));
            if (ggml != null) {
                // ggml's blocks of 32 (a fallback type of a row that is not whole blocks: the row)
                GgmlType t = GgufDecoderFile.storedType(ggml, w.cols());
                int group = t.blockSize() == 1 ? w.cols() : t.blockSize();
                FloatMatrix clipped = AutoClip.autoClipLayer(
                                w,
                                sample,
                                scaled.inputScales().get(name),
                                group,
                                0.5,
                                AutoScale.N_GRID,
                                () -> (in, out) -> System.arraycopy(
                                        GgmlQuants.dequantize(
                                                t, GgmlQuants.quantize(t, in, 1, in.length), 1, in.length),
                                        0,
                                        out,
                                        0,
                                        in.length),
                                pool)
                        .weight();
                weights.put(name, clipped);
                continue;
            }
            weights.put(
                    name,
                    AutoClip.autoClipLayer(w, sample, scaled.inputScales().get(name), config(w.cols()), pool)
                            .weight());
        }
        return new FoldedBlock(weights, scaled.biases(), scaled.norms(), scaled.inputScales(), scaled.scalesList());
    }

    /**
     * {@code _auto_get_scale}: the scale search for {@code layers}, which read {@code inp}, with the loss at {@code
     * module2inspect}'s output (null: the single layer itself).
     */
    private Scale autoGetScale(
            String prevOp,
            boolean prevIsNorm,
            List<Linear.Dense> layers,
            FloatMatrix[] inp,
            AutoScale.Module module2inspect) {
        AutoScale.Module block = module2inspect;
        if (block == null) {
            Linear.Dense d = layers.get(0);
            block = ws -> {
                Linear l = Linear.dense(d.name(), ws.get(0), d.bias(), pool);
                return forEach(inp, l::forward, pool);
            };
        }
        List<FloatMatrix> w = layers.stream().map(Linear.Dense::weight).toList();
        int in = layers.get(0).inFeatures();
        AutoScale.Search s = ggml != null
                ? AutoScale.searchModuleScale(block, w, AutoScale.getActScale(List.of(inp)), this::ggmlCandidate)
                : AutoScale.searchModuleScale(
                        block,
                        w,
                        AutoScale.getActScale(List.of(inp)),
                        config(in).scheme(),
                        pool);
        return new Scale(
                prevOp, prevIsNorm, layers.stream().map(Linear.Dense::name).toList(), s.scales(), s.ratio());
    }

    private static String suffix(String module) {
        int i = module.indexOf('.', "model.layers.".length());
        return module.substring(i + 1);
    }

    /** Each of {@code layers} as a dense layer of the matching weight of {@code ws}, its bias kept, by module name. */
    static Map<String, Linear> dense(List<Linear.Dense> layers, List<FloatMatrix> ws, ForkJoinPool pool) {
        Map<String, Linear> m = new LinkedHashMap<>();
        for (int i = 0; i < layers.size(); i++) {
            Linear.Dense d = layers.get(i);
            m.put(d.name(), Linear.dense(d.name(), ws.get(i), d.bias(), pool));
        }
        return m;
    }

    /** {@code f} run on every input in parallel, the outputs in input order. */
    static List<FloatMatrix> forEach(FloatMatrix[] inputs, Function<FloatMatrix, FloatMatrix> f, ForkJoinPool pool) {
        FloatMatrix[] out = new FloatMatrix[inputs.length];
        pool.submit(() -> IntStream.range(0, inputs.length).parallel().forEach(i -> out[i] = f.apply(inputs[i])))
                .join();
        return List.of(out);
    }
}
