package dev.quant4j.io;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.FuzzContract;
import java.util.Arrays;

/**
 * llama2.c checkpoints: any bytes are read or refused; what is read accounts for every byte of the file the header
 * says it should, and writes back to the same bytes.
 */
class Llama2cCheckpointFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(input, bytes -> Llama2cCheckpoint.parse(bytes, "fuzz.bin"), c -> {
            long floats = (long) c.freqsCos().rows() * c.freqsCos().cols()
                    + (long) c.freqsSin().rows() * c.freqsSin().cols();
            for (FloatMatrix m : c.tensors().values()) {
                floats += (long) m.rows() * m.cols();
            }
            require(
                    Llama2cCheckpoint.HEADER_BYTES + 4 * floats == input.length,
                    "tensors of " + floats + " floats do not account for " + input.length + " bytes");
            require(Arrays.equals(c.toBytes(), input), "written back, the bytes differ");
        });
    }
}
