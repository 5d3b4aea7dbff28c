package dev.quant4j.cli;

import dev.quant4j.ggml.GgmlGptq;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.RopeLayout;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.pipeline.GgufDecoderFile;
import dev.quant4j.pipeline.GgufDecoderFile.Stored;
import dev.quant4j.pipeline.GgufDecoderGptq;
import dev.quant4j.pipeline.GgufDecoderStream;
import dev.quant4j.pipeline.GgufQuantizer;
import dev.quant4j.pipeline.GgufTokenizer;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;

/**
 * {@code quant quantize --model model.bin|DIR --format gguf --gguf-type T}: a whole decoder (a llama2.c checkpoint, or
 * a Hugging Face Llama, Mistral or Qwen2 folder) as a GGUF model of llama.cpp's {@code llama} architecture, its
 * matrices in one ggml type by ggml's reference quantizers ({@link GgufDecoderFile}): one line per tensor on stdout,
 * each fallback and the vocabulary (the folder's tokenizer, {@link GgufTokenizer}, or a placeholder) on stderr. With
 * {@code --method gptq --group-size 32} ({@code --bits 4 --sym} q4_0, {@code --bits 4 --asym} q4_1, {@code --bits 8
 * --sym} q8_0) the block linears are GPTQ's blocks ({@link GgufDecoderGptq}), calibrated as {@code --format
 * safetensors} calibrates ({@link DecoderCalibration}); the embeddings and output head stay ggml's reference blocks.
 * {@code --act-order} quantizes each linear's columns by descending Hessian diagonal with every block's parameters fixed
 * up front ({@link GgmlGptq.Order#ACT_ORDER}); {@code --static-groups} alone fixes them and keeps the column order.
 * With ggml's reference quantizers a Hugging Face folder is streamed on {@code --threads} threads ({@link
 * GgufDecoderStream}), the heap holding a few row blocks per thread; GPTQ calibrated on the user's sequences reads a
 * folder block by block when its float32 weights would take more than half the heap ({@link
 * DecoderStreamOutput#chosen}, {@link GgufDecoderStream#writeGptq}). A llama2.c checkpoint, {@code --calib-sample} and
 * AWQ read the model whole.
 */
final class DecoderGgufOutput {

    private final QuantizeCommand cmd;
    private final GgufOutput.Options options;

    DecoderGgufOutput(QuantizeCommand cmd, GgufOutput.Options options) {
        this.cmd = cmd;
        this.options = options;
    }

    /** Whether {@code quant quantize --format gguf} hands its input to this class: a whole decoder. */
    static boolean handles(Path in) {
        return WeightFiles.extension(in).equals("bin")
                || (Files.isDirectory(in) && Files.isRegularFile(in.resolve("config.json")));
    }

