package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The ONNX reader against protobuf bytes built here field by field (so every value is known), against hostile and
 * truncated input, and against the real all-MiniLM-L6-v2 model, whose figures were read with the {@code onnx} Python
 * package ({@code numpy_helper.to_array}, sums in float64).
 */
class OnnxModelTest {

    /** A protobuf message under construction: the wire format, written by hand. */
    static final class Proto {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Proto varint(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
            return this;
        }

        Proto key(int field, int wire) {
            return varint((long) field << 3 | wire);
        }

        Proto intField(int field, long v) {
            return key(field, 0).varint(v);
        }

        Proto bytesField(int field, byte[] b) {
            key(field, 2).varint(b.length);
            out.writeBytes(b);
            return this;
        }

        Proto string(int field, String s) {
            return bytesField(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Proto message(int field, Proto m) {
            return bytesField(field, m.bytes());
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }

    static byte[] le(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        return b.array();
    }

    static Proto rawFloatTensor(String name, float[] values, long... dims) {
        Proto t = new Proto();
        for (long d : dims) {
            t.intField(1, d); // unpacked dims
        }
        return t.intField(2, OnnxModel.FLOAT).string(8, name).bytesField(9, le(values));
    }

    static byte[] smallModel() {
        Proto packedDims = new Proto().varint(2).varint(3);
        Proto packedFloats = new Proto();
        for (float f : new float[] {1.5f, -2f, 0.25f}) {
            packedFloats.out.writeBytes(le(f));
        }
        Proto graph = new Proto()
                .string(2, "tiny")
                .message(
                        1,
                        new Proto()
                                .string(1, "x")
                                .string(1, "W")
                                .string(2, "y")
                                .string(3, "/fc/MatMul")
                                .string(4, "MatMul")
                                .bytesField(5, new byte[] {0x0A, 0x01, 'a'})) // an attribute: skipped
                .message(5, rawFloatTensor("W", new float[] {1, 2, 3, 4, 5, 6}, 2, 3))
                .message(
                        5,
                        new Proto()
                                .bytesField(1, packedDims.bytes())
                                .intField(2, 1)
                                .string(8, "P")
                                .bytesField(4, packedFloats.bytes())
                                .bytesField(4, le(7f, 8f, 9f)))
                .message(
                        5,
                        new Proto()
                                .intField(1, 2)
                                .intField(2, 7)
                                .string(8, "ids")
                                .bytesField(9, new byte[16]))
                .message(11, new Proto().string(1, "x"))
                .message(12, new Proto().string(1, "y"));
        return new Proto()
                .intField(1, 8) // ir_version
                .string(2, "quant4j-test") // producer_name
                .message(7, graph)
                .bytes();
    }

    @Test
    void readsNodesInitializersInputsAndOutputs() {
        OnnxModel m = OnnxModel.parse("tiny.onnx", smallModel());
        assertThat(m.nodes())
                .containsExactly(new OnnxModel.Node("/fc/MatMul", "MatMul", List.of("x", "W"), List.of("y")));
        assertThat(m.inputs()).containsExactly("x");
        assertThat(m.outputs()).containsExactly("y");
        assertThat(m.initializers().keySet()).containsExactly("W", "P", "ids");
        assertThat(m.initializer("W").dims()).containsExactly(2, 3);
        assertThat(m.initializer("W").matrix().get(1, 0)).isEqualTo(4f);
        assertThat(m.initializer("W").matrix().get(0, 2)).isEqualTo(3f);
        // packed dims, float_data in two packed runs
        assertThat(m.initializer("P").floats()).containsExactly(1.5f, -2f, 0.25f, 7f, 8f, 9f);
        assertThat(m.initializer("ids").dataType()).isEqualTo(7);
        assertThatThrownBy(() -> m.initializer("ids").floats())
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage("tiny.onnx: initializer 'ids' has ONNX data type INT64, not FLOAT");
        assertThatThrownBy(() -> m.initializer("nope")).hasMessage("tiny.onnx: no initializer named 'nope'");
    }

    /** Every prefix of a valid model either parses (it ends between fields) or is a clear error: never a crash. */
    @Test
    void everyTruncationIsAClearErrorOrAShorterModel() {
        byte[] full = smallModel();
        for (int n = 0; n < full.length; n++) {
            byte[] cut = java.util.Arrays.copyOf(full, n);
            try {
                OnnxModel.parse("cut.onnx", cut);
            } catch (MalformedTensorFileException e) {
                assertThat(e.getMessage()).startsWith("cut.onnx: ");
            }
        }
        assertThatThrownBy(() -> OnnxModel.parse("cut.onnx", java.util.Arrays.copyOf(full, full.length - 3)))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("runs past the end of the ModelProto");
    }

    @Test
    void hostileTensorsAreClearErrors() {
        assertThat(error(new Proto().intField(1, 8).bytes())).isEqualTo("bad.onnx: no graph (not an ONNX model?)");
        // a length far past the end
        assertThat(error(new Proto().key(7, 2).varint(1L << 40).bytes()))
                .contains("length 1099511627776 runs past the end of the ModelProto");
        // ten continuation bytes
        assertThat(error(new byte[] {
                    (byte) 0x80,
                    (byte) 0x80,
                    (byte) 0x80,
                    (byte) 0x80,
                    (byte) 0x80,
                    (byte) 0x80,
                    (byte) 0x80,
                    (byte) 0x80,
                    (byte) 0x80,
                    (byte) 0x80,
                    1
                }))
                .contains("varint longer than 10 bytes");
        assertThat(error(graphWith(new Proto()
                        .intField(1, 2)
                        .intField(1, 3)
                        .intField(2, 1)
                        .string(8, "W")
                        .bytesField(9, le(1, 2, 3, 4, 5)))))
                .isEqualTo("bad.onnx: initializer 'W' of shape [2, 3] needs 24 bytes of raw_data, has 20");
        assertThat(error(graphWith(new Proto().intField(1, -4).intField(2, 1).string(8, "N"))))
                .isEqualTo("bad.onnx: initializer 'N' has dimension 0 = -4");
        assertThat(error(graphWith(new Proto()
                        .intField(1, 1L << 20)
                        .intField(1, 1L << 20)
                        .intField(2, 1)
                        .string(8, "Huge"))))
                .isEqualTo("bad.onnx: initializer 'Huge' has more than 2^31 elements");
        assertThat(error(graphWith(
                        new Proto().intField(1, 2).intField(2, 1).string(8, "E").intField(14, 1))))
                .isEqualTo("bad.onnx: initializer 'E' is stored as external data without a location");
        assertThat(error(graphWith(new Proto().intField(2, 1).string(8, "S").bytesField(3, new byte[0]))))
                .contains("tensor 'S' stored in segments");
        assertThat(error(graphWith(
                        new Proto().intField(1, 2).intField(2, 1).string(8, "F").bytesField(4, le(1f)))))
                .isEqualTo("bad.onnx: initializer 'F' of shape [2] has 1 float_data values, needs 2");
        Proto t = rawFloatTensor("D", new float[] {1}, 1);
        assertThat(error(new Proto()
                        .message(7, new Proto().message(5, t).message(5, t))
                        .bytes()))
                .startsWith("bad.onnx: two initializers named 'D'");
        assertThat(error(new Proto().key(7, 3).bytes())).contains("unsupported wire type 3");
    }

    /**
     * Initializers of every type a safetensors file can hold keep their values as little-endian bytes, from raw_data
     * and from the typed fields (int32_data for the small integers, BOOL and the bits of FLOAT16; int64_data; double_data
     * as fixed64; uint64_data), packed or not; a type without a safetensors dtype is named when its bytes are asked for.
     */
    @Test
    void nonFloatInitializersKeepTheirBytes() {
        Proto packedInt64 = new Proto().varint(0).varint(1).varint(-3L); // a negative int64 is a 10-byte varint
        ByteBuffer doubles = ByteBuffer.allocate(16)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putDouble(1.5)
                .putDouble(-2);
        Proto graph = new Proto()
                .message(
                        5,
                        new Proto()
                                .intField(1, 3)
                                .intField(2, 7)
                                .string(8, "ids")
                                .bytesField(7, packedInt64.bytes()))
                .message(
                        5,
                        new Proto()
                                .intField(1, 2)
                                .intField(2, 2)
                                .string(8, "u8")
                                .intField(5, 200)
                                .intField(5, 7))
                .message(
                        5,
                        new Proto()
                                .intField(1, 2)
                                .intField(2, 10)
                                .string(8, "half")
                                .intField(5, 0x3C00)
                                .intField(5, 0xC000))
                .message(
                        5,
                        new Proto()
                                .intField(1, 2)
                                .intField(2, 11)
                                .string(8, "dbl")
                                .bytesField(10, doubles.array()))
                .message(
                        5,
                        new Proto()
                                .intField(1, 1)
                                .intField(2, 13)
                                .string(8, "u64")
                                .intField(11, -1L))
                .message(
                        5,
                        new Proto()
                                .intField(1, 2)
                                .intField(2, 6)
                                .string(8, "raw")
                                .bytesField(9, new byte[] {1, 0, 0, 0, -1, -1, -1, -1}))
                .message(
                        5,
                        new Proto()
                                .intField(1, 1)
                                .intField(2, 8)
                                .string(8, "str")
                                .bytesField(6, new byte[] {'a'}));
        OnnxModel m = OnnxModel.parse("t.onnx", new Proto().message(7, graph).bytes());
        ByteBuffer ids = ByteBuffer.allocate(24)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putLong(0)
                .putLong(1)
                .putLong(-3);
        assertThat(m.initializer("ids").dtype()).isEqualTo(DType.I64);
        assertThat(m.initializer("ids").bytes()).containsExactly(ids.array());
        assertThat(m.initializer("u8").dtype()).isEqualTo(DType.U8);
        assertThat(m.initializer("u8").bytes()).containsExactly((byte) 200, (byte) 7);
        assertThat(m.initializer("half").dtype()).isEqualTo(DType.F16);
        assertThat(m.initializer("half").bytes()).containsExactly(0x00, 0x3C, 0x00, 0xC0);
        assertThat(m.initializer("dbl").dtype()).isEqualTo(DType.F64);
        assertThat(m.initializer("dbl").bytes()).containsExactly(doubles.array());
        assertThat(m.initializer("u64").bytes()).containsExactly(-1, -1, -1, -1, -1, -1, -1, -1);
        assertThat(m.initializer("raw").dtype()).isEqualTo(DType.I32);
        assertThat(m.initializer("raw").bytes()).containsExactly(1, 0, 0, 0, -1, -1, -1, -1);
        assertThat(m.initializer("str").dtype()).isNull();
        assertThatThrownBy(() -> m.initializer("str").bytes())
                .hasMessage("t.onnx: initializer 'str' is of ONNX type STRING, which a .safetensors file cannot hold");
        // counts and lengths are checked against the shape
        assertThat(error(graphWith(new Proto()
                        .intField(1, 3)
                        .intField(2, 7)
                        .string(8, "ids")
                        .intField(7, 1))))
                .contains("initializer 'ids' of shape [3] and type INT64 has 1 values, needs 3");
        assertThat(error(graphWith(
                        new Proto().intField(1, 3).intField(2, 6).string(8, "r").bytesField(9, new byte[8]))))
                .contains("initializer 'r' of shape [3] and type INT32 needs 12 bytes of raw_data, has 8");
    }

    private static byte[] graphWith(Proto tensor) {
        return new Proto().message(7, new Proto().message(5, tensor)).bytes();
    }

    private static String error(byte[] bytes) {
        try {
            OnnxModel.parse("bad.onnx", bytes);
        } catch (MalformedTensorFileException e) {
            return e.getMessage();
        }
        throw new AssertionError("parsed without error");
    }

    /** The real model: 102 initializers (101 FLOAT), 637 nodes, 36 MatMul weights [in, out]; values as onnx reads them. */
    @Test
    void readsTheRealMiniLmModel() throws IOException {
        OnnxModel m = OnnxModel.parse("all-minilm-l6-v2.onnx", realModel());
        assertThat(m.nodes()).hasSize(637);
        assertThat(m.initializers()).hasSize(102);
        assertThat(m.inputs()).containsExactly("input_ids", "attention_mask", "token_type_ids");
        assertThat(m.outputs()).containsExactly("last_hidden_state");
        assertThat(m.initializers().values().stream().filter(t -> t.dataType() == OnnxModel.FLOAT))
                .hasSize(101);
        Map<String, String> weightOf = m.nodes().stream()
                .filter(n -> n.opType().equals("MatMul")
                        && m.initializers().containsKey(n.inputs().get(1)))
                .collect(Collectors.toMap(OnnxModel.Node::name, n -> n.inputs().get(1)));
        assertThat(weightOf).hasSize(36);
        assertThat(m.matMulWeights()).isEqualTo(weightOf);
        assertThat(m.initializer("embeddings.word_embeddings.weight").elements())
                .isEqualTo(30522L * 384);
        assertThat(weightOf.get("/encoder/layer.0/attention/self/query/MatMul")).isEqualTo("onnx::MatMul_787");
        assertThat(weightOf.get("/encoder/layer.5/output/dense/MatMul")).isEqualTo("onnx::MatMul_864");
        var q = m.initializer("onnx::MatMul_787").matrix();
        assertThat(q.rows()).isEqualTo(384);
        assertThat(q.cols()).isEqualTo(384);
        assertThat(q.get(0, 0)).isEqualTo(-0.1486196219921112f);
        assertThat(q.get(383, 383)).isEqualTo(-0.08523893356323242f);
        assertThat(sum(q.array())).isCloseTo(13.52819408863644, within(1e-9));
        var out = m.initializer("onnx::MatMul_864").matrix();
        assertThat(out.rows()).isEqualTo(1536);
        assertThat(out.cols()).isEqualTo(384);
        assertThat(sum(out.array())).isCloseTo(-53.19849107446487, within(1e-9));
        assertThat(sum(m.initializer("embeddings.LayerNorm.weight").floats()))
                .isCloseTo(236.85435231029987, within(1e-9));
        assertThat(m.initializer("embeddings.word_embeddings.weight").dims()).containsExactly(30522, 384);
    }

    static byte[] realModel() throws IOException {
        try (InputStream in = OnnxModelTest.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
            assertThat(in)
                    .as("all-minilm-l6-v2.onnx on the test class path (langchain4j artifact)")
                    .isNotNull();
            return in.readAllBytes();
        }
    }

    private static double sum(float[] a) {
        double s = 0;
        for (float v : a) {
            s += v;
        }
        return s;
    }
}
