package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.QuantCliTest.Result;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.DType;
import dev.quant4j.io.Npy;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import dev.quant4j.tensor.HalfFloats;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a new user runs into: outputs onto inputs, empty calibration data, files already quantized, tensors a scheme
 * cannot take, Hugging Face checkpoints' embeddings, BF16 outputs, and the messages around them. Every case goes
 * through the command line and checks the exit code, the message and the files left on disk.
 */
class NewUserPathsTest {

    @TempDir
    Path dir;

    private List<String> files() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static byte[] f32(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b.array();
    }

    private static byte[] bf16(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putShort(HalfFloats.floatToBf16(f));
        }
        return b.array();
    }

    private Path safetensors(String name, SafeTensorsWriter w) throws Exception {
        Path p = dir.resolve(name);
        w.write(p);
        return p;
    }

    @Test
    void anOutputThatIsTheInputIsRefusedAndTheInputKept() throws Exception {
        FloatMatrix w = Gaussian.matrix("w", 1, 8, 128, 0.1);
        Path in = safetensors("w.safetensors", new SafeTensorsWriter().addF32("w", new long[] {8, 128}, w.toArray()));
        byte[] original = Files.readAllBytes(in);
        Path link = dir.resolve("link.safetensors");
        Files.createSymbolicLink(link, in);
        for (String out : new String[] {
            in.toString(), link.toString(), dir.resolve("./w.safetensors").toString()
        }) {
            Result r = QuantCliTest.run("quantize", "--method", "rtn", "--in", in.toString(), "--out", out);
            assertThat(r.code()).as(r.err()).isEqualTo(2);
            assertThat(r.err().strip())
                    .isEqualTo("quant: --out " + out + " is the --in file " + in
                            + "; write to another file (or pass --overwrite to replace the input)");
            assertThat(Files.readAllBytes(in)).isEqualTo(original);
        }
        // the calibration file is an input too
        Path x = dir.resolve("x.npy");
        Npy.write(x, Gaussian.matrix("x", 2, 64, 128, 1.0));
        Path xAsOut = dir.resolve("x.safetensors");
        Files.copy(x, xAsOut);
        Result r = QuantCliTest.run(
                "quantize",
                "--method",
                "gptq",
                "--in",
                in.toString(),
                "--calib",
                xAsOut.toString(),
                "--out",
                xAsOut.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("is the --calib file");
        // dequantize likewise
        Path q = dir.resolve("q.safetensors");
        assertThat(QuantCliTest.run("quantize", "--method", "rtn", "--in", in.toString(), "--out", q.toString())
                        .code())
                .isZero();
        byte[] quantized = Files.readAllBytes(q);
        r = QuantCliTest.run("dequantize", "--in", q.toString(), "--out", q.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("is the --in file");
        assertThat(Files.readAllBytes(q)).isEqualTo(quantized);
        // --overwrite: replaced, atomically, by the quantized file
        r = QuantCliTest.run(
                "quantize", "--method", "rtn", "--in", in.toString(), "--out", in.toString(), "--overwrite");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Files.readAllBytes(in)).isEqualTo(quantized);
        assertThat(files())
                .containsExactly("link.safetensors", "q.safetensors", "w.safetensors", "x.npy", "x.safetensors");
    }

    @Test
    void gptqWithEmptyCalibrationDataFailsNamingTheLayer() throws Exception {
        Path w = dir.resolve("fc1.npy");
        Npy.write(w, Gaussian.matrix("fc1", 3, 16, 128, 0.1));
        Path x = dir.resolve("x.npy");
        Npy.write(x, FloatMatrix.zeros("x", 32, 128));
        for (String method : new String[] {"gptq", "awq"}) {
            Result r = QuantCliTest.run(
                    "quantize",
                    "--method",
                    method,
                    "--in",
                    w.toString(),
                    "--calib",
                    x.toString(),
                    "--out",
                    dir.resolve("q.safetensors").toString());
            assertThat(r.code()).as(r.err()).isEqualTo(2);
            assertThat(r.err().strip()).doesNotContain("\n");
            assertThat(r.err())
                    .contains(
                            method.equals("gptq")
                                    ? "GPTQ layer 'fc1': the calibration data is empty"
                                    : "x.npy: the" + " calibration data is empty");
        }
        assertThat(files()).containsExactly("fc1.npy", "x.npy");
    }

    @Test
    void gptqWithSomeDeadFeaturesSaysSoPlainlyAndPrintsTheOutputErrorRatio() throws Exception {
        FloatMatrix wm = Gaussian.matrix("fc1", 3, 16, 128, 0.1);
        Path w = dir.resolve("fc1.npy");
        Npy.write(w, wm);
        FloatMatrix xm = Gaussian.matrix("x", 4, 256, 128, 1.0);
        for (int t = 0; t < 256; t++) {
            xm.array()[t * 128 + 5] = 0f;
            xm.array()[t * 128 + 77] = 0f;
        }
        Path x = dir.resolve("x.npy");
        Npy.write(x, xm);
        Path q = dir.resolve("q.safetensors");
        Result r = QuantCliTest.run(
                "quantize", "--method", "gptq", "--in", w.toString(), "--calib", x.toString(), "--out", q.toString());
        assertThat(r.code()).as(r.err()).isZero();
        // one plain line on stderr, no java.util.logging timestamp or source line
        assertThat(r.err().lines().toList())
                .containsExactly("quant: warning: GPTQ layer 'fc1': 2 of 128 input features are never activated"
                        + " (diag(H) == 0); their weights are set to 0");
        assertThat(r.out()).contains("g128: ").contains(", 2 of 128 input features never activated");
        assertThat(r.out())
                .contains("1 layer with input features the calibration data never activates (their weights set to 0)");
        // the printed ratio is ||(W - Q) X|| / ||W X|| over the calibration tokens
        HessianAccumulator h = new HessianAccumulator("x", 128);
        h.add(xm);
        var result = new Gptq(GptqConfig.defaults(4).withGroupSize(128)).quantize(wm, h);
        double ratio = Math.sqrt(
                h.outputError(wm, result.tensor().dequantize()) / h.outputError(wm, FloatMatrix.zeros("z", 16, 128)));
        assertThat(ratio).isBetween(0.01, 0.5);
        assertThat(r.out())
                .contains(String.format(
                        Locale.ROOT, "GPTQ relative output error ||(W - Q) X|| / ||W X|| %.4g (RTN ", ratio));
    }

    @Test
    void aFileQuantizedByQuant4jIsNamedAsSuch() throws Exception {
        Path w = dir.resolve("w.npy");
        Npy.write(w, Gaussian.matrix("w", 5, 4, 256, 0.1));
        Path q = dir.resolve("q.safetensors");
        assertThat(QuantCliTest.run("quantize", "--method", "rtn", "--in", w.toString(), "--out", q.toString())
                        .code())
                .isZero();
        Result r = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--in",
                q.toString(),
                "--out",
                dir.resolve("qq.safetensors").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip())
                .isEqualTo("quant: " + q + " is already quantized by quant4j (format 1); quantize the original"
                        + " weights, or 'quant dequantize' it first");
        assertThat(files()).containsExactly("q.safetensors", "w.npy");
    }

    @Test
    void aTensorTheGroupSizeDoesNotDivideIsKeptAndListedUnlessStrict() throws Exception {
        FloatMatrix a = Gaussian.matrix("a", 6, 4, 256, 0.1);
        float[] b = {1f, 2f, 3f, 4f, 5f, 6f};
        Path in = safetensors(
                "m.safetensors",
                new SafeTensorsWriter()
                        .addF32("a", new long[] {4, 256}, a.toArray())
                        .add("b", DType.BF16, new long[] {2, 3}, bf16(b)));
        Path q = dir.resolve("q.safetensors");
        Result r = QuantCliTest.run("quantize", "--method", "rtn", "--in", in.toString(), "--out", q.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err().strip())
                .isEqualTo("quant: kept 'b' unquantized: group size 128 does not divide its 3 input features");
        assertThat(r.out()).contains("(1 quantized, 1 unchanged, of which 1 kept unquantized: b)");
        QuantizedSafeTensors.Content c = QuantizedSafeTensors.read(q);
        assertThat(c.weights()).containsOnlyKeys("a");
        assertThat(c.other()).singleElement().satisfies(p -> {
            assertThat(p.name()).isEqualTo("b");
            assertThat(p.dtype()).isEqualTo(DType.BF16);
            assertThat(p.bytes()).containsExactly(bf16(b));
        });
        Path strict = dir.resolve("strict.safetensors");
        r = QuantCliTest.run(
                "quantize", "--method", "rtn", "--in", in.toString(), "--out", strict.toString(), "--strict");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip())
                .isEqualTo("quant: tensor 'b' [2, 3]: group size 128 does not divide its 3 input features (--strict)");
        assertThat(files()).containsExactly("m.safetensors", "q.safetensors");
    }

    /**
     * A Hugging Face Llama-style file: by default only the linear layers are quantized (not the embedding table, the
     * output head or the 1-D norms), as AutoGPTQ and llama.cpp do; --include overrides. Dequantized to BF16 the file
     * keeps its size class; the values are the dequantized weights rounded to BF16.
     */
    @Test
    void huggingFaceCheckpointsQuantizeTheLinearLayersAndDequantizeToBf16() throws Exception {
        FloatMatrix embed = Gaussian.matrix("e", 7, 32, 128, 0.5);
        FloatMatrix qProj = Gaussian.matrix("q", 8, 128, 128, 0.05);
        FloatMatrix head = Gaussian.matrix("h", 9, 32, 128, 0.05);
        float[] norm = new float[128];
        java.util.Arrays.fill(norm, 1f);
        Path in = safetensors(
                "model.safetensors",
                new SafeTensorsWriter()
                        .add("model.embed_tokens.weight", DType.BF16, new long[] {32, 128}, bf16(embed.toArray()))
                        .add(
                                "model.layers.0.self_attn.q_proj.weight",
                                DType.BF16,
                                new long[] {128, 128},
                                bf16(qProj.toArray()))
                        .add("model.norm.weight", DType.BF16, new long[] {128}, bf16(norm))
                        .add("lm_head.weight", DType.BF16, new long[] {32, 128}, bf16(head.toArray())));
        Path q = dir.resolve("q.safetensors");
        Result r = QuantCliTest.run("quantize", "--method", "rtn", "--in", in.toString(), "--out", q.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err().lines().toList())
                .containsExactly(
                        "quant: kept 'model.embed_tokens.weight' unquantized: an embedding or output head (select it"
                                + " with --include)",
                        "quant: kept 'lm_head.weight' unquantized: an embedding or output head (select it with"
                                + " --include)");
        QuantizedSafeTensors.Content c = QuantizedSafeTensors.read(q);
        assertThat(c.weights()).containsOnlyKeys("model.layers.0.self_attn.q_proj.weight");
        assertThat(c.other().stream().map(QuantizedSafeTensors.PassThrough::name))
                .containsExactly("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight");
        // --include overrides the default
        Path q2 = dir.resolve("q2.safetensors");
        r = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--in",
                in.toString(),
                "--out",
                q2.toString(),
                "--include",
                "proj|lm_head");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(QuantizedSafeTensors.read(q2).weights())
                .containsOnlyKeys("model.layers.0.self_attn.q_proj.weight", "lm_head.weight");
        // dequantize to BF16: the quantized tensor in BF16, the others byte for byte
        Path back = dir.resolve("back.safetensors");
        r = QuantCliTest.run("dequantize", "--in", q.toString(), "--out", back.toString(), "--dtype", "bf16");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("(1 tensor dequantized to BF16, 3 unchanged)");
        float[] expected = QuantizedSafeTensors.read(q)
                .weights()
                .get("model.layers.0.self_attn.q_proj.weight")
                .dequantize()
                .toArray();
        try (SafeTensors st = SafeTensors.open(back)) {
            SafeTensors.Entry e = st.entry("model.layers.0.self_attn.q_proj.weight");
            assertThat(e.dtype()).isEqualTo(DType.BF16);
            assertThat(st.readBytes(e.name())).containsExactly(bf16(expected));
            try (SafeTensors orig = SafeTensors.open(in)) {
                for (String name : List.of("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")) {
                    assertThat(st.readBytes(name)).as(name).containsExactly(orig.readBytes(name));
                }
            }
        }
        assertThat(Files.size(back)).isLessThan(Files.size(in) + 1024);
        // f16 likewise; a .npy output is float32 only
        r = QuantCliTest.run(
                "dequantize",
                "--in",
                q.toString(),
                "--out",
                dir.resolve("h.safetensors").toString(),
                "--dtype",
                "f16");
        assertThat(r.code()).as(r.err()).isZero();
        r = QuantCliTest.run(
                "dequantize",
                "--in",
                q.toString(),
                "--out",
                dir.resolve("x.npy").toString(),
                "--dtype",
                "bf16");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("a .npy output is float32");
        r = QuantCliTest.run(
                "dequantize",
                "--in",
                q.toString(),
                "--out",
                dir.resolve("y.safetensors").toString(),
                "--dtype",
                "fp8");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--dtype 'fp8': expected f32, f16 or bf16");
        assertThat(files()).doesNotContain("x.npy", "y.safetensors");
    }

    @Test
    void dequantizeCountsCodebookTensors() throws Exception {
        Path w = dir.resolve("w.npy");
        Npy.write(w, Gaussian.matrix("w", 5, 4, 256, 0.1));
        Path q = dir.resolve("q.safetensors");
        assertThat(QuantCliTest.run("quantize", "--method", "nf4", "--in", w.toString(), "--out", q.toString())
                        .code())
                .isZero();
        Result r = QuantCliTest.run(
                "dequantize",
                "--in",
                q.toString(),
                "--out",
                dir.resolve("b.safetensors").toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("(1 tensor dequantized to F32, 0 unchanged)");
    }

    @Test
    void messagesNameTheOptionAndBadInputPrintsNothingOnStdout() throws Exception {
        Result r = QuantCliTest.run("memory", "--params", "7e9", "--params", "abc");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.out()).isEmpty();
        assertThat(r.err().strip()).isEqualTo("quant: --params 'abc' is not a number (examples: 7e9, 70B, 125M)");

        Path w = dir.resolve("w.npy");
        Npy.write(w, Gaussian.matrix("w", 5, 4, 256, 0.1));
        Path out = dir.resolve("q.safetensors");
        r = QuantCliTest.run(
                "quantize",
                "--method",
                "gptq",
                "--in",
                w.toString(),
                "--calib",
                w.toString(),
                "--out",
                out.toString(),
                "--damp",
                "-1");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip())
                .isEqualTo("quant: --damp -1.0 must be a positive fraction of the mean Hessian diagonal (for example"
                        + " 0.01)");

        r = QuantCliTest.run(
                "quantize", "--method", "rtn", "--in", w.toString(), "--out", out.toString(), "--sym", "--signed");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).startsWith("quant: ").doesNotContain("Error:").contains("mutually exclusive");
        assertThat(files()).containsExactly("w.npy");

        r = QuantCliTest.run("--version");
        assertThat(r.code()).isZero();
        assertThat(r.out().lines().findFirst().orElseThrow()).matches("quant4j \\d+\\.\\d+\\.\\d+(-SNAPSHOT)?");

        r = QuantCliTest.run("quantize", "--help");
        assertThat(r.out()).contains("'minmax'").contains("--strict").contains("--overwrite");
    }
}
