package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {

    @TempDir
    Path dir;

    static byte[] file(String header, int dataBytes) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer bb = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        bb.putLong(h.length).put(h);
        return bb.array();
    }

    @Test
    void goldenBytesOfTheWriter() {
        byte[] bytes = new SafeTensorsWriter()
                .addF32("ab", new long[] {1, 2}, new float[] {1f, -2f})
                .toBytes();
        String header = "{\"ab\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}}";
        // header padded with spaces to a multiple of 8: 57 bytes + 7 spaces
        assertThat(header.length()).isEqualTo(57);
        ByteBuffer bb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(bb.getLong(0)).isEqualTo(64);
        assertThat(new String(bytes, 8, 64, StandardCharsets.UTF_8)).isEqualTo(header + "       ");
        assertThat(bb.getFloat(72)).isEqualTo(1f);
        assertThat(bb.getFloat(76)).isEqualTo(-2f);
    }

    @Test
    void roundTripsFloatDtypesAndMetadata() throws Exception {
        ByteBuffer f16 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : new float[] {1f, -0.5f, 2f, 0.25f}) {
            f16.putShort(Float.floatToFloat16(v));
        }
        ByteBuffer bf16 = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        bf16.putShort((short) (Float.floatToIntBits(3f) >>> 16)).putShort((short) (Float.floatToIntBits(-1f) >>> 16));
        Path p = dir.resolve("m.safetensors");
        new SafeTensorsWriter()
                .metadata("k", "v")
                .addF32("w", new long[] {2, 2}, new float[] {1, 2, 3, 4})
                .add("h", DType.F16, new long[] {2, 2}, f16.array())
                .add("b", DType.BF16, new long[] {1, 2}, bf16.array())
                .add("ids", DType.I32, new long[] {1}, new byte[] {7, 0, 0, 0})
                .write(p);
        try (SafeTensors st = SafeTensors.open(p)) {
            assertThat(st.names()).containsExactly("w", "h", "b", "ids");
            assertThat(st.metadata()).containsEntry("k", "v");
            assertThat(st.readMatrix("w").toArray()).containsExactly(1, 2, 3, 4);
            assertThat(st.readMatrix("h").toArray()).containsExactly(1f, -0.5f, 2f, 0.25f);
            assertThat(st.readMatrix("b").toArray()).containsExactly(3f, -1f);
            assertThat(st.readBytes("ids")).containsExactly(7, 0, 0, 0);
            assertThatThrownBy(() -> st.readMatrix("ids")).hasMessageContaining("tensor 'ids' has 1 dimensions");
        }
    }

    @Test
    void rejectsHostileHeaders() {
        assertThatThrownBy(() -> SafeTensors.parse(new byte[4], "x"))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("too short");
        byte[] longHeader = file("{}", 0);
        ByteBuffer.wrap(longHeader).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1000);
        assertThatThrownBy(() -> SafeTensors.parse(longHeader, "x"))
                .hasMessageContaining("header length 1000 runs past the end");
        ByteBuffer.wrap(longHeader).order(ByteOrder.LITTLE_ENDIAN).putLong(0, -5);
        assertThatThrownBy(() -> SafeTensors.parse(longHeader, "x")).hasMessageContaining("runs past the end");
        assertThatThrownBy(() -> SafeTensors.parse(file("{\"a\":", 0), "x")).hasMessageContaining("invalid JSON");
        assertThatThrownBy(() -> SafeTensors.parse(file("[".repeat(10000), 0), "x"))
                .hasMessageContaining("nested deeper than");
        assertThatThrownBy(() -> SafeTensors.parse(
                        file("{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "x"))
                .hasMessageContaining("tensor 'a': unknown dtype 'Q7'");
        assertThatThrownBy(() -> SafeTensors.parse(
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8), "x"))
                .hasMessageContaining("tensor 'a': data_offsets [0, 16] out of range of the 8-byte data section");
        assertThatThrownBy(() -> SafeTensors.parse(
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "x"))
                .hasMessageContaining("shape [3] of F32 needs 12 bytes, data_offsets give 8");
        assertThatThrownBy(() -> SafeTensors.parse(
                        file(
                                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                                8),
                        "x"))
                .hasMessageContaining("overlap");
        assertThatThrownBy(() -> SafeTensors.parse(
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8),
                        "x"))
                .hasMessageContaining("overflows");
        assertThatThrownBy(() -> SafeTensors.parse(
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8), "x"))
                .hasMessageContaining("shape[0] is not a non-negative integer");
    }

    @Test
    void truncatedFileOnDiskIsRejected() throws Exception {
        Path p = dir.resolve("t.safetensors");
        byte[] bytes = new SafeTensorsWriter()
                .addF32("w", new long[] {4, 4}, new float[16])
                .toBytes();
        Files.write(p, java.util.Arrays.copyOf(bytes, bytes.length - 10));
        assertThatThrownBy(() -> SafeTensors.open(p))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("tensor 'w'")
                .hasMessageContaining("out of range");
    }

    @Test
    void aNameWithAnUnpairedSurrogateIsRefusedBecauseItCannotBeWrittenBack() {
        byte[] f = file("{\"\\ud800\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
        assertThatThrownBy(() -> SafeTensors.parse(f, "u.safetensors"))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage(
                        "u.safetensors: header: invalid JSON at character 9: unpaired surrogate \\ud800 in a string");
    }
}
