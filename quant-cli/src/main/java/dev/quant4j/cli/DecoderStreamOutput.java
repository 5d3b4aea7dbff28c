package dev.quant4j.cli;

import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import dev.quant4j.pipeline.ResumeFolder;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.LinearScheme;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;

/**
 * {@code quant quantize --model DIR} for a Hugging Face folder too large to hold in float32, calibrated on the user's
 * sequences ({@code --calib-text} or {@code --calib-tokens}): the folder is read one block at a time ({@link
 * HuggingFaceLlama#open}) and written as it goes ({@link QuantizedDecoderFile#writeStreamed}), the file the in-memory
 * path writes. Chosen when the folder's weights in float32 would take more than half the heap; the property {@code
 * -Dquant4j.decoder.stream=always|never} overrides the choice.
 */
final class DecoderStreamOutput {

    static final String PROPERTY = "quant4j.decoder.stream";

    private DecoderStreamOutput() {}

    /** Whether the folder {@code dir} is quantized block by block: its float32 weights would fill half the heap. */
    static boolean chosen(Path dir) throws IOException {
        String forced = System.getProperty(PROPERTY, "auto");
        return switch (forced) {
            case "always" -> true;
            case "never" -> false;
            case "auto" -> fp32Bytes(dir) > Runtime.getRuntime().maxMemory() / 2;
            default ->
                throw new IllegalArgumentException(
                        "-D" + PROPERTY + "=" + forced + ": always, never or auto (the default)");
        };
    }

    private static long fp32Bytes(Path dir) throws IOException {
        try (HuggingFaceLlama.Checkpoint files = HuggingFaceLlama.open(dir, ForkJoinPool.commonPool())) {
            return fp32Bytes(files);
        }
    }

    private static long fp32Bytes(HuggingFaceLlama.Checkpoint files) {
        long n = 0;
        for (String name : files.tensorNames()) {
            long e = 4;
            for (long d : files.shape(name)) {
                e *= d;
            }
            n += e;
        }
        return n;
    }

    /** Called after each block quantized and saved; tests stop a run here as a killed process would stop. */
    static IntConsumer afterBlock = b -> {};

    /**
     * Refuses to start over when {@code out} has the saved state of an interrupted run beside it and the command does
     * not ask to {@code resume} it: hours of work are never overwritten silently.
     */
    static void requireNoStateUnlessResumed(Path out, boolean resume) {
        if (!resume && ResumeFolder.hasState(out)) {
            throw new IllegalArgumentException(ResumeFolder.folderOf(out) + " holds the state of an interrupted run:"
                    + " add --resume to continue it, or delete the folder to start over");
        }
    }

    /**
     * Checks the saved state in {@code resume} and says on {@code err} where the run starts; returns the blocks done.
     * A state of another run is refused naming what differs; with no state, {@code --resume} starts from block 0.
     */
    private static int resumePoint(ResumeFolder resume, int layers, boolean asked, PrintWriter err) throws IOException {
        Optional<ResumeFolder.State> saved = resume.read();
        if (saved.isEmpty()) {
            if (asked) {
                err.println("quant: --resume: no saved state in " + resume.dir() + "; starting from block 0");
            }
            return 0;
        }
        String why = resume.mismatch(saved.get(), layers);
        if (why != null) {
            throw new IllegalArgumentException("--resume: " + resume.dir() + " holds the state of a run on " + why
                    + "; run the command that made it, or delete the folder to start over");
        }
        err.printf(
                Locale.ROOT,
                "quant: resuming after block %d/%d from %s%n",
                saved.get().done(),
                layers,
                resume.dir());
        err.flush();
        return saved.get().done();
    }

