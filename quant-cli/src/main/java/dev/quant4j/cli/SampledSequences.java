package dev.quant4j.cli;

import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.TokenSampler;
import java.util.List;

/**
 * Token sequences a decoder samples from itself, for the commands that calibrate or evaluate a model without a
 * tokenizer ({@code quant eval --model}, {@code quant quantize --model}): temperature 1, each sequence starting with
 * token 1 (BOS in Llama's sentencepiece vocabularies). The same model, count, length and seed give the same
 * sequences in both commands.
 */
final class SampledSequences {

    /** The first token of every sampled sequence: BOS in llama2.c's (sentencepiece) vocabularies. */
    static final int BOS = 1;

    /** The seed of calibration sequences unless one is given. */
    static final long CALIBRATION_SEED = 1;

    private SampledSequences() {}

    /**
     * Refuses a sequence length the model cannot take or too short to predict a token; {@code file} names the model.
     */
    static void requireLength(LlamaDecoder model, String file, int seqLen) {
        requireLength(model.config(), file, seqLen);
    }

    /** As {@link #requireLength(LlamaDecoder, String, int)}, for a model known by its configuration. */
    static void requireLength(dev.quant4j.model.LlamaConfig config, String file, int seqLen) {
        if (seqLen < 2) {
            throw new IllegalArgumentException("--seq-len " + seqLen + ": a sequence needs at least 2 tokens");
        }
        if (seqLen > config.maxSeqLen()) {
            throw new IllegalArgumentException(
                    "--seq-len " + seqLen + ": " + file + " takes at most " + config.maxSeqLen() + " tokens");
        }
    }

    /** {@code count} sequences of {@code seqLen} tokens sampled from {@code model} with {@code seed}. */
    static List<int[]> sample(LlamaDecoder model, String file, int count, int seqLen, long seed) {
        requireLength(model, file, seqLen);
        return TokenSampler.sample(model, count, seqLen, BOS, 1.0, seed);
    }
}
