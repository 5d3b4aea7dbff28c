package dev.quant4j.io;

import dev.quant4j.internal.Json;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads {@code .safetensors} files, memory-mapped, validating the header against the file before any tensor is read.
 *
 * <p>Format (huggingface/safetensors): an unsigned little-endian 64-bit header length {@code N}, {@code N} bytes of
 * JSON mapping each tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the
 * byte after the header) plus an optional {@code "__metadata__"} map of strings, then the data. We reject, naming the
 * tensor: a header length past the end of the file, invalid JSON, an unknown dtype, offsets out of range, reversed or
 * overlapping, and a shape whose byte count differs from its offsets.
 */
public final class SafeTensors implements AutoCloseable {

    /** Largest header accepted, as the reference Rust crate limits it. */
    static final long MAX_HEADER = 100L << 20;

    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Bytes per write when copying a tensor to a channel. */
    private static final int COPY_CHUNK = 16 << 20;

    /** One tensor's header entry. */
    public record Entry(String name, DType dtype, long[] shape, long begin, long end) {

        /** Number of elements. */
        public long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Entry e
                    && name.equals(e.name)
                    && dtype == e.dtype
                    && Arrays.equals(shape, e.shape)
                    && begin == e.begin
                    && end == e.end;
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

    private final String source;
    private final Arena arena;
    /** The open file, for positional reads (faster than faulting mapped pages in); null for bytes in memory. */
    private FileChannel channel;
    /** The file, for copies through channels of their own; null for bytes in memory. */
    private Path path;
    /** Where the data section starts in the file. */
    private long dataStart;

    private final MemorySegment data;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private SafeTensors(
            String source, Arena arena, MemorySegment data, Map<String, Entry> entries, Map<String, String> metadata) {
        this.source = source;
        this.arena = arena;
        this.data = data;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Opens and validates {@code path}; close it to unmap. */
    @SuppressWarnings("MustBeClosedChecker") // the arena is owned, and closed, by the returned SafeTensors
    public static SafeTensors open(Path path) throws IOException {
        String source = path.toString();
        Arena arena = Arena.ofShared();
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        try {
            long size = ch.size();
            MemorySegment file = size == 0 ? MemorySegment.NULL : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            SafeTensors st = parse(file, size, source, arena);
            st.channel = ch;
            st.path = path;
            st.dataStart = size - st.data.byteSize();
            return st;
        } catch (IOException | RuntimeException | Error e) {
            ch.close();
            arena.close();
            throw e;
        }
    }

    /** Parses safetensors bytes held in memory. */
    public static SafeTensors parse(byte[] bytes, String source) {
        return parse(MemorySegment.ofArray(bytes), bytes.length, source, null);
    }

    private static SafeTensors parse(MemorySegment file, long size, String source, Arena arena) {
        if (size < 8) {
            throw bad(source, "file is " + size + " bytes, too short for a safetensors header");
        }
        long n = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (n < 0 || n > size - 8) {
            throw bad(
                    source,
                    "header length " + Long.toUnsignedString(n) + " runs past the end of the file (" + size
                            + " bytes)");
        }
        if (n > MAX_HEADER) {
            throw bad(source, "header length " + n + " exceeds the limit of " + MAX_HEADER + " bytes");
        }
        byte[] hb = file.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
        String headerText = new String(hb, StandardCharsets.UTF_8);
        Object root;
        try {
            root = Json.parse(headerText);
        } catch (IllegalArgumentException e) {
            throw bad(source, "header: " + e.getMessage());
        }
        if (!(root instanceof Map<?, ?> header)) {
            throw bad(source, "header is not a JSON object");
        }
        long dataLen = size - 8 - n;
        Map<String, Entry> entries = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : header.entrySet()) {
            String name = (String) e.getKey();
            if (name.equals("__metadata__")) {
                if (!(e.getValue() instanceof Map<?, ?> meta)) {
                    throw bad(source, "__metadata__ is not an object");
                }
                for (Map.Entry<?, ?> m : meta.entrySet()) {
                    if (!(m.getValue() instanceof String v)) {
                        throw bad(source, "__metadata__ value of '" + m.getKey() + "' is not a string");
                    }
                    metadata.put((String) m.getKey(), v);
                }
                continue;
            }
            entries.put(name, entry(name, e.getValue(), dataLen, source));
        }
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        for (int i = 1; i < sorted.size(); i++) {
            Entry prev = sorted.get(i - 1);
            Entry cur = sorted.get(i);
            if (cur.begin() < prev.end()) {
                throw bad(
                        source,
                        "tensors '" + prev.name() + "' [" + prev.begin() + ", " + prev.end() + ") and '" + cur.name()
                                + "' [" + cur.begin() + ", " + cur.end() + ") overlap");
            }
        }
        MemorySegment body = file.asSlice(8 + n, dataLen);
        return new SafeTensors(
                source, arena, body, Collections.unmodifiableMap(entries), Collections.unmodifiableMap(metadata));
    }

