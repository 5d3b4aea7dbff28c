package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.QuantCliTest.Result;
import dev.quant4j.ggml.GgmlGptq;
import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.DType;
import dev.quant4j.io.Gguf;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.GgufValueType;
import dev.quant4j.io.GgufWriter;
import dev.quant4j.io.Npy;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code quant quantize --format gguf} through the command line: exit codes, messages and the files written. */
class QuantizeGgufFormatTest {

    @TempDir
    Path dir;

    private List<String> files() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static byte[] ggml(GgmlType type, FloatMatrix w) {
        return GgmlQuants.quantize(type, w.toArray(), w.rows(), w.cols());
    }

    @ParameterizedTest
    @ValueSource(strings = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k", "f16", "bf16", "f32"})
    void npyWeightBecomesOneTensorOfTheType(String ggufType) throws Exception {
        FloatMatrix w = Gaussian.matrix("w", 3, 16, 512, 0.1);
        Path in = dir.resolve("w.npy");
        Npy.write(in, w);
        Path out = dir.resolve("w.gguf");
        Result r = QuantCliTest.run(
                "quantize",
                "--format",
                "gguf",
                "--gguf-type",
                ggufType,
                "--method",
                "rtn",
                "--in",
                in.toString(),
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        GgmlType type = GgmlType.byName(ggufType);
        assertThat(r.out())
                .contains("w [16 x 512] " + type + ": ")
                .contains("wrote " + out + " (1 quantized as " + type + ", 0 unchanged, 2 metadata keys)");
        try (Gguf g = Gguf.open(out)) {
            assertThat(g.tensors()).hasSize(1);
            Gguf.TensorInfo t = g.tensor("w");
            assertThat(t.type()).isEqualTo(type);
            assertThat(t.ne()).containsExactly(512, 16);
            assertThat(g.readBytes("w")).isEqualTo(ggml(type, w));
            assertThat(g.metadata().get("general.file_type").asLong()).isEqualTo(GgufOutput.fileType(type));
            assertThat(g.metadata().get("general.quantization_version").asLong())
                    .isEqualTo(2);
        }
    }

    /**
     * A float GGUF model: the 2-D weights are quantized (from their F32, F16 or BF16 values), the 1-D norm and an
     * integer tensor kept byte for byte, every metadata key kept in its place and the two llama-quantize sets added.
     */
    @Test
    void ggufModelKeepsMetadataAndOneDimensionalTensors() throws Exception {
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
                .addTensor("blk.0.attn_norm.weight", new long[] {256}, GgmlType.F32, floats(norm))
                .addTensor("blk.0.attn_q.weight", new long[] {256, 8}, GgmlType.F32, ggml(GgmlType.F32, q))
                .addTensor("blk.0.ffn_up.weight", new long[] {256, 4}, GgmlType.BF16, ggml(GgmlType.BF16, up))
                .addTensor("ids", new long[] {2}, GgmlType.I32, ids)
                .write(in);
        Path out = dir.resolve("model-q4_k.gguf");
        Result r = QuantCliTest.run(
                "quantize",
                "--format",
                "gguf",
                "--gguf-type",
                "q4_k",
                "--method",
                "rtn",
                "--in",
                in.toString(),
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("wrote " + out + " (3 quantized as q4_K, 2 unchanged, 6 metadata keys)");
        try (Gguf src = Gguf.open(in);
                Gguf g = Gguf.open(out)) {
            assertThat(g.metadata().keySet())
                    .containsExactly(
                            "general.architecture",
                            "general.file_type",
                            "llama.context_length",
                            "tokenizer.ggml.tokens",
                            "tokenizer.ggml.scores",
                            "general.quantization_version");
            for (String k : List.of("general.architecture", "tokenizer.ggml.tokens", "tokenizer.ggml.scores")) {
                assertThat(g.metadata().get(k)).isEqualTo(meta.get(k));
            }
            assertThat(g.metadata().get("general.file_type").asLong()).isEqualTo(14);
            assertThat(g.tensors())
                    .extracting(Gguf.TensorInfo::name)
                    .containsExactly(
                            "token_embd.weight",
                            "blk.0.attn_norm.weight",
                            "blk.0.attn_q.weight",
                            "blk.0.ffn_up.weight",
                            "ids");
            for (String name : List.of("token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_up.weight")) {
                Gguf.TensorInfo t = g.tensor(name);
                assertThat(t.type()).isEqualTo(GgmlType.Q4_K);
                assertThat(t.ne()).containsExactly(src.tensor(name).ne());
                FloatMatrix source = FloatMatrix.of(name, (int) t.rows(), 256, src.readFloats(name), 0);
                assertThat(g.readBytes(name)).as(name).isEqualTo(ggml(GgmlType.Q4_K, source));
            }
            assertThat(g.tensor("blk.0.attn_norm.weight").type()).isEqualTo(GgmlType.F32);
            assertThat(g.readBytes("blk.0.attn_norm.weight")).isEqualTo(src.readBytes("blk.0.attn_norm.weight"));
            assertThat(g.readBytes("ids")).isEqualTo(ids);
        }
    }

    @Test
    void safetensorsWeightsAreTransposedToGgmlRowsAndTheRestKept() throws Exception {
        FloatMatrix w = Gaussian.matrix("model.layers.0.mlp.up_proj.weight", 9, 8, 64, 0.1);
        FloatMatrix emb = Gaussian.matrix("model.embed_tokens.weight", 10, 5, 64, 1.0);
        Path in = dir.resolve("model.safetensors");
        new SafeTensorsWriter()
                .addF32(w.name(), new long[] {8, 64}, w.toArray())
                .addF32(emb.name(), new long[] {5, 64}, emb.toArray())
                .add("pos", DType.I64, new long[] {2}, new byte[16])
                .write(in);
        Path out = dir.resolve("model.gguf");
        Result r = QuantCliTest.run(
                "quantize",
                "--format",
                "gguf",
                "--gguf-type",
                "q8_0",
                "--method",
                "rtn",
                "--in",
                in.toString(),
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        try (Gguf g = Gguf.open(out)) {
            assertThat(g.tensor(w.name()).ne()).containsExactly(64, 8);
            assertThat(g.readBytes(w.name())).isEqualTo(ggml(GgmlType.Q8_0, w));
            assertThat(g.tensor(emb.name()).type()).isEqualTo(GgmlType.F32);
            assertThat(g.tensor(emb.name()).ne()).containsExactly(64, 5);
            assertThat(g.tensor("pos").type()).isEqualTo(GgmlType.I64);
        }
    }

    @Test
    void aRowLengthTheBlockDoesNotDivideNamesTheTensorAndTheTypesThatFit() throws Exception {
        Path in = dir.resolve("w.npy");
        Npy.write(in, Gaussian.matrix("w", 1, 4, 96, 0.1));
        Result r = QuantCliTest.run(
                "quantize",
                "--format",
                "gguf",
                "--gguf-type",
                "q4_k",
                "--method",
                "rtn",
                "--in",
                in.toString(),
                "--out",
                dir.resolve("w.gguf").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .contains("tensor 'w' [4, 96]: its rows of 96 input features are not a multiple of the q4_K block"
                        + " size 256; --gguf-type that fit: q4_0, q4_1, q5_0, q5_1, q8_0, f16, bf16, f32");
        assertThat(files()).containsExactly("w.npy");
    }

    @Test
    void badUsageIsRefusedWithoutOutput() throws Exception {
        Path in = dir.resolve("w.npy");
        Npy.write(in, Gaussian.matrix("w", 1, 4, 64, 0.1));
        String out = dir.resolve("w.gguf").toString();
        String[][] cases = {
            {"--format", "gguf", "--method", "rtn", "--in", in.toString(), "--out", out},
            {
                "--format",
                "gguf",
                "--gguf-type",
                "q4_0",
                "--method",
                "rtn",
                "--bits",
                "8",
                "--in",
                in.toString(),
                "--out",
                out
            },
            {"--format", "gguf", "--gguf-type", "q4_0", "--method", "nf4", "--in", in.toString(), "--out", out},
            {"--format", "gguf", "--gguf-type", "q4_0", "--method", "awq", "--in", in.toString(), "--out", out},
            {"--format", "gguf", "--gguf-type", "iq2_xs", "--method", "rtn", "--in", in.toString(), "--out", out},
            {
                "--format",
                "gguf",
                "--gguf-type",
                "q4_0",
                "--method",
                "rtn",
                "--in",
                in.toString(),
                "--out",
                dir.resolve("w.safetensors").toString()
            },
            {
                "--gguf-type",
                "q4_0",
                "--method",
                "rtn",
                "--in",
                in.toString(),
                "--out",
                dir.resolve("w.safetensors").toString()
            },
        };
        String[] messages = {
            "--format gguf needs --gguf-type q4_0|q4_1|q5_0|q5_1|q8_0|q4_k|q5_k|q6_k|f16|bf16|f32",
            "--bits does not apply to --format gguf --method rtn",
            "--method nf4 is not available",
            "--method awq needs a whole decoder (--model M --method awq-block --gguf-type q4_0|q4_1|q5_0|q5_1|q8_0)",
            "quant4j quantizes to q4_0|",
            "must end in .gguf",
            "--gguf-type applies to --format gguf only",
        };
        for (int i = 0; i < cases.length; i++) {
            String[] args =
                    Stream.concat(Stream.of("quantize"), Stream.of(cases[i])).toArray(String[]::new);
            Result r = QuantCliTest.run(args);
            assertThat(r.code()).as(r.err()).isEqualTo(2);
            assertThat(r.err()).contains(messages[i]);
            assertThat(files()).containsExactly("w.npy");
        }
    }

    @Test
    void inspectAndDequantizeReadTheGgufWritten() throws Exception {
        FloatMatrix w = Gaussian.matrix("w", 4, 8, 256, 0.1);
        Path in = dir.resolve("w.npy");
        Npy.write(in, w);
        Path out = dir.resolve("w.gguf");
        assertThat(QuantCliTest.run(
                                "quantize",
                                "--format",
                                "gguf",
                                "--gguf-type",
                                "q6_k",
                                "--method",
                                "rtn",
                                "--in",
                                in.toString(),
                                "--out",
                                out.toString())
                        .code())
                .isZero();
        Result r = QuantCliTest.run("inspect", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).containsPattern("w\\s+q6_K\\s+\\[8, 256\\]\\s+1680\\s+6.563\\s+ggml q6_K");
        Path back = dir.resolve("back.npy");
        r = QuantCliTest.run("dequantize", "--in", out.toString(), "--out", back.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Npy.readMatrix(back).toArray())
                .containsExactly(GgmlQuants.dequantize(GgmlType.Q6_K, ggml(GgmlType.Q6_K, w), 8, 256));
    }

    @Test
    void gptqWritesQ4_0Q4_1AndQ8_0AndNamesTheTypesThatFit() throws Exception {
        FloatMatrix w = Gaussian.matrix("w", 11, 16, 128, 0.1);
        Path in = dir.resolve("w.npy");
        Npy.write(in, w);
        FloatMatrix x = Gaussian.matrix("x", 12, 64, 128, 1.0);
        Path calib = dir.resolve("x.npy");
        Npy.write(calib, x);
        dev.quant4j.gptq.HessianAccumulator h = new dev.quant4j.gptq.HessianAccumulator("x", 128);
        h.add(x);
        String[][] flags = {{"--bits", "4", "--sym"}, {"--bits", "4", "--asym"}, {"--bits", "8", "--sym"}};
        GgmlType[] types = {GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q8_0};
        for (int i = 0; i < flags.length; i++) {
            Path out = dir.resolve("w-" + types[i] + ".gguf");
            String[] args = Stream.of(
                            Stream.of("quantize", "--format", "gguf", "--method", "gptq", "--group-size", "32"),
                            Stream.of(flags[i]),
                            Stream.of("--calib", calib.toString(), "--in", in.toString(), "--out", out.toString()))
                    .flatMap(s -> s)
                    .toArray(String[]::new);
            Result r = QuantCliTest.run(args);
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).contains("w [16 x 128] " + types[i] + " gptq: ").contains("GPTQ relative output error");
            try (Gguf g = Gguf.open(out)) {
                assertThat(g.tensor("w").type()).isEqualTo(types[i]);
                assertThat(g.readBytes("w"))
                        .isEqualTo(dev.quant4j.ggml.GgmlGptq.quantize(
                                        types[i], w, h, 0.01, java.util.concurrent.ForkJoinPool.commonPool())
                                .data());
            }
        }
        Result r = QuantCliTest.run(
                "quantize",
                "--format",
                "gguf",
                "--method",
                "gptq",
                "--bits",
                "3",
                "--calib",
                calib.toString(),
                "--in",
                in.toString(),
                "--out",
                dir.resolve("w3.gguf").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .contains(
                        "--bits 3 --group-size 128 --asym has no ggml type; GPTQ writes q4_0 (--bits 4 --group-size"
                                + " 32 --sym), q4_1 (--bits 4 --group-size 32 --asym) or q8_0 (--bits 8 --group-size 32 --sym)");
        r = QuantCliTest.run(
                "quantize",
                "--format",
                "gguf",
                "--method",
                "gptq",
                "--group-size",
                "32",
                "--mse",
                "--calib",
                calib.toString(),
                "--in",
                in.toString(),
                "--out",
                dir.resolve("w3.gguf").toString());
        assertThat(r.err()).contains("--mse does not apply to --format gguf --method gptq");
        assertThat(files()).doesNotContain("w3.gguf");
    }

    /**
     * {@code --act-order} (always with static groups in ggml's blocks) and {@code --static-groups} alone: {@link
     * GgmlGptq}'s blocks in that order, over two lazy batches of columns.
     */
    @ParameterizedTest
    @CsvSource({
        "--act-order, --asym, q4_1, ACT_ORDER, act-order (static groups)",
        "--static-groups, --sym, q4_0, STATIC_GROUPS, static groups"
    })
    void gptqTakesActOrderWithStaticGroups(
            String option, String symmetry, String typeName, GgmlGptq.Order order, String said) throws Exception {
        FloatMatrix w = Gaussian.matrix("w", 21, 9, 256, 0.1);
        Path in = dir.resolve("w.npy");
        Npy.write(in, w);
        FloatMatrix x = Gaussian.matrix("x", 22, 300, 256, 1.0);
        Path calib = dir.resolve("x.npy");
        Npy.write(calib, x);
        HessianAccumulator h = new HessianAccumulator("x", 256);
        h.add(x);
        GgmlType type = GgmlType.byName(typeName);
        Path out = dir.resolve("w-" + typeName + ".gguf");
        Result r = QuantCliTest.run(
                "quantize",
                "--format",
                "gguf",
                "--method",
                "gptq",
                "--bits",
                "4",
                "--group-size",
                "32",
                symmetry,
                option,
                "--calib",
                calib.toString(),
                "--in",
                in.toString(),
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("w [9 x 256] " + type + " gptq: ").contains("GPTQ " + said + " relative output");
        try (Gguf g = Gguf.open(out)) {
            assertThat(g.tensor("w").type()).isEqualTo(type);
            assertThat(g.readBytes("w"))
                    .isEqualTo(GgmlGptq.quantize(type, w, h, 0.01, order, ForkJoinPool.commonPool())
                            .data());
        }
    }

    private static byte[] floats(float[] v) {
        return GgmlQuants.quantize(GgmlType.F32, v, 1, v.length);
    }
}
