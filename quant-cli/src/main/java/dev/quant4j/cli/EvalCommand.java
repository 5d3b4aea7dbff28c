package dev.quant4j.cli;

import dev.quant4j.cli.eval.EmbeddingEval;
import dev.quant4j.cli.eval.OrtEmbedder;
import dev.quant4j.cli.eval.OrtModels;
import dev.quant4j.io.AtomicFiles;
import dev.quant4j.io.OnnxExport;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.model.WordPieceTokenizer;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ForkJoinPool;
import java.util.regex.Pattern;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code quant eval}: quantizes every linear layer of a real sentence-embedding model (all-MiniLM-L6-v2, a 6-layer
 * BERT shipped in a Maven artifact) with each method and setting, and reports what the embeddings lose on real English
 * sentences from WordNet 3.0: bits per weight, size, cosine to the FP32 embeddings, and definition-to-example
 * retrieval; ONNX Runtime's int8 twin of the model is a row of its own.
 */
@Command(
        name = "eval",
        mixinStandardHelpOptions = true,
        description = "Quantize all-MiniLM-L6-v2 with every method and measure what its sentence embeddings lose.")
final class EvalCommand implements Callable<Integer> {

    static final String MODEL = "/all-minilm-l6-v2.onnx";
    static final String MODEL_INT8 = "/all-minilm-l6-v2-q.onnx";
    static final String TOKENIZER = "/all-minilm-l6-v2-tokenizer.json";
    static final String ORT_LABEL = "ONNX Runtime int8 (the -q twin)";

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--out", defaultValue = "eval", description = "output folder (default ${DEFAULT-VALUE})")
    Path outDir;

    @Option(
            names = "--pairs",
            defaultValue = "1200",
            description = "definition/example pairs to evaluate on (default ${DEFAULT-VALUE}, all there are)")
    int pairs;

    @Option(names = "--calib", description = "calibration sentences for GPTQ and AWQ (default: all there are)")
    Integer calib;

    @Option(
            names = "--settings",
            defaultValue = ".*",
            description = "regular expression: which settings to run, by label (default: all; with --quantized, none)")
    String settings;

    @Option(names = "--threads", description = "threads (default: available processors)")
    Integer threads;

    @Option(
            names = "--model",
            description =
                    "a decoder language model (llama2.c .bin, Hugging Face Llama/Mistral/Qwen2 folder or GGUF llama"
                            + " .gguf) to evaluate instead: next-token KL divergence to"
                            + " FP32, top-1 agreement, perplexity")
    Path model;

    @Option(
            names = "--quantized",
            description = "with --model: a quantized model of it to measure as a row of its own (GGUF .gguf, or a"
                    + " quant4j .safetensors from quant quantize --model); repeatable; the settings then run only"
                    + " with --settings")
    List<Path> quantized = new ArrayList<>();

    @Option(
            names = "--calib-sample",
            defaultValue = "64",
            description = "with --model: calibration sequences sampled from the FP32 model (default ${DEFAULT-VALUE})")
    int calibSample;

    @Option(
            names = "--eval-sample",
            defaultValue = "16",
            description = "with --model: evaluation sequences sampled from the FP32 model (default ${DEFAULT-VALUE})")
    int evalSample;

    @Option(
            names = "--seq-len",
            defaultValue = "128",
            description = "with --model: tokens per calibration and evaluation sequence (default ${DEFAULT-VALUE})")
    int seqLen;

    @Mixin
    DecoderEvalRun.TextOptions text;

    @Option(
            names = "--group-size",
            defaultValue = "32",
            description = "with --model: columns per scale (default ${DEFAULT-VALUE})")
    int groupSize;

    @Option(
            names = "--timing",
            defaultValue = "200",
            description = "held-out sentences ONNX Runtime is timed on, per model, on one thread (default"
                    + " ${DEFAULT-VALUE}; 0: no timing)")
    int timing;

