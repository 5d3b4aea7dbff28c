package dev.quant4j.cli.eval;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.model.Linear;
import dev.quant4j.pipeline.AwqGptq;
import dev.quant4j.pipeline.BertBlockAwq;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;

/**
 * Quantizes every linear layer of a BERT encoder with one method and setting, and measures what the sentence
 * embeddings lose: cosine to the FP32 embeddings, and definition-to-example retrieval (recall@1, recall@10, MRR).
 *
 * <p>Calibration statistics are gathered by a {@link dev.quant4j.model.Tap} as the calibration sentences run through the
 * model, never stored. GPTQ goes block by block as its reference does for OPT and BLOOM ({@code opt_sequential}): the
 * Hessians of layer {@code L}'s six linears come from a model whose layers below {@code L} are already quantized, so
 * each layer corrects for the error of those beneath it. AWQ's statistics come from the FP32 model, as llm-awq's
 * block inputs do (it scales and clips the full-precision model as it goes, and quantizes at the end).
 */
public final class EmbeddingEval {

    /** One way to quantize a linear layer: a label for the table and what it does to a layer. */
    public record Setting(String label, Kind kind, int bits, int group, boolean actOrder, boolean mse, boolean duo) {

        /** Without GPTQ's range search, with llm-awq's scale candidates. */
        public Setting(String label, Kind kind, int bits, int group, boolean actOrder) {
            this(label, kind, bits, group, actOrder, false, false);
        }

        /** This GPTQ setting with the quantizer's range search ({@code mse=True}), its label marked "mse". */
        public Setting withMse() {
            if (kind != Kind.GPTQ) {
                throw new IllegalArgumentException(label + ": the mse range search is GPTQ's");
            }
            return new Setting(label + " mse", kind, bits, group, actOrder, true, duo);
        }

        /** RTN asymmetric with {@code group} columns per scale ({@code -1}: per output channel). */
        public static Setting rtn(int bits, int group) {
            return new Setting(
                    "RTN int" + bits + (group < 0 ? " per channel" : " g" + group), Kind.RTN, bits, group, false);
        }

        /** NF4, bitsandbytes' blockwise absmax with blocks of {@code block}. */
        public static Setting nf4(int block) {
            return new Setting("NF4 block " + block, Kind.NF4, 4, block, false);
        }

        public static Setting gptq(int bits, int group, boolean actOrder) {
            return new Setting(
                    "GPTQ int" + bits + " g" + group + (actOrder ? " act-order" : ""),
                    Kind.GPTQ,
                    bits,
                    group,
                    actOrder);
        }

        /**
         * AWQ's scales (AutoAWQ's duo candidates), then GPTQ on the scaled weights ({@link dev.quant4j.pipeline.AwqGptq};
         * the AWQ paper's "AWQ + GPTQ"), in GPTQ's block-by-block order: not plain AWQ, its codes are GPTQ's.
         */
        public static Setting awqGptq(int bits, int group, boolean actOrder) {
            return new Setting(
                    "AWQ+GPTQ int" + bits + " g" + group + (actOrder ? " act-order" : ""),
                    Kind.AWQ_GPTQ,
                    bits,
                    group,
                    actOrder,
                    false,
                    true);
        }

        /** Per-layer AWQ with AutoAWQ's duo scale candidates ({@link AwqConfig#duoScaling()}). */
        public static Setting awqDuo(int bits, int group) {
            return new Setting("AWQ int" + bits + " g" + group + " duo", Kind.AWQ, bits, group, false, false, true);
        }

        /** AWQ's options for this setting: llm-awq's defaults at its bits and group, duo scaling if chosen. */
        AwqConfig awqConfig() {
            return AwqConfig.defaults(bits).withGroupSize(group).withDuoScaling(duo);
        }

        public static Setting awq(int bits, int group) {
            return new Setting("AWQ int" + bits + " g" + group, Kind.AWQ, bits, group, false);
        }

        /** Block-level AWQ ({@link dev.quant4j.pipeline.BertBlockAwq}): q/k/v share scales, searched per module. */
        public static Setting awqBlock(int bits, int group) {
            return new Setting("AWQ block int" + bits + " g" + group, Kind.AWQ_BLOCK, bits, group, false);
        }
    }

    public enum Kind {
        RTN,
        NF4,
        GPTQ,
        AWQ,
        AWQ_BLOCK,
        AWQ_GPTQ;

        /** Whether the setting runs in GPTQ's block-by-block order, on Hessians of the quantized layers below. */
        boolean sequential() {
            return this == GPTQ || this == AWQ_GPTQ;
        }
    }

