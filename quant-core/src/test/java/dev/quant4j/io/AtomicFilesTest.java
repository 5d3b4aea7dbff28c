package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {

    @TempDir
    Path dir;

    @Test
    void aFailedWriteKeepsThePreviousFileAndLeavesNoTemporary() throws IOException {
        Path target = dir.resolve("w.npy");
        Files.writeString(target, "previous");
        assertThatThrownBy(() -> AtomicFiles.write(target, out -> {
                    out.write(new byte[1 << 21]);
                    throw new IOException("disk full");
                }))
                .hasMessage("disk full");
        assertThat(Files.readString(target)).isEqualTo("previous");
        assertThat(files()).containsExactly(target);
    }

    @Test
    void theNextWriteDeletesTheTemporariesOfWritersThatAreGoneAndNoOthers() throws Exception {
        Process gone = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-version")
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        gone.waitFor();
        long me = ProcessHandle.current().pid();
        Path stale = Files.writeString(dir.resolve(".w.npy." + gone.pid() + ".123456789.tmp"), "killed mid-write");
        Path staleSpill = Files.writeString(dir.resolve(".w.npy." + gone.pid() + ".2468.spill"), "killed mid-spill");
        Path live = Files.writeString(dir.resolve(".w.npy." + me + ".987654321.tmp"), "another thread's write");
        Path liveSpill = Files.writeString(dir.resolve(".w.npy." + me + ".1357.spill"), "another writer's spill");
        Path otherTarget = Files.writeString(dir.resolve(".w.npy.1." + gone.pid() + ".5.tmp"), "w.npy.1's");
        Path notOurs = Files.writeString(dir.resolve(".w.npy.notes.tmp"), "a user's file");

        AtomicFiles.write(dir.resolve("w.npy"), out -> out.write("new".getBytes(StandardCharsets.UTF_8)));

        assertThat(Files.readString(dir.resolve("w.npy"))).isEqualTo("new");
        assertThat(stale).doesNotExist();
        assertThat(staleSpill).doesNotExist();
        assertThat(files()).containsExactlyInAnyOrder(dir.resolve("w.npy"), live, liveSpill, otherTarget, notOurs);
    }

    @Test
    void aFolderAppearsWholeReplacesOnlyWhenAskedAndAFailureKeepsThePreviousOne() throws Exception {
        Path target = dir.resolve("out");
        AtomicFiles.writeFolder(target, false, tmp -> Files.writeString(tmp.resolve("a.txt"), "first"));
        assertThat(Files.readString(target.resolve("a.txt"))).isEqualTo("first");
        assertThatThrownBy(() -> AtomicFiles.writeFolder(target, false, tmp -> {}))
                .isInstanceOf(java.nio.file.FileAlreadyExistsException.class);
        assertThatThrownBy(() -> AtomicFiles.writeFolder(target, true, tmp -> {
                    Files.writeString(tmp.resolve("a.txt"), "half");
                    throw new IOException("disk full");
                }))
                .hasMessage("disk full");
        assertThat(Files.readString(target.resolve("a.txt"))).isEqualTo("first");
        AtomicFiles.writeFolder(target, true, tmp -> Files.writeString(tmp.resolve("b.txt"), "second"));
        assertThat(target.resolve("a.txt")).doesNotExist();
        assertThat(Files.readString(target.resolve("b.txt"))).isEqualTo("second");
        assertThat(files()).containsExactly(target);
    }

    @Test
    void theNextFolderWriteDeletesTheTemporaryFolderOfAWriterThatIsGone() throws Exception {
        Process gone = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-version")
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        gone.waitFor();
        Path stale = Files.createDirectories(dir.resolve(".out." + gone.pid() + ".42/sub"));
        Files.writeString(stale.resolve("shard.safetensors"), "killed mid-write");
        AtomicFiles.writeFolder(dir.resolve("out"), false, tmp -> Files.writeString(tmp.resolve("a"), "x"));
        assertThat(files()).containsExactly(dir.resolve("out"));
    }

    private List<Path> files() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.toList();
        }
    }
}
