package dev.quant4j.pipeline;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.io.AtomicFiles;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.io.SafeTensorsStreamWriter;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.DoubleQuant;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.QuantScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.function.Function;

/**
 * Quantizes a safetensors checkpoint of any size into quant4j's format ({@link QuantizedSafeTensors}) as a stream: one
 * file to one file, or a Hugging Face folder (one file or index-listed shards) to a folder with the same shard names,
 * a new index and the folder's other files (config, tokenizer) copied.
 *
 * <p>Nothing the size of a shard is ever held: each output file's header is computed from the shapes and the scheme
 * first ({@link QuantizedSafeTensors#layout}), then the input's tensors are read from the memory-mapped shards a block
 * of rows at a time (about a quarter of a million values, F16/BF16 converted to float32 on the way), quantized, and
 * written at their place in the output through a file channel; tensors that are not quantized are copied from the
 * mapped input without passing through the heap. The heap needed is a few row blocks per thread, whatever the model's
 * size; only a weight that must be quantized whole (round-to-nearest per tensor, or a {@link Method#whole} method)
 * needs its float32 form in memory, one per thread.
 *
 * <p>The blocks are quantized on every thread of the pool, taken in file order (so the input is read nearly
 * sequentially); each block's result depends on its rows alone and the error sums of the blocks are added in block
 * order, so the output file and the figures are bit-identical whatever the number of threads, and byte-identical to
 * {@link QuantizedSafeTensors#write} of the same weights.
 *
 * <p>Each output appears whole or not at all ({@link AtomicFiles}).
 */
public final class CheckpointQuantizer {

    /**
     * Values per row block by default (rows are never split): a quarter of a million, so that a block's float32 rows
     * (1 MB) sit in L2 and its packed codes stay below the size the garbage collector treats as humongous.
     */
    static final int BLOCK_ELEMENTS = 1 << 18;

    /** Bytes per task when copying a tensor that is not quantized. */
    private static final long COPY_BYTES = 64L << 20;

    private static final ForkJoinPool ONE_THREAD = new ForkJoinPool(1);

    /** How weights are quantized. */
    public static final class Method {
        private final String name;
        private final QuantScheme scheme;
        private final boolean gIdx;
        private final boolean inputScales;
        private final Function<FloatMatrix, QuantizedWeight> whole;

        private Method(
                String name,
                QuantScheme scheme,
                boolean gIdx,
                boolean inputScales,
                Function<FloatMatrix, QuantizedWeight> whole) {
            this.name = Objects.requireNonNull(name, "name");
            this.scheme = Objects.requireNonNull(scheme, "scheme");
            this.gIdx = gIdx;
            this.inputScales = inputScales;
            this.whole = whole;
        }

        /** Round-to-nearest ({@link RtnQuantizer}), in row blocks unless per tensor. */
        public static Method rtn(LinearScheme scheme) {
            return new Method("rtn", scheme, false, false, null);
        }

        /** NF4/FP4 ({@link BlockwiseQuantizer}), in row blocks that hold whole blocks. */
        public static Method codebook(CodebookScheme scheme) {
            return new Method(scheme.codebook().name().toLowerCase(java.util.Locale.ROOT), scheme, false, false, null);
        }

        /**
         * A method that needs each weight whole (GPTQ, AWQ): {@code quantize} is called with the weight's float32
         * matrix and must return a weight of {@code scheme} with a column-to-group map exactly when {@code gIdx} and
         * input scales exactly when {@code inputScales} (the layout is planned before).
         */
        public static Method whole(
                String name,
                LinearScheme scheme,
                boolean gIdx,
                boolean inputScales,
                Function<FloatMatrix, QuantizedWeight> quantize) {
            return new Method(name, scheme, gIdx, inputScales, Objects.requireNonNull(quantize, "quantize"));
        }

        public String name() {
            return name;
        }

        public QuantScheme scheme() {
            return scheme;
        }

