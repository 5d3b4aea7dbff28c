package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * An ONNX model whose quantized form is over 2 GiB: a float32 table {@code [540000, 1024]} (2.2 GB, kept as it is, read
 * by a Gather) and four MatMul weights {@code [1024, 1024]} quantized to MatMulNBits, the input with external data. The
 * export writes {@code out.onnx} + {@code out.onnx.data} with the heap holding one tensor's values at most (the table
 * is copied file to file), and ONNX Runtime loads the pair and gives the table's rows and {@code x W} with the
 * dequantized weights. Writes about 4.5 GB to the temporary folder and takes minutes, so it runs only when asked, in
 * quant-core's default surefire execution alone (docs/onnx-export.md has the command and the figures).
 */
@EnabledIfSystemProperty(named = "quant4j.largeOnnx", matches = "true")
class OnnxLargeExportTest {

    static final int V = 540_000;
    static final int H = 1024;
    static final int K = 1024;
    static final int MATMULS = 4;

    @TempDir
    Path dir;

    /** The table's value at {@code (r, c)}: exact in float32, different in every row. */
    static float table(long r, int c) {
        return (float) ((r * 7 + c) % 4093) / 64f - 32f;
    }

    @Test
    void over2GiBOutputLoadsInOnnxRuntime() throws Exception {
        Path in = Files.createDirectory(dir.resolve("in")).resolve("big.onnx");
        Map<String, QuantizedTensor> weights = new LinkedHashMap<>();
        Map<String, FloatMatrix> dense = new LinkedHashMap<>();
        java.util.Random rnd = new java.util.Random(11);
        for (int m = 0; m < MATMULS; m++) {
            float[] w = new float[K * K];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) rnd.nextGaussian() * 0.05f;
            }
            // ONNX's W is [K, N]; quant4j's is its transpose [N, K]
            FloatMatrix onnxW = FloatMatrix.of("W" + m, K, K, w, 0);
            dense.put("W" + m, onnxW);
            weights.put(
                    "W" + m,
                    new RtnQuantizer(LinearScheme.asym(4, 128))
                            .quantize(onnxW.transpose().named("W" + m)));
        }
        writeInput(in, dense);

        long t0 = System.nanoTime();
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            p.resetPeakUsage();
        }
        Path out = Files.createDirectory(dir.resolve("out")).resolve("big-q.onnx");
        OnnxExport.write(out, OnnxModel.read(in), Files.readAllBytes(in), weights, 0);
        double seconds = (System.nanoTime() - t0) / 1e9;
        long peakHeap = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.HEAP) {
                peakHeap += p.getPeakUsage().getUsed();
            }
        }
        long dataSize = Files.size(out.resolveSibling("big-q.onnx.data"));
        System.out.printf(
                "OnnxLargeExportTest: export %.1f s, %d bytes of data (%d over 2^31), peak heap %d MB%n",
                seconds, dataSize, dataSize - (1L << 31), peakHeap >> 20);
        assertThat(dataSize).isGreaterThan(1L << 31);
        assertThat(Files.size(out)).isLessThan(1 << 20);
        // the table alone is 2.2 GB: the heap held far less
        assertThat(peakHeap).isLessThan(1L << 30);

        OnnxModel read = OnnxModel.read(out);
        OnnxModel.External table = read.initializer("table").external();
        assertThat(table.offset() % OnnxExternalData.ALIGNMENT).isZero();
        assertThat(table.length()).isEqualTo(4L * V * H);

        OrtEnvironment env = OrtEnvironment.getEnvironment();
        long[] ids = {0, 1, 123_457, V - 1};
        float[][] x = new float[1][K];
        for (int i = 0; i < K; i++) {
            x[0][i] = (float) Math.sin(i * 0.37);
        }
        long l0 = System.nanoTime();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions();
                OrtSession s = env.createSession(out.toString(), o);
                OnnxTensor idT = OnnxTensor.createTensor(env, ids);
                OnnxTensor xT = OnnxTensor.createTensor(env, x)) {
            Map<String, OnnxTensor> feed = new HashMap<>();
            feed.put("ids", idT);
            feed.put("x", xT);
            try (OrtSession.Result r = s.run(feed)) {
                float[][] e = (float[][]) r.get("e").orElseThrow().getValue();
                for (int j = 0; j < ids.length; j++) {
                    for (int c = 0; c < H; c++) {
                        assertThat(e[j][c]).isEqualTo(table(ids[j], c));
                    }
                }
                for (int m = 0; m < MATMULS; m++) {
                    float[][] y = (float[][]) r.get("y" + m).orElseThrow().getValue();
                    FloatMatrix q = weights.get("W" + m).dequantize(); // [N, K]
                    for (int n = 0; n < K; n++) {
                        double want = 0;
                        for (int k = 0; k < K; k++) {
                            want += (double) x[0][k] * q.get(n, k);
                        }
                        assertThat((double) y[0][n]).isCloseTo(want, within(1e-3));
                    }
                }
            }
        }
        System.out.printf(
                "OnnxLargeExportTest: ONNX Runtime load and run %.1f s, VmHWM %s%n",
                (System.nanoTime() - l0) / 1e9, vmHwm());
    }

    private static String vmHwm() throws java.io.IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM")) {
                return line.substring(6).trim();
            }
        }
        return "?";
    }

    /** {@code big.onnx} + {@code big.onnx.data}: the table, then the MatMul weights, written a chunk at a time. */
    private static void writeInput(Path model, Map<String, FloatMatrix> dense) throws Exception {
        Path data = model.resolveSibling("big.onnx.data");
        ProtoWriter g = new ProtoWriter();
        g.writeMessage(1, node("Gather", "table", "ids", "e"));
        for (int m = 0; m < MATMULS; m++) {
            g.writeMessage(1, node("MatMul", "x", "W" + m, "y" + m));
        }
        g.writeString(2, "big");
        long offset = 0;
        try (FileChannel ch = FileChannel.open(data, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer row = ByteBuffer.allocate(4 * H * 256).order(ByteOrder.LITTLE_ENDIAN);
            for (long r = 0; r < V; ) {
                row.clear();
                for (int i = 0; i < 256 && r < V; i++, r++) {
                    for (int c = 0; c < H; c++) {
                        row.putFloat(table(r, c));
                    }
                }
                row.flip();
                while (row.hasRemaining()) {
                    ch.write(row);
                }
            }
            g.writeMessage(5, external("table", new long[] {V, H}, 0, 4L * V * H));
            offset = 4L * V * H;
            for (Map.Entry<String, FloatMatrix> e : dense.entrySet()) {
                ByteBuffer w = ByteBuffer.allocate(4 * K * K).order(ByteOrder.LITTLE_ENDIAN);
                w.asFloatBuffer().put(e.getValue().toArray());
                while (w.hasRemaining()) {
                    ch.write(w);
                }
                g.writeMessage(5, external(e.getKey(), new long[] {K, K}, offset, 4L * K * K));
                offset += 4L * K * K;
            }
        }
        g.writeMessage(11, value("ids", 7, new long[] {-1}));
        g.writeMessage(11, value("x", 1, new long[] {1, K}));
        g.writeMessage(12, value("e", 1, new long[] {-1, H}));
        for (int m = 0; m < MATMULS; m++) {
            g.writeMessage(12, value("y" + m, 1, new long[] {1, K}));
        }
        ProtoWriter opset = new ProtoWriter();
        opset.writeString(1, "");
        opset.writeInt64(2, 17);
        ProtoWriter mp = new ProtoWriter();
        mp.writeInt64(1, 8);
        mp.writeMessage(8, opset);
        mp.writeMessage(7, g);
        Files.write(model, mp.toByteArray());
    }

    private static ProtoWriter node(String op, String a, String b, String y) {
        ProtoWriter n = new ProtoWriter();
        n.writeString(1, a);
        n.writeString(1, b);
        n.writeString(2, y);
        n.writeString(3, op + "_" + y);
        n.writeString(4, op);
        return n;
    }

    private static ProtoWriter external(String name, long[] dims, long offset, long length) {
        ProtoWriter t = new ProtoWriter();
        t.writePackedInt64(1, dims);
        t.writeInt64(2, OnnxModel.FLOAT);
        t.writeString(8, name);
        String[][] entries = {{"location", "big.onnx.data"}, {"offset", "" + offset}, {"length", "" + length}};
        for (String[] kv : entries) {
            ProtoWriter e = new ProtoWriter();
            e.writeString(1, kv[0]);
            e.writeString(2, kv[1]);
            t.writeMessage(13, e);
        }
        t.writeInt64(14, 1);
        return t;
    }

    /** A ValueInfoProto of a tensor of {@code type} and {@code dims} (-1: a named free dimension). */
    private static ProtoWriter value(String name, int type, long[] dims) {
        ProtoWriter shape = new ProtoWriter();
        for (long d : dims) {
            ProtoWriter dim = new ProtoWriter();
            if (d < 0) {
                dim.writeString(2, "n");
            } else {
                dim.writeInt64(1, d);
            }
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
}
