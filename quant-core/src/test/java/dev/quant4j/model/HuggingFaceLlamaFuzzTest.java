package dev.quant4j.model;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.io.ModelFolder;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.FuzzContract;
import dev.quant4j.testing.FuzzFolder;
import dev.quant4j.testing.Pools;

/**
 * Hugging Face Llama folders: any folder of a {@code config.json}, a {@code model.safetensors.index.json} and
 * safetensors weights (one input, {@link FuzzFolder}) is read into a decoder or refused. There is no writer; what is
 * read must run instead: token 0's logits are {@code [1, vocab_size]}.
 */
class HuggingFaceLlamaFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(
                input,
                bytes -> HuggingFaceLlama.read(
                        ModelFolder.of(FuzzFolder.unpack(bytes, FuzzFolder.HUGGING_FACE_LLAMA), "fuzz"), Pools.ONE),
                decoder -> {
                    FloatMatrix logits = decoder.logits(new int[] {0});
                    require(
                            logits.rows() == 1
                                    && logits.cols() == decoder.config().vocabSize(),
                            "logits of one token are [" + logits.rows() + ", " + logits.cols() + "]");
                });
    }
}
