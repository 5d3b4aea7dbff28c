package dev.quant4j.pipeline;

import dev.quant4j.io.AtomicFiles;
import dev.quant4j.io.DType;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.io.SafeTensorsStreamWriter;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.HalfFloats;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;

/**
 * Dequantizes a checkpoint in quant4j's format (one file, or a folder of shards with an index) back to plain
 * safetensors of the same shape, as a stream: each output header is planned from the weights' shapes, then each weight
 * is read alone (its codes and scales, an eighth of its float32 size at 4 bits), dequantized a block of rows at a time
 * into {@code F32}, {@code F16} or {@code BF16}, and written at its place; other tensors are copied from the mapped
 * input. Weights are spread over the pool's threads; the output does not depend on their number. A weight whose source
 * stored it transposed ({@code [in, out]}) is dequantized whole and transposed back.
 */
public final class CheckpointDequantizer {

    private static final int BLOCK_ELEMENTS = 1 << 18;

    private final DType dtype;
    private final ForkJoinPool pool;

    public CheckpointDequantizer(DType dtype, ForkJoinPool pool) {
        if (!dtype.isFloat()) {
            throw new IllegalArgumentException("cannot dequantize to " + dtype + " (expected F32, F16 or BF16)");
        }
        this.dtype = dtype;
        this.pool = Objects.requireNonNull(pool, "pool");
    }

    /** What was done: weights dequantized, tensors copied, files written. */
    public record Summary(int weights, int copied, List<String> files) {}

    /** Dequantizes {@code in} into {@code out}: a file for a one-file checkpoint, a folder otherwise. */
    public Summary dequantize(
            SafeTensorsCheckpoint in, Path out, boolean replace, CheckpointQuantizer.Progress progress)
            throws IOException {
        int[] counts = new int[2];
        List<String> files = new ArrayList<>();
        for (SafeTensorsCheckpoint.Shard s : in.shards()) {
            QuantizedSafeTensors.index(s.file(), s.path().toString()); // refuses a file that is not quant4j's
        }
        if (in.folder() == null) {
            SafeTensorsCheckpoint.Shard s = in.shards().get(0);
            AtomicFiles.writeFile(out, tmp -> write(s, tmp, counts, progress));
            files.add(out.getFileName().toString());
        } else {
            AtomicFiles.writeFolder(out, replace, tmp -> {
                Map<String, String> weightMap = new LinkedHashMap<>();
                long total = 0;
                for (SafeTensorsCheckpoint.Shard s : in.shards()) {
                    for (SafeTensorsStreamWriter.Spec spec : write(s, tmp.resolve(s.fileName()), counts, progress)) {
                        weightMap.put(spec.name(), s.fileName());
                        total += spec.bytes();
                    }
                    files.add(s.fileName());
                }
                if (in.indexed()) {
                    SafeTensorsCheckpoint.writeIndex(tmp, total, weightMap);
                    files.add(SafeTensorsCheckpoint.INDEX);
                }
                CheckpointQuantizer.copyOtherFiles(in.folder(), tmp, in, files);
            });
        }
        return new Summary(counts[0], counts[1], files);
    }

