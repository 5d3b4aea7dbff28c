package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Initializers stored as external data: read from their range of the data file; every way a location or range can be
 * wrong is refused by the initializer's name.
 */
class OnnxExternalDataReadTest {

    @TempDir
    Path dir;

    /** A model with one FLOAT initializer 'w' [2, 3] whose external_data entries are {@code entries}. */
    static byte[] model(Map<String, String> entries) {
        ProtoWriter t = new ProtoWriter();
        t.writeInt64(1, 2);
        t.writeInt64(1, 3);
        t.writeInt64(2, OnnxModel.FLOAT);
        t.writeString(8, "w");
        for (Map.Entry<String, String> e : entries.entrySet()) {
            ProtoWriter kv = new ProtoWriter();
            kv.writeString(1, e.getKey());
            kv.writeString(2, e.getValue());
            t.writeMessage(13, kv);
        }
        t.writeInt64(14, 1);
        ProtoWriter g = new ProtoWriter();
        g.writeMessage(5, t);
        ProtoWriter m = new ProtoWriter();
        m.writeMessage(7, g);
        return m.toByteArray();
    }

    private Path write(Map<String, String> entries) throws Exception {
        Path p = dir.resolve("model.onnx");
        Files.write(p, model(entries));
        return p;
    }

    private void data(String name, int pad) throws Exception {
        ByteBuffer bb = ByteBuffer.allocate(pad + 24 + 8).order(ByteOrder.LITTLE_ENDIAN);
        bb.position(pad);
        for (int i = 0; i < 6; i++) {
            bb.putFloat(i + 0.5f);
        }
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.write(p, bb.array());
    }

    private static Map<String, String> entries(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    @Test
    void valuesAreReadFromTheirRange() throws Exception {
        data("sub/w.bin", 100);
        OnnxModel m = OnnxModel.read(write(entries("location", "sub/w.bin", "offset", "100", "length", "24")));
        assertThat(m.hasExternalData()).isTrue();
        assertThat(m.initializer("w").floats()).containsExactly(0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f);
        assertThat(m.initializer("w").matrix().get(1, 2)).isEqualTo(5.5f);
        assertThat(m.initializer("w").external().length()).isEqualTo(24);
        // parsed from bytes alone, the shape is known but the values cannot be found
        OnnxModel bytesOnly = OnnxModel.parse("m.onnx", model(entries("location", "sub/w.bin", "offset", "100")));
        assertThat(bytesOnly.initializer("w").dims()).containsExactly(2, 3);
        assertThatThrownBy(() -> bytesOnly.initializer("w").floats())
                .hasMessageContaining("initializer 'w' keeps its data in external file 'sub/w.bin'; read the model"
                        + " from its file");
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "location=../w.bin|external data location '../w.bin' is not a path inside the model's folder",
                "location=/etc/passwd|external data location '/etc/passwd' is not a path inside the model's folder",
                "location=sub/../../w.bin|is not a path inside the model's folder",
                "location=gone.bin|external data file 'gone.bin' does not exist",
                "offset=8|stored as external data without a location",
                "location=w.bin,offset=x|external data offset 'x' is not a non-negative integer",
                "location=w.bin,length=-3|external data length '-3' is not a non-negative integer",
                "location=w.bin,offset=40|offset 40 is past the end of 'w.bin' (32 bytes)",
                "location=w.bin,offset=16,length=24|bytes [16, 40) reach past the end of 'w.bin' (32 bytes)",
                "location=w.bin,offset=4|needs 24 bytes, its external data in 'w.bin' has 28",
                "location=w.bin,length=20|needs 24 bytes, its external data in 'w.bin' has 20",
            })
    void badLocationsAndRangesAreRefusedByName(String spec, String message) throws Exception {
        data("w.bin", 0);
        Map<String, String> e = new LinkedHashMap<>();
        for (String kv : spec.split(",")) {
            e.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
        }
        Path model = write(e);
        assertThatThrownBy(() -> OnnxModel.read(model))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageStartingWith(model + ": initializer 'w'")
                .hasMessageContaining(message);
    }

    @Test
    void aLinkLeadingOutOfTheFolderIsRefused() throws Exception {
        Path outside = Files.createDirectory(dir.resolve("outside"));
        Files.write(outside.resolve("w.bin"), new byte[24]);
        Path folder = Files.createDirectory(dir.resolve("model"));
        Files.createSymbolicLink(folder.resolve("w.bin"), outside.resolve("w.bin"));
        Path model = folder.resolve("model.onnx");
        Files.write(model, model(entries("location", "w.bin")));
        assertThatThrownBy(() -> OnnxModel.read(model))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining(
                        "initializer 'w': external data location 'w.bin' leads outside the model's" + " folder");
    }
}
