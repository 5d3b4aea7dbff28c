package dev.quant4j.io;

import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
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
 * Reads GGUF files (versions 2 and 3, little-endian), memory-mapped, validating the whole header against the file
 * before any tensor is read.
 *
 * <p>Format (ggml's {@code docs/gguf.md}; ggml's reader {@code gguf_init_from_reader} in {@code src/gguf.cpp}, commit
 * {@code d99724f2b141fed9e1a9f402213506c081433465}): the magic {@code GGUF}, a {@code uint32} version, an {@code int64}
 * tensor count and an {@code int64} metadata count; the metadata (a string key, a {@code uint32} value type, the value;
 * strings are a {@code uint64} length and UTF-8 bytes; arrays a {@code uint32} element type, a {@code uint64} count
 * and the elements); for each tensor its name, a {@code uint32} number of dimensions (at most 4), the {@code int64}
 * extents {@code ne[]} with {@code ne[0]} the fastest (the columns of a matrix), the {@code uint32} ggml type and a
 * {@code uint64} offset into the data section; zero padding to the alignment ({@code general.alignment}, a {@code
 * uint32} power of two, 32 when absent); then the data section, each tensor at an offset that is a multiple of the
 * alignment.
 *
 * <p>Rejected with a {@link MalformedTensorFileException} naming the field: a wrong magic, an unsupported version (1, or
 * a big-endian file), counts and lengths that run past the end of the file, unknown value or tensor types, a
 * non-boolean byte in a bool, duplicate keys or tensor names, more than 4 dimensions, negative or overflowing extents,
 * a row length the type's block size does not divide, an alignment that is not a power of two, not a {@code uint32}
 * or above {@link #MAX_ALIGNMENT}, and tensor data that is misaligned, out of range or overlapping. Nothing is allocated in proportion to a
 * count before the count is checked against the bytes left in the file. quant4j is more lenient than ggml in one way:
 * ggml also requires the tensors to be stored in header order without gaps, and refuses nested arrays and tensor names
 * of 64 bytes or more; quant4j reads those files.
 */
public final class Gguf implements AutoCloseable {

    /** The magic, {@code "GGUF"} read as a little-endian {@code uint32}. */
    static final int MAGIC = 0x46554747;

    /** ggml's {@code GGUF_DEFAULT_ALIGNMENT}. */
    public static final int DEFAULT_ALIGNMENT = 32;

    /**
     * The largest {@code general.alignment} read, 1 MiB: ggml writes 32, and larger values serve only page or
     * allocation-granularity alignment (4 KiB to 64 KiB).
     */
    public static final int MAX_ALIGNMENT = 1 << 20;

    /** ggml's {@code GGML_MAX_DIMS}. */
    public static final int MAX_DIMS = 4;

    /** Deepest nesting of arrays accepted. */
    static final int MAX_ARRAY_DEPTH = 8;

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * One tensor's header entry.
     *
     * @param ne the extents, {@code ne[0]} fastest (a matrix {@code [rows, cols]} has {@code ne = [cols, rows]})
     * @param offset from the start of the data section
     * @param bytes the size of its data
     */
    public record TensorInfo(String name, long[] ne, GgmlType type, long offset, long bytes) {

        /** Number of values. */
        public long elements() {
            long n = 1;
            for (long d : ne) {
                n *= d;
            }
            return n;
        }

        /** Values per row, {@code ne[0]}. */
        public long rowLength() {
            return ne[0];
        }

        /** Rows: the product of {@code ne[1..]}. */
        public long rows() {
            return ne[0] == 0 ? 0 : elements() / ne[0];
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof TensorInfo t
                    && name.equals(t.name)
                    && Arrays.equals(ne, t.ne)
                    && type == t.type
                    && offset == t.offset
                    && bytes == t.bytes;
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

    private final String source;
    private final Arena arena;
    private final int version;
    private final int alignment;
    private final long dataOffset;
    private final MemorySegment data;
    private final Map<String, GgufValue> metadata;
    private final Map<String, TensorInfo> tensors;
    /** The files of a split model in order, or empty for one file. */
    private final List<Gguf> splits;
    /** The split each tensor is in (a split model only). */
    private final Map<String, Gguf> splitOf;
    /** The file, for positional reads ({@link #readFloats(String, long, int, float[], int)}); null for bytes. */
    private FileChannel channel;

    private Gguf(
            String source,
            Arena arena,
            int version,
            int alignment,
            long dataOffset,
            MemorySegment data,
            Map<String, GgufValue> metadata,
            Map<String, TensorInfo> tensors) {
        this.source = source;
        this.arena = arena;
        this.version = version;
        this.alignment = alignment;
        this.dataOffset = dataOffset;
        this.data = data;
        this.metadata = metadata;
        this.tensors = tensors;
        this.splits = List.of();
        this.splitOf = Map.of();
    }

    /** A split model: {@code splits} in order, the first's metadata without the split keys, every split's tensors. */
    private Gguf(
            List<Gguf> splits,
            Map<String, GgufValue> metadata,
            Map<String, TensorInfo> tensors,
            Map<String, Gguf> splitOf) {
        Gguf first = splits.get(0);
        this.source = first.source;
        this.arena = null;
        this.version = first.version;
        this.alignment = first.alignment;
        this.dataOffset = first.dataOffset;
        this.data = null;
        this.metadata = Collections.unmodifiableMap(metadata);
        this.tensors = Collections.unmodifiableMap(tensors);
        this.splits = List.copyOf(splits);
        this.splitOf = Map.copyOf(splitOf);
    }

    /**
     * Opens and validates {@code path}; close it to unmap. A file of a split model ({@code split.count} above 1, named
     * {@code PREFIX-NNNNN-of-NNNNN.gguf}, {@link GgufSplits}), the first or any other, opens the whole model: every
     * split is opened and validated, and this object holds the first split's metadata without the split keys and
     * every split's tensors in order (each tensor's {@link TensorInfo#offset()} is in its own split's data section).
     *
     * @throws MalformedTensorFileException also for a split model whose files do not fit together: a missing split, a
     *     file name that does not match its {@code split.no} and {@code split.count}, a split whose {@code split.no},
     *     {@code split.count} or metadata disagree with the first's, a tensor in two splits, a tensor count other than
     *     {@code split.tensors.count}
     */
    public static Gguf open(Path path) throws IOException {
        Gguf file = openFile(path);
        try {
            return GgufSplitReader.open(file, path);
        } catch (IOException | RuntimeException | Error e) {
            file.close();
            throw e;
        }
    }

    /** Assembles a split model from its opened files (validated by {@link GgufSplitReader}). */
    static Gguf ofSplits(
            List<Gguf> splits,
            Map<String, GgufValue> metadata,
            Map<String, TensorInfo> tensors,
            Map<String, Gguf> splitOf) {
        return new Gguf(splits, metadata, tensors, splitOf);
    }

    /** Opens and validates the one file {@code path}, without following its split keys to other files. */
    @SuppressWarnings("MustBeClosedChecker") // the arena and the channel are owned, and closed, by the returned Gguf
    public static Gguf openFile(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        try {
            long size = ch.size();
            MemorySegment file = size == 0 ? MemorySegment.NULL : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            Gguf g = new Reader(file, size, path.toString()).read(arena);
            g.channel = ch; // kept for positional reads, closed by close()
            return g;
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            ch.close();
            throw e;
        }
    }

    /** Parses GGUF bytes held in memory. */
    public static Gguf parse(byte[] bytes, String source) {
        return new Reader(MemorySegment.ofArray(bytes), bytes.length, source).read(null);
    }

    /** Whether {@code bytes} (a file's first four bytes or more) start with the GGUF magic. */
    public static boolean hasMagic(byte[] bytes) {
        return bytes.length >= 4 && bytes[0] == 'G' && bytes[1] == 'G' && bytes[2] == 'U' && bytes[3] == 'F';
    }

    /** The file's name (a split model: the first split's). */
    public String source() {
        return source;
    }

    /** The files of a split model, in order; empty for a model in one file. */
    public List<String> splitFiles() {
        return splits.stream().map(g -> g.source).toList();
    }

    /** The split (from 0) holding tensor {@code name}; 0 for a model in one file. */
    public int splitOf(String name) {
        tensor(name);
        return splits.isEmpty() ? 0 : splits.indexOf(splitOf.get(name));
    }

    /** The file's format version (2 or 3; a split model: the first split's). */
    public int version() {
        return version;
    }

    /** The alignment of the data section and of every tensor in it (a split model: the first split's). */
    public int alignment() {
        return alignment;
    }

    /** Where the data section starts in the file (a split model: in the first split). */
    public long dataOffset() {
        return dataOffset;
    }

    /** Every metadata key and value, in file order. */
    public Map<String, GgufValue> metadata() {
        return metadata;
    }

    /** Every tensor, in header order. */
    public List<TensorInfo> tensors() {
        return List.copyOf(tensors.values());
    }

    /** The header entry of {@code name}. */
    public TensorInfo tensor(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(source + ": no tensor named '" + name + "'");
        }
        return t;
    }

    /** A tensor's data, a view of the mapped file valid until {@link #close()}. */
    public MemorySegment segment(String name) {
        TensorInfo t = tensor(name);
        return (splits.isEmpty() ? data : splitOf.get(name).data).asSlice(t.offset(), t.bytes());
    }

    /** A copy of a tensor's data (at most 2 GB). */
    public byte[] readBytes(String name) {
        TensorInfo t = tensor(name);
        if (t.bytes() > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(
                    source + ": tensor '" + name + "' has " + t.bytes() + " bytes, more than a Java array holds");
        }
        return segment(name).toArray(ValueLayout.JAVA_BYTE);
    }

    /**
     * A tensor's values as float32, dequantized as ggml's {@code to_float} does, row-major ({@code ne[0]} fastest).
     *
     * @throws IllegalArgumentException for a type quant4j does not dequantize, or more values than an array holds
     */
    public float[] readFloats(String name) {
        TensorInfo t = tensor(name);
        if (!t.type().quantizable()) {
            throw new IllegalArgumentException(source + ": tensor '" + name + "' is " + t.type()
                    + ", which quant4j does not dequantize (it does " + GgmlType.quantizableNames() + ")");
        }
        if (t.elements() > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(
                    source + ": tensor '" + name + "' has " + t.elements() + " values, more than a Java array holds");
        }
        return GgmlQuants.dequantize(t.type(), readBytes(name), (int) t.rows(), (int) t.rowLength());
    }

    /**
     * Values {@code [first, first + count)} of an F32, F16 or BF16 tensor, row-major, as float32 into {@code dst[off,
     * off + count)}: a block of rows of a tensor of any size, without reading the rest. A file is read with positional
     * reads through a per-thread buffer (as fast as {@code cat}; faulting the mapped pages in is several times slower).
     * F16 and BF16 convert exactly.
     *
     * @throws IllegalArgumentException for another type or a range outside the tensor or {@code dst}
     */
    public void readFloats(String name, long first, int count, float[] dst, int off) {
        if (!splits.isEmpty()) {
            tensor(name); // names a tensor no split holds
            splitOf.get(name).readFloats(name, first, count, dst, off);
            return;
        }
        TensorInfo t = tensor(name);
        DType dtype = switch (t.type()) {
            case F32 -> DType.F32;
            case F16 -> DType.F16;
            case BF16 -> DType.BF16;
            default ->
                throw new IllegalArgumentException(
                        source + ": tensor '" + name + "' is " + t.type() + ", not f32, f16 or bf16");
        };
        if (first < 0 || count < 0 || first > t.elements() - count) {
            throw new IllegalArgumentException(source + ": tensor '" + name + "': elements [" + first + ", "
                    + (first + count) + ") are outside its " + t.elements());
        }
        java.util.Objects.checkFromIndexSize(off, count, dst.length);
        int width = dtype.bytes();
        if (channel == null) {
            SafeTensors.convert(data.asSlice(t.offset() + first * width, (long) count * width), dtype, count, dst, off);
            return;
        }
        SafeTensors.readFloats(channel, dataOffset + t.offset() + first * width, dtype, count, dst, off, source, name);
    }

    @Override
    public void close() {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                // read-only: nothing of ours is lost
            }
        }
        if (arena != null) {
            arena.close();
        }
        for (Gguf split : splits) {
            split.close();
        }
    }

    /** A cursor over the file that checks every read against its end. */
    private static final class Reader {
        private final MemorySegment file;
        private final long size;
        private final String source;
        private long pos;

        Reader(MemorySegment file, long size, String source) {
            this.file = file;
            this.size = size;
            this.source = source;
        }

        MalformedTensorFileException bad(String what) {
            return new MalformedTensorFileException(source + ": " + what);
        }

        long remaining() {
            return size - pos;
        }

        void need(long n, String field) {
            if (n > remaining()) {
                throw bad(field + " at byte " + pos + " runs past the end of the file (" + size + " bytes)");
            }
        }

        int u32(String field) {
            need(4, field);
            int v = file.get(U32, pos);
            pos += 4;
            return v;
        }

        long u64(String field) {
            need(8, field);
            long v = file.get(U64, pos);
            pos += 8;
            return v;
        }

        String string(String field) {
            long n = u64(field + " length");
            if (n < 0 || n > remaining()) {
                throw bad(field + ": string length " + Long.toUnsignedString(n) + " at byte " + (pos - 8)
                        + " runs past the end of the file (" + size + " bytes)");
            }
            if (n > Integer.MAX_VALUE - 8) {
                throw bad(field + ": string length " + n + " is more than a Java string holds");
            }
            byte[] b = file.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE);
            pos += n;
            return new String(b, StandardCharsets.UTF_8);
        }

        Gguf read(Arena arena) {
            if (size < 24) {
                throw bad("file is " + size + " bytes, too short for a GGUF header (24 bytes)");
            }
            int magic = u32("magic");
            if (magic != MAGIC) {
                throw bad(String.format("bad magic 0x%08x, expected 'GGUF' (0x%08x)", magic, MAGIC));
            }
            int version = u32("version");
            if (version != 0 && (version & 0xFFFF) == 0) {
                throw bad("version " + Integer.toUnsignedString(version)
                        + " looks byte-swapped: big-endian GGUF files are not supported");
            }
            if (version != 2 && version != 3) {
                throw bad("unsupported GGUF version " + Integer.toUnsignedString(version) + " (2 and 3 are read)");
            }
            long nTensors = u64("tensor_count");
            long nKv = u64("metadata_kv_count");
            // a tensor info takes at least 8 (name) + 4 (n_dims) + 8 (ne[0]) + 4 (type) + 8 (offset) bytes; a key-value
            // pair at least 8 (key) + 4 (type) + 1 (value)
            if (nKv < 0 || nKv > remaining() / 13) {
                throw bad("metadata_kv_count " + Long.toUnsignedString(nKv) + " exceeds what the remaining "
                        + remaining() + " bytes can hold");
            }
            if (nTensors < 0 || nTensors > remaining() / 32) {
                throw bad("tensor_count " + Long.toUnsignedString(nTensors) + " exceeds what the remaining "
                        + remaining() + " bytes can hold");
            }
            Map<String, GgufValue> metadata = new LinkedHashMap<>();
            for (long i = 0; i < nKv; i++) {
                String key = string("metadata key " + i);
                if (key.isEmpty()) {
                    throw bad("metadata key " + i + " is empty");
                }
                if (metadata.containsKey(key)) {
                    throw bad("metadata key '" + key + "' appears twice");
                }
                GgufValueType type = valueType(u32("metadata '" + key + "' type"), "metadata '" + key + "'");
                metadata.put(key, new GgufValue(type, value(type, "metadata '" + key + "'", 0)));
            }
            int alignment = DEFAULT_ALIGNMENT;
            GgufValue al = metadata.get(GgufWriter.ALIGNMENT_KEY);
            if (al != null) {
                if (al.type() != GgufValueType.UINT32) {
                    throw bad("metadata '" + GgufWriter.ALIGNMENT_KEY + "' is " + al.type() + ", must be UINT32");
                }
                long a = al.asLong();
                if (a == 0 || (a & (a - 1)) != 0) {
                    throw bad("metadata '" + GgufWriter.ALIGNMENT_KEY + "' = " + a + " is not a power of two");
                }
                if (a > MAX_ALIGNMENT) {
                    throw bad("metadata '" + GgufWriter.ALIGNMENT_KEY + "' = " + a + " exceeds " + MAX_ALIGNMENT
                            + ", the largest alignment quant4j reads (writing such a file again would pad every"
                            + " tensor with up to that many zeros)");
                }
                alignment = (int) a;
            }
            Map<String, TensorInfo> tensors = new LinkedHashMap<>();
            for (int i = 0; i < nTensors; i++) {
                TensorInfo t = tensorInfo(i, alignment);
                if (tensors.containsKey(t.name())) {
                    throw bad("tensor name '" + t.name() + "' appears twice");
                }
                tensors.put(t.name(), t);
            }
            long dataOffset = nTensors == 0 ? Math.min(size, pad(pos, alignment)) : pad(pos, alignment);
            if (dataOffset > size) {
                throw bad("the data section (at byte " + dataOffset + ") starts past the end of the file (" + size
                        + " bytes)");
            }
            long dataLen = size - dataOffset;
            List<TensorInfo> sorted = new ArrayList<>(tensors.values());
            for (TensorInfo t : sorted) {
                if (t.bytes() > dataLen || t.offset() > dataLen - t.bytes()) {
                    throw bad("tensor '" + t.name() + "': data [" + Long.toUnsignedString(t.offset()) + ", +"
                            + t.bytes() + ") out of range of the " + dataLen + "-byte data section");
                }
            }
            sorted.sort(Comparator.comparingLong(TensorInfo::offset));
            for (int i = 1; i < sorted.size(); i++) {
                TensorInfo prev = sorted.get(i - 1);
                TensorInfo cur = sorted.get(i);
                if (cur.offset() < prev.offset() + prev.bytes()) {
                    throw bad("tensors '" + prev.name() + "' [" + prev.offset() + ", " + (prev.offset() + prev.bytes())
                            + ") and '" + cur.name() + "' [" + cur.offset() + ", " + (cur.offset() + cur.bytes())
                            + ") overlap");
                }
            }
            MemorySegment body = size == 0 ? MemorySegment.NULL : file.asSlice(dataOffset, dataLen);
            return new Gguf(
                    source,
                    arena,
                    version,
                    alignment,
                    dataOffset,
                    body,
                    Collections.unmodifiableMap(metadata),
                    Collections.unmodifiableMap(tensors));
        }

        GgufValueType valueType(int id, String field) {
            GgufValueType t = GgufValueType.byId(Integer.toUnsignedLong(id));
            if (t == null) {
                throw bad(field + ": unknown value type " + Integer.toUnsignedString(id));
            }
            return t;
        }

        Object value(GgufValueType type, String field, int depth) {
            return switch (type) {
                case UINT8 -> {
                    need(1, field);
                    yield (long) (file.get(ValueLayout.JAVA_BYTE, pos++) & 0xFF);
                }
                case INT8 -> {
                    need(1, field);
                    yield (long) file.get(ValueLayout.JAVA_BYTE, pos++);
                }
                case UINT16 -> {
                    need(2, field);
                    long v = file.get(U16, pos) & 0xFFFF;
                    pos += 2;
                    yield v;
                }
                case INT16 -> {
                    need(2, field);
                    long v = file.get(U16, pos);
                    pos += 2;
                    yield v;
                }
                case UINT32 -> Integer.toUnsignedLong(u32(field));
                case INT32 -> (long) u32(field);
                case UINT64, INT64 -> u64(field);
                case FLOAT32 -> Float.intBitsToFloat(u32(field));
                case FLOAT64 -> Double.longBitsToDouble(u64(field));
                case BOOL -> {
                    need(1, field);
                    byte b = file.get(ValueLayout.JAVA_BYTE, pos);
                    if (b != 0 && b != 1) {
                        throw bad(field + ": bool byte " + (b & 0xFF) + " at byte " + pos + " is neither 0 nor 1");
                    }
                    pos++;
                    yield b == 1;
                }
                case STRING -> string(field);
                case ARRAY -> {
                    if (depth >= MAX_ARRAY_DEPTH) {
                        throw bad(field + ": arrays nested deeper than " + MAX_ARRAY_DEPTH);
                    }
                    GgufValueType et = valueType(u32(field + " element type"), field);
                    long n = u64(field + " element count");
                    if (n < 0 || n > remaining() / et.minBytes() || n > Integer.MAX_VALUE - 8) {
                        throw bad(field + ": array of " + Long.toUnsignedString(n) + " " + et
                                + " runs past the end of the file (" + remaining() + " bytes left at byte " + pos
                                + ")");
                    }
                    List<Object> values = new ArrayList<>((int) n);
                    for (long i = 0; i < n; i++) {
                        values.add(value(et, field + "[" + i + "]", depth + 1));
                    }
                    yield new GgufValue.GgufArray(et, values);
                }
            };
        }

        TensorInfo tensorInfo(int i, int alignment) {
            String name = string("tensor " + i + " name");
            String field = "tensor '" + name + "'";
            int nDims = u32(field + " n_dims");
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw bad(field + ": n_dims " + Integer.toUnsignedString(nDims) + " is not in [1, " + MAX_DIMS + "]");
            }
            long[] ne = new long[nDims];
            long count = 1;
            for (int j = 0; j < nDims; j++) {
                ne[j] = u64(field + " ne[" + j + "]");
                if (ne[j] < 0) {
                    throw bad(field + ": ne[" + j + "] = " + Long.toUnsignedString(ne[j]) + " is negative as int64");
                }
            }
            try {
                for (long d : ne) {
                    count = Math.multiplyExact(count, d);
                }
            } catch (ArithmeticException e) {
                throw bad(field + ": shape ne" + Arrays.toString(ne) + " overflows");
            }
            int typeId = u32(field + " type");
            GgmlType type = GgmlType.byId(Integer.toUnsignedLong(typeId));
            if (type == null) {
                throw bad(field + ": unknown ggml type " + Integer.toUnsignedString(typeId));
            }
            if (ne[0] % type.blockSize() != 0) {
                throw bad(field + ": row length ne[0] = " + ne[0] + " is not a multiple of the " + type + " block size "
                        + type.blockSize());
            }
            long bytes;
            try {
                bytes = Math.multiplyExact(count / type.blockSize(), (long) type.typeSize());
            } catch (ArithmeticException e) {
                throw bad(field + ": shape ne" + Arrays.toString(ne) + " of " + type + " overflows");
            }
            long offset = u64(field + " offset");
            if (offset < 0) {
                throw bad(field + ": offset " + Long.toUnsignedString(offset) + " is out of range");
            }
            if (offset % alignment != 0) {
                throw bad(field + ": offset " + Long.toUnsignedString(offset) + " is not a multiple of the alignment "
                        + alignment);
            }
            return new TensorInfo(name, ne, type, offset, bytes);
        }
    }

    static long pad(long x, int alignment) {
        return (x + alignment - 1) / alignment * alignment;
    }
}
