package dev.quant4j.cli;

import dev.quant4j.ggml.GgmlGptq;
import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.DType;
import dev.quant4j.io.Gguf;
import dev.quant4j.io.GgufSplits;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.Npy;
import dev.quant4j.pipeline.GgufDecoderFile;
import dev.quant4j.pipeline.GgufQuantizer;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import java.util.stream.Collectors;
import picocli.CommandLine.Option;

/**
 * {@code quant quantize --format gguf}: writes a GGUF file whose selected weights are in one of ggml's block types,
 * quantized byte for byte as ggml's reference quantizers do ({@link GgmlQuants}), or with GPTQ into q4_0, q4_1 or q8_0
 * ({@link GgmlGptq}: {@code --method gptq --group-size 32}, {@code --bits 4 --sym}, {@code --bits 4 --asym}, {@code
 * --bits 8 --sym}; {@code --act-order} with static groups, or {@code --static-groups} alone).
 *
 * <p>Inputs: a {@code .npy} matrix {@code [out, in]}, the 2-D weights of a {@code .safetensors} file or of an ONNX
 * model's MatMul nodes (as {@code quant quantize} picks them for the other formats), or a GGUF file. A weight {@code
 * [out, in]} becomes a GGUF tensor with {@code ne = [in, out]}: each output row is a row of ggml blocks along the input
 * features. From a GGUF input, every F32, F16 or BF16 tensor of two or more dimensions whose name ends in {@code weight}
 * is quantized (as {@code llama-quantize --pure} does with one type); 1-D tensors (norms, biases) and every other tensor
 * are kept with their type and bytes, and every metadata key is kept, {@code general.quantization_version} and {@code
 * general.file_type} set as llama-quantize sets them.
 */
final class GgufOutput {

    /** The options only {@code --format gguf} reads. */
    static final class Options {
        @Option(
                names = "--gguf-type",
                description = "--format gguf: the ggml type of the quantized weights: q4_0, q4_1, q5_0, q5_1, q8_0"
                        + " (blocks of 32), q4_k, q5_k, q6_k (blocks of 256), f16, bf16 or f32 (rtn); with gptq"
                        + " --group-size 32: --bits 4 --sym gives q4_0, --bits 4 --asym q4_1, --bits 8 --sym q8_0")
        String ggufType;

        @Option(
                names = "--split-max-tensors",
                description = "--format gguf: --out NAME.gguf split into NAME-00001-of-0000N.gguf ... of at most N"
                        + " tensors each, as llama.cpp's gguf-split --split-max-tensors splits a model (with"
                        + " --max-shard-size, both limits apply)")
        Integer splitMaxTensors;

        /** Refuses {@code --gguf-type} and {@code --split-max-tensors} with another format. */
        void requireUnset(String format) {
            if (ggufType != null) {
                throw new IllegalArgumentException(
                        "--gguf-type applies to --format gguf only, not to --format " + format);
            }
            if (splitMaxTensors != null) {
                throw new IllegalArgumentException(
                        "--split-max-tensors applies to --format gguf only, not to --format " + format);
            }
        }

        /** The split {@code --max-shard-size} and {@code --split-max-tensors} ask for, or null for one file. */
        GgufQuantizer.Split split(String maxShardSize) {
            if (maxShardSize == null && splitMaxTensors == null) {
                return null;
            }
            if (splitMaxTensors != null && splitMaxTensors < 1) {
                throw new IllegalArgumentException("--split-max-tensors " + splitMaxTensors + " must be at least 1");
            }
            return new GgufQuantizer.Split(
                    maxShardSize == null ? 0 : ShardSize.parseGguf(maxShardSize),
                    splitMaxTensors == null ? 0 : splitMaxTensors);
        }
    }

    /** ggml's {@code GGML_QNT_VERSION}, which llama-quantize stores as {@code general.quantization_version}. */
    static final int QUANTIZATION_VERSION = GgufDecoderFile.QUANTIZATION_VERSION;

    private final QuantizeCommand cmd;
    private final Options options;

    GgufOutput(QuantizeCommand cmd, Options options) {
        this.cmd = cmd;
        this.options = options;
    }

