package dev.quant4j.linear;

import dev.quant4j.internal.TrustedConstruction;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.quant.LinearScheme;
import dev.quant4j.quant.PackOrder;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.Quantizer;
import dev.quant4j.quant.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Round-to-nearest (RTN) linear quantization, per tensor, per output channel or per group of input columns.
 *
 * <p>Each group gets its scale and zero-point from its own minimum and maximum ({@link LinearParams}, GPTQ's {@code
 * find_params}), then every value becomes {@code q = clamp(round(x / S) + Z, qmin, qmax)} (GPTQ's {@code quantize},
 * rounding half to even). The input is validated (finite, non-empty, group size divides the columns) and never
 * modified.
 *
 * <p>Rows are independent and are processed in parallel on the given pool once the tensor is large enough; the result
 * does not depend on the number of threads.
 */
public final class RtnQuantizer implements Quantizer {

    private final LinearScheme scheme;
    private final ForkJoinPool pool;

    /** Quantizes on the common pool. */
    public RtnQuantizer(LinearScheme scheme) {
        this(scheme, ForkJoinPool.commonPool());
    }

    /** Quantizes on {@code pool}; a pool of parallelism 1 runs on one thread. */
    public RtnQuantizer(LinearScheme scheme, ForkJoinPool pool) {
        this.scheme = Objects.requireNonNull(scheme, "scheme");
        this.pool = Objects.requireNonNull(pool, "pool");
    }

    public LinearScheme scheme() {
        return scheme;
    }

    @Override
    public QuantizedTensor quantize(FloatMatrix w) {
        return quantize(w, Kernels.get());
    }

    /** Quantizes with the given kernels (tests compare implementations; the kernel types are internal). */
    QuantizedTensor quantize(FloatMatrix w, QuantKernels k) {
        Objects.requireNonNull(w, "w");
        int rows = w.rows();
        int cols = w.cols();
        int gsize;
        try {
            gsize = scheme.columnsPerGroup(cols);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("tensor '" + w.name() + "': " + e.getMessage(), e);
        }
        int gpr = cols / gsize;
        int rowBytes = QuantKernels.packedBytes(cols, scheme.bits());
        byte[] packed = new byte[Math.multiplyExact(rowBytes, rows)];
        float[] scales = new float[scheme.scaleCount(rows, cols)];
        byte[] zeros = new byte[scales.length];
        boolean perTensor = scheme.groupSize() == LinearScheme.PER_TENSOR;
        if (perTensor) {
            float min = Float.POSITIVE_INFINITY;
            float max = Float.NEGATIVE_INFINITY;
            for (int r = 0; r < rows; r++) {
                if (!k.allFinite(w.array(), w.rowOffset(r), cols)) {
                    w.requireFinite(); // throws, naming the first bad index
                }
                long mm = k.minMax(w.array(), w.rowOffset(r), cols);
                min = Math.min(min, QuantKernels.min(mm));
                max = Math.max(max, QuantKernels.max(mm));
            }
            scales[0] = LinearParams.scale(scheme, min, max);
            zeros[0] = (byte) LinearParams.zero(scheme, min, max, scales[0]);
        }
        // tasks of whole rows, about 64K values each, each with its own code buffer
        int rowsPerTask = Math.max(1, (1 << 16) / cols);
        int tasks = (rows + rowsPerTask - 1) / rowsPerTask;
        AtomicBoolean nonFinite = new AtomicBoolean();
        IntConsumer task = t -> {
            Scratch scratch = new Scratch(cols, gpr);
            for (int r = t * rowsPerTask; r < Math.min(rows, (t + 1) * rowsPerTask); r++) {
                if (!quantizeRow(k, w, r, gsize, gpr, perTensor, scratch, packed, rowBytes, scales, zeros)) {
                    nonFinite.set(true);
                }
            }
        };
        if (tasks > 1 && pool.getParallelism() > 1) {
            pool.submit(() -> IntStream.range(0, tasks).parallel().forEach(task))
                    .join();
        } else {
            for (int t = 0; t < tasks; t++) {
                task.accept(t);
            }
        }
        if (nonFinite.get()) {
            w.requireFinite(); // throws, naming the first bad index
        }
        return TrustedConstruction.quantizedTensor(
                w.name(), scheme, rows, cols, PackOrder.LSB_FIRST_ROW_ALIGNED, packed, scales, zeros);
    }

    /**
     * Quantizes row {@code r}: first the scale and zero-point of every group (independent of each other, so their
     * latencies overlap), then the codes, then the packing. Returns false if the row holds a non-finite value (the
     * caller reports it).
     */
    private boolean quantizeRow(
            QuantKernels k,
            FloatMatrix w,
            int r,
            int gsize,
            int gpr,
            boolean perTensor,
            Scratch scratch,
            byte[] packed,
            int rowBytes,
            float[] scales,
            byte[] zeros) {
        float[] x = w.array();
        int base = w.rowOffset(r);
        if (!perTensor) {
            if (!k.allFinite(x, base, w.cols())) {
                return false;
            }
            // statistics of every group, then all their parameters at once (vectorized across groups)
            for (int g = 0; g < gpr; g++) {
                int off = base + g * gsize;
                if (scheme.symmetry() == Symmetry.SIGNED) {
                    float amax = k.absMax(x, off, gsize);
                    scratch.mins[g] = -amax;
                    scratch.maxs[g] = amax;
                } else {
                    long mm = k.minMax(x, off, gsize);
                    scratch.mins[g] = QuantKernels.min(mm);
                    scratch.maxs[g] = QuantKernels.max(mm);
                }
            }
            k.linearParams(
                    scratch.mins,
                    scratch.maxs,
                    gpr,
                    scheme.bits(),
                    LinearParams.form(scheme),
                    scales,
                    r * gpr,
                    scratch.zeros,
                    0);
            for (int g = 0; g < gpr; g++) {
                zeros[r * gpr + g] = (byte) (int) scratch.zeros[g];
            }
        }
        int qmin = LinearParams.qmin(scheme);
        int qmax = scheme.maxq();
        for (int g = 0; g < gpr; g++) {
            int gi = perTensor ? 0 : r * gpr + g;
            k.quantize(x, base + g * gsize, gsize, scales[gi], zeros[gi] & 0xFF, qmin, qmax, scratch.codes, g * gsize);
        }
        k.pack(scratch.codes, 0, w.cols(), scheme.bits(), packed, r * rowBytes);
        return true;
    }

    /** Per-task buffers: the codes of one row, and the statistics and zero-points of its groups. */
    private static final class Scratch {
        final byte[] codes;
        final float[] mins;
        final float[] maxs;
        final float[] zeros;

        Scratch(int cols, int groups) {
            codes = new byte[cols];
            mins = new float[groups];
            maxs = new float[groups];
            zeros = new float[groups];
        }
    }
}
