package dev.quant4j.io;

import dev.quant4j.internal.TrustedConstruction;
import dev.quant4j.kernel.LinearKernels;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedParts;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.quant.Quantizer;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
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
 * OnnxExternalData}). Each weight is read when the writer is about to reach it, from its range of the data file with
 * positional reads, its float32 values {@code [in, out]} transposed to {@code [out, in]} (a Gather table as it is
 * stored), quantized, and its tensors (MatMulNBits' {@code B}, scales, zero-points; MatMulBnb4's {@code B}, absmax)
 * made and written in turn. When the quantizer's groups or blocks of input features are independent ({@link
 * Quantizer#independentColumns}: RTN with groups, NF4/FP4 without double quantization), a MatMul weight is read and
 * quantized a slice of about {@value #SLICE_COLUMNS} stored rows at a time, each slice transposed to {@code [out,
 * slice]} a block of {@value #BLOCK_VALUES} values at a time and each block's codes and parameters placed where the
 * whole weight's quantization has them: the heap holds the quantized weight, a slice and two blocks, not the float32
 * weight, and the result is the same bytes. The pool's threads quantize the next weights, in the order the writer
 * reaches them, while the writer writes the current one: at most one weight per thread is being quantized and at most
 * one per thread waits quantized ahead of the one being written. A weight whose tensor is under {@value OnnxExternalData#SIZE_THRESHOLD}
 * bytes (held inside the model, made before the data file) is quantized when the model is laid out and kept until its
 * large tensors are written.
 *
 * <p>The graph is laid out before any weight is quantized, from the scheme and the {@link Layout} alone: whether a
 * MatMulNBits reads its input through a permutation (act-order) or a Mul by input scales (AWQ) is declared, and whether
 * it has a {@code zero_points} input is decided from the scheme: none for {@link Symmetry#SYM} and {@link
 * Symmetry#SIGNED} (every zero-point is {@code 2^(bits - 1)}, the operator's default), always for {@link Symmetry#ASYM} and {@link Symmetry#MINMAX}. {@link
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
        /**
         * {@code q}: a weight's quantization ({@code [out, in]}), {@code error} its error against the weight as read;
         * {@code weight} the weight as read when it was read whole, null when it was read and quantized a slice of
         * input features at a time (a quantizer with {@link Quantizer#independentColumns}, external data).
         */
        void quantized(QuantizedWeight q, ErrorMetrics error, FloatMatrix weight);
    }

    /**
     * What the quantizer's weights carry besides codes, scales and zero-points, which the graph must be laid out for
     * before any weight is quantized: input features permuted into group order (GPTQ's act-order without static
     * groups: a Gather of the activations by a perm tensor before each MatMulNBits) and AWQ's input scales (a Mul of the
     * activations by their inverses).
     */
    public record Layout(boolean permuted, boolean inputScales) {
        /** Codes, scales and zero-points only: RTN, NF4/FP4, GPTQ without act-order. */
        public static final Layout PLAIN = new Layout(false, false);
    }

    private OnnxQuantizer() {}

    /**
     * Writes {@code out}: {@code input} (parsed from {@code model}, the {@code .onnx} file's bytes, with its folder)
     * with the initializers {@code weights} quantized by {@code quantizer} (a quantizer of {@code scheme}) and replaced
     * as {@link OnnxExport#write(Path, OnnxModel, byte[], Map, int)} replaces them. A MatMul weight is quantized
     * transposed ({@code [out, in]}), any other initializer (a Gather table) as it is stored.
     *
     * {@code layout} says what the quantizer's weights carry (a weight with a g_idx the layout does not permute, or with
     * input scales it does not have, or without input scales it has, is an error naming it; a weight without a g_idx
     * where the layout permutes gets the natural order).
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
            Layout layout,
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
        Reader reader = new Reader(input.source(), tensors, matmul, scheme, quantizer, layout, listener);
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
                            scheme,
                            rows,
                            cols,
                            defaultZeros(scheme),
                            layout.permuted(),
                            layout.inputScales(),
                            null,
                            length -> window.take(w, length)));
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
            Layout layout,
            Listener listener) {

        /** The quantized weight {@code w}, checked against the plan; {@code tell}: the listener hears of it. */
        QuantizedWeight quantize(String w, boolean tell) throws IOException {
            OnnxModel.Initializer t = tensors.get(w);
            if (t.external() != null && transposed.contains(w)) { // stored [in, out]: in slices when it can
                int independent = quantizer.independentColumns(Math.toIntExact(t.dims()[0]));
                if (independent > 0) {
                    return quantizeInSlices(w, independent, tell);
                }
            }
            FloatMatrix m = read(w);
            QuantizedWeight q = quantizer.quantize(m);
            check(w, m, q);
            check(w, q);
            if (tell) {
                listener.quantized(q, ErrorMetrics.compare(m, q), m);
            }
            return q;
        }

        /** Throws unless {@code q} has the shape of {@code m} and the plan's scheme. */
        private void check(String w, FloatMatrix m, QuantizedWeight q) {
            String wrong = null;
            if (q.rows() != m.rows() || q.cols() != m.cols()) {
                wrong = "shape [" + q.rows() + ", " + q.cols() + "], not [" + m.rows() + ", " + m.cols() + "]";
            } else if (!q.scheme().equals(scheme)) {
                wrong = "scheme " + q.scheme() + ", not " + scheme;
            } else if (q instanceof QuantizedTensor t && t.hasGIdx() && !layout.permuted()) {
                wrong = "a g_idx, which the layout does not permute the input features for";
            } else if (q instanceof QuantizedTensor t && t.hasInputScales() != layout.inputScales()) {
                wrong = t.hasInputScales()
                        ? "AWQ input scales, which the layout has no Mul for"
                        : "no AWQ input scales";
            }
            if (wrong != null) {
                throw new IllegalStateException("'" + w + "': the quantizer gave " + wrong);
            }
        }

        /** Throws when a symmetric scheme's weight has zero-points the plan left out. */
        private void check(String w, QuantizedWeight q) {
            if (defaultZeros(scheme) && !OnnxWeightPlan.defaultZeros(q)) {
                throw new IllegalStateException(
                        "'" + w + "': the quantizer gave zero-points other than 2^(bits - 1) under a symmetric scheme");
            }
        }

        /**
         * MatMul weight {@code w} (stored {@code [k, n]}, external data) quantized as {@code [n, k]} a slice of stored
         * rows at a time: each slice of input features, a multiple of {@code independent}, is read, and transposed to
         * {@code [n, slice]} a block of about {@value #BLOCK_VALUES} values at a time, each block quantized alone and
         * placed into the whole weight's codes and parameters. The error sums are taken block by block, in order, as
         * flat runs ({@link ErrorMetrics.Accumulator#add(float[], float[], int, int)}).
         */
        private QuantizedWeight quantizeInSlices(String w, int independent, boolean tell) throws IOException {
            OnnxModel.Initializer t = tensors.get(w);
            int k = Math.toIntExact(t.dims()[0]);
            int n = Math.toIntExact(t.dims()[1]);
            int slice = sliceColumns(independent, k);
            Assembly whole = new Assembly(w, scheme, n, k);
            ErrorMetrics.Accumulator error = tell ? new ErrorMetrics.Accumulator() : null;
            float[] rows = new float[slice * n];
            // the transposed slice a block of its rows at a time, small enough to stay in cache through quantizing,
            // dequantizing and comparing
            int block = Math.max(1, Math.min(n, BLOCK_VALUES / slice));
            float[] columns = new float[block * slice];
            float[] approx = tell ? new float[block * slice] : null;
            try (StoredRows stored = open(w)) {
                for (int k0 = 0; k0 < k; k0 += slice) {
                    int kb = Math.min(slice, k - k0);
                    stored.read(k0, kb, rows, 0);
                    for (int n0 = 0; n0 < n; n0 += block) {
                        int nb = Math.min(block, n - n0);
                        transpose(rows, kb, n, n0, nb, columns, kb, 0);
                        FloatMatrix part = FloatMatrix.of(w, nb, kb, columns, 0);
                        QuantizedWeight q = quantizer.quantize(part);
                        check(w, part, q);
                        whole.place(q, n0, k0);
                        if (error != null) {
                            // dequantized as a whole, compared in runs longer than its rows
                            switch (q) {
                                case QuantizedTensor l -> l.dequantizeInto(approx, 0);
                                case CodebookTensor c -> c.dequantizeRange(0, nb * kb, approx, 0);
                            }
                            error.add(columns, approx, 0, nb * kb);
                        }
                    }
                }
            }
            QuantizedWeight q = whole.weight();
            check(w, q);
            if (tell) {
                listener.quantized(q, error.result(), null);
            }
            return q;
        }

        /** The values of {@code w}, transposed to {@code [out, in]} when it is a MatMul weight. */
        FloatMatrix read(String w) throws IOException {
            OnnxModel.Initializer t = tensors.get(w);
            if (t.external() == null) {
                FloatMatrix m = t.matrix();
                return transposed.contains(w) ? m.transpose() : m;
            }
            int k = Math.toIntExact(t.dims()[0]);
            int n = Math.toIntExact(t.dims()[1]);
            float[] values = new float[Math.toIntExact((long) k * n)];
            boolean transpose = transposed.contains(w);
            try (StoredRows stored = open(w)) {
                int block = Math.min(k, READ_ROWS);
                float[] rows = transpose ? new float[block * n] : null;
                for (int k0 = 0; k0 < k; k0 += block) {
                    int kb = Math.min(block, k - k0);
                    if (transpose) {
                        stored.read(k0, kb, rows, 0);
                        transpose(rows, kb, n, 0, n, values, k, k0);
                    } else {
                        stored.read(k0, kb, values, k0 * n);
                    }
                }
            }
            return transpose ? FloatMatrix.of(w, n, k, values, 0) : FloatMatrix.of(w, k, n, values, 0);
        }

        /** The external data of initializer {@code w}, checked to hold all of it. */
        private StoredRows open(String w) throws IOException {
            OnnxModel.Initializer t = tensors.get(w);
            OnnxModel.External ext = t.external();
            long[] d = t.dims();
            long length = 4L * d[0] * d[1];
            FileChannel ch;
            try {
                ch = FileChannel.open(ext.file(), StandardOpenOption.READ);
            } catch (java.nio.file.NoSuchFileException e) {
                throw new MalformedTensorFileException(
                        source + ": initializer '" + w + "': external data file '" + ext.location() + "' is missing");
            }
            try {
                if (ext.length() != length || ch.size() < ext.offset() + length) {
                    throw new MalformedTensorFileException(source + ": initializer '" + w + "' needs " + length
                            + " bytes from byte " + ext.offset() + " of '" + ext.location() + "', which has "
                            + ch.size() + " bytes");
                }
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
            return new StoredRows(source, w, ch, ext.offset(), Math.toIntExact(d[1]));
        }
    }

    /**
     * The stored rows of one float32 initializer in its external data file, read with positional reads (as fast as
     * {@code cat}; faulting a mapping's pages in is several times slower) through a native buffer.
     */
    private static final class StoredRows implements AutoCloseable {
        private final String source;
        private final String w;
        private final FileChannel ch;
        private final long offset;
        private final int n;
        private final Arena arena = Arena.ofConfined();
        private MemorySegment buffer = MemorySegment.NULL;

        StoredRows(String source, String w, FileChannel ch, long offset, int n) {
            this.source = source;
            this.w = w;
            this.ch = ch;
            this.offset = offset;
            this.n = n;
        }

        /** Stored rows {@code [k0, k0 + count)} ({@code count x n} floats) into {@code into} from index {@code at}. */
        void read(int k0, int count, float[] into, int at) throws IOException {
            long bytes = 4L * count * n;
            if (buffer.byteSize() < bytes) {
                buffer = arena.allocate(bytes, 64);
            }
            readFully(ch, buffer.asSlice(0, bytes), offset + 4L * k0 * n, source, w);
            MemorySegment.copy(buffer, LE_FLOAT, 0, into, at, count * n);
        }

        @Override
        public void close() throws IOException {
            try {
                ch.close();
            } finally {
                arena.close();
            }
        }
    }

    /**
     * Columns {@code [c0, c0 + count)} of {@code rows} ({@code kb} stored rows of {@code n} floats) transposed into
     * {@code dst}: stored row {@code kk}, column {@code c0 + c} to {@code dst[c * stride + offset + kk]}. Each {@value
     * #TILE} x {@value #TILE} square is copied out of the stored rows first, then transposed from there: read in place,
     * a column of the stored rows is one cache line a row with a stride of {@code n} floats, which for widths like 4096
     * or 11008 maps all the lines to a few sets of the L1 cache and evicts them before the next column uses them.
     */
    private static void transpose(float[] rows, int kb, int n, int c0, int count, float[] dst, int stride, int offset) {
        float[] tile = new float[TILE * TILE];
        for (int n0 = 0; n0 < count; n0 += TILE) {
            int nb = Math.min(TILE, count - n0);
            for (int kk = 0; kk < kb; kk += TILE) {
                int tb = Math.min(TILE, kb - kk);
                for (int i = 0; i < tb; i++) {
                    System.arraycopy(rows, (kk + i) * n + c0 + n0, tile, i * TILE, nb);
                }
                for (int c = 0; c < nb; c++) {
                    int to = (n0 + c) * stride + offset + kk;
                    for (int i = 0; i < tb; i++) {
                        dst[to + i] = tile[i * TILE + c];
                    }
                }
            }
        }
    }

    /** Input features a MatMul weight is quantized in, when its groups or blocks allow it ({@link #sliceColumns}). */
    static final int SLICE_COLUMNS = 128;

    /** Values of a transposed slice quantized at a time (256 KB as float32). */
    static final int BLOCK_VALUES = 1 << 16;

    /**
     * The slice of input features for a weight of {@code k} of them whose columns quantize independently in runs of
     * {@code independent}: a multiple of it and of 8 (so that each slice's packed codes start on a byte), about {@value
     * #SLICE_COLUMNS}.
     */
    static int sliceColumns(int independent, int k) {
        int unit = independent / Math.min(8, Integer.lowestOneBit(independent)) * 8; // lcm(independent, 8)
        return Math.min(k, unit * Math.max(1, SLICE_COLUMNS / unit));
    }

    /**
     * A weight {@code [rows, cols]}'s quantization put together from slices of its columns: the packed codes, scales and
     * zero-points (round-to-nearest) or packed codes and absmax values (a codebook) of each slice where the whole
     * weight's quantization has them.
     */
    private static final class Assembly {
        private static final QuantizedParts PARTS =
                TrustedConstruction.get(QuantizedParts.class, QuantizedTensor.class);
        private final String name;
        private final QuantScheme scheme;
        private final int rows;
        private final int cols;
        private final byte[] packed;
        private final float[] scales;
        private final byte[] zeros;

        Assembly(String name, QuantScheme scheme, int rows, int cols) {
            this.name = name;
            this.scheme = scheme;
            this.rows = rows;
            this.cols = cols;
            long values = (long) rows * cols;
            switch (scheme) {
                case LinearScheme l -> {
                    packed = new byte[Math.multiplyExact(rows, LinearKernels.packedBytes(cols, l.bits()))];
                    scales = new float[l.scaleCount(rows, cols)];
                    zeros = new byte[scales.length];
                }
                case CodebookScheme c -> {
                    packed = new byte[Math.toIntExact((values + 1) / 2)];
                    scales = new float[Math.toIntExact(c.blocks(values))];
                    zeros = null;
                }
            }
        }

        /**
         * Block {@code q} ({@code [nb, kb]}): rows {@code [r0, r0 + nb)}, columns {@code [k0, k0 + kb)}, {@code k0} a
         * multiple of 8.
         */
        void place(QuantizedWeight q, int r0, int k0) {
            int kb = q.cols();
            int nb = q.rows();
            switch (q) {
                case QuantizedTensor t -> {
                    if (t.packOrder() != PackOrder.LSB_FIRST_ROW_ALIGNED) {
                        throw new IllegalStateException(
                                "'" + name + "': the quantizer packed codes " + t.packOrder() + ", not row aligned");
                    }
                    int bits = t.scheme().bits();
                    int rowBytes = LinearKernels.packedBytes(cols, bits);
                    int sliceRowBytes = t.rowBytes();
                    byte[] p = PARTS.packed(t);
                    int g = t.scheme().groupSize();
                    int groups = cols / g;
                    int sliceGroups = kb / g;
                    float[] s = PARTS.scales(t);
                    byte[] z = PARTS.zeros(t);
                    for (int r = 0; r < nb; r++) {
                        System.arraycopy(
                                p, r * sliceRowBytes, packed, (r0 + r) * rowBytes + k0 / 8 * bits, sliceRowBytes);
                    }
                    // a few groups a row (often one): element by element, not a call each
                    for (int r = 0, from = 0; r < nb; r++) {
                        for (int j = 0, to = (r0 + r) * groups + k0 / g; j < sliceGroups; j++, from++, to++) {
                            scales[to] = s[from];
                            zeros[to] = z[from];
                        }
                    }
                }
                case CodebookTensor c -> {
                    int bs = c.scheme().blockSize();
                    byte[] p = PARTS.packed(c);
                    float[] a = PARTS.absmax(c);
                    int sliceBlocks = kb / bs;
                    for (int r = 0, from = 0; r < nb; r++) {
                        // two codes a byte, rows of an even number of codes: each row's codes start on a byte
                        System.arraycopy(p, r * kb / 2, packed, (int) (((long) (r0 + r) * cols + k0) / 2), kb / 2);
                        for (int j = 0, to = (r0 + r) * (cols / bs) + k0 / bs; j < sliceBlocks; j++, from++, to++) {
                            scales[to] = a[from];
                        }
                    }
                }
            }
        }

        QuantizedWeight weight() {
            return switch (scheme) {
                case LinearScheme l ->
                    PARTS.linear(name, l, rows, cols, PackOrder.LSB_FIRST_ROW_ALIGNED, packed, scales, zeros, null);
                case CodebookScheme c -> PARTS.codebook(name, c, rows, cols, packed, scales, null);
            };
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
