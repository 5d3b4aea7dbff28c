package dev.quant4j.matmul;

import dev.quant4j.internal.TrustedConstruction;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.PackedProductKernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.linalg.Parallel;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedParts;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.tensor.FloatMatrix;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;

/**
 * A linear layer {@code y = W x + b} whose weight {@code W [out, in]} stays quantized: matrix-vector and small-batch
 * matrix-matrix products read the packed codes directly, never dequantizing the whole matrix.
 *
 * <p>Two paths, chosen once per layer:
 *
 * <ul>
 *   <li><b>Fused 4-bit</b> (linear 4-bit, groups a multiple of 32 columns or one per row, no {@code g_idx}): per row
 *       {@code y_r = sum_g S_g (sum_{i in g} q_i x_i) - sum_g S_g Z_g (sum_{i in g} x_i) + b_r}, where the first sum
 *       unpacks nibbles in registers and multiplies them by activations reordered once per call ({@link
 *       QuantKernels#dotNibbles}), and the group sums of {@code x} are shared by all rows.
 *   <li><b>Row by row</b> (every other format: 2, 3, 8 bits, {@code g_idx}, NF4/FP4): each row is dequantized into a
 *       buffer that stays in L1, then multiplied by every activation row. For a batch, a row is decoded once for all
 *       of it, which is where matrix-matrix products gain over repeated matrix-vector ones.
 * </ul>
 *
 * <p>AWQ input scales are divided into the activations ({@code Q(W s) (x / s)}); {@code g_idx} is honoured by the
 * row decoder. Rows are split over a {@link ForkJoinPool} in fixed chunks: results do not depend on the number of
 * threads. NaN or infinity in the activations propagates per IEEE 754 (not checked: the hot path of inference).
 *
 * <p>The first calls run interpreted and then JIT-compiled code; call {@link #warmUp()} before timing or serving.
 */
public final class QuantizedLinear {

    /** Output rows per task. */
    private static final int ROW_CHUNK = 64;

    /**
     * Two decoded weight rows and one row of codes per thread, reused across chunks and calls: allocated per chunk
     * they were 2.3 MB of garbage per 4096 x 4096 product (JMH {@code -prof gc}).
     */
    private static final class DecodeBuffers {
        float[] rows = new float[0];
        byte[] codes = new byte[0];

        DecodeBuffers ensure(int in) {
            if (codes.length < in) {
                rows = new float[2 * in];
                codes = new byte[in];
            }
            return this;
        }
    }

    private static final ThreadLocal<DecodeBuffers> DECODE_BUFFERS = ThreadLocal.withInitial(DecodeBuffers::new);

    private final String name;
    private final int out;
    private final int in;
    private final QuantizedWeight weight;
    private final float[] bias;
    private final ForkJoinPool pool;
    private final QuantKernels k;
    private final boolean fused;
    /** Whether matrix-vector products quantize the activations to int8 ({@link #withInt8Activations}). */
    private final boolean int8;
    /** Fused path: the group size, groups per row, and the tensor's arrays (read in place). */
    private final int groupSize;

    private final int groupsPerRow;
    private final int rowBytes;
    private final byte[] packed;
    private final float[] scales;
    private final byte[] zeros;
    private final float[] inputScales;
    /** Fused path: {@code S * Z} per row and group, so the zero-point term of a row is one dot product. */
    private final float[] scaleTimesZero;

    private QuantizedLinear(
            QuantizedWeight weight, float[] bias, ForkJoinPool pool, QuantKernels k, boolean int8Requested) {
        this.weight = Objects.requireNonNull(weight, "weight");
        this.name = weight.name();
        this.out = weight.rows();
        this.in = weight.cols();
        QuantizedTensor linear = weight instanceof QuantizedTensor t ? t : null;
        if (bias != null && bias.length != out) {
            throw new IllegalArgumentException(
                    "layer '" + name + "': bias has " + bias.length + " values, the weight has " + out + " rows");
        }
        this.bias = bias == null ? null : bias.clone();
        this.pool = Objects.requireNonNull(pool);
        this.k = k;
        LinearScheme s = linear == null ? null : linear.scheme();
        int g = s == null ? 0 : s.groupSize() > 0 ? s.groupSize() : in;
        this.fused = s != null
                && s.bits() == 4
                && linear.packOrder() == PackOrder.LSB_FIRST_ROW_ALIGNED
                && !linear.hasGIdx()
                && g % QuantKernels.NIBBLE_CHUNK == 0
                && in % g == 0;
        this.groupSize = g;
        this.int8 = int8Requested && fused && g % QuantKernels.NIBBLE_CHUNK_INT8 == 0;
        this.groupsPerRow = fused ? in / g : 0;
        this.rowBytes = linear == null ? 0 : linear.rowBytes();
        QuantizedParts access = TrustedConstruction.get(QuantizedParts.class, QuantizedTensor.class);
        this.packed = fused ? access.packed(linear) : null;
        this.scales = fused ? perRowGroupScales(linear, access) : null;
        this.zeros = fused ? perRowGroupZeros(linear, access) : null;
        this.inputScales = linear != null && linear.hasInputScales() ? linear.inputScales() : null;
        this.scaleTimesZero = fused ? new float[scales.length] : null;
        if (fused) {
            for (int i = 0; i < scales.length; i++) {
                scaleTimesZero[i] = scales[i] * (zeros[i] & 0xFF);
            }
        }
    }

