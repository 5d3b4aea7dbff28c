package dev.quant4j.cli;

import dev.quant4j.io.GptqCheckpoint;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Stream;
import picocli.CommandLine.Option;

/**
 * {@code quant quantize --model}: a whole decoder (a llama2.c checkpoint, or a Hugging Face Llama, Mistral or Qwen2
 * folder) quantized by {@link DecoderQuantizer}: every linear layer of every block, GPTQ block by block on sequences
 * the FP32 model samples itself. Written as one quant4j {@code .safetensors} file that holds the whole model and its
 * hyperparameters ({@link QuantizedDecoderFile}), or with {@code --format gptq} as a GPTQ checkpoint folder (from a
 * Hugging Face folder; the layers the layout cannot hold stay F32).
 */
final class DecoderOutput {

    /** The options only a whole decoder reads. */
    static final class Options {
        @Option(
                names = "--calib-sample",
                description = "whole decoder, gptq and awq: calibration sequences sampled from the FP32 model"
                        + " (default 64); with --calib-text or --calib-tokens, the first N windows of the file"
                        + " (default: every window)")
        Integer calibSample;

        @Option(
                names = "--calib-text",
                description = "whole decoder, gptq and awq: calibration text, one text a line (UTF-8), tokenized with"
                        + " --tokenizer, concatenated and cut into --seq-len windows (all of them, or the first"
                        + " --calib-sample N)")
        Path calibText;

        @Option(
                names = "--calib-tokens",
                description = "whole decoder, gptq and awq: calibration token ids, one sequence a line, separated by"
                        + " white space; concatenated and cut as --calib-text")
        Path calibTokens;

        @Option(
                names = "--tokenizer",
                description = "with --calib-text: the model's tokenizer.json (default: tokenizer.json in the --model"
                        + " folder)")
        Path tokenizer;

        @Option(
                names = "--seq-len",
                description = "whole decoder, gptq and awq: tokens per calibration sequence (default 128, or the"
                        + " model's context when shorter)")
        Integer seqLen;

        @Option(
                names = "--resume",
                description = "whole decoder, gptq of a Hugging Face folder with --calib-text or --calib-tokens into"
                        + " a .safetensors file: continue the run whose state is saved in OUT.resume (each run saves"
                        + " it after every block; without it, starts from block 0)")
        boolean resume;

        @Option(
                names = "--seed",
                description = "whole decoder, gptq and awq: the sampling seed (default 1, the calibration seed of"
                        + " quant eval --model)")
        Long seed;

        /** Refuses the options when the input is not a whole decoder. */
        void requireUnset() {
            if (resume) {
                throw new IllegalArgumentException(RESUMABLE + "; this command quantizes tensor by tensor");
            }
            String set = calibSample != null
                    ? "--calib-sample"
                    : seqLen != null
                            ? "--seq-len"
                            : seed != null
                                    ? "--seed"
                                    : calibText != null
                                            ? "--calib-text"
                                            : calibTokens != null
                                                    ? "--calib-tokens"
                                                    : tokenizer != null ? "--tokenizer" : null;
            if (set != null) {
                throw new IllegalArgumentException(set + " applies to a whole decoder only (--model model.bin, or a"
                        + " Hugging Face folder with --method gptq or awq)");
            }
        }
    }

    /** What {@code --resume} applies to, for its refusals. */
    static final String RESUMABLE = "--resume continues GPTQ of a Hugging Face folder read block by block (--method"
            + " gptq with --calib-text or --calib-tokens, written as one .safetensors file)";

    static final int DEFAULT_CALIB_SAMPLE = 64;
    static final int DEFAULT_SEQ_LEN = 128;

    private final QuantizeCommand cmd;
    private final Options options;

    DecoderOutput(QuantizeCommand cmd, Options options) {
        this.cmd = cmd;
        this.options = options;
    }

    /**
     * Whether {@code quant quantize} hands its input to this class: a llama2.c checkpoint always; a Hugging Face
     * folder ({@code config.json}) for GPTQ and AWQ (either form) when no {@code --calib} matrix is given.
     */
    static boolean handles(Path in, String method, Path calib) {
        if (WeightFiles.extension(in).equals("bin")) {
            return true;
        }
        String m = method.toLowerCase(Locale.ROOT);
        return Files.isDirectory(in)
                && Files.isRegularFile(in.resolve("config.json"))
                && (m.equals("gptq") || m.equals("awq") || m.equals("awq-block"))
                && calib == null;
    }

