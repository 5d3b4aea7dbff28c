package dev.quant4j.cli;

import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.Gguf;
import dev.quant4j.io.GgufSplits;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.pipeline.GgufQuantizer.Item;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The tensors {@code quant quantize --format gguf} writes, in the output's order, each read when it is written: from a
 * GGUF file (mapped), a safetensors checkpoint of any size (a file, a folder of shards or its index; read a block of
 * rows at a time), or a {@code .npy} matrix or ONNX model (loaded). The open inputs are closed with this.
 */
final class GgufInputs implements AutoCloseable {

    final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    final List<Item> items = new ArrayList<>();
    final List<String> notices = new ArrayList<>();
    /** The files of a GGUF input (every split of a split model); empty for other inputs. */
    final List<Path> files = new ArrayList<>();

    private final GgmlType type;
    private final Pattern include;
    private final List<AutoCloseable> open = new ArrayList<>();

    GgufInputs(GgmlType type, Pattern include) {
        this.type = type;
        this.include = include;
    }

    /** Bytes of the input's tensors that are read or copied. */
    long bytesIn() {
        long n = 0;
        for (Item it : items) {
            n += it.reader() != null
                    ? it.inputBytes()
                    : new dev.quant4j.io.GgufStreamWriter.Spec(it.name(), it.ne(), it.keptType()).bytes();
        }
        return n;
    }

    /**
     * A GGUF file, or a model split into several ({@link Gguf#open}): every F32, F16 or BF16 tensor of two or more dimensions whose name ends in {@code weight} (or those
     * {@code --include} matches) is quantized, every other tensor and every metadata key kept in place.
     */
    void gguf(Path in) throws IOException {
        Gguf g = Gguf.open(in);
        open.add(g);
        if (g.splitFiles().isEmpty()) {
            files.add(in);
        } else {
            g.splitFiles().forEach(f -> files.add(Path.of(f)));
        }
        // the split keys describe the input's files, not the model: the output gets its own
        metadata.putAll(GgufSplits.withoutSplitKeys(g.metadata()));
        for (Gguf.TensorInfo t : g.tensors()) {
            boolean isFloat = t.type() == GgmlType.F32 || t.type() == GgmlType.F16 || t.type() == GgmlType.BF16;
            boolean matrix = t.ne().length >= 2 && isFloat;
            boolean pick = include != null
                    ? include.matcher(t.name()).find()
                    : matrix && t.name().endsWith("weight");
            if (pick && !matrix) {
                if (include == null || (t.type().quantizable() && !isFloat)) {
                    notices.add("kept '" + t.name() + "' as " + t.type() + ": already quantized");
                    pick = false;
                } else {
                    throw new IllegalArgumentException(in + ": tensor '" + t.name() + "' matched by --include is not a"
                            + " float tensor of two or more dimensions (" + t.type() + " ne" + Arrays.toString(t.ne())
                            + ")");
                }
            }
            MemorySegment data = g.segment(t.name());
            if (pick) {
                if (t.rowLength() > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException(
                            in + ": tensor '" + t.name() + "' has rows of " + t.rowLength() + " values, past 2^31");
                }
                int cols = (int) t.rowLength();
                GgufOutput.checkRow(t.name(), t.rows(), cols, type);
                items.add(Item.weight(
                        t.name(),
                        t.ne(),
                        t.bytes(),
                        (first, count, dst) -> g.readFloats(t.name(), first * cols, count * cols, dst, 0)));
            } else {
                items.add(Item.kept(
                        t.name(),
                        t.ne(),
                        t.type(),
                        (from, length, out, index) -> out.write(index, from, data.asSlice(from, length))));
            }
        }
    }