    private static Entry entry(String name, Object value, long dataLen, String source) {
        if (!(value instanceof Map<?, ?> m)) {
            throw bad(source, "tensor '" + name + "': header entry is not an object");
        }
        if (!(m.get("dtype") instanceof String dt)) {
            throw bad(source, "tensor '" + name + "': missing dtype");
        }
        DType dtype;
        try {
            dtype = DType.fromSafetensors(dt);
        } catch (IllegalArgumentException ex) {
            throw bad(source, "tensor '" + name + "': unknown dtype '" + dt + "'");
        }
        long[] shape = longs(m.get("shape"), name, "shape", source);
        long[] offsets = longs(m.get("data_offsets"), name, "data_offsets", source);
        if (offsets.length != 2) {
            throw bad(source, "tensor '" + name + "': data_offsets must have 2 entries, has " + offsets.length);
        }
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end || end > dataLen) {
            throw bad(
                    source,
                    "tensor '" + name + "': data_offsets [" + begin + ", " + end + "] out of range of the " + dataLen
                            + "-byte data section");
        }
        long bytes;
        try {
            long count = 1;
            for (long d : shape) {
                count = Math.multiplyExact(count, d);
            }
            bytes = Math.multiplyExact(count, (long) dtype.bytes());
        } catch (ArithmeticException ex) {
            throw bad(source, "tensor '" + name + "': shape " + Arrays.toString(shape) + " overflows");
        }
        if (bytes != end - begin) {
            throw bad(
                    source,
                    "tensor '" + name + "': shape " + Arrays.toString(shape) + " of " + dtype + " needs " + bytes
                            + " bytes, data_offsets give " + (end - begin));
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    private static long[] longs(Object v, String name, String field, String source) {
        if (!(v instanceof List<?> list)) {
            throw bad(source, "tensor '" + name + "': " + field + " is not an array");
        }
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(list.get(i) instanceof Long l) || l < 0) {
                throw bad(source, "tensor '" + name + "': " + field + "[" + i + "] is not a non-negative integer");
            }
            out[i] = l;
        }
        return out;
    }

    private static MalformedTensorFileException bad(String source, String what) {
        return new MalformedTensorFileException(source + ": " + what);
    }

    /** Tensor names in header order. */
    public List<String> names() {
        return List.copyOf(entries.keySet());
    }

    /** All header entries, in header order. */
    public Map<String, Entry> entries() {
        return entries;
    }

