package dev.quant4j.cli;

import dev.quant4j.cli.eval.DecoderEval;
import dev.quant4j.io.AtomicFiles;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;
import java.util.regex.Pattern;
import picocli.CommandLine.Option;

/**
 * {@code quant eval --model}: a decoder language model (a llama2.c checkpoint, a Hugging Face Llama, Mistral or Qwen2
 * folder, or a GGUF {@code llama} file) quantized with each setting, and each {@code --quantized} file, compared with
 * the model on sequences it sampled (calibration seed 1, evaluation seed 2, temperature 1, each starting with token 1,
 * BOS in Llama's vocabularies) or the user's. With {@code --quantized}, the settings run only when {@code --settings}
 * is given. Writes {@code eval.md}, {@code eval.json} and {@code eval.png} into {@code --out}.
 */
final class DecoderEvalRun {

    static final long EVALUATION_SEED = 2;

    /** The user's calibration and held-out sequences, each set from its own file (or sampled when not given). */
    static final class TextOptions {
        @Option(
                names = "--calib-text",
                description = "with --model: calibration text, one text a line (UTF-8), tokenized with --tokenizer,"
                        + " concatenated and cut into --seq-len windows (all of them, or the first --calib-sample N)")
        Path calibText;

        @Option(
                names = "--calib-tokens",
                description = "with --model: calibration token ids, one sequence a line; cut as --calib-text")
        Path calibTokens;

        @Option(
                names = "--eval-text",
                description = "with --model: held-out text the models are compared on, cut as --calib-text (all"
                        + " windows, or the first --eval-sample N); another file than the calibration text")
        Path evalText;

        @Option(
                names = "--eval-tokens",
                description = "with --model: held-out token ids, one sequence a line; cut as --calib-text")
        Path evalTokens;

        @Option(
                names = "--tokenizer",
                description = "with --calib-text or --eval-text: the model's tokenizer.json (default: tokenizer.json in"
                        + " the --model folder)")
        Path tokenizer;

        boolean anySet() {
            return calibText != null
                    || calibTokens != null
                    || evalText != null
                    || evalTokens != null
                    || tokenizer != null;
        }
    }

    private DecoderEvalRun() {}

    /**
     * The tokenizer the text options need, or null; the user's sequences of one set (null: sampled). The same file
     * for calibration and evaluation is refused: the evaluation sequences must be held out.
     */
    private static Read readSequences(EvalCommand c) throws IOException {
        TextOptions t = c.text;
        same(t.calibText, t.evalText, "--calib-text", "--eval-text");
        same(t.calibTokens, t.evalTokens, "--calib-tokens", "--eval-tokens");
        if (t.calibText == null && t.evalText == null) {
            if (t.tokenizer != null) {
                throw new IllegalArgumentException("--tokenizer " + t.tokenizer + " applies with --calib-text or"
                        + " --eval-text only (token ids need no tokenizer)");
            }
            return new Read(
                    TextSequences.read("calib", null, t.calibTokens, null),
                    TextSequences.read("eval", null, t.evalTokens, null),
                    null);
        }
        Path file = TextTokenizer.locate(t.tokenizer, c.model);
        if (file == null) {
            throw DecoderOutput.noTokenizer(
                    t.calibText != null ? "--calib-text" : "--eval-text",
                    c.model,
                    t.calibText != null ? "--calib-tokens FILE" : "--eval-tokens FILE",
                    t.calibText != null ? "--calib-sample N" : "--eval-sample N");
        }
        try (TextTokenizer tokenizer = TextTokenizer.open(file)) {
            return new Read(
                    TextSequences.read("calib", t.calibText, t.calibTokens, tokenizer),
                    TextSequences.read("eval", t.evalText, t.evalTokens, tokenizer),
                    tokenizer);
        }
    }

