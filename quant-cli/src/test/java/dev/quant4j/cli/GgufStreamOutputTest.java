package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.QuantCliTest.Result;
import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.DType;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.GgufValueType;
import dev.quant4j.io.GgufWriter;
import dev.quant4j.io.Npy;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code quant quantize --format gguf} writes the same bytes as the in-memory writer it replaced: the SHA-256 of each
 * file below is that of the file {@code GgufOutput} wrote when it built the whole file in memory ({@link GgufWriter}
 * fed with {@link GgmlQuants#quantize} of each whole weight), on the inputs of {@code QuantizeGgufFormatTest}, for every
 * thread count.
 */
class GgufStreamOutputTest {

    @TempDir
    Path dir;

    static String sha256(Path p) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }

    private Result quantize(Path in, String type, Path out, String threads) {
        return QuantCliTest.run(
                "quantize",
                "--format",
                "gguf",
                "--gguf-type",
                type,
                "--method",
                "rtn",
                "--threads",
                threads,
                "--in",
                in.toString(),
                "--out",
                out.toString());
    }

    @ParameterizedTest
    @CsvSource({
        "q4_0, 1, 65f8e659a29cabe9134f2d612ea00c42f810dd2e3f956346a5bab4ba48a2e79f",
        "q4_1, 2, 429b58437537c7699c68f72b9ca85473e7aee4c816e7a734e909a7a2a86b8ae0",
        "q5_0, 1, 986de99bef6af4d286e775652fe646163c2dfd9a3269b8f3093c1c0d7d283f96",
        "q5_1, 2, 57cc58482988fcee92e71162ac3f24dc796c05c861ea982fa95d476b10c47c35",
        "q8_0, 1, cd504d6e040fa6060b194d03bec7d2f5ab639c082df801025836366e1a80ce62",
        "q4_k, 2, 77bd971145e33280f6d62911f5556b9b13f8aac4bc840edacb3befaf900cb90b",
        "q5_k, 1, 5b6499b198f750c97925321bea6dfcb4922d17ae647e029948e3f045e2152a81",
        "q6_k, 2, e2c4faeaf93b290f2e17a1de8b47c41ef0387b9ee3d9f9f1354ebd5c56537ac9",
        "f16, 1, 658c6f0da9ae68d4762049b0cf7eb31a0bc1afb19cfc2d8b42ccb6b6efc135cc",
        "bf16, 2, aa7d74009a49e9665095d27e7eaba7cf7f6a89ae297e922250f41299d5ed8adb",
        "f32, 1, 5f8d3174ea8c9477726b3e7d16fe63dcd2a92965662d61732bdf74f986826038",
    })
    void npyWeight(String type, String threads, String sha) throws Exception {
        Path in = dir.resolve("w.npy");
        Npy.write(in, Gaussian.matrix("w", 3, 16, 512, 0.1));
        Path out = dir.resolve("w.gguf");
        Result r = quantize(in, type, out, threads);
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(sha256(out)).isEqualTo(sha);
    }

    @ParameterizedTest
    @CsvSource({
        "q4_k, 1, 7f8efcf8ef6c1c459058bedae87dbf2638fab40ef32d3d092cf05ad25b1e15a2",
        "q8_0, 2, 9b6008d305cf7ec441f85e4d70b3d72d4bfb79759ad2cd99cea74c5f64fd9903",
        "f16, 3, 23c7bb04da9018debc7f27e445b16c832e3959b57596419b1f75283454e94192"
    })
    void ggufModel(String type, String threads, String sha) throws Exception {
        Path in = ggufModel(dir);
        Path out = dir.resolve("model-q.gguf");
        Result r = quantize(in, type, out, threads);
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(sha256(out)).isEqualTo(sha);
    }

    @ParameterizedTest
    @CsvSource({
        "q8_0, 1, 74f405779bf78e535f34ec6cf521ef16ab04b829025fd7b007870b83a1c169b0",
        "q4_0, 2, 294e6cf8979466605193a85db5c0ddd9f9cc92663a1f20ea0521b5776b8f0754",
        "q5_1, 3, 3464c8a4f795a0965b2a034242422fed1a67390ad56f16fffd015760ce5fb5b8"
    })
    void safetensorsFile(String type, String threads, String sha) throws Exception {
        Path in = safetensors(dir);
        Path out = dir.resolve("model.gguf");
        Result r = quantize(in, type, out, threads);
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(sha256(out)).isEqualTo(sha);
    }

    /**
     * A checkpoint in two shards with an index becomes one GGUF file, the same bytes as from the same tensors in one
     * file: the quantized weights in the checkpoint's order, then the tensors kept.
     */
    @ParameterizedTest
    @CsvSource({"folder, 1", "index, 2"})
    void shardedCheckpointIsOneFileAsFromOneShard(String how, String threads) throws Exception {
        Path single = safetensors(dir);
        Path whole = dir.resolve("whole.gguf");
        assertThat(quantize(single, "q8_0", whole, "1").code()).isZero();
        Path folder = Files.createDirectory(dir.resolve("ckpt"));
        Map<String, String> weightMap = new LinkedHashMap<>();
        try (SafeTensors st = SafeTensors.open(single)) {
            List<String> names = st.names();
            for (int s = 0; s < 2; s++) {
                String file = "model-0000" + (s + 1) + "-of-00002.safetensors";
                SafeTensorsWriter w = new SafeTensorsWriter();
                for (String n : names.subList(3 * s, 3 * s + 3)) {
                    SafeTensors.Entry e = st.entry(n);
                    w.add(n, e.dtype(), e.shape(), st.readBytes(n));
                    weightMap.put(n, file);
                }
                w.write(folder.resolve(file));
            }
        }
        SafeTensorsCheckpoint.writeIndex(folder, 0, weightMap);
        Path in = how.equals("folder") ? folder : folder.resolve(SafeTensorsCheckpoint.INDEX);
        Path out = dir.resolve("sharded.gguf");
        Result r = quantize(in, "q8_0", out, threads);
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("wrote " + out + " (3 quantized as q8_0, 3 unchanged, 2 metadata keys)");
        assertThat(r.err()).contains("kept 'model.embed_tokens.weight' unquantized: an embedding or output head");
        assertThat(Files.readAllBytes(out)).isEqualTo(Files.readAllBytes(whole));
    }

    /**
     * stories260K as the F32 GGUF file llama.cpp ran ({@code quant-core/src/test/resources/llama-cpp/README.md}),
     * streamed to F32 again: the same bytes, so llama.cpp reads what the stream writes.
     */
    @org.junit.jupiter.api.Test
    void theF32FileLlamaCppRanStreamsToItsOwnBytes() throws Exception {
        Path f32 = dir.resolve("stories260K-f32.gguf");
        Result r = QuantCliTest.run(
                "quantize",
                "--model",
                QuantizeDecoderGgufTest.STORIES.toString(),
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--gguf-type",
                "f32",
                "--out",
                f32.toString());
        assertThat(r.code()).as(r.err()).isZero();
        Path out = dir.resolve("streamed.gguf");
        r = quantize(f32, "f32", out, "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(sha256(out))
                .isEqualTo(sha256(f32))
                .isEqualTo("d05e06f51c895f6f8e109bb54761abd2d64c5f39bf55838d373fe0d7bbb8adda");
    }

    /** A float GGUF model: F16, F32 and BF16 matrices, a 1-D norm, an integer tensor, metadata of several types. */
    static Path ggufModel(Path dir) throws Exception {
        FloatMatrix q = Gaussian.matrix("q", 5, 8, 256, 0.05);
        FloatMatrix up = Gaussian.matrix("up", 6, 4, 256, 0.05);
        FloatMatrix emb = Gaussian.matrix("emb", 7, 10, 256, 1.0);
        float[] norm = Gaussian.samples(8, 256, 1.0);
        Map<String, GgufValue> meta = new LinkedHashMap<>();
        meta.put("general.architecture", GgufValue.string("llama"));
        meta.put("general.file_type", GgufValue.uint32(0));
        meta.put("llama.context_length", GgufValue.uint32(2048));
        meta.put("tokenizer.ggml.tokens", GgufValue.array(GgufValueType.STRING, List.of("<s>", "</s>", "a")));
        meta.put("tokenizer.ggml.scores", GgufValue.array(GgufValueType.FLOAT32, List.of(0f, -1f, -2.5f)));
        byte[] ids = {1, 0, 0, 0, 2, 0, 0, 0};
        Path in = dir.resolve("model-f32.gguf");
        new GgufWriter()
                .putAll(meta)
                .addTensor("token_embd.weight", new long[] {256, 10}, GgmlType.F16, ggml(GgmlType.F16, emb))
                .addTensor("blk.0.attn_norm.weight", new long[] {256}, GgmlType.F32, ggml(GgmlType.F32, norm, 256))
                .addTensor("blk.0.attn_q.weight", new long[] {256, 8}, GgmlType.F32, ggml(GgmlType.F32, q))
                .addTensor("blk.0.ffn_up.weight", new long[] {256, 4}, GgmlType.BF16, ggml(GgmlType.BF16, up))
                .addTensor("ids", new long[] {2}, GgmlType.I32, ids)
                .write(in);
        return in;
    }

    /** A safetensors file: two F32 weights, a BF16 one, an embedding table (kept), a norm and an integer tensor. */
    static Path safetensors(Path dir) throws Exception {
        FloatMatrix up = Gaussian.matrix("model.layers.0.mlp.up_proj.weight", 9, 8, 256, 0.1);
        FloatMatrix down = Gaussian.matrix("model.layers.0.mlp.down_proj.weight", 10, 256, 32 * 3, 0.1);
        FloatMatrix q = Gaussian.matrix("model.layers.0.self_attn.q_proj.weight", 11, 24, 512, 0.1);
        FloatMatrix emb = Gaussian.matrix("model.embed_tokens.weight", 12, 5, 256, 1.0);
        float[] norm = Gaussian.samples(13, 256, 1.0);
        Path in = dir.resolve("model.safetensors");
        new SafeTensorsWriter()
                .addF32(emb.name(), new long[] {5, 256}, emb.toArray())
                .addF32(up.name(), new long[] {8, 256}, up.toArray())
                .add(
                        "model.layers.0.input_layernorm.weight",
                        DType.F32,
                        new long[] {256},
                        ggml(GgmlType.F32, norm, 256))
                .add(q.name(), DType.BF16, new long[] {24, 512}, ggml(GgmlType.BF16, q))
                .addF32(down.name(), new long[] {256, 96}, down.toArray())
                .add("pos", DType.I64, new long[] {2}, new byte[16])
                .write(in);
        return in;
    }

    static byte[] ggml(GgmlType type, FloatMatrix w) {
        return GgmlQuants.quantize(type, w.toArray(), w.rows(), w.cols());
    }

    static byte[] ggml(GgmlType type, float[] v, int n) {
        return GgmlQuants.quantize(type, v, 1, n);
    }
}