        /** Rows per block such that blocks quantize independently, or 0 when a weight must be quantized whole. */
        int rowAlignment(int cols) {
            if (whole != null) {
                return 0;
            }
            return switch (scheme) {
                case LinearScheme s -> s.groupSize() == LinearScheme.PER_TENSOR ? 0 : 1;
                case CodebookScheme s -> s.blockSize() / gcd(cols, s.blockSize());
            };
        }

        QuantizedWeight quantize(FloatMatrix w) {
            if (whole != null) {
                return whole.apply(w);
            }
            return switch (scheme) {
                case LinearScheme s -> new RtnQuantizer(s, ONE_THREAD).quantize(w);
                case CodebookScheme s ->
                    new BlockwiseQuantizer(s.doubleQuant() ? new CodebookScheme(s.codebook(), s.blockSize()) : s)
                            .quantize(w);
            };
        }

        QuantizedSafeTensors.Layout layout(String tensor, int rows, int cols, boolean transposed) {
            return QuantizedSafeTensors.layout(tensor, scheme, rows, cols, name, transposed, gIdx, inputScales);
        }
    }

    /** What becomes of one tensor of the input. */
    public record Choice(boolean quantize, String keptReason) {
        /** Quantize it. */
        public static final Choice QUANTIZE = new Choice(true, null);
        /** Copy it unchanged (not a weight to quantize). */
        public static final Choice COPY = new Choice(false, null);

        /** Copy it unchanged although a user might expect it quantized, for {@code reason}. */
        public static Choice kept(String reason) {
            return new Choice(false, Objects.requireNonNull(reason, "reason"));
        }
    }

    /** Decides each tensor's {@link Choice}; may throw {@link IllegalArgumentException} to refuse the input. */
    @FunctionalInterface
    public interface Selector {
        Choice choose(SafeTensors.Entry tensor);
    }

    /** Told after each piece of work; called from the working threads. */
    @FunctionalInterface
    public interface Progress {
        /** {@code bytes} more of the input's tensor data are done; {@code tensor} is the tensor they belong to. */
        void done(String tensor, long bytes);
    }

    /** One quantized weight: its shape, its bits per weight as stored, and its error. */
    public record WeightReport(String name, int rows, int cols, double bitsPerWeight, ErrorMetrics error) {}

    /** A tensor left unquantized, and why. */
    public record Kept(String name, String reason) {}

    /** What was done. */
    public record Summary(
            List<WeightReport> weights, List<Kept> kept, int copied, long bytesIn, long bytesOut, List<String> files) {}

    private final Method method;
    private final Selector selector;
    private final ForkJoinPool pool;
    private final int blockElements;

    /** Quantizes with {@code method} the tensors {@code selector} chooses, on every thread of {@code pool}. */
    public CheckpointQuantizer(Method method, Selector selector, ForkJoinPool pool) {
        this(method, selector, pool, BLOCK_ELEMENTS);
    }

    /** As the public constructor, with row blocks of about {@code blockElements} values (tests use small ones). */
    CheckpointQuantizer(Method method, Selector selector, ForkJoinPool pool, int blockElements) {
        this.method = Objects.requireNonNull(method, "method");
        this.selector = Objects.requireNonNull(selector, "selector");
        this.pool = Objects.requireNonNull(pool, "pool");
        if (blockElements <= 0) {
            throw new IllegalArgumentException("blockElements " + blockElements + " must be positive");
        }
        this.blockElements = blockElements;
    }

    /**
     * Quantizes {@code in} into {@code out}: a file when {@code in} is one file, otherwise a folder (replaced only when
     * {@code replace}) with the input's shard names. Every tensor is chosen, and every output header planned, before
     * anything is written.
     *
     * @throws IllegalArgumentException when the selector refuses a tensor, or nothing is selected
     */
    public Summary quantize(SafeTensorsCheckpoint in, Path out, boolean replace, Progress progress) throws IOException {
        return quantize(in, out, replace, 0, progress);
    }

