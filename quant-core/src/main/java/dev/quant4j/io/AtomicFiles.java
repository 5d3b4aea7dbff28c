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
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes a file atomically: to a temporary file in the same folder, then a move over the target.
 *
 * <p>The temporary file is {@code .NAME.PID.RANDOM.tmp} (a folder: {@code .NAME.PID.RANDOM}), PID being the writing
 * process. A process killed while it
 * writes (SIGKILL, power loss) cannot delete its temporary file; the next write of the same target deletes every such
 * file whose process is no longer running.
 */
public final class AtomicFiles {

    /** What writes the content. */
    @FunctionalInterface
    public interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    /** What writes the content into a path it is given (a temporary file or folder). */
    @FunctionalInterface
    public interface PathContent {
        void writeTo(Path tmp) throws IOException;
    }

    private AtomicFiles() {}

    /**
     * As {@link #write(Path, Content)}, for a writer that needs the file itself (a channel writing at positions):
     * {@code content} writes the temporary file it is given, which is then moved over {@code path}.
     */
    public static void writeFile(Path path, PathContent content) throws IOException {
        write(path, null, content);
    }

    /** What writes several files into the temporary paths it is given, one per target, in the targets' order. */
    @FunctionalInterface
    public interface PathsContent {
        void writeTo(List<Path> tmp) throws IOException;
    }

    /**
     * Writes several files of one folder as a set: {@code content} writes a temporary file per target ({@code
     * .NAME.PID.RANDOM.tmp} beside it), and only when it has written them all are they moved over their targets, the
     * first target last (the file a reader opens first, as llama.cpp opens a split model by its first file). A failure
     * before the moves leaves none of them; the moves themselves are one atomic rename per file.
     */
    public static void writeFiles(List<Path> paths, PathsContent content) throws IOException {
        List<Path> targets = new ArrayList<>();
        List<Path> tmps = new ArrayList<>();
        boolean done = false;
        try {
            for (Path p : paths) {
                Path abs = p.toAbsolutePath();
                String prefix = "." + abs.getFileName() + ".";
                removeStaleTemporaries(abs.getParent(), prefix);
                targets.add(abs);
                tmps.add(Files.createTempFile(
                        abs.getParent(), prefix + ProcessHandle.current().pid() + ".", ".tmp"));
            }
            content.writeTo(List.copyOf(tmps));
            for (int i = tmps.size() - 1; i >= 0; i--) {
                moveIntoPlace(tmps.get(i), targets.get(i));
            }
            done = true;
        } finally {
            if (!done) {
                for (Path t : tmps) {
                    Files.deleteIfExists(t);
                }
            }
        }
    }

    /**
     * Writes the folder {@code folder} atomically: {@code content} fills a new temporary folder beside it, which is
     * then renamed to {@code folder}, so that readers see no folder, or the old one, or the whole new one. An existing
     * {@code folder} is replaced only when {@code replace} (moved aside, then deleted); otherwise it is an error. After a
     * failure nothing new is left behind, and the temporaries of writers that were killed are removed by the next
     * write of the same folder.
     */
    public static void writeFolder(Path folder, boolean replace, PathContent content) throws IOException {
        Path abs = folder.toAbsolutePath();
        Path dir = abs.getParent();
        String prefix = "." + abs.getFileName() + ".";
        if (Files.exists(abs) && !replace) {
            throw new java.nio.file.FileAlreadyExistsException(abs.toString());
        }
        removeStaleTemporaries(dir, prefix);
        Path tmp =
                Files.createTempDirectory(dir, prefix + ProcessHandle.current().pid() + ".");
        Path old = null;
        boolean done = false;
        try {
            content.writeTo(tmp);
            if (Files.getFileStore(tmp).supportsFileAttributeView(PosixFileAttributeView.class)) {
                // createTempDirectory makes the folder private (0700); give it a plain new folder's permissions
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
            }
            if (Files.exists(abs)) {
                // named so that no later write takes it for a stale temporary: if this process dies between the
                // two moves, the previous folder is still there under this name
                old = Files.createTempDirectory(
                        dir, prefix + "old." + ProcessHandle.current().pid() + ".");
                Files.delete(old);
                Files.move(abs, old, StandardCopyOption.ATOMIC_MOVE);
            }
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE);
            done = true;
        } finally {
            if (!done) {
                deleteTree(tmp);
                if (old != null && !Files.exists(abs)) {
                    Files.move(old, abs, StandardCopyOption.ATOMIC_MOVE);
                }
            } else if (old != null) {
                deleteTree(old);
            }
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        if (Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            try (DirectoryStream<Path> children = Files.newDirectoryStream(p)) {
                for (Path c : children) {
                    deleteTree(c);
                }
            }
        }
        Files.delete(p);
    }

    /**
     * Writes {@code path} atomically: readers see the old file or the whole new one, and after a failure (an exception
     * from {@code content} included) no partial file is left behind.
     */
    public static void write(Path path, Content content) throws IOException {
        write(path, content, null);
    }

    private static void write(Path path, Content content, PathContent pathContent) throws IOException {
        Path abs = path.toAbsolutePath();
        Path dir = abs.getParent();
        String prefix = "." + abs.getFileName() + ".";
        removeStaleTemporaries(dir, prefix);
        Path tmp = Files.createTempFile(dir, prefix + ProcessHandle.current().pid() + ".", ".tmp");
        boolean done = false;
        try {
            if (content != null) {
                try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(tmp), 1 << 20)) {
                    content.writeTo(out);
                }
            } else {
                pathContent.writeTo(tmp);
            }
            moveIntoPlace(tmp, abs);
            done = true;
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** Moves a finished temporary file over {@code abs}, with the permissions a plain new file (or {@code abs}) has. */
    private static void moveIntoPlace(Path tmp, Path abs) throws IOException {
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
    }

    /**
     * Deletes the temporary files and folders {@code PREFIX PID.RANDOM[.tmp]} of writers no longer running, and their
     * spill files {@code PREFIX PID.RANDOM.spill} ({@link SafeTensorsSpillWriter}).
     */
    private static void removeStaleTemporaries(Path dir, String prefix) throws IOException {
        Pattern ours = Pattern.compile(Pattern.quote(prefix) + "(\\d{1,18})\\.\\d+(\\.tmp|\\.spill)?");
        try (DirectoryStream<Path> files =
                Files.newDirectoryStream(dir, f -> f.getFileName().toString().startsWith(prefix))) {
            for (Path f : files) {
                Matcher m = ours.matcher(f.getFileName().toString());
                if (m.matches()
                        && ProcessHandle.of(Long.parseLong(m.group(1)))
                                .filter(ProcessHandle::isAlive)
                                .isEmpty()) {
                    deleteTree(f);
                }
            }
        }
    }
}