    /** {@code y = W x}, on the common pool; any quantized weight (linear, NF4/FP4). */
    public static QuantizedLinear of(QuantizedWeight weight) {
        return new QuantizedLinear(weight, null, ForkJoinPool.commonPool(), Kernels.get(), false);
    }

    /** {@code y = W x + bias} ({@code bias} may be null), on {@code pool}; any quantized weight. */
    public static QuantizedLinear of(QuantizedWeight weight, float[] bias, ForkJoinPool pool) {
        return new QuantizedLinear(weight, bias, pool, Kernels.get(), false);
    }

    static QuantizedLinear withKernels(QuantizedTensor weight, float[] bias, ForkJoinPool pool, QuantKernels k) {
        return new QuantizedLinear(weight, bias, pool, k, false);
    }

    /**
     * This layer with matrix-vector products on int8-quantized activations ({@code on}) or on float activations.
     * Where it applies (the fused 4-bit path with groups a multiple of 64 columns; see {@link #int8Activations()}),
     * {@link #forward(float[])} quantizes {@code x} per weight group, {@code d_g = max|x_g| / 127}, and multiplies
     * codes by codes in 16-bit integers, at the cost of the activations' rounding (measured: 0.6% relative RMS
     * change of {@code y} for N(0, 1) activations, 2% with outlier channels; docs/matmul.md, which also says when it
     * is faster). Batches ({@link #forward(FloatMatrix)} with more than one
     * row) keep float activations.
     */
    public QuantizedLinear withInt8Activations(boolean on) {
        return new QuantizedLinear(weight, bias, pool, k, on);
    }

    /** Whether matrix-vector products run on int8-quantized activations (requested and supported by the format). */
    public boolean int8Activations() {
        return int8;
    }

    /** Input features: the length of {@code x}. */
    public int inFeatures() {
        return in;
    }

    /** Output features: the length of {@code y}. */
    public int outFeatures() {
        return out;
    }

    /** Whether the fused 4-bit kernel serves this layer (otherwise rows are decoded one at a time). */
    public boolean fused() {
        return fused;
    }

    /** {@code y = W x + b} into a new array. */
    public float[] forward(float[] x) {
        float[] y = new float[out];
        forward(x, 0, y, 0);
        return y;
    }

    /** {@code y[yOff, yOff + out) = W x[xOff, xOff + in) + b}. */
    public void forward(float[] x, int xOff, float[] y, int yOff) {
        if (xOff < 0 || xOff + (long) in > x.length) {
            throw new IllegalArgumentException("layer '" + name + "' [" + out + ", " + in + "]: x has "
                    + (x.length - Math.max(0, xOff)) + " values from offset " + xOff + ", needs " + in);
        }
        Objects.checkFromIndexSize(yOff, out, y.length);
        if (fused) {
            forwardFused(x, xOff, y, yOff);
        } else {
            forwardBatch(x, xOff, 1, y, yOff);
        }
    }

    /**
     * {@code Y = X W^T + b} for a batch {@code x [batch, in]}: a new {@code [batch, out]} matrix. Each row of {@code
     * W} is decoded once for the whole batch.
     */
    public FloatMatrix forward(FloatMatrix x) {
        if (x.cols() != in) {
            throw new IllegalArgumentException("layer '" + name + "' [" + out + ", " + in + "]: activations '"
                    + x.name() + "' have " + x.cols() + " columns, needs " + in);
        }
        float[] xs = x.toArray();
        float[] y = new float[x.rows() * out];
        if (x.rows() == 1 && fused) {
            forwardFused(xs, 0, y, 0);
        } else {
            forwardBatch(xs, 0, x.rows(), y, 0);
        }
        return FloatMatrix.of(name, x.rows(), out, y, 0);
    }

