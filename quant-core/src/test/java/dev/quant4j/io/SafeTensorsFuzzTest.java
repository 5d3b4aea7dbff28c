package dev.quant4j.io;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.testing.FuzzContract;
import java.util.Arrays;

/**
 * {@code .safetensors}, header and data: any bytes are read or refused; every tensor of an accepted file can be read
 * (2-D float ones as matrices), and the file written again by {@link SafeTensorsWriter} reads back with the same
 * names, dtypes, shapes, bytes and metadata.
 */
class SafeTensorsFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(input, bytes -> SafeTensors.parse(bytes, "fuzz.safetensors"), st -> {
            SafeTensorsWriter w = new SafeTensorsWriter();
            st.metadata().forEach(w::metadata);
            for (SafeTensors.Entry e : st.entries().values()) {
                if (e.shape().length == 2 && e.dtype().isFloat() && e.elements() > 0) {
                    st.readMatrix(e.name());
                }
                w.add(e.name(), e.dtype(), e.shape(), st.readBytes(e.name()));
            }
            SafeTensors again = SafeTensors.parse(w.toBytes(), "rewritten.safetensors");
            require(again.names().equals(st.names()), "names " + again.names() + " after writing " + st.names());
            require(again.metadata().equals(st.metadata()), "metadata " + again.metadata());
            for (SafeTensors.Entry e : st.entries().values()) {
                SafeTensors.Entry a = again.entry(e.name());
                require(
                        a.dtype() == e.dtype() && Arrays.equals(a.shape(), e.shape()),
                        "tensor '" + e.name() + "' is " + a + " after writing " + e);
                require(
                        Arrays.equals(again.readBytes(e.name()), st.readBytes(e.name())),
                        "tensor '" + e.name() + "' has other bytes after writing");
            }
        });
    }
}
