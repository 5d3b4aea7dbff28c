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
import dev.quant4j.io.OnnxModel;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code quant inspect}, run through {@link Quant#run} as a user runs it: exit code, stdout, stderr, files. */
class InspectCommandTest {

    @TempDir
    Path dir;

    private static QuantCliTest.Result run(String... args) {
        return QuantCliTest.run(args);
    }

    private List<String> files() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** Runs inspect on {@code file}, checks it succeeded silently and wrote nothing, and returns stdout's lines. */
    private List<String> inspect(Path file) throws Exception {
        List<String> before = files();
        QuantCliTest.Result r = run("inspect", file.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).isEmpty();
        assertThat(files()).as("inspect writes nothing").isEqualTo(before);
        return r.out().lines().toList();
    }

    /** The row of tensor {@code name}: the line that starts with it followed by two spaces. */
    private static String row(List<String> lines, String name) {
        List<String> found =
                lines.stream().filter(l -> l.startsWith(name + "  ")).toList();
        assertThat(found)
                .as("one row for " + name + " in\n" + String.join("\n", lines))
                .hasSize(1);
        return found.get(0);
    }

    /** A row's cells: columns are separated by two or more spaces. */
    private static List<String> cells(String row) {
        return Arrays.asList(row.trim().split(" {2,}"));
    }

    @Test
    void npyShowsItsOneTensorAndTheTotal() throws Exception {
        Path f = dir.resolve("w.npy");
        Npy.write(f, Gaussian.matrix("w", 1, 16, 256, 0.15));
        assertThat(inspect(f))
                .containsExactly(
                        "name  dtype  shape      bytes",
                        "w     F32    [16, 256]  16384",
                        "total: 1 tensor, 4096 parameters, 16384 bytes (16.0 KiB)");

        // float16, 3-D: numpy's header, written by hand
        String header = "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3, 4), }";
        header = header + " ".repeat(64 - (10 + header.length() + 1) % 64) + "\n";
        ByteBuffer b = ByteBuffer.allocate(10 + header.length() + 2 * 24).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length());
        b.put(header.getBytes(StandardCharsets.ISO_8859_1));
        Path h = dir.resolve("half.npy");
        Files.write(h, b.array());
        assertThat(inspect(h))
                .containsExactly(
                        "name  dtype  shape      bytes",
                        "half  F16    [2, 3, 4]     48",
                        "total: 1 tensor, 24 parameters, 48 bytes (48 B)");
    }

    @Test
    void plainSafetensorsInHeaderOrderWithEveryDtype() throws Exception {
        Path f = dir.resolve("m.safetensors");
        new SafeTensorsWriter()
                .addF32("layer.weight", new long[] {4, 8}, new float[32])
                .add("layer.bias", DType.F16, new long[] {4}, new byte[8])
                .add("ids", DType.I64, new long[] {1, 3}, new byte[24])
                .add("scalar", DType.BF16, new long[] {}, new byte[2])
                .write(f);
        List<String> lines = inspect(f);
        assertThat(lines.get(0)).isEqualTo("name          dtype  shape   bytes");
        assertThat(cells(row(lines, "layer.weight"))).containsExactly("layer.weight", "F32", "[4, 8]", "128");
        assertThat(cells(row(lines, "layer.bias"))).containsExactly("layer.bias", "F16", "[4]", "8");
        assertThat(cells(row(lines, "ids"))).containsExactly("ids", "I64", "[1, 3]", "24");
        assertThat(cells(row(lines, "scalar"))).containsExactly("scalar", "BF16", "[]", "2");
        assertThat(lines).hasSize(6);
        assertThat(lines.get(5)).isEqualTo("total: 4 tensors, 40 parameters, 162 bytes (162 B)");
        // the bytes column is right-aligned: every row ends in the same column
        assertThat(lines.subList(0, 5).stream().map(String::length).distinct()).hasSize(1);
    }

    /**
     * A quantized file: each quantized tensor is one row (its NAME.q4j_* parts are not listed) with its scheme, method
     * and bits/weight, which is what its parts cost in the file and what the library's bitsPerWeight() says.
     */
    @Test
    void quantizedSafetensorsShowSchemeAndBitsPerWeight() throws Exception {
        FloatMatrix w = Gaussian.matrix("w", 1, 16, 256, 0.15);
        FloatMatrix x = Gaussian.matrix("x", 2, 300, 256, 1.0);
        byte[] bias = new byte[64];
        PassThrough b = new PassThrough("bias", DType.F32, new long[] {16}, bias);

        Path rtn = dir.resolve("rtn.safetensors");
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 128)).quantize(w);
        QuantizedSafeTensors.write(rtn, List.of(q), "rtn", List.of(b));
        List<String> lines = inspect(rtn);
        assertThat(lines)
                .containsExactly(
                        "name  dtype  shape      bytes  bits/weight  scheme",
                        "w     int4   [16, 256]   2208        4.313  linear 4-bit asym g128 (rtn)",
                        "bias  F32    [16]          64            -  -",
                        "total: 2 tensors (1 quantized), 4112 parameters, 2272 bytes (2.2 KiB)");
        assertThat(q.bitsPerWeight()).isEqualTo(2208 * 8.0 / 4096);
        try (SafeTensors st = SafeTensors.open(rtn)) { // the total is every byte of the data section
            assertThat(st.entries().values().stream()
                            .mapToLong(e -> e.end() - e.begin())
                            .sum())
                    .isEqualTo(2272);
        }

        HessianAccumulator h = new HessianAccumulator("x", 256);
        h.add(x);
        Path gptq = dir.resolve("gptq.safetensors");
        QuantizedTensor g = new Gptq(GptqConfig.defaults(3).withGroupSize(64).withActOrder(true))
                .quantize(w.named("act_order"), h)
                .tensor();
        AwqStatistics stats = new AwqStatistics("x", 256, 300);
        stats.add(x);
        QuantizedSafeTensors.write(gptq, List.of(g), "gptq", List.of());
        assertThat(cells(row(inspect(gptq), "act_order")))
                .containsExactly(
                        "act_order",
                        "int3",
                        "[16, 256]",
                        Long.toString(g.storageBytes()),
                        String.format(java.util.Locale.ROOT, "%.3f", g.bitsPerWeight()),
                        "linear 3-bit asym g64 (gptq, g_idx)");
        assertThat(g.bitsPerWeight()).isEqualTo((16 * 96 + 16 * 4 * 5 + 4 * 256) * 8.0 / 4096); // 5.625

        Path awq = dir.resolve("awq.safetensors");
        QuantizedTensor a = new Awq(AwqConfig.defaults(4).withGroupSize(128))
                .quantize(w, stats)
                .tensor();
        QuantizedSafeTensors.write(awq, List.of(a), "awq", List.of());
        assertThat(cells(row(inspect(awq), "w")))
                .containsExactly(
                        "w",
                        "int4",
                        "[16, 256]",
                        "3232",
                        "6.313",
                        a.scheme() + " (awq, AWQ scales)"); // 2208 bytes and 1024 of input scales

        Path nf4 = dir.resolve("nf4.safetensors");
        CodebookTensor dq = new BlockwiseQuantizer(CodebookScheme.nf4(64).withDoubleQuant()).quantize(w);
        CodebookTensor plain = new BlockwiseQuantizer(CodebookScheme.nf4(128)).quantize(w.named("plain"));
        QuantizedSafeTensors.write(nf4, List.of(dq, plain), "nf4", List.of(b));
        lines = inspect(nf4);
        assertThat(cells(row(lines, "w")))
                .containsExactly(
                        "w",
                        "nf4",
                        "[16, 256]",
                        Long.toString(dq.storageBytes()),
                        String.format(java.util.Locale.ROOT, "%.3f", dq.bitsPerWeight()),
                        "nf4 block 64 double-quant");
        assertThat(cells(row(lines, "plain")))
                .containsExactly("plain", "nf4", "[16, 256]", "2176", "4.250", "nf4 block 128");
        assertThat(String.join("\n", lines)).doesNotContain(".q4j_");
        assertThat(lines.getLast()).startsWith("total: 3 tensors (2 quantized), 8208 parameters, ");
    }

    /**
     * The real MiniLM model: every initializer with its shape as stored, each MatMul weight with the node that uses
     * it; the names inspect shows for layer 0 are then enough to write quantize's --include.
     */
    @Test
    void onnxNamesTheNodeThatUsesEachWeight() throws Exception {
        Path model = dir.resolve("minilm.onnx");
        Files.write(model, EvalCommand.resource(EvalCommand.MODEL));
        List<String> lines = inspect(model);
        OnnxModel onnx = OnnxModel.read(model);
        assertThat(lines.get(0)).matches("name +dtype +shape +bytes +used by");
        assertThat(lines).hasSize(onnx.initializers().size() + 2);
        assertThat(onnx.initializers()).hasSize(102);
        assertThat(cells(row(lines, "onnx::MatMul_787")))
                .containsExactly(
                        "onnx::MatMul_787",
                        "F32",
                        "[384, 384]",
                        "589824",
                        "/encoder/layer.0/attention/self/query/MatMul");
        assertThat(cells(row(lines, "onnx::MatMul_864")))
                .containsExactly(
                        "onnx::MatMul_864", "F32", "[1536, 384]", "2359296", "/encoder/layer.5/output/dense/MatMul");
        assertThat(cells(row(lines, "embeddings.position_ids")))
                .containsExactly("embeddings.position_ids", "I64", "[1, 512]", "4096", "/embeddings/Slice");
        Map<String, String> matmul = onnx.matMulWeights();
        assertThat(matmul).hasSize(36);
        for (Map.Entry<String, String> e : matmul.entrySet()) {
            assertThat(row(lines, e.getValue())).endsWith("  " + e.getKey());
        }
        long params = onnx.initializers().values().stream()
                .mapToLong(OnnxModel.Initializer::elements)
                .sum();
        assertThat(params).isEqualTo(22565888);
        assertThat(lines.getLast()).isEqualTo("total: 102 tensors, 22565888 parameters, 90265600 bytes (86.1 MiB)");

        // what the help's example does: the layer-0 MatMul weights, by the nodes that use them, into --include
        List<String> layer0 = lines.stream()
                .filter(l -> l.contains("/encoder/layer.0/") && l.endsWith("/MatMul"))
                .map(l -> cells(l).get(0))
                .toList();
        assertThat(layer0).hasSize(6);
        String include = layer0.stream().map(Pattern::quote).collect(Collectors.joining("|", "^(", ")$"));
        Path q = dir.resolve("layer0.safetensors");
        QuantCliTest.Result r = run(
                "quantize", "--method", "rtn", "--in", model.toString(), "--include", include, "--out", q.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("(6 quantized, ");
        List<String> quantized = inspect(q).stream()
                .filter(l -> l.contains("linear 4-bit asym g128 (rtn, stored [in, out])"))
                .map(l -> cells(l).get(0))
                .toList();
        assertThat(quantized).containsExactlyInAnyOrderElementsOf(layer0);
        assertThat(files()).containsExactly("layer0.safetensors", "minilm.onnx");
    }

    @Test
    void badInputExitsTwoWithOneLineNamingTheFile() throws Exception {
        Path w = dir.resolve("w.npy");
        Npy.write(w, Gaussian.matrix("w", 1, 4, 8, 0.15));
        byte[] npy = Files.readAllBytes(w);
        Files.write(dir.resolve("truncated.npy"), Arrays.copyOf(npy, npy.length - 3));
        Files.writeString(dir.resolve("text.npy"), "this is not a numpy file");
        Files.write(dir.resolve("short.safetensors"), new byte[] {16, 0, 0, 0, 0, 0, 0, 0, '{', '}'});
        Files.write(dir.resolve("empty.onnx"), new byte[0]);
        Files.write(dir.resolve("cut.onnx"), Arrays.copyOf(EvalCommand.resource(EvalCommand.MODEL), 1000));
        Files.writeString(dir.resolve("model.gguf"), "GGUF");
        Files.writeString(dir.resolve("model.tflite"), "TFL3");
        Files.createDirectory(dir.resolve("folder.npy"));
        // quant4j metadata naming a tensor whose codes are missing
        new SafeTensorsWriter()
                .metadata(QuantizedSafeTensors.FORMAT_KEY, QuantizedSafeTensors.FORMAT_VERSION)
                .metadata(
                        QuantizedSafeTensors.TENSOR_KEY_PREFIX + "w",
                        "{\"scheme\":\"linear\",\"bits\":4,\"symmetry\":\"asym\",\"group_size\":128,\"rows\":1,"
                                + "\"cols\":128,\"pack_order\":\"lsb_first_row_aligned\",\"method\":\"rtn\"}")
                .addF32("w.q4j_scales", new long[] {1, 1}, new float[] {1})
                .write(dir.resolve("broken.safetensors"));
        List<String> before = files();
        Object[][] cases = {
            {"missing.npy", "quant: no such file: "},
            {"truncated.npy", "needs 128 data bytes, file has 125"},
            {"text.npy", "not a .npy file"},
            {"short.safetensors", "header length 16 runs past the end of the file (10 bytes)"},
            {"empty.onnx", "no graph (not an ONNX model?)"},
            {"cut.onnx", "runs past the end"},
            {"model.gguf", "model.gguf: file is 4 bytes, too short for a GGUF header (24 bytes)"},
            {"model.tflite", "unsupported file type .tflite (expected .npy, .safetensors, .onnx or .gguf)"},
            {"folder.npy", "a folder without model.safetensors or model.safetensors.index.json"},
            {"broken.safetensors", "quantized tensor 'w': missing tensor 'w.q4j_codes'"},
        };
        for (Object[] c : cases) {
            Path f = dir.resolve((String) c[0]);
            QuantCliTest.Result r = run("inspect", f.toString());
            assertThat(r.code()).as(c[0] + ": " + r.err()).isEqualTo(2);
            assertThat(r.out()).as(c[0].toString()).isEmpty();
            assertThat(r.err())
                    .startsWith("quant: ")
                    .endsWith("\n")
                    .contains(f.toString())
                    .contains((String) c[1]);
            assertThat(r.err().strip()).doesNotContain("\n");
        }
        assertThat(files()).isEqualTo(before);
        QuantCliTest.Result r = run("inspect");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).isEqualTo("quant: Missing required parameter: 'FILE' (see 'quant inspect --help')\n");
    }

    @Test
    void helpDescribesTheTableAndTheRootLists() {
        QuantCliTest.Result r = run("inspect", "--help");
        assertThat(r.code()).isZero();
        assertThat(r.out())
                .contains("Usage: quant inspect [-hV] FILE")
                .contains(".npy, .safetensors, .onnx or .gguf")
                .contains("bits/weight")
                .contains("'used by'")
                .contains("exit code 2")
                .contains("quant inspect model.onnx | grep");
        assertThat(run("--help").out()).contains("inspect");
    }
}
