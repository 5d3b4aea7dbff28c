package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.ggml.GgmlFixtures;
import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GGUF against ggml's own reader and writer: {@code ggml/ggml-written.gguf} was written by ggml's {@code
 * gguf_write_to_file} (every metadata value type, five tensors of five types; see the resource README).
 */
class GgufTest {

    @TempDir
    Path dir;

    static final byte[] GGML_FILE = GgmlFixtures.bytes("ggml-written.gguf");
    static final float[] INPUT = GgmlFixtures.floats("input.f32");

    /** The tensors of the ggml-written file: name, type, ne, and where in input.f32 their values start. */
    record Spec(String name, GgmlType type, long[] ne, int from) {}

    static final List<Spec> TENSORS = List.of(
            new Spec("blk.0.attn_q.weight", GgmlType.Q4_0, new long[] {256, 3}, 0),
            new Spec("blk.0.ffn_down.weight", GgmlType.Q6_K, new long[] {256, 2}, 256),
            new Spec("blk.0.attn_norm.weight", GgmlType.F32, new long[] {7}, 512),
            new Spec("token_embd.weight", GgmlType.F16, new long[] {64, 5}, 768),
            new Spec("output.weight", GgmlType.Q8_0, new long[] {32}, 1024));

    static Map<String, GgufValue> expectedMetadata() {
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("general.architecture", GgufValue.string("quant4j-test"));
        m.put("test.u8", GgufValue.of(GgufValueType.UINT8, 250));
        m.put("test.i8", GgufValue.of(GgufValueType.INT8, -7));
        m.put("test.u16", GgufValue.of(GgufValueType.UINT16, 65000));
        m.put("test.i16", GgufValue.of(GgufValueType.INT16, -30000));
        m.put("test.u32", GgufValue.uint32(4000000000L));
        m.put("test.i32", GgufValue.of(GgufValueType.INT32, -2000000000));
        m.put("test.f32", GgufValue.float32(3.25f));
        m.put("test.bool", GgufValue.bool(true));
        m.put("test.str", GgufValue.string("héllo, gguf"));
        m.put("test.u64", GgufValue.of(GgufValueType.UINT64, Long.parseUnsignedLong("18000000000000000000")));
        m.put("test.i64", GgufValue.of(GgufValueType.INT64, -9000000000000000000L));
        m.put("test.f64", new GgufValue(GgufValueType.FLOAT64, -1.0e-300));
        m.put("test.empty_str", GgufValue.string(""));
        m.put("test.arr.u8", GgufValue.array(GgufValueType.UINT8, List.of(0L, 1L, 255L)));
        m.put("test.arr.i8", GgufValue.array(GgufValueType.INT8, List.of(-128L, 0L, 127L)));
        m.put("test.arr.u16", GgufValue.array(GgufValueType.UINT16, List.of(1L, 65535L)));
        m.put("test.arr.i16", GgufValue.array(GgufValueType.INT16, List.of(-32768L, 32767L)));
        m.put("test.arr.u32", GgufValue.array(GgufValueType.UINT32, List.of(7L, 4294967295L)));
        m.put("test.arr.i32", GgufValue.array(GgufValueType.INT32, List.of(-1L, 2L, -3L, 4L)));
        m.put("test.arr.f32", GgufValue.array(GgufValueType.FLOAT32, List.of(0.5f, -0.0f, 1e30f)));
        m.put("test.arr.bool", GgufValue.array(GgufValueType.BOOL, List.of(true, false, true)));
        m.put("test.arr.u64", GgufValue.array(GgufValueType.UINT64, List.of(0L, -1L)));
        m.put("test.arr.i64", GgufValue.array(GgufValueType.INT64, List.of(-5L, 5L)));
        m.put("test.arr.f64", GgufValue.array(GgufValueType.FLOAT64, List.of(3.141592653589793)));
        m.put("test.arr.str", GgufValue.array(GgufValueType.STRING, List.of("<s>", "", "▁the")));
        m.put("test.arr.empty", GgufValue.array(GgufValueType.INT32, List.of()));
        return m;
    }

