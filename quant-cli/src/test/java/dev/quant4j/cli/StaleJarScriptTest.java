package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code ./quant} launcher's staleness check ({@code scripts/stale-jar.sh}), run by bash on a made-up tree. */
class StaleJarScriptTest {

    @TempDir
    Path root;

    private static final Path SCRIPT = Path.of("..", "scripts", "stale-jar.sh").toAbsolutePath();

    private record Outcome(int code, String out) {}

    private Outcome staleJar(Path jar) throws Exception {
        Process p = new ProcessBuilder(
                        "bash",
                        "-c",
                        ". \"$0\"; stale_jar \"$1\" \"$2\"",
                        SCRIPT.toString(),
                        root.toString(),
                        jar.toString())
                .redirectErrorStream(true)
                .start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        return new Outcome(p.waitFor(), out);
    }

    private Path file(String relative, Instant time) throws Exception {
        Path p = root.resolve(relative);
        Files.createDirectories(p.getParent());
        Files.writeString(p, relative);
        Files.setLastModifiedTime(p, FileTime.from(time));
        return p;
    }

    @Test
    void rebuildsWhenTheJarIsMissingOrOlderThanASourceOrPom() throws Exception {
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        for (String f : new String[] {
            "pom.xml",
            "quant-core/pom.xml",
            "quant-cli/pom.xml",
            "quant-core/src/main/java/A.java",
            "quant-cli/src/main/java/B.java",
            "quant-cli/src/main/resources/r.txt"
        }) {
            file(f, t0);
        }
        Path jar = root.resolve("quant-cli/target/quant.jar");
        Outcome missing = staleJar(jar);
        assertThat(missing.code()).isZero();
        assertThat(missing.out()).endsWith("quant.jar is missing");

        file("quant-cli/target/quant.jar", t0.plusSeconds(60));
        assertThat(staleJar(jar).code()).as("up to date").isEqualTo(1);

        // a test source or a benchmark does not change the jar
        file("quant-cli/src/test/java/T.java", t0.plusSeconds(120));
        file("quant-bench/src/main/java/C.java", t0.plusSeconds(120));
        assertThat(staleJar(jar).code()).isEqualTo(1);

        // what a 'git pull' does: a library source newer than the jar
        file("quant-core/src/main/java/A.java", t0.plusSeconds(120));
        Outcome stale = staleJar(jar);
        assertThat(stale.code()).isZero();
        assertThat(stale.out()).endsWith("quant-core/src/main/java/A.java is newer");

        file("quant-cli/target/quant.jar", t0.plusSeconds(180));
        file("pom.xml", t0.plusSeconds(240));
        assertThat(staleJar(jar).out()).endsWith("pom.xml is newer");
    }
}
