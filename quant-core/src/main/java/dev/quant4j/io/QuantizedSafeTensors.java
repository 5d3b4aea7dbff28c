package dev.quant4j.io;

import dev.quant4j.quant.LinearScheme;
import dev.quant4j.quant.PackOrder;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.Symmetry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * quant4j's quantized {@code .safetensors} layout (format version 1). For each quantized tensor {@code NAME}:
 *
 * <ul>
 *   <li>{@code NAME.q4j_codes}: U8 {@code [rows, rowBytes]}, the packed codes in the tensor's pack order;
 *   <li>{@code NAME.q4j_scales}: F32 {@code [rows, groupsPerRow]} ({@code [1, 1]} per tensor);
 *   <li>{@code NAME.q4j_zeros}: U8, same shape as the scales;
 *   <li>{@code __metadata__["quant4j.tensor.NAME"]}: a JSON string {@code {"scheme":"linear","bits":4,
 *       "symmetry":"asym","group_size":128,"rows":R,"cols":C,"pack_order":"lsb_first_row_aligned","method":"rtn"}}.
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

    /** A tensor stored as it was (not quantized). */
    public record PassThrough(String name, DType dtype, long[] shape, byte[] bytes) {}

    /** The content of a quantized file: quantized tensors with the method that made each, and pass-through tensors. */
    public record Content(
            Map<String, QuantizedTensor> quantized, Map<String, String> methods, List<PassThrough> other) {}

    private QuantizedSafeTensors() {}

    /** Writes {@code quantized} (with the method name of each) and {@code other} atomically to {@code path}. */
    public static void write(Path path, List<QuantizedTensor> quantized, String method, List<PassThrough> other)
            throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(FORMAT_KEY, FORMAT_VERSION);
        for (QuantizedTensor q : quantized) {
            LinearScheme s = q.scheme();
            Map<String, Object> meta = new LinkedHashMap<>();
            meta.put("scheme", s.kind());
            meta.put("bits", (long) s.bits());
            meta.put("symmetry", s.symmetry().id());
            meta.put("group_size", (long) s.groupSize());
            meta.put("rows", (long) q.rows());
            meta.put("cols", (long) q.cols());
            meta.put("pack_order", q.packOrder().id());
            meta.put("method", method);
            w.metadata(TENSOR_KEY_PREFIX + q.name(), Json.write(meta));
            byte[] packed = new byte[q.packedCodes().remaining()];
            q.packedCodes().get(packed);
            float[] scales = q.scales();
            long[] groupShape = s.groupSize() == LinearScheme.PER_TENSOR
                    ? new long[] {1, 1}
                    : new long[] {q.rows(), s.groupsPerRow(q.cols())};
            w.add(q.name() + CODES, DType.U8, new long[] {q.rows(), q.rowBytes()}, packed);
            w.addF32(q.name() + SCALES, groupShape, scales);
            w.add(q.name() + ZEROS, DType.U8, groupShape, q.zeros());
        }
        for (PassThrough p : other) {
            w.add(p.name(), p.dtype(), p.shape(), p.bytes());
        }
        w.write(path);
    }

    /**
     * Reads a file written by {@link #write}; every quantized tensor is validated (shapes, scales, zero-points).
     *
     * @throws MalformedTensorFileException if the file is not a quant4j quantized file or is inconsistent
     */
    public static Content read(Path path) throws IOException {
        try (SafeTensors st = SafeTensors.open(path)) {
            String source = path.toString();
            if (!FORMAT_VERSION.equals(st.metadata().get(FORMAT_KEY))) {
                throw new MalformedTensorFileException(source + ": not a quant4j quantized file (metadata " + FORMAT_KEY
                        + " is " + st.metadata().get(FORMAT_KEY) + ", expected " + FORMAT_VERSION + ")");
            }
            Map<String, QuantizedTensor> quantized = new LinkedHashMap<>();
            Map<String, String> methods = new LinkedHashMap<>();
            List<String> owned = new ArrayList<>();
            for (Map.Entry<String, String> m : st.metadata().entrySet()) {
                if (!m.getKey().startsWith(TENSOR_KEY_PREFIX)) {
                    continue;
                }
                String name = m.getKey().substring(TENSOR_KEY_PREFIX.length());
                try {
                    quantized.put(name, readTensor(st, name, m.getValue(), methods));
                } catch (MalformedTensorFileException e) {
                    throw e;
                } catch (IllegalArgumentException | ClassCastException | NullPointerException e) {
                    throw new MalformedTensorFileException(
                            source + ": quantized tensor '" + name + "': " + e.getMessage(), e);
                }
                owned.add(name + CODES);
                owned.add(name + SCALES);
                owned.add(name + ZEROS);
            }
            List<PassThrough> other = new ArrayList<>();
            for (SafeTensors.Entry e : st.entries().values()) {
                if (!owned.contains(e.name())) {
                    other.add(new PassThrough(e.name(), e.dtype(), e.shape(), st.readBytes(e.name())));
                }
            }
            return new Content(quantized, methods, other);
        }
    }

    private static QuantizedTensor readTensor(SafeTensors st, String name, String json, Map<String, String> methods) {
        if (!(Json.parse(json) instanceof Map<?, ?> meta)) {
            throw new IllegalArgumentException("metadata is not a JSON object");
        }
        if (!"linear".equals(meta.get("scheme"))) {
            throw new IllegalArgumentException("unsupported scheme " + meta.get("scheme"));
        }
        LinearScheme scheme = new LinearScheme(
                intOf(meta, "bits"), Symmetry.fromId((String) meta.get("symmetry")), intOf(meta, "group_size"));
        int rows = intOf(meta, "rows");
        int cols = intOf(meta, "cols");
        PackOrder order = PackOrder.fromId((String) meta.get("pack_order"));
        methods.put(name, String.valueOf(meta.get("method")));
        byte[] codes = requireDType(st, name + CODES, DType.U8);
        byte[] scaleBytes = requireDType(st, name + SCALES, DType.F32);
        byte[] zeros = requireDType(st, name + ZEROS, DType.U8);
        float[] scales = new float[scaleBytes.length / 4];
        ByteBuffer.wrap(scaleBytes)
                .order(ByteOrder.LITTLE_ENDIAN)
                .asFloatBuffer()
                .get(scales);
        return new QuantizedTensor(name, scheme, rows, cols, order, codes, scales, zeros);
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