    Integer run() throws IOException {
        String m = cmd.method.toLowerCase(Locale.ROOT);
        Method method = Method.fromId(m)
                .orElseThrow(() -> new IllegalArgumentException("--method " + cmd.method
                        + ": a whole decoder is quantized with rtn, nf4, gptq, awq or awq-block"));
        boolean bin = WeightFiles.extension(cmd.in).equals("bin");
        if (cmd.calib != null) {
            throw new IllegalArgumentException("--calib " + cmd.calib + " holds the activations of one matrix; a whole"
                    + " decoder (--model " + cmd.in
                    + ") calibrates on token sequences: --calib-text FILE, --calib-tokens"
                    + " FILE, or sampled from the model (--calib-sample N --seq-len L --seed S)");
        }
        String format = cmd.format.toLowerCase(Locale.ROOT);
        if (!format.equals("safetensors") && !format.equals("gptq")) {
            throw new IllegalArgumentException("--format " + cmd.format + ": a whole decoder is written as safetensors"
                    + " (quant4j's format, one file) or gptq (a GPTQ checkpoint folder)");
        }
        cmd.ggufOptions.requireUnset(format);
        refuse(cmd.accuracyLevel != null, "--accuracy-level", "it belongs to --format onnx");
        refuse(
                cmd.include != null,
                "--include",
                "every linear layer of every block is quantized (the embeddings and the output head stay F32)");
        refuse(cmd.doubleQuant, "--double-quant", "NF4 on a whole decoder keeps its block absmax values in F32");
        Setting setting = setting(method, m);
        boolean calibrated = method == Method.GPTQ || method == Method.AWQ || method == Method.AWQ_BLOCK;
        if (!calibrated
                && (options.calibSample != null
                        || options.seqLen != null
                        || options.seed != null
                        || options.calibText != null
                        || options.calibTokens != null
                        || options.tokenizer != null)) {
            throw new IllegalArgumentException("--calib-sample, --calib-text, --calib-tokens, --tokenizer, --seq-len"
                    + " and --seed apply to gptq, awq and awq-block only, not to " + m);
        }
        boolean gptqFormat = format.equals("gptq");
        if (gptqFormat) {
            if (bin) {
                throw new IllegalArgumentException("--format gptq writes a Hugging Face checkpoint, and " + cmd.in
                        + " is a llama2.c checkpoint (no config.json; query and key rows in llama2.c's rotary"
                        + " layout); write --format safetensors, or quantize the model's Hugging Face folder");
            }
            String reason = GptqOutput.unsupportedChoice(
                    m, new LinearScheme(setting.bits(), Symmetry.ASYM, setting.groupSize()));
            if (reason != null) {
                throw new IllegalArgumentException("--format gptq: " + reason);
            }
            if (setting.damp() >= 1) {
                // quantize_config.json's damp_percent: AutoGPTQ refuses a checkpoint with another
                throw new IllegalArgumentException(
                        "--format gptq: --damp " + setting.damp() + " must be below 1 (damp_percent)");
            }
            requireOutputFolder();
        } else {
            WeightFiles.requireWritable(cmd.out, "safetensors");
            WeightFiles.requireNotAnInput(cmd.out, cmd.overwrite, "--in", cmd.in);
            DecoderStreamOutput.requireNoStateUnlessResumed(cmd.out, options.resume);
        }
        if (options.resume) {
            String not = method != Method.GPTQ
                    ? "--method " + m + (calibrated ? "" : " (it takes minutes, not hours)")
                    : bin
                            ? "a llama2.c checkpoint"
                            : gptqFormat
                                    ? "--format gptq"
                                    : options.calibText == null && options.calibTokens == null
                                            ? "sequences sampled from the model (it needs the whole model in memory)"
                                            : null;
            if (not != null) {
                throw new IllegalArgumentException(RESUMABLE + ", not " + not);
            }
        }
        int threads = cmd.threads == null ? Runtime.getRuntime().availableProcessors() : cmd.threads;
        if (threads < 1) {
            throw new IllegalArgumentException("--threads " + threads + " must be at least 1");
        }
        PrintWriter out = cmd.spec.commandLine().getOut();
        PrintWriter err = cmd.spec.commandLine().getErr();
        // the user's sequences are read (and the text tokenized) before the model
        UserSequences user = UserSequences.read(cmd.in, options, calibrated);
        TextTokenizer tokenizer = user.tokenizer();
        TextSequences.Lines lines = user.lines();
        // a folder too large for the heap in float32 is read block by block (the user's sequences need no model)
        boolean streamed = lines != null
                && !bin
                && !gptqFormat
                && method != Method.AWQ_BLOCK
                && (options.resume || DecoderStreamOutput.chosen(cmd.in));
        ForkJoinPool pool = new ForkJoinPool(threads);
        try {
            if (streamed) {
                return DecoderStreamOutput.run(cmd, setting, m, lines, tokenizer, pool);
            }
            long start = System.nanoTime();
            QuantizedDecoderFile.Source source = QuantizedDecoderFile.readSource(cmd.in);
            LlamaDecoder fp32 = source.decoder(pool);
            requireSchemeFits(cmd, fp32.config(), setting);
            List<int[]> calibration = null;
            String calibText = "";
            if (calibrated) {
                DecoderCalibration c =
                        DecoderCalibration.of(options, lines, tokenizer, fp32, source.name(), err, start);
                calibration = c.sequences();
                calibText = "; " + c.description();
            }
            err.printf(
                    Locale.ROOT,
                    "quant: %s, %d layers, dim %d: %s%s%n",
                    source.name(),
                    fp32.config().layers(),
                    fp32.config().dim(),
                    setting.label(),
                    calibText);
            err.flush();
            int layers = fp32.config().layers();
            DecoderQuantizer.Result result =
                    new DecoderQuantizer(setting, pool).quantize(fp32, calibration, blockProgress(err, layers, start));
            int keptRtn = report(out, source, setting, result);
            return gptqFormat
                    ? writeGptq(out, err, source, setting, result, keptRtn)
                    : writeSafeTensors(out, source, result, m, keptRtn);
        } finally {
            pool.shutdown();
        }
    }