    /**
     * As {@link #quantize(SafeTensorsCheckpoint, Path, boolean, Progress)}; with a positive {@code maxShardSize},
     * {@code out} is a folder whose shards hold at most that many bytes of tensor data each, filled as Hugging Face
     * fills them ({@link #shards}), whatever the input's shards.
     */
    public Summary quantize(SafeTensorsCheckpoint in, Path out, boolean replace, long maxShardSize, Progress progress)
            throws IOException {
        List<List<Unit>> perInput = new ArrayList<>();
        List<Kept> kept = new ArrayList<>();
        int quantized = 0;
        for (SafeTensorsCheckpoint.Shard shard : in.shards()) {
            List<Unit> units = units(shard, kept);
            for (Unit u : units) {
                quantized += u.layout() != null ? 1 : 0;
            }
            perInput.add(units);
        }
        if (quantized == 0) {
            throw new IllegalArgumentException(
                    (in.folder() == null ? in.shards().get(0).fileName() : in.folder())
                            + ": no tensor to quantize"
                            + (kept.isEmpty()
                                    ? ""
                                    : "; '" + kept.get(0).name() + "' "
                                            + kept.get(0).reason()
                                            + (kept.size() > 1 ? ", and " + (kept.size() - 1) + " more" : "")));
        }
        List<FilePlan> plans = new ArrayList<>();
        boolean indexed;
        if (maxShardSize > 0) {
            List<Unit> all = new ArrayList<>();
            perInput.forEach(all::addAll);
            List<Long> sizes = all.stream().map(Unit::bytes).toList();
            List<List<Integer>> groups = shards(sizes, maxShardSize);
            for (int g = 0; g < groups.size(); g++) {
                List<Unit> units = new ArrayList<>();
                for (int i : groups.get(g)) {
                    units.add(all.get(i));
                }
                plans.add(assemble(shardName(g, groups.size()), units));
            }
            indexed = groups.size() > 1;
        } else {
            for (int i = 0; i < perInput.size(); i++) {
                plans.add(assemble(in.shards().get(i).fileName(), perInput.get(i)));
            }
            indexed = in.indexed();
        }
        List<WeightReport> reports = new ArrayList<>();
        long[] bytesOut = {0};
        int[] copied = {0};
        List<String> files = new ArrayList<>();
        if (in.folder() == null && maxShardSize <= 0) {
            FilePlan plan = plans.get(0);
            AtomicFiles.writeFile(out, tmp -> write(plan, tmp, reports, progress));
            bytesOut[0] = Files.size(out);
            copied[0] = plan.copies.size();
            files.add(out.getFileName().toString());
        } else {
            Path source = in.folder();
            AtomicFiles.writeFolder(out, replace, tmp -> {
                Map<String, String> weightMap = new LinkedHashMap<>();
                long total = 0;
                for (FilePlan plan : plans) {
                    Path file = tmp.resolve(plan.fileName);
                    write(plan, file, reports, progress);
                    total += plan.dataBytes();
                    bytesOut[0] += Files.size(file);
                    copied[0] += plan.copies.size();
                    files.add(plan.fileName);
                    for (SafeTensorsStreamWriter.Spec s : plan.specs) {
                        weightMap.put(s.name(), plan.fileName);
                    }
                }
                if (indexed) {
                    SafeTensorsCheckpoint.writeIndex(tmp, total, weightMap);
                    files.add(SafeTensorsCheckpoint.INDEX);
                }
                if (source != null) {
                    copyOtherFiles(source, tmp, in, files);
                }
            });
        }
        return new Summary(reports, kept, copied[0], in.dataBytes(), bytesOut[0], files);
    }

