package dev.quant4j.io;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.testing.FuzzContract;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;

/**
 * quant4j's quantized {@code .safetensors}: any bytes are read or refused; every weight of an accepted file
 * dequantizes, and the content written again reads back as the same content (writing it a second time gives the same
 * bytes). The writer takes one method for all weights, so a file naming several methods is read but not rewritten.
 */
class QuantizedSafeTensorsFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(input, bytes -> QuantizedSafeTensors.parse(bytes, "fuzz.safetensors"), content -> {
            content.dequantizeAll();
            if (new HashSet<>(content.methods().values()).size() > 1) {
                return;
            }
            byte[] written = write(content);
            QuantizedSafeTensors.Content again = QuantizedSafeTensors.parse(written, "rewritten.safetensors");
            require(again.weights().keySet().equals(content.weights().keySet()), "weights " + again.weights());
            require(again.methods().equals(content.methods()), "methods " + again.methods());
            require(again.transposed().equals(content.transposed()), "transposed " + again.transposed());
            require(
                    again.other().stream()
                            .map(QuantizedSafeTensors.PassThrough::name)
                            .toList()
                            .equals(content.other().stream()
                                    .map(QuantizedSafeTensors.PassThrough::name)
                                    .toList()),
                    "pass-through tensors " + again.other());
            require(Arrays.equals(write(again), written), "writing what was read back gives other bytes");
        });
    }

    private static byte[] write(QuantizedSafeTensors.Content c) {
        List<QuantizedWeight> weights = new ArrayList<>(c.weights().values());
        String method = c.methods().values().stream().findFirst().orElse("rtn");
        return QuantizedSafeTensors.toBytes(weights, method, c.other(), c.transposed());
    }
}