    Integer run() throws IOException {
        long start = System.nanoTime();
        String m = cmd.method.toLowerCase(Locale.ROOT);
        boolean gptq = m.equals("gptq");
        if (m.startsWith("awq")) {
            throw new IllegalArgumentException("--format gguf: --method " + cmd.method + " needs a whole decoder"
                    + " (--model M --method awq-block --gguf-type q4_0|q4_1|q5_0|q5_1|q8_0): AWQ's per-input-channel"
                    + " scales are folded into the norm before each matrix, and GGUF has no place for them on a"
                    + " matrix alone");
        }
        if (!m.equals("rtn") && !gptq) {
            throw new IllegalArgumentException("--format gguf: --method " + cmd.method
                    + " is not available; GGUF output uses ggml's reference quantizers (--method rtn) or GPTQ into"
                    + " q4_0, q4_1, q8_0 (--method gptq)");
        }
        List<String> notForThisMethod = gptq
                ? List.of("--signed", "--block-size", "--double-quant", "--mse")
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
                        "--mse");
        for (String option : notForThisMethod) {
            if (cmd.spec.commandLine().getParseResult().hasMatchedOption(option)) {
                throw new IllegalArgumentException(option + " does not apply to --format gguf --method " + m
                        + (gptq
                                ? ": ggml's blocks are 32 columns with FP16 scales"
                                : ": the --gguf-type fixes the bits and the blocks"));
            }
        }
        GgmlType type;
        if (gptq) {
            type = gptqType();
            if (options.ggufType != null && GgmlType.byName(options.ggufType) != type) {
                throw new IllegalArgumentException("--gguf-type " + options.ggufType + " does not match GPTQ's --bits "
                        + cmd.bits + " --group-size " + cmd.groupSize + (isSym() ? " --sym" : " --asym") + ", which"
                        + " write " + type);
            }
            if (cmd.calib == null) {
                throw new IllegalArgumentException("gptq needs --calib X.npy, the calibration activations [n, in]");
            }
            if (cmd.damp != null && !(cmd.damp > 0 && Double.isFinite(cmd.damp))) {
                throw new IllegalArgumentException("--damp " + cmd.damp + " must be a positive fraction of the mean "
                        + "Hessian diagonal (for example 0.01)");
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
        if (cmd.threads != null && cmd.threads < 1) {
            throw new IllegalArgumentException("--threads " + cmd.threads + " must be at least 1");
        }
        WeightFiles.requireWritable(cmd.out, "gguf");
        this.split = options.split(cmd.maxShardSize);
        WeightFiles.requireNotAnInput(cmd.out, cmd.overwrite, "--calib", cmd.calib);
        Pattern include = null;
        if (cmd.include != null) {
            try {
                include = Pattern.compile(cmd.include);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException(
                        "--include '" + cmd.include + "' is not a valid regular expression: " + e.getDescription());
            }
        }
        this.type = type;
        this.gptq = gptq;
        GgufInputs inputs = new GgufInputs(type, include);
        try (inputs) {
            String ext = WeightFiles.extension(cmd.in);
            if (ext.equals("gguf")) {
                WeightFiles.requireReadable(cmd.in);
                inputs.gguf(cmd.in);
            } else if (CheckpointOutput.accepts(cmd.in)) {
                inputs.safetensors(cmd.in);
            } else {
                inputs.loaded(cmd.in);
            }
            for (Path in : inputs.files.isEmpty() ? List.of(cmd.in) : inputs.files) {
                requireNotOverwritten(in);
            }
            return emit(inputs, start);
        }
    }

    private GgmlType type;
    private boolean gptq;
    private GgufQuantizer.Split split;

    /**
     * Refuses, unless {@code --overwrite}, an output that would replace the input file {@code in}: {@code --out}
     * itself, or with a split, any {@code NAME-NNNNN-of-NNNNN.gguf} beside it.
     */
    private void requireNotOverwritten(Path in) throws IOException {
        WeightFiles.requireNotAnInput(cmd.out, cmd.overwrite, "--in", in);
        if (split == null || cmd.overwrite || !Files.exists(in)) {
            return;
        }
        Path prefix = GgufSplits.prefix(cmd.out).toAbsolutePath().normalize();
        Path file = in.toRealPath();
        Path dir = prefix.getParent();
        if (dir != null
                && Files.isDirectory(dir)
                && Files.isSameFile(dir, file.getParent())
                && file.getFileName()
                        .toString()
                        .matches(Pattern.quote(prefix.getFileName().toString()) + "-\\d{5}-of-\\d{5}\\.gguf")) {
            throw new IllegalArgumentException("--out " + cmd.out + " would be split into files named as the input "
                    + in + "; write to another name (or pass --overwrite to replace the input)");
        }
    }

    /** Writes the output: metadata, then each tensor, the selected ones quantized as they are written. */
    private Integer emit(GgufInputs inputs, long start) throws IOException {
        PrintWriter pw = cmd.spec.commandLine().getOut();
        PrintWriter err = cmd.spec.commandLine().getErr();
        GgufQuantizer.Method method = GgufQuantizer.Method.rtn(type);
        if (gptq) {
            FloatMatrix x =
                    Npy.readMatrix(cmd.calib).named(cmd.calib.getFileName().toString());
            for (GgufQuantizer.Item it : inputs.items) {
                if (it.reader() != null) {
                    QuantizeCommand.requireCalibWidth(cmd.calib, x.cols(), it.name(), it.rows(), it.cols());
                }
            }
            HessianAccumulator hessian = QuantizeCommand.hessian(cmd.in, x);
            method = GgufQuantizer.Method.whole(type, "gptq", w -> gptq(w, hessian));
        }
        Map<String, GgufValue> metadata = inputs.metadata;
        metadata.put("general.quantization_version", GgufValue.uint32(QUANTIZATION_VERSION));
        metadata.put("general.file_type", GgufValue.uint32(fileType(type)));
        int threads = cmd.threads == null ? Runtime.getRuntime().availableProcessors() : cmd.threads;
        ProgressLine progress = new ProgressLine(err, inputs.bytesIn(), System.console() != null);
        // GPTQ runs its own parallel loops: one weight at a time
        ForkJoinPool pool = new ForkJoinPool(gptq ? 1 : threads);
        GgufQuantizer.Summary s;
        try {
            s = new GgufQuantizer(method, pool).write(metadata, inputs.items, cmd.out, split, progress);
        } finally {
            pool.shutdown();
            progress.finish();
        }
        for (GgufQuantizer.WeightReport w : s.weights()) {
            pw.printf(
                    Locale.ROOT,
                    "%s [%d x %d] %s%s: %.3f bits/weight, MSE %.4g, SQNR %.2f dB%s%n",
                    w.name(),
                    w.rows(),
                    w.cols(),
                    type,
                    gptq ? " gptq" : "",
                    w.bitsPerWeight(),
                    w.error().mse(),
                    w.error().sqnrDb(),
                    w.note());
        }
        for (String n : inputs.notices) {
            err.println("quant: " + n);
        }
        pw.printf(
                Locale.ROOT,
                "wrote %s (%d quantized as %s, %d unchanged, %d metadata keys)%n",
                s.files().size() == 1
                        ? cmd.out
                        : s.files().size() + " splits " + s.files().get(0).getFileName() + " ... "
                                + s.files().get(s.files().size() - 1).getFileName(),
                s.weights().size(),
                type,
                s.kept(),
                metadata.size());
        pw.printf(
                Locale.ROOT,
                "%s: %s of tensors in, %s out, %.1f s on %d thread%s%n",
                cmd.out,
                ProgressLine.bytes(s.bytesIn()),
                ProgressLine.bytes(s.bytesOut()),
                (System.nanoTime() - start) * 1e-9,
                gptq ? 1 : threads,
                !gptq && threads > 1 ? "s" : "");
        return Quant.OK;
    }

    /** One weight quantized by GPTQ into the type, with its output error against RTN's as the report's note. */
    private GgufQuantizer.Whole gptq(FloatMatrix w, HessianAccumulator hessian) {
        GgmlGptq.Order order = gptqOrder(cmd);
        GgmlGptq.Result g = GgmlGptq.quantize(
                type, w, hessian, cmd.damp == null ? 0.01 : cmd.damp, order, ForkJoinPool.commonPool());
        FloatMatrix rtn = FloatMatrix.of(
                w.name(),
                w.rows(),
                w.cols(),
                GgmlQuants.dequantize(
                        type, GgmlQuants.quantize(type, w.toArray(), w.rows(), w.cols()), w.rows(), w.cols()),
                0);
        double signal = hessian.outputError(w, FloatMatrix.zeros(w.name(), w.rows(), w.cols()));
        String note = String.format(
                Locale.ROOT,
                ", GPTQ%s relative output error %s (RTN %s)%s",
                describe(order),
                relative(
                        hessian.outputError(w, FloatMatrix.of(w.name(), w.rows(), w.cols(), g.dequantized(), 0)),
                        signal),
                relative(hessian.outputError(w, rtn), signal),
                g.deadColumns() > 0
                        ? ", " + g.deadColumns() + " of " + w.cols() + " input features never activated"
                        : "");
        return new GgufQuantizer.Whole(g.data(), note);
    }

    /**
     * The column order of {@code --act-order} and {@code --static-groups} in ggml's blocks: act-order is always with
     * static groups, since a block is 32 consecutive original columns with one scale.
     */
    static GgmlGptq.Order gptqOrder(QuantizeCommand cmd) {
        return cmd.actOrder
                ? GgmlGptq.Order.ACT_ORDER
                : cmd.staticGroups ? GgmlGptq.Order.STATIC_GROUPS : GgmlGptq.Order.COLUMNS;
    }

    /** " act-order (static groups)", " static groups" or nothing, for the messages. */
    static String describe(GgmlGptq.Order order) {
        return switch (order) {
            case ACT_ORDER -> " act-order (static groups)";
            case STATIC_GROUPS -> " static groups";
            case COLUMNS -> "";
        };
    }

    private boolean isSym() {
        return cmd.symmetry != null && cmd.symmetry.sym;
    }

    /** The ggml type GPTQ's {@code --bits}, {@code --group-size} and {@code --sym}/{@code --asym} write. */
    private GgmlType gptqType() {
        boolean sym = isSym();
        if (cmd.groupSize == 32 && cmd.bits == 4) {
            return sym ? GgmlType.Q4_0 : GgmlType.Q4_1;
        }
        if (cmd.groupSize == 32 && cmd.bits == 8 && sym) {
            return GgmlType.Q8_0;
        }
        throw new IllegalArgumentException("--format gguf --method gptq: --bits " + cmd.bits + " --group-size "
                + cmd.groupSize + (sym ? " --sym" : " --asym") + " has no ggml type; GPTQ writes q4_0 (--bits 4"
                + " --group-size 32 --sym), q4_1 (--bits 4 --group-size 32 --asym) or q8_0 (--bits 8 --group-size 32"
                + " --sym)");
    }

    private static String relative(double error, double signal) {
        return signal > 0 ? String.format(Locale.ROOT, "%.4g", Math.sqrt(error / signal)) : "n/a";
    }

    /** A row of {@code cols} values must be whole blocks of {@code type}; the error names the types that fit. */
    static void checkRow(String name, long rows, int cols, GgmlType type) {
        if (cols % type.blockSize() != 0) {
            String fit = GgmlType.quantizableTypes().stream()
                    .filter(t -> cols % t.blockSize() == 0)
                    .map(t -> t.ggmlName().toLowerCase(Locale.ROOT))
                    .collect(Collectors.joining(", "));
            throw new IllegalArgumentException("tensor '" + name + "' [" + rows + ", " + cols + "]: its rows of "
                    + cols + " input features are not a multiple of the " + type + " block size " + type.blockSize()
                    + "; --gguf-type that fit: " + fit);
        }
    }

    /** A row-major shape as GGUF extents, fastest first. */
    static long[] ne(String name, long[] shape) {
        if (shape.length > Gguf.MAX_DIMS) {
            throw new IllegalArgumentException("tensor '" + name + "' has " + shape.length + " dimensions "
                    + Arrays.toString(shape) + "; GGUF holds at most " + Gguf.MAX_DIMS);
        }
        if (shape.length == 0) {
            return new long[] {1};
        }
        long[] ne = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            ne[i] = shape[shape.length - 1 - i];
        }
        return ne;
    }

    /** The GGUF type of a tensor kept as it is. */
    static GgmlType ggmlType(String name, DType dtype) {
        return switch (dtype) {
            case F32 -> GgmlType.F32;
            case F16 -> GgmlType.F16;
            case BF16 -> GgmlType.BF16;
            case F64 -> GgmlType.F64;
            case I64 -> GgmlType.I64;
            case I32 -> GgmlType.I32;
            case I16 -> GgmlType.I16;
            case I8 -> GgmlType.I8;
            default ->
                throw new IllegalArgumentException("tensor '" + name + "' is " + dtype
                        + ", which GGUF has no type for (it holds F64, F32, F16, BF16, I64, I32, I16 and I8)");
        };
    }

    /** llama.cpp's {@code general.file_type} ({@code enum llama_ftype}) for a file whose weights are all {@code t}. */
    static int fileType(GgmlType t) {
        return GgufDecoderFile.fileType(t);
    }
}