    /** The user's sequences of each set (null: sampled) and the tokenizer of the text (closed; null without text). */
    private record Read(TextSequences.Lines calib, TextSequences.Lines eval, TextTokenizer tokenizer) {}

    private static void same(Path a, Path b, String optionA, String optionB) throws IOException {
        if (a != null && b != null && Files.exists(a) && Files.exists(b) && Files.isSameFile(a, b)) {
            throw new IllegalArgumentException(optionA + " and " + optionB + " are the same file (" + a + "): the"
                    + " evaluation sequences must be held out; split the text into two files");
        }
    }

    /** The sequences of one set: cut from the user's file, or sampled from the FP32 model with {@code seed}. */
    private static TextSequences.Windows sequences(
            EvalCommand c,
            TextSequences.Lines lines,
            LlamaDecoder fp32,
            String file,
            String countOption,
            int count,
            long seed) {
        if (lines == null) {
            return new TextSequences.Windows(
                    SampledSequences.sample(fp32, file, count, c.seqLen, seed),
                    String.format(
                            Locale.ROOT, "%d sequences of %d tokens sampled with seed %d", count, c.seqLen, seed));
        }
        Integer n = c.spec.commandLine().getParseResult().hasMatchedOption(countOption) ? count : null;
        return TextSequences.windows(lines, fp32.config().vocabSize(), file, c.seqLen, n, countOption);
    }

