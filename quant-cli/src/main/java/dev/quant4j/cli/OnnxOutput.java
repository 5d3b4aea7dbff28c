package dev.quant4j.cli;

import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqResult;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.GptqResult;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.Npy;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.io.OnnxQuantizer;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.Quantizer;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.QuantScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ForkJoinPool;
import java.util.regex.Pattern;

/**
 * {@code quant quantize --in model.onnx --format onnx --method rtn|nf4|fp4|gptq|awq}: the model's weights quantized
 * while the quantized model is written ({@link OnnxQuantizer}), on {@code --threads} threads, with progress on stderr;
 * the lines on stdout are those of the safetensors output (one per weight, for GPTQ after its output-error line and for
 * AWQ after its alpha line, then the summary). GPTQ quantizes every weight with the Hessian of the one {@code --calib}
 * matrix, AWQ with its statistics; act-order's permutation and AWQ's input scales are declared to the writer before any
 * weight is quantized ({@link OnnxQuantizer.Layout}).
 */
final class OnnxOutput {

    private static final ForkJoinPool ONE_THREAD = new ForkJoinPool(1);

    /** GPTQ's setting, its calibration activations {@code [n, in]}, and its weight lines' label. */
    record Gptq(GptqConfig config, Path calib, String label) {}

    /** AWQ's setting and its calibration activations {@code [n, in]}. */
    record Awq(AwqConfig config, Path calib) {}

    /** What to write: the method's name for messages, either scheme, and for GPTQ or AWQ (else null) its setting. */
    record Request(
            String method,
            Path in,
            Path out,
            LinearScheme linear,
            CodebookScheme codebook,
            Gptq gptq,
            Awq awq,
            Pattern include,
            boolean strict,
            boolean overwrite,
            int threads,
            int accuracyLevel) {}

    private OnnxOutput() {}

    /**
     * The tables of {@code model}'s Gather nodes, after checking that each of {@code selected} is a MatMul weight
     * (stored transposed, in {@code transposed}) or, for a linear scheme, a Gather table: the initializers ONNX output
     * can replace.
     */
    static Set<String> requireOnnxTargets(
            OnnxModel model, Iterable<String> selected, Set<String> transposed, boolean codebook) {
        Set<String> gatherTables = new HashSet<>();
        for (OnnxModel.Node n : model.nodes()) {
            if (n.opType().equals("Gather") && !n.inputs().isEmpty()) {
                gatherTables.add(n.inputs().get(0));
            }
        }
        for (String w : selected) {
            if (!transposed.contains(w) && !(gatherTables.contains(w) && !codebook)) {
                throw new IllegalArgumentException("--format onnx: initializer '" + w + "' matched by"
                        + " --include is not the weight of a MatMul node"
                        + (codebook ? "" : " or the table of a" + " Gather") + "; only those become MatMulNBits"
                        + (codebook ? "/MatMulBnb4" : " or GatherBlockQuantized"));
            }
        }
        return gatherTables;
    }

