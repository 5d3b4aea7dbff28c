package dev.quant4j.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;

/**
 * Writes an ONNX model of float32 MatMul weights with its initializers in an external data file, for measuring {@code
 * quant quantize --format onnx} on models of real size:
 *
 * <pre>
 * java -cp quant-bench/target/benchmarks.jar dev.quant4j.bench.SyntheticOnnx OUT_DIR LAYERS [HIDDEN [MLP [SEED]]]
 * </pre>
 *
 * <p>{@code OUT_DIR/model.onnx} and {@code OUT_DIR/model.onnx.data}: input {@code x [1, HIDDEN]}, then per layer an MLP
 * without its activation, {@code MatMul(x, up [HIDDEN, MLP])} and {@code MatMul(., down [MLP, HIDDEN])} (ONNX's {@code
 * [in, out]}), the last product the output. The defaults 4096 and 11008 are Llama-2-7B's MLP shapes (180 MB a weight);
 * 7 layers are 2.5 GB. Weights are uniform in {@code [-0.02, 0.02)} from a xorshift generator (the same seed, the same
 * files), written tensor by tensor at 4096-aligned offsets (the layout quant4j writes); the heap holds one row block.
 *
 * <p>Followed: onnx/onnx {@code onnx/onnx.proto} ({@code ModelProto.ir_version} = 1, {@code graph} = 7, {@code
 * opset_import} = 8; {@code GraphProto.node} = 1, {@code name} = 2, {@code initializer} = 5, {@code input} = 11,
 * {@code output} = 12; {@code NodeProto.input} = 1, {@code output} = 2, {@code name} = 3, {@code op_type} = 4; {@code
 * TensorProto.dims} = 1, {@code data_type} = 2, {@code name} = 8, {@code external_data} = 13, {@code data_location} =
 * 14; {@code ValueInfoProto.name} = 1, {@code type} = 2; {@code TypeProto.tensor_type} = 1; {@code elem_type} = 1,
 * {@code shape} = 2; {@code TensorShapeProto.dim} = 1, {@code dim_value} = 1) and {@code docs/ExternalData.md}.
 */
public final class SyntheticOnnx {

    private SyntheticOnnx() {}

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: SyntheticOnnx OUT_DIR LAYERS [HIDDEN [MLP [SEED]]]");
            System.exit(2);
        }
        Path dir = Path.of(args[0]);
        int layers = Integer.parseInt(args[1]);
        int hidden = args.length > 2 ? Integer.parseInt(args[2]) : 4096;
        int mlp = args.length > 3 ? Integer.parseInt(args[3]) : 11008;
        long seed = args.length > 4 ? Long.parseLong(args[4]) : 1;
        long bytes = write(dir, layers, hidden, mlp, seed);
        System.out.printf(
                Locale.ROOT,
                "wrote %s/model.onnx and model.onnx.data (%d MatMul weights, %.2f GB)%n",
                dir,
                2 * layers,
                bytes / 1e9);
    }

    /** Writes the model into {@code dir} (created if needed); returns the data file's size. */
    public static long write(Path dir, int layers, int hidden, int mlp, long seed) throws IOException {
        Files.createDirectories(dir);
        Path data = dir.resolve("model.onnx.data");
        Proto graph = new Proto();
        String x = "x";
        for (int l = 0; l < layers; l++) {
            String u = "u" + l;
            String y = "x" + (l + 1);
            graph.message(1, node("MatMul_up" + l, x, "layers." + l + ".up.weight", u));
            graph.message(1, node("MatMul_down" + l, u, "layers." + l + ".down.weight", y));
            x = y;
        }
        graph.string(2, "synthetic");
        long offset = 0;
        long[] state = {seed * 0x9E3779B97F4A7C15L | 1};
        try (FileChannel ch = FileChannel.open(
                data, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            for (int l = 0; l < layers; l++) {
                for (boolean up : new boolean[] {true, false}) {
                    int rows = up ? hidden : mlp;
                    int cols = up ? mlp : hidden;
                    offset = (offset + 4095) / 4096 * 4096;
                    long length = 4L * rows * cols;
                    ByteBuffer block = ByteBuffer.allocate(4 * cols * 64).order(ByteOrder.LITTLE_ENDIAN);
                    long at = offset;
                    for (int r = 0; r < rows; ) {
                        block.clear();
                        for (int i = 0; i < 64 && r < rows; i++, r++) {
                            for (int c = 0; c < cols; c++) {
                                block.putFloat(uniform(state));
                            }
                        }
                        block.flip();
                        while (block.hasRemaining()) {
                            at += ch.write(block, at);
                        }
                    }
                    String name = "layers." + l + (up ? ".up" : ".down") + ".weight";
                    graph.message(5, external(name, rows, cols, offset, length));
                    offset += length;
                }
            }
        }
        graph.message(11, value("x", hidden));
        graph.message(12, value(x, hidden));
        Proto opset = new Proto();
        opset.string(1, "");
        opset.varint(2, 17);
        Proto model = new Proto();
        model.varint(1, 8);
        model.message(8, opset);
        model.message(7, graph);
        Files.write(dir.resolve("model.onnx"), model.bytes());
        return offset;
    }

    /** Uniform in [-0.02, 0.02) from xorshift64. */
    private static float uniform(long[] s) {
        long v = s[0];
        v ^= v << 13;
        v ^= v >>> 7;
        v ^= v << 17;
        s[0] = v;
        return ((v >>> 40) * 0x1.0p-24f - 0.5f) * 0.04f;
    }

    private static Proto node(String name, String a, String b, String y) {
        Proto n = new Proto();
        n.string(1, a);
        n.string(1, b);
        n.string(2, y);
        n.string(3, name);
        n.string(4, "MatMul");
        return n;
    }

    private static Proto external(String name, int rows, int cols, long offset, long length) {
        Proto t = new Proto();
        t.varint(1, rows);
        t.varint(1, cols);
        t.varint(2, 1); // FLOAT
        t.string(8, name);
        String[][] entries = {{"location", "model.onnx.data"}, {"offset", "" + offset}, {"length", "" + length}};
        for (String[] kv : entries) {
            Proto e = new Proto();
            e.string(1, kv[0]);
            e.string(2, kv[1]);
            t.message(13, e);
        }
        t.varint(14, 1); // EXTERNAL
        return t;
    }

    /** A ValueInfoProto of a float tensor {@code [1, width]}. */
    private static Proto value(String name, int width) {
        Proto shape = new Proto();
        for (long d : new long[] {1, width}) {
            Proto dim = new Proto();
            dim.varint(1, d);
            shape.message(1, dim);
        }
        Proto tensor = new Proto();
        tensor.varint(1, 1);
        tensor.message(2, shape);
        Proto type = new Proto();
        type.message(1, tensor);
        Proto v = new Proto();
        v.string(1, name);
        v.message(2, type);
        return v;
    }

    /** The protobuf wire format's varint and length-delimited fields. */
    private static final class Proto {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        private void raw(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
        }

        void varint(int field, long v) {
            raw((long) field << 3);
            raw(v);
        }

        void bytes(int field, byte[] b) {
            raw((long) field << 3 | 2);
            raw(b.length);
            out.writeBytes(b);
        }

        void string(int field, String s) {
            bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        void message(int field, Proto m) {
            bytes(field, m.bytes());
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }
}