    /**
     * The calibration sequences the user gave ({@code --calib-text} or {@code --calib-tokens}), read (and the text
     * tokenized, the tokenizer closed again) before the model, with the tokenizer for its vocabulary check; both null
     * when not {@code calibrated} or when the sequences are to be sampled from the model.
     */
    record UserSequences(TextTokenizer tokenizer, TextSequences.Lines lines) {

        static UserSequences read(Path model, Options options, boolean calibrated) throws IOException {
            TextTokenizer tokenizer = calibrated ? openTokenizer(model, options) : null;
            TextSequences.Lines lines;
            try {
                lines = calibrated
                        ? TextSequences.read("calib", options.calibText, options.calibTokens, tokenizer)
                        : null;
            } finally {
                if (tokenizer != null) {
                    tokenizer.close();
                }
            }
            if (lines != null && options.seed != null) {
                throw new IllegalArgumentException("--seed applies to sequences sampled from the model; "
                        + lines.option() + " sequences are cut from the file");
            }
            return new UserSequences(tokenizer, lines);
        }
    }

    /** One line on {@code err} as each of the {@code layers} blocks is done, with the time since {@code start}. */
    static java.util.function.IntConsumer blockProgress(PrintWriter err, int layers, long start) {
        return b -> {
            err.printf(Locale.ROOT, "quant: block %d/%d done (%.1f s)%n", b, layers, (System.nanoTime() - start) / 1e9);
            err.flush();
        };
    }

    /**
     * The tokenizer {@code --calib-text} needs ({@code --tokenizer}, or the model folder's {@code tokenizer.json});
     * null without {@code --calib-text}. Refused: {@code --tokenizer} without text, text without a tokenizer.
     */
    static TextTokenizer openTokenizer(Path model, Options options) throws IOException {
        if (options.calibText == null) {
            if (options.tokenizer != null) {
                throw new IllegalArgumentException("--tokenizer " + options.tokenizer + " applies with --calib-text"
                        + " only (--calib-tokens are ids already)");
            }
            return null;
        }
        Path file = TextTokenizer.locate(options.tokenizer, model);
        if (file == null) {
            throw noTokenizer("--calib-text", model, "--calib-tokens FILE", "--calib-sample N");
        }
        return TextTokenizer.open(file);
    }