    /** The default settings of {@code quant eval}, in table order (docs/real-model.md). */
    public static List<Setting> defaultSettings() {
        return List.of(
                Setting.rtn(8, -1),
                Setting.rtn(4, 128),
                Setting.nf4(128),
                Setting.gptq(4, 128, false),
                Setting.gptq(4, 128, true),
                Setting.awq(4, 128),
                Setting.rtn(3, 128),
                Setting.gptq(3, 128, false),
                Setting.gptq(3, 128, true));
    }

    /**
     * Settings {@code quant eval} runs only when {@code --settings} is given and matches them: block-level AWQ runs its
     * modules on every calibration token for each candidate, hours on the full calibration set; AWQ with duo scaling
     * and AWQ+GPTQ, the forms measured against the default AWQ in docs/awq.md.
     */
    public static List<Setting> extraSettings() {
        return List.of(Setting.awqBlock(4, 128), Setting.awqDuo(4, 128), Setting.awqGptq(4, 128, true));
    }

    /**
     * A quantized encoder, the bytes its linear weights take, and those weights by linear name (for the ONNX export).
     */
    public record Quantized(
            BertEncoder encoder, long linearBytes, long linearParams, Map<String, QuantizedWeight> weights) {

        public double bitsPerWeight() {
            return 8.0 * linearBytes / linearParams;
        }
    }

    /** The calibration sentences, and AWQ's per-linear statistics from the FP32 model. */
    public static final class Calibration {
        final List<int[]> sentences;
        final Map<String, AwqStatistics> awq = new LinkedHashMap<>();
        long tokens;

        private Calibration(List<int[]> sentences) {
            this.sentences = List.copyOf(sentences);
        }

        /**
         * The calibration sentences; with {@code awq}, also runs {@code encoder} over them, feeding every linear's input
         * to its AWQ statistics.
         */
        public static Calibration collect(BertEncoder encoder, List<int[]> sentences, boolean awq, ForkJoinPool pool) {
            Calibration c = new Calibration(sentences);
            for (int[] s : sentences) {
                c.tokens += s.length;
            }
            if (!awq) {
                return c;
            }
            for (Linear l : encoder.linears()) {
                c.awq.put(l.name(), new AwqStatistics(l.name(), l.inFeatures(), c.tokens));
            }
            for (int[] s : sentences) {
                encoder.embed(s, (name, x) -> c.awq.get(name).add(x));
            }
            return c;
        }

        public long tokens() {
            return tokens;
        }
    }

    private EmbeddingEval() {}

    /** Every linear of {@code fp32} quantized with {@code s}. */
    public static Quantized quantize(BertEncoder fp32, Setting s, Calibration calib, ForkJoinPool pool) {
        if (s.kind() == Kind.AWQ_BLOCK) {
            return awqBlock(fp32, s, calib, pool);
        }
        return quantize(fp32, linear -> s, false, calib, pool);
    }

    /**
     * The stage of a BERT layer's linear in GPTQ's true-sequential order (AutoGPTQ's {@code true_sequential}, whose
     * {@code inside_layer_modules} for BERT-like blocks list the attention's query, key and value, then its output,
     * then the feed-forward input, then its output): 0 to 3.
     */
    public static int stage(String linear) {
        if (linear.endsWith(".attention.output.dense")) {
            return 1;
        }
        if (linear.endsWith(".intermediate.dense")) {
            return 2;
        }
        if (linear.endsWith(".output.dense")) {
            return 3;
        }
        return 0;
    }