    private List<SafeTensorsStreamWriter.Spec> write(
            SafeTensorsCheckpoint.Shard shard, Path file, int[] counts, CheckpointQuantizer.Progress progress)
            throws IOException {
        SafeTensors st = shard.file();
        String source = shard.path().toString();
        Map<String, Map<?, ?>> index = QuantizedSafeTensors.index(st, source);
        List<String> copies = QuantizedSafeTensors.passThrough(st, index);
        List<SafeTensorsStreamWriter.Spec> specs = new ArrayList<>();
        List<String> names = new ArrayList<>(index.keySet());
        for (Map.Entry<String, Map<?, ?>> w : index.entrySet()) {
            long rows = number(w.getValue(), "rows", w.getKey(), source);
            long cols = number(w.getValue(), "cols", w.getKey(), source);
            boolean transposed =
                    QuantizedSafeTensors.IN_OUT.equals(w.getValue().get(QuantizedSafeTensors.SOURCE_LAYOUT));
            specs.add(new SafeTensorsStreamWriter.Spec(
                    w.getKey(), dtype, transposed ? new long[] {cols, rows} : new long[] {rows, cols}));
        }
        for (String name : copies) {
            SafeTensors.Entry e = st.entry(name);
            specs.add(new SafeTensorsStreamWriter.Spec(name, e.dtype(), e.shape()));
        }
        try (SafeTensorsStreamWriter out = SafeTensorsStreamWriter.create(file, specs, Map.of())) {
            OrderedTasks.run(pool, names.size() + copies.size(), () -> null, (t, unused) -> {
                if (t < names.size()) {
                    String name = names.get(t);
                    QuantizedWeight q = QuantizedSafeTensors.readWeight(st, name, index.get(name), source);
                    writeWeight(
                            q,
                            QuantizedSafeTensors.IN_OUT.equals(index.get(name).get(QuantizedSafeTensors.SOURCE_LAYOUT)),
                            out);
                    // the input's bytes of this weight (its stored parts), as the progress total counts them
                    progress.done(
                            name, QuantizedSafeTensors.layout(q, "", false).bytes());
                } else {
                    String name = copies.get(t - names.size());
                    SafeTensors.Entry e = st.entry(name);
                    out.copy(name, st, name);
                    progress.done(name, e.end() - e.begin());
                }
                return null;
            });
            out.finish();
        }
        counts[0] += names.size();
        counts[1] += copies.size();
        return specs;
    }

    private void writeWeight(QuantizedWeight q, boolean transposed, SafeTensorsStreamWriter out) throws IOException {
        int rows = q.rows();
        int cols = q.cols();
        if (transposed) {
            float[] t = q.dequantize().transpose().toArray();
            out.write(q.name(), 0, encode(t, t.length, ByteBuffer.allocate(dtype.bytes() * t.length)));
            return;
        }
        int perBlock = Math.max(1, BLOCK_ELEMENTS / cols);
        float[] buf = new float[Math.toIntExact((long) Math.min(perBlock, rows) * cols)];
        // direct: the channel writes it as it is (a heap buffer is copied into a direct one on every write)
        ByteBuffer encoded = ByteBuffer.allocateDirect(dtype.bytes() * buf.length);
        byte[] scratch = new byte[cols];
        for (int r = 0; r < rows; r += perBlock) {
            int n = Math.min(perBlock, rows - r);
            switch (q) {
                case QuantizedTensor t -> {
                    for (int i = 0; i < n; i++) {
                        t.dequantizeRow(r + i, buf, i * cols, scratch);
                    }
                }
                case CodebookTensor c -> c.dequantizeRange((long) r * cols, n * cols, buf, 0);
            }
            out.write(q.name(), (long) r * cols * dtype.bytes(), encode(buf, n * cols, encoded));
        }
    }

    /** {@code v[0, n)} in the output dtype, little-endian, at the start of {@code into}; returns it, limited to them. */
    private ByteBuffer encode(float[] v, int n, ByteBuffer into) {
        ByteBuffer b = into.clear().limit(dtype.bytes() * n).order(ByteOrder.LITTLE_ENDIAN);
        if (dtype == DType.F32) {
            b.asFloatBuffer().put(v, 0, n);
            return b;
        }
        if (dtype == DType.BF16) {
            // a vector of values at a time, straight into the buffer (kernel.ConversionKernels)
            Kernels.get().floatToBf16(v, 0, n, MemorySegment.ofBuffer(b), 0);
            return b;
        }
        // F16 into an array first, then one bulk copy (a put per value costs a bounds check and an order swap each)
        short[] h = new short[n];
        for (int i = 0; i < n; i++) {
            h[i] = HalfFloats.floatToFp16(v[i]);
        }
        b.asShortBuffer().put(h);
        return b;
    }

    private static long number(Map<?, ?> meta, String key, String name, String source) {
        if (!(meta.get(key) instanceof Long v) || v <= 0 || v > Integer.MAX_VALUE) {
            throw new dev.quant4j.io.MalformedTensorFileException(source + ": quantized tensor '" + name
                    + "': metadata field '" + key + "' is missing or not a" + " positive integer");
        }
        return v;
    }
}