    Integer run() throws IOException {
        if (cmd.decoderOptions.resume) {
            throw new IllegalArgumentException(DecoderOutput.RESUMABLE + ", not --format gguf");
        }
        long start = System.nanoTime();
        String m = cmd.method.toLowerCase(Locale.ROOT);
        boolean gptq = m.equals("gptq");
        boolean awq = m.equals("awq-block");
        if (!m.equals("rtn") && !gptq && !awq) {
            throw new IllegalArgumentException("--format gguf --model " + cmd.in + ": --method " + cmd.method
                    + " is not available; a whole decoder is written with ggml's reference quantizers (--method rtn),"
                    + " with GPTQ into q4_0, q4_1 or q8_0 (--method gptq --group-size 32), or after AWQ's scales and"
                    + " clipping (--method awq-block)");
        }
        List<String> refused = awq
                ? List.of(
                        "--bits",
                        "--group-size",
                        "--asym",
                        "--sym",
                        "--signed",
                        "--block-size",
                        "--double-quant",
                        "--act-order",
                        "--damp",
                        "--static-groups",
                        "--mse",
                        "--include",
                        "--accuracy-level")
                : gptq
                        ? List.of(
                                "--signed", "--block-size", "--double-quant", "--mse", "--include", "--accuracy-level")
                        : List.of(
                                "--bits",
                                "--group-size",
                                "--asym",
                                "--sym",
                                "--signed",
                                "--block-size",
                                "--double-quant",
                                "--calib",
                                "--act-order",
                                "--damp",
                                "--static-groups",
                                "--mse",
                                "--include",
                                "--accuracy-level",
                                "--calib-sample",
                                "--calib-text",
                                "--calib-tokens",
                                "--tokenizer",
                                "--seq-len",
                                "--seed");
        for (String option : refused) {
            if (cmd.spec.commandLine().getParseResult().hasMatchedOption(option)) {
                throw new IllegalArgumentException(option + " does not apply to --format gguf --model --method " + m
                        + (gptq
                                ? ": ggml's blocks are 32 columns, each with its own FP16 scale, and every block"
                                        + " linear is quantized"
                                : ": the --gguf-type fixes the bits and the blocks of every matrix"
                                        + (awq ? ", and AWQ's searches quantize as ggml does" : "")));
            }
        }
        GgmlType type;
        if (gptq || awq) {
            if (cmd.calib != null) {
                throw new IllegalArgumentException("--calib " + cmd.calib + " holds the activations of one matrix; a"
                        + " whole decoder (--model " + cmd.in + ") calibrates on token sequences: --calib-text FILE,"
                        + " --calib-tokens FILE, or sampled from the model (--calib-sample N --seq-len L --seed S)");
            }
        }
        if (cmd.threads != null && cmd.threads < 1) {
            throw new IllegalArgumentException("--threads " + cmd.threads + " must be at least 1");
        }
        if (awq) {
            if (options.ggufType == null) {
                throw new IllegalArgumentException(
                        "--method awq-block --format gguf needs --gguf-type q4_0, q4_1, q5_0, q5_1 or q8_0");
            }
            type = GgmlType.byName(options.ggufType);
            if (!DecoderQuantizer.AWQ_GGUF_TYPES.contains(type)) {
                throw new IllegalArgumentException("--gguf-type " + options.ggufType + ": AWQ's searches run for"
                        + " ggml's 32-value blocks, q4_0, q4_1, q5_0, q5_1 or q8_0");
            }
        } else if (gptq) {
            type = GgufDecoderGptq.type(cmd.bits, cmd.groupSize, cmd.symmetry != null && cmd.symmetry.sym);
            if (options.ggufType != null && GgmlType.byName(options.ggufType) != type) {
                throw new IllegalArgumentException("--gguf-type " + options.ggufType + " does not match GPTQ's --bits "
                        + cmd.bits + " --group-size " + cmd.groupSize
                        + (cmd.symmetry != null && cmd.symmetry.sym ? " --sym" : " --asym") + ", which write " + type);
            }
            if (cmd.damp != null && !(cmd.damp > 0 && Double.isFinite(cmd.damp))) {
                throw new IllegalArgumentException("--damp " + cmd.damp + " must be a positive fraction of the mean"
                        + " Hessian diagonal (for example 0.01)");
            }
        } else {
            if (options.ggufType == null) {
                throw new IllegalArgumentException("--format gguf needs --gguf-type " + GgmlType.quantizableNames());
            }
            type = GgmlType.byName(options.ggufType);
            if (!type.quantizable()) {
                throw new IllegalArgumentException(
                        "--gguf-type " + options.ggufType + ": quant4j quantizes to " + GgmlType.quantizableNames());
            }
        }
        WeightFiles.requireWritable(cmd.out, "gguf");
        WeightFiles.requireNotAnInput(cmd.out, cmd.overwrite, "--model", cmd.in);
        PrintWriter out = cmd.spec.commandLine().getOut();
        PrintWriter err = cmd.spec.commandLine().getErr();
        DecoderOutput.Options calibOptions = cmd.decoderOptions;
        // the user's sequences are read (and the text tokenized) before the model
        boolean calibrated = gptq || awq;
        DecoderOutput.UserSequences user = DecoderOutput.UserSequences.read(cmd.in, calibOptions, calibrated);
        TextTokenizer tokenizer = user.tokenizer();
        TextSequences.Lines lines = user.lines();
        if (!calibrated
                && !Files.isDirectory(cmd.in)
                && cmd.spec.commandLine().getParseResult().hasMatchedOption("--threads")) {
            throw new IllegalArgumentException("--threads does not apply to a llama2.c checkpoint with --format gguf"
                    + " --method rtn: it is quantized in memory, one tensor after another (a Hugging Face folder is"
                    + " streamed on --threads threads)");
        }
        boolean folder = Files.isDirectory(cmd.in);
        // a folder too large for the heap in float32 is read block by block (the user's sequences need no model)
        Written written = gptq && lines != null && folder && DecoderStreamOutput.chosen(cmd.in)
                ? streamedGptq(type, lines, tokenizer, err, start)
                : calibrated || !folder ? inMemory(type, gptq, awq, lines, tokenizer, err, start) : streamed(type, err);
        Map<String, LayerReport> reports = new LinkedHashMap<>();
        if (written.gptq() != null) {
            for (LayerReport r : written.gptq().layers()) {
                reports.put(r.name() + ".weight", r);
            }
        }
        int fallbacks = 0;
        for (Stored s : written.tensors()) {
            StringBuilder line = new StringBuilder(
                    String.format(Locale.ROOT, "%s (%s) %s %s", s.name(), s.source(), ne(s.ne()), s.type()));
            if (s.error() != null) {
                line.append(String.format(
                        Locale.ROOT,
                        ": %.3f bits/weight, MSE %.4g, SQNR %.2f dB",
                        8.0 * s.type().rowSize(s.ne()[0]) / s.ne()[0],
                        s.error().mse(),
                        s.error().sqnrDb()));
            }
            LayerReport r = reports.get(s.source());
            if (r != null && !Double.isNaN(r.gptqError())) {
                line.append(String.format(
                        Locale.ROOT,
                        ", gptq, output error ||W X - Q X||^2 GPTQ %.4g, RTN %.4g%s",
                        r.gptqError(),
                        r.rtnError(),
                        r.keptRtn() ? ", kept RTN" : ""));
            }
            out.println(line);
            if (s.fallback() != null) {
                fallbacks++;
                err.println("quant: '" + s.name() + "' written as " + s.type() + ", not " + type + ": " + s.fallback()
                        + " (as llama.cpp's quantize falls back)");
            }
        }
        for (String skipped : written.skipped()) {
            err.println("quant: '" + skipped + "' not written: the llama architecture has no such tensor"
                    + (skipped.startsWith("freqs_") ? " (llama.cpp computes the rotary tables)" : ""));
        }
        GgufTokenizer.Converted vocabulary = written.vocabulary();
        if (vocabulary != null && vocabulary.metadata() != null) {
            err.println(
                    "quant: the vocabulary is " + cmd.in.resolve("tokenizer.json") + "'s: " + vocabulary.description());
        } else {
            err.println("quant: the vocabulary is a placeholder of "
                    + written.config().vocabSize() + " tokens (<unk>,"
                    + " <s>, </s>, 256 byte tokens, <tok_N>)"
                    + (vocabulary != null
                            ? ": tokenizer.json is not carried into GGUF, " + vocabulary.unsupported()
                            : Files.isDirectory(cmd.in)
                                    ? ": " + cmd.in + " has no tokenizer.json"
                                    : ": a llama2.c checkpoint has no tokenizer.json")
                    + "; run the model on token ids");
        }
        List<Path> files = written.files();
        long bytes = 0;
        for (Path f : files) {
            bytes += Files.size(f);
        }
        GgufDecoderGptq.Result gptqResult = written.gptq();
        out.printf(
                Locale.ROOT,
                "wrote %s (llama, %d tensors, matrices %s%s%s%s; %d bytes)%n",
                files.size() == 1
                        ? cmd.out
                        : files.size() + " splits " + files.get(0).getFileName() + " ... "
                                + files.get(files.size() - 1).getFileName(),
                written.tensors().size(),
                type,
                fallbacks > 0 ? ", " + fallbacks + " of them in a fallback type" : "",
                gptqResult == null
                        ? awq ? "; block linears and norms after AWQ's scales and clipping, searched for " + type : ""
                        : String.format(
                                Locale.ROOT,
                                "; block linears by GPTQ, %d kept ggml's reference blocks",
                                gptqResult.keptRtn()),
                written.config().rope() == RopeLayout.HALF_SPLIT
                        ? "; q/k rows permuted back to the interleaved rotary layout"
                        : "",
                bytes);
        return Quant.OK;
    }