    /**
     * Every linear of {@code fp32} quantized with the setting {@code settingOf} gives for its name (all GPTQ, or none);
     * with {@code sequential} (GPTQ only), a layer's linears are quantized in {@link #stage} order, each stage's
     * Hessians taken from the layer with the earlier stages already quantized, instead of all six from the
     * full-precision layer.
     */
    public static Quantized quantize(
            BertEncoder fp32,
            java.util.function.Function<String, Setting> settingOf,
            boolean sequential,
            Calibration calib,
            ForkJoinPool pool) {
        Setting s = settingOf.apply(fp32.linears().get(0).name());
        Map<String, Linear> out = new HashMap<>();
        Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
        Map<String, HessianAccumulator> hessians = new HashMap<>();
        long bytes = 0;
        long params = 0;
        List<Linear> linears = fp32.linears();
        int perLayer = linears.size() / fp32.layers();
        // GPTQ, layer by layer: each calibration sentence's input to the current layer, computed with the layers
        // below already quantized (the reference's inps/outs)
        List<FloatMatrix> states = new ArrayList<>();
        Map<String, float[]> xMean = new HashMap<>();
        if (s.kind().sequential()) {
            for (int[] ids : calib.sentences) {
                states.add(fp32.hiddenStates(ids, null, 0));
            }
        }
        for (int i = 0; i < linears.size(); i++) {
            Linear l = linears.get(i);
            Linear.Dense d = (Linear.Dense) l;
            if (s.kind().sequential() && i % perLayer == 0) {
                int layer = i / perLayer;
                if (layer > 0) {
                    BertEncoder below = fp32.withLinears(out); // layers below this one quantized
                    // sentences in parallel (each computed the same way on any thread); the Hessians below are
                    // accumulated in order, one sentence at a time
                    pool.submit(() -> java.util.stream.IntStream.range(0, states.size())
                                    .parallel()
                                    .forEach(j -> states.set(j, below.layer(layer - 1, states.get(j), null))))
                            .join();
                }
                hessians = layerHessians(fp32, linears.subList(i, i + perLayer), layer, states, xMean, pool);
            } else if (s.kind().sequential()
                    && sequential
                    && stage(l.name()) != stage(linears.get(i - 1).name())) {
                // this stage's inputs from the layer with the stages before it quantized
                int stage = stage(l.name());
                List<Linear> next = new ArrayList<>();
                for (int j = i; j < i - i % perLayer + perLayer; j++) {
                    if (stage(linears.get(j).name()) == stage) {
                        next.add(linears.get(j));
                    }
                }
                hessians = layerHessians(fp32.withLinears(out), next, i / perLayer, states, xMean, pool);
            }
            QuantizedLinear q;
            Setting own = settingOf.apply(l.name());
            if (own.kind() != s.kind()) {
                throw new IllegalArgumentException(
                        l.name() + ": " + own.label() + " and " + s.label() + " mix methods");
            }
            s = own;
            QuantizedWeight w;
            switch (s.kind()) {
                case RTN -> {
                    QuantizedTensor t =
                            new RtnQuantizer(new LinearScheme(s.bits(), Symmetry.ASYM, s.group())).quantize(d.weight());
                    q = QuantizedLinear.of(t, d.bias(), pool);
                    w = t;
                }
                case NF4 -> {
                    CodebookTensor t = new BlockwiseQuantizer(CodebookScheme.nf4(s.group())).quantize(d.weight());
                    q = QuantizedLinear.of(t, d.bias(), pool);
                    w = t;
                }
                case GPTQ -> {
                    QuantizedTensor t = new Gptq(
                                    GptqConfig.defaults(s.bits())
                                            .withGroupSize(s.group())
                                            .withActOrder(s.actOrder())
                                            .withMse(s.mse()),
                                    pool)
                            .quantize(d.weight(), hessians.get(l.name()))
                            .tensor();
                    q = QuantizedLinear.of(t, d.bias(), pool);
                    w = t;
                }
                case AWQ_GPTQ -> {
                    QuantizedTensor t = new AwqGptq(
                                    s.awqConfig(),
                                    GptqConfig.defaults(s.bits())
                                            .withGroupSize(s.group())
                                            .withActOrder(s.actOrder()),
                                    pool)
                            .quantize(
                                    d.weight(),
                                    xMean.get(l.name()),
                                    hessians.get(l.name()).hessian())
                            .tensor();
                    q = QuantizedLinear.of(t, d.bias(), pool);
                    w = t;
                }
                case AWQ_BLOCK ->
                    throw new IllegalArgumentException("layer '" + l.name()
                            + "': AWQ block settings are searched per encoder layer (BertBlockAwq),"
                            + " not linear by linear");
                default -> {
                    QuantizedTensor t = new Awq(s.awqConfig(), pool)
                            .quantize(d.weight(), calib.awq.get(l.name()))
                            .tensor();
                    q = QuantizedLinear.of(t, d.bias(), pool);
                    w = t;
                }
            }
            out.put(l.name(), Linear.quantized(l.name(), q));
            weights.put(l.name(), w);
            bytes += w.storageBytes();
            params += (long) l.inFeatures() * l.outFeatures();
        }
        return new Quantized(fp32.withLinears(out), bytes, params, weights);
    }

    /** Block-level AWQ over the calibration sentences, as {@link BertBlockAwq} runs it. */
    private static Quantized awqBlock(BertEncoder fp32, Setting s, Calibration calib, ForkJoinPool pool) {
        BertBlockAwq.Result r = new BertBlockAwq(AwqConfig.defaults(s.bits()).withGroupSize(s.group()), pool)
                .quantize(fp32, calib.sentences, null);
        long bytes = 0;
        long params = 0;
        for (QuantizedTensor t : r.weights().values()) {
            bytes += t.storageBytes();
            params += (long) t.rows() * t.cols();
        }
        return new Quantized(r.encoder(), bytes, params, new LinkedHashMap<>(r.weights()));
    }

