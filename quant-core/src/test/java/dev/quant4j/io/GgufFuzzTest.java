package dev.quant4j.io;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.testing.FuzzContract;
import java.util.Arrays;

/**
 * GGUF: any bytes are read or refused; what is read is written again by {@link GgufWriter} (its metadata, tensor
 * names, shapes, types and bytes, at its alignment) and reads back the same.
 */
class GgufFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(input, bytes -> Gguf.parse(bytes, "fuzz.gguf"), g -> {
            GgufWriter w = new GgufWriter().putAll(g.metadata());
            for (Gguf.TensorInfo t : g.tensors()) {
                w.addTensor(t.name(), t.ne(), t.type(), g.readBytes(t.name()));
            }
            Gguf again = Gguf.parse(w.toBytes(), "rewritten.gguf");
            require(again.metadata().equals(g.metadata()), "metadata differs after writing");
            require(again.tensors().size() == g.tensors().size(), "tensor count differs after writing");
            for (Gguf.TensorInfo t : g.tensors()) {
                Gguf.TensorInfo u = again.tensor(t.name());
                require(Arrays.equals(t.ne(), u.ne()) && t.type() == u.type(), "tensor '" + t.name() + "' differs");
                require(Arrays.equals(g.readBytes(t.name()), again.readBytes(t.name())), "bytes differ after writing");
            }
        });
    }
}