    /**
     * Splits items of {@code sizes} bytes, in order, into shards of at most {@code maxShardSize} bytes as
     * huggingface_hub's {@code split_state_dict_into_shards_factory} does ({@code src/huggingface_hub/serialization/
     * _base.py}, commit {@code 122aa5cc}): items fill the current shard until the next would tip it over the limit,
     * which then starts a new one; an item larger than the limit goes alone into a shard of its own, placed in the
     * list when it is met, while the current shard stays open. Returns each shard's item indices.
     */
    static List<List<Integer>> shards(List<Long> sizes, long maxShardSize) {
        List<List<Integer>> shards = new ArrayList<>();
        List<Integer> current = new ArrayList<>();
        long currentSize = 0;
        for (int i = 0; i < sizes.size(); i++) {
            long size = sizes.get(i);
            if (size > maxShardSize) {
                shards.add(List.of(i));
                continue;
            }
            if (currentSize + size > maxShardSize) {
                shards.add(current);
                current = new ArrayList<>();
                currentSize = 0;
            }
            current.add(i);
            currentSize += size;
        }
        if (!current.isEmpty()) {
            shards.add(current);
        }
        return shards;
    }

    /**
     * The name of shard {@code index} (from 0) of {@code count}: {@code model.safetensors} alone, otherwise {@code
     * model-00001-of-00003.safetensors} ... (huggingface_hub's {@code FILENAME_PATTERN} with the suffix {@code
     * -{idx+1:05d}-of-{n:05d}}).
     */
    static String shardName(int index, int count) {
        return count == 1
                ? SafeTensorsCheckpoint.SINGLE
                : String.format(java.util.Locale.ROOT, "model-%05d-of-%05d.safetensors", index + 1, count);
    }

    /**
     * A tensor of the input as the output holds it: a weight with its quantized layout (all its parts stay in one
     * file, the unit a shard is filled with), or a tensor copied (layout null).
     */
    private record Unit(SafeTensors file, SafeTensors.Entry entry, QuantizedSafeTensors.Layout layout) {
        long bytes() {
            return layout != null ? layout.bytes() : entry.end() - entry.begin();
        }
    }

    /** The output of one file: the weights to quantize with their layouts, and the tensors to copy. */
    private record FilePlan(
            String fileName,
            List<QuantizedSafeTensors.Layout> layouts,
            List<SafeTensors.Entry> weights,
            List<SafeTensors> weightFiles,
            List<SafeTensors.Entry> copies,
            List<SafeTensors> copyFiles,
            List<SafeTensorsStreamWriter.Spec> specs,
            Map<String, String> metadata,
            Map<String, Long> alignedRowsBytes) {

        long dataBytes() {
            long n = 0;
            for (SafeTensorsStreamWriter.Spec s : specs) {
                n += s.bytes();
            }
            return n;
        }
    }

    /** The tensors of one input file as the output holds them, the weights first, each group in file order. */
    private List<Unit> units(SafeTensorsCheckpoint.Shard shard, List<Kept> kept) {
        List<Unit> weights = new ArrayList<>();
        List<Unit> copies = new ArrayList<>();
        SafeTensors st = shard.file();
        String format = st.metadata().get(QuantizedSafeTensors.FORMAT_KEY);
        if (format != null) {
            throw new IllegalArgumentException(shard.path() + " is already quantized by quant4j (format " + format
                    + "); quantize the original weights, or 'quant dequantize' it first");
        }
        for (SafeTensors.Entry e : st.entries().values()) {
            Choice c = selector.choose(e);
            if (c.quantize()) {
                long[] shape = e.shape();
                if (shape.length != 2 || !e.dtype().isFloat() || shape[0] == 0 || shape[1] == 0) {
                    throw new IllegalArgumentException("tensor '" + e.name() + "' (" + e + ") is not a non-empty 2-D"
                            + " float tensor and cannot be quantized");
                }
                if (shape[0] > Integer.MAX_VALUE || shape[1] > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("tensor '" + e.name() + "' " + e + " has a dimension past 2^31");
                }
                weights.add(new Unit(st, e, method.layout(e.name(), (int) shape[0], (int) shape[1], false)));
            } else {
                if (c.keptReason() != null) {
                    kept.add(new Kept(e.name(), c.keptReason()));
                }
                copies.add(new Unit(st, e, null));
            }
        }
        weights.addAll(copies);
        return weights;
    }

