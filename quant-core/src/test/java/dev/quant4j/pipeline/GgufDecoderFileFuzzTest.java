package dev.quant4j.pipeline;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.FuzzContract;
import dev.quant4j.testing.Pools;

/**
 * GGUF {@code llama} models: any bytes are read by {@link GgufDecoderFile#read(byte[], String)} (metadata keys to the
 * configuration, tensor names to Hugging Face's, every tensor dequantized) and built into a decoder, or refused. There
 * is no round trip through the writer (it writes a placeholder vocabulary and quantizes); what is read must run
 * instead: token 0's logits are {@code [1, vocab_size]}.
 */
class GgufDecoderFileFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(
                input,
                bytes -> GgufDecoderFile.read(bytes, "fuzz.gguf").decoder(Pools.ONE),
                GgufDecoderFileFuzzTest::runs);
    }

    /** Token 0 runs through {@code decoder}: its logits are one row of the vocabulary's size. */
    static void runs(LlamaDecoder decoder) {
        FloatMatrix logits = decoder.logits(new int[] {0});
        require(
                logits.rows() == 1 && logits.cols() == decoder.config().vocabSize(),
                "logits of one token are [" + logits.rows() + ", " + logits.cols() + "]");
    }
}
