package dev.quant4j.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes a file atomically: to a temporary file in the same folder, then a move over the target.
 *
 * <p>The temporary file is {@code .NAME.PID.RANDOM.tmp}, PID being the writing process. A process killed while it
 * writes (SIGKILL, power loss) cannot delete its temporary file; the next write of the same target deletes every such
 * file whose process is no longer running.
 */
public final class AtomicFiles {

    /** What writes the content. */
    @FunctionalInterface
    public interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    private AtomicFiles() {}

    /**
     * Writes {@code path} atomically: readers see the old file or the whole new one, and after a failure (an exception
     * from {@code content} included) no partial file is left behind.
     */
    public static void write(Path path, Content content) throws IOException {
        Path abs = path.toAbsolutePath();
        Path dir = abs.getParent();
        String prefix = "." + abs.getFileName() + ".";
        removeStaleTemporaries(dir, prefix);
        Path tmp = Files.createTempFile(dir, prefix + ProcessHandle.current().pid() + ".", ".tmp");
        boolean done = false;
        try {
            try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(tmp), 1 << 20)) {
                content.writeTo(out);
            }
            // createTempFile makes the file private (0600); give it the permissions a plain new file gets
            if (Files.getFileStore(tmp).supportsFileAttributeView(PosixFileAttributeView.class)) {
                Files.setPosixFilePermissions(
                        tmp,
                        Files.exists(abs)
                                ? Files.getPosixFilePermissions(abs)
                                : PosixFilePermissions.fromString("rw-r--r--"));
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** Deletes the temporary files {@code PREFIX PID.RANDOM.tmp} of writers that are no longer running. */
    private static void removeStaleTemporaries(Path dir, String prefix) throws IOException {
        Pattern ours = Pattern.compile(Pattern.quote(prefix) + "(\\d{1,18})\\.\\d+\\.tmp");
        try (DirectoryStream<Path> files =
                Files.newDirectoryStream(dir, f -> f.getFileName().toString().startsWith(prefix))) {
            for (Path f : files) {
                Matcher m = ours.matcher(f.getFileName().toString());
                if (m.matches()
                        && ProcessHandle.of(Long.parseLong(m.group(1)))
                                .filter(ProcessHandle::isAlive)
                                .isEmpty()) {
                    Files.deleteIfExists(f);
                }
            }
        }
    }
}
