package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.QuantCliTest.Result;
import dev.quant4j.internal.Json;
import dev.quant4j.io.DType;
import dev.quant4j.io.GptqCheckpoint;
import dev.quant4j.io.Npy;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code quant quantize --format gptq} and {@code quant dequantize} of its folder, through the command line. */
class QuantizeGptqFormatTest {

    @TempDir
    Path dir;

    private static final String UP = "model.layers.0.mlp.up_proj";

    /** A small Hugging Face folder: one F16 linear layer with bias, an embedding, a norm, a layer of 20 rows. */
    private Path hfFolder() throws Exception {
        Path hf = Files.createDirectories(dir.resolve("hf"));
        SafeTensorsWriter w = new SafeTensorsWriter();
        w.add("model.embed_tokens.weight", DType.F16, new long[] {100, 64}, f16(Gaussian.samples(1, 6400, 1)));
        w.add(UP + ".weight", DType.F16, new long[] {64, 64}, f16(Gaussian.samples(2, 4096, 0.05)));
        w.add(UP + ".bias", DType.F16, new long[] {64}, f16(Gaussian.samples(3, 64, 0.1)));
        w.add("model.layers.0.odd.weight", DType.F16, new long[] {20, 64}, f16(Gaussian.samples(4, 1280, 0.05)));
        w.addF32("model.norm.weight", new long[] {64}, Gaussian.samples(5, 64, 1));
        w.write(hf.resolve("model.safetensors"));
        Files.writeString(hf.resolve("config.json"), "{\"model_type\": \"llama\", \"hidden_size\": 64}");
        Files.writeString(hf.resolve("tokenizer.json"), "{}");
        Npy.write(dir.resolve("x.npy"), Gaussian.matrix("x", 6, 256, 64, 1));
        return hf;
    }

    private static byte[] f16(float[] v) {
        return DequantizeCommand.encode(v, DType.F16);
    }

    private static Map<?, ?> json(Path p) throws Exception {
        return (Map<?, ?>) Json.parse(Files.readString(p));
    }

