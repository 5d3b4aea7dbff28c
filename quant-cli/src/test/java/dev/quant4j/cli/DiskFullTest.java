package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.tensor.Gaussian;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A disk that fills up while the output is written: one line naming the problem and what to do, exit code 1, and
 * nothing left on that disk (no output, no temporary file). The disk is a 1 MiB tmpfs mounted for the test, which needs
 * the right to mount (root on Linux); elsewhere the test is skipped, and says why.
 */
class DiskFullTest {

    private static Path work;
    private static Path disk;
    private static boolean mounted;

    @BeforeAll
    static void mountASmallDisk() throws Exception {
        work = Files.createTempDirectory("quant4j-disk-full");
        disk = Files.createDirectory(work.resolve("disk"));
        mounted = command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk.toString());
        // 4096 x 1024 float32 weights (16 MiB): every output below is more than 2 MiB
        new SafeTensorsWriter()
                .addF32(
                        "model.layers.0.mlp.down_proj.weight",
                        new long[] {4096, 1024},
                        Gaussian.samples(3, 4096 * 1024, 0.02))
                .write(work.resolve("w.safetensors"));
    }

    @AfterAll
    static void unmount() throws Exception {
        if (mounted) {
            command("umount", disk.toString());
        }
        try (Stream<Path> all = Files.walk(work)) {
            for (Path p : all.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static boolean command(String... args) throws Exception {
        try {
            Process p = new ProcessBuilder(args).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (java.io.IOException e) {
            return false;
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"q.safetensors", "q.gguf", "folder"})
    void aFullDiskIsOneLineAndLeavesNothing(String output) throws Exception {
        assumeTrue(mounted, "cannot mount a 1 MiB tmpfs here (needs root): the disk-full path is not exercised");
        Path in = work.resolve("w.safetensors");
        List<String> args = switch (output) {
            case "q.gguf" ->
                List.of(
                        "quantize",
                        "--in",
                        in.toString(),
                        "--format",
                        "gguf",
                        "--gguf-type",
                        "q8_0",
                        "--method",
                        "rtn",
                        "--out",
                        disk.resolve(output).toString());
            case "folder" -> {
                Path folder = Files.createDirectories(work.resolve("model"));
                Files.copy(in, folder.resolve("model.safetensors"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                yield List.of(
                        "quantize",
                        "--in",
                        folder.toString(),
                        "--method",
                        "rtn",
                        "--out",
                        disk.resolve(output).toString());
            }
            default ->
                List.of(
                        "quantize",
                        "--in",
                        in.toString(),
                        "--method",
                        "rtn",
                        "--out",
                        disk.resolve(output).toString());
        };
        QuantCliTest.Result r = QuantCliTest.run(args.toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isEqualTo(Quant.INTERNAL);
        assertThat(r.err().strip())
                .startsWith("quant: the disk is full")
                .contains("nothing was left half-written")
                .contains("write --out to another disk")
                .doesNotContain("\n")
                .doesNotContain("Exception");
        try (Stream<Path> left = Files.list(disk)) {
            assertThat(left.map(p -> p.getFileName().toString()).toList()).isEmpty();
        }
    }
}
