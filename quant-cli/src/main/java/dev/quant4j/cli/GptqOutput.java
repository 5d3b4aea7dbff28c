package dev.quant4j.cli;

import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.GptqCheckpoint;
import dev.quant4j.io.Npy;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * {@code quant quantize --format gptq}: quantizes a {@code .safetensors} file or a Hugging Face folder with RTN or GPTQ
 * and writes a GPTQ checkpoint folder ({@link GptqCheckpoint}) that transformers, vLLM and TGI load.
 */
final class GptqOutput {

    /** What the quantize command parsed, for this output. */
    record Request(
            String method,
            Path in,
            Path out,
            LinearScheme scheme,
            GptqConfig gptq,
            Path calib,
            String include,
            boolean strict,
            boolean overwrite) {}

    private GptqOutput() {}

    /** Why {@code --format gptq} cannot take the method and scheme, or null. */
    static String unsupportedChoice(String method, LinearScheme scheme) {
        String fits = "a GPTQ checkpoint holds --method rtn or gptq at --bits 2, 3, 4 or 8 with --group-size -1 or"
                + " a positive group size";
        if (method.equals("awq-block")) {
            return "--method awq-block folds its scales into the RMSNorm weights, and a GPTQ checkpoint would carry"
                    + " the input's; " + fits;
        }
        if (!method.equals("rtn") && !method.equals("gptq")) {
            return "--method " + method
                    + (method.equals("awq")
                            ? " needs its input scales folded into the previous"
                                    + " operation, which the layout has no place for"
                            : " codes are not linear")
                    + "; " + fits;
        }
        if (!GptqCheckpoint.supportedBits(scheme.bits())) {
            return "--bits " + scheme.bits() + "; " + fits;
        }
        if (scheme.groupSize() == LinearScheme.PER_TENSOR) {
            return "--group-size 0 (per tensor); " + fits;
        }
        return null;
    }

    static int run(Request r, PrintWriter pw, PrintWriter err) throws IOException {
        String reason = unsupportedChoice(r.method(), r.scheme());
        if (reason != null) {
            throw new IllegalArgumentException("--format gptq: " + reason);
        }
        Path model;
        Path hfFolder = null;
        if (Files.isDirectory(r.in())) {
            hfFolder = r.in();
            model = r.in().resolve(GptqCheckpoint.MODEL_FILE);
            if (!Files.isRegularFile(model)) {
                if (Files.exists(r.in().resolve(GptqCheckpoint.MODEL_FILE + ".index.json"))) {
                    throw new IllegalArgumentException("--in " + r.in() + " is a sharded checkpoint ("
                            + GptqCheckpoint.MODEL_FILE + ".index.json); --format gptq reads a folder with one "
                            + GptqCheckpoint.MODEL_FILE);
                }
                throw new IllegalArgumentException(
                        "--in " + r.in() + ": a Hugging Face folder must hold " + GptqCheckpoint.MODEL_FILE);
            }
        } else if (WeightFiles.extension(r.in()).equals("safetensors")) {
            model = r.in();
        } else if (!Files.exists(r.in())) {
            throw new NoSuchFileException(r.in().toString());
        } else {
            throw new IllegalArgumentException("--format gptq writes a Hugging Face checkpoint: --in " + r.in()
                    + " must be a .safetensors file or a Hugging Face folder with " + GptqCheckpoint.MODEL_FILE);
        }
        requireOutputFolder(r);

        Pattern include = null;
        if (r.include() != null) {
            try {
                include = Pattern.compile(r.include());
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException(
                        "--include '" + r.include() + "' is not a valid regular expression: " + e.getDescription());
            }
        }
        LinearScheme scheme = r.scheme();
        WeightFiles.Loaded loaded = WeightFiles.load(model, include, (name, shape) -> {
            String why = unsupportedShape(name, shape, scheme);
            if (why != null && r.strict()) {
                throw new IllegalArgumentException(
                        "tensor '" + name + "' [" + shape[0] + ", " + shape[1] + "]: " + why + " (--strict)");
            }
            return why;
        });
        HessianAccumulator hessian = null;
        if (r.gptq() != null) {
            FloatMatrix x =
                    Npy.readMatrix(r.calib()).named(r.calib().getFileName().toString());
            for (FloatMatrix w : loaded.tensors()) {
                QuantizeCommand.requireCalibWidth(r.calib(), x.cols(), w.name(), w.rows(), w.cols());
            }
            hessian = QuantizeCommand.hessian(model, x);
        }
        List<QuantizedTensor> quantized = new ArrayList<>();
        List<PassThrough> other = new ArrayList<>(loaded.other());
        List<WeightFiles.Kept> kept = new ArrayList<>(loaded.kept());
        try (SafeTensors source = SafeTensors.open(model)) {
            for (FloatMatrix w : loaded.tensors()) {
                QuantizedTensor q = r.gptq() != null
                        ? new Gptq(r.gptq()).quantize(w, hessian).tensor()
                        : new RtnQuantizer(scheme).quantize(w);
                String why = GptqCheckpoint.unsupported(q);
                if (why != null) {
                    if (r.strict()) {
                        throw new IllegalArgumentException("tensor '" + w.name() + "': " + why + " (--strict)");
                    }
                    kept.add(new WeightFiles.Kept(w.name(), why));
                    SafeTensors.Entry e = source.entry(w.name());
                    other.add(new PassThrough(e.name(), e.dtype(), e.shape(), source.readBytes(e.name())));
                    continue;
                }
                quantized.add(q);
                ErrorMetrics e = ErrorMetrics.compare(w, q);
                pw.printf(
                        Locale.ROOT,
                        "%s [%d x %d] %s%s: SQNR %.2f dB%n",
                        w.name(),
                        w.rows(),
                        w.cols(),
                        r.method(),
                        " " + scheme + (q.hasGIdx() ? " act-order" : ""),
                        e.sqnrDb());
            }
        }
        for (WeightFiles.Kept k : kept) {
            err.println("quant: kept '" + k.name() + "' unquantized: " + k.reason());
        }
        if (quantized.isEmpty()) {
            throw new IllegalArgumentException("--format gptq: no tensor could be quantized"
                    + (kept.isEmpty() ? "" : "; " + kept.get(0).reason()));
        }
        GptqCheckpoint.Options options = r.gptq() != null
                ? new GptqCheckpoint.Options(r.gptq().percdamp(), r.gptq().staticGroups(), false)
                : new GptqCheckpoint.Options(0.01, false, false);
        GptqCheckpoint.write(r.out(), quantized, other, options, hfFolder, r.overwrite());
        StringBuilder summary = new StringBuilder(String.format(
                Locale.ROOT,
                "wrote %s (GPTQ checkpoint: %d quantized as qweight/qzeros/scales/g_idx, %d unchanged",
                r.out(),
                quantized.size(),
                other.size()));
        if (!kept.isEmpty()) {
            summary.append(", of which ")
                    .append(kept.size())
                    .append(" kept unquantized: ")
                    .append(String.join(
                            ", ", kept.stream().map(WeightFiles.Kept::name).toList()));
        }
        pw.println(summary.append(')'));
        return Quant.OK;
    }