    /** Runs enough products for the JIT to compile the hot loops (a few hundred ms), so later calls run at speed. */
    public void warmUp() {
        float[] x = new float[in];
        float[] y = new float[out];
        for (int i = 0; i < 200; i++) {
            forward(x, 0, y, 0);
        }
    }

    private void forwardFused(float[] x, int xOff, float[] y, int yOff) {
        float[] groupSums = new float[groupsPerRow];
        float[] xp;
        short[] xq;
        float[] xScales;
        if (int8) {
            xp = null;
            xq = new short[in];
            xScales = new float[groupsPerRow];
            prepareInt8(x, xOff, xq, xScales, groupSums);
        } else {
            xq = null;
            xScales = null;
            xp = new float[in];
            prepare(x, xOff, new float[in], xp, 0, groupSums, 0);
        }
        int chunks = (out + ROW_CHUNK - 1) / ROW_CHUNK;
        Parallel.forEach(pool, chunks, ch -> {
            int r0 = ch * ROW_CHUNK;
            int r1 = Math.min(out, r0 + ROW_CHUNK);
            // no fetch ahead: the kernel's loads, row after row, are a stream the hardware prefetcher follows. A burst
            // of one load per cache line of the chunk before computing it measured slower since the group-of-128
            // kernels, most of all with transparent huge pages (docs/matmul.md)
            for (int r = r0; r < r1; r++) {
                int s0 = r * groupsPerRow;
                float acc = int8
                        ? k.dotNibblesInt8(packed, r * rowBytes, xq, 0, in, groupSize, scales, s0, xScales, 0)
                        : k.dotNibbles(packed, r * rowBytes, xp, 0, in, groupSize, scales, s0);
                y[yOff + r] = finish(r, s0, acc, groupSums, 0);
            }
        });
    }

    private void forwardBatch(float[] x, int xOff, int batch, float[] y, int yOff) {
        if (fused) {
            forwardBatchFused(x, xOff, batch, y, yOff);
            return;
        }
        int chunks = (out + ROW_CHUNK - 1) / ROW_CHUNK;
        Parallel.forEach(pool, chunks, ch -> {
            DecodeBuffers buffers = DECODE_BUFFERS.get().ensure(in);
            float[] rows = buffers.rows;
            byte[] scratch = buffers.codes;
            int r0 = ch * ROW_CHUNK;
            int r1 = Math.min(out, r0 + ROW_CHUNK);
            for (int r = r0; r < r1; r += 2) {
                int m = Math.min(2, r1 - r);
                for (int i = 0; i < m; i++) {
                    switch (weight) {
                        case QuantizedTensor linear ->
                            linear.dequantizeRow(r + i, rows, i * in, scratch); // divides AWQ input scales back out
                        case CodebookTensor codebook -> codebook.dequantizeRange((long) (r + i) * in, in, rows, i * in);
                    }
                }
                // y[t][r + i] = rows[i] . x[t]: two decoded rows against every activation row, in registers
                k.dotMany(m, batch, in, rows, 0, in, x, xOff, in, y, yOff + r, 1, out);
                if (bias != null) {
                    for (int i = 0; i < m; i++) {
                        for (int t = 0; t < batch; t++) {
                            y[yOff + t * out + r + i] += bias[r + i];
                        }
                    }
                }
            }
        });
    }

    /**
     * Batches on a fused-path layer: activations reordered once per row of the batch; each weight row's nibbles are
     * unpacked once per eight activation rows ({@link QuantKernels#dotNibbles8}), the rest one row at a time.
     */
    private void forwardBatchFused(float[] x, int xOff, int batch, float[] y, int yOff) {
        float[] xp = new float[batch * in];
        float[] groupSums = new float[batch * groupsPerRow];
        float[] xs = new float[in];
        for (int t = 0; t < batch; t++) {
            prepare(x, xOff + t * in, xs, xp, t * in, groupSums, t * groupsPerRow);
        }
        int chunks = (out + ROW_CHUNK - 1) / ROW_CHUNK;
        Parallel.forEach(pool, chunks, ch -> {
            float[] results = new float[16];
            int r0 = ch * ROW_CHUNK;
            int r1 = Math.min(out, r0 + ROW_CHUNK);
            for (int r = r0; r < r1; ) {
                // two weight rows at a time where there are two: every activation load then serves both
                int rows = r + 1 < r1 && batch >= 8 ? 2 : 1;
                int s0 = r * groupsPerRow;
                int t = 0;
                for (; t + 8 <= batch; t += 8) {
                    if (rows == 2) {
                        k.dotNibbles2x8(
                                packed,
                                r * rowBytes,
                                (r + 1) * rowBytes,
                                xp,
                                t * in,
                                in,
                                in,
                                groupSize,
                                scales,
                                s0,
                                s0 + groupsPerRow,
                                results,
                                0);
                    } else {
                        k.dotNibbles8(packed, r * rowBytes, xp, t * in, in, in, groupSize, scales, s0, results, 0);
                    }
                    for (int i = 0; i < rows; i++) {
                        for (int b = 0; b < 8; b++) {
                            y[yOff + (t + b) * out + r + i] = finish(
                                    r + i,
                                    s0 + i * groupsPerRow,
                                    results[8 * i + b],
                                    groupSums,
                                    (t + b) * groupsPerRow);
                        }
                    }
                }
                // the activation rows left over (fewer than eight), one weight row at a time
                for (int i = 0; i < rows; i++) {
                    int s = s0 + i * groupsPerRow;
                    for (int u = t; u < batch; u++) {
                        float acc = k.dotNibbles(packed, (r + i) * rowBytes, xp, u * in, in, groupSize, scales, s);
                        y[yOff + u * out + r + i] = finish(r + i, s, acc, groupSums, u * groupsPerRow);
                    }
                }
                r += rows;
            }
        });
    }

