package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Initializers inside subgraphs (an {@code If}'s branches) written with external data: a model whose branches each hold
 * an initializer named {@code c} (as the main graph does, with other values) is saved with external data, then saved
 * again from that, and ONNX Runtime gives the single file's outputs for both branches every time.
 */
class OnnxSubgraphExternalDataTest {

    static final int N = 300; // 1,200 bytes a tensor: over the 1,024 that go to the data file

    @TempDir
    Path dir;

    private static byte[] floats(float base) {
        ByteBuffer b = ByteBuffer.allocate(4 * N).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < N; i++) {
            b.putFloat(base + i * 0.25f);
        }
        return b.array();
    }

    private static ProtoWriter tensor(String name, byte[] raw) {
        ProtoWriter t = new ProtoWriter();
        t.writeInt64(1, N);
        t.writeInt64(2, OnnxModel.FLOAT);
        t.writeString(8, name);
        t.writeBytes(9, raw);
        return t;
    }

    private static ProtoWriter node(String op, String a, String b, String y) {
        ProtoWriter n = new ProtoWriter();
        n.writeString(1, a);
        n.writeString(1, b);
        n.writeString(2, y);
        n.writeString(4, op);
        return n;
    }

    private static ProtoWriter value(String name, int type, boolean vector) {
        ProtoWriter shape = new ProtoWriter();
        if (vector) {
            ProtoWriter dim = new ProtoWriter();
            dim.writeInt64(1, N);
            shape.writeMessage(1, dim);
        }
        ProtoWriter tensor = new ProtoWriter();
        tensor.writeInt64(1, type);
        tensor.writeMessage(2, shape);
        ProtoWriter typeProto = new ProtoWriter();
        typeProto.writeMessage(1, tensor);
        ProtoWriter v = new ProtoWriter();
        v.writeString(1, name);
        v.writeMessage(2, typeProto);
        return v;
    }

    /** A branch: {@code out = op(x, c)}, its own initializer {@code c}. */
    private static ProtoWriter branch(String name, String op, float base, String out) {
        ProtoWriter g = new ProtoWriter();
        g.writeMessage(1, node(op, "x", "c", out));
        g.writeString(2, name);
        g.writeMessage(5, tensor("c", floats(base)));
        g.writeMessage(12, value(out, OnnxModel.FLOAT, true));
        return g;
    }

    private static ProtoWriter graphAttribute(String name, ProtoWriter graph) {
        ProtoWriter a = new ProtoWriter();
        a.writeString(1, name);
        a.writeMessage(6, graph);
        a.writeInt64(20, 5); // GRAPH
        return a;
    }

    /** {@code y = If(cond, then: x + c1, else: x - c2) * c}, each {@code c} its graph's own. */
    static byte[] model() {
        ProtoWriter ifNode = new ProtoWriter();
        ifNode.writeString(1, "cond");
        ifNode.writeString(2, "branch");
        ifNode.writeString(3, "if");
        ifNode.writeString(4, "If");
        ifNode.writeMessage(5, graphAttribute("then_branch", branch("then", "Add", 1f, "t")));
        ifNode.writeMessage(5, graphAttribute("else_branch", branch("else", "Sub", -7f, "e")));
        ProtoWriter g = new ProtoWriter();
        g.writeMessage(1, ifNode);
        g.writeMessage(1, node("Mul", "branch", "c", "y"));
        g.writeString(2, "main");
        g.writeMessage(5, tensor("c", floats(3f)));
        g.writeMessage(11, value("cond", 9, false)); // BOOL scalar
        g.writeMessage(11, value("x", OnnxModel.FLOAT, true));
        g.writeMessage(12, value("y", OnnxModel.FLOAT, true));
        ProtoWriter opset = new ProtoWriter();
        opset.writeString(1, "");
        opset.writeInt64(2, 17);
        ProtoWriter m = new ProtoWriter();
        m.writeInt64(1, 8);
        m.writeMessage(8, opset);
        m.writeMessage(7, g);
        return m.toByteArray();
    }

    /** ONNX Runtime's {@code y} for both values of {@code cond}, the model loaded from its path. */
    static float[][] run(Path model) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        float[] x = new float[N];
        for (int i = 0; i < N; i++) {
            x[i] = (float) Math.cos(i);
        }
        float[][] out = new float[2][];
        try (OrtSession s = env.createSession(model.toString(), new OrtSession.SessionOptions())) {
            for (int c = 0; c < 2; c++) {
                try (OnnxTensor cond = OnnxTensor.createTensor(env, c == 1);
                        OnnxTensor xt = OnnxTensor.createTensor(env, x);
                        OrtSession.Result r = s.run(Map.of("cond", cond, "x", xt))) {
                    out[c] = (float[]) r.get(0).getValue();
                }
            }
        }
        return out;
    }

    @Test
    void subgraphInitializersGoToTheDataFileAndComeBack() throws Exception {
        byte[] bytes = model();
        Path single = Files.createDirectory(dir.resolve("single")).resolve("m.onnx");
        Files.write(single, bytes);
        float[][] reference = run(single);
        assertThat(reference[0]).isNotEqualTo(reference[1]);

        // the single file saved with external data: the branches' initializers go to the data file too
        Path ext = Files.createDirectory(dir.resolve("ext")).resolve("m.onnx");
        OnnxExternalData.write(ext, "m.onnx", bytes, OnnxModel.parse("m.onnx", bytes));
        assertThat(Files.size(ext.resolveSibling("m.onnx.data"))).isGreaterThanOrEqualTo(2L * 4096 + 4 * N);
        assertThat(Files.size(ext)).isLessThan(1024);
        assertThat(run(ext)).isDeepEqualTo(reference);

        // and saved again from there: each branch's values are copied from its own range of the input's data file,
        // though all three initializers are named c
        Path again = Files.createDirectory(dir.resolve("again")).resolve("n.onnx");
        byte[] extBytes = Files.readAllBytes(ext);
        OnnxExternalData.write(again, "m.onnx", extBytes, OnnxModel.read(ext));
        assertThat(new String(Files.readAllBytes(again), java.nio.charset.StandardCharsets.ISO_8859_1))
                .contains("n.onnx.data")
                .doesNotContain("m.onnx.data");
        assertThat(Files.mismatch(again.resolveSibling("n.onnx.data"), ext.resolveSibling("m.onnx.data")))
                .isEqualTo(-1);
        Files.delete(ext.resolveSibling("m.onnx.data"));
        assertThat(run(again)).isDeepEqualTo(reference);
    }
}
