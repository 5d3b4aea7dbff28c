package dev.quant4j.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Kernel selection in fresh JVMs: without the module, forced scalar, and forced narrower widths. */
class KernelSelectionTest {

    /** Prints the chosen kernels' name; run in a child JVM. */
    public static final class PrintKernels {
        private PrintKernels() {}

        public static void main(String[] args) {
            System.out.println("kernels=" + Kernels.get().name());
        }
    }

    private static String run(String... jvmArgs) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>();
        cmd.add(java);
        cmd.addAll(List.of(jvmArgs));
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(PrintKernels.class.getName());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        return out;
    }

    @Test
    void withoutTheModuleUsesScalarAndSaysHowToEnableIt() throws Exception {
        String out = run();
        assertThat(out).contains("kernels=scalar").contains("--add-modules jdk.incubator.vector");
    }

    @Test
    void propertyForcesScalar() throws Exception {
        assertThat(run("--add-modules", "jdk.incubator.vector", "-Dquant4j.vector=false"))
                .contains("kernels=scalar");
    }

    @Test
    void propertyForcesNarrowerWidthAndNeverAWiderOne() throws Exception {
        assertThat(run("--add-modules", "jdk.incubator.vector", "-Dquant4j.vector.bits=128"))
                .contains("kernels=vector-128");
        assertThat(run("--add-modules", "jdk.incubator.vector", "-Dquant4j.vector.bits=99999"))
                .contains("kernels=vector-" + Math.min(512, Kernels.preferredBits()));
        assertThat(run("--add-modules", "jdk.incubator.vector", "-Dquant4j.vector.bits=300"))
                .contains("kernels=vector-256");
        assertThat(run("--add-modules", "jdk.incubator.vector", "-Dquant4j.vector.bits=64"))
                .contains("kernels=scalar");
        assertThat(run("--add-modules", "jdk.incubator.vector", "-Dquant4j.vector.bits=abc"))
                .contains("kernels=vector-" + Math.min(512, Kernels.preferredBits()));
    }
}
