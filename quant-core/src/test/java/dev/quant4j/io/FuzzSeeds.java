package dev.quant4j.io;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes the fuzz targets' seed corpora: small valid files of every kind each reader takes, in the folders Jazzer
 * replays ({@code src/test/resources/<package>/<Target>Inputs/fuzz/seed-*}). Run from {@code quant-core} after a
 * change to a format: {@code java -cp target/classes:target/test-classes dev.quant4j.io.FuzzSeeds} (with {@code
 * --add-modules jdk.incubator.vector}).
 */
public final class FuzzSeeds {

    private static final Path RESOURCES = Path.of("src/test/resources/dev/quant4j");

    private FuzzSeeds() {}

    public static void main(String[] args) throws IOException {
        npy(RESOURCES.resolve("io/NpyFuzzTestInputs/fuzz"));
        safetensors(RESOURCES.resolve("io/SafeTensorsFuzzTestInputs/fuzz"));
        quantized(RESOURCES.resolve("io/QuantizedSafeTensorsFuzzTestInputs/fuzz"));
        onnx(RESOURCES.resolve("io/OnnxModelFuzzTestInputs/fuzz"));
        tokenizer(RESOURCES.resolve("model/TokenizerJsonFuzzTestInputs/fuzz"));
    }

    private static void seed(Path dir, String name, byte[] bytes) throws IOException {
        Files.createDirectories(dir);
        Files.write(dir.resolve("seed-" + name), bytes);
    }

    private static void npy(Path dir) throws IOException {
        float[] six = {1f, -2.5f, 0f, Float.NaN, 1e-8f, 65504f};
        seed(dir, "f4-2x3.npy", Npy.toBytes(new long[] {2, 3}, six));
        seed(dir, "f4-1d.npy", Npy.toBytes(new long[] {4}, new float[] {1, 2, 3, 4}));
        seed(dir, "f4-scalar.npy", Npy.toBytes(new long[] {}, new float[] {7}));
        seed(dir, "f4-empty.npy", Npy.toBytes(new long[] {0, 3}, new float[0]));
        seed(dir, "f4-3d.npy", Npy.toBytes(new long[] {2, 1, 2}, new float[] {1, 2, 3, 4}));
        // version 2.0, big-endian, Fortran order; version 3.0 float16
        seed(dir, "v2-be-fortran.npy", npyFile(2, "{'descr': '>f4', 'fortran_order': True, 'shape': (2, 2), }", 16));
        seed(dir, "v3-f2.npy", npyFile(3, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", 6));
    }

    private static byte[] npyFile(int major, String dict, int dataBytes) {
        byte[] h = (dict + "\n").getBytes(StandardCharsets.UTF_8);
        int lenBytes = major == 1 ? 2 : 4;
        ByteBuffer b = ByteBuffer.allocate(8 + lenBytes + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, 0});
        if (major == 1) {
            b.putShort((short) h.length);
        } else {
            b.putInt(h.length);
        }
        b.put(h);
        for (int i = 0; i < dataBytes; i++) {
            b.put((byte) (0x3C + i));
        }
        return b.array();
    }

    private static void safetensors(Path dir) throws IOException {
        ByteBuffer f16 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : new float[] {1f, -0.5f, 2f, 0.25f}) {
            f16.putShort(Float.floatToFloat16(v));
        }
        seed(
                dir,
                "mixed.safetensors",
                new SafeTensorsWriter()
                        .metadata("format", "pt")
                        .addF32("w", new long[] {2, 2}, new float[] {1, 2, 3, 4})
                        .add("h", DType.F16, new long[] {2, 2}, f16.array())
                        .add("b", DType.BF16, new long[] {1, 2}, new byte[] {(byte) 0x80, 0x3F, 0, (byte) 0xC0})
                        .add("ids", DType.I64, new long[] {1}, new byte[] {7, 0, 0, 0, 0, 0, 0, 0})
                        .add("mask", DType.BOOL, new long[] {2}, new byte[] {1, 0})
                        .toBytes());
        seed(
                dir,
                "scalar-and-empty.safetensors",
                new SafeTensorsWriter()
                        .addF32("s", new long[] {}, new float[] {3})
                        .addF32("e", new long[] {0, 4}, new float[0])
                        .toBytes());
        seed(dir, "no-tensors.safetensors", new SafeTensorsWriter().toBytes());
    }

    private static void quantized(Path dir) throws IOException {
        FloatMatrix w = Gaussian.matrix("w", 1, 4, 32, 1.0);
        seed(
                dir,
                "rtn-asym4-g16.safetensors",
                quantizedFile("rtn", new RtnQuantizer(LinearScheme.asym(4, 16)).quantize(w)));
        seed(
                dir,
                "rtn-sym3-channel.safetensors",
                quantizedFile("rtn", new RtnQuantizer(LinearScheme.sym(3, -1)).quantize(w)));
        seed(
                dir,
                "rtn-signed8-tensor.safetensors",
                quantizedFile("rtn", new RtnQuantizer(LinearScheme.signed(8, 0)).quantize(w)));
        seed(
                dir,
                "rtn-asym2-g8.safetensors",
                quantizedFile("rtn", new RtnQuantizer(LinearScheme.asym(2, 8)).quantize(w)));
        FloatMatrix x = Gaussian.matrix("x", 2, 64, 32, 1.0);
        HessianAccumulator h = new HessianAccumulator("w", 32);
        h.add(x);
        seed(
                dir,
                "gptq-act-order.safetensors",
                quantizedFile(
                        "gptq",
                        new Gptq(GptqConfig.defaults(4).withGroupSize(16).withActOrder(true))
                                .quantize(w, h)
                                .tensor()));
        AwqStatistics stats = new AwqStatistics("w", 32, 64);
        stats.add(x);
        seed(
                dir,
                "awq.safetensors",
                quantizedFile(
                        "awq",
                        new Awq(AwqConfig.defaults(4).withGroupSize(16))
                                .quantize(w, stats)
                                .tensor()));
        seed(dir, "nf4.safetensors", quantizedFile("nf4", new BlockwiseQuantizer(CodebookScheme.nf4(32)).quantize(w)));
        seed(
                dir,
                "fp4-double-quant.safetensors",
                quantizedFile(
                        "fp4", new BlockwiseQuantizer(CodebookScheme.fp4(32).withDoubleQuant()).quantize(w)));
    }