    /**
     * A safetensors checkpoint: the 2-D F32, F16 or BF16 tensors except embedding tables and the output head (or those
     * {@code --include} matches) are quantized, in the checkpoint's order (shards by name, tensors in file order),
     * then every other tensor follows in its own type; one GGUF file whatever the number of shards.
     */
    void safetensors(Path in) throws IOException {
        SafeTensorsCheckpoint ckpt = SafeTensorsCheckpoint.open(in);
        open.add(ckpt);
        List<Item> kept = new ArrayList<>();
        for (SafeTensorsCheckpoint.Shard shard : ckpt.shards()) {
            SafeTensors st = shard.file();
            String format = st.metadata().get(QuantizedSafeTensors.FORMAT_KEY);
            if (format != null) {
                throw new IllegalArgumentException(shard.path() + " is already quantized by quant4j (format " + format
                        + "); quantize the original weights, or 'quant dequantize' it first");
            }
            for (SafeTensors.Entry e : st.entries().values()) {
                boolean matrix = e.shape().length == 2 && e.dtype().isFloat();
                boolean pick;
                if (include != null) {
                    pick = include.matcher(e.name()).find();
                    if (pick && !matrix) {
                        throw new IllegalArgumentException(shard.path() + ": tensor '" + e.name() + "' matched by"
                                + " --include is not a 2-D float tensor (" + e.dtype() + " "
                                + Arrays.toString(e.shape()) + ")");
                    }
                } else {
                    pick = matrix && !WeightFiles.NOT_LINEAR.matcher(e.name()).find();
                    if (matrix && !pick) {
                        notices.add("kept '" + e.name() + "' unquantized: an embedding or output head (select it with"
                                + " --include)");
                    }
                }
                String name = e.name();
                if (pick) {
                    long rows = e.shape()[0];
                    if (e.shape()[1] > Integer.MAX_VALUE) {
                        throw new IllegalArgumentException("tensor '" + name + "' " + e + " has rows past 2^31 values");
                    }
                    int cols = (int) e.shape()[1];
                    GgufOutput.checkRow(name, rows, cols, type);
                    items.add(Item.weight(
                            name,
                            rows,
                            cols,
                            e.end() - e.begin(),
                            (first, count, dst) -> st.readFloats(name, first * cols, count * cols, dst, 0)));
                } else {
                    kept.add(Item.kept(
                            name,
                            GgufOutput.ne(name, e.shape()),
                            GgufOutput.ggmlType(name, e.dtype()),
                            (from, length, out, index) -> out.transfer(
                                    index, from, length, (ch, at) -> st.copyTo(name, from, length, ch, at))));
                }
            }
        }
        if (items.isEmpty()) {
            throw new IllegalArgumentException(in + ": no tensor to quantize"
                    + (include == null ? " (no 2-D float tensor)" : " (--include '" + include.pattern() + "')"));
        }
        items.addAll(kept);
    }

    /** A {@code .npy} matrix or the weights of an ONNX model, loaded as {@code quant quantize} loads them. */
    void loaded(Path in) throws IOException {
        WeightFiles.Loaded loaded = WeightFiles.load(in, include, (name, shape) -> {
            GgufOutput.checkRow(name, shape[0], shape[1], type);
            return null;
        });
        for (FloatMatrix w : loaded.tensors()) {
            int cols = w.cols();
            items.add(Item.weight(w.name(), w.rows(), cols, 4L * w.rows() * cols, (first, count, dst) -> {
                for (int r = 0; r < count; r++) {
                    System.arraycopy(w.array(), w.rowOffset((int) first + r), dst, r * cols, cols);
                }
            }));
        }
        for (PassThrough p : loaded.other()) {
            byte[] bytes = p.bytes();
            items.add(Item.kept(
                    p.name(),
                    GgufOutput.ne(p.name(), p.shape()),
                    GgufOutput.ggmlType(p.name(), p.dtype()),
                    (from, length, out, index) ->
                            out.write(index, from, ByteBuffer.wrap(bytes, (int) from, (int) length))));
        }
    }

    @Override
    public void close() {
        for (AutoCloseable c : open) {
            try {
                c.close();
            } catch (Exception e) {
                // closing a read-only input: nothing to recover
            }
        }
    }
}
