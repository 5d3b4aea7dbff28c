package dev.quant4j.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The generated kernel sources ({@code Vector*Unrolled.java}, {@code VectorBlasTiles.java}) are what their templates
 * give: {@code scripts/gen-kernels.py --check} regenerates them in memory and compares, so an edit of a generated file
 * instead of its template fails the build. Skipped where no {@code python3} runs (the check needs no network).
 */
class GeneratedKernelsTest {

    @Test
    void generatedSourcesMatchTheirTemplates() throws IOException, InterruptedException {
        Path root = Path.of("").toAbsolutePath();
        if (!Files.exists(root.resolve("scripts/gen-kernels.py"))) {
            root = root.getParent(); // surefire runs in quant-core
        }
        Path script = root.resolve("scripts/gen-kernels.py");
        assertThat(script).exists();
        Process p;
        try {
            p = new ProcessBuilder("python3", script.toString(), "--check")
                    .directory(root.toFile())
                    .redirectErrorStream(true)
                    .start();
        } catch (IOException e) {
            assumeTrue(false, "python3 not found: " + e.getMessage());
            return;
        }
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(output).isZero();
    }
}