    /**
     * What was written: every tensor as stored, the source's tensors left out, the files, the vocabulary converted from
     * the folder's tokenizer (or null), the model's configuration and GPTQ's result (or null).
     */
    private record Written(
            List<Stored> tensors,
            List<String> skipped,
            List<Path> files,
            GgufTokenizer.Converted vocabulary,
            LlamaConfig config,
            GgufDecoderGptq.Result gptq) {}

    /** The vocabulary of the folder's {@code tokenizer.json}, or null (no tokenizer, or a llama2.c checkpoint). */
    private GgufTokenizer.Converted vocabulary(LlamaConfig config) throws IOException {
        boolean hasTokenizer = Files.isDirectory(cmd.in) && Files.isRegularFile(cmd.in.resolve("tokenizer.json"));
        return hasTokenizer ? GgufTokenizer.fromHuggingFace(cmd.in, config.vocabSize()) : null;
    }

    /**
     * The model read whole into memory (a llama2.c checkpoint, or any calibrated method), quantized and written by
     * {@link GgufDecoderFile#plan}.
     */
    private Written inMemory(
            GgmlType type,
            boolean gptq,
            boolean awq,
            TextSequences.Lines lines,
            TextTokenizer tokenizer,
            PrintWriter err,
            long start)
            throws IOException {
        QuantizedDecoderFile.Source source = QuantizedDecoderFile.readSource(cmd.in);
        if ((gptq || awq) && cmd.strict) {
            requireWholeBlocks(source, type);
        }
        if (awq) {
            source = source.with(awq(source, type, lines, tokenizer, err, start));
        }
        GgufTokenizer.Converted vocabulary = vocabulary(source.config());
        GgufDecoderGptq.Result gptqResult = null;
        if (gptq) {
            gptqResult = gptq(source, type, lines, tokenizer, err, start);
        }
        GgufDecoderFile.Plan plan = GgufDecoderFile.plan(
                source,
                type,
                cmd.strict,
                vocabulary == null ? null : vocabulary.metadata(),
                gptqResult == null ? Map.of() : gptqResult.linears());
        GgufQuantizer.Split split = options.split(cmd.maxShardSize);
        List<Path> files =
                split == null ? List.of(cmd.out) : plan.writeSplit(cmd.out, split.maxBytes(), split.maxTensors());
        if (split == null) {
            plan.write(cmd.out);
        }
        return new Written(
                plan.written().tensors(), plan.written().skipped(), files, vocabulary, source.config(), gptqResult);
    }

