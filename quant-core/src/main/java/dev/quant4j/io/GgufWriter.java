package dev.quant4j.io;

import dev.quant4j.ggml.GgmlType;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes GGUF version 3 files, laid out as ggml's own writer ({@code gguf_write_out} in ggml's {@code src/gguf.cpp},
 * commit {@code d99724f2b141fed9e1a9f402213506c081433465}) lays them out: the header, the metadata in insertion order,
 * the tensor infos in insertion order with offsets that place each tensor after the previous one padded to the
 * alignment, zero padding to the alignment, then each tensor's data followed by zero padding to the alignment (the last
 * one too). For the same metadata and tensors the bytes equal ggml's ({@code GgufTest} checks it against a file ggml
 * wrote).
 *
 * <p>The alignment is {@code general.alignment} when the metadata has it (a {@code uint32} power of two), 32
 * otherwise. Unlike ggml's writer, which writes {@code ne[]} up to the last extent above 1 ({@code ggml_n_dims}), this
 * writer keeps the number of dimensions it is given. Files are written atomically ({@link AtomicFiles}).
 */
public final class GgufWriter {

    /** The metadata key of the alignment. */
    public static final String ALIGNMENT_KEY = "general.alignment";

    /** ggml's {@code GGML_MAX_NAME}: a tensor name must be shorter, in UTF-8 bytes. */
    public static final int MAX_NAME_BYTES = 64;

    /** What writes a tensor's bytes, for tensors too large to hold in memory. */
    @FunctionalInterface
    public interface TensorData {
        void writeTo(OutputStream out) throws IOException;
    }

    private record Tensor(String name, long[] ne, GgmlType type, long bytes, TensorData data) {}

    private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    /**
     * Sets {@code key} to {@code value}; a key set again keeps its first position.
     *
     * @throws IllegalArgumentException for an empty key, or a {@code general.alignment} that is not a {@code uint32}
     *     power of two
     */
    public GgufWriter put(String key, GgufValue value) {
        if (key.isEmpty()) {
            throw new IllegalArgumentException("a GGUF metadata key cannot be empty");
        }
        if (key.equals(ALIGNMENT_KEY)) {
            long a = value.type() == GgufValueType.UINT32 ? value.asLong() : 0;
            if (a == 0 || (a & (a - 1)) != 0 || a > 1 << 30) {
                throw new IllegalArgumentException(ALIGNMENT_KEY + " must be a UINT32 power of two, got " + value);
            }
        }
        metadata.put(key, value);
        return this;
    }

    /** Every key and value of {@code values}, in their order. */
    public GgufWriter putAll(Map<String, GgufValue> values) {
        values.forEach(this::put);
        return this;
    }

    /** Adds a tensor whose data is {@code data} (exactly the bytes its shape and type need). */
    public GgufWriter addTensor(String name, long[] ne, GgmlType type, byte[] data) {
        long bytes = bytes(name, ne, type);
        if (data.length != bytes) {
            throw new IllegalArgumentException("tensor '" + name + "': ne" + Arrays.toString(ne) + " of " + type
                    + " needs " + bytes + " bytes, got " + data.length);
        }
        byte[] copy = data.clone();
        return add(new Tensor(name, ne.clone(), type, bytes, out -> out.write(copy)));
    }

    /** Adds a tensor whose bytes {@code data} writes when the file is written; it must write exactly that many. */
    public GgufWriter addTensor(String name, long[] ne, GgmlType type, TensorData data) {
        return add(new Tensor(name, ne.clone(), type, bytes(name, ne, type), data));
    }

    private GgufWriter add(Tensor t) {
        if (!names.add(t.name())) {
            throw new IllegalArgumentException("duplicate tensor name '" + t.name() + "'");
        }
        tensors.add(t);
        return this;
    }

