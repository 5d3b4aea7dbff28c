package dev.quant4j.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;

/**
 * The files of a model folder, in a directory or held in memory: the readers of folders ({@link GptqCheckpoint},
 * {@code HuggingFaceLlama}) read through it, so one reader serves both.
 *
 * <p>A file is named by a plain file name in the folder ({@link #isFileName}); a name the folder cannot hold, such as
 * {@code ../x} or one with a NUL, is simply not there.
 */
public sealed interface ModelFolder {

    /** The folder {@code dir} on disk; messages name its files by their paths. */
    static ModelFolder of(Path dir) {
        return new Directory(dir);
    }

    /** Files held in memory, by name; {@code name} names the folder in messages ({@code name/file}). */
    static ModelFolder of(Map<String, byte[]> files, String name) {
        return new InMemory(Map.copyOf(files), name);
    }

    /** The folder in messages. */
    String name();

    /** How messages name file {@code file} of the folder. */
    String where(String file);

    /** Whether the folder holds a file named {@code file} (a regular file, on disk). */
    boolean has(String file);

    /**
     * The content of file {@code file} as UTF-8 text.
     *
     * @throws MalformedTensorFileException naming the file if it is not valid UTF-8
     */
    String readString(String file) throws IOException;

    /** File {@code file} as safetensors, validated; close it. */
    SafeTensors openSafeTensors(String file) throws IOException;

    /** Whether {@code name} names a file directly in a folder: not empty, not {@code .} or {@code ..}, no separator. */
    static boolean isFileName(String name) {
        return !name.isEmpty()
                && !name.equals(".")
                && !name.equals("..")
                && name.indexOf('/') < 0
                && name.indexOf('\\') < 0
                && name.indexOf('\0') < 0;
    }

    private static String utf8(byte[] bytes, String where) {
        try {
            return StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new MalformedTensorFileException(where + ": not valid UTF-8 text", e);
        }
    }

    /** A directory on disk. */
    record Directory(Path dir) implements ModelFolder {
        public Directory {
            Objects.requireNonNull(dir, "dir");
        }

        @Override
        public String name() {
            return dir.toString();
        }

        @Override
        public String where(String file) {
            return isFileName(file) ? dir.resolve(file).toString() : dir + "/" + file;
        }

        @Override
        public boolean has(String file) {
            return isFileName(file) && Files.isRegularFile(dir.resolve(file));
        }

        @Override
        public String readString(String file) throws IOException {
            return utf8(Files.readAllBytes(dir.resolve(file)), where(file));
        }

        @Override
        public SafeTensors openSafeTensors(String file) throws IOException {
            return SafeTensors.open(dir.resolve(file));
        }
    }

    /** Files in memory. */
    record InMemory(Map<String, byte[]> files, String name) implements ModelFolder {
        public InMemory {
            Objects.requireNonNull(files, "files");
            Objects.requireNonNull(name, "name");
        }

        @Override
        public String where(String file) {
            return name + "/" + file;
        }

        @Override
        public boolean has(String file) {
            return isFileName(file) && files.containsKey(file);
        }

        @Override
        public String readString(String file) throws IOException {
            return utf8(bytes(file), where(file));
        }

        @Override
        public SafeTensors openSafeTensors(String file) throws IOException {
            return SafeTensors.parse(bytes(file), where(file));
        }

        private byte[] bytes(String file) throws IOException {
            byte[] b = isFileName(file) ? files.get(file) : null;
            if (b == null) {
                throw new java.nio.file.NoSuchFileException(where(file));
            }
            return b;
        }
    }
}