    /** The word embeddings of every exported model: RTN 4-bit, groups of 128 along the hidden size. */
    static final LinearScheme WORD_SCHEME = LinearScheme.asym(4, 128);

    static final String ORT_FP32 = "FP32";
    static final String ORT_WORDS_ONLY = "FP32 linears, word embeddings int4 g128";
    static final String ORT_WORDS_ONLY_SYM = "FP32 linears, word embeddings int4 g128 sym (no zero-points)";

    /** The 4-bit model of at most 13 MB ({@link OrtModels#compact}), with its own embedding tables. */
    static final String ORT_COMPACT =
            "compact: GPTQ int4 g64 act-order mse true-sequential through quantized embeddings, words int4 g64"
                    + " float16 scales, positions int8";

    @Override
    public Integer call() throws Exception {
        Pattern select = Pattern.compile(settings);
        int nThreads = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
        if (nThreads < 1) {
            throw new IllegalArgumentException("--threads must be at least 1, got " + nThreads);
        }
        if (model != null) {
            return DecoderEvalRun.run(this, select, nThreads);
        }
        if (!quantized.isEmpty()) {
            throw new IllegalArgumentException("--quantized applies with --model (a decoder) only");
        }
        if (text.anySet()) {
            throw new IllegalArgumentException("--calib-text, --calib-tokens, --eval-text, --eval-tokens and"
                    + " --tokenizer apply with --model (a decoder) only");
        }
        if (timing < 0) {
            throw new IllegalArgumentException("--timing must be 0 (no timing) or more sentences, got " + timing);
        }
        List<String> calibration = lines("/wordnet/calibration.txt");
        List<String[]> allPairs = new ArrayList<>();
        for (String line : lines("/wordnet/pairs.tsv")) {
            allPairs.add(line.split("\t", 2));
        }
        if (pairs < 10 || pairs > allPairs.size()) {
            throw new IllegalArgumentException("--pairs must be 10.." + allPairs.size() + ", got " + pairs);
        }
        int nCalib = calib == null ? calibration.size() : calib;
        if (nCalib < 1 || nCalib > calibration.size()) {
            throw new IllegalArgumentException("--calib must be 1.." + calibration.size() + ", got " + nCalib);
        }
        PrintWriter err = spec.commandLine().getErr();
        ForkJoinPool pool = new ForkJoinPool(nThreads);
        try {
            byte[] modelBytes = resource(MODEL);
            OnnxModel onnx = OnnxModel.parse("all-minilm-l6-v2.onnx", modelBytes);
            WordPieceTokenizer tokenizer = WordPieceTokenizer.parse(
                    "all-minilm-l6-v2-tokenizer.json", new String(resource(TOKENIZER), StandardCharsets.UTF_8));
            BertEncoder fp32 = BertEncoder.fromOnnx(onnx, 12, pool);
            List<int[]> texts = new ArrayList<>(); // definitions (queries), then examples (documents)
            for (int i = 0; i < pairs; i++) {
                texts.add(tokenizer.encode(allPairs.get(i)[0]));
            }
            for (int i = 0; i < pairs; i++) {
                texts.add(tokenizer.encode(allPairs.get(i)[1]));
            }
            List<int[]> calibIds = new ArrayList<>();
            for (String s : calibration.subList(0, nCalib)) {
                calibIds.add(tokenizer.encode(s));
            }
            long floatParams = 0;
            for (OnnxModel.Initializer t : onnx.initializers().values()) {
                if (t.dataType() == OnnxModel.FLOAT) {
                    floatParams += t.elements();
                }
            }
            long linearParams = 0;
            for (var l : fp32.linears()) {
                linearParams += (long) l.inFeatures() * l.outFeatures();
            }
            long otherBytes = 4 * (floatParams - linearParams);

            List<Row> rows = new ArrayList<>();
            Progress progress = new Progress(err);
            float[][] reference = EmbeddingEval.embed(fp32, texts, progress.task("FP32", texts.size()), pool);
            rows.add(row("FP32", 32, 4 * linearParams, 4 * linearParams + otherBytes, reference, reference, 0));
            // the same models as ONNX Runtime runs them: the exported files against FP32 in ONNX Runtime
            OrtTable ort = new OrtTable(texts, nThreads, progress);
            ort.add(ORT_FP32, "MatMul (float32)", modelBytes);
            QuantizedTensor words = OrtModels.wordEmbeddings(onnx, WORD_SCHEME);
            if (select.matcher(ORT_WORDS_ONLY).find()) {
                ort.add(
                        ORT_WORDS_ONLY,
                        "MatMul (float32)",
                        OrtModels.export(modelBytes, onnx, java.util.Map.of(), words, 0));
                ort.add(
                        ORT_WORDS_ONLY_SYM,
                        "MatMul (float32)",
                        OrtModels.export(
                                modelBytes,
                                onnx,
                                java.util.Map.of(),
                                OrtModels.wordEmbeddings(onnx, LinearScheme.sym(4, 128)),
                                0));
            }
            List<EmbeddingEval.Setting> chosen = java.util.stream.Stream.concat(
                            EmbeddingEval.defaultSettings().stream(),
                            spec.commandLine().getParseResult().hasMatchedOption("--settings")
                                    ? EmbeddingEval.extraSettings().stream()
                                    : java.util.stream.Stream.empty())
                    .filter(s -> select.matcher(s.label()).find())
                    .toList();
            EmbeddingEval.Calibration stats = null;
            if (chosen.stream()
                    .anyMatch(s -> s.kind() != EmbeddingEval.Kind.RTN && s.kind() != EmbeddingEval.Kind.NF4)) {
                boolean awq = chosen.stream().anyMatch(s -> s.kind() == EmbeddingEval.Kind.AWQ);
                if (awq) {
                    err.println("AWQ calibration: " + calibIds.size() + " WordNet sentences through the FP32 model");
                }
                stats = EmbeddingEval.Calibration.collect(fp32, calibIds, awq, pool);
            }
            for (EmbeddingEval.Setting s : chosen) {
                long t0 = System.nanoTime();
                EmbeddingEval.Quantized q = EmbeddingEval.quantize(fp32, s, stats, pool);
                double seconds = (System.nanoTime() - t0) / 1e9;
                float[][] e = EmbeddingEval.embed(q.encoder(), texts, progress.task(s.label(), texts.size()), pool);
                rows.add(row(
                        s.label(),
                        q.bitsPerWeight(),
                        q.linearBytes(),
                        q.linearBytes() + otherBytes,
                        reference,
                        e,
                        seconds));
                if (s.kind() == EmbeddingEval.Kind.NF4) {
                    ort.add(s.label(), "MatMulBnb4", OrtModels.export(modelBytes, onnx, q.weights(), words, 0));
                } else if (OnnxExport.unsupported(new LinearScheme(s.bits(), Symmetry.ASYM, s.group()), 384) == null) {
                    ort.add(s.label(), "MatMulNBits", OrtModels.export(modelBytes, onnx, q.weights(), words, 0));
                    ort.add(
                            s.label() + ", accuracy_level 4",
                            "MatMulNBits, int8 activations",
                            OrtModels.export(modelBytes, onnx, q.weights(), words, 4));
                }
            }
            if (select.matcher(ORT_COMPACT).find()) {
                long t0 = System.nanoTime();
                OrtModels.Compact c = OrtModels.compact(onnx, fp32, calibIds, pool);
                double seconds = (System.nanoTime() - t0) / 1e9;
                EmbeddingEval.Quantized q = c.linears();
                float[][] e = EmbeddingEval.embed(q.encoder(), texts, progress.task("compact", texts.size()), pool);
                long tables = 0;
                for (var t : c.tables().entrySet()) { // the tables' own bytes in place of their float32 ones
                    tables += t.getValue().storageBytes()
                            - 4L * t.getValue().rows() * t.getValue().cols();
                }
                rows.add(row(
                        ORT_COMPACT,
                        q.bitsPerWeight(),
                        q.linearBytes(),
                        q.linearBytes() + otherBytes + tables,
                        reference,
                        e,
                        seconds));
                ort.add(ORT_COMPACT, "MatMulNBits", c.export(modelBytes, onnx, 0));
                ort.add(
                        ORT_COMPACT + ", accuracy_level 4",
                        "MatMulNBits, int8 activations",
                        c.export(modelBytes, onnx, 4));
            }
            if (select.matcher(ORT_LABEL).find()) {
                byte[] int8Bytes = resource(MODEL_INT8);
                long[] ortLinear = ortLinearBytes(OnnxModel.parse("all-minilm-l6-v2-q.onnx", int8Bytes));
                float[][] e = ort.add(ORT_LABEL, "MatMulInteger (int8)", int8Bytes);
                rows.add(row(
                        ORT_LABEL, 8.0 * ortLinear[0] / ortLinear[1], ortLinear[0], int8Bytes.length, reference, e, 0));
            }
            if (timing > 0) {
                ort.time(timing);
            }
            progress.done();
            long calibTokens = calibIds.stream().mapToLong(ids -> ids.length).sum();
            String table = table(rows, pairs, calibIds.size(), calibTokens) + "\n" + ort.table();
            spec.commandLine().getOut().print(table);
            spec.commandLine().getOut().flush();
            Files.createDirectories(outDir);
            AtomicFiles.write(outDir.resolve("eval.md"), o -> o.write(table.getBytes(StandardCharsets.UTF_8)));
            ReportCommand.writePng(chart(rows), outDir.resolve("eval.png"));
            err.println("wrote " + outDir.resolve("eval.md") + " and " + outDir.resolve("eval.png"));
            return Quant.OK;
        } finally {
            pool.shutdown();
        }
    }

