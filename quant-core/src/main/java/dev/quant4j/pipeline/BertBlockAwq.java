package dev.quant4j.pipeline;

import dev.quant4j.awq.AutoClip;
import dev.quant4j.awq.AutoScale;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.model.Linear;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Block-level AWQ on a BERT encoder, as mit-han-lab/llm-awq's {@code run_awq} would run it on a post-norm BERT layer
 * ({@code awq/quantize/auto_scale.py}, {@code auto_scale_block} for {@code OPTDecoderLayer} and {@code BloomBlock};
 * {@code auto_clip.py}, {@code auto_clip_block}; commit {@code d6e797a}), then llm-awq's min/max quantizer per group.
 *
 * <p>Per encoder layer, on the inputs the FP32 model gives it (scaling leaves the FP32 function unchanged, so every
 * layer sees the FP32 model's activations, as in {@code run_awq}):
 *
 * <pre>
 * input_feat = every linear's input, one matrix per calibration sentence
 * auto_scale_block, every search on the layer as it is:
 *   layers query, key, value,  inp the layer's input,        module2inspect attention + attention.output.dense
 *   layers attention.output.dense,  inp the attention context,  module2inspect itself           (v -> o)
 *   layers intermediate.dense,      inp the attention LayerNorm's output,
 *                                   module2inspect intermediate, GELU, output.dense  (the feed-forward module)
 *   layers output.dense,            inp the GELU output,       module2inspect itself
 * auto_clip_block: every linear except query and key, on W * s and its inputs / s
 * then every linear: Q(clamp(W * s)) with s kept as the tensor's input scales
 * </pre>
 *
 * <p>Each search is {@link AutoScale#searchModuleScale}: {@code s = x_max^ratio} over {@code n_grid} ratios, the loss
 * the mean squared error of the inspected module's output when the searched layers' weights are {@code Q(W * s) / s}.
 *
 * <p>Where the scales go: in BERT the LayerNorm that feeds query, key and value (and the one that feeds the
 * intermediate layer) also feeds the residual, so {@code s} cannot fold into it ({@code scale_ln_fcs} assumes the norm
 * feeds only the scaled layers, true of pre-norm decoders); and GELU is not positively homogeneous, so the output
 * layer's {@code s} cannot fold into the intermediate layer (llm-awq's {@code scale_gelu_fc} inserts a {@code
 * ScaledActivation} that divides GELU's output by {@code s} at run time, for BLOOM and MPT). Every {@code s} therefore
 * stays with its quantized tensor as input scales, by which the layer divides its input (as per-layer {@link
 * dev.quant4j.awq.Awq} does). The attention output's {@code s} could fold into value's rows ({@code scale_fc_fc};
 * attention mixes tokens linearly per channel), but quantizing a row divided by a constant gives that row's codes
 * divided by it (groups run along rows), so keeping it as input scales is the same model and leaves the biases as
 * they are.
 */
public final class BertBlockAwq {

    static final String QUERY = "attention.self.query";
    static final String KEY = "attention.self.key";
    static final String VALUE = "attention.self.value";
    static final String ATTENTION_OUTPUT = "attention.output.dense";
    static final String INTERMEDIATE = "intermediate.dense";
    static final String OUTPUT = "output.dense";

    /**
     * One search of {@code auto_scale_block}: the scales {@code layers} share, the ratio chosen, and the loss of every
     * ratio in grid order.
     */
    public record Scale(List<String> layers, float[] scales, double ratio, double[] history) {
        public Scale {
            layers = List.copyOf(layers);
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

    /**
     * The quantized encoder, its quantized weights by linear name (input scales included), and every layer's searches
     * in order.
     */
    public record Result(BertEncoder encoder, Map<String, QuantizedTensor> weights, List<Scale> scales) {
        public Result {
            weights = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(weights));
            scales = List.copyOf(scales);
        }
    }

    private final AwqConfig config;
    private final ForkJoinPool pool;

    /** llm-awq's quantizer and clip search from {@code config} (its {@code nGrid} is the scale search's too). */
    public BertBlockAwq(AwqConfig config, ForkJoinPool pool) {
        this.config = Objects.requireNonNull(config, "config");
        this.pool = Objects.requireNonNull(pool, "pool");
    }

    /**
     * Every linear of {@code fp32} quantized, layer by layer, with statistics from {@code calibration} (token ids of
     * whole sentences) run through the FP32 model; {@code layersDone} (may be null) told after each layer.
     */
    public Result quantize(BertEncoder fp32, List<int[]> calibration, IntConsumer layersDone) {
        if (calibration.isEmpty()) {
            throw new IllegalArgumentException("block AWQ needs calibration sentences, got none");
        }
        FloatMatrix[] inps = new FloatMatrix[calibration.size()];
        for (int i = 0; i < inps.length; i++) {
            inps[i] = fp32.hiddenStates(calibration.get(i), null, 0);
        }
        Map<String, QuantizedTensor> weights = new LinkedHashMap<>();
        Map<String, Linear> replaced = new LinkedHashMap<>();
        List<Scale> all = new ArrayList<>();
        RtnQuantizer wQuantize = new RtnQuantizer(config.scheme(), pool);
        for (int b = 0; b < fp32.layers(); b++) {
            Map<String, FloatMatrix[]> inputFeat = new LinkedHashMap<>();
            inps = tapped(fp32, b, inps, inputFeat);
            List<Scale> scalesList = autoScaleBlock(fp32, b, inputFeat);
            all.addAll(scalesList);
            Map<String, float[]> inputScales = inputScales(scalesList);
            for (Linear.Dense d : layerLinears(fp32, b)) {
                float[] s = inputScales.get(d.name());
                FloatMatrix w = AutoScale.scaleFc(d.weight(), s);
                if (config.clip() && !d.name().endsWith(QUERY) && !d.name().endsWith(KEY)) {
                    // "due to qk bmm, it is hard to clip precisely": llm-awq skips q and k
                    FloatMatrix sample = AutoClip.sampleTokens(d.name(), List.of(inputFeat.get(d.name())));
                    w = AutoClip.autoClipLayer(w, sample, s, config, pool).weight();
                }
                QuantizedTensor t = wQuantize.quantize(w.named(d.name())).withInputScales(s);
                weights.put(d.name(), t);
                replaced.put(d.name(), Linear.quantized(d.name(), QuantizedLinear.of(t, d.bias(), pool)));
            }
            if (layersDone != null) {
                layersDone.accept(b + 1);
            }
        }
        return new Result(fp32.withLinears(replaced), weights, all);
    }

    /** Each scaled layer's input scales, by linear name. */
    static Map<String, float[]> inputScales(List<Scale> scalesList) {
        Map<String, float[]> m = new LinkedHashMap<>();
        for (Scale s : scalesList) {
            for (String layer : s.layers()) {
                m.put(layer, s.scales());
            }
        }
        return m;
    }

    /**
     * Layer {@code b} of {@code fp32} run on {@code inps}; each linear's inputs put in {@code inputFeat} (one matrix
     * per sentence, in order), the layer's outputs returned.
     */
    FloatMatrix[] tapped(BertEncoder fp32, int b, FloatMatrix[] inps, Map<String, FloatMatrix[]> inputFeat) {
        for (Linear.Dense d : layerLinears(fp32, b)) {
            inputFeat.put(d.name(), new FloatMatrix[inps.length]);
        }
        FloatMatrix[] outs = new FloatMatrix[inps.length];
        // one sentence per task: each writes its own slots only
        pool.submit(() -> IntStream.range(0, inps.length)
                        .parallel()
                        .forEach(i -> outs[i] =
                                fp32.layer(b, inps[i], (name, x) -> inputFeat.get(name)[i] = x)))
                .join();
        return outs;
    }

    /** Layer {@code b}'s six linears in forward order (FP32). */
    static List<Linear.Dense> layerLinears(BertEncoder fp32, int b) {
        List<Linear> all = fp32.linears();
        int perLayer = all.size() / fp32.layers();
        List<Linear.Dense> out = new ArrayList<>();
        for (Linear l : all.subList(b * perLayer, (b + 1) * perLayer)) {
            if (!(l instanceof Linear.Dense d)) {
                throw new IllegalArgumentException("block AWQ quantizes an FP32 encoder; '" + l.name() + "' is " + l);
            }
            out.add(d);
        }
        return out;
    }

    /** {@code auto_scale_block} for BERT layer {@code b}, every search on the FP32 layer. */
    List<Scale> autoScaleBlock(BertEncoder fp32, int b, Map<String, FloatMatrix[]> inputFeat) {
        Map<String, Linear.Dense> fc = new LinkedHashMap<>();
        for (Linear.Dense d : layerLinears(fp32, b)) {
            fc.put(d.name().substring(("encoder.layer." + b + ".").length()), d);
        }
        List<Scale> scalesList = new ArrayList<>();
        // attention input: q, k, v share the layer input; loss at the self-attention module's output
        List<Linear.Dense> qkv = List.of(fc.get(QUERY), fc.get(KEY), fc.get(VALUE));
        FloatMatrix[] attnIn = inputFeat.get(fc.get(QUERY).name());
        scalesList.add(autoGetScale(qkv, attnIn, ws -> {
            BertEncoder m = fp32.withLinears(BlockAwq.dense(qkv, ws, pool));
            return BlockAwq.forEach(attnIn, x -> m.selfAttention(b, x), pool);
        }));
        // attention output: v -> o, on its own input
        scalesList.add(autoGetScale(
                List.of(fc.get(ATTENTION_OUTPUT)),
                inputFeat.get(fc.get(ATTENTION_OUTPUT).name()),
                null));
        // feed-forward input: loss at the feed-forward module's output (GELU between the two linears)
        List<Linear.Dense> fc1 = List.of(fc.get(INTERMEDIATE));
        FloatMatrix[] ffnIn = inputFeat.get(fc.get(INTERMEDIATE).name());
        scalesList.add(autoGetScale(fc1, ffnIn, ws -> {
            BertEncoder m = fp32.withLinears(BlockAwq.dense(fc1, ws, pool));
            return BlockAwq.forEach(ffnIn, x -> m.feedForward(b, x), pool);
        }));
        // feed-forward output: GELU -> output.dense, on its own input
        scalesList.add(autoGetScale(
                List.of(fc.get(OUTPUT)), inputFeat.get(fc.get(OUTPUT).name()), null));
        return scalesList;
    }

    /**
     * {@code _auto_get_scale}: the scale search for {@code layers}, which read {@code inp}, with the loss at {@code
     * module2inspect}'s output (null: the single layer itself).
     */
    private Scale autoGetScale(List<Linear.Dense> layers, FloatMatrix[] inp, AutoScale.Module module2inspect) {
        AutoScale.Module block = module2inspect;
        if (block == null) {
            Linear.Dense d = layers.get(0);
            block = ws -> {
                Linear l = Linear.dense(d.name(), ws.get(0), d.bias(), pool);
                return BlockAwq.forEach(inp, l::forward, pool);
            };
        }
        List<FloatMatrix> w = layers.stream().map(Linear.Dense::weight).toList();
        AutoScale.Search s =
                AutoScale.searchModuleScale(block, w, AutoScale.getActScale(List.of(inp)), config.scheme(), pool);
        return new Scale(layers.stream().map(Linear.Dense::name).toList(), s.scales(), s.ratio(), s.history());
    }
}
