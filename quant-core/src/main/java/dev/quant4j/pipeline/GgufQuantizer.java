package dev.quant4j.pipeline;

import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.AtomicFiles;
import dev.quant4j.io.GgufSplits;
import dev.quant4j.io.GgufStreamWriter;
import dev.quant4j.io.GgufValue;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.function.Function;

/**
 * Writes a GGUF file whose weights are quantized to one ggml type, as a stream, from inputs of any size: the file's
 * header (metadata, tensor infos, aligned 64-bit offsets) is planned from the tensors' extents and the type before any
 * data ({@link GgufStreamWriter}), then each weight is read a block of whole rows at a time (about a quarter of a
 * million values), quantized row by row with ggml's reference quantizers ({@link GgmlQuants#quantizeRow}) and written at
 * its place; tensors kept as they are go straight from the input to the output.
 *
 * <p>The blocks are quantized on every thread of the pool, taken in file order ({@link OrderedTasks}). A ggml row is
 * never split and rows are quantized independently, so the file is byte for byte the one {@link
 * dev.quant4j.io.GgufWriter} writes from {@link GgmlQuants#quantize} of each whole weight, whatever the number of
 * threads; each block's error sums are added in block order, so the figures do not depend on it either. The heap holds a
 * few row blocks per thread (their float32 values, codes and dequantized values), whatever the size of a tensor or of
 * the input; only a {@link Method#whole} method (GPTQ) holds one whole weight per thread.
 *
 * <p>The file appears whole or not at all ({@link AtomicFiles}); a model split into several files ({@link Split}) is
 * written the same way, every file planned before any data and moved into place only when all are complete.
 */
public final class GgufQuantizer {

    /** Reads rows {@code [first, first + count)} of a weight {@code [rows, cols]} as float32 into {@code dst[0..)}. */
    @FunctionalInterface
    public interface Rows {
        void read(long first, int count, float[] dst) throws IOException;
    }

    /** Writes bytes {@code [from, from + length)} of a kept tensor into the output at tensor {@code index}, byte from. */
    @FunctionalInterface
    public interface Copy {
        void copy(long from, long length, GgufStreamWriter out, int index) throws IOException;
    }

    /**
     * A tensor of the output: a weight {@code [rows, cols]} to quantize (GGUF extents {@code [cols, rows]}), read by
     * {@code rows} and {@code inputBytes} bytes large in the input (for progress), into {@code type} (null: the
     * method's), by {@code whole} (null: the method's) from the whole weight; or a tensor kept as {@code keptType} whose
     * bytes {@code copy} writes.
     */
    public record Item(
            String name,
            long[] ne,
            long rows,
            int cols,
            Rows reader,
            long inputBytes,
            GgmlType type,
            Function<FloatMatrix, Whole> whole,
            GgmlType keptType,
            Copy copy) {

        public Item {
            Objects.requireNonNull(name, "name");
            ne = ne.clone();
            if (type != null && !type.quantizable()) {
                throw new IllegalArgumentException("tensor '" + name + "': quant4j does not quantize to ggml type "
                        + type + "; it does " + GgmlType.quantizableNames());
            }
        }

        /** A weight {@code [rows, cols]} to quantize. */
        public static Item weight(String name, long rows, int cols, long inputBytes, Rows reader) {
            return new Item(
                    name,
                    new long[] {cols, rows},
                    rows,
                    cols,
                    Objects.requireNonNull(reader),
                    inputBytes,
                    null,
                    null,
                    null,
                    null);
        }

        /** A weight stored with more than two GGUF extents, rows being the product of all but {@code ne[0]}. */
        public static Item weight(String name, long[] ne, long inputBytes, Rows reader) {
            long rows = 1;
            for (int i = 1; i < ne.length; i++) {
                rows = Math.multiplyExact(rows, ne[i]);
            }
            return new Item(
                    name,
                    ne,
                    rows,
                    Math.toIntExact(ne[0]),
                    Objects.requireNonNull(reader),
                    inputBytes,
                    null,
                    null,
                    null,
                    null);
        }

        /** A tensor kept as {@code type}. */
        public static Item kept(String name, long[] ne, GgmlType type, Copy copy) {
            return new Item(
                    name, ne, 0, 0, null, 0, null, null, Objects.requireNonNull(type), Objects.requireNonNull(copy));
        }

        /**
         * This weight quantized into {@code type} by ggml's reference quantizer instead of the method's (a fallback,
         * for example F16 for rows that are not whole blocks of the method's type).
         */
        public Item as(GgmlType type) {
            if (reader == null) {
                throw new IllegalStateException("tensor '" + name + "' is kept, not quantized");
            }
            return new Item(name, ne, rows, cols, reader, inputBytes, Objects.requireNonNull(type), whole, null, null);
        }

        /**
         * This weight made by {@code quantize} from the whole weight (its bytes in the method's type) instead of the
         * method's quantizer: GPTQ's blocks of one matrix among weights quantized by ggml's reference quantizer, for
         * example.
         */
        public Item by(Function<FloatMatrix, Whole> quantize) {
            if (reader == null) {
                throw new IllegalStateException("tensor '" + name + "' is kept, not quantized");
            }
            return new Item(
                    name, ne, rows, cols, reader, inputBytes, type, Objects.requireNonNull(quantize), null, null);
        }

        @Override
        public long[] ne() {
            return ne.clone();
        }

        boolean quantized() {
            return reader != null;
        }
    }

