package dev.quant4j.cli;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqResult;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.GptqResult;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.Npy;
import dev.quant4j.io.OnnxExport;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(
        name = "quantize",
        mixinStandardHelpOptions = true,
        description =
                "Quantize the 2-D weights of a .npy, .safetensors or .onnx file into a quantized .safetensors file,"
                        + " or (--format onnx) an .onnx model into an .onnx model that ONNX Runtime runs, or (--format"
                        + " gptq) a .safetensors file or Hugging Face folder into a GPTQ checkpoint folder.")
final class QuantizeCommand implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(
            names = "--method",
            required = true,
            description = "rtn, nf4, fp4, gptq or awq (awq uses llm-awq's min/max form, shown as 'minmax': the range"
                    + " of each group is its own min and max, not widened to contain 0); a whole decoder also"
                    + " awq-block (llm-awq's block-level search, scales folded into the norms)")
    String method;

    @Option(
            names = {"--in", "--model"},
            required = true,
            description = "weights: W.npy ([out, in] float32), model.safetensors of any size, a Hugging Face folder"
                    + " or its model.safetensors.index.json (rtn, nf4, fp4: streamed shard by shard; --format gptq),"
                    + " model.onnx (its MatMul weights), model.gguf (--format gguf); a whole decoder: a llama2.c"
                    + " model.bin, or a Hugging Face Llama, Mistral or Qwen2 folder with --method gptq, awq or"
                    + " awq-block and no --calib, or with --format gguf (a llama.cpp model)")
    Path in;

    @Option(
            names = "--out",
            required = true,
            description = "quantized output: .safetensors, a new folder for a folder input (the same shard names and"
                    + " a new index), .onnx with --format onnx, .gguf with --format gguf, a new folder with --format"
                    + " gptq")
    Path out;

    @Option(
            names = "--format",
            defaultValue = "safetensors",
            description = "safetensors (quant4j's format, the default) or onnx: the --in .onnx model whole, each"
                    + " quantized MatMul as ONNX Runtime's com.microsoft.MatMulNBits (rtn, gptq, awq; 4 or 8 bits;"
                    + " group size a multiple of 16, or -1) or com.microsoft.MatMulBnb4 (nf4, fp4); or gguf: a .gguf"
                    + " file with the weights in ggml's --gguf-type (rtn; .gguf input keeps its metadata and 1-D"
                    + " tensors; a whole decoder becomes a llama.cpp 'llama' model); or gptq: an AutoGPTQ/GPTQModel checkpoint folder (rtn, gptq; 2, 3, 4 or 8 bits)"
                    + " that transformers and vLLM load")
    String format;

    @Mixin
    GgufOutput.Options ggufOptions;

    @Mixin
    DecoderOutput.Options decoderOptions;

    @Option(
            names = "--accuracy-level",
            description =
                    "--format onnx: MatMulNBits' accuracy_level, 0 (the default: ONNX Runtime computes in float32)"
                            + " or 4 (ONNX Runtime quantizes the activations to int8: faster, about 1e-3 off)")
    Integer accuracyLevel;

    @Option(names = "--bits", defaultValue = "4", description = "bits per weight, 2..8 (default ${DEFAULT-VALUE})")
    int bits;

    @Option(
            names = "--group-size",
            defaultValue = "128",
            description = "columns per group; -1 per channel, 0 per tensor (default ${DEFAULT-VALUE})")
    int groupSize;

    static final class SymmetryChoice {
        @Option(names = "--asym", description = "asymmetric, scale and zero-point (default)")
        boolean asym;

        @Option(names = "--sym", description = "GPTQ symmetric: zero-point (maxq + 1) / 2")
        boolean sym;

        @Option(names = "--signed", description = "signed symmetric (absmax): q in [-(2^(b-1)-1), 2^(b-1)-1]")
        boolean signed;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    SymmetryChoice symmetry;

    @Option(
            names = "--include",
            description = "regular expression: which 2-D tensors of a model file to quantize (default: a .safetensors"
                    + " file's 2-D float tensors except embeddings and the output head; an .onnx model's MatMul"
                    + " weights; 'quant inspect' lists the names)")
    String include;

    @Option(
            names = "--strict",
            description = "fail when a selected tensor cannot take the scheme (for example a group size that does not"
                    + " divide its input features) instead of keeping it unquantized")
    boolean strict;

    @Option(
            names = "--overwrite",
            description = "replace an existing --out output folder (sharded, GPTQ), or allow --out to be the --in"
                    + " file; replaced atomically when done")
    boolean overwrite;

    @Option(names = "--block-size", description = "NF4/FP4 block size, 32..4096, a power of two (default 64)")
    Integer blockSize;

    @Option(
            names = "--double-quant",
            description = "store the block absmax values 8-bit quantized, as QLoRA (nf4, fp4)")
    boolean doubleQuant;

    @Option(
            names = "--calib",
            description = "calibration activations X.npy [n, in] float32, one row per token (gptq, awq): every "
                    + "quantized tensor must have `in` input features")
    Path calib;

    @Option(names = "--act-order", description = "GPTQ: columns by descending Hessian diagonal")
    boolean actOrder;

    @Option(
            names = "--damp",
            description = "GPTQ: damping as a fraction of the mean Hessian diagonal, > 0 (default 0.01)")
    Double damp;

    @Option(names = "--static-groups", description = "GPTQ: group parameters computed before quantization")
    boolean staticGroups;

    @Option(
            names = "--mse",
            description = "GPTQ: each group's range shrunk to the factor (1, 0.99, ..., 0.21) that minimises its"
                    + " rounding error, the reference quantizer's mse=True")
    boolean mse;

    @Option(
            names = "--threads",
            description =
                    "threads quantizing a safetensors checkpoint (rtn, nf4, fp4), an ONNX model (every method), GGUF"
                            + " output or a whole decoder (default: every core); the output does not depend on it")
    Integer threads;

    @Option(
            names = "--max-shard-size",
            description = "a safetensors checkpoint (rtn, nf4, fp4) written as a folder of shards of at most SIZE"
                    + " bytes of tensors each, as transformers' save_pretrained(max_shard_size=...) writes them:"
                    + " model-00001-of-0000N.safetensors and model.safetensors.index.json; SIZE as transformers"
                    + " reads it: 5GB, 500MB, 100KB (powers of 10), 2GiB, 512MiB (powers of 2), or bytes. With"
                    + " --format gguf (any input): --out NAME.gguf split as llama.cpp's gguf-split --split-max-size splits a model,"
                    + " into NAME-00001-of-0000N.gguf ... (SIZE also as gguf-split reads it: 4G, 500M)")
    String maxShardSize;

    @Override
    public Integer call() throws Exception {
        String lower = method.toLowerCase(Locale.ROOT);
        boolean ggufSplit = format.equalsIgnoreCase("gguf");
        if (maxShardSize != null
                && !ggufSplit
                && (!format.equalsIgnoreCase("safetensors")
                        || !CheckpointOutput.accepts(in)
                        || DecoderOutput.handles(in, method, calib)
                        || !(lower.equals("rtn") || lower.equals("nf4") || lower.equals("fp4")))) {
            throw new IllegalArgumentException("--max-shard-size applies to a safetensors checkpoint (--in a"
                    + " .safetensors file, a folder or its index) written as safetensors (--format safetensors) with"
                    + " rtn, nf4 or fp4, and to --format gguf (split as llama.cpp's gguf-split splits a model); "
                    + (!format.equalsIgnoreCase("safetensors")
                            ? "--format " + format.toLowerCase(Locale.ROOT) + " writes its own layout"
                            : "not --method " + lower + " --in " + in));
        }
        if (format.equalsIgnoreCase("gguf") && DecoderGgufOutput.handles(in)) {
            return new DecoderGgufOutput(this, ggufOptions).run();
        }
        if (DecoderOutput.handles(in, method, calib)) {
            return new DecoderOutput(this, decoderOptions).run();
        }
        decoderOptions.requireUnset();
        if (format.equalsIgnoreCase("gguf")) {
            return new GgufOutput(this, ggufOptions).run();
        }
        ggufOptions.requireUnset(format);
        String m = method.toLowerCase(Locale.ROOT);
        boolean codebook;
        boolean gptq = m.equals("gptq");
        boolean awq = m.equals("awq");
        switch (m) {
            case "rtn", "gptq", "awq" -> codebook = false;
            case "nf4", "fp4" -> codebook = true;
            case "awq-block" ->
                throw new IllegalArgumentException("--method awq-block quantizes a whole decoder's blocks (--model"
                        + " model.bin, or a Hugging Face folder without --calib); one matrix takes --method awq");
            default ->
                throw new IllegalArgumentException(
                        "unknown method '" + method + "' (expected rtn, nf4, fp4, gptq or awq)");
        }
        if (!gptq && !awq) {
            rejectIfSet(calib != null, "--calib", "gptq and awq", m);
        }
        if (!gptq) {
            rejectIfSet(actOrder, "--act-order", "gptq", m);
            rejectIfSet(damp != null, "--damp", "gptq", m);
            rejectIfSet(staticGroups, "--static-groups", "gptq", m);
            rejectIfSet(mse, "--mse", "gptq", m);
        }
        CodebookScheme codebookScheme = null;
        LinearScheme linearScheme = null;
        if (codebook) {
            rejectIfSet(matched("--group-size"), "--group-size", "rtn, gptq and awq", m);
            rejectIfSet(symmetry != null, "--asym/--sym/--signed", "rtn, gptq and awq", m);
            if (bits != 4) {
                throw new IllegalArgumentException("--bits " + bits + ": " + m + " codes are 4 bits");
            }
            codebookScheme = new CodebookScheme(
                    m.equals("nf4") ? Codebook.NF4 : Codebook.FP4,
                    blockSize == null ? CodebookScheme.DEFAULT_BLOCK_SIZE : blockSize,
                    doubleQuant);
        } else {
            rejectIfSet(blockSize != null, "--block-size", "nf4 and fp4", m);
            rejectIfSet(doubleQuant, "--double-quant", "nf4 and fp4", m);
            linearScheme = new LinearScheme(bits, symmetry(), groupSize);
        }
        boolean onnxOut = switch (format.toLowerCase(Locale.ROOT)) {
            case "safetensors" -> false;
            case "onnx" -> true;
            case "gptq" -> false;
            default ->
                throw new IllegalArgumentException(
                        "unknown --format '" + format + "' (expected safetensors, onnx, gguf or gptq)");
        };
        if (!onnxOut && accuracyLevel != null) {
            throw new IllegalArgumentException("--accuracy-level applies to --format onnx only (MatMulNBits)");
        }
        if (onnxOut) {
            if (!WeightFiles.extension(in).equals("onnx")) {
                throw new IllegalArgumentException("--format onnx rewrites an ONNX model: --in " + in
                        + " must be an .onnx file (its MatMul weights are quantized, the rest kept)");
            }
            if (accuracyLevel != null && (codebook || (accuracyLevel != 0 && accuracyLevel != 4))) {
                throw new IllegalArgumentException("--accuracy-level " + accuracyLevel
                        + (codebook ? ": MatMulBnb4 (nf4, fp4) has no accuracy level" : ": 0 or 4"));
            }
            String reason = codebook ? null : OnnxExport.unsupported(linearScheme, Integer.MAX_VALUE);
            if (reason != null) {
                throw new IllegalArgumentException("--format onnx: " + reason + "; MatMulNBits holds --bits 4 or 8"
                        + " with --group-size a multiple of 16 (for example 32, 64 or 128) or -1 (per channel)");
            }
        }
        AwqConfig awqConfig = null;
        if (awq) {
            if (calib == null) {
                throw new IllegalArgumentException("awq needs --calib X.npy, the calibration activations [n, in]");
            }
            if (groupSize == LinearScheme.PER_TENSOR) {
                throw new IllegalArgumentException("awq: --group-size 0 (per tensor) is not an AWQ option; use -1 "
                        + "(per channel) or a positive group size");
            }
            rejectIfSet(symmetry != null, "--asym/--sym/--signed", "rtn and gptq (awq uses llm-awq's min/max form)", m);
            awqConfig = AwqConfig.defaults(bits).withGroupSize(groupSize);
            linearScheme = awqConfig.scheme();
        }
        GptqConfig gptqConfig = null;
        if (gptq) {
            if (calib == null) {
                throw new IllegalArgumentException("gptq needs --calib X.npy, the calibration activations [n, in]");
            }
            if (groupSize == LinearScheme.PER_TENSOR) {
                throw new IllegalArgumentException("gptq: --group-size 0 (per tensor) is not a GPTQ option; use -1 "
                        + "(per channel) or a positive group size");
            }
            if (linearScheme.symmetry() == Symmetry.SIGNED) {
                throw new IllegalArgumentException("gptq: --signed is not a GPTQ form; use --asym or --sym");
            }
            if (damp != null && !(damp > 0 && Double.isFinite(damp))) {
                throw new IllegalArgumentException("--damp " + damp + " must be a positive fraction of the mean "
                        + "Hessian diagonal (for example 0.01)");
            }
            if (staticGroups && groupSize == LinearScheme.PER_CHANNEL) {
                throw new IllegalArgumentException("gptq: --static-groups needs a positive --group-size");
            }
            gptqConfig = GptqConfig.defaults(bits)
                    .withGroupSize(groupSize)
                    .withSym(linearScheme.symmetry() == Symmetry.SYM)
                    .withActOrder(actOrder)
                    .withStaticGroups(staticGroups)
                    .withMse(mse)
                    .withPercdamp(damp == null ? 0.01 : damp);
        }
        if (format.equalsIgnoreCase("gptq")) {
            return GptqOutput.run(
                    new GptqOutput.Request(m, in, out, linearScheme, gptqConfig, calib, include, strict, overwrite),
                    spec.commandLine().getOut(),
                    spec.commandLine().getErr());
        }
        if (threads != null && threads < 1) {
            throw new IllegalArgumentException("--threads " + threads + " must be at least 1");
        }
        Pattern pattern = null;
        if (include != null) {
            try {
                pattern = Pattern.compile(include);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException(
                        "--include '" + include + "' is not a valid regular expression: " + e.getDescription());
            }
        }
        // quantized as written, a few weights on the heap at a time
        if (onnxOut) {
            return OnnxOutput.run(
                    new OnnxOutput.Request(
                            m,
                            in,
                            out,
                            linearScheme,
                            codebookScheme,
                            gptq ? new OnnxOutput.Gptq(gptqConfig, calib, gptqLabel(linearScheme)) : null,
                            awq ? new OnnxOutput.Awq(awqConfig, calib) : null,
                            pattern,
                            strict,
                            overwrite,
                            threads == null ? Runtime.getRuntime().availableProcessors() : threads,
                            accuracyLevel == null ? 0 : accuracyLevel),
                    spec.commandLine().getOut(),
                    spec.commandLine().getErr());
        }
        if (!gptq && !awq && CheckpointOutput.accepts(in)) {
            return CheckpointOutput.run(
                    new CheckpointOutput.Request(
                            m,
                            in,
                            out,
                            linearScheme,
                            codebookScheme,
                            pattern,
                            strict,
                            overwrite,
                            threads == null ? Runtime.getRuntime().availableProcessors() : threads,
                            maxShardSize == null ? 0 : ShardSize.parse(maxShardSize)),
                    spec.commandLine().getOut(),
                    spec.commandLine().getErr());
        }
        WeightFiles.requireWritable(out, "safetensors");
        WeightFiles.requireNotAnInput(out, overwrite, "--in", in);
        WeightFiles.requireNotAnInput(out, overwrite, "--calib", calib);
        WeightFiles.Loaded loaded = WeightFiles.load(in, pattern, groupFit(linearScheme, strict));
        PrintWriter pw = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        HessianAccumulator hessian = null;
        AwqStatistics awqStats = null;
        if (gptq || awq) {
            FloatMatrix x = Npy.readMatrix(calib).named(calib.getFileName().toString());
            for (FloatMatrix w : loaded.tensors()) {
                requireCalibWidth(calib, x.cols(), w.name(), w.rows(), w.cols());
            }
            if (gptq) {
                hessian = hessian(in, x);
            } else {
                awqStats = awqStatistics(calib, in, x);
            }
        }
        List<QuantizedWeight> quantized = new ArrayList<>();
        int layersWithDeadFeatures = 0;
        for (FloatMatrix w : loaded.tensors()) {
            FloatMatrix back;
            double bpw;
            String scheme;
            String extra = "";
            if (codebook) {
                CodebookTensor q = new BlockwiseQuantizer(codebookScheme).quantize(w);
                quantized.add(q);
                back = q.dequantize();
                bpw = q.bitsPerWeight();
                scheme = codebookScheme.toString();
            } else if (awq) {
                AwqResult result = new Awq(awqConfig).quantize(w, awqStats);
                QuantizedTensor q = result.tensor();
                quantized.add(q);
                back = q.dequantize();
                bpw = q.bitsPerWeight();
                scheme = "awq " + linearScheme;
                pw.println(awqLine(w, result, awqStats, linearScheme));
            } else if (gptq) {
                GptqResult result = new Gptq(gptqConfig).quantize(w, hessian);
                QuantizedTensor q = result.tensor();
                quantized.add(q);
                back = q.dequantize();
                bpw = q.bitsPerWeight();
                scheme = gptqLabel(linearScheme);
                int dead = result.diagnostics().deadColumns();
                if (dead > 0) {
                    layersWithDeadFeatures++;
                    extra = deadFeatures(dead, w.cols());
                }
                pw.println(gptqLine(w, back, result, hessian, linearScheme));
            } else {
                QuantizedTensor q = new RtnQuantizer(linearScheme).quantize(w);
                quantized.add(q);
                back = q.dequantize();
                bpw = q.bitsPerWeight();
                scheme = linearScheme.toString();
            }
            ErrorMetrics e = ErrorMetrics.compare(w, back);
            pw.printf(
                    Locale.ROOT,
                    "%s [%d x %d] %s: %.3f bits/weight, MSE %.4g, SQNR %.2f dB%s%n",
                    w.name(),
                    w.rows(),
                    w.cols(),
                    scheme,
                    bpw,
                    e.mse(),
                    e.sqnrDb(),
                    extra);
        }
        for (WeightFiles.Kept k : loaded.kept()) {
            err.println("quant: kept '" + k.name() + "' unquantized: " + k.reason());
        }
        QuantizedSafeTensors.write(out, quantized, m, loaded.other(), loaded.transposed());
        StringBuilder summary = new StringBuilder();
        summary.append(String.format(
                Locale.ROOT,
                "wrote %s (%d quantized, %d unchanged",
                out,
                loaded.tensors().size(),
                loaded.other().size()));
        if (!loaded.kept().isEmpty()) {
            summary.append(", of which ")
                    .append(loaded.kept().size())
                    .append(" kept unquantized: ")
                    .append(String.join(
                            ", ",
                            loaded.kept().stream().map(WeightFiles.Kept::name).toList()));
        }
        if (layersWithDeadFeatures > 0) {
            summary.append(", ")
                    .append(layersWithDeadFeatures)
                    .append(layersWithDeadFeatures == 1 ? " layer" : " layers")
                    .append(" with input features the calibration data never activates (their weights set to 0)");
        }
        pw.println(summary.append(')'));
        return Quant.OK;
    }

    /**
     * For {@link WeightFiles#load}: why {@code scheme} (null: a codebook, which takes any width) cannot quantize a
     * tensor of that shape, or null; with {@code strict}, that reason as an error naming the tensor instead.
     */
    static java.util.function.BiFunction<String, int[], String> groupFit(LinearScheme scheme, boolean strict) {
        return (name, shape) -> {
            String reason = scheme == null ? null : unsupported(scheme, shape[1]);
            if (reason != null && strict) {
                throw new IllegalArgumentException(
                        "tensor '" + name + "' [" + shape[0] + ", " + shape[1] + "]: " + reason + " (--strict)");
            }
            return reason;
        };
    }

    /** Why {@code scheme} cannot quantize a tensor with {@code cols} input features, or null. */
    private static String unsupported(LinearScheme scheme, int cols) {
        if (scheme.groupSize() > 0 && cols % scheme.groupSize() != 0) {
            return "group size " + scheme.groupSize() + " does not divide its " + cols + " input features";
        }
        return null;
    }

    /** The scheme GPTQ quantizes with as the weight lines name it: {@code gptq int4 g128 asym act-order static mse}. */
    String gptqLabel(LinearScheme scheme) {
        return "gptq " + scheme + (actOrder ? " act-order" : "") + (staticGroups ? " static" : "")
                + (mse ? " mse" : "");
    }

    /**
     * Refuses calibration activations {@code calib}, {@code columns} wide, for tensor {@code name} {@code [rows,
     * cols]} when its input features ({@code cols}) are another number.
     */
    static void requireCalibWidth(Path calib, int columns, String name, long rows, long cols) {
        if (cols != columns) {
            throw new IllegalArgumentException("--calib " + calib + " has " + columns + " columns, tensor '" + name
                    + "' [" + rows + ", " + cols + "] has " + cols + " input features");
        }
    }

    /** What a weight line adds for a GPTQ layer with {@code dead} input features the calibration never activates. */
    static String deadFeatures(int dead, int cols) {
        return String.format(Locale.ROOT, ", %d of %d input features never activated", dead, cols);
    }

    /** GPTQ's Hessian of the calibration activations {@code x} for the model {@code in}. */
    static HessianAccumulator hessian(Path in, FloatMatrix x) {
        HessianAccumulator h = new HessianAccumulator(in.getFileName().toString(), x.cols());
        h.add(x);
        return h;
    }

    /**
     * AWQ's statistics of the calibration activations {@code x} (from {@code calib}) for the model {@code in}.
     *
     * @throws IllegalArgumentException when every activation is zero (nothing to weigh the channels by)
     */
    static AwqStatistics awqStatistics(Path calib, Path in, FloatMatrix x) {
        AwqStatistics stats = new AwqStatistics(in.getFileName().toString(), x.cols(), x.rows());
        stats.add(x);
        boolean any = false;
        for (float v : stats.meanAbs()) {
            any |= v != 0f;
        }
        if (!any) {
            throw new IllegalArgumentException("--calib " + calib + ": the calibration data is empty (every"
                    + " activation is zero), so AWQ has nothing to weigh the channels by");
        }
        return stats;
    }

    /** AWQ's line for weight {@code w}: its alpha and output error beside round-to-nearest's and alpha 0's. */
    static String awqLine(FloatMatrix w, AwqResult result, AwqStatistics stats, LinearScheme scheme) {
        QuantizedTensor rtn = new RtnQuantizer(scheme).quantize(w);
        return String.format(
                Locale.ROOT,
                "%s: AWQ alpha %.2f, mean squared output error %.4g (RTN %.4g, alpha 0 %.4g)",
                w.name(),
                result.alpha(),
                result.loss(),
                stats.meanSquaredOutputError(w, rtn.dequantize()),
                result.lossCurve()[0]);
    }

    /**
     * The line printed for a GPTQ layer before its weight line: {@code ||(W - Q) X^T|| / ||W X^T||} over the
     * calibration tokens of {@code h}, beside round-to-nearest's with {@code scheme} on the same layer, and the damping
     * GPTQ used. {@code back}: the GPTQ weight dequantized.
     */
    static String gptqLine(
            FloatMatrix w, FloatMatrix back, GptqResult result, HessianAccumulator h, LinearScheme scheme) {
        FloatMatrix rtn = new RtnQuantizer(scheme).quantize(w).dequantize();
        FloatMatrix zero = FloatMatrix.zeros(w.name(), w.rows(), w.cols());
        double signal = h.outputError(w, zero);
        return String.format(
                Locale.ROOT,
                "%s: GPTQ relative output error ||(W - Q) X|| / ||W X|| %s (RTN %s), damping %s",
                w.name(),
                relative(h.outputError(w, back), signal),
                relative(h.outputError(w, rtn), signal),
                result.diagnostics().damping());
    }

    /**
     * {@code sqrt(error / signal)}: the output error relative to the output, both squared norms over the calibration
     * tokens; "n/a" when the calibration activations give no output at all.
     */
    private static String relative(double error, double signal) {
        return signal > 0 ? String.format(Locale.ROOT, "%.4g", Math.sqrt(error / signal)) : "n/a";
    }

    private boolean matched(String option) {
        return spec.commandLine().getParseResult().hasMatchedOption(option);
    }

    private Symmetry symmetry() {
        if (symmetry == null || symmetry.asym) {
            return Symmetry.ASYM;
        }
        return symmetry.sym ? Symmetry.SYM : Symmetry.SIGNED;
    }

    private static void rejectIfSet(boolean set, String option, String methods, String method) {
        if (set) {
            throw new IllegalArgumentException(option + " applies to " + methods + " only, not to " + method);
        }
    }
}
