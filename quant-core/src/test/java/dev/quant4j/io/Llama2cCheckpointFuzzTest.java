package dev.quant4j.io;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.FuzzContract;

/**
 * llama2.c checkpoints: any bytes are read or refused; what is read accounts for every byte of the file the header
 * says it should (there is no writer to round-trip through).
 */
class Llama2cCheckpointFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(input, bytes -> Llama2cCheckpoint.parse(bytes, "fuzz.bin"), c -> {
            long floats = 0;
            for (FloatMatrix m : c.tensors().values()) {
                floats += (long) m.rows() * m.cols();
            }
            Llama2cCheckpoint.Header h = c.header();
            long unused = (long) h.seqLen() * h.headSize();
            require(
                    Llama2cCheckpoint.HEADER_BYTES + 4 * (floats + unused) == input.length,
                    "tensors of " + floats + " floats do not account for " + input.length + " bytes");
        });
    }
}