    /**
     * A Hugging Face folder with ggml's reference quantizers, streamed ({@link GgufDecoderStream}): the file the
     * in-memory plan writes, read a few row blocks at a time on {@code --threads} threads, with progress on {@code
     * err}.
     */
    private Written streamed(GgmlType type, PrintWriter err) throws IOException {
        ForkJoinPool pool = new ForkJoinPool(threads());
        try (HuggingFaceLlama.Checkpoint model = HuggingFaceLlama.open(cmd.in, pool)) {
            GgufTokenizer.Converted vocabulary = vocabulary(model.config());
            GgufDecoderStream.Plan plan =
                    GgufDecoderStream.plan(model, type, cmd.strict, vocabulary == null ? null : vocabulary.metadata());
            long total = 0;
            for (GgufQuantizer.Item it : plan.items()) {
                total += it.reader() != null ? it.inputBytes() : 0;
            }
            ProgressLine progress = new ProgressLine(err, total, System.console() != null);
            GgufQuantizer.Summary summary;
            try {
                summary = new GgufQuantizer(GgufQuantizer.Method.rtn(type), pool)
                        .write(plan.metadata(), plan.items(), cmd.out, options.split(cmd.maxShardSize), progress);
            } finally {
                progress.finish();
            }
            return new Written(plan.stored(summary), plan.skipped(), summary.files(), vocabulary, model.config(), null);
        } finally {
            pool.shutdown();
        }
    }