    /** The bytes of a tensor's data; checks its name, extents and row length. */
    static long bytes(String name, long[] ne, GgmlType type) {
        if (name.getBytes(StandardCharsets.UTF_8).length >= MAX_NAME_BYTES) {
            throw new IllegalArgumentException("tensor name '" + name + "' is " + MAX_NAME_BYTES
                    + " bytes or longer; ggml reads names of at most " + (MAX_NAME_BYTES - 1));
        }
        if (ne.length < 1 || ne.length > Gguf.MAX_DIMS) {
            throw new IllegalArgumentException(
                    "tensor '" + name + "': " + ne.length + " dimensions, GGUF holds 1 to " + Gguf.MAX_DIMS);
        }
        long count = 1;
        for (long d : ne) {
            if (d < 0) {
                throw new IllegalArgumentException(
                        "tensor '" + name + "': negative extent in ne" + Arrays.toString(ne));
            }
            count = Math.multiplyExact(count, d);
        }
        if (ne[0] % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor '" + name + "': row length " + ne[0]
                    + " is not a multiple of the " + type + " block size " + type.blockSize());
        }
        return Math.multiplyExact(count / type.blockSize(), (long) type.typeSize());
    }

    int alignment() {
        GgufValue a = metadata.get(ALIGNMENT_KEY);
        return a == null ? Gguf.DEFAULT_ALIGNMENT : (int) a.asLong();
    }

    /** Writes the file atomically. */
    public void write(Path path) throws IOException {
        AtomicFiles.write(path, this::writeTo);
    }

    /**
     * Writes the file split into several as llama.cpp's {@code gguf-split} splits a model ({@link GgufSplits}): {@code
     * out} {@code NAME.gguf} becomes {@code NAME-00001-of-0000N.gguf} ..., the first with every metadata key, each
     * file with the split keys, each tensor's bytes as in the single file. The files are written under temporary names
     * and moved into place when all are complete ({@link AtomicFiles#writeFiles}). When every tensor fits in one file,
     * it is {@code out}, without split keys.
     *
     * @param maxBytes at most this many bytes of tensor data per file (0: no limit)
     * @param maxTensors at most this many tensors per file (0: no limit)
     * @return the files written, in order
     */
    public List<Path> writeSplit(Path out, long maxBytes, int maxTensors) throws IOException {
        int[] plan = GgufSplits.plan(tensors.stream().mapToLong(Tensor::bytes).toArray(), maxBytes, maxTensors);
        int n = plan.length == 0 ? 1 : plan[plan.length - 1] + 1;
        if (n == 1) {
            write(out);
            return List.of(out);
        }
        List<GgufWriter> parts = new ArrayList<>();
        for (int s = 0; s < n; s++) {
            parts.add(new GgufWriter().putAll(GgufSplits.metadata(metadata, s, n, tensors.size())));
        }
        for (int i = 0; i < plan.length; i++) {
            parts.get(plan[i]).add(tensors.get(i));
        }
        List<Path> files = GgufSplits.paths(GgufSplits.prefix(out), n);
        AtomicFiles.writeFiles(files, tmps -> {
            for (int s = 0; s < n; s++) {
                try (OutputStream o = new BufferedOutputStream(Files.newOutputStream(tmps.get(s)), 1 << 20)) {
                    parts.get(s).writeTo(o);
                }
            }
        });
        return files;
    }

    /** The file's bytes. */
    public byte[] toBytes() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            writeTo(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    /** Writes the file to {@code sink}. */
    public void writeTo(OutputStream sink) throws IOException {
        Counting out = new Counting(sink);
        int alignment = alignment();
        writeHeader(out, alignment);
        for (Tensor t : tensors) {
            long before = out.count;
            t.data().writeTo(out);
            if (out.count - before != t.bytes()) {
                throw new IllegalStateException("tensor '" + t.name() + "': wrote " + (out.count - before)
                        + " bytes, its shape and type need " + t.bytes());
            }
            out.pad(alignment);
        }
        out.flush();
    }

    /**
     * The file up to its data section: the header, the metadata, the tensor infos and the padding to the alignment
     * (the data section starts at its length).
     */
    byte[] header() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try {
            writeHeader(new Counting(bytes), alignment());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    private void writeHeader(Counting out, int alignment) throws IOException {
        out.write("GGUF".getBytes(StandardCharsets.US_ASCII));
        out.u32(3);
        out.u64(tensors.size());
        out.u64(metadata.size());
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            out.string(e.getKey());
            GgufValue v = e.getValue();
            out.u32(v.type().id());
            value(out, v.type(), v.value());
        }
        long offset = 0;
        for (Tensor t : tensors) {
            out.string(t.name());
            out.u32(t.ne().length);
            for (long d : t.ne()) {
                out.u64(d);
            }
            out.u32(t.type().id());
            out.u64(offset);
            offset += Gguf.pad(t.bytes(), alignment);
        }
        out.pad(alignment);
        out.flush();
    }

    private static void value(Counting out, GgufValueType type, Object v) throws IOException {
        switch (type) {
            case UINT8, INT8 -> out.write((int) (long) (Long) v);
            case UINT16, INT16 -> {
                long x = (Long) v;
                out.write((int) x);
                out.write((int) (x >> 8));
            }
            case UINT32, INT32 -> out.u32((int) (long) (Long) v);
            case UINT64, INT64 -> out.u64((Long) v);
            case FLOAT32 -> out.u32(Float.floatToRawIntBits((Float) v));
            case FLOAT64 -> out.u64(Double.doubleToRawLongBits((Double) v));
            case BOOL -> out.write((Boolean) v ? 1 : 0);
            case STRING -> out.string((String) v);
            case ARRAY -> {
                GgufValue.GgufArray a = (GgufValue.GgufArray) v;
                out.u32(a.elementType().id());
                out.u64(a.values().size());
                for (Object e : a.values()) {
                    value(out, a.elementType(), e);
                }
            }
        }
    }

    /** A little-endian stream that counts what it wrote. */
    private static final class Counting extends OutputStream {
        private final OutputStream out;
        private final byte[] buf = new byte[8];
        long count;

        Counting(OutputStream out) {
            this.out = out;
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            count += len;
        }

        @Override
        public void flush() throws IOException {
            out.flush();
        }

        void u32(int v) throws IOException {
            for (int i = 0; i < 4; i++) {
                buf[i] = (byte) (v >> (8 * i));
            }
            write(buf, 0, 4);
        }

        void u64(long v) throws IOException {
            for (int i = 0; i < 8; i++) {
                buf[i] = (byte) (v >> (8 * i));
            }
            write(buf, 0, 8);
        }

        void string(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            write(b, 0, b.length);
        }

        void pad(int alignment) throws IOException {
            while (count % alignment != 0) {
                write(0);
            }
        }
    }
}