    /**
     * GPTQ's Hessians for the linears of encoder layer {@code layer}: the FP32 layer run on {@code states}, its input
     * computed by the quantized layers below (as the reference runs each block in full precision to collect them).
     */
    private static Map<String, HessianAccumulator> layerHessians(
            BertEncoder fp32,
            List<Linear> layerLinears,
            int layer,
            List<FloatMatrix> states,
            Map<String, float[]> xMean,
            ForkJoinPool pool) {
        Map<String, HessianAccumulator> h = new HashMap<>();
        Map<String, double[]> sumAbs = new HashMap<>();
        for (Linear l : layerLinears) {
            h.put(l.name(), new HessianAccumulator(l.name(), l.inFeatures(), pool));
            sumAbs.put(l.name(), new double[l.inFeatures()]);
        }
        for (FloatMatrix x : states) {
            fp32.layer(layer, x, (name, in) -> {
                HessianAccumulator acc = h.get(name);
                if (acc != null) {
                    acc.add(in);
                    double[] sum = sumAbs.get(name);
                    for (int t = 0; t < in.rows(); t++) {
                        for (int c = 0; c < in.cols(); c++) {
                            sum[c] += Math.abs(in.get(t, c));
                        }
                    }
                }
            });
        }
        // AWQ's x_mean (get_act_scale) over the same inputs as the Hessians
        for (var e : h.entrySet()) {
            double[] sum = sumAbs.get(e.getKey());
            float[] mean = new float[sum.length];
            for (int c = 0; c < sum.length; c++) {
                mean[c] = (float) (sum[c] / e.getValue().tokens());
            }
            xMean.put(e.getKey(), mean);
        }
        return h;
    }

    /** Embeddings of every token-id sequence, {@code progress} told after each. */
    public static float[][] embed(BertEncoder encoder, List<int[]> texts, IntConsumer progress) {
        return embed(encoder, texts, progress, null);
    }

    /**
     * {@link #embed(BertEncoder, List, IntConsumer)} with several sentences at once on {@code pool} (null: one at a
     * time): a short sentence's layers are too small to keep the threads busy on their own. Each sentence is computed
     * the same way whichever thread runs it, so the embeddings do not depend on the pool.
     */
    public static float[][] embed(BertEncoder encoder, List<int[]> texts, IntConsumer progress, ForkJoinPool pool) {
        float[][] e = new float[texts.size()][];
        if (pool == null) {
            for (int i = 0; i < e.length; i++) {
                e[i] = encoder.embed(texts.get(i));
                progress.accept(i + 1);
            }
            return e;
        }
        int[] done = {0};
        pool.submit(() -> java.util.stream.IntStream.range(0, e.length)
                        .parallel()
                        .forEach(i -> {
                            e[i] = encoder.embed(texts.get(i));
                            synchronized (done) {
                                progress.accept(++done[0]);
                            }
                        }))
                .join();
        return e;
    }

    /** Cosine similarity. */
    public static double cosine(float[] a, float[] b) {
        double ab = 0;
        double aa = 0;
        double bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        return aa == 0 || bb == 0 ? 0 : ab / Math.sqrt(aa * bb);
    }

    /** Mean and minimum cosine between matching rows. */
    public static double[] cosineStats(float[][] reference, float[][] other) {
        double sum = 0;
        double min = Double.POSITIVE_INFINITY;
        for (int i = 0; i < reference.length; i++) {
            double c = cosine(reference[i], other[i]);
            sum += c;
            min = Math.min(min, c);
        }
        return new double[] {sum / reference.length, min};
    }

    /** Retrieval of each query's own document among all documents, by cosine. */
    public record Retrieval(double recallAt1, double recallAt10, double mrr) {}

    /**
     * Query {@code i}'s relevant document is document {@code i}; its rank is one plus the number of other documents
     * scoring at least as high (ties count against it).
     */
    public static Retrieval retrieval(float[][] queries, float[][] documents) {
        int n = queries.length;
        int at1 = 0;
        int at10 = 0;
        double rr = 0;
        for (int i = 0; i < n; i++) {
            double own = cosine(queries[i], documents[i]);
            int rank = 1;
            for (int j = 0; j < n; j++) {
                if (j != i && cosine(queries[i], documents[j]) >= own) {
                    rank++;
                }
            }
            at1 += rank == 1 ? 1 : 0;
            at10 += rank <= 10 ? 1 : 0;
            rr += 1.0 / rank;
        }
        return new Retrieval((double) at1 / n, (double) at10 / n, rr / n);
    }

    /** Splits {@code [queries..., documents...]} embeddings into the two halves. */
    public static List<float[][]> halves(float[][] all) {
        int n = all.length / 2;
        float[][] q = new float[n][];
        float[][] d = new float[n][];
        for (int i = 0; i < n; i++) {
            q[i] = all[i];
            d[i] = all[n + i];
        }
        List<float[][]> out = new ArrayList<>();
        out.add(q);
        out.add(d);
        return out;
    }
}