    /** Bytes and elements of the int8 twin's MatMulInteger weights, with their scales and zero-points. */
    static long[] ortLinearBytes(OnnxModel q) {
        long bytes = 0;
        long params = 0;
        for (OnnxModel.Node n : q.nodes()) {
            if (!n.opType().equals("MatMulInteger")) {
                continue;
            }
            String w = n.inputs().get(1);
            String base = w.endsWith("_quantized") ? w.substring(0, w.length() - "_quantized".length()) : w;
            for (String name : List.of(w, base + "_scale", base + "_zero_point")) {
                OnnxModel.Initializer t = q.initializers().get(name);
                if (t == null) {
                    continue;
                }
                bytes += t.elements() * (t.dataType() == OnnxModel.FLOAT ? 4 : 1);
                if (name.equals(w)) {
                    params += t.elements();
                }
            }
        }
        return new long[] {bytes, params};
    }

    record Row(
            String label,
            double bitsPerWeight,
            long linearBytes,
            long modelBytes,
            double meanCos,
            double minCos,
            EmbeddingEval.Retrieval retrieval,
            double quantizeSeconds) {}

    static Row row(
            String label, double bpw, long linearBytes, long modelBytes, float[][] reference, float[][] e, double s) {
        double[] cos = EmbeddingEval.cosineStats(reference, e);
        List<float[][]> qd = EmbeddingEval.halves(e);
        return new Row(
                label, bpw, linearBytes, modelBytes, cos[0], cos[1], EmbeddingEval.retrieval(qd.get(0), qd.get(1)), s);
    }