    /** The header entry of {@code name}. */
    public Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new IllegalArgumentException(source + ": no tensor named '" + name + "'");
        }
        return e;
    }

    /** The {@code __metadata__} map (empty when absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The raw little-endian bytes of a tensor. */
    public byte[] readBytes(String name) {
        Entry e = entry(name);
        if (channel != null) {
            if (e.end() - e.begin() > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException(
                        "tensor '" + name + "' has " + (e.end() - e.begin()) + " bytes, more than a Java array holds");
            }
            java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate((int) (e.end() - e.begin()));
            long pos = dataStart + e.begin();
            try {
                PositionalReads.readFully(
                        channel::read,
                        bb,
                        pos,
                        at -> new java.io.EOFException(source + ": tensor '" + name + "' ends past the file"));
            } catch (IOException ex) {
                throw new java.io.UncheckedIOException(source + ": reading tensor '" + name + "'", ex);
            }
            return bb.array();
        }
        return data.asSlice(e.begin(), e.end() - e.begin()).toArray(ValueLayout.JAVA_BYTE);
    }

    /** A float32 tensor's values (F32 only, any rank). */
    public float[] readF32(String name) {
        Entry e = entry(name);
        if (e.dtype() != DType.F32) {
            throw new IllegalArgumentException(source + ": tensor '" + name + "' is " + e.dtype() + ", expected F32");
        }
        return data.asSlice(e.begin(), e.end() - e.begin())
                .toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
    }

    /**
     * An F32, F16 or BF16 tensor of any rank as float32 values, in storage order.
     *
     * @throws IllegalArgumentException for another dtype or a tensor larger than a Java array
     */
    public float[] readFloats(String name) {
        Entry e = entry(name);
        requireFloat(e);
        if (e.elements() > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(
                    "tensor '" + name + "' has " + e.elements() + " elements, more than a Java array holds");
        }
        float[] values = new float[(int) e.elements()];
        readFloats(name, 0, values.length, values, 0);
        return values;
    }

    /**
     * Elements {@code [first, first + count)} of an F32, F16 or BF16 tensor of any rank, in storage order, as float32
     * into {@code dst[off, off + count)}: a block of rows of a tensor of any size, without reading the rest. F16 and
     * BF16 convert exactly.
     *
     * @throws IllegalArgumentException for another dtype or a range outside the tensor or {@code dst}
     */
    public void readFloats(String name, long first, int count, float[] dst, int off) {
        Entry e = entry(name);
        requireFloat(e);
        if (first < 0 || count < 0 || first > e.elements() - count) {
            throw new IllegalArgumentException("tensor '" + name + "': elements [" + first + ", " + (first + count)
                    + ") are outside its " + e.elements());
        }
        java.util.Objects.checkFromIndexSize(off, count, dst.length);
        int width = e.dtype().bytes();
        if (channel != null) {
            readThroughChannel(e, first, count, dst, off);
            return;
        }
        convert(data.asSlice(e.begin() + first * width, (long) count * width), e.dtype(), count, dst, off);
    }

    /** Per thread: a direct buffer for positional reads. */
    private static final int READ_CHUNK = 1 << 21;

    private static final ThreadLocal<java.nio.ByteBuffer> READ_BUFFER =
            ThreadLocal.withInitial(() -> java.nio.ByteBuffer.allocateDirect(READ_CHUNK));

    /**
     * Reads with {@code pread} into a per-thread direct buffer, a chunk at a time, and converts from there: reading a
     * large file this way runs at the speed of {@code cat}, several times faster than faulting its mapped pages in.
     */
    private void readThroughChannel(Entry e, long first, int count, float[] dst, int off) {
        readFloats(
                channel,
                dataStart + e.begin() + first * e.dtype().bytes(),
                e.dtype(),
                count,
                dst,
                off,
                source,
                e.name());
    }

    /**
     * {@code count} values of {@code dtype} (F32, F16 or BF16) from byte {@code position} of {@code channel}, as
     * float32 into {@code dst[off, off + count)}: positional reads a chunk at a time into this thread's direct buffer,
     * each chunk converted from there. A file that ends first, or fails, names tensor {@code name} of {@code source}.
     */
    static void readFloats(
            FileChannel channel,
            long position,
            DType dtype,
            int count,
            float[] dst,
            int off,
            String source,
            String name) {
        int width = dtype.bytes();
        java.nio.ByteBuffer bb = READ_BUFFER.get();
        int perChunk = READ_CHUNK / width;
        for (int done = 0; done < count; ) {
            int n = Math.min(perChunk, count - done);
            bb.clear().limit(n * width);
            try {
                PositionalReads.readFully(
                        channel::read,
                        bb,
                        position + (long) done * width,
                        at -> new java.io.EOFException(source + ": tensor '" + name + "' ends past the file"));
            } catch (IOException ex) {
                throw new java.io.UncheckedIOException(source + ": reading tensor '" + name + "'", ex);
            }
            bb.flip();
            convert(MemorySegment.ofBuffer(bb), dtype, n, dst, off + done);
            done += n;
        }
    }

    /** Per thread: F16 values copied out of a segment, for a conversion loop over an array. */
    private static final ThreadLocal<short[]> HALVES = ThreadLocal.withInitial(() -> new short[1 << 16]);

    /** {@code count} values of {@code dtype} (F32, F16 or BF16) from {@code seg}, as float32 into {@code dst}. */
    static void convert(MemorySegment seg, DType dtype, int count, float[] dst, int off) {
        if (dtype == DType.F32) {
            MemorySegment.copy(seg, LE_FLOAT, 0, dst, off, count);
            return;
        }
        if (dtype == DType.BF16) {
            // straight from the segment, a vector of values at a time (kernel.ConversionKernels)
            Kernels.get().bf16ToFloat(seg, 0, count, dst, off);
            return;
        }
        // F16, in pieces through an array: a plain loop over arrays is one the JIT compiles well (and vectorizes)
        short[] h = HALVES.get();
        for (int done = 0; done < count; done += h.length) {
            int n = Math.min(h.length, count - done);
            MemorySegment.copy(seg, LE_SHORT, 2L * done, h, 0, n);
            int o = off + done;
            for (int i = 0; i < n; i++) {
                dst[o + i] = Float.float16ToFloat(h[i]);
            }
        }
    }

    /**
     * Writes bytes {@code [from, from + length)} of a tensor's data to {@code out} at {@code position}, straight from
     * the mapped file (no copy on the heap, any size).
     */
    public void copyTo(String name, long from, long length, FileChannel out, long position) throws IOException {
        Entry e = entry(name);
        long size = e.end() - e.begin();
        if (from < 0 || length < 0 || from > size - length) {
            throw new IllegalArgumentException(
                    "tensor '" + name + "': bytes [" + from + ", " + (from + length) + ") are outside its " + size);
        }
        if (path != null) {
            // in the kernel (copy_file_range where the file systems allow it), through a channel of its own whose
            // position no other thread moves
            try (FileChannel in = FileChannel.open(path, StandardOpenOption.READ)) {
                in.position(dataStart + e.begin() + from);
                for (long done = 0; done < length; ) {
                    long n = out.transferFrom(in, position + done, length - done);
                    if (n <= 0) {
                        throw new java.io.EOFException(source + ": tensor '" + name + "' ends past the file");
                    }
                    done += n;
                }
            }
            return;
        }
        for (long done = 0; done < length; ) {
            int chunk = (int) Math.min(length - done, COPY_CHUNK);
            java.nio.ByteBuffer bb =
                    data.asSlice(e.begin() + from + done, chunk).asByteBuffer();
            while (bb.hasRemaining()) {
                done += out.write(bb, position + done);
            }
        }
    }

    private void requireFloat(Entry e) {
        if (!e.dtype().isFloat()) {
            throw new IllegalArgumentException(
                    "tensor '" + e.name() + "' is " + e.dtype() + ", expected F32, F16 or BF16");
        }
    }

    /**
     * A 2-D F32, F16 or BF16 tensor as a float32 matrix named {@code name}.
     *
     * @throws IllegalArgumentException for another rank or dtype, or an empty tensor
     */
    public FloatMatrix readMatrix(String name) {
        Entry e = entry(name);
        if (e.shape().length != 2) {
            throw new IllegalArgumentException("tensor '" + name + "' has " + e.shape().length + " dimensions "
                    + Arrays.toString(e.shape()) + ", expected 2 ([out, in])");
        }
        if (!e.dtype().isFloat()) {
            throw new IllegalArgumentException("tensor '" + name + "' is " + e.dtype() + ", expected F32, F16 or BF16");
        }
        if (e.elements() == 0) {
            throw new IllegalArgumentException("tensor '" + name + "' is empty: shape " + Arrays.toString(e.shape()));
        }
        float[] values = readFloats(name);
        return FloatMatrix.of(name, (int) e.shape()[0], (int) e.shape()[1], values, 0);
    }

    @Override
    public void close() {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                // a read-only file: nothing was lost
            }
        }
        if (arena != null) {
            arena.close();
        }
    }
}
