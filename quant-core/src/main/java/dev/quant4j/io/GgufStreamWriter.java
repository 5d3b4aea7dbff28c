package dev.quant4j.io;

import dev.quant4j.ggml.GgmlType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Writes a GGUF file of any size as a stream: the header (metadata, tensor infos, 64-bit offsets) is laid out from the
 * tensors' names, extents and types before any data, exactly as {@link GgufWriter} lays it out, then each tensor's
 * bytes are written at their place through a file channel, in any order and from any number of threads. For the same
 * metadata and tensors the file is byte for byte the one {@link GgufWriter} writes; nothing but the header is held in
 * memory.
 *
 * <p>The file is written where it is asked to be: make it atomic with {@link AtomicFiles#writeFile}. {@link #finish()}
 * checks that every tensor byte was written exactly once in total and writes the zero padding after each tensor.
 */
public final class GgufStreamWriter implements AutoCloseable {

    /** A tensor the file will hold: its name, its GGUF extents ({@code ne}, fastest first) and its type. */
    public record Spec(String name, long[] ne, GgmlType type) {

        public Spec {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(type, "type");
            ne = ne.clone();
        }

        @Override
        public long[] ne() {
            return ne.clone();
        }

        /** Bytes of data ({@code ne[0]} a multiple of the type's block size). */
        public long bytes() {
            return GgufWriter.bytes(name, ne, type);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Spec s && name.equals(s.name) && type == s.type && Arrays.equals(ne, s.ne);
        }

        @Override
        public int hashCode() {
            return name.hashCode() * 31 + Arrays.hashCode(ne);
        }

        @Override
        public String toString() {
            return name + " " + type + " ne" + Arrays.toString(ne);
        }
    }

    private static final int CHUNK = 64 << 20;

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final long[] offsets;
    private final long[] sizes;
    private final int alignment;
    private final long dataBytes;
    private final AtomicLong written = new AtomicLong();

    private GgufStreamWriter(Path path, FileChannel channel, GgufWriter layout, List<Spec> tensors) throws IOException {
        this.path = path;
        this.channel = channel;
        byte[] header = layout.header();
        this.dataStart = header.length;
        this.alignment = layout.alignment();
        this.offsets = new long[tensors.size()];
        this.sizes = new long[tensors.size()];
        long offset = 0;
        long total = 0;
        for (int i = 0; i < tensors.size(); i++) {
            offsets[i] = offset;
            sizes[i] = tensors.get(i).bytes();
            offset = Math.addExact(offset, Gguf.pad(sizes[i], alignment));
            total += sizes[i];
        }
        this.dataBytes = total;
        ByteBuffer bb = ByteBuffer.wrap(header);
        while (bb.hasRemaining()) {
            channel.write(bb, bb.position());
        }
    }

    /**
     * Creates {@code path} (truncating it) and writes the header of a GGUF file holding {@code metadata} (in order)
     * and {@code tensors} (in order).
     *
     * @throws IllegalArgumentException as {@link GgufWriter} refuses a key, a name or extents
     */
    public static GgufStreamWriter create(Path path, Map<String, GgufValue> metadata, List<Spec> tensors)
            throws IOException {
        GgufWriter layout = new GgufWriter().putAll(metadata);
        for (Spec t : tensors) {
            layout.addTensor(t.name(), t.ne, t.type(), out -> {
                throw new IllegalStateException("the stream writer writes tensor data itself");
            });
        }
        FileChannel ch = FileChannel.open(
                path, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        try {
            return new GgufStreamWriter(path, ch, layout, tensors);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** The file's size when finished (the last tensor padded to the alignment). */
    public long size() {
        long end = dataStart;
        if (offsets.length > 0) {
            end += offsets[offsets.length - 1] + Gguf.pad(sizes[sizes.length - 1], alignment);
        }
        return end;
    }

    /** Where byte {@code offset} of tensor {@code index} is in the file, checking that {@code length} bytes fit. */
    public long position(int index, long offset, long length) {
        Objects.checkIndex(index, offsets.length);
        if (offset < 0 || length < 0 || offset > sizes[index] - length) {
            throw new IllegalArgumentException(path + ": bytes [" + offset + ", " + (offset + length) + ") are outside"
                    + " tensor " + index + " (" + sizes[index] + " bytes)");
        }
        return dataStart + offsets[index] + offset;
    }

    /**
     * Writes {@code bytes} (from its position to its limit) into tensor {@code index} from its byte {@code offset}.
     * Safe from several threads for different ranges.
     */
    public void write(int index, long offset, ByteBuffer bytes) throws IOException {
        int n = bytes.remaining();
        long at = position(index, offset, n);
        while (bytes.hasRemaining()) {
            at += channel.write(bytes, at);
        }
        written.addAndGet(n);
    }

    /** Copies {@code src} (a mapped tensor, any size) into tensor {@code index} from its byte {@code offset}. */
    public void write(int index, long offset, MemorySegment src) throws IOException {
        long size = src.byteSize();
        position(index, offset, size);
        for (long done = 0; done < size; done += CHUNK) {
            write(
                    index,
                    offset + done,
                    src.asSlice(done, Math.min(CHUNK, size - done)).asByteBuffer());
        }
    }

    /**
     * Lets {@code copy} write {@code length} bytes into tensor {@code index} from its byte {@code offset} through the
     * file's channel at the position it is given (a copy in the kernel from another file).
     */
    public void transfer(int index, long offset, long length, Transfer copy) throws IOException {
        copy.to(channel, position(index, offset, length));
        written.addAndGet(length);
    }

    /** A copy into the file's channel at a position. */
    @FunctionalInterface
    public interface Transfer {
        void to(FileChannel channel, long position) throws IOException;
    }

    /**
     * Writes the padding after each tensor and checks that the data section was written in full. Like quant4j's other
     * writers it does not force the file to the device: the atomic rename protects against a killed process.
     *
     * @throws IllegalStateException when fewer or more bytes than the tensors need were written
     */
    public void finish() throws IOException {
        if (written.get() != dataBytes) {
            throw new IllegalStateException(
                    path + ": " + written.get() + " bytes of tensor data written, the tensors need " + dataBytes);
        }
        for (int i = 0; i < offsets.length; i++) {
            int pad = (int) (Gguf.pad(sizes[i], alignment) - sizes[i]);
            ByteBuffer zeros = ByteBuffer.allocate(pad);
            long at = dataStart + offsets[i] + sizes[i];
            while (zeros.hasRemaining()) {
                at += channel.write(zeros, at);
            }
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