    /** The message when text comes without a tokenizer: what to pass instead. */
    static IllegalArgumentException noTokenizer(String option, Path model, String ids, String sample) {
        return new IllegalArgumentException(option + " needs the model's tokenizer: pass --tokenizer tokenizer.json ("
                + DecoderFiles.noTokenizerReason(model) + "), or give token ids with " + ids
                + ", or let the model sample its own sequences with " + sample);
    }

    /** The decoder setting the options describe, every option that does not apply refused. */
    private Setting setting(Method method, String m) {
        boolean sym = cmd.symmetry != null && cmd.symmetry.sym;
        if (cmd.symmetry != null && cmd.symmetry.signed) {
            throw new IllegalArgumentException("--signed: a whole decoder takes --asym or --sym (GPTQ's forms)");
        }
        if (cmd.actOrder && method != Method.GPTQ) {
            throw new IllegalArgumentException("--act-order applies to gptq only, not to " + m);
        }
        if (cmd.mse && method != Method.GPTQ) {
            throw new IllegalArgumentException("--mse applies to gptq only, not to " + m);
        }
        if (method == Method.NF4) {
            if (cmd.spec.commandLine().getParseResult().hasMatchedOption("--group-size")) {
                throw new IllegalArgumentException("--group-size applies to rtn, gptq and awq only, not to nf4 (its"
                        + " blocks are --block-size)");
            }
            if (cmd.symmetry != null) {
                throw new IllegalArgumentException("--asym/--sym/--signed apply to rtn, gptq and awq only, not to nf4");
            }
            if (cmd.bits != 4) {
                throw new IllegalArgumentException("--bits " + cmd.bits + ": nf4 codes are 4 bits");
            }
            int block = cmd.blockSize == null ? CodebookScheme.DEFAULT_BLOCK_SIZE : cmd.blockSize;
            CodebookScheme.nf4(block); // checks the block size
            return new Setting(Method.NF4, 4, block, false, false);
        }
        refuse(cmd.blockSize != null, "--block-size", "it applies to nf4");
        if (cmd.groupSize == LinearScheme.PER_TENSOR || cmd.groupSize < LinearScheme.PER_CHANNEL) {
            throw new IllegalArgumentException("--group-size " + cmd.groupSize + ": a whole decoder is quantized per"
                    + " group (a positive group size) or per channel (-1)");
        }
        if ((method == Method.AWQ || method == Method.AWQ_BLOCK) && sym) {
            throw new IllegalArgumentException("awq: --sym is not an AWQ form (llm-awq's min/max, with zero-points)");
        }
        new LinearScheme(cmd.bits, sym ? Symmetry.SYM : Symmetry.ASYM, cmd.groupSize); // checks the bits
        if (cmd.damp != null && method != Method.GPTQ) {
            throw new IllegalArgumentException("--damp applies to gptq only, not to " + m);
        }
        if (cmd.staticGroups && method != Method.GPTQ) {
            throw new IllegalArgumentException("--static-groups applies to gptq only, not to " + m);
        }
        if (cmd.damp != null && !(cmd.damp > 0 && Double.isFinite(cmd.damp))) {
            throw new IllegalArgumentException("--damp " + cmd.damp + " must be a positive fraction of the mean"
                    + " Hessian diagonal (for example 0.01)");
        }
        if (cmd.staticGroups && cmd.groupSize == LinearScheme.PER_CHANNEL) {
            throw new IllegalArgumentException("gptq: --static-groups needs a positive --group-size");
        }
        return new Setting(
                method,
                cmd.bits,
                cmd.groupSize,
                sym,
                cmd.actOrder,
                cmd.mse,
                cmd.damp == null ? Setting.DEFAULT_DAMP : cmd.damp,
                cmd.staticGroups);
    }

