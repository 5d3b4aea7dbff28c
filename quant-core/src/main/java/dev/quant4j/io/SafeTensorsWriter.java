package dev.quant4j.io;

import dev.quant4j.internal.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a {@code .safetensors} file in memory and writes it atomically. Tensors are laid out in the order added;
 * the header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
 */
public final class SafeTensorsWriter {

    private record Pending(String name, DType dtype, long[] shape, byte[] bytes) {}

    private final List<Pending> tensors = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** An empty file: add tensors and metadata, then {@link #write} or {@link #toBytes}. */
    public SafeTensorsWriter() {}

    /** Adds a tensor given as raw little-endian bytes. */
    public SafeTensorsWriter add(String name, DType dtype, long[] shape, byte[] bytes) {
        long count = 1;
        for (long d : shape) {
            count = Math.multiplyExact(count, d);
        }
        if (count * dtype.bytes() != bytes.length) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + java.util.Arrays.toString(shape)
                    + " of " + dtype + " needs " + count * dtype.bytes() + " bytes, got " + bytes.length);
        }
        if (name.equals("__metadata__")
                || tensors.stream().anyMatch(t -> t.name().equals(name))) {
            throw new IllegalArgumentException("duplicate or reserved tensor name '" + name + "'");
        }
        tensors.add(new Pending(name, dtype, shape.clone(), bytes));
        return this;
    }

    /** Adds a float32 tensor. */
    public SafeTensorsWriter addF32(String name, long[] shape, float[] values) {
        ByteBuffer bb = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        bb.asFloatBuffer().put(values);
        return add(name, DType.F32, shape, bb.array());
    }

    /** Adds a string to {@code __metadata__}. */
    public SafeTensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** The file's bytes. */
    public byte[] toBytes() {
        Map<String, Object> header = new LinkedHashMap<>();
        if (!metadata.isEmpty()) {
            header.put("__metadata__", new LinkedHashMap<>(metadata));
        }
        long offset = 0;
        for (Pending t : tensors) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("dtype", t.dtype().name());
            List<Object> shape = new ArrayList<>();
            for (long d : t.shape()) {
                shape.add(d);
            }
            e.put("shape", shape);
            e.put("data_offsets", List.of(offset, offset + t.bytes().length));
            header.put(t.name(), e);
            offset += t.bytes().length;
        }
        byte[] json = Json.write(header).getBytes(StandardCharsets.UTF_8);
        int pad = (8 - json.length % 8) % 8;
        long total = 8L + json.length + pad + offset;
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(total)).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(json.length + pad).put(json);
        for (int i = 0; i < pad; i++) {
            out.put((byte) ' ');
        }
        for (Pending t : tensors) {
            out.put(t.bytes());
        }
        return out.array();
    }

    /** Writes the file atomically (temporary file, then move). */
    public void write(Path path) throws IOException {
        byte[] bytes = toBytes();
        AtomicFiles.write(path, out -> out.write(bytes));
    }
}