    /** The plan of one output file holding {@code units}: the weights' parts in order, then the copies. */
    private FilePlan assemble(String fileName, List<Unit> units) {
        List<QuantizedSafeTensors.Layout> layouts = new ArrayList<>();
        List<SafeTensors.Entry> weights = new ArrayList<>();
        List<SafeTensors> weightFiles = new ArrayList<>();
        List<SafeTensors.Entry> copies = new ArrayList<>();
        List<SafeTensors> copyFiles = new ArrayList<>();
        for (Unit u : units) {
            if (u.layout() != null) {
                layouts.add(u.layout());
                weights.add(u.entry());
                weightFiles.add(u.file());
            } else {
                copies.add(u.entry());
                copyFiles.add(u.file());
            }
        }
        List<SafeTensorsStreamWriter.Spec> specs = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put(QuantizedSafeTensors.FORMAT_KEY, QuantizedSafeTensors.FORMAT_VERSION);
        for (QuantizedSafeTensors.Layout l : layouts) {
            metadata.put(l.metadataKey(), l.metadataJson());
            specs.addAll(l.tensors());
        }
        for (SafeTensors.Entry e : copies) {
            specs.add(new SafeTensorsStreamWriter.Spec(e.name(), e.dtype(), e.shape()));
        }
        // the bytes each part of a row-blocked weight takes per rowAlignment rows: a block starting at row r (a
        // multiple of the alignment) starts at r / alignment times that in each part
        Map<String, Long> alignedRowsBytes = new java.util.HashMap<>();
        for (SafeTensors.Entry e : weights) {
            int cols = (int) e.shape()[1];
            int align = method.rowAlignment(cols);
            if (align > 0) {
                for (SafeTensorsStreamWriter.Spec part :
                        method.layout(e.name(), align, cols, false).tensors()) {
                    alignedRowsBytes.put(part.name(), part.bytes());
                }
            }
        }
        return new FilePlan(
                fileName, layouts, weights, weightFiles, copies, copyFiles, specs, metadata, alignedRowsBytes);
    }

    /** One piece of work: rows [from, to) of weight {@code weight} of the plan, or a byte range of a copy. */
    private record Task(int weight, int from, int to, int copy, long copyFrom, long copyTo) {}

    private void write(FilePlan plan, Path file, List<WeightReport> reports, Progress progress) throws IOException {
        List<Task> tasks = new ArrayList<>();
        for (int i = 0; i < plan.weights.size(); i++) {
            long[] shape = plan.weights.get(i).shape();
            int rows = (int) shape[0];
            int cols = (int) shape[1];
            int align = method.rowAlignment(cols);
            if (align == 0) {
                tasks.add(new Task(i, 0, rows, -1, 0, 0));
                continue;
            }
            int perBlock = Math.max(align, (blockElements / cols) / align * align);
            for (int r = 0; r < rows; r += perBlock) {
                tasks.add(new Task(i, r, Math.min(rows, r + perBlock), -1, 0, 0));
            }
        }
        for (int i = 0; i < plan.copies.size(); i++) {
            SafeTensors.Entry e = plan.copies.get(i);
            long size = e.end() - e.begin();
            for (long b = 0; b == 0 || b < size; b += COPY_BYTES) {
                tasks.add(new Task(-1, 0, 0, i, b, Math.min(size, b + COPY_BYTES)));
            }
        }
        // double quantization compresses each weight's block absmax values together: they are found first (a pass
        // that only reads), so that each block's error is measured against the absmax values as stored
        DoubleQuant[] doubleQuant = new DoubleQuant[plan.weights.size()];
        float[][] restored = new float[plan.weights.size()][];
        if (method.scheme() instanceof CodebookScheme cs && cs.doubleQuant() && method.whole == null) {
            float[][] absmax = new float[plan.weights.size()][];
            List<Task> first = new ArrayList<>();
            for (Task t : tasks) {
                if (t.weight() >= 0) {
                    if (absmax[t.weight()] == null) {
                        long[] shape = plan.weights.get(t.weight()).shape();
                        absmax[t.weight()] = new float[Math.toIntExact(cs.blocks(shape[0] * shape[1]))];
                    }
                    first.add(t);
                }
            }
            runAll(first, (t, scratch) -> {
                blockAbsmax(t, plan, cs.blockSize(), absmax[t.weight()], scratch);
                return null;
            });
            for (int i = 0; i < absmax.length; i++) {
                doubleQuant[i] = DoubleQuant.of(absmax[i]);
                restored[i] = doubleQuant[i].restore();
            }
        }
        ErrorMetrics.Accumulator[] sums;
        try (SafeTensorsStreamWriter out = SafeTensorsStreamWriter.create(file, plan.specs, plan.metadata)) {
            // per block: the error sums, merged per weight in block order below
            sums = runAll(tasks, (t, scratch) -> run(t, plan, out, restored, scratch, progress));
            for (int i = 0; i < plan.weights.size(); i++) {
                if (doubleQuant[i] != null) {
                    writeDoubleQuant(plan.layouts.get(i), doubleQuant[i], out);
                }
            }
            out.finish();
        }
        ErrorMetrics.Accumulator[] perWeight = new ErrorMetrics.Accumulator[plan.weights.size()];
        for (int t = 0; t < tasks.size(); t++) {
            int w = tasks.get(t).weight();
            if (w >= 0) {
                perWeight[w] = perWeight[w] == null ? sums[t] : perWeight[w].merge(sums[t]);
            }
        }
        for (int i = 0; i < plan.weights.size(); i++) {
            SafeTensors.Entry e = plan.weights.get(i);
            long elements = e.elements();
            double bpw = 8.0 * plan.layouts.get(i).bytes() / elements;
            reports.add(new WeightReport(e.name(), (int) e.shape()[0], (int) e.shape()[1], bpw, perWeight[i].result()));
        }
    }