    /**
     * GPTQ of every block linear into {@code type} ({@link GgufDecoderGptq}) on the calibration sequences, the
     * progress on {@code err}.
     */
    private GgufDecoderGptq.Result gptq(
            QuantizedDecoderFile.Source source,
            GgmlType type,
            TextSequences.Lines lines,
            TextTokenizer tokenizer,
            PrintWriter err,
            long start) {
        GgufDecoderGptq.Result result = calibrated(
                source,
                lines,
                tokenizer,
                err,
                start,
                gptqLabel(type),
                (fp32, sequences, pool, progress) -> gptqOf(type, pool).quantize(fp32, sequences, progress));
        sayKept(result.layers(), type, err);
        return result;
    }

    /** GPTQ into {@code type} with {@code --damp} (default 0.01) and the column order of the options, on {@code pool}. */
    private GgufDecoderGptq gptqOf(GgmlType type, ForkJoinPool pool) {
        return new GgufDecoderGptq(type, damp(), GgufOutput.gptqOrder(cmd), pool);
    }

    /** What GPTQ does, for the first line on stderr: {@code GPTQ act-order (static groups) into q4_0 (damping 0.01)}. */
    private String gptqLabel(GgmlType type) {
        return "GPTQ" + GgufOutput.describe(GgufOutput.gptqOrder(cmd)) + " into " + type + " (damping " + damp() + ")";
    }

    private double damp() {
        return cmd.damp == null ? 0.01 : cmd.damp;
    }

    /** {@code --threads} (checked at the start), or one per core. */
    private int threads() {
        return cmd.threads == null ? Runtime.getRuntime().availableProcessors() : cmd.threads;
    }

    /** One line on {@code err} for each layer that kept ggml's reference blocks. */
    private static void sayKept(List<LayerReport> layers, GgmlType type, PrintWriter err) {
        for (LayerReport r : layers) {
            if (r.keptRtn()) {
                err.println("quant: '" + r.name() + ".weight' kept ggml's reference " + type + " blocks: GPTQ's"
                        + String.format(
                                Locale.ROOT,
                                " output error %.4g on the calibration activations exceeds their %.4g",
                                r.gptqError(),
                                r.rtnError()));
            }
        }
    }

    /**
     * GPTQ on a Hugging Face folder read block by block ({@link GgufDecoderStream#writeGptq}), calibrated on the user's
     * sequences: each block linear written as soon as GPTQ has made its blocks, the file the in-memory path writes.
     */
    private Written streamedGptq(
            GgmlType type, TextSequences.Lines lines, TextTokenizer tokenizer, PrintWriter err, long start)
            throws IOException {
        ForkJoinPool pool = new ForkJoinPool(threads());
        ForkJoinPool writer = new ForkJoinPool(1);
        try (HuggingFaceLlama.Checkpoint model = HuggingFaceLlama.open(cmd.in, pool)) {
            LlamaConfig c = model.config();
            DecoderCalibration calibration =
                    DecoderCalibration.ofLines(cmd.decoderOptions, lines, tokenizer, c, model.source(), err);
            GgufTokenizer.Converted vocabulary = vocabulary(c);
            GgufDecoderStream.Plan plan =
                    GgufDecoderStream.plan(model, type, cmd.strict, vocabulary == null ? null : vocabulary.metadata());
            err.printf(
                    Locale.ROOT,
                    "quant: %s, %d layers, dim %d, read block by block: %s; %s%n",
                    model.source(),
                    c.layers(),
                    c.dim(),
                    gptqLabel(type),
                    calibration.description());
            err.flush();
            java.util.function.IntConsumer progress = DecoderOutput.blockProgress(err, c.layers(), start);
            List<LayerReport> layers = new java.util.ArrayList<>();
            GgufQuantizer.Summary summary = GgufDecoderStream.writeGptq(
                    plan,
                    gptqOf(type, pool),
                    model,
                    calibration.sequences(),
                    new GgufQuantizer(GgufQuantizer.Method.rtn(type), writer),
                    cmd.out,
                    options.split(cmd.maxShardSize),
                    (name, bytes) -> {},
                    (b, stored, reports) -> {
                        synchronized (layers) {
                            layers.addAll(reports);
                        }
                        progress.accept(b + 1);
                    });
            sayKept(layers, type, err);
            return new Written(
                    plan.stored(summary),
                    plan.skipped(),
                    summary.files(),
                    vocabulary,
                    c,
                    new GgufDecoderGptq.Result(Map.of(), layers));
        } finally {
            pool.shutdown();
            writer.shutdown();
        }
    }