    static byte[] quantized(Spec s) {
        int cols = (int) s.ne()[0];
        int rows = s.ne().length > 1 ? (int) s.ne()[1] : 1;
        return GgmlQuants.quantize(s.type(), Arrays.copyOfRange(INPUT, s.from(), s.from() + rows * cols), rows, cols);
    }

    @Test
    void readsEveryKeyAndTensorOfAFileGgmlWrote() throws Exception {
        Path p = dir.resolve("ggml.gguf");
        Files.write(p, GGML_FILE);
        try (Gguf g = Gguf.open(p)) {
            assertThat(g.version()).isEqualTo(3);
            assertThat(g.alignment()).isEqualTo(32);
            assertThat(g.dataOffset()).isEqualTo(1312); // what ggml's gguf_get_data_offset reported
            assertThat(g.metadata()).containsExactlyEntriesOf(expectedMetadata());
            assertThat(g.tensors())
                    .extracting(Gguf.TensorInfo::name)
                    .containsExactly(TENSORS.stream().map(Spec::name).toArray(String[]::new));
            long[] ggmlOffsets = {0, 448, 896, 928, 1568}; // gguf_get_tensor_offset
            for (int i = 0; i < TENSORS.size(); i++) {
                Spec s = TENSORS.get(i);
                Gguf.TensorInfo t = g.tensor(s.name());
                assertThat(t.type()).isEqualTo(s.type());
                assertThat(t.ne()).containsExactly(s.ne());
                assertThat(t.offset()).isEqualTo(ggmlOffsets[i]);
                assertThat(g.readBytes(s.name())).as(s.name()).isEqualTo(quantized(s));
            }
            assertThat(g.readFloats("blk.0.attn_norm.weight")).containsExactly(Arrays.copyOfRange(INPUT, 512, 519));
        }
    }

    @Test
    void writesTheBytesGgmlWrites() {
        GgufWriter w = new GgufWriter().putAll(expectedMetadata());
        for (Spec s : TENSORS) {
            w.addTensor(s.name(), s.ne(), s.type(), quantized(s));
        }
        assertThat(w.toBytes()).isEqualTo(GGML_FILE);
    }

    @Test
    void roundTripsNestedArraysOtherAlignmentsAndShapes() throws Exception {
        GgufValue nested = GgufValue.array(
                GgufValueType.ARRAY,
                List.of(
                        new GgufValue.GgufArray(GgufValueType.STRING, List.of("a", "bc")),
                        new GgufValue.GgufArray(GgufValueType.STRING, List.of())));
        byte[] q = GgmlQuants.quantize(GgmlType.Q5_K, Arrays.copyOf(INPUT, 1024), 4, 256);
        Path p = dir.resolve("out.gguf");
        new GgufWriter()
                .put("general.alignment", GgufValue.uint32(64))
                .put("nested", nested)
                .addTensor("a", new long[] {7}, GgmlType.F32, new byte[28])
                .addTensor("b", new long[] {256, 2, 2}, GgmlType.Q5_K, q)
                .addTensor("c", new long[] {32, 1}, GgmlType.Q8_0, out -> out.write(new byte[34]))
                .write(p);
        try (Gguf g = Gguf.open(p)) {
            assertThat(g.alignment()).isEqualTo(64);
            assertThat(g.dataOffset() % 64).isZero();
            assertThat(g.metadata().get("nested")).isEqualTo(nested);
            assertThat(g.tensor("b").offset()).isEqualTo(64);
            assertThat(g.tensor("b").ne()).containsExactly(256, 2, 2);
            assertThat(g.tensor("c").ne()).containsExactly(32, 1);
            assertThat(g.tensor("c").offset()).isEqualTo(64 + 704);
            assertThat(g.readBytes("b")).isEqualTo(q);
            assertThat(g.readFloats("b")).containsExactly(GgmlQuants.dequantize(GgmlType.Q5_K, q, 4, 256));
            assertThat(Files.size(p) % 64).isZero();
        }
        byte[] empty = new GgufWriter().put("k", GgufValue.bool(false)).toBytes();
        Gguf g = Gguf.parse(empty, "empty");
        assertThat(g.tensors()).isEmpty();
        assertThat(g.metadata()).containsOnlyKeys("k");
    }