    static String table(List<Row> rows, int pairs, int calibSentences, long calibTokens) {
        double mrr0 = rows.get(0).retrieval().mrr();
        StringBuilder b = new StringBuilder();
        b.append(String.format(
                Locale.ROOT,
                "all-MiniLM-L6-v2, every linear layer quantized; %d WordNet definition/example pairs (%d held-out "
                        + "sentences); calibration %d other sentences (%d tokens).%n%n",
                pairs,
                2 * pairs,
                calibSentences,
                calibTokens));
        b.append("| setting | bits/weight (linears) | linears MB | model MB | mean cosine | min cosine | recall@1 "
                + "| recall@10 | MRR | MRR vs FP32 | quantize s |\n");
        b.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            b.append(String.format(
                    Locale.ROOT,
                    "| %s | %.3f | %.2f | %.2f | %.5f | %.4f | %.4f | %.4f | %.4f | %+.2f%% | %.1f |%n",
                    r.label(),
                    r.bitsPerWeight(),
                    r.linearBytes() / 1e6,
                    r.modelBytes() / 1e6,
                    r.meanCos(),
                    r.minCos(),
                    r.retrieval().recallAt1(),
                    r.retrieval().recallAt10(),
                    r.retrieval().mrr(),
                    100 * (r.retrieval().mrr() / mrr0 - 1),
                    r.quantizeSeconds()));
        }
        return b.toString();
    }

    static CategoryChart chart(List<Row> rows) {
        CategoryChart chart = new CategoryChartBuilder()
                .width(1100)
                .height(560)
                .title("all-MiniLM-L6-v2: what quantization keeps (1 = FP32)")
                .xAxisTitle("setting")
                .yAxisTitle("mean cosine to FP32 / MRR relative to FP32")
                .build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideSW);
        chart.getStyler().setXAxisLabelRotation(30);
        double min = 1;
        List<String> labels = new ArrayList<>();
        List<Double> cos = new ArrayList<>();
        List<Double> mrr = new ArrayList<>();
        double mrr0 = rows.get(0).retrieval().mrr();
        for (Row r : rows) {
            labels.add(chartLabel(r.label()));
            cos.add(r.meanCos());
            mrr.add(r.retrieval().mrr() / mrr0);
            min = Math.min(min, Math.min(r.meanCos(), r.retrieval().mrr() / mrr0));
        }
        chart.getStyler().setYAxisMin(Math.floor(min * 50) / 50 - 0.02);
        chart.getStyler().setYAxisMax(1.01);
        chart.addSeries("mean cosine", labels, cos);
        chart.addSeries("MRR / MRR of FP32", labels, mrr);
        return chart;
    }

    /**
     * A row's label on the chart's axis: its name before a colon ({@code compact}), since the whole description would
     * take the chart's height when rotated.
     */
    static String chartLabel(String label) {
        int colon = label.indexOf(':');
        return colon > 0 ? label.substring(0, colon) : label;
    }

    static byte[] resource(String name) throws IOException {
        try (InputStream in = EvalCommand.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IOException("resource " + name + " is not on the class path (a broken build?)");
            }
            return in.readAllBytes();
        }
    }

    static List<String> lines(String name) throws IOException {
        List<String> out = new ArrayList<>();
        for (String l : new String(resource(name), StandardCharsets.UTF_8).split("\n")) {
            if (!l.isBlank()) {
                out.add(l);
            }
        }
        return out;
    }

    /**
     * The second table: each model run by ONNX Runtime on the held-out sentences (the first one added is the
     * reference), its file size, cosine to the reference, retrieval, and time a sentence.
     */
    static final class OrtTable {
        private final List<int[]> texts;
        private final int threads;
        private final Progress progress;
        private final List<String> labels = new ArrayList<>();
        private final List<String> operators = new ArrayList<>();
        private final List<byte[]> models = new ArrayList<>();
        private final List<float[][]> embeddings = new ArrayList<>();
        private double[] ms;
        private int timed;

        OrtTable(List<int[]> texts, int threads, Progress progress) {
            this.texts = texts;
            this.threads = threads;
            this.progress = progress;
        }

        /** Runs {@code model} on every sentence; gives its embeddings. */
        float[][] add(String label, String ops, byte[] model) throws ai.onnxruntime.OrtException {
            String task = "ONNX Runtime: " + label;
            float[][] e;
            try (OrtEmbedder ort = new OrtEmbedder(model, threads)) {
                e = ort.embed(texts, progress.task(task.length() > 34 ? task.substring(0, 34) : task, texts.size()));
            }
            labels.add(label);
            operators.add(ops);
            models.add(model);
            embeddings.add(e);
            return e;
        }

        /** Times every model on {@code n} held-out sentences spread over the set (one thread, best of 3 rounds). */
        void time(int n) throws ai.onnxruntime.OrtException {
            List<int[]> sentences = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                sentences.add(texts.get((int) ((long) i * texts.size() / n)));
            }
            progress.err.println("ONNX Runtime: timing " + models.size() + " models on " + n + " sentences each");
            ms = OrtModels.msPerSentence(models, sentences, 20, 3);
            timed = n;
        }

        String table() {
            StringBuilder b = new StringBuilder();
            b.append(String.format(
                    Locale.ROOT,
                    "The exported models in ONNX Runtime %s (`quant quantize --format onnx`; every other quantized"
                            + " row has its word embeddings RTN int4 g128 as GatherBlockQuantized, the compact rows"
                            + " their own tables), against FP32 in ONNX Runtime on the same sentences%s.%n%n",
                    ai.onnxruntime.OrtEnvironment.getEnvironment().getVersion(),
                    ms == null
                            ? ""
                            : String.format(
                                    Locale.ROOT,
                                    "; ms a sentence: one thread, %d held-out sentences one at a time, the fastest"
                                            + " of 3 rounds",
                                    timed)));
            b.append("| model in ONNX Runtime | linears as | file MB | mean cosine | min cosine | recall@1 | recall@10"
                    + " | MRR | MRR vs FP32 | ms a sentence |\n");
            b.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            float[][] reference = embeddings.get(0);
            double mrr0 = 0;
            for (int i = 0; i < labels.size(); i++) {
                Row r = row(labels.get(i), 0, 0, models.get(i).length, reference, embeddings.get(i), 0);
                if (i == 0) {
                    mrr0 = r.retrieval().mrr();
                }
                b.append(String.format(
                        Locale.ROOT,
                        "| %s | %s | %.2f | %.5f | %.4f | %.4f | %.4f | %.4f | %+.2f%% | %s |%n",
                        r.label(),
                        operators.get(i),
                        r.modelBytes() / 1e6,
                        r.meanCos(),
                        r.minCos(),
                        r.retrieval().recallAt1(),
                        r.retrieval().recallAt10(),
                        r.retrieval().mrr(),
                        100 * (r.retrieval().mrr() / mrr0 - 1),
                        ms == null ? "-" : String.format(Locale.ROOT, "%.2f", ms[i])));
            }
            return b.toString();
        }
    }

    /**
     * Progress on stderr: a line per tenth of each task, with its bar and the time since the start (whole lines, so
     * that they pass the {@code quant} script's line filter and read well in a log).
     */
    static final class Progress {
        private final PrintWriter err;
        private final long start = System.nanoTime();

        Progress(PrintWriter err) {
            this.err = err;
        }

        java.util.function.IntConsumer task(String label, int total) {
            int[] last = {-1};
            return done -> {
                int tenth = (int) (10L * done / total);
                if (tenth != last[0] && (tenth > 0 || done == total)) {
                    last[0] = tenth;
                    err.printf(
                            Locale.ROOT,
                            "%-34s [%s%s] %3d%%  %5.0f s%n",
                            label,
                            "#".repeat(tenth),
                            ".".repeat(10 - tenth),
                            10 * tenth,
                            (System.nanoTime() - start) / 1e9);
                    err.flush();
                }
            };
        }

        void done() {
            err.flush();
        }
    }
}