    /** What a whole-weight method made of one weight: its bytes in the type, and a note for its report line. */
    @SuppressWarnings("ArrayRecordComponent") // handed over once
    public record Whole(byte[] data, String note) {}

    /** How the weights are quantized: ggml's reference quantizer of a type, or a method that needs each weight whole. */
    public record Method(GgmlType type, String label, Function<FloatMatrix, Whole> whole) {

        public Method {
            Objects.requireNonNull(type, "type");
            if (!type.quantizable()) {
                throw new IllegalArgumentException(
                        "quant4j does not quantize to ggml type " + type + "; it does " + GgmlType.quantizableNames());
            }
        }

        /** ggml's reference quantizer ({@code quantize_row_*_ref}) of {@code type}, in row blocks. */
        public static Method rtn(GgmlType type) {
            return new Method(type, "", null);
        }

        /** {@code quantize} gets each weight whole and returns its bytes in {@code type}; {@code label} tags its line. */
        public static Method whole(GgmlType type, String label, Function<FloatMatrix, Whole> quantize) {
            return new Method(type, label, Objects.requireNonNull(quantize, "quantize"));
        }
    }

    /** One quantized weight: its shape, bits per weight as stored, error, and the method's note (or empty). */
    public record WeightReport(
            String name, long rows, int cols, double bitsPerWeight, ErrorMetrics error, String note) {}

    /** What was written: the weights' reports in file order, the tensors kept, the bytes in and out, the files. */
    public record Summary(List<WeightReport> weights, int kept, long bytesIn, long bytesOut, List<Path> files) {}

    /**
     * How the output is split into several files, as llama.cpp's {@code gguf-split} splits a model ({@link
     * GgufSplits#plan}): at most {@code maxBytes} bytes of tensor data per file and at most {@code maxTensors} tensors
     * (0: no limit).
     */
    public record Split(long maxBytes, int maxTensors) {

        public Split {
            if (maxBytes < 0 || maxTensors < 0 || (maxBytes == 0 && maxTensors == 0)) {
                throw new IllegalArgumentException("a split needs a positive byte or tensor limit, got " + maxBytes
                        + " bytes, " + maxTensors + " tensors");
            }
        }
    }

    private final Method method;
    private final ForkJoinPool pool;
    private final int blockElements;

    /** Quantizes with {@code method} on every thread of {@code pool}. */
    public GgufQuantizer(Method method, ForkJoinPool pool) {
        this(method, pool, CheckpointQuantizer.BLOCK_ELEMENTS);
    }

    /** As the public constructor, with row blocks of about {@code blockElements} values (tests use small ones). */
    GgufQuantizer(Method method, ForkJoinPool pool, int blockElements) {
        this.method = Objects.requireNonNull(method, "method");
        this.pool = Objects.requireNonNull(pool, "pool");
        if (blockElements <= 0) {
            throw new IllegalArgumentException("blockElements " + blockElements + " must be positive");
        }
        this.blockElements = blockElements;
    }

    /**
     * Writes {@code out} atomically: {@code metadata} in order, then {@code items} in order, the weights quantized.
     *
     * @throws IllegalArgumentException for a weight whose rows are not whole blocks of the type (naming it), a NaN or
     *     infinite value (naming the tensor, row and column), or what {@link GgufStreamWriter} refuses
     */
    public Summary write(
            Map<String, GgufValue> metadata, List<Item> items, Path out, CheckpointQuantizer.Progress progress)
            throws IOException {
        return write(metadata, items, out, null, progress);
    }