    /** What the failure line adds when blocks are saved: how to continue; null when nothing is saved. */
    private static String continueNote(ResumeFolder resume, int layers) {
        try {
            Optional<ResumeFolder.State> saved = resume.read();
            if (saved.isEmpty()) {
                return null;
            }
            int done = saved.get().done();
            return String.format(
                    Locale.ROOT,
                    "%d of %d blocks are saved in %s: the same command with --resume continues %s",
                    done,
                    layers,
                    resume.dir(),
                    done < layers ? "from block " + (done + 1) : "with the file's other tensors");
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /**
     * Quantizes and writes; {@code lines} are the user's calibration ids, {@code tokenizer} the one that made them (or
     * null for ids), cut into windows as {@code --seq-len} and {@code --calib-sample} say.
     */
    static int run(
            QuantizeCommand cmd,
            Setting setting,
            String method,
            TextSequences.Lines lines,
            TextTokenizer tokenizer,
            ForkJoinPool pool)
            throws IOException {
        PrintWriter out = cmd.spec.commandLine().getOut();
        PrintWriter err = cmd.spec.commandLine().getErr();
        long start = System.nanoTime();
        try (HuggingFaceLlama.Checkpoint files = HuggingFaceLlama.open(cmd.in, pool)) {
            LlamaConfig c = files.config();
            DecoderOutput.requireSchemeFits(cmd, c, setting);
            DecoderCalibration calibration =
                    DecoderCalibration.ofLines(cmd.decoderOptions, lines, tokenizer, c, files.source(), err);
            err.printf(
                    Locale.ROOT,
                    "quant: %s, %d layers, dim %d, %.2f GB as float32, read block by block: %s; %s%n",
                    files.source(),
                    c.layers(),
                    c.dim(),
                    fp32Bytes(files) / 1e9,
                    setting.label(),
                    calibration.description());
            err.flush();
            ResumeFolder resume = null;
            int restored = 0;
            if (setting.method() == Method.GPTQ) {
                resume = ResumeFolder.of(
                        cmd.out, ResumeFolder.Identity.of(cmd.in, setting, method, calibration.sequences()));
                restored = resumePoint(resume, c.layers(), cmd.decoderOptions.resume, err);
            }
            int done = restored;
            int[] keptRtn = {0};
            int[] perChannel = {0};
            long[] stored = {0, 0};
            DecoderQuantizer.BlockSink observer = (b, weights, layers) -> {
                for (LayerReport r : layers) {
                    QuantizedWeight q = weights.get(r.name() + ".weight");
                    // the FP32 weight read again: the quantizer let it go with the block
                    ErrorMetrics e = ErrorMetrics.compare(files.read(q.name()), q.dequantize());
                    out.println(DecoderOutput.reportLine(setting, r, q, e));
                    keptRtn[0] += r.keptRtn() ? 1 : 0;
                    if (q instanceof QuantizedTensor t
                            && t.scheme().groupSize() == LinearScheme.PER_CHANNEL
                            && setting.groupSize() != LinearScheme.PER_CHANNEL) {
                        perChannel[0]++;
                    }
                    stored[0] += q.storageBytes();
                    stored[1] += (long) q.rows() * q.cols();
                }
                out.flush();
                if (b < done) {
                    return; // restored: its lines again, no time
                }
                double elapsed = (System.nanoTime() - start) / 1e9;
                err.printf(
                        Locale.ROOT,
                        "quant: block %d/%d done (%.1f s, about %.0f s left)%n",
                        b + 1,
                        c.layers(),
                        elapsed,
                        elapsed / (b + 1 - done) * (c.layers() - b - 1));
                err.flush();
                afterBlock.accept(b);
            };
            List<LayerReport> reports;
            if (resume == null) {
                reports = QuantizedDecoderFile.writeStreamed(
                        cmd.out, files, new DecoderQuantizer(setting, pool), calibration.sequences(), method, observer);
            } else {
                try {
                    reports = QuantizedDecoderFile.writeStreamed(
                            cmd.out,
                            files,
                            new DecoderQuantizer(setting, pool),
                            calibration.sequences(),
                            method,
                            observer,
                            resume);
                } catch (Exception | OutOfMemoryError e) {
                    String note = continueNote(resume, c.layers());
                    if (note == null) {
                        throw e;
                    }
                    throw new Quant.Continuable(e, note);
                }
            }
            out.printf(
                    Locale.ROOT,
                    "wrote %s (%d linear layers quantized%s%s, %.3f bits/weight; %d tensors F32; %d bytes, FP32 %d"
                            + " bytes; %.1f s)%n",
                    cmd.out,
                    reports.size(),
                    keptRtn[0] > 0 ? ", " + keptRtn[0] + " of them kept RTN" : "",
                    perChannel[0] > 0
                            ? ", " + perChannel[0] + " per channel (the group size does not divide their input)"
                            : "",
                    8.0 * stored[0] / stored[1],
                    files.tensorNames().size() - reports.size(),
                    Files.size(cmd.out),
                    fp32Bytes(files),
                    (System.nanoTime() - start) / 1e9);
            return Quant.OK;
        }
    }
}
