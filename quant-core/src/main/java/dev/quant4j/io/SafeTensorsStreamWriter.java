package dev.quant4j.io;

import dev.quant4j.internal.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Writes a {@code .safetensors} file of any size as a stream: the header is computed from the tensors' names, dtypes
 * and shapes before any data, then each tensor's bytes are written at their place through a file channel, in any
 * order and from any number of threads. Offsets are 64-bit throughout; nothing but the header is held in memory.
 *
 * <p>The file is written where it is asked to be: make it atomic with {@link AtomicFiles#writeFile} (or inside a
 * folder written with {@link AtomicFiles#writeFolder}). {@link #finish()} checks that every byte of the data section
 * was written exactly once in total, so that a writer that forgot a tensor fails instead of leaving zeros.
 */
public final class SafeTensorsStreamWriter implements AutoCloseable {

    /** A tensor the file will hold: its name, dtype and shape (its byte count follows). */
    public record Spec(String name, DType dtype, long[] shape) {

        public Spec {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(dtype, "dtype");
            shape = shape.clone();
            for (long d : shape) {
                if (d < 0) {
                    throw new IllegalArgumentException(
                            "tensor '" + name + "': negative dimension in " + Arrays.toString(shape));
                }
            }
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        /** Bytes of data: the product of the shape times the dtype's width. */
        public long bytes() {
            long count = 1;
            for (long d : shape) {
                count = Math.multiplyExact(count, d);
            }
            return Math.multiplyExact(count, (long) dtype.bytes());
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Spec s && name.equals(s.name) && dtype == s.dtype && Arrays.equals(shape, s.shape);
        }

        @Override
        public int hashCode() {
            return name.hashCode() * 31 + Arrays.hashCode(shape);
        }

        @Override
        public String toString() {
            return name + " " + dtype + Arrays.toString(shape);
        }
    }

    private final Path path;
    private final FileChannel channel;
    private final Map<String, long[]> ranges = new HashMap<>();
    private final long dataStart;
    private final long dataBytes;
    private final AtomicLong written = new AtomicLong();

    private SafeTensorsStreamWriter(Path path, FileChannel channel, byte[] header, List<Spec> tensors)
            throws IOException {
        this.path = path;
        this.channel = channel;
        this.dataStart = header.length;
        long offset = 0;
        for (Spec t : tensors) {
            ranges.put(t.name(), new long[] {offset, t.bytes()});
            offset += t.bytes();
        }
        this.dataBytes = offset;
        ByteBuffer bb = ByteBuffer.wrap(header);
        while (bb.hasRemaining()) {
            channel.write(bb, bb.position());
        }
    }

    /**
     * Creates {@code path} (truncating it) and writes the header of a file holding {@code tensors} in this order and
     * {@code metadata} as {@code __metadata__} (omitted when empty).
     *
     * @throws IllegalArgumentException for a duplicate or reserved tensor name
     */
    public static SafeTensorsStreamWriter create(Path path, List<Spec> tensors, Map<String, String> metadata)
            throws IOException {
        byte[] header = header(tensors, metadata);
        FileChannel ch = FileChannel.open(
                path, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        try {
            return new SafeTensorsStreamWriter(path, ch, header, tensors);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * The 8-byte length and the JSON header of a file holding {@code tensors} in order, padded with spaces to a
     * multiple of 8 bytes as the reference writer pads it.
     */
    static byte[] header(List<Spec> tensors, Map<String, String> metadata) {
        Map<String, Object> header = new LinkedHashMap<>();
        if (!metadata.isEmpty()) {
            header.put("__metadata__", new LinkedHashMap<>(metadata));
        }
        long offset = 0;
        for (Spec t : tensors) {
            if (t.name().equals("__metadata__") || header.containsKey(t.name())) {
                throw new IllegalArgumentException("duplicate or reserved tensor name '" + t.name() + "'");
            }
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("dtype", t.dtype().name());
            List<Object> shape = new ArrayList<>();
            for (long d : t.shape) {
                shape.add(d);
            }
            e.put("shape", shape);
            long end = Math.addExact(offset, t.bytes());
            e.put("data_offsets", List.of(offset, end));
            header.put(t.name(), e);
            offset = end;
        }
        byte[] json = Json.write(header).getBytes(StandardCharsets.UTF_8);
        int pad = (8 - json.length % 8) % 8;
        ByteBuffer out = ByteBuffer.allocate(8 + json.length + pad).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(json.length + pad).put(json);
        for (int i = 0; i < pad; i++) {
            out.put((byte) ' ');
        }
        return out.array();
    }

    /** The file's size when finished. */
    public long size() {
        return dataStart + dataBytes;
    }

    /**
     * Writes {@code bytes} (from its position to its limit) into tensor {@code name} starting at byte {@code offset}
     * of that tensor's data. Safe to call from several threads for different ranges.
     */
    public void write(String name, long offset, ByteBuffer bytes) throws IOException {
        long at = position(name, offset, bytes.remaining());
        int n = bytes.remaining();
        while (bytes.hasRemaining()) {
            at += channel.write(bytes, at);
        }
        written.addAndGet(n);
    }

    /** As {@link #write(String, long, ByteBuffer)} for a whole array. */
    public void write(String name, long offset, byte[] bytes) throws IOException {
        write(name, offset, ByteBuffer.wrap(bytes));
    }

    /** Writes float32 values, little-endian, into tensor {@code name} starting at byte {@code offset}. */
    public void writeFloats(String name, long offset, float[] values) throws IOException {
        ByteBuffer bb = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        bb.asFloatBuffer().put(values);
        write(name, offset, bb);
    }

    /**
     * Copies bytes {@code [from, from + length)} of tensor {@code srcName} of {@code src} to the same bytes of tensor
     * {@code name}, straight from the mapped input.
     */
    public void copyRange(String name, long from, SafeTensors src, String srcName, long length) throws IOException {
        long at = position(name, from, length);
        src.copyTo(srcName, from, length, channel, at);
        written.addAndGet(length);
    }

    /**
     * Copies {@code length} bytes of {@code src} from byte {@code srcPosition} to bytes {@code [from, from + length)}
     * of tensor {@code name}, in the kernel where it can.
     */
    public void copyRange(String name, long from, FileChannel src, long srcPosition, long length) throws IOException {
        long at = position(name, from, length);
        long done = 0;
        while (done < length) {
            long n = channel.transferFrom(src.position(srcPosition + done), at + done, length - done);
            if (n <= 0) {
                throw new java.io.EOFException(path + ": the source of tensor '" + name + "' ended after " + done
                        + " of " + length + " bytes");
            }
            done += n;
        }
        written.addAndGet(length);
    }

    /** Copies tensor {@code srcName} of {@code src} whole into tensor {@code name} (the same byte count). */
    public void copy(String name, SafeTensors src, String srcName) throws IOException {
        SafeTensors.Entry e = src.entry(srcName);
        long length = e.end() - e.begin();
        long at = position(name, 0, length);
        if (ranges.get(name)[1] != length) {
            throw new IllegalArgumentException(
                    "tensor '" + name + "' holds " + ranges.get(name)[1] + " bytes, '" + srcName + "' has " + length);
        }
        src.copyTo(srcName, 0, length, channel, at);
        written.addAndGet(length);
    }

    private long position(String name, long offset, long length) {
        long[] range = ranges.get(name);
        if (range == null) {
            throw new IllegalArgumentException(path + ": no tensor '" + name + "' in the header");
        }
        if (offset < 0 || length < 0 || offset > range[1] - length) {
            throw new IllegalArgumentException(path + ": bytes [" + offset + ", " + (offset + length) + ") are"
                    + " outside tensor '" + name + "' (" + range[1] + " bytes)");
        }
        return dataStart + range[0] + offset;
    }

    /**
     * Checks that the data section was written in full. Like quant4j's other writers it does not force the file to the
     * device: the atomic rename protects against a killed process, and the operating system writes the pages back.
     *
     * @throws IllegalStateException when fewer or more bytes than the header promises were written
     */
    public void finish() throws IOException {
        if (written.get() != dataBytes) {
            throw new IllegalStateException(
                    path + ": " + written.get() + " bytes of data written, the header" + " promises " + dataBytes);
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
