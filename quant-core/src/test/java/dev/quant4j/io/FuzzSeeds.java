package dev.quant4j.io;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.internal.Json;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.RopeLayout;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.GgufDecoderFile;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import dev.quant4j.tensor.HalfFloats;
import dev.quant4j.testing.FuzzFolder;
import dev.quant4j.testing.Pools;
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
        gptqCheckpoint(RESOURCES.resolve("io/GptqCheckpointFuzzTestInputs/fuzz"));
        huggingFaceLlama(RESOURCES.resolve("model/HuggingFaceLlamaFuzzTestInputs/fuzz"));
        ggufDecoder(RESOURCES.resolve("pipeline/GgufDecoderFileFuzzTestInputs/fuzz"));
        quantizedDecoder(RESOURCES.resolve("pipeline/QuantizedDecoderFileFuzzTestInputs/fuzz"));
        ggufSplit(RESOURCES.resolve("io/GgufSplitFuzzTestInputs/fuzz"));
    }

    /**
     * Split GGUF models {@link GgufWriter#writeSplit} wrote, packed as {@code GgufSplitFuzzTest} unpacks them: three
     * small tensors (F32, F16, q8_0) with metadata of several kinds in two splits and in three, and the same model as
     * one file (no split keys).
     */
    private static void ggufSplit(Path dir) throws IOException {
        for (int perFile : new int[] {2, 1, 0}) {
            GgufWriter w = new GgufWriter()
                    .put("general.architecture", GgufValue.string("llama"))
                    .put("general.name", GgufValue.string("split seed"))
                    .put("llama.block_count", GgufValue.uint32(1))
                    .put("tokenizer.ggml.scores", GgufValue.array(GgufValueType.FLOAT32, List.of(0.5f, -1f)));
            w.addTensor("a.weight", new long[] {8, 2}, GgmlType.F32, new byte[64]);
            byte[] h = new byte[32];
            h[1] = 0x3C;
            w.addTensor("b.weight", new long[] {16}, GgmlType.F16, h);
            byte[] q = new byte[34];
            q[0] = 0x00;
            q[1] = 0x3C;
            q[2] = 5;
            w.addTensor("c.weight", new long[] {32}, GgmlType.Q8_0, q);
            Path tmp = Files.createTempDirectory("split");
            try {
                List<Path> paths = w.writeSplit(tmp.resolve("m.gguf"), 0, perFile);
                java.util.Map<String, byte[]> files = new java.util.LinkedHashMap<>();
                for (Path p : paths) {
                    String name = paths.size() == 1
                            ? "m-00001-of-00002.gguf"
                            : p.getFileName().toString();
                    files.put(name, Files.readAllBytes(p));
                    Files.delete(p);
                }
                seed(dir, paths.size() + "-files", FuzzFolder.pack(files, GgufSplitFuzzTest.NAMES));
            } finally {
                Files.deleteIfExists(tmp);
            }
        }
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

    /**
     * GPTQ folders: the four tensors of each AutoGPTQ fixture ({@code src/test/resources/gptq-checkpoint}: bits 2, 3, 4,
     * 8, sym/asym, act-order on/off, groups of 16) with a {@code quantize_config.json} saying so, and folders
     * quant4j's writer makes: a pass-through bias, per channel, {@code config.json}'s {@code quantization_config}
     * instead of {@code quantize_config.json}, {@code gptq_v2}, AutoGPTQ's {@code gptq_model-4bit-128g} file name.
     */
    private static void gptqCheckpoint(Path dir) throws IOException {
        Path fixtures = Path.of("src/test/resources/gptq-checkpoint");
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (String sym : new String[] {"sym", "asym"}) {
                for (String act : new String[] {"noact", "act"}) {
                    String name = "b" + bits + "-" + sym + "-" + act;
                    SafeTensorsWriter w = new SafeTensorsWriter();
                    try (SafeTensors st = SafeTensors.open(fixtures.resolve(name + ".safetensors"))) {
                        for (String part : List.of(".qweight", ".qzeros", ".scales", ".g_idx")) {
                            SafeTensors.Entry e = st.entry("layer" + part);
                            w.add(e.name(), e.dtype(), e.shape(), st.readBytes(e.name()));
                        }
                    }
                    String config = "{\"bits\": " + bits + ", \"group_size\": 16, \"desc_act\": "
                            + act.equals("act") + ", \"sym\": " + sym.equals("sym")
                            + ", \"checkpoint_format\": \"gptq\", \"quant_method\": \"gptq\"}";
                    seed(
                            dir,
                            "autogptq-" + name,
                            gptqFolder(Map.of(
                                    GptqCheckpoint.QUANTIZE_CONFIG,
                                    config.getBytes(StandardCharsets.UTF_8),
                                    GptqCheckpoint.MODEL_FILE,
                                    w.toBytes())));
                }
            }
        }
        FloatMatrix w = Gaussian.matrix("layer.weight", 3, 32, 32, 1.0);
        QuantizedSafeTensors.PassThrough bias = new QuantizedSafeTensors.PassThrough(
                "layer.bias", DType.F16, new long[] {2}, new byte[] {0, 0x3C, 0, (byte) 0xC0});
        GptqCheckpoint.Options options = GptqCheckpoint.Options.defaults();
        Map<String, byte[]> asym4 = GptqCheckpoint.toFiles(
                List.of(new RtnQuantizer(LinearScheme.asym(4, 16)).quantize(w)), List.of(bias), options);
        seed(dir, "quant4j-asym4-g16-bias", gptqFolder(asym4));
        seed(
                dir,
                "quant4j-sym8-channel",
                gptqFolder(GptqCheckpoint.toFiles(
                        List.of(new RtnQuantizer(LinearScheme.sym(8, -1)).quantize(w)), List.of(), options)));
        FloatMatrix x = Gaussian.matrix("x", 4, 64, 32, 1.0);
        HessianAccumulator h = new HessianAccumulator("layer", 32);
        h.add(x);
        QuantizedWeight act3 = new Gptq(GptqConfig.defaults(3).withGroupSize(16).withActOrder(true))
                .quantize(w, h)
                .tensor();
        seed(dir, "quant4j-gptq3-act-order", gptqFolder(GptqCheckpoint.toFiles(List.of(act3), List.of(), options)));
        String quantizationConfig = new String(asym4.get(GptqCheckpoint.QUANTIZE_CONFIG), StandardCharsets.UTF_8);
        seed(
                dir,
                "quant4j-hf-config",
                gptqFolder(Map.of(
                        GptqCheckpoint.HF_CONFIG,
                        ("{\"architectures\": [\"LlamaForCausalLM\"], \"quantization_config\": " + quantizationConfig
                                        + "}")
                                .getBytes(StandardCharsets.UTF_8),
                        GptqCheckpoint.MODEL_FILE,
                        asym4.get(GptqCheckpoint.MODEL_FILE))));
        Map<String, byte[]> sym4 = GptqCheckpoint.toFiles(
                List.of(new RtnQuantizer(LinearScheme.sym(4, 16)).quantize(w)), List.of(), options);
        seed(
                dir,
                "quant4j-v2",
                gptqFolder(Map.of(
                        GptqCheckpoint.QUANTIZE_CONFIG,
                        new String(sym4.get(GptqCheckpoint.QUANTIZE_CONFIG), StandardCharsets.UTF_8)
                                .replace("\"checkpoint_format\": \"gptq\"", "\"checkpoint_format\": \"gptq_v2\"")
                                .getBytes(StandardCharsets.UTF_8),
                        GptqCheckpoint.MODEL_FILE,
                        sym4.get(GptqCheckpoint.MODEL_FILE))));
        Map<String, byte[]> g128 = GptqCheckpoint.toFiles(
                List.of(new RtnQuantizer(LinearScheme.asym(4, 128))
                        .quantize(Gaussian.matrix("layer.weight", 5, 8, 128, 1.0))),
                List.of(),
                options);
        seed(
                dir,
                "quant4j-autogptq-file-name",
                gptqFolder(Map.of(
                        GptqCheckpoint.QUANTIZE_CONFIG,
                        new String(g128.get(GptqCheckpoint.QUANTIZE_CONFIG), StandardCharsets.UTF_8)
                                .replace("\"model_file_base_name\": \"model\"", "\"model_file_base_name\": null")
                                .getBytes(StandardCharsets.UTF_8),
                        "gptq_model-4bit-128g.safetensors",
                        g128.get(GptqCheckpoint.MODEL_FILE))));
    }

    private static byte[] gptqFolder(Map<String, byte[]> files) {
        return FuzzFolder.pack(files, FuzzFolder.GPTQ_CHECKPOINT);
    }

    /**
     * Hugging Face folders of a tiny decoder (hidden size 4, one layer, vocabulary 8) with the configs of Llama
     * (untied, F32), Mistral (grouped-query attention, BF16), Qwen2 (tied embeddings, q/k/v biases, F16), a config
     * that leaves every defaulted key out and sets {@code head_dim}, and a Llama split into two shards by an index.
     */
    private static void huggingFaceLlama(Path dir) throws IOException {
        String llama = """
                {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
                 "hidden_size": 4, "initializer_range": 0.02, "intermediate_size": 8, "max_position_embeddings": 64,
                 "model_type": "llama", "num_attention_heads": 2, "num_hidden_layers": 1, "num_key_value_heads": 2,
                 "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0,
                 "tie_word_embeddings": false, "torch_dtype": "float32", "use_cache": true, "vocab_size": 8}
                """;
        String mistral = """
                {"architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
                 "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4, "initializer_range": 0.02,
                 "intermediate_size": 8, "max_position_embeddings": 32768, "model_type": "mistral",
                 "num_attention_heads": 2, "num_hidden_layers": 1, "num_key_value_heads": 1, "rms_norm_eps": 1e-05,
                 "rope_theta": 1000000.0, "sliding_window": null, "tie_word_embeddings": false,
                 "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 8}
                """;
        String qwen2 = """
                {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
                 "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 4, "initializer_range": 0.02,
                 "intermediate_size": 8, "max_position_embeddings": 32768, "max_window_layers": 21,
                 "model_type": "qwen2", "num_attention_heads": 2, "num_hidden_layers": 1, "num_key_value_heads": 1,
                 "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
                 "torch_dtype": "float16", "use_cache": true, "use_sliding_window": false, "vocab_size": 8}
                """;
        String defaults = """
                {"architectures": ["LlamaForCausalLM"], "hidden_size": 4, "intermediate_size": 8,
                 "num_hidden_layers": 1, "num_attention_heads": 1, "head_dim": 2, "vocab_size": 8,
                 "max_position_embeddings": 16}
                """;
        seed(dir, "llama", hfFolder(llama, Map.of(SINGLE, decoderFile(2, 2, 2, false, false, DType.F32))));
        seed(dir, "mistral", hfFolder(mistral, Map.of(SINGLE, decoderFile(2, 1, 2, false, false, DType.BF16))));
        seed(dir, "qwen2", hfFolder(qwen2, Map.of(SINGLE, decoderFile(2, 1, 2, true, true, DType.F16))));
        seed(
                dir,
                "defaults-head-dim",
                hfFolder(defaults, Map.of(SINGLE, decoderFile(1, 1, 2, false, false, DType.F16))));
        // the same tensors in two shards, the position ids (not read) among them
        SafeTensors all = SafeTensors.parse(decoderFile(2, 2, 2, false, false, DType.BF16), "all");
        List<String> names = all.names();
        StringBuilder index = new StringBuilder("{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
        SafeTensorsWriter[] shards = {new SafeTensorsWriter(), new SafeTensorsWriter()};
        for (int i = 0; i < names.size(); i++) {
            String n = names.get(i);
            int s = i < names.size() / 2 ? 0 : 1;
            shards[s].add(n, all.entry(n).dtype(), all.entry(n).shape(), all.readBytes(n));
            index.append(i == 0 ? "" : ", ").append(Json.quote(n)).append(": ").append(Json.quote(SHARDS.get(s)));
        }
        shards[1].add("model.position_ids", DType.I64, new long[] {1}, new byte[8]);
        index.append(", \"model.position_ids\": ")
                .append(Json.quote(SHARDS.get(1)))
                .append("}}");
        seed(
                dir,
                "llama-sharded",
                hfFolder(
                        llama,
                        Map.of(
                                INDEX,
                                index.toString().getBytes(StandardCharsets.UTF_8),
                                SHARDS.get(0),
                                shards[0].toBytes(),
                                SHARDS.get(1),
                                shards[1].toBytes())));
    }

    private static final String SINGLE = "model.safetensors";
    private static final String INDEX = "model.safetensors.index.json";
    private static final List<String> SHARDS =
            List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");

    private static byte[] hfFolder(String config, Map<String, byte[]> files) {
        Map<String, byte[]> all = new java.util.HashMap<>(files);
        all.put("config.json", config.getBytes(StandardCharsets.UTF_8));
        return FuzzFolder.pack(all, FuzzFolder.HUGGING_FACE_LLAMA);
    }

    /** The tensors of a one-layer decoder of hidden size 4, MLP width 8 and vocabulary 8, in {@code dtype}. */
    private static byte[] decoderFile(int heads, int kvHeads, int headDim, boolean tied, boolean biases, DType dtype) {
        int dim = 4;
        int hidden = 8;
        int vocab = 8;
        SafeTensorsWriter w = new SafeTensorsWriter();
        long seed = 10;
        addFloats(w, "model.embed_tokens.weight", dtype, Gaussian.matrix("e", seed++, vocab, dim, 1.0));
        String p = "model.layers.0.";
        addFloats(w, p + "input_layernorm.weight", dtype, ones(dim));
        addFloats(w, p + "self_attn.q_proj.weight", dtype, Gaussian.matrix("q", seed++, heads * headDim, dim, 0.5));
        addFloats(w, p + "self_attn.k_proj.weight", dtype, Gaussian.matrix("k", seed++, kvHeads * headDim, dim, 0.5));
        addFloats(w, p + "self_attn.v_proj.weight", dtype, Gaussian.matrix("v", seed++, kvHeads * headDim, dim, 0.5));
        if (biases) {
            addFloats(w, p + "self_attn.q_proj.bias", dtype, Gaussian.matrix("qb", seed++, 1, heads * headDim, 0.1));
            addFloats(w, p + "self_attn.k_proj.bias", dtype, Gaussian.matrix("kb", seed++, 1, kvHeads * headDim, 0.1));
            addFloats(w, p + "self_attn.v_proj.bias", dtype, Gaussian.matrix("vb", seed++, 1, kvHeads * headDim, 0.1));
        }
        addFloats(w, p + "self_attn.o_proj.weight", dtype, Gaussian.matrix("o", seed++, dim, heads * headDim, 0.5));
        addFloats(w, p + "post_attention_layernorm.weight", dtype, ones(dim));
        addFloats(w, p + "mlp.gate_proj.weight", dtype, Gaussian.matrix("g", seed++, hidden, dim, 0.5));
        addFloats(w, p + "mlp.up_proj.weight", dtype, Gaussian.matrix("u", seed++, hidden, dim, 0.5));
        addFloats(w, p + "mlp.down_proj.weight", dtype, Gaussian.matrix("d", seed++, dim, hidden, 0.5));
        addFloats(w, "model.norm.weight", dtype, ones(dim));
        if (!tied) {
            addFloats(w, "lm_head.weight", dtype, Gaussian.matrix("h", seed, vocab, dim, 1.0));
        }
        return w.toBytes();
    }

    private static FloatMatrix ones(int n) {
        float[] v = new float[n];
        java.util.Arrays.fill(v, 1f);
        return FloatMatrix.of("ones", 1, n, v, 0);
    }

    /** Adds {@code m} in {@code dtype}: 1-D when it is one row (norms, biases), else 2-D. */
    private static void addFloats(SafeTensorsWriter w, String name, DType dtype, FloatMatrix m) {
        float[] v = m.toArray();
        long[] shape = m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()};
        ByteBuffer b = ByteBuffer.allocate(dtype == DType.F32 ? 4 * v.length : 2 * v.length)
                .order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            switch (dtype) {
                case F32 -> b.putFloat(f);
                case F16 -> b.putShort(HalfFloats.floatToFp16(f));
                default -> b.putShort(HalfFloats.floatToBf16(f));
            }
        }
        w.add(name, dtype, shape, b.array());
    }

    /**
     * GGUF {@code llama} models {@link GgufDecoderFile} wrote: the tiny decoder ({@link #tinyDecoder}) in F32 (the
     * main seed: a few kilobytes, most of it the placeholder vocabulary) and in q8_0 at width 32 (one block a row),
     * Hugging Face's half-split layout permuted back. stories260K's files (1 MB in F32, 345 KB in q8_0;
     * GgufDecoderFileTest reads them) are left out: libFuzzer lets inputs grow to the largest seed, and one such input
     * costs a hundred small ones.
     */
    private static void ggufDecoder(Path dir) throws IOException {
        seed(dir, "tiny-f32.gguf", gguf(tinyDecoder(8, 16, false, false), GgmlType.F32));
        seed(dir, "tiny-tied-biases-q8_0.gguf", gguf(tinyDecoder(32, 32, true, true), GgmlType.Q8_0));
    }

    private static byte[] gguf(QuantizedDecoderFile.Source source, GgmlType type) throws IOException {
        Path file = Files.createTempFile("seed", ".gguf");
        try {
            GgufDecoderFile.plan(source, type, false).write(file);
            return Files.readAllBytes(file);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /**
     * Whole decoders {@link QuantizedDecoderFile} wrote: the tiny decoder quantized with RTN, asymmetric 4-bit groups
     * of 8 (Hugging Face source, half-split) and symmetric 8-bit per channel (llama2.c source, tied, q/k/v biases).
     */
    private static void quantizedDecoder(Path dir) throws IOException {
        seed(
                dir,
                "tiny-rtn-asym4-g8.safetensors",
                quantizedDecoderFile(
                        tinyDecoder(8, 16, false, false),
                        new DecoderQuantizer.Setting(DecoderQuantizer.Method.RTN, 4, 8, false, false),
                        "rtn"));
        QuantizedDecoderFile.Source tied = tinyDecoder(8, 16, true, true);
        seed(
                dir,
                "tiny-tied-biases-rtn-sym8-channel.safetensors",
                quantizedDecoderFile(
                        new QuantizedDecoderFile.Source(
                                "tiny.bin",
                                QuantizedDecoderFile.SourceFormat.LLAMA2C,
                                withRope(tied.config(), RopeLayout.INTERLEAVED),
                                tied.tensors()),
                        new DecoderQuantizer.Setting(DecoderQuantizer.Method.RTN, 8, -1, true, false),
                        "rtn"));
        // a quantized tensor that is no linear layer's weight, named shorter than ".weight": once a
        // StringIndexOutOfBoundsException building the decoder
        Files.write(
                dir.resolve("review-quantized-tensor-w.safetensors"),
                quantizedDecoderFile(
                        tinyDecoder(8, 16, false, false),
                        new DecoderQuantizer.Setting(DecoderQuantizer.Method.RTN, 4, 8, false, false),
                        "rtn",
                        new RtnQuantizer(LinearScheme.asym(4, 8)).quantize(Gaussian.matrix("w", 3, 4, 8, 1.0))));
    }

    private static byte[] quantizedDecoderFile(
            QuantizedDecoderFile.Source source, DecoderQuantizer.Setting setting, String method) throws IOException {
        return quantizedDecoderFile(source, setting, method, null);
    }

    /** The file of {@code source} quantized with {@code setting}, and {@code extra} among the weights if not null. */
    private static byte[] quantizedDecoderFile(
            QuantizedDecoderFile.Source source, DecoderQuantizer.Setting setting, String method, QuantizedWeight extra)
            throws IOException {
        DecoderQuantizer.Result q =
                new DecoderQuantizer(setting, Pools.ONE).quantize(source.decoder(Pools.ONE), null, null);
        if (extra != null) {
            Map<String, QuantizedWeight> weights = new java.util.LinkedHashMap<>(q.weights());
            weights.put(extra.name(), extra);
            q = new DecoderQuantizer.Result(q.model(), weights, q.layers(), q.tensors());
        }
        Path file = Files.createTempFile("seed", ".safetensors");
        try {
            QuantizedDecoderFile.write(file, source, q, method);
            return Files.readAllBytes(file);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static LlamaConfig withRope(LlamaConfig c, RopeLayout rope) {
        return new LlamaConfig(
                c.dim(),
                c.hiddenDim(),
                c.layers(),
                c.heads(),
                c.kvHeads(),
                c.headDim(),
                c.vocabSize(),
                c.maxSeqLen(),
                c.ropeTheta(),
                c.normEps(),
                rope,
                c.tiedEmbeddings());
    }

    /**
     * A one-layer Hugging Face decoder (half-split rotary layout) of width {@code dim}, MLP width {@code hidden}, two
     * query heads and one key/value head of {@code dim / 2}, and a vocabulary of 16.
     */
    private static QuantizedDecoderFile.Source tinyDecoder(int dim, int hidden, boolean tied, boolean biases) {
        int vocab = 16;
        int heads = 2;
        int headDim = dim / heads;
        int kv = headDim;
        LlamaConfig config =
                new LlamaConfig(dim, hidden, 1, heads, 1, headDim, vocab, 16, 10000, 1e-5, RopeLayout.HALF_SPLIT, tied);
        Map<String, FloatMatrix> t = new java.util.LinkedHashMap<>();
        long seed = 20;
        t.put("model.embed_tokens.weight", Gaussian.matrix("model.embed_tokens.weight", seed++, vocab, dim, 1.0));
        String p = "model.layers.0.";
        t.put(p + "input_layernorm.weight", ones(dim).named(p + "input_layernorm.weight"));
        int[][] shapes = {{dim, dim}, {kv, dim}, {kv, dim}, {dim, dim}, {hidden, dim}, {hidden, dim}, {dim, hidden}};
        String[] names = {
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj"
        };
        for (int i = 0; i < names.length; i++) {
            String n = p + names[i] + ".weight";
            t.put(n, Gaussian.matrix(n, seed++, shapes[i][0], shapes[i][1], 0.5));
            if (biases && i < 3) {
                String b = p + names[i] + ".bias";
                t.put(b, Gaussian.matrix(b, seed++, 1, shapes[i][0], 0.1));
            }
        }
        t.put(p + "post_attention_layernorm.weight", ones(dim).named(p + "post_attention_layernorm.weight"));
        t.put("model.norm.weight", ones(dim).named("model.norm.weight"));
        if (!tied) {
            t.put("lm_head.weight", Gaussian.matrix("lm_head.weight", seed, vocab, dim, 1.0));
        }
        return new QuantizedDecoderFile.Source("tiny", QuantizedDecoderFile.SourceFormat.HUGGING_FACE, config, t);
    }
}