    /**
     * One activation row for the fused kernel: {@code x / s} (AWQ) into {@code xs}, reordered for {@link
     * QuantKernels#dotNibbles} into {@code xp[xpOff ...]}, and its sum per group into {@code groupSums[gOff ...]}.
     */
    private void prepare(float[] x, int xOff, float[] xs, float[] xp, int xpOff, float[] groupSums, int gOff) {
        for (int c = 0; c < in; c++) {
            xs[c] = inputScales == null ? x[xOff + c] : x[xOff + c] / inputScales[c];
        }
        PackedProductKernels.deinterleaveForNibbles(xs, 0, in, xp, xpOff);
        for (int g = 0; g < groupsPerRow; g++) {
            double sum = 0;
            for (int c = g * groupSize; c < (g + 1) * groupSize; c++) {
                sum += xs[c];
            }
            groupSums[gOff + g] = (float) sum;
        }
    }

    /**
     * The activation row for {@link QuantKernels#dotNibblesInt8}: {@code x / s} (AWQ), int8 codes and a scale per group
     * ({@link PackedProductKernels#quantizeActivationsInt8}), and the group sums of the quantized activations {@code d_g sum
     * xq}, so that the zero-point term subtracts exactly what the codes add.
     */
    private void prepareInt8(float[] x, int xOff, short[] xq, float[] xScales, float[] groupSums) {
        float[] xs = x;
        int off = xOff;
        if (inputScales != null) {
            xs = new float[in];
            off = 0;
            for (int c = 0; c < in; c++) {
                xs[c] = x[xOff + c] / inputScales[c];
            }
        }
        PackedProductKernels.quantizeActivationsInt8(xs, off, in, groupSize, xq, 0, xScales, 0);
        for (int g = 0; g < groupsPerRow; g++) {
            long sum = 0;
            for (int c = g * groupSize; c < (g + 1) * groupSize; c++) {
                sum += xq[c];
            }
            groupSums[g] = xScales[g] * sum;
        }
    }

    /** {@code acc - sum_g S_g Z_g sum_g(x) + b_r}: the zero-point term and the bias of row {@code r}. */
    private float finish(int r, int s0, float acc, float[] groupSums, int gOff) {
        float zeroTerm = k.dot(scaleTimesZero, s0, groupSums, gOff, groupsPerRow);
        return acc - zeroTerm + (bias == null ? 0f : bias[r]);
    }

    /** Scales as {@code [rows, in / groupSize]}: a per-tensor scale repeated, so the kernel sees one layout. */
    private static float[] perRowGroupScales(QuantizedTensor t, QuantizedParts access) {
        if (t.scheme().groupSize() != LinearScheme.PER_TENSOR) {
            return access.scales(t);
        }
        float[] s = new float[t.rows()];
        java.util.Arrays.fill(s, access.scales(t)[0]);
        return s;
    }

    private static byte[] perRowGroupZeros(QuantizedTensor t, QuantizedParts access) {
        if (t.scheme().groupSize() != LinearScheme.PER_TENSOR) {
            return access.zeros(t);
        }
        byte[] z = new byte[t.rows()];
        java.util.Arrays.fill(z, access.zeros(t)[0]);
        return z;
    }

    @Override
    public String toString() {
        return "QuantizedLinear[" + name + ", " + out + "x" + in + (fused ? ", fused 4-bit" : ", row by row")
                + (int8 ? ", int8 activations" : "") + "]";
    }
}
