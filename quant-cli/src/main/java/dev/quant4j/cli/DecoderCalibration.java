package dev.quant4j.cli;

import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;

/**
 * The calibration sequences of {@code quant quantize --model} (safetensors, GPTQ checkpoint and GGUF outputs alike):
 * the windows of {@code --calib-text} or {@code --calib-tokens}, or {@code --calib-sample N} sequences of {@code
 * --seq-len} tokens sampled from the FP32 model with {@code --seed} ({@link SampledSequences}).
 *
 * @param sequences token sequences, each from position 0
 * @param description what they are, for the command's first stderr line ({@code calibrating on ...})
 */
record DecoderCalibration(List<int[]> sequences, String description) {

    /**
     * The sequences: {@code lines} cut into windows, or sampled from {@code fp32} when {@code lines} is null; a note
     * about the tokenizer's vocabulary goes to {@code err}. {@code start} (nanoTime) times the sampling.
     */
    static DecoderCalibration of(
            DecoderOutput.Options options,
            TextSequences.Lines lines,
            TextTokenizer tokenizer,
            LlamaDecoder fp32,
            String name,
            PrintWriter err,
            long start) {
        if (lines != null) {
            return ofLines(options, lines, tokenizer, fp32.config(), name, err);
        }
        int len = options.seqLen == null
                ? Math.min(DecoderOutput.DEFAULT_SEQ_LEN, fp32.config().maxSeqLen())
                : options.seqLen;
        int n = options.calibSample == null ? DecoderOutput.DEFAULT_CALIB_SAMPLE : options.calibSample;
        if (n < 1) {
            throw new IllegalArgumentException("--calib-sample " + n + " must be at least 1");
        }
        long seed = options.seed == null ? SampledSequences.CALIBRATION_SEED : options.seed;
        SampledSequences.requireLength(fp32, name, len);
        List<int[]> sequences = SampledSequences.sample(fp32, name, n, len, seed);
        return new DecoderCalibration(
                sequences,
                String.format(
                        Locale.ROOT,
                        "calibrating on %d sequences of %d tokens sampled with seed %d (%.1f s)",
                        n,
                        len,
                        seed,
                        (System.nanoTime() - start) / 1e9));
    }

    /**
     * The windows of the user's {@code lines} for a model known by its configuration {@code config} alone (a folder
     * read block by block); a note about the tokenizer's vocabulary goes to {@code err}.
     */
    static DecoderCalibration ofLines(
            DecoderOutput.Options options,
            TextSequences.Lines lines,
            TextTokenizer tokenizer,
            LlamaConfig config,
            String name,
            PrintWriter err) {
        int len = options.seqLen == null ? Math.min(DecoderOutput.DEFAULT_SEQ_LEN, config.maxSeqLen()) : options.seqLen;
        String note = tokenizer == null ? null : tokenizer.requireFits(config.vocabSize(), name);
        if (note != null) {
            err.println("quant: " + note);
        }
        SampledSequences.requireLength(config, name, len);
        TextSequences.Windows w =
                TextSequences.windows(lines, config.vocabSize(), name, len, options.calibSample, "--calib-sample");
        return new DecoderCalibration(w.sequences(), "calibrating on " + w.description());
    }
}
