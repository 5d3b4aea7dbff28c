package dev.quant4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsStreamWriterTest {

    @TempDir
    Path dir;

    @Test
    void writesTheBytesOfTheInMemoryWriterWhateverTheOrderOfWrites() throws IOException {
        SafeTensorsWriter mem = new SafeTensorsWriter().metadata("k", "v");
        mem.add("a", DType.U8, new long[] {3}, new byte[] {1, 2, 3});
        mem.addF32("b", new long[] {2, 2}, new float[] {1, -2, 3.5f, 0});
        mem.add("empty", DType.F32, new long[] {0, 4}, new byte[0]);
        Path p = dir.resolve("s.safetensors");
        List<SafeTensorsStreamWriter.Spec> specs = List.of(
                new SafeTensorsStreamWriter.Spec("a", DType.U8, new long[] {3}),
                new SafeTensorsStreamWriter.Spec("b", DType.F32, new long[] {2, 2}),
                new SafeTensorsStreamWriter.Spec("empty", DType.F32, new long[] {0, 4}));
        try (SafeTensorsStreamWriter w = SafeTensorsStreamWriter.create(p, specs, Map.of("k", "v"))) {
            w.writeFloats("b", 8, new float[] {3.5f, 0});
            w.write("a", 1, new byte[] {2, 3});
            w.writeFloats("b", 0, new float[] {1, -2});
            w.write("a", 0, new byte[] {1});
            w.finish();
        }
        assertArrayEquals(mem.toBytes(), Files.readAllBytes(p));
    }

    @Test
    void refusesWritesOutsideATensorAndAFileNotWrittenInFull() throws IOException {
        Path p = dir.resolve("s.safetensors");
        List<SafeTensorsStreamWriter.Spec> specs =
                List.of(new SafeTensorsStreamWriter.Spec("a", DType.U8, new long[] {4}));
        try (SafeTensorsStreamWriter w = SafeTensorsStreamWriter.create(p, specs, Map.of())) {
            IllegalArgumentException past =
                    assertThrows(IllegalArgumentException.class, () -> w.write("a", 3, new byte[2]));
            assertTrue(past.getMessage().contains("outside tensor 'a' (4 bytes)"), past.getMessage());
            assertThrows(IllegalArgumentException.class, () -> w.write("b", 0, new byte[1]));
            w.write("a", 0, new byte[3]);
            IllegalStateException partial = assertThrows(IllegalStateException.class, w::finish);
            assertTrue(
                    partial.getMessage().contains("3 bytes of data written, the header promises 4"),
                    partial.getMessage());
        }
        assertThrows(
                IllegalArgumentException.class,
                () -> SafeTensorsStreamWriter.header(
                        List.of(
                                new SafeTensorsStreamWriter.Spec("x", DType.U8, new long[] {1}),
                                new SafeTensorsStreamWriter.Spec("x", DType.U8, new long[] {1})),
                        Map.of()));
    }

    /**
     * A file past 4 GiB (sparse: only its last tensor and a few bytes are written), read back through the mapped reader:
     * offsets beyond 32 bits are written and read exactly.
     */
    @Test
    void offsetsPast32BitsAreWrittenAndReadBack() throws IOException {
        Path p = dir.resolve("big.safetensors");
        long big = (5L << 30) + 3;
        List<SafeTensorsStreamWriter.Spec> specs = List.of(
                new SafeTensorsStreamWriter.Spec("big", DType.U8, new long[] {big}),
                new SafeTensorsStreamWriter.Spec("tail", DType.F32, new long[] {3}));
        try (SafeTensorsStreamWriter w = SafeTensorsStreamWriter.create(p, specs, Map.of())) {
            w.write("big", big - 2, new byte[] {7, 9});
            w.writeFloats("tail", 0, new float[] {1.5f, -2, 4});
            assertEquals(w.size(), Files.size(p));
        }
        try (SafeTensors st = SafeTensors.open(p)) {
            assertEquals(big, st.entry("big").end() - st.entry("big").begin());
            assertEquals(big, st.entry("tail").begin());
            assertArrayEquals(new float[] {1.5f, -2, 4}, st.readF32("tail"));
            float[] two = new float[2];
            st.readFloats("tail", 1, 2, two, 0);
            assertArrayEquals(new float[] {-2, 4}, two);
            Path copy = dir.resolve("copy.bin");
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(
                    copy, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE)) {
                st.copyTo("big", big - 3, 3, ch, 0);
            }
            assertArrayEquals(new byte[] {0, 7, 9}, Files.readAllBytes(copy));
        }
    }
}
