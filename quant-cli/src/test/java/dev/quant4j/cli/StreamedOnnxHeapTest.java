package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.QuantCliTest.Result;
import dev.quant4j.io.OnnxExternalData;
import dev.quant4j.io.OnnxModel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quant quantize --format onnx} of all-MiniLM-L6-v2 saved with external data, in a child JVM whose heap (32 MB)
 * is smaller than the MatMul weights it quantizes (42 MB of float32, 90 MB of initializers in all): each weight is read
 * when it is written, so the heap holds a few of them. The output is the bytes the same command writes in this JVM.
 */
class StreamedOnnxHeapTest {

    @TempDir
    Path dir;

    @Test
    void weightsLargerThanTheHeapAreQuantizedAsTheyAreWritten() throws Exception {
        byte[] bytes = EvalCommand.resource(EvalCommand.MODEL);
        OnnxModel single = OnnxModel.parse("all-minilm-l6-v2.onnx", bytes);
        long weights = 0;
        for (String w : new HashSet<>(single.matMulWeights().values())) {
            weights += 4 * single.initializer(w).elements();
        }
        assertThat(weights).isGreaterThan(40L << 20);
        Path in = Files.createDirectory(dir.resolve("in")).resolve("model.onnx");
        OnnxExternalData.write(in, "all-minilm-l6-v2.onnx", bytes, single);

        Path out = Files.createDirectory(dir.resolve("child")).resolve("q.onnx");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(
                        java.toString(),
                        "-Xmx32m",
                        "--add-modules",
                        "jdk.incubator.vector",
                        "-cp",
                        System.getProperty("java.class.path"),
                        Quant.class.getName(),
                        "quantize",
                        "--format",
                        "onnx",
                        "--method",
                        "rtn",
                        "--group-size",
                        "32",
                        "--threads",
                        "2",
                        "--in",
                        in.toString(),
                        "--out",
                        out.toString())
                .redirectOutput(dir.resolve("out.txt").toFile())
                .redirectError(dir.resolve("err.txt").toFile())
                .start();
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        String err = Files.readString(dir.resolve("err.txt"), StandardCharsets.UTF_8);
        assertThat(p.exitValue()).as(err).isZero();
        String stdout = Files.readString(dir.resolve("out.txt"), StandardCharsets.UTF_8);
        assertThat(stdout.lines().filter(l -> l.contains("bits/weight"))).hasSize(36);

        Path here = Files.createDirectory(dir.resolve("here")).resolve("q.onnx");
        Result r = QuantCliTest.run(
                "quantize",
                "--format",
                "onnx",
                "--method",
                "rtn",
                "--group-size",
                "32",
                "--threads",
                "1",
                "--in",
                in.toString(),
                "--out",
                here.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out().replace(here.toString(), "Q")).isEqualTo(stdout.replace(out.toString(), "Q"));
        for (String f : new String[] {"q.onnx", "q.onnx.data"}) {
            assertThat(Files.readAllBytes(out.resolveSibling(f)))
                    .as(f)
                    .isEqualTo(Files.readAllBytes(here.resolveSibling(f)));
        }
    }

    @Test
    void aDataFileCutShortIsOneLineNamingTheTensorAndTheFileAndNothingIsWritten() throws Exception {
        byte[] bytes = EvalCommand.resource(EvalCommand.MODEL);
        Path in = Files.createDirectory(dir.resolve("in")).resolve("model.onnx");
        OnnxExternalData.write(in, "all-minilm-l6-v2.onnx", bytes, OnnxModel.parse("all-minilm-l6-v2.onnx", bytes));
        Path data = in.resolveSibling("model.onnx.data");
        try (var f = new java.io.RandomAccessFile(data.toFile(), "rw")) {
            f.setLength(f.length() / 2);
        }
        Path out = Files.createDirectory(dir.resolve("out")).resolve("q.onnx");
        Result r = QuantCliTest.run(
                "quantize", "--format", "onnx", "--method", "rtn", "--in", in.toString(), "--out", out.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip())
                .doesNotContain("\n")
                .contains("initializer '")
                .contains("'model.onnx.data'");
        try (var files = Files.list(out.getParent())) {
            assertThat(files).isEmpty();
        }
    }
}