    /**
     * Row blocks of F32, F16 and BF16 tensors, read with positional reads from a file, from bytes in memory and through
     * a split model, are the whole tensor's values; a quantized tensor and a range past the end are refused by name.
     */
    @Test
    void readsRowBlocksOfFloatTensorsAsTheWholeTensorHas() throws Exception {
        float[] values = Arrays.copyOf(INPUT, 6 * 40);
        GgufWriter w = new GgufWriter();
        for (GgmlType t : List.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16)) {
            w.addTensor(t.name(), new long[] {40, 6}, t, GgmlQuants.quantize(t, values, 6, 40));
        }
        w.addTensor("q", new long[] {32, 2}, GgmlType.Q8_0, GgmlQuants.quantize(GgmlType.Q8_0, values, 2, 32));
        Path p = dir.resolve("f.gguf");
        w.write(p);
        List<Path> split = w.writeSplit(dir.resolve("s.gguf"), 0, 1);
        assertThat(split).hasSize(4);
        try (Gguf file = Gguf.open(p);
                Gguf splitModel = Gguf.open(split.get(0))) {
            Gguf memory = Gguf.parse(Files.readAllBytes(p), "memory");
            for (Gguf g : List.of(file, memory, splitModel)) {
                for (GgmlType t : List.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16)) {
                    float[] whole = g.readFloats(t.name());
                    float[] dst = new float[2 + 3 * 40];
                    g.readFloats(t.name(), 2 * 40, 3 * 40, dst, 2);
                    assertThat(Arrays.copyOfRange(dst, 2, dst.length))
                            .as("%s, %s", g.source(), t)
                            .containsExactly(Arrays.copyOfRange(whole, 2 * 40, 5 * 40));
                }
                assertThatThrownBy(() -> g.readFloats("q", 0, 1, new float[1], 0))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("tensor 'q' is q8_0, not f32, f16 or bf16");
                assertThatThrownBy(() -> g.readFloats("F16", 200, 41, new float[41], 0))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("tensor 'F16': elements [200, 241) are outside its 240");
            }
        }
    }

    @Test
    void writerRefusesWhatGgmlCannotRead() {
        GgufWriter w = new GgufWriter();
        assertThatThrownBy(() -> w.addTensor("x".repeat(64), new long[] {32}, GgmlType.F32, new byte[128]))
                .hasMessageContaining("64 bytes or longer");
        assertThatThrownBy(() -> w.addTensor("w", new long[] {48, 2}, GgmlType.Q4_0, new byte[0]))
                .hasMessageContaining("row length 48 is not a multiple of the q4_0 block size 32");
        assertThatThrownBy(() -> w.addTensor("w", new long[] {1, 1, 1, 1, 1}, GgmlType.F32, new byte[4]))
                .hasMessageContaining("5 dimensions");
        assertThatThrownBy(() -> w.addTensor("w", new long[] {32}, GgmlType.Q8_0, new byte[33]))
                .hasMessageContaining("needs 34 bytes, got 33");
        assertThatThrownBy(() -> w.put("general.alignment", GgufValue.uint32(48)))
                .hasMessageContaining("power of two");
        assertThatThrownBy(() -> w.put("general.alignment", GgufValue.of(GgufValueType.UINT64, 32)))
                .hasMessageContaining("UINT32");
        w.addTensor("w", new long[] {32}, GgmlType.F32, new byte[128]);
        assertThatThrownBy(() -> w.addTensor("w", new long[] {32}, GgmlType.F32, new byte[128]))
                .hasMessageContaining("duplicate tensor name 'w'");
        assertThatThrownBy(() -> new GgufValue(GgufValueType.UINT8, 256L)).hasMessageContaining("UINT8");
    }
}
