package dev.quant4j.io;

import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.quant.Quantizer;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.QuantScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Future;

/**
 * Quantizes the MatMul weights (and Gather tables) of an ONNX model while it writes the quantized model, in {@link
 * OnnxExport}'s layout, so that the heap holds a few weights at a time rather than the model.
 *
 * <p>A model with external data (every model over 2 GB) is written as {@code out} plus {@code out.data} ({@link
 * OnnxExternalData}). Each weight is read when the writer is about to reach it: its range of the data file is mapped,
 * its float32 values {@code [in, out]} copied transposed to {@code [out, in]} (a Gather table as it is stored),
 * quantized, and its tensors (MatMulNBits' {@code B}, scales, zero-points; MatMulBnb4's {@code B}, absmax) made and
 * written in turn. The pool's threads quantize the next weights, in the order the writer reaches them, while the
 * writer writes the current one: at most one weight per thread is being quantized and at most one per thread waits
 * quantized ahead of the one being written. A weight whose tensor is under {@value OnnxExternalData#SIZE_THRESHOLD}
 * bytes (held inside the model, made before the data file) is quantized when the model is laid out and kept until its
 * large tensors are written.
 *
 * <p>The graph is laid out before any weight is quantized, so whether a MatMulNBits has a {@code zero_points} input is
 * decided from the scheme: none for {@link Symmetry#SYM} and {@link Symmetry#SIGNED} (every zero-point is {@code
 * 2^(bits - 1)}, the operator's default), always for {@link Symmetry#ASYM} and {@link Symmetry#MINMAX}. {@link
 * OnnxExport#write} decides from the values, and leaves it out of an asymmetric weight whose zero-points all happen to
 * be the default; ONNX Runtime reads the same weight from both. Otherwise the two write the same bytes.
 *
 * <p>A model without external data (under 2 GB, read into memory) is quantized a weight per thread at a time, and the
 * quantized weights, at most a quarter of the float32 ones, are written by {@link OnnxExport#write} as they are: the
 * same bytes, its zero-point rule included.
 *
 * <p>Results do not depend on the number of threads: each weight is quantized alone by the quantizer given.
 */
public final class OnnxQuantizer {

    /** Told of each weight once it is quantized, on the thread that quantized it (any thread of the pool). */
    @FunctionalInterface
    public interface Listener {
        /** {@code weight} {@code [out, in]} as read, {@code q} its quantization. */
        void quantized(FloatMatrix weight, QuantizedWeight q);
    }

    private OnnxQuantizer() {}