    static int run(Request r, PrintWriter out, PrintWriter err) throws Exception {
        long start = System.nanoTime();
        WeightFiles.requireWritable(r.out(), "onnx");
        WeightFiles.requireNotAnInput(r.out(), r.overwrite(), "--in", r.in());
        Path calib =
                r.gptq() != null ? r.gptq().calib() : r.awq() != null ? r.awq().calib() : null;
        if (calib != null) {
            WeightFiles.requireNotAnInput(r.out(), r.overwrite(), "--calib", calib);
        }
        QuantScheme scheme = r.linear() != null ? r.linear() : r.codebook();
        boolean codebook = r.codebook() != null;
        WeightFiles.OnnxSelection s =
                WeightFiles.selectOnnx(r.in(), r.include(), QuantizeCommand.groupFit(r.linear(), r.strict()));
        OnnxModel model = s.onnx().model();
        Set<String> gatherTables = requireOnnxTargets(model, s.selected(), s.transposed(), codebook);
        long total = 0;
        for (String w : s.selected()) {
            total += 4 * model.initializer(w).elements();
        }
        FloatMatrix x = calib == null ? null : calibration(calib, model, s);
        HessianAccumulator h = r.gptq() == null ? null : QuantizeCommand.hessian(r.in(), x);
        AwqStatistics stats = r.awq() == null ? null : QuantizeCommand.awqStatistics(calib, r.in(), x);
        Map<String, GptqResult> gptq = new ConcurrentHashMap<>();
        Map<String, AwqResult> awq = new ConcurrentHashMap<>();
        Quantizer<?> quantizer;
        if (codebook) {
            quantizer = new BlockwiseQuantizer(r.codebook());
        } else if (h != null) {
            quantizer = w -> {
                GptqResult result = new dev.quant4j.gptq.Gptq(r.gptq().config(), ONE_THREAD).quantize(w, h);
                gptq.put(w.name(), result);
                return result.tensor();
            };
        } else if (stats != null) {
            quantizer = w -> {
                AwqResult result = new dev.quant4j.awq.Awq(r.awq().config(), ONE_THREAD).quantize(w, stats);
                awq.put(w.name(), result);
                return result.tensor();
            };
        } else {
            // one thread a weight: the writer quantizes a weight per thread of its pool
            quantizer = new RtnQuantizer(r.linear(), ONE_THREAD);
        }
        // act-order's g_idx (without static groups) and AWQ's input scales shape the graph: declared before any weight
        OnnxQuantizer.Layout layout = new OnnxQuantizer.Layout(
                r.gptq() != null
                        && r.gptq().config().actOrder()
                        && !r.gptq().config().staticGroups(),
                r.awq() != null);
        Map<String, String> lines = new ConcurrentHashMap<>();
        ProgressLine progress = new ProgressLine(err, total, System.console() != null);
        ForkJoinPool pool = new ForkJoinPool(r.threads());
        try {
            // model-q.onnx alone, or with model-q.onnx.data when the input has external data or the single file
            // would pass protobuf's 2 GB
            OnnxQuantizer.write(
                    r.out(),
                    model,
                    s.onnx().bytes(),
                    s.selected(),
                    scheme,
                    quantizer,
                    layout,
                    r.accuracyLevel(),
                    pool,
                    (q, e, w) -> {
                        GptqResult g = gptq.get(q.name());
                        AwqResult a = awq.get(q.name());
                        String before = "";
                        String extra = "";
                        if (g != null) { // GPTQ and AWQ read each weight whole
                            before = QuantizeCommand.gptqLine(w, q.dequantize(), g, h, r.linear())
                                    + System.lineSeparator();
                            int dead = g.diagnostics().deadColumns();
                            extra = dead > 0 ? QuantizeCommand.deadFeatures(dead, w.cols()) : "";
                        } else if (a != null) {
                            before = QuantizeCommand.awqLine(w, a, stats, r.linear()) + System.lineSeparator();
                        }
                        lines.put(
                                q.name(),
                                before
                                        + String.format(
                                                Locale.ROOT,
                                                "%s [%d x %d] %s: %.3f bits/weight, MSE %.4g, SQNR %.2f dB%s",
                                                q.name(),
                                                q.rows(),
                                                q.cols(),
                                                r.gptq() != null
                                                        ? r.gptq().label()
                                                        : r.awq() != null ? "awq " + r.linear() : scheme,
                                                q.bitsPerWeight(),
                                                e.mse(),
                                                e.sqnrDb(),
                                                extra));
                        progress.done(q.name(), 4L * q.rows() * q.cols());
                    });
        } finally {
            pool.shutdown();
            progress.finish();
        }
        for (String w : s.selected()) {
            out.println(lines.get(w));
        }
        List<WeightFiles.Kept> kept = s.kept();
        for (WeightFiles.Kept k : kept) {
            err.println("quant: kept '" + k.name() + "' unquantized: " + k.reason());
        }
        StringBuilder summary = new StringBuilder(String.format(
                Locale.ROOT,
                "wrote %s (%d quantized%s%s, %d unchanged",
                r.out(),
                s.selected().size(),
                codebook ? " as com.microsoft.MatMulBnb4" : " as com.microsoft.MatMulNBits",
                s.selected().stream().anyMatch(gatherTables::contains) ? " and GatherBlockQuantized" : "",
                s.other().size()));
        if (!kept.isEmpty()) {
            summary.append(", of which ")
                    .append(kept.size())
                    .append(" kept unquantized: ")
                    .append(String.join(
                            ", ", kept.stream().map(WeightFiles.Kept::name).toList()));
        }
        long dead = gptq.values().stream()
                .filter(g -> g.diagnostics().deadColumns() > 0)
                .count();
        if (dead > 0) {
            summary.append(", ")
                    .append(dead)
                    .append(dead == 1 ? " layer" : " layers")
                    .append(" with input features the calibration data never activates (their weights set to 0)");
        }
        out.println(summary.append(')'));
        err.printf(
                Locale.ROOT,
                "quant: %s of float32 weights quantized and written in %.1f s on %d thread%s%n",
                ProgressLine.bytes(total),
                (System.nanoTime() - start) * 1e-9,
                r.threads(),
                r.threads() == 1 ? "" : "s");
        return Quant.OK;
    }
    /**
     * The calibration activations {@code calib} ({@code [n, in]}), after checking that every weight selected has {@code
     * in} input features (a MatMul weight {@code [in, out]} as stored, a Gather table {@code [rows, in]}), as the
     * in-memory path checks them.
     */
    private static FloatMatrix calibration(Path calib, OnnxModel model, WeightFiles.OnnxSelection s)
            throws java.io.IOException {
        FloatMatrix x = Npy.readMatrix(calib).named(calib.getFileName().toString());
        for (String w : s.selected()) {
            long[] d = model.initializer(w).dims();
            boolean transposed = s.transposed().contains(w);
            QuantizeCommand.requireCalibWidth(calib, x.cols(), w, transposed ? d[1] : d[0], transposed ? d[0] : d[1]);
        }
        return x;
    }
}
