package dev.quant4j.io;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.testing.FuzzContract;
import java.util.Arrays;

/** {@code .npy}: any bytes are read or refused; what is read is written as version 1.0 and reads back the same. */
class NpyFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(input, bytes -> Npy.parse(bytes, "fuzz.npy"), a -> {
            Npy.Array again = Npy.parse(Npy.toBytes(a.shape(), a.data()), "rewritten.npy");
            require(Arrays.equals(a.shape(), again.shape()), "shape " + Arrays.toString(again.shape()));
            require(Arrays.equals(a.data(), again.data()), "values differ after writing");
        });
    }
}