    /** Why a tensor of shape {@code [out, in]} cannot be a GPTQ layer under {@code scheme}, or null. */
    private static String unsupportedShape(String name, int[] shape, LinearScheme scheme) {
        int bits = scheme.bits();
        int multiple = bits == 3 ? 32 : 32 / bits;
        if (!name.endsWith(".weight")) {
            return "a GPTQ checkpoint stores P.qweight for a weight named P.weight";
        }
        if (scheme.groupSize() > 0 && shape[1] % scheme.groupSize() != 0) {
            return "group size " + scheme.groupSize() + " does not divide its " + shape[1] + " input features";
        }
        if (shape[1] % multiple != 0) {
            return "its " + shape[1] + " input features at " + bits + " bits do not fill whole int32 words of"
                    + " qweight (needs a multiple of " + multiple + ")";
        }
        if (shape[0] % multiple != 0) {
            return "its " + shape[0] + " output channels at " + bits + " bits do not fill whole int32 words of"
                    + " qzeros (needs a multiple of " + multiple + ")";
        }
        return null;
    }

    /**
     * The output is a folder: refused when it is the input folder or holds the input file (replacing it would delete
     * the input), and when it exists without {@code --overwrite}.
     */
    private static void requireOutputFolder(Request r) throws IOException {
        Path out = r.out().toAbsolutePath().normalize();
        Path in = r.in().toAbsolutePath().normalize();
        Path inReal = Files.exists(in) ? in.toRealPath() : in;
        if (Files.exists(out)) {
            Path outReal = out.toRealPath();
            if (inReal.startsWith(outReal)) {
                throw new IllegalArgumentException("--out " + r.out() + " is or holds the --in " + r.in()
                        + "; write the checkpoint to another folder");
            }
            if (r.calib() != null
                    && Files.exists(r.calib())
                    && r.calib().toRealPath().startsWith(outReal)) {
                throw new IllegalArgumentException("--out " + r.out() + " holds the --calib file " + r.calib()
                        + "; write the checkpoint to another folder");
            }
            if (!r.overwrite()) {
                throw new IllegalArgumentException("--out " + r.out() + " exists; --format gptq writes a new folder"
                        + " (pass --overwrite to replace it)");
            }
            if (!Files.isDirectory(out)) {
                throw new IllegalArgumentException("--out " + r.out() + " exists and is not a folder");
            }
        }
        Path parent = out.getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new IllegalArgumentException("output folder " + parent + " does not exist");
        }
    }
}