    private String[] siblings() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toArray(String[]::new);
        }
    }

    @Test
    void gptqActOrderFromAHuggingFaceFolderAndBack() throws Exception {
        Path hf = hfFolder();
        Path out = dir.resolve("gptq");
        Result r = QuantCliTest.run(
                "quantize",
                "--method",
                "gptq",
                "--calib",
                dir.resolve("x.npy").toString(),
                "--act-order",
                "--sym",
                "--bits",
                "4",
                "--group-size",
                "16",
                "--in",
                hf.toString(),
                "--out",
                out.toString(),
                "--format",
                "gptq");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: kept 'model.layers.0.odd.weight' unquantized: its 20 output channels at 4 bits do not"
                        + " fill whole int32 words of qzeros (needs a multiple of 8)");
        assertThat(r.out())
                .contains("wrote " + out + " (GPTQ checkpoint: 1 quantized as qweight/qzeros/scales/g_idx, 4 unchanged,"
                        + " of which 2 kept unquantized: model.embed_tokens.weight, model.layers.0.odd.weight)");
        try (Stream<Path> s = Files.list(out)) {
            assertThat(s.map(p -> p.getFileName().toString()))
                    .containsExactlyInAnyOrder(
                            "model.safetensors", "quantize_config.json", "config.json", "tokenizer.json");
        }
        Map<?, ?> qc = json(out.resolve("quantize_config.json"));
        assertThat(qc.get("bits")).isEqualTo(4L);
        assertThat(qc.get("group_size")).isEqualTo(16L);
        assertThat(qc.get("desc_act")).isEqualTo(true);
        assertThat(qc.get("sym")).isEqualTo(true);
        assertThat(qc.get("damp_percent")).isEqualTo(0.01);
        assertThat(qc.get("checkpoint_format")).isEqualTo("gptq");
        Map<?, ?> hfConfig = json(out.resolve("config.json"));
        assertThat(hfConfig.get("model_type")).isEqualTo("llama");
        assertThat(hfConfig.get("quantization_config")).isEqualTo(qc);
        try (SafeTensors before = SafeTensors.open(hf.resolve("model.safetensors"));
                SafeTensors after = SafeTensors.open(out.resolve("model.safetensors"))) {
            assertThat(after.names())
                    .containsExactly(
                            UP + ".qweight",
                            UP + ".qzeros",
                            UP + ".scales",
                            UP + ".g_idx",
                            "model.embed_tokens.weight",
                            UP + ".bias",
                            "model.layers.0.odd.weight",
                            "model.norm.weight");
            for (String kept : new String[] {
                "model.embed_tokens.weight", UP + ".bias", "model.norm.weight", "model.layers.0.odd.weight"
            }) {
                assertThat(after.readBytes(kept)).as(kept).isEqualTo(before.readBytes(kept));
                assertThat(after.entry(kept).dtype())
                        .isEqualTo(before.entry(kept).dtype());
            }
            assertThat(after.entry(UP + ".qweight").shape()).containsExactly(8, 64);
            assertThat(after.entry(UP + ".scales").dtype()).isEqualTo(DType.F16);
        }
        QuantizedWeight q = GptqCheckpoint.read(out).content().weights().get(UP + ".weight");
        assertThat(((QuantizedTensor) q).hasGIdx()).isTrue();

        // dequantize reads the folder: the layer under its own name, everything else as it was
        Path deq = dir.resolve("deq.safetensors");
        Result d = QuantCliTest.run("dequantize", "--in", out.toString(), "--out", deq.toString());
        assertThat(d.code()).as(d.err()).isZero();
        assertThat(d.out()).contains("(1 tensor dequantized to F32, 4 unchanged)");
        try (SafeTensors st = SafeTensors.open(deq)) {
            FloatMatrix w = st.readMatrix(UP + ".weight");
            assertThat(w.toArray()).isEqualTo(q.dequantize().toArray());
            assertThat(st.names()).contains(UP + ".bias", "model.norm.weight");
        }
    }

    @Test
    void rtnFromAFileAsymmetric3Bit() throws Exception {
        Path hf = hfFolder();
        Path out = dir.resolve("rtn3");
        Result r = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--bits",
                "3",
                "--group-size",
                "32",
                "--include",
                "up_proj.weight",
                "--in",
                hf.resolve("model.safetensors").toString(),
                "--out",
                out.toString(),
                "--format",
                "gptq");
        assertThat(r.code()).as(r.err()).isZero();
        try (Stream<Path> s = Files.list(out)) {
            assertThat(s.map(p -> p.getFileName().toString()))
                    .containsExactlyInAnyOrder("model.safetensors", "quantize_config.json");
        }
        Map<?, ?> qc = json(out.resolve("quantize_config.json"));
        assertThat(qc.get("bits")).isEqualTo(3L);
        assertThat(qc.get("sym")).isEqualTo(false);
        assertThat(qc.get("desc_act")).isEqualTo(false);
        Result d = QuantCliTest.run(
                "dequantize",
                "--in",
                out.resolve("model.safetensors").toString(),
                "--out",
                dir.resolve("w.npy").toString());
        assertThat(d.code()).as(d.err()).isZero();
        assertThat(Npy.readMatrix(dir.resolve("w.npy")).toArray())
                .isEqualTo(GptqCheckpoint.read(out)
                        .content()
                        .weights()
                        .get(UP + ".weight")
                        .dequantize()
                        .toArray());
    }

    @Test
    void refusalsLeaveNothingBehind() throws Exception {
        Path hf = hfFolder();
        String x = dir.resolve("x.npy").toString();
        Path out = dir.resolve("out");
        String[] before = siblings();

        Result nf4 = QuantCliTest.run(
                "quantize", "--method", "nf4", "--in", hf.toString(), "--out", out.toString(), "--format", "gptq");
        assertThat(nf4.code()).isEqualTo(2);
        assertThat(nf4.err())
                .contains("--format gptq: --method nf4 codes are not linear; a GPTQ checkpoint holds --method rtn or"
                        + " gptq at --bits 2, 3, 4 or 8");

        Result bits5 = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--bits",
                "5",
                "--in",
                hf.toString(),
                "--out",
                out.toString(),
                "--format",
                "gptq");
        assertThat(bits5.code()).isEqualTo(2);
        assertThat(bits5.err()).contains("--format gptq: --bits 5;");

        Result same = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--in",
                hf.toString(),
                "--out",
                hf.toString(),
                "--format",
                "gptq",
                "--overwrite");
        assertThat(same.code()).isEqualTo(2);
        assertThat(same.err()).contains("is or holds the --in");

        Result strict = QuantCliTest.run(
                "quantize",
                "--method",
                "gptq",
                "--calib",
                x,
                "--group-size",
                "16",
                "--in",
                hf.toString(),
                "--out",
                out.toString(),
                "--format",
                "gptq",
                "--strict");
        assertThat(strict.code()).isEqualTo(2);
        assertThat(strict.err()).contains("tensor 'model.layers.0.odd.weight' [20, 64]: its 20 output channels");

        Files.writeString(hf.resolve("model.safetensors.index.json"), "{}");
        Files.move(hf.resolve("model.safetensors"), hf.resolve("model-00001-of-00002.safetensors"));
        Result sharded = QuantCliTest.run(
                "quantize", "--method", "rtn", "--in", hf.toString(), "--out", out.toString(), "--format", "gptq");
        assertThat(sharded.code()).isEqualTo(2);
        assertThat(sharded.err()).contains("is a sharded checkpoint (model.safetensors.index.json)");

        Result npy =
                QuantCliTest.run("quantize", "--method", "rtn", "--in", x, "--out", out.toString(), "--format", "gptq");
        assertThat(npy.code()).isEqualTo(2);
        assertThat(npy.err()).contains("must be a .safetensors file or a Hugging Face folder");

        assertThat(siblings()).containsExactly(before);
    }

    @Test
    void anExistingOutputNeedsOverwrite() throws Exception {
        Path hf = hfFolder();
        Path out = Files.createDirectories(dir.resolve("out"));
        Files.writeString(out.resolve("old.txt"), "old");
        String[] args = {
            "quantize",
            "--method",
            "rtn",
            "--sym",
            "--group-size",
            "32",
            "--in",
            hf.toString(),
            "--out",
            out.toString(),
            "--format",
            "gptq"
        };
        Result refused = QuantCliTest.run(args);
        assertThat(refused.code()).isEqualTo(2);
        assertThat(refused.err()).contains("--out " + out + " exists; --format gptq writes a new folder");
        String[] withOverwrite =
                Stream.concat(Stream.of(args), Stream.of("--overwrite")).toArray(String[]::new);
        Result replaced = QuantCliTest.run(withOverwrite);
        assertThat(replaced.code()).as(replaced.err()).isZero();
        assertThat(out.resolve("old.txt")).doesNotExist();
        assertThat(out.resolve("model.safetensors")).exists();
        assertThat(siblings()).containsExactly("hf", "out", "x.npy");
    }
}
