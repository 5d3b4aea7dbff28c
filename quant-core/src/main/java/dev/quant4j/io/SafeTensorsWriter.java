package dev.quant4j.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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

    /** The file's bytes (at most 2 GiB; {@link #write} streams a file of any size). */
    public byte[] toBytes() {
        byte[] header = SafeTensorsStreamWriter.header(specs(), metadata);
        long total = header.length;
        for (Pending t : tensors) {
            total += t.bytes().length;
        }
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException(
                    "the file would be " + total + " bytes, more than one array holds; write it to a path instead");
        }
        ByteBuffer out = ByteBuffer.allocate((int) total);
        out.put(header);
        for (Pending t : tensors) {
            out.put(t.bytes());
        }
        return out.array();
    }

    /** Writes the file atomically (temporary file, then move), streamed: no copy of the whole file in memory. */
    public void write(Path path) throws IOException {
        List<SafeTensorsStreamWriter.Spec> specs = specs();
        AtomicFiles.writeFile(path, tmp -> {
            try (SafeTensorsStreamWriter w = SafeTensorsStreamWriter.create(tmp, specs, metadata)) {
                for (Pending t : tensors) {
                    w.write(t.name(), 0, t.bytes());
                }
                w.finish();
            }
        });
    }

    private List<SafeTensorsStreamWriter.Spec> specs() {
        List<SafeTensorsStreamWriter.Spec> specs = new ArrayList<>();
        for (Pending t : tensors) {
            specs.add(new SafeTensorsStreamWriter.Spec(t.name(), t.dtype(), t.shape()));
        }
        return specs;
    }
}
