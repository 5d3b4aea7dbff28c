package dev.quant4j.cli;

import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.pipeline.CheckpointQuantizer;
import dev.quant4j.pipeline.CheckpointQuantizer.Choice;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.ForkJoinPool;
import java.util.regex.Pattern;

/**
 * {@code quant quantize} of a safetensors checkpoint with a calibration-free method (rtn, nf4, fp4): a {@code
 * .safetensors} file of any size, a Hugging Face folder or its {@code model.safetensors.index.json}, streamed through
 * {@link CheckpointQuantizer} on {@code --threads} threads with progress on stderr. A folder becomes a folder with the
 * same shard names, a new index and the other files copied.
 */
final class CheckpointOutput {

    /** What the quantize command parsed, for this output. */
    record Request(
            String method,
            Path in,
            Path out,
            LinearScheme linear,
            CodebookScheme codebook,
            Pattern include,
            boolean strict,
            boolean overwrite,
            int threads,
            long maxShardSize) {}

    private CheckpointOutput() {}

    /** Whether {@code in} is a checkpoint this output streams: a folder, an index, or a {@code .safetensors} file. */
    static boolean accepts(Path in) {
        String ext = WeightFiles.extension(in);
        return Files.isDirectory(in) || ext.equals("safetensors") || (ext.equals("json") && Files.isRegularFile(in));
    }

    static int run(Request r, PrintWriter out, PrintWriter err) throws IOException {
        long start = System.nanoTime();
        try (SafeTensorsCheckpoint in = SafeTensorsCheckpoint.open(r.in())) {
            boolean folder = in.folder() != null || r.maxShardSize() > 0;
            if (folder) {
                if (WeightFiles.extension(r.out()).equals("safetensors")) {
                    throw new IllegalArgumentException(
                            r.maxShardSize() > 0
                                    ? "--max-shard-size writes a folder of shards and its index: --out is a folder, not "
                                            + r.out()
                                    : "--in " + r.in()
                                            + " is a folder of shards, so --out is a folder too (the same shard"
                                            + " names and a new index), not " + r.out());
                }
                Path abs = r.out().toAbsolutePath();
                if (in.folder() != null && abs.startsWith(in.folder().toAbsolutePath())) {
                    throw new IllegalArgumentException(
                            "--out " + r.out() + " is inside the input folder " + in.folder());
                }
                if (Files.exists(abs) && !r.overwrite()) {
                    throw new IllegalArgumentException("--out " + r.out() + " exists; choose a new folder (or pass"
                            + " --overwrite to replace it)");
                }
                if (abs.getParent() == null || !Files.isDirectory(abs.getParent())) {
                    throw new IllegalArgumentException("output folder " + abs.getParent() + " does not exist");
                }
            } else {
                WeightFiles.requireWritable(r.out(), "safetensors");
                WeightFiles.requireNotAnInput(r.out(), r.overwrite(), "--in", r.in());
            }
            CheckpointQuantizer.Method method = r.codebook() != null
                    ? CheckpointQuantizer.Method.codebook(r.codebook())
                    : CheckpointQuantizer.Method.rtn(r.linear());
            CheckpointQuantizer.Selector selector = e -> {
                boolean matrix = e.shape().length == 2 && e.dtype().isFloat();
                if (r.include() != null) {
                    boolean pick = r.include().matcher(e.name()).find();
                    if (pick && !matrix) {
                        throw new IllegalArgumentException("tensor '" + e.name() + "' matched by --include is not a"
                                + " 2-D float tensor (" + e.dtype() + " " + Arrays.toString(e.shape()) + ")");
                    }
                    return pick ? unsupported(r, e.name(), e.shape()) : Choice.COPY;
                }
                if (!matrix) {
                    return Choice.COPY;
                }
                if (WeightFiles.NOT_LINEAR.matcher(e.name()).find()) {
                    return Choice.kept("an embedding or output head (select it with --include)");
                }
                return unsupported(r, e.name(), e.shape());
            };
            ProgressLine progress = new ProgressLine(err, in.dataBytes(), System.console() != null);
            ForkJoinPool pool = new ForkJoinPool(r.threads());
            CheckpointQuantizer.Summary s;
            try {
                s = new CheckpointQuantizer(method, selector, pool)
                        .quantize(in, r.out(), r.overwrite(), r.maxShardSize(), progress);
            } finally {
                pool.shutdown();
                progress.finish();
            }
            String scheme =
                    r.codebook() != null ? r.codebook().toString() : r.linear().toString();
            long weightBits = 0;
            long elements = 0;
            for (CheckpointQuantizer.WeightReport w : s.weights()) {
                out.printf(
                        Locale.ROOT,
                        "%s [%d x %d] %s: %.3f bits/weight, MSE %.4g, SQNR %.2f dB%n",
                        w.name(),
                        w.rows(),
                        w.cols(),
                        scheme,
                        w.bitsPerWeight(),
                        w.error().mse(),
                        w.error().sqnrDb());
                weightBits += Math.round(w.bitsPerWeight() * w.rows() * (long) w.cols());
                elements += (long) w.rows() * w.cols();
            }
            for (CheckpointQuantizer.Kept k : s.kept()) {
                err.println("quant: kept '" + k.name() + "' unquantized: " + k.reason());
            }
            double seconds = (System.nanoTime() - start) * 1e-9;
            StringBuilder line = new StringBuilder(String.format(
                    Locale.ROOT,
                    "wrote %s (%d quantized, %d unchanged",
                    r.out(),
                    s.weights().size(),
                    s.copied()));
            if (!s.kept().isEmpty()) {
                line.append(", of which ")
                        .append(s.kept().size())
                        .append(" kept unquantized: ")
                        .append(String.join(
                                ", ",
                                s.kept().stream()
                                        .map(CheckpointQuantizer.Kept::name)
                                        .toList()));
            }
            line.append(')');
            out.println(line);
            out.printf(
                    Locale.ROOT,
                    "%s: %.3f bits per quantized weight, %s of tensors in, %s out, %.1f s on %d thread%s%n",
                    folder
                            ? s.files().size() + " files (" + String.join(", ", s.files()) + ")"
                            : r.out().toString(),
                    (double) weightBits / elements,
                    ProgressLine.bytes(s.bytesIn()),
                    ProgressLine.bytes(s.bytesOut()),
                    seconds,
                    r.threads(),
                    r.threads() == 1 ? "" : "s");
        }
        return Quant.OK;
    }

    private static Choice unsupported(Request r, String name, long[] shape) {
        if (r.linear() != null
                && r.linear().groupSize() > 0
                && shape.length == 2
                && shape[1] % r.linear().groupSize() != 0) {
            String reason =
                    "group size " + r.linear().groupSize() + " does not divide its " + shape[1] + " input features";
            if (r.strict()) {
                throw new IllegalArgumentException(
                        "tensor '" + name + "' [" + shape[0] + ", " + shape[1] + "]: " + reason + " (--strict)");
            }
            return Choice.kept(reason);
        }
        return Choice.QUANTIZE;
    }
}