    private static byte[] quantizedFile(String method, QuantizedWeight q) {
        QuantizedSafeTensors.PassThrough bias = new QuantizedSafeTensors.PassThrough(
                "bias", DType.F32, new long[] {1}, new byte[] {0, 0, (byte) 0x80, 0x3F});
        return QuantizedSafeTensors.toBytes(
                List.of(q), method, List.of(bias), method.equals("rtn") ? Set.of(q.name()) : Set.of());
    }

    private static void onnx(Path dir) throws IOException {
        ProtoWriter graph = new ProtoWriter();
        graph.writeRaw(key(1));
        graph.writeRaw(
                lengthPrefixed(OnnxRewriter.node("mm", "MatMul", "", List.of("x", "W"), List.of("y"), Map.of())));
        graph.writeRaw(key(1));
        graph.writeRaw(lengthPrefixed(
                OnnxRewriter.node("add", "Add", "", List.of("y", "b"), List.of("z"), Map.of("axis", 1L))));
        ByteBuffer w = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 6; i++) {
            w.putFloat(i - 2.5f);
        }
        graph.writeRaw(key(5));
        graph.writeRaw(lengthPrefixed(OnnxRewriter.tensor("W", OnnxModel.FLOAT, new long[] {2, 3}, w.array())));
        // float_data (packed) instead of raw_data
        ProtoWriter b = new ProtoWriter();
        b.writePackedInt64(1, new long[] {3});
        b.writeInt64(2, OnnxModel.FLOAT);
        ByteBuffer floats = ByteBuffer.allocate(12)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putFloat(1)
                .putFloat(2)
                .putFloat(3);
        b.writeBytes(4, floats.array());
        b.writeString(8, "b");
        graph.writeMessage(5, b);
        // INT64 in int64_data (packed varints), a FLOAT16 in raw_data
        ProtoWriter ids = new ProtoWriter();
        ids.writePackedInt64(1, new long[] {2});
        ids.writeInt64(2, OnnxModel.INT64);
        ids.writePackedInt64(7, new long[] {5, -1});
        ids.writeString(8, "ids");
        graph.writeMessage(5, ids);
        graph.writeRaw(key(5));
        graph.writeRaw(
                lengthPrefixed(OnnxRewriter.tensor("h", 10, new long[] {2}, new byte[] {0, 0x3C, 0, (byte) 0xC0})));
        for (int field : new int[] {11, 12}) {
            ProtoWriter v = new ProtoWriter();
            v.writeString(1, field == 11 ? "x" : "z");
            graph.writeMessage(field, v);
        }
        ProtoWriter model = new ProtoWriter();
        model.writeInt64(1, 8); // ir_version
        ProtoWriter opset = new ProtoWriter();
        opset.writeString(1, "");
        opset.writeInt64(2, 17);
        model.writeMessage(8, opset);
        model.writeMessage(7, graph);
        seed(dir, "matmul-add.onnx", model.toByteArray());
    }

    private static byte[] key(int field) {
        ProtoWriter k = new ProtoWriter();
        k.writeKey(field, ProtoReader.LEN);
        return k.toByteArray();
    }

    private static byte[] lengthPrefixed(byte[] message) {
        ProtoWriter p = new ProtoWriter();
        p.writeVarint(message.length);
        p.writeRaw(message);
        return p.toByteArray();
    }

    private static void tokenizer(Path dir) throws IOException {
        String json = """
                {"version":"1.0","truncation":{"direction":"Right","max_length":16,"strategy":"LongestFirst"},
                 "added_tokens":[{"id":0,"content":"[PAD]","special":true},{"id":1,"content":"[UNK]","special":true},
                  {"id":2,"content":"[CLS]","special":true},{"id":3,"content":"[SEP]","special":true},
                  {"id":4,"content":"[MASK]","special":true}],
                 "normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,
                  "strip_accents":null,"lowercase":true},
                 "pre_tokenizer":{"type":"BertPreTokenizer"},
                 "post_processor":{"type":"TemplateProcessing"},
                 "model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",
                  "max_input_chars_per_word":100,"vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"[MASK]":4,
                  "hello":5,",":6,"world":7,"!":8,"un":9,"##aff":10,"##able":11,"中":12,"\\u6587":13,"the":14,"##re":15,
                  ".":16,"1.5e3":17}}}
                """;
        seed(dir, "bert.json", json.getBytes(StandardCharsets.UTF_8));
        seed(
                dir,
                "numbers.json",
                "[0,-1,2.5,-3e-2,1E+2,true,false,null,\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\",{}]"
                        .getBytes(StandardCharsets.UTF_8));
    }
}
