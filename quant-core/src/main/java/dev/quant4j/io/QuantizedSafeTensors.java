package dev.quant4j.io;

import dev.quant4j.internal.Json;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.DoubleQuant;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.scheme.QuantScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * quant4j's quantized {@code .safetensors} layout (format version 1). For each quantized tensor {@code NAME}:
 *
 * <ul>
 *   <li>{@code NAME.q4j_codes}: U8 {@code [rows, rowBytes]}, the packed codes in the tensor's pack order;
 *   <li>{@code NAME.q4j_scales}: F32 {@code [rows, groupsPerRow]} ({@code [1, 1]} per tensor);
 *   <li>{@code NAME.q4j_zeros}: U8, same shape as the scales;
 *   <li>{@code NAME.q4j_g_idx}: I32 {@code [cols]}, only when columns map to groups other than {@code c / group_size}
 *       (GPTQ with act-order; AutoGPTQ's {@code g_idx}): the group of each column;
 *   <li>{@code NAME.q4j_awq_scales}: F32 {@code [cols]}, only for AWQ: the per-input-column scales {@code s}; the
 *       codes quantize {@code W * s} and the tensor stands for {@code x^ / s};
 *   <li>{@code __metadata__["quant4j.tensor.NAME"]}: a JSON string {@code {"scheme":"linear","bits":4,
 *       "symmetry":"asym","group_size":128,"rows":R,"cols":C,"pack_order":"lsb_first_row_aligned","method":"rtn"}},
 *       with {@code "source_layout":"in_out"} when the source stored the weight transposed ({@code [in, out] =
 *       [cols, rows]}, as ONNX stores MatMul weights): the quantized tensor is always {@code [out, in]}, and {@link
 *       Content#dequantizeAll()} transposes such a tensor back so that it comes out as the source stored it.
 * </ul>
 *
 * <p>{@code __metadata__["quant4j.format"]} is {@code "1"}. Tensors that were not quantized are stored unchanged under
 * their own names ("pass-through"), so a whole model file survives a round trip. Other tools' layouts (GPTQ v1
 * {@code qweight/qzeros}, bitsandbytes, GGUF) are separate formats.
 */
public final class QuantizedSafeTensors {

    public static final String FORMAT_KEY = "quant4j.format";
    public static final String FORMAT_VERSION = "1";
    public static final String TENSOR_KEY_PREFIX = "quant4j.tensor.";
    public static final String CODES = ".q4j_codes";
    public static final String SCALES = ".q4j_scales";
    public static final String ZEROS = ".q4j_zeros";
    public static final String G_IDX = ".q4j_g_idx";
    public static final String AWQ_SCALES = ".q4j_awq_scales";
    public static final String ABSMAX = ".q4j_absmax";
    public static final String ABSMAX_CODES = ".q4j_absmax_codes";
    public static final String ABSMAX2 = ".q4j_absmax2";
    public static final String ABSMAX_OFFSET = ".q4j_absmax_offset";
    /** Metadata field and value marking a tensor whose source stored it transposed, {@code [in, out]}. */
    public static final String SOURCE_LAYOUT = "source_layout";

    public static final String IN_OUT = "in_out";

    /** A tensor stored as it was (not quantized). */
    public record PassThrough(String name, DType dtype, long[] shape, byte[] bytes) {}

    /**
     * The content of a quantized file: the quantized weights by name, in file order; the method that made each; the
     * names of those whose source stored them transposed ({@code [in, out]}); and the pass-through tensors.
     */
    public record Content(
            Map<String, QuantizedWeight> weights,
            Map<String, String> methods,
            Set<String> transposed,
            List<PassThrough> other) {

        public Content {
            weights = Collections.unmodifiableMap(new LinkedHashMap<>(weights));
            methods = Collections.unmodifiableMap(new LinkedHashMap<>(methods));
            transposed = Set.copyOf(transposed);
            other = List.copyOf(other);
        }

        /**
         * Every quantized weight dequantized to float32 under its own name and in its source's layout ({@code [out,
         * in]}, or {@code [in, out]} for a weight in {@link #transposed()}), in file order.
         */
        public List<FloatMatrix> dequantizeAll() {
            List<FloatMatrix> out = new ArrayList<>();
            for (QuantizedWeight q : weights.values()) {
                FloatMatrix m = q.dequantize();
                out.add(transposed.contains(m.name()) ? m.transpose() : m);
            }
            return out;
        }
    }

    private QuantizedSafeTensors() {}

    /** As {@link #write(Path, List, String, List, Set)}, every source stored {@code [out, in]}. */
    public static void write(Path path, List<? extends QuantizedWeight> weights, String method, List<PassThrough> other)
            throws IOException {
        write(path, weights, method, other, Set.of());
    }

    /**
     * Writes the quantized weights (all made by {@code method}) and the pass-through tensors atomically to {@code
     * path}, in that order; the weights named in {@code transposed} are marked as stored {@code [in, out]} by their
     * source. A codebook tensor {@code NAME} is stored as {@code NAME.q4j_codes} (U8, the packed bytes in
     * bitsandbytes' order) and {@code NAME.q4j_absmax} (F32, one per block), with {@code {"scheme":"codebook",
     * "codebook":"nf4","block_size":64, ...}} in the metadata. Names must be unique across both lists.
     */
    public static void write(
            Path path,
            List<? extends QuantizedWeight> weights,
            String method,
            List<PassThrough> other,
            Set<String> transposed)
            throws IOException {
        writer(weights, method, other, transposed).write(path);
    }

    /**
     * As {@link #write(Path, List, String, List, Set)}, every source stored {@code [out, in]}, with {@code metadata}
     * added to the file's {@code __metadata__} (keys must not start with {@code quant4j.tensor.} or be {@value
     * #FORMAT_KEY}).
     */
    public static void write(
            Path path,
            List<? extends QuantizedWeight> weights,
            String method,
            List<PassThrough> other,
            Map<String, String> metadata)
            throws IOException {
        SafeTensorsWriter w = writer(weights, method, other, Set.of());
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            if (e.getKey().equals(FORMAT_KEY) || e.getKey().startsWith(TENSOR_KEY_PREFIX)) {
                throw new IllegalArgumentException("metadata key '" + e.getKey() + "' is quant4j's own");
            }
            w.metadata(e.getKey(), e.getValue());
        }
        w.write(path);
    }

    /** The bytes {@link #write(Path, List, String, List, Set)} writes. */
    public static byte[] toBytes(
            List<? extends QuantizedWeight> weights, String method, List<PassThrough> other, Set<String> transposed) {
        return writer(weights, method, other, transposed).toBytes();
    }

    private static SafeTensorsWriter writer(
            List<? extends QuantizedWeight> weights, String method, List<PassThrough> other, Set<String> transposed) {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(FORMAT_KEY, FORMAT_VERSION);
        Set<String> names = new HashSet<>();
        for (QuantizedWeight q : weights) {
            requireUnique(names, q.name());
        }
        for (PassThrough p : other) {
            requireUnique(names, p.name());
        }
        for (String t : transposed) {
            if (!names.contains(t)) {
                throw new IllegalArgumentException("'" + t + "' is marked transposed but is not a quantized tensor");
            }
        }
        for (QuantizedWeight weight : weights) {
            Layout layout = layout(weight, method, transposed.contains(weight.name()));
            w.metadata(layout.metadataKey(), layout.metadataJson());
            Map<String, byte[]> parts = parts(weight);
            for (SafeTensorsStreamWriter.Spec spec : layout.tensors()) {
                w.add(spec.name(), spec.dtype(), spec.shape(), parts.get(spec.name()));
            }
        }
        for (PassThrough p : other) {
            w.add(p.name(), p.dtype(), p.shape(), p.bytes());
        }
        return w;
    }

    /**
     * How one quantized weight is stored: the tensors that hold it, in file order, and its entry in {@code
     * __metadata__}. It follows from the weight's scheme and shape alone, so a streaming writer knows it before the
     * weight is quantized ({@link #layout(String, QuantScheme, int, int, String, boolean, boolean, boolean)}).
     */
    public record Layout(
            String name, List<SafeTensorsStreamWriter.Spec> tensors, String metadataKey, String metadataJson) {

        public Layout {
            tensors = List.copyOf(tensors);
        }

        /** Bytes of all its tensors. */
        public long bytes() {
            long n = 0;
            for (SafeTensorsStreamWriter.Spec t : tensors) {
                n += t.bytes();
            }
            return n;
        }
    }

    /** The layout of {@code q} as {@link #write} stores it. */
    public static Layout layout(QuantizedWeight q, String method, boolean transposed) {
        return switch (q) {
            case CodebookTensor c -> layout(c.name(), c.scheme(), c.rows(), c.cols(), method, transposed, false, false);
            case QuantizedTensor t ->
                layout(t.name(), t.scheme(), t.rows(), t.cols(), method, transposed, t.hasGIdx(), t.hasInputScales());
        };
    }

    /**
     * The layout of a weight {@code name} of shape {@code [rows, cols]} quantized with {@code scheme} by {@code
     * method}; {@code gIdx} when it will carry a column-to-group map (GPTQ act-order), {@code inputScales} when it will
     * carry AWQ's input scales (linear schemes only).
     */
    public static Layout layout(
            String name,
            QuantScheme scheme,
            int rows,
            int cols,
            String method,
            boolean transposed,
            boolean gIdx,
            boolean inputScales) {
        Map<String, Object> meta = new LinkedHashMap<>();
        List<SafeTensorsStreamWriter.Spec> tensors = new ArrayList<>();
        PackOrder order;
        switch (scheme) {
            case CodebookScheme s -> {
                meta.put("scheme", s.kind());
                meta.put("codebook", s.codebook().name().toLowerCase(Locale.ROOT));
                meta.put("block_size", (long) s.blockSize());
                meta.put("double_quant", s.doubleQuant());
                order = PackOrder.HIGH_NIBBLE_FIRST_FLAT;
                long n = (long) rows * cols;
                long blocks = s.blocks(n);
                tensors.add(spec(name + CODES, DType.U8, (n + 1) / 2));
                if (s.doubleQuant()) {
                    tensors.add(spec(name + ABSMAX_CODES, DType.U8, blocks));
                    tensors.add(spec(name + ABSMAX2, DType.F32, DoubleQuant.groups(blocks)));
                    tensors.add(spec(name + ABSMAX_OFFSET, DType.F32, 1));
                } else {
                    tensors.add(spec(name + ABSMAX, DType.F32, blocks));
                }
            }
            case LinearScheme s -> {
                meta.put("scheme", s.kind());
                meta.put("bits", (long) s.bits());
                meta.put("symmetry", s.symmetry().id());
                meta.put("group_size", (long) s.groupSize());
                order = PackOrder.LSB_FIRST_ROW_ALIGNED;
                long rowBytes = ((long) cols * s.bits() + 7) / 8;
                long[] groupShape = s.groupSize() == LinearScheme.PER_TENSOR
                        ? new long[] {1, 1}
                        : new long[] {rows, s.groupsPerRow(cols)};
                tensors.add(new SafeTensorsStreamWriter.Spec(name + CODES, DType.U8, new long[] {rows, rowBytes}));
                tensors.add(new SafeTensorsStreamWriter.Spec(name + SCALES, DType.F32, groupShape));
                tensors.add(new SafeTensorsStreamWriter.Spec(name + ZEROS, DType.U8, groupShape));
                if (gIdx) {
                    tensors.add(spec(name + G_IDX, DType.I32, cols));
                }
                if (inputScales) {
                    tensors.add(spec(name + AWQ_SCALES, DType.F32, cols));
                }
            }
        }
        meta.put("rows", (long) rows);
        meta.put("cols", (long) cols);
        meta.put("pack_order", order.id());
        meta.put("method", method);
        if (transposed) {
            meta.put(SOURCE_LAYOUT, IN_OUT);
        }
        return new Layout(name, tensors, TENSOR_KEY_PREFIX + name, Json.write(meta));
    }

    private static SafeTensorsStreamWriter.Spec spec(String name, DType dtype, long length) {
        return new SafeTensorsStreamWriter.Spec(name, dtype, new long[] {length});
    }

    /** The bytes of each tensor of {@code q}'s {@link #layout}, by tensor name. */
    public static Map<String, byte[]> parts(QuantizedWeight q) {
        Map<String, byte[]> parts = new LinkedHashMap<>();
        String name = q.name();
        switch (q) {
            case CodebookTensor c -> {
                parts.put(name + CODES, bytes(c.packedCodes()));
                if (c.doubleQuant().isPresent()) {
                    DoubleQuant dq = c.doubleQuant().get();
                    parts.put(name + ABSMAX_CODES, dq.codes());
                    parts.put(name + ABSMAX2, floatBytes(dq.absmax2()));
                    parts.put(name + ABSMAX_OFFSET, floatBytes(new float[] {dq.offset()}));
                } else {
                    parts.put(name + ABSMAX, floatBytes(c.absmax()));
                }
            }
            case QuantizedTensor t -> {
                parts.put(name + CODES, bytes(t.packedCodes()));
                parts.put(name + SCALES, floatBytes(t.scales()));
                parts.put(name + ZEROS, t.zeros());
                if (t.hasGIdx()) {
                    int[] gIdx = t.gIdx();
                    ByteBuffer bytes = ByteBuffer.allocate(4 * gIdx.length).order(ByteOrder.LITTLE_ENDIAN);
                    bytes.asIntBuffer().put(gIdx);
                    parts.put(name + G_IDX, bytes.array());
                }
                if (t.hasInputScales()) {
                    parts.put(name + AWQ_SCALES, floatBytes(t.inputScales()));
                }
            }
        }
        return parts;
    }

    private static byte[] bytes(ByteBuffer view) {
        byte[] out = new byte[view.remaining()];
        view.get(out);
        return out;
    }

    private static byte[] floatBytes(float[] values) {
        ByteBuffer bb = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        bb.asFloatBuffer().put(values);
        return bb.array();
    }

    /**
     * Reads a file written by {@link #write}; every quantized tensor is validated (shapes, scales, zero-points).
     *
     * @throws MalformedTensorFileException if the file is not a quant4j quantized file or is inconsistent
     */
    public static Content read(Path path) throws IOException {
        try (SafeTensors st = SafeTensors.open(path)) {
            return read(st, path.toString());
        }
    }

    /** As {@link #read(Path)}, from the bytes of a file; {@code source} names them in messages. */
    public static Content parse(byte[] bytes, String source) {
        return read(SafeTensors.parse(bytes, source), source);
    }

    private static Content read(SafeTensors st, String source) {
        Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
        Map<String, String> methods = new LinkedHashMap<>();
        Set<String> transposed = new LinkedHashSet<>();
        Map<String, Map<?, ?>> index = index(st, source);
        for (Map.Entry<String, Map<?, ?>> m : index.entrySet()) {
            String name = m.getKey();
            methods.put(name, String.valueOf(m.getValue().get("method")));
            if (IN_OUT.equals(m.getValue().get(SOURCE_LAYOUT))) {
                transposed.add(name);
            }
            weights.put(name, readWeight(st, name, m.getValue(), source));
        }
        List<PassThrough> other = new ArrayList<>();
        for (String name : passThrough(st, index)) {
            SafeTensors.Entry e = st.entry(name);
            other.add(new PassThrough(e.name(), e.dtype(), e.shape(), st.readBytes(e.name())));
        }
        return new Content(weights, methods, transposed, other);
    }

    /**
     * The quantized weights of an open quant4j file, by name in file order, each with its metadata entry (a JSON
     * object), without reading any tensor: for readers that take one weight at a time ({@link #readWeight}).
     *
     * @throws MalformedTensorFileException if the file is not a quant4j quantized file or an entry is malformed
     */
    public static Map<String, Map<?, ?>> index(SafeTensors st, String source) {
        if (!FORMAT_VERSION.equals(st.metadata().get(FORMAT_KEY))) {
            throw new MalformedTensorFileException(source + ": not a quant4j quantized file (metadata " + FORMAT_KEY
                    + " is " + st.metadata().get(FORMAT_KEY) + ", expected " + FORMAT_VERSION + ")");
        }
        Map<String, Map<?, ?>> out = new LinkedHashMap<>();
        for (Map.Entry<String, String> m : st.metadata().entrySet()) {
            if (!m.getKey().startsWith(TENSOR_KEY_PREFIX)) {
                continue;
            }
            String name = m.getKey().substring(TENSOR_KEY_PREFIX.length());
            try {
                if (!(Json.parse(m.getValue()) instanceof Map<?, ?> meta)) {
                    throw new IllegalArgumentException("metadata is not a JSON object");
                }
                Object layout = meta.get(SOURCE_LAYOUT);
                if (layout != null && !IN_OUT.equals(layout) && !"out_in".equals(layout)) {
                    throw new IllegalArgumentException(
                            "unknown " + SOURCE_LAYOUT + " '" + layout + "' (expected out_in or in_out)");
                }
                out.put(name, meta);
            } catch (IllegalArgumentException e) {
                throw new MalformedTensorFileException(
                        source + ": quantized tensor '" + name + "': " + e.getMessage(), e);
            }
        }
        return out;
    }

    /**
     * Reads the quantized weight {@code name} of an open quant4j file, {@code meta} being its entry of {@link #index};
     * validated as {@link #read(Path)} validates it.
     */
    public static QuantizedWeight readWeight(SafeTensors st, String name, Map<?, ?> meta, String source) {
        try {
            return "codebook".equals(meta.get("scheme"))
                    ? readCodebookTensor(st, name, meta)
                    : readTensor(st, name, meta);
        } catch (MalformedTensorFileException e) {
            throw e;
        } catch (IllegalArgumentException | ClassCastException | NullPointerException e) {
            throw new MalformedTensorFileException(source + ": quantized tensor '" + name + "': " + e.getMessage(), e);
        }
    }

    /** The names of the tensors of an open quant4j file that belong to none of its quantized weights ({@link #index}). */
    public static List<String> passThrough(SafeTensors st, Map<String, Map<?, ?>> index) {
        Set<String> owned = new HashSet<>();
        for (Map.Entry<String, Map<?, ?>> w : index.entrySet()) {
            List<String> suffixes = "codebook".equals(w.getValue().get("scheme"))
                    ? List.of(CODES, ABSMAX, ABSMAX_CODES, ABSMAX2, ABSMAX_OFFSET)
                    : List.of(CODES, SCALES, ZEROS, G_IDX, AWQ_SCALES);
            for (String suffix : suffixes) {
                owned.add(w.getKey() + suffix);
            }
        }
        List<String> out = new ArrayList<>();
        for (String name : st.names()) {
            if (!owned.contains(name)) {
                out.add(name);
            }
        }
        return out;
    }

    private static void requireUnique(Set<String> names, String name) {
        if (!names.add(name)) {
            throw new IllegalArgumentException("two tensors named '" + name + "'");
        }
    }

    private static CodebookTensor readCodebookTensor(SafeTensors st, String name, Map<?, ?> meta) {
        Codebook book = switch (String.valueOf(meta.get("codebook"))) {
            case "nf4" -> Codebook.NF4;
            case "fp4" -> Codebook.FP4;
            default -> throw new IllegalArgumentException("unknown codebook " + meta.get("codebook"));
        };
        boolean doubleQuant = Boolean.TRUE.equals(meta.get("double_quant"));
        CodebookScheme scheme = new CodebookScheme(book, intOf(meta, "block_size"), doubleQuant);
        if (PackOrder.fromId((String) meta.get("pack_order")) != PackOrder.HIGH_NIBBLE_FIRST_FLAT) {
            throw new IllegalArgumentException("unsupported pack order " + meta.get("pack_order"));
        }
        byte[] codes = requireDType(st, name + CODES, DType.U8);
        if (doubleQuant) {
            float[] offset = floats(requireDType(st, name + ABSMAX_OFFSET, DType.F32));
            if (offset.length != 1) {
                throw new IllegalArgumentException("'" + name + ABSMAX_OFFSET + "' must hold one value");
            }
            DoubleQuant dq = new DoubleQuant(
                    requireDType(st, name + ABSMAX_CODES, DType.U8),
                    floats(requireDType(st, name + ABSMAX2, DType.F32)),
                    offset[0]);
            return new CodebookTensor(name, scheme, intOf(meta, "rows"), intOf(meta, "cols"), codes, dq);
        }
        float[] absmax = floats(requireDType(st, name + ABSMAX, DType.F32));
        return new CodebookTensor(name, scheme, intOf(meta, "rows"), intOf(meta, "cols"), codes, absmax);
    }

    private static float[] floats(byte[] bytes) {
        float[] out = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    private static QuantizedTensor readTensor(SafeTensors st, String name, Map<?, ?> meta) {
        if (!"linear".equals(meta.get("scheme"))) {
            throw new IllegalArgumentException("unsupported scheme " + meta.get("scheme"));
        }
        LinearScheme scheme = new LinearScheme(
                intOf(meta, "bits"), Symmetry.fromId((String) meta.get("symmetry")), intOf(meta, "group_size"));
        int rows = intOf(meta, "rows");
        int cols = intOf(meta, "cols");
        PackOrder order = PackOrder.fromId((String) meta.get("pack_order"));
        byte[] codes = requireDType(st, name + CODES, DType.U8);
        float[] scales = floats(requireDType(st, name + SCALES, DType.F32));
        byte[] zeros = requireDType(st, name + ZEROS, DType.U8);
        int[] gIdx = null;
        if (st.entries().containsKey(name + G_IDX)) {
            byte[] bytes = requireDType(st, name + G_IDX, DType.I32);
            gIdx = new int[bytes.length / 4];
            ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(gIdx);
        }
        QuantizedTensor t = new QuantizedTensor(name, scheme, rows, cols, order, codes, scales, zeros, gIdx);
        if (st.entries().containsKey(name + AWQ_SCALES)) {
            t = t.withInputScales(floats(requireDType(st, name + AWQ_SCALES, DType.F32)));
        }
        return t;
    }

    private static byte[] requireDType(SafeTensors st, String name, DType dtype) {
        if (!st.entries().containsKey(name)) {
            throw new IllegalArgumentException("missing tensor '" + name + "'");
        }
        SafeTensors.Entry e = st.entry(name);
        if (e.dtype() != dtype) {
            throw new IllegalArgumentException("'" + name + "' is " + e.dtype() + ", expected " + dtype);
        }
        return st.readBytes(name);
    }

    private static int intOf(Map<?, ?> meta, String key) {
        if (!(meta.get(key) instanceof Long v) || v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("metadata field '" + key + "' is missing or not an integer");
        }
        return v.intValue();
    }
}
