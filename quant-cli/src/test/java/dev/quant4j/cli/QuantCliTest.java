package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.DType;
import dev.quant4j.io.Npy;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuantCliTest {

    @TempDir
    Path dir;

    Path weights;
    FloatMatrix w;

    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Quant.run(
                args,
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @BeforeEach
    void writeWeights() throws Exception {
        w = Gaussian.matrix("w", 1, 16, 256, 0.15);
        weights = dir.resolve("w.npy");
        Npy.write(weights, w);
    }

    private List<Path> files() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    private void assertBadInput(Result r, String... fragments) throws Exception {
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").startsWith("quant: ");
        for (String f : fragments) {
            assertThat(r.err()).contains(f);
        }
        assertThat(files())
                .as("no output left behind")
                .allSatisfy(p -> assertThat(p.getFileName().toString())
                        .isIn("w.npy", "bad.npy", "bad.safetensors", "nan.npy", "vec.npy", "m.safetensors"));
    }

    @Test
    void quantizeThenDequantizeNpyMatchesTheLibrary() throws Exception {
        Path q = dir.resolve("q.safetensors");
        Result r = run(
                "quantize",
                "--method",
                "rtn",
                "--in",
                weights.toString(),
                "--out",
                q.toString(),
                "--bits",
                "3",
                "--group-size",
                "64",
                "--sym");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("w [16 x 256] linear 3-bit sym g64");
        try (SafeTensors st = SafeTensors.open(q)) {
            assertThat(st.metadata()).containsEntry("quant4j.format", "1");
            assertThat(st.metadata().get("quant4j.tensor.w"))
                    .contains("\"bits\":3")
                    .contains("\"symmetry\":\"sym\"");
        }
        Path back = dir.resolve("back.npy");
        r = run("dequantize", "--in", q.toString(), "--out", back.toString());
        assertThat(r.code()).as(r.err()).isZero();
        float[] expected = new RtnQuantizer(LinearScheme.sym(3, 64))
                .quantize(w)
                .dequantize()
                .toArray();
        assertThat(Npy.readMatrix(back).toArray()).containsExactly(expected);
    }

    @Test
    void nf4AndFp4QuantizeAndDequantizeAsTheLibrary() throws Exception {
        for (String method : new String[] {"nf4", "fp4"}) {
            Path q = dir.resolve(method + ".safetensors");
            Result r = run(
                    "quantize",
                    "--method",
                    method,
                    "--in",
                    weights.toString(),
                    "--out",
                    q.toString(),
                    "--block-size",
                    "128");
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).contains("w [16 x 256] " + method + " block 128: 4.250 bits/weight");
            Path back = dir.resolve(method + ".npy");
            r = run("dequantize", "--in", q.toString(), "--out", back.toString());
            assertThat(r.code()).as(r.err()).isZero();
            CodebookScheme scheme = new CodebookScheme(method.equals("nf4") ? Codebook.NF4 : Codebook.FP4, 128);
            float[] expected =
                    new BlockwiseQuantizer(scheme).quantize(w).dequantize().toArray();
            assertThat(Npy.readMatrix(back).toArray()).containsExactly(expected);
        }
    }

    @Test
    void gptqWithActOrderStoresGIdxAndDequantizesAsTheLibrary() throws Exception {
        FloatMatrix x = Gaussian.matrix("x", 2, 300, 256, 1.0);
        Path calib = dir.resolve("x.npy");
        Npy.write(calib, x);
        Path q = dir.resolve("gptq.safetensors");
        Result r = run(
                "quantize",
                "--method",
                "gptq",
                "--in",
                weights.toString(),
                "--out",
                q.toString(),
                "--calib",
                calib.toString(),
                "--group-size",
                "64",
                "--act-order",
                "--mse",
                "--damp",
                "0.02");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains("w [16 x 256] gptq linear 4-bit asym g64 act-order mse")
                .contains("GPTQ relative output error ||(W - Q) X|| / ||W X|| ")
                .contains("damping 0.02");
        try (SafeTensors st = SafeTensors.open(q)) {
            assertThat(st.entries()).containsKey("w.q4j_g_idx");
            assertThat(st.metadata().get("quant4j.tensor.w")).contains("\"method\":\"gptq\"");
        }
        Path back = dir.resolve("gptq.npy");
        r = run("dequantize", "--in", q.toString(), "--out", back.toString());
        assertThat(r.code()).as(r.err()).isZero();
        HessianAccumulator h = new HessianAccumulator("x", 256);
        h.add(x);
        GptqConfig config = GptqConfig.defaults(4)
                .withGroupSize(64)
                .withActOrder(true)
                .withMse(true)
                .withPercdamp(0.02);
        float[] expected = new Gptq(config).quantize(w, h).tensor().dequantize().toArray();
        assertThat(Npy.readMatrix(back).toArray()).containsExactly(expected);
        float[] plain = new Gptq(config.withMse(false))
                .quantize(w, h)
                .tensor()
                .dequantize()
                .toArray();
        assertThat(expected).isNotEqualTo(plain); // the range search changed some group's range
    }

    @Test
    void awqStoresScalesAndDequantizesToTheEffectiveWeightAsTheLibrary() throws Exception {
        FloatMatrix x = Gaussian.matrix("x", 4, 700, 256, 1.0);
        for (int t = 0; t < 700; t++) {
            x.array()[t * 256 + 7] *= 25; // an outlier channel
        }
        Path calib = dir.resolve("x.npy");
        Npy.write(calib, x);
        Path q = dir.resolve("awq.safetensors");
        Result r = run(
                "quantize",
                "--method",
                "awq",
                "--in",
                weights.toString(),
                "--out",
                q.toString(),
                "--calib",
                calib.toString(),
                "--bits",
                "3",
                "--group-size",
                "64");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("w [16 x 256] awq linear 3-bit minmax g64").contains("AWQ alpha");
        try (SafeTensors st = SafeTensors.open(q)) {
            assertThat(st.entries()).containsKey("w.q4j_awq_scales");
        }
        Path back = dir.resolve("awq.npy");
        r = run("dequantize", "--in", q.toString(), "--out", back.toString());
        assertThat(r.code()).as(r.err()).isZero();
        AwqStatistics stats = new AwqStatistics("x", 256, 700);
        stats.add(x);
        float[] expected = new Awq(AwqConfig.defaults(3).withGroupSize(64))
                .quantize(w, stats)
                .tensor()
                .dequantize()
                .toArray();
        assertThat(Npy.readMatrix(back).toArray()).containsExactly(expected);
    }

    @Test
    void nf4WithDoubleQuant() throws Exception {
        Path q = dir.resolve("dq.safetensors");
        Result r =
                run("quantize", "--method", "nf4", "--double-quant", "--in", weights.toString(), "--out", q.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("nf4 block 64 double-quant");
        Path back = dir.resolve("dq.npy");
        assertThat(run("dequantize", "--in", q.toString(), "--out", back.toString())
                        .code())
                .isZero();
        float[] expected = new BlockwiseQuantizer(CodebookScheme.nf4(64).withDoubleQuant())
                .quantize(w)
                .dequantize()
                .toArray();
        assertThat(Npy.readMatrix(back).toArray()).containsExactly(expected);
    }

    @Test
    void modelSafetensorsWithIncludeAndPassThrough() throws Exception {
        Path model = dir.resolve("m.safetensors");
        ByteOrderHelper h = new ByteOrderHelper();
        new SafeTensorsWriter()
                .addF32("layer.0.weight", new long[] {16, 256}, w.toArray())
                .add("layer.0.half", DType.F16, new long[] {2, 128}, h.f16(256, 0.5f))
                .addF32("layer.0.bias", new long[] {16}, new float[16])
                .write(model);
        Path q = dir.resolve("q.safetensors");
        Result r = run(
                "quantize",
                "--method",
                "rtn",
                "--in",
                model.toString(),
                "--out",
                q.toString(),
                "--include",
                "weight$",
                "--bits",
                "8",
                "--group-size",
                "-1");
        assertThat(r.code()).as(r.err()).isZero();
        QuantizedSafeTensors.Content c = QuantizedSafeTensors.read(q);
        assertThat(c.weights()).containsOnlyKeys("layer.0.weight");
        assertThat(c.other())
                .extracting(QuantizedSafeTensors.PassThrough::name)
                .containsExactly("layer.0.half", "layer.0.bias");

        Path all = dir.resolve("all.safetensors");
        r = run("quantize", "--method", "rtn", "--in", model.toString(), "--out", all.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(QuantizedSafeTensors.read(all).weights()).containsOnlyKeys("layer.0.weight", "layer.0.half");

        Path deq = dir.resolve("deq.safetensors");
        r = run("dequantize", "--in", q.toString(), "--out", deq.toString());
        assertThat(r.code()).as(r.err()).isZero();
        try (SafeTensors st = SafeTensors.open(deq)) {
            assertThat(st.names()).containsExactlyInAnyOrder("layer.0.weight", "layer.0.half", "layer.0.bias");
            assertThat(st.entry("layer.0.half").dtype()).isEqualTo(DType.F16);
            float[] expected = new RtnQuantizer(LinearScheme.asym(8, -1))
                    .quantize(w)
                    .dequantize()
                    .toArray();
            assertThat(st.readMatrix("layer.0.weight").toArray()).containsExactly(expected);
        }
    }

    /** FP16 test data. */
    static final class ByteOrderHelper {
        byte[] f16(int n, float v) {
            java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate(2 * n).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) {
                bb.putShort(Float.floatToFloat16(v * (i % 7 - 3)));
            }
            return bb.array();
        }
    }

    @Test
    void badInputsExitTwoWithOneLineAndNoOutput() throws Exception {
        String out = dir.resolve("q.safetensors").toString();
        assertBadInput(
                run(
                        "quantize",
                        "--method",
                        "rtn",
                        "--in",
                        dir.resolve("missing.npy").toString(),
                        "--out",
                        out),
                "no such file",
                "missing.npy");
        assertBadInput(
                run("quantize", "--method", "rtn", "--in", weights.toString(), "--out", out, "--bits", "9"),
                "bits must be in 2..8, got 9");
        assertBadInput(
                run("quantize", "--method", "rtn", "--in", weights.toString(), "--out", out, "--group-size", "100"),
                "tensor 'w': group size 100 does not divide its 256 input features",
                "'w'");
        assertBadInput(
                run("quantize", "--method", "rtn", "--in", weights.toString(), "--out", out, "--sym", "--signed"),
                "mutually exclusive");
        assertBadInput(
                run("quantize", "--method", "xyz", "--in", weights.toString(), "--out", out), "unknown method 'xyz'");
        assertBadInput(
                run("quantize", "--method", "rtn", "--in", weights.toString(), "--out", out, "--calib", "x.npy"),
                "--calib applies to gptq and awq only");
        assertBadInput(
                run("quantize", "--method", "gptq", "--in", weights.toString(), "--out", out),
                "gptq needs --calib X.npy");
        Npy.write(dir.resolve("vec.npy"), Gaussian.matrix("x", 3, 10, 128, 1.0));
        assertBadInput(
                run(
                        "quantize",
                        "--method",
                        "gptq",
                        "--in",
                        weights.toString(),
                        "--out",
                        out,
                        "--calib",
                        dir.resolve("vec.npy").toString()),
                "has 128 columns, tensor 'w' [16, 256] has 256 input features");
        assertBadInput(
                run(
                        "quantize",
                        "--method",
                        "gptq",
                        "--in",
                        weights.toString(),
                        "--out",
                        out,
                        "--calib",
                        dir.resolve("vec.npy").toString(),
                        "--group-size",
                        "0"),
                "--group-size 0 (per tensor) is not a GPTQ option");
        assertBadInput(
                run(
                        "quantize",
                        "--method",
                        "gptq",
                        "--in",
                        weights.toString(),
                        "--out",
                        out,
                        "--calib",
                        dir.resolve("vec.npy").toString(),
                        "--signed"),
                "--signed is not a GPTQ form");
        assertBadInput(
                run("quantize", "--method", "awq", "--in", weights.toString(), "--out", out),
                "awq needs --calib X.npy");
        assertBadInput(
                run(
                        "quantize",
                        "--method",
                        "awq",
                        "--in",
                        weights.toString(),
                        "--out",
                        out,
                        "--calib",
                        dir.resolve("vec.npy").toString(),
                        "--sym"),
                "--asym/--sym/--signed applies to rtn and gptq");

        assertBadInput(
                run(
                        "quantize",
                        "--method",
                        "rtn",
                        "--in",
                        weights.toString(),
                        "--out",
                        dir.resolve("q.bin").toString()),
                "must end in .safetensors");
        assertBadInput(run("quantize", "--in", weights.toString()), "Missing required option");
        assertBadInput(
                run("quantize", "--method", "nf4", "--in", weights.toString(), "--out", out, "--block-size", "48"),
                "block size must be a power of two from 32 to 4096, got 48");
        assertBadInput(
                run("quantize", "--method", "nf4", "--in", weights.toString(), "--out", out, "--bits", "3"),
                "--bits 3: nf4 codes are 4 bits");
        assertBadInput(
                run("quantize", "--method", "fp4", "--in", weights.toString(), "--out", out, "--group-size", "64"),
                "--group-size applies to rtn, gptq and awq only, not to fp4");
        assertBadInput(
                run("quantize", "--method", "rtn", "--in", weights.toString(), "--out", out, "--block-size", "64"),
                "--block-size applies to nf4 and fp4 only, not to rtn");

        Path nan = dir.resolve("nan.npy");
        float[] data = w.toArray();
        data[300] = Float.NaN;
        Npy.write(nan, FloatMatrix.of(16, 256, data));
        assertBadInput(
                run("quantize", "--method", "rtn", "--in", nan.toString(), "--out", out),
                "tensor 'nan' has NaN at [1, 44]");

        Path vec = dir.resolve("vec.npy");
        Npy.write(vec, new long[] {8}, new float[8]);
        assertBadInput(
                run("quantize", "--method", "rtn", "--in", vec.toString(), "--out", out),
                "tensor 'vec' has 1 dimensions");

        Path empty = dir.resolve("bad.npy");
        Npy.write(empty, new long[] {0, 4}, new float[0]);
        assertBadInput(run("quantize", "--method", "rtn", "--in", empty.toString(), "--out", out), "is empty");

        byte[] good = Files.readAllBytes(weights);
        Files.write(empty, Arrays.copyOf(good, good.length - 7));
        assertBadInput(
                run("quantize", "--method", "rtn", "--in", empty.toString(), "--out", out), "bad.npy", "data bytes");

        Path badSt = dir.resolve("bad.safetensors");
        byte[] st = new SafeTensorsWriter()
                .addF32("a", new long[] {2, 2}, new float[4])
                .toBytes();
        java.nio.ByteBuffer.wrap(st).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
        Files.write(badSt, st);
        assertBadInput(
                run("quantize", "--method", "rtn", "--in", badSt.toString(), "--out", out),
                "header length 1099511627776 runs past the end");
        assertBadInput(
                run(
                        "dequantize",
                        "--in",
                        badSt.toString(),
                        "--out",
                        dir.resolve("o.npy").toString()),
                "runs past the end");
        assertBadInput(
                run(
                        "dequantize",
                        "--in",
                        weights.toString(),
                        "--out",
                        dir.resolve("o.npy").toString()),
                "must be a quantized .safetensors");
    }

    @Test
    void reportWritesTableAndPlots() throws Exception {
        Path out = dir.resolve("rep");
        Result r = run("report", "--in", weights.toString(), "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("| asym | g128 | 4 |").contains("| signed | per-channel | 8 |");
        assertThat(r.out()).contains("| nf4 | block 64 | 4 | 4.500 |").contains("| fp4 | block 64 | 4 | 4.500 |");
        String md = Files.readString(out.resolve("report.md"));
        assertThat(md).contains("| sym | per-channel | 2 |");
        // the throughput section: a row per RTN width and per codebook, with positive speeds
        assertThat(md).contains("## Throughput per bit width").contains("| linear 4-bit asym g128 |");
        assertThat(md).containsPattern("\\| nf4 block 64 \\| [0-9]+\\.[0-9]{2} \\| [0-9]+\\.[0-9]{2} \\|");
        for (String png : new String[] {"histogram.png", "error-vs-bits.png", "throughput.png"}) {
            byte[] b = Files.readAllBytes(out.resolve(png));
            assertThat(b.length).isGreaterThan(1000);
            assertThat(Arrays.copyOf(b, 4)).containsExactly(0x89, 'P', 'N', 'G');
        }
    }

    @Test
    void memoryTableMatchesTheNote() {
        Result r = run("memory", "--params", "7e9", "--params", "70B");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("| 7B | 28.0 GB | 14.0 GB | 7.0 GB | 3.5 GB |");
        assertThat(r.out()).contains("| 70B | 280.0 GB | 140.0 GB | 70.0 GB | 35.0 GB |");
        assertThat(r.out()).contains("KV cache");
        assertThat(run("memory", "--params", "-5").code()).isEqualTo(2);
        assertThat(run("memory", "--params", "lots").err()).contains("'lots' is not a number");
    }
}
