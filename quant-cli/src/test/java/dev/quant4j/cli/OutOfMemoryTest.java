package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.SafeTensorsWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A heap too small for the work: one line naming the problem and what to do, exit code 1, nothing left behind. */
class OutOfMemoryTest {

    @TempDir
    Path dir;

    @Test
    void aWeightThatDoesNotFitTheHeapIsOneLineAndLeavesNothing() throws Exception {
        Path in = dir.resolve("big.safetensors");
        // 32 MB of float32; RTN per tensor (--group-size 0) needs it whole on a 16 MB heap
        new SafeTensorsWriter()
                .addF32("w", new long[] {4096, 2048}, new float[4096 * 2048])
                .write(in);
        Path out = dir.resolve("q.safetensors");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(
                        java.toString(),
                        "-Xmx16m",
                        "--add-modules",
                        "jdk.incubator.vector",
                        "-cp",
                        System.getProperty("java.class.path"),
                        Quant.class.getName(),
                        "quantize",
                        "--method",
                        "rtn",
                        "--group-size",
                        "0",
                        "--in",
                        in.toString(),
                        "--out",
                        out.toString())
                .redirectOutput(dir.resolve("out.txt").toFile())
                .redirectError(dir.resolve("err.txt").toFile())
                .start();
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        String err = Files.readString(dir.resolve("err.txt"), StandardCharsets.UTF_8)
                .replaceAll("(?m)^WARNING: Using incubator modules.*\\R", "");
        assertThat(p.exitValue()).as(err).isEqualTo(1);
        assertThat(err.strip())
                .startsWith("quant: out of memory: the Java heap (at most ")
                .contains("nothing was left half-written")
                .contains("QUANT_JAVA_OPTS=-Xmx8g")
                .doesNotContain("\n")
                .doesNotContain("Exception");
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files.map(f -> f.getFileName().toString()).sorted().toList())
                    .containsExactly("big.safetensors", "err.txt", "out.txt");
        }
    }
}
