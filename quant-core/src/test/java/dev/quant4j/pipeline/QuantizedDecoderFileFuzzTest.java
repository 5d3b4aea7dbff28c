package dev.quant4j.pipeline;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.testing.FuzzContract;
import dev.quant4j.testing.Pools;

/**
 * Quantized decoder files: any bytes are read by {@link QuantizedDecoderFile#read(byte[], String)} (the {@code
 * quant4j.decoder} configuration, every quantized weight and pass-through tensor) and built into the decoder that runs
 * on the quantized weights ({@link QuantizedDecoderFile.Loaded#model}), or refused. The writer takes a quantization's
 * result, not a file read back, so there is no round trip; what is read must run instead: token 0's logits are {@code
 * [1, vocab_size]}.
 */
class QuantizedDecoderFileFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(
                input,
                bytes -> QuantizedDecoderFile.read(bytes, "fuzz.safetensors").model(Pools.ONE),
                GgufDecoderFileFuzzTest::runs);
    }
}