    /**
     * Writes {@code out}: {@code input} (parsed from {@code model}, the {@code .onnx} file's bytes, with its folder)
     * with the initializers {@code weights} quantized by {@code quantizer} (a quantizer of {@code scheme}) and replaced
     * as {@link OnnxExport#write(Path, OnnxModel, byte[], Map, int)} replaces them. A MatMul weight is quantized
     * transposed ({@code [out, in]}), any other initializer (a Gather table) as it is stored.
     *
     * @throws IllegalArgumentException naming the tensor for a weight that is not a 2-D FLOAT initializer, or whose
     *     external data cannot be read in full
     */
    public static void write(
            Path out,
            OnnxModel input,
            byte[] model,
            List<String> weights,
            QuantScheme scheme,
            Quantizer<?> quantizer,
            int accuracyLevel,
            ForkJoinPool pool,
            Listener listener)
            throws IOException {
        Set<String> matmul = new LinkedHashSet<>(input.matMulWeights().values());
        Map<String, OnnxModel.Initializer> tensors = new LinkedHashMap<>();
        for (String w : weights) {
            OnnxModel.Initializer t = input.initializer(w);
            if (t.dataType() != OnnxModel.FLOAT || t.dims().length != 2) {
                throw new IllegalArgumentException(input.source() + ": initializer '" + w + "' is not a 2-D float"
                        + " tensor (ONNX type " + OnnxModel.typeName(t.dataType()) + ", shape "
                        + java.util.Arrays.toString(t.dims()) + ")");
            }
            if (tensors.put(w, t) != null) {
                throw new IllegalArgumentException(input.source() + ": initializer '" + w + "' named twice");
            }
        }
        Reader reader = new Reader(input.source(), tensors, matmul, scheme, quantizer, listener);
        if (!input.hasExternalData()) {
            List<Callable<QuantizedWeight>> tasks = new ArrayList<>();
            for (String w : weights) {
                tasks.add(() -> reader.quantize(w, true));
            }
            Map<String, QuantizedWeight> quantized = new LinkedHashMap<>();
            List<Future<QuantizedWeight>> done;
            try {
                done = pool.invokeAll(tasks);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
            for (int i = 0; i < done.size(); i++) {
                quantized.put(weights.get(i), join(done.get(i)));
            }
            OnnxExport.write(out, input, model, quantized, accuracyLevel);
            return;
        }
        Window window = new Window(reader, pool);
        Map<String, OnnxWeightPlan> plans = new LinkedHashMap<>();
        for (String w : weights) {
            long[] d = tensors.get(w).dims();
            boolean transposed = matmul.contains(w);
            int rows = Math.toIntExact(transposed ? d[1] : d[0]);
            int cols = Math.toIntExact(transposed ? d[0] : d[1]);
            plans.put(
                    w,
                    new OnnxWeightPlan(
                            scheme, rows, cols, defaultZeros(scheme), null, length -> window.take(w, length)));
        }
        String source = input.source();
        OnnxRewriter.Edit edit = OnnxExport.plannedEdit(source, model, input, plans, accuracyLevel, Set.of());
        Map<String, Integer> large = new HashMap<>();
        for (OnnxRewriter.Lazy l : edit.lazyTensors().values()) {
            if (l.length() >= OnnxExternalData.SIZE_THRESHOLD) {
                large.merge(edit.owners.get(l.name()), 1, Integer::sum);
            }
        }
        window.plan(writeOrder(input, edit, weights), large);
        try {
            byte[] graph = OnnxRewriter.rewrite(source, model, edit, true);
            OnnxExternalData.write(out, source, graph, input, edit.lazyTensors());
        } finally {
            window.cancel();
        }
    }

    /**
     * Whether every zero-point of a weight quantized with {@code scheme} is MatMulNBits' default: for the symmetric
     * forms, by construction.
     */
    static boolean defaultZeros(QuantScheme scheme) {
        return !(scheme instanceof LinearScheme l) || l.symmetry() == Symmetry.SYM || l.symmetry() == Symmetry.SIGNED;
    }

    /**
     * The weights in the order the data file receives their large tensors: a replaced initializer's tensors in its
     * place, those added after the last initializer; then the weights that have none.
     */
    private static List<String> writeOrder(OnnxModel input, OnnxRewriter.Edit edit, List<String> weights) {
        Set<String> order = new LinkedHashSet<>();
        List<OnnxRewriter.Added> added = new ArrayList<>();
        for (String name : input.initializers().keySet()) {
            added.addAll(edit.initializers.getOrDefault(name, List.of()));
        }
        added.addAll(edit.addedInitializers);
        for (OnnxRewriter.Added a : added) {
            if (a instanceof OnnxRewriter.Lazy l && l.length() >= OnnxExternalData.SIZE_THRESHOLD) {
                order.add(edit.owners.get(l.name()));
            }
        }
        order.addAll(weights);
        return List.copyOf(order);
    }

    /** Reads a weight as {@code [out, in]} floats and quantizes it. */
    private record Reader(
            String source,
            Map<String, OnnxModel.Initializer> tensors,
            Set<String> transposed,
            QuantScheme scheme,
            Quantizer<?> quantizer,
            Listener listener) {

        /** The quantized weight {@code w}, checked against the plan; {@code tell}: the listener hears of it. */
        QuantizedWeight quantize(String w, boolean tell) throws IOException {
            FloatMatrix m = read(w);
            QuantizedWeight q = quantizer.quantize(m);
            String wrong = null;
            if (q.rows() != m.rows() || q.cols() != m.cols()) {
                wrong = "shape [" + q.rows() + ", " + q.cols() + "], not [" + m.rows() + ", " + m.cols() + "]";
            } else if (!q.scheme().equals(scheme)) {
                wrong = "scheme " + q.scheme() + ", not " + scheme;
            } else if (q instanceof QuantizedTensor t && (t.hasGIdx() || t.hasInputScales())) {
                wrong = "a g_idx or AWQ input scales, which the streamed export does not lay out";
            } else if (defaultZeros(scheme) && !OnnxWeightPlan.defaultZeros(q)) {
                wrong = "zero-points other than 2^(bits - 1) under a symmetric scheme";
            }
            if (wrong != null) {
                throw new IllegalStateException("'" + w + "': the quantizer gave " + wrong);
            }
            if (tell) {
                listener.quantized(m, q);
            }
            return q;
        }

        /** The values of {@code w}, transposed to {@code [out, in]} when it is a MatMul weight. */
        FloatMatrix read(String w) throws IOException {
            OnnxModel.Initializer t = tensors.get(w);
            long[] d = t.dims();
            int k = Math.toIntExact(d[0]);
            int n = Math.toIntExact(d[1]);
            OnnxModel.External ext = t.external();
            if (ext == null) {
                FloatMatrix m = t.matrix();
                return transposed.contains(w) ? m.transpose() : m;
            }
            long length = 4L * k * n;
            float[] values = new float[Math.toIntExact((long) k * n)];
            try (FileChannel ch = FileChannel.open(ext.file(), StandardOpenOption.READ);
                    Arena arena = Arena.ofConfined()) {
                if (ext.length() != length || ch.size() < ext.offset() + length) {
                    throw new MalformedTensorFileException(source + ": initializer '" + w + "' needs " + length
                            + " bytes from byte " + ext.offset() + " of '" + ext.location() + "', which has "
                            + ch.size() + " bytes");
                }
                // stored W [k = in, n = out]: READ_ROWS stored rows at a time, read with positional reads (as fast as
                // cat; faulting a mapping's pages in is several times slower), as floats
                int block = Math.min(k, READ_ROWS);
                MemorySegment buffer = arena.allocate(4L * block * n, 64);
                float[] rows = new float[block * n];
                float[] tile = new float[TILE * TILE];
                for (int k0 = 0; k0 < k; k0 += block) {
                    int kb = Math.min(block, k - k0);
                    readFully(ch, buffer.asSlice(0, 4L * kb * n), ext.offset() + 4L * k0 * n, source, w);
                    if (!transposed.contains(w)) {
                        MemorySegment.copy(buffer, LE_FLOAT, 0, values, k0 * n, kb * n);
                        continue;
                    }
                    MemorySegment.copy(buffer, LE_FLOAT, 0, rows, 0, kb * n);
                    // values [n, k]: each TILE x TILE square copied out of the stored rows first, then transposed
                    // from there. Read in place, a column of the stored rows is one cache line a row with a stride of
                    // n floats, which for widths like 4096 or 11008 maps all the lines to a few sets of the L1 cache
                    // and evicts them before the next column uses them
                    for (int n0 = 0; n0 < n; n0 += TILE) {
                        int nb = Math.min(TILE, n - n0);
                        for (int kk = 0; kk < kb; kk++) {
                            System.arraycopy(rows, kk * n + n0, tile, kk * TILE, nb);
                        }
                        for (int nn = 0; nn < nb; nn++) {
                            int to = (n0 + nn) * k + k0;
                            for (int kk = 0; kk < kb; kk++) {
                                values[to + kk] = tile[kk * TILE + nn];
                            }
                        }
                    }
                }
                return transposed.contains(w) ? FloatMatrix.of(w, n, k, values, 0) : FloatMatrix.of(w, k, n, values, 0);
            } catch (java.nio.file.NoSuchFileException e) {
                throw new MalformedTensorFileException(
                        source + ": initializer '" + w + "': external data file '" + ext.location() + "' is missing");
            }
        }
    }

    /** Stored rows a MatMul weight is read in: 64 rows of 11008 floats are 2.8 MB. */
    private static final int READ_ROWS = 64;

    /** The side of the squares a weight is transposed in: 16 KiB of floats, within any L1 cache. */
    private static final int TILE = 64;

    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Fills {@code into} from {@code ch} at {@code position}; a file that ends first names initializer {@code w}. */
    private static void readFully(FileChannel ch, MemorySegment into, long position, String source, String w)
            throws IOException {
        PositionalReads.readFully(
                ch::read,
                into.asByteBuffer(),
                position,
                at -> new java.io.EOFException(source + ": initializer '" + w + "': external data ends at byte " + at));
    }

    /**
     * The quantized weights the writer asks for, quantized ahead on the pool in the order it asks for them. A weight
     * is dropped once its large tensors are written.
     */
    private static final class Window {
        private final Reader reader;
        private final ForkJoinPool pool;
        private final Map<String, Future<QuantizedWeight>> held = new HashMap<>();
        private final Set<String> released = new java.util.HashSet<>();
        /** Large tensors of each weight not written yet. */
        private Map<String, Integer> remaining = Map.of();

        private List<String> order = List.of();
        private Map<String, Integer> index = Map.of();

        Window(Reader reader, ForkJoinPool pool) {
            this.reader = reader;
            this.pool = pool;
        }

        /** The weights in the order the writer reaches them, and how many large tensors each has. */
        void plan(List<String> order, Map<String, Integer> large) {
            this.order = order;
            this.index = new HashMap<>();
            for (int i = 0; i < order.size(); i++) {
                index.put(order.get(i), i);
            }
            this.remaining = new HashMap<>(large);
        }

        /**
         * Weight {@code w}, for one of its tensors of {@code length} bytes. The next weights, one per thread, are
         * started.
         */
        QuantizedWeight take(String w, long length) {
            if (released.contains(w)) { // asked again after its large tensors were written: quantized again
                try {
                    return reader.quantize(w, false);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            int i = index.get(w);
            for (int j = i; j < Math.min(order.size(), i + 1 + pool.getParallelism()); j++) {
                String next = order.get(j);
                if (!held.containsKey(next) && !released.contains(next)) {
                    held.put(next, pool.submit(() -> reader.quantize(next, true)));
                }
            }
            QuantizedWeight q;
            try {
                q = join(held.get(w));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            if (length >= OnnxExternalData.SIZE_THRESHOLD && remaining.merge(w, -1, Integer::sum) == 0) {
                held.remove(w);
                released.add(w);
            }
            return q;
        }

        void cancel() {
            held.values().forEach(f -> f.cancel(true));
            held.clear();
        }
    }

    private static QuantizedWeight join(Future<QuantizedWeight> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (CancellationException e) {
            throw new IllegalStateException("quantization cancelled", e);
        } catch (ExecutionException e) {
            switch (e.getCause()) {
                case IOException io -> throw io;
                case RuntimeException r -> throw r;
                case Error err -> throw err;
                case Throwable t -> throw new IllegalStateException(t);
            }
        }
    }
}