    static int run(EvalCommand c, Pattern select, int threads) throws Exception {
        String file = c.model.getFileName().toString();
        if (c.calibSample < 1 || c.evalSample < 1 || c.seqLen < 2) {
            throw new IllegalArgumentException("--calib-sample and --eval-sample must be at least 1 and --seq-len at"
                    + " least 2, got " + c.calibSample + ", " + c.evalSample + ", " + c.seqLen);
        }
        PrintWriter out = c.spec.commandLine().getOut();
        PrintWriter err = c.spec.commandLine().getErr();
        ForkJoinPool pool = new ForkJoinPool(threads);
        try {
            boolean settingsGiven = c.spec.commandLine().getParseResult().hasMatchedOption("--settings");
            List<Setting> chosen = DecoderEval.defaultSettings(c.groupSize).stream()
                    .filter(s -> select.matcher(s.label()).find())
                    .filter(s -> c.quantized.isEmpty() || settingsGiven)
                    .toList();
            if (chosen.isEmpty() && c.quantized.isEmpty()) {
                throw new IllegalArgumentException("--settings '" + select + "' matches no setting");
            }
            if (chosen.isEmpty()) {
                requireNoCalibration(c, settingsGiven);
            }
            // the user's sequences are read (and the text tokenized) before the model
            Read lines = readSequences(c);
            LlamaDecoder fp32 = DecoderFiles.readModel(c.model, pool, err, "quant eval");
            SampledSequences.requireLength(fp32, file, c.seqLen);
            List<DecoderEval.Candidate> files = new java.util.ArrayList<>();
            for (Path q : c.quantized) {
                DecoderEval.Candidate candidate = DecoderFiles.readQuantized(q, fp32, file, pool);
                SampledSequences.requireLength(
                        candidate.model(), candidate.row().label(), c.seqLen);
                files.add(candidate);
            }
            if (lines.tokenizer() != null) {
                String note = lines.tokenizer().requireFits(fp32.config().vocabSize(), file);
                if (note != null) {
                    err.println("quant eval: " + note);
                }
            }
            long start = System.nanoTime();
            List<int[]> calibration;
            List<int[]> evaluation;
            if (lines.calib() == null && lines.eval() == null) {
                err.printf(
                        Locale.ROOT,
                        "quant eval: %s, %d layers, dim %d; sampling %s%d evaluation sequences of %d tokens%n",
                        file,
                        fp32.config().layers(),
                        fp32.config().dim(),
                        chosen.isEmpty() ? "" : c.calibSample + " calibration and ",
                        c.evalSample,
                        c.seqLen);
                err.flush();
                calibration = chosen.isEmpty()
                        ? List.of()
                        : SampledSequences.sample(
                                fp32, file, c.calibSample, c.seqLen, SampledSequences.CALIBRATION_SEED);
                evaluation = SampledSequences.sample(fp32, file, c.evalSample, c.seqLen, EVALUATION_SEED);
            } else {
                TextSequences.Windows cal = chosen.isEmpty()
                        ? new TextSequences.Windows(List.of(), "none (no setting runs)")
                        : sequences(
                                c,
                                lines.calib(),
                                fp32,
                                file,
                                "--calib-sample",
                                c.calibSample,
                                SampledSequences.CALIBRATION_SEED);
                TextSequences.Windows ev =
                        sequences(c, lines.eval(), fp32, file, "--eval-sample", c.evalSample, EVALUATION_SEED);
                err.printf(
                        Locale.ROOT,
                        "quant eval: %s, %d layers, dim %d; calibration: %s; evaluation: %s%n",
                        file,
                        fp32.config().layers(),
                        fp32.config().dim(),
                        cal.description(),
                        ev.description());
                calibration = cal.sequences();
                evaluation = ev.sequences();
                long shared = sharedSequences(calibration, evaluation);
                if (shared > 0) {
                    err.printf(
                            Locale.ROOT,
                            "quant eval: warning: %d of the %d evaluation sequences are also calibration sequences:"
                                    + " not held out%n",
                            shared,
                            evaluation.size());
                }
                err.flush();
            }
            List<DecoderEval.Row> rows = DecoderEval.run(fp32, chosen, calibration, evaluation, files, pool, label -> {
                err.printf(Locale.ROOT, "quant eval: %s (%.0f s)%n", label, (System.nanoTime() - start) / 1e9);
                err.flush();
            });
            String table = DecoderEval.markdown(rows);
            out.print(table);
            out.flush();
            Files.createDirectories(c.outDir);
            AtomicFiles.write(c.outDir.resolve("eval.md"), o -> o.write(table.getBytes(StandardCharsets.UTF_8)));
            String json = DecoderEval.json(rows);
            AtomicFiles.write(c.outDir.resolve("eval.json"), o -> o.write(json.getBytes(StandardCharsets.UTF_8)));
            ReportCommand.writePng(DecoderEval.chart(rows, file), c.outDir.resolve("eval.png"));
            err.printf(
                    Locale.ROOT,
                    "quant eval: wrote %s, %s and %s (%.0f s)%n",
                    c.outDir.resolve("eval.md"),
                    c.outDir.resolve("eval.json"),
                    c.outDir.resolve("eval.png"),
                    (System.nanoTime() - start) / 1e9);
            return 0;
        } finally {
            pool.shutdown();
        }
    }

    /**
     * With {@code --quantized} and no setting to run, nothing is calibrated: the calibration options are refused
     * rather than ignored.
     */
    private static void requireNoCalibration(EvalCommand c, boolean settingsGiven) {
        var parsed = c.spec.commandLine().getParseResult();
        for (String option : List.of("--calib-text", "--calib-tokens", "--calib-sample")) {
            if (parsed.hasMatchedOption(option)) {
                throw new IllegalArgumentException(option + ": no setting runs, so nothing is calibrated"
                        + (settingsGiven
                                ? " (--settings matches none)"
                                : " (--quantized alone measures the files; add --settings REGEX to quantize here"
                                        + " too)"));
            }
        }
    }

    /** How many evaluation sequences equal a calibration sequence, token for token. */
    private static long sharedSequences(List<int[]> calibration, List<int[]> evaluation) {
        Set<List<Integer>> seen = new HashSet<>();
        for (int[] s : calibration) {
            seen.add(Arrays.stream(s).boxed().toList());
        }
        return evaluation.stream()
                .filter(s -> seen.contains(Arrays.stream(s).boxed().toList()))
                .count();
    }
}