    /**
     * As {@link #write(Map, List, Path, CheckpointQuantizer.Progress)}, split into several files when {@code split} is
     * not null and the tensors do not fit in one: {@code out} {@code NAME.gguf} becomes {@code NAME-00001-of-0000N.gguf}
     * ... ({@link GgufSplits}), the first with {@code metadata} and every file with the split keys; each tensor's bytes
     * are those of the single file. Every file is written under a temporary name, and all are moved into place only
     * when all are complete, the first last. When everything fits in one file it is {@code out}, without split keys.
     */
    public Summary write(
            Map<String, GgufValue> metadata,
            List<Item> items,
            Path out,
            Split split,
            CheckpointQuantizer.Progress progress)
            throws IOException {
        List<GgufStreamWriter.Spec> specs = new ArrayList<>();
        List<Task> tasks = new ArrayList<>();
        long bytesIn = 0;
        int kept = 0;
        for (int i = 0; i < items.size(); i++) {
            Item it = items.get(i);
            if (!it.quantized()) {
                specs.add(new GgufStreamWriter.Spec(it.name(), it.ne, it.keptType()));
                long size = specs.get(i).bytes();
                for (long b = 0; b == 0 || b < size; b += COPY_BYTES) {
                    tasks.add(new Task(i, b, Math.min(size, b + COPY_BYTES)));
                }
                bytesIn += size;
                kept++;
                continue;
            }
            if (it.rows() <= 0 || it.cols() <= 0) {
                throw new IllegalArgumentException(
                        "tensor '" + it.name() + "' [" + it.rows() + ", " + it.cols() + "] is empty");
            }
            GgmlType as = typeOf(it);
            if (it.cols() % as.blockSize() != 0) {
                throw new IllegalArgumentException("tensor '" + it.name() + "' [" + it.rows() + ", " + it.cols()
                        + "]: its rows of " + it.cols() + " values are not a multiple of the " + as
                        + " block size " + as.blockSize());
            }
            specs.add(new GgufStreamWriter.Spec(it.name(), it.ne, as));
            bytesIn += it.inputBytes();
            long perBlock = wholeOf(it) != null ? it.rows() : Math.max(1, blockElements / it.cols());
            for (long r = 0; r == 0 || r < it.rows(); r += perBlock) {
                tasks.add(new Task(i, r, Math.min(it.rows(), r + perBlock)));
            }
        }
        long[] sizes = specs.stream().mapToLong(GgufStreamWriter.Spec::bytes).toArray();
        int[] splitOf =
                split == null ? new int[specs.size()] : GgufSplits.plan(sizes, split.maxBytes(), split.maxTensors());
        int n = splitOf.length == 0 ? 1 : splitOf[splitOf.length - 1] + 1;
        List<List<GgufStreamWriter.Spec>> perSplit = new ArrayList<>();
        for (int s = 0; s < n; s++) {
            perSplit.add(new ArrayList<>());
        }
        int[] local = new int[specs.size()];
        for (int i = 0; i < specs.size(); i++) {
            local[i] = perSplit.get(splitOf[i]).size();
            perSplit.get(splitOf[i]).add(specs.get(i));
        }
        List<Path> files = n == 1 ? List.of(out) : GgufSplits.paths(GgufSplits.prefix(out), n);
        long[] bytesOut = {0};
        List<Result> results = new ArrayList<>();
        AtomicFiles.writeFiles(files, tmps -> {
            GgufStreamWriter[] w = new GgufStreamWriter[n];
            try {
                for (int s = 0; s < n; s++) {
                    w[s] = GgufStreamWriter.create(
                            tmps.get(s),
                            n == 1 ? metadata : GgufSplits.metadata(metadata, s, n, specs.size()),
                            perSplit.get(s));
                }
                results.addAll(OrderedTasks.run(pool, tasks.size(), Scratch::new, (t, s) -> {
                    Task task = tasks.get(t);
                    return run(task, items, w[splitOf[task.item()]], local[task.item()], s, progress);
                }));
                for (GgufStreamWriter writer : w) {
                    writer.finish();
                }
            } finally {
                for (GgufStreamWriter writer : w) {
                    if (writer != null) {
                        writer.close();
                    }
                }
            }
            for (Path tmp : tmps) {
                bytesOut[0] += Files.size(tmp);
            }
        });
        List<WeightReport> reports = new ArrayList<>();
        ErrorMetrics.Accumulator acc = null;
        String note = "";
        for (int t = 0; t < tasks.size(); t++) {
            Task task = tasks.get(t);
            Item it = items.get(task.item());
            if (!it.quantized()) {
                continue;
            }
            Result r = results.get(t);
            acc = task.from() == 0 ? r.error() : acc.merge(r.error());
            note = r.note() != null ? r.note() : note;
            if (task.to() == it.rows()) {
                double bpw = 8.0 * specs.get(task.item()).bytes() / ((double) it.rows() * it.cols());
                reports.add(new WeightReport(it.name(), it.rows(), it.cols(), bpw, acc.result(), note));
                note = "";
            }
        }
        return new Summary(reports, kept, bytesIn, bytesOut[0], files);
    }