    /**
     * With {@code --strict}, a layer whose input width the group size does not divide is an error naming it (block 0's,
     * every block having the same widths) instead of being quantized per channel. Widths come from the configuration
     * alone, so that the streamed path checks before reading any weight.
     */
    static void requireSchemeFits(QuantizeCommand cmd, LlamaConfig c, Setting s) {
        if (!cmd.strict || s.method() == Method.NF4 || s.groupSize() == LinearScheme.PER_CHANNEL) {
            return;
        }
        // [out, in] of a block's linears, in LlamaDecoder's order
        Map<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("self_attn.q_proj", new int[] {c.qDim(), c.dim()});
        shapes.put("self_attn.k_proj", new int[] {c.kvDim(), c.dim()});
        shapes.put("self_attn.v_proj", new int[] {c.kvDim(), c.dim()});
        shapes.put("self_attn.o_proj", new int[] {c.dim(), c.qDim()});
        shapes.put("mlp.gate_proj", new int[] {c.hiddenDim(), c.dim()});
        shapes.put("mlp.up_proj", new int[] {c.hiddenDim(), c.dim()});
        shapes.put("mlp.down_proj", new int[] {c.dim(), c.hiddenDim()});
        for (Map.Entry<String, int[]> e : shapes.entrySet()) {
            int out = e.getValue()[0];
            int in = e.getValue()[1];
            if (in % s.groupSize() != 0) {
                throw new IllegalArgumentException("layer 'model.layers.0." + e.getKey() + "' [" + out + ", " + in
                        + "]: group size " + s.groupSize() + " does not divide its " + in + " input features"
                        + " (--strict; without it the layer is quantized per channel)");
            }
        }
    }

    /** One line per layer on {@code out}; returns how many layers kept their RTN weight. */
    private static int report(
            PrintWriter out, QuantizedDecoderFile.Source source, Setting s, DecoderQuantizer.Result result) {
        int kept = 0;
        for (LayerReport r : result.layers()) {
            String name = r.name() + ".weight";
            QuantizedWeight q = result.weights().get(name);
            FloatMatrix w = source.tensors().get(name);
            ErrorMetrics e = ErrorMetrics.compare(w, q);
            out.println(reportLine(s, r, q, e));
            if (r.keptRtn()) {
                kept++;
            }
        }
        return kept;
    }

    /** One layer's line of the report: shape, scheme, bits per weight, SQNR; for GPTQ the output errors. */
    static String reportLine(Setting s, LayerReport r, QuantizedWeight q, ErrorMetrics e) {
        String scheme = switch (s.method()) {
            case GPTQ -> "gptq " + r.scheme() + (s.actOrder() ? " act-order" : "") + (s.mse() ? " mse" : "");
            case AWQ -> "awq " + r.scheme();
            case AWQ_BLOCK -> "awq-block " + r.scheme();
            default -> r.scheme();
        };
        StringBuilder line = new StringBuilder(String.format(
                Locale.ROOT,
                "%s [%d x %d] %s: %.3f bits/weight, SQNR %.2f dB",
                r.name(),
                q.rows(),
                q.cols(),
                scheme,
                q.bitsPerWeight(),
                e.sqnrDb()));
        if (s.method() == Method.GPTQ) {
            line.append(String.format(
                    Locale.ROOT, ", output error ||W X - Q X||^2 GPTQ %.4g, RTN %.4g", r.gptqError(), r.rtnError()));
            if (r.keptRtn()) {
                line.append(", kept RTN");
            }
        }
        return line.toString();
    }

    private int writeSafeTensors(
            PrintWriter out, QuantizedDecoderFile.Source source, DecoderQuantizer.Result result, String m, int keptRtn)
            throws IOException {
        QuantizedDecoderFile.write(cmd.out, source, result, m);
        int layers = result.weights().size();
        long perChannel = result.weights().values().stream()
                .filter(q -> q instanceof QuantizedTensor t
                        && t.scheme().groupSize() == LinearScheme.PER_CHANNEL
                        && cmd.groupSize != LinearScheme.PER_CHANNEL)
                .count();
        out.printf(
                Locale.ROOT,
                "wrote %s (%d linear layers quantized%s%s, %.3f bits/weight; %d tensors F32; %d bytes, FP32 %d"
                        + " bytes)%n",
                cmd.out,
                layers,
                keptRtn > 0 ? ", " + keptRtn + " of them kept RTN" : "",
                perChannel > 0 ? ", " + perChannel + " per channel (the group size does not divide their input)" : "",
                result.bitsPerWeight(),
                source.tensors().size() - layers,
                Files.size(cmd.out),
                fp32Bytes(source));
        return Quant.OK;
    }