    /** Per-thread buffers, grown on demand. */
    private static final class Scratch {
        float[] values = new float[0];

        float[] values(int n) {
            if (values.length < n) {
                values = new float[n];
            }
            return values;
        }
    }

    private ErrorMetrics.Accumulator run(
            Task task,
            FilePlan plan,
            SafeTensorsStreamWriter out,
            float[][] restored,
            Scratch scratch,
            Progress progress)
            throws IOException {
        if (task.weight() < 0) {
            SafeTensors.Entry e = plan.copies.get(task.copy());
            long length = task.copyTo() - task.copyFrom();
            out.copyRange(e.name(), task.copyFrom(), plan.copyFiles.get(task.copy()), e.name(), length);
            progress.done(e.name(), length);
            return null;
        }
        SafeTensors.Entry e = plan.weights.get(task.weight());
        int cols = (int) e.shape()[1];
        int rows = task.to() - task.from();
        long n = (long) rows * cols;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor '" + e.name() + "' " + e + " must be quantized whole by "
                    + method.name() + " and has " + n + " values, more than a Java array holds");
        }
        float[] values = task.from() == 0 && task.to() == e.shape()[0] && method.rowAlignment(cols) == 0
                ? new float[(int) n]
                : scratch.values((int) n);
        plan.weightFiles.get(task.weight()).readFloats(e.name(), (long) task.from() * cols, (int) n, values, 0);
        FloatMatrix w = FloatMatrix.of(e.name(), rows, cols, values, 0);
        QuantizedWeight q = method.quantize(w);
        QuantizedSafeTensors.Layout layout = plan.layouts.get(task.weight());
        Map<String, byte[]> parts = QuantizedSafeTensors.parts(q);
        for (SafeTensorsStreamWriter.Spec spec : layout.tensors()) {
            byte[] bytes = parts.get(spec.name());
            if (bytes == null) {
                if (restored[task.weight()] != null) {
                    continue; // the double-quantized absmax parts, written once for the whole weight
                }
                throw new IllegalStateException("tensor '" + e.name() + "': " + method.name() + " gave no '"
                        + spec.name() + "' although its layout has it");
            }
            long at = task.from() == 0
                    ? 0
                    : task.from()
                            / method.rowAlignment(cols)
                            * plan.alignedRowsBytes().get(spec.name());
            out.write(spec.name(), at, bytes);
        }
        if (restored[task.weight()] != null) {
            // measured against the absmax values as stored (double-quantized), as the whole weight dequantizes
            CodebookTensor c = (CodebookTensor) q;
            int first = (int) ((long) task.from() * cols / c.scheme().blockSize());
            byte[] packed = parts.get(layout.name() + QuantizedSafeTensors.CODES);
            float[] a = java.util.Arrays.copyOfRange(restored[task.weight()], first, first + c.absmax().length);
            q = new CodebookTensor(c.name(), c.scheme(), rows, cols, packed, a);
        }
        // row by row while each row is in cache, not through a dequantized copy of the block
        ErrorMetrics.Accumulator acc = new ErrorMetrics.Accumulator().add(w, q);
        progress.done(e.name(), n * e.dtype().bytes());
        return acc;
    }

    /** One piece of work on a thread's scratch buffers; returns its error sums (or null). */
    @FunctionalInterface
    private interface Work {
        ErrorMetrics.Accumulator run(Task task, Scratch scratch) throws IOException;
    }

    /** Runs every task on the pool's threads in order ({@link OrderedTasks}); each task's result by task index. */
    private ErrorMetrics.Accumulator[] runAll(List<Task> tasks, Work work) throws IOException {
        return OrderedTasks.run(pool, tasks.size(), Scratch::new, (t, scratch) -> work.run(tasks.get(t), scratch))
                .toArray(new ErrorMetrics.Accumulator[0]);
    }

    /** The absmax of each codebook block of the task's rows, into {@code absmax} at the rows' first block. */
    private static void blockAbsmax(Task task, FilePlan plan, int bs, float[] absmax, Scratch s) {
        SafeTensors.Entry e = plan.weights.get(task.weight());
        int cols = (int) e.shape()[1];
        int n = (task.to() - task.from()) * cols;
        float[] x = s.values(n);
        plan.weightFiles.get(task.weight()).readFloats(e.name(), (long) task.from() * cols, n, x, 0);
        int first = (int) ((long) task.from() * cols / bs);
        for (int b = 0; b * bs < n; b++) {
            float m = 0f;
            for (int i = b * bs, end = Math.min(n, i + bs); i < end; i++) {
                m = Math.max(m, Math.abs(x[i]));
            }
            absmax[first + b] = m;
        }
    }

    private static void writeDoubleQuant(
            QuantizedSafeTensors.Layout layout, DoubleQuant dq, SafeTensorsStreamWriter out) throws IOException {
        String name = layout.name();
        out.write(name + QuantizedSafeTensors.ABSMAX_CODES, 0, dq.codes());
        out.writeFloats(name + QuantizedSafeTensors.ABSMAX2, 0, dq.absmax2());
        out.writeFloats(name + QuantizedSafeTensors.ABSMAX_OFFSET, 0, new float[] {dq.offset()});
    }

    /** Copies the folder's regular files other than safetensors and the index (config, tokenizer, ...). */
    static void copyOtherFiles(Path from, Path to, SafeTensorsCheckpoint in, List<String> files) throws IOException {
        java.util.Set<String> shards = new java.util.HashSet<>();
        for (SafeTensorsCheckpoint.Shard s : in.shards()) {
            shards.add(s.fileName());
        }
        try (DirectoryStream<Path> list = Files.newDirectoryStream(from)) {
            for (Path f : list) {
                String name = f.getFileName().toString();
                if (Files.isRegularFile(f)
                        && !shards.contains(name)
                        && !name.equals(SafeTensorsCheckpoint.INDEX)
                        && !name.startsWith(".")) {
                    Files.copy(f, to.resolve(name));
                    files.add(name);
                }
            }
        }
    }

    private static int gcd(int a, int b) {
        while (b != 0) {
            int t = a % b;
            a = b;
            b = t;
        }
        return a;
    }
}