    /** Bytes per task when copying a kept tensor. */
    private static final long COPY_BYTES = 64L << 20;

    /** Rows {@code [from, to)} of item {@code item}, or its bytes {@code [from, to)} when it is kept. */
    private record Task(int item, long from, long to) {}

    private record Result(ErrorMetrics.Accumulator error, String note) {}

    /** Per-thread buffers, grown on demand. */
    private static final class Scratch {
        float[] values = new float[0];
        float[] back = new float[0];
        byte[] codes = new byte[0];
    }

    /** Runs {@code task}, whose item is tensor {@code index} of the file {@code out}. */
    private Result run(
            Task task, List<Item> items, GgufStreamWriter out, int index, Scratch s, CheckpointQuantizer.Progress p)
            throws IOException {
        Item it = items.get(task.item());
        if (!it.quantized()) {
            it.copy().copy(task.from(), task.to() - task.from(), out, index);
            p.done(it.name(), task.to() - task.from());
            return null;
        }
        GgmlType type = typeOf(it);
        Function<FloatMatrix, Whole> whole = wholeOf(it);
        int cols = it.cols();
        long count = task.to() - task.from();
        long n = count * cols;
        long rowSize = type.rowSize(cols);
        if (n > Integer.MAX_VALUE - 8 || count * rowSize > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor '" + it.name() + "' [" + it.rows() + ", " + cols + "] must be"
                    + " quantized whole by " + method.label() + " and has " + n + " values, more than an array holds");
        }
        int rows = (int) count;
        float[] x = whole != null ? new float[(int) n] : values(s, (int) n);
        it.reader().read(task.from(), rows, x);
        String note = null;
        byte[] q;
        int qLength = (int) (rows * rowSize);
        if (whole != null) {
            Whole made;
            try {
                made = whole.apply(FloatMatrix.of(it.name(), rows, cols, x, 0));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("tensor '" + it.name() + "': " + e.getMessage(), e);
            }
            q = made.data();
            note = made.note();
            if (q.length != qLength) {
                throw new IllegalStateException("tensor '" + it.name() + "': " + method.label() + " gave " + q.length
                        + " bytes, " + type + " needs " + qLength);
            }
        } else {
            if (type.blockSize() > 1) {
                for (int i = 0; i < n; i++) {
                    if (!Float.isFinite(x[i])) {
                        throw new IllegalArgumentException("tensor '" + it.name() + "': value " + x[i] + " at row "
                                + (task.from() + i / cols) + ", column " + i % cols + " cannot be quantized to "
                                + type);
                    }
                }
            }
            if (s.codes.length < qLength) {
                s.codes = new byte[qLength];
            }
            q = s.codes;
            for (int r = 0; r < rows; r++) {
                GgmlQuants.quantizeRow(type, x, r * cols, q, (int) (r * rowSize), cols);
            }
        }
        out.write(index, task.from() * rowSize, ByteBuffer.wrap(q, 0, qLength));
        if (s.back.length < n) {
            s.back = new float[(int) n];
        }
        for (int r = 0; r < rows; r++) {
            GgmlQuants.dequantizeRow(type, q, (int) (r * rowSize), s.back, r * cols, cols);
        }
        ErrorMetrics.Accumulator acc = new ErrorMetrics.Accumulator()
                .add(FloatMatrix.of(it.name(), rows, cols, x, 0), FloatMatrix.of(it.name(), rows, cols, s.back, 0));
        // the block's share of the weight's input bytes, so that the shares add up to them exactly
        p.done(
                it.name(),
                share(it.inputBytes(), task.to(), it.rows()) - share(it.inputBytes(), task.from(), it.rows()));
        return new Result(acc, note);
    }

    /** The type weight {@code it} is stored in: its own, or the method's. */
    private GgmlType typeOf(Item it) {
        return it.type() != null ? it.type() : method.type();
    }

    /**
     * What quantizes weight {@code it} whole: its own function, or the method's when it is in the method's type; null
     * when ggml's reference quantizer takes it in row blocks (a weight in another type, or a method that has none).
     */
    private Function<FloatMatrix, Whole> wholeOf(Item it) {
        if (it.whole() != null) {
            return it.whole();
        }
        return method.whole() != null && typeOf(it) == method.type() ? method.whole() : null;
    }

    private static long share(long bytes, long row, long rows) {
        return Math.multiplyHigh(bytes, row) == 0 && bytes * row >= 0
                ? bytes * row / rows
                : (long) ((double) bytes * row / rows);
    }

    private static float[] values(Scratch s, int n) {
        if (s.values.length < n) {
            s.values = new float[n];
        }
        return s.values;
    }
}
