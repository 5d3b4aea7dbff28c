package dev.quant4j.model;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.io.ModelFolder;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.FuzzContract;
import dev.quant4j.testing.FuzzFolder;
import dev.quant4j.testing.Pools;
import java.util.List;

/**
 * Hugging Face Llama folders: any folder of a {@code config.json}, a {@code model.safetensors.index.json} and
 * safetensors weights (one input, {@link FuzzFolder}) is read into a decoder or refused. There is no writer; what is
 * read must run instead: token 0's logits are {@code [1, vocab_size]}.
 */
public class HuggingFaceLlamaFuzzTest {

    /** The files of the folder, in the order of the input's parts. */
    public static final List<String> FILES = List.of(
            HuggingFaceLlama.CONFIG,
            HuggingFaceLlama.INDEX,
            HuggingFaceLlama.SINGLE,
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors");

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(
                input,
                bytes -> HuggingFaceLlama.read(ModelFolder.of(FuzzFolder.unpack(bytes, FILES), "fuzz"), Pools.ONE),
                decoder -> {
                    FloatMatrix logits = decoder.logits(new int[] {0});
                    require(
                            logits.rows() == 1
                                    && logits.cols() == decoder.config().vocabSize(),
                            "logits of one token are [" + logits.rows() + ", " + logits.cols() + "]");
                });
    }
}
