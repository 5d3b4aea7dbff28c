package dev.quant4j.cli;

import dev.quant4j.cli.eval.DecoderEval;
import dev.quant4j.io.AtomicFiles;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ForkJoinPool;
import java.util.regex.Pattern;

/**
 * {@code quant eval --model}: a decoder language model (a llama2.c checkpoint or a Hugging Face Llama, Mistral or Qwen2
 * folder) quantized with each setting and compared with its FP32 self on sequences it sampled (calibration seed 1,
 * evaluation seed 2, temperature 1, each starting with token 1, BOS in Llama's vocabularies). Writes {@code decoder-eval.md} and {@code eval.json} into {@code --out}.
 */
final class DecoderEvalRun {

    static final long EVALUATION_SEED = 2;

    private DecoderEvalRun() {}

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
            LlamaDecoder fp32 = LlamaDecoder.read(c.model, pool);
            SampledSequences.requireLength(fp32, file, c.seqLen);
            List<Setting> chosen = DecoderEval.defaultSettings(c.groupSize).stream()
                    .filter(s -> select.matcher(s.label()).find())
                    .toList();
            if (chosen.isEmpty()) {
                throw new IllegalArgumentException("--settings '" + select + "' matches no setting");
            }
            long start = System.nanoTime();
            err.printf(
                    Locale.ROOT,
                    "quant eval: %s, %d layers, dim %d; sampling %d calibration and %d evaluation sequences of %d"
                            + " tokens%n",
                    file,
                    fp32.config().layers(),
                    fp32.config().dim(),
                    c.calibSample,
                    c.evalSample,
                    c.seqLen);
            err.flush();
            List<int[]> calibration =
                    SampledSequences.sample(fp32, file, c.calibSample, c.seqLen, SampledSequences.CALIBRATION_SEED);
            List<int[]> evaluation = SampledSequences.sample(fp32, file, c.evalSample, c.seqLen, EVALUATION_SEED);
            List<DecoderEval.Row> rows = DecoderEval.run(fp32, chosen, calibration, evaluation, pool, label -> {
                err.printf(Locale.ROOT, "quant eval: %s (%.0f s)%n", label, (System.nanoTime() - start) / 1e9);
                err.flush();
            });
            String table = DecoderEval.markdown(rows);
            out.print(table);
            out.flush();
            Files.createDirectories(c.outDir);
            AtomicFiles.write(
                    c.outDir.resolve("decoder-eval.md"), o -> o.write(table.getBytes(StandardCharsets.UTF_8)));
            String json = DecoderEval.json(rows);
            AtomicFiles.write(c.outDir.resolve("eval.json"), o -> o.write(json.getBytes(StandardCharsets.UTF_8)));
            err.printf(
                    Locale.ROOT,
                    "quant eval: wrote %s and %s (%.0f s)%n",
                    c.outDir.resolve("decoder-eval.md"),
                    c.outDir.resolve("eval.json"),
                    (System.nanoTime() - start) / 1e9);
            return 0;
        } finally {
            pool.shutdown();
        }
    }
}
