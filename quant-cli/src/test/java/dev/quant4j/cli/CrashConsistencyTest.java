package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.Npy;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kills the {@code quant} command with SIGKILL while it writes a 16 MB output over an existing file, and checks that
 * the target is then the complete previous file or the complete new one, never a mixture or a truncation; and that
 * the temporary files killed writers leave are deleted by the next run. The kill comes at a random moment between the
 * appearance of the temporary file and the end of a whole run (measured once), so most kills land inside the write
 * and some after the move. Each kill starts a JVM, which takes too long for every build: it runs on request, {@code mvn -pl
 * quant-cli -am test -Dtest=CrashConsistencyTest -Dsurefire.failIfNoSpecifiedTests=false -Dquant4j.kill.runs=20}
 * (docs/reliability.md); {@code AtomicFilesTest} checks the clean-up in every build.
 */
class CrashConsistencyTest {

    @TempDir
    Path dir;

    @Test
    @EnabledIfSystemProperty(named = "quant4j.kill.runs", matches = "[0-9]+")
    void aKilledWriteLeavesThePreviousFileOrTheNewOneAndNoTemporaryAfterTheNextRun() throws Exception {
        int runs = Integer.getInteger("quant4j.kill.runs");
        FloatMatrix w = Gaussian.matrix("w", 7, 2048, 2048, 0.1);
        Path q = dir.resolve("q.safetensors");
        QuantizedSafeTensors.write(
                q, List.of(new RtnQuantizer(LinearScheme.asym(4, 128)).quantize(w)), "rtn", List.of());
        Path out = dir.resolve("w.npy");
        byte[] previous = Npy.toBytes(new long[] {2, 2}, new float[] {1, 2, 3, 4});

        // one complete run: the new file, and how long it runs after its temporary file appears
        Files.write(out, previous);
        Process first = start(q, out);
        long tmpSeen = waitForTemporary(first);
        assertThat(first.waitFor(300, TimeUnit.SECONDS)).isTrue();
        long writeNanos = System.nanoTime() - tmpSeen;
        assertThat(first.exitValue()).isZero();
        byte[] complete = Files.readAllBytes(out);
        assertThat(complete).hasSize(128 + 4 * 2048 * 2048);

        Random random = new Random(42);
        int old = 0;
        int fresh = 0;
        int leftTemporaries = 0;
        for (int i = 0; i < runs; i++) {
            Files.write(out, previous);
            Process p = start(q, out);
            long seen = waitForTemporary(p);
            long killAt = seen + (long) (random.nextDouble() * writeNanos);
            while (System.nanoTime() < killAt && p.isAlive()) {
                Thread.onSpinWait();
            }
            p.destroyForcibly(); // SIGKILL on Linux and macOS
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
            byte[] now = Files.readAllBytes(out);
            if (Arrays.equals(now, previous)) {
                old++;
            } else {
                assertThat(now)
                        .as("kill %d: the target is neither the previous file nor the new one", i)
                        .isEqualTo(complete);
                fresh++;
            }
            leftTemporaries += temporaries().size();
        }
        System.out.printf(
                "CrashConsistencyTest: %d kills (a run lasts %d ms after its temporary file appears): %d left the previous file, %d the new one;"
                        + " %d temporary files left by killed writers%n",
                runs, writeNanos / 1_000_000, old, fresh, leftTemporaries);

        // the next run deletes what killed writers left, and leaves nothing of its own
        Process last = start(q, out);
        assertThat(last.waitFor(300, TimeUnit.SECONDS)).isTrue();
        assertThat(last.exitValue()).isZero();
        assertThat(Files.readAllBytes(out)).isEqualTo(complete);
        assertThat(temporaries()).isEmpty();
    }

    private Process start(Path q, Path out) throws IOException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        return new ProcessBuilder(
                        java.toString(),
                        "--add-modules",
                        "jdk.incubator.vector",
                        "-cp",
                        System.getProperty("java.class.path"),
                        Quant.class.getName(),
                        "dequantize",
                        "--in",
                        q.toString(),
                        "--out",
                        out.toString())
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve("quant.log").toFile())
                .start();
    }

    /** Waits until the process has created its temporary file (or ended); returns when that was seen. */
    private long waitForTemporary(Process p) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
        while (System.nanoTime() < deadline) {
            String own = ".w.npy." + p.pid() + ".";
            if (temporaries().stream().anyMatch(f -> f.getFileName().toString().startsWith(own)) || !p.isAlive()) {
                return System.nanoTime();
            }
            Thread.sleep(0, 200_000);
        }
        throw new AssertionError("quant dequantize did not start writing within 300 s");
    }

    private List<Path> temporaries() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".tmp"))
                    .toList();
        }
    }
}