    /**
     * llm-awq's block-level scales and clipping on the FP32 model, every search quantizing as ggml's reference
     * quantizer of {@code type} does ({@link DecoderQuantizer#awqFolded(LlamaDecoder, List, GgmlType,
     * IntConsumer)}): the folded linears, norms and biases by tensor name.
     */
    private Map<String, FloatMatrix> awq(
            QuantizedDecoderFile.Source source,
            GgmlType type,
            TextSequences.Lines lines,
            TextTokenizer tokenizer,
            PrintWriter err,
            long start) {
        return calibrated(
                source,
                lines,
                tokenizer,
                err,
                start,
                "AWQ's block scales and clipping searched for " + type,
                (fp32, sequences, pool, progress) -> new DecoderQuantizer(
                                new DecoderQuantizer.Setting(DecoderQuantizer.Method.AWQ_BLOCK, 4, 32, false, false),
                                pool)
                        .awqFolded(fp32, sequences, type, progress));
    }

    /** A calibrated search over the FP32 model's blocks: its result from the sequences, on the pool. */
    @FunctionalInterface
    private interface CalibratedRun<T> {
        T run(LlamaDecoder fp32, List<int[]> sequences, ForkJoinPool pool, IntConsumer progress);
    }

    /**
     * {@code run} on the FP32 model and its calibration sequences, on a pool of {@code --threads} threads: first one
     * line on {@code err} saying the model and {@code what}, then one line as each block is done.
     */
    private <T> T calibrated(
            QuantizedDecoderFile.Source source,
            TextSequences.Lines lines,
            TextTokenizer tokenizer,
            PrintWriter err,
            long start,
            String what,
            CalibratedRun<T> run) {
        ForkJoinPool pool = new ForkJoinPool(threads());
        try {
            LlamaDecoder fp32 = source.decoder(pool);
            DecoderCalibration calibration =
                    DecoderCalibration.of(cmd.decoderOptions, lines, tokenizer, fp32, source.name(), err, start);
            err.printf(
                    Locale.ROOT,
                    "quant: %s, %d layers, dim %d: %s; %s%n",
                    source.name(),
                    fp32.config().layers(),
                    fp32.config().dim(),
                    what,
                    calibration.description());
            err.flush();
            return run.run(
                    fp32,
                    calibration.sequences(),
                    pool,
                    DecoderOutput.blockProgress(err, fp32.config().layers(), start));
        } finally {
            pool.shutdown();
        }
    }

    /**
     * With {@code --strict}, a block linear whose rows are not whole blocks of {@code type} is an error before any
     * calibration (the RTN path finds it while writing).
     */
    private static void requireWholeBlocks(QuantizedDecoderFile.Source source, GgmlType type) {
        for (FloatMatrix t : source.tensors().values()) {
            String g = GgufDecoderFile.ggufName(t.name());
            if (g != null && t.rows() > 1 && t.cols() % type.blockSize() != 0) {
                throw new IllegalArgumentException("tensor '" + t.name() + "' [" + t.rows() + ", " + t.cols()
                        + "]: its rows of " + t.cols() + " values are not whole " + type + " blocks of "
                        + type.blockSize() + " (strict: no fallback to "
                        + GgufDecoderFile.storedType(type, t.cols()) + ")");
            }
        }
    }

    private static String ne(long[] ne) {
        StringBuilder b = new StringBuilder("[");
        for (int i = ne.length - 1; i >= 0; i--) {
            b.append(ne[i]).append(i > 0 ? " x " : "]");
        }
        return b.toString();
    }
}