    private int writeGptq(
            PrintWriter out,
            PrintWriter err,
            QuantizedDecoderFile.Source source,
            Setting setting,
            DecoderQuantizer.Result result,
            int keptRtn)
            throws IOException {
        int group = cmd.groupSize;
        List<QuantizedWeight> fits = new ArrayList<>();
        List<PassThrough> other = new ArrayList<>();
        for (FloatMatrix t : source.tensors().values()) {
            QuantizedWeight q = result.weights().get(t.name());
            if (q == null) {
                other.add(QuantizedDecoderFile.f32(t));
                continue;
            }
            String why = GptqCheckpoint.unsupported(q);
            if (why == null && ((QuantizedTensor) q).scheme().groupSize() != group) {
                why = "quantized per channel (the group size " + group + " does not divide its " + q.cols()
                        + " input features), and a GPTQ checkpoint has one group size";
            }
            if (why == null) {
                fits.add(q);
                continue;
            }
            if (cmd.strict) {
                throw new IllegalArgumentException("layer '" + t.name() + "': " + why + " (--strict)");
            }
            err.println("quant: kept '" + t.name() + "' F32: " + why);
            other.add(QuantizedDecoderFile.f32(t));
        }
        if (fits.isEmpty()) {
            throw new IllegalArgumentException("--format gptq: no layer of " + source.name() + " fits a GPTQ"
                    + " checkpoint at --bits " + cmd.bits + " --group-size " + group);
        }
        boolean gptq = result.layers().stream().anyMatch(r -> !Double.isNaN(r.gptqError()));
        GptqCheckpoint.write(
                cmd.out,
                fits,
                other,
                new GptqCheckpoint.Options(setting.damp(), setting.staticGroups(), gptq),
                cmd.in,
                cmd.overwrite);
        long stored = fits.stream().mapToLong(QuantizedWeight::storageBytes).sum();
        long weights = fits.stream().mapToLong(q -> (long) q.rows() * q.cols()).sum();
        out.printf(
                Locale.ROOT,
                "wrote %s (GPTQ checkpoint: %d of %d linear layers quantized%s, %.3f bits/weight; %d kept F32; %d"
                        + " bytes, FP32 %d bytes)%n",
                cmd.out,
                fits.size(),
                result.weights().size(),
                keptRtn > 0 ? ", " + keptRtn + " of all kept RTN" : "",
                8.0 * stored / weights,
                result.weights().size() - fits.size(),
                folderBytes(cmd.out),
                fp32Bytes(source));
        return Quant.OK;
    }

    private static long fp32Bytes(QuantizedDecoderFile.Source source) {
        return source.tensors().values().stream()
                .mapToLong(t -> 4L * t.rows() * t.cols())
                .sum();
    }

    private static long folderBytes(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            long total = 0;
            for (Path p : files.filter(Files::isRegularFile).toList()) {
                total += Files.size(p);
            }
            return total;
        }
    }

    /**
     * The output folder of {@code --format gptq}: refused when it is or holds the input folder, and when it exists
     * without {@code --overwrite}.
     */
    private void requireOutputFolder() throws IOException {
        Path out = cmd.out.toAbsolutePath().normalize();
        if (Files.exists(out)) {
            Path in = cmd.in.toAbsolutePath().normalize();
            if ((Files.exists(in) ? in.toRealPath() : in).startsWith(out.toRealPath())) {
                throw new IllegalArgumentException("--out " + cmd.out + " is or holds the --model " + cmd.in
                        + "; write the checkpoint to another folder");
            }
            if (!cmd.overwrite) {
                throw new IllegalArgumentException("--out " + cmd.out + " exists; --format gptq writes a new folder"
                        + " (pass --overwrite to replace it)");
            }
        }
        Path parent = out.getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new IllegalArgumentException("output folder " + parent + " does not exist");
        }
    }

    private static void refuse(boolean set, String option, String why) {
        if (set) {
            throw new IllegalArgumentException(option + " does not apply to a whole decoder: " + why);
        }
    }
}
